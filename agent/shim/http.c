// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Outbound HTTP (15001): one request at a time per client connection. The
 * head is read (h1.c), routed through the filters (CORS, fault, local
 * answers, router), sent upstream (upstream.c: a pooled connection or a new
 * one, plain or ISTIO_MUTUAL), the body passed on as it came; the answer's
 * head is held until complete, then passed on with its body; then the next
 * request, which may go elsewhere. Bounds, timeouts and connection caps as
 * the README's "Limits of the HTTP proxy" says.
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

#define SHIM_MAX_HEADERS H1_MAX_FIELDS
#define SHIM_BUF (64 * 1024)
#define SHIM_DEFAULT_RETRIES 2 /* Istio's default: 2 retries, connect-failure among them */
#define SHIM_CONNECT_MS 10000  /* Istio's default connectTimeout */
#define SHIM_POOL_MAX 512
#define SHIM_MAX_MIRRORS 256 /* mirrored requests in flight; more are not sent */
#define SHIM_LINGER_MS 2000  /* after a last answer, the client's unread bytes are drained this long */

/* An upstream connection: in use by one conn (owner), or idle in the pool. */
struct up {
	struct evh h;
	struct shim *s;
	struct conn *owner;
	struct side sd;
	char key[512]; /* endpoint, SNI and client identity: who may reuse it */
	uint64_t id_gen; /* the client certificate's generation */
	bool tls, tls_done, reused, pooled;
	uint32_t armed; /* the events epoll watches for, 0: not in the set */
	uint64_t idle_since, deadline;
	struct timer tm; /* idle in the pool: when it is closed */
	struct up *next;
};


/*
 * A client connection carries one request at a time: its head is read
 * (REQ_HEAD), routed, its body passed on as it came (REQ_BODY) until it ends
 * (REQ_DONE); the answer's head is read, held until complete and passed on
 * (RESP_HEAD, 1xx answers passed on as they come), then its body (RESP_BODY)
 * until it ends (RESP_DONE). Then the next request, pipelined or not. A 101
 * turns both into a tunnel; a close after the last answer lingers.
 */
enum req_state { REQ_HEAD, REQ_BODY, REQ_DONE, REQ_TUNNEL };

/*
 * A request's telemetry, from its head to its answer's last byte: Istio's
 * labels (copied, as a reload may free the plan meanwhile), sizes as they
 * crossed the client's socket, and the access log's fields.
 */
struct req_tel {
	bool on; /* a request is being counted: reported once, by tel_end */
	int status; /* the answer's, as the client got it; 0: none */
	const char *flags; /* Envoy's response flags, "-" when none */
	uint64_t start_us, start_wall_us;
	uint64_t rx, rx_head; /* request bytes from the client; of them the head */
	uint64_t tx, tx_head; /* answer bytes to the client; of them the final head */
	struct mt_pack pk;
	char method[24], path[512], authority[256], ua[256], xff[256], reqid[128];
	char upstream[64], cluster[320], route[128];
};
enum resp_state { RESP_NONE, RESP_HEAD, RESP_BODY, RESP_DONE, RESP_TUNNEL };

struct conn {
	struct evh h;
	struct shim *s;
	struct conn *prev, *next;
	int cfd;
	uint32_t armed; /* the client socket's events in epoll, 0: not in the set */
	struct timer tm; /* the earliest of this connection's deadlines */
	struct up *up;
	struct ks_addr peer;
	uint16_t peer_port;
	struct ks_addr orig;
	uint16_t orig_port;
	enum req_state req;
	enum resp_state resp;
	struct h1 rq, rs;
	bool client_keep;  /* the client keeps the connection after this answer */
	bool upstream_keep; /* the upstream does */
	bool discard_body; /* the request body has nowhere to go (a local answer): read, dropped */
	bool is_head;      /* this request's method is HEAD */
	bool lingering;    /* answered, closing: the write side is shut, input drained */
	bool resp_sent;    /* bytes of this request's answer went to the client */
	bool up_eof, up_shut, client_shut; /* a tunnel's ends: EOF read, EOF passed on */
	bool up_full; /* the upstream was not read for want of room in to_client */
	int resp_status;   /* the status of the answer being read */
	uint64_t linger_until;
	struct buf in; /* client bytes not yet taken by the request parser */
	struct buf to_up, to_client;
	struct buf replay; /* a complete request without body: resent if a reused upstream died */
	bool close_after, client_eof, dead;
	size_t resp_bytes;
	uint64_t head_start; /* when this request's head began to arrive; 0: not yet */
	uint64_t last_io;    /* the last byte read or written, either side */
	uint64_t deadline; /* the route's timeout; 0: none */
	uint64_t try_deadline; /* this try's end (retries.perTryTimeout, in hp) */
	uint64_t hold_until; /* an injected delay: the upstream starts then */
	int abort_status;    /* an injected abort: answered with this status instead */
	struct buf local;    /* a redirect or direct response, ready to send instead of upstream */
	struct c_http hp;    /* the route's retries, timeouts and faults, copied */

	/* the route's response header operations: names dropped (NUL-separated), lines added;
	 * the response head is held until complete, then passed on with them */
	struct buf resp_drop, resp_add, resp_head;
	/* where this request may go: copied, as a reload may free the plan meanwhile */
	struct up_target t; /* endpoints, TLS and identity, outlier detection */
	unsigned next_ep, tries_left;
	struct req_tel tel; /* this request's metrics and access log entry */
};

/*
 * What epoll watches on fd, as *armed remembers: EPOLLHUP and EPOLLERR are
 * reported whatever the mask, so a socket nobody wants to hear from leaves
 * the set, or a closed peer would wake the loop for ever.
 */
static void arm(struct shim *s, int fd, uint32_t *armed, uint32_t want, struct evh *h)
{
	struct epoll_event e = {.events = want, .data.ptr = h};

	if (fd < 0 || want == *armed)
		return; /* as it is: no system call */
	if (!want) {
		if (*armed)
			epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
	} else {
		epoll_ctl(s->epfd, *armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e);
	}
	*armed = want;
}

/* ---- upstream connections and their pool ---- */

static void conn_step(struct conn *c);

static void up_free(void *p)
{
	struct up *u = p;

	side_close(&u->sd);
	free(u);
}

static void up_drop(struct up *u)
{
	timer_del(&u->s->timers, &u->tm);
	if (u->sd.fd >= 0) {
		close(u->sd.fd); /* out of the epoll set now; the memory after this batch */
		u->sd.fd = -1;
	}
	u->owner = NULL;
	shim_defer_free(u->s, u, up_free);
}

static void pool_unlink(struct shim *s, struct up *u)
{
	for (struct up **pp = &s->pool; *pp; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			s->n_pool--;
			break;
		}
	u->pooled = false;
	u->next = NULL;
	timer_del(&s->timers, &u->tm);
}

/* A pooled connection unused for pool-idle-timeout is closed. */
static void pool_expire(struct timer *t, uint64_t now)
{
	struct up *u = (struct up *)((char *)t - offsetof(struct up, tm));

	(void)now;
	pool_unlink(u->s, u);
	up_drop(u);
}

/* An upstream spoke: to the request using it, or, idle in the pool, a close, a reset or
 * bytes nobody asked for. */
static void up_event(struct evh *h, uint32_t events)
{
	struct up *u = (struct up *)h;
	char tmp[512];
	ssize_t n;

	(void)events;
	if (u->owner) {
		if (!u->owner->dead)
			conn_step(u->owner);
		return;
	}
	if (!u->pooled)
		return;
	n = side_read(&u->sd, tmp, sizeof(tmp));
	if (n == -EAGAIN)
		return; /* TLS housekeeping (a ticket, a key update) */
	pool_unlink(u->s, u);
	up_drop(u);
}

static void pool_put(struct shim *s, struct up *u)
{
	if (s->n_pool >= SHIM_POOL_MAX) {
		struct up **pp = &s->pool, *old;

		while ((*pp)->next)
			pp = &(*pp)->next;
		old = *pp; /* the oldest is last */
		pool_unlink(s, old);
		up_drop(old);
	}
	u->owner = NULL;
	u->pooled = true;
	u->idle_since = now_ms();
	u->tm.fn = pool_expire;
	timer_set(&s->timers, &u->tm, u->idle_since + s->lim.pool_idle_ms);
	u->next = s->pool;
	s->pool = u;
	s->n_pool++;
	arm(s, u->sd.fd, &u->armed, EPOLLIN | EPOLLRDHUP, &u->h);
}

static struct up *pool_take(struct shim *s, const char *key, uint64_t id_gen)
{
	for (struct up *u = s->pool; u; u = u->next)
		if (!strcmp(u->key, key) && u->id_gen == id_gen) {
			pool_unlink(s, u);
			u->reused = true;
			return u;
		}
	return NULL;
}

/* ---- client connections ---- */

static void conn_free(void *p)
{
	struct conn *c = p;

	h1_free(&c->rq);
	h1_free(&c->rs);
	buf_free(&c->in);
	buf_free(&c->to_up);
	buf_free(&c->to_client);
	buf_free(&c->replay);
	buf_free(&c->local);
	buf_free(&c->resp_drop);
	buf_free(&c->resp_add);
	buf_free(&c->resp_head);
	free(c);
}

static void src_release(struct shim *s, const struct ks_addr *a);

