// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Istio's own samples and validation cases (../shared/conformance), taken as
 * Istio takes them: every valid document accepted, every invalid one refused
 * with an error on the same field, and the samples' plans what Istio does.
 */
#include "harness.h"

#include <ctype.h>
#include <dirent.h>
#include <strings.h>

static char path_buf[1024];

static const char *conf(const char *rel)
{
	const char *s = getenv("KSTEER_SHARED");

	snprintf(path_buf, sizeof(path_buf), "%s/conformance/%s", s ? s : "../shared", rel);
	return path_buf;
}

/* One `---`-separated document: its text without the _err line, and the error it expects. */
struct vcase {
	char *yaml;
	char err[256];
	int line; /* where it starts in the file, for messages */
};

static int split_cases(char *text, struct vcase *out, int max)
{
	int n = 0, line = 1;
	char *doc = text;

	while (doc && n < max) {
		char *next = strstr(doc, "\n---"), *p;
		bool content = false;
		size_t len;
		int start = line;

		if (next) {
			*next = 0;
			next = strchr(next + 1, '\n');
			if (next)
				next++;
		}
		for (p = doc; *p; p++)
			line += *p == '\n';
		line += 1;
		/* commented-out documents are not cases */
		for (p = doc; p && *p;) {
			char *eol = strchr(p, '\n');
			char *q = p;

			while (*q == ' ')
				q++;
			if (*q && *q != '#' && *q != '\n')
				content = true;
			p = eol ? eol + 1 : NULL;
		}
		if (content) {
			struct vcase *c = &out[n++];
			char *e = strstr(doc, "_err:");

			while (e && e != doc && e[-1] != '\n') /* "#_err:" is a comment */
				e = strstr(e + 1, "_err:");

			len = strlen(doc);
			c->yaml = calloc(1, len + 1);
			c->line = start;
			c->err[0] = 0;
			if (e && (e == doc || e[-1] == '\n')) {
				char *eol = strchr(e, '\n');
				char *v = e + 5;
				size_t vl;

				while (*v == ' ')
					v++;
				vl = (size_t)((eol ? eol : e + strlen(e)) - v);
				if (vl && (v[0] == '\'' || v[0] == '"')) {
					v++;
					vl -= 2;
				}
				snprintf(c->err, sizeof(c->err), "%.*s", (int)vl, v);
				memcpy(c->yaml, doc, (size_t)(e - doc));
				if (eol)
					strcat(c->yaml, eol + 1);
			} else {
				memcpy(c->yaml, doc, len);
			}
		}
		doc = next;
	}
	return n;
}

/*
 * Istio's error "spec.a.b: Invalid value" names a field: ours must name the same
 * one (paths start below spec). A message without a path must appear as is.
 */
static void expect_same_error(const char *file, const struct vcase *c, const char *diag)
{
	char want[256];
	const char *colon = strstr(c->err, ": ");

	if (!strncmp(c->err, "spec", 4) && colon && (c->err[4] == '.' || c->err[4] == ':')) {
		const char *field = c->err[4] == '.' ? c->err + 5 : "spec";

		snprintf(want, sizeof(want), ": %.*s: %s", (int)(colon - field), field, colon + 2);
		if (!strstr(diag, want))
			fail_msg("%s:%d: expected an error like \"%s\" (Istio: %s), got:\n%s", file,
				 c->line, want, c->err, diag);
		return;
	}
	if (!strcasestr(diag, c->err))
		fail_msg("%s:%d: expected the error \"%s\", got:\n%s", file, c->line, c->err, diag);
}

static void run_validation_file(const char *name, bool invalid)
{
	char rel[128];
	char *text;
	struct vcase cases[64];
	int n;

	snprintf(rel, sizeof(rel), "istio-validation/%s", name);
	text = slurp(conf(rel));
	n = split_cases(text, cases, 64);
	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		struct batch b;

		batch_one(&b, NULL, name, cases[i].yaml);
		if (invalid) {
			if (!cases[i].err[0])
				fail_msg("%s:%d: an invalid case without _err", name, cases[i].line);
			if (!b.diag.errors)
				fail_msg("%s:%d: accepted, but Istio refuses it: %s", name,
					 cases[i].line, cases[i].err);
			expect_same_error(name, &cases[i], b.diag_text);
		} else if (b.diag.errors) {
			fail_msg("%s:%d: refused, but Istio accepts it:\n%s", name, cases[i].line,
				 b.diag_text);
		}
		printf("  %s:%d: %s\n", name, cases[i].line, invalid ? "refused as Istio does" : "accepted");
		batch_free(&b);
		free(cases[i].yaml);
	}
	free(text);
}

static void test_validation_corpus(void **state)
{
	(void)state;
	run_validation_file("destinationrule-invalid.yaml", true);
	run_validation_file("destinationrule-valid.yaml", false);
	run_validation_file("serviceentry-invalid.yaml", true);
	run_validation_file("serviceentry-valid.yaml", false);
	run_validation_file("workloadentry-invalid.yaml", true);
	run_validation_file("workloadentry-valid.yaml", false);
}

