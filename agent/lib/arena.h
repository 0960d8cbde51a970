/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A bump allocator: a policy batch lives and dies as one. */
#ifndef KSTEER_ARENA_H
#define KSTEER_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block *head;
};

void *arena_alloc(struct arena *a, size_t size); /* zeroed; aborts on OOM */
void *arena_array(struct arena *a, size_t n, size_t size);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(struct arena *a);

#endif
