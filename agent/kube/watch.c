// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * List+watch of every kind the compiler reads, on one thread with one curl
 * multi handle (HTTP/2 streams on one connection when the server speaks it).
 * Each kind is a small state machine: LIST (pages) -> WATCH from the list's
 * resourceVersion -> WATCH again when the server ends it, LIST again on 410
 * Gone, WAIT (jittered backoff) after a failure. When every kind has been
 * listed, a burst of changes becomes one snapshot after a quiet window; the
 * agent's loop takes it through an eventfd and loads it as a directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>

#include "../lib/log.h"
#include "kube.h"

enum wstate { W_WAIT, W_LIST, W_WATCH };

struct watcher {
	struct kube *k;
	enum kube_kind kind;
	unsigned ver;          /* index in kube_kinds[kind].versions */
	struct kube_store st;  /* what the agent's snapshots are made of */
	struct kube_store stg; /* a list in progress, page by page */
	enum wstate state;     /* the request in flight, or W_WAIT */
	enum wstate next;      /* what W_WAIT leads to */
	uint64_t wake_ms;
	unsigned attempt; /* failures in a row, for the backoff */
	bool synced;      /* listed (or known absent) at least once */
	bool absent;      /* the server answers 404 for every version */
	bool overflow;    /* a bound was hit: snapshots wait until a list fits */
	bool relist, fail; /* set while reading a watch stream, acted on when it ends */
	CURL *easy;
	struct curl_slist *hdrs;
	char apiv[64]; /* apiVersion as served: group/version */
	char *buf;
	size_t len, cap, max;
	char cont[2048];
	char err[512], last_err[512];
};

struct kube {
	struct kube_config cfg;
	char *node;
	pthread_t th;
	bool started;
	int evfd;
	CURLM *multi;
	struct watcher w[KK_MAX];
	struct kube_burst burst;
	bool first_sent;
	int stop; /* atomic */
	/* the bearer token, read again when its file changes */
	char *token;
	struct timespec tok_mtime;
	ino_t tok_ino;
	/* shared with the agent's thread */
	pthread_mutex_t mu;
	struct kube_snap *pending;
	struct kube_counters cnt; /* atomic */
	unsigned applied, refused;
	/*
	 * the resourceVersion through which every watched change is handled: its snapshot
	 * applied or refused, or no snapshot needed (`ksteer lab wait` compares it)
	 */
	uint64_t handled_rv;
	bool inflight; /* a snapshot published and not yet judged */
	char kinds_line[1024];
	char last_error[512];
	uint64_t last_error_ms;
};

#define CNT(k, f) __atomic_add_fetch(&(k)->cnt.f, 1, __ATOMIC_RELAXED)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t rnd32(void)
{
	uint32_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)now_ms() * 2654435761u;
	return r;
}

static void set_version(struct watcher *w, unsigned ver)
{
	const struct kube_kind_info *ki = &kube_kinds[w->kind];

	w->ver = ver;
	snprintf(w->apiv, sizeof(w->apiv), "%s%s%s", ki->group, *ki->group ? "/" : "",
		 ki->versions[ver]);
	w->st.api_version = w->stg.api_version = w->apiv;
}

/* A failure is logged when it differs from the kind's last one: a dead server logs once. */
static void note_err(struct watcher *w, const char *msg)
{
	if (strcmp(msg, w->last_err)) {
		pr_warn("kube: %s\n", msg);
		snprintf(w->last_err, sizeof(w->last_err), "%s", msg);
	}
	pthread_mutex_lock(&w->k->mu);
	snprintf(w->k->last_error, sizeof(w->k->last_error), "%s", msg);
	w->k->last_error_ms = now_ms();
	pthread_mutex_unlock(&w->k->mu);
}

