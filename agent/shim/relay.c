// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Tunnels: the gateway's SNI passthrough and the node's inbound terminator.
 *
 * Gateway (15443): read the ClientHello without answering it, take
 * outbound_.PORT_.SUBSET_.HOST from its SNI, check that a Gateway selecting
 * us exposes HOST (as the SNI names it), map HOST.global to
 * HOST.svc.cluster.local, pick an endpoint of SUBSET by this cluster's
 * DestinationRule, and pass the TLS bytes through: to the pod's node's
 * inbound port with a PROXY v2 header naming the pod.
 *
 * Inbound (15008): a PROXY v2 header names the pod (without one, the SNI
 * names a service and a local endpoint of it is chosen); the pod must live on
 * this node. Mutual TLS is terminated with the pod's identity, the client's
 * chain and SPIFFE ID are checked, and plaintext goes to the pod.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../policy/policy.h"
#include "observe.h"
#include "shim_int.h"
#include "upstream.h"

/* held before the decision: one full TLS record (a ClientHello) and the largest PROXY v2
 * header proxy_v2_parse takes */
#define TUN_MAX_HELLO (5 + 16384 + 16 + 512)

enum { T_HELLO, T_TLS, T_CONNECT, T_ORIGINATE, T_RELAY, T_SPLICED };

/*
 * A way of a spliced tunnel: the kernel redirects its bytes; or the verdict
 * passes them up (KS_SPLICE_COPY) and the peer's backlog is still being sent;
 * or this loop copies them.
 */
enum { W_SPLICED, W_DRAIN, W_COPY };

struct tun {
	struct evh h;
	struct shim *s;
	struct tun *prev, *next;
	int kind; /* LST_GATEWAY, LST_INBOUND or LST_OUTBOUND */
	int state;
	struct side a, b; /* a: the accepted connection; b: towards the pod or node */
	struct buf pre;	  /* bytes read before the decision */
	struct ks_addr peer, local, dst, orig; /* orig: what an outbound stream's client dialled */
	uint16_t peer_port, local_port, dst_port, orig_port;
	uint64_t deadline;
	uint64_t last; /* when a byte last moved either way: for the idle timeout */
	bool dead, a_done, b_done; /* a_done: a's EOF was passed on to b */
	bool a_fin, b_fin; /* SHUT_WR sent on a, on b */
	bool a_paused, b_paused; /* not read: the other side owes SIDE_HIGH_WATER */
	/* what each socket is armed for in epoll; 0: not in the set (level-triggered, and
	 * EPOLLHUP/EPOLLERR come even for an empty mask, so a socket nobody waits on is out) */
	uint32_t ev_a, ev_b;
	/* spliced in the kernel: cookies, bytes user space sent to b first, EOFs seen */
	uint64_t ca, cb, w_a2b;
	/* each way of a spliced tunnel (from a, from b): spliced, or handed back to this
	 * copy loop at the kernel's backlog bound; bytes copied since */
	int mode_a, mode_b;
	uint64_t got_a, got_b;
	bool splice_wait;
	/* the kernel's byte counts at the last look, and when to look again (every quarter
	 * of the idle timeout: a spliced tunnel is closed within 1.25 times it) */
	uint64_t spliced_seen, spliced_look;
	bool a_eof, b_eof;
	struct ks_addr src; /* inbound: the client pod the PROXY header names */
	bool have_src;
	struct stream_tel st; /* Istio's TCP metrics (and inbound, HTTP's), the access log */
};

/* Arms fd for want: added, changed, or taken out of the set when nothing is wanted. */
static void tun_arm(struct tun *t, int fd, uint32_t *armed, uint32_t want)
{
	struct epoll_event e = { .events = want, .data.ptr = &t->h };
	int op = !*armed ? EPOLL_CTL_ADD : !want ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;

	if (fd < 0 || want == *armed)
		return;
	if (epoll_ctl(t->s->epfd, op, fd, &e)) {
		pr_warn("tunnel: epoll_ctl %d: %s\n", op, strerror(errno));
		return;
	}
	*armed = want;
}

static void tun_free(void *p)
{
	struct tun *t = p;

	side_close(&t->a);
	side_close(&t->b);
	buf_free(&t->pre);
	free(t);
}

static void tun_kill(struct tun *t)
{
	if (t->dead)
		return;
	t->dead = true;
	stream_close(t->s, &t->st, "-");
	if (t->state == T_SPLICED) { /* closing the sockets takes them out of the sockhash */
		bpf_map_delete_elem(t->s->o.splice_peer_fd, &t->ca);
		bpf_map_delete_elem(t->s->o.splice_peer_fd, &t->cb);
	}
	if (t->a.fd >= 0)
		close(t->a.fd);
	if (t->b.fd >= 0)
		close(t->b.fd);
	t->a.fd = t->b.fd = -1;
	LIST_UNLINK(t->s->tuns, t);
	shim_defer_free(t->s, t, tun_free);
}

static const char *tun_kind_name(const struct tun *t)
{
	return t->kind == LST_GATEWAY ? "gateway" : t->kind == LST_INBOUND ? "inbound" : "outbound";
}

