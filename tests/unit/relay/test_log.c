/*
 * Unit tests for relay_log: value escaping (table-driven, one case per
 * row), whole lines with a pinned clock, level filtering, truncation, the
 * optional log file, and the syslog priority prefix for the journal.
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
#include <sys/stat.h>
#include <unistd.h>

#include "relay_clock.h"
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
	assert_int_equal(n, RELAY_LOG_VALUE_MAX + 5); /* quotes + "..." */
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

/* 2024-11-22T15:08:01.123456Z; set up by setup(). */
static struct relay_clock_manual pinned;

static int
setup(void **state)
{
	(void)state;
	memset(&cap, 0, sizeof(cap));
	relay_log_set_stderr(false);
	relay_log_set_sink(sink, NULL);
	relay_clock_manual_init(&pinned, 0, 1732288081123456u);
	relay_log_set_clock(&pinned.clock);
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
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr), 1);
	assert_true(relay_log_begin(&l, RELAY_LOG_INFO, "delivery"));
	relay_log_str(&l, "id", "00064A1B2C3D4E");
	relay_log_addr(&l, "to", "bob@example.net");
	relay_log_addr(&l, "from", "");
	relay_log_strf(&l, "relay", "%s[%s]:%u", "mx.example.net", "192.0.2.1",
	    25u);
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
	assert_string_equal(cap.line,
	    "2024-11-22T15:08:01.123Z level=warning "
	    "event=dns-selftest why=\"validation failed\"");
	relay_log_set_level(RELAY_LOG_DEBUG);
	assert_true(relay_log_begin(&l, RELAY_LOG_DEBUG, "state"));
	relay_log_str(&l, "from", "ehlo");
	relay_log_end(&l);
	assert_int_equal(cap.count, 2);
	assert_string_equal(cap.line,
	    "2024-11-22T15:08:01.123Z level=debug "
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
	assert_string_equal(buf,
	    "2024-11-22T15:08:01.123Z level=info "
	    "event=start why=one\n");
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_non_null(strstr(buf, "event=stop"));
	assert_null(fgets(buf, sizeof(buf), f));
	(void)fclose(f);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(relay_log_open_file("/nonexistent-dir/x.log"),
	    -2 /* -ENOENT */);
}

/* ---- stderr as the systemd journal ---- */

/*
 * Points stderr at a fresh temporary file (path in out, 32 bytes) and
 * returns a duplicate of the real stderr for stderr_restore().
 */
