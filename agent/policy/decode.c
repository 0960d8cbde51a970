// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "decode.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static struct pos node_pos(const yaml_node_t *n)
{
	return (struct pos){ (uint32_t)n->start_mark.line + 1, (uint32_t)n->start_mark.column + 1 };
}

void dec_error(struct dec *d, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
	struct pos p = n ? node_pos(n) : (struct pos){ 0, 0 };
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the only object decoded with an empty path below the top is the spec */
	diag_add(d->diag, DIAG_ERROR, d->file, p.line, p.col, "%s: %s: %s", d->who,
		 path && *path ? path : "spec", msg);
	d->failed = 1;
}

/* Field paths are built for every node: plain copies, not printf. */
static const char *path_field(struct arena *a, const char *base, const char *name)
{
	size_t bl = strlen(base), nl = strlen(name);
	char *p = arena_alloc(a, bl + nl + 2);

	memcpy(p, base, bl);
	p[bl] = '.';
	memcpy(p + bl + 1, name, nl + 1);
	return p;
}

static const char *path_index(struct arena *a, const char *base, uint32_t i)
{
	size_t bl = strlen(base);
	char num[12], *p;
	int n = 0;

	do
		num[n++] = (char)('0' + i % 10);
	while ((i /= 10));
	p = arena_alloc(a, bl + (size_t)n + 3);
	memcpy(p, base, bl);
	p[bl] = '[';
	for (int k = 0; k < n; k++)
		p[bl + 1 + k] = num[n - 1 - k];
	p[bl + 1 + n] = ']';
	return p;
}

static int visit(struct dec *d, const yaml_node_t *n)
{
	if (--d->budget >= 0)
		return 0;
	if (d->budget == -1)
		dec_error(d, n, NULL,
			  "document expands to too many nodes (alias expansion?): refused");
	return -E2BIG;
}

static int is_null(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

const char *expand_env(struct arena *a, const char *s)
{
	const char *p = strstr(s, "${");
	size_t cap, len = 0;
	char *out;

	if (!p)
		return s;
	cap = strlen(s) + 1;
	out = malloc(cap);
	if (!out)
		abort();
	while (*s) {
		const char *end, *val = NULL;
		size_t nl = 0, vl;

		if (s[0] == '$' && s[1] == '{' && (isalpha((unsigned char)s[2]) || s[2] == '_')) {
			for (end = s + 2; isalnum((unsigned char)*end) || *end == '_'; end++)
				;
			if (*end == '}') {
				char name[128];

				nl = (size_t)(end - s - 2);
				if (nl < sizeof(name)) {
					memcpy(name, s + 2, nl);
					name[nl] = 0;
					val = getenv(name);
				}
			}
		}
		if (val) {
			vl = strlen(val);
			cap += vl;
			out = realloc(out, cap);
			if (!out)
				abort();
			memcpy(out + len, val, vl);
			len += vl;
			s += nl + 3;
		} else {
			out[len++] = *s++;
		}
	}
	out[len] = 0;
	s = arena_strndup(a, out, len);
	free(out);
	return s;
}

int parse_duration_ms(const char *s, int64_t *ms)
{
	/* Go's time.ParseDuration units, which Istio's durations accept */
	static const struct {
		const char *u;
		double ms;
	} units[] = { { "ns", 1e-6 }, { "us", 1e-3 }, { "\xc2\xb5s", 1e-3 }, { "ms", 1 },
		      { "s", 1e3 },   { "m", 6e4 },   { "h", 3.6e6 } };
	double total = 0;

	if (!*s)
		return -EINVAL;
	if (!strcmp(s, "0")) {
		*ms = 0;
		return 0;
	}
	while (*s) {
		char *end;
		double v;
		size_t best = 0, bl = 0;

		if (!isdigit((unsigned char)*s) && *s != '.')
			return -EINVAL;
		errno = 0;
		v = strtod(s, &end);
		if (end == s || errno || v < 0)
			return -EINVAL;
		s = end;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].u);

			if (!strncmp(s, units[i].u, l) && l > bl) {
				best = i;
				bl = l;
			}
		}
		if (!bl)
			return -EINVAL;
		total += v * units[best].ms;
		s += bl;
	}
	if (total > 1e15)
		return -ERANGE;
	*ms = (int64_t)llround(total);
	if (*ms == 0 && total > 0)
		*ms = 1; /* sub-millisecond but not zero: keep it non-zero */
	return 0;
}

int schema_field(const struct schema *s, const char *name)
{
	for (unsigned i = 0; s && i < s->nf; i++)
		if (!strcmp(s->f[i].name, name))
			return (int)i;
	return -1;
}

int obj_has(const struct obj *o, const char *name)
{
	int i = schema_field(o->schema, name);

	return i >= 0 && (o->has >> i) & 1;
}

