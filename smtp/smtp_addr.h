/*
 * Mailbox and path parser (RFC 5321 4.1.2, RFC 6531 3.3 for UTF-8), shared
 * by the server (MAIL/RCPT arguments) and the client (envelope checks).
 *
 *   Path           = "<" [ A-d-l ":" ] Mailbox ">"
 *   Mailbox        = Local-part "@" ( Domain / address-literal )
 *   Local-part     = Dot-string / Quoted-string
 *   address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 *                          General-address-literal ) "]"
 *
 * The source route (A-d-l) is accepted and ignored (RFC 5321 4.1.2, C.).
 * One trailing dot on the domain is accepted and removed for routing.
 */
/* Include "smtp.h", not this header. */
#ifndef SMTP_ADDR_H
#define SMTP_ADDR_H

/* Flags for the parser. */
#define SMTP_ADDR_UTF8 0x1u       /* RFC 6531: UTF-8 in local part and domain */
#define SMTP_ADDR_NULL_OK 0x2u    /* "<>" allowed (MAIL FROM, RFC 5321 4.5.5) */
#define SMTP_ADDR_POSTMASTER 0x4u /* "<Postmaster>" allowed (RCPT, 4.1.1.3) */

struct smtp_addr {
	bool null;               /* "<>" */
	bool postmaster;         /* "<Postmaster>" without domain */
	bool utf8;               /* contains octets >= 0x80 */
	bool quoted;             /* local part is a Quoted-string */
	bool literal;            /* domain is an address literal "[...]" */
	struct smtp_slice local; /* local part exactly as given (with quotes) */
	struct smtp_slice domain;  /* domain as given, without trailing dot;
	                            * literals include the brackets */
	struct smtp_slice mailbox; /* local "@" domain as given (source route
	                            * removed, trailing dot kept if given) */
};

/*
 * Parses a Path ("<...>") at the start of p. Returns bytes consumed (> 0,
 * up to and including ">"), or SMTP_ERR_ADDR (bad syntax, UTF-8 without
 * SMTP_ADDR_UTF8, malformed UTF-8, "<>" without SMTP_ADDR_NULL_OK) or
 * SMTP_ERR_TOO_LONG (local part > 64, domain > 255, label > 63, path > 256
 * octets: RFC 5321 4.5.3.1). Never allocates; slices point into p.
 */
SMTP_MUST_USE int smtp_addr_parse_path(const uint8_t *p, size_t len,
    unsigned flags, struct smtp_addr *a);

/*
 * Parses a bare Mailbox occupying all of p (e.g. the sender of a queued
 * envelope, without angle brackets). An empty input is the null sender
 * when SMTP_ADDR_NULL_OK is given. Returns 0 or the errors of
 * smtp_addr_parse_path().
 */
SMTP_MUST_USE int smtp_addr_parse_mailbox(const uint8_t *p, size_t len,
    unsigned flags, struct smtp_addr *a);

/*
 * Writes the domain normalised for routing into out: ASCII letters
 * lowercased, no trailing dot; IDN A-labels ("xn--") are kept as given
 * (only lowercased) and U-labels are kept byte for byte (this module does
 * no IDNA mapping). Address literals are copied unchanged. NUL terminated.
 * Returns the length written (>= 0), SMTP_ERR_FULL if outlen is too small,
 * SMTP_ERR_INVAL for a null/postmaster address (no domain).
 */
SMTP_MUST_USE int smtp_addr_domain(const struct smtp_addr *a, char *out,
    size_t outlen);

/*
 * Writes "local@domain" with the local part as given and the domain
 * normalised as by smtp_addr_domain(); "" for the null sender and
 * "Postmaster" for the bare postmaster. NUL terminated. Returns the length
 * (>= 0) or SMTP_ERR_FULL. SMTP_PATH_MAX + 1 bytes always suffice.
 */
SMTP_MUST_USE int smtp_addr_format(const struct smtp_addr *a, char *out,
    size_t outlen);

#endif /* SMTP_ADDR_H */
