// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `ksteer cert`: the identity material by hand, in Istio's plug-in layout,
 * for operators and for tests that need a certificate the mesh should refuse.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../identity/identity.h"
#include "../policy/decode.h"
#include "cli.h"

/* the subcommand's usage when there is one, else every cert usage */
static int usage(const char *sub)
{
	char name[64];

	snprintf(name, sizeof(name), "cert %s", sub);
	return cli_usage(cli_has_help(name) ? name : "cert", stderr);
}

static int duration_s(const char *s, long *out)
{
	int64_t ms;
	bool neg = *s == '-';

	if (parse_duration_ms(s + neg, &ms))
		return -EINVAL;
	*out = (long)(ms / 1000) * (neg ? -1 : 1);
	return 0;
}

int cmd_cert(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"out", required_argument, NULL, 'o'},
	    {"days", required_argument, NULL, 'd'},
	    {"root", required_argument, NULL, 'r'},
	    {"cluster", required_argument, NULL, 'c'},
	    {"ca", required_argument, NULL, 'a'},
	    {"ns", required_argument, NULL, 'n'},
	    {"sa", required_argument, NULL, 's'},
	    {"ttl", required_argument, NULL, 't'},
	    {"trust-domain", required_argument, NULL, 'T'},
	    {"valid-from", required_argument, NULL, 'v'},
	    {NULL, 0, NULL, 0},
	};
	const char *sub = argc > 1 ? argv[1] : "", *out = NULL, *root = NULL, *cluster = NULL,
		   *ca_dir = NULL, *ns = NULL, *sa = NULL, *td = ID_TRUST_DOMAIN;
	long ttl = ID_DEFAULT_TTL, from = 0;
	int days = 3650, c;

	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'd':
			days = atoi(optarg);
			break;
		case 'r':
			root = optarg;
			break;
		case 'c':
			cluster = optarg;
			break;
		case 'a':
			ca_dir = optarg;
			break;
		case 'n':
			ns = optarg;
			break;
		case 's':
			sa = optarg;
			break;
		case 'T':
			td = optarg;
			break;
		case 't':
			if (duration_s(optarg, &ttl) || ttl <= 0) {
				fprintf(stderr, "Error: --ttl %s: not a positive duration\n",
					optarg);
				return usage(sub);
			}
			break;
		case 'v':
			if (duration_s(optarg, &from)) {
				fprintf(stderr, "Error: --valid-from %s: not a duration\n", optarg);
				return 2;
			}
			break;
		default:
			return usage(sub);
		}
	}
	if (!out)
		return usage(sub);
	mkdir(out, 0755);
	if (!strcmp(sub, "root"))
		return id_root_create(out, days) ? 1 : 0;
	if (!strcmp(sub, "intermediate")) {
		if (!root || !cluster)
			return usage(sub);
		return id_intermediate_create(root, out, cluster, days) ? 1 : 0;
	}
	if (!strcmp(sub, "mint")) {
		struct id_ca ca;
		EVP_PKEY *key;
		X509 *cert;
		int err;

		if (!ca_dir || !ns || !sa)
			return usage(sub);
		if (id_ca_load(&ca, ca_dir)) {
			fprintf(stderr, "Error: %s: not a CA in Istio's plug-in layout\n", ca_dir);
			return 1;
		}
		err = id_mint(&ca, td, ns, sa, from, ttl, &key, &cert);
		if (!err) {
			X509 *chain[2] = {cert, ca.cert};

			err = id_write_pem(out, "key.pem", NULL, 0, key) ||
			      id_write_pem(out, "cert.pem", &cert, 1, NULL) ||
			      id_write_pem(out, "cert-chain.pem", chain, 2, NULL);
			EVP_PKEY_free(key);
			X509_free(cert);
		}
		id_ca_free(&ca);
		return err ? 1 : 0;
	}
	return usage(sub);
}
