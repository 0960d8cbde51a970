// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "explain.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../dns/dns.h"

/* A pod's resolver: ndots 5 and Kubernetes' search list for its namespace. */
#define RESOLV_NDOTS 5

struct url {
	char scheme[8]; /* "http", "https" or "tcp" */
	char host[256];
	uint16_t port;
	const char *path; /* "/" when none */
};

static int url_parse(const char *s, struct url *u, char *err, size_t len)
{
	const char *p = strstr(s, "://"), *h, *end;
	size_t hl;

	memset(u, 0, sizeof(*u));
	if (p) {
		if ((size_t)(p - s) >= sizeof(u->scheme))
			goto bad;
		memcpy(u->scheme, s, (size_t)(p - s));
		h = p + 3;
	} else {
		strcpy(u->scheme, "tcp");
		h = s;
	}
	if (strcmp(u->scheme, "http") && strcmp(u->scheme, "https") && strcmp(u->scheme, "tcp"))
		goto bad;
	u->port = !strcmp(u->scheme, "http") ? 80 : !strcmp(u->scheme, "https") ? 443 : 0;
	end = h + strcspn(h, "/?#");
	u->path = *end ? end : "/";
	if (*h == '[') { /* [v6]:port */
		const char *rb = memchr(h, ']', (size_t)(end - h));

		if (!rb)
			goto bad;
		hl = (size_t)(rb - h - 1);
		if (hl >= sizeof(u->host))
			goto bad;
		memcpy(u->host, h + 1, hl);
		p = rb + 1 < end && rb[1] == ':' ? rb + 2 : NULL;
	} else {
		const char *colon = memchr(h, ':', (size_t)(end - h));

		hl = (size_t)((colon ? colon : end) - h);
		if (!hl || hl >= sizeof(u->host))
			goto bad;
		memcpy(u->host, h, hl);
		p = colon ? colon + 1 : NULL;
	}
	if (p) {
		char *e;
		unsigned long v = strtoul(p, &e, 10);

		if (e != end || !v || v > 65535)
			goto bad;
		u->port = (uint16_t)v;
	}
	if (!u->port)
		goto bad;
	return 0;
bad:
	snprintf(err, len, "bad URL \"%s\": give http://HOST[:PORT][/PATH], https://HOST:PORT or "
		 "tcp://HOST:PORT", s);
	return -EINVAL;
}

/* The address a pod connects to for a mesh host: the first IPv4 VIP the mesh DNS gives it (the
 * A query comes first), else its first; NULL when it has none. */
static const struct ks_addr *host_vip(const struct plan *plan, const char *name)
{
	const struct ks_addr *v[DNS_MAX_ADDRS];
	unsigned n;
	bool known;

	n = dns_host_addrs(plan, name, v, DNS_MAX_ADDRS, &known);
	for (unsigned i = 0; i < n; i++)
		if (addr_is_v4(v[i]))
			return v[i];
	return n ? v[0] : NULL;
}

/* What the pod's resolver asks the mesh DNS, in order, until a name has an address. */
static const struct ks_addr *resolve(const struct plan *plan, const char *name, const char *ns,
				     char *fqdn, size_t len)
{
	char cand[5][300];
	unsigned n = 0, dots = 0;

	for (const char *p = name; *p; p++)
		dots += *p == '.';
	if (dots >= RESOLV_NDOTS)
		snprintf(cand[n++], sizeof(cand[0]), "%s", name);
	snprintf(cand[n++], sizeof(cand[0]), "%s.%s.svc.cluster.local", name, ns);
	snprintf(cand[n++], sizeof(cand[0]), "%s.svc.cluster.local", name);
	snprintf(cand[n++], sizeof(cand[0]), "%s.cluster.local", name);
	if (dots < RESOLV_NDOTS)
		snprintf(cand[n++], sizeof(cand[0]), "%s", name);
	for (unsigned i = 0; i < n; i++) {
		const struct ks_addr *v = host_vip(plan, cand[i]);

		if (v) {
			snprintf(fqdn, len, "%s", cand[i]);
			return v;
		}
	}
	return NULL;
}

