/*
 * TLSA records: rdata and text parsing, classification (RFC 7672 3.1.3,
 * RFC 6698 4.1), digest agility (RFC 7671 9), canonical RRset digest, qname.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tlsa_test_util.h"

/* --- rdata: whole, every prefix, every split ---------------------------- */

static void
rdata_whole_and_prefixes(void **state)
{
	uint8_t rd[3 + 32];
	rd[0] = 3, rd[1] = 1, rd[2] = 1;
	for (int i = 0; i < 32; i++)
		rd[3 + i] = (uint8_t)i;
	struct tlsa_record r;
	assert_int_equal(tlsa_rdata_parse(rd, sizeof(rd), &r), (int)sizeof(rd));
	assert_int_equal(r.usage, 3);
	assert_int_equal(r.selector, 1);
	assert_int_equal(r.mtype, 1);
	assert_ptr_equal(r.data, rd + 3);
	assert_int_equal(r.data_len, 32);
	/* Every prefix: below 3 octets truncated, else the same fields with a
	 * shorter data slice (which classification then rejects). */
	for (size_t n = 0; n <= sizeof(rd); n++) {
		uint8_t *copy = malloc(n ? n : 1);
		assert_non_null(copy);
		memcpy(copy, rd, n);
		struct tlsa_record p;
		int rc = tlsa_rdata_parse(copy, n, &p);
		if (n < 3) {
			assert_int_equal(rc, TLSA_ERR_TRUNCATED);
		} else {
			assert_int_equal(rc, (int)n);
			assert_int_equal(p.usage, 3);
			assert_int_equal(p.data_len, n - 3);
			assert_memory_equal(p.data, rd + 3, n - 3);
			enum tlsa_unusable why;
			int u = tlsa_rrset_classify(&p, 1, NULL, &why);
			assert_int_equal(u, n == sizeof(rd) ? 1 : 0);
			assert_int_equal(why,
			    n == sizeof(rd) ? TLSA_USABLE
			                    : TLSA_UNUSABLE_DIGEST_LENGTH);
		}
		free(copy);
	}
	assert_int_equal(tlsa_rdata_parse(NULL, 3, &r), TLSA_ERR_INVAL);
}

/* Text form split at every offset into two pieces, and byte by byte via a
 * copy with whitespace inserted between every hex digit: same record. */
static void
text_split_everywhere(void **state)
{
	const char *s =
	    "3 1 1 0102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F20";
	uint8_t buf[64], buf2[64];
	struct tlsa_record whole, part;
	assert_int_equal(tlsa_record_from_text(s, strlen(s), buf, sizeof(buf),
	                     &whole),
	    0);
	assert_int_equal(whole.data_len, 32);
	assert_int_equal(whole.data[31], 0x20);
	size_t hexstart = 6;
	for (size_t cut = hexstart; cut <= strlen(s); cut++) {
		char t[160];
		snprintf(t, sizeof(t), "%.*s %s", (int)cut, s, s + cut);
		assert_int_equal(tlsa_record_from_text(t, strlen(t), buf2,
		                     sizeof(buf2), &part),
		    0);
		assert_int_equal(part.data_len, whole.data_len);
		assert_memory_equal(part.data, whole.data, whole.data_len);
	}
	char spaced[256];
	size_t k = 0;
	for (size_t i = 0; s[i] != '\0'; i++) {
		spaced[k++] = s[i];
		if (i >= hexstart)
			spaced[k++] = '\t';
	}
	spaced[k] = '\0';
	assert_int_equal(tlsa_record_from_text(spaced, k, buf2, sizeof(buf2),
	                     &part),
	    0);
	assert_memory_equal(part.data, whole.data, 32);
}

