/* Shared helpers of tlsa/: names, bounded text, enum names, strerror. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsa_int.h"

void
tlsa__abort(const char *file, int line, const char *cond)
{
	fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, cond);
	abort();
}

static bool
name_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int
tlsa__name_copy(const char *name, char out[TLSA_NAME_MAX + 1])
{
	if (name == NULL)
		return TLSA_ERR_NAME;
	size_t len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	/* RFC 1035 2.3.4: 253 characters in presentation form, labels 1..63. */
	if (len == 0 || len > TLSA_NAME_MAX)
		return TLSA_ERR_NAME;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return TLSA_ERR_NAME;
			label = 0;
		} else if (name_char_ok(c)) {
			if (++label > 63)
				return TLSA_ERR_NAME;
		} else {
			return TLSA_ERR_NAME;
		}
		out[i] =
		    (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
	}
	out[len] = '\0';
	return 0;
}

bool
tlsa__name_eq(const char *a, const char *b)
{
	char x[TLSA_NAME_MAX + 1], y[TLSA_NAME_MAX + 1];
	if (tlsa__name_copy(a, x) < 0 || tlsa__name_copy(b, y) < 0)
		return false;
	return strcmp(x, y) == 0;
}

void
tlsa__buf_init(struct tlsa__buf *b, char *p, size_t size)
{
	b->p = p;
	b->size = size;
	b->len = 0;
	b->overflow = size == 0;
	if (size > 0)
		p[0] = '\0';
}

static void
buf_putc(struct tlsa__buf *b, char c)
{
	if (b->overflow || b->len + 1 >= b->size) {
		b->overflow = true;
		return;
	}
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
}

void
tlsa__buf_add(struct tlsa__buf *b, const char *s)
{
	for (; *s != '\0'; s++)
		buf_putc(b, *s);
}

void
tlsa__buf_printf(struct tlsa__buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (w < 0) {
		b->overflow = true;
		return;
	}
	tlsa__buf_add(b, tmp);
	if ((size_t)w >= sizeof(tmp))
		b->overflow = true;
}

void
tlsa__buf_quoted(struct tlsa__buf *b, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	buf_putc(b, '"');
	size_t i = 0;
	for (; s[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)c);
		} else if (c >= 0x20 && c < 0x7f) {
			buf_putc(b, (char)c);
		} else {
			buf_putc(b, '\\');
			buf_putc(b, 'x');
			buf_putc(b, hex[c >> 4]);
			buf_putc(b, hex[c & 15]);
		}
	}
	if (s[i] != '\0')
		tlsa__buf_add(b, "..");
	buf_putc(b, '"');
}

void
tlsa__buf_hex(struct tlsa__buf *b, const uint8_t *p, size_t n, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0;
	for (; i < n && i < max; i++) {
		buf_putc(b, hex[p[i] >> 4]);
		buf_putc(b, hex[p[i] & 15]);
	}
	if (i < n)
		tlsa__buf_add(b, "..");
}

void
tlsa__record_text(const struct tlsa_record *r, char *out, size_t size)
{
	TLSA__ASSERT(size >= 16);
	struct tlsa__buf b;
	tlsa__buf_init(&b, out, size);
	tlsa__buf_printf(&b, "%u %u %u ", r->usage, r->selector, r->mtype);
	/* Leave room for "..": hex digits are 2 per byte. */
	size_t room = (size - 1 - b.len);
	size_t max = r->data_len * 2 <= room ? r->data_len
	                                     : (room > 2 ? (room - 2) / 2 : 0);
	tlsa__buf_hex(&b, r->data, r->data_len, max);
}

const char *
tlsa_strerror(int err)
{
	switch ((enum tlsa_err)err) {
	case TLSA_OK:
		return "success";
	case TLSA_ERR_NOMEM:
		return "out of memory";
	case TLSA_ERR_TRUNCATED:
		return "TLSA rdata truncated";
	case TLSA_ERR_INVAL:
		return "invalid argument";
	case TLSA_ERR_NAME:
		return "invalid DNS name";
	case TLSA_ERR_SYNTAX:
		return "syntax error";
	case TLSA_ERR_TOO_MANY:
		return "limit exceeded";
	case TLSA_ERR_OPENSSL:
		return "OpenSSL error";
	case TLSA_ERR_SPACE:
		return "output buffer too small";
	case TLSA_ERR_INCOMPLETE:
		return "TLSA lookups incomplete";
	}
	return "unknown error";
}

