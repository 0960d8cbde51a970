// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The XDP guard in the kernel, one packet at a time (BPF_PROG_TEST_RUN):
 * allowed and denied sources for each guarded port, other ports, IPv6 with
 * extension headers, VLAN tags, truncated frames, fragments (tiny first ones,
 * RFC 1858's overlap, later ones with and without a first that passed), a
 * chain longer than the walk, non-IP; the verdict and the counter that moved,
 * for each. Needs root and BPF: it
 * fails, naming what is missing, rather than skip.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/bpf.h>
#include <unistd.h>

#include "agent/datapath/guard.h"
#include "ksteer_xdp.skel.h"

static struct ksteer_xdp *skel;

struct pkt {
	unsigned char b[512];
	size_t n;
	size_t l3; /* where the IP header starts; 0: none */
	int v6;
	int iplen; /* the IP length to write (IPv4 total, IPv6 payload); -1: what was put */
};

static void put(struct pkt *p, const void *d, size_t n)
{
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

static void eth(struct pkt *p, int vlans, uint16_t type)
{
	unsigned char mac[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
	uint16_t t;

	p->n = 0;
	p->l3 = 0;
	p->iplen = -1;
	put(p, mac, 12);
	for (int i = 0; i < vlans; i++) {
		uint16_t tag[2] = {htons(i == 0 && vlans == 2 ? 0x88a8 : 0x8100), htons(100 + i)};

		put(p, tag, 4);
	}
	t = htons(type);
	put(p, &t, 2);
}

/* frag: the fragment field (flags and offset) in host order */
static void ip4id(struct pkt *p, const char *src, uint8_t proto, uint16_t frag, uint16_t id)
{
	struct iphdr ip = {.ihl = 5,
			   .version = 4,
			   .ttl = 64,
			   .protocol = proto,
			   .id = htons(id),
			   .frag_off = htons(frag)};

	inet_pton(AF_INET, src, &ip.saddr);
	inet_pton(AF_INET, "10.2.0.254", &ip.daddr);
	p->l3 = p->n;
	p->v6 = 0;
	put(p, &ip, sizeof(ip));
}

static void ip4(struct pkt *p, const char *src, uint8_t proto, uint16_t frag)
{
	ip4id(p, src, proto, frag, 0);
}

static void ip6(struct pkt *p, const char *src, uint8_t nexthdr)
{
	struct ipv6hdr ip = {.version = 6, .nexthdr = nexthdr, .hop_limit = 64};

	inet_pton(AF_INET6, src, &ip.saddr);
	inet_pton(AF_INET6, "fd00:2::fe", &ip.daddr);
	p->l3 = p->n;
	p->v6 = 1;
	put(p, &ip, sizeof(ip));
}

/* The IP length field as the bytes put (or p->iplen), as a sender writes it. */
static void seal(struct pkt *p)
{
	size_t hl = p->v6 ? sizeof(struct ipv6hdr) : 0;
	uint16_t len;

	if (!p->l3 || p->l3 + (p->v6 ? 6 : 4) > p->n)
		return;
	len = htons((uint16_t)(p->iplen >= 0 ? (size_t)p->iplen : p->n - p->l3 - hl));
	memcpy(p->b + p->l3 + (p->v6 ? 4 : 2), &len, 2);
}

static void ext6(struct pkt *p, uint8_t next, uint8_t len8) /* hop-by-hop, routing, dest opts */
{
	unsigned char h[64] = {next, len8};

	put(p, h, (size_t)(len8 + 1) * 8);
}

/* offset in 8-byte units; more: the M flag */
static void frag6id(struct pkt *p, uint8_t next, uint16_t offset, int more, uint32_t id)
{
	unsigned char h[8] = {next,
			      0,
			      (unsigned char)(offset >> 5),
			      (unsigned char)((offset << 3) | (more ? 1 : 0)),
			      (unsigned char)(id >> 24),
			      (unsigned char)(id >> 16),
			      (unsigned char)(id >> 8),
			      (unsigned char)id};

	put(p, h, 8);
}

static void frag6(struct pkt *p, uint8_t next, uint16_t offset)
{
	frag6id(p, next, offset, 0, 0);
}

static void tcp(struct pkt *p, uint16_t dport)
{
	struct tcphdr th = {.source = htons(40000), .dest = htons(dport), .doff = 5, .syn = 1};

	put(p, &th, sizeof(th));
}

static void udp(struct pkt *p, uint16_t dport)
{
	struct udphdr uh = {.source = htons(40000), .dest = htons(dport), .len = htons(8)};

	put(p, &uh, sizeof(uh));
}

static uint64_t counter(int reason)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t v[512], sum = 0;
	uint32_t k = (uint32_t)reason;

	assert_true(ncpu > 0 && ncpu <= 512);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.ks_guard_stats), &k, v), 0);
	for (int i = 0; i < ncpu; i++)
		sum += v[i];
	return sum;
}