/* ---- the samples ---- */

static void load_files(struct batch *b, const char *ns, const char *const *rels)
{
	const char *docs[16];
	char *bufs[8];
	int n = 0;

	for (; *rels; rels++, n++) {
		bufs[n] = slurp(conf(*rels));
		docs[2 * n] = *rels;
		docs[2 * n + 1] = bufs[n];
	}
	docs[2 * n] = NULL;
	batch_run(b, ns, docs);
	for (int i = 0; i < n; i++)
		free(bufs[i]);
}

static bool routes_to_subsets_without_rules(const char *text)
{
	return strstr(text, "subset:") && !strstr(text, "kind: DestinationRule");
}

static void test_bookinfo_networking_all_accepted(void **state)
{
	const char *dir = conf("istio-samples/bookinfo/networking");
	struct dirent *de;
	DIR *d = opendir(dir);
	int files = 0;

	(void)state;
	if (!d)
		fail_msg("cannot open %s", dir);
	while ((de = readdir(d))) {
		char rel[512], *text;
		struct batch b;

		if (!strstr(de->d_name, ".yaml"))
			continue;
		snprintf(rel, sizeof(rel), "istio-samples/bookinfo/networking/%s", de->d_name);
		text = slurp(conf(rel));
		{
			const char *with_rules[] = { "istio-samples/bookinfo/platform/kube/bookinfo.yaml",
						     "istio-samples/bookinfo/networking/destination-rule-all.yaml",
						     rel, NULL };
			const char *alone[] = { "istio-samples/bookinfo/platform/kube/bookinfo.yaml", rel,
						NULL };

			load_files(&b, "default",
				   routes_to_subsets_without_rules(text) ? with_rules : alone);
		}
		if (b.diag.errors)
			fail_msg("%s: refused:\n%s", de->d_name, b.diag_text);
		/* routes to subsets that rules define resolve to no unknown subset */
		if (strstr(b.diag_text, "not found in any DestinationRule"))
			fail_msg("%s: subsets unresolved:\n%s", de->d_name, b.diag_text);
		printf("  bookinfo/networking/%s: accepted\n", de->d_name);
		batch_free(&b);
		free(text);
		files++;
	}
	closedir(d);
	assert_true(files >= 20);
}

static const struct c_frontend *bookinfo_plan(struct batch *b, const char *file, const char *host)
{
	char rel[256];
	const char *rels[] = { "istio-samples/bookinfo/platform/kube/bookinfo.yaml",
			       "istio-samples/bookinfo/networking/destination-rule-all.yaml", rel,
			       NULL };
	const struct c_frontend *fe;

	snprintf(rel, sizeof(rel), "istio-samples/bookinfo/networking/%s", file);
	load_files(b, "default", rels);
	if (b->diag.errors)
		fail_msg("%s: refused:\n%s", file, b->diag_text);
	fe = find_fe(&b->plan, host, 9080);
	if (!fe)
		fail_msg("%s: no frontend for %s:9080", file, host);
	return fe;
}

static void test_bookinfo_plans(void **state)
{
	const struct c_frontend *fe;
	struct batch b;

	(void)state;
	/* 80/20 between v1 and v2, per request */
	fe = bookinfo_plan(&b, "virtual-service-reviews-80-20.yaml", "reviews.default.svc.cluster.local");
	assert_int_equal(fe->shim, SHIM_HTTP_SPLIT);
	assert_int_equal(fe->routes[0].n_dests, 2);
	assert_string_equal(fe->routes[0].dests[0].subset, "v1");
	assert_int_equal(fe->routes[0].dests[0].weight * 100 / fe->routes[0].weight_total, 80);
	assert_string_equal(fe->routes[0].dests[1].subset, "v2");
	/* reviews-v1 is one Deployment: its replica has no address until a cluster runs it */
	assert_contains(fe->routes[0].dests[0].problem, "1 matching pod(s) have no address yet");
	batch_free(&b);

	/* jason to v2, everyone else to v3 */
	fe = bookinfo_plan(&b, "virtual-service-reviews-jason-v2-v3.yaml", "reviews.default.svc.cluster.local");
	assert_int_equal(fe->shim, SHIM_HTTP_MATCH);
	assert_int_equal(fe->n_routes, 2);
	assert_string_equal(fe->routes[0].http->match.v[0].headers.v[0].k, "end-user");
	assert_string_equal(((struct string_match *)fe->routes[0].http->match.v[0].headers.v[0].o)->exact, "jason");
	assert_string_equal(fe->routes[0].dests[0].subset, "v2");
	assert_string_equal(fe->routes[1].dests[0].subset, "v3");
	batch_free(&b);

	/* all to v1: one destination per service, no per-request decision: the kernel */
	fe = bookinfo_plan(&b, "virtual-service-all-v1.yaml", "details.default.svc.cluster.local");
	assert_int_equal(fe->shim, 0);
	assert_string_equal(fe->routes[0].dests[0].subset, "v1");
	batch_free(&b);

	/* fault abort for jason */
	fe = bookinfo_plan(&b, "virtual-service-ratings-test-abort.yaml", "ratings.default.svc.cluster.local");
	assert_int_equal(fe->shim, SHIM_HTTP_MATCH | SHIM_HTTP_FEATURE);
	assert_int_equal(fe->routes[0].http->fault->abort->httpStatus, 500);
	batch_free(&b);

	/* mTLS everywhere from destination-rule-all-mtls */
	{
		const char *rels[] = { "istio-samples/bookinfo/platform/kube/bookinfo.yaml",
				       "istio-samples/bookinfo/networking/destination-rule-all-mtls.yaml",
				       "istio-samples/bookinfo/networking/virtual-service-all-v1.yaml", NULL };

		load_files(&b, "default", rels);
		assert_int_equal(b.diag.errors, 0);
		fe = find_fe(&b.plan, "productpage.default.svc.cluster.local", 9080);
		assert_int_equal(fe->shim, SHIM_TLS);
		assert_string_equal(fe->routes[0].dests[0].tls_mode, "ISTIO_MUTUAL");
		batch_free(&b);
	}
}

