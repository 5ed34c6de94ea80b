/* Tests for smtp_addr.c: RFC 5321 4.1.2 Path/Mailbox, RFC 6531 UTF-8,
 * limits of RFC 5321 4.5.3.1, domain normalisation for routing. */
#include "smtp_test.h"

#define UTF SMTP_ADDR_UTF8
#define NUL_OK SMTP_ADDR_NULL_OK
#define PM SMTP_ADDR_POSTMASTER

struct row {
	const char *name;
	const char *in;
	unsigned flags;
	int rc; /* path: bytes consumed; mailbox: 0; or error */
	const char *local;
	const char *domain; /* normalised */
	const char *formatted;
};

static const struct row path_rows[] = {
	{ "simple", "<user@example.org>", 0, 18, "user", "example.org",
	    "user@example.org" },
	{ "uppercase domain lowered", "<User@Example.ORG>", 0, 18, "User",
	    "example.org", "User@example.org" },
	{ "trailing dot removed", "<a@example.org.>", 0, 16, "a", "example.org",
	    "a@example.org" },
	{ "dotted local", "<first.last@x.y>", 0, 16, "first.last", "x.y",
	    "first.last@x.y" },
	{ "atext specials", "<a!#$%&'*+-/=?^_`{|}~b@x.y>", 0, 27,
	    "a!#$%&'*+-/=?^_`{|}~b", "x.y", NULL },
	{ "quoted local", "<\"john doe\"@x.y>", 0, 16, "\"john doe\"", "x.y",
	    NULL },
	{ "quoted pair", "<\"a\\\"b\"@x.y>", 0, 12, "\"a\\\"b\"", "x.y", NULL },
	{ "ipv4 literal", "<a@[192.0.2.1]>", 0, 15, "a", "[192.0.2.1]",
	    "a@[192.0.2.1]" },
	{ "ipv6 literal", "<a@[IPv6:2001:db8::1]>", 0, 22, "a",
	    "[IPv6:2001:db8::1]", NULL },
	{ "source route ignored", "<@r1.example,@r2.example:a@x.y>", 0, 31, "a",
	    "x.y", "a@x.y" },
	{ "null sender", "<>", NUL_OK, 2, NULL, NULL, "" },
	{ "postmaster", "<Postmaster>", PM, 12, "Postmaster", NULL,
	    "Postmaster" },
	{ "postmaster with domain", "<postmaster@x.y>", PM, 16, "postmaster",
	    "x.y", NULL },
	{ "A-label kept", "<a@XN--bcher-kva.example>", 0, 25, "a",
	    "xn--bcher-kva.example", NULL },
	{ "utf8 local", "<j\xc3\xb6rg@x.y>", UTF, 11, "j\xc3\xb6rg", "x.y",
	    NULL },
	{ "utf8 domain",
	    "<a@b\xc3\xbc"
	    "cher.example>",
	    UTF, 19, "a",
	    "b\xc3\xbc"
	    "cher.example",
	    NULL },
	{ "hyphen in label", "<a@my-host.x.y>", 0, 15, "a", "my-host.x.y",
	    NULL },
	{ "digits label", "<a@123.x.y>", 0, 11, "a", "123.x.y", NULL },
	{ "stops at >", "<a@x.y> SIZE=1", 0, 7, "a", "x.y", NULL },
	{ "null not allowed", "<>", 0, SMTP_ERR_ADDR, NULL, NULL, NULL },
	{ "postmaster not allowed", "<Postmaster>", 0, SMTP_ERR_ADDR, NULL,
	    NULL, NULL },
	{ "missing <", "a@x.y>", 0, SMTP_ERR_ADDR, NULL, NULL, NULL },
	{ "missing >", "<a@x.y", 0, SMTP_ERR_ADDR, NULL, NULL, NULL },
	{ "no domain", "<a>", 0, SMTP_ERR_ADDR, NULL, NULL, NULL },
	{ "empty domain", "<a@>", 0, SMTP_ERR_ADDR, NULL, NULL, NULL },
	{ "empty local", "<@x.y>", 0, SMTP_ERR_ADDR, NULL, NULL, NULL },
	{ "leading dot local", "<.a@x.y>", 0, SMTP_ERR_ADDR, NULL, NULL, NULL },
	{ "double dot local", "<a..b@x.y>", 0, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "trailing dot local", "<a.@x.y>", 0, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "double dot domain", "<a@x..y>", 0, SMTP_ERR_ADDR, NULL, NULL, NULL },
	{ "two trailing dots", "<a@x.y..>", 0, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "label starts with hyphen", "<a@-x.y>", 0, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "label ends with hyphen", "<a@x-.y>", 0, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "underscore in domain", "<a@x_y.z>", 0, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "space in local", "<a b@x.y>", 0, SMTP_ERR_ADDR, NULL, NULL, NULL },
	{ "CR in local", "<a\rb@x.y>", 0, SMTP_ERR_ADDR, NULL, NULL, NULL },
	{ "LF in quoted", "<\"a\nb\"@x.y>", 0, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "unterminated quote", "<\"ab@x.y>", 0, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "bad ipv4 octet", "<a@[192.0.2.256]>", 0, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "short ipv4", "<a@[192.0.2]>", 0, SMTP_ERR_ADDR, NULL, NULL, NULL },
	{ "bad ipv6", "<a@[IPv6:2001:db8:::1]>", 0, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "general literal refused", "<a@[x-tag:foo]>", 0, SMTP_ERR_ADDR, NULL,
	    NULL, NULL },
	{ "utf8 without flag", "<j\xc3\xb6rg@x.y>", 0, SMTP_ERR_ADDR, NULL,
	    NULL, NULL },
	{ "malformed utf8", "<j\xc3(rg@x.y>", UTF, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "overlong utf8", "<j\xc0\xafrg@x.y>", UTF, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "two addresses", "<a@x.y,b@x.y>", 0, SMTP_ERR_ADDR, NULL, NULL,
	    NULL },
	{ "source route without colon", "<@r1.example a@x.y>", 0, SMTP_ERR_ADDR,
	    NULL, NULL, NULL },
};

