// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The lab's Kubernetes API: HTTPS (libmicrohttpd, a thread per connection),
 * bearer token, the verbs kubectl uses on the kinds of kinds.c, Status errors,
 * watches from the store's log. Objects of the kinds ksteer routes by are
 * validated as `ksteer check` does before they are stored.
 */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/file.h"
#include "../lib/log.h"
#include "../policy/policy.h"
#include "kinds.h"
#include "kpb.h"
#include "lab.h"
#include "patch.h"

struct api {
	struct store st;
	struct MHD_Daemon *d;
	char token[256];
	char cluster[256];
	int index; /* the cluster's: ClusterIPs from 10.(100+index).0.0/16 */
	char addr[64];
};

struct req {
	char *body;
	size_t len;
	bool too_big;
};

struct reply {
	int code;
	json_t *body;
	char warn[1024];
};

/* ---- Status ---- */

static const char *reason_of(int code)
{
	switch (code) {
	case 400: return "BadRequest";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "NotFound";
	case 405: return "MethodNotAllowed";
	case 409: return "Conflict";
	case 410: return "Expired";
	case 413: return "RequestEntityTooLarge";
	case 415: return "UnsupportedMediaType";
	case 422: return "Invalid";
	default: return "InternalError";
	}
}

static json_t *status_obj(int code, const char *reason, json_t *details, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static json_t *status_obj(int code, const char *reason, json_t *details, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	json_t *o;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion", "v1",
		      "metadata", "status", "Failure", "message", msg, "reason",
		      reason ? reason : reason_of(code), "code", code);
	if (details)
		json_object_set_new(o, "details", details);
	return o;
}

static void fail(struct reply *r, int code, const char *reason, json_t *details, const char *msg)
{
	r->code = code;
	json_decref(r->body);
	r->body = status_obj(code, reason, details, "%s", msg);
}

/* `pods "x"` or `virtualservices.networking.istio.io "x"`, as Kubernetes names them */
static void qualified(const struct kind_def *k, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s \"%s\"", k->resource, *k->group ? "." : "", k->group, name);
}

static void not_found(struct reply *r, const struct kind_def *k, const char *name)
{
	char q[512], m[600];

	qualified(k, name, q, sizeof(q));
	snprintf(m, sizeof(m), "%s not found", q);
	fail(r, 404, "NotFound",
	     json_pack("{s:s, s:s, s:s}", "name", name, "group", k->group, "kind", k->resource), m);
}

/* ---- small helpers ---- */

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k)) ?: "";
}

static json_t *meta_of(json_t *o)
{
	json_t *m = json_object_get(o, "metadata");

	if (!json_is_object(m)) {
		m = json_object();
		json_object_set_new(o, "metadata", m);
	}
	return m;
}

static void now_rfc3339(char *out, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void new_uid(char *out, size_t len)
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)rand();
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, len,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
		 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
		 b[14], b[15]);
}

static bool dns1123(const char *s, size_t max, bool dots)
{
	size_t n = strlen(s);

	if (!n || n > max || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (const char *c = s; *c; c++)
		if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-' ||
		      (dots && *c == '.')))
			return false;
	return true;
}

/* The object as a client sees it: apiVersion of the version asked for. */
static json_t *versioned(const struct kind_def *k, const char *ver, json_t *o)
{
	json_t *c = json_deep_copy(o);

	json_object_set_new(c, "apiVersion", *k->group ? json_sprintf("%s/%s", k->group, ver)
						       : json_string(ver));
	json_object_set_new(c, "kind", json_string(k->kind));
	return c;
}

/* ---- selectors ---- */

static bool in_list(const char *v, const char *list)
{
	char buf[1024], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		for (char *e = t + strlen(t); e > t && e[-1] == ' ';)
			*--e = 0;
		if (v && !strcmp(v, t))
			return true;
	}
	return false;
}

static void trim(char *s)
{
	char *b = s, *e;

	while (*b == ' ')
		b++;
	memmove(s, b, strlen(b) + 1);
	e = s + strlen(s);
	while (e > s && e[-1] == ' ')
		*--e = 0;
}

bool label_selector_match(const char *sel, json_t *labels)
{
	char buf[2048];
	size_t n = 0;
	int depth = 0;

	if (!sel || !*sel)
		return true;
	for (const char *c = sel;; c++) {
		if (*c == '(')
			depth++;
		else if (*c == ')')
			depth--;
		if ((*c == ',' && depth == 0) || !*c) {
			char *t = buf, *op;
			const char *have;

			buf[n] = 0;
			n = 0;
			trim(t);
			if (*t) {
				if ((op = strstr(t, " notin ")) || (op = strstr(t, " in "))) {
					bool notin = op[1] == 'n';
					char *l = strchr(op, '('), *r = strrchr(op, ')');

					*op = 0;
					trim(t);
					if (!l || !r)
						return false;
					*r = 0;
					have = json_string_value(json_object_get(labels, t));
					if (notin ? have && in_list(have, l + 1) : !in_list(have, l + 1))
						return false;
				} else if ((op = strstr(t, "!="))) {
					*op = 0;
					trim(t);
					have = json_string_value(json_object_get(labels, t));
					op += 2;
					trim(op);
					if (have && !strcmp(have, op))
						return false;
				} else if ((op = strchr(t, '='))) {
					char *v = op + 1 + (op[1] == '=');

					*op = 0;
					trim(t);
					trim(v);
					have = json_string_value(json_object_get(labels, t));
					if (!have || strcmp(have, v))
						return false;
				} else if (*t == '!') {
					if (json_object_get(labels, t + 1))
						return false;
				} else if (!json_object_get(labels, t)) {
					return false;
				}
			}
			if (!*c)
				break;
			continue;
		}
		if (n + 1 < sizeof(buf))
			buf[n++] = *c;
	}
	return true;
}

