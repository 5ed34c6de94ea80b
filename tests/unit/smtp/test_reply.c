/* Tests for smtp_reply.c: reply parser (RFC 5321 4.2, 4.5.3.1.5), enhanced
 * status codes (RFC 3463, RFC 2034), capabilities, results. Every input is
 * parsed whole, then as every prefix (split at every offset, byte by
 * byte): a prefix gives AGAIN or exactly the whole-input result. */
#include "smtp_test.h"

struct row {
	const char *name;
	const char *in;
	int rc; /* bytes consumed or error */
	unsigned code;
	size_t nlines;
	const char *status; /* "4.7.1" or NULL */
	const char *text;
};

static const struct row rows[] = {
	{ "single line", "250 ok\r\n", 8, 250, 1, NULL, "ok" },
	{ "enhanced", "250 2.1.0 Sender ok\r\n", 21, 250, 1, "2.1.0",
	    "Sender ok" },
	{ "enhanced 3-digit", "550 5.7.254 no\r\n", 16, 550, 1, "5.7.254",
	    "no" },
	{ "class mismatch kept as text", "250 5.1.1 odd\r\n", 15, 250, 1, NULL,
	    "5.1.1 odd" },
	{ "leading zero not enhanced", "451 4.01.1 x\r\n", 14, 451, 1, NULL,
	    "4.01.1 x" },
	{ "enhanced only", "221 2.0.0\r\n", 11, 221, 1, "2.0.0", "" },
	{ "code only", "250\r\n", 5, 250, 1, NULL, "" },
	{ "code and space", "250 \r\n", 6, 250, 1, NULL, "" },
	{ "multiline", "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
	    46, 250, 3, NULL, "mx.example" },
	{ "multiline enhanced", "550-5.1.1 no such\r\n550 5.1.1 user\r\n", 35,
	    550, 2, "5.1.1", "no such" },
	{ "multiline empty dash", "220-\r\n220 hi\r\n", 14, 220, 2, NULL, "" },
	{ "trailing data not consumed", "250 a\r\n354 b\r\n", 7, 250, 1, NULL,
	    "a" },
	{ "tab in text", "250 a\tb\r\n", 9, 250, 1, NULL, "a\tb" },
	{ "utf8 text", "250 gr\xc3\xbc\xc3\x9f\r\n", 12, 250, 1, NULL,
	    "gr\xc3\xbc\xc3\x9f" },
	{ "code 559", "559 x\r\n", 7, 559, 1, NULL, "x" },
	{ "incomplete line", "250 ok", SMTP_ERR_AGAIN, 0, 0, NULL, NULL },
	{ "incomplete multiline", "250-a\r\n250-b\r\n", SMTP_ERR_AGAIN, 0, 0,
	    NULL, NULL },
	{ "empty", "", SMTP_ERR_AGAIN, 0, 0, NULL, NULL },
	{ "codes differ", "250-a\r\n251 b\r\n", SMTP_ERR_SYNTAX, 0, 0, NULL,
	    NULL },
	{ "first digit 1", "150 x\r\n", SMTP_ERR_SYNTAX, 0, 0, NULL, NULL },
	{ "first digit 6", "650 x\r\n", SMTP_ERR_SYNTAX, 0, 0, NULL, NULL },
	{ "second digit 6", "260 x\r\n", SMTP_ERR_SYNTAX, 0, 0, NULL, NULL },
	{ "letter in code", "2x0 x\r\n", SMTP_ERR_SYNTAX, 0, 0, NULL, NULL },
	{ "bad separator", "250_x\r\n", SMTP_ERR_SYNTAX, 0, 0, NULL, NULL },
	{ "bare LF", "250 ok\n", SMTP_ERR_BARE_NL, 0, 0, NULL, NULL },
	{ "bare LF after code", "250\n", SMTP_ERR_SYNTAX, 0, 0, NULL, NULL },
	{ "CR inside", "250 o\rk\r\n", SMTP_ERR_BARE_NL, 0, 0, NULL, NULL },
	{ "NUL in text", "250 o\x00k\r\n", SMTP_ERR_SYNTAX, 0, 0, NULL, NULL },
	{ "ESC in text", "250 o\x1bk\r\n", SMTP_ERR_SYNTAX, 0, 0, NULL, NULL },
	{ "two-digit code", "25 x\r\n", SMTP_ERR_SYNTAX, 0, 0, NULL, NULL },
	{ "bare LF in continuation", "250-a\r\n250 b\n", SMTP_ERR_BARE_NL, 0, 0,
	    NULL, NULL },
};

/* Lines at and around the 512-octet limit. */
static char line512[600], line513[600], line_open[600];

