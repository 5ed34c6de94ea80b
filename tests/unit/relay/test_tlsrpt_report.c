/*
 * Unit tests for relay_tlsrpt_report: the RFC 8460 4.4 JSON (exact
 * documents, so every field name and the structure are checked), the
 * report-id (stable and unique), gzip and the 5.3 mail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "relay_tlsrpt.h"

static const struct relay_tlsrpt_meta meta = {
	.organization = "Relay Org",
	.contact = "postmaster@relay.example",
	.submitter = "relay.example",
};

static void
add(struct relay_tlsrpt_table *t, const char *day,
    const struct relay_tlsrpt_session *s, uint64_t n)
{
	assert_int_equal(relay_tlsrpt_table_add(t, day, s, n, NULL), 0);
}

/* dane.example: 3 DANE successes and 2 TLSA mismatches at one MX, one
 * STARTTLS failure at another; plain.example: no policy, one success. */
static void
fill(struct relay_tlsrpt_table *t)
{
	struct relay_tlsrpt_session ok = {
		.domain = "dane.example",
		.type = RELAY_TLSRPT_POLICY_TLSA,
		.policy = "3 1 1 aabb|2 0 1 ccdd",
		.policy_mx = "mx1.dane.example",
		.sending_ip = "192.0.2.1",
		.receiving_mx = "mx1.dane.example",
		.receiving_ip = "198.51.100.1",
	};
	struct relay_tlsrpt_session mism = ok;
	mism.result = "validation-failure";
	mism.reason_code = "tlsa-mismatch";
	struct relay_tlsrpt_session nostls = {
		.domain = "dane.example",
		.type = RELAY_TLSRPT_POLICY_TLSA,
		.policy = "3 1 1 eeff",
		.policy_mx = "mx2.dane.example",
		.result = "starttls-not-supported",
		.sending_ip = "192.0.2.1",
		.receiving_mx = "mx2.dane.example",
		.receiving_ip = "198.51.100.2",
	};
	struct relay_tlsrpt_session plain = {
		.domain = "plain.example",
		.type = RELAY_TLSRPT_POLICY_NONE,
		.receiving_mx = "mx.plain.example",
	};
	add(t, "2026-12-07", &mism, 1);
	add(t, "2026-12-07", &ok, 2);
	add(t, "2026-12-07", &nostls, 1);
	add(t, "2026-12-07", &mism, 1);
	add(t, "2026-12-07", &ok, 1);
	add(t, "2026-12-07", &plain, 1);
	add(t, "2026-12-06", &ok, 7); /* another day: not in the report */
}

static const char dane_json[] =
    "{\"organization-name\":\"Relay Org\","
    "\"date-range\":{\"start-datetime\":\"2026-12-07T00:00:00Z\","
    "\"end-datetime\":\"2026-12-07T23:59:59Z\"},"
    "\"contact-info\":\"postmaster@relay.example\","
    "\"report-id\":\"20261207.dane.example@relay.example\","
    "\"policies\":["
    "{\"policy\":{\"policy-type\":\"tlsa\","
    "\"policy-string\":[\"3 1 1 aabb\",\"2 0 1 ccdd\"],"
    "\"policy-domain\":\"dane.example\",\"mx-host\":[\"mx1.dane.example\"]},"
    "\"summary\":{\"total-successful-session-count\":3,"
    "\"total-failure-session-count\":2},"
    "\"failure-details\":[{\"result-type\":\"validation-failure\","
    "\"sending-mta-ip\":\"192.0.2.1\","
    "\"receiving-mx-hostname\":\"mx1.dane.example\","
    "\"receiving-ip\":\"198.51.100.1\",\"failed-session-count\":2,"
    "\"failure-reason-code\":\"tlsa-mismatch\"}]},"
    "{\"policy\":{\"policy-type\":\"tlsa\",\"policy-string\":[\"3 1 1 eeff\"],"
    "\"policy-domain\":\"dane.example\",\"mx-host\":[\"mx2.dane.example\"]},"
    "\"summary\":{\"total-successful-session-count\":0,"
    "\"total-failure-session-count\":1},"
    "\"failure-details\":[{\"result-type\":\"starttls-not-supported\","
    "\"sending-mta-ip\":\"192.0.2.1\","
    "\"receiving-mx-hostname\":\"mx2.dane.example\","
    "\"receiving-ip\":\"198.51.100.2\",\"failed-session-count\":1}]}]}";