/* Runs one packet; checks the verdict and that exactly the expected counter moved. */
static void expect(const char *what, struct pkt *p, int action, int reason)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->b, .data_size_in = (uint32_t)p->n,
		    .repeat = 1);
	uint64_t before[KS_GUARD_STAT_MAX];

	seal(p);
	for (int r = 0; r < KS_GUARD_STAT_MAX; r++)
		before[r] = counter(r);
	if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.ksteer_guard), &o))
		fail_msg("%s: BPF_PROG_TEST_RUN: %s", what, strerror(errno));
	if ((int)o.retval != action)
		fail_msg("%s: verdict %u, want %d", what, o.retval, action);
	for (int r = 0; r < KS_GUARD_STAT_MAX; r++)
		if (counter(r) != before[r] + (r == reason))
			fail_msg("%s: counter %d moved by %ld, want %d", what, r,
				 (long)(counter(r) - before[r]), r == reason);
}

static void allow(const char *cidr)
{
	struct ks_lpm_key k;
	uint32_t one = 1;

	assert_int_equal(guard_cidr(cidr, &k), 0);
	assert_int_equal(
	    bpf_map_update_elem(bpf_map__fd(skel->maps.ks_guard_allow), &k, &one, BPF_ANY), 0);
}

static int setup(void **state)
{
	uint32_t one = 1;
	uint16_t ports[] = {15443, 15008, 15012};

	(void)state;
	if (geteuid()) {
		fprintf(stderr,
			"test_xdp needs root (BPF_PROG_LOAD, BPF_PROG_TEST_RUN): run it as root\n");
		return -1;
	}
	skel = ksteer_xdp__open_and_load();
	if (!skel) {
		fprintf(stderr,
			"test_xdp: loading the XDP guard failed: %s (kernel lacks XDP or LPM trie "
			"maps?)\n",
			strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.ks_guard_ports), &ports[i], &one,
					BPF_ANY))
			return -1;
	allow("172.30.1.1/32"); /* cluster1's gateway */
	allow("10.2.0.0/16");	/* this cluster */
	allow("fd00:1::/32");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ksteer_xdp__destroy(skel);
	return 0;
}

static void test_ipv4(void **state)
{
	static const struct {
		const char *what, *src;
		uint8_t proto;
		uint16_t port;
		int action, reason;
	} cases[] = {
	    {"peer gateway to 15443", "172.30.1.1", 6, 15443, XDP_PASS, KS_GUARD_PASS_ALLOWED},
	    {"outsider to 15443", "172.30.99.1", 6, 15443, XDP_DROP, KS_GUARD_DROP_DENIED},
	    {"next address to 15443", "172.30.1.2", 6, 15443, XDP_DROP, KS_GUARD_DROP_DENIED},
	    {"own cluster to 15008", "10.2.0.11", 6, 15008, XDP_PASS, KS_GUARD_PASS_ALLOWED},
	    {"outsider to 15008", "192.0.2.1", 6, 15008, XDP_DROP, KS_GUARD_DROP_DENIED},
	    {"outsider to a configured port", "192.0.2.1", 6, 15012, XDP_DROP,
	     KS_GUARD_DROP_DENIED},
	    {"outsider over UDP to 15443", "192.0.2.1", 17, 15443, XDP_DROP, KS_GUARD_DROP_DENIED},
	    {"outsider to another port", "192.0.2.1", 6, 443, XDP_PASS, KS_GUARD_PASS_OTHER},
	    {"outsider ICMP", "192.0.2.1", 1, 0, XDP_PASS, KS_GUARD_PASS_OTHER},
	};
	struct pkt p;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		eth(&p, 0, ETH_P_IP);
		ip4(&p, cases[i].src, cases[i].proto, 0);
		if (cases[i].proto == 6)
			tcp(&p, cases[i].port);
		else if (cases[i].proto == 17)
			udp(&p, cases[i].port);
		else
			put(&p, "\x08\x00\x00\x00\x00\x00\x00\x00", 8);
		expect(cases[i].what, &p, cases[i].action, cases[i].reason);
	}
}

