// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Istio's validation rules (pkg/config/validation), restated, and Kubernetes' basics. */
#include "policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decode.h"

struct vctx {
	struct policy *p;
	struct resource *r;
	const char *who;
};

static void vmsg(struct vctx *v, enum diag_sev sev, struct pos pos, const char *path,
		 const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	diag_add(v->p->diag, sev, v->r->file, pos.line, pos.col, "%s: %s%s%s", v->who,
		 path ? path : "", path && *path ? ": " : "", msg);
}

/* An error on field `field` of `o` (or on `o` itself when field is NULL). */
static void __attribute__((format(printf, 4, 5)))
verr(struct vctx *v, const struct obj *o, const char *field, const char *fmt, ...)
{
	char path[512];
	va_list ap;

	if (field)
		snprintf(path, sizeof(path), "%s%s%s", o->path, *o->path ? "." : "", field);
	else
		snprintf(path, sizeof(path), "%s", *o->path ? o->path : "spec");
	va_start(ap, fmt);
	vmsg(v, DIAG_ERROR, field ? obj_fpos(o, field) : o->pos, path, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 4, 5)))
verr_at(struct vctx *v, struct pos pos, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(v, DIAG_ERROR, pos, path, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 4, 5)))
vwarn_at(struct vctx *v, struct pos pos, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(v, DIAG_WARN, pos, path, fmt, ap);
	va_end(ap);
}

static const char *sub_path(struct vctx *v, const struct obj *o, const char *field)
{
	return arena_printf(&v->p->a, "%s%s%s", o->path, *o->path ? "." : "", field);
}

/* ---- lexical rules ---- */

static bool is_dns1123_label(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

/* Kubernetes object names: DNS-1123 subdomain. */
static bool is_dns1123_subdomain(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-' ||
		      s[i] == '.'))
			return false;
	return isalnum((unsigned char)s[0]) && isalnum((unsigned char)s[n - 1]);
}

/* RFC 9110 tchar: what a header name or a method is made of. */
static bool is_http_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
			return false;
	return true;
}

/* A control character other than HTAB, DEL included: a CR or LF would end a header line. */
static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return true;
	return false;
}

/* A user's value in a message, control characters escaped: one error stays one line. */
static const char *shown(struct vctx *v, const char *s)
{
	char *out = arena_alloc(&v->p->a, strlen(s) * 4 + 1), *o = out;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\r' || c == '\n' || c == '\t')
			o += sprintf(o, "\\%c", c == '\r' ? 'r' : c == '\n' ? 'n' : 't');
		else if (c < 0x20 || c == 0x7f)
			o += sprintf(o, "\\x%02x", c);
		else
			*o++ = (char)c;
	}
	*o = 0;
	return out;
}

static bool is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static bool is_cidr(const char *s, bool *full)
{
	const char *slash = strchr(s, '/');
	char ip[64];
	char *end;
	long bits;
	bool v6;

	if (!slash || (size_t)(slash - s) >= sizeof(ip))
		return false;
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = 0;
	if (!is_ip(ip))
		return false;
	v6 = strchr(ip, ':') != NULL;
	bits = strtol(slash + 1, &end, 10);
	if (end == slash + 1 || *end || bits < 0 || bits > (v6 ? 128 : 32))
		return false;
	if (full)
		*full = bits == (v6 ? 128 : 32);
	return true;
}

/* A DNS label as Istio accepts it in host names: letters, digits, '-'. */
static bool is_host_label(const char *s, size_t n)
{
	if (!n || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

static bool is_fqdn(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 255)
		return false;
	if (s[n - 1] == '.')
		n--;
	while (n) {
		const char *dot = memchr(s, '.', n);
		size_t l = dot ? (size_t)(dot - s) : n;

		if (!is_host_label(s, l))
			return false;
		if (!dot)
			break;
		n -= l + 1;
		s = dot + 1;
		if (!n)
			return false;
	}
	return true;
}

/* Istio's ValidateWildcardDomain: "*", "*.x.y", "*x" (a partial wildcard), or a FQDN. */
static const char *wildcard_domain_error(const char *h)
{
	if (!*h)
		return "domain name cannot be empty";
	if (strlen(h) > 255)
		return "domain name too long (max 255)";
	if (!strcmp(h, "*"))
		return NULL;
	if (h[0] == '*')
		h += h[1] == '.' ? 2 : 1;
	if (strchr(h, '*'))
		return "a wildcard may only be the leftmost label";
	if (!is_fqdn(h))
		return "not a valid host name (letters, digits and '-' in dot-separated labels)";
	return NULL;
}

static bool valid_protocol(const char *p)
{
	static const char *const protos[] = {"HTTP",  "HTTPS",	"GRPC",	     "GRPC-WEB", "HTTP2",
					     "MONGO", "REDIS",	"MYSQL",     "TCP",	 "TLS",
					     "UDP",   "THRIFT", "HTTP_PROXY"};

	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (!strcasecmp(p, protos[i]))
			return true;
	return false;
}

static bool one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (!strcmp(s, *set))
			return true;
	return false;
}

static void check_port(struct vctx *v, const struct obj *o, const char *field, int64_t n)
{
	if (obj_has(o, field) && (n < 1 || n > 65535))
		verr(v, o, field, "port must be between 1-65535, got %lld", (long long)n);
}

static void check_labels(struct vctx *v, const struct kvs *l, const char *path, bool selector)
{
	for (uint32_t i = 0; i < l->n; i++) {
		const char *k = l->v[i].k, *slash = strrchr(k, '/');
		const char *name = slash ? slash + 1 : k;
		bool ok = *name && strlen(name) <= 63;

		for (const char *c = name; *c && ok; c++)
			ok = isalnum((unsigned char)*c) || *c == '-' || *c == '_' || *c == '.';
		if (!ok)
			verr_at(v, l->v[i].pos, arena_printf(&v->p->a, "%s.%s", path, k),
				"invalid label key");
		if (selector && l->v[i].v && strchr(l->v[i].v, '*'))
			verr_at(v, l->v[i].pos, arena_printf(&v->p->a, "%s.%s", path, k),
				"wildcard is not supported in selector");
	}
}

static void check_export_to(struct vctx *v, const struct obj *o, const struct strs *e)
{
	for (uint32_t i = 0; i < e->n; i++) {
		const char *s = e->v[i];
		const char *path = arena_printf(&v->p->a, "%s[%u]", sub_path(v, o, "exportTo"), i);

		if (strcmp(s, ".") && strcmp(s, "*") && strcmp(s, "~") && !is_dns1123_label(s))
			verr_at(v, e->pos[i], path, "invalid namespace \"%s\"", s);
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(e->v[j], s))
				verr_at(v, e->pos[i], path, "Duplicate value: \"%s\"", s);
		if (!strcmp(s, "*") && e->n > 1)
			verr_at(v, e->pos[i], path, "\"*\" must be the only value");
	}
}

