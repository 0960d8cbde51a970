// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "policy.h"

#include <ctype.h>
#include <stdbool.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "decode.h"

static const struct {
	enum kind kind;
	const char *name, *group; /* group of apiVersion, "" for core */
} kinds[] = {
	{ K_SERVICE_ENTRY, "ServiceEntry", "networking.istio.io" },
	{ K_DESTINATION_RULE, "DestinationRule", "networking.istio.io" },
	{ K_VIRTUAL_SERVICE, "VirtualService", "networking.istio.io" },
	{ K_GATEWAY, "Gateway", "networking.istio.io" },
	{ K_WORKLOAD_ENTRY, "WorkloadEntry", "networking.istio.io" },
	{ K_NAMESPACE, "Namespace", "" },
	{ K_SERVICE_ACCOUNT, "ServiceAccount", "" },
	{ K_SERVICE, "Service", "" },
	{ K_POD, "Pod", "" },
	{ K_ENDPOINT_SLICE, "EndpointSlice", "discovery.k8s.io" },
	{ K_DEPLOYMENT, "Deployment", "apps" },
	{ K_MESH_NETWORKS, "meshNetworks", "(no apiVersion)" },
};

static const char *istio_versions[] = { "v1alpha3", "v1beta1", "v1" };

const char *kind_name(enum kind k)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == k)
			return kinds[i].name;
	return "Unknown";
}

static enum kind kind_lookup(const char *kind, const char *api)
{
	const char *slash = strchr(api, '/');
	size_t glen = slash ? (size_t)(slash - api) : 0;
	const char *version = slash ? slash + 1 : api;

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(kinds[i].name, kind) || strlen(kinds[i].group) != glen ||
		    strncmp(kinds[i].group, api, glen))
			continue;
		if (!strcmp(kinds[i].group, "networking.istio.io")) {
			for (size_t j = 0; j < 3; j++)
				if (!strcmp(version, istio_versions[j]))
					return kinds[i].kind;
			return K_UNKNOWN;
		}
		return !strcmp(version, "v1") ? kinds[i].kind : K_UNKNOWN;
	}
	return K_UNKNOWN;
}

void policy_init(struct policy *p, struct diag *diag, const char *default_ns)
{
	memset(p, 0, sizeof(*p));
	p->diag = diag;
	p->default_ns = default_ns && *default_ns ? default_ns : "default";
}

void policy_free(struct policy *p)
{
	free(p->res);
	arena_free(&p->a);
	memset(p, 0, sizeof(*p));
}

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *m, const char *key)
{
	yaml_node_pair_t *pr;

	if (!m || m->type != YAML_MAPPING_NODE)
		return NULL;
	for (pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(doc, pr->key);

		if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
			return yaml_document_get_node(doc, pr->value);
	}
	return NULL;
}

static const char *map_scalar(yaml_document_t *doc, yaml_node_t *m, const char *key)
{
	yaml_node_t *v = map_get(doc, m, key);

	return v && v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : NULL;
}

static void add_resource(struct policy *p, struct resource *r)
{
	if (p->n == p->cap) {
		unsigned cap = p->cap ? p->cap * 2 : 64;
		void *v = realloc(p->res, cap * sizeof(*p->res));

		if (!v)
			abort();
		p->res = v;
		p->cap = cap;
	}
	p->res[p->n++] = r;
}