static void test_vlan_fragments_truncated(void **state)
{
	struct pkt p;

	(void)state;
	for (int v = 1; v <= 2; v++) {
		eth(&p, v, ETH_P_IP);
		ip4(&p, "192.0.2.1", 6, 0);
		tcp(&p, 15443);
		expect(v == 1 ? "802.1Q outsider to 15443" : "QinQ outsider to 15443", &p, XDP_DROP,
		       KS_GUARD_DROP_DENIED);
		eth(&p, v, ETH_P_IP);
		ip4(&p, "10.2.0.11", 6, 0);
		tcp(&p, 15443);
		expect("VLAN-tagged allowed source", &p, XDP_PASS, KS_GUARD_PASS_ALLOWED);
	}
	/* a first fragment carries the ports and is judged; a later one of it is dropped */
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 6, 0x2000 /* MF */, 1);
	tcp(&p, 15443);
	expect("first fragment from an outsider", &p, XDP_DROP, KS_GUARD_DROP_DENIED);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 6, 185, 1);
	put(&p, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
	expect("later fragment of it", &p, XDP_DROP, KS_GUARD_DROP_LATER);
	/* cut short */
	eth(&p, 0, ETH_P_IP);
	ip4(&p, "192.0.2.1", 6, 0);
	tcp(&p, 15443);
	p.n -= 10;
	expect("TCP header cut", &p, XDP_PASS, KS_GUARD_PASS_TRUNCATED);
	eth(&p, 0, ETH_P_IP);
	put(&p, "\x45\x00\x00", 3);
	expect("IPv4 header cut", &p, XDP_PASS, KS_GUARD_PASS_TRUNCATED);
	eth(&p, 0, ETH_P_IP);
	ip4(&p, "192.0.2.1", 6, 0);
	p.b[14] = 0x4f; /* IHL 60 bytes, more than there is */
	expect("IHL past the end", &p, XDP_PASS, KS_GUARD_PASS_TRUNCATED);
	eth(&p, 1, ETH_P_IP);
	p.n -= 4;
	expect("VLAN tag cut", &p, XDP_PASS, KS_GUARD_PASS_TRUNCATED);
	/* not IP */
	eth(&p, 0, 0x0806);
	put(&p, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
	expect("ARP", &p, XDP_PASS, KS_GUARD_PASS_NOT_IP);
}

static void test_ipv6(void **state)
{
	struct pkt p;

	(void)state;
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "fd00:1:1::2", 6);
	tcp(&p, 15443);
	expect("IPv6 peer network to 15443", &p, XDP_PASS, KS_GUARD_PASS_ALLOWED);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 6);
	tcp(&p, 15443);
	expect("IPv6 outsider to 15443", &p, XDP_DROP, KS_GUARD_DROP_DENIED);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 0);
	ext6(&p, 43, 0);
	ext6(&p, 60, 1);
	ext6(&p, 6, 0);
	tcp(&p, 15008);
	expect("IPv6 outsider behind hop-by-hop, routing and destination options", &p, XDP_DROP,
	       KS_GUARD_DROP_DENIED);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 44);
	frag6(&p, 6, 0);
	tcp(&p, 15443);
	expect("IPv6 atomic fragment from an outsider", &p, XDP_DROP, KS_GUARD_DROP_DENIED);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 44);
	frag6id(&p, 6, 0, 1, 7);
	tcp(&p, 15443);
	expect("IPv6 first fragment from an outsider", &p, XDP_DROP, KS_GUARD_DROP_DENIED);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 44);
	frag6id(&p, 6, 100, 0, 7);
	put(&p, "\0\0\0\0\0\0\0\0", 8);
	expect("IPv6 later fragment of it", &p, XDP_DROP, KS_GUARD_DROP_LATER);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 17);
	udp(&p, 53);
	expect("IPv6 outsider to another port", &p, XDP_PASS, KS_GUARD_PASS_OTHER);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 0);
	ext6(&p, 6, 3);
	p.n -= 20;
	expect("IPv6 extension header cut", &p, XDP_PASS, KS_GUARD_PASS_TRUNCATED);
	eth(&p, 1, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 6);
	tcp(&p, 15443);
	expect("VLAN-tagged IPv6 outsider", &p, XDP_DROP, KS_GUARD_DROP_DENIED);
}

