// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A stream's TCP metrics and access log line; the HTTP requests inside the inbound's plaintext. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observe.h"
#include "shim_int.h"

static void tcp_count(struct shim *s, struct stream_tel *st)
{
	st->tcp = true;
	metrics_tcp_open(&s->mt, st->ms);
}

void stream_open(struct shim *s, struct stream_tel *st)
{
	st->on = true;
	st->start_us = now_us();
	st->wall_us = now_wall_us();
	mt_pack_set(&st->pk, MT_REQ_PROTOCOL, "tcp");
	mt_pack_set(&st->pk, MT_RESP_FLAGS, "-");
	{
		struct mt_labels l;

		mt_pack_labels(&st->pk, &l);
		st->ms = metrics_series(&s->mt, &l, true);
	}
	/* an HTTP stream is counted in its requests, as Istio's: in istio_tcp_* only if not */
	if (!st->http)
		tcp_count(s, st);
	if (st->http) {
		st->rq = calloc(1, sizeof(*st->rq));
		st->rs = calloc(1, sizeof(*st->rs));
		if (!st->rq || !st->rs) {
			st->http_off = true;
			return;
		}
		h1_init(st->rq, false);
		h1_init(st->rs, true);
	}
}

static void copy(char *d, size_t n, const char *v)
{
	snprintf(d, n, "%s", v ? v : "");
}

static const char *nz(const char *v)
{
	return v && *v ? v : NULL;
}

/* The oldest request has its whole answer: one observation, one log line. */
static void http_done(struct shim *s, struct stream_tel *st)
{
	struct obs_req *q = &st->q[st->q_head];
	uint64_t us = now_us() - q->start_us;
	struct mt_pack pk = st->pk;
	struct mt_labels l;
	char proto[16];

	mt_pack_set(&pk, MT_REQ_PROTOCOL, "http");
	mt_pack_setf(&pk, MT_RESP_CODE, "%d", st->status);
	mt_pack_set(&pk, MT_GRPC_STATUS, h1_get(st->rs, "grpc-status") ? h1_get(st->rs, "grpc-status") : "");
	mt_pack_labels(&pk, &l);
	metrics_request(&s->mt, &l, (double)us / 1000.0, q->rx, st->tx_cur);
	snprintf(proto, sizeof(proto), "HTTP/%u.%u", st->rq->p.http_major, st->rq->p.http_minor);
	if (s->alog.fd >= 0) {
		struct alog_rec r = {
			.start_us = q->wall_us, .method = nz(q->method), .path = nz(q->path),
			.protocol = proto, .response_code = st->status, .response_flags = "-",
			.bytes_received = q->rx - q->rx_head, .bytes_sent = st->tx_cur - st->tx_head,
			.duration_ms = us / 1000, .upstream_host = nz(st->upstream),
			.upstream_cluster = nz(st->cluster), .user_agent = nz(q->ua),
			.request_id = nz(q->reqid), .authority = nz(q->authority),
			.downstream_remote_address = nz(st->down),
			.downstream_local_address = nz(st->local),
			.requested_server_name = nz(st->sni), .reporter = st->reporter,
		};

		alog_write(&s->alog, &r);
	}
	st->q_head = (st->q_head + 1) % OBS_MAX_INFLIGHT;
	st->q_n--;
	st->tx_cur = st->tx_head = 0;
	st->status = 0;
}