static json_t *sm_json(const struct string_match *m)
{
	if (m && m->exact)
		return json_pack("{ss}", "exact", m->exact);
	if (m && m->prefix)
		return json_pack("{ss}", "prefix", m->prefix);
	if (m && m->regex)
		return json_pack("{ss}", "regex", m->regex);
	return json_pack("{sb}", "present", 1);
}

static void cond(json_t *a, const char *what, const char *name, const struct string_match *m)
{
	json_t *c = sm_json(m);

	json_object_set_new(c, "field", json_string(what));
	if (name)
		json_object_set_new(c, "name", json_string(name));
	json_array_append_new(a, c);
}

/* The conditions of the match block that accepted the request: all of them held. */
static json_t *block_json(const struct http_match *b)
{
	json_t *a = json_array();

	if (b->uri)
		cond(a, "uri", NULL, b->uri);
	if (b->scheme)
		cond(a, "scheme", NULL, b->scheme);
	if (b->method)
		cond(a, "method", NULL, b->method);
	if (b->authority)
		cond(a, "authority", NULL, b->authority);
	for (uint32_t i = 0; i < b->headers.n; i++)
		cond(a, "header", b->headers.v[i].k, b->headers.v[i].o);
	for (uint32_t i = 0; i < b->queryParams.n; i++)
		cond(a, "queryParam", b->queryParams.v[i].k, b->queryParams.v[i].o);
	for (uint32_t i = 0; i < b->withoutHeaders.n; i++)
		cond(a, "withoutHeader", b->withoutHeaders.v[i].k, b->withoutHeaders.v[i].o);
	if (b->port)
		json_array_append_new(a, json_pack("{ss,sI}", "field", "port", "exact",
						   (json_int_t)b->port));
	return a;
}

static json_t *labels_json(const struct kvs *l)
{
	json_t *o = json_object();

	for (uint32_t i = 0; l && i < l->n; i++)
		json_object_set_new(o, l->v[i].k, json_string(l->v[i].v ? l->v[i].v : ""));
	return o;
}

static const char *tls_name(const struct c_dest *d)
{
	switch (d->tls) {
	case C_TLS_ISTIO_MUTUAL:
		return "ISTIO_MUTUAL";
	case C_TLS_DISABLE:
		return "DISABLE";
	case C_TLS_OTHER:
		return d->tls_mode ? d->tls_mode : "OTHER";
	default:
		return "none";
	}
}

static json_t *dest_json(const struct plan *plan, const struct c_dest *d, uint64_t total)
{
	json_t *o = json_pack("{ss,ss}", "host", d->host ? d->host : "", "tls", tls_name(d));
	json_t *eps = json_array();
	char a[INET6_ADDRSTRLEN];

	if (d->subset)
		json_object_set_new(o, "subset", json_string(d->subset));
	if (d->port)
		json_object_set_new(o, "port", json_integer(d->port));
	json_object_set_new(o, "weight", json_integer(d->weight));
	json_object_set_new(o, "percent", json_real(total ? 100.0 * d->weight / (double)total : 0));
	if (d->dr)
		json_object_set_new(o, "destinationRule", json_string(d->dr));
	if (d->od.on)
		json_object_set_new(o, "outlierDetection",
				    json_pack("{sI,sI}", "consecutive5xxErrors", (json_int_t)d->od.max_5xx,
					      "baseEjectionMs", (json_int_t)d->od.base_ms));
	for (uint32_t i = 0; i < d->n_eps; i++) {
		const struct c_endpoint *e = &d->eps[i];
		json_t *ej = json_pack("{ss,si,so}", "address", e->address, "port", e->port, "labels",
				       labels_json(e->labels));
		const struct c_pod *pod = e->is_ip ? plan_pod(plan, &e->ka) : NULL;

		if (e->cluster)
			json_object_set_new(ej, "cluster", json_string(e->cluster));
		if (e->network)
			json_object_set_new(ej, "network", json_string(e->network));
		if (pod)
			json_object_set_new(ej, "pod", json_sprintf("%s/%s", pod->ns, pod->name));
		if (e->is_ip && addr_str(&e->ka, a, sizeof(a)) && strcmp(a, e->address))
			json_object_set_new(ej, "ip", json_string(a));
		json_array_append_new(eps, ej);
	}
	json_object_set_new(o, "endpoints", eps);
	if (d->problem)
		json_object_set_new(o, "problem", json_string(d->problem));
	return o;
}

