/*
 * OpenSSL glue end to end: verdicts from tlsa_policy_decide(), client SSL
 * from tlsa_ssl_new(), an in-process server over a BIO pair, certificates
 * from tests/data/tlsa/gen-certs.sh, verification time pinned, and the
 * outcome read with tlsa_ssl_result(). One TAP case per table row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tlsa_test_util.h"

enum which {
	W_LEAF,
	W_INT,
	W_ROOT
};
struct rspec {
	int u, s, m;
	enum which w;
	bool corrupt;
};
struct sslcase {
	const char *name;
	const char *server; /* leaf, expired, other, wild, partial */
	bool send_root;     /* server chain includes the root */
	enum tlsa_level level;
	bool mx_secure;
	const char *nexthop;  /* NULL: example.com */
	const char *expanded; /* CNAME-expanded MX host name, NULL: none */
	const char
	    *ca; /* CA file for the verify context, NULL: root2 (unrelated) */
	size_t n;
	struct rspec r[4];
	/* expectations */
	enum tlsa_verdict_kind kind;
	bool ok;
	enum tlsa_auth auth;
	enum tlsa_trust trust;
	enum tlsa_failure fclass;
	int depth; /* -2: do not check */
	const char *
	    sni; /* expected SNI seen by the server, "" none, NULL: do not check */
	const char *peername; /* NULL: do not check */
};

#define D TLSA_LEVEL_DANE
#define R(u, s, m, w)                                                          \
	{                                                                      \
		u, s, m, w, false                                              \
	}
#define BAD(u, s, m, w)                                                        \
	{                                                                      \
		u, s, m, w, true                                               \
	}
#define OKR(a, t, dep) TLSA_VERDICT_DANE, true, a, t, TLSA_FAIL_NONE, dep
#define FAILR(f)                                                               \
	TLSA_VERDICT_DANE, false, TLSA_AUTH_NONE, TLSA_TRUST_NONE, f, -1
#define V TLSA_TRUST_VERIFIED
#define T TLSA_TRUST_TRUSTED
#define U TLSA_TRUST_UNTRUSTED