/* A fatal TLS alert (RFC 8446 6): the client learns why without us speaking TLS. */
static void send_alert(struct tun *t, unsigned char desc)
{
	unsigned char alert[7] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, desc};

	if (send(t->a.fd, alert, sizeof(alert), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return;
}

/* No more bytes will come before the decision: the client's EOF, or TUN_MAX_HELLO held. */
static bool hello_ended(struct tun *t)
{
	if (t->pre.len < TUN_MAX_HELLO)
		return t->a.eof;
	t->s->st.tun_hello_cap++;
	return true;
}

static void refuse(struct tun *t, uint64_t *counter, unsigned char alert, const char *fmt,
		   const char *what)
{
	char a[INET6_ADDRSTRLEN];

	(*counter)++;
	pr_info("%s: refused %s:%u: %s %s\n", tun_kind_name(t), addr_str(&t->peer, a, sizeof(a)),
		t->peer_port, fmt, what ? what : "");
	if (alert)
		send_alert(t, alert);
	tun_kill(t);
}

/*
 * The namespace part of a Gateway host "ns/host" (nsl bytes): "*" any, "." the
 * Gateway's own, else that namespace; the service's namespace must be it.
 */
static bool ns_exposes(const char *ns, size_t nsl, const char *gw_ns, const char *svc_ns)
{
	if (nsl == 1 && ns[0] == '*')
		return true;
	if (nsl == 1 && ns[0] == '.') {
		ns = gw_ns;
		nsl = gw_ns ? strlen(gw_ns) : 0;
	}
	return svc_ns && ns && strlen(svc_ns) == nsl && !strncmp(svc_ns, ns, nsl);
}

/* Does a Gateway selecting us expose host (of namespace svc_ns; NULL: not known) on port? */
static bool exposed(const struct shim *s, uint16_t port, const char *host, const char *svc_ns)
{
	const struct policy *p = s->plan ? s->plan->policy : NULL;

	for (uint32_t i = 0; p && i < p->n; i++) {
		const struct resource *r = p->res[i];
		const struct gateway *g = r->spec;

		if (r->kind != K_GATEWAY || !g || !shim_gateway_selects(s, g))
			continue;
		for (uint32_t k = 0; k < g->servers.n; k++) {
			const struct server *sv = &g->servers.v[k];

			if (!server_auto_passthrough(sv) || sv->port->number != port)
				continue;
			for (uint32_t h = 0; h < sv->hosts.n; h++) {
				const char *pat = sv->hosts.v[h], *slash = strchr(pat, '/');

				if (slash && !ns_exposes(pat, (size_t)(slash - pat), r->ns, svc_ns))
					continue;
				if (host_matches(slash ? slash + 1 : pat, host))
					return true;
			}
		}
	}
	return false;
}

/* The target an outbound_ SNI names in this cluster: .global hosts are ours under
 * .svc.cluster.local. */
static const struct c_target *sni_target(const struct shim *s, const char *sni, char *host,
					 size_t host_len, int *why)
{
	char subset[128], local[300];
	uint16_t port;
	size_t hl;

	if (sni_parse(sni, &port, subset, sizeof(subset), host, host_len)) {
		*why = 1;
		return NULL;
	}
	hl = strlen(host);
	if (hl > 7 && !strcmp(host + hl - 7, ".global"))
		snprintf(local, sizeof(local), "%.*s.svc.cluster.local", (int)(hl - 7), host);
	else
		snprintf(local, sizeof(local), "%s", host);
	*why = 2;
	return plan_target(s->plan, local, port, subset);
}

static int connect_b(struct tun *t, const struct ks_addr *addr, uint16_t port)
{
	int err = side_connect(&t->b, addr, port, t->s->o.mark);

	if (err)
		return err;
	t->ev_b = 0; /* a new socket */
	tun_arm(t, t->b.fd, &t->ev_b, EPOLLOUT);
	t->state = T_CONNECT;
	return 0;
}

static void gateway_hello(struct tun *t)
{
	struct shim *s = t->s;
	char sni[300], host[300];
	const struct c_target *tg;
	const struct c_endpoint *e;
	uint32_t draw, n_ip = 0, k;
	int r = sni_peek(s->peek_ctx, t->pre.p, t->pre.len, sni, sizeof(sni)), why;

	if (r == 0) {
		if (hello_ended(t))
			refuse(t, &s->st.gw_refused_hello, 0, "incomplete ClientHello", NULL);
		return;
	}
	if (r == -1) {
		refuse(t, &s->st.gw_refused_hello, 0, "not a TLS ClientHello", NULL);
		return;
	}
	if (r == -2) {
		refuse(t, &s->st.gw_refused_sni, 112, "ClientHello without SNI", NULL);
		return;
	}
	tg = sni_target(s, sni, host, sizeof(host), &why);
	if (why == 1) {
		refuse(t, &s->st.gw_refused_sni, 112, "SNI not of the outbound_ form:", sni);
		return;
	}
	if (!exposed(s, t->local_port, host, tg ? tg->ns : NULL)) {
		refuse(t, &s->st.gw_refused_exposure, 112, "no Gateway exposes the host of SNI",
		       sni);
		return;
	}
	for (k = 0; tg && k < tg->d.n_eps; k++)
		n_ip += tg->d.eps[k].is_ip;
	if (!tg || !n_ip) {
		refuse(t, &s->st.gw_refused_target, 112,
		       tg ? "no endpoint for SNI" : "no such service port or subset here for SNI",
		       sni);
		return;
	}
	if (getrandom(&draw, sizeof(draw), 0) != sizeof(draw))
		draw = (uint32_t)rand();
	draw %= n_ip;
	for (k = 0, e = tg->d.eps; k < tg->d.n_eps; k++)
		if (tg->d.eps[k].is_ip && !draw--) {
			e = &tg->d.eps[k];
			break;
		}
	t->dst = e->ka;
	t->dst_port = e->port;
	if (connect_b(t, e->has_node ? &e->node : &e->ka, e->has_node ? s->o.in_port : e->port)) {
		refuse(t, &s->st.gw_refused_target, 0, "connect failed for SNI", sni);
		return;
	}
	if (e->has_node) { /* the node's inbound side learns which pod */
		unsigned char pp[64];
		size_t n = proxy_v2_build(pp, &t->peer, t->peer_port, &e->ka, e->port);

		buf_put(&t->b.out, pp, n);
	}
	buf_put(&t->b.out, t->pre.p, t->pre.len); /* the ClientHello, untouched */
	t->pre.len = 0;
	s->st.gw_routed++;
	pr_debug("gateway: %s -> %s\n", sni, e->address);
}

static bool pod_declares(const struct c_pod *pod, uint16_t port)
{
	for (uint32_t i = 0; i < pod->n_ports; i++)
		if (pod->ports[i] == port)
			return true;
	return false;
}

static void inbound_hello(struct tun *t)
{
	struct shim *s = t->s;
	uint16_t sport;
	struct ks_addr src;
	const struct c_pod *pod;
	const struct ids_entry *id;
	int n = proxy_v2_parse((const unsigned char *)t->pre.p, t->pre.len, &src, &sport, &t->dst,
			       &t->dst_port);

	if (n == -2) {
		refuse(t, &s->st.in_refused_proxy, 0, "malformed PROXY v2 header", NULL);
		return;
	}
	if (n == 0) {
		if (hello_ended(t))
			refuse(t, &s->st.in_refused_proxy, 0, "incomplete PROXY header", NULL);
		return;
	}
	if (n > 0) {
		buf_drop(&t->pre, (size_t)n);
		t->src = src;
		t->have_src = true;
	} else {
		/* no PROXY header: the SNI names the service; one of its pods here takes it */
		char sni[300], host[300];
		const struct c_target *tg;
		int why, r = sni_peek(s->peek_ctx, t->pre.p, t->pre.len, sni, sizeof(sni));
		bool found = false;

		if (r == 0) {
			if (hello_ended(t))
				refuse(t, &s->st.in_refused_tls, 0, "incomplete ClientHello", NULL);
			return;
		}
		if (r < 0) {
			refuse(t, &s->st.in_refused_tls, r == -2 ? 112 : 0,
			       "neither a PROXY header nor a ClientHello with SNI", NULL);
			return;
		}
		tg = sni_target(s, sni, host, sizeof(host), &why);
		for (uint32_t k = 0; tg && k < tg->d.n_eps && !found; k++) {
			const struct c_endpoint *e = &tg->d.eps[k];

			if (e->is_ip && e->has_node &&
			    !memcmp(&e->node, &t->local, sizeof(t->local))) {
				t->dst = e->ka;
				t->dst_port = e->port;
				found = true;
			}
		}
		if (!found) {
			refuse(t, &s->st.in_refused_pod, 112, "no pod on this node for SNI", sni);
			return;
		}
	}
	pod = plan_pod(s->plan, &t->dst);
	if (!pod || !pod->has_node || memcmp(&pod->node, &t->local, sizeof(t->local))) {
		char a[INET6_ADDRSTRLEN];

		refuse(t, &s->st.in_refused_pod, 0,
		       "not a pod of this node:", addr_str(&t->dst, a, sizeof(a)));
		return;
	}
	/* the header only picks a pod's declared port: never the node's own services */
	if (pod->host_network || !pod_declares(pod, t->dst_port)) {
		char a[320];

		snprintf(a, sizeof(a), "%u of %s", t->dst_port, pod->name);
		refuse(t, &s->st.in_refused_port, 0,
		       pod->host_network ? "a hostNetwork pod: port" : "a port the pod does not declare:",
		       a);
		return;
	}
	id = ids_get(&s->ids, pod->ns, pod->sa);
	if (!id) {
		refuse(t, &s->st.in_refused_tls, 0, "no identity for the pod", pod->name);
		return;
	}
	t->a.rule.trust_domain = s->ids.trust_domain;
	if (side_tls(&t->a, id->server, false, NULL, t->pre.p, t->pre.len)) {
		tun_kill(t);
		return;
	}
	t->pre.len = 0;
	t->state = T_TLS;
}

/*
 * Outbound streams: connections to a port whose protocol is not HTTP (tcp,
 * tls, or unnamed with tcp/tls routes) that the shim takes for TLS
 * origination or SNI routes. Routed once per connection as Envoy's TCP proxy
 * does: the tls route whose sniHosts match the ClientHello, else the first
 * tcp route (or the service itself); a weighted destination; then the bytes
 * relayed as they are, inside ISTIO_MUTUAL when the DestinationRule says so
 * (ALPN istio-peer-exchange, istio, as Istio's TCP clusters offer).
 */
static const unsigned char alpn_tcp[] = "\x13istio-peer-exchange\x05istio";

/* An outbound stream's labels, as the client's proxy reports them (reporter="source"). */
static void tel_outbound(struct tun *t, const struct c_dest *d, const struct up_target *ut)
{
	struct stream_tel *st = &t->st;
	struct mt_pack *pk = &st->pk;
	uint16_t port = d->port ? d->port : t->orig_port;
	const char *cl = d->n_eps ? d->eps[0].cluster : NULL;
	char a[INET6_ADDRSTRLEN];

	mt_pack_reset(pk);
	st->reporter = "source";
	mt_pack_set(pk, MT_REPORTER, "source");
	tel_source(t->s, &t->peer, pk);
	mt_pack_set(pk, MT_SRC_CLUSTER, t->s->o.cluster);
	tel_service(t->s, d->host, port, pk);
	for (uint32_t i = 1; cl && i < d->n_eps; i++)
		if (!d->eps[i].cluster || strcmp(d->eps[i].cluster, cl))
			cl = NULL;
	mt_pack_set(pk, MT_DST_CLUSTER, cl);
	if (tel_dest_pod(t->s, &ut->eps[0].addr, pk) && !ut->tls)
		mt_pack_set(pk, MT_DST_PRINCIPAL, NULL);
	mt_pack_set(pk, MT_CONN_SECURITY, "unknown");
	snprintf(st->down, sizeof(st->down), "%s:%u", addr_str(&t->peer, a, sizeof(a)),
		 t->peer_port);
	snprintf(st->local, sizeof(st->local), "%s:%u", addr_str(&t->orig, a, sizeof(a)),
		 t->orig_port);
	snprintf(st->upstream, sizeof(st->upstream), "%s:%u",
		 addr_str(&ut->eps[0].addr, a, sizeof(a)), ut->eps[0].port);
	snprintf(st->cluster, sizeof(st->cluster), "outbound|%u|%s|%s", port,
		 d->subset ? d->subset : "", d->host);
}

/*
 * An inbound stream's labels, as the server's proxy reports them
 * (reporter="destination"): the pod it reaches, the client's certificate,
 * the client pod when the PROXY header names one of this cluster's, the
 * service whose endpoint the pod is. Its plaintext is read for HTTP.
 */
static void tel_inbound(struct tun *t)
{
	struct shim *s = t->s;
	struct stream_tel *st = &t->st;
	struct mt_pack *pk = &st->pk;
	const char *sni = t->a.ssl ? SSL_get_servername(t->a.ssl, TLSEXT_NAMETYPE_host_name) : NULL;
	char a[INET6_ADDRSTRLEN];

	mt_pack_reset(pk);
	st->reporter = "destination";
	st->http = true;
	mt_pack_set(pk, MT_REPORTER, "destination");
	tel_dest_pod(s, &t->dst, pk);
	if (t->have_src && tel_source(s, &t->src, pk))
		mt_pack_set(pk, MT_SRC_CLUSTER, s->o.cluster);
	tel_principal(pk, true, t->a.rule.seen);
	mt_pack_set(pk, MT_CONN_SECURITY, "mutual_tls");
	for (uint32_t i = 0; s->plan && i < s->plan->n_targets; i++) {
		const struct c_target *tg = &s->plan->targets[i];
		bool found = false;

		for (uint32_t k = 0; !tg->subset && k < tg->d.n_eps && !found; k++)
			found = tg->d.eps[k].is_ip && tg->d.eps[k].port == t->dst_port &&
				!memcmp(&tg->d.eps[k].ka, &t->dst, sizeof(t->dst));
		if (found) {
			tel_service(s, tg->host, tg->port, pk);
			break;
		}
	}
	snprintf(st->down, sizeof(st->down), "%s:%u", addr_str(&t->peer, a, sizeof(a)),
		 t->peer_port);
	snprintf(st->local, sizeof(st->local), "%s:%u", addr_str(&t->local, a, sizeof(a)),
		 t->local_port);
	snprintf(st->upstream, sizeof(st->upstream), "%s:%u", addr_str(&t->dst, a, sizeof(a)),
		 t->dst_port);
	snprintf(st->cluster, sizeof(st->cluster), "inbound|%u||", t->dst_port);
	snprintf(st->sni, sizeof(st->sni), "%s", sni ? sni : "");
	stream_open(s, st);
}

static void outbound_route(struct tun *t)
{
	struct shim *s = t->s;
	const struct c_frontend *fe = plan_frontend(s->plan, &t->orig, t->orig_port);
	const struct c_route *rt;
	const struct c_dest *d;
	struct up_target ut;
	char sni[300] = "", a[INET6_ADDRSTRLEN];
	const char *why;
	uint32_t draw[2];
	uint64_t id_gen;
	int err;

	if (!fe) {
		refuse(t, &s->st.out_refused, 0, "no frontend for", addr_str(&t->orig, a, sizeof(a)));
		return;
	}
	if (route_by_sni(fe)) {
		int r = sni_peek(s->peek_ctx, t->pre.p, t->pre.len, sni, sizeof(sni));

		if (r == 0 && !hello_ended(t))
			return; /* more of the ClientHello to come */
		if (r <= 0) {
			refuse(t, &s->st.out_refused, 0, "tls routes need a ClientHello with SNI", NULL);
			return;
		}
	}
	rt = route_stream(fe, sni);
	if (!rt) {
		refuse(t, &s->st.out_refused, 0, "no tls route matches SNI", sni);
		return;
	}
	if (getrandom(draw, sizeof(draw), 0) != sizeof(draw))
		draw[0] = draw[1] = (uint32_t)rand();
	d = route_pick_dest(rt, draw[0]);
	why = up_target_make(s, d, &t->peer, draw[1], &ut);
	if (why) {
		refuse(t, &s->st.out_refused, 0, "no upstream:", why);
		return;
	}
	tel_outbound(t, d, &ut);
	t->dst = ut.eps[0].addr;
	t->dst_port = ut.eps[0].port;
	err = up_target_connect(s, &ut, 0, &t->peer, t->peer_port, &t->b, &id_gen, alpn_tcp,
				sizeof(alpn_tcp) - 1);
	if (err) {
		refuse(t, &s->st.out_refused, 0, "upstream:",
		       err == -EACCES ? ut.rule.why : err == -ENOKEY ? "no workload certificate"
								      : strerror(-err));
		return;
	}
	t->ev_b = 0; /* a new socket */
	tun_arm(t, t->b.fd, &t->ev_b, EPOLLOUT);
	t->state = T_CONNECT;
	s->st.out_routed++;
	pr_debug("outbound: %s:%u -> %s (%s)\n", addr_str(&t->orig, a, sizeof(a)), t->orig_port,
		 addr_str(&ut.eps[0].addr, sni, sizeof(sni)),
		 ut.tls ? ut.eps[0].same_node ? "same node" : "ISTIO_MUTUAL" : "plain");
}

/*
 * Joins a and b in the kernel: both in ks_splice, each naming the other.
 * Called once b is connected and before the buffered ClientHello goes out, so
 * no byte of either side waits in a receive queue the verdict will not see
 * (the client waits for the ServerHello). 0, or -1: the copy loop carries it.
 */
static int splice_start(struct tun *t)
{
	struct shim *s = t->s;
	struct ks_splice pa = { 0 }, pb = { 0 };
	socklen_t l = sizeof(t->ca);
	uint64_t fa = (uint64_t)t->a.fd, fb = (uint64_t)t->b.fd;

	if (getsockopt(t->a.fd, SOL_SOCKET, SO_COOKIE, &t->ca, &l) ||
	    getsockopt(t->b.fd, SOL_SOCKET, SO_COOKIE, &t->cb, &l))
		return -1;
	pa.peer = t->cb;
	pb.peer = t->ca;
	if (bpf_map_update_elem(s->o.splice_peer_fd, &t->ca, &pa, BPF_ANY) ||
	    bpf_map_update_elem(s->o.splice_peer_fd, &t->cb, &pb, BPF_ANY))
		goto fail;
	if (bpf_map_update_elem(s->o.splice_fd, &t->ca, &fa, BPF_NOEXIST))
		goto fail;
	if (bpf_map_update_elem(s->o.splice_fd, &t->cb, &fb, BPF_NOEXIST)) {
		bpf_map_delete_elem(s->o.splice_fd, &t->ca);
		goto fail;
	}
	t->w_a2b = t->b.out.len; /* the PROXY header and ClientHello, sent by us */
	return 0;
fail:
	pr_info("gateway: splice: %s: copying instead\n", strerror(errno));
	bpf_map_delete_elem(s->o.splice_peer_fd, &t->ca);
	bpf_map_delete_elem(s->o.splice_peer_fd, &t->cb);
	return -1;
}

/* Every byte this socket was given, sent or not yet acknowledged (FIN aside). */
static uint64_t queued(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	int outq = 0;

	memset(&ti, 0, sizeof(ti));
	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l);
	ioctl(fd, SIOCOUTQ, &outq);
	return ti.tcpi_bytes_acked + (uint64_t)(outq > 0 ? outq : 0);
}

