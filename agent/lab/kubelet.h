/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The lab's kubelet for the pods whose container runs `ksteer` (the DaemonSet
 * ksteer-node and the Deployment ksteer-eastwestgateway of manifests/deploy):
 * their command, args and env as Kubernetes makes them, their volumes in a
 * private mount namespace, and kubelet's restart back-off.
 */
#ifndef KSTEER_LAB_KUBELET_H
#define KSTEER_LAB_KUBELET_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "store.h"

/* restartPolicy Always: 10 s doubling to 5 min, reset after 10 min of running (kubelet's) */
#define KUBELET_BACKOFF_MIN 10
#define KUBELET_BACKOFF_MAX 300
#define KUBELET_BACKOFF_RESET 600

struct kubelet_pod {
	const char *cluster, *ns, *name, *node, *host_ip, *pod_ip;
	json_t *labels, *annotations;
	int api_port;
	const char *pod_dir; /* the pod's files: volumes, service account, overlays */
	const char *exe; /* the binary a container's `ksteer` is */
	const char *cgroup; /* absolute: the cgroup the container runs in */
	const char *log;
	json_t *extra_args; /* appended after the container's args (the lab's departure) */
	json_t *extra_env;  /* NAME=VALUE strings appended to its env (lab up's KSTEER_*) */
};

/* A pod the lab's kubelet runs: a container whose command is `ksteer`. */
bool kubelet_runs(json_t *spec);
/*
 * Materializes the volumes and builds what starts the (first) container: a JSON
 * {exe, argv, env, cgroup, log, overlays, binds, ro}. With the store locked.
 * NULL and err set when the pod cannot start (a ConfigMap or Secret missing...).
 */
json_t *kubelet_launch(struct store *st, const struct kubelet_pod *p, json_t *spec, char *err,
		       size_t len);
/* Starts a launch: the child in its cgroup, own mount namespace, then exec. */
pid_t kubelet_spawn(json_t *launch);
/* Seconds to wait before the next start after an exit (prev: the last wait, 0 at first). */
int kubelet_backoff(int prev, long ran_seconds);

#endif