/* Field selectors: PATH=V, PATH==V, PATH!=V on any field by its dotted path. */
static bool field_selector_match(const char *sel, json_t *o)
{
	char buf[2048], *save = NULL;

	if (!sel || !*sel)
		return true;
	snprintf(buf, sizeof(buf), "%s", sel);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *op = strstr(t, "!="), *v, path[512], *psave = NULL, have[512] = "";
		bool ne = op != NULL;
		json_t *x = o;

		if (!op)
			op = strchr(t, '=');
		if (!op)
			return false;
		v = op + (ne ? 2 : op[1] == '=' ? 2 : 1);
		*op = 0;
		snprintf(path, sizeof(path), "%s", t);
		for (char *p = strtok_r(path, ".", &psave); p && x; p = strtok_r(NULL, ".", &psave))
			x = json_object_get(x, p);
		if (json_is_string(x))
			snprintf(have, sizeof(have), "%s", json_string_value(x));
		else if (json_is_integer(x))
			snprintf(have, sizeof(have), "%lld", (long long)json_integer_value(x));
		else if (json_is_boolean(x))
			snprintf(have, sizeof(have), "%s", json_is_true(x) ? "true" : "false");
		if (ne == !strcmp(have, v))
			return false;
	}
	return true;
}

/* ---- requests ---- */

struct target {
	const struct kind_def *k;
	char key[128], version[32], ns[256], name[256], sub[32];
	bool watch_path;
};

static const char *arg(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

static const char *hdr(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, k);
}

