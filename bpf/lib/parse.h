/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A frame's headers up to the TCP/UDP destination port: Ethernet with up to
 * two VLAN tags, IPv4 or IPv6 with a bounded walk of extension headers, and
 * the fragment it is. Bounds before every read, by both the frame and the IP
 * length: a header past the IP length is not the stack's, even when the frame
 * carries bytes there. No maps: what to do with the result is the caller's.
 */
#ifndef KSTEER_PARSE_H
#define KSTEER_PARSE_H

#include "bpf/lib/addr.h"

#define KS_ETH_P_IP 0x0800
#define KS_ETH_P_IPV6 0x86DD
#define KS_ETH_P_8021Q 0x8100
#define KS_ETH_P_8021AD 0x88A8
#define KS_IPPROTO_HOPOPTS 0
#define KS_IPPROTO_TCP 6
#define KS_IPPROTO_UDP 17
#define KS_IPPROTO_ROUTING 43
#define KS_IPPROTO_FRAGMENT 44
#define KS_IPPROTO_AH 51
#define KS_IPPROTO_DSTOPTS 60
#define KS_IP_MF 0x2000
#define KS_IP_OFFSET 0x1fff
#define KS_IP6_OFFSET 0xfff8
#define KS_IP6_MF 0x0001

/* IPv6 extension headers walked; a chain still going after them is not judged. */
#define KS_IPV6_EXT_MAX 6

enum ks_parse {
	KS_PARSE_OK, /* whole headers; dport is set for TCP/UDP unless a later fragment */
	KS_PARSE_NOT_IP,
	KS_PARSE_CUT, /* not a fragment, headers cut: the stack drops it too */
	KS_PARSE_FIRST_CUT, /* a first fragment without its whole header chain (RFC 8200 4.5) */
	KS_PARSE_LONG_CHAIN, /* more than KS_IPV6_EXT_MAX extension headers */
};

enum ks_frag {
	KS_FRAG_NONE, /* a whole datagram (an IPv6 atomic fragment too) */
	KS_FRAG_FIRST, /* offset 0, more to come: carries the ports */
	KS_FRAG_LATER, /* offset > 0: no ports, only the reassembly key */
};

struct ks_pkt {
	struct ks_frag_key key; /* src, dst, fragment id and (IPv4) protocol */
	__u16 dport; /* host order, TCP/UDP only */
	__u16 frag_off; /* in 8-byte units */
	__u8 l4proto; /* upper-layer protocol; 0 for an IPv6 later fragment */
	__u8 frag; /* enum ks_frag */
};

static __always_inline int ks_parse_cut(const struct ks_pkt *pk)
{
	return pk->frag == KS_FRAG_FIRST ? KS_PARSE_FIRST_CUT : KS_PARSE_CUT;
}

/* The upper-layer header at l4 with room bytes of IP payload left. */
static __always_inline int ks_parse_l4(struct ks_pkt *pk, void *l4, void *end, __u32 room)
{
	if (pk->l4proto == KS_IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > end || room < sizeof(*th))
			return ks_parse_cut(pk);
		pk->dport = bpf_ntohs(th->dest);
	} else if (pk->l4proto == KS_IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > end || room < sizeof(*uh))
			return ks_parse_cut(pk);
		pk->dport = bpf_ntohs(uh->dest);
	}
	return KS_PARSE_OK;
}

static __always_inline int ks_parse_ipv4(struct ks_pkt *pk, void *p, void *end)
{
	struct iphdr *ip = p;
	__u32 hl, len;
	__u16 frag;

	if ((void *)(ip + 1) > end)
		return KS_PARSE_CUT;
	hl = ip->ihl * 4;
	len = bpf_ntohs(ip->tot_len);
	if (hl < sizeof(*ip) || p + hl > end || len < hl)
		return KS_PARSE_CUT;
	ks_addr_from_v4(&pk->key.src, ip->saddr);
	ks_addr_from_v4(&pk->key.dst, ip->daddr);
	pk->key.id = ip->id;
	pk->key.proto = ip->protocol;
	pk->l4proto = ip->protocol;
	frag = bpf_ntohs(ip->frag_off);
	pk->frag_off = frag & KS_IP_OFFSET;
	if (pk->frag_off)
		pk->frag = KS_FRAG_LATER;
	else if (frag & KS_IP_MF)
		pk->frag = KS_FRAG_FIRST;
	if (pk->frag == KS_FRAG_LATER)
		return KS_PARSE_OK;
	return ks_parse_l4(pk, p + hl, end, len - hl);
}

