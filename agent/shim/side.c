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

bool side_pending(const struct side *sd)
{
	return sd->ssl && (SSL_pending(sd->ssl) > 0 || BIO_pending(sd->rb) > 0);
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
