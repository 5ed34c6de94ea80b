/*
 * Client session: the outbound side, danerelay talking to the recipient's
 * MX. A pure state machine: the driver feeds the server's bytes, pulls
 * events, sends the output bytes. It never calls out.
 *
 * Driver loop (relay/):
 *
 *   c = smtp_client_new(&cfg);
 *   smtp_client_start_message(c, &env);     // may be called at once
 *   on connect/read:  smtp_client_feed(c, p, n); pump();
 *   pump(): for (;;) { smtp_client_next(c, &ev); switch (ev.type) {
 *     case SMTP_CLIENT_EV_NONE:      send smtp_client_output(); read more;
 *     case SMTP_CLIENT_EV_STARTTLS:  (output is empty) run the TLS handshake
 *                                    with DANE checks; on success
 *                                    smtp_client_tls_started(c), on failure
 *                                    smtp_client_abort(c, "4.7.5", why);
 *     case SMTP_CLIENT_EV_READY:     idle: start_message() or quit(), or
 *                                    keep the connection for reuse;
 *     case SMTP_CLIENT_EV_RCPT:      ev.result for env.rcpts[ev.rcpt_index];
 *     case SMTP_CLIENT_EV_SEND_BODY: stream the spool file with
 *                                    smtp_client_body() (flushing output
 *                                    between chunks), then
 *                                    smtp_client_body_end();
 *     case SMTP_CLIENT_EV_MESSAGE:   ev.result: the message outcome;
 *     case SMTP_CLIENT_EV_DONE:      flush the output, close; ev.result
 *                                    says why (klass 2 = clean QUIT).
 *   } }
 *
 * Outcome contract (what the relay records per recipient): for every
 * started message the machine emits exactly one RCPT event per recipient,
 * in order, then exactly one MESSAGE event, even when the session fails
 * midway (EOF, abort, 421, STARTTLS missing under REQUIRED: the remaining
 * RCPT events and the MESSAGE event carry that failure). A recipient whose
 * RCPT result has klass 2 takes the MESSAGE result; otherwise its own.
 *
 * TLS modes: NONE never sends STARTTLS. MAY sends it when offered and
 * continues in the clear when it is refused (the driver decides what to do
 * when the handshake itself fails). REQUIRED fails the session when
 * STARTTLS is not offered (reason STARTTLS_NOT_OFFERED) or refused
 * (STARTTLS_REFUSED), both klass 4 with status 4.7.5 so the relay moves on
 * to the next MX; it never continues in cleartext (RFC 7672 2.2, C-rows of
 * the checklist). The server's bytes after the 220 to STARTTLS are
 * discarded before the handshake (RFC 3207 4.2 / CVE-2011-0411).
 *
 * Lifetimes: ev.result points into the session and is valid until the
 * next call of any smtp_client_* function on it.
 */
/* Include "smtp.h", not this header. */
#ifndef SMTP_CLIENT_H
#define SMTP_CLIENT_H

enum smtp_tls_mode {
	SMTP_TLS_NONE,
	SMTP_TLS_MAY,
	SMTP_TLS_REQUIRED,
};

enum smtp_client_state {
	SMTP_CLIENT_BANNER,   /* waiting for the 220 greeting */
	SMTP_CLIENT_EHLO,     /* EHLO sent */
	SMTP_CLIENT_HELO,     /* HELO sent (fallback) */
	SMTP_CLIENT_STARTTLS, /* STARTTLS sent */
	SMTP_CLIENT_TLS,      /* driver runs the handshake */
	SMTP_CLIENT_READY,    /* idle between messages */
	SMTP_CLIENT_RSET,     /* RSET sent before the next message */
	SMTP_CLIENT_ENVELOPE, /* MAIL/RCPT(/DATA) replies outstanding */
	SMTP_CLIENT_BODY,     /* driver streams the content */
	SMTP_CLIENT_DOT,      /* end of data sent, final reply outstanding */
	SMTP_CLIENT_QUIT,     /* QUIT sent */
	SMTP_CLIENT_DONE,     /* over; close the connection */
};

/* "banner", "ehlo", "helo", "starttls", "tls", "ready", "rset",
 * "envelope", "body", "dot", "quit", "done". Static, never NULL. */
const char *smtp_client_state_name(enum smtp_client_state st);

struct smtp_client_config {
	const char *helo_name; /* our EHLO name; copied; required */
	enum smtp_tls_mode tls;
	bool allow_helo;    /* HELO when EHLO is refused; never under
	                            * TLS REQUIRED, never after TLS */
	bool no_pipelining; /* do not pipeline even if offered */
	bool use_chunking;  /* BDAT instead of DATA when offered */
	size_t in_max;      /* input ceiling; default 64 KiB */
	size_t out_max;     /* output ceiling; default 256 KiB */
};

struct smtp_client_rcpt {
	const char *addr;  /* mailbox without <>; required */
	unsigned notify;   /* SMTP_NOTIFY_* bits, 0 = not given */
	const char *orcpt; /* ORCPT value ("rfc822;x+40y"), NULL = none */
};

