/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * HTTP/1.1 framing for a proxy, over llhttp built strict: the codec reads a
 * head into one buffer (target or status, fields) and says where the head
 * ends and where the message ends; the caller moves the bytes. A body's wire
 * bytes (chunk sizes, extensions and trailers included) are never rewritten,
 * so what a peer sent is what the other peer gets. One codec per direction.
 */
#ifndef KSTEER_SHIM_H1_H
#define KSTEER_SHIM_H1_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"

#define H1_MAX_FIELDS 128
#define H1_MAX_HEAD (64 * 1024) /* a head's bytes on the wire; more is 431 (request) or 502 */

enum h1_event {
	H1_MORE, /* every byte given was taken; the message goes on */
	H1_HEAD, /* the head is complete after *used bytes */
	H1_DONE, /* the message is complete after *used bytes */
	H1_ERROR /* malformed: why and status say how to answer */
};

struct h1_field {
	uint32_t name, name_len, value, value_len; /* offsets in head, each NUL-terminated */
};

struct h1 {
	llhttp_t p;
	llhttp_settings_t cb;
	struct buf head; /* the target (or reason), then each name and value */
	uint32_t target, target_len;
	struct h1_field f[H1_MAX_FIELDS];
	unsigned n_f;
	size_t head_wire; /* bytes of this head so far */
	bool naming, named, in_value; /* inside a name; a name taken; inside its value */
	bool in_head, after_lf;
	bool skip_body; /* the next response answers a HEAD: no body whatever its fields say */
	int paused;     /* the event a callback paused at */
	/* of the head just read */
	bool keep_alive, upgrade, chunked, has_body;
	int status;      /* H1_ERROR: the answer a proxy gives (400, 431, 501) */
	const char *why; /* H1_ERROR: what was wrong */
};

void h1_init(struct h1 *h, bool response);
void h1_free(struct h1 *h);
/* Takes bytes of p up to the next head or message end; *used says how many. */
enum h1_event h1_feed(struct h1 *h, const char *p, size_t n, size_t *used);
/* The peer closed: H1_DONE ends a close-delimited message, H1_MORE is a clean end between
 * messages, H1_ERROR a message cut short. */
enum h1_event h1_eof(struct h1 *h);
/* Forgets the head just handled; the next message is read after it. */
void h1_head_reset(struct h1 *h);

static inline const char *h1_name(const struct h1 *h, unsigned i)
{
	return h->head.p + h->f[i].name;
}

static inline const char *h1_value(const struct h1 *h, unsigned i)
{
	return h->head.p + h->f[i].value;
}

static inline const char *h1_target(const struct h1 *h)
{
	return h->head.p + h->target;
}

/* The first field named name (case-insensitive), or NULL. */
const char *h1_get(const struct h1 *h, const char *name);
/* Whether field i is hop-by-hop (RFC 9110 7.6.1): Connection, the names it lists,
 * Keep-Alive, Proxy-Connection, TE, Upgrade; Transfer-Encoding is framing and stays. */
bool h1_hop_by_hop(const struct h1 *h, unsigned i);

#endif
