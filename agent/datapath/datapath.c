// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "datapath.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "../lib/log.h"
#include "ksteer_sock.skel.h"

const char *const dp_map_names[DP_MAPS] = {
	[DP_CONFIG] = "ks_config",   [DP_FRONTENDS] = "ks_frontends",
	[DP_DESTS] = "ks_dests",     [DP_BACKENDS] = "ks_backends",
	[DP_STATS] = "ks_stats",     [DP_ORIGDST] = "ks_origdst",
	[DP_FE_SLOTS] = "ks_fe_slots",  [DP_PEERS] = "ks_peers",
	[DP_FE_USED] = "ks_fe_used",
};

static const struct {
	const char *name;
	enum bpf_attach_type type;
} links[] = {
	{ "connect4", BPF_CGROUP_INET4_CONNECT },   { "connect6", BPF_CGROUP_INET6_CONNECT },
	{ "getpeer4", BPF_CGROUP_INET4_GETPEERNAME }, { "getpeer6", BPF_CGROUP_INET6_GETPEERNAME },
	{ "sockops", BPF_CGROUP_SOCK_OPS },
	{ "sendmsg4", BPF_CGROUP_UDP4_SENDMSG },    { "recvmsg4", BPF_CGROUP_UDP4_RECVMSG },
};

static struct bpf_program *link_prog(struct ksteer_sock *s, size_t i)
{
	struct bpf_program *progs[] = { s->progs.ksteer_connect4, s->progs.ksteer_connect6,
					s->progs.ksteer_getpeer4, s->progs.ksteer_getpeer6,
					s->progs.ksteer_sockops,  s->progs.ksteer_sendmsg4,
					s->progs.ksteer_recvmsg4 };

	return progs[i];
}

int dp_probe(void)
{
	static const struct {
		enum bpf_prog_type t;
		const char *what;
	} progs[] = {
		{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "BPF_PROG_TYPE_CGROUP_SOCK_ADDR (cgroup/connect4)" },
		{ BPF_PROG_TYPE_SOCK_OPS, "BPF_PROG_TYPE_SOCK_OPS (sockops)" },
	};
	static const struct {
		enum bpf_map_type t;
		const char *what;
	} maps[] = {
		{ BPF_MAP_TYPE_HASH, "BPF_MAP_TYPE_HASH" },
		{ BPF_MAP_TYPE_LRU_HASH, "BPF_MAP_TYPE_LRU_HASH" },
		{ BPF_MAP_TYPE_PERCPU_ARRAY, "BPF_MAP_TYPE_PERCPU_ARRAY" },
		{ BPF_MAP_TYPE_SK_STORAGE, "BPF_MAP_TYPE_SK_STORAGE (CONFIG_BPF_SYSCALL sk storage)" },
	};
	struct stat st;

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++)
		if (libbpf_probe_bpf_prog_type(progs[i].t, NULL) != 1) {
			pr_warn("Error: kernel lacks %s\n", progs[i].what);
			return -EOPNOTSUPP;
		}
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		if (libbpf_probe_bpf_map_type(maps[i].t, NULL) != 1) {
			pr_warn("Error: kernel lacks %s\n", maps[i].what);
			return -EOPNOTSUPP;
		}
	if (stat("/sys/kernel/btf/vmlinux", &st)) {
		pr_warn("Error: kernel lacks BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF)\n");
		return -EOPNOTSUPP;
	}
	return 0;
}

