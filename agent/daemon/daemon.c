// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The daemon behind `ksteer agent`: keeps the datapath fed. Loads every YAML
 * under the policy directory, watches it (ConfigMap `..data` swaps
 * included) and takes the Kubernetes API's snapshots (agent/kube/), switches
 * each good policy in atomically, keeps the last good one when a new one is
 * bad, and answers `ksteer apply` and `ksteer status` on a root-only socket.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <ctype.h>
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
#include "../shim/explain.h"
#include "../kube/kube.h"
#include "../shim/shim.h"
#include "daemon.h"

struct daemon {
	sigset_t mask;
	const char *policy_dir, *instance, *ns;
	struct datapath dp;
	int epfd, inofd, sigfd, ctlfd, timerfd;
	unsigned applied; /* good policies switched in since start */
	unsigned rejected;
	uint32_t gen;
	uint32_t n_frontends;
	struct shim *shim; /* NULL when the shim address is not in this namespace */
	struct guard guard; /* the XDP guard, when --xdp-dev names devices */
	struct guard_cfg gcfg;
	int guard_stats_fd; /* the guard's pinned counters, for /stats/prometheus; -1: none */
	struct policy cur_policy; /* the last good policy: the shim routes by it */
	struct plan cur_plan;
	bool have_plan;
	struct kube *kube;      /* the API watch, with --kube or --kubeconfig */
	int kubefd;             /* readable when a snapshot waits */
	struct kube_snap *snap; /* the API's objects, as last handed over */
	const char *ready;      /* written once the first policy load is done */
	char ctl_path[108];
	char last[1024]; /* the last load's outcome, for status */
};

/* Loads the directory plus an optional extra document; compiles into plan. */
static int load_policy(struct daemon *ag, const char *extra_name, const char *extra,
		       struct diag *diag, struct policy *p, struct plan *plan)
{
	policy_init(p, diag, ag->ns);
	if (ag->policy_dir)
		policy_load_path(p, ag->policy_dir);
	for (unsigned i = 0; ag->snap && i < ag->snap->n; i++)
		policy_load_buffer(p, ag->snap->objs[i].name, ag->snap->objs[i].text,
				   ag->snap->objs[i].len);
	if (extra)
		policy_load_buffer(p, extra_name, extra, strlen(extra));
	policy_validate(p);
	memset(plan, 0, sizeof(*plan));
	if (!diag->errors)
		plan_compile(plan, p, diag);
	return diag->errors ? -EINVAL : 0;
}

static void reload(struct daemon *ag)
{
	struct diag diag = { 0 };
	struct policy p;
	struct plan plan;
	int err;

	if (ag->kube && !ag->snap) {
		/* a policy without the API's objects would drop every route the kernel has */
		snprintf(ag->last, sizeof(ag->last), "waiting for the Kubernetes API's first snapshot");
		return;
	}
	err = load_policy(ag, NULL, NULL, &diag, &p, &plan);

	diag_print(&diag, stderr);
	if (ag->kube)
		kube_verdict(ag->kube, ag->snap, !err);
	if (err) {
		ag->rejected++;
		snprintf(ag->last, sizeof(ag->last),
			 "policy rejected (%u errors): generation %u keeps routing", diag.errors,
			 ag->gen);
		pr_warn("%s\n", ag->last);
	} else if ((err = dp_apply(&ag->dp, &plan.img, &ag->gen))) {
		ag->rejected++;
		snprintf(ag->last, sizeof(ag->last), "policy not applied: %s", strerror(-err));
		pr_warn("%s\n", ag->last);
	} else {
		ag->applied++;
		ag->n_frontends = plan.img.n_fes;
		snprintf(ag->last, sizeof(ag->last),
			 "policy applied: generation %u, %u frontend keys, %u destinations, %u "
			 "backends",
			 ag->gen, plan.img.n_fes, plan.img.n_dests, plan.img.n_backends);
		if (plan.img.n_overflow) /* full windows of ks_fe_slots: grows with the load */
			snprintf(ag->last + strlen(ag->last), sizeof(ag->last) - strlen(ag->last),
				 " (%u frontend keys found through ks_frontends: their slot window is full)",
				 plan.img.n_overflow);
		pr_info("%s\n", ag->last);
		/* the shim routes by the policy the kernel now has; the old one goes */
		if (ag->have_plan) {
			plan_free(&ag->cur_plan);
			policy_free(&ag->cur_policy);
		}
		ag->cur_plan = plan;
		ag->cur_policy = p;
		ag->cur_plan.policy = &ag->cur_policy;
		if (ag->shim)
			shim_set_plan(ag->shim, &ag->cur_plan);
		guard_apply(&ag->guard, &ag->cur_plan, &ag->gcfg);
		ag->have_plan = true;
		diag_free(&diag);
		return;
	}
	plan_free(&plan);
	policy_free(&p);
	diag_free(&diag);
}

