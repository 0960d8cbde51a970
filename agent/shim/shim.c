// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Outbound: one request at a time per client connection. Read and parse the
 * head (http-parser), pick the route and a destination, take a pooled
 * upstream connection or open one (plain, or ISTIO_MUTUAL: TLS with the
 * client pod's identity and an outbound_ SNI, through the destination node's
 * inbound port with a PROXY header naming the pod, or straight to a gateway),
 * send the head and the body as received, relay the response until the
 * parser says it is complete, then take the next request, which may go
 * elsewhere.
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
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../policy/decode.h"
#include "shim_int.h"

#define SHIM_MAX_HEAD (64 * 1024) /* a bigger request head gets 431 */
#define SHIM_MAX_HEADERS 128
#define SHIM_BUF (64 * 1024)
#define SHIM_MAX_TRIES 8       /* endpoints remembered per request for retries */
#define SHIM_DEFAULT_RETRIES 2 /* Istio's default: 2 retries, connect-failure among them */
#define SHIM_CONNECT_MS 10000  /* Istio's default connectTimeout */
#define SHIM_POOL_MAX 512
#define SHIM_POOL_IDLE_MS 60000
#define SHIM_TICK_MS 200

/* An upstream connection: in use by one conn, or idle in the pool. */
struct up {
	struct evh h; /* while idle in the pool */
	struct shim *s;
	struct side sd;
	char key[512]; /* endpoint, SNI and client identity: who may reuse it */
	uint64_t id_gen; /* the client certificate's generation */
	bool tls, tls_done, reused, pooled;
	uint64_t idle_since, deadline;
	struct up *next;
};

struct ep {
	struct ks_addr addr, node;
	uint16_t port;
	bool has_node;
	bool same_node; /* mutual TLS to a pod of this very node: the in-process fast path */
};

struct conn {
	struct evh h;
	struct shim *s;
	struct conn *prev, *next;
	int cfd;
	struct up *up;
	struct ks_addr peer;
	uint16_t peer_port;
	struct ks_addr orig;
	uint16_t orig_port;
	http_parser rq, rs;
	struct buf in; /* client bytes not yet taken by the request parser */
	struct buf to_up, to_client;
	struct buf replay; /* a complete request without body: resent if a reused upstream died */
	/* the request head being read */
	struct buf head; /* url, header names and values, NUL-separated */
	size_t url_off, url_len;
	struct {
		size_t name, name_len, value, value_len;
	} hdr[SHIM_MAX_HEADERS];
	unsigned nh;
	bool in_value, head_done, req_done, resp_done, close_after, client_eof, dead;
	bool after_lf; /* the head's last byte seen was LF: a following SP/HT is obs-fold */
	bool routed;   /* this request's head went through route_request */
	size_t resp_bytes;
	uint64_t deadline; /* the route's timeout; 0: none */
	uint64_t timeout;  /* the route's timeout, counted from when the upstream starts */
	uint64_t per_try_ms, try_deadline; /* retries.perTryTimeout, and this try's end */
	uint64_t hold_until; /* an injected delay: the upstream starts then */
	int abort_status;    /* an injected abort: answered with this status instead */
	struct buf local;    /* a redirect or direct response, ready to send instead of upstream */
	/* answers retried (retryOn): any 5xx, gateway errors (502-504), listed codes */
	bool retry_5xx, retry_gw;
	uint16_t retry_codes[8];
	unsigned n_retry_codes;
	struct {             /* the destination's outlierDetection, copied */
		bool on;
		uint32_t max_5xx, max_gw, max_pct;
		uint64_t base_ms;
	} od;
	/* the route's response header operations: names dropped (NUL-separated), lines added;
	 * the response head is held until complete when there are any */
	struct buf resp_drop, resp_add, resp_head;
	bool resp_head_seen, resp_head_done;
	/* where this request may go: copied, as a reload may free the plan meanwhile */
	struct ep eps[SHIM_MAX_TRIES];
	unsigned n_eps, next_ep, tries_left;
	bool tls;
	char sni[300], id_ns[128], id_sa[128];
	struct peer_rule rule;
};

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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

/* ---- upstream connections and their pool ---- */

static void up_free(void *p)
{
	struct up *u = p;

	side_close(&u->sd);
	free(u);
}

static void up_drop(struct up *u)
{
	if (u->sd.fd >= 0) {
		close(u->sd.fd); /* out of the epoll set now; the memory after this batch */
		u->sd.fd = -1;
	}
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
}

/* An idle pooled connection spoke: a close, a reset, or bytes nobody asked for. */
static void pool_event(struct evh *h, uint32_t events)
{
	struct up *u = (struct up *)h;
	char tmp[512];
	ssize_t n;

	(void)events;
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
	u->h.fn = pool_event;
	u->pooled = true;
	u->idle_since = now_ms();
	u->next = s->pool;
	s->pool = u;
	s->n_pool++;
	ep_set(s, u->sd.fd, EPOLLIN | EPOLLRDHUP, &u->h, false);
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

	buf_free(&c->in);
	buf_free(&c->to_up);
	buf_free(&c->to_client);
	buf_free(&c->replay);
	buf_free(&c->head);
	buf_free(&c->local);
	buf_free(&c->resp_drop);
	buf_free(&c->resp_add);
	buf_free(&c->resp_head);
	free(c);
}

static void conn_kill(struct conn *c)
{
	if (c->dead)
		return;
	if (c->cfd >= 0)
		close(c->cfd);
	c->cfd = -1;
	if (c->up)
		up_drop(c->up);
	c->up = NULL;
	c->dead = true;
	LIST_UNLINK(c->s->conns, c);
	shim_defer_free(c->s, c, conn_free);
}

/* An error response of the shim's own; the connection closes after it. */
/* ---- outlier detection, as Envoy does it for Istio's DestinationRule ---- */

static unsigned health_slot(const struct shim *s, const struct ks_addr *a, uint16_t port)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p = (const unsigned char *)a;

	for (size_t i = 0; i < sizeof(*a); i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	h = (h ^ port) * 0x100000001b3ULL;
	return (unsigned)(h & (s->health_cap - 1));
}

