/*
 * Unit tests for relay_report (relay/queue/relay_report.c): qshape buckets,
 * aggregation by destination x failure class, list/show/report output
 * (text and JSON), filters, durations and the header summary parser.
 * Pure functions: envelopes are built in memory, time is fixed, TZ=UTC.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay_report.h"

#define S 1000000ull /* one second in microseconds */
#define M (60 * S)
/* 2026-11-22 12:00:00 UTC */
#define NOW (1795348800ull * S)

/* ------------------------------------------------------------ helpers */

struct cap {
	char *buf;
	size_t len;
	FILE *f;
};

static FILE *
cap_open(struct cap *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
	return c->f;
}

static char *
cap_close(struct cap *c)
{
	assert_int_equal(fclose(c->f), 0);
	return c->buf;
}

static void
must(int rc)
{
	assert_int_equal(rc, 0);
}

static struct relay_queue_envelope *
env_new(const char *id, uint64_t arrival, const char *sender, uint64_t size)
{
	struct relay_queue_envelope *e = relay_queue_envelope_new();
	assert_non_null(e);
	assert_int_equal(strlen(id), RELAY_QUEUE_ID_LEN);
	memcpy(e->id, id, RELAY_QUEUE_ID_SIZE);
	e->arrival_us = arrival;
	e->size = size;
	must(relay_queue_set_str(&e->sender, sender));
	must(relay_queue_set_str(&e->client_addr, "127.0.0.1"));
	must(relay_queue_set_str(&e->client_name, "localhost"));
	must(relay_queue_set_str(&e->helo, "mta.local"));
	return e;
}

static struct relay_queue_rcpt *
rcpt(struct relay_queue_envelope *e, const char *addr,
    enum relay_queue_rcpt_status st, const char *dsn, const char *cls,
    const char *reason, uint64_t next)
{
	struct relay_queue_rcpt *r;
	must(relay_queue_rcpt_add(e, addr, "",
	    RELAY_QUEUE_NOTIFY_FAILURE | RELAY_QUEUE_NOTIFY_DELAY, &r));
	r->status = st;
	must(relay_queue_set_str(&r->dsn, dsn));
	must(relay_queue_set_str(&r->failure_class, cls));
	must(relay_queue_set_str(&r->reason, reason));
	r->next_attempt_us = next;
	return r;
}

static void
attempt(struct relay_queue_rcpt *r, uint64_t t, const char *mx,
    const char *addr, const char *cls, const char *reason, const char *matched,
    const char *spki)
{
	struct relay_queue_attempt *a;
	must(relay_queue_attempt_add(r, &a));
	a->time_us = t;
	must(relay_queue_set_str(&a->mx_host, mx));
	must(relay_queue_set_str(&a->addr, addr));
	must(relay_queue_set_str(&a->dnssec_mx, "secure"));
	must(relay_queue_set_str(&a->dnssec_addr, "secure"));
	must(relay_queue_set_str(&a->dnssec_tlsa, "secure"));
	must(relay_queue_set_str(&a->tlsa, "3 1 1 ab12cd"));
	must(relay_queue_set_str(&a->tls, "dane-ee"));
	must(relay_queue_set_str(&a->peer_spki, spki));
	must(relay_queue_set_str(&a->peer_names, mx));
	must(relay_queue_set_str(&a->matched, matched));
	must(relay_queue_set_str(&a->dsn, "4.7.5"));
	must(relay_queue_set_str(&a->status, "deferred"));
	must(relay_queue_set_str(&a->failure_class, cls));
	must(relay_queue_set_str(&a->reason, reason));
}

static void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL) {
		print_error("missing: [%s]\nin:\n%s\n", needle, hay);
		fail();
	}
}

/* ------------------------------------------------------------ buckets */

struct bucket_case {
	const char *name;
	uint64_t age;
	size_t want;
};

static const struct bucket_case bucket_cases[] = {
	{ "age 0 -> 5m", 0, 0 },
	{ "4m59s -> 5m", 5 * M - S, 0 },
	{ "5m -> 10m", 5 * M, 1 },
	{ "9m59s -> 10m", 10 * M - S, 1 },
	{ "10m -> 20m", 10 * M, 2 },
	{ "79m -> 80m", 79 * M, 4 },
	{ "120m -> 160m", 120 * M, 5 },
	{ "639m -> 640m", 639 * M, 7 },
	{ "640m -> 1280m", 640 * M, 8 },
	{ "1279m -> 1280m", 1279 * M, 8 },
	{ "1280m -> 1280m+", 1280 * M, 9 },
	{ "10 days -> 1280m+", 14400 * M, 9 },
};

static void
test_bucket(void **state)
{
	const struct bucket_case *tc = *state;
	assert_int_equal(relay_report_bucket_of(tc->age), tc->want);
}

/* ------------------------------------------------------------ domains */

static void
test_domain(void **state)
{
	char b[64];
	(void)state;
	assert_string_equal(relay_report_domain("Bob@Example.NET.", b,
	                        sizeof(b)),
	    "example.net");
	assert_string_equal(relay_report_domain("\"a@b\"@c.Example", b,
	                        sizeof(b)),
	    "c.example");
	assert_string_equal(relay_report_domain("no-at-sign", b, sizeof(b)),
	    "");
	assert_string_equal(relay_report_domain("x@averylongdomain.example", b,
	                        8),
	    "averylo");
}

