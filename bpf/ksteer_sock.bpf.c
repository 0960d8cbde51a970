// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket-level routing: connect4/6 pick a backend, getpeername4/6 keep the VIP visible. */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "maps/ksteer_maps.h"
#include "bpf/lib/route.h"

#define AF_INET 2
#define AF_INET6 10

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ks_config);
} ks_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KS_DEF_FRONTENDS * KS_GENERATIONS);
	__type(key, struct ks_frontend_key);
	__type(value, struct ks_frontend);
} ks_frontends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KS_GENERATIONS * KS_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} ks_fe_filter SEC(".maps");

/* arrays: the verifier inlines their lookups into an index check and an add */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KS_DEF_DESTS * KS_GENERATIONS);
	__type(key, __u32);
	__type(value, struct ks_dest);
} ks_dests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KS_DEF_BACKENDS * KS_GENERATIONS);
	__type(key, __u32);
	__type(value, struct ks_backend);
} ks_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ks_sock);
} ks_sock SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ks_peer_key);
	__type(value, struct ks_origdst);
} ks_origdst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ks_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, KS_SOCKHASH_MAX);
	__type(key, struct ks_sock_key);
	__type(value, __u64);
} ks_sockhash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, KS_SOCKHASH_MAX);
	__type(key, __u64); /* socket cookie */
	__type(value, __u64);
} ks_splice SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KS_SOCKHASH_MAX);
	__type(key, __u64);
	__type(value, struct ks_splice);
} ks_splice_peer SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&ks_stats, &idx);

	if (v)
		*v += 1;
}

/*
 * Route one connect; on success addr and port hold where to go instead.
 * Returns 1 to let the connect proceed (rewritten or not), 0 to refuse it.
 */
