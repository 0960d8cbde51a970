// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Istio's metric labels from what the shim knows: the plan's pods (by
 * address: workload, namespace, service account, app and version labels),
 * the destination host of the route, the peer certificate's SPIFFE ID, and
 * this agent's cluster. What it does not know is "unknown", as Istio's.
 */
#include <string.h>

#include "../policy/policy.h"
#include "shim_int.h"

/* Where one end's labels go: the source's or the destination's. */
struct end_ix {
	int wl, ns, pr, app, ver, csvc, crev, cl;
};

static const struct end_ix src_ix = { MT_SRC_WORKLOAD,	 MT_SRC_WORKLOAD_NS, MT_SRC_PRINCIPAL,
				      MT_SRC_APP,	 MT_SRC_VERSION,     MT_SRC_CANON_SVC,
				      MT_SRC_CANON_REV, MT_SRC_CLUSTER };
static const struct end_ix dst_ix = { MT_DST_WORKLOAD,	 MT_DST_WORKLOAD_NS, MT_DST_PRINCIPAL,
				      MT_DST_APP,	 MT_DST_VERSION,     MT_DST_CANON_SVC,
				      MT_DST_CANON_REV, MT_DST_CLUSTER };

/* The first of the labels named that the pod has. */
static const char *label_of(const struct c_pod *p, const char *a, const char *b, const char *c)
{
	const char *v = NULL;

	if (!p->labels)
		return NULL;
	if (a && !v)
		v = labels_get(p->labels, a);
	if (b && !v)
		v = labels_get(p->labels, b);
	if (c && !v)
		v = labels_get(p->labels, c);
	return v;
}

static void tel_pod(const struct shim *s, const struct c_pod *p, const struct end_ix *x,
		    struct mt_pack *pk)
{
	const char *v;

	mt_pack_set(pk, x->wl, p->workload);
	mt_pack_set(pk, x->ns, p->ns);
	mt_pack_setf(pk, x->pr, "spiffe://%s/ns/%s/sa/%s", s->ids.trust_domain, p->ns, p->sa);
	mt_pack_set(pk, x->app, label_of(p, "app", "app.kubernetes.io/name", NULL));
	mt_pack_set(pk, x->ver, label_of(p, "version", "app.kubernetes.io/version", NULL));
	v = label_of(p, "service.istio.io/canonical-name", "app.kubernetes.io/name", "app");
	mt_pack_set(pk, x->csvc, v ? v : p->workload);
	v = label_of(p, "service.istio.io/canonical-revision", "app.kubernetes.io/version",
		     "version");
	mt_pack_set(pk, x->crev, v ? v : "latest");
	mt_pack_set(pk, x->cl, s->o.cluster);
}

bool tel_source(const struct shim *s, const struct ks_addr *a, struct mt_pack *pk)
{
	const struct c_pod *p = s->plan ? plan_pod(s->plan, a) : NULL;

	if (!p)
		return false;
	tel_pod(s, p, &src_ix, pk);
	return true;
}

bool tel_dest_pod(const struct shim *s, const struct ks_addr *a, struct mt_pack *pk)
{
	const struct c_pod *p = s->plan ? plan_pod(s->plan, a) : NULL;

	if (!p)
		return false;
	tel_pod(s, p, &dst_ix, pk);
	return true;
}

/* spiffe://TD/ns/NS/sa/SA: the namespace a peer's certificate attests. */
void tel_principal(struct mt_pack *pk, bool source, const char *id)
{
	const char *ns = id ? strstr(id, "/ns/") : NULL;
	const char *end = ns ? strstr(ns + 4, "/sa/") : NULL;
	char v[MT_VALUE_MAX + 1];

	if (!id || !*id)
		return;
	mt_pack_set(pk, source ? MT_SRC_PRINCIPAL : MT_DST_PRINCIPAL, id);
	if (end && (size_t)(end - ns - 4) < sizeof(v)) {
		memcpy(v, ns + 4, (size_t)(end - ns - 4));
		v[end - ns - 4] = 0;
		mt_pack_set(pk, source ? MT_SRC_WORKLOAD_NS : MT_DST_WORKLOAD_NS, v);
	}
}

/*
 * destination_service is the host; a Kubernetes service's name and namespace
 * are its first two labels, any other host (a ServiceEntry's) is its own name
 * in the namespace that defines it.
 */
void tel_service(const struct shim *s, const char *host, uint16_t port, struct mt_pack *pk)
{
	const char *svc = host ? strstr(host, ".svc.") : NULL;
	const char *dot = host ? strchr(host, '.') : NULL;
	const struct c_target *t;
	char v[MT_VALUE_MAX + 1];

	if (!host)
		return;
	mt_pack_set(pk, MT_DST_SERVICE, host);
	if (svc && dot && dot < svc && (size_t)(svc - host) < sizeof(v)) {
		memcpy(v, host, (size_t)(dot - host));
		v[dot - host] = 0;
		mt_pack_set(pk, MT_DST_SERVICE_NAME, v);
		memcpy(v, dot + 1, (size_t)(svc - dot - 1));
		v[svc - dot - 1] = 0;
		mt_pack_set(pk, MT_DST_SERVICE_NS, v);
		return;
	}
	mt_pack_set(pk, MT_DST_SERVICE_NAME, host);
	t = s->plan ? plan_target(s->plan, host, port, NULL) : NULL;
	if (t && t->ns)
		mt_pack_set(pk, MT_DST_SERVICE_NS, t->ns);
}

void tel_status(struct mt_pack *pk, int status)
{
	mt_pack_setf(pk, MT_RESP_CODE, "%d", status);
}
