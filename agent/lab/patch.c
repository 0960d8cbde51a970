// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "patch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *merge_patch(json_t *doc, json_t *patch)
{
	json_t *out, *v;
	const char *k;

	if (!json_is_object(patch))
		return json_deep_copy(patch);
	out = json_is_object(doc) ? json_deep_copy(doc) : json_object();
	json_object_foreach(patch, k, v)
	{
		if (json_is_null(v))
			json_object_del(out, k);
		else
			json_object_set_new(out, k, merge_patch(json_object_get(out, k), v));
	}
	return out;
}

/* ---- strategic merge patch ---- */

/*
 * The lists of the built-in kinds that merge by a key (patchStrategy "merge" in
 * their Go types); every other list is replaced whole. "ports" is a container's
 * (containerPort) or a Service's (port): told apart by the items.
 */
static const struct {
	const char *field, *key;
} merge_keys[] = {
	{ "containers", "name" },	 { "initContainers", "name" },
	{ "ephemeralContainers", "name" }, { "env", "name" },
	{ "volumes", "name" },		 { "volumeMounts", "mountPath" },
	{ "volumeDevices", "devicePath" }, { "imagePullSecrets", "name" },
	{ "hostAliases", "ip" },	 { "conditions", "type" },
	{ "topologySpreadConstraints", "topologyKey" }, { "ownerReferences", "uid" },
	{ "resourceClaims", "name" },	 { "secrets", "name" },
};

static const char *merge_key(const char *field, json_t *items)
{
	size_t i;
	json_t *it;

	if (!strcmp(field, "ports")) {
		json_array_foreach(items, i, it)
			if (json_object_get(it, "containerPort"))
				return "containerPort";
		return "port";
	}
	for (size_t j = 0; j < sizeof(merge_keys) / sizeof(merge_keys[0]); j++)
		if (!strcmp(merge_keys[j].field, field))
			return merge_keys[j].key;
	return NULL;
}

/* lists of scalars merged as sets */
static bool merge_primitive(const char *field)
{
	return !strcmp(field, "finalizers");
}

static int find_keyed(json_t *list, const char *key, json_t *val)
{
	size_t i;
	json_t *it;

	json_array_foreach(list, i, it)
		if (json_equal(json_object_get(it, key), val))
			return (int)i;
	return -1;
}

static json_t *smp_map(json_t *doc, json_t *patch, char *err, size_t len, int depth);

static json_t *smp_list(const char *field, json_t *doc, json_t *patch, json_t *order, char *err,
			size_t len, int depth)
{
	const char *key = merge_key(field, patch);
	json_t *out, *it;
	size_t i;

	if (merge_primitive(field)) {
		out = json_is_array(doc) ? json_deep_copy(doc) : json_array();
		json_array_foreach(patch, i, it)
		{
			size_t j;
			json_t *x;
			bool have = false;

			json_array_foreach(out, j, x)
				have |= json_equal(x, it);
			if (!have)
				json_array_append(out, it);
		}
		return out;
	}
	/* {"$patch": "replace"} among the items: the list is the other items */
	json_array_foreach(patch, i, it)
	{
		const char *p = json_string_value(json_object_get(it, "$patch"));

		if (p && !strcmp(p, "replace")) {
			out = json_array();
			json_array_foreach(patch, i, it)
				if (!json_object_get(it, "$patch"))
					json_array_append(out, it);
			return out;
		}
	}
	if (!key || !json_is_array(doc))
		return json_deep_copy(patch);
	out = json_deep_copy(doc);
	json_array_foreach(patch, i, it)
	{
		json_t *kv = json_object_get(it, key);
		const char *p = json_string_value(json_object_get(it, "$patch"));
		int at;

		if (!json_is_object(it) || !kv) {
			snprintf(err, len, "%s: an item without its merge key \"%s\"", field, key);
			json_decref(out);
			return NULL;
		}
		at = find_keyed(out, key, kv);
		if (p && !strcmp(p, "delete")) {
			if (at >= 0)
				json_array_remove(out, (size_t)at);
			continue;
		}
		if (at >= 0) {
			json_t *m = smp_map(json_array_get(out, (size_t)at), it, err, len, depth + 1);

			if (!m) {
				json_decref(out);
				return NULL;
			}
			json_array_set_new(out, (size_t)at, m);
		} else {
			json_t *m = smp_map(NULL, it, err, len, depth + 1);

			if (!m) {
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, m);
		}
	}
	/* $setElementOrder: the listed keys first, in that order, then the rest */
	if (json_is_array(order)) {
		json_t *sorted = json_array(), *o;
		size_t j;

		json_array_foreach(order, j, o)
		{
			int at = find_keyed(out, key, json_object_get(o, key));

			if (at >= 0) {
				json_array_append(sorted, json_array_get(out, (size_t)at));
				json_array_remove(out, (size_t)at);
			}
		}
		json_array_extend(sorted, out);
		json_decref(out);
		out = sorted;
	}
	return out;
}

