// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "compile.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../bpf/lib/route.h"
#include "../lib/strmap.h"
#include "../policy/decode.h"

/* ---- the service registry: every host with its ports, VIPs and workloads ---- */

struct c_port {
	uint16_t number, target;
	const char *name, *protocol, *target_name;
};

struct c_wl {
	const char *address;
	const struct kvs *labels;
	const struct kvs *portmap; /* ServiceEntry endpoint / WorkloadEntry named ports */
	const struct pod_spec *pod; /* for named targetPorts */
	const char *network, *sa, *origin, *ns, *host_ip;
	uint32_t weight;
};

struct c_service {
	const char *host, *ns, *origin, *resolution;
	struct c_port *ports;
	uint32_t n_ports, cap_ports;
	struct c_vip *vips;
	uint32_t n_vips, cap_vips;
	struct c_wl *wls;
	uint32_t n_wls, cap_wls;
	const struct resource *res;
};

struct list {
	const void *item;
	struct list *next;
};

struct cctx {
	struct plan *plan;
	struct policy *p;
	struct diag *diag;
	struct arena *a;
	struct strmap services; /* host -> struct c_service */
	struct strmap by_label; /* "ns\0k=v" -> list of workload resources */
	struct strmap pods; /* "ns/name" -> Pod resource */
	struct c_service **svc_list;
	uint32_t n_svcs, cap_svcs;
	uint32_t kstart[K_KIND_MAX], kend[K_KIND_MAX]; /* the batch is sorted by kind */
	int failed;
};

/* Every resource of kind k, in identity order. */
#define FOR_KIND(c, k, i) for (uint32_t i = (c)->kstart[k]; i < (c)->kend[k]; i++)

static void *grow(struct arena *a, void *v, uint32_t n, uint32_t *cap, size_t sz)
{
	void *nv;

	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 4;
	nv = arena_array(a, *cap, sz);
	if (n)
		memcpy(nv, v, n * sz);
	return nv;
}
#define PUSH(a, arr, n, cap) ((arr) = grow((a), (arr), (n), &(cap), sizeof(*(arr))), &(arr)[(n)++])

static void vwarn(struct cctx *c, const struct resource *r, struct pos pos, const char *path,
		  const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	diag_add(c->diag, DIAG_WARN, r->file, pos.line, pos.col, "%s %s/%s: %s%s%s",
		 kind_name(r->kind), r->ns, r->name, path, *path ? ": " : "", msg);
}

static void __attribute__((format(printf, 4, 5)))
warn_at(struct cctx *c, const struct resource *r, const struct obj *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(c, r, o->pos, o->path, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 5, 6)))
warn_pos(struct cctx *c, const struct resource *r, struct pos pos, const char *path,
	 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(c, r, pos, path, fmt, ap);
	va_end(ap);
}

int addr_parse(const char *s, struct ks_addr *out)
{
	struct in_addr v4;
	struct in6_addr v6;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, &v4) == 1) {
		out->a[2] = htonl(0xffff);
		out->a[3] = v4.s_addr;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &v6) == 1) {
		memcpy(out->a, &v6, 16);
		return 0;
	}
	return -EINVAL;
}

bool addr_is_v4(const struct ks_addr *a)
{
	return !a->a[0] && !a->a[1] && a->a[2] == htonl(0xffff);
}

const char *addr_str(const struct ks_addr *a, char *buf, size_t len)
{
	if (addr_is_v4(a))
		inet_ntop(AF_INET, &a->a[3], buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a->a, buf, (socklen_t)len);
	return buf;
}

static const char *port_protocol(const char *proto, const char *app_proto, const char *name)
{
	static const char *const known[] = { "http2", "https", "http", "grpc-web", "grpc", "tcp",
					     "tls",   "mongo", "redis", "mysql", "udp", NULL };

	if (proto && *proto && strcasecmp(proto, "TCP"))
		return proto; /* ServiceEntry protocol, or Kubernetes UDP/SCTP */
	if (app_proto && *app_proto)
		return app_proto;
	for (const char *const *k = known; name && *k; k++) {
		size_t l = strlen(*k);

		if (!strncasecmp(name, *k, l) && (name[l] == 0 || name[l] == '-'))
			return *k; /* Istio's port naming convention: <protocol>[-<suffix>] */
	}
	if (proto && !strcasecmp(proto, "TCP") && !name)
		return "tcp";
	return "auto"; /* Istio sniffs the protocol */
}

