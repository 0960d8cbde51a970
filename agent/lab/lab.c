// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `ksteer lab`: clusters out of network namespaces.
 *
 *   ksl-wan                 bridge joining the gateways (172.30.0.0/16)
 *   ksl-cC                  cluster C's fabric: a bridge joining its nodes and gateway
 *   ksl-cC-gw               gateway: 10.C.0.254 on the fabric, 172.30.C.1 on the WAN;
 *                           masquerades pods' traffic out, lets nothing new in
 *   ksl-cC-nK               node K: 10.C.0.(10+K); routes its pods' /32s, other nodes' /24s
 *   ksl-cC-pP               pod P: 10.C.K.x and fd00:C:K::x, default route to its node
 *
 * Each node and gateway has an agent attached to its own cgroup subtree
 * (ksteer-lab/CLUSTER/NODE); pods' cgroups live under their node's. State is
 * in /run/ksteer-lab/state.json, written as things are made, so `down` can
 * undo a crashed `up`. Nothing is added to the root network namespace.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>
#include <openssl/evp.h>

#include "../datapath/datapath.h"
#include "../identity/identity.h"
#include "../lib/file.h"
#include "../lib/log.h"
#include "../policy/decode.h"
#include "../policy/policy.h"
#include "../cli/cli.h"
#include "../shim/shim.h"
#include "api.h"
#include "apicert.h"
#include "kclient.h"
#include "kinds.h"
#include "kubelet.h"
#include "lab.h"
#include "store.h"

#define STATE LAB_DIR "/state.json"
/* the pod-template-hash of every lab ReplicaSet: the lab has one template per Deployment */
#define LAB_TEMPLATE_HASH "5c6b7d8f9"

struct lab {
	json_t *st;
	char cgroot[PATH_MAX + 32]; /* <cgroup2 mount>/ksteer-lab */
	char self[PATH_MAX]; /* this binary, for agents and servers */
	int lockfd;
	char cert_ttl[32], sni_form[16]; /* for the agents lab up starts */
	bool guard; /* XDP guards on the uplinks (lab up --no-guard: none) */
	bool sockmap; /* app <-> shim sockets joined in the kernel (lab up --sockmap) */
	bool splice; /* gateway tunnels joined in the kernel (lab up --splice); else copied */
	const char *limits[16]; /* lab up --limit NAME=VALUE: passed to every agent */
	unsigned n_limits;
};

/* ---- running things ---- */

/* Runs a command line (arguments split on spaces; none of ours contain one). */
static int __attribute__((format(printf, 1, 2))) sh(const char *fmt, ...)
{
	char line[1024], copy[1024], *argv[64], *save = NULL;
	int argc = 0, status;
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pr_debug("+ %s\n", line);
	memcpy(copy, line, sizeof(copy));
	for (char *t = strtok_r(line, " ", &save); t && argc < 63; t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc] = NULL;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0 && log_level < LOG_DEBUG)
			dup2(null, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		pr_warn("Error: command failed (%d): %s\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			copy);
		return -EIO;
	}
	return 0;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -errno;
}

/* The last lines of a file, to stderr. */
static void print_tail(const char *path, int lines)
{
	char *buf = NULL, *p;
	size_t len;
	int n = 0;

	if (read_input(path, &buf, &len) || !len) {
		free(buf);
		return;
	}
	for (p = buf + len - 1; p > buf; p--)
		if (*p == '\n' && p != buf + len - 1 && ++n == lines) {
			p++;
			break;
		}
	fprintf(stderr, "%s%s", p, buf[len - 1] == '\n' ? "" : "\n");
	free(buf);
}

static int join_cgroup(const char *dir)
{
	char path[PATH_MAX + 16], pid[16];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", getpid());
	return write_file(path, pid);
}

static int enter_netns(const char *name)
{
	char path[PATH_MAX];
	int fd, err;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	return err;
}

/* Starts this binary with args in cgroup and netns; output to log. Returns the pid. */
static pid_t spawn(struct lab *lab, const char *cgroup, const char *netns, const char *log,
		   char *const args[])
{
	pid_t pid = fork();

	if (pid)
		return pid;
	setsid();
	if (cgroup && join_cgroup(cgroup))
		_exit(126);
	if (netns && enter_netns(netns))
		_exit(125);
	{
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (null >= 0)
			dup2(null, 0);
	}
	execv(lab->self, args);
	_exit(127);
}

static bool pid_alive(pid_t pid)
{
	char path[64], st[256];
	FILE *f;
	bool zombie = false;

	if (pid <= 0 || (kill(pid, 0) && errno != EPERM))
		return false;
	/* a killed process nobody reaped yet is gone for the lab's purposes */
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f) {
		if (fgets(st, sizeof(st), f) && strrchr(st, ')'))
			zombie = strrchr(st, ')')[2] == 'Z';
		fclose(f);
	}
	return !zombie;
}

/* ---- state ---- */

static int state_lock(struct lab *lab)
{
	mkdir(LAB_DIR, 0700);
	lab->lockfd = open(LAB_DIR "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lab->lockfd < 0 || flock(lab->lockfd, LOCK_EX))
		return -errno;
	return 0;
}

static const char *jstr(json_t *o, const char *k);

/*
 * Each node's agentPid and the cluster's gatewayAgentPid, as before the lab played kubelet:
 * the pid of the container that runs that instance now (tests signal and inspect it).
 */
static void agent_pids(json_t *st)
{
	size_t i, k, j;
	json_t *c, *n, *pod;

	json_array_foreach(json_object_get(st, "clusters"), i, c)
	{
		json_array_foreach(json_object_get(c, "pods"), j, pod)
		{
			const char *inst = jstr(pod, "instance");

			if (!*inst || !json_is_true(json_object_get(pod, "kubelet")))
				continue;
			if (!strcmp(inst, jstr(c, "gatewayInstance")))
				json_object_set(c, "gatewayAgentPid", json_object_get(pod, "serverPid"));
			json_array_foreach(json_object_get(c, "nodes"), k, n)
				if (!strcmp(inst, jstr(n, "instance")))
					json_object_set(n, "agentPid", json_object_get(pod, "serverPid"));
		}
	}
}

static void state_save(struct lab *lab)
{
	agent_pids(lab->st);
	if (json_dump_file(lab->st, STATE ".tmp", JSON_INDENT(1)) || rename(STATE ".tmp", STATE))
		pr_warn("Error: save %s: %s\n", STATE, strerror(errno));
}

static int lab_init(struct lab *lab)
{
	char mnt[PATH_MAX];
	ssize_t n;

	memset(lab, 0, sizeof(*lab));
	if (geteuid()) {
		fprintf(stderr, "Error: the lab needs root (network namespaces, cgroups, BPF)\n");
		return -EPERM;
	}
	if (cgroup2_mount(mnt, sizeof(mnt))) {
		fprintf(stderr, "Error: no cgroup2 mount in /proc/self/mountinfo\n");
		return -ENOENT;
	}
	snprintf(lab->cgroot, sizeof(lab->cgroot), "%s/%s", mnt, LAB_CGROUP);
	n = readlink("/proc/self/exe", lab->self, sizeof(lab->self) - 1);
	if (n < 0)
		return -errno;
	lab->self[n] = 0;
	if (state_lock(lab))
		return -errno;
	lab->st = json_load_file(STATE, 0, NULL);
	return 0;
}

static void lab_fini(struct lab *lab)
{
	json_decref(lab->st);
	lab->st = NULL;
	if (lab->lockfd >= 0)
		close(lab->lockfd);
}

/* lab_init for the commands that need a lab that is up. */
static int lab_open(struct lab *lab)
{
	if (lab_init(lab))
		return -1;
	if (!lab->st) {
		fprintf(stderr, "Error: no lab is up ('ksteer lab up')\n");
		lab_fini(lab);
		return -1;
	}
	return 0;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static long long jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static json_t *find_cluster(struct lab *lab, const char *name)
{
	size_t i;
	json_t *c;

	json_array_foreach(json_object_get(lab->st, "clusters"), i, c)
		if (!strcmp(jstr(c, "name"), name))
			return c;
	return NULL;
}

static void record_pid(struct lab *lab, pid_t pid)
{
	json_array_append_new(json_object_get(lab->st, "pids"), json_integer(pid));
	state_save(lab);
}

/* ---- the topology ---- */

struct lab_spec {
	struct obj o;
	struct {
		struct lab_cluster {
			struct obj o;
			const char *name;
			int64_t nodes;
			bool gateway;
		} *v;
		uint32_t n;
	} clusters;
};

static const struct field lab_cluster_fields[] = {
	{ "name", F_STR, offsetof(struct lab_cluster, name), NULL },
	{ "nodes", F_INT, offsetof(struct lab_cluster, nodes), NULL },
	{ "gateway", F_BOOL, offsetof(struct lab_cluster, gateway), NULL },
};
static const struct schema lab_cluster_schema = { "cluster", sizeof(struct lab_cluster),
						  lab_cluster_fields, 3, 0 };
static const struct field lab_spec_fields[] = {
	{ "clusters", F_OBJS, offsetof(struct lab_spec, clusters), &lab_cluster_schema },
};
static const struct schema lab_spec_schema = { "labfile", sizeof(struct lab_spec), lab_spec_fields,
					       1, 0 };

static int read_labfile(const char *path, struct arena *a, struct diag *diag, struct lab_spec *spec)
{
	yaml_parser_t ps;
	yaml_document_t doc;
	FILE *f = fopen(path, "r");
	struct dec d = { .a = a, .diag = diag, .file = path, .who = "labfile", .budget = 100000 };
	int err = 0;

	if (!f) {
		fprintf(stderr, "Error: open %s: %s\n", path, strerror(errno));
		return -errno;
	}
	yaml_parser_initialize(&ps);
	yaml_parser_set_input_file(&ps, f);
	if (!yaml_parser_load(&ps, &doc)) {
		diag_add(diag, DIAG_ERROR, path, (unsigned)ps.problem_mark.line + 1,
			 (unsigned)ps.problem_mark.column + 1, "invalid YAML: %s",
			 ps.problem ? ps.problem : "?");
		err = -EINVAL;
	} else {
		d.doc = &doc;
		if (yaml_document_get_root_node(&doc))
			dec_struct(&d, yaml_document_get_root_node(&doc), "", &lab_spec_schema, spec);
		if (d.failed)
			err = -EINVAL;
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&ps);
	fclose(f);
	return err;
}

static int node_up(struct lab *lab, json_t *c, int ci, int k, bool gw)
{
	char ns[32], cg[PATH_MAX + 64];
	json_t *node = json_object();

	snprintf(ns, sizeof(ns), "ksl-c%d-n%d", ci, k);
	json_object_set_new(node, "name", json_sprintf("node%d", k));
	json_object_set_new(node, "index", json_integer(k));
	json_object_set_new(node, "netns", json_string(ns));
	json_object_set_new(node, "address", json_sprintf("10.%d.0.%d", ci, 10 + k));
	json_object_set_new(node, "instance", json_sprintf("lab-%s-node%d", jstr(c, "key"), k));
	json_object_set_new(node, "nextPod", json_integer(2));
	json_array_append_new(json_object_get(c, "nodes"), node);
	state_save(lab);
	snprintf(cg, sizeof(cg), "%s/%s/node%d", lab->cgroot, jstr(c, "name"), k);
	json_object_set_new(node, "cgroup", json_string(cg));
	if (mkdir(cg, 0755) && errno != EEXIST)
		return -errno;
	if (sh("ip netns add %s", ns) || sh("ip -n %s link set lo up", ns) ||
	    sh("ip link add uplink netns %s type veth peer name n%d netns ksl-c%d", ns, k, ci) ||
	    sh("ip -n ksl-c%d link set n%d master br0 up", ci, k) ||
	    sh("ip -n %s addr add 10.%d.0.%d/24 dev uplink", ns, ci, 10 + k) ||
	    sh("ip -n %s addr add fd00:%d::%d/64 dev uplink nodad", ns, ci, 10 + k) ||
	    sh("ip -n %s link set uplink up", ns) ||
	    /* the shim's address, there before any pod's veth brings it */
	    sh("ip -n %s addr add 169.254.1.1/32 dev lo", ns) ||
	    sh("ip netns exec %s sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1", ns))
		return -EIO;
	if (gw && sh("ip -n %s route add default via 10.%d.0.254", ns, ci))
		return -EIO;
	return 0;
}

static int gateway_up(struct lab *lab, json_t *c, int ci)
{
	char ns[32], cg[PATH_MAX + 64];

	snprintf(ns, sizeof(ns), "ksl-c%d-gw", ci);
	json_object_set_new(c, "gatewayNetns", json_string(ns));
	json_object_set_new(c, "gatewayAddress", json_sprintf("172.30.%d.1", ci));
	json_object_set_new(c, "gatewayInstance", json_sprintf("lab-%s-gateway", jstr(c, "key")));
	state_save(lab);
	snprintf(cg, sizeof(cg), "%s/%s/gateway", lab->cgroot, jstr(c, "name"));
	json_object_set_new(c, "gatewayCgroup", json_string(cg));
	if (mkdir(cg, 0755) && errno != EEXIST)
		return -errno;
	if (sh("ip netns add %s", ns) || sh("ip -n %s link set lo up", ns) ||
	    sh("ip link add fab netns %s type veth peer name gw netns ksl-c%d", ns, ci) ||
	    sh("ip -n ksl-c%d link set gw master br0 up", ci) ||
	    sh("ip -n %s addr add 10.%d.0.254/24 dev fab", ns, ci) ||
	    sh("ip -n %s link set fab up", ns) ||
	    sh("ip link add wan netns %s type veth peer name c%d netns ksl-wan", ns, ci) ||
	    sh("ip -n ksl-wan link set c%d master br0 up", ci) ||
	    sh("ip -n %s addr add 172.30.%d.1/16 dev wan", ns, ci) ||
	    sh("ip -n %s link set wan up", ns) ||
	    sh("ip netns exec %s sysctl -qw net.ipv4.ip_forward=1", ns))
		return -EIO;
	/* pods go out masqueraded; from the WAN only replies come in, and the gateway itself */
	{
		char rules[1024], path[64];
		FILE *f;

		snprintf(path, sizeof(path), LAB_DIR "/%s.nft", ns);
		snprintf(rules, sizeof(rules),
			 "table inet ksteer_lab {\n"
			 "  chain filter_forward { type filter hook forward priority 0; policy drop;\n"
			 "    iifname \"fab\" oifname \"wan\" accept\n"
			 "    iifname \"wan\" ct state established,related accept\n  }\n"
			 "  chain nat_postrouting { type nat hook postrouting priority 100;\n"
			 "    oifname \"wan\" masquerade\n  }\n}\n");
		f = fopen(path, "w");
		if (!f)
			return -errno;
		fputs(rules, f);
		fclose(f);
		if (sh("ip netns exec %s nft -f %s", ns, path))
			return -EIO;
	}
	return 0;
}

/* ---- the API servers ---- */

static void api_dir(const char *cname, char *out, size_t len)
{
	snprintf(out, len, LAB_DIR "/%s/api", cname);
}

/* A free port on 127.0.0.1, kept for the cluster's API server from then on. */
static int free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&sin, sizeof(sin)) &&
	    !getsockname(fd, (struct sockaddr *)&sin, &sl))
		port = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Starts cluster c's API server (its store survives restarts) and waits until it listens. */