/* ---- RE2 regexes, where POSIX ERE can express them ---- */

static const char *regex_error(const char *re, regex_t *out)
{
	static const char *const re2_only[] = {"(?",  "\\d", "\\D", "\\s", "\\S", "\\w", "\\W",
					       "\\b", "\\B", "\\A", "\\z", "\\p", "\\P", "\\Q",
					       "\\E", "*?",  "+?",  "??",  "}?",  NULL};
	char *anchored;
	regex_t rx;
	int rc;

	if (strlen(re) > POLICY_MAX_REGEX)
		return "regex longer than 1024 bytes";
	for (const char *const *t = re2_only; *t; t++)
		if (strstr(re, *t))
			return "uses RE2 syntax that ksteer cannot evaluate (\\d, \\w, \\s, "
			       "(?flags), "
			       "lazy quantifiers...): write it in POSIX ERE form, e.g. [0-9] for "
			       "\\d";
	/* RE2 in Istio matches the whole value */
	anchored = malloc(strlen(re) + 5);
	if (!anchored)
		abort();
	sprintf(anchored, "^(%s)$", re);
	rc = regcomp(&rx, anchored, REG_EXTENDED | REG_NOSUB);
	free(anchored);
	if (rc)
		return "invalid regex";
	if (out)
		*out = rx;
	else
		regfree(&rx);
	return NULL;
}

int policy_regex_compile(const char *re, regex_t *out)
{
	return regex_error(re, out) ? -EINVAL : 0;
}

static void check_string_match(struct vctx *v, const struct string_match *m, bool presence_ok)
{
	int n = !!m->exact + !!m->prefix + !!m->regex;
	const char *e;

	if (n > 1)
		verr(v, &m->o, NULL, "only one of exact, prefix or regex may be set");
	else if (!n && !presence_ok)
		verr(v, &m->o, NULL, "one of exact, prefix or regex is required");
	if (m->regex && (e = regex_error(m->regex, NULL)))
		verr(v, &m->o, "regex", "%s: \"%s\"", e, m->regex);
}

/* ---- values that reach the wire: header lines, URLs, certificate SANs ---- */

/* Why `s` is not an authority (RFC 3986 host[:port], no userinfo), or NULL when it is. */
static const char *authority_error(const char *s)
{
	const char *port;
	char *end;
	long n;

	if (!*s)
		return "empty";
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("-._~%!$&'()*+,;=:[]", *c))
			return "only host[:port]: no '/', '@', '?', '#', space or control "
			       "character";
	if (s[0] == '[') { /* an IPv6 literal */
		const char *close = strchr(s, ']');
		char ip[64];

		if (!close || (size_t)(close - s - 1) >= sizeof(ip))
			return "an IPv6 address in [] is not closed";
		memcpy(ip, s + 1, (size_t)(close - s - 1));
		ip[close - s - 1] = 0;
		if (inet_pton(AF_INET6, ip, &(struct in6_addr){0}) != 1)
			return "not an IPv6 address in []";
		port = close + 1;
	} else {
		port = s + strcspn(s, ":[]");
		if (port == s)
			return "the host is empty";
	}
	if (!*port)
		return NULL;
	if (*port != ':')
		return "'[', ']' only around an IPv6 address";
	n = strtol(port + 1, &end, 10);
	if (end == port + 1 || *end || !isdigit((unsigned char)port[1]) || n < 1 || n > 65535)
		return "the port is not 1-65535";
	return NULL;
}

/* A path for the request line or Location: absolute, nothing that would split the line. */
static void check_uri(struct vctx *v, const struct obj *o, const char *field, const char *uri)
{
	if (!uri || !*uri)
		return;
	if (uri[0] != '/')
		verr(v, o, field, "\"%s\" must start with '/'", shown(v, uri));
	else if (has_ctl(uri) || strpbrk(uri, " \t"))
		verr(v, o, field, "\"%s\" has a space or a control character", shown(v, uri));
}

static void check_authority(struct vctx *v, const struct obj *o, const char *field, const char *a)
{
	const char *e;

	if (a && *a && (e = authority_error(a)))
		verr(v, o, field, "invalid authority \"%s\": %s", shown(v, a), e);
}

/*
 * A header name in an operation. Host may be set on a request (it is the authority) but,
 * as in Istio, not removed nor set on an answer; pseudo-headers do not exist in HTTP/1.1.
 */
static void check_header_name(struct vctx *v, struct pos pos, const char *path, const char *name,
			      bool host_ok)
{
	if (!*name)
		verr_at(v, pos, path, "header name cannot be empty");
	else if (name[0] == ':')
		verr_at(v, pos, path,
			"\"%s\" is a pseudo-header, not an HTTP/1.1 header (rewrite.authority sets "
			"the authority)",
			shown(v, name));
	else if (!is_http_token(name))
		verr_at(v, pos, path,
			"header name \"%s\" is not an HTTP token (letters, digits and "
			"!#$%%&'*+-.^_`|~)",
			shown(v, name));
	else if (!host_ok && !strcasecmp(name, "host"))
		verr_at(v, pos, path, "invalid header \"%s\": Host can only be set on a request",
			name);
}

/* Headers.HeaderOperations: tokens for names; values without CR, LF, NUL or other controls. */
static void check_header_ops(struct vctx *v, const struct header_ops *ops, bool request)
{
	if (!ops)
		return;
	for (int k = 0; k < 2; k++) {
		const struct kvs *m = k ? &ops->add : &ops->set;
		const char *base = sub_path(v, &ops->o, k ? "add" : "set");

		for (uint32_t i = 0; i < m->n; i++) {
			const struct kv *h = &m->v[i];
			const char *path = arena_printf(&v->p->a, "%s.%s", base, shown(v, h->k));

			check_header_name(v, h->pos, path, h->k, request);
			if (h->v && has_ctl(h->v))
				verr_at(
				    v, h->pos, path,
				    "header value \"%s\" has a control character (CR, LF, NUL...)",
				    shown(v, h->v));
		}
	}
	for (uint32_t i = 0; i < ops->remove.n; i++)
		check_header_name(
		    v, ops->remove.pos[i],
		    arena_printf(&v->p->a, "%s[%u]", sub_path(v, &ops->o, "remove"), i),
		    ops->remove.v[i], false);
}

static void check_headers(struct vctx *v, const struct headers *h)
{
	if (!h)
		return;
	check_header_ops(v, h->request, true);
	check_header_ops(v, h->response, false);
}

