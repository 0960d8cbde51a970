/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Why a request goes where it goes, as `istioctl x describe` answers it: the
 * name as a pod's resolver and the mesh DNS resolve it, the frontend its
 * connection reaches, whether the kernel or the shim carries it, the route
 * that matches and why, the weights, each destination's TLS and endpoints.
 * Read from a compiled plan with the functions the datapath and the shim
 * route by (plan_frontend, route_match), so it cannot tell another story.
 */
#ifndef KSTEER_SHIM_EXPLAIN_H
#define KSTEER_SHIM_EXPLAIN_H

#include <jansson.h>
#include <stdio.h>

#include "../compile/compile.h"
#include "route.h"

#define EXPLAIN_MAX_HEADERS 64

struct explain_req {
	const char *pod; /* "NS/NAME" of the client pod; NULL: none (namespace "default") */
	const char *method; /* NULL: GET */
	const char *url; /* http://HOST[:PORT][/PATH], tcp://HOST:PORT, or HOST:PORT (TCP) */
	struct http_header headers[EXPLAIN_MAX_HEADERS];
	unsigned n_headers;
};

/* The request as JSON ({"pod", "method", "url", "headers": [[name, value]...]}) and back. */
json_t *explain_req_json(const struct explain_req *rq);
/* Fills rq with pointers into j (keep j alive): 0, or -EINVAL with the reason in err. */
int explain_req_parse(json_t *j, struct explain_req *rq, char *err, size_t len);

/* The explanation as a JSON object (caller decrefs), or NULL with the reason in err. */
json_t *explain(const struct plan *plan, const struct explain_req *rq, char *err, size_t len);
/* The same for people. */
void explain_print_text(json_t *e, FILE *f);

#endif