static const char plain_json[] =
    "{\"organization-name\":\"Relay Org\","
    "\"date-range\":{\"start-datetime\":\"2026-12-07T00:00:00Z\","
    "\"end-datetime\":\"2026-12-07T23:59:59Z\"},"
    "\"contact-info\":\"postmaster@relay.example\","
    "\"report-id\":\"20261207.plain.example@relay.example\","
    "\"policies\":[{\"policy\":{\"policy-type\":\"no-policy-found\","
    "\"policy-domain\":\"plain.example\"},"
    "\"summary\":{\"total-successful-session-count\":1,"
    "\"total-failure-session-count\":0},\"failure-details\":[]}]}";

static void
test_json(void **state)
{
	(void)state;
	struct relay_tlsrpt_table t;
	relay_tlsrpt_table_init(&t);
	fill(&t);
	char *j;
	size_t n;
	assert_int_equal(relay_tlsrpt_report_json(&t, "2026-12-07",
	                     "dane.example", &meta, &j, &n),
	    0);
	assert_int_equal(n, strlen(j));
	assert_string_equal(j, dane_json);
	free(j);
	assert_int_equal(relay_tlsrpt_report_json(&t, "2026-12-07",
	                     "plain.example", &meta, &j, &n),
	    0);
	assert_string_equal(j, plain_json);
	free(j);
	/* A host the policy refused: no addresses in its failure detail. */
	struct relay_tlsrpt_session refused = {
		.domain = "bogus.example",
		.type = RELAY_TLSRPT_POLICY_TLSA,
		.policy_mx = "mx.bogus.example",
		.result = "dnssec-invalid",
		.receiving_mx = "mx.bogus.example",
	};
	add(&t, "2026-12-07", &refused, 2);
	assert_int_equal(relay_tlsrpt_report_json(&t, "2026-12-07",
	                     "bogus.example", &meta, &j, &n),
	    0);
	assert_non_null(strstr(j,
	    "\"failure-details\":[{\"result-type\":\"dnssec-invalid\","
	    "\"receiving-mx-hostname\":\"mx.bogus.example\","
	    "\"failed-session-count\":2}]"));
	assert_non_null(strstr(j, "\"policy-string\":[]"));
	free(j);
	/* No sessions: no report. */
	assert_int_equal(relay_tlsrpt_report_json(&t, "2026-12-08",
	                     "dane.example", &meta, &j, &n),
	    RELAY_TLSRPT_EINVAL);

	const char **d;
	assert_int_equal(relay_tlsrpt_domains(&t, "2026-12-07", &d, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(d[0], "bogus.example");
	assert_string_equal(d[1], "dane.example");
	assert_string_equal(d[2], "plain.example");
	free(d);
	relay_tlsrpt_table_free(&t);
}

/* The same rows added in another order give the same document. */
static void
test_json_order(void **state)
{
	(void)state;
	struct relay_tlsrpt_table a, b;
	relay_tlsrpt_table_init(&a);
	relay_tlsrpt_table_init(&b);
	fill(&a);
	fill(&b);
	/* b also gets its rows reversed through a reload of its lines. */
	struct relay_tlsrpt_table c;
	relay_tlsrpt_table_init(&c);
	for (size_t i = b.nrows; i-- > 0;) {
		char line[RELAY_TLSRPT_LINE_MAX];
		size_t n = relay_tlsrpt_table_line(&b.rows[i], b.rows[i].count,
		    line, sizeof(line));
		assert_true(n > 0);
		assert_int_equal(relay_tlsrpt_table_load(&c, line, n, NULL,
		                     NULL),
		    0);
	}
	char *ja, *jc;
	size_t na, nc;
	assert_int_equal(relay_tlsrpt_report_json(&a, "2026-12-07",
	                     "dane.example", &meta, &ja, &na),
	    0);
	assert_int_equal(relay_tlsrpt_report_json(&c, "2026-12-07",
	                     "dane.example", &meta, &jc, &nc),
	    0);
	assert_string_equal(ja, jc);
	free(ja);
	free(jc);
	relay_tlsrpt_table_free(&a);
	relay_tlsrpt_table_free(&b);
	relay_tlsrpt_table_free(&c);
}

static void
test_report_id(void **state)
{
	(void)state;
	char a[256], b[256], c[256], d[256];
	assert_int_equal(relay_tlsrpt_report_id("2026-12-07", "dane.example",
	                     "relay.example", a, sizeof(a)),
	    0);
	assert_int_equal(relay_tlsrpt_report_id("2026-12-07", "dane.example",
	                     "relay.example", b, sizeof(b)),
	    0);
	assert_string_equal(a, b); /* stable */
	assert_string_equal(a, "20261207.dane.example@relay.example");
	assert_int_equal(relay_tlsrpt_report_id("2026-12-08", "dane.example",
	                     "relay.example", c, sizeof(c)),
	    0);
	assert_int_equal(relay_tlsrpt_report_id("2026-12-07", "dane2.example",
	                     "relay.example", d, sizeof(d)),
	    0);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	assert_int_equal(relay_tlsrpt_report_id("2026-13-07", "x", "y", d,
	                     sizeof(d)),
	    -1);
	assert_int_equal(relay_tlsrpt_report_id("2026-12-07", "dane.example",
	                     "relay.example", d, 10),
	    -1);
}

static char *
gunzip(const uint8_t *p, size_t len)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	char *out = calloc(1, 65536);
	z.next_in = (Bytef *)(uintptr_t)p;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = 65535;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	inflateEnd(&z);
	return out;
}

static size_t
unbase64(const char *s, uint8_t *out)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t v = 0;
	int bits = 0;
	size_t n = 0;
	for (; *s && *s != '-'; s++) {
		const char *p = strchr(a, *s);
		if (*s == '=' || p == NULL || *s == '\0')
			continue;
		v = v << 6 | (uint32_t)(p - a);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(v >> bits);
		}
	}
	return n;
}

