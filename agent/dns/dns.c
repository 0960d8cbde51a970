// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "dns.h"

#include <ctype.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A header-only error answer, for queries ldns cannot even parse. */
static enum dns_verdict bare_error(const uint8_t *q, size_t qlen, uint8_t rcode, uint8_t **out,
				   size_t *out_len)
{
	uint8_t *r;

	if (qlen < 12 || (q[2] & 0x80))
		return DNS_DROP; /* too short, or itself a response */
	r = calloc(1, 12);
	if (!r)
		return DNS_DROP;
	memcpy(r, q, 2);	     /* id */
	r[2] = 0x80 | (q[2] & 0x79); /* QR, opcode and RD as asked */
	r[3] = 0x80 | rcode;	     /* RA */
	*out = r;
	*out_len = 12;
	return DNS_REPLY;
}

unsigned dns_host_addrs(const struct plan *plan, const char *name, const struct ks_addr **v,
			unsigned cap, bool *known)
{
	unsigned n = 0;

	*known = false;
	for (uint32_t i = 0; plan && i < plan->n_fes; i++) {
		const struct c_frontend *fe = &plan->fes[i];

		if (fe->gateway || !fe->host || strcasecmp(fe->host, name))
			continue;
		*known = true;
		for (uint32_t k = 0; k < fe->n_vips; k++) {
			bool dup = false;

			for (unsigned j = 0; j < n; j++)
				dup |= !memcmp(v[j], &fe->vips[k].ka, sizeof(struct ks_addr));
			if (!dup && n < cap)
				v[n++] = &fe->vips[k].ka;
		}
	}
	return n;
}

static bool under(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n > s && name[n - s - 1] == '.' && !strcasecmp(name + n - s, suffix);
}

/* An answer to qp with its id, opcode, RD and question, no records yet. */
static ldns_pkt *reply_new(const ldns_pkt *qp, const ldns_rr *qr, ldns_pkt_rcode rcode)
{
	ldns_pkt *rp = ldns_pkt_new();
	ldns_rr *c = ldns_rr_clone(qr);

	if (!rp || !c) {
		ldns_pkt_free(rp);
		ldns_rr_free(c);
		return NULL;
	}
	ldns_pkt_set_id(rp, ldns_pkt_id(qp));
	ldns_pkt_set_qr(rp, true);
	ldns_pkt_set_rd(rp, ldns_pkt_rd(qp));
	ldns_pkt_set_cd(rp, ldns_pkt_cd(qp));
	ldns_pkt_set_ra(rp, true);
	ldns_pkt_set_opcode(rp, LDNS_PACKET_QUERY);
	ldns_pkt_push_rr(rp, LDNS_SECTION_QUESTION, c);
	ldns_pkt_set_rcode(rp, rcode);
	return rp;
}

/* Parses a query that is one QUERY with one question; NULL otherwise. */
static ldns_pkt *query_parse(const uint8_t *q, size_t qlen)
{
	ldns_pkt *qp = NULL;

	if (ldns_wire2pkt(&qp, q, qlen) != LDNS_STATUS_OK)
		return NULL;
	if (ldns_pkt_qr(qp) || ldns_pkt_get_opcode(qp) != LDNS_PACKET_QUERY ||
	    ldns_pkt_qdcount(qp) != 1 || !ldns_rr_list_rr(ldns_pkt_question(qp), 0)) {
		ldns_pkt_free(qp);
		return NULL;
	}
	return qp;
}

enum dns_verdict dns_error(const uint8_t *q, size_t qlen, uint8_t rcode, uint8_t **out,
			   size_t *out_len)
{
	ldns_pkt *qp = query_parse(q, qlen), *rp;
	enum dns_verdict v = DNS_DROP;

	if (!qp)
		return bare_error(q, qlen, rcode, out, out_len);
	rp = reply_new(qp, ldns_rr_list_rr(ldns_pkt_question(qp), 0), rcode);
	if (rp && ldns_pkt2wire(out, rp, out_len) == LDNS_STATUS_OK)
		v = DNS_REPLY;
	ldns_pkt_free(rp);
	ldns_pkt_free(qp);
	return v;
}