static json_t *reasons_json(uint32_t bits)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} r[] = {
		{ SHIM_HTTP_MATCH, "a route matches on request fields" },
		{ SHIM_HTTP_SPLIT, "an http route splits by weight per request" },
		{ SHIM_TLS, "TLS origination (DestinationRule)" },
		{ SHIM_HTTP_FEATURE, "http features (fault, timeout, retries, rewrite, mirror...)" },
		{ SHIM_SNI, "tls routes match on SNI" },
		{ SHIM_OUTLIER, "outlier detection watches answers" },
	};
	json_t *a = json_array();

	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if (bits & r[i].bit)
			json_array_append_new(a, json_string(r[i].name));
	return a;
}

/* What a matched http route does besides picking a destination. */
static json_t *features_json(const struct c_route *r)
{
	json_t *o = json_object();
	const struct http_route *h = r->http;

	if (!h)
		return o;
	if (h->redirect)
		json_object_set_new(o, "redirect",
				    json_pack("{ss,ss,sI}", "uri", h->redirect->uri ? h->redirect->uri : "",
					      "authority",
					      h->redirect->authority ? h->redirect->authority : "",
					      "code",
					      (json_int_t)(h->redirect->redirectCode ? h->redirect->redirectCode
										     : 301)));
	if (h->directResponse)
		json_object_set_new(o, "directResponse", json_integer(h->directResponse->status));
	if (h->rewrite)
		json_object_set_new(o, "rewrite",
				    json_pack("{ss,ss}", "uri", h->rewrite->uri ? h->rewrite->uri : "",
					      "authority", h->rewrite->authority ? h->rewrite->authority : ""));
	if (r->h.timeout_ms)
		json_object_set_new(o, "timeoutMs", json_integer((json_int_t)r->h.timeout_ms));
	json_object_set_new(o, "retries", json_integer(r->h.attempts));
	if (r->h.per_try_ms)
		json_object_set_new(o, "perTryTimeoutMs", json_integer((json_int_t)r->h.per_try_ms));
	if (r->h.abort_pct > 0)
		json_object_set_new(o, "abort", json_pack("{si,sf}", "status", r->h.abort_status,
							  "percent", r->h.abort_pct));
	if (r->h.delay_pct > 0)
		json_object_set_new(o, "delay", json_pack("{sI,sf}", "ms", (json_int_t)r->h.delay_ms,
							  "percent", r->h.delay_pct));
	for (uint32_t i = 0; i < r->n_mirrors; i++) {
		json_t *m = json_object_get(o, "mirrors");

		if (!m)
			json_object_set_new(o, "mirrors", m = json_array());
		json_array_append_new(m, json_pack("{ss,sf}", "host", r->mirrors[i].d.host,
						   "percent", r->mirrors[i].percent));
	}
	return o;
}

static json_t *route_json(const struct c_route *r, json_t *why)
{
	json_t *o = json_pack("{ss,si,so}", "type", r->type, "index", r->index, "why", why);

	if (r->name)
		json_object_set_new(o, "name", json_string(r->name));
	return o;
}

