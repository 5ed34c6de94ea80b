/* Mailbox and path parser: RFC 5321 4.1.2, RFC 6531 3.3 (UTF-8). */
#include <arpa/inet.h>
#include <string.h>

#include "smtp_int.h"

/* RFC 5322 3.2.3 atext (RFC 5321 4.1.2 uses it for Atom). */
static bool
atext(uint8_t c)
{
	if (smtp__is_alpha(c) || smtp__is_digit(c))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Consumes a UTF-8 non-ASCII sequence at p[i] if allowed; returns its
 * length, 0 when p[i] is ASCII, -1 when invalid or not allowed. */
static int
utf8_at(const uint8_t *p, size_t i, size_t len, unsigned flags,
    struct smtp_addr *a)
{
	if (p[i] < 0x80)
		return 0;
	if (!(flags & SMTP_ADDR_UTF8))
		return -1;
	size_t n = smtp__utf8_seq(p + i, len - i);
	if (n == 0)
		return -1;
	a->utf8 = true;
	return (int)n;
}

/* Local-part = Dot-string / Quoted-string. Returns end index or <0. */
static long
parse_local(const uint8_t *p, size_t i, size_t len, unsigned flags,
    struct smtp_addr *a)
{
	size_t start = i;
	if (i < len && p[i] == '"') {
		/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE */
		a->quoted = true;
		i++;
		for (;;) {
			if (i >= len)
				return SMTP_ERR_ADDR;
			uint8_t c = p[i];
			if (c == '"') {
				i++;
				break;
			}
			if (c == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				if (i + 1 >= len || p[i + 1] < 32 ||
				    p[i + 1] > 126)
					return SMTP_ERR_ADDR;
				i += 2;
				continue;
			}
			int u = utf8_at(p, i, len, flags, a);
			if (u < 0)
				return SMTP_ERR_ADDR;
			if (u > 0) {
				i += (size_t)u;
				continue;
			}
			/* qtextSMTP = %d32-33 / %d35-91 / %d93-126 */
			if (c < 32 || c > 126)
				return SMTP_ERR_ADDR;
			i++;
		}
	} else {
		/* Dot-string = Atom *("." Atom) */
		bool need_atext = true;
		for (;;) {
			if (i >= len)
				break;
			uint8_t c = p[i];
			int u = utf8_at(p, i, len, flags, a);
			if (u < 0)
				return SMTP_ERR_ADDR;
			if (u > 0) {
				i += (size_t)u;
				need_atext = false;
				continue;
			}
			if (atext(c)) {
				i++;
				need_atext = false;
			} else if (c == '.' && !need_atext) {
				i++;
				need_atext = true;
			} else {
				break;
			}
		}
		if (need_atext)
			return SMTP_ERR_ADDR; /* empty, or ends with "." */
	}
	/* RFC 5321 4.5.3.1.1 */
	if (i - start > SMTP_LOCAL_PART_MAX)
		return SMTP_ERR_TOO_LONG;
	a->local.p = p + start;
	a->local.len = i - start;
	return (long)i;
}

static bool
ipv4_literal(const uint8_t *p, size_t len)
{
	/* IPv4-address-literal = Snum 3("." Snum); Snum = 1*3DIGIT, 0-255 */
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || p[i] != '.')
				return false;
			i++;
		}
		unsigned v = 0;
		size_t n = 0;
		while (i < len && smtp__is_digit(p[i]) && n < 4) {
			v = v * 10 + (unsigned)(p[i] - '0');
			i++;
			n++;
		}
		if (n == 0 || n > 3 || v > 255)
			return false;
	}
	return i == len;
}

static bool
ipv6_literal(const uint8_t *p, size_t len)
{
	/* IPv6-address-literal = "IPv6:" IPv6-addr (RFC 5321 4.1.3) */
	char tmp[64];
	unsigned char bin[16];
	if (len < 5 || !smtp__ieq(p, 5, "IPv6:") || len - 5 >= sizeof(tmp))
		return false;
	for (size_t i = 5; i < len; i++)
		if (!(smtp__is_digit(p[i]) ||
		        strchr("abcdefABCDEF:.", p[i]) != NULL) ||
		    p[i] == 0)
			return false;
	memcpy(tmp, p + 5, len - 5);
	tmp[len - 5] = '\0';
	return inet_pton(AF_INET6, tmp, bin) == 1;
}

/* Domain / address-literal. Returns end index or <0. Sets a->domain. */
static long
parse_domain(const uint8_t *p, size_t i, size_t len, unsigned flags,
    struct smtp_addr *a, bool allow_trailing_dot)
{
	size_t start = i;
	if (i < len && p[i] == '[') {
		size_t j = i + 1;
		while (j < len && p[j] != ']' && p[j] != '[' && p[j] != '\\')
			j++;
		if (j >= len || p[j] != ']')
			return SMTP_ERR_ADDR;
		const uint8_t *lit = p + i + 1;
		size_t litlen = j - i - 1;
		if (!ipv4_literal(lit, litlen) && !ipv6_literal(lit, litlen))
			return SMTP_ERR_ADDR;
		a->literal = true;
		a->domain.p = p + start;
		a->domain.len = j + 1 - start;
		return (long)(j + 1);
	}
	/* Domain = sub-domain *("." sub-domain)
	 * sub-domain = Let-dig [Ldh-str] (RFC 6531 3.3: / U-label) */
	size_t end = i;
	for (;;) {
		size_t ls = i;
		uint8_t prev = 0;
		while (i < len) {
			int u = utf8_at(p, i, len, flags, a);
			if (u < 0)
				return SMTP_ERR_ADDR;
			if (u > 0) {
				i += (size_t)u;
				prev = 0x80;
				continue;
			}
			uint8_t c = p[i];
			if (smtp__is_alpha(c) || smtp__is_digit(c) ||
			    (c == '-' && i > ls)) {
				prev = c;
				i++;
				continue;
			}
			break;
		}
		if (i == ls) {
			/* An empty label: allowed only as the one trailing dot. */
			if (allow_trailing_dot && end > start && i == end + 1 &&
			    p[i - 1] == '.')
				break;
			return SMTP_ERR_ADDR;
		}
		if (prev == '-')
			return SMTP_ERR_ADDR;
		if (i - ls > SMTP_LABEL_MAX)
			return SMTP_ERR_TOO_LONG;
		end = i;
		if (i < len && p[i] == '.') {
			i++;
			continue;
		}
		break;
	}
	/* RFC 5321 4.5.3.1.2 */
	if (end - start > SMTP_DOMAIN_MAX)
		return SMTP_ERR_TOO_LONG;
	a->domain.p = p + start;
	a->domain.len = end - start;
	return (long)i;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ). */