static char long_local[200], long_label[200], long_domain[400], ok_local[200];

static const struct row limit_rows[] = {
	{ "local part of 64 accepted", ok_local, 0, 70, NULL, "x.y", NULL },
	{ "local part of 65 refused", long_local, 0, SMTP_ERR_TOO_LONG, NULL,
	    NULL, NULL },
	{ "label of 64 refused", long_label, 0, SMTP_ERR_TOO_LONG, NULL, NULL,
	    NULL },
	{ "domain over 255 refused", long_domain, 0, SMTP_ERR_TOO_LONG, NULL,
	    NULL, NULL },
};

static void
fill_limits(void)
{
	char a[100];
	memset(a, 'a', sizeof(a));
	int n = snprintf(ok_local, sizeof(ok_local), "<%.*s@x.y>", 64, a);
	assert_true(n == 70);
	n = snprintf(long_local, sizeof(long_local), "<%.*s@x.y>", 65, a);
	assert_true(n == 71);
	n = snprintf(long_label, sizeof(long_label), "<b@%.*s.y>", 64, a);
	assert_true(n == 70);
	size_t off = 0;
	long_domain[off++] = '<';
	long_domain[off++] = 'a';
	long_domain[off++] = '@';
	for (int i = 0; i < 26; i++) {
		memcpy(long_domain + off, "abcdefghi.", 10);
		off += 10;
	}
	memcpy(long_domain + off, "x>", 3);
}

static void
check_addr(const struct row *r, const struct smtp_addr *a)
{
	char buf[SMTP_PATH_MAX + 1];
	if (r->local) {
		assert_int_equal(a->local.len, strlen(r->local));
		assert_memory_equal(a->local.p, r->local, a->local.len);
	}
	if (r->domain) {
		assert_int_equal(smtp_addr_domain(a, buf, sizeof(buf)),
		    (int)strlen(r->domain));
		assert_string_equal(buf, r->domain);
	}
	if (r->formatted) {
		assert_true(smtp_addr_format(a, buf, sizeof(buf)) >= 0);
		assert_string_equal(buf, r->formatted);
	}
}

static void
t_path(void **state)
{
	const struct row *r = *state;
	size_t len = strlen(r->in);
	struct smtp_addr a;
	int rc = smtp_addr_parse_path(U(r->in), len, r->flags, &a);
	assert_int_equal(rc, r->rc);
	if (rc > 0)
		check_addr(r, &a);
	/* A prefix never yields a different success (split at every offset). */
	for (size_t k = 0; k < len; k++) {
		struct smtp_addr a2;
		int rc2 = smtp_addr_parse_path(U(r->in), k, r->flags, &a2);
		if (rc2 > 0)
			assert_int_equal(rc2, rc);
	}
}

struct mrow {
	const char *name;
	const char *in;
	unsigned flags;
	int rc;
	bool utf8;
};

static const struct mrow mailbox_rows[] = {
	{ "bare mailbox", "a@x.y", 0, 0, false },
	{ "empty is null sender", "", NUL_OK, 0, false },
	{ "empty refused", "", 0, SMTP_ERR_ADDR, false },
	{ "trailing garbage", "a@x.y>", 0, SMTP_ERR_ADDR, false },
	{ "utf8 mailbox", "\xc3\xa9@x.y", UTF, 0, true },
	{ "brackets refused", "<a@x.y>", 0, SMTP_ERR_ADDR, false },
	{ "newline refused", "a@x.y\r\nRCPT TO:<b@z>", 0, SMTP_ERR_ADDR,
	    false },
};

static void
t_mailbox(void **state)
{
	const struct mrow *r = *state;
	struct smtp_addr a;
	assert_int_equal(smtp_addr_parse_mailbox(U(r->in), strlen(r->in),
	                     r->flags, &a),
	    r->rc);
	if (r->rc == 0)
		assert_int_equal(a.utf8, r->utf8);
}

static void
t_format_small_buffer(void **state)
{
	struct smtp_addr a;
	assert_int_equal(smtp_addr_parse_path(U("<abc@x.y>"), 9, 0, &a), 9);
	char buf[6];
	assert_int_equal(smtp_addr_format(&a, buf, sizeof(buf)), SMTP_ERR_FULL);
	assert_int_equal(smtp_addr_domain(&a, buf, 3), SMTP_ERR_FULL);
	assert_int_equal(smtp_addr_domain(&a, buf, 4), 3);
}

static void
t_flags_reported(void **state)
{
	struct smtp_addr a;
	assert_true(
	    smtp_addr_parse_path(U("<\"q\"@[10.0.0.1]>"), 16, 0, &a) > 0);
	assert_true(a.quoted);
	assert_true(a.literal);
	assert_false(a.utf8);
	assert_true(smtp_addr_parse_path(U("<>"), 2, NUL_OK, &a) == 2);
	assert_true(a.null);
	char buf[8];
	assert_int_equal(smtp_addr_domain(&a, buf, sizeof(buf)),
	    SMTP_ERR_INVAL);
}

int
main(void)
{
	fill_limits();
	struct case_list l = { 0 };
	CASES(&l, path_rows, t_path);
	CASES(&l, limit_rows, t_path);
	CASES(&l, mailbox_rows, t_mailbox);
	case_add(&l, "format into a small buffer", t_format_small_buffer, NULL);
	case_add(&l, "flags reported", t_flags_reported, NULL);
	return case_run(&l, "smtp_addr");
}
