// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Writes the wire fuzzers' seed corpora into DIR/proxy, DIR/sni and DIR/dns: PROXY v2
 * headers, ClientHellos that OpenSSL's client writes and the server_name extensions in
 * them, DNS queries and answers that ldns builds. Usage: seeds DIR
 */
#include <errno.h>
#include <ldns/ldns.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *dir;

static int put(const char *sub, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if (mkdir(path, 0755) && errno != EEXIST)
		goto fail;
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	f = fopen(path, "wb");
	if (!f)
		goto fail;
	if (fwrite(p, 1, n, f) != n) {
		fclose(f);
		goto fail;
	}
	return fclose(f) ? -errno : 0;
fail:
	fprintf(stderr, "Error: write %s: %s\n", path, strerror(errno));
	return -errno;
}

static int proxy_seeds(void)
{
	static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
	/* family byte, address block length, then the bytes after the signature's 16 */
	static const struct {
		const char *name;
		unsigned char cmd, fam;
		unsigned len;
	} v[] = {
	    {"tcp4", 0x21, 0x11, 12},	  {"tcp6", 0x21, 0x21, 36}, {"tcp4-tlv", 0x21, 0x11, 12 + 7},
	    {"local", 0x20, 0x00, 0},	  {"udp4", 0x21, 0x12, 12}, {"short", 0x21, 0x11, 4},
	    {"huge", 0x21, 0x21, 600},
	};
	unsigned char h[16 + 640];
	int err = 0;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = 16 + (v[i].len > 36 + 7 ? 0 : v[i].len);

		memset(h, 0, sizeof(h));
		memcpy(h, sig, 12);
		h[12] = v[i].cmd;
		h[13] = v[i].fam;
		h[14] = (unsigned char)(v[i].len >> 8);
		h[15] = (unsigned char)v[i].len;
		for (size_t k = 16; k < n; k++)
			h[k] = (unsigned char)(k * 7);
		if (v[i].len == 12 + 7) { /* a PP2_TYPE_AUTHORITY TLV after the addresses */
			memcpy(h + 28, "\x02\x00\x04host", 7);
		}
		memcpy(h + n, "\x16\x03\x01", 3); /* a ClientHello follows */
		err = err ? err : put("proxy", v[i].name, h, n + 3);
	}
	return err;
}

/* A ClientHello for sni (NULL: none), capped at max_version (0: any). */
static int hello(const char *name, const char *sni, int max_version)
{
	static const unsigned char alpn[] = "\x02h2\x08http/1.1";
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int err = -ENOMEM;

	if (!ssl || !rb || !wb) {
		BIO_free(rb);
		BIO_free(wb);
		goto out;
	}
	SSL_set_bio(ssl, rb, wb);
	SSL_set_connect_state(ssl);
	if (max_version)
		SSL_set_max_proto_version(ssl, max_version);
	if (sni)
		SSL_set_tlsext_host_name(ssl, sni);
	SSL_set_alpn_protos(ssl, alpn, sizeof(alpn) - 1);
	SSL_do_handshake(ssl); /* stops waiting for the server, its ClientHello written */
	n = BIO_get_mem_data(wb, &data);
	err = put("sni", name, data, (size_t)n);
	/* and the server_name extension's body alone, for sni_ext_name */
	if (!err && sni) {
		char ename[64];
		size_t sl = strlen(sni);
		unsigned char *e = malloc(sl + 5);

		if (!e)
			goto out;
		e[0] = (unsigned char)((sl + 3) >> 8);
		e[1] = (unsigned char)(sl + 3);
		e[2] = 0;
		e[3] = (unsigned char)(sl >> 8);
		e[4] = (unsigned char)sl;
		memcpy(e + 5, sni, sl);
		snprintf(ename, sizeof(ename), "ext-%s", name);
		err = put("sni", ename, e, sl + 5);
		free(e);
	}
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return err;
}

static int sni_seeds(void)
{
	char longname[254];

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	for (size_t i = 63; i < sizeof(longname) - 1; i += 64)
		longname[i] = '.';
	return hello("outbound", "outbound_.5000_.v2_.helloworld.hello.global", 0) ?:
	       hello("plain", "helloworld.hello.svc.cluster.local", 0) ?:
	       hello("tls12", "outbound_.80_._.a.b.svc.cluster.local", TLS1_2_VERSION) ?:
	       hello("long", longname, 0) ?: hello("none", NULL, 0);
}

