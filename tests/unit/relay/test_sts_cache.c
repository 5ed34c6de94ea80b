/*
 * relay_sts's cache rules on a manual clock (relay_clock.h): when a cached
 * policy is used, refreshed in the background, trusted as "no policy" or
 * as a failure, or waited for (RFC 8461 3.2 max_age, 5.1 step 1), and the
 * on-disk form of a cached policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay_clock.h"
#include "relay_sts.h"

#define S 1000000ull       /* microseconds */
#define CHECK_MS 600000ull /* mta_sts_check_interval: 10 minutes */

static enum relay_sts_action
decide(const struct relay_sts_state *st, const struct relay_clock_manual *m)
{
	return relay_sts_decide(st, (uint64_t)relay_clock_wall_s(&m->clock),
	    relay_clock_mono_us(&m->clock), CHECK_MS);
}

/* A policy fetched now with max_age 3600 s. */
static struct relay_sts_state
fetched_now(const struct relay_clock_manual *m)
{
	return (struct relay_sts_state){
		.have_policy = true,
		.expires_wall_s =
		    (uint64_t)relay_clock_wall_s(&m->clock) + 3600,
		.checked = true,
		.checked_mono_us = relay_clock_mono_us(&m->clock),
		.last = RELAY_STS_OUTCOME_NONE,
	};
}

static void
test_unknown_domain_waits(void **state)
{
	(void)state;
	struct relay_clock_manual m;
	relay_clock_manual_init(&m, 5 * S, 1700000000 * S);
	struct relay_sts_state st = { 0 };
	assert_int_equal(decide(&st, &m), RELAY_STS_WAIT);
}

static void
test_policy_lifetime(void **state)
{
	(void)state;
	struct relay_clock_manual m;
	relay_clock_manual_init(&m, 5 * S, 1700000000 * S);
	struct relay_sts_state st = fetched_now(&m);
	assert_int_equal(decide(&st, &m), RELAY_STS_USE_POLICY);
	/* Within the check interval: used as is. */
	relay_clock_manual_advance(&m, CHECK_MS * 1000 - 1);
	assert_int_equal(decide(&st, &m), RELAY_STS_USE_POLICY);
	/* After it: still used, and the TXT id is checked beside it. */
	relay_clock_manual_advance(&m, 1);
	assert_int_equal(decide(&st, &m), RELAY_STS_USE_POLICY_REFRESH);
	/* A refresh that failed keeps the policy until max_age (3.2). */
	st.checked_mono_us = relay_clock_mono_us(&m.clock);
	st.last = RELAY_STS_OUTCOME_FAILED;
	assert_int_equal(decide(&st, &m), RELAY_STS_USE_POLICY);
	/* max_age over: nothing is used, the caller waits for a fetch. */
	relay_clock_manual_advance(&m, 3600 * S);
	assert_int_equal(decide(&st, &m), RELAY_STS_WAIT);
}

static void
test_expiry_follows_the_wall_clock(void **state)
{
	(void)state;
	/* max_age is wall time (it survives restarts on disk): a wall clock
	 * set forward past it expires the policy though little monotonic
	 * time passed. */
	struct relay_clock_manual m;
	relay_clock_manual_init(&m, 5 * S, 1700000000 * S);
	struct relay_sts_state st = fetched_now(&m);
	relay_clock_manual_set_wall(&m, (1700000000ull + 3600) * S);
	assert_int_equal(decide(&st, &m), RELAY_STS_WAIT);
}

static void
test_no_policy_and_failure(void **state)
{
	(void)state;
	struct relay_clock_manual m;
	relay_clock_manual_init(&m, 5 * S, 1700000000 * S);
	struct relay_sts_state st = {
		.checked = true,
		.checked_mono_us = relay_clock_mono_us(&m.clock),
		.last = RELAY_STS_OUTCOME_NONE,
	};
	/* "No policy" is trusted for the check interval. */
	relay_clock_manual_advance(&m, CHECK_MS * 1000 - 1);
	assert_int_equal(decide(&st, &m), RELAY_STS_USE_LAST);
	relay_clock_manual_advance(&m, 1);
	assert_int_equal(decide(&st, &m), RELAY_STS_WAIT);
	/* A failure (bogus TXT) only for RELAY_STS_FAILED_RECHECK_MS. */
	st.checked_mono_us = relay_clock_mono_us(&m.clock);
	st.last = RELAY_STS_OUTCOME_FAILED;
	relay_clock_manual_advance(&m,
	    RELAY_STS_FAILED_RECHECK_MS * 1000ull - 1);
	assert_int_equal(decide(&st, &m), RELAY_STS_USE_LAST);
	relay_clock_manual_advance(&m, 1);
	assert_int_equal(decide(&st, &m), RELAY_STS_WAIT);
}

static int
cache_parse(const char *s, char *id, uint64_t *fetched,
    struct relay_sts_policy *p)
{
	size_t n = strlen(s);
	uint8_t *b = malloc(n ? n : 1);
	assert_non_null(b);
	memcpy(b, s, n);
	int r = relay_sts_cache_parse(b, n, id, fetched, p);
	free(b);
	return r;
}

static void
test_cache_file(void **state)
{
	(void)state;
	char id[RELAY_STS_ID_MAX + 1];
	uint64_t fetched = 0;
	struct relay_sts_policy p;
	assert_int_equal(
	    cache_parse("id 20160831085700Z\nfetched 1700000000\n\n"
	                "version: STSv1\nmode: enforce\n"
	                "mx: *.example.net\nmax_age: 604800\n",
	        id, &fetched, &p),
	    0);
	assert_string_equal(id, "20160831085700Z");
	assert_int_equal(fetched, 1700000000);
	assert_int_equal(p.mode, RELAY_STS_MODE_ENFORCE);
	assert_string_equal(p.mx[0], "*.example.net");
	static const char *const bad[] = {
		"",
		"id \nfetched 1\n\nversion: STSv1\nmode: none\nmax_age: 1\n",
		"id a-b\nfetched 1\n\nversion: STSv1\nmode: none\nmax_age: 1\n",
		"id a\nfetched\n\nversion: STSv1\nmode: none\nmax_age: 1\n",
		"id a\nfetched 1\nversion: STSv1\nmode: none\nmax_age: 1\n",
		"id a\nfetched 1\n\nversion: STSv1\nmode: enforce\nmax_age: 1\n",
		"id a\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cache_parse(bad[i], id, &fetched, &p) == 0)
			fail_msg("bad cache file %zu accepted", i);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_domain_waits),
		cmocka_unit_test(test_policy_lifetime),
		cmocka_unit_test(test_expiry_follows_the_wall_clock),
		cmocka_unit_test(test_no_policy_and_failure),
		cmocka_unit_test(test_cache_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
