// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The HTTP/1 codec as the shim uses it: where heads and messages end in a
 * byte stream (whole, and fed one byte at a time), what it refuses and with
 * which status, and the path normalization routing sees.
 */
#include "harness.h"

#include "agent/shim/h1.h"
#include "agent/shim/route.h"

/* Feeds s in pieces of step bytes; writes the events as "H@off D@off" (offsets after each). */
static void trace(bool response, bool head_req, const char *s, size_t step, char *out, size_t cap)
{
	struct h1 h;
	size_t off = 0, n = strlen(s), o = 0;

	h1_init(&h, response);
	h.skip_body = head_req;
	out[0] = 0;
	while (off < n) {
		size_t piece = n - off < step ? n - off : step, used;
		enum h1_event ev = h1_feed(&h, s + off, piece, &used);

		off += used;
		if (ev == H1_HEAD || ev == H1_DONE)
			o += (size_t)snprintf(out + o, cap - o, "%s%c@%zu", o ? " " : "",
					      ev == H1_HEAD ? 'H' : 'D', off);
		if (ev == H1_HEAD && !h.has_body) { /* the end comes without another byte */
			ev = h1_feed(&h, s + off, 0, &used);
			if (ev == H1_DONE)
				o += (size_t)snprintf(out + o, cap - o, " D@%zu", off);
		}
		if (ev == H1_HEAD)
			h1_head_reset(&h);
		if (ev == H1_ERROR) {
			snprintf(out + o, cap - o, "%sE%d", o ? " " : "", h.status);
			break;
		}
	}
	h1_free(&h);
}