static const struct sslcase cases[] = {
	/* DANE-EE(3), RFC 7672 3.1.1 */
	{ "ee_3_1_1_match_rfc7672_3.1.1", "leaf", false, D, true, NULL, NULL,
	    NULL, 1, { R(3, 1, 1, W_LEAF) }, OKR(TLSA_AUTH_DANE_EE, V, 0),
	    "mx.example.net", NULL },
	{ "ee_3_1_1_mismatch_rfc7672_3.2", "leaf", false, D, true, NULL, NULL,
	    NULL, 1, { BAD(3, 1, 1, W_LEAF) },
	    FAILR(TLSA_FAIL_CERT_NOT_TRUSTED), "mx.example.net", NULL },
	{ "ee_3_0_1_match_rfc7672_3.1.1", "leaf", false, D, true, NULL, NULL,
	    NULL, 1, { R(3, 0, 1, W_LEAF) }, OKR(TLSA_AUTH_DANE_EE, V, 0), NULL,
	    NULL },
	{ "ee_3_0_1_mismatch_rfc7672_3.2", "leaf", false, D, true, NULL, NULL,
	    NULL, 1, { BAD(3, 0, 1, W_LEAF) },
	    FAILR(TLSA_FAIL_CERT_NOT_TRUSTED), NULL, NULL },
	{ "ee_3_1_2_match_rfc7672_3.1.1", "leaf", false, D, true, NULL, NULL,
	    NULL, 1, { R(3, 1, 2, W_LEAF) }, OKR(TLSA_AUTH_DANE_EE, V, 0), NULL,
	    NULL },
	{ "ee_3_1_2_mismatch_rfc7672_3.2", "leaf", false, D, true, NULL, NULL,
	    NULL, 1, { BAD(3, 1, 2, W_LEAF) },
	    FAILR(TLSA_FAIL_CERT_NOT_TRUSTED), NULL, NULL },
	{ "ee_3_0_0_match_rfc7672_3.1.1", "leaf", false, D, true, NULL, NULL,
	    NULL, 1, { R(3, 0, 0, W_LEAF) }, OKR(TLSA_AUTH_DANE_EE, V, 0), NULL,
	    NULL },
	{ "ee_3_0_0_mismatch_rfc7672_3.2", "leaf", false, D, true, NULL, NULL,
	    NULL, 1, { R(3, 0, 0, W_INT) }, FAILR(TLSA_FAIL_CERT_NOT_TRUSTED),
	    NULL, NULL },
	{ "ee_expired_leaf_delivered_C47_rfc7672_3.1.1", "expired", false, D,
	    true, NULL, NULL, NULL, 1, { R(3, 1, 1, W_LEAF) },
	    OKR(TLSA_AUTH_DANE_EE, V, 0), NULL, NULL },
	{ "ee_no_name_checks_C52_rfc7672_3.2.1", "other", false, D, true, NULL,
	    NULL, NULL, 1, { R(3, 1, 1, W_LEAF) }, OKR(TLSA_AUTH_DANE_EE, V, 0),
	    "mx.example.net", NULL },
	{ "ee_insecure_mx_logged_trusted_C33_rfc7672_2.2.1", "leaf", false, D,
	    false, NULL, NULL, NULL, 1, { R(3, 1, 1, W_LEAF) },
	    OKR(TLSA_AUTH_DANE_EE, T, 0), "mx.example.net", NULL },
	{ "ee_sni_is_expanded_base_C63_rfc7672_8.1", "leaf", false, D, true,
	    NULL, "mx-real.example.net", NULL, 1, { R(3, 1, 1, W_LEAF) },
	    OKR(TLSA_AUTH_DANE_EE, V, 0), "mx-real.example.net", NULL },
	/* DANE-TA(2), RFC 7672 3.1.2 / 3.2.2 */
	{ "ta_2_0_1_int_in_chain_rfc7672_3.1.2", "leaf", false, D, true, NULL,
	    NULL, NULL, 1, { R(2, 0, 1, W_INT) }, OKR(TLSA_AUTH_DANE_TA, V, 1),
	    "mx.example.net", "mx.example.net" },
	{ "ta_2_1_1_int_in_chain_rfc7672_3.1.2", "leaf", false, D, true, NULL,
	    NULL, NULL, 1, { R(2, 1, 1, W_INT) }, OKR(TLSA_AUTH_DANE_TA, V, 1),
	    NULL, "mx.example.net" },
	{ "ta_2_0_1_root_in_chain_rfc7672_3.1.2", "leaf", true, D, true, NULL,
	    NULL, NULL, 1, { R(2, 0, 1, W_ROOT) }, OKR(TLSA_AUTH_DANE_TA, V, 2),
	    NULL, NULL },
	{ "ta_2_0_1_root_absent_refused_rfc7672_3.1.2", "leaf", false, D, true,
	    NULL, NULL, NULL, 1, { R(2, 0, 1, W_ROOT) },
	    FAILR(TLSA_FAIL_CERT_NOT_TRUSTED), NULL, NULL },
	{ "ta_2_0_0_root_absent_from_chain_I08_rfc7671_5.2.2", "leaf", false, D,
	    true, NULL, NULL, NULL, 1, { R(2, 0, 0, W_ROOT) },
	    OKR(TLSA_AUTH_DANE_TA, V, 2), NULL, NULL },
	{ "ta_2_1_0_root_absent_from_chain_I09_rfc7671_5.2.3", "leaf", false, D,
	    true, NULL, NULL, NULL, 1, { R(2, 1, 0, W_ROOT) },
	    OKR(TLSA_AUTH_DANE_TA, V, 1), NULL, NULL },
	{ "ta_name_mismatch_refused_C53_rfc7672_3.2.2", "other", false, D, true,
	    NULL, NULL, NULL, 1, { R(2, 0, 1, W_INT) },
	    FAILR(TLSA_FAIL_CERT_HOST_MISMATCH), NULL, NULL },
	{ "ta_nexthop_2nd_reference_id_C54_rfc7672_3.2.2", "other", false, D,
	    true, "other.example.org", NULL, NULL, 1, { R(2, 0, 1, W_INT) },
	    OKR(TLSA_AUTH_DANE_TA, V, 1), "mx.example.net",
	    "other.example.org" },
	{ "ta_insecure_mx_only_mx_name_C55_rfc7672_3.2.2", "other", false, D,
	    false, "other.example.org", NULL, NULL, 1, { R(2, 0, 1, W_INT) },
	    FAILR(TLSA_FAIL_CERT_HOST_MISMATCH), NULL, NULL },
	{ "ta_insecure_mx_trusted_not_verified_C33_rfc7672_2.2.1", "leaf",
	    false, D, false, NULL, NULL, NULL, 1, { R(2, 1, 1, W_INT) },
	    OKR(TLSA_AUTH_DANE_TA, T, 1), NULL, "mx.example.net" },
	{ "ta_wildcard_first_label_C58_rfc7672_3.2.3", "wild", false, D, true,
	    NULL, NULL, NULL, 1, { R(2, 0, 1, W_INT) },
	    OKR(TLSA_AUTH_DANE_TA, V, 1), NULL, NULL },
	{ "ta_partial_label_wildcard_refused_C58_rfc7672_3.2.3", "partial",
	    false, D, true, NULL, NULL, NULL, 1, { R(2, 0, 1, W_INT) },
	    FAILR(TLSA_FAIL_CERT_HOST_MISMATCH), NULL, NULL },
	{ "ta_expired_leaf_refused_rfc7672_3.1.2", "expired", false, D, true,
	    NULL, NULL, NULL, 1, { R(2, 0, 1, W_INT) },
	    FAILR(TLSA_FAIL_CERT_EXPIRED), NULL, NULL },
	/* Trusted CA, but no TLSA record matches: refused (C67, I24). */
	{ "ca_trusted_no_tlsa_match_refused_C67_rfc7672_9.1", "leaf", true, D,
	    true, NULL, NULL, "root.pem", 1, { BAD(3, 1, 1, W_LEAF) },
	    FAILR(TLSA_FAIL_CERT_NOT_TRUSTED), NULL, NULL },
	{ "ca_trusted_ta_digest_absent_refused_C67_rfc7672_9.1", "leaf", false,
	    D, true, NULL, NULL, "root.pem", 1, { R(2, 1, 1, W_ROOT) },
	    FAILR(TLSA_FAIL_CERT_NOT_TRUSTED), NULL, NULL },
	/* Usages 0/1 are ignored (C49). */
	{ "pkix_usages_only_encrypt_C49_rfc7672_3.1.3", "leaf", false, D, true,
	    NULL, NULL, "root.pem", 2,
	    { R(0, 0, 1, W_INT), R(1, 1, 1, W_LEAF) }, TLSA_VERDICT_ENCRYPT,
	    true, TLSA_AUTH_ENCRYPT, U, TLSA_FAIL_NONE, -1, "mx.example.net",
	    NULL },
	{ "pkix_usage_match_not_used_C49_rfc7672_3.1.3", "leaf", false, D, true,
	    NULL, NULL, "root.pem", 2,
	    { R(1, 1, 1, W_LEAF), BAD(3, 1, 1, W_LEAF) },
	    FAILR(TLSA_FAIL_CERT_NOT_TRUSTED), NULL, NULL },
	/* Digest agility (RFC 7671 9, C61): SHA2-512 wins over SHA2-256. */
	{ "agility_sha512_used_C61_rfc7671_9", "leaf", false, D, true, NULL,
	    NULL, NULL, 2, { BAD(3, 1, 1, W_LEAF), R(3, 1, 2, W_LEAF) },
	    OKR(TLSA_AUTH_DANE_EE, V, 0), NULL, NULL },
	{ "agility_sha256_superseded_C61_rfc7671_9", "leaf", false, D, true,
	    NULL, NULL, NULL, 2, { R(3, 1, 1, W_LEAF), BAD(3, 1, 2, W_LEAF) },
	    FAILR(TLSA_FAIL_CERT_NOT_TRUSTED), NULL, NULL },
	{ "agility_per_usage_selector_C61_rfc7671_9", "leaf", false, D, true,
	    NULL, NULL, NULL, 2, { R(3, 0, 1, W_LEAF), BAD(3, 1, 2, W_LEAF) },
	    OKR(TLSA_AUTH_DANE_EE, V, 0), NULL, NULL },
	/* Levels without DANE. */
	{ "level_may_opportunistic_C22_rfc7672_2.2", "leaf", false,
	    TLSA_LEVEL_MAY, true, NULL, NULL, NULL, 0, { { 0 } },
	    TLSA_VERDICT_MAY, true, TLSA_AUTH_MAY, U, TLSA_FAIL_NONE, -1, "",
	    NULL },
	{ "level_encrypt_unauthenticated", "expired", false, TLSA_LEVEL_ENCRYPT,
	    true, NULL, NULL, NULL, 0, { { 0 } }, TLSA_VERDICT_ENCRYPT, true,
	    TLSA_AUTH_ENCRYPT, U, TLSA_FAIL_NONE, -1, "", NULL },
	{ "level_verify_pkix_mx_name", "leaf", false, TLSA_LEVEL_VERIFY, true,
	    NULL, NULL, "root.pem", 0, { { 0 } }, TLSA_VERDICT_VERIFY, true,
	    TLSA_AUTH_VERIFIED, V, TLSA_FAIL_NONE, -1, "mx.example.net",
	    "mx.example.net" },
	{ "level_verify_insecure_mx_trusted_C33", "leaf", false,
	    TLSA_LEVEL_VERIFY, false, NULL, NULL, "root.pem", 0, { { 0 } },
	    TLSA_VERDICT_VERIFY, true, TLSA_AUTH_VERIFIED, T, TLSA_FAIL_NONE,
	    -1, NULL, NULL },
	{ "level_verify_host_mismatch", "other", false, TLSA_LEVEL_VERIFY, true,
	    NULL, NULL, "root.pem", 0, { { 0 } }, TLSA_VERDICT_VERIFY, false,
	    TLSA_AUTH_NONE, TLSA_TRUST_NONE, TLSA_FAIL_CERT_HOST_MISMATCH, -1,
	    NULL, NULL },
	{ "level_verify_untrusted_ca", "leaf", false, TLSA_LEVEL_VERIFY, true,
	    NULL, NULL, NULL, 0, { { 0 } }, TLSA_VERDICT_VERIFY, false,
	    TLSA_AUTH_NONE, TLSA_TRUST_NONE, TLSA_FAIL_CERT_NOT_TRUSTED, -1,
	    NULL, NULL },
	{ "level_verify_expired", "expired", false, TLSA_LEVEL_VERIFY, true,
	    NULL, NULL, "root.pem", 0, { { 0 } }, TLSA_VERDICT_VERIFY, false,
	    TLSA_AUTH_NONE, TLSA_TRUST_NONE, TLSA_FAIL_CERT_EXPIRED, -1, NULL,
	    NULL },
};

