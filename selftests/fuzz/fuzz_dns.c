// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer: the mesh resolver without its sockets. First byte even: the rest is a query
 * a pod sent, answered from a compiled scenario; an answer must parse, keep the query's
 * ID and, for a well-formed query, match it as an upstream answer would have to. First
 * byte odd: a u16 length, a query, then an upstream's answer to check against it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "agent/compile/compile.h"
#include "agent/dns/dns.h"
#include "agent/policy/policy.h"

static const char scenario[] =
    "apiVersion: v1\nkind: Service\nmetadata: {name: helloworld, namespace: hello}\n"
    "spec:\n  clusterIP: 10.101.0.1\n  clusterIPs: [10.101.0.1, 'fd00:101::1']\n"
    "  ports: [{port: 5000, name: http}]\n  selector: {app: helloworld}\n"
    "---\napiVersion: networking.istio.io/v1alpha3\nkind: ServiceEntry\n"
    "metadata: {name: helloworld, namespace: hello}\nspec:\n  hosts: [helloworld.hello.global]\n"
    "  location: MESH_INTERNAL\n  ports: [{name: http1, number: 5000, protocol: http}]\n"
    "  resolution: DNS\n  addresses: [127.255.0.8]\n"
    "  endpoints: [{address: 172.30.2.1, labels: {cluster: cluster2}, ports: {http1: 15443}}]\n";

static const struct plan *plan_get(void)
{
	static struct diag diag;
	static struct policy p;
	static struct plan plan;
	static int done;

	if (!done) {
		done = 1;
		policy_init(&p, &diag, "hello");
		if (policy_load_buffer(&p, "c1.yaml", scenario, strlen(scenario)) ||
		    policy_validate(&p) || diag.errors || plan_compile(&plan, &p, &diag))
			abort();
	}
	return &plan;
}

static void answer(const uint8_t *q, size_t n, int forward_ok)
{
	uint8_t *out = NULL, c[DNS_QUESTION_MAX];
	size_t ol = 0;
	ldns_pkt *p = NULL;
	enum dns_verdict v = dns_answer(plan_get(), q, n, forward_ok, &out, &ol);
	int cl = dns_question_copy(q, n, c, sizeof(c));

	if (v == DNS_REPLY) {
		if (ol < 12 || memcmp(out, q, 2) || !(out[2] & 0x80))
			abort();
		if (ldns_wire2pkt(&p, out, ol) != LDNS_STATUS_OK)
			abort();
		ldns_pkt_free(p);
		/* what we answer a good query is what we would take from an upstream */
		if (cl > 0 && !dns_reply_matches(q, n, out, ol))
			abort();
	} else if (v == DNS_FORWARD && (!forward_ok || cl <= 12)) {
		abort(); /* forwarded: there is an upstream and a question to check answers by */
	}
	free(out);
	if (cl > 0 && cl <= 12)
		abort();
	out = NULL;
	if (dns_error(q, n, LDNS_RCODE_SERVFAIL, &out, &ol) == DNS_REPLY) {
		if (ol < 12 || memcmp(out, q, 2))
			abort();
		if (cl > 0 && !dns_reply_matches(c, (size_t)cl, out, ol))
			abort();
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t ql;

	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		answer(data + 1, size - 1, data[0] & 2);
		return 0;
	}
	if (size < 3)
		return 0;
	ql = (size_t)(data[1] << 8 | data[2]);
	if (ql > size - 3)
		ql = size - 3;
	if (dns_reply_matches(data + 3, ql, data + 3 + ql, size - 3 - ql) &&
	    memcmp(data + 3, data + 3 + ql, 2))
		abort(); /* never without the ID */
	return 0;
}
