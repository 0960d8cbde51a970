// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "strmap.h"

#include <string.h>

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct strmap_ent *find(const struct strmap *m, const char *key)
{
	uint32_t i = hash(key) & (m->cap - 1);

	while (m->v[i].key && strcmp(m->v[i].key, key))
		i = (i + 1) & (m->cap - 1);
	return &m->v[i];
}

void **strmap_slot(struct strmap *m, struct arena *a, const char *key)
{
	struct strmap_ent *e;

	if (2 * (m->n + 1) > m->cap) {
		struct strmap old = *m;

		m->cap = old.cap ? old.cap * 2 : 64;
		m->v = arena_array(a, m->cap, sizeof(*m->v));
		for (uint32_t i = 0; i < old.cap; i++)
			if (old.v[i].key)
				*find(m, old.v[i].key) = old.v[i];
	}
	e = find(m, key);
	if (!e->key) {
		e->key = arena_strdup(a, key);
		m->n++;
	}
	return &e->val;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_ent *e;

	if (!m->cap)
		return NULL;
	e = find(m, key);
	return e->key ? e->val : NULL;
}