static void test_bookinfo_gateway_and_egress(void **state)
{
	const char *gw[] = { "istio-samples/bookinfo/platform/kube/bookinfo.yaml",
			     "istio-samples/bookinfo/networking/bookinfo-gateway.yaml", NULL };
	const char *eg[] = { "istio-samples/bookinfo/platform/kube/bookinfo.yaml",
			     "istio-samples/bookinfo/networking/egress-rule-google-apis.yaml", NULL };
	const struct c_frontend *fe = NULL;
	struct batch b;

	(void)state;
	load_files(&b, "default", gw);
	assert_int_equal(b.diag.errors, 0);
	/* bound to the gateway only: it adds no mesh route for productpage */
	for (unsigned i = 0; i < b.plan.n_fes; i++)
		if (b.plan.fes[i].gateway)
			fe = &b.plan.fes[i];
	assert_non_null(fe);
	assert_string_equal(fe->gateway, "default/bookinfo-gateway");
	assert_int_equal(fe->routes[0].http->match.n, 5);
	assert_string_equal(fe->routes[0].dests[0].host, "productpage.default.svc.cluster.local");
	assert_int_equal(fe->routes[0].dests[0].port, 9080);
	fe = find_fe(&b.plan, "productpage.default.svc.cluster.local", 9080);
	assert_string_equal(fe->routes[0].type, "default");
	batch_free(&b);

	/* egress: port 80 rewritten to 443 with TLS originated by the DestinationRule */
	load_files(&b, "default", eg);
	assert_int_equal(b.diag.errors, 0);
	fe = find_fe(&b.plan, "www.googleapis.com", 80);
	assert_non_null(fe);
	assert_int_equal(fe->routes[0].dests[0].port, 443);
	assert_string_equal(fe->routes[0].dests[0].tls_mode, "SIMPLE");
	assert_string_equal(fe->routes[0].dests[0].eps[0].address, "www.googleapis.com");
	assert_true(fe->shim & SHIM_TLS);
	batch_free(&b);
}

static void test_multicluster_and_k8s_samples(void **state)
{
	const char *ew[] = { "istio-samples/multicluster/expose-services.yaml", NULL };
	const char *k8s[] = { "istio-samples/helloworld/helloworld.yaml", "istio-samples/sleep/sleep.yaml",
			      "istio-samples/curl/curl.yaml", NULL };
	const struct gateway *g;
	struct batch b;

	(void)state;
	load_files(&b, "istio-system", ew);
	assert_int_equal(b.diag.errors, 0);
	g = find_res(&b.p, K_GATEWAY, "cross-network-gateway")->spec;
	assert_string_equal(g->servers.v[0].tls->mode, "AUTO_PASSTHROUGH");
	assert_string_equal(g->servers.v[0].hosts.v[0], "*.local");
	batch_free(&b);

	load_files(&b, "hello", k8s);
	if (b.diag.errors)
		fail_msg("Kubernetes samples refused:\n%s", b.diag_text);
	assert_non_null(find_res(&b.p, K_DEPLOYMENT, "helloworld-v1"));
	assert_non_null(find_res(&b.p, K_SERVICE, "sleep"));
	assert_non_null(find_fe(&b.plan, "helloworld.hello.svc.cluster.local", 5000));
	batch_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validation_corpus),
		cmocka_unit_test(test_bookinfo_networking_all_accepted),
		cmocka_unit_test(test_bookinfo_plans),
		cmocka_unit_test(test_bookinfo_gateway_and_egress),
		cmocka_unit_test(test_multicluster_and_k8s_samples),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
