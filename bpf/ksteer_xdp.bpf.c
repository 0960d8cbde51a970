// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The XDP guard on node and gateway uplinks: a packet to a mesh port (15443,
 * 15008, or any the agent guards) whose source is outside the allowed
 * networks (Istio's meshNetworks) is dropped before the stack sees it.
 * Everything the guard cannot positively judge passes: the stack decides.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "maps/ksteer_maps.h"
#include "bpf/lib/route.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_DSTOPTS 60
#define IPPROTO_AH 51
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, KS_GUARD_MAX_NETS);
	__type(key, struct ks_lpm_key);
	__type(value, __u32);
} ks_guard_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KS_GUARD_MAX_PORTS);
	__type(key, __u16); /* host order */
	__type(value, __u32);
} ks_guard_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KS_GUARD_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ks_guard_stats SEC(".maps");

static __always_inline int verdict(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&ks_guard_stats, &reason);

	if (v)
		*v += 1;
	return reason == KS_GUARD_DROP_DENIED ? XDP_DROP : XDP_PASS;
}

/* The destination port of a TCP or UDP header at l4, or -1 (truncated), 0 (not TCP/UDP). */
static __always_inline int dst_port(void *l4, void *end, __u8 proto)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > end)
			return -1;
		return bpf_ntohs(th->dest);
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > end)
			return -1;
		return bpf_ntohs(uh->dest);
	}
	return 0;
}

static __always_inline int judge(struct ks_addr *src, int port)
{
	struct ks_lpm_key key = {.prefixlen = 128};
	__u16 p = (__u16)port;

	if (port < 0)
		return verdict(KS_GUARD_PASS_TRUNCATED);
	if (!port || !bpf_map_lookup_elem(&ks_guard_ports, &p))
		return verdict(KS_GUARD_PASS_OTHER);
	key.addr = *src;
	if (bpf_map_lookup_elem(&ks_guard_allow, &key))
		return verdict(KS_GUARD_PASS_ALLOWED);
	return verdict(KS_GUARD_DROP_DENIED);
}

SEC("xdp")
int ksteer_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ks_addr src;
	void *p;
	__u16 proto;

	if ((void *)(eth + 1) > end)
		return verdict(KS_GUARD_PASS_TRUNCATED);
	proto = eth->h_proto;
	p = eth + 1;
	/* up to two VLAN tags (802.1Q, or 802.1ad outer with 802.1Q inner) */
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *vh = p;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > end)
			return verdict(KS_GUARD_PASS_TRUNCATED);
		proto = vh->h_vlan_encapsulated_proto;
		p = vh + 1;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = p;
		__u32 hl;

		if ((void *)(ip + 1) > end)
			return verdict(KS_GUARD_PASS_TRUNCATED);
		hl = ip->ihl * 4;
		if (hl < sizeof(*ip) || p + hl > end)
			return verdict(KS_GUARD_PASS_TRUNCATED);
		if (ip->frag_off & bpf_htons(IP_OFFSET))
			return verdict(KS_GUARD_PASS_FRAGMENT);
		ks_addr_from_v4(&src, ip->saddr);
		return judge(&src, dst_port(p + hl, end, ip->protocol));
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = p;
		__u8 nh;

		if ((void *)(ip6 + 1) > end)
			return verdict(KS_GUARD_PASS_TRUNCATED);
		__builtin_memcpy(&src, &ip6->saddr, sizeof(src));
		nh = ip6->nexthdr;
		p = ip6 + 1;
		/* extension headers, a bounded walk */
		for (int i = 0; i < 6; i++) {
			struct ipv6_opt_hdr *oh = p;

			if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING ||
			    nh == IPPROTO_DSTOPTS) {
				if ((void *)(oh + 1) > end)
					return verdict(KS_GUARD_PASS_TRUNCATED);
				nh = oh->nexthdr;
				p += (oh->hdrlen + 1) * 8;
			} else if (nh == IPPROTO_AH) {
				if ((void *)(oh + 1) > end)
					return verdict(KS_GUARD_PASS_TRUNCATED);
				nh = oh->nexthdr;
				p += (oh->hdrlen + 2) * 4;
			} else if (nh == IPPROTO_FRAGMENT) {
				struct frag_hdr *fh = p;

				if ((void *)(fh + 1) > end)
					return verdict(KS_GUARD_PASS_TRUNCATED);
				if (fh->frag_off & bpf_htons(0xfff8))
					return verdict(KS_GUARD_PASS_FRAGMENT);
				nh = fh->nexthdr;
				p = fh + 1;
			} else {
				break;
			}
		}
		return judge(&src, dst_port(p, end, nh));
	}
	return verdict(KS_GUARD_PASS_NOT_IP);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
