/* Server session state machine (inbound from the local MTA). */
#include <inttypes.h>
#include <string.h>

#include "smtp_int.h"

#define SERVER_DEFAULT_MAX_SIZE (50u * 1024 * 1024)
#define SERVER_DEFAULT_MAX_RCPT 1000
#define SERVER_DEFAULT_MAX_ERRORS 10
#define SERVER_DEFAULT_IN_MAX (256u * 1024)
#define SERVER_DEFAULT_OUT_MAX (64u * 1024)
#define SERVER_EVQ 8
/* Longest reply text the driver may give (a reply line stays < 512). */
#define SERVER_TEXT_MAX 400

enum pending {
	PEND_NONE,
	PEND_MAIL,
	PEND_RCPT,
	PEND_MESSAGE,
};

struct smtp_server {
	struct smtp_server_config cfg;
	char *hostname;
	char *banner_text;
	char *reject_text;
	enum smtp_server_state state;
	struct smtp_buf in;
	struct smtp_buf out;
	bool tls;
	bool helo_done;
	bool esmtp;
	char helo[SMTP_CMD_LINE_MAX];
	unsigned errors;
	bool discard_line; /* skipping the rest of an over-long line */
	/* transaction */
	bool in_tx; /* MAIL accepted */
	bool mail_smtputf8;
	size_t nrcpt; /* accepted recipients */
	bool bdat_used;
	bool content_started;
	bool too_big;
	struct smtp_data_dec dec;
	uint64_t bdat_remaining;
	bool bdat_last;
	bool bdat_discard;
	uint16_t bdat_fail_code;
	const char *bdat_fail_text;
	enum pending pending;
	/* event queue */
	struct smtp_server_event evq[SERVER_EVQ];
	size_t evq_head;
	size_t evq_len;
	bool close_queued;
};

const char *
smtp_server_state_name(enum smtp_server_state st)
{
	switch (st) {
	case SMTP_SERVER_INIT:
		return "init";
	case SMTP_SERVER_READY:
		return "ready";
	case SMTP_SERVER_MAIL:
		return "mail";
	case SMTP_SERVER_DATA:
		return "data";
	case SMTP_SERVER_BDAT:
		return "bdat";
	case SMTP_SERVER_VERDICT:
		return "verdict";
	case SMTP_SERVER_STARTTLS:
		return "starttls";
	case SMTP_SERVER_REJECT:
		return "reject";
	case SMTP_SERVER_CLOSED:
		return "closed";
	}
	return "?";
}

/* The only writer of s->state (STYLE.md 6). smtp/ does not log; the driver
 * reads smtp_server_state() after each event. */
static void
enter_state(struct smtp_server *s, enum smtp_server_state st)
{
	s->state = st;
}

static struct smtp_server_event *
push_event(struct smtp_server *s, enum smtp_server_ev_type type)
{
	SMTP_ASSERT(s->evq_len < SERVER_EVQ);
	struct smtp_server_event *ev =
	    &s->evq[(s->evq_head + s->evq_len) % SERVER_EVQ];
	s->evq_len++;
	memset(ev, 0, sizeof(*ev));
	ev->type = type;
	return ev;
}

static char *
dup_str(const char *s)
{
	size_t n = strlen(s);
	char *d = malloc(n + 1);
	if (d != NULL)
		memcpy(d, s, n + 1);
	return d;
}

static int
reply(struct smtp_server *s, unsigned code, const char *enh, const char *text)
{
	if (enh != NULL)
		return smtp_buf_printf(&s->out, "%u %s %s\r\n", code, enh,
		    text);
	return smtp_buf_printf(&s->out, "%u %s\r\n", code, text);
}

static void
idle_state(struct smtp_server *s)
{
	enter_state(s, s->helo_done ? SMTP_SERVER_READY : SMTP_SERVER_INIT);
}

/* Ends the current transaction; tells the driver when it had one. */
static void
end_tx(struct smtp_server *s, const char *why)
{
	if (s->in_tx && why != NULL)
		push_event(s, SMTP_SERVER_EV_RESET)->reason = why;
	s->in_tx = false;
	s->mail_smtputf8 = false;
	s->nrcpt = 0;
	s->bdat_used = false;
	s->content_started = false;
	s->too_big = false;
}

