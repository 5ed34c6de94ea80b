/*
 * RFC 7672 decision table: one TAP case per row, the checklist row and RFC
 * section in each name. Each row drives the real daemon protocol:
 * tlsa_policy_tlsa_next() until it says done (asserting which base domains
 * it asks for), then tlsa_policy_decide().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tlsa.h"

enum rs {
	RS_NONE,
	RS_USABLE,
	RS_UNUSABLE,
	RS_MIXED,
	RS_PRIV,
	RS_BADLEN,
	RS_AGILE
};
struct tans {
	enum tlsa_answer a;
	enum tlsa_dnssec s;
	enum rs rs;
	bool malformed;
};
struct row {
	const char *name;
	enum tlsa_level level;
	enum tlsa_answer mxa;
	enum tlsa_dnssec mxs;
	bool mx_null, literal, no_mx;
	const char *nexthop, *mx_expanded;
	const char *host;
	bool numeric;
	enum tlsa_answer aa;
	enum tlsa_dnssec as;
	const char *expanded;
	enum tlsa_dnssec first;
	int n_ans;
	struct tans ans[2];
	const char *bases; /* lookups expected, comma separated */
	enum tlsa_verdict_kind kind;
	enum tlsa_trust log_as;
	const char *status;
	enum tlsa_failure fclass;
	enum tlsa_scope scope;
	bool permanent;
	const char *base, *refs;
	size_t n_usable;
};

#define SEC TLSA_DNSSEC_SECURE
#define INS TLSA_DNSSEC_INSECURE
#define BOG TLSA_DNSSEC_BOGUS
#define IND TLSA_DNSSEC_INDETERMINATE
#define DATA TLSA_ANSWER_DATA
#define NODATA TLSA_ANSWER_NODATA
#define NXD TLSA_ANSWER_NXDOMAIN
#define ERR TLSA_ANSWER_ERROR
#define ONLY .level = TLSA_LEVEL_DANE_ONLY
#define A1(a_, s_, rs_) .n_ans = 1, .ans = { { a_, s_, rs_, false } }
#define DNC_HOST(st, fc)                                                       \
	.kind = TLSA_VERDICT_DO_NOT_CONNECT, .status = st, .fclass = fc,       \
	.scope = TLSA_SCOPE_HOST
#define DNC_DEST(st, fc)                                                       \
	.kind = TLSA_VERDICT_DO_NOT_CONNECT, .status = st, .fclass = fc,       \
	.scope = TLSA_SCOPE_DESTINATION
#define MAYV .kind = TLSA_VERDICT_MAY, .log_as = TLSA_TRUST_UNTRUSTED
#define ENCV .kind = TLSA_VERDICT_ENCRYPT, .log_as = TLSA_TRUST_UNTRUSTED
#define DANEV(tr, nu) .kind = TLSA_VERDICT_DANE, .log_as = tr, .n_usable = nu
#define MX "mx.example.net"

