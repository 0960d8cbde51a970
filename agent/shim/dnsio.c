// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The mesh resolver's sockets: pods' queries in, answers out, the rest forwarded. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../dns/dns.h"
#include "../lib/log.h"
#include "shim_int.h"

#define DNS_FORWARD_MS 5000

static void forward(struct shim *s, const uint8_t *q, size_t n, const struct sockaddr_in6 *from)
{
	uint64_t now = now_ms();
	unsigned free_slot = DNS_PENDING;
	uint16_t id;
	uint8_t *copy;

	for (unsigned i = 0; i < DNS_PENDING; i++) {
		if (s->dns_pending[i].used && now - s->dns_pending[i].sent > DNS_FORWARD_MS)
			s->dns_pending[i].used = false; /* the client has given up by now */
		if (!s->dns_pending[i].used && free_slot == DNS_PENDING)
			free_slot = i;
	}
	if (free_slot == DNS_PENDING || n < 12)
		return; /* busy: the client retries */
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint16_t)rand();
	copy = malloc(n);
	if (!copy)
		return;
	memcpy(copy, q, n);
	s->dns_pending[free_slot].used = true;
	s->dns_pending[free_slot].id = id;
	memcpy(&s->dns_pending[free_slot].client_id, q, 2);
	s->dns_pending[free_slot].client = *from;
	s->dns_pending[free_slot].sent = now;
	memcpy(copy, &id, 2); /* our own id upstream: clients' ids may collide */
	if (send(s->dns_up_fd, copy, n, 0) > 0)
		s->st.dns_forwarded++;
	free(copy);
}

void dns_query(struct shim *s, int fd)
{
	uint8_t q[4096], *out = NULL;
	struct sockaddr_in6 from;
	socklen_t fl = sizeof(from);
	size_t out_len = 0;
	ssize_t n;

	while ((n = recvfrom(fd, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&from, &fl)) >= 0) {
		s->st.dns_queries++;
		switch (dns_answer(s->plan, q, (size_t)n, s->dns_up_fd >= 0, &out, &out_len)) {
		case DNS_REPLY:
			sendto(fd, out, out_len, MSG_DONTWAIT, (struct sockaddr *)&from, fl);
			s->st.dns_answered++;
			free(out);
			break;
		case DNS_FORWARD:
			forward(s, q, (size_t)n, &from);
			break;
		case DNS_DROP:
			s->st.dns_bad++;
			break;
		}
		out = NULL;
		fl = sizeof(from);
	}
}

void dns_upstream_reply(struct shim *s, int fd)
{
	uint8_t r[4096];
	ssize_t n;
	uint16_t id;

	while ((n = recv(fd, r, sizeof(r), MSG_DONTWAIT)) >= 12) {
		memcpy(&id, r, 2);
		for (unsigned i = 0; i < DNS_PENDING; i++) {
			if (!s->dns_pending[i].used || s->dns_pending[i].id != id)
				continue;
			memcpy(r, &s->dns_pending[i].client_id, 2);
			sendto(s->dns_fd, r, (size_t)n, MSG_DONTWAIT,
			       (struct sockaddr *)&s->dns_pending[i].client,
			       sizeof(s->dns_pending[i].client));
			s->dns_pending[i].used = false;
			break;
		}
	}
}

int dns_sockets(struct shim *s, int *fd, int *up_fd)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(s->o.dns_port)};
	int one = 1;

	*fd = *up_fd = -1;
	memcpy(&sa.sin6_addr, &s->o.out_addr, 16);
	*fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return -errno;
	setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(*fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(*fd);
		*fd = -1;
		return err;
	}
	if (s->o.dns_upstream_set) {
		struct sockaddr_in6 up = {.sin6_family = AF_INET6,
					  .sin6_port = htons(s->o.dns_upstream_port)};

		memcpy(&up.sin6_addr, &s->o.dns_upstream, 16);
		*up_fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (*up_fd >= 0) {
			/* marked: the agent's own queries are never redirected to itself */
			setsockopt(*up_fd, SOL_SOCKET, SO_MARK, &s->o.mark, sizeof(s->o.mark));
			if (connect(*up_fd, (struct sockaddr *)&up, sizeof(up))) {
				pr_warn("shim: DNS upstream: %s\n", strerror(errno));
				close(*up_fd);
				*up_fd = -1;
			}
		}
	}
	return 0;
}
