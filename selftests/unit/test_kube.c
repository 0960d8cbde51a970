// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Kubernetes source: kubeconfig and in-cluster config, list/watch events, snapshots, bursts. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/kube/kube.h"

static char dir[] = "/tmp/ksteer-test-kube-XXXXXX";

static void put_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const char *path_of(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

/* Output of a config call that fails: the message names file and field. */
static char *config_err(const char *file, const char *context, int *rc)
{
	struct kube_config c;
	int saved = dup(2), fd = open(path_of("stderr"), O_RDWR | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	fflush(stderr);
	dup2(fd, 2); /* the parser reports on stderr, as the CLI shows it */
	*rc = kube_config_load(&c, path_of(file), context);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	return slurp(path_of("stderr"));
}

/* "-----BEGIN X-----" in base64, so a -data field decodes to something checkable. */
#define PEM_B64 "LS0tLS1CRUdJTiBYLS0tLS0K"

static const char *kubeconfig =
	"apiVersion: v1\n"
	"kind: Config\n"
	"current-context: one\n"
	"clusters:\n"
	"- name: c1\n"
	"  cluster:\n"
	"    server: https://127.0.0.1:6443/\n"
	"    certificate-authority: pki/ca.crt\n"
	"- name: c2\n"
	"  cluster:\n"
	"    server: https://[::1]:7443\n"
	"    certificate-authority-data: " PEM_B64 "\n"
	"users:\n"
	"- name: u1\n"
	"  user: {token: abc.def}\n"
	"- name: u2\n"
	"  user:\n"
	"    tokenFile: /var/run/token\n"
	"    client-certificate-data: " PEM_B64 "\n"
	"    client-key: key.pem\n"
	"contexts:\n"
	"- name: one\n"
	"  context: {cluster: c1, user: u1}\n"
	"- name: two\n"
	"  context: {cluster: c2, user: u2, namespace: hello}\n";

static void test_kubeconfig(void **state)
{
	struct kube_config c;

	(void)state;
	put_file("config", kubeconfig);
	assert_int_equal(kube_config_load(&c, path_of("config"), NULL), 0);
	assert_string_equal(c.server, "https://127.0.0.1:6443");
	/* relative to the kubeconfig's directory, as kubectl reads it */
	assert_string_equal(c.ca_file, path_of("pki/ca.crt"));
	assert_null(c.ca_pem);
	assert_string_equal(c.token, "abc.def");
	assert_null(c.token_file);
	assert_null(c.cert_file);
	assert_non_null(strstr(c.source, "context one"));
	kube_config_free(&c);

	assert_int_equal(kube_config_load(&c, path_of("config"), "two"), 0);
	assert_string_equal(c.server, "https://[::1]:7443");
	assert_null(c.ca_file);
	assert_int_equal(c.ca_pem_len, strlen("-----BEGIN X-----\n"));
	assert_memory_equal(c.ca_pem, "-----BEGIN X-----\n", c.ca_pem_len);
	assert_null(c.token);
	assert_string_equal(c.token_file, "/var/run/token");
	assert_non_null(c.cert_pem);
	assert_string_equal(c.key_file, path_of("key.pem"));
	kube_config_free(&c);
}

static void test_kubeconfig_errors(void **state)
{
	static const struct {
		const char *text, *context, *want;
	} cases[] = {
		{ "clusters: []\n", NULL, "current-context: Required value" },
		{ "current-context: x\ncontexts: []\n", NULL, "no context named \"x\"" },
		{ "contexts:\n- name: a\n  context: {user: u}\n", "a",
		  "contexts[a].context.cluster: Required value" },
		{ "contexts:\n- name: a\n  context: {cluster: c}\n", "a",
		  "no cluster named \"c\" (context a)" },
		{ "contexts:\n- name: a\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: {}\n",
		  "a", "clusters[c].cluster.server: Required value" },
		{ "contexts:\n- name: a\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: "
		  "{server: ftp://x}\n",
		  "a", "clusters[c].cluster.server: \"ftp://x\" is not an http(s) URL" },
		{ "contexts:\n- name: a\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  "
		  "cluster: {server: https://x}\nusers: []\n",
		  "a", "no user named \"u\"" },
		{ "contexts:\n- name: a\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  "
		  "cluster: {server: https://x}\nusers:\n- name: u\n  user: {exec: {command: aws}}\n",
		  "a", "users[u].user.exec: credential plugins are not run" },
		{ "contexts:\n- name: a\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  "
		  "cluster: {server: https://x}\nusers:\n- name: u\n  user: {client-certificate: "
		  "c.pem}\n",
		  "a", "users[u].user.client-key: Required value (with client-certificate)" },
		{ "contexts:\n- name: a\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: "
		  "{server: https://x, certificate-authority-data: '#!'}\n",
		  "a", "clusters[c].cluster.certificate-authority-data: not base64" },
		{ "a: [1\n", NULL, "invalid YAML" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out;
		int rc;

		put_file("bad", cases[i].text);
		out = config_err("bad", cases[i].context, &rc);
		if (rc != -EINVAL || !strstr(out, cases[i].want) || !strstr(out, path_of("bad")))
			fail_msg("case %zu: want -EINVAL and \"%s\" naming the file, got %d \"%s\"", i,
				 cases[i].want, rc, out);
		free(out);
	}
	{
		char *out;
		int rc;

		out = config_err("missing", NULL, &rc);
		assert_int_equal(rc, -ENOENT);
		assert_contains(out, "open kubeconfig");
		free(out);
	}
}

static void test_incluster(void **state)
{
	struct kube_config c;

	(void)state;
	put_file("token", "tok\n");
	put_file("ca.crt", "-----BEGIN CERTIFICATE-----\n");
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kube_config_incluster(&c, dir), 0);
	assert_string_equal(c.server, "https://10.96.0.1:443");
	assert_string_equal(c.token_file, path_of("token"));
	assert_string_equal(c.ca_file, path_of("ca.crt"));
	kube_config_free(&c);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	assert_int_equal(kube_config_incluster(&c, dir), 0);
	assert_string_equal(c.server, "https://[fd00::1]:443");
	kube_config_free(&c);
	assert_int_equal(kube_config_incluster(&c, "/nonexistent"), -ENOENT);
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kube_config_incluster(&c, dir), -ENOENT);
}

/* ---- list, watch, snapshot ---- */

#define SVC_OBJ(rv, port)                                                                          \
	"{\"metadata\": {\"name\": \"hw\", \"namespace\": \"hello\", \"resourceVersion\": \"" rv  \
	"\", \"managedFields\": [{\"manager\": \"kubectl\"}]}, \"spec\": {\"clusterIP\": "        \
	"\"10.96.0.10\", \"selector\": {\"app\": \"hw\"}, \"ports\": [{\"name\": \"http\", "       \
	"\"port\": " port "}]}, \"status\": {\"loadBalancer\": {}}}"

#define POD_OBJ(name, ver, ip, node, phase)                                                        \
	"{\"metadata\": {\"name\": \"" name "\", \"namespace\": \"hello\", \"labels\": {\"app\": " \
	"\"hw\", \"version\": \"" ver "\"}}, \"spec\": {\"nodeName\": \"" node "\"}, \"status\": " \
	"{\"phase\": \"" phase "\", \"podIP\": \"" ip "\", \"conditions\": [{\"type\": "          \
	"\"Ready\"}]}}"

static void test_list_pages(void **state)
{
	struct kube_store st, stg;
	char cont[64], err[256];

	(void)state;
	kube_store_init(&st, KK_POD, "v1", "node1");
	kube_store_init(&stg, KK_POD, "v1", "node1");
	assert_int_equal(kube_store_list(&stg,
					 "{\"metadata\": {\"resourceVersion\": \"10\", \"continue\": "
					 "\"p2\"}, \"items\": [" POD_OBJ("a", "v1", "10.0.0.1", "node1",
									 "Running") "]}",
					 strlen("{\"metadata\": {\"resourceVersion\": \"10\", "
						"\"continue\": \"p2\"}, \"items\": [" POD_OBJ(
							"a", "v1", "10.0.0.1", "node1", "Running") "]}"),
					 cont, sizeof(cont), err, sizeof(err)),
			 KEV_CHANGED);
	assert_string_equal(cont, "p2");
	{
		const char *p2 = "{\"metadata\": {\"resourceVersion\": \"12\"}, \"items\": [" POD_OBJ(
			"b", "v2", "10.0.0.2", "node2", "Running") ", " POD_OBJ("c", "v2", "10.0.0.3",
									 "node1",
									 "Succeeded") "]}";

		assert_int_equal(kube_store_list(&stg, p2, strlen(p2), cont, sizeof(cont), err,
						 sizeof(err)),
				 KEV_CHANGED);
	}
	assert_string_equal(cont, "");
	/* a finished pod's address is free again: it is no workload */
	assert_int_equal(stg.n, 2);
	assert_int_equal(kube_store_replace(&st, &stg), KEV_CHANGED);
	assert_int_equal(st.n, 2);
	assert_int_equal(st.n_local, 1);
	assert_string_equal(st.rv, "12");
	assert_int_equal(stg.n, 0);
	/* the same objects listed again (after a 410): nothing changed */
	{
		const char *l = "{\"metadata\": {\"resourceVersion\": \"40\"}, \"items\": [" POD_OBJ(
			"b", "v2", "10.0.0.2", "node2", "Running") ", " POD_OBJ("a", "v1", "10.0.0.1",
									 "node1",
									 "Running") "]}";

		kube_store_list(&stg, l, strlen(l), cont, sizeof(cont), err, sizeof(err));
		assert_int_equal(kube_store_replace(&st, &stg), KEV_NONE);
		assert_string_equal(st.rv, "40");
	}
	assert_int_equal(kube_store_list(&stg, "{\"kind\": \"Status\"}", 18, cont, sizeof(cont), err,
					 sizeof(err)),
			 KEV_ERROR);
	assert_contains(err, "not a list");
	kube_store_clear(&st);
	kube_store_clear(&stg);
}

static enum kube_ev ev(struct kube_store *s, const char *type, const char *obj, char *err)
{
	char line[8192];

	snprintf(line, sizeof(line), "{\"type\": \"%s\", \"object\": %s}", type, obj);
	return kube_store_event(s, line, strlen(line), err, 256);
}

static void test_events(void **state)
{
	struct kube_store s;
	struct kube_snap *snap = calloc(1, sizeof(*snap));
	char err[256];

	(void)state;
	kube_store_init(&s, KK_SERVICE, "v1", NULL);
	assert_int_equal(ev(&s, "ADDED", SVC_OBJ("5", "5000"), err), KEV_CHANGED);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.rv, "5");
	/* a new resourceVersion, managedFields or status alone: the same routing, no snapshot */
	assert_int_equal(ev(&s, "MODIFIED", SVC_OBJ("6", "5000"), err), KEV_NONE);
	assert_string_equal(s.rv, "6");
	assert_int_equal(ev(&s, "MODIFIED", SVC_OBJ("7", "5001"), err), KEV_CHANGED);
	kube_store_snap(&s, snap);
	assert_int_equal(snap->n, 1);
	assert_string_equal(snap->objs[0].name, "api:Service hello/hw");
	assert_contains(snap->objs[0].text, "\"kind\": \"Service\"");
	assert_contains(snap->objs[0].text, "5001");
	assert_null(strstr(snap->objs[0].text, "managedFields"));
	assert_null(strstr(snap->objs[0].text, "loadBalancer"));
	/* the snapshot holds its objects: a delete in the store leaves it whole */
	assert_int_equal(ev(&s, "DELETED", SVC_OBJ("8", "5001"), err), KEV_CHANGED);
	assert_int_equal(s.n, 0);
	assert_contains(snap->objs[0].text, "5001");
	kube_snap_free(snap);
	assert_int_equal(ev(&s, "DELETED", SVC_OBJ("9", "5001"), err), KEV_NONE);
	assert_int_equal(ev(&s, "BOOKMARK", "{\"metadata\": {\"resourceVersion\": \"77\"}}", err),
			 KEV_NONE);
	assert_string_equal(s.rv, "77");
	assert_int_equal(s.bookmarks, 1);
	assert_int_equal(ev(&s, "ERROR",
			    "{\"kind\": \"Status\", \"code\": 410, \"message\": \"too old resource "
			    "version\"}",
			    err),
			 KEV_RELIST);
	assert_contains(err, "410 too old resource version");
	assert_int_equal(ev(&s, "ERROR", "{\"kind\": \"Status\", \"code\": 500}", err), KEV_ERROR);
	assert_int_equal(kube_store_event(&s, "{\"type\": ", 9, err, sizeof(err)), KEV_ERROR);
	assert_contains(err, "unreadable event");
	assert_int_equal(ev(&s, "SURPRISE", "{}", err), KEV_ERROR);
	kube_store_clear(&s);
}

