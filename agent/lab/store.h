/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The lab API server's object store: Kubernetes objects as JSON keyed by
 * resource, namespace and name, one resourceVersion counter, persisted with
 * an atomic rename on every change, and a bounded log of changes for watches.
 */
#ifndef KSTEER_LAB_STORE_H
#define KSTEER_LAB_STORE_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

/* Changes a watch can resume from; older resourceVersions get 410 Gone. */
#define STORE_LOG 4096

enum store_ev { EV_ADDED, EV_MODIFIED, EV_DELETED };

struct store_event {
	uint64_t rv;
	enum store_ev type;
	char *res; /* "GROUP/RESOURCE" */
	json_t *obj; /* as stored (for DELETED: as it was, with the deletion's rv) */
};

struct store {
	pthread_mutex_t mu;
	pthread_cond_t changed;
	char path[4096];
	json_t *objects; /* key "GROUP/RESOURCE/NS/NAME" -> object; never changed in place */
	json_t *meta; /* counters kept with the objects (e.g. nextVip) */
	uint64_t rv;
	uint64_t oldest; /* a watch from rv >= oldest sees every change since */
	struct store_event log[STORE_LOG];
	unsigned head, n;
};

/* Loads path (or starts empty): 0 or -errno. */
int store_open(struct store *s, const char *path);
void store_close(struct store *s);
void store_lock(struct store *s);
void store_unlock(struct store *s);

/* The rest with the lock held. Objects returned are borrowed: copy before changing. */
json_t *store_get(struct store *s, const char *res, const char *ns, const char *name);
/* Stores obj (the reference is taken), setting metadata.resourceVersion: 0 or -errno. */
int store_put(struct store *s, const char *res, const char *ns, const char *name, json_t *obj);
int store_delete(struct store *s, const char *res, const char *ns, const char *name);
/* A new array of the objects of res (in ns; NULL: all), sorted by namespace and name. */
json_t *store_list(struct store *s, const char *res, const char *ns);
/* Waits for a change after rv or until deadline (CLOCK_REALTIME ms). */
void store_wait(struct store *s, uint64_t rv, uint64_t deadline_ms);
int store_save(struct store *s);
uint64_t store_now_ms(void);

#endif