int cgroup2_mount(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	int err = -ENOENT;

	if (!f)
		return -errno;
	/* "36 25 0:31 / /sys/fs/cgroup/unified rw,... - cgroup2 cgroup2 rw" */
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - "), mnt[PATH_MAX], fstype[64];

		if (!sep || sscanf(sep + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		snprintf(buf, len, "%s", mnt);
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

int bpffs_ensure(void)
{
	struct statfs sf;

	if (!statfs("/sys/fs/bpf", &sf) && sf.f_type == BPF_FS_MAGIC)
		return 0;
	mkdir("/sys/fs/bpf", 0755);
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700")) {
		pr_warn("Error: mount bpffs on /sys/fs/bpf: %s\n", strerror(errno));
		return -errno;
	}
	pr_info("mounted bpffs on /sys/fs/bpf\n");
	return 0;
}

static int open_cgroup(const char *path)
{
	char mnt[PATH_MAX], full[PATH_MAX * 2];
	int fd;

	if (path[0] == '/' && !strncmp(path, "/sys/", 5)) {
		snprintf(full, sizeof(full), "%s", path);
	} else {
		if (cgroup2_mount(mnt, sizeof(mnt))) {
			pr_warn("Error: no cgroup2 mount found in /proc/self/mountinfo\n");
			return -ENOENT;
		}
		snprintf(full, sizeof(full), "%s/%s", mnt, path[0] == '/' ? path + 1 : path);
	}
	fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		pr_warn("Error: open cgroup %s: %s\n", full, strerror(errno));
	return fd < 0 ? -errno : fd;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && log_level < LOG_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static struct bpf_map *skel_map(struct ksteer_sock *s, enum dp_map m)
{
	struct bpf_map *maps[DP_MAPS] = {
		[DP_CONFIG] = s->maps.ks_config, [DP_FRONTENDS] = s->maps.ks_frontends,
		[DP_DESTS] = s->maps.ks_dests,   [DP_BACKENDS] = s->maps.ks_backends,
		[DP_STATS] = s->maps.ks_stats,   [DP_ORIGDST] = s->maps.ks_origdst,
		[DP_FE_SLOTS] = s->maps.ks_fe_slots, [DP_PEERS] = s->maps.ks_peers,
		[DP_FE_USED] = s->maps.ks_fe_used,
	};

	return maps[m];
}

static int pinned_max_entries(const char *path, uint32_t *max)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	int fd = bpf_obj_get(path), err;

	if (fd < 0)
		return -errno;
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (err)
		return err;
	*max = info.max_entries;
	return 0;
}

/* Pins of another map layout are refused, not adopted: their programs would read them wrong. */
static int check_layout(const char *pin_dir)
{
	char path[PATH_MAX + 32];
	struct bpf_map_info info = { 0 };
	uint32_t zero = 0, len = sizeof(info);
	struct ks_config cfg;
	int fd, err;

	/* layouts 1 and 2 named their maps ksteer_*: the name alone tells */
	snprintf(path, sizeof(path), "%s/ksteer_config", pin_dir);
	if (!access(path, F_OK)) {
		pr_warn("Error: pins in %s have map layout 2 or older (ksteer_* maps), this agent "
			"has %u: run 'ksteer uninstall' first\n",
			pin_dir, KS_LAYOUT_VERSION);
		return -EPROTO;
	}
	snprintf(path, sizeof(path), "%s/ks_config", pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	memset(&cfg, 0, sizeof(cfg));
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	/* a config of another size is another layout: not read into this one's struct */
	if (!err && info.value_size == sizeof(cfg) && bpf_map_lookup_elem(fd, &zero, &cfg))
		err = -errno;
	close(fd);
	if (err)
		return err;
	if (info.value_size != sizeof(cfg) ||
	    (cfg.layout_version && cfg.layout_version != KS_LAYOUT_VERSION)) {
		pr_warn("Error: pins in %s have another map layout (%u), this agent has %u: run "
			"'ksteer uninstall' first\n",
			pin_dir, cfg.layout_version, KS_LAYOUT_VERSION);
		return -EPROTO;
	}
	return 0;
}

/* The agent's own cgroup (cgroup v2), relative to the mount: "" when it is the root. */
static void self_cgroup(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "r");
	char line[PATH_MAX];

	buf[0] = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::/", 4)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(buf, len, "%s", line + 4);
		}
	if (f)
		fclose(f);
}

/* Detaches whatever sk_msg program the pinned sockhash carries. */
static void sockmap_detach(struct datapath *dp)
{
	int mfd = bpf_map__fd(dp->skel->maps.ks_sockhash);
	__u32 ids[4], n = 4;
	LIBBPF_OPTS(bpf_prog_query_opts, q, .prog_ids = ids, .prog_cnt = n);

	if (bpf_prog_query_opts(mfd, BPF_SK_MSG_VERDICT, &q))
		return;
	for (__u32 i = 0; i < q.prog_cnt; i++) {
		int pfd = bpf_prog_get_fd_by_id(ids[i]);

		if (pfd >= 0) {
			bpf_prog_detach2(pfd, mfd, BPF_SK_MSG_VERDICT);
			close(pfd);
		}
	}
}

/*
 * sockmap between apps and the shim: sk_msg on ks_sockhash, and sockops on the
 * agent's own cgroup for the shim's accepted sockets. Returns 1 when on.
 */
static uint32_t sockmap_setup(struct datapath *dp, const struct dp_opts *o)
{
	char cg[PATH_MAX], path[PATH_MAX + 64];
	struct bpf_link *l;
	int fd;

	snprintf(path, sizeof(path), "%s/link_sockops_self", dp->pin_dir);
	dp->sockmap = "off (--sockmap off)";
	if (!o->sockmap)
		goto off;
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SOCKHASH, NULL) != 1 ||
	    libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_MSG, NULL) != 1) {
		dp->sockmap = "off (the kernel lacks BPF_MAP_TYPE_SOCKHASH or BPF_PROG_TYPE_SK_MSG)";
		goto off;
	}
	self_cgroup(cg, sizeof(cg));
	if (!cg[0]) {
		dp->sockmap = "off (the agent runs in the root cgroup: it needs one of its own)";
		goto off;
	}
	if (bpf_prog_attach(bpf_program__fd(dp->skel->progs.ksteer_msg),
			    bpf_map__fd(dp->skel->maps.ks_sockhash), BPF_SK_MSG_VERDICT, 0)) {
		dp->sockmap = "off (attaching sk_msg failed)";
		goto off;
	}
	l = access(path, F_OK) ? NULL : bpf_link__open(path);
	if (l) {
		bpf_link__update_program(l, dp->skel->progs.ksteer_sockops);
		bpf_link__destroy(l);
	} else {
		fd = open_cgroup(cg);
		l = fd >= 0 ? bpf_program__attach_cgroup(dp->skel->progs.ksteer_sockops, fd) : NULL;
		if (fd >= 0)
			close(fd);
		if (!l || bpf_link__pin(l, path)) {
			bpf_link__destroy(l);
			sockmap_detach(dp);
			dp->sockmap = "off (attaching sockops to the agent's cgroup failed)";
			goto off;
		}
		bpf_link__destroy(l);
	}
	dp->sockmap = "on";
	return 1;
