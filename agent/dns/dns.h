/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Mesh names for pods, as Istio's DNS proxy answers them: ServiceEntry hosts
 * with their addresses, Kubernetes Services (by FQDN: the pod's resolver
 * walks its search path) with their ClusterIPs. Names under cluster.local
 * that nothing defines are NXDOMAIN; the rest is forwarded when an upstream
 * is configured, NXDOMAIN otherwise. The wire format is ldns's.
 */
#ifndef KSTEER_DNS_H
#define KSTEER_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "../compile/compile.h"

#define DNS_TTL 5 /* seconds: policies change, answers should follow soon */

enum dns_verdict {
	DNS_REPLY, /* *out holds the answer */
	DNS_FORWARD, /* not a mesh name: ask the upstream resolver */
	DNS_DROP, /* not even a DNS header: nothing to answer */
};

/* Answers one query; the caller frees *out. forward_ok: an upstream exists. */
enum dns_verdict dns_answer(const struct plan *plan, const uint8_t *q, size_t qlen,
			    int forward_ok, uint8_t **out, size_t *out_len);

#endif
