/*
 * Server-side command parsing (RFC 5321 4.1.1, 4.1.2) with the ESMTP
 * parameters danerelay honours, and the command formatter the client uses.
 */
/* Include "smtp.h", not this header. */
#ifndef SMTP_CMD_H
#define SMTP_CMD_H

enum smtp_verb {
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
};

/* Upper-case verb name ("MAIL"); static, never NULL. */
const char *smtp_verb_name(enum smtp_verb v);

/* MAIL FROM parameters (RFC 1870, 6152, 3461, 6531, 8689). Slices are raw
 * xtext. */
struct smtp_mail_params {
	bool has_size;
	uint64_t size;           /* SIZE=, RFC 1870 */
	enum smtp_body body;     /* BODY=, RFC 6152 / RFC 3030 */
	enum smtp_ret ret;       /* RET=, RFC 3461 4.3 */
	struct smtp_slice envid; /* ENVID= xtext as given; len 0 if absent */
	bool smtputf8;           /* SMTPUTF8, RFC 6531 3.4 */
	bool requiretls;         /* REQUIRETLS, RFC 8689 2 (no value) */
};

/* RCPT TO parameters (RFC 3461 4.1, 4.2). */
struct smtp_rcpt_params {
	unsigned notify;         /* SMTP_NOTIFY_* bits; 0 if absent */
	struct smtp_slice orcpt; /* ORCPT= value as given ("rfc822;a+40b");
	                             * len 0 if absent */
};

/* One parsed command. Slices point into the parsed line. */
struct smtp_cmd {
	enum smtp_verb verb;
	struct smtp_slice arg;        /* everything after "VERB SP", no CRLF */
	struct smtp_slice domain;     /* HELO/EHLO argument */
	struct smtp_addr addr;        /* MAIL/RCPT path */
	struct smtp_mail_params mail; /* MAIL */
	struct smtp_rcpt_params rcpt; /* RCPT */
	uint64_t bdat_size;           /* BDAT chunk-size, RFC 3030 2 */
	bool bdat_last;               /* BDAT ... LAST */
	struct smtp_slice param; /* the offending parameter on SMTP_ERR_PARAM */
};

/*
 * Finds the end of the first line in p. Returns its length including CRLF
 * (> 0); SMTP_ERR_AGAIN if no CRLF yet and fewer than max bytes are
 * present; SMTP_ERR_TOO_LONG when max bytes arrived without CRLF (the line
 * is too long; the caller discards up to the next LF); SMTP_ERR_BARE_NL
 * when an LF not preceded by CR or a CR not followed by LF is found
 * (RFC 5321 2.3.8); *linelen is then set to the bytes up to and including
 * that LF (or the CR) so the caller can skip them. linelen may be NULL.
 */
SMTP_MUST_USE int smtp_line_scan(const uint8_t *p, size_t len, size_t max,
    size_t *linelen);

/*
 * Parses one command line (with or without its CRLF; nothing after it).
 * Verbs are case-insensitive (RFC 5321 2.4). Returns 0 and fills *c, or:
 *  SMTP_ERR_UNKNOWN_CMD  unknown verb (server replies 500 5.5.2)
 *  SMTP_ERR_SYNTAX       bad arguments (501 5.5.4); c->verb is set
 *  SMTP_ERR_ADDR         bad path syntax (501 5.1.3 / 5.1.7); c->verb set
 *  SMTP_ERR_TOO_LONG     path/ENVID/ORCPT over its limit (501); c->verb set
 *  SMTP_ERR_PARAM        unknown or unsupported ESMTP parameter
 *                        (555 5.5.4, RFC 5321 4.1.1.11); c->param is it
 * Paths are parsed with UTF-8 allowed; c->addr.utf8 tells the server to
 * check that SMTPUTF8 was given (RFC 6531 3.4). Never allocates.
 */
SMTP_MUST_USE int smtp_cmd_parse(const uint8_t *p, size_t len,
    struct smtp_cmd *c);

/*
 * Checks xtext (RFC 3461 4): xchar (33..126 except "+" and "=") or "+"
 * followed by two upper-case hex digits. Returns true if p is valid.
 */
bool smtp_xtext_valid(const uint8_t *p, size_t len);

/*
 * Appends "verb[ SP arg]" CRLF to out. arg may be NULL. Refuses CR, LF and
 * NUL in arg (SMTP_ERR_INVAL: command injection) and lines longer than
 * SMTP_CMD_LINE_MAX (SMTP_ERR_TOO_LONG). Returns 0 or a buffer error;
 * nothing is appended on error.
 */
SMTP_MUST_USE int smtp_cmd_format(struct smtp_buf *out, const char *verb,
    const uint8_t *arg, size_t arglen);

#endif /* SMTP_CMD_H */
