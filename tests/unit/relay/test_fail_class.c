/*
 * Unit tests for relay_fail_class: the one name table of the failure
 * classes, and what keeps its spellings a contract.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay_fail_class.h"
#include "relay_metrics.h"
#include "relay_queue.h"
#include "relay_report.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The contract: every class and its spelling as logs (class=), JSON
 * (failure_class), envelopes (r.class, a.failure_class), `queue list
 * --class` and DSN prose have always written it. Operators' scripts and
 * envelopes already in spools depend on these exact strings: a change
 * here is a change of an external interface, not a refactoring.
 */
static const struct {
	enum relay_fail_class c;
	const char *name;
} contract[] = {
	{ RELAY_FAIL_CLASS_NONE, "" },
	{ RELAY_FAIL_CLASS_DNS_LOOKUP, "dns-lookup" },
	{ RELAY_FAIL_CLASS_DNSSEC_BOGUS, "dnssec-bogus" },
	{ RELAY_FAIL_CLASS_DNSSEC_SELFTEST, "dnssec-selftest" },
	{ RELAY_FAIL_CLASS_TLSA_LOOKUP, "tlsa-lookup" },
	{ RELAY_FAIL_CLASS_TLSA_INVALID, "tlsa-invalid" },
	{ RELAY_FAIL_CLASS_DANE_REQUIRED, "dane-required" },
	{ RELAY_FAIL_CLASS_NULL_MX, "null-mx" },
	{ RELAY_FAIL_CLASS_STARTTLS_MISSING, "starttls-missing" },
	{ RELAY_FAIL_CLASS_TLS_HANDSHAKE, "tls-handshake" },
	{ RELAY_FAIL_CLASS_TLSA_MISMATCH, "tlsa-mismatch" },
	{ RELAY_FAIL_CLASS_CERT_HOST_MISMATCH, "certificate-host-mismatch" },
	{ RELAY_FAIL_CLASS_CERT_EXPIRED, "certificate-expired" },
	{ RELAY_FAIL_CLASS_CERT_NOT_TRUSTED, "certificate-not-trusted" },
	{ RELAY_FAIL_CLASS_STS_MX_MISMATCH, "sts-mx-mismatch" },
	{ RELAY_FAIL_CLASS_STS_CERTIFICATE, "sts-certificate" },
	{ RELAY_FAIL_CLASS_STS_STARTTLS_MISSING, "sts-starttls-missing" },
	{ RELAY_FAIL_CLASS_STS_POLICY_FETCH, "sts-policy-fetch" },
	{ RELAY_FAIL_CLASS_CONNECT, "connect" },
	{ RELAY_FAIL_CLASS_TIMEOUT, "timeout" },
	{ RELAY_FAIL_CLASS_SMTP_4XX, "smtp-4xx" },
	{ RELAY_FAIL_CLASS_SMTP_5XX, "smtp-5xx" },
	{ RELAY_FAIL_CLASS_SMTP_PROTOCOL, "smtp-protocol" },
	{ RELAY_FAIL_CLASS_SMTPUTF8_MISSING, "smtputf8-missing" },
	{ RELAY_FAIL_CLASS_MESSAGE_SIZE, "message-size" },
	{ RELAY_FAIL_CLASS_REQUIRETLS, "requiretls" },
	{ RELAY_FAIL_CLASS_ADDRESS, "address" },
	{ RELAY_FAIL_CLASS_SHUTDOWN, "shutdown" },
	{ RELAY_FAIL_CLASS_LOCAL, "local" },
	{ RELAY_FAIL_CLASS_UNKNOWN, "unknown" },
};

