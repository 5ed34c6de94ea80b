/*
 * OpenSSL glue: the client contexts, one SSL* per connection prepared from a
 * verdict, and the interpretation of the handshake (RFC 7672 3, 8).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tlsa_int.h"

struct tlsa_ctx {
	SSL_CTX *dane;   /* DANE enabled, empty trust store */
	SSL_CTX *verify; /* PKIX with the configured / system CAs */
	SSL_CTX *unauth; /* encrypt and may: no verification */
	struct tlsa_digests digests;
};

static int
ctx_common(SSL_CTX **out, int min_version, int64_t verify_time)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	if (c == NULL)
		return TLSA_ERR_OPENSSL;
	*out = c;
	if (SSL_CTX_set_min_proto_version(c, min_version) != 1)
		return TLSA_ERR_INVAL;
	/* No resumption: a session must never satisfy a policy it was not
	 * verified under, and DANE state is per connection (see README). */
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION);
	X509_VERIFY_PARAM *param = SSL_CTX_get0_param(c);
	/* RFC 7672 3.2.3 (C58, C59): whole-label wildcards only. */
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (verify_time != 0)
		X509_VERIFY_PARAM_set_time(param, (time_t)verify_time);
	return 0;
}

int
tlsa_ctx_new(const struct tlsa_ctx_config *cfg, struct tlsa_ctx **out)
{
	if (cfg == NULL || out == NULL)
		return TLSA_ERR_INVAL;
	*out = NULL;
	struct tlsa_ctx *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return TLSA_ERR_NOMEM;
	if (cfg->digests != NULL)
		t->digests = *cfg->digests;
	else
		tlsa_digests_default(&t->digests);
	if (t->digests.n == 0 || t->digests.n > TLSA_DIGESTS_MAX) {
		tlsa_ctx_free(t);
		return TLSA_ERR_INVAL;
	}
	int auth_min =
	    cfg->auth_min_version ? cfg->auth_min_version : TLS1_2_VERSION;
	int unauth_min =
	    cfg->unauth_min_version ? cfg->unauth_min_version : TLS1_VERSION;
	int rc;
	if ((rc = ctx_common(&t->dane, auth_min, cfg->verify_time)) < 0 ||
	    (rc = ctx_common(&t->verify, auth_min, cfg->verify_time)) < 0 ||
	    (rc = ctx_common(&t->unauth, unauth_min, cfg->verify_time)) < 0) {
		tlsa_ctx_free(t);
		return rc;
	}
	/* I01: TLS 1.0/1.1 only work at security level 0 in OpenSSL 3. Only
	 * the unauthenticated context goes that low (README). */
	if (unauth_min < TLS1_2_VERSION)
		SSL_CTX_set_security_level(t->unauth, 0);
	if (auth_min < TLS1_2_VERSION) {
		SSL_CTX_set_security_level(t->dane, 0);
		SSL_CTX_set_security_level(t->verify, 0);
	}

	rc = TLSA_ERR_OPENSSL;
	if (SSL_CTX_dane_enable(t->dane) <= 0)
		goto fail;
	/*
	 * RFC 7671 9 (I12): OpenSSL's ordinal per matching type, higher is
	 * preferred. We already keep only the strongest digest per usage and
	 * selector, so this only keeps OpenSSL consistent with our order and
	 * disables the standard types the configuration leaves out.
	 */
	/* NOLINTNEXTLINE(bugprone-too-small-loop-variable): the bound is the constant 2 */
	for (uint8_t m = TLSA_MTYPE_SHA256; m <= TLSA_MTYPE_SHA512; m++) {
		bool listed = false;
		for (size_t i = 0; i < t->digests.n; i++)
			listed = listed || t->digests.d[i].mtype == m;
		if (!listed && SSL_CTX_dane_mtype_set(t->dane, NULL, m, 0) <= 0)
			goto fail;
	}
	for (size_t i = 0; i < t->digests.n; i++) {
		const EVP_MD *md = EVP_get_digestbyname(t->digests.d[i].name);
		if (md == NULL)
			goto fail;
		if (SSL_CTX_dane_mtype_set(t->dane, md, t->digests.d[i].mtype,
		        (uint8_t)(t->digests.n - i)) <= 0)
			goto fail;
	}
	if (cfg->ca_file != NULL || cfg->ca_path != NULL) {
		if (SSL_CTX_load_verify_locations(t->verify, cfg->ca_file,
		        cfg->ca_path) != 1)
			goto fail;
	} else if (SSL_CTX_set_default_verify_paths(t->verify) != 1) {
		goto fail;
	}
	*out = t;
	return 0;
fail:
	tlsa_ctx_free(t);
	return rc;
}

