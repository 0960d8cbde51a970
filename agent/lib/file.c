// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int read_input(const char *path, char **buf, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	FILE *m;
	char chunk[65536];
	size_t r;

	*buf = NULL;
	*len = 0;
	if (!f) {
		int err = -errno;

		fprintf(stderr, "Error: open %s: %s\n", path, strerror(errno));
		return err;
	}
	m = open_memstream(buf, len);
	while (m && (r = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, r, m);
	if (f != stdin)
		fclose(f);
	if (!m || fclose(m)) {
		fprintf(stderr, "Error: read %s: out of memory\n", path);
		return -ENOMEM;
	}
	return 0;
}