/* Sends what a side owes; a byte sent counts as activity. False on a socket error. */
static bool tun_flush(struct tun *t, struct side *sd)
{
	size_t owed = sd->out.len;
	bool ok = side_flush(sd);

	if (sd->out.len < owed)
		t->last = now_ms();
	return ok;
}

/* A half-close passed on: SHUT_WR once every byte owed before it is sent. */
static void tun_fin(struct side *to, bool done, bool *fin)
{
	if (done && !*fin && !to->out.len) {
		shutdown(to->fd, SHUT_WR);
		*fin = true;
	}
}

/* The verdict's record of a spliced socket; zeroes once it is gone. */
static struct ks_splice splice_rec(struct tun *t, uint64_t cookie)
{
	struct ks_splice v;

	if (bpf_map_lookup_elem(t->s->o.splice_peer_fd, &cookie, &v))
		memset(&v, 0, sizeof(v));
	return v;
}

static uint64_t spliced_bytes(struct tun *t, uint64_t cookie)
{
	return splice_rec(t, cookie).bytes;
}

static void splice_pending_arm(struct shim *s);

/*
 * A spliced tunnel: the kernel moves the bytes; this passes on half-closes, each
 * only once the other socket has been given every byte that came before it, and
 * takes a way over when the verdict hands it back at the backlog bound.
 */