struct textcase {
	const char *name, *text;
	int rc;
	size_t bufsize;
};
static const struct textcase texts[] = {
	{ "text_ok_empty_data", "3 1 1", 0, 64 },
	{ "text_odd_hex_syntax", "3 1 1 abc", TLSA_ERR_SYNTAX, 64 },
	{ "text_non_hex_syntax", "3 1 1 zz", TLSA_ERR_SYNTAX, 64 },
	{ "text_usage_over_255_syntax", "256 1 1 00", TLSA_ERR_SYNTAX, 64 },
	{ "text_missing_field_syntax", "3 1", TLSA_ERR_SYNTAX, 64 },
	{ "text_sign_syntax", "3 -1 1 00", TLSA_ERR_SYNTAX, 64 },
	{ "text_buffer_small_space", "3 1 1 0011", TLSA_ERR_SPACE, 1 },
	{ "text_leading_space_ok", "  2 0 1 00", 0, 64 },
};

static void
text_case(void **state)
{
	const struct textcase *c = *state;
	uint8_t buf[64];
	struct tlsa_record r;
	assert_int_equal(tlsa_record_from_text(c->text, strlen(c->text), buf,
	                     c->bufsize, &r),
	    c->rc);
}

/* --- classification, one row per reason --------------------------------- */

struct classcase {
	const char *name;
	uint8_t u, s, m;
	int datakind; /* 0: n bytes pattern, 1: leaf DER cert, 2: leaf DER SPKI, 3: cert minus 1 */
	size_t n;
	enum tlsa_unusable why;
};
static const struct classcase classes[] = {
	{ "C49_3.1.3_pkix_ta_unusable", 0, 0, 1, 0, 32,
	    TLSA_UNUSABLE_PKIX_USAGE },
	{ "C49_3.1.3_pkix_ee_unusable", 1, 1, 1, 0, 32,
	    TLSA_UNUSABLE_PKIX_USAGE },
	{ "I22_6698_4.1_unknown_usage_4", 4, 1, 1, 0, 32, TLSA_UNUSABLE_USAGE },
	{ "I22_6698_4.1_unknown_usage_255", 255, 1, 1, 0, 32,
	    TLSA_UNUSABLE_USAGE },
	{ "I22_6698_4.1_unknown_selector_2", 3, 2, 1, 0, 32,
	    TLSA_UNUSABLE_SELECTOR },
	{ "I22_6698_4.1_unknown_mtype_3", 3, 1, 3, 0, 48, TLSA_UNUSABLE_MTYPE },
	{ "I22_6698_4.1_private_mtype_255", 3, 1, 255, 0, 32,
	    TLSA_UNUSABLE_PRIVATE_MTYPE },
	{ "I22_6698_4.1_sha256_short", 3, 1, 1, 0, 31,
	    TLSA_UNUSABLE_DIGEST_LENGTH },
	{ "I22_6698_4.1_sha256_long", 3, 1, 1, 0, 33,
	    TLSA_UNUSABLE_DIGEST_LENGTH },
	{ "I22_6698_4.1_sha512_short", 2, 0, 2, 0, 32,
	    TLSA_UNUSABLE_DIGEST_LENGTH },
	{ "I22_6698_4.1_sha256_empty", 3, 0, 1, 0, 0,
	    TLSA_UNUSABLE_DIGEST_LENGTH },
	{ "I22_6698_4.1_full_garbage", 3, 0, 0, 0, 40,
	    TLSA_UNUSABLE_MALFORMED_FULL },
	{ "I22_6698_4.1_full_empty", 2, 1, 0, 0, 0,
	    TLSA_UNUSABLE_MALFORMED_FULL },
	{ "I22_6698_4.1_full_cert_truncated", 2, 0, 0, 3, 0,
	    TLSA_UNUSABLE_MALFORMED_FULL },
	{ "I22_6698_4.1_full_spki_as_cert", 2, 0, 0, 2, 0,
	    TLSA_UNUSABLE_MALFORMED_FULL },
	{ "I08_7671_5.2.2_full_cert_usable", 2, 0, 0, 1, 0, TLSA_USABLE },
	{ "I06_7671_5.1_full_spki_usable", 3, 1, 0, 2, 0, TLSA_USABLE },
	{ "sha256_usable", 3, 1, 1, 0, 32, TLSA_USABLE },
	{ "I03_7671_2_sha512_usable", 2, 1, 2, 0, 64, TLSA_USABLE },
};