/* CorsPolicy as Istio validates it; every value here is copied into an answer's headers. */
static void check_cors(struct vctx *v, const struct cors_policy *c)
{
	static const char *const methods[] = {"GET",   "HEAD",	 "POST",    "PUT",
					      "PATCH", "DELETE", "CONNECT", "OPTIONS",
					      "TRACE", "*",	 NULL};
	const struct strs *names[] = {&c->allowHeaders, &c->exposeHeaders};

	for (uint32_t i = 0; i < c->allowOrigins.n; i++) {
		const struct string_match *m = &c->allowOrigins.v[i];
		const char *val = m->exact ? m->exact : m->prefix ? m->prefix : m->regex;

		check_string_match(v, m, false);
		if (val && !*val)
			verr(v, &m->o, NULL,
			     "an empty origin is not a valid match for CORS allow "
			     "origins");
		else if (val && val != m->regex && has_ctl(val))
			verr(v, &m->o, m->exact ? "exact" : "prefix",
			     "origin \"%s\" has a control character", shown(v, val));
	}
	for (uint32_t i = 0; i < c->allowOrigin.n; i++)
		if (has_ctl(c->allowOrigin.v[i]))
			verr_at(
			    v, c->allowOrigin.pos[i],
			    arena_printf(&v->p->a, "%s[%u]", sub_path(v, &c->o, "allowOrigin"), i),
			    "origin \"%s\" has a control character", shown(v, c->allowOrigin.v[i]));
	for (uint32_t i = 0; i < c->allowMethods.n; i++)
		if (!one_of(c->allowMethods.v[i], methods))
			verr_at(
			    v, c->allowMethods.pos[i],
			    arena_printf(&v->p->a, "%s[%u]", sub_path(v, &c->o, "allowMethods"), i),
			    "\"%s\" is not a supported HTTP method (GET, HEAD, POST, PUT, PATCH, "
			    "DELETE, CONNECT, OPTIONS, TRACE or *)",
			    shown(v, c->allowMethods.v[i]));
	for (size_t k = 0; k < 2; k++)
		for (uint32_t i = 0; i < names[k]->n; i++) {
			const char *n = names[k]->v[i];
			const char *path = arena_printf(
			    &v->p->a, "%s[%u]",
			    sub_path(v, &c->o, k ? "exposeHeaders" : "allowHeaders"), i);

			if (!*n)
				verr_at(v, names[k]->pos[i], path, "header name cannot be empty");
			else if (strcmp(n, "*") && !is_http_token(n))
				verr_at(
				    v, names[k]->pos[i], path,
				    "header name \"%s\" is not an HTTP token (letters, digits and "
				    "!#$%%&'*+-.^_`|~)",
				    shown(v, n));
		}
	if (obj_has(&c->o, "maxAge") && c->maxAge % 1000)
		verr(v, &c->o, "maxAge", "max_age duration is accurate only to seconds precision");
}

static void check_redirect(struct vctx *v, const struct http_redirect *rd)
{
	if (!(rd->uri && *rd->uri) && !(rd->authority && *rd->authority) &&
	    !(rd->scheme && *rd->scheme) && !obj_has(&rd->o, "port") && !rd->derivePort)
		verr(v, &rd->o, NULL, "redirect must specify URI, authority, scheme, or port");
	check_uri(v, &rd->o, "uri", rd->uri);
	check_authority(v, &rd->o, "authority", rd->authority);
	if (rd->scheme && *rd->scheme && strcmp(rd->scheme, "http") && strcmp(rd->scheme, "https"))
		verr(v, &rd->o, "scheme",
		     "invalid redirect scheme \"%s\", must be \"http\" or \"https\"",
		     shown(v, rd->scheme));
	check_port(v, &rd->o, "port", rd->port);
	if (rd->derivePort &&
	    !one_of(rd->derivePort,
		    (const char *const[]){"FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT", NULL}))
		verr(v, &rd->o, "derivePort",
		     "unknown derivePort \"%s\" (FROM_PROTOCOL_DEFAULT, FROM_REQUEST_PORT)",
		     shown(v, rd->derivePort));
}

static void check_rewrite(struct vctx *v, const struct http_rewrite *rw)
{
	if (!(rw->uri && *rw->uri) && !(rw->authority && *rw->authority) &&
	    !obj_has(&rw->o, "uriRegexRewrite"))
		verr(v, &rw->o, NULL,
		     "rewrite must specify at least one of URI, UriRegexRewrite, "
		     "or authority");
	if (rw->uri && *rw->uri && obj_has(&rw->o, "uriRegexRewrite"))
		verr(v, &rw->o, "uriRegexRewrite",
		     "rewrite may only contain one of URI or "
		     "UriRegexRewrite");
	check_uri(v, &rw->o, "uri", rw->uri);
	check_authority(v, &rw->o, "authority", rw->authority);
}

/* It becomes spiffe://TD/ns/NS/sa/SA in a minted certificate: a ',' would add a SAN. */
static void check_service_account(struct vctx *v, const struct obj *o, const char *field,
				  const char *sa)
{
	if (sa && *sa && !is_dns1123_subdomain(sa))
		verr(v, o, field,
		     "invalid service account name \"%s\": lower-case letters, digits, '-' and '.'",
		     shown(v, sa));
}

/* ---- kinds ---- */

static void check_host_list(struct vctx *v, const struct obj *o, const char *field,
			    const struct strs *h, bool allow_star)
{
	for (uint32_t i = 0; i < h->n; i++) {
		const char *path = arena_printf(&v->p->a, "%s[%u]", sub_path(v, o, field), i);
		const char *host = h->v[i];
		const char *slash = strchr(host, '/');
		const char *e;

		if (slash && !strcmp(field, "hosts") && o->schema &&
		    !strcmp(o->schema->name, "server"))
			host = slash + 1; /* Gateway servers: "namespace/host" */
		if (!strcmp(host, "*") && !allow_star)
			verr_at(v, h->pos[i], path, "hostname cannot be wildcard");
		else if ((e = wildcard_domain_error(host)))
			verr_at(v, h->pos[i], path, "%s: \"%s\"", e, host);
		for (uint32_t j = 0; j < i; j++)
			if (!strcasecmp(h->v[j], h->v[i]))
				verr_at(v, h->pos[i], path, "Duplicate value: \"%s\"", h->v[i]);
	}
}