static long
parse_mailbox(const uint8_t *p, size_t i, size_t len, unsigned flags,
    struct smtp_addr *a)
{
	size_t start = i;
	long r = parse_local(p, i, len, flags, a);
	if (r < 0)
		return r;
	i = (size_t)r;
	if (i >= len || p[i] != '@')
		return SMTP_ERR_ADDR;
	i++;
	r = parse_domain(p, i, len, flags, a, true);
	if (r < 0)
		return r;
	i = (size_t)r;
	a->mailbox.p = p + start;
	a->mailbox.len = i - start;
	return (long)i;
}

int
smtp_addr_parse_path(const uint8_t *p, size_t len, unsigned flags,
    struct smtp_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (len < 2 || p[0] != '<')
		return SMTP_ERR_ADDR;
	size_t i = 1;
	if (p[i] == '>') {
		if (!(flags & SMTP_ADDR_NULL_OK))
			return SMTP_ERR_ADDR;
		a->null = true;
		return 2;
	}
	/* RFC 5321 4.1.2 and 3.3 C.: A-d-l = At-domain *( "," At-domain ) is
	 * accepted and ignored. */
	if (p[i] == '@') {
		struct smtp_addr tmp;
		for (;;) {
			if (i >= len || p[i] != '@')
				return SMTP_ERR_ADDR;
			memset(&tmp, 0, sizeof(tmp));
			long r =
			    parse_domain(p, i + 1, len, flags, &tmp, false);
			if (r < 0)
				return r == SMTP_ERR_TOO_LONG
				    ? SMTP_ERR_TOO_LONG
				    : SMTP_ERR_ADDR;
			i = (size_t)r;
			if (i < len && p[i] == ',') {
				i++;
				continue;
			}
			if (i < len && p[i] == ':') {
				i++;
				break;
			}
			return SMTP_ERR_ADDR;
		}
	}
	/* RFC 5321 4.1.1.3: "<Postmaster>" without a domain. */
	if ((flags & SMTP_ADDR_POSTMASTER) && len - i >= 11 &&
	    smtp__ieq(p + i, 10, "postmaster") && p[i + 10] == '>') {
		a->postmaster = true;
		a->local.p = p + i;
		a->local.len = 10;
		a->mailbox = a->local;
		return (int)(i + 11);
	}
	long r = parse_mailbox(p, i, len, flags, a);
	if (r < 0)
		return (int)r;
	i = (size_t)r;
	if (i >= len || p[i] != '>')
		return SMTP_ERR_ADDR;
	i++;
	/* RFC 5321 4.5.3.1.3: 256 octets including the punctuation. */
	if (a->mailbox.len + 2 > SMTP_PATH_MAX)
		return SMTP_ERR_TOO_LONG;
	return (int)i;
}

int
smtp_addr_parse_mailbox(const uint8_t *p, size_t len, unsigned flags,
    struct smtp_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (len == 0) {
		if (!(flags & SMTP_ADDR_NULL_OK))
			return SMTP_ERR_ADDR;
		a->null = true;
		return 0;
	}
	long r = parse_mailbox(p, 0, len, flags, a);
	if (r < 0)
		return (int)r;
	if ((size_t)r != len)
		return SMTP_ERR_ADDR;
	if (a->mailbox.len + 2 > SMTP_PATH_MAX)
		return SMTP_ERR_TOO_LONG;
	return 0;
}

int
smtp_addr_domain(const struct smtp_addr *a, char *out, size_t outlen)
{
	if (a->null || a->postmaster)
		return SMTP_ERR_INVAL;
	if (a->domain.len + 1 > outlen)
		return SMTP_ERR_FULL;
	for (size_t i = 0; i < a->domain.len; i++)
		out[i] = (char)(a->literal ? a->domain.p[i]
		                           : smtp__lower(a->domain.p[i]));
	out[a->domain.len] = '\0';
	return (int)a->domain.len;
}

int
smtp_addr_format(const struct smtp_addr *a, char *out, size_t outlen)
{
	if (outlen == 0)
		return SMTP_ERR_FULL;
	if (a->null) {
		out[0] = '\0';
		return 0;
	}
	if (a->postmaster) {
		if (outlen < 11)
			return SMTP_ERR_FULL;
		memcpy(out, "Postmaster", 11);
		return 10;
	}
	size_t need = a->local.len + 1 + a->domain.len;
	if (need + 1 > outlen)
		return SMTP_ERR_FULL;
	memcpy(out, a->local.p, a->local.len);
	out[a->local.len] = '@';
	int n = smtp_addr_domain(a, out + a->local.len + 1,
	    outlen - a->local.len - 1);
	if (n < 0)
		return n;
	return (int)need;
}
