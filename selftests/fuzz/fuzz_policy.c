// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libFuzzer: any bytes through load, validate, compile and both printers; nothing may crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/compile/compile.h"
#include "agent/policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null;
	struct diag diag = { 0 };
	struct policy p;
	struct plan plan = { 0 };

	if (!null)
		null = fopen("/dev/null", "w");
	policy_init(&p, &diag, "fuzz");
	policy_load_buffer(&p, "fuzz.yaml", (const char *)data, size);
	policy_validate(&p);
	if (!diag.errors && !plan_compile(&plan, &p, &diag)) {
		plan_print_text(&plan, null);
		plan_print_json(&plan, null);
		free(image_serialize(&plan.img, &size));
	}
	diag_print(&diag, null);
	plan_free(&plan);
	policy_free(&p);
	diag_free(&diag);
	return 0;
}
