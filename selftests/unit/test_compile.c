// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The compiler: the scenario's plans, Istio's weight rules, kernel/shim split, determinism, scale. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <time.h>

static const char *shared_dir(void)
{
	const char *s = getenv("KSTEER_SHARED");

	return s ? s : "../shared";
}

static char *plan_json(const struct plan *pl)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	plan_print_json(pl, f);
	fclose(f);
	return out;
}

#define SVC(name, ip, port)                                                                        \
	"apiVersion: v1\nkind: Service\nmetadata: {name: " name "}\n"                             \
	"spec: {clusterIP: " ip ", selector: {app: " name "}, ports: [{name: http, port: " port "}]}\n"
#define POD(name, app, ver, ip)                                                                    \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: " name ", labels: {app: " app           \
	", version: " ver "}}\nstatus: {podIP: " ip "}\n"
#define DR3                                                                                        \
	"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: hw}\n"   \
	"spec:\n  host: hw\n  subsets:\n  - {name: v1, labels: {version: v1}}\n"                   \
	"  - {name: v2, labels: {version: v2}}\n  - {name: v3, labels: {version: v3}}\n"
#define HW_PODS                                                                                    \
	SVC("hw", "10.96.0.10", "5000")                                                            \
	POD("hw-v1", "hw", "v1", "10.244.0.1") POD("hw-v2", "hw", "v2", "10.244.0.2")              \
	POD("hw-v3", "hw", "v3", "10.244.0.3") DR3

/* ---- the scenario, as written in ../shared/scenario ---- */

static void load_scenario(struct batch *b, const char *cluster, const char *extra)
{
	const char *files[] = { "01-serviceentry-global.yaml", "02-destinationrule-global.yaml",
				"03-destinationrule-local.yaml", "04-virtualservice.yaml",
				"01-destinationrule-local.yaml", "02-gateway.yaml" };
	const char *docs[16];
	char *bufs[8] = { 0 };
	int n = 0, nb = 0;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[512];
		FILE *f;

		snprintf(path, sizeof(path), "%s/scenario/%s/%s", shared_dir(), cluster, files[i]);
		f = fopen(path, "r");
		if (!f)
			continue;
		fclose(f);
		bufs[nb] = slurp(path);
		docs[n++] = strdup(path);
		docs[n++] = bufs[nb++];
	}
	if (extra) {
		docs[n++] = "extra.yaml";
		docs[n++] = extra;
	}
	docs[n] = NULL;
	assert_true(nb >= 2);
	batch_run(b, "hello", docs);
	for (int i = 0; i < nb; i++) {
		free(bufs[i]);
		free((char *)docs[2 * i]);
	}
}

