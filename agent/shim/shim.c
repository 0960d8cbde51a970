// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One request at a time per client connection: read and parse the head
 * (http-parser), pick the route and a destination, connect upstream, send the
 * head and the body as received, relay the response until the parser says it
 * is complete, then take the next request, which may go elsewhere.
 */
#include "shim.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <limits.h>
#include <strings.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../policy/decode.h"
#include "route.h"

#define SHIM_MAX_HEAD (64 * 1024) /* a bigger request head gets 431 */
#define SHIM_MAX_HEADERS 128
#define SHIM_BUF (64 * 1024)
#define SHIM_MAX_TRIES 8 /* endpoints remembered per request for retries */
#define SHIM_DEFAULT_RETRIES 2 /* Istio's default: 2 retries, connect-failure among them */

struct buf {
	char *p;
	size_t len, cap;
};

struct conn {
	struct shim *s;
	int cfd, ufd;
	struct ks_addr orig;
	uint16_t orig_port;
	http_parser rq, rs;
	struct buf in; /* client bytes not yet taken by the request parser */
	struct buf to_up, to_client;
	/* the request head being read */
	struct buf head; /* url, header names and values, NUL-separated */
	size_t url_off, url_len;
	struct {
		size_t name, name_len, value, value_len;
	} hdr[SHIM_MAX_HEADERS];
	unsigned nh;
	bool in_value, head_done, req_done, resp_done, close_after, client_eof, upstream_connected;
	/* where this request may go: copied, as a reload may free the plan meanwhile */
	struct {
		struct ks_addr addr;
		uint16_t port;
	} eps[SHIM_MAX_TRIES];
	unsigned n_eps, next_ep, tries_left;
	bool dead; /* closed during this batch of events: freed at its end */
	struct conn *next_dead;
};

struct shim {
	int lfd, epfd, origdst_fd;
	uint32_t mark;
	const struct plan *plan;
	struct regex_cache rc;
	http_parser_settings req_cb, resp_cb;
	struct conn *dead;
};

static int buf_put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;

		while (cap < b->len + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static void buf_drop(struct buf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static void ep_set(struct shim *s, int fd, uint32_t ev, void *ptr, bool add)
{
	struct epoll_event e = { .events = ev, .data.ptr = ptr };

	epoll_ctl(s->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &e);
}

/* Closes now; frees after the current batch, whose events may still name it. */
static void conn_kill(struct conn *c)
{
	if (c->dead)
		return;
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->ufd >= 0)
		close(c->ufd);
	c->cfd = c->ufd = -1;
	c->dead = true;
	c->next_dead = c->s->dead;
	c->s->dead = c;
}

static void conn_free(struct conn *c)
{
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->ufd >= 0)
		close(c->ufd);
	free(c->in.p);
	free(c->to_up.p);
	free(c->to_client.p);
	free(c->head.p);
	free(c);
}

/* An error response of the shim's own; the connection closes after it. */
static void reply_error(struct conn *c, int status, const char *reason, const char *detail)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\nx-ksteer-reason: %s\r\n"
			 "content-length: %zu\r\nconnection: close\r\n\r\n%s\n",
			 status, reason, detail, strlen(detail) + 1, detail);

	buf_put(&c->to_client, msg, (size_t)n);
	c->close_after = true;
	c->resp_done = true;
	c->req_done = true;
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

static int on_response_complete(http_parser *p)
{
	struct conn *c = p->data;

	c->resp_done = true;
	return 0;
}

/* ---- routing a request ---- */

static const struct c_frontend *find_frontend(const struct plan *plan, const struct ks_addr *a,
					      uint16_t port)
{
	for (uint32_t i = 0; plan && i < plan->n_fes; i++) {
		const struct c_frontend *fe = &plan->fes[i];

		if (fe->gateway || fe->port != port)
			continue;
		for (uint32_t v = 0; v < fe->n_vips; v++)
			if (!memcmp(&fe->vips[v].ka, a, sizeof(*a)))
				return fe;
	}
	return NULL;
}

/* Connects to the next remembered endpoint of this request. */
static int upstream_connect(struct conn *c)
{
	unsigned i = c->next_ep++ % c->n_eps;
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(c->eps[i].port) };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	c->tries_left--;
	memcpy(&sa.sin6_addr, &c->eps[i].addr, 16); /* IPv4 as ::ffff:a.b.c.d: dual stack */
	/* the agent's mark: connect4 lets the shim's own connections through */
	setsockopt(fd, SOL_SOCKET, SO_MARK, &c->s->mark, sizeof(c->s->mark));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	c->ufd = fd;
	c->upstream_connected = false;
	ep_set(c->s, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, c, true);
	return 0;
}

