// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The shim's wire formats against real peers' bytes: PROXY v2 headers, the
 * outbound_ SNI form, ClientHellos that OpenSSL's own client writes, and
 * DNS queries that ldns builds, answered from a compiled scenario.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <openssl/ssl.h>

#include "agent/dns/dns.h"
#include "agent/shim/shim_int.h"

static struct ks_addr addr(const char *s)
{
	struct ks_addr a;

	assert_int_equal(addr_parse(s, &a), 0);
	return a;
}

static void test_proxy_v2(void **state)
{
	unsigned char h[64];
	struct ks_addr src = addr("10.1.1.2"), dst = addr("10.2.1.3"), s2, d2;
	uint16_t sp, dp;
	size_t n = proxy_v2_build(h, &src, 40000, &dst, 5000);

	(void)state;
	assert_int_equal(n, 28); /* 16 + IPv4 addresses and ports */
	assert_int_equal(h[13], 0x11);
	assert_int_equal(proxy_v2_parse(h, n, &s2, &sp, &d2, &dp), 28);
	assert_memory_equal(&s2, &src, 16);
	assert_memory_equal(&d2, &dst, 16);
	assert_int_equal(sp, 40000);
	assert_int_equal(dp, 5000);
	/* every prefix is "need more", never a wrong answer */
	for (size_t k = 0; k < n; k++)
		assert_int_equal(proxy_v2_parse(h, k, &s2, &sp, &d2, &dp), 0);
	/* IPv6 */
	src = addr("fd00:1:1::2");
	dst = addr("fd00:2:1::3");
	n = proxy_v2_build(h, &src, 1, &dst, 2);
	assert_int_equal(n, 52);
	assert_int_equal(proxy_v2_parse(h, n, &s2, &sp, &d2, &dp), 52);
	assert_memory_equal(&d2, &dst, 16);
	/* a TLS record is not a PROXY header; LOCAL, UDP and huge lengths are malformed */
	assert_int_equal(
	    proxy_v2_parse((const unsigned char *)"\x16\x03\x01\x00\x10", 5, &s2, &sp, &d2, &dp),
	    -1);
	h[12] = 0x20;
	assert_int_equal(proxy_v2_parse(h, n, &s2, &sp, &d2, &dp), -2);
	h[12] = 0x21;
	h[13] = 0x12;
	assert_int_equal(proxy_v2_parse(h, n, &s2, &sp, &d2, &dp), -2);
	h[13] = 0x21;
	h[14] = 0x10;
	assert_int_equal(proxy_v2_parse(h, n, &s2, &sp, &d2, &dp), -2);
	h[14] = 0;
	h[15] = 4; /* shorter than its addresses */
	assert_int_equal(proxy_v2_parse(h, n, &s2, &sp, &d2, &dp), -2);
}

static void test_sni_parse(void **state)
{
	char subset[64], host[256];
	uint16_t port;

	(void)state;
	assert_int_equal(sni_parse("outbound_.5000_.v2_.helloworld.hello.global", &port, subset,
				   sizeof(subset), host, sizeof(host)),
			 0);
	assert_int_equal(port, 5000);
	assert_string_equal(subset, "v2");
	assert_string_equal(host, "helloworld.hello.global");
	assert_int_equal(sni_parse("outbound_.80_._.a.b.svc.cluster.local", &port, subset,
				   sizeof(subset), host, sizeof(host)),
			 0);
	assert_string_equal(subset, "");
	assert_string_equal(host, "a.b.svc.cluster.local");
	const char *bad[] = {"www.example.com",	       "outbound_.0_.v2_.h",
			     "outbound_.70000_.v2_.h", "outbound_.x_.v2_.h",
			     "outbound_.5000_.v2_.",   "outbound_.5000_.v2",
			     "inbound_.5000_.v2_.h",   ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    sni_parse(bad[i], &port, subset, sizeof(subset), host, sizeof(host)), -1);
}