static void test_scenario_cluster1(void **state)
{
	const struct c_frontend *fe;
	const struct c_route *r;
	struct batch b;

	(void)state;
	setenv("CLUSTER2_GW_ADDR", "172.30.2.2", 1);
	load_scenario(&b, "cluster1",
		      "apiVersion: v1\nkind: Service\nmetadata: {name: helloworld}\n"
		      "spec: {clusterIP: 10.96.0.20, selector: {app: helloworld},\n"
		      "       ports: [{name: http, port: 5000, targetPort: 5000}]}\n"
		      "---\napiVersion: v1\nkind: Pod\n"
		      "metadata: {name: helloworld-v1-0, labels: {app: helloworld, version: v1}}\n"
		      "status: {podIP: 10.1.0.5}\n");
	unsetenv("CLUSTER2_GW_ADDR");
	if (b.diag.errors)
		fail_msg("scenario cluster1 rejected:\n%s", b.diag_text);

	fe = find_fe(&b.plan, "helloworld.hello.global", 5000);
	assert_non_null(fe);
	assert_int_equal(fe->n_vips, 1);
	assert_string_equal(fe->vips[0].text, "127.255.0.8");
	assert_int_equal(fe->shim, SHIM_HTTP_MATCH | SHIM_HTTP_SPLIT | SHIM_TLS);
	assert_int_equal(fe->n_routes, 2);
	r = &fe->routes[0];
	assert_string_equal(r->type, "http");
	assert_string_equal(r->http->match.v[0].headers.v[0].k, "end-user");
	assert_int_equal(r->n_dests, 2);
	assert_string_equal(r->dests[0].subset, "v2");
	assert_int_equal(r->dests[0].weight * 100 / r->weight_total, 70);
	assert_int_equal(r->dests[1].weight * 100 / r->weight_total, 30);
	assert_string_equal(r->dests[0].tls_mode, "ISTIO_MUTUAL");
	assert_string_equal(r->dests[0].dr, "hello/helloworld-global");
	/* both subsets select the gateway endpoint by its cluster label, on port 15443 */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r->dests[i].n_eps, 1);
		assert_string_equal(r->dests[i].eps[0].address, "172.30.2.2");
		assert_int_equal(r->dests[i].eps[0].port, 15443);
		assert_string_equal(r->dests[i].eps[0].cluster, "cluster2");
	}
	r = &fe->routes[1];
	assert_int_equal(r->n_dests, 1);
	assert_string_equal(r->dests[0].host, "helloworld.hello.svc.cluster.local");
	assert_string_equal(r->dests[0].subset, "v1");
	assert_string_equal(r->dests[0].dr, "hello/helloworld");
	assert_int_equal(r->dests[0].n_eps, 1);
	assert_string_equal(r->dests[0].eps[0].address, "10.1.0.5");

	/* the local host's own frontend routes the same way */
	fe = find_fe(&b.plan, "helloworld.hello.svc.cluster.local", 5000);
	assert_non_null(fe);
	assert_string_equal(fe->vips[0].text, "10.96.0.20");
	assert_string_equal(fe->vs, "VirtualService hello/helloworld");
	assert_int_equal(fe->n_routes, 2);
	/* the image sends both VIPs to the shim with TLS */
	assert_int_equal(b.plan.img.n_fes, 2);
	for (unsigned i = 0; i < b.plan.img.n_fes; i++)
		assert_int_equal(b.plan.img.fes[i].flags, KS_FE_SHIM | KS_FE_TLS);
	batch_free(&b);
}

static void test_scenario_cluster1_unset_variable(void **state)
{
	struct batch b;

	(void)state;
	unsetenv("CLUSTER2_GW_ADDR");
	load_scenario(&b, "cluster1", NULL);
	assert_int_equal(b.diag.errors, 0);
	assert_contains(b.diag_text, "01-serviceentry-global.yaml:17:14: warning: ServiceEntry "
				     "hello/helloworld: endpoints[0].address: \"${CLUSTER2_GW_ADDR}\"");
	assert_contains(b.diag_text, "04-virtualservice.yaml:7:5: warning: VirtualService "
				     "hello/helloworld: hosts[0]: helloworld.hello.svc.cluster.local");
	batch_free(&b);
}

static void test_scenario_cluster2(void **state)
{
	const struct c_frontend *fe;
	struct batch b;

	(void)state;
	load_scenario(&b, "cluster2",
		      "apiVersion: v1\nkind: Service\nmetadata: {name: helloworld}\n"
		      "spec: {clusterIP: 10.96.1.20, selector: {app: helloworld},\n"
		      "       ports: [{name: http, port: 5000}]}\n"
		      POD("hw-v2", "helloworld", "v2", "10.2.0.2") POD("hw-v3", "helloworld", "v3", "10.2.0.3"));
	if (b.diag.errors)
		fail_msg("scenario cluster2 rejected:\n%s", b.diag_text);
	assert_non_null(find_res(&b.p, K_GATEWAY, "istio-multicluster-ingressgateway"));
	assert_string_equal(find_res(&b.p, K_GATEWAY, "istio-multicluster-ingressgateway")->ns,
			    "istio-system");
	fe = find_fe(&b.plan, "helloworld.hello.svc.cluster.local", 5000);
	assert_non_null(fe);
	/* no VirtualService in cluster2: the Service's own default route, both versions */
	assert_string_equal(fe->routes[0].type, "default");
	assert_int_equal(fe->routes[0].dests[0].n_eps, 2);
	assert_string_equal(fe->routes[0].dests[0].tls_mode, "ISTIO_MUTUAL");
	batch_free(&b);
}

/* ---- Istio's weight rules ---- */

static void check_cum(const struct batch *b, const uint32_t *cum, unsigned n)
{
	const struct ks_frontend *f;

	if (b->diag.errors)
		fail_msg("unexpected errors:\n%s", b->diag_text);
	assert_int_equal(b->plan.img.n_fes, 1);
	f = &b->plan.img.fes[0];
	assert_int_equal(f->flags, 0);
	assert_int_equal(f->dest_count, n);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(b->plan.img.dests[f->dest_first + i].weight_cum, cum[i]);
	assert_int_equal(f->weight_total, cum[n - 1]);
}

