/*
 * Unit tests for relay_clock: the manual clock moves only when told, a
 * wall-clock step leaves the monotonic reading alone, the helpers convert
 * and round as documented, and the system clock's readings behave.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "relay_clock.h"

static void
test_manual_stands_still(void **state)
{
	(void)state;
	struct relay_clock_manual m;
	relay_clock_manual_init(&m, 5000000u, 1732288081123456u);
	const struct relay_clock *c = &m.clock;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(relay_clock_mono_us(c), 5000000u);
		assert_int_equal(relay_clock_wall_us(c), 1732288081123456u);
	}
	assert_int_equal(relay_clock_mono_ms(c), 5000u);
	assert_int_equal(relay_clock_wall_s(c), 1732288081);
}

static void
test_manual_advance_and_step(void **state)
{
	(void)state;
	struct relay_clock_manual m;
	relay_clock_manual_init(&m, 0, 1000000000000000u);
	relay_clock_manual_advance(&m, 2500000u);
	assert_int_equal(relay_clock_mono_us(&m.clock), 2500000u);
	assert_int_equal(relay_clock_wall_us(&m.clock), 1000000002500000u);
	/* An operator sets the date back an hour: only the wall reading
	 * moves, so timers measured on the monotonic one are unaffected. */
	relay_clock_manual_set_wall(&m, 1000000002500000u - 3600000000u);
	assert_int_equal(relay_clock_mono_us(&m.clock), 2500000u);
	assert_int_equal(relay_clock_wall_us(&m.clock),
	    1000000002500000u - 3600000000u);
	relay_clock_manual_advance(&m, 1u);
	assert_int_equal(relay_clock_mono_us(&m.clock), 2500001u);
}

/* relay_clock_until_ms: rounds up, never negative. */
static void
test_until_ms(void **state)
{
	(void)state;
	static const struct {
		uint64_t now, at, ms;
	} cases[] = {
		{ 1000, 1000, 0 }, /* due now */
		{ 5000, 1000, 0 }, /* past */
		{ 1000, 1001, 1 }, /* 1 us away: a whole ms, not 0 */
		{ 1000, 2000, 1 },
		{ 1000, 2001, 2 },
		{ 0, 60000000, 60000 },
		{ UINT64_MAX - 1, UINT64_MAX, 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(relay_clock_until_ms(cases[i].now,
		                     cases[i].at),
		    cases[i].ms);
}

static void
test_system(void **state)
{
	(void)state;
	const struct relay_clock *c = relay_clock_system();
	assert_non_null(c);
	assert_ptr_equal(c, relay_clock_system());
	uint64_t m1 = relay_clock_mono_us(c);
	uint64_t m2 = relay_clock_mono_us(c);
	assert_true(m2 >= m1);
	/* After 2020-01-01 and before 2100-01-01: a wall clock, not uptime. */
	assert_true(relay_clock_wall_s(c) > 1577836800);
	assert_true(relay_clock_wall_s(c) < 4102444800);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manual_stands_still),
		cmocka_unit_test(test_manual_advance_and_step),
		cmocka_unit_test(test_until_ms),
		cmocka_unit_test(test_system),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
