// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One kind's objects as list and watch left them, and the snapshots made of
 * them. An object is kept as the JSON document the policy loader reads, with
 * what routing never reads dropped (managedFields, resourceVersion, status
 * but a pod's addresses), so a change to those alone makes no new snapshot.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "kube.h"

const struct kube_kind_info kube_kinds[KK_MAX] = {
	[KK_NAMESPACE] = { "Namespace", "", "namespaces", { "v1" } },
	[KK_SERVICE] = { "Service", "", "services", { "v1" } },
	[KK_POD] = { "Pod", "", "pods", { "v1" } },
	[KK_ENDPOINT_SLICE] = { "EndpointSlice", "discovery.k8s.io", "endpointslices", { "v1" } },
	[KK_SERVICE_ACCOUNT] = { "ServiceAccount", "", "serviceaccounts", { "v1" } },
	[KK_DEPLOYMENT] = { "Deployment", "apps", "deployments", { "v1" } },
	/* Istio serves v1 since 1.22; older control planes stop at v1beta1 or v1alpha3 */
	[KK_SERVICE_ENTRY] = { "ServiceEntry", "networking.istio.io", "serviceentries",
			       { "v1", "v1beta1", "v1alpha3" } },
	[KK_DESTINATION_RULE] = { "DestinationRule", "networking.istio.io", "destinationrules",
				  { "v1", "v1beta1", "v1alpha3" } },
	[KK_VIRTUAL_SERVICE] = { "VirtualService", "networking.istio.io", "virtualservices",
				 { "v1", "v1beta1", "v1alpha3" } },
	[KK_GATEWAY] = { "Gateway", "networking.istio.io", "gateways",
			 { "v1", "v1beta1", "v1alpha3" } },
	[KK_WORKLOAD_ENTRY] = { "WorkloadEntry", "networking.istio.io", "workloadentries",
				{ "v1", "v1beta1", "v1alpha3" } },
};

struct kube_store_ent {
	struct kube_store_ent *next;
	unsigned refs; /* the store and each snapshot holding it; atomic */
	bool local;    /* a pod on this node */
	char *key;     /* namespace/name */
	char *name;    /* as the loader names it in messages */
	char *text;
	size_t len;
};

static void ent_put(struct kube_store_ent *e)
{
	if (e && __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		free(e->key);
		free(e->name);
		free(e->text);
		free(e);
	}
}

void kube_snap_free(struct kube_snap *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->n; i++)
		ent_put(s->objs[i].ref);
	free(s->objs);
	free(s);
}

static uint32_t hash_key(const char *k)
{
	uint32_t h = 2166136261u;

	while (*k)
		h = (h ^ (unsigned char)*k++) * 16777619u;
	return h;
}

void kube_store_init(struct kube_store *s, enum kube_kind kind, const char *api_version,
		     const char *node)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->api_version = api_version;
	s->node = node;
}

void kube_store_clear(struct kube_store *s)
{
	for (unsigned i = 0; i < s->cap; i++)
		for (struct kube_store_ent *e = s->tab[i], *nx; e; e = nx) {
			nx = e->next;
			ent_put(e);
		}
	free(s->tab);
	s->tab = NULL;
	s->cap = s->n = s->n_local = 0;
	s->rv[0] = 0;
}

static struct kube_store_ent **ent_find(const struct kube_store *s, const char *key)
{
	struct kube_store_ent **pp;

	if (!s->cap)
		return NULL;
	for (pp = &s->tab[hash_key(key) & (s->cap - 1)]; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->key, key))
			return pp;
	return NULL;
}

static void ent_unlink(struct kube_store *s, struct kube_store_ent **pp)
{
	struct kube_store_ent *e = *pp;

	*pp = e->next;
	s->n--;
	s->n_local -= e->local;
	ent_put(e);
}

