// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The shim's loop: one epoll set for every listener and connection, one
 * timerfd for the deadline heap, a tick for certificates, paused listeners
 * and tunnels; the limits table; open, plan, run, counters, close. The
 * sides themselves: outbound HTTP (http.c), tunnels and streams (relay.c),
 * mesh DNS (dnsio.c).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../policy/decode.h"
#include "h1.h"
#include "shim_int.h"
#include "upstream.h"

#define SHIM_TICK_MS 200

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t now_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void ep_set(struct shim *s, int fd, uint32_t ev, struct evh *h, bool add)
{
	struct epoll_event e = {.events = ev, .data.ptr = h};

	epoll_ctl(s->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &e);
}

void shim_defer_free(struct shim *s, void *obj, void (*fn)(void *))
{
	if (s->n_dead == s->cap_dead) {
		unsigned cap = s->cap_dead ? s->cap_dead * 2 : 64;
		void *nv = realloc(s->dead, cap * sizeof(*s->dead));

		if (!nv) {
			fn(obj); /* better a rare use-after-close than a leak loop */
			return;
		}
		s->dead = nv;
		s->cap_dead = cap;
	}
	s->dead[s->n_dead].obj = obj;
	s->dead[s->n_dead++].fn = fn;
}

/* ---- limits ---- */

static const struct {
	const char *name;
	size_t off;
	uint32_t def;
	char unit; /* 'n' count, 'b' bytes, 't' milliseconds */
	const char *what;
} limits[] = {
	{"max-conns", offsetof(struct shim_limits, max_conns), 16384, 'n',
	 "HTTP client connections of the agent"},
	{"max-conns-per-pod", offsetof(struct shim_limits, max_conns_per_pod), 1024, 'n',
	 "of them from one source address"},
	{"buffer", offsetof(struct shim_limits, buf_bytes), 256 * 1024, 'b',
	 "bytes queued per direction of a connection before its reader waits"},
	{"header-timeout", offsetof(struct shim_limits, head_ms), 10000, 't',
	 "a request head must arrive within this from its first byte (408)"},
	{"idle-timeout", offsetof(struct shim_limits, idle_ms), 3600000, 't',
	 "an HTTP connection without a request (Istio's idleTimeout default)"},
	{"stream-idle-timeout", offsetof(struct shim_limits, stream_idle_ms), 300000, 't',
	 "a request without a byte either way (Envoy's stream_idle_timeout)"},
	{"pool-idle-timeout", offsetof(struct shim_limits, pool_idle_ms), 3600000, 't',
	 "an unused pooled upstream connection (Istio's connectionPool idleTimeout)"},
	{"metric-series", offsetof(struct shim_limits, metric_series), 512, 'n',
	 "label sets of the istio_* metrics; past it, observations are counted as dropped"},
	{"access-log-buffer", offsetof(struct shim_limits, access_log_bytes), 1048576, 'b',
	 "access log bytes queued for a slow writer; past it, lines are dropped and counted"},
};

int shim_limit_set(struct shim_limits *l, const char *nv)
{
	const char *eq = strchr(nv, '=');

	if (!eq)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		uint32_t *f = (uint32_t *)((char *)l + limits[i].off);
		int64_t ms;
		char *end;
		unsigned long v;

		if (strlen(limits[i].name) != (size_t)(eq - nv) ||
		    strncmp(limits[i].name, nv, (size_t)(eq - nv)))
			continue;
		if (limits[i].unit == 't') {
			if (parse_duration_ms(eq + 1, &ms) || ms <= 0 || ms > UINT32_MAX)
				return -EINVAL;
			*f = (uint32_t)ms;
			return 0;
		}
		errno = 0;
		v = strtoul(eq + 1, &end, 10);
		if (errno || end == eq + 1 || *end || !v || v > UINT32_MAX)
			return -EINVAL;
		*f = (uint32_t)v;
		return 0;
	}
	return -EINVAL;
}

void shim_limits_fill(struct shim_limits *l)
{
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		uint32_t *f = (uint32_t *)((char *)l + limits[i].off);

		if (!*f)
			*f = limits[i].def;
	}
}

