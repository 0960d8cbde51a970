// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"

void id_log_ssl_errors(const char *what)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error())) {
		ERR_error_string_n(e, buf, sizeof(buf));
		pr_warn("%s: %s\n", what, buf);
	}
}

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (!k)
		id_log_ssl_errors("generate ECDSA P-256 key");
	return k;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -EINVAL;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EINVAL;
}

static int random_serial(X509 *cert)
{
	unsigned char b[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	b[0] &= 0x7f; /* positive */
	bn = BN_bin2bn(b, sizeof(b), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
	BN_free(bn);
	return ok ? 0 : -EIO;
}

/* A certificate for key, signed by issuer_key (issuer NULL: self-signed). */
static X509 *make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *org,
		       const char *cn, long not_before, long ttl)
{
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();

	if (!c || !name)
		goto fail;
	X509_set_version(c, 2);
	if (random_serial(c))
		goto fail;
	X509_gmtime_adj(X509_getm_notBefore(c), not_before);
	X509_gmtime_adj(X509_getm_notAfter(c), not_before + ttl);
	X509_set_pubkey(c, key);
	if (org)
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)org, -1,
					   -1, 0);
	if (cn)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					   -1, 0);
	X509_set_subject_name(c, name);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
	X509_NAME_free(name);
	name = NULL;
	if (add_ext(c, issuer ? issuer : c, NID_subject_key_identifier, "hash") ||
	    add_ext(c, issuer ? issuer : c, NID_authority_key_identifier, "keyid:always"))
		goto fail;
	return c;
fail:
	X509_NAME_free(name);
	X509_free(c);
	(void)issuer_key;
	return NULL;
}

