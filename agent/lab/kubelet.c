// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The lab plays kubelet for ksteer's own pods: the container's command and
 * args with $(VAR) expanded from its env, env from values, the downward API
 * and ConfigMaps, the in-cluster service account, and the volumes mounted at
 * their mountPath in a mount namespace of the container's own. No image: the
 * container's `ksteer` is the lab's binary, on the host's filesystem.
 */
#include "kubelet.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/file.h"
#include "lab.h"

#define KUBELET_MAX_ARGS 256
#define KUBELET_MAX_ENV 128
#define KUBELET_MAX_MOUNTS 32

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

bool kubelet_runs(json_t *spec)
{
	size_t i;
	json_t *ct;

	json_array_foreach(json_object_get(spec, "containers"), i, ct)
		if (!strcmp(json_string_value(json_array_get(json_object_get(ct, "command"), 0)) ?: "",
			    "ksteer"))
			return true;
	return false;
}

int kubelet_backoff(int prev, long ran_seconds)
{
	if (!prev || ran_seconds >= KUBELET_BACKOFF_RESET)
		return KUBELET_BACKOFF_MIN;
	return prev * 2 > KUBELET_BACKOFF_MAX ? KUBELET_BACKOFF_MAX : prev * 2;
}

/* Kubernetes' $(VAR): from env (name -> value) when defined, $$ is a $, else left as is. */
static json_t *expand(const char *s, json_t *env)
{
	size_t n = strlen(s), cap = n + 1, o = 0;
	char *out = malloc(cap);
	json_t *r;

	for (size_t i = 0; out && i < n;) {
		const char *add = NULL;
		size_t addn = 0, skip = 1;

		if (s[i] == '$' && s[i + 1] == '$') {
			add = "$", addn = 1, skip = 2;
		} else if (s[i] == '$' && s[i + 1] == '(') {
			const char *end = strchr(s + i + 2, ')');
			char name[256];

			if (end && (size_t)(end - s - i - 2) < sizeof(name)) {
				snprintf(name, sizeof(name), "%.*s", (int)(end - s - i - 2), s + i + 2);
				if (json_is_string(json_object_get(env, name))) {
					add = jstr(env, name);
					addn = strlen(add);
					skip = (size_t)(end - s - i) + 1;
				}
			}
		}
		if (!add)
			add = s + i, addn = 1;
		if (o + addn + 1 > cap) {
			char *t = realloc(out, cap = (o + addn + 1) * 2);

			if (!t) {
				free(out);
				return NULL;
			}
			out = t;
		}
		memcpy(out + o, add, addn);
		o += addn;
		i += skip;
	}
	if (!out)
		return NULL;
	out[o] = 0;
	r = json_string(out);
	free(out);
	return r;
}

/* The downward API's fieldRef values a lab pod has. */
static int field_ref(const struct kubelet_pod *p, const char *path, char *out, size_t len)
{
	char key[256];

	if (!strcmp(path, "spec.nodeName"))
		snprintf(out, len, "%s", p->node);
	else if (!strcmp(path, "status.hostIP"))
		snprintf(out, len, "%s", p->host_ip);
	else if (!strcmp(path, "status.podIP"))
		snprintf(out, len, "%s", p->pod_ip);
	else if (!strcmp(path, "metadata.name"))
		snprintf(out, len, "%s", p->name);
	else if (!strcmp(path, "metadata.namespace"))
		snprintf(out, len, "%s", p->ns);
	else if (!strcmp(path, "spec.serviceAccountName"))
		snprintf(out, len, "%s", "ksteer");
	else if (sscanf(path, "metadata.labels['%255[^']']", key) == 1)
		snprintf(out, len, "%s", jstr(p->labels, key));
	else if (sscanf(path, "metadata.annotations['%255[^']']", key) == 1)
		snprintf(out, len, "%s", jstr(p->annotations, key));
	else
		return -EINVAL;
	return 0;
}

