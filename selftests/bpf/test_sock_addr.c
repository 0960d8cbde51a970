// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The socket programs, program by program, in the kernel selftests' sock_addr
 * style: a policy compiled by the agent's own compiler and written by its own
 * datapath code into a fresh cgroup, then real sockets of this process (moved
 * into that cgroup, in a fresh network namespace; the shim's listener made
 * from a second cgroup, the agent's) dial addresses. Each row
 * says what was dialled and what must follow: the listener that accepts (the
 * rewrite), what getpeername shows, which connect counter moved. Needs root
 * and BPF: it fails, naming what is missing, rather than skip.
 */
#include "../unit/harness.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/datapath/counters.h"
#include "agent/datapath/datapath.h"
#include "bpf/lib/route.h"
#include "fixture.h"

#define SELF_MARK 0x5e1f
#define SHIM_ADDR "127.0.0.99"
#define SHIM_PORT 15001
#define DNS_PORT 15053

static struct datapath dp;
static char instance[32];
static bool dp_up;
/* the pods' cgroup, where connects are routed, and the agent's own (the shim's sockets) */
static char cg_dir[PATH_MAX], cg_agent[PATH_MAX], cg_home[PATH_MAX], cg_mount[PATH_MAX];
static struct batch batch;

/* Two services in the kernel, one weighted, one without endpoints, one for the shim. */
static const char policy_a[] =
    "apiVersion: networking.istio.io/v1\n"
    "kind: ServiceEntry\n"
    "metadata: {name: one, namespace: t}\n"
    "spec:\n"
    "  hosts: [one.t.example]\n"
    "  addresses: [240.0.0.1, 'fd00:f::1']\n"
    "  ports: [{number: 80, name: tcp, protocol: TCP}]\n"
    "  location: MESH_INTERNAL\n"
    "  resolution: STATIC\n"
    "  endpoints: [{address: 127.0.0.11}]\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: ServiceEntry\n"
    "metadata: {name: six, namespace: t}\n"
    "spec:\n"
    "  hosts: [six.t.example]\n"
    "  addresses: ['fd00:f::6']\n"
    "  ports: [{number: 80, name: tcp, protocol: TCP}]\n"
    "  location: MESH_INTERNAL\n"
    "  resolution: STATIC\n"
    "  endpoints: [{address: 'fd00::11'}]\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: ServiceEntry\n"
    "metadata: {name: split, namespace: t}\n"
    "spec:\n"
    "  hosts: [split.t.example]\n"
    "  addresses: [240.0.0.2]\n"
    "  ports: [{number: 80, name: tcp, protocol: TCP}]\n"
    "  location: MESH_INTERNAL\n"
    "  resolution: STATIC\n"
    "  endpoints:\n"
    "  - {address: 127.0.0.21, labels: {version: v1}}\n"
    "  - {address: 127.0.0.22, labels: {version: v2}}\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: DestinationRule\n"
    "metadata: {name: split, namespace: t}\n"
    "spec:\n"
    "  host: split.t.example\n"
    "  subsets:\n"
    "  - {name: v1, labels: {version: v1}}\n"
    "  - {name: v2, labels: {version: v2}}\n"
    "  - {name: v9, labels: {version: v9}}\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: VirtualService\n"
    "metadata: {name: split, namespace: t}\n"
    "spec:\n"
    "  hosts: [split.t.example]\n"
    "  tcp:\n"
    "  - route:\n"
    "    - {destination: {host: split.t.example, subset: v1}, weight: 70}\n"
    "    - {destination: {host: split.t.example, subset: v2}, weight: 30}\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: ServiceEntry\n"
    "metadata: {name: none, namespace: t}\n"
    "spec:\n"
    "  hosts: [none.t.example]\n"
    "  addresses: [240.0.0.3]\n"
    "  ports: [{number: 80, name: tcp, protocol: TCP}]\n"
    "  location: MESH_INTERNAL\n"
    "  resolution: STATIC\n"
    "  endpoints: [{address: 127.0.0.31, labels: {version: v1}}]\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: DestinationRule\n"
    "metadata: {name: none, namespace: t}\n"
    "spec:\n"
    "  host: none.t.example\n"
    "  subsets: [{name: v9, labels: {version: v9}}]\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: VirtualService\n"
    "metadata: {name: none, namespace: t}\n"
    "spec:\n"
    "  hosts: [none.t.example]\n"
    "  tcp: [{route: [{destination: {host: none.t.example, subset: v9}}]}]\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: ServiceEntry\n"
    "metadata: {name: web, namespace: t}\n"
    "spec:\n"
    "  hosts: [web.t.example]\n"
    "  addresses: [240.0.0.4]\n"
    "  ports: [{number: 80, name: http, protocol: HTTP}]\n"
    "  location: MESH_INTERNAL\n"
    "  resolution: STATIC\n"
    "  endpoints: [{address: 127.0.0.41}]\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\n"
    "kind: VirtualService\n"
    "metadata: {name: web, namespace: t}\n"
    "spec:\n"
    "  hosts: [web.t.example]\n"
    "  http:\n"
    "  - match: [{headers: {end-user: {exact: jason}}}]\n"
    "    route: [{destination: {host: web.t.example}}]\n"
    "  - route: [{destination: {host: web.t.example}}]\n";

/* The next policy: one.t.example moved to another endpoint. */
static const char policy_b[] = "apiVersion: networking.istio.io/v1\n"
			       "kind: ServiceEntry\n"
			       "metadata: {name: one, namespace: t}\n"
			       "spec:\n"
			       "  hosts: [one.t.example]\n"
			       "  addresses: [240.0.0.1]\n"
			       "  ports: [{number: 80, name: tcp, protocol: TCP}]\n"
			       "  location: MESH_INTERNAL\n"
			       "  resolution: STATIC\n"
			       "  endpoints: [{address: 127.0.0.12}]\n";

/* Every address a row can reach: a TCP listener on port 80 of each. */
static const char *const listen_addrs[] = {
    "127.0.0.11", "127.0.0.12", "127.0.0.21", "127.0.0.22", "127.0.0.31", "127.0.0.41",
    "127.0.0.50", "fd00::11",	"fd00::50",
};
#define N_LISTEN (sizeof(listen_addrs) / sizeof(listen_addrs[0]))
static int listeners[N_LISTEN + 1]; /* the last: the shim's outbound port */

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* An address of either family in a sockaddr_in6 (IPv4 as AF_INET). */
static socklen_t sa_of(const char *addr, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return sizeof(*s4);
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
		fail_msg("bad address in the table: %s", addr);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	return sizeof(*s6);
}

/* "addr:port" ("[addr]:port" for IPv6 other than v4-mapped) of a socket address. */
static const char *sa_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
	} else {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	}
	return buf;
}

