// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"

const unsigned char tls_alpn_client[] = "\x0eistio-http/1.1\x05istio\x08http/1.1";
const unsigned tls_alpn_client_len = sizeof(tls_alpn_client) - 1;

static int rule_idx = -1;

int ids_open(struct ids *ids, const char *ca_dir, const char *trust_domain, long ttl)
{
	memset(ids, 0, sizeof(*ids));
	snprintf(ids->trust_domain, sizeof(ids->trust_domain), "%s",
		 trust_domain ? trust_domain : ID_TRUST_DOMAIN);
	ids->ttl = ttl > 0 ? ttl : ID_DEFAULT_TTL;
	if (rule_idx < 0)
		rule_idx = SSL_get_ex_new_index(0, "ksteer peer rule", NULL, NULL, NULL);
	if (!ca_dir)
		return 0;
	if (id_ca_load(&ids->ca, ca_dir))
		return -ENOENT;
	ids->have_ca = true;
	return 0;
}

static void entry_free(struct ids_entry *e)
{
	SSL_CTX_free(e->client);
	SSL_CTX_free(e->server);
	e->client = e->server = NULL;
}

void ids_close(struct ids *ids)
{
	for (unsigned i = 0; i < ids->n; i++)
		entry_free(&ids->v[i]);
	free(ids->v);
	if (ids->have_ca)
		id_ca_free(&ids->ca);
	memset(ids, 0, sizeof(*ids));
}

/* The trust domain and the rule's SANs for a peer's SPIFFE ID: 0, or -1 with r->why set. */
int peer_rule_check(struct peer_rule *r, const char *id)
{
	size_t tdl = strlen(r->trust_domain);
	bool san_ok = !r->n_sans;

	if (strncmp(id, "spiffe://", 9) || strncmp(id + 9, r->trust_domain, tdl) ||
	    id[9 + tdl] != '/') {
		snprintf(r->why, sizeof(r->why), "%s is not in trust domain %s", id,
			 r->trust_domain);
		return -1;
	}
	for (unsigned i = 0; i < r->n_sans; i++)
		san_ok |= !strcmp(r->sans[i], id);
	if (!san_ok) {
		snprintf(r->why, sizeof(r->why), "%s is not among the subjectAltNames required",
			 id);
		return -1;
	}
	snprintf(r->seen, sizeof(r->seen), "%s", id);
	return 0;
}

/* Chain, SPIFFE trust domain, and the rule's SANs; at depth 0, after OpenSSL's own checks. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct peer_rule *r = ssl ? SSL_get_ex_data(ssl, rule_idx) : NULL;
	X509 *cert = X509_STORE_CTX_get_current_cert(x);
	char id[256];

	if (!r)
		return ok;
	if (!ok) {
		snprintf(r->why, sizeof(r->why), "%s",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)));
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(x) != 0)
		return 1;
	if (id_spiffe(cert, id, sizeof(id))) {
		snprintf(r->why, sizeof(r->why),
			 "peer certificate has no single spiffe:// URI SAN");
		goto refuse;
	}
	if (peer_rule_check(r, id))
		goto refuse;
	return 1;
refuse:
	X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
	return 0;
}

void tls_set_peer_rule(SSL *ssl, struct peer_rule *rule)
{
	SSL_set_ex_data(ssl, rule_idx, rule);
}

/* The server picks the first of Istio's protocols the client offers; none is fine too. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned inlen, void *arg)
{
	unsigned char *o;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&o, outlen, tls_alpn_client, tls_alpn_client_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *ctx_new(struct ids *ids, bool server, EVP_PKEY *key, X509 *cert)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	X509_STORE *store;

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_add1_chain_cert(ctx, ids->ca.cert) != 1)
		goto fail;
	store = SSL_CTX_get_cert_store(ctx);
	if (X509_STORE_add_cert(store, ids->ca.root) != 1)
		goto fail;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			   verify_cb);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (server) {
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
		SSL_CTX_set_num_tickets(ctx, 0); /* connections are pooled, not resumed */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	} else {
		SSL_CTX_set_alpn_protos(ctx, tls_alpn_client, tls_alpn_client_len);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}
	return ctx;
fail:
	id_log_ssl_errors("TLS context");
	SSL_CTX_free(ctx);
	return NULL;
}

static int entry_mint(struct ids *ids, struct ids_entry *e)
{
	/* valid a little before now, for clocks behind ours; never longer than asked */
	long skew = ids->ttl / 10 < 60 ? ids->ttl / 10 : 60;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	SSL_CTX *cl, *sv;

	if (id_mint(&ids->ca, ids->trust_domain, e->ns, e->sa, -skew, ids->ttl + skew, &key, &cert))
		return -EIO;
	cl = ctx_new(ids, false, key, cert);
	sv = ctx_new(ids, true, key, cert);
	EVP_PKEY_free(key);
	X509_free(cert);
	if (!cl || !sv) {
		SSL_CTX_free(cl);
		SSL_CTX_free(sv);
		return -EIO;
	}
	if (e->client)
		ids->rotated++;
	entry_free(e); /* connections made with the old pair keep their reference */
	e->client = cl;
	e->server = sv;
	e->gen = ++ids->gen;
	e->born = time(NULL);
	ids->minted++;
	pr_info(
	    "identity spiffe://%s/ns/%s/sa/%s: certificate minted, valid %lds, renewed in %lds\n",
	    ids->trust_domain, e->ns, e->sa, ids->ttl, ids->ttl / 2);
	return 0;
}

const struct ids_entry *ids_get(struct ids *ids, const char *ns, const char *sa)
{
	struct ids_entry *e = NULL;

	if (!ids->have_ca)
		return NULL;
	for (unsigned i = 0; i < ids->n && !e; i++)
		if (!strcmp(ids->v[i].ns, ns) && !strcmp(ids->v[i].sa, sa))
			e = &ids->v[i];
	if (!e) {
		if (ids->n == ids->cap) {
			unsigned cap = ids->cap ? ids->cap * 2 : 16;
			struct ids_entry *nv = realloc(ids->v, cap * sizeof(*nv));

			if (!nv)
				return NULL;
			ids->v = nv;
			ids->cap = cap;
		}
		e = &ids->v[ids->n];
		memset(e, 0, sizeof(*e));
		snprintf(e->ns, sizeof(e->ns), "%s", ns);
		snprintf(e->sa, sizeof(e->sa), "%s", sa);
		if (entry_mint(ids, e))
			return NULL;
		ids->n++;
	} else if (time(NULL) >= e->born + ids->ttl / 2) {
		entry_mint(ids, e); /* on failure the old one serves until it expires */
	}
	return e;
}

void ids_tick(struct ids *ids, time_t now)
{
	for (unsigned i = 0; i < ids->n; i++)
		if (now >= ids->v[i].born + ids->ttl / 2)
			entry_mint(ids, &ids->v[i]);
}