/* The contract lists every value exactly once, with today's spelling. */
static void
test_contract(void **state)
{
	bool seen[RELAY_FAIL_CLASS_COUNT] = { false };
	(void)state;

	assert_int_equal(NELEM(contract), RELAY_FAIL_CLASS_COUNT);
	for (size_t i = 0; i < NELEM(contract); i++) {
		int c = (int)contract[i].c;
		assert_true(c >= 0 && c < RELAY_FAIL_CLASS_COUNT);
		assert_false(seen[c]);
		seen[c] = true;
		assert_string_equal(relay_fail_class_name(contract[i].c),
		    contract[i].name);
		assert_int_equal(relay_fail_class_parse(contract[i].name),
		    contract[i].c);
	}
}

/* Every class but NONE has a non-empty name of its own, and
 * parse(name(c)) == c. */
static void
test_names_unique(void **state)
{
	(void)state;

	assert_string_equal(relay_fail_class_name(RELAY_FAIL_CLASS_NONE), "");
	for (int i = 0; i < RELAY_FAIL_CLASS_COUNT; i++) {
		enum relay_fail_class c = (enum relay_fail_class)i;
		const char *n = relay_fail_class_name(c);
		assert_non_null(n);
		if (c != RELAY_FAIL_CLASS_NONE)
			assert_true(n[0] != '\0');
		/* One token: logs print it unquoted, envelopes unescaped. */
		for (const char *p = n; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') ||
			    (*p >= '0' && *p <= '9') || *p == '-');
		assert_int_equal(relay_fail_class_parse(n), c);
		for (int k = 0; k < i; k++)
			assert_string_not_equal(n,
			    relay_fail_class_name((enum relay_fail_class)k));
	}
}

static void
test_parse_edges(void **state)
{
	(void)state;

	assert_int_equal(relay_fail_class_parse(NULL), RELAY_FAIL_CLASS_NONE);
	assert_int_equal(relay_fail_class_parse(""), RELAY_FAIL_CLASS_NONE);
	/* Spellings are exact: no case folding, no trimming, no prefixes. */
	assert_int_equal(relay_fail_class_parse("no-such-class"),
	    RELAY_FAIL_CLASS_UNKNOWN);
	assert_int_equal(relay_fail_class_parse("TLSA-MISMATCH"),
	    RELAY_FAIL_CLASS_UNKNOWN);
	assert_int_equal(relay_fail_class_parse("connect "),
	    RELAY_FAIL_CLASS_UNKNOWN);
	assert_int_equal(relay_fail_class_parse("smtp-4"),
	    RELAY_FAIL_CLASS_UNKNOWN);
	assert_int_equal(relay_fail_class_parse("smtp-4xxx"),
	    RELAY_FAIL_CLASS_UNKNOWN);
}

/* The hint by spelling and by class agree; classes without a hint of their
 * own share the generic one. */
static void
test_hints_by_class(void **state)
{
	const char *generic =
	    relay_report_fail_class_hint(RELAY_FAIL_CLASS_UNKNOWN);
	(void)state;

	assert_ptr_equal(relay_report_fail_class_hint(RELAY_FAIL_CLASS_NONE),
	    generic);
	assert_ptr_equal(relay_report_class_hint("no-such-class"), generic);
	for (int i = 0; i < RELAY_FAIL_CLASS_COUNT; i++) {
		enum relay_fail_class c = (enum relay_fail_class)i;
		assert_ptr_equal(relay_report_class_hint(
		                     relay_fail_class_name(c)),
		    relay_report_fail_class_hint(c));
	}
	/* The port in the prose follows RELAY_SMTP_PORT. */
	assert_non_null(
	    strstr(relay_report_fail_class_hint(RELAY_FAIL_CLASS_TLSA_LOOKUP),
	        "_25._tcp"));
	assert_non_null(
	    strstr(relay_report_fail_class_hint(RELAY_FAIL_CLASS_CONNECT),
	        "port 25 "));
}

/*
 * A class this version does not know (written by another version) survives
 * parse and format of the envelope byte for byte: the spool is the source
 * of truth, and the envelope keeps the text, not the enum.
 */
