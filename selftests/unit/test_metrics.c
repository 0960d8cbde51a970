// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The Prometheus exposition of Istio's metrics: HELP and TYPE before each
 * family, label values escaped, histograms cumulative up to +Inf equal to
 * _count; series bounded, observations past the bound counted; the access
 * log's JSON escaping.
 */
#include "harness.h"

#include "agent/shim/accesslog.h"
#include "agent/shim/metrics.h"

static __attribute__((noinline)) char *print(const struct metrics *m)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	metrics_print(m, f);
	fclose(f);
	return text;
}

/* The line starting with prefix, or fail. */
static const char *line_of(const char *text, const char *prefix)
{
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, prefix, strlen(prefix)))
			return p;
	fail_msg("no line starting with %s in:\n%s", prefix, text);
	return NULL;
}

static void labels_http(struct mt_labels *l, const char *workload, const char *code)
{
	memset(l, 0, sizeof(*l));
	l->v[MT_REPORTER] = "source";
	l->v[MT_SRC_WORKLOAD] = workload;
	l->v[MT_DST_VERSION] = "v2";
	l->v[MT_RESP_CODE] = code;
	l->v[MT_GRPC_STATUS] = "";
}

static void test_format(void **state)
{
	struct metrics m;
	struct mt_labels l;
	char *text;
	const char *p;

	(void)state;
	assert_int_equal(metrics_init(&m, 8), 0);
	/* a value with every character the format escapes */
	labels_http(&l, "we\"ird\\name\nx", "200");
	metrics_request(&m, &l, 0.3, 100, 2000);
	metrics_request(&m, &l, 7, 10, 20);
	metrics_request(&m, &l, 5000000, 1, 2); /* over the top bucket */
	text = print(&m);
	/* HELP and TYPE come first, and once */
	p = line_of(text, "# HELP istio_requests_total ");
	assert_true(p == text);
	assert_non_null(strstr(text, "# TYPE istio_requests_total counter\n"));
	assert_non_null(strstr(text, "# TYPE istio_request_duration_milliseconds histogram\n"));
	assert_non_null(strstr(text, "# TYPE istio_tcp_sent_bytes_total counter\n"));
	/* labels in Istio's order, unknown ones "unknown", the value escaped */
	p = line_of(text, "istio_requests_total{");
	assert_non_null(strstr(p, "reporter=\"source\",source_workload=\"we\\\"ird\\\\name\\nx\","
				  "source_workload_namespace=\"unknown\""));
	assert_non_null(strstr(p, "response_code=\"200\",grpc_response_status=\"\","));
	assert_true(strstr(p, "} 3\n") && strstr(p, "} 3\n") < strchr(p, '\n') + 1);
	/* cumulative buckets: 0.3 in le=0.5; 7 in le=10; 5e6 only in +Inf */
	assert_non_null(strstr(line_of(text, "istio_request_duration_milliseconds_bucket{"),
			       "le=\"0.5\"} 1\n"));
	p = strstr(text, "istio_request_duration_milliseconds_bucket{");
	assert_non_null(strstr(p, "le=\"5\"} 1\n"));
	assert_non_null(strstr(p, "le=\"10\"} 2\n"));
	assert_non_null(strstr(p, "le=\"3600000\"} 2\n"));
	assert_non_null(strstr(p, "le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(p, "istio_request_duration_milliseconds_count{"));
	assert_non_null(strstr(strstr(p, "istio_request_duration_milliseconds_count{"), "} 3\n"));
	assert_non_null(strstr(strstr(p, "istio_request_duration_milliseconds_sum{"),
			       "} 5000007.2999999998\n"));
	/* every bucket line of one series is cumulative: never smaller than the one before */
	{
		unsigned long prev = 0, n = 0;

		for (p = strstr(text, "istio_request_bytes_bucket{"); p;
		     p = strstr(p + 1, "istio_request_bytes_bucket{")) {
			unsigned long v = strtoul(strstr(p, "} ") + 2, NULL, 10);

			assert_true(v >= prev);
			prev = v;
			n++;
		}
		assert_int_equal(n, MT_BUCKETS + 1);
		assert_int_equal(prev, 3);
	}
	free(text);
	metrics_free(&m);
}

static void test_tcp_and_bound(void **state)
{
	struct metrics m;
	struct mt_labels l;
	struct mt_series *s;
	char *text;
	const char *p;

	(void)state;
	assert_int_equal(metrics_init(&m, 2), 0);
	labels_http(&l, "a", "200");
	metrics_request(&m, &l, 1, 1, 1);
	/* TCP series leave response_code and grpc_response_status out */
	l.v[MT_REQ_PROTOCOL] = "tcp";
	s = metrics_series(&m, &l, true);
	assert_non_null(s);
	assert_ptr_equal(metrics_series(&m, &l, true), s); /* the same labels: the same series */
	metrics_tcp_open(&m, s);
	metrics_tcp_bytes(&m, s, 10, 20);
	metrics_tcp_bytes(&m, s, 5, 0);
	metrics_tcp_close(&m, s);
	/* a third label set is over the bound: counted as dropped, not kept */
	labels_http(&l, "b", "503");
	metrics_request(&m, &l, 1, 1, 1);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.dropped, 1);
	text = print(&m);
	p = line_of(text, "istio_tcp_sent_bytes_total{");
	assert_true(!strstr(p, "response_code") || strstr(p, "response_code") > strchr(p, '\n'));
	assert_non_null(strstr(p, "request_protocol=\"tcp\""));
	assert_non_null(strstr(line_of(text, "istio_tcp_sent_bytes_total{"), "} 15\n"));
	assert_non_null(strstr(line_of(text, "istio_tcp_received_bytes_total{"), "} 20\n"));
	assert_non_null(strstr(line_of(text, "istio_tcp_connections_opened_total{"), "} 1\n"));
	assert_non_null(strstr(line_of(text, "istio_tcp_connections_closed_total{"), "} 1\n"));
	assert_non_null(strstr(text, "\nksteer_metrics_dropped_total 1\n"));
	assert_null(strstr(text, "source_workload=\"b\""));
	free(text);
	metrics_free(&m);
}

static void test_pack(void **state)
{
	struct mt_pack pk;
	struct mt_labels l;
	char big[600];

	(void)state;
	mt_pack_reset(&pk);
	mt_pack_set(&pk, MT_DST_VERSION, "v2");
	mt_pack_setf(&pk, MT_RESP_CODE, "%d", 200);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	mt_pack_set(&pk, MT_SRC_APP, big);
	mt_pack_labels(&pk, &l);
	assert_string_equal(l.v[MT_DST_VERSION], "v2");
	assert_string_equal(l.v[MT_RESP_CODE], "200");
	assert_int_equal(strlen(l.v[MT_SRC_APP]), MT_VALUE_MAX); /* cut */
	assert_null(l.v[MT_SRC_WORKLOAD]);
	mt_pack_set(&pk, MT_DST_VERSION, NULL);
	assert_null(mt_pack_get(&pk, MT_DST_VERSION));
}

static void test_json_quote(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	json_quote(f, "a\"b\\c\n\x01\xc3\xa9");
	fputc(' ', f);
	json_quote(f, NULL);
	fclose(f);
	assert_string_equal(text, "\"a\\\"b\\\\c\\u000a\\u0001\\u00c3\\u00a9\" null");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_tcp_and_bound),
		cmocka_unit_test(test_pack),
		cmocka_unit_test(test_json_quote),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
