// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "route.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void regex_cache_free(struct regex_cache *rc)
{
	for (unsigned i = 0; i < rc->n; i++)
		if (rc->v[i].ok)
			regfree(&rc->v[i].rx);
	free(rc->v);
	memset(rc, 0, sizeof(*rc));
}

static const regex_t *regex_get(struct regex_cache *rc, const struct string_match *m)
{
	for (unsigned i = 0; i < rc->n; i++)
		if (rc->v[i].m == m)
			return rc->v[i].ok ? &rc->v[i].rx : NULL;
	if (rc->n == rc->cap) {
		unsigned cap = rc->cap ? rc->cap * 2 : 16;
		void *v = realloc(rc->v, cap * sizeof(*rc->v));

		if (!v)
			return NULL;
		rc->v = v;
		rc->cap = cap;
	}
	rc->v[rc->n].m = m;
	rc->v[rc->n].ok = !policy_regex_compile(m->regex, &rc->v[rc->n].rx);
	rc->n++;
	return rc->v[rc->n - 1].ok ? &rc->v[rc->n - 1].rx : NULL;
}

/* StringMatch on a value (NULL: absent). An empty match means "present". */
static bool string_matches(const struct string_match *m, const char *v, size_t len, bool nocase,
			   struct regex_cache *rc)
{
	if (!v)
		return false;
	if (m->exact)
		return strlen(m->exact) == len &&
		       !(nocase ? strncasecmp(m->exact, v, len) : strncmp(m->exact, v, len));
	if (m->prefix) {
		size_t pl = strlen(m->prefix);

		return pl <= len &&
		       !(nocase ? strncasecmp(m->prefix, v, pl) : strncmp(m->prefix, v, pl));
	}
	if (m->regex) {
		const regex_t *rx = regex_get(rc, m);
		char *s;
		bool hit;

		if (!rx)
			return false;
		s = strndup(v, len);
		hit = s && !regexec(rx, s, 0, NULL, 0);
		free(s);
		return hit;
	}
	return true;
}

static const char *header_get(const struct http_request *rq, const char *name)
{
	for (unsigned i = 0; i < rq->n_headers; i++)
		if (!strcasecmp(rq->headers[i].name, name))
			return rq->headers[i].value;
	return NULL;
}

/* The value of query parameter name in the path's query string, or NULL. */
static const char *query_get(const char *path, const char *name, size_t *len)
{
	const char *q = strchr(path, '?');
	size_t nl = strlen(name);

	while (q) {
		const char *k = q + 1, *amp = strchr(k, '&'), *end = amp ? amp : k + strlen(k);

		if ((size_t)(end - k) >= nl && !strncmp(k, name, nl) &&
		    (k[nl] == '=' || k + nl == end)) {
			const char *v = k[nl] == '=' ? k + nl + 1 : end;

			*len = (size_t)(end - v);
			return v;
		}
		q = amp;
	}
	return NULL;
}

/*
 * Host names compare case-insensitively (RFC 9110 4.2.3) and a client may or
 * may not write the port: the authority matches with it or without it.
 */
static bool authority_matches(const struct string_match *m, const char *a, struct regex_cache *rc)
{
	size_t len, host;
	const char *colon;

	if (!a)
		return false;
	len = strlen(a);
	colon = a[0] == '[' ? strstr(a, "]:") : strrchr(a, ':');
	host = colon ? (size_t)(colon - a) + (a[0] == '[') : len;
	return string_matches(m, a, len, true, rc) || string_matches(m, a, host, true, rc);
}

static bool block_matches(const struct http_match *m, const struct http_request *rq,
			  struct regex_cache *rc)
{
	size_t plen = strcspn(rq->path, "?"); /* Envoy matches the path without its query */

	if (m->port && rq->port && m->port != rq->port)
		return false;
	if (m->uri && !string_matches(m->uri, rq->path, plen, m->ignoreUriCase, rc))
		return false;
	if (m->method && !string_matches(m->method, rq->method, strlen(rq->method), false, rc))
		return false;
	if (m->scheme && !string_matches(m->scheme, rq->scheme, strlen(rq->scheme), false, rc))
		return false;
	if (m->authority && !authority_matches(m->authority, rq->authority, rc))
		return false;
	for (uint32_t i = 0; i < m->headers.n; i++) {
		const char *v = header_get(rq, m->headers.v[i].k);

		if (!string_matches(m->headers.v[i].o, v, v ? strlen(v) : 0, false, rc))
			return false;
	}
	for (uint32_t i = 0; i < m->withoutHeaders.n; i++) {
		const char *v = header_get(rq, m->withoutHeaders.v[i].k);

		if (string_matches(m->withoutHeaders.v[i].o, v, v ? strlen(v) : 0, false, rc))
			return false;
	}
	for (uint32_t i = 0; i < m->queryParams.n; i++) {
		size_t len = 0;
		const char *v = query_get(rq->path, m->queryParams.v[i].k, &len);

		if (!string_matches(m->queryParams.v[i].o, v, len, false, rc))
			return false;
	}
	return true;
}