static char g_sni[256];

static int
sni_cb(SSL *s, int *al, void *arg)
{
	const char *n = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
	snprintf(g_sni, sizeof(g_sni), "%s", n ? n : "");
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *
server_ctx(const char *leaf, bool send_root)
{
	char p[4096], rel[64];
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	assert_non_null(c);
	snprintf(rel, sizeof(rel), "%s.pem", leaf);
	tt_path(p, sizeof(p), rel);
	assert_int_equal(SSL_CTX_use_certificate_file(c, p, SSL_FILETYPE_PEM),
	    1);
	snprintf(rel, sizeof(rel), "%s.key", leaf);
	tt_path(p, sizeof(p), rel);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(c, p, SSL_FILETYPE_PEM),
	    1);
	X509 *in = tt_cert("int");
	assert_int_equal(SSL_CTX_add0_chain_cert(c, in), 1);
	if (send_root) {
		X509 *r = tt_cert("root");
		assert_int_equal(SSL_CTX_add0_chain_cert(c, r), 1);
	}
	SSL_CTX_set_tlsext_servername_callback(c, sni_cb);
	return c;
}

/* Drive both ends until done; returns the client's handshake success. */
static bool
handshake(SSL *cl, SSL *sv)
{
	BIO *cb = NULL, *sb = NULL;
	assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
	SSL_set_bio(cl, cb, cb);
	SSL_set_bio(sv, sb, sb);
	SSL_set_accept_state(sv);
	int crc = 0, src = 0;
	for (int i = 0; i < 100; i++) {
		if (crc != 1) {
			crc = SSL_do_handshake(cl);
			if (crc <= 0) {
				int e = SSL_get_error(cl, crc);
				if (e != SSL_ERROR_WANT_READ &&
				    e != SSL_ERROR_WANT_WRITE)
					break;
			}
		}
		if (src != 1) {
			src = SSL_do_handshake(sv);
			if (src <= 0) {
				int e = SSL_get_error(sv, src);
				if (e != SSL_ERROR_WANT_READ &&
				    e != SSL_ERROR_WANT_WRITE)
					break;
			}
		}
		if (crc == 1 && src == 1)
			break;
	}
	return crc == 1;
}

