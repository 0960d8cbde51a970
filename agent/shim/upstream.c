// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The plan to an upstream socket: endpoints, outlier detection, TLS origination (upstream.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "shim_int.h"
#include "upstream.h"

/* ---- outlier detection, as Envoy does it for Istio's DestinationRule ---- */

static unsigned health_slot(const struct shim *s, const struct ks_addr *a, uint16_t port)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p = (const unsigned char *)a;

	for (size_t i = 0; i < sizeof(*a); i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	h = (h ^ port) * 0x100000001b3ULL;
	return (unsigned)(h & (s->health_cap - 1));
}

/* An endpoint's record; created when asked (NULL when absent or out of memory). */
static struct ep_health *health_get(struct shim *s, const struct ks_addr *a, uint16_t port,
				    bool create)
{
	unsigned i;

	if (create && (s->health_n + 1) * 2 > s->health_cap) { /* grow, rehash */
		unsigned cap = s->health_cap ? s->health_cap * 2 : 64;
		struct ep_health *old = s->health, *nv = calloc(cap, sizeof(*nv));
		unsigned old_cap = s->health_cap;

		if (!nv)
			return NULL;
		s->health = nv;
		s->health_cap = cap;
		for (unsigned k = 0; k < old_cap; k++)
			if (old[k].used) {
				for (i = health_slot(s, &old[k].a, old[k].port); nv[i].used;
				     i = (i + 1) & (cap - 1))
					;
				nv[i] = old[k];
			}
		free(old);
	}
	if (!s->health_cap)
		return NULL;
	for (i = health_slot(s, a, port); s->health[i].used; i = (i + 1) & (s->health_cap - 1))
		if (s->health[i].port == port && !memcmp(&s->health[i].a, a, sizeof(*a)))
			return &s->health[i];
	if (!create)
		return NULL;
	s->health[i].used = true;
	s->health[i].a = *a;
	s->health[i].port = port;
	s->health_n++;
	return &s->health[i];
}

static bool health_ejected(struct shim *s, const struct ks_addr *a, uint16_t port, uint64_t now)
{
	const struct ep_health *h = health_get(s, a, port, false);

	return h && h->ejected_until > now;
}

/*
 * The answer of the endpoint this request last went to: a 5xx (502, 503 and
 * 504 are gateway errors, as a failed connect, reset or timeout is) counts
 * towards its ejection, anything else clears its count. Ejected for
 * baseEjectionTime times the ejections so far (at most 300 s more).
 */
/*
 * The answer of endpoint e: a 5xx (502, 503 and 504 are gateway errors, as a
 * failed connect, reset or timeout is) counts towards its ejection, anything
 * else clears its count. Ejected for baseEjectionTime times the ejections so
 * far (at most 300 s more).
 */
void up_health_result(struct shim *s, const struct c_outlier *od, const struct up_ep *e,
		      int status)
{
	bool err5 = status >= 500, gw = status == 502 || status == 503 || status == 504;
	struct ep_health *h;
	uint64_t t;

	if (!od->on)
		return;
	h = health_get(s, &e->addr, e->port, err5);
	if (!h)
		return;
	if (!err5) {
		h->errors = h->gw_errors = 0;
		return;
	}
	h->errors++;
	h->gw_errors = gw ? h->gw_errors + 1 : 0;
	if ((od->max_5xx && h->errors >= od->max_5xx) || (od->max_gw && h->gw_errors >= od->max_gw)) {
		char a[INET6_ADDRSTRLEN];

		h->ejections++;
		t = od->base_ms * h->ejections;
		if (t > od->base_ms + 300000)
			t = od->base_ms + 300000;
		h->ejected_until = now_ms() + t;
		h->errors = h->gw_errors = 0;
		s->st.ejections++;
		pr_info("outlier: %s:%u ejected for %lu ms (%u in a row answered %d)\n",
			addr_str(&e->addr, a, sizeof(a)), e->port, (unsigned long)t,
			od->max_gw && !od->max_5xx ? od->max_gw : od->max_5xx, status);
	}
}

void up_health_free(struct shim *s)
{
	free(s->health);
	s->health = NULL;
	s->health_cap = s->health_n = 0;
}

/*
 * Mutual TLS to a pod of this node would reach our own inbound side: it is
 * skipped and the pod gets its bytes as the inbound would give them, after
 * the checks both ends would make (the server's identity against the rule;
 * the client's is ours to know). 0, or -1 with rule->why set.
 */
int shim_same_node_check(const struct shim *s, struct peer_rule *rule, const struct ks_addr *pod_addr)
{
	const struct c_pod *pod = plan_pod(s->plan, pod_addr);
	char spiffe[300];

	if (!pod) {
		snprintf(rule->why, sizeof(rule->why), "not a pod of this node");
		return -1;
	}
	snprintf(spiffe, sizeof(spiffe), "spiffe://%s/ns/%s/sa/%s", s->ids.trust_domain, pod->ns,
		 pod->sa);
	return peer_rule_check(rule, spiffe);
}

uint64_t up_rule_hash(const struct peer_rule *r)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (unsigned i = 0; i < r->n_sans; i++)
		for (const char *p = r->sans[i];; p++) {
			h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
			if (!*p)
				break;
		}
	return h;
}