static void write_ready(struct daemon *ag)
{
	FILE *f = ag->ready ? fopen(ag->ready, "w") : NULL;

	if (f) {
		fprintf(f, "%d\n", getpid());
		fclose(f);
	}
	ag->ready = NULL;
}

static void arm_reload(struct daemon *ag)
{
	/* coalesce a burst of file events (a ConfigMap swap is several) into one load */
	struct itimerspec its = { .it_value = { 0, 50 * 1000 * 1000 } };

	timerfd_settime(ag->timerfd, 0, &its, NULL);
}

/* Writes data to dir/name through a temporary file and rename: readers see all or nothing. */
static int write_atomic(const char *dir, const char *name, const char *data, size_t len)
{
	char tmp[4096], dst[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	if (fwrite(data, 1, len, f) != len || fclose(f)) {
		unlink(tmp);
		return -EIO;
	}
	if (rename(tmp, dst)) {
		int err = -errno;

		unlink(tmp);
		return err;
	}
	return 0;
}

static void ctl_reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ctl_reply(int fd, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0 && write(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1) < 0)
		pr_debug("control reply: %s\n", strerror(errno));
}

static void handle_apply(struct daemon *ag, int fd, const char *name, const char *body)
{
	struct diag diag = { 0 };
	struct policy p;
	struct plan plan;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	if (!ag->policy_dir) {
		ctl_reply(fd, "Error: no --policy directory: apply to the Kubernetes API\nERROR\n");
		return;
	}
	if (!*name || strchr(name, '/') || name[0] == '.') {
		ctl_reply(fd, "Error: bad file name \"%s\"\nERROR\n", name);
		return;
	}
	err = load_policy(ag, name, body, &diag, &p, &plan);
	f = open_memstream(&text, &len);
	diag_print(&diag, f);
	fclose(f);
	if (!err)
		err = write_atomic(ag->policy_dir, name, body, strlen(body));
	if (text && *text && write(fd, text, len) < 0)
		pr_debug("control reply: %s\n", strerror(errno));
	if (err == -EINVAL)
		ctl_reply(fd, "%u error(s): nothing applied\nERROR\n", diag.errors);
	else if (err)
		ctl_reply(fd, "Error: write %s/%s: %s\nERROR\n", ag->policy_dir, name, strerror(-err));
	else
		ctl_reply(fd, "applied %s: %u frontend keys\nOK\n", name, plan.img.n_fes);
	free(text);
	plan_free(&plan);
	policy_free(&p);
	diag_free(&diag);
	if (!err)
		reload(ag); /* synchronous: when apply returns, the kernel routes by it */
}

