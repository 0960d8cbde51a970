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

/* What a socket sent to the shim or the resolver dialled (sockops, getpeername, recvmsg); 0 or -ENOMEM. */
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

/*
 * What a routed socket dialled, for getpeername: its slot in the ks_peers
 * ring, no allocation; with the backend it was sent to, so a socket connected
 * elsewhere since is not rewritten. Flags of an earlier connect (to the shim,
 * to the resolver) are dropped from its storage, if it has any.
 */
static __always_inline void peer_record(struct bpf_sock_addr *ctx, const struct ks_addr *addr,
					__be16 port, const struct ks_backend *be)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	__u32 i = (__u32)cookie & (KS_PEERS - 1);
	struct ks_peer *p = bpf_map_lookup_elem(&ks_peers, &i);
	struct ks_sock *st = bpf_sk_storage_get(&ks_sock, ctx->sk, NULL, 0);

	if (st)
		st->flags &= ~(KS_SOCK_REWRITTEN | KS_SOCK_TO_SHIM | KS_SOCK_DNS);
	if (!p)
		return;
	p->cookie = 0;
	p->addr = *addr;
	p->port = port;
	p->backend_port = be->port;
	p->backend_lo = be->addr.a[3];
	p->cookie = cookie;
}

/* The ring's record of this socket connected to peer_lo:peer_port, or NULL. */
static __always_inline struct ks_peer *peer_of(struct bpf_sock_addr *ctx, __be32 peer_lo,
					       __be16 peer_port)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	__u32 i = (__u32)cookie & (KS_PEERS - 1);
	struct ks_peer *p = bpf_map_lookup_elem(&ks_peers, &i);

	if (!p || p->cookie != cookie || p->backend_lo != peer_lo || p->backend_port != peer_port)
		return NULL;
	return p;
}

/*
 * The frontend addr:port:proto of generation gen, or NULL: its home's bit in
 * ks_fe_used, then the slots of its window in ks_fe_slots (one line each, most often the first), the hash only
 * when the home slot says a key of its window overflowed. *first is the
 * frontend's first destination when the slot carries it.
 */
static __always_inline struct ks_frontend *frontend(__u32 gen, const struct ks_addr *addr,
						    __be16 port, __u8 proto,
						    const struct ks_dest **first)
{
	__u32 home = ks_fe_slot_home(addr, port, proto), i = gen * KS_SLOT_WORDS + home / 64;
	__u64 *used = bpf_map_lookup_elem(&ks_fe_used, &i);
	struct ks_frontend_key key = {};
	struct ks_fe_slot *s;
	__u8 home_state = 0;

	*first = NULL;
	if (!used || !(*used & (1ULL << (home % 64))))
		return NULL; /* a free home: no key of this home anywhere */
	for (int j = 0; j < KS_SLOT_PROBES; j++) {
		i = gen << KS_SLOT_SHIFT | ((home + j) & (KS_SLOTS - 1));
		s = bpf_map_lookup_elem(&ks_fe_slots, &i);
		if (!s || !s->state)
			return NULL; /* a free slot: the key would lie here or before */
		if (j == 0)
			home_state = s->state;
		if (ks_slot_is(s, addr, port, proto)) {
			if (s->fe.dest_count)
				*first = &s->first;
			return &s->fe;
		}
	}
	if (!(home_state & KS_SLOT_OVERFLOW))
		return NULL;
	key.gen = gen;
	key.addr = *addr;
	key.port = port;
	key.proto = proto;
	return bpf_map_lookup_elem(&ks_frontends, &key);
}

/* One of a destination's backends, uniformly; NULL when it has none. */
static __always_inline struct ks_backend *dest_backend(const struct ks_dest *d)
{
	__u32 i;

	if (!d->backend_count)
		return NULL;
	i = d->backend_first + bpf_get_prandom_u32() % d->backend_count;
	return bpf_map_lookup_elem(&ks_backends, &i);
}

/*
 * A backend by the frontend's weights: a draw over the running sums, the
 * first destination from the slot, the rest from ks_dests (adjacent: one or
 * two cache lines), then one of the destination's backends.
 */
static __always_inline struct ks_backend *pick(const struct ks_frontend *fe,
					       const struct ks_dest *first)
{
	__u32 r = bpf_get_prandom_u32() % fe->weight_total, i;
	struct ks_dest *d;

	if (first && ks_dest_hit(r, first->weight_cum))
		return dest_backend(first);
	for (int j = first ? 1 : 0; j < KS_MAX_DESTS; j++) {
		if ((__u32)j >= fe->dest_count)
			break;
		i = fe->dest_first + j;
		d = bpf_map_lookup_elem(&ks_dests, &i);
		if (!d)
			break;
		if (ks_dest_hit(r, d->weight_cum))
			return dest_backend(d);
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
	const struct ks_dest *first;
	struct ks_frontend *fe;
	struct ks_backend *be;

	if (!cfg)
		return 1;
	stat_inc(KS_STAT_CONNECT_SEEN);
	if (is_self(ctx->sk)) {
		stat_inc(KS_STAT_CONNECT_SELF);
		return 1;
	}
	fe = frontend(cfg->active & (KS_GENERATIONS - 1), addr, *port, (__u8)ctx->protocol, &first);
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
	be = pick(fe, first);
	if (!be)
		goto no_upstream;
	peer_record(ctx, addr, *port, be); /* getpeername shows what it dialled */
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
