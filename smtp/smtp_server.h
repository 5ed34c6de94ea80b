/*
 * Server session: the inbound side, where the local Postfix hands
 * danerelay its outbound mail. A pure state machine (STYLE.md section 6):
 * the driver feeds received bytes, pulls events, sends the output bytes,
 * and gives verdicts where an event asks for one. It never calls out.
 *
 * Driver loop (relay/):
 *
 *   s = smtp_server_new(&cfg);            // banner is already in the output
 *   on read(p, n):  smtp_server_feed(s, p, n);  pump();
 *   pump():
 *     for (;;) {
 *       smtp_server_next(s, &ev);
 *       switch (ev.type) {
 *       case SMTP_SERVER_EV_NONE:  goto flush;   // need input or a verdict
 *       case SMTP_SERVER_EV_RCPT:  ... smtp_server_accept(s) or
 *                                  smtp_server_reply(s, 550, "5.7.1", "no"); break;
 *       case SMTP_SERVER_EV_BODY:  write ev.data to the spool file; break;
 *       case SMTP_SERVER_EV_MESSAGE: start fsync; later, from the fsync
 *                                  callback: smtp_server_accept(s) or
 *                                  smtp_server_reply(s, 452, "4.3.1", ...);
 *                                  then pump() again; goto flush;
 *       case SMTP_SERVER_EV_STARTTLS: flush, handshake, then
 *                                  smtp_server_tls_started(s); pump();
 *       case SMTP_SERVER_EV_CLOSE: flush, then close the connection;
 *       ...
 *       }
 *     }
 *   flush: send smtp_server_output(), then smtp_server_output_consume();
 *          when the write completes, call pump() again (the machine stops
 *          early when much output is pending).
 *
 * Replies are batched: the machine processes every complete pipelined
 * command it holds (RFC 2920) and appends each reply to the output; it
 * returns EV_NONE only when it needs more input, a verdict, or the output
 * to drain. While a verdict is pending, input that arrives is buffered
 * and processed after the verdict, in order.
 *
 * Refusing a client (outside mynetworks): create the session with
 * cfg.reject = true. The banner is "554 5.7.1 <reject_text>"; every command
 * but QUIT gets "503 5.5.1" (RFC 5321 3.1: after a 554 greeting the server
 * waits for QUIT and answers 503 to other commands); QUIT gets 221 and
 * CLOSE; the error limit still applies (421 and CLOSE).
 *
 * Lifetimes: every slice in an event points into the session's input
 * buffer and is valid until the next call of any smtp_server_* function on
 * the same session (copy what you keep).
 */
/* Include "smtp.h", not this header. */
#ifndef SMTP_SERVER_H
#define SMTP_SERVER_H

enum smtp_server_state {
	SMTP_SERVER_INIT,    /* banner sent, no EHLO/HELO yet */
	SMTP_SERVER_READY,   /* after EHLO/HELO, no transaction */
	SMTP_SERVER_MAIL,    /* MAIL accepted: RCPT, DATA or BDAT expected */
	SMTP_SERVER_DATA,    /* reading DATA content */
	SMTP_SERVER_BDAT,    /* reading a BDAT chunk */
	SMTP_SERVER_VERDICT, /* waiting for smtp_server_accept()/reply() */
	SMTP_SERVER_STARTTLS, /* 220 sent, waiting for smtp_server_tls_started() */
	SMTP_SERVER_REJECT, /* reject mode: 503 to all but QUIT */
	SMTP_SERVER_CLOSED, /* conversation over; close after flushing */
};

/* "init", "ready", "mail", "data", "bdat", "verdict", "starttls",
 * "reject", "closed". Static, never NULL. Use it to index the driver's
 * per-state timeout table. */
const char *smtp_server_state_name(enum smtp_server_state st);