static int
stderr_to_file(char *path)
{
	int fd, saved;

	(void)snprintf(path, 32, "%s", "/tmp/danerelay-log-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	assert_int_equal(close(fd), 0);
	return saved;
}

static void
stderr_restore(int saved)
{
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	assert_int_equal(close(saved), 0);
}

/* JOURNAL_STREAM naming the file behind fd ("DEVICE:INODE"). */
static void
set_journal_stream(int fd)
{
	struct stat st;
	char v[64];

	assert_int_equal(fstat(fd, &st), 0);
	(void)snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	assert_int_equal(setenv("JOURNAL_STREAM", v, 1), 0);
}

/* One line of each level to stderr (and to the sink), then the file's
 * content in out. */
static void
log_each_level(const char *path, char *out, size_t size)
{
	FILE *f;
	size_t n;

	relay_log_set_level(RELAY_LOG_DEBUG);
	relay_log_set_stderr(true);
	relay_log_msg(RELAY_LOG_ERROR, "e", "x");
	relay_log_msg(RELAY_LOG_WARNING, "w", "x");
	relay_log_msg(RELAY_LOG_INFO, "i", "x");
	relay_log_msg(RELAY_LOG_DEBUG, "d", "x");
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(out, 1, size - 1, f);
	out[n] = '\0';
	(void)fclose(f);
}

#define T "2024-11-22T15:08:01.123Z "
static void
test_journal_prefix(void **state)
{
	char path[32], logpath[] = "/tmp/danerelay-log-XXXXXX", out[1024];
	int saved, fd;

	(void)state;
	fd = mkstemp(logpath);
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(relay_log_open_file(logpath), 0);
	saved = stderr_to_file(path);
	set_journal_stream(STDERR_FILENO);
	assert_true(relay_log_detect_journal());
	log_each_level(path, out, sizeof(out));
	stderr_restore(saved);
	/* sd-daemon(3): err 3, warning 4, info 6, debug 7. */
	assert_string_equal(out,
	    "<3>" T "level=error event=e why=x\n"
	    "<4>" T "level=warning event=w why=x\n"
	    "<6>" T "level=info event=i why=x\n"
	    "<7>" T "level=debug event=d why=x\n");
	/* Neither the sink nor the log file gets the prefix. */
	assert_string_equal(cap.line, T "level=debug event=d why=x");
	assert_int_equal(relay_log_open_file(NULL), 0);
	{
		FILE *f = fopen(logpath, "r");
		size_t n;

		assert_non_null(f);
		n = fread(out, 1, sizeof(out) - 1, f);
		out[n] = '\0';
		(void)fclose(f);
	}
	assert_string_equal(out,
	    T "level=error event=e why=x\n" T "level=warning event=w why=x\n" T
	      "level=info event=i why=x\n" T "level=debug event=d why=x\n");
	/* reset turns it off. */
	relay_log_reset();
	saved = stderr_to_file(path);
	relay_log_set_sink(sink, NULL);
	relay_clock_manual_init(&pinned, 0, 1732288081123456u);
	relay_log_set_clock(&pinned.clock);
	log_each_level(path, out, sizeof(out));
	stderr_restore(saved);
	assert_null(strchr(out, '<'));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(unlink(logpath), 0);
	assert_int_equal(unsetenv("JOURNAL_STREAM"), 0);
}

/* Without JOURNAL_STREAM, or when it names another file than stderr (a
 * child of a service whose stderr was redirected), or when it is
 * malformed, lines carry no prefix. */
static void
test_journal_absent(void **state)
{
	static const char *const malformed[] = {
		"",
		":",
		"12",
		"12:",
		":34",
		"12:34x",
		"x12:34",
		"-1:2",
		"1:-2",
	};
	char path[32], other[] = "/tmp/danerelay-log-XXXXXX", out[1024];
	int saved, fd;

	(void)state;
	assert_int_equal(unsetenv("JOURNAL_STREAM"), 0);
	saved = stderr_to_file(path);
	assert_false(relay_log_detect_journal());
	log_each_level(path, out, sizeof(out));
	stderr_restore(saved);
	assert_string_equal(out,
	    T "level=error event=e why=x\n" T "level=warning event=w why=x\n" T
	      "level=info event=i why=x\n" T "level=debug event=d why=x\n");
	assert_int_equal(unlink(path), 0);

	fd = mkstemp(other);
	assert_true(fd >= 0);
	set_journal_stream(fd);
	assert_int_equal(close(fd), 0);
	saved = stderr_to_file(path);
	assert_false(relay_log_detect_journal());
	log_each_level(path, out, sizeof(out));
	stderr_restore(saved);
	assert_null(strchr(out, '<'));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(unlink(other), 0);

	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		assert_int_equal(setenv("JOURNAL_STREAM", malformed[i], 1), 0);
		assert_false(relay_log_detect_journal());
	}
	assert_int_equal(unsetenv("JOURNAL_STREAM"), 0);
}
#undef T

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
		cmocka_unit_test_setup_teardown(test_journal_prefix, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_journal_absent, setup,
		    teardown),
	};
	const size_t nf = sizeof(fixed) / sizeof(fixed[0]);
	struct CMUnitTest *t = calloc(nf + ne, sizeof(*t));
	char(*names)[64] = calloc(ne, sizeof(*names));
	int rc;

	if (t == NULL || names == NULL) {
		free(t);
		free(names);
		return 1;
	}
	for (size_t i = 0; i < nf; i++)
		t[i] = fixed[i];
	for (size_t i = 0; i < ne; i++) {
		(void)snprintf(names[i], sizeof(names[i]), "escape %zu", i + 1);
		t[nf + i] =
		    (struct CMUnitTest)cmocka_unit_test_prestate(test_escape,
		        (void *)(uintptr_t)&escape_cases[i]);
		t[nf + i].name = names[i];
	}
	rc = _cmocka_run_group_tests("log", t, nf + ne, NULL, NULL);
	free(t);
	free(names);
	return rc;
}