off:
	sockmap_detach(dp);
	unlink(path); /* the agent's own sockets are left alone */
	pr_info("sockmap %s\n", dp->sockmap);
	return 0;
}

/* The gateway's splice: an sk_skb stream verdict (no parser) on ks_splice. */
static void splice_setup(struct datapath *dp, const struct dp_opts *o)
{
	dp->splice_fd = dp->splice_peer_fd = -1;
	dp->splice = "off (--splice off)";
	if (!o->splice)
		return;
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_SKB, NULL) != 1) {
		dp->splice = "off (the kernel lacks BPF_PROG_TYPE_SK_SKB)";
		return;
	}
	if (bpf_prog_attach(bpf_program__fd(dp->skel->progs.ksteer_skb),
			    bpf_map__fd(dp->skel->maps.ks_splice), BPF_SK_SKB_STREAM_VERDICT, 0)) {
		dp->splice = "off (attaching the sk_skb stream verdict failed)";
		pr_warn("splice: attach sk_skb stream verdict: %s\n", strerror(errno));
		return;
	}
	dp->splice_fd = bpf_map__fd(dp->skel->maps.ks_splice);
	dp->splice_peer_fd = bpf_map__fd(dp->skel->maps.ks_splice_peer);
	dp->splice = "on";
}

int dp_set_sockmap(struct datapath *dp, bool on)
{
	struct ks_config cfg;
	uint32_t zero = 0;

	if (on && (!dp->sockmap || strcmp(dp->sockmap, "on")))
		return -EOPNOTSUPP;
	if (bpf_map_lookup_elem(dp->fds[DP_CONFIG], &zero, &cfg))
		return -errno;
	cfg.sockmap = on;
	return bpf_map_update_elem(dp->fds[DP_CONFIG], &zero, &cfg, BPF_ANY) ? -errno : 0;
}