static const struct row long_rows[] = {
	{ "line of 512 octets accepted", line512, 512, 250, 1, NULL, NULL },
	{ "line of 513 octets refused", line513, SMTP_ERR_TOO_LONG, 0, 0, NULL,
	    NULL },
	{ "unterminated long line refused", line_open, SMTP_ERR_TOO_LONG, 0, 0,
	    NULL, NULL },
};

static void
fill_long(void)
{
	memset(line512, 'a', 510);
	memcpy(line512, "250 ", 4);
	memcpy(line512 + 510, "\r\n", 3);
	memset(line513, 'a', 511);
	memcpy(line513, "250 ", 4);
	memcpy(line513 + 511, "\r\n", 3);
	memset(line_open, 'a', 590);
	memcpy(line_open, "250-", 4);
	line_open[590] = '\0';
}

static size_t
in_len(const struct row *r)
{
	/* Inputs may hold NUL: the NUL row is the only one; use sizeof there. */
	if (strcmp(r->name, "NUL in text") == 0)
		return 9;
	return strlen(r->in);
}

static void
t_row(void **state)
{
	const struct row *r = *state;
	size_t len = in_len(r);
	struct smtp_reply rep;
	int rc = smtp_reply_parse(U(r->in), len, &rep);
	assert_int_equal(rc, r->rc);
	if (rc > 0) {
		assert_int_equal(rep.code, r->code);
		assert_int_equal(rep.nlines, r->nlines);
		assert_int_equal(rep.raw.len, (size_t)rc);
		if (r->status) {
			char buf[16];
			assert_string_equal(smtp_status_format(&rep.status, buf,
			                        sizeof(buf)),
			    r->status);
		} else {
			assert_int_equal(rep.status.klass, 0);
		}
		if (r->text) {
			assert_int_equal(rep.text.len, strlen(r->text));
			assert_memory_equal(rep.text.p, r->text, rep.text.len);
		}
	}
	/* Every prefix: AGAIN, or the same outcome (split/byte-by-byte). */
	for (size_t k = 0; k < len; k++) {
		struct smtp_reply r2;
		int rc2 = smtp_reply_parse(U(r->in), k, &r2);
		if (rc2 == SMTP_ERR_AGAIN)
			continue;
		assert_int_equal(rc2, rc);
		if (rc2 > 0)
			assert_int_equal(r2.code, rep.code);
	}
}

static void
t_lines_iter(void **state)
{
	const char *in =
	    "250-mx.example greets\r\n250-SIZE 1000\r\n250 STARTTLS\r\n";
	struct smtp_reply r;
	assert_int_equal(smtp_reply_parse(U(in), strlen(in), &r),
	    (int)strlen(in));
	size_t pos = 0;
	struct smtp_slice l;
	const char *want[] = { "mx.example greets", "SIZE 1000", "STARTTLS" };
	for (int i = 0; i < 3; i++) {
		assert_true(smtp_reply_line(&r, &pos, &l));
		assert_int_equal(l.len, strlen(want[i]));
		assert_memory_equal(l.p, want[i], l.len);
	}
	assert_false(smtp_reply_line(&r, &pos, &l));
}

static void
t_caps(void **state)
{
	const char *in =
	    "250-mx.example\r\n250-pipelining\r\n250-SIZE 35882577\r\n"
	    "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"
	    "250-SMTPUTF8\r\n250-CHUNKING\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n";
	struct smtp_reply r;
	assert_true(smtp_reply_parse(U(in), strlen(in), &r) > 0);
	struct smtp_caps c;
	smtp_caps_parse(&r, &c);
	assert_true(c.esmtp && c.pipelining && c.size && c.eightbitmime);
	assert_true(c.enhancedstatuscodes && c.dsn && c.smtputf8 &&
	    c.chunking && c.starttls);
	assert_false(c.binarymime);
	assert_int_equal(c.size_max, 35882577);
}

static void
t_caps_greeting_not_keyword(void **state)
{
	/* The first line is the greeting even if it looks like a keyword. */
	const char *in = "250-STARTTLS\r\n250 SIZE\r\n";
	struct smtp_reply r;
	assert_true(smtp_reply_parse(U(in), strlen(in), &r) > 0);
	struct smtp_caps c;
	smtp_caps_parse(&r, &c);
	assert_false(c.starttls);
	assert_true(c.size);
	assert_int_equal(c.size_max, 0);
}

static void
t_caps_size_garbage(void **state)
{
	const char *in = "250-x\r\n250 SIZE 99999999999999999999999\r\n";
	struct smtp_reply r;
	assert_true(smtp_reply_parse(U(in), strlen(in), &r) > 0);
	struct smtp_caps c;
	smtp_caps_parse(&r, &c);
	assert_true(c.size);
	assert_int_equal(c.size_max, 0);
}