int dns_question_copy(const uint8_t *q, size_t qlen, uint8_t *out, size_t cap)
{
	ldns_pkt *qp = query_parse(q, qlen), *cp = NULL;
	ldns_rr *c = NULL;
	uint8_t *w = NULL;
	size_t wl = 0;
	int err = -EINVAL;

	if (!qp)
		return -EINVAL;
	cp = ldns_pkt_new();
	c = ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(qp), 0));
	if (!cp || !c) {
		ldns_rr_free(c);
		err = -ENOMEM;
		goto out;
	}
	ldns_pkt_set_id(cp, ldns_pkt_id(qp));
	ldns_pkt_set_rd(cp, ldns_pkt_rd(qp));
	ldns_pkt_set_cd(cp, ldns_pkt_cd(qp));
	ldns_pkt_set_opcode(cp, LDNS_PACKET_QUERY);
	ldns_pkt_push_rr(cp, LDNS_SECTION_QUESTION, c);
	if (ldns_pkt2wire(&w, cp, &wl) == LDNS_STATUS_OK && wl <= cap) {
		memcpy(out, w, wl);
		err = (int)wl;
	}
out:
	free(w);
	ldns_pkt_free(cp);
	ldns_pkt_free(qp);
	return err;
}

/* Wire-format names equal without ASCII case; label lengths (< 64) are below 'A'. */
static bool dname_eq(const ldns_rdf *a, const ldns_rdf *b)
{
	const uint8_t *x = ldns_rdf_data(a), *y = ldns_rdf_data(b);
	size_t n = ldns_rdf_size(a);

	if (n != ldns_rdf_size(b))
		return false;
	for (size_t i = 0; i < n; i++)
		if (tolower(x[i]) != tolower(y[i]))
			return false;
	return true;
}

bool dns_reply_matches(const uint8_t *q, size_t qlen, const uint8_t *r, size_t rlen)
{
	ldns_pkt *qp = NULL, *rp = NULL;
	const ldns_rr *a, *b;
	bool ok = false;

	if (qlen < 12 || rlen < 12 || memcmp(q, r, 2))
		return false; /* the ID first: most strays stop here, unparsed */
	qp = query_parse(q, qlen);
	if (!qp || ldns_wire2pkt(&rp, r, rlen) != LDNS_STATUS_OK)
		goto out;
	if (!ldns_pkt_qr(rp) || ldns_pkt_get_opcode(rp) != LDNS_PACKET_QUERY ||
	    ldns_pkt_qdcount(rp) != 1)
		goto out;
	a = ldns_rr_list_rr(ldns_pkt_question(qp), 0);
	b = ldns_rr_list_rr(ldns_pkt_question(rp), 0);
	ok = b && ldns_rr_get_type(a) == ldns_rr_get_type(b) &&
	     ldns_rr_get_class(a) == ldns_rr_get_class(b) &&
	     dname_eq(ldns_rr_owner(a), ldns_rr_owner(b));
out:
	ldns_pkt_free(qp);
	ldns_pkt_free(rp);
	return ok;
}

void dns_budget_init(struct dns_budget *b, uint32_t seed)
{
	memset(b, 0, sizeof(*b));
	b->seed = seed;
}

#define DNS_PROBES 8 /* slots a client address may take: its hash and the next ones */

static uint32_t addr_hash(uint32_t seed, const uint8_t a[16])
{
	uint32_t h = 2166136261u ^ seed; /* FNV-1a */

	for (int i = 0; i < 16; i++)
		h = (h ^ a[i]) * 16777619u;
	return h ^ (h >> 15);
}

struct dns_source *dns_source_get(struct dns_budget *b, const uint8_t addr[16], uint64_t now_ms)
{
	uint32_t h = addr_hash(b->seed, addr);
	struct dns_source *pick = NULL;

	for (unsigned i = 0; i < DNS_PROBES; i++) {
		struct dns_source *e = &b->src[(h + i) % DNS_SOURCES];

		if (e->used && !memcmp(e->addr, addr, 16))
			return e;
		/* a free slot, else the one idle longest without queries in flight */
		if (!e->used)
			pick = !pick || pick->used ? e : pick;
		else if (!e->pending && (!pick || (pick->used && e->last_ms < pick->last_ms)))
			pick = e;
	}
	if (!pick)
		return NULL;
	memset(pick, 0, sizeof(*pick));
	memcpy(pick->addr, addr, 16);
	pick->used = true;
	pick->tokens = DNS_SOURCE_BURST * 1000ull;
	pick->last_ms = now_ms;
	return pick;
}

