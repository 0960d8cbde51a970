// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The names the kernel keeps: a map's or a program's name is cut to 15
 * characters (BPF_OBJ_NAME_LEN), and `bpftool map dump name X` then finds
 * nothing. Every map and program of every BPF object, read from the
 * skeletons as built; maps named ks_*, programs ksteer_*. No root needed.
 */
#include "harness.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>

#include "agent/datapath/datapath.h"
#include "ksteer_sock.skel.h"
#include "ksteer_xdp.skel.h"

#define NAME_MAX_LEN (BPF_OBJ_NAME_LEN - 1)

static void check_object(struct bpf_object *obj)
{
	struct bpf_program *p;
	struct bpf_map *m;
	int maps = 0, progs = 0;

	assert_non_null(obj);
	bpf_object__for_each_map(m, obj) {
		const char *name = bpf_map__name(m);

		if (bpf_map__is_internal(m)) /* .rodata and kin: libbpf makes their names fit */
			continue;
		maps++;
		if (strlen(name) > NAME_MAX_LEN)
			fail_msg("%s: map %s is %zu characters, the kernel keeps %d",
				 bpf_object__name(obj), name, strlen(name), NAME_MAX_LEN);
		if (strncmp(name, "ks_", 3))
			fail_msg("%s: map %s: maps are named ks_<noun>", bpf_object__name(obj),
				 name);
	}
	bpf_object__for_each_program(p, obj) {
		const char *name = bpf_program__name(p);

		progs++;
		if (strlen(name) > NAME_MAX_LEN)
			fail_msg("%s: program %s is %zu characters, the kernel keeps %d",
				 bpf_object__name(obj), name, strlen(name), NAME_MAX_LEN);
		if (strncmp(name, "ksteer_", 7))
			fail_msg("%s: program %s: programs are named ksteer_<hook>",
				 bpf_object__name(obj), name);
	}
	assert_true(maps > 0 && progs > 0);
}

static void test_sock_names(void **state)
{
	struct ksteer_sock *s = ksteer_sock__open();

	(void)state;
	if (!s)
		fail_msg("open ksteer_sock: %s", strerror(errno));
	check_object(s->obj);
	/* the pins of dp_map_names are the maps themselves, by the same name */
	for (int i = 0; i < DP_MAPS; i++)
		if (!bpf_object__find_map_by_name(s->obj, dp_map_names[i]))
			fail_msg("dp_map_names[%d] = %s: no such map in ksteer_sock", i,
				 dp_map_names[i]);
	ksteer_sock__destroy(s);
}

static void test_xdp_names(void **state)
{
	struct ksteer_xdp *x = ksteer_xdp__open();

	(void)state;
	if (!x)
		fail_msg("open ksteer_xdp: %s", strerror(errno));
	check_object(x->obj);
	ksteer_xdp__destroy(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sock_names),
		cmocka_unit_test(test_xdp_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