#define TCP_VS(routes)                                                                             \
	"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: hw}\n"    \
	"spec:\n  hosts: [hw]\n  tcp:\n  - route:\n" routes

static void test_weights(void **state)
{
	struct batch b;

	(void)state;
	batch_one(&b, "hello", "w.yaml", HW_PODS TCP_VS(
		"    - {destination: {host: hw, subset: v1}, weight: 50}\n"
		"    - {destination: {host: hw, subset: v2}, weight: 30}\n"
		"    - {destination: {host: hw, subset: v3}, weight: 20}\n"));
	check_cum(&b, (const uint32_t[]){ 50, 80, 100 }, 3);
	/* each destination's backends are its subset's pods */
	for (unsigned i = 0; i < 3; i++) {
		const struct ks_dest *d = &b.plan.img.dests[i];
		char ip[INET6_ADDRSTRLEN], want[32];

		assert_int_equal(d->backend_count, 1);
		inet_ntop(AF_INET, &b.plan.img.backends[d->backend_first].addr.a[3], ip, sizeof(ip));
		snprintf(want, sizeof(want), "10.244.0.%u", i + 1);
		assert_string_equal(ip, want);
		assert_int_equal(ntohs(b.plan.img.backends[d->backend_first].port), 5000);
	}
	batch_free(&b);

	/* 7/3 routes like 70/30: weight / sum */
	batch_one(&b, "hello", "w.yaml", HW_PODS TCP_VS(
		"    - {destination: {host: hw, subset: v2}, weight: 7}\n"
		"    - {destination: {host: hw, subset: v3}, weight: 3}\n"));
	check_cum(&b, (const uint32_t[]){ 7, 10 }, 2);
	batch_free(&b);

	/* weight 0 gets nothing: its running sum does not move */
	batch_one(&b, "hello", "w.yaml", HW_PODS TCP_VS(
		"    - {destination: {host: hw, subset: v1}, weight: 0}\n"
		"    - {destination: {host: hw, subset: v2}, weight: 100}\n"));
	check_cum(&b, (const uint32_t[]){ 0, 100 }, 2);
	batch_free(&b);

	/* a single destination gets everything, whatever its weight says */
	batch_one(&b, "hello", "w.yaml", HW_PODS TCP_VS(
		"    - {destination: {host: hw, subset: v3}, weight: 0}\n"));
	check_cum(&b, (const uint32_t[]){ 1 }, 1);
	batch_free(&b);
}

static void test_too_many_destinations(void **state)
{
	char routes[4096] = "";
	char yaml[8192];
	struct batch b;

	(void)state;
	for (int i = 0; i < KS_MAX_DESTS + 1; i++)
		strcat(routes, "    - {destination: {host: hw, subset: v1}, weight: 1}\n");
	snprintf(yaml, sizeof(yaml), "%s%s%s", HW_PODS,
		 "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: hw}\n"
		 "spec:\n  hosts: [hw]\n  tcp:\n  - route:\n",
		 routes);
	batch_one(&b, "hello", "w.yaml", yaml);
	assert_int_equal(b.compile_rc, -EINVAL);
	assert_contains(b.diag_text, "route has 17 destinations, the kernel datapath takes at most 16");
	batch_free(&b);
}

/* ---- what stays in the kernel and what goes through the shim ---- */