void shim_limits_print(const struct shim_limits *l, FILE *f)
{
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		uint32_t v = l ? *(const uint32_t *)((const char *)l + limits[i].off) : limits[i].def;

		if (limits[i].unit == 't')
			fprintf(f, "  %-20s %ums  %s\n", limits[i].name, v, limits[i].what);
		else
			fprintf(f, "  %-20s %u  %s\n", limits[i].name, v, limits[i].what);
	}
}

/* ---- listeners, the timer, the loop ---- */

static void listener_event(struct evh *h, uint32_t events)
{
	struct listener *l = (struct listener *)h;

	(void)events;
	if (l->kind == LST_OUTBOUND)
		http_accept(l->s, l);
	else if (l->kind == LST_DNS)
		dns_query(l->s, l->fd);
	else if (l->kind == LST_DNS_UPSTREAM)
		dns_upstream_reply(l->s, l->fd);
	else if (l->kind == LST_ADMIN)
		admin_accept(l->s, l->fd);
	else
		tun_accept(l->s, l->fd, l->kind);
}

static int listen_on(struct shim *s, int kind, const struct ks_addr *addr, uint16_t port)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	struct listener *l;
	int one = 1, fd;

	if (s->n_lst == SHIM_MAX_LISTENERS)
		return -ENOSPC;
	if (addr)
		memcpy(&sa.sin6_addr, addr, 16);
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1024)) {
		char a[INET6_ADDRSTRLEN];
		int err = -errno;

		pr_warn("Error: shim listen on [%s]:%u: %s\n",
			inet_ntop(AF_INET6, &sa.sin6_addr, a, sizeof(a)), port, strerror(errno));
		close(fd);
		return err;
	}
	l = &s->lst[s->n_lst++];
	l->h.fn = listener_event;
	l->s = s;
	l->fd = fd;
	l->kind = kind;
	l->port = port;
	ep_set(s, fd, EPOLLIN, &l->h, true);
	return 0;
}

void shim_listener_pause(struct shim *s, struct listener *l)
{
	if (l->paused)
		return;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, l->fd, NULL);
	l->paused = true;
}

/* The heap's timerfd: every deadline due runs, then it is set for the next one. */
static void timer_event(struct evh *h, uint32_t events)
{
	struct shim *s = (struct shim *)((char *)h - offsetof(struct shim, timer_h));
	uint64_t x;

	(void)events;
	if (read(s->timer_fd, &x, sizeof(x)) < 0 && errno != EAGAIN)
		return;
	s->timer_armed = 0;
	timers_run(&s->timers, now_ms());
}

static void timers_arm(struct shim *s)
{
	uint64_t next = timers_next(&s->timers);
	struct itimerspec its = {0};

	/* deadlines mostly move later (an idle one each time a byte moves): the timer is set
	 * again only for an earlier one; set too early, it finds nothing due and is set again */
	if (next == s->timer_armed || (next && s->timer_armed && next > s->timer_armed))
		return;
	s->timer_armed = next;
	if (next) { /* absolute: a ms past the deadline, so that it is due when read */
		its.it_value.tv_sec = (time_t)((next + 1) / 1000);
		its.it_value.tv_nsec = (long)((next + 1) % 1000) * 1000000L;
	}
	timerfd_settime(s->timer_fd, next ? TFD_TIMER_ABSTIME : 0, &its, NULL);
}

static void tick_event(struct evh *h, uint32_t events)
{
	struct shim *s = (struct shim *)h;
	uint64_t x, now = now_ms();

	(void)events;
	if (read(s->timerfd, &x, sizeof(x)) < 0)
		return;
	ids_tick(&s->ids, time(NULL));
	for (unsigned i = 0; i < s->n_lst; i++)
		if (s->lst[i].paused) {
			s->lst[i].paused = false;
			ep_set(s, s->lst[i].fd, EPOLLIN, &s->lst[i].h, true);
		}
	tun_tick(s, now);
	alog_flush(&s->alog);
}