static void check_endpoint(struct vctx *v, const struct workload_entry *e, bool in_se,
			   const struct service_entry *se)
{
	const char *a = e->address;

	if (!in_se && !obj_has(&e->o, "address") && !obj_has(&e->o, "network"))
		verr(v, &e->o, "address", "Address is required");
	if (in_se && !a)
		verr(v, &e->o, "address", "Required value");
	if (a && !strncmp(a, "unix://", 7)) {
		const char *path = a + 7;

		if (path[0] != '/' && path[0] != '@')
			verr(v, &e->o, "address",
			     "UDS must be an absolute path or abstract socket: \"%s\"", a);
		else if (path[strlen(path) - 1] == '/')
			verr(v, &e->o, "address", "UDS may not be a dir: \"%s\"", a);
		if (e->ports.n)
			verr(v, &e->o, "ports", "UDS may not include ports");
	} else if (a && strstr(a, "${")) {
		vwarn_at(v, obj_fpos(&e->o, "address"), sub_path(v, &e->o, "address"),
			 "\"%s\" names an environment variable that is not set: the endpoint stays "
			 "unresolved until it is",
			 a);
	} else if (a && !is_ip(a) && !is_fqdn(a)) {
		verr(v, &e->o, "address", "\"%s\" is not an IP address or a valid FQDN", a);
	}
	for (uint32_t i = 0; i < e->ports.n; i++) {
		const struct kv *p = &e->ports.v[i];
		const char *path = arena_printf(&v->p->a, "%s", sub_path(v, &e->o, "ports"));
		char *end = NULL;
		long n = p->v ? strtol(p->v, &end, 10) : 0; /* no scalar: a list or a map */

		if (!is_dns1123_label(p->k))
			verr_at(v, p->pos, path, "Invalid value: port name \"%s\"", p->k);
		if (!p->v || end == p->v || *end || n < 1 || n > 65535)
			verr_at(v, p->pos, arena_printf(&v->p->a, "%s.%s", path, p->k),
				"port must be between 1-65535, got \"%s\"", p->v ? p->v : "a list or a map");
		if (se) {
			bool found = false;

			for (uint32_t j = 0; j < se->ports.n; j++)
				found |= se->ports.v[j].name && !strcmp(se->ports.v[j].name, p->k);
			if (!found)
				verr_at(v, p->pos, arena_printf(&v->p->a, "%s.%s", path, p->k),
					"endpoint port %s is not defined by the service entry",
					p->k);
		}
	}
	check_labels(v, &e->labels, sub_path(v, &e->o, "labels"), false);
	check_service_account(v, &e->o, "serviceAccount", e->serviceAccount);
	if (obj_has(&e->o, "weight") && (e->weight < 0 || e->weight > UINT32_MAX))
		verr(v, &e->o, "weight", "must be between 0 and 4294967295");
}

static void validate_service_entry(struct vctx *v, struct service_entry *se)
{
	static const char *const resolutions[] = {"NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", NULL};
	static const char *const locations[] = {"MESH_EXTERNAL", "MESH_INTERNAL", NULL};
	const char *res = se->resolution ? se->resolution : "NONE";

	if (!se->hosts.n)
		verr(v, &se->o, "hosts", "Required value");
	check_host_list(v, &se->o, "hosts", &se->hosts, false);
	if (se->resolution && !one_of(se->resolution, resolutions))
		verr(v, &se->o, "resolution",
		     "unknown resolution \"%s\" (NONE, STATIC, DNS, "
		     "DNS_ROUND_ROBIN)",
		     se->resolution);
	if (se->location && !one_of(se->location, locations))
		verr(v, &se->o, "location",
		     "unknown location \"%s\" (MESH_EXTERNAL, MESH_INTERNAL)", se->location);
	for (uint32_t i = 0; i < se->addresses.n; i++) {
		const char *a = se->addresses.v[i];
		const char *path = arena_printf(&v->p->a, "addresses[%u]", i);
		bool cidr = strchr(a, '/') != NULL;

		if (!(cidr ? is_cidr(a, NULL) : is_ip(a)))
			verr_at(v, se->addresses.pos[i], path, "invalid IP address or CIDR \"%s\"",
				a);
		else if (cidr && strcmp(res, "NONE") && strcmp(res, "STATIC"))
			verr_at(v, se->addresses.pos[i], path,
				"CIDR addresses are allowed only for NONE/STATIC resolution types");
	}
	for (uint32_t i = 0; i < se->ports.n; i++) {
		struct se_port *p = &se->ports.v[i];

		check_port(v, &p->o, "number", p->number);
		check_port(v, &p->o, "targetPort", p->targetPort);
		if (!obj_has(&p->o, "number"))
			verr(v, &p->o, "number", "Required value");
		if (p->protocol && !valid_protocol(p->protocol))
			verr(v, &p->o, "protocol", "unrecognized protocol \"%s\"", p->protocol);
		if (p->name && !is_dns1123_label(p->name))
			verr(v, &p->o, "name", "invalid port name \"%s\"", p->name);
		for (uint32_t j = 0; j < i; j++) {
			if (p->name && se->ports.v[j].name && !strcmp(p->name, se->ports.v[j].name))
				verr(v, &p->o, "name", "Duplicate value: \"%s\"", p->name);
			if (obj_has(&p->o, "number") && p->number == se->ports.v[j].number)
				verr(v, &p->o, "number", "port number cannot be duplicated: %lld",
				     (long long)p->number);
		}
	}
	if (se->workloadSelector && obj_has(&se->o, "endpoints"))
		verr(v, &se->o, NULL, "only one of WorkloadSelector or Endpoints can be set");
	if (se->workloadSelector)
		check_labels(v, &se->workloadSelector->labels, "workloadSelector.labels", true);
	if (!strcmp(res, "NONE") && se->endpoints.n)
		verr(v, &se->o, "endpoints", "NONE mode cannot set endpoints");
	if (!strcmp(res, "DNS_ROUND_ROBIN") && se->endpoints.n > 1)
		verr(v, &se->o, "endpoints", "DNS_ROUND_ROBIN mode cannot have multiple endpoints");
	if ((!strcmp(res, "DNS") || !strcmp(res, "DNS_ROUND_ROBIN")) && !se->endpoints.n)
		for (uint32_t i = 0; i < se->hosts.n; i++)
			if (se->hosts.v[i][0] == '*')
				verr_at(v, se->hosts.pos[i], arena_printf(&v->p->a, "hosts[%u]", i),
					"DNS resolution needs endpoints or a host that is not a "
					"wildcard");
	for (uint32_t i = 0; i < se->endpoints.n; i++) {
		struct workload_entry *e = &se->endpoints.v[i];

		check_endpoint(v, e, true, se);
		if (!strcmp(res, "STATIC") && e->address && !is_ip(e->address) &&
		    strncmp(e->address, "unix://", 7) && !strstr(e->address, "${"))
			verr(v, &e->o, "address",
			     "STATIC resolution needs an IP address, got \"%s\"", e->address);
	}
	check_export_to(v, &se->o, &se->exportTo);
}

