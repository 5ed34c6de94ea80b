/*
 * OpenSSL's DANE corpus (tests/data/tlsa/openssl-danetest, Apache-2.0, 50
 * cases; format in its README) through our API, one TAP case per corpus case.
 *
 * Each case is checked twice:
 *  1. parity: records parsed by tlsa_record_from_text(), then OpenSSL's own
 *     harness parameters (base example.com, Root CA trusted, the case's
 *     nonamechecks flag, SHA2-512 preferred): the verify result and match
 *     depth must equal the file's.
 *  2. policy: the records go through tlsa_policy_decide() (secure implicit
 *     MX example.com) and tlsa_ssl_new(). The expected outcome follows
 *     RFC 7672 from the file's: if no record is usable (PKIX-TA/EE only,
 *     C49) the verdict is ENCRYPT; otherwise the chain is verified with the
 *     prepared SSL (empty trust store) and must give the file's result,
 *     except that an expected hostname mismatch (62) for an RRset of only
 *     DANE-EE(3) records becomes success, because we always set
 *     DANE_FLAG_NO_DANE_EE_NAMECHECKS (RFC 7672 3.2.1, C52).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tlsa_test_util.h"

#define MAXREC 4
#define MAXCERT 4
#define BASE "example.com"

struct dcase {
	char name[96];
	int ntlsa, ncert, nonamechecks, want_err, want_depth;
	char *rec_text[MAXREC];
	X509 *certs[MAXCERT];
};

static struct dcase cases[64];
static size_t ncases;
static char *filebuf;

static char *
next_line(char **pos)
{
	char *s = *pos;
	if (*s == '\0')
		return NULL;
	char *nl = strchr(s, '\n');
	if (nl != NULL) {
		*nl = '\0';
		*pos = nl + 1;
	} else {
		*pos = s + strlen(s);
	}
	return s;
}

static int
load_corpus(void)
{
	char p[4096];
	tt_path(p, sizeof(p), "openssl-danetest/danetest.in");
	FILE *f = fopen(p, "rb");
	if (f == NULL)
		return -1;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	filebuf = calloc(1, (size_t)sz + 1);
	if (filebuf == NULL || fread(filebuf, 1, (size_t)sz, f) != (size_t)sz) {
		fclose(f);
		return -1;
	}
	fclose(f);
	char *pos = filebuf;
	char *line;
	while ((line = next_line(&pos)) != NULL) {
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (ncases >= sizeof(cases) / sizeof(cases[0]))
			return -1;
		struct dcase *c = &cases[ncases];
		/* NOLINTNEXTLINE(cert-err34-c): a committed corpus; values are range-checked below */
		if (sscanf(line, "%d %d %d %d %d", &c->ntlsa, &c->ncert,
		        &c->nonamechecks, &c->want_err, &c->want_depth) != 5 ||
		    c->ntlsa > MAXREC || c->ncert > MAXCERT || c->ntlsa < 0 ||
		    c->ncert < 1)
			return -1;
		snprintf(c->name, sizeof(c->name),
		    "danetest_case_%02zu_err%d_depth%d", ncases + 1,
		    c->want_err, c->want_depth);
		for (int i = 0; i < c->ntlsa; i++)
			if ((c->rec_text[i] = next_line(&pos)) == NULL)
				return -1;
		/* PEM_read_bio skips any text before each BEGIN line. */
		size_t rest = strlen(pos);
		BIO *b = BIO_new_mem_buf(pos, (int)rest);
		for (int i = 0; i < c->ncert; i++)
			if ((c->certs[i] = PEM_read_bio_X509(b, NULL, NULL,
			         NULL)) == NULL)
				return -1;
		pos += rest - (size_t)BIO_pending(b);
		BIO_free(b);
		ncases++;
	}
	return 0;
}

/* Verify the case's chain with the DANE state of ssl (as OpenSSL's harness
 * does); returns the verify error and sets *depth. */
static int
verify_chain(SSL *ssl, const struct dcase *c, int *depth)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	for (int i = 1; i < c->ncert; i++)
		sk_X509_push(chain, c->certs[i]);
	X509_STORE_CTX *sctx = X509_STORE_CTX_new();
	assert_int_equal(X509_STORE_CTX_init(sctx,
	                     SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl)),
	                     c->certs[0], chain),
	    1);
	X509_STORE_CTX_set_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx(),
	    ssl);
	X509_STORE_CTX_set_default(sctx, "ssl_server");
	X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(sctx),
	    SSL_get0_param(ssl));
	X509_STORE_CTX_set0_dane(sctx, SSL_get0_dane(ssl));
	int ok = X509_verify_cert(sctx);
	int err = X509_STORE_CTX_get_error(sctx);
	assert_true(ok == 1 ? err == X509_V_OK : err != X509_V_OK);
	/* The depth is reported only while the result is OK (harness trick). */
	SSL_set_verify_result(ssl, X509_V_OK);
	*depth = SSL_get0_dane_authority(ssl, NULL, NULL);
	SSL_set_verify_result(ssl, err);
	X509_STORE_CTX_free(sctx);
	sk_X509_free(chain);
	return err;
}

static void
parse_records(const struct dcase *c, uint8_t bufs[MAXREC][2048],
    struct tlsa_record *recs)
{
	for (int i = 0; i < c->ntlsa; i++)
		assert_int_equal(tlsa_record_from_text(c->rec_text[i],
		                     strlen(c->rec_text[i]), bufs[i], 2048,
		                     &recs[i]),
		    0);
}