static void
run_case(void **state)
{
	const struct sslcase *c = *state;
	X509 *certs[3] = { tt_cert("leaf"), tt_cert("int"), tt_cert("root") };
	/* W_LEAF refers to the certificate the server presents. */
	X509_free(certs[0]);
	certs[0] = tt_cert(c->server);

	uint8_t data[4][2048];
	struct tlsa_record recs[4];
	for (size_t i = 0; i < c->n; i++) {
		const struct rspec *r = &c->r[i];
		size_t n =
		    tt_assoc(certs[r->w], r->s, r->m, data[i], sizeof(data[i]));
		if (r->corrupt)
			data[i][n - 1] ^= 0x01;
		recs[i] = (struct tlsa_record){ (uint8_t)r->u, (uint8_t)r->s,
			(uint8_t)r->m, data[i], n };
	}
	struct tlsa_dest_in d = { .level = c->level,
		.nexthop = c->nexthop ? c->nexthop : "example.com",
		.port = 25,
		.mx = { TLSA_ANSWER_DATA,
		    c->mx_secure ? TLSA_DNSSEC_SECURE
		                 : TLSA_DNSSEC_INSECURE } };
	struct tlsa_host_in h = { .name = "mx.example.net",
		.preference = 10,
		.addr = { TLSA_ANSWER_DATA, TLSA_DNSSEC_SECURE },
		.expanded = c->expanded,
		.first_cname = TLSA_DNSSEC_SECURE };
	const char *base = NULL;
	int more = tlsa_policy_tlsa_next(&d, &h, &base);
	if (c->level == TLSA_LEVEL_DANE) {
		assert_int_equal(more, 1);
		assert_string_equal(base,
		    c->expanded ? c->expanded : "mx.example.net");
		h.tlsa[0] = (struct tlsa_tlsa_in){ .base = base,
			.res = { TLSA_ANSWER_DATA, TLSA_DNSSEC_SECURE },
			.recs = recs,
			.n_recs = c->n };
		h.n_tlsa = 1;
		assert_int_equal(tlsa_policy_tlsa_next(&d, &h, &base), 0);
	} else {
		assert_int_equal(more, 0);
	}
	struct tlsa_verdict v;
	assert_int_equal(tlsa_policy_decide(&d, &h, NULL, &v), 0);
	assert_int_equal(v.kind, c->kind);

	char ca[4096];
	tt_path(ca, sizeof(ca), c->ca ? c->ca : "root2.pem");
	struct tlsa_ctx_config cfg = { .ca_file = ca,
		.verify_time = TLSA_TEST_TIME };
	struct tlsa_ctx *ctx = NULL;
	assert_int_equal(tlsa_ctx_new(&cfg, &ctx), 0);
	SSL *cl = NULL;
	assert_int_equal(tlsa_ssl_new(ctx, &v, &cl), 0);
	SSL_CTX *sctx = server_ctx(c->server, c->send_root);
	SSL *sv = SSL_new(sctx);
	assert_non_null(sv);
	g_sni[0] = '\0';
	bool hs = handshake(cl, sv);

	struct tlsa_result res;
	assert_int_equal(tlsa_ssl_result(cl, &v, hs, &res), 0);
	char line[1024];
	assert_int_equal(tlsa_result_format(&res, line, sizeof(line)), 0);
	print_message("# %s\n", line);
	assert_int_equal(res.ok, c->ok);
	assert_int_equal(hs, c->ok); /* I24: failures abort the handshake */
	assert_int_equal(res.auth, c->auth);
	assert_int_equal(res.trust, c->trust);
	assert_int_equal(res.fclass, c->fclass);
	if (c->ok) {
		assert_string_equal(res.status, "");
		assert_true(res.have_spki);
		uint8_t spki[32];
		assert_int_equal(tt_assoc(certs[0], 1, 1, spki, sizeof(spki)),
		    32);
		assert_memory_equal(spki, res.spki_sha256, 32);
		assert_true(strstr(line, "tls=") != NULL &&
		    strstr(line, "protocol=TLSv1.3") != NULL);
	} else {
		assert_string_equal(res.status, "4.7.5");
		assert_true(strstr(line, "class=") != NULL);
		assert_true(res.why[0] != '\0');
	}
	if (c->depth != -2)
		assert_int_equal(res.depth, c->depth);
	if (res.auth == TLSA_AUTH_DANE_EE || res.auth == TLSA_AUTH_DANE_TA) {
		/* The matched record is the one DANE record that is not corrupt. */
		const struct rspec *m = NULL;
		for (size_t i = 0; i < c->n; i++)
			if (c->r[i].u >= 2 && !c->r[i].corrupt)
				m = &c->r[i];
		assert_non_null(m);
		char want[TLSA_MATCH_TEXT_MAX + 1];
		/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): cmocka's failing assertion longjmps out, the analyzer cannot see it */
		snprintf(want, sizeof(want), "%d %d %d ", m->u, m->s, m->m);
		assert_int_equal(strncmp(res.matched, want, strlen(want)), 0);
		assert_true(strstr(line, "tlsa=\"") != NULL);
	}
	if (c->sni != NULL)
		assert_string_equal(g_sni, c->sni);
	if (c->peername != NULL)
		assert_string_equal(res.peername, c->peername);

	SSL_free(sv);
	SSL_CTX_free(sctx);
	SSL_free(cl);
	tlsa_ctx_free(ctx);
	tlsa_verdict_release(&v);
	for (int i = 0; i < 3; i++)
		X509_free(certs[i]);
}