/* `ksteer explain -i`: the request in JSON, explained against the plan that routes now. */
static void handle_explain(struct daemon *ag, int fd, const char *body)
{
	struct explain_req rq;
	char err[512], *out = NULL;
	json_t *j = json_loads(body, 0, NULL), *e = NULL;
	size_t len;

	if (!ag->have_plan)
		snprintf(err, sizeof(err), "explain: no policy applied yet");
	else if (!j)
		snprintf(err, sizeof(err), "explain: the request is not JSON");
	else if (!explain_req_parse(j, &rq, err, sizeof(err)))
		e = explain(&ag->cur_plan, &rq, err, sizeof(err));
	out = e ? json_dumps(e, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (!out) {
		ctl_reply(fd, "Error: %s\nERROR\n", e ? "out of memory" : err);
	} else {
		len = strlen(out);
		for (size_t off = 0; off < len;) { /* larger than ctl_reply's buffer */
			ssize_t w = write(fd, out + off, len - off);

			if (w <= 0)
				break;
			off += (size_t)w;
		}
		ctl_reply(fd, "\nOK\n");
	}
	free(out);
	json_decref(e);
	json_decref(j);
}

static void handle_ctl(struct daemon *ag)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	char *buf = NULL, *nl;
	size_t cap = 0, n = 0;
	int fd = accept4(ag->ctlfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) || cred.uid != 0) {
		ctl_reply(fd, "Error: root only\nERROR\n");
		goto out;
	}
	for (;;) { /* the client half-closes after its request */
		ssize_t r;

		if (n + 4096 > cap) {
			if (cap >= POLICY_MAX_FILE_BYTES + 4096) {
				ctl_reply(fd, "Error: request too large\nERROR\n");
				goto out;
			}
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap + 1);
			if (!buf)
				goto out;
		}
		r = read(fd, buf + n, cap - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (!buf)
		goto out;
	buf[n] = 0;
	nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	if (!strcmp(buf, "status")) {
		char *js = NULL;
		size_t jl = 0;
		FILE *m = open_memstream(&js, &jl);

		if (m) {
			if (ag->shim)
				shim_print_json(ag->shim, m);
			else
				fputs("{}", m);
			fclose(m);
		}
		char gl[512] = "off";
		size_t gn = 0;

		for (unsigned i = 0; i < ag->guard.n_devs; i++)
			gn += (size_t)snprintf(gl + gn, sizeof(gl) - gn, "%s%s (%s XDP)",
					       i ? ", " : "", ag->guard.devs[i].name,
					       ag->guard.devs[i].mode);
		if (ag->guard.n_devs)
			snprintf(gl + gn, sizeof(gl) - gn, "; %u allowed networks, %u ports",
				 ag->guard.n_allowed, ag->guard.n_ports);
		ctl_reply(fd,
			  "instance %s\npolicy %s\ngeneration %u\napplied %u\nrejected %u\n"
			  "datapath %s\nlast %s\nguard %s\nsockmap %s\nsplice %s\nshim %s\n",
			  ag->instance, ag->policy_dir ? ag->policy_dir : "-", ag->gen, ag->applied,
			  ag->rejected, ag->dp.adopted ? "adopted" : "attached", ag->last, gl,
			  ag->dp.sockmap ? ag->dp.sockmap : "off",
			  ag->dp.splice ? ag->dp.splice : "off", js ? js : "{}");
		free(js);
		if (ag->kube) {
			FILE *m = fdopen(dup(fd), "w");

			if (m) {
				kube_print_status(ag->kube, m);
				fclose(m);
			}
		}
		ctl_reply(fd, "OK\n");
	} else if (!strcmp(buf, "sockmap on") || !strcmp(buf, "sockmap off")) {
		bool on = !strcmp(buf + 8, "on");
		int err = dp_set_sockmap(&ag->dp, on);

		if (err)
			ctl_reply(fd, "Error: sockmap %s: %s\nERROR\n", buf + 8,
				  err == -EOPNOTSUPP ? ag->dp.sockmap : strerror(-err));
		else
			ctl_reply(fd, "sockmap %s for new connections\nOK\n", buf + 8);
	} else if (!strcmp(buf, "splice on") || !strcmp(buf, "splice off")) {
		if (!ag->shim || shim_set_splice(ag->shim, !strcmp(buf + 7, "on")))
			ctl_reply(fd, "Error: splice: %s\nERROR\n",
				  ag->dp.splice ? ag->dp.splice : "off");
		else
			ctl_reply(fd, "splice %s for new tunnels\nOK\n", buf + 7);
	} else if (!strcmp(buf, "reload")) {
		reload(ag); /* synchronous: the lab waits for the kernel to route by the files */
		ctl_reply(fd, "%s\n%s\n", ag->last,
			  strncmp(ag->last, "policy applied", 14) ? "ERROR" : "OK");
	} else if (!strncmp(buf, "apply ", 6)) {
		handle_apply(ag, fd, buf + 6, nl ? nl + 1 : "");
	} else if (!strcmp(buf, "explain")) {
		handle_explain(ag, fd, nl ? nl + 1 : "");
	} else {
		ctl_reply(fd, "Error: unknown request \"%s\"\nERROR\n", buf);
	}
out:
	free(buf);
	close(fd);
}

