/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef KSTEER_CLI_H
#define KSTEER_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "../compile/compile.h"
#include "../policy/policy.h"

/* COMMAND's usage ("lab up" for a subcommand): on stdout returns 0, on stderr 2 (usage error). */
int cli_usage(const char *cmd, FILE *f);
/* Every command's usage, for `ksteer --help`. */
int cli_usage_all(FILE *f);
bool cli_has_help(const char *cmd);
/* 0 when an instance name is safe as a bpffs directory and socket name; else says why. */
int cli_instance_check(const char *instance);

/* The policy files a command compiles: -f PATH... (at most max, into the caller's paths), -n NS. */
struct cli_policy {
	const char *ns;
	const char **paths;
	int npaths, max;
};
/* -n NS or -f PATH (c says which), as check and explain take them: 0, or -E2BIG past max (said). */
int cli_policy_opt(struct cli_policy *in, int c, const char *arg);

/* What `ksteer check` makes of policy files; plan is compiled when diag.errors is 0. */
struct cli_compiled {
	struct diag diag;
	struct policy policy; /* the plan points into it */
	struct plan plan;
};
/* Loads, validates and compiles in's paths, warnings made errors when strict, and prints the
 * diagnostics on stderr: 0, or -EINVAL when there are errors. cli_compiled_free either way. */
int cli_compile(struct cli_compiled *out, const struct cli_policy *in, bool strict);
void cli_compiled_free(struct cli_compiled *out);

/* One request to an agent's control socket; reply without its OK/ERROR line (caller frees). */
int ctl_call(const char *instance, const char *head, const char *body, size_t len,
	     char **reply);
int cmd_agent(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_uninstall(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_cert(int argc, char **argv);
int cmd_switch(int argc, char **argv);

#endif