static void test_pod_trim_and_phase(void **state)
{
	struct kube_store s;
	struct kube_snap *snap = calloc(1, sizeof(*snap));
	char err[256];

	(void)state;
	kube_store_init(&s, KK_POD, "v1", "node1");
	assert_int_equal(ev(&s, "ADDED", POD_OBJ("a", "v1", "10.0.0.1", "node1", "Pending"), err),
			 KEV_CHANGED);
	/* phase and conditions are dropped: Pending -> Running with the same address is no change */
	assert_int_equal(ev(&s, "MODIFIED", POD_OBJ("a", "v1", "10.0.0.1", "node1", "Running"), err),
			 KEV_NONE);
	assert_int_equal(s.n_local, 1);
	kube_store_snap(&s, snap);
	assert_contains(snap->objs[0].text, "\"podIP\": \"10.0.0.1\"");
	assert_null(strstr(snap->objs[0].text, "conditions"));
	assert_null(strstr(snap->objs[0].text, "phase"));
	/* a pod that ran to completion leaves */
	assert_int_equal(ev(&s, "MODIFIED", POD_OBJ("a", "v1", "10.0.0.1", "node1", "Failed"), err),
			 KEV_CHANGED);
	assert_int_equal(s.n, 0);
	assert_int_equal(s.n_local, 0);
	kube_snap_free(snap);
	kube_store_clear(&s);
}

