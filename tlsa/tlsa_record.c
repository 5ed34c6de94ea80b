/*
 * TLSA records: wire and text parsing, classification (RFC 7672 3.1.3,
 * RFC 6698 4.1), digest agility (RFC 7671 9) and the canonical RRset digest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tlsa_int.h"

int
tlsa_rdata_parse(const uint8_t *p, size_t len, struct tlsa_record *out)
{
	/* RFC 6698 2.1: Cert. Usage (1) | Selector (1) | Matching Type (1) |
	 * Certificate Association Data (rest of the RDATA). */
	if (p == NULL || out == NULL)
		return TLSA_ERR_INVAL;
	if (len < 3)
		return TLSA_ERR_TRUNCATED;
	if (len > TLSA_RDATA_MAX)
		return TLSA_ERR_INVAL;
	out->usage = p[0];
	out->selector = p[1];
	out->mtype = p[2];
	out->data = p + 3;
	out->data_len = len - 3;
	return (int)len;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One decimal field 0..255 followed by whitespace. */
static bool
parse_u8(const char *s, size_t len, size_t *pos, uint8_t *out)
{
	while (*pos < len && is_space(s[*pos]))
		(*pos)++;
	unsigned v = 0;
	size_t start = *pos;
	while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
		v = v * 10 + (unsigned)(s[*pos] - '0');
		if (v > 255)
			return false;
		(*pos)++;
	}
	if (*pos == start || *pos - start > 3)
		return false;
	if (*pos < len && !is_space(s[*pos]))
		return false;
	*out = (uint8_t)v;
	return true;
}

int
tlsa_record_from_text(const char *s, size_t len, uint8_t *buf, size_t bufsize,
    struct tlsa_record *out)
{
	if (s == NULL || out == NULL || (buf == NULL && bufsize > 0))
		return TLSA_ERR_INVAL;
	size_t pos = 0;
	uint8_t u, sel, m;
	if (!parse_u8(s, len, &pos, &u) || !parse_u8(s, len, &pos, &sel) ||
	    !parse_u8(s, len, &pos, &m))
		return TLSA_ERR_SYNTAX;
	/* RFC 6698 2.2: the data is hex, possibly split by white space. */
	size_t n = 0;
	int hi = -1;
	for (; pos < len; pos++) {
		if (is_space(s[pos]))
			continue;
		int v = hexval(s[pos]);
		if (v < 0)
			return TLSA_ERR_SYNTAX;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n >= bufsize)
			return TLSA_ERR_SPACE;
		buf[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0)
		return TLSA_ERR_SYNTAX;
	out->usage = u;
	out->selector = sel;
	out->mtype = m;
	out->data = buf;
	out->data_len = n;
	return 0;
}

void
tlsa_digests_default(struct tlsa_digests *out)
{
	memset(out, 0, sizeof(*out));
	out->n = 2;
	out->d[0] = (struct tlsa_digest){ .mtype = TLSA_MTYPE_SHA512,
		.len = 64,
		.name = "sha512" };
	out->d[1] = (struct tlsa_digest){ .mtype = TLSA_MTYPE_SHA256,
		.len = 32,
		.name = "sha256" };
}

static int
digest_add(struct tlsa_digests *ds, const char *name, size_t nlen,
    unsigned mtype)
{
	if (nlen == 0 || nlen > TLSA_DIGEST_NAME_MAX || mtype < 1 ||
	    mtype > 254)
		return TLSA_ERR_SYNTAX;
	if (ds->n >= TLSA_DIGESTS_MAX)
		return TLSA_ERR_TOO_MANY;
	struct tlsa_digest d = { .mtype = (uint8_t)mtype };
	memcpy(d.name, name, nlen);
	d.name[nlen] = '\0';
	const EVP_MD *md = EVP_get_digestbyname(d.name);
	if (md == NULL || EVP_MD_get_size(md) <= 0 || EVP_MD_get_size(md) > 255)
		return TLSA_ERR_SYNTAX;
	d.len = (uint8_t)EVP_MD_get_size(md);
	for (size_t i = 0; i < ds->n; i++)
		if (ds->d[i].mtype == d.mtype ||
		    strcmp(ds->d[i].name, d.name) == 0)
			return TLSA_ERR_SYNTAX;
	ds->d[ds->n++] = d;
	return 0;
}