void
tlsa_ctx_free(struct tlsa_ctx *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->dane);
	SSL_CTX_free(ctx->verify);
	SSL_CTX_free(ctx->unauth);
	free(ctx);
}

static bool
is_ip_literal(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 ||
	    inet_pton(AF_INET6, s, buf) == 1;
}

static int
prepare_dane(SSL *ssl, const struct tlsa_verdict *v)
{
	/* RFC 7672 8.1 (C63, I02, I14): SNI and the primary reference
	 * identifier are the TLSA base domain; SSL_dane_enable sets both. */
	if (SSL_set_tlsext_host_name(ssl, v->base_domain) != 1)
		return TLSA_ERR_OPENSSL;
	if (SSL_dane_enable(ssl, v->base_domain) <= 0)
		return TLSA_ERR_OPENSSL;
	/* RFC 7672 3.2.1 (C52, C46): no name checks for DANE-EE(3). */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	/* RFC 7672 3.2.2 (C53-C56): further reference identifiers for DANE-TA. */
	for (size_t i = 0; i < v->n_refs; i++) {
		if (strcmp(v->refs[i], v->base_domain) == 0)
			continue;
		if (SSL_add1_host(ssl, v->refs[i]) != 1)
			return TLSA_ERR_OPENSSL;
	}
	/* C50: only the usable records (PKIX-TA/EE were dropped, C49). */
	size_t added = 0;
	for (size_t i = 0; i < v->n_usable; i++) {
		const struct tlsa_record *r = &v->usable[i];
		int rc = SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->mtype,
		    r->data, r->data_len);
		if (rc < 0)
			return TLSA_ERR_OPENSSL;
		if (rc > 0)
			added++;
	}
	if (added == 0)
		return TLSA_ERR_INVAL; /* never run DANE with no record to match */
	/* I24: a chain that matches no usable record aborts the handshake. */
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	return 0;
}

static int
prepare_verify(SSL *ssl, const struct tlsa_verdict *v)
{
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	if (is_ip_literal(v->base_domain)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(param, v->base_domain) != 1)
			return TLSA_ERR_OPENSSL;
	} else {
		if (SSL_set_tlsext_host_name(ssl, v->base_domain) != 1 ||
		    SSL_set1_host(ssl, v->base_domain) != 1)
			return TLSA_ERR_OPENSSL;
	}
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	return 0;
}

int
tlsa_ssl_new(struct tlsa_ctx *ctx, const struct tlsa_verdict *v, SSL **out)
{
	if (ctx == NULL || v == NULL || out == NULL)
		return TLSA_ERR_INVAL;
	*out = NULL;
	SSL_CTX *c = NULL;
	switch (v->kind) {
	case TLSA_VERDICT_DANE:
		if (v->n_usable == 0 || v->base_domain[0] == '\0')
			return TLSA_ERR_INVAL;
		c = ctx->dane;
		break;
	case TLSA_VERDICT_VERIFY:
		if (v->base_domain[0] == '\0')
			return TLSA_ERR_INVAL;
		c = ctx->verify;
		break;
	case TLSA_VERDICT_ENCRYPT:
	case TLSA_VERDICT_MAY:
		c = ctx->unauth;
		break;
	case TLSA_VERDICT_DO_NOT_CONNECT:
		return TLSA_ERR_INVAL;
	}
	SSL *ssl = SSL_new(c);
	if (ssl == NULL)
		return TLSA_ERR_OPENSSL;
	SSL_set_connect_state(ssl);
	int rc = 0;
	switch (v->kind) {
	case TLSA_VERDICT_DANE:
		rc = prepare_dane(ssl, v);
		break;
	case TLSA_VERDICT_VERIFY:
		rc = prepare_verify(ssl, v);
		break;
	case TLSA_VERDICT_ENCRYPT:
	case TLSA_VERDICT_MAY:
		/* RFC 7672 8.1: SNI with the base domain whenever TLSA records
		 * were found, even unusable ones. */
		if (v->base_domain[0] != '\0' &&
		    SSL_set_tlsext_host_name(ssl, v->base_domain) != 1)
			rc = TLSA_ERR_OPENSSL;
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
		break;
	case TLSA_VERDICT_DO_NOT_CONNECT:
		rc = TLSA_ERR_INVAL;
		break;
	}
	if (rc < 0) {
		SSL_free(ssl);
		return rc;
	}
	*out = ssl;
	return 0;
}