static int
close_session(struct smtp_server *s, const char *why)
{
	end_tx(s, why);
	s->pending = PEND_NONE;
	enter_state(s, SMTP_SERVER_CLOSED);
	if (!s->close_queued) {
		s->close_queued = true;
		push_event(s, SMTP_SERVER_EV_CLOSE)->reason = why;
	}
	smtp_buf_reset(&s->in);
	return 0;
}

/* Tells the driver that a protocol violation was refused (it logs it). */
static void
refused(struct smtp_server *s, uint16_t code, const char *enh, const char *why)
{
	struct smtp_server_event *ev = push_event(s, SMTP_SERVER_EV_REFUSED);
	ev->code = code;
	ev->enhanced = enh;
	ev->reason = why;
}

/* A client error: reply, count, and close at the limit. */
static int
client_error(struct smtp_server *s, unsigned code, const char *enh,
    const char *text)
{
	int rc = reply(s, code, enh, text);
	if (rc < 0)
		return rc;
	if (++s->errors >= s->cfg.max_errors) {
		rc = smtp_buf_printf(&s->out,
		    "421 4.7.0 %s Error: too many errors\r\n", s->hostname);
		if (rc < 0)
			return rc;
		refused(s, 421, "4.7.0", "too many errors");
		return close_session(s, "too many errors");
	}
	return 0;
}

struct smtp_server *
smtp_server_new(const struct smtp_server_config *cfg)
{
	if (cfg == NULL || cfg->hostname == NULL || cfg->hostname[0] == '\0' ||
	    !smtp__text_ok(cfg->hostname, 255) ||
	    strchr(cfg->hostname, ' ') != NULL)
		return NULL;
	if ((cfg->banner_text &&
	        !smtp__text_ok(cfg->banner_text, SERVER_TEXT_MAX)) ||
	    (cfg->reject_text &&
	        !smtp__text_ok(cfg->reject_text, SERVER_TEXT_MAX)))
		return NULL;
	struct smtp_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->cfg = *cfg;
	if (s->cfg.max_message_size == 0)
		s->cfg.max_message_size = SERVER_DEFAULT_MAX_SIZE;
	if (s->cfg.max_recipients == 0)
		s->cfg.max_recipients = SERVER_DEFAULT_MAX_RCPT;
	/* RFC 5321 4.5.3.1.8: at least 100 recipients MUST be accepted. */
	if (s->cfg.max_recipients < SMTP_RCPT_MIN)
		s->cfg.max_recipients = SMTP_RCPT_MIN;
	if (s->cfg.max_errors == 0)
		s->cfg.max_errors = SERVER_DEFAULT_MAX_ERRORS;
	if (s->cfg.max_line == 0)
		s->cfg.max_line = SMTP_TEXT_LINE_MAX;
	if (s->cfg.in_max < 2 * SMTP_CMD_LINE_MAX)
		s->cfg.in_max = SERVER_DEFAULT_IN_MAX;
	if (s->cfg.out_max < 4096)
		s->cfg.out_max = SERVER_DEFAULT_OUT_MAX;
	s->hostname = dup_str(cfg->hostname);
	s->banner_text = dup_str(cfg->banner_text ? cfg->banner_text : "ESMTP");
	s->reject_text = dup_str(
	    cfg->reject_text ? cfg->reject_text : "Relay access denied");
	if (s->hostname == NULL || s->banner_text == NULL ||
	    s->reject_text == NULL) {
		smtp_server_free(s);
		return NULL;
	}
	s->cfg.hostname = s->hostname;
	s->cfg.banner_text = s->banner_text;
	s->cfg.reject_text = s->reject_text;
	smtp_buf_init(&s->in, s->cfg.in_max);
	smtp_buf_init(&s->out, s->cfg.out_max);
	int rc;
	if (cfg->reject) {
		/* RFC 5321 3.1: a 554 greeting; then wait for QUIT. */
		rc = smtp_buf_printf(&s->out, "554 5.7.1 %s %s\r\n",
		    s->hostname, s->reject_text);
		enter_state(s, SMTP_SERVER_REJECT);
	} else {
		rc = smtp_buf_printf(&s->out, "220 %s %s\r\n", s->hostname,
		    s->banner_text);
		enter_state(s, SMTP_SERVER_INIT);
	}
	if (rc < 0) {
		smtp_server_free(s);
		return NULL;
	}
	return s;
}

