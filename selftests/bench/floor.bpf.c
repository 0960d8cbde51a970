// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floors of `make bench-connect`: connect4 programs attached beside the
 * agent's on the same cgroup, run in this order on every connect, so what
 * bpf_stats counts for them is measured in the same run as ksteer's:
 *   floor_connect4  only returns: the cost of running any program at this hook;
 *   floor_line      reads one line of an 8 MB table at the address's hash, as a
 *                   connect reads its frontend's slot: what one cold line costs;
 *   floor_route     reads that line again (now warm), takes the socket cookie,
 *                   writes a 32-byte record at it in an 8 MB ring (getpeername's)
 *                   and bumps a per-CPU counter.
 * floor_line + floor_route - floor_connect4 is the least a routed connect that
 * keeps getpeername touches, whatever the layout.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct line {
	__u64 w[8];
};

struct record {
	__u64 w[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1 << 17);
	__type(key, __u32);
	__type(value, struct line);
} floor_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1 << 18);
	__type(key, __u32);
	__type(value, struct record);
} floor_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} floor_count SEC(".maps");

__u64 floor_sink;

static __always_inline __u32 home(const struct bpf_sock_addr *ctx)
{
	return (__u32)(((__u64)ctx->user_ip4 * 0x9e3779b97f4a7c15ULL) >> 47);
}

SEC("cgroup/connect4")
int floor_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/connect4")
int floor_line(struct bpf_sock_addr *ctx)
{
	__u32 i = home(ctx);
	struct line *l = bpf_map_lookup_elem(&floor_table, &i);

	if (l)
		floor_sink += l->w[0];
	return 1;
}

SEC("cgroup/connect4")
int floor_route(struct bpf_sock_addr *ctx)
{
	__u32 i = home(ctx), zero = 0;
	struct line *l = bpf_map_lookup_elem(&floor_table, &i);
	__u64 cookie = bpf_get_socket_cookie(ctx), *n;
	struct record *r;

	if (!l)
		return 1;
	i = (__u32)cookie & ((1 << 18) - 1);
	r = bpf_map_lookup_elem(&floor_ring, &i);
	if (r) {
		r->w[0] = cookie;
		r->w[1] = l->w[0];
	}
	n = bpf_map_lookup_elem(&floor_count, &zero);
	if (n)
		*n += 1;
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