static int grow(struct kube_store *s)
{
	unsigned cap = s->cap ? s->cap * 2 : 64;
	struct kube_store_ent **tab = calloc(cap, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (unsigned i = 0; i < s->cap; i++)
		for (struct kube_store_ent *e = s->tab[i], *nx; e; e = nx) {
			nx = e->next;
			e->next = tab[hash_key(e->key) & (cap - 1)];
			tab[hash_key(e->key) & (cap - 1)] = e;
		}
	free(s->tab);
	s->tab = tab;
	s->cap = cap;
	return 0;
}

/* Puts e in place of an object with its key: KEV_NONE when the text is the same. */
static enum kube_ev ent_insert(struct kube_store *s, struct kube_store_ent *e)
{
	struct kube_store_ent **pp = ent_find(s, e->key);

	if (pp) {
		if ((*pp)->len == e->len && !memcmp((*pp)->text, e->text, e->len)) {
			ent_put(e);
			return KEV_NONE;
		}
		e->next = (*pp)->next;
		s->n_local += e->local;
		s->n_local -= (*pp)->local;
		ent_put(*pp);
		*pp = e;
		return KEV_CHANGED;
	}
	if (s->n >= KUBE_MAX_OBJECTS || ((s->n + 1) * 2 > s->cap && grow(s))) {
		ent_put(e);
		return KEV_OVERFLOW;
	}
	e->next = s->tab[hash_key(e->key) & (s->cap - 1)];
	s->tab[hash_key(e->key) & (s->cap - 1)] = e;
	s->n++;
	s->n_local += e->local;
	return KEV_CHANGED;
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void set_rv(struct kube_store *s, json_t *obj)
{
	const char *rv = jstr(json_object_get(obj, "metadata"), "resourceVersion");

	if (rv && strlen(rv) < sizeof(s->rv))
		snprintf(s->rv, sizeof(s->rv), "%s", rv);
}

/* A finished pod's address goes back to the pool (kubelet reuses it): it serves nothing. */
static bool pod_finished(json_t *obj)
{
	const char *phase = jstr(json_object_get(obj, "status"), "phase");

	return phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
}

/* The object's key; *out obj trimmed to what the loader reads, in one key order. */
static int obj_trim(const struct kube_store *s, json_t *obj, char *key, size_t keylen,
		    json_t **out)
{
	json_t *md = json_object_get(obj, "metadata"), *st, *ann, *v;
	const char *name = jstr(md, "name"), *ns = jstr(md, "namespace"), *k;

	if (!json_is_object(obj) || !name || !*name)
		return -EINVAL;
	snprintf(key, keylen, "%s/%s", ns ? ns : "", name);
	if (!out)
		return 0;
	/* list items carry no kind or apiVersion, watch events do: the same text for both */
	*out = json_pack("{s:s, s:s}", "apiVersion", s->api_version, "kind",
			 kube_kinds[s->kind].kind);
	json_object_foreach(obj, k, v)
		if (strcmp(k, "apiVersion") && strcmp(k, "kind"))
			json_object_set(*out, k, v);
	obj = *out;
	json_object_del(md, "managedFields");
	json_object_del(md, "resourceVersion");
	json_object_del(md, "generation");
	ann = json_object_get(md, "annotations");
	json_object_del(ann, "kubectl.kubernetes.io/last-applied-configuration");
	if (s->kind != KK_POD) {
		json_object_del(obj, "status");
		return 0;
	}
	st = json_object_get(obj, "status");
	if (json_is_object(st)) {
		json_t *keep = json_object();

		json_object_set(keep, "podIP", json_object_get(st, "podIP"));
		json_object_set(keep, "podIPs", json_object_get(st, "podIPs"));
		json_object_set(keep, "hostIP", json_object_get(st, "hostIP"));
		json_object_set_new(obj, "status", keep);
	}
	return 0;
}

/* A stored entry for obj (consumed by the caller), or NULL with err set. */
static struct kube_store_ent *ent_make(const struct kube_store *s, json_t *obj, char *err,
				       size_t errlen)
{
	struct kube_store_ent *e;
	const char *node;
	json_t *t = NULL;
	char key[512];
	char *text;

	if (obj_trim(s, obj, key, sizeof(key), &t)) {
		snprintf(err, errlen, "%s without metadata.name", kube_kinds[s->kind].kind);
		return NULL;
	}
	text = json_dumps(t, JSON_INDENT(1));
	json_decref(t);
	if (!text) {
		snprintf(err, errlen, "%s %s: cannot encode", kube_kinds[s->kind].kind, key);
		return NULL;
	}
	if (strlen(text) > KUBE_MAX_OBJECT_BYTES) {
		snprintf(err, errlen, "%s %s: %zu bytes, over the %u byte limit",
			 kube_kinds[s->kind].kind, key, strlen(text), KUBE_MAX_OBJECT_BYTES);
		free(text);
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		abort();
	e->refs = 1;
	e->key = strdup(key);
	e->text = text;
	e->len = strlen(text);
	node = jstr(json_object_get(obj, "spec"), "nodeName");
	e->local = s->kind == KK_POD && s->node && node && !strcmp(node, s->node);
	if (asprintf(&e->name, "api:%s %s%s", kube_kinds[s->kind].kind,
		     key[0] == '/' ? "" : key, key[0] == '/' ? key + 1 : "") < 0 ||
	    !e->key)
		abort();
	return e;
}

enum kube_ev kube_store_list(struct kube_store *s, const char *body, size_t len, char *cont,
			     size_t contlen, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(body, len, 0, &je), *items, *it;
	enum kube_ev ev = KEV_CHANGED;
	const char *c;
	size_t i;

	cont[0] = 0;
	if (!json_is_object(root) || !json_is_array(items = json_object_get(root, "items"))) {
		snprintf(err, errlen, "list %s: not a list: %s", kube_kinds[s->kind].plural,
			 root ? "no items" : je.text);
		json_decref(root);
		return KEV_ERROR;
	}
	json_array_foreach(items, i, it) {
		struct kube_store_ent *e;

		if (s->kind == KK_POD && pod_finished(it))
			continue;
		e = ent_make(s, it, err, errlen);
		if (!e) {
			ev = KEV_OVERFLOW;
			break;
		}
		if (ent_insert(s, e) == KEV_OVERFLOW) {
			snprintf(err, errlen, "list %s: over %u objects",
				 kube_kinds[s->kind].plural, KUBE_MAX_OBJECTS);
			ev = KEV_OVERFLOW;
			break;
		}
	}
	set_rv(s, root);
	c = jstr(json_object_get(root, "metadata"), "continue");
	if (c && ev == KEV_CHANGED)
		snprintf(cont, contlen, "%s", c);
	json_decref(root);
	return ev;
}

enum kube_ev kube_store_replace(struct kube_store *dst, struct kube_store *src)
{
	bool same = dst->n == src->n;

	for (unsigned i = 0; same && i < src->cap; i++)
		for (struct kube_store_ent *e = src->tab[i]; same && e; e = e->next) {
			struct kube_store_ent **pp = ent_find(dst, e->key);

			same = pp && (*pp)->len == e->len && !memcmp((*pp)->text, e->text, e->len);
		}
	for (unsigned i = 0; i < dst->cap; i++)
		for (struct kube_store_ent *e = dst->tab[i], *nx; e; e = nx) {
			nx = e->next;
			ent_put(e);
		}
	free(dst->tab);
	dst->tab = src->tab;
	dst->cap = src->cap;
	dst->n = src->n;
	dst->n_local = src->n_local;
	memcpy(dst->rv, src->rv, sizeof(dst->rv));
	src->tab = NULL;
	src->cap = src->n = src->n_local = 0;
	src->rv[0] = 0;
	return same ? KEV_NONE : KEV_CHANGED;
}

enum kube_ev kube_store_event(struct kube_store *s, const char *line, size_t len, char *err,
			      size_t errlen)
{
	json_error_t je;
	json_t *ev = json_loadb(line, len, 0, &je), *obj;
	const char *type = jstr(ev, "type");
	enum kube_ev r = KEV_NONE;

	err[0] = 0;
	obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj)) {
		snprintf(err, errlen, "watch %s: unreadable event: %s", kube_kinds[s->kind].plural,
			 ev ? "no type or object" : je.text);
		r = KEV_ERROR;
	} else if (!strcmp(type, "ERROR")) {
		/* a Status: 410 when the resourceVersion was compacted away */
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		const char *msg = jstr(obj, "message");

		snprintf(err, errlen, "watch %s: %lld %s", kube_kinds[s->kind].plural,
			 (long long)code, msg ? msg : "(no message)");
		r = code == 410 ? KEV_RELIST : KEV_ERROR;
	} else if (!strcmp(type, "BOOKMARK")) {
		set_rv(s, obj);
		s->bookmarks++;
	} else if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED") ||
		   !strcmp(type, "DELETED")) {
		struct kube_store_ent *e;
		struct kube_store_ent **pp;

		set_rv(s, obj);
		if (!strcmp(type, "DELETED") || (s->kind == KK_POD && pod_finished(obj))) {
			char key[512];

			if (obj_trim(s, obj, key, sizeof(key), NULL) == 0 && (pp = ent_find(s, key))) {
				ent_unlink(s, pp);
				r = KEV_CHANGED;
			}
		} else if (!(e = ent_make(s, obj, err, errlen))) {
			r = KEV_OVERFLOW;
		} else if ((r = ent_insert(s, e)) == KEV_OVERFLOW) {
			snprintf(err, errlen, "watch %s: over %u objects", kube_kinds[s->kind].plural,
				 KUBE_MAX_OBJECTS);
		}
	} else {
		snprintf(err, errlen, "watch %s: unknown event type %s", kube_kinds[s->kind].plural,
			 type);
		r = KEV_ERROR;
	}
	json_decref(ev);
	return r;
}

