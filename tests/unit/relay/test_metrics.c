/*
 * Unit tests for relay_metrics: increments and the text exposition format
 * 0.0.4 (HELP/TYPE lines, label escaping, cumulative histogram buckets
 * ending in +Inf, _sum and _count, sparse delivery series), and how long a
 * render of every series takes (printed, not asserted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "relay_metrics.h"

static const char *const classes[] = { "", "dns-lookup", "tlsa-mismatch",
	"connect" };

static char *
render(const struct relay_metrics *m, const struct relay_metrics_gauges *g)
{
	size_t n = relay_metrics_render(m, g, NULL, 0);
	char *buf = malloc(n + 1);
	assert_non_null(buf);
	assert_int_equal(relay_metrics_render(m, g, buf, n + 1), n);
	assert_int_equal(strlen(buf), n);
	return buf;
}

/* The whole line "line\n" is in text. */
static bool
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void
test_escape_label(void **state)
{
	char buf[64];
	(void)state;

	assert_int_equal(relay_metrics_escape_label("plain", buf, sizeof(buf)),
	    5);
	assert_string_equal(buf, "plain");
	/* Backslash, double quote, line feed: \\, \", \n. */
	assert_int_equal(relay_metrics_escape_label("a\\b\"c\nd", buf,
	                     sizeof(buf)),
	    10);
	assert_string_equal(buf, "a\\\\b\\\"c\\nd");
	/* Cut to fit, NUL-terminated, full length returned. */
	assert_int_equal(relay_metrics_escape_label("\"\"\"", buf, 4), 6);
	assert_string_equal(buf, "\\\"\\");
}

static void
test_routing_kind_escaped(void **state)
{
	struct relay_metrics m;
	struct relay_metrics_gauges g = { 0 };
	(void)state;

	relay_metrics_init(&m, classes, 4);
	relay_metrics_routing_change(&m, "mx \"changed\"\\x\n");
	relay_metrics_routing_change(&m, "mx \"changed\"\\x\n");
	relay_metrics_routing_change(&m, "tlsa");
	char *t = render(&m, &g);
	assert_true(has_line(t,
	    "danerelay_routing_changes_total{kind=\"mx \\\"changed\\\"\\\\x\\n\"} 2"));
	assert_true(
	    has_line(t, "danerelay_routing_changes_total{kind=\"tlsa\"} 1"));
	free(t);
}

static void
test_routing_family_when_zero(void **state)
{
	struct relay_metrics m;
	struct relay_metrics_gauges g = { 0 };
	(void)state;

	relay_metrics_init(&m, classes, 4);
	char *t = render(&m, &g);
	assert_true(
	    has_line(t, "# TYPE danerelay_routing_changes_total counter"));
	assert_non_null(strstr(t, "# HELP danerelay_routing_changes_total "));
	assert_null(strstr(t, "danerelay_routing_changes_total{"));
	/* The other fixed families show their zeros. */
	assert_true(has_line(t,
	    "danerelay_dane_results_total{result=\"tlsa-invalid\"} 0"));
	assert_true(has_line(t,
	    "danerelay_dns_lookups_total{type=\"TLSA\",status=\"bogus\"} 0"));
	assert_true(has_line(t, "danerelay_connection_reuses_total 0"));
	/* No delivery was counted: no delivery sample. */
	assert_null(strstr(t, "danerelay_deliveries_total{"));
	free(t);
}

static void
test_routing_kinds_overflow(void **state)
{
	struct relay_metrics m;
	struct relay_metrics_gauges g = { 0 };
	char kind[16];
	(void)state;

	relay_metrics_init(&m, classes, 4);
	for (int i = 0; i < RELAY_METRICS_ROUTING_KINDS + 3; i++) {
		snprintf(kind, sizeof(kind), "k%d", i);
		relay_metrics_routing_change(&m, kind);
	}
	char *t = render(&m, &g);
	assert_true(
	    has_line(t, "danerelay_routing_changes_total{kind=\"k0\"} 1"));
	assert_true(
	    has_line(t, "danerelay_routing_changes_total{kind=\"other\"} 3"));
	free(t);
}