void
smtp_server_free(struct smtp_server *s)
{
	if (s == NULL)
		return;
	smtp_buf_free(&s->in);
	smtp_buf_free(&s->out);
	free(s->hostname);
	free(s->banner_text);
	free(s->reject_text);
	free(s);
}

int
smtp_server_feed(struct smtp_server *s, const uint8_t *p, size_t len)
{
	/* RFC 3207 4.2 / CVE-2011-0411: nothing received in the clear after
	 * STARTTLS may be processed after the handshake. */
	if (s->state == SMTP_SERVER_STARTTLS || s->state == SMTP_SERVER_CLOSED)
		return 0;
	int rc = smtp_buf_append(&s->in, p, len);
	if (rc == SMTP_ERR_FULL) {
		int r2 = smtp_buf_printf(&s->out,
		    "421 4.3.0 %s Error: too much input\r\n", s->hostname);
		(void)r2; /* closing anyway; the driver sees SMTP_ERR_FULL */
		close_session(s, "input overflow");
		return SMTP_ERR_FULL;
	}
	return rc;
}

int
smtp_server_eof(struct smtp_server *s)
{
	if (s->state != SMTP_SERVER_CLOSED)
		close_session(s, "eof");
	return 0;
}

/* RFC 8689 2: REQUIRETLS may only be given in a session that employs TLS,
 * so it is offered (and accepted) only after STARTTLS. */
static bool
requiretls_offered(const struct smtp_server *s)
{
	return s->cfg.requiretls && s->tls;
}

static int
send_ehlo(struct smtp_server *s)
{
	/* RFC 5321 4.1.1.1; each extension's RFC in smtp_reply.h. */
	char size[48];
	int n = snprintf(size, sizeof(size), "SIZE %" PRIu64,
	    s->cfg.max_message_size);
	if (n < 0 || (size_t)n >= sizeof(size))
		return SMTP_ERR_INVAL;
	const char *ext[11];
	size_t k = 0;
	ext[k++] = "PIPELINING";
	ext[k++] = size;
	ext[k++] = "8BITMIME";
	ext[k++] = "ENHANCEDSTATUSCODES";
	ext[k++] = "DSN";
	ext[k++] = "SMTPUTF8";
	ext[k++] = "CHUNKING";
	if (s->cfg.starttls && !s->tls)
		ext[k++] = "STARTTLS";
	if (requiretls_offered(s))
		ext[k++] = "REQUIRETLS";
	int rc = smtp_buf_printf(&s->out, "250-%s\r\n", s->hostname);
	for (size_t i = 0; i < k && rc == 0; i++)
		rc = smtp_buf_printf(&s->out, "250%c%s\r\n",
		    i + 1 == k ? ' ' : '-', ext[i]);
	return rc;
}

static int
cmd_helo(struct smtp_server *s, const struct smtp_cmd *c)
{
	/* RFC 5321 4.1.4: EHLO/HELO in a transaction resets it. */
	end_tx(s, "ehlo");
	int rc = c->verb == SMTP_VERB_EHLO
	    ? send_ehlo(s)
	    : smtp_buf_printf(&s->out, "250 %s\r\n", s->hostname);
	if (rc < 0)
		return rc;
	s->helo_done = true;
	s->esmtp = c->verb == SMTP_VERB_EHLO;
	size_t n = c->domain.len < sizeof(s->helo) ? c->domain.len
	                                           : sizeof(s->helo) - 1;
	memcpy(s->helo, c->domain.p, n);
	s->helo[n] = '\0';
	enter_state(s, SMTP_SERVER_READY);
	struct smtp_server_event *ev = push_event(s, SMTP_SERVER_EV_HELO);
	ev->esmtp = s->esmtp;
	ev->helo.p = (const uint8_t *)s->helo;
	ev->helo.len = n;
	return 0;
}