static void test_kernel_or_shim(void **state)
{
	static const struct {
		const char *name, *yaml;
		uint32_t shim;
	} cases[] = {
		{ "no VirtualService", "", 0 },
		{ "tcp split", TCP_VS("    - {destination: {host: hw, subset: v1}, weight: 1}\n"
				      "    - {destination: {host: hw, subset: v2}, weight: 1}\n"), 0 },
		{ "http single destination",
		  "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: hw}\n"
		  "spec:\n  hosts: [hw]\n  http:\n  - route: [{destination: {host: hw, subset: v2}}]\n", 0 },
		{ "http port-only match",
		  "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: hw}\n"
		  "spec:\n  hosts: [hw]\n  http:\n  - match: [{port: 5000}]\n"
		  "    route: [{destination: {host: hw, subset: v2}}]\n", 0 },
		{ "http header match",
		  "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: hw}\n"
		  "spec:\n  hosts: [hw]\n  http:\n  - match: [{headers: {end-user: {exact: jason}}}]\n"
		  "    route: [{destination: {host: hw, subset: v2}}]\n"
		  "  - route: [{destination: {host: hw, subset: v1}}]\n", SHIM_HTTP_MATCH },
		{ "http split",
		  "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: hw}\n"
		  "spec:\n  hosts: [hw]\n  http:\n  - route:\n    - {destination: {host: hw, subset: v2}, weight: 70}\n"
		  "    - {destination: {host: hw, subset: v3}, weight: 30}\n", SHIM_HTTP_SPLIT },
		{ "http split with a zero weight is no split",
		  "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: hw}\n"
		  "spec:\n  hosts: [hw]\n  http:\n  - route:\n    - {destination: {host: hw, subset: v2}, weight: 100}\n"
		  "    - {destination: {host: hw, subset: v3}, weight: 0}\n", 0 },
		{ "http timeout",
		  "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: hw}\n"
		  "spec:\n  hosts: [hw]\n  http:\n  - timeout: 2s\n    route: [{destination: {host: hw}}]\n",
		  SHIM_HTTP_FEATURE },
		{ "tls origination",
		  "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: tls}\n"
		  "spec: {host: hw.hello.svc.cluster.local, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}\n", SHIM_TLS },
		{ "tls disabled",
		  "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: tls}\n"
		  "spec: {host: hw.hello.svc.cluster.local, trafficPolicy: {tls: {mode: DISABLE}}}\n", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char yaml[8192];
		const struct c_frontend *fe;
		struct batch b;

		/* DR3 names its own DestinationRule: the TLS cases use another name */
		snprintf(yaml, sizeof(yaml), "%s%s", HW_PODS, cases[i].yaml);
		batch_one(&b, "hello", "k.yaml", yaml);
		if (b.diag.errors)
			fail_msg("case \"%s\": errors:\n%s", cases[i].name, b.diag_text);
		fe = find_fe(&b.plan, "hw.hello.svc.cluster.local", 5000);
		assert_non_null(fe);
		if (fe->shim != cases[i].shim)
			fail_msg("case \"%s\": shim reasons 0x%x, expected 0x%x", cases[i].name,
				 fe->shim, cases[i].shim);
		assert_int_equal(!!(b.plan.img.fes[0].flags & KS_FE_SHIM), !!cases[i].shim);
		batch_free(&b);
	}
}

static void test_subset_tls_precedence(void **state)
{
	struct batch b;
	const struct c_frontend *fe;

	(void)state;
	batch_one(&b, "hello", "p.yaml",
		  SVC("hw", "10.96.0.10", "5000") POD("hw-v1", "hw", "v1", "10.244.0.1")
		  "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: hw}\n"
		  "spec:\n  host: hw\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n"
		  "    portLevelSettings: [{port: {number: 5000}, tls: {mode: SIMPLE}}]\n"
		  "  subsets:\n  - {name: v1, labels: {version: v1}, trafficPolicy: {tls: {mode: DISABLE}}}\n"
		  "  - {name: v2, labels: {version: v2}}\n"
		  "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: hw}\n"
		  "spec:\n  hosts: [hw]\n  http:\n  - match: [{uri: {prefix: /v2}}]\n"
		  "    route: [{destination: {host: hw, subset: v2}}]\n"
		  "  - route: [{destination: {host: hw, subset: v1}}]\n");
	assert_int_equal(b.diag.errors, 0);
	fe = find_fe(&b.plan, "hw.hello.svc.cluster.local", 5000);
	/* subset v2 has no policy: the top level's port-level setting wins over its tls */
	assert_string_equal(fe->routes[0].dests[0].tls_mode, "SIMPLE");
	/* subset v1's own policy overrides the top level */
	assert_string_equal(fe->routes[1].dests[0].tls_mode, "DISABLE");
	batch_free(&b);
}

static void test_unknown_subset_and_host(void **state)
{
	struct batch b;
	const struct c_frontend *fe;

	(void)state;
	batch_one(&b, "hello", "u.yaml", HW_PODS
		  "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: hw}\n"
		  "spec:\n  hosts: [hw]\n  http:\n  - match: [{uri: {prefix: /x}}]\n"
		  "    route: [{destination: {host: nowhere}}]\n"
		  "  - route: [{destination: {host: hw, subset: v9}}]\n");
	/* valid to apply, as in Istio; a warning like istioctl analyze's */
	assert_int_equal(b.diag.errors, 0);
	assert_contains(b.diag_text, "warning: VirtualService hello/hw: http[1].route[0].destination: "
				     "subset \"v9\" not found");
	assert_contains(b.diag_text, "http[0].route[0].destination: host "
				     "nowhere.hello.svc.cluster.local not found");
	fe = find_fe(&b.plan, "hw.hello.svc.cluster.local", 5000);
	assert_int_equal(fe->routes[1].dests[0].n_eps, 0);
	assert_contains(fe->routes[1].dests[0].problem, "subset v9 is not defined");
	batch_free(&b);
}

/* What the inbound side and the gateway read: a pod's declared ports, hostNetwork, a target's ns. */
static void test_pods_for_tunnels(void **state)
{
	struct batch b;
	struct ks_addr a;
	const struct c_pod *pod;
	const struct c_target *tg;

	(void)state;
	batch_one(&b, "hello", "p.yaml", SVC("hw", "10.96.0.10", "5000")
		  "---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: hw}}\n"
		  "spec:\n  containers:\n  - name: c\n    ports: [{containerPort: 5000}, "
		  "{containerPort: 53, protocol: UDP}, {containerPort: 9090, protocol: TCP}]\n"
		  "status: {podIP: 10.244.0.1, hostIP: 10.0.0.1}\n"
		  "---\napiVersion: v1\nkind: Pod\nmetadata: {name: hn}\n"
		  "spec: {hostNetwork: true}\nstatus: {podIP: 10.0.0.2, hostIP: 10.0.0.2}\n"
		  "---\napiVersion: v1\nkind: Pod\nmetadata: {name: same}\n"
		  "status: {podIP: 10.0.0.3, hostIP: 10.0.0.3}\n");
	assert_int_equal(b.diag.errors, 0);
	assert_int_equal(addr_parse("10.244.0.1", &a), 0);
	pod = plan_pod(&b.plan, &a);
	assert_non_null(pod);
	assert_false(pod->host_network);
	assert_int_equal(pod->n_ports, 2); /* UDP is not a tunnel's */
	assert_int_equal(pod->ports[0], 5000);
	assert_int_equal(pod->ports[1], 9090);
	assert_int_equal(addr_parse("10.0.0.2", &a), 0);
	assert_true(plan_pod(&b.plan, &a)->host_network);
	assert_int_equal(addr_parse("10.0.0.3", &a), 0); /* no spec: its address is its node's */
	assert_true(plan_pod(&b.plan, &a)->host_network);
	tg = plan_target(&b.plan, "hw.hello.svc.cluster.local", 5000, NULL);
	assert_non_null(tg);
	assert_string_equal(tg->ns, "hello");
	batch_free(&b);
}

static void test_service_entry_frontends(void **state)
{
	struct batch b;
	const struct c_frontend *fe;

	(void)state;
	batch_one(&b, "hello", "se.yaml",
		  "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: db}\n"
		  "spec:\n  hosts: [db.example.com]\n  addresses: [240.1.0.1, 'fd00::1']\n"
		  "  resolution: STATIC\n  ports: [{number: 53, name: dns, protocol: UDP},\n"
		  "          {number: 3306, name: mysql, protocol: TCP, targetPort: 3307}]\n"
		  "  endpoints:\n  - {address: 10.0.0.1}\n  - {address: 10.0.0.2, ports: {mysql: 4000}}\n"
		  "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext}\n"
		  "spec:\n  hosts: [ext.example.com]\n  addresses: [240.1.0.2]\n"
		  "  ports: [{number: 443, name: https, protocol: HTTPS}]\n");
	assert_int_equal(b.diag.errors, 0);
	fe = find_fe(&b.plan, "db.example.com", 3306);
	assert_int_equal(fe->n_vips, 2);
	assert_int_equal(fe->routes[0].dests[0].n_eps, 2);
	assert_int_equal(fe->routes[0].dests[0].eps[0].port, 3307); /* targetPort */
	assert_int_equal(fe->routes[0].dests[0].eps[1].port, 4000); /* endpoint's own port */
	/* 2 VIPs x 2 ports; the resolution NONE entry keeps the dialled address: no key */
	assert_int_equal(b.plan.img.n_fes, 4);
	/* the shim's lookup by what a connection dialled: either VIP, the port exact */
	{
		struct ks_addr v4, v6;

		assert_int_equal(addr_parse("240.1.0.1", &v4), 0);
		assert_int_equal(addr_parse("fd00::1", &v6), 0);
		assert_ptr_equal(plan_frontend(&b.plan, &v4, 3306), fe);
		assert_ptr_equal(plan_frontend(&b.plan, &v6, 3306), fe);
		assert_null(plan_frontend(&b.plan, &v4, 3307));
		assert_null(plan_frontend(&b.plan, &v4, 0));
	}
	fe = find_fe(&b.plan, "ext.example.com", 443);
	assert_true(fe->passthrough);
	for (unsigned i = 0; i < b.plan.img.n_fes; i++) {
		const struct ks_frontend_key *k = &b.plan.img.fe_keys[i];

		if (ntohs(k->port) == 53)
			assert_int_equal(k->proto, IPPROTO_UDP);
		else
			assert_int_equal(k->proto, IPPROTO_TCP);
	}
	batch_free(&b);
}

/* ---- determinism: the same objects in any order give the same bytes ---- */

static void test_deterministic_under_shuffle(void **state)
{
	static const char *const objs[] = {
		SVC("hw", "10.96.0.10", "5000"),
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a1, labels: {app: hw, version: v1}}\nstatus: {podIP: 10.244.0.1}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a2, labels: {app: hw, version: v2}}\nstatus: {podIP: 10.244.0.2}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a3, labels: {app: hw, version: v3}}\nstatus: {podIP: 10.244.0.3}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a4, labels: {app: hw, version: v1}}\nstatus: {podIP: 10.244.0.4}\n",
		"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: hw}\n"
		"spec:\n  host: hw\n  subsets:\n  - {name: v1, labels: {version: v1}}\n"
		"  - {name: v2, labels: {version: v2}}\n  - {name: v3, labels: {version: v3}}\n",
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: hw}\n"
		"spec:\n  hosts: [hw]\n  tcp:\n  - route:\n    - {destination: {host: hw, subset: v1}, weight: 5}\n"
		"    - {destination: {host: hw, subset: v2}, weight: 3}\n    - {destination: {host: hw, subset: v3}, weight: 2}\n",
		"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: g}\n"
		"spec:\n  hosts: [hw.hello.global]\n  addresses: [127.255.0.8]\n  resolution: STATIC\n"
		"  ports: [{number: 5000, name: http, protocol: TCP}]\n"
		"  endpoints: [{address: 172.30.2.2, labels: {cluster: c2}, ports: {http: 15443}}]\n",
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: other}\n"
		"spec:\n  hosts: [other]\n  http:\n  - route: [{destination: {host: hw}}]\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec: {clusterIP: 10.96.0.11, ports: [{port: 80, name: http}]}\n",
	};
	enum { N = sizeof(objs) / sizeof(objs[0]) };
	unsigned char *first = NULL;
	char *first_json = NULL;
	size_t first_len = 0;
	unsigned seed = 12345;

	(void)state;
	for (int round = 0; round < 50; round++) {
		int order[N];
		const char *docs[2 * N + 1];
		char names[N][16];
		unsigned char *img;
		char *json;
		size_t len;
		struct batch b;

		for (int i = 0; i < N; i++)
			order[i] = i;
		for (int i = N - 1; round && i > 0; i--) { /* Fisher-Yates; round 0 keeps the order */
			int j = (int)(rand_r(&seed) % (unsigned)(i + 1)), t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		for (int i = 0; i < N; i++) {
			snprintf(names[i], sizeof(names[i]), "f%d.yaml", i);
			docs[2 * i] = names[i];
			docs[2 * i + 1] = objs[order[i]];
		}
		docs[2 * N] = NULL;
		batch_run(&b, "hello", docs);
		assert_int_equal(b.diag.errors, 0);
		img = image_serialize(&b.plan.img, &len);
		json = plan_json(&b.plan);
		if (!first) {
			first = img;
			first_len = len;
			first_json = json;
			assert_true(b.plan.img.n_fes >= 3);
		} else {
			if (len != first_len || memcmp(img, first, len))
				fail_msg("round %d: image bytes differ from round 0", round);
			if (strcmp(json, first_json))
				fail_msg("round %d: plan differs:\n%s\nvs\n%s", round, json, first_json);
			free(img);
			free(json);
		}
		batch_free(&b);
	}
	free(first);
	free(first_json);
}

