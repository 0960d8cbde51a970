// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libFuzzer: any bytes as the first bytes of a TLS connection at a gateway (OpenSSL's
 * ClientHello parser and our callback), as a server_name extension's body, and the SNI
 * found as an outbound_ name. An SNI taken is a C string that fits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/shim/wire.h"

static void check_name(const char *sni, size_t cap)
{
	char subset[64], host[256];
	uint16_t port;

	if (strnlen(sni, cap) >= cap || !*sni)
		abort();
	if (!sni_parse(sni, &port, subset, sizeof(subset), host, sizeof(host)) && (!port || !*host))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static SSL_CTX *ctx;
	char sni[256], small[16];
	int r;

	if (!ctx && !(ctx = sni_peek_ctx()))
		abort();
	r = sni_peek(ctx, data, size, sni, sizeof(sni));
	if (r < -2 || r > 1)
		abort();
	if (r == 1)
		check_name(sni, sizeof(sni));
	r = sni_ext_name(data, size, small, sizeof(small));
	if (r != 1 && r != -2)
		abort();
	if (r == 1) {
		check_name(small, sizeof(small));
		if (strlen(small) != (size_t)(data[3] << 8 | data[4]))
			abort();
	}
	return 0;
}
