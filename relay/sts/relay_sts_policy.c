/*
 * relay_sts_policy: RFC 8461 3.1 (TXT record), 3.2 (policy file) and 4.1
 * (MX patterns), as schemas over (pointer, length). Pure.
 */
#include "relay_sts_policy.h"

#include <string.h>

const char *
relay_sts_strerror(int err)
{
	switch (err) {
	case RELAY_STS_OK:
		return "ok";
	case RELAY_STS_ERR_SYNTAX:
		return "syntax error";
	case RELAY_STS_ERR_VERSION:
		return "not STSv1";
	case RELAY_STS_ERR_MODE:
		return "mode missing or unknown";
	case RELAY_STS_ERR_MAX_AGE:
		return "max_age missing or invalid";
	case RELAY_STS_ERR_MX:
		return "mx missing or invalid";
	case RELAY_STS_ERR_TOO_BIG:
		return "policy too large";
	default:
		return "unknown error";
	}
}

const char *
relay_sts_mode_name(enum relay_sts_mode m)
{
	switch (m) {
	case RELAY_STS_MODE_NONE:
		return "none";
	case RELAY_STS_MODE_TESTING:
		return "testing";
	case RELAY_STS_MODE_ENFORCE:
		return "enforce";
	}
	return "none";
}

static bool
is_alpha(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static bool
is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static uint8_t
lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c - 'A' + 'a') : c;
}

static bool
span_eq(const uint8_t *p, size_t len, const char *lit)
{
	size_t n = strlen(lit);
	return len == n && memcmp(p, lit, n) == 0;
}

static size_t
skip_wsp(const uint8_t *p, size_t len, size_t i)
{
	while (i < len && is_wsp(p[i]))
		i++;
	return i;
}

/* ------------------------------------------------------------ TXT, 3.1 */

/* sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
static bool
ext_name_ok(const uint8_t *p, size_t len)
{
	if (len < 1 || len > 32 || !(is_alpha(p[0]) || is_digit(p[0])))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(is_alpha(p[i]) || is_digit(p[i]) || p[i] == '_' ||
		        p[i] == '-' || p[i] == '.'))
			return false;
	return true;
}

/* sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E): no ';', no '=', no
 * spaces. */
static bool
ext_value_ok(const uint8_t *p, size_t len)
{
	if (len < 1)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ';' || p[i] == '=')
			return false;
	return true;
}

static int
txt_parse(const uint8_t *p, size_t len, char id[RELAY_STS_ID_MAX + 1])
{
	static const char version[] = "v=STSv1";
	const size_t vlen = sizeof(version) - 1;
	id[0] = '\0';
	/* sts-version = %s"v=STSv1", case-sensitive, first. */
	if (len < vlen || memcmp(p, version, vlen) != 0)
		return RELAY_STS_ERR_VERSION;
	size_t i = vlen;
	if (i < len && p[i] != ';' && !is_wsp(p[i]))
		return RELAY_STS_ERR_VERSION; /* "v=STSv10" */
	bool have_id = false;
	size_t fields = 0;
	for (;;) {
		/* 1*(*WSP %x3B *WSP sts-field) [%x3B] */
		i = skip_wsp(p, len, i);
		if (i == len)
			break;
		if (p[i] != ';')
			return RELAY_STS_ERR_SYNTAX;
		i = skip_wsp(p, len, i + 1);
		if (i == len)
			break; /* the optional final ';' (and spaces) */
		size_t start = i;
		while (i < len && p[i] != ';' && !is_wsp(p[i]))
			i++;
		const uint8_t *f = p + start;
		size_t flen = i - start;
		const uint8_t *eq = memchr(f, '=', flen);
		if (eq == NULL)
			return RELAY_STS_ERR_SYNTAX;
		size_t nlen = (size_t)(eq - f);
		const uint8_t *v = eq + 1;
		size_t vl = flen - nlen - 1;
		fields++;
		if (span_eq(f, nlen, "id")) {
			/* sts-id = %s"id=" 1*32(ALPHA / DIGIT) */
			if (vl < 1 || vl > RELAY_STS_ID_MAX)
				return RELAY_STS_ERR_SYNTAX;
			for (size_t k = 0; k < vl; k++)
				if (!is_alpha(v[k]) && !is_digit(v[k]))
					return RELAY_STS_ERR_SYNTAX;
			if (have_id)
				return RELAY_STS_ERR_SYNTAX; /* ambiguous */
			memcpy(id, v, vl);
			id[vl] = '\0';
			have_id = true;
		} else if (!ext_name_ok(f, nlen) || !ext_value_ok(v, vl)) {
			return RELAY_STS_ERR_SYNTAX;
		}
	}
	if (fields == 0 || !have_id) {
		id[0] = '\0';
		return RELAY_STS_ERR_SYNTAX;
	}
	return RELAY_STS_OK;
}

int
relay_sts_txt_parse(const uint8_t *p, size_t len, char id[RELAY_STS_ID_MAX + 1])
{
	int r = txt_parse(p, len, id);
	if (r != RELAY_STS_OK)
		id[0] = '\0'; /* no half-read id on any error */
	return r;
}

/* ------------------------------------------------------- policy, 3.2 */

/* A host name label run: letters, digits, '-', '_' between dots, 1..63
 * per label, at most 253 in all, no empty label. With wildcard, "*."
 * may lead (RFC 8461 3.2 sts-policy-mx-value, 4.1). */
