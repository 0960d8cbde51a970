/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef KSTEER_CLI_H
#define KSTEER_CLI_H

#include <stddef.h>

/* One request to an agent's control socket; reply without its OK/ERROR line (caller frees). */
int ctl_call(const char *instance, const char *head, const char *body, size_t len,
	     char **reply);
int cmd_agent(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_uninstall(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_cert(int argc, char **argv);
int cmd_switch(int argc, char **argv);

#endif
