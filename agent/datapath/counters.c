// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The datapath's per-CPU counters, read and named once for the CLI and the agent. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../maps/ksteer_maps.h"
#include "counters.h"

#define C(e, n, fam, lab, val, h) [e] = { n, fam, lab, val, h }
const struct dp_counter dp_stat_counters[KS_STAT_MAX] = {
	C(KS_STAT_CONNECT_SEEN, "connect_seen", "connect", "result", "seen",
	  "TCP connects connect4/connect6 looked at, then what became of them"),
	C(KS_STAT_CONNECT_ROUTED, "connect_routed", "connect", "result", "routed", NULL),
	C(KS_STAT_CONNECT_SHIM, "connect_shim", "connect", "result", "shim", NULL),
	C(KS_STAT_CONNECT_NO_UPSTREAM, "connect_no_upstream", "connect", "result", "no_upstream",
	  NULL),
	C(KS_STAT_CONNECT_MISS, "connect_miss", "connect", "result", "miss", NULL),
	C(KS_STAT_CONNECT_SELF, "connect_self", "connect", "result", "self", NULL),
	C(KS_STAT_DNS_REDIRECTED, "dns_redirected", "dns_redirected", NULL, NULL,
	  "UDP/53 connects and sends sent to the agent's resolver"),
	C(KS_STAT_SOCKMAP_ADDED, "sockmap_added", "sockmap", "event", "added",
	  "sockops and sk_msg: sockets joined in ks_sockhash, messages redirected or sent "
	  "through TCP"),
	C(KS_STAT_SOCKMAP_REDIRECTED, "sockmap_redirected", "sockmap", "event", "redirected",
	  NULL),
	C(KS_STAT_SOCKMAP_PLAIN, "sockmap_plain", "sockmap", "event", "plain", NULL),
	C(KS_STAT_SPLICE_REDIRECTED, "splice_redirected", "splice", "event", "redirected",
	  "The gateway's sk_skb splice: segments redirected, dropped with the peer gone; "
	  "directions handed to the copy loop at the backlog bound, tunnels broken past it"),
	C(KS_STAT_SPLICE_DROPPED, "splice_dropped", "splice", "event", "dropped", NULL),
	C(KS_STAT_SPLICE_FALLBACK, "splice_fallback", "splice", "event", "fallback", NULL),
	C(KS_STAT_SPLICE_OVERFLOW, "splice_overflow", "splice", "event", "overflow", NULL),
};

const struct dp_counter dp_guard_counters[KS_GUARD_STAT_MAX] = {
	C(KS_GUARD_PASS_NOT_IP, "guard_pass_not_ip", "guard_packets", "reason", "pass_not_ip",
	  "Packets the XDP guard passed or dropped, by reason"),
	C(KS_GUARD_PASS_OTHER, "guard_pass_other", "guard_packets", "reason", "pass_other", NULL),
	C(KS_GUARD_PASS_ALLOWED, "guard_pass_allowed", "guard_packets", "reason", "pass_allowed",
	  NULL),
	C(KS_GUARD_PASS_FRAGMENT, "guard_pass_fragment", "guard_packets", "reason",
	  "pass_fragment", NULL),
	C(KS_GUARD_PASS_TRUNCATED, "guard_pass_truncated", "guard_packets", "reason",
	  "pass_truncated", NULL),
	C(KS_GUARD_DROP_DENIED, "guard_drop_denied", "guard_packets", "reason", "drop_denied",
	  NULL),
	C(KS_GUARD_DROP_FIRST_CUT, "guard_drop_first_cut", "guard_packets", "reason",
	  "drop_first_cut", NULL),
	C(KS_GUARD_DROP_LATER, "guard_drop_later", "guard_packets", "reason", "drop_later", NULL),
	C(KS_GUARD_DROP_OVERLAP, "guard_drop_overlap", "guard_packets", "reason", "drop_overlap",
	  NULL),
	C(KS_GUARD_DROP_EXT_CHAIN, "guard_drop_ext_chain", "guard_packets", "reason",
	  "drop_ext_chain", NULL),
};
#undef C

int dp_counters_read(int fd, uint32_t n, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *v;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint32_t s = 0; s < n; s++) {
		out[s] = 0;
		if (!bpf_map_lookup_elem(fd, &s, v))
			for (int k = 0; k < ncpu; k++)
				out[s] += v[k];
	}
	free(v);
	return 0;
}

int dp_counters_print(int fd, int guard, FILE *f)
{
	const struct dp_counter *c = guard ? dp_guard_counters : dp_stat_counters;
	uint32_t n = guard ? KS_GUARD_STAT_MAX : KS_STAT_MAX;
	uint64_t v[(int)KS_STAT_MAX > (int)KS_GUARD_STAT_MAX ? (int)KS_STAT_MAX : (int)KS_GUARD_STAT_MAX];
	int err = dp_counters_read(fd, n, v);

	if (err)
		return err;
	for (uint32_t i = 0; i < n; i++) {
		if (c[i].help)
			fprintf(f, "# HELP ksteer_%s_total %s.\n# TYPE ksteer_%s_total counter\n",
				c[i].family, c[i].help, c[i].family);
		if (c[i].label)
			fprintf(f, "ksteer_%s_total{%s=\"%s\"} %llu\n", c[i].family, c[i].label,
				c[i].value, (unsigned long long)v[i]);
		else
			fprintf(f, "ksteer_%s_total %llu\n", c[i].family, (unsigned long long)v[i]);
	}
	return 0;
}
