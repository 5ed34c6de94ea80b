/*
 * Unit tests for relay_log: value escaping (table-driven, one case per
 * row), whole lines with a pinned clock, level filtering, truncation, and
 * the optional log file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay_log.h"

struct escape_case {
	const char *in;
	size_t len;
	const char *out;
};

#define S(x) x, sizeof(x) - 1
static const struct escape_case escape_cases[] = {
	{ S("mx.example.net"), "mx.example.net" },
	{ S("<a@b.example>"), "<a@b.example>" },
	{ S("[192.0.2.1]:25"), "[192.0.2.1]:25" },
	{ S(""), "\"\"" },
	{ S("two words"), "\"two words\"" },
	{ S("k=v"), "\"k=v\"" },
	{ S("say \"hi\""), "\"say \\\"hi\\\"\"" },
	{ S("back\\slash"), "\"back\\\\slash\"" },
	{ S("550 5.7.1 no\r\nmore"), "\"550 5.7.1 no\\r\\nmore\"" },
	{ S("tab\there"), "\"tab\\there\"" },
	{ S("nul\0byte"), "\"nul\\x00byte\"" },
	{ S("esc\x1b[31m"), "\"esc\\x1b[31m\"" },
	{ S("del\x7f"), "\"del\\x7f\"" },
	{ S("caf\xc3\xa9"), "\"caf\\xc3\\xa9\"" },
};
#undef S

static void
test_escape(void **state)
{
	const struct escape_case *c = *state;
	char out[256];
	size_t n = relay_log_escape(out, sizeof(out), c->in, c->len);

	assert_string_equal(out, c->out);
	assert_int_equal(n, strlen(c->out));
}

static void
test_escape_truncates(void **state)
{
	char in[RELAY_LOG_VALUE_MAX + 100], out[RELAY_LOG_VALUE_MAX * 4 + 8];
	size_t n;

	(void)state;
	memset(in, 'a', sizeof(in));
	n = relay_log_escape(out, sizeof(out), in, sizeof(in));
	assert_int_equal(n, RELAY_LOG_VALUE_MAX + 5);   /* quotes + "..." */
	assert_int_equal(out[0], '"');
	assert_memory_equal(out + n - 4, "...\"", 4);
	/* A tiny output buffer still gets a terminated string. */
	n = relay_log_escape(out, 8, in, sizeof(in));
	assert_true(n < 8);
	assert_int_equal(out[n], '\0');
}

/* ---- whole lines, through a sink and a pinned clock ---- */

struct captured {
	char line[RELAY_LOG_LINE_MAX + 1];
	size_t len;
	int count;
	enum relay_log_level level;
};

static struct captured cap;

static void
sink(enum relay_log_level level, const char *line, size_t len, void *arg)
{
	(void)arg;
	assert_int_equal(strlen(line), len);
	memcpy(cap.line, line, len + 1);
	cap.len = len;
	cap.level = level;
	cap.count++;
}

static uint64_t
pinned(void)
{
	return 1732288081123456u;   /* 2024-11-22T15:08:01.123456Z */
}

static int
setup(void **state)
{
	(void)state;
	memset(&cap, 0, sizeof(cap));
	relay_log_set_stderr(false);
	relay_log_set_sink(sink, NULL);
	relay_log_set_clock(pinned);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	relay_log_reset();
	return 0;
}

static void
test_line(void **state)
{
	struct relay_log_line l;
	struct sockaddr_in in = { .sin_family = AF_INET,
	    .sin_port = htons(25) };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	const uint8_t digest[] = { 0xab, 0x12, 0x00, 0xff };

	(void)state;
	assert_int_equal(inet_pton(AF_INET, "192.0.2.1", &in.sin_addr), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr),
	    1);
	assert_true(relay_log_begin(&l, RELAY_LOG_INFO, "delivery"));
	relay_log_str(&l, "id", "00064A1B2C3D4E");
	relay_log_addr(&l, "to", "bob@example.net");
	relay_log_addr(&l, "from", "");
	relay_log_strf(&l, "relay", "%s[%s]:%u", "mx.example.net",
	    "192.0.2.1", 25u);
	relay_log_sockaddr(&l, "addr", (struct sockaddr *)&in);
	relay_log_sockaddr(&l, "addr6", (struct sockaddr *)&in6);
	relay_log_ms(&l, "delay", 1234);
	relay_log_u64(&l, "attempts", 3);
	relay_log_i64(&l, "delta", -7);
	relay_log_bool(&l, "secure", true);
	relay_log_hex(&l, "spki", digest, sizeof(digest));
	relay_log_str(&l, "why", "450 4.7.1 \"busy\"\r\n");
	relay_log_str(&l, "none", NULL);
	assert_int_equal(cap.count, 0);
	relay_log_end(&l);
	assert_int_equal(cap.count, 1);
	assert_string_equal(cap.line,
	    "2024-11-22T15:08:01.123Z level=info event=delivery "
	    "id=00064A1B2C3D4E to=<bob@example.net> from=<> "
	    "relay=mx.example.net[192.0.2.1]:25 addr=192.0.2.1:25 "
	    "addr6=2001:db8::1 delay=1.234 attempts=3 delta=-7 secure=yes "
	    "spki=ab1200ff why=\"450 4.7.1 \\\"busy\\\"\\r\\n\" none=\"\"");
	/* end makes the line inert */
	relay_log_end(&l);
	assert_int_equal(cap.count, 1);
}