int
tlsa_digests_parse(const char *s, size_t len, struct tlsa_digests *out)
{
	if (s == NULL || out == NULL)
		return TLSA_ERR_INVAL;
	struct tlsa_digests ds;
	memset(&ds, 0, sizeof(ds));
	size_t pos = 0;
	while (pos < len) {
		if (is_space(s[pos]) || s[pos] == ',') {
			pos++;
			continue;
		}
		size_t start = pos;
		while (pos < len && !is_space(s[pos]) && s[pos] != ',')
			pos++;
		const char *tok = s + start;
		size_t tlen = pos - start;
		const char *eq = memchr(tok, '=', tlen);
		int rc;
		if (eq == NULL) {
			if (tlen == 6 && memcmp(tok, "sha512", 6) == 0)
				rc = digest_add(&ds, tok, tlen,
				    TLSA_MTYPE_SHA512);
			else if (tlen == 6 && memcmp(tok, "sha256", 6) == 0)
				rc = digest_add(&ds, tok, tlen,
				    TLSA_MTYPE_SHA256);
			else
				rc = TLSA_ERR_SYNTAX;
		} else {
			size_t nlen = (size_t)(eq - tok);
			size_t dl = tlen - nlen - 1;
			unsigned v = 0;
			if (dl == 0 || dl > 3)
				return TLSA_ERR_SYNTAX;
			for (size_t i = 0; i < dl; i++) {
				char c = eq[1 + i];
				if (c < '0' || c > '9')
					return TLSA_ERR_SYNTAX;
				v = v * 10 + (unsigned)(c - '0');
			}
			rc = digest_add(&ds, tok, nlen, v);
		}
		if (rc < 0)
			return rc;
	}
	if (ds.n == 0)
		return TLSA_ERR_SYNTAX;
	*out = ds;
	return 0;
}

/* Position in the digest order (0 = strongest), or -1 if not configured. */
static int
digest_rank(const struct tlsa_digests *ds, uint8_t mtype)
{
	for (size_t i = 0; i < ds->n; i++)
		if (ds->d[i].mtype == mtype)
			return (int)i;
	return -1;
}

/* Full(0): the data must be exactly one DER certificate or SPKI. */
static bool
full_data_ok(const struct tlsa_record *r)
{
	if (r->data_len == 0 || r->data_len > TLSA_RDATA_MAX)
		return false;
	const unsigned char *q = r->data;
	bool ok = false;
	if (r->selector == TLSA_SELECTOR_CERT) {
		X509 *x = d2i_X509(NULL, &q, (long)r->data_len);
		ok = x != NULL && q == r->data + r->data_len;
		X509_free(x);
	} else {
		EVP_PKEY *k = d2i_PUBKEY(NULL, &q, (long)r->data_len);
		ok = k != NULL && q == r->data + r->data_len;
		EVP_PKEY_free(k);
	}
	return ok;
}

static enum tlsa_unusable
classify_one(const struct tlsa_record *r, const struct tlsa_digests *ds)
{
	/* RFC 7672 3.1.3 (C49): PKIX-TA(0) and PKIX-EE(1) are not used for SMTP. */
	if (r->usage == TLSA_USAGE_PKIX_TA || r->usage == TLSA_USAGE_PKIX_EE)
		return TLSA_UNUSABLE_PKIX_USAGE;
	/* RFC 6698 4.1 (I22): unknown parameters make the record unusable. */
	if (r->usage != TLSA_USAGE_DANE_TA && r->usage != TLSA_USAGE_DANE_EE)
		return TLSA_UNUSABLE_USAGE;
	if (r->selector != TLSA_SELECTOR_CERT &&
	    r->selector != TLSA_SELECTOR_SPKI)
		return TLSA_UNUSABLE_SELECTOR;
	if (r->mtype == TLSA_MTYPE_FULL)
		return full_data_ok(r) ? TLSA_USABLE
		                       : TLSA_UNUSABLE_MALFORMED_FULL;
	/* PrivDigest(255) has no meaning between unrelated parties. */
	if (r->mtype == TLSA_MTYPE_PRIVATE)
		return TLSA_UNUSABLE_PRIVATE_MTYPE;
	int rank = digest_rank(ds, r->mtype);
	/* I12, I23: a matching type outside the configured order is not used. */
	if (rank < 0)
		return TLSA_UNUSABLE_MTYPE;
	if (r->data_len != ds->d[rank].len)
		return TLSA_UNUSABLE_DIGEST_LENGTH;
	return TLSA_USABLE;
}