static int api_start(struct lab *lab, json_t *c)
{
	char dir[PATH_MAX], ready[PATH_MAX + 8], log[PATH_MAX], port[16], index[16],
		cg[PATH_MAX + 64];
	char *args[] = { "ksteer", "lab-api", "--cluster", (char *)jstr(c, "name"), "--index", index,
			 "--dir", dir, "--port", port, NULL };
	pid_t pid;

	api_dir(jstr(c, "name"), dir, sizeof(dir));
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	snprintf(log, sizeof(log), LAB_DIR "/logs/api-%s.log", jstr(c, "key"));
	snprintf(port, sizeof(port), "%lld", jint(c, "apiPort"));
	snprintf(index, sizeof(index), "%lld", jint(c, "index"));
	snprintf(cg, sizeof(cg), "%s/agents/api-%s", lab->cgroot, jstr(c, "key"));
	mkdir(cg, 0755);
	unlink(ready);
	pid = spawn(lab, cg, NULL, log, args);
	if (pid < 0)
		return -EIO;
	json_object_set_new(c, "apiPid", json_integer(pid));
	record_pid(lab, pid);
	for (int i = 0; i < 200; i++) {
		if (!access(ready, F_OK))
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
		usleep(50 * 1000);
	}
	fprintf(stderr, "Error: the API server of %s did not start; its log, %s:\n", jstr(c, "name"),
		log);
	print_tail(log, 20);
	return -EIO;
}

/* One kubeconfig, a context per cluster named after it. */
static int write_kubeconfig(struct lab *lab)
{
	FILE *f = fopen(LAB_DIR "/kubeconfig.tmp", "w");
	size_t i;
	json_t *c;

	if (!f)
		return -errno;
	fchmod(fileno(f), 0600);
	fprintf(f, "# written by ksteer lab up: the lab's API servers\napiVersion: v1\nkind: Config\nclusters:\n");
	json_array_foreach(json_object_get(lab->st, "clusters"), i, c)
		fprintf(f, "- name: %s\n  cluster:\n    server: https://127.0.0.1:%lld\n"
			   "    certificate-authority: " LAB_DIR "/%s/api/ca.pem\n",
			jstr(c, "name"), jint(c, "apiPort"), jstr(c, "name"));
	fprintf(f, "users:\n");
	json_array_foreach(json_object_get(lab->st, "clusters"), i, c)
	{
		char path[PATH_MAX], *tok = NULL;
		size_t len;

		snprintf(path, sizeof(path), LAB_DIR "/%s/api/token", jstr(c, "name"));
		if (read_input(path, &tok, &len)) {
			fclose(f);
			return -EIO;
		}
		tok[strcspn(tok, "\r\n")] = 0;
		fprintf(f, "- name: %s-admin\n  user:\n    token: %s\n", jstr(c, "name"), tok);
		free(tok);
	}
	fprintf(f, "contexts:\n");
	json_array_foreach(json_object_get(lab->st, "clusters"), i, c)
		fprintf(f, "- name: %s\n  context:\n    cluster: %s\n    user: %s-admin\n",
			jstr(c, "name"), jstr(c, "name"), jstr(c, "name"));
	c = json_array_get(json_object_get(lab->st, "clusters"), 0);
	fprintf(f, "current-context: %s\n", jstr(c, "name"));
	if (fclose(f) || rename(LAB_DIR "/kubeconfig.tmp", LAB_DIR "/kubeconfig"))
		return -errno;
	return 0;
}

static int apply_manifests(struct lab *lab, const char *dir);
static int wait_agents(struct lab *lab);

static int lab_up(int argc, char **argv)
{
	struct lab lab;
	struct arena a = { 0 };
	struct diag diag = { 0 };
	struct lab_spec spec = { 0 };
	struct lab_cluster defaults[2] = { { .name = "cluster1", .nodes = 1, .gateway = true },
					   { .name = "cluster2", .nodes = 1, .gateway = true } };
	const char *file = NULL;
	bool any_gw = false;
	int c, err = 1;
	json_t *clusters;

	static const struct option opts[] = { { "file", required_argument, NULL, 'f' },
					      { "cert-ttl", required_argument, NULL, 't' },
					      { "sni-form", required_argument, NULL, 's' },
					      { "no-guard", no_argument, NULL, 'G' },
					      { "no-sockmap", no_argument, NULL, 'K' },
					      { "sockmap", no_argument, NULL, 'k' },
					      { "no-splice", no_argument, NULL, 'J' },
					      { "splice", no_argument, NULL, 'j' },
					      { "limit", required_argument, NULL, 'l' },
					      { "manifests", required_argument, NULL, 'm' },
					      { NULL, 0, NULL, 0 } };
	const char *cert_ttl = "24h", *sni_form = "global", *limits[16], *manifests = NULL;
	/* sockmap and splice off by default: README, Limits and Benchmarks */
	bool guard = true, sockmap = false, splice = false;
	unsigned n_limits = 0;

	optind = 2;
	while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1)
		if (c == 'f')
			file = optarg;
		else if (c == 't')
			cert_ttl = optarg;
		else if (c == 's')
			sni_form = optarg;
		else if (c == 'G')
			guard = false;
		else if (c == 'K')
			sockmap = false;
		else if (c == 'k')
			sockmap = true;
		else if (c == 'J')
			splice = false;
		else if (c == 'j')
			splice = true;
		else if (c == 'm')
			manifests = optarg;
		else if (c == 'l' && n_limits < 16 && !shim_limit_set(&(struct shim_limits){0}, optarg))
			limits[n_limits++] = optarg;
		else
			return cli_usage("lab up", stderr);
	if (lab_init(&lab))
		return 1;
	if (lab.st) {
		fprintf(stderr, "Error: a lab is already up (%s): 'ksteer lab down' first\n", STATE);
		goto out;
	}
	snprintf(lab.cert_ttl, sizeof(lab.cert_ttl), "%s", cert_ttl);
	snprintf(lab.sni_form, sizeof(lab.sni_form), "%s", sni_form);
	lab.guard = guard;
	lab.sockmap = sockmap;
	lab.splice = splice;
	memcpy(lab.limits, limits, sizeof(limits));
	lab.n_limits = n_limits;
	if (file) {
		if (read_labfile(file, &a, &diag, &spec)) {
			diag_print(&diag, stderr);
			goto out;
		}
		/* defaults: one node, and a gateway unless said otherwise */
		for (uint32_t i = 0; i < spec.clusters.n; i++) {
			struct lab_cluster *lc = &spec.clusters.v[i];

			if (!obj_has(&lc->o, "nodes"))
				lc->nodes = 1;
			if (!obj_has(&lc->o, "gateway"))
				lc->gateway = true;
			if (!lc->name || !*lc->name || lc->nodes < 1 || lc->nodes > 200) {
				fprintf(stderr, "Error: %s: clusters[%u]: needs a name and 1-200 nodes\n",
					file, i);
				goto out;
			}
		}
	} else {
		spec.clusters.v = defaults;
		spec.clusters.n = 2;
	}
	if (spec.clusters.n < 1 || spec.clusters.n > 200) {
		fprintf(stderr, "Error: 1 to 200 clusters\n");
		goto out;
	}
	lab.st = json_pack("{s:[], s:[], s:[], s:{s:s, s:s, s:b, s:b, s:b, s:[]}}", "clusters", "pids",
			   "hostDirs", "agentOpts", "certTtl", cert_ttl, "sniForm", sni_form, "guard",
			   guard, "sockmap", sockmap, "splice", splice, "limits");
	for (unsigned i = 0; i < n_limits; i++)
		json_array_append_new(json_object_get(json_object_get(lab.st, "agentOpts"), "limits"),
				      json_string(limits[i]));
	/* the agents' own KSTEER_* tunables reach them as when lab up started them itself */
	json_object_set_new(json_object_get(lab.st, "agentOpts"), "env", json_array());
	for (char **e = environ; *e; e++)
		if (!strncmp(*e, "KSTEER_", 7) && strlen(*e) < 4096)
			json_array_append_new(json_object_get(json_object_get(lab.st, "agentOpts"), "env"),
					      json_string(*e));
	clusters = json_object_get(lab.st, "clusters");
	mkdir(LAB_DIR "/logs", 0700);
	state_save(&lab);
	if ((mkdir(lab.cgroot, 0755) && errno != EEXIST)) {
		fprintf(stderr, "Error: mkdir %s: %s\n", lab.cgroot, strerror(errno));
		goto out;
	}
	{
		char agents[PATH_MAX + 16];

		snprintf(agents, sizeof(agents), "%s/agents", lab.cgroot);
		mkdir(agents, 0755);
	}
	for (uint32_t i = 0; i < spec.clusters.n; i++)
		any_gw |= spec.clusters.v[i].gateway;
	if (any_gw && (sh("ip netns add ksl-wan") || sh("ip -n ksl-wan link set lo up") ||
		       sh("ip -n ksl-wan link add br0 type bridge") ||
		       sh("ip -n ksl-wan link set br0 up")))
		goto out;
	for (uint32_t i = 0; i < spec.clusters.n; i++) {
		struct lab_cluster *lc = &spec.clusters.v[i];
		int ci = (int)i + 1;
		json_t *cl;
		char path[PATH_MAX + 64];

		if (find_cluster(&lab, lc->name)) {
			fprintf(stderr, "Error: cluster %s named twice\n", lc->name);
			goto out;
		}
		cl = json_pack("{s:s, s:i, s:b, s:[], s:[], s:[], s:i, s:n}", "name", lc->name, "index",
			       ci, "gateway", lc->gateway, "nodes", "pods", "services", "nextVip", 1,
			       "gatewayAddress");
		{
			/* instance names become bpffs directories, which refuse '.' */
			char key[256];
			size_t n = 0;

			for (const char *q = lc->name; *q && n + 1 < sizeof(key); q++)
				key[n++] = isalnum((unsigned char)*q) || *q == '-' ? *q : '_';
			key[n] = 0;
			json_object_set_new(cl, "key", json_string(key));
		}
		json_array_append_new(clusters, cl);
		state_save(&lab);
		snprintf(path, sizeof(path), LAB_DIR "/%s", lc->name);
		mkdir(path, 0700);
		snprintf(path, sizeof(path), LAB_DIR "/%s/policy", lc->name);
		mkdir(path, 0700);
		snprintf(path, sizeof(path), "%s/%s", lab.cgroot, lc->name);
		if (mkdir(path, 0755) && errno != EEXIST)
			goto out;
		if (sh("ip netns add ksl-c%d", ci) || sh("ip -n ksl-c%d link set lo up", ci) ||
		    sh("ip -n ksl-c%d link add br0 type bridge", ci) ||
		    sh("ip -n ksl-c%d link set br0 up", ci))
			goto out;
		if (lc->gateway && gateway_up(&lab, cl, ci))
			goto out;
		for (int k = 1; k <= lc->nodes; k++)
			if (node_up(&lab, cl, ci, k, lc->gateway))
				goto out;
		/* every node reaches every other node's pods; the gateway reaches them all */
		for (int k = 1; k <= lc->nodes; k++) {
			for (int j = 1; j <= lc->nodes; j++)
				if (j != k &&
				    (sh("ip -n ksl-c%d-n%d route add 10.%d.%d.0/24 via 10.%d.0.%d", ci,
					k, ci, j, ci, 10 + j) ||
				     sh("ip -n ksl-c%d-n%d route add fd00:%d:%d::/64 via fd00:%d::%d", ci,
					k, ci, j, ci, 10 + j)))
					goto out;
			if (lc->gateway && sh("ip -n ksl-c%d-gw route add 10.%d.%d.0/24 via 10.%d.0.%d",
					      ci, ci, k, ci, 10 + k))
				goto out;
		}
		state_save(&lab);
	}
	/*
	 * Istio's meshNetworks, the same in every cluster: each cluster's addresses and its
	 * gateway. The agents' XDP guards let only these reach the mesh ports.
	 */
	{
		size_t i, k;
		json_t *cl, *cl2;

		json_array_foreach(clusters, i, cl)
		{
			char path[PATH_MAX];
			FILE *f;

			snprintf(path, sizeof(path), LAB_DIR "/%s/policy/mesh-networks.yaml",
				 jstr(cl, "name"));
			f = fopen(path, "w");
			if (!f)
				goto out;
			fprintf(f, "# written by ksteer lab up: Istio's meshNetworks form\nnetworks:\n");
			json_array_foreach(clusters, k, cl2)
			{
				int c = (int)jint(cl2, "index");

				fprintf(f, "  \"network-%s\":\n    endpoints:\n"
					   "    - fromCidr: 10.%d.0.0/16\n    - fromCidr: \"fd00:%d::/32\"\n",
					jstr(cl2, "key"), c, c);
				if (json_is_true(json_object_get(cl2, "gateway")))
					fprintf(f, "    gateways:\n    - address: 172.30.%d.1\n      port: 15443\n",
						c);
			}
			fclose(f);
		}
	}
	/* one root shared by the clusters, an intermediate each, in Istio's plug-in layout */
	if (id_root_create(LAB_DIR "/ca", 3650)) {
		fprintf(stderr, "Error: create the lab's root CA in %s/ca\n", LAB_DIR);
		goto out;
	}
	{
		size_t i;
		json_t *cl;

		json_array_foreach(clusters, i, cl)
		{
			char dir[PATH_MAX];

			snprintf(dir, sizeof(dir), LAB_DIR "/%s/cacerts", jstr(cl, "name"));
			if (id_intermediate_create(LAB_DIR "/ca", dir, jstr(cl, "name"), 365))
				goto out;
		}
	}
	/* a Kubernetes API per cluster: its changes make pods, the agents' among them */
	{
		size_t i;
		json_t *cl;

		json_array_foreach(clusters, i, cl)
		{
			char dir[PATH_MAX];

			api_dir(jstr(cl, "name"), dir, sizeof(dir));
			mkdir(dir, 0700);
			json_object_set_new(cl, "apiPort", json_integer(free_port()));
			if (jint(cl, "apiPort") <= 0 || api_cert_make(dir) || api_start(&lab, cl))
				goto out;
		}
		if (write_kubeconfig(&lab)) {
			fprintf(stderr, "Error: write %s/kubeconfig\n", LAB_DIR);
			goto out;
		}
	}
	state_save(&lab);
	/* the API servers take the lab's lock for each change: not held from here on */
	close(lab.lockfd);
	lab.lockfd = -1;
	if (apply_manifests(&lab, manifests) || wait_agents(&lab))
		goto out;
	{
		size_t i;
		json_t *cl;

		json_array_foreach(clusters, i, cl)
			printf("cluster %s: %zu node(s)%s%s\n", jstr(cl, "name"),
			       json_array_size(json_object_get(cl, "nodes")),
			       json_is_true(json_object_get(cl, "gateway")) ? ", gateway " : "",
			       jstr(cl, "gatewayAddress"));
	}
	err = 0;