static int listen_on(const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t n = sa_of(addr, port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, n) || listen(fd, 1024)) {
		fprintf(stderr, "test_sock_addr: listen on %s:%u: %s\n", addr, port,
			strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The cgroup v2 this process is in, relative to the mount ("0::/x/y" -> "/x/y"). */
static int own_cgroup(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "r");
	char line[PATH_MAX + 8];
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(buf, len, "%s", line + 3);
			rc = 0;
		}
	fclose(f);
	return rc;
}

/* Connections a failed row left in the listeners' queues. */
static void drain(void)
{
	for (size_t i = 0; i <= N_LISTEN; i++)
		for (int fd; (fd = accept(listeners[i], NULL, NULL)) >= 0;)
			close(fd);
}

static void apply(const char *yaml)
{
	uint32_t gen;

	drain();
	batch_free(&batch);
	batch_one(&batch, "t", "policy.yaml", yaml);
	if (batch.diag.errors || batch.compile_rc)
		fail_msg("the test's policy does not compile:\n%s", batch.diag_text);
	assert_int_equal(dp_apply(&dp, &batch.plan.img, &gen), 0);
}

static int join_cgroup(const char *rel)
{
	char path[PATH_MAX + 32], pid[32];

	snprintf(path, sizeof(path), "%s/%s/cgroup.procs", cg_mount, rel);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (write_file(path, pid)) {
		fprintf(stderr, "test_sock_addr: join %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int setup(void **state)
{
	struct dp_opts o = {
	    .sockmap = true,
	    .self_mark = SELF_MARK,
	    .shim_port = SHIM_PORT,
	    .dns_port = DNS_PORT,
	};
	char path[PATH_MAX + 32];

	(void)state;
	if (bpft_env("test_sock_addr", cg_mount, sizeof(cg_mount), instance, sizeof(instance)) ||
	    bpft_sh("test_sock_addr", "ip -6 addr add fd00::11/128 dev lo nodad") ||
	    bpft_sh("test_sock_addr", "ip -6 addr add fd00::50/128 dev lo nodad"))
		return -1;
	if (own_cgroup(cg_home, sizeof(cg_home))) {
		fprintf(stderr, "test_sock_addr: no own cgroup\n");
		return -1;
	}
	snprintf(cg_dir, sizeof(cg_dir), "ksteer-bpftest-%d", (int)getpid());
	snprintf(cg_agent, sizeof(cg_agent), "ksteer-bpftest-%d-agent", (int)getpid());
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", cg_mount, i ? cg_agent : cg_dir);
		if (mkdir(path, 0755)) {
			fprintf(stderr, "test_sock_addr: mkdir %s: %s\n", path, strerror(errno));
			return -1;
		}
	}
	/* as the agent: its shim's listener, and the datapath (sockops on its own cgroup) */
	if (join_cgroup(cg_agent) || (listeners[N_LISTEN] = listen_on(SHIM_ADDR, SHIM_PORT)) < 0)
		return -1;
	bpft_sweep_dead_runs();
	o.instance = instance;
	o.cgroup = cg_dir;
	addr_parse(SHIM_ADDR, &o.shim_addr);
	if (dp_open(&dp, &o)) {
		fprintf(stderr, "test_sock_addr: the datapath did not load (see above)\n");
		return -1;
	}
	dp_up = true;
	/* as a pod from here on */
	if (join_cgroup(cg_dir))
		return -1;
	for (size_t i = 0; i < N_LISTEN; i++)
		if ((listeners[i] = listen_on(listen_addrs[i], 80)) < 0)
			return -1;
	return 0;
}

static int teardown(void **state)
{
	char path[PATH_MAX + 32], pid[32];

	(void)state;
	batch_free(&batch);
	if (dp_up)
		dp_close(&dp);
	if (instance[0])
		dp_uninstall(instance);
	for (size_t i = 0; i <= N_LISTEN; i++)
		if (listeners[i] > 0)
			close(listeners[i]);
	snprintf(path, sizeof(path), "%s%s/cgroup.procs", cg_mount, cg_home);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	write_file(path, pid);
	snprintf(path, sizeof(path), "%s/%s", cg_mount, cg_dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/%s", cg_mount, cg_agent);
	rmdir(path);
	return 0;
}

static void stats(uint64_t v[KS_STAT_MAX])
{
	assert_int_equal(dp_counters_read(dp.fds[DP_STATS], KS_STAT_MAX, v), 0);
}

/* Accepts the connection a row made: the listener's address, or "" when none has one. */
static void accepted(char *buf, size_t len)
{
	struct pollfd p[N_LISTEN + 1];
	struct sockaddr_storage ss;
	socklen_t n = sizeof(ss);

	buf[0] = 0;
	for (size_t i = 0; i <= N_LISTEN; i++)
		p[i] = (struct pollfd){.fd = listeners[i], .events = POLLIN};
	if (poll(p, N_LISTEN + 1, 1000) <= 0)
		return;
	for (size_t i = 0; i <= N_LISTEN; i++) {
		int fd;

		if (!(p[i].revents & POLLIN))
			continue;
		fd = accept(listeners[i], NULL, NULL);
		if (fd < 0)
			continue;
		if (!getsockname(fd, (struct sockaddr *)&ss, &n))
			sa_str(&ss, buf, len);
		close(fd);
		return;
	}
}

enum { ANY_OF = 1 };

struct row {
	const char *what;
	int family, type;
	const char *dial;
	uint16_t port;
	uint32_t mark; /* SO_MARK */
	int err;       /* connect's errno; 0: it connects */
	const char *reached; /* the listener that accepts ("" none; a|b either) */
	const char *peer;    /* getpeername */
	enum ks_stat stat;   /* the one connect result counter that moves */
};

static void expect_peer(int fd, const char *want, const char *when)
{
	struct sockaddr_storage peer;
	socklen_t pn = sizeof(peer);
	char got[64];

	if (getpeername(fd, (struct sockaddr *)&peer, &pn))
		fail_msg("%s: getpeername: %s", when, strerror(errno));
	sa_str(&peer, got, sizeof(got));
	if (strcmp(got, want))
		fail_msg("%s: getpeername shows %s, expected %s", when, got, want);
}

static void run_row(const struct row *r, char *reached, size_t len)
{
	static const enum ks_stat results[] = {KS_STAT_CONNECT_ROUTED, KS_STAT_CONNECT_SHIM,
					       KS_STAT_CONNECT_NO_UPSTREAM, KS_STAT_CONNECT_MISS,
					       KS_STAT_CONNECT_SELF};
	uint64_t before[KS_STAT_MAX], after[KS_STAT_MAX];
	struct sockaddr_storage ss;
	socklen_t n = sa_of(r->dial, r->port, &ss);
	int fd, rc, err;

	if (r->family == AF_INET6 && ss.ss_family == AF_INET)
		fail_msg("%s: an AF_INET6 row dials an IPv6 text", r->what);
	fd = socket(r->family, r->type, 0);
	assert_true(fd >= 0);
	if (r->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &r->mark, sizeof(r->mark)))
		fail_msg("%s: SO_MARK: %s", r->what, strerror(errno));
	stats(before);
	rc = connect(fd, (struct sockaddr *)&ss, n);
	err = rc ? errno : 0;
	stats(after);
	if (err != r->err)
		fail_msg("%s: connect to %s:%u: %s, expected %s", r->what, r->dial, r->port,
			 err ? strerror(err) : "success", r->err ? strerror(r->err) : "success");
	if (after[KS_STAT_CONNECT_SEEN] != before[KS_STAT_CONNECT_SEEN] + 1)
		fail_msg("%s: connect_seen moved by %llu, expected 1", r->what,
			 (unsigned long long)(after[KS_STAT_CONNECT_SEEN] -
					      before[KS_STAT_CONNECT_SEEN]));
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		uint64_t want = before[results[i]] + (results[i] == r->stat);

		if (after[results[i]] != want)
			fail_msg("%s: counter %s moved by %llu, expected %d", r->what,
				 dp_stat_counters[results[i]].name,
				 (unsigned long long)(after[results[i]] - before[results[i]]),
				 results[i] == r->stat);
	}
	if (r->peer)
		expect_peer(fd, r->peer, r->what);
	reached[0] = 0;
	if (r->type == SOCK_STREAM && !r->err)
		accepted(reached, len);
	close(fd);
	if (r->reached && !strchr(r->reached, '|') && strcmp(reached, r->reached))
		fail_msg("%s: accepted by %s, expected %s", r->what, reached[0] ? reached : "nobody",
			 r->reached);
}

static void test_connect_table(void **state)
{
	static const struct row rows[] = {
	    {"IPv4 VIP: the endpoint accepts, getpeername shows the VIP", AF_INET, SOCK_STREAM,
	     "240.0.0.1", 80, 0, 0, "127.0.0.11:80", "240.0.0.1:80", KS_STAT_CONNECT_ROUTED},
	    {"not a frontend: untouched", AF_INET, SOCK_STREAM, "127.0.0.50", 80, 0, 0,
	     "127.0.0.50:80", "127.0.0.50:80", KS_STAT_CONNECT_MISS},
	    {"a VIP on another port: untouched (no route: ENETUNREACH)", AF_INET, SOCK_STREAM,
	     "240.0.0.1", 81, 0, ENETUNREACH, "", NULL, KS_STAT_CONNECT_MISS},
	    {"UDP to a TCP VIP: untouched", AF_INET, SOCK_DGRAM, "240.0.0.1", 80, 0, ENETUNREACH,
	     "", NULL, KS_STAT_CONNECT_MISS},
	    {"the agent's own socket (SO_MARK): untouched", AF_INET, SOCK_STREAM, "240.0.0.1", 80,
	     SELF_MARK, ENETUNREACH, "", NULL, KS_STAT_CONNECT_SELF},
	    {"another mark: routed", AF_INET, SOCK_STREAM, "240.0.0.1", 80, SELF_MARK + 1, 0,
	     "127.0.0.11:80", "240.0.0.1:80", KS_STAT_CONNECT_ROUTED},
	    {"a route whose subset has no endpoints: EPERM", AF_INET, SOCK_STREAM, "240.0.0.3", 80,
	     0, EPERM, "", NULL, KS_STAT_CONNECT_NO_UPSTREAM},
	    {"an HTTP route with a header match: the shim's port", AF_INET, SOCK_STREAM,
	     "240.0.0.4", 80, 0, 0, SHIM_ADDR ":15001", "240.0.0.4:80", KS_STAT_CONNECT_SHIM},
	    {"IPv4-mapped VIP from an IPv6 socket", AF_INET6, SOCK_STREAM, "::ffff:240.0.0.1", 80,
	     0, 0, "127.0.0.11:80", "[::ffff:240.0.0.1]:80", KS_STAT_CONNECT_ROUTED},
	    {"an IPv6 VIP of an IPv4 endpoint: dialled v4-mapped", AF_INET6, SOCK_STREAM,
	     "fd00:f::1", 80, 0, 0, "127.0.0.11:80", "[fd00:f::1]:80", KS_STAT_CONNECT_ROUTED},
	    {"IPv6 VIP to an IPv6 endpoint", AF_INET6, SOCK_STREAM, "fd00:f::6", 80, 0, 0,
	     "[fd00::11]:80", "[fd00:f::6]:80", KS_STAT_CONNECT_ROUTED},
	    {"IPv6, not a frontend: untouched", AF_INET6, SOCK_STREAM, "fd00::50", 80, 0, 0,
	     "[fd00::50]:80", "[fd00::50]:80", KS_STAT_CONNECT_MISS},
	};
	char reached[128];

	(void)state;
	apply(policy_a);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		run_row(&rows[i], reached, sizeof(reached));
		printf("ok   %s: %s\n", rows[i].what, reached[0] ? reached : strerror(rows[i].err));
	}
}

