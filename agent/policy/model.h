/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The typed policy model: Istio and Kubernetes objects as users write them.
 * Every struct starts with `struct obj`, which the schema-driven decoder
 * fills with the object's position, its field path and which fields were
 * present, so that validation can name file:line:col and the field.
 */
#ifndef KSTEER_MODEL_H
#define KSTEER_MODEL_H

#include <stdbool.h>
#include <stdint.h>

struct schema;

struct pos {
	uint32_t line, col; /* 1-based */
};

struct obj {
	struct pos pos;
	const char *path; /* e.g. "http[0].route[1]"; "" for spec itself */
	const struct schema *schema;
	struct pos *fpos; /* per schema field: where its value is */
	uint64_t has; /* bit i: schema field i was present */
};

struct strs {
	const char **v;
	struct pos *pos;
	uint32_t n;
};

/* A map entry: scalar value in v, or a decoded object in o. */
struct kv {
	const char *k;
	const char *v;
	void *o;
	struct pos pos;
};

struct kvs {
	struct kv *v;
	uint32_t n;
};

#define OBJS(type)                                                                                 \
	struct {                                                                                   \
		type *v;                                                                           \
		uint32_t n;                                                                        \
	}

/* ---- shared pieces ---- */

struct selector {
	struct obj o;
	struct kvs labels;
	struct kvs matchLabels; /* Kubernetes LabelSelector form */
};

struct portsel {
	struct obj o;
	int64_t number;
};

struct percent {
	struct obj o;
	double value;
};

/* ---- ServiceEntry / WorkloadEntry ---- */

struct se_port {
	struct obj o;
	int64_t number, targetPort;
	const char *protocol, *name;
};

struct workload_entry {
	struct obj o;
	const char *address, *network, *locality, *serviceAccount;
	struct kvs ports, labels;
	int64_t weight;
};

struct service_entry {
	struct obj o;
	struct strs hosts, addresses, exportTo, subjectAltNames;
	OBJS(struct se_port) ports;
	const char *location, *resolution;
	OBJS(struct workload_entry) endpoints;
	struct selector *workloadSelector;
};

/* ---- DestinationRule ---- */

struct warmup {
	struct obj o;
	int64_t duration; /* ms */
	double minimumPercent, aggression;
};

struct load_balancer {
	struct obj o;
	const char *simple;
	int64_t warmupDurationSecs;
	struct warmup *warmup;
};

struct tcp_settings {
	struct obj o;
	int64_t maxConnections, connectTimeout, maxConnectionDuration, idleTimeout;
};

struct http_keepalive {
	struct obj o;
	int64_t interval, timeout;
};

struct http_settings {
	struct obj o;
	int64_t http1MaxPendingRequests, http2MaxRequests, maxRequestsPerConnection, maxRetries;
	int64_t idleTimeout, maxConcurrentStreams;
	const char *h2UpgradePolicy;
	bool useClientProtocol;
	struct http_keepalive *http2KeepAlive;
};

struct connection_pool {
	struct obj o;
	struct tcp_settings *tcp;
	struct http_settings *http;
};

struct outlier_detection {
	struct obj o;
	int64_t consecutiveErrors, consecutive5xxErrors, consecutiveGatewayErrors;
	int64_t consecutiveLocalOriginFailures, interval, baseEjectionTime;
	int64_t maxEjectionPercent, minHealthPercent;
	bool splitExternalLocalOriginErrors;
};

struct client_tls {
	struct obj o;
	const char *mode, *clientCertificate, *privateKey, *caCertificates, *credentialName;
	const char *sni, *caCrl;
	struct strs subjectAltNames;
	bool insecureSkipVerify;
};

struct port_traffic_policy {
	struct obj o;
	struct portsel *port;
	struct load_balancer *loadBalancer;
	struct connection_pool *connectionPool;
	struct outlier_detection *outlierDetection;
	struct client_tls *tls;
};

struct traffic_policy {
	struct obj o;
	struct load_balancer *loadBalancer;
	struct connection_pool *connectionPool;
	struct outlier_detection *outlierDetection;
	struct client_tls *tls;
	OBJS(struct port_traffic_policy) portLevelSettings;
};