/* An endpoint's record; created when asked (NULL when absent or out of memory). */
static struct ep_health *health_get(struct shim *s, const struct ks_addr *a, uint16_t port,
				    bool create)
{
	unsigned i;

	if (create && (s->health_n + 1) * 2 > s->health_cap) { /* grow, rehash */
		unsigned cap = s->health_cap ? s->health_cap * 2 : 64;
		struct ep_health *old = s->health, *nv = calloc(cap, sizeof(*nv));
		unsigned old_cap = s->health_cap;

		if (!nv)
			return NULL;
		s->health = nv;
		s->health_cap = cap;
		for (unsigned k = 0; k < old_cap; k++)
			if (old[k].used) {
				for (i = health_slot(s, &old[k].a, old[k].port); nv[i].used;
				     i = (i + 1) & (cap - 1))
					;
				nv[i] = old[k];
			}
		free(old);
	}
	if (!s->health_cap)
		return NULL;
	for (i = health_slot(s, a, port); s->health[i].used; i = (i + 1) & (s->health_cap - 1))
		if (s->health[i].port == port && !memcmp(&s->health[i].a, a, sizeof(*a)))
			return &s->health[i];
	if (!create)
		return NULL;
	s->health[i].used = true;
	s->health[i].a = *a;
	s->health[i].port = port;
	s->health_n++;
	return &s->health[i];
}

static bool health_ejected(struct shim *s, const struct ks_addr *a, uint16_t port, uint64_t now)
{
	const struct ep_health *h = health_get(s, a, port, false);

	return h && h->ejected_until > now;
}

/*
 * The answer of the endpoint this request last went to: a 5xx (502, 503 and
 * 504 are gateway errors, as a failed connect, reset or timeout is) counts
 * towards its ejection, anything else clears its count. Ejected for
 * baseEjectionTime times the ejections so far (at most 300 s more).
 */
static void health_result(struct conn *c, int status)
{
	struct shim *s = c->s;
	bool err5 = status >= 500, gw = status == 502 || status == 503 || status == 504;
	const struct ep *e;
	struct ep_health *h;
	uint64_t t;

	if (!c->od.on || !c->n_eps)
		return;
	e = &c->eps[(c->next_ep + c->n_eps - 1) % c->n_eps];
	h = health_get(s, &e->addr, e->port, err5);
	if (!h)
		return;
	if (!err5) {
		h->errors = h->gw_errors = 0;
		return;
	}
	h->errors++;
	h->gw_errors = gw ? h->gw_errors + 1 : 0;
	if ((c->od.max_5xx && h->errors >= c->od.max_5xx) ||
	    (c->od.max_gw && h->gw_errors >= c->od.max_gw)) {
		char a[INET6_ADDRSTRLEN];

		h->ejections++;
		t = c->od.base_ms * h->ejections;
		if (t > c->od.base_ms + 300000)
			t = c->od.base_ms + 300000;
		h->ejected_until = now_ms() + t;
		h->errors = h->gw_errors = 0;
		s->st.ejections++;
		pr_info("outlier: %s:%u ejected for %lu ms (%u in a row answered %d)\n",
			addr_str(&e->addr, a, sizeof(a)), e->port, (unsigned long)t,
			c->od.max_gw && !c->od.max_5xx ? c->od.max_gw : c->od.max_5xx, status);
	}
}

static void reply_error(struct conn *c, int status, const char *reason, const char *detail)
{
	char msg[768];
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\nx-ksteer-reason: %.300s\r\n"
			 "content-length: %zu\r\nconnection: close\r\n\r\n%.300s\n",
			 status, reason, detail, strlen(detail) > 300 ? 301 : strlen(detail) + 1,
			 detail);

	buf_put(&c->to_client, msg, (size_t)n);
	c->s->st.responses_local++;
	c->close_after = true;
	c->resp_done = true;
	c->req_done = true;
	if (c->up) {
		up_drop(c->up);
		c->up = NULL;
	}
}

/*
 * An injected abort, answered as Envoy's fault filter answers it; the
 * connection stays open when the whole request was read and the client keeps
 * it alive.
 */
static void reply_fault(struct conn *c)
{
	char msg[256];
	bool keep = c->req_done && !c->close_after;
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: 18\r\n%s\r\n"
			 "fault filter abort",
			 c->abort_status, c->abort_status < 500 ? "Client Error" : "Server Error",
			 keep ? "" : "connection: close\r\n");

	c->to_up.len = 0;
	buf_put(&c->to_client, msg, (size_t)n);
	c->s->st.responses_local++;
	c->s->st.faults_aborted++;
	c->close_after = !keep;
	c->resp_done = true;
	c->req_done = true;
}

/* Whether a fault applies to this request: percentage (0-100, fractions too), else the
 * deprecated integer percent, else every request. */
static bool fault_hits(const struct obj *o, const struct percent *pct,
		       int64_t percent)
{
	double want = pct ? pct->value : obj_has(o, "percent") ? (double)percent : 100.0;
	uint32_t draw;

	if (getrandom(&draw, sizeof(draw), 0) != sizeof(draw))
		draw = (uint32_t)rand();
	return (double)draw / 4294967296.0 * 100.0 < want;
}

/* ---- request parsing ---- */

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct conn *c = p->data;

	if (!c->url_len)
		c->url_off = c->head.len;
	c->url_len += n;
	return buf_put(&c->head, at, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct conn *c = p->data;

	if (c->in_value || !c->nh) { /* a new header */
		if (c->nh == SHIM_MAX_HEADERS)
			return -1;
		if (c->nh || c->url_len)
			buf_put(&c->head, "", 1);
		c->hdr[c->nh].name = c->head.len;
		c->hdr[c->nh].name_len = 0;
		c->hdr[c->nh].value_len = 0;
		c->nh++;
		c->in_value = false;
	}
	c->hdr[c->nh - 1].name_len += n;
	return buf_put(&c->head, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct conn *c = p->data;

	/* obs-fold (RFC 9112 5.2) and control bytes: a proxy must refuse them */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)at[i] < 0x20 && at[i] != '\t')
			return -1;
	if (!c->in_value) {
		buf_put(&c->head, "", 1);
		c->hdr[c->nh - 1].value = c->head.len;
		c->in_value = true;
	}
	c->hdr[c->nh - 1].value_len += n;
	return buf_put(&c->head, at, n);
}

static int on_headers_complete(http_parser *p)
{
	struct conn *c = p->data;

	c->head_done = true;
	http_parser_pause(p, 1); /* route before any body byte is taken */
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;

	c->req_done = true;
	http_parser_pause(p, 1); /* the next request waits for this response */
	return 0;
}

static int on_response_headers(http_parser *p)
{
	struct conn *c = p->data;

	c->resp_head_seen = true;
	health_result(c, (int)p->status_code);
	return 0;
}

static int on_response_complete(http_parser *p)
{
	struct conn *c = p->data;

	c->resp_done = true;
	return 0;
}

/* ---- routing a request ---- */


static void upstream_failed(struct conn *c, const char *why);
static void route_start(struct conn *c);
static void shim_hold(struct shim *s, uint64_t t);
static void conn_step(struct conn *c);

