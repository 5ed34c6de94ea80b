/* Reply parser, enhanced status codes, EHLO capabilities, results. */
#include <string.h>

#include "smtp_int.h"

/* RFC 5321 4.2: textstring = 1*(%d09 / %d32-126); RFC 6531 3.7.4.2 lets
 * UTF-8 appear in reply text, so octets >= 0x80 are allowed too. Other
 * control characters never are. */
static bool
reply_text_char(uint8_t c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Parses 1 to 3 digits without a leading zero (RFC 3463 2: subject and
 * detail = "0" / (%x31-39 0*2digit)). Returns digits used, 0 on error. */
static size_t
status_number(const uint8_t *p, size_t len, uint16_t *out)
{
	size_t n = 0;
	unsigned v = 0;
	while (n < len && n < 4 && smtp__is_digit(p[n])) {
		v = v * 10 + (unsigned)(p[n] - '0');
		n++;
	}
	if (n == 0 || n > 3 || (n > 1 && p[0] == '0'))
		return 0;
	*out = (uint16_t)v;
	return n;
}

int
smtp_status_parse(const uint8_t *p, size_t len, struct smtp_status *st)
{
	/* class "." subject "." detail; class = "2" / "4" / "5" */
	if (len < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5') ||
	    p[1] != '.')
		return SMTP_ERR_SYNTAX;
	size_t i = 2;
	size_t n = status_number(p + i, len - i, &st->subject);
	if (n == 0)
		return SMTP_ERR_SYNTAX;
	i += n;
	if (i >= len || p[i] != '.')
		return SMTP_ERR_SYNTAX;
	i++;
	n = status_number(p + i, len - i, &st->detail);
	if (n == 0)
		return SMTP_ERR_SYNTAX;
	i += n;
	if (i < len && p[i] != ' ')
		return SMTP_ERR_SYNTAX;
	st->klass = (uint8_t)(p[0] - '0');
	return (int)i;
}

char *
smtp_status_format(const struct smtp_status *st, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%u.%u.%u", st->klass, st->subject,
	    st->detail);
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen > 0)
			out[0] = '\0';
	}
	return out;
}

int
smtp_reply_parse(const uint8_t *p, size_t len, struct smtp_reply *r)
{
	size_t pos = 0;
	size_t nlines = 0;
	uint16_t code = 0;
	size_t first_text = 0, first_end = 0;

	for (;;) {
		size_t start = pos;
		/* Reply-code = %x32-35 %x30-35 %x30-39 (RFC 5321 4.2) */
		static const uint8_t lo[3] = { '2', '0', '0' };
		static const uint8_t hi[3] = { '5', '5', '9' };
		uint16_t c = 0;
		for (size_t k = 0; k < 3; k++) {
			if (start + k >= len)
				return SMTP_ERR_AGAIN;
			uint8_t d = p[start + k];
			if (d < lo[k] || d > hi[k])
				return SMTP_ERR_SYNTAX;
			c = (uint16_t)(c * 10 + (d - '0'));
		}
		/* RFC 5321 4.2.1: every line of a multiline reply has the same code. */
		if (nlines > 0 && c != code)
			return SMTP_ERR_SYNTAX;
		code = c;
		if (start + 3 >= len)
			return SMTP_ERR_AGAIN;
		uint8_t sep = p[start + 3];
		bool last;
		size_t i;
		if (sep == '\r') {
			last = true;
			i = start + 3;
		} else if (sep == ' ') {
			last = true;
			i = start + 4;
		} else if (sep == '-') {
			last = false;
			i = start + 4;
		} else {
			return SMTP_ERR_SYNTAX;
		}
		size_t tstart = i;
		for (;; i++) {
			if (i >= len)
				return SMTP_ERR_AGAIN;
			uint8_t ch = p[i];
			if (ch == '\r') {
				if (i + 1 >= len)
					return SMTP_ERR_AGAIN;
				if (p[i + 1] != '\n')
					return SMTP_ERR_BARE_NL;
				break;
			}
			if (ch == '\n')
				return SMTP_ERR_BARE_NL;
			/* RFC 5321 4.5.3.1.5: 512 octets per reply line incl. CRLF. */
			if (i - start + 3 > SMTP_REPLY_LINE_MAX)
				return SMTP_ERR_TOO_LONG;
			if (!reply_text_char(ch))
				return SMTP_ERR_SYNTAX;
		}
		if (nlines == 0) {
			first_text = tstart;
			first_end = i;
		}
		nlines++;
		pos = i + 2;
		if (last)
			break;
		if (nlines >= SMTP_REPLY_LINES_MAX)
			return SMTP_ERR_TOO_LONG;
	}

	r->code = code;
	r->nlines = nlines;
	r->raw.p = p;
	r->raw.len = pos;
	memset(&r->status, 0, sizeof(r->status));
	r->text.p = p + first_text;
	r->text.len = first_end - first_text;
	/* RFC 2034 4: the enhanced code's class matches the reply's class. */
	struct smtp_status st;
	int n = smtp_status_parse(r->text.p, r->text.len, &st);
	if (n > 0 && st.klass == code / 100) {
		r->status = st;
		size_t skip = (size_t)n;
		if (skip < r->text.len)
			skip++; /* the SP after the code */
		r->text.p += skip;
		r->text.len -= skip;
	}
	return (int)pos;
}