static void
test_histogram(void **state)
{
	struct relay_metrics m;
	struct relay_metrics_gauges g = { 0 };
	(void)state;

	relay_metrics_init(&m, classes, 4);
	relay_metrics_latency(&m, 50000);       /* exactly 0.05: le="0.05" */
	relay_metrics_latency(&m, 50001);       /* le="0.1" */
	relay_metrics_latency(&m, 2000000);     /* le="2.5" */
	relay_metrics_latency(&m, 3600000000u); /* le="3600" */
	relay_metrics_latency(&m, 7200000000u); /* only +Inf */
	char *t = render(&m, &g);
	static const char *const want[] = {
		"danerelay_delivery_latency_seconds_bucket{le=\"0.05\"} 1",
		"danerelay_delivery_latency_seconds_bucket{le=\"0.1\"} 2",
		"danerelay_delivery_latency_seconds_bucket{le=\"0.25\"} 2",
		"danerelay_delivery_latency_seconds_bucket{le=\"1\"} 2",
		"danerelay_delivery_latency_seconds_bucket{le=\"2.5\"} 3",
		"danerelay_delivery_latency_seconds_bucket{le=\"1800\"} 3",
		"danerelay_delivery_latency_seconds_bucket{le=\"3600\"} 4",
		"danerelay_delivery_latency_seconds_bucket{le=\"+Inf\"} 5",
		"danerelay_delivery_latency_seconds_sum 10802.100001",
		"danerelay_delivery_latency_seconds_count 5",
		"# TYPE danerelay_delivery_latency_seconds histogram",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!has_line(t, want[i]))
			fail_msg("missing line: %s\n%s", want[i], t);
	}
	/* Buckets are cumulative: never decreasing, in le order, +Inf
	 * last, then _sum and _count. */
	const char *p = strstr(t, "_bucket{le=\"0.05\"}");
	uint64_t last = 0;
	int nb = 0;
	while (p != NULL && strncmp(p, "_bucket", 7) == 0) {
		const char *sp = strchr(p, ' ');
		uint64_t v = strtoull(sp + 1, NULL, 10);
		assert_true(v >= last);
		last = v;
		nb++;
		p = strchr(p, '\n') + 1 +
		    strlen("danerelay_delivery_latency_seconds");
	}
	assert_int_equal(nb, RELAY_METRICS_LATENCY_BUCKETS + 1);
	assert_true(strncmp(p, "_sum ", 5) == 0);
	free(t);
}

static void
test_deliveries_and_results(void **state)
{
	struct relay_metrics m;
	struct relay_metrics_gauges g = {
		.queue_active = 1,
		.queue_deferred = 2,
		.queue_hold = 3,
		.oldest_age_s = 12.5,
		.selftest_ok = true,
		.selftest_last_success_s = 1700000000.25,
	};
	(void)state;

	relay_metrics_init(&m, classes, 4);
	relay_metrics_delivery(&m, RELAY_METRICS_SENT, "dane-ee", 0);
	relay_metrics_delivery(&m, RELAY_METRICS_SENT, "dane-ee", 0);
	relay_metrics_delivery(&m, RELAY_METRICS_SENT, "", 0);
	relay_metrics_delivery(&m, RELAY_METRICS_DEFERRED, "none", 2);
	relay_metrics_delivery(&m, RELAY_METRICS_BOUNCED, "may", 99);
	relay_metrics_delivery(&m, RELAY_METRICS_SENT, "weird", 0);
	relay_metrics_delivery(NULL, RELAY_METRICS_SENT, "may", 0);
	relay_metrics_dane_result(&m, "success");
	relay_metrics_dane_result(&m, "certificate-host-mismatch");
	relay_metrics_dane_result(&m, "certificate-host-mismatch");
	relay_metrics_dane_result(&m, "no-such-type");
	relay_metrics_dns(&m, 52, RELAY_METRICS_DNSSEC_SECURE);
	relay_metrics_dns(&m, 15, RELAY_METRICS_DNSSEC_BOGUS);
	relay_metrics_dns(&m, 99, RELAY_METRICS_DNSSEC_INSECURE);
	relay_metrics_tls_handshake(&m, RELAY_METRICS_HANDSHAKE_OK);
	relay_metrics_tls_handshake(&m, RELAY_METRICS_HANDSHAKE_FAILED);
	relay_metrics_tls_handshake(&m, RELAY_METRICS_HANDSHAKE_FAILED);
	relay_metrics_connection_reuse(&m);
	char *t = render(&m, &g);
	static const char *const want[] = {
		"danerelay_deliveries_total{outcome=\"sent\",tls=\"dane-ee\",class=\"none\"} 2",
		"danerelay_deliveries_total{outcome=\"sent\",tls=\"none\",class=\"none\"} 1",
		"danerelay_deliveries_total{outcome=\"deferred\",tls=\"none\",class=\"tlsa-mismatch\"} 1",
		"danerelay_deliveries_total{outcome=\"bounced\",tls=\"may\",class=\"unknown\"} 1",
		"danerelay_deliveries_total{outcome=\"sent\",tls=\"other\",class=\"none\"} 1",
		"danerelay_dane_results_total{result=\"success\"} 1",
		"danerelay_dane_results_total{result=\"certificate-host-mismatch\"} 2",
		"danerelay_dane_results_total{result=\"sts-policy-invalid\"} 0",
		"danerelay_dns_lookups_total{type=\"TLSA\",status=\"secure\"} 1",
		"danerelay_dns_lookups_total{type=\"MX\",status=\"bogus\"} 1",
		"danerelay_dns_lookups_total{type=\"other\",status=\"insecure\"} 1",
		"danerelay_tls_handshakes_total{result=\"ok\"} 1",
		"danerelay_tls_handshakes_total{result=\"failed\"} 2",
		"danerelay_connection_reuses_total 1",
		"danerelay_queue_messages{state=\"active\"} 1",
		"danerelay_queue_messages{state=\"deferred\"} 2",
		"danerelay_queue_messages{state=\"hold\"} 3",
		"danerelay_queue_oldest_age_seconds 12.500",
		"danerelay_dnssec_selftest_ok 1",
		"danerelay_dnssec_selftest_last_success_timestamp_seconds 1700000000.250",
		"# TYPE danerelay_deliveries_total counter",
		"# TYPE danerelay_queue_messages gauge",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!has_line(t, want[i]))
			fail_msg("missing line: %s\n%s", want[i], t);
	}
	assert_null(strstr(t, "no-such-type"));
	/* Exactly five delivery series: only combinations seen. */
	int nd = 0;
	for (const char *p = t;
	     (p = strstr(p, "\ndanerelay_deliveries_total{")); p++)
		nd++;
	assert_int_equal(nd, 5);
	/* Every family has HELP then TYPE, every line ends in LF. */
	assert_int_equal(t[strlen(t) - 1], '\n');
	int nhelp = 0, ntype = 0;
	for (const char *p = t; (p = strstr(p, "# HELP ")); p++)
		nhelp++;
	for (const char *p = t; (p = strstr(p, "# TYPE ")); p++)
		ntype++;
	assert_int_equal(nhelp, 11);
	assert_int_equal(ntype, 11);
	free(t);
}

