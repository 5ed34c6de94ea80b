/*
 * Unit tests for relay_tlsrpt_record: the _smtp._tls TXT record (RFC 8460
 * 3). Every case is parsed whole; the parser never reads past len (each
 * input is copied to a buffer of exactly its size).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay_tlsrpt.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int
parse(const char *text, struct relay_tlsrpt_record *out)
{
	size_t n = strlen(text);
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	memcpy(p, text, n);
	int r = relay_tlsrpt_record_parse(p, n, out);
	free(p);
	return r;
}

static const struct {
	const char *text;
	size_t nrua;
	const char *uri0, *uri1;
	enum relay_tlsrpt_rua_kind kind0;
} good[] = {
	/* RFC 8460 3.1's examples. */
	{ "v=TLSRPTv1; rua=mailto:reports@example.com", 1,
	    "reports@example.com", NULL, RELAY_TLSRPT_RUA_MAILTO },
	{ "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", 1,
	    "https://reporting.example.com/v1/tlsrpt", NULL,
	    RELAY_TLSRPT_RUA_HTTPS },
	{ "v=TLSRPTv1;rua=mailto:a@example.com,https://r.example/x", 2,
	    "a@example.com", "https://r.example/x", RELAY_TLSRPT_RUA_MAILTO },
	{ "v=TLSRPTv1 ; rua=mailto:a@example.com , mailto:b@example.com ;", 2,
	    "a@example.com", "b@example.com", RELAY_TLSRPT_RUA_MAILTO },
	/* %-decoding of the address (RFC 6068), headers dropped. */
	{ "v=TLSRPTv1; rua=mailto:tls%2Brpt@example.com?subject=x", 1,
	    "tls+rpt@example.com", NULL, RELAY_TLSRPT_RUA_MAILTO },
	/* Extensions are ignored, unknown schemes skipped. */
	{ "v=TLSRPTv1; ext=1; rua=ftp://x.example/,mailto:a@b.example", 1,
	    "a@b.example", NULL, RELAY_TLSRPT_RUA_MAILTO },
	{ "v=TLSRPTv1; rua=MAILTO:A@B.example", 1, "A@B.example", NULL,
	    RELAY_TLSRPT_RUA_MAILTO },
};

static void
test_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(good); i++) {
		struct relay_tlsrpt_record rec;
		int r = parse(good[i].text, &rec);
		if (r != 0)
			fail_msg("case %zu (%s): %d", i, good[i].text, r);
		assert_int_equal(rec.nrua, good[i].nrua);
		assert_string_equal(rec.rua[0].uri, good[i].uri0);
		assert_int_equal(rec.rua[0].kind, good[i].kind0);
		if (good[i].uri1 != NULL)
			assert_string_equal(rec.rua[1].uri, good[i].uri1);
	}
}

static const char *const bad[] = {
	"",
	"v=TLSRPTv1",  /* no rua */
	"v=TLSRPTv1;", /* no field */
	"v=TLSRPTv2; rua=mailto:a@b.example",
	"v=tlsrptv1; rua=mailto:a@b.example", /* %s: case-sensitive */
	"v=TLSRPTv1x; rua=mailto:a@b.example",
	" v=TLSRPTv1; rua=mailto:a@b.example",
	"rua=mailto:a@b.example; v=TLSRPTv1",
	"v=TLSRPTv1; rua=",
	"v=TLSRPTv1; rua=ftp://only.example/", /* nothing usable */
	"v=TLSRPTv1; rua=mailto:nobody",
	"v=TLSRPTv1; rua=mailto:a@b.example,",
	"v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@d.example",
	"v=TLSRPTv1; rua=mailto:a%4@b.example",
	"v=TLSRPTv1; rua=mailto:a%0a@b.example",
	"v=TLSRPTv1; =x; rua=mailto:a@b.example",
	"v=TLSRPTv1; ext=; rua=mailto:a@b.example",
	"v=TLSRPTv1; rua=https://",
};

static void
test_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(bad); i++) {
		struct relay_tlsrpt_record rec;
		if (parse(bad[i], &rec) != RELAY_TLSRPT_EFORMAT)
			fail_msg("case %zu (%s) parsed", i, bad[i]);
	}
}

/* The RFC 8460 3 filter that decides "exactly one record". */
static void
test_is_tlsrpt(void **state)
{
	(void)state;
	static const struct {
		const char *t;
		bool yes;
	} c[] = {
		{ "v=TLSRPTv1; rua=x", true },
		{ "v=TLSRPTv1", true },
		{ "v=TLSRPTv1 ;", true },
		{ "v=TLSRPTv10; rua=x", false },
		{ "v=spf1 -all", false },
		{ "v=TLSRPT", false },
	};
	for (size_t i = 0; i < NELEM(c); i++)
		assert_int_equal(relay_tlsrpt_record_is_tlsrpt((const uint8_t *)
		                                                   c[i]
		                                                       .t,
		                     strlen(c[i].t)),
		    c[i].yes);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_is_tlsrpt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