/* DO_NOT_CONNECT never yields an SSL (C68). */
static void
dnc_refused(void **state)
{
	struct tlsa_ctx_config cfg = { .verify_time = TLSA_TEST_TIME };
	struct tlsa_ctx *ctx = NULL;
	char ca[4096];
	tt_path(ca, sizeof(ca), "root2.pem");
	cfg.ca_file = ca;
	assert_int_equal(tlsa_ctx_new(&cfg, &ctx), 0);
	struct tlsa_verdict v;
	memset(&v, 0, sizeof(v));
	v.kind = TLSA_VERDICT_DO_NOT_CONNECT;
	SSL *s = (SSL *)&v;
	assert_int_equal(tlsa_ssl_new(ctx, &v, &s), TLSA_ERR_INVAL);
	assert_null(s);
	v.kind = TLSA_VERDICT_DANE; /* DANE without records is refused too */
	assert_int_equal(tlsa_ssl_new(ctx, &v, &s), TLSA_ERR_INVAL);
	tlsa_ctx_free(ctx);
}

/* A handshake that never happened (no server): tls=none, 4.7.5. */
static void
no_handshake_result(void **state)
{
	struct tlsa_ctx_config cfg = { .verify_time = TLSA_TEST_TIME };
	char ca[4096];
	tt_path(ca, sizeof(ca), "root2.pem");
	cfg.ca_file = ca;
	struct tlsa_ctx *ctx = NULL;
	assert_int_equal(tlsa_ctx_new(&cfg, &ctx), 0);
	struct tlsa_verdict v;
	memset(&v, 0, sizeof(v));
	v.kind = TLSA_VERDICT_MAY;
	SSL *s = NULL;
	assert_int_equal(tlsa_ssl_new(ctx, &v, &s), 0);
	struct tlsa_result r;
	assert_int_equal(tlsa_ssl_result(s, &v, false, &r), 0);
	assert_false(r.ok);
	assert_int_equal(r.auth, TLSA_AUTH_NONE);
	assert_int_equal(r.fclass, TLSA_FAIL_VALIDATION);
	assert_string_equal(r.status, "4.7.5");
	char line[512];
	assert_int_equal(tlsa_result_format(&r, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "tls=none"));
	assert_int_equal(tlsa_result_format(&r, line, 10), TLSA_ERR_SPACE);
	assert_int_equal(strlen(line), 9);
	SSL_free(s);
	tlsa_ctx_free(ctx);
}

