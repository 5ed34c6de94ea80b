#ifndef RELAY_DSN_H
#define RELAY_DSN_H
/*
 * relay_dsn: compose delivery status notifications (RFC 3464
 * multipart/report; RFC 3461 rules for who gets one) for recipients that
 * failed or are delayed. The result is a complete RFC 5322 message with CRLF
 * line endings, to be queued with the null sender (RFC 3461 6.1) and routed
 * like any other mail (so the same DANE policy applies).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum relay_dsn_action {
	RELAY_DSN_FAILED,  /* RFC 3464 2.3.3 "failed" */
	RELAY_DSN_DELAYED, /* RFC 3464 2.3.3 "delayed" */
};

/* NOTIFY as given at RCPT (RFC 3461 4.1); 0 means NOTIFY was absent. */
#define RELAY_DSN_NOTIFY_NEVER 0x01
#define RELAY_DSN_NOTIFY_SUCCESS 0x02
#define RELAY_DSN_NOTIFY_FAILURE 0x04
#define RELAY_DSN_NOTIFY_DELAY 0x08

/*
 * Whether a DSN of this action is due for a recipient with these NOTIFY
 * flags and a message with this sender. RFC 3461 5.2.5 (no "delayed"
 * without DELAY when NOTIFY was given), 5.2.6 (failed when NOTIFY includes
 * FAILURE or is absent), and never to the null sender (RFC 3461 6.1,
 * RFC 5321 6.1: no bounce loops).
 */
bool relay_dsn_wanted(enum relay_dsn_action action, unsigned notify,
    const char *sender);

struct relay_dsn_rcpt {
	const char *address; /* final recipient, without brackets */
	const char *orcpt;   /* ORCPT "type;addr" as received, or NULL */
	enum relay_dsn_action action;
	const char *status;     /* enhanced status, e.g. "4.7.5" */
	const char *remote_mta; /* MX host name, or NULL if none was reached */
	const char *diagnostic; /* SMTP reply or local reason, or NULL */
	const char *domain;     /* destination domain, for the prose */
	const char *reason;     /* plain-language why, for the prose */
	int64_t last_attempt;   /* epoch seconds, 0 if none */
	int64_t
	    will_retry_until; /* delayed only: epoch seconds, 0 if unknown */
};

struct relay_dsn_msg {
	const char *reporting_mta; /* our myhostname */
	const char *queue_id;      /* of the original message */
	const char *envid;         /* RFC 3461 ENVID (xtext-decoded), or NULL */
	const char *sender;      /* original envelope sender (DSN recipient) */
	int64_t arrival;         /* epoch seconds */
	int64_t now;             /* epoch seconds, injected for tests */
	bool ret_full;           /* RET=FULL: return the whole message */
	const uint8_t *original; /* original message content (borrowed) */
	size_t original_len;
};

enum relay_dsn_err {
	RELAY_DSN_OK = 0,
	RELAY_DSN_ENOMEM = -1,
	RELAY_DSN_EINVAL = -2,
};

/*
 * Compose the DSN for n recipients (all of one action). On success *out is
 * a malloc'd buffer of *outlen bytes (not NUL-terminated) the caller frees.
 */
int relay_dsn_compose(const struct relay_dsn_msg *m,
    const struct relay_dsn_rcpt *rcpts, size_t n, uint8_t **out, size_t *outlen)
    __attribute__((warn_unused_result));

#endif
