/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The routing core of the socket programs: pure functions over the image
 * entries, free of BPF helpers, so the compiler and host-compiled tests use
 * the very same code (ks_fe_slot_home must agree on both sides).
 */
#ifndef KSTEER_ROUTE_H
#define KSTEER_ROUTE_H

#include "bpf/lib/addr.h"

/*
 * A frontend key's home slot in its generation's ks_fe_slots: three rounds
 * of multiply and fold over the address words as they lie in memory, port
 * and protocol; the top KS_SLOT_SHIFT bits of the product.
 */
static __always_inline __u32 ks_fe_slot_home(const struct ks_addr *a, __be16 port, __u8 proto)
{
	__u64 h = ((__u64)a->a[0] << 32 | a->a[1]) * 0x9e3779b97f4a7c15ULL;

	h = (h ^ (h >> 29) ^ ((__u64)a->a[2] << 32 | a->a[3])) * 0xff51afd7ed558ccdULL;
	h = (h ^ (h >> 32) ^ ((__u64)port << 8 | proto)) * 0xc4ceb9fe1a85ec53ULL;
	return (__u32)(h >> (64 - KS_SLOT_SHIFT));
}

/* A destination is hit by draw r when r is below its running weight sum. */
static __always_inline int ks_dest_hit(__u32 r, __u32 weight_cum)
{
	return r < weight_cum;
}

/* A slot holds the frontend addr:port:proto. */
static __always_inline int ks_slot_is(const struct ks_fe_slot *s, const struct ks_addr *a,
				      __be16 port, __u8 proto)
{
	return s->addr.a[3] == a->a[3] && s->port == port && s->proto == proto &&
	       s->addr.a[2] == a->a[2] && s->addr.a[1] == a->a[1] && s->addr.a[0] == a->a[0];
}

#endif
