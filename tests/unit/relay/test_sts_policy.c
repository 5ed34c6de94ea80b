/*
 * relay_sts_policy: the MTA-STS TXT record (RFC 8461 3.1), the policy file
 * (3.2) and the MX patterns (4.1). Vectors from RFC 8461's examples (the
 * TXT record of 3.1 and the policy of 3.2; IETF Trust, Simplified BSD
 * License for code components) and cases around them. Every policy input
 * is also parsed from an exact-size heap copy, so a read past its end is
 * caught by ASan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay_sts_policy.h"

static int
txt(const char *s, char id[RELAY_STS_ID_MAX + 1])
{
	size_t n = strlen(s);
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	memcpy(p, s, n);
	int r = relay_sts_txt_parse(p, n, id);
	free(p);
	return r;
}

static int
pol(const char *s, struct relay_sts_policy *out)
{
	size_t n = strlen(s);
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	memcpy(p, s, n);
	int r = relay_sts_policy_parse(p, n, out);
	free(p);
	return r;
}

static void
test_txt_vectors(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int want;
		const char *id;
	} cases[] = {
		/* RFC 8461 3.1's example. */
		{ "v=STSv1; id=20160831085700Z;", 0, "20160831085700Z" },
		{ "v=STSv1; id=20160831085700Z", 0, "20160831085700Z" },
		{ "v=STSv1;id=abc", 0, "abc" },
		{ "v=STSv1; id=abc; ext=val", 0, "abc" },
		{ "v=STSv1;  id=abc ;", 0, "abc" },
		{ "v=STSv1; id=12345678901234567890123456789012", 0,
		    "12345678901234567890123456789012" },
		/* Not STSv1 at all: discarded before counting. */
		{ "v=spf1 -all", RELAY_STS_ERR_VERSION, "" },
		{ "v=STSv10; id=1", RELAY_STS_ERR_VERSION, "" },
		{ "V=STSv1; id=1", RELAY_STS_ERR_VERSION, "" },
		{ " v=STSv1; id=1", RELAY_STS_ERR_VERSION, "" },
		{ "", RELAY_STS_ERR_VERSION, "" },
		/* STSv1 but malformed: no policy (3.1). */
		{ "v=STSv1", RELAY_STS_ERR_SYNTAX, "" },
		{ "v=STSv1;", RELAY_STS_ERR_SYNTAX, "" },
		{ "v=STSv1; id=", RELAY_STS_ERR_SYNTAX, "" },
		{ "v=STSv1; id=a-b", RELAY_STS_ERR_SYNTAX, "" },
		{ "v=STSv1; id=123456789012345678901234567890123",
		    RELAY_STS_ERR_SYNTAX, "" },
		{ "v=STSv1; id=1; id=2", RELAY_STS_ERR_SYNTAX, "" },
		{ "v=STSv1; ext=1", RELAY_STS_ERR_SYNTAX, "" },
		{ "v=STSv1 id=1", RELAY_STS_ERR_SYNTAX, "" },
		{ "v=STSv1; id=1; =x", RELAY_STS_ERR_SYNTAX, "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char id[RELAY_STS_ID_MAX + 1];
		int r = txt(cases[i].in, id);
		if (r != cases[i].want)
			fail_msg("case %zu \"%s\": got %d want %d", i,
			    cases[i].in, r, cases[i].want);
		assert_string_equal(id, cases[i].id);
	}
}

/* RFC 8461 3.2's example policy. */
static const char rfc_policy[] = "version: STSv1\n"
                                 "mode: enforce\n"
                                 "mx: mail.example.com\n"
                                 "mx: *.example.net\n"
                                 "mx: backupmx.example.com\n"
                                 "max_age: 604800\n";

static void
test_policy_rfc_example(void **state)
{
	(void)state;
	struct relay_sts_policy p;
	assert_int_equal(pol(rfc_policy, &p), 0);
	assert_int_equal(p.mode, RELAY_STS_MODE_ENFORCE);
	assert_int_equal(p.max_age, 604800);
	assert_int_equal(p.n_mx, 3);
	assert_string_equal(p.mx[0], "mail.example.com");
	assert_string_equal(p.mx[1], "*.example.net");
	assert_string_equal(p.mx[2], "backupmx.example.com");
	/* CRLF lines, a missing final line end, spaces after the colon and
	 * at the end, any order, extensions: the same policy. */
	assert_int_equal(pol("mx: MAIL.example.com  \r\nversion:STSv1\r\n"
	                     "ext_1: whatever value\r\nmode:\tenforce\r\n"
	                     "mx: *.example.net\r\nmx: backupmx.example.com\r\n"
	                     "max_age: 604800",
	                     &p),
	    0);
	assert_int_equal(p.mode, RELAY_STS_MODE_ENFORCE);
	assert_int_equal(p.n_mx, 3);
	assert_string_equal(p.mx[0], "mail.example.com");
}