static __always_inline int route_connect(struct bpf_sock_addr *ctx, struct ks_addr *addr,
					 __be16 *port)
{
	struct ks_frontend_key key = {};
	struct ks_frontend *fe;
	struct ks_config *cfg;
	struct ks_backend *be;
	struct ks_sock *st;
	struct ks_dest *d;
	__u32 zero = 0, r, gen, bit, i;
	__u8 proto = (__u8)ctx->protocol;
	struct bpf_sock *sk;
	__u64 *word;

	cfg = bpf_map_lookup_elem(&ks_config, &zero);
	if (!cfg)
		return 1;
	stat_inc(KS_STAT_CONNECT_SEEN);
	sk = ctx->sk;
	if (sk && cfg->self_mark && sk->mark == cfg->self_mark) {
		stat_inc(KS_STAT_CONNECT_SELF);
		return 1;
	}
	gen = cfg->active & (KS_GENERATIONS - 1);
	/* not a frontend, the common case: one bit of a small bitmap, no hashing */
	bit = ks_fe_bit(addr, *port, proto);
	i = gen * KS_FILTER_WORDS + bit / 64;
	word = bpf_map_lookup_elem(&ks_fe_filter, &i);
	if (!word || !(*word & (1ULL << (bit % 64)))) {
		stat_inc(KS_STAT_CONNECT_MISS);
		return 1;
	}
	key.gen = gen;
	key.addr = *addr;
	key.port = *port;
	key.proto = proto;
	fe = bpf_map_lookup_elem(&ks_frontends, &key);
	if (!fe) {
		stat_inc(KS_STAT_CONNECT_MISS);
		return 1;
	}
	if (fe->flags & KS_FE_SHIM) {
		/* sockops finds these by their storage: a cheap miss for every other socket */
		st = bpf_sk_storage_get(&ks_sock, ctx->sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
		if (st) {
			st->orig_addr = *addr;
			st->orig_port = *port;
			st->frontend_id = fe->id;
			st->flags = KS_SOCK_REWRITTEN | KS_SOCK_TO_SHIM;
		}
		*addr = cfg->shim_addr;
		*port = cfg->shim_port;
		stat_inc(KS_STAT_CONNECT_SHIM);
		return 1;
	}
	if ((fe->flags & KS_FE_NO_UPSTREAM) || !fe->weight_total)
		goto no_upstream;
	/* getpeername shows what it dialled: this allocation is most of a routed connect's cost */
	st = bpf_sk_storage_get(&ks_sock, ctx->sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (st) {
		st->orig_addr = *addr;
		st->orig_port = *port;
		st->frontend_id = fe->id;
		st->flags = KS_SOCK_REWRITTEN;
	}

	/* a route's destinations are adjacent in ks_dests: one or two cache lines */
	r = bpf_get_prandom_u32() % fe->weight_total;
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
			goto no_upstream;
		i = d->backend_first + bpf_get_prandom_u32() % d->backend_count;
		be = bpf_map_lookup_elem(&ks_backends, &i);
		if (!be)
			goto no_upstream;
		*addr = be->addr;
		*port = be->port;
		stat_inc(KS_STAT_CONNECT_ROUTED);
		return 1;
	}
no_upstream:
	stat_inc(KS_STAT_CONNECT_NO_UPSTREAM);
	return 0; /* connect fails with EPERM: no healthy upstream */
}

#define IPPROTO_UDP 17

/*
 * Pods' DNS (UDP/53, to whichever resolver they asked) goes to the node
 * agent's resolver; the socket remembers whom it asked, so replies and
 * getpeername show that resolver. Returns 1 when redirected.
 */
static __always_inline int dns_redirect(struct bpf_sock_addr *ctx)
{
	struct ks_config *cfg;
	struct ks_sock *st;
	__u32 zero = 0;
	struct bpf_sock *sk = ctx->sk;

	if (ctx->protocol != IPPROTO_UDP || ctx->user_port != bpf_htons(53))
		return 0;
	cfg = bpf_map_lookup_elem(&ks_config, &zero);
	if (!cfg || !cfg->dns_port || !ks_addr_is_v4(&cfg->shim_addr))
		return 0;
	if (sk && cfg->self_mark && sk->mark == cfg->self_mark)
		return 0; /* the agent forwarding upstream */
	st = bpf_sk_storage_get(&ks_sock, ctx->sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return 0;
	ks_addr_from_v4(&st->orig_addr, ctx->user_ip4);
	st->orig_port = (__be16)ctx->user_port;
	st->flags = KS_SOCK_REWRITTEN | KS_SOCK_DNS;
	ctx->user_ip4 = cfg->shim_addr.a[3];
	ctx->user_port = cfg->dns_port;
	stat_inc(KS_STAT_DNS_REDIRECTED);
	return 1;
}

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
	struct ks_sock *st = bpf_sk_storage_get(&ks_sock, ctx->sk, NULL, 0);
	struct ks_config *cfg;
	__u32 zero = 0;

	if (!st || !(st->flags & KS_SOCK_DNS))
		return 1;
	cfg = bpf_map_lookup_elem(&ks_config, &zero);
	if (!cfg || ctx->user_ip4 != cfg->shim_addr.a[3] || ctx->user_port != cfg->dns_port)
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

SEC("cgroup/getpeername4")
int ksteer_getpeer4(struct bpf_sock_addr *ctx)
{
	struct ks_sock *st = bpf_sk_storage_get(&ks_sock, ctx->sk, NULL, 0);

	if (st && (st->flags & KS_SOCK_REWRITTEN) && ks_addr_is_v4(&st->orig_addr)) {
		ctx->user_ip4 = st->orig_addr.a[3];
		ctx->user_port = st->orig_port;
	}
	return 1;
}

SEC("cgroup/getpeername6")
int ksteer_getpeer6(struct bpf_sock_addr *ctx)
{
	struct ks_sock *st = bpf_sk_storage_get(&ks_sock, ctx->sk, NULL, 0);

	if (st && (st->flags & KS_SOCK_REWRITTEN)) {
		ctx->user_ip6[0] = st->orig_addr.a[0];
		ctx->user_ip6[1] = st->orig_addr.a[1];
		ctx->user_ip6[2] = st->orig_addr.a[2];
		ctx->user_ip6[3] = st->orig_addr.a[3];
		ctx->user_port = st->orig_port;
	}
	return 1;
}

/* The sockops view of a socket as its ks_sockhash key (IPv4 only). */
static __always_inline void sock_key_ops(struct bpf_sock_ops *ops, struct ks_sock_key *k)
{
	ks_addr_from_v4(&k->local, ops->local_ip4);
	ks_addr_from_v4(&k->remote, ops->remote_ip4);
	k->lport = (__u16)ops->local_port; /* host order */
	k->rport = (__u16)bpf_ntohl(ops->remote_port); /* network order, in the upper half */
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
	struct ks_peer_key key = {};
	struct ks_origdst od = {};
	struct ks_sock_key sk_key = {};
	struct ks_config *cfg;
	struct ks_sock *st;
	struct bpf_sock *sk;
	__u32 zero = 0;

	if (ops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
		cfg = bpf_map_lookup_elem(&ks_config, &zero);
		/* the shim listens on an IPv6 socket: IPv4 peers arrive v4-mapped, with the
		 * IPv4 fields filled; a real IPv6 peer has no local_ip4 and never matches */
		if (!cfg || !cfg->sockmap || !ks_addr_is_v4(&cfg->shim_addr) ||
		    !ops->local_ip4 || ops->local_ip4 != cfg->shim_addr.a[3] ||
		    ops->local_port != bpf_ntohs(cfg->shim_port))
			return 1;
		sock_key_ops(ops, &sk_key);
		if (!bpf_sock_hash_update(ops, &ks_sockhash, &sk_key, BPF_NOEXIST))
			stat_inc(KS_STAT_SOCKMAP_ADDED);
		return 1;
	}
	if (ops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		return 1;
	sk = ops->sk;
	if (!sk)
		return 1;
	st = bpf_sk_storage_get(&ks_sock, sk, NULL, 0);
	if (!st || !(st->flags & KS_SOCK_TO_SHIM))
		return 1;
	if (ops->family == AF_INET) {
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
	cfg = bpf_map_lookup_elem(&ks_config, &zero);
	if (cfg && cfg->sockmap && ops->family == AF_INET) {
		sock_key_ops(ops, &sk_key);
		if (!bpf_sock_hash_update(ops, &ks_sockhash, &sk_key, BPF_NOEXIST))
			stat_inc(KS_STAT_SOCKMAP_ADDED);
	}
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
	if (!st) {
		stat_inc(KS_STAT_SOCKMAP_PLAIN);
		return SK_PASS;
	}
	if (st->flags & KS_SOCK_PLAIN) {
		stat_inc(KS_STAT_SOCKMAP_PLAIN);
		return SK_PASS;
	}
	ks_addr_from_v4(&peer.local, msg->remote_ip4);
	ks_addr_from_v4(&peer.remote, msg->local_ip4);
	peer.lport = (__u16)bpf_ntohl(msg->remote_port);
	peer.rport = (__u16)msg->local_port;
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

/* The gateway's splice: a segment from one side goes out of the other, counted. */
SEC("sk_skb")
int ksteer_skb(struct __sk_buff *skb)
{
	__u64 c = bpf_get_socket_cookie(skb);
	struct ks_splice *p = bpf_map_lookup_elem(&ks_splice_peer, &c);

	if (!p)
		return SK_PASS; /* not (yet) spliced: user space reads it */
	/*
	 * A FIN arriving alone is a segment without bytes. Redirected, the peer's
	 * psock backlog "sends" it, gets 0 from skb_send_sock and reports EPIPE on
	 * the peer socket (sk_psock_backlog: 0 is taken as a hard error). Kept here,
	 * it only marks the EOF that user space passes on once the bytes are out.
	 */
	if (!skb->len)
		return SK_PASS;
	if (bpf_sk_redirect_hash(skb, &ks_splice, &p->peer, 0) == SK_PASS) {
		__sync_fetch_and_add(&p->bytes, skb->len);
		stat_inc(KS_STAT_SPLICE_REDIRECTED);
		return SK_PASS;
	}
	stat_inc(KS_STAT_SPLICE_DROPPED); /* the peer closed: as TCP would, nothing takes it */
	return SK_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