/* Digest order reaches OpenSSL: with only sha256 configured, a 3 1 2
 * record is unusable and the verdict falls back to encrypt. */
static void
digest_config_sha256_only(void **state)
{
	struct tlsa_digests ds;
	assert_int_equal(tlsa_digests_parse("sha256", 6, &ds), 0);
	struct tlsa_ctx_config cfg = { .digests = &ds,
		.verify_time = TLSA_TEST_TIME };
	char ca[4096];
	tt_path(ca, sizeof(ca), "root2.pem");
	cfg.ca_file = ca;
	struct tlsa_ctx *ctx = NULL;
	assert_int_equal(tlsa_ctx_new(&cfg, &ctx), 0);
	X509 *leaf = tt_cert("leaf");
	uint8_t d512[64];
	assert_int_equal(tt_assoc(leaf, 1, 2, d512, sizeof(d512)), 64);
	struct tlsa_record r = { 3, 1, 2, d512, 64 };
	struct tlsa_dest_in d = { .level = TLSA_LEVEL_DANE,
		.nexthop = "example.com",
		.port = 25,
		.mx = { TLSA_ANSWER_DATA, TLSA_DNSSEC_SECURE } };
	struct tlsa_host_in h = { .name = "mx.example.net",
		.addr = { TLSA_ANSWER_DATA, TLSA_DNSSEC_SECURE },
		.n_tlsa = 1 };
	h.tlsa[0] = (struct tlsa_tlsa_in){ "mx.example.net",
		{ TLSA_ANSWER_DATA, TLSA_DNSSEC_SECURE }, &r, 1, false };
	struct tlsa_verdict v;
	assert_int_equal(tlsa_policy_decide(&d, &h, &ds, &v), 0);
	assert_int_equal(v.kind, TLSA_VERDICT_ENCRYPT);
	tlsa_verdict_release(&v);
	X509_free(leaf);
	tlsa_ctx_free(ctx);
}

