// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

enum log_level log_level = LOG_INFO;

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl > log_level)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}
