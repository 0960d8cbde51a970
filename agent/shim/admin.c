// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's own HTTP answers, as Istio's agents give them: readiness on
 * :15021/healthz/ready (503 until a policy is active, then 200: what a
 * DaemonSet's readinessProbe asks) and the shim's counters as Prometheus
 * text on :15020/stats/prometheus. One request per connection, read with
 * the same strict codec, bounded: 4 KiB, 2 s, 64 connections at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../datapath/counters.h"
#include "h1.h"
#include "shim_int.h"

#define ADMIN_MAX_CONNS 64
#define ADMIN_MAX_BYTES 4096
#define ADMIN_MS 2000

struct admin {
	struct evh h;
	struct shim *s;
	int fd;
	struct h1 rq;
	struct buf out;
	struct timer tm;
	bool answered;
};

static void admin_free(void *p)
{
	struct admin *a = p;

	h1_free(&a->rq);
	buf_free(&a->out);
	free(a);
}

static void admin_close(struct admin *a)
{
	if (a->fd < 0)
		return;
	timer_del(&a->s->timers, &a->tm);
	close(a->fd);
	a->fd = -1;
	a->s->n_admin--;
	shim_defer_free(a->s, a, admin_free);
}

static void admin_expire(struct timer *t, uint64_t now)
{
	(void)now;
	admin_close((struct admin *)((char *)t - offsetof(struct admin, tm)));
}

static void answer(struct admin *a, int status, const char *reason, const char *type,
		   const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
			 "connection: close\r\n\r\n",
			 status, reason, type, len);

	buf_put(&a->out, head, (size_t)n);
	if (a->rq.p.method != HTTP_HEAD)
		buf_put(&a->out, body, len);
	a->answered = true;
}

/* Prometheus text exposition of the shim's counters (as ksteer_shim_*). */
static void metrics(const struct shim *s, FILE *f)
{
	const struct shim_stats *t = &s->st;
	static const struct {
		const char *name, *help;
		size_t off;
	} c[] = {
#define C(n, field, h) {n, h, offsetof(struct shim_stats, field)}
		C("requests", requests, "HTTP requests routed"),
		C("local_responses", responses_local, "answers the shim gave itself"),
		C("upstream_tls_ok", upstream_tls_ok, "upstream TLS handshakes completed"),
		C("upstream_tls_failed", upstream_tls_failed, "upstream TLS handshakes failed"),
		C("pool_reused", pool_reused, "requests on a pooled upstream connection"),
		C("same_node", same_node, "ISTIO_MUTUAL upstreams handed over in process"),
		C("retried_answers", retried_answers, "answers retried as retryOn says"),
		C("outlier_ejections", ejections, "endpoints ejected by outlier detection"),
		C("bad_requests", bad_requests, "requests refused as malformed"),
		C("bad_responses", bad_responses, "upstream answers refused as malformed"),
		C("head_timeouts", head_timeouts, "request heads not complete in time"),
		C("refused_pod_limit", refused_pod_limit, "connections over a pod's cap"),
		C("refused_agent_limit", refused_agent_limit, "connections over the agent's cap"),
		C("gateway_routed", gw_routed, "gateway tunnels routed"),
		C("inbound_ok", in_ok, "inbound mutual TLS connections accepted"),
		C("dns_queries", dns_queries, "mesh DNS queries"),
#undef C
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		fprintf(f, "# HELP ksteer_shim_%s_total %s\n# TYPE ksteer_shim_%s_total counter\n"
			   "ksteer_shim_%s_total %lu\n",
			c[i].name, c[i].help, c[i].name, c[i].name,
			(unsigned long)*(const uint64_t *)((const char *)t + c[i].off));
	fprintf(f, "# HELP ksteer_shim_connections HTTP client connections open\n"
		   "# TYPE ksteer_shim_connections gauge\nksteer_shim_connections %u\n",
		s->n_conns);
	fprintf(f, "# HELP ksteer_access_log_lines_total access log lines, by outcome\n"
		   "# TYPE ksteer_access_log_lines_total counter\n"
		   "ksteer_access_log_lines_total{outcome=\"queued\"} %llu\n"
		   "ksteer_access_log_lines_total{outcome=\"dropped\"} %llu\n",
		(unsigned long long)s->alog.lines, (unsigned long long)s->alog.dropped);
	/* the kernel's counters (fd 0 is an unset option: no map is ever there) */
	if (s->o.stats_fd > 0)
		dp_counters_print(s->o.stats_fd, 0, f);
	if (s->o.guard_stats_fd > 0)
		dp_counters_print(s->o.guard_stats_fd, 1, f);
	metrics_print(&s->mt, f);
}

static void route(struct admin *a, uint16_t port)
{
	const char *path = h1_target(&a->rq);
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (port == SHIM_READY_PORT && !strcmp(path, "/healthz/ready")) {
		if (a->s->plan)
			answer(a, 200, "OK", "text/plain", "ready\n", 6);
		else
			answer(a, 503, "Service Unavailable", "text/plain", "no policy yet\n", 14);
	} else if (port == SHIM_STATS_PORT && !strcmp(path, "/stats/prometheus") &&
		   (f = open_memstream(&text, &len))) {
		metrics(a->s, f);
		fclose(f);
		answer(a, 200, "OK", "text/plain; version=0.0.4", text, len);
		free(text);
	} else {
		answer(a, 404, "Not Found", "text/plain", "not found\n", 10);
	}
}

static void admin_event(struct evh *h, uint32_t events)
{
	struct admin *a = (struct admin *)h;
	struct sockaddr_in6 me;
	socklen_t ml = sizeof(me);
	char buf[ADMIN_MAX_BYTES];
	ssize_t n;

	(void)events;
	if (a->fd < 0)
		return;
	if (!a->answered) {
		size_t used;
		enum h1_event ev;

		n = recv(a->fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				admin_close(a);
			return;
		}
		ev = h1_feed(&a->rq, buf, (size_t)n, &used);
		if (ev == H1_ERROR || a->rq.head_wire > ADMIN_MAX_BYTES)
			answer(a, 400, "Bad Request", "text/plain", "bad request\n", 12);
		else if (ev == H1_HEAD && !getsockname(a->fd, (struct sockaddr *)&me, &ml))
			route(a, ntohs(me.sin6_port));
		if (!a->answered)
			return;
	}
	while (a->out.len) {
		n = send(a->fd, a->out.p, a->out.len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				admin_close(a);
			else
				ep_set(a->s, a->fd, EPOLLOUT, &a->h, false);
			return;
		}
		buf_drop(&a->out, (size_t)n);
	}
	admin_close(a);
}

void admin_accept(struct shim *s, int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct admin *a;

	if (fd < 0)
		return;
	if (s->n_admin >= ADMIN_MAX_CONNS || !(a = calloc(1, sizeof(*a)))) {
		close(fd); /* probes come one at a time; more is not a prober */
		return;
	}
	a->h.fn = admin_event;
	a->s = s;
	a->fd = fd;
	h1_init(&a->rq, false);
	a->tm.fn = admin_expire;
	timer_set(&s->timers, &a->tm, now_ms() + ADMIN_MS);
	s->n_admin++;
	ep_set(s, fd, EPOLLIN | EPOLLRDHUP, &a->h, true);
}
