/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The socket programs' maps and knobs, defined once for ksteer_sock.bpf.c:
 * the agent pins the maps under /sys/fs/bpf/ksteer/INSTANCE/ and sets the
 * knobs (rodata) before load, so the verifier sees them as constants and
 * drops what they turn off (the DNS redirect when dns_port is 0).
 */
#ifndef KSTEER_SOCK_MAPS_H
#define KSTEER_SOCK_MAPS_H

#include "maps/ksteer_maps.h"

const volatile struct ks_knobs ks_knobs = {};

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

/* mmapable: the values start page-aligned, so a slot is one cache line */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KS_GENERATIONS * KS_SLOTS);
	__type(key, __u32);
	__type(value, struct ks_fe_slot);
} ks_fe_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KS_GENERATIONS * KS_SLOT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} ks_fe_used SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KS_PEERS);
	__type(key, __u32);
	__type(value, struct ks_peer);
} ks_peers SEC(".maps");

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

static __always_inline struct ks_config *ks_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ks_config, &zero);
}

/* The agent's own sockets carry its mark and are never redirected. */
static __always_inline int is_self(const struct bpf_sock *sk)
{
	return ks_knobs.self_mark && sk && sk->mark == ks_knobs.self_mark;
}

static __always_inline void shim_addr(struct ks_addr *a)
{
	a->a[0] = ks_knobs.shim_addr.a[0];
	a->a[1] = ks_knobs.shim_addr.a[1];
	a->a[2] = ks_knobs.shim_addr.a[2];
	a->a[3] = ks_knobs.shim_addr.a[3];
}

#endif
