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

#endif