json_t *explain(const struct plan *plan, const struct explain_req *rq, char *err, size_t len)
{
	const char *ns = "default", *slash;
	const struct c_frontend *fe;
	const struct c_route *r = NULL;
	const struct ks_addr *vip = NULL;
	struct ks_addr addr;
	char fqdn[300] = "", a[INET6_ADDRSTRLEN], nsbuf[256];
	struct url u;
	json_t *e, *req, *ds;

	if (url_parse(rq->url, &u, err, len))
		return NULL;
	e = json_object();
	req = json_pack("{ss,ss,ss,si}", "method", rq->method ? rq->method : "GET", "url", rq->url,
			"host", u.host, "port", u.port);
	json_object_set_new(e, "request", req);
	if (rq->pod) {
		slash = strchr(rq->pod, '/');
		if (!slash || slash == rq->pod || !slash[1]) {
			snprintf(err, len, "bad pod \"%s\": give NAMESPACE/NAME", rq->pod);
			json_decref(e);
			return NULL;
		}
		snprintf(nsbuf, sizeof(nsbuf), "%.*s", (int)(slash - rq->pod), rq->pod);
		ns = nsbuf;
		json_object_set_new(req, "pod", json_string(rq->pod));
	}
	/* the address the client's connect() names */
	if (!addr_parse(u.host, &addr)) {
		json_object_set_new(e, "resolved", json_pack("{ss,ss}", "address", u.host, "how",
							     "an address: dialled as it is"));
	} else {
		vip = resolve(plan, u.host, ns, fqdn, sizeof(fqdn));
		if (!vip) {
			json_object_set_new(e, "resolved",
					    json_pack("{ss}", "how",
						      "not a mesh name: the mesh DNS forwards it (or "
						      "NXDOMAIN under cluster.local); ksteer does not route "
						      "what it resolves to"));
			json_object_set_new(e, "carrier", json_string("none"));
			return e;
		}
		addr = *vip;
		json_object_set_new(e, "resolved",
				    json_pack("{ss,ss,ss}", "name", fqdn, "address",
					      addr_str(&addr, a, sizeof(a)), "how",
					      "mesh DNS, through the pod's search list"));
	}
	fe = plan_frontend(plan, &addr, u.port);
	if (!fe) {
		json_object_set_new(e, "carrier", json_string("none"));
		json_object_set_new(e, "frontend", json_null());
		json_object_set_new(e, "note", json_string("no mesh frontend for this address and port: "
							   "the connection goes where it was dialled"));
		return e;
	}
	json_object_set_new(e, "frontend",
			    json_pack("{ss,si,ss,ss*,ss*,ss*}", "host", fe->host ? fe->host : "",
				      "port", fe->port, "protocol", fe->protocol ? fe->protocol : "",
				      "service", fe->service, "virtualService", fe->vs, "portName",
				      fe->port_name));
	json_object_set_new(e, "carrier", json_string(fe->shim ? "shim" : "kernel"));
	json_object_set_new(e, "shimReasons", reasons_json(fe->shim));
	if (fe->passthrough) {
		json_object_set_new(e, "note", json_string("resolution NONE without endpoints: the "
							   "dialled address is kept"));
		return e;
	}
	if (fe->http && strcmp(u.scheme, "http")) {
		snprintf(err, len, "%s:%u is an http frontend: give an http:// URL", fe->host, fe->port);
		json_decref(e);
		return NULL;
	}
	if (fe->http) {
		struct http_header hs[EXPLAIN_MAX_HEADERS + 1];
		struct http_request hr = { 0 };
		struct regex_cache rc = { 0 };
		char host[300], *path = malloc(strlen(u.path) + 2);
		unsigned nh = 0;
		bool has_host = false;

		if (!path) {
			json_decref(e);
			snprintf(err, len, "out of memory");
			return NULL;
		}
		for (unsigned i = 0; i < rq->n_headers && i < EXPLAIN_MAX_HEADERS; i++) {
			hs[nh++] = rq->headers[i];
			has_host |= !strcasecmp(rq->headers[i].name, "host");
		}
		/* as curl writes Host: the port only when it is not the scheme's */
		snprintf(host, sizeof(host), u.port == 80 ? "%s" : "%s:%u", u.host, u.port);
		if (!has_host)
			hs[nh++] = (struct http_header){ "host", host };
		route_normalize_path(u.path, path);
		hr.method = rq->method ? rq->method : "GET";
		hr.path = path;
		hr.scheme = "http";
		hr.headers = hs;
		hr.n_headers = nh;
		hr.port = u.port;
		for (unsigned i = 0; i < nh; i++)
			if (!strcasecmp(hs[i].name, "host"))
				hr.authority = hs[i].value;
		r = route_match(fe, &hr, &rc);
		if (r) {
			const struct http_match *b = route_block(r, &hr, &rc);
			json_t *why = b ? json_pack("{ss,so}", "match", b->o.path, "conditions",
						    block_json(b))
					: json_pack("{ss}", "match",
						    r->http ? "no match block: every request"
							    : "the service's default route");

			json_object_set_new(e, "route", route_json(r, why));
			json_object_set_new(e, "features", features_json(r));
		} else {
			json_object_set_new(e, "route", json_null());
			json_object_set_new(e, "answer", json_string("404 Not Found: no route matched"));
		}
		regex_cache_free(&rc);
		free(path);
	} else {
		const char *sni = !strcmp(u.scheme, "https") ? u.host : "";

		r = route_stream(fe, sni);
		if (r)
			json_object_set_new(e, "route",
					    route_json(r, json_pack("{ss}", "match",
								    route_by_sni(fe) ? "SNI"
										     : "the port")));
		else
			json_object_set_new(e, "answer",
					    json_string("refused: no tls route matches the SNI"));
	}
	ds = json_array();
	for (uint32_t i = 0; r && i < r->n_dests; i++)
		json_array_append_new(ds, dest_json(plan, &r->dests[i], r->weight_total));
	json_object_set_new(e, "destinations", ds);
	return e;
}