/* 8 zero bytes of payload, n times */
static void zeros(struct pkt *p, int n)
{
	for (int i = 0; i < n; i++)
		put(p, "\0\0\0\0\0\0\0\0", 8);
}

/* The first 8 bytes of a TCP header: ports and sequence, no flags (RFC 1858's tiny fragment). */
static void tcp8(struct pkt *p, uint16_t dport)
{
	tcp(p, dport);
	p->n -= sizeof(struct tcphdr) - 8;
}

static void test_ipv4_fragments(void **state)
{
	struct pkt p;

	(void)state;
	/* tiny first fragments: the ports may be there, the rest of the header is not */
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 6, 0x2000, 10);
	tcp8(&p, 15443);
	expect("tiny first fragment (8 bytes of TCP) from an outsider", &p, XDP_DROP,
	       KS_GUARD_DROP_FIRST_CUT);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 6, 0x2000, 11);
	tcp8(&p, 443);
	expect("tiny first fragment to another port: its header is not whole either", &p,
	       XDP_DROP, KS_GUARD_DROP_FIRST_CUT);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 17, 0x2000, 12);
	put(&p, "\x9c\x40\x3c\x53", 4);
	expect("first fragment with 4 bytes of UDP", &p, XDP_DROP, KS_GUARD_DROP_FIRST_CUT);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 6, 0x2000, 13);
	tcp(&p, 443);
	p.iplen = 20 + 8;
	expect("first fragment whose header runs past the IP length (frame padding)", &p, XDP_DROP,
	       KS_GUARD_DROP_FIRST_CUT);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "10.2.0.11", 6, 0x2000, 14);
	tcp8(&p, 15443);
	expect("tiny first fragment from an allowed network", &p, XDP_PASS, KS_GUARD_PASS_ALLOWED);
	eth(&p, 0, ETH_P_IP);
	ip4(&p, "192.0.2.1", 6, 0);
	tcp8(&p, 15443);
	expect("not a fragment, TCP cut: the stack drops it", &p, XDP_PASS,
	       KS_GUARD_PASS_TRUNCATED);

	/* later fragments pass only from allowed networks, or when their first passed */
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 17, 0x2000, 20);
	udp(&p, 53);
	zeros(&p, 2);
	expect("outsider's first fragment to another port", &p, XDP_PASS, KS_GUARD_PASS_OTHER);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 17, 3, 20);
	zeros(&p, 2);
	expect("its later fragment", &p, XDP_PASS, KS_GUARD_PASS_FRAGMENT);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 6, 3, 20);
	zeros(&p, 2);
	expect("same ID, another protocol: another datagram", &p, XDP_DROP, KS_GUARD_DROP_LATER);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.9", 17, 3, 20);
	zeros(&p, 2);
	expect("same ID from another outsider", &p, XDP_DROP, KS_GUARD_DROP_LATER);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 17, 3, 21);
	zeros(&p, 2);
	expect("a later fragment before (or without) its first", &p, XDP_DROP,
	       KS_GUARD_DROP_LATER);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 17, 0x2000, 21);
	udp(&p, 53);
	expect("then its first", &p, XDP_PASS, KS_GUARD_PASS_OTHER);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "172.30.1.1", 6, 0x2000 | 3, 22);
	zeros(&p, 2);
	expect("a later fragment from an allowed network", &p, XDP_PASS, KS_GUARD_PASS_FRAGMENT);

	/* RFC 1858's overlap: offset 1 rewrites TCP's flags (not its ports) after the first */
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 6, 0x2000, 30);
	tcp(&p, 443);
	expect("outsider's first fragment to another port (TCP)", &p, XDP_PASS,
	       KS_GUARD_PASS_OTHER);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 6, 1, 30);
	zeros(&p, 2);
	expect("an overlapping TCP fragment at offset 1 (RFC 1858)", &p, XDP_DROP,
	       KS_GUARD_DROP_OVERLAP);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "192.0.2.1", 6, 1, 31);
	zeros(&p, 2);
	expect("offset 1 with no first", &p, XDP_DROP, KS_GUARD_DROP_OVERLAP);
	eth(&p, 0, ETH_P_IP);
	ip4id(&p, "10.2.0.11", 6, 1, 32);
	zeros(&p, 2);
	expect("offset 1 from an allowed network: the stack discards overlaps", &p, XDP_PASS,
	       KS_GUARD_PASS_FRAGMENT);

	/* behind VLAN tags */
	for (int v = 1; v <= 2; v++) {
		eth(&p, v, ETH_P_IP);
		ip4id(&p, "192.0.2.1", 6, 0x2000, (uint16_t)(40 + v));
		tcp8(&p, 15443);
		expect(v == 1 ? "802.1Q tiny first fragment" : "QinQ tiny first fragment", &p,
		       XDP_DROP, KS_GUARD_DROP_FIRST_CUT);
		eth(&p, v, ETH_P_IP);
		ip4id(&p, "192.0.2.1", 6, 185, (uint16_t)(40 + v));
		zeros(&p, 2);
		expect(v == 1 ? "802.1Q later fragment" : "QinQ later fragment", &p, XDP_DROP,
		       KS_GUARD_DROP_LATER);
		eth(&p, v, ETH_P_IP);
		ip4id(&p, "192.0.2.1", 17, 0x2000, (uint16_t)(50 + v));
		udp(&p, 9);
		expect("VLAN first fragment to another port", &p, XDP_PASS, KS_GUARD_PASS_OTHER);
		eth(&p, v, ETH_P_IP);
		ip4id(&p, "192.0.2.1", 17, 185, (uint16_t)(50 + v));
		zeros(&p, 2);
		expect("VLAN later fragment of it", &p, XDP_PASS, KS_GUARD_PASS_FRAGMENT);
	}
}

