/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The outbound shim: connections that connect4 sent to the node's shim
 * address, routed request by request (keep-alive connections included) by the
 * frontend's http routes. One epoll set of its own, which the agent's loop
 * watches as one more descriptor.
 */
#ifndef KSTEER_SHIM_H
#define KSTEER_SHIM_H

#include <stdint.h>

#include "../../maps/ksteer_maps.h"
#include "../compile/compile.h"

struct shim;

/* Listens on addr:port (host order) in the current netns; origdst_fd is ksteer_origdst. */
int shim_open(struct shim **out, const struct ks_addr *addr, uint16_t port, uint32_t mark,
	      int origdst_fd);
/* The descriptor to watch for readability: then call shim_run. */
int shim_fd(const struct shim *s);
/* The plan requests are routed by from now on; the caller keeps it alive until the next call. */
void shim_set_plan(struct shim *s, const struct plan *plan);
void shim_run(struct shim *s);
void shim_close(struct shim *s);

#endif