static void
class_case(void **state)
{
	const struct classcase *c = *state;
	uint8_t buf[2048];
	size_t n = c->n;
	if (c->datakind == 0) {
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)(0x30 + i);
	} else {
		X509 *x = tt_cert("leaf");
		n = tt_assoc(x, c->datakind == 2 ? 1 : 0, 0, buf, sizeof(buf));
		if (c->datakind == 3)
			n--;
		X509_free(x);
	}
	struct tlsa_record r = { c->u, c->s, c->m, buf, n };
	enum tlsa_unusable why;
	assert_int_equal(tlsa_rrset_classify(&r, 1, NULL, &why),
	    c->why == TLSA_USABLE ? 1 : 0);
	assert_string_equal(tlsa_unusable_name(why),
	    tlsa_unusable_name(c->why));
}

/* --- digest agility (RFC 7671 9, I13, C61) ------------------------------- */

static uint8_t z32[32], z64[64];

static void
agility_strongest_per_usage_selector(void **state)
{
	const struct tlsa_record r[] = {
		{ 3, 1, 1, z32, 32 },
		{ 3, 1, 2, z64, 64 }, /* 3 1: sha512 wins */
		{ 3, 0, 1, z32, 32 }, /* 3 0: only sha256, kept */
		{ 2, 0, 1, z32, 32 },
		{ 2, 0, 2, z64, 64 }, /* 2 0: sha512 wins */
	};
	enum tlsa_unusable why[5];
	assert_int_equal(tlsa_rrset_classify(r, 5, NULL, why), 3);
	assert_int_equal(why[0], TLSA_UNUSABLE_SUPERSEDED);
	assert_int_equal(why[1], TLSA_USABLE);
	assert_int_equal(why[2], TLSA_USABLE);
	assert_int_equal(why[3], TLSA_UNUSABLE_SUPERSEDED);
	assert_int_equal(why[4], TLSA_USABLE);
}

static void
agility_after_discarding_unusable_I13(void **state)
{
	/* A malformed sha512 record must not suppress a good sha256 one. */
	const struct tlsa_record r[] = { { 3, 1, 1, z32, 32 },
		{ 3, 1, 2, z64, 63 } };
	enum tlsa_unusable why[2];
	assert_int_equal(tlsa_rrset_classify(r, 2, NULL, why), 1);
	assert_int_equal(why[0], TLSA_USABLE);
	assert_int_equal(why[1], TLSA_UNUSABLE_DIGEST_LENGTH);
}

static void
agility_full_always_kept_I13(void **state)
{
	X509 *x = tt_cert("leaf");
	uint8_t spki[512];
	size_t n = tt_assoc(x, 1, 0, spki, sizeof(spki));
	X509_free(x);
	const struct tlsa_record r[] = { { 3, 1, 0, spki, n },
		{ 3, 1, 2, z64, 64 }, { 3, 1, 1, z32, 32 } };
	enum tlsa_unusable why[3];
	assert_int_equal(tlsa_rrset_classify(r, 3, NULL, why), 2);
	assert_int_equal(why[0], TLSA_USABLE);
	assert_int_equal(why[1], TLSA_USABLE);
	assert_int_equal(why[2], TLSA_UNUSABLE_SUPERSEDED);
}

static void
agility_configured_order_I12(void **state)
{
	struct tlsa_digests ds;
	assert_int_equal(tlsa_digests_parse("sha256, sha512", 14, &ds), 0);
	const struct tlsa_record r[] = { { 3, 1, 1, z32, 32 },
		{ 3, 1, 2, z64, 64 } };
	enum tlsa_unusable why[2];
	assert_int_equal(tlsa_rrset_classify(r, 2, &ds, why), 1);
	assert_int_equal(why[0], TLSA_USABLE);
	assert_int_equal(why[1], TLSA_UNUSABLE_SUPERSEDED);
	/* sha512 only: sha256 records are not usable at all (I23). */
	assert_int_equal(tlsa_digests_parse("sha512", 6, &ds), 0);
	assert_int_equal(tlsa_rrset_classify(r, 2, &ds, why), 1);
	assert_int_equal(why[0], TLSA_UNUSABLE_MTYPE);
}

