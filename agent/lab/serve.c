// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The lab's built-in HTTP server (libmicrohttpd): what a pod's containerPort
 * runs. Answers "Hello version: V, instance: POD, cluster: C", on
 * /headers the request headers it received, on /served how many requests it
 * answered and the last one's Host. A containerPort named tcp-*
 * runs a line echo instead, as Istio's tcp-echo sample does: each line comes
 * back as "V POD C LINE".
 */
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
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
	struct MHD_Response *r;
	char *body = NULL;
	size_t len = 0;
	FILE *f;
	enum MHD_Result ret;

	(void)method;
	(void)version;
	(void)upload;
	if (!*state) { /* first call per request: headers only */
		*state = (void *)1;
		return MHD_YES;
	}
	if (*upload_size) { /* request bodies are read and dropped */
		*upload_size = 0;
		return MHD_YES;
	}
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
							 MHD_USE_EPOLL,
						 (uint16_t)atoi(optarg), NULL, NULL, answer, &s,
						 MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
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
