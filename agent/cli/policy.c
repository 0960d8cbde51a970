// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The policy files a command compiles (check, explain -f): their options and their plan. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_policy_opt(struct cli_policy *in, int c, const char *arg)
{
	if (c == 'n') {
		in->ns = arg;
	} else if (in->npaths == in->max) {
		fprintf(stderr, "Error: too many -f\n");
		return -E2BIG;
	} else {
		in->paths[in->npaths++] = arg;
	}
	return 0;
}

int cli_compile(struct cli_compiled *out, const struct cli_policy *in, bool strict)
{
	memset(out, 0, sizeof(*out));
	policy_init(&out->policy, &out->diag, in->ns);
	for (int i = 0; i < in->npaths; i++)
		policy_load_path(&out->policy, in->paths[i]);
	policy_validate(&out->policy);
	if (!out->diag.errors)
		plan_compile(&out->plan, &out->policy, &out->diag);
	if (strict)
		diag_promote(&out->diag);
	diag_print(&out->diag, stderr);
	return out->diag.errors ? -EINVAL : 0;
}

void cli_compiled_free(struct cli_compiled *out)
{
	plan_free(&out->plan);
	policy_free(&out->policy);
	diag_free(&out->diag);
}