static json_t *smp_map(json_t *doc, json_t *patch, char *err, size_t len, int depth)
{
	const char *k, *p;
	json_t *out, *v, *retain;

	if (depth > 64) {
		snprintf(err, len, "patch nested too deep");
		return NULL;
	}
	if (!json_is_object(patch))
		return json_deep_copy(patch);
	p = json_string_value(json_object_get(patch, "$patch"));
	if (p && !strcmp(p, "replace")) {
		out = json_deep_copy(patch);
		json_object_del(out, "$patch");
		return out;
	}
	if (p && !strcmp(p, "delete"))
		return json_object();
	if (p && strcmp(p, "merge")) {
		snprintf(err, len, "unknown $patch directive \"%s\"", p);
		return NULL;
	}
	out = json_is_object(doc) ? json_deep_copy(doc) : json_object();
	json_object_foreach(patch, k, v)
	{
		json_t *m;

		if (k[0] == '$') {
			if (!strncmp(k, "$deleteFromPrimitiveList/", 25)) {
				json_t *l = json_object_get(out, k + 25), *x;
				size_t i;

				for (i = 0; json_is_array(l) && i < json_array_size(l);) {
					size_t j;
					bool gone = false;

					json_array_foreach(v, j, x)
						gone |= json_equal(x, json_array_get(l, i));
					if (gone)
						json_array_remove(l, i);
					else
						i++;
				}
			}
			continue; /* $patch, $retainKeys, $setElementOrder/: handled around */
		}
		if (json_is_null(v)) {
			json_object_del(out, k);
			continue;
		}
		if (json_is_array(v)) {
			char ok[300];

			snprintf(ok, sizeof(ok), "$setElementOrder/%s", k);
			m = smp_list(k, json_object_get(out, k), v, json_object_get(patch, ok), err, len,
				     depth);
		} else if (json_is_object(v)) {
			m = smp_map(json_object_get(out, k), v, err, len, depth + 1);
		} else {
			m = json_incref(v);
		}
		if (!m) {
			json_decref(out);
			return NULL;
		}
		/* an item deleted by {"$patch": "delete"} leaves no empty map behind */
		if (json_is_object(v) && json_object_get(v, "$patch") &&
		    !strcmp(json_string_value(json_object_get(v, "$patch")), "delete")) {
			json_decref(m);
			json_object_del(out, k);
			continue;
		}
		json_object_set_new(out, k, m);
	}
	/* $setElementOrder for lists the patch does not otherwise touch */
	json_object_foreach(patch, k, v)
	{
		if (strncmp(k, "$setElementOrder/", 17) || json_object_get(patch, k + 17))
			continue;
		{
			json_t *l = json_object_get(out, k + 17), *m;

			if (!json_is_array(l) || !merge_key(k + 17, l))
				continue;
			m = smp_list(k + 17, l, json_array(), v, err, len, depth);
			if (m)
				json_object_set_new(out, k + 17, m);
		}
	}
	retain = json_object_get(patch, "$retainKeys");
	if (json_is_array(retain)) {
		void *tmp;

		json_object_foreach_safe(out, tmp, k, v)
		{
			size_t i;
			json_t *x;
			bool keep = false;

			json_array_foreach(retain, i, x)
				keep |= json_is_string(x) && !strcmp(json_string_value(x), k);
			if (!keep)
				json_object_del(out, k);
		}
	}
	return out;
}

json_t *strategic_patch(json_t *doc, json_t *patch, char *err, size_t len)
{
	if (!json_is_object(patch)) {
		snprintf(err, len, "a strategic merge patch must be an object");
		return NULL;
	}
	return smp_map(doc, patch, err, len, 0);
}

