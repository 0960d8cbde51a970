// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The mesh resolver's guards: which upstream answers match a query, the
 * per-source budget, and the forwarding path on loopback sockets (a test
 * socket plays the upstream and forges answers; no netns needed).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/dns/dns.h"
#include "agent/shim/shim_int.h"

/* A query for name/type in wire format, with id; the caller frees it. */
static uint8_t *query(const char *name, ldns_rr_type type, uint16_t id, size_t *len)
{
	ldns_pkt *q =
	    ldns_pkt_query_new(ldns_dname_new_frm_str(name), type, LDNS_RR_CLASS_IN, LDNS_RD);
	uint8_t *w = NULL;

	assert_non_null(q);
	ldns_pkt_set_id(q, id);
	assert_int_equal(ldns_pkt2wire(&w, q, len), LDNS_STATUS_OK);
	ldns_pkt_free(q);
	return w;
}

/* An answer to a query of name/type with id, one A record; the caller frees it. */
static uint8_t *answer(const char *name, ldns_rr_type type, uint16_t id, const char *a, size_t *len)
{
	ldns_pkt *r =
	    ldns_pkt_query_new(ldns_dname_new_frm_str(name), type, LDNS_RR_CLASS_IN, LDNS_RD);
	ldns_rr *rr = NULL;
	char text[300];
	uint8_t *w = NULL;

	ldns_pkt_set_id(r, id);
	ldns_pkt_set_qr(r, true);
	ldns_pkt_set_ra(r, true);
	snprintf(text, sizeof(text), "%s 60 IN A %s", name, a);
	assert_int_equal(ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL), LDNS_STATUS_OK);
	ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, rr);
	assert_int_equal(ldns_pkt2wire(&w, r, len), LDNS_STATUS_OK);
	ldns_pkt_free(r);
	return w;
}

