/* Command lines: scanner, parser (RFC 5321 4.1.1), ESMTP parameters, and
 * the formatter the client uses. */
#include <string.h>

#include "smtp_int.h"

static const char *const verb_names[] = {
	[SMTP_VERB_HELO] = "HELO",
	[SMTP_VERB_EHLO] = "EHLO",
	[SMTP_VERB_MAIL] = "MAIL",
	[SMTP_VERB_RCPT] = "RCPT",
	[SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_BDAT] = "BDAT",
	[SMTP_VERB_RSET] = "RSET",
	[SMTP_VERB_NOOP] = "NOOP",
	[SMTP_VERB_QUIT] = "QUIT",
	[SMTP_VERB_VRFY] = "VRFY",
	[SMTP_VERB_EXPN] = "EXPN",
	[SMTP_VERB_HELP] = "HELP",
	[SMTP_VERB_STARTTLS] = "STARTTLS",
};

const char *
smtp_verb_name(enum smtp_verb v)
{
	if ((size_t)v < sizeof(verb_names) / sizeof(verb_names[0]) &&
	    verb_names[v] != NULL)
		return verb_names[v];
	return "?";
}

int
smtp_line_scan(const uint8_t *p, size_t len, size_t max, size_t *linelen)
{
	size_t dummy;
	if (linelen == NULL)
		linelen = &dummy;
	for (size_t i = 0; i < len; i++) {
		if (i >= max)
			return SMTP_ERR_TOO_LONG;
		if (p[i] == '\r') {
			if (i + 1 >= max)
				return SMTP_ERR_TOO_LONG;
			if (i + 1 >= len)
				return SMTP_ERR_AGAIN;
			if (p[i + 1] == '\n') {
				*linelen = i + 2;
				return (int)(i + 2);
			}
			/* RFC 5321 2.3.8: CR only as part of CRLF. */
			*linelen = i + 1;
			return SMTP_ERR_BARE_NL;
		}
		if (p[i] == '\n') {
			*linelen = i + 1;
			return SMTP_ERR_BARE_NL;
		}
	}
	return len >= max ? SMTP_ERR_TOO_LONG : SMTP_ERR_AGAIN;
}

bool
smtp_xtext_valid(const uint8_t *p, size_t len)
{
	/* RFC 3461 4: xtext = *( xchar / hexchar ); hexchar = "+" 2(%x30-39 / %x41-46) */
	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];
		if (c == '+') {
			for (size_t k = 1; k <= 2; k++) {
				if (i + k >= len)
					return false;
				uint8_t h = p[i + k];
				if (!smtp__is_digit(h) &&
				    !(h >= 'A' && h <= 'F'))
					return false;
			}
			i += 2;
			continue;
		}
		if (c < 33 || c > 126 || c == '=')
			return false;
	}
	return true;
}

/* Parses a decimal number of at most maxdigits digits occupying p. */
static bool
parse_num(const uint8_t *p, size_t len, size_t maxdigits, uint64_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > maxdigits)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!smtp__is_digit(p[i]))
			return false;
		uint64_t d = (uint64_t)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* One esmtp-param = esmtp-keyword ["=" esmtp-value] (RFC 5321 4.1.2). */
struct param {
	struct smtp_slice key;
	struct smtp_slice val;
	bool has_val;
};