/* 70/30 by weight over 2,000 connects: v1 within 4 points (3.9 sigma: 1 false failure in 10^4). */
static void test_weights(void **state)
{
	const struct row r = {"weighted", AF_INET, SOCK_STREAM, "240.0.0.2", 80, 0, 0, "x|y",
			      "240.0.0.2:80", KS_STAT_CONNECT_ROUTED};
	unsigned v1 = 0, v2 = 0, n = 2000;
	char reached[128];

	(void)state;
	apply(policy_a);
	for (unsigned i = 0; i < n; i++) {
		run_row(&r, reached, sizeof(reached));
		if (!strcmp(reached, "127.0.0.21:80"))
			v1++;
		else if (!strcmp(reached, "127.0.0.22:80"))
			v2++;
		else
			fail_msg("weighted: accepted by %s", reached[0] ? reached : "nobody");
	}
	printf("ok   70/30 over %u connects: v1 %u, v2 %u\n", n, v1, v2);
	if (v1 * 100 < n * 66 || v1 * 100 > n * 74)
		fail_msg("v1 got %u of %u, expected 70%% +- 4", v1, n);
}

/* A new policy is written into the other generation and switched to at once. */
static void test_generation_switch(void **state)
{
	const struct row a = {"policy A", AF_INET, SOCK_STREAM, "240.0.0.1", 80, 0, 0,
			      "127.0.0.11:80", "240.0.0.1:80", KS_STAT_CONNECT_ROUTED};
	const struct row b = {"policy B", AF_INET, SOCK_STREAM, "240.0.0.1", 80, 0, 0,
			      "127.0.0.12:80", "240.0.0.1:80", KS_STAT_CONNECT_ROUTED};
	const struct row gone = {"a service policy B lacks", AF_INET, SOCK_STREAM, "240.0.0.2",
				 80, 0, ENETUNREACH, "", NULL, KS_STAT_CONNECT_MISS};
	char reached[128];

	(void)state;
	apply(policy_a);
	run_row(&a, reached, sizeof(reached));
	apply(policy_b);
	run_row(&b, reached, sizeof(reached));
	run_row(&gone, reached, sizeof(reached));
	apply(policy_a);
	run_row(&a, reached, sizeof(reached));
	printf("ok   A -> B -> A: each connect follows the active generation\n");
}

