// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

int buf_put(struct buf *b, const void *p, size_t n)
{
	size_t front = b->base ? (size_t)(b->p - b->base) : 0;

	if (front + b->len + n > b->cap && b->len + n <= b->cap && front >= b->len) {
		memmove(b->base, b->p, b->len); /* cheap: the front space is the larger part */
		b->p = b->base;
		front = 0;
	}
	if (front + b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;

		while (cap < b->len + n)
			cap *= 2;
		np = malloc(cap);
		if (!np)
			return -ENOMEM;
		if (b->len)
			memcpy(np, b->p, b->len);
		free(b->base);
		b->base = b->p = np;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

void buf_drop(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		b->p = b->base;
		return;
	}
	b->p += n;
	b->len -= n;
}

void buf_free(struct buf *b)
{
	free(b->base);
	memset(b, 0, sizeof(*b));
}