json_t *explain_req_json(const struct explain_req *rq)
{
	json_t *hs = json_array();

	for (unsigned i = 0; i < rq->n_headers; i++)
		json_array_append_new(hs, json_pack("[ss]", rq->headers[i].name,
						    rq->headers[i].value));
	return json_pack("{ss*,ss*,ss,so}", "pod", rq->pod, "method", rq->method, "url", rq->url,
			 "headers", hs);
}

int explain_req_parse(json_t *j, struct explain_req *rq, char *err, size_t len)
{
	json_t *hs = json_object_get(j, "headers"), *h;
	size_t i;

	memset(rq, 0, sizeof(*rq));
	rq->pod = json_string_value(json_object_get(j, "pod"));
	rq->method = json_string_value(json_object_get(j, "method"));
	rq->url = json_string_value(json_object_get(j, "url"));
	if (!rq->url || (hs && !json_is_array(hs)) || json_array_size(hs) > EXPLAIN_MAX_HEADERS) {
		snprintf(err, len, "explain: a request needs a url and at most %d headers",
			 EXPLAIN_MAX_HEADERS);
		return -EINVAL;
	}
	json_array_foreach(hs, i, h) {
		rq->headers[i].name = json_string_value(json_array_get(h, 0));
		rq->headers[i].value = json_string_value(json_array_get(h, 1));
		if (!rq->headers[i].name || !rq->headers[i].value) {
			snprintf(err, len, "explain: header %zu is not [name, value]", i);
			return -EINVAL;
		}
		rq->n_headers++;
	}
	return 0;
}

static void print_cond(json_t *c, FILE *f)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const char *kinds[] = { "exact", "prefix", "regex" };

	fprintf(f, "      %s%s%s", json_string_value(json_object_get(c, "field")), name ? " " : "",
		name ? name : "");
	for (size_t i = 0; i < 3; i++) {
		json_t *v = json_object_get(c, kinds[i]);

		if (json_is_string(v))
			fprintf(f, " %s \"%s\"", kinds[i], json_string_value(v));
		else if (json_is_integer(v))
			fprintf(f, " %s %lld", kinds[i], (long long)json_integer_value(v));
	}
	if (json_object_get(c, "present"))
		fprintf(f, " present");
	fputc('\n', f);
}