/* The first address from *ip up (240.0.0.0/4) whose home slot is home, as text; its successor in *ip. */
static void addr_homed(uint32_t *ip, uint32_t home, char out[INET_ADDRSTRLEN])
{
	for (; *ip < 0xff000000; (*ip)++) {
		struct in_addr in = {htonl(*ip)};
		struct ks_addr a;

		ks_addr_from_v4(&a, in.s_addr);
		if (ks_fe_slot_home(&a, htons(80), IPPROTO_TCP) == home) {
			inet_ntop(AF_INET, &in, out, INET_ADDRSTRLEN);
			(*ip)++;
			return;
		}
	}
	fail_msg("no address of 240.0.0.0/4 has home slot %u", home);
}

static uint32_t home_of(const char *vip)
{
	struct in_addr in;
	struct ks_addr a;

	inet_pton(AF_INET, vip, &in);
	ks_addr_from_v4(&a, in.s_addr);
	return ks_fe_slot_home(&a, htons(80), IPPROTO_TCP);
}

/* n VIPs, each with its own endpoint: the image has `overflow` keys left out, each VIP routes. */
static void vips_route(char vips[][INET_ADDRSTRLEN], uint32_t n, uint32_t overflow)
{
	static const char *const eps[] = {"127.0.0.11", "127.0.0.12", "127.0.0.21",
					  "127.0.0.22", "127.0.0.31", "127.0.0.41"};
	char reached[128], want[64], peer[64], *yaml = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&yaml, &len);

	assert_non_null(f);
	assert_true(n <= sizeof(eps) / sizeof(eps[0]));
	for (uint32_t i = 0; i < n; i++)
		fprintf(f,
			"---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
			"metadata: {name: o%u, namespace: t}\nspec:\n  hosts: [o%u.t.example]\n"
			"  addresses: [%s]\n  ports: [{number: 80, name: tcp, protocol: TCP}]\n"
			"  location: MESH_INTERNAL\n  resolution: STATIC\n  endpoints: [{address: %s}]\n",
			i, i, vips[i], eps[i]);
	fclose(f);
	apply(yaml);
	free(yaml);
	assert_int_equal(batch.plan.img.n_overflow, overflow);
	for (uint32_t i = 0; i < n; i++) {
		struct row r = {"a VIP of a full window", AF_INET, SOCK_STREAM, vips[i], 80, 0, 0,
				want, peer, KS_STAT_CONNECT_ROUTED};

		snprintf(want, sizeof(want), "%s:80", eps[i]);
		snprintf(peer, sizeof(peer), "%s:80", vips[i]);
		run_row(&r, reached, sizeof(reached));
	}
}