static int
cmd_mail(struct smtp_server *s, const struct smtp_cmd *c)
{
	if (!s->helo_done)
		return client_error(s, 503, "5.5.1",
		    "Error: send HELO/EHLO first");
	if (s->in_tx)
		return client_error(s, 503, "5.5.1",
		    "Error: nested MAIL command");
	/* RFC 1870 6: a declared size over the limit is refused at once. */
	if (c->mail.has_size && c->mail.size > s->cfg.max_message_size)
		return reply(s, 552, "5.3.4",
		    "Error: message size exceeds fixed limit");
	if (c->mail.body == SMTP_BODY_BINARYMIME)
		return client_error(s, 555, "5.5.4",
		    "Error: BODY=BINARYMIME not supported");
	/* RFC 5321 4.1.1.11: a parameter of an extension not offered in
	 * this session is unknown here. */
	if (c->mail.requiretls && !requiretls_offered(s))
		return client_error(s, 555, "5.5.4",
		    "Unsupported option: REQUIRETLS");
	/* RFC 6531 3.4: a UTF-8 address needs the SMTPUTF8 parameter. */
	if (c->addr.utf8 && !c->mail.smtputf8)
		return client_error(s, 553, "5.6.7",
		    "Error: non-ASCII address needs SMTPUTF8");
	struct smtp_server_event *ev = push_event(s, SMTP_SERVER_EV_MAIL);
	ev->addr = c->addr;
	ev->mail = c->mail;
	s->mail_smtputf8 = c->mail.smtputf8;
	if (s->cfg.decide_mail) {
		ev->needs_verdict = true;
		s->pending = PEND_MAIL;
		enter_state(s, SMTP_SERVER_VERDICT);
		return 0;
	}
	s->in_tx = true;
	enter_state(s, SMTP_SERVER_MAIL);
	return reply(s, 250, "2.1.0", "Ok");
}

static int
cmd_rcpt(struct smtp_server *s, const struct smtp_cmd *c)
{
	if (!s->in_tx)
		return client_error(s, 503, "5.5.1",
		    "Error: need MAIL command");
	if (s->bdat_used)
		return client_error(s, 503, "5.5.1", "Error: RCPT after BDAT");
	/* RFC 5321 4.5.3.1.10: 452 too many recipients (not an error). */
	if (s->nrcpt >= s->cfg.max_recipients)
		return reply(s, 452, "4.5.3", "Error: too many recipients");
	if (c->addr.utf8 && !s->mail_smtputf8)
		return client_error(s, 553, "5.6.7",
		    "Error: non-ASCII address needs SMTPUTF8");
	struct smtp_server_event *ev = push_event(s, SMTP_SERVER_EV_RCPT);
	ev->addr = c->addr;
	ev->rcpt = c->rcpt;
	if (s->cfg.decide_rcpt) {
		ev->needs_verdict = true;
		s->pending = PEND_RCPT;
		enter_state(s, SMTP_SERVER_VERDICT);
		return 0;
	}
	s->nrcpt++;
	return reply(s, 250, "2.1.5", "Ok");
}

static void
start_content(struct smtp_server *s, bool chunked)
{
	smtp_data_dec_init(&s->dec, s->cfg.max_line);
	s->too_big = false;
	s->content_started = true;
	push_event(s, SMTP_SERVER_EV_DATA)->chunked = chunked;
}

static int
cmd_data(struct smtp_server *s)
{
	if (!s->in_tx)
		return client_error(s, 503, "5.5.1",
		    "Error: need MAIL command");
	if (s->bdat_used)
		return client_error(s, 503, "5.5.1", "Error: DATA after BDAT");
	/* RFC 5321 3.3: no recipient accepted: 554 "no valid recipients". */
	if (s->nrcpt == 0)
		return client_error(s, 554, "5.5.1",
		    "Error: no valid recipients");
	int rc = reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	if (rc < 0)
		return rc;
	start_content(s, false);
	enter_state(s, SMTP_SERVER_DATA);
	return 0;
}

static int
cmd_bdat(struct smtp_server *s, const struct smtp_cmd *c)
{
	/* RFC 3030 2: the chunk follows the command whatever we reply, so
	 * a refused chunk is still read (and discarded). */
	s->bdat_remaining = c->bdat_size;
	s->bdat_last = c->bdat_last;
	s->bdat_discard = false;
	if (!s->in_tx) {
		s->bdat_discard = true;
		s->bdat_fail_code = 503;
		s->bdat_fail_text = "Error: need MAIL command";
	} else if (s->nrcpt == 0) {
		s->bdat_discard = true;
		s->bdat_fail_code = 554;
		s->bdat_fail_text = "Error: no valid recipients";
	} else if (s->content_started && !s->bdat_used) {
		s->bdat_discard = true;
		s->bdat_fail_code = 503;
		s->bdat_fail_text = "Error: BDAT after DATA";
	}
	if (!s->bdat_discard && !s->bdat_used) {
		s->bdat_used = true;
		start_content(s, true);
	}
	enter_state(s, SMTP_SERVER_BDAT);
	return 0;
}

