// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * llhttp pauses at two places, and that is all the framing a proxy needs:
 * on_headers_complete (the head's last byte was taken; route before any body
 * byte) and on_message_complete (the body's last byte was taken; what follows
 * is the next message). A message without a body pauses at both without
 * taking a byte in between. 1xx answers are messages of their own.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h1.h"

static struct h1 *of(llhttp_t *p)
{
	return p->data;
}

static int fail(llhttp_t *p, int status, const char *why)
{
	struct h1 *h = of(p);

	h->status = status;
	h->why = why;
	llhttp_set_error_reason(p, why);
	return HPE_USER;
}

/* Appends a span of the head; a NUL ends the previous piece first when asked. */
static int head_put(struct h1 *h, bool new_piece, const char *at, size_t n)
{
	if (new_piece && h->head.len && buf_put(&h->head, "", 1))
		return -1;
	if (h->head.len + n > H1_MAX_HEAD)
		return -1;
	return buf_put(&h->head, at, n) ? -1 : 0;
}

static int on_message_begin(llhttp_t *p)
{
	struct h1 *h = of(p);

	h->in_head = true;
	return 0;
}

static int on_target(llhttp_t *p, const char *at, size_t n)
{
	struct h1 *h = of(p);

	if (!h->target_len)
		h->target = (uint32_t)h->head.len;
	h->target_len += (uint32_t)n;
	if (head_put(h, false, at, n))
		return fail(p, 431, "request head too large");
	return 0;
}

static int on_field(llhttp_t *p, const char *at, size_t n)
{
	struct h1 *h = of(p);

	if (!h->in_head)
		return 0; /* a trailer: passed on as it came, not kept */
	if (!h->naming) { /* a new field */
		if (h->n_f == H1_MAX_FIELDS)
			return fail(p, 431, "too many header fields");
		if (head_put(h, true, "", 0))
			return fail(p, 431, "request head too large");
		h->f[h->n_f].name = (uint32_t)h->head.len;
		h->f[h->n_f].name_len = 0;
		h->f[h->n_f].value = 0;
		h->f[h->n_f].value_len = 0;
		h->n_f++;
		h->naming = true;
	}
	h->f[h->n_f - 1].name_len += (uint32_t)n;
	if (head_put(h, false, at, n))
		return fail(p, 431, "request head too large");
	return 0;
}

/* A name ends; an empty one (a line starting with ':') has no field to hold its value. */
static int on_field_complete(llhttp_t *p)
{
	struct h1 *h = of(p);

	if (!h->in_head)
		return 0;
	if (!h->naming || !h->f[h->n_f - 1].name_len)
		return fail(p, 400, "a header field without a name");
	h->naming = false;
	h->named = true;
	return 0;
}

static int value_start(struct h1 *h)
{
	if (head_put(h, true, "", 0))
		return -1;
	h->f[h->n_f - 1].value = (uint32_t)h->head.len;
	h->in_value = true;
	return 0;
}

static int on_value(llhttp_t *p, const char *at, size_t n)
{
	struct h1 *h = of(p);

	if (!h->in_head) { /* a trailer's value: checked, not kept */
		for (size_t i = 0; i < n; i++)
			if (((unsigned char)at[i] < 0x20 && at[i] != '\t') || at[i] == 0x7f)
				return fail(p, 400, "control character in a trailer");
		return 0;
	}
	if (!h->named)
		return fail(p, 400, "a header field without a name");
	/* obs-fold may arrive here as CR LF SP; a proxy must refuse it (RFC 9112 5.2), and NUL */
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)at[i] < 0x20 && at[i] != '\t') || at[i] == 0x7f)
			return fail(p, 400, "control character or obs-fold in a header value");
	if (!h->in_value && value_start(h))
		return fail(p, 431, "request head too large");
	h->f[h->n_f - 1].value_len += (uint32_t)n;
	if (head_put(h, false, at, n))
		return fail(p, 431, "request head too large");
	return 0;
}

static int on_value_complete(llhttp_t *p)
{
	struct h1 *h = of(p);

	if (!h->in_head)
		return 0;
	if (!h->named)
		return fail(p, 400, "a header field without a name");
	if (!h->in_value && value_start(h)) /* an empty value */
		return fail(p, 431, "request head too large");
	h->in_value = h->named = false;
	return 0;
}

/* NUL after the last value (or the target when there are no fields). */
static void head_close(struct h1 *h)
{
	buf_put(&h->head, "", 1);
}

static int request_checks(llhttp_t *p, struct h1 *h)
{
	unsigned hosts = 0;
	const char *t = h1_target(h);

	if (p->http_major != 1 || p->http_minor > 1)
		return fail(p, 505, "HTTP version not supported");
	if (p->method == HTTP_CONNECT)
		return fail(p, 501, "CONNECT is not proxied");
	if (t[0] != '/' && !(p->method == HTTP_OPTIONS && !strcmp(t, "*")))
		return fail(p, 400, "request target not in origin form");
	for (unsigned i = 0; i < h->n_f; i++)
		hosts += !strcasecmp(h1_name(h, i), "host");
	if (hosts > 1)
		return fail(p, 400, "more than one Host field");
	if (!hosts && p->http_minor == 1)
		return fail(p, 400, "HTTP/1.1 request without Host");
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct h1 *h = of(p);
	int err;

	head_close(h);
	if (p->type == HTTP_REQUEST && (err = request_checks(p, h)))
		return err;
	if (p->type == HTTP_RESPONSE && h->skip_body && p->status_code >= 200)
		p->flags |= F_SKIPBODY;
	h->keep_alive = llhttp_should_keep_alive(p);
	h->upgrade = p->upgrade;
	h->chunked = p->flags & F_CHUNKED;
	h->has_body = h->chunked || p->content_length > 0 || llhttp_message_needs_eof(p);
	if (p->flags & F_SKIPBODY)
		h->has_body = false;
	h->in_head = false;
	h->paused = H1_HEAD;
	return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *p)
{
	of(p)->paused = H1_DONE;
	return HPE_PAUSED;
}

