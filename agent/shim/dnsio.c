// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The mesh resolver's sockets: pods' queries in, answers out, the rest forwarded. */
#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "../lib/log.h"
#include "shim_int.h"

#define DNS_EV_TIMER UINT32_MAX /* the timer's event tag; the rest are slot indexes */

static void reply_to(struct shim *s, const struct sockaddr_in6 *to, const uint8_t *p, size_t n)
{
	sendto(s->dns_fd, p, n, MSG_DONTWAIT, (const struct sockaddr *)to, sizeof(*to));
}

/* Answers q (the client's own query, or a slot's copy) with rcode and no records. */
static void reply_error(struct shim *s, const struct sockaddr_in6 *to, const uint8_t *q,
			size_t qlen, uint8_t rcode)
{
	uint8_t *out = NULL;
	size_t n = 0;

	if (dns_error(q, qlen, rcode, &out, &n) == DNS_REPLY)
		reply_to(s, to, out, n);
	free(out);
}

/* The timer fires at the earliest deadline of the queries in flight, or not at all. */
static void timer_arm(struct shim *s, uint64_t now)
{
	struct dns_proxy *d = &s->dns;
	struct itimerspec its = {0};
	uint64_t first = UINT64_MAX;

	for (unsigned i = 0; d->n_fwd && i < DNS_PENDING; i++)
		if (d->fwd[i].fd >= 0 && d->fwd[i].deadline < first)
			first = d->fwd[i].deadline;
	if (first != UINT64_MAX) {
		uint64_t ms = first > now ? first - now : 1;

		its.it_value.tv_sec = (time_t)(ms / 1000);
		its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	}
	timerfd_settime(d->timer_fd, 0, &its, NULL);
}

static void fwd_free(struct shim *s, struct dns_fwd *f)
{
	close(f->fd); /* and out of the epoll set with it */
	f->fd = -1;
	f->src->pending--;
	s->dns.n_fwd--;
}

/* A query for the upstream: its own socket, a random ID, its question kept to check answers. */
static void forward(struct shim *s, const uint8_t *q, size_t n, const struct sockaddr_in6 *from,
		    struct dns_source *src, uint64_t now)
{
	struct dns_proxy *d = &s->dns;
	struct dns_fwd *f = NULL;
	struct epoll_event ev = {.events = EPOLLIN};
	uint8_t *copy = NULL;
	uint16_t id;
	int qlen;

	for (unsigned i = 0; i < DNS_PENDING && !f; i++)
		if (d->fwd[i].fd < 0)
			f = &d->fwd[i];
	if (!f || src->pending >= DNS_SOURCE_PENDING) {
		s->st.dns_refused++;
		reply_error(s, from, q, n, LDNS_RCODE_REFUSED);
		return;
	}
	if (getrandom(&id, sizeof(id), 0) != sizeof(id)) {
		s->st.dns_upstream_failed++;
		reply_error(s, from, q, n, LDNS_RCODE_SERVFAIL);
		return;
	}
	qlen = dns_question_copy(q, n, f->q, sizeof(f->q));
	copy = malloc(n);
	if (qlen < 0 || !copy)
		goto fail;
	/* connect binds the socket to a port the kernel picks at random, and makes the kernel
	 * drop datagrams from any other address and port */
	f->fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->fd < 0)
		goto fail;
	/* marked: the agent's own queries are never redirected to itself */
	setsockopt(f->fd, SOL_SOCKET, SO_MARK, &s->o.mark, sizeof(s->o.mark));
	memcpy(copy, q, n);
	memcpy(copy, &id, 2); /* our own id upstream: it is not the client's to choose */
	memcpy(f->q, &id, 2);
	ev.data.u64 = (uint64_t)++d->gen << 32 | (uint64_t)(f - d->fwd);
	if (connect(f->fd, (struct sockaddr *)&d->upstream, sizeof(d->upstream)) ||
	    send(f->fd, copy, n, 0) != (ssize_t)n || epoll_ctl(d->ep_fd, EPOLL_CTL_ADD, f->fd, &ev))
		goto fail;
	free(copy);
	f->gen = d->gen;
	f->qlen = (uint16_t)qlen;
	memcpy(&f->client_id, q, 2);
	f->client = *from;
	f->src = src;
	f->deadline = now + d->timeout_ms;
	src->pending++;
	d->n_fwd++;
	s->st.dns_forwarded++;
	timer_arm(s, now);
	return;
fail:
	pr_debug("shim: DNS forward: %s\n", strerror(errno));
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	free(copy);
	s->st.dns_upstream_failed++;
	reply_error(s, from, q, n, LDNS_RCODE_SERVFAIL);
}