/*
 * Connects sd towards a mesh endpoint: through its node's inbound port, a
 * PROXY v2 header naming it (and the client src) first, when mutual TLS goes
 * to a pod of another node; else directly (a gateway, a plain or same-node
 * pod). 0, or -errno.
 */
static int connect_ep(const struct shim *s, struct side *sd, const struct c_endpoint *e,
		    bool via_node, const struct ks_addr *src, uint16_t sport)
{
	unsigned char pp[64];
	size_t n;
	int err;

	if (!via_node || !e->has_node)
		return side_connect(sd, &e->ka, e->port, s->o.mark);
	n = proxy_v2_build(pp, src, sport, &e->ka, e->port);
	err = side_connect(sd, &e->node, s->o.in_port, s->o.mark);
	if (!err)
		buf_put(&sd->out, pp, n);
	return err;
}

void shim_sni(const struct shim *s, const struct c_dest *d, char *out, size_t len)
{
	const char *h = d->host;
	size_t hl = strlen(h);

	if (s->o.sni_local && hl > 7 && !strcmp(h + hl - 7, ".global"))
		snprintf(out, len, "outbound_.%u_.%s_.%.*s.svc.cluster.local", d->port,
			 d->subset ? d->subset : "", (int)(hl - 7), h);
	else
		snprintf(out, len, "outbound_.%u_.%s_.%s", d->port, d->subset ? d->subset : "", h);
}

const char *up_target_make(struct shim *s, const struct c_dest *d, const struct ks_addr *client,
			   uint32_t draw, struct up_target *t)
{
	const struct c_pod *me = NULL;
	uint32_t may_skip = 0, n_ip = 0;
	uint64_t now = now_ms();

	memset(t, 0, sizeof(*t));
	if (!d || !d->n_eps)
		return d && d->problem ? d->problem : "no healthy upstream";
	if (d->tls == C_TLS_OTHER)
		return "only ISTIO_MUTUAL and DISABLE TLS modes are originated by this shim";
	t->tls = d->tls == C_TLS_ISTIO_MUTUAL;
	if (t->tls) {
		me = plan_pod(s->plan, client);
		if (!me)
			return "the client is not a known pod: no workload identity for mTLS";
		if (!s->ids.have_ca)
			return "ISTIO_MUTUAL needs a CA: the agent runs without --ca";
		snprintf(t->id_ns, sizeof(t->id_ns), "%s", me->ns);
		snprintf(t->id_sa, sizeof(t->id_sa), "%s", me->sa);
		shim_sni(s, d, t->sni, sizeof(t->sni));
		t->rule.trust_domain = s->ids.trust_domain;
		for (uint32_t k = 0; d->tls_sans && k < d->tls_sans->n && k < PEER_MAX_SANS; k++)
			snprintf(t->rule.sans[t->rule.n_sans++], sizeof(t->rule.sans[0]), "%s",
				 d->tls_sans->v[k]);
	}
	t->od = d->od;
	if (t->od.on) {
		for (uint32_t k = 0; k < d->n_eps; k++)
			n_ip += d->eps[k].is_ip;
		may_skip = n_ip * t->od.max_pct / 100;
		if (!may_skip)
			may_skip = 1;
	}
	for (uint32_t k = 0; k < d->n_eps && t->n_eps < UP_MAX_EPS; k++) {
		const struct c_endpoint *e = &d->eps[(draw + k) % d->n_eps];
		struct up_ep *u = &t->eps[t->n_eps];

		if (!e->is_ip)
			continue;
		if (may_skip && health_ejected(s, &e->ka, e->port, now)) {
			may_skip--;
			continue;
		}
		u->addr = e->ka;
		u->port = e->port;
		u->has_node = e->has_node;
		u->node = e->node;
		u->same_node = me && me->has_node && e->has_node && s->o.inbound &&
			       !memcmp(&me->node, &e->node, sizeof(e->node));
		t->n_eps++;
	}
	if (!t->n_eps)
		return t->od.on ? "no healthy upstream: every endpoint ejected by outlier detection"
				: "no endpoint with an address";
	return NULL;
}

int up_target_connect(struct shim *s, struct up_target *t, unsigned i, const struct ks_addr *src,
		      uint16_t sport, struct side *sd, uint64_t *id_gen, const unsigned char *alpn,
		      unsigned alpn_len)
{
	const struct up_ep *e = &t->eps[i];
	const struct ids_entry *id = NULL;
	struct c_endpoint ce = {.ka = e->addr, .port = e->port, .has_node = e->has_node,
				.node = e->node};
	int err;

	*id_gen = 0;
	side_init(sd, -1); /* nothing open yet: the caller may close sd whatever happens */
	if (t->tls && e->same_node) {
		if (shim_same_node_check(s, &t->rule, &e->addr))
			return -EACCES;
	} else if (t->tls) {
		id = ids_get(&s->ids, t->id_ns, t->id_sa);
		if (!id)
			return -ENOKEY;
		*id_gen = id->gen;
	}
	err = connect_ep(s, sd, &ce, up_target_tls(t, i), src, sport);
	if (err)
		return err;
	s->st.same_node += t->tls && e->same_node;
	if (!up_target_tls(t, i))
		return 0;
	if (side_tls(sd, id->client, true, t->sni, NULL, 0) ||
	    (alpn && SSL_set_alpn_protos(sd->ssl, alpn, alpn_len)))
		return -ENOMEM; /* the caller closes sd */
	sd->rule = t->rule;
	return 0;
}
