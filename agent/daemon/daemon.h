/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The node agent's daemon: the datapath, the XDP guard, the shim and the
 * control socket in one epoll loop, fed by a policy directory. `ksteer
 * agent` parses flags into daemon_opts; open, run (until a signal), close.
 */
#ifndef KSTEER_DAEMON_H
#define KSTEER_DAEMON_H

#include <stdint.h>

#include "../datapath/datapath.h"
#include "../datapath/guard.h"
#include "../kube/kube.h"
#include "../shim/shim.h"

struct daemon_opts {
	const char *policy_dir, *instance, *ns;
	const char *netns; /* the node's network namespace to enter, or NULL */
	const char *ready; /* a file written with our PID once the first policy is in */
	const char *shim;  /* the shim's address (connect4 sends L7 frontends there) */
	struct kube_config *kube; /* the API to watch (taken over); NULL: the directory only */
	const char *node;         /* this node's name (--node, NODE_NAME) */
	struct dp_opts dp;
	struct shim_opts so;
	const char *xdp_devs[GUARD_MAX_DEVS];
	unsigned n_xdp;
	const char *xdp_mode;
	const char *allow[256];
	unsigned n_allow;
	uint16_t gports[32];
	unsigned n_gports;
};

struct daemon;

/* Enters the netns, loads and attaches everything, applies the policy: 0 or -errno. */
int daemon_open(struct daemon **out, struct daemon_opts *o);
/* Serves until SIGTERM or SIGINT (SIGHUP reloads): 0, or -errno. */
int daemon_run(struct daemon *d);
/* The datapath stays in place: traffic flows while no agent runs. */
void daemon_close(struct daemon *d);

#endif