/* Zero means "default" for every numeric field. */
struct smtp_server_config {
	const char *hostname;    /* our name in banner/EHLO; copied; required */
	const char *banner_text; /* after "220 hostname "; default "ESMTP" */
	uint64_t max_message_size; /* SIZE limit (RFC 1870); default 50 MiB */
	size_t max_recipients;     /* default 1000; raised to 100 if lower
	                              * (RFC 5321 4.5.3.1.8) */
	unsigned max_errors;       /* bad commands before 421; default 10 */
	size_t max_line;           /* content line incl. CRLF; default 1000
	                              * (RFC 5321 4.5.3.1.6) */
	size_t in_max;             /* input buffer ceiling; default 256 KiB */
	size_t out_max;            /* output buffer ceiling; default 64 KiB */
	bool starttls;             /* advertise STARTTLS (daemon has a cert) */
	bool requiretls;           /* advertise REQUIRETLS (RFC 8689), only
	                            * in the EHLO after STARTTLS: RFC 8689 2
	                            * lets a client use it only in a session
	                            * that employs TLS; MAIL ... REQUIRETLS is
	                            * otherwise an unknown parameter (555) */
	bool decide_mail;          /* MAIL events need a verdict (else 250) */
	bool decide_rcpt;          /* RCPT events need a verdict (else 250) */
	bool reject;               /* reject mode, see above */
	const char *reject_text;   /* default "Relay access denied" */
};

enum smtp_server_ev_type {
	SMTP_SERVER_EV_NONE,     /* nothing to do: flush output, then feed
	                          * input or give the pending verdict */
	SMTP_SERVER_EV_HELO,     /* EHLO/HELO accepted (informational) */
	SMTP_SERVER_EV_MAIL,     /* MAIL FROM: ev.addr, ev.mail; a transaction
	                          * starts (verdict if cfg.decide_mail) */
	SMTP_SERVER_EV_RCPT,     /* RCPT TO: ev.addr, ev.rcpt (verdict if
	                          * cfg.decide_rcpt; else already accepted) */
	SMTP_SERVER_EV_DATA,     /* content begins (DATA 354 sent, or first
	                          * BDAT): open the spool file */
	SMTP_SERVER_EV_BODY,     /* ev.data: next content bytes, unstuffed,
	                          * CRLF line endings */
	SMTP_SERVER_EV_MESSAGE,  /* content complete (ev.size octets): make it
	                          * durable, then give the verdict; the 250 is
	                          * sent only then */
	SMTP_SERVER_EV_RESET,    /* the transaction is abandoned (RSET, EHLO,
	                          * rejected content, EOF...): drop the envelope
	                          * and any partial spool file */
	SMTP_SERVER_EV_STARTTLS, /* flush output (the 220), run the TLS
	                          * handshake, call smtp_server_tls_started() */
	SMTP_SERVER_EV_CLOSE,    /* flush output, close the connection */
	SMTP_SERVER_EV_REFUSED,  /* informational: the machine refused what
	                          * the client sent for breaking a protocol
	                          * rule (bare CR/LF, NUL, size, line length,
	                          * error limit; the input ceiling is
	                          * reported by smtp_server_feed()); ev.code,
	                          * ev.enhanced and ev.reason say what was
	                          * replied and why. Log it: an attempt to
	                          * smuggle must leave a trace. */
};

struct smtp_server_event {
	enum smtp_server_ev_type type;
	bool needs_verdict;           /* MAIL, RCPT (if configured), MESSAGE */
	bool esmtp;                   /* HELO: EHLO (true) or HELO */
	struct smtp_slice helo;       /* HELO: the client's argument */
	struct smtp_addr addr;        /* MAIL, RCPT */
	struct smtp_mail_params mail; /* MAIL */
	struct smtp_rcpt_params rcpt; /* RCPT */
	struct smtp_slice data;       /* BODY */
	uint64_t size;                /* MESSAGE: content octets */
	bool chunked;                 /* DATA, MESSAGE: via BDAT */
	bool eightbit;                /* MESSAGE: the content has octets
	                                * above 127, whatever BODY= said
	                                * (RFC 6152) */
	uint16_t code;                /* REFUSED: the reply code sent */
	const char *enhanced; /* REFUSED: its enhanced status (static) */
	const char *reason;   /* RESET, CLOSE, REFUSED: static text
	                                * for logs ("rset", "quit", "eof",
	                                * "bare CR/LF in content"...) */
};

/* Opaque session. */
struct smtp_server;

/*
 * Creates a session; the banner (220, or 554 in reject mode) is already in
 * the output. cfg and its strings are copied. Returns NULL when out of
 * memory or cfg->hostname is NULL/empty/contains CR, LF or controls.
 * Free with smtp_server_free().
 */
