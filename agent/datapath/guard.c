// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "guard.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "datapath.h"
#include "ksteer_xdp.skel.h"

int guard_cidr(const char *s, struct ks_lpm_key *k)
{
	char a[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	bool v6 = strchr(s, ':') != NULL;
	long len = v6 ? 128 : 32;
	char *end;

	memset(k, 0, sizeof(*k));
	snprintf(a, sizeof(a), "%.*s", slash ? (int)(slash - s) : (int)strlen(s), s);
	if (slash) {
		len = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || len < 0 || len > (v6 ? 128 : 32))
			return -EINVAL;
	}
	if (addr_parse(a, &k->addr))
		return -EINVAL;
	/* the trie is over 128 bits: an IPv4 prefix sits after ::ffff: */
	k->prefixlen = (uint32_t)(v6 ? len : 96 + len);
	return 0;
}

static const char *xdp_mode(int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query(ifindex, 0, &q))
		return "unknown";
	return q.attach_mode == XDP_ATTACHED_DRV   ? "native"
	       : q.attach_mode == XDP_ATTACHED_SKB ? "generic"
	       : q.attach_mode == XDP_ATTACHED_HW  ? "offload"
	       : q.attach_mode == XDP_ATTACHED_MULTI ? "multi"
						     : "none";
}

/*
 * A map pinned by an older guard with another layout (more counters, say)
 * cannot be reused: libbpf would refuse the load. Its pin goes and a new map
 * takes its place; the attached program keeps the old one until it is swapped.
 */
static void unpin_changed(const char *path, const struct bpf_map *m)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
	    (info.type != bpf_map__type(m) || info.key_size != bpf_map__key_size(m) ||
	     info.value_size != bpf_map__value_size(m) ||
	     info.max_entries != bpf_map__max_entries(m) ||
	     info.map_flags != bpf_map__map_flags(m))) {
		pr_info("XDP guard: %s has an older layout: replaced, its entries start anew\n",
			path);
		if (unlink(path))
			pr_warn("Error: unpin %s: %s\n", path, strerror(errno));
	}
	close(fd);
}

int guard_open(struct guard *g, const char *instance, const char *const *devs, unsigned n,
	       const char *mode)
{
	struct bpf_map *maps[3];
	const char *names[3] = { "ks_guard_allow", "ks_guard_ports", "ks_guard_stats" };
	char path[PATH_MAX + 64];
	int err;

	memset(g, 0, sizeof(*g));
	if (!n)
		return 0;
	if (n > GUARD_MAX_DEVS)
		return -E2BIG;
	err = bpffs_ensure();
	if (err)
		return err;
	snprintf(g->pin_dir, sizeof(g->pin_dir), "%s/%s", KS_PIN_ROOT, instance);
	mkdir(KS_PIN_ROOT, 0700);
	mkdir(g->pin_dir, 0700);
	g->skel = ksteer_xdp__open();
	if (!g->skel)
		return -errno;
	maps[0] = g->skel->maps.ks_guard_allow;
	maps[1] = g->skel->maps.ks_guard_ports;
	maps[2] = g->skel->maps.ks_guard_stats;
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", g->pin_dir, names[i]);
		unpin_changed(path, maps[i]);
		bpf_map__set_pin_path(maps[i], path); /* reused when there: counters survive */
	}
	err = ksteer_xdp__load(g->skel);
	if (err) {
		pr_warn("Error: load the XDP guard: %s (kernel lacks XDP or LPM trie maps?)\n",
			strerror(-err));
		goto fail;
	}
	for (unsigned i = 0; i < n; i++) {
		struct bpf_link *l;
		int ifindex = (int)if_nametoindex(devs[i]);

		if (!ifindex) {
			err = -ENODEV;
			pr_warn("Error: XDP guard: no device %s here\n", devs[i]);
			goto fail;
		}
		snprintf(path, sizeof(path), "%s/link_xdp_%s", g->pin_dir, devs[i]);
		l = access(path, F_OK) ? NULL : bpf_link__open(path);
		if (l) {
			/* an upgrade: the new program goes into the attached link, in one step */
			err = bpf_link__update_program(l, g->skel->progs.ksteer_guard);
			bpf_link__destroy(l);
			if (err) {
				pr_warn("Error: update pinned link %s: %s\n", path, strerror(-err));
				goto fail;
			}
		} else {
			/* auto: the kernel picks native XDP when the driver has it, else generic */
			LIBBPF_OPTS(bpf_link_create_opts, lo);
			int lfd;

			lo.flags = !strcmp(mode, "native")    ? XDP_FLAGS_DRV_MODE
				   : !strcmp(mode, "generic") ? XDP_FLAGS_SKB_MODE
							      : 0;
			lfd = bpf_link_create(bpf_program__fd(g->skel->progs.ksteer_guard), ifindex,
					      BPF_XDP, &lo);
			if (lfd < 0) {
				err = -errno;
				pr_warn("Error: attach the XDP guard to %s (%s mode): %s\n", devs[i],
					mode, strerror(errno));
				goto fail;
			}
			err = bpf_obj_pin(lfd, path) ? -errno : 0;
			close(lfd); /* the pin keeps it attached */
			if (err) {
				pr_warn("Error: pin %s: %s\n", path, strerror(-err));
				goto fail;
			}
		}
		snprintf(g->devs[i].name, sizeof(g->devs[i].name), "%s", devs[i]);
		g->devs[i].ifindex = ifindex;
		g->devs[i].mode = xdp_mode(ifindex);
		g->n_devs++;
		pr_info("XDP guard on %s (%s XDP)\n", devs[i], g->devs[i].mode);
	}
	return 0;