const struct c_route *route_match(const struct c_frontend *fe, const struct http_request *rq,
				  struct regex_cache *rc)
{
	for (uint32_t i = 0; i < fe->n_routes; i++) {
		const struct c_route *r = &fe->routes[i];

		if (!r->http || !r->http->match.n)
			return r; /* no match blocks: every request */
		for (uint32_t j = 0; j < r->http->match.n; j++)
			if (block_matches(&r->http->match.v[j], rq, rc))
				return r;
	}
	return NULL;
}

bool route_by_sni(const struct c_frontend *fe)
{
	return fe->n_routes && !strcmp(fe->routes[0].type, "tls");
}

const struct c_route *route_stream(const struct c_frontend *fe, const char *sni)
{
	for (uint32_t i = 0; i < fe->n_routes; i++) {
		const struct c_route *r = &fe->routes[i];

		if (strcmp(r->type, "tls"))
			return r;
		for (uint32_t j = 0; r->l4 && j < r->l4->match.n; j++) {
			const struct l4_match *m = &r->l4->match.v[j];

			if (m->port && m->port != fe->port)
				continue;
			for (uint32_t k = 0; k < m->sniHosts.n; k++)
				if (host_matches(m->sniHosts.v[k], sni))
					return r;
		}
	}
	return NULL;
}

bool route_string_matches(const struct string_match *m, const char *v, struct regex_cache *rc)
{
	return string_matches(m, v, v ? strlen(v) : 0, false, rc);
}

const struct http_match *route_block(const struct c_route *r, const struct http_request *rq,
				     struct regex_cache *rc)
{
	for (uint32_t j = 0; r->http && j < r->http->match.n; j++)
		if (block_matches(&r->http->match.v[j], rq, rc))
			return &r->http->match.v[j];
	return NULL;
}

const struct c_dest *route_pick_dest(const struct c_route *r, uint32_t draw)
{
	uint64_t point, cum = 0;

	if (!r->weight_total)
		return NULL;
	/* scale the draw onto [0, total): unbiased enough for weights far below 2^32 */
	point = ((uint64_t)draw * r->weight_total) >> 32;
	for (uint32_t i = 0; i < r->n_dests; i++) {
		cum += r->dests[i].weight;
		if (point < cum)
			return &r->dests[i];
	}
	return NULL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* RFC 3986 5.2.4, in place on a path that starts with '/'. */
static void remove_dot_segments(char *p)
{
	char *in = p, *out = p;

	while (*in) {
		if (in[0] == '/' && in[1] == '.' && (in[2] == '/' || !in[2])) {
			in += 2;
		} else if (in[0] == '/' && in[1] == '.' && in[2] == '.' && (in[3] == '/' || !in[3])) {
			while (out > p && *--out != '/')
				;
			in += 3;
		} else {
			do
				*out++ = *in++;
			while (*in && *in != '/');
			continue;
		}
		if (!*in)
			*out++ = '/';
	}
	*out = 0;
}

void route_normalize_path(const char *in, char *out)
{
	size_t plen = strcspn(in, "?"), o = 0;

	for (size_t i = 0; i < plen; i++) {
		int hi = in[i] == '%' && i + 2 < plen ? hexval(in[i + 1]) : -1;
		int lo = hi >= 0 ? hexval(in[i + 2]) : -1;
		char ch = (char)(hi * 16 + lo);

		if (lo < 0) {
			out[o++] = in[i];
		} else if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			   (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
			   ch == '~') {
			out[o++] = ch; /* an unreserved character needs no escape */
			i += 2;
		} else { /* other escapes stay, their hex digits upper-cased */
			out[o++] = '%';
			out[o++] = (char)toupper((unsigned char)in[i + 1]);
			out[o++] = (char)toupper((unsigned char)in[i + 2]);
			i += 2;
		}
	}
	out[o] = 0;
	if (out[0] == '/')
		remove_dot_segments(out);
	strcat(out, in + plen); /* the query as it came */
}