static const struct {
	bool response, head_req;
	const char *in, *want;
} cases[] = {
	/* a body of 6 bytes: the head is 47 bytes, the message 53; the next request follows */
	{false, false,
	 "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabcdefGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
	 "H@47 D@53 H@81 D@81"},
	/* chunked with a trailer: the message ends after the trailer's blank line */
	{false, false,
	 "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
	 "H@56 D@77"},
	/* 100 Continue is a message of its own, then the final answer */
	{true, false, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	 "H@25 D@25 H@63 D@65"},
	/* an answer to HEAD has no body whatever its Content-Length says */
	{true, true, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	 "H@39 D@39 H@77 D@77"},
	{true, false, "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n",
	 "H@27 D@27 H@56 D@56"},
	/* refused requests, and the status a proxy answers */
	{false, false, "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "E400"},
	{false, false, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "E400"},
	{false, false, "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", "E400"},
	{false, false, "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "E400"},
	{false, false, "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", "E400"},
	{false, false, "GET / HTTP/1.1\r\nX: a\x01b\r\nHost: a\r\n\r\n", "E400"},
	{false, false, "GET / HTTP/1.1\r\n\r\n", "E400"},
	{false, false, "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", "E501"},
	{false, false, "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "E505"},
	{false, false, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	 "E400"},
	{false, false,
	 "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
	 "E400"},
	{false, false, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	 "H@56 E400"},
	/* an empty field name (found by fuzz_http): its value must not join another field */
	{false, false, "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", "E400"},
	{true, false, "HTTP/1.1 200 OK\r\n:Transfer-Encoding: chunked\r\n\r\n", "E400"},
	/* HTTP/1.0 needs no Host */
	{false, false, "GET / HTTP/1.0\r\n\r\n", "H@18 D@18"},
};

static void test_framing(void **state)
{
	char whole[256], bytewise[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		trace(cases[i].response, cases[i].head_req, cases[i].in, SIZE_MAX, whole, sizeof(whole));
		trace(cases[i].response, cases[i].head_req, cases[i].in, 1, bytewise, sizeof(bytewise));
		if (strcmp(whole, cases[i].want) || strcmp(bytewise, cases[i].want))
			fail_msg("case %zu: want \"%s\", whole \"%s\", byte by byte \"%s\"", i,
				 cases[i].want, whole, bytewise);
	}
}

static void test_fields(void **state)
{
	const char *in = "GET /p?q=1 HTTP/1.1\r\nHost: a:80\r\nConnection: close, x-hop\r\n"
			 "X-Hop: 1\r\nEmpty:\r\nKeep-Alive: 5\r\nX-End: e\r\n\r\n";
	struct h1 h;
	size_t used;

	(void)state;
	h1_init(&h, false);
	assert_int_equal(h1_feed(&h, in, strlen(in), &used), H1_HEAD);
	assert_int_equal(used, strlen(in));
	assert_string_equal(h1_target(&h), "/p?q=1");
	assert_int_equal(h.n_f, 6);
	assert_string_equal(h1_get(&h, "host"), "a:80");
	assert_string_equal(h1_get(&h, "empty"), "");
	assert_string_equal(h1_get(&h, "x-end"), "e");
	assert_false(h.keep_alive);
	assert_true(h1_hop_by_hop(&h, 1));  /* Connection */
	assert_true(h1_hop_by_hop(&h, 2));  /* named by Connection */
	assert_true(h1_hop_by_hop(&h, 4));  /* Keep-Alive */
	assert_false(h1_hop_by_hop(&h, 0)); /* Host */
	assert_false(h1_hop_by_hop(&h, 5));
	h1_free(&h);
}

static void test_head_limit(void **state)
{
	struct h1 h;
	char *big = malloc(H1_MAX_HEAD + 100);
	size_t used;
	int n = snprintf(big, 64, "GET / HTTP/1.1\r\nHost: a\r\nX: ");

	(void)state;
	memset(big + n, 'a', H1_MAX_HEAD + 100 - (size_t)n);
	h1_init(&h, false);
	assert_int_equal(h1_feed(&h, big, H1_MAX_HEAD + 100, &used), H1_ERROR);
	assert_int_equal(h.status, 431);
	h1_free(&h);
	free(big);
}

static void test_close_delimited(void **state)
{
	const char *in = "HTTP/1.1 200 OK\r\n\r\nuntil the close";
	struct h1 h;
	size_t used;

	(void)state;
	h1_init(&h, true);
	assert_int_equal(h1_feed(&h, in, strlen(in), &used), H1_HEAD);
	assert_true(h.has_body);
	assert_int_equal(h1_feed(&h, in + used, strlen(in) - used, &used), H1_MORE);
	assert_int_equal(h1_eof(&h), H1_DONE);
	h1_free(&h);
	/* a Content-Length answer cut short is an error, not an end */
	h1_init(&h, true);
	in = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
	assert_int_equal(h1_feed(&h, in, strlen(in), &used), H1_HEAD);
	assert_int_equal(h1_feed(&h, in + used, strlen(in) - used, &used), H1_MORE);
	assert_int_equal(h1_eof(&h), H1_ERROR);
	h1_free(&h);
}

static void test_normalize(void **state)
{
	static const char *const v[][2] = {
		{"/a/b/../c", "/a/c"},     {"/a/./b", "/a/b"},   {"/..", "/"},
		{"/a/..", "/"},            {"/a/.", "/a/"},      {"/%61%62c", "/abc"},
		{"/%2e%2E/x", "/x"},       {"/a%2fb", "/a%2Fb"}, {"/a/../../b?x=/../", "/b?x=/../"},
		{"/.hidden/..x", "/.hidden/..x"}, {"*", "*"},    {"/%7e%41", "/~A"},
		{"/%zz", "/%zz"},          {"/a%2", "/a%2"},
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		route_normalize_path(v[i][0], out);
		if (strcmp(out, v[i][1]))
			fail_msg("normalize %s: want %s, got %s", v[i][0], v[i][1], out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framing),     cmocka_unit_test(test_fields),
		cmocka_unit_test(test_head_limit),  cmocka_unit_test(test_close_delimited),
		cmocka_unit_test(test_normalize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
