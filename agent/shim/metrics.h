/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Istio's standard metrics, as the shim sees its requests and streams: one
 * series per label set (Istio's labels, values as Istio computes them), at
 * most max_series of them; observations past that are counted, not kept.
 * Printed as Prometheus text (version 0.0.4).
 */
#ifndef KSTEER_SHIM_METRICS_H
#define KSTEER_SHIM_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Istio's labels, in the order its proxies print them. */
enum mt_label {
	MT_REPORTER,
	MT_SRC_WORKLOAD,
	MT_SRC_WORKLOAD_NS,
	MT_SRC_PRINCIPAL,
	MT_SRC_APP,
	MT_SRC_VERSION,
	MT_SRC_CANON_SVC,
	MT_SRC_CANON_REV,
	MT_SRC_CLUSTER,
	MT_DST_WORKLOAD,
	MT_DST_WORKLOAD_NS,
	MT_DST_PRINCIPAL,
	MT_DST_APP,
	MT_DST_VERSION,
	MT_DST_SERVICE,
	MT_DST_SERVICE_NAME,
	MT_DST_SERVICE_NS,
	MT_DST_CANON_SVC,
	MT_DST_CANON_REV,
	MT_DST_CLUSTER,
	MT_REQ_PROTOCOL,
	MT_RESP_CODE, /* HTTP only */
	MT_GRPC_STATUS, /* HTTP only */
	MT_RESP_FLAGS,
	MT_CONN_SECURITY,
	MT_LABELS,
};

extern const char *const mt_label_names[MT_LABELS];

#define MT_VALUE_MAX 255 /* a label value's bytes kept; longer ones are cut */
#define MT_BUCKETS 19

/* Envoy's default histogram buckets, which Istio's three histograms use. */
extern const double mt_buckets[MT_BUCKETS];

struct mt_labels {
	const char *v[MT_LABELS]; /* NULL: "unknown" */
};

struct mt_hist {
	uint64_t n[MT_BUCKETS + 1]; /* per bucket, not cumulative; the last is over the top */
	double sum;
};

struct mt_series {
	bool tcp;
	char *vals[MT_LABELS]; /* for TCP, response_code and grpc_response_status are NULL */
	uint64_t hash;
	/* HTTP */
	uint64_t requests;
	struct mt_hist dur, req_bytes, resp_bytes;
	/* TCP */
	uint64_t opened, closed, sent, received;
};

struct metrics {
	struct mt_series **tab; /* open addressing by hash */
	unsigned cap, n, max;
	uint64_t dropped; /* observations without a series: max was reached */
};

/* A label set's values packed in one buffer: a connection keeps its request's labels. */
struct mt_pack {
	char b[4096];
	uint16_t len;
	uint16_t off[MT_LABELS]; /* 0: unset ("unknown"); else 1 + the value's offset */
};

void mt_pack_reset(struct mt_pack *p);
/* Sets label i to v (NULL: unset), cut to MT_VALUE_MAX and to the room left. */
void mt_pack_set(struct mt_pack *p, int i, const char *v);
/* Label i from a printf format. */
void mt_pack_setf(struct mt_pack *p, int i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *mt_pack_get(const struct mt_pack *p, int i);
void mt_pack_labels(const struct mt_pack *p, struct mt_labels *l);

int metrics_init(struct metrics *m, unsigned max_series);
void metrics_free(struct metrics *m);
/* The series of these labels, created when there is room; NULL when not. */
struct mt_series *metrics_series(struct metrics *m, const struct mt_labels *l, bool tcp);
/* One HTTP request, answered: duration in ms, request and response bytes. */
void metrics_request(struct metrics *m, const struct mt_labels *l, double ms, uint64_t req_bytes,
		     uint64_t resp_bytes);
/* A stream's series (NULL is fine: counted as dropped) */
void metrics_tcp_open(struct metrics *m, struct mt_series *s);
void metrics_tcp_bytes(struct metrics *m, struct mt_series *s, uint64_t sent, uint64_t received);
void metrics_tcp_close(struct metrics *m, struct mt_series *s);
/* Every family, HELP and TYPE first, as Prometheus text. */
void metrics_print(const struct metrics *m, FILE *f);
/* A label value between quotes, with \\, \" and \n escaped as the format asks. */
void prom_quote(FILE *f, const char *v);

#endif
