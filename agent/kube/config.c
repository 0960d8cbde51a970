// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Where the Kubernetes API is and how to authenticate to it: a kubeconfig
 * (clusters, users, contexts; files or inline -data) or the pod's own
 * service account. Exec and auth-provider plugins are not run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <yaml.h>

#include "kube.h"

static int cfg_err(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cfg_err(const char *file, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "Error: kubeconfig %s: ", file);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -EINVAL;
}

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *m, const char *key)
{
	yaml_node_pair_t *p;

	if (!m || m->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);

		if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

/* A non-empty scalar, or NULL. */
static const char *map_str(yaml_document_t *doc, yaml_node_t *m, const char *key)
{
	yaml_node_t *v = map_get(doc, m, key);

	return v && v->type == YAML_SCALAR_NODE && v->data.scalar.length
		       ? (const char *)v->data.scalar.value
		       : NULL;
}

/* The entry of a named list (clusters, users, contexts) called name: its inner map. */
static yaml_node_t *named_get(yaml_document_t *doc, yaml_node_t *root, const char *list,
			      const char *inner, const char *name)
{
	yaml_node_t *l = map_get(doc, root, list);
	yaml_node_item_t *it;

	if (!l || l->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (it = l->data.sequence.items.start; it < l->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(doc, *it);
		const char *n = map_str(doc, e, "name");

		if (n && !strcmp(n, name)) {
			yaml_node_t *in = map_get(doc, e, inner);

			/* `user: {}` and `user:` both mean an entry with nothing set */
			return in ? in : e;
		}
	}
	return NULL;
}

static char *xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		abort();
	return d;
}

/* Relative paths in a kubeconfig are relative to its own directory, as kubectl reads them. */
static char *rel_path(const char *file, const char *p)
{
	const char *slash = strrchr(file, '/');
	char *out;

	if (!p)
		return NULL;
	if (p[0] == '/' || !slash)
		return xstrdup(p);
	if (asprintf(&out, "%.*s/%s", (int)(slash - file), file, p) < 0)
		abort();
	return out;
}

/* base64 -data fields, as PEM text. */
static int b64_decode(const char *in, char **out, size_t *len)
{
	size_t n = strlen(in), pad = 0;
	unsigned char *buf;
	int r;

	if (n % 4 || n > 4 * (size_t)KUBE_MAX_CONFIG_BYTES)
		return -EINVAL;
	buf = malloc(n / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	r = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)n);
	if (r < 0) {
		free(buf);
		return -EINVAL;
	}
	while (pad < 2 && n > pad && in[n - 1 - pad] == '=')
		pad++;
	buf[r - pad] = 0;
	*out = (char *)buf;
	*len = (size_t)r - pad;
	return 0;
}

static int read_doc(const char *file, yaml_document_t *doc)
{
	yaml_parser_t ps;
	struct stat st;
	FILE *f = fopen(file, "re");
	int err = 0;

	if (!f) {
		fprintf(stderr, "Error: open kubeconfig %s: %s\n", file, strerror(errno));
		return -errno;
	}
	if (fstat(fileno(f), &st) || st.st_size > (off_t)KUBE_MAX_CONFIG_BYTES) {
		fclose(f);
		return cfg_err(file, "over %u bytes", KUBE_MAX_CONFIG_BYTES);
	}
	if (!yaml_parser_initialize(&ps))
		abort();
	yaml_parser_set_input_file(&ps, f);
	if (!yaml_parser_load(&ps, doc))
		err = cfg_err(file, "line %zu: invalid YAML: %s", ps.problem_mark.line + 1,
			      ps.problem ? ps.problem : "parse error");
	else if (!yaml_document_get_root_node(doc)) {
		yaml_document_delete(doc);
		err = cfg_err(file, "empty");
	}
	yaml_parser_delete(&ps);
	fclose(f);
	return err;
}

/* A file field and its -data twin: one of the two, or neither. */
static int file_or_data(const char *file, yaml_document_t *doc, yaml_node_t *m, const char *what,
			const char *key, char **path, char **pem, size_t *len)
{
	char dkey[64];
	const char *p = map_str(doc, m, key), *d;

	snprintf(dkey, sizeof(dkey), "%s-data", key);
	d = map_str(doc, m, dkey);
	if (d) {
		if (b64_decode(d, pem, len))
			return cfg_err(file, "%s.%s: not base64", what, dkey);
		return 0;
	}
	*path = rel_path(file, p);
	return 0;
}

