/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What a connect (or a UDP send) becomes: the frontend's backend, the shim's
 * port, the agent's resolver, or what was dialled. Address-family free: the
 * entries hand in the address as struct ks_addr (IPv4 v4-mapped) and write
 * the result back into their context.
 */
#ifndef KSTEER_CONNECT_H
#define KSTEER_CONNECT_H

#include "bpf/lib/route.h"
#include "bpf/lib/sock_maps.h"

#define KS_IPPROTO_UDP 17

/* What a rewritten socket dialled, for getpeername (and sockops, for the shim); 0 or -ENOMEM. */
static __always_inline int remember(struct bpf_sock *sk, const struct ks_addr *addr, __be16 port,
				    __u32 frontend_id, __u32 flags)
{
	struct ks_sock *st = bpf_sk_storage_get(&ks_sock, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);

	if (!st)
		return -12; /* -ENOMEM */
	st->orig_addr = *addr;
	st->orig_port = port;
	st->frontend_id = frontend_id;
	st->flags = flags;
	return 0;
}

/* The frontend addr:port:proto is in generation gen, or NULL (the bitmap first: no hashing). */
static __always_inline struct ks_frontend *frontend(__u32 gen, const struct ks_addr *addr,
						    __be16 port, __u8 proto)
{
	struct ks_frontend_key key = {};
	__u32 bit = ks_fe_bit(addr, port, proto);
	__u32 i = gen * KS_FILTER_WORDS + bit / 64;
	__u64 *word = bpf_map_lookup_elem(&ks_fe_filter, &i);

	if (!word || !(*word & (1ULL << (bit % 64))))
		return NULL;
	key.gen = gen;
	key.addr = *addr;
	key.port = port;
	key.proto = proto;
	return bpf_map_lookup_elem(&ks_frontends, &key);
}

/* A backend by the frontend's weights: a draw over the running sums, then one of the dest's. */
static __always_inline struct ks_backend *pick(const struct ks_frontend *fe)
{
	__u32 r = bpf_get_prandom_u32() % fe->weight_total, i;
	struct ks_dest *d;

	/* a route's destinations are adjacent in ks_dests: one or two cache lines */
	for (int j = 0; j < KS_MAX_DESTS; j++) {
		if ((__u32)j >= fe->dest_count)
			break;
		i = fe->dest_first + j;
		d = bpf_map_lookup_elem(&ks_dests, &i);
		if (!d)
			break;
		if (!ks_dest_hit(r, d->weight_cum))
			continue;
		if (!d->backend_count)
			return NULL;
		i = d->backend_first + bpf_get_prandom_u32() % d->backend_count;
		return bpf_map_lookup_elem(&ks_backends, &i);
	}
	return NULL;
}

/*
 * Route one connect; on success addr and port hold where to go instead.
 * Returns 1 to let the connect proceed (rewritten or not), 0 to refuse it.
 */
static __always_inline int route_connect(struct bpf_sock_addr *ctx, struct ks_addr *addr,
					 __be16 *port)
{
	struct ks_config *cfg = ks_cfg();
	struct ks_frontend *fe;
	struct ks_backend *be;

	if (!cfg)
		return 1;
	stat_inc(KS_STAT_CONNECT_SEEN);
	if (is_self(ctx->sk)) {
		stat_inc(KS_STAT_CONNECT_SELF);
		return 1;
	}
	fe = frontend(cfg->active & (KS_GENERATIONS - 1), addr, *port, (__u8)ctx->protocol);
	if (!fe) {
		stat_inc(KS_STAT_CONNECT_MISS);
		return 1;
	}
	if (fe->flags & KS_FE_SHIM) {
		/* sockops finds these by their storage: a cheap miss for every other socket */
		remember(ctx->sk, addr, *port, fe->id, KS_SOCK_REWRITTEN | KS_SOCK_TO_SHIM);
		shim_addr(addr);
		*port = ks_knobs.shim_port;
		stat_inc(KS_STAT_CONNECT_SHIM);
		return 1;
	}
	if ((fe->flags & KS_FE_NO_UPSTREAM) || !fe->weight_total)
		goto no_upstream;
	/* getpeername shows what it dialled: this allocation is most of a routed connect's cost */
	remember(ctx->sk, addr, *port, fe->id, KS_SOCK_REWRITTEN);
	be = pick(fe);
	if (!be)
		goto no_upstream;
	*addr = be->addr;
	*port = be->port;
	stat_inc(KS_STAT_CONNECT_ROUTED);
	return 1;
no_upstream:
	stat_inc(KS_STAT_CONNECT_NO_UPSTREAM);
	return 0; /* connect fails with EPERM: no healthy upstream */
}

/*
 * Pods' DNS (UDP/53, to whichever resolver they asked) goes to the node
 * agent's resolver; the socket remembers whom it asked, so replies and
 * getpeername show that resolver. Returns 1 when redirected.
 */
static __always_inline int dns_redirect(struct bpf_sock_addr *ctx)
{
	struct ks_addr asked, shim;

	shim_addr(&shim);
	if (!ks_knobs.dns_port || !ks_addr_is_v4(&shim))
		return 0;
	if (ctx->protocol != KS_IPPROTO_UDP || ctx->user_port != bpf_htons(53))
		return 0;
	if (is_self(ctx->sk))
		return 0; /* the agent forwarding upstream */
	ks_addr_from_v4(&asked, ctx->user_ip4);
	if (remember(ctx->sk, &asked, (__be16)ctx->user_port, 0, KS_SOCK_REWRITTEN | KS_SOCK_DNS))
		return 0; /* replies could not be given their resolver's address back */
	ctx->user_ip4 = shim.a[3];
	ctx->user_port = ks_knobs.dns_port;
	stat_inc(KS_STAT_DNS_REDIRECTED);
	return 1;
}

#endif