struct subset {
	struct obj o;
	const char *name;
	struct kvs labels;
	struct traffic_policy *trafficPolicy;
};

struct destination_rule {
	struct obj o;
	const char *host;
	struct traffic_policy *trafficPolicy;
	OBJS(struct subset) subsets;
	struct strs exportTo;
	struct selector *workloadSelector;
};

/* ---- VirtualService ---- */

struct string_match {
	struct obj o;
	const char *exact, *prefix, *regex;
};

struct http_match {
	struct obj o;
	const char *name, *sourceNamespace, *statPrefix;
	struct string_match *uri, *scheme, *method, *authority;
	struct kvs headers, queryParams, withoutHeaders, sourceLabels; /* values: string_match */
	int64_t port;
	struct strs gateways;
	bool ignoreUriCase;
};

struct destination {
	struct obj o;
	const char *host, *subset;
	struct portsel *port;
};

/* Headers.HeaderOperations: set (replace), add (append), remove. */
struct header_ops {
	struct obj o;
	struct kvs set, add;
	struct strs remove;
};

struct headers {
	struct obj o;
	struct header_ops *request, *response;
};

struct route_destination {
	struct obj o;
	struct destination *destination;
	int64_t weight;
	struct headers *headers;
};

struct cors_policy {
	struct obj o;
	OBJS(struct string_match) allowOrigins;
	struct strs allowOrigin, allowMethods, allowHeaders, exposeHeaders;
	int64_t maxAge;
	bool allowCredentials;
	const char *unmatchedPreflights;
};

struct mirror_policy {
	struct obj o;
	struct destination *destination;
	struct percent *percentage;
};

struct http_rewrite {
	struct obj o;
	const char *uri, *authority;
};

struct http_redirect {
	struct obj o;
	const char *uri, *authority, *scheme, *derivePort;
	int64_t port, redirectCode;
};

struct http_body {
	struct obj o;
	const char *string, *bytes;
};

struct http_direct_response {
	struct obj o;
	int64_t status;
	struct http_body *body;
};

struct http_retry {
	struct obj o;
	int64_t attempts, perTryTimeout;
	const char *retryOn;
	bool retryRemoteLocalities;
};

struct fault_delay {
	struct obj o;
	int64_t fixedDelay, exponentialDelay, percent;
	struct percent *percentage;
};

struct fault_abort {
	struct obj o;
	int64_t httpStatus;
	const char *grpcStatus, *http2Error;
	struct percent *percentage;
};

struct http_fault {
	struct obj o;
	struct fault_delay *delay;
	struct fault_abort *abort;
};

struct http_route {
	struct obj o;
	const char *name;
	OBJS(struct http_match) match;
	OBJS(struct route_destination) route;
	int64_t timeout;
	struct http_retry *retries;
	struct http_fault *fault;
	struct http_rewrite *rewrite;
	struct http_redirect *redirect;
	struct http_direct_response *directResponse;
	struct headers *headers;
	struct cors_policy *corsPolicy;
	struct destination *mirror;
	struct percent *mirrorPercentage;
	OBJS(struct mirror_policy) mirrors;
};

struct l4_match {
	struct obj o;
	struct strs destinationSubnets, sniHosts, gateways;
	int64_t port;
	struct kvs sourceLabels;
	const char *sourceNamespace;
};

struct l4_route {
	struct obj o;
	OBJS(struct l4_match) match;
	OBJS(struct route_destination) route;
};

struct virtual_service {
	struct obj o;
	struct strs hosts, gateways, exportTo;
	OBJS(struct http_route) http;
	OBJS(struct l4_route) tcp;
	OBJS(struct l4_route) tls;
};

/* ---- Gateway ---- */

struct gw_port {
	struct obj o;
	int64_t number, targetPort;
	const char *protocol, *name;
};

struct server_tls {
	struct obj o;
	const char *mode, *serverCertificate, *privateKey, *caCertificates, *credentialName;
	const char *minProtocolVersion, *maxProtocolVersion;
	struct strs subjectAltNames;
	bool httpsRedirect;
};