static void test_object_bound(void **state)
{
	struct kube_store s;
	size_t big = KUBE_MAX_OBJECT_BYTES + 100;
	char *line = malloc(big + 200), err[256];
	int n;

	(void)state;
	kube_store_init(&s, KK_SERVICE, "v1", NULL);
	n = sprintf(line, "{\"type\": \"ADDED\", \"object\": {\"metadata\": {\"name\": \"huge\", "
			  "\"namespace\": \"x\", \"annotations\": {\"a\": \"");
	memset(line + n, 'a', big);
	strcpy(line + n + big, "\"}}}}");
	assert_int_equal(kube_store_event(&s, line, strlen(line), err, sizeof(err)), KEV_OVERFLOW);
	assert_contains(err, "Service x/huge");
	assert_contains(err, "byte limit");
	assert_int_equal(s.n, 0);
	free(line);
	kube_store_clear(&s);
}

/* A snapshot is what the loader, validator and compiler read: names say kind/namespace/name. */
static void test_snapshot_loads(void **state)
{
	struct kube_store s[3];
	struct kube_snap *snap = calloc(1, sizeof(*snap));
	const char *docs[16];
	struct batch b;
	char err[256];
	int n = 0;

	(void)state;
	kube_store_init(&s[0], KK_SERVICE, "v1", NULL);
	kube_store_init(&s[1], KK_POD, "v1", NULL);
	kube_store_init(&s[2], KK_DESTINATION_RULE, "networking.istio.io/v1beta1", NULL);
	ev(&s[0], "ADDED", SVC_OBJ("1", "5000"), err);
	ev(&s[1], "ADDED", POD_OBJ("hw-v1", "v1", "10.244.0.1", "n", "Running"), err);
	ev(&s[1], "ADDED", POD_OBJ("hw-v2", "v2", "10.244.0.2", "n", "Running"), err);
	ev(&s[2], "ADDED",
	   "{\"metadata\": {\"name\": \"hw\", \"namespace\": \"hello\"}, \"spec\": {\"host\": \"hw\", "
	   "\"subsets\": [{\"name\": \"v1\", \"labels\": {\"version\": \"v1\"}}]}}",
	   err);
	for (int i = 0; i < 3; i++)
		kube_store_snap(&s[i], snap);
	assert_int_equal(snap->n, 4);
	for (unsigned i = 0; i < snap->n; i++) {
		docs[n++] = snap->objs[i].name;
		docs[n++] = snap->objs[i].text;
	}
	docs[n] = NULL;
	batch_run(&b, "default", docs);
	if (b.diag.errors)
		fail_msg("the snapshot does not load: %s", b.diag_text);
	assert_int_equal(b.plan.img.n_backends, 2);
	batch_free(&b);

	/* a refused object is named by kind, namespace, name and field */
	ev(&s[2], "MODIFIED",
	   "{\"metadata\": {\"name\": \"hw\", \"namespace\": \"hello\"}, \"spec\": {\"host\": \"hw\", "
	   "\"subsets\": [{\"name\": \"v1\", \"lables\": {}}]}}",
	   err);
	kube_snap_free(snap);
	snap = calloc(1, sizeof(*snap));
	kube_store_snap(&s[2], snap);
	docs[0] = snap->objs[0].name;
	docs[1] = snap->objs[0].text;
	docs[2] = NULL;
	batch_run(&b, "default", docs);
	assert_true(b.diag.errors > 0);
	assert_contains(b.diag_text, "api:DestinationRule hello/hw");
	assert_contains(b.diag_text, "subsets[0].lables");
	batch_free(&b);
	kube_snap_free(snap);
	for (int i = 0; i < 3; i++)
		kube_store_clear(&s[i]);
}