/* The ClientHello OpenSSL's client writes for sni (NULL: none). Caller frees. */
static unsigned char *client_hello(const char *sni, size_t *len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	unsigned char *p;
	char *data;

	SSL_set_bio(ssl, rb, wb);
	SSL_set_connect_state(ssl);
	if (sni)
		SSL_set_tlsext_host_name(ssl, sni);
	SSL_set_alpn_protos(ssl, tls_alpn_client, tls_alpn_client_len);
	assert_int_equal(SSL_do_handshake(ssl), -1); /* it waits for the server */
	*len = (size_t)BIO_get_mem_data(wb, &data);
	p = malloc(*len);
	memcpy(p, data, *len);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return p;
}

static void test_sni_peek(void **state)
{
	SSL_CTX *peek = sni_peek_ctx();
	const char *want = "outbound_.5000_.v2_.helloworld.hello.global";
	char sni[300];
	size_t n;
	unsigned char *h = client_hello(want, &n);

	(void)state;
	assert_true(n > 100);
	assert_int_equal(sni_peek(peek, h, n, sni, sizeof(sni)), 1);
	assert_string_equal(sni, want);
	/* a ClientHello cut anywhere is "need more" */
	for (size_t k = 1; k < n; k += 13)
		assert_int_equal(sni_peek(peek, h, k, sni, sizeof(sni)), 0);
	/* the SNI does not fit the caller's buffer: refused, not truncated */
	assert_int_equal(sni_peek(peek, h, n, sni, 10), -2);
	free(h);
	h = client_hello(NULL, &n);
	assert_int_equal(sni_peek(peek, h, n, sni, sizeof(sni)), -2);
	free(h);
	assert_int_equal(sni_peek(peek, "GET / HTTP/1.1\r\n\r\n", 18, sni, sizeof(sni)), -1);
	assert_int_equal(
	    sni_peek(peek, "\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", 10, sni, sizeof(sni)), -1);
	SSL_CTX_free(peek);
}

static const char scenario_c1[] =
    "apiVersion: v1\nkind: Service\nmetadata: {name: helloworld, namespace: hello}\n"
    "spec:\n  clusterIP: 10.101.0.1\n  clusterIPs: [10.101.0.1, 'fd00:101::1']\n"
    "  ports: [{port: 5000, name: http}]\n  selector: {app: helloworld}\n"
    "---\napiVersion: networking.istio.io/v1alpha3\nkind: ServiceEntry\n"
    "metadata: {name: helloworld, namespace: hello}\nspec:\n  hosts: [helloworld.hello.global]\n"
    "  location: MESH_INTERNAL\n  ports: [{name: http1, number: 5000, protocol: http}]\n"
    "  resolution: DNS\n  addresses: [127.255.0.8]\n"
    "  endpoints: [{address: 172.30.2.1, labels: {cluster: cluster2}, ports: {http1: 15443}}]\n";

/* The answer to one question: rcode, and the addresses in the answer as text. */
static int ask(const struct plan *plan, const char *name, ldns_rr_type type, int forward_ok,
	       char *addrs, size_t len, enum dns_verdict *verdict)
{
	ldns_pkt *q =
	    ldns_pkt_query_new(ldns_dname_new_frm_str(name), type, LDNS_RR_CLASS_IN, LDNS_RD);
	uint8_t *wire, *out = NULL;
	size_t wl, ol = 0;
	ldns_pkt *r = NULL;
	int rcode;

	ldns_pkt_set_id(q, 4242);
	assert_int_equal(ldns_pkt2wire(&wire, q, &wl), LDNS_STATUS_OK);
	*verdict = dns_answer(plan, wire, wl, forward_ok, &out, &ol);
	free(wire);
	ldns_pkt_free(q);
	addrs[0] = 0;
	if (*verdict != DNS_REPLY)
		return -1;
	assert_int_equal(ldns_wire2pkt(&r, out, ol), LDNS_STATUS_OK);
	free(out);
	assert_int_equal(ldns_pkt_id(r), 4242);
	assert_true(ldns_pkt_qr(r));
	for (size_t i = 0; i < ldns_rr_list_rr_count(ldns_pkt_answer(r)); i++) {
		char *t = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(r), i), 0));

		snprintf(addrs + strlen(addrs), len - strlen(addrs), "%s%s", *addrs ? " " : "", t);
		free(t);
	}
	rcode = ldns_pkt_get_rcode(r);
	ldns_pkt_free(r);
	return rcode;
}

