// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Istio's standard metrics: series by label set in one open-addressing
 * table, bounded; Prometheus text out. Series live as long as the agent, as
 * Envoy's stats do: a Prometheus counter must not go back.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

const char *const mt_label_names[MT_LABELS] = {
	[MT_REPORTER] = "reporter",
	[MT_SRC_WORKLOAD] = "source_workload",
	[MT_SRC_WORKLOAD_NS] = "source_workload_namespace",
	[MT_SRC_PRINCIPAL] = "source_principal",
	[MT_SRC_APP] = "source_app",
	[MT_SRC_VERSION] = "source_version",
	[MT_SRC_CANON_SVC] = "source_canonical_service",
	[MT_SRC_CANON_REV] = "source_canonical_revision",
	[MT_SRC_CLUSTER] = "source_cluster",
	[MT_DST_WORKLOAD] = "destination_workload",
	[MT_DST_WORKLOAD_NS] = "destination_workload_namespace",
	[MT_DST_PRINCIPAL] = "destination_principal",
	[MT_DST_APP] = "destination_app",
	[MT_DST_VERSION] = "destination_version",
	[MT_DST_SERVICE] = "destination_service",
	[MT_DST_SERVICE_NAME] = "destination_service_name",
	[MT_DST_SERVICE_NS] = "destination_service_namespace",
	[MT_DST_CANON_SVC] = "destination_canonical_service",
	[MT_DST_CANON_REV] = "destination_canonical_revision",
	[MT_DST_CLUSTER] = "destination_cluster",
	[MT_REQ_PROTOCOL] = "request_protocol",
	[MT_RESP_CODE] = "response_code",
	[MT_GRPC_STATUS] = "grpc_response_status",
	[MT_RESP_FLAGS] = "response_flags",
	[MT_CONN_SECURITY] = "connection_security_policy",
};

const double mt_buckets[MT_BUCKETS] = { 0.5,	 1,	 5,	  10,	   25,	    50,	     100,
					250,	 500,	 1000,	  2500,	   5000,    10000,   30000,
					60000,	 300000, 600000, 1800000, 3600000 };

void mt_pack_reset(struct mt_pack *p)
{
	p->len = 0;
	memset(p->off, 0, sizeof(p->off));
}

void mt_pack_set(struct mt_pack *p, int i, const char *v)
{
	size_t room = sizeof(p->b) - p->len, n;

	p->off[i] = 0;
	if (!v || room < 2)
		return;
	n = strnlen(v, MT_VALUE_MAX);
	if (n > room - 1)
		n = room - 1;
	memcpy(p->b + p->len, v, n);
	p->b[p->len + n] = 0;
	p->off[i] = (uint16_t)(p->len + 1);
	p->len = (uint16_t)(p->len + n + 1);
}

