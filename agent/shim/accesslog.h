/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The access log: one JSON line per HTTP request and per TCP stream the shim
 * carries, with the fields of Envoy's JSON access log as Istio configures it.
 * Lines queue in a bounded buffer written without blocking: when the reader
 * (a pipe) is behind and the buffer full, lines are dropped and counted.
 */
#ifndef KSTEER_SHIM_ACCESSLOG_H
#define KSTEER_SHIM_ACCESSLOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../lib/buf.h"

struct alog {
	int fd; /* -1: off */
	bool own; /* opened here: closed here */
	struct buf q; /* lines not yet written */
	size_t cap; /* the most q holds */
	uint64_t lines, dropped, write_errors;
};

/* One entry; NULL strings are written as null, negative numbers too. */
struct alog_rec {
	uint64_t start_us; /* wall clock, microseconds since the epoch */
	const char *method, *path, *protocol, *response_flags;
	int response_code; /* 0: none (a stream, or no answer) */
	uint64_t bytes_received, bytes_sent;
	uint64_t duration_ms;
	const char *upstream_host, *upstream_cluster, *x_forwarded_for, *user_agent, *request_id,
		*authority, *downstream_remote_address, *downstream_local_address,
		*requested_server_name, *route_name, *reporter;
};

/* path "-": standard output; NULL: off. 0 or -errno. */
int alog_open(struct alog *l, const char *path, size_t cap);
void alog_close(struct alog *l);
void alog_write(struct alog *l, const struct alog_rec *r);
/* Writes what is queued, as far as the descriptor takes it now. */
void alog_flush(struct alog *l);
/* A string as JSON, escaped (every byte not printable ASCII as \u00XX); NULL as null. */
void json_quote(FILE *f, const char *s);

#endif