static int
cmd_starttls(struct smtp_server *s)
{
	if (!s->cfg.starttls || s->tls)
		return client_error(s, 502, "5.5.1",
		    "Error: command not implemented");
	if (!s->esmtp)
		return client_error(s, 503, "5.5.1", "Error: send EHLO first");
	end_tx(s, "starttls");
	int rc = reply(s, 220, "2.0.0", "Ready to start TLS");
	if (rc < 0)
		return rc;
	/* RFC 3207 4.2 / CVE-2011-0411: drop what was pipelined after it. */
	smtp_buf_reset(&s->in);
	enter_state(s, SMTP_SERVER_STARTTLS);
	push_event(s, SMTP_SERVER_EV_STARTTLS);
	return 0;
}

static int
cmd_error(struct smtp_server *s, int err, const struct smtp_cmd *c)
{
	switch (err) {
	case SMTP_ERR_UNKNOWN_CMD:
		return client_error(s, 500, "5.5.2",
		    "Error: command not recognized");
	case SMTP_ERR_PARAM: {
		char text[96];
		size_t n = c->param.len < 40 ? c->param.len : 40;
		int k = snprintf(text, sizeof(text), "Unsupported option: %.*s",
		    (int)n, (const char *)c->param.p);
		if (k < 0 || (size_t)k >= sizeof(text))
			return SMTP_ERR_INVAL;
		/* RFC 5321 4.1.1.11 */
		return client_error(s, 555, "5.5.4", text);
	}
	case SMTP_ERR_ADDR:
	case SMTP_ERR_TOO_LONG:
		if (c->verb == SMTP_VERB_MAIL)
			return client_error(s, 501, "5.1.7",
			    "Bad sender address syntax");
		if (c->verb == SMTP_VERB_RCPT)
			return client_error(s, 501, "5.1.3",
			    "Bad recipient address syntax");
		return client_error(s, 501, "5.5.4",
		    "Syntax error in parameters or arguments");
	default:
		return client_error(s, 501, "5.5.4",
		    "Syntax error in parameters or arguments");
	}
}

static int
dispatch(struct smtp_server *s, const uint8_t *line, size_t len)
{
	struct smtp_cmd c;
	int err = smtp_cmd_parse(line, len, &c);
	if (s->state == SMTP_SERVER_REJECT) {
		/* RFC 5321 3.1: after a 554 greeting, 503 to all but QUIT. */
		if (err == 0 && c.verb == SMTP_VERB_QUIT) {
			int rc = reply(s, 221, "2.0.0", "Bye");
			return rc < 0 ? rc : close_session(s, "quit");
		}
		return client_error(s, 503, "5.5.1",
		    "Error: access denied, send QUIT");
	}
	if (err < 0)
		return cmd_error(s, err, &c);
	switch (c.verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		return cmd_helo(s, &c);
	case SMTP_VERB_MAIL:
		return cmd_mail(s, &c);
	case SMTP_VERB_RCPT:
		return cmd_rcpt(s, &c);
	case SMTP_VERB_DATA:
		return cmd_data(s);
	case SMTP_VERB_BDAT:
		return cmd_bdat(s, &c);
	case SMTP_VERB_RSET:
		end_tx(s, "rset");
		idle_state(s);
		return reply(s, 250, "2.0.0", "Ok");
	case SMTP_VERB_NOOP:
		return reply(s, 250, "2.0.0", "Ok");
	case SMTP_VERB_QUIT: {
		int rc = reply(s, 221, "2.0.0", "Bye");
		return rc < 0 ? rc : close_session(s, "quit");
	}
	case SMTP_VERB_VRFY:
		/* RFC 5321 3.5.3: 252 when we will not verify. */
		return reply(s, 252, "2.0.0", "Cannot VRFY user; try RCPT");
	case SMTP_VERB_EXPN:
		return client_error(s, 502, "5.5.1",
		    "Error: command not implemented");
	case SMTP_VERB_HELP:
		return reply(s, 214, "2.0.0", "See RFC 5321");
	case SMTP_VERB_STARTTLS:
		return cmd_starttls(s);
	}
	return SMTP_ERR_INVAL;
}