static void test_dns(void **state)
{
	struct batch b;
	char a[256];
	enum dns_verdict v;

	(void)state;
	batch_one(&b, "hello", "c1.yaml", scenario_c1);
	assert_int_equal(b.diag.errors, 0);
	assert_int_equal(ask(&b.plan, "helloworld.hello.svc.cluster.local.", LDNS_RR_TYPE_A, 0, a,
			     sizeof(a), &v),
			 LDNS_RCODE_NOERROR);
	assert_string_equal(a, "10.101.0.1");
	assert_int_equal(ask(&b.plan, "HelloWorld.Hello.SVC.cluster.local.", LDNS_RR_TYPE_AAAA, 0,
			     a, sizeof(a), &v),
			 LDNS_RCODE_NOERROR);
	assert_string_equal(a, "fd00:101::1");
	assert_int_equal(
	    ask(&b.plan, "helloworld.hello.global.", LDNS_RR_TYPE_A, 0, a, sizeof(a), &v),
	    LDNS_RCODE_NOERROR);
	assert_string_equal(a, "127.255.0.8");
	/* a known name without an address of that family: NODATA, not NXDOMAIN */
	assert_int_equal(
	    ask(&b.plan, "helloworld.hello.global.", LDNS_RR_TYPE_AAAA, 0, a, sizeof(a), &v),
	    LDNS_RCODE_NOERROR);
	assert_string_equal(a, "");
	/* what the search path tries first, and other mesh names: NXDOMAIN even with an upstream */
	assert_int_equal(ask(&b.plan, "helloworld.hello.hello.svc.cluster.local.", LDNS_RR_TYPE_A,
			     1, a, sizeof(a), &v),
			 LDNS_RCODE_NXDOMAIN);
	/* the rest: forwarded when there is an upstream, NXDOMAIN otherwise */
	ask(&b.plan, "example.com.", LDNS_RR_TYPE_A, 1, a, sizeof(a), &v);
	assert_int_equal(v, DNS_FORWARD);
	assert_int_equal(ask(&b.plan, "example.com.", LDNS_RR_TYPE_A, 0, a, sizeof(a), &v),
			 LDNS_RCODE_NXDOMAIN);
	batch_free(&b);
}

static void test_dns_hostile(void **state)
{
	uint8_t *out = NULL, q[512];
	size_t ol = 0;

	(void)state;
	/* too short: nothing to answer */
	assert_int_equal(dns_answer(NULL, (const uint8_t *)"\x01\x02\x03", 3, 0, &out, &ol),
			 DNS_DROP);
	/* a header and garbage: FORMERR with the id kept */
	memset(q, 0xff, sizeof(q));
	q[0] = 0x12;
	q[1] = 0x34;
	q[2] = 0x01;
	assert_int_equal(dns_answer(NULL, q, 40, 0, &out, &ol), DNS_REPLY);
	assert_int_equal(ol, 12);
	assert_int_equal(out[0], 0x12);
	assert_int_equal(out[1], 0x34);
	assert_true(out[2] & 0x80);
	assert_int_equal(out[3] & 0x0f, LDNS_RCODE_FORMERR);
	free(out);
	/* a response is never answered (no reflection loops) */
	q[2] = 0x81;
	assert_int_equal(dns_answer(NULL, q, 40, 0, &out, &ol), DNS_DROP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_proxy_v2),	cmocka_unit_test(test_sni_parse),
	    cmocka_unit_test(test_sni_peek),	cmocka_unit_test(test_dns),
	    cmocka_unit_test(test_dns_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
