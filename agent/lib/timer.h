/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Deadlines in one binary min-heap: each waiting object embeds a struct
 * timer; setting, moving and removing one is O(log n), the earliest is O(1).
 * The owner arms one timerfd for timers_next() and calls timers_run().
 */
#ifndef KSTEER_TIMER_H
#define KSTEER_TIMER_H

#include <stdint.h>

struct timer {
	uint64_t at;   /* ms, CLOCK_MONOTONIC; 0: not set */
	uint32_t slot; /* its place in the heap, while set */
	void (*fn)(struct timer *t, uint64_t now);
};

struct timers {
	struct timer **v;
	uint32_t n, cap;
	uint64_t floor; /* while timers run: no timer is set before this, so each run ends */
};

/* Sets (or moves) t to fire at `at`; at 0 removes it. 0 or -ENOMEM. */
int timer_set(struct timers *h, struct timer *t, uint64_t at);
void timer_del(struct timers *h, struct timer *t);
/* The earliest deadline, 0 when none. */
uint64_t timers_next(const struct timers *h);
/* Fires every timer due at now, earliest first; each is removed before its fn runs. */
void timers_run(struct timers *h, uint64_t now);
void timers_free(struct timers *h);

#endif
