// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The lab's built-in HTTP server (libmicrohttpd): what a pod's containerPort
 * runs. Answers "Hello version: V, instance: POD, cluster: C", on
 * /headers the request headers it received, on /served how many requests it
 * answered and the last one's Host. A containerPort named tcp-*
 * runs a line echo instead, as Istio's tcp-echo sample does: each line comes
 * back as "V POD C LINE".
 *
 * For the differential HTTP tests (selftests/lab/test_http.sh), what a proxy
 * may change on either side:
 *   /sha          any method: JSON of what arrived (method, target as sent,
 *                 version, headers and trailers in order, body length and sha256)
 *   /bytes/N      N bytes, byte i is i % 251 (HEAD: the length, no body)
 *   /status/N     status N; 204 and 304 without a body
 *   /chunked/N    the /bytes/N pattern in chunked transfer-encoding
 *   /close/N      the same, close-delimited (no length, no chunks)
 *   /upgrade      "Connection: Upgrade" + "Upgrade: echo": 101, then raw bytes echoed
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lab.h"

struct serve {
	const char *version, *pod, *cluster;
	unsigned status; /* every HTTP answer's status (-s: a sick pod); 200 by default */
	unsigned long served; /* requests answered, for /served (mirror tests) */
	char last_host[256];  /* the Host of the last of them */
};

/* One request's state, made when its request line arrives (the URI log callback). */
struct req {
	char *target;	 /* the request-target as received: path and query, undecoded */
	bool head_seen;	 /* the access handler was called once (headers only) */
	EVP_MD_CTX *sha; /* /sha: the body's digest so far */
	unsigned long long len; /* body bytes read */
};

static void *req_new(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct req *q = calloc(1, sizeof(*q));

	(void)cls;
	(void)c;
	if (q)
		q->target = strdup(uri);
	return q;
}

static void req_free(void *cls, struct MHD_Connection *c, void **state,
		     enum MHD_RequestTerminationCode why)
{
	struct req *q = *state;

	(void)cls;
	(void)c;
	(void)why;
	if (!q)
		return;
	EVP_MD_CTX_free(q->sha);
	free(q->target);
	free(q);
	*state = NULL;
}

/* A JSON string of bytes as received: UTF-8 as it is, anything else read as Latin-1. */
static json_t *jbytes(const char *b, size_t n)
{
	json_t *j = json_stringn(b, n);
	char *u;

	if (j)
		return j;
	u = malloc(n * 2 + 1);
	if (!u)
		return NULL;
	for (size_t i = 0, k = 0;; i++) {
		unsigned char ch = i < n ? (unsigned char)b[i] : 0;

		if (i == n) {
			j = json_stringn(u, k);
			break;
		}
		if (ch >= 0x80)
			u[k++] = (char)(0xc0 | ch >> 6);
		u[k++] = (char)(ch < 0x80 ? ch : 0x80 | (ch & 0x3f));
	}
	free(u);
	return j;
}

static enum MHD_Result add_pair(void *cls, enum MHD_ValueKind kind, const char *k, size_t klen,
				const char *v, size_t vlen)
{
	(void)kind;
	json_array_append_new(cls, json_pack("[o, o]", jbytes(k, klen), jbytes(v ? v : "", vlen)));
	return MHD_YES;
}