static void
test_gzip_and_mail(void **state)
{
	(void)state;
	struct relay_tlsrpt_table t;
	relay_tlsrpt_table_init(&t);
	fill(&t);
	char *j;
	size_t n;
	assert_int_equal(relay_tlsrpt_report_json(&t, "2026-12-07",
	                     "dane.example", &meta, &j, &n),
	    0);
	uint8_t *gz;
	size_t gzlen;
	assert_int_equal(relay_tlsrpt_gzip(j, n, &gz, &gzlen), 0);
	assert_true(gzlen > 10 && gz[0] == 0x1f && gz[1] == 0x8b);
	char *back = gunzip(gz, gzlen);
	assert_string_equal(back, j);
	free(back);

	char *m;
	size_t mlen;
	assert_int_equal(relay_tlsrpt_mail(&meta, "2026-12-07", "dane.example",
	                     "postmaster@relay.example", "tls@dane.example", gz,
	                     gzlen, (time_t)1796688000, 42, &m, &mlen),
	    0);
	assert_int_equal(mlen, strlen(m));
	/* RFC 8460 5.3. */
	assert_non_null(strstr(m,
	    "\r\nSubject: Report Domain: dane.example Submitter: relay.example "
	    "Report-ID: <20261207.dane.example@relay.example>\r\n"));
	assert_non_null(strstr(m, "\r\nTLS-Report-Domain: dane.example\r\n"));
	assert_non_null(
	    strstr(m, "\r\nTLS-Report-Submitter: relay.example\r\n"));
	assert_non_null(strstr(m,
	    "Content-Type: multipart/report; report-type=\"tlsrpt\";"));
	assert_non_null(strstr(m, "Content-Type: application/tlsrpt+gzip\r\n"));
	/* RFC 8460 5.1 file name: 2026-12-07 = 1796601600. */
	assert_non_null(strstr(m,
	    "filename=\"relay.example!dane.example!1796601600!1796687999!0."
	    "json.gz\""));
	assert_null(strstr(m, "\n\n")); /* CRLF only */
	for (size_t i = 0; i < mlen; i++)
		if (m[i] == '\n')
			assert_true(i > 0 && m[i - 1] == '\r');
	/* The attachment decodes back to the report. */
	const char *b = strstr(m, "json.gz\"\r\n\r\n");
	assert_non_null(b);
	uint8_t *raw = malloc(mlen + 1);
	assert_non_null(raw);
	size_t rl = unbase64(b + strlen("json.gz\"\r\n\r\n"), raw);
	assert_int_equal(rl, gzlen);
	assert_memory_equal(raw, gz, gzlen);
	free(raw);
	free(m);
	free(gz);
	free(j);
	relay_tlsrpt_table_free(&t);
}

static void
test_days(void **state)
{
	(void)state;
	time_t t;
	assert_true(relay_tlsrpt_day_parse("2026-12-07", &t));
	assert_int_equal((long long)t, 1796601600LL);
	char d[RELAY_TLSRPT_DAY_SIZE];
	relay_tlsrpt_day(t + 86399, d);
	assert_string_equal(d, "2026-12-07");
	relay_tlsrpt_day(t + 86400, d);
	assert_string_equal(d, "2026-12-08");
	assert_false(relay_tlsrpt_day_parse("2026-02-31", NULL));
	assert_false(relay_tlsrpt_day_parse("2026-12-7", NULL));
	assert_false(relay_tlsrpt_day_parse("2026/12/07", NULL));
	assert_false(relay_tlsrpt_day_parse("", NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_json_order),
		cmocka_unit_test(test_report_id),
		cmocka_unit_test(test_gzip_and_mail),
		cmocka_unit_test(test_days),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
