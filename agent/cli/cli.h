/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef KSTEER_CLI_H
#define KSTEER_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* COMMAND's usage ("lab up" for a subcommand): on stdout returns 0, on stderr 2 (usage error). */
int cli_usage(const char *cmd, FILE *f);
/* Every command's usage, for `ksteer --help`. */
int cli_usage_all(FILE *f);
bool cli_has_help(const char *cmd);
/* 0 when an instance name is safe as a bpffs directory and socket name; else says why. */
int cli_instance_check(const char *instance);

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