/* Every client connection holds up to two descriptors: take what the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		pr_warn("shim: raise RLIMIT_NOFILE: %s\n", strerror(errno));
}

int shim_open(struct shim **out, const struct shim_opts *o)
{
	struct shim *s = calloc(1, sizeof(*s));
	struct itimerspec its = {.it_interval = {0, SHIM_TICK_MS * 1000000L},
				 .it_value = {0, SHIM_TICK_MS * 1000000L}};
	int err = -ENOMEM;

	if (!s)
		return -ENOMEM;
	s->o = *o;
	s->alog.fd = -1;
	s->lim = o->lim;
	shim_limits_fill(&s->lim);
	raise_nofile();
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	s->origdst_fd = o->origdst_fd;
	s->peek_ctx = sni_peek_ctx();
	if (s->epfd < 0 || s->timerfd < 0 || !s->peek_ctx)
		goto fail;
	if (!s->o.cluster)
		s->o.cluster = "Kubernetes"; /* Istio's default cluster name */
	err = metrics_init(&s->mt, s->lim.metric_series);
	if (err)
		goto fail;
	err = alog_open(&s->alog, o->access_log, s->lim.access_log_bytes);
	if (err) {
		pr_warn("Error: access log %s: %s\n", o->access_log, strerror(-err));
		goto fail;
	}
	err = ids_open(&s->ids, o->ca_dir, o->trust_domain, o->cert_ttl);
	if (err) {
		pr_warn("Error: CA %s: cannot read ca-cert.pem, ca-key.pem, root-cert.pem\n",
			o->ca_dir);
		goto fail;
	}
	if (o->gateway_labels) {
		char *save = NULL, *t;

		snprintf(s->gw_label_buf, sizeof(s->gw_label_buf), "%s", o->gateway_labels);
		for (t = strtok_r(s->gw_label_buf, ",", &save); t && s->n_gw_labels < 16;
		     t = strtok_r(NULL, ",", &save))
			s->gw_labels[s->n_gw_labels++] = t;
	}
	s->tick.fn = tick_event;
	timerfd_settime(s->timerfd, 0, &its, NULL);
	ep_set(s, s->timerfd, EPOLLIN, &s->tick, true);
	s->pend.fn = splice_pending_event;
	s->pend_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->pend_fd < 0)
		goto fail;
	ep_set(s, s->pend_fd, EPOLLIN, &s->pend, true);
	s->timer_h.fn = timer_event;
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->timer_fd < 0)
		goto fail;
	ep_set(s, s->timer_fd, EPOLLIN, &s->timer_h, true);
	/* not every node carries the outbound address (a gateway does not): say so, go on */
	if (o->outbound && listen_on(s, LST_OUTBOUND, &o->out_addr, o->out_port))
		pr_warn("shim: no outbound listener here\n");
	if (o->inbound && (err = listen_on(s, LST_INBOUND, NULL, o->in_port)))
		goto fail;
	/* another agent in this network namespace may have them: it answers, this one goes on */
	if (o->admin && (listen_on(s, LST_ADMIN, &o->admin_addr, SHIM_READY_PORT) ||
			 listen_on(s, LST_ADMIN, &o->admin_addr, SHIM_STATS_PORT)))
		pr_warn("shim: no readiness or stats port here\n");
	s->dns_fd = s->dns_up_fd = -1;
	if (o->dns_port) {
		if (dns_sockets(s, &s->dns_fd, &s->dns_up_fd)) {
			pr_warn("shim: no mesh DNS here (%s)\n", strerror(errno));
		} else {
			int fds[2] = {s->dns_fd, s->dns_up_fd};

			for (int i = 0; i < 2; i++) {
				struct listener *l = &s->lst[s->n_lst];

				if (fds[i] < 0 || s->n_lst == SHIM_MAX_LISTENERS)
					continue;
				s->n_lst++;
				l->h.fn = listener_event;
				l->s = s;
				l->fd = fds[i];
				l->kind = i ? LST_DNS_UPSTREAM : LST_DNS;
				l->port = o->dns_port;
				ep_set(s, fds[i], EPOLLIN, &l->h, true);
			}
		}
	}
	*out = s;
	return 0;
fail:
	shim_close(s);
	return err ? err : -EINVAL;
}

int shim_fd(const struct shim *s)
{
	return s->epfd;
}

