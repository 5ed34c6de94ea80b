/*
 * Unit tests for relay_control_status: the queue tally of `danerelay
 * status` (queues as `queue list` names them, deferred recipients by
 * failure class), the "KEY VALUE" pairs of the reply, and the time-boxed
 * exceptions it lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "danerelay_version.h"
#include "relay_control.h"

#define S 1000000ull
#define NOW (1795348800ull * S) /* 2026-11-22 12:00 UTC */

static void
must(int rc)
{
	assert_int_equal(rc, 0);
}

/* An envelope whose recipients have the given statuses and classes. */
static struct relay_queue_envelope *
env_with(bool hold, size_t n, const enum relay_queue_rcpt_status *st,
    const char *const *cls, uint64_t next_us)
{
	struct relay_queue_envelope *e = relay_queue_envelope_new();
	assert_non_null(e);
	e->hold = hold;
	e->arrival_us = NOW - 600 * S;
	for (size_t i = 0; i < n; i++) {
		struct relay_queue_rcpt *r;
		must(relay_queue_rcpt_add(e, "a@b.example", "", 0, &r));
		r->status = st[i];
		must(relay_queue_set_str(&r->failure_class, cls[i]));
		if (st[i] == RELAY_QUEUE_RCPT_DEFERRED) {
			r->attempts = 1;
			r->next_attempt_us = next_us;
		}
	}
	return e;
}

struct pairs {
	char text[8192];
	size_t len;
};

static void
collect(void *arg, const char *key, const char *value)
{
	struct pairs *p = arg;
	int w = snprintf(p->text + p->len, sizeof(p->text) - p->len, "%s %s\n",
	    key, value);
	assert_true(w > 0 && (size_t)w < sizeof(p->text) - p->len);
	p->len += (size_t)w;
}