static enum MHD_Result queue_text(struct MHD_Connection *c, unsigned status, char *body,
				  size_t len, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	if (type)
		MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* /sha: what this request looked like on arrival, once its body is all read. */
static enum MHD_Result answer_sha(struct MHD_Connection *c, struct req *q, const char *method,
				  const char *version)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	json_t *headers = json_array(), *trailers = json_array(), *o;
	char *body;

	if (!q->sha || !EVP_DigestFinal_ex(q->sha, md, &mdlen))
		return MHD_NO;
	for (unsigned i = 0; i < mdlen; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	hex[2 * mdlen] = 0;
	MHD_get_connection_values_n(c, MHD_HEADER_KIND, add_pair, headers);
	MHD_get_connection_values_n(c, MHD_FOOTER_KIND, add_pair, trailers);
	o = json_pack("{s:s, s:o, s:s, s:o, s:o, s:I, s:s}", "method", method, "target",
		      jbytes(q->target, strlen(q->target)), "version", version, "headers", headers,
		      "trailers", trailers, "length", (json_int_t)q->len, "sha256", hex);
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		return MHD_NO;
	return queue_text(c, MHD_HTTP_OK, body, strlen(body), "application/json");
}

/* /chunked/N and /close/N: the /bytes/N pattern written as it is asked for, no length known. */
static ssize_t pattern_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	uint64_t total = *(uint64_t *)cls;

	if (pos >= total)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (max > total - pos)
		max = (size_t)(total - pos);
	if (max > 16384) /* several writes, several chunks */
		max = 16384;
	for (size_t i = 0; i < max; i++)
		buf[i] = (char)((pos + i) % 251);
	return (ssize_t)max;
}

static enum MHD_Result answer_stream(struct MHD_Connection *c, long n, bool close_delimited)
{
	uint64_t *total = malloc(sizeof(*total));
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!total)
		return MHD_NO;
	*total = n < 0 || n > 256L * 1024 * 1024 ? 0 : (uint64_t)n;
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, pattern_read, total, free);
	if (!r) {
		free(total);
		return MHD_NO;
	}
	/* no chunks and the connection closed after: an HTTP/1.0-style answer */
	if (close_delimited)
		MHD_set_response_options(r, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END);
	MHD_add_response_header(r, "Content-Type", "application/octet-stream");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* /status/N: that status; 204 and 304 carry no body, others a short one. */
static enum MHD_Result answer_status(struct MHD_Connection *c, long n)
{
	char *body = NULL;
	int len = 0;

	if (n < 200 || n > 599)
		n = 400;
	if (n != 204 && n != 304 && (len = asprintf(&body, "status %ld\n", n)) < 0)
		return MHD_NO;
	return queue_text(c, (unsigned)n, body, body ? (size_t)len : 0, body ? "text/plain" : NULL);
}

struct tunnel {
	struct MHD_UpgradeResponseHandle *urh;
	int fd;
	size_t extra_len;
	char extra[]; /* bytes that came with the request head, echoed first */
};

static bool send_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		b += w;
		n -= (size_t)w;
	}
	return true;
}

/* After the 101: every byte back to the sender until it half-closes, then close. */
static void *tunnel_echo(void *arg)
{
	struct tunnel *t = arg;
	char buf[16384];
	ssize_t n;

	fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) & ~O_NONBLOCK);
	if (send_all(t->fd, t->extra, t->extra_len)) {
		while ((n = recv(t->fd, buf, sizeof(buf), 0)) > 0 || (n < 0 && errno == EINTR))
			if (n > 0 && !send_all(t->fd, buf, (size_t)n))
				break;
	}
	shutdown(t->fd, SHUT_WR);
	MHD_upgrade_action(t->urh, MHD_UPGRADE_ACTION_CLOSE);
	free(t);
	return NULL;
}

static void upgraded(void *cls, struct MHD_Connection *c, void *state, const char *extra_in,
		     size_t extra_len, MHD_socket fd, struct MHD_UpgradeResponseHandle *urh)
{
	struct tunnel *t = malloc(sizeof(*t) + extra_len);
	pthread_t th;

	(void)cls;
	(void)c;
	(void)state;
	if (!t) {
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		return;
	}
	t->urh = urh;
	t->fd = fd;
	t->extra_len = extra_len;
	memcpy(t->extra, extra_in, extra_len);
	/* the handler runs in MHD's event loop and must not block: the echo has its own thread */
	if (pthread_create(&th, NULL, tunnel_echo, t)) {
		free(t);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		return;
	}
	pthread_detach(th);
}

