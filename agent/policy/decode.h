/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Schema-driven decoding of libyaml documents into the typed model. A schema
 * is a table of fields (name, type, offset); the decoder records where each
 * value was, so validation can point at it later.
 */
#ifndef KSTEER_DECODE_H
#define KSTEER_DECODE_H

#include <stddef.h>
#include <yaml.h>

#include "../lib/arena.h"
#include "../lib/diag.h"
#include "model.h"

enum ftype {
	F_STR, /* const char *: any scalar */
	F_INT, /* int64_t: an integer scalar */
	F_NUM, /* double */
	F_BOOL, /* bool */
	F_DUR, /* int64_t milliseconds, from "1.5s", "100ms", "1h30m" */
	F_STRS, /* struct strs: a list of scalars */
	F_MAP, /* struct kvs: string -> scalar */
	F_OBJMAP, /* struct kvs: string -> object of `sub` */
	F_OBJ, /* pointer to an object of `sub` */
	F_OBJS, /* OBJS(sub): a list of objects */
	F_ANY, /* accepted and not interpreted */
};

struct field {
	const char *name;
	enum ftype type;
	size_t off;
	const struct schema *sub;
};

struct schema {
	const char *name;
	size_t size;
	const struct field *f;
	unsigned nf;
	int lenient; /* unknown fields are ignored (Kubernetes objects), not errors */
};

struct dec {
	struct arena *a;
	struct diag *diag;
	const char *file;
	yaml_document_t *doc;
	const char *who; /* "VirtualService hello/helloworld" */
	long budget; /* nodes left to visit: aliases must not expand without bound */
	int failed;
};

int dec_struct(struct dec *d, yaml_node_t *n, const char *path, const struct schema *s, void *out);
void dec_error(struct dec *d, const yaml_node_t *n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Index of a field in its schema, -1 if none: for validation messages. */
int schema_field(const struct schema *s, const char *name);
/* Whether field `name` was present in `o`. */
int obj_has(const struct obj *o, const char *name);
/* Where field `name` of `o` was, or the object itself when absent. */
struct pos obj_fpos(const struct obj *o, const char *name);

int parse_duration_ms(const char *s, int64_t *ms);
const char *expand_env(struct arena *a, const char *s);

extern const struct schema schema_meta;
extern const struct schema *const kind_spec_schema[];

#endif