/* Whether this gateway's labels satisfy the Gateway's selector. */
bool shim_gateway_selects(const struct shim *s, const struct gateway *g)
{
	for (uint32_t k = 0; k < g->selector.n; k++) {
		bool found = false;

		for (unsigned j = 0; j < s->n_gw_labels; j++) {
			const char *l = s->gw_labels[j], *eq = strchr(l, '=');

			found |= eq && strlen(g->selector.v[k].k) == (size_t)(eq - l) &&
				 !strncmp(l, g->selector.v[k].k, (size_t)(eq - l)) &&
				 !strcmp(eq + 1, g->selector.v[k].v ? g->selector.v[k].v : "");
		}
		if (!found)
			return false;
	}
	return true;
}

/* Gateway listeners: one per AUTO_PASSTHROUGH port of the Gateways that select us. */
static void gateway_listeners(struct shim *s)
{
	uint16_t want[SHIM_MAX_LISTENERS];
	unsigned n_want = 0;
	const struct policy *p = s->plan ? s->plan->policy : NULL;

	for (uint32_t i = 0; p && i < p->n; i++) {
		const struct resource *r = p->res[i];
		const struct gateway *g = r->spec;
		bool sel = r->kind == K_GATEWAY && g && shim_gateway_selects(s, g);

		for (uint32_t k = 0; sel && k < g->servers.n; k++) {
			const struct server *sv = &g->servers.v[k];
			bool dup = false;

			if (!server_auto_passthrough(sv))
				continue;
			for (unsigned j = 0; j < n_want; j++)
				dup |= want[j] == sv->port->number;
			if (!dup && n_want < SHIM_MAX_LISTENERS - 2)
				want[n_want++] = (uint16_t)sv->port->number;
		}
	}
	/* close the ports no Gateway wants any more; open the new ones */
	for (unsigned i = 0; i < s->n_lst;) {
		bool keep = s->lst[i].kind != LST_GATEWAY;

		for (unsigned j = 0; !keep && j < n_want; j++)
			keep = want[j] == s->lst[i].port;
		if (keep) {
			i++;
			continue;
		}
		pr_info("gateway: no longer listening on %u\n", s->lst[i].port);
		close(s->lst[i].fd);
		s->lst[i] = s->lst[--s->n_lst];
		for (unsigned j = 0; j < s->n_lst; j++) /* moved: its epoll pointer too */
			ep_set(s, s->lst[j].fd, EPOLLIN, &s->lst[j].h, false);
	}
	for (unsigned j = 0; j < n_want; j++) {
		bool have = false;

		for (unsigned i = 0; i < s->n_lst; i++)
			have |= s->lst[i].kind == LST_GATEWAY && s->lst[i].port == want[j];
		if (!have && !listen_on(s, LST_GATEWAY, NULL, want[j]))
			pr_info("gateway: listening on %u (TLS AUTO_PASSTHROUGH)\n", want[j]);
	}
}

void shim_set_plan(struct shim *s, const struct plan *plan)
{
	s->plan = plan;
	regex_cache_free(&s->rc); /* its keys point into the old plan */
	if (s->o.gateway)
		gateway_listeners(s);
}

void shim_run(struct shim *s)
{
	struct epoll_event ev[64];
	int n = epoll_wait(s->epfd, ev, 64, 0);

	for (int i = 0; i < n; i++) {
		struct evh *h = ev[i].data.ptr;

		h->fn(h, ev[i].events);
	}
	for (unsigned i = 0; i < s->n_dead; i++)
		s->dead[i].fn(s->dead[i].obj);
	s->n_dead = 0;
	timers_arm(s);
}

int shim_set_splice(struct shim *s, bool on)
{
	if (on && s->o.splice_fd < 0)
		return -EOPNOTSUPP;
	s->splice_off = !on;
	return 0;
}

