/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A small HTTPS client of the lab's API server (lab apply): one request per connection. */
#ifndef KSTEER_LAB_KCLIENT_H
#define KSTEER_LAB_KCLIENT_H

#include <jansson.h>

#define KCLIENT_MAX_REPLY (8u << 20)
#define KCLIENT_TIMEOUT 60 /* s, a request (the server makes pods before it answers) */

struct kclient {
	int port;
	char ca[4096];
	char token[256];
};

/* Sends method path with body (NULL: none); *code and *reply (NULL if not JSON). 0 or -errno. */
int kclient_call(const struct kclient *k, const char *method, const char *path, const char *ctype,
		 json_t *body, int *code, json_t **reply);

#endif