/* A query as seed "0" + wire (first byte even: a pod's query), forward_ok when odd pair. */
static int dns_query_seed(const char *name, const char *qname, ldns_rr_type type, bool edns,
			  bool forward_ok)
{
	ldns_pkt *q = ldns_pkt_query_new(ldns_dname_new_frm_str(qname), type, LDNS_RR_CLASS_IN,
					 LDNS_RD);
	uint8_t *w = NULL, *s;
	size_t wl = 0;
	int err = -ENOMEM;

	if (!q)
		return err;
	ldns_pkt_set_id(q, 0x1234);
	if (edns) {
		ldns_pkt_set_edns_udp_size(q, 1232);
		ldns_pkt_set_edns_do(q, true);
	}
	if (ldns_pkt2wire(&w, q, &wl) != LDNS_STATUS_OK)
		goto out;
	s = malloc(wl + 1);
	if (!s)
		goto out;
	s[0] = forward_ok ? 2 : 0;
	memcpy(s + 1, w, wl);
	err = put("dns", name, s, wl + 1);
	free(s);
out:
	free(w);
	ldns_pkt_free(q);
	return err;
}

/* A query and an upstream answer to it, the answer's question as given: the matcher's input. */
static int dns_pair_seed(const char *name, const char *ans_name, uint16_t ans_id)
{
	ldns_pkt *q = ldns_pkt_query_new(ldns_dname_new_frm_str("www.example.com."),
					 LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD);
	ldns_pkt *r = ldns_pkt_query_new(ldns_dname_new_frm_str(ans_name), LDNS_RR_TYPE_A,
					 LDNS_RR_CLASS_IN, LDNS_RD);
	uint8_t *qw = NULL, *rw = NULL, *s = NULL;
	size_t ql = 0, rl = 0;
	ldns_rr *rr = NULL;
	char text[300];
	int err = -ENOMEM;

	if (!q || !r)
		goto out;
	ldns_pkt_set_id(q, 0x5151);
	ldns_pkt_set_id(r, ans_id);
	ldns_pkt_set_qr(r, true);
	snprintf(text, sizeof(text), "%s 60 IN A 192.0.2.7", ans_name);
	if (ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
		goto out;
	ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, rr);
	if (ldns_pkt2wire(&qw, q, &ql) != LDNS_STATUS_OK ||
	    ldns_pkt2wire(&rw, r, &rl) != LDNS_STATUS_OK)
		goto out;
	s = malloc(3 + ql + rl);
	if (!s)
		goto out;
	s[0] = 1;
	s[1] = (uint8_t)(ql >> 8);
	s[2] = (uint8_t)ql;
	memcpy(s + 3, qw, ql);
	memcpy(s + 3 + ql, rw, rl);
	err = put("dns", name, s, 3 + ql + rl);
out:
	free(s);
	free(qw);
	free(rw);
	ldns_pkt_free(q);
	ldns_pkt_free(r);
	return err;
}

/* HTTP/1 streams: a mode byte (1 answers, 2 to HEAD), a cut count and cuts, the bytes. */
static int http_seeds(void)
{
	static const struct {
		const char *name, *hdr, *msg;
		size_t hdr_len;
	} v[] = {
		{"post", "\0\0", "POST /a/../b?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
				   "GET /%41 HTTP/1.1\r\nHost: a\r\n\r\n", 2},
		{"chunked", "\0\3\1\5\2",
		 "PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n", 5},
		{"upgrade", "\0\1\7", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
					"Upgrade: websocket\r\n\r\nraw bytes", 3},
		{"continue", "\1\2\4\11", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
					  "Content-Length: 2\r\n\r\nok", 4},
		{"head", "\3\0", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"
				 "HTTP/1.1 204 No Content\r\n\r\n", 2},
		{"close", "\1\0", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				  "a\r\n0123456789\r\n0\r\n\r\nHTTP/1.0 200 OK\r\n\r\nrest", 2},
	};
	char buf[512];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t ml = strlen(v[i].msg);

		memcpy(buf, v[i].hdr, v[i].hdr_len);
		memcpy(buf + v[i].hdr_len, v[i].msg, ml);
		if (put("http", v[i].name, buf, v[i].hdr_len + ml))
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "Error: mkdir %s: %s\n", dir, strerror(errno));
		return 1;
	}
	if (proxy_seeds() || sni_seeds() || http_seeds() ||
	    dns_query_seed("svc-a", "helloworld.hello.svc.cluster.local.", LDNS_RR_TYPE_A, false,
			   false) ||
	    dns_query_seed("svc-aaaa", "HelloWorld.hello.svc.cluster.local.", LDNS_RR_TYPE_AAAA,
			   true, false) ||
	    dns_query_seed("se-a", "helloworld.hello.global.", LDNS_RR_TYPE_A, false, true) ||
	    dns_query_seed("search", "helloworld.hello.hello.svc.cluster.local.", LDNS_RR_TYPE_A,
			   false, true) ||
	    dns_query_seed("other", "example.com.", LDNS_RR_TYPE_MX, true, true) ||
	    dns_pair_seed("match", "www.example.com.", 0x5151) ||
	    dns_pair_seed("case", "WWW.EXAMPLE.com.", 0x5151) ||
	    dns_pair_seed("wrong-id", "www.example.com.", 0x5152) ||
	    dns_pair_seed("wrong-name", "www.example.org.", 0x5151))
		return 1;
	return 0;
}