static void token_refresh(struct kube *k)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd;

	if (!k->cfg.token_file || stat(k->cfg.token_file, &st))
		return;
	if (k->token && st.st_ino == k->tok_ino && st.st_mtim.tv_sec == k->tok_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == k->tok_mtime.tv_nsec)
		return;
	fd = open(k->cfg.token_file, O_RDONLY | O_CLOEXEC);
	buf = malloc(KUBE_MAX_CONFIG_BYTES + 1);
	n = fd >= 0 && buf ? read(fd, buf, KUBE_MAX_CONFIG_BYTES) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		pr_warn("kube: read token %s: %s; the old one is kept\n", k->cfg.token_file,
			n ? strerror(errno) : "empty");
		free(buf);
		return;
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	if (k->token)
		pr_info("kube: token %s changed: re-read\n", k->cfg.token_file);
	free(k->token);
	k->token = buf;
	k->tok_ino = st.st_ino;
	k->tok_mtime = st.st_mtim;
}

static size_t on_data(char *p, size_t sz, size_t nm, void *arg);
static void wait_then(struct watcher *w, enum wstate next, uint32_t ms);

static int start(struct watcher *w, enum wstate what)
{
	struct kube *k = w->k;
	struct kube_config *c = &k->cfg;
	const struct kube_kind_info *ki = &kube_kinds[w->kind];
	char url[4096], *esc = NULL;
	/* 5 to 10 minutes, as client-go: many agents' watches do not end together */
	long secs = KUBE_WATCH_SECONDS + (long)(rnd32() % KUBE_WATCH_SECONDS), timeout;
	CURL *e = w->easy;

	token_refresh(k);
	/* the core group is /api/v1/..., the others /apis/GROUP/VERSION/... */
	if (what == W_LIST && w->cont[0])
		esc = curl_easy_escape(e, w->cont, 0);
	if (what == W_LIST)
		snprintf(url, sizeof(url), "%s/%s%s/%s/%s?limit=%d%s%s", c->server,
			 *ki->group ? "apis/" : "api", ki->group, ki->versions[w->ver], ki->plural,
			 KUBE_LIST_PAGE, esc ? "&continue=" : "", esc ? esc : "");
	else
		snprintf(url, sizeof(url),
			 "%s/%s%s/%s/%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%ld"
			 "&resourceVersion=%s",
			 c->server, *ki->group ? "apis/" : "api", ki->group, ki->versions[w->ver],
			 ki->plural, secs, w->st.rv);
	curl_free(esc);
	curl_easy_reset(e);
	curl_slist_free_all(w->hdrs);
	w->hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (k->token) {
		char *h;

		if (asprintf(&h, "Authorization: Bearer %s", k->token) < 0)
			abort();
		w->hdrs = curl_slist_append(w->hdrs, h);
		free(h);
	}
	timeout = what == W_LIST ? KUBE_LIST_TIMEOUT_MS : secs * 1000 + KUBE_WATCH_GRACE_MS;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->hdrs);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "ksteer");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, w);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)KUBE_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
	if (c->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	if (c->ca_pem) {
		struct curl_blob b = { c->ca_pem, c->ca_pem_len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	}
	if (c->cert_file)
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
	if (c->cert_pem) {
		struct curl_blob b = { c->cert_pem, c->cert_pem_len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
	}
	if (c->key_file)
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
	if (c->key_pem) {
		struct curl_blob b = { c->key_pem, c->key_pem_len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
	}
	if (c->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	w->len = 0;
	w->relist = w->fail = false;
	w->err[0] = 0;
	/* a list page whole; a watch one event at a time (plus a Status on failure) */
	w->max = what == W_LIST ? KUBE_MAX_LIST_BYTES : KUBE_MAX_OBJECT_BYTES + 65536;
	w->state = what;
	if (what == W_WATCH)
		CNT(k, watches);
	if (curl_multi_add_handle(k->multi, e) != CURLM_OK) {
		wait_then(w, what, KUBE_BACKOFF_MAX_MS);
		return -EIO;
	}
	return 0;
}

static void wait_then(struct watcher *w, enum wstate next, uint32_t ms)
{
	w->state = W_WAIT;
	w->next = next;
	w->wake_ms = now_ms() + ms;
}

static void backoff(struct watcher *w, enum wstate next)
{
	CNT(w->k, reconnects);
	wait_then(w, next, kube_backoff_ms(w->attempt++, rnd32()));
}

/* Complete lines of a watch stream, each one event. */
static int watch_lines(struct watcher *w)
{
	struct kube *k = w->k;
	size_t off = 0;
	char *nl;

	while ((nl = memchr(w->buf + off, '\n', w->len - off))) {
		size_t l = (size_t)(nl - (w->buf + off));
		enum kube_ev ev;

		if (l) {
			unsigned bm = w->st.bookmarks;

			ev = kube_store_event(&w->st, w->buf + off, l, w->err, sizeof(w->err));
			if (w->st.bookmarks != bm)
				CNT(k, bookmarks);
			else
				CNT(k, events);
			if (ev == KEV_CHANGED)
				kube_burst_change(&k->burst, now_ms());
			else if (ev == KEV_RELIST)
				w->relist = true;
			else if (ev == KEV_ERROR)
				w->fail = true;
			else if (ev == KEV_OVERFLOW)
				w->overflow = w->fail = true;
			if (ev >= KEV_RELIST) {
				w->len = 0;
				return -1;
			}
			w->attempt = 0; /* the stream works */
		}
		off += l + 1;
	}
	memmove(w->buf, w->buf + off, w->len - off);
	w->len -= off;
	return 0;
}

static size_t on_data(char *p, size_t sz, size_t nm, void *arg)
{
	struct watcher *w = arg;
	size_t n = sz * nm;
	long code = 0;

	if (w->len + n > w->max) {
		snprintf(w->err, sizeof(w->err), "%s %s: response over %zu bytes",
			 w->state == W_LIST ? "list" : "watch", kube_kinds[w->kind].plural, w->max);
		w->overflow = w->fail = true;
		return 0; /* aborts the transfer */
	}
	if (w->len + n + 1 > w->cap) { /* powers of two, within max */
		size_t nc = w->cap ? w->cap : 65536;
		char *nb;

		while (nc < w->len + n + 1)
			nc *= 2;
		nb = realloc(w->buf, nc);
		if (!nb)
			return 0;
		w->buf = nb;
		w->cap = nc;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	w->buf[w->len] = 0;
	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &code);
	if (w->state == W_WATCH && code == 200 && watch_lines(w))
		return 0;
	return n;
}

/* A Status body's message, for the log. */
static void status_msg(struct watcher *w, long code, char *out, size_t outlen)
{
	json_t *st = w->len ? json_loadb(w->buf, w->len, 0, NULL) : NULL;
	const char *m = json_string_value(json_object_get(st, "message"));

	snprintf(out, outlen, "%s %s: HTTP %ld%s%s", w->state == W_LIST ? "list" : "watch",
		 kube_kinds[w->kind].plural, code, m ? ": " : "", m ? m : "");
	json_decref(st);
}

static void fail_msg(struct watcher *w, CURLcode rc, long code, char *msg, size_t len)
{
	if (w->err[0])
		snprintf(msg, len, "%s", w->err);
	else if (rc != CURLE_OK)
		snprintf(msg, len, "%s %s: %s", w->state == W_LIST ? "list" : "watch",
			 kube_kinds[w->kind].plural, curl_easy_strerror(rc));
	else
		status_msg(w, code, msg, len);
}

static void list_done(struct watcher *w, CURLcode rc, long code)
{
	struct kube *k = w->k;
	char msg[640];
	enum kube_ev ev;

	if (rc == CURLE_OK && code == 200) {
		ev = kube_store_list(&w->stg, w->buf ? w->buf : "", w->len, w->cont,
				     sizeof(w->cont), w->err, sizeof(w->err));
		CNT(k, list_pages);
		if (ev == KEV_OVERFLOW || ev == KEV_ERROR) {
			note_err(w, w->err);
			w->overflow = ev == KEV_OVERFLOW;
			kube_store_clear(&w->stg);
			w->cont[0] = 0;
			CNT(k, errors);
			backoff(w, W_LIST);
			return;
		}
		if (w->cont[0]) { /* the next page, at once */
			start(w, W_LIST);
			return;
		}
		if (kube_store_replace(&w->st, &w->stg) == KEV_CHANGED || !w->synced)
			kube_burst_change(&k->burst, now_ms());
		if (w->synced)
			CNT(k, relists);
		CNT(k, lists);
		w->synced = true;
		w->absent = w->overflow = false;
		w->attempt = 0;
		w->last_err[0] = 0;
		start(w, W_WATCH);
		return;
	}
	kube_store_clear(&w->stg);
	if (rc == CURLE_OK && code == 410 && w->cont[0]) {
		/* the continue token expired mid-list: from the start */
		CNT(k, gone);
		w->cont[0] = 0;
		start(w, W_LIST);
		return;
	}
	w->cont[0] = 0;
	if (rc == CURLE_OK && code == 404) {
		if (w->ver + 1 < 3 && kube_kinds[w->kind].versions[w->ver + 1]) {
			set_version(w, w->ver + 1);
			start(w, W_LIST);
			return;
		}
		/* not served: empty, asked again later (a CRD may be installed meanwhile) */
		if (!w->absent)
			pr_info("kube: %s not served (404): empty, asked again every %d s\n",
				kube_kinds[w->kind].plural, KUBE_ABSENT_RETRY_MS / 1000);
		CNT(k, absent);
		if (w->st.n)
			kube_burst_change(&k->burst, now_ms());
		kube_store_clear(&w->st);
		if (!w->synced)
			kube_burst_change(&k->burst, now_ms());
		w->synced = w->absent = true;
		w->overflow = false;
		set_version(w, 0);
		wait_then(w, W_LIST, KUBE_ABSENT_RETRY_MS);
		return;
	}
	fail_msg(w, rc, code, msg, sizeof(msg));
	note_err(w, msg);
	CNT(k, errors);
	backoff(w, W_LIST);
}

static void watch_done(struct watcher *w, CURLcode rc, long code)
{
	struct kube *k = w->k;
	char msg[640];

	if (w->relist || (rc == CURLE_OK && code == 410)) {
		/* compacted past our resourceVersion: list again, at once */
		if (!w->relist)
			status_msg(w, code, msg, sizeof(msg));
		pr_info("kube: %s: 410 Gone, listing again\n", kube_kinds[w->kind].plural);
		CNT(k, gone);
		start(w, W_LIST);
		return;
	}
	if (!w->fail && code == 200 && (rc == CURLE_OK || rc == CURLE_OPERATION_TIMEDOUT)) {
		/* the server ended the watch (timeoutSeconds), or we did: on from where it was */
		start(w, W_WATCH);
		return;
	}
	fail_msg(w, rc, code, msg, sizeof(msg));
	note_err(w, msg);
	CNT(k, errors);
	/* an unreadable stream or a bound hit lists again; a broken connection watches on */
	backoff(w, w->fail || code == 404 ? W_LIST : W_WATCH);
}

static bool all_synced(struct kube *k, bool *overflow)
{
	bool ok = true;

	*overflow = false;
	for (int i = 0; i < KK_MAX; i++) {
		ok &= k->w[i].synced;
		*overflow |= k->w[i].overflow;
	}
	return ok;
}

/*
 * The resourceVersion every kind's watch has reached, the least of them (0: not a number).
 * A server that numbers all its changes in one sequence, as etcd's revision does, sends
 * each kind's events in order, so every change up to it has been read.
 */
static uint64_t seen_rv(struct kube *k)
{
	uint64_t min = 0;

	for (int i = 0; i < KK_MAX; i++) {
		struct watcher *w = &k->w[i];
		char *end;
		uint64_t v;

		if (!w->synced || w->absent)
			continue;
		v = strtoull(w->st.rv, &end, 10);
		if (!w->st.rv[0] || *end)
			return 0;
		if (!min || v < min)
			min = v;
	}
	return min;
}

static void publish(struct kube *k)
{
	struct kube_snap *s = calloc(1, sizeof(*s));
	uint64_t one = 1;

	if (!s)
		abort();
	for (int i = 0; i < KK_MAX; i++)
		kube_store_snap(&k->w[i].st, s);
	s->rv = seen_rv(k);
	pthread_mutex_lock(&k->mu);
	kube_snap_free(k->pending); /* superseded before the agent took it */
	k->pending = s;
	k->inflight = true;
	pthread_mutex_unlock(&k->mu);
	CNT(k, snapshots);
	memset(&k->burst, 0, sizeof(k->burst));
	k->first_sent = true;
	if (write(k->evfd, &one, sizeof(one)) != sizeof(one))
		pr_debug("kube: eventfd: %s\n", strerror(errno));
}

static void kinds_line(struct kube *k)
{
	char buf[sizeof(k->kinds_line)];
	size_t n = 0;

	for (int i = 0; i < KK_MAX && n < sizeof(buf); i++) {
		struct watcher *w = &k->w[i];

		if (!w->synced)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s ?", i ? ", " : "",
					      kube_kinds[i].kind);
		else if (w->absent)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s -", i ? ", " : "",
					      kube_kinds[i].kind);
		else
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s %u", i ? ", " : "",
					      kube_kinds[i].kind, w->st.n);
		if (i == KK_POD && w->synced && k->node && n < sizeof(buf))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " (%u on %s)",
					      w->st.n_local, k->node);
	}
	pthread_mutex_lock(&k->mu);
	memcpy(k->kinds_line, buf, sizeof(buf));
	pthread_mutex_unlock(&k->mu);
}

