/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef KSTEER_FILE_H
#define KSTEER_FILE_H

#include <stddef.h>

/* The whole of a file, or of stdin for "-", in *buf (caller frees). 0 or -errno, said on stderr. */
int read_input(const char *path, char **buf, size_t *len);

#endif
