// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The plan, for people (text) and for programs (JSON). */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "compile.h"

static const struct {
	uint32_t bit;
	const char *text;
} reasons[] = {
	{ SHIM_HTTP_MATCH, "http match" }, { SHIM_HTTP_SPLIT, "per-request weight split" },
	{ SHIM_TLS, "tls origination" },   { SHIM_HTTP_FEATURE, "http timeout/retry/fault/rewrite" },
	{ SHIM_SNI, "sni match" },	   { SHIM_OUTLIER, "outlier detection" },
};

static void print_policy_text(const struct policy *p, FILE *f);

static void print_string_match(FILE *f, const char *what, const struct string_match *m)
{
	if (m->exact)
		fprintf(f, "%s = \"%s\"", what, m->exact);
	else if (m->prefix)
		fprintf(f, "%s prefix \"%s\"", what, m->prefix);
	else if (m->regex)
		fprintf(f, "%s ~ /%s/", what, m->regex);
	else
		fprintf(f, "%s present", what);
}

static void print_match(FILE *f, const struct http_match *m)
{
	const char *sep = "";
	struct {
		const char *what;
		const struct string_match *m;
	} one[] = { { "uri", m->uri },
		    { "method", m->method },
		    { "authority", m->authority },
		    { "scheme", m->scheme } };

	for (size_t i = 0; i < 4; i++)
		if (one[i].m) {
			fprintf(f, "%s", sep);
			print_string_match(f, one[i].what, one[i].m);
			sep = " and ";
		}
	for (uint32_t i = 0; i < m->headers.n; i++) {
		char what[300];

		snprintf(what, sizeof(what), "header %s", m->headers.v[i].k);
		fprintf(f, "%s", sep);
		print_string_match(f, what, m->headers.v[i].o);
		sep = " and ";
	}
	for (uint32_t i = 0; i < m->withoutHeaders.n; i++) {
		fprintf(f, "%snot header %s", sep, m->withoutHeaders.v[i].k);
		sep = " and ";
	}
	for (uint32_t i = 0; i < m->queryParams.n; i++) {
		char what[300];

		snprintf(what, sizeof(what), "query %s", m->queryParams.v[i].k);
		fprintf(f, "%s", sep);
		print_string_match(f, what, m->queryParams.v[i].o);
		sep = " and ";
	}
	if (m->port) {
		fprintf(f, "%sport %lld", sep, (long long)m->port);
		sep = " and ";
	}
	if (!*sep)
		fprintf(f, "any request");
}

static void print_route_head(FILE *f, const struct c_route *r)
{
	if (!strcmp(r->type, "default")) {
		fprintf(f, "    default route (no VirtualService)\n");
		return;
	}
	fprintf(f, "    %s[%d]%s%s%s: ", r->type, r->index, r->name ? " \"" : "",
		r->name ? r->name : "", r->name ? "\"" : "");
	if (r->http && r->http->match.n) {
		for (uint32_t i = 0; i < r->http->match.n; i++) {
			fprintf(f, "%s", i ? " or " : "when ");
			print_match(f, &r->http->match.v[i]);
		}
	} else if (r->l4 && r->l4->match.n) {
		for (uint32_t i = 0; i < r->l4->match.n; i++) {
			const struct l4_match *m = &r->l4->match.v[i];

			fprintf(f, "%s", i ? " or " : "when ");
			for (uint32_t j = 0; j < m->sniHosts.n; j++)
				fprintf(f, "%ssni %s", j ? ", " : "", m->sniHosts.v[j]);
			if (m->port)
				fprintf(f, "%sport %lld", m->sniHosts.n ? " and " : "",
					(long long)m->port);
			if (!m->port && !m->sniHosts.n)
				fprintf(f, "any connection");
		}
	} else {
		fprintf(f, "any %s", r->http ? "request" : "connection");
	}
	if (r->http) {
		if (r->http->timeout)
			fprintf(f, ", timeout %lldms", (long long)r->http->timeout);
		if (r->http->retries)
			fprintf(f, ", %lld retries", (long long)r->http->retries->attempts);
		if (r->http->fault && r->http->fault->abort)
			fprintf(f, ", fault abort %lld", (long long)r->http->fault->abort->httpStatus);
		if (r->http->fault && r->http->fault->delay)
			fprintf(f, ", fault delay %lldms",
				(long long)r->http->fault->delay->fixedDelay);
	}
	fprintf(f, "\n");
}

static double pct(uint32_t w, uint64_t total)
{
	return total ? 100.0 * w / (double)total : 0;
}