static void
test_queue_name(void **state)
{
	struct relay_queue_envelope *e =
	    env_new("00064A00000001", NOW - M, "a@b", 1);
	struct relay_queue_rcpt *r =
	    rcpt(e, "x@y", RELAY_QUEUE_RCPT_PENDING, "", "", "", 0);
	(void)state;
	assert_string_equal(relay_report_queue_name(
	                        relay_report_queue_of(e, NOW)),
	    "active");
	r->status = RELAY_QUEUE_RCPT_DEFERRED;
	r->next_attempt_us = NOW + M;
	assert_string_equal(relay_report_queue_name(
	                        relay_report_queue_of(e, NOW)),
	    "deferred");
	r->next_attempt_us = NOW - S; /* due again: active */
	assert_string_equal(relay_report_queue_name(
	                        relay_report_queue_of(e, NOW)),
	    "active");
	e->hold = true;
	assert_string_equal(relay_report_queue_name(
	                        relay_report_queue_of(e, NOW)),
	    "hold");
	relay_queue_envelope_free(e);
}

/* ------------------------------------------------------------ filters */

struct filter_case {
	const char *name;
	struct relay_report_filter f;
	bool want;
};

static const struct filter_case filter_cases[] = {
	{ "no filter", { NULL, NULL, 0 }, true },
	{ "domain exact, other case", { "EXAMPLE.net", NULL, 0 }, true },
	{ "domain trailing dot", { "example.net.", NULL, 0 }, true },
	{ "domain other", { "example.org", NULL, 0 }, false },
	{ "domain parent does not match", { "net", NULL, 0 }, false },
	{ "subdomain pattern", { ".net", NULL, 0 }, true },
	{ "subdomain pattern excludes itself", { ".example.net", NULL, 0 },
	    false },
	{ "class match", { NULL, "tlsa-mismatch", 0 }, true },
	{ "class other", { NULL, "dns-lookup", 0 }, false },
	{ "older than 1h: yes (2h old)", { NULL, NULL, 60 * M }, true },
	{ "older than 3h: no", { NULL, NULL, 180 * M }, false },
	{ "all three", { "example.net", "tlsa-mismatch", 5 * M }, true },
};

static void
test_filter(void **state)
{
	const struct filter_case *tc = *state;
	struct relay_queue_envelope *e =
	    env_new("00064A00000002", NOW - 120 * M, "a@b", 1);
	rcpt(e, "bob@example.net", RELAY_QUEUE_RCPT_DEFERRED, "4.7.5",
	    "tlsa-mismatch", "r", NOW + M);
	assert_int_equal(relay_report_env_match(&tc->f, e, NOW), tc->want);
	relay_queue_envelope_free(e);
}

/* ------------------------------------------------------------ headers */

struct hdr_case {
	const char *name;
	const char *in;
	const char *from, *to, *subject, *msgid, *date; /* NULL = absent */
};

static const struct hdr_case hdr_cases[] = {
	{ "CRLF header",
	    "From: A <a@b>\r\nTo: c@d\r\nSubject: hi\r\n"
	    "Message-ID: <1@b>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n",
	    "A <a@b>", "c@d", "hi", "<1@b>",
	    "Sun, 22 Nov 2026 10:00:00 +0000" },
	{ "bare LF", "from:x\nSUBJECT:  y \n\n", "x", NULL, "y ", NULL, NULL },
	{ "folded subject keeps the fold", "Subject: a\r\n\tb\r\nTo: t\r\n\r\n",
	    NULL, "t", "a\r\n\tb", NULL, NULL },
	{ "first occurrence wins", "To: one\r\nTo: two\r\n\r\n", NULL, "one",
	    NULL, NULL, NULL },
	{ "body is not searched", "X: 1\r\n\r\nSubject: no\r\n", NULL, NULL,
	    NULL, NULL, NULL },
	{ "no empty line, no final newline", "Subject: end", NULL, NULL, "end",
	    NULL, NULL },
	{ "name prefix is not the field", "Tolerance: x\r\nFromage: y\r\n\r\n",
	    NULL, NULL, NULL, NULL, NULL },
	{ "empty input", "", NULL, NULL, NULL, NULL, NULL },
	{ "line without colon ignored", "garbage\r\nDate: d\r\n\r\n", NULL,
	    NULL, NULL, NULL, "d" },
};

static void
check_slice(const struct relay_report_slice *s, const char *want)
{
	if (want == NULL) {
		assert_null(s->p);
		return;
	}
	assert_non_null(s->p);
	assert_int_equal(s->len, strlen(want));
	assert_memory_equal(s->p, want, s->len);
}

static void
test_headers(void **state)
{
	const struct hdr_case *tc = *state;
	struct relay_report_headers h;
	size_t len = strlen(tc->in);
	/* An exact-size heap copy, so ASan catches a read past the end. */
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	memcpy(p, tc->in, len);
	relay_report_headers_parse(p, len, &h);
	check_slice(&h.from, tc->from);
	check_slice(&h.to, tc->to);
	check_slice(&h.subject, tc->subject);
	check_slice(&h.message_id, tc->msgid);
	check_slice(&h.date, tc->date);
	/* Every prefix parses without reading outside it. */
	for (size_t i = 0; i <= len; i++) {
		uint8_t *q = malloc(i ? i : 1);
		assert_non_null(q);
		memcpy(q, tc->in, i);
		relay_report_headers_parse(q, i, &h);
		free(q);
	}
	free(p);
}