static int
next_param(const uint8_t *p, size_t len, size_t *pos, struct param *pr)
{
	size_t i = *pos;
	/* Parameters are separated by exactly one SP. */
	if (i >= len || p[i] != ' ')
		return SMTP_ERR_SYNTAX;
	i++;
	size_t ks = i;
	/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
	while (i < len &&
	    (smtp__is_alpha(p[i]) || smtp__is_digit(p[i]) ||
	        (p[i] == '-' && i > ks)))
		i++;
	if (i == ks)
		return SMTP_ERR_SYNTAX;
	pr->key.p = p + ks;
	pr->key.len = i - ks;
	pr->has_val = false;
	pr->val.p = NULL;
	pr->val.len = 0;
	if (i < len && p[i] == '=') {
		i++;
		size_t vs = i;
		/* esmtp-value = 1*(%d33-60 / %d62-126); RFC 6531 3.3 adds UTF-8. */
		while (i < len && p[i] != ' ') {
			if (p[i] < 33 || p[i] == '=' || p[i] == 127)
				return SMTP_ERR_SYNTAX;
			i++;
		}
		if (i == vs)
			return SMTP_ERR_SYNTAX;
		pr->has_val = true;
		pr->val.p = p + vs;
		pr->val.len = i - vs;
	} else if (i < len && p[i] != ' ') {
		return SMTP_ERR_SYNTAX;
	}
	*pos = i;
	return 0;
}

static int
mail_param(struct smtp_cmd *c, const struct param *pr, unsigned *seen)
{
	struct smtp_mail_params *m = &c->mail;
	const uint8_t *v = pr->val.p;
	size_t vl = pr->val.len;
	if (smtp__ieq(pr->key.p, pr->key.len, "SIZE")) {
		/* RFC 1870 6: size-value = 1*20DIGIT */
		if ((*seen & 1u) || !pr->has_val ||
		    !parse_num(v, vl, 20, &m->size))
			return SMTP_ERR_SYNTAX;
		*seen |= 1u;
		m->has_size = true;
	} else if (smtp__ieq(pr->key.p, pr->key.len, "BODY")) {
		/* RFC 6152 2, RFC 3030 3 */
		if ((*seen & 2u) || !pr->has_val)
			return SMTP_ERR_SYNTAX;
		*seen |= 2u;
		if (smtp__ieq(v, vl, "7BIT"))
			m->body = SMTP_BODY_7BIT;
		else if (smtp__ieq(v, vl, "8BITMIME"))
			m->body = SMTP_BODY_8BITMIME;
		else if (smtp__ieq(v, vl, "BINARYMIME"))
			m->body = SMTP_BODY_BINARYMIME;
		else
			return SMTP_ERR_SYNTAX;
	} else if (smtp__ieq(pr->key.p, pr->key.len, "RET")) {
		/* RFC 3461 4.3: ret-value = "FULL" / "HDRS" */
		if ((*seen & 4u) || !pr->has_val)
			return SMTP_ERR_SYNTAX;
		*seen |= 4u;
		if (smtp__ieq(v, vl, "FULL"))
			m->ret = SMTP_RET_FULL;
		else if (smtp__ieq(v, vl, "HDRS"))
			m->ret = SMTP_RET_HDRS;
		else
			return SMTP_ERR_SYNTAX;
	} else if (smtp__ieq(pr->key.p, pr->key.len, "ENVID")) {
		/* RFC 3461 4.4: xtext, at most 100 characters */
		if ((*seen & 8u) || !pr->has_val || !smtp_xtext_valid(v, vl))
			return SMTP_ERR_SYNTAX;
		if (vl > SMTP_ENVID_MAX)
			return SMTP_ERR_TOO_LONG;
		*seen |= 8u;
		m->envid = pr->val;
	} else if (smtp__ieq(pr->key.p, pr->key.len, "SMTPUTF8")) {
		/* RFC 6531 3.4: no value */
		if ((*seen & 16u) || pr->has_val)
			return SMTP_ERR_SYNTAX;
		*seen |= 16u;
		m->smtputf8 = true;
	} else if (smtp__ieq(pr->key.p, pr->key.len, "REQUIRETLS")) {
		/* RFC 8689 2: a keyword without a value, given once. Whether
		 * the session may use it is the server's decision. */
		if ((*seen & 32u) || pr->has_val)
			return SMTP_ERR_SYNTAX;
		*seen |= 32u;
		m->requiretls = true;
	} else {
		c->param = pr->key;
		return SMTP_ERR_PARAM;
	}
	return 0;
}