static bool
mx_pattern_ok(const uint8_t *p, size_t len)
{
	size_t i = 0;
	if (len >= 2 && p[0] == '*' && p[1] == '.')
		i = 2;
	if (len - i < 1 || len > RELAY_STS_NAME_MAX - 1)
		return false;
	size_t label = 0;
	for (; i < len; i++) {
		uint8_t c = p[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

int
relay_sts_policy_parse(const uint8_t *p, size_t len,
    struct relay_sts_policy *out)
{
	memset(out, 0, sizeof(*out));
	if (len > RELAY_STS_BODY_MAX)
		return RELAY_STS_ERR_TOO_BIG;
	bool have_version = false, have_mode = false, have_max_age = false;
	size_t i = 0;
	while (i < len) {
		size_t eol = i;
		while (eol < len && p[eol] != '\n')
			eol++;
		size_t next = eol < len ? eol + 1 : eol;
		size_t end = eol;
		if (end > i && p[end - 1] == '\r')
			end--; /* CRLF */
		/* Trailing WSP belongs to no value. */
		while (end > i && is_wsp(p[end - 1]))
			end--;
		if (end == i) {
			/* An empty line: the grammar has none, but one at the
			 * end of a file is common and harmless. */
			i = next;
			continue;
		}
		const uint8_t *line = p + i;
		size_t llen = end - i;
		const uint8_t *colon = memchr(line, ':', llen);
		if (colon == NULL)
			return RELAY_STS_ERR_SYNTAX;
		size_t nlen = (size_t)(colon - line);
		/* sts-policy-ext-name = (ALPHA / DIGIT) *31(...) */
		if (!ext_name_ok(line, nlen))
			return RELAY_STS_ERR_SYNTAX;
		size_t v0 = skip_wsp(line, llen, nlen + 1);
		const uint8_t *v = line + v0;
		size_t vl = llen - v0;
		for (size_t k = 0; k < vl; k++)
			if (v[k] < 0x20 || v[k] == 0x7f)
				return RELAY_STS_ERR_SYNTAX;
		if (span_eq(line, nlen, "version")) {
			if (!have_version) {
				if (!span_eq(v, vl, "STSv1"))
					return RELAY_STS_ERR_VERSION;
				have_version = true;
			}
		} else if (span_eq(line, nlen, "mode")) {
			if (!have_mode) {
				if (span_eq(v, vl, "enforce"))
					out->mode = RELAY_STS_MODE_ENFORCE;
				else if (span_eq(v, vl, "testing"))
					out->mode = RELAY_STS_MODE_TESTING;
				else if (span_eq(v, vl, "none"))
					out->mode = RELAY_STS_MODE_NONE;
				else
					return RELAY_STS_ERR_MODE;
				have_mode = true;
			}
		} else if (span_eq(line, nlen, "max_age")) {
			if (!have_max_age) {
				/* sts-policy-max-age-value = 1*10(DIGIT) */
				if (vl < 1 || vl > 10)
					return RELAY_STS_ERR_MAX_AGE;
				uint64_t n = 0;
				for (size_t k = 0; k < vl; k++) {
					if (!is_digit(v[k]))
						return RELAY_STS_ERR_MAX_AGE;
					n = n * 10 + (uint64_t)(v[k] - '0');
				}
				out->max_age = n > RELAY_STS_MAX_AGE_CAP
				    ? RELAY_STS_MAX_AGE_CAP
				    : (uint32_t)n;
				have_max_age = true;
			}
		} else if (span_eq(line, nlen, "mx")) {
			if (!mx_pattern_ok(v, vl))
				return RELAY_STS_ERR_MX;
			if (out->n_mx >= RELAY_STS_MX_MAX)
				return RELAY_STS_ERR_TOO_BIG;
			char *dst = out->mx[out->n_mx++];
			for (size_t k = 0; k < vl; k++)
				dst[k] = (char)lower(v[k]);
			dst[vl] = '\0';
		}
		/* Any other field is an extension: ignored (3.2). */
		i = next;
	}
	if (!have_version)
		return RELAY_STS_ERR_VERSION;
	if (!have_mode)
		return RELAY_STS_ERR_MODE;
	if (!have_max_age)
		return RELAY_STS_ERR_MAX_AGE;
	if (out->mode != RELAY_STS_MODE_NONE && out->n_mx == 0)
		return RELAY_STS_ERR_MX;
	return RELAY_STS_OK;
}

/* ---------------------------------------------------- MX patterns, 4.1 */

static bool
name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (lower((uint8_t)a[i]) != lower((uint8_t)b[i]))
			return false;
	return true;
}

bool
relay_sts_mx_match(const struct relay_sts_policy *pol, const char *host)
{
	size_t hl = strlen(host);
	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (hl == 0)
		return false;
	for (size_t i = 0; i < pol->n_mx; i++) {
		const char *pat = pol->mx[i];
		size_t pl = strlen(pat);
		if (pl >= 2 && pat[0] == '*' && pat[1] == '.') {
			/* RFC 8461 4.1: the wildcard stands for exactly one
			 * leftmost label: drop the host's first label and
			 * compare the rest. */
			const char *dot = memchr(host, '.', hl);
			if (dot == NULL || dot == host)
				continue;
			size_t rest = hl - (size_t)(dot + 1 - host);
			if (name_eq(dot + 1, rest, pat + 2, pl - 2))
				return true;
		} else if (name_eq(host, hl, pat, pl)) {
			return true;
		}
	}
	return false;
}

bool
relay_sts_media_type_ok(const char *ct)
{
	static const char want[] = "text/plain";
	if (ct == NULL)
		return false;
	size_t n = sizeof(want) - 1;
	for (size_t i = 0; i < n; i++)
		if (ct[i] == '\0' || lower((uint8_t)ct[i]) != (uint8_t)want[i])
			return false;
	const char *rest = ct + n;
	while (*rest == ' ' || *rest == '\t')
		rest++;
	return *rest == '\0' || *rest == ';';
}