/* ---- JSON patch ---- */

/* Follows a JSON pointer to the parent of its last token; *last gets that token. */
static json_t *pointer_parent(json_t *doc, const char *ptr, char *last, size_t len)
{
	json_t *cur = doc;
	char tok[512];

	if (*ptr != '/')
		return NULL;
	for (;;) {
		const char *s = ptr + 1, *e = strchr(s, '/');
		size_t n = 0;

		for (const char *c = s; c < (e ? e : s + strlen(s)) && n + 1 < sizeof(tok); c++) {
			if (c[0] == '~' && c[1] == '1')
				tok[n++] = '/', c++;
			else if (c[0] == '~' && c[1] == '0')
				tok[n++] = '~', c++;
			else
				tok[n++] = *c;
		}
		tok[n] = 0;
		if (!e) {
			snprintf(last, len, "%s", tok);
			return cur;
		}
		if (json_is_object(cur))
			cur = json_object_get(cur, tok);
		else if (json_is_array(cur))
			cur = json_array_get(cur, strtoul(tok, NULL, 10));
		else
			return NULL;
		if (!cur)
			return NULL;
		ptr = e;
	}
}

static json_t *pointer_get(json_t *doc, const char *ptr)
{
	char last[512];
	json_t *p;

	if (!*ptr)
		return doc;
	p = pointer_parent(doc, ptr, last, sizeof(last));
	if (json_is_object(p))
		return json_object_get(p, last);
	if (json_is_array(p))
		return json_array_get(p, strtoul(last, NULL, 10));
	return NULL;
}

static int pointer_remove(json_t *doc, const char *ptr)
{
	char last[512];
	json_t *p = pointer_parent(doc, ptr, last, sizeof(last));

	if (json_is_object(p))
		return json_object_del(p, last);
	if (json_is_array(p))
		return json_array_remove(p, strtoul(last, NULL, 10));
	return -1;
}

static int pointer_add(json_t *doc, const char *ptr, json_t *v, bool replace)
{
	char last[512];
	json_t *p = pointer_parent(doc, ptr, last, sizeof(last));

	if (json_is_object(p)) {
		if (replace && !json_object_get(p, last))
			return -1;
		return json_object_set(p, last, v);
	}
	if (json_is_array(p)) {
		size_t i = strtoul(last, NULL, 10);

		if (!strcmp(last, "-"))
			return replace ? -1 : json_array_append(p, v);
		if (replace)
			return json_array_set(p, i, v);
		return i > json_array_size(p) ? -1 : json_array_insert(p, i, v);
	}
	return -1;
}

json_t *json_patch(json_t *doc, json_t *ops, char *err, size_t len)
{
	json_t *out = json_deep_copy(doc), *op;
	size_t i;

	if (!json_is_array(ops)) {
		snprintf(err, len, "a JSON patch must be an array of operations");
		goto fail;
	}
	json_array_foreach(ops, i, op)
	{
		const char *o = json_string_value(json_object_get(op, "op")),
			   *path = json_string_value(json_object_get(op, "path")),
			   *from = json_string_value(json_object_get(op, "from"));
		json_t *val = json_object_get(op, "value");
		int bad = 0;

		if (!o || !path) {
			snprintf(err, len, "operation %zu: needs op and path", i);
			goto fail;
		}
		if (!strcmp(o, "add") && val)
			bad = pointer_add(out, path, val, false);
		else if (!strcmp(o, "replace") && val)
			bad = pointer_add(out, path, val, true);
		else if (!strcmp(o, "remove"))
			bad = pointer_remove(out, path);
		else if (!strcmp(o, "test"))
			bad = !json_equal(pointer_get(out, path), val);
		else if ((!strcmp(o, "move") || !strcmp(o, "copy")) && from && pointer_get(out, from)) {
			json_t *v = json_deep_copy(pointer_get(out, from));

			if (!strcmp(o, "move"))
				pointer_remove(out, from);
			bad = pointer_add(out, path, v, false);
			json_decref(v);
		} else
			bad = 1;
		if (bad) {
			snprintf(err, len, "operation %zu (%s %s) does not apply", i, o, path);
			goto fail;
		}
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}