int dp_open(struct datapath *dp, const struct dp_opts *o)
{
	struct ks_config cfg = { 0 };
	uint32_t zero = 0, sizes[DP_MAPS] = { 0 };
	int cg = -1, err;
	char path[PATH_MAX + 64];

	memset(dp, 0, sizeof(*dp));
	for (int i = 0; i < DP_MAPS; i++)
		dp->fds[i] = -1;
	dp->splice_fd = dp->splice_peer_fd = -1;
	libbpf_set_print(libbpf_print);
	err = dp_probe();
	if (err)
		return err;
	err = bpffs_ensure();
	if (err)
		return err;
	snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s/%s", KS_PIN_ROOT, o->instance);
	mkdir(KS_PIN_ROOT, 0700);
	if (mkdir(dp->pin_dir, 0700) && errno != EEXIST) {
		pr_warn("Error: mkdir %s: %s\n", dp->pin_dir, strerror(errno));
		return -errno;
	}
	err = check_layout(dp->pin_dir);
	if (err)
		return err;

	dp->skel = ksteer_sock__open();
	if (!dp->skel) {
		err = -errno;
		pr_warn("Error: open BPF object: %s\n", strerror(errno));
		return err;
	}
	/* ks_fe_slots, ks_fe_used and ks_peers keep their compiled sizes */
	sizes[DP_FRONTENDS] = (o->max_frontends ? o->max_frontends : KS_DEF_FRONTENDS) * KS_GENERATIONS;
	sizes[DP_DESTS] = (o->max_dests ? o->max_dests : KS_DEF_DESTS) * KS_GENERATIONS;
	sizes[DP_BACKENDS] = (o->max_backends ? o->max_backends : KS_DEF_BACKENDS) * KS_GENERATIONS;
	for (int i = 0; i < DP_MAPS; i++) {
		struct bpf_map *m = skel_map(dp->skel, (enum dp_map)i);
		uint32_t pinned = 0;

		snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, dp_map_names[i]);
		/*
		 * an existing pin is reused as it is: its size wins over the flags; the
		 * slot table, its bitmap and the peers ring are indexed by constants in
		 * the programs, so libbpf refuses a pin of another size (uninstall first)
		 */
		if (!pinned_max_entries(path, &pinned) && i != DP_FE_SLOTS && i != DP_FE_USED &&
		    i != DP_PEERS) {
			if (sizes[i] && sizes[i] != pinned)
				pr_info("%s: keeping the pinned size %u\n", dp_map_names[i], pinned);
			sizes[i] = pinned;
		}
		if (sizes[i])
			bpf_map__set_max_entries(m, sizes[i]);
		bpf_map__set_pin_path(m, path);
	}
	/* the sk storage map is private to the programs: pinned too, so all agents agree */
	snprintf(path, sizeof(path), "%s/ks_sock", dp->pin_dir);
	bpf_map__set_pin_path(dp->skel->maps.ks_sock, path);
	snprintf(path, sizeof(path), "%s/ks_sockhash", dp->pin_dir);
	bpf_map__set_pin_path(dp->skel->maps.ks_sockhash, path);

	/* fixed for this program's life: constants to the verifier */
	dp->skel->rodata->ks_knobs.self_mark = o->self_mark;
	dp->skel->rodata->ks_knobs.shim_addr = o->shim_addr;
	dp->skel->rodata->ks_knobs.shim_port = htons(o->shim_port);
	dp->skel->rodata->ks_knobs.dns_port = htons(o->dns_port);
	err = ksteer_sock__load(dp->skel);
	if (err) {
		pr_warn("Error: load BPF programs: %s\n", strerror(-err));
		goto fail;
	}
	for (int i = 0; i < DP_MAPS; i++) {
		dp->fds[i] = bpf_map__fd(skel_map(dp->skel, (enum dp_map)i));
		dp->max[i] = bpf_map__max_entries(skel_map(dp->skel, (enum dp_map)i));
	}

	/* config: keep the active generation of an adopted datapath */
	if (bpf_map_lookup_elem(dp->fds[DP_CONFIG], &zero, &cfg))
		memset(&cfg, 0, sizeof(cfg));
	cfg.layout_version = KS_LAYOUT_VERSION;
	cfg.sockmap = sockmap_setup(dp, o);
	splice_setup(dp, o);
	if (bpf_map_update_elem(dp->fds[DP_CONFIG], &zero, &cfg, BPF_ANY)) {
		err = -errno;
		pr_warn("Error: write ks_config: %s\n", strerror(errno));
		goto fail;
	}

	cg = open_cgroup(o->cgroup);
	if (cg < 0) {
		err = cg;
		goto fail;
	}
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		struct bpf_program *prog = link_prog(dp->skel, i);
		struct bpf_link *l;

		snprintf(path, sizeof(path), "%s/link_%s", dp->pin_dir, links[i].name);
		l = access(path, F_OK) ? NULL : bpf_link__open(path);
		if (l) {
			/* adopt: swap the program inside the running link, no gap, no detach */
			err = bpf_link__update_program(l, prog);
			bpf_link__destroy(l);
			if (err) {
				pr_warn("Error: update pinned link %s: %s\n", path, strerror(-err));
				goto fail;
			}
			dp->adopted = true;
			continue;
		}
		l = bpf_program__attach_cgroup(prog, cg);
		if (!l) {
			err = -errno;
			pr_warn("Error: attach %s to cgroup %s: %s\n", links[i].name, o->cgroup,
				strerror(errno));
			goto fail;
		}
		err = bpf_link__pin(l, path);
		bpf_link__destroy(l); /* the pin keeps it attached */
		if (err) {
			pr_warn("Error: pin %s: %s\n", path, strerror(-err));
			goto fail;
		}
	}
	close(cg);
	pr_info("datapath %s: %s, cgroup %s\n", o->instance,
		dp->adopted ? "adopted pinned links and maps" : "attached", o->cgroup);
	return 0;