static void
test_counts_and_pairs(void **state)
{
	(void)state;
	static const enum relay_queue_rcpt_status d2[] = {
		RELAY_QUEUE_RCPT_DEFERRED, RELAY_QUEUE_RCPT_DEFERRED
	};
	static const char *const c2[] = { "tlsa-mismatch", "dnssec-bogus" };
	static const enum relay_queue_rcpt_status mix[] = {
		RELAY_QUEUE_RCPT_SENT, RELAY_QUEUE_RCPT_PENDING,
		RELAY_QUEUE_RCPT_DEFERRED, RELAY_QUEUE_RCPT_BOUNCED
	};
	static const char *const cm[] = { "", "", "", "smtp-5xx" };
	static const enum relay_queue_rcpt_status d1[] = {
		RELAY_QUEUE_RCPT_DEFERRED
	};
	static const char *const c1[] = { "tlsa-mismatch" };
	struct relay_control_queue_counts q;
	memset(&q, 0, sizeof(q));
	q.now_us = NOW;

	/* deferred (a recipient waits for a retry in the future, as `queue
	 * list` calls it, even beside a pending one), active (only due
	 * recipients), hold. */
	struct relay_queue_envelope *e1 = env_with(false, 2, d2, c2, NOW + S);
	struct relay_queue_envelope *e2 = env_with(false, 4, mix, cm, NOW + S);
	struct relay_queue_envelope *e3 = env_with(true, 1, d1, c1, NOW + S);
	static const enum relay_queue_rcpt_status p1[] = {
		RELAY_QUEUE_RCPT_PENDING
	};
	static const char *const cp[] = { "" };
	struct relay_queue_envelope *e4 = env_with(false, 1, p1, cp, 0);
	relay_control_counts_add(&q, e1);
	relay_control_counts_add(&q, e2);
	relay_control_counts_add(&q, e3);
	relay_control_counts_add(&q, e4);
	assert_int_equal(q.messages, 4);
	assert_int_equal(q.deferred, 2);
	assert_int_equal(q.active, 1);
	assert_int_equal(q.hold, 1);
	assert_int_equal(q.recipients, 6); /* sent and bounced are final */
	assert_int_equal(q.deferred_recipients, 4);
	assert_int_equal(q.by_class[RELAY_FAIL_CLASS_TLSA_MISMATCH], 2);
	assert_int_equal(q.by_class[RELAY_FAIL_CLASS_DNSSEC_BOGUS], 1);
	assert_int_equal(q.by_class[RELAY_FAIL_CLASS_NONE], 1);
	assert_int_equal(q.by_class[RELAY_FAIL_CLASS_SMTP_5XX], 0);
	relay_queue_envelope_free(e1);
	relay_queue_envelope_free(e2);
	relay_queue_envelope_free(e3);
	relay_queue_envelope_free(e4);

	struct relay_control_daemon_info d = {
		.started_us = NOW - 3600 * S,
		.uptime_us = 3600 * S + 5,
		.selftest_state = "ok",
		.selftest_ran = true,
		.selftest_ok = true,
		.selftest_why = "secure",
		.selftest_us = NOW - 60 * S,
		.deliveries = 2,
		.destinations = 3,
		.connections_out = 1,
		.connections_in = 4,
		.connection_cache = 7,
	};
	q.unreadable.corrupt = 9;
	struct pairs p = { .len = 0 };
	relay_control_status_pairs(1234, &d, &q, collect, &p);
	char want[2048];
	(void)snprintf(want, sizeof(want),
	    "pid 1234\nversion %s\nstarted 1795345200\nuptime_s 3600\n"
	    "dns_selftest.state ok\ndns_selftest.last_result ok\n"
	    "dns_selftest.last_time 1795348740\ndns_selftest.why secure\n"
	    "deliveries.messages 2\ndeliveries.destinations 3\n"
	    "connections.outbound 1\nconnections.inbound 4\n"
	    "connection_cache 7\nqueue.messages 4\nqueue.active 1\n"
	    "queue.deferred 2\nqueue.hold 1\nqueue.recipients 6\n"
	    "queue.deferred_recipients 4\nqueue.class.none 1\n"
	    "queue.class.dnssec-bogus 1\nqueue.class.tlsa-mismatch 2\n"
	    "queue.unparsable 0\nqueue.corrupt 9\n",
	    DANERELAY_VERSION);
	assert_string_equal(p.text, want);
}

/* No self-test has finished yet. */
static void
test_pairs_no_selftest(void **state)
{
	(void)state;
	struct relay_control_queue_counts q;
	struct relay_control_daemon_info d;
	memset(&q, 0, sizeof(q));
	memset(&d, 0, sizeof(d));
	struct pairs p = { .len = 0 };
	relay_control_status_pairs(1, &d, &q, collect, &p);
	assert_non_null(strstr(p.text,
	    "dns_selftest.state unknown\ndns_selftest.last_result none\n"
	    "dns_selftest.last_time 0\ndns_selftest.why \n"));
}

static void
test_policy_exceptions(void **state)
{
	(void)state;
	const char pol[] =
	    "b.example may until=2026-11-25 reason=\"ticket 4711\"\n"
	    "a.example none until=2026-11-21 reason=expired\n"
	    "c.example encrypt\n"
	    "d.example none until=2026-11-22\n";
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX];
	memset(&cfg, 0, sizeof(cfg));
	must(relay_tls_policy_parse("/etc/p", (const uint8_t *)pol, strlen(pol),
	    &cfg.tls_policy, &cfg.tls_policy_count, err));
	struct pairs p = { .len = 0 };
	relay_control_policy_exceptions(&cfg, NOW, collect, &p);
	assert_string_equal(p.text,
	    "policy_exception b.example may 2026-11-25 3 /etc/p:1 ticket 4711\n"
	    "policy_exception d.example none 2026-11-22 0 /etc/p:4 \n");
	relay_tls_policy_free(cfg.tls_policy, cfg.tls_policy_count);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_and_pairs),
		cmocka_unit_test(test_pairs_no_selftest),
		cmocka_unit_test(test_policy_exceptions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