void plan_print_text(const struct plan *plan, FILE *f)
{
	uint32_t kernel = 0, shim = 0;

	for (uint32_t i = 0; i < plan->n_fes; i++) {
		const struct c_frontend *fe = &plan->fes[i];

		if (fe->gateway)
			continue;
		if (fe->shim)
			shim++;
		else
			kernel++;
	}
	fprintf(f, "plan: %u frontends (%u in the kernel, %u through the shim); image: %u map "
		   "keys, %u destinations, %u backends\n",
		kernel + shim, kernel, shim, plan->img.n_fes, plan->img.n_dests, plan->img.n_backends);
	for (uint32_t i = 0; i < plan->n_fes; i++) {
		const struct c_frontend *fe = &plan->fes[i];

		fprintf(f, "\n");
		if (fe->gateway) {
			fprintf(f, "gateway %s  host %s  (%s)\n", fe->gateway, fe->host, fe->vs);
		} else {
			if (fe->port)
				fprintf(f, "frontend %s:%u %s", fe->host, fe->port, fe->protocol);
			else
				fprintf(f, "frontend %s (any port) %s", fe->host, fe->protocol);
			if (fe->shim) {
				const char *sep = "";

				fprintf(f, "  [shim:");
				for (size_t r = 0; r < sizeof(reasons) / sizeof(reasons[0]); r++)
					if (fe->shim & reasons[r].bit) {
						fprintf(f, "%s %s", sep, reasons[r].text);
						sep = ",";
					}
				fprintf(f, "]\n");
			} else {
				fprintf(f, fe->passthrough ? "  [passthrough]\n" : "  [kernel]\n");
			}
			fprintf(f, "  address  ");
			for (uint32_t v = 0; v < fe->n_vips; v++)
				fprintf(f, "%s%s", v ? ", " : "", fe->vips[v].text);
			if (!fe->n_vips)
				fprintf(f, "none (%s)",
					!fe->service ? "no Service or ServiceEntry defines this host yet"
					: !strncmp(fe->service, "Service ", 8)
						? "a ClusterIP is assigned when the Service is applied to "
						  "a cluster"
						: "the ServiceEntry declares no addresses");
			fprintf(f, "\n");
			if (fe->service)
				fprintf(f, "  service  %s\n", fe->service);
			if (fe->vs)
				fprintf(f, "  routes   %s\n", fe->vs);
		}
		for (uint32_t r = 0; r < fe->n_routes; r++) {
			const struct c_route *rt = &fe->routes[r];

			print_route_head(f, rt);
			for (uint32_t d = 0; d < rt->n_dests; d++) {
				const struct c_dest *ds = &rt->dests[d];

				fprintf(f, "    %6.1f%%  %s", pct(ds->weight, rt->weight_total),
					ds->host);
				if (ds->port)
					fprintf(f, ":%u", ds->port);
				if (ds->subset)
					fprintf(f, " subset %s", ds->subset);
				if (ds->tls_mode)
					fprintf(f, "  tls %s", ds->tls_mode);
				fprintf(f, "\n");
				if (!ds->weight)
					continue;
				for (uint32_t e = 0; e < ds->n_eps; e++) {
					const struct c_endpoint *ep = &ds->eps[e];

					fprintf(f, "               %s%s%s:%u", strchr(ep->address, ':') ? "[" : "",
						ep->address, strchr(ep->address, ':') ? "]" : "", ep->port);
					if (ep->cluster)
						fprintf(f, "  cluster=%s", ep->cluster);
					if (!ep->is_ip)
						fprintf(f, "  %s", strstr(ep->address, "${")
									  ? "(unresolved variable)"
									  : "(DNS name)");
					fprintf(f, "  (%s)\n", ep->origin);
				}
				if (ds->problem)
					fprintf(f, "               no endpoints: %s (503 no healthy upstream)\n",
						ds->problem);
			}
		}
	}
	print_policy_text(plan->policy, f);
}

static void print_labels(FILE *f, const struct kvs *l)
{
	for (uint32_t i = 0; i < l->n; i++)
		fprintf(f, "%s%s=%s", i ? "," : "", l->v[i].k, l->v[i].v ? l->v[i].v : "");
	if (!l->n)
		fprintf(f, "(all endpoints)");
}

/* Gateways and DestinationRules, which shape traffic arriving from elsewhere. */
static void print_policy_text(const struct policy *p, FILE *f)
{
	for (uint32_t i = 0; i < p->n; i++) {
		const struct resource *r = p->res[i];

		if (r->kind == K_GATEWAY) {
			const struct gateway *gw = r->spec;

			fprintf(f, "\ngateway %s/%s  selector ", r->ns, r->name);
			print_labels(f, &gw->selector);
			fprintf(f, "\n");
			for (uint32_t s = 0; s < gw->servers.n; s++) {
				const struct server *sv = &gw->servers.v[s];
				const char *mode = sv->tls && sv->tls->mode ? sv->tls->mode : NULL;

				fprintf(f, "  server %lld/%s  hosts", sv->port ? (long long)sv->port->number : 0,
					sv->port && sv->port->protocol ? sv->port->protocol : "?");
				for (uint32_t h = 0; h < sv->hosts.n; h++)
					fprintf(f, " %s", sv->hosts.v[h]);
				if (mode)
					fprintf(f, "  tls %s", mode);
				if (mode && !strcmp(mode, "AUTO_PASSTHROUGH"))
					fprintf(f, ": SNI outbound_.<port>_.<subset>_.<host> picks a subset "
						   "of this cluster, TLS passed through");
				fprintf(f, "\n");
			}
		} else if (r->kind == K_DESTINATION_RULE) {
			const struct destination_rule *dr = r->spec;
			const struct traffic_policy *tp = dr->trafficPolicy;

			fprintf(f, "\ndestination rule %s/%s  host %s", r->ns, r->name,
				host_fqdn((struct arena *)&p->a, dr->host, r->ns));
			if (tp && tp->tls && tp->tls->mode)
				fprintf(f, "  tls %s", tp->tls->mode);
			if (tp && tp->loadBalancer && tp->loadBalancer->simple)
				fprintf(f, "  lb %s", tp->loadBalancer->simple);
			fprintf(f, "\n");
			for (uint32_t s = 0; s < dr->subsets.n; s++) {
				const struct subset *sb = &dr->subsets.v[s];

				fprintf(f, "  subset %s  ", sb->name);
				print_labels(f, &sb->labels);
				if (sb->trafficPolicy && sb->trafficPolicy->tls &&
				    sb->trafficPolicy->tls->mode)
					fprintf(f, "  tls %s", sb->trafficPolicy->tls->mode);
				fprintf(f, "\n");
			}
		}
	}
}

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

