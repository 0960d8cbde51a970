// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "kinds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ISTIO "networking.istio.io"

const struct kind_def kind_defs[] = {
	{ "", "v1", "namespaces", "Namespace", "namespace", "ns", false, true, true },
	{ "", "v1", "services", "Service", "service", "svc", true, true, true },
	{ "", "v1", "endpoints", "Endpoints", "endpoints", "ep", true, true, false },
	{ "", "v1", "pods", "Pod", "pod", "po", true, true, true },
	{ "", "v1", "serviceaccounts", "ServiceAccount", "serviceaccount", "sa", true, true, true },
	{ "", "v1", "configmaps", "ConfigMap", "configmap", "cm", true, true, false },
	{ "", "v1", "secrets", "Secret", "secret", "", true, true, false },
	{ "", "v1", "events", "Event", "event", "ev", true, true, false },
	{ "", "v1", "nodes", "Node", "node", "no", false, true, false },
	{ "apps", "v1", "deployments", "Deployment", "deployment", "deploy", true, true, false },
	{ "apps", "v1", "daemonsets", "DaemonSet", "daemonset", "ds", true, true, false },
	{ "apps", "v1", "replicasets", "ReplicaSet", "replicaset", "rs", true, true, false },
	/* what manifests/deploy/rbac.yaml makes: stored and shown, not enforced (one token) */
	{ "rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", "clusterrole", "",
	  false, true, false },
	{ "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
	  "clusterrolebinding", "", false, true, false },
	{ "discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", "endpointslice", "", true,
	  true, false },
	{ ISTIO, "", "serviceentries", "ServiceEntry", "serviceentry", "se", true, false, true },
	{ ISTIO, "", "destinationrules", "DestinationRule", "destinationrule", "dr", true, false,
	  true },
	{ ISTIO, "", "virtualservices", "VirtualService", "virtualservice", "vs", true, false,
	  true },
	{ ISTIO, "", "gateways", "Gateway", "gateway", "gw", true, false, true },
	{ ISTIO, "", "workloadentries", "WorkloadEntry", "workloadentry", "we", true, false,
	  true },
};
const size_t n_kind_defs = sizeof(kind_defs) / sizeof(kind_defs[0]);

static const char *istio_versions[] = { "v1", "v1beta1", "v1alpha3" };

static bool serves_version(const struct kind_def *k, const char *version)
{
	if (*k->version)
		return !strcmp(k->version, version);
	for (size_t i = 0; i < 3; i++)
		if (!strcmp(istio_versions[i], version))
			return true;
	return false;
}

const struct kind_def *kind_find(const char *group, const char *version, const char *resource)
{
	for (size_t i = 0; i < n_kind_defs; i++)
		if (!strcmp(kind_defs[i].group, group) && !strcmp(kind_defs[i].resource, resource) &&
		    serves_version(&kind_defs[i], version))
			return &kind_defs[i];
	return NULL;
}

void kind_key(const struct kind_def *k, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", k->group, k->resource);
}

/* ---- discovery ---- */

json_t *discovery_api(const char *addr)
{
	return json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions", "versions", "v1",
			 "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0", "serverAddress",
			 addr);
}

static json_t *group_entry(const char *name, const char **versions, size_t n)
{
	json_t *vs = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(vs, json_pack("{s:o, s:s}", "groupVersion",
						    json_sprintf("%s/%s", name, versions[i]),
						    "version", versions[i]));
	return json_pack("{s:s, s:o, s:O}", "name", name, "versions", vs, "preferredVersion",
			 json_array_get(vs, 0));
}

json_t *discovery_apis(void)
{
	static const char *v1[] = { "v1" };

	return json_pack("{s:s, s:s, s:[o, o, o, o]}", "kind", "APIGroupList", "apiVersion", "v1",
			 "groups", group_entry("apps", v1, 1), group_entry("discovery.k8s.io", v1, 1),
			 group_entry("rbac.authorization.k8s.io", v1, 1),
			 group_entry(ISTIO, istio_versions, 3));
}