int
tlsa_rrset_classify(const struct tlsa_record *recs, size_t n,
    const struct tlsa_digests *digests, enum tlsa_unusable *why)
{
	struct tlsa_digests def;
	if ((recs == NULL && n > 0) || (why == NULL && n > 0))
		return TLSA_ERR_INVAL;
	if (digests == NULL) {
		tlsa_digests_default(&def);
		digests = &def;
	}
	for (size_t i = 0; i < n; i++)
		why[i] = classify_one(&recs[i], digests);
	/*
	 * RFC 7671 9 (I13, C61): per (usage, selector), after discarding
	 * unusable records, keep only the digest records whose matching type is
	 * the strongest present; Full(0) records are always kept.
	 */
	int best[4][2];
	for (int u = 0; u < 4; u++)
		for (int s = 0; s < 2; s++)
			best[u][s] = -1;
	for (size_t i = 0; i < n; i++) {
		if (why[i] != TLSA_USABLE || recs[i].mtype == TLSA_MTYPE_FULL)
			continue;
		int r = digest_rank(digests, recs[i].mtype);
		int *b = &best[recs[i].usage][recs[i].selector];
		if (*b < 0 || r < *b)
			*b = r;
	}
	int usable = 0;
	for (size_t i = 0; i < n; i++) {
		if (why[i] != TLSA_USABLE)
			continue;
		if (recs[i].mtype != TLSA_MTYPE_FULL &&
		    digest_rank(digests, recs[i].mtype) !=
		        best[recs[i].usage][recs[i].selector]) {
			why[i] = TLSA_UNUSABLE_SUPERSEDED;
			continue;
		}
		usable++;
	}
	return usable;
}

struct enc {
	uint8_t *p;
	size_t len;
};

static int
enc_cmp(const void *a, const void *b)
{
	const struct enc *x = a, *y = b;
	size_t m = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->p, y->p, m);
	if (c != 0)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

int
tlsa_rrset_digest(const struct tlsa_record *recs, size_t n, uint8_t out[32])
{
	if ((recs == NULL && n > 0) || out == NULL)
		return TLSA_ERR_INVAL;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (recs[i].data_len > TLSA_RDATA_MAX)
			return TLSA_ERR_INVAL;
		total += 5 + recs[i].data_len;
	}
	struct enc *e = calloc(n ? n : 1, sizeof(*e));
	uint8_t *blob = malloc(total ? total : 1);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = TLSA_ERR_NOMEM;
	if (e == NULL || blob == NULL || md == NULL)
		goto out;
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = blob + off;
		p[0] = recs[i].usage;
		p[1] = recs[i].selector;
		p[2] = recs[i].mtype;
		p[3] = (uint8_t)(recs[i].data_len >> 8);
		p[4] = (uint8_t)recs[i].data_len;
		if (recs[i].data_len > 0)
			memcpy(p + 5, recs[i].data, recs[i].data_len);
		e[i] = (struct enc){ p, 5 + recs[i].data_len };
		off += e[i].len;
	}
	if (n > 1)
		qsort(e, n, sizeof(*e), enc_cmp);
	rc = TLSA_ERR_OPENSSL;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && enc_cmp(&e[i - 1], &e[i]) == 0)
			continue; /* an RRset is a set */
		if (EVP_DigestUpdate(md, e[i].p, e[i].len) != 1)
			goto out;
	}
	unsigned int olen = 0;
	if (EVP_DigestFinal_ex(md, out, &olen) != 1 || olen != 32)
		goto out;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	free(blob);
	free(e);
	return rc;
}

int
tlsa_qname(const char *base, uint16_t port, char *buf, size_t size)
{
	char name[TLSA_NAME_MAX + 1];
	if (buf == NULL || size == 0)
		return TLSA_ERR_INVAL;
	buf[0] = '\0';
	if (tlsa__name_copy(base, name) < 0)
		return TLSA_ERR_NAME;
	/* RFC 6698 3 / RFC 7672 2.2.3 (C41): _<port>._tcp.<base>. */
	struct tlsa__buf b;
	tlsa__buf_init(&b, buf, size);
	tlsa__buf_printf(&b, "_%u._tcp.", (unsigned)port);
	tlsa__buf_add(&b, name);
	if (b.overflow)
		return TLSA_ERR_SPACE;
	if (b.len > TLSA_NAME_MAX)
		return TLSA_ERR_NAME;
	return 0;
}
