// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Every command's synopsis, once: `--help` prints it on stdout (exit 0), a
 * usage error on stderr (exit 2), and `ksteer --help` lists them all.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct cli_help {
	const char *name; /* "status", or "lab up" for a subcommand */
	const char *synopsis; /* after "ksteer NAME"; lines after the first are continuations */
	const char *summary; /* NULL for a subcommand: its command's summary covers it */
} helps[] = {
	{ "check", "[-n NS] [--strict] [-q] [-o text|json] -f PATH...",
	  "validate Istio/Kubernetes YAML (files, directories, - for stdin) and print\n"
	  "the compiled plan; exit 0 valid, 1 invalid, 2 usage" },
	{ "explain",
	  "(-i|--instance NAME | -f PATH... [-n NS]) [--pod NS/NAME] [-X METHOD]\n"
	  "[-H 'Name: value']... [-o text|json] URL",
	  "where a request (http://HOST[:PORT]/PATH, https://HOST:PORT, tcp://HOST:PORT)\n"
	  "goes and why: the frontend, the route and its match, weights, TLS, endpoints,\n"
	  "kernel or shim; from a running agent's plan (-i) or from policy files (-f)" },
	{ "agent",
	  "(--policy DIR | --kube | --kubeconfig FILE [--context NAME]) [--policy DIR]\n"
	  "--cgroup PATH -i|--instance NAME [--node NAME] [-n NS] [--netns NAME]\n"
	  "[--max-frontends N] [--max-dests N] [--max-backends N] [--self-mark N]\n"
	  "[--ready-file PATH] [--shim ADDR] [--inbound] [--gateway]\n"
	  "[--gateway-labels K=V,...] [--ca DIR] [--trust-domain TD] [--cert-ttl DUR]\n"
	  "[--sni-form global|local] [--no-dns] [--dns-upstream ADDR] [--limit NAME=VALUE]...\n"
	  "[--admin ADDR] [--cluster NAME] [--access-log PATH|-]\n"
	  "[--xdp-dev IFNAME]... [--xdp-mode auto|native|generic] [--allow CIDR]...\n"
	  "[--guard-port N]... [--sockmap on|off] [--splice on|off]",
	  "load, attach and feed the datapath, run the shim; watch DIR and/or the\n"
	  "Kubernetes API (root)" },
	{ "apply", "-i|--instance NAME -f|--filename FILE|-",
	  "hand a policy file to a running agent (validated, then written into its DIR)" },
	{ "status", "-i|--instance NAME",
	  "the agent's state and counters, from its control socket" },
	{ "get", "frontends|routes|endpoints|stats -i|--instance NAME [-o|--output text|json]",
	  "read the pinned maps (works while the agent is down)" },
	{ "uninstall", "-i|--instance NAME", "remove every link, pin and map of an instance" },
	{ "sockmap", "-i|--instance NAME on|off",
	  "app <-> shim sockets joined in the kernel, for new connections" },
	{ "splice", "-i|--instance NAME on|off",
	  "gateway tunnels joined in the kernel, for new tunnels" },
	{ "cert", NULL,
	  "identity material in Istio's plug-in layout; mint writes a workload's key.pem,\n"
	  "cert.pem and cert-chain.pem (OFFSET e.g. -48h: valid from two days ago)" },
	{ "cert root", "--out DIR [--days N]", NULL },
	{ "cert intermediate", "--root DIR --out DIR --cluster NAME [--days N]", NULL },
	{ "cert mint",
	  "--ca DIR --ns NS --sa SA --out DIR [--trust-domain TD] [--ttl DUR]\n"
	  "[--valid-from OFFSET]",
	  NULL },
	{ "lab", NULL, "clusters of network namespaces on this machine (root)" },
	{ "lab up",
	  "[-f|--file LABFILE] [--cert-ttl DUR] [--sni-form global|local] [--no-guard]\n"
	  "[--sockmap|--no-sockmap] [--splice|--no-splice] [--limit NAME=VALUE]...",
	  NULL },
	{ "lab apply", "CLUSTER [-n NS] [-l SELECTOR] -f FILE|-", NULL },
	{ "lab exec", "CLUSTER NS/NAME -- CMD...", NULL },
	{ "lab wait", "CLUSTER", NULL },
	{ "lab env", "", NULL },
	{ "lab kubeconfig", "", NULL },
	{ "lab api", "start CLUSTER", NULL },
	{ "lab status", "[-o json]", NULL },
	{ "lab down", "", NULL },
	{ "version", "", "print the version and the map layout version" },
	{ "help", "[COMMAND]", "this text, or one command's" },
};

