// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "kclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int kclient_call(const struct kclient *k, const char *method, const char *path, const char *ctype,
		 json_t *body, int *code, json_t **reply)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)k->port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = KCLIENT_TIMEOUT };
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = NULL;
	char *b = body ? json_dumps(body, JSON_COMPACT) : NULL, *head = NULL, *resp = NULL;
	size_t n = 0, cap = 65536;
	int fd = -1, err = -EIO, hl;

	*code = 0;
	*reply = NULL;
	if (!ctx || !SSL_CTX_load_verify_locations(ctx, k->ca, NULL))
		goto out;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		err = -errno;
		goto out;
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set1_host(ssl, "127.0.0.1");
	if (SSL_connect(ssl) != 1)
		goto out;
	hl = asprintf(&head,
		      "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
		      "Accept: application/json\r\nUser-Agent: ksteer-lab\r\nConnection: close\r\n"
		      "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
		      method, path, k->port, k->token, ctype ? ctype : "application/json",
		      b ? strlen(b) : 0);
	if (hl < 0 || SSL_write(ssl, head, hl) != hl ||
	    (b && SSL_write(ssl, b, (int)strlen(b)) != (int)strlen(b)))
		goto out;
	resp = malloc(cap + 1);
	for (;;) {
		int r;

		if (n == cap) {
			if (cap >= KCLIENT_MAX_REPLY)
				goto out;
			cap *= 2;
			resp = realloc(resp, cap + 1);
			if (!resp)
				goto out;
		}
		r = SSL_read(ssl, resp + n, (int)(cap - n));
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	resp[n] = 0;
	{
		char *sep = strstr(resp, "\r\n\r\n");

		if (!sep || sscanf(resp, "HTTP/1.%*d %d", code) != 1)
			goto out;
		if (strcasestr(resp, "transfer-encoding: chunked") &&
		    strcasestr(resp, "transfer-encoding: chunked") < sep) {
			/* de-chunk in place */
			char *in = sep + 4, *o = sep + 4;

			for (;;) {
				char *end;
				unsigned long len = strtoul(in, &end, 16);

				if (end == in || !len)
					break;
				in = strstr(end, "\r\n");
				if (!in || in + 2 + len > resp + n)
					break;
				memmove(o, in + 2, len);
				o += len;
				in += 2 + len + 2;
			}
			*o = 0;
		}
		*reply = json_loads(sep + 4, 0, NULL);
	}
	err = 0;
out:
	if (err == -EIO && !*code)
		ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	free(b);
	free(head);
	free(resp);
	return err;
}
