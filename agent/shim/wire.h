/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The shim's wire codecs as pure functions over bytes, no sockets: PROXY v2
 * headers, the SNI of a ClientHello, the outbound_ SNI form. Unit tests and
 * libFuzzer targets (selftests/fuzz) reach them without the rest of the shim.
 */
#ifndef KSTEER_SHIM_WIRE_H
#define KSTEER_SHIM_WIRE_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "../compile/compile.h"

#define PROXY_V2_MAX (16 + 512) /* the longest header proxy_v2_parse takes */

/* PROXY protocol v2 header for a TCP connection from src to dst. Returns its length. */
size_t proxy_v2_build(unsigned char *out, const struct ks_addr *src, uint16_t sport,
		      const struct ks_addr *dst, uint16_t dport);
/* 0 need more, n > 0 header length (dst filled), -1 not a PROXY v2 header, -2 malformed. */
int proxy_v2_parse(const unsigned char *p, size_t n, struct ks_addr *src, uint16_t *sport,
		   struct ks_addr *dst, uint16_t *dport);
/* The SNI of a ClientHello at the start of p: 1 found, 0 need more bytes, -1 not TLS or
 * malformed, -2 a ClientHello without SNI. */
int sni_peek(SSL_CTX *peek_ctx, const void *p, size_t n, char *sni, size_t sni_len);
SSL_CTX *sni_peek_ctx(void);
/* The host name of a server_name extension's body (RFC 6066 section 3): 1 found (a C
 * string in sni), -2 none usable (malformed, not a host_name, NUL inside, too long). */
int sni_ext_name(const unsigned char *e, size_t el, char *sni, size_t sni_len);
/* outbound_.PORT_.SUBSET_.HOST: 0, or -1 when sni is not of that form. */
int sni_parse(const char *sni, uint16_t *port, char *subset, size_t subset_len, char *host,
	      size_t host_len);

#endif
