// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The policy model: every kind and field decoded, every error path reported with file:line:col. */
#include "harness.h"

#include <errno.h>
#include <math.h>

#include "agent/policy/decode.h"

#define VS_HEAD                                                                                    \
	"apiVersion: networking.istio.io/v1alpha3\n"                                               \
	"kind: VirtualService\n"                                                                   \
	"metadata:\n"                                                                              \
	"  name: helloworld\n"                                                                     \
	"spec:\n"

/* ---- error paths: each case must be rejected (or warned) with this exact text ---- */

#define VS_ROUTE "  - route: [{destination: {host: a}}]\n"

struct err_case {
	const char *name, *yaml;
	int errors; /* 1: the batch is refused; 0: accepted with the warning */
	const char *want;
};

static const struct err_case err_cases[] = {
	{ "negative weight",
	  VS_HEAD "  hosts: [helloworld]\n"
		  "  http:\n"
		  "  - route:\n"
		  "    - destination: {host: helloworld, subset: v2}\n"
		  "      weight: 70\n"
		  "    - destination: {host: helloworld, subset: v3}\n"
		  "      weight: -30\n",
	  1, "t.yaml:12:15: error: VirtualService hello/helloworld: http[0].route[1].weight: must not be negative" },
	{ "weights sum to zero",
	  VS_HEAD "  hosts: [a]\n  http:\n  - route:\n"
		  "    - {destination: {host: a}, weight: 0}\n"
		  "    - {destination: {host: b}, weight: 0}\n",
	  1, "http[0].route: total destination weight must be greater than 0" },
	{ "weight over int32",
	  VS_HEAD "  hosts: [a]\n  http:\n  - route:\n"
		  "    - {destination: {host: a}, weight: 3000000000}\n"
		  "    - {destination: {host: b}, weight: 1}\n",
	  1, "http[0].route[0].weight: must be at most 2147483647" },
	{ "weight not a number",
	  VS_HEAD "  hosts: [a]\n  http:\n  - route:\n    - {destination: {host: a}, weight: \"7\"}\n",
	  1, "t.yaml:9:40: error: VirtualService hello/helloworld: http[0].route[0].weight: expected an integer" },
	{ "route without destination",
	  VS_HEAD "  hosts: [a]\n  http:\n  - route:\n    - weight: 1\n", 1,
	  "http[0].route[0].destination: Required value" },
	{ "http route with nothing to do", VS_HEAD "  hosts: [a]\n  http:\n  - name: x\n", 1,
	  "http[0]: HTTP route, redirect, direct response or delegate is required" },
	{ "no hosts", VS_HEAD "  http:\n  - route:\n    - destination: {host: a}\n", 1,
	  "hosts: virtual service must have at least one host" },
	{ "star host on the mesh",
	  VS_HEAD "  hosts: ['*']\n  http:\n  - route:\n    - destination: {host: a}\n", 1,
	  "wildcard host * is not allowed for virtual services bound to the mesh gateway" },
	{ "bad host", VS_HEAD "  hosts: [foo*bar]\n  tcp:\n  - route:\n    - destination: {host: a}\n",
	  1, "hosts[0]: a wildcard may only be the leftmost label" },
	{ "two string matches",
	  VS_HEAD "  hosts: [a]\n  http:\n  - match:\n    - uri: {exact: /a, prefix: /b}\n"
		  "    route:\n    - destination: {host: a}\n",
	  1, "http[0].match[0].uri: only one of exact, prefix or regex may be set" },
	{ "empty uri match",
	  VS_HEAD "  hosts: [a]\n  http:\n  - match:\n    - uri: {}\n    route:\n    - destination: {host: a}\n",
	  1, "http[0].match[0].uri: one of exact, prefix or regex is required" },
	{ "RE2-only regex",
	  VS_HEAD "  hosts: [a]\n  http:\n  - match:\n    - headers:\n        x-id: {regex: '\\d+'}\n"
		  "    route:\n    - destination: {host: a}\n",
	  1, "http[0].match[0].headers.x-id.regex: uses RE2 syntax" },
	{ "broken regex",
	  VS_HEAD "  hosts: [a]\n  http:\n  - match:\n    - uri: {regex: '(a'}\n"
		  "    route:\n    - destination: {host: a}\n",
	  1, "http[0].match[0].uri.regex: invalid regex" },
	{ "bad duration",
	  VS_HEAD "  hosts: [a]\n  http:\n  - timeout: 10 seconds\n    route:\n    - destination: {host: a}\n",
	  1, "t.yaml:8:14: error: VirtualService hello/helloworld: http[0].timeout: invalid duration \"10 seconds\"" },
	{ "abort status out of range",
	  VS_HEAD "  hosts: [a]\n  http:\n  - fault: {abort: {httpStatus: 700}}\n    route:\n    - destination: {host: a}\n",
	  1, "http[0].fault.abort.httpStatus: must be in the range 200-599" },
	{ "unknown field",
	  VS_HEAD "  hosts: [a]\n  http:\n  - route:\n    - destination: {host: a}\n      weigth: 5\n",
	  1, "t.yaml:10:7: error: VirtualService hello/helloworld: http[0].route[0].weigth: unknown field \"weigth\"" },
	{ "duplicate field",
	  VS_HEAD "  hosts: [a]\n  hosts: [b]\n  tcp:\n  - route:\n    - destination: {host: a}\n", 1,
	  "hosts: duplicate field" },
	{ "duplicate label key",
	  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    app: a\n    app: b\n", 1,
	  "metadata.labels: duplicate key \"app\"" },
	{ "tls route needs sni",
	  VS_HEAD "  hosts: [a]\n  tls:\n  - match:\n    - port: 443\n    route:\n    - destination: {host: a}\n",
	  1, "tls[0].match[0].sniHosts: TLS match must have at least one SNI host" },
	{ "subset name",
	  "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
	  "spec:\n  host: a\n  subsets:\n  - name: V_1\n    labels: {version: v1}\n",
	  1, "subsets[0].name: invalid subset name \"V_1\"" },
	{ "duplicate subset",
	  "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
	  "spec:\n  host: a\n  subsets:\n  - {name: v1}\n  - {name: v1}\n",
	  1, "subsets[1].name: Duplicate value: \"v1\"" },
	{ "tls mode",
	  "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
	  "spec:\n  host: a\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUALLY}\n",
	  1, "trafficPolicy.tls.mode: unknown mode \"ISTIO_MUTUALLY\"" },
	{ "istio mutual with certificates",
	  "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
	  "spec:\n  host: a\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL, clientCertificate: /c.pem}\n",
	  1, "cannot specify client certificates or CA certificate with ISTIO_MUTUAL" },
	{ "subset policy checked too",
	  "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
	  "spec:\n  host: a\n  subsets:\n  - name: v1\n    trafficPolicy:\n"
	  "      outlierDetection: {maxEjectionPercent: 120}\n",
	  1, "subsets[0].trafficPolicy.outlierDetection.maxEjectionPercent: must be between 0 and 100" },
	{ "port level settings need a port",
	  "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
	  "spec:\n  host: a\n  trafficPolicy:\n    portLevelSettings:\n    - tls: {mode: SIMPLE}\n",
	  1, "trafficPolicy.portLevelSettings[0].port: Required value" },
	{ "gateway https without tls",
	  "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
	  "spec:\n  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ['*']\n",
	  1, "servers[0].tls: server must have TLS settings for HTTPS/TLS protocols" },
	{ "gateway server without hosts",
	  "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
	  "spec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n",
	  1, "servers[0].hosts: server config must contain at least one host" },
	{ "gateway auto passthrough needs TLS",
	  "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
	  "spec:\n  servers:\n  - port: {number: 15443, name: tls, protocol: HTTP}\n"
	  "    hosts: ['*.local']\n    tls: {mode: AUTO_PASSTHROUGH}\n",
	  1, "servers[0].tls.mode: AUTO_PASSTHROUGH needs protocol TLS" },
	{ "service entry unknown protocol",
	  "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\n"
	  "spec:\n  hosts: [a.com]\n  ports: [{number: 80, name: web, protocol: QUIC}]\n",
	  1, "ports[0].protocol: unrecognized protocol \"QUIC\"" },
	{ "service entry static with a name",
	  "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\n"
	  "spec:\n  hosts: [a.com]\n  resolution: STATIC\n  endpoints: [{address: b.com}]\n",
	  1, "endpoints[0].address: STATIC resolution needs an IP address" },
	{ "service entry endpoint port not declared",
	  "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\n"
	  "spec:\n  hosts: [a.com]\n  resolution: STATIC\n  ports: [{number: 80, name: http}]\n"
	  "  endpoints: [{address: 1.2.3.4, ports: {grpc: 90}}]\n",
	  1, "endpoint port grpc is not defined by the service entry" },
	{ "service entry bad address",
	  "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\n"
	  "spec:\n  hosts: [a.com]\n  addresses: [300.1.1.1]\n",
	  1, "addresses[0]: invalid IP address or CIDR \"300.1.1.1\"" },
	{ "service entry unknown resolution",
	  "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\n"
	  "spec:\n  hosts: [a.com]\n  resolution: dns\n",
	  1, "resolution: unknown resolution \"dns\"" },
	{ "export to twice",
	  "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\n"
	  "spec:\n  hosts: [a.com]\n  exportTo: [., .]\n",
	  1, "exportTo[1]: Duplicate value: \".\"" },
	{ "service port range",
	  "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 70000}]\n", 1,
	  "ports[0].port: port must be between 1-65535" },
	{ "service cluster ip",
	  "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  clusterIP: 10.0.0.300\n", 1,
	  "clusterIP: invalid IP address \"10.0.0.300\"" },
	{ "bad object name",
	  "apiVersion: v1\nkind: Service\nmetadata: {name: My_Service}\nspec: {}\n", 1,
	  "metadata.name: invalid name \"My_Service\"" },
	{ "no name", "apiVersion: v1\nkind: Service\nmetadata: {}\n", 1, "metadata.name: Required value" },
	{ "no kind", "apiVersion: v1\nmetadata: {name: x}\n", 1, "t.yaml:1:1: error: kind: Required value" },
	{ "not an object", "- a\n- b\n", 1, "a document must be an object with apiVersion and kind" },
	{ "spec is a list", VS_HEAD "  - a\n", 1, "VirtualService hello/helloworld: spec: expected an object" },
	{ "malformed yaml", VS_HEAD "  hosts: [a\n  http: x\n", 1, "t.yaml:7:7: error: invalid YAML:" },
	{ "tab indentation", VS_HEAD "\thosts: [a]\n", 1, "invalid YAML: found character that cannot start any token" },
	{ "invalid utf-8", VS_HEAD "  hosts: [\"caf\xc3\x28\"]\n", 1, "invalid YAML: invalid trailing UTF-8 octet" },
	{ "NUL in a value", VS_HEAD "  hosts: [\"a\\0b\"]\n", 1, "hosts[0]: string contains a NUL byte" },
	/* values that reach the wire: header lines, Location, SNI, a minted certificate's SAN */
	{ "header value with LF",
	  VS_HEAD "  hosts: [a]\n  http:\n" VS_ROUTE "    headers: {request: {add: {x-a: \"1\\nx-b: 2\"}}}\n", 1,
	  "t.yaml:9:36: error: VirtualService hello/helloworld: http[0].headers.request.add.x-a: header value \"1\\nx-b: 2\" has a control character" },
	{ "header value with DEL",
	  VS_HEAD "  hosts: [a]\n  http:\n" VS_ROUTE "    headers: {response: {set: {x-a: \"\\x7f\"}}}\n", 1,
	  "http[0].headers.response.set.x-a: header value \"\\x7f\" has a control character" },
	{ "header name empty",
	  VS_HEAD "  hosts: [a]\n  http:\n" VS_ROUTE "    headers: {request: {set: {\"\": v}}}\n", 1,
	  "http[0].headers.request.set.: header name cannot be empty" },
	{ "header name with a colon",
	  VS_HEAD "  hosts: [a]\n  http:\n" VS_ROUTE "    headers: {request: {set: {\"x-a:\": v}}}\n", 1,
	  "header name \"x-a:\" is not an HTTP token" },
	{ "pseudo-header",
	  VS_HEAD "  hosts: [a]\n  http:\n" VS_ROUTE "    headers: {request: {set: {\":authority\": v}}}\n", 1,
	  "\":authority\" is a pseudo-header, not an HTTP/1.1 header (rewrite.authority sets the authority)" },
	{ "host on an answer",
	  VS_HEAD "  hosts: [a]\n  http:\n" VS_ROUTE "    headers: {response: {add: {Host: v}}}\n", 1,
	  "http[0].headers.response.add.Host: invalid header \"Host\": Host can only be set on a request" },
	{ "NUL in a header name",
	  VS_HEAD "  hosts: [a]\n  http:\n" VS_ROUTE "    headers: {request: {set: {\"x\\0y\": v}}}\n", 1,
	  "http[0].headers.request.set: map key contains a NUL byte" },
	{ "destination header name",
	  VS_HEAD "  hosts: [a]\n  http:\n  - route:\n    - destination: {host: a}\n"
		  "      headers: {request: {remove: [\"x\\ry\"]}}\n", 1,
	  "http[0].route[0].headers.request.remove[0]: header name \"x\\ry\" is not an HTTP token" },
	{ "redirect uri relative",
	  VS_HEAD "  hosts: [a]\n  http:\n  - redirect: {uri: new}\n", 1,
	  "t.yaml:8:21: error: VirtualService hello/helloworld: http[0].redirect.uri: \"new\" must start with '/'" },
	{ "redirect with nothing",
	  VS_HEAD "  hosts: [a]\n  http:\n  - redirect: {redirectCode: 301}\n", 1,
	  "http[0].redirect: redirect must specify URI, authority, scheme, or port" },
	{ "redirect port",
	  VS_HEAD "  hosts: [a]\n  http:\n  - redirect: {port: 70000}\n", 1,
	  "http[0].redirect.port: port must be between 1-65535" },
	{ "redirect scheme",
	  VS_HEAD "  hosts: [a]\n  http:\n  - redirect: {scheme: HTTPS}\n", 1,
	  "http[0].redirect.scheme: invalid redirect scheme \"HTTPS\", must be \"http\" or \"https\"" },
	{ "redirect authority ipv6 unclosed",
	  VS_HEAD "  hosts: [a]\n  http:\n  - redirect: {authority: \"[::1\"}\n", 1,
	  "http[0].redirect.authority: invalid authority \"[::1\": an IPv6 address in [] is not closed" },
	{ "redirect authority empty port",
	  VS_HEAD "  hosts: [a]\n  http:\n  - redirect: {authority: \"a.example:\"}\n", 1,
	  "invalid authority \"a.example:\": the port is not 1-65535" },
	{ "redirect authority empty host",
	  VS_HEAD "  hosts: [a]\n  http:\n  - redirect: {authority: \":80\"}\n", 1,
	  "invalid authority \":80\": the host is empty" },
	{ "rewrite with nothing",
	  VS_HEAD "  hosts: [a]\n  http:\n" VS_ROUTE "    rewrite: {}\n", 1,
	  "http[0].rewrite: rewrite must specify at least one of URI, UriRegexRewrite, or authority" },
	{ "rewrite authority with a tab",
	  VS_HEAD "  hosts: [a]\n  http:\n" VS_ROUTE "    rewrite: {authority: \"a\\tb\"}\n", 1,
	  "http[0].rewrite.authority: invalid authority \"a\\tb\"" },
	{ "cors empty origin",
	  VS_HEAD "  hosts: [a]\n  http:\n" VS_ROUTE "    corsPolicy: {allowOrigins: [{prefix: \"\"}]}\n", 1,
	  "http[0].corsPolicy.allowOrigins[0]: an empty origin is not a valid match for CORS allow origins" },
	{ "cors method lower case",
	  VS_HEAD "  hosts: [a]\n  http:\n" VS_ROUTE "    corsPolicy: {allowMethods: [get]}\n", 1,
	  "http[0].corsPolicy.allowMethods[0]: \"get\" is not a supported HTTP method" },
	{ "cors max age precision",
	  VS_HEAD "  hosts: [a]\n  http:\n" VS_ROUTE "    corsPolicy: {maxAge: 1500ms}\n", 1,
	  "http[0].corsPolicy.maxAge: max_age duration is accurate only to seconds precision" },
	{ "wire values Istio takes",
	  VS_HEAD "  hosts: [a]\n  http:\n"
		  "  - redirect: {uri: \"/n?q=1#f\", authority: \"[2001:db8::1]:8443\", scheme: http, port: 8080}\n"
		  "  - redirect: {authority: \"a-b.example\"}\n"
		  "  - redirect: {derivePort: FROM_REQUEST_PORT}\n"
		  VS_ROUTE "    rewrite: {uri: /v2/, authority: \"10.0.0.1:80\"}\n"
		  "    headers:\n      request: {set: {host: b, x-empty: \"\", x-tab: \"a\\tb\"}, remove: [x-old]}\n"
		  "      response: {add: {\"x-a_1.b~\": \"\\u00e9\"}, remove: [server]}\n"
		  "    corsPolicy: {allowOrigins: [{prefix: \"https://\"}], allowMethods: [PATCH, TRACE],\n"
		  "                 allowHeaders: [\"*\", x-b], exposeHeaders: [x-c], maxAge: 24h}\n",
	  0, "" },
	{ "service account in a deployment's pod template",
	  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
	  "spec:\n  template:\n    spec: {serviceAccountName: \"a b\"}\n", 1,
	  "t.yaml:6:32: error: Deployment hello/d: template.spec.serviceAccountName: invalid service account name \"a b\"" },
	{ "service account of a service entry endpoint",
	  "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\n"
	  "spec:\n  hosts: [a.com]\n  resolution: STATIC\n"
	  "  endpoints: [{address: 1.2.3.4, serviceAccount: \"x,DNS:evil.example\"}]\n", 1,
	  "endpoints[0].serviceAccount: invalid service account name \"x,DNS:evil.example\"" },
	{ "service account too long",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {serviceAccount: "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n", 1, /* 254 */
	  "serviceAccount: invalid service account name" },
	{ "service account that Kubernetes takes",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {serviceAccountName: bookinfo.reviews-v1}\n",
	  0, "" },
	{ "namespace with a slash",
	  "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: \"a/b\"}\n", 1,
	  "t.yaml:3:32: error: Pod a/b/p: metadata.namespace: invalid namespace \"a/b\"" },
	{ "sni with CR LF",
	  "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
	  "spec:\n  host: a\n  trafficPolicy:\n    tls: {mode: SIMPLE, sni: \"a\\r\\nb\"}\n",
	  1, "trafficPolicy.tls.sni: \"a\\r\\nb\" has a space or a control character" },
	{ "unknown kind is a warning",
	  "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec: {}\n", 0,
	  "t.yaml:1:1: warning: Certificate c (apiVersion cert-manager.io/v1): kind not handled by ksteer, ignored" },
	{ "unknown istio version is a warning",
	  "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: c}\nspec: {}\n", 0,
	  "kind not handled by ksteer, ignored" },
	{ "duplicate objects",
	  "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n"
	  "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: hello}\n",
	  1, "t.yaml:5:1: error: Service hello/s: duplicate object, first defined at t.yaml:1:1" },
	{ "alias bomb",
	  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"
	  "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	  "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	  "spec:\n  containers: &d\n"
	  "  - {name: x, ports: [{containerPort: 1}, {containerPort: 2}]}\n"
	  "  - {name: y}\n",
	  0, "" },
};

static void test_error_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *c = &err_cases[i];
		struct batch b;

		batch_one(&b, "hello", "t.yaml", c->yaml);
		if (c->errors && !b.diag.errors)
			fail_msg("case \"%s\": expected an error, got none (diag: %s)", c->name,
				 b.diag_text);
		if (!c->errors && b.diag.errors)
			fail_msg("case \"%s\": expected no error, got:\n%s", c->name, b.diag_text);
		if (!strstr(b.diag_text, c->want))
			fail_msg("case \"%s\": expected\n  %s\nin:\n%s", c->name, c->want,
				 b.diag_text);
		batch_free(&b);
	}
}

