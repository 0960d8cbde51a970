/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel side: load the socket programs, attach them to a cgroup2 subtree
 * through pinned bpf_links, pin the maps, and switch images in atomically.
 */
#ifndef KSTEER_DATAPATH_H
#define KSTEER_DATAPATH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../maps/ksteer_maps.h"
#include "../compile/compile.h"

#define KS_PIN_ROOT "/sys/fs/bpf/ksteer"

struct dp_opts {
	const char *instance;
	const char *cgroup; /* absolute, or relative to the cgroup2 mount */
	uint32_t max_frontends, max_dests, max_backends;
	uint32_t self_mark;
	struct ks_addr shim_addr;
	uint16_t shim_port; /* host order */
	uint16_t dns_port; /* host order; 0: pods' DNS is left alone */
	bool sockmap; /* join app <-> shim sockets in ks_sockhash (sk_msg) when the kernel can */
	bool splice; /* gateway tunnels joined in the kernel (sk_skb) when the kernel can */
};

enum dp_map {
	DP_CONFIG,
	DP_FRONTENDS,
	DP_DESTS,
	DP_BACKENDS,
	DP_STATS,
	DP_ORIGDST,
	DP_FE_SLOTS,
	DP_PEERS,
	DP_FE_USED,
	DP_MAPS
};

struct datapath {
	struct ksteer_sock *skel;
	char pin_dir[PATH_MAX];
	bool adopted; /* the links were already pinned: programs replaced in place */
	const char *sockmap; /* "on", or why it is off */
	const char *splice; /* "on", or why it is off */
	int splice_fd, splice_peer_fd; /* ks_splice, ks_splice_peer; -1 when off */
	int fds[DP_MAPS];
	uint32_t max[DP_MAPS];
	/* the ks_fe_slots each generation's image uses; NULL: unknown (a region cleared whole) */
	uint32_t *slots_used[KS_GENERATIONS];
	uint32_t n_slots_used[KS_GENERATIONS];
};

extern const char *const dp_map_names[DP_MAPS];

/* Every kernel feature ksteer uses; 0, or -EOPNOTSUPP after naming the missing one. */
int dp_probe(void);
/* Turns sockmap on or off for new connections; -EOPNOTSUPP when set-up left it off. */
int dp_set_sockmap(struct datapath *dp, bool on);
int cgroup2_mount(char *buf, size_t len);
int bpffs_ensure(void);
int dp_open(struct datapath *dp, const struct dp_opts *o);
/* Writes the image into the inactive generation, then flips ks_config.active. */
int dp_apply(struct datapath *dp, const struct c_image *img, uint32_t *gen_out);
void dp_close(struct datapath *dp);
/* Removes every link, pin and map of an instance. */
int dp_uninstall(const char *instance);
/* The pinned maps of an instance, for readers (`ksteer get`) while the agent is down. */
int dp_open_pinned(const char *instance, int fds[DP_MAPS]);

#endif