static int ctl_listen(struct daemon *ag)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	mkdir("/run/ksteer", 0700);
	snprintf(ag->ctl_path, sizeof(ag->ctl_path), "/run/ksteer/%s.sock", ag->instance);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ag->ctl_path);
	unlink(ag->ctl_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(ag->ctl_path, 0600) ||
	    listen(fd, 16)) {
		int err = -errno;

		pr_warn("Error: control socket %s: %s\n", ag->ctl_path, strerror(errno));
		close(fd);
		return err;
	}
	return fd;
}

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int daemon_open(struct daemon **out, struct daemon_opts *opt)
{
	struct daemon *ag = calloc(1, sizeof(*ag));
	struct dp_opts *o = &opt->dp;
	struct shim_opts so = opt->so;
	const char *netns = opt->netns;
	int err = -1;

	if (!ag)
		return -ENOMEM;
	ag->epfd = ag->inofd = ag->sigfd = ag->ctlfd = ag->timerfd = ag->guard_stats_fd = ag->kubefd = -1;
	ag->ready = opt->ready;
	ag->policy_dir = opt->policy_dir;
	ag->instance = opt->instance;
	ag->ns = opt->ns;
	*out = ag;
	sigemptyset(&ag->mask);
	sigaddset(&ag->mask, SIGTERM);
	sigaddset(&ag->mask, SIGINT);
	sigaddset(&ag->mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &ag->mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (opt->kube) {
		/* its thread stays in our network namespace (setns is per thread): the API's */
		err = kube_start(&ag->kube, opt->kube, opt->node, &ag->kubefd);
		if (err) {
			pr_warn("Error: agent %s: Kubernetes API: %s\n", ag->instance,
				strerror(-err));
			return err;
		}
		err = -1;
	}
	if (netns) {
		/* the node's network namespace, for the listeners; mounts stay the host's */
		char path[PATH_MAX];
		int fd;

		snprintf(path, sizeof(path), "/run/netns/%s", netns);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			fprintf(stderr, "Error: enter netns %s: %s\n", netns, strerror(errno));
			return -errno;
		}
		close(fd);
	}
	if (dp_open(&ag->dp, o))
		return -EIO;
	ag->gcfg.allow = opt->allow;
	ag->gcfg.n_allow = opt->n_allow;
	ag->gcfg.ports = opt->gports;
	ag->gcfg.n_ports = opt->n_gports;
	if (guard_open(&ag->guard, ag->instance, opt->xdp_devs, opt->n_xdp, opt->xdp_mode))
		goto out;
	ag->epfd = epoll_create1(EPOLL_CLOEXEC);
	ag->sigfd = signalfd(-1, &ag->mask, SFD_CLOEXEC);
	ag->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	ag->inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ag->epfd < 0 || ag->sigfd < 0 || ag->timerfd < 0 || ag->inofd < 0)
		goto out;
	if (ag->policy_dir &&
	    inotify_add_watch(ag->inofd, ag->policy_dir,
			      IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE |
				      IN_ATTRIB) < 0) {
		pr_warn("Error: watch %s: %s\n", ag->policy_dir, strerror(errno));
		goto out;
	}
	ag->ctlfd = ctl_listen(ag);
	if (ag->ctlfd < 0)
		goto out;
	{
		/* the shim listens where connect4 sends L7 frontends; not every node has it */
		so.out_addr = o->shim_addr;
		so.out_port = o->shim_port;
		so.mark = o->self_mark;
		so.dns_port = o->dns_port;
		/* the gateway's tunnels are spliced in the kernel when it can */
		so.splice_fd = so.gateway ? ag->dp.splice_fd : -1;
		so.splice_peer_fd = so.gateway ? ag->dp.splice_peer_fd : -1;
		so.origdst_fd = ag->dp.fds[DP_ORIGDST];
		/* the kernel's counters, exported by the shim's /stats/prometheus */
		so.stats_fd = ag->dp.fds[DP_STATS];
		if (ag->guard.n_devs) {
			char gpath[PATH_MAX + 32];

			snprintf(gpath, sizeof(gpath), "%s/ks_guard_stats", ag->guard.pin_dir);
			ag->guard_stats_fd = bpf_obj_get(gpath);
		}
		so.guard_stats_fd = ag->guard_stats_fd;
		err = shim_open(&ag->shim, &so);
		if (err && (so.inbound || so.gateway || so.ca_dir)) {
			pr_warn("Error: agent %s: shim: %s\n", ag->instance, strerror(-err));
			goto out;
		}
		if (err)
			pr_warn("agent %s: no shim on this node (%s)\n", ag->instance, strerror(-err));
		else
			epoll_add(ag->epfd, shim_fd(ag->shim));
	}
	epoll_add(ag->epfd, ag->sigfd);
	epoll_add(ag->epfd, ag->timerfd);
	epoll_add(ag->epfd, ag->inofd);
	epoll_add(ag->epfd, ag->ctlfd);
	if (ag->kube) {
		/* the first load waits for every kind's first list: no half-empty policy */
		epoll_add(ag->epfd, ag->kubefd);
		reload(ag); /* only says what it waits for */
	} else {
		reload(ag);
		write_ready(ag);
	}
	pr_info("agent %s: watching %s%s%s, control %s\n", ag->instance,
		ag->policy_dir ? ag->policy_dir : "", ag->policy_dir && ag->kube ? " and " : "",
		ag->kube ? "the Kubernetes API" : "", ag->ctl_path);
	return 0;
