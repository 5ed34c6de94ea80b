/* Error strings, stage names and small shared helpers. */
#include <string.h>

#include "smtp_int.h"

void
smtp__abort(const char *file, int line, const char *cond)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, cond);
	abort();
}

const char *
smtp_strerror(int err)
{
	switch (err) {
	case SMTP_OK:
		return "success";
	case SMTP_ERR_AGAIN:
		return "incomplete input";
	case SMTP_ERR_SYNTAX:
		return "syntax error";
	case SMTP_ERR_TOO_LONG:
		return "limit exceeded";
	case SMTP_ERR_NOMEM:
		return "out of memory";
	case SMTP_ERR_FULL:
		return "buffer full";
	case SMTP_ERR_STATE:
		return "not valid in this state";
	case SMTP_ERR_INVAL:
		return "invalid argument";
	case SMTP_ERR_UNKNOWN_CMD:
		return "command not recognized";
	case SMTP_ERR_PARAM:
		return "parameter not recognized";
	case SMTP_ERR_ADDR:
		return "bad address syntax";
	case SMTP_ERR_BARE_NL:
		return "bare CR or LF";
	default:
		return "unknown error";
	}
}

const char *
smtp_stage_name(enum smtp_stage stage)
{
	switch (stage) {
	case SMTP_STAGE_BANNER:
		return "banner";
	case SMTP_STAGE_EHLO:
		return "ehlo";
	case SMTP_STAGE_HELO:
		return "helo";
	case SMTP_STAGE_STARTTLS:
		return "starttls";
	case SMTP_STAGE_MAIL:
		return "mail";
	case SMTP_STAGE_RCPT:
		return "rcpt";
	case SMTP_STAGE_DATA:
		return "data";
	case SMTP_STAGE_BDAT:
		return "bdat";
	case SMTP_STAGE_DOT:
		return "dot";
	case SMTP_STAGE_RSET:
		return "rset";
	case SMTP_STAGE_QUIT:
		return "quit";
	}
	return "?";
}

const char *
smtp_reason_name(enum smtp_reason reason)
{
	switch (reason) {
	case SMTP_REASON_REPLY:
		return "reply";
	case SMTP_REASON_STARTTLS_NOT_OFFERED:
		return "starttls-not-offered";
	case SMTP_REASON_STARTTLS_REFUSED:
		return "starttls-refused";
	case SMTP_REASON_EHLO_REFUSED:
		return "ehlo-refused";
	case SMTP_REASON_SMTPUTF8_NOT_OFFERED:
		return "smtputf8-not-offered";
	case SMTP_REASON_REQUIRETLS_NOT_OFFERED:
		return "requiretls-not-offered";
	case SMTP_REASON_SIZE_EXCEEDED:
		return "size-exceeded";
	case SMTP_REASON_PROTOCOL:
		return "protocol";
	case SMTP_REASON_CONNECTION_LOST:
		return "connection-lost";
	case SMTP_REASON_ABORTED:
		return "aborted";
	}
	return "?";
}

bool
smtp__ieq(const uint8_t *p, size_t len, const char *s)
{
	size_t n = strlen(s);
	if (n != len)
		return false;
	for (size_t i = 0; i < n; i++)
		if (smtp__lower(p[i]) != smtp__lower((uint8_t)s[i]))
			return false;
	return true;
}

bool
smtp__text_ok(const char *s, size_t max)
{
	size_t n = 0;
	for (; s[n] != '\0'; n++) {
		uint8_t c = (uint8_t)s[n];
		if (c < 0x20 || c > 0x7e || n >= max)
			return false;
	}
	return true;
}

size_t
smtp__utf8_seq(const uint8_t *p, size_t len)
{
	/* RFC 3629 4: UTF8-2 / UTF8-3 / UTF8-4, no overlongs or surrogates. */
	uint8_t c = p[0];
	size_t n;
	uint8_t lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}
