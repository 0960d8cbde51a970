// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-level routing, the entries: each takes its context's address apart,
 * asks bpf/lib (connect.h: where a connect goes; sockmap.h: sockets joined
 * in the kernel) and writes the answer back.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/lib/connect.h"
#include "bpf/lib/sockmap.h"

SEC("cgroup/sendmsg4")
int ksteer_sendmsg4(struct bpf_sock_addr *ctx)
{
	dns_redirect(ctx);
	return 1;
}

/* A reply from the agent's resolver appears to come from the resolver asked. */
SEC("cgroup/recvmsg4")
int ksteer_recvmsg4(struct bpf_sock_addr *ctx)
{
	struct ks_sock *st;
	struct ks_addr shim;

	if (!ks_knobs.dns_port)
		return 1; /* no DNS redirect: the verifier drops the rest */
	st = bpf_sk_storage_get(&ks_sock, ctx->sk, NULL, 0);
	if (!st || !(st->flags & KS_SOCK_DNS))
		return 1;
	shim_addr(&shim);
	if (ctx->user_ip4 != shim.a[3] || ctx->user_port != ks_knobs.dns_port)
		return 1;
	ctx->user_ip4 = st->orig_addr.a[3];
	ctx->user_port = st->orig_port;
	return 1;
}

SEC("cgroup/connect4")
int ksteer_connect4(struct bpf_sock_addr *ctx)
{
	struct ks_addr addr;
	__be16 port = (__be16)ctx->user_port;
	int ret;

	if (dns_redirect(ctx))
		return 1;
	ks_addr_from_v4(&addr, ctx->user_ip4);
	ret = route_connect(ctx, &addr, &port);
	if (ret && ks_addr_is_v4(&addr)) {
		ctx->user_ip4 = addr.a[3];
		ctx->user_port = port;
	}
	return ret;
}

SEC("cgroup/connect6")
int ksteer_connect6(struct bpf_sock_addr *ctx)
{
	struct ks_addr addr;
	__be16 port = (__be16)ctx->user_port;
	int ret;

	addr.a[0] = ctx->user_ip6[0];
	addr.a[1] = ctx->user_ip6[1];
	addr.a[2] = ctx->user_ip6[2];
	addr.a[3] = ctx->user_ip6[3];
	ret = route_connect(ctx, &addr, &port);
	if (ret) {
		ctx->user_ip6[0] = addr.a[0];
		ctx->user_ip6[1] = addr.a[1];
		ctx->user_ip6[2] = addr.a[2];
		ctx->user_ip6[3] = addr.a[3];
		ctx->user_port = port;
	}
	return ret;
}

/*
 * What a rewritten socket dialled: from its storage when it went to the shim
 * or the resolver, from the ks_peers ring when it was routed in the kernel.
 */
static __always_inline int dialled(struct bpf_sock_addr *ctx, __be32 peer_lo,
				   struct ks_addr *addr, __be16 *port)
{
	struct ks_sock *st = bpf_sk_storage_get(&ks_sock, ctx->sk, NULL, 0);
	struct ks_peer *p;

	if (st && (st->flags & KS_SOCK_REWRITTEN)) {
		*addr = st->orig_addr;
		*port = st->orig_port;
		return 1;
	}
	p = peer_of(ctx, peer_lo, (__be16)ctx->user_port);
	if (!p)
		return 0;
	*addr = p->addr;
	*port = p->port;
	return 1;
}

SEC("cgroup/getpeername4")
int ksteer_getpeer4(struct bpf_sock_addr *ctx)
{
	struct ks_addr addr;
	__be16 port;

	if (dialled(ctx, ctx->user_ip4, &addr, &port) && ks_addr_is_v4(&addr)) {
		ctx->user_ip4 = addr.a[3];
		ctx->user_port = port;
	}
	return 1;
}

SEC("cgroup/getpeername6")
int ksteer_getpeer6(struct bpf_sock_addr *ctx)
{
	struct ks_addr addr;
	__be16 port;

	if (dialled(ctx, ctx->user_ip6[3], &addr, &port)) {
		ctx->user_ip6[0] = addr.a[0];
		ctx->user_ip6[1] = addr.a[1];
		ctx->user_ip6[2] = addr.a[2];
		ctx->user_ip6[3] = addr.a[3];
		ctx->user_port = port;
	}
	return 1;
}