/* ------------------------------------------------------------ list */

static struct relay_queue_envelope *
sample_env(void)
{
	struct relay_queue_envelope *e =
	    env_new("00064A1B2C3D4E", NOW - 125 * M, "alice@example.org", 1234);
	struct relay_queue_rcpt *r =
	    rcpt(e, "bob@example.net", RELAY_QUEUE_RCPT_DEFERRED, "4.7.5",
	        "tlsa-mismatch", "no TLSA record matched", NOW + 10 * M);
	attempt(r, NOW - 2 * M, "mx.example.net", "192.0.2.1", "tlsa-mismatch",
	    "no TLSA record matched", "mismatch", "cd34");
	r->attempts = 3; /* two older attempts no longer kept */
	rcpt(e, "carol@example.org", RELAY_QUEUE_RCPT_SENT, "2.0.0", "", "", 0);
	return e;
}

static void
test_list_text(void **state)
{
	struct relay_queue_envelope *e = sample_env();
	struct relay_report_list_totals t = { 0 };
	struct cap c;
	(void)state;

	cap_open(&c);
	must(relay_report_list_header(c.f));
	must(relay_report_list_text(c.f, e, NULL, NOW, &t));
	e->hold = true;
	must(relay_report_list_text(c.f, e, NULL, NOW, &t));
	must(relay_report_list_footer(c.f, &t));
	cap_close(&c);
	assert_string_equal(c.buf,
	    "-Queue ID-      --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
	    "00064A1B2C3D4E      1234 Sun Nov 22 09:55:00  alice@example.org\n"
	    "                                              bob@example.net\n"
	    "                                                (deferred 4.7.5 "
	    "tlsa-mismatch, 3 attempts, next in 10m: no TLSA record matched)\n"
	    "                                              carol@example.org\n"
	    "                                                (sent 2.0.0)\n"
	    "\n"
	    "00064A1B2C3D4E!     1234 Sun Nov 22 09:55:00  alice@example.org\n"
	    "                                              bob@example.net\n"
	    "                                                (deferred 4.7.5 "
	    "tlsa-mismatch, 3 attempts, next in 10m: no TLSA record matched)\n"
	    "                                              carol@example.org\n"
	    "                                                (sent 2.0.0)\n"
	    "\n"
	    "-- 3 Kbytes in 2 Requests.\n");
	free(c.buf);
	relay_queue_envelope_free(e);
}

static void
test_list_text_filter_and_empty(void **state)
{
	struct relay_queue_envelope *e = sample_env();
	struct relay_report_list_totals t = { 0 };
	struct relay_report_filter f = { .domain = "example.org" };
	struct relay_report_filter none = { .failure_class = "connect" };
	struct cap c;
	(void)state;

	/* Null sender as MAILER-DAEMON; only the matching recipient. */
	must(relay_queue_set_str(&e->sender, ""));
	cap_open(&c);
	must(relay_report_list_text(c.f, e, &f, NOW, &t));
	must(relay_report_list_text(c.f, e, &none, NOW, &t));
	must(relay_report_list_footer(c.f, &t));
	cap_close(&c);
	assert_string_equal(c.buf,
	    "00064A1B2C3D4E      1234 Sun Nov 22 09:55:00  MAILER-DAEMON\n"
	    "                                              carol@example.org\n"
	    "                                                (sent 2.0.0)\n"
	    "\n"
	    "-- 2 Kbytes in 1 Request.\n");
	free(c.buf);
	t = (struct relay_report_list_totals){ 0 };
	cap_open(&c);
	must(relay_report_list_footer(c.f, &t));
	assert_string_equal(cap_close(&c), "Mail queue is empty\n");
	free(c.buf);
	relay_queue_envelope_free(e);
}

/* A queue whose envelopes do not parse, or whose corrupt/ holds files, is
 * not empty: the footer counts what could not be listed. */
static void
test_list_footer_unreadable(void **state)
{
	struct relay_report_list_totals t = { 0 };
	struct cap c;
	(void)state;

	t.unreadable.unparsable = 1;
	cap_open(&c);
	must(relay_report_list_footer(c.f, &t));
	assert_string_equal(cap_close(&c),
	    "-- 0 Kbytes in 0 Requests.\n"
	    "-- 1 unparsable envelope in queue/, 0 files in corrupt/.\n");
	free(c.buf);
	t = (struct relay_report_list_totals){ .bytes = 2048,
		.messages = 2,
		.unreadable = { .unparsable = 3, .corrupt = 1 } };
	cap_open(&c);
	must(relay_report_list_footer(c.f, &t));
	assert_string_equal(cap_close(&c),
	    "-- 2 Kbytes in 2 Requests.\n"
	    "-- 3 unparsable envelopes in queue/, 1 file in corrupt/.\n");
	free(c.buf);
}