void h1_init(struct h1 *h, bool response)
{
	memset(h, 0, sizeof(*h));
	llhttp_settings_init(&h->cb);
	h->cb.on_message_begin = on_message_begin;
	h->cb.on_url = on_target;
	h->cb.on_status = on_target;
	h->cb.on_header_field = on_field;
	h->cb.on_header_value = on_value;
	h->cb.on_header_field_complete = on_field_complete;
	h->cb.on_header_value_complete = on_value_complete;
	h->cb.on_headers_complete = on_headers_complete;
	h->cb.on_message_complete = on_message_complete;
	llhttp_init(&h->p, response ? HTTP_RESPONSE : HTTP_REQUEST, &h->cb);
	h->p.data = h;
}

void h1_free(struct h1 *h)
{
	buf_free(&h->head);
}

void h1_head_reset(struct h1 *h)
{
	h->head.len = 0;
	h->target = h->target_len = 0;
	h->n_f = 0;
	h->head_wire = 0;
	h->in_value = h->naming = h->named = false;
}

enum h1_event h1_feed(struct h1 *h, const char *p, size_t n, size_t *used)
{
	static const char none[1];
	const char *start = p ? p : none;
	llhttp_errno_t e;
	size_t took = 0;

	for (;;) {
		h->paused = H1_MORE;
		e = llhttp_execute(&h->p, start + took, n - took);
		if (e == HPE_OK) {
			took = n;
			break;
		}
		took = (size_t)(llhttp_get_error_pos(&h->p) - start);
		if (e == HPE_PAUSED_UPGRADE) { /* the caller fed on: it did not switch protocols */
			llhttp_resume_after_upgrade(&h->p);
			continue;
		}
		if (e == HPE_PAUSED) {
			llhttp_resume(&h->p);
			break;
		}
		if (!h->why) { /* llhttp's own refusal, not one of ours */
			h->status = 400;
			h->why = llhttp_get_error_reason(&h->p);
		}
		*used = took;
		return H1_ERROR;
	}
	*used = took;
	if (h->in_head || h->paused == H1_HEAD) {
		/* obs-fold (a line of the head starting with SP or HT): llhttp joins it; a proxy
		 * must refuse it (RFC 9112 5.2) */
		for (size_t i = 0; i < took; i++) {
			if (h->after_lf && (start[i] == ' ' || start[i] == '\t') && h->n_f) {
				h->status = 400;
				h->why = "obs-fold in the head";
				return H1_ERROR;
			}
			h->after_lf = start[i] == '\n';
		}
	}
	if (h->paused != H1_MORE)
		h->after_lf = false;
	if (h->in_head) {
		h->head_wire += took;
		if (h->head_wire > H1_MAX_HEAD) {
			h->status = 431;
			h->why = "head too large";
			return H1_ERROR;
		}
	}
	return (enum h1_event)h->paused;
}

enum h1_event h1_eof(struct h1 *h)
{
	llhttp_errno_t e;

	h->paused = H1_MORE;
	e = llhttp_finish(&h->p);
	if (e == HPE_PAUSED || h->paused == H1_DONE)
		return H1_DONE;
	if (e == HPE_OK)
		return H1_MORE;
	h->status = 400;
	h->why = "the peer closed inside a message";
	return H1_ERROR;
}

const char *h1_get(const struct h1 *h, const char *name)
{
	for (unsigned i = 0; i < h->n_f; i++)
		if (!strcasecmp(h1_name(h, i), name))
			return h1_value(h, i);
	return NULL;
}

/* Whether list (a Connection value) names the field name, as a token. */
static bool list_has(const char *list, const char *name)
{
	size_t nl = strlen(name);

	for (const char *t = list; *t;) {
		size_t len;

		t += strspn(t, " \t,");
		len = strcspn(t, " \t,");
		if (len == nl && !strncasecmp(t, name, nl))
			return true;
		t += len;
	}
	return false;
}

bool h1_hop_by_hop(const struct h1 *h, unsigned i)
{
	static const char *const fixed[] = {"connection", "keep-alive", "proxy-connection", "te",
					    "upgrade"};
	const char *name = h1_name(h, i);

	for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++)
		if (!strcasecmp(name, fixed[k]))
			return true;
	if (!strcasecmp(name, "transfer-encoding") || !strcasecmp(name, "content-length"))
		return false; /* framing of a body passed as it came */
	for (unsigned k = 0; k < h->n_f; k++)
		if (!strcasecmp(h1_name(h, k), "connection") && list_has(h1_value(h, k), name))
			return true;
	return false;
}