static enum tlsa_failure
x509_class(long err)
{
	switch (err) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return TLSA_FAIL_CERT_HOST_MISMATCH;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return TLSA_FAIL_CERT_EXPIRED;
	case X509_V_ERR_DANE_NO_MATCH:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_CERT_REJECTED:
		return TLSA_FAIL_CERT_NOT_TRUSTED;
	default:
		return TLSA_FAIL_VALIDATION;
	}
}

static void
copy_str(char *dst, size_t size, const char *src)
{
	struct tlsa__buf b;
	tlsa__buf_init(&b, dst, size);
	if (src != NULL)
		tlsa__buf_add(&b, src);
}

static void
peer_details(X509 *x, struct tlsa_result *out)
{
	/* SHA-256 of the DER SubjectPublicKeyInfo: what "3 1 1" matches. */
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	unsigned int olen = 0;
	if (len > 0 &&
	    EVP_Digest(der, (size_t)len, out->spki_sha256, &olen, EVP_sha256(),
	        NULL) == 1 &&
	    olen == 32)
		out->have_spki = true;
	OPENSSL_free(der);

	BIO *mem = BIO_new(BIO_s_mem());
	if (mem != NULL) {
		if (X509_NAME_print_ex(mem, X509_get_subject_name(x), 0,
		        XN_FLAG_RFC2253) >= 0) {
			char *p = NULL;
			long n = BIO_get_mem_data(mem, &p);
			if (n > 0) {
				size_t m = (size_t)n < sizeof(out->subject) - 1
				    ? (size_t)n
				    : sizeof(out->subject) - 1;
				memcpy(out->subject, p, m);
				out->subject[m] = '\0';
			}
		}
		BIO_free(mem);
	}

	GENERAL_NAMES *gens =
	    X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	struct tlsa__buf b;
	tlsa__buf_init(&b, out->dns_names, sizeof(out->dns_names));
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_DNS)
			continue;
		const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
		int dl = ASN1_STRING_length(g->d.dNSName);
		if (b.len > 0)
			tlsa__buf_add(&b, ",");
		for (int k = 0; k < dl; k++) {
			char c[2] = { (char)d[k], '\0' };
			/* Keep log text printable; odd bytes become '?'. */
			if (d[k] < 0x21 || d[k] > 0x7e || d[k] == ',' ||
			    d[k] == '"')
				c[0] = '?';
			tlsa__buf_add(&b, c);
		}
	}
	GENERAL_NAMES_free(gens);
}

static void
fail(struct tlsa_result *out, enum tlsa_failure f, const char *prefix,
    const char *detail)
{
	out->ok = false;
	out->auth = TLSA_AUTH_NONE;
	out->trust = TLSA_TRUST_NONE;
	out->fclass = f;
	/* RFC 7672 defines no codes; 4.7.5 is the convention (departure 6). */
	copy_str(out->status, sizeof(out->status), "4.7.5");
	struct tlsa__buf b;
	tlsa__buf_init(&b, out->why, sizeof(out->why));
	tlsa__buf_add(&b, prefix);
	if (detail != NULL && detail[0] != '\0') {
		tlsa__buf_add(&b, ": ");
		tlsa__buf_add(&b, detail);
	}
}

int
tlsa_ssl_result(SSL *ssl, const struct tlsa_verdict *v, bool handshake_ok,
    struct tlsa_result *out)
{
	if (out == NULL)
		return TLSA_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	out->depth = -1;
	out->x509_err = X509_V_OK;
	if (ssl == NULL || v == NULL || v->kind == TLSA_VERDICT_DO_NOT_CONNECT)
		return TLSA_ERR_INVAL;

