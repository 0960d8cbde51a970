/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The netns lab: clusters of nodes and pods on one machine, like kind without containers. */
#ifndef KSTEER_LAB_H
#define KSTEER_LAB_H

#define LAB_DIR "/run/ksteer-lab"
#define LAB_CGROUP "ksteer-lab" /* under the cgroup2 mount */
/* lab apply and lab wait: how long the agents may take to handle the API's changes */
#define LAB_WAIT_MS 10000

int lab_serve(int argc, char **argv);
int cmd_lab(int argc, char **argv);

struct store;
/* In a cluster's API server: the kubelet's loop (restarts, readiness) over its ksteer pods. */
int lab_kubelet_start(struct store *st, const char *cluster);

#endif
