// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The XDP guard on node and gateway uplinks: a packet to a mesh port (15443,
 * 15008, or any the agent guards) whose source is outside the allowed
 * networks (Istio's meshNetworks) is dropped before the stack sees it.
 *
 * It fails closed on what it cannot judge by port, for sources outside the
 * allowed networks: the stack reassembles fragments, so a first fragment cut
 * short of its TCP/UDP header (RFC 1858's tiny fragment; RFC 8200 4.5 has the
 * first fragment carry the whole chain) and an IPv6 chain longer than the
 * walk are dropped. A later fragment carries no ports: it passes only when
 * the guard passed its datagram's first fragment (ks_gfrags), so one
 * whose first was dropped, came later or was never sent is dropped too.
 * Ports sit in the first 4 bytes of TCP and UDP and a later fragment starts
 * 8 or more bytes in, so in IPv4 none can rewrite them; Linux discards
 * overlapping fragments anyway (IPv4 since 4.19, IPv6 per RFC 5722) and
 * RFC 1858's offset-1 TCP fragment is dropped here. (Linux drops an IPv6
 * first fragment with a cut TCP/UDP header itself, ipv6_frag_thdr_truncated,
 * but not one whose chain is cut, nor any IPv4 one.)
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "maps/ksteer_maps.h"
#include "bpf/lib/parse.h"

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

/* Datagrams whose first fragment passed from outside the allowed networks. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KS_GUARD_MAX_FRAGS);
	__type(key, struct ks_frag_key);
	__type(value, __u32);
} ks_gfrags SEC(".maps");

static __always_inline int verdict(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&ks_guard_stats, &reason);

	if (v)
		*v += 1;
	return reason >= KS_GUARD_DROP_DENIED ? XDP_DROP : XDP_PASS;
}

static __always_inline int src_allowed(struct ks_pkt *pk)
{
	struct ks_lpm_key key = {.prefixlen = 128, .addr = pk->key.src};

	return bpf_map_lookup_elem(&ks_guard_allow, &key) != NULL;
}

/* A packet the ports cannot judge: only the source and the fragment state can. */
static __always_inline __u32 judge_unported(struct ks_pkt *pk, int parsed)
{
	if (src_allowed(pk))
		return pk->frag == KS_FRAG_LATER ? KS_GUARD_PASS_FRAGMENT : KS_GUARD_PASS_ALLOWED;
	if (parsed == KS_PARSE_FIRST_CUT)
		return KS_GUARD_DROP_FIRST_CUT;
	if (parsed == KS_PARSE_LONG_CHAIN)
		return KS_GUARD_DROP_EXT_CHAIN;
	if (pk->l4proto == KS_IPPROTO_TCP && pk->frag_off == 1)
		return KS_GUARD_DROP_OVERLAP;
	if (bpf_map_lookup_elem(&ks_gfrags, &pk->key))
		return KS_GUARD_PASS_FRAGMENT;
	return KS_GUARD_DROP_LATER;
}

static __always_inline __u32 judge(struct ks_pkt *pk, int parsed)
{
	__u32 one = 1;

	if (parsed == KS_PARSE_NOT_IP)
		return KS_GUARD_PASS_NOT_IP;
	if (parsed == KS_PARSE_CUT)
		return KS_GUARD_PASS_TRUNCATED;
	if (parsed != KS_PARSE_OK || pk->frag == KS_FRAG_LATER)
		return judge_unported(pk, parsed);
	if ((pk->l4proto != KS_IPPROTO_TCP && pk->l4proto != KS_IPPROTO_UDP) ||
	    !bpf_map_lookup_elem(&ks_guard_ports, &pk->dport)) {
		/* an outsider's datagram to another port: its later fragments may pass */
		if (pk->frag == KS_FRAG_FIRST && !src_allowed(pk))
			bpf_map_update_elem(&ks_gfrags, &pk->key, &one, BPF_ANY);
		return KS_GUARD_PASS_OTHER;
	}
	return src_allowed(pk) ? KS_GUARD_PASS_ALLOWED : KS_GUARD_DROP_DENIED;
}

SEC("xdp")
int ksteer_guard(struct xdp_md *ctx)
{
	struct ks_pkt pk = {};
	int parsed;

	parsed = ks_parse_frame(&pk, (void *)(long)ctx->data, (void *)(long)ctx->data_end);
	return verdict(judge(&pk, parsed));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