fail:
	if (cg >= 0)
		close(cg);
	dp_close(dp);
	return err;
}

void dp_close(struct datapath *dp)
{
	for (int g = 0; g < KS_GENERATIONS; g++) {
		free(dp->slots_used[g]);
		dp->slots_used[g] = NULL;
		dp->n_slots_used[g] = 0;
	}
	ksteer_sock__destroy(dp->skel); /* links and maps stay: they are pinned */
	dp->skel = NULL;
}

/* Deletes every entry of generation gen from a (gen, ...)-keyed map. */
static int clear_generation(int fd, size_t key_size, uint32_t gen, uint32_t *left)
{
	unsigned char prev[64], next[64];
	bool have_prev = false;
	uint32_t kept = 0;

	while (!bpf_map_get_next_key(fd, have_prev ? prev : NULL, next)) {
		if (*(uint32_t *)next == gen) {
			/* prev survives, so the walk goes on from it */
			if (bpf_map_delete_elem(fd, next) && errno != ENOENT)
				return -errno;
			continue;
		}
		kept++;
		memcpy(prev, next, key_size);
		have_prev = true;
	}
	if (left)
		*left = kept;
	return 0;
}

static int write_entries(struct datapath *dp, enum dp_map m, const void *keys, const void *vals,
			 uint32_t n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	uint32_t count = n;

	if (!n)
		return 0;
	if (!bpf_map_update_batch(dp->fds[m], keys, vals, &count, &opts))
		return 0;
	if (errno == E2BIG || errno == ENOSPC) {
		pr_warn("Error: map %s is full (%u entries): raise its size\n", dp_map_names[m],
			dp->max[m]);
		return -ENOSPC;
	}
	pr_warn("Error: write %s: %s\n", dp_map_names[m], strerror(errno));
	return -errno;
}

/* Writes n entries of generation gen into an array map, from index gen * (max / 2). */
static int write_array(struct datapath *dp, enum dp_map m, uint32_t gen, uint32_t *keys,
		       const void *vals, uint32_t n)
{
	uint32_t base = gen * (dp->max[m] / KS_GENERATIONS);

	for (uint32_t i = 0; i < n; i++)
		keys[i] = base + i;
	return write_entries(dp, m, keys, vals, n);
}

/* Frees generation gen's slots: those its last image used, or all of them once per process. */
static int clear_slots(struct datapath *dp, uint32_t gen)
{
	uint32_t n = dp->slots_used[gen] ? dp->n_slots_used[gen] : KS_SLOTS;
	struct ks_fe_slot *zero = calloc(n ? n : 1, sizeof(*zero));
	uint32_t *keys = calloc(n ? n : 1, sizeof(*keys));
	int err = -ENOMEM;

	if (zero && keys) {
		for (uint32_t i = 0; i < n; i++)
			keys[i] = gen << KS_SLOT_SHIFT |
				  (dp->slots_used[gen] ? dp->slots_used[gen][i] : i);
		err = write_entries(dp, DP_FE_SLOTS, keys, zero, n);
	}
	free(zero);
	free(keys);
	return err;
}