static void *run(void *arg)
{
	struct kube *k = arg;

	for (int i = 0; i < KK_MAX; i++)
		start(&k->w[i], W_LIST);
	while (!__atomic_load_n(&k->stop, __ATOMIC_ACQUIRE)) {
		uint64_t now = now_ms();
		int64_t due, wait = 1000;
		bool overflow;
		CURLMsg *m;
		int left;

		for (int i = 0; i < KK_MAX; i++) {
			struct watcher *w = &k->w[i];

			if (w->state != W_WAIT)
				continue;
			if (w->wake_ms <= now)
				start(w, w->next); /* on failure it waits again */
			else if ((int64_t)(w->wake_ms - now) < wait) {
				wait = (int64_t)(w->wake_ms - now);
			}
		}
		if (all_synced(k, &overflow) && !overflow) {
			due = kube_burst_due(&k->burst, now);
			if (due == 0 || (due > 0 && !k->first_sent))
				publish(k);
			else if (due > 0 && due < wait)
				wait = due;
			else if (due < 0 && k->first_sent) {
				/* nothing to hand over: what was read needed no snapshot */
				uint64_t rv = seen_rv(k);

				pthread_mutex_lock(&k->mu);
				if (!k->inflight && rv > k->handled_rv)
					k->handled_rv = rv;
				pthread_mutex_unlock(&k->mu);
			}
		}
		curl_multi_poll(k->multi, NULL, 0, (int)wait, NULL);
		curl_multi_perform(k->multi, &left);
		while ((m = curl_multi_info_read(k->multi, &left))) {
			struct watcher *w = NULL;
			long code = 0;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&w);
			curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			curl_multi_remove_handle(k->multi, m->easy_handle);
			if (w->state == W_LIST)
				list_done(w, m->data.result, code);
			else
				watch_done(w, m->data.result, code);
			/* a big list page's buffer goes; a watch's stays for its next events */
			if (w->cap > 4 * 65536 && w->state != W_WATCH) {
				free(w->buf);
				w->buf = NULL;
				w->cap = 0;
			}
			w->len = 0;
		}
		kinds_line(k);
	}
	return NULL;
}