static void
test_levels(void **state)
{
	struct relay_log_line l;

	(void)state;
	assert_int_equal(relay_log_get_level(), RELAY_LOG_INFO);
	assert_false(relay_log_begin(&l, RELAY_LOG_DEBUG, "state"));
	relay_log_str(&l, "x", "y");
	relay_log_end(&l);
	assert_int_equal(cap.count, 0);
	relay_log_msg(RELAY_LOG_WARNING, "dns-selftest", "validation failed");
	assert_int_equal(cap.count, 1);
	assert_int_equal(cap.level, RELAY_LOG_WARNING);
	assert_string_equal(cap.line, "2024-11-22T15:08:01.123Z level=warning "
	    "event=dns-selftest why=\"validation failed\"");
	relay_log_set_level(RELAY_LOG_DEBUG);
	assert_true(relay_log_begin(&l, RELAY_LOG_DEBUG, "state"));
	relay_log_str(&l, "from", "ehlo");
	relay_log_end(&l);
	assert_int_equal(cap.count, 2);
	assert_string_equal(cap.line, "2024-11-22T15:08:01.123Z level=debug "
	    "event=state from=ehlo");
}

/* A line that would exceed the maximum stops at a whole field. */
static void
test_line_truncated(void **state)
{
	struct relay_log_line l;
	char v[300];

	(void)state;
	memset(v, 'v', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	assert_true(relay_log_begin(&l, RELAY_LOG_INFO, "big"));
	for (int i = 0; i < 40; i++)
		relay_log_str(&l, "field", v);
	relay_log_end(&l);
	assert_int_equal(cap.count, 1);
	assert_true(cap.len < RELAY_LOG_LINE_MAX);
	assert_true(cap.len > RELAY_LOG_LINE_MAX - 320);
	assert_string_equal(cap.line + cap.len - 15, "v truncated=yes");
}

static void
test_log_file(void **state)
{
	char path[] = "/tmp/danerelay-log-XXXXXX", buf[512];
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(relay_log_open_file(path), 0);
	relay_log_msg(RELAY_LOG_INFO, "start", "one");
	relay_log_msg(RELAY_LOG_INFO, "stop", "two");
	assert_int_equal(relay_log_open_file(NULL), 0);
	relay_log_msg(RELAY_LOG_INFO, "after", "close");
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "2024-11-22T15:08:01.123Z level=info "
	    "event=start why=one\n");
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_non_null(strstr(buf, "event=stop"));
	assert_null(fgets(buf, sizeof(buf), f));
	(void)fclose(f);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(relay_log_open_file("/nonexistent-dir/x.log"),
	    -2 /* -ENOENT */);
}

int
main(void)
{
	const size_t ne = sizeof(escape_cases) / sizeof(escape_cases[0]);
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_escape_truncates),
		cmocka_unit_test_setup_teardown(test_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_truncated, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_log_file, setup, teardown),
	};
	const size_t nf = sizeof(fixed) / sizeof(fixed[0]);
	struct CMUnitTest *t = calloc(nf + ne, sizeof(*t));
	char (*names)[64] = calloc(ne, sizeof(*names));
	int rc;

	if (t == NULL || names == NULL)
		return 1;
	for (size_t i = 0; i < nf; i++)
		t[i] = fixed[i];
	for (size_t i = 0; i < ne; i++) {
		(void)snprintf(names[i], sizeof(names[i]), "escape %zu", i + 1);
		t[nf + i] = (struct CMUnitTest)cmocka_unit_test_prestate(
		    test_escape, (void *)(uintptr_t)&escape_cases[i]);
		t[nf + i].name = names[i];
	}
	rc = _cmocka_run_group_tests("log", t, nf + ne, NULL, NULL);
	free(t);
	free(names);
	return rc;
}
