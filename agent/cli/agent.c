// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `ksteer agent`: keeps the datapath fed. Loads every YAML under the policy
 * directory, watches it (ConfigMap `..data` swaps included), switches each
 * good policy in atomically, keeps the last good one when a new one is bad,
 * and answers `ksteer apply` and `ksteer status` on a root-only socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../compile/compile.h"
#include "../datapath/datapath.h"
#include "../lib/file.h"
#include "../lib/log.h"
#include "../identity/identity.h"
#include "../policy/decode.h"
#include "../datapath/guard.h"
#include "../shim/shim.h"
#include "../daemon/daemon.h"
#include "cli.h"

int cmd_agent(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },   { "cgroup", required_argument, NULL, 'c' },
		{ "instance", required_argument, NULL, 'i' }, { "namespace", required_argument, NULL, 'n' },
		{ "self-mark", required_argument, NULL, 'm' }, { "shim", required_argument, NULL, 's' },
		{ "max-frontends", required_argument, NULL, 'F' },
		{ "max-dests", required_argument, NULL, 'D' },
		{ "max-backends", required_argument, NULL, 'B' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "netns", required_argument, NULL, 'N' },
		{ "inbound", no_argument, NULL, 'I' },
		{ "gateway", no_argument, NULL, 'G' },
		{ "gateway-labels", required_argument, NULL, 'L' },
		{ "ca", required_argument, NULL, 'C' },
		{ "trust-domain", required_argument, NULL, 'T' },
		{ "cert-ttl", required_argument, NULL, 'X' },
		{ "sni-form", required_argument, NULL, 'S' },
		{ "no-dns", no_argument, NULL, 'd' },
		{ "xdp-dev", required_argument, NULL, 'x' },
		{ "allow", required_argument, NULL, 'A' },
		{ "guard-port", required_argument, NULL, 'P' },
		{ "xdp-mode", required_argument, NULL, 'M' },
		{ "sockmap", required_argument, NULL, 'K' },
		{ "splice", required_argument, NULL, 'J' },
		{ "dns-upstream", required_argument, NULL, 'U' },
		{ "limit", required_argument, NULL, 'l' },
		{ "admin", required_argument, NULL, 'a' },
		{ "cluster", required_argument, NULL, 'y' },
		{ "access-log", required_argument, NULL, 'Q' },
		{ "kube", no_argument, NULL, 'k' },
		{ "kubeconfig", required_argument, NULL, 'g' },
		{ "context", required_argument, NULL, 't' },
		{ "node", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon_opts opt = {
		.dp = { .self_mark = 0x6b73 /* "ks" */, .shim_port = 15001, .dns_port = 15053,
			.sockmap = false, .splice = false },
		.so = { .outbound = true, .out_port = 15001, .in_port = 15008,
			.gateway_labels = "istio=ingressgateway", .trust_domain = ID_TRUST_DOMAIN,
			.cert_ttl = ID_DEFAULT_TTL },
		.xdp_mode = "auto",
	};
	struct dp_opts *o = &opt.dp;
	struct shim_opts *so = &opt.so;
	const char *shim = "127.0.0.1";
	const char *kubeconfig = NULL, *context = NULL;
	struct kube_config kc = { 0 };
	bool in_cluster = false;
	struct daemon *d = NULL;
	int64_t ms;
	int c, err = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "p:c:i:n:", opts, NULL)) != -1) {
		switch (c) {
		case 'p': opt.policy_dir = optarg; break;
		case 'k': in_cluster = true; break;
		case 'g': kubeconfig = optarg; break;
		case 't': context = optarg; break;
		case 'o': opt.node = optarg; break;
		case 'c': o->cgroup = optarg; break;
		case 'i': opt.instance = o->instance = optarg; break;
		case 'n': opt.ns = optarg; break;
		case 'm': o->self_mark = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 's': shim = optarg; break;
		case 'F': o->max_frontends = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'D': o->max_dests = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'B': o->max_backends = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'r': opt.ready = optarg; break;
		case 'N': opt.netns = optarg; break;
		case 'I': so->inbound = true; break;
		case 'G': so->gateway = true; break;
		case 'L': so->gateway_labels = optarg; break;
		case 'C': so->ca_dir = optarg; break;
		case 'T': so->trust_domain = optarg; break;
		case 'X':
			if (parse_duration_ms(optarg, &ms) || ms < 2000) {
				fprintf(stderr, "Error: --cert-ttl %s: a duration of at least 2s "
						"(e.g. 24h, 90m)\n",
					optarg);
				return 2;
			}
			so->cert_ttl = (long)(ms / 1000);
			break;
		case 'd': o->dns_port = 0; break;
		case 'K':
		case 'J':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "Error: --%s: on or off\n", c == 'K' ? "sockmap" : "splice");
				return 2;
			}
			*(c == 'K' ? &o->sockmap : &o->splice) = !strcmp(optarg, "on");
			break;
		case 'M':
			if (strcmp(optarg, "auto") && strcmp(optarg, "native") &&
			    strcmp(optarg, "generic")) {
				fprintf(stderr, "Error: --xdp-mode: auto, native or generic\n");
				return 2;
			}
			opt.xdp_mode = optarg;
			break;
		case 'x':
			if (opt.n_xdp == GUARD_MAX_DEVS) {
				fprintf(stderr, "Error: --xdp-dev: at most %d devices\n", GUARD_MAX_DEVS);
				return 2;
			}
			opt.xdp_devs[opt.n_xdp++] = optarg;
			break;
		case 'A': {
			struct ks_lpm_key k;

			if (guard_cidr(optarg, &k) || opt.n_allow == 256) {
				fprintf(stderr, "Error: --allow %s: not a CIDR or address (or over 256)\n",
					optarg);
				return 2;
			}
			opt.allow[opt.n_allow++] = optarg;
			break;
		}
		case 'P': {
			long v = strtol(optarg, NULL, 10);

			if (v < 1 || v > 65535 || opt.n_gports == 32) {
				fprintf(stderr, "Error: --guard-port %s: 1-65535 (at most 32)\n", optarg);
				return 2;
			}
			opt.gports[opt.n_gports++] = (uint16_t)v;
			break;
		}
		case 'U': {
			char a6[64];

			snprintf(a6, sizeof(a6), "%s%s", strchr(optarg, ':') ? "" : "::ffff:", optarg);
			if (inet_pton(AF_INET6, a6, &so->dns_upstream) != 1) {
				fprintf(stderr, "Error: --dns-upstream: not an address: %s\n", optarg);
				return 2;
			}
			so->dns_upstream_set = true;
			so->dns_upstream_port = 53;
			break;
		}
		case 'a': {
			char a6[64];

			snprintf(a6, sizeof(a6), "%s%s", strchr(optarg, ':') ? "" : "::ffff:", optarg);
			if (inet_pton(AF_INET6, a6, &so->admin_addr) != 1) {
				fprintf(stderr, "Error: --admin: not an address: %s\n", optarg);
				return 2;
			}
			so->admin = true;
			break;
		}
		case 'y': so->cluster = optarg; break;
		case 'Q': so->access_log = optarg; break;
		case 'l':
			if (shim_limit_set(&so->lim, optarg)) {
				fprintf(stderr, "Error: --limit %s: NAME=VALUE, one of:\n", optarg);
				shim_limits_print(NULL, stderr);
				return 2;
			}
			break;
		case 'S':
			if (strcmp(optarg, "global") && strcmp(optarg, "local")) {
				fprintf(stderr, "Error: --sni-form: global (outbound_.P_.S_.H.global, "
						"the scenario's) or local (.svc.cluster.local)\n");
				return 2;
			}
			so->sni_local = !strcmp(optarg, "local");
			break;
		default:
			return cli_usage("agent", stderr);
		}
	}
	if ((!opt.policy_dir && !in_cluster && !kubeconfig) || !o->cgroup || !opt.instance) {
		fprintf(stderr, "Error: --cgroup, --instance and a policy source (--policy, --kube "
				"or --kubeconfig) are required\n");
		return cli_usage("agent", stderr);
	}
	if ((in_cluster && kubeconfig) || (context && !kubeconfig)) {
		fprintf(stderr, "Error: --kube or --kubeconfig FILE [--context NAME], not both\n");
		return 2;
	}
	if (!opt.node)
		opt.node = getenv("NODE_NAME");
	if (in_cluster || kubeconfig) {
		if (in_cluster ? kube_config_incluster(&kc, KUBE_SA_DIR)
			       : kube_config_load(&kc, kubeconfig, context))
			return 1;
		opt.kube = &kc;
	}
	if (cli_instance_check(opt.instance))
		return 2;
	{
		char s6[64];

		snprintf(s6, sizeof(s6), "%s%s", strchr(shim, ':') ? "" : "::ffff:", shim);
		if (inet_pton(AF_INET6, s6, &o->shim_addr) != 1) {
			fprintf(stderr, "Error: --shim: not an address: %s\n", shim);
			return 2;
		}
	}
	if (geteuid()) {
		fprintf(stderr, "Error: ksteer agent needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)\n");
		return 1;
	}
	if ((err = daemon_open(&d, &opt)) == 0)
		err = daemon_run(d);
	daemon_close(d);
	kube_config_free(&kc); /* empty when the daemon took it over */
	return err ? 1 : 0;
}