static json_t *verbs(void)
{
	return json_pack("[s, s, s, s, s, s, s, s]", "create", "delete", "deletecollection", "get",
			 "list", "patch", "update", "watch");
}

json_t *discovery_resources(const char *group, const char *version)
{
	json_t *res = json_array();
	bool any = false;

	for (size_t i = 0; i < n_kind_defs; i++) {
		const struct kind_def *k = &kind_defs[i];
		json_t *r, *sn = json_array();

		if (strcmp(k->group, group) || !serves_version(k, version))
			continue;
		any = true;
		if (*k->short_names)
			json_array_append_new(sn, json_string(k->short_names));
		r = json_pack("{s:s, s:s, s:b, s:s, s:o, s:o}", "name", k->resource, "singularName",
			      k->singular, "namespaced", k->namespaced, "kind", k->kind, "verbs",
			      verbs(), "shortNames", sn);
		if (!*k->group || !strcmp(k->group, "apps"))
			json_object_set_new(r, "categories", json_pack("[s]", "all"));
		json_array_append_new(res, r);
		if (!strcmp(k->resource, "deployments"))
			json_array_append_new(res, json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:[s,s,s]}",
							     "name", "deployments/scale",
							     "singularName", "", "namespaced", 1,
							     "group", "autoscaling", "version", "v1",
							     "kind", "Scale", "verbs", "get",
							     "patch", "update"));
	}
	if (!any) {
		json_decref(res);
		return NULL;
	}
	return json_pack("{s:s, s:s, s:o, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
			 "groupVersion",
			 *group ? json_sprintf("%s/%s", group, version) : json_string(version),
			 "resources", res);
}

/* ---- OpenAPI ---- */

json_t *openapi_v3_index(void)
{
	json_t *paths = json_object();

	for (size_t i = 0; i < n_kind_defs; i++) {
		const struct kind_def *k = &kind_defs[i];

		for (size_t v = 0; v < (*k->version ? 1 : 3); v++) {
			const char *ver = *k->version ? k->version : istio_versions[v];
			char p[128];

			if (*k->group)
				snprintf(p, sizeof(p), "apis/%s/%s", k->group, ver);
			else
				snprintf(p, sizeof(p), "api/%s", ver);
			json_object_set_new(paths, p,
					    json_pack("{s:o}", "serverRelativeURL",
						      json_sprintf("/openapi/v3/%s?hash=ksteer1", p)));
		}
	}
	return json_pack("{s:o}", "paths", paths);
}

/*
 * Per group version: each resource's PATCH with its kind and the fieldValidation
 * parameter (kubectl then leaves validation to the server) and the patch types
 * taken. No strategic merge patch is listed, nor schemas: kubectl then computes
 * its patches from its built-in types, as it does when OpenAPI is off.
 */
json_t *openapi_v3_doc(const char *group, const char *version)
{
	json_t *paths = json_object();
	bool any = false;

	for (size_t i = 0; i < n_kind_defs; i++) {
		const struct kind_def *k = &kind_defs[i];
		char p[256];
		json_t *op;

		if (strcmp(k->group, group) || !serves_version(k, version))
			continue;
		any = true;
		snprintf(p, sizeof(p), "/%s%s/%s/%s%s/{name}", *group ? "apis/" : "api", group,
			 version, k->namespaced ? "namespaces/{namespace}/" : "", k->resource);
		op = json_pack("{s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:{s:s}}, {s:s, s:s, s:{s:s}}],"
			       " s:{s:{s:{}, s:{}}}, s:{s:{s:s}}}",
			       "x-kubernetes-group-version-kind", "group", group, "version", version,
			       "kind", k->kind, "parameters", "name", "fieldValidation", "in",
			       "query", "schema", "type", "string", "name", "dryRun", "in", "query",
			       "schema", "type", "string", "requestBody", "content",
			       "application/merge-patch+json", "application/json-patch+json",
			       "responses", "200", "description", "OK");
		json_object_set_new(paths, p, json_pack("{s:o}", "patch", op));
	}
	if (!any) {
		json_decref(paths);
		return NULL;
	}
	return json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:{}}}", "openapi", "3.0.0", "info", "title",
			 "Kubernetes (ksteer lab)", "version", "v1.32.0", "paths", paths,
			 "components", "schemas");
}

