/* Unit tests for relay_dsn: RFC 3461 notify rules and RFC 3464 layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay_dsn.h"

struct wanted_case {
	const char *name;
	enum relay_dsn_action action;
	unsigned notify;
	const char *sender;
	bool want;
};

static const struct wanted_case wanted_cases[] = {
	{ "rfc3461_5.2.6_failed_notify_absent", RELAY_DSN_FAILED, 0,
	    "a@b.example", true },
	{ "rfc3461_5.2.6_failed_notify_failure", RELAY_DSN_FAILED,
	    RELAY_DSN_NOTIFY_FAILURE, "a@b.example", true },
	{ "rfc3461_5.2.6_failed_notify_delay_only", RELAY_DSN_FAILED,
	    RELAY_DSN_NOTIFY_DELAY, "a@b.example", false },
	{ "rfc3461_5.2.6_failed_notify_never", RELAY_DSN_FAILED,
	    RELAY_DSN_NOTIFY_NEVER, "a@b.example", false },
	{ "rfc3461_5.2.5_delayed_notify_absent", RELAY_DSN_DELAYED, 0,
	    "a@b.example", true },
	{ "rfc3461_5.2.5_delayed_notify_delay", RELAY_DSN_DELAYED,
	    RELAY_DSN_NOTIFY_DELAY | RELAY_DSN_NOTIFY_FAILURE, "a@b.example",
	    true },
	{ "rfc3461_5.2.5_delayed_notify_failure_only", RELAY_DSN_DELAYED,
	    RELAY_DSN_NOTIFY_FAILURE, "a@b.example", false },
	{ "rfc3461_5.2.5_delayed_notify_success_only", RELAY_DSN_DELAYED,
	    RELAY_DSN_NOTIFY_SUCCESS, "a@b.example", false },
	{ "rfc3461_6.1_no_dsn_to_null_sender_failed", RELAY_DSN_FAILED, 0, "",
	    false },
	{ "rfc3461_6.1_no_dsn_to_null_sender_delayed", RELAY_DSN_DELAYED, 0, "",
	    false },
};

static void
test_wanted(void **state)
{
	const struct wanted_case *c = *state;
	assert_int_equal(relay_dsn_wanted(c->action, c->notify, c->sender),
	    c->want);
}

static const char original[] = "From: Alice <alice@sender.example>\r\n"
                               "To: bob@dest.example\r\n"
                               "Subject: hello\r\n"
                               "Message-ID: <m1@sender.example>\r\n"
                               "\r\n"
                               "secret body line\r\n"
                               ".leading dot\n";

static char *
compose(enum relay_dsn_action action, bool ret_full, const char *diag)
{
	struct relay_dsn_msg m = {
		.reporting_mta = "relay.example",
		.queue_id = "0123456789ABC",
		.envid = "env-1",
		.sender = "alice@sender.example",
		.arrival = 1700000000,
		.now = 1700003600,
		.ret_full = ret_full,
		.original = (const uint8_t *)original,
		.original_len = sizeof(original) - 1,
	};
	struct relay_dsn_rcpt r[2] = {
		{ .address = "bob@dest.example",
		    .orcpt = "rfc822;bob@dest.example",
		    .action = action,
		    .status = "4.7.5",
		    .remote_mta = "mx.dest.example",
		    .diagnostic = diag,
		    .domain = "dest.example",
		    .reason =
		        "the server's certificate does not match its TLSA records",
		    .last_attempt = 1700003500,
		    .will_retry_until = 1700432000 },
		{ .address = "carol@dest.example",
		    .action = action,
		    .status = "4.4.1",
		    .domain = "dest.example",
		    .reason = "connection refused" },
	};
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(relay_dsn_compose(&m, r, 2, &out, &len), RELAY_DSN_OK);
	char *s = malloc(len + 1);
	assert_non_null(s);
	memcpy(s, out, len);
	s[len] = '\0';
	free(out);
	/* Every line ends in CRLF: no bare LF anywhere. */
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\n')
			assert_true(i > 0 && s[i - 1] == '\r');
	return s;
}