/* One PKIX-after-the-fact check (MTA-STS testing mode, RFC 8461 5): an
 * unauthenticated (MAY) session to `server` completes whatever its
 * certificate, then the chain it sent is judged against ca for host. */
static void
pkix_case(const char *server, const char *ca_name, const char *host,
    long want_err, enum tlsa_failure want_f)
{
	char ca[4096];
	tt_path(ca, sizeof(ca), ca_name);
	struct tlsa_ctx_config cfg = { .ca_file = ca,
		.verify_time = TLSA_TEST_TIME };
	struct tlsa_ctx *ctx = NULL;
	assert_int_equal(tlsa_ctx_new(&cfg, &ctx), 0);
	struct tlsa_verdict v;
	memset(&v, 0, sizeof(v));
	v.kind = TLSA_VERDICT_MAY;
	SSL *cl = NULL;
	assert_int_equal(tlsa_ssl_new(ctx, &v, &cl), 0);
	SSL_CTX *sctx = server_ctx(server, false);
	SSL *sv = SSL_new(sctx);
	assert_non_null(sv);
	assert_true(handshake(cl, sv)); /* MAY verifies nothing */
	long err = -1;
	enum tlsa_failure f = TLSA_FAIL_VALIDATION;
	assert_int_equal(tlsa_ssl_pkix_check(ctx, cl, host, &err, &f), 0);
	print_message("# %s via %s for %s: %s\n", server, ca_name, host,
	    X509_verify_cert_error_string(err));
	assert_int_equal(err, want_err);
	assert_int_equal(f, want_f);
	/* The session is untouched: still the MAY session it was. */
	struct tlsa_result res;
	assert_int_equal(tlsa_ssl_result(cl, &v, true, &res), 0);
	assert_true(res.ok);
	assert_int_equal(res.auth, TLSA_AUTH_MAY);
	SSL_free(cl);
	SSL_free(sv);
	SSL_CTX_free(sctx);
	tlsa_ctx_free(ctx);
}