static void check_client_tls(struct vctx *v, const struct client_tls *t)
{
	static const char *const modes[] = {"DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL", NULL};

	if (!t)
		return;
	if (t->mode && !one_of(t->mode, modes))
		verr(v, &t->o, "mode",
		     "unknown mode \"%s\" (DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL)", t->mode);
	if (t->sni && (has_ctl(t->sni) || strpbrk(t->sni, " \t"))) /* sent in the ClientHello */
		verr(v, &t->o, "sni", "\"%s\" has a space or a control character",
		     shown(v, t->sni));
	if (t->mode && !strcmp(t->mode, "ISTIO_MUTUAL") &&
	    (t->clientCertificate || t->privateKey || t->caCertificates || t->credentialName))
		verr(v, &t->o, "mode",
		     "cannot specify client certificates or CA certificate with ISTIO_MUTUAL");
	if (t->mode && !strcmp(t->mode, "MUTUAL") && !t->credentialName &&
	    (!t->clientCertificate || !t->privateKey))
		verr(v, &t->o, "mode",
		     "client certificate and private key required for mutual tls (or "
		     "credentialName)");
}

static void check_lb(struct vctx *v, const struct load_balancer *lb)
{
	static const char *const simple[] = {"UNSPECIFIED", "RANDOM",	     "PASSTHROUGH",
					     "ROUND_ROBIN", "LEAST_REQUEST", "LEAST_CONN",
					     NULL};
	const struct warmup *w;

	if (!lb)
		return;
	if (lb->simple && !one_of(lb->simple, simple))
		verr(v, &lb->o, "simple", "unknown load balancer \"%s\"", lb->simple);
	w = lb->warmup;
	if (!w)
		return;
	if (!obj_has(&w->o, "duration"))
		verr(v, &w->o, "duration", "Required value");
	if (obj_has(&w->o, "minimumPercent") && (w->minimumPercent < 0 || w->minimumPercent > 100))
		verr(v, &w->o, "minimumPercent", "Invalid value: must be between 0 and 100");
	if (obj_has(&w->o, "aggression") && w->aggression < 1)
		verr(v, &w->o, "aggression", "Invalid value: must be at least 1.0");
}

static void check_nonneg(struct vctx *v, const struct obj *o, const char *f, int64_t x)
{
	if (obj_has(o, f) && x < 0)
		verr(v, o, f, "must not be negative");
}

static void check_pool_outlier(struct vctx *v, const struct connection_pool *cp,
			       const struct outlier_detection *od)
{
	if (cp && cp->tcp) {
		check_nonneg(v, &cp->tcp->o, "maxConnections", cp->tcp->maxConnections);
		if (obj_has(&cp->tcp->o, "connectTimeout") && cp->tcp->connectTimeout < 1)
			verr(v, &cp->tcp->o, "connectTimeout", "must be at least 1ms");
	}
	if (cp && cp->http) {
		const struct http_settings *h = cp->http;

		check_nonneg(v, &h->o, "http1MaxPendingRequests", h->http1MaxPendingRequests);
		check_nonneg(v, &h->o, "http2MaxRequests", h->http2MaxRequests);
		check_nonneg(v, &h->o, "maxRequestsPerConnection", h->maxRequestsPerConnection);
		check_nonneg(v, &h->o, "maxRetries", h->maxRetries);
		if (h->h2UpgradePolicy &&
		    !one_of(h->h2UpgradePolicy,
			    (const char *const[]){"DEFAULT", "DO_NOT_UPGRADE", "UPGRADE", NULL}))
			verr(v, &h->o, "h2UpgradePolicy", "unknown policy \"%s\"",
			     h->h2UpgradePolicy);
	}
	if (od) {
		if (obj_has(&od->o, "maxEjectionPercent") &&
		    (od->maxEjectionPercent < 0 || od->maxEjectionPercent > 100))
			verr(v, &od->o, "maxEjectionPercent", "must be between 0 and 100");
		if (obj_has(&od->o, "minHealthPercent") &&
		    (od->minHealthPercent < 0 || od->minHealthPercent > 100))
			verr(v, &od->o, "minHealthPercent", "must be between 0 and 100");
		if (obj_has(&od->o, "interval") && od->interval < 1)
			verr(v, &od->o, "interval", "must be at least 1ms");
		if (obj_has(&od->o, "baseEjectionTime") && od->baseEjectionTime < 1)
			verr(v, &od->o, "baseEjectionTime", "must be at least 1ms");
		check_nonneg(v, &od->o, "consecutive5xxErrors", od->consecutive5xxErrors);
		check_nonneg(v, &od->o, "consecutiveGatewayErrors", od->consecutiveGatewayErrors);
	}
}

static void check_traffic_policy(struct vctx *v, const struct traffic_policy *tp)
{
	if (!tp)
		return;
	check_lb(v, tp->loadBalancer);
	check_client_tls(v, tp->tls);
	check_pool_outlier(v, tp->connectionPool, tp->outlierDetection);
	for (uint32_t i = 0; i < tp->portLevelSettings.n; i++) {
		const struct port_traffic_policy *pl = &tp->portLevelSettings.v[i];

		if (!pl->port)
			verr(v, &pl->o, "port", "Required value");
		else
			check_port(v, &pl->port->o, "number", pl->port->number);
		for (uint32_t j = 0; j < i && pl->port; j++)
			if (tp->portLevelSettings.v[j].port &&
			    tp->portLevelSettings.v[j].port->number == pl->port->number)
				verr(v, &pl->o, "port", "Duplicate value: port %lld",
				     (long long)pl->port->number);
		check_lb(v, pl->loadBalancer);
		check_client_tls(v, pl->tls);
		check_pool_outlier(v, pl->connectionPool, pl->outlierDetection);
	}
}

static void validate_destination_rule(struct vctx *v, struct destination_rule *dr)
{
	const char *e;

	if (!dr->host)
		verr(v, &dr->o, "host", "Required value");
	else if ((e = wildcard_domain_error(dr->host)))
		verr(v, &dr->o, "host", "%s: \"%s\"", e, dr->host);
	check_traffic_policy(v, dr->trafficPolicy);
	for (uint32_t i = 0; i < dr->subsets.n; i++) {
		struct subset *s = &dr->subsets.v[i];

		if (!s->name)
			verr(v, &s->o, "name", "Required value");
		else if (!is_dns1123_label(s->name))
			verr(v, &s->o, "name", "invalid subset name \"%s\"", s->name);
		for (uint32_t j = 0; j < i && s->name; j++)
			if (dr->subsets.v[j].name && !strcmp(dr->subsets.v[j].name, s->name))
				verr(v, &s->o, "name", "Duplicate value: \"%s\"", s->name);
		check_labels(v, &s->labels, sub_path(v, &s->o, "labels"), false);
		check_traffic_policy(v, s->trafficPolicy);
	}
	check_export_to(v, &dr->o, &dr->exportTo);
	if (dr->workloadSelector)
		check_labels(v, &dr->workloadSelector->matchLabels, "workloadSelector.matchLabels",
			     true);
}

