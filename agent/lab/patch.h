/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The patches kubectl sends: JSON merge patch (RFC 7386), Kubernetes'
 * strategic merge patch for built-in kinds, JSON patch (RFC 6902).
 * Each returns a new document or NULL with the reason in err.
 */
#ifndef KSTEER_LAB_PATCH_H
#define KSTEER_LAB_PATCH_H

#include <jansson.h>
#include <stddef.h>

json_t *merge_patch(json_t *doc, json_t *patch);
json_t *strategic_patch(json_t *doc, json_t *patch, char *err, size_t len);
json_t *json_patch(json_t *doc, json_t *ops, char *err, size_t len);

#endif