static void
test_policy_fields(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int want;
	} cases[] = {
		{ "version: STSv1\nmode: testing\nmx: a.b\nmax_age: 1\n", 0 },
		{ "version: STSv1\nmode: none\nmax_age: 86400\n", 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 0\n", 0 },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 9999999999\n",
		    0 },
		{ "mode: enforce\nmx: a.b\nmax_age: 1\n",
		    RELAY_STS_ERR_VERSION },
		{ "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n",
		    RELAY_STS_ERR_VERSION },
		{ "version: STSv1\nmx: a.b\nmax_age: 1\n", RELAY_STS_ERR_MODE },
		{ "version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 1\n",
		    RELAY_STS_ERR_MODE },
		{ "version: STSv1\nmode: report\nmx: a.b\nmax_age: 1\n",
		    RELAY_STS_ERR_MODE },
		{ "version: STSv1\nmode: enforce\nmx: a.b\n",
		    RELAY_STS_ERR_MAX_AGE },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 12345678901\n",
		    RELAY_STS_ERR_MAX_AGE },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n",
		    RELAY_STS_ERR_MAX_AGE },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: \n",
		    RELAY_STS_ERR_MAX_AGE },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\n",
		    RELAY_STS_ERR_MX },
		{ "version: STSv1\nmode: testing\nmax_age: 1\n",
		    RELAY_STS_ERR_MX },
		{ "version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n",
		    RELAY_STS_ERR_MX },
		{ "version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 1\n",
		    RELAY_STS_ERR_MX },
		{ "version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n",
		    RELAY_STS_ERR_MX },
		{ "version: STSv1\nmode: enforce\nmx: a b\nmax_age: 1\n",
		    RELAY_STS_ERR_MX },
		{ "version: STSv1\nmode: enforce\nmx a.b\nmax_age: 1\n",
		    RELAY_STS_ERR_SYNTAX },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\n"
		  "bad\x01: x\n",
		    RELAY_STS_ERR_SYNTAX },
		{ "version : STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\n",
		    RELAY_STS_ERR_SYNTAX },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct relay_sts_policy p;
		int r = pol(cases[i].in, &p);
		if (r != cases[i].want)
			fail_msg("case %zu: got %d want %d", i, r,
			    cases[i].want);
	}
	struct relay_sts_policy p;
	/* RFC 8461 3.2: max_age is capped at 31557600. */
	assert_int_equal(pol("version: STSv1\nmode: enforce\nmx: a.b\n"
	                     "max_age: 9999999999\n",
	                     &p),
	    0);
	assert_int_equal(p.max_age, RELAY_STS_MAX_AGE_CAP);
	/* The first version/mode/max_age wins. */
	assert_int_equal(pol("version: STSv1\nmode: testing\nmode: enforce\n"
	                     "mx: a.b\nmax_age: 5\nmax_age: 6\n",
	                     &p),
	    0);
	assert_int_equal(p.mode, RELAY_STS_MODE_TESTING);
	assert_int_equal(p.max_age, 5);
}

static void
test_policy_limits(void **state)
{
	(void)state;
	/* 64 patterns fit, 65 do not; a body over 64 KiB is refused. */
	size_t cap = 8192;
	char *b = malloc(cap);
	assert_non_null(b);
	for (int n = 64; n <= 65; n++) {
		size_t off = (size_t)snprintf(b, cap,
		    "version: STSv1\nmode: enforce\nmax_age: 1\n");
		for (int i = 0; i < n; i++)
			off += (size_t)snprintf(b + off, cap - off,
			    "mx: mx%d.example.com\n", i);
		struct relay_sts_policy p;
		assert_int_equal(pol(b, &p),
		    n == 64 ? 0 : RELAY_STS_ERR_TOO_BIG);
	}
	free(b);
	size_t big = RELAY_STS_BODY_MAX + 1;
	uint8_t *p = malloc(big);
	assert_non_null(p);
	memset(p, '\n', big);
	struct relay_sts_policy out;
	assert_int_equal(relay_sts_policy_parse(p, big, &out),
	    RELAY_STS_ERR_TOO_BIG);
	free(p);
}

static void
test_mx_match(void **state)
{
	(void)state;
	struct relay_sts_policy p;
	assert_int_equal(pol(rfc_policy, &p), 0);
	static const struct {
		const char *host;
		bool want;
	} cases[] = {
		{ "mail.example.com", true },
		{ "MAIL.Example.COM", true },
		{ "mail.example.com.", true },
		{ "backupmx.example.com", true },
		/* RFC 8461 4.1: "*.example.net" is one leftmost label. */
		{ "mx1.example.net", true },
		{ "a.b.example.net", false },
		{ "example.net", false },
		{ ".example.net", false },
		{ "mx1.example.network", false },
		{ "xmail.example.com", false },
		{ "mail.example.com.evil", false },
		{ "", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (relay_sts_mx_match(&p, cases[i].host) != cases[i].want)
			fail_msg("case %zu \"%s\"", i, cases[i].host);
}

static void
test_media_type(void **state)
{
	(void)state;
	assert_true(relay_sts_media_type_ok("text/plain"));
	assert_true(relay_sts_media_type_ok("Text/Plain; charset=utf-8"));
	assert_true(relay_sts_media_type_ok("text/plain ;charset=utf-8"));
	assert_false(relay_sts_media_type_ok("text/html"));
	assert_false(relay_sts_media_type_ok("text/plainx"));
	assert_false(relay_sts_media_type_ok("text/pla"));
	assert_false(relay_sts_media_type_ok(""));
	assert_false(relay_sts_media_type_ok(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt_vectors),
		cmocka_unit_test(test_policy_rfc_example),
		cmocka_unit_test(test_policy_fields),
		cmocka_unit_test(test_policy_limits),
		cmocka_unit_test(test_mx_match),
		cmocka_unit_test(test_media_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
