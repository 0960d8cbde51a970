/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The lab's Kubernetes API server: one process per lab cluster (`ksteer lab-api`). */
#ifndef KSTEER_LAB_API_H
#define KSTEER_LAB_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define API_MAX_BODY (3u << 20) /* as kube-apiserver's 3 MiB request limit */
#define API_MAX_CONNS 256
#define API_IDLE_TIMEOUT 120 /* s, an idle connection */
#define API_MAX_WATCH 1800 /* s, the longest watch; timeoutSeconds is cut to it */
#define API_BOOKMARK_MS 10000 /* between bookmarks when asked for */
#define API_KEEPALIVE_MS 30000 /* a newline on a quiet watch: a gone client is noticed */

int lab_api(int argc, char **argv);

/*
 * Makes the lab follow the store (pods of Deployments and Pods, Pod status,
 * EndpointSlices, the agents' policy directory); called with the store locked
 * after each change. In lab.c.
 */
int lab_sync(struct store *st, const char *cluster, char *err, size_t len);

/* Kubernetes label selectors (=, ==, !=, in, notin, key, !key) on an object's labels. */
bool label_selector_match(const char *sel, json_t *labels);

#endif
