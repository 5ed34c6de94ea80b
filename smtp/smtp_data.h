/*
 * The DATA content transformation (RFC 5321 4.5.2 transparency, 4.1.1.4
 * end of data), both directions. Both work incrementally on arbitrary
 * chunks: feeding a message whole, split at any offset or byte by byte
 * gives identical output.
 */
/* Include "smtp.h", not this header. */
#ifndef SMTP_DATA_H
#define SMTP_DATA_H

/*
 * Encoder (client side): message bytes in, wire bytes out. Line endings are
 * normalised to CRLF (a bare LF and a bare CR each become CRLF, so no bare
 * CR or LF can reach the server and be read as a different end of data),
 * and a "." at the start of a line is doubled.
 */
struct smtp_data_enc {
	/* private */
	bool at_line_start;
	bool pending_cr;
	bool no_stuff; /* BDAT: normalise line endings only */
};

void smtp_data_enc_init(struct smtp_data_enc *e);

/* Worst-case output for inlen input bytes (for sizing out). */
static inline size_t
smtp_data_enc_bound(size_t inlen)
{
	return 2 * inlen + 2;
}

/*
 * Encodes in[0..inlen) into out, which must have room for
 * smtp_data_enc_bound(inlen) bytes. Returns the bytes written (>= 0) or
 * SMTP_ERR_FULL if outcap is below the bound (nothing done).
 */
SMTP_MUST_USE long smtp_data_encode(struct smtp_data_enc *e, const uint8_t *in,
    size_t inlen, uint8_t *out, size_t outcap);

/*
 * Ends the message: completes a pending CR, adds CRLF if the content did
 * not end with one, then ".\r\n". out needs 5 bytes. Returns the bytes
 * written or SMTP_ERR_FULL. The encoder is re-initialised for a new message.
 */
SMTP_MUST_USE long smtp_data_encode_end(struct smtp_data_enc *e, uint8_t *out,
    size_t outcap);

/* Decoder errors, accumulated in smtp_data_dec.errors. */
#define SMTP_DATA_ERR_BARE_LF 0x1u /* LF not preceded by CR */
#define SMTP_DATA_ERR_BARE_CR 0x2u /* CR not followed by LF */
#define SMTP_DATA_ERR_LINE 0x4u    /* line longer than max_line incl. CRLF */
#define SMTP_DATA_ERR_NUL                                                      \
	0x8u /* a NUL octet: RFC 5321 2.3.8 text and
                                      * RFC 6152 8bit content exclude it;
                                      * only BINARYMIME (RFC 3030) allows it */

/*
 * Decoder (server side): wire bytes in, message bytes out. The only end of
 * data is CR LF "." CR LF (RFC 5321 4.1.1.4), the first CR LF being the
 * end of the last line or the DATA command's own line. A bare LF or bare CR
 * never starts a line and is never normalised: it sets an error bit, and
 * the caller rejects the message when the real end of data arrives
 * (SMTP smuggling, 2023). A leading "." of a line is removed (4.5.2).
 */
struct smtp_data_dec {
	/* read-only */
	unsigned errors;    /* SMTP_DATA_ERR_* seen so far */
	bool eightbit;      /* an octet above 127 was seen (RFC 6152) */
	bool done;          /* end of data consumed */
	uint64_t out_bytes; /* message bytes produced so far */
	/* private */
	size_t max_line;
	size_t line_len;
	int st;
};

/* max_line: longest allowed line incl. CRLF; 0 means SMTP_TEXT_LINE_MAX. */
void smtp_data_dec_init(struct smtp_data_dec *d, size_t max_line);

/*
 * Decodes from in; out needs room for inlen bytes and may equal in (the
 * output never runs ahead of the input, so in-place decoding is safe).
 * Stops right after the end of data. Returns the input bytes consumed
 * (>= 0) and sets *outlen. After d->done, further calls consume nothing.
 */
SMTP_MUST_USE long smtp_data_decode(struct smtp_data_dec *d, const uint8_t *in,
    size_t inlen, uint8_t *out, size_t *outlen);

/*
 * Line checker for BDAT chunks (RFC 3030 content has no end marker, but
 * danerelay relays it as DATA, so the same CRLF rules apply). Sets the
 * same error bits as the decoder; output is the input unchanged.
 */
void smtp_data_check(struct smtp_data_dec *d, const uint8_t *in, size_t inlen);

/*
 * Ends BDAT content (after the LAST chunk). A CR that ended the last chunk
 * has no LF after it: it is a bare CR like one anywhere else in the
 * content, and sets SMTP_DATA_ERR_BARE_CR.
 */
void smtp_data_check_end(struct smtp_data_dec *d);

/* True when p[0..len) has an octet above 127 (content that needs
 * BODY=8BITMIME towards the next hop, RFC 6152 3). */
bool smtp_data_has_8bit(const uint8_t *p, size_t len);

#endif /* SMTP_DATA_H */