void mt_pack_setf(struct mt_pack *p, int i, const char *fmt, ...)
{
	char v[MT_VALUE_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	mt_pack_set(p, i, v);
}

const char *mt_pack_get(const struct mt_pack *p, int i)
{
	return p->off[i] ? p->b + p->off[i] - 1 : NULL;
}

void mt_pack_labels(const struct mt_pack *p, struct mt_labels *l)
{
	for (int i = 0; i < MT_LABELS; i++)
		l->v[i] = mt_pack_get(p, i);
}

static bool http_only(int i)
{
	return i == MT_RESP_CODE || i == MT_GRPC_STATUS;
}

static const char *value(const struct mt_labels *l, int i)
{
	return l->v[i] ? l->v[i] : "unknown";
}

static uint64_t labels_hash(const struct mt_labels *l, bool tcp)
{
	uint64_t h = tcp ? 0x84222325cbf29ce4ULL : 0xcbf29ce484222325ULL;

	for (int i = 0; i < MT_LABELS; i++) {
		const char *p = value(l, i);
		size_t n = strnlen(p, MT_VALUE_MAX);

		if (tcp && http_only(i))
			continue;
		for (size_t k = 0; k < n; k++)
			h = (h ^ (unsigned char)p[k]) * 0x100000001b3ULL;
		h = (h ^ 0xff) * 0x100000001b3ULL; /* a separator no value holds */
	}
	return h;
}

static bool labels_equal(const struct mt_series *s, const struct mt_labels *l, bool tcp)
{
	if (s->tcp != tcp)
		return false;
	for (int i = 0; i < MT_LABELS; i++) {
		const char *p = value(l, i);
		size_t n = strnlen(p, MT_VALUE_MAX);

		if (tcp && http_only(i))
			continue;
		if (strlen(s->vals[i]) != n || memcmp(s->vals[i], p, n))
			return false;
	}
	return true;
}

int metrics_init(struct metrics *m, unsigned max_series)
{
	unsigned cap = 16;

	memset(m, 0, sizeof(*m));
	while (cap < max_series * 2)
		cap *= 2;
	m->tab = calloc(cap, sizeof(*m->tab));
	if (!m->tab)
		return -ENOMEM;
	m->cap = cap;
	m->max = max_series;
	return 0;
}

void metrics_free(struct metrics *m)
{
	for (unsigned i = 0; i < m->cap; i++)
		if (m->tab[i]) {
			for (int k = 0; k < MT_LABELS; k++)
				free(m->tab[i]->vals[k]);
			free(m->tab[i]);
		}
	free(m->tab);
	memset(m, 0, sizeof(*m));
}

struct mt_series *metrics_series(struct metrics *m, const struct mt_labels *l, bool tcp)
{
	uint64_t h = labels_hash(l, tcp);
	unsigned i;
	struct mt_series *s;

	if (!m->cap)
		return NULL;
	for (i = (unsigned)h & (m->cap - 1); m->tab[i]; i = (i + 1) & (m->cap - 1))
		if (m->tab[i]->hash == h && labels_equal(m->tab[i], l, tcp))
			return m->tab[i];
	if (m->n >= m->max || !(s = calloc(1, sizeof(*s))))
		return NULL;
	s->tcp = tcp;
	s->hash = h;
	for (int k = 0; k < MT_LABELS; k++) {
		if (tcp && http_only(k))
			continue;
		s->vals[k] = strndup(value(l, k), MT_VALUE_MAX);
		if (!s->vals[k]) {
			while (k--)
				free(s->vals[k]);
			free(s);
			return NULL;
		}
	}
	m->tab[i] = s;
	m->n++;
	return s;
}

static void hist_add(struct mt_hist *h, double v)
{
	int b = 0;

	while (b < MT_BUCKETS && v > mt_buckets[b])
		b++;
	h->n[b]++;
	h->sum += v;
}

void metrics_request(struct metrics *m, const struct mt_labels *l, double ms, uint64_t req_bytes,
		     uint64_t resp_bytes)
{
	struct mt_series *s = metrics_series(m, l, false);

	if (!s) {
		m->dropped++;
		return;
	}
	s->requests++;
	hist_add(&s->dur, ms);
	hist_add(&s->req_bytes, (double)req_bytes);
	hist_add(&s->resp_bytes, (double)resp_bytes);
}

void metrics_tcp_open(struct metrics *m, struct mt_series *s)
{
	if (s)
		s->opened++;
	else
		m->dropped++;
}

void metrics_tcp_bytes(struct metrics *m, struct mt_series *s, uint64_t sent, uint64_t received)
{
	if (s) {
		s->sent += sent;
		s->received += received;
	} else if (sent || received) {
		m->dropped++;
	}
}

void metrics_tcp_close(struct metrics *m, struct mt_series *s)
{
	if (s)
		s->closed++;
	else
		m->dropped++;
}

void prom_quote(FILE *f, const char *v)
{
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '"')
			fputs("\\\"", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			putc_unlocked(*v, f);
	}
	fputc('"', f);
}