const char *
tlsa_unusable_name(enum tlsa_unusable u)
{
	switch (u) {
	case TLSA_USABLE:
		return "usable";
	case TLSA_UNUSABLE_PKIX_USAGE:
		return "pkix-usage";
	case TLSA_UNUSABLE_USAGE:
		return "unknown-usage";
	case TLSA_UNUSABLE_SELECTOR:
		return "unknown-selector";
	case TLSA_UNUSABLE_MTYPE:
		return "unsupported-mtype";
	case TLSA_UNUSABLE_PRIVATE_MTYPE:
		return "private-mtype";
	case TLSA_UNUSABLE_DIGEST_LENGTH:
		return "digest-length";
	case TLSA_UNUSABLE_MALFORMED_FULL:
		return "malformed-full";
	case TLSA_UNUSABLE_SUPERSEDED:
		return "superseded-digest";
	}
	return "?";
}

const char *
tlsa_level_name(enum tlsa_level l)
{
	switch (l) {
	case TLSA_LEVEL_DANE:
		return "dane";
	case TLSA_LEVEL_DANE_ONLY:
		return "dane-only";
	case TLSA_LEVEL_MAY:
		return "may";
	case TLSA_LEVEL_ENCRYPT:
		return "encrypt";
	case TLSA_LEVEL_VERIFY:
		return "verify";
	}
	return "?";
}

int
tlsa_level_parse(const char *s, size_t len, enum tlsa_level *out)
{
	static const enum tlsa_level all[] = { TLSA_LEVEL_DANE,
		TLSA_LEVEL_DANE_ONLY, TLSA_LEVEL_MAY, TLSA_LEVEL_ENCRYPT,
		TLSA_LEVEL_VERIFY };
	if (s == NULL || out == NULL)
		return TLSA_ERR_INVAL;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const char *n = tlsa_level_name(all[i]);
		if (strlen(n) == len && memcmp(n, s, len) == 0) {
			*out = all[i];
			return 0;
		}
	}
	/* "none" is refused on purpose: see tlsa.h and README.md. */
	return TLSA_ERR_SYNTAX;
}

const char *
tlsa_failure_name(enum tlsa_failure f)
{
	switch (f) {
	case TLSA_FAIL_NONE:
		return "none";
	case TLSA_FAIL_STARTTLS_NOT_SUPPORTED:
		return "starttls-not-supported";
	case TLSA_FAIL_CERT_HOST_MISMATCH:
		return "certificate-host-mismatch";
	case TLSA_FAIL_CERT_EXPIRED:
		return "certificate-expired";
	case TLSA_FAIL_CERT_NOT_TRUSTED:
		return "certificate-not-trusted";
	case TLSA_FAIL_VALIDATION:
		return "validation-failure";
	case TLSA_FAIL_TLSA_INVALID:
		return "tlsa-invalid";
	case TLSA_FAIL_DNSSEC_INVALID:
		return "dnssec-invalid";
	case TLSA_FAIL_DANE_REQUIRED:
		return "dane-required";
	case TLSA_FAIL_DNS_ERROR:
		return "dns-error";
	case TLSA_FAIL_HOST_NOT_FOUND:
		return "host-not-found";
	case TLSA_FAIL_NULL_MX:
		return "null-mx";
	}
	return "?";
}

const char *
tlsa_dest_action_name(enum tlsa_dest_action a)
{
	switch (a) {
	case TLSA_DEST_USE_MX:
		return "mx";
	case TLSA_DEST_IMPLICIT:
		return "implicit-mx";
	case TLSA_DEST_LITERAL:
		return "literal";
	case TLSA_DEST_DEFER:
		return "defer";
	case TLSA_DEST_BOUNCE:
		return "bounce";
	}
	return "?";
}

const char *
tlsa_verdict_kind_name(enum tlsa_verdict_kind k)
{
	switch (k) {
	case TLSA_VERDICT_DANE:
		return "dane";
	case TLSA_VERDICT_ENCRYPT:
		return "encrypt";
	case TLSA_VERDICT_MAY:
		return "may";
	case TLSA_VERDICT_VERIFY:
		return "verify";
	case TLSA_VERDICT_DO_NOT_CONNECT:
		return "do-not-connect";
	}
	return "?";
}

const char *
tlsa_trust_name(enum tlsa_trust t)
{
	switch (t) {
	case TLSA_TRUST_NONE:
		return "none";
	case TLSA_TRUST_UNTRUSTED:
		return "Untrusted";
	case TLSA_TRUST_TRUSTED:
		return "Trusted";
	case TLSA_TRUST_VERIFIED:
		return "Verified";
	}
	return "?";
}

const char *
tlsa_auth_name(enum tlsa_auth a)
{
	switch (a) {
	case TLSA_AUTH_NONE:
		return "none";
	case TLSA_AUTH_MAY:
		return "may";
	case TLSA_AUTH_ENCRYPT:
		return "encrypt";
	case TLSA_AUTH_VERIFIED:
		return "verified";
	case TLSA_AUTH_DANE_EE:
		return "dane-ee";
	case TLSA_AUTH_DANE_TA:
		return "dane-ta";
	}
	return "?";
}