struct sway {
	struct side *from, *to;
	uint64_t cookie; /* from's */
	uint64_t first; /* bytes this loop wrote to `to` before the splice */
	int *mode;
	uint64_t *got;
	bool *eof, *done, *fin;
	bool wait; /* to be looked at again by the timer */
};

/* Copies what the verdict passed up; from's EOF counts once every such byte was read. */
static int sway_copy(struct tun *t, struct sway *w)
{
	char buf[16384];
	ssize_t n;

	while (!*w->done && w->to->out.len < SIDE_HIGH_WATER) {
		n = side_read(w->from, buf, sizeof(buf));
		if (n > 0) {
			*w->got += (uint64_t)n;
			t->last = now_ms();
			stream_bytes(t->s, &t->st, w->from == &t->a, buf, (size_t)n);
			if (!side_write(w->to, buf, (size_t)n))
				return -1;
			continue;
		}
		if (n < 0 && n != -EAGAIN)
			return -1;
		if (*w->got < splice_rec(t, w->cookie).passed) {
			/*
			 * Passed bytes wait behind from's own backlog: the socket polls
			 * readable (TCP counts them) and reads nothing, or shows its EOF
			 * first (sway_want).
			 */
			w->from->eof = false;
			w->wait = true;
			break;
		}
		if (n == -EAGAIN)
			break;
		*w->eof = *w->done = true;
	}
	tun_fin(w->to, *w->done, w->fin);
	return 0;
}