static void route_request(struct conn *c)
{
	struct http_header hs[SHIM_MAX_HEADERS];
	struct http_request rq = { 0 };
	const struct c_frontend *fe = find_frontend(c->s->plan, &c->orig, c->orig_port);
	const struct c_route *r;
	const struct c_dest *d;
	uint32_t draw[2];
	char line[64];
	int n;

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
	if (getrandom(draw, sizeof(draw), 0) != sizeof(draw))
		draw[0] = draw[1] = (uint32_t)rand();
	d = route_pick_dest(r, draw[0]);
	if (!d || !d->n_eps) {
		reply_error(c, 503, "Service Unavailable",
			    d && d->problem ? d->problem : "no healthy upstream");
		return;
	}
	if (d->tls_mode && strcmp(d->tls_mode, "DISABLE")) {
		reply_error(c, 503, "Service Unavailable",
			    "TLS origination is not implemented by this shim yet");
		return;
	}
	/* endpoints from a random start; a failed connect moves to the next one */
	c->n_eps = 0;
	for (uint32_t k = 0; k < d->n_eps && c->n_eps < SHIM_MAX_TRIES; k++) {
		const struct c_endpoint *e = &d->eps[(draw[1] + k) % d->n_eps];

		if (!e->is_ip)
			continue;
		c->eps[c->n_eps].addr = e->ka;
		c->eps[c->n_eps++].port = e->port;
	}
	c->next_ep = 0;
	c->tries_left = 1 + (r->http && r->http->retries && obj_has(&r->http->retries->o, "attempts")
				     ? (unsigned)r->http->retries->attempts
				     : SHIM_DEFAULT_RETRIES);
	if (!c->n_eps || upstream_connect(c)) {
		reply_error(c, 503, "Service Unavailable", "upstream connect error");
		return;
	}
	/* the head again, as received: request line and headers */
	n = snprintf(line, sizeof(line), " HTTP/%u.%u\r\n", c->rq.http_major, c->rq.http_minor);
	buf_put(&c->to_up, rq.method, strlen(rq.method));
	buf_put(&c->to_up, " ", 1);
	buf_put(&c->to_up, rq.path, strlen(rq.path));
	buf_put(&c->to_up, line, (size_t)n);
	for (unsigned i = 0; i < c->nh; i++) {
		buf_put(&c->to_up, hs[i].name, strlen(hs[i].name));
		buf_put(&c->to_up, ": ", 2);
		buf_put(&c->to_up, hs[i].value, strlen(hs[i].value));
		buf_put(&c->to_up, "\r\n", 2);
	}
	buf_put(&c->to_up, "\r\n", 2);
	c->close_after = !http_should_keep_alive(&c->rq);
	http_parser_init(&c->rs, HTTP_RESPONSE);
	c->rs.data = c;
	/* without Content-Length or chunking a request has no body: it is complete */
	if (!(c->rq.flags & F_CHUNKED) &&
	    (c->rq.content_length == 0 || c->rq.content_length == ULLONG_MAX))
		c->req_done = true;
}

