/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A byte queue: p..p+len are the bytes, taken from the front by moving p
 * (no memmove per read), appended at the back; the space in front is reused
 * only when the back runs out.
 */
#ifndef KSTEER_BUF_H
#define KSTEER_BUF_H

#include <stddef.h>

struct buf {
	char *p;      /* the first byte queued */
	size_t len;   /* bytes queued */
	size_t cap;   /* bytes allocated at base */
	char *base;   /* the allocation */
};

/* Appends n bytes: 0, or -ENOMEM (nothing appended). */
int buf_put(struct buf *b, const void *p, size_t n);
/* Takes n <= len bytes from the front. */
void buf_drop(struct buf *b, size_t n);
void buf_free(struct buf *b);

#endif