/* /upgrade: 101 and an echo for "Upgrade: echo", else 426 naming what it takes. */
static enum MHD_Result answer_upgrade(struct MHD_Connection *c)
{
	const char *up = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Upgrade");
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *body;

	if (!up || strcasecmp(up, "echo")) {
		body = strdup("send Connection: Upgrade and Upgrade: echo\n");
		if (!body)
			return MHD_NO;
		r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
		if (!r)
			return MHD_NO;
		MHD_add_response_header(r, "Upgrade", "echo");
		ret = MHD_queue_response(c, MHD_HTTP_UPGRADE_REQUIRED, r);
		MHD_destroy_response(r);
		return ret;
	}
	r = MHD_create_response_for_upgrade(upgraded, NULL);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Upgrade", "echo");
	ret = MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	FILE *f = cls;

	(void)kind;
	fprintf(f, "%s: %s\n", k, v ? v : "");
	return MHD_YES;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	struct serve *s = cls;
	struct req *q = *state;
	struct MHD_Response *r;
	char *body = NULL;
	size_t len = 0;
	FILE *f;
	enum MHD_Result ret;

	if (!q || !q->target)
		return MHD_NO;
	if (!q->head_seen) { /* first call per request: headers only */
		q->head_seen = true;
		if (!strcmp(url, "/sha") &&
		    (!(q->sha = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(q->sha, EVP_sha256(), NULL)))
			return MHD_NO;
		return MHD_YES;
	}
	if (*upload_size) { /* request bodies are read and dropped (/sha: digested) */
		if (q->sha && !EVP_DigestUpdate(q->sha, upload, *upload_size))
			return MHD_NO;
		q->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	if (q->sha)
		return answer_sha(c, q, method, version);
	if (!strncmp(url, "/status/", 8))
		return answer_status(c, atol(url + 8));
	if (!strncmp(url, "/chunked/", 9))
		return answer_stream(c, atol(url + 9), false);
	if (!strncmp(url, "/close/", 7))
		return answer_stream(c, atol(url + 7), true);
	if (!strcmp(url, "/upgrade"))
		return answer_upgrade(c);
	if (!strncmp(url, "/delay/", 7)) { /* a slow answer, for timeout tests: at most 10 s */
		long ms = atol(url + 7);

		usleep((useconds_t)(ms > 0 && ms < 10000 ? ms : 0) * 1000);
	}
	if (!strncmp(url, "/bytes/", 7)) { /* N bytes of a known pattern: byte i is i % 251 */
		long n = atol(url + 7);

		if (n < 0 || n > 256L * 1024 * 1024)
			n = 0;
		body = malloc((size_t)n + 1);
		if (!body)
			return MHD_NO;
		for (long i = 0; i < n; i++)
			body[i] = (char)(i % 251);
		r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(r, "Content-Type", "application/octet-stream");
		ret = MHD_queue_response(c, MHD_HTTP_OK, r);
		MHD_destroy_response(r);
		return ret;
	}
	f = open_memstream(&body, &len);
	if (!strcmp(url, "/served")) { /* what this server answered before: count, last Host */
		fprintf(f, "%lu %s\n", s->served, s->last_host);
		fclose(f);
		r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		ret = MHD_queue_response(c, MHD_HTTP_OK, r);
		MHD_destroy_response(r);
		return ret;
	}
	s->served++;
	snprintf(s->last_host, sizeof(s->last_host), "%s",
		 MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host")
		     ? MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host")
		     : "-");
	if (!strcmp(url, "/headers"))
		MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, f);
	else
		fprintf(f, "Hello version: %s, instance: %s, cluster: %s\n", s->version, s->pod,
			s->cluster);
	fclose(f);
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "text/plain");
	ret = MHD_queue_response(c, s->status, r);
	MHD_destroy_response(r);
	return ret;
}

struct echo_conn {
	const struct serve *s;
	int fd;
};