out:
	if (err)
		fprintf(stderr, "lab up failed: 'ksteer lab down' removes what was made\n");
	lab_fini(&lab);
	arena_free(&a);
	diag_free(&diag);
	return err;
}

/* ---- down ---- */

static void rm_cgroup_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char sub[PATH_MAX + 256];

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		rm_cgroup_tree(sub);
	}
	closedir(d);
	rmdir(dir);
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d) {
		unlink(dir);
		return;
	}
	while ((de = readdir(d))) {
		char sub[PATH_MAX + 256];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR)
			rm_tree(sub);
		else
			unlink(sub);
	}
	closedir(d);
	rmdir(dir);
}

static int lab_down(void)
{
	struct lab lab;
	size_t i;
	json_t *v;
	DIR *d;
	struct dirent *de;

	if (lab_init(&lab))
		return 1;
	/* the processes the lab started, by pid, and only those */
	if (lab.st) {
		/* the API servers first: they start agents again (restartPolicy Always) */
		json_array_foreach(json_object_get(lab.st, "clusters"), i, v)
		{
			pid_t pid = (pid_t)jint(v, "apiPid");

			if (pid_alive(pid))
				kill(pid, SIGTERM);
			for (int t = 0; t < 30 && pid_alive(pid) && waitpid(pid, NULL, WNOHANG) != pid; t++)
				usleep(100 * 1000);
			if (pid_alive(pid))
				kill(pid, SIGKILL);
		}
		json_array_foreach(json_object_get(lab.st, "pids"), i, v)
		{
			pid_t pid = (pid_t)json_integer_value(v);

			if (pid_alive(pid))
				kill(pid, SIGTERM);
		}
		for (int t = 0; t < 50; t++) {
			bool any = false;

			json_array_foreach(json_object_get(lab.st, "pids"), i, v)
				any |= pid_alive((pid_t)json_integer_value(v)) &&
				       waitpid((pid_t)json_integer_value(v), NULL, WNOHANG) <= 0 &&
				       pid_alive((pid_t)json_integer_value(v));
			if (!any)
				break;
			usleep(100 * 1000);
		}
		json_array_foreach(json_object_get(lab.st, "pids"), i, v)
			if (pid_alive((pid_t)json_integer_value(v)))
				kill((pid_t)json_integer_value(v), SIGKILL);
	}
	/* namespaces: every ksl-* one, recorded or not (a killed `up` may not have said) */
	d = opendir("/run/netns");
	while (d && (de = readdir(d))) {
		if (!strncmp(de->d_name, "ksl-", 4)) {
			char etc[PATH_MAX];

			sh("ip netns del %s", de->d_name);
			snprintf(etc, sizeof(etc), "/etc/netns/%s", de->d_name);
			rm_tree(etc);
		}
	}
	if (d)
		closedir(d);
	/* pins and links of the lab's agents */
	d = opendir(KS_PIN_ROOT);
	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, "lab-", 4))
			dp_uninstall(de->d_name);
	if (d)
		closedir(d);
	/* pods' leftover processes would keep a cgroup busy: the tree goes bottom-up */
	rm_cgroup_tree(lab.cgroot);
	d = opendir("/run/ksteer");
	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, "lab-", 4)) {
			char p[PATH_MAX];

			snprintf(p, sizeof(p), "/run/ksteer/%s", de->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	/* the mount points the lab's kubelet made under /run, deepest first */
	for (i = json_array_size(json_object_get(lab.st, "hostDirs")); i-- > 0;) {
		char d2[PATH_MAX];
		const char *d1 = json_string_value(json_array_get(json_object_get(lab.st, "hostDirs"), i));

		snprintf(d2, sizeof(d2), "%s", d1 ? d1 : "");
		while (*d2 && strcmp(d2, "/run") && !rmdir(d2)) {
			char *slash = strrchr(d2, '/');

			if (!slash)
				break;
			*slash = 0;
		}
	}
	json_decref(lab.st);
	lab.st = NULL;
	rm_tree(LAB_DIR);
	if (lab.lockfd >= 0)
		close(lab.lockfd);
	lab.lockfd = -1;
	{
		struct stat st;

		if (!stat(lab.cgroot, &st)) {
			fprintf(stderr, "Error: %s could not be removed (processes left in it?)\n",
				lab.cgroot);
			return 1;
		}
	}
	printf("lab down\n");
	return 0;
}

/* ---- apply ---- */

/* A YAML node as JSON: mappings, sequences, and scalars typed as YAML 1.1 plain scalars. */
static json_t *node_json(yaml_document_t *doc, yaml_node_t *n, int depth)
{
	if (!n || depth > 64)
		return json_null();
	if (n->type == YAML_SCALAR_NODE) {
		const char *v = (const char *)n->data.scalar.value;
		char *end;

		if (strstr(v, "${")) {
			/* as the shell would in `kubectl apply -f - <<EOF`: from this environment */
			struct arena a = { 0 };
			json_t *j = json_string(expand_env(&a, v));

			arena_free(&a);
			return j;
		}
		if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
			return json_stringn(v, n->data.scalar.length);
		if (!*v || !strcmp(v, "null") || !strcmp(v, "~"))
			return json_null();
		if (!strcmp(v, "true"))
			return json_true();
		if (!strcmp(v, "false"))
			return json_false();
		{
			long long x = strtoll(v, &end, 10);

			if (!*end && end != v)
				return json_integer(x);
		}
		{
			double x = strtod(v, &end);

			if (!*end && end != v && (isdigit((unsigned char)v[0]) || v[0] == '-' || v[0] == '.'))
				return json_real(x);
		}
		return json_stringn(v, n->data.scalar.length);
	}
	if (n->type == YAML_SEQUENCE_NODE) {
		json_t *a = json_array();

		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++)
			json_array_append_new(a, node_json(doc, yaml_document_get_node(doc, *it),
							   depth + 1));
		return a;
	}
	{
		json_t *o = json_object();

		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
		     p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);

			if (k && k->type == YAML_SCALAR_NODE)
				json_object_set_new(o, (const char *)k->data.scalar.value,
						    node_json(doc, yaml_document_get_node(doc, p->value),
							      depth + 1));
		}
		return o;
	}
}

/* kubectl's -l: key=value[,key=value...], key!=value, and bare key (exists); labels NULL: none. */
static bool selector_matches(const char *sel, json_t *labels)
{
	char buf[1024], *save = NULL;

	if (!sel || !*sel)
		return true;
	snprintf(buf, sizeof(buf), "%s", sel);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *ne = strstr(t, "!="), *eq = strchr(t, '=');
		const char *have;

		if (ne) {
			*ne = 0;
			have = json_string_value(json_object_get(labels, t));
			if (have && !strcmp(have, ne + 2))
				return false;
		} else if (eq) {
			*eq = 0;
			if (eq[1] == '=')
				eq++;
			have = json_string_value(json_object_get(labels, t));
			if (!have || strcmp(have, eq + 1))
				return false;
		} else if (!json_object_get(labels, t)) {
			return false;
		}
	}
	return true;
}

static json_t *find_node(json_t *c, const char *name)
{
	size_t i;
	json_t *n;

	json_array_foreach(json_object_get(c, "nodes"), i, n)
		if (!strcmp(jstr(n, "name"), name))
			return n;
	return NULL;
}

static json_t *find_pod(json_t *c, const char *ns, const char *name)
{
	size_t i;
	json_t *p;

	json_array_foreach(json_object_get(c, "pods"), i, p)
		if (!strcmp(jstr(p, "namespace"), ns) &&
		    (!strcmp(jstr(p, "name"), name) || !strcmp(jstr(p, "owner"), name)))
			return p;
	return NULL;
}

/*
 * What the lab adds after a ksteer container's args: its nodes share one kernel and one
 * filesystem, so each agent is told which node it is (instance, cgroup subtree, network
 * namespace), where its pods reach it, when it is ready, and the `lab up` options.
 */
static json_t *lab_agent_args(json_t *opts, json_t *c, bool gateway, const char *instance,
			      const char *cgrel, const char *netns, const char *ready,
			      const char *alog)
{
	json_t *a = json_pack("[s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s]",
			      "--instance", instance, "--cgroup", cgrel, "--netns", netns,
			      /* the node side of every pod's veth: where pods reach their node's shim */
			      "--shim", "169.254.1.1", "--ready-file", ready, "--cert-ttl",
			      jstr(opts, "certTtl"), "--sni-form", jstr(opts, "sniForm"),
			      "--sockmap", json_is_true(json_object_get(opts, "sockmap")) ? "on" : "off",
			      "--splice", json_is_true(json_object_get(opts, "splice")) ? "on" : "off",
			      /* source_cluster and destination_cluster of Istio's metrics */
			      "--cluster", jstr(c, "name"), "--access-log", alog);
	size_t i;
	json_t *l;

	if (json_is_true(json_object_get(opts, "guard")))
		/* generic XDP: on veth, native costs TCP its GRO/GSO (README, Benchmarks) */
		json_array_extend(a, json_pack("[s, s, s, s]", "--xdp-dev", gateway ? "wan" : "uplink",
					       "--xdp-mode", "generic"));
	json_array_foreach(json_object_get(opts, "limits"), i, l)
	{
		json_array_append_new(a, json_string("--limit"));
		json_array_append(a, l);
	}
	return a;
}

/*
 * A pod whose container runs ksteer, as kubelet would run it (kubelet.c), on a lab node or
 * on the cluster's gateway "node" (netns ksl-cC-gw), named by a nodeSelector
 * kubernetes.io/hostname: gateway. The container's process lives in the root network
 * namespace and a cgroup of its own outside the nodes' subtrees, as the lab's agents always
 * did: its own sockets are never redirected, and its sockops sees the shim's.
 */