static void
test_failed_layout(void **state)
{
	(void)state;
	char *s = compose(RELAY_DSN_FAILED, false, "550 5.7.1 no thanks");
	assert_non_null(strstr(s,
	    "Content-Type: multipart/report; report-type=delivery-status;"));
	assert_non_null(strstr(s, "Content-Type: message/delivery-status\r\n"));
	assert_non_null(strstr(s, "Reporting-MTA: dns; relay.example\r\n"));
	assert_non_null(strstr(s, "Original-Envelope-Id: env-1\r\n"));
	assert_non_null(strstr(s,
	    "Final-Recipient: rfc822; bob@dest.example\r\nAction: failed\r\nStatus: 4.7.5\r\n"));
	assert_non_null(
	    strstr(s, "Original-Recipient: rfc822;bob@dest.example\r\n"));
	assert_non_null(strstr(s,
	    "Final-Recipient: rfc822; carol@dest.example\r\nAction: failed\r\nStatus: 4.4.1\r\n"));
	assert_non_null(
	    strstr(s, "Diagnostic-Code: smtp; 550 5.7.1 no thanks\r\n"));
	assert_non_null(strstr(s, "Remote-MTA: dns; mx.dest.example\r\n"));
	assert_non_null(
	    strstr(s, "Subject: Undelivered Mail Returned to Sender\r\n"));
	assert_non_null(
	    strstr(s, "delivery to the domain dest.example failed"));
	/* RET absent: headers only, the body stays private. */
	assert_non_null(strstr(s, "Content-Type: text/rfc822-headers\r\n"));
	assert_non_null(strstr(s, "Subject: hello\r\n"));
	assert_null(strstr(s, "secret body line"));
	assert_null(strstr(s, "Will-Retry-Until"));
	free(s);
}

static void
test_failed_ret_full(void **state)
{
	(void)state;
	char *s = compose(RELAY_DSN_FAILED, true, NULL);
	assert_non_null(strstr(s, "Content-Type: message/rfc822\r\n"));
	assert_non_null(strstr(s, "secret body line\r\n"));
	/* A bare LF in the original comes out as CRLF. */
	assert_non_null(strstr(s, ".leading dot\r\n"));
	assert_null(strstr(s, "Diagnostic-Code"));
	free(s);
}

static void
test_delayed_layout(void **state)
{
	(void)state;
	char *s = compose(RELAY_DSN_DELAYED, true, "TLSA mismatch");
	assert_non_null(strstr(s, "Action: delayed\r\n"));
	assert_null(strstr(s, "Action: failed"));
	assert_non_null(
	    strstr(s, "Subject: Delayed Mail (still being retried)\r\n"));
	assert_non_null(strstr(s, "Will-Retry-Until: "));
	assert_non_null(
	    strstr(s, "delivery to the domain dest.example is delayed"));
	assert_non_null(
	    strstr(s, "Diagnostic-Code: x-danerelay; TLSA mismatch\r\n"));
	/* A warning never returns the body, even with RET=FULL. */
	assert_null(strstr(s, "secret body line"));
	free(s);
}

static void
test_header_injection(void **state)
{
	(void)state;
	char *s = compose(RELAY_DSN_FAILED, false,
	    "550 evil\r\nBcc: victim@example.org\r\n\x01tail");
	assert_null(strstr(s, "\r\nBcc:"));
	assert_non_null(strstr(s,
	    "Diagnostic-Code: smtp; 550 evil Bcc: victim@example.org ?tail\r\n"));
	free(s);
}

static void
test_rejects_bad_input(void **state)
{
	(void)state;
	struct relay_dsn_msg m = { .reporting_mta = "r",
		.queue_id = "q",
		.sender = "" };
	struct relay_dsn_rcpt r[2] = { { .address = "a@b",
		                           .action = RELAY_DSN_FAILED },
		{ .address = "c@d", .action = RELAY_DSN_DELAYED } };
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(relay_dsn_compose(&m, r, 1, &out, &len),
	    RELAY_DSN_EINVAL);
	m.sender = "x@y";
	assert_int_equal(relay_dsn_compose(&m, r, 2, &out, &len),
	    RELAY_DSN_EINVAL);
	assert_int_equal(relay_dsn_compose(&m, r, 0, &out, &len),
	    RELAY_DSN_EINVAL);
	assert_null(out);
}

int
main(void)
{
	enum {
		NW = sizeof(wanted_cases) / sizeof(wanted_cases[0])
	};
	struct CMUnitTest tests[NW + 5];
	size_t n = 0;
	for (size_t i = 0; i < NW; i++) {
		tests[n] =
		    (struct CMUnitTest)cmocka_unit_test_prestate(test_wanted,
		        (void *)&wanted_cases[i]);
		tests[n].name = wanted_cases[i].name;
		n++;
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_failed_layout);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_failed_ret_full);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_delayed_layout);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_header_injection);
	tests[n++] =
	    (struct CMUnitTest)cmocka_unit_test(test_rejects_bad_input);
	return _cmocka_run_group_tests("relay_dsn", tests, n, NULL, NULL);
}