const unsigned char *openapi_v2_pb(size_t *len)
{
	/* gnostic's openapi_v2.Document: swagger = "2.0", info = {title, version} */
	static const unsigned char pb[] = { 0x0a, 0x03, '2', '.', '0', 0x12, 0x10, 0x0a, 0x0a,
					    'K', 'u', 'b', 'e', 'r', 'n', 'e', 't', 'e', 's',
					    0x12, 0x02, 'v', '1' };

	*len = sizeof(pb);
	return pb;
}

/* ---- tables ---- */

void k8s_age(const char *created, char *out, size_t len)
{
	struct tm tm = { 0 };
	long d;

	if (!created || !strptime(created, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		snprintf(out, len, "<unknown>");
		return;
	}
	d = (long)(time(NULL) - timegm(&tm));
	if (d < 0)
		d = 0;
	if (d < 120)
		snprintf(out, len, "%lds", d);
	else if (d < 600)
		snprintf(out, len, "%ldm%lds", d / 60, d % 60);
	else if (d < 3 * 3600)
		snprintf(out, len, "%ldm", d / 60);
	else if (d < 8 * 3600)
		snprintf(out, len, "%ldh%ldm", d / 3600, d / 60 % 60);
	else if (d < 48 * 3600)
		snprintf(out, len, "%ldh", d / 3600);
	else if (d < 8 * 86400)
		snprintf(out, len, "%ldd%ldh", d / 86400, d / 3600 % 24);
	else
		snprintf(out, len, "%ldd", d / 86400);
}

static const char *s(json_t *o, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save))
		o = json_object_get(o, t);
	return json_string_value(o) ?: "";
}

/* "Name,Ready;IP,Node": the columns after ';' are -o wide's (priority 1) */
static json_t *cols(const char *spec)
{
	json_t *c = json_array();
	char buf[512], *save = NULL;
	int prio = 0;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *semi = strchr(t, ';');

		if (semi) { /* "Age;IP": Age ends the default columns, IP starts the wide ones */
			*semi = 0;
			json_array_append_new(c, json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", t,
							   "type", "string", "format", "",
							   "description", t, "priority", 0));
			t = semi + 1;
			prio = 1;
		}
		json_array_append_new(c, json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", t, "type",
						   "string", "format", !strcmp(t, "Name") ? "name" : "",
						   "description", t, "priority", prio));
	}
	return c;
}

static void ports_text(json_t *ports, char *out, size_t len, bool svc)
{
	size_t i, n = 0;
	json_t *p;

	out[0] = 0;
	json_array_foreach(ports, i, p)
	{
		long long port = json_integer_value(json_object_get(p, "port"));
		const char *proto = json_string_value(json_object_get(p, "protocol")) ?: "TCP";

		n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%lld/%s", i ? "," : "",
				      port, proto);
		(void)svc;
		if (n >= len)
			break;
	}
	if (!out[0])
		snprintf(out, len, "<none>");
}