static void check_destinations(struct vctx *v, const struct obj *route, const char *field,
			       uint32_t n, const struct route_destination *d)
{
	int64_t sum = 0;

	if (!n)
		verr(v, route, field, "at least one destination is required");
	for (uint32_t i = 0; i < n; i++) {
		const struct destination *dst = d[i].destination;

		if (!dst) {
			verr(v, &d[i].o, "destination", "Required value");
		} else {
			const char *e;

			if (!dst->host)
				verr(v, &dst->o, "host", "Required value");
			else if (dst->host[0] == '*')
				verr(v, &dst->o, "host",
				     "a destination is a service, not a wildcard: \"%s\"",
				     dst->host);
			else if ((e = wildcard_domain_error(dst->host)))
				verr(v, &dst->o, "host", "%s: \"%s\"", e, dst->host);
			if (dst->subset && !is_dns1123_label(dst->subset))
				verr(v, &dst->o, "subset", "invalid subset name \"%s\"",
				     dst->subset);
			if (dst->port)
				check_port(v, &dst->port->o, "number", dst->port->number);
		}
		check_headers(v, d[i].headers);
		if (d[i].weight < 0)
			verr(v, &d[i].o, "weight", "must not be negative");
		else if (d[i].weight > INT32_MAX)
			verr(v, &d[i].o, "weight", "must be at most 2147483647");
		else
			sum += d[i].weight;
	}
	if (n > 1 && sum == 0)
		verr(v, route, field, "total destination weight must be greater than 0");
}

static void validate_http_route(struct vctx *v, struct http_route *r)
{
	if (!r->route.n && !obj_has(&r->o, "redirect") && !obj_has(&r->o, "directResponse") &&
	    !obj_has(&r->o, "delegate"))
		verr(v, &r->o, NULL,
		     "HTTP route, redirect, direct response or delegate is required");
	if (r->route.n)
		check_destinations(v, &r->o, "route", r->route.n, r->route.v);
	/* as Istio's validation: one action per route, and its fields in range */
	if (r->route.n && r->redirect)
		verr(v, &r->o, "redirect", "HTTP route cannot contain both route and redirect");
	if (r->route.n && r->directResponse)
		verr(v, &r->o, "directResponse",
		     "HTTP route cannot contain both route and directResponse");
	if (r->redirect && r->directResponse)
		verr(v, &r->o, "directResponse",
		     "HTTP route cannot contain both redirect and directResponse");
	if (r->redirect && r->rewrite)
		verr(v, &r->o, "rewrite", "rewrite and redirect cannot be used together");
	if (r->redirect && obj_has(&r->redirect->o, "redirectCode") &&
	    (r->redirect->redirectCode < 300 || r->redirect->redirectCode > 399))
		verr(v, &r->redirect->o, "redirectCode", "%lld is not a valid redirect code, must be 3xx",
		     (long long)r->redirect->redirectCode);
	if (r->redirect)
		check_redirect(v, r->redirect);
	if (r->rewrite)
		check_rewrite(v, r->rewrite);
	check_headers(v, r->headers);
	if (r->corsPolicy)
		check_cors(v, r->corsPolicy);
	if (r->directResponse && (r->directResponse->status < 200 || r->directResponse->status > 599))
		verr(v, &r->directResponse->o, "status", "must be in the range [200, 599]");
	if (r->directResponse && r->directResponse->body && r->directResponse->body->string &&
	    r->directResponse->body->bytes)
		verr(v, &r->directResponse->body->o, NULL, "only one of string or bytes may be set");
	for (uint32_t i = 0; i < r->match.n; i++) {
		struct http_match *m = &r->match.v[i];
		struct string_match *sm[] = {m->uri, m->scheme, m->method, m->authority};

		for (size_t j = 0; j < 4; j++)
			if (sm[j])
				check_string_match(v, sm[j], false);
		for (uint32_t j = 0; j < m->headers.n; j++) {
			struct kv *h = &m->headers.v[j];

			if (!*h->k)
				verr_at(v, h->pos, sub_path(v, &m->o, "headers"),
					"header name cannot be empty");
			for (char *c = (char *)h->k; *c; c++) /* HTTP header names are case-blind */
				*c = (char)tolower((unsigned char)*c);
			check_string_match(v, h->o, true);
		}
		for (uint32_t j = 0; j < m->withoutHeaders.n; j++)
			check_string_match(v, m->withoutHeaders.v[j].o, true);
		for (uint32_t j = 0; j < m->queryParams.n; j++)
			check_string_match(v, m->queryParams.v[j].o, true);
		check_port(v, &m->o, "port", m->port);
	}
	if (obj_has(&r->o, "timeout") && r->timeout < 0)
		verr(v, &r->o, "timeout", "must not be negative");
	if (r->retries) {
		check_nonneg(v, &r->retries->o, "attempts", r->retries->attempts);
		if (r->retries->attempts > POLICY_MAX_RETRIES)
			vwarn_at(v, obj_fpos(&r->retries->o, "attempts"),
				 sub_path(v, &r->retries->o, "attempts"),
				 "more than %d retries are cut to %d", POLICY_MAX_RETRIES, POLICY_MAX_RETRIES);
		if (obj_has(&r->retries->o, "perTryTimeout") && r->retries->perTryTimeout < 1)
			verr(v, &r->retries->o, "perTryTimeout", "must be at least 1ms");
	}
	if (r->fault) {
		struct fault_delay *d = r->fault->delay;
		struct fault_abort *a = r->fault->abort;

		if (!d && !a)
			verr(v, &r->fault->o, NULL, "one of delay or abort is required");
		if (d && !obj_has(&d->o, "fixedDelay") && !obj_has(&d->o, "exponentialDelay"))
			verr(v, &d->o, "fixedDelay", "Required value");
		if (d && d->percentage && (d->percentage->value < 0 || d->percentage->value > 100))
			verr(v, &d->percentage->o, "value", "must be between 0 and 100");
		if (a && !obj_has(&a->o, "httpStatus") && !a->grpcStatus && !a->http2Error)
			verr(v, &a->o, "httpStatus", "Required value");
		if (a && obj_has(&a->o, "httpStatus") &&
		    (a->httpStatus < 200 || a->httpStatus > 599))
			verr(v, &a->o, "httpStatus", "must be in the range 200-599");
		if (a && a->percentage && (a->percentage->value < 0 || a->percentage->value > 100))
			verr(v, &a->percentage->o, "value", "must be between 0 and 100");
	}
}