/* ---- telemetry: Istio's metrics and the access log, per request ---- */

static void copy_str(char *dst, size_t n, const char *v)
{
	snprintf(dst, n, "%s", v ? v : "");
}

static const char *or_null(const char *v)
{
	return v && *v ? v : NULL;
}

/* A request begins to count: its head is read (or refused: no head at all). */
static void tel_begin(struct conn *c)
{
	struct req_tel *t = &c->tel;
	bool head = c->req != REQ_HEAD;
	const char *host = head ? h1_get(&c->rq, "host") : NULL;
	char h[256];

	t->on = true;
	t->status = 0;
	t->flags = NULL;
	t->start_us = now_us();
	t->start_wall_us = now_wall_us();
	t->tx = t->tx_head = 0;
	t->rx_head = head ? t->rx : 0; /* every byte fed so far was the head's */
	t->upstream[0] = t->cluster[0] = t->route[0] = 0;
	mt_pack_reset(&t->pk);
	mt_pack_set(&t->pk, MT_REPORTER, "source");
	tel_source(c->s, &c->peer, &t->pk);
	mt_pack_set(&t->pk, MT_SRC_CLUSTER, c->s->o.cluster);
	mt_pack_set(&t->pk, MT_REQ_PROTOCOL, "http");
	mt_pack_set(&t->pk, MT_GRPC_STATUS, "");
	/* the client's proxy does not know what the server required: Istio says unknown */
	mt_pack_set(&t->pk, MT_CONN_SECURITY, "unknown");
	copy_str(t->method, sizeof(t->method),
		 head ? llhttp_method_name((llhttp_method_t)c->rq.p.method) : NULL);
	copy_str(t->path, sizeof(t->path), head ? h1_target(&c->rq) : NULL);
	copy_str(t->authority, sizeof(t->authority), host);
	copy_str(t->ua, sizeof(t->ua), head ? h1_get(&c->rq, "user-agent") : NULL);
	copy_str(t->xff, sizeof(t->xff), head ? h1_get(&c->rq, "x-forwarded-for") : NULL);
	copy_str(t->reqid, sizeof(t->reqid), head ? h1_get(&c->rq, "x-request-id") : NULL);
	/* not routed (yet): Istio names the destination service by the request's host */
	if (host) {
		copy_str(h, sizeof(h), host);
		if (h[0] != '[' && strchr(h, ':'))
			*strchr(h, ':') = 0;
		mt_pack_set(&t->pk, MT_DST_SERVICE, h);
	}
}

/* The local answer in p: its status, and where its head ends. */
static void tel_local(struct conn *c, const char *p, size_t n)
{
	const char *sp = memchr(p, ' ', n < 16 ? n : 16);
	const char *end = memmem(p, n, "\r\n\r\n", 4);

	if (!c->tel.on)
		tel_begin(c);
	if (sp)
		c->tel.status = atoi(sp + 1);
	if (end)
		c->tel.tx_head = (uint64_t)(end + 4 - p);
}

/* The request is over, answered or not: one observation, one access log line. */
static void tel_end(struct conn *c, const char *flags)
{
	struct req_tel *t = &c->tel;
	struct shim *s = c->s;
	struct mt_labels l;
	uint64_t us = now_us() - t->start_us;
	char proto[16], down[INET6_ADDRSTRLEN + 8], local[INET6_ADDRSTRLEN + 8],
		a[INET6_ADDRSTRLEN];

	if (!t->on)
		return;
	t->on = false;
	if (!t->flags)
		t->flags = flags ? flags : "-";
	tel_status(&t->pk, t->status);
	mt_pack_set(&t->pk, MT_RESP_FLAGS, t->flags);
	mt_pack_labels(&t->pk, &l);
	metrics_request(&s->mt, &l, (double)us / 1000.0, t->rx, t->tx);
	if (s->alog.fd >= 0) {
		struct alog_rec r = {
			.start_us = t->start_wall_us,
			.method = or_null(t->method),
			.path = or_null(t->path),
			.protocol = proto,
			.response_flags = t->flags,
			.response_code = t->status,
			.bytes_received = t->rx - t->rx_head,
			.bytes_sent = t->tx - t->tx_head,
			.duration_ms = us / 1000,
			.upstream_host = or_null(t->upstream),
			.upstream_cluster = or_null(t->cluster),
			.x_forwarded_for = or_null(t->xff),
			.user_agent = or_null(t->ua),
			.request_id = or_null(t->reqid),
			.authority = or_null(t->authority),
			.downstream_remote_address = down,
			.downstream_local_address = local,
			.route_name = or_null(t->route),
			.reporter = "source",
		};

		snprintf(proto, sizeof(proto), "HTTP/%u.%u", c->rq.p.http_major, c->rq.p.http_minor);
		snprintf(down, sizeof(down), "%s:%u", addr_str(&c->peer, a, sizeof(a)), c->peer_port);
		snprintf(local, sizeof(local), "%s:%u", addr_str(&c->orig, a, sizeof(a)),
			 c->orig_port);
		alog_write(&s->alog, &r);
	}
	t->rx = 0;
}

static void conn_kill(struct conn *c)
{
	if (c->dead)
		return;
	tel_end(c, c->client_eof ? "DC" : "UC");
	if (c->cfd >= 0)
		close(c->cfd);
	c->cfd = -1;
	if (c->up)
		up_drop(c->up);
	c->up = NULL;
	c->dead = true;
	timer_del(&c->s->timers, &c->tm);
	c->s->n_conns--;
	src_release(c->s, &c->peer);
	LIST_UNLINK(c->s->conns, c);
	shim_defer_free(c->s, c, conn_free);
}

/* An error response of the shim's own; the connection closes after it. */
/* The answer of the endpoint this request last went to, for outlier detection. */
static void health_result(struct conn *c, int status)
{
	unsigned n = c->t.n_eps;

	if (n)
		up_health_result(c->s, &c->t.od, &c->t.eps[(c->next_ep + n - 1) % n], status);
}

/*
 * The shim's own answer to this request, the connection closing after it: a
 * body still on its way is read and dropped meanwhile (a close with unread
 * bytes would reset the connection and could destroy the answer).
 */
static void reply_error(struct conn *c, int status, const char *reason, const char *detail)
{
	char msg[768];
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\nx-ksteer-reason: %.300s\r\n"
			 "content-length: %zu\r\nconnection: close\r\n\r\n%.300s\n",
			 status, reason, detail, strlen(detail) > 300 ? 301 : strlen(detail) + 1,
			 detail);

	c->to_up.len = 0;
	tel_local(c, msg, (size_t)n);
	buf_put(&c->to_client, msg, (size_t)n);
	c->s->st.responses_local++;
	c->close_after = true;
	c->resp = RESP_DONE;
	c->req = REQ_DONE;
	c->discard_body = true;
	c->resp_sent = true;
	c->hold_until = 0; /* answered: nothing is held any more */
	c->abort_status = 0;
	if (c->up) {
		up_drop(c->up);
		c->up = NULL;
	}
}

/*
 * Whether the connection stays open after a local answer: as the client
 * asked, unless the request's body is still on its way (the client may not
 * send it after a final answer; it is drained for SHIM_LINGER_MS instead).
 */
static bool answer_keeps(const struct conn *c)
{
	return c->client_keep && (!c->rq.has_body || c->req == REQ_DONE);
}

/* A local answer (fault abort, redirect, direct response, preflight) in c->to_client. */
static void local_answered(struct conn *c)
{
	tel_local(c, c->to_client.p, c->to_client.len);
	c->to_up.len = 0;
	c->s->st.responses_local++;
	c->resp = RESP_DONE;
	c->resp_sent = true;
	c->discard_body = true;
	c->close_after |= !answer_keeps(c);
	if (c->close_after)
		c->req = REQ_DONE; /* parse no more: the lingering close drains the rest */
}

/* An injected abort, answered as Envoy's fault filter answers it. */
static void reply_fault(struct conn *c)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: 18\r\n%s\r\n"
			 "fault filter abort",
			 c->abort_status, c->abort_status < 500 ? "Client Error" : "Server Error",
			 answer_keeps(c) ? "" : "connection: close\r\n");

	buf_put(&c->to_client, msg, (size_t)n);
	c->s->st.faults_aborted++;
	c->tel.flags = c->tel.flags ? "DI,FI" : "FI";
	local_answered(c);
}

/* Whether a fault applies to this request: pct of requests (0-100, fractions too). */
static bool fault_hits(double pct)
{
	uint32_t draw;

	if (getrandom(&draw, sizeof(draw), 0) != sizeof(draw))
		draw = (uint32_t)rand();
	return (double)draw / 4294967296.0 * 100.0 < pct;
}

/* ---- routing a request ---- */


static void upstream_failed(struct conn *c, const char *why);
static void route_start(struct conn *c);
static void conn_step(struct conn *c);
static void tel_endpoint(struct conn *c, const struct up_ep *e);

/* A fresh response codec for this try: the answer is read from its first byte. */
static void resp_reset(struct conn *c)
{
	h1_free(&c->rs);
	h1_init(&c->rs, true);
	c->rs.skip_body = c->is_head;
	c->resp_head.len = 0;
	c->resp_bytes = 0;
	c->resp_sent = false;
	c->resp = RESP_HEAD;
}

