/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A policy batch: the objects of some files, loaded, typed and validated. */
#ifndef KSTEER_POLICY_H
#define KSTEER_POLICY_H

#include <regex.h>
#include <stddef.h>

#include "../lib/arena.h"
#include "../lib/diag.h"
#include "model.h"

/* Documented limits: a file over POLICY_MAX_FILE_BYTES is refused whole. */
#define POLICY_MAX_FILE_BYTES (8u << 20)
/* Node visits per document (aliases may point at one node many times). */
#define POLICY_MAX_NODE_VISITS 1000000L
/* Longest regex accepted in a StringMatch. */
#define POLICY_MAX_REGEX 1024

struct policy {
	struct arena a;
	struct diag *diag;
	const char *default_ns; /* -n; "default" when unset */
	struct resource **res;
	unsigned n, cap;
	unsigned seq;
};

void policy_init(struct policy *p, struct diag *diag, const char *default_ns);
void policy_free(struct policy *p);
/* A file, a directory (its *.yaml, *.yml, *.json, sorted, not recursive) or "-". */
int policy_load_path(struct policy *p, const char *path);
int policy_load_buffer(struct policy *p, const char *name, const char *buf, size_t len);
/* Istio's validation rules, per object and across the batch. 0 or -EINVAL. */
int policy_validate(struct policy *p);

/* Istio's host rules: short names resolve in the object's namespace. */
const char *host_fqdn(struct arena *a, const char *host, const char *ns);
int host_matches(const char *pattern, const char *host);
/* A Gateway server with a port and TLS mode AUTO_PASSTHROUGH (routed by SNI, not decrypted). */
bool server_auto_passthrough(const struct server *sv); /* "*.global" matches "a.b.global" */
int labels_match(const struct kvs *selector, const struct kvs *labels);
const char *labels_get(const struct kvs *labels, const char *key);
/* A StringMatch regex (RE2 in Istio) as POSIX ERE anchored to the whole value: 0 or -EINVAL. */
int policy_regex_compile(const char *re, regex_t *out);

/* retries.attempts above this are cut to it, with a warning: a retry storm has a bound */
#define POLICY_MAX_RETRIES 10

#endif
