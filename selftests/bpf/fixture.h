/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every selftests/bpf program does before its first test: root, a
 * network namespace of its own with lo up, the cgroup v2 mount, and an
 * instance name bpft-PID so runs side by side keep to their own pins (and a
 * run killed before its teardown leaves pins the next run sweeps).
 */
#ifndef KSTEER_BPFTEST_FIXTURE_H
#define KSTEER_BPFTEST_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/datapath/datapath.h"

#define INSTANCE_PREFIX "bpft-"

/* A shell command; its failure named under the test's name. */
static inline int bpft_sh(const char *test, const char *cmd)
{
	int rc = system(cmd);

	if (rc)
		fprintf(stderr, "%s: `%s` exited %d\n", test, cmd, rc);
	return rc;
}

/* Pins of runs whose process is gone (killed before their teardown). */
static inline void bpft_sweep_dead_runs(void)
{
	DIR *d = opendir(KS_PIN_ROOT);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, INSTANCE_PREFIX, strlen(INSTANCE_PREFIX)) &&
		    kill(atoi(e->d_name + strlen(INSTANCE_PREFIX)), 0) && errno == ESRCH)
			dp_uninstall(e->d_name);
	closedir(d);
}

/*
 * Root, a fresh network namespace with lo up, the cgroup v2 mount in
 * cg_mount, this run's instance name in instance; 0, or -1 after saying why.
 */
static inline int bpft_env(const char *test, char *cg_mount, size_t mount_len, char *instance,
			   size_t instance_len)
{
	if (geteuid()) {
		fprintf(stderr, "%s needs root (BPF, cgroups, a network namespace)\n", test);
		return -1;
	}
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "%s: unshare(CLONE_NEWNET): %s\n", test, strerror(errno));
		return -1;
	}
	if (bpft_sh(test, "ip link set lo up"))
		return -1;
	if (cgroup2_mount(cg_mount, mount_len)) {
		fprintf(stderr, "%s: no cgroup v2 mount\n", test);
		return -1;
	}
	snprintf(instance, instance_len, INSTANCE_PREFIX "%d", (int)getpid());
	return 0;
}

#endif