/* A Secret's data value, base64-decoded; NULL when absent or not base64. */
static unsigned char *b64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s);
	unsigned char *out = malloc(n / 4 * 3 + 4);
	int got;

	if (!out || n % 4)
		goto bad;
	got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (got < 0)
		goto bad;
	/* EVP_DecodeBlock counts the padding's bytes */
	while (n && s[n - 1] == '=' && got > 0)
		n--, got--;
	*len = (size_t)got;
	return out;
bad:
	free(out);
	return NULL;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *q = buf + 1; *q; q++)
		if (*q == '/') {
			*q = 0;
			if (mkdir(buf, mode) && errno != EEXIST)
				return -errno;
			*q = '/';
		}
	return mkdir(buf, mode) && errno != EEXIST ? -errno : 0;
}

static int write_bytes(const char *path, const void *b, size_t n, mode_t mode)
{
	char dir[PATH_MAX], *slash;
	int fd;
	ssize_t w;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = 0;
		mkdir_p(dir, 0755);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	w = write(fd, b, n);
	fchmod(fd, mode);
	close(fd);
	return w == (ssize_t)n ? 0 : -EIO;
}

/* A configMap or secret volume's files under dir: items when listed, else every key. */
static int write_volume(json_t *data, bool secret, json_t *items, mode_t mode, const char *dir,
			char *err, size_t len)
{
	const char *k;
	json_t *v, *it;
	size_t i;

	mkdir_p(dir, 0755);
	json_object_foreach(data, k, v)
	{
		const char *rel = k;
		mode_t m = mode;
		char path[PATH_MAX];
		unsigned char *raw = NULL;
		size_t n;
		int e;

		if (json_array_size(items)) {
			rel = NULL;
			json_array_foreach(items, i, it)
				if (!strcmp(jstr(it, "key"), k)) {
					rel = jstr(it, "path");
					if (json_is_integer(json_object_get(it, "mode")))
						m = (mode_t)json_integer_value(json_object_get(it, "mode"));
				}
			if (!rel)
				continue;
		}
		if (!*rel || strstr(rel, "..") || rel[0] == '/') {
			snprintf(err, len, "volume item path %s: not a relative path", rel);
			return -EINVAL;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, rel);
		if (secret) {
			raw = b64_decode(json_string_value(v) ?: "", &n);
			if (!raw) {
				snprintf(err, len, "secret key %s: not base64", k);
				return -EINVAL;
			}
			e = write_bytes(path, raw, n, m);
			free(raw);
		} else {
			e = write_bytes(path, jstr(data, k), strlen(jstr(data, k)), m);
		}
		if (e) {
			snprintf(err, len, "write %s: %s", path, strerror(-e));
			return e;
		}
	}
	return 0;
}

/* The nearest existing ancestor of path, resolved. */
static void existing_parent(const char *path, char *out, size_t len)
{
	char buf[PATH_MAX];
	struct stat st;

	snprintf(buf, sizeof(buf), "%s", path);
	while (stat(buf, &st)) {
		char *slash = strrchr(buf, '/');

		if (!slash || slash == buf) {
			snprintf(buf, sizeof(buf), "/");
			break;
		}
		*slash = 0;
	}
	if (!realpath(buf, out))
		snprintf(out, len, "%s", buf);
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == '/' || !path[n]);
}

/*
 * Where mountPath is missing: under /run or the lab's directory the mount point is made on
 * the host; elsewhere (/etc) the nearest existing directory gets an overlay in the
 * container's mount namespace (the host's files below, the mount points above, in the pod's
 * directory), so nothing is created in the host's /etc.
 */