/* One command line; returns 1 on progress, 0 when more input is needed. */
static int
step_cmd(struct smtp_server *s)
{
	const uint8_t *p = smtp_buf_data(&s->in);
	size_t len = smtp_buf_len(&s->in);
	if (len == 0)
		return 0;
	if (s->discard_line) {
		size_t i = 0;
		while (i < len && p[i] != '\n')
			i++;
		if (i < len) {
			s->discard_line = false;
			i++;
		}
		smtp_buf_consume(&s->in, i);
		return 1;
	}
	size_t linelen = 0;
	int n = smtp_line_scan(p, len, SMTP_CMD_LINE_MAX, &linelen);
	if (n == SMTP_ERR_AGAIN)
		return 0;
	int rc;
	if (n == SMTP_ERR_TOO_LONG) {
		/* RFC 5321 4.5.3.1.10: "500 Line too long". */
		s->discard_line = true;
		refused(s, 500, "5.5.2", "command line too long");
		rc = client_error(s, 500, "5.5.2", "Error: line too long");
		return rc < 0 ? rc : 1;
	}
	if (n == SMTP_ERR_BARE_NL) {
		smtp_buf_consume(&s->in, linelen);
		/* RFC 5321 2.3.8: lines end with CRLF only. */
		refused(s, 500, "5.5.2", "bare CR/LF in command");
		rc = client_error(s, 500, "5.5.2",
		    "Error: bare <CR> or <LF> received");
		return rc < 0 ? rc : 1;
	}
	SMTP_ASSERT(n > 0);
	/* Slices into the line stay valid: consuming does not move data. */
	smtp_buf_consume(&s->in, (size_t)n);
	rc = dispatch(s, p, (size_t)n);
	return rc < 0 ? rc : 1;
}

static int
end_content(struct smtp_server *s)
{
	int rc = 0;
	const char *why = NULL;
	uint16_t code = 0;
	const char *enh = NULL;
	if (s->dec.errors & (SMTP_DATA_ERR_BARE_LF | SMTP_DATA_ERR_BARE_CR)) {
		/* SMTP smuggling defence: refuse, never normalise. */
		code = 550, enh = "5.5.2", why = "bare CR/LF in content";
		rc = reply(s, code, enh,
		    "Error: bare <CR> or <LF> in message content");
	} else if (s->dec.errors & SMTP_DATA_ERR_NUL) {
		/* RFC 5321 2.3.8 and RFC 6152: NUL is not text, not even 8bit
		 * text; only BINARYMIME (not offered) may carry it. Relaying it
		 * would hand the next hop content it must not accept. */
		code = 554, enh = "5.6.0", why = "NUL in content";
		rc = reply(s, code, enh,
		    "Error: NUL octet in message content (allowed only with BINARYMIME)");
	} else if (s->too_big) {
		code = 552, enh = "5.3.4", why = "message too large";
		rc = reply(s, code, enh,
		    "Error: message size exceeds fixed limit");
	} else if (s->dec.errors & SMTP_DATA_ERR_LINE) {
		code = 500, enh = "5.5.2", why = "line too long";
		rc = reply(s, code, enh,
		    "Error: line too long in message content");
	} else {
		struct smtp_server_event *ev =
		    push_event(s, SMTP_SERVER_EV_MESSAGE);
		ev->needs_verdict = true;
		ev->size = s->dec.out_bytes;
		ev->chunked = s->bdat_used;
		ev->eightbit = s->dec.eightbit;
		s->pending = PEND_MESSAGE;
		enter_state(s, SMTP_SERVER_VERDICT);
		return 0;
	}
	refused(s, code, enh, why);
	end_tx(s, why);
	idle_state(s);
	return rc;
}

static bool
content_ok(struct smtp_server *s)
{
	if (s->dec.out_bytes > s->cfg.max_message_size)
		s->too_big = true;
	return !s->too_big && s->dec.errors == 0;
}

