// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>

#include "timer.h"

static void place(struct timers *h, uint32_t i, struct timer *t)
{
	h->v[i] = t;
	t->slot = i;
}

static void up(struct timers *h, uint32_t i)
{
	struct timer *t = h->v[i];

	while (i && h->v[(i - 1) / 2]->at > t->at) {
		place(h, i, h->v[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(h, i, t);
}

static void down(struct timers *h, uint32_t i)
{
	struct timer *t = h->v[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1]->at < h->v[c]->at)
			c++;
		if (h->v[c]->at >= t->at)
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, t);
}

void timer_del(struct timers *h, struct timer *t)
{
	uint32_t i;
	struct timer *m;

	if (!t->at)
		return;
	i = t->slot;
	t->at = 0;
	if (--h->n == i)
		return;
	m = h->v[h->n]; /* the last one fills the hole, then finds its place */
	place(h, i, m);
	down(h, i);
	up(h, m->slot);
}

int timer_set(struct timers *h, struct timer *t, uint64_t at)
{
	if (!at) {
		timer_del(h, t);
		return 0;
	}
	if (at < h->floor) /* due again while timers run: the next run takes it */
		at = h->floor;
	if (t->at) { /* moved */
		uint64_t old = t->at;

		t->at = at;
		if (at < old)
			up(h, t->slot);
		else
			down(h, t->slot);
		return 0;
	}
	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		struct timer **v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	t->at = at;
	place(h, h->n++, t);
	up(h, t->slot);
	return 0;
}

uint64_t timers_next(const struct timers *h)
{
	return h->n ? h->v[0]->at : 0;
}

void timers_run(struct timers *h, uint64_t now)
{
	h->floor = now + 1;
	while (h->n && h->v[0]->at <= now) {
		struct timer *t = h->v[0];

		timer_del(h, t);
		t->fn(t, now);
	}
	h->floor = 0;
}

void timers_free(struct timers *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