static int mount_point(const char *dst, const struct kubelet_pod *p, json_t *launch, char *err,
		       size_t len)
{
	char parent[PATH_MAX], real_dst[PATH_MAX * 2];
	struct stat st;
	json_t *ov = json_object_get(launch, "overlays");
	size_t i;
	json_t *o;

	if (!stat(dst, &st))
		return 0;
	existing_parent(dst, parent, sizeof(parent));
	if (under(parent, "/run") || under(parent, LAB_DIR)) {
		const char *rest = dst;
		char orig[PATH_MAX];

		/* the same tail below the resolved parent (/var/run -> /run) */
		snprintf(orig, sizeof(orig), "%s", dst);
		while (stat(orig, &st)) {
			char *slash = strrchr(orig, '/');

			if (!slash)
				break;
			*slash = 0;
		}
		rest = dst + strlen(orig);
		snprintf(real_dst, sizeof(real_dst), "%s%s", parent, rest);
		if (mkdir_p(real_dst, 0755)) {
			snprintf(err, len, "make the mount point %s: %s", real_dst, strerror(errno));
			return -errno;
		}
		json_array_append_new(json_object_get(launch, "hostDirs"), json_string(real_dst));
		return 0;
	}
	json_array_foreach(ov, i, o)
		if (!strcmp(jstr(o, "dir"), parent))
			goto mkdirs;
	{
		char upper[PATH_MAX], work[PATH_MAX];

		snprintf(upper, sizeof(upper), "%s/overlay%zu/upper", p->pod_dir, json_array_size(ov));
		snprintf(work, sizeof(work), "%s/overlay%zu/work", p->pod_dir, json_array_size(ov));
		if (mkdir_p(upper, 0755) || mkdir_p(work, 0755)) {
			snprintf(err, len, "make %s: %s", upper, strerror(errno));
			return -errno;
		}
		json_array_append_new(ov, json_pack("{s:s, s:O}", "dir", parent, "options",
						    json_sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
								 parent, upper, work)));
	}
mkdirs:
	json_array_append_new(json_object_get(launch, "mkdirs"), json_string(dst));
	return 0;
}

static int add_env(json_t *env, json_t *order, const char *name, json_t *val)
{
	if (!val)
		return -ENOMEM;
	if (!json_object_get(env, name))
		json_array_append_new(order, json_string(name));
	json_object_set_new(env, name, val);
	return 0;
}

