// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The fields of every kind ksteer reads, as the Istio and Kubernetes APIs name them. */
#include "decode.h"

#define F(T, name, type) { #name, type, offsetof(struct T, name), NULL }
#define FS(T, name, type, sub) { #name, type, offsetof(struct T, name), &sub }
#define FANY(name) { #name, F_ANY, 0, NULL }
#define SCHEMA(var, T, lenient_, ...)                                                              \
	static const struct field var##_fields[] = { __VA_ARGS__ };                                \
	const struct schema var = { #T, sizeof(struct T), var##_fields,                            \
				    sizeof(var##_fields) / sizeof(var##_fields[0]), lenient_ }

#define STRICT 0
#define LENIENT 1

/* shared */
SCHEMA(schema_selector, selector, STRICT, F(selector, labels, F_MAP),
       F(selector, matchLabels, F_MAP), FANY(matchExpressions));
SCHEMA(schema_portsel, portsel, STRICT, F(portsel, number, F_INT));
SCHEMA(schema_percent, percent, STRICT, F(percent, value, F_NUM));

/* ServiceEntry, WorkloadEntry */
SCHEMA(schema_se_port, se_port, STRICT, F(se_port, number, F_INT), F(se_port, targetPort, F_INT),
       F(se_port, protocol, F_STR), F(se_port, name, F_STR));
SCHEMA(schema_workload_entry, workload_entry, STRICT, F(workload_entry, address, F_STR),
       F(workload_entry, network, F_STR), F(workload_entry, locality, F_STR),
       F(workload_entry, serviceAccount, F_STR), F(workload_entry, ports, F_MAP),
       F(workload_entry, labels, F_MAP), F(workload_entry, weight, F_INT));
SCHEMA(schema_service_entry, service_entry, STRICT, F(service_entry, hosts, F_STRS),
       F(service_entry, addresses, F_STRS), F(service_entry, exportTo, F_STRS),
       F(service_entry, subjectAltNames, F_STRS),
       FS(service_entry, ports, F_OBJS, schema_se_port), F(service_entry, location, F_STR),
       F(service_entry, resolution, F_STR),
       FS(service_entry, endpoints, F_OBJS, schema_workload_entry),
       FS(service_entry, workloadSelector, F_OBJ, schema_selector));

/* DestinationRule */
SCHEMA(schema_warmup, warmup, STRICT, F(warmup, duration, F_DUR), F(warmup, minimumPercent, F_NUM),
       F(warmup, aggression, F_NUM));
SCHEMA(schema_load_balancer, load_balancer, STRICT, F(load_balancer, simple, F_STR),
       F(load_balancer, warmupDurationSecs, F_DUR),
       FS(load_balancer, warmup, F_OBJ, schema_warmup), FANY(consistentHash),
       FANY(localityLbSetting));
SCHEMA(schema_tcp_settings, tcp_settings, STRICT, F(tcp_settings, maxConnections, F_INT),
       F(tcp_settings, connectTimeout, F_DUR), F(tcp_settings, maxConnectionDuration, F_DUR),
       F(tcp_settings, idleTimeout, F_DUR), FANY(tcpKeepalive));
SCHEMA(schema_http_keepalive, http_keepalive, STRICT, F(http_keepalive, interval, F_DUR),
       F(http_keepalive, timeout, F_DUR));
SCHEMA(schema_http_settings, http_settings, STRICT,
       F(http_settings, http1MaxPendingRequests, F_INT), F(http_settings, http2MaxRequests, F_INT),
       F(http_settings, maxRequestsPerConnection, F_INT), F(http_settings, maxRetries, F_INT),
       F(http_settings, idleTimeout, F_DUR), F(http_settings, maxConcurrentStreams, F_INT),
       F(http_settings, h2UpgradePolicy, F_STR), F(http_settings, useClientProtocol, F_BOOL),
       FS(http_settings, http2KeepAlive, F_OBJ, schema_http_keepalive));
SCHEMA(schema_connection_pool, connection_pool, STRICT,
       FS(connection_pool, tcp, F_OBJ, schema_tcp_settings),
       FS(connection_pool, http, F_OBJ, schema_http_settings));
SCHEMA(schema_outlier_detection, outlier_detection, STRICT,
       F(outlier_detection, consecutiveErrors, F_INT),
       F(outlier_detection, consecutive5xxErrors, F_INT),
       F(outlier_detection, consecutiveGatewayErrors, F_INT),
       F(outlier_detection, consecutiveLocalOriginFailures, F_INT),
       F(outlier_detection, interval, F_DUR), F(outlier_detection, baseEjectionTime, F_DUR),
       F(outlier_detection, maxEjectionPercent, F_INT),
       F(outlier_detection, minHealthPercent, F_INT),
       F(outlier_detection, splitExternalLocalOriginErrors, F_BOOL));
SCHEMA(schema_client_tls, client_tls, STRICT, F(client_tls, mode, F_STR),
       F(client_tls, clientCertificate, F_STR), F(client_tls, privateKey, F_STR),
       F(client_tls, caCertificates, F_STR), F(client_tls, credentialName, F_STR),
       F(client_tls, sni, F_STR), F(client_tls, caCrl, F_STR),
       F(client_tls, subjectAltNames, F_STRS), F(client_tls, insecureSkipVerify, F_BOOL));
SCHEMA(schema_port_traffic_policy, port_traffic_policy, STRICT,
       FS(port_traffic_policy, port, F_OBJ, schema_portsel),
       FS(port_traffic_policy, loadBalancer, F_OBJ, schema_load_balancer),
       FS(port_traffic_policy, connectionPool, F_OBJ, schema_connection_pool),
       FS(port_traffic_policy, outlierDetection, F_OBJ, schema_outlier_detection),
       FS(port_traffic_policy, tls, F_OBJ, schema_client_tls));
SCHEMA(schema_traffic_policy, traffic_policy, STRICT,
       FS(traffic_policy, loadBalancer, F_OBJ, schema_load_balancer),
       FS(traffic_policy, connectionPool, F_OBJ, schema_connection_pool),
       FS(traffic_policy, outlierDetection, F_OBJ, schema_outlier_detection),
       FS(traffic_policy, tls, F_OBJ, schema_client_tls),
       FS(traffic_policy, portLevelSettings, F_OBJS, schema_port_traffic_policy),
       FANY(tunnel), FANY(proxyProtocol));
SCHEMA(schema_subset, subset, STRICT, F(subset, name, F_STR), F(subset, labels, F_MAP),
       FS(subset, trafficPolicy, F_OBJ, schema_traffic_policy));
SCHEMA(schema_destination_rule, destination_rule, STRICT, F(destination_rule, host, F_STR),
       FS(destination_rule, trafficPolicy, F_OBJ, schema_traffic_policy),
       FS(destination_rule, subsets, F_OBJS, schema_subset),
       F(destination_rule, exportTo, F_STRS),
       FS(destination_rule, workloadSelector, F_OBJ, schema_selector));

/* VirtualService */
SCHEMA(schema_string_match, string_match, STRICT, F(string_match, exact, F_STR),
       F(string_match, prefix, F_STR), F(string_match, regex, F_STR));
SCHEMA(schema_http_match, http_match, STRICT, F(http_match, name, F_STR),
       F(http_match, sourceNamespace, F_STR), F(http_match, statPrefix, F_STR),
       FS(http_match, uri, F_OBJ, schema_string_match),
       FS(http_match, scheme, F_OBJ, schema_string_match),
       FS(http_match, method, F_OBJ, schema_string_match),
       FS(http_match, authority, F_OBJ, schema_string_match),
       FS(http_match, headers, F_OBJMAP, schema_string_match),
       FS(http_match, queryParams, F_OBJMAP, schema_string_match),
       FS(http_match, withoutHeaders, F_OBJMAP, schema_string_match),
       F(http_match, sourceLabels, F_MAP), F(http_match, port, F_INT),
       F(http_match, gateways, F_STRS), F(http_match, ignoreUriCase, F_BOOL));
SCHEMA(schema_destination, destination, STRICT, F(destination, host, F_STR),
       F(destination, subset, F_STR), FS(destination, port, F_OBJ, schema_portsel));
SCHEMA(schema_header_ops, header_ops, STRICT, F(header_ops, set, F_MAP), F(header_ops, add, F_MAP),
       F(header_ops, remove, F_STRS));
SCHEMA(schema_headers, headers, STRICT, FS(headers, request, F_OBJ, schema_header_ops),
       FS(headers, response, F_OBJ, schema_header_ops));
SCHEMA(schema_route_destination, route_destination, STRICT,
       FS(route_destination, destination, F_OBJ, schema_destination),
       F(route_destination, weight, F_INT), FS(route_destination, headers, F_OBJ, schema_headers));
SCHEMA(schema_cors_policy, cors_policy, STRICT,
       FS(cors_policy, allowOrigins, F_OBJS, schema_string_match),
       F(cors_policy, allowOrigin, F_STRS), F(cors_policy, allowMethods, F_STRS),
       F(cors_policy, allowHeaders, F_STRS), F(cors_policy, exposeHeaders, F_STRS),
       F(cors_policy, maxAge, F_DUR), F(cors_policy, allowCredentials, F_BOOL),
       F(cors_policy, unmatchedPreflights, F_STR));
SCHEMA(schema_mirror_policy, mirror_policy, STRICT,
       FS(mirror_policy, destination, F_OBJ, schema_destination),
       FS(mirror_policy, percentage, F_OBJ, schema_percent));
SCHEMA(schema_http_rewrite, http_rewrite, STRICT, F(http_rewrite, uri, F_STR),
       F(http_rewrite, authority, F_STR), FANY(uriRegexRewrite));
SCHEMA(schema_http_redirect, http_redirect, STRICT, F(http_redirect, uri, F_STR),
       F(http_redirect, authority, F_STR), F(http_redirect, scheme, F_STR),
       F(http_redirect, derivePort, F_STR), F(http_redirect, port, F_INT),
       F(http_redirect, redirectCode, F_INT));
SCHEMA(schema_http_body, http_body, STRICT, F(http_body, string, F_STR), F(http_body, bytes, F_STR));
SCHEMA(schema_http_direct_response, http_direct_response, STRICT,
       F(http_direct_response, status, F_INT),
       FS(http_direct_response, body, F_OBJ, schema_http_body));
SCHEMA(schema_http_retry, http_retry, STRICT, F(http_retry, attempts, F_INT),
       F(http_retry, perTryTimeout, F_DUR), F(http_retry, retryOn, F_STR),
       F(http_retry, retryRemoteLocalities, F_BOOL), FANY(backoff));
SCHEMA(schema_fault_delay, fault_delay, STRICT, F(fault_delay, fixedDelay, F_DUR),
       F(fault_delay, exponentialDelay, F_DUR), F(fault_delay, percent, F_INT),
       FS(fault_delay, percentage, F_OBJ, schema_percent));
SCHEMA(schema_fault_abort, fault_abort, STRICT, F(fault_abort, httpStatus, F_INT),
       F(fault_abort, grpcStatus, F_STR), F(fault_abort, http2Error, F_STR),
       FS(fault_abort, percentage, F_OBJ, schema_percent));
SCHEMA(schema_http_fault, http_fault, STRICT, FS(http_fault, delay, F_OBJ, schema_fault_delay),
       FS(http_fault, abort, F_OBJ, schema_fault_abort));
SCHEMA(schema_http_route, http_route, STRICT, F(http_route, name, F_STR),
       FS(http_route, match, F_OBJS, schema_http_match),
       FS(http_route, route, F_OBJS, schema_route_destination), F(http_route, timeout, F_DUR),
       FS(http_route, retries, F_OBJ, schema_http_retry),
       FS(http_route, fault, F_OBJ, schema_http_fault),
       FS(http_route, redirect, F_OBJ, schema_http_redirect),
       FS(http_route, directResponse, F_OBJ, schema_http_direct_response), FANY(delegate),
       FS(http_route, rewrite, F_OBJ, schema_http_rewrite),
       FS(http_route, mirror, F_OBJ, schema_destination),
       FS(http_route, mirrors, F_OBJS, schema_mirror_policy),
       FS(http_route, mirrorPercentage, F_OBJ, schema_percent), FANY(mirrorPercent), FANY(mirror_percent), FS(http_route, corsPolicy, F_OBJ, schema_cors_policy),
       FS(http_route, headers, F_OBJ, schema_headers));
SCHEMA(schema_l4_match, l4_match, STRICT, F(l4_match, destinationSubnets, F_STRS),
       F(l4_match, sniHosts, F_STRS), F(l4_match, gateways, F_STRS), F(l4_match, port, F_INT),
       F(l4_match, sourceLabels, F_MAP), F(l4_match, sourceNamespace, F_STR));
SCHEMA(schema_l4_route, l4_route, STRICT, FS(l4_route, match, F_OBJS, schema_l4_match),
       FS(l4_route, route, F_OBJS, schema_route_destination));
SCHEMA(schema_virtual_service, virtual_service, STRICT, F(virtual_service, hosts, F_STRS),
       F(virtual_service, gateways, F_STRS), F(virtual_service, exportTo, F_STRS),
       FS(virtual_service, http, F_OBJS, schema_http_route),
       FS(virtual_service, tcp, F_OBJS, schema_l4_route),
       FS(virtual_service, tls, F_OBJS, schema_l4_route));

/* Gateway */
SCHEMA(schema_gw_port, gw_port, STRICT, F(gw_port, number, F_INT), F(gw_port, targetPort, F_INT),
       F(gw_port, protocol, F_STR), F(gw_port, name, F_STR));
SCHEMA(schema_server_tls, server_tls, STRICT, F(server_tls, mode, F_STR),
       F(server_tls, serverCertificate, F_STR), F(server_tls, privateKey, F_STR),
       F(server_tls, caCertificates, F_STR), F(server_tls, credentialName, F_STR),
       F(server_tls, minProtocolVersion, F_STR), F(server_tls, maxProtocolVersion, F_STR),
       F(server_tls, subjectAltNames, F_STRS), F(server_tls, httpsRedirect, F_BOOL),
       FANY(credentialNames), FANY(verifyCertificateSpki), FANY(verifyCertificateHash),
       FANY(cipherSuites), FANY(caCrl), FANY(tlsCertificates));
SCHEMA(schema_server, server, STRICT, FS(server, port, F_OBJ, schema_gw_port),
       F(server, bind, F_STR), F(server, defaultEndpoint, F_STR), F(server, name, F_STR),
       F(server, hosts, F_STRS), FS(server, tls, F_OBJ, schema_server_tls));
SCHEMA(schema_gateway, gateway, STRICT, F(gateway, selector, F_MAP),
       FS(gateway, servers, F_OBJS, schema_server));

/* Kubernetes: lenient, the API has many more fields than routing needs */
SCHEMA(schema_object_ref, object_ref, LENIENT, F(object_ref, kind, F_STR),
       F(object_ref, name, F_STR), F(object_ref, namespace, F_STR));
SCHEMA(schema_meta, meta, LENIENT, F(meta, name, F_STR), F(meta, namespace, F_STR),
       F(meta, labels, F_MAP), F(meta, annotations, F_MAP),
       FS(meta, ownerReferences, F_OBJS, schema_object_ref));
SCHEMA(schema_svc_port, svc_port, LENIENT, F(svc_port, name, F_STR), F(svc_port, protocol, F_STR),
       F(svc_port, appProtocol, F_STR), F(svc_port, targetPort, F_STR), F(svc_port, port, F_INT),
       F(svc_port, nodePort, F_INT));
SCHEMA(schema_k8s_service, k8s_service, LENIENT, F(k8s_service, type, F_STR),
       F(k8s_service, clusterIP, F_STR), F(k8s_service, clusterIPs, F_STRS),
       FS(k8s_service, ports, F_OBJS, schema_svc_port), F(k8s_service, selector, F_MAP));
SCHEMA(schema_container_port, container_port, LENIENT, F(container_port, name, F_STR),
       F(container_port, protocol, F_STR), F(container_port, containerPort, F_INT));
SCHEMA(schema_container, container, LENIENT, F(container, name, F_STR), F(container, image, F_STR),
       FS(container, ports, F_OBJS, schema_container_port));
SCHEMA(schema_pod_spec, pod_spec, LENIENT, F(pod_spec, nodeName, F_STR),
       F(pod_spec, serviceAccountName, F_STR), F(pod_spec, serviceAccount, F_STR),
       F(pod_spec, hostNetwork, F_BOOL), FS(pod_spec, containers, F_OBJS, schema_container));
SCHEMA(schema_pod_ip, pod_ip, LENIENT, F(pod_ip, ip, F_STR));
SCHEMA(schema_pod_status, pod_status, LENIENT, F(pod_status, podIP, F_STR), F(pod_status, hostIP, F_STR),
       FS(pod_status, podIPs, F_OBJS, schema_pod_ip));
SCHEMA(schema_k8s_selector, selector, LENIENT, F(selector, matchLabels, F_MAP));
SCHEMA(schema_pod_template, pod_template, LENIENT, FS(pod_template, metadata, F_OBJ, schema_meta),
       FS(pod_template, spec, F_OBJ, schema_pod_spec));
SCHEMA(schema_deployment_spec, deployment_spec, LENIENT, F(deployment_spec, replicas, F_INT),
       FS(deployment_spec, selector, F_OBJ, schema_k8s_selector),
       FS(deployment_spec, template, F_OBJ, schema_pod_template));
SCHEMA(schema_empty, obj, LENIENT, FANY(x));
SCHEMA(schema_eps_conditions, eps_conditions, LENIENT, F(eps_conditions, ready, F_BOOL));
SCHEMA(schema_eps_endpoint, eps_endpoint, LENIENT, F(eps_endpoint, addresses, F_STRS),
       FS(eps_endpoint, conditions, F_OBJ, schema_eps_conditions),
       F(eps_endpoint, nodeName, F_STR), FS(eps_endpoint, targetRef, F_OBJ, schema_object_ref));
SCHEMA(schema_eps_port, eps_port, LENIENT, F(eps_port, name, F_STR), F(eps_port, protocol, F_STR),
       F(eps_port, appProtocol, F_STR), F(eps_port, port, F_INT));

SCHEMA(schema_net_endpoint, net_endpoint, STRICT, F(net_endpoint, fromCidr, F_STR),
       F(net_endpoint, fromRegistry, F_STR));
SCHEMA(schema_net_gateway, net_gateway, STRICT, F(net_gateway, address, F_STR),
       F(net_gateway, registryServiceName, F_STR), F(net_gateway, port, F_INT), FANY(locality));
SCHEMA(schema_mesh_network, mesh_network, STRICT,
       FS(mesh_network, endpoints, F_OBJS, schema_net_endpoint),
       FS(mesh_network, gateways, F_OBJS, schema_net_gateway));
SCHEMA(schema_top_meshnet, resource, STRICT, FS(resource, networks, F_OBJMAP, schema_mesh_network));

/* Top level of each document; spec and status types depend on the kind. */
#define TOP(var, spec_schema, lenient_, ...)                                                       \
	SCHEMA(var, resource, lenient_, F(resource, apiVersion, F_STR),                            \
	       { "kind", F_STR, offsetof(struct resource, kindname), NULL },                       \
	       FS(resource, metadata, F_OBJ, schema_meta),                                         \
	       { "spec", F_OBJ, offsetof(struct resource, spec), &spec_schema }, __VA_ARGS__)

TOP(schema_top_se, schema_service_entry, STRICT, FANY(status));
TOP(schema_top_dr, schema_destination_rule, STRICT, FANY(status));
TOP(schema_top_vs, schema_virtual_service, STRICT, FANY(status));
TOP(schema_top_gw, schema_gateway, STRICT, FANY(status));
TOP(schema_top_we, schema_workload_entry, STRICT, FANY(status));
TOP(schema_top_empty, schema_empty, LENIENT, FANY(status));
TOP(schema_top_service, schema_k8s_service, LENIENT, FANY(status));
TOP(schema_top_pod, schema_pod_spec, LENIENT, FS(resource, status, F_OBJ, schema_pod_status));
TOP(schema_top_deployment, schema_deployment_spec, LENIENT, FANY(status));
TOP(schema_top_eps, schema_empty, LENIENT, F(resource, addressType, F_STR),
    FS(resource, endpoints, F_OBJS, schema_eps_endpoint),
    FS(resource, ports, F_OBJS, schema_eps_port));

const struct schema *const kind_spec_schema[K_KIND_MAX] = {
	[K_SERVICE_ENTRY] = &schema_top_se,     [K_DESTINATION_RULE] = &schema_top_dr,
	[K_VIRTUAL_SERVICE] = &schema_top_vs,   [K_GATEWAY] = &schema_top_gw,
	[K_WORKLOAD_ENTRY] = &schema_top_we,    [K_NAMESPACE] = &schema_top_empty,
	[K_SERVICE_ACCOUNT] = &schema_top_empty, [K_SERVICE] = &schema_top_service,
	[K_POD] = &schema_top_pod,              [K_ENDPOINT_SLICE] = &schema_top_eps,
	[K_DEPLOYMENT] = &schema_top_deployment, [K_MESH_NETWORKS] = &schema_top_meshnet,
};