bool dns_source_take(struct dns_source *src, uint64_t now_ms)
{
	if (now_ms > src->last_ms) {
		/* ms times queries per second: thousandths of a query */
		src->tokens += (now_ms - src->last_ms) * DNS_SOURCE_RATE;
		if (src->tokens > DNS_SOURCE_BURST * 1000ull)
			src->tokens = DNS_SOURCE_BURST * 1000ull;
		src->last_ms = now_ms;
	}
	if (src->tokens < 1000)
		return false;
	src->tokens -= 1000;
	return true;
}

enum dns_verdict dns_answer(const struct plan *plan, const uint8_t *q, size_t qlen, int forward_ok,
			    uint8_t **out, size_t *out_len)
{
	ldns_pkt *qp = NULL, *rp = NULL;
	const struct ks_addr *addrs[DNS_MAX_ADDRS];
	enum dns_verdict v = DNS_DROP;
	ldns_rr *qr;
	ldns_rr_type type;
	char *name = NULL;
	unsigned n;
	bool known;
	size_t len;

	if (ldns_wire2pkt(&qp, q, qlen) != LDNS_STATUS_OK)
		return bare_error(q, qlen, LDNS_RCODE_FORMERR, out, out_len);
	if (ldns_pkt_qr(qp) || ldns_pkt_get_opcode(qp) != LDNS_PACKET_QUERY ||
	    ldns_pkt_qdcount(qp) != 1) {
		v = ldns_pkt_qr(qp) ? DNS_DROP
				    : bare_error(q, qlen,
						 ldns_pkt_get_opcode(qp) != LDNS_PACKET_QUERY
						     ? LDNS_RCODE_NOTIMPL
						     : LDNS_RCODE_FORMERR,
						 out, out_len);
		goto out;
	}
	qr = ldns_rr_list_rr(ldns_pkt_question(qp), 0);
	type = ldns_rr_get_type(qr);
	name = ldns_rdf2str(ldns_rr_owner(qr));
	if (!name)
		goto out;
	len = strlen(name);
	if (len > 1 && name[len - 1] == '.')
		name[len - 1] = 0;
	n = dns_host_addrs(plan, name, addrs, DNS_MAX_ADDRS, &known);
	if (!known && !under(name, "cluster.local") && forward_ok) {
		v = DNS_FORWARD;
		goto out;
	}
	rp = reply_new(qp, qr, known ? LDNS_RCODE_NOERROR : LDNS_RCODE_NXDOMAIN);
	if (!rp)
		goto out;
	ldns_pkt_set_aa(rp, known);
	for (unsigned i = 0; known && ldns_rr_get_class(qr) == LDNS_RR_CLASS_IN && i < n; i++) {
		bool v4 = addr_is_v4(addrs[i]);
		ldns_rr *a;

		if ((type != LDNS_RR_TYPE_A || !v4) && (type != LDNS_RR_TYPE_AAAA || v4))
			continue;
		a = ldns_rr_new();
		if (!a)
			break;
		ldns_rr_set_owner(a, ldns_rdf_clone(ldns_rr_owner(qr)));
		ldns_rr_set_type(a, type);
		ldns_rr_set_class(a, LDNS_RR_CLASS_IN);
		ldns_rr_set_ttl(a, DNS_TTL);
		ldns_rr_push_rdf(
		    a, ldns_rdf_new_frm_data(v4 ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA, v4 ? 4 : 16,
					     (const uint8_t *)addrs[i] + (v4 ? 12 : 0)));
		ldns_pkt_push_rr(rp, LDNS_SECTION_ANSWER, a);
	}
	if (ldns_pkt2wire(out, rp, out_len) == LDNS_STATUS_OK)
		v = DNS_REPLY;
out:
	free(name);
	ldns_pkt_free(qp);
	ldns_pkt_free(rp);
	return v;
}