static int kubelet_pod_up(struct lab *lab, struct store *st, json_t *c, json_t *pod, json_t *spec,
			  char *err, size_t len)
{
	bool gw = !strcmp(jstr(pod, "node"), "gateway");
	json_t *node = gw ? NULL : find_node(c, jstr(pod, "node")), *launch, *extra;
	int ci = (int)jint(c, "index");
	char instance[300], netns[64], cgrel[PATH_MAX], cg[PATH_MAX + 64], ready[PATH_MAX],
		alog[PATH_MAX], log[PATH_MAX], dir[PATH_MAX * 2], host_ip[32];
	struct kubelet_pod kp;
	pid_t pid;
	size_t i;
	json_t *d;

	snprintf(instance, sizeof(instance), "%s", gw ? jstr(c, "gatewayInstance") : jstr(node, "instance"));
	snprintf(netns, sizeof(netns), "%s", gw ? jstr(c, "gatewayNetns") : jstr(node, "netns"));
	snprintf(cgrel, sizeof(cgrel), LAB_CGROUP "/%s/%s", jstr(c, "name"),
		 gw ? "gateway" : jstr(node, "name"));
	if (gw)
		snprintf(host_ip, sizeof(host_ip), "10.%d.0.254", ci);
	else
		snprintf(host_ip, sizeof(host_ip), "%s", jstr(node, "address"));
	snprintf(cg, sizeof(cg), "%s/agents/%s", lab->cgroot, instance);
	snprintf(ready, sizeof(ready), LAB_DIR "/%s.ready", instance);
	snprintf(alog, sizeof(alog), LAB_DIR "/logs/%s.access.log", instance);
	snprintf(log, sizeof(log), LAB_DIR "/logs/%s.log", instance);
	snprintf(dir, sizeof(dir), LAB_DIR "/%s/pods/%s_%s", jstr(c, "name"), jstr(pod, "namespace"),
		 jstr(pod, "name"));
	mkdir(cg, 0755);
	extra = lab_agent_args(json_object_get(lab->st, "agentOpts"), c, gw, instance, cgrel, netns,
			       ready, alog);
	kp = (struct kubelet_pod){ .cluster = jstr(c, "name"), .ns = jstr(pod, "namespace"),
				   .name = jstr(pod, "name"), .node = jstr(pod, "node"),
				   .host_ip = host_ip, .pod_ip = host_ip,
				   .labels = json_object_get(pod, "labels"),
				   .api_port = (int)jint(c, "apiPort"), .pod_dir = dir,
				   .exe = lab->self, .cgroup = cg, .log = log, .extra_args = extra,
				   .extra_env = json_object_get(json_object_get(lab->st, "agentOpts"), "env") };
	launch = kubelet_launch(st, &kp, spec, err, len);
	json_decref(extra);
	if (!launch)
		return -EINVAL;
	json_array_foreach(json_object_get(launch, "hostDirs"), i, d)
		json_array_append(json_object_get(lab->st, "hostDirs"), d);
	unlink(ready);
	pid = kubelet_spawn(launch);
	if (pid < 0) {
		snprintf(err, len, "start the container of %s: %s", jstr(pod, "name"), strerror(-pid));
		json_decref(launch);
		return pid;
	}
	json_object_set_new(pod, "kubelet", json_true());
	json_object_set_new(pod, "launch", launch);
	json_object_set_new(pod, "instance", json_string(instance));
	json_object_set_new(pod, "readyFile", json_string(ready));
	json_object_set_new(pod, "netns", json_string(""));
	json_object_set_new(pod, "cgroup", json_string(cg));
	json_object_set_new(pod, "hostIP", json_string(host_ip));
	json_object_set_new(pod, "ip", json_string(host_ip));
	json_object_set_new(pod, "ip6", json_string(""));
	json_object_set_new(pod, "serverPid", json_integer(pid));
	json_object_set_new(pod, "startedAt", json_integer(time(NULL)));
	json_object_set_new(pod, "restarts", json_integer(0));
	json_object_set_new(pod, "ready", json_false());
	json_array_append(json_object_get(c, "pods"), pod);
	record_pid(lab, pid);
	return 0;
}

/* Makes one pod: netns, veth to its node, addresses, routes, cgroup, and its server. */
static int pod_up(struct lab *lab, json_t *c, json_t *pod, json_t *containers)
{
	int ci = (int)jint(c, "index"), id = (int)jint(c, "nextPodId");
	json_t *node = find_node(c, jstr(pod, "node"));
	int k = (int)jint(node, "index"), q = (int)jint(node, "nextPod");
	char ns[32], cg[PATH_MAX + 256], etc[PATH_MAX], ip[32], ip6[48];
	const char *nodens = jstr(node, "netns");
	FILE *f;

	if (q > 254) {
		fprintf(stderr, "Error: node %s is full (253 pods)\n", jstr(node, "name"));
		return -ENOSPC;
	}
	json_object_set_new(c, "nextPodId", json_integer(id + 1));
	json_object_set_new(node, "nextPod", json_integer(q + 1));
	snprintf(ns, sizeof(ns), "ksl-c%d-p%d", ci, id);
	snprintf(ip, sizeof(ip), "10.%d.%d.%d", ci, k, q);
	snprintf(ip6, sizeof(ip6), "fd00:%d:%d::%d", ci, k, q);
	snprintf(cg, sizeof(cg), "%s/%s_%s", jstr(node, "cgroup"), jstr(pod, "namespace"),
		 jstr(pod, "name"));
	json_object_set_new(pod, "netns", json_string(ns));
	json_object_set_new(pod, "hostIP", json_string(jstr(node, "address")));
	json_object_set_new(pod, "ip", json_string(ip));
	json_object_set_new(pod, "ip6", json_string(ip6));
	json_object_set_new(pod, "cgroup", json_string(cg));
	json_array_append(json_object_get(c, "pods"), pod);
	state_save(lab);
	if (mkdir(cg, 0755) && errno != EEXIST)
		return -errno;
	if (sh("ip netns add %s", ns) || sh("ip -n %s link set lo up", ns) ||
	    sh("ip link add eth0 netns %s type veth peer name p%d netns %s", ns, id, nodens) ||
	    sh("ip -n %s addr add 169.254.1.1/32 dev p%d", nodens, id) ||
	    sh("ip -n %s addr add fe80::1/64 dev p%d nodad", nodens, id) ||
	    sh("ip -n %s link set p%d up", nodens, id) ||
	    sh("ip -n %s route add %s/32 dev p%d", nodens, ip, id) ||
	    sh("ip -n %s -6 route add %s/128 dev p%d", nodens, ip6, id) ||
	    sh("ip -n %s addr add %s/32 dev eth0", ns, ip) ||
	    sh("ip -n %s addr add %s/128 dev eth0 nodad", ns, ip6) ||
	    sh("ip -n %s link set eth0 up", ns) ||
	    sh("ip -n %s route add 169.254.1.1 dev eth0 scope link", ns) ||
	    sh("ip -n %s route add default via 169.254.1.1 dev eth0", ns) ||
	    sh("ip -n %s -6 route add default via fe80::1 dev eth0", ns))
		return -EIO;
	/*
	 * `ip netns exec` binds /etc/netns/NAME/resolv.conf over /etc/resolv.conf. The
	 * nameserver is kube-dns's usual ClusterIP, which nothing serves: the node agent
	 * answers, as sendmsg4/connect4 send UDP/53 to it.
	 */
	snprintf(etc, sizeof(etc), "/etc/netns/%s", ns);
	mkdir("/etc/netns", 0755);
	mkdir(etc, 0755);
	strcat(etc, "/resolv.conf");
	f = fopen(etc, "w");
	if (f) {
		const char *pns = jstr(pod, "namespace");

		fprintf(f, "search %s.svc.cluster.local svc.cluster.local cluster.local\n"
			   "nameserver 10.96.0.10\noptions ndots:5\n",
			pns);
		fclose(f);
	}
	/* containers with ports run the built-in server on all of them */
	{
		char *args[48] = { "ksteer", "lab-serve", "-v", NULL, "-p", NULL, "-c", NULL };
		char ports[16][8], log[PATH_MAX];
		int na = 8, np = 0;
		size_t i, j;
		json_t *ct, *pt;
		const char *version = json_string_value(
			json_object_get(json_object_get(pod, "labels"), "version"));

		/* the helloworld image's own setting first, then the version label; the lab's
		 * ANSWER_STATUS makes a sick pod (every answer with that status) */
		json_array_foreach(containers, i, ct)
			json_array_foreach(json_object_get(ct, "env"), j, pt) {
				const char *v = json_string_value(json_object_get(pt, "value"));

				if (!strcmp(jstr(pt, "name"), "SERVICE_VERSION") && v)
					version = v;
				if (!strcmp(jstr(pt, "name"), "ANSWER_STATUS") && v && na < 36) {
					args[na++] = "-s";
					args[na++] = (char *)v;
				}
			}

		args[3] = (char *)(version ? version : "unknown");
		args[5] = (char *)jstr(pod, "name");
		args[7] = (char *)jstr(c, "name");
		json_array_foreach(containers, i, ct)
			json_array_foreach(json_object_get(ct, "ports"), j, pt)
			{
				if (np == 16 || !json_integer_value(json_object_get(pt, "containerPort")))
					continue;
				snprintf(ports[np], sizeof(ports[np]), "%lld",
					 jint(pt, "containerPort"));
				args[na++] = !strncmp(jstr(pt, "name"), "tcp", 3) ? "-e" : "-l";
				args[na++] = ports[np++];
			}
		args[na] = NULL;
		if (np) {
			pid_t pid;

			snprintf(log, sizeof(log), LAB_DIR "/logs/pod-%s.log", ns);
			pid = spawn(lab, cg, ns, log, args);
			if (pid < 0)
				return -errno;
			json_object_set_new(pod, "serverPid", json_integer(pid));
			record_pid(lab, pid);
		}
	}
	return 0;
}

static json_t *pod_object(json_t *pod, json_t *spec)
{
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s, s:O}, s:O, s:{s:s, s:[{s:s}]}}",
			      "apiVersion", "v1", "kind", "Pod", "metadata", "name",
			      jstr(pod, "name"), "namespace", jstr(pod, "namespace"), "labels",
			      json_object_get(pod, "labels"), "spec", spec, "status", "podIP",
			      jstr(pod, "ip"), "podIPs", "ip", jstr(pod, "ip"));

	if (*jstr(pod, "ip6")) /* a hostNetwork pod has its node's one address */
		json_array_append_new(json_object_get(json_object_get(o, "status"), "podIPs"),
				      json_pack("{s:s}", "ip", jstr(pod, "ip6")));

	json_object_set_new(json_object_get(o, "spec"), "nodeName",
			    json_string(jstr(pod, "node")));
	json_object_set_new(json_object_get(o, "status"), "hostIP",
			    json_string(jstr(pod, "hostIP")));
	return o;
}

/*
 * A new pod's owner, as Kubernetes sets it: a Deployment's pods belong to its ReplicaSet
 * DEPLOY-HASH and carry pod-template-hash (Istio's metrics name the workload after the
 * Deployment by this); other controllers own their pods themselves.
 */
static void pod_owner_set(json_t *meta, json_t *owner)
{
	json_t *om = json_object_get(owner, "metadata"), *labels;
	bool rs = !strcmp(jstr(owner, "kind"), "Deployment");

	json_object_set_new(meta, "ownerReferences",
			    json_pack("[{s:s, s:s, s:s+, s:O, s:b, s:b}]", "apiVersion",
				      rs ? "apps/v1" : jstr(owner, "apiVersion"), "kind",
				      rs ? "ReplicaSet" : jstr(owner, "kind"), "name", jstr(om, "name"),
				      rs ? "-" LAB_TEMPLATE_HASH : "", "uid", json_object_get(om, "uid"),
				      "controller", 1, "blockOwnerDeletion", 1));
	if (!rs)
		return;
	/* a copy: the metadata shares its labels with the lab's pod */
	labels = json_deep_copy(json_object_get(meta, "labels"));
	if (!json_is_object(labels)) {
		json_decref(labels);
		labels = json_object();
	}
	json_object_set_new(labels, "pod-template-hash", json_string(LAB_TEMPLATE_HASH));
	json_object_set_new(meta, "labels", labels);
}

/* Takes a pod away: its server, namespace, resolv.conf and cgroup. */
static void pod_down(struct lab *lab, json_t *c, json_t *pod)
{
	pid_t pid = (pid_t)jint(pod, "serverPid");
	char etc[PATH_MAX], kill_path[PATH_MAX + 300];
	size_t i;
	json_t *p;

	(void)lab;
	if (pid > 0 && pid_alive(pid)) {
		kill(pid, SIGTERM);
		for (int t = 0; t < 20 && pid_alive(pid) && waitpid(pid, NULL, WNOHANG) != pid; t++)
			usleep(50 * 1000);
		if (pid_alive(pid))
			kill(pid, SIGKILL);
		waitpid(pid, NULL, WNOHANG);
	}
	/* whatever `lab exec` left running in it, then the cgroup */
	snprintf(kill_path, sizeof(kill_path), "%s/cgroup.kill", jstr(pod, "cgroup"));
	write_file(kill_path, "1");
	for (int t = 0; t < 20 && rmdir(jstr(pod, "cgroup")) && errno == EBUSY; t++)
		usleep(50 * 1000);
	if (*jstr(pod, "netns"))
		sh("ip netns del %s", jstr(pod, "netns"));
	snprintf(etc, sizeof(etc), "/etc/netns/%s", jstr(pod, "netns"));
	rm_tree(etc);
	json_array_foreach(json_object_get(c, "pods"), i, p)
		if (p == pod) {
			json_array_remove(json_object_get(c, "pods"), i);
			break;
		}
}