int kube_start(struct kube **out, struct kube_config *cfg, const char *node, int *fd)
{
	struct kube *k = calloc(1, sizeof(*k));
	int err;

	*out = k;
	if (!k)
		return -ENOMEM;
	k->evfd = -1;
	k->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	k->node = node && *node ? strdup(node) : NULL;
	pthread_mutex_init(&k->mu, NULL);
	k->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (k->evfd < 0)
		return -errno;
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return -EIO;
	json_object_seed(0); /* before a second thread uses jansson */
	k->multi = curl_multi_init();
	if (!k->multi)
		return -ENOMEM;
	curl_multi_setopt(k->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(k->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)KUBE_MAX_CONNECTIONS);
	for (int i = 0; i < KK_MAX; i++) {
		struct watcher *w = &k->w[i];

		w->k = k;
		w->kind = i;
		kube_store_init(&w->st, i, NULL, k->node);
		kube_store_init(&w->stg, i, NULL, k->node);
		set_version(w, 0);
		w->easy = curl_easy_init();
		if (!w->easy)
			return -ENOMEM;
	}
	if (k->cfg.token)
		k->token = strdup(k->cfg.token);
	token_refresh(k);
	if ((k->cfg.token_file || k->cfg.token) && !k->token)
		return -EACCES;
	err = pthread_create(&k->th, NULL, run, k);
	if (err)
		return -err;
	k->started = true;
	*fd = k->evfd;
	pr_info("kube: watching %s (%s)%s%s\n", k->cfg.server, k->cfg.source,
		k->node ? ", node " : "", k->node ? k->node : "");
	return 0;
}