static const struct row rows[] = {
	/* Destination: MX lookup (RFC 7672 2.1.2, 2.2.1; RFC 5321 5.1; RFC 7505) */
	{ .name = "C09_2.1.2_mx_servfail_defers_destination",
	    .mxa = ERR,
	    DNC_DEST("4.4.3", TLSA_FAIL_DNS_ERROR) },
	{ .name = "C09_2.1.2_mx_bogus_defers_destination",
	    .mxs = BOG,
	    DNC_DEST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C05_2.1.1_mx_indeterminate_is_bogus",
	    .mxs = IND,
	    DNC_DEST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C09_2.1.2_mx_bogus_level_may_defers",
	    .level = TLSA_LEVEL_MAY,
	    .mxs = BOG,
	    DNC_DEST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C05_2.1.1_mx_nxdomain_bogus_defers",
	    .mxa = NXD,
	    .mxs = BOG,
	    DNC_DEST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "I25_rfc5321_5.1_mx_nxdomain_bounces",
	    .mxa = NXD,
	    DNC_DEST("5.1.2", TLSA_FAIL_HOST_NOT_FOUND),
	    .permanent = true },
	{ .name = "I32_I33_rfc7505_null_mx_bounces_5.1.10",
	    .mx_null = true,
	    DNC_DEST("5.1.10", TLSA_FAIL_NULL_MX),
	    .permanent = true },
	{ .name = "I32_rfc7505_null_mx_insecure_bounces",
	    .mx_null = true,
	    .mxs = INS,
	    DNC_DEST("5.1.10", TLSA_FAIL_NULL_MX),
	    .permanent = true },
	{ .name = "C30_2.2.1_dane_only_insecure_mx_defers",
	    ONLY,
	    .mxs = INS,
	    DNC_DEST("4.7.5", TLSA_FAIL_DANE_REQUIRED) },
	{ .name = "C30_2.2.1_dane_only_insecure_nodata_defers",
	    ONLY,
	    .mxa = NODATA,
	    .mxs = INS,
	    DNC_DEST("4.7.5", TLSA_FAIL_DANE_REQUIRED) },
	{ .name = "C30_2.2.1_dane_only_insecure_null_mx_defers",
	    ONLY,
	    .mxs = INS,
	    .mx_null = true,
	    DNC_DEST("4.7.5", TLSA_FAIL_DANE_REQUIRED) },
	{ .name = "C26_2.2_literal_nexthop_dane_is_may",
	    .literal = true,
	    .nexthop = "192.0.2.1",
	    .host = "192.0.2.1",
	    MAYV,
	    .bases = "" },
	{ .name = "C26_2.2_literal_nexthop_dane_only_defers",
	    ONLY,
	    .literal = true,
	    .nexthop = "192.0.2.1",
	    .host = "192.0.2.1",
	    DNC_DEST("4.7.5", TLSA_FAIL_DANE_REQUIRED) },
	{ .name = "C26_2.2_literal_nexthop_encrypt",
	    .level = TLSA_LEVEL_ENCRYPT,
	    .literal = true,
	    .nexthop = "192.0.2.1",
	    .host = "192.0.2.1",
	    ENCV },
	{ .name = "C26_2.2_literal_nexthop_verify_ip",
	    .level = TLSA_LEVEL_VERIFY,
	    .literal = true,
	    .nexthop = "192.0.2.1",
	    .host = "192.0.2.1",
	    .kind = TLSA_VERDICT_VERIFY,
	    .log_as = TLSA_TRUST_VERIFIED,
	    .base = "192.0.2.1",
	    .refs = "192.0.2.1" },
	/* Host address lookups (RFC 7672 2.1.2, 2.2.2) */
	{ .name = "C10_2.1.2_addr_servfail_skips_host",
	    .aa = ERR,
	    DNC_HOST("4.4.3", TLSA_FAIL_DNS_ERROR),
	    .bases = "" },
	{ .name = "C14_2.1.2_addr_bogus_skips_host",
	    .as = BOG,
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID),
	    .bases = "" },
	{ .name = "C05_2.1.1_addr_indeterminate_skips_host",
	    .as = IND,
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C40_2.2.2_addr_bogus_level_may_skips_host",
	    .level = TLSA_LEVEL_MAY,
	    .as = BOG,
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C38_2.2.2_addr_nodata_unreachable",
	    .aa = NODATA,
	    DNC_HOST("4.4.4", TLSA_FAIL_HOST_NOT_FOUND),
	    .bases = "" },
	{ .name = "C38_2.2.2_addr_nxdomain_unreachable",
	    .aa = NXD,
	    DNC_HOST("4.4.4", TLSA_FAIL_HOST_NOT_FOUND) },
	{ .name = "C37_2.2.2_addr_insecure_no_tlsa_lookup_may",
	    .as = INS,
	    MAYV,
	    .bases = "" },
	{ .name = "C37_C62_2.2.2_addr_insecure_dane_only_no_connect",
	    ONLY,
	    .as = INS,
	    .bases = "",
	    DNC_HOST("4.7.5", TLSA_FAIL_DANE_REQUIRED) },
	{ .name = "C26_2.2_numeric_mx_data_no_dane",
	    .numeric = true,
	    .host = "192.0.2.7",
	    MAYV,
	    .bases = "" },
	{ .name = "C26_2.2_numeric_mx_data_dane_only_no_connect",
	    ONLY,
	    .numeric = true,
	    .host = "192.0.2.7",
	    DNC_HOST("4.7.5", TLSA_FAIL_DANE_REQUIRED) },
	/* TLSA answers (RFC 7672 2.1.2, 2.2, 3.1.3; RFC 7671 10.3) */
	{ .name = "C18_C50_2.2_secure_usable_dane",
	    A1(DATA, SEC, RS_USABLE),
	    .bases = MX,
	    DANEV(TLSA_TRUST_VERIFIED, 1),
	    .base = MX,
	    .refs = MX ",example.com" },
	{ .name = "C25_2.2_dane_only_secure_usable_dane",
	    ONLY,
	    A1(DATA, SEC, RS_USABLE),
	    .bases = MX,
	    DANEV(TLSA_TRUST_VERIFIED, 1),
	    .base = MX },
	{ .name = "C20_C43_2.2_secure_all_unusable_encrypt",
	    A1(DATA, SEC, RS_UNUSABLE),
	    ENCV,
	    .base = MX },
	{ .name = "C62_I15_6_dane_only_all_unusable_no_connect",
	    ONLY,
	    A1(DATA, SEC, RS_UNUSABLE),
	    DNC_HOST("4.7.5", TLSA_FAIL_TLSA_INVALID) },
	{ .name = "C49_3.1.3_pkix_usage_dropped_dane_usable_kept",
	    A1(DATA, SEC, RS_MIXED),
	    DANEV(TLSA_TRUST_VERIFIED, 1) },
	{ .name = "I22_6698_4.1_private_mtype_only_encrypt",
	    A1(DATA, SEC, RS_PRIV),
	    ENCV },
	{ .name = "I22_6698_4.1_bad_digest_length_encrypt",
	    A1(DATA, SEC, RS_BADLEN),
	    ENCV },
	{ .name = "C61_rfc7671_9_agility_keeps_sha512",
	    A1(DATA, SEC, RS_AGILE),
	    DANEV(TLSA_TRUST_VERIFIED, 1) },
	{ .name = "C22_I21_2.2_insecure_tlsa_may",
	    A1(DATA, INS, RS_USABLE),
	    MAYV },
	{ .name = "C62_6_insecure_tlsa_dane_only_no_connect",
	    ONLY,
	    A1(DATA, INS, RS_USABLE),
	    DNC_HOST("4.7.5", TLSA_FAIL_DANE_REQUIRED) },
	{ .name = "C22_2.2_secure_nodata_may", A1(NODATA, SEC, RS_NONE), MAYV },
	{ .name = "C22_2.2_secure_nxdomain_may", A1(NXD, SEC, RS_NONE), MAYV },
	{ .name = "C62_6_secure_nodata_dane_only_no_connect",
	    ONLY,
	    A1(NODATA, SEC, RS_NONE),
	    DNC_HOST("4.7.5", TLSA_FAIL_DANE_REQUIRED) },
	{ .name = "C12_C15_2.1.2_tlsa_servfail_no_connect",
	    A1(ERR, SEC, RS_NONE),
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C13_C24_2.2_tlsa_bogus_no_connect",
	    A1(DATA, BOG, RS_USABLE),
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "I20_6698_4.1_tlsa_bogus_nodata_no_connect",
	    A1(NODATA, BOG, RS_NONE),
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C05_2.1.1_tlsa_indeterminate_no_connect",
	    A1(DATA, IND, RS_USABLE),
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C12_2.1.2_tlsa_malformed_no_connect",
	    .n_ans = 1,
	    .ans = { { DATA, SEC, RS_USABLE, true } },
	    DNC_HOST("4.7.5", TLSA_FAIL_TLSA_INVALID) },
	{ .name = "C12_2.1.2_tlsa_secure_data_zero_records_no_connect",
	    A1(DATA, SEC, RS_NONE),
	    DNC_HOST("4.7.5", TLSA_FAIL_TLSA_INVALID) },
	{ .name = "C35_2.2.1_tlsa_servfail_dane_only_no_connect",
	    ONLY,
	    A1(ERR, SEC, RS_NONE),
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	/* Insecure MX (RFC 7672 2.2.1, 3.2.2): decision of this project, README */
	{ .name = "C31_C33_C55_2.2.1_insecure_mx_secure_host_dane_trusted",
	    .mxs = INS,
	    A1(DATA, SEC, RS_USABLE),
	    .bases = MX,
	    DANEV(TLSA_TRUST_TRUSTED, 1),
	    .base = MX,
	    .refs = MX },
	{ .name = "C37_2.2.1_insecure_mx_insecure_host_may",
	    .mxs = INS,
	    .as = INS,
	    .bases = "",
	    MAYV },
	{ .name = "C35_2.2.1_insecure_mx_tlsa_bogus_no_connect",
	    .mxs = INS,
	    A1(DATA, BOG, RS_USABLE),
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C20_2.2.1_insecure_mx_unusable_encrypt",
	    .mxs = INS,
	    A1(DATA, SEC, RS_UNUSABLE),
	    ENCV },
	/* CNAMEs (RFC 7672 2.1.3, 2.2.2, 2.2.3; RFC 7671 7) */
	{ .name = "C39_I10_2.2.2_secure_cname_expanded_first",
	    .expanded = "mail.example.org",
	    A1(DATA, SEC, RS_USABLE),
	    .bases = "mail.example.org",
	    DANEV(TLSA_TRUST_VERIFIED, 1),
	    .base = "mail.example.org",
	    .refs = "mail.example.org,example.com" },
	{ .name = "C44_2.2.3_expanded_nodata_then_original",
	    .expanded = "mail.example.org",
	    .n_ans = 2,
	    .ans = { { NODATA, SEC, RS_NONE, false },
	        { DATA, SEC, RS_USABLE, false } },
	    .bases = "mail.example.org," MX,
	    DANEV(TLSA_TRUST_VERIFIED, 1),
	    .base = MX },
	{ .name = "C44_2.2.3_expanded_insecure_then_original_nodata_may",
	    .expanded = "mail.example.org",
	    .n_ans = 2,
	    .ans = { { DATA, INS, RS_USABLE, false },
	        { NODATA, SEC, RS_NONE, false } },
	    .bases = "mail.example.org," MX,
	    MAYV },
	{ .name = "C40_2.2.2_expanded_bogus_stops_no_original",
	    .expanded = "mail.example.org",
	    A1(DATA, BOG, RS_USABLE),
	    .bases = "mail.example.org",
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C43_2.2.3_expanded_unusable_encrypt_no_fallback",
	    .expanded = "mail.example.org",
	    A1(DATA, SEC, RS_UNUSABLE),
	    .bases = "mail.example.org",
	    ENCV,
	    .base = "mail.example.org" },
	{ .name = "C39_2.2.2_insecure_expansion_secure_first_cname_original",
	    .expanded = "mail.example.org",
	    .as = INS,
	    .first = SEC,
	    A1(DATA, SEC, RS_USABLE),
	    .bases = MX,
	    DANEV(TLSA_TRUST_VERIFIED, 1),
	    .base = MX },
	{ .name = "C17_C39_2.1.3_insecure_first_cname_no_dane",
	    .expanded = "mail.example.org",
	    .as = INS,
	    .first = INS,
	    .bases = "",
	    MAYV },
	{ .name = "C17_C39_2.1.3_insecure_first_cname_dane_only_no_connect",
	    ONLY,
	    .expanded = "mail.example.org",
	    .as = INS,
	    .first = INS,
	    .bases = "",
	    DNC_HOST("4.7.5", TLSA_FAIL_DANE_REQUIRED) },
	{ .name = "C16_C40_2.1.3_bogus_first_cname_skips_host",
	    .expanded = "mail.example.org",
	    .as = INS,
	    .first = BOG,
	    .bases = "",
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C05_C16_2.1.3_indeterminate_first_cname_skips_host",
	    .expanded = "mail.example.org",
	    .as = INS,
	    .first = IND,
	    .bases = "",
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C16_C40_2.1.3_bogus_first_cname_dane_only_skips_host",
	    ONLY,
	    .expanded = "mail.example.org",
	    .as = INS,
	    .first = BOG,
	    .bases = "",
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	{ .name = "C16_C40_2.1.3_bogus_first_cname_level_may_skips_host",
	    .level = TLSA_LEVEL_MAY,
	    .expanded = "mail.example.org",
	    .as = INS,
	    .first = BOG,
	    .bases = "",
	    DNC_HOST("4.7.5", TLSA_FAIL_DNSSEC_INVALID) },
	/* Implicit MX and reference identifiers (RFC 7672 3.2.2; RFC 5321 5.1) */
	{ .name = "I27_rfc5321_5.1_implicit_mx_dane",
	    .mxa = NODATA,
	    .host = "example.com",
	    A1(DATA, SEC, RS_USABLE),
	    .bases = "example.com",
	    DANEV(TLSA_TRUST_VERIFIED, 1),
	    .base = "example.com",
	    .refs = "example.com" },
	{ .name = "C56_3.2.2_implicit_mx_cname_adds_original",
	    .mxa = NODATA,
	    .host = "example.com",
	    .expanded = "mail.example.net",
	    A1(DATA, SEC, RS_USABLE),
	    .bases = "mail.example.net",
	    DANEV(TLSA_TRUST_VERIFIED, 1),
	    .base = "mail.example.net",
	    .refs = "mail.example.net,example.com" },
	{ .name = "C54_3.2.2_mx_via_cname_expanded_nexthop_3rd",
	    .mx_expanded = "example-mail.com",
	    A1(DATA, SEC, RS_USABLE),
	    DANEV(TLSA_TRUST_VERIFIED, 1),
	    .refs = MX ",example.com,example-mail.com" },
	{ .name = "C54_3.2.2_secure_mx_refs_base_then_nexthop",
	    A1(DATA, SEC, RS_USABLE),
	    DANEV(TLSA_TRUST_VERIFIED, 1),
	    .refs = MX ",example.com" },
	{ .name = "C34_2.2.1_bracket_host_no_mx_dane_verified",
	    .no_mx = true,
	    .nexthop = MX,
	    A1(DATA, SEC, RS_USABLE),
	    .bases = MX,
	    DANEV(TLSA_TRUST_VERIFIED, 1),
	    .refs = MX },
	/* Levels that make TLSA moot */
	{ .name = "C22_2.2_level_may_no_tlsa_lookup",
	    .level = TLSA_LEVEL_MAY,
	    .bases = "",
	    MAYV },
	{ .name = "C25_2.2_level_encrypt_no_tlsa_lookup",
	    .level = TLSA_LEVEL_ENCRYPT,
	    .bases = "",
	    ENCV },
	{ .name = "C33_2.2.1_level_verify_secure_mx_verified",
	    .level = TLSA_LEVEL_VERIFY,
	    .bases = "",
	    .kind = TLSA_VERDICT_VERIFY,
	    .log_as = TLSA_TRUST_VERIFIED,
	    .base = MX,
	    .refs = MX },
	{ .name = "C33_2.2.1_level_verify_insecure_mx_trusted",
	    .level = TLSA_LEVEL_VERIFY,
	    .mxs = INS,
	    .bases = "",
	    .kind = TLSA_VERDICT_VERIFY,
	    .log_as = TLSA_TRUST_TRUSTED,
	    .base = MX },
	{ .name = "C22_2.2_level_may_insecure_host",
	    .level = TLSA_LEVEL_MAY,
	    .as = INS,
	    MAYV },
};

static uint8_t d32[32], d64[64];
static const struct tlsa_record rs_usable[] = { { 3, 1, 1, d32, 32 } };
static const struct tlsa_record rs_unusable[] = { { 1, 1, 1, d32, 32 },
	{ 0, 0, 1, d32, 32 } };
static const struct tlsa_record rs_mixed[] = { { 0, 0, 1, d32, 32 },
	{ 3, 1, 1, d32, 32 } };
static const struct tlsa_record rs_priv[] = { { 3, 1, 255, d32, 32 } };
static const struct tlsa_record rs_badlen[] = { { 3, 1, 1, d32, 31 },
	{ 2, 0, 2, d64, 63 } };
static const struct tlsa_record rs_agile[] = { { 3, 1, 1, d32, 32 },
	{ 3, 1, 2, d64, 64 } };

static void
set_recs(struct tlsa_tlsa_in *t, enum rs rs)
{
	switch (rs) {
	case RS_NONE:
		t->recs = NULL;
		t->n_recs = 0;
		return;
	case RS_USABLE:
		t->recs = rs_usable;
		t->n_recs = 1;
		return;
	case RS_UNUSABLE:
		t->recs = rs_unusable;
		t->n_recs = 2;
		return;
	case RS_MIXED:
		t->recs = rs_mixed;
		t->n_recs = 2;
		return;
	case RS_PRIV:
		t->recs = rs_priv;
		t->n_recs = 1;
		return;
	case RS_BADLEN:
		t->recs = rs_badlen;
		t->n_recs = 2;
		return;
	case RS_AGILE:
		t->recs = rs_agile;
		t->n_recs = 2;
		return;
	}
}

static void
build(const struct row *r, struct tlsa_dest_in *d, struct tlsa_host_in *h)
{
	*d = (struct tlsa_dest_in){ .level = r->level,
		.nexthop = r->nexthop ? r->nexthop : "example.com",
		.nexthop_literal = r->literal,
		.no_mx = r->no_mx,
		.port = 25,
		.mx = { r->mxa, r->mxs },
		.mx_null = r->mx_null,
		.mx_expanded = r->mx_expanded };
	*h = (struct tlsa_host_in){ .name = r->host ? r->host : MX,
		.preference = 10,
		.name_numeric = r->numeric,
		.addr = { r->aa, r->as },
		.expanded = r->expanded,
		.first_cname = r->first };
}

/* Bounded append for test strings (strcat is banned). */
static void
tt_cat(char *dst, const char *src)
{
	size_t a = strlen(dst), b = strlen(src);
	assert_true(a + b < 600);
	memcpy(dst + a, src, b + 1);
}

static void
run_row(void **state)
{
	const struct row *r = *state;
	struct tlsa_dest_in d;
	struct tlsa_host_in h;
	build(r, &d, &h);
	char asked[600] = "";
	const char *base = NULL;
	int more;
	while ((more = tlsa_policy_tlsa_next(&d, &h, &base)) == 1) {
		assert_true(h.n_tlsa <
		    (size_t)r->n_ans); /* asked for more than the row answers */
		if (asked[0] != '\0')
			tt_cat(asked, ",");
		tt_cat(asked, base);
		struct tlsa_tlsa_in *t = &h.tlsa[h.n_tlsa];
		*t = (struct tlsa_tlsa_in){ .base = base,
			.res = { r->ans[h.n_tlsa].a, r->ans[h.n_tlsa].s },
			.malformed = r->ans[h.n_tlsa].malformed };
		set_recs(t, r->ans[h.n_tlsa].rs);
		h.n_tlsa++;
	}
	assert_int_equal(more, 0);
	assert_int_equal(h.n_tlsa, (size_t)r->n_ans);
	if (r->bases != NULL)
		assert_string_equal(asked, r->bases);

	struct tlsa_verdict v;
	assert_int_equal(tlsa_policy_decide(&d, &h, NULL, &v), 0);
	char line[1024];
	assert_int_equal(tlsa_verdict_format(&v, line, sizeof(line)), 0);
	print_message("# %s\n", line);
	assert_string_equal(tlsa_verdict_kind_name(v.kind),
	    tlsa_verdict_kind_name(r->kind));
	assert_int_equal(v.log_as, r->log_as);
	assert_string_equal(v.status, r->status ? r->status : "");
	assert_string_equal(tlsa_failure_name(v.fclass),
	    tlsa_failure_name(r->fclass));
	if (r->kind == TLSA_VERDICT_DO_NOT_CONNECT) {
		assert_int_equal(v.scope, r->scope);
		assert_int_equal(v.permanent, r->permanent);
		assert_true(v.reason[0] != '\0');
		assert_non_null(strstr(line, "verdict=do-not-connect"));
		assert_int_equal(v.n_usable, 0);
	} else {
		assert_string_equal(v.reason, "");
	}
	if (r->kind == TLSA_VERDICT_DANE) {
		assert_int_equal(v.n_usable, r->n_usable);
		for (size_t i = 0; i < v.n_usable; i++)
			assert_true(v.usable[i].usage >= 2);
		uint8_t zero[32] = { 0 };
		assert_memory_not_equal(v.rrset_digest, zero, 32);
		/* C63: the SNI is the base domain and it is the primary reference id. */
		assert_true(v.n_refs >= 1);
		assert_string_equal(v.refs[0], v.base_domain);
	}
	if (r->base != NULL)
		assert_string_equal(v.base_domain, r->base);
	if (r->refs != NULL) {
		char refs[800] = "";
		for (size_t i = 0; i < v.n_refs; i++) {
			if (i > 0)
				tt_cat(refs, ",");
			tt_cat(refs, v.refs[i]);
		}
		assert_string_equal(refs, r->refs);
	}
	tlsa_verdict_release(&v);
}

/* --- protocol and API edges -------------------------------------------- */

static void
decide_before_lookups_is_incomplete(void **state)
{
	const struct row r = { .name = "x" };
	struct tlsa_dest_in d;
	struct tlsa_host_in h;
	build(&r, &d, &h);
	struct tlsa_verdict v;
	assert_int_equal(tlsa_policy_decide(&d, &h, NULL, &v),
	    TLSA_ERR_INCOMPLETE);
	/* Even on error the verdict never permits a connection. */
	assert_int_equal(v.kind, TLSA_VERDICT_DO_NOT_CONNECT);
	tlsa_verdict_release(&v);
}

static void
wrong_base_is_inval(void **state)
{
	const struct row r = { .name = "x" };
	struct tlsa_dest_in d;
	struct tlsa_host_in h;
	build(&r, &d, &h);
	h.n_tlsa = 1;
	h.tlsa[0] = (struct tlsa_tlsa_in){ .base = "evil.example",
		.res = { DATA, SEC },
		.recs = rs_usable,
		.n_recs = 1 };
	const char *b;
	assert_int_equal(tlsa_policy_tlsa_next(&d, &h, &b), TLSA_ERR_INVAL);
	struct tlsa_verdict v;
	assert_int_equal(tlsa_policy_decide(&d, &h, NULL, &v), TLSA_ERR_INVAL);
	assert_int_equal(v.kind, TLSA_VERDICT_DO_NOT_CONNECT);
	tlsa_verdict_release(&v);
}

static void
answer_after_final_is_inval(void **state)
{
	const struct row r = { .name = "x", .expanded = "mail.example.org" };
	struct tlsa_dest_in d;
	struct tlsa_host_in h;
	build(&r, &d, &h);
	h.n_tlsa = 2;
	h.tlsa[0] = (struct tlsa_tlsa_in){ .base = "mail.example.org",
		.res = { DATA, SEC },
		.recs = rs_usable,
		.n_recs = 1 };
	h.tlsa[1] = (struct tlsa_tlsa_in){ .base = MX,
		.res = { DATA, SEC },
		.recs = rs_usable,
		.n_recs = 1 };
	const char *b;
	assert_int_equal(tlsa_policy_tlsa_next(&d, &h, &b), TLSA_ERR_INVAL);
}

static void
bad_names_rejected(void **state)
{
	static const char *bad[] = {
		"", ".", "a..b", "exa mple.com", "ex\"ample.com",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct row r = { .name = "x", .host = bad[i] };
		struct tlsa_dest_in d;
		struct tlsa_host_in h;
		build(&r, &d, &h);
		struct tlsa_verdict v;
		assert_int_equal(tlsa_policy_decide(&d, &h, NULL, &v),
		    TLSA_ERR_NAME);
		assert_int_equal(v.kind, TLSA_VERDICT_DO_NOT_CONNECT);
		tlsa_verdict_release(&v);
	}
	/* A final dot and upper case are fine; the base is normalised. */
	const struct row r = { .name = "x", .host = "MX.Example.NET." };
	struct tlsa_dest_in d;
	struct tlsa_host_in h;
	build(&r, &d, &h);
	const char *b;
	assert_int_equal(tlsa_policy_tlsa_next(&d, &h, &b), 1);
	h.tlsa[0] = (struct tlsa_tlsa_in){ .base = b,
		.res = { DATA, SEC },
		.recs = rs_usable,
		.n_recs = 1 };
	h.n_tlsa = 1;
	struct tlsa_verdict v;
	assert_int_equal(tlsa_policy_decide(&d, &h, NULL, &v), 0);
	assert_string_equal(v.base_domain, MX);
	tlsa_verdict_release(&v);
}

static void
invalid_enums_rejected(void **state)
{
	const struct row r = { .name = "x" };
	struct tlsa_dest_in d;
	struct tlsa_host_in h;
	build(&r, &d, &h);
	d.level = (enum tlsa_level)42;
	struct tlsa_dest_verdict dv;
	assert_int_equal(tlsa_policy_destination(&d, &dv), TLSA_ERR_INVAL);
	build(&r, &d, &h);
	h.addr.dnssec = (enum tlsa_dnssec)9;
	const char *b;
	assert_int_equal(tlsa_policy_tlsa_next(&d, &h, &b), TLSA_ERR_INVAL);
}

static void
too_many_records_no_connect(void **state)
{
	static struct tlsa_record many[TLSA_RRSET_MAX + 1];
	for (size_t i = 0; i < TLSA_RRSET_MAX + 1; i++)
		many[i] = rs_usable[0];
	const struct row r = { .name = "x" };
	struct tlsa_dest_in d;
	struct tlsa_host_in h;
	build(&r, &d, &h);
	h.n_tlsa = 1;
	h.tlsa[0] = (struct tlsa_tlsa_in){ .base = MX,
		.res = { DATA, SEC },
		.recs = many,
		.n_recs = TLSA_RRSET_MAX + 1 };
	struct tlsa_verdict v;
	assert_int_equal(tlsa_policy_decide(&d, &h, NULL, &v), 0);
	assert_int_equal(v.kind, TLSA_VERDICT_DO_NOT_CONNECT);
	assert_int_equal(v.fclass, TLSA_FAIL_TLSA_INVALID);
	tlsa_verdict_release(&v);
}

static void
lookup_combine_rules(void **state)
{
	struct tlsa_lookup s = { DATA, SEC }, i = { DATA, INS },
	                   n = { NODATA, SEC }, b = { NODATA, BOG },
	                   e = { ERR, SEC };
	struct tlsa_lookup x = tlsa_lookup_combine(s, n);
	assert_int_equal(x.answer, DATA);
	assert_int_equal(x.dnssec, SEC);
	x = tlsa_lookup_combine(n, i);
	assert_int_equal(x.answer, DATA);
	assert_int_equal(x.dnssec, INS);
	x = tlsa_lookup_combine(s, b);
	assert_int_equal(x.dnssec, BOG);
	x = tlsa_lookup_combine(e, s);
	assert_int_equal(x.answer, ERR);
	x = tlsa_lookup_combine((struct tlsa_lookup){ NXD, SEC }, n);
	assert_int_equal(x.answer, NODATA);
}

static struct tlsa_verdict
dane_verdict(const char *host, const struct tlsa_record *recs, size_t n)
{
	const struct row r = { .name = "x", .host = host };
	struct tlsa_dest_in d;
	struct tlsa_host_in h;
	build(&r, &d, &h);
	h.n_tlsa = 1;
	h.tlsa[0] = (struct tlsa_tlsa_in){ .base = host,
		.res = { DATA, SEC },
		.recs = recs,
		.n_recs = n };
	struct tlsa_verdict v;
	assert_int_equal(tlsa_policy_decide(&d, &h, NULL, &v), 0);
	assert_int_equal(v.kind, TLSA_VERDICT_DANE);
	return v;
}

static void
verdict_copy_and_cache_key(void **state)
{
	struct tlsa_verdict a = dane_verdict(MX, rs_usable, 1);
	struct tlsa_verdict b;
	assert_int_equal(tlsa_verdict_copy(&b, &a), 0);
	assert_ptr_not_equal(a.usable, b.usable);
	assert_memory_equal(a.usable[0].data, b.usable[0].data, 32);
	uint8_t ka[32], kb[32], kc[32];
	assert_int_equal(tlsa_verdict_cache_key(&a, TLSA_CHANNEL_TLS, ka), 0);
	assert_int_equal(tlsa_verdict_cache_key(&b, TLSA_CHANNEL_TLS, kb), 0);
	assert_memory_equal(ka, kb, 32);
	/* Another base domain or another RRset gives another key. */
	struct tlsa_verdict c = dane_verdict("mx2.example.net", rs_usable, 1);
	assert_int_equal(tlsa_verdict_cache_key(&c, TLSA_CHANNEL_TLS, kc), 0);
	assert_memory_not_equal(ka, kc, 32);
	tlsa_verdict_release(&c);
	c = dane_verdict(MX, rs_agile, 2);
	assert_int_equal(tlsa_verdict_cache_key(&c, TLSA_CHANNEL_TLS, kc), 0);
	assert_memory_not_equal(ka, kc, 32);
	tlsa_verdict_release(&c);
	tlsa_verdict_release(&a);
	tlsa_verdict_release(&b);
	tlsa_verdict_release(NULL);
}

static struct tlsa_verdict
may_verdict(const struct row *r)
{
	struct tlsa_dest_in d;
	struct tlsa_host_in h;
	build(r, &d, &h);
	struct tlsa_verdict v;
	assert_int_equal(tlsa_policy_decide(&d, &h, NULL, &v), 0);
	assert_int_equal(v.kind, TLSA_VERDICT_MAY);
	return v;
}

/* Two `may` verdicts for the same MX host look alike (no base domain, no
 * references, no records): only the level and the channel tell a cleartext
 * connection made for one destination from what another one needs. */
static void
cache_key_separates_levels_and_channels(void **state)
{
	/* Level may: no TLSA lookups. Level dane, insecure address: no TLSA
	 * lookups either (C37); both decide MAY. */
	const struct row may_row = { .name = "may", .level = TLSA_LEVEL_MAY };
	const struct row dane_row = { .name = "dane",
		.level = TLSA_LEVEL_DANE,
		.as = INS };
	struct tlsa_verdict vm = may_verdict(&may_row);
	struct tlsa_verdict vd = may_verdict(&dane_row);
	uint8_t k1[32], k2[32];

	assert_int_equal(tlsa_verdict_cache_key(&vm, TLSA_CHANNEL_TLS, k1), 0);
	assert_int_equal(tlsa_verdict_cache_key(&vd, TLSA_CHANNEL_TLS, k2), 0);
	assert_memory_not_equal(k1, k2, 32);

	/* One verdict, three channels: three keys. */
	const enum tlsa_channel ch[] = { TLSA_CHANNEL_TLS,
		TLSA_CHANNEL_CLEARTEXT, TLSA_CHANNEL_CLEARTEXT_POLICY };
	uint8_t k[3][32];
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(tlsa_verdict_cache_key(&vm, ch[i], k[i]), 0);
	assert_memory_not_equal(k[0], k[1], 32);
	assert_memory_not_equal(k[0], k[2], 32);
	assert_memory_not_equal(k[1], k[2], 32);

	/* The same facts give the same key (a cache hit stays possible). */
	struct tlsa_verdict vm2 = may_verdict(&may_row);
	assert_int_equal(tlsa_verdict_cache_key(&vm2,
	                     TLSA_CHANNEL_CLEARTEXT_POLICY, k1),
	    0);
	assert_memory_equal(k1, k[2], 32);

	assert_int_equal(tlsa_verdict_cache_key(&vm, (enum tlsa_channel)42, k1),
	    TLSA_ERR_INVAL);
	tlsa_verdict_release(&vm);
	tlsa_verdict_release(&vm2);
	tlsa_verdict_release(&vd);
}

static void
verdict_format_escapes_and_truncates(void **state)
{
	struct tlsa_verdict v;
	memset(&v, 0, sizeof(v));
	v.kind = TLSA_VERDICT_DO_NOT_CONNECT;
	memcpy(v.status, "4.7.5", 6);
	v.fclass = TLSA_FAIL_DNSSEC_INVALID;
	memcpy(v.reason, "bad \"x\"\n", 9);
	char line[512];
	assert_int_equal(tlsa_verdict_format(&v, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "why=\"bad \\\"x\\\"\\x0a\""));
	assert_non_null(strstr(line, "dsn=4.7.5 class=dnssec-invalid"));
	assert_int_equal(tlsa_verdict_format(&v, line, 20), TLSA_ERR_SPACE);
	assert_int_equal(strlen(line), 19);
}

static void
destination_verdict_direct(void **state)
{
	struct tlsa_dest_in d = { .level = TLSA_LEVEL_DANE,
		.nexthop = "example.com",
		.port = 25,
		.mx = { DATA, INS } };
	struct tlsa_dest_verdict dv;
	assert_int_equal(tlsa_policy_destination(&d, &dv), 0);
	assert_int_equal(dv.action, TLSA_DEST_USE_MX);
	assert_false(dv.mx_secure);
	d.mx = (struct tlsa_lookup){ NODATA, SEC };
	assert_int_equal(tlsa_policy_destination(&d, &dv), 0);
	assert_int_equal(dv.action, TLSA_DEST_IMPLICIT);
	assert_true(dv.mx_secure);
	assert_string_equal(tlsa_dest_action_name(dv.action), "implicit-mx");
}

int
main(void)
{
	static const struct CMUnitTest extra[] = {
		cmocka_unit_test(decide_before_lookups_is_incomplete),
		cmocka_unit_test(wrong_base_is_inval),
		cmocka_unit_test(answer_after_final_is_inval),
		cmocka_unit_test(bad_names_rejected),
		cmocka_unit_test(invalid_enums_rejected),
		cmocka_unit_test(too_many_records_no_connect),
		cmocka_unit_test(lookup_combine_rules),
		cmocka_unit_test(verdict_copy_and_cache_key),
		cmocka_unit_test(cache_key_separates_levels_and_channels),
		cmocka_unit_test(verdict_format_escapes_and_truncates),
		cmocka_unit_test(destination_verdict_direct),
	};
	for (size_t i = 0; i < sizeof(d32); i++)
		d32[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(d64); i++)
		d64[i] = (uint8_t)(i * 5 + 3);
	size_t n = sizeof(rows) / sizeof(rows[0]);
	size_t ne = sizeof(extra) / sizeof(extra[0]);
	struct CMUnitTest *t = calloc(n + ne, sizeof(*t));
	if (t == NULL)
		return 1;
	for (size_t i = 0; i < n; i++) {
		t[i] = (struct CMUnitTest)cmocka_unit_test_prestate(run_row,
		    (void *)&rows[i]);
		t[i].name = rows[i].name;
	}
	for (size_t i = 0; i < ne; i++)
		t[n + i] = extra[i];
	int rc = _cmocka_run_group_tests("tlsa_policy", t, n + ne, NULL, NULL);
	free(t);
	return rc;
}
