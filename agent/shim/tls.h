/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Workload identities for the shim's mutual TLS: one SSL_CTX pair (client,
 * server) per service account, minted from this cluster's intermediate on
 * first use and re-minted at half life. Connections keep the context they
 * were made with (SSL_CTX is reference counted), so a rotation never drops
 * one; a generation number tells pooled connections they are from before it.
 */
#ifndef KSTEER_SHIM_TLS_H
#define KSTEER_SHIM_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "../identity/identity.h"
#include "../policy/model.h"

struct ids_entry {
	char ns[128], sa[128];
	SSL_CTX *client, *server;
	uint64_t gen;
	time_t born;
};

struct ids {
	struct id_ca ca;
	bool have_ca;
	char trust_domain[128];
	long ttl; /* seconds */
	struct ids_entry *v;
	unsigned n, cap;
	uint64_t gen; /* bumped by every mint */
	uint64_t minted, rotated;
};

/* 0, or -errno when the plug-in CA directory cannot be read. */
int ids_open(struct ids *ids, const char *ca_dir, const char *trust_domain, long ttl);
void ids_close(struct ids *ids);
/* The identity of ns/sa, minted when absent or past half life; NULL without a CA. */
const struct ids_entry *ids_get(struct ids *ids, const char *ns, const char *sa);
/* Re-mints every identity past half its life. */
void ids_tick(struct ids *ids, time_t now);

/*
 * What the peer's certificate must be, checked during the handshake (a bad
 * peer fails it with an alert): chained to the root, one spiffe:// URI SAN in
 * the trust domain, and one of sans when there are any.
 */
#define PEER_MAX_SANS 4

struct peer_rule {
	const char *trust_domain;
	char sans[PEER_MAX_SANS][200]; /* copies: the plan may change during a handshake */
	unsigned n_sans;
	char seen[256]; /* the peer's SPIFFE ID, once verified */
	char why[160]; /* why it was refused */
};

void tls_set_peer_rule(SSL *ssl, struct peer_rule *rule);
/* The trust domain and SANs part of the rule for a SPIFFE ID: 0, or -1 with why set. */
int peer_rule_check(struct peer_rule *r, const char *id);
/* ALPN the client offers, as Istio's sidecars do. */
extern const unsigned char tls_alpn_client[];
extern const unsigned tls_alpn_client_len;

#endif