struct pos obj_fpos(const struct obj *o, const char *name)
{
	int i = schema_field(o->schema, name);

	if (i >= 0 && (o->has >> i) & 1)
		return o->fpos[i];
	return o->pos;
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static int dec_int(struct dec *d, yaml_node_t *n, const char *path, int64_t *out)
{
	const char *v = scalar(n);
	char *end;
	long long x;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
		dec_error(d, n, path, "expected an integer");
		return -EINVAL;
	}
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || end == v || *end) {
		dec_error(d, n, path, "expected an integer, got \"%s\"", v);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

static int dec_num(struct dec *d, yaml_node_t *n, const char *path, double *out)
{
	const char *v = scalar(n);
	char *end;
	double x;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
		dec_error(d, n, path, "expected a number");
		return -EINVAL;
	}
	errno = 0;
	x = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(x)) {
		dec_error(d, n, path, "expected a number, got \"%s\"", v);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

static int dec_bool(struct dec *d, yaml_node_t *n, const char *path, bool *out)
{
	const char *v = scalar(n);

	if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) {
			*out = true;
			return 0;
		}
		if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) {
			*out = false;
			return 0;
		}
	}
	dec_error(d, n, path, "expected true or false");
	return -EINVAL;
}

static int dec_str(struct dec *d, yaml_node_t *n, const char *path, const char **out)
{
	if (n->type != YAML_SCALAR_NODE) {
		dec_error(d, n, path, "expected a string");
		return -EINVAL;
	}
	if (memchr(scalar(n), 0, n->data.scalar.length)) {
		dec_error(d, n, path, "string contains a NUL byte");
		return -EINVAL;
	}
	*out = expand_env(d->a, arena_strndup(d->a, scalar(n), n->data.scalar.length));
	return 0;
}

static int dec_strs(struct dec *d, yaml_node_t *n, const char *path, struct strs *out)
{
	yaml_node_item_t *it;
	uint32_t i = 0;
	int err = 0;

	if (n->type != YAML_SEQUENCE_NODE) {
		dec_error(d, n, path, "expected a list of strings");
		return -EINVAL;
	}
	out->n = (uint32_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	out->v = arena_array(d->a, out->n, sizeof(*out->v));
	out->pos = arena_array(d->a, out->n, sizeof(*out->pos));
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
		yaml_node_t *c = yaml_document_get_node(d->doc, *it);

		if (visit(d, c))
			return -E2BIG;
		out->pos[i] = node_pos(c);
		if (dec_str(d, c, path_index(d->a, path, i), &out->v[i])) {
			out->v[i] = ""; /* validation still walks the list: no NULL holes */
			err = -EINVAL;
		}
	}
	return err;
}

static int dec_map(struct dec *d, yaml_node_t *n, const char *path, const struct schema *sub,
		   struct kvs *out)
{
	yaml_node_pair_t *p;
	uint32_t i = 0;
	int err = 0;