static void test_burst(void **state)
{
	struct kube_burst b = { 0 };

	(void)state;
	assert_int_equal(kube_burst_due(&b, 1000), -1);
	kube_burst_change(&b, 1000);
	assert_int_equal(kube_burst_due(&b, 1000), KUBE_QUIET_MS);
	kube_burst_change(&b, 1100);
	assert_int_equal(kube_burst_due(&b, 1100), KUBE_QUIET_MS);
	assert_int_equal(kube_burst_due(&b, 1100 + KUBE_QUIET_MS), 0);
	/* a change every 100 ms never goes quiet: the snapshot still goes by the cap */
	for (uint64_t t = 1200; t < 1000 + KUBE_MAX_DELAY_MS; t += 100)
		kube_burst_change(&b, t);
	assert_int_equal(kube_burst_due(&b, 1000 + KUBE_MAX_DELAY_MS - 50), 50);
	assert_int_equal(kube_burst_due(&b, 1000 + KUBE_MAX_DELAY_MS), 0);
}

static void test_backoff(void **state)
{
	uint32_t lo = UINT32_MAX, hi = 0;

	(void)state;
	for (uint32_t r = 0; r < 1000; r++) {
		uint32_t d = kube_backoff_ms(0, r * 2654435761u);

		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	assert_true(lo >= KUBE_BACKOFF_MIN_MS / 2 && hi <= KUBE_BACKOFF_MIN_MS && lo < hi);
	assert_in_range(kube_backoff_ms(3, 0), KUBE_BACKOFF_MIN_MS * 4, KUBE_BACKOFF_MIN_MS * 8);
	for (unsigned a = 0; a < 100; a++)
		assert_true(kube_backoff_ms(a, 0xffffffffu) <= KUBE_BACKOFF_MAX_MS);
	assert_in_range(kube_backoff_ms(1000, 7), KUBE_BACKOFF_MAX_MS / 2, KUBE_BACKOFF_MAX_MS);
}

/* The thread against nothing listening: it backs off, counts, names the error, stops. */
static void test_watch_unreachable(void **state)
{
	struct kube_config c = { 0 };
	struct kube *k;
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	int fd = -1;

	(void)state;
	c.server = strdup("http://127.0.0.1:1");
	c.token = strdup("inline-token");
	c.source = strdup("test");
	assert_int_equal(kube_start(&k, &c, "n1", &fd), 0);
	assert_null(c.server); /* taken over */
	assert_true(fd >= 0);
	usleep(600 * 1000);
	assert_null(kube_take(k)); /* nothing listed: no snapshot */
	f = open_memstream(&out, &len);
	kube_print_status(k, f);
	fclose(f);
	assert_contains(out, "kube objects Namespace ?");
	assert_contains(out, "lists 0");
	assert_contains(out, "Couldn't connect");
	assert_null(strstr(out, "reconnects 0 "));
	/* the backoff: in 600 ms at most a few tries per kind, not a spin */
	{
		unsigned long long r = 0;
		const char *p = strstr(out, "reconnects ");

		assert_non_null(p);
		r = strtoull(p + 11, NULL, 10);
		if (r < KK_MAX || r > 4 * KK_MAX)
			fail_msg("reconnects %llu in 600 ms for %d kinds: %s", r, KK_MAX, out);
	}
	free(out);
	kube_stop(k);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kubeconfig),	   cmocka_unit_test(test_kubeconfig_errors),
		cmocka_unit_test(test_incluster),	   cmocka_unit_test(test_list_pages),
		cmocka_unit_test(test_events),		   cmocka_unit_test(test_pod_trim_and_phase),
		cmocka_unit_test(test_object_bound),	   cmocka_unit_test(test_snapshot_loads),
		cmocka_unit_test(test_burst),		   cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_watch_unreachable),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