static json_t *row_cells(const struct kind_def *k, json_t *o)
{
	char age[32], buf[1024];
	json_t *spec = json_object_get(o, "spec"), *st = json_object_get(o, "status");
	const char *name = s(o, "metadata.name");

	k8s_age(s(o, "metadata.creationTimestamp"), age, sizeof(age));
	if (!strcmp(k->kind, "Pod")) {
		size_t n = json_array_size(json_object_get(spec, "containers")), ready = 0, i;
		json_t *cs;
		long long restarts = 0;

		json_array_foreach(json_object_get(st, "containerStatuses"), i, cs)
		{
			ready += json_is_true(json_object_get(cs, "ready"));
			restarts += json_integer_value(json_object_get(cs, "restartCount"));
		}
		snprintf(buf, sizeof(buf), "%zu/%zu", ready, n);
		return json_pack("[s, s, s, I, s, s, s, s, s]", name, buf,
				 *s(st, "phase") ? s(st, "phase") : "Pending", (json_int_t)restarts,
				 age, *s(st, "podIP") ? s(st, "podIP") : "<none>",
				 *s(spec, "nodeName") ? s(spec, "nodeName") : "<none>", "<none>",
				 "<none>");
	}
	if (!strcmp(k->kind, "Service")) {
		char sel[512] = "";
		const char *key;
		json_t *v;
		size_t n = 0;

		ports_text(json_object_get(spec, "ports"), buf, sizeof(buf), true);
		json_object_foreach(json_object_get(spec, "selector"), key, v)
			n += (size_t)snprintf(sel + n, n < sizeof(sel) ? sizeof(sel) - n : 0,
					      "%s%s=%s", n ? "," : "", key,
					      json_string_value(v) ?: "");
		return json_pack("[s, s, s, s, s, s, s]", name,
				 *s(spec, "type") ? s(spec, "type") : "ClusterIP",
				 *s(spec, "clusterIP") ? s(spec, "clusterIP") : "None", "<none>", buf,
				 age, n ? sel : "<none>");
	}
	if (!strcmp(k->kind, "Deployment") || !strcmp(k->kind, "DaemonSet")) {
		long long want = json_integer_value(json_object_get(spec, "replicas")),
			  have = json_integer_value(json_object_get(st, "readyReplicas"));
		json_t *ct = json_object_get(json_object_get(json_object_get(spec, "template"),
							      "spec"),
					     "containers"), *c;
		char names[256] = "", images[512] = "";
		size_t i, a = 0, b = 0;

		if (!strcmp(k->kind, "DaemonSet"))
			want = json_integer_value(json_object_get(st, "desiredNumberScheduled")),
			have = json_integer_value(json_object_get(st, "numberReady"));
		json_array_foreach(ct, i, c)
		{
			a += (size_t)snprintf(names + a, a < sizeof(names) ? sizeof(names) - a : 0,
					      "%s%s", i ? "," : "", s(c, "name"));
			b += (size_t)snprintf(images + b, b < sizeof(images) ? sizeof(images) - b : 0,
					      "%s%s", i ? "," : "", s(c, "image"));
		}
		snprintf(buf, sizeof(buf), "%lld/%lld", have, want);
		return json_pack("[s, s, I, I, s, s, s]", name, buf, (json_int_t)have,
				 (json_int_t)have, age, names, images);
	}
	if (!strcmp(k->kind, "Namespace"))
		return json_pack("[s, s, s]", name, "Active", age);
	if (!strcmp(k->kind, "VirtualService")) {
		char gws[256] = "", hosts[512] = "";
		size_t i, a = 0;
		json_t *h;

		json_array_foreach(json_object_get(spec, "gateways"), i, h)
			a += (size_t)snprintf(gws + a, a < sizeof(gws) ? sizeof(gws) - a : 0,
					      "%s\"%s\"", i ? "," : "[", json_string_value(h) ?: "");
		if (a)
			strncat(gws, "]", sizeof(gws) - strlen(gws) - 1);
		a = 0;
		json_array_foreach(json_object_get(spec, "hosts"), i, h)
			a += (size_t)snprintf(hosts + a, a < sizeof(hosts) ? sizeof(hosts) - a : 0,
					      "%s\"%s\"", i ? "," : "[", json_string_value(h) ?: "");
		if (a)
			strncat(hosts, "]", sizeof(hosts) - strlen(hosts) - 1);
		return json_pack("[s, s, s, s]", name, gws, hosts, age);
	}
	if (!strcmp(k->kind, "DestinationRule"))
		return json_pack("[s, s, s]", name, s(spec, "host"), age);
	if (!strcmp(k->kind, "ServiceEntry")) {
		char hosts[512] = "";
		size_t i, a = 0;
		json_t *h;

		json_array_foreach(json_object_get(spec, "hosts"), i, h)
			a += (size_t)snprintf(hosts + a, a < sizeof(hosts) ? sizeof(hosts) - a : 0,
					      "%s\"%s\"", i ? "," : "[", json_string_value(h) ?: "");
		if (a)
			strncat(hosts, "]", sizeof(hosts) - strlen(hosts) - 1);
		return json_pack("[s, s, s, s, s]", name, hosts, s(spec, "location"),
				 s(spec, "resolution"), age);
	}
	if (!strcmp(k->kind, "EndpointSlice")) {
		char eps[512] = "";
		size_t i, j, a = 0;
		json_t *e, *ad;

		ports_text(json_object_get(o, "ports"), buf, sizeof(buf), false);
		json_array_foreach(json_object_get(o, "endpoints"), i, e)
			json_array_foreach(json_object_get(e, "addresses"), j, ad)
				a += (size_t)snprintf(eps + a, a < sizeof(eps) ? sizeof(eps) - a : 0,
						      "%s%s", a ? "," : "",
						      json_string_value(ad) ?: "");
		return json_pack("[s, s, s, s, s]", name, s(o, "addressType"), buf,
				 a ? eps : "<unset>", age);
	}
	if (!strcmp(k->kind, "Endpoints")) {
		char eps[512] = "";
		size_t i, j, m, a = 0;
		json_t *sub, *ad, *pt;

		json_array_foreach(json_object_get(o, "subsets"), i, sub)
			json_array_foreach(json_object_get(sub, "addresses"), j, ad)
				json_array_foreach(json_object_get(sub, "ports"), m, pt)
					a += (size_t)snprintf(
						eps + a, a < sizeof(eps) ? sizeof(eps) - a : 0,
						"%s%s:%lld", a ? "," : "", s(ad, "ip"),
						json_integer_value(json_object_get(pt, "port")));
		return json_pack("[s, s, s]", name, a ? eps : "<none>", age);
	}
	return json_pack("[s, s]", name, age);
}