struct smtp_envelope {
	const char *sender; /* mailbox without <>; "" = null sender */
	const struct smtp_client_rcpt *rcpts;
	size_t nrcpts;       /* >= 1 */
	uint64_t size;       /* SIZE= estimate; 0 = not sent */
	enum smtp_body body; /* 8BITMIME sent as BODY=8BITMIME when
	                            * offered, else the content goes unchanged
	                            * (as Postfix does); BINARYMIME is sent as
	                            * 8BITMIME */
	enum smtp_ret ret;   /* DSN RET, sent when DSN is offered */
	const char *envid;   /* DSN ENVID xtext or NULL */
	bool smtputf8;       /* SMTPUTF8 needed (also implied by UTF-8
	                            * in any address) */
	bool requiretls;     /* RFC 8689: sent as MAIL ... REQUIRETLS; a
	                            * session without TLS or without
	                            * REQUIRETLS in the EHLO after STARTTLS
	                            * sends nothing: the message fails with
	                            * reason REQUIRETLS_NOT_OFFERED, 5.7.30 */
};

enum smtp_client_ev_type {
	SMTP_CLIENT_EV_NONE,      /* flush output, then feed more input */
	SMTP_CLIENT_EV_STARTTLS,  /* run the TLS handshake now */
	SMTP_CLIENT_EV_READY,     /* idle and no message queued */
	SMTP_CLIENT_EV_RCPT,      /* ev.rcpt_index, ev.result */
	SMTP_CLIENT_EV_SEND_BODY, /* stream the content */
	SMTP_CLIENT_EV_MESSAGE,   /* ev.result: final outcome of the message */
	SMTP_CLIENT_EV_DONE,      /* close; ev.result says why */
};

struct smtp_client_event {
	enum smtp_client_ev_type type;
	size_t rcpt_index;                /* RCPT */
	const struct smtp_result *result; /* RCPT, MESSAGE, DONE */
};

struct smtp_client;

/* Creates a session waiting for the banner. cfg is copied. Returns NULL
 * when out of memory or helo_name is missing or not printable ASCII. */
struct smtp_client *smtp_client_new(const struct smtp_client_config *cfg);

/* Frees c. NULL is a no-op. */
void smtp_client_free(struct smtp_client *c);

/* Appends bytes received from the server (copied). Returns 0 or
 * SMTP_ERR_FULL (the session then fails with reason PROTOCOL). Bytes fed
 * during the TLS handshake or after DONE are ignored. */
SMTP_MUST_USE int smtp_client_feed(struct smtp_client *c, const uint8_t *p,
    size_t len);

/* The server closed the connection: outstanding recipients and the message
 * fail with reason CONNECTION_LOST (klass 4), then DONE. After QUIT was
 * sent an EOF is a clean end. Returns 0. */
SMTP_MUST_USE int smtp_client_eof(struct smtp_client *c);

/* The driver gives up (timeout, TLS handshake or DANE failure): like EOF
 * but reason ABORTED with the given enhanced status (class 4 or 5, e.g.
 * "4.7.5"; NULL = "4.4.2") and text (NULL = "aborted"). No QUIT is sent.
 * Returns 0 or SMTP_ERR_INVAL. */
SMTP_MUST_USE int smtp_client_abort(struct smtp_client *c, const char *enhanced,
    const char *text);

/* Runs the machine until it has an event; fills *ev. Returns 0 or
 * SMTP_ERR_NOMEM / SMTP_ERR_FULL (output could not be written). */
SMTP_MUST_USE int smtp_client_next(struct smtp_client *c,
    struct smtp_client_event *ev);

/* After EV_STARTTLS and a successful handshake: forgets the capabilities
 * and sends EHLO again (RFC 3207 4.2). Returns 0 or SMTP_ERR_STATE. */
SMTP_MUST_USE int smtp_client_tls_started(struct smtp_client *c);

/*
 * Queues a message; sent as soon as the session is ready (RSET first when
 * the previous transaction was left open). env and its strings are copied.
 * Returns 0; SMTP_ERR_STATE when a message is already queued or in
 * progress or the session is ending; SMTP_ERR_ADDR when an address does not
 * parse as an RFC 5321 Mailbox; SMTP_ERR_INVAL for no recipients or a bad
 * ENVID/ORCPT xtext.
 */
SMTP_MUST_USE int smtp_client_start_message(struct smtp_client *c,
    const struct smtp_envelope *env);

/*
 * After EV_SEND_BODY: encodes len content bytes into the output
 * (dot-stuffing and CRLF normalisation, see smtp_data.h; with BDAT, one
 * chunk per call). Returns 0; SMTP_ERR_FULL when the output lacks room
 * (nothing consumed: flush the output and retry; keep chunks below
 * out_max / 2); SMTP_ERR_STATE when not streaming (e.g. the message has
 * failed meanwhile: a MESSAGE event is pending).
 */
SMTP_MUST_USE int smtp_client_body(struct smtp_client *c, const uint8_t *p,
    size_t len);

/* Ends the content ("." or "BDAT 0 LAST"). Returns 0, SMTP_ERR_FULL or
 * SMTP_ERR_STATE. */
SMTP_MUST_USE int smtp_client_body_end(struct smtp_client *c);

/* Sends QUIT when idle (READY); DONE follows the 221 or EOF. In any other
 * state returns SMTP_ERR_STATE. */
SMTP_MUST_USE int smtp_client_quit(struct smtp_client *c);

/* Pending output, as for the server. */
const uint8_t *smtp_client_output(const struct smtp_client *c, size_t *len);
void smtp_client_output_consume(struct smtp_client *c, size_t n);

enum smtp_client_state smtp_client_state(const struct smtp_client *c);

/* Capabilities of the current EHLO (zeroed before EHLO and after TLS). */
const struct smtp_caps *smtp_client_caps(const struct smtp_client *c);

/* True after smtp_client_tls_started(). */
bool smtp_client_is_tls(const struct smtp_client *c);

#endif /* SMTP_CLIENT_H */
