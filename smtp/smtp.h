/*
 * smtp/: the SMTP protocol engine of danerelay, without I/O.
 *
 * libc only: no sockets, no event loop, no TLS library, no clock and no
 * logging (STYLE.md section 1). Everything here takes bytes and returns
 * bytes, slices and events; the daemon (relay/) owns the sockets, the TLS
 * handshake, the timeouts and the log.
 *
 * This umbrella header defines what every part shares (error codes, slices,
 * RFC limits, stage names) and includes the concept headers:
 *
 *   smtp_buf.h     bounded byte buffer (read cursor, write cursor, ceiling)
 *   smtp_reply.h   reply parser (multiline, RFC 3463 enhanced status codes),
 *                  EHLO capability parser, delivery result type
 *   smtp_addr.h    RFC 5321 Path / Mailbox parser, domain normalisation
 *   smtp_cmd.h     server-side command parser, ESMTP parameters, command
 *                  formatter
 *   smtp_data.h    DATA encoder (dot-stuffing, CRLF normalisation) and
 *                  decoder (dot-unstuffing, strict end of data)
 *   smtp_server.h  server session state machine (inbound from Postfix)
 *   smtp_client.h  client session state machine (outbound to the MX)
 *
 * Conventions used by every function of the module:
 *  - Fallible functions return int: 0 (or a positive byte count where
 *    documented) on success, a negative enum smtp_err on failure. They are
 *    marked warn_unused_result.
 *  - Parsers take (const uint8_t *p, size_t len), never assume NUL
 *    termination, never allocate, and return slices into their input. A
 *    slice is valid as long as the parsed input is.
 *  - Nothing here calls back into the caller. State machines are pulled:
 *    the caller feeds bytes and asks for the next event.
 */
#ifndef SMTP_H
#define SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_MUST_USE __attribute__((warn_unused_result))

/* Error codes. Every fallible function returns 0 or one of these. */
enum smtp_err {
	SMTP_OK = 0,
	SMTP_ERR_AGAIN = -1,       /* input incomplete: feed more bytes */
	SMTP_ERR_SYNTAX = -2,      /* malformed input */
	SMTP_ERR_TOO_LONG = -3,    /* an RFC 5321 4.5.3 limit was exceeded */
	SMTP_ERR_NOMEM = -4,       /* malloc failed */
	SMTP_ERR_FULL = -5,        /* a buffer reached its fixed ceiling */
	SMTP_ERR_STATE = -6,       /* call not valid in the current state */
	SMTP_ERR_INVAL = -7,       /* invalid argument (e.g. CR/LF in text) */
	SMTP_ERR_UNKNOWN_CMD = -8, /* command verb not recognised */
	SMTP_ERR_PARAM = -9,       /* ESMTP parameter not recognised */
	SMTP_ERR_ADDR = -10,       /* bad mailbox / path syntax */
	SMTP_ERR_BARE_NL = -11, /* bare CR or bare LF where CRLF is required */
};

/* Returns a static English description of an smtp_err value (never NULL). */
const char *smtp_strerror(int err);

/*
 * Limits, RFC 5321 section 4.5.3.1. All include the terminating CRLF where
 * the RFC says so.
 */
#define SMTP_LOCAL_PART_MAX 64  /* 4.5.3.1.1 local-part octets */
#define SMTP_DOMAIN_MAX 255     /* 4.5.3.1.2 domain octets */
#define SMTP_LABEL_MAX 63       /* RFC 1035 2.3.4 label octets */
#define SMTP_PATH_MAX 256       /* 4.5.3.1.3 path incl. "<" ">" */
#define SMTP_CMD_LINE_MAX 512   /* 4.5.3.1.4 command line incl. CRLF */
#define SMTP_REPLY_LINE_MAX 512 /* 4.5.3.1.5 reply line incl. CRLF */
#define SMTP_TEXT_LINE_MAX 1000 /* 4.5.3.1.6 text line incl. CRLF */
#define SMTP_RCPT_MIN 100       /* 4.5.3.1.8 recipients that MUST be accepted */
#define SMTP_REPLY_LINES_MAX 128 /* our bound on lines of one multiline reply */
#define SMTP_ENVID_MAX 100       /* RFC 3461 4.4 ENVID xtext octets */
#define SMTP_ORCPT_MAX 500       /* RFC 3461 4.2 ORCPT value octets */

/* A borrowed view of bytes; never NUL terminated. */
struct smtp_slice {
	const uint8_t *p;
	size_t len;
};

/*
 * Stages of an SMTP conversation, for logs ("stage=rcpt") and for the
 * client's results: the command whose reply decided an outcome.
 */
enum smtp_stage {
	SMTP_STAGE_BANNER,
	SMTP_STAGE_EHLO,
	SMTP_STAGE_HELO,
	SMTP_STAGE_STARTTLS,
	SMTP_STAGE_MAIL,
	SMTP_STAGE_RCPT,
	SMTP_STAGE_DATA,
	SMTP_STAGE_BDAT,
	SMTP_STAGE_DOT,
	SMTP_STAGE_RSET,
	SMTP_STAGE_QUIT,
};

/* "banner", "ehlo", "helo", "starttls", "mail", "rcpt", "data", "bdat",
 * "dot", "rset", "quit"; static, never NULL ("?" for an invalid value). */
const char *smtp_stage_name(enum smtp_stage stage);

/* MAIL BODY= (RFC 6152, RFC 3030). NONE means "not given". */
enum smtp_body {
	SMTP_BODY_NONE,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

/* MAIL RET= (RFC 3461 4.3). NONE means "not given". */
enum smtp_ret {
	SMTP_RET_NONE,
	SMTP_RET_FULL,
	SMTP_RET_HDRS,
};

/* RCPT NOTIFY= bits (RFC 3461 4.1). 0 means "not given". NEVER is exclusive. */
#define SMTP_NOTIFY_NEVER 0x1u
#define SMTP_NOTIFY_SUCCESS 0x2u
#define SMTP_NOTIFY_FAILURE 0x4u
#define SMTP_NOTIFY_DELAY 0x8u

#include "smtp_buf.h"
#include "smtp_reply.h"
#include "smtp_addr.h"
#include "smtp_cmd.h"
#include "smtp_data.h"
#include "smtp_server.h"
#include "smtp_client.h"

#endif /* SMTP_H */
