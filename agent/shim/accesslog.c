// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The access log's lines: formatted in memory, queued, written non-blocking. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"

int alog_open(struct alog *l, const char *path, size_t cap)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->cap = cap;
	if (!path)
		return 0;
	if (!strcmp(path, "-")) {
		l->fd = dup(STDOUT_FILENO); /* its own description: O_NONBLOCK stays ours */
		if (l->fd >= 0 && fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK)) {
			close(l->fd);
			l->fd = -1;
		}
	} else {
		l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0640);
	}
	if (l->fd < 0)
		return -errno;
	l->own = true;
	return 0;
}

void alog_close(struct alog *l)
{
	if (l->fd >= 0) {
		alog_flush(l);
		if (l->own)
			close(l->fd);
	}
	buf_free(&l->q);
	l->fd = -1;
}

void alog_flush(struct alog *l)
{
	while (l->fd >= 0 && l->q.len) {
		ssize_t n = write(l->fd, l->q.p, l->q.len);

		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				l->write_errors++;
				l->q.len = 0; /* a broken log must not hold lines for ever */
			}
			return;
		}
		buf_drop(&l->q, (size_t)n);
	}
}

void json_quote(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			putc_unlocked(*p, f);
	}
	fputc('"', f);
}

static void field(FILE *f, const char *name, const char *v)
{
	fprintf(f, ",\"%s\":", name);
	json_quote(f, v);
}

void alog_write(struct alog *l, const struct alog_rec *r)
{
	char *line = NULL, ts[40];
	size_t len = 0;
	time_t sec = (time_t)(r->start_us / 1000000);
	struct tm tm;
	FILE *f;

	if (l->fd < 0)
		return;
	gmtime_r(&sec, &tm);
	strftime(ts, 24, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03uZ",
		 (unsigned)(r->start_us / 1000 % 1000));
	f = open_memstream(&line, &len);
	if (!f) {
		l->dropped++;
		return;
	}
	fprintf(f, "{\"start_time\":\"%s\"", ts);
	field(f, "method", r->method);
	field(f, "path", r->path);
	field(f, "protocol", r->protocol);
	if (r->response_code)
		fprintf(f, ",\"response_code\":%d", r->response_code);
	else
		fputs(",\"response_code\":0", f);
	field(f, "response_flags", r->response_flags ? r->response_flags : "-");
	fprintf(f, ",\"bytes_received\":%llu,\"bytes_sent\":%llu,\"duration\":%llu",
		(unsigned long long)r->bytes_received, (unsigned long long)r->bytes_sent,
		(unsigned long long)r->duration_ms);
	field(f, "upstream_host", r->upstream_host);
	field(f, "upstream_cluster", r->upstream_cluster);
	field(f, "x_forwarded_for", r->x_forwarded_for);
	field(f, "user_agent", r->user_agent);
	field(f, "request_id", r->request_id);
	field(f, "authority", r->authority);
	field(f, "downstream_remote_address", r->downstream_remote_address);
	field(f, "downstream_local_address", r->downstream_local_address);
	field(f, "requested_server_name", r->requested_server_name);
	field(f, "route_name", r->route_name);
	field(f, "reporter", r->reporter);
	fputs("}\n", f);
	fclose(f);
	if (!line || l->q.len + len > l->cap || buf_put(&l->q, line, len)) {
		l->dropped++; /* the writer is behind: this line goes, the loop does not wait */
	} else {
		l->lines++;
		alog_flush(l);
	}
	free(line);
}