struct smtp_server *smtp_server_new(const struct smtp_server_config *cfg);

/* Frees s and everything it owns. NULL is a no-op. */
void smtp_server_free(struct smtp_server *s);

/*
 * Appends received bytes (borrowed; copied). Processing happens in
 * smtp_server_next(). Returns 0; SMTP_ERR_FULL when the input ceiling is
 * exceeded: the session then queues "421 4.3.0" and the next event is
 * CLOSE (after RESET if a transaction was open). Bytes fed while the
 * session waits for the TLS handshake are discarded (they arrived in the
 * clear after STARTTLS: CVE-2011-0411 class injection). Bytes fed after
 * CLOSE are ignored.
 */
SMTP_MUST_USE int smtp_server_feed(struct smtp_server *s, const uint8_t *p,
    size_t len);

/*
 * Tells the machine the client closed the connection. The next events are
 * RESET (if a transaction was open) and CLOSE. Returns 0.
 */
SMTP_MUST_USE int smtp_server_eof(struct smtp_server *s);

/*
 * Runs the machine until it has an event; fills *ev. Returns 0, or
 * SMTP_ERR_NOMEM / SMTP_ERR_FULL when the output could not be written (the
 * driver should close). EV_NONE means: flush the output, then feed more
 * input (smtp_server_wants_input()) or give the verdict.
 */
SMTP_MUST_USE int smtp_server_next(struct smtp_server *s,
    struct smtp_server_event *ev);

/*
 * Verdicts, for the event that had needs_verdict. smtp_server_accept()
 * sends the default success reply (250 2.1.0 / 250 2.1.5 /
 * "250 2.0.0 Ok: queued"). smtp_server_reply() sends code (2xx = accept
 * with this text, 4xx/5xx = reject; 421 also closes the session, like
 * Postfix's "421 4.3.0 shutting down") with the enhanced status (NULL:
 * X.0.0 from the code) and text (NULL: a default). Texts must be printable
 * ASCII without CR/LF and below 400 octets. After a MESSAGE verdict the
 * transaction is over either way and buffered pipelined input is processed
 * on the next smtp_server_next(). Returns 0, SMTP_ERR_STATE when no
 * verdict is pending, SMTP_ERR_INVAL for a bad code/status/text.
 */
SMTP_MUST_USE int smtp_server_accept(struct smtp_server *s);
SMTP_MUST_USE int smtp_server_reply(struct smtp_server *s, uint16_t code,
    const char *enhanced, const char *text);

/*
 * After EV_STARTTLS, once the handshake succeeded: resets the session to
 * the state after the banner (RFC 3207 4.2: forget everything learned
 * before TLS, the client must EHLO again; STARTTLS is no longer offered).
 * Returns 0 or SMTP_ERR_STATE. On handshake failure simply free the session.
 */
SMTP_MUST_USE int smtp_server_tls_started(struct smtp_server *s);

/*
 * Ends the session from the driver's side (timeout, daemon shutdown):
 * queues "421 <enhanced> <hostname> <text>" (defaults 4.4.2 / "Error:
 * timeout exceeded"), then the next events are RESET (if a transaction was
 * open) and CLOSE. Returns 0 or SMTP_ERR_INVAL.
 */
SMTP_MUST_USE int smtp_server_abort(struct smtp_server *s, const char *enhanced,
    const char *text);

/* Pending output: *len bytes at the returned pointer (NULL if none), valid
 * until the next call on s. Send them, then consume what was sent. */
const uint8_t *smtp_server_output(const struct smtp_server *s, size_t *len);
void smtp_server_output_consume(struct smtp_server *s, size_t n);

/* Current state (for the driver's timeout table and logs). */
enum smtp_server_state smtp_server_state(const struct smtp_server *s);

/* False while a verdict, the TLS handshake or the output drain is awaited,
 * or after CLOSE: the driver may stop reading (backpressure). */
bool smtp_server_wants_input(const struct smtp_server *s);

/* True after smtp_server_tls_started(). */
bool smtp_server_is_tls(const struct smtp_server *s);

#endif /* SMTP_SERVER_H */
