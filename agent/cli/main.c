// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* ksteer: one binary, subcommands in a {name, fn} table. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "../compile/compile.h"
#include "../lib/log.h"
#include "../policy/policy.h"
#include "../lab/lab.h"
#include "cli.h"

static int usage(FILE *f)
{
	fprintf(f, "Usage: ksteer COMMAND [ARGS]\n"
		   "\n"
		   "Commands:\n"
		   "  check [-n NS] [--strict] [-o text|json] -f PATH...\n"
		   "          validate Istio/Kubernetes YAML (files, directories, - for stdin)\n"
		   "          and print the compiled plan; exit 0 valid, 1 invalid\n"
		   "  agent --policy DIR --cgroup PATH --instance NAME [...]\n"
		   "          load, attach and feed the datapath; watch DIR\n"
		   "  apply -i INSTANCE -f FILE   hand a policy file to a running agent\n"
		   "  status --instance NAME      the agent's state\n"
		   "  get frontends|routes|endpoints|stats -i INSTANCE [-o json]\n"
		   "          read the pinned maps (works while the agent is down)\n"
		   "  uninstall --instance NAME   remove every link, pin and map of an instance\n"
		   "  sockmap --instance NAME on|off   app <-> shim sockets in the kernel, new connections\n"
		   "  splice --instance NAME on|off    gateway tunnels in the kernel, new tunnels\n"
		   "  cert root|intermediate|mint ...\n"
		   "          identity material in Istio's plug-in layout; workload certs by hand\n"
		   "  lab up [-f LABFILE] [--cert-ttl DUR] [--sni-form global|local]\n"
		   "         [--no-guard] [--no-sockmap] [--no-splice]\n"
		   "      | apply CLUSTER [-n NS] [-l SEL] -f FILE | exec CLUSTER NS/NAME -- CMD\n"
		   "      | env | status [-o json] | down\n"
		   "          clusters of network namespaces on this machine\n"
		   "  version print the version and the map layout version\n"
		   "  help    this text\n");
	return f == stderr ? 2 : 0;
}

static int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "namespace", required_argument, NULL, 'n' }, { "filename", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },    { "strict", no_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },           { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ns = NULL, *out = "text";
	const char *paths[256];
	int npaths = 0, strict = 0, quiet = 0, c, rc = 1;
	struct diag diag = { 0 };
	struct policy p;
	struct plan plan;

	optind = 1;
	while ((c = getopt_long(argc, argv, "n:f:o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			ns = optarg;
			break;
		case 'f':
			if (npaths == (int)(sizeof(paths) / sizeof(paths[0]))) {
				fprintf(stderr, "Error: too many -f\n");
				return 2;
			}
			paths[npaths++] = optarg;
			break;
		case 'o':
			out = optarg;
			if (strcmp(out, "text") && strcmp(out, "json")) {
				fprintf(stderr, "Error: -o takes text or json\n");
				return 2;
			}
			break;
		case 's':
			strict = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		default:
			fprintf(stderr,
				"Usage: ksteer check [-n NS] [--strict] [-q] [-o text|json] -f PATH...\n");
			return c == 'h' ? 0 : 2;
		}
	}
	for (; optind < argc && npaths < 256; optind++)
		paths[npaths++] = argv[optind];
	if (!npaths) {
		fprintf(stderr, "Error: no input: give -f FILE, -f DIR or -f -\n");
		return 2;
	}
	policy_init(&p, &diag, ns);
	for (int i = 0; i < npaths; i++)
		policy_load_path(&p, paths[i]);
	policy_validate(&p);
	memset(&plan, 0, sizeof(plan));
	if (!diag.errors)
		plan_compile(&plan, &p, &diag);
	if (strict)
		diag_promote(&diag);
	diag_print(&diag, stderr);
	if (diag.errors) {
		fprintf(stderr, "%u error(s), %u warning(s): nothing applied\n", diag.errors,
			diag.warnings);
		goto out;
	}
	if (!quiet) {
		if (!strcmp(out, "json"))
			plan_print_json(&plan, stdout);
		else
			plan_print_text(&plan, stdout);
	}
	rc = 0;
out:
	plan_free(&plan);
	policy_free(&p);
	diag_free(&diag);
	return rc;
}

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("ksteer 0.1 (map layout %d)\n", KS_LAYOUT_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return usage(stdout);
}

static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
} cmds[] = {
	{ "check", cmd_check },
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
	{ "version", cmd_version },
	{ "help", cmd_help },
};

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "-v")) {
		log_level = LOG_DEBUG;
		argv++;
		argc--;
	}
	for (size_t i = 0; argc >= 2 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "Error: unknown command \"%s\"\n", argc >= 2 ? argv[1] : "");
	return usage(stderr);
}