static bool arg_true(struct MHD_Connection *c, const char *k)
{
	const char *v = arg(c, k);

	return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

/* /api/v1/... or /apis/G/V/...: 0 with t filled, 1 not a resource path */
static int parse_target(const char *url, struct target *t)
{
	char buf[1024], *seg[8], *save = NULL;
	int n = 0, i = 0;
	const char *group = "";

	memset(t, 0, sizeof(*t));
	snprintf(buf, sizeof(buf), "%s", url);
	for (char *s = strtok_r(buf, "/", &save); s && n < 8; s = strtok_r(NULL, "/", &save))
		seg[n++] = s;
	if (n >= 3 && !strcmp(seg[0], "api")) {
		snprintf(t->version, sizeof(t->version), "%s", seg[1]);
		i = 2;
	} else if (n >= 4 && !strcmp(seg[0], "apis")) {
		group = seg[1];
		snprintf(t->version, sizeof(t->version), "%s", seg[2]);
		i = 3;
	} else {
		return 1;
	}
	if (!strcmp(seg[i], "watch")) {
		t->watch_path = true;
		i++;
	}
	if (i >= n)
		return 1;
	if (n - i >= 3 && !strcmp(seg[i], "namespaces") && kind_find(group, t->version, seg[i + 2])) {
		snprintf(t->ns, sizeof(t->ns), "%s", seg[i + 1]);
		i += 2;
	}
	t->k = kind_find(group, t->version, seg[i]);
	if (!t->k)
		return -ENOENT;
	if (i + 1 < n)
		snprintf(t->name, sizeof(t->name), "%s", seg[i + 1]);
	if (i + 2 < n)
		snprintf(t->sub, sizeof(t->sub), "%s", seg[i + 2]);
	if (i + 3 < n)
		return -ENOENT;
	kind_key(t->k, t->key, sizeof(t->key));
	return 0;
}

static bool wants_table(struct MHD_Connection *c)
{
	const char *a = hdr(c, "Accept");

	return a && strstr(a, "as=Table");
}

/* ---- validation as `ksteer check` ---- */

/*
 * The checker says "Kind ns/name: FIELD: what": a cause with the field as
 * Kubernetes names it (from the object's top, "spec." first).
 */
static json_t *diag_cause(const char *msg)
{
	const char *f = strstr(msg, ": "), *e;
	char field[512];

	if (!f || !(e = strstr(f + 2, ": ")))
		return json_pack("{s:s, s:s}", "reason", "FieldValueInvalid", "message", msg);
	f += 2;
	snprintf(field, sizeof(field), "%s%.*s",
		 strncmp(f, "metadata", 8) && strncmp(f, "spec", 4) ? "spec." : "", (int)(e - f), f);
	return json_pack("{s:s, s:s, s:s}", "reason", "FieldValueInvalid", "message", e + 2, "field",
			 field);
}

/* 0, or -EINVAL with the reply a 422 naming what the checker said */
static int check_object(const struct kind_def *k, json_t *obj, const char *ns, struct reply *r)
{
	struct diag diag = { 0 };
	struct policy p;
	char *text;
	int err = 0;

	if (!k->policy)
		return 0;
	text = json_dumps(obj, JSON_INDENT(1));
	policy_init(&p, &diag, ns);
	policy_load_buffer(&p, "object", text, strlen(text));
	policy_validate(&p);
	if (diag.errors) {
		char msg[4096], q[512];
		size_t n;
		json_t *causes = json_array();

		qualified(k, jstr(meta_of(obj), "name"), q, sizeof(q));
		n = (size_t)snprintf(msg, sizeof(msg), "%s is invalid:", q);
		for (unsigned i = 0; i < diag.n; i++) {
			if (diag.v[i].sev != DIAG_ERROR)
				continue;
			if (n < sizeof(msg))
				n += (size_t)snprintf(msg + n, sizeof(msg) - n, " %s", diag.v[i].msg);
			json_array_append_new(causes, diag_cause(diag.v[i].msg));
		}
		fail(r, 422, "Invalid",
		     json_pack("{s:s, s:s, s:s, s:o}", "name", jstr(meta_of(obj), "name"), "group",
			       k->group, "kind", k->kind, "causes", causes),
		     msg);
		err = -EINVAL;
	} else {
		size_t n = 0;

		for (unsigned i = 0; i < diag.n && n < sizeof(r->warn); i++)
			n += (size_t)snprintf(r->warn + n, sizeof(r->warn) - n, "%s%s", n ? "; " : "",
					      diag.v[i].msg);
	}
	policy_free(&p);
	diag_free(&diag);
	free(text);
	return err;
}

/* ---- verbs ---- */

static bool ns_exists(struct api *a, const char *ns)
{
	return store_get(&a->st, "/namespaces", "", ns) != NULL;
}

static void sync_lab(struct api *a, const struct kind_def *k, struct reply *r)
{
	char err[512] = "";

	if (!k->policy && strcmp(k->kind, "Deployment") && strcmp(k->kind, "DaemonSet"))
		return;
	if (lab_sync(&a->st, a->cluster, err, sizeof(err))) {
		pr_warn("Error: sync the lab: %s\n", err);
		snprintf(r->warn, sizeof(r->warn), "the lab did not follow: %s", err);
	}
}

/* Defaults and server-set fields of a new object; 0 or the reply set. */
static int admit_new(struct api *a, const struct kind_def *k, json_t *obj)
{
	json_t *m = meta_of(obj), *spec = json_object_get(obj, "spec");
	char uid[40], ts[32];

	new_uid(uid, sizeof(uid));
	now_rfc3339(ts, sizeof(ts));
	json_object_set_new(m, "uid", json_string(uid));
	json_object_set_new(m, "creationTimestamp", json_string(ts));
	json_object_set_new(m, "generation", json_integer(1));
	json_object_del(m, "deletionTimestamp");
	if (!strcmp(k->kind, "Service")) {
		size_t i;
		json_t *p;

		if (!json_is_object(spec)) {
			spec = json_object();
			json_object_set_new(obj, "spec", spec);
		}
		if (!*jstr(spec, "type"))
			json_object_set_new(spec, "type", json_string("ClusterIP"));
		if (!*jstr(spec, "clusterIP") && strcmp(jstr(spec, "type"), "ExternalName")) {
			json_int_t n = json_integer_value(json_object_get(a->st.meta, "nextVip"));

			if (n < 1)
				n = 1;
			json_object_set_new(spec, "clusterIP",
					    json_sprintf("10.%d.%lld.%lld", 100 + a->index,
							 (long long)(n / 256), (long long)(n % 256)));
			json_object_set_new(a->st.meta, "nextVip", json_integer(n + 1));
		}
		if (*jstr(spec, "clusterIP"))
			json_object_set_new(spec, "clusterIPs",
					    json_pack("[s]", jstr(spec, "clusterIP")));
		json_array_foreach(json_object_get(spec, "ports"), i, p)
		{
			if (!json_object_get(p, "protocol"))
				json_object_set_new(p, "protocol", json_string("TCP"));
			if (!json_object_get(p, "targetPort") && json_object_get(p, "port"))
				json_object_set(p, "targetPort", json_object_get(p, "port"));
		}
	}
	if (!strcmp(k->kind, "Deployment") && json_is_object(spec) &&
	    !json_object_get(spec, "replicas"))
		json_object_set_new(spec, "replicas", json_integer(1));
	if (!strcmp(k->kind, "Namespace")) {
		json_t *l = json_object_get(m, "labels");

		if (!json_is_object(l)) {
			l = json_object();
			json_object_set_new(m, "labels", l);
		}
		json_object_set(l, "kubernetes.io/metadata.name", json_object_get(m, "name"));
		json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
	}
	if (!strcmp(k->kind, "Pod") && !json_object_get(obj, "status"))
		json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Pending"));
	return 0;
}

static void do_create(struct api *a, struct target *t, struct MHD_Connection *c, json_t *obj,
		      struct reply *r)
{
	json_t *m;
	const char *name, *bns;
	char q[512], msg[700], gen[300];

	if (!json_is_object(obj)) {
		fail(r, 400, NULL, NULL, "the body must be a JSON object");
		return;
	}
	if (*jstr(obj, "kind") && strcmp(jstr(obj, "kind"), t->k->kind)) {
		snprintf(msg, sizeof(msg), "the body's kind %s is not %s", jstr(obj, "kind"),
			 t->k->kind);
		fail(r, 400, NULL, NULL, msg);
		return;
	}
	m = meta_of(obj);
	bns = jstr(m, "namespace");
	if (t->k->namespaced) {
		if (*bns && strcmp(bns, t->ns)) {
			fail(r, 400, NULL, NULL,
			     "the namespace of the provided object does not match the namespace sent on the request");
			return;
		}
		json_object_set_new(m, "namespace", json_string(t->ns));
		if (!ns_exists(a, t->ns)) {
			snprintf(msg, sizeof(msg), "namespaces \"%s\" not found", t->ns);
			fail(r, 404, "NotFound",
			     json_pack("{s:s, s:s}", "name", t->ns, "kind", "namespaces"), msg);
			return;
		}
	} else {
		json_object_del(m, "namespace");
	}
	name = jstr(m, "name");
	if (!*name && *jstr(m, "generateName")) {
		static const char al[] = "bcdfghjklmnpqrstvwxz2456789";
		unsigned char rb[5];
		size_t gl;

		RAND_bytes(rb, sizeof(rb));
		gl = (size_t)snprintf(gen, sizeof(gen), "%s", jstr(m, "generateName"));
		for (int i = 0; i < 5 && gl + 1 < sizeof(gen); i++)
			gen[gl++] = al[rb[i] % (sizeof(al) - 1)];
		gen[gl] = 0;
		json_object_set_new(m, "name", json_string(gen));
		name = jstr(m, "name");
	}
	if (!dns1123(name, strcmp(t->k->kind, "Namespace") ? 253 : 63,
		     strcmp(t->k->kind, "Namespace") != 0)) {
		qualified(t->k, name, q, sizeof(q));
		snprintf(msg, sizeof(msg),
			 "%s is invalid: metadata.name: Invalid value: \"%s\": a lowercase RFC 1123 %s must consist of lower case alphanumeric characters, '-'%s, and must start and end with an alphanumeric character",
			 q, name, strcmp(t->k->kind, "Namespace") ? "subdomain" : "label",
			 strcmp(t->k->kind, "Namespace") ? " or '.'" : "");
		fail(r, 422, "Invalid",
		     json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}", "name", name, "kind", t->k->kind,
			       "causes", "reason", "FieldValueInvalid", "message", "Invalid value",
			       "field", "metadata.name"),
		     msg);
		return;
	}
	if (store_get(&a->st, t->key, t->ns, name)) {
		qualified(t->k, name, q, sizeof(q));
		snprintf(msg, sizeof(msg), "%s already exists", q);
		fail(r, 409, "AlreadyExists",
		     json_pack("{s:s, s:s, s:s}", "name", name, "group", t->k->group, "kind",
			       t->k->resource),
		     msg);
		return;
	}
	json_object_set_new(obj, "kind", json_string(t->k->kind));
	json_object_set_new(obj, "apiVersion",
			    *t->k->group ? json_sprintf("%s/%s", t->k->group, t->version)
					 : json_string(t->version));
	json_object_del(m, "resourceVersion");
	json_object_del(m, "generateName");
	if (check_object(t->k, obj, t->ns, r))
		return;
	admit_new(a, t->k, obj);
	if (arg(c, "dryRun")) {
		r->code = 201;
		r->body = versioned(t->k, t->version, obj);
		return;
	}
	store_put(&a->st, t->key, t->ns, name, json_incref(obj));
	sync_lab(a, t->k, r);
	r->code = 201;
	r->body = versioned(t->k, t->version,
			    store_get(&a->st, t->key, t->ns, name) ?: obj);
}