static int load_document(struct policy *p, const char *name, yaml_document_t *doc)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);
	const char *kind, *api, *mname, *mns;
	struct dec d = { .a = &p->a, .diag = p->diag, .file = name, .doc = doc,
			 .budget = POLICY_MAX_NODE_VISITS };
	struct resource *r;
	enum kind k;

	if (!root || (root->type == YAML_SCALAR_NODE && !root->data.scalar.length))
		return 0; /* an empty document, e.g. after a trailing --- */
	if (root->type != YAML_MAPPING_NODE) {
		diag_add(p->diag, DIAG_ERROR, name, (unsigned)root->start_mark.line + 1,
			 (unsigned)root->start_mark.column + 1,
			 "a document must be an object with apiVersion and kind");
		return -EINVAL;
	}
	kind = map_scalar(doc, root, "kind");
	api = map_scalar(doc, root, "apiVersion");
	if (!kind && !api && map_get(doc, root, "networks")) {
		/* Istio's meshNetworks (MeshConfig), as its values and ConfigMap write it */
		r = arena_alloc(&p->a, sizeof(*r));
		r->kind = K_MESH_NETWORKS;
		r->file = arena_strdup(&p->a, name);
		r->seq = p->seq++;
		r->ns = "";
		r->name = "meshNetworks";
		d.who = "meshNetworks";
		dec_struct(&d, root, "", kind_spec_schema[K_MESH_NETWORKS], r);
		r->o.path = "";
		add_resource(p, r);
		return d.failed ? -EINVAL : 0;
	}
	if (!kind || !api) {
		diag_add(p->diag, DIAG_ERROR, name, (unsigned)root->start_mark.line + 1,
			 (unsigned)root->start_mark.column + 1, "%s: Required value",
			 !kind ? "kind" : "apiVersion");
		return -EINVAL;
	}
	k = kind_lookup(kind, api);
	mname = map_scalar(doc, map_get(doc, root, "metadata"), "name");
	mns = map_scalar(doc, map_get(doc, root, "metadata"), "namespace");
	if (k == K_UNKNOWN) {
		diag_add(p->diag, DIAG_WARN, name, (unsigned)root->start_mark.line + 1,
			 (unsigned)root->start_mark.column + 1,
			 "%s %s (apiVersion %s): kind not handled by ksteer, ignored", kind,
			 mname ? mname : "(unnamed)", api);
		return 0;
	}
	r = arena_alloc(&p->a, sizeof(*r));
	r->kind = k;
	r->file = arena_strdup(&p->a, name);
	r->seq = p->seq++;
	if (k == K_NAMESPACE)
		r->ns = "";
	else
		r->ns = arena_strdup(&p->a, mns && *mns ? mns : p->default_ns);
	r->name = arena_strdup(&p->a, mname ? mname : "");
	d.who = *r->ns ? arena_printf(&p->a, "%s %s/%s", kind, r->ns, r->name)
		       : arena_printf(&p->a, "%s %s", kind, r->name);
	dec_struct(&d, root, "", kind_spec_schema[k], r);
	r->o.path = "";
	if (!r->metadata || !mname || !*mname) {
		diag_add(p->diag, DIAG_ERROR, name, (unsigned)root->start_mark.line + 1,
			 (unsigned)root->start_mark.column + 1, "%s: metadata.name: Required value",
			 d.who);
		return -EINVAL;
	}
	/*
	 * Kept even when some fields failed to decode: validation then reports the
	 * rest of its errors too. The batch has errors, so it is never applied.
	 */
	if (d.budget >= 0)
		add_resource(p, r);
	return d.failed ? -EINVAL : 0;
}

/*
 * Kubernetes reads YAML with go-yaml, which takes ':' inside a plain scalar in a
 * flow collection (`addresses: [2001:db8::]`); libyaml 0.2.5 refuses it. Find each
 * such scalar with the scanner and single-quote it, so both read the same value.
 * Returns a new buffer (caller frees) or NULL when nothing needed quoting.
 */
static char *quote_flow_colons(const char *buf, size_t *len)
{
	char *cur = NULL;
	size_t n = *len;

	for (int round = 0; round < 1000; round++) {
		const char *b = cur ? cur : buf;
		yaml_parser_t ps;
		yaml_token_t tok;
		size_t start = 0, end;
		int found = 0;
		char *next;

		if (!yaml_parser_initialize(&ps))
			abort();
		yaml_parser_set_input_string(&ps, (const unsigned char *)b, n);
		for (;;) {
			if (!yaml_parser_scan(&ps, &tok)) {
				found = ps.problem && !strcmp(ps.problem, "found unexpected ':'") &&
					ps.context &&
					!strcmp(ps.context, "while scanning a plain scalar") &&
					ps.flow_level > 0;
				start = ps.context_mark.index;
				break;
			}
			if (tok.type == YAML_STREAM_END_TOKEN) {
				yaml_token_delete(&tok);
				break;
			}
			yaml_token_delete(&tok);
		}
		yaml_parser_delete(&ps);
		if (!found || start >= n)
			break;
		for (end = start; end < n && !strchr(",]}\n'\"#", b[end]); end++)
			;
		while (end > start && (b[end - 1] == ' ' || b[end - 1] == '\t'))
			end--;
		if (end < n && (b[end] == '\'' || b[end] == '"'))
			break; /* not a shape we can quote safely: let the parser report it */
		next = malloc(n + 3);
		if (!next)
			abort();
		memcpy(next, b, start);
		next[start] = '\'';
		memcpy(next + start + 1, b + start, end - start);
		next[end + 1] = '\'';
		memcpy(next + end + 2, b + end, n - end);
		n += 2;
		free(cur);
		cur = next;
	}
	*len = n;
	return cur;
}

static bool is_flow_colon_error(const yaml_parser_t *ps)
{
	return ps->problem && !strcmp(ps->problem, "found unexpected ':'") && ps->context &&
	       !strcmp(ps->context, "while scanning a plain scalar") && ps->flow_level > 0;
}