int id_write_pem(const char *dir, const char *name, X509 *const *certs, int n,
		     EVP_PKEY *key)
{
	char path[4096];
	FILE *f;
	int fd, ok = 1;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key ? 0600 : 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		pr_warn("Error: write %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	for (int i = 0; i < n; i++)
		ok &= PEM_write_X509(f, certs[i]);
	if (key)
		ok &= PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	if (fclose(f) || !ok) {
		id_log_ssl_errors(path);
		return -EIO;
	}
	return 0;
}

static void *rd_cert(FILE *f)
{
	return PEM_read_X509(f, NULL, NULL, NULL);
}

static void *rd_key(FILE *f)
{
	return PEM_read_PrivateKey(f, NULL, NULL, NULL);
}

/* The first PEM object of dir/name that rd reads, or NULL (logged). */
static void *read_pem(const char *dir, const char *name, void *(*rd)(FILE *))
{
	char path[4096];
	void *obj;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f) {
		pr_warn("Error: open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	obj = rd(f);
	fclose(f);
	if (!obj)
		id_log_ssl_errors(path);
	return obj;
}

static X509 *read_cert(const char *dir, const char *name)
{
	return read_pem(dir, name, rd_cert);
}

static EVP_PKEY *read_key(const char *dir, const char *name)
{
	return read_pem(dir, name, rd_key);
}

int id_root_create(const char *dir, int days)
{
	EVP_PKEY *key = ec_key();
	X509 *cert = NULL;
	int err = -EIO;

	mkdir(dir, 0700);
	if (!key)
		return -EIO;
	cert = make_cert(key, NULL, key, "ksteer", "Root CA", 0, (long)days * 86400);
	if (!cert || add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE") ||
	    add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    !X509_sign(cert, key, EVP_sha256())) {
		id_log_ssl_errors("make the root certificate");
		goto out;
	}
	err = id_write_pem(dir, "root-cert.pem", &cert, 1, NULL);
	if (!err)
		err = id_write_pem(dir, "root-key.pem", NULL, 0, key);
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return err;
}

int id_intermediate_create(const char *root_dir, const char *out_dir, const char *cluster,
			   int days)
{
	X509 *root = read_cert(root_dir, "root-cert.pem"), *cert = NULL;
	EVP_PKEY *root_key = read_key(root_dir, "root-key.pem"), *key = ec_key();
	char cn[256];
	int err = -EIO;

	mkdir(out_dir, 0700);
	if (!root || !root_key || !key)
		goto out;
	snprintf(cn, sizeof(cn), "Intermediate CA %s", cluster);
	cert = make_cert(key, root, root_key, "ksteer", cn, 0, (long)days * 86400);
	if (!cert || add_ext(cert, root, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    add_ext(cert, root, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ||
	    !X509_sign(cert, root_key, EVP_sha256())) {
		id_log_ssl_errors("make the intermediate certificate");
		goto out;
	}
	{
		X509 *chain[2] = { cert, root };

		/* Istio's plug-in layout: what istiod reads from the cacerts secret */
		if ((err = id_write_pem(out_dir, "ca-cert.pem", &cert, 1, NULL)) ||
		    (err = id_write_pem(out_dir, "ca-key.pem", NULL, 0, key)) ||
		    (err = id_write_pem(out_dir, "root-cert.pem", &root, 1, NULL)) ||
		    (err = id_write_pem(out_dir, "cert-chain.pem", chain, 2, NULL)))
			goto out;
	}
	err = 0;
out:
	X509_free(root);
	X509_free(cert);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(key);
	return err;
}

int id_ca_load(struct id_ca *ca, const char *dir)
{
	char path[4096];
	FILE *f;
	X509 *c;

	memset(ca, 0, sizeof(*ca));
	ca->cert = read_cert(dir, "ca-cert.pem");
	ca->key = read_key(dir, "ca-key.pem");
	ca->root = read_cert(dir, "root-cert.pem");
	ca->chain = sk_X509_new_null();
	snprintf(path, sizeof(path), "%s/cert-chain.pem", dir);
	f = fopen(path, "r");
	while (f && (c = PEM_read_X509(f, NULL, NULL, NULL)))
		sk_X509_push(ca->chain, c);
	if (f)
		fclose(f);
	ERR_clear_error(); /* the end of the chain file reads as an error */
	if (!ca->cert || !ca->key || !ca->root || !sk_X509_num(ca->chain) ||
	    X509_check_private_key(ca->cert, ca->key) != 1) {
		pr_warn("Error: %s: incomplete or inconsistent CA material (ca-cert.pem, ca-key.pem, "
			"root-cert.pem, cert-chain.pem)\n",
			dir);
		id_ca_free(ca);
		return -EINVAL;
	}
	return 0;
}

void id_ca_free(struct id_ca *ca)
{
	X509_free(ca->cert);
	X509_free(ca->root);
	EVP_PKEY_free(ca->key);
	sk_X509_pop_free(ca->chain, X509_free);
	memset(ca, 0, sizeof(*ca));
}

int id_mint(const struct id_ca *ca, const char *trust_domain, const char *ns, const char *sa,
	    long not_before_offset, long ttl, EVP_PKEY **key_out, X509 **cert_out)
{
	EVP_PKEY *key = ec_key();
	X509 *cert = NULL;
	char san[512];

	if (!key)
		return -EIO;
	snprintf(san, sizeof(san), "URI:spiffe://%s/ns/%s/sa/%s", trust_domain, ns, sa);
	/* like Istio's: no subject, the identity is the URI SAN alone */
	cert = make_cert(key, ca->cert, ca->key, NULL, NULL, not_before_offset, ttl);
	if (!cert || add_ext(cert, ca->cert, NID_subject_alt_name, san) ||
	    add_ext(cert, ca->cert, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(cert, ca->cert, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
	    add_ext(cert, ca->cert, NID_ext_key_usage, "serverAuth,clientAuth") ||
	    !X509_sign(cert, ca->key, EVP_sha256())) {
		id_log_ssl_errors("mint a workload certificate");
		X509_free(cert);
		EVP_PKEY_free(key);
		return -EIO;
	}
	*key_out = key;
	*cert_out = cert;
	return 0;
}

int id_spiffe(X509 *cert, char *out, size_t len)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int found = 0;

	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		const unsigned char *u;
		int n;

		if (g->type != GEN_URI)
			continue;
		u = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		n = ASN1_STRING_length(g->d.uniformResourceIdentifier);
		if (n > 9 && !memcmp(u, "spiffe://", 9) && !memchr(u, 0, (size_t)n)) {
			if (found++) /* SPIFFE: exactly one URI SAN */
				break;
			snprintf(out, len, "%.*s", n, (const char *)u);
		}
	}
	GENERAL_NAMES_free(names);
	return found == 1 ? 0 : -ENOENT;
}

int id_verify(X509 *root, X509 *leaf, STACK_OF(X509) * untrusted, const char *trust_domain,
	      char *id, size_t id_len, char *why, size_t why_len)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	size_t tdl = strlen(trust_domain);
	int ok = 0;

	snprintf(why, why_len, "internal error");
	if (!store || !ctx || !X509_STORE_add_cert(store, root) ||
	    !X509_STORE_CTX_init(ctx, store, leaf, untrusted))
		goto out;
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
	if (X509_verify_cert(ctx) != 1) {
		snprintf(why, why_len, "%s",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	if (id_spiffe(leaf, id, id_len)) {
		snprintf(why, why_len, "no single spiffe:// URI SAN");
		goto out;
	}
	if (strncmp(id + 9, trust_domain, tdl) || id[9 + tdl] != '/') {
		snprintf(why, why_len, "%s is not in trust domain %s", id, trust_domain);
		goto out;
	}
	ok = 1;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok ? 0 : -EACCES;
}