/* The report says what it could not count, in text and JSON. */
static void
test_report_unreadable(void **state)
{
	struct relay_report rep;
	struct cap c;
	(void)state;

	relay_report_init(&rep, NOW);
	cap_open(&c);
	must(relay_report_print_json(c.f, &rep, NULL));
	assert_contains(cap_close(&c),
	    "\"unparsable_envelopes\":0,\"corrupt_files\":0,");
	free(c.buf);
	rep.unreadable.unparsable = 2;
	rep.unreadable.corrupt = 4;
	cap_open(&c);
	must(relay_report_print_text(c.f, &rep, "relay.test", false));
	assert_contains(cap_close(&c),
	    "\nNot counted below: 2 envelopes in "
	    "queue/ that do not parse, 4 files in corrupt/ (see queue list).\n");
	assert_contains(c.buf, "\nNo deferred mail.\n");
	free(c.buf);
	cap_open(&c);
	must(relay_report_print_json(c.f, &rep, NULL));
	assert_contains(cap_close(&c),
	    "\"unparsable_envelopes\":2,\"corrupt_files\":4,");
	free(c.buf);
	relay_report_free(&rep);
}

static void
test_list_json(void **state)
{
	struct relay_queue_envelope *e = sample_env();
	struct cap c;
	(void)state;

	must(relay_queue_set_str(&e->rcpt[0].reason, "bad \"reply\"\r\n\x01"));
	cap_open(&c);
	must(relay_report_list_json(c.f, e, NULL, NOW));
	cap_close(&c);
	assert_string_equal(c.buf,
	    "{\"queue_id\":\"00064A1B2C3D4E\",\"queue_name\":\"deferred\","
	    "\"arrival_time\":1795341300,\"message_size\":1234,"
	    "\"sender\":\"alice@example.org\",\"hold\":false,\"recipients\":["
	    "{\"address\":\"bob@example.net\",\"status\":\"deferred\","
	    "\"dsn\":\"4.7.5\",\"reason\":\"bad \\\"reply\\\"\\r\\n\\u0001\","
	    "\"failure_class\":\"tlsa-mismatch\",\"attempts\":3,"
	    "\"next_attempt\":1795349400,\"orcpt\":\"\","
	    "\"notify\":\"failure,delay\",\"delay_warned\":false},"
	    "{\"address\":\"carol@example.org\",\"status\":\"sent\","
	    "\"dsn\":\"2.0.0\",\"reason\":\"\",\"failure_class\":\"\","
	    "\"attempts\":0,\"next_attempt\":0,\"orcpt\":\"\","
	    "\"notify\":\"failure,delay\",\"delay_warned\":false}]}\n");
	free(c.buf);
	relay_queue_envelope_free(e);
}

/* ------------------------------------------------------------ show */

static void
test_show_text(void **state)
{
	struct relay_queue_envelope *e = sample_env();
	struct relay_report_headers h;
	static const char content[] =
	    "From: Alice <alice@example.org>\r\n"
	    "Subject: hello\r\n world\r\n\r\nbody\r\n";
	struct cap c;
	(void)state;

	/* A hostile reply must stay on one line without escape sequences. */
	must(relay_queue_set_str(&e->rcpt[0].attempt[0].reply,
	    "454 4.7.5 \x1b[31mred\r\nInjected: yes"));
	relay_report_headers_parse((const uint8_t *)content,
	    sizeof(content) - 1, &h);
	cap_open(&c);
	must(relay_report_show_text(c.f, e, &h, NOW));
	cap_close(&c);
	assert_contains(c.buf, "Queue ID:      00064A1B2C3D4E\n");
	assert_contains(c.buf, "Queue:         deferred\n");
	assert_contains(c.buf,
	    "Arrival:       2026-11-22 09:55:00 UTC (2h 5m ago)\n");
	assert_contains(c.buf, "Sender:        <alice@example.org>\n");
	assert_contains(c.buf, "  From:        Alice <alice@example.org>\n");
	assert_contains(c.buf, "  Subject:     hello world\n");
	assert_contains(c.buf, "  To:          (none)\n");
	assert_contains(c.buf,
	    "Recipient <bob@example.net>: deferred 4.7.5 "
	    "tlsa-mismatch\n");
	assert_contains(c.buf,
	    "  next attempt: 2026-11-22 12:10:00 UTC (in 10m)\n");
	assert_contains(c.buf, "    attempt 3 at 2026-11-22 11:58:00 UTC:\n");
	assert_contains(c.buf,
	    "      mx:           mx.example.net [192.0.2.1]\n");
	assert_contains(c.buf,
	    "      dnssec:       mx=secure addr=secure tlsa=secure\n");
	assert_contains(c.buf, "      tlsa seen:    3 1 1 ab12cd\n");
	assert_contains(c.buf, "      peer spki:    cd34\n");
	assert_contains(c.buf, "      match:        mismatch\n");
	assert_contains(c.buf,
	    "      reply:        454 4.7.5 ?[31mred Injected: yes\n");
	assert_contains(c.buf,
	    "      result:       deferred 4.7.5 tlsa-mismatch: "
	    "no TLSA record matched\n");
	assert_contains(c.buf, "Recipient <carol@example.org>: sent 2.0.0\n");
	assert_null(strchr(c.buf, '\x1b'));
	assert_null(strchr(c.buf, '\r'));
	free(c.buf);
	relay_queue_envelope_free(e);
}

/* An attempt whose level came from tls_policy_file names the entry, and
 * says when it switched DANE off; the global level adds no line. */
/* The report lists the time-boxed exceptions still in effect at its
 * time, with the days left; expired ones and ones without until= not. */