/* Stores obj as the new state of old (PUT, PATCH): the checks and server fields of an update. */
static void do_update(struct api *a, struct target *t, struct MHD_Connection *c, json_t *old,
		      json_t *obj, struct reply *r)
{
	json_t *m, *om = json_object_get(old, "metadata");
	const char *rv;
	char q[512], msg[800];

	if (!json_is_object(obj)) {
		fail(r, 400, NULL, NULL, "the body must be a JSON object");
		return;
	}
	m = meta_of(obj);
	rv = jstr(m, "resourceVersion");
	if (*rv && strcmp(rv, jstr(om, "resourceVersion"))) {
		qualified(t->k, t->name, q, sizeof(q));
		snprintf(msg, sizeof(msg),
			 "Operation cannot be fulfilled on %s: the object has been modified; please apply your changes to the latest version and try again",
			 q);
		fail(r, 409, "Conflict",
		     json_pack("{s:s, s:s, s:s}", "name", t->name, "group", t->k->group, "kind",
			       t->k->resource),
		     msg);
		return;
	}
	if (*jstr(m, "name") && strcmp(jstr(m, "name"), t->name)) {
		fail(r, 400, NULL, NULL, "the name of the object does not match the name on the URL");
		return;
	}
	json_object_set_new(m, "name", json_string(t->name));
	if (t->k->namespaced)
		json_object_set_new(m, "namespace", json_string(t->ns));
	else
		json_object_del(m, "namespace");
	/* what the server owns stays as it was */
	json_object_set(m, "uid", json_object_get(om, "uid"));
	json_object_set(m, "creationTimestamp", json_object_get(om, "creationTimestamp"));
	json_object_set_new(m, "generation",
			    json_integer(json_integer_value(json_object_get(om, "generation")) +
					 !json_equal(json_object_get(old, "spec"),
						     json_object_get(obj, "spec"))));
	json_object_set_new(obj, "kind", json_string(t->k->kind));
	json_object_set_new(obj, "apiVersion",
			    *t->k->group ? json_sprintf("%s/%s", t->k->group, t->version)
					 : json_string(t->version));
	if (!strcmp(t->k->kind, "Service")) {
		json_t *spec = json_object_get(obj, "spec"), *ospec = json_object_get(old, "spec");

		if (json_is_object(spec) && !*jstr(spec, "clusterIP") && *jstr(ospec, "clusterIP")) {
			json_object_set(spec, "clusterIP", json_object_get(ospec, "clusterIP"));
			json_object_set(spec, "clusterIPs", json_object_get(ospec, "clusterIPs"));
		}
		if (json_is_object(spec) && !*jstr(spec, "type"))
			json_object_set_new(spec, "type", json_string("ClusterIP"));
	}
	if (!json_object_get(obj, "status") && json_object_get(old, "status"))
		json_object_set(obj, "status", json_object_get(old, "status"));
	if (check_object(t->k, obj, t->ns, r))
		return;
	if (arg(c, "dryRun")) {
		r->code = 200;
		r->body = versioned(t->k, t->version, obj);
		return;
	}
	store_put(&a->st, t->key, t->ns, t->name, json_incref(obj));
	sync_lab(a, t->k, r);
	r->code = 200;
	r->body = versioned(t->k, t->version, store_get(&a->st, t->key, t->ns, t->name) ?: obj);
}

static json_t *scale_of(json_t *d)
{
	json_t *m = json_object_get(d, "metadata"), *spec = json_object_get(d, "spec");
	json_t *sel = json_object_get(json_object_get(spec, "selector"), "matchLabels");
	char s[512] = "";
	const char *k;
	json_t *v;
	size_t n = 0;

	json_object_foreach(sel, k, v)
		n += (size_t)snprintf(s + n, n < sizeof(s) ? sizeof(s) - n : 0, "%s%s=%s",
				      n ? "," : "", k, json_string_value(v) ?: "");
	return json_pack("{s:s, s:s, s:{s:O, s:O, s:O, s:O, s:O}, s:{s:O}, s:{s:O, s:s}}", "kind",
			 "Scale", "apiVersion", "autoscaling/v1", "metadata", "name",
			 json_object_get(m, "name"), "namespace", json_object_get(m, "namespace"),
			 "uid", json_object_get(m, "uid"), "resourceVersion",
			 json_object_get(m, "resourceVersion"), "creationTimestamp",
			 json_object_get(m, "creationTimestamp"), "spec", "replicas",
			 json_object_get(spec, "replicas") ?: json_integer(0), "status", "replicas",
			 json_object_get(json_object_get(d, "status"), "replicas") ?: json_integer(0),
			 "selector", s);
}

