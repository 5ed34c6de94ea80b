/*
 * Unit tests for tlsa_hint: each key-rollover mistake is named from the
 * key history, none is named when the history does not say, and the
 * names round-trip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "tlsa_hint.h"

/* Three "keys": SHA-256 digests of SPKIs, distinct in their first octets. */
static uint8_t key_old[32], key_new[32], key_future[32];

static int
setup(void **state)
{
	(void)state;
	for (int i = 0; i < 32; i++) {
		key_old[i] = (uint8_t)(0x10 + i);
		key_new[i] = (uint8_t)(0x80 + i);
		key_future[i] = (uint8_t)(0xc0 + i);
	}
	return 0;
}

static struct tlsa_record
rec(uint8_t u, uint8_t s, uint8_t m, const uint8_t *d, size_t n)
{
	struct tlsa_record r = { u, s, m, d, n };
	return r;
}

static struct tlsa_hint_facts
facts(const struct tlsa_record *recs, size_t n, const uint8_t *cur,
    const uint8_t *first, const uint8_t *last, bool matched)
{
	struct tlsa_hint_facts f;
	memset(&f, 0, sizeof(f));
	f.recs = recs;
	f.n_recs = n;
	if (cur != NULL) {
		f.have_key = true;
		memcpy(f.key_sha256, cur, 32);
	}
	if (first != NULL) {
		f.have_history = true;
		f.first_key = tlsa_hint_key_prefix(first);
		f.last_key = tlsa_hint_key_prefix(last);
		f.ever_matched = matched;
	}
	f.chain_len = 2;
	return f;
}

/* (1) A new key, and the TLSA still names the previous one. */
static void
test_new_key_before_tlsa(void **state)
{
	(void)state;
	struct tlsa_record r = rec(3, 1, 1, key_old, 32);
	struct tlsa_hint_facts f =
	    facts(&r, 1, key_new, key_old, key_old, true);
	assert_int_equal(tlsa_hint_diagnose(&f), TLSA_HINT_NEW_KEY_BEFORE_TLSA);
	/* Without history nothing says the key was rotated: the record then
	 * names a key never seen here (4). */
	f = facts(&r, 1, key_new, NULL, NULL, false);
	assert_int_equal(tlsa_hint_diagnose(&f), TLSA_HINT_TLSA_UNSEEN_KEY);
}

/* (2) Same key as when it matched, only 3 0 x records. */
static void
test_cert_renewed_3_0(void **state)
{
	(void)state;
	uint8_t certhash[32];
	memset(certhash, 0x5a, sizeof(certhash));
	struct tlsa_record r = rec(3, 0, 1, certhash, 32);
	struct tlsa_hint_facts f =
	    facts(&r, 1, key_old, key_old, key_old, true);
	assert_int_equal(tlsa_hint_diagnose(&f), TLSA_HINT_CERT_RENEWED_3_0);
	/* Never matched before: not a renewal story. */
	f = facts(&r, 1, key_old, key_old, key_old, false);
	assert_int_equal(tlsa_hint_diagnose(&f), TLSA_HINT_NONE);
	/* A different key: not "the same key". */
	f = facts(&r, 1, key_new, key_old, key_old, true);
	assert_int_equal(tlsa_hint_diagnose(&f), TLSA_HINT_NONE);
}

/* (3) DANE-TA records and a leaf-only chain. */
static void
test_ta_chain_missing(void **state)
{
	(void)state;
	uint8_t ca[32];
	memset(ca, 0x33, sizeof(ca));
	struct tlsa_record r = rec(2, 0, 1, ca, 32);
	struct tlsa_hint_facts f = facts(&r, 1, key_old, NULL, NULL, false);
	f.chain_len = 1;
	assert_int_equal(tlsa_hint_diagnose(&f), TLSA_HINT_TA_CHAIN_MISSING);
	f.chain_len = 2; /* the chain is sent: some other problem */
	assert_int_equal(tlsa_hint_diagnose(&f), TLSA_HINT_NONE);
}

/* (4) A record for a key never presented, the server still on its key. */
static void
test_tlsa_unseen_key(void **state)
{
	(void)state;
	struct tlsa_record r = rec(3, 1, 1, key_future, 32);
	struct tlsa_hint_facts f =
	    facts(&r, 1, key_old, key_old, key_old, true);
	assert_int_equal(tlsa_hint_diagnose(&f), TLSA_HINT_TLSA_UNSEEN_KEY);
	/* The same through a 3 1 0 record: its SHA-256 is computed. */
	uint8_t spki[40];
	memset(spki, 0x42, sizeof(spki));
	struct tlsa_record full = rec(3, 1, 0, spki, sizeof(spki));
	f = facts(&full, 1, key_old, key_old, key_old, true);
	assert_int_equal(tlsa_hint_diagnose(&f), TLSA_HINT_TLSA_UNSEEN_KEY);
	/* A record naming the first key ever seen is not "unseen". */
	struct tlsa_record first = rec(3, 1, 1, key_future, 32);
	f = facts(&first, 1, key_old, key_future, key_old, true);
	assert_int_equal(tlsa_hint_diagnose(&f), TLSA_HINT_NONE);
}

/* 3 1 0 data is hashed: a record naming the previous key in full form
 * gives hint (1) as its 3 1 1 form does. */
static void
test_full_key_record(void **state)
{
	(void)state;
	uint8_t spki[40], d[32];
	unsigned int dl = 0;
	memset(spki, 0x24, sizeof(spki));
	assert_int_equal(EVP_Digest(spki, sizeof(spki), d, &dl, EVP_sha256(),
	                     NULL),
	    1);
	struct tlsa_record r = rec(3, 1, 0, spki, sizeof(spki));
	struct tlsa_hint_facts f = facts(&r, 1, key_new, d, d, true);
	assert_int_equal(tlsa_hint_diagnose(&f), TLSA_HINT_NEW_KEY_BEFORE_TLSA);
}

static void
test_names(void **state)
{
	(void)state;
	for (int h = TLSA_HINT_NEW_KEY_BEFORE_TLSA;
	     h <= TLSA_HINT_TLSA_UNSEEN_KEY; h++) {
		const char *n = tlsa_hint_name((enum tlsa_hint)h);
		assert_true(n[0] != '\0');
		assert_int_equal(tlsa_hint_parse(n), h);
		assert_non_null(
		    strstr(tlsa_hint_text((enum tlsa_hint)h), "RFC 7671"));
	}
	assert_string_equal(tlsa_hint_name(TLSA_HINT_NONE), "");
	assert_int_equal(tlsa_hint_parse("no-such-hint"), TLSA_HINT_NONE);
	assert_int_equal(tlsa_hint_parse(NULL), TLSA_HINT_NONE);
	assert_string_equal(tlsa_hint_text_of("bogus"), "");
	assert_string_equal(tlsa_hint_name(TLSA_HINT_NEW_KEY_BEFORE_TLSA),
	    "new-key-before-tlsa");
	struct tlsa_hint_facts none;
	memset(&none, 0, sizeof(none));
	assert_int_equal(tlsa_hint_diagnose(&none), TLSA_HINT_NONE);
	assert_int_equal(tlsa_hint_diagnose(NULL), TLSA_HINT_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_key_before_tlsa),
		cmocka_unit_test(test_cert_renewed_3_0),
		cmocka_unit_test(test_ta_chain_missing),
		cmocka_unit_test(test_tlsa_unseen_key),
		cmocka_unit_test(test_full_key_record),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