static void
test_report_policy_exceptions(void **state)
{
	/* NOW is 2026-11-22 12:00 UTC. */
	const char pol[] =
	    "broken.example may until=2026-11-25 reason=\"ticket 4711\"\n"
	    "today.example none until=2026-11-22\n"
	    "old.example may until=2026-11-21 reason=gone\n"
	    "perm.example encrypt\n";
	struct relay_tls_policy_entry *pe = NULL;
	size_t pn = 0;
	char err[RELAY_CONFIG_ERRMAX];
	struct relay_report r;
	struct cap c;
	(void)state;

	assert_int_equal(relay_tls_policy_parse("/etc/p", (const uint8_t *)pol,
	                     strlen(pol), &pe, &pn, err),
	    0);
	relay_report_init(&r, NOW);
	r.policy = pe;
	r.policy_count = pn;
	cap_open(&c);
	must(relay_report_print_text(c.f, &r, "h", false));
	cap_close(&c);
	assert_contains(c.buf,
	    "\nTime-boxed TLS policy exceptions in effect (tls_policy_file "
	    "until=):\n"
	    "  broken.example may until 2026-11-25 (3 days left), /etc/p:1: "
	    "ticket 4711\n"
	    "  today.example none until 2026-11-22 (0 days left), /etc/p:2\n");
	assert_null(strstr(c.buf, "old.example"));
	assert_null(strstr(c.buf, "perm.example"));
	free(c.buf);
	cap_open(&c);
	must(relay_report_print_json(c.f, &r, "h"));
	cap_close(&c);
	assert_contains(c.buf,
	    "\"policy_exceptions\":[{\"domain\":\"broken.example\",\"level\":"
	    "\"may\",\"until\":\"2026-11-25\",\"days_left\":3,\"entry\":{"
	    "\"file\":\"/etc/p\",\"line\":1},\"reason\":\"ticket 4711\"},"
	    "{\"domain\":\"today.example\",\"level\":\"none\",\"until\":"
	    "\"2026-11-22\",\"days_left\":0,\"entry\":{\"file\":\"/etc/p\","
	    "\"line\":2},\"reason\":\"\"}]}");
	free(c.buf);
	relay_report_free(&r);
	relay_tls_policy_free(pe, pn);
}

static void
test_show_policy_entry(void **state)
{
	struct relay_queue_envelope *e = sample_env();
	struct relay_queue_attempt *a = &e->rcpt[0].attempt[0];
	struct cap c;
	(void)state;

	must(relay_queue_set_str(&a->policy, "dane"));
	cap_open(&c);
	must(relay_report_show_text(c.f, e, NULL, NOW));
	cap_close(&c);
	assert_null(strstr(c.buf, "policy:"));
	free(c.buf);

	must(relay_queue_set_str(&a->policy, "none"));
	must(relay_queue_set_str(&a->policy_entry,
	    "/etc/danerelay/tls_policy:7"));
	cap_open(&c);
	must(relay_report_show_text(c.f, e, NULL, NOW));
	cap_close(&c);
	assert_contains(c.buf,
	    "      policy:       none (tls_policy_file "
	    "/etc/danerelay/tls_policy:7; DANE overridden)\n");
	free(c.buf);
	cap_open(&c);
	must(relay_report_show_json(c.f, e, NULL, NOW));
	cap_close(&c);
	assert_contains(c.buf,
	    "\"policy\":\"none\","
	    "\"policy_entry\":\"/etc/danerelay/tls_policy:7\"}");
	free(c.buf);

	/* An exception's reason goes with its entry. */
	must(relay_queue_set_str(&a->policy_reason, "ticket 4711"));
	cap_open(&c);
	must(relay_report_show_text(c.f, e, NULL, NOW));
	cap_close(&c);
	assert_contains(c.buf,
	    "      policy:       none (tls_policy_file "
	    "/etc/danerelay/tls_policy:7, reason: ticket 4711; DANE "
	    "overridden)\n");
	free(c.buf);
	cap_open(&c);
	must(relay_report_show_json(c.f, e, NULL, NOW));
	cap_close(&c);
	assert_contains(c.buf,
	    "\"policy_entry\":\"/etc/danerelay/tls_policy:7\","
	    "\"policy_reason\":\"ticket 4711\"}");
	free(c.buf);
	must(relay_queue_set_str(&a->policy_reason, ""));

	must(relay_queue_set_str(&a->policy, "dane-only"));
	cap_open(&c);
	must(relay_report_show_text(c.f, e, NULL, NOW));
	cap_close(&c);
	assert_contains(c.buf,
	    "      policy:       dane-only (tls_policy_file "
	    "/etc/danerelay/tls_policy:7)\n");
	free(c.buf);
	relay_queue_envelope_free(e);
}

/* The routing monitor's findings of an attempt: the kinds it logged and,
 * for a tlsa-mismatch, the rollover hint with its explanation. */