static json_t *apply_patch(const struct kind_def *k, struct MHD_Connection *c, json_t *cur,
			   json_t *patch, struct reply *r)
{
	const char *ct = hdr(c, "Content-Type");
	char err[512] = "";
	json_t *out = NULL;

	if (!ct)
		ct = "";
	if (!strncmp(ct, "application/merge-patch+json", 28)) {
		out = merge_patch(cur, patch);
	} else if (!strncmp(ct, "application/strategic-merge-patch+json", 38)) {
		if (!k->builtin) {
			fail(r, 415, NULL, NULL,
			     "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json");
			return NULL;
		}
		out = strategic_patch(cur, patch, err, sizeof(err));
	} else if (!strncmp(ct, "application/json-patch+json", 27)) {
		out = json_patch(cur, patch, err, sizeof(err));
	} else {
		fail(r, 415, NULL, NULL,
		     "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (server-side apply is not served by the lab)");
		return NULL;
	}
	if (!out) {
		char msg[700];

		snprintf(msg, sizeof(msg), "the patch does not apply: %s", err);
		fail(r, 422, "Invalid", NULL, msg);
	}
	return out;
}

static void delete_one(struct api *a, const struct kind_def *k, const char *ns, const char *name)
{
	char key[128];

	kind_key(k, key, sizeof(key));
	if (!strcmp(k->kind, "Namespace")) /* what is in it goes with it */
		for (size_t i = 0; i < n_kind_defs; i++) {
			json_t *items, *o;
			size_t j;
			char kk[128];

			if (!kind_defs[i].namespaced)
				continue;
			kind_key(&kind_defs[i], kk, sizeof(kk));
			items = store_list(&a->st, kk, name);
			json_array_foreach(items, j, o)
				store_delete(&a->st, kk, name, jstr(json_object_get(o, "metadata"),
								    "name"));
			json_decref(items);
		}
	store_delete(&a->st, key, ns, name);
}

static void do_object(struct api *a, struct target *t, struct MHD_Connection *c,
		      const char *method, json_t *body, struct reply *r)
{
	json_t *cur = store_get(&a->st, t->key, t->ns, t->name);

	if (!cur) {
		not_found(r, t->k, t->name);
		return;
	}
	if (*t->sub && strcmp(t->sub, "status") &&
	    !(!strcmp(t->sub, "scale") && !strcmp(t->k->kind, "Deployment"))) {
		fail(r, 404, NULL, NULL, "the server could not find the requested resource");
		return;
	}
	if (!strcmp(method, "GET")) {
		r->code = 200;
		if (!strcmp(t->sub, "scale"))
			r->body = scale_of(cur);
		else if (wants_table(c)) {
			json_t *one = json_pack("[O]", cur);

			r->body = table_of(t->k, one, arg(c, "includeObject") &&
							      !strcmp(arg(c, "includeObject"), "Object"));
			json_decref(one);
		} else
			r->body = versioned(t->k, t->version, cur);
		return;
	}
	if (!strcmp(method, "DELETE")) {
		if (!strcmp(t->k->kind, "Namespace") &&
		    (!strcmp(t->name, "default") || !strcmp(t->name, "kube-system") ||
		     !strcmp(t->name, "kube-public"))) {
			char msg[300];

			snprintf(msg, sizeof(msg), "namespaces \"%s\" is forbidden: this namespace may not be deleted", t->name);
			fail(r, 403, "Forbidden", NULL, msg);
			return;
		}
		r->code = 200;
		r->body = versioned(t->k, t->version, cur);
		if (arg(c, "dryRun"))
			return;
		delete_one(a, t->k, t->ns, t->name);
		sync_lab(a, t->k, r);
		return;
	}
	if (!strcmp(method, "PUT") || !strcmp(method, "PATCH")) {
		json_t *next;

		if (!strcmp(t->sub, "scale")) {
			json_t *sc = scale_of(cur), *ns2;

			ns2 = !strcmp(method, "PUT") ? json_incref(body) : apply_patch(t->k, c, sc, body, r);
			json_decref(sc);
			if (!ns2)
				return;
			next = json_deep_copy(cur);
			json_object_set(json_object_get(next, "spec"), "replicas",
					json_object_get(json_object_get(ns2, "spec"), "replicas"));
			json_object_del(json_object_get(next, "metadata"), "resourceVersion");
			json_decref(ns2);
			do_update(a, t, c, cur, next, r);
			json_decref(next);
			if (r->code == 200) {
				json_decref(r->body);
				r->body = scale_of(store_get(&a->st, t->key, t->ns, t->name));
			}
			return;
		}
		if (!strcmp(method, "PUT"))
			next = json_deep_copy(body);
		else
			next = apply_patch(t->k, c, cur, body, r);
		if (!next)
			return;
		if (!strcmp(t->sub, "status")) { /* only the status changes */
			json_t *s = json_incref(json_object_get(next, "status"));

			json_decref(next);
			next = json_deep_copy(cur);
			json_object_set_new(next, "status", s ?: json_object());
		}
		do_update(a, t, c, cur, next, r);
		json_decref(next);
		return;
	}
	fail(r, 405, NULL, NULL, "the method is not allowed on this resource");
}

static json_t *filtered(struct api *a, struct target *t, struct MHD_Connection *c)
{
	json_t *all = store_list(&a->st, t->key, t->k->namespaced && *t->ns ? t->ns : NULL),
	       *out = json_array(), *o;
	const char *ls = arg(c, "labelSelector"), *fs = arg(c, "fieldSelector");
	size_t i;

	json_array_foreach(all, i, o)
		if (label_selector_match(ls, json_object_get(json_object_get(o, "metadata"), "labels")) &&
		    field_selector_match(fs, o))
			json_array_append(out, o);
	json_decref(all);
	return out;
}

static void do_list(struct api *a, struct target *t, struct MHD_Connection *c, struct reply *r)
{
	json_t *items = filtered(a, t, c), *out, *o;
	size_t i;

	r->code = 200;
	if (wants_table(c)) {
		r->body = table_of(t->k, items, arg(c, "includeObject") &&
							!strcmp(arg(c, "includeObject"), "Object"));
		json_object_set_new(json_object_get(r->body, "metadata"), "resourceVersion",
				    json_sprintf("%llu", (unsigned long long)a->st.rv));
		json_decref(items);
		return;
	}
	out = json_array();
	json_array_foreach(items, i, o)
		json_array_append_new(out, versioned(t->k, t->version, o));
	json_decref(items);
	r->body = json_pack("{s:o, s:o, s:{s:o}, s:o}", "kind", json_sprintf("%sList", t->k->kind),
			    "apiVersion",
			    *t->k->group ? json_sprintf("%s/%s", t->k->group, t->version)
					 : json_string(t->version),
			    "metadata", "resourceVersion",
			    json_sprintf("%llu", (unsigned long long)a->st.rv), "items", out);
}