static void
agility_extension_mapping_I12(void **state)
{
	struct tlsa_digests ds;
	const char *spec = "sha384=3 sha512 sha256";
	assert_int_equal(tlsa_digests_parse(spec, strlen(spec), &ds), 0);
	assert_int_equal(ds.n, 3);
	assert_int_equal(ds.d[0].mtype, 3);
	assert_int_equal(ds.d[0].len, 48);
	uint8_t d48[48] = { 1 };
	const struct tlsa_record r[] = { { 3, 1, 3, d48, 48 },
		{ 3, 1, 2, z64, 64 } };
	enum tlsa_unusable why[2];
	assert_int_equal(tlsa_rrset_classify(r, 2, &ds, why), 1);
	assert_int_equal(why[0], TLSA_USABLE);
	assert_int_equal(why[1], TLSA_UNUSABLE_SUPERSEDED);
}

static void
digests_parse_errors(void **state)
{
	static const char *bad[] = { "", " , ", "md5x", "sha256 sha256",
		"sha256=0", "sha512=1 sha256", "nosuchdigest=3",
		"sha256=", "sha256=1000", "sha1", "=3" };
	struct tlsa_digests ds;
	tlsa_digests_default(&ds);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tlsa_digests_parse(bad[i], strlen(bad[i]),
		                     &ds),
		    TLSA_ERR_SYNTAX);
	/* Unchanged by failures. */
	assert_int_equal(ds.n, 2);
	assert_int_equal(ds.d[0].mtype, 2);
	assert_string_equal(ds.d[0].name, "sha512");
}

/* --- RRset digest -------------------------------------------------------- */

static void
rrset_digest_canonical(void **state)
{
	uint8_t a[32] = { 1 }, b[32] = { 2 };
	const struct tlsa_record x[] = { { 3, 1, 1, a, 32 },
		{ 2, 0, 1, b, 32 } };
	const struct tlsa_record y[] = { { 2, 0, 1, b, 32 }, { 3, 1, 1, a, 32 },
		{ 3, 1, 1, a, 32 } };
	const struct tlsa_record z[] = { { 2, 0, 1, b, 32 },
		{ 3, 1, 2, a, 32 } };
	uint8_t dx[32], dy[32], dz[32], de[32];
	assert_int_equal(tlsa_rrset_digest(x, 2, dx), 0);
	assert_int_equal(tlsa_rrset_digest(y, 3, dy), 0);
	assert_int_equal(tlsa_rrset_digest(z, 2, dz), 0);
	assert_int_equal(tlsa_rrset_digest(NULL, 0, de), 0);
	assert_memory_equal(dx, dy, 32);
	assert_memory_not_equal(dx, dz, 32);
	assert_memory_not_equal(dx, de, 32);
	/* Empty set: SHA-256 of nothing. */
	static const uint8_t e[4] = { 0xe3, 0xb0, 0xc4, 0x42 };
	assert_memory_equal(de, e, 4);
}

/* --- qname, levels, names ---------------------------------------------- */

static void
qname_port_C41(void **state)
{
	char b[300];
	assert_int_equal(tlsa_qname("MX.example.net.", 25, b, sizeof(b)), 0);
	assert_string_equal(b, "_25._tcp.mx.example.net");
	assert_int_equal(tlsa_qname("mx.example.net", 587, b, sizeof(b)), 0);
	assert_string_equal(b, "_587._tcp.mx.example.net");
	assert_int_equal(tlsa_qname("bad name", 25, b, sizeof(b)),
	    TLSA_ERR_NAME);
	assert_int_equal(tlsa_qname("mx.example.net", 25, b, 10),
	    TLSA_ERR_SPACE);
	char longn[254];
	memset(longn, 'a', 253);
	for (int i = 63; i < 253; i += 64)
		longn[i] = '.';
	longn[253] = '\0';
	assert_int_equal(tlsa_qname(longn, 25, b, sizeof(b)), TLSA_ERR_NAME);
}