	/* After a failed verification OpenSSL 3 does not set the session's
	 * peer certificate, but the chain the server sent is kept, leaf first
	 * on the client side. The operator needs exactly that key when DANE
	 * refused it (which key, which names), so fall back to it. */
	X509 *peer = SSL_get0_peer_certificate(ssl);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	if (chain != NULL && sk_X509_num(chain) > 0) {
		out->chain_len = sk_X509_num(chain);
		if (peer == NULL)
			peer = sk_X509_value(chain, 0);
	}
	if (peer != NULL)
		peer_details(peer, out);
	out->x509_err = SSL_get_verify_result(ssl);
	if (handshake_ok) {
		copy_str(out->protocol, sizeof(out->protocol),
		    SSL_get_version(ssl));
		copy_str(out->cipher, sizeof(out->cipher),
		    SSL_get_cipher_name(ssl));
	}
	bool authed =
	    v->kind == TLSA_VERDICT_DANE || v->kind == TLSA_VERDICT_VERIFY;
	if (!handshake_ok) {
		if (authed && out->x509_err != X509_V_OK) {
			fail(out, x509_class(out->x509_err),
			    v->kind == TLSA_VERDICT_DANE
			        ? "DANE authentication failed"
			        : "certificate verification failed",
			    X509_verify_cert_error_string(out->x509_err));
		} else {
			char e[160] = "";
			unsigned long code = ERR_peek_last_error();
			if (code != 0)
				ERR_error_string_n(code, e, sizeof(e));
			fail(out, TLSA_FAIL_VALIDATION, "TLS handshake failed",
			    e);
		}
		return 0;
	}

	switch (v->kind) {
	case TLSA_VERDICT_DANE: {
		/* Re-check even after a completed handshake (I04, C51): the
		 * result must come from this verification, with a DANE match. */
		X509 *mcert = NULL;
		EVP_PKEY *mspki = NULL;
		int depth = SSL_get0_dane_authority(ssl, &mcert, &mspki);
		uint8_t usage = 0, sel = 0, mt = 0;
		const unsigned char *data = NULL;
		size_t dlen = 0;
		int tdepth =
		    SSL_get0_dane_tlsa(ssl, &usage, &sel, &mt, &data, &dlen);
		if (peer == NULL || out->x509_err != X509_V_OK || depth < 0 ||
		    tdepth < 0) {
			fail(out,
			    out->x509_err != X509_V_OK
			        ? x509_class(out->x509_err)
			        : TLSA_FAIL_CERT_NOT_TRUSTED,
			    "DANE authentication failed",
			    out->x509_err != X509_V_OK
			        ? X509_verify_cert_error_string(out->x509_err)
			        : "no TLSA record matched");
			return 0;
		}
		struct tlsa_record m = { usage, sel, mt, data, dlen };
		tlsa__record_text(&m, out->matched, sizeof(out->matched));
		out->depth = depth;
		out->auth = usage == TLSA_USAGE_DANE_EE ? TLSA_AUTH_DANE_EE
		                                        : TLSA_AUTH_DANE_TA;
		if (out->auth == TLSA_AUTH_DANE_TA)
			copy_str(out->peername, sizeof(out->peername),
			    SSL_get0_peername(ssl));
		out->trust = v->log_as;
		out->ok = true;
		return 0;
	}
	case TLSA_VERDICT_VERIFY:
		if (peer == NULL || out->x509_err != X509_V_OK) {
			fail(out,
			    out->x509_err != X509_V_OK
			        ? x509_class(out->x509_err)
			        : TLSA_FAIL_CERT_NOT_TRUSTED,
			    "certificate verification failed",
			    X509_verify_cert_error_string(out->x509_err));
			return 0;
		}
		out->auth = TLSA_AUTH_VERIFIED;
		copy_str(out->peername, sizeof(out->peername),
		    SSL_get0_peername(ssl));
		out->trust = v->log_as;
		out->ok = true;
		return 0;
	case TLSA_VERDICT_ENCRYPT:
		out->auth = TLSA_AUTH_ENCRYPT;
		out->trust = TLSA_TRUST_UNTRUSTED;
		out->ok = true;
		return 0;
	case TLSA_VERDICT_MAY:
		out->auth = TLSA_AUTH_MAY;
		out->trust = TLSA_TRUST_UNTRUSTED;
		out->ok = true;
		return 0;
	case TLSA_VERDICT_DO_NOT_CONNECT:
		break;
	}
	return TLSA_ERR_INVAL;
}

