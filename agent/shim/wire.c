// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "wire.h"

#include <openssl/err.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- PROXY protocol v2 (haproxy's proxy-protocol.txt, section 2.2) ---- */

static const unsigned char pp2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					  0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

size_t proxy_v2_build(unsigned char *out, const struct ks_addr *src, uint16_t sport,
		      const struct ks_addr *dst, uint16_t dport)
{
	bool v4 = addr_is_v4(src) && addr_is_v4(dst);
	uint16_t alen = v4 ? 12 : 36;
	unsigned char *p = out + 16;

	memcpy(out, pp2_sig, 12);
	out[12] = 0x21;		    /* version 2, PROXY */
	out[13] = v4 ? 0x11 : 0x21; /* TCP over IPv4 / IPv6 */
	out[14] = (unsigned char)(alen >> 8);
	out[15] = (unsigned char)alen;
	memcpy(p, (const unsigned char *)src + (v4 ? 12 : 0), v4 ? 4 : 16);
	p += v4 ? 4 : 16;
	memcpy(p, (const unsigned char *)dst + (v4 ? 12 : 0), v4 ? 4 : 16);
	p += v4 ? 4 : 16;
	*p++ = (unsigned char)(sport >> 8);
	*p++ = (unsigned char)sport;
	*p++ = (unsigned char)(dport >> 8);
	*p++ = (unsigned char)dport;
	return 16 + alen;
}

static void addr_from(struct ks_addr *a, const unsigned char *p, bool v4)
{
	memset(a, 0, sizeof(*a));
	if (v4) {
		((unsigned char *)a)[10] = 0xff;
		((unsigned char *)a)[11] = 0xff;
		memcpy((unsigned char *)a + 12, p, 4);
	} else {
		memcpy(a, p, 16);
	}
}

int proxy_v2_parse(const unsigned char *p, size_t n, struct ks_addr *src, uint16_t *sport,
		   struct ks_addr *dst, uint16_t *dport)
{
	size_t len;
	bool v4;

	if (memcmp(p, pp2_sig, n < 12 ? n : 12))
		return -1;
	if (n < 16)
		return 0;
	len = (size_t)p[14] << 8 | p[15];
	if (p[12] != 0x21 || (p[13] != 0x11 && p[13] != 0x21) || len > 512)
		return -2; /* LOCAL, UDP, unix sockets: not from a ksteer peer */
	v4 = p[13] == 0x11;
	if (len < (v4 ? 12u : 36u))
		return -2;
	if (n < 16 + len)
		return 0;
	p += 16;
	addr_from(src, p, v4);
	addr_from(dst, p + (v4 ? 4 : 16), v4);
	p += v4 ? 8 : 32;
	*sport = (uint16_t)(p[0] << 8 | p[1]);
	*dport = (uint16_t)(p[2] << 8 | p[3]);
	return (int)(16 + len);
}

/* ---- SNI: OpenSSL parses the ClientHello; its callback stops the handshake there ---- */

struct peek_result {
	char *sni;
	size_t len;
	int found; /* 1 SNI, -2 no SNI */
};

static int peek_idx = -1;

int sni_ext_name(const unsigned char *e, size_t el, char *sni, size_t sni_len)
{
	size_t nl;

	/* ServerNameList: u16 length, then entries of u8 type, u16 length, name */
	if (el < 5 || (size_t)(e[0] << 8 | e[1]) != el - 2 || e[2] != 0 /* host_name */)
		return -2;
	nl = (size_t)(e[3] << 8 | e[4]);
	if (nl + 5 > el || !nl || nl >= sni_len || memchr(e + 5, 0, nl))
		return -2;
	memcpy(sni, e + 5, nl);
	sni[nl] = 0;
	return 1;
}

static int peek_cb(SSL *ssl, int *al, void *arg)
{
	struct peek_result *r = SSL_get_ex_data(ssl, peek_idx);
	const unsigned char *e;
	size_t el;

	(void)arg;
	*al = SSL_AD_UNRECOGNIZED_NAME;
	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &e, &el))
		r->found = -2;
	else
		r->found = sni_ext_name(e, el, r->sni, r->len);
	return SSL_CLIENT_HELLO_ERROR; /* enough: nothing is answered */
}

SSL_CTX *sni_peek_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (peek_idx < 0)
		peek_idx = SSL_get_ex_new_index(0, "ksteer sni peek", NULL, NULL, NULL);
	if (ctx)
		SSL_CTX_set_client_hello_cb(ctx, peek_cb, NULL);
	return ctx;
}

int sni_peek(SSL_CTX *peek_ctx, const void *p, size_t n, char *sni, size_t sni_len)
{
	struct peek_result res = {.sni = sni, .len = sni_len};
	SSL *ssl = SSL_new(peek_ctx);
	BIO *rb = BIO_new_mem_buf(p, (int)n), *wb = BIO_new(BIO_s_mem());
	int r;

	if (!ssl || !rb || !wb) {
		SSL_free(ssl);
		BIO_free(rb);
		BIO_free(wb);
		return -1;
	}
	BIO_set_mem_eof_return(rb, -1);
	SSL_set_bio(ssl, rb, wb);
	SSL_set_ex_data(ssl, peek_idx, &res);
	SSL_set_accept_state(ssl);
	r = SSL_do_handshake(ssl);
	if (r != 1 && !res.found && SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ)
		res.found = 0; /* the ClientHello is not complete yet */
	else if (!res.found)
		res.found = -1;
	SSL_free(ssl);
	ERR_clear_error();
	return res.found;
}

int sni_parse(const char *sni, uint16_t *port, char *subset, size_t subset_len, char *host,
	      size_t host_len)
{
	const char *p, *q;
	char *end;
	unsigned long v;

	if (strncmp(sni, "outbound_.", 10))
		return -1;
	p = sni + 10;
	v = strtoul(p, &end, 10);
	if (end == p || v == 0 || v > 65535 || strncmp(end, "_.", 2))
		return -1;
	*port = (uint16_t)v;
	p = end + 2;
	q = strstr(p, "_.");
	if (!q || (size_t)(q - p) >= subset_len)
		return -1;
	memcpy(subset, p, (size_t)(q - p));
	subset[q - p] = 0;
	p = q + 2;
	if (!*p || strlen(p) >= host_len)
		return -1;
	snprintf(host, host_len, "%s", p);
	return 0;
}