static void
t_status_parse(void **state)
{
	struct smtp_status st;
	assert_int_equal(smtp_status_parse(U("4.7.5"), 5, &st), 5);
	assert_int_equal(st.klass, 4);
	assert_int_equal(st.subject, 7);
	assert_int_equal(st.detail, 5);
	assert_int_equal(smtp_status_parse(U("5.1.10 x"), 8, &st), 6);
	assert_int_equal(st.detail, 10);
	assert_int_equal(smtp_status_parse(U("3.1.1"), 5, &st),
	    SMTP_ERR_SYNTAX);
	assert_int_equal(smtp_status_parse(U("4.7"), 3, &st), SMTP_ERR_SYNTAX);
	assert_int_equal(smtp_status_parse(U("4.7.1234"), 8, &st),
	    SMTP_ERR_SYNTAX);
	assert_int_equal(smtp_status_parse(U("4.7.5x"), 6, &st),
	    SMTP_ERR_SYNTAX);
}

static void
t_result_from_reply(void **state)
{
	const char *in =
	    "550-5.1.1 <a@b>: no such user\r\n550 5.1.1 see the docs\r\n";
	struct smtp_reply r;
	assert_true(smtp_reply_parse(U(in), strlen(in), &r) > 0);
	struct smtp_result res;
	smtp_result_from_reply(&res, &r, SMTP_STAGE_RCPT);
	assert_int_equal(res.klass, 5);
	assert_int_equal(res.code, 550);
	assert_false(res.status_synth);
	assert_int_equal(res.status.subject, 1);
	assert_int_equal(res.stage, SMTP_STAGE_RCPT);
	assert_int_equal(res.reason, SMTP_REASON_REPLY);
	assert_string_equal(res.text, "<a@b>: no such user see the docs");
}

static void
t_result_synth(void **state)
{
	const char *in = "451 try later\r\n";
	struct smtp_reply r;
	assert_true(smtp_reply_parse(U(in), strlen(in), &r) > 0);
	struct smtp_result res;
	smtp_result_from_reply(&res, &r, SMTP_STAGE_DOT);
	assert_int_equal(res.klass, 4);
	assert_true(res.status_synth);
	char buf[16];
	assert_string_equal(smtp_status_format(&res.status, buf, sizeof(buf)),
	    "4.0.0");
	assert_string_equal(res.text, "try later");
}

static void
t_result_text_truncated(void **state)
{
	/* 20 lines of 500 octets: the result text is truncated, terminated. */
	struct sbuf b = { 0 };
	for (int i = 0; i < 20; i++) {
		sb_printf(&b, "550%c", i == 19 ? ' ' : '-');
		for (int k = 0; k < 500; k++)
			sb_add(&b, "x", 1);
		sb_add(&b, "\r\n", 2);
	}
	struct smtp_reply r;
	assert_int_equal(smtp_reply_parse(U(sb_str(&b)), b.len, &r),
	    (int)b.len);
	struct smtp_result res;
	smtp_result_from_reply(&res, &r, SMTP_STAGE_RCPT);
	assert_int_equal(strlen(res.text), SMTP_RESULT_TEXT_MAX - 1);
	sb_free(&b);
}

static void
t_too_many_lines(void **state)
{
	struct sbuf b = { 0 };
	for (int i = 0; i < SMTP_REPLY_LINES_MAX + 1; i++)
		sb_printf(&b, "250%cx\r\n",
		    i == SMTP_REPLY_LINES_MAX ? ' ' : '-');
	struct smtp_reply r;
	assert_int_equal(smtp_reply_parse(U(sb_str(&b)), b.len, &r),
	    SMTP_ERR_TOO_LONG);
	sb_free(&b);
}

int
main(void)
{
	fill_long();
	struct case_list l = { 0 };
	CASES(&l, rows, t_row);
	CASES(&l, long_rows, t_row);
	case_add(&l, "line iterator", t_lines_iter, NULL);
	case_add(&l, "EHLO capabilities", t_caps, NULL);
	case_add(&l, "greeting is not a keyword", t_caps_greeting_not_keyword,
	    NULL);
	case_add(&l, "SIZE overflow means no limit", t_caps_size_garbage, NULL);
	case_add(&l, "enhanced status parser", t_status_parse, NULL);
	case_add(&l, "result from multiline reply", t_result_from_reply, NULL);
	case_add(&l, "result with synthesized status", t_result_synth, NULL);
	case_add(&l, "result text truncated", t_result_text_truncated, NULL);
	case_add(&l, "too many lines", t_too_many_lines, NULL);
	return case_run(&l, "smtp_reply");
}
