// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libFuzzer: any bytes as the start of an inbound connection's PROXY v2 header. A header
 * taken must say what it is (rebuilt, it parses to the same addresses), and each of its
 * prefixes must be "need more", never a verdict. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/shim/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ks_addr src, dst, s2, d2;
	unsigned char h[PROXY_V2_MAX];
	uint16_t sp, dp, sp2, dp2;
	int n = proxy_v2_parse(data, size, &src, &sp, &dst, &dp);
	size_t hl;

	if (n < -2 || n > (int)size || n > PROXY_V2_MAX || (n > 0 && n < 16 + 12))
		abort();
	if (n <= 0)
		return 0;
	for (int k = 0; k < n; k++)
		if (proxy_v2_parse(data, (size_t)k, &s2, &sp2, &d2, &dp2) != 0)
			abort();
	hl = proxy_v2_build(h, &src, sp, &dst, dp);
	if (proxy_v2_parse(h, hl, &s2, &sp2, &d2, &dp2) != (int)hl || memcmp(&s2, &src, 16) ||
	    memcmp(&d2, &dst, 16) || sp2 != sp || dp2 != dp)
		abort();
	return 0;
}