/* Aliases point at one node many times: visiting must be bounded, not exponential. */
static void test_alias_expansion_bounded(void **state)
{
	char *y = malloc(1 << 20);
	size_t n = 0;
	struct batch b;

	(void)state;
	n += (size_t)sprintf(y + n, VS_HEAD "  hosts: [a]\n  http:\n");
	n += (size_t)sprintf(y + n, "  - &r0\n    route:\n    - destination: {host: a}\n");
	n += (size_t)sprintf(y + n, "    match:\n");
	for (int i = 0; i < 2000; i++)
		n += (size_t)sprintf(y + n, "    - &m%d {headers: {h%d: {exact: x}}}\n", i, i);
	for (int i = 0; i < 2000; i++)
		n += (size_t)sprintf(y + n, "  - *r0\n");
	batch_one(&b, "hello", "bomb.yaml", y);
	assert_contains(b.diag_text, "document expands to too many nodes");
	assert_true(b.diag.errors > 0);
	batch_free(&b);
	free(y);
}

static void test_huge_file_refused(void **state)
{
	size_t len = POLICY_MAX_FILE_BYTES + 1;
	char *y = malloc(len + 1);
	struct diag d = { 0 };
	struct policy p;

	(void)state;
	memset(y, '#', len);
	y[len] = 0;
	policy_init(&p, &d, NULL);
	assert_int_equal(policy_load_buffer(&p, "big.yaml", y, len), -EFBIG);
	assert_int_equal(d.errors, 1);
	assert_contains(d.v[0].msg, "over the 8388608 byte limit");
	policy_free(&p);
	diag_free(&d);
	free(y);
}