/*
 * Connections sent to the shim: record their client end so the shim finds the
 * VIP, and, when the agent enables it (ks_config.sockmap), put both ends in
 * ks_sockhash: the app's at ACTIVE_ESTABLISHED (this program on the pods'
 * cgroups), the shim's at PASSIVE_ESTABLISHED (on the agent's own cgroup).
 */
SEC("sockops")
int ksteer_sockops(struct bpf_sock_ops *ops)
{
	struct ks_config *cfg;
	struct ks_sock *st;
	struct bpf_sock *sk;

	if (ops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
		cfg = ks_cfg();
		if (cfg && cfg->sockmap && shim_accepted(ops))
			sockhash_add(ops);
		return 1;
	}
	if (ops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		return 1;
	sk = ops->sk; /* each read of ops->sk may be NULL to the verifier: one, checked */
	if (!sk)
		return 1;
	st = bpf_sk_storage_get(&ks_sock, sk, NULL, 0);
	if (!st || !(st->flags & KS_SOCK_TO_SHIM))
		return 1;
	origdst_record(ops, st);
	cfg = ks_cfg();
	if (cfg && cfg->sockmap && ops->family == KS_AF_INET)
		sockhash_add(ops);
	return 1;
}

/*
 * A message from one end of an app <-> shim connection goes straight to the
 * other end's receive queue. A flow whose first message found no peer (the
 * shim's end not in the map yet) stays on TCP for its life, so bytes never
 * overtake each other.
 */
SEC("sk_msg")
int ksteer_msg(struct sk_msg_md *msg)
{
	struct ks_sock_key peer = {};
	struct ks_sock *st = NULL;

	if (msg->sk)
		st = bpf_sk_storage_get(&ks_sock, msg->sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st || (st->flags & KS_SOCK_PLAIN)) {
		stat_inc(KS_STAT_SOCKMAP_PLAIN);
		return SK_PASS;
	}
	sock_key_peer(msg, &peer);
	if (bpf_msg_redirect_hash(msg, &ks_sockhash, &peer, BPF_F_INGRESS) == SK_PASS) {
		st->flags |= KS_SOCK_REDIRECTED;
		stat_inc(KS_STAT_SOCKMAP_REDIRECTED);
		return SK_PASS;
	}
	if (!(st->flags & KS_SOCK_REDIRECTED))
		st->flags |= KS_SOCK_PLAIN;
	/* a redirected flow whose peer left: the peer closed, TCP carries the rest */
	stat_inc(KS_STAT_SOCKMAP_PLAIN);
	return SK_PASS;
}

/*
 * The gateway's splice: a segment from one side goes out of the other,
 * counted, within the bound on what waits for the other side (splice_segment).
 * A stream verdict without a parser is linked from 5.10 on; from 6.1 it is run
 * on each skb as it arrives (tcp_read_skb), the same path as
 * BPF_SK_SKB_VERDICT (5.13); 5.10-6.0 hand it copies through tcp_read_sock.
 * Only 6.1, 6.12 and 6.18 were run.
 */
SEC("sk_skb/stream_verdict")
int ksteer_skb(struct __sk_buff *skb)
{
	__u64 c = bpf_get_socket_cookie(skb);
	struct ks_splice *p = bpf_map_lookup_elem(&ks_splice_peer, &c);

	if (!p)
		return SK_PASS; /* not (yet) spliced: user space reads it */
	/*
	 * A FIN arriving alone is an skb without bytes, and the backlog takes 0 bytes
	 * moved as a hard error (sk_psock_backlog): redirected, it breaks the peer;
	 * passed while this socket's backlog still holds the peer's redirected bytes,
	 * it is queued behind them and breaks this socket (EPIPE, TX off: the
	 * answer's next segments are dropped). TCP has taken the FIN already
	 * (RCV_SHUTDOWN), so user space sees the EOF without the skb.
	 */
	if (!skb->len)
		return SK_DROP;
	return splice_segment(skb, c, p);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