/* ---- clients ---- */

int ctl_call(const char *instance, const char *head, const char *body, size_t len,
	     char **reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[4096], *all = NULL;
	size_t n = 0;
	ssize_t r;
	FILE *f;
	int fd;

	*reply = NULL;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/run/ksteer/%s.sock", instance);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "Error: connect %s: %s (is the agent running?)\n", sa.sun_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -ECONNREFUSED;
	}
	if (write(fd, head, strlen(head)) < 0 || (len && write(fd, body, len) < 0)) {
		fprintf(stderr, "Error: send to %s: %s\n", sa.sun_path, strerror(errno));
		close(fd);
		return -EIO;
	}
	shutdown(fd, SHUT_WR); /* the end of the request */
	f = open_memstream(&all, &n);
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)r, f);
	fclose(f);
	close(fd);
	*reply = all;
	/* the last line is OK or ERROR; the rest is for the user */
	if (n >= 3 && !strcmp(all + n - 3, "OK\n")) {
		all[n - 3] = 0;
		return 0;
	}
	if (n >= 6 && !strcmp(all + n - 6, "ERROR\n"))
		all[n - 6] = 0;
	return -EINVAL;
}

static int ctl_request(const char *instance, const char *head, const char *body, size_t len)
{
	char *reply;
	int err = ctl_call(instance, head, body, len, &reply);

	if (reply)
		fputs(reply, err ? stderr : stdout);
	free(reply);
	return err ? 1 : 0;
}

