/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The shim's insides, shared by its three sides: outbound HTTP (shim.c), the
 * gateway's SNI passthrough and the inbound mTLS terminator (relay.c), over
 * one socket abstraction (side.c) where TLS, when there is any, runs on
 * memory BIOs so that bytes read before the handshake (a PROXY header, a
 * peeked ClientHello) and bytes after it follow one path.
 */
#ifndef KSTEER_SHIM_INT_H
#define KSTEER_SHIM_INT_H

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../maps/ksteer_maps.h"
#include "../lib/buf.h"
#include "../lib/timer.h"
#include "../compile/compile.h"
#include "accesslog.h"
#include "dnsio.h"
#include "metrics.h"
#include "route.h"
#include "shim.h"
#include "tls.h"
#include "wire.h"

#define SHIM_SETUP_MS 10000 /* a tunnel must be set up (headers, handshakes) within this */
#define SIDE_HIGH_WATER (256 * 1024) /* stop reading a peer while the other side owes this */
/* a tunnel that moved no byte either way for this long is closed (Istio's TCP idle timeout);
 * KSTEER_TUNNEL_IDLE_MS in the agent's environment overrides it, for tests */
#define SHIM_TUNNEL_IDLE_MS (3600 * 1000)


/* Everything registered in the shim's epoll set starts with this. */
struct evh {
	void (*fn)(struct evh *h, uint32_t events);
};

/* One TCP socket, with TLS on memory BIOs when ssl is set. */
struct side {
	int fd;
	SSL *ssl;
	BIO *rb, *wb; /* owned by ssl */
	struct buf out; /* bytes owed to the socket: ciphertext when TLS */
	bool eof; /* the socket said EOF */
	bool connected; /* for an outgoing socket: the TCP handshake is done */
	struct peer_rule rule;
};

void sock_nodelay(int fd);
void side_init(struct side *sd, int fd);
void side_close(struct side *sd);
/* Wraps the side in TLS: connect (client) or accept state; first bytes already read go in. */
int side_tls(struct side *sd, SSL_CTX *ctx, bool client, const char *sni, const void *pre,
	     size_t pre_len);
/* Sends what is owed; false on a socket error. */
bool side_flush(struct side *sd);
/* 1 done, 0 in progress, -1 failed (rule.why or OpenSSL's reason in why). */
int side_handshake(struct side *sd, char *why, size_t why_len);
/* Application bytes: n > 0, 0 at EOF, -EAGAIN, or another -errno. */
ssize_t side_read(struct side *sd, void *p, size_t cap);
/* TLS bytes already taken from the socket and not yet read: epoll will not report them. */
bool side_pending(const struct side *sd);
/* Queues application bytes (encrypting them when TLS) and tries to send. */
bool side_write(struct side *sd, const void *p, size_t n);
/* A TLS close_notify, or nothing for plain TCP; then SHUT_WR once flushed by the caller. */
void side_shutdown_write(struct side *sd);
/* 1 connected, 0 in progress, -errno failed: for a non-blocking connect. */
int side_connect_done(struct side *sd);
/* A non-blocking connect to addr:port carrying the agent's mark; -errno. */
int side_connect(struct side *sd, const struct ks_addr *addr, uint16_t port, uint32_t mark);