/*
 * Full slot windows. KS_SLOT_PROBES + 1 VIPs with one home h: the window
 * holds the first ones, the last is found through ks_frontends (h marked
 * overflow); another address homed at h is no frontend. Then windows that
 * overlap: KS_SLOT_PROBES VIPs homed at g fill g..g+3, one homed at g+4 takes
 * g+4, and one homed at g+1 (placed last: the highest address) finds g+1..g+4
 * full and marks g+1, a slot another home's key holds.
 */
static void test_slot_overflow(void **state)
{
	char vips[KS_SLOT_PROBES + 2][INET_ADDRSTRLEN], miss[INET_ADDRSTRLEN], reached[128];
	uint32_t ip = 0xf0010001, home, g;

	(void)state;
	_Static_assert(KS_SLOT_PROBES == 4, "the cases below are written for 4-slot windows");
	addr_homed(&ip, home_of("240.1.0.1"), vips[0]);
	home = home_of(vips[0]);
	for (uint32_t i = 1; i <= KS_SLOT_PROBES; i++)
		addr_homed(&ip, home, vips[i]);
	addr_homed(&ip, home, miss);
	vips_route(vips, KS_SLOT_PROBES + 1, 1);
	{
		const struct row r = {"the same home, no frontend", AF_INET, SOCK_STREAM, miss, 80,
				      0, ENETUNREACH, "", NULL, KS_STAT_CONNECT_MISS};

		run_row(&r, reached, sizeof(reached));
	}
	printf("ok   %d VIPs homed at slot %u: %d in its window, 1 through ks_frontends; %s of "
	       "that home is no frontend\n",
	       KS_SLOT_PROBES + 1, home, KS_SLOT_PROBES, miss);

	ip = 0xf0200001;
	addr_homed(&ip, home_of("240.32.0.1"), vips[0]);
	g = home_of(vips[0]);
	for (uint32_t i = 1; i < KS_SLOT_PROBES; i++)
		addr_homed(&ip, g, vips[i]);
	addr_homed(&ip, (g + 4) & (KS_SLOTS - 1), vips[KS_SLOT_PROBES]);
	addr_homed(&ip, (g + 1) & (KS_SLOTS - 1), vips[KS_SLOT_PROBES + 1]);
	vips_route(vips, KS_SLOT_PROBES + 2, 1);
	printf("ok   overlapping windows: 4 VIPs homed at %u, 1 at %u, then %s homed at %u through "
	       "ks_frontends\n",
	       g, (g + 4) & (KS_SLOTS - 1), vips[KS_SLOT_PROBES + 1], (g + 1) & (KS_SLOTS - 1));
}

