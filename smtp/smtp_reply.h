/*
 * SMTP replies: parser (RFC 5321 4.2), enhanced status codes (RFC 3463,
 * RFC 2034), EHLO capabilities (RFC 5321 4.1.1.1) and the delivery result
 * type the client session reports.
 */
/* Include "smtp.h", not this header. */
#ifndef SMTP_REPLY_H
#define SMTP_REPLY_H

/* An enhanced status code class.subject.detail (RFC 3463 2). */
struct smtp_status {
	uint8_t klass;    /* 2, 4 or 5; 0 when absent */
	uint16_t subject; /* 0..999 */
	uint16_t detail;  /* 0..999 */
};

/*
 * A parsed reply. All slices point into the parser's input.
 *
 * RFC 5321 4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 *                              Reply-code [ SP textstring ] CRLF
 */
struct smtp_reply {
	uint16_t code;             /* 200..599 */
	size_t nlines;             /* >= 1 */
	struct smtp_status status; /* from the first line; klass 0 if absent */
	struct smtp_slice raw;     /* the whole reply, all lines with CRLF */
	struct smtp_slice text;    /* first line's text after the code, the
	                             * separator and the enhanced code */
};

/*
 * Parses one complete reply at the start of p.
 * Returns the number of bytes consumed (> 0) and fills *r; SMTP_ERR_AGAIN
 * when the reply is incomplete (r undefined); SMTP_ERR_TOO_LONG when a line
 * exceeds SMTP_REPLY_LINE_MAX (512 incl. CRLF, RFC 5321 4.5.3.1.5) or a
 * reply exceeds SMTP_REPLY_LINES_MAX lines; SMTP_ERR_BARE_NL for a line not
 * ended by CRLF or a CR inside a line; SMTP_ERR_SYNTAX for anything else
 * (bad code, codes differing between lines (RFC 5321 4.2.1), control
 * characters other than HT in the text). Strict: it never guesses.
 * An enhanced status code is recognised at the start of the first line's
 * text only when its class equals the reply code's first digit (RFC 2034:
 * the class must match the reply code); otherwise r->status.klass is 0 and
 * the code is left in r->text.
 */
SMTP_MUST_USE int smtp_reply_parse(const uint8_t *p, size_t len,
    struct smtp_reply *r);

/*
 * Iterates the text of each line of a parsed reply (after "xyz-"/"xyz ",
 * without CRLF, with the enhanced code if any). Start with *pos = 0.
 * Returns true and sets *line while lines remain.
 */
bool smtp_reply_line(const struct smtp_reply *r, size_t *pos,
    struct smtp_slice *line);

/*
 * Parses an enhanced status code at the start of p ("4.7.5" followed by SP
 * or the end of input). Returns bytes consumed (> 0) or SMTP_ERR_SYNTAX.
 * RFC 3463 2: class "." subject "." detail, class 2/4/5, subject and detail
 * 1 to 3 digits without leading zeros beyond "0".
 */
SMTP_MUST_USE int smtp_status_parse(const uint8_t *p, size_t len,
    struct smtp_status *st);

/* Formats st as "c.s.d" into out (>= 12 bytes). Returns out. */
char *smtp_status_format(const struct smtp_status *st, char *out,
    size_t outlen);

/* EHLO capabilities (RFC 5321 4.1.1.1 ehlo-line keywords, case-insensitive). */
struct smtp_caps {
	bool esmtp;               /* EHLO (true) or HELO (false) */
	bool pipelining;          /* RFC 2920 */
	bool size;                /* RFC 1870 */
	uint64_t size_max;        /* SIZE argument; 0 = no fixed limit */
	bool eightbitmime;        /* RFC 6152 */
	bool enhancedstatuscodes; /* RFC 2034 */
	bool dsn;                 /* RFC 3461 */
	bool smtputf8;            /* RFC 6531 */
	bool chunking;            /* RFC 3030 */
	bool binarymime;          /* RFC 3030 */
	bool starttls;            /* RFC 3207 */
	bool requiretls;          /* RFC 8689 */
};

/* Fills *caps from a 250 reply to EHLO (line 1 is the greeting and carries
 * no keyword). Unknown keywords are ignored; a malformed SIZE argument is
 * treated as SIZE without a limit. Cannot fail. */
void smtp_caps_parse(const struct smtp_reply *r, struct smtp_caps *caps);

/* Why a client result is what it is (the relay maps these to failure
 * classes such as smtp-4xx, starttls-missing, connect). */
enum smtp_reason {
	SMTP_REASON_REPLY,                /* the server's reply decided */
	SMTP_REASON_STARTTLS_NOT_OFFERED, /* TLS required, no STARTTLS in EHLO */
	SMTP_REASON_STARTTLS_REFUSED, /* TLS required, STARTTLS got 4xx/5xx */
	SMTP_REASON_EHLO_REFUSED,     /* EHLO failed and HELO not allowed */
	SMTP_REASON_SMTPUTF8_NOT_OFFERED,   /* RFC 6531 3.4: 5.6.7 */
	SMTP_REASON_REQUIRETLS_NOT_OFFERED, /* RFC 8689 4.2.1: 5.7.30, no
	                                     * REQUIRETLS in the EHLO after
	                                     * STARTTLS */
	SMTP_REASON_SIZE_EXCEEDED,   /* RFC 1870: message > server SIZE */
	SMTP_REASON_PROTOCOL,        /* malformed or unexpected reply */
	SMTP_REASON_CONNECTION_LOST, /* smtp_client_eof() */
	SMTP_REASON_ABORTED,         /* smtp_client_abort() by the driver */
};

/* "reply", "starttls-not-offered", "starttls-refused", "ehlo-refused",
 * "smtputf8-not-offered", "requiretls-not-offered", "size-exceeded", "protocol", "connection-lost",
 * "aborted". Static, never NULL. */
const char *smtp_reason_name(enum smtp_reason reason);

#define SMTP_RESULT_TEXT_MAX 1024

/*
 * An outcome the relay maps to DELIVERED / TEMPFAIL / PERMFAIL.
 *  klass   2 delivered/accepted, 4 temporary failure, 5 permanent failure.
 *          This is the delivery class and may differ from code/100: e.g. a
 *          550 reply to STARTTLS under TLS REQUIRED is klass 4 (4.7.5).
 *  code    the server's 3-digit reply code, 0 when no reply decided.
 *  status  the enhanced status: the server's when it sent one that matches
 *          klass, else synthesized (status_synth true): X.0.0 from the code,
 *          or the specific code of the reason (4.7.5, 5.6.7, 5.3.4...).
 *  text    the reply's text, lines joined by a single space (no CR/LF, no
 *          control characters: the reply parser refused them), truncated to
 *          fit, NUL terminated; or a local explanation.
 */
struct smtp_result {
	uint8_t klass;
	uint16_t code;
	struct smtp_status status;
	bool status_synth;
	enum smtp_stage stage;
	enum smtp_reason reason;
	char text[SMTP_RESULT_TEXT_MAX];
};

/* Fills *res from a parsed reply (reason REPLY). */
void smtp_result_from_reply(struct smtp_result *res, const struct smtp_reply *r,
    enum smtp_stage stage);

#endif /* SMTP_REPLY_H */