static int load_documents(struct policy *p, const char *name, const char *buf, size_t len,
			  bool retry_ok)
{
	yaml_parser_t parser;
	int err = 0;

	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (;;) {
		yaml_document_t doc;

		if (!yaml_parser_load(&parser, &doc)) {
			const yaml_mark_t *m = parser.problem_mark.line || parser.problem_mark.column
						       ? &parser.problem_mark
						       : &parser.context_mark;

			if (retry_ok && is_flow_colon_error(&parser)) {
				err = -EAGAIN;
				break;
			}
			diag_add(p->diag, DIAG_ERROR, name, (unsigned)m->line + 1,
				 (unsigned)m->column + 1, "invalid YAML: %s%s%s",
				 parser.problem ? parser.problem : "parse error",
				 parser.context ? " " : "", parser.context ? parser.context : "");
			err = -EINVAL;
			break;
		}
		if (!yaml_document_get_root_node(&doc)) {
			yaml_document_delete(&doc);
			break;
		}
		if (load_document(p, name, &doc))
			err = -EINVAL;
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	return err;
}

int policy_load_buffer(struct policy *p, const char *name, const char *buf, size_t len)
{
	unsigned n_res = p->n, n_diag = p->diag->n;
	char *fixed;
	int err;

	if (len > POLICY_MAX_FILE_BYTES) {
		diag_add(p->diag, DIAG_ERROR, name, 0, 0,
			 "file is %zu bytes, over the %u byte limit: refused", len,
			 POLICY_MAX_FILE_BYTES);
		return -EFBIG;
	}
	err = load_documents(p, name, buf, len, true);
	if (err != -EAGAIN)
		return err;
	/* rare: undo this file's documents, quote the scalars go-yaml accepts, read again */
	p->n = n_res;
	diag_truncate(p->diag, n_diag);
	fixed = quote_flow_colons(buf, &len);
	err = load_documents(p, name, fixed ? fixed : buf, len, false);
	free(fixed);
	return err;
}

static int read_all(int fd, char **buf, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *b = malloc(cap);

	if (!b)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			if (cap > POLICY_MAX_FILE_BYTES) /* enough to know it is too big */
				break;
			cap *= 2;
			char *nb = realloc(b, cap);

			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
		}
		r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;

			free(b);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*buf = b;
	*len = n;
	return 0;
}

static int load_fd(struct policy *p, const char *name, int fd)
{
	char *buf = NULL;
	size_t len = 0;
	int err = read_all(fd, &buf, &len);

	if (err) {
		diag_add(p->diag, DIAG_ERROR, name, 0, 0, "read: %s", strerror(-err));
		return err;
	}
	err = policy_load_buffer(p, name, buf, len);
	free(buf);
	return err;
}

static int has_policy_ext(const char *n)
{
	size_t l = strlen(n);

	return (l > 5 && !strcmp(n + l - 5, ".yaml")) || (l > 4 && !strcmp(n + l - 4, ".yml")) ||
	       (l > 5 && !strcmp(n + l - 5, ".json"));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int policy_load_path(struct policy *p, const char *path)
{
	struct stat st;
	int fd, err = 0;

	if (!strcmp(path, "-"))
		return load_fd(p, "<stdin>", 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		diag_add(p->diag, DIAG_ERROR, path, 0, 0, "open: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -ENOENT;
	}
	if (S_ISDIR(st.st_mode)) {
		DIR *dir = fdopendir(fd);
		struct dirent *de;
		char **names = NULL;
		size_t n = 0;

		if (!dir) {
			close(fd);
			return -errno;
		}
		while ((de = readdir(dir))) {
			if (de->d_name[0] == '.' || !has_policy_ext(de->d_name))
				continue; /* also skips ConfigMap volumes' ..data internals */
			names = realloc(names, (n + 1) * sizeof(*names));
			if (!names)
				abort();
			names[n++] = strdup(de->d_name);
		}
		closedir(dir);
		if (n)
			qsort(names, n, sizeof(*names), cmp_str);
		for (size_t i = 0; i < n; i++) {
			size_t l = strlen(path);
			char *full = malloc(l + strlen(names[i]) + 2);

			if (!full)
				abort();
			sprintf(full, "%s%s%s", path, l && path[l - 1] == '/' ? "" : "/", names[i]);
			if (policy_load_path(p, full))
				err = -EINVAL;
			free(full);
			free(names[i]);
		}
		free(names);
		return err;
	}
	if (st.st_size > (off_t)POLICY_MAX_FILE_BYTES) {
		diag_add(p->diag, DIAG_ERROR, path, 0, 0,
			 "file is %lld bytes, over the %u byte limit: refused",
			 (long long)st.st_size, POLICY_MAX_FILE_BYTES);
		close(fd);
		return -EFBIG;
	}
	err = load_fd(p, path, fd);
	close(fd);
	return err;
}