static void test_ipv6_fragments_chain(void **state)
{
	struct pkt p;

	(void)state;
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 44);
	frag6id(&p, 6, 0, 1, 100);
	tcp8(&p, 15443);
	expect("IPv6 tiny first fragment", &p, XDP_DROP, KS_GUARD_DROP_FIRST_CUT);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 44);
	frag6id(&p, 60, 0, 1, 101);
	ext6(&p, 6, 0);
	expect("IPv6 first fragment ending with the chain: TCP in the next (RFC 8200 4.5)", &p,
	       XDP_DROP, KS_GUARD_DROP_FIRST_CUT);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 44);
	frag6id(&p, 60, 0, 1, 102);
	ext6(&p, 6, 0);
	tcp(&p, 443);
	p.iplen = 8 + 8 + 8;
	expect("IPv6 first fragment whose header runs past the payload length", &p, XDP_DROP,
	       KS_GUARD_DROP_FIRST_CUT);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "fd00:1:1::2", 44);
	frag6id(&p, 6, 0, 1, 103);
	tcp8(&p, 15443);
	expect("IPv6 tiny first fragment from an allowed network", &p, XDP_PASS,
	       KS_GUARD_PASS_ALLOWED);
	eth(&p, 1, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 44);
	frag6id(&p, 6, 0, 1, 104);
	tcp8(&p, 15008);
	expect("802.1Q IPv6 tiny first fragment", &p, XDP_DROP, KS_GUARD_DROP_FIRST_CUT);

	/* later fragments: the nexthdr of a later one is not the datagram's (RFC 8200 4.5) */
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 0);
	ext6(&p, 44, 0);
	frag6id(&p, 17, 0, 1, 110);
	udp(&p, 53);
	zeros(&p, 2);
	expect("IPv6 outsider's first fragment to another port", &p, XDP_PASS,
	       KS_GUARD_PASS_OTHER);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 44);
	frag6id(&p, 59, 3, 0, 110);
	zeros(&p, 2);
	expect("its later fragment", &p, XDP_PASS, KS_GUARD_PASS_FRAGMENT);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 44);
	frag6id(&p, 6, 1, 0, 111);
	zeros(&p, 2);
	expect("IPv6 later fragment at offset 1, no first", &p, XDP_DROP, KS_GUARD_DROP_LATER);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "fd00:1:1::2", 44);
	frag6id(&p, 6, 3, 0, 112);
	zeros(&p, 2);
	expect("IPv6 later fragment from an allowed network", &p, XDP_PASS,
	       KS_GUARD_PASS_FRAGMENT);
	eth(&p, 2, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 44);
	frag6id(&p, 6, 3, 0, 113);
	zeros(&p, 2);
	expect("QinQ IPv6 later fragment", &p, XDP_DROP, KS_GUARD_DROP_LATER);

	/* the walk: six extension headers are judged, a seventh is not */
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 0);
	for (int i = 0; i < 5; i++)
		ext6(&p, 60, 0);
	ext6(&p, 6, 0);
	tcp(&p, 443);
	expect("six extension headers, another port", &p, XDP_PASS, KS_GUARD_PASS_OTHER);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 0);
	for (int i = 0; i < 5; i++)
		ext6(&p, 60, 0);
	ext6(&p, 6, 0);
	tcp(&p, 15443);
	expect("six extension headers, outsider to 15443", &p, XDP_DROP, KS_GUARD_DROP_DENIED);
	for (int n = 7; n <= 9; n++) {
		eth(&p, 0, ETH_P_IPV6);
		ip6(&p, "2001:db8::1", 0);
		for (int i = 0; i < n - 1; i++)
			ext6(&p, 60, 0);
		ext6(&p, 6, 0);
		tcp(&p, 443);
		expect(n == 7 ? "seven extension headers" : "eight or nine extension headers", &p,
		       XDP_DROP, KS_GUARD_DROP_EXT_CHAIN);
	}
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 60);
	for (int i = 0; i < 6; i++)
		ext6(&p, i == 5 ? 44 : 60, 0);
	frag6id(&p, 6, 0, 1, 120);
	tcp(&p, 15443);
	expect("a fragment header seventh", &p, XDP_DROP, KS_GUARD_DROP_EXT_CHAIN);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "fd00:1:1::2", 0);
	for (int i = 0; i < 7; i++)
		ext6(&p, 60, 0);
	ext6(&p, 6, 0);
	tcp(&p, 15443);
	expect("eight extension headers from an allowed network", &p, XDP_PASS,
	       KS_GUARD_PASS_ALLOWED);
	eth(&p, 0, ETH_P_IPV6);
	ip6(&p, "2001:db8::1", 6);
	tcp(&p, 15443);
	p.iplen = 0;
	expect("IPv6 payload length 0 (a jumbogram's): the frame bounds it", &p, XDP_DROP,
	       KS_GUARD_DROP_DENIED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ipv4),
	    cmocka_unit_test(test_vlan_fragments_truncated),
	    cmocka_unit_test(test_ipv6),
	    cmocka_unit_test(test_ipv4_fragments),
	    cmocka_unit_test(test_ipv6_fragments_chain),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
