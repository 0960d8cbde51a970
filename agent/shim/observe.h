/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A TCP stream's telemetry: Istio's TCP metrics and one access log line per
 * stream; and for the inbound terminator's plaintext, the HTTP/1 requests
 * inside it, read (never changed) by two codecs, as Istio's inbound sidecar
 * reports them with reporter="destination". Bytes that are not HTTP/1 turn
 * the reading off for the rest of the stream: TCP metrics only.
 */
#ifndef KSTEER_SHIM_OBSERVE_H
#define KSTEER_SHIM_OBSERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "h1.h"
#include "metrics.h"

#define OBS_MAX_INFLIGHT 4 /* pipelined requests awaiting answers; more: reading stops */

struct shim;

struct obs_req {
	uint64_t start_us, wall_us, rx, rx_head;
	bool head_method; /* HEAD: its answer has no body */
	char method[16], path[256], authority[128], ua[128], reqid[64];
};

struct stream_tel {
	bool on; /* opened: counted closed once */
	bool http; /* its plaintext is read for HTTP requests */
	bool http_off; /* not HTTP/1 after all, or too many in flight */
	bool rq_started; /* a request head was read: an HTTP stream, not in istio_tcp_* */
	bool tcp; /* counted in istio_tcp_*: not HTTP, or not read as HTTP */
	const char *reporter;
	struct mt_pack pk;
	struct mt_series *ms;
	uint64_t start_us, wall_us;
	uint64_t rx, tx, rep_rx, rep_tx; /* from and to the client; reported so far */
	char down[64], local[64], upstream[64], sni[128], cluster[320];
	/* the HTTP reading (inbound): two codecs, the requests awaiting answers */
	struct h1 *rq, *rs;
	struct obs_req q[OBS_MAX_INFLIGHT];
	unsigned q_head, q_n;
	uint64_t tx_cur, tx_head;
	int status;
};

/* Opens the stream's series with the labels in st->pk (reporter, peers set by the caller). */
void stream_open(struct shim *s, struct stream_tel *st);
/* Bytes moved: from the client (rx) or to it; read as HTTP when st->http. */
void stream_bytes(struct shim *s, struct stream_tel *st, bool from_client, const char *p,
		  size_t n);
/* Reports the bytes not yet reported (a tick, or the close). */
void stream_report(struct shim *s, struct stream_tel *st);
/* Closed: the series' closed count, the access log line; frees the codecs. */
void stream_close(struct shim *s, struct stream_tel *st, const char *flags);

#endif
