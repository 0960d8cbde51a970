/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's user-space data path, one epoll set of its own which the
 * agent's loop watches as one more descriptor:
 *  - outbound (15001): connections connect4 sent here, routed request by
 *    request by the frontend's http routes, with ISTIO_MUTUAL origination;
 *  - inbound (15008): mutual TLS for this node's pods, terminated with the
 *    pod's identity, plaintext handed to the pod;
 *  - gateway (each AUTO_PASSTHROUGH port of a Gateway selecting it): the
 *    ClientHello's SNI picks a subset endpoint; TLS bytes pass untouched;
 *  - DNS (15053, UDP): pods' queries, redirected by sendmsg4/connect4.
 */
#ifndef KSTEER_SHIM_H
#define KSTEER_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../../maps/ksteer_maps.h"
#include "../compile/compile.h"

/*
 * Bounds and timeouts of the user-space data path (README "Limits"); a 0
 * field takes its default, shim_limit_set parses "name=value" into one.
 */
struct shim_limits {
	uint32_t max_conns;         /* HTTP client connections of the agent */
	uint32_t max_conns_per_pod; /* of them from one source address */
	uint32_t buf_bytes;         /* queued per direction of a connection before its reader waits */
	uint32_t head_ms;           /* a request head, from its first byte */
	uint32_t idle_ms;           /* an HTTP connection between requests */
	uint32_t stream_idle_ms;    /* a request without a byte moving either way */
	uint32_t pool_idle_ms;      /* an unused pooled upstream connection */
	uint32_t metric_series;     /* label sets of the istio_* metrics */
	uint32_t access_log_bytes;  /* access log lines queued before lines are dropped */
};

/* "name=value" (a count, bytes, or a duration such as 10s or 500ms): 0 or -EINVAL. */
int shim_limit_set(struct shim_limits *l, const char *nv);
/* The limits with every 0 replaced by its default. */
void shim_limits_fill(struct shim_limits *l);
/* One line per limit, "name value", for --help and the README. */
void shim_limits_print(const struct shim_limits *l, FILE *f);

struct shim_opts {
	struct shim_limits lim;
	bool admin; /* admin_addr:15021/healthz/ready and admin_addr:15020/stats/prometheus */
	struct ks_addr admin_addr;
	bool outbound; /* listen on out_addr:out_port */
	struct ks_addr out_addr;
	uint16_t out_port;
	bool inbound; /* listen on [::]:in_port */
	uint16_t in_port;
	bool gateway; /* listen on the AUTO_PASSTHROUGH ports of Gateways selecting labels */
	const char *gateway_labels; /* "k=v,k=v" */
	uint32_t mark; /* SO_MARK of every socket the shim opens: connect4 lets them be */
	int origdst_fd; /* ks_origdst */
	const char *ca_dir; /* Istio plug-in CA: ca-cert.pem, ca-key.pem, root-cert.pem */
	const char *trust_domain;
	long cert_ttl; /* seconds */
	bool sni_local; /* SNI names .global hosts in their .svc.cluster.local form */
	uint16_t dns_port; /* mesh DNS on out_addr:dns_port (UDP); 0: none */
	bool dns_upstream_set; /* forward other names there; else NXDOMAIN */
	struct ks_addr dns_upstream;
	uint16_t dns_upstream_port;
	int splice_fd, splice_peer_fd; /* the gateway's in-kernel splice maps; -1: copy loop */
	const char *cluster; /* this agent's cluster: source_cluster and local destinations' */
	const char *access_log; /* a file, "-" for standard output; NULL: none */
	int stats_fd, guard_stats_fd; /* per-CPU counters exported as ksteer_*; -1: none */
};

struct shim;

int shim_open(struct shim **out, const struct shim_opts *o);
/* The descriptor to watch for readability: then call shim_run. */
int shim_fd(const struct shim *s);
/* The plan requests are routed by from now on; the caller keeps it alive until the next call.
 * Gateway listeners follow the plan's Gateways. */
void shim_set_plan(struct shim *s, const struct plan *plan);
void shim_run(struct shim *s);
/* New gateway tunnels spliced in the kernel (when the maps exist) or copied. */
int shim_set_splice(struct shim *s, bool on);
/* Counters and identities, as one JSON object. */
void shim_print_json(const struct shim *s, FILE *f);
void shim_close(struct shim *s);

#endif