out:
	return err ? err : -1;
}

int daemon_run(struct daemon *ag)
{
	int err = 0;

	for (;;) {
		struct epoll_event ev[8];
		int n = epoll_wait(ag->epfd, ev, 8, -1);

		if (n < 0 && errno == EINTR)
			continue;
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;

			if (fd == ag->sigfd) {
				struct signalfd_siginfo si;

				if (read(fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGHUP) {
					reload(ag);
					continue;
				}
				/* the datapath stays: traffic flows while the agent restarts */
				pr_info("agent %s: exiting on signal %u; datapath left in place\n",
					ag->instance, si.ssi_signo);
				err = 0;
				goto out;
			} else if (fd == ag->inofd) {
				char buf[4096] __attribute__((aligned(8)));

				while (read(fd, buf, sizeof(buf)) > 0)
					;
				arm_reload(ag);
			} else if (fd == ag->timerfd) {
				uint64_t x;

				if (read(fd, &x, sizeof(x)) == sizeof(x))
					reload(ag);
			} else if (fd == ag->kubefd) {
				struct kube_snap *s = kube_take(ag->kube);

				if (s) {
					kube_snap_free(ag->snap);
					ag->snap = s;
					reload(ag);
					write_ready(ag);
				}
			} else if (fd == ag->ctlfd) {
				handle_ctl(ag);
			} else if (ag->shim && fd == shim_fd(ag->shim)) {
				shim_run(ag->shim);
			}
		}
	}
out:
	return err;
}

void daemon_close(struct daemon *ag)
{
	if (!ag)
		return;
	if (ag->ctl_path[0])
		unlink(ag->ctl_path);
	{
		int fds[] = { ag->epfd, ag->inofd, ag->sigfd, ag->ctlfd, ag->timerfd };

		for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	kube_stop(ag->kube);
	kube_snap_free(ag->snap);
	shim_close(ag->shim);
	if (ag->guard_stats_fd >= 0)
		close(ag->guard_stats_fd);
	guard_close(&ag->guard);
	if (ag->have_plan) {
		plan_free(&ag->cur_plan);
		policy_free(&ag->cur_policy);
	}
	dp_close(&ag->dp);
	free(ag);
}