/*
 * One UDP socket connected in turn to a resolver (sent to the agent's), to a
 * routed VIP and to an address that is no frontend: getpeername shows what it
 * dialled last each time, not an earlier connect's record.
 */
static void test_reconnect(void **state)
{
	static const char policy[] = "apiVersion: networking.istio.io/v1\n"
				     "kind: ServiceEntry\n"
				     "metadata: {name: dns-like, namespace: t}\n"
				     "spec:\n"
				     "  hosts: [u.t.example]\n"
				     "  addresses: [240.0.0.9]\n"
				     "  ports: [{number: 5353, name: udp, protocol: UDP}]\n"
				     "  location: MESH_INTERNAL\n"
				     "  resolution: STATIC\n"
				     "  endpoints: [{address: 127.0.0.11}]\n";
	struct sockaddr_storage ss;
	socklen_t n;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	(void)state;
	assert_true(fd >= 0);
	apply(policy);
	n = sa_of("192.0.2.53", 53, &ss);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, n), 0);
	expect_peer(fd, "192.0.2.53:53", "connected to a resolver (sent to the agent's)");
	n = sa_of("240.0.0.9", 5353, &ss);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, n), 0);
	expect_peer(fd, "240.0.0.9:5353", "then to a routed UDP VIP");
	n = sa_of("127.0.0.50", 9, &ss);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, n), 0);
	expect_peer(fd, "127.0.0.50:9", "then to an address that is no frontend");
	close(fd);
	printf("ok   UDP reconnects: resolver, routed VIP, plain address: getpeername follows each\n");
}