/*
 * The clients' options: -i/--instance NAME everywhere, -f/--filename for apply;
 * positional words after them. Returns the index of the first positional, or -1
 * after a usage error was printed.
 */
static int client_opts(int argc, char **argv, const char *cmd, const char **instance,
		       const char **file)
{
	/* --filename first: the commands without a file skip it */
	static const struct option opts[] = {
		{ "filename", required_argument, NULL, 'f' },
		{ "instance", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, file ? "i:f:" : "i:", file ? opts : opts + 1, NULL)) !=
	       -1) {
		if (c == 'i')
			*instance = optarg;
		else if (c == 'f' && file)
			*file = optarg;
		else
			return cli_usage(cmd, stderr), -1;
	}
	if (!*instance || (file && !*file)) {
		fprintf(stderr, "Error: %s needed\n", *instance ? "-f FILE" : "-i NAME");
		return cli_usage(cmd, stderr), -1;
	}
	if (cli_instance_check(*instance))
		return -1;
	return optind;
}

int cmd_status(int argc, char **argv)
{
	const char *instance = NULL;
	int i = client_opts(argc, argv, "status", &instance, NULL);

	if (i < 0)
		return 2;
	if (i != argc)
		return cli_usage("status", stderr);
	return ctl_request(instance, "status\n", NULL, 0);
}

/* ksteer sockmap|splice -i NAME on|off: one switch for new connections */
int cmd_switch(int argc, char **argv)
{
	const char *instance = NULL;
	int i = client_opts(argc, argv, argv[0], &instance, NULL);
	char req[32];

	if (i < 0)
		return 2;
	if (i != argc - 1 || (strcmp(argv[i], "on") && strcmp(argv[i], "off")))
		return cli_usage(argv[0], stderr);
	snprintf(req, sizeof(req), "%s %s\n", argv[0], argv[i]);
	return ctl_request(instance, req, NULL, 0);
}

int cmd_apply(int argc, char **argv)
{
	const char *instance = NULL, *file = NULL, *base;
	char head[512], *body = NULL;
	size_t len = 0;
	int i = client_opts(argc, argv, "apply", &instance, &file), rc;

	if (i < 0)
		return 2;
	if (i != argc)
		return cli_usage("apply", stderr);
	if (read_input(file, &body, &len))
		return 1;
	base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	snprintf(head, sizeof(head), "apply %s\n", strcmp(file, "-") ? base : "stdin.yaml");
	rc = ctl_request(instance, head, body, len);
	free(body);
	return rc;
}

int cmd_uninstall(int argc, char **argv)
{
	const char *instance = NULL;
	int i = client_opts(argc, argv, "uninstall", &instance, NULL), err;

	if (i < 0)
		return 2;
	if (i != argc)
		return cli_usage("uninstall", stderr);
	err = dp_uninstall(instance);
	if (err) {
		fprintf(stderr, "Error: uninstall %s: %s\n", instance, strerror(-err));
		return 1;
	}
	printf("instance %s: links, maps and pins removed\n", instance);
	return 0;
}
