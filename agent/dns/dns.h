/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Mesh names for pods, as Istio's DNS proxy answers them: ServiceEntry hosts
 * with their addresses, Kubernetes Services (by FQDN: the pod's resolver
 * walks its search path) with their ClusterIPs. Names under cluster.local
 * that nothing defines are NXDOMAIN; the rest is forwarded when an upstream
 * is configured, NXDOMAIN otherwise. The wire format is ldns's.
 */
#ifndef KSTEER_DNS_H
#define KSTEER_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../compile/compile.h"

#define DNS_TTL 5 /* seconds: policies change, answers should follow soon */

enum dns_verdict {
	DNS_REPLY,   /* *out holds the answer */
	DNS_FORWARD, /* not a mesh name: ask the upstream resolver */
	DNS_DROP,    /* not even a DNS header: nothing to answer */
};

#define DNS_MAX_ADDRS 16 /* records in one answer: a name's VIPs past these are not given */

/* The addresses of a mesh host: its frontends' VIPs in the plan's order, each once, at most cap
 * in v; returns how many. *known: some frontend has this host (NOERROR, even without VIPs). */
unsigned dns_host_addrs(const struct plan *plan, const char *name, const struct ks_addr **v,
			unsigned cap, bool *known);

/* Answers one query; the caller frees *out. forward_ok: an upstream exists. */
enum dns_verdict dns_answer(const struct plan *plan, const uint8_t *q, size_t qlen, int forward_ok,
			    uint8_t **out, size_t *out_len);

/* An answer with no records and rcode (REFUSED, SERVFAIL...) to query q, its id and question
 * kept: stub resolvers ignore an answer without the question they asked. */
enum dns_verdict dns_error(const uint8_t *q, size_t qlen, uint8_t rcode, uint8_t **out,
			   size_t *out_len);

#define DNS_QUESTION_MAX (12 + 255 + 4) /* header, the longest name, type and class */

/* Query q's header and question only (no EDNS, no other section), into out: its length,
 * or -EINVAL when q is not one query with one question. What an answer is checked against. */
int dns_question_copy(const uint8_t *q, size_t qlen, uint8_t *out, size_t cap);

/* Whether r answers q: same ID, a response to a QUERY, and the same question (name compared
 * without ASCII case as RFC 4343 says, type, class). Anything else is a forgery or a stray. */
bool dns_reply_matches(const uint8_t *q, size_t qlen, const uint8_t *r, size_t rlen);

/*
 * Each client address's budget: a token bucket on every query it sends and a cap on its
 * forwarded queries in flight, so that one pod can neither flood the upstream nor take the
 * whole table of pending queries.
 */
#define DNS_SOURCES 1024      /* client addresses tracked; idle ones make room for new ones */
#define DNS_SOURCE_RATE 1000  /* queries per second, sustained (a search list makes 8 per name) */
#define DNS_SOURCE_BURST 4000 /* queries at once after a quiet spell */
#define DNS_SOURCE_PENDING 64 /* forwarded queries in flight */

struct dns_source {
	uint8_t addr[16];
	bool used;
	uint32_t pending; /* forwarded, neither answered nor timed out */
	uint64_t tokens;  /* thousandths of a query */
	uint64_t last_ms; /* when tokens was filled */
};

struct dns_budget {
	uint32_t seed; /* of the table's hash: addresses a client picks do not chain */
	struct dns_source src[DNS_SOURCES];
};

void dns_budget_init(struct dns_budget *b, uint32_t seed);
/* The entry of a client address, made when new; NULL when every candidate slot has
 * queries in flight. */
struct dns_source *dns_source_get(struct dns_budget *b, const uint8_t addr[16], uint64_t now_ms);
/* One query's token: false when the source is over its rate. */
bool dns_source_take(struct dns_source *src, uint64_t now_ms);

#endif