static void
test_envelope_keeps_unknown(void **state)
{
	static const char text[] = "danerelay-queue 1\n"
	                           "id 064A1B2C3D4E5F\n"
	                           "arrival 1732288081123456\n"
	                           "size 10\n"
	                           "sender a@example.org\n"
	                           "envid \n"
	                           "client_addr 127.0.0.1\n"
	                           "client_name localhost\n"
	                           "helo localhost\n"
	                           "ret none\n"
	                           "body 7bit\n"
	                           "content_8bit no\n"
	                           "smtputf8 no\n"
	                           "requiretls no\n"
	                           "hold no\n"
	                           "delay_warned no\n"
	                           "origin smtp\n"
	                           "rcpt b@example.net\n"
	                           "r.orcpt \n"
	                           "r.dsn 4.7.5\n"
	                           "r.reason why\n"
	                           "r.class mta-sts-policy-invalid\n"
	                           "r.notify \n"
	                           "r.status deferred\n"
	                           "r.attempts 1\n"
	                           "r.next_attempt 0\n"
	                           "r.delay_warned no\n"
	                           "attempt 1732288090000000\n"
	                           "a.mx_host \n"
	                           "a.addr \n"
	                           "a.dnssec_mx \n"
	                           "a.dnssec_addr \n"
	                           "a.dnssec_tlsa \n"
	                           "a.tlsa \n"
	                           "a.tls \n"
	                           "a.peer_spki \n"
	                           "a.peer_names \n"
	                           "a.matched \n"
	                           "a.reply \n"
	                           "a.dsn 4.7.5\n"
	                           "a.status deferred\n"
	                           "a.failure_class mta-sts-policy-invalid\n"
	                           "a.reason why\n"
	                           "a.policy dane\n"
	                           "a.policy_entry \n"
	                           "a.routing_change \n"
	                           "a.hint \n"
	                           "end\n";
	struct relay_queue_envelope *env = NULL;
	size_t len = 0;
	(void)state;

	assert_int_equal(relay_queue_envelope_parse((const uint8_t *)text,
	                     sizeof(text) - 1, &env),
	    0);
	assert_string_equal(env->rcpt[0].failure_class,
	    "mta-sts-policy-invalid");
	assert_int_equal(relay_fail_class_parse(env->rcpt[0].failure_class),
	    RELAY_FAIL_CLASS_UNKNOWN);
	char *out = relay_queue_envelope_format(env, &len);
	assert_non_null(out);
	assert_int_equal(len, sizeof(text) - 1);
	assert_memory_equal(out, text, len);
	free(out);
	relay_queue_envelope_free(env);
}

/*
 * The RFC 8460 4.3 result type of every class: the TLS and DANE failures
 * have one, everything else (DNS without a DANE policy, SMTP, connection,
 * this relay) has none.
 */
