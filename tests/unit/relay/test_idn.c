/*
 * Unit tests for relay_idn: recipient domain -> A-label form.
 *
 * Expected A-labels were computed outside libidn2's C API: with the idn2
 * command (`idn2 -N`, UTS #46 non-transitional), and the plain RFC 3492
 * Punycode of the already-mapped labels cross-checked with python3's
 * "punycode" codec (xn-- + label.encode("punycode")).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "relay_idn.h"

struct idn_case {
	const char *name;
	const char *in;
	unsigned flags;
	int rc;          /* 0 or enum relay_idn_err */
	const char *out; /* expected DNS form when rc == 0 */
};

#define U RELAY_IDN_ALLOW_UTF8

static const struct idn_case cases[] = {
	/* ASCII passes through: case folded, trailing dot dropped, no IDNA. */
	{ "ascii_plain", "dane-ee.drworld", U, 0, "dane-ee.drworld" },
	{ "ascii_mixed_case", "MX.Example.COM", U, 0, "mx.example.com" },
	{ "ascii_trailing_dot", "example.org.", U, 0, "example.org" },
	{ "ascii_without_utf8_flag", "Example.NET", 0, 0, "example.net" },
	{ "ascii_a_label_kept", "XN--BCHER-KVA.example", U, 0,
	    "xn--bcher-kva.example" },
	{ "ascii_underscore_as_before", "_dmarc.example", U, 0,
	    "_dmarc.example" },

	/* U-labels -> A-labels (RFC 5890 2.3.2.1). */
	{ "u_label_buecher",
	    "b\xc3\xbc"
	    "cher.example",
	    U, 0, "xn--bcher-kva.example" },
	{ "u_label_upper_case_mapped",
	    "B\xc3\x9c"
	    "CHER.Example",
	    U, 0, "xn--bcher-kva.example" },
	{ "u_label_oebb",
	    "\xc3\x96"
	    "BB.at",
	    U, 0, "xn--bb-eka.at" },
	{ "u_label_cjk", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.jp", U, 0,
	    "xn--wgv71a119e.jp" },
	{ "u_label_cyrillic_tld",
	    "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80."
	    "\xd0\xb8\xd1\x81\xd0\xbf\xd1\x8b\xd1\x82\xd0\xb0\xd0\xbd\xd0\xb8\xd0\xb5",
	    U, 0, "xn--e1afmkfd.xn--80akhbyknj4f" },
	{ "u_label_trailing_dot", "m\xc3\xbcnchen.de.", U, 0,
	    "xn--mnchen-3ya.de" },
	{ "u_label_next_to_a_label", "\xc3\xbc.xn--bcher-kva.example", U, 0,
	    "xn--tda.xn--bcher-kva.example" },
	/* NFC: u + COMBINING DIAERESIS is the same name as the precomposed ü. */
	{ "nfc_input", "u\xcc\x88.example", U, 0, "xn--tda.example" },
	/* UTS #46 mapping: SOFT HYPHEN is ignored, ROMAN NUMERAL TWELVE maps to
	 * "xii". */
	{ "uts46_soft_hyphen_ignored",
	    "b\xc3\xbc\xc2\xad"
	    "cher.example",
	    U, 0, "xn--bcher-kva.example" },
	{ "uts46_mapped_to_ascii", "\xe2\x85\xab.example", U, 0,
	    "xii.example" },
	/* Non-transitional: deviation characters are kept (transitional
	 * processing would give fass.de and xn--nxasmq6b.com). */
	{ "nontransitional_sharp_s", "fa\xc3\x9f.de", U, 0, "xn--fa-hia.de" },
	{ "nontransitional_final_sigma",
	    "\xce\xb2\xcf\x8c\xce\xbb\xce\xbf\xcf\x82.com", U, 0,
	    "xn--nxasmm1c.com" },

	/* Invalid U-labels and names: a permanent error, never a guess. */
	{ "invalid_utf8", "\xc3\x28.example", U, RELAY_IDN_ERR_INVALID, NULL },
	{ "invalid_utf8_overlong",
	    "\xc0\xaf"
	    "a.example",
	    U, RELAY_IDN_ERR_INVALID, NULL },
	{ "invalid_utf8_truncated", "b\xc3", U, RELAY_IDN_ERR_INVALID, NULL },
	{ "disallowed_code_point_digit_full_stop", "\xe2\x92\x88.example", U,
	    RELAY_IDN_ERR_INVALID, NULL },
	{ "disallowed_code_point_hangul_compat", "\xe3\x84\xb1.example", U,
	    RELAY_IDN_ERR_INVALID, NULL },
	{ "disallowed_emoji", "\xf0\x9f\x91\x8d.example", U,
	    RELAY_IDN_ERR_INVALID, NULL },
	{ "contextj_zwj",
	    "a\xe2\x80\x8d"
	    "b\xc3\xbc.example",
	    U, RELAY_IDN_ERR_INVALID, NULL },
	{ "bidi_rule", "\xd9\xa3\xd9\xa1.example", U, RELAY_IDN_ERR_INVALID,
	    NULL },
	{ "hyphen_at_start", "\xc3\xbc.-ex.example", U, RELAY_IDN_ERR_INVALID,
	    NULL },
	{ "hyphens_3_4", "\xc3\xbc.ab--cd.example", U, RELAY_IDN_ERR_INVALID,
	    NULL },
	{ "bad_punycode_next_to_u_label", "\xc3\xbc.xn--zz.example", U,
	    RELAY_IDN_ERR_INVALID, NULL },
	{ "empty_label", "\xc3\xbc..example", U, RELAY_IDN_ERR_INVALID, NULL },
	{ "underscore_in_u_label", "\xc3\xa4_b.example", U,
	    RELAY_IDN_ERR_INVALID, NULL },
	{ "space_in_u_label", "\xc3\xa4 b.example", U, RELAY_IDN_ERR_INVALID,
	    NULL },
	{ "label_too_long_after_conversion",
	    "\xc3\xbc"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	    U, RELAY_IDN_ERR_INVALID, NULL },
	{ "ascii_label_too_long",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	    U, RELAY_IDN_ERR_INVALID, NULL },
	{ "ascii_empty_label", "a..example", U, RELAY_IDN_ERR_INVALID, NULL },
	{ "ascii_empty", "", U, RELAY_IDN_ERR_INVALID, NULL },

	/* smtputf8_enable = no: nothing is converted. */
	{ "utf8_not_allowed",
	    "b\xc3\xbc"
	    "cher.example",
	    0, RELAY_IDN_ERR_UTF8_OFF, NULL },
	{ "utf8_not_allowed_even_if_invalid", "\xe2\x92\x88.example", 0,
	    RELAY_IDN_ERR_UTF8_OFF, NULL },
};