/* A buffer too small gets a cut, NUL-terminated text and the full
 * length, as snprintf does. */
static void
test_render_truncates(void **state)
{
	struct relay_metrics m;
	struct relay_metrics_gauges g = { 0 };
	char small[100];
	(void)state;

	relay_metrics_init(&m, classes, 4);
	size_t full = relay_metrics_render(&m, &g, NULL, 0);
	assert_true(full > sizeof(small));
	assert_int_equal(relay_metrics_render(&m, &g, small, sizeof(small)),
	    full);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* Every series populated (the largest text): size and render time. */
static void
test_render_cost(void **state)
{
	static struct relay_metrics m;
	struct relay_metrics_gauges g = { .oldest_age_s = 1e6 };
	static const char *const many[RELAY_METRICS_CLASS_MAX] = {
		"",
		"a-long-failure-class-name-01",
		"c2",
		"c3",
		"c4",
		"c5",
		"c6",
		"c7",
		"c8",
		"c9",
		"c10",
		"c11",
		"c12",
		"c13",
		"c14",
		"c15",
		"c16",
		"c17",
		"c18",
		"c19",
		"c20",
		"c21",
		"c22",
		"c23",
		"c24",
		"c25",
		"c26",
		"c27",
		"c28",
		"c29",
		"c30",
		"c31",
	};
	static const char *const tls[] = { "none", "may", "encrypt", "verified",
		"dane-ee", "dane-ta", "x" };
	(void)state;

	relay_metrics_init(&m, many, RELAY_METRICS_CLASS_MAX);
	for (int o = 0; o < RELAY_METRICS_OUTCOME_COUNT; o++)
		for (size_t t = 0; t < 7; t++)
			for (unsigned c = 0; c < RELAY_METRICS_CLASS_MAX; c++)
				relay_metrics_delivery(&m,
				    (enum relay_metrics_outcome)o, tls[t], c);
	for (int i = 0; i < RELAY_METRICS_ROUTING_KINDS + 1; i++) {
		char k[32];
		snprintf(k, sizeof(k), "kind-%d", i);
		relay_metrics_routing_change(&m, k);
	}
	size_t n = relay_metrics_render(&m, &g, NULL, 0);
	char *buf = malloc(n + 1);
	assert_non_null(buf);
	struct timespec a, b;
	const int rounds = 200;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < rounds; i++)
		assert_int_equal(relay_metrics_render(&m, &g, buf, n + 1), n);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 +
	                (double)(b.tv_nsec - a.tv_nsec)) /
	    1e3 / rounds;
	/* 3 x 7 x 32 delivery series, every other family in full. */
	printf("# render, every series populated: %zu bytes, %.1f us\n", n, us);
	assert_true(n < 256 * 1024);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_label),
		cmocka_unit_test(test_routing_kind_escaped),
		cmocka_unit_test(test_routing_family_when_zero),
		cmocka_unit_test(test_routing_kinds_overflow),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_deliveries_and_results),
		cmocka_unit_test(test_render_truncates),
		cmocka_unit_test(test_render_cost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
