/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The BPF programs' per-CPU counters (ks_stats, ks_guard_stats) by name:
 * `ksteer get stats` prints them, the agent's /stats/prometheus exports them
 * as ksteer_* counters, summed over CPUs.
 */
#ifndef KSTEER_DP_COUNTERS_H
#define KSTEER_DP_COUNTERS_H

#include <stdint.h>
#include <stdio.h>

struct dp_counter {
	const char *name; /* `ksteer get stats` */
	const char *family, *label, *value; /* ksteer_FAMILY_total{LABEL="VALUE"} */
	const char *help; /* of the family: on its first counter */
};

extern const struct dp_counter dp_stat_counters[]; /* KS_STAT_MAX, by enum ks_stat */
extern const struct dp_counter dp_guard_counters[]; /* KS_GUARD_STAT_MAX */

/* Sums counter i of a per-CPU array over every possible CPU into v[i], for i < n; -errno. */
int dp_counters_read(int fd, uint32_t n, uint64_t *v);
/* The counters of fd (ks_stats, or the guard's when guard) as Prometheus text; -errno. */
int dp_counters_print(int fd, int guard, FILE *f);

#endif