/* ---- scale: 10k services with 4 endpoints each ---- */

static void test_scale_10k_services(void **state)
{
	size_t cap = 16 << 20, n = 0;
	char *y = malloc(cap);
	struct timespec t0, t1, t2, t3, t4;
	struct diag d = { 0 };
	struct policy p;
	struct plan pl;

	(void)state;
	for (int s = 0; s < 10000; s++) {
		n += (size_t)snprintf(y + n, cap - n,
				      "---\napiVersion: v1\nkind: Service\nmetadata: {name: s%d}\n"
				      "spec: {clusterIP: 10.%d.%d.1, selector: {app: s%d}, ports: [{port: 80, name: tcp}]}\n",
				      s, 100 + s / 256, s % 256, s);
		for (int e = 0; e < 4; e++)
			n += (size_t)snprintf(y + n, cap - n,
					      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: s%d-%d, labels: {app: s%d}}\n"
					      "status: {podIP: 10.%d.%d.%d}\n",
					      s, e, s, 200 + s / 65536 % 50, s / 256 % 256, s % 256 + 0 * e);
	}
	policy_init(&p, &d, "scale");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(policy_load_buffer(&p, "scale.yaml", y, n), 0);
	assert_int_equal(policy_validate(&p), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(plan_compile(&pl, &p, &d), 0);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	assert_int_equal(pl.img.n_fes, 10000);
	assert_int_equal(pl.img.n_backends, 40000);
	/* every service by its VIP and every pod by its IP, through the plan's indexes */
	clock_gettime(CLOCK_MONOTONIC, &t3);
	for (int s = 0; s < 10000; s++) {
		char ip[32], host[64];
		struct ks_addr a;
		const struct c_frontend *fe;
		const struct c_pod *pod;

		snprintf(ip, sizeof(ip), "10.%d.%d.1", 100 + s / 256, s % 256);
		snprintf(host, sizeof(host), "s%d.scale.svc.cluster.local", s);
		assert_int_equal(addr_parse(ip, &a), 0);
		fe = plan_frontend(&pl, &a, 80);
		assert_non_null(fe);
		assert_string_equal(fe->host, host);
		assert_null(plan_frontend(&pl, &a, 81));
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", 200 + s / 65536 % 50, s / 256 % 256, s % 256);
		assert_int_equal(addr_parse(ip, &a), 0);
		pod = plan_pod(&pl, &a);
		assert_non_null(pod);
		snprintf(host, sizeof(host), "s%d-", s);
		assert_memory_equal(pod->name, host, strlen(host));
	}
	clock_gettime(CLOCK_MONOTONIC, &t4);
	printf("scale: 10000 x (2 frontend + 1 pod lookups, with their checks): %.0f ns each\n",
	       ((double)(t4.tv_sec - t3.tv_sec) * 1e9 + (double)(t4.tv_nsec - t3.tv_nsec)) / 30000);
	/* a figure for the notes, not an assertion */
	printf("scale: 10000 services x 4 endpoints (%zu bytes of YAML): parse+validate %.0f ms, "
	       "compile %.0f ms\n",
	       n, (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
	       (double)(t2.tv_sec - t1.tv_sec) * 1e3 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e6);
	plan_free(&pl);
	policy_free(&p);
	diag_free(&d);
	free(y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scenario_cluster1),
		cmocka_unit_test(test_scenario_cluster1_unset_variable),
		cmocka_unit_test(test_scenario_cluster2),
		cmocka_unit_test(test_weights),
		cmocka_unit_test(test_too_many_destinations),
		cmocka_unit_test(test_kernel_or_shim),
		cmocka_unit_test(test_subset_tls_precedence),
		cmocka_unit_test(test_unknown_subset_and_host),
		cmocka_unit_test(test_service_entry_frontends),
		cmocka_unit_test(test_pods_for_tunnels),
		cmocka_unit_test(test_deterministic_under_shuffle),
		cmocka_unit_test(test_scale_10k_services),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
