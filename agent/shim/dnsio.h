/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The mesh resolver's sockets (UDP, out_addr:15053). Pods' queries are
 * answered by agent/dns or forwarded upstream, each forwarded query from its
 * own socket (a port the kernel picks at random) under a fresh random ID;
 * only an answer from the upstream with that ID and the same question is
 * passed back. Every client address has a budget (agent/dns); a query not
 * answered in time is answered SERVFAIL.
 */
#ifndef KSTEER_SHIM_DNSIO_H
#define KSTEER_SHIM_DNSIO_H

#include <netinet/in.h>
#include <stdint.h>

#include "../dns/dns.h"

#define DNS_PENDING 256	    /* queries forwarded and not yet answered, over all clients */
#define DNS_FORWARD_MS 3000 /* then SERVFAIL: before a stub resolver's own 5 s retry */

struct dns_fwd {
	int fd;	      /* this query's own connected socket; -1: the slot is free */
	uint32_t gen; /* tells an event of a slot's earlier query from its current one */
	uint16_t client_id;
	struct sockaddr_in6 client;
	struct dns_source *src;
	uint64_t deadline;
	uint16_t qlen;
	uint8_t q[DNS_QUESTION_MAX]; /* header (our ID) and question, as sent */
};

struct dns_proxy {
	int ep_fd; /* the forwarded queries' sockets and the timer: one fd in the shim's loop */
	int timer_fd;
	uint32_t timeout_ms;
	uint32_t gen;
	unsigned n_fwd;
	struct sockaddr_in6 upstream;
	struct dns_fwd fwd[DNS_PENDING];
	struct dns_budget budget;
};

struct shim;

/* Pods' queries on the resolver's socket fd. */
void dns_query(struct shim *s, int fd);
/* The upstream side is ready (fd is the one dns_sockets gave as up_fd): answers, timeouts. */
void dns_upstream_reply(struct shim *s, int fd);
/* The resolver's socket, and the upstream side's fd when an upstream is set (else -1). */
int dns_sockets(struct shim *s, int *fd, int *up_fd);
/* Closes the forwarded queries' sockets and the timer (the shim closes the two fds above). */
void dns_close(struct shim *s);

#endif