static json_t *find_pod_exact(json_t *c, const char *ns, const char *name)
{
	size_t i;
	json_t *p;

	json_array_foreach(json_object_get(c, "pods"), i, p)
		if (!strcmp(jstr(p, "namespace"), ns) && !strcmp(jstr(p, "name"), name))
			return p;
	return NULL;
}

/* The Pod object the API shows for a lab pod: status as kubelet would write it. */
static json_t *pod_api_object(json_t *pod, json_t *spec, json_t *meta_from)
{
	json_t *o = pod_object(pod, spec), *m = json_object_get(o, "metadata"),
	       *st = json_object_get(o, "status"), *cs = json_array(), *ct;
	char ts[32];
	time_t t = time(NULL);
	struct tm tm;
	size_t i;

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (meta_from) { /* the object as created keeps its uid, time, owner, annotations */
		const char *k;
		json_t *v;

		json_object_foreach(meta_from, k, v)
			if (strcmp(k, "resourceVersion"))
				json_object_set(m, k, v);
	}
	if (!json_object_get(m, "creationTimestamp"))
		json_object_set_new(m, "creationTimestamp", json_string(ts));
	/* the kubelet's pods: ready from the agent's readiness file, restarts counted */
	bool kubelet = json_is_true(json_object_get(pod, "kubelet"));
	bool ready = !kubelet || json_is_true(json_object_get(pod, "ready"));
	const char *waiting = jstr(pod, "waiting");

	if (kubelet) {
		time_t s = (time_t)jint(pod, "startedAt");

		gmtime_r(&s, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	json_array_foreach(json_object_get(spec, "containers"), i, ct)
		json_array_append_new(cs, json_pack("{s:s, s:b, s:b, s:I, s:s, s:s, s:o}",
						    "name", jstr(ct, "name"), "ready", ready,
						    "started", !*waiting, "restartCount",
						    (json_int_t)jint(pod, "restarts"), "image",
						    jstr(ct, "image"), "imageID", "", "state",
						    *waiting ? json_pack("{s:{s:s}}", "waiting", "reason", waiting)
							     : json_pack("{s:{s:s}}", "running", "startedAt", ts)));
	json_object_set_new(st, "phase", json_string("Running"));
	json_object_set_new(st, "startTime", json_string(ts));
	json_object_set_new(st, "qosClass", json_string("BestEffort"));
	json_object_set_new(st, "hostIPs", json_pack("[{s:s}]", "ip", jstr(pod, "hostIP")));
	json_object_set_new(st, "conditions",
			    json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "type",
				      "PodScheduled", "status", "True", "type", "Initialized",
				      "status", "True", "type", "ContainersReady", "status",
				      ready ? "True" : "False", "type", "Ready", "status",
				      ready ? "True" : "False"));
	json_object_set_new(st, "containerStatuses", cs);
	return o;
}

/* What the agents read of an object: no server fields, no last-applied copy. */
static json_t *policy_form(json_t *o)
{
	json_t *m = json_object_get(o, "metadata"), *out, *ann;

	out = json_pack("{s:O, s:O, s:{s:O, s:O*, s:O*}}", "apiVersion", json_object_get(o, "apiVersion"),
			"kind", json_object_get(o, "kind"), "metadata", "name",
			json_object_get(m, "name"), "namespace", json_object_get(m, "namespace"),
			"labels", json_object_get(m, "labels"));
	/* the owner names a pod's workload (Istio's metrics label it by this) */
	if (json_array_size(json_object_get(m, "ownerReferences")))
		json_object_set(json_object_get(out, "metadata"), "ownerReferences",
				json_object_get(m, "ownerReferences"));
	ann = json_deep_copy(json_object_get(m, "annotations"));
	json_object_del(ann, "kubectl.kubernetes.io/last-applied-configuration");
	if (json_object_size(ann))
		json_object_set(json_object_get(out, "metadata"), "annotations", ann);
	json_decref(ann);
	if (json_object_get(o, "spec"))
		json_object_set(out, "spec", json_object_get(o, "spec"));
	if (!strcmp(json_string_value(json_object_get(o, "kind")) ?: "", "Pod")) {
		json_t *st = json_object_get(o, "status");

		json_object_set_new(out, "status",
				    json_pack("{s:O*, s:O*, s:O*}", "podIP", json_object_get(st, "podIP"),
					      "podIPs", json_object_get(st, "podIPs"), "hostIP",
					      json_object_get(st, "hostIP")));
	}
	return out;
}

/* Writes the policy directory from the store; *changed when a file came or went. */
static int sync_policy_dir(struct store *st, const char *cname, bool *changed)
{
	char dir[PATH_MAX];
	json_t *want = json_object();
	const char *fn;
	json_t *o;
	DIR *d;
	struct dirent *de;
	int err = 0;

	snprintf(dir, sizeof(dir), LAB_DIR "/%s/policy", cname);
	for (size_t i = 0; i < n_kind_defs; i++) {
		char key[128];
		json_t *items, *x;
		size_t j;

		if (!kind_defs[i].policy)
			continue;
		kind_key(&kind_defs[i], key, sizeof(key));
		items = store_list(st, key, NULL);
		json_array_foreach(items, j, x)
		{
			json_t *m = json_object_get(x, "metadata");
			char name[1024];

			/* a Pod the lab has not made yet has no address: not the agents' yet */
			if (!strcmp(kind_defs[i].kind, "Pod") &&
			    !*jstr(json_object_get(x, "status"), "podIP"))
				continue;
			snprintf(name, sizeof(name), "%s.%s.%s.json", kind_defs[i].kind,
				 *jstr(m, "namespace") ? jstr(m, "namespace") : "default", jstr(m, "name"));
			json_object_set_new(want, name, policy_form(x));
		}
		json_decref(items);
	}
	json_object_foreach(want, fn, o)
	{
		char path[PATH_MAX + 1100], tmp[PATH_MAX + 1100], *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS), *old = NULL;
		size_t len;

		snprintf(path, sizeof(path), "%s/%s", dir, fn);
		{
			FILE *f = fopen(path, "r");

			len = 0;
			if (f) {
				old = malloc(strlen(text) + 2);
				len = old ? fread(old, 1, strlen(text) + 1, f) : 0;
				fclose(f);
			}
		}
		if (old && len == strlen(text) && !memcmp(old, text, len)) {
			free(old);
			free(text);
			continue;
		}
		free(old);
		old = NULL;
		snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, fn);
		{
			FILE *f = fopen(tmp, "w");

			if (!f || fputs(text, f) < 0 || fclose(f) || rename(tmp, path))
				err = -EIO;
		}
		free(text);
		*changed = true;
	}
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.' || n < 5 || strcmp(de->d_name + n - 5, ".json") ||
		    json_object_get(want, de->d_name))
			continue;
		{
			char path[PATH_MAX + 300];

			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
			*changed = true;
		}
	}
	if (d)
		closedir(d);
	json_decref(want);
	return err;
}

static void put_if_changed(struct store *st, const char *res, const char *ns, const char *name,
			   json_t *o)
{
	json_t *old = store_get(st, res, ns, name);

	if (old) {
		json_t *a = json_deep_copy(old), *b = json_deep_copy(o);
		bool same;

		json_object_del(json_object_get(a, "metadata"), "resourceVersion");
		json_object_del(json_object_get(b, "metadata"), "resourceVersion");
		/* the server's fields of the old one stay */
		json_object_del(json_object_get(a, "metadata"), "uid");
		json_object_del(json_object_get(a, "metadata"), "creationTimestamp");
		json_object_del(json_object_get(b, "metadata"), "uid");
		json_object_del(json_object_get(b, "metadata"), "creationTimestamp");
		same = json_equal(a, b);
		json_decref(a);
		json_decref(b);
		if (same) {
			json_decref(o);
			return;
		}
		json_object_set(json_object_get(o, "metadata"), "uid",
				json_object_get(json_object_get(old, "metadata"), "uid"));
		json_object_set(json_object_get(o, "metadata"), "creationTimestamp",
				json_object_get(json_object_get(old, "metadata"), "creationTimestamp"));
	}
	if (!json_object_get(json_object_get(o, "metadata"), "uid")) {
		unsigned char b[16];
		FILE *f = fopen("/dev/urandom", "r");

		if (!f || fread(b, 1, sizeof(b), f) != sizeof(b))
			memset(b, 7, sizeof(b));
		if (f)
			fclose(f);
		json_object_set_new(json_object_get(o, "metadata"), "uid",
				    json_sprintf("%02x%02x%02x%02x-%02x%02x-4%x%02x-a%x%02x-%02x%02x%02x%02x%02x%02x",
						 b[0], b[1], b[2], b[3], b[4], b[5], b[6] & 15, b[7],
						 b[8] & 15, b[9], b[10], b[11], b[12], b[13], b[14], b[15]));
	}
	if (!json_object_get(json_object_get(o, "metadata"), "creationTimestamp")) {
		char ts[32];
		time_t t = time(NULL);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_set_new(json_object_get(o, "metadata"), "creationTimestamp", json_string(ts));
	}
	store_put(st, res, ns, name, o);
}

/* A Service's targetPort as a number, looking up a named one in the pod's containers. */
static long long target_port(json_t *sp, json_t *pod)
{
	json_t *tp = json_object_get(sp, "targetPort"), *ct, *pt;
	size_t i, j;

	if (json_is_integer(tp))
		return json_integer_value(tp);
	if (json_is_string(tp))
		json_array_foreach(json_object_get(json_object_get(pod, "spec"), "containers"), i, ct)
			json_array_foreach(json_object_get(ct, "ports"), j, pt)
				if (!strcmp(jstr(pt, "name"), json_string_value(tp)))
					return jint(pt, "containerPort");
	return jint(sp, "port");
}

/* Endpoints and an EndpointSlice per Service with a selector, from the ready pods it selects. */
static void sync_endpoints(struct store *st)
{
	json_t *svcs = store_list(st, "/services", NULL), *pods = store_list(st, "/pods", NULL),
	       *slices = store_list(st, "discovery.k8s.io/endpointslices", NULL), *s, *x;
	size_t i, j, k;

	json_array_foreach(svcs, i, s)
	{
		json_t *m = json_object_get(s, "metadata"), *spec = json_object_get(s, "spec"),
		       *sel = json_object_get(spec, "selector"), *eps = json_array(),
		       *addrs = json_array(), *ports = json_array(), *eports = json_array(), *sp,
		       *first = NULL;
		const char *ns = jstr(m, "namespace"), *name = jstr(m, "name");
		json_t *owner = json_pack("[{s:s, s:s, s:s, s:O, s:b, s:b}]", "apiVersion", "v1", "kind",
					  "Service", "name", name, "uid", json_object_get(m, "uid"),
					  "controller", 1, "blockOwnerDeletion", 1);

		if (!json_object_size(sel)) {
			json_decref(eps), json_decref(addrs), json_decref(ports), json_decref(eports);
			json_decref(owner);
			continue;
		}
		json_array_foreach(pods, j, x)
		{
			json_t *pm = json_object_get(x, "metadata"), *pst = json_object_get(x, "status");
			const char *key;
			json_t *v;
			bool match = !strcmp(jstr(pm, "namespace"), ns) && *jstr(pst, "podIP");

			json_object_foreach(sel, key, v)
				match &= json_equal(json_object_get(json_object_get(pm, "labels"), key), v);
			if (!match)
				continue;
			if (!first)
				first = x;
			json_array_append_new(eps, json_pack("{s:[s], s:{s:b, s:b, s:b}, s:s, s:{s:s, s:s, s:s, s:O}}",
							     "addresses", jstr(pst, "podIP"), "conditions",
							     "ready", 1, "serving", 1, "terminating", 0,
							     "nodeName", jstr(json_object_get(x, "spec"), "nodeName"),
							     "targetRef", "kind", "Pod", "namespace", ns,
							     "name", jstr(pm, "name"), "uid",
							     json_object_get(pm, "uid")));
			json_array_append_new(addrs, json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:O}}", "ip",
							       jstr(pst, "podIP"), "nodeName",
							       jstr(json_object_get(x, "spec"), "nodeName"),
							       "targetRef", "kind", "Pod", "namespace", ns,
							       "name", jstr(pm, "name"), "uid",
							       json_object_get(pm, "uid")));
		}
		json_array_foreach(json_object_get(spec, "ports"), k, sp)
		{
			long long port = first ? target_port(sp, first) : jint(sp, "port");

			json_array_append_new(ports, json_pack("{s:s, s:I, s:s}", "name", jstr(sp, "name"),
							       "port", (json_int_t)port, "protocol",
							       *jstr(sp, "protocol") ? jstr(sp, "protocol") : "TCP"));
			json_array_append_new(eports, json_pack("{s:s, s:I, s:s}", "name", jstr(sp, "name"),
								"port", (json_int_t)port, "protocol",
								*jstr(sp, "protocol") ? jstr(sp, "protocol") : "TCP"));
		}
		{
			char sname[300];

			snprintf(sname, sizeof(sname), "%s-lab", name);
			put_if_changed(st, "discovery.k8s.io/endpointslices", ns, sname,
				       json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}, s:O}, s:s, s:o, s:o}",
						 "apiVersion", "discovery.k8s.io/v1", "kind", "EndpointSlice",
						 "metadata", "name", sname, "namespace", ns, "labels",
						 "kubernetes.io/service-name", name,
						 "endpointslice.kubernetes.io/managed-by", "ksteer-lab",
						 "ownerReferences", owner, "addressType", "IPv4",
						 "endpoints", eps, "ports", ports));
		}
		put_if_changed(st, "/endpoints", ns, name,
			       json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion", "v1", "kind",
					 "Endpoints", "metadata", "name", name, "namespace", ns, "subsets",
					 json_array_size(addrs) ? json_pack("[{s:o, s:o}]", "addresses", addrs,
									    "ports", eports)
								: (json_decref(addrs), json_decref(eports), json_array())));
		json_decref(owner);
	}
	/* slices and Endpoints of Services that are gone */
	json_array_foreach(slices, i, x)
	{
		json_t *m = json_object_get(x, "metadata");
		const char *svc = jstr(json_object_get(m, "labels"), "kubernetes.io/service-name");

		if (!strcmp(jstr(json_object_get(m, "labels"), "endpointslice.kubernetes.io/managed-by"),
			    "ksteer-lab") &&
		    !store_get(st, "/services", jstr(m, "namespace"), svc)) {
			store_delete(st, "discovery.k8s.io/endpointslices", jstr(m, "namespace"),
				     jstr(m, "name"));
			store_delete(st, "/endpoints", jstr(m, "namespace"), svc);
		}
	}
	json_decref(svcs);
	json_decref(pods);
	json_decref(slices);
}