static void test_reply_matches(void **state)
{
	size_t ql, rl, cl;
	uint8_t *q = query("www.example.com.", LDNS_RR_TYPE_A, 0x1234, &ql), *r;
	uint8_t c[DNS_QUESTION_MAX];
	int n;
	const struct {
		const char *name;
		ldns_rr_type type;
		uint16_t id;
		bool ok;
	} cases[] = {
	    {"www.example.com.", LDNS_RR_TYPE_A, 0x1234, true},
	    {"WWW.Example.COM.", LDNS_RR_TYPE_A, 0x1234, true}, /* RFC 4343: case is not asked */
	    {"www.example.com.", LDNS_RR_TYPE_A, 0x1235, false},
	    {"www.example.org.", LDNS_RR_TYPE_A, 0x1234, false},
	    {"ww.example.com.", LDNS_RR_TYPE_A, 0x1234, false},
	    {"www.example.com.", LDNS_RR_TYPE_AAAA, 0x1234, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = answer(cases[i].name, cases[i].type, cases[i].id, "192.0.2.1", &rl);
		if (dns_reply_matches(q, ql, r, rl) != cases[i].ok)
			fail_msg("answer %s type %d id %#x: expected %s", cases[i].name,
				 cases[i].type, cases[i].id, cases[i].ok ? "a match" : "no match");
		free(r);
	}
	/* the query itself (QR clear) is not an answer; nor are a header alone or a cut one */
	assert_false(dns_reply_matches(q, ql, q, ql));
	r = answer("www.example.com.", LDNS_RR_TYPE_A, 0x1234, "192.0.2.1", &rl);
	assert_false(dns_reply_matches(q, ql, r, 12));
	assert_false(dns_reply_matches(q, ql, r, rl - 3));
	/* the kept question matches as the query does, and carries no EDNS or other section */
	n = dns_question_copy(q, ql, c, sizeof(c));
	assert_true(n > 12);
	cl = (size_t)n;
	assert_true(dns_reply_matches(c, cl, r, rl));
	assert_int_equal(c[4] << 8 | c[5], 1);
	assert_int_equal(c[6] | c[7] | c[8] | c[9] | c[10] | c[11], 0);
	assert_int_equal(dns_question_copy(r, rl, c, sizeof(c)), -EINVAL); /* an answer */
	assert_int_equal(dns_question_copy(q, ql, c, 12), -EINVAL);	   /* no room */
	free(r);
	free(q);
}

static void test_error_reply(void **state)
{
	size_t ql, ol = 0;
	uint8_t *q = query("slow.example.com.", LDNS_RR_TYPE_AAAA, 777, &ql), *out = NULL;
	ldns_pkt *p = NULL;

	(void)state;
	assert_int_equal(dns_error(q, ql, LDNS_RCODE_SERVFAIL, &out, &ol), DNS_REPLY);
	assert_int_equal(ldns_wire2pkt(&p, out, ol), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_id(p), 777);
	assert_true(ldns_pkt_qr(p));
	assert_true(ldns_pkt_rd(p));
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
	assert_int_equal(ldns_pkt_qdcount(p), 1); /* stub resolvers want their question back */
	assert_int_equal(ldns_pkt_ancount(p), 0);
	assert_true(dns_reply_matches(q, ql, out, ol));
	ldns_pkt_free(p);
	free(out);
	free(q);
}

static void test_budget(void **state)
{
	static struct dns_budget b;
	uint8_t a[16] = {[10] = 0xff, [11] = 0xff, [12] = 10, [15] = 1};
	struct dns_source *src, *again;
	unsigned ok = 0;

	(void)state;
	dns_budget_init(&b, 42);
	src = dns_source_get(&b, a, 1000);
	assert_non_null(src);
	/* a burst, then nothing until tokens come back at the rate */
	for (unsigned i = 0; i < DNS_SOURCE_BURST + 10; i++)
		ok += dns_source_take(src, 1000);
	assert_int_equal(ok, DNS_SOURCE_BURST);
	assert_false(dns_source_take(src, 1000));
	assert_false(dns_source_take(src, 1000 + 1000 / DNS_SOURCE_RATE - 1));
	assert_true(dns_source_take(src, 1000 + 1000 / DNS_SOURCE_RATE));
	/* one second refills RATE queries, never more than the burst */
	ok = 0;
	for (unsigned i = 0; i < DNS_SOURCE_BURST; i++)
		ok += dns_source_take(src, 2000 + 1000 / DNS_SOURCE_RATE);
	assert_int_equal(ok, DNS_SOURCE_RATE);
	again = dns_source_get(&b, a, 2000);
	assert_ptr_equal(again, src);
	/* a table full of clients with queries in flight has no room; an idle one makes room */
	for (unsigned i = 0; i < DNS_SOURCES * 2; i++) {
		uint8_t x[16] = {0};

		memcpy(x, &i, sizeof(i));
		x[15] = 1;
		src = dns_source_get(&b, x, 3000);
		if (src)
			src->pending = 1;
	}
	a[15] = 2;
	assert_null(dns_source_get(&b, a, 4000));
	for (unsigned i = 0; i < DNS_SOURCES; i++)
		b.src[i].pending = 0;
	assert_non_null(dns_source_get(&b, a, 4000));
}

/* ---- the forwarding path on loopback: the test plays client and upstream ---- */

struct lo {
	struct shim *s;
	int client, up;
	struct sockaddr_in resolver;
};

static int udp_bound(uint16_t *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	if (port)
		*port = ntohs(sa.sin_port);
	return fd;
}

static void lo_open(struct lo *l, uint32_t timeout_ms)
{
	struct sockaddr_in6 sa;
	socklen_t sl = sizeof(sa);
	uint16_t up_port;

	l->s = calloc(1, sizeof(*l->s));
	assert_non_null(l->s);
	l->up = udp_bound(&up_port);
	l->client = udp_bound(NULL);
	assert_int_equal(addr_parse("127.0.0.1", &l->s->o.out_addr), 0);
	assert_int_equal(addr_parse("127.0.0.1", &l->s->o.dns_upstream), 0);
	l->s->o.dns_upstream_set = true;
	l->s->o.dns_upstream_port = up_port;
	l->s->dns.timeout_ms = timeout_ms;
	assert_int_equal(dns_sockets(l->s, &l->s->dns_fd, &l->s->dns_up_fd), 0);
	assert_true(l->s->dns_up_fd >= 0);
	assert_int_equal(getsockname(l->s->dns_fd, (struct sockaddr *)&sa, &sl), 0);
	l->resolver = (struct sockaddr_in){.sin_family = AF_INET,
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
					   .sin_port = sa.sin6_port};
}

static void lo_close(struct lo *l)
{
	dns_close(l->s);
	close(l->s->dns_fd);
	close(l->s->dns_up_fd);
	close(l->client);
	close(l->up);
	free(l->s);
}

/* The client asks; the resolver reads it. */
static void lo_ask(struct lo *l, const char *name, ldns_rr_type type, uint16_t id)
{
	size_t ql;
	uint8_t *q = query(name, type, id, &ql);

	assert_int_equal(
	    sendto(l->client, q, ql, 0, (struct sockaddr *)&l->resolver, sizeof(l->resolver)),
	    (ssize_t)ql);
	free(q);
	dns_query(l->s, l->s->dns_fd);
}

/* What the upstream got: the query's bytes and where it came from. */
static ssize_t up_read(struct lo *l, uint8_t *buf, size_t cap, struct sockaddr_in *from)
{
	socklen_t fl = sizeof(*from);

	return recvfrom(l->up, buf, cap, MSG_DONTWAIT, (struct sockaddr *)from, &fl);
}

static void up_send(struct lo *l, const uint8_t *p, size_t n, const struct sockaddr_in *to)
{
	assert_int_equal(sendto(l->up, p, n, 0, (const struct sockaddr *)to, sizeof(*to)),
			 (ssize_t)n);
}

/* The client's answer, when there is one within ms: its length, or -1. */
static ssize_t client_read(struct lo *l, uint8_t *buf, size_t cap, int ms)
{
	struct pollfd p = {.fd = l->client, .events = POLLIN};

	if (poll(&p, 1, ms) != 1)
		return -1;
	return recv(l->client, buf, cap, MSG_DONTWAIT);
}

static void test_forward_forged(void **state)
{
	struct lo l;
	struct sockaddr_in from, from2;
	uint8_t buf[4096], *r;
	size_t rl;
	ssize_t n;
	uint16_t id;
	int other;
	ldns_pkt *p = NULL;

	(void)state;
	lo_open(&l, 2000);
	lo_ask(&l, "www.example.com.", LDNS_RR_TYPE_A, 0x4242);
	assert_int_equal(l.s->st.dns_forwarded, 1);
	n = up_read(&l, buf, sizeof(buf), &from);
	assert_true(n > 12);
	id = (uint16_t)(buf[0] << 8 | buf[1]);
	/* a forged answer from another port than the upstream's: the kernel drops it */
	other = udp_bound(NULL);
	r = answer("www.example.com.", LDNS_RR_TYPE_A, id, "6.6.6.1", &rl);
	assert_int_equal(sendto(other, r, rl, 0, (struct sockaddr *)&from, sizeof(from)),
			 (ssize_t)rl);
	free(r);
	close(other);
	/* from the upstream's address: wrong ID, wrong name, wrong type; all ignored */
	r = answer("www.example.com.", LDNS_RR_TYPE_A, (uint16_t)(id + 1), "6.6.6.2", &rl);
	up_send(&l, r, rl, &from);
	free(r);
	r = answer("www.example.org.", LDNS_RR_TYPE_A, id, "6.6.6.3", &rl);
	up_send(&l, r, rl, &from);
	free(r);
	r = answer("www.example.com.", LDNS_RR_TYPE_AAAA, id, "6.6.6.4", &rl);
	up_send(&l, r, rl, &from);
	free(r);
	up_send(&l, (const uint8_t *)"\x42\x42\x81\x80", 4, &from);
	dns_upstream_reply(l.s, l.s->dns_up_fd);
	assert_int_equal(l.s->st.dns_mismatched, 4);
	assert_int_equal(client_read(&l, buf, sizeof(buf), 0), -1);
	assert_int_equal(l.s->dns.n_fwd, 1);
	/* the answer, its name in another case (as 0x20 randomisation would): passed on */
	r = answer("WWW.example.COM.", LDNS_RR_TYPE_A, id, "192.0.2.7", &rl);
	up_send(&l, r, rl, &from);
	free(r);
	dns_upstream_reply(l.s, l.s->dns_up_fd);
	n = client_read(&l, buf, sizeof(buf), 1000);
	assert_true(n > 12);
	assert_int_equal(ldns_wire2pkt(&p, buf, (size_t)n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_id(p), 0x4242); /* the client's ID again */
	assert_int_equal(ldns_pkt_ancount(p), 1);
	ldns_pkt_free(p);
	assert_int_equal(l.s->st.dns_relayed, 1);
	assert_int_equal(l.s->dns.n_fwd, 0);
	/* each forwarded query leaves from its own port */
	lo_ask(&l, "a.example.com.", LDNS_RR_TYPE_A, 1);
	lo_ask(&l, "b.example.com.", LDNS_RR_TYPE_A, 2);
	assert_true(up_read(&l, buf, sizeof(buf), &from) > 12);
	assert_true(up_read(&l, buf, sizeof(buf), &from2) > 12);
	assert_int_not_equal(from.sin_port, from2.sin_port);
	lo_close(&l);
}

static void test_forward_timeout(void **state)
{
	struct lo l;
	struct pollfd pf;
	struct sockaddr_in from;
	uint8_t buf[4096];
	ssize_t n;
	ldns_pkt *p = NULL;

	(void)state;
	lo_open(&l, 100);
	lo_ask(&l, "slow.example.com.", LDNS_RR_TYPE_A, 0x0707);
	assert_true(up_read(&l, buf, sizeof(buf), &from) > 12);
	pf = (struct pollfd){.fd = l.s->dns_up_fd, .events = POLLIN};
	assert_int_equal(poll(&pf, 1, 2000), 1); /* the timer, through the upstream side's fd */
	dns_upstream_reply(l.s, l.s->dns_up_fd);
	n = client_read(&l, buf, sizeof(buf), 1000);
	assert_true(n > 12);
	assert_int_equal(ldns_wire2pkt(&p, buf, (size_t)n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_id(p), 0x0707);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
	assert_int_equal(ldns_pkt_qdcount(p), 1);
	ldns_pkt_free(p);
	assert_int_equal(l.s->st.dns_timeouts, 1);
	assert_int_equal(l.s->dns.n_fwd, 0);
	assert_int_equal(l.s->dns.budget.src[0].pending + l.s->dns.budget.src[1].pending, 0);
	lo_close(&l);
}

static void test_forward_budget(void **state)
{
	struct lo l;
	uint8_t buf[4096];
	ldns_pkt *p = NULL;
	ssize_t n;
	unsigned got = 0, sent;

	(void)state;
	lo_open(&l, 2000);
	/* one client's queries in flight stop at the cap: the next is REFUSED at once */
	for (unsigned i = 0; i < DNS_SOURCE_PENDING; i++)
		lo_ask(&l, "flood.example.com.", LDNS_RR_TYPE_A, (uint16_t)i);
	assert_int_equal(l.s->st.dns_forwarded, DNS_SOURCE_PENDING);
	assert_int_equal(client_read(&l, buf, sizeof(buf), 0), -1);
	lo_ask(&l, "flood.example.com.", LDNS_RR_TYPE_A, 9999);
	assert_int_equal(l.s->st.dns_refused, 1);
	n = client_read(&l, buf, sizeof(buf), 1000);
	assert_true(n > 12);
	assert_int_equal(ldns_wire2pkt(&p, buf, (size_t)n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_id(p), 9999);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
	ldns_pkt_free(p);
	/* past its burst, the client's queries are dropped (mesh names: nothing forwarded);
	 * sent faster than the rate refills, whatever this machine's speed */
	for (sent = 0; sent < 4 * DNS_SOURCE_BURST && !l.s->st.dns_over_rate; sent++) {
		lo_ask(&l, "x.cluster.local.", LDNS_RR_TYPE_A, (uint16_t)sent);
		got += client_read(&l, buf, sizeof(buf), 0) > 0;
	}
	assert_true(l.s->st.dns_over_rate > 0);
	assert_true(got >= DNS_SOURCE_BURST);
	assert_int_equal(got, l.s->st.dns_answered);
	assert_int_equal(got + l.s->st.dns_over_rate, sent);
	assert_int_equal(l.s->st.dns_queries, DNS_SOURCE_PENDING + 1 + sent);
	lo_close(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_matches),   cmocka_unit_test(test_error_reply),
	    cmocka_unit_test(test_budget),	    cmocka_unit_test(test_forward_forged),
	    cmocka_unit_test(test_forward_timeout), cmocka_unit_test(test_forward_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