static void
parity(const struct dcase *c, const struct tlsa_record *recs)
{
	char ca[4096];
	tt_path(ca, sizeof(ca), "openssl-danetest/danetest.pem");
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(ctx);
	assert_true(SSL_CTX_dane_enable(ctx) > 0);
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
	assert_true(SSL_CTX_dane_mtype_set(ctx, EVP_sha512(), 2, 1) > 0);
	assert_true(SSL_CTX_dane_mtype_set(ctx, EVP_sha256(), 1, 2) > 0);
	SSL *ssl = SSL_new(ctx);
	SSL_set_connect_state(ssl);
	assert_true(SSL_dane_enable(ssl, BASE) > 0);
	if (c->nonamechecks)
		SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (int i = 0; i < c->ntlsa; i++)
		assert_true(
		    SSL_dane_tlsa_add(ssl, recs[i].usage, recs[i].selector,
		        recs[i].mtype, recs[i].data, recs[i].data_len) >= 0);
	int depth;
	int err = verify_chain(ssl, c, &depth);
	assert_int_equal(err, c->want_err);
	assert_int_equal(depth, c->want_depth);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

static void
policy(const struct dcase *c, const struct tlsa_record *recs,
    struct tlsa_ctx *tctx)
{
	struct tlsa_dest_in d = { .level = TLSA_LEVEL_DANE,
		.nexthop = BASE,
		.port = 25,
		.mx = { TLSA_ANSWER_NODATA, TLSA_DNSSEC_SECURE } };
	struct tlsa_host_in h = { .name = BASE,
		.addr = { TLSA_ANSWER_DATA, TLSA_DNSSEC_SECURE },
		.n_tlsa = 1 };
	h.tlsa[0] = (struct tlsa_tlsa_in){ BASE,
		{ TLSA_ANSWER_DATA, TLSA_DNSSEC_SECURE }, recs,
		(size_t)c->ntlsa, false };
	struct tlsa_verdict v;
	assert_int_equal(tlsa_policy_decide(&d, &h, NULL, &v), 0);
	enum tlsa_unusable why[MAXREC];
	int usable = tlsa_rrset_classify(recs, (size_t)c->ntlsa, NULL, why);
	bool only_ee = true;
	for (int i = 0; i < c->ntlsa; i++)
		if (why[i] == TLSA_USABLE &&
		    recs[i].usage != TLSA_USAGE_DANE_EE)
			only_ee = false;
	if (usable == 0) {
		/* C49: PKIX usages only -> TLS without authentication (C20). */
		for (int i = 0; i < c->ntlsa; i++)
			assert_int_equal(why[i], TLSA_UNUSABLE_PKIX_USAGE);
		assert_int_equal(v.kind, TLSA_VERDICT_ENCRYPT);
		tlsa_verdict_release(&v);
		return;
	}
	assert_int_equal(v.kind, TLSA_VERDICT_DANE);
	assert_string_equal(v.base_domain, BASE);
	SSL *ssl = NULL;
	assert_int_equal(tlsa_ssl_new(tctx, &v, &ssl), 0);
	int want = c->want_err;
	if (want == X509_V_ERR_HOSTNAME_MISMATCH && only_ee)
		want = X509_V_OK; /* C52 */
	int depth;
	int err = verify_chain(ssl, c, &depth);
	assert_int_equal(err, want);
	assert_int_equal(depth, c->want_depth);
	if (err == X509_V_OK) {
		uint8_t u, s, m;
		const unsigned char *data;
		size_t dlen;
		assert_int_equal(SSL_get0_dane_tlsa(ssl, &u, &s, &m, &data,
		                     &dlen),
		    c->want_depth);
		assert_true(u == 2 || u == 3);
	}
	SSL_free(ssl);
	tlsa_verdict_release(&v);
}

static struct tlsa_ctx *g_ctx;

static void
run_case(void **state)
{
	const struct dcase *c = *state;
	uint8_t bufs[MAXREC][2048];
	struct tlsa_record recs[MAXREC];
	parse_records(c, bufs, recs);
	parity(c, recs);
	policy(c, recs, g_ctx);
}

int
main(void)
{
	if (load_corpus() < 0 || ncases != 50) {
		printf(
		    "1..1\nnot ok 1 - danetest corpus unreadable or not 50 cases (%zu)\n",
		    ncases);
		return 1;
	}
	char ca[4096];
	tt_path(ca, sizeof(ca), "root2.pem");
	struct tlsa_ctx_config cfg = { .ca_file = ca,
		.verify_time = TLSA_TEST_TIME };
	if (tlsa_ctx_new(&cfg, &g_ctx) != 0)
		return 1;
	struct CMUnitTest t[64];
	for (size_t i = 0; i < ncases; i++) {
		t[i] = (struct CMUnitTest)cmocka_unit_test_prestate(run_case,
		    &cases[i]);
		t[i].name = cases[i].name;
	}
	int rc =
	    _cmocka_run_group_tests("tlsa_danetest", t, ncases, NULL, NULL);
	tlsa_ctx_free(g_ctx);
	for (size_t i = 0; i < ncases; i++)
		for (int k = 0; k < cases[i].ncert; k++)
			X509_free(cases[i].certs[k]);
	free(filebuf);
	return rc;
}