static const char *lower(struct arena *a, const char *s)
{
	char *l = arena_strdup(a, s);

	for (char *p = l; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return l;
}

static bool proto_is_http(const char *p)
{
	return !strcasecmp(p, "http") || !strcasecmp(p, "http2") || !strcasecmp(p, "grpc") ||
	       !strcasecmp(p, "grpc-web") || !strcasecmp(p, "auto");
}

static bool proto_is_tls(const char *p)
{
	return !strcasecmp(p, "https") || !strcasecmp(p, "tls");
}

static struct c_service *service_get(struct cctx *c, const char *host, const struct resource *r,
				     const char *origin)
{
	void **slot = strmap_slot(&c->services, c->a, host);
	struct c_service *s = *slot;

	if (s) {
		if (s->res != r)
			warn_at(c, r, &r->o,
				"host %s is already defined by %s: this definition is ignored", host,
				s->origin);
		return NULL;
	}
	s = arena_alloc(c->a, sizeof(*s));
	s->host = host;
	s->ns = r->ns;
	s->origin = origin;
	s->res = r;
	*slot = s;
	*PUSH(c->a, c->svc_list, c->n_svcs, c->cap_svcs) = s;
	return s;
}

static void service_add_vip(struct cctx *c, struct c_service *s, const char *ip)
{
	struct c_vip *v;
	struct ks_addr ka;

	if (addr_parse(ip, &ka))
		return;
	for (uint32_t i = 0; i < s->n_vips; i++)
		if (!memcmp(&s->vips[i].ka, &ka, sizeof(ka)))
			return;
	v = PUSH(c->a, s->vips, s->n_vips, s->cap_vips);
	v->text = ip;
	v->ka = ka;
}

static const char *label_key(struct cctx *c, const char *ns, const char *k, const char *v)
{
	return arena_printf(c->a, "%s\x01%s=%s", ns, k, v ? v : "");
}

static void index_workload(struct cctx *c, const struct resource *r, const struct kvs *labels)
{
	for (uint32_t i = 0; i < labels->n; i++) {
		void **slot = strmap_slot(&c->by_label,
					  c->a, label_key(c, r->ns, labels->v[i].k, labels->v[i].v));
		struct list *l = arena_alloc(c->a, sizeof(*l));

		l->item = r;
		l->next = *slot;
		*slot = l;
	}
}

static const struct kvs no_labels;

static const struct kvs *res_labels(const struct resource *r)
{
	if (r->kind == K_WORKLOAD_ENTRY)
		return &((const struct workload_entry *)r->spec)->labels;
	if (r->kind == K_DEPLOYMENT) {
		const struct deployment_spec *d = r->spec;

		return d && d->template && d->template->metadata ? &d->template->metadata->labels
								 : &no_labels;
	}
	return r->metadata ? &r->metadata->labels : &no_labels;
}

/* A pod's service account as Kubernetes reads it: an empty name is no name. */
static const char *pod_sa(const struct pod_spec *ps)
{
	if (ps && ps->serviceAccountName && *ps->serviceAccountName)
		return ps->serviceAccountName;
	if (ps && ps->serviceAccount && *ps->serviceAccount)
		return ps->serviceAccount;
	return NULL;
}

static void add_workload(struct cctx *c, struct c_service *s, const struct resource *r)
{
	struct c_wl *w = PUSH(c->a, s->wls, s->n_wls, s->cap_wls);

	w->labels = res_labels(r);
	w->origin = arena_printf(c->a, "%s %s/%s", kind_name(r->kind), r->ns, r->name);
	w->ns = r->ns;
	w->weight = 1;
	if (r->kind == K_DEPLOYMENT) {
		const struct deployment_spec *d = r->spec;

		/* replicas without addresses yet: counted, never routed to */
		w->weight = d && obj_has(&d->o, "replicas") ? (uint32_t)d->replicas : 1;
		w->pod = d && d->template ? d->template->spec : NULL;
	} else if (r->kind == K_POD) {
		w->address = r->status ? r->status->podIP : NULL;
		w->host_ip = r->status ? r->status->hostIP : NULL;
		w->pod = r->spec;
		w->sa = pod_sa(w->pod);
	} else {
		const struct workload_entry *we = r->spec;

		w->address = we->address;
		w->portmap = &we->ports;
		w->network = we->network;
		w->sa = we->serviceAccount;
		if (obj_has(&we->o, "weight"))
			w->weight = (uint32_t)we->weight;
	}
}

/* Workloads in ns whose labels the selector selects, in identity order. */
static void select_workloads(struct cctx *c, struct c_service *s, const char *ns,
			     const struct kvs *sel, bool pods, bool wes)
{
	const struct list *l;
	const struct resource **cand;
	uint32_t n = 0;

	if (!sel->n)
		return; /* Kubernetes: a Service without a selector selects nothing */
	/* candidates share the selector's first label; the index lists them newest first */
	l = strmap_get(&c->by_label, label_key(c, ns, sel->v[0].k, sel->v[0].v));
	for (const struct list *x = l; x; x = x->next)
		n++;
	cand = arena_array(c->a, n ? n : 1, sizeof(*cand));
	for (uint32_t i = n; l; l = l->next)
		cand[--i] = l->item;
	for (uint32_t i = 0; i < n; i++) {
		const struct resource *r = cand[i];

		if (!((pods && (r->kind == K_POD || r->kind == K_DEPLOYMENT)) ||
		      (wes && r->kind == K_WORKLOAD_ENTRY)))
			continue;
		if (labels_match(sel, res_labels(r)))
			add_workload(c, s, r);
	}
}

static void registry_build(struct cctx *c)
{
	struct policy *p = c->p;

	for (uint32_t i = 0; i < p->n; i++) {
		const struct resource *r = p->res[i];

		if (r->kind == K_POD || r->kind == K_WORKLOAD_ENTRY || r->kind == K_DEPLOYMENT)
			index_workload(c, r, res_labels(r));
		if (r->kind == K_POD)
			*strmap_slot(&c->pods, c->a, arena_printf(c->a, "%s/%s", r->ns, r->name)) =
				(void *)r;
	}
	for (uint32_t i = 0; i < p->n; i++) {
		const struct resource *r = p->res[i];
		struct c_service *s;

		if (r->kind == K_SERVICE && r->spec) {
			const struct k8s_service *ks = r->spec;
			bool eps = false;

			s = service_get(c, host_fqdn(c->a, r->name, r->ns), r,
					arena_printf(c->a, "Service %s/%s", r->ns, r->name));
			if (!s)
				continue;
			s->resolution = "k8s";
			if (ks->clusterIP)
				service_add_vip(c, s, ks->clusterIP);
			for (uint32_t j = 0; j < ks->clusterIPs.n; j++)
				service_add_vip(c, s, ks->clusterIPs.v[j]);
			for (uint32_t j = 0; j < ks->ports.n; j++) {
				const struct svc_port *sp = &ks->ports.v[j];
				struct c_port *cp = PUSH(c->a, s->ports, s->n_ports, s->cap_ports);
				char *end;
				long t;

				cp->number = (uint16_t)sp->port;
				cp->name = sp->name;
				cp->protocol =
					lower(c->a, port_protocol(sp->protocol, sp->appProtocol, sp->name));
				if (sp->targetPort) {
					t = strtol(sp->targetPort, &end, 10);
					if (!*end)
						cp->target = (uint16_t)t;
					else
						cp->target_name = sp->targetPort;
				}
			}
			/* explicit EndpointSlices win over the selector, as for selector-less Services */
			FOR_KIND(c, K_ENDPOINT_SLICE, j) {
				const struct resource *e = p->res[j];
				const char *owner;

				if (strcmp(e->ns, r->ns) || !e->metadata)
					continue;
				owner = labels_get(&e->metadata->labels, "kubernetes.io/service-name");
				if (!owner || strcmp(owner, r->name))
					continue;
				eps = true;
				for (uint32_t k = 0; k < e->endpoints.n; k++) {
					const struct eps_endpoint *ep = &e->endpoints.v[k];

					if (ep->conditions && obj_has(&ep->conditions->o, "ready") &&
					    !ep->conditions->ready)
						continue;
					for (uint32_t m = 0; m < ep->addresses.n; m++) {
						struct c_wl *w = PUSH(c->a, s->wls, s->n_wls, s->cap_wls);

						w->address = ep->addresses.v[m];
						w->labels = &no_labels;
						w->weight = 1;
						w->origin = arena_printf(c->a, "EndpointSlice %s/%s",
									 e->ns, e->name);
						if (ep->targetRef && ep->targetRef->name) {
							const struct resource *pod = strmap_get(
								&c->pods,
								arena_printf(c->a, "%s/%s", e->ns,
									     ep->targetRef->name));

							/*
							 * the pod's labels (subsets), node (its
							 * inbound side) and service account
							 * (its identity), as for a selected pod
							 */
							if (pod) {
								w->labels = res_labels(pod);
								w->ns = pod->ns;
								w->host_ip = pod->status
										     ? pod->status->hostIP
										     : NULL;
								w->sa = pod_sa(pod->spec);
							}
						}
					}
				}
			}
			if (!eps)
				select_workloads(c, s, r->ns, &ks->selector, true, false);
		} else if (r->kind == K_SERVICE_ENTRY) {
			const struct service_entry *se = r->spec;

			for (uint32_t h = 0; h < se->hosts.n; h++) {
				s = service_get(c, host_fqdn(c->a, se->hosts.v[h], r->ns), r,
						arena_printf(c->a, "ServiceEntry %s/%s", r->ns,
							     r->name));
				if (!s)
					continue;
				s->resolution = se->resolution ? se->resolution : "NONE";
				for (uint32_t j = 0; j < se->addresses.n; j++) {
					const char *a = se->addresses.v[j];
					const char *slash = strchr(a, '/');

					if (slash && strcmp(slash, "/32") && strcmp(slash, "/128")) {
						warn_pos(c, r, se->addresses.pos[j],
							 arena_printf(c->a, "addresses[%u]", j),
							 "CIDR %s: subnet frontends are not compiled "
							 "yet, ignored",
							 a);
						continue;
					}
					service_add_vip(c, s,
							slash ? arena_strndup(c->a, a,
									      (size_t)(slash - a))
							      : a);
				}
				for (uint32_t j = 0; j < se->ports.n; j++) {
					const struct se_port *sp = &se->ports.v[j];
					struct c_port *cp =
						PUSH(c->a, s->ports, s->n_ports, s->cap_ports);

					cp->number = (uint16_t)sp->number;
					cp->target = (uint16_t)sp->targetPort;
					cp->name = sp->name;
					cp->protocol = sp->protocol ? lower(c->a, sp->protocol) : "auto";
				}
				for (uint32_t j = 0; j < se->endpoints.n; j++) {
					const struct workload_entry *e = &se->endpoints.v[j];
					struct c_wl *w = PUSH(c->a, s->wls, s->n_wls, s->cap_wls);

					w->address = e->address;
					w->labels = &e->labels;
					w->portmap = &e->ports;
					w->network = e->network;
					w->sa = e->serviceAccount;
					w->weight = obj_has(&e->o, "weight") ? (uint32_t)e->weight : 1;
					w->origin = arena_printf(c->a, "ServiceEntry %s/%s endpoints[%u]",
								 r->ns, r->name, j);
				}
				if (se->workloadSelector)
					select_workloads(c, s, r->ns, &se->workloadSelector->labels,
							 true, true);
				/* DNS without endpoints: the proxy resolves the host itself */
				if (!strncmp(s->resolution, "DNS", 3) && !se->endpoints.n &&
				    !se->workloadSelector && !strchr(s->host, '*')) {
					struct c_wl *w = PUSH(c->a, s->wls, s->n_wls, s->cap_wls);

					w->address = s->host;
					w->labels = &no_labels;
					w->weight = 1;
					w->origin = arena_printf(c->a, "ServiceEntry %s/%s host", r->ns,
								 r->name);
				}
				if (!strcmp(s->resolution, "NONE") && !se->endpoints.n &&
				    !se->workloadSelector)
					s->resolution = "NONE (original destination)";
			}
		}
	}
}

/* ---- DestinationRules ---- */

/* The DestinationRules in force for a host, merged as Istio merges them. */
struct c_dr {
	const char *name; /* "ns/name", or "ns/a+b" when several merged */
	const struct traffic_policy *tp;
	const struct subset **subsets;
	uint32_t n_subsets;
};

static int dr_score(struct cctx *c, const struct resource *r, const char *host,
		    const char *client_ns, const char **fqdn)
{
	const struct destination_rule *dr = r->spec;

	if (!dr->host)
		return -1;
	*fqdn = host_fqdn(c->a, dr->host, r->ns);
	if (!host_matches(*fqdn, host))
		return -1;
	/* Istio: the client's namespace first, exact hosts before wildcards */
	return (!strcasecmp(*fqdn, host) ? 2 : 0) + (!strcmp(r->ns, client_ns) ? 4 : 0);
}

static bool find_dr(struct cctx *c, const char *host, const char *client_ns, struct c_dr *out)
{
	const struct resource *best = NULL;
	const char *best_host = NULL, *h;
	int best_score = -1, score;
	uint32_t cap = 0;

	memset(out, 0, sizeof(*out));
	FOR_KIND(c, K_DESTINATION_RULE, i) {
		score = dr_score(c, c->p->res[i], host, client_ns, &h);
		if (score > best_score) {
			best = c->p->res[i];
			best_score = score;
			best_host = h;
		}
	}
	if (!best)
		return false;
	/*
	 * Rules for the same host in the same namespace merge in order: the first
	 * top-level policy wins, subsets are appended unless their name is taken.
	 */
	FOR_KIND(c, K_DESTINATION_RULE, i) {
		const struct resource *r = c->p->res[i];
		const struct destination_rule *dr = r->spec;

		if (strcmp(r->ns, best->ns) || dr_score(c, r, host, client_ns, &h) != best_score ||
		    strcasecmp(h, best_host))
			continue;
		out->name = out->name ? arena_printf(c->a, "%s+%s", out->name, r->name)
				      : arena_printf(c->a, "%s/%s", r->ns, r->name);
		if (!out->tp)
			out->tp = dr->trafficPolicy;
		for (uint32_t s = 0; s < dr->subsets.n; s++) {
			bool taken = false;

			for (uint32_t k = 0; k < out->n_subsets; k++)
				taken |= !strcmp(out->subsets[k]->name, dr->subsets.v[s].name);
			if (!taken)
				*PUSH(c->a, out->subsets, out->n_subsets, cap) = &dr->subsets.v[s];
		}
	}
	return true;
}

/* The port-level settings of a traffic policy for port, or NULL. */
static const struct port_traffic_policy *port_level(const struct traffic_policy *tp, uint16_t port)
{
	for (uint32_t i = 0; tp && i < tp->portLevelSettings.n; i++)
		if (tp->portLevelSettings.v[i].port &&
		    tp->portLevelSettings.v[i].port->number == port)
			return &tp->portLevelSettings.v[i];
	return NULL;
}

/* A setting for port: the port level's when it has one, else the policy's. */
static const struct client_tls *tls_of(const struct traffic_policy *tp, uint16_t port)
{
	const struct port_traffic_policy *pl = port_level(tp, port);

	return pl && pl->tls ? pl->tls : tp ? tp->tls : NULL;
}

static const struct outlier_detection *outlier_of(const struct traffic_policy *tp, uint16_t port)
{
	const struct port_traffic_policy *pl = port_level(tp, port);

	return pl && pl->outlierDetection ? pl->outlierDetection : tp ? tp->outlierDetection : NULL;
}

/* ---- destinations ---- */

static uint16_t endpoint_port(const struct c_wl *w, const struct c_port *p)
{
	if (w->portmap && p->name) {
		const char *v = labels_get(w->portmap, p->name);

		if (v)
			return (uint16_t)atoi(v);
	}
	if (p->target)
		return p->target;
	if (p->target_name && w->pod)
		for (uint32_t i = 0; i < w->pod->containers.n; i++)
			for (uint32_t j = 0; j < w->pod->containers.v[i].ports.n; j++) {
				const struct container_port *cp = &w->pod->containers.v[i].ports.v[j];

				if (cp->name && !strcmp(cp->name, p->target_name))
					return (uint16_t)cp->containerPort;
			}
	return p->number;
}

static void resolve_dest(struct cctx *c, const struct resource *vsr, struct c_dest *d,
			 const struct destination *dst, uint16_t fe_port)
{
	const char *ns = vsr ? vsr->ns : "default";
	const struct c_service *s = strmap_get(&c->services, d->host);
	struct c_dr dr;
	bool has_dr = find_dr(c, d->host, ns, &dr);
	const struct subset *sub = NULL;
	const struct c_port *port = NULL;
	const struct client_tls *tls;
	uint32_t cap_eps = 0, pending = 0;

	if (dst && dst->port)
		d->port = (uint16_t)dst->port->number;
	else if (s && s->n_ports == 1)
		d->port = s->ports[0].number;
	else
		d->port = fe_port;
	if (has_dr)
		d->dr = dr.name;
	if (d->subset) {
		for (uint32_t i = 0; i < dr.n_subsets; i++)
			if (!strcmp(dr.subsets[i]->name, d->subset))
				sub = dr.subsets[i];
		if (!sub) {
			d->problem = arena_printf(c->a, "subset %s is not defined for host %s",
						  d->subset, d->host);
			if (vsr && dst)
				warn_at(c, vsr, &dst->o,
					"subset \"%s\" not found in any DestinationRule for host %s: "
					"requests routed here get 503 no healthy upstream",
					d->subset, d->host);
		}
	}
	tls = sub ? tls_of(sub->trafficPolicy, d->port) : NULL;
	if (!tls && has_dr)
		tls = tls_of(dr.tp, d->port);
	d->tls_mode = tls && tls->mode ? tls->mode : NULL;
	d->tls_sans = tls ? &tls->subjectAltNames : NULL;
	d->outlier = sub ? outlier_of(sub->trafficPolicy, d->port) : NULL;
	if (!d->outlier && has_dr)
		d->outlier = outlier_of(dr.tp, d->port);
	if (!s) {
		if (!d->problem)
			d->problem = arena_printf(c->a, "no Service or ServiceEntry defines %s",
						  d->host);
		if (vsr && dst)
			warn_at(c, vsr, &dst->o,
				"host %s not found (no Service or ServiceEntry defines it in this "
				"batch)",
				d->host);
		return;
	}
	for (uint32_t i = 0; i < s->n_ports; i++)
		if (s->ports[i].number == d->port)
			port = &s->ports[i];
	if (!port) {
		if (!d->problem)
			d->problem = d->port ? arena_printf(c->a, "%s has no port %u", d->host,
							    d->port)
					     : arena_printf(c->a,
							    "%s has several ports: the route must "
							    "name one",
							    d->host);
		return;
	}
	if (d->problem)
		return;
	for (uint32_t i = 0; i < s->n_wls; i++) {
		const struct c_wl *w = &s->wls[i];
		struct c_endpoint *e;

		if (sub && !labels_match(&sub->labels, w->labels))
			continue;
		if (!w->address) {
			pending += w->weight;
			continue;
		}
		e = PUSH(c->a, d->eps, d->n_eps, cap_eps);
		e->address = w->address;
		e->is_ip = !addr_parse(w->address, &e->ka);
		e->port = endpoint_port(w, port);
		e->labels = w->labels;
		e->cluster = labels_get(w->labels, "topology.istio.io/cluster");
		if (!e->cluster)
			e->cluster = labels_get(w->labels, "cluster");
		e->network = w->network;
		e->service_account = w->sa;
		e->origin = w->origin;
		e->ns = w->ns;
		e->has_node = w->host_ip && !addr_parse(w->host_ip, &e->node);
		e->weight = w->weight;
	}
	if (!d->n_eps)
		d->problem = pending ? arena_printf(c->a, "%u matching pod(s) have no address yet",
						    pending)
				: sub ? arena_printf(c->a, "no workload of %s has labels of subset %s",
						     d->host, d->subset)
				      : arena_printf(c->a, "no workloads selected by %s", s->origin);
}

/* ---- routes ---- */

static bool match_applies(const struct http_match *m, const struct l4_match *l4, uint16_t port,
			  const char *gateway)
{
	const struct strs *gws = m ? &m->gateways : &l4->gateways;
	int64_t mport = m ? m->port : l4->port;

	if (mport && port && mport != port)
		return false;
	if (gws->n) {
		bool found = false;

		for (uint32_t i = 0; i < gws->n; i++)
			found |= !strcmp(gws->v[i], gateway ? gateway : "mesh") ||
				 (gateway && strchr(gateway, '/') &&
				  !strcmp(gws->v[i], strchr(gateway, '/') + 1));
		if (!found)
			return false;
	}
	return true;
}

/* A match on anything but port and gateways needs to see the request. */
static bool match_needs_l7(const struct http_match *m)
{
	return m->uri || m->scheme || m->method || m->authority || m->headers.n ||
	       m->queryParams.n || m->withoutHeaders.n || m->sourceLabels.n || m->sourceNamespace;
}

/* An http route's fields that need the shim, and whether the shim applies them yet. */
static const struct {
	const char *name;
	bool applied;
} http_features[] = {
	{ "timeout", true },	     { "retries", true },	 { "fault", true },
	{ "redirect", true },	     { "directResponse", true },  { "rewrite", true },
	{ "mirror", true },	     { "mirrors", true },	 { "mirrorPercentage", true },
	{ "mirrorPercent", false },  { "mirror_percent", false }, { "corsPolicy", true },
	{ "headers", true },	     { "delegate", false },
};

static bool route_has_l7_feature(const struct http_route *r)
{
	for (size_t i = 0; i < sizeof(http_features) / sizeof(http_features[0]); i++)
		if (obj_has(&r->o, http_features[i].name))
			return true;
	return false;
}

/* What the shim does not do yet is said, not silently dropped: the route works without it. */
static void warn_unapplied(struct cctx *c, const struct resource *vsr, const struct http_route *r)
{
	for (size_t i = 0; i < sizeof(http_features) / sizeof(http_features[0]); i++)
		if (!http_features[i].applied && obj_has(&r->o, http_features[i].name))
			warn_at(c, vsr, &r->o,
				"%s is not applied by ksteer yet: the route is taken without it",
				http_features[i].name);
	if (r->rewrite && obj_has(&r->rewrite->o, "uriRegexRewrite"))
		warn_at(c, vsr, &r->rewrite->o, "uriRegexRewrite is not applied by ksteer yet");
	if (r->fault && r->fault->abort &&
	    (r->fault->abort->grpcStatus || r->fault->abort->http2Error))
		warn_at(c, vsr, &r->fault->abort->o,
			"only httpStatus is applied (the shim speaks HTTP/1.1)");
	if (r->fault && r->fault->delay && obj_has(&r->fault->delay->o, "exponentialDelay"))
		warn_at(c, vsr, &r->fault->delay->o,
			"exponentialDelay is not applied (Envoy does not either)");
}

static void add_dests(struct cctx *c, const struct resource *vsr, struct c_route *cr,
		      const struct route_destination *rd, uint32_t n, uint16_t fe_port)
{
	cr->dests = arena_array(c->a, n, sizeof(*cr->dests));
	cr->n_dests = n;
	for (uint32_t i = 0; i < n; i++) {
		struct c_dest *d = &cr->dests[i];
		const struct destination *dst = rd[i].destination;

		d->host = host_fqdn(c->a, dst->host, vsr->ns);
		d->subset = dst->subset;
		d->weight = n == 1 ? 1 : (uint32_t)rd[i].weight; /* one destination gets all */
		d->src = &rd[i].o;
		cr->weight_total += d->weight;
		resolve_dest(c, vsr, d, dst, fe_port);
	}
}

/* mirror (with mirrorPercentage, default 100) and mirrors[], resolved as destinations. */
static void add_mirrors(struct cctx *c, const struct resource *vsr, struct c_route *cr,
			const struct http_route *hr, uint16_t fe_port)
{
	uint32_t n = (hr->mirror ? 1 : 0) + hr->mirrors.n, k = 0;

	if (!n)
		return;
	cr->mirrors = arena_array(c->a, n, sizeof(*cr->mirrors));
	cr->n_mirrors = n;
	for (uint32_t i = 0; i < n; i++) {
		const struct destination *dst =
		    hr->mirror && !i ? hr->mirror : hr->mirrors.v[i - (hr->mirror ? 1 : 0)].destination;
		const struct percent *pct = hr->mirror && !i
						? hr->mirrorPercentage
						: hr->mirrors.v[i - (hr->mirror ? 1 : 0)].percentage;
		struct c_mirror *m = &cr->mirrors[k++];

		m->d.host = host_fqdn(c->a, dst->host, vsr->ns);
		m->d.subset = dst->subset;
		m->d.weight = 1;
		m->percent = pct ? pct->value : 100.0;
		resolve_dest(c, vsr, &m->d, dst, fe_port);
	}
}

static void route_default(struct cctx *c, struct c_frontend *fe)
{
	struct c_route *r = arena_alloc(c->a, sizeof(*r));

	r->type = "default";
	r->index = -1;
	r->dests = arena_alloc(c->a, sizeof(*r->dests));
	r->n_dests = 1;
	r->dests[0].host = fe->host;
	r->dests[0].weight = 1;
	r->weight_total = 1;
	resolve_dest(c, NULL, &r->dests[0], NULL, fe->port);
	fe->routes = r;
	fe->n_routes = 1;
}

static void routes_build(struct cctx *c, struct c_frontend *fe, const struct resource *vsr)
{
	const struct virtual_service *vs = vsr ? vsr->spec : NULL;
	bool http = proto_is_http(fe->protocol) || (!fe->port && vs && vs->http.n);
	uint32_t cap = 0;

	fe->http = http;

	if (vs && http && vs->http.n) {
		for (uint32_t i = 0; i < vs->http.n; i++) {
			const struct http_route *hr = &vs->http.v[i];
			bool applies = !hr->match.n, l7 = false, all = !hr->match.n;
			struct c_route *cr;

			for (uint32_t j = 0; j < hr->match.n; j++)
				if (match_applies(&hr->match.v[j], NULL, fe->port, fe->gateway)) {
					applies = true;
					if (match_needs_l7(&hr->match.v[j]))
						l7 = true;
					else
						all = true;
				}
			if (!applies)
				continue;
			cr = PUSH(c->a, fe->routes, fe->n_routes, cap);
			cr->type = "http";
			cr->index = (int)i;
			cr->name = hr->name;
			cr->http = hr;
			if (hr->route.n)
				add_dests(c, vsr, cr, hr->route.v, hr->route.n, fe->port);
			add_mirrors(c, vsr, cr, hr, fe->port);
			if (l7)
				fe->shim |= SHIM_HTTP_MATCH;
			if (route_has_l7_feature(hr))
				fe->shim |= SHIM_HTTP_FEATURE;
			warn_unapplied(c, vsr, hr);
			for (uint32_t j = 0, pos = 0; j < cr->n_dests; j++)
				if (cr->dests[j].weight && ++pos > 1)
					fe->shim |= SHIM_HTTP_SPLIT;
			if (all) {
				if (i + 1 < vs->http.n)
					warn_at(c, vsr, &vs->http.v[i + 1].o,
						"unreachable on %s:%u: http[%u] before it matches every "
						"request",
						fe->host, fe->port, i);
				break;
			}
		}
	} else if (vs && proto_is_tls(fe->protocol) && vs->tls.n) {
		for (uint32_t i = 0; i < vs->tls.n; i++) {
			const struct l4_route *tr = &vs->tls.v[i];
			struct c_route *cr = PUSH(c->a, fe->routes, fe->n_routes, cap);

			cr->type = "tls";
			cr->index = (int)i;
			cr->l4 = tr;
			add_dests(c, vsr, cr, tr->route.v, tr->route.n, fe->port);
			fe->shim |= SHIM_SNI;
		}
	} else if (vs && vs->tcp.n) {
		for (uint32_t i = 0; i < vs->tcp.n; i++) {
			const struct l4_route *tr = &vs->tcp.v[i];
			bool applies = !tr->match.n;
			struct c_route *cr;

			for (uint32_t j = 0; j < tr->match.n; j++) {
				const struct l4_match *m = &tr->match.v[j];

				if (!match_applies(NULL, m, fe->port, fe->gateway))
					continue;
				if (m->sourceLabels.n || m->sourceNamespace)
					warn_at(c, vsr, &m->o,
						"sourceLabels/sourceNamespace are not evaluated by the "
						"kernel datapath yet: the match is taken as true");
				applies = true;
			}
			if (!applies)
				continue;
			cr = PUSH(c->a, fe->routes, fe->n_routes, cap);
			cr->type = "tcp";
			cr->index = (int)i;
			cr->l4 = tr;
			add_dests(c, vsr, cr, tr->route.v, tr->route.n, fe->port);
			break; /* the first applicable tcp route takes the connection */
		}
	}
	if (!fe->n_routes)
		route_default(c, fe);
	for (uint32_t i = 0; i < fe->n_routes; i++)
		for (uint32_t j = 0; j < fe->routes[i].n_dests; j++) {
			const char *m = fe->routes[i].dests[j].tls_mode;

			if (m && strcmp(m, "DISABLE"))
				fe->shim |= SHIM_TLS;
			if (fe->routes[i].dests[j].outlier && fe->http)
				fe->shim |= SHIM_OUTLIER;
		}
}

/* The mesh VirtualService for a host: exact hosts before wildcards, then by identity. */
static const struct resource *find_vs(struct cctx *c, const char *host, const char *gateway)
{
	const struct resource *best = NULL;
	int best_score = -1, count = 0;

	FOR_KIND(c, K_VIRTUAL_SERVICE, i) {
		const struct resource *r = c->p->res[i];
		const struct virtual_service *vs = r->spec;
		bool bound = false;

		if (!gateway)
			bound = !vs->gateways.n;
		for (uint32_t g = 0; g < vs->gateways.n; g++) {
			const char *gw = vs->gateways.v[g];

			if (!gateway)
				bound |= !strcmp(gw, "mesh");
			else if (strchr(gw, '/'))
				bound |= !strcmp(gw, gateway);
			else
				bound |= !strcmp(arena_printf(c->a, "%s/%s", r->ns, gw), gateway);
		}
		if (!bound)
			continue;
		for (uint32_t h = 0; h < vs->hosts.n; h++) {
			const char *vh = host_fqdn(c->a, vs->hosts.v[h], r->ns);
			int score;

			if (!host_matches(vh, host) && !(gateway && host_matches(host, vh)))
				continue;
			score = !strcasecmp(vh, host) ? 2 : 1;
			count++;
			if (score > best_score) {
				best = r;
				best_score = score;
			}
		}
	}
	if (count > 1 && !gateway)
		warn_at(c, best, &best->o,
			"several VirtualServices route host %s: this one is used (Istio does not "
			"merge them for sidecars)",
			host);
	return best;
}

static struct c_frontend *fe_new(struct cctx *c)
{
	struct plan *pl = c->plan;
	struct c_frontend *fe = PUSH(c->a, pl->fes, pl->n_fes, pl->cap_fes);

	memset(fe, 0, sizeof(*fe));
	return fe;
}

/*
 * Each frontend key's slot in ks_fe_slots: the first free one of the
 * KS_SLOT_PROBES from its home, in key order; KS_SLOT_NONE when its window
 * is full (it is then found through ks_frontends, and the key in its home
 * slot carries KS_SLOT_HOME_OF_OVERFLOW).
 */
static void slots_place(struct cctx *c, struct c_image *img)
{
	/* which key holds each slot, + 1 (0: free) */
	uint32_t *owner = arena_array(c->a, KS_SLOTS, sizeof(*owner));

	img->slots = arena_array(c->a, img->n_fes ? img->n_fes : 1, sizeof(*img->slots));
	img->n_overflow = 0;
	for (uint32_t i = 0; i < img->n_fes; i++) {
		const struct ks_frontend_key *k = &img->fe_keys[i];
		uint32_t home = ks_fe_slot_home(&k->addr, k->port, k->proto);

		img->slots[i] = KS_SLOT_NONE;
		for (uint32_t j = 0; j < KS_SLOT_PROBES; j++) {
			uint32_t at = (home + j) & (KS_SLOTS - 1);

			if (!owner[at]) {
				owner[at] = i + 1;
				img->slots[i] = at;
				break;
			}
		}
		if (img->slots[i] == KS_SLOT_NONE) {
			img->slots[owner[home] - 1] |= KS_SLOT_HOME_OF_OVERFLOW;
			img->n_overflow++;
		}
	}
}

static void frontends_build(struct cctx *c)
{
	/* Service ports */
	for (uint32_t i = 0; i < c->n_svcs; i++) {
		const struct c_service *s = c->svc_list[i];
		const struct resource *vsr = find_vs(c, s->host, NULL);

		for (uint32_t j = 0; j < s->n_ports; j++) {
			struct c_frontend *fe = fe_new(c);

			fe->host = s->host;
			fe->port = s->ports[j].number;
			fe->port_name = s->ports[j].name;
			fe->protocol = s->ports[j].protocol;
			fe->vips = s->vips;
			fe->n_vips = s->n_vips;
			fe->service = s->origin;
			if (vsr)
				fe->vs = arena_printf(c->a, "VirtualService %s/%s", vsr->ns, vsr->name);
			fe->passthrough = !vsr && !s->n_wls && !strncmp(s->resolution, "NONE", 4);
			routes_build(c, fe, vsr);
		}
	}
	/* VirtualService hosts that nothing defines yet, and Gateway-bound VirtualServices */
	FOR_KIND(c, K_VIRTUAL_SERVICE, i) {
		const struct resource *r = c->p->res[i];
		const struct virtual_service *vs = r->spec;
		bool mesh;

		mesh = !vs->gateways.n;
		for (uint32_t g = 0; g < vs->gateways.n; g++) {
			const char *gw = vs->gateways.v[g];
			struct c_frontend *fe;

			if (!strcmp(gw, "mesh")) {
				mesh = true;
				continue;
			}
			fe = fe_new(c);
			fe->gateway = strchr(gw, '/') ? gw : arena_printf(c->a, "%s/%s", r->ns, gw);
			fe->host = vs->hosts.n ? host_fqdn(c->a, vs->hosts.v[0], r->ns) : "*";
			for (uint32_t h = 1; h < vs->hosts.n; h++)
				fe->host = arena_printf(c->a, "%s, %s", fe->host,
							host_fqdn(c->a, vs->hosts.v[h], r->ns));
			fe->protocol = vs->http.n ? "http" : vs->tls.n ? "tls" : "tcp";
			fe->vs = arena_printf(c->a, "VirtualService %s/%s", r->ns, r->name);
			routes_build(c, fe, r);
			fe->shim = 0; /* gateway traffic is the gateway's to route */
		}
		for (uint32_t h = 0; mesh && h < vs->hosts.n; h++) {
			const char *host = host_fqdn(c->a, vs->hosts.v[h], r->ns);
			struct c_frontend *fe;

			if (strmap_get(&c->services, host) || strchr(host, '*') ||
			    find_vs(c, host, NULL) != r)
				continue;
			warn_pos(c, r, vs->hosts.pos[h], arena_printf(c->a, "hosts[%u]", h),
				 "%s: no Service or ServiceEntry defines this host in this batch: it "
				 "has no address to route from yet",
				 host);
			fe = fe_new(c);
			fe->host = host;
			fe->protocol = vs->http.n ? "http" : "tcp";
			fe->vs = arena_printf(c->a, "VirtualService %s/%s", r->ns, r->name);
			routes_build(c, fe, r);
		}
	}
}

/* ---- the image ---- */

static int image_build(struct cctx *c)
{
	struct plan *pl = c->plan;
	struct c_image *img = &pl->img;
	uint32_t n_keys = 0, n_dests = 0, n_be = 0, cap_keys = 0, cap_dests = 0, cap_be = 0,
		 cap_fes = 0;
	uint32_t id = 0;

	for (uint32_t i = 0; i < pl->n_fes; i++) {
		const struct c_frontend *fe = &pl->fes[i];
		const struct c_route *r = fe->n_routes ? &fe->routes[0] : NULL;
		struct ks_frontend val = { 0 };
		uint32_t cum = 0, backends = 0;

		if (fe->gateway || !fe->n_vips || !fe->port || fe->passthrough)
			continue;
		val.id = id++;
		if (fe->shim) {
			val.flags = KS_FE_SHIM | (fe->shim & SHIM_TLS ? KS_FE_TLS : 0);
		} else if (r) {
			if (r->n_dests > KS_MAX_DESTS) {
				diag_add(c->diag, DIAG_ERROR, NULL, 0, 0,
					 "%s:%u: route has %u destinations, the kernel datapath takes "
					 "at most %d",
					 fe->host, fe->port, r->n_dests, KS_MAX_DESTS);
				c->failed = 1;
				continue;
			}
			val.dest_first = n_dests;
			val.dest_count = r->n_dests;
			for (uint32_t j = 0; j < r->n_dests; j++) {
				const struct c_dest *d = &r->dests[j];
				struct ks_dest *kd = PUSH(c->a, img->dests, n_dests, cap_dests);
				uint32_t nb = 0;

				kd->backend_first = n_be;
				for (uint32_t k = 0; d->weight && k < d->n_eps; k++) {
					struct ks_backend *b;

					if (!d->eps[k].is_ip)
						continue; /* DNS names are resolved by the agent */
					b = PUSH(c->a, img->backends, n_be, cap_be);
					b->addr = d->eps[k].ka;
					b->port = htons(d->eps[k].port);
					b->weight = d->eps[k].weight;
					nb++;
				}
				kd->backend_count = nb;
				/* a destination without endpoints keeps its share: those connects fail */
				cum += d->weight;
				kd->weight_cum = cum;
				backends += nb;
			}
			val.weight_total = cum;
			if (!backends || !cum)
				val.flags |= KS_FE_NO_UPSTREAM;
		}
		for (uint32_t v = 0; v < fe->n_vips; v++) {
			struct ks_frontend_key *k = PUSH(c->a, img->fe_keys, n_keys, cap_keys);

			img->fes = grow(c->a, img->fes, n_keys - 1, &cap_fes, sizeof(*img->fes));
			img->fes[n_keys - 1] = val;
			k->addr = fe->vips[v].ka;
			k->port = htons(fe->port);
			k->proto = strcasecmp(fe->protocol, "udp") ? IPPROTO_TCP : IPPROTO_UDP;
		}
	}
	img->n_fes = n_keys;
	img->n_dests = n_dests;
	img->n_backends = n_be;
	slots_place(c, img);
	return c->failed ? -EINVAL : 0;
}

/* ---- pods and targets: for the shim, the gateway and the inbound side ---- */

/* The TCP containerPorts a pod declares: a PROXY header may name only these. */
static void pod_ports(struct cctx *c, struct c_pod *pod, const struct pod_spec *ps)
{
	uint32_t n = 0;

	for (uint32_t i = 0; ps && i < ps->containers.n; i++)
		n += ps->containers.v[i].ports.n;
	if (!n)
		return;
	pod->ports = arena_alloc(c->a, n * sizeof(*pod->ports));
	for (uint32_t i = 0; i < ps->containers.n; i++)
		for (uint32_t j = 0; j < ps->containers.v[i].ports.n; j++) {
			const struct container_port *cp = &ps->containers.v[i].ports.v[j];

			if (cp->containerPort < 1 || cp->containerPort > 65535 ||
			    (cp->protocol && strcmp(cp->protocol, "TCP")))
				continue;
			pod->ports[pod->n_ports++] = (uint16_t)cp->containerPort;
		}
}

/*
 * A pod's workload name as Istio derives it from its controller: a
 * ReplicaSet named DEPLOYMENT-HASH (HASH its pod-template-hash label) is
 * the Deployment's, a Job named CRONJOB-DIGITS the CronJob's, any other
 * owner its own name; a pod without an owner is its own workload.
 */
static const char *pod_workload(struct cctx *c, const struct resource *r)
{
	const struct object_ref *o;
	const char *hash;
	size_t n, hn;

	if (!r->metadata || !r->metadata->ownerReferences.n)
		return r->name;
	o = &r->metadata->ownerReferences.v[0];
	if (!o->name || !*o->name)
		return r->name;
	n = strlen(o->name);
	hash = labels_get(&r->metadata->labels, "pod-template-hash");
	hn = hash ? strlen(hash) : 0;
	if (o->kind && !strcmp(o->kind, "ReplicaSet") && hn && n > hn + 1 &&
	    o->name[n - hn - 1] == '-' && !strcmp(o->name + n - hn, hash))
		return arena_strndup(c->a, o->name, n - hn - 1);
	if (o->kind && !strcmp(o->kind, "Job")) {
		size_t d = n;

		while (d && o->name[d - 1] >= '0' && o->name[d - 1] <= '9')
			d--;
		if (d > 1 && d < n && o->name[d - 1] == '-')
			return arena_strndup(c->a, o->name, d - 1);
	}
	return o->name;
}

static void pods_build(struct cctx *c)
{
	struct plan *pl = c->plan;

	FOR_KIND(c, K_POD, i) {
		const struct resource *r = c->p->res[i];
		const struct pod_spec *ps = r->spec;
		struct c_pod *pod;

		if (!r->status || !r->status->podIP)
			continue;
		pod = PUSH(c->a, pl->pods, pl->n_pods, pl->cap_pods);
		memset(pod, 0, sizeof(*pod));
		pod->ns = r->ns;
		pod->name = r->name;
		pod->sa = pod_sa(ps) ? pod_sa(ps) : "default";
		pod->workload = pod_workload(c, r);
		pod->labels = r->metadata ? &r->metadata->labels : NULL;
		if (!addr_parse(r->status->podIP, &pod->addr[0]))
			pod->n_addr = 1;
		for (uint32_t k = 0; k < r->status->podIPs.n && pod->n_addr < 2; k++) {
			struct ks_addr ka;

			if (r->status->podIPs.v[k].ip && !addr_parse(r->status->podIPs.v[k].ip, &ka) &&
			    memcmp(&ka, &pod->addr[0], sizeof(ka)))
				pod->addr[pod->n_addr++] = ka;
		}
		pod->has_node = r->status->hostIP && !addr_parse(r->status->hostIP, &pod->node);
		pod->host_network = (ps && ps->hostNetwork) ||
				    (pod->has_node && !memcmp(&pod->node, &pod->addr[0], sizeof(pod->node)));
		pod_ports(c, pod, ps);
	}
}

static int cmp_target(const void *a, const void *b)
{
	const struct c_target *x = a, *y = b;
	int d = strcmp(x->host, y->host);

	if (d)
		return d;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return strcmp(x->subset ? x->subset : "", y->subset ? y->subset : "");
}

static void target_add(struct cctx *c, const char *host, const char *ns, uint16_t port,
		       const char *subset)
{
	struct plan *pl = c->plan;
	struct c_target *t = PUSH(c->a, pl->targets, pl->n_targets, pl->cap_targets);

	memset(t, 0, sizeof(*t));
	t->host = host;
	t->ns = ns;
	t->port = port;
	t->subset = subset;
	t->d.host = host;
	t->d.subset = subset;
	resolve_dest(c, NULL, &t->d, NULL, port);
	t->d.port = port;
}

/* Every service port, whole and per subset of its DestinationRule. */
static void targets_build(struct cctx *c)
{
	struct plan *pl = c->plan;

	for (uint32_t i = 0; i < c->n_svcs; i++) {
		const struct c_service *s = c->svc_list[i];
		struct c_dr dr;
		bool has_dr = find_dr(c, s->host, s->ns ? s->ns : "default", &dr);

		for (uint32_t j = 0; j < s->n_ports; j++) {
			target_add(c, s->host, s->ns, s->ports[j].number, NULL);
			for (uint32_t k = 0; has_dr && k < dr.n_subsets; k++)
				target_add(c, s->host, s->ns, s->ports[j].number,
					   dr.subsets[k]->name);
		}
	}
	if (pl->n_targets)
		qsort(pl->targets, pl->n_targets, sizeof(*pl->targets), cmp_target);
}

static int cmp_addr_ix(const void *x, const void *y)
{
	const struct c_addr_ix *a = x, *b = y;
	int c = memcmp(&a->a, &b->a, sizeof(a->a));

	if (!c)
		c = (int)a->port - (int)b->port;
	if (!c)
		c = (a->i > b->i) - (a->i < b->i);
	return c;
}

/* The first entry for (a, port) in a sorted index (the earliest in plan order), or -1. */
static int64_t ix_find(const struct c_addr_ix *v, uint32_t n, const struct ks_addr *a,
		       uint16_t port)
{
	struct c_addr_ix key = { .a = *a, .port = port, .i = 0 };
	uint32_t lo = 0, hi = n;

	while (lo < hi) { /* lower bound */
		uint32_t mid = lo + (hi - lo) / 2;

		if (cmp_addr_ix(&v[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && !memcmp(&v[lo].a, a, sizeof(*a)) && v[lo].port == port)
		return lo;
	return -1;
}

/* The plan's lookups by address: sorted once, searched per connection and request. */
static void index_build(struct cctx *c)
{
	struct plan *pl = c->plan;
	uint32_t n = 0;

	for (uint32_t i = 0; i < pl->n_fes; i++)
		n += pl->fes[i].gateway ? 0 : pl->fes[i].n_vips;
	pl->fe_ix = arena_alloc(c->a, (n ? n : 1) * sizeof(*pl->fe_ix));
	for (uint32_t i = 0; i < pl->n_fes; i++)
		for (uint32_t v = 0; !pl->fes[i].gateway && v < pl->fes[i].n_vips; v++)
			pl->fe_ix[pl->n_fe_ix++] = (struct c_addr_ix){
				.a = pl->fes[i].vips[v].ka, .port = pl->fes[i].port, .i = i };
	qsort(pl->fe_ix, pl->n_fe_ix, sizeof(*pl->fe_ix), cmp_addr_ix);
	n = 0;
	for (uint32_t i = 0; i < pl->n_pods; i++)
		n += pl->pods[i].n_addr;
	pl->pod_ix = arena_alloc(c->a, (n ? n : 1) * sizeof(*pl->pod_ix));
	for (uint32_t i = 0; i < pl->n_pods; i++)
		for (uint32_t k = 0; k < pl->pods[i].n_addr; k++)
			pl->pod_ix[pl->n_pod_ix++] =
			    (struct c_addr_ix){ .a = pl->pods[i].addr[k], .port = 0, .i = i };
	qsort(pl->pod_ix, pl->n_pod_ix, sizeof(*pl->pod_ix), cmp_addr_ix);
}

const struct c_pod *plan_pod(const struct plan *plan, const struct ks_addr *a)
{
	int64_t k = plan ? ix_find(plan->pod_ix, plan->n_pod_ix, a, 0) : -1;

	return k < 0 ? NULL : &plan->pods[plan->pod_ix[k].i];
}

const struct c_frontend *plan_frontend(const struct plan *plan, const struct ks_addr *a,
				       uint16_t port)
{
	int64_t k = plan && port ? ix_find(plan->fe_ix, plan->n_fe_ix, a, port) : -1;

	return k < 0 ? NULL : &plan->fes[plan->fe_ix[k].i];
}

const struct c_target *plan_target(const struct plan *plan, const char *host, uint16_t port,
				   const char *subset)
{
	struct c_target key = { .host = host, .port = port,
				.subset = subset && *subset ? subset : NULL };

	if (!plan || !plan->n_targets)
		return NULL;
	return bsearch(&key, plan->targets, plan->n_targets, sizeof(key), cmp_target);
}

static int cmp_fe(const void *a, const void *b)
{
	const struct c_frontend *x = a, *y = b;
	int c = (x->gateway != NULL) - (y->gateway != NULL);

	if (!c && x->gateway && y->gateway)
		c = strcmp(x->gateway, y->gateway);
	if (!c)
		c = strcmp(x->host, y->host);
	if (!c)
		c = (int)x->port - (int)y->port;
	if (!c && x->vs && y->vs)
		c = strcmp(x->vs, y->vs);
	return c;
}

/* ---- Istio's defaults, put into the plan so the data path reads no policy objects ---- */

static void dest_fill(struct c_dest *d)
{
	const struct outlier_detection *o = d->outlier;

	d->tls = !d->tls_mode			      ? C_TLS_NONE
		 : !strcmp(d->tls_mode, "DISABLE")      ? C_TLS_DISABLE
		 : !strcmp(d->tls_mode, "ISTIO_MUTUAL") ? C_TLS_ISTIO_MUTUAL
							: C_TLS_OTHER;
	memset(&d->od, 0, sizeof(d->od));
	if (!o)
		return;
	d->od.on = true;
	d->od.max_5xx = (uint32_t)(obj_has(&o->o, "consecutive5xxErrors") ? o->consecutive5xxErrors
				   : obj_has(&o->o, "consecutiveErrors")  ? o->consecutiveErrors
									  : 5);
	d->od.max_gw = (uint32_t)o->consecutiveGatewayErrors;
	d->od.base_ms = obj_has(&o->o, "baseEjectionTime") ? (uint64_t)o->baseEjectionTime : 30000;
	d->od.max_pct = obj_has(&o->o, "maxEjectionPercent") ? (uint32_t)o->maxEjectionPercent : 10;
}

/* percentage (0-100, fractions too), else the deprecated integer percent, else all. */
static double fault_pct(const struct obj *o, const struct percent *pct, int64_t percent)
{
	return pct ? pct->value : o && obj_has(o, "percent") ? (double)percent : 100.0;
}

static void http_fill(struct c_http *h, const struct http_route *hr)
{
	const struct http_retry *rt = hr ? hr->retries : NULL;
	const struct http_fault *f = hr ? hr->fault : NULL;
	char buf[256], *save = NULL;

	memset(h, 0, sizeof(*h));
	h->attempts = rt && obj_has(&rt->o, "attempts") ? (uint32_t)rt->attempts : 2;
	if (h->attempts > POLICY_MAX_RETRIES)
		h->attempts = POLICY_MAX_RETRIES;
	h->per_try_ms = rt && rt->perTryTimeout > 0 ? (uint64_t)rt->perTryTimeout : 0;
	h->timeout_ms = hr && hr->timeout > 0 ? (uint64_t)hr->timeout : 0;
	/* retryOn as Istio passes it to Envoy: "5xx", "gateway-error" and status codes retry
	 * answers; without it, 503. Connect failures and resets are always retried. */
	if (!rt || !rt->retryOn) {
		h->retry_codes[h->n_retry_codes++] = 503;
	} else {
		snprintf(buf, sizeof(buf), "%s", rt->retryOn);
		for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
			if (!strcmp(t, "5xx"))
				h->retry_5xx = true;
			else if (!strcmp(t, "gateway-error"))
				h->retry_gw = true;
			else if (atoi(t) >= 100 && atoi(t) <= 599 && h->n_retry_codes < 8)
				h->retry_codes[h->n_retry_codes++] = (uint16_t)atoi(t);
		}
	}
	if (f && f->delay && f->delay->fixedDelay > 0) {
		h->delay_ms = (uint64_t)f->delay->fixedDelay;
		h->delay_pct = fault_pct(&f->delay->o, f->delay->percentage, f->delay->percent);
	}
	if (f && f->abort && f->abort->httpStatus >= 200 && f->abort->httpStatus <= 599) {
		h->abort_status = (uint32_t)f->abort->httpStatus;
		h->abort_pct = fault_pct(&f->abort->o, f->abort->percentage, 0);
	}
}

static void defaults_fill(struct plan *plan)
{
	for (uint32_t i = 0; i < plan->n_fes; i++)
		for (uint32_t j = 0; j < plan->fes[i].n_routes; j++) {
			struct c_route *r = &plan->fes[i].routes[j];

			http_fill(&r->h, r->http);
			for (uint32_t k = 0; k < r->n_dests; k++)
				dest_fill(&r->dests[k]);
			for (uint32_t k = 0; k < r->n_mirrors; k++)
				dest_fill(&r->mirrors[k].d);
		}
	for (uint32_t i = 0; i < plan->n_targets; i++)
		dest_fill(&plan->targets[i].d);
}

int plan_compile(struct plan *plan, struct policy *p, struct diag *diag)
{
	struct cctx c = { .plan = plan, .p = p, .diag = diag, .a = &plan->a };

	memset(plan, 0, sizeof(*plan));
	c.a = &plan->a;
	plan->policy = p;
	/* policy_validate sorted the batch by kind: each kind is one range */
	for (uint32_t i = p->n; i-- > 0;) {
		c.kstart[p->res[i]->kind] = i;
		if (!c.kend[p->res[i]->kind])
			c.kend[p->res[i]->kind] = i + 1;
	}
	registry_build(&c);
	frontends_build(&c);
	pods_build(&c);
	targets_build(&c);
	if (plan->n_fes)
		qsort(plan->fes, plan->n_fes, sizeof(*plan->fes), cmp_fe);
	index_build(&c);
	defaults_fill(plan);
	return image_build(&c);
}

void plan_free(struct plan *plan)
{
	arena_free(&plan->a);
	memset(plan, 0, sizeof(*plan));
}

unsigned char *image_serialize(const struct c_image *img, size_t *len)
{
	size_t n = 16 + img->n_fes * (sizeof(struct ks_frontend_key) + sizeof(struct ks_frontend)) +
		   img->n_dests * sizeof(struct ks_dest) +
		   img->n_backends * sizeof(struct ks_backend) + img->n_fes * sizeof(uint32_t);
	unsigned char *buf = malloc(n), *p = buf;
	uint32_t hdr[4] = { KS_LAYOUT_VERSION, img->n_fes, img->n_dests, img->n_backends };

	if (!buf)
		return NULL;
	memcpy(p, hdr, sizeof(hdr));
	p += sizeof(hdr);
	for (uint32_t i = 0; i < img->n_fes; i++) {
		memcpy(p, &img->fe_keys[i], sizeof(img->fe_keys[i]));
		p += sizeof(img->fe_keys[i]);
		memcpy(p, &img->fes[i], sizeof(img->fes[i]));
		p += sizeof(img->fes[i]);
	}
	if (img->n_dests)
		memcpy(p, img->dests, img->n_dests * sizeof(*img->dests));
	p += img->n_dests * sizeof(*img->dests);
	if (img->n_backends)
		memcpy(p, img->backends, img->n_backends * sizeof(*img->backends));
	p += img->n_backends * sizeof(*img->backends);
	if (img->n_fes)
		memcpy(p, img->slots, img->n_fes * sizeof(uint32_t));
	*len = n;
	return buf;
}