json_t *kubelet_launch(struct store *st, const struct kubelet_pod *p, json_t *spec, char *err,
		       size_t len)
{
	json_t *ct = NULL, *launch, *env = json_object(), *order = json_array(), *argv, *vols, *x;
	char sa[PATH_MAX], path[PATH_MAX * 2];
	size_t i;

	json_array_foreach(json_object_get(spec, "containers"), i, x)
		if (!strcmp(json_string_value(json_array_get(json_object_get(x, "command"), 0)) ?: "",
			    "ksteer"))
			ct = x;
	launch = json_pack("{s:s, s:[], s:[], s:s, s:s, s:[], s:[], s:[], s:[]}", "exe", p->exe,
			   "argv", "env", "cgroup", p->cgroup, "log", p->log, "overlays", "mkdirs",
			   "binds", "hostDirs");
	mkdir_p(p->pod_dir, 0700);
	/* what every container gets: the API's Service and a PATH */
	add_env(env, order, "PATH", json_string("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	add_env(env, order, "HOSTNAME", json_string(p->name));
	add_env(env, order, "KUBERNETES_SERVICE_HOST", json_string("127.0.0.1"));
	add_env(env, order, "KUBERNETES_SERVICE_PORT", json_sprintf("%d", p->api_port));
	json_array_foreach(json_object_get(ct, "env"), i, x)
	{
		json_t *vf = json_object_get(x, "valueFrom"), *ref, *o;
		const char *name = jstr(x, "name");
		char v[1024];

		if (!vf) {
			add_env(env, order, name, expand(jstr(x, "value"), env));
		} else if ((ref = json_object_get(vf, "fieldRef"))) {
			if (field_ref(p, jstr(ref, "fieldPath"), v, sizeof(v))) {
				snprintf(err, len, "env %s: fieldRef %s: not one the lab knows", name,
					 jstr(ref, "fieldPath"));
				goto bad;
			}
			add_env(env, order, name, json_string(v));
		} else if ((ref = json_object_get(vf, "configMapKeyRef")) ||
			   (ref = json_object_get(vf, "secretKeyRef"))) {
			bool secret = json_object_get(vf, "secretKeyRef") != NULL;
			json_t *val;

			o = store_get(st, secret ? "/secrets" : "/configmaps", p->ns, jstr(ref, "name"));
			val = json_object_get(json_object_get(o, "data"), jstr(ref, "key"));
			if (!json_is_string(val)) {
				if (json_is_true(json_object_get(ref, "optional")))
					continue;
				snprintf(err, len, "env %s: %s %s/%s has no key %s", name,
					 secret ? "Secret" : "ConfigMap", p->ns, jstr(ref, "name"),
					 jstr(ref, "key"));
				goto bad;
			}
			if (secret) {
				size_t n;
				unsigned char *raw = b64_decode(json_string_value(val), &n);

				if (!raw) {
					snprintf(err, len, "env %s: not base64", name);
					goto bad;
				}
				add_env(env, order, name, json_stringn((char *)raw, n));
				free(raw);
			} else {
				add_env(env, order, name, json_incref(val));
			}
		} else {
			snprintf(err, len, "env %s: a valueFrom the lab does not know", name);
			goto bad;
		}
	}
	json_array_foreach(order, i, x)
		json_array_append_new(json_object_get(launch, "env"),
				      json_sprintf("%s=%s", json_string_value(x),
						   jstr(env, json_string_value(x))));
	json_array_foreach(p->extra_env, i, x)
		json_array_append(json_object_get(launch, "env"), x);
	/* command and args, $(VAR) from the env; then the lab's own */
	argv = json_object_get(launch, "argv");
	json_array_foreach(json_object_get(ct, "command"), i, x)
		json_array_append_new(argv, expand(json_string_value(x) ?: "", env));
	json_array_foreach(json_object_get(ct, "args"), i, x)
		json_array_append_new(argv, expand(json_string_value(x) ?: "", env));
	json_array_extend(argv, p->extra_args);
	/* the service account, as kubelet's projected token volume */
	snprintf(sa, sizeof(sa), "%s/serviceaccount", p->pod_dir);
	{
		char *tok = NULL, *ca = NULL;
		size_t tl, cl;
		char tp[PATH_MAX], cp[PATH_MAX];

		snprintf(tp, sizeof(tp), LAB_DIR "/%s/api/token", p->cluster);
		snprintf(cp, sizeof(cp), LAB_DIR "/%s/api/ca.pem", p->cluster);
		if (read_input(tp, &tok, &tl) || read_input(cp, &ca, &cl)) {
			free(tok);
			snprintf(err, len, "read the API's token and CA in " LAB_DIR "/%s/api",
				 p->cluster);
			goto bad;
		}
		snprintf(path, sizeof(path), "%s/token", sa);
		write_bytes(path, tok, strcspn(tok, "\r\n"), 0600);
		snprintf(path, sizeof(path), "%s/ca.crt", sa);
		write_bytes(path, ca, cl, 0644);
		snprintf(path, sizeof(path), "%s/namespace", sa);
		write_bytes(path, p->ns, strlen(p->ns), 0644);
		free(tok);
		free(ca);
	}
	/* volumes: each mount's source on the host */
	vols = json_object();
	json_array_foreach(json_object_get(spec, "volumes"), i, x)
	{
		const char *vn = jstr(x, "name");
		json_t *cm = json_object_get(x, "configMap"), *sec = json_object_get(x, "secret"),
		       *hp = json_object_get(x, "hostPath");
		char dir[PATH_MAX];

		snprintf(dir, sizeof(dir), "%s/volumes/%s", p->pod_dir, vn);
		if (cm || sec) {
			json_t *o = store_get(st, cm ? "/configmaps" : "/secrets", p->ns,
					      jstr(cm ?: sec, cm ? "name" : "secretName"));
			json_t *mode = json_object_get(cm ?: sec, "defaultMode");

			if (!o) {
				snprintf(err, len, "volume %s: %s %s/%s not found (the pod waits in ContainerCreating)",
					 vn, cm ? "ConfigMap" : "Secret", p->ns,
					 jstr(cm ?: sec, cm ? "name" : "secretName"));
				json_decref(vols);
				goto bad;
			}
			if (write_volume(json_object_get(o, "data"), !cm,
					 json_object_get(cm ?: sec, "items"),
					 json_is_integer(mode) ? (mode_t)json_integer_value(mode) : 0644,
					 dir, err, len)) {
				json_decref(vols);
				goto bad;
			}
			json_object_set_new(vols, vn, json_string(dir));
		} else if (hp) {
			if (!strcmp(jstr(hp, "type"), "DirectoryOrCreate"))
				mkdir_p(jstr(hp, "path"), 0755);
			json_object_set_new(vols, vn, json_string(jstr(hp, "path")));
		} else {
			snprintf(err, len, "volume %s: a kind the lab does not mount", vn);
			json_decref(vols);
			goto bad;
		}
	}
	/* mounts: the service account's first, as kubelet adds it */
	{
		json_t *mounts = json_deep_copy(json_object_get(ct, "volumeMounts")) ?: json_array();

		json_object_set_new(vols, " sa", json_string(sa));
		json_array_append_new(mounts, json_pack("{s:s, s:s, s:b}", "name", " sa", "mountPath",
							"/var/run/secrets/kubernetes.io/serviceaccount",
							"readOnly", 1));
		json_array_foreach(mounts, i, x)
		{
			const char *src = jstr(vols, jstr(x, "name")), *dst = jstr(x, "mountPath");
			char rs[PATH_MAX], rd[PATH_MAX];

			if (!*src || !*dst || dst[0] != '/' || json_object_get(x, "subPath")) {
				snprintf(err, len, "volumeMount %s at %s: no such volume, or a subPath",
					 jstr(x, "name"), dst);
				json_decref(mounts);
				json_decref(vols);
				goto bad;
			}
			/* a hostPath at its own path is there already */
			if (realpath(src, rs) && realpath(dst, rd) && !strcmp(rs, rd))
				continue;
			if (mount_point(dst, p, launch, err, len)) {
				json_decref(mounts);
				json_decref(vols);
				goto bad;
			}
			json_array_append_new(json_object_get(launch, "binds"),
					      json_pack("{s:s, s:s, s:b}", "src", src, "dst", dst, "ro",
							json_is_true(json_object_get(x, "readOnly"))));
		}
		json_decref(mounts);
	}
	json_decref(vols);
	json_decref(env);
	json_decref(order);
	return launch;
bad:
	json_decref(launch);
	json_decref(env);
	json_decref(order);
	return NULL;
}

static char **strv(json_t *a)
{
	size_t n = json_array_size(a), i;
	char **v = calloc(n + 1, sizeof(*v));
	json_t *x;

	if (!v)
		return NULL;
	json_array_foreach(a, i, x)
		v[i] = (char *)json_string_value(x);
	return v;
}

/* In the child: its message to its log, then out (async-signal-safe only from here). */
static void __attribute__((noreturn)) die(const char *what, const char *path)
{
	const char *e = strerror(errno);

	(void)!write(2, "Error: kubelet: ", 16);
	(void)!write(2, what, strlen(what));
	(void)!write(2, " ", 1);
	(void)!write(2, path, strlen(path));
	(void)!write(2, ": ", 2);
	(void)!write(2, e, strlen(e));
	(void)!write(2, "\n", 1);
	_exit(126);
}

pid_t kubelet_spawn(json_t *launch)
{
	json_t *ov = json_object_get(launch, "overlays"), *mk = json_object_get(launch, "mkdirs"),
	       *bd = json_object_get(launch, "binds");
	char **argv = strv(json_object_get(launch, "argv")), **envp = strv(json_object_get(launch, "env"));
	char procs[PATH_MAX + 16];
	const char *exe = jstr(launch, "exe"), *log = jstr(launch, "log");
	size_t nov = json_array_size(ov), nmk = json_array_size(mk), nbd = json_array_size(bd);
	const char *ovd[KUBELET_MAX_MOUNTS], *ovo[KUBELET_MAX_MOUNTS], *mkd[KUBELET_MAX_MOUNTS],
		*bs[KUBELET_MAX_MOUNTS], *bdst[KUBELET_MAX_MOUNTS];
	bool bro[KUBELET_MAX_MOUNTS];
	pid_t pid;

	if (!argv || !envp || nov > KUBELET_MAX_MOUNTS || nmk > KUBELET_MAX_MOUNTS ||
	    nbd > KUBELET_MAX_MOUNTS || json_array_size(json_object_get(launch, "argv")) > KUBELET_MAX_ARGS ||
	    json_array_size(json_object_get(launch, "env")) > KUBELET_MAX_ENV) {
		free(argv);
		free(envp);
		return -E2BIG;
	}
	/* everything the child needs, ready before the fork: it only makes system calls */
	for (size_t i = 0; i < nov; i++) {
		ovd[i] = jstr(json_array_get(ov, i), "dir");
		ovo[i] = jstr(json_array_get(ov, i), "options");
	}
	for (size_t i = 0; i < nmk; i++)
		mkd[i] = json_string_value(json_array_get(mk, i));
	for (size_t i = 0; i < nbd; i++) {
		bs[i] = jstr(json_array_get(bd, i), "src");
		bdst[i] = jstr(json_array_get(bd, i), "dst");
		bro[i] = json_is_true(json_object_get(json_array_get(bd, i), "ro"));
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", jstr(launch, "cgroup"));
	pid = fork();
	if (pid) {
		free(argv);
		free(envp);
		return pid < 0 ? -errno : pid;
	}
	setsid();
	{
		/* the API server's threads block SIGTERM and ignore SIGPIPE: not the container */
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
	}
	{
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (null >= 0)
			dup2(null, 0);
	}
	{
		int fd = open(procs, O_WRONLY | O_CLOEXEC);

		if (fd < 0 || write(fd, "0", 1) != 1)
			die("join the cgroup", procs);
		close(fd);
	}
	if (unshare(CLONE_NEWNS))
		die("unshare", "CLONE_NEWNS");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die("make private", "/");
	for (size_t i = 0; i < nov; i++)
		if (mount("overlay", ovd[i], "overlay", 0, ovo[i]))
			die("mount an overlay on", ovd[i]);
	for (size_t i = 0; i < nmk; i++) {
		char buf[PATH_MAX];
		size_t n = strlen(mkd[i]);

		if (n >= sizeof(buf))
			die("mount point too long", mkd[i]);
		memcpy(buf, mkd[i], n + 1);
		for (char *q = buf + 1; *q; q++)
			if (*q == '/') {
				*q = 0;
				mkdir(buf, 0755);
				*q = '/';
			}
		if (mkdir(buf, 0755) && errno != EEXIST)
			die("make the mount point", buf);
	}
	for (size_t i = 0; i < nbd; i++) {
		if (mount(bs[i], bdst[i], NULL, MS_BIND | MS_REC, NULL))
			die("bind-mount on", bdst[i]);
		if (bro[i] && mount(NULL, bdst[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL))
			die("make read-only", bdst[i]);
	}
	execve(exe, argv, envp);
	die("exec", exe);
}