struct shim_stats {
	uint64_t requests, responses_local, upstream_tls_ok, upstream_tls_failed, pool_reused;
	uint64_t same_node; /* ISTIO_MUTUAL upstreams to a pod of this node, handed over in process */
	uint64_t faults_delayed, faults_aborted; /* VirtualService fault injection */
	uint64_t ejections; /* outlier detection */
	uint64_t retried_answers; /* answers retryOn named, not passed on: tried again */
	uint64_t mirrored, mirror_failed; /* VirtualService mirror copies sent, and lost */
	uint64_t gw_accepted, gw_routed, gw_refused_hello, gw_refused_sni, gw_refused_exposure,
		gw_refused_target;
	uint64_t in_accepted, in_ok, in_refused_proxy, in_refused_pod, in_refused_tls;
	uint64_t out_accepted, out_routed, out_refused; /* outbound streams (not HTTP) */
	uint64_t dns_queries, dns_answered, dns_forwarded, dns_bad;
	uint64_t dns_relayed; /* upstream answers passed back */
	uint64_t dns_over_rate; /* dropped: the client address over its rate */
	uint64_t dns_refused; /* REFUSED: the client's queries in flight, or all, at their cap */
	uint64_t dns_timeouts; /* SERVFAIL: no answer from the upstream in time */
	uint64_t dns_upstream_failed; /* SERVFAIL: no socket, or the upstream refused */
	uint64_t dns_mismatched; /* upstream packets without the query's ID and question */
	uint64_t gw_spliced, gw_copied;
	/* the HTTP proxy's bounds and protocol errors (README "Limits") */
	uint64_t bad_requests, bad_responses, cut_responses, upgraded, backpressured;
	uint64_t head_timeouts, idle_closed, stream_timeouts;
	uint64_t refused_pod_limit, refused_agent_limit, accept_no_fd;
	uint64_t mirrors_dropped;
	/* tunnel limits hit: ClientHello/PROXY bytes over TUN_MAX_HELLO, SHIM_SETUP_MS passed,
	 * SHIM_TUNNEL_IDLE_MS passed, a side paused at SIDE_HIGH_WATER; PROXY targets refused */
	uint64_t tun_hello_cap, tun_setup_timeout, tun_idle_timeout, tun_paused, in_refused_port;
};

/* Clients of one source address, for the per-pod connection cap. */
struct src_count {
	struct ks_addr a;
	uint32_t n;
	bool used;
};

struct listener {
	struct evh h;
	struct shim *s;
	int fd;
	int kind; /* LST_* */
	uint16_t port;
	bool paused; /* out of descriptors: out of the epoll set until the next tick */
};

enum { LST_OUTBOUND, LST_INBOUND, LST_GATEWAY, LST_DNS, LST_DNS_UPSTREAM, LST_ADMIN };

#define SHIM_READY_PORT 15021 /* /healthz/ready, as Istio's agents */
#define SHIM_STATS_PORT 15020 /* /stats/prometheus */

#define SHIM_MAX_LISTENERS 16

struct tun;
struct mirror;
struct conn;
struct up;

struct shim {
	struct evh tick; /* the timer */
	int epfd, timerfd, origdst_fd;
	struct shim_opts o;
	struct shim_limits lim; /* o.lim with the defaults filled in */
	unsigned n_conns, n_mirrors, n_admin;
	struct src_count *src; /* open addressing by address */
	unsigned src_cap, src_used, src_live;
	struct ks_addr out_addr;
	struct listener lst[SHIM_MAX_LISTENERS];
	unsigned n_lst;
	const struct plan *plan;
	struct regex_cache rc;
	struct ids ids;
	char gw_label_buf[256];
	const char *gw_labels[16]; /* "k=v": this gateway's labels, for Gateway selectors */
	unsigned n_gw_labels;
	SSL_CTX *peek_ctx;
	struct conn *conns; /* all outbound connections: for deadlines */
	struct tun *tuns;
	uint64_t tun_idle_ms; /* SHIM_TUNNEL_IDLE_MS or its override; 0 until the first tunnel */
	struct mirror *mirrors; /* mirrored requests in flight, their answers dropped */
	struct up *pool; /* idle upstream connections */
	unsigned n_pool;
	struct {
		void *obj;
		void (*fn)(void *);
	} *dead; /* closed during this batch of events, which may still name them: freed after */
	unsigned n_dead, cap_dead;
	struct shim_stats st;
	struct dns_proxy dns;
	int dns_fd, dns_up_fd;
	bool splice_off; /* ksteer splice off: new tunnels copied even with the maps there */
	/* spliced half-closes waiting for the kernel to queue their bytes: re-checked soon */
	struct evh pend;
	int pend_fd;
	unsigned pend_us; /* the next wait; doubles while bytes are still on their way */
	uint64_t splice_overflows; /* the kernel's splice_overflow count at the last tick */
	/* outlier detection: each endpoint's consecutive errors and ejection, by address */
	struct ep_health {
		struct ks_addr a;
		uint16_t port;
		bool used;
		uint32_t errors, gw_errors, ejections;
		uint64_t ejected_until;
	} *health;
	unsigned health_cap, health_n;
	/* requests held by an injected delay: a timer for the earliest */
	/* every deadline of connections, pooled upstreams and mirrors: one heap, one timerfd */
	struct timers timers;
	struct evh timer_h;
	int timer_fd;
	uint64_t timer_armed; /* the deadline timer_fd is set for, 0: none */
	struct metrics mt; /* Istio's standard metrics */
	struct alog alog;
};

