// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ksteer explain: where a request goes and why, asked of a running agent
 * (-i: the plan it routes by now) or of policy files (-f: what they would do).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shim/explain.h"
#include "cli.h"

/* "Name: value" as curl's -H takes it; the name is kept, the value trimmed. */
static int header_add(struct explain_req *rq, char *arg)
{
	char *colon = strchr(arg, ':'), *v;

	if (!colon || colon == arg || rq->n_headers == EXPLAIN_MAX_HEADERS) {
		fprintf(stderr, "Error: -H \"%s\": give \"Name: value\" (at most %d)\n", arg,
			EXPLAIN_MAX_HEADERS);
		return -EINVAL;
	}
	*colon = 0;
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	rq->headers[rq->n_headers].name = arg;
	rq->headers[rq->n_headers++].value = v;
	return 0;
}

/* The plan of some policy files, as `ksteer check` compiles it: 0 or 1 (invalid). */
static int explain_files(const struct cli_policy *in, const struct explain_req *rq, json_t **e,
			 char *err, size_t len)
{
	struct cli_compiled cc;

	if (cli_compile(&cc, in, false))
		snprintf(err, len, "%u error(s) in the policy: nothing to explain", cc.diag.errors);
	else
		*e = explain(&cc.plan, rq, err, len);
	cli_compiled_free(&cc);
	return *e ? 0 : 1;
}

static int explain_agent(const char *instance, const struct explain_req *rq, json_t **e)
{
	json_t *j = explain_req_json(rq);
	char *body = json_dumps(j, JSON_COMPACT), *reply = NULL;
	int err = -ENOMEM;

	json_decref(j);
	if (body) {
		err = ctl_call(instance, "explain\n", body, strlen(body), &reply);
		if (err && reply)
			fputs(reply, stderr);
		else if (!err && !(*e = json_loads(reply, 0, NULL)))
			fprintf(stderr, "Error: the agent's answer is not JSON\n");
	}
	free(body);
	free(reply);
	return *e ? 0 : 1;
}

int cmd_explain(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "instance", required_argument, NULL, 'i' }, { "filename", required_argument, NULL, 'f' },
		{ "namespace", required_argument, NULL, 'n' }, { "pod", required_argument, NULL, 'p' },
		{ "request", required_argument, NULL, 'X' },  { "header", required_argument, NULL, 'H' },
		{ "output", required_argument, NULL, 'o' },    { NULL, 0, NULL, 0 },
	};
	const char *instance = NULL, *out = "text", *paths[64];
	struct cli_policy in = { .paths = paths, .max = 64 };
	struct explain_req rq;
	char err[512] = "";
	json_t *e = NULL;
	int c, rc;

	memset(&rq, 0, sizeof(rq));
	optind = 1;
	while ((c = getopt_long(argc, argv, "i:f:n:p:X:H:o:", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			instance = optarg;
			break;
		case 'f':
		case 'n':
			if (cli_policy_opt(&in, c, optarg))
				return 2;
			break;
		case 'p':
			rq.pod = optarg;
			break;
		case 'X':
			rq.method = optarg;
			break;
		case 'H':
			if (header_add(&rq, optarg))
				return 2;
			break;
		case 'o':
			out = optarg;
			if (strcmp(out, "text") && strcmp(out, "json"))
				return cli_usage("explain", stderr);
			break;
		default:
			return cli_usage("explain", stderr);
		}
	}
	if (optind != argc - 1 || !instance == !in.npaths) {
		fprintf(stderr, "Error: give one URL and either -i NAME or -f PATH...\n");
		return cli_usage("explain", stderr);
	}
	if (instance && cli_instance_check(instance))
		return 2;
	rq.url = argv[optind];
	if (instance) {
		rc = explain_agent(instance, &rq, &e);
	} else {
		rc = explain_files(&in, &rq, &e, err, sizeof(err));
		if (rc)
			fprintf(stderr, "Error: %s\n", err);
	}
	if (rc)
		return 1;
	if (!strcmp(out, "json")) {
		json_dumpf(e, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	} else {
		explain_print_text(e, stdout);
	}
	json_decref(e);
	return 0;
}
