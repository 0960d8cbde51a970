/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The XDP guard (bpf/ksteer_xdp.bpf.c) on uplinks: loaded with pinned maps and
 * links under the instance's pin directory, so a restarted agent swaps its
 * program into the pinned link (never two attached) and keeps the counters.
 */
#ifndef KSTEER_GUARD_H
#define KSTEER_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "../../maps/ksteer_maps.h"
#include "../compile/compile.h"

#define GUARD_MAX_DEVS 8

struct guard {
	struct ksteer_xdp *skel;
	char pin_dir[4096];
	unsigned n_devs;
	struct {
		char name[32];
		int ifindex;
		const char *mode; /* "native" or "generic", as the kernel reports it */
	} devs[GUARD_MAX_DEVS];
	unsigned n_allowed, n_ports; /* what the maps hold now */
};

struct guard_cfg {
	const char *const *allow; /* CIDRs or addresses from flags */
	unsigned n_allow;
	const uint16_t *ports; /* guarded ports from flags (15443, 15008 always) */
	unsigned n_ports;
};

/*
 * Loads (or adopts) the guard and attaches it to each device of devs in mode
 * "auto" (native when the driver has it), "native" or "generic"; -errno. An
 * adopted link keeps the mode it was made with.
 */
int guard_open(struct guard *g, const char *instance, const char *const *devs, unsigned n,
	       const char *mode);
/*
 * The maps for this policy: meshNetworks' fromCidr and gateway addresses, flag
 * CIDRs; 15443, 15008, each Gateway server port and flag ports. Entries are
 * added before stale ones go, so an address allowed before and after never
 * sees a drop.
 */
int guard_apply(struct guard *g, const struct plan *plan, const struct guard_cfg *cfg);
void guard_close(struct guard *g);

/* One CIDR or address into an LPM key; -EINVAL when it is neither. */
int guard_cidr(const char *s, struct ks_lpm_key *k);

#endif