void explain_print_text(json_t *e, FILE *f)
{
	json_t *rq = json_object_get(e, "request"), *res = json_object_get(e, "resolved");
	json_t *fe = json_object_get(e, "frontend"), *r = json_object_get(e, "route"), *v;
	const char *s;
	size_t i, k;

	fprintf(f, "Request:     %s %s", json_string_value(json_object_get(rq, "method")),
		json_string_value(json_object_get(rq, "url")));
	if ((s = json_string_value(json_object_get(rq, "pod"))))
		fprintf(f, " from pod %s", s);
	fputc('\n', f);
	if ((s = json_string_value(json_object_get(res, "name"))))
		fprintf(f, "Resolved:    %s -> %s (%s)\n", s,
			json_string_value(json_object_get(res, "address")),
			json_string_value(json_object_get(res, "how")));
	else if ((s = json_string_value(json_object_get(res, "address"))))
		fprintf(f, "Address:     %s (%s)\n", s, json_string_value(json_object_get(res, "how")));
	else
		fprintf(f, "Resolved:    %s\n", json_string_value(json_object_get(res, "how")));
	if (json_is_object(fe)) {
		fprintf(f, "Frontend:    %s:%lld (%s)", json_string_value(json_object_get(fe, "host")),
			(long long)json_integer_value(json_object_get(fe, "port")),
			json_string_value(json_object_get(fe, "protocol")));
		if ((s = json_string_value(json_object_get(fe, "service"))))
			fprintf(f, ", %s", s);
		if ((s = json_string_value(json_object_get(fe, "virtualService"))))
			fprintf(f, ", %s", s);
		fputc('\n', f);
	}
	fprintf(f, "Carried by:  %s", json_string_value(json_object_get(e, "carrier")));
	v = json_object_get(e, "shimReasons");
	if (json_array_size(v)) {
		fprintf(f, " (");
		json_array_foreach(v, i, fe)
			fprintf(f, "%s%s", i ? "; " : "", json_string_value(fe));
		fputc(')', f);
	} else if (!strcmp(json_string_value(json_object_get(e, "carrier")), "kernel")) {
		fprintf(f, " (connect() is rewritten to an endpoint; no proxy)");
	}
	fputc('\n', f);
	if ((s = json_string_value(json_object_get(e, "note"))))
		fprintf(f, "Note:        %s\n", s);
	if (json_is_object(r)) {
		json_t *why = json_object_get(r, "why");

		fprintf(f, "Route:       %s route %lld", json_string_value(json_object_get(r, "type")),
			(long long)json_integer_value(json_object_get(r, "index")));
		if ((s = json_string_value(json_object_get(r, "name"))))
			fprintf(f, " \"%s\"", s);
		fprintf(f, ", matched by %s\n", json_string_value(json_object_get(why, "match")));
		json_array_foreach(json_object_get(why, "conditions"), i, v)
			print_cond(v, f);
	}
	if ((s = json_string_value(json_object_get(e, "answer"))))
		fprintf(f, "Answer:      %s\n", s);
	v = json_object_get(e, "features");
	if (json_object_size(v)) {
		char *js = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

		fprintf(f, "Features:    %s\n", js ? js : "");
		free(js);
	}
	json_array_foreach(json_object_get(e, "destinations"), i, v) {
		json_t *ep;

		fprintf(f, "Destination: %s", json_string_value(json_object_get(v, "host")));
		if ((s = json_string_value(json_object_get(v, "subset"))))
			fprintf(f, " subset %s", s);
		fprintf(f, ", %.1f%% (weight %lld), TLS %s",
			json_real_value(json_object_get(v, "percent")),
			(long long)json_integer_value(json_object_get(v, "weight")),
			json_string_value(json_object_get(v, "tls")));
		if ((s = json_string_value(json_object_get(v, "destinationRule"))))
			fprintf(f, " (DestinationRule %s)", s);
		fputc('\n', f);
		if ((s = json_string_value(json_object_get(v, "problem"))))
			fprintf(f, "    no endpoints: %s\n", s);
		json_array_foreach(json_object_get(v, "endpoints"), k, ep) {
			const char *key;
			json_t *lv;

			fprintf(f, "    %s:%lld", json_string_value(json_object_get(ep, "address")),
				(long long)json_integer_value(json_object_get(ep, "port")));
			if ((s = json_string_value(json_object_get(ep, "pod"))))
				fprintf(f, " pod %s", s);
			if ((s = json_string_value(json_object_get(ep, "cluster"))))
				fprintf(f, " cluster %s", s);
			json_object_foreach(json_object_get(ep, "labels"), key, lv)
				fprintf(f, " %s=%s", key, json_string_value(lv));
			fputc('\n', f);
		}
	}
}
