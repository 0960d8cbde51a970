// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Identities: plug-in CA layout, SPIFFE workload certificates, and peer verification. */
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/identity/identity.h"

static char base[64];

static int setup(void **state)
{
	char d[128];

	(void)state;
	snprintf(base, sizeof(base), "/tmp/ksteer-id-XXXXXX");
	if (!mkdtemp(base))
		return -1;
	snprintf(d, sizeof(d), "%s/root", base);
	if (id_root_create(d, 3650))
		return -1;
	for (int i = 1; i <= 2; i++) {
		char out[128], name[16];

		snprintf(out, sizeof(out), "%s/cluster%d", base, i);
		snprintf(name, sizeof(name), "cluster%d", i);
		if (id_intermediate_create(d, out, name, 365))
			return -1;
	}
	snprintf(d, sizeof(d), "%s/other-root", base);
	if (id_root_create(d, 3650))
		return -1;
	{
		char out[128];

		snprintf(out, sizeof(out), "%s/other", base);
		return id_intermediate_create(d, out, "x", 365);
	}
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	return system(cmd);
}

static void load(struct id_ca *ca, const char *cluster)
{
	char d[128];

	snprintf(d, sizeof(d), "%s/%s", base, cluster);
	assert_int_equal(id_ca_load(ca, d), 0);
}

static void test_plugin_layout(void **state)
{
	static const char *const files[] = { "root-cert.pem", "ca-cert.pem", "ca-key.pem",
					     "cert-chain.pem" };
	struct id_ca ca;
	struct stat st;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		char p[160];

		snprintf(p, sizeof(p), "%s/cluster1/%s", base, files[i]);
		assert_int_equal(stat(p, &st), 0);
		if (strstr(files[i], "key"))
			assert_int_equal(st.st_mode & 0777, 0600);
	}
	load(&ca, "cluster1");
	/* cert-chain.pem: the intermediate, then the root */
	assert_int_equal(sk_X509_num(ca.chain), 2);
	assert_int_equal(X509_cmp(sk_X509_value(ca.chain, 0), ca.cert), 0);
	assert_int_equal(X509_cmp(sk_X509_value(ca.chain, 1), ca.root), 0);
	assert_int_equal(X509_check_ca(ca.cert), 1);
	id_ca_free(&ca);
}

struct vcase {
	const char *name, *signer, *verify_root, *td, *cert_td;
	long not_before, ttl;
	int ok;
	const char *why;
};

static void test_verify_table(void **state)
{
	static const struct vcase cases[] = {
		{ "same cluster", "cluster1", "cluster1", ID_TRUST_DOMAIN, ID_TRUST_DOMAIN, -60, 3600, 1, NULL },
		{ "other cluster, shared root", "cluster2", "cluster1", ID_TRUST_DOMAIN, ID_TRUST_DOMAIN, -60, 3600, 1, NULL },
		{ "untrusted root", "other", "cluster1", ID_TRUST_DOMAIN, ID_TRUST_DOMAIN, -60, 3600, 0, "unable to get local issuer certificate" },
		{ "expired", "cluster1", "cluster1", ID_TRUST_DOMAIN, ID_TRUST_DOMAIN, -7200, 3600, 0, "certificate has expired" },
		{ "not yet valid", "cluster1", "cluster1", ID_TRUST_DOMAIN, ID_TRUST_DOMAIN, 3600, 3600, 0, "certificate is not yet valid" },
		{ "another trust domain", "cluster1", "cluster1", ID_TRUST_DOMAIN, "evil.example", -60, 3600, 0, "is not in trust domain cluster.local" },
		{ "trust domain prefix is not enough", "cluster1", "cluster1", ID_TRUST_DOMAIN, "cluster.localx", -60, 3600, 0, "not in trust domain" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct vcase *c = &cases[i];
		struct id_ca signer, verifier;
		EVP_PKEY *key;
		X509 *leaf;
		STACK_OF(X509) *untrusted = sk_X509_new_null();
		char id[256] = "", why[256] = "";
		int rc;

		load(&signer, c->signer);
		load(&verifier, c->verify_root);
		assert_int_equal(id_mint(&signer, c->cert_td, "hello", "sleep", c->not_before, c->ttl,
					 &key, &leaf),
				 0);
		sk_X509_push(untrusted, signer.cert); /* the peer sends its intermediate */
		rc = id_verify(verifier.root, leaf, untrusted, c->td, id, sizeof(id), why, sizeof(why));
		if (c->ok && rc)
			fail_msg("case \"%s\": refused: %s", c->name, why);
		if (!c->ok && !rc)
			fail_msg("case \"%s\": accepted (%s), expected: %s", c->name, id, c->why);
		if (!c->ok && !strstr(why, c->why))
			fail_msg("case \"%s\": reason \"%s\", expected \"%s\"", c->name, why, c->why);
		if (c->ok)
			assert_string_equal(id, "spiffe://cluster.local/ns/hello/sa/sleep");
		sk_X509_free(untrusted);
		X509_free(leaf);
		EVP_PKEY_free(key);
		id_ca_free(&signer);
		id_ca_free(&verifier);
	}
}

static void test_workload_cert_shape(void **state)
{
	struct id_ca ca;
	EVP_PKEY *key;
	X509 *leaf;
	char id[256];

	(void)state;
	load(&ca, "cluster2");
	assert_int_equal(id_mint(&ca, ID_TRUST_DOMAIN, "ns1", "sa-1", -60, ID_DEFAULT_TTL, &key, &leaf), 0);
	assert_int_equal(id_spiffe(leaf, id, sizeof(id)), 0);
	assert_string_equal(id, "spiffe://cluster.local/ns/ns1/sa/sa-1");
	assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_bits(key), 256);
	assert_int_equal(X509_check_ca(leaf), 0);
	assert_int_equal(X509_check_private_key(leaf, key), 1);
	/* no subject: the identity is the URI SAN, as Istio issues them */
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(leaf)), 0);
	{
		const ASN1_TIME *na = X509_get0_notAfter(leaf), *nb = X509_get0_notBefore(leaf);
		int days, secs;

		assert_int_equal(ASN1_TIME_diff(&days, &secs, nb, na), 1);
		assert_int_equal(days * 86400 + secs, ID_DEFAULT_TTL + 60 - 60);
	}
	X509_free(leaf);
	EVP_PKEY_free(key);
	id_ca_free(&ca);
}

static void test_bad_material(void **state)
{
	struct id_ca ca;
	char d[128];

	(void)state;
	snprintf(d, sizeof(d), "%s/nowhere", base);
	assert_int_equal(id_ca_load(&ca, d), -EINVAL);
	/* a key that does not match the certificate */
	{
		char cmd[1024];

		snprintf(cmd, sizeof(cmd), "cp -r %s/cluster1 %s/mixed && cp %s/cluster2/ca-key.pem %s/mixed/ca-key.pem",
			 base, base, base, base);
		assert_int_equal(system(cmd), 0);
	}
	snprintf(d, sizeof(d), "%s/mixed", base);
	assert_int_equal(id_ca_load(&ca, d), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plugin_layout),
		cmocka_unit_test(test_verify_table),
		cmocka_unit_test(test_workload_cert_shape),
		cmocka_unit_test(test_bad_material),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