static int
step_data(struct smtp_server *s)
{
	size_t len = smtp_buf_len(&s->in);
	if (len == 0)
		return 0;
	/* In place: the decoder never writes ahead of what it has read. */
	uint8_t *p = s->in.data + s->in.rpos;
	size_t outlen = 0;
	long used = smtp_data_decode(&s->dec, p, len, p, &outlen);
	SMTP_ASSERT(used > 0);
	smtp_buf_consume(&s->in, (size_t)used);
	if (outlen > 0 && content_ok(s)) {
		struct smtp_server_event *ev =
		    push_event(s, SMTP_SERVER_EV_BODY);
		ev->data.p = p;
		ev->data.len = outlen;
	}
	if (s->dec.done) {
		int rc = end_content(s);
		return rc < 0 ? rc : 1;
	}
	return 1;
}

static int
step_bdat(struct smtp_server *s)
{
	if (s->bdat_remaining > 0) {
		size_t len = smtp_buf_len(&s->in);
		if (len == 0)
			return 0;
		size_t n =
		    s->bdat_remaining < len ? (size_t)s->bdat_remaining : len;
		const uint8_t *p = smtp_buf_data(&s->in);
		smtp_buf_consume(&s->in, n);
		s->bdat_remaining -= n;
		if (!s->bdat_discard) {
			smtp_data_check(&s->dec, p, n);
			if (content_ok(s)) {
				struct smtp_server_event *ev =
				    push_event(s, SMTP_SERVER_EV_BODY);
				ev->data.p = p;
				ev->data.len = n;
			}
		}
		if (s->bdat_remaining > 0)
			return 1;
	}
	int rc;
	if (s->bdat_discard) {
		idle_state(s);
		if (s->in_tx)
			enter_state(s, SMTP_SERVER_MAIL);
		rc = client_error(s, s->bdat_fail_code, "5.5.1",
		    s->bdat_fail_text);
	} else if (s->bdat_last || !content_ok(s)) {
		/* RFC 3030 2: the LAST chunk ends the content; a CR that ended
		 * it is as bare as one anywhere else. */
		if (s->bdat_last)
			smtp_data_check_end(&s->dec);
		rc = end_content(s);
	} else {
		enter_state(s, SMTP_SERVER_MAIL);
		rc = smtp_buf_printf(&s->out,
		    "250 2.0.0 %" PRIu64 " octets received\r\n",
		    s->dec.out_bytes);
	}
	return rc < 0 ? rc : 1;
}

static int
step(struct smtp_server *s)
{
	switch (s->state) {
	case SMTP_SERVER_CLOSED:
	case SMTP_SERVER_VERDICT:
	case SMTP_SERVER_STARTTLS:
		return 0;
	case SMTP_SERVER_DATA:
		return step_data(s);
	case SMTP_SERVER_BDAT:
		return step_bdat(s);
	case SMTP_SERVER_INIT:
	case SMTP_SERVER_READY:
	case SMTP_SERVER_MAIL:
	case SMTP_SERVER_REJECT:
		/* Let the driver drain a large batch of replies first. */
		if (smtp_buf_len(&s->out) >= s->cfg.out_max / 2)
			return 0;
		return step_cmd(s);
	}
	return 0;
}

int
smtp_server_next(struct smtp_server *s, struct smtp_server_event *ev)
{
	for (;;) {
		if (s->evq_len > 0) {
			*ev = s->evq[s->evq_head];
			s->evq_head = (s->evq_head + 1) % SERVER_EVQ;
			s->evq_len--;
			return 0;
		}
		int rc = step(s);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
	}
	memset(ev, 0, sizeof(*ev));
	ev->type = SMTP_SERVER_EV_NONE;
	return 0;
}

static bool
valid_verdict(uint16_t code, const char *enhanced, const char *text)
{
	if (code < 200 || code > 599 || code / 100 == 3)
		return false;
	if (enhanced != NULL) {
		struct smtp_status st;
		size_t n = strlen(enhanced);
		if (smtp_status_parse((const uint8_t *)enhanced, n, &st) !=
		        (int)n ||
		    st.klass != code / 100)
			return false;
	}
	return text == NULL || smtp__text_ok(text, SERVER_TEXT_MAX);
}

