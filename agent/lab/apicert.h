/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef KSTEER_LAB_APICERT_H
#define KSTEER_LAB_APICERT_H

#include <stdbool.h>

/* In dir: ca.pem, server.pem (127.0.0.1, localhost), server-key.pem, token. 0 or -errno. */
int api_cert_make(const char *dir);

#endif
