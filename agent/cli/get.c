// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `ksteer get`: reads the pinned maps; works while the agent is down. */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../datapath/counters.h"
#include "../datapath/datapath.h"
#include "cli.h"

/* A per-CPU counter array, summed: into j, and printed unless out is json. */
static void add_counters(json_t *j, int fd, const struct dp_counter *c, uint32_t n,
			 const char *out)
{
	uint64_t v[(int)KS_STAT_MAX > (int)KS_GUARD_STAT_MAX ? (int)KS_STAT_MAX : (int)KS_GUARD_STAT_MAX] = {0};

	dp_counters_read(fd, n, v);
	for (uint32_t s = 0; s < n; s++) {
		json_object_set_new(j, c[s].name, json_integer((json_int_t)v[s]));
		if (strcmp(out, "json"))
			printf("%-22s %llu\n", c[s].name, (unsigned long long)v[s]);
	}
}

static json_t *frontend_json(int fds[DP_MAPS], const struct ks_frontend_key *k,
			     const struct ks_frontend *f, bool with_backends)
{
	char a[INET6_ADDRSTRLEN];
	json_t *j = json_object(), *dests = json_array();
	uint32_t prev = 0;

	json_object_set_new(j, "address", json_string(addr_str(&k->addr, a, sizeof(a))));
	json_object_set_new(j, "port", json_integer(ntohs(k->port)));
	json_object_set_new(j, "protocol", json_string(k->proto == 17 ? "udp" : "tcp"));
	json_object_set_new(j, "id", json_integer(f->id));
	json_object_set_new(j, "datapath",
			    json_string(f->flags & KS_FE_SHIM	       ? "shim"
					: f->flags & KS_FE_NO_UPSTREAM ? "no-upstream"
								       : "kernel"));
	for (uint32_t i = 0; i < f->dest_count; i++) {
		uint32_t dk = f->dest_first + i; /* absolute: the generation's half of the array */
		struct ks_dest d;
		json_t *jd, *bes;

		if (bpf_map_lookup_elem(fds[DP_DESTS], &dk, &d))
			continue;
		jd = json_object();
		json_object_set_new(jd, "weight", json_integer(d.weight_cum - prev));
		json_object_set_new(jd, "percent",
				    json_real(f->weight_total ? 100.0 * (d.weight_cum - prev) /
								       f->weight_total
							      : 0));
		prev = d.weight_cum;
		json_object_set_new(jd, "backends", bes = json_array());
		for (uint32_t b = 0; with_backends && b < d.backend_count; b++) {
			uint32_t bk = d.backend_first + b;
			struct ks_backend be;
			json_t *jb;

			if (bpf_map_lookup_elem(fds[DP_BACKENDS], &bk, &be))
				continue;
			jb = json_object();
			json_object_set_new(jb, "address",
					    json_string(addr_str(&be.addr, a, sizeof(a))));
			json_object_set_new(jb, "port", json_integer(ntohs(be.port)));
			json_array_append_new(bes, jb);
		}
		json_array_append_new(dests, jd);
	}
	json_object_set_new(j, "destinations", dests);
	return j;
}

static void print_text(const char *what, json_t *list)
{
	size_t i, k;
	json_t *fe, *d, *b;

	json_array_foreach(list, i, fe)
	{
		const char *addr = json_string_value(json_object_get(fe, "address"));

		printf("%s%s%s:%lld/%s  %s\n", strchr(addr, ':') ? "[" : "", addr,
		       strchr(addr, ':') ? "]" : "",
		       (long long)json_integer_value(json_object_get(fe, "port")),
		       json_string_value(json_object_get(fe, "protocol")),
		       json_string_value(json_object_get(fe, "datapath")));
		if (!strcmp(what, "frontends"))
			continue;
		json_array_foreach(json_object_get(fe, "destinations"), k, d)
		{
			size_t m;

			printf("  %6.1f%%", json_real_value(json_object_get(d, "percent")));
			if (!json_array_size(json_object_get(d, "backends")))
				printf("  %s", !strcmp(what, "routes") ? "" : "(no backends)");
			json_array_foreach(json_object_get(d, "backends"), m, b)
			{
				const char *ba = json_string_value(json_object_get(b, "address"));

				printf("  %s%s%s:%lld", strchr(ba, ':') ? "[" : "", ba,
				       strchr(ba, ':') ? "]" : "",
				       (long long)json_integer_value(json_object_get(b, "port")));
			}
			printf("\n");
		}
	}
}

int cmd_get(int argc, char **argv)
{
	const char *instance = NULL, *out = "text", *what;
	int fds[DP_MAPS], c, rc = 1;
	struct ks_config cfg;
	uint32_t zero = 0;
	json_t *list;

	static const struct option opts[] = {
		{ "instance", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};

	/* the options before or after what to get: get -i NAME stats, get stats -i NAME */
	optind = 1;
	while ((c = getopt_long(argc, argv, "i:o:", opts, NULL)) != -1) {
		if (c == 'i')
			instance = optarg;
		else if (c == 'o' && (!strcmp(optarg, "text") || !strcmp(optarg, "json")))
			out = optarg;
		else
			return cli_usage("get", stderr);
	}
	what = optind == argc - 1 ? argv[optind] : "";
	if (!instance || (strcmp(what, "frontends") && strcmp(what, "routes") &&
			  strcmp(what, "endpoints") && strcmp(what, "stats")))
		return cli_usage("get", stderr);
	if (cli_instance_check(instance))
		return 2;
	if (dp_open_pinned(instance, fds))
		return 1;
	if (bpf_map_lookup_elem(fds[DP_CONFIG], &zero, &cfg)) {
		fprintf(stderr, "Error: read ks_config: %s\n", strerror(errno));
		goto out;
	}
	if (!strcmp(what, "stats")) {
		json_t *j = json_object();

		add_counters(j, fds[DP_STATS], dp_stat_counters, KS_STAT_MAX, out);
		json_object_set_new(j, "generation", json_integer(cfg.active));
		{
			/* the XDP guard's counters, when this instance has one */
			char path[PATH_MAX];
			int gfd;

			snprintf(path, sizeof(path), "%s/%s/ks_guard_stats", KS_PIN_ROOT, instance);
			gfd = bpf_obj_get(path);
			if (gfd >= 0) {
				add_counters(j, gfd, dp_guard_counters, KS_GUARD_STAT_MAX, out);
				close(gfd);
			}
		}
		if (!strcmp(out, "json")) {
			json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			printf("\n");
		}
		json_decref(j);
		rc = 0;
		goto out;
	}
	list = json_array();
	{
		struct ks_frontend_key k, next, *prev = NULL;

		while (!bpf_map_get_next_key(fds[DP_FRONTENDS], prev, &next)) {
			struct ks_frontend f;

			k = next;
			prev = &k;
			if (k.gen != cfg.active || bpf_map_lookup_elem(fds[DP_FRONTENDS], &k, &f))
				continue;
			json_array_append_new(list, frontend_json(fds, &k, &f,
								  strcmp(what, "routes") != 0));
		}
	}
	if (!strcmp(out, "json")) {
		json_t *root = json_object();

		json_object_set_new(root, "generation", json_integer(cfg.active));
		json_object_set_new(root, what, list);
		json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
		json_decref(root);
	} else {
		print_text(what, list);
		json_decref(list);
	}
	rc = 0;
out:
	for (int i = 0; i < DP_MAPS; i++)
		close(fds[i]);
	return rc;
}
