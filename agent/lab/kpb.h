/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Kubernetes' protobuf encoding, read only as far as kubectl's typed clients
 * send it to the lab (`kubectl create namespace|configmap|secret|serviceaccount`):
 * the "k8s\0" envelope, ObjectMeta's name, generateName, namespace, labels and
 * annotations, and the data of ConfigMaps and Secrets.
 */
#ifndef KSTEER_LAB_KPB_H
#define KSTEER_LAB_KPB_H

#include <jansson.h>
#include <stddef.h>

/* The object as JSON, or NULL (kind not read, or malformed) with the reason in err. */
json_t *kpb_decode(const unsigned char *buf, size_t len, char *err, size_t errlen);

#endif
