// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The deadline heap against a plain list: random sets, moves and removals fire in order. */
#include "harness.h"

#include "agent/lib/timer.h"

#define N 500

static struct timer tm[N];
static uint64_t fired[N], last;
static unsigned n_fired;

static void on_fire(struct timer *t, uint64_t now)
{
	if (t->at || now < last)
		fail_msg("a timer fired set, or out of order");
	fired[n_fired++] = (uint64_t)(t - tm);
}

static void test_heap(void **state)
{
	struct timers h = {0};
	uint64_t want[N] = {0};
	unsigned seed = 7;

	(void)state;
	for (unsigned i = 0; i < N; i++)
		tm[i].fn = on_fire;
	for (unsigned round = 0; round < 20000; round++) {
		unsigned i = (unsigned)rand_r(&seed) % N;
		uint64_t at = (uint64_t)(rand_r(&seed) % 3 ? 1 + rand_r(&seed) % 100000 : 0);

		assert_int_equal(timer_set(&h, &tm[i], at), 0);
		want[i] = at;
	}
	/* the earliest is at the top; running fires exactly the due ones, in order */
	for (uint64_t now = 0; now < 100000 + 997; now += 997) {
		uint64_t min = 0;
		unsigned due = 0;

		for (unsigned i = 0; i < N; i++) {
			if (want[i] && (!min || want[i] < min))
				min = want[i];
			due += want[i] && want[i] <= now;
		}
		assert_int_equal(timers_next(&h), min);
		n_fired = 0;
		last = now;
		timers_run(&h, now);
		assert_int_equal(n_fired, due);
		for (unsigned k = 0; k < n_fired; k++) {
			assert_true(want[fired[k]] <= now);
			if (k)
				assert_true(want[fired[k - 1]] <= want[fired[k]]);
		}
		for (unsigned k = 0; k < n_fired; k++)
			want[fired[k]] = 0;
	}
	assert_int_equal(h.n, 0);
	timers_free(&h);
}

/* A timer set again for a moment already due, from its own fn, waits for the next run. */
static struct timers again_h;
static unsigned again_runs;

static void on_again(struct timer *t, uint64_t now)
{
	again_runs++;
	timer_set(&again_h, t, now); /* "due now" again: must not loop inside this run */
}

static void test_no_spin(void **state)
{
	struct timer t = {.fn = on_again};

	(void)state;
	timer_set(&again_h, &t, 10);
	timers_run(&again_h, 10);
	assert_int_equal(again_runs, 1);
	assert_int_equal(timers_next(&again_h), 11);
	timers_run(&again_h, 11);
	assert_int_equal(again_runs, 2);
	timer_del(&again_h, &t);
	timers_free(&again_h);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_heap), cmocka_unit_test(test_no_spin) };

	return cmocka_run_group_tests(tests, NULL, NULL);
}
