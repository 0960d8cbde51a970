// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The gateway's splice (ksteer_skb, the sk_skb stream verdict on ks_splice),
 * program by program: the agent's own datapath code loads it, and two TCP
 * connections on loopback in a fresh network namespace are joined as the shim
 * joins a tunnel (both middle sockets in ks_splice, each naming the other in
 * ks_splice_peer):
 *
 *   client c --> a [gateway] b --> s server
 *
 * No user space copies between a and b: what reaches the far end went through
 * the kernel. Needs root and BPF: it fails, naming what is missing, rather
 * than skip.
 */
#include "../unit/harness.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "agent/datapath/counters.h"
#include "agent/datapath/datapath.h"
#include "fixture.h"

#define GW_PORT 15443
#define SRV_PORT 15008
#define SMALL_BUF 65536 /* c's receive and a's send buffer: the answer waits in the kernel */

static struct datapath dp;
static char instance[32];
static bool dp_up;
static char cg_mount[PATH_MAX], cg_dir[PATH_MAX];
static int l_gw = -1, l_srv = -1;

struct tunnel {
	int c, a, b, s;
	uint64_t ca, cb; /* a's and b's socket cookies */
};

static int listen_on(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 8)) {
		fprintf(stderr, "test_splice: listen on %u: %s\n", port, strerror(errno));
		return -1;
	}
	return fd;
}

static int dial(uint16_t port, int rcvbuf)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (rcvbuf)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		fail_msg("connect to %u: %s", port, strerror(errno));
	return fd;
}

static uint64_t cookie(int fd)
{
	uint64_t c = 0;
	socklen_t l = sizeof(c);

	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &l), 0);
	return c;
}