/* ---- watch ---- */

struct watch {
	struct api *a;
	struct target t;
	char *ls, *fs;
	bool table, bookmarks, full;
	uint64_t rv, deadline, next_bookmark, next_keepalive;
	uint64_t bookmark_rv; /* the last bookmark's */
	bool ended;
	char *buf;
	size_t len, off, cap;
};

static void w_append(struct watch *w, const char *type, json_t *obj)
{
	json_t *ev = json_pack("{s:s, s:o}", "type", type, "object", obj);
	char *s = json_dumps(ev, JSON_COMPACT);
	size_t n = strlen(s);

	if (w->len + n + 1 > w->cap) {
		w->cap = (w->len + n + 1) * 2;
		w->buf = realloc(w->buf, w->cap);
		if (!w->buf)
			abort();
	}
	memcpy(w->buf + w->len, s, n);
	w->buf[w->len + n] = '\n';
	w->len += n + 1;
	free(s);
	json_decref(ev);
}

static bool w_matches(struct watch *w, json_t *o)
{
	json_t *m = json_object_get(o, "metadata");

	if (w->t.k->namespaced && *w->t.ns && strcmp(jstr(m, "namespace"), w->t.ns))
		return false;
	if (*w->t.name && strcmp(jstr(m, "name"), w->t.name))
		return false;
	return label_selector_match(w->ls, json_object_get(m, "labels")) &&
	       field_selector_match(w->fs, o);
}

static void w_event(struct watch *w, const char *type, json_t *o)
{
	if (w->table) {
		json_t *one = json_pack("[O]", o);

		w_append(w, type, table_of(w->t.k, one, w->full));
		json_decref(one);
	} else {
		w_append(w, type, versioned(w->t.k, w->t.version, o));
	}
}

static void w_bookmark(struct watch *w, bool initial_end)
{
	json_t *m = json_pack("{s:o}", "resourceVersion",
			      json_sprintf("%llu", (unsigned long long)w->rv));
	json_t *o = json_pack("{s:s, s:o, s:o}", "kind", w->t.k->kind, "apiVersion",
			      *w->t.k->group ? json_sprintf("%s/%s", w->t.k->group, w->t.version)
					     : json_string(w->t.version),
			      "metadata", m);

	if (initial_end)
		json_object_set_new(m, "annotations",
				    json_pack("{s:s}", "k8s.io/initial-events-end", "true"));
	w_append(w, "BOOKMARK", o);
}

/* With the store locked: what happened after w->rv, or a wait for it. */
static void w_fill(struct watch *w)
{
	struct store *st = &w->a->st;
	uint64_t now;

	store_lock(st);
	if (w->rv < st->oldest) {
		char msg[200];

		snprintf(msg, sizeof(msg), "too old resource version: %llu (%llu)",
			 (unsigned long long)w->rv, (unsigned long long)st->oldest + 1);
		w_append(w, "ERROR", status_obj(410, "Expired", NULL, "%s", msg));
		w->ended = true;
		store_unlock(st);
		return;
	}
	if (st->rv <= w->rv)
		store_wait(st, w->rv, w->deadline < store_now_ms() + 1000 ? w->deadline : store_now_ms() + 1000);
	for (unsigned i = 0; i < st->n; i++) {
		struct store_event *e = &st->log[(st->head + i) % STORE_LOG];

		if (e->rv <= w->rv || strcmp(e->res, w->t.key) || !w_matches(w, e->obj))
			continue;
		w_event(w, e->type == EV_ADDED ? "ADDED" : e->type == EV_MODIFIED ? "MODIFIED"
										   : "DELETED",
			e->obj);
	}
	w->rv = st->rv;
	store_unlock(st);
	now = store_now_ms();
	/*
	 * at once when the cluster changed (other kinds too): a watcher then knows it has read
	 * everything up to w->rv, which `ksteer lab wait` relies on; else every API_BOOKMARK_MS
	 */
	if (w->bookmarks && (now >= w->next_bookmark || w->rv > w->bookmark_rv)) {
		w_bookmark(w, false);
		w->bookmark_rv = w->rv;
		w->next_bookmark = now + API_BOOKMARK_MS;
	}
	if (w->len > w->off)
		w->next_keepalive = now + API_KEEPALIVE_MS;
	else if (now >= w->next_keepalive) {
		if (w->len + 1 > w->cap) {
			w->cap = w->len + 64;
			w->buf = realloc(w->buf, w->cap);
			if (!w->buf)
				abort();
		}
		w->buf[w->len++] = '\n';
		w->next_keepalive = now + API_KEEPALIVE_MS;
	}
	if (now >= w->deadline)
		w->ended = true;
}

static ssize_t w_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct watch *w = cls;
	size_t n;

	(void)pos;
	while (w->off == w->len) {
		w->off = w->len = 0;
		if (w->ended)
			return MHD_CONTENT_READER_END_OF_STREAM;
		w_fill(w);
	}
	n = w->len - w->off < max ? w->len - w->off : max;
	memcpy(out, w->buf + w->off, n);
	w->off += n;
	return (ssize_t)n;
}

static void w_free(void *cls)
{
	struct watch *w = cls;

	free(w->ls);
	free(w->fs);
	free(w->buf);
	free(w);
}

