/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Addresses as the maps hold them: one 16-byte form for both families. Free
 * of BPF helpers, shared by the programs and the agent's compiler.
 */
#ifndef KSTEER_ADDR_H
#define KSTEER_ADDR_H

#include "maps/ksteer_maps.h"

#ifndef __BPF__
#include <bpf/bpf_endian.h>
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#endif

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

#endif