static int
rcpt_param(struct smtp_cmd *c, const struct param *pr, unsigned *seen)
{
	struct smtp_rcpt_params *r = &c->rcpt;
	const uint8_t *v = pr->val.p;
	size_t vl = pr->val.len;
	if (smtp__ieq(pr->key.p, pr->key.len, "NOTIFY")) {
		/* RFC 3461 4.1: "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ) */
		if ((*seen & 1u) || !pr->has_val)
			return SMTP_ERR_SYNTAX;
		*seen |= 1u;
		size_t i = 0;
		while (i <= vl) {
			size_t s = i;
			while (i < vl && v[i] != ',')
				i++;
			unsigned bit;
			if (smtp__ieq(v + s, i - s, "NEVER"))
				bit = SMTP_NOTIFY_NEVER;
			else if (smtp__ieq(v + s, i - s, "SUCCESS"))
				bit = SMTP_NOTIFY_SUCCESS;
			else if (smtp__ieq(v + s, i - s, "FAILURE"))
				bit = SMTP_NOTIFY_FAILURE;
			else if (smtp__ieq(v + s, i - s, "DELAY"))
				bit = SMTP_NOTIFY_DELAY;
			else
				return SMTP_ERR_SYNTAX;
			if (r->notify & bit)
				return SMTP_ERR_SYNTAX;
			r->notify |= bit;
			i++;
		}
		if ((r->notify & SMTP_NOTIFY_NEVER) &&
		    r->notify != SMTP_NOTIFY_NEVER)
			return SMTP_ERR_SYNTAX;
	} else if (smtp__ieq(pr->key.p, pr->key.len, "ORCPT")) {
		/* RFC 3461 4.2: addr-type ";" xtext, at most 500 characters */
		if ((*seen & 2u) || !pr->has_val)
			return SMTP_ERR_SYNTAX;
		*seen |= 2u;
		if (vl > SMTP_ORCPT_MAX)
			return SMTP_ERR_TOO_LONG;
		size_t semi = 0;
		while (semi < vl && v[semi] != ';')
			semi++;
		if (semi == 0 || semi >= vl)
			return SMTP_ERR_SYNTAX;
		for (size_t i = 0; i < semi; i++)
			if (!smtp__is_alpha(v[i]) && !smtp__is_digit(v[i]) &&
			    v[i] != '-')
				return SMTP_ERR_SYNTAX;
		if (!smtp_xtext_valid(v + semi + 1, vl - semi - 1) ||
		    semi + 1 == vl)
			return SMTP_ERR_SYNTAX;
		r->orcpt = pr->val;
	} else {
		c->param = pr->key;
		return SMTP_ERR_PARAM;
	}
	return 0;
}