static void
test_case(void **state)
{
	const struct idn_case *c = *state;
	char out[RELAY_DNS_HOST_MAX];
	const char *detail = NULL;
	memset(out, 'x', sizeof(out));
	int rc = relay_idn_to_ascii(c->in, c->flags, out, &detail);
	if (rc != c->rc)
		fail_msg("%s: rc %d (%s), want %d; out '%s' detail '%s'",
		    c->name, rc, relay_idn_strerror(rc), c->rc,
		    rc == 0 ? out : "", detail ? detail : "(null)");
	assert_non_null(detail);
	if (c->rc == 0) {
		assert_string_equal(out, c->out);
		assert_string_equal(detail, "");
	} else {
		/* A failure leaves no half-converted name behind and says why. */
		assert_string_equal(out, "");
		assert_true(detail[0] != '\0');
	}
	/* detail is optional. */
	char again[RELAY_DNS_HOST_MAX];
	assert_int_equal(relay_idn_to_ascii(c->in, c->flags, again, NULL),
	    c->rc);
	assert_string_equal(again, out);
}

static void
test_is_ascii(void **state)
{
	(void)state;
	assert_true(relay_idn_is_ascii(""));
	assert_true(relay_idn_is_ascii("xn--bcher-kva.example"));
	assert_false(relay_idn_is_ascii("b\xc3\xbc"
	                                "cher.example"));
	assert_false(relay_idn_is_ascii("example.\x80"));
}

static void
test_strerror(void **state)
{
	(void)state;
	assert_non_null(
	    strstr(relay_idn_strerror(RELAY_IDN_ERR_INVALID), "IDNA2008"));
	assert_non_null(strstr(relay_idn_strerror(RELAY_IDN_ERR_UTF8_OFF),
	    "smtputf8_enable"));
	assert_string_equal(relay_idn_strerror(RELAY_IDN_ERR_NOMEM),
	    "out of memory");
}

int
main(void)
{
	enum {
		NC = sizeof(cases) / sizeof(cases[0])
	};
	struct CMUnitTest tests[NC + 2];
	size_t n = 0;
	for (size_t i = 0; i < NC; i++) {
		tests[n] =
		    (struct CMUnitTest)cmocka_unit_test_prestate(test_case,
		        (void *)&cases[i]);
		tests[n].name = cases[i].name;
		n++;
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_is_ascii);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_strerror);
	return _cmocka_run_group_tests("relay_idn", tests, n, NULL, NULL);
}