void dns_query(struct shim *s, int fd)
{
	uint8_t q[4096], *out = NULL;
	struct sockaddr_in6 from;
	socklen_t fl = sizeof(from);
	size_t out_len = 0;
	ssize_t n;

	while ((n = recvfrom(fd, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&from, &fl)) >= 0) {
		uint64_t now = now_ms();
		struct dns_source *src =
		    dns_source_get(&s->dns.budget, (const uint8_t *)&from.sin6_addr, now);

		s->st.dns_queries++;
		fl = sizeof(from);
		/* over budget: dropped unparsed, the cheapest answer to a flood */
		if (!src || !dns_source_take(src, now)) {
			s->st.dns_over_rate++;
			continue;
		}
		switch (dns_answer(s->plan, q, (size_t)n, s->dns_up_fd >= 0, &out, &out_len)) {
		case DNS_REPLY:
			reply_to(s, &from, out, out_len);
			s->st.dns_answered++;
			free(out);
			break;
		case DNS_FORWARD:
			forward(s, q, (size_t)n, &from, src, now);
			break;
		case DNS_DROP:
			s->st.dns_bad++;
			break;
		}
		out = NULL;
	}
}

/* What the upstream sent on one forwarded query's socket: its answer, strays, or an error. */
static void fwd_read(struct shim *s, struct dns_fwd *f)
{
	uint8_t r[4096];
	ssize_t n;

	while ((n = recv(f->fd, r, sizeof(r), MSG_DONTWAIT)) >= 0 || errno == EINTR) {
		if (n < 0)
			continue;
		if (!dns_reply_matches(f->q, f->qlen, r, (size_t)n)) {
			s->st.dns_mismatched++; /* a forgery or a late stray: the query waits on */
			continue;
		}
		memcpy(r, &f->client_id, 2);
		reply_to(s, &f->client, r, (size_t)n);
		s->st.dns_relayed++;
		fwd_free(s, f);
		return;
	}
	if (errno == EAGAIN)
		return;
	/* ECONNREFUSED (an ICMP port unreachable) and the like: no answer will come */
	memcpy(f->q, &f->client_id, 2);
	reply_error(s, &f->client, f->q, f->qlen, LDNS_RCODE_SERVFAIL);
	s->st.dns_upstream_failed++;
	fwd_free(s, f);
}

static void timeouts(struct shim *s, uint64_t now)
{
	struct dns_proxy *d = &s->dns;
	uint64_t x;

	if (read(d->timer_fd, &x, sizeof(x)) < 0 && errno != EAGAIN)
		return;
	for (unsigned i = 0; d->n_fwd && i < DNS_PENDING; i++) {
		struct dns_fwd *f = &d->fwd[i];

		if (f->fd < 0 || f->deadline > now)
			continue;
		memcpy(f->q, &f->client_id, 2);
		reply_error(s, &f->client, f->q, f->qlen, LDNS_RCODE_SERVFAIL);
		s->st.dns_timeouts++;
		fwd_free(s, f);
	}
}

void dns_upstream_reply(struct shim *s, int fd)
{
	struct dns_proxy *d = &s->dns;
	struct epoll_event ev[64];
	bool fired = false;
	int n;

	n = epoll_wait(fd, ev, 64, 0);
	for (int i = 0; i < n; i++) {
		uint32_t idx = (uint32_t)ev[i].data.u64, gen = (uint32_t)(ev[i].data.u64 >> 32);

		if (idx == DNS_EV_TIMER) {
			fired = true;
		} else if (idx < DNS_PENDING && d->fwd[idx].fd >= 0 && d->fwd[idx].gen == gen) {
			fwd_read(s, &d->fwd[idx]);
		}
	}
	if (fired)
		timeouts(s, now_ms());
	if (n > 0)
		timer_arm(s, now_ms());
}

int dns_sockets(struct shim *s, int *fd, int *up_fd)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(s->o.dns_port)};
	struct dns_proxy *d = &s->dns;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = DNS_EV_TIMER};
	uint32_t seed = 0;
	int one = 1, err;

	*fd = *up_fd = -1;
	d->ep_fd = d->timer_fd = -1;
	for (unsigned i = 0; i < DNS_PENDING; i++)
		d->fwd[i].fd = -1;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint32_t)now_ms();
	dns_budget_init(&d->budget, seed);
	if (!d->timeout_ms)
		d->timeout_ms = DNS_FORWARD_MS;
	memcpy(&sa.sin6_addr, &s->o.out_addr, 16);
	*fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return -errno;
	setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(*fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto fail;
	if (!s->o.dns_upstream_set)
		return 0;
	d->upstream = (struct sockaddr_in6){.sin6_family = AF_INET6,
					    .sin6_port = htons(s->o.dns_upstream_port)};
	memcpy(&d->upstream.sin6_addr, &s->o.dns_upstream, 16);
	d->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->ep_fd < 0 || d->timer_fd < 0 || epoll_ctl(d->ep_fd, EPOLL_CTL_ADD, d->timer_fd, &ev))
		goto fail;
	*up_fd = d->ep_fd;
	return 0;
fail:
	err = -errno;
	close(*fd);
	*fd = -1;
	dns_close(s);
	if (d->ep_fd >= 0)
		close(d->ep_fd);
	d->ep_fd = -1;
	return err;
}

void dns_close(struct shim *s)
{
	struct dns_proxy *d = &s->dns;

	for (unsigned i = 0; d->n_fwd && i < DNS_PENDING; i++)
		if (d->fwd[i].fd >= 0)
			fwd_free(s, &d->fwd[i]);
	if (d->timer_fd > 0) /* 0: a shim closed before its resolver was set up */
		close(d->timer_fd);
	d->timer_fd = -1;
}