/*
 * Mutual TLS to a pod of this node would reach our own inbound side: it is
 * skipped and the pod gets its bytes as the inbound would give them, after
 * the checks both ends would make (the server's identity against the rule;
 * the client's is ours to know). 0, or -1 with rule->why set.
 */
int shim_same_node_check(const struct shim *s, struct peer_rule *rule, const struct ks_addr *pod_addr)
{
	const struct c_pod *pod = plan_pod(s->plan, pod_addr);
	char spiffe[300];

	if (!pod) {
		snprintf(rule->why, sizeof(rule->why), "not a pod of this node");
		return -1;
	}
	snprintf(spiffe, sizeof(spiffe), "spiffe://%s/ns/%s/sa/%s", s->ids.trust_domain, pod->ns,
		 pod->sa);
	return peer_rule_check(rule, spiffe);
}

/* FNV-1a over the subjectAltNames a peer must present. */
static uint64_t rule_hash(const struct peer_rule *r)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (unsigned i = 0; i < r->n_sans; i++)
		for (const char *p = r->sans[i];; p++) {
			h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
			if (!*p)
				break;
		}
	return h;
}

/*
 * Connects sd towards a mesh endpoint: through its node's inbound port, a
 * PROXY v2 header naming it (and the client src) first, when mutual TLS goes
 * to a pod of another node; else directly (a gateway, a plain or same-node
 * pod). 0, or -errno.
 */
int shim_connect_ep(const struct shim *s, struct side *sd, const struct c_endpoint *e,
		    bool via_node, const struct ks_addr *src, uint16_t sport)
{
	unsigned char pp[64];
	size_t n;
	int err;

	if (!via_node || !e->has_node)
		return side_connect(sd, &e->ka, e->port, s->o.mark);
	n = proxy_v2_build(pp, src, sport, &e->ka, e->port);
	err = side_connect(sd, &e->node, s->o.in_port, s->o.mark);
	if (!err)
		buf_put(&sd->out, pp, n);
	return err;
}

/* The next remembered endpoint of this request: a pooled connection to it, or a new one. */
static int upstream_start(struct conn *c)
{
	struct shim *s = c->s;
	unsigned i = c->next_ep++ % c->n_eps;
	const struct ep *e = &c->eps[i];
	const struct ids_entry *id = NULL;
	char a[INET6_ADDRSTRLEN], key[512];
	struct up *u;
	int err;

	if (c->tls && e->same_node) {
		if (shim_same_node_check(s, &c->rule, &e->addr)) {
			c->tries_left--;
			return -EACCES;
		}
	} else if (c->tls) {
		id = ids_get(&s->ids, c->id_ns, c->id_sa);
		if (!id)
			return -ENOKEY;
	}
	inet_ntop(AF_INET6, &e->addr, a, sizeof(a));
	/* the rule is in the key: a connection verified under other subjectAltNames is not this one */
	snprintf(key, sizeof(key), "%s|%u|%s|%s/%s|%016" PRIx64, a, e->port,
		 !c->tls ? "" : e->same_node ? "=this node" : c->sni, c->tls ? c->id_ns : "",
		 c->tls ? c->id_sa : "", c->tls ? rule_hash(&c->rule) : 0);
	c->tries_left--;
	c->try_deadline = c->per_try_ms ? now_ms() + c->per_try_ms : 0;
	u = pool_take(s, key, id ? id->gen : 0);
	if (u) {
		s->st.pool_reused++;
		c->up = u;
		ep_set(s, u->sd.fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, &c->h, false);
		return 0;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->s = s;
	snprintf(u->key, sizeof(u->key), "%s", key);
	{
		struct c_endpoint ce = { .ka = e->addr, .port = e->port, .has_node = e->has_node,
					 .node = e->node };

		err = shim_connect_ep(s, &u->sd, &ce, c->tls && !e->same_node, &c->peer,
				      c->peer_port);
		s->st.same_node += c->tls && e->same_node;
	}
	if (err) {
		free(u);
		return err;
	}
	if (c->tls && !e->same_node) {
		u->tls = true;
		u->id_gen = id->gen;
		if (side_tls(&u->sd, id->client, true, c->sni, NULL, 0)) {
			up_free(u);
			return -ENOMEM;
		}
		u->sd.rule = c->rule;
	}
	u->deadline = now_ms() + SHIM_CONNECT_MS;
	c->up = u;
	ep_set(s, u->sd.fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, &c->h, true);
	return 0;
}

void shim_sni(const struct shim *s, const struct c_dest *d, char *out, size_t len)
{
	const char *h = d->host;
	size_t hl = strlen(h);

	if (s->o.sni_local && hl > 7 && !strcmp(h + hl - 7, ".global"))
		snprintf(out, len, "outbound_.%u_.%s_.%.*s.svc.cluster.local", d->port,
			 d->subset ? d->subset : "", (int)(hl - 7), h);
	else
		snprintf(out, len, "outbound_.%u_.%s_.%s", d->port, d->subset ? d->subset : "", h);
}

/*
 * retryOn, as Istio passes it to Envoy: "5xx", "gateway-error" and status
 * codes retry answers ("retriable-status-codes" is the listed ones); without
 * it, Istio's default: 503. Connect failures and resets are always retried.
 */
static void retry_on_parse(struct conn *c, const char *on)
{
	char buf[256], *save = NULL;

	c->retry_5xx = c->retry_gw = false;
	c->n_retry_codes = 0;
	if (!on) {
		c->retry_codes[c->n_retry_codes++] = 503;
		return;
	}
	snprintf(buf, sizeof(buf), "%s", on);
	for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		if (!strcmp(t, "5xx"))
			c->retry_5xx = true;
		else if (!strcmp(t, "gateway-error"))
			c->retry_gw = true;
		else if (atoi(t) >= 100 && atoi(t) <= 599 && c->n_retry_codes < 8)
			c->retry_codes[c->n_retry_codes++] = (uint16_t)atoi(t);
	}
}

static bool retry_answer_wanted(const struct conn *c, unsigned status)
{
	if (c->retry_5xx && status >= 500 && status <= 599)
		return true;
	if (c->retry_gw && status >= 502 && status <= 504)
		return true;
	for (unsigned i = 0; i < c->n_retry_codes; i++)
		if (c->retry_codes[i] == status)
			return true;
	return false;
}

/* Does the request carry a body (its head alone does not complete it)? */
static bool has_body(const struct conn *c)
{
	return (c->rq.flags & F_CHUNKED) ||
	       (c->rq.content_length != 0 && c->rq.content_length != ULLONG_MAX);
}

