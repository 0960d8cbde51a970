/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A string-keyed hash table in an arena: key -> one pointer (often a list head). */
#ifndef KSTEER_STRMAP_H
#define KSTEER_STRMAP_H

#include <stdint.h>

#include "arena.h"

struct strmap_ent {
	const char *key;
	void *val;
};

struct strmap {
	struct strmap_ent *v;
	uint32_t cap, n;
};

/* The value slot for key, created (NULL) when absent. */
void **strmap_slot(struct strmap *m, struct arena *a, const char *key);
void *strmap_get(const struct strmap *m, const char *key);

#endif