/* The next remembered endpoint of this request: a pooled connection to it, or a new one. */
static int upstream_start(struct conn *c)
{
	struct shim *s = c->s;
	struct up_target *t = &c->t;
	char a[INET6_ADDRSTRLEN], key[512];
	const struct up_ep *e;
	uint64_t id_gen = 0;
	struct up *u;
	unsigned i;
	int err;

	if (!t->n_eps || !c->tries_left)
		return -EHOSTUNREACH;
	i = c->next_ep++ % t->n_eps;
	e = &t->eps[i];
	tel_endpoint(c, e);
	if (up_target_tls(t, i)) {
		const struct ids_entry *id = ids_get(&s->ids, t->id_ns, t->id_sa);

		if (!id)
			return -ENOKEY;
		id_gen = id->gen;
	}
	inet_ntop(AF_INET6, &e->addr, a, sizeof(a));
	/* the rule is in the key: a connection verified under other subjectAltNames is not this one */
	snprintf(key, sizeof(key), "%s|%u|%s|%s/%s|%016" PRIx64, a, e->port,
		 !t->tls ? "" : e->same_node ? "=this node" : t->sni, t->tls ? t->id_ns : "",
		 t->tls ? t->id_sa : "", t->tls ? up_rule_hash(&t->rule) : 0);
	c->tries_left--;
	c->try_deadline = c->hp.per_try_ms ? now_ms() + c->hp.per_try_ms : 0;
	resp_reset(c);
	u = pool_take(s, key, id_gen);
	if (u) {
		s->st.pool_reused++;
		c->up = u;
		u->owner = c;
		arm(s, u->sd.fd, &u->armed, EPOLLIN | EPOLLOUT | EPOLLRDHUP, &u->h);
		return 0;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->s = s;
	snprintf(u->key, sizeof(u->key), "%s", key);
	err = up_target_connect(s, t, i, &c->peer, c->peer_port, &u->sd, &u->id_gen, NULL, 0);
	if (err) {
		up_free(u); /* closes a socket the connect may have opened */
		return err;
	}
	u->tls = up_target_tls(t, i);
	u->deadline = now_ms() + SHIM_CONNECT_MS;
	u->h.fn = up_event;
	u->owner = c;
	c->up = u;
	arm(s, u->sd.fd, &u->armed, EPOLLIN | EPOLLOUT | EPOLLRDHUP, &u->h);
	return 0;
}


/* Whether retryOn names this answer's status (connect failures are always retried). */
static bool retry_answer_wanted(const struct conn *c, unsigned status)
{
	if (c->hp.retry_5xx && status >= 500 && status <= 599)
		return true;
	if (c->hp.retry_gw && status >= 502 && status <= 504)
		return true;
	for (unsigned i = 0; i < c->hp.n_retry_codes; i++)
		if (c->hp.retry_codes[i] == status)
			return true;
	return false;
}

/* Does the request carry a body (its head alone does not complete it)? */
static bool has_body(const struct conn *c)
{
	return c->rq.has_body;
}

/*
 * A route's redirect or direct response, as Envoy answers them for Istio,
 * made ready in c->local; the connection stays open when the request has no
 * body and the client keeps it alive.
 */
static void local_response(struct conn *c, const struct http_route *hr,
			   const struct http_request *rq)
{
	const char *conn_hdr = answer_keeps(c) ? "" : "connection: close\r\n";
	struct buf *b = &c->local;
	char line[160];
	int n;

	b->len = 0;
	if (hr->redirect) {
		const struct http_redirect *rd = hr->redirect;
		const char *auth = rd->authority ? rd->authority : rq->authority ? rq->authority : "";
		const char *q = strchr(rq->path, '?');
		size_t hl = strcspn(auth, ":"); /* the host, without a port */
		long port = rd->port ? (long)rd->port
			    : rd->derivePort && !strcmp(rd->derivePort, "FROM_REQUEST_PORT")
				? (long)c->orig_port
				: 0;
		int code = rd->redirectCode ? (int)rd->redirectCode : 301;

		n = snprintf(line, sizeof(line), "HTTP/1.1 %d Moved\r\nlocation: %s://", code,
			     rd->scheme ? rd->scheme : rq->scheme);
		buf_put(b, line, (size_t)n);
		buf_put(b, auth, port ? hl : strlen(auth));
		if (port) {
			n = snprintf(line, sizeof(line), ":%ld", port);
			buf_put(b, line, (size_t)n);
		}
		if (rd->uri) {
			buf_put(b, rd->uri, strlen(rd->uri));
			if (q && !strchr(rd->uri, '?')) /* the request's query stays */
				buf_put(b, q, strlen(q));
		} else {
			buf_put(b, rq->path, strlen(rq->path));
		}
		n = snprintf(line, sizeof(line), "\r\ncontent-length: 0\r\n%s\r\n", conn_hdr);
		buf_put(b, line, (size_t)n);
	} else {
		const struct http_direct_response *dr = hr->directResponse;
		const char *body = dr->body && dr->body->string ? dr->body->string : "";
		size_t blen = strlen(body);
		unsigned char *raw = NULL;

		if (dr->body && dr->body->bytes) { /* base64 */
			size_t el = strlen(dr->body->bytes);
			int dl;

			raw = malloc(el / 4 * 3 + 3);
			dl = raw ? EVP_DecodeBlock(raw, (const unsigned char *)dr->body->bytes,
						   (int)el)
				 : -1;
			if (dl < 0) {
				free(raw);
				raw = NULL;
				dl = 0;
			}
			while (dl > 0 && el && dr->body->bytes[--el] == '=') /* padding */
				dl--;
			body = (const char *)raw;
			blen = raw ? (size_t)dl : 0;
		}
		n = snprintf(line, sizeof(line),
			     "HTTP/1.1 %d Direct\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n%s\r\n",
			     (int)dr->status, blen, conn_hdr);
		buf_put(b, line, (size_t)n);
		if (blen)
			buf_put(b, body, blen);
		free(raw);
	}
}

/* Fields that frame the message or the hop: header operations never touch them (a rule
 * removing Content-Length would make the body the next request). */
static bool header_framing(const char *name)
{
	static const char *const v[] = {"content-length", "transfer-encoding", "connection",
					"upgrade", "te", "keep-alive", "proxy-connection"};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (!strcasecmp(name, v[i]))
			return true;
	return false;
}

/* A request header list as it goes upstream: header operations applied (remove, set, add). */
static bool header_removed(const struct header_ops *ops, const char *name)
{
	if (header_framing(name))
		return false;
	for (uint32_t i = 0; ops && i < ops->remove.n; i++)
		if (!strcasecmp(ops->remove.v[i], name))
			return true;
	for (uint32_t i = 0; ops && i < ops->set.n; i++)
		if (!strcasecmp(ops->set.v[i].k, name))
			return true;
	return false;
}

static void header_put(struct buf *b, const char *name, const char *value)
{
	buf_put(b, name, strlen(name));
	buf_put(b, ": ", 2);
	buf_put(b, value, strlen(value));
	buf_put(b, "\r\n", 2);
}

static void header_ops_put(struct buf *b, const struct header_ops *ops)
{
	for (uint32_t i = 0; ops && i < ops->set.n; i++)
		if (!header_framing(ops->set.v[i].k))
			header_put(b, ops->set.v[i].k, ops->set.v[i].v ? ops->set.v[i].v : "");
	for (uint32_t i = 0; ops && i < ops->add.n; i++)
		if (!header_framing(ops->add.v[i].k))
			header_put(b, ops->add.v[i].k, ops->add.v[i].v ? ops->add.v[i].v : "");
}

/* Response header operations, kept with the request (a reload may free the plan). */
static void resp_ops_take(struct conn *c, const struct header_ops *ops)
{
	for (uint32_t i = 0; ops && i < ops->remove.n; i++)
		buf_put(&c->resp_drop, ops->remove.v[i], strlen(ops->remove.v[i]) + 1);
	for (uint32_t i = 0; ops && i < ops->set.n; i++)
		buf_put(&c->resp_drop, ops->set.v[i].k, strlen(ops->set.v[i].k) + 1);
	header_ops_put(&c->resp_add, ops);
}

static bool resp_dropped(const struct conn *c, const char *name, size_t len)
{
	if (header_framing(name))
		return false;
	for (size_t o = 0; o < c->resp_drop.len; o += strlen(c->resp_drop.p + o) + 1)
		if (strlen(c->resp_drop.p + o) == len && !strncasecmp(c->resp_drop.p + o, name, len))
			return true;
	return false;
}

/*
 * The path upstream after a rewrite.uri, as Envoy's prefix_rewrite does for
 * Istio: a prefix match has its prefix replaced; an exact or regex match the
 * whole path (the query stays); no uri match is Istio's implicit prefix "/".
 */
static void rewrite_path(struct buf *b, const char *uri, const struct http_match *blk,
			 const char *path)
{
	const struct string_match *m = blk ? blk->uri : NULL;
	size_t plen = strcspn(path, "?");

	buf_put(b, uri, strlen(uri));
	if (m && m->prefix)
		buf_put(b, path + strlen(m->prefix), strlen(path) - strlen(m->prefix));
	else if (m)
		buf_put(b, path + plen, strlen(path + plen));
	else
		buf_put(b, path + 1, strlen(path) - 1);
}

/* ---- mirrors: a copy of a bodiless request to another destination, answer dropped ---- */

struct mirror {
	struct evh h;
	struct shim *s;
	struct mirror *prev, *next;
	struct side sd;
	bool tls, tls_done, dead;
	struct buf req;
	uint64_t deadline;
	struct timer tm;
};

static void mirror_free(void *p)
{
	struct mirror *m = p;

	side_close(&m->sd);
	buf_free(&m->req);
	free(m);
}

static void mirror_kill(struct mirror *m, bool failed)
{
	if (m->dead)
		return;
	m->dead = true;
	timer_del(&m->s->timers, &m->tm);
	m->s->st.mirror_failed += failed;
	if (m->sd.fd >= 0)
		close(m->sd.fd);
	m->sd.fd = -1;
	m->s->n_mirrors--;
	LIST_UNLINK(m->s->mirrors, m);
	shim_defer_free(m->s, m, mirror_free);
}

static void mirror_expire(struct timer *t, uint64_t now)
{
	(void)now;
	mirror_kill((struct mirror *)((char *)t - offsetof(struct mirror, tm)), true);
}

static void mirror_event(struct evh *h, uint32_t events)
{
	struct mirror *m = (struct mirror *)h;
	char buf[SHIM_BUF], why[160];
	ssize_t n;
	int r;

	(void)events;
	if (m->dead)
		return;
	if (!m->sd.connected && (r = side_connect_done(&m->sd)) <= 0) {
		if (r < 0)
			mirror_kill(m, true);
		return;
	}
	if (m->tls && !m->tls_done) {
		r = side_handshake(&m->sd, why, sizeof(why));
		if (!side_flush(&m->sd) || r < 0) {
			mirror_kill(m, true);
			return;
		}
		if (!r)
			goto arm;
		m->tls_done = true;
	}
	if (m->req.len) {
		if (!side_write(&m->sd, m->req.p, m->req.len)) {
			mirror_kill(m, true);
			return;
		}
		m->req.len = 0;
		m->s->st.mirrored++;
	}
	if (!side_flush(&m->sd)) {
		mirror_kill(m, true);
		return;
	}
	while ((n = side_read(&m->sd, buf, sizeof(buf))) > 0)
		; /* the answer, dropped */
	if (n == 0 || (n < 0 && n != -EAGAIN)) { /* answered and closed ("connection: close") */
		mirror_kill(m, false);
		return;
	}
arm:
	ep_set(m->s, m->sd.fd, EPOLLIN | EPOLLRDHUP | (m->sd.out.len ? EPOLLOUT : 0), &m->h,
	       false);
}

/* The head that went upstream, as its shadow: host "-shadow" (before any port), and closed. */
static void shadow_head(const struct buf *head, struct buf *out)
{
	const char *p = head->p, *end = p + head->len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl + 1 : end) - p);

		if (len <= 2) /* the blank line ending the head */
			break;
		if (!strncasecmp(p, "host:", 5)) {
			const char *v = p + 5, *colon;

			while (*v == ' ')
				v++;
			colon = memchr(v, ':', (size_t)(p + len - v));
			buf_put(out, "host: ", 6);
			buf_put(out, v, (size_t)((colon ? colon : p + len - 2) - v));
			buf_put(out, "-shadow", 7);
			if (colon)
				buf_put(out, colon, (size_t)(p + len - 2 - colon));
			buf_put(out, "\r\n", 2);
		} else if (strncasecmp(p, "connection:", 11)) {
			buf_put(out, p, len);
		}
		p += len;
	}
	buf_put(out, "connection: close\r\n\r\n", 21);
}