int lab_sync(struct store *st, const char *cluster, char *err, size_t len)
{
	struct lab lab;
	json_t *c, *want = json_object(), *w, *p, *deps, *empty = json_object();
	const char *key;
	size_t i;
	int nodes, rc = 0;
	bool changed = false;

	if (lab_open(&lab)) {
		snprintf(err, len, "no lab is up");
		json_decref(want);
		json_decref(empty);
		return -ENOENT;
	}
	c = find_cluster(&lab, cluster);
	if (!c) {
		snprintf(err, len, "no cluster %s in the lab", cluster);
		rc = -ENOENT;
		goto out;
	}
	nodes = (int)json_array_size(json_object_get(c, "nodes"));
	/* the pods wanted: NAME-0.. of each Deployment, one per node of each DaemonSet, bare Pods */
	deps = store_list(st, "apps/deployments", NULL);
	json_array_foreach(deps, i, p)
	{
		json_t *m = json_object_get(p, "metadata"), *spec = json_object_get(p, "spec"),
		       *tmpl = json_object_get(spec, "template");
		long long n = json_is_integer(json_object_get(spec, "replicas")) ? jint(spec, "replicas") : 1;

		for (long long r = 0; r < n && r < 1000; r++) {
			char name[600];

			snprintf(name, sizeof(name), "%s/%s-%lld", jstr(m, "namespace"), jstr(m, "name"), r);
			json_object_set_new(want, name,
					    json_pack("{s:s, s:O, s:O*, s:O*, s:s}", "kind", "Deployment",
						      "owner", p, "labels",
						      json_object_get(json_object_get(tmpl, "metadata"), "labels"),
						      "spec", json_object_get(tmpl, "spec"), "node", ""));
		}
	}
	json_decref(deps);
	deps = store_list(st, "apps/daemonsets", NULL);
	json_array_foreach(deps, i, p)
	{
		json_t *m = json_object_get(p, "metadata"), *tmpl = json_object_get(json_object_get(p, "spec"), "template");
		size_t k;
		json_t *node;

		json_array_foreach(json_object_get(c, "nodes"), k, node)
		{
			char name[600];

			snprintf(name, sizeof(name), "%s/%s-%s", jstr(m, "namespace"), jstr(m, "name"),
				 jstr(node, "name"));
			json_object_set_new(want, name,
					    json_pack("{s:s, s:O, s:O*, s:O*, s:s}", "kind", "DaemonSet",
						      "owner", p, "labels",
						      json_object_get(json_object_get(tmpl, "metadata"), "labels"),
						      "spec", json_object_get(tmpl, "spec"), "node",
						      jstr(node, "name")));
		}
	}
	json_decref(deps);
	deps = store_list(st, "/pods", NULL);
	json_array_foreach(deps, i, p)
	{
		json_t *m = json_object_get(p, "metadata");
		char name[600];

		if (json_array_size(json_object_get(m, "ownerReferences")))
			continue;
		snprintf(name, sizeof(name), "%s/%s", jstr(m, "namespace"), jstr(m, "name"));
		json_object_set_new(want, name,
				    json_pack("{s:s, s:n, s:O*, s:O*, s:s, s:O}", "kind", "", "owner",
					      "labels", json_object_get(m, "labels"), "spec",
					      json_object_get(p, "spec"), "node",
					      jstr(json_object_get(p, "spec"), "nodeName"), "meta", m));
	}
	json_decref(deps);
	/* pods no longer wanted go */
	for (i = json_array_size(json_object_get(c, "pods")); i-- > 0;) {
		char name[600];

		p = json_array_get(json_object_get(c, "pods"), i);
		snprintf(name, sizeof(name), "%s/%s", jstr(p, "namespace"), jstr(p, "name"));
		if (json_object_get(want, name))
			continue;
		json_incref(p);
		store_delete(st, "/pods", jstr(p, "namespace"), jstr(p, "name"));
		pod_down(&lab, c, p);
		json_decref(p);
	}
	state_save(&lab);
	/* wanted pods that are not there yet come up */
	json_object_foreach(want, key, w)
	{
		char ns[300], name[300];
		const char *slash = strchr(key, '/');
		json_t *pod, *owner = json_object_get(w, "owner"), *spec = json_object_get(w, "spec"),
		       *stored, *meta = NULL;

		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
		snprintf(name, sizeof(name), "%s", slash + 1);
		if (!json_is_object(spec))
			spec = empty;
		pod = find_pod_exact(c, ns, name);
		stored = store_get(st, "/pods", ns, name);
		if (!pod) {
			pod = json_pack("{s:s, s:s, s:s, s:O}", "namespace", ns, "name", name, "owner",
					json_is_object(owner) ? jstr(json_object_get(owner, "metadata"), "name") : "",
					"labels", json_object_get(w, "labels") ?: json_object());
			const char *sel = jstr(json_object_get(spec, "nodeSelector"), "kubernetes.io/hostname");
			bool kubelet = kubelet_runs(spec);
			char why[512] = "";

			/* a nodeSelector no lab node has: Pending, as the scheduler leaves it */
			if (*sel && !find_node(c, sel) &&
			    !(kubelet && !strcmp(sel, "gateway") && json_is_true(json_object_get(c, "gateway")))) {
				json_decref(pod);
				continue;
			}
			json_object_set_new(pod, "node",
					    *sel ? json_string(sel)
					    : *jstr(w, "node") && find_node(c, jstr(w, "node"))
						    ? json_string(jstr(w, "node"))
						    : json_sprintf("node%d", (int)jint(c, "nextPodId") % nodes + 1));
			if (kubelet ? kubelet_pod_up(&lab, st, c, pod, spec, why, sizeof(why))
				    : pod_up(&lab, c, pod, json_object_get(spec, "containers"))) {
				snprintf(err, len, "pod %s/%s did not come up%s%s", ns, name,
					 *why ? ": " : "", why);
				json_decref(pod);
				rc = -EIO;
				break;
			}
			json_decref(pod);
			pod = find_pod_exact(c, ns, name);
		} else if (stored && *jstr(json_object_get(stored, "status"), "podIP")) {
			continue; /* there, and the API shows it */
		}
		meta = stored ? json_object_get(stored, "metadata") : json_object_get(w, "meta");
		{
			json_t *o = pod_api_object(pod, spec, meta);

			if (json_is_object(owner) && !meta)
				pod_owner_set(json_object_get(o, "metadata"), owner);
			if (stored)
				json_object_set(json_object_get(o, "metadata"), "resourceVersion",
						json_object_get(json_object_get(stored, "metadata"), "resourceVersion"));
			put_if_changed(st, "/pods", ns, name, o);
		}
	}
	state_save(&lab);
	/* Deployments' status: every pod the lab makes is ready at once */
	deps = store_list(st, "apps/deployments", NULL);
	json_array_foreach(deps, i, p)
	{
		json_t *m = json_object_get(p, "metadata"), *o = json_deep_copy(p);
		json_int_t n = json_is_integer(json_object_get(json_object_get(p, "spec"), "replicas"))
				       ? json_integer_value(json_object_get(json_object_get(p, "spec"), "replicas"))
				       : 1;

		json_object_set_new(o, "status",
				    json_pack("{s:I, s:I, s:I, s:I, s:I}", "observedGeneration",
					      (json_int_t)jint(m, "generation"), "replicas", n,
					      "readyReplicas", n, "availableReplicas", n,
					      "updatedReplicas", n));
		put_if_changed(st, "apps/deployments", jstr(m, "namespace"), jstr(m, "name"), o);
	}
	json_decref(deps);
	/* the lab's view of the Services (lab status, tests' vip) */
	{
		json_t *svcs = store_list(st, "/services", NULL), *out = json_array(), *s;

		json_array_foreach(svcs, i, s)
		{
			json_t *sv = json_pack("{s:s, s:s, s:s, s:[]}", "namespace",
					       jstr(json_object_get(s, "metadata"), "namespace"), "name",
					       jstr(json_object_get(s, "metadata"), "name"), "clusterIP",
					       jstr(json_object_get(s, "spec"), "clusterIP"), "ports"), *pt;
			size_t k;

			json_array_foreach(json_object_get(json_object_get(s, "spec"), "ports"), k, pt)
				json_array_append_new(json_object_get(sv, "ports"),
						      json_pack("{s:s?, s:I}", "name",
								json_string_value(json_object_get(pt, "name")),
								"port", (json_int_t)jint(pt, "port")));
			json_array_append_new(out, sv);
		}
		json_object_set_new(c, "services", out);
		json_decref(svcs);
	}
	state_save(&lab);
	sync_endpoints(st);
	if (sync_policy_dir(st, cluster, &changed) && !rc) {
		snprintf(err, len, "write the policy directory of %s", cluster);
		rc = -EIO;
	}
	/* the agents watch the API: the directory is the lab's record, no longer theirs */
	(void)changed;
out:
	json_decref(want);
	json_decref(empty);
	lab_fini(&lab);
	return rc;
}

/* ---- restartPolicy Always ---- */

/*
 * One pass of the kubelet's loop over a cluster's ksteer pods: an exited container starts
 * again after kubelet's back-off, readiness follows the agent's readiness file, and the Pod
 * object shows both. With the store locked; the lab's lock taken here.
 */
static void kubelet_tick(struct store *st, const char *cluster)
{
	struct lab lab;
	json_t *c, *pod;
	size_t i;
	bool saved = false;

	if (lab_init(&lab))
		return;
	c = lab.st ? find_cluster(&lab, cluster) : NULL;
	json_array_foreach(c ? json_object_get(c, "pods") : NULL, i, pod)
	{
		pid_t pid = (pid_t)jint(pod, "serverPid");
		time_t now = time(NULL);
		bool changed = false, alive;
		int status;

		if (!json_is_true(json_object_get(pod, "kubelet")))
			continue;
		/* its child when this process started it, else (an API server restarted) not */
		alive = pid > 0 && waitpid(pid, &status, WNOHANG) != pid && pid_alive(pid);
		if (alive) {
			bool ready = !access(jstr(pod, "readyFile"), F_OK);

			if (ready != json_is_true(json_object_get(pod, "ready"))) {
				json_object_set_new(pod, "ready", json_boolean(ready));
				changed = true;
			}
		} else if (!jint(pod, "nextStart")) {
			int wait = kubelet_backoff((int)jint(pod, "backoff"), now - jint(pod, "startedAt"));

			pr_warn("pod %s/%s: its container exited; started again in %d s\n",
				jstr(pod, "namespace"), jstr(pod, "name"), wait);
			json_object_set_new(pod, "backoff", json_integer(wait));
			json_object_set_new(pod, "nextStart", json_integer(now + wait));
			json_object_set_new(pod, "ready", json_false());
			json_object_set_new(pod, "waiting", json_string("CrashLoopBackOff"));
			changed = true;
		} else if (now >= jint(pod, "nextStart")) {
			unlink(jstr(pod, "readyFile"));
			pid = kubelet_spawn(json_object_get(pod, "launch"));
			if (pid > 0) {
				json_object_set_new(pod, "serverPid", json_integer(pid));
				json_object_set_new(pod, "restarts", json_integer(jint(pod, "restarts") + 1));
				json_object_set_new(pod, "startedAt", json_integer(now));
				json_object_set_new(pod, "nextStart", json_integer(0));
				json_object_del(pod, "waiting");
				json_array_append_new(json_object_get(lab.st, "pids"), json_integer(pid));
				changed = true;
			}
		}
		if (changed) {
			json_t *stored = store_get(st, "/pods", jstr(pod, "namespace"), jstr(pod, "name"));

			if (stored) {
				json_t *o = pod_api_object(pod, json_object_get(stored, "spec"),
							   json_object_get(stored, "metadata"));

				json_object_set(json_object_get(o, "metadata"), "resourceVersion",
						json_object_get(json_object_get(stored, "metadata"),
								"resourceVersion"));
				put_if_changed(st, "/pods", jstr(pod, "namespace"), jstr(pod, "name"), o);
			}
			saved = true;
		}
	}
	if (saved)
		state_save(&lab);
	lab_fini(&lab);
}