/* name{labels[,le="x"]} */
static void series_head(FILE *f, const char *name, const char *suffix, const struct mt_series *s,
			const char *le)
{
	bool first = true;

	fprintf(f, "%s%s{", name, suffix);
	for (int i = 0; i < MT_LABELS; i++) {
		if (!s->vals[i])
			continue;
		fprintf(f, "%s%s=", first ? "" : ",", mt_label_names[i]);
		prom_quote(f, s->vals[i]);
		first = false;
	}
	if (le)
		fprintf(f, "%sle=\"%s\"", first ? "" : ",", le);
	fputs("} ", f);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void print_hist(const struct metrics *m, FILE *f, const char *name, const char *help,
		       size_t off)
{
	family(f, name, "histogram", help);
	for (unsigned i = 0; i < m->cap; i++) {
		const struct mt_series *s = m->tab[i];
		const struct mt_hist *h;
		uint64_t cum = 0;
		char le[32];

		if (!s || s->tcp)
			continue;
		h = (const struct mt_hist *)((const char *)s + off);
		for (int b = 0; b < MT_BUCKETS; b++) {
			cum += h->n[b];
			snprintf(le, sizeof(le), "%g", mt_buckets[b]);
			if (mt_buckets[b] >= 1e6) /* %g would say 1e+06: the integer reads better */
				snprintf(le, sizeof(le), "%.0f", mt_buckets[b]);
			series_head(f, name, "_bucket", s, le);
			fprintf(f, "%llu\n", (unsigned long long)cum);
		}
		cum += h->n[MT_BUCKETS];
		series_head(f, name, "_bucket", s, "+Inf");
		fprintf(f, "%llu\n", (unsigned long long)cum);
		series_head(f, name, "_sum", s, NULL);
		fprintf(f, "%.17g\n", h->sum);
		series_head(f, name, "_count", s, NULL);
		fprintf(f, "%llu\n", (unsigned long long)cum);
	}
}

static void print_counter(const struct metrics *m, FILE *f, const char *name, const char *help,
			  bool tcp, size_t off)
{
	family(f, name, "counter", help);
	for (unsigned i = 0; i < m->cap; i++) {
		const struct mt_series *s = m->tab[i];

		if (!s || s->tcp != tcp)
			continue;
		series_head(f, name, "", s, NULL);
		fprintf(f, "%llu\n", (unsigned long long)*(const uint64_t *)((const char *)s + off));
	}
}

void metrics_print(const struct metrics *m, FILE *f)
{
	print_counter(m, f, "istio_requests_total", "Requests handled by the node agent's shim.",
		      false, offsetof(struct mt_series, requests));
	print_hist(m, f, "istio_request_duration_milliseconds",
		   "Duration of requests, from the head's first byte to the answer's last.",
		   offsetof(struct mt_series, dur));
	print_hist(m, f, "istio_request_bytes", "Request sizes: head and body as received.",
		   offsetof(struct mt_series, req_bytes));
	print_hist(m, f, "istio_response_bytes", "Response sizes: head and body as sent.",
		   offsetof(struct mt_series, resp_bytes));
	print_counter(m, f, "istio_tcp_sent_bytes_total",
		      "Bytes sent to the client of a TCP stream the shim carries.", true,
		      offsetof(struct mt_series, sent));
	print_counter(m, f, "istio_tcp_received_bytes_total",
		      "Bytes received from the client of a TCP stream the shim carries.", true,
		      offsetof(struct mt_series, received));
	print_counter(m, f, "istio_tcp_connections_opened_total",
		      "TCP streams the shim opened.", true, offsetof(struct mt_series, opened));
	print_counter(m, f, "istio_tcp_connections_closed_total",
		      "TCP streams the shim closed.", true, offsetof(struct mt_series, closed));
	family(f, "ksteer_metrics_series", "gauge", "Label sets of the istio_* metrics held.");
	fprintf(f, "ksteer_metrics_series %u\n", m->n);
	family(f, "ksteer_metrics_series_max", "gauge",
	       "The most label sets held (--limit metric-series).");
	fprintf(f, "ksteer_metrics_series_max %u\n", m->max);
	family(f, "ksteer_metrics_dropped_total", "counter",
	       "Observations not kept: every label set was taken.");
	fprintf(f, "ksteer_metrics_dropped_total %llu\n", (unsigned long long)m->dropped);
}
