/* DATA content: dot-stuffing encoder and strict decoder (RFC 5321 4.5.2,
 * 4.1.1.4), resistant to SMTP smuggling (bare CR / bare LF). */
#include <string.h>

#include "smtp_int.h"

void
smtp_data_enc_init(struct smtp_data_enc *e)
{
	e->at_line_start = true;
	e->pending_cr = false;
	e->no_stuff = false;
}

long
smtp_data_encode(struct smtp_data_enc *e, const uint8_t *in, size_t inlen,
    uint8_t *out, size_t outcap)
{
	if (outcap < smtp_data_enc_bound(inlen))
		return SMTP_ERR_FULL;
	size_t o = 0;
	for (size_t i = 0; i < inlen; i++) {
		uint8_t c = in[i];
		if (e->pending_cr) {
			/* A CR becomes CRLF whether or not an LF follows: a bare CR
			 * never reaches the server (RFC 5321 2.3.8). */
			e->pending_cr = false;
			out[o++] = '\r';
			out[o++] = '\n';
			e->at_line_start = true;
			if (c == '\n')
				continue;
		}
		if (c == '\r') {
			e->pending_cr = true;
			continue;
		}
		if (c == '\n') {
			/* A bare LF becomes CRLF. */
			out[o++] = '\r';
			out[o++] = '\n';
			e->at_line_start = true;
			continue;
		}
		/* RFC 5321 4.5.2: a line starting with "." gets one more. */
		if (e->at_line_start && c == '.' && !e->no_stuff)
			out[o++] = '.';
		out[o++] = c;
		e->at_line_start = false;
	}
	return (long)o;
}

long
smtp_data_encode_end(struct smtp_data_enc *e, uint8_t *out, size_t outcap)
{
	if (outcap < 5)
		return SMTP_ERR_FULL;
	size_t o = 0;
	if (e->pending_cr || !e->at_line_start) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o++] = '.';
	out[o++] = '\r';
	out[o++] = '\n';
	smtp_data_enc_init(e);
	return (long)o;
}

enum dec_state {
	DEC_LINE_START, /* after CRLF (or at the start of content) */
	DEC_MID,        /* inside a line */
	DEC_CR,         /* after a CR inside a line */
	DEC_DOT,        /* after "." at the start of a line */
	DEC_DOT_CR,     /* after "." CR at the start of a line */
};

void
smtp_data_dec_init(struct smtp_data_dec *d, size_t max_line)
{
	memset(d, 0, sizeof(*d));
	d->max_line = max_line ? max_line : SMTP_TEXT_LINE_MAX;
	d->st = DEC_LINE_START;
}

static void
count_line(struct smtp_data_dec *d)
{
	/* RFC 5321 4.5.3.1.6: 1000 octets per line including CRLF. */
	if (++d->line_len > d->max_line)
		d->errors |= SMTP_DATA_ERR_LINE;
}

/* Octets other than CR and LF: NUL is refused, 8-bit is noted. */
static inline void
check_octet(struct smtp_data_dec *d, uint8_t c)
{
	if (c == 0)
		d->errors |= SMTP_DATA_ERR_NUL;
	else if (c > 127)
		d->eightbit = true;
}

long
smtp_data_decode(struct smtp_data_dec *d, const uint8_t *in, size_t inlen,
    uint8_t *out, size_t *outlen)
{
	size_t o = 0;
	size_t i = 0;
	while (i < inlen && !d->done) {
		uint8_t c = in[i++];
		count_line(d);
		switch ((enum dec_state)d->st) {
		case DEC_DOT_CR:
			if (c == '\n') {
				/* CR LF "." CR LF: the only end of data. */
				d->done = true;
				continue;
			}
			/* "." CR x: a bare CR; never an end of data. */
			d->errors |= SMTP_DATA_ERR_BARE_CR;
			d->st = DEC_MID;
			break;
		case DEC_DOT:
			if (c == '\r') {
				d->st = DEC_DOT_CR;
				continue;
			}
			/* RFC 5321 4.5.2: delete the leading "."; c is then
			 * ordinary line content. */
			d->st = DEC_MID;
			break;
		case DEC_LINE_START:
			if (c == '.') {
				d->st = DEC_DOT;
				continue;
			}
			d->st = DEC_MID;
			break;
		case DEC_CR:
			if (c == '\n') {
				out[o++] = c;
				d->st = DEC_LINE_START;
				d->line_len = 0;
				continue;
			}
			/* CR not followed by LF. */
			d->errors |= SMTP_DATA_ERR_BARE_CR;
			d->st = DEC_MID;
			break;
		case DEC_MID:
			break;
		}
		/* DEC_MID handling of c. A bare LF does not start a line, so
		 * "\n.\n", "\n.\r\n" and "\r.\r" never end the data. */
		if (c == '\r')
			d->st = DEC_CR;
		else if (c == '\n')
			d->errors |= SMTP_DATA_ERR_BARE_LF;
		else
			check_octet(d, c);
		out[o++] = c;
	}
	d->out_bytes += o;
	*outlen = o;
	return (long)i;
}

void
smtp_data_check(struct smtp_data_dec *d, const uint8_t *in, size_t inlen)
{
	for (size_t i = 0; i < inlen; i++) {
		uint8_t c = in[i];
		count_line(d);
		if (d->st == DEC_CR) {
			if (c == '\n') {
				d->st = DEC_LINE_START;
				d->line_len = 0;
				continue;
			}
			d->errors |= SMTP_DATA_ERR_BARE_CR;
		}
		if (c == '\r') {
			d->st = DEC_CR;
		} else if (c == '\n') {
			d->errors |= SMTP_DATA_ERR_BARE_LF;
		} else {
			check_octet(d, c);
			d->st = DEC_MID;
		}
	}
	d->out_bytes += inlen;
}

void
smtp_data_check_end(struct smtp_data_dec *d)
{
	/* RFC 5321 2.3.8: CR only as part of CRLF; the end of the last
	 * chunk does not make a pending CR one. */
	if (d->st == DEC_CR)
		d->errors |= SMTP_DATA_ERR_BARE_CR;
	d->st = DEC_MID;
}

bool
smtp_data_has_8bit(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] > 127)
			return true;
	return false;
}
