/* Tests for smtp_cmd.c: line scanner, command parser (RFC 5321 4.1.1),
 * ESMTP parameters (RFC 1870, 6152, 3461, 6531, 3030), formatter. */
#include "smtp_test.h"

struct row {
	const char *name;
	const char *in;
	int rc;
	enum smtp_verb verb;
	const char *addr; /* smtp_addr_format() of the path */
	uint64_t size;    /* MAIL SIZE or BDAT size */
	enum smtp_body body;
	enum smtp_ret ret;
	const char *envid;
	bool smtputf8;
	bool requiretls;
	unsigned notify;
	const char *orcpt;
	bool last;
	const char *param; /* on SMTP_ERR_PARAM */
};

static const struct row rows[] = {
	{ .name = "EHLO",
	    .in = "EHLO client.example\r\n",
	    .verb = SMTP_VERB_EHLO },
	{ .name = "lowercase verb",
	    .in = "ehlo client.example\r\n",
	    .verb = SMTP_VERB_EHLO },
	{ .name = "HELO", .in = "HELO c\r\n", .verb = SMTP_VERB_HELO },
	{ .name = "EHLO without domain",
	    .in = "EHLO\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_EHLO },
	{ .name = "MAIL simple",
	    .in = "MAIL FROM:<a@x.y>\r\n",
	    .verb = SMTP_VERB_MAIL,
	    .addr = "a@x.y" },
	{ .name = "MAIL null sender",
	    .in = "MAIL FROM:<>\r\n",
	    .verb = SMTP_VERB_MAIL,
	    .addr = "" },
	{ .name = "MAIL mixed case FROM",
	    .in = "mail from:<a@x.y>\r\n",
	    .verb = SMTP_VERB_MAIL,
	    .addr = "a@x.y" },
	{ .name = "MAIL all params",
	    .in =
	        "MAIL FROM:<a@x.y> SIZE=12345 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1 SMTPUTF8\r\n",
	    .verb = SMTP_VERB_MAIL,
	    .addr = "a@x.y",
	    .size = 12345,
	    .body = SMTP_BODY_8BITMIME,
	    .ret = SMTP_RET_HDRS,
	    .envid = "QQ+2B1",
	    .smtputf8 = true },
	{ .name = "MAIL BODY=7BIT RET=FULL",
	    .in = "MAIL FROM:<a@x.y> body=7bit ret=full",
	    .verb = SMTP_VERB_MAIL,
	    .addr = "a@x.y",
	    .body = SMTP_BODY_7BIT,
	    .ret = SMTP_RET_FULL },
	{ .name = "MAIL utf8 address",
	    .in = "MAIL FROM:<\xc3\xa9@x.y> SMTPUTF8\r\n",
	    .verb = SMTP_VERB_MAIL,
	    .addr = "\xc3\xa9@x.y",
	    .smtputf8 = true },
	{ .name = "MAIL space after colon",
	    .in = "MAIL FROM: <a@x.y>\r\n",
	    .rc = SMTP_ERR_ADDR,
	    .verb = SMTP_VERB_MAIL },
	{ .name = "MAIL missing FROM",
	    .in = "MAIL <a@x.y>\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_MAIL },
	{ .name = "MAIL unknown param",
	    .in = "MAIL FROM:<a@x.y> AUTH=<>\r\n",
	    .rc = SMTP_ERR_PARAM,
	    .verb = SMTP_VERB_MAIL,
	    .param = "AUTH" },
	{ .name = "MAIL duplicate SIZE",
	    .in = "MAIL FROM:<a@x.y> SIZE=1 SIZE=2\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_MAIL },
	{ .name = "MAIL SIZE not a number",
	    .in = "MAIL FROM:<a@x.y> SIZE=12a\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_MAIL },
	{ .name = "MAIL SIZE 21 digits",
	    .in = "MAIL FROM:<a@x.y> SIZE=123456789012345678901\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_MAIL },
	{ .name = "MAIL bad BODY",
	    .in = "MAIL FROM:<a@x.y> BODY=9BIT\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_MAIL },
	{ .name = "MAIL REQUIRETLS (RFC 8689 2)",
	    .in = "MAIL FROM:<a@x.y> REQUIRETLS\r\n",
	    .verb = SMTP_VERB_MAIL,
	    .addr = "a@x.y",
	    .requiretls = true },
	{ .name = "MAIL requiretls lower case, with SMTPUTF8",
	    .in = "MAIL FROM:<a@x.y> SMTPUTF8 requiretls\r\n",
	    .verb = SMTP_VERB_MAIL,
	    .addr = "a@x.y",
	    .smtputf8 = true,
	    .requiretls = true },
	{ .name = "MAIL REQUIRETLS with value",
	    .in = "MAIL FROM:<a@x.y> REQUIRETLS=YES\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_MAIL },
	{ .name = "MAIL REQUIRETLS twice",
	    .in = "MAIL FROM:<a@x.y> REQUIRETLS REQUIRETLS\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_MAIL },
	{ .name = "MAIL SMTPUTF8 with value",
	    .in = "MAIL FROM:<a@x.y> SMTPUTF8=1\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_MAIL },
	{ .name = "MAIL ENVID bad xtext",
	    .in = "MAIL FROM:<a@x.y> ENVID=a+zz\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_MAIL },
	{ .name = "MAIL two spaces before param",
	    .in = "MAIL FROM:<a@x.y>  SIZE=1\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_MAIL },
	{ .name = "MAIL empty param value",
	    .in = "MAIL FROM:<a@x.y> SIZE=\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_MAIL },
	{ .name = "RCPT simple",
	    .in = "RCPT TO:<b@x.y>\r\n",
	    .verb = SMTP_VERB_RCPT,
	    .addr = "b@x.y" },
	{ .name = "RCPT postmaster",
	    .in = "RCPT TO:<Postmaster>\r\n",
	    .verb = SMTP_VERB_RCPT,
	    .addr = "Postmaster" },
	{ .name = "RCPT NOTIFY and ORCPT",
	    .in =
	        "RCPT TO:<b@x.y> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+40x.y\r\n",
	    .verb = SMTP_VERB_RCPT,
	    .addr = "b@x.y",
	    .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY,
	    .orcpt = "rfc822;b+40x.y" },
	{ .name = "RCPT NOTIFY=NEVER",
	    .in = "RCPT TO:<b@x.y> NOTIFY=never\r\n",
	    .verb = SMTP_VERB_RCPT,
	    .addr = "b@x.y",
	    .notify = SMTP_NOTIFY_NEVER },
	{ .name = "RCPT NOTIFY NEVER combined",
	    .in = "RCPT TO:<b@x.y> NOTIFY=NEVER,DELAY\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_RCPT },
	{ .name = "RCPT NOTIFY trailing comma",
	    .in = "RCPT TO:<b@x.y> NOTIFY=DELAY,\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_RCPT },
	{ .name = "RCPT ORCPT without type",
	    .in = "RCPT TO:<b@x.y> ORCPT=;b\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_RCPT },
	{ .name = "RCPT null path",
	    .in = "RCPT TO:<>\r\n",
	    .rc = SMTP_ERR_ADDR,
	    .verb = SMTP_VERB_RCPT },
	{ .name = "RCPT MAIL param refused",
	    .in = "RCPT TO:<b@x.y> SIZE=1\r\n",
	    .rc = SMTP_ERR_PARAM,
	    .verb = SMTP_VERB_RCPT,
	    .param = "SIZE" },
	{ .name = "DATA", .in = "DATA\r\n", .verb = SMTP_VERB_DATA },
	{ .name = "DATA with argument",
	    .in = "DATA x\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_DATA },
	{ .name = "BDAT",
	    .in = "BDAT 1000\r\n",
	    .verb = SMTP_VERB_BDAT,
	    .size = 1000 },
	{ .name = "BDAT LAST",
	    .in = "BDAT 0 LAST\r\n",
	    .verb = SMTP_VERB_BDAT,
	    .size = 0,
	    .last = true },
	{ .name = "BDAT bad size",
	    .in = "BDAT -1\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_BDAT },
	{ .name = "BDAT bad marker",
	    .in = "BDAT 1 FIRST\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_BDAT },
	{ .name = "RSET", .in = "RSET\r\n", .verb = SMTP_VERB_RSET },
	{ .name = "NOOP with text",
	    .in = "NOOP hello\r\n",
	    .verb = SMTP_VERB_NOOP },
	{ .name = "QUIT", .in = "QUIT\r\n", .verb = SMTP_VERB_QUIT },
	{ .name = "VRFY", .in = "VRFY bob\r\n", .verb = SMTP_VERB_VRFY },
	{ .name = "VRFY without arg",
	    .in = "VRFY\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_VRFY },
	{ .name = "HELP", .in = "HELP\r\n", .verb = SMTP_VERB_HELP },
	{ .name = "STARTTLS",
	    .in = "STARTTLS\r\n",
	    .verb = SMTP_VERB_STARTTLS },
	{ .name = "STARTTLS with argument",
	    .in = "STARTTLS now\r\n",
	    .rc = SMTP_ERR_SYNTAX,
	    .verb = SMTP_VERB_STARTTLS },
	{ .name = "unknown verb",
	    .in = "XYZZY\r\n",
	    .rc = SMTP_ERR_UNKNOWN_CMD },
	{ .name = "verb prefix not a verb",
	    .in = "MAILX FROM:<a@x.y>\r\n",
	    .rc = SMTP_ERR_UNKNOWN_CMD },
	{ .name = "empty line", .in = "\r\n", .rc = SMTP_ERR_UNKNOWN_CMD },
};

static void
t_row(void **state)
{
	const struct row *r = *state;
	struct smtp_cmd c;
	int rc = smtp_cmd_parse(U(r->in), strlen(r->in), &c);
	assert_int_equal(rc, r->rc);
	if (rc != SMTP_ERR_UNKNOWN_CMD)
		assert_int_equal(c.verb, r->verb);
	if (rc == SMTP_ERR_PARAM) {
		assert_int_equal(c.param.len, strlen(r->param));
		assert_memory_equal(c.param.p, r->param, c.param.len);
	}
	if (rc != 0)
		return;
	if (r->addr) {
		char buf[SMTP_PATH_MAX + 1];
		assert_true(smtp_addr_format(&c.addr, buf, sizeof(buf)) >= 0);
		assert_string_equal(buf, r->addr);
	}
	if (r->verb == SMTP_VERB_MAIL) {
		assert_int_equal(c.mail.has_size, r->size != 0);
		assert_int_equal(c.mail.size, r->size);
		assert_int_equal(c.mail.body, r->body);
		assert_int_equal(c.mail.ret, r->ret);
		assert_int_equal(c.mail.smtputf8, r->smtputf8);
		assert_int_equal(c.mail.requiretls, r->requiretls);
		assert_int_equal(c.mail.envid.len,
		    r->envid ? strlen(r->envid) : 0);
		if (r->envid)
			assert_memory_equal(c.mail.envid.p, r->envid,
			    c.mail.envid.len);
	}
	if (r->verb == SMTP_VERB_RCPT) {
		assert_int_equal(c.rcpt.notify, r->notify);
		assert_int_equal(c.rcpt.orcpt.len,
		    r->orcpt ? strlen(r->orcpt) : 0);
		if (r->orcpt)
			assert_memory_equal(c.rcpt.orcpt.p, r->orcpt,
			    c.rcpt.orcpt.len);
	}
	if (r->verb == SMTP_VERB_BDAT) {
		assert_int_equal(c.bdat_size, r->size);
		assert_int_equal(c.bdat_last, r->last);
	}
}

struct scan_row {
	const char *name;
	const char *in;
	size_t max;
	int rc;
	size_t linelen;
};

static const struct scan_row scan_rows[] = {
	{ "scan complete line", "NOOP\r\nQUIT\r\n", 512, 6, 6 },
	{ "scan incomplete", "NOOP", 512, SMTP_ERR_AGAIN, 0 },
	{ "scan CR at end", "NOOP\r", 512, SMTP_ERR_AGAIN, 0 },
	{ "scan bare LF", "NOOP\nQUIT\r\n", 512, SMTP_ERR_BARE_NL, 5 },
	{ "scan bare CR", "NO\rOP\r\n", 512, SMTP_ERR_BARE_NL, 3 },
	{ "scan exactly max", "12345678\r\n", 10, 10, 10 },
	{ "scan one over max", "123456789\r\n", 10, SMTP_ERR_TOO_LONG, 0 },
	{ "scan max without CRLF", "1234567890", 10, SMTP_ERR_TOO_LONG, 0 },
};

static void
t_scan(void **state)
{
	const struct scan_row *r = *state;
	size_t len = strlen(r->in);
	size_t ll = 0;
	int rc = smtp_line_scan(U(r->in), len, r->max, &ll);
	assert_int_equal(rc, r->rc);
	if (rc > 0 || rc == SMTP_ERR_BARE_NL)
		assert_int_equal(ll, r->linelen);
	/* Prefixes give AGAIN or the same answer. */
	for (size_t k = 0; k < len; k++) {
		int rc2 = smtp_line_scan(U(r->in), k, r->max, NULL);
		if (rc2 != SMTP_ERR_AGAIN)
			assert_int_equal(rc2, rc);
	}
}

static void
t_format(void **state)
{
	struct smtp_buf b;
	smtp_buf_init(&b, 4096);
	assert_int_equal(smtp_cmd_format(&b, "MAIL", U("FROM:<a@x.y>"), 12), 0);
	assert_int_equal(smtp_cmd_format(&b, "QUIT", NULL, 0), 0);
	const char *want = "MAIL FROM:<a@x.y>\r\nQUIT\r\n";
	assert_int_equal(smtp_buf_len(&b), strlen(want));
	assert_memory_equal(smtp_buf_data(&b), want, strlen(want));
	smtp_buf_free(&b);
}

static void
t_format_refuses_injection(void **state)
{
	struct smtp_buf b;
	smtp_buf_init(&b, 4096);
	assert_int_equal(smtp_cmd_format(&b, "RCPT", U("TO:<a@x.y>\r\nDATA"),
	                     16),
	    SMTP_ERR_INVAL);
	assert_int_equal(smtp_cmd_format(&b, "RCPT", U("TO:<a@x.y>\nX"), 12),
	    SMTP_ERR_INVAL);
	assert_int_equal(smtp_cmd_format(&b, "RCPT", U("TO:<a\0@x.y>"), 11),
	    SMTP_ERR_INVAL);
	assert_int_equal(smtp_cmd_format(&b, "BAD VERB", NULL, 0),
	    SMTP_ERR_INVAL);
	assert_int_equal(smtp_buf_len(&b), 0);
	smtp_buf_free(&b);
}

static void
t_format_too_long(void **state)
{
	struct smtp_buf b;
	smtp_buf_init(&b, 4096);
	uint8_t arg[600];
	memset(arg, 'a', sizeof(arg));
	/* "MAIL" SP arg CRLF = 512 exactly with 505 octets of argument. */
	assert_int_equal(smtp_cmd_format(&b, "MAIL", arg, 505), 0);
	assert_int_equal(smtp_cmd_format(&b, "MAIL", arg, 506),
	    SMTP_ERR_TOO_LONG);
	smtp_buf_free(&b);
}

static void
t_xtext(void **state)
{
	assert_true(smtp_xtext_valid(U("abc+2B+3D"), 9));
	assert_true(smtp_xtext_valid(U(""), 0));
	assert_false(smtp_xtext_valid(U("a+2b"), 4));
	assert_false(smtp_xtext_valid(U("a+2"), 3));
	assert_false(smtp_xtext_valid(U("a=b"), 3));
	assert_false(smtp_xtext_valid(U("a b"), 3));
}

static void
t_verb_names(void **state)
{
	assert_string_equal(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
	assert_string_equal(smtp_verb_name(SMTP_VERB_BDAT), "BDAT");
}

int
main(void)
{
	struct case_list l = { 0 };
	CASES(&l, rows, t_row);
	CASES(&l, scan_rows, t_scan);
	case_add(&l, "format commands", t_format, NULL);
	case_add(&l, "format refuses CR LF NUL", t_format_refuses_injection,
	    NULL);
	case_add(&l, "format line limit", t_format_too_long, NULL);
	case_add(&l, "xtext", t_xtext, NULL);
	case_add(&l, "verb names", t_verb_names, NULL);
	return case_run(&l, "smtp_cmd");
}