static void
test_show_routing_hint(void **state)
{
	struct relay_queue_envelope *e = sample_env();
	struct relay_queue_attempt *a = &e->rcpt[0].attempt[0];
	struct cap c;
	(void)state;

	cap_open(&c);
	must(relay_report_show_text(c.f, e, NULL, NOW));
	cap_close(&c);
	assert_null(strstr(c.buf, "routing:"));
	assert_null(strstr(c.buf, "hint:"));
	free(c.buf);

	must(relay_queue_set_str(&a->routing_change,
	    "address-new,key-new-unmatched"));
	must(relay_queue_set_str(&a->hint, "new-key-before-tlsa"));
	cap_open(&c);
	must(relay_report_show_text(c.f, e, NULL, NOW));
	cap_close(&c);
	assert_contains(c.buf,
	    "      routing:      address-new,key-new-unmatched\n");
	assert_contains(c.buf,
	    "      hint:         new-key-before-tlsa: the server presents a "
	    "new key that no TLSA record names");
	free(c.buf);
	cap_open(&c);
	must(relay_report_show_json(c.f, e, NULL, NOW));
	cap_close(&c);
	assert_contains(c.buf,
	    "\"routing_change\":\"address-new,key-new-unmatched\","
	    "\"hint\":\"new-key-before-tlsa\",\"hint_text\":\"the server");
	free(c.buf);
	relay_queue_envelope_free(e);
}

static void
test_show_json(void **state)
{
	struct relay_queue_envelope *e = sample_env();
	struct relay_report_headers h;
	static const char content[] = "Subject: a\r\n b\r\n\r\n";
	struct cap c;
	(void)state;

	relay_report_headers_parse((const uint8_t *)content,
	    sizeof(content) - 1, &h);
	cap_open(&c);
	must(relay_report_show_json(c.f, e, &h, NOW));
	cap_close(&c);
	assert_contains(c.buf,
	    "\"headers\":{\"from\":null,\"to\":null,"
	    "\"subject\":\"a b\",\"message_id\":null,\"date\":null}");
	assert_contains(c.buf,
	    "\"attempt_records\":[{\"time\":1795348680,"
	    "\"mx_host\":\"mx.example.net\",\"addr\":\"192.0.2.1\","
	    "\"dnssec_mx\":\"secure\",\"dnssec_addr\":\"secure\","
	    "\"dnssec_tlsa\":\"secure\",\"tlsa\":\"3 1 1 ab12cd\","
	    "\"tls\":\"dane-ee\",\"peer_spki\":\"cd34\","
	    "\"peer_names\":\"mx.example.net\",\"matched\":\"mismatch\","
	    "\"reply\":\"\",\"dsn\":\"4.7.5\",\"status\":\"deferred\","
	    "\"failure_class\":\"tlsa-mismatch\","
	    "\"reason\":\"no TLSA record matched\"}]");
	assert_contains(c.buf, "\"attempt_records\":[]}]}\n");
	free(c.buf);
	/* Without readable content the headers are null. */
	cap_open(&c);
	must(relay_report_show_json(c.f, e, NULL, NOW));
	assert_contains(cap_close(&c), "\"headers\":null");
	free(c.buf);
	relay_queue_envelope_free(e);
}

/* ------------------------------------------------------------ report */

/* Three messages, two destinations, four deferred recipients. */
static void
build_report(struct relay_report *rep)
{
	struct relay_queue_envelope *a =
	    env_new("00064A00000010", NOW - 120 * M, "s@x", 10);
	struct relay_queue_rcpt *r;
	r = rcpt(a, "x@a.example", RELAY_QUEUE_RCPT_DEFERRED, "4.7.5",
	    "tlsa-mismatch", "no TLSA record matched", NOW + M);
	attempt(r, NOW - 60 * S, "mx1.a.example", "192.0.2.1", "tlsa-mismatch",
	    "no TLSA record matched", "mismatch", "aaaa");
	r = rcpt(a, "y@a.example", RELAY_QUEUE_RCPT_DEFERRED, "4.7.5",
	    "tlsa-mismatch", "no TLSA record matched", NOW + M);
	attempt(r, NOW - 90 * S, "mx1.a.example", "192.0.2.1", "tlsa-mismatch",
	    "older", "mismatch", "bbbb");
	rcpt(a, "z@b.example", RELAY_QUEUE_RCPT_SENT, "2.0.0", "", "", 0);

	struct relay_queue_envelope *b =
	    env_new("00064A00000020", NOW - 3 * M, "s@x", 10);
	b->hold = true;
	r = rcpt(b, "w@A.Example", RELAY_QUEUE_RCPT_DEFERRED, "4.4.3",
	    "dns-lookup", "MX lookup SERVFAIL", NOW + M);
	attempt(r, NOW - 10 * S, "", "", "dns-lookup", "MX lookup SERVFAIL", "",
	    "");
	rcpt(b, "p@c.example", RELAY_QUEUE_RCPT_PENDING, "", "", "", 0);

	struct relay_queue_envelope *c =
	    env_new("00064A00000005", NOW - 1800 * M, "s@x", 10);
	rcpt(c, "v@b.example", RELAY_QUEUE_RCPT_DEFERRED, "4.4.1", "connect",
	    "connection refused", NOW + M);

	struct relay_queue_envelope *d =
	    env_new("00064A00000030", NOW, "s@x", 10);
	rcpt(d, "q@d.example", RELAY_QUEUE_RCPT_BOUNCED, "5.1.1", "smtp-5xx",
	    "no such user", 0);

	relay_report_init(rep, NOW);
	must(relay_report_add(rep, a));
	must(relay_report_add(rep, b));
	must(relay_report_add(rep, c));
	must(relay_report_add(rep, d));
	relay_report_sort(rep);
	relay_queue_envelope_free(a);
	relay_queue_envelope_free(b);
	relay_queue_envelope_free(c);
	relay_queue_envelope_free(d);
}