static void *kubelet_loop(void *arg)
{
	struct store *st = ((void **)arg)[0];
	const char *cluster = ((void **)arg)[1];

	for (;;) {
		sleep(1);
		store_lock(st);
		kubelet_tick(st, cluster);
		store_unlock(st);
	}
	return NULL;
}

int lab_kubelet_start(struct store *st, const char *cluster)
{
	static void *arg[2];
	pthread_t th;

	arg[0] = st;
	arg[1] = (void *)cluster;
	if (pthread_create(&th, NULL, kubelet_loop, arg))
		return -errno;
	pthread_detach(th);
	return 0;
}

/* The client side of a cluster's API: its port, CA and token from the lab's state. */
static int kclient_of(json_t *c, struct kclient *k)
{
	char path[PATH_MAX], *tok = NULL;
	size_t len;

	k->port = (int)jint(c, "apiPort");
	snprintf(k->ca, sizeof(k->ca), LAB_DIR "/%s/api/ca.pem", jstr(c, "name"));
	snprintf(path, sizeof(path), LAB_DIR "/%s/api/token", jstr(c, "name"));
	if (k->port <= 0 || read_input(path, &tok, &len))
		return -ENOENT;
	tok[strcspn(tok, "\r\n")] = 0;
	snprintf(k->token, sizeof(k->token), "%s", tok);
	free(tok);
	return 0;
}

static const struct kind_def *def_of(const char *kind, const char *api, char *version, size_t len)
{
	const char *slash = strchr(api, '/');
	char group[128];

	snprintf(group, sizeof(group), "%.*s", slash ? (int)(slash - api) : 0, api);
	snprintf(version, len, "%s", slash ? slash + 1 : api);
	for (size_t i = 0; i < n_kind_defs; i++)
		if (!strcmp(kind_defs[i].kind, kind) && !strcmp(kind_defs[i].group, group) &&
		    kind_find(group, version, kind_defs[i].resource))
			return &kind_defs[i];
	return NULL;
}

static void print_status(const char *what, int code, json_t *reply)
{
	fprintf(stderr, "Error: %s: %s (%d %s)\n", what,
		json_string_value(json_object_get(reply, "message")) ?: "no answer", code,
		json_string_value(json_object_get(reply, "reason")) ?: "");
}

/* Creates or replaces obj through the API, as kubectl would: GET, then POST or PUT. */
static int api_put(const struct kclient *k, json_t *obj, const char *ns)
{
	char version[64], coll[1024], item[1400], what[700];
	const char *kind = jstr(obj, "kind"), *name = jstr(json_object_get(obj, "metadata"), "name");
	const struct kind_def *d = def_of(kind, jstr(obj, "apiVersion"), version, sizeof(version));
	json_t *reply = NULL;
	int code, err;

	snprintf(what, sizeof(what), "%s %s%s%s", kind, d && d->namespaced ? ns : "",
		 d && d->namespaced ? "/" : "", name);
	if (!d) {
		fprintf(stderr, "Error: %s (apiVersion %s): not a kind the lab serves\n", what,
			jstr(obj, "apiVersion"));
		return -EINVAL;
	}
	snprintf(coll, sizeof(coll), "/%s%s/%s/%s%s%s%s", *d->group ? "apis/" : "api", d->group,
		 version, d->namespaced ? "namespaces/" : "", d->namespaced ? ns : "",
		 d->namespaced ? "/" : "", d->resource);
	snprintf(item, sizeof(item), "%s/%s", coll, name);
	err = kclient_call(k, "GET", item, NULL, NULL, &code, &reply);
	if (!err && code == 200) {
		json_object_set(json_object_get(obj, "metadata"), "resourceVersion",
				json_object_get(json_object_get(reply, "metadata"), "resourceVersion"));
		json_decref(reply);
		err = kclient_call(k, "PUT", item, NULL, obj, &code, &reply);
	} else if (!err && code == 404) {
		json_decref(reply);
		err = kclient_call(k, "POST", coll, NULL, obj, &code, &reply);
	}
	if (err) {
		fprintf(stderr, "Error: %s: the API server at 127.0.0.1:%d: %s\n", what, k->port,
			strerror(-err));
		return err;
	}
	if (code != 200 && code != 201) {
		print_status(what, code, reply);
		json_decref(reply);
		return -EINVAL;
	}
	json_decref(reply);
	return 0;
}

/* The namespace objects go to: made if missing, as the lab always did (kubectl would refuse). */
static int api_namespace(const struct kclient *k, const char *ns)
{
	char path[512];
	json_t *reply = NULL, *o;
	int code, err;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s", ns);
	err = kclient_call(k, "GET", path, NULL, NULL, &code, &reply);
	json_decref(reply);
	if (!err && code == 200)
		return 0;
	o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace", "metadata",
		      "name", ns);
	err = api_put(k, o, "");
	json_decref(o);
	return err;
}

/* The resourceVersion an agent's status says it has handled, or -1 (no answer, no line). */
static long long agent_handled(const char *instance)
{
	static const char key[] = "kube handled resourceVersion ";
	char *reply = NULL, *at;
	long long v = -1;

	if (!ctl_call(instance, "status\n", NULL, 0, &reply) && reply &&
	    (at = strstr(reply, key)))
		v = strtoll(at + sizeof(key) - 1, NULL, 10);
	free(reply);
	return v;
}

/*
 * Waits until every agent of cluster c has handled every change the API holds now (its
 * status's `kube handled resourceVersion` at or past the API's current one): what lab apply
 * and lab wait return after. 0, or -ETIMEDOUT said with each agent's place.
 */
static int wait_handled(json_t *c, const struct kclient *k)
{
	const char *inst[256];
	unsigned ni = 0, left;
	long long target, got[256];
	json_t *reply = NULL, *n;
	size_t i;
	int code, err;

	err = kclient_call(k, "GET", "/api/v1/namespaces?limit=1", NULL, NULL, &code, &reply);
	if (err || code != 200) {
		fprintf(stderr, "Error: wait for the agents: the API server answered %d (%s)\n", code,
			err ? strerror(-err) : "no list");
		json_decref(reply);
		return err ?: -EIO;
	}
	target = strtoll(jstr(json_object_get(reply, "metadata"), "resourceVersion"), NULL, 10);
	json_decref(reply);
	json_array_foreach(json_object_get(c, "nodes"), i, n)
		if (ni < 255)
			inst[ni++] = jstr(n, "instance");
	if (json_is_true(json_object_get(c, "gateway")))
		inst[ni++] = jstr(c, "gatewayInstance");
	for (unsigned t = 0; t <= LAB_WAIT_MS / 20; t++) {
		left = 0;
		for (unsigned j = 0; j < ni; j++) {
			got[j] = agent_handled(inst[j]);
			left += got[j] < target;
		}
		if (!left)
			return 0;
		usleep(20 * 1000);
	}
	for (unsigned j = 0; j < ni; j++)
		if (got[j] < target)
			fprintf(stderr,
				"Error: agent %s has handled the API's changes up to resourceVersion %lld, "
				"not %lld, after %d s\n",
				inst[j], got[j], target, LAB_WAIT_MS / 1000);
	return -ETIMEDOUT;
}

/* `lab wait CLUSTER`: returns once every agent of the cluster has what its API holds. */
/*
 * The cluster NAME's state (a new reference) and a client of its API server, or NULL after
 * saying why. The lab is not held from here on: its API server takes the lab's lock for
 * each change it makes.
 */
static json_t *cluster_client(const char *name, struct kclient *kc)
{
	struct lab lab;
	json_t *c;

	if (lab_open(&lab))
		return NULL;
	c = find_cluster(&lab, name);
	if (!c) {
		fprintf(stderr, "Error: no cluster %s in the lab (ksteer lab status)\n", name);
		lab_fini(&lab);
		return NULL;
	}
	if (kclient_of(c, kc)) {
		fprintf(stderr, "Error: cluster %s has no API server (ksteer lab up makes one)\n", name);
		lab_fini(&lab);
		return NULL;
	}
	c = json_incref(c);
	lab_fini(&lab);
	return c;
}

static int lab_wait(int argc, char **argv)
{
	struct kclient kc;
	json_t *c;
	int err;

	if (argc != 3)
		return cli_usage("lab wait", stderr);
	c = cluster_client(argv[2], &kc);
	if (!c)
		return 1;
	err = wait_handled(c, &kc);
	json_decref(c);
	return err ? 1 : 0;
}

static int lab_apply(int argc, char **argv)
{
	const char *ns = NULL, *sel = NULL, *file = NULL;
	struct diag diag = { 0 };
	struct policy p;
	struct kclient kc;
	json_t *c;
	char *buf = NULL;
	size_t len = 0;
	int opt, err = 1;

	optind = 3;
	while ((opt = getopt(argc, argv, "n:l:f:")) != -1) {
		if (opt == 'n')
			ns = optarg;
		else if (opt == 'l')
			sel = optarg;
		else if (opt == 'f')
			file = optarg;
		else
			return cli_usage("lab apply", stderr);
	}
	if (argc < 3 || !file)
		return cli_usage("lab apply", stderr);
	c = cluster_client(argv[2], &kc);
	if (!c)
		return 1;
	if (read_input(file, &buf, &len))
		goto out;
	/* the whole file validated first, with its file:line: a bad one changes nothing */
	policy_init(&p, &diag, ns);
	policy_load_buffer(&p, strcmp(file, "-") ? file : "<stdin>", buf, len);
	policy_validate(&p);
	diag_print(&diag, stderr);
	policy_free(&p);
	if (diag.errors) {
		fprintf(stderr, "%u error(s): nothing applied\n", diag.errors);
		goto out;
	}
	if (api_namespace(&kc, ns ? ns : "default"))
		goto out;
	{
		yaml_parser_t ps;
		int bad = 0;

		yaml_parser_initialize(&ps);
		yaml_parser_set_input_string(&ps, (unsigned char *)buf, len);
		for (;;) {
			yaml_document_t doc;
			yaml_node_t *root;
			json_t *obj, *meta;
			const char *ons;

			if (!yaml_parser_load(&ps, &doc))
				break;
			root = yaml_document_get_root_node(&doc);
			if (!root) {
				yaml_document_delete(&doc);
				break;
			}
			obj = node_json(&doc, root, 0);
			yaml_document_delete(&doc);
			meta = json_object_get(obj, "metadata");
			if (!*jstr(obj, "kind") ||
			    !selector_matches(sel, json_object_get(meta, "labels"))) {
				json_decref(obj);
				continue;
			}
			ons = *jstr(meta, "namespace") ? jstr(meta, "namespace") : ns ? ns : "default";
			if (strcmp(ons, ns ? ns : "default") && strcmp(jstr(obj, "kind"), "Namespace"))
				bad |= api_namespace(&kc, ons) != 0;
			if (!bad)
				bad |= api_put(&kc, obj, ons) != 0;
			json_decref(obj);
			if (bad)
				break;
		}
		yaml_parser_delete(&ps);
		err = bad;
	}
	/* as the lab always did: back once every agent of the cluster routes by the change */
	if (!err && wait_handled(c, &kc))
		err = 1;
out:
	json_decref(c);
	free(buf);
	diag_free(&diag);
	return err;
}

/* ---- ksteer's own manifests, applied by lab up ---- */

/* `kubectl kustomize DIR` into out; 0, or its errors said. */
static int render_manifests(const char *dir, const char *out)
{
	char errf[PATH_MAX];
	int status;
	pid_t pid;

	snprintf(errf, sizeof(errf), "%s.err", out);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		int ef = open(errf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0 || ef < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(ef, 2);
		execlp("kubectl", "kubectl", "kustomize", dir, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "Error: kubectl kustomize %s failed (%d)%s:\n", dir,
			WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ", no kubectl? (scripts/deps.sh)" : "");
		print_tail(errf, 20);
		return -EINVAL;
	}
	return 0;
}

/* Istio's plug-in CA files of cluster c as the Secret cacerts. */
static json_t *cacerts_secret(json_t *c)
{
	char dir[PATH_MAX];
	json_t *data = json_object();
	DIR *d;
	struct dirent *de;

	snprintf(dir, sizeof(dir), LAB_DIR "/%s/cacerts", jstr(c, "name"));
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		char path[PATH_MAX + 256], *buf = NULL, *b64;
		size_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (read_input(path, &buf, &len))
			continue;
		b64 = malloc(len / 3 * 4 + 8);
		if (b64) {
			EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)buf, (int)len);
			json_object_set_new(data, de->d_name, json_string(b64));
		}
		free(b64);
		free(buf);
	}
	if (d)
		closedir(d);
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:o}", "apiVersion", "v1", "kind", "Secret",
			 "metadata", "name", "cacerts", "namespace", "ksteer-system", "type",
			 "Opaque", "data", data);
}