/* sockops: a connection sent to the shim leaves what it dialled under its own address. */
static void test_shim_origdst(void **state)
{
	struct sockaddr_storage ss, local;
	socklen_t n = sa_of("240.0.0.4", 80, &ss), ln = sizeof(local);
	struct ks_peer_key key = {0};
	struct ks_origdst od;
	char want[64], got[64];
	int fd;

	(void)state;
	apply(policy_a);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, n), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&local, &ln), 0);
	addr_parse("127.0.0.1", &key.addr);
	key.addr.a[3] = ((struct sockaddr_in *)&local)->sin_addr.s_addr;
	key.port = ((struct sockaddr_in *)&local)->sin_port;
	if (bpf_map_lookup_elem(dp.fds[DP_ORIGDST], &key, &od))
		fail_msg("ks_origdst has no entry for %s", sa_str(&local, got, sizeof(got)));
	addr_str(&od.addr, got, sizeof(got));
	snprintf(want, sizeof(want), "240.0.0.4");
	if (strcmp(got, want) || ntohs(od.port) != 80)
		fail_msg("ks_origdst: %s:%u, expected 240.0.0.4:80", got, ntohs(od.port));
	accepted(got, sizeof(got));
	close(fd);
	printf("ok   ks_origdst[%s] = 240.0.0.4:80 (frontend %u)\n",
	       sa_str(&local, want, sizeof(want)), od.frontend_id);
}

/* Waits up to 1 s for a datagram on fd; fails the test naming who got nothing. */
static void readable(int fd, const char *who)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (poll(&p, 1, 1000) != 1)
		fail_msg("%s received nothing within 1 s", who);
}

