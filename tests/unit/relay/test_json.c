/*
 * Unit tests for relay_json (relay/base/relay_json.c): string escaping (RFC 8259
 * section 7), UTF-8 validation (RFC 3629 section 4), and the structure the
 * writer emits. One cmocka case per table row.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay_json.h"

/* Captures what a writer produced. */
struct cap {
	char *buf;
	size_t len;
	FILE *f;
};

static void
cap_open(struct cap *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
}

static void
cap_close(struct cap *c)
{
	assert_int_equal(fclose(c->f), 0);
}

/* ---- escaping table ---- */

struct esc_case {
	const char *name;
	const char *in;
	size_t inlen;
	const char *want;
};

#define ESC(n, s, w)                                                           \
	{                                                                      \
		n, s, sizeof(s) - 1, w                                         \
	}

static const struct esc_case esc_cases[] = {
	ESC("empty", "", "\"\""),
	ESC("plain ascii", "bob@example.net", "\"bob@example.net\""),
	ESC("quote", "say \"hi\"", "\"say \\\"hi\\\"\""),
	ESC("backslash", "a\\b", "\"a\\\\b\""),
	ESC("slash is not escaped", "a/b", "\"a/b\""),
	ESC("newline cr tab", "a\r\nb\tc", "\"a\\r\\nb\\tc\""),
	ESC("backspace formfeed", "\b\f", "\"\\b\\f\""),
	ESC("nul byte", "a\0b", "\"a\\u0000b\""),
	ESC("other control", "\x01\x1f", "\"\\u0001\\u001f\""),
	ESC("escape byte (ANSI)", "\x1b[31m", "\"\\u001b[31m\""),
	ESC("delete", "\x7f", "\"\\u007f\""),
	ESC("2-byte utf8 kept", "caf\xc3\xa9", "\"caf\xc3\xa9\""),
	ESC("3-byte utf8 kept", "\xe2\x82\xac", "\"\xe2\x82\xac\""),
	ESC("4-byte utf8 kept", "\xf0\x9f\x93\xa7", "\"\xf0\x9f\x93\xa7\""),
	ESC("lone continuation", "a\x80z", "\"a\xef\xbf\xbdz\""),
	ESC("overlong slash C0 AF", "\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\""),
	ESC("overlong E0 80 80", "\xe0\x80\x80",
	    "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""),
	ESC("surrogate ED A0 80", "\xed\xa0\x80",
	    "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""),
	ESC("above U+10FFFF F4 90", "\xf4\x90\x80\x80",
	    "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""),
	ESC("truncated sequence at end", "ab\xe2\x82",
	    "\"ab\xef\xbf\xbd\xef\xbf\xbd\""),
	ESC("latin-1 byte", "\xe9t\xe9", "\"\xef\xbf\xbdt\xef\xbf\xbd\""),
	ESC("FF byte", "\xff", "\"\xef\xbf\xbd\""),
	ESC("max code point kept", "\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""),
};

static void
test_escape(void **state)
{
	const struct esc_case *tc = *state;
	struct cap c;

	cap_open(&c);
	assert_int_equal(relay_json_write_string(c.f, tc->in, tc->inlen), 0);
	cap_close(&c);
	assert_int_equal(c.len, strlen(tc->want));
	assert_memory_equal(c.buf, tc->want, c.len);
	free(c.buf);
}

/* ---- utf8_len table ---- */

struct u8_case {
	const char *name;
	const char *in;
	size_t inlen;
	size_t want;
};

#define U8(n, s, w)                                                            \
	{                                                                      \
		n, s, sizeof(s) - 1, w                                         \
	}

static const struct u8_case u8_cases[] = {
	U8("ascii", "a", 1),
	U8("C2 80 lowest 2-byte", "\xc2\x80", 2),
	U8("C1 BF overlong", "\xc1\xbf", 0),
	U8("DF BF highest 2-byte", "\xdf\xbf", 2),
	U8("E0 A0 80 lowest 3-byte", "\xe0\xa0\x80", 3),
	U8("E0 9F BF overlong", "\xe0\x9f\xbf", 0),
	U8("ED 9F BF below surrogates", "\xed\x9f\xbf", 3),
	U8("ED A0 80 surrogate", "\xed\xa0\x80", 0),
	U8("EF BF BF", "\xef\xbf\xbf", 3),
	U8("F0 90 80 80 lowest 4-byte", "\xf0\x90\x80\x80", 4),
	U8("F0 8F BF BF overlong", "\xf0\x8f\xbf\xbf", 0),
	U8("F4 8F BF BF highest", "\xf4\x8f\xbf\xbf", 4),
	U8("F5 never valid", "\xf5\x80\x80\x80", 0),
	U8("bad second continuation", "\xe2\x82\x41", 0),
	U8("short input", "\xf0\x9f\x93", 0),
};

static void
test_utf8_len(void **state)
{
	const struct u8_case *tc = *state;
	assert_int_equal(relay_json_utf8_len((const uint8_t *)tc->in,
	                     tc->inlen),
	    tc->want);
}

/* ---- structure ---- */

static void
test_structure_object(void **state)
{
	struct relay_json j;
	struct cap c;
	(void)state;

	cap_open(&c);
	relay_json_init(&j, c.f);
	relay_json_obj_begin(&j);
	relay_json_kv_str(&j, "queue_id", "00064A1B2C3D4E");
	relay_json_kv_u64(&j, "size", 18446744073709551615ull);
	relay_json_kv_i64(&j, "neg", -5);
	relay_json_kv_bool(&j, "hold", true);
	relay_json_kv_str(&j, "none", NULL);
	relay_json_key(&j, "recipients");
	relay_json_arr_begin(&j);
	relay_json_obj_begin(&j);
	relay_json_kv_str(&j, "address", "a@b");
	relay_json_obj_end(&j);
	relay_json_obj_begin(&j);
	relay_json_obj_end(&j);
	relay_json_arr_end(&j);
	relay_json_key(&j, "empty");
	relay_json_arr_begin(&j);
	relay_json_arr_end(&j);
	relay_json_key(&j, "k\"ey");
	relay_json_bool(&j, false);
	relay_json_obj_end(&j);
	assert_int_equal(relay_json_finish(&j), 0);
	cap_close(&c);
	assert_string_equal(c.buf,
	    "{\"queue_id\":\"00064A1B2C3D4E\","
	    "\"size\":18446744073709551615,\"neg\":-5,\"hold\":true,"
	    "\"none\":null,\"recipients\":[{\"address\":\"a@b\"},{}],"
	    "\"empty\":[],\"k\\\"ey\":false}");
	free(c.buf);
}

static void
test_structure_array_top(void **state)
{
	struct relay_json j;
	struct cap c;
	(void)state;

	cap_open(&c);
	relay_json_init(&j, c.f);
	relay_json_arr_begin(&j);
	relay_json_u64(&j, 1);
	relay_json_strn(&j, "x\0y", 3);
	relay_json_null(&j);
	relay_json_arr_begin(&j);
	relay_json_arr_end(&j);
	relay_json_arr_end(&j);
	assert_int_equal(relay_json_finish(&j), 0);
	cap_close(&c);
	assert_string_equal(c.buf, "[1,\"x\\u0000y\",null,[]]");
	free(c.buf);
}

static void
test_scalar_top(void **state)
{
	struct relay_json j;
	struct cap c;
	(void)state;

	cap_open(&c);
	relay_json_init(&j, c.f);
	relay_json_str(&j, "only");
	assert_int_equal(relay_json_finish(&j), 0);
	cap_close(&c);
	assert_string_equal(c.buf, "\"only\"");
	free(c.buf);
}

/* A failing stream is reported, not ignored. */
static void
test_write_error(void **state)
{
	struct relay_json j;
	FILE *f = fopen("/dev/full", "w");
	char big[8192];
	(void)state;

	if (f == NULL)
		skip();
	setvbuf(f, NULL, _IONBF, 0);
	memset(big, 'a', sizeof(big));
	relay_json_init(&j, f);
	relay_json_strn(&j, big, sizeof(big));
	assert_int_equal(relay_json_finish(&j), -1);
	fclose(f);
}

int
main(void)
{
	size_t ne = sizeof(esc_cases) / sizeof(esc_cases[0]);
	size_t nu = sizeof(u8_cases) / sizeof(u8_cases[0]);
	struct CMUnitTest *t = calloc(ne + nu + 4, sizeof(*t));
	size_t n = 0;

	assert_non_null(t);
	for (size_t i = 0; i < ne; i++) {
		struct CMUnitTest c = cmocka_unit_test_prestate(test_escape,
		    (void *)&esc_cases[i]);
		c.name = esc_cases[i].name;
		t[n++] = c;
	}
	for (size_t i = 0; i < nu; i++) {
		struct CMUnitTest c = cmocka_unit_test_prestate(test_utf8_len,
		    (void *)&u8_cases[i]);
		c.name = u8_cases[i].name;
		t[n++] = c;
	}
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_structure_object);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_structure_array_top);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_scalar_top);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_write_error);
	int rc = _cmocka_run_group_tests("relay_json", t, n, NULL, NULL);
	free(t);
	return rc;
}
