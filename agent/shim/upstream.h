/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * From the plan to an upstream socket, one way for HTTP requests, mirrors and
 * TCP streams: a destination becomes the endpoints to try (from a random
 * start; outlier-ejected ones left out, up to maxEjectionPercent, one at
 * least, as Envoy) and the TLS to originate (ISTIO_MUTUAL: the client pod's
 * identity, the outbound_ SNI, the subjectAltNames the server must present),
 * or the in-process hand-over to a pod of this very node.
 */
#ifndef KSTEER_SHIM_UPSTREAM_H
#define KSTEER_SHIM_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "../compile/compile.h"
#include "tls.h"

#define UP_MAX_EPS 8 /* endpoints remembered per request, for retries */

struct shim;
struct side;

struct up_ep {
	struct ks_addr addr, node;
	uint16_t port;
	bool has_node;
	bool same_node; /* mutual TLS to a pod of this very node: the in-process hand-over */
};

/* Where one request or stream may go; copied, as a reload may free the plan meanwhile. */
struct up_target {
	bool tls; /* ISTIO_MUTUAL */
	char sni[300], id_ns[128], id_sa[128];
	struct peer_rule rule;
	struct up_ep eps[UP_MAX_EPS];
	unsigned n_eps;
	struct c_outlier od;
};

/* Destination d for a client at addr, endpoints from draw: NULL, or why nowhere (a 503's). */
const char *up_target_make(struct shim *s, const struct c_dest *d, const struct ks_addr *client,
			   uint32_t draw, struct up_target *t);
/*
 * Opens sd towards t->eps[i]: directly, or through the endpoint node's inbound
 * port with a PROXY v2 header naming it and src for mutual TLS to another
 * node's pod, TLS wrapped with the client's identity (alpn NULL: none). 0 or
 * -errno: -EACCES the same-node pod is not among the subjectAltNames (t->rule.why),
 * -ENOKEY no certificate. *id_gen: the certificate's generation (0 without TLS).
 */
int up_target_connect(struct shim *s, struct up_target *t, unsigned i, const struct ks_addr *src,
		      uint16_t sport, struct side *sd, uint64_t *id_gen, const unsigned char *alpn,
		      unsigned alpn_len);
/* Whether t->eps[i] needs TLS originated here (not the same-node hand-over). */
static inline bool up_target_tls(const struct up_target *t, unsigned i)
{
	return t->tls && !t->eps[i].same_node;
}
/* FNV-1a over the subjectAltNames a peer must present: who may reuse a pooled connection. */
uint64_t up_rule_hash(const struct peer_rule *r);

/* Outlier detection, as Envoy's for Istio's DestinationRule: the answer of endpoint e. */
void up_health_result(struct shim *s, const struct c_outlier *od, const struct up_ep *e,
		      int status);
void up_health_free(struct shim *s);

#endif