static const struct {
	enum relay_fail_class c;
	const char *result; /* NULL: not a TLS/DANE negotiation failure */
} tlsrpt[] = {
	{ RELAY_FAIL_CLASS_NONE, NULL },
	{ RELAY_FAIL_CLASS_DNS_LOOKUP, NULL },
	{ RELAY_FAIL_CLASS_DNSSEC_BOGUS, "dnssec-invalid" },
	{ RELAY_FAIL_CLASS_DNSSEC_SELFTEST, NULL },
	{ RELAY_FAIL_CLASS_TLSA_LOOKUP, "dnssec-invalid" },
	{ RELAY_FAIL_CLASS_TLSA_INVALID, "tlsa-invalid" },
	{ RELAY_FAIL_CLASS_DANE_REQUIRED, "dane-required" },
	{ RELAY_FAIL_CLASS_NULL_MX, NULL },
	{ RELAY_FAIL_CLASS_STARTTLS_MISSING, "starttls-not-supported" },
	{ RELAY_FAIL_CLASS_TLS_HANDSHAKE, "validation-failure" },
	{ RELAY_FAIL_CLASS_TLSA_MISMATCH, "certificate-host-mismatch" },
	{ RELAY_FAIL_CLASS_CERT_HOST_MISMATCH, "certificate-host-mismatch" },
	{ RELAY_FAIL_CLASS_CERT_EXPIRED, "certificate-expired" },
	{ RELAY_FAIL_CLASS_CERT_NOT_TRUSTED, "certificate-not-trusted" },
	{ RELAY_FAIL_CLASS_STS_MX_MISMATCH, "validation-failure" },
	{ RELAY_FAIL_CLASS_STS_CERTIFICATE, "certificate-not-trusted" },
	{ RELAY_FAIL_CLASS_STS_STARTTLS_MISSING, "starttls-not-supported" },
	{ RELAY_FAIL_CLASS_STS_POLICY_FETCH, "sts-policy-fetch-error" },
	{ RELAY_FAIL_CLASS_CONNECT, NULL },
	{ RELAY_FAIL_CLASS_TIMEOUT, NULL },
	{ RELAY_FAIL_CLASS_SMTP_4XX, NULL },
	{ RELAY_FAIL_CLASS_SMTP_5XX, NULL },
	{ RELAY_FAIL_CLASS_SMTP_PROTOCOL, NULL },
	{ RELAY_FAIL_CLASS_SMTPUTF8_MISSING, NULL },
	{ RELAY_FAIL_CLASS_MESSAGE_SIZE, NULL },
	{ RELAY_FAIL_CLASS_REQUIRETLS, NULL },
	{ RELAY_FAIL_CLASS_ADDRESS, NULL },
	{ RELAY_FAIL_CLASS_SHUTDOWN, NULL },
	{ RELAY_FAIL_CLASS_LOCAL, NULL },
	{ RELAY_FAIL_CLASS_UNKNOWN, NULL },
};

/* The result types RFC 8460 4.3 registers (4.3.1, 4.3.2.1, 4.3.2.2,
 * 4.3.3), spelled as in the RFC. */
static const char *const rfc8460_types[] = {
	"starttls-not-supported",
	"certificate-host-mismatch",
	"certificate-expired",
	"certificate-not-trusted",
	"validation-failure",
	"tlsa-invalid",
	"dnssec-invalid",
	"dane-required",
	"sts-policy-fetch-error",
	"sts-policy-invalid",
	"sts-webpki-invalid",
};

static void
test_tlsrpt_result(void **state)
{
	bool seen[RELAY_FAIL_CLASS_COUNT] = { false };
	(void)state;

	assert_int_equal(NELEM(tlsrpt), RELAY_FAIL_CLASS_COUNT);
	for (size_t i = 0; i < NELEM(tlsrpt); i++) {
		int c = (int)tlsrpt[i].c;
		assert_false(seen[c]);
		seen[c] = true;
		const char *got = relay_fail_class_tlsrpt_result(tlsrpt[i].c);
		if (tlsrpt[i].result == NULL) {
			assert_null(got);
			continue;
		}
		assert_non_null(got);
		assert_string_equal(got, tlsrpt[i].result);
		/* A registered result type, and one the metrics count. */
		bool registered = false;
		for (size_t k = 0; k < NELEM(rfc8460_types); k++)
			registered |= strcmp(got, rfc8460_types[k]) == 0;
		assert_true(registered);
		assert_true(relay_metrics_dane_result_known(got));
	}
	/* Every registered type has a row in the metrics, zero or not. */
	for (size_t k = 0; k < NELEM(rfc8460_types); k++)
		assert_true(relay_metrics_dane_result_known(rfc8460_types[k]));
	assert_true(relay_metrics_dane_result_known("success"));
	assert_false(relay_metrics_dane_result_known("tlsa-mismatch"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract),
		cmocka_unit_test(test_names_unique),
		cmocka_unit_test(test_parse_edges),
		cmocka_unit_test(test_hints_by_class),
		cmocka_unit_test(test_envelope_keeps_unknown),
		cmocka_unit_test(test_tlsrpt_result),
	};
	return cmocka_run_group_tests_name("relay_fail_class", tests, NULL,
	    NULL);
}