/* Pods' DNS: a query to any resolver goes to the agent's; its answer seems to come back from it. */
static void test_dns_redirect(void **state)
{
	struct sockaddr_storage to, from, srv;
	socklen_t tn = sa_of("192.0.2.53", 53, &to), fn = sizeof(from), sn;
	uint64_t before[KS_STAT_MAX], after[KS_STAT_MAX];
	char buf[64], a[64];
	int s, c;
	ssize_t got;

	(void)state;
	apply(policy_a);
	sn = sa_of(SHIM_ADDR, DNS_PORT, &srv);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&srv, sn), 0);
	c = socket(AF_INET, SOCK_DGRAM, 0);
	stats(before);
	assert_int_equal(sendto(c, "q", 1, 0, (struct sockaddr *)&to, tn), 1);
	stats(after);
	assert_int_equal(after[KS_STAT_DNS_REDIRECTED], before[KS_STAT_DNS_REDIRECTED] + 1);
	/* the agent's resolver has it, from the client's address */
	readable(s, "the agent's resolver");
	assert_int_equal(recvfrom(s, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fn), 1);
	assert_int_equal(sendto(s, "a", 1, 0, (struct sockaddr *)&from, fn), 1);
	fn = sizeof(from);
	readable(c, "the client");
	got = recvfrom(c, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fn);
	assert_int_equal(got, 1);
	sa_str(&from, a, sizeof(a));
	if (strcmp(a, "192.0.2.53:53"))
		fail_msg("the answer seems to come from %s, expected 192.0.2.53:53", a);
	close(c);
	close(s);
	printf("ok   UDP/53 to 192.0.2.53 answered by %s:%u, seen from %s\n", SHIM_ADDR, DNS_PORT, a);
}

/* Reads what arrives on fd within 1 s; fails naming who got nothing. */
static void expect_bytes(int fd, const char *want, const char *who)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char buf[64];
	ssize_t n;

	if (poll(&p, 1, 1000) != 1)
		fail_msg("sockmap: %s received nothing within 1 s", who);
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (n < 0)
		fail_msg("sockmap: %s: recv: %s", who, strerror(errno));
	buf[n] = 0;
	if (strcmp(buf, want))
		fail_msg("sockmap: %s received \"%s\", expected \"%s\"", who, buf, want);
}

/*
 * sockops puts both ends of an app <-> shim connection in ks_sockhash (the
 * app's on the pods' cgroup, the shim's on the agent's), and sk_msg hands
 * each message straight to the other end, both ways.
 */
static void test_sockmap(void **state)
{
	uint64_t before[KS_STAT_MAX], after[KS_STAT_MAX];
	struct sockaddr_storage ss;
	socklen_t n = sa_of("240.0.0.4", 80, &ss);
	struct pollfd p = {.fd = listeners[N_LISTEN], .events = POLLIN};
	int c, a;

	(void)state;
	if (strcmp(dp.sockmap, "on"))
		fail_msg("sockmap is %s", dp.sockmap);
	apply(policy_a);
	stats(before);
	c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&ss, n), 0);
	if (poll(&p, 1, 1000) != 1)
		fail_msg("sockmap: the shim's listener has no connection");
	a = accept(listeners[N_LISTEN], NULL, NULL);
	assert_true(a >= 0);
	stats(after);
	if (after[KS_STAT_SOCKMAP_ADDED] - before[KS_STAT_SOCKMAP_ADDED] != 2)
		fail_msg("sockmap_added moved by %llu, expected 2 (app and shim ends)",
			 (unsigned long long)(after[KS_STAT_SOCKMAP_ADDED] -
					      before[KS_STAT_SOCKMAP_ADDED]));
	assert_int_equal(send(c, "ping", 4, 0), 4);
	expect_bytes(a, "ping", "the shim");
	assert_int_equal(send(a, "pong", 4, 0), 4);
	expect_bytes(c, "pong", "the app");
	stats(after);
	if (after[KS_STAT_SOCKMAP_REDIRECTED] - before[KS_STAT_SOCKMAP_REDIRECTED] != 2 ||
	    after[KS_STAT_SOCKMAP_PLAIN] != before[KS_STAT_SOCKMAP_PLAIN])
		fail_msg("sockmap_redirected moved by %llu (expected 2), sockmap_plain by %llu (expected 0)",
			 (unsigned long long)(after[KS_STAT_SOCKMAP_REDIRECTED] -
					      before[KS_STAT_SOCKMAP_REDIRECTED]),
			 (unsigned long long)(after[KS_STAT_SOCKMAP_PLAIN] -
					      before[KS_STAT_SOCKMAP_PLAIN]));
	close(a);
	close(c);
	printf("ok   app <-> shim: both ends in ks_sockhash, ping and pong redirected by sk_msg\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_connect_table),
	    cmocka_unit_test(test_weights),
	    cmocka_unit_test(test_generation_switch),
	    cmocka_unit_test(test_slot_overflow),
	    cmocka_unit_test(test_reconnect),
	    cmocka_unit_test(test_shim_origdst),
	    cmocka_unit_test(test_dns_redirect),
	    cmocka_unit_test(test_sockmap),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