bool
smtp_reply_line(const struct smtp_reply *r, size_t *pos,
    struct smtp_slice *line)
{
	const uint8_t *p = r->raw.p;
	size_t len = r->raw.len;
	size_t start = *pos;
	if (start + 5 > len)
		return false;
	size_t t = (p[start + 3] == '\r') ? start + 3 : start + 4;
	size_t e = t;
	while (e < len && p[e] != '\r')
		e++;
	line->p = p + t;
	line->len = e - t;
	*pos = e + 2;
	return true;
}

/* Parses a decimal uint64 occupying all of p; false on overflow/garbage. */
static bool
parse_u64(const uint8_t *p, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > 20)
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

void
smtp_caps_parse(const struct smtp_reply *r, struct smtp_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
	caps->esmtp = true;
	size_t pos = 0;
	struct smtp_slice line;
	bool first = true;
	while (smtp_reply_line(r, &pos, &line)) {
		if (first) {
			first =
			    false; /* the greeting: "domain [ SP ehlo-greet ]" */
			continue;
		}
		/* ehlo-line = ehlo-keyword *( SP / "=" ehlo-param ); "=" is
		 * an old AUTH= form, treated as a separator too. */
		size_t k = 0;
		while (k < line.len && line.p[k] != ' ' && line.p[k] != '=')
			k++;
		const uint8_t *kw = line.p;
		const uint8_t *arg = k < line.len ? line.p + k + 1 : line.p + k;
		size_t arglen = k < line.len ? line.len - k - 1 : 0;
		if (smtp__ieq(kw, k, "PIPELINING")) {
			caps->pipelining = true;
		} else if (smtp__ieq(kw, k, "SIZE")) {
			uint64_t v = 0;
			caps->size = true;
			caps->size_max = parse_u64(arg, arglen, &v) ? v : 0;
		} else if (smtp__ieq(kw, k, "8BITMIME")) {
			caps->eightbitmime = true;
		} else if (smtp__ieq(kw, k, "ENHANCEDSTATUSCODES")) {
			caps->enhancedstatuscodes = true;
		} else if (smtp__ieq(kw, k, "DSN")) {
			caps->dsn = true;
		} else if (smtp__ieq(kw, k, "SMTPUTF8")) {
			caps->smtputf8 = true;
		} else if (smtp__ieq(kw, k, "CHUNKING")) {
			caps->chunking = true;
		} else if (smtp__ieq(kw, k, "BINARYMIME")) {
			caps->binarymime = true;
		} else if (smtp__ieq(kw, k, "STARTTLS")) {
			caps->starttls = true;
		} else if (smtp__ieq(kw, k, "REQUIRETLS")) {
			caps->requiretls = true;
		}
	}
}

/* Appends s[0..n) to res->text at *off, truncating at the end. */
static void
text_add(struct smtp_result *res, size_t *off, const uint8_t *s, size_t n)
{
	size_t room = sizeof(res->text) - 1 - *off;
	if (n > room)
		n = room;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		/* The parser allowed HT; keep the text single-spaced and plain. */
		res->text[*off + i] = (char)(c == '\t' ? ' ' : c);
	}
	*off += n;
	res->text[*off] = '\0';
}

void
smtp_result_from_reply(struct smtp_result *res, const struct smtp_reply *r,
    enum smtp_stage stage)
{
	res->klass = (uint8_t)(r->code / 100);
	res->code = r->code;
	res->stage = stage;
	res->reason = SMTP_REASON_REPLY;
	if (r->status.klass == res->klass) {
		res->status = r->status;
		res->status_synth = false;
	} else {
		res->status.klass = res->klass;
		res->status.subject = 0;
		res->status.detail = 0;
		res->status_synth = true;
	}
	size_t off = 0;
	res->text[0] = '\0';
	text_add(res, &off, r->text.p, r->text.len);
	size_t pos = 0;
	struct smtp_slice line;
	bool first = true;
	while (smtp_reply_line(r, &pos, &line)) {
		if (first) {
			first = false;
			continue;
		}
		/* Continuation lines usually repeat the enhanced code. */
		struct smtp_status st;
		int n = smtp_status_parse(line.p, line.len, &st);
		if (n > 0) {
			size_t skip =
			    (size_t)n < line.len ? (size_t)n + 1 : (size_t)n;
			line.p += skip;
			line.len -= skip;
		}
		text_add(res, &off, (const uint8_t *)" ", 1);
		text_add(res, &off, line.p, line.len);
	}
}