/* The shim's lists of connections, tunnels and mirrors: doubly linked, through prev/next. */
#define LIST_PUSH(head, x)                                                                         \
	do {                                                                                       \
		(x)->next = (head);                                                                \
		if (head)                                                                          \
			(head)->prev = (x);                                                        \
		(head) = (x);                                                                      \
	} while (0)
#define LIST_UNLINK(head, x)                                                                       \
	do {                                                                                       \
		if ((x)->prev)                                                                     \
			(x)->prev->next = (x)->next;                                               \
		else                                                                               \
			(head) = (x)->next;                                                        \
		if ((x)->next)                                                                     \
			(x)->next->prev = (x)->prev;                                               \
	} while (0)

uint64_t now_ms(void);
void ep_set(struct shim *s, int fd, uint32_t ev, struct evh *h, bool add);
void shim_defer_free(struct shim *s, void *obj, void (*fn)(void *));

/* upstream.c: the outbound_ SNI of a destination; the checks of the same-node hand-over */
void shim_sni(const struct shim *s, const struct c_dest *d, char *out, size_t len);
int shim_same_node_check(const struct shim *s, struct peer_rule *rule, const struct ks_addr *pod_addr);

/* telemetry.c: Istio's labels of a source pod, a destination pod (false: not a pod of the
 * plan), a peer's SPIFFE ID, a destination host */
bool tel_source(const struct shim *s, const struct ks_addr *a, struct mt_pack *pk);
bool tel_dest_pod(const struct shim *s, const struct ks_addr *a, struct mt_pack *pk);
void tel_principal(struct mt_pack *pk, bool source, const char *id);
void tel_service(const struct shim *s, const char *host, uint16_t port, struct mt_pack *pk);
void tel_status(struct mt_pack *pk, int status);
/* Monotonic microseconds (durations), and the wall clock's (the access log's start_time). */
uint64_t now_us(void);
uint64_t now_wall_us(void);

/* admin.c: readiness and Prometheus answers */
void admin_accept(struct shim *s, int lfd);

/* http.c: outbound HTTP connections */
void http_accept(struct shim *s, struct listener *l);
void http_close_all(struct shim *s);
/* shim.c: out of descriptors, a listener leaves the epoll set until the next tick */
void shim_listener_pause(struct shim *s, struct listener *l);

/* relay.c */
void tun_accept(struct shim *s, int lfd, int kind);
/* An outbound connection to a frontend that is not HTTP: a stream, routed once. */
void tun_outbound(struct shim *s, int fd, const struct sockaddr_in6 *peer,
		  const struct ks_addr *orig, uint16_t orig_port, const struct c_frontend *fe);
void tun_tick(struct shim *s, uint64_t now);
/* SHIM_TUNNEL_IDLE_MS, or KSTEER_TUNNEL_IDLE_MS from the environment */
uint64_t tun_idle_ms(void);
void tun_close_all(struct shim *s);
void splice_pending_event(struct evh *h, uint32_t events);
bool shim_gateway_selects(const struct shim *s, const struct gateway *g);

#endif
