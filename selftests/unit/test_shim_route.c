// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Per-request routing: which route each request takes, and weighted destinations. */
#include "harness.h"

#include "agent/shim/route.h"

static const char policy[] =
	"apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
	"spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80}], selector: {app: web}}\n"
	"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web}\n"
	"spec:\n  host: web\n  subsets:\n  - {name: v1, labels: {version: v1}}\n"
	"  - {name: v2, labels: {version: v2}}\n  - {name: v3, labels: {version: v3}}\n"
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\n"
	"spec:\n  hosts: [web]\n  http:\n"
	/* 0 */ "  - match: [{headers: {end-user: {exact: jason}}}]\n"
	"    route:\n    - {destination: {host: web, subset: v2}, weight: 70}\n"
	"    - {destination: {host: web, subset: v3}, weight: 30}\n"
	/* 1 */ "  - match: [{uri: {prefix: /api/}, method: {exact: POST}}, {uri: {exact: /login}}]\n"
	"    route: [{destination: {host: web, subset: v3}}]\n"
	/* 2 */ "  - match: [{headers: {x-canary: {}}}]\n"
	"    route: [{destination: {host: web, subset: v2}}]\n"
	/* 3 */ "  - match: [{headers: {x-id: {regex: '[0-9]+'}}}]\n"
	"    route: [{destination: {host: web, subset: v2}}]\n"
	/* 4 */ "  - match: [{uri: {prefix: /Admin}, ignoreUriCase: true}]\n"
	"    route: [{destination: {host: web, subset: v3}}]\n"
	/* 5 */ "  - match: [{queryParams: {debug: {exact: '1'}}}]\n"
	"    route: [{destination: {host: web, subset: v3}}]\n"
	/* 6 */ "  - match: [{authority: {prefix: beta.}, withoutHeaders: {x-skip: {}}}]\n"
	"    route: [{destination: {host: web, subset: v2}}]\n"
	/* 7 */ "  - route:\n    - {destination: {host: web, subset: v1}, weight: 9}\n"
	"    - {destination: {host: web, subset: v2}, weight: 0}\n"
	"    - {destination: {host: web, subset: v3}, weight: 1}\n";

struct rcase {
	const char *name, *method, *path, *authority;
	struct http_header h[3];
	unsigned nh;
	int want; /* route index in the VirtualService */
};

static void test_route_table(void **state)
{
	static const struct rcase cases[] = {
		{ "jason", "GET", "/hello", "web", { { "end-user", "jason" } }, 1, 0 },
		{ "header names are case-blind", "GET", "/hello", "web", { { "End-User", "jason" } }, 1, 0 },
		{ "values are not", "GET", "/hello", "web", { { "end-user", "Jason" } }, 1, 7 },
		{ "prefix and method", "POST", "/api/x", "web", { { 0 } }, 0, 1 },
		{ "prefix but not the method", "GET", "/api/x", "web", { { 0 } }, 0, 7 },
		{ "second block of a route", "GET", "/login", "web", { { 0 } }, 0, 1 },
		{ "exact ignores the query", "GET", "/login?next=/", "web", { { 0 } }, 0, 1 },
		{ "exact is exact", "GET", "/login/", "web", { { 0 } }, 0, 7 },
		{ "presence", "GET", "/", "web", { { "x-canary", "" } }, 1, 2 },
		{ "regex matches the whole value", "GET", "/", "web", { { "x-id", "123" } }, 1, 3 },
		{ "regex is anchored", "GET", "/", "web", { { "x-id", "12a" } }, 1, 7 },
		{ "ignoreUriCase", "GET", "/admin/users", "web", { { 0 } }, 0, 4 },
		{ "query parameter", "GET", "/x?a=2&debug=1", "web", { { 0 } }, 0, 5 },
		{ "query parameter value", "GET", "/x?debug=10", "web", { { 0 } }, 0, 7 },
		{ "authority and withoutHeaders", "GET", "/", "beta.web", { { 0 } }, 0, 6 },
		{ "withoutHeaders refuses", "GET", "/", "beta.web", { { "x-skip", "1" } }, 1, 7 },
		{ "first match wins", "POST", "/api/x", "web", { { "end-user", "jason" }, { "x-canary", "1" } }, 2, 0 },
	};
	struct regex_cache rc = { 0 };
	const struct c_frontend *fe;
	struct batch b;

	(void)state;
	batch_one(&b, "default", "web.yaml", policy);
	if (b.diag.errors)
		fail_msg("policy refused:\n%s", b.diag_text);
	fe = find_fe(&b.plan, "web.default.svc.cluster.local", 80);
	assert_non_null(fe);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rcase *c = &cases[i];
		struct http_request rq = { c->method, c->path, c->authority, "http", c->h, c->nh, 80 };
		const struct c_route *r = route_match(fe, &rq, &rc);

		if (!r)
			fail_msg("case \"%s\": no route", c->name);
		if (r->index != c->want)
			fail_msg("case \"%s\": http[%d], expected http[%d]", c->name, r->index, c->want);
	}
	regex_cache_free(&rc);
	batch_free(&b);
}

static void test_weighted_pick(void **state)
{
	const struct c_frontend *fe;
	unsigned n[2][3] = { { 0 } };
	struct batch b;
	const int steps = 100000;

	(void)state;
	batch_one(&b, "default", "web.yaml", policy);
	fe = find_fe(&b.plan, "web.default.svc.cluster.local", 80);
	/* draws spread evenly over 2^32: shares equal weight / sum, within rounding */
	for (int s = 0; s < steps; s++) {
		uint32_t draw = (uint32_t)(((uint64_t)s << 32) / steps);

		for (int r = 0; r < 2; r++) {
			const struct c_route *rt = &fe->routes[r == 0 ? 0 : fe->n_routes - 1];
			const struct c_dest *d = route_pick_dest(rt, draw);

			assert_non_null(d);
			n[r][d - rt->dests]++;
		}
	}
	assert_in_range(n[0][0], 69900, 70100); /* 70 */
	assert_in_range(n[0][1], 29900, 30100); /* 30 */
	assert_in_range(n[1][0], 89900, 90100); /* 9 of 10 */
	assert_int_equal(n[1][1], 0); /* weight 0 gets nothing */
	assert_in_range(n[1][2], 9900, 10100);
	batch_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_table),
		cmocka_unit_test(test_weighted_pick),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