static __always_inline int ks_ipv6_is_ext(__u8 nh)
{
	return nh == KS_IPPROTO_HOPOPTS || nh == KS_IPPROTO_ROUTING || nh == KS_IPPROTO_DSTOPTS ||
	       nh == KS_IPPROTO_AH || nh == KS_IPPROTO_FRAGMENT;
}

static __always_inline int ks_parse_ipv6(struct ks_pkt *pk, void *p, void *end)
{
	struct ipv6hdr *ip6 = p;
	__u32 room;
	__u8 nh;

	if ((void *)(ip6 + 1) > end)
		return KS_PARSE_CUT;
	__builtin_memcpy(&pk->key.src, &ip6->saddr, sizeof(pk->key.src));
	__builtin_memcpy(&pk->key.dst, &ip6->daddr, sizeof(pk->key.dst));
	/* a payload length of 0 is a jumbogram's (RFC 2675): only the frame bounds it */
	room = ip6->payload_len ? bpf_ntohs(ip6->payload_len) : ~0U;
	nh = ip6->nexthdr;
	p = ip6 + 1;
	for (int i = 0; i < KS_IPV6_EXT_MAX; i++) {
		struct ipv6_opt_hdr *oh = p;
		struct frag_hdr *fh = p;
		__u32 len;

		if (!ks_ipv6_is_ext(nh))
			break;
		if (nh == KS_IPPROTO_FRAGMENT) {
			if ((void *)(fh + 1) > end || room < sizeof(*fh))
				return ks_parse_cut(pk);
			pk->key.id = fh->identification;
			pk->frag_off = bpf_ntohs(fh->frag_off) >> 3;
			if (pk->frag_off) {
				pk->frag = KS_FRAG_LATER;
				return KS_PARSE_OK;
			}
			if (fh->frag_off & bpf_htons(KS_IP6_MF))
				pk->frag = KS_FRAG_FIRST;
			nh = fh->nexthdr;
			len = sizeof(*fh);
		} else {
			if ((void *)(oh + 1) > end)
				return ks_parse_cut(pk);
			len = nh == KS_IPPROTO_AH ? (oh->hdrlen + 2) * 4 : (oh->hdrlen + 1) * 8;
			if (room < len)
				return ks_parse_cut(pk);
			nh = oh->nexthdr;
		}
		p += len;
		room -= len;
	}
	if (ks_ipv6_is_ext(nh))
		return KS_PARSE_LONG_CHAIN;
	pk->l4proto = nh;
	return ks_parse_l4(pk, p, end, room);
}

/* Fills pk (zeroed by the caller) from the frame in [data, end); enum ks_parse. */
static __always_inline int ks_parse_frame(struct ks_pkt *pk, void *data, void *end)
{
	struct ethhdr *eth = data;
	void *p = eth + 1;
	__u16 proto;

	if ((void *)(eth + 1) > end)
		return KS_PARSE_CUT;
	proto = eth->h_proto;
	/* up to two VLAN tags (802.1Q, or 802.1ad outer with 802.1Q inner) */
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *vh = p;

		if (proto != bpf_htons(KS_ETH_P_8021Q) && proto != bpf_htons(KS_ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > end)
			return KS_PARSE_CUT;
		proto = vh->h_vlan_encapsulated_proto;
		p = vh + 1;
	}
	if (proto == bpf_htons(KS_ETH_P_IP))
		return ks_parse_ipv4(pk, p, end);
	if (proto == bpf_htons(KS_ETH_P_IPV6))
		return ks_parse_ipv6(pk, p, end);
	return KS_PARSE_NOT_IP;
}

#endif
