// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shim_int.h"

/* A proxy writes what it has when it has it: Nagle would hold small writes for an ACK. */
void sock_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void side_init(struct side *sd, int fd)
{
	memset(sd, 0, sizeof(*sd));
	sd->fd = fd;
}

void side_close(struct side *sd)
{
	if (sd->ssl)
		SSL_free(sd->ssl);
	if (sd->fd >= 0)
		close(sd->fd);
	buf_free(&sd->out);
	sd->ssl = NULL;
	sd->fd = -1;
}

int side_connect(struct side *sd, const struct ks_addr *addr, uint16_t port, uint32_t mark)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	side_init(sd, -1);
	if (fd < 0)
		return -errno;
	memcpy(&sa.sin6_addr, addr, 16); /* IPv4 as ::ffff:a.b.c.d: dual stack */
	/* the agent's mark: connect4 lets the shim's own connections through */
	setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	sock_nodelay(fd);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	sd->fd = fd;
	return 0;
}

int side_connect_done(struct side *sd)
{
	struct sockaddr_in6 peer;
	socklen_t pl = sizeof(peer);
	int err = 0;
	socklen_t l = sizeof(err);

	if (sd->connected)
		return 1;
	getsockopt(sd->fd, SOL_SOCKET, SO_ERROR, &err, &l);
	if (err)
		return -err;
	if (getpeername(sd->fd, (struct sockaddr *)&peer, &pl))
		return errno == ENOTCONN ? 0 : -errno;
	sd->connected = true;
	return 1;
}

/* Ciphertext OpenSSL produced, queued for the socket. */
static void drain_wbio(struct side *sd)
{
	char tmp[16384];
	int n;

	while (sd->wb && (n = BIO_read(sd->wb, tmp, sizeof(tmp))) > 0)
		buf_put(&sd->out, tmp, (size_t)n);
}

/* Ciphertext from the socket into OpenSSL, as much as there is. */
static int fill_rbio(struct side *sd)
{
	char tmp[16384];
	ssize_t n;

	while (!sd->eof) {
		n = recv(sd->fd, tmp, sizeof(tmp), 0);
		if (n > 0) {
			BIO_write(sd->rb, tmp, (int)n);
			if (BIO_pending(sd->rb) > SIDE_HIGH_WATER)
				break;
			continue;
		}
		if (n == 0) {
			sd->eof = true;
			BIO_set_mem_eof_return(sd->rb, 0);
			break;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		if (errno == EINTR)
			continue;
		return -errno;
	}
	return 0;
}

int side_tls(struct side *sd, SSL_CTX *ctx, bool client, const char *sni, const void *pre,
	     size_t pre_len)
{
	sd->ssl = SSL_new(ctx);
	sd->rb = BIO_new(BIO_s_mem());
	sd->wb = BIO_new(BIO_s_mem());
	if (!sd->ssl || !sd->rb || !sd->wb) {
		BIO_free(sd->rb);
		BIO_free(sd->wb);
		SSL_free(sd->ssl);
		sd->ssl = NULL;
		return -ENOMEM;
	}
	BIO_set_mem_eof_return(sd->rb, -1); /* empty is "retry" until the socket says EOF */
	SSL_set_bio(sd->ssl, sd->rb, sd->wb);
	tls_set_peer_rule(sd->ssl, &sd->rule);
	if (client) {
		SSL_set_connect_state(sd->ssl);
		if (sni)
			SSL_set_tlsext_host_name(sd->ssl, sni);
	} else {
		SSL_set_accept_state(sd->ssl);
	}
	if (pre_len)
		BIO_write(sd->rb, pre, (int)pre_len);
	return 0;
}

bool side_flush(struct side *sd)
{
	while (sd->out.len) {
		ssize_t n = send(sd->fd, sd->out.p, sd->out.len, MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		buf_drop(&sd->out, (size_t)n);
	}
	return true;
}

static void ssl_why(struct side *sd, char *why, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (sd->rule.why[0])
		snprintf(why, len, "%s", sd->rule.why);
	else if (e)
		ERR_error_string_n(e, why, len);
	else
		snprintf(why, len, "%s",
			 sd->eof ? "peer closed during the handshake" : "TLS error");
	ERR_clear_error();
}

int side_handshake(struct side *sd, char *why, size_t why_len)
{
	int r;

	if (fill_rbio(sd)) {
		snprintf(why, why_len, "%s", strerror(errno));
		return -1;
	}
	r = SSL_do_handshake(sd->ssl);
	drain_wbio(sd); /* alerts too: a refused peer learns why */
	if (r == 1)
		return 1;
	switch (SSL_get_error(sd->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		if (!sd->eof)
			return 0;
		/* fall through */
	default:
		ssl_why(sd, why, why_len);
		return -1;
	}
}

ssize_t side_read(struct side *sd, void *p, size_t cap)
{
	ssize_t n;

	if (!sd->ssl) {
		if (sd->eof)
			return 0;
		n = recv(sd->fd, p, cap, 0);
		if (n == 0)
			sd->eof = true;
		return n >= 0 ? n : -errno;
	}
	for (;;) {
		int r = SSL_read(sd->ssl, p, (int)cap);

		drain_wbio(sd);
		if (r > 0)
			return r;
		switch (SSL_get_error(sd->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			if (sd->eof)
				return 0; /* the socket ended without close_notify */
			if (fill_rbio(sd))
				return -errno;
			if (!BIO_pending(sd->rb) && !sd->eof)
				return -EAGAIN;
			continue;
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		default:
			ERR_clear_error();
			return -EIO;
		}
	}
}

bool side_write(struct side *sd, const void *p, size_t n)
{
	if (!n)
		return true;
	if (!sd->ssl) {
		buf_put(&sd->out, p, n);
	} else {
		/* a memory BIO takes every record: SSL_write completes at once */
		if (SSL_write(sd->ssl, p, (int)n) <= 0) {
			ERR_clear_error();
			return false;
		}
		drain_wbio(sd);
	}
	return side_flush(sd);
}

void side_shutdown_write(struct side *sd)
{
	if (sd->ssl) {
		SSL_shutdown(sd->ssl);
		drain_wbio(sd);
		ERR_clear_error();
	}
	side_flush(sd);
	if (!sd->out.len)
		shutdown(sd->fd, SHUT_WR);
}

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

static int peek_cb(SSL *ssl, int *al, void *arg)
{
	struct peek_result *r = SSL_get_ex_data(ssl, peek_idx);
	const unsigned char *e;
	size_t el, nl;

	(void)arg;
	*al = SSL_AD_UNRECOGNIZED_NAME;
	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &e, &el)) {
		r->found = -2;
		return SSL_CLIENT_HELLO_ERROR;
	}
	/* ServerNameList: u16 length, then entries of u8 type, u16 length, name */
	if (el < 5 || (size_t)(e[0] << 8 | e[1]) != el - 2 || e[2] != 0 /* host_name */) {
		r->found = -2;
		return SSL_CLIENT_HELLO_ERROR;
	}
	nl = (size_t)(e[3] << 8 | e[4]);
	if (nl + 5 > el || !nl || nl >= r->len || memchr(e + 5, 0, nl)) {
		r->found = -2;
		return SSL_CLIENT_HELLO_ERROR;
	}
	memcpy(r->sni, e + 5, nl);
	r->sni[nl] = 0;
	r->found = 1;
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
