/*
 * Unit tests for relay_dns_ta: the trust anchor file syntax check of
 * `danerelay check`. The DNSKEY and DS lines follow the shape of Debian's
 * dns-root-data root.key and of the test world's trust-anchor.ds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "relay_dns_ta.h"

struct ta_case {
	const char *name;
	const char *text;
	int rc;
	size_t ds, dnskey;
	unsigned line; /* of the error */
	const char *why;
};

#define DS1                                                                    \
	". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n"
#define KEY1                                                                   \
	". 172800 IN DNSKEY 257 3 8 AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBA== ; keytag\n"

static const struct ta_case cases[] = {
	{ "ds", DS1, 0, 1, 0, 0, NULL },
	{ "dnskey_with_comment", KEY1, 0, 0, 1, 0, NULL },
	{ "world_style", "drworld. IN DS 1234 13 2 ab cd ef 01\n", 0, 1, 0, 0,
	    NULL },
	{ "comments_blank_directives",
	    "; root anchors\n\n$ORIGIN .\n$TTL 3600\n" DS1 KEY1, 0, 1, 1, 0,
	    NULL },
	{ "parentheses", ". IN DNSKEY 257 3 8 (\n  AwEAAaz/\n  tAm8 )\n", 0, 0,
	    1, 0, NULL },
	{ "class_then_ttl", ". IN 3600 DS 1 8 2 abcd\n", 0, 1, 0, 0, NULL },
	{ "no_final_newline", ". DS 1 8 2 abcd", 0, 1, 0, 0, NULL },
	{ "empty", "", -1, 0, 0, 0, "no DS or DNSKEY record" },
	{ "only_comments", "; nothing\n", -1, 0, 0, 0,
	    "no DS or DNSKEY record" },
	{ "other_type", DS1 ". IN A 192.0.2.1\n", -1, 1, 0, 2,
	    "not a DS or DNSKEY record" },
	{ "ds_short", ". IN DS 20326 8 2\n", -1, 0, 0, 1,
	    "DS needs key tag, algorithm, digest type and digest" },
	{ "ds_not_hex", ". IN DS 20326 8 2 XYZ0\n", -1, 0, 0, 1,
	    "DS digest is not hexadecimal" },
	{ "ds_odd_hex", ". IN DS 20326 8 2 abc\n", -1, 0, 0, 1,
	    "DS digest has an odd number of hex digits" },
	{ "ds_keytag_range", ". IN DS 65536 8 2 abcd\n", -1, 0, 0, 1,
	    "DS key tag, algorithm or digest type is not a number in range" },
	{ "dnskey_protocol", ". IN DNSKEY 257 2 8 AwEA\n", -1, 0, 0, 1,
	    "DNSKEY protocol is not 3" },
	{ "dnskey_not_base64", ". IN DNSKEY 257 3 8 Aw*A\n", -1, 0, 0, 1,
	    "DNSKEY key is not base64" },
	{ "unbalanced", ". IN DNSKEY 257 3 8 ( AwEA\n", -1, 0, 0, 1,
	    "unbalanced parentheses" },
	{ "close_first", ". IN DS 1 8 2 ) abcd\n", -1, 0, 0, 1,
	    "unbalanced parentheses" },
	{ "no_type", ".\n", -1, 0, 0, 1, "record without a type" },
	{ "directive", "$INCLUDE x\n", -1, 0, 0, 1, "unsupported directive" },
	{ "garbage_pem", "-----BEGIN CERTIFICATE-----\nMIIB\n", -1, 0, 0, 1,
	    "not a DS or DNSKEY record" },
};

static void
test_case(void **state)
{
	const struct ta_case *c = *state;
	struct relay_dns_ta_result res;
	int rc =
	    relay_dns_ta_check((const uint8_t *)c->text, strlen(c->text), &res);
	assert_int_equal(rc, c->rc);
	if (rc == 0) {
		assert_int_equal(res.ds, c->ds);
		assert_int_equal(res.dnskey, c->dnskey);
	} else {
		assert_int_equal(res.line, c->line);
		assert_string_equal(res.why, c->why);
	}
}

/* The buffer is not read past len: a DS cut short by len fails even when
 * the bytes after it would complete it. */
static void
test_len_respected(void **state)
{
	(void)state;
	static const char text[] = ". IN DS 1 8 2 abcd";
	struct relay_dns_ta_result res;
	assert_int_equal(relay_dns_ta_check((const uint8_t *)text, 17, &res),
	    -1);
	assert_string_equal(res.why,
	    "DS digest has an odd number of hex digits");
	assert_int_equal(relay_dns_ta_check((const uint8_t *)"x\0y", 3, &res),
	    -1);
	assert_string_equal(res.why, "NUL byte in the file");
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 1];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tests[n++] =
		    (struct CMUnitTest)cmocka_unit_test_prestate(test_case,
		        (void *)(uintptr_t)&cases[i]);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tests[i].name = cases[i].name;
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_len_respected);
	return _cmocka_run_group_tests("dns_ta", tests, n, NULL, NULL);
}