static void
test_report_aggregate(void **state)
{
	struct relay_report rep;
	(void)state;

	build_report(&rep);
	assert_int_equal(rep.total, 4);
	assert_int_equal(rep.messages, 3);
	assert_string_equal(rep.oldest_id, "00064A00000005");
	assert_int_equal(rep.count[0], 1); /* 3m */
	assert_int_equal(rep.count[5], 2); /* 120m */
	assert_int_equal(rep.count[9], 1); /* 1800m */
	assert_int_equal(rep.ndest, 2);

	const struct relay_report_dest *da = &rep.dest[0];
	assert_string_equal(da->domain, "a.example");
	assert_int_equal(da->total, 3);
	assert_int_equal(da->messages, 2);
	assert_int_equal(da->held, 1);
	assert_string_equal(da->oldest_id, "00064A00000010");
	assert_int_equal(da->ncls, 2);
	assert_string_equal(da->cls[0].failure_class, "tlsa-mismatch");
	assert_int_equal(da->cls[0].total, 2);
	assert_int_equal(da->cls[0].count[5], 2);
	assert_string_equal(da->cls[1].failure_class, "dns-lookup");
	assert_int_equal(da->cls[1].count[0], 1);
	/* Latest attempt of the domain: the held message's, 10 s ago. */
	assert_int_equal(da->latest.time_us, NOW - 10 * S);
	assert_string_equal(da->latest.failure_class, "dns-lookup");
	assert_string_equal(da->latest_id, "00064A00000020");
	assert_string_equal(da->latest_rcpt, "w@A.Example");

	const struct relay_report_dest *db = &rep.dest[1];
	assert_string_equal(db->domain, "b.example");
	assert_int_equal(db->total, 1);
	assert_int_equal(db->count[9], 1);
	/* No attempt record: the recipient's own outcome. */
	assert_int_equal(db->latest.time_us, 0);
	assert_string_equal(db->latest.reason, "connection refused");
	assert_string_equal(db->latest.mx_host, "");
	relay_report_free(&rep);
}

static void
test_report_text(void **state)
{
	struct relay_report rep;
	struct cap c;
	(void)state;

	build_report(&rep);
	cap_open(&c);
	must(relay_report_print_text(c.f, &rep, "relay.test", false));
	cap_close(&c);
	assert_contains(c.buf,
	    "danerelay deferred-delivery report for relay.test, "
	    "2026-11-22 12:00:00 UTC\n");
	assert_contains(c.buf,
	    "4 deferred recipients in 3 messages to 2 "
	    "destinations; oldest message 00064A00000005");
	assert_contains(c.buf,
	    "domain / failure class        T     5m    10m    "
	    "20m    40m    80m   160m   320m   640m  1280m 1280m+\n");
	assert_contains(c.buf,
	    "TOTAL                         4      1      0      "
	    "0      0      0      2      0      0      0      1\n");
	assert_contains(c.buf,
	    "a.example                     3      1      0      "
	    "0      0      0      2      0      0      0      0\n");
	assert_contains(c.buf,
	    "  tlsa-mismatch               2      0      0      "
	    "0      0      0      2      0      0      0      0\n");
	assert_contains(c.buf,
	    "  connect                     1      0      0      "
	    "0      0      0      0      0      0      0      1\n");
	assert_contains(c.buf,
	    "a.example: 3 deferred recipients in 2 messages "
	    "(1 held), oldest 00064A00000010 (2h 0m)\n");
	assert_contains(c.buf,
	    "  latest attempt 2026-11-22 11:59:50 UTC, message "
	    "00064A00000020, <w@A.Example>:\n");
	assert_contains(c.buf,
	    "    result:     dns-lookup 4.7.5: MX lookup SERVFAIL\n");
	assert_contains(c.buf,
	    "b.example: 1 deferred recipient in 1 message, "
	    "oldest 00064A00000005 (1d 6h)\n");
	assert_contains(c.buf,
	    "    result:     connect 4.4.1: connection refused\n");
	assert_contains(c.buf,
	    "Hints:\n  tlsa-mismatch: the server's key does not "
	    "match its TLSA records; if the key was rotated, the domain must "
	    "publish a TLSA record for the new key\n");
	assert_contains(c.buf, "  dns-lookup: ");
	assert_contains(c.buf, "  connect: ");
	/* Each hint once. */
	const char *h = strstr(c.buf, "  tlsa-mismatch: ");
	assert_null(strstr(h + 1, "  tlsa-mismatch: "));
	free(c.buf);
	relay_report_free(&rep);
}

static void
test_report_json(void **state)
{
	struct relay_report rep;
	struct cap c;
	(void)state;

	build_report(&rep);
	cap_open(&c);
	must(relay_report_print_json(c.f, &rep, "relay.test"));
	cap_close(&c);
	assert_contains(c.buf,
	    "{\"hostname\":\"relay.test\",\"time\":1795348800,"
	    "\"buckets\":[\"5m\",\"10m\",\"20m\",\"40m\",\"80m\",\"160m\","
	    "\"320m\",\"640m\",\"1280m\",\"1280m+\"],\"recipients\":4,"
	    "\"messages\":3,");
	assert_contains(c.buf,
	    "{\"domain\":\"a.example\",\"recipients\":3,"
	    "\"messages\":2,\"held\":1,");
	assert_contains(c.buf,
	    "{\"failure_class\":\"tlsa-mismatch\","
	    "\"recipients\":2,\"counts\":{\"5m\":0,\"10m\":0,\"20m\":0,\"40m\":0,"
	    "\"80m\":0,\"160m\":2,\"320m\":0,\"640m\":0,\"1280m\":0,"
	    "\"1280m+\":0},\"hint\":\"the server's key does not match");
	assert_contains(c.buf,
	    "\"latest\":{\"time\":1795348790,"
	    "\"queue_id\":\"00064A00000020\",\"recipient\":\"w@A.Example\","
	    "\"failure_class\":\"dns-lookup\"");
	assert_int_equal(c.buf[c.len - 1], '\n');
	free(c.buf);
	relay_report_free(&rep);
}

