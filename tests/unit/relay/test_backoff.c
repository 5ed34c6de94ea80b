/*
 * Unit tests for relay_backoff: the retry delay (retry_min doubling up to
 * retry_max), the queue lifetime and the delay warning, table-driven, and
 * a deferred recipient's whole life in the queue driven by a manual clock
 * (relay_clock_manual): every attempt fails, the next one is due when the
 * backoff says, the warning comes once its time has passed, and the
 * message expires at arrival + max_queue_lifetime.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "relay_backoff.h"
#include "relay_clock.h"
#include "relay_config.h"

#define S 1000000u           /* one second in microseconds */
#define T0 1732288081000000u /* 2024-11-22T15:08:01Z */

static int
setup(void **state)
{
	static struct relay_config cfg;
	assert_int_equal(relay_config_init(&cfg), 0);
	*state = &cfg;
	return 0;
}

static int
teardown(void **state)
{
	relay_config_free(*state);
	return 0;
}

/* The defaults are Postfix's: 300s doubling to 4000s. */
static void
test_delay_table(void **state)
{
	struct relay_config *cfg = *state;
	static const struct {
		uint64_t min_ms, max_ms;
		uint32_t attempts;
		uint64_t want_s;
	} cases[] = {
		{ 300000, 4000000, 0, 300 }, /* no attempt counted yet */
		{ 300000, 4000000, 1, 300 }, { 300000, 4000000, 2, 600 },
		{ 300000, 4000000, 3, 1200 }, { 300000, 4000000, 4, 2400 },
		{ 300000, 4000000, 5, 4000 }, /* 4800 capped */
		{ 300000, 4000000, 6, 4000 },
		{ 300000, 4000000, 4000000000u, 4000 }, /* no overflow */
		{ 1000, 1000, 1, 1 }, { 1000, 1000, 9, 1 },
		{ 1000, 7 * 86400000u, 64, 7 * 86400 },
		{ 0, 0, 3, 1 }, /* never a tight loop */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cfg->retry_min_ms = cases[i].min_ms;
		cfg->retry_max_ms = cases[i].max_ms;
		assert_int_equal(relay_backoff_delay_us(cfg, cases[i].attempts),
		    cases[i].want_s * S);
		assert_int_equal(relay_backoff_next_us(cfg, cases[i].attempts,
		                     T0),
		    T0 + cases[i].want_s * S);
	}
}

static void
test_expiry_and_warning_edges(void **state)
{
	struct relay_config *cfg = *state;
	cfg->max_queue_lifetime_ms = 5 * 86400000u;
	cfg->delay_warning_time_ms = 4 * 3600000u;
	uint64_t end = T0 + 5 * 86400 * (uint64_t)S;

	assert_int_equal(relay_backoff_expires_us(cfg, T0), end);
	assert_false(relay_backoff_expired(cfg, T0, end - 1));
	assert_true(relay_backoff_expired(cfg, T0, end));
	assert_true(relay_backoff_expired(cfg, T0, end + 1));

	assert_false(relay_backoff_warn_due(cfg, T0, T0));
	assert_false(
	    relay_backoff_warn_due(cfg, T0, T0 + 4 * 3600 * (uint64_t)S - 1));
	assert_true(
	    relay_backoff_warn_due(cfg, T0, T0 + 4 * 3600 * (uint64_t)S));
	/* delay_warning_time = 0 turns the warning off. */
	cfg->delay_warning_time_ms = 0;
	assert_false(
	    relay_backoff_warn_due(cfg, T0, T0 + 365 * 86400 * (uint64_t)S));
	/* max_queue_lifetime = 0: the first temporary failure bounces. */
	cfg->max_queue_lifetime_ms = 0;
	assert_true(relay_backoff_expired(cfg, T0, T0));
}

/*
 * A recipient that always fails temporarily, from arrival to expiry, on a
 * clock that moves only when the test moves it: the scheduler's sequence
 * (attempt at a due time, record next_attempt, wait) without the loop.
 */
static void
test_life_in_queue(void **state)
{
	struct relay_config *cfg = *state;
	cfg->retry_min_ms = 300000;
	cfg->retry_max_ms = 4000000;
	cfg->max_queue_lifetime_ms = 86400000u; /* one day */
	cfg->delay_warning_time_ms = 3600000u;  /* one hour */

	struct relay_clock_manual mc;
	relay_clock_manual_init(&mc, 0, T0);
	const struct relay_clock *clock = &mc.clock;
	uint64_t arrival = relay_clock_wall_us(clock);
	uint32_t attempts = 0;
	int warned_at = -1;
	bool expired = false;
	static const uint64_t want_s[] = { 300, 600, 1200, 2400, 4000, 4000 };

	while (!expired) {
		uint64_t now = relay_clock_wall_us(clock);
		attempts++;
		if (warned_at < 0 && relay_backoff_warn_due(cfg, arrival, now))
			warned_at = (int)attempts;
		if (relay_backoff_expired(cfg, arrival, now)) {
			expired = true;
			break;
		}
		uint64_t next = relay_backoff_next_us(cfg, attempts, now);
		if (attempts <= sizeof(want_s) / sizeof(want_s[0]))
			assert_int_equal(next - now, want_s[attempts - 1] * S);
		/* Nothing is due before next: the wake-up is that far. */
		assert_int_equal(relay_clock_until_ms(now, next),
		    (next - now) / 1000);
		relay_clock_manual_advance(&mc, next - now);
		assert_true(attempts < 1000);
	}
	/* 300+600+1200+2400 = 4500s after four attempts; the fifth at 4500s
	 * (1h15m) is the first past the one-hour warning. */
	assert_int_equal(warned_at, 5);
	/* After 4500s, 4000s steps: 4500 + 20*4000 = 84500 < 86400 <= 88500,
	 * so attempts 1..25 failed and the 26th, at 88500s, expires. */
	assert_int_equal(attempts, 26);
	assert_int_equal(relay_clock_wall_us(clock) - arrival,
	    88500 * (uint64_t)S);
	assert_int_equal(relay_clock_mono_us(clock), 88500 * (uint64_t)S);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delay_table, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expiry_and_warning_edges,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_life_in_queue, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
