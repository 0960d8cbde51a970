/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the lab API server serves: its resources, the discovery and OpenAPI
 * documents kubectl reads, and the tables `kubectl get` prints.
 */
#ifndef KSTEER_LAB_KINDS_H
#define KSTEER_LAB_KINDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct kind_def {
	const char *group, *version; /* version: the one served ("" for Istio's three) */
	const char *resource, *kind, *singular, *short_names;
	bool namespaced;
	bool builtin; /* a Kubernetes type: strategic merge patch */
	bool policy; /* handed to the agents (and validated as `ksteer check` does) */
};

extern const struct kind_def kind_defs[];
extern const size_t n_kind_defs;

const struct kind_def *kind_find(const char *group, const char *version, const char *resource);
/* "GROUP/RESOURCE": the store's key, the same for every version */
void kind_key(const struct kind_def *k, char *out, size_t len);

json_t *discovery_api(const char *addr);
json_t *discovery_apis(void);
json_t *discovery_resources(const char *group, const char *version); /* NULL: not served */
json_t *openapi_v3_index(void);
json_t *openapi_v3_doc(const char *group, const char *version); /* NULL: not served */
/* The OpenAPI v2 document as protobuf (kubectl asks for it): a valid, empty one. */
const unsigned char *openapi_v2_pb(size_t *len);

/* A meta.k8s.io/v1 Table of objects (an array), as kubectl get prints it. */
json_t *table_of(const struct kind_def *k, json_t *items, bool full_object);
/* Kubernetes' short ages: 42s, 3m10s, 5h, 2d3h. */
void k8s_age(const char *created, char *out, size_t len);

#endif
