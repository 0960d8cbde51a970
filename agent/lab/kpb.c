// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "kpb.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pb {
	const unsigned char *p, *end;
	bool bad;
};

static uint64_t varint(struct pb *b)
{
	uint64_t v = 0;

	for (int s = 0; s < 64 && b->p < b->end; s += 7) {
		unsigned char c = *b->p++;

		v |= (uint64_t)(c & 0x7f) << s;
		if (!(c & 0x80))
			return v;
	}
	b->bad = true;
	return 0;
}

/* Next field: its number, and for length-delimited ones the bytes in *sub. 0 at the end. */
static unsigned field(struct pb *b, struct pb *sub, uint64_t *num)
{
	uint64_t key, len;

	if (b->bad || b->p >= b->end)
		return 0;
	key = varint(b);
	switch (key & 7) {
	case 0:
		*num = varint(b);
		break;
	case 2:
		len = varint(b);
		if (len > (uint64_t)(b->end - b->p)) {
			b->bad = true;
			return 0;
		}
		sub->p = b->p;
		sub->end = b->p + len;
		sub->bad = false;
		b->p += len;
		break;
	case 1:
		b->p += 8;
		break;
	case 5:
		b->p += 4;
		break;
	default:
		b->bad = true;
		return 0;
	}
	if (b->p > b->end)
		b->bad = true;
	return b->bad ? 0 : (unsigned)(key >> 3);
}

static json_t *str(struct pb *s)
{
	return json_stringn((const char *)s->p, (size_t)(s->end - s->p));
}

/* map<string,string> entry (key 1, value 2) into o */
static void map_entry(json_t *o, struct pb *e, bool base64)
{
	struct pb sub, k = { 0 }, v = { 0 };
	uint64_t n;
	unsigned f;

	while ((f = field(e, &sub, &n)))
		if (f == 1)
			k = sub;
		else if (f == 2)
			v = sub;
	if (!k.p)
		return;
	{
		char key[512];

		snprintf(key, sizeof(key), "%.*s", (int)(k.end - k.p), (const char *)k.p);
		if (base64) {
			static const char al[] =
				"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
			size_t len = v.p ? (size_t)(v.end - v.p) : 0, o_len = 4 * ((len + 2) / 3);
			char *out = malloc(o_len + 1), *q = out;

			if (!out)
				return;
			for (size_t i = 0; i < len; i += 3) {
				uint32_t x = (uint32_t)v.p[i] << 16 |
					     (i + 1 < len ? (uint32_t)v.p[i + 1] << 8 : 0) |
					     (i + 2 < len ? v.p[i + 2] : 0);

				*q++ = al[x >> 18 & 63];
				*q++ = al[x >> 12 & 63];
				*q++ = i + 1 < len ? al[x >> 6 & 63] : '=';
				*q++ = i + 2 < len ? al[x & 63] : '=';
			}
			*q = 0;
			json_object_set_new(o, key, json_string(out));
			free(out);
		} else {
			json_object_set_new(o, key, v.p ? str(&v) : json_string(""));
		}
	}
}

static json_t *object_meta(struct pb *m)
{
	json_t *o = json_object(), *labels = json_object(), *ann = json_object();
	struct pb sub;
	uint64_t n;
	unsigned f;

	while ((f = field(m, &sub, &n))) {
		if (f == 1)
			json_object_set_new(o, "name", str(&sub));
		else if (f == 2)
			json_object_set_new(o, "generateName", str(&sub));
		else if (f == 3)
			json_object_set_new(o, "namespace", str(&sub));
		else if (f == 11)
			map_entry(labels, &sub, false);
		else if (f == 12)
			map_entry(ann, &sub, false);
	}
	if (json_object_size(labels))
		json_object_set(o, "labels", labels);
	if (json_object_size(ann))
		json_object_set(o, "annotations", ann);
	json_decref(labels);
	json_decref(ann);
	return o;
}

json_t *kpb_decode(const unsigned char *buf, size_t len, char *err, size_t errlen)
{
	struct pb b = { buf + 4, buf + len, false }, sub, raw = { 0 }, tm = { 0 };
	char api[128] = "", kind[64] = "";
	uint64_t n;
	unsigned f;
	json_t *o, *data = NULL;

	if (len < 4 || memcmp(buf, "k8s\0", 4)) {
		snprintf(err, errlen, "not Kubernetes protobuf (no k8s envelope)");
		return NULL;
	}
	while ((f = field(&b, &sub, &n)))
		if (f == 1)
			tm = sub;
		else if (f == 2)
			raw = sub;
	while (tm.p && (f = field(&tm, &sub, &n)))
		if (f == 1)
			snprintf(api, sizeof(api), "%.*s", (int)(sub.end - sub.p), (const char *)sub.p);
		else if (f == 2)
			snprintf(kind, sizeof(kind), "%.*s", (int)(sub.end - sub.p), (const char *)sub.p);
	if (b.bad || !raw.p) {
		snprintf(err, errlen, "malformed protobuf");
		return NULL;
	}
	if (strcmp(kind, "Namespace") && strcmp(kind, "ConfigMap") && strcmp(kind, "Secret") &&
	    strcmp(kind, "ServiceAccount")) {
		snprintf(err, errlen, "the lab reads %s only as JSON", *kind ? kind : "this kind");
		return NULL;
	}
	o = json_pack("{s:s, s:s}", "apiVersion", api, "kind", kind);
	if (!strcmp(kind, "ConfigMap") || !strcmp(kind, "Secret"))
		data = json_object();
	while ((f = field(&raw, &sub, &n))) {
		if (f == 1)
			json_object_set_new(o, "metadata", object_meta(&sub));
		else if (f == 2 && data)
			map_entry(data, &sub, !strcmp(kind, "Secret"));
		else if (f == 3 && !strcmp(kind, "Secret"))
			json_object_set_new(o, "type", str(&sub));
	}
	if (raw.bad) {
		json_decref(o);
		json_decref(data);
		snprintf(err, errlen, "malformed protobuf");
		return NULL;
	}
	if (json_object_size(data))
		json_object_set(o, "data", data);
	json_decref(data);
	return o;
}
