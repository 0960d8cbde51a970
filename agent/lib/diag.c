// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void diag_vadd(struct diag *d, enum diag_sev sev, const char *file, unsigned line, unsigned col,
	       const char *fmt, va_list ap)
{
	struct diag_entry *e;
	va_list ap2;
	char *msg;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	msg = malloc((size_t)n + 1);
	if (!msg)
		abort();
	vsnprintf(msg, (size_t)n + 1, fmt, ap);
	/* one object reached from several frontends says the same thing once */
	for (unsigned i = 0; i < d->n; i++)
		if (d->v[i].line == line && d->v[i].col == col && !strcmp(d->v[i].msg, msg) &&
		    (file ? d->v[i].file && !strcmp(d->v[i].file, file) : !d->v[i].file)) {
			free(msg);
			return;
		}

	if (d->n == d->cap) {
		unsigned cap = d->cap ? d->cap * 2 : 16;
		void *v = realloc(d->v, cap * sizeof(*d->v));

		if (!v)
			abort();
		d->v = v;
		d->cap = cap;
	}
	e = &d->v[d->n++];
	e->sev = sev;
	e->file = file ? strdup(file) : NULL;
	e->line = line;
	e->col = col;
	e->msg = msg;
	if (file && !e->file)
		abort();
	if (sev == DIAG_ERROR)
		d->errors++;
	else
		d->warnings++;
}

void diag_add(struct diag *d, enum diag_sev sev, const char *file, unsigned line, unsigned col,
	      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(d, sev, file, line, col, fmt, ap);
	va_end(ap);
}

void diag_promote(struct diag *d)
{
	for (unsigned i = 0; i < d->n; i++)
		d->v[i].sev = DIAG_ERROR;
	d->errors += d->warnings;
	d->warnings = 0;
}

void diag_print(const struct diag *d, FILE *f)
{
	for (unsigned i = 0; i < d->n; i++) {
		const struct diag_entry *e = &d->v[i];
		const char *sev = e->sev == DIAG_ERROR ? "error" : "warning";

		if (e->file && e->line)
			fprintf(f, "%s:%u:%u: %s: %s\n", e->file, e->line, e->col, sev, e->msg);
		else if (e->file)
			fprintf(f, "%s: %s: %s\n", e->file, sev, e->msg);
		else
			fprintf(f, "%s: %s\n", sev, e->msg);
	}
}

void diag_truncate(struct diag *d, unsigned n)
{
	while (d->n > n) {
		struct diag_entry *e = &d->v[--d->n];

		if (e->sev == DIAG_ERROR)
			d->errors--;
		else
			d->warnings--;
		free(e->file);
		free(e->msg);
	}
}

void diag_free(struct diag *d)
{
	for (unsigned i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	memset(d, 0, sizeof(*d));
}