fail:
	guard_close(g);
	return err;
}

/* Replaces a map's keys with want[]: adds first, then deletes the stale ones. */
static int sync_keys(int fd, const void *want, unsigned n, size_t ksz)
{
	unsigned char key[64], next[64];
	uint32_t one = 1;
	void *cur = NULL;

	for (unsigned i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, (const char *)want + i * ksz, &one, BPF_ANY))
			return -errno;
	while (!bpf_map_get_next_key(fd, cur, next)) {
		bool keep = false;

		for (unsigned i = 0; i < n && !keep; i++)
			keep = !memcmp((const char *)want + i * ksz, next, ksz);
		memcpy(key, next, ksz);
		if (!keep && !bpf_map_delete_elem(fd, key))
			cur = NULL; /* the walk starts over: deleting may reorder it */
		else
			cur = key;
	}
	return 0;
}

int guard_apply(struct guard *g, const struct plan *plan, const struct guard_cfg *cfg)
{
	struct ks_lpm_key *nets;
	uint16_t ports[KS_GUARD_MAX_PORTS] = { 15443, 15008 };
	unsigned nn = 0, np = 2;
	const struct policy *p = plan ? plan->policy : NULL;
	int err;

	if (!g->skel)
		return 0;
	nets = calloc(KS_GUARD_MAX_NETS, sizeof(*nets));
	if (!nets)
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->n_allow && nn < KS_GUARD_MAX_NETS; i++)
		if (!guard_cidr(cfg->allow[i], &nets[nn]))
			nn++;
	for (unsigned i = 0; i < cfg->n_ports && np < KS_GUARD_MAX_PORTS; i++)
		ports[np++] = cfg->ports[i];
	for (uint32_t i = 0; p && i < p->n; i++) {
		const struct resource *r = p->res[i];

		if (r->kind == K_GATEWAY && r->spec) {
			const struct gateway *gw = r->spec;

			for (uint32_t k = 0; k < gw->servers.n && np < KS_GUARD_MAX_PORTS; k++)
				if (server_auto_passthrough(&gw->servers.v[k]))
					ports[np++] = (uint16_t)gw->servers.v[k].port->number;
		}
		if (r->kind != K_MESH_NETWORKS)
			continue;
		for (uint32_t k = 0; k < r->networks.n; k++) {
			const struct mesh_network *mn = r->networks.v[k].o;

			for (uint32_t e = 0; mn && e < mn->endpoints.n && nn < KS_GUARD_MAX_NETS; e++)
				if (mn->endpoints.v[e].fromCidr &&
				    !guard_cidr(mn->endpoints.v[e].fromCidr, &nets[nn]))
					nn++;
			for (uint32_t e = 0; mn && e < mn->gateways.n && nn < KS_GUARD_MAX_NETS; e++)
				if (mn->gateways.v[e].address &&
				    !guard_cidr(mn->gateways.v[e].address, &nets[nn]))
					nn++;
		}
	}
	err = sync_keys(bpf_map__fd(g->skel->maps.ks_guard_allow), nets, nn, sizeof(*nets));
	if (!err)
		err = sync_keys(bpf_map__fd(g->skel->maps.ks_guard_ports), ports, np,
				sizeof(ports[0]));
	free(nets);
	if (err) {
		pr_warn("Error: XDP guard maps: %s\n", strerror(-err));
		return err;
	}
	if (!nn && (g->n_allowed || !g->n_ports))
		pr_warn("XDP guard: no allowed networks (meshNetworks fromCidr, gateways, "
			"--allow): the mesh ports are closed to every source\n");
	g->n_allowed = nn;
	g->n_ports = np;
	return 0;
}

void guard_close(struct guard *g)
{
	ksteer_xdp__destroy(g->skel); /* links and maps stay pinned */
	g->skel = NULL;
}