static void
pkix_check_valid(void **state)
{
	(void)state;
	pkix_case("leaf", "root.pem", "mx.example.net", X509_V_OK,
	    TLSA_FAIL_NONE);
	/* RFC 6125 6.4.3: a whole-label wildcard matches one label. */
	pkix_case("wild", "root.pem", "mx.example.net", X509_V_OK,
	    TLSA_FAIL_NONE);
}

static void
pkix_check_failures(void **state)
{
	(void)state;
	pkix_case("leaf", "root2.pem", "mx.example.net",
	    X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
	    TLSA_FAIL_CERT_NOT_TRUSTED);
	pkix_case("leaf", "root.pem", "mx.example.org",
	    X509_V_ERR_HOSTNAME_MISMATCH, TLSA_FAIL_CERT_HOST_MISMATCH);
	pkix_case("expired", "root.pem", "mx.example.net",
	    X509_V_ERR_CERT_HAS_EXPIRED, TLSA_FAIL_CERT_EXPIRED);
	/* RFC 7672 3.2.3: no partial-label wildcards, as for VERIFY. */
	pkix_case("partial", "root.pem", "mx.example.net",
	    X509_V_ERR_HOSTNAME_MISMATCH, TLSA_FAIL_CERT_HOST_MISMATCH);
}

/* No chain (no handshake) and bad arguments. */
static void
pkix_check_no_chain(void **state)
{
	(void)state;
	struct tlsa_ctx_config cfg = { .verify_time = TLSA_TEST_TIME };
	char ca[4096];
	tt_path(ca, sizeof(ca), "root.pem");
	cfg.ca_file = ca;
	struct tlsa_ctx *ctx = NULL;
	assert_int_equal(tlsa_ctx_new(&cfg, &ctx), 0);
	struct tlsa_verdict v;
	memset(&v, 0, sizeof(v));
	v.kind = TLSA_VERDICT_MAY;
	SSL *cl = NULL;
	assert_int_equal(tlsa_ssl_new(ctx, &v, &cl), 0);
	long err = 0;
	enum tlsa_failure f = TLSA_FAIL_NONE;
	assert_int_equal(tlsa_ssl_pkix_check(ctx, cl, "mx.example.net", &err,
	                     &f),
	    0);
	assert_int_equal(err, X509_V_ERR_UNSPECIFIED);
	assert_int_equal(f, TLSA_FAIL_CERT_NOT_TRUSTED);
	assert_int_equal(tlsa_ssl_pkix_check(ctx, cl, "", &err, &f),
	    TLSA_ERR_INVAL);
	assert_int_equal(tlsa_ssl_pkix_check(NULL, cl, "x", &err, &f),
	    TLSA_ERR_INVAL);
	SSL_free(cl);
	tlsa_ctx_free(ctx);
}

int
main(void)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);
	struct CMUnitTest *t = calloc(n + 6, sizeof(*t));
	if (t == NULL)
		return 1;
	for (size_t i = 0; i < n; i++) {
		t[i] = (struct CMUnitTest)cmocka_unit_test_prestate(run_case,
		    (void *)&cases[i]);
		t[i].name = cases[i].name;
	}
	t[n] = (struct CMUnitTest)cmocka_unit_test(dnc_refused);
	t[n + 1] = (struct CMUnitTest)cmocka_unit_test(no_handshake_result);
	t[n + 2] =
	    (struct CMUnitTest)cmocka_unit_test(digest_config_sha256_only);
	t[n + 3] = (struct CMUnitTest)cmocka_unit_test(pkix_check_valid);
	t[n + 4] = (struct CMUnitTest)cmocka_unit_test(pkix_check_failures);
	t[n + 5] = (struct CMUnitTest)cmocka_unit_test(pkix_check_no_chain);
	int rc = _cmocka_run_group_tests("tlsa_ssl", t, n + 6, NULL, NULL);
	free(t);
	return rc;
}
