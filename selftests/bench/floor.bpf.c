// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor of `make bench-connect`: a connect4 program that does nothing,
 * attached beside the agent's on the same cgroup, so what bpf_stats counts for
 * running any program at this hook is measured in the same run as ksteer's.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("cgroup/connect4")
int floor_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