/* "FROM:" / "TO:" path *( SP esmtp-param ) */
static int
parse_path_cmd(const uint8_t *p, size_t len, struct smtp_cmd *c,
    const char *prefix, unsigned flags)
{
	size_t pl = strlen(prefix);
	if (len < pl || !smtp__ieq(p, pl, prefix))
		return SMTP_ERR_SYNTAX;
	int n = smtp_addr_parse_path(p + pl, len - pl, flags | SMTP_ADDR_UTF8,
	    &c->addr);
	if (n < 0)
		return n;
	size_t pos = pl + (size_t)n;
	unsigned seen = 0;
	while (pos < len) {
		struct param pr;
		int rc = next_param(p, len, &pos, &pr);
		if (rc < 0)
			return rc;
		rc = c->verb == SMTP_VERB_MAIL ? mail_param(c, &pr, &seen)
		                               : rcpt_param(c, &pr, &seen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static bool
printable(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] < 33 || p[i] > 126)
			return false;
	return true;
}

int
smtp_cmd_parse(const uint8_t *p, size_t len, struct smtp_cmd *c)
{
	memset(c, 0, sizeof(*c));
	if (len >= 2 && p[len - 2] == '\r' && p[len - 1] == '\n')
		len -= 2;
	for (size_t i = 0; i < len; i++)
		if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
			return SMTP_ERR_SYNTAX;
	size_t vl = 0;
	while (vl < len && p[vl] != ' ')
		vl++;
	bool found = false;
	for (size_t v = 0; v < sizeof(verb_names) / sizeof(verb_names[0]);
	     v++) {
		if (smtp__ieq(p, vl, verb_names[v])) {
			c->verb = (enum smtp_verb)v;
			found = true;
			break;
		}
	}
	if (!found)
		return SMTP_ERR_UNKNOWN_CMD;
	bool has_arg = vl < len;
	const uint8_t *a = has_arg ? p + vl + 1 : p + len;
	size_t al = has_arg ? len - vl - 1 : 0;
	c->arg.p = a;
	c->arg.len = al;

	switch (c->verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		/* "EHLO" SP ( Domain / address-literal ): checked loosely as one
		 * printable word, as deployed clients send odd names. */
		if (!has_arg || al == 0 || !printable(a, al))
			return SMTP_ERR_SYNTAX;
		c->domain = c->arg;
		return 0;
	case SMTP_VERB_MAIL:
		if (!has_arg)
			return SMTP_ERR_SYNTAX;
		return parse_path_cmd(a, al, c, "FROM:", SMTP_ADDR_NULL_OK);
	case SMTP_VERB_RCPT:
		if (!has_arg)
			return SMTP_ERR_SYNTAX;
		return parse_path_cmd(a, al, c, "TO:", SMTP_ADDR_POSTMASTER);
	case SMTP_VERB_BDAT: {
		/* RFC 3030 2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] */
		if (!has_arg)
			return SMTP_ERR_SYNTAX;
		size_t n = 0;
		while (n < al && a[n] != ' ')
			n++;
		if (!parse_num(a, n, 19, &c->bdat_size))
			return SMTP_ERR_SYNTAX;
		if (n < al) {
			if (!smtp__ieq(a + n + 1, al - n - 1, "LAST"))
				return SMTP_ERR_SYNTAX;
			c->bdat_last = true;
		}
		return 0;
	}
	case SMTP_VERB_DATA:
	case SMTP_VERB_RSET:
	case SMTP_VERB_QUIT:
	case SMTP_VERB_STARTTLS:
		return has_arg ? SMTP_ERR_SYNTAX : 0;
	case SMTP_VERB_VRFY:
	case SMTP_VERB_EXPN:
		return (has_arg && al > 0) ? 0 : SMTP_ERR_SYNTAX;
	case SMTP_VERB_NOOP:
	case SMTP_VERB_HELP:
		return 0;
	}
	return SMTP_ERR_SYNTAX;
}

int
smtp_cmd_format(struct smtp_buf *out, const char *verb, const uint8_t *arg,
    size_t arglen)
{
	size_t vl = strlen(verb);
	if (vl == 0 || (arg == NULL && arglen > 0))
		return SMTP_ERR_INVAL;
	for (size_t i = 0; i < vl; i++)
		if ((uint8_t)verb[i] < 33 || (uint8_t)verb[i] > 126)
			return SMTP_ERR_INVAL;
	for (size_t i = 0; i < arglen; i++)
		if (arg[i] == '\r' || arg[i] == '\n' || arg[i] == '\0')
			return SMTP_ERR_INVAL;
	size_t total = vl + (arg != NULL ? 1 + arglen : 0) + 2;
	/* RFC 5321 4.5.3.1.4: 512 octets including CRLF. */
	if (total > SMTP_CMD_LINE_MAX)
		return SMTP_ERR_TOO_LONG;
	if (smtp_buf_avail(out) < total)
		return SMTP_ERR_FULL;
	int rc = smtp_buf_append(out, verb, vl);
	if (rc == 0 && arg != NULL) {
		rc = smtp_buf_append(out, " ", 1);
		if (rc == 0)
			rc = smtp_buf_append(out, arg, arglen);
	}
	if (rc == 0)
		rc = smtp_buf_append(out, "\r\n", 2);
	return rc;
}