void shim_print_json(const struct shim *s, FILE *f)
{
	const struct shim_stats *t = &s->st;

	/* tunnel limits hit (relay.c) */
	fprintf(f,
		"{\"tunnels\":{\"helloTooLong\":%lu,\"setupTimeouts\":%lu,\"idleTimeouts\":%lu,"
		"\"paused\":%lu,\"refusedPort\":%lu,\"idleMs\":%lu},",
		t->tun_hello_cap, t->tun_setup_timeout, t->tun_idle_timeout, t->tun_paused,
		t->in_refused_port, tun_idle_ms());
	fprintf(f,
		"\"requests\":%lu,\"localResponses\":%lu,\"upstreamTlsOk\":%lu,"
		"\"upstreamTlsFailed\":%lu,\"sameNode\":%lu,\"poolReused\":%lu,\"pooledIdle\":%u,"
		"\"faults\":{\"delayed\":%lu,\"aborted\":%lu},\"outlierEjections\":%lu,"
		"\"retriedAnswers\":%lu,\"mirrored\":%lu,\"mirrorFailed\":%lu,"
		"\"gateway\":{\"accepted\":%lu,\"routed\":%lu,\"spliced\":%lu,\"copied\":%lu,"
		"\"refusedHello\":%lu,"
		"\"refusedSni\":%lu,\"refusedExposure\":%lu,\"refusedTarget\":%lu},"
		"\"inbound\":{\"accepted\":%lu,\"ok\":%lu,\"refusedProxy\":%lu,\"refusedPod\":%lu,"
		"\"refusedTls\":%lu},"
		"\"streams\":{\"accepted\":%lu,\"routed\":%lu,\"refused\":%lu},"
		"\"certificates\":{\"identities\":%u,\"minted\":%lu,\"rotated\":%lu,\"ttl\":%ld},"
		"\"dns\":{\"queries\":%lu,\"answered\":%lu,\"forwarded\":%lu,\"bad\":%lu,"
		"\"relayed\":%lu,\"overRate\":%lu,\"refused\":%lu,\"timeouts\":%lu,"
		"\"upstreamFailed\":%lu,\"mismatched\":%lu,\"pending\":%u},"
		"\"http\":{\"connections\":%u,\"badRequests\":%lu,\"badResponses\":%lu,"
		"\"cutResponses\":%lu,\"upgraded\":%lu,\"backpressured\":%lu,\"headTimeouts\":%lu,"
		"\"idleClosed\":%lu,\"streamTimeouts\":%lu,\"refusedPodLimit\":%lu,"
		"\"refusedAgentLimit\":%lu,\"acceptNoFd\":%lu,"
		"\"mirrorsDropped\":%lu}}",
		t->requests, t->responses_local, t->upstream_tls_ok, t->upstream_tls_failed,
		t->same_node, t->pool_reused, s->n_pool, t->faults_delayed, t->faults_aborted, t->ejections,
		t->retried_answers, t->mirrored, t->mirror_failed, t->gw_accepted, t->gw_routed, t->gw_spliced, t->gw_copied,
		t->gw_refused_hello,
		t->gw_refused_sni, t->gw_refused_exposure, t->gw_refused_target, t->in_accepted,
		t->in_ok, t->in_refused_proxy, t->in_refused_pod, t->in_refused_tls, t->out_accepted,
		t->out_routed, t->out_refused, s->ids.n,
		s->ids.minted, s->ids.rotated, s->ids.ttl, t->dns_queries, t->dns_answered,
		t->dns_forwarded, t->dns_bad, t->dns_relayed, t->dns_over_rate, t->dns_refused,
		t->dns_timeouts, t->dns_upstream_failed, t->dns_mismatched, s->dns.n_fwd,
		s->n_conns, t->bad_requests, t->bad_responses,
		t->cut_responses, t->upgraded, t->backpressured, t->head_timeouts, t->idle_closed,
		t->stream_timeouts, t->refused_pod_limit, t->refused_agent_limit, t->accept_no_fd,
		t->mirrors_dropped);
}

void shim_close(struct shim *s)
{
	if (!s)
		return;
	http_close_all(s);
	tun_close_all(s);
	dns_close(s);
	for (unsigned i = 0; i < s->n_dead; i++)
		s->dead[i].fn(s->dead[i].obj);
	free(s->dead);
	up_health_free(s);
	for (unsigned i = 0; i < s->n_lst; i++)
		close(s->lst[i].fd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->timerfd >= 0)
		close(s->timerfd);
	if (s->pend_fd > 0)
		close(s->pend_fd);
	if (s->timer_fd > 0)
		close(s->timer_fd);
	timers_free(&s->timers);
	SSL_CTX_free(s->peek_ctx);
	ids_close(&s->ids);
	regex_cache_free(&s->rc);
	metrics_free(&s->mt);
	alog_close(&s->alog);
	free(s);
}