static void *echo_conn(void *arg)
{
	struct echo_conn *e = arg;
	FILE *in = fdopen(e->fd, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while (in && (n = getline(&line, &cap, in)) > 0) {
		char *out = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&out, &len);

		if (!f)
			break;
		/* the line's bytes as they came, NULs included */
		fprintf(f, "%s %s %s ", e->s->version, e->s->pod, e->s->cluster);
		fwrite(line, 1, (size_t)(line[n - 1] == '\n' ? n - 1 : n), f);
		fputc('\n', f);
		fclose(f);
		if (send(e->fd, out, len, MSG_NOSIGNAL) != (ssize_t)len) {
			free(out);
			break;
		}
		free(out);
	}
	free(line);
	if (in)
		fclose(in);
	else
		close(e->fd);
	free(e);
	return NULL;
}

static void *echo_accept(void *arg)
{
	struct echo_conn *l = arg;

	for (;;) {
		int fd = accept(l->fd, NULL, NULL);
		struct echo_conn *e;
		pthread_t th;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		e = malloc(sizeof(*e));
		if (!e) {
			close(fd);
			continue;
		}
		e->s = l->s;
		e->fd = fd;
		if (pthread_create(&th, NULL, echo_conn, e)) {
			free(e);
			close(fd);
			continue;
		}
		pthread_detach(th);
	}
}

/* The line echo on port, dual stack, served by threads until the process ends. */
static int echo_start(const struct serve *s, const char *port)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(port))};
	struct echo_conn *l = malloc(sizeof(*l));
	int one = 1, zero = 0;
	pthread_t th;

	if (!l)
		return -1;
	l->s = s;
	l->fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
	    bind(l->fd, (struct sockaddr *)&a, sizeof(a)) || listen(l->fd, 128) ||
	    pthread_create(&th, NULL, echo_accept, l)) {
		fprintf(stderr, "Error: echo on port %s: %s\n", port, strerror(errno));
		return -1;
	}
	pthread_detach(th);
	return 0;
}

int lab_serve(int argc, char **argv)
{
	struct serve s = { "unknown", "unknown", "unknown", MHD_HTTP_OK };
	struct MHD_Daemon *d[16];
	int nd = 0, c;
	sigset_t mask;
	int sig;

	while ((c = getopt(argc, argv, "v:p:c:l:e:s:")) != -1) {
		switch (c) {
		case 'v': s.version = optarg; break;
		case 'p': s.pod = optarg; break;
		case 'c': s.cluster = optarg; break;
		case 'l':
			if (nd == 16)
				return 2;
			/* dual stack: the lab's pods have IPv4 and IPv6 addresses */
			d[nd] = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_DUAL_STACK |
							 MHD_USE_EPOLL | MHD_ALLOW_UPGRADE,
						 (uint16_t)atoi(optarg), NULL, NULL, answer, &s,
						 MHD_OPTION_CONNECTION_TIMEOUT, 60u,
						 /* not FD_SETSIZE's 1020: a pod that a hostile client
						  * fills must not be what turns others away */
						 MHD_OPTION_CONNECTION_LIMIT, 16384u,
						 MHD_OPTION_URI_LOG_CALLBACK, req_new, NULL,
						 MHD_OPTION_NOTIFY_COMPLETED, req_free, NULL,
						 MHD_OPTION_END);
			if (!d[nd]) {
				fprintf(stderr, "Error: listen on port %s: %s\n", optarg, strerror(errno));
				return 1;
			}
			nd++;
			break;
		case 's':
			s.status = (unsigned)atoi(optarg);
			if (s.status < 200 || s.status > 599)
				return 2;
			break;
		case 'e':
			if (echo_start(&s, optarg))
				return 1;
			break;
		default:
			return 2;
		}
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigwait(&mask, &sig);
	while (nd--)
		MHD_stop_daemon(d[nd]);
	return 0;
}
