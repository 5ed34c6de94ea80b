/*
 * relay_dns_ta: syntax check of a trust anchor file (relay_dns_ta.h).
 */
#include "relay_dns_ta.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Tokens one record may have: owner, TTL, class, type and a key split in
 * many pieces (zone files wrap long base64 keys inside parentheses). */
#define TA_TOKENS_MAX 256

struct ta_tok {
	const char *p;
	size_t len;
};

static bool
tok_is(const struct ta_tok *t, const char *word)
{
	size_t n = strlen(word);
	if (t->len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = t->p[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c != word[i])
			return false;
	}
	return true;
}

static bool
tok_uint(const struct ta_tok *t, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	if (t->len == 0 || t->len > 10)
		return false;
	for (size_t i = 0; i < t->len; i++) {
		if (t->p[i] < '0' || t->p[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(t->p[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* A TTL: digits, or BIND's units (1d, 2h30m). */
static bool
tok_ttl(const struct ta_tok *t)
{
	if (t->len == 0 || t->p[0] < '0' || t->p[0] > '9')
		return false;
	for (size_t i = 0; i < t->len; i++) {
		char c = t->p[i];
		if (!((c >= '0' && c <= '9') ||
		        strchr("smhdwSMHDW", c) != NULL))
			return false;
	}
	return true;
}

static int
fail(struct relay_dns_ta_result *res, unsigned line, const char *why)
{
	res->line = line;
	(void)snprintf(res->why, sizeof(res->why), "%s", why);
	return -1;
}

/* The rdata tokens t[0..n) of one DS (RFC 4034 5.3): key tag, algorithm,
 * digest type, digest in hex (may be split in several tokens). */
static bool
ds_ok(const struct ta_tok *t, size_t n, const char **why)
{
	unsigned long v;
	size_t hex = 0;

	if (n < 4) {
		*why = "DS needs key tag, algorithm, digest type and digest";
		return false;
	}
	if (!tok_uint(&t[0], 65535, &v) || !tok_uint(&t[1], 255, &v) ||
	    !tok_uint(&t[2], 255, &v)) {
		*why = "DS key tag, algorithm or digest type is not a number "
		       "in range";
		return false;
	}
	for (size_t i = 3; i < n; i++)
		for (size_t k = 0; k < t[i].len; k++) {
			char c = t[i].p[k];
			if (!((c >= '0' && c <= '9') ||
			        (c >= 'a' && c <= 'f') ||
			        (c >= 'A' && c <= 'F'))) {
				*why = "DS digest is not hexadecimal";
				return false;
			}
			hex++;
		}
	if (hex % 2 != 0) {
		*why = "DS digest has an odd number of hex digits";
		return false;
	}
	return true;
}

/* The rdata of one DNSKEY (RFC 4034 2.2): flags, protocol 3, algorithm,
 * public key in base64 (may be split). */
static bool
dnskey_ok(const struct ta_tok *t, size_t n, const char **why)
{
	unsigned long v, proto;
	size_t b64 = 0;

	if (n < 4) {
		*why = "DNSKEY needs flags, protocol, algorithm and key";
		return false;
	}
	if (!tok_uint(&t[0], 65535, &v) || !tok_uint(&t[1], 255, &proto) ||
	    !tok_uint(&t[2], 255, &v)) {
		*why = "DNSKEY flags, protocol or algorithm is not a number "
		       "in range";
		return false;
	}
	/* RFC 4034 2.1.2: the Protocol Field MUST have value 3. */
	if (proto != 3) {
		*why = "DNSKEY protocol is not 3";
		return false;
	}
	for (size_t i = 3; i < n; i++)
		for (size_t k = 0; k < t[i].len; k++) {
			char c = t[i].p[k];
			if (!((c >= '0' && c <= '9') ||
			        (c >= 'a' && c <= 'z') ||
			        (c >= 'A' && c <= 'Z') || c == '+' ||
			        c == '/' || c == '=')) {
				*why = "DNSKEY key is not base64";
				return false;
			}
			b64++;
		}
	if (b64 % 4 != 0) {
		*why = "DNSKEY key is not base64 (length)";
		return false;
	}
	return true;
}

/* One record, tokens t[0..n) from line. */
static int
record(const struct ta_tok *t, size_t n, unsigned line,
    struct relay_dns_ta_result *res)
{
	size_t i = 1; /* t[0] is the owner (RFC 1035 5.1) */
	const char *why = NULL;

	if (tok_is(&t[0], "$ORIGIN") || tok_is(&t[0], "$TTL"))
		return 0;
	if (t[0].p[0] == '$')
		return fail(res, line, "unsupported directive");
	/* [TTL] [class] or [class] [TTL], then the type. */
	for (int k = 0; k < 2 && i < n; k++) {
		if (tok_ttl(&t[i]) || tok_is(&t[i], "IN"))
			i++;
	}
	if (i >= n)
		return fail(res, line, "record without a type");
	if (tok_is(&t[i], "DS")) {
		if (!ds_ok(t + i + 1, n - i - 1, &why))
			return fail(res, line, why);
		res->ds++;
		return 0;
	}
	if (tok_is(&t[i], "DNSKEY")) {
		if (!dnskey_ok(t + i + 1, n - i - 1, &why))
			return fail(res, line, why);
		res->dnskey++;
		return 0;
	}
	return fail(res, line, "not a DS or DNSKEY record");
}

int
relay_dns_ta_check(const uint8_t *p, size_t len,
    struct relay_dns_ta_result *res)
{
	struct ta_tok t[TA_TOKENS_MAX];
	size_t n = 0;
	unsigned line = 1, rec_line = 1;
	int depth = 0;
	size_t i = 0;

	memset(res, 0, sizeof(*res));
	while (i <= len) {
		char c = i < len ? (char)p[i] : '\n';
		if (c == '\0')
			return fail(res, line, "NUL byte in the file");
		if (c == ';') {
			while (i < len && p[i] != '\n')
				i++;
			continue;
		}
		if (c == '\n') {
			if (depth == 0 && n > 0) {
				if (record(t, n, rec_line, res) != 0)
					return -1;
				n = 0;
			}
			if (i == len)
				break;
			line++;
			i++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r') {
			i++;
			continue;
		}
		if (c == '(' || c == ')') {
			depth += c == '(' ? 1 : -1;
			if (depth < 0 || depth > 1)
				return fail(res, line,
				    "unbalanced parentheses");
			i++;
			continue;
		}
		if (c == '"')
			return fail(res, line, "quoted text in a trust anchor");
		size_t start = i;
		while (i < len && p[i] != ' ' && p[i] != '\t' && p[i] != '\r' &&
		    p[i] != '\n' && p[i] != ';' && p[i] != '(' && p[i] != ')' &&
		    p[i] != '\0')
			i++;
		if (n == TA_TOKENS_MAX)
			return fail(res, line, "record too long");
		if (n == 0)
			rec_line = line;
		t[n].p = (const char *)p + start;
		t[n].len = i - start;
		n++;
	}
	if (depth != 0)
		return fail(res, rec_line, "unbalanced parentheses");
	if (res->ds + res->dnskey == 0)
		return fail(res, 0, "no DS or DNSKEY record");
	return 0;
}