static void check_l4_routes(struct vctx *v, struct virtual_service *vs, bool tls)
{
	uint32_t n = tls ? vs->tls.n : vs->tcp.n;
	struct l4_route *routes = tls ? vs->tls.v : vs->tcp.v;

	for (uint32_t i = 0; i < n; i++) {
		struct l4_route *r = &routes[i];

		check_destinations(v, &r->o, "route", r->route.n, r->route.v);
		if (tls && !r->match.n)
			verr(v, &r->o, "match", "TLS route must have at least one match condition");
		for (uint32_t j = 0; j < r->match.n; j++) {
			struct l4_match *m = &r->match.v[j];

			check_port(v, &m->o, "port", m->port);
			if (tls && !m->sniHosts.n)
				verr(v, &m->o, "sniHosts",
				     "TLS match must have at least one SNI host");
			check_host_list(v, &m->o, "sniHosts", &m->sniHosts, true);
			for (uint32_t k = 0; k < m->destinationSubnets.n; k++) {
				const char *s = m->destinationSubnets.v[k];

				if (!is_ip(s) && !is_cidr(s, NULL))
					verr_at(v, m->destinationSubnets.pos[k],
						sub_path(v, &m->o, "destinationSubnets"),
						"invalid IP address or CIDR \"%s\"", s);
			}
		}
	}
}

static void validate_virtual_service(struct vctx *v, struct virtual_service *vs)
{
	bool mesh = !vs->gateways.n;

	for (uint32_t i = 0; i < vs->gateways.n; i++)
		mesh |= !strcmp(vs->gateways.v[i], "mesh");
	if (!vs->hosts.n)
		verr(v, &vs->o, "hosts", "virtual service must have at least one host");
	check_host_list(v, &vs->o, "hosts", &vs->hosts, true);
	for (uint32_t i = 0; i < vs->hosts.n && mesh; i++)
		if (!strcmp(vs->hosts.v[i], "*"))
			verr_at(v, vs->hosts.pos[i], arena_printf(&v->p->a, "hosts[%u]", i),
				"wildcard host * is not allowed for virtual services bound to the "
				"mesh gateway");
	for (uint32_t i = 0; i < vs->gateways.n; i++) {
		const char *g = vs->gateways.v[i], *slash = strchr(g, '/');

		if (strcmp(g, "mesh") && !is_dns1123_subdomain(slash ? slash + 1 : g))
			verr_at(v, vs->gateways.pos[i], arena_printf(&v->p->a, "gateways[%u]", i),
				"invalid gateway name \"%s\"", g);
	}
	if (!vs->http.n && !vs->tcp.n && !vs->tls.n)
		verr(v, &vs->o, NULL, "http, tcp or tls must be provided in virtual service");
	for (uint32_t i = 0; i < vs->http.n; i++)
		validate_http_route(v, &vs->http.v[i]);
	check_l4_routes(v, vs, false);
	check_l4_routes(v, vs, true);
	check_export_to(v, &vs->o, &vs->exportTo);
}

static void validate_gateway(struct vctx *v, struct gateway *gw)
{
	static const char *const modes[] = {
	    "PASSTHROUGH",  "SIMPLE",	       "MUTUAL", "AUTO_PASSTHROUGH",
	    "ISTIO_MUTUAL", "OPTIONAL_MUTUAL", NULL};

	if (!gw->servers.n)
		verr(v, &gw->o, "servers", "gateway must have at least one server");
	for (uint32_t i = 0; i < gw->servers.n; i++) {
		struct server *s = &gw->servers.v[i];
		const char *proto = s->port && s->port->protocol ? s->port->protocol : "";

		if (!s->port) {
			verr(v, &s->o, "port", "Required value");
		} else {
			if (!obj_has(&s->port->o, "number"))
				verr(v, &s->port->o, "number", "Required value");
			check_port(v, &s->port->o, "number", s->port->number);
			check_port(v, &s->port->o, "targetPort", s->port->targetPort);
			if (!s->port->protocol)
				verr(v, &s->port->o, "protocol", "Required value");
			else if (!valid_protocol(proto))
				verr(v, &s->port->o, "protocol", "unrecognized protocol \"%s\"",
				     proto);
		}
		if (!s->hosts.n)
			verr(v, &s->o, "hosts", "server config must contain at least one host");
		check_host_list(v, &s->o, "hosts", &s->hosts, true);
		if (s->tls && s->tls->mode && !one_of(s->tls->mode, modes))
			verr(v, &s->tls->o, "mode", "unknown TLS mode \"%s\"", s->tls->mode);
		if ((!strcasecmp(proto, "HTTPS") || !strcasecmp(proto, "TLS")) &&
		    (!s->tls || !s->tls->mode) && !(s->tls && s->tls->httpsRedirect))
			verr(v, &s->o, "tls",
			     "server must have TLS settings for HTTPS/TLS protocols");
		if (s->tls && s->tls->mode && !strcmp(s->tls->mode, "AUTO_PASSTHROUGH") &&
		    strcasecmp(proto, "TLS"))
			verr(v, &s->tls->o, "mode", "AUTO_PASSTHROUGH needs protocol TLS");
	}
}

static void validate_k8s_service(struct vctx *v, struct k8s_service *s)
{
	if (s->clusterIP && *s->clusterIP && strcmp(s->clusterIP, "None") && !is_ip(s->clusterIP))
		verr(v, &s->o, "clusterIP", "invalid IP address \"%s\"", s->clusterIP);
	for (uint32_t i = 0; i < s->ports.n; i++) {
		struct svc_port *p = &s->ports.v[i];

		if (!obj_has(&p->o, "port"))
			verr(v, &p->o, "port", "Required value");
		check_port(v, &p->o, "port", p->port);
		if (p->targetPort) {
			char *end;
			long n = strtol(p->targetPort, &end, 10);

			if (*end == 0 && (n < 1 || n > 65535))
				verr(v, &p->o, "targetPort", "port must be between 1-65535");
		}
		for (uint32_t j = 0; j < i; j++) {
			struct svc_port *q = &s->ports.v[j];

			if (q->port == p->port && !strcasecmp(q->protocol ? q->protocol : "TCP",
							      p->protocol ? p->protocol : "TCP"))
				verr(v, &p->o, "port", "Duplicate value: %lld", (long long)p->port);
			if (p->name && q->name && !strcmp(p->name, q->name))
				verr(v, &p->o, "name", "Duplicate value: \"%s\"", p->name);
		}
	}
}

static void check_pod_spec(struct vctx *v, const struct pod_spec *ps)
{
	if (!ps)
		return;
	check_service_account(v, &ps->o, "serviceAccountName", ps->serviceAccountName);
	check_service_account(v, &ps->o, "serviceAccount", ps->serviceAccount);
}

static void validate_pod(struct vctx *v, struct resource *r)
{
	check_pod_spec(v, r->spec);
	if (r->status && r->status->podIP && !is_ip(r->status->podIP))
		verr(v, &r->status->o, "podIP", "invalid IP address \"%s\"", r->status->podIP);
}

