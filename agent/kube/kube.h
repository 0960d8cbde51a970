/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The Kubernetes API as a policy source: where the API is and how to
 * authenticate (config.c), the objects of each kind as the watch left them
 * (store.c), and the list+watch thread that hands complete snapshots to the
 * agent's loop (watch.c).
 */
#ifndef KSTEER_KUBE_H
#define KSTEER_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Documented limits (README "Kubernetes API"). */
#define KUBE_MAX_OBJECT_BYTES (1u << 20)     /* one object (etcd's own limit is 1.5 MiB) */
#define KUBE_MAX_LIST_BYTES (64u << 20)      /* one list response page */
#define KUBE_MAX_OBJECTS 50000u              /* per kind */
#define KUBE_MAX_CONFIG_BYTES (1u << 20)     /* a kubeconfig, a token, a CA file */
#define KUBE_LIST_PAGE 500                   /* ?limit= of a list page */
#define KUBE_CONNECT_TIMEOUT_MS 10000
#define KUBE_LIST_TIMEOUT_MS 60000           /* a whole list request */
#define KUBE_WATCH_SECONDS 300               /* ?timeoutSeconds= of a watch: this to twice it */
#define KUBE_WATCH_GRACE_MS 30000            /* a watch past timeoutSeconds + this is dead */
#define KUBE_BACKOFF_MIN_MS 250
#define KUBE_BACKOFF_MAX_MS 30000
#define KUBE_ABSENT_RETRY_MS 30000           /* a kind the server does not serve (404) */
#define KUBE_QUIET_MS 150                    /* a burst ends after this much quiet... */
#define KUBE_MAX_DELAY_MS 1000               /* ...or this long after its first change */
#define KUBE_MAX_CONNECTIONS 32

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* Where the API is and who we are; strings are malloc'd, blobs are PEM (decoded -data). */
struct kube_config {
	char *source; /* "kubeconfig FILE context NAME" or "in-cluster": for messages */
	char *server; /* https://host:port, no trailing slash */
	char *ca_file, *ca_pem;
	size_t ca_pem_len;
	char *cert_file, *cert_pem, *key_file, *key_pem;
	size_t cert_pem_len, key_pem_len;
	char *token;      /* a fixed token */
	char *token_file; /* re-read when it changes: projected tokens rotate */
	bool insecure;
};

/* Parses a kubeconfig (context NULL: its current-context); 0 or -errno after a message. */
int kube_config_load(struct kube_config *c, const char *file, const char *context);
/* The pod's service account: KUBERNETES_SERVICE_HOST/PORT and sa_dir/{token,ca.crt}. */
int kube_config_incluster(struct kube_config *c, const char *sa_dir);
void kube_config_free(struct kube_config *c);

/* ---- the kinds and their objects (store.c) ---- */

enum kube_kind {
	KK_NAMESPACE,
	KK_SERVICE,
	KK_POD,
	KK_ENDPOINT_SLICE,
	KK_SERVICE_ACCOUNT,
	KK_DEPLOYMENT,
	KK_SERVICE_ENTRY,
	KK_DESTINATION_RULE,
	KK_VIRTUAL_SERVICE,
	KK_GATEWAY,
	KK_WORKLOAD_ENTRY,
	KK_MAX,
};

struct kube_kind_info {
	const char *kind, *group, *plural;
	const char *versions[3]; /* tried in order while the server answers 404 */
};
extern const struct kube_kind_info kube_kinds[KK_MAX];

struct kube_store_ent;

/* One object as the loader reads it: a JSON document named "api:Kind ns/name". */
struct kube_obj {
	const char *name, *text;
	size_t len;
	struct kube_store_ent *ref; /* holds name and text */
};

/* Everything the API holds, for one policy load. */
struct kube_snap {
	struct kube_obj *objs;
	unsigned n, cap;
	uint64_t rv; /* every watched change up to this resourceVersion is in it (0: unknown) */
};
void kube_snap_free(struct kube_snap *s);

/* One kind's objects, keyed by namespace/name; entries are immutable and shared with snapshots. */
struct kube_store {
	enum kube_kind kind;
	const char *api_version; /* what the server serves it as */
	const char *node;        /* pods on it are counted apart */
	struct kube_store_ent **tab;
	unsigned cap, n, n_local;
	char rv[64]; /* the resourceVersion the next watch starts from */
	unsigned bookmarks;
};

enum kube_ev {
	KEV_NONE,     /* nothing changed (a BOOKMARK, a change in fields we drop) */
	KEV_CHANGED,  /* an object was added, changed or removed */
	KEV_RELIST,   /* 410 Gone: the resourceVersion is too old */
	KEV_ERROR,    /* an ERROR event, or one we cannot read: reconnect */
	KEV_OVERFLOW, /* over KUBE_MAX_OBJECTS or KUBE_MAX_OBJECT_BYTES */
};

void kube_store_init(struct kube_store *s, enum kube_kind kind, const char *api_version,
		     const char *node);
void kube_store_clear(struct kube_store *s);
/*
 * Adds a list response page's items (a staging store, see kube_store_replace); its
 * resourceVersion is where the watch starts, cont (may be "") the next page's token.
 */
enum kube_ev kube_store_list(struct kube_store *s, const char *body, size_t len, char *cont,
			     size_t contlen, char *err, size_t errlen);
/* Moves src's objects and resourceVersion into dst: KEV_CHANGED when they differ. */
enum kube_ev kube_store_replace(struct kube_store *dst, struct kube_store *src);
/* One watch event line {"type": ..., "object": ...}. */
enum kube_ev kube_store_event(struct kube_store *s, const char *line, size_t len, char *err,
			      size_t errlen);
/* Appends the store's objects to snap, sorted by namespace/name. */
void kube_store_snap(const struct kube_store *s, struct kube_snap *snap);

/* ---- bursts (store.c): when to hand a snapshot over ---- */

struct kube_burst {
	uint64_t first_ms, last_ms; /* 0: nothing pending */
};
void kube_burst_change(struct kube_burst *b, uint64_t now_ms);
/* ms until the snapshot is due (0: now), or -1 when nothing is pending. */
int64_t kube_burst_due(const struct kube_burst *b, uint64_t now_ms);

/* Jittered exponential backoff: attempt 0, 1, 2... -> ms in [d/2, d], d capped. */
uint32_t kube_backoff_ms(unsigned attempt, uint32_t rnd);

/* ---- the watch thread (watch.c) ---- */

struct kube_counters {
	uint64_t lists, list_pages, watches, relists, gone, reconnects, events, bookmarks,
		absent, errors, snapshots;
};

struct kube;

/* Starts the thread; *fd becomes readable when a snapshot is ready. 0 or -errno. */
int kube_start(struct kube **out, struct kube_config *cfg, const char *node, int *fd);
/* The newest snapshot not yet taken (caller frees), or NULL. */
struct kube_snap *kube_take(struct kube *k);
/* The agent's verdict on snapshot s, for status (and the resourceVersion it has handled). */
void kube_verdict(struct kube *k, const struct kube_snap *s, bool applied);
void kube_print_status(struct kube *k, FILE *f);
void kube_stop(struct kube *k);

#endif