/* Writes generation gen's ks_fe_used: the bits of the n slots in used[], every other clear. */
static int write_used(struct datapath *dp, uint32_t gen, const uint32_t *used, uint32_t n)
{
	uint64_t *words = calloc(KS_SLOT_WORDS, sizeof(*words));
	uint32_t *keys = calloc(KS_SLOT_WORDS, sizeof(*keys));
	int err = -ENOMEM;

	if (words && keys) {
		for (uint32_t i = 0; i < n; i++)
			words[used[i] / 64] |= 1ull << (used[i] % 64);
		err = write_array(dp, DP_FE_USED, gen, keys, words, KS_SLOT_WORDS);
	}
	free(words);
	free(keys);
	return err;
}

/*
 * Writes generation gen's ks_fe_slots from the image's placement: each placed
 * key with its frontend (fv, absolute) and first destination (dv, absolute),
 * KS_SLOT_OVERFLOW where the compiler marked a home of a key left out.
 */
static int write_slots(struct datapath *dp, uint32_t gen, const struct c_image *img,
		       const struct ks_frontend_key *fk, const struct ks_frontend *fv,
		       const struct ks_dest *dv)
{
	const uint32_t dcap = dp->max[DP_DESTS] / KS_GENERATIONS;
	uint32_t n = img->n_fes - img->n_overflow, w = 0;
	struct ks_fe_slot *sv = calloc(n ? n : 1, sizeof(*sv));
	uint32_t *keys = calloc(n ? n : 1, sizeof(*keys)), *used = calloc(n ? n : 1, sizeof(*used));
	int err;

	if (!sv || !keys || !used) {
		err = -ENOMEM;
		goto out;
	}
	err = clear_slots(dp, gen);
	if (err)
		goto out;
	free(dp->slots_used[gen]);
	dp->slots_used[gen] = NULL;
	for (uint32_t i = 0; i < img->n_fes && w < n; i++) {
		struct ks_fe_slot *s = &sv[w];
		uint32_t at = img->slots[i] & ~KS_SLOT_HOME_OF_OVERFLOW;

		if (img->slots[i] == KS_SLOT_NONE)
			continue;
		s->addr = fk[i].addr;
		s->port = fk[i].port;
		s->proto = fk[i].proto;
		s->state = KS_SLOT_USED |
			   (img->slots[i] & KS_SLOT_HOME_OF_OVERFLOW ? KS_SLOT_OVERFLOW : 0);
		s->fe = fv[i];
		if (fv[i].dest_count)
			s->first = dv[fv[i].dest_first - gen * dcap];
		used[w] = at;
		keys[w++] = gen << KS_SLOT_SHIFT | at;
	}
	err = write_entries(dp, DP_FE_SLOTS, keys, sv, w);
	if (!err)
		err = write_used(dp, gen, used, w);
	if (!err) {
		dp->slots_used[gen] = used;
		dp->n_slots_used[gen] = w;
		used = NULL;
	}
out:
	free(sv);
	free(keys);
	free(used);
	return err;
}

