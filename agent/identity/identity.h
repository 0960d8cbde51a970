/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Identities as Istio has them: a root CA shared by the clusters, an
 * intermediate per cluster in Istio's plug-in layout (root-cert.pem,
 * ca-cert.pem, ca-key.pem, cert-chain.pem), and short-lived ECDSA P-256
 * workload certificates for spiffe://TRUST_DOMAIN/ns/NS/sa/SA.
 */
#ifndef KSTEER_IDENTITY_H
#define KSTEER_IDENTITY_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>

#define ID_TRUST_DOMAIN "cluster.local"
#define ID_DEFAULT_TTL (24 * 3600)

struct id_ca {
	X509 *cert; /* ca-cert.pem: this cluster's intermediate */
	EVP_PKEY *key; /* ca-key.pem */
	X509 *root; /* root-cert.pem */
	STACK_OF(X509) * chain; /* cert-chain.pem: the intermediate, then the root */
};

/* A self-signed root in dir: root-cert.pem, root-key.pem (0600). */
int id_root_create(const char *dir, int days);
/* An intermediate signed by the root in root_dir, in the plug-in layout under out_dir. */
int id_intermediate_create(const char *root_dir, const char *out_dir, const char *cluster,
			   int days);
int id_ca_load(struct id_ca *ca, const char *dir);
void id_ca_free(struct id_ca *ca);
/*
 * A workload certificate valid from not_before_offset seconds (negative: in the
 * past) for ttl seconds. The caller frees key and cert.
 */
int id_mint(const struct id_ca *ca, const char *trust_domain, const char *ns, const char *sa,
	    long not_before_offset, long ttl, EVP_PKEY **key, X509 **cert);
/*
 * Verifies leaf (with the untrusted intermediates given) up to root and that
 * its one SPIFFE URI SAN is in trust_domain; writes the ID to id.
 * 0, or -EACCES with the reason in why.
 */
int id_verify(X509 *root, X509 *leaf, STACK_OF(X509) * untrusted, const char *trust_domain,
	      char *id, size_t id_len, char *why, size_t why_len);
/* PEM file dir/name: the certificates, then the key (file mode 0600 when a key is in it). */
int id_write_pem(const char *dir, const char *name, X509 *const *certs, int n, EVP_PKEY *key);
/* The SPIFFE URI SAN of a certificate, or -ENOENT. */
int id_spiffe(X509 *cert, char *out, size_t len);
/* OpenSSL's error queue, drained into the log with a prefix. */
void id_log_ssl_errors(const char *what);

#endif