/* c -> a, b -> s, then a and b joined in the kernel as relay.c's splice_start does. */
static void tunnel_open(struct tunnel *t, int c_rcvbuf, int a_sndbuf)
{
	struct ks_splice pa = {0}, pb = {0};
	uint64_t fa, fb;

	t->c = dial(GW_PORT, c_rcvbuf);
	t->a = accept4(l_gw, NULL, NULL, SOCK_CLOEXEC);
	t->b = dial(SRV_PORT, 0);
	t->s = accept4(l_srv, NULL, NULL, SOCK_CLOEXEC);
	assert_true(t->a >= 0 && t->s >= 0);
	if (a_sndbuf)
		assert_int_equal(
		    setsockopt(t->a, SOL_SOCKET, SO_SNDBUF, &a_sndbuf, sizeof(a_sndbuf)), 0);
	t->ca = cookie(t->a);
	t->cb = cookie(t->b);
	pa.peer = t->cb;
	pb.peer = t->ca;
	fa = (uint64_t)t->a;
	fb = (uint64_t)t->b;
	assert_int_equal(bpf_map_update_elem(dp.splice_peer_fd, &t->ca, &pa, BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(dp.splice_peer_fd, &t->cb, &pb, BPF_ANY), 0);
	if (bpf_map_update_elem(dp.splice_fd, &t->ca, &fa, BPF_NOEXIST) ||
	    bpf_map_update_elem(dp.splice_fd, &t->cb, &fb, BPF_NOEXIST))
		fail_msg("ks_splice: insert the sockets: %s", strerror(errno));
}

static void tunnel_close(struct tunnel *t)
{
	bpf_map_delete_elem(dp.splice_peer_fd, &t->ca);
	bpf_map_delete_elem(dp.splice_peer_fd, &t->cb);
	close(t->c);
	close(t->a); /* closing takes a and b out of ks_splice */
	close(t->b);
	close(t->s);
}

static uint64_t stat_of(int which)
{
	uint64_t v[KS_STAT_MAX];

	assert_int_equal(dp_counters_read(dp.fds[DP_STATS], KS_STAT_MAX, v), 0);
	return v[which];
}

/* The verdict's record of a spliced socket; zeroes when it has none. */
static struct ks_splice record(uint64_t c)
{
	struct ks_splice v = {0};

	bpf_map_lookup_elem(dp.splice_peer_fd, &c, &v);
	return v;
}

static uint64_t spliced(uint64_t c)
{
	return record(c).bytes;
}

/* Every byte fd's TCP was given to send (relay.c's queued()): acknowledged or still queued. */
static uint64_t queued(int fd)
{
	struct tcp_info ti = {0};
	socklen_t l = sizeof(ti);
	int outq = 0;

	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l);
	ioctl(fd, SIOCOUTQ, &outq);
	return ti.tcpi_bytes_acked + (uint64_t)(outq > 0 ? outq : 0);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Byte i of the answer: a pattern a cut or a reorder cannot keep. */
static unsigned char pattern(uint64_t i)
{
	return (unsigned char)(i % 251);
}

/*
 * Writer s writes the pattern from `from` to `total` while reader c reads it
 * from byte `got` (what comes before `from` already waits in the kernel); stops
 * when no byte moved for 5 s. How many bytes the reader got, checked.
 */
static uint64_t exchange(int s, uint64_t from, int c, uint64_t got, uint64_t total)
{
	static unsigned char buf[65536];
	uint64_t got0 = got, idle_since = now_ms();

	while (got < total && now_ms() - idle_since < 5000) {
		struct pollfd p[2] = {{.fd = c, .events = POLLIN},
				      {.fd = s, .events = from < total ? POLLOUT : 0}};
		ssize_t n;

		if (poll(p, 2, 100) < 1)
			continue;
		if (p[1].revents & POLLOUT) {
			size_t k = total - from < 16384 ? (size_t)(total - from) : 16384;

			for (size_t i = 0; i < k; i++)
				buf[i] = pattern(from + i);
			n = send(s, buf, k, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0) {
				from += (uint64_t)n;
				idle_since = now_ms();
			}
		}
		if (!(p[0].revents & POLLIN))
			continue;
		n = recv(c, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pattern(got + (uint64_t)i))
				fail_msg("byte %llu of the answer is %u, expected %u",
					 (unsigned long long)(got + (uint64_t)i), buf[i],
					 pattern(got + (uint64_t)i));
		got += (uint64_t)n;
		idle_since = now_ms();
	}
	return got - got0;
}

/* An EOF the user space of a socket can see (what the shim peeks for), within 1 s. */
static bool eof_seen(int fd)
{
	for (int i = 0; i < 100; i++) {
		char ch;

		if (recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * The shim's part once b's direction falls back (relay.c): wait until a's TCP
 * has taken every byte redirected to it, then copy what the verdict passes up
 * on b to a; b's EOF counts only once every passed byte has been read.
 */
struct copier {
	pthread_t th;
	struct tunnel *t;
	volatile bool stop;
	uint64_t copied;
	bool started;
};

static void *copier_run(void *arg)
{
	struct copier *cp = arg;
	struct tunnel *t = cp->t;
	static unsigned char buf[65536];
	bool drained = false;

	while (!cp->stop) {
		struct ks_splice r = record(t->cb);
		struct pollfd p = {.fd = t->b, .events = POLLIN};
		ssize_t n;

		if (!(r.flags & KS_SPLICE_COPY) || (!drained && queued(t->a) < r.bytes)) {
			usleep(1000);
			continue;
		}
		drained = true;
		if (poll(&p, 1, 10) < 1)
			continue;
		n = recv(t->b, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 && cp->copied >= record(t->cb).passed) {
			shutdown(t->a, SHUT_WR);
			break;
		}
		if (n <= 0) {
			usleep(1000); /* an EOF before every passed byte: the rest is on its way */
			continue;
		}
		for (ssize_t off = 0; off < n && !cp->stop;) {
			struct pollfd w = {.fd = t->a, .events = POLLOUT};
			ssize_t k;

			if (poll(&w, 1, 10) < 1)
				continue;
			k = send(t->a, buf + off, (size_t)(n - off), MSG_DONTWAIT | MSG_NOSIGNAL);
			if (k > 0)
				off += k;
			else if (k < 0 && errno != EAGAIN)
				return NULL;
		}
		cp->copied += (uint64_t)n;
	}
	return NULL;
}

static void copier_start(struct copier *cp, struct tunnel *t)
{
	memset(cp, 0, sizeof(*cp));
	cp->t = t;
	assert_int_equal(pthread_create(&cp->th, NULL, copier_run, cp), 0);
	cp->started = true;
}

static void copier_stop(struct copier *cp)
{
	if (!cp->started)
		return;
	cp->stop = true;
	pthread_join(cp->th, NULL);
	cp->started = false;
}

/* Writes to fd without blocking until it takes no more for 1 s or max went; what went. */
static uint64_t send_until_stalled(int fd, uint64_t from, uint64_t max)
{
	unsigned char buf[16384];
	uint64_t at = from;

	while (at - from < max) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		size_t n = max - (at - from) < sizeof(buf) ? (size_t)(max - (at - from)) : sizeof(buf);
		ssize_t w;

		if (poll(&p, 1, 1000) < 1)
			break;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(at + i);
		w = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN)
			fail_msg("send: %s", strerror(errno));
		if (w > 0)
			at += (uint64_t)w;
	}
	return at - from;
}

static int setup(void **state)
{
	struct dp_opts o = {.splice = true};
	char path[PATH_MAX + 32];

	(void)state;
	if (bpft_env("test_splice", cg_mount, sizeof(cg_mount), instance, sizeof(instance)))
		return -1;
	/* the socket programs need a cgroup to attach to; the splice needs only its map */
	snprintf(cg_dir, sizeof(cg_dir), "ksteer-bpftest-splice-%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/%s", cg_mount, cg_dir);
	if (mkdir(path, 0755)) {
		fprintf(stderr, "test_splice: mkdir %s: %s\n", path, strerror(errno));
		return -1;
	}
	o.instance = instance;
	o.cgroup = cg_dir;
	if (dp_open(&dp, &o)) {
		fprintf(stderr, "test_splice: the datapath did not load (see above)\n");
		return -1;
	}
	dp_up = true;
	if (strcmp(dp.splice, "on")) {
		fprintf(stderr, "test_splice: splice %s\n", dp.splice);
		return -1;
	}
	l_gw = listen_on(GW_PORT);
	l_srv = listen_on(SRV_PORT);
	return l_gw < 0 || l_srv < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	char path[PATH_MAX + 32];

	(void)state;
	if (l_gw >= 0)
		close(l_gw);
	if (l_srv >= 0)
		close(l_srv);
	if (dp_up)
		dp_close(&dp);
	if (instance[0])
		dp_uninstall(instance);
	snprintf(path, sizeof(path), "%s/%s", cg_mount, cg_dir);
	rmdir(path);
	return 0;
}

/* Bytes each way go through the kernel, counted per socket and in the stats. */
static void test_bytes_both_ways(void **state)
{
	struct tunnel t;
	uint64_t r0 = stat_of(KS_STAT_SPLICE_REDIRECTED);
	char buf[16] = {0};

	(void)state;
	tunnel_open(&t, 0, 0);
	assert_int_equal(send(t.c, "hello", 5, 0), 5);
	assert_int_equal(recv(t.s, buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(send(t.s, "world!", 6, 0), 6);
	assert_int_equal(recv(t.c, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "world!", 6);
	if (spliced(t.ca) != 5 || spliced(t.cb) != 6)
		fail_msg("ks_splice_peer bytes: a %llu (expected 5), b %llu (expected 6)",
			 (unsigned long long)spliced(t.ca), (unsigned long long)spliced(t.cb));
	if (stat_of(KS_STAT_SPLICE_REDIRECTED) - r0 != 2)
		fail_msg("splice_redirected moved by %llu, expected 2",
			 (unsigned long long)(stat_of(KS_STAT_SPLICE_REDIRECTED) - r0));
	tunnel_close(&t);
}

/*
 * The client's FIN alone while the answer waits in a's psock backlog (c does not
 * read; its receive buffer and a's send buffer are small; the rest of what the
 * server could write waits passed up for the shim's copy), then more answer:
 * every byte must still reach c, and a's user space must see the EOF. Before the verdict
 * dropped empty skbs, the FIN was queued behind the answer, taken as a broken pipe
 * when reached, and the rest of the answer was lost.
 */
static void test_fin_mid_answer(void **state)
{
	const uint64_t total = 8 << 20;
	struct copier cp;
	struct tunnel t;
	uint64_t wrote, got;

	(void)state;
	tunnel_open(&t, SMALL_BUF, SMALL_BUF);
	copier_start(&cp, &t); /* the answer outgrows the backlog's bound: the shim's copy */
	wrote = send_until_stalled(t.s, 0, total);
	assert_int_equal(shutdown(t.c, SHUT_WR), 0);
	if (!eof_seen(t.a))
		fail_msg("a's user space saw no EOF within 1 s of the client's FIN");
	got = exchange(t.s, wrote, t.c, 0, total);
	if (got != total)
		fail_msg(
		    "the client got %llu of %llu answer bytes after its FIN (kernel counted %llu "
		    "redirected, %llu passed up, user space copied %llu)",
		    (unsigned long long)got, (unsigned long long)total,
		    (unsigned long long)spliced(t.cb), (unsigned long long)record(t.cb).passed,
		    (unsigned long long)cp.copied);
	copier_stop(&cp);
	tunnel_close(&t);
}

/*
 * A client that stops reading: the answer waiting for it in a's backlog stays
 * within KS_SPLICE_BACKLOG, b's direction falls back, TCP's window holds the
 * server back; once the client reads again, the shim's copy delivers the rest,
 * every byte in order. Before the bound, the whole answer went into the
 * backlog, charged to nobody.
 */
static void test_backlog_bound(void **state)
{
	const uint64_t total = 32 << 20;
	uint64_t f0 = stat_of(KS_STAT_SPLICE_FALLBACK), wrote, wait, got;
	struct ks_splice r;
	struct copier cp;
	struct tunnel t;

	(void)state;
	tunnel_open(&t, SMALL_BUF, SMALL_BUF);
	wrote = send_until_stalled(t.s, 0, total);
	r = record(t.cb);
	wait = r.bytes - queued(t.a);
	if (wrote >= total)
		fail_msg("the server wrote all %llu bytes to a client that reads nothing: no bound "
			 "held it back (backlog %llu)",
			 (unsigned long long)total, (unsigned long long)wait);
	if (!(r.flags & KS_SPLICE_COPY) || stat_of(KS_STAT_SPLICE_FALLBACK) - f0 != 1)
		fail_msg("b's direction did not fall back (flags %u, splice_fallback +%llu)", r.flags,
			 (unsigned long long)(stat_of(KS_STAT_SPLICE_FALLBACK) - f0));
	if (wait > KS_SPLICE_BACKLOG)
		fail_msg("%llu bytes wait in a's backlog, over the bound %u",
			 (unsigned long long)wait, KS_SPLICE_BACKLOG);
	printf("stalled: the server wrote %llu bytes, %llu wait in a's backlog, %llu passed up\n",
	       (unsigned long long)wrote, (unsigned long long)wait, (unsigned long long)r.passed);
	copier_start(&cp, &t);
	got = exchange(t.s, wrote, t.c, 0, total);
	copier_stop(&cp);
	if (got != total)
		fail_msg("the client got %llu of %llu bytes (copied by user space %llu)",
			 (unsigned long long)got, (unsigned long long)total,
			 (unsigned long long)cp.copied);
	tunnel_close(&t);
}

/*
 * A client that reads nothing but still sends (an upload during a download):
 * the answer's way falls back, the client's way stays spliced and carries all
 * of the upload: only a way's own backlog makes it fall back. And when the
 * server pauses, the upload's backlog passes the bound while the client's
 * socket still holds the answer's bytes: passed up, the upload would wait
 * behind them uncharged, so it is redirected on (up to KS_SPLICE_BACKLOG_MAX)
 * and arrives whole once the server reads again.
 */
static void test_stalled_reader_sends(void **state)
{
	const uint64_t up = 1 << 20, more = 640 << 10;
	uint64_t got, late, o0 = stat_of(KS_STAT_SPLICE_OVERFLOW);
	int small = 16384;
	struct ks_splice ra, rb;
	struct tunnel t;

	(void)state;
	tunnel_open(&t, SMALL_BUF, SMALL_BUF);
	send_until_stalled(t.s, 0, 32 << 20);
	got = exchange(t.c, 0, t.s, 0, up);
	assert_int_equal(setsockopt(t.s, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	assert_int_equal(setsockopt(t.b, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	assert_int_equal(send_until_stalled(t.c, up, more), more);
	usleep(200000);
	ra = record(t.ca);
	late = ra.bytes - queued(t.b);
	got += exchange(t.c, up + more, t.s, up, up + more);
	ra = record(t.ca);
	rb = record(t.cb);
	printf("upload: %llu of %llu bytes waited in b's backlog while the server paused\n",
	       (unsigned long long)late, (unsigned long long)(up + more));
	if (got != up + more || (ra.flags & (KS_SPLICE_COPY | KS_SPLICE_OVERFLOW)) ||
	    !(rb.flags & KS_SPLICE_COPY) || stat_of(KS_STAT_SPLICE_OVERFLOW) != o0)
		fail_msg("the server got %llu of the client's %llu bytes; flags a %u b %u, "
			 "splice_overflow +%llu",
			 (unsigned long long)got, (unsigned long long)(up + more), ra.flags, rb.flags,
			 (unsigned long long)(stat_of(KS_STAT_SPLICE_OVERFLOW) - o0));
	if (late <= KS_SPLICE_BACKLOG)
		fail_msg("the paused server left only %llu bytes in b's backlog: the case past the "
			 "bound was not reached", (unsigned long long)late);
	tunnel_close(&t);
}

/*
 * Both ends write and neither reads: each direction falls back, and the bytes
 * passed up behind the other direction's backlog (uncharged again) reach the
 * bound too: the verdict marks the tunnel broken for the shim to reset, counts
 * it and drops from then on. The writer whose bytes are dropped is not held
 * back (TCP took them), but the kernel keeps none of them.
 */
static void test_both_stalled(void **state)
{
	const uint64_t total = 64 << 20, kept_max = 8 << 20;
	uint64_t o0 = stat_of(KS_STAT_SPLICE_OVERFLOW), wc, ws;
	struct ks_splice ra, rb;
	struct tunnel t;

	(void)state;
	tunnel_open(&t, SMALL_BUF, SMALL_BUF);
	ws = send_until_stalled(t.s, 0, total);
	wc = send_until_stalled(t.c, 0, total);
	ws += send_until_stalled(t.s, ws, total - ws);
	ra = record(t.ca);
	rb = record(t.cb);
	printf("both stalled: client wrote %llu (kept %llu), server %llu (kept %llu); flags a %u "
	       "b %u\n",
	       (unsigned long long)wc, (unsigned long long)(ra.bytes + ra.passed),
	       (unsigned long long)ws, (unsigned long long)(rb.bytes + rb.passed), ra.flags,
	       rb.flags);
	if (!((ra.flags | rb.flags) & KS_SPLICE_OVERFLOW) ||
	    stat_of(KS_STAT_SPLICE_OVERFLOW) == o0)
		fail_msg("no overflow marked (flags a %u b %u)", ra.flags, rb.flags);
	if (ra.held > KS_SPLICE_BACKLOG || rb.held > KS_SPLICE_BACKLOG)
		fail_msg("held over the bound: a %u b %u", ra.held, rb.held);
	if (ra.bytes + ra.passed > kept_max || rb.bytes + rb.passed > kept_max)
		fail_msg("the kernel kept %llu of the client's and %llu of the server's bytes",
			 (unsigned long long)(ra.bytes + ra.passed),
			 (unsigned long long)(rb.bytes + rb.passed));
	tunnel_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bytes_both_ways),
	    cmocka_unit_test(test_fin_mid_answer),
	    cmocka_unit_test(test_backlog_bound),
	    cmocka_unit_test(test_stalled_reader_sends),
	    cmocka_unit_test(test_both_stalled),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
