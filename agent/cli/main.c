// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* ksteer: one binary, subcommands in a {name, fn} table. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../lib/log.h"
#include "../lab/lab.h"
#include "../lab/api.h"
#include "cli.h"

#ifndef KSTEER_VERSION
#define KSTEER_VERSION "0.1"
#endif

static int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "namespace", required_argument, NULL, 'n' }, { "filename", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },    { "strict", no_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = "text", *paths[256];
	struct cli_policy in = { .paths = paths, .max = 256 };
	int strict = 0, quiet = 0, c, rc;
	struct cli_compiled cc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "n:f:o:q", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
		case 'f':
			if (cli_policy_opt(&in, c, optarg))
				return 2;
			break;
		case 'o':
			out = optarg;
			if (strcmp(out, "text") && strcmp(out, "json")) {
				fprintf(stderr, "Error: -o takes text or json\n");
				return cli_usage("check", stderr);
			}
			break;
		case 's':
			strict = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		default:
			return cli_usage("check", stderr);
		}
	}
	for (; optind < argc && in.npaths < in.max; optind++)
		paths[in.npaths++] = argv[optind];
	if (!in.npaths) {
		fprintf(stderr, "Error: no input: give -f FILE, -f DIR or -f -\n");
		return cli_usage("check", stderr);
	}
	rc = cli_compile(&cc, &in, strict) ? 1 : 0;
	if (rc) {
		fprintf(stderr, "%u error(s), %u warning(s): nothing applied\n", cc.diag.errors,
			cc.diag.warnings);
	} else if (!quiet) {
		if (!strcmp(out, "json"))
			plan_print_json(&cc.plan, stdout);
		else
			plan_print_text(&cc.plan, stdout);
	}
	cli_compiled_free(&cc);
	return rc;
}

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("ksteer %s (map layout %d)\n", KSTEER_VERSION, KS_LAYOUT_VERSION);
	return 0;
}

/* ksteer help [COMMAND [SUBCOMMAND]] */
static int cmd_help(int argc, char **argv)
{
	char name[64];

	if (argc < 2)
		return cli_usage_all(stdout);
	snprintf(name, sizeof(name), "%s%s%s", argv[1], argc > 2 ? " " : "",
		 argc > 2 ? argv[2] : "");
	if (cli_has_help(name))
		return cli_usage(name, stdout);
	if (cli_has_help(argv[1]))
		return cli_usage(argv[1], stdout);
	fprintf(stderr, "Error: unknown command \"%s\"\n", argv[1]);
	return cli_usage_all(stderr);
}

/*
 * -h, --help and --version anywhere before a "--" answer for the command (or
 * its subcommand, "lab up --help") without parsing the rest; -1 when absent.
 */
static int help_asked(int argc, char **argv)
{
	char name[64];

	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--version"))
			return cmd_version(0, NULL);
		if (strcmp(argv[i], "-h") && strcmp(argv[i], "--help"))
			continue;
		snprintf(name, sizeof(name), "%s %s", argv[0], argc > 1 ? argv[1] : "");
		return cli_usage(cli_has_help(name) ? name : argv[0], stdout);
	}
	return -1;
}

static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
} cmds[] = {
	{ "check", cmd_check },
	{ "explain", cmd_explain },
	{ "agent", cmd_agent },
	{ "apply", cmd_apply },
	{ "status", cmd_status },
	{ "get", cmd_get },
	{ "uninstall", cmd_uninstall },
	{ "cert", cmd_cert },
	{ "sockmap", cmd_switch },
	{ "splice", cmd_switch },
	{ "lab", cmd_lab },
	{ "lab-serve", lab_serve }, /* internal: the lab pods' HTTP server */
	{ "lab-api", lab_api }, /* internal: a lab cluster's Kubernetes API server */
	{ "version", cmd_version },
	{ "help", cmd_help },
};

int main(int argc, char **argv)
{
	int rc;

	if (argc >= 2 && !strcmp(argv[1], "-v")) {
		log_level = LOG_DEBUG;
		argv++;
		argc--;
	}
	if (argc < 2)
		return cli_usage_all(stderr);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return cli_usage_all(stdout);
	if (!strcmp(argv[1], "--version"))
		return cmd_version(0, NULL);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		if (cmds[i].fn != lab_serve && cmds[i].fn != lab_api && (rc = help_asked(argc - 1, argv + 1)) >= 0)
			return rc;
		return cmds[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "Error: unknown command \"%s\"\n", argv[1]);
	return cli_usage_all(stderr);
}