static void
levels_parse_no_none(void **state)
{
	static const char *ok[] = { "dane", "dane-only", "may", "encrypt",
		"verify" };
	enum tlsa_level l;
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(tlsa_level_parse(ok[i], strlen(ok[i]), &l), 0);
		assert_string_equal(tlsa_level_name(l), ok[i]);
	}
	assert_int_equal(tlsa_level_parse("none", 4, &l), TLSA_ERR_SYNTAX);
	assert_int_equal(tlsa_level_parse("DANE", 4, &l), TLSA_ERR_SYNTAX);
	assert_int_equal(tlsa_level_parse("dane", 3, &l), TLSA_ERR_SYNTAX);
	assert_int_equal(tlsa_level_parse("secure", 6, &l), TLSA_ERR_SYNTAX);
}

static void
names_and_strerror(void **state)
{
	for (int e = 0; e >= -9; e--)
		assert_string_not_equal(tlsa_strerror(e), "unknown error");
	assert_string_equal(tlsa_strerror(-99), "unknown error");
	assert_string_equal(tlsa_failure_name(TLSA_FAIL_DANE_REQUIRED),
	    "dane-required");
	assert_string_equal(tlsa_failure_name(TLSA_FAIL_STARTTLS_NOT_SUPPORTED),
	    "starttls-not-supported");
	assert_string_equal(tlsa_failure_name(TLSA_FAIL_CERT_HOST_MISMATCH),
	    "certificate-host-mismatch");
	assert_string_equal(tlsa_trust_name(TLSA_TRUST_TRUSTED), "Trusted");
	assert_string_equal(tlsa_auth_name(TLSA_AUTH_DANE_TA), "dane-ta");
}

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(rdata_whole_and_prefixes),
		cmocka_unit_test(text_split_everywhere),
		cmocka_unit_test(agility_strongest_per_usage_selector),
		cmocka_unit_test(agility_after_discarding_unusable_I13),
		cmocka_unit_test(agility_full_always_kept_I13),
		cmocka_unit_test(agility_configured_order_I12),
		cmocka_unit_test(agility_extension_mapping_I12),
		cmocka_unit_test(digests_parse_errors),
		cmocka_unit_test(rrset_digest_canonical),
		cmocka_unit_test(qname_port_C41),
		cmocka_unit_test(levels_parse_no_none),
		cmocka_unit_test(names_and_strerror),
	};
	memset(z32, 0x5a, sizeof(z32));
	memset(z64, 0xa5, sizeof(z64));
	size_t nf = sizeof(fixed) / sizeof(fixed[0]);
	size_t nt = sizeof(texts) / sizeof(texts[0]);
	size_t nc = sizeof(classes) / sizeof(classes[0]);
	struct CMUnitTest *t = calloc(nf + nt + nc, sizeof(*t));
	if (t == NULL)
		return 1;
	size_t k = 0;
	for (size_t i = 0; i < nf; i++)
		t[k++] = fixed[i];
	for (size_t i = 0; i < nt; i++) {
		t[k] = (struct CMUnitTest)cmocka_unit_test_prestate(text_case,
		    (void *)&texts[i]);
		t[k++].name = texts[i].name;
	}
	for (size_t i = 0; i < nc; i++) {
		t[k] = (struct CMUnitTest)cmocka_unit_test_prestate(class_case,
		    (void *)&classes[i]);
		t[k++].name = classes[i].name;
	}
	int rc = _cmocka_run_group_tests("tlsa_record", t, k, NULL, NULL);
	free(t);
	return rc;
}