static int cmp_obj(const void *a, const void *b)
{
	return strcmp(((const struct kube_obj *)a)->ref->key, ((const struct kube_obj *)b)->ref->key);
}

void kube_store_snap(const struct kube_store *s, struct kube_snap *snap)
{
	unsigned start = snap->n;

	if (snap->n + s->n > snap->cap) {
		unsigned cap = snap->n + s->n + 64;
		void *v = realloc(snap->objs, cap * sizeof(*snap->objs));

		if (!v)
			abort();
		snap->objs = v;
		snap->cap = cap;
	}
	for (unsigned i = 0; i < s->cap; i++)
		for (struct kube_store_ent *e = s->tab[i]; e; e = e->next) {
			struct kube_obj *o = &snap->objs[snap->n++];

			__atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
			o->ref = e;
			o->name = e->name;
			o->text = e->text;
			o->len = e->len;
		}
	qsort(snap->objs + start, snap->n - start, sizeof(*snap->objs), cmp_obj);
}

void kube_burst_change(struct kube_burst *b, uint64_t now_ms)
{
	if (!b->first_ms)
		b->first_ms = now_ms;
	b->last_ms = now_ms;
}

int64_t kube_burst_due(const struct kube_burst *b, uint64_t now_ms)
{
	int64_t quiet, cap;

	if (!b->first_ms)
		return -1;
	quiet = (int64_t)(b->last_ms + KUBE_QUIET_MS) - (int64_t)now_ms;
	cap = (int64_t)(b->first_ms + KUBE_MAX_DELAY_MS) - (int64_t)now_ms;
	quiet = quiet < cap ? quiet : cap;
	return quiet > 0 ? quiet : 0;
}

uint32_t kube_backoff_ms(unsigned attempt, uint32_t rnd)
{
	uint32_t d = KUBE_BACKOFF_MIN_MS;

	while (attempt-- && d < KUBE_BACKOFF_MAX_MS)
		d *= 2;
	if (d > KUBE_BACKOFF_MAX_MS)
		d = KUBE_BACKOFF_MAX_MS;
	/* half fixed, half random: many agents restarting together spread out */
	return d / 2 + rnd % (d / 2 + 1);
}