static void test_deep_nesting_no_crash(void **state)
{
	size_t depth = 20000, n = 0;
	char *y = malloc(depth * 2 + 256);
	struct batch b;

	(void)state;
	n += (size_t)sprintf(y, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nx: ");
	memset(y + n, '[', depth);
	memset(y + n + depth, ']', depth);
	y[n + 2 * depth] = 0;
	batch_one(&b, NULL, "deep.yaml", y);
	/* libyaml may refuse the depth or accept it; either way no crash and a Pod or an error */
	assert_true(b.diag.errors > 0 || b.p.n == 1);
	batch_free(&b);
	free(y);
}

/* ---- every kind and field ---- */

static const char full_se[] =
	"apiVersion: networking.istio.io/v1beta1\n"
	"kind: ServiceEntry\n"
	"metadata: {name: ext, namespace: ns1}\n"
	"spec:\n"
	"  hosts: [api.example.com]\n"
	"  addresses: [240.0.0.9, 'fd00::9']\n"
	"  location: MESH_INTERNAL\n"
	"  resolution: STATIC\n"
	"  exportTo: ['.', other]\n"
	"  subjectAltNames: ['spiffe://cluster.local/ns/ns1/sa/api']\n"
	"  ports:\n"
	"  - {number: 443, protocol: TLS, name: tls, targetPort: 8443}\n"
	"  - {number: 80, protocol: http, name: http-web}\n"
	"  endpoints:\n"
	"  - address: 10.1.0.1\n"
	"    ports: {tls: 9443}\n"
	"    labels: {cluster: c2, version: v1}\n"
	"    network: net2\n"
	"    locality: us/east/a\n"
	"    weight: 3\n"
	"    serviceAccount: api\n";

static void test_service_entry_fields(void **state)
{
	const struct service_entry *se;
	const struct workload_entry *e;
	struct batch b;

	(void)state;
	batch_one(&b, "hello", "se.yaml", full_se);
	assert_int_equal(b.diag.errors, 0);
	se = find_res(&b.p, K_SERVICE_ENTRY, "ext")->spec;
	assert_string_equal(find_res(&b.p, K_SERVICE_ENTRY, "ext")->ns, "ns1");
	assert_string_equal(se->hosts.v[0], "api.example.com");
	assert_int_equal(se->addresses.n, 2);
	assert_string_equal(se->addresses.v[1], "fd00::9");
	assert_string_equal(se->location, "MESH_INTERNAL");
	assert_string_equal(se->resolution, "STATIC");
	assert_int_equal(se->exportTo.n, 2);
	assert_string_equal(se->subjectAltNames.v[0], "spiffe://cluster.local/ns/ns1/sa/api");
	assert_int_equal(se->ports.n, 2);
	assert_int_equal(se->ports.v[0].number, 443);
	assert_int_equal(se->ports.v[0].targetPort, 8443);
	assert_string_equal(se->ports.v[0].protocol, "TLS");
	assert_string_equal(se->ports.v[1].name, "http-web");
	e = &se->endpoints.v[0];
	assert_string_equal(e->address, "10.1.0.1");
	assert_string_equal(labels_get(&e->ports, "tls"), "9443");
	assert_string_equal(labels_get(&e->labels, "cluster"), "c2");
	assert_string_equal(e->network, "net2");
	assert_string_equal(e->locality, "us/east/a");
	assert_int_equal(e->weight, 3);
	assert_string_equal(e->serviceAccount, "api");
	assert_int_equal(e->o.pos.line, 15);
	batch_free(&b);
}

static const char full_dr[] =
	"apiVersion: networking.istio.io/v1\n"
	"kind: DestinationRule\n"
	"metadata: {name: r}\n"
	"spec:\n"
	"  host: reviews\n"
	"  exportTo: ['*']\n"
	"  trafficPolicy:\n"
	"    loadBalancer: {simple: LEAST_REQUEST, warmup: {duration: 1m30s, minimumPercent: 10, aggression: 2}}\n"
	"    connectionPool:\n"
	"      tcp: {maxConnections: 100, connectTimeout: 30ms, idleTimeout: 1h}\n"
	"      http: {http1MaxPendingRequests: 10, maxRequestsPerConnection: 1, maxRetries: 3,\n"
	"             h2UpgradePolicy: UPGRADE, http2KeepAlive: {interval: 15s, timeout: 5s}}\n"
	"    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m,\n"
	"                       maxEjectionPercent: 50}\n"
	"    tls: {mode: SIMPLE, sni: reviews.example, subjectAltNames: [reviews.example]}\n"
	"    portLevelSettings:\n"
	"    - port: {number: 9080}\n"
	"      tls: {mode: DISABLE}\n"
	"  subsets:\n"
	"  - name: v1\n"
	"    labels: {version: v1}\n"
	"    trafficPolicy:\n"
	"      tls: {mode: ISTIO_MUTUAL}\n"
	"  - name: v2\n"
	"    labels: {version: v2}\n";

static void test_destination_rule_fields(void **state)
{
	const struct destination_rule *dr;
	const struct traffic_policy *tp;
	struct batch b;

	(void)state;
	batch_one(&b, "bookinfo", "dr.yaml", full_dr);
	assert_int_equal(b.diag.errors, 0);
	dr = find_res(&b.p, K_DESTINATION_RULE, "r")->spec;
	tp = dr->trafficPolicy;
	assert_string_equal(dr->host, "reviews");
	assert_string_equal(tp->loadBalancer->simple, "LEAST_REQUEST");
	assert_int_equal(tp->loadBalancer->warmup->duration, 90000);
	assert_true(fabs(tp->loadBalancer->warmup->minimumPercent - 10) < 1e-9);
	assert_int_equal(tp->connectionPool->tcp->maxConnections, 100);
	assert_int_equal(tp->connectionPool->tcp->connectTimeout, 30);
	assert_int_equal(tp->connectionPool->tcp->idleTimeout, 3600000);
	assert_int_equal(tp->connectionPool->http->maxRetries, 3);
	assert_int_equal(tp->connectionPool->http->http2KeepAlive->interval, 15000);
	assert_string_equal(tp->connectionPool->http->h2UpgradePolicy, "UPGRADE");
	assert_int_equal(tp->outlierDetection->consecutive5xxErrors, 7);
	assert_int_equal(tp->outlierDetection->interval, 300000);
	assert_int_equal(tp->outlierDetection->maxEjectionPercent, 50);
	assert_string_equal(tp->tls->mode, "SIMPLE");
	assert_string_equal(tp->tls->sni, "reviews.example");
	assert_string_equal(tp->tls->subjectAltNames.v[0], "reviews.example");
	assert_int_equal(tp->portLevelSettings.v[0].port->number, 9080);
	assert_string_equal(tp->portLevelSettings.v[0].tls->mode, "DISABLE");
	assert_int_equal(dr->subsets.n, 2);
	assert_string_equal(dr->subsets.v[0].trafficPolicy->tls->mode, "ISTIO_MUTUAL");
	assert_string_equal(labels_get(&dr->subsets.v[1].labels, "version"), "v2");
	batch_free(&b);
}

static const char full_vs[] =
	"apiVersion: networking.istio.io/v1\n"
	"kind: VirtualService\n"
	"metadata: {name: v}\n"
	"spec:\n"
	"  hosts: [reviews, reviews.example.com]\n"
	"  gateways: [mesh, istio-system/gw]\n"
	"  exportTo: [.]\n"
	"  http:\n"
	"  - name: canary\n"
	"    match:\n"
	"    - headers:\n"
	"        End-User: {exact: jason}\n"
	"        x-present: {}\n"
	"      uri: {prefix: /api}\n"
	"      method: {exact: GET}\n"
	"      authority: {regex: 'rev[a-z]+(:[0-9]+)?'}\n"
	"      port: 9080\n"
	"      queryParams: {debug: {exact: '1'}}\n"
	"      withoutHeaders: {x-skip: {}}\n"
	"      ignoreUriCase: true\n"
	"    - uri: {exact: /health}\n"
	"    route:\n"
	"    - destination: {host: reviews, subset: v2, port: {number: 9080}}\n"
	"      weight: 7\n"
	"    - destination: {host: reviews, subset: v3}\n"
	"      weight: 3\n"
	"    timeout: 1.5s\n"
	"    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: 'connect-failure,5xx'}\n"
	"    fault:\n"
	"      delay: {fixedDelay: 7s, percentage: {value: 10.5}}\n"
	"      abort: {httpStatus: 555, percentage: {value: 100}}\n"
	"  - route:\n"
	"    - destination: {host: reviews, subset: v1}\n"
	"  tcp:\n"
	"  - match: [{port: 3306, destinationSubnets: [10.0.0.0/8]}]\n"
	"    route: [{destination: {host: db}, weight: 100}]\n"
	"  tls:\n"
	"  - match: [{sniHosts: [reviews.example.com], port: 443}]\n"
	"    route: [{destination: {host: reviews}}]\n";

static void test_virtual_service_fields(void **state)
{
	const struct virtual_service *vs;
	const struct http_match *m;
	const struct http_route *r;
	struct batch b;

	(void)state;
	batch_one(&b, "bookinfo", "vs.yaml", full_vs);
	assert_int_equal(b.diag.errors, 0);
	vs = find_res(&b.p, K_VIRTUAL_SERVICE, "v")->spec;
	assert_int_equal(vs->hosts.n, 2);
	assert_string_equal(vs->gateways.v[1], "istio-system/gw");
	r = &vs->http.v[0];
	assert_string_equal(r->name, "canary");
	m = &r->match.v[0];
	/* header names compare lower-case, as HTTP does */
	assert_string_equal(m->headers.v[0].k, "end-user");
	assert_string_equal(((struct string_match *)m->headers.v[0].o)->exact, "jason");
	assert_null(((struct string_match *)m->headers.v[1].o)->exact);
	assert_string_equal(m->uri->prefix, "/api");
	assert_string_equal(m->method->exact, "GET");
	assert_string_equal(m->authority->regex, "rev[a-z]+(:[0-9]+)?");
	assert_int_equal(m->port, 9080);
	assert_string_equal(((struct string_match *)m->queryParams.v[0].o)->exact, "1");
	assert_string_equal(m->withoutHeaders.v[0].k, "x-skip");
	assert_true(m->ignoreUriCase);
	assert_string_equal(r->match.v[1].uri->exact, "/health");
	assert_int_equal(r->route.v[0].weight, 7);
	assert_int_equal(r->route.v[0].destination->port->number, 9080);
	assert_string_equal(r->route.v[1].destination->subset, "v3");
	assert_int_equal(r->timeout, 1500);
	assert_int_equal(r->retries->attempts, 3);
	assert_int_equal(r->retries->perTryTimeout, 500);
	assert_string_equal(r->retries->retryOn, "connect-failure,5xx");
	assert_int_equal(r->fault->delay->fixedDelay, 7000);
	assert_true(fabs(r->fault->delay->percentage->value - 10.5) < 1e-9);
	assert_int_equal(r->fault->abort->httpStatus, 555);
	assert_int_equal(vs->tcp.v[0].match.v[0].port, 3306);
	assert_string_equal(vs->tcp.v[0].match.v[0].destinationSubnets.v[0], "10.0.0.0/8");
	assert_string_equal(vs->tls.v[0].match.v[0].sniHosts.v[0], "reviews.example.com");
	batch_free(&b);
}

static const char full_gw_k8s[] =
	"apiVersion: networking.istio.io/v1alpha3\n"
	"kind: Gateway\n"
	"metadata: {name: eastwest, namespace: istio-system}\n"
	"spec:\n"
	"  selector: {istio: eastwestgateway}\n"
	"  servers:\n"
	"  - port: {number: 15443, name: tls, protocol: TLS}\n"
	"    hosts: ['*.local', 'ns1/*.global']\n"
	"    tls: {mode: AUTO_PASSTHROUGH}\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: WorkloadEntry\n"
	"metadata: {name: vm1}\n"
	"spec: {address: 10.9.0.1, labels: {app: db}, serviceAccount: db, network: vm, weight: 2,\n"
	"       ports: {mysql: 3306}}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Namespace\n"
	"metadata: {name: hello, labels: {istio-injection: enabled}}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: ServiceAccount\n"
	"metadata: {name: sleep}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: helloworld, labels: {app: helloworld}}\n"
	"spec:\n"
	"  clusterIP: 10.96.0.10\n"
	"  ports: [{port: 5000, name: http, targetPort: web}]\n"
	"  selector: {app: helloworld}\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Pod\n"
	"metadata: {name: hw-1, labels: {app: helloworld, version: v1}}\n"
	"spec:\n"
	"  nodeName: node1\n"
	"  serviceAccountName: helloworld\n"
	"  containers: [{name: hw, image: x, ports: [{containerPort: 5001, name: web}]}]\n"
	"status: {podIP: 10.244.0.5}\n"
	"---\n"
	"apiVersion: discovery.k8s.io/v1\n"
	"kind: EndpointSlice\n"
	"metadata: {name: ext-1, labels: {kubernetes.io/service-name: ext}}\n"
	"addressType: IPv4\n"
	"endpoints:\n"
	"- addresses: [10.0.9.1]\n"
	"  conditions: {ready: true}\n"
	"ports: [{name: http, port: 8080}]\n"
	"---\n"
	"apiVersion: apps/v1\n"
	"kind: Deployment\n"
	"metadata: {name: hw-v2}\n"
	"spec:\n"
	"  replicas: 2\n"
	"  selector: {matchLabels: {app: helloworld, version: v2}}\n"
	"  template:\n"
	"    metadata: {labels: {app: helloworld, version: v2}}\n"
	"    spec:\n"
	"      serviceAccountName: helloworld\n"
	"      containers: [{name: hw, image: x, imagePullPolicy: IfNotPresent,\n"
	"                    ports: [{containerPort: 5000}]}]\n";

static void test_gateway_and_kubernetes_fields(void **state)
{
	const struct resource *r;
	const struct gateway *gw;
	const struct k8s_service *svc;
	const struct pod_spec *pod;
	const struct deployment_spec *dep;
	const struct workload_entry *we;
	struct batch b;

	(void)state;
	batch_one(&b, "hello", "k.yaml", full_gw_k8s);
	assert_int_equal(b.diag.errors, 0);
	assert_int_equal(b.p.n, 8);
	gw = find_res(&b.p, K_GATEWAY, "eastwest")->spec;
	assert_string_equal(labels_get(&gw->selector, "istio"), "eastwestgateway");
	assert_int_equal(gw->servers.v[0].port->number, 15443);
	assert_string_equal(gw->servers.v[0].tls->mode, "AUTO_PASSTHROUGH");
	assert_string_equal(gw->servers.v[0].hosts.v[1], "ns1/*.global");
	we = find_res(&b.p, K_WORKLOAD_ENTRY, "vm1")->spec;
	assert_int_equal(we->weight, 2);
	assert_string_equal(labels_get(&we->ports, "mysql"), "3306");
	r = find_res(&b.p, K_NAMESPACE, "hello");
	assert_string_equal(r->ns, "");
	assert_string_equal(labels_get(&r->metadata->labels, "istio-injection"), "enabled");
	assert_non_null(find_res(&b.p, K_SERVICE_ACCOUNT, "sleep"));
	svc = find_res(&b.p, K_SERVICE, "helloworld")->spec;
	assert_string_equal(svc->clusterIP, "10.96.0.10");
	assert_string_equal(svc->ports.v[0].targetPort, "web");
	r = find_res(&b.p, K_POD, "hw-1");
	pod = r->spec;
	assert_string_equal(r->status->podIP, "10.244.0.5");
	assert_string_equal(pod->nodeName, "node1");
	assert_string_equal(pod->serviceAccountName, "helloworld");
	assert_int_equal(pod->containers.v[0].ports.v[0].containerPort, 5001);
	r = find_res(&b.p, K_ENDPOINT_SLICE, "ext-1");
	assert_string_equal(r->addressType, "IPv4");
	assert_string_equal(r->endpoints.v[0].addresses.v[0], "10.0.9.1");
	assert_int_equal(r->ports.v[0].port, 8080);
	dep = find_res(&b.p, K_DEPLOYMENT, "hw-v2")->spec;
	assert_int_equal(dep->replicas, 2);
	assert_string_equal(labels_get(&dep->selector->matchLabels, "version"), "v2");
	assert_string_equal(labels_get(&dep->template->metadata->labels, "version"), "v2");
	/* the named targetPort resolves through the pod's container port */
	{
		const struct c_frontend *fe =
			find_fe(&b.plan, "helloworld.hello.svc.cluster.local", 5000);

		assert_non_null(fe);
		assert_int_equal(fe->routes[0].dests[0].n_eps, 1);
		assert_int_equal(fe->routes[0].dests[0].eps[0].port, 5001);
	}
	batch_free(&b);
}

/* ---- namespaces and names ---- */

static void test_namespace_and_hosts(void **state)
{
	struct arena a = { 0 };
	struct batch b;

	(void)state;
	/* -n applies when metadata.namespace is absent; "default" when neither is given */
	batch_one(&b, "hello", "t.yaml", VS_HEAD "  hosts: [helloworld]\n  tcp:\n  - route:\n    - destination: {host: helloworld}\n");
	assert_string_equal(b.p.res[0]->ns, "hello");
	batch_free(&b);
	batch_one(&b, NULL, "t.yaml", VS_HEAD "  hosts: [helloworld]\n  tcp:\n  - route:\n    - destination: {host: helloworld}\n");
	assert_string_equal(b.p.res[0]->ns, "default");
	batch_free(&b);

	assert_string_equal(host_fqdn(&a, "helloworld", "hello"), "helloworld.hello.svc.cluster.local");
	assert_string_equal(host_fqdn(&a, "HelloWorld.Hello.Global", "x"), "helloworld.hello.global");
	assert_string_equal(host_fqdn(&a, "*", "x"), "*");
	assert_true(host_matches("*.global", "helloworld.hello.global"));
	assert_false(host_matches("*.global", "helloworld.hello.svc.cluster.local"));
	assert_true(host_matches("Reviews.Default.svc.cluster.local", "reviews.default.svc.cluster.local"));
	assert_true(host_matches("*", "anything"));
	arena_free(&a);
}

static void test_durations(void **state)
{
	static const struct {
		const char *in;
		int64_t ms;
		int ok;
	} cases[] = {
		{ "10s", 10000, 1 }, { "1.5s", 1500, 1 }, { "100ms", 100, 1 }, { "1m30s", 90000, 1 },
		{ "1h", 3600000, 1 }, { "0", 0, 1 },     { "250us", 1, 1 },     { "", 0, 0 },
		{ "10", 0, 0 },      { "-1s", 0, 0 },    { "1d", 0, 0 },        { "s", 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = -1;
		int rc = parse_duration_ms(cases[i].in, &ms);

		if (cases[i].ok && (rc || ms != cases[i].ms))
			fail_msg("duration \"%s\": expected %lld ms, got rc %d, %lld ms", cases[i].in,
				 (long long)cases[i].ms, rc, (long long)ms);
		if (!cases[i].ok && !rc)
			fail_msg("duration \"%s\": expected an error, got %lld ms", cases[i].in,
				 (long long)ms);
	}
}

/* All errors of a batch are reported, not only the first. */
static void test_all_errors_reported(void **state)
{
	const char *docs[] = {
		"a.yaml", VS_HEAD "  hosts: [a]\n  http:\n  - route:\n    - {destination: {host: a}, weight: -1}\n    - {destination: {host: b}, weight: 1}\n",
		"b.yaml", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec: {}\n",
		"c.yaml", "kind: [\n",
		NULL,
	};
	struct batch b;

	(void)state;
	batch_run(&b, "hello", docs);
	assert_int_equal(b.diag.errors, 3);
	assert_contains(b.diag_text, "a.yaml:9:40: error:");
	assert_contains(b.diag_text, "b.yaml:4:7: error: DestinationRule hello/d: host: Required value");
	assert_contains(b.diag_text, "c.yaml:");
	batch_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_table),
		cmocka_unit_test(test_alias_expansion_bounded),
		cmocka_unit_test(test_huge_file_refused),
		cmocka_unit_test(test_deep_nesting_no_crash),
		cmocka_unit_test(test_service_entry_fields),
		cmocka_unit_test(test_destination_rule_fields),
		cmocka_unit_test(test_virtual_service_fields),
		cmocka_unit_test(test_gateway_and_kubernetes_fields),
		cmocka_unit_test(test_namespace_and_hosts),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_all_errors_reported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