int kube_config_load(struct kube_config *c, const char *file, const char *context)
{
	yaml_document_t doc;
	yaml_node_t *root, *ctx, *cl, *us;
	const char *cname, *uname, *v;
	char what[300];
	int err;

	memset(c, 0, sizeof(*c));
	err = read_doc(file, &doc);
	if (err)
		return err;
	root = yaml_document_get_root_node(&doc);
	if (!context)
		context = map_str(&doc, root, "current-context");
	if (!context) {
		err = cfg_err(file, "current-context: Required value (or --context NAME)");
		goto out;
	}
	ctx = named_get(&doc, root, "contexts", "context", context);
	if (!ctx) {
		err = cfg_err(file, "contexts: no context named \"%s\"", context);
		goto out;
	}
	cname = map_str(&doc, ctx, "cluster");
	uname = map_str(&doc, ctx, "user");
	if (!cname) {
		err = cfg_err(file, "contexts[%s].context.cluster: Required value", context);
		goto out;
	}
	cl = named_get(&doc, root, "clusters", "cluster", cname);
	if (!cl) {
		err = cfg_err(file, "clusters: no cluster named \"%s\" (context %s)", cname, context);
		goto out;
	}
	snprintf(what, sizeof(what), "clusters[%s].cluster", cname);
	v = map_str(&doc, cl, "server");
	if (!v) {
		err = cfg_err(file, "%s.server: Required value", what);
		goto out;
	}
	if (strncmp(v, "https://", 8) && strncmp(v, "http://", 7)) {
		err = cfg_err(file, "%s.server: \"%s\" is not an http(s) URL", what, v);
		goto out;
	}
	c->server = xstrdup(v);
	while (strlen(c->server) > 8 && c->server[strlen(c->server) - 1] == '/')
		c->server[strlen(c->server) - 1] = 0;
	v = map_str(&doc, cl, "insecure-skip-tls-verify");
	c->insecure = v && !strcmp(v, "true");
	if (map_str(&doc, cl, "proxy-url") || map_str(&doc, cl, "tls-server-name")) {
		err = cfg_err(file, "%s.%s: not supported", what,
			      map_str(&doc, cl, "proxy-url") ? "proxy-url" : "tls-server-name");
		goto out;
	}
	err = file_or_data(file, &doc, cl, what, "certificate-authority", &c->ca_file, &c->ca_pem,
			   &c->ca_pem_len);
	if (err)
		goto out;
	if (uname) {
		us = named_get(&doc, root, "users", "user", uname);
		snprintf(what, sizeof(what), "users[%s].user", uname);
		if (!us) {
			err = cfg_err(file, "users: no user named \"%s\" (context %s)", uname, context);
			goto out;
		}
		if (map_get(&doc, us, "exec") || map_get(&doc, us, "auth-provider")) {
			err = cfg_err(file, "%s.%s: credential plugins are not run; use a token, "
					    "tokenFile or client certificate",
				      what, map_get(&doc, us, "exec") ? "exec" : "auth-provider");
			goto out;
		}
		if (map_str(&doc, us, "username") || map_str(&doc, us, "password")) {
			err = cfg_err(file, "%s.username: basic auth is not supported", what);
			goto out;
		}
		c->token = xstrdup(map_str(&doc, us, "token"));
		if (!c->token)
			c->token_file = rel_path(file, map_str(&doc, us, "tokenFile"));
		err = file_or_data(file, &doc, us, what, "client-certificate", &c->cert_file,
				   &c->cert_pem, &c->cert_pem_len);
		if (!err)
			err = file_or_data(file, &doc, us, what, "client-key", &c->key_file,
					   &c->key_pem, &c->key_pem_len);
		if (err)
			goto out;
		if (!(c->cert_file || c->cert_pem) != !(c->key_file || c->key_pem)) {
			err = cfg_err(file, "%s.%s: Required value (with %s)", what,
				      c->cert_file || c->cert_pem ? "client-key" : "client-certificate",
				      c->cert_file || c->cert_pem ? "client-certificate"
								  : "client-key");
			goto out;
		}
	}
	if (asprintf(&c->source, "kubeconfig %s context %s", file, context) < 0)
		abort();
out:
	yaml_document_delete(&doc);
	if (err)
		kube_config_free(c);
	return err;
}

int kube_config_incluster(struct kube_config *c, const char *sa_dir)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");

	memset(c, 0, sizeof(*c));
	if (!host || !*host || !port || !*port) {
		fprintf(stderr, "Error: --kube: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
				"are not set (not in a pod? use --kubeconfig FILE)\n");
		return -ENOENT;
	}
	if (asprintf(&c->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		     port) < 0 ||
	    asprintf(&c->ca_file, "%s/ca.crt", sa_dir) < 0 ||
	    asprintf(&c->token_file, "%s/token", sa_dir) < 0 ||
	    asprintf(&c->source, "in-cluster %s", sa_dir) < 0)
		abort();
	if (access(c->token_file, R_OK) || access(c->ca_file, R_OK)) {
		fprintf(stderr, "Error: --kube: read %s: %s\n",
			access(c->token_file, R_OK) ? c->token_file : c->ca_file, strerror(errno));
		kube_config_free(c);
		return -ENOENT;
	}
	return 0;
}

void kube_config_free(struct kube_config *c)
{
	char *s[] = { c->source,   c->server,   c->ca_file, c->ca_pem, c->cert_file,
		      c->cert_pem, c->key_file, c->key_pem, c->token,  c->token_file };

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		free(s[i]);
	memset(c, 0, sizeof(*c));
}