/*
 * Renders the lab's overlay (manifests/lab: manifests/deploy as a lab needs it) and applies
 * it to every cluster's API as kubectl would: the ConfigMap with the meshNetworks lab up
 * computed, the Secret cacerts from the cluster's CA, the workloads last.
 */
static int apply_manifests(struct lab *lab, const char *dir)
{
	char def[PATH_MAX], out[] = LAB_DIR "/manifests.yaml", *buf = NULL;
	size_t len, i;
	json_t *docs = json_array(), *c;
	yaml_parser_t ps;
	int err = 0;

	if (!dir) {
		char *slash;

		snprintf(def, sizeof(def), "%s", lab->self);
		slash = strrchr(def, '/');
		if (slash)
			*slash = 0;
		slash = strrchr(def, '/');
		snprintf(slash ? slash + 1 : def, sizeof(def) - (size_t)(slash ? slash + 1 - def : 0),
			 "manifests/lab");
		dir = def;
	}
	if (render_manifests(dir, out) || read_input(out, &buf, &len)) {
		json_decref(docs);
		free(buf);
		return -EINVAL;
	}
	yaml_parser_initialize(&ps);
	yaml_parser_set_input_string(&ps, (unsigned char *)buf, len);
	for (;;) {
		yaml_document_t doc;
		yaml_node_t *root;

		if (!yaml_parser_load(&ps, &doc)) {
			fprintf(stderr, "Error: %s: invalid YAML\n", out);
			err = -EINVAL;
			break;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break;
		}
		json_array_append_new(docs, node_json(&doc, root, 0));
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&ps);
	free(buf);
	json_array_foreach(err ? NULL : json_object_get(lab->st, "clusters"), i, c)
	{
		struct kclient kc;
		char mn[PATH_MAX], *mesh = NULL;
		size_t ml, j;
		json_t *o;

		snprintf(mn, sizeof(mn), LAB_DIR "/%s/policy/mesh-networks.yaml", jstr(c, "name"));
		if (kclient_of(c, &kc) || read_input(mn, &mesh, &ml)) {
			fprintf(stderr, "Error: cluster %s: no API server or no %s\n", jstr(c, "name"), mn);
			err = -ENOENT;
			break;
		}
		/* objects first, then the Secret the DaemonSet mounts, then the workloads */
		for (int pass = 0; pass < 2 && !err; pass++) {
			json_array_foreach(docs, j, o)
			{
				const char *kind = jstr(o, "kind");
				json_t *m = json_object_get(o, "metadata"), *x;
				bool workload = !strcmp(kind, "Deployment") || !strcmp(kind, "DaemonSet");

				if (workload != (pass == 1))
					continue;
				x = json_deep_copy(o);
				if (!strcmp(kind, "ConfigMap") && !strcmp(jstr(m, "name"), "ksteer-mesh"))
					json_object_set_new(json_object_get(x, "data"), "meshNetworks",
							    json_string(mesh));
				err = api_put(&kc, x, jstr(m, "namespace"));
				json_decref(x);
				if (err)
					break;
			}
			if (!pass && !err) {
				json_t *sec = cacerts_secret(c);

				err = api_put(&kc, sec, "ksteer-system");
				json_decref(sec);
			}
		}
		free(mesh);
		if (err) {
			fprintf(stderr, "Error: apply %s (rendered in %s) to %s\n", dir, out, jstr(c, "name"));
			break;
		}
	}
	json_decref(docs);
	return err;
}

/* Every node's and gateway's agent ready, as lab up always waited; else its log's tail. */
static int wait_agents(struct lab *lab)
{
	size_t i, k;
	json_t *c, *n;
	const char *inst[512];
	unsigned ni = 0;

	json_array_foreach(json_object_get(lab->st, "clusters"), i, c)
	{
		json_array_foreach(json_object_get(c, "nodes"), k, n)
			if (ni < 511)
				inst[ni++] = jstr(n, "instance");
		if (json_is_true(json_object_get(c, "gateway")) && ni < 511)
			inst[ni++] = jstr(c, "gatewayInstance");
	}
	for (unsigned j = 0; j < ni; j++) {
		char ready[PATH_MAX], log[PATH_MAX];

		snprintf(ready, sizeof(ready), LAB_DIR "/%s.ready", inst[j]);
		/* a few seconds per agent, at most; they start side by side */
		for (int t = 0; t < 300 && access(ready, F_OK); t++)
			usleep(50 * 1000);
		if (!access(ready, F_OK))
			continue;
		snprintf(log, sizeof(log), LAB_DIR "/logs/%s.log", inst[j]);
		if (!access(log, F_OK)) {
			fprintf(stderr, "Error: agent %s (from %s) did not become ready; its log, %s:\n",
				inst[j], "the manifests", log);
			print_tail(log, 20);
		} else {
			fprintf(stderr, "Error: agent %s never started: no pod ran it; the API servers' logs:\n",
				inst[j]);
			json_array_foreach(json_object_get(lab->st, "clusters"), i, c)
			{
				snprintf(log, sizeof(log), LAB_DIR "/logs/api-%s.log", jstr(c, "key"));
				print_tail(log, 20);
			}
		}
		return -EIO;
	}
	return 0;
}

/* (Re)starts a cluster's API server that is not running, on its port, with its store. */
static int lab_api_restart(int argc, char **argv)
{
	struct lab lab;
	json_t *c;
	int err = 1;

	if (argc < 4)
		return cli_usage("lab api", stderr);
	if (lab_open(&lab))
		return 1;
	c = find_cluster(&lab, argv[3]);
	if (!c || strcmp(argv[2], "start")) {
		fprintf(stderr, "Error: no cluster %s in the lab\n", argv[3]);
		goto out;
	}
	if (pid_alive((pid_t)jint(c, "apiPid"))) {
		printf("the API server of %s runs (pid %lld)\n", argv[3], jint(c, "apiPid"));
		err = 0;
		goto out;
	}
	if (!api_start(&lab, c)) {
		state_save(&lab);
		printf("the API server of %s started (pid %lld)\n", argv[3], jint(c, "apiPid"));
		err = 0;
	}
out:
	lab_fini(&lab);
	return err;
}

static int lab_kubeconfig(void)
{
	struct lab lab;
	char *buf = NULL;
	size_t len;

	if (lab_open(&lab))
		return 1;
	lab_fini(&lab);
	if (read_input(LAB_DIR "/kubeconfig", &buf, &len)) {
		fprintf(stderr, "Error: no %s/kubeconfig: the lab predates its API servers\n", LAB_DIR);
		return 1;
	}
	fwrite(buf, 1, len, stdout);
	free(buf);
	return 0;
}

/* ---- exec, env, status ---- */

static int lab_exec(int argc, char **argv)
{
	struct lab lab;
	json_t *c, *pod;
	char *slash, who[512];
	int i;

	if (argc < 6 || strcmp(argv[4], "--"))
		return cli_usage("lab exec", stderr);
	if (lab_open(&lab))
		return 1;
	snprintf(who, sizeof(who), "%s", argv[3]);
	slash = strchr(who, '/');
	c = find_cluster(&lab, argv[2]);
	pod = c && slash ? (*slash = 0, find_pod(c, who, slash + 1)) : NULL;
	if (!pod) {
		fprintf(stderr, "Error: no pod or deployment %s in cluster %s\n", argv[3], argv[2]);
		lab_fini(&lab);
		return 1;
	}
	if (join_cgroup(jstr(pod, "cgroup"))) {
		fprintf(stderr, "Error: join cgroup %s: %s\n", jstr(pod, "cgroup"), strerror(errno));
		lab_fini(&lab);
		return 1;
	}
	{
		char *args[256] = { "ip", "netns", "exec", (char *)jstr(pod, "netns") };
		int n = 4;

		for (i = 5; i < argc && n < 255; i++)
			args[n++] = argv[i];
		args[n] = NULL;
		close(lab.lockfd); /* the command may run long: do not hold the lab */
		execvp("ip", args);
	}
	fprintf(stderr, "Error: exec ip: %s\n", strerror(errno));
	return 127;
}

static void env_name(const char *cluster, char *out, size_t len)
{
	size_t i = 0;

	for (; *cluster && i + 1 < len; cluster++)
		out[i++] = isalnum((unsigned char)*cluster) ? (char)toupper((unsigned char)*cluster)
							    : '_';
	out[i] = 0;
}

static int lab_env(void)
{
	struct lab lab;
	size_t i;
	json_t *c;

	if (lab_open(&lab))
		return 1;
	json_array_foreach(json_object_get(lab.st, "clusters"), i, c)
	{
		char name[256];

		if (!json_is_true(json_object_get(c, "gateway")))
			continue;
		env_name(jstr(c, "name"), name, sizeof(name));
		printf("export %s_GW_ADDR=%s\n", name, jstr(c, "gatewayAddress"));
	}
	/* kubectl: the lab's kubeconfig and a context name per cluster */
	if (!access(LAB_DIR "/kubeconfig", R_OK)) {
		printf("export KUBECONFIG=%s/kubeconfig\n", LAB_DIR);
		json_array_foreach(json_object_get(lab.st, "clusters"), i, c)
		{
			char name[256];

			env_name(jstr(c, "name"), name, sizeof(name));
			printf("export CTX_%s=%s\n", name, jstr(c, "name"));
		}
	}
	lab_fini(&lab);
	return 0;
}

static int lab_status(int argc, char **argv)
{
	struct lab lab;
	json_t *out, *c;
	bool json = argc >= 4 && !strcmp(argv[2], "-o") && !strcmp(argv[3], "json");
	size_t i;

	if (lab_open(&lab))
		return 1;
	out = json_pack("{s:[]}", "clusters");
	json_array_foreach(json_object_get(lab.st, "clusters"), i, c)
	{
		json_t *oc = json_object(), *nodes = json_array(), *pods = json_array(),
		       *svcs = json_array(), *v;
		size_t k;

		json_object_set_new(oc, "name", json_string(jstr(c, "name")));
		json_object_set_new(oc, "api", json_pack("{s:I, s:I}", "port", (json_int_t)jint(c, "apiPort"),
							 "pid", (json_int_t)jint(c, "apiPid")));
		json_object_set_new(oc, "gateway",
				    json_is_true(json_object_get(c, "gateway"))
					    ? json_pack("{s:s}", "address", jstr(c, "gatewayAddress"))
					    : json_null());
		json_array_foreach(json_object_get(c, "nodes"), k, v)
			json_array_append_new(nodes, json_pack("{s:s}", "name", jstr(v, "name")));
		json_array_foreach(json_object_get(c, "pods"), k, v)
			json_array_append_new(pods, json_pack("{s:s, s:s, s:s, s:s, s:O}", "namespace",
							      jstr(v, "namespace"), "name",
							      jstr(v, "name"), "node", jstr(v, "node"),
							      "ip", jstr(v, "ip"), "labels",
							      json_object_get(v, "labels")));
		json_array_foreach(json_object_get(c, "services"), k, v)
			json_array_append(svcs, v);
		json_object_set_new(oc, "nodes", nodes);
		json_object_set_new(oc, "pods", pods);
		json_object_set_new(oc, "services", svcs);
		json_array_append_new(json_object_get(out, "clusters"), oc);
	}
	if (json) {
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
	} else {
		json_array_foreach(json_object_get(out, "clusters"), i, c)
		{
			size_t k;
			json_t *v;

			printf("cluster %s  gateway %s\n", jstr(c, "name"),
			       json_is_null(json_object_get(c, "gateway"))
				       ? "none"
				       : jstr(json_object_get(c, "gateway"), "address"));
			json_array_foreach(json_object_get(c, "services"), k, v)
				printf("  service %s/%s  %s\n", jstr(v, "namespace"), jstr(v, "name"),
				       jstr(v, "clusterIP"));
			json_array_foreach(json_object_get(c, "pods"), k, v)
				printf("  pod %s/%s  %s  %s\n", jstr(v, "namespace"), jstr(v, "name"),
				       jstr(v, "node"), jstr(v, "ip"));
		}
	}
	json_decref(out);
	lab_fini(&lab);
	return 0;
}

int cmd_lab(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";

	if (!strcmp(sub, "up"))
		return lab_up(argc, argv);
	if (!strcmp(sub, "down"))
		return lab_down();
	if (!strcmp(sub, "apply"))
		return lab_apply(argc, argv);
	if (!strcmp(sub, "exec"))
		return lab_exec(argc, argv);
	if (!strcmp(sub, "wait"))
		return lab_wait(argc, argv);
	if (!strcmp(sub, "env"))
		return lab_env();
	if (!strcmp(sub, "kubeconfig"))
		return lab_kubeconfig();
	if (!strcmp(sub, "api"))
		return lab_api_restart(argc, argv);
	if (!strcmp(sub, "status"))
		return lab_status(argc, argv);
	return cli_usage("lab", stderr);
}