bool server_auto_passthrough(const struct server *sv)
{
	return sv->port && sv->tls && sv->tls->mode && !strcmp(sv->tls->mode, "AUTO_PASSTHROUGH");
}

static void validate_mesh_networks(struct vctx *v, struct resource *r)
{
	for (uint32_t i = 0; i < r->networks.n; i++) {
		const struct mesh_network *n = r->networks.v[i].o;

		for (uint32_t k = 0; n && k < n->endpoints.n; k++) {
			const struct net_endpoint *e = &n->endpoints.v[k];

			if (!!e->fromCidr == !!e->fromRegistry)
				verr(v, &e->o, "fromCidr",
				     "exactly one of fromCidr and fromRegistry");
			else if (e->fromCidr && !is_cidr(e->fromCidr, NULL) && !is_ip(e->fromCidr))
				verr(v, &e->o, "fromCidr", "not a CIDR: \"%s\"", e->fromCidr);
		}
		for (uint32_t k = 0; n && k < n->gateways.n; k++) {
			const struct net_gateway *g = &n->gateways.v[k];

			if (!!g->address == !!g->registryServiceName)
				verr(v, &g->o, "address",
				     "exactly one of address and registryServiceName");
			if (obj_has(&g->o, "port") && (g->port < 1 || g->port > 65535))
				verr(v, &g->o, "port", "must be 1-65535");
		}
	}
}

static void validate_one(struct vctx *v, struct resource *r)
{
	bool istio = r->kind == K_SERVICE_ENTRY || r->kind == K_DESTINATION_RULE ||
		     r->kind == K_VIRTUAL_SERVICE || r->kind == K_GATEWAY ||
		     r->kind == K_WORKLOAD_ENTRY;

	if (r->kind == K_MESH_NETWORKS) {
		validate_mesh_networks(v, r);
		return;
	}
	if (!is_dns1123_subdomain(r->name))
		verr_at(v, obj_fpos(&r->metadata->o, "name"), "metadata.name",
			"invalid name \"%s\": lower-case letters, digits, '-' and '.'",
			shown(v, r->name));
	else if (r->kind == K_NAMESPACE && !is_dns1123_label(r->name))
		verr_at(v, obj_fpos(&r->metadata->o, "name"), "metadata.name",
			"invalid namespace name \"%s\": lower-case letters, digits and '-', at "
			"most 63",
			r->name);
	/* the namespace is in every spiffe:// identity minted for the object's workloads */
	if (*r->ns && !is_dns1123_label(r->ns))
		verr_at(v, obj_fpos(&r->metadata->o, "namespace"), "metadata.namespace",
			"invalid namespace \"%s\"", shown(v, r->ns));
	if (istio && !r->spec) {
		verr_at(v, r->o.pos, "spec", "Required value");
		return;
	}
	switch (r->kind) {
	case K_SERVICE_ENTRY:
		validate_service_entry(v, r->spec);
		break;
	case K_DESTINATION_RULE:
		validate_destination_rule(v, r->spec);
		break;
	case K_VIRTUAL_SERVICE:
		validate_virtual_service(v, r->spec);
		break;
	case K_GATEWAY:
		validate_gateway(v, r->spec);
		break;
	case K_WORKLOAD_ENTRY:
		check_endpoint(v, r->spec, false, NULL);
		break;
	case K_SERVICE:
		if (r->spec)
			validate_k8s_service(v, r->spec);
		break;
	case K_POD:
		validate_pod(v, r);
		break;
	case K_DEPLOYMENT:
		if (r->spec) {
			const struct deployment_spec *d = r->spec;

			check_nonneg(v, &d->o, "replicas", d->replicas);
			if (d->template)
				check_pod_spec(v, d->template->spec);
		}
		break;
	default:
		break;
	}
}

static int cmp_identity(const void *a, const void *b)
{
	const struct resource *x = *(struct resource *const *)a, *y = *(struct resource *const *)b;
	int c = (int)x->kind - (int)y->kind;

	if (!c)
		c = strcmp(x->ns, y->ns);
	if (!c)
		c = strcmp(x->name, y->name);
	if (!c)
		c = (int)x->seq - (int)y->seq;
	return c;
}

int policy_validate(struct policy *p)
{
	unsigned before = p->diag->errors;

	for (unsigned i = 0; i < p->n; i++) {
		struct resource *r = p->res[i];
		struct vctx v = {
		    p, r,
		    *r->ns ? arena_printf(&p->a, "%s %s/%s", kind_name(r->kind), r->ns, r->name)
			   : arena_printf(&p->a, "%s %s", kind_name(r->kind), r->name)};

		validate_one(&v, r);
	}
	/* Sorted by identity: the result does not depend on the order of the inputs. */
	if (p->n)
		qsort(p->res, p->n, sizeof(*p->res), cmp_identity);
	for (unsigned i = 1; i < p->n; i++) {
		struct resource *a = p->res[i - 1], *b = p->res[i];

		if (a->kind == b->kind && !strcmp(a->ns, b->ns) && !strcmp(a->name, b->name))
			diag_add(p->diag, DIAG_ERROR, b->file, b->o.pos.line, b->o.pos.col,
				 "%s %s%s%s: duplicate object, first defined at %s:%u:%u",
				 kind_name(b->kind), b->ns, *b->ns ? "/" : "", b->name, a->file,
				 a->o.pos.line, a->o.pos.col);
	}
	return p->diag->errors > before ? -EINVAL : 0;
}

/* ---- names ---- */

const char *host_fqdn(struct arena *a, const char *host, const char *ns)
{
	char *h;

	if (!host)
		return NULL;
	if (strchr(host, '.') || !strcmp(host, "*"))
		h = arena_strdup(a, host);
	else
		h = arena_printf(a, "%s.%s.svc.cluster.local", host, ns);
	for (char *c = h; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return h;
}

int host_matches(const char *pattern, const char *host)
{
	size_t pl = strlen(pattern), hl = strlen(host);

	if (!strcmp(pattern, "*"))
		return 1;
	if (pattern[0] == '*') /* "*.global" or "*x": suffix match */
		return hl >= pl - 1 && !strcasecmp(host + hl - (pl - 1), pattern + 1);
	return !strcasecmp(pattern, host);
}

const char *labels_get(const struct kvs *labels, const char *key)
{
	for (uint32_t i = 0; i < labels->n; i++)
		if (!strcmp(labels->v[i].k, key))
			return labels->v[i].v ? labels->v[i].v : "";
	return NULL;
}

int labels_match(const struct kvs *selector, const struct kvs *labels)
{
	for (uint32_t i = 0; i < selector->n; i++) {
		const char *v = labels_get(labels, selector->v[i].k);

		if (!v || strcmp(v, selector->v[i].v ? selector->v[i].v : ""))
			return 0;
	}
	return 1;
}