int
tlsa_ssl_pkix_check(struct tlsa_ctx *ctx, SSL *ssl, const char *host,
    long *x509_err, enum tlsa_failure *fclass)
{
	if (ctx == NULL || ssl == NULL || host == NULL || host[0] == '\0' ||
	    x509_err == NULL || fclass == NULL)
		return TLSA_ERR_INVAL;
	*x509_err = X509_V_ERR_UNSPECIFIED;
	*fclass = TLSA_FAIL_CERT_NOT_TRUSTED;
	/* On the client side the chain the server sent starts with its
	 * leaf (SSL_get_peer_cert_chain(3)). */
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	if (chain == NULL || sk_X509_num(chain) == 0)
		return 0;
	X509 *leaf = sk_X509_value(chain, 0);
	X509_STORE_CTX *sc = X509_STORE_CTX_new();
	if (sc == NULL)
		return TLSA_ERR_NOMEM;
	int rc = TLSA_ERR_OPENSSL;
	if (X509_STORE_CTX_init(sc, SSL_CTX_get_cert_store(ctx->verify), leaf,
	        chain) != 1)
		goto out;
	/* The purpose of a TLS server certificate, then the parameters of the
	 * verify context (whole-label wildcards, a pinned time) and the host,
	 * as prepare_verify() sets them for a VERIFY session. */
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(sc);
	if (X509_STORE_CTX_set_default(sc, "ssl_server") != 1 ||
	    X509_VERIFY_PARAM_set1(param, SSL_CTX_get0_param(ctx->verify)) != 1)
		goto out;
	if (is_ip_literal(host)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)
			goto out;
	} else if (X509_VERIFY_PARAM_set1_host(param, host, 0) != 1) {
		goto out;
	}
	rc = 0;
	if (X509_verify_cert(sc) == 1) {
		*x509_err = X509_V_OK;
		*fclass = TLSA_FAIL_NONE;
	} else {
		*x509_err = X509_STORE_CTX_get_error(sc);
		if (*x509_err == X509_V_OK)
			*x509_err = X509_V_ERR_UNSPECIFIED;
		*fclass = x509_class(*x509_err);
	}
out:
	X509_STORE_CTX_free(sc);
	ERR_clear_error();
	return rc;
}

int
tlsa_result_format(const struct tlsa_result *r, char *buf, size_t size)
{
	if (r == NULL || buf == NULL || size == 0)
		return TLSA_ERR_INVAL;
	struct tlsa__buf b;
	tlsa__buf_init(&b, buf, size);
	tlsa__buf_printf(&b, "tls=%s trust=%s", tlsa_auth_name(r->auth),
	    tlsa_trust_name(r->trust));
	if (r->depth >= 0)
		tlsa__buf_printf(&b, " depth=%d", r->depth);
	if (r->matched[0] != '\0') {
		tlsa__buf_add(&b, " tlsa=");
		tlsa__buf_quoted(&b, r->matched, sizeof(r->matched));
	}
	if (r->peername[0] != '\0') {
		tlsa__buf_add(&b, " peername=");
		tlsa__buf_quoted(&b, r->peername, sizeof(r->peername));
	}
	if (r->protocol[0] != '\0')
		tlsa__buf_printf(&b, " protocol=%s cipher=%s", r->protocol,
		    r->cipher);
	if (r->have_spki) {
		tlsa__buf_add(&b, " spki=sha256:");
		tlsa__buf_hex(&b, r->spki_sha256, sizeof(r->spki_sha256),
		    sizeof(r->spki_sha256));
	}
	if (r->subject[0] != '\0') {
		tlsa__buf_add(&b, " subject=");
		tlsa__buf_quoted(&b, r->subject, sizeof(r->subject));
	}
	if (r->dns_names[0] != '\0') {
		tlsa__buf_add(&b, " san=");
		tlsa__buf_quoted(&b, r->dns_names, sizeof(r->dns_names));
	}
	if (!r->ok) {
		tlsa__buf_printf(&b, " class=%s dsn=%s",
		    tlsa_failure_name(r->fclass), r->status);
		if (r->x509_err != X509_V_OK) {
			tlsa__buf_add(&b, " x509=");
			tlsa__buf_quoted(&b,
			    X509_verify_cert_error_string(r->x509_err), 128);
		}
		tlsa__buf_add(&b, " why=");
		tlsa__buf_quoted(&b, r->why, sizeof(r->why));
	}
	return b.overflow ? TLSA_ERR_SPACE : 0;
}
