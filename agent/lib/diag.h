/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Diagnostics of a policy batch: every error and warning, with file:line:col. */
#ifndef KSTEER_DIAG_H
#define KSTEER_DIAG_H

#include <stdio.h>

enum diag_sev { DIAG_ERROR, DIAG_WARN };

struct diag_entry {
	enum diag_sev sev;
	char *file;
	unsigned line, col; /* 1-based; 0 when unknown */
	char *msg;
};

struct diag {
	struct diag_entry *v;
	unsigned n, cap;
	unsigned errors, warnings;
};

void diag_add(struct diag *d, enum diag_sev sev, const char *file, unsigned line, unsigned col,
	      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void diag_vadd(struct diag *d, enum diag_sev sev, const char *file, unsigned line, unsigned col,
	       const char *fmt, va_list ap);
/* Warnings become errors (--strict). */
void diag_promote(struct diag *d);
void diag_print(const struct diag *d, FILE *f);
/* Forget every entry from the n-th on. */
void diag_truncate(struct diag *d, unsigned n);
void diag_free(struct diag *d);

#endif