/* A socket reset or closed under us: what it owed will never be sent. */
static bool sock_broken(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	int err = 0;
	socklen_t el = sizeof(err);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err ||
	    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l))
		return true;
	return ti.tcpi_state == 7; /* TCP_CLOSE (include/net/tcp_states.h) */
}

/* The kernel dropped bytes at the bound (both ways stalled): reset both legs, not a FIN. */
static bool splice_overflowed(struct tun *t)
{
	struct linger rst = { 1, 0 };

	if (!((splice_rec(t, t->ca).flags | splice_rec(t, t->cb).flags) & KS_SPLICE_OVERFLOW))
		return false;
	pr_info("gateway: splice: both ways stalled past %u bytes: reset\n", KS_SPLICE_BACKLOG);
	setsockopt(t->a.fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
	setsockopt(t->b.fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
	return true;
}

/* One way: -1 when the tunnel must go (a reset, bytes left behind, the bound overflowed). */
static int sway_step(struct tun *t, struct sway *w)
{
	struct ks_splice r;
	ssize_t n = 0;
	char c;

	if (*w->done)
		return 0;
	if (*w->mode == W_SPLICED && !*w->eof) {
		n = recv(w->from->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
	}
	r = splice_rec(t, w->cookie); /* after the peek: the verdict ran on what came before */
	if ((r.flags & KS_SPLICE_OVERFLOW) && splice_overflowed(t))
		return -1;
	if (*w->mode == W_SPLICED) {
		if (r.flags & KS_SPLICE_COPY)
			*w->mode = W_DRAIN;
		else if (n > 0)
			return -1; /* bytes the verdict left behind */
		else if (n == 0 && !*w->eof)
			*w->eof = true;
	}
	if (*w->mode == W_SPLICED) {
		if (*w->eof && !w->to->out.len && queued(w->to->fd) >= w->first + r.bytes) {
			shutdown(w->to->fd, SHUT_WR);
			*w->done = *w->fin = true;
		}
		w->wait = *w->eof && !*w->done;
		return w->wait && sock_broken(w->to->fd) ? -1 : 0;
	}
	if (*w->mode == W_DRAIN) {
		if (w->to->out.len || queued(w->to->fd) < w->first + r.bytes) {
			w->wait = true;
			return sock_broken(w->to->fd) ? -1 : 0;
		}
		*w->mode = W_COPY;
		*w->eof = false;
	}
	return sway_copy(t, w);
}

static void splice_ways(struct tun *t, struct sway *wa, struct sway *wb)
{
	*wa = (struct sway){ &t->a, &t->b, t->ca, t->w_a2b, &t->mode_a, &t->got_a,
			     &t->a_eof, &t->a_done, &t->b_fin, false };
	*wb = (struct sway){ &t->b, &t->a, t->cb, 0, &t->mode_b, &t->got_b,
			     &t->b_eof, &t->b_done, &t->a_fin, false };
}

/*
 * What one socket waits for: the way from it, and the bytes it owes the other
 * way. A copied way whose passed bytes still wait behind the socket's backlog
 * polls readable with nothing to read: edge-triggered then, woken when they
 * reach the socket (and by the timer).
 */
static uint32_t sway_want(const struct sway *from_it, const struct side *it)
{
	uint32_t want = it->out.len ? EPOLLOUT : 0;

	if (*from_it->done)
		return want;
	if (*from_it->mode == W_SPLICED && !*from_it->eof) /* a FIN, or bytes passed up */
		want |= EPOLLRDHUP | EPOLLIN;
	else if (*from_it->mode == W_COPY && from_it->to->out.len < SIDE_HIGH_WATER)
		want |= EPOLLIN | (from_it->wait ? EPOLLET : 0);
	return want; /* draining, or an EOF waiting for its bytes: the timer looks */
}

/* A way waiting for the kernel (a half-close, a hand-back): the timer steps it. */
static bool splice_waiting(const struct tun *t)
{
	return t->splice_wait;
}

static void splice_step(struct tun *t)
{
	struct sway wa, wb;

	splice_ways(t, &wa, &wb);
	if (!tun_flush(t, &t->b) || !tun_flush(t, &t->a) || sway_step(t, &wa) ||
	    sway_step(t, &wb) || !tun_flush(t, &t->a) || !tun_flush(t, &t->b))
		goto kill;
	if (t->a_done && t->b_done && t->a_fin && t->b_fin)
		goto kill;
	t->splice_wait = wa.wait || wb.wait;
	if (t->splice_wait && !t->s->pend_us)
		splice_pending_arm(t->s);
	tun_arm(t, t->a.fd, &t->ev_a, sway_want(&wa, &t->a));
	tun_arm(t, t->b.fd, &t->ev_b, sway_want(&wb, &t->b));
	return;
kill:
	tun_kill(t);
}

/* A half-close still waiting: look again in pend_us (1 ms, doubling to 100 ms). */
static void splice_pending_arm(struct shim *s)
{
	struct itimerspec its = { 0 };

	if (!s->pend_us)
		s->pend_us = 1000;
	its.it_value.tv_nsec = (long)s->pend_us * 1000;
	timerfd_settime(s->pend_fd, 0, &its, NULL);
	s->pend_us = s->pend_us * 2 > 100000 ? 100000 : s->pend_us * 2;
}

void splice_pending_event(struct evh *h, uint32_t events)
{
	struct shim *s = (struct shim *)((char *)h - offsetof(struct shim, pend));
	bool waiting = false;
	uint64_t x;

	(void)events;
	if (read(s->pend_fd, &x, sizeof(x)) < 0)
		return;
	for (struct tun *t = s->tuns, *nx; t; t = nx) {
		nx = t->next;
		if (t->state == T_SPLICED && splice_waiting(t)) {
			splice_step(t);
			waiting |= !t->dead && splice_waiting(t);
		}
	}
	if (waiting)
		splice_pending_arm(s);
	else
		s->pend_us = 0;
}

/*
 * Moves application bytes from one side to the other until one would block or
 * the other owes SIDE_HIGH_WATER: it then holds at most that and one read more.
 */
static int pump(struct tun *t, struct side *from, struct side *to, bool *done)
{
	char buf[16384];
	ssize_t n;

	while (!*done && to->out.len < SIDE_HIGH_WATER) {
		n = side_read(from, buf, sizeof(buf));
		if (n > 0) {
			t->last = now_ms();
			stream_bytes(t->s, &t->st, from == &t->a, buf, (size_t)n);
			if (!side_write(to, buf, (size_t)n))
				return -1;
			continue;
		}
		if (n == 0) { /* half-close passes through, as TCP's */
			side_shutdown_write(to);
			*done = true;
			break;
		}
		if (n == -EAGAIN)
			break;
		return -1;
	}
	return 0;
}

/* Reading a relayed side is wanted until its EOF, and while the other side owes little. */
static uint32_t want_read(struct tun *t, const struct side *from, bool done,
			  const struct side *to, bool *paused)
{
	bool full = to->out.len >= SIDE_HIGH_WATER;

	if (from->eof || done)
		return 0;
	t->s->st.tun_paused += full && !*paused;
	*paused = full;
	return full ? 0 : EPOLLIN;
}

/* What each socket waits for in this state; nothing is armed that cannot be acted on. */
static void tun_arm_all(struct tun *t)
{
	uint32_t wa = 0, wb = 0;

	switch (t->state) {
	case T_HELLO:
		wa = t->a.eof || t->pre.len >= TUN_MAX_HELLO ? 0 : EPOLLIN;
		break;
	case T_TLS:
		wa = t->a.eof ? 0 : EPOLLIN;
		break;
	case T_CONNECT: /* a is not read while b is being set up: its bytes wait in the kernel */
		wb = EPOLLOUT;
		break;
	case T_ORIGINATE:
		wb = t->b.eof ? 0 : EPOLLIN;
		break;
	case T_RELAY:
		wa = want_read(t, &t->a, t->a_done, &t->b, &t->a_paused);
		wb = want_read(t, &t->b, t->b_done, &t->a, &t->b_paused);
		break;
	}
	tun_arm(t, t->a.fd, &t->ev_a, wa | (t->a.out.len ? EPOLLOUT : 0));
	tun_arm(t, t->b.fd, &t->ev_b, wb | (t->b.out.len ? EPOLLOUT : 0));
}

static void tun_step(struct tun *t)
{
	struct shim *s = t->s;
	char why[200], a[INET6_ADDRSTRLEN];
	int r;

	if (t->state == T_HELLO) {
		char tmp[4096];
		ssize_t n = -1;

		/* never more than TUN_MAX_HELLO held: the decision is made within it */
		while (t->pre.len < TUN_MAX_HELLO &&
		       (n = recv(t->a.fd, tmp,
				 TUN_MAX_HELLO - t->pre.len < sizeof(tmp) ? TUN_MAX_HELLO - t->pre.len
									  : sizeof(tmp),
				 0)) != 0) {
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				tun_kill(t);
				return;
			}
			buf_put(&t->pre, tmp, (size_t)n);
		}
		if (n == 0)
			t->a.eof = true;
		if (t->kind == LST_GATEWAY)
			gateway_hello(t);
		else if (t->kind == LST_INBOUND)
			inbound_hello(t);
		else
			outbound_route(t);
		if (t->dead || t->state == T_HELLO)
			goto arm;
	}
	if (t->state == T_TLS) {
		r = side_handshake(&t->a, why, sizeof(why));
		side_flush(&t->a);
		if (r < 0) {
			refuse(t, &s->st.in_refused_tls, 0, "mutual TLS:", why);
			return;
		}
		if (!r)
			goto arm;
		s->st.in_ok++;
		tel_inbound(t);
		pr_debug("inbound: %s from %s -> %s:%u\n", t->a.rule.seen,
			 addr_str(&t->peer, a, sizeof(a)), addr_str(&t->dst, why, sizeof(why)),
			 t->dst_port);
		if (connect_b(t, &t->dst, t->dst_port)) {
			tun_kill(t);
			return;
		}
	}
	if (t->state == T_SPLICED) {
		splice_step(t);
		return;
	}
	if (t->state == T_CONNECT) {
		r = side_connect_done(&t->b);
		if (r < 0) {
			pr_info("%s: connect to %s:%u: %s\n", tun_kind_name(t),
				addr_str(&t->dst, a, sizeof(a)), t->dst_port, strerror(-r));
			tun_kill(t);
			return;
		}
		if (!r)
			goto arm;
		if (t->kind == LST_GATEWAY && s->o.splice_fd >= 0 && !s->splice_off && !t->a.ssl &&
		    !splice_start(t)) {
			t->state = T_SPLICED;
			s->st.gw_spliced++;
			splice_step(t);
			return;
		}
		if (t->kind == LST_GATEWAY)
			s->st.gw_copied++;
		t->state = t->b.ssl ? T_ORIGINATE : T_RELAY;
	}
	if (t->state == T_ORIGINATE) { /* an outbound stream's mutual TLS */
		r = side_handshake(&t->b, why, sizeof(why));
		if (!side_flush(&t->b) || r < 0) {
			s->st.upstream_tls_failed++;
			refuse(t, &s->st.out_refused, 0, "upstream TLS handshake failed:", why);
			return;
		}
		if (!r)
			goto arm;
		s->st.upstream_tls_ok++;
		t->state = T_RELAY;
		tel_principal(&t->st.pk, false, t->b.rule.seen); /* what the server proved */
	}
	if (t->kind == LST_OUTBOUND && t->state == T_RELAY && !t->st.on && !t->dead)
		stream_open(s, &t->st);
	if (t->pre.len) { /* a ClientHello read for the SNI, now the stream's first bytes */
		stream_bytes(s, &t->st, true, t->pre.p, t->pre.len);
		if (!side_write(&t->b, t->pre.p, t->pre.len)) {
			tun_kill(t);
			return;
		}
		t->pre.len = 0;
	}
	if (!tun_flush(t, &t->b) || !tun_flush(t, &t->a) || pump(t, &t->a, &t->b, &t->a_done) ||
	    pump(t, &t->b, &t->a, &t->b_done) || !tun_flush(t, &t->a) || !tun_flush(t, &t->b)) {
		tun_kill(t);
		return;
	}
	tun_fin(&t->b, t->a_done, &t->b_fin);
	tun_fin(&t->a, t->b_done, &t->a_fin);
	if (t->a_done && t->b_done && !t->a.out.len && !t->b.out.len) {
		tun_kill(t);
		return;
	}
arm:
	if (!t->dead)
		tun_arm_all(t);
}

static void tun_event(struct evh *h, uint32_t events)
{
	struct tun *t = (struct tun *)h;

	(void)events;
	if (!t->dead)
		tun_step(t);
}

uint64_t tun_idle_ms(void)
{
	const char *e = getenv("KSTEER_TUNNEL_IDLE_MS");
	uint64_t v = e ? strtoull(e, NULL, 10) : 0;

	return v ? v : SHIM_TUNNEL_IDLE_MS;
}

static struct tun *tun_new(struct shim *s, int fd, const struct sockaddr_in6 *peer, int kind)
{
	struct sockaddr_in6 local;
	socklen_t ll = sizeof(local);
	struct tun *t = calloc(1, sizeof(*t));

	if (!t || getsockname(fd, (struct sockaddr *)&local, &ll)) {
		free(t);
		close(fd);
		return NULL;
	}
	t->h.fn = tun_event;
	t->s = s;
	t->kind = kind;
	side_init(&t->a, fd);
	side_init(&t->b, -1);
	t->a.connected = true;
	memcpy(&t->peer, &peer->sin6_addr, 16);
	t->peer_port = ntohs(peer->sin6_port);
	memcpy(&t->local, &local.sin6_addr, 16);
	t->local_port = ntohs(local.sin6_port);
	t->last = now_ms();
	t->deadline = t->last + SHIM_SETUP_MS;
	if (!s->tun_idle_ms)
		s->tun_idle_ms = tun_idle_ms();
	LIST_PUSH(s->tuns, t);
	tun_arm(t, fd, &t->ev_a, EPOLLIN);
	return t;
}

void tun_accept(struct shim *s, int lfd, int kind)
{
	struct sockaddr_in6 peer;
	socklen_t pl = sizeof(peer);
	int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	sock_nodelay(fd);
	if (!tun_new(s, fd, &peer, kind))
		return;
	if (kind == LST_GATEWAY)
		s->st.gw_accepted++;
	else
		s->st.in_accepted++;
}

void tun_outbound(struct shim *s, int fd, const struct sockaddr_in6 *peer,
		  const struct ks_addr *orig, uint16_t orig_port, const struct c_frontend *fe)
{
	struct tun *t = tun_new(s, fd, peer, LST_OUTBOUND);

	if (!t)
		return;
	s->st.out_accepted++;
	t->orig = *orig;
	t->orig_port = orig_port;
	if (!route_by_sni(fe)) { /* server-first protocols too: nothing to wait for */
		outbound_route(t);
		if (!t->dead)
			tun_arm_all(t);
	}
}

/*
 * Whether the verdict broke a tunnel since the last look: its splice_overflow
 * counter (one lookup a tick, not two per spliced tunnel).
 */
static bool splice_overflow_news(struct shim *s)
{
	int ncpu = libbpf_num_possible_cpus();
	uint32_t k = KS_STAT_SPLICE_OVERFLOW;
	uint64_t v[512], sum = 0;
	bool news;

	if (s->o.stats_fd < 0 || s->o.splice_fd < 0 || ncpu <= 0 || ncpu > 512 ||
	    bpf_map_lookup_elem(s->o.stats_fd, &k, v))
		return false;
	for (int i = 0; i < ncpu; i++)
		sum += v[i];
	news = sum != s->splice_overflows;
	s->splice_overflows = sum;
	return news;
}

void tun_tick(struct shim *s, uint64_t now)
{
	bool overflowed = splice_overflow_news(s);

	for (struct tun *t = s->tuns, *nx; t; t = nx) {
		nx = t->next;
		if (t->state == T_SPLICED) {
			/* a way whose bytes are all held passes nothing up: nothing wakes it */
			if (overflowed && splice_overflowed(t)) {
				tun_kill(t);
				continue;
			}
			if (splice_waiting(t))
				splice_step(t); /* a half-close waiting for its bytes to be queued */
			if (!t->dead && now >= t->spliced_look) {
				/* the kernel moves the bytes: its counts say whether any moved */
				uint64_t n = spliced_bytes(t, t->ca) + spliced_bytes(t, t->cb);

				if (n != t->spliced_seen)
					t->last = now;
				t->spliced_seen = n;
				t->spliced_look = now + s->tun_idle_ms / 4;
			}
		}
		if (t->dead)
			continue;
		stream_report(s, &t->st); /* a long stream's bytes show before it closes */
		if (t->state != T_RELAY && t->state != T_SPLICED && now > t->deadline) {
			s->st.tun_setup_timeout++;
			refuse(t,
			       t->kind == LST_GATEWAY	? &s->st.gw_refused_hello
			       : t->kind == LST_INBOUND ? &s->st.in_refused_tls
							: &s->st.out_refused,
			       0, "set-up timeout", NULL);
		} else if ((t->state == T_RELAY || t->state == T_SPLICED) &&
			   now - t->last > s->tun_idle_ms) {
			char a[INET6_ADDRSTRLEN];

			s->st.tun_idle_timeout++;
			pr_info("%s: %s:%u: idle for %lu ms: closed\n", tun_kind_name(t),
				addr_str(&t->peer, a, sizeof(a)), t->peer_port,
				(unsigned long)(now - t->last));
			tun_kill(t);
		}
	}
}

void tun_close_all(struct shim *s)
{
	while (s->tuns)
		tun_kill(s->tuns);
}
