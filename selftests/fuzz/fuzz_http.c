// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer: any bytes as a stream of HTTP/1 requests (or answers, first byte odd) for
 * the shim's codec. Where heads and messages end must not depend on how the stream is cut
 * into reads (the same events at the same offsets, fed whole or in pieces; a refusal may be
 * seen at another byte); a head taken
 * reads back as NUL-terminated fields; the normalized target is no longer than the target.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/shim/h1.h"
#include "agent/shim/route.h"

#define MAX_EVENTS 64

struct trace {
	int ev[MAX_EVENTS];
	size_t off[MAX_EVENTS];
	unsigned n;
};

static void head_check(const struct h1 *h, bool response)
{
	char *a, *b;

	for (unsigned i = 0; i < h->n_f; i++)
		if (strlen(h1_name(h, i)) != h->f[i].name_len ||
		    strlen(h1_value(h, i)) != h->f[i].value_len)
			abort();
	if (response)
		return;
	a = malloc(h->target_len + 2);
	b = malloc(h->target_len + 2);
	/* one pass, as Envoy's: "%%33" decodes to "%3", which a second pass would decode
	 * again, so only the bound is checked, on both passes */
	route_normalize_path(h1_target(h), a);
	route_normalize_path(a, b);
	if (strlen(a) > h->target_len || strlen(b) > strlen(a))
		abort();
	free(a);
	free(b);
}

/* Feeds data in pieces whose sizes come from cuts (a piece of 0 means the rest). */
static void run(const uint8_t *data, size_t size, bool response, bool head_req,
		const uint8_t *cuts, size_t n_cuts, struct trace *t)
{
	struct h1 h;
	size_t off = 0, k = 0;

	h1_init(&h, response);
	h.skip_body = head_req;
	t->n = 0;
	while (off < size && t->n < MAX_EVENTS) {
		size_t piece = n_cuts && cuts[k % n_cuts] ? cuts[k % n_cuts] : size - off, used;
		enum h1_event ev;

		k++;
		if (piece > size - off)
			piece = size - off;
		ev = h1_feed(&h, (const char *)data + off, piece, &used);
		if (used > piece)
			abort();
		off += used;
		if (ev == H1_MORE && used != piece)
			abort(); /* MORE means every byte given was taken */
		if (ev == H1_MORE)
			continue;
		t->ev[t->n] = ev;
		t->off[t->n++] = off;
		if (ev == H1_ERROR)
			break;
		if (ev == H1_HEAD) {
			head_check(&h, response);
			h1_head_reset(&h);
		}
	}
	h1_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace whole, pieces;
	bool response, head_req;
	size_t n_cuts;

	if (size < 2)
		return 0;
	response = data[0] & 1;
	head_req = data[0] & 2;
	n_cuts = (data[1] & 7);
	if (size < 2 + n_cuts)
		return 0;
	run(data + 2 + n_cuts, size - 2 - n_cuts, response, head_req, NULL, 0, &whole);
	run(data + 2 + n_cuts, size - 2 - n_cuts, response, head_req, data + 2, n_cuts, &pieces);
	if (whole.n != pieces.n)
		abort();
	/* a refusal may be noticed at another byte (obs-fold is looked for after llhttp), but
	 * never a different event before it */
	for (unsigned i = 0; i < whole.n; i++)
		if (whole.ev[i] != pieces.ev[i] ||
		    (whole.ev[i] != H1_ERROR && whole.off[i] != pieces.off[i]))
			abort();
	return 0;
}
