// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "store.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"

uint64_t store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void key_of(char *k, size_t len, const char *res, const char *ns, const char *name)
{
	snprintf(k, len, "%s/%s/%s", res, ns ? ns : "", name);
}

int store_open(struct store *s, const char *path)
{
	json_t *root;

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_REALTIME);
		pthread_cond_init(&s->changed, &ca);
		pthread_condattr_destroy(&ca);
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	root = json_load_file(path, 0, NULL);
	if (root) {
		s->objects = json_incref(json_object_get(root, "objects"));
		s->meta = json_incref(json_object_get(root, "meta"));
		s->rv = (uint64_t)json_integer_value(json_object_get(root, "resourceVersion"));
		json_decref(root);
	} else if (access(path, F_OK) == 0) {
		pr_warn("Error: load %s: not a store\n", path);
		return -EINVAL;
	}
	if (!json_is_object(s->objects)) {
		json_decref(s->objects);
		s->objects = json_object();
	}
	if (!json_is_object(s->meta)) {
		json_decref(s->meta);
		s->meta = json_object();
	}
	/* after a restart the log is empty: watches resume only from now on */
	s->oldest = s->rv;
	return 0;
}

void store_close(struct store *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		struct store_event *e = &s->log[(s->head + i) % STORE_LOG];

		free(e->res);
		json_decref(e->obj);
	}
	json_decref(s->objects);
	json_decref(s->meta);
}

void store_lock(struct store *s)
{
	pthread_mutex_lock(&s->mu);
}

void store_unlock(struct store *s)
{
	pthread_mutex_unlock(&s->mu);
}

int store_save(struct store *s)
{
	char tmp[4200];
	json_t *root = json_pack("{s:I, s:O, s:O}", "resourceVersion", (json_int_t)s->rv, "meta",
				 s->meta, "objects", s->objects);
	int err = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
	if (json_dump_file(root, tmp, JSON_COMPACT) || rename(tmp, s->path)) {
		err = -errno ? -errno : -EIO;
		pr_warn("Error: save %s: %s\n", s->path, strerror(-err));
	}
	json_decref(root);
	return err;
}

static void log_event(struct store *s, enum store_ev type, const char *res, json_t *obj)
{
	struct store_event *e;

	if (s->n == STORE_LOG) { /* the oldest goes: watches from before it get 410 */
		e = &s->log[s->head];
		s->oldest = e->rv;
		free(e->res);
		json_decref(e->obj);
		s->head = (s->head + 1) % STORE_LOG;
		s->n--;
	}
	e = &s->log[(s->head + s->n) % STORE_LOG];
	e->rv = s->rv;
	e->type = type;
	e->res = strdup(res);
	e->obj = json_incref(obj);
	s->n++;
	pthread_cond_broadcast(&s->changed);
}

static void set_rv(json_t *obj, uint64_t rv)
{
	json_t *meta = json_object_get(obj, "metadata");

	if (!json_is_object(meta)) {
		meta = json_object();
		json_object_set_new(obj, "metadata", meta);
	}
	json_object_set_new(meta, "resourceVersion", json_sprintf("%llu", (unsigned long long)rv));
}

json_t *store_get(struct store *s, const char *res, const char *ns, const char *name)
{
	char k[1024];

	key_of(k, sizeof(k), res, ns, name);
	return json_object_get(s->objects, k);
}

int store_put(struct store *s, const char *res, const char *ns, const char *name, json_t *obj)
{
	char k[1024];
	bool existed;

	key_of(k, sizeof(k), res, ns, name);
	existed = json_object_get(s->objects, k) != NULL;
	s->rv++;
	set_rv(obj, s->rv);
	json_object_set_new(s->objects, k, obj);
	log_event(s, existed ? EV_MODIFIED : EV_ADDED, res, obj);
	return store_save(s);
}

int store_delete(struct store *s, const char *res, const char *ns, const char *name)
{
	char k[1024];
	json_t *old, *gone;

	key_of(k, sizeof(k), res, ns, name);
	old = json_object_get(s->objects, k);
	if (!old)
		return -ENOENT;
	gone = json_deep_copy(old);
	s->rv++;
	set_rv(gone, s->rv);
	json_object_del(s->objects, k);
	log_event(s, EV_DELETED, res, gone);
	json_decref(gone);
	return store_save(s);
}

static int cmp_obj(const void *a, const void *b)
{
	json_t *x = json_object_get(*(json_t *const *)a, "metadata"),
	       *y = json_object_get(*(json_t *const *)b, "metadata");
	const char *xn = json_string_value(json_object_get(x, "namespace")),
		   *yn = json_string_value(json_object_get(y, "namespace"));
	int c = strcmp(xn ? xn : "", yn ? yn : "");

	if (c)
		return c;
	xn = json_string_value(json_object_get(x, "name"));
	yn = json_string_value(json_object_get(y, "name"));
	return strcmp(xn ? xn : "", yn ? yn : "");
}

json_t *store_list(struct store *s, const char *res, const char *ns)
{
	char prefix[1024];
	size_t plen, n = 0, cap = 64;
	json_t **v = malloc(cap * sizeof(*v)), *out = json_array(), *o;
	const char *k;

	snprintf(prefix, sizeof(prefix), "%s/%s%s", res, ns ? ns : "", ns ? "/" : "");
	plen = strlen(prefix);
	json_object_foreach(s->objects, k, o)
	{
		if (strncmp(k, prefix, plen))
			continue;
		/* "GROUP/RESOURCE/" with ns NULL: make sure RESOURCE is whole */
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				abort();
		}
		v[n++] = o;
	}
	qsort(v, n, sizeof(*v), cmp_obj);
	for (size_t i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	return out;
}

void store_wait(struct store *s, uint64_t rv, uint64_t deadline_ms)
{
	struct timespec ts = { .tv_sec = (time_t)(deadline_ms / 1000),
			       .tv_nsec = (long)(deadline_ms % 1000) * 1000000 };

	while (s->rv <= rv && store_now_ms() < deadline_ms)
		if (pthread_cond_timedwait(&s->changed, &s->mu, &ts) == ETIMEDOUT)
			break;
}
