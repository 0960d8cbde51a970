// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "dns.h"

#include <ctype.h>
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

/* Addresses of a mesh host: its frontends' VIPs, each once. Returns how many the host has. */
static unsigned host_addrs(const struct plan *plan, const char *name, const struct ks_addr **v,
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

enum dns_verdict dns_answer(const struct plan *plan, const uint8_t *q, size_t qlen, int forward_ok,
			    uint8_t **out, size_t *out_len)
{
	ldns_pkt *qp = NULL, *rp = NULL;
	const struct ks_addr *addrs[16];
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
	n = host_addrs(plan, name, addrs, 16, &known);
	if (!known && !under(name, "cluster.local") && forward_ok) {
		v = DNS_FORWARD;
		goto out;
	}
	rp = ldns_pkt_new();
	if (!rp)
		goto out;
	ldns_pkt_set_id(rp, ldns_pkt_id(qp));
	ldns_pkt_set_qr(rp, true);
	ldns_pkt_set_aa(rp, known);
	ldns_pkt_set_rd(rp, ldns_pkt_rd(qp));
	ldns_pkt_set_ra(rp, true);
	ldns_pkt_set_opcode(rp, LDNS_PACKET_QUERY);
	ldns_pkt_push_rr(rp, LDNS_SECTION_QUESTION, ldns_rr_clone(qr));
	/* a known name without an address of the asked family is NODATA, not NXDOMAIN */
	ldns_pkt_set_rcode(rp, known ? LDNS_RCODE_NOERROR : LDNS_RCODE_NXDOMAIN);
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
