/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared helpers of the unit tests: load YAML text into a batch, capture diagnostics. */
#ifndef KSTEER_TEST_HARNESS_H
#define KSTEER_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/compile/compile.h"
#include "agent/policy/policy.h"

struct batch {
	struct diag diag;
	struct policy p;
	struct plan plan;
	char *diag_text; /* every diagnostic, one per line */
	int load_rc, validate_rc, compile_rc;
};

/* A whole file as a string (caller frees); fails the test when it cannot be read. */
static inline char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		fail_msg("cannot open %s (is ../shared beside the checkout? KSTEER_SHARED)", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		fail_msg("short read: %s", path);
	fclose(f);
	return buf;
}

/* Loads docs (a NULL-terminated list of {name, yaml} pairs), validates, compiles. */
static inline void batch_run(struct batch *b, const char *ns, const char *const *docs)
{
	size_t len = 0;
	FILE *f;

	memset(b, 0, sizeof(*b));
	policy_init(&b->p, &b->diag, ns);
	for (; docs[0]; docs += 2)
		if (policy_load_buffer(&b->p, docs[0], docs[1], strlen(docs[1])))
			b->load_rc = -1;
	b->validate_rc = policy_validate(&b->p);
	if (!b->diag.errors)
		b->compile_rc = plan_compile(&b->plan, &b->p, &b->diag);
	f = open_memstream(&b->diag_text, &len);
	diag_print(&b->diag, f);
	fclose(f);
}

static inline void batch_one(struct batch *b, const char *ns, const char *name, const char *yaml)
{
	const char *docs[] = { name, yaml, NULL };

	batch_run(b, ns, docs);
}

static inline void batch_free(struct batch *b)
{
	plan_free(&b->plan);
	policy_free(&b->p);
	diag_free(&b->diag);
	free(b->diag_text);
}

/* Fails the test with both texts when `needle` is not in `hay`. */
#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		const char *h_ = (hay), *n_ = (needle);                                            \
		if (!h_ || !strstr(h_, n_))                                                        \
			fail_msg("expected to find:\n  %s\nin:\n%s", n_, h_ ? h_ : "(null)");      \
	} while (0)

static inline const struct resource *find_res(const struct policy *p, enum kind k,
					      const char *name)
{
	for (unsigned i = 0; i < p->n; i++)
		if (p->res[i]->kind == k && !strcmp(p->res[i]->name, name))
			return p->res[i];
	return NULL;
}

static inline const struct c_frontend *find_fe(const struct plan *pl, const char *host,
					       unsigned port)
{
	for (unsigned i = 0; i < pl->n_fes; i++)
		if (!pl->fes[i].gateway && !strcmp(pl->fes[i].host, host) && pl->fes[i].port == port)
			return &pl->fes[i];
	return NULL;
}

#endif
