/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The routing core of the socket programs: pure functions over the image
 * entries, free of BPF helpers, so a host-compiled test can drive them.
 */
#ifndef KSTEER_ROUTE_H
#define KSTEER_ROUTE_H

/* IPv4 as ::ffff:a.b.c.d, the one key form for connect4 and connect6 alike. */
static __always_inline void ks_addr_from_v4(struct ks_addr *a, __be32 ip4)
{
	a->a[0] = 0;
	a->a[1] = 0;
	a->a[2] = bpf_htonl(0xffff);
	a->a[3] = ip4;
}

static __always_inline int ks_addr_is_v4(const struct ks_addr *a)
{
	return a->a[0] == 0 && a->a[1] == 0 && a->a[2] == bpf_htonl(0xffff);
}

/* A destination is hit by draw r when r is below its running weight sum. */
static __always_inline int ks_dest_hit(__u32 r, __u32 weight_cum)
{
	return r < weight_cum;
}

#endif