struct kube_snap *kube_take(struct kube *k)
{
	struct kube_snap *s;
	uint64_t x;

	if (read(k->evfd, &x, sizeof(x)) < 0 && errno != EAGAIN)
		pr_debug("kube: eventfd: %s\n", strerror(errno));
	pthread_mutex_lock(&k->mu);
	s = k->pending;
	k->pending = NULL;
	pthread_mutex_unlock(&k->mu);
	return s;
}

void kube_verdict(struct kube *k, const struct kube_snap *s, bool applied)
{
	pthread_mutex_lock(&k->mu);
	if (applied)
		k->applied++;
	else
		k->refused++;
	if (s && s->rv > k->handled_rv)
		k->handled_rv = s->rv;
	k->inflight = k->pending != NULL;
	pthread_mutex_unlock(&k->mu);
	/* the watch thread may now count what needed no snapshot as handled */
	curl_multi_wakeup(k->multi);
}

void kube_print_status(struct kube *k, FILE *f)
{
	struct kube_counters c;
	uint64_t *from = (uint64_t *)&k->cnt, *to = (uint64_t *)&c;

	for (size_t i = 0; i < sizeof(c) / sizeof(uint64_t); i++)
		to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
	pthread_mutex_lock(&k->mu);
	fprintf(f,
		"kube %s (%s)%s%s\n"
		"kube objects %s\n"
		"kube counters lists %llu pages %llu watches %llu relists %llu gone %llu "
		"reconnects %llu events %llu bookmarks %llu absent %llu errors %llu\n"
		"kube snapshots %llu applied %u refused %u\n"
		"kube handled resourceVersion %llu\n"
		"kube last error %s",
		k->cfg.server, k->cfg.source, k->node ? " node " : "", k->node ? k->node : "",
		k->kinds_line[0] ? k->kinds_line : "(listing)", (unsigned long long)c.lists,
		(unsigned long long)c.list_pages, (unsigned long long)c.watches,
		(unsigned long long)c.relists, (unsigned long long)c.gone,
		(unsigned long long)c.reconnects, (unsigned long long)c.events,
		(unsigned long long)c.bookmarks, (unsigned long long)c.absent,
		(unsigned long long)c.errors, (unsigned long long)c.snapshots, k->applied,
		k->refused, (unsigned long long)k->handled_rv, k->last_error[0] ? k->last_error : "none");
	if (k->last_error[0])
		fprintf(f, " (%llu s ago)",
			(unsigned long long)((now_ms() - k->last_error_ms) / 1000));
	fputc('\n', f);
	pthread_mutex_unlock(&k->mu);
}

void kube_stop(struct kube *k)
{
	if (!k)
		return;
	if (k->started) {
		__atomic_store_n(&k->stop, 1, __ATOMIC_RELEASE);
		curl_multi_wakeup(k->multi);
		pthread_join(k->th, NULL);
	}
	for (int i = 0; i < KK_MAX; i++) {
		struct watcher *w = &k->w[i];

		if (w->easy) {
			curl_multi_remove_handle(k->multi, w->easy);
			curl_easy_cleanup(w->easy);
		}
		curl_slist_free_all(w->hdrs);
		kube_store_clear(&w->st);
		kube_store_clear(&w->stg);
		free(w->buf);
	}
	if (k->multi)
		curl_multi_cleanup(k->multi);
	kube_snap_free(k->pending);
	if (k->evfd >= 0)
		close(k->evfd);
	kube_config_free(&k->cfg);
	free(k->token);
	free(k->node);
	pthread_mutex_destroy(&k->mu);
	free(k);
}
