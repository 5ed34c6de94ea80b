/* Helpers shared by the tlsa unit tests (test code only). */
#ifndef TLSA_TEST_UTIL_H
#define TLSA_TEST_UTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tlsa.h"

/* Verification time pinned for every fixture: 2025-06-01T00:00:00Z. */
#define TLSA_TEST_TIME INT64_C(1748736000)

static inline void
tt_path(char *buf, size_t size, const char *rel)
{
	const char *root = getenv("DANERELAY_SOURCE_ROOT");
	int w = snprintf(buf, size, "%s/tests/data/tlsa/%s", root ? root : ".",
	    rel);
	if (w < 0 || (size_t)w >= size)
		abort();
}

static inline X509 *
tt_cert(const char *name)
{
	char p[4096], rel[128];
	int w = snprintf(rel, sizeof(rel), "%s.pem", name);
	if (w < 0 || (size_t)w >= sizeof(rel))
		abort();
	tt_path(p, sizeof(p), rel);
	FILE *f = fopen(p, "r");
	if (f == NULL) {
		fprintf(stderr, "cannot open %s\n", p);
		abort();
	}
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		abort();
	return x;
}

/* TLSA association data for cert x: selector 0/1, mtype 0/1/2. Returns length. */
static inline size_t
tt_assoc(X509 *x, int sel, int mtype, uint8_t *out, size_t size)
{
	unsigned char *der = NULL;
	int len = sel == 0 ? i2d_X509(x, &der)
	                   : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (len <= 0)
		abort();
	size_t n;
	if (mtype == 0) {
		if ((size_t)len > size)
			abort();
		memcpy(out, der, (size_t)len);
		n = (size_t)len;
	} else {
		unsigned int ol = 0;
		if (EVP_Digest(der, (size_t)len, out, &ol,
		        mtype == 1 ? EVP_sha256() : EVP_sha512(), NULL) != 1)
			abort();
		n = ol;
	}
	OPENSSL_free(der);
	return n;
}
#endif
