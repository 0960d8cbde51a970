// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The lab's built-in HTTP server (libmicrohttpd): what a pod's containerPort
 * runs. Answers "Hello version: V, instance: POD, cluster: C" and, on
 * /headers, the request headers it received.
 */
#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lab.h"

struct serve {
	const char *version, *pod, *cluster;
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
	if (!strcmp(url, "/headers"))
		MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, f);
	else
		fprintf(f, "Hello version: %s, instance: %s, cluster: %s\n", s->version, s->pod,
			s->cluster);
	fclose(f);
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "text/plain");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

int lab_serve(int argc, char **argv)
{
	struct serve s = { "unknown", "unknown", "unknown" };
	struct MHD_Daemon *d[16];
	int nd = 0, c;
	sigset_t mask;
	int sig;

	while ((c = getopt(argc, argv, "v:p:c:l:")) != -1) {
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