#define N_HELPS (sizeof(helps) / sizeof(helps[0]))

/* name is cmd, or a subcommand of it ("lab up" under "lab") */
static bool under(const char *name, const char *cmd)
{
	size_t n = strlen(cmd);

	return !strncmp(name, cmd, n) && (!name[n] || name[n] == ' ');
}

static void print_synopsis(FILE *f, const struct cli_help *h, const char *lead)
{
	const char *s = h->synopsis;
	size_t indent = strlen(lead) + strlen("ksteer ") + strlen(h->name) + 1;

	fprintf(f, "%sksteer %s%s", lead, h->name, *s ? " " : "");
	for (; *s; s++) {
		fputc(*s, f);
		if (*s == '\n')
			fprintf(f, "%*s", (int)indent, "");
	}
	fputc('\n', f);
}

static void print_summary(FILE *f, const char *s, int indent)
{
	fprintf(f, "%*s", indent, "");
	for (; *s; s++) {
		fputc(*s, f);
		if (*s == '\n')
			fprintf(f, "%*s", indent, "");
	}
	fputc('\n', f);
}

bool cli_has_help(const char *cmd)
{
	for (size_t i = 0; i < N_HELPS; i++)
		if (!strcmp(helps[i].name, cmd))
			return true;
	return false;
}

int cli_usage(const char *cmd, FILE *f)
{
	const struct cli_help *top = NULL;
	const char *lead = "Usage: ";

	for (size_t i = 0; i < N_HELPS; i++) {
		if (!under(helps[i].name, cmd))
			continue;
		if (helps[i].summary && !top)
			top = &helps[i];
		if (!helps[i].synopsis)
			continue;
		print_synopsis(f, &helps[i], lead);
		lead = "       ";
	}
	/* a subcommand's help ends with its command's summary */
	if (!top)
		for (size_t i = 0; i < N_HELPS; i++)
			if (helps[i].summary && under(cmd, helps[i].name))
				top = &helps[i];
	if (top)
		print_summary(f, top->summary, 0);
	if (f == stdout)
		fprintf(f, "See ksteer(1).\n");
	return f == stderr ? 2 : 0;
}

int cli_usage_all(FILE *f)
{
	fprintf(f, "Usage: ksteer [-v] COMMAND [ARGS]\n"
		   "       ksteer COMMAND -h|--help\n"
		   "       ksteer --version\n"
		   "\n"
		   "Commands:\n");
	for (size_t i = 0; i < N_HELPS; i++) {
		if (strchr(helps[i].name, ' '))
			continue;
		for (size_t k = i; k < N_HELPS; k++)
			if (helps[k].synopsis && under(helps[k].name, helps[i].name))
				print_synopsis(f, &helps[k], "  ");
		print_summary(f, helps[i].summary, 10);
	}
	fprintf(f, "\n-v before COMMAND logs at debug level. See ksteer(1).\n");
	return f == stderr ? 2 : 0;
}

int cli_instance_check(const char *instance)
{
	if (!*instance)
		goto bad;
	for (const char *q = instance; *q; q++)
		if (!isalnum((unsigned char)*q) && *q != '-' && *q != '_')
			goto bad;
	return 0;
bad:
	fprintf(stderr, "Error: --instance %s: letters, digits, '-' and '_' only (it names a bpffs "
			"directory)\n",
		instance);
	return -EINVAL;
}
