// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The lab API server's credentials: its own CA, a certificate for 127.0.0.1, a bearer token. */
#include "apicert.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../lib/log.h"

static X509 *sign(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *cn, bool ca)
{
	X509 *x = X509_new();
	unsigned char serial[16];
	BIGNUM *bn;
	X509V3_CTX ctx;
	const char *exts[][2] = {
		{ "basicConstraints", ca ? "critical,CA:TRUE" : "critical,CA:FALSE" },
		{ "keyUsage", ca ? "critical,keyCertSign,cRLSign"
				 : "critical,digitalSignature,keyEncipherment" },
		{ ca ? NULL : "extendedKeyUsage", "serverAuth" },
		{ ca ? NULL : "subjectAltName", "IP:127.0.0.1,DNS:localhost" },
	};

	if (!x)
		return NULL;
	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x));
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		X509_EXTENSION *e;

		if (!exts[i][0])
			continue;
		e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
		if (!e || !X509_add_ext(x, e, -1)) {
			X509_EXTENSION_free(e);
			X509_free(x);
			return NULL;
		}
		X509_EXTENSION_free(e);
	}
	if (!X509_sign(x, issuer_key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int write_pem(const char *dir, const char *name, X509 *cert, EVP_PKEY *key)
{
	char path[4096];
	int fd;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key ? 0600 : 0644);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -errno;
	}
	ok = cert ? PEM_write_X509(f, cert) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	return ok ? 0 : -EIO;
}

int api_cert_make(const char *dir)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
	X509 *ca = NULL, *srv = NULL;
	unsigned char rnd[24];
	char tok[64], path[4096];
	int err = -EIO;
	FILE *f;

	if (!ca_key || !key)
		goto out;
	ca = sign(ca_key, NULL, ca_key, "ksteer lab API CA", true);
	srv = sign(key, ca, ca_key, "ksteer lab API", false);
	if (!ca || !srv)
		goto out;
	if ((err = write_pem(dir, "ca.pem", ca, NULL)) || (err = write_pem(dir, "server.pem", srv, NULL)) ||
	    (err = write_pem(dir, "server-key.pem", NULL, key)))
		goto out;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		err = -EIO;
		goto out;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(tok + 2 * i, 3, "%02x", rnd[i]);
	snprintf(path, sizeof(path), "%s/token", dir);
	f = fopen(path, "w");
	if (!f) {
		err = -errno;
		goto out;
	}
	fchmod(fileno(f), 0600);
	fprintf(f, "%s\n", tok);
	fclose(f);
	err = 0;
out:
	if (err)
		pr_warn("Error: make the lab API's credentials in %s\n", dir);
	X509_free(ca);
	X509_free(srv);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	return err;
}