int
smtp_server_reply(struct smtp_server *s, uint16_t code, const char *enhanced,
    const char *text)
{
	if (s->state != SMTP_SERVER_VERDICT || s->pending == PEND_NONE)
		return SMTP_ERR_STATE;
	if (!valid_verdict(code, enhanced, text))
		return SMTP_ERR_INVAL;
	char synth[8];
	if (enhanced == NULL) {
		int k = snprintf(synth, sizeof(synth), "%u.0.0", code / 100);
		if (k < 0 || (size_t)k >= sizeof(synth))
			return SMTP_ERR_INVAL;
		enhanced = synth;
	}
	bool ok = code / 100 == 2;
	enum pending p = s->pending;
	s->pending = PEND_NONE;
	const char *deftext = ok ? "Ok" : "Error: rejected";
	switch (p) {
	case PEND_MAIL:
		if (ok) {
			s->in_tx = true;
			enter_state(s, SMTP_SERVER_MAIL);
		} else {
			idle_state(s);
		}
		break;
	case PEND_RCPT:
		if (ok)
			s->nrcpt++;
		enter_state(s, SMTP_SERVER_MAIL);
		break;
	case PEND_MESSAGE:
		if (ok)
			deftext = "Ok: queued";
		/* The transaction is over either way; the driver knows. */
		s->in_tx = false;
		end_tx(s, NULL);
		idle_state(s);
		break;
	case PEND_NONE:
		return SMTP_ERR_STATE;
	}
	int rc = reply(s, code, enhanced, text ? text : deftext);
	if (rc < 0)
		return rc;
	if (code == 421)
		close_session(s, "421 from driver");
	return 0;
}

int
smtp_server_accept(struct smtp_server *s)
{
	const char *enh = "2.0.0";
	if (s->pending == PEND_MAIL)
		enh = "2.1.0";
	else if (s->pending == PEND_RCPT)
		enh = "2.1.5";
	return smtp_server_reply(s, 250, enh, NULL);
}

int
smtp_server_tls_started(struct smtp_server *s)
{
	if (s->state != SMTP_SERVER_STARTTLS)
		return SMTP_ERR_STATE;
	/* RFC 3207 4.2: discard all knowledge obtained from the client. */
	s->tls = true;
	s->helo_done = false;
	s->esmtp = false;
	s->discard_line = false;
	smtp_buf_reset(&s->in);
	end_tx(s, NULL);
	enter_state(s, SMTP_SERVER_INIT);
	return 0;
}

int
smtp_server_abort(struct smtp_server *s, const char *enhanced, const char *text)
{
	if (enhanced == NULL)
		enhanced = "4.4.2";
	if (text == NULL)
		text = "Error: timeout exceeded";
	struct smtp_status st;
	size_t n = strlen(enhanced);
	if (smtp_status_parse((const uint8_t *)enhanced, n, &st) != (int)n ||
	    st.klass != 4 || !smtp__text_ok(text, SERVER_TEXT_MAX))
		return SMTP_ERR_INVAL;
	if (s->state == SMTP_SERVER_CLOSED)
		return 0;
	int rc = smtp_buf_printf(&s->out, "421 %s %s %s\r\n", enhanced,
	    s->hostname, text);
	(void)rc; /* closing anyway; the driver may not be able to send it */
	s->pending = PEND_NONE;
	close_session(s, "aborted");
	return 0;
}

const uint8_t *
smtp_server_output(const struct smtp_server *s, size_t *len)
{
	*len = smtp_buf_len(&s->out);
	return *len ? smtp_buf_data(&s->out) : NULL;
}

void
smtp_server_output_consume(struct smtp_server *s, size_t n)
{
	smtp_buf_consume(&s->out, n);
}

enum smtp_server_state
smtp_server_state(const struct smtp_server *s)
{
	return s->state;
}

bool
smtp_server_wants_input(const struct smtp_server *s)
{
	switch (s->state) {
	case SMTP_SERVER_VERDICT:
	case SMTP_SERVER_STARTTLS:
	case SMTP_SERVER_CLOSED:
		return false;
	case SMTP_SERVER_INIT:
	case SMTP_SERVER_READY:
	case SMTP_SERVER_MAIL:
	case SMTP_SERVER_DATA:
	case SMTP_SERVER_BDAT:
	case SMTP_SERVER_REJECT:
		break;
	}
	return smtp_buf_len(&s->out) < s->cfg.out_max / 2;
}

bool
smtp_server_is_tls(const struct smtp_server *s)
{
	return s->tls;
}