/*
 * A route's redirect or direct response, as Envoy answers them for Istio,
 * made ready in c->local; the connection stays open when the request has no
 * body and the client keeps it alive.
 */
static void local_response(struct conn *c, const struct http_route *hr,
			   const struct http_request *rq)
{
	bool keep = http_should_keep_alive(&c->rq) && !has_body(c);
	const char *conn_hdr = keep ? "" : "connection: close\r\n";
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
	c->close_after = !keep;
}

/* A request header list as it goes upstream: header operations applied (remove, set, add). */
static bool header_removed(const struct header_ops *ops, const char *name)
{
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
		header_put(b, ops->set.v[i].k, ops->set.v[i].v ? ops->set.v[i].v : "");
	for (uint32_t i = 0; ops && i < ops->add.n; i++)
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
	for (size_t o = 0; o < c->resp_drop.len; o += strlen(c->resp_drop.p + o) + 1)
		if (strlen(c->resp_drop.p + o) == len && !strncasecmp(c->resp_drop.p + o, name, len))
			return true;
	return false;
}

/* The held response head, complete: out with the operations applied, then what followed it. */
static void resp_head_out(struct conn *c)
{
	const char *p = c->resp_head.p, *end = p + c->resp_head.len;
	const char *crlf = memmem(p, c->resp_head.len, "\r\n\r\n", 4);
	const char *lf = memmem(p, c->resp_head.len, "\n\n", 2);
	const char *term = crlf && (!lf || crlf < lf) ? crlf : lf;
	size_t tl = term == crlf ? 4 : 2;
	bool first = true;

	if (!term) { /* the parser said complete: cannot happen; pass it as it came */
		buf_put(&c->to_client, p, c->resp_head.len);
		return;
	}
	for (const char *l = p; l < term;) {
		const char *nl = memchr(l, '\n', (size_t)(term - l));
		size_t len = (size_t)((nl ? nl : term) - l);

		if (len && l[len - 1] == '\r')
			len--;
		if (first || !resp_dropped(c, l, strcspn(l, ":") < len ? strcspn(l, ":") : len)) {
			buf_put(&c->to_client, l, len);
			buf_put(&c->to_client, "\r\n", 2);
		}
		first = false;
		l = nl ? nl + 1 : term;
	}
	buf_put(&c->to_client, c->resp_add.p, c->resp_add.len);
	buf_put(&c->to_client, "\r\n", 2);
	buf_put(&c->to_client, term + tl, (size_t)(end - term - tl));
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
	m->s->st.mirror_failed += failed;
	if (m->sd.fd >= 0)
		close(m->sd.fd);
	m->sd.fd = -1;
	LIST_UNLINK(m->s->mirrors, m);
	shim_defer_free(m->s, m, mirror_free);
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
	const struct c_dest *d = &mi->d;
	const struct c_endpoint *e = NULL;
	const struct c_pod *me = plan_pod(s->plan, &c->peer);
	const struct ids_entry *id = NULL;
	struct peer_rule rule = {0};
	uint32_t n_ip = 0;
	bool tls = d->tls_mode && !strcmp(d->tls_mode, "ISTIO_MUTUAL"), same = false;
	struct mirror *m;
	int err;

	for (uint32_t k = 0; k < d->n_eps; k++)
		n_ip += d->eps[k].is_ip;
	if (!n_ip || (d->tls_mode && strcmp(d->tls_mode, "DISABLE") && !tls)) {
		s->st.mirror_failed++;
		return;
	}
	draw %= n_ip;
	for (uint32_t k = 0; k < d->n_eps; k++)
		if (d->eps[k].is_ip && !draw--) {
			e = &d->eps[k];
			break;
		}
	if (tls) {
		rule.trust_domain = s->ids.trust_domain;
		for (uint32_t k = 0; d->tls_sans && k < d->tls_sans->n && k < PEER_MAX_SANS; k++)
			snprintf(rule.sans[rule.n_sans++], sizeof(rule.sans[0]), "%s", d->tls_sans->v[k]);
		same = me && me->has_node && e->has_node && s->o.inbound &&
		       !memcmp(&me->node, &e->node, sizeof(e->node));
		if ((same && shim_same_node_check(s, &rule, &e->ka)) ||
		    (!same && !(me && s->ids.have_ca && (id = ids_get(&s->ids, me->ns, me->sa))))) {
			s->st.mirror_failed++;
			return;
		}
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return;
	m->h.fn = mirror_event;
	m->s = s;
	err = shim_connect_ep(s, &m->sd, e, tls && !same, &c->peer, c->peer_port);
	if (err) {
		free(m);
		s->st.mirror_failed++;
		return;
	}
	if (tls && !same) {
		char sni[300];

		shim_sni(s, d, sni, sizeof(sni));
		m->sd.rule = rule;
		if (side_tls(&m->sd, id->client, true, sni, NULL, 0)) {
			mirror_free(m); /* closes the socket too */
			return;
		}
		m->tls = true;
	}
	shadow_head(&c->to_up, &m->req);
	m->deadline = now_ms() + SHIM_CONNECT_MS;
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

static void route_request(struct conn *c)
{
	struct http_header hs[SHIM_MAX_HEADERS];
	struct http_request rq = {0};
	const struct c_frontend *fe = plan_frontend(c->s->plan, &c->orig, c->orig_port);
	const struct c_route *r;
	const struct c_dest *d;
	const struct cors_policy *cp;
	const char *origin = NULL;
	bool cors_ok = false;
	uint32_t draw[2];
	char line[64];
	int n;

	c->s->st.requests++;
	c->routed = true;
	buf_put(&c->head, "", 1); /* terminates the last value (or the url) */
	for (unsigned i = 0; i < c->nh; i++) {
		hs[i].name = c->head.p + c->hdr[i].name;
		hs[i].value = c->head.p + c->hdr[i].value;
		c->head.p[c->hdr[i].name + c->hdr[i].name_len] = 0;
		c->head.p[c->hdr[i].value + c->hdr[i].value_len] = 0;
		if (!strcasecmp(hs[i].name, "host"))
			rq.authority = hs[i].value;
	}
	c->head.p[c->url_off + c->url_len] = 0;
	rq.method = http_method_str((enum http_method)c->rq.method);
	rq.path = c->head.p + c->url_off;
	rq.scheme = "http";
	rq.headers = hs;
	rq.n_headers = c->nh;
	rq.port = c->orig_port;
	if (!fe) {
		reply_error(c, 503, "Service Unavailable", "no frontend for this destination");
		return;
	}
	r = route_match(fe, &rq, &c->s->rc);
	if (!r) {
		reply_error(c, 404, "Not Found", "no route matched");
		return;
	}
	/* CORS before faults, as Istio orders the filters: preflights answered here */
	cp = r->http ? r->http->corsPolicy : NULL;
	for (unsigned i = 0; cp && i < c->nh; i++)
		if (!strcasecmp(hs[i].name, "origin"))
			origin = hs[i].value;
	cors_ok = cp && cors_allows(cp, origin, &c->s->rc);
	if (cp && origin && !strcmp(rq.method, "OPTIONS")) {
		bool preflight = false;

		for (unsigned i = 0; i < c->nh; i++)
			preflight |= !strcasecmp(hs[i].name, "access-control-request-method");
		if (preflight && (cors_ok || (cp->unmatchedPreflights &&
					      !strcmp(cp->unmatchedPreflights, "IGNORE")))) {
			bool keep = http_should_keep_alive(&c->rq) && !has_body(c);

			c->local.len = 0;
			buf_put(&c->local, "HTTP/1.1 200 OK\r\n", strlen("HTTP/1.1 200 OK\r\n"));
			header_put(&c->local, "content-length", "0");
			if (cors_ok)
				cors_headers(&c->local, cp, origin, true);
			if (!keep)
				header_put(&c->local, "connection", "close");
			buf_put(&c->local, "\r\n", 2);
			c->close_after = !keep;
			c->req_done = !has_body(c);
			c->hold_until = 0;
			c->abort_status = 0;
			route_start(c);
			return;
		}
	}
	/* fault injection, as Envoy's fault filter does it for Istio: delay, then abort */
	c->hold_until = 0;
	c->abort_status = 0;
	if (r->http && r->http->fault) {
		const struct fault_delay *fd = r->http->fault->delay;
		const struct fault_abort *fa = r->http->fault->abort;

		if (fd && fd->fixedDelay > 0 && fault_hits(&fd->o, fd->percentage, fd->percent))
			c->hold_until = now_ms() + (uint64_t)fd->fixedDelay;
		if (fa && fa->httpStatus >= 200 && fa->httpStatus <= 599 &&
		    fault_hits(&fa->o, fa->percentage, 0))
			c->abort_status = (int)fa->httpStatus;
		c->s->st.faults_delayed += c->hold_until != 0;
	}
	if (r->http && (r->http->redirect || r->http->directResponse)) {
		local_response(c, r->http, &rq);
		c->req_done = !has_body(c);
		if (c->hold_until)
			shim_hold(c->s, c->hold_until);
		else
			route_start(c);
		return;
	}
	if (getrandom(draw, sizeof(draw), 0) != sizeof(draw))
		draw[0] = draw[1] = (uint32_t)rand();
	d = route_pick_dest(r, draw[0]);
	if (!d || !d->n_eps) {
		reply_error(c, 503, "Service Unavailable",
			    d && d->problem ? d->problem : "no healthy upstream");
		return;
	}
	c->tls = d->tls_mode && !strcmp(d->tls_mode, "ISTIO_MUTUAL");
	if (d->tls_mode && strcmp(d->tls_mode, "DISABLE") && !c->tls) {
		reply_error(c, 503, "Service Unavailable",
			    "only ISTIO_MUTUAL and DISABLE TLS modes are originated by this shim");
		return;
	}
	const struct c_pod *me = NULL;

	if (c->tls) {
		me = plan_pod(c->s->plan, &c->peer);

		if (!me) {
			reply_error(c, 503, "Service Unavailable",
				    "the client is not a known pod: no workload identity for mTLS");
			return;
		}
		if (!c->s->ids.have_ca) {
			reply_error(c, 503, "Service Unavailable",
				    "ISTIO_MUTUAL needs a CA: the agent runs without --ca");
			return;
		}
		snprintf(c->id_ns, sizeof(c->id_ns), "%s", me->ns);
		snprintf(c->id_sa, sizeof(c->id_sa), "%s", me->sa);
		shim_sni(c->s, d, c->sni, sizeof(c->sni));
		memset(&c->rule, 0, sizeof(c->rule));
		c->rule.trust_domain = c->s->ids.trust_domain;
		for (uint32_t k = 0; d->tls_sans && k < d->tls_sans->n && k < PEER_MAX_SANS; k++)
			snprintf(c->rule.sans[c->rule.n_sans++], sizeof(c->rule.sans[0]), "%s",
				 d->tls_sans->v[k]);
	}
	c->od.on = d->outlier != NULL;
	if (c->od.on) {
		const struct outlier_detection *o = d->outlier;

		c->od.max_5xx = (uint32_t)(obj_has(&o->o, "consecutive5xxErrors") ? o->consecutive5xxErrors
					   : obj_has(&o->o, "consecutiveErrors")  ? o->consecutiveErrors
										  : 5);
		c->od.max_gw = (uint32_t)o->consecutiveGatewayErrors;
		c->od.base_ms = obj_has(&o->o, "baseEjectionTime") ? (uint64_t)o->baseEjectionTime : 30000;
		c->od.max_pct = obj_has(&o->o, "maxEjectionPercent") ? (uint32_t)o->maxEjectionPercent : 10;
	}
	/* endpoints from a random start; a failed connect moves to the next one. Ejected ones
	 * are left out, up to maxEjectionPercent of them (one at least, as Envoy) */
	c->n_eps = 0;
	uint32_t may_skip = 0, n_ip = 0;
	uint64_t now = now_ms();

	if (c->od.on) {
		for (uint32_t k = 0; k < d->n_eps; k++)
			n_ip += d->eps[k].is_ip;
		may_skip = n_ip * c->od.max_pct / 100;
		if (!may_skip)
			may_skip = 1;
	}
	for (uint32_t k = 0; k < d->n_eps && c->n_eps < SHIM_MAX_TRIES; k++) {
		const struct c_endpoint *e = &d->eps[(draw[1] + k) % d->n_eps];

		if (!e->is_ip)
			continue;
		if (may_skip && health_ejected(c->s, &e->ka, e->port, now)) {
			may_skip--;
			continue;
		}
		c->eps[c->n_eps].addr = e->ka;
		c->eps[c->n_eps].port = e->port;
		c->eps[c->n_eps].has_node = e->has_node;
		c->eps[c->n_eps].same_node = me && me->has_node && e->has_node && c->s->o.inbound &&
					     !memcmp(&me->node, &e->node, sizeof(e->node));
		c->eps[c->n_eps++].node = e->node;
	}
	c->next_ep = 0;
	c->tries_left =
	    1 + (r->http && r->http->retries && obj_has(&r->http->retries->o, "attempts")
		     ? (unsigned)r->http->retries->attempts
		     : SHIM_DEFAULT_RETRIES);
	retry_on_parse(c, r->http && r->http->retries ? r->http->retries->retryOn : NULL);
	c->per_try_ms = r->http && r->http->retries && r->http->retries->perTryTimeout > 0
			    ? (uint64_t)r->http->retries->perTryTimeout
			    : 0;
	c->try_deadline = 0;
	c->timeout = r->http && r->http->timeout > 0 ? (uint64_t)r->http->timeout : 0;
	c->deadline = 0;
	c->resp_bytes = 0;
	if (!c->n_eps && !c->abort_status) {
		reply_error(c, 503, "Service Unavailable",
			    c->od.on ? "no healthy upstream: every endpoint ejected by outlier detection"
				     : "no endpoint with an address");
		return;
	}
	/* the head again: request line and headers, with the route's rewrite and header
	 * operations (the destination's, then the route's) */
	{
		const struct http_rewrite *rw = r->http ? r->http->rewrite : NULL;
		const struct header_ops *ops[2] = {
			d->src && ((const struct route_destination *)d->src)->headers
			    ? ((const struct route_destination *)d->src)->headers->request
			    : NULL,
			r->http && r->http->headers ? r->http->headers->request : NULL };

		n = snprintf(line, sizeof(line), " HTTP/%u.%u\r\n", c->rq.http_major,
			     c->rq.http_minor);
		buf_put(&c->to_up, rq.method, strlen(rq.method));
		buf_put(&c->to_up, " ", 1);
		if (rw && rw->uri)
			rewrite_path(&c->to_up, rw->uri, route_block(r, &rq, &c->s->rc), rq.path);
		else
			buf_put(&c->to_up, rq.path, strlen(rq.path));
		buf_put(&c->to_up, line, (size_t)n);
		for (unsigned i = 0; i < c->nh; i++) {
			bool host = !strcasecmp(hs[i].name, "host");

			if (header_removed(ops[0], hs[i].name) || header_removed(ops[1], hs[i].name))
				continue;
			header_put(&c->to_up, hs[i].name,
				   host && rw && rw->authority ? rw->authority : hs[i].value);
		}
		if (rw && rw->authority && !rq.authority)
			header_put(&c->to_up, "host", rw->authority);
		header_ops_put(&c->to_up, ops[0]);
		header_ops_put(&c->to_up, ops[1]);
		buf_put(&c->to_up, "\r\n", 2);
		/* and for the response: the destination's, then the route's */
		c->resp_drop.len = c->resp_add.len = c->resp_head.len = 0;
		resp_ops_take(c, d->src && ((const struct route_destination *)d->src)->headers
					 ? ((const struct route_destination *)d->src)->headers->response
					 : NULL);
		resp_ops_take(c, r->http && r->http->headers ? r->http->headers->response : NULL);
		if (cors_ok)
			cors_headers(&c->resp_add, cp, origin, false);
		c->resp_head_seen = false;
		/* held until complete when it is rewritten, or may be retried */
		c->resp_head_done = !c->resp_drop.len && !c->resp_add.len && !c->retry_5xx &&
				    !c->retry_gw && !c->n_retry_codes;
	}
	c->close_after = !http_should_keep_alive(&c->rq);
	http_parser_init(&c->rs, HTTP_RESPONSE);
	c->rs.data = c;
	c->replay.len = 0;
	/* without Content-Length or chunking a request has no body: it is complete */
	if (!(c->rq.flags & F_CHUNKED) &&
	    (c->rq.content_length == 0 || c->rq.content_length == ULLONG_MAX)) {
		c->req_done = true;
		buf_put(&c->replay, c->to_up.p, c->to_up.len);
	}
	/* mirrors: copies of a bodiless request, as Envoy's shadowing; answers dropped */
	for (uint32_t i = 0; c->req_done && !c->abort_status && i < r->n_mirrors; i++) {
		uint32_t pick[2];

		if (getrandom(pick, sizeof(pick), 0) != sizeof(pick))
			pick[0] = pick[1] = (uint32_t)rand();
		if ((double)pick[0] / 4294967296.0 * 100.0 < r->mirrors[i].percent)
			mirror_start(c, &r->mirrors[i], pick[1]);
	}
	if (c->hold_until)
		shim_hold(c->s, c->hold_until); /* route_start then */
	else
		route_start(c);
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
		c->to_up.len = 0;
		buf_put(&c->to_client, c->local.p, c->local.len);
		c->local.len = 0;
		c->s->st.responses_local++;
		c->resp_done = true;
		c->req_done = true;
		return;
	}
	c->deadline = c->timeout ? now_ms() + c->timeout : 0;
	err = upstream_start(c);
	while (err && err != -ENOKEY && c->tries_left)
		err = upstream_start(c);
	if (err) {
		char why[220];

		snprintf(why, sizeof(why), "upstream TLS handshake failed: %s", c->rule.why);
		c->to_up.len = 0;
		reply_error(c, 503, "Service Unavailable",
			    err == -ENOKEY    ? "no workload certificate could be minted"
			    : err == -EACCES ? why
					      : "upstream connect error");
	}
}

/* Arms the hold timer for an injected delay ending at t (ms, monotonic). */
static void shim_hold(struct shim *s, uint64_t t)
{
	struct itimerspec its = { 0 };
	uint64_t now = now_ms(), in = t > now ? t - now : 1;

	if (s->hold_next && s->hold_next <= t)
		return;
	s->hold_next = t;
	its.it_value.tv_sec = (time_t)(in / 1000);
	its.it_value.tv_nsec = (long)(in % 1000) * 1000000L;
	timerfd_settime(s->hold_fd, 0, &its, NULL);
}

/* Requests whose injected delay is over go on; the timer is armed for the next one. */
static void holds_run(struct shim *s)
{
	uint64_t now = now_ms(), next = 0;

	s->hold_next = 0;
	for (struct conn *c = s->conns, *nx; c; c = nx) {
		nx = c->next;
		if (!c->hold_until || c->dead)
			continue;
		if (c->hold_until <= now) {
			route_start(c);
			if (!c->dead)
				conn_step(c);
		} else if (!next || c->hold_until < next) {
			next = c->hold_until;
		}
	}
	if (next)
		shim_hold(s, next);
}

static void hold_event(struct evh *h, uint32_t events)
{
	struct shim *s = (struct shim *)((char *)h - offsetof(struct shim, hold));
	uint64_t x;

	(void)events;
	if (read(s->hold_fd, &x, sizeof(x)) >= 0)
		holds_run(s);
}

/* Feeds client bytes to the request parser; body bytes go upstream as they came. */
static void take_client_bytes(struct conn *c)
{
	while (c->in.len && !c->req_done) {
		size_t used;

		if (HTTP_PARSER_ERRNO(&c->rq) == HPE_PAUSED)
			http_parser_pause(&c->rq, 0);
		bool in_head = !c->head_done;

		used = http_parser_execute(&c->rq, &c->s->req_cb, c->in.p, c->in.len);
		/* obs-fold: http-parser joins folded lines; a proxy must refuse them (RFC 9112 5.2)
		 */
		for (size_t i = 0; in_head && i < used; i++) {
			if (c->after_lf && (c->in.p[i] == ' ' || c->in.p[i] == '\t') && c->nh) {
				reply_error(c, 400, "Bad Request", "obs-fold in the request head");
				return;
			}
			c->after_lf = c->in.p[i] == '\n';
		}
		if (HTTP_PARSER_ERRNO(&c->rq) != HPE_OK &&
		    HTTP_PARSER_ERRNO(&c->rq) != HPE_PAUSED) {
			reply_error(c, 400, "Bad Request",
				    HTTP_PARSER_ERRNO(&c->rq) == HPE_CB_header_value
					? "control character or obs-fold in a header value"
					: http_errno_name(HTTP_PARSER_ERRNO(&c->rq)));
			return;
		}
		if (!c->head_done) {
			if (c->head.len > SHIM_MAX_HEAD) {
				reply_error(c, 431, "Request Header Fields Too Large",
					    "request head over 64 KiB");
				return;
			}
			buf_drop(&c->in, used);
			continue;
		}
		if (!c->routed) { /* the head just completed */
			buf_drop(&c->in, used);
			route_request(c);
			if (c->resp_done)
				return;
			continue;
		}
		buf_put(&c->to_up, c->in.p, used); /* body bytes, framing untouched */
		buf_drop(&c->in, used);
		if (!used)
			break;
	}
}

static void next_request(struct conn *c)
{
	c->head.len = 0;
	c->url_len = 0;
	c->nh = 0;
	c->in_value = c->head_done = c->req_done = c->resp_done = c->after_lf = c->routed = false;
	c->to_up.len = 0;
	c->local.len = 0;
	c->deadline = 0;
	http_parser_init(&c->rq, HTTP_REQUEST);
	c->rq.data = c;
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
	if (c->resp_bytes) {
		conn_kill(c); /* a response was half sent: only closing tells the client */
		return;
	}
	if (reused && c->replay.len) {
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
	c->to_up.len = 0;
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
	c->resp_head.len = 0;
	c->resp_bytes = 0;
	c->resp_head_seen = c->resp_done = false;
	http_parser_init(&c->rs, HTTP_RESPONSE);
	c->rs.data = c;
	c->to_up.len = 0;
	buf_put(&c->to_up, c->replay.p, c->replay.len);
	c->s->st.retried_answers++;
	err = upstream_start(c);
	while (err && err != -ENOKEY && c->tries_left)
		err = upstream_start(c);
	if (err) {
		c->to_up.len = 0;
		reply_error(c, 503, "Service Unavailable", "upstream connect error (retrying an answer)");
	}
}

static void conn_upstream(struct conn *c)
{
	char buf[SHIM_BUF];
	ssize_t n;
	int r = upstream_ready(c);

	if (r <= 0)
		return;
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
	while ((n = side_read(&c->up->sd, buf, sizeof(buf))) > 0) {
		size_t used = http_parser_execute(&c->rs, &c->s->resp_cb, buf, (size_t)n);

		c->resp_bytes += (size_t)n;
		if (c->resp_head_done) {
			buf_put(&c->to_client, buf, (size_t)n);
		} else {
			buf_put(&c->resp_head, buf, (size_t)n);
			if (c->resp_head_seen && c->tries_left && c->req_done && c->replay.len &&
			    retry_answer_wanted(c, c->rs.status_code)) {
				retry_answer(c);
				return;
			}
			if (c->resp_head_seen) {
				if (c->resp_drop.len || c->resp_add.len)
					resp_head_out(c);
				else /* held only for its status: as it came */
					buf_put(&c->to_client, c->resp_head.p, c->resp_head.len);
				c->resp_head_done = true;
			}
		}
		if (used != (size_t)n && HTTP_PARSER_ERRNO(&c->rs) != HPE_OK) {
			if (!c->resp_head_done) /* what came, as it came */
				buf_put(&c->to_client, c->resp_head.p, c->resp_head.len);
			c->resp_head_done = true;
			c->close_after = true;
			c->resp_done = true;
			break;
		}
		if (c->resp_done)
			break;
	}
	if (n == 0 && !c->resp_done) {
		if (!c->resp_bytes) {
			upstream_failed(c, "upstream closed the connection before a response");
			return;
		}
		/* upstream EOF ends a response without a length */
		http_parser_execute(&c->rs, &c->s->resp_cb, NULL, 0);
		c->close_after = true;
		c->resp_done = true;
	} else if (n < 0 && n != -EAGAIN && !c->resp_done) {
		upstream_failed(c, "upstream connection reset");
		return;
	}
	if (c->resp_done && c->up) {
		/* the upstream connection is free again: pooled when both ends keep it alive */
		if (c->req_done && n != 0 && !c->up->sd.eof && http_should_keep_alive(&c->rs) &&
		    !c->up->sd.out.len)
			pool_put(c->s, c->up);
		else
			up_drop(c->up);
		c->up = NULL;
	}
}

static void conn_step(struct conn *c)
{
	char buf[SHIM_BUF];
	ssize_t n = -1;

	/* client -> parser */
	while (!c->client_eof && (n = recv(c->cfd, buf, sizeof(buf), 0)) != 0) {
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				goto done;
			break;
		}
		buf_put(&c->in, buf, (size_t)n);
		if (c->in.len > SHIM_MAX_HEAD + SHIM_BUF)
			break; /* back-pressure: stop reading until the upstream drains */
	}
	if (n == 0)
		c->client_eof = true;
	if (!c->req_done)
		take_client_bytes(c);
	/* this request's upstream, then the next request's, while answers go out whole */
	for (;;) {
		if (c->up)
			conn_upstream(c);
		if (c->dead)
			return;
		if (!flush_fd(c->cfd, &c->to_client))
			goto done;
		if (!c->resp_done || !c->req_done || c->to_client.len)
			break;
		if (c->close_after)
			goto done;
		next_request(c);
	}
	if (c->client_eof && !c->in.len && !c->up && !c->to_client.len)
		goto done;
	ep_set(c->s, c->cfd, EPOLLIN | EPOLLRDHUP | (c->to_client.len ? EPOLLOUT : 0), &c->h,
	       false);
	if (c->up)
		ep_set(
		    c->s, c->up->sd.fd,
		    EPOLLIN | EPOLLRDHUP |
			(c->up->sd.out.len || c->to_up.len || !c->up->sd.connected ? EPOLLOUT : 0),
		    &c->h, false);
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

static void accept_outbound(struct shim *s, int lfd)
{
	struct sockaddr_in6 peer;
	socklen_t pl = sizeof(peer);
	struct ks_peer_key key = {0};
	struct ks_origdst od;
	const struct c_frontend *fe;
	struct conn *c;
	int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
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
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->h.fn = conn_event;
	c->s = s;
	c->cfd = fd;
	memcpy(&c->peer, &peer.sin6_addr, 16);
	c->peer_port = ntohs(peer.sin6_port);
	c->orig = od.addr;
	c->orig_port = ntohs(od.port);
	http_parser_init(&c->rq, HTTP_REQUEST);
	c->rq.data = c;
	LIST_PUSH(s->conns, c);
	ep_set(s, fd, EPOLLIN | EPOLLRDHUP, &c->h, true);
}

/* ---- listeners, the timer, the loop ---- */

static void listener_event(struct evh *h, uint32_t events)
{
	struct listener *l = (struct listener *)h;

	(void)events;
	if (l->kind == LST_OUTBOUND)
		accept_outbound(l->s, l->fd);
	else if (l->kind == LST_DNS)
		dns_query(l->s, l->fd);
	else if (l->kind == LST_DNS_UPSTREAM)
		dns_upstream_reply(l->s, l->fd);
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

static void tick_event(struct evh *h, uint32_t events)
{
	struct shim *s = (struct shim *)h;
	uint64_t x, now = now_ms();

	(void)events;
	if (read(s->timerfd, &x, sizeof(x)) < 0)
		return;
	ids_tick(&s->ids, time(NULL));
	for (struct up *u = s->pool, *nx; u; u = nx) {
		nx = u->next;
		if (now - u->idle_since > SHIM_POOL_IDLE_MS) {
			pool_unlink(s, u);
			up_drop(u);
		}
	}
	for (struct conn *c = s->conns, *nx; c; c = nx) {
		nx = c->next;
		if (c->up && !c->up->reused &&
		    (!c->up->sd.connected || (c->up->tls && !c->up->tls_done)) &&
		    now > c->up->deadline) {
			upstream_failed(c, "upstream connect timeout");
		} else if (c->try_deadline && now > c->try_deadline && !c->resp_done &&
			   !c->resp_bytes && c->up) {
			/* this try took too long: a 504 of the endpoint, tried again when
			 * retryOn takes 504s and the request can be sent again */
			health_result(c, 504);
			if (c->tries_left && c->req_done && c->replay.len &&
			    retry_answer_wanted(c, 504)) {
				retry_answer(c);
			} else {
				c->to_up.len = 0;
				reply_error(c, 504, "Gateway Timeout", "upstream per-try timeout");
			}
		} else if (c->deadline && now > c->deadline && !c->resp_done) {
			if (c->resp_bytes) {
				conn_kill(c);
				continue;
			}
			c->to_up.len = 0;
			health_result(c, 504);
			reply_error(c, 504, "Gateway Timeout", "upstream request timeout");
		} else {
			continue;
		}
		if (!c->dead)
			conn_step(c);
	}
	for (struct mirror *m = s->mirrors, *nx; m; m = nx) {
		nx = m->next;
		if (now > m->deadline)
			mirror_kill(m, true);
	}
	tun_tick(s, now);
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
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	s->origdst_fd = o->origdst_fd;
	s->peek_ctx = sni_peek_ctx();
	if (s->epfd < 0 || s->timerfd < 0 || !s->peek_ctx)
		goto fail;
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
	s->hold.fn = hold_event;
	s->hold_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->hold_fd < 0)
		goto fail;
	ep_set(s, s->hold_fd, EPOLLIN, &s->hold, true);
	/* not every node carries the outbound address (a gateway does not): say so, go on */
	if (o->outbound && listen_on(s, LST_OUTBOUND, &o->out_addr, o->out_port))
		pr_warn("shim: no outbound listener here\n");
	if (o->inbound && (err = listen_on(s, LST_INBOUND, NULL, o->in_port)))
		goto fail;
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
	s->req_cb.on_url = on_url;
	s->req_cb.on_header_field = on_header_field;
	s->req_cb.on_header_value = on_header_value;
	s->req_cb.on_headers_complete = on_headers_complete;
	s->req_cb.on_message_complete = on_message_complete;
	s->resp_cb.on_message_complete = on_response_complete;
	s->resp_cb.on_headers_complete = on_response_headers;
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
		"\"dns\":{\"queries\":%lu,\"answered\":%lu,\"forwarded\":%lu,\"bad\":%lu}}",
		t->requests, t->responses_local, t->upstream_tls_ok, t->upstream_tls_failed,
		t->same_node, t->pool_reused, s->n_pool, t->faults_delayed, t->faults_aborted, t->ejections,
		t->retried_answers, t->mirrored, t->mirror_failed, t->gw_accepted, t->gw_routed, t->gw_spliced, t->gw_copied,
		t->gw_refused_hello,
		t->gw_refused_sni, t->gw_refused_exposure, t->gw_refused_target, t->in_accepted,
		t->in_ok, t->in_refused_proxy, t->in_refused_pod, t->in_refused_tls, t->out_accepted,
		t->out_routed, t->out_refused, s->ids.n,
		s->ids.minted, s->ids.rotated, s->ids.ttl, t->dns_queries, t->dns_answered,
		t->dns_forwarded, t->dns_bad);
}

void shim_close(struct shim *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_kill(s->conns);
	while (s->pool) {
		struct up *u = s->pool;

		pool_unlink(s, u);
		up_drop(u);
	}
	while (s->mirrors)
		mirror_kill(s->mirrors, false);
	tun_close_all(s);
	for (unsigned i = 0; i < s->n_dead; i++)
		s->dead[i].fn(s->dead[i].obj);
	free(s->dead);
	free(s->health);
	for (unsigned i = 0; i < s->n_lst; i++)
		close(s->lst[i].fd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->timerfd >= 0)
		close(s->timerfd);
	if (s->pend_fd > 0)
		close(s->pend_fd);
	if (s->hold_fd > 0)
		close(s->hold_fd);
	SSL_CTX_free(s->peek_ctx);
	ids_close(&s->ids);
	regex_cache_free(&s->rc);
	free(s);
}
