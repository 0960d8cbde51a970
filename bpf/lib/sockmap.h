/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sockets joined in the kernel: the app <-> shim pairs in ks_sockhash
 * (sockops adds them, sk_msg hands messages across) and the gateway's
 * spliced tunnels in ks_splice (sk_skb stream verdict).
 */
#ifndef KSTEER_SOCKMAP_H
#define KSTEER_SOCKMAP_H

#include "bpf/lib/addr.h"
#include "bpf/lib/sock_maps.h"

#define KS_AF_INET 2

/* The sockops view of a socket as its ks_sockhash key (IPv4 only). */
static __always_inline void sock_key_ops(struct bpf_sock_ops *ops, struct ks_sock_key *k)
{
	ks_addr_from_v4(&k->local, ops->local_ip4);
	ks_addr_from_v4(&k->remote, ops->remote_ip4);
	k->lport = (__u16)ops->local_port; /* host order */
	k->rport = (__u16)bpf_ntohl(ops->remote_port); /* network order, in the upper half */
}

/* The other end's key of an sk_msg's socket: local and remote swapped. */
static __always_inline void sock_key_peer(struct sk_msg_md *msg, struct ks_sock_key *k)
{
	ks_addr_from_v4(&k->local, msg->remote_ip4);
	ks_addr_from_v4(&k->remote, msg->local_ip4);
	k->lport = (__u16)bpf_ntohl(msg->remote_port);
	k->rport = (__u16)msg->local_port;
}

static __always_inline void sockhash_add(struct bpf_sock_ops *ops)
{
	struct ks_sock_key k = {};

	sock_key_ops(ops, &k);
	if (!bpf_sock_hash_update(ops, &ks_sockhash, &k, BPF_NOEXIST))
		stat_inc(KS_STAT_SOCKMAP_ADDED);
}

/* The shim accepted a connection on its outbound port (an IPv4 peer, v4-mapped on its socket). */
static __always_inline int shim_accepted(const struct bpf_sock_ops *ops)
{
	struct ks_addr shim;

	shim_addr(&shim);
	/* a real IPv6 peer has no local_ip4 and never matches */
	return ks_addr_is_v4(&shim) && ops->local_ip4 && ops->local_ip4 == shim.a[3] &&
	       ops->local_port == bpf_ntohs(ks_knobs.shim_port);
}

/* An app's connection to the shim is up: its 4-tuple -> what it dialled, for the shim. */
static __always_inline void origdst_record(struct bpf_sock_ops *ops, const struct ks_sock *st)
{
	struct ks_peer_key key = {};
	struct ks_origdst od = {};

	if (ops->family == KS_AF_INET) {
		ks_addr_from_v4(&key.addr, ops->local_ip4);
	} else {
		key.addr.a[0] = ops->local_ip6[0];
		key.addr.a[1] = ops->local_ip6[1];
		key.addr.a[2] = ops->local_ip6[2];
		key.addr.a[3] = ops->local_ip6[3];
	}
	key.port = bpf_htons((__u16)ops->local_port); /* local_port is host order */
	od.addr = st->orig_addr;
	od.port = st->orig_port;
	od.frontend_id = st->frontend_id;
	bpf_map_update_elem(&ks_origdst, &key, &od, BPF_ANY);
}

/*
 * Where a spliced socket's TCP stands: its write_seq, every byte it has been
 * given to send. 0 when the socket is no longer in ks_splice.
 */
static __always_inline int splice_write_seq(__u64 cookie, __u32 *seq)
{
	struct bpf_sock *sk = bpf_map_lookup_elem(&ks_splice, &cookie);
	struct tcp_sock *tp;
	int ok = 0;

	if (!sk)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp) {
		*seq = tp->write_seq;
		ok = 1;
	}
	bpf_sk_release(sk);
	return ok;
}

/* Bytes p's socket redirected that the peer's TCP (at peer_seq) has not taken yet. */
static __always_inline __u32 splice_backlog(const struct ks_splice *p, __u32 peer_seq)
{
	__s32 d = (__s32)((__u32)p->bytes + p->base - peer_seq);

	return d > 0 ? (__u32)d : 0;
}

/*
 * One segment of a spliced socket (cookie c, record p): redirected to the
 * peer while the peer's backlog stays under KS_SPLICE_BACKLOG; past it, passed
 * up for the shim to copy, for good (ks_splice in maps/ksteer_maps.h).
 * SK_PASS or SK_DROP.
 */
static __always_inline int splice_segment(struct __sk_buff *skb, __u64 c, struct ks_splice *p)
{
	struct ks_splice *q = bpf_map_lookup_elem(&ks_splice_peer, &p->peer);
	__u32 seq, len = skb->len, wait;

	if (p->flags & KS_SPLICE_OVERFLOW)
		return SK_DROP; /* the shim resets the tunnel */
	if (!(p->flags & KS_SPLICE_COPY)) {
		if (!q || !splice_write_seq(p->peer, &seq))
			goto gone;
		if (!(p->flags & KS_SPLICE_BASED)) {
			p->base = seq;
			p->flags |= KS_SPLICE_BASED;
		}
		wait = splice_backlog(p, seq) + len;
		/*
		 * Past the bound the way falls back, unless this socket's own backlog
		 * holds the peer's bytes: passed up, the segment would wait behind them
		 * uncharged. Then it is redirected on, up to KS_SPLICE_BACKLOG_MAX, as
		 * the peer's backlog is most often just late (its worker not yet run).
		 */
		if (wait > KS_SPLICE_BACKLOG && q->flags & KS_SPLICE_BASED &&
		    splice_write_seq(c, &seq) && splice_backlog(q, seq)) {
			if (wait > KS_SPLICE_BACKLOG_MAX)
				goto overflow;
			wait = 0;
		}
		if (wait <= KS_SPLICE_BACKLOG) {
			if (bpf_sk_redirect_hash(skb, &ks_splice, &p->peer, 0) != SK_PASS)
				goto gone;
			__sync_fetch_and_add(&p->bytes, len);
			stat_inc(KS_STAT_SPLICE_REDIRECTED);
			return SK_PASS;
		}
		p->flags |= KS_SPLICE_COPY; /* for good: a redirect now could overtake */
		stat_inc(KS_STAT_SPLICE_FALLBACK);
	}
	/*
	 * Passed up. While this socket's own backlog holds the peer's bytes, the
	 * segment waits behind them uncharged and TCP's window stays open: held,
	 * until this socket's write_seq passes where that backlog ended. Once the
	 * peer has fallen back and the backlog is sent, nothing refills it (the
	 * shim's own writes then move write_seq past any mark): no more looks.
	 */
	if (q && (q->flags & KS_SPLICE_BASED) && !(p->flags & KS_SPLICE_DRAINED) &&
	    splice_write_seq(c, &seq)) {
		if ((__s32)(seq - p->held_end) >= 0)
			p->held = 0;
		wait = splice_backlog(q, seq);
		if (!wait && (q->flags & KS_SPLICE_COPY))
			p->flags |= KS_SPLICE_DRAINED;
		if (wait) {
			if (p->held + len > KS_SPLICE_BACKLOG)
				goto overflow;
			p->held += len;
			p->held_end = seq + wait;
		}
	}
	__sync_fetch_and_add(&p->passed, len);
	return SK_PASS;
overflow:
	p->flags |= KS_SPLICE_OVERFLOW;
	stat_inc(KS_STAT_SPLICE_OVERFLOW);
	return SK_DROP;
gone:
	stat_inc(KS_STAT_SPLICE_DROPPED); /* the peer closed: as TCP would, nothing takes it */
	return SK_DROP;
}

#endif