static const char *columns_of(const struct kind_def *k)
{
	if (!strcmp(k->kind, "Pod"))
		return "Name,Ready,Status,Restarts,Age;IP,Node,Nominated Node,Readiness Gates";
	if (!strcmp(k->kind, "Service"))
		return "Name,Type,Cluster-IP,External-IP,Port(s),Age;Selector";
	if (!strcmp(k->kind, "Deployment") || !strcmp(k->kind, "DaemonSet"))
		return "Name,Ready,Up-to-date,Available,Age;Containers,Images";
	if (!strcmp(k->kind, "Namespace"))
		return "Name,Status,Age";
	if (!strcmp(k->kind, "VirtualService"))
		return "Name,Gateways,Hosts,Age";
	if (!strcmp(k->kind, "DestinationRule"))
		return "Name,Host,Age";
	if (!strcmp(k->kind, "ServiceEntry"))
		return "Name,Hosts,Location,Resolution,Age";
	if (!strcmp(k->kind, "EndpointSlice"))
		return "Name,AddressType,Ports,Endpoints,Age";
	if (!strcmp(k->kind, "Endpoints"))
		return "Name,Endpoints,Age";
	return "Name,Age";
}

json_t *table_of(const struct kind_def *k, json_t *items, bool full_object)
{
	json_t *rows = json_array(), *o;
	size_t i;

	json_array_foreach(items, i, o)
	{
		json_t *obj = full_object ? json_incref(o)
					  : json_pack("{s:s, s:s, s:O}", "kind", "PartialObjectMetadata",
						      "apiVersion", "meta.k8s.io/v1", "metadata",
						      json_object_get(o, "metadata"));

		json_array_append_new(rows, json_pack("{s:o, s:o}", "cells", row_cells(k, o),
						      "object", obj));
	}
	return json_pack("{s:s, s:s, s:{}, s:o, s:o}", "kind", "Table", "apiVersion",
			 "meta.k8s.io/v1", "metadata", "columnDefinitions", cols(columns_of(k)),
			 "rows", rows);
}