static void
test_report_empty_and_ascii(void **state)
{
	struct relay_report rep;
	struct cap c;
	(void)state;

	relay_report_init(&rep, NOW);
	cap_open(&c);
	must(relay_report_print_text(c.f, &rep, "relay.test", true));
	assert_contains(cap_close(&c), "\nNo deferred mail.\n");
	free(c.buf);
	cap_open(&c);
	must(relay_report_print_json(c.f, &rep, NULL));
	assert_contains(cap_close(&c), "\"recipients\":0,\"messages\":0,");
	assert_contains(c.buf,
	    "\"oldest\":null,\"destinations\":[],\"policy_exceptions\":[]}");
	free(c.buf);
	relay_report_free(&rep);

	/* ASCII mode (the report mail) replaces non-ASCII bytes. */
	struct relay_queue_envelope *e =
	    env_new("00064A00000040", NOW - M, "s@x", 1);
	rcpt(e, "j\xc3\xb6rg@b\xc3\xbc.example", RELAY_QUEUE_RCPT_DEFERRED,
	    "4.4.1", "connect", "caf\xc3\xa9 closed", NOW + M);
	relay_report_init(&rep, NOW);
	must(relay_report_add(&rep, e));
	relay_report_sort(&rep);
	cap_open(&c);
	must(relay_report_print_text(c.f, &rep, "relay.test", true));
	cap_close(&c);
	assert_contains(c.buf, "b?.example: 1 deferred");
	assert_contains(c.buf, "<j?rg@b?.example>");
	assert_contains(c.buf, "connect 4.4.1: caf? closed");
	for (size_t i = 0; i < c.len; i++)
		assert_true((unsigned char)c.buf[i] < 0x80);
	free(c.buf);
	/* Without ASCII mode valid UTF-8 passes. */
	cap_open(&c);
	must(relay_report_print_text(c.f, &rep, "relay.test", false));
	assert_contains(cap_close(&c), "b\xc3\xbc.example: 1 deferred");
	free(c.buf);
	relay_report_free(&rep);
	relay_queue_envelope_free(e);
}

static void
test_hints(void **state)
{
	static const char *const classes[] = {
		"tlsa-mismatch",
		"dnssec-bogus",
		"tlsa-lookup",
		"starttls-missing",
		"tls-handshake",
		"dns-lookup",
		"connect",
		"smtp-4xx",
		"smtp-5xx",
		"dane-required",
		"tlsa-invalid",
		"null-mx",
		"dnssec-selftest",
		"address",
		"shutdown",
		"smtp-protocol",
		"message-size",
		"smtputf8-missing",
		"local",
	};
	const char *generic = relay_report_class_hint("no-such-class");
	(void)state;

	assert_non_null(generic);
	assert_ptr_equal(relay_report_class_hint(NULL), generic);
	/* Every class the daemon writes has its own hint. */
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		const char *h = relay_report_class_hint(classes[i]);
		assert_ptr_not_equal(h, generic);
		assert_null(strchr(h, '\n'));
		for (size_t k = 0; k < i; k++)
			assert_ptr_not_equal(h,
			    relay_report_class_hint(classes[k]));
	}
}

#define ADD_TABLE(fn, table, namefield)                                        \
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {        \
		struct CMUnitTest c_ =                                         \
		    cmocka_unit_test_prestate(fn, (void *)&table[i]);          \
		c_.name = table[i].namefield;                                  \
		t[n++] = c_;                                                   \
	}

int
main(void)
{
	struct CMUnitTest t[128];
	size_t n = 0;

	setenv("TZ", "UTC", 1);
	tzset();
	ADD_TABLE(test_bucket, bucket_cases, name);
	ADD_TABLE(test_filter, filter_cases, name);
	ADD_TABLE(test_headers, hdr_cases, name);
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_queue_name),
		cmocka_unit_test(test_list_text),
		cmocka_unit_test(test_list_text_filter_and_empty),
		cmocka_unit_test(test_list_footer_unreadable),
		cmocka_unit_test(test_report_unreadable),
		cmocka_unit_test(test_list_json),
		cmocka_unit_test(test_show_text),
		cmocka_unit_test(test_show_json),
		cmocka_unit_test(test_show_policy_entry),
		cmocka_unit_test(test_show_routing_hint),
		cmocka_unit_test(test_report_policy_exceptions),
		cmocka_unit_test(test_report_aggregate),
		cmocka_unit_test(test_report_text),
		cmocka_unit_test(test_report_json),
		cmocka_unit_test(test_report_empty_and_ascii),
		cmocka_unit_test(test_hints),
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		t[n++] = fixed[i];
	assert_true(n <= sizeof(t) / sizeof(t[0]));
	return _cmocka_run_group_tests("relay_report", t, n, NULL, NULL);
}