int dp_apply(struct datapath *dp, const struct c_image *img, uint32_t *gen_out)
{
	const uint32_t dcap = dp->max[DP_DESTS] / KS_GENERATIONS,
		       bcap = dp->max[DP_BACKENDS] / KS_GENERATIONS;
	struct ks_config cfg;
	uint32_t zero = 0, gen, used = 0, n_idx;
	struct ks_frontend_key *fk = NULL;
	struct ks_frontend *fv = NULL;
	struct ks_dest *dv = NULL;
	uint32_t *ik = NULL;
	int err;

	if (!img->slots)
		return -EINVAL;
	if (bpf_map_lookup_elem(dp->fds[DP_CONFIG], &zero, &cfg))
		return -errno;
	gen = cfg.active ^ 1;
	/* the inactive generation held the policy before last: nothing reads it now */
	err = clear_generation(dp->fds[DP_FRONTENDS], sizeof(struct ks_frontend_key), gen, &used);
	if (err)
		return err;
	{
		/* a policy may use half of a map: the other half holds the one still routing */
		const enum dp_map ms[] = { DP_FRONTENDS, DP_DESTS, DP_BACKENDS };
		const uint32_t need[] = { img->n_fes, img->n_dests, img->n_backends };

		for (int i = 0; i < 3; i++)
			if (need[i] > dp->max[ms[i]] / KS_GENERATIONS ||
			    (ms[i] == DP_FRONTENDS && used + need[i] > dp->max[ms[i]])) {
				pr_warn("Error: map %s is full: the policy needs %u entries, the map "
					"takes %u per generation\n",
					dp_map_names[ms[i]], need[i], dp->max[ms[i]] / KS_GENERATIONS);
				return -ENOSPC;
			}
	}
	n_idx = img->n_dests > img->n_backends ? img->n_dests : img->n_backends;
	fk = calloc(img->n_fes ? img->n_fes : 1, sizeof(*fk));
	fv = calloc(img->n_fes ? img->n_fes : 1, sizeof(*fv));
	dv = calloc(img->n_dests ? img->n_dests : 1, sizeof(*dv));
	ik = calloc(n_idx, sizeof(*ik));
	if (!fk || !fv || !dv || !ik) {
		err = -ENOMEM;
		goto out;
	}
	/* the maps hold absolute indices: this generation's half of each array */
	for (uint32_t i = 0; i < img->n_fes; i++) {
		fk[i] = img->fe_keys[i];
		fk[i].gen = gen;
		fv[i] = img->fes[i];
		fv[i].dest_first += gen * dcap;
	}
	for (uint32_t i = 0; i < img->n_dests; i++) {
		dv[i] = img->dests[i];
		dv[i].backend_first += gen * bcap;
	}
	/* endpoints first, frontends and their slots last: nothing points at what is not there */
	if ((err = write_array(dp, DP_BACKENDS, gen, ik, img->backends, img->n_backends)) ||
	    (err = write_array(dp, DP_DESTS, gen, ik, dv, img->n_dests)) ||
	    (err = write_entries(dp, DP_FRONTENDS, fk, fv, img->n_fes)) ||
	    (err = write_slots(dp, gen, img, fk, fv, dv)))
		goto out;
	/* the switch: one array update, so no connect sees half of two policies */
	cfg.active = gen;
	if (bpf_map_update_elem(dp->fds[DP_CONFIG], &zero, &cfg, BPF_ANY)) {
		err = -errno;
		goto out;
	}
	if (gen_out)
		*gen_out = gen;
	err = 0;
out:
	free(fk);
	free(fv);
	free(dv);
	free(ik);
	return err;
}

/* Every pin of an instance, of this layout and older: ks_* (ksteer_* up to 2) and link_* */
static int rm_pins(const char *dir)
{
	static const char *const prefixes[] = { "ks_", "ksteer_", "link_" };
	char path[PATH_MAX + 64];
	DIR *d = opendir(dir);
	struct dirent *e;
	int err = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)))
		for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
			if (strncmp(e->d_name, prefixes[i], strlen(prefixes[i])))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (unlink(path) && errno != ENOENT)
				err = -errno;
			break;
		}
	closedir(d);
	if (rmdir(dir) && errno != ENOENT)
		err = -errno;
	return err;
}

int dp_uninstall(const char *instance)
{
	char dir[PATH_MAX];
	int err;

	snprintf(dir, sizeof(dir), "%s/%s", KS_PIN_ROOT, instance);
	/* unpinning the last reference to a link detaches it */
	err = rm_pins(dir);
	rmdir(KS_PIN_ROOT); /* only when empty */
	return err;
}

int dp_open_pinned(const char *instance, int fds[DP_MAPS])
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	char path[PATH_MAX + 64];

	for (int i = 0; i < DP_MAPS; i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", KS_PIN_ROOT, instance, dp_map_names[i]);
		fds[i] = bpf_obj_get(path);
		if (fds[i] < 0) {
			int err = -errno;

			pr_warn("Error: open %s: %s (is instance %s installed?)\n", path,
				strerror(errno), instance);
			while (i--)
				close(fds[i]);
			return err;
		}
	}
	/* another layout's ks_config would not fit the struct its readers look it up into */
	if (bpf_obj_get_info_by_fd(fds[DP_CONFIG], &info, &len)) {
		int err = -errno;

		pr_warn("Error: read the info of ks_config of instance %s: %s\n", instance,
			strerror(errno));
		for (int i = 0; i < DP_MAPS; i++)
			close(fds[i]);
		return err;
	}
	if (info.value_size != sizeof(struct ks_config)) {
		pr_warn("Error: pins of instance %s have another map layout (ks_config of %u bytes, "
			"this ksteer has %zu): run 'ksteer uninstall -i %s' or the agent of that "
			"version\n",
			instance, info.value_size, sizeof(struct ks_config), instance);
		for (int i = 0; i < DP_MAPS; i++)
			close(fds[i]);
		return -EPROTO;
	}
	return 0;
}