	if (n->type != YAML_MAPPING_NODE) {
		dec_error(d, n, path, "expected a map");
		return -EINVAL;
	}
	out->n = (uint32_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	out->v = arena_array(d->a, out->n, sizeof(*out->v));
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++, i++) {
		yaml_node_t *k = yaml_document_get_node(d->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(d->doc, p->value);
		struct kv *e = &out->v[i];
		const char *sub_path;

		if (visit(d, k) || visit(d, v))
			return -E2BIG;
		if (sub) /* allocated first: a failed entry is still a valid empty object */
			e->o = arena_alloc(d->a, sub->size);
		if (k->type != YAML_SCALAR_NODE) {
			dec_error(d, k, path, "map keys must be strings");
			e->k = "";
			err = -EINVAL;
			continue;
		}
		e->k = arena_strndup(d->a, scalar(k), k->data.scalar.length);
		e->pos = node_pos(v);
		/* a NUL would cut the C string short of what the user wrote */
		if (memchr(scalar(k), 0, k->data.scalar.length)) {
			dec_error(d, k, path, "map key contains a NUL byte");
			err = -EINVAL;
		}
		for (uint32_t j = 0; j < i; j++)
			if (out->v[j].k && !strcmp(out->v[j].k, e->k)) {
				dec_error(d, k, path, "duplicate key \"%s\"", e->k);
				err = -EINVAL;
			}
		sub_path = path_field(d->a, path, e->k);
		if (sub) {
			if (is_null(v))
				v = NULL;
			if (v && dec_struct(d, v, sub_path, sub, e->o))
				err = -EINVAL;
			else if (!v) /* `name: {}` and `name:` both mean an empty object */
				((struct obj *)e->o)->pos = e->pos;
		} else if (v->type != YAML_SCALAR_NODE) {
			dec_error(d, v, sub_path, "expected a string");
			e->v = "";
			err = -EINVAL;
		} else if (memchr(scalar(v), 0, v->data.scalar.length)) {
			dec_error(d, v, sub_path, "string contains a NUL byte");
			e->v = "";
			err = -EINVAL;
		} else {
			e->v = arena_strndup(d->a, scalar(v), v->data.scalar.length);
		}
	}
	return err;
}

static int dec_field(struct dec *d, yaml_node_t *v, const char *path, const struct field *f,
		     void *out)
{
	void *slot = (char *)out + f->off;

	switch (f->type) {
	case F_STR:
		return dec_str(d, v, path, (const char **)slot);
	case F_INT:
		return dec_int(d, v, path, (int64_t *)slot);
	case F_NUM:
		return dec_num(d, v, path, (double *)slot);
	case F_BOOL:
		return dec_bool(d, v, path, (bool *)slot);
	case F_DUR: {
		const char *s;

		if (dec_str(d, v, path, &s))
			return -EINVAL;
		if (parse_duration_ms(s, (int64_t *)slot)) {
			dec_error(d, v, path, "invalid duration \"%s\" (e.g. 5s, 100ms, 1m30s)", s);
			return -EINVAL;
		}
		return 0;
	}
	case F_STRS:
		return dec_strs(d, v, path, (struct strs *)slot);
	case F_MAP:
		return dec_map(d, v, path, NULL, (struct kvs *)slot);
	case F_OBJMAP:
		return dec_map(d, v, path, f->sub, (struct kvs *)slot);
	case F_OBJ: {
		void *o = arena_alloc(d->a, f->sub->size);

		*(void **)slot = o;
		return dec_struct(d, v, path, f->sub, o);
	}
	case F_OBJS: {
		struct {
			void *v;
			uint32_t n;
		} *list = slot;
		yaml_node_item_t *it;
		uint32_t i = 0;
		int err = 0;

		if (v->type != YAML_SEQUENCE_NODE) {
			dec_error(d, v, path, "expected a list");
			return -EINVAL;
		}
		list->n = (uint32_t)(v->data.sequence.items.top - v->data.sequence.items.start);
		list->v = arena_array(d->a, list->n, f->sub->size);
		for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++, i++) {
			yaml_node_t *c = yaml_document_get_node(d->doc, *it);
			void *elem = (char *)list->v + (size_t)i * f->sub->size;

			if (visit(d, c))
				return -E2BIG;
			if (dec_struct(d, c, path_index(d->a, path, i), f->sub, elem))
				err = -EINVAL;
		}
		return err;
	}
	case F_ANY:
		return 0;
	}
	return -EINVAL;
}

int dec_struct(struct dec *d, yaml_node_t *n, const char *path, const struct schema *s, void *out)
{
	struct obj *o = out;
	yaml_node_pair_t *p;
	int err = 0;

	o->pos = node_pos(n);
	o->path = path;
	o->schema = s;
	o->fpos = arena_array(d->a, s->nf ? s->nf : 1, sizeof(*o->fpos));
	if (is_null(n)) /* `tls:` with nothing after it is an empty object */
		return 0;
	if (n->type != YAML_MAPPING_NODE) {
		dec_error(d, n, path, "expected an object");
		return -EINVAL;
	}
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(d->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(d->doc, p->value);
		const char *name, *fpath;
		int i;

		if (visit(d, k) || visit(d, v))
			return -E2BIG;
		if (k->type != YAML_SCALAR_NODE) {
			dec_error(d, k, path, "field names must be strings");
			err = -EINVAL;
			continue;
		}
		name = scalar(k);
		i = schema_field(s, name);
		if (!*path && !strcmp(name, "spec"))
			fpath = ""; /* fields are named from the spec down, as in kubectl explain */
		else if (*path)
			fpath = path_field(d->a, path, name);
		else
			fpath = arena_strdup(d->a, name);
		if (i < 0) {
			if (!s->lenient) {
				dec_error(d, k, fpath, "unknown field \"%s\" in %s", name, s->name);
				err = -EINVAL;
			}
			continue;
		}
		if ((o->has >> i) & 1) {
			dec_error(d, k, fpath, "duplicate field");
			err = -EINVAL;
			continue;
		}
		if (is_null(v) && s->f[i].type != F_OBJ)
			continue; /* `field: null` is the same as leaving it out */
		o->has |= 1ull << i;
		o->fpos[i] = node_pos(v);
		if (is_null(v)) { /* F_OBJ given as `name:`: an empty object */
			void *e = arena_alloc(d->a, s->f[i].sub->size);

			*(void **)((char *)out + s->f[i].off) = e;
			dec_struct(d, v, fpath, s->f[i].sub, e);
			continue;
		}
		if (dec_field(d, v, fpath, &s->f[i], out))
			err = -EINVAL;
		if (d->budget < 0)
			return -E2BIG;
	}
	return err;
}