int plan_print_json(const struct plan *plan, FILE *f)
{
	json_t *root = json_object(), *fes = json_array();
	int err;

	for (uint32_t i = 0; i < plan->n_fes; i++) {
		const struct c_frontend *fe = &plan->fes[i];
		json_t *j = json_object(), *vips = json_array(), *routes = json_array(),
		       *why = json_array();

		json_object_set_new(j, "host", json_string(fe->host));
		json_object_set_new(j, "port", fe->port ? json_integer(fe->port) : json_null());
		json_object_set_new(j, "protocol", jstr(fe->protocol));
		json_object_set_new(j, "gateway", jstr(fe->gateway));
		for (uint32_t v = 0; v < fe->n_vips; v++)
			json_array_append_new(vips, json_string(fe->vips[v].text));
		json_object_set_new(j, "addresses", vips);
		json_object_set_new(j, "service", jstr(fe->service));
		json_object_set_new(j, "virtualService", jstr(fe->vs));
		json_object_set_new(j, "datapath",
				    json_string(fe->gateway ? "gateway" : fe->shim ? "shim" : "kernel"));
		for (size_t r = 0; r < sizeof(reasons) / sizeof(reasons[0]); r++)
			if (fe->shim & reasons[r].bit)
				json_array_append_new(why, json_string(reasons[r].text));
		json_object_set_new(j, "shimReasons", why);
		for (uint32_t r = 0; r < fe->n_routes; r++) {
			const struct c_route *rt = &fe->routes[r];
			json_t *jr = json_object(), *dests = json_array();

			json_object_set_new(jr, "type", json_string(rt->type));
			json_object_set_new(jr, "index", json_integer(rt->index));
			json_object_set_new(jr, "name", jstr(rt->name));
			for (uint32_t d = 0; d < rt->n_dests; d++) {
				const struct c_dest *ds = &rt->dests[d];
				json_t *jd = json_object(), *eps = json_array();

				json_object_set_new(jd, "host", json_string(ds->host));
				json_object_set_new(jd, "subset", jstr(ds->subset));
				json_object_set_new(jd, "port",
						    ds->port ? json_integer(ds->port) : json_null());
				json_object_set_new(jd, "weight", json_integer(ds->weight));
				json_object_set_new(jd, "percent",
						    json_real(pct(ds->weight, rt->weight_total)));
				json_object_set_new(jd, "tls", jstr(ds->tls_mode));
				json_object_set_new(jd, "destinationRule", jstr(ds->dr));
				json_object_set_new(jd, "problem", jstr(ds->problem));
				for (uint32_t e = 0; e < ds->n_eps; e++) {
					const struct c_endpoint *ep = &ds->eps[e];
					json_t *je = json_object();

					json_object_set_new(je, "address", json_string(ep->address));
					json_object_set_new(je, "port", json_integer(ep->port));
					json_object_set_new(je, "cluster", jstr(ep->cluster));
					json_object_set_new(je, "resolved", json_boolean(ep->is_ip));
					json_object_set_new(je, "from", jstr(ep->origin));
					json_array_append_new(eps, je);
				}
				json_object_set_new(jd, "endpoints", eps);
				json_array_append_new(dests, jd);
			}
			json_object_set_new(jr, "destinations", dests);
			json_array_append_new(routes, jr);
		}
		json_object_set_new(j, "routes", routes);
		json_array_append_new(fes, j);
	}
	json_object_set_new(root, "frontends", fes);
	json_object_set_new(root, "image",
			    json_pack("{s:i, s:i, s:i}", "frontendKeys", (json_int_t)plan->img.n_fes,
				      "destinations", (json_int_t)plan->img.n_dests, "backends",
				      (json_int_t)plan->img.n_backends));
	err = json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', f);
	json_decref(root);
	return err ? -EIO : 0;
}