/* Sends a copy of the request now in c->to_up to one endpoint of the mirror's destination. */
static void mirror_start(struct conn *c, const struct c_mirror *mi, uint32_t draw)
{
	struct shim *s = c->s;
	struct up_target t;
	struct mirror *m;
	uint64_t id_gen;

	if (s->n_mirrors >= SHIM_MAX_MIRRORS) {
		s->st.mirrors_dropped++; /* a shadow must never cost the real traffic */
		return;
	}
	if (up_target_make(s, &mi->d, &c->peer, draw, &t)) {
		s->st.mirror_failed++;
		return;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return;
	m->h.fn = mirror_event;
	m->s = s;
	if (up_target_connect(s, &t, 0, &c->peer, c->peer_port, &m->sd, &id_gen, NULL, 0)) {
		mirror_free(m); /* closes a socket the connect may have opened */
		s->st.mirror_failed++;
		return;
	}
	m->tls = up_target_tls(&t, 0);
	shadow_head(&c->to_up, &m->req);
	m->deadline = now_ms() + SHIM_CONNECT_MS;
	m->tm.fn = mirror_expire;
	timer_set(&s->timers, &m->tm, m->deadline);
	s->n_mirrors++;
	LIST_PUSH(s->mirrors, m);
	ep_set(s, m->sd.fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, &m->h, true);
}

/* CORS, as Envoy's filter does it for Istio: does the policy allow this Origin? */
static bool cors_allows(const struct cors_policy *cp, const char *origin, struct regex_cache *rc)
{
	for (uint32_t i = 0; origin && i < cp->allowOrigins.n; i++) {
		const struct string_match *m = &cp->allowOrigins.v[i];

		if ((m->exact && !strcmp(m->exact, "*")) || route_string_matches(m, origin, rc))
			return true;
	}
	for (uint32_t i = 0; origin && i < cp->allowOrigin.n; i++)
		if (!strcmp(cp->allowOrigin.v[i], "*") || !strcmp(cp->allowOrigin.v[i], origin))
			return true;
	return false;
}

static void header_list_put(struct buf *b, const char *name, const struct strs *v)
{
	if (!v->n)
		return;
	buf_put(b, name, strlen(name));
	buf_put(b, ": ", 2);
	for (uint32_t i = 0; i < v->n; i++) {
		if (i)
			buf_put(b, ",", 1);
		buf_put(b, v->v[i], strlen(v->v[i]));
	}
	buf_put(b, "\r\n", 2);
}

/* The CORS headers of an answer to an allowed Origin; all of them for a preflight. */
static void cors_headers(struct buf *b, const struct cors_policy *cp, const char *origin,
			 bool preflight)
{
	char age[32];

	header_put(b, "access-control-allow-origin", origin);
	if (cp->allowCredentials)
		header_put(b, "access-control-allow-credentials", "true");
	header_list_put(b, "access-control-expose-headers", &cp->exposeHeaders);
	if (!preflight)
		return;
	header_list_put(b, "access-control-allow-methods", &cp->allowMethods);
	header_list_put(b, "access-control-allow-headers", &cp->allowHeaders);
	if (obj_has(&cp->o, "maxAge")) {
		snprintf(age, sizeof(age), "%lld", (long long)(cp->maxAge / 1000));
		header_put(b, "access-control-max-age", age);
	}
}

/* One request's routing, as the filters see it. */
struct route_ctx {
	const struct c_route *r;
	const struct http_request *rq;
	const struct cors_policy *cp;
	const char *origin;
	bool cors_ok; /* the Origin is one the route's corsPolicy allows */
};

/* What a filter decided: on to the next one, or the request has its answer (or error). */
enum filt { FILT_CONTINUE, FILT_STOP };

static const char *rq_header(const struct http_request *rq, const char *name)
{
	for (unsigned i = 0; i < rq->n_headers; i++)
		if (!strcasecmp(rq->headers[i].name, name))
			return rq->headers[i].value;
	return NULL;
}

/* CORS, as Envoy's filter for Istio: a preflight from an allowed origin is answered here. */
static enum filt filt_cors(struct conn *c, struct route_ctx *x)
{
	const struct cors_policy *cp = x->r->http ? x->r->http->corsPolicy : NULL;

	x->cp = cp;
	if (!cp)
		return FILT_CONTINUE;
	x->origin = rq_header(x->rq, "origin");
	x->cors_ok = cors_allows(cp, x->origin, &c->s->rc);
	if (!x->origin || strcmp(x->rq->method, "OPTIONS") ||
	    !rq_header(x->rq, "access-control-request-method"))
		return FILT_CONTINUE;
	if (!x->cors_ok && !(cp->unmatchedPreflights && !strcmp(cp->unmatchedPreflights, "IGNORE")))
		return FILT_CONTINUE;
	c->local.len = 0;
	buf_put(&c->local, "HTTP/1.1 200 OK\r\n", strlen("HTTP/1.1 200 OK\r\n"));
	header_put(&c->local, "content-length", "0");
	if (x->cors_ok)
		cors_headers(&c->local, cp, x->origin, true);
	if (!answer_keeps(c))
		header_put(&c->local, "connection", "close");
	buf_put(&c->local, "\r\n", 2);
	return FILT_STOP;
}

/* Fault injection, as Envoy's filter for Istio: a delay holds the request, an abort answers
 * it when the delay is over. */
static enum filt filt_fault(struct conn *c, struct route_ctx *x)
{
	c->hp = x->r->h; /* copied: a reload may free the plan while this request lives */
	if (c->hp.delay_ms && fault_hits(c->hp.delay_pct)) {
		c->hold_until = now_ms() + c->hp.delay_ms;
		c->tel.flags = "DI";
	}
	if (c->hp.abort_status && fault_hits(c->hp.abort_pct))
		c->abort_status = (int)c->hp.abort_status;
	c->s->st.faults_delayed += c->hold_until != 0;
	return c->abort_status ? FILT_STOP : FILT_CONTINUE;
}

/* A route's redirect or direct response. */
static enum filt filt_local(struct conn *c, struct route_ctx *x)
{
	if (!x->r->http || (!x->r->http->redirect && !x->r->http->directResponse))
		return FILT_CONTINUE;
	local_response(c, x->r->http, x->rq);
	return FILT_STOP;
}

/*
 * The destination's labels as the route names it: the service, its
 * upstream cluster as Istio names it, and the cluster its endpoints are in
 * when they all are in one (a remote cluster's gateway endpoint says which).
 */
static void tel_route(struct conn *c, const struct c_route *r, const struct c_dest *d)
{
	struct req_tel *t = &c->tel;
	uint16_t port = d->port ? d->port : c->orig_port;
	const char *cl = d->n_eps ? d->eps[0].cluster : NULL;

	tel_service(c->s, d->host, port, &t->pk);
	for (uint32_t i = 1; cl && i < d->n_eps; i++)
		if (!d->eps[i].cluster || strcmp(d->eps[i].cluster, cl))
			cl = NULL;
	mt_pack_set(&t->pk, MT_DST_CLUSTER, cl);
	snprintf(t->cluster, sizeof(t->cluster), "outbound|%u|%s|%s", port,
		 d->subset ? d->subset : "", d->host);
	copy_str(t->route, sizeof(t->route), r->name);
}

/* The endpoint this try goes to: its pod's labels when it is a pod of the plan. */
static void tel_endpoint(struct conn *c, const struct up_ep *e)
{
	struct req_tel *t = &c->tel;
	char a[INET6_ADDRSTRLEN];
	static const int dst[] = { MT_DST_WORKLOAD, MT_DST_WORKLOAD_NS, MT_DST_PRINCIPAL,
				   MT_DST_APP,	    MT_DST_VERSION,	MT_DST_CANON_SVC,
				   MT_DST_CANON_REV };

	for (size_t i = 0; i < sizeof(dst) / sizeof(dst[0]); i++)
		mt_pack_set(&t->pk, dst[i], NULL);
	snprintf(t->upstream, sizeof(t->upstream), "%s:%u", addr_str(&e->addr, a, sizeof(a)),
		 e->port);
	if (tel_dest_pod(c->s, &e->addr, &t->pk) && !c->t.tls)
		mt_pack_set(&t->pk, MT_DST_PRINCIPAL, NULL); /* plaintext: no identity proven */
}

/*
 * The router: a weighted destination, the endpoints to try (ejected ones
 * left out, up to maxEjectionPercent, one at least, as Envoy), its TLS and
 * identity, then the request head for the upstream (the route's rewrite and
 * header operations applied, hop-by-hop fields left out) and any mirrors.
 */
static enum filt filt_router(struct conn *c, struct route_ctx *x)
{
	const struct c_route *r = x->r;
	const struct http_request *rq = x->rq;
	const struct http_header *hs = rq->headers;
	const struct c_dest *d;
	const char *why;
	uint32_t draw[2];
	char line[64];
	int n;

	if (getrandom(draw, sizeof(draw), 0) != sizeof(draw))
		draw[0] = draw[1] = (uint32_t)rand();
	d = route_pick_dest(r, draw[0]);
	why = up_target_make(c->s, d, &c->peer, draw[1], &c->t);
	if (why) {
		c->tel.flags = "UH";
		reply_error(c, 503, "Service Unavailable", why);
		return FILT_STOP;
	}
	tel_route(c, r, d);
	c->next_ep = 0;
	c->tries_left = 1 + c->hp.attempts;
	c->try_deadline = 0;
	c->deadline = 0;
	c->resp_bytes = 0;
	/* the head again, with the destination's then the route's header operations */
	{
		const struct http_rewrite *rw = r->http ? r->http->rewrite : NULL;
		const struct route_destination *rd = (const struct route_destination *)d->src;
		const struct header_ops *ops[2] = {
			rd && rd->headers ? rd->headers->request : NULL,
			r->http && r->http->headers ? r->http->headers->request : NULL };

		n = snprintf(line, sizeof(line), " HTTP/%u.%u\r\n", c->rq.p.http_major,
			     c->rq.p.http_minor);
		buf_put(&c->to_up, rq->method, strlen(rq->method));
		buf_put(&c->to_up, " ", 1);
		if (rw && rw->uri)
			rewrite_path(&c->to_up, rw->uri, route_block(r, rq, &c->s->rc), rq->path);
		else
			buf_put(&c->to_up, rq->path, strlen(rq->path));
		buf_put(&c->to_up, line, (size_t)n);
		for (unsigned i = 0; i < rq->n_headers; i++) {
			bool host = !strcasecmp(hs[i].name, "host");

			if (header_removed(ops[0], hs[i].name) || header_removed(ops[1], hs[i].name))
				continue;
			if (h1_hop_by_hop(&c->rq, i))
				continue;
			header_put(&c->to_up, hs[i].name,
				   host && rw && rw->authority ? rw->authority : hs[i].value);
		}
		if (rw && rw->authority && !rq->authority)
			header_put(&c->to_up, "host", rw->authority);
		header_ops_put(&c->to_up, ops[0]);
		header_ops_put(&c->to_up, ops[1]);
		if (c->rq.upgrade) { /* asked end to end: a tunnel after a 101 */
			header_put(&c->to_up, "connection", "upgrade");
			header_put(&c->to_up, "upgrade", h1_get(&c->rq, "upgrade"));
		}
		buf_put(&c->to_up, "\r\n", 2);
		/* and for the answer: the destination's, then the route's, then CORS */
		c->resp_drop.len = c->resp_add.len = c->resp_head.len = 0;
		resp_ops_take(c, rd && rd->headers ? rd->headers->response : NULL);
		resp_ops_take(c, r->http && r->http->headers ? r->http->headers->response : NULL);
		if (x->cors_ok)
			cors_headers(&c->resp_add, x->cp, x->origin, false);
	}
	c->replay.len = 0;
	if (!has_body(c)) /* the whole request: it can be sent again */
		buf_put(&c->replay, c->to_up.p, c->to_up.len);
	/* mirrors: copies of a bodiless request, as Envoy's shadowing; answers dropped */
	for (uint32_t i = 0; !has_body(c) && i < r->n_mirrors; i++) {
		uint32_t pick[2];

		if (getrandom(pick, sizeof(pick), 0) != sizeof(pick))
			pick[0] = pick[1] = (uint32_t)rand();
		if ((double)pick[0] / 4294967296.0 * 100.0 < r->mirrors[i].percent)
			mirror_start(c, &r->mirrors[i], pick[1]);
	}
	return FILT_STOP;
}

/* The filters, in the order Istio gives Envoy's: each goes on or stops the chain. */
static enum filt (*const filters[])(struct conn *c, struct route_ctx *x) = {
	filt_cors,
	filt_fault,
	filt_local,
	filt_router,
};

static void route_decide(struct conn *c, const struct c_frontend *fe, const struct http_request *rq)
{
	struct route_ctx x = {.rq = rq};

	c->hold_until = 0;
	c->abort_status = 0;
	c->local.len = 0;
	if (!fe) {
		c->tel.flags = "NR";
		reply_error(c, 503, "Service Unavailable", "no frontend for this destination");
		return;
	}
	x.r = route_match(fe, rq, &c->s->rc);
	if (!x.r) {
		c->tel.flags = "NR";
		reply_error(c, 404, "Not Found", "no route matched");
		return;
	}
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
		if (filters[i](c, &x) == FILT_STOP)
			break;
	if (c->resp == RESP_DONE || c->hold_until)
		return; /* answered with an error, or held: conn_timer starts it */
	route_start(c);
}

/* The head just read: normalized, matched against the frontend's routes. */
static void route_request(struct conn *c)
{
	struct http_header hs[SHIM_MAX_HEADERS];
	struct http_request rq = {0};
	const struct c_frontend *fe = plan_frontend(c->s->plan, &c->orig, c->orig_port);
	unsigned nh = c->rq.n_f;
	char *path;

	c->s->st.requests++;
	for (unsigned i = 0; i < nh; i++) {
		hs[i].name = h1_name(&c->rq, i);
		hs[i].value = h1_value(&c->rq, i);
	}
	path = malloc(c->rq.target_len + 2);
	if (!path) {
		reply_error(c, 503, "Service Unavailable", "out of memory");
		return;
	}
	route_normalize_path(h1_target(&c->rq), path);
	rq.authority = h1_get(&c->rq, "host");
	rq.method = llhttp_method_name((llhttp_method_t)c->rq.p.method);
	rq.path = path;
	rq.scheme = "http";
	rq.headers = hs;
	rq.n_headers = nh;
	rq.port = c->orig_port;
	route_decide(c, fe, &rq);
	free(path);
}

/* The routed request goes upstream (or gets its injected abort). */
static void route_start(struct conn *c)
{
	int err;

	c->hold_until = 0;
	if (c->abort_status) {
		reply_fault(c);
		return;
	}
	if (c->local.len) {
		buf_put(&c->to_client, c->local.p, c->local.len);
		c->local.len = 0;
		local_answered(c);
		return;
	}
	c->deadline = c->hp.timeout_ms ? now_ms() + c->hp.timeout_ms : 0;
	err = upstream_start(c);
	while (err && err != -ENOKEY && c->tries_left)
		err = upstream_start(c);
	if (err) {
		char why[220];

		snprintf(why, sizeof(why), "upstream TLS handshake failed: %s", c->t.rule.why);
		c->to_up.len = 0;
		c->tel.flags = "UF";
		reply_error(c, 503, "Service Unavailable",
			    err == -ENOKEY    ? "no workload certificate could be minted"
			    : err == -EACCES ? why
					      : "upstream connect error");
	}
}

/* Bytes the upstream still owes its socket for this connection. */
static size_t up_owed(const struct conn *c)
{
	return c->to_up.len + (c->up ? c->up->sd.out.len : 0);
}

static const char *status_reason(int status)
{
	switch (status) {
	case 408: return "Request Timeout";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default: return "Bad Request";
	}
}

/*
 * Client bytes through the request codec: the head is routed when complete,
 * body bytes go upstream as they came (or are dropped after a local answer),
 * and parsing stops at the end of the request until it is answered.
 */
static void take_client_bytes(struct conn *c)
{
	while (!c->dead && (c->req == REQ_HEAD || c->req == REQ_BODY)) {
		bool body = c->req == REQ_BODY;
		enum h1_event ev;
		size_t used;

		/* a bodiless request completes without another byte */
		if (!c->in.len && !(body && !c->rq.has_body))
			break;
		if (body && !c->discard_body && up_owed(c) >= c->s->lim.buf_bytes) {
			c->s->st.backpressured++;
			break; /* the upstream is behind: the client waits */
		}
		ev = h1_feed(&c->rq, c->in.p, c->in.len, &used);
		c->tel.rx += used;
		if (body && !c->discard_body)
			buf_put(&c->to_up, c->in.p, used); /* framing and all, as it came */
		buf_drop(&c->in, used);
		switch (ev) {
		case H1_MORE:
			break;
		case H1_ERROR:
			c->s->st.bad_requests++;
			pr_debug("shim: refused a request: %s\n", c->rq.why);
			if (c->resp_sent) { /* no room for a 400 inside an answer: only the close */
				conn_kill(c);
				return;
			}
			if (!c->tel.on)
				tel_begin(c);
			c->tel.flags = "DPE";
			reply_error(c, c->rq.status, status_reason(c->rq.status), c->rq.why);
			c->in.len = 0;
			return;
		case H1_HEAD:
			c->req = REQ_BODY;
			c->head_start = 0;
			c->client_keep = c->rq.keep_alive;
			c->is_head = c->rq.p.method == HTTP_HEAD;
			tel_begin(c);
			route_request(c);
			break;
		case H1_DONE:
			c->req = REQ_DONE;
			break;
		}
	}
}

static void next_request(struct conn *c)
{
	c->req = REQ_HEAD;
	c->resp = RESP_NONE;
	h1_head_reset(&c->rq);
	c->to_up.len = 0;
	c->local.len = 0;
	c->deadline = c->try_deadline = 0;
	c->discard_body = c->resp_sent = false;
	c->resp_bytes = 0;
	if (c->in.len)
		c->head_start = now_ms();
	take_client_bytes(c);
}

/*
 * This try failed. A pooled connection that died before answering gets the
 * request again on a fresh one; a connect or handshake failure (nothing was
 * sent) moves to the next endpoint while retries last; else an error response.
 */
static void upstream_failed(struct conn *c, const char *why)
{
	struct up *u = c->up;
	bool reused = u && u->reused, sent = u && u->sd.connected && (u->tls_done || !u->tls);
	int err = -1;

	if (u && u->tls && !u->tls_done)
		c->s->st.upstream_tls_failed++;
	if (u && !reused) /* a connect, handshake or answer failure of this endpoint */
		health_result(c, 503);
	if (u) {
		up_drop(u);
		c->up = NULL;
	}
	if (c->resp_sent) {
		conn_kill(c); /* an answer was half sent: only closing tells the client */
		return;
	}
	if (reused && c->replay.len && !c->resp_bytes) { /* it never saw the request */
		c->next_ep--; /* the same endpoint */
		c->tries_left++;
		c->to_up.len = 0;
		buf_put(&c->to_up, c->replay.p, c->replay.len);
		err = upstream_start(c);
		sent = false;
	}
	while (err && !sent && c->tries_left)
		err = upstream_start(c);
	if (!err)
		return;
	pr_debug("shim: upstream: %s\n", why);
	c->tel.flags = sent ? "UC" : "UF";
	if (sent)
		reply_error(c, 502, "Bad Gateway", why);
	else
		reply_error(c, 503, "Service Unavailable", why);
}

/* 1: the upstream can carry the request; 0: not yet; -1: it failed (handled). */
static int upstream_ready(struct conn *c)
{
	struct up *u = c->up;
	char why[200];
	int r;

	if (!u->sd.connected) {
		r = side_connect_done(&u->sd);
		if (r < 0) {
			snprintf(why, sizeof(why), "upstream connect error: %s", strerror(-r));
			upstream_failed(c, why);
			return -1;
		}
		if (!r)
			return 0;
	}
	if (u->tls && !u->tls_done) {
		if (!side_flush(&u->sd)) {
			upstream_failed(c, "upstream connect error: send failed");
			return -1;
		}
		char hw[160];

		r = side_handshake(&u->sd, hw, sizeof(hw));
		if (r < 0) {
			snprintf(why, sizeof(why), "upstream TLS handshake failed: %s", hw);
			upstream_failed(c, why);
			return -1;
		}
		if (!side_flush(&u->sd)) {
			upstream_failed(c, "upstream connect error: send failed");
			return -1;
		}
		if (!r)
			return 0;
		u->tls_done = true;
		c->s->st.upstream_tls_ok++;
	}
	return 1;
}

static bool flush_fd(int fd, struct buf *b)
{
	while (b->len) {
		ssize_t n = send(fd, b->p, b->len, MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		buf_drop(b, (size_t)n);
	}
	return true;
}

/* An answer retryOn names, not yet passed on: the request again, to the next endpoint. */
static void retry_answer(struct conn *c)
{
	int err;

	up_drop(c->up);
	c->up = NULL;
	c->to_up.len = 0;
	buf_put(&c->to_up, c->replay.p, c->replay.len);
	c->s->st.retried_answers++;
	err = upstream_start(c);
	while (err && err != -ENOKEY && c->tries_left)
		err = upstream_start(c);
	if (err) {
		c->tel.flags = "URX";
		reply_error(c, 503, "Service Unavailable", "upstream connect error (retrying an answer)");
	}
}

/*
 * The answer's head, complete and final, as the client gets it: the status
 * line as it came, the fields but hop-by-hop ones and those the route drops,
 * the route's and CORS's additions, and this hop's own Connection.
 */
static void resp_head_out(struct conn *c)
{
	const struct h1 *h = &c->rs;
	const char *p = c->resp_head.p;
	const char *nl = memchr(p, '\n', c->resp_head.len);
	size_t l = nl ? (size_t)(nl - p) : 0;

	if (l && p[l - 1] == '\r')
		l--;
	buf_put(&c->to_client, p, l);
	buf_put(&c->to_client, "\r\n", 2);
	for (unsigned i = 0; i < h->n_f; i++) {
		const char *name = h1_name(h, i);

		if (h1_hop_by_hop(h, i) || resp_dropped(c, name, strlen(name)))
			continue;
		header_put(&c->to_client, name, h1_value(h, i));
	}
	buf_put(&c->to_client, c->resp_add.p, c->resp_add.len);
	if (c->close_after)
		header_put(&c->to_client, "connection", "close");
	else if (c->rq.p.http_minor == 0)
		header_put(&c->to_client, "connection", "keep-alive");
	buf_put(&c->to_client, "\r\n", 2);
}

/* A response head is complete: false when the request went elsewhere (a retry, an error). */
static bool resp_head_done(struct conn *c)
{
	int status = c->rs.p.status_code;

	c->resp_status = status;
	if (status == 101 && !c->rq.upgrade) {
		c->tel.flags = "UPE";
		reply_error(c, 502, "Bad Gateway", "upstream switched protocols unasked");
		return false;
	}
	if (status < 200) { /* interim (100 Continue, 103, a 101 before the tunnel): as it came */
		if (c->rq.p.http_minor >= 1 || status == 101) /* HTTP/1.0 clients get none */
			buf_put(&c->to_client, c->resp_head.p, c->resp_head.len);
		if (status == 101)
			c->tel.status = 101; /* a tunnel from here: reported when it closes */
		c->resp_sent = true;
		c->resp_head.len = 0;
		return true;
	}
	health_result(c, status);
	if (c->tries_left && c->req == REQ_DONE && c->replay.len &&
	    retry_answer_wanted(c, (unsigned)status)) {
		retry_answer(c);
		return false;
	}
	c->upstream_keep = c->rs.keep_alive;
	if (llhttp_message_needs_eof(&c->rs.p))
		c->close_after = true; /* the body ends with the upstream's close: so must ours */
	c->close_after |= !answer_keeps(c); /* an answer before the whole request: closed after */
	c->tel.status = status;
	if (h1_get(&c->rs, "grpc-status"))
		mt_pack_set(&c->tel.pk, MT_GRPC_STATUS, h1_get(&c->rs, "grpc-status"));
	if (c->up && c->up->sd.rule.seen[0]) /* the certificate the server presented */
		tel_principal(&c->tel.pk, false, c->up->sd.rule.seen);
	{
		size_t before = c->to_client.len;

		resp_head_out(c);
		c->tel.tx_head = c->to_client.len - before;
	}
	c->resp_sent = true;
	c->resp_head.len = 0;
	c->resp = RESP_BODY;
	return true;
}

/* Upstream bytes through the response codec; false when the connection changed course. */
static bool resp_take(struct conn *c, const char *p, size_t n)
{
	size_t off = 0, used;
	bool bodiless = false; /* a head without a body: its end comes without another byte */

	while (off < n || bodiless) {
		enum h1_event ev;

		if (c->resp == RESP_TUNNEL) {
			buf_put(&c->to_client, p + off, n - off);
			return true;
		}
		if (c->resp == RESP_DONE) { /* bytes after a complete answer: nobody asked */
			c->upstream_keep = false;
			return true;
		}
		ev = h1_feed(&c->rs, p + off, n - off, &used);
		buf_put(c->resp == RESP_HEAD ? &c->resp_head : &c->to_client, p + off, used);
		off += used;
		bodiless = ev == H1_HEAD && !c->rs.has_body;
		switch (ev) {
		case H1_MORE:
			break;
		case H1_ERROR:
			c->s->st.bad_responses++;
			pr_debug("shim: upstream answer refused: %s\n", c->rs.why);
			if (c->resp_sent) {
				conn_kill(c);
			} else {
				health_result(c, 502);
				c->tel.flags = "UPE";
				reply_error(c, 502, "Bad Gateway", "upstream sent a malformed answer");
			}
			return false;
		case H1_HEAD:
			if (!resp_head_done(c))
				return false;
			break;
		case H1_DONE:
			if (c->resp_status == 101) { /* both ways raw from here */
				c->resp = RESP_TUNNEL;
				c->req = REQ_TUNNEL;
				c->s->st.upgraded++;
			} else if (c->resp_status < 200) {
				h1_head_reset(&c->rs); /* the final answer follows */
			} else {
				c->resp = RESP_DONE;
			}
			break;
		}
	}
	return true;
}

/* This request's upstream: its bytes out, its answer in, while the client's queue has room. */
static void conn_upstream(struct conn *c)
{
	char buf[SHIM_BUF];
	ssize_t n = -EAGAIN;
	size_t owed;
	int r = upstream_ready(c);

	if (r <= 0)
		return;
	owed = c->up->sd.out.len + c->to_up.len;
	if (c->to_up.len) {
		if (!side_write(&c->up->sd, c->to_up.p, c->to_up.len)) {
			upstream_failed(c, "upstream write failed");
			return;
		}
		c->to_up.len = 0;
	} else if (!side_flush(&c->up->sd)) {
		upstream_failed(c, "upstream write failed");
		return;
	}
	if (c->up->sd.out.len < owed)
		c->last_io = now_ms(); /* the upstream reads what it is sent */
	c->up_full = false;
	while (c->up && !c->up_eof && c->resp != RESP_DONE &&
	       !(c->up_full = c->to_client.len >= c->s->lim.buf_bytes) &&
	       (n = side_read(&c->up->sd, buf, sizeof(buf))) > 0) {
		c->resp_bytes += (size_t)n;
		c->last_io = now_ms();
		if (!resp_take(c, buf, (size_t)n))
			return;
	}
	if (!c->up)
		return;
	if (n == 0 && c->resp == RESP_TUNNEL) {
		c->up_eof = true;
	} else if (n == 0 && c->resp != RESP_DONE) {
		if (!c->resp_bytes) {
			upstream_failed(c, "upstream closed the connection before a response");
			return;
		}
		if (c->resp != RESP_BODY || h1_eof(&c->rs) != H1_DONE) {
			c->s->st.cut_responses++;
			if (!c->resp_sent) {
				c->tel.flags = "UC";
				reply_error(c, 502, "Bad Gateway", "upstream closed inside its answer");
				return;
			}
			conn_kill(c); /* an answer cut short: only closing tells the client */
			return;
		}
		c->resp = RESP_DONE; /* a close-delimited answer ended */
		c->upstream_keep = false;
	} else if (n < 0 && n != -EAGAIN && c->resp != RESP_DONE) {
		upstream_failed(c, "upstream connection reset");
		return;
	}
	if (c->resp == RESP_DONE) {
		/* the upstream connection is free again: pooled when both ends keep it alive */
		if (c->req == REQ_DONE && c->upstream_keep && !c->up->sd.eof && !c->up->sd.out.len &&
		    !side_pending(&c->up->sd))
			pool_put(c->s, c->up);
		else
			up_drop(c->up);
		c->up = NULL;
		if (c->req != REQ_DONE) { /* answered early: the rest of the body has nowhere to go */
			c->discard_body = true;
			c->close_after = true;
			c->req = REQ_DONE; /* parse no more: the lingering close drains the rest */
		}
	}
}

/* After a 101: bytes both ways as they come, each EOF passed on once its side is flushed. */
static void tunnel_step(struct conn *c)
{
	if (c->in.len && up_owed(c) < c->s->lim.buf_bytes) {
		buf_put(&c->to_up, c->in.p, c->in.len);
		c->in.len = 0;
	}
	if (c->up && c->client_eof && !c->in.len && !c->up_shut && !up_owed(c)) {
		side_shutdown_write(&c->up->sd);
		if (side_flush(&c->up->sd) && !c->up->sd.out.len) {
			shutdown(c->up->sd.fd, SHUT_WR);
			c->up_shut = true;
		}
	}
	if (c->up_eof && !c->to_client.len && !c->client_shut) {
		shutdown(c->cfd, SHUT_WR);
		c->client_shut = true;
	}
}

/* The earliest moment something about this connection is due. */
static uint64_t conn_deadline(const struct conn *c)
{
	const struct shim_limits *l = &c->s->lim;
	uint64_t at = 0;

#define EARLIER(x)                                                                                 \
	do {                                                                                       \
		uint64_t x_ = (x);                                                                 \
		if (x_ && (!at || x_ < at))                                                        \
			at = x_;                                                                   \
	} while (0)
	if (c->lingering)
		return c->linger_until;
	EARLIER(c->hold_until);
	if (c->resp != RESP_DONE && c->resp != RESP_TUNNEL)
		EARLIER(c->deadline);
	if (c->resp == RESP_HEAD && !c->resp_sent && c->up)
		EARLIER(c->try_deadline);
	if (c->up && !c->up->reused &&
	    (!c->up->sd.connected || (c->up->tls && !c->up->tls_done)))
		EARLIER(c->up->deadline);
	if (c->req == REQ_HEAD && c->head_start)
		EARLIER(c->head_start + l->head_ms);
	else if (c->req == REQ_HEAD)
		EARLIER(c->last_io + l->idle_ms);
	else
		EARLIER(c->last_io + (c->req == REQ_TUNNEL ? l->idle_ms : l->stream_idle_ms));
#undef EARLIER
	return at;
}

static void conn_arm(struct conn *c)
{
	uint32_t cap = c->s->lim.buf_bytes, want = 0;

	timer_set(&c->s->timers, &c->tm, conn_deadline(c));

	if (!c->client_eof && c->in.len < cap)
		want |= EPOLLIN | EPOLLRDHUP;
	if (c->to_client.len)
		want |= EPOLLOUT;
	arm(c->s, c->cfd, &c->armed, want, &c->h);
	if (!c->up)
		return;
	want = 0;
	if (!c->up->sd.connected || c->up->sd.out.len || c->to_up.len)
		want |= EPOLLOUT;
	if (!c->up_eof && c->resp != RESP_DONE && c->to_client.len < cap)
		want |= EPOLLIN | EPOLLRDHUP;
	arm(c->s, c->up->sd.fd, &c->up->armed, want, &c->up->h);
}

static void conn_step(struct conn *c)
{
	struct shim *s = c->s;
	char buf[SHIM_BUF];
	uint64_t now = now_ms();
	ssize_t n;

	while (!c->client_eof && c->in.len < s->lim.buf_bytes) {
		n = recv(c->cfd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			goto done;
		}
		if (n == 0) {
			c->client_eof = true;
			break;
		}
		c->last_io = now;
		if (c->lingering)
			continue; /* after the last answer: drained and dropped */
		if (c->req == REQ_HEAD && !c->head_start)
			c->head_start = now;
		buf_put(&c->in, buf, (size_t)n);
	}
	if (c->lingering) {
		if (c->client_eof || now >= c->linger_until)
			goto done;
		conn_arm(c);
		return;
	}
	for (;;) {
		take_client_bytes(c);
		if (c->req == REQ_TUNNEL)
			tunnel_step(c);
		if (c->up)
			conn_upstream(c);
		if (c->dead)
			return;
		n = (ssize_t)c->to_client.len;
		if (!flush_fd(c->cfd, &c->to_client)) {
			c->tel.tx += (size_t)n - c->to_client.len;
			goto done;
		}
		c->tel.tx += (size_t)n - c->to_client.len;
		if ((size_t)n != c->to_client.len)
			c->last_io = now; /* a slow reader that reads is not idle */
		/* the upstream took what was queued: more of the client's bytes may follow now */
		if ((c->req == REQ_BODY || c->req == REQ_TUNNEL) && c->in.len && c->up &&
		    c->up->sd.connected && up_owed(c) < s->lim.buf_bytes)
			continue;
		/* reading stopped for room, and TLS records read from the socket may wait in
		 * OpenSSL, which epoll will not report: read on now that there is room */
		if (c->up && c->up_full && c->to_client.len < s->lim.buf_bytes)
			continue;
		if (c->req == REQ_TUNNEL) {
			tunnel_step(c);
			if (c->up_shut && c->client_shut)
				goto done;
			if (!c->up && !c->to_client.len)
				goto done;
			break;
		}
		if (c->resp != RESP_DONE || c->req != REQ_DONE || c->to_client.len)
			break;
		tel_end(c, NULL); /* answered, every byte of it sent */
		if (c->close_after) { /* drain what the client still sends, so the answer is not reset */
			shutdown(c->cfd, SHUT_WR);
			c->lingering = true;
			c->linger_until = now + SHIM_LINGER_MS;
			c->in.len = 0;
			if (c->client_eof)
				goto done;
			conn_arm(c);
			return;
		}
		next_request(c);
	}
	/* the client went: between requests, or inside one that can no longer complete */
	if (c->client_eof && !c->in.len && (c->req == REQ_HEAD || c->req == REQ_BODY))
		goto done;
	conn_arm(c);
	return;
done:
	conn_kill(c);
}

static void conn_event(struct evh *h, uint32_t events)
{
	struct conn *c = (struct conn *)h;

	(void)events;
	if (!c->dead)
		conn_step(c);
}

/* ---- connections per source: one pod must not take the node's share ---- */

static unsigned src_slot(const struct shim *s, const struct ks_addr *a)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p = (const unsigned char *)a;

	for (size_t i = 0; i < sizeof(*a); i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return (unsigned)(h & (s->src_cap - 1));
}

/* The count of a, created at 0 when asked; NULL when absent or out of memory. */
static struct src_count *src_get(struct shim *s, const struct ks_addr *a, bool create)
{
	unsigned i;

	if (create && (s->src_used + 1) * 2 > s->src_cap) { /* grow; rehash the live ones */
		unsigned cap = 64, old_cap = s->src_cap;
		struct src_count *old = s->src, *nv;

		while ((s->src_live + 1) * 4 > cap) /* tombstones are dropped: it shrinks too */
			cap *= 2;
		nv = calloc(cap, sizeof(*nv));
		if (!nv)
			return NULL;
		s->src = nv;
		s->src_cap = cap;
		s->src_used = 0;
		for (unsigned k = 0; k < old_cap; k++)
			if (old[k].n) {
				for (i = src_slot(s, &old[k].a); nv[i].used; i = (i + 1) & (cap - 1))
					;
				nv[i] = old[k];
				s->src_used++;
			}
		free(old);
	}
	if (!s->src_cap)
		return NULL;
	for (i = src_slot(s, a); s->src[i].used; i = (i + 1) & (s->src_cap - 1))
		if (!memcmp(&s->src[i].a, a, sizeof(*a)))
			return &s->src[i];
	if (!create)
		return NULL;
	s->src[i].used = true;
	s->src[i].a = *a;
	s->src_used++;
	return &s->src[i];
}

static void src_release(struct shim *s, const struct ks_addr *a)
{
	struct src_count *e = src_get(s, a, false);

	if (e && e->n && !--e->n)
		s->src_live--; /* the slot stays, as a tombstone, until the next rehash */
}

/* Refused at the door: an HTTP answer that says why, then the close. */
static void refuse(int fd, bool http, const char *why)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 503 Service Unavailable\r\nx-ksteer-reason: %s\r\n"
			 "content-length: %zu\r\nconnection: close\r\n\r\n%s\n",
			 why, strlen(why) + 1, why);

	if (http && send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		pr_debug("shim: refusing: %s\n", strerror(errno));
	close(fd);
}

static void conn_timer(struct timer *t, uint64_t now);

void http_accept(struct shim *s, struct listener *l)
{
	struct sockaddr_in6 peer;
	socklen_t pl = sizeof(peer);
	struct ks_peer_key key = {0};
	struct ks_origdst od;
	const struct c_frontend *fe;
	struct src_count *src;
	struct conn *c;
	int fd = accept4(l->fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			s->st.accept_no_fd++; /* out of descriptors: pause, not spin */
			shim_listener_pause(s, l);
		}
		return;
	}
	sock_nodelay(fd);
	memcpy(&key.addr, &peer.sin6_addr, 16);
	key.port = peer.sin6_port;
	/* sockops wrote what this client dialled, keyed by its own end */
	if (bpf_map_lookup_elem(s->origdst_fd, &key, &od)) {
		char a[INET6_ADDRSTRLEN];

		pr_warn("shim: no original destination for %s:%u\n",
			inet_ntop(AF_INET6, &peer.sin6_addr, a, sizeof(a)), ntohs(peer.sin6_port));
		close(fd);
		return;
	}
	bpf_map_delete_elem(s->origdst_fd, &key);
	fe = plan_frontend(s->plan, &od.addr, ntohs(od.port));
	if (fe && !fe->http) {
		tun_outbound(s, fd, &peer, &od.addr, ntohs(od.port), fe);
		return;
	}
	if (s->n_conns >= s->lim.max_conns) {
		s->st.refused_agent_limit++;
		refuse(fd, true, "the node agent's connection limit is reached");
		return;
	}
	src = src_get(s, (const struct ks_addr *)&peer.sin6_addr, true);
	if (src && src->n >= s->lim.max_conns_per_pod) {
		s->st.refused_pod_limit++;
		refuse(fd, true, "this pod's connection limit is reached");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	if (src && !src->n++)
		s->src_live++;
	s->n_conns++;
	c->h.fn = conn_event;
	c->s = s;
	c->cfd = fd;
	memcpy(&c->peer, &peer.sin6_addr, 16);
	c->peer_port = ntohs(peer.sin6_port);
	c->orig = od.addr;
	c->orig_port = ntohs(od.port);
	c->last_io = now_ms();
	c->tm.fn = conn_timer;
	h1_init(&c->rq, false);
	h1_init(&c->rs, true);
	LIST_PUSH(s->conns, c);
	conn_arm(c); /* reading, and its idle deadline set */
}

/* Connections a request or a tunnel holds past a limit: the tick's scan. */
static void conn_timeouts(struct shim *s, struct conn *c, uint64_t now)
{
	const struct shim_limits *l = &s->lim;

	/* each wait is over when its deadline is reached, as conn_deadline computes it */
	if (c->lingering) {
		if (now >= c->linger_until)
			conn_kill(c);
	} else if (c->req == REQ_HEAD && c->head_start && now - c->head_start >= l->head_ms) {
		s->st.head_timeouts++;
		reply_error(c, 408, "Request Timeout", "the request head did not arrive in time");
	} else if (c->req == REQ_HEAD && !c->head_start && now - c->last_io >= l->idle_ms) {
		s->st.idle_closed++;
		conn_kill(c);
	} else if (c->req != REQ_HEAD && now - c->last_io >= (c->req == REQ_TUNNEL
								    ? l->idle_ms
								    : l->stream_idle_ms)) {
		s->st.stream_timeouts++;
		if (c->resp_sent || c->req == REQ_TUNNEL) {
			conn_kill(c);
		} else {
			c->tel.flags = "SI";
			reply_error(c, c->req == REQ_DONE ? 504 : 408,
				    c->req == REQ_DONE ? "Gateway Timeout" : "Request Timeout",
				    "stream idle timeout");
		}
	}
}

/* A connection's deadline passed: whichever of its waits is over acts, then it steps on. */
static void conn_timer(struct timer *t, uint64_t now)
{
	struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, tm));
	struct shim *s = c->s;

	if (c->dead)
		return;
	if (c->hold_until && c->hold_until <= now && c->resp != RESP_DONE &&
	    !c->lingering) { /* an injected delay is over */
		route_start(c);
	} else if (c->up && !c->up->reused &&
		   (!c->up->sd.connected || (c->up->tls && !c->up->tls_done)) &&
		   now >= c->up->deadline) {
		upstream_failed(c, "upstream connect timeout");
	} else if (c->try_deadline && now >= c->try_deadline && c->resp == RESP_HEAD &&
		   !c->resp_sent && c->up) {
		/* this try took too long: a 504 of the endpoint, tried again when retryOn takes
		 * 504s and the request can be sent again */
		health_result(c, 504);
		if (c->tries_left && c->req == REQ_DONE && c->replay.len &&
		    retry_answer_wanted(c, 504))
			retry_answer(c);
		else {
			c->tel.flags = "UT";
			reply_error(c, 504, "Gateway Timeout", "upstream per-try timeout");
		}
	} else if (c->deadline && now >= c->deadline && c->resp != RESP_DONE &&
		   c->resp != RESP_TUNNEL) {
		if (c->resp_sent) {
			conn_kill(c);
			return;
		}
		health_result(c, 504);
		c->tel.flags = "UT";
		reply_error(c, 504, "Gateway Timeout", "upstream request timeout");
	} else {
		conn_timeouts(s, c, now);
	}
	if (!c->dead)
		conn_step(c); /* acts on what changed, and sets the next deadline */
}


void http_close_all(struct shim *s)
{
	while (s->conns)
		conn_kill(s->conns);
	while (s->pool) {
		struct up *u = s->pool;

		pool_unlink(s, u);
		up_drop(u);
	}
	while (s->mirrors)
		mirror_kill(s->mirrors, false);
	free(s->src);
	s->src = NULL;
}