/* Feeds client bytes to the request parser; body bytes go upstream as they came. */
static void take_client_bytes(struct conn *c)
{
	while (c->in.len && !c->req_done) {
		size_t used;

		if (HTTP_PARSER_ERRNO(&c->rq) == HPE_PAUSED)
			http_parser_pause(&c->rq, 0);
		used = http_parser_execute(&c->rq, &c->s->req_cb, c->in.p, c->in.len);
		if (HTTP_PARSER_ERRNO(&c->rq) != HPE_OK && HTTP_PARSER_ERRNO(&c->rq) != HPE_PAUSED) {
			reply_error(c, 400, "Bad Request",
				    http_errno_name(HTTP_PARSER_ERRNO(&c->rq)));
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
		if (c->ufd < 0 && !c->resp_done) { /* the head just completed */
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
	if (c->ufd >= 0) {
		close(c->ufd); /* no pooling yet: one upstream connection per request */
		c->ufd = -1;
	}
	c->head.len = 0;
	c->url_len = 0;
	c->nh = 0;
	c->in_value = c->head_done = c->req_done = c->resp_done = false;
	c->to_up.len = 0;
	http_parser_init(&c->rq, HTTP_REQUEST);
	c->rq.data = c;
	take_client_bytes(c);
}

static bool flush(int fd, struct buf *b)
{
	while (b->len) {
		ssize_t n = send(fd, b->p, b->len, MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		buf_drop(b, (size_t)n);
	}
	return true;
}

static void conn_step(struct conn *c)
{
	char buf[SHIM_BUF];
	ssize_t n;

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
	if (!c->req_done || c->ufd < 0)
		take_client_bytes(c);

	/* upstream */
	if (c->ufd >= 0) {
		if (!c->upstream_connected) {
			int err = 0;
			socklen_t l = sizeof(err);

			getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &l);
			if (err) {
				close(c->ufd);
				c->ufd = -1;
				/* nothing was sent yet: retry elsewhere, as Envoy's connect-failure */
				if (!c->tries_left || upstream_connect(c)) {
					c->to_up.len = 0;
					reply_error(c, 503, "Service Unavailable",
						    "upstream connect error");
				}
			} else {
				c->upstream_connected = true;
			}
		}
		if (c->ufd >= 0 && c->upstream_connected) {
			if (!flush(c->ufd, &c->to_up))
				goto done;
			while ((n = recv(c->ufd, buf, sizeof(buf), 0)) != 0) {
				size_t used;

				if (n < 0)
					break;
				used = http_parser_execute(&c->rs, &c->s->resp_cb, buf, (size_t)n);
				buf_put(&c->to_client, buf, (size_t)n);
				if (used != (size_t)n && HTTP_PARSER_ERRNO(&c->rs) != HPE_OK) {
					c->close_after = true;
					c->resp_done = true;
					break;
				}
			}
			if (n == 0) { /* upstream EOF ends a response without a length */
				http_parser_execute(&c->rs, &c->s->resp_cb, NULL, 0);
				if (!c->resp_done)
					c->close_after = true;
				c->resp_done = true;
			}
		}
	}
	if (!flush(c->cfd, &c->to_client))
		goto done;
	if (c->resp_done && c->req_done && !c->to_client.len) {
		if (c->close_after)
			goto done;
		next_request(c);
		if (c->resp_done && !c->to_client.len && c->close_after)
			goto done;
		if (c->to_client.len && !flush(c->cfd, &c->to_client))
			goto done;
	}
	if (c->client_eof && !c->in.len && (c->ufd < 0 || c->resp_done) && !c->to_client.len)
		goto done;
	ep_set(c->s, c->cfd, EPOLLIN | EPOLLRDHUP | (c->to_client.len ? EPOLLOUT : 0), c, false);
	if (c->ufd >= 0)
		ep_set(c->s, c->ufd, EPOLLIN | EPOLLRDHUP | (c->to_up.len ? EPOLLOUT : 0), c, false);
	return;
done:
	conn_kill(c);
}

static void accept_one(struct shim *s)
{
	struct sockaddr_in6 peer;
	socklen_t pl = sizeof(peer);
	struct ks_peer_key key = { 0 };
	struct ks_origdst od;
	struct conn *c;
	int fd = accept4(s->lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->s = s;
	c->cfd = fd;
	c->ufd = -1;
	memcpy(&key.addr, &peer.sin6_addr, 16);
	key.port = peer.sin6_port;
	/* sockops wrote what this client dialled, keyed by its own end */
	if (bpf_map_lookup_elem(s->origdst_fd, &key, &od)) {
		char a[INET6_ADDRSTRLEN];

		pr_warn("shim: no original destination for %s:%u\n",
			inet_ntop(AF_INET6, &peer.sin6_addr, a, sizeof(a)), ntohs(peer.sin6_port));
		conn_free(c);
		return;
	}
	bpf_map_delete_elem(s->origdst_fd, &key);
	c->orig = od.addr;
	c->orig_port = ntohs(od.port);
	http_parser_init(&c->rq, HTTP_REQUEST);
	c->rq.data = c;
	ep_set(s, fd, EPOLLIN | EPOLLRDHUP, c, true);
}

int shim_open(struct shim **out, const struct ks_addr *addr, uint16_t port, uint32_t mark,
	      int origdst_fd)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct shim *s = calloc(1, sizeof(*s));
	int one = 1;

	if (!s)
		return -ENOMEM;
	s->mark = mark;
	s->origdst_fd = origdst_fd;
	memcpy(&sa.sin6_addr, addr, 16);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->lfd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->epfd < 0 || s->lfd < 0)
		goto fail;
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(s->lfd, 1024)) {
		char a[INET6_ADDRSTRLEN];

		pr_warn("Error: shim listen on [%s]:%u: %s\n",
			inet_ntop(AF_INET6, addr, a, sizeof(a)), port, strerror(errno));
		goto fail;
	}
	ep_set(s, s->lfd, EPOLLIN, NULL, true);
	s->req_cb.on_url = on_url;
	s->req_cb.on_header_field = on_header_field;
	s->req_cb.on_header_value = on_header_value;
	s->req_cb.on_headers_complete = on_headers_complete;
	s->req_cb.on_message_complete = on_message_complete;
	s->resp_cb.on_message_complete = on_response_complete;
	*out = s;
	return 0;
fail:
	shim_close(s);
	return -EADDRNOTAVAIL;
}

int shim_fd(const struct shim *s)
{
	return s->epfd;
}

void shim_set_plan(struct shim *s, const struct plan *plan)
{
	s->plan = plan;
	regex_cache_free(&s->rc); /* its keys point into the old plan */
}

void shim_run(struct shim *s)
{
	struct epoll_event ev[64];
	int n = epoll_wait(s->epfd, ev, 64, 0);

	for (int i = 0; i < n; i++) {
		struct conn *c = ev[i].data.ptr;

		if (!c)
			accept_one(s);
		else if (!c->dead)
			conn_step(c);
	}
	while (s->dead) {
		struct conn *c = s->dead;

		s->dead = c->next_dead;
		conn_free(c);
	}
}

void shim_close(struct shim *s)
{
	if (!s)
		return;
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->epfd >= 0)
		close(s->epfd);
	regex_cache_free(&s->rc);
	free(s);
}
