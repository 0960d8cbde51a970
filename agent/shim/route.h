/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-request routing, as Envoy does it for Istio's http routes: the first
 * route with a matching block wins (blocks OR, fields inside AND), then a
 * weighted destination. Pure functions over the compiled plan; the shim's
 * I/O calls them once per request, so keep-alive connections are routed
 * request by request.
 */
#ifndef KSTEER_SHIM_ROUTE_H
#define KSTEER_SHIM_ROUTE_H

#include <regex.h>
#include <stdint.h>

#include "../compile/compile.h"

struct http_header {
	const char *name, *value; /* names compare case-insensitively */
};

struct http_request {
	const char *method, *path, *authority, *scheme; /* path with its query string */
	const struct http_header *headers;
	unsigned n_headers;
	uint16_t port; /* the frontend port the request arrived for */
};

/* Compiled regexes of a plan, by the StringMatch they came from. */
struct regex_cache {
	struct {
		const struct string_match *m;
		regex_t rx;
		int ok;
	} *v;
	unsigned n, cap;
};

void regex_cache_free(struct regex_cache *rc);

/* The first route of fe whose match accepts rq, or NULL (404 in Envoy's terms). */
const struct c_route *route_match(const struct c_frontend *fe, const struct http_request *rq,
				  struct regex_cache *rc);
/* A stream frontend routed by its ClientHello's SNI (tls routes) rather than by port alone. */
bool route_by_sni(const struct c_frontend *fe);
/* The route a TCP or TLS stream takes (sni: its ClientHello's, "" when none), or NULL. */
const struct c_route *route_stream(const struct c_frontend *fe, const char *sni);
/* A StringMatch (exact, prefix, regex as a full match) against a value (NULL: no match). */
bool route_string_matches(const struct string_match *m, const char *v, struct regex_cache *rc);
/* The first match block of r that accepts rq (what a rewrite replaces), or NULL (none). */
const struct http_match *route_block(const struct c_route *r, const struct http_request *rq,
				     struct regex_cache *rc);
/* The destination a draw in [0, 2^32) picks by weight, or NULL when all weights are 0. */
const struct c_dest *route_pick_dest(const struct c_route *r, uint32_t draw);

/*
 * The path as Istio's default normalization (BASE) gives it to routing and the
 * upstream: percent-escapes of unreserved characters decoded, others upper-cased,
 * dot segments removed (RFC 3986 6.2.2, 5.2.4); the query as it came. out has
 * room for strlen(in) + 1 bytes.
 */
void route_normalize_path(const char *in, char *out);

#endif