static void read_requests(struct stream_tel *st, const char *p, size_t n)
{
	size_t off = 0, used;
	bool again = false; /* a bodiless head: its end comes without another byte */

	while (!st->http_off && (off < n || again)) {
		struct obs_req *q = &st->q[(st->q_head + st->q_n) % OBS_MAX_INFLIGHT];
		enum h1_event ev;

		if (st->q_n == OBS_MAX_INFLIGHT) {
			st->http_off = true; /* more in flight than remembered: stop, not guess */
			return;
		}
		ev = h1_feed(st->rq, p + off, n - off, &used);
		off += used;
		q->rx += used;
		again = ev == H1_HEAD && !st->rq->has_body;
		if (ev == H1_ERROR) {
			st->http_off = true;
		} else if (ev == H1_HEAD) {
			st->rq_started = true;
			q->start_us = now_us();
			q->wall_us = now_wall_us();
			q->rx_head = q->rx; /* every byte fed so far was the head's */
			q->head_method = st->rq->p.method == HTTP_HEAD;
			copy(q->method, sizeof(q->method),
			     llhttp_method_name((llhttp_method_t)st->rq->p.method));
			copy(q->path, sizeof(q->path), h1_target(st->rq));
			copy(q->authority, sizeof(q->authority), h1_get(st->rq, "host"));
			copy(q->ua, sizeof(q->ua), h1_get(st->rq, "user-agent"));
			copy(q->reqid, sizeof(q->reqid), h1_get(st->rq, "x-request-id"));
			if (st->rq->upgrade)
				st->http_off = true; /* a tunnel follows: its bytes are the stream's */
		} else if (ev == H1_DONE) {
			h1_head_reset(st->rq);
			if (++st->q_n < OBS_MAX_INFLIGHT)
				memset(&st->q[(st->q_head + st->q_n) % OBS_MAX_INFLIGHT], 0,
				       sizeof(*q));
		}
	}
}

static void read_answers(struct shim *s, struct stream_tel *st, const char *p, size_t n)
{
	size_t off = 0, used;
	bool again = false;

	while (!st->http_off && (off < n || again)) {
		enum h1_event ev;

		if (!st->q_n) {
			st->http_off = true; /* an answer before its request: not HTTP as we read it */
			return;
		}
		st->rs->skip_body = st->q[st->q_head].head_method;
		ev = h1_feed(st->rs, p + off, n - off, &used);
		off += used;
		st->tx_cur += used;
		again = ev == H1_HEAD && !st->rs->has_body;
		if (ev == H1_ERROR) {
			st->http_off = true;
		} else if (ev == H1_HEAD) {
			st->status = st->rs->p.status_code;
			st->tx_head = st->tx_cur;
		} else if (ev == H1_DONE) {
			if (st->status >= 200)
				http_done(s, st);
			else
				st->tx_cur = 0; /* an interim answer: the final one follows */
			h1_head_reset(st->rs);
		}
	}
}

void stream_bytes(struct shim *s, struct stream_tel *st, bool from_client, const char *p,
		  size_t n)
{
	if (!st->on)
		return;
	if (from_client)
		st->rx += n;
	else
		st->tx += n;
	if (!st->http || st->http_off)
		return;
	if (from_client)
		read_requests(st, p, n);
	else
		read_answers(s, st, p, n);
	if (st->http_off && !st->q_n && !st->rq_started && !st->tcp)
		tcp_count(s, st); /* not HTTP/1 from its first byte: a TCP stream, bytes and all */
}

void stream_report(struct shim *s, struct stream_tel *st)
{
	if (!st->on || !st->tcp)
		return;
	metrics_tcp_bytes(&s->mt, st->ms, st->tx - st->rep_tx, st->rx - st->rep_rx);
	st->rep_tx = st->tx;
	st->rep_rx = st->rx;
}

void stream_close(struct shim *s, struct stream_tel *st, const char *flags)
{
	uint64_t us;

	if (!st->on)
		return;
	stream_report(s, st);
	if (st->tcp)
		metrics_tcp_close(&s->mt, st->ms);
	st->on = false;
	us = now_us() - st->start_us;
	if (s->alog.fd >= 0) {
		struct alog_rec r = {
			.start_us = st->wall_us, .protocol = "TCP", .response_flags = flags,
			.bytes_received = st->rx, .bytes_sent = st->tx, .duration_ms = us / 1000,
			.upstream_host = nz(st->upstream), .upstream_cluster = nz(st->cluster),
			.downstream_remote_address = nz(st->down),
			.downstream_local_address = nz(st->local),
			.requested_server_name = nz(st->sni), .reporter = st->reporter,
		};

		alog_write(&s->alog, &r);
	}
	if (st->rq) {
		h1_free(st->rq);
		free(st->rq);
	}
	if (st->rs) {
		h1_free(st->rs);
		free(st->rs);
	}
	st->rq = st->rs = NULL;
}