static enum MHD_Result do_watch(struct api *a, struct target *t, struct MHD_Connection *c)
{
	struct watch *w = calloc(1, sizeof(*w));
	const char *rv = arg(c, "resourceVersion"), *to = arg(c, "timeoutSeconds");
	long secs = to ? strtol(to, NULL, 10) : API_MAX_WATCH;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!w)
		return MHD_NO;
	w->a = a;
	w->t = *t;
	w->ls = arg(c, "labelSelector") ? strdup(arg(c, "labelSelector")) : NULL;
	w->fs = arg(c, "fieldSelector") ? strdup(arg(c, "fieldSelector")) : NULL;
	w->table = wants_table(c);
	w->full = arg(c, "includeObject") && !strcmp(arg(c, "includeObject"), "Object");
	w->bookmarks = arg_true(c, "allowWatchBookmarks");
	if (secs <= 0 || secs > API_MAX_WATCH)
		secs = API_MAX_WATCH;
	w->deadline = store_now_ms() + (uint64_t)secs * 1000;
	w->next_bookmark = store_now_ms() + API_BOOKMARK_MS;
	w->next_keepalive = store_now_ms() + API_KEEPALIVE_MS;
	store_lock(&a->st);
	if (!rv || !*rv || !strcmp(rv, "0") || arg_true(c, "sendInitialEvents")) {
		/* the current state first, as ADDED events */
		json_t *items = filtered(a, t, c), *o;
		size_t i;

		json_array_foreach(items, i, o)
			if (w_matches(w, o))
				w_event(w, "ADDED", o);
		json_decref(items);
		w->rv = a->st.rv;
		if (arg_true(c, "sendInitialEvents"))
			w_bookmark(w, true);
	} else {
		w->rv = strtoull(rv, NULL, 10);
	}
	w->bookmark_rv = w->rv;
	store_unlock(&a->st);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, w_read, w, w_free);
	if (!resp) {
		w_free(w);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-cache, private");
	ret = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- HTTP ---- */

static enum MHD_Result send_reply(struct MHD_Connection *c, struct reply *r)
{
	char *s = json_dumps(r->body, JSON_COMPACT);
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-cache, private");
	if (r->warn[0]) {
		char w[1200];

		for (char *p = r->warn; *p; p++)
			if (*p == '"' || *p == '\n' || *p == '\r')
				*p = '\'';
		snprintf(w, sizeof(w), "299 - \"%s\"", r->warn);
		MHD_add_response_header(resp, "Warning", w);
	}
	ret = MHD_queue_response(c, (unsigned)r->code, resp);
	MHD_destroy_response(resp);
	json_decref(r->body);
	return ret;
}

static enum MHD_Result send_raw(struct MHD_Connection *c, int code, const char *type,
				const void *data, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(resp, "Content-Type", type);
	ret = MHD_queue_response(c, (unsigned)code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static bool authorized(struct api *a, struct MHD_Connection *c)
{
	const char *h = hdr(c, "Authorization");
	size_t n = strlen(a->token);
	unsigned char diff = 0;

	if (!h || strncmp(h, "Bearer ", 7) || strlen(h + 7) != n)
		return false;
	for (size_t i = 0; i < n; i++) /* in constant time */
		diff |= (unsigned char)(h[7 + i] ^ a->token[i]);
	return diff == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct api *a = cls;
	struct req *rq = *con_cls;
	struct reply r = { 0 };
	struct target t;
	json_t *body = NULL;
	int pt;

	(void)version;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size) {
		if (rq->len + *upload_size > API_MAX_BODY) {
			rq->too_big = true;
		} else {
			char *b = realloc(rq->body, rq->len + *upload_size + 1);

			if (!b)
				return MHD_NO;
			rq->body = b;
			memcpy(rq->body + rq->len, upload, *upload_size);
			rq->len += *upload_size;
			rq->body[rq->len] = 0;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (!authorized(a, c)) {
		fail(&r, 401, "Unauthorized", NULL, "Unauthorized");
		return send_reply(c, &r);
	}
	if (rq->too_big) {
		fail(&r, 413, NULL, NULL, "the request body is over the lab's 3 MiB");
		return send_reply(c, &r);
	}
	pr_debug("%s %s\n", method, url);
	if (!strcmp(method, "GET")) {
		json_t *d = NULL;

		if (!strcmp(url, "/version") || !strcmp(url, "/version/"))
			d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major", "1", "minor", "32",
				      "gitVersion", "v1.32.0-ksteer-lab", "gitCommit", "", "platform",
				      "linux/amd64", "goVersion", "none", "compiler", "gc");
		else if (!strcmp(url, "/api") || !strcmp(url, "/api/"))
			d = discovery_api(a->addr);
		else if (!strcmp(url, "/apis") || !strcmp(url, "/apis/"))
			d = discovery_apis();
		else if (!strcmp(url, "/api/v1"))
			d = discovery_resources("", "v1");
		else if (!strcmp(url, "/openapi/v3"))
			d = openapi_v3_index();
		else if (!strncmp(url, "/openapi/v3/api/", 16))
			d = openapi_v3_doc("", url + 16);
		else if (!strncmp(url, "/openapi/v3/apis/", 17)) {
			char g[128];
			const char *sl = strchr(url + 17, '/');

			if (sl && (size_t)(sl - url - 17) < sizeof(g)) {
				snprintf(g, sizeof(g), "%.*s", (int)(sl - url - 17), url + 17);
				d = openapi_v3_doc(g, sl + 1);
			}
		} else if (!strcmp(url, "/openapi/v2")) {
			size_t n;
			const unsigned char *pb = openapi_v2_pb(&n);

			return send_raw(c, 200, "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
					pb, n);
		} else if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz") || !strcmp(url, "/livez")) {
			return send_raw(c, 200, "text/plain", "ok", 2);
		} else if (!strncmp(url, "/apis/", 6) && strchr(url + 6, '/') &&
			   !strchr(strchr(url + 6, '/') + 1, '/')) {
			char g[128];
			const char *sl = strchr(url + 6, '/');

			snprintf(g, sizeof(g), "%.*s", (int)(sl - url - 6), url + 6);
			d = discovery_resources(g, sl + 1);
		}
		if (d) {
			r.code = 200;
			r.body = d;
			return send_reply(c, &r);
		}
	}
	pt = parse_target(url, &t);
	if (pt) {
		fail(&r, 404, "NotFound", NULL, "the server could not find the requested resource");
		return send_reply(c, &r);
	}
	if (!t.k->namespaced)
		t.ns[0] = 0;
	if (rq->len && hdr(c, "Content-Type") &&
	    !strncmp(hdr(c, "Content-Type"), "application/vnd.kubernetes.protobuf", 35)) {
		char m[300];

		body = kpb_decode((const unsigned char *)rq->body, rq->len, m, sizeof(m));
		if (!body) {
			fail(&r, 415, NULL, NULL, m);
			return send_reply(c, &r);
		}
	} else if (rq->len) {
		json_error_t je;

		body = json_loadb(rq->body, rq->len, 0, &je);
		if (!body) {
			char m[300];

			snprintf(m, sizeof(m), "the body is not JSON: %s (line %d)", je.text, je.line);
			fail(&r, 400, NULL, NULL, m);
			return send_reply(c, &r);
		}
	}
	if (!strcmp(method, "GET") && (t.watch_path || arg_true(c, "watch"))) {
		json_decref(body);
		return do_watch(a, &t, c);
	}
	store_lock(&a->st);
	if (!*t.name) {
		if (!strcmp(method, "GET")) {
			do_list(a, &t, c, &r);
		} else if (!strcmp(method, "POST")) {
			if (t.k->namespaced && !*t.ns)
				fail(&r, 404, NULL, NULL, "the server could not find the requested resource");
			else
				do_create(a, &t, c, body, &r);
		} else if (!strcmp(method, "DELETE")) {
			json_t *items = filtered(a, &t, c), *o;
			size_t i;

			json_array_foreach(items, i, o)
			{
				json_t *m = json_object_get(o, "metadata");

				delete_one(a, t.k, jstr(m, "namespace"), jstr(m, "name"));
			}
			if (json_array_size(items))
				sync_lab(a, t.k, &r);
			r.code = 200;
			r.body = json_pack("{s:o, s:s, s:{}, s:o}", "kind",
					   json_sprintf("%sList", t.k->kind), "apiVersion", "v1",
					   "metadata", "items", items);
		} else {
			fail(&r, 405, NULL, NULL, "the method is not allowed on a collection");
		}
	} else {
		do_object(a, &t, c, method, body, &r);
	}
	store_unlock(&a->st);
	json_decref(body);
	return send_reply(c, &r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls, (void)c, (void)toe;
	if (rq) {
		free(rq->body);
		free(rq);
	}
	*con_cls = NULL;
}

/* ---- the process ---- */

static char *slurp(const char *path)
{
	char *buf = NULL;
	size_t len = 0;

	if (read_input(path, &buf, &len))
		return NULL;
	return buf;
}

static void seed(struct api *a)
{
	/* istio-system too: the lab's clusters play clusters with Istio installed */
	static const char *const ns[] = { "default", "kube-system", "kube-public",
					  "kube-node-lease", "istio-system" };

	store_lock(&a->st);
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		json_t *o;

		if (store_get(&a->st, "/namespaces", "", ns[i]))
			continue;
		o = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind", "Namespace",
			      "metadata", "name", ns[i], "labels", "kubernetes.io/metadata.name",
			      ns[i]);
		admit_new(a, &kind_defs[0], o);
		store_put(&a->st, "/namespaces", "", ns[i], o);
	}
	store_unlock(&a->st);
}

/* ksteer lab-api --cluster NAME --index N --dir DIR --port PORT */
int lab_api(int argc, char **argv)
{
	static const struct option opts[] = { { "cluster", required_argument, NULL, 'c' },
					      { "index", required_argument, NULL, 'i' },
					      { "dir", required_argument, NULL, 'd' },
					      { "port", required_argument, NULL, 'p' },
					      { NULL, 0, NULL, 0 } };
	struct api *a = calloc(1, sizeof(*a));
	const char *dir = NULL;
	char path[4096], *cert, *key, *tok;
	int port = 0, o;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sigset_t set;

	if (!a)
		return 1;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (o == 'c')
			snprintf(a->cluster, sizeof(a->cluster), "%s", optarg);
		else if (o == 'i')
			a->index = atoi(optarg);
		else if (o == 'd')
			dir = optarg;
		else if (o == 'p')
			port = atoi(optarg);
		else
			return 2;
	if (!dir || !*a->cluster || port <= 0 || port > 65535) {
		fprintf(stderr, "usage: ksteer lab-api --cluster NAME --index N --dir DIR --port PORT\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/server.pem", dir);
	cert = slurp(path);
	snprintf(path, sizeof(path), "%s/server-key.pem", dir);
	key = slurp(path);
	snprintf(path, sizeof(path), "%s/token", dir);
	tok = slurp(path);
	if (!cert || !key || !tok) {
		fprintf(stderr, "Error: read %s/{server.pem,server-key.pem,token}\n", dir);
		return 1;
	}
	snprintf(a->token, sizeof(a->token), "%s", tok);
	a->token[strcspn(a->token, "\r\n")] = 0;
	snprintf(path, sizeof(path), "%s/store.json", dir);
	if (store_open(&a->st, path))
		return 1;
	seed(a);
	snprintf(a->addr, sizeof(a->addr), "127.0.0.1:%d", port);
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	signal(SIGPIPE, SIG_IGN);
	/* the server's threads inherit the mask: only this one takes SIGTERM */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	a->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
					MHD_USE_TLS | MHD_USE_ERROR_LOG,
				0, NULL, NULL, handle, a, MHD_OPTION_SOCK_ADDR, &sin,
				MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_CERT, cert,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_MAX_CONNS,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_IDLE_TIMEOUT,
				MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
				MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
	if (!a->d) {
		fprintf(stderr, "Error: listen on %s: %s\n", a->addr, strerror(errno));
		return 1;
	}
	if (lab_kubelet_start(&a->st, a->cluster)) {
		fprintf(stderr, "Error: start the kubelet's loop: %s\n", strerror(errno));
		return 1;
	}
	printf("lab API of %s on https://%s (resourceVersion %llu)\n", a->cluster, a->addr,
	       (unsigned long long)a->st.rv);
	fflush(stdout);
	snprintf(path, sizeof(path), "%s/ready", dir);
	{
		FILE *f = fopen(path, "w");

		if (f)
			fclose(f);
	}
	/* until SIGTERM/SIGINT: every change is on disk already */
	sigwait(&set, &o);
	MHD_stop_daemon(a->d);
	return 0;
}
