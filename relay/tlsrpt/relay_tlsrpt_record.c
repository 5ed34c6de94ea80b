/*
 * relay_tlsrpt_record: the policy domain's TLSRPT record (RFC 8460 3).
 *
 *   tlsrpt-record    = tlsrpt-version 1*(field-delim tlsrpt-field)
 *                      [field-delim]
 *   field-delim      = *WSP ";" *WSP
 *   tlsrpt-field     = tlsrpt-rua / tlsrpt-extension
 *   tlsrpt-version   = %s"v=TLSRPTv1"
 *   tlsrpt-rua       = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
 *   tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
 *   tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
 *
 * A parser written as that schema: it takes the bytes, returns URIs, never
 * allocates. Commas inside a URI are %-encoded (3), so a comma always
 * separates URIs.
 */
#include <string.h>

#include "relay_text.h"
#include "relay_tlsrpt.h"

static bool
is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

bool
relay_tlsrpt_record_is_tlsrpt(const uint8_t *p, size_t len)
{
	static const char v[] = "v=TLSRPTv1";
	size_t n = sizeof(v) - 1;
	if (len < n || memcmp(p, v, n) != 0)
		return false;
	return len == n || p[n] == ';' || is_wsp(p[n]);
}

static bool
prefix_ci(const uint8_t *p, size_t len, const char *pre)
{
	size_t n = strlen(pre);
	if (len < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if (c != (uint8_t)pre[i])
			return false;
	}
	return true;
}

/* One URI of rua=. Unknown schemes are skipped (0, nothing added). */
static int
add_uri(struct relay_tlsrpt_record *out, const uint8_t *p, size_t len)
{
	if (len == 0)
		return RELAY_TLSRPT_EFORMAT;
	for (size_t i = 0; i < len; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f)
			return RELAY_TLSRPT_EFORMAT;
	struct relay_tlsrpt_rua u;
	memset(&u, 0, sizeof(u));
	if (prefix_ci(p, len, "mailto:")) {
		/* RFC 6068: the address, %-decoded; headers (?...) are not
		 * for us. */
		u.kind = RELAY_TLSRPT_RUA_MAILTO;
		size_t o = 0;
		for (size_t i = 7; i < len && p[i] != '?'; i++) {
			uint8_t c = p[i];
			if (c == '%') {
				if (i + 2 >= len ||
				    relay_hex_digit(p[i + 1]) < 0 ||
				    relay_hex_digit(p[i + 2]) < 0)
					return RELAY_TLSRPT_EFORMAT;
				c = (uint8_t)(relay_hex_digit(p[i + 1]) * 16 +
				    relay_hex_digit(p[i + 2]));
				i += 2;
				if (c <= 0x20 || c >= 0x7f || c == '<' ||
				    c == '>')
					return RELAY_TLSRPT_EFORMAT;
			}
			if (o + 1 >= sizeof(u.uri))
				return RELAY_TLSRPT_EFORMAT;
			u.uri[o++] = (char)c;
		}
		u.uri[o] = '\0';
		const char *at = strchr(u.uri, '@');
		if (at == NULL || at == u.uri || at[1] == '\0' ||
		    strchr(at + 1, '@') != NULL)
			return RELAY_TLSRPT_EFORMAT;
	} else if (prefix_ci(p, len, "https://")) {
		u.kind = RELAY_TLSRPT_RUA_HTTPS;
		if (len <= 8 || len >= sizeof(u.uri))
			return RELAY_TLSRPT_EFORMAT;
		memcpy(u.uri, p, len);
		u.uri[len] = '\0';
	} else {
		return 0;
	}
	if (out->nrua < RELAY_TLSRPT_RUA_MAX)
		out->rua[out->nrua++] = u;
	return 0;
}

static int
parse_rua(struct relay_tlsrpt_record *out, const uint8_t *p, size_t len)
{
	size_t i = 0;
	for (;;) {
		size_t s = i;
		while (i < len && p[i] != ',' && !is_wsp(p[i]))
			i++;
		int r = add_uri(out, p + s, i - s);
		if (r != 0)
			return r;
		while (i < len && is_wsp(p[i]))
			i++;
		if (i == len)
			return 0;
		if (p[i] != ',')
			return RELAY_TLSRPT_EFORMAT;
		i++;
		while (i < len && is_wsp(p[i]))
			i++;
	}
}

int
relay_tlsrpt_record_parse(const uint8_t *p, size_t len,
    struct relay_tlsrpt_record *out)
{
	memset(out, 0, sizeof(*out));
	if (!relay_tlsrpt_record_is_tlsrpt(p, len))
		return RELAY_TLSRPT_EFORMAT;
	size_t i = 10; /* "v=TLSRPTv1" */
	bool have_rua = false;
	size_t nfields = 0;
	for (;;) {
		/* field-delim, or the end (after at least one field, the
		 * record may end with a delimiter). */
		while (i < len && is_wsp(p[i]))
			i++;
		if (i == len)
			break;
		if (p[i] != ';')
			return RELAY_TLSRPT_EFORMAT;
		i++;
		while (i < len && is_wsp(p[i]))
			i++;
		if (i == len) {
			if (nfields == 0)
				return RELAY_TLSRPT_EFORMAT;
			break;
		}
		size_t s = i;
		while (i < len && p[i] != ';')
			i++;
		size_t e = i;
		while (e > s && is_wsp(p[e - 1]))
			e--;
		const uint8_t *f = p + s;
		size_t flen = e - s;
		const uint8_t *eq = memchr(f, '=', flen);
		if (eq == NULL || eq == f)
			return RELAY_TLSRPT_EFORMAT;
		nfields++;
		if ((size_t)(eq - f) == 3 && memcmp(f, "rua", 3) == 0) {
			if (have_rua)
				return RELAY_TLSRPT_EFORMAT;
			have_rua = true;
			int r =
			    parse_rua(out, eq + 1, flen - (size_t)(eq - f) - 1);
			if (r != 0)
				return r;
		} else {
			/* tlsrpt-extension: ignored, but must be well formed. */
			for (const uint8_t *c = eq + 1; c < f + flen; c++)
				if (*c < 0x21 || *c > 0x7e || *c == '=' ||
				    *c == ';')
					return RELAY_TLSRPT_EFORMAT;
			if (eq + 1 == f + flen)
				return RELAY_TLSRPT_EFORMAT;
		}
	}
	/* RFC 8460 3: rua is required; one we cannot use is as good as none. */
	if (!have_rua || out->nrua == 0)
		return RELAY_TLSRPT_EFORMAT;
	return 0;
}
