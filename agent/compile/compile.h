/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The compiler: a validated policy batch to a plan (what every frontend does,
 * readable) and a dataplane image (the exact entries of the kernel's maps).
 */
#ifndef KSTEER_COMPILE_H
#define KSTEER_COMPILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../../maps/ksteer_maps.h"
#include "../lib/arena.h"
#include "../policy/policy.h"

/* Why a frontend needs the user-space shim (none: it stays in the kernel). */
enum shim_reason {
	SHIM_HTTP_MATCH = 1u << 0, /* a route matches on headers, uri, method... */
	SHIM_HTTP_SPLIT = 1u << 1, /* an http route splits by weight: per request in Istio */
	SHIM_TLS = 1u << 2, /* DestinationRule TLS origination */
	SHIM_HTTP_FEATURE = 1u << 3, /* fault, timeout, retries, rewrite, redirect, mirror... */
	SHIM_SNI = 1u << 4, /* tls routes match on SNI */
	SHIM_OUTLIER = 1u << 5, /* DestinationRule outlierDetection: answers are watched */
};

struct c_endpoint {
	const char *address; /* IP, DNS name, or an unresolved ${VAR} */
	bool is_ip;
	struct ks_addr ka;
	uint16_t port;
	const struct kvs *labels;
	const char *cluster, *network, *service_account, *origin;
	const char *ns; /* the workload's namespace */
	bool has_node; /* a Pod with status.hostIP: its node's agent terminates mTLS */
	struct ks_addr node;
	uint32_t weight;
};

/* The TLS a destination's DestinationRule asks the shim to originate. */
enum c_tls { C_TLS_NONE, C_TLS_DISABLE, C_TLS_ISTIO_MUTUAL, C_TLS_OTHER };

/* outlierDetection, Istio's defaults filled in (consecutive5xxErrors 5, 30s, 10%). */
struct c_outlier {
	bool on;
	uint32_t max_5xx, max_gw, max_pct;
	uint64_t base_ms;
};

/* What an http route does per request, Istio's defaults filled in: the shim's only input. */
struct c_http {
	uint32_t attempts; /* retries after the first try: Istio's default 2 */
	bool retry_5xx, retry_gw; /* retryOn "5xx", "gateway-error" */
	uint16_t retry_codes[8];  /* retryOn status codes; Istio's default: 503 */
	uint32_t n_retry_codes;
	uint64_t per_try_ms, timeout_ms; /* 0: none */
	uint64_t delay_ms;  /* fault.delay.fixedDelay */
	double delay_pct;   /* of requests delayed, 0-100 */
	uint32_t abort_status;
	double abort_pct;
};

struct c_dest {
	enum c_tls tls;
	struct c_outlier od;
	const char *host, *subset;
	uint16_t port; /* 0: the request's port */
	uint32_t weight;
	const char *tls_mode; /* effective DestinationRule tls.mode; NULL: none */
	const struct strs *tls_sans; /* its subjectAltNames: the peer must be one */
	const struct outlier_detection *outlier; /* the DestinationRule's, for the shim */
	const char *dr; /* "ns/name" of the DestinationRule used */
	struct c_endpoint *eps;
	uint32_t n_eps;
	const char *problem; /* why there are no endpoints, when there are none */
	const struct obj *src; /* the route destination it came from (NULL: default route) */
};

/* A copy of each request sent to another destination, its answer dropped. */
struct c_mirror {
	struct c_dest d;
	double percent; /* of requests, 0-100 */
};

struct c_route {
	const char *type; /* "http", "tcp", "tls", "default" */
	int index; /* position in the VirtualService's list */
	const char *name;
	const struct http_route *http;
	const struct l4_route *l4;
	struct c_dest *dests;
	uint32_t n_dests;
	uint64_t weight_total;
	struct c_mirror *mirrors;
	uint32_t n_mirrors;
	struct c_http h;
};

struct c_vip {
	const char *text;
	struct ks_addr ka;
};

struct c_frontend {
	const char *host;
	uint16_t port; /* 0: any port (a VirtualService host nothing defines yet) */
	const char *port_name, *protocol;
	struct c_vip *vips;
	uint32_t n_vips;
	const char *service; /* "ServiceEntry hello/helloworld", NULL if none */
	const char *vs; /* "VirtualService hello/helloworld", NULL if none */
	struct c_route *routes;
	uint32_t n_routes;
	uint32_t shim; /* enum shim_reason bits; 0: kernel */
	bool http; /* the shim parses HTTP requests; else it relays the bytes as they are */
	bool passthrough; /* resolution NONE without endpoints: the dialled address is kept */
	const char *gateway; /* set for routes bound to a Gateway server, not to the mesh */
};

#define KS_SLOT_NONE UINT32_MAX
/* in c_image.slots: this key's slot is the home of a key left out (KS_SLOT_OVERFLOW) */
#define KS_SLOT_HOME_OF_OVERFLOW (1u << 31)

struct c_image {
	struct ks_frontend_key *fe_keys;
	struct ks_frontend *fes;
	uint32_t n_fes;
	struct ks_dest *dests;
	uint32_t n_dests;
	struct ks_backend *backends;
	uint32_t n_backends;
	uint32_t *slots; /* per fe_key: its slot in ks_fe_slots (| KS_SLOT_HOME_OF_OVERFLOW), or KS_SLOT_NONE */
	uint32_t n_overflow; /* fe_keys with KS_SLOT_NONE: found through ks_frontends */
};

/* A Pod with an address: who a connection comes from, whom it goes to. */
struct c_pod {
	const char *ns, *name, *sa; /* sa: "default" when the spec names none */
	const char *workload; /* its owner's name as Istio derives it (a Deployment's), or its own */
	const struct kvs *labels;
	struct ks_addr addr[2]; /* status.podIPs (IPv4 mapped) */
	uint32_t n_addr;
	bool has_node;
	struct ks_addr node; /* status.hostIP */
	bool host_network; /* spec.hostNetwork, or its address is its node's */
	uint16_t *ports; /* its containers' TCP containerPorts: what the inbound side may reach */
	uint32_t n_ports;
};

/* What a host:port, optionally one subset, resolves to: for the gateway and inbound. */
struct c_target {
	const char *host, *subset; /* subset NULL: the whole service */
	const char *ns; /* the namespace of the service that defines host */
	uint16_t port;
	struct c_dest d;
};

/* An address (and port) to the index of what has it: the plan's lookups by address. */
struct c_addr_ix {
	struct ks_addr a;
	uint16_t port;
	uint32_t i;
};

struct plan {
	struct arena a;
	struct c_frontend *fes;
	uint32_t n_fes, cap_fes;
	struct c_pod *pods;
	uint32_t n_pods, cap_pods;
	struct c_target *targets; /* sorted by host, port, subset */
	uint32_t n_targets, cap_targets;
	struct c_addr_ix *fe_ix, *pod_ix; /* sorted: mesh frontends by VIP and port, pods by IP */
	uint32_t n_fe_ix, n_pod_ix;
	struct c_image img;
	struct policy *policy;
};

/* An IPv4 or IPv6 address as the maps hold it (IPv4 as ::ffff:a.b.c.d); 0 or -EINVAL. */
int addr_parse(const char *s, struct ks_addr *out);
bool addr_is_v4(const struct ks_addr *a);
/* The address as text, IPv4 ones dotted; returns buf. */
const char *addr_str(const struct ks_addr *a, char *buf, size_t len);

/* 0, or -EINVAL with errors in the policy's diag (e.g. a route over KS_MAX_DESTS). */
int plan_compile(struct plan *plan, struct policy *p, struct diag *diag);
void plan_free(struct plan *plan);
/* The image as bytes, as the maps would hold it: for equality tests. Caller frees. */
unsigned char *image_serialize(const struct c_image *img, size_t *len);

/* The pod with address a, or NULL. */
const struct c_pod *plan_pod(const struct plan *plan, const struct ks_addr *a);
/* The mesh frontend (not a Gateway's) a connection to a:port reaches, or NULL. */
const struct c_frontend *plan_frontend(const struct plan *plan, const struct ks_addr *a,
				       uint16_t port);
/* host:port[/subset] (subset NULL or "": the whole service), or NULL when not known. */
const struct c_target *plan_target(const struct plan *plan, const char *host, uint16_t port,
				   const char *subset);

void plan_print_text(const struct plan *plan, FILE *f);
int plan_print_json(const struct plan *plan, FILE *f);

#endif