struct server {
	struct obj o;
	struct gw_port *port;
	const char *bind, *defaultEndpoint, *name;
	struct strs hosts;
	struct server_tls *tls;
};

struct gateway {
	struct obj o;
	struct kvs selector;
	OBJS(struct server) servers;
};

/* ---- Kubernetes ---- */

struct svc_port {
	struct obj o;
	const char *name, *protocol, *appProtocol, *targetPort; /* targetPort: int or name */
	int64_t port, nodePort;
};

struct k8s_service {
	struct obj o;
	const char *type, *clusterIP;
	struct strs clusterIPs;
	OBJS(struct svc_port) ports;
	struct kvs selector;
};

struct container_port {
	struct obj o;
	const char *name, *protocol;
	int64_t containerPort;
};

struct container {
	struct obj o;
	const char *name, *image;
	OBJS(struct container_port) ports;
};

struct pod_spec {
	struct obj o;
	const char *nodeName, *serviceAccountName, *serviceAccount;
	bool hostNetwork;
	OBJS(struct container) containers;
};

struct pod_ip {
	struct obj o;
	const char *ip;
};

struct pod_status {
	struct obj o;
	const char *podIP, *hostIP;
	OBJS(struct pod_ip) podIPs;
};

struct object_ref {
	struct obj o;
	const char *kind, *name, *namespace;
};

struct meta {
	struct obj o;
	const char *name, *namespace;
	struct kvs labels, annotations;
	OBJS(struct object_ref) ownerReferences; /* a Pod's: its workload's name, as Istio's */
};

struct pod_template {
	struct obj o;
	struct meta *metadata;
	struct pod_spec *spec;
};

struct deployment_spec {
	struct obj o;
	int64_t replicas;
	struct selector *selector;
	struct pod_template *template;
};

struct eps_conditions {
	struct obj o;
	bool ready;
};

struct eps_endpoint {
	struct obj o;
	struct strs addresses;
	struct eps_conditions *conditions;
	const char *nodeName;
	struct object_ref *targetRef;
};

struct eps_port {
	struct obj o;
	const char *name, *protocol, *appProtocol;
	int64_t port;
};

/* ---- the top level ---- */

enum kind {
	K_UNKNOWN,
	K_SERVICE_ENTRY,
	K_DESTINATION_RULE,
	K_VIRTUAL_SERVICE,
	K_GATEWAY,
	K_WORKLOAD_ENTRY,
	K_NAMESPACE,
	K_SERVICE_ACCOUNT,
	K_SERVICE,
	K_POD,
	K_ENDPOINT_SLICE,
	K_DEPLOYMENT,
	K_MESH_NETWORKS, /* Istio's meshNetworks: a document with `networks:` and no kind */
	K_KIND_MAX,
};

/* ---- meshNetworks (MeshConfig's networks, as istio's values or ConfigMap hold them) ---- */

struct net_endpoint {
	struct obj o;
	const char *fromCidr, *fromRegistry;
};

struct net_gateway {
	struct obj o;
	const char *address, *registryServiceName;
	int64_t port;
};

struct mesh_network {
	struct obj o;
	OBJS(struct net_endpoint) endpoints;
	OBJS(struct net_gateway) gateways;
};

/* One document. `spec` points to the kind's struct above. */
struct resource {
	struct obj o;
	enum kind kind;
	const char *apiVersion, *kindname;
	const char *file;
	const char *ns, *name; /* ns resolved: metadata, then -n, then "default" */
	struct meta *metadata;
	void *spec;
	struct pod_status *status; /* Pod */
	/* EndpointSlice keeps its data at the top level */
	const char *addressType;
	OBJS(struct eps_endpoint) endpoints;
	OBJS(struct eps_port) ports;
	struct kvs networks; /* meshNetworks: name -> struct mesh_network (in kv.o) */
	uint32_t seq; /* load order, for messages only: never for semantics */
};

const char *kind_name(enum kind k);

#endif
