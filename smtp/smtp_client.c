/* Client session state machine (outbound to the MX). */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "smtp_int.h"

#define CLIENT_DEFAULT_IN_MAX (64u * 1024)
#define CLIENT_DEFAULT_OUT_MAX (256u * 1024)

enum expect {
	EXP_RSET,
	EXP_MAIL,
	EXP_RCPT,
	EXP_DATA,
};

struct fifo_ent {
	enum expect kind;
	size_t idx;
};

struct crcpt {
	char *addr;
	unsigned notify;
	char *orcpt;
};

struct msg {
	char *sender;
	struct crcpt *rcpts;
	size_t n;
	uint64_t size;
	enum smtp_body body;
	enum smtp_ret ret;
	char *envid;
	bool utf8;
	bool requiretls;
};

struct smtp_client {
	struct smtp_client_config cfg;
	char *helo_name;
	enum smtp_client_state state;
	struct smtp_buf in;
	struct smtp_buf out;
	bool tls;
	struct smtp_caps caps;
	bool need_rset; /* a transaction was left open */
	/* the message */
	bool have_msg;   /* queued or in progress */
	bool msg_active; /* commands sent */
	struct msg msg;
	struct fifo_ent *fifo;
	size_t fifo_len, send_pos, recv_pos;
	bool pipelined;
	bool chunked; /* BDAT for this message */
	bool mail_ok;
	struct smtp_result mail_res; /* MAIL failure, reported per RCPT */
	size_t rcpt_reported;
	size_t accepted;
	struct smtp_result last_rcpt_fail;
	struct smtp_data_enc enc;
	size_t bdat_outstanding; /* BDAT replies not yet read */
	bool bdat_failed;
	bool bdat_last_sent;
	/* event sequencing */
	bool flush; /* report c->fail for the rest of the message */
	struct smtp_result fail;
	bool msg_pending; /* MESSAGE event with msg_res */
	struct smtp_result msg_res;
	bool dead; /* session failed */
	bool done_pending;
	bool done_emitted;
	struct smtp_result session_res;
	bool ready_pending;
	bool starttls_pending;
	bool body_pending;
	struct smtp_result ev_res;
};

const char *
smtp_client_state_name(enum smtp_client_state st)
{
	switch (st) {
	case SMTP_CLIENT_BANNER:
		return "banner";
	case SMTP_CLIENT_EHLO:
		return "ehlo";
	case SMTP_CLIENT_HELO:
		return "helo";
	case SMTP_CLIENT_STARTTLS:
		return "starttls";
	case SMTP_CLIENT_TLS:
		return "tls";
	case SMTP_CLIENT_READY:
		return "ready";
	case SMTP_CLIENT_RSET:
		return "rset";
	case SMTP_CLIENT_ENVELOPE:
		return "envelope";
	case SMTP_CLIENT_BODY:
		return "body";
	case SMTP_CLIENT_DOT:
		return "dot";
	case SMTP_CLIENT_QUIT:
		return "quit";
	case SMTP_CLIENT_DONE:
		return "done";
	}
	return "?";
}

/* The only writer of c->state (STYLE.md 6). */
static void
enter_state(struct smtp_client *c, enum smtp_client_state st)
{
	c->state = st;
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

static void
msg_free(struct msg *m)
{
	free(m->sender);
	for (size_t i = 0; i < m->n; i++) {
		/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): n > 0 only once rcpts is allocated (smtp_client_start_message) */
		free(m->rcpts[i].addr);
		free(m->rcpts[i].orcpt);
	}
	free(m->rcpts);
	free(m->envid);
	memset(m, 0, sizeof(*m));
}

static void
local_result(struct smtp_result *r, uint8_t klass, uint8_t subject,
    uint16_t detail, enum smtp_stage stage, enum smtp_reason reason,
    const char *text)
{
	r->klass = klass;
	r->code = 0;
	r->status.klass = klass;
	r->status.subject = subject;
	r->status.detail = detail;
	r->status_synth = true;
	r->stage = stage;
	r->reason = reason;
	int n = snprintf(r->text, sizeof(r->text), "%s", text);
	if (n < 0)
		r->text[0] = '\0';
}

struct smtp_client *
smtp_client_new(const struct smtp_client_config *cfg)
{
	if (cfg == NULL || cfg->helo_name == NULL ||
	    cfg->helo_name[0] == '\0' || !smtp__text_ok(cfg->helo_name, 255) ||
	    strchr(cfg->helo_name, ' ') != NULL)
		return NULL;
	struct smtp_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->cfg = *cfg;
	c->helo_name = dup_str(cfg->helo_name);
	if (c->helo_name == NULL) {
		free(c);
		return NULL;
	}
	c->cfg.helo_name = c->helo_name;
	if (c->cfg.in_max < 4 * SMTP_REPLY_LINE_MAX)
		c->cfg.in_max = CLIENT_DEFAULT_IN_MAX;
	if (c->cfg.out_max < 4096)
		c->cfg.out_max = CLIENT_DEFAULT_OUT_MAX;
	smtp_buf_init(&c->in, c->cfg.in_max);
	smtp_buf_init(&c->out, c->cfg.out_max);
	enter_state(c, SMTP_CLIENT_BANNER);
	return c;
}

void
smtp_client_free(struct smtp_client *c)
{
	if (c == NULL)
		return;
	msg_free(&c->msg);
	free(c->fifo);
	smtp_buf_free(&c->in);
	smtp_buf_free(&c->out);
	free(c->helo_name);
	free(c);
}

static int
send_cmd(struct smtp_client *c, const char *verb, const char *arg)
{
	return smtp_cmd_format(&c->out, verb, (const uint8_t *)arg,
	    arg ? strlen(arg) : 0);
}

/*
 * The session cannot go on. The current message (if any) is reported with
 * res; then QUIT (when the server is still listening) and DONE.
 */
static int
session_fail(struct smtp_client *c, const struct smtp_result *res, bool quit)
{
	if (c->dead)
		return 0;
	c->dead = true;
	c->session_res = *res;
	if (c->have_msg) {
		c->fail = *res;
		c->flush = true;
	}
	c->ready_pending = false;
	c->starttls_pending = false;
	c->body_pending = false;
	if (quit) {
		enter_state(c, SMTP_CLIENT_QUIT);
		return send_cmd(c, "QUIT", NULL);
	}
	smtp_buf_reset(&c->in);
	c->done_pending = true;
	return 0;
}

static int
send_ehlo(struct smtp_client *c)
{
	memset(&c->caps, 0, sizeof(c->caps));
	enter_state(c, SMTP_CLIENT_EHLO);
	return send_cmd(c, "EHLO", c->helo_name);
}

static int send_envelope(struct smtp_client *c);

/* The session is usable: start the queued message or report READY. */
static int
become_ready(struct smtp_client *c)
{
	enter_state(c, SMTP_CLIENT_READY);
	if (c->have_msg && !c->msg_active)
		return send_envelope(c);
	c->ready_pending = true;
	return 0;
}

/* A message outcome; the session stays usable. */
static void
message_fail(struct smtp_client *c, const struct smtp_result *res)
{
	c->fail = *res;
	c->flush = true;
}

/* A command argument under construction, bounded by the line limit. */
struct argbuf {
	char s[SMTP_CMD_LINE_MAX];
	size_t off;
	bool overflow;
};

static void argf(struct argbuf *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
argf(struct argbuf *a, const char *fmt, ...)
{
	if (a->overflow)
		return;
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(a->s + a->off, sizeof(a->s) - a->off, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= sizeof(a->s) - a->off) {
		a->overflow = true;
		return;
	}
	a->off += (size_t)k;
}

static int
send_arg(struct smtp_client *c, const char *verb, const struct argbuf *a)
{
	if (a->overflow)
		return SMTP_ERR_TOO_LONG;
	return send_cmd(c, verb, a->s);
}

static int
format_mail(struct smtp_client *c)
{
	struct argbuf a = { .off = 0, .overflow = false };
	const struct msg *m = &c->msg;
	argf(&a, "FROM:<%s>", m->sender);
	/* RFC 1870 */
	if (c->caps.size && m->size > 0)
		argf(&a, " SIZE=%" PRIu64, m->size);
	/* RFC 6152: announce 8-bit content when the server knows the word. */
	if ((m->body == SMTP_BODY_8BITMIME ||
	        m->body == SMTP_BODY_BINARYMIME) &&
	    c->caps.eightbitmime)
		argf(&a, " BODY=8BITMIME");
	else if (m->body == SMTP_BODY_7BIT && c->caps.eightbitmime)
		argf(&a, " BODY=7BIT");
	/* RFC 6531 3.4 */
	if (m->utf8)
		argf(&a, " SMTPUTF8");
	/* RFC 8689 4.2.1: send_envelope() checked TLS and the keyword. */
	if (m->requiretls)
		argf(&a, " REQUIRETLS");
	/* RFC 3461 4.3, 4.4: only when DSN is offered. */
	if (c->caps.dsn && m->ret != SMTP_RET_NONE)
		argf(&a, " RET=%s", m->ret == SMTP_RET_FULL ? "FULL" : "HDRS");
	if (c->caps.dsn && m->envid != NULL)
		argf(&a, " ENVID=%s", m->envid);
	return send_arg(c, "MAIL", &a);
}

static int
format_rcpt(struct smtp_client *c, size_t i)
{
	struct argbuf a = { .off = 0, .overflow = false };
	const struct crcpt *r = &c->msg.rcpts[i];
	argf(&a, "TO:<%s>", r->addr);
	/* RFC 3461 4.1, 4.2: only when DSN is offered. */
	if (c->caps.dsn && r->notify != 0) {
		if (r->notify & SMTP_NOTIFY_NEVER) {
			argf(&a, " NOTIFY=NEVER");
		} else {
			const char *sep = " NOTIFY=";
			if (r->notify & SMTP_NOTIFY_SUCCESS) {
				argf(&a, "%sSUCCESS", sep);
				sep = ",";
			}
			if (r->notify & SMTP_NOTIFY_FAILURE) {
				argf(&a, "%sFAILURE", sep);
				sep = ",";
			}
			if (r->notify & SMTP_NOTIFY_DELAY)
				argf(&a, "%sDELAY", sep);
		}
	}
	if (c->caps.dsn && r->orcpt != NULL)
		argf(&a, " ORCPT=%s", r->orcpt);
	return send_arg(c, "RCPT", &a);
}

static int
send_entry(struct smtp_client *c, const struct fifo_ent *e)
{
	switch (e->kind) {
	case EXP_RSET:
		return send_cmd(c, "RSET", NULL);
	case EXP_MAIL:
		return format_mail(c);
	case EXP_RCPT:
		return format_rcpt(c, e->idx);
	case EXP_DATA:
		return send_cmd(c, "DATA", NULL);
	}
	return SMTP_ERR_INVAL;
}

static int
send_envelope(struct smtp_client *c)
{
	struct msg *m = &c->msg;
	struct smtp_result r;
	c->msg_active = true;
	c->mail_ok = false;
	c->accepted = 0;
	c->rcpt_reported = 0;
	c->bdat_outstanding = 0;
	c->bdat_failed = false;
	c->bdat_last_sent = false;
	c->pipelined = c->caps.pipelining && !c->cfg.no_pipelining;
	c->chunked = c->caps.chunking && c->cfg.use_chunking;
	/* RFC 8689 4.2.1: a REQUIRETLS message goes only over TLS to a
	 * server that offered REQUIRETLS after STARTTLS; nothing is sent
	 * otherwise. 5.7.30 is RFC 8689 5's code; the relay decides whether
	 * another MX host may still do better. */
	if (m->requiretls && (!c->tls || !c->caps.requiretls)) {
		local_result(&r, 5, 7, 30, SMTP_STAGE_MAIL,
		    SMTP_REASON_REQUIRETLS_NOT_OFFERED,
		    c->tls ? "REQUIRETLS support required, but the server "
		             "did not offer REQUIRETLS"
		           : "REQUIRETLS support required, but the session "
		             "is not encrypted");
		message_fail(c, &r);
		return 0;
	}
	/* RFC 6531 3.4: SMTPUTF8 needed but not offered: permanent 5.6.7. */
	if (m->utf8 && !c->caps.smtputf8) {
		local_result(&r, 5, 6, 7, SMTP_STAGE_MAIL,
		    SMTP_REASON_SMTPUTF8_NOT_OFFERED,
		    "SMTPUTF8 is required, but was not offered by the server");
		message_fail(c, &r);
		return 0;
	}
	/* RFC 1870 6: do not send what the server declared too large. */
	if (c->caps.size && c->caps.size_max > 0 &&
	    m->size > c->caps.size_max) {
		local_result(&r, 5, 3, 4, SMTP_STAGE_MAIL,
		    SMTP_REASON_SIZE_EXCEEDED,
		    "message size exceeds the server's fixed limit");
		message_fail(c, &r);
		return 0;
	}
	size_t cap = m->n + 3;
	free(c->fifo);
	c->fifo = calloc(cap, sizeof(*c->fifo));
	if (c->fifo == NULL)
		return SMTP_ERR_NOMEM;
	size_t k = 0;
	if (c->need_rset)
		c->fifo[k++].kind = EXP_RSET;
	c->fifo[k++].kind = EXP_MAIL;
	for (size_t i = 0; i < m->n; i++) {
		c->fifo[k].kind = EXP_RCPT;
		c->fifo[k++].idx = i;
	}
	if (!c->chunked)
		c->fifo[k++].kind = EXP_DATA;
	c->fifo_len = k;
	c->send_pos = c->recv_pos = 0;
	enter_state(c, c->need_rset ? SMTP_CLIENT_RSET : SMTP_CLIENT_ENVELOPE);
	/* RFC 2920 3.1: the whole envelope (with DATA last) in one group. */
	size_t upto = c->pipelined ? k : 1;
	while (c->send_pos < upto) {
		int rc = send_entry(c, &c->fifo[c->send_pos]);
		if (rc < 0)
			return rc;
		c->send_pos++;
	}
	return 0;
}

static void
finish_message(struct smtp_client *c, const struct smtp_result *res)
{
	c->msg_res = *res;
	c->msg_pending = true;
}

/* Content may start (354 or, with BDAT, all RCPT replies read). */
static void
start_body(struct smtp_client *c)
{
	smtp_data_enc_init(&c->enc);
	c->enc.no_stuff = c->chunked;
	enter_state(c, SMTP_CLIENT_BODY);
	c->body_pending = true;
}

/* After the last envelope reply without content: the message failed. */
static void
envelope_failed(struct smtp_client *c, const struct smtp_result *why)
{
	c->need_rset = c->mail_ok;
	finish_message(c, why);
}

/* Handles one reply in the envelope phase. Returns 1 when *ev was filled. */
static int
envelope_reply(struct smtp_client *c, const struct smtp_reply *r,
    struct smtp_client_event *ev)
{
	SMTP_ASSERT(c->recv_pos < c->fifo_len);
	struct fifo_ent e = c->fifo[c->recv_pos++];
	bool ok = r->code / 100 == 2;
	int produced = 0;
	int rc = 0;
	switch (e.kind) {
	case EXP_RSET:
		if (!ok) {
			smtp_result_from_reply(&c->ev_res, r, SMTP_STAGE_RSET);
			/* Not the message's fault: retry it later. */
			c->ev_res.klass = 4;
			c->ev_res.status.klass = 4;
			return session_fail(c, &c->ev_res, r->code != 421);
		}
		c->need_rset = false;
		enter_state(c, SMTP_CLIENT_ENVELOPE);
		break;
	case EXP_MAIL:
		if (ok) {
			c->mail_ok = true;
		} else {
			smtp_result_from_reply(&c->mail_res, r,
			    SMTP_STAGE_MAIL);
			if (!c->pipelined) {
				message_fail(c, &c->mail_res);
				return 0;
			}
		}
		break;
	case EXP_RCPT:
		ev->type = SMTP_CLIENT_EV_RCPT;
		ev->rcpt_index = e.idx;
		if (c->mail_ok) {
			smtp_result_from_reply(&c->ev_res, r, SMTP_STAGE_RCPT);
			if (ok)
				c->accepted++;
			else
				c->last_rcpt_fail = c->ev_res;
		} else {
			c->ev_res = c->mail_res;
		}
		ev->result = &c->ev_res;
		c->rcpt_reported = e.idx + 1;
		produced = 1;
		if (c->pipelined || !c->mail_ok)
			break;
		if (e.idx + 1 == c->msg.n && c->accepted == 0) {
			envelope_failed(c, &c->last_rcpt_fail);
			return produced;
		}
		break;
	case EXP_DATA:
		if (e.idx == SIZE_MAX) {
			/* The reply to the empty message below. */
			c->accepted = 0;
			c->need_rset = true;
			finish_message(c, &c->last_rcpt_fail);
			return 0;
		}
		if (r->code == 354 && c->accepted > 0) {
			start_body(c);
			return 0;
		}
		if (r->code == 354) {
			/* RFC 2920 3.1: no recipient was accepted but the server
			 * wants data: end it at once; that reply is ignored. */
			rc = smtp_buf_puts(&c->out, ".\r\n");
			if (rc < 0)
				return rc;
			c->fifo[--c->recv_pos].kind =
			    EXP_DATA; /* re-expect one reply */
			c->fifo[c->recv_pos].idx = SIZE_MAX;
			return 0;
		}
		if (!c->mail_ok) {
			envelope_failed(c, &c->mail_res);
		} else if (c->accepted == 0) {
			envelope_failed(c, &c->last_rcpt_fail);
		} else if (r->code < 400) {
			/* RFC 5321 4.3.2: 354 is DATA's only positive reply. A
			 * 2xx or another 3xx means the server and we disagree
			 * about where the transaction stands; no byte of the
			 * content was sent, so nothing may count as delivered:
			 * a temporary protocol failure that ends the session. */
			struct smtp_result res;
			smtp_result_from_reply(&res, r, SMTP_STAGE_DATA);
			res.klass = 4;
			res.status = (struct smtp_status){ 4, 5, 0 };
			res.status_synth = true;
			res.reason = SMTP_REASON_PROTOCOL;
			return session_fail(c, &res, true);
		} else {
			smtp_result_from_reply(&c->ev_res, r, SMTP_STAGE_DATA);
			envelope_failed(c, &c->ev_res);
		}
		return 0;
	}
	/* A 421 anywhere ends the session (RFC 5321 3.8). */
	if (r->code == 421) {
		smtp_result_from_reply(&c->ev_res, r,
		    e.kind == EXP_RCPT       ? SMTP_STAGE_RCPT
		        : e.kind == EXP_MAIL ? SMTP_STAGE_MAIL
		                             : SMTP_STAGE_RSET);
		struct smtp_result tmp = c->ev_res;
		rc = session_fail(c, &tmp, false);
		return rc < 0 ? rc : produced;
	}
	if (c->recv_pos == c->fifo_len) {
		/* Envelope done and no DATA entry: BDAT. */
		if (!c->mail_ok)
			envelope_failed(c, &c->mail_res);
		else if (c->accepted == 0)
			envelope_failed(c, &c->last_rcpt_fail);
		else
			start_body(c);
		return produced;
	}
	if (!c->pipelined && c->send_pos < c->fifo_len) {
		rc = send_entry(c, &c->fifo[c->send_pos]);
		if (rc < 0)
			return rc;
		c->send_pos++;
	}
	return produced;
}

static int
ehlo_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	struct smtp_result res;
	bool helo = c->state == SMTP_CLIENT_HELO;
	if (r->code / 100 == 2) {
		if (helo)
			memset(&c->caps, 0, sizeof(c->caps));
		else
			smtp_caps_parse(r, &c->caps);
		if (!c->tls && c->cfg.tls != SMTP_TLS_NONE &&
		    c->caps.starttls) {
			enter_state(c, SMTP_CLIENT_STARTTLS);
			return send_cmd(c, "STARTTLS", NULL);
		}
		if (!c->tls && c->cfg.tls == SMTP_TLS_REQUIRED) {
			/* RFC 7672 2.2: never continue in cleartext. */
			local_result(&res, 4, 7, 5, SMTP_STAGE_EHLO,
			    SMTP_REASON_STARTTLS_NOT_OFFERED,
			    "TLS is required, but STARTTLS was not offered");
			return session_fail(c, &res, true);
		}
		return become_ready(c);
	}
	smtp_result_from_reply(&res, r,
	    helo ? SMTP_STAGE_HELO : SMTP_STAGE_EHLO);
	if (r->code == 421)
		return session_fail(c, &res, false);
	if (!helo && !c->tls && c->cfg.tls == SMTP_TLS_REQUIRED) {
		res.klass = 4;
		res.status = (struct smtp_status){ 4, 7, 5 };
		res.status_synth = true;
		res.reason = SMTP_REASON_STARTTLS_NOT_OFFERED;
		return session_fail(c, &res, true);
	}
	if (!helo && !c->tls && c->cfg.allow_helo) {
		enter_state(c, SMTP_CLIENT_HELO);
		return send_cmd(c, "HELO", c->helo_name);
	}
	if (!helo)
		res.reason = SMTP_REASON_EHLO_REFUSED;
	return session_fail(c, &res, true);
}

static int
handle_reply(struct smtp_client *c, const struct smtp_reply *r,
    struct smtp_client_event *ev)
{
	struct smtp_result res;
	switch (c->state) {
	case SMTP_CLIENT_BANNER:
		if (r->code == 220)
			return send_ehlo(c);
		smtp_result_from_reply(&res, r, SMTP_STAGE_BANNER);
		/* RFC 5321 3.1: after a 554 greeting the client sends QUIT. */
		return session_fail(c, &res, r->code != 421);
	case SMTP_CLIENT_EHLO:
	case SMTP_CLIENT_HELO:
		return ehlo_reply(c, r);
	case SMTP_CLIENT_STARTTLS:
		if (r->code == 220) {
			/* RFC 3207 4.2 / CVE-2011-0411: discard anything the
			 * server sent after the 220 before the handshake. */
			smtp_buf_reset(&c->in);
			enter_state(c, SMTP_CLIENT_TLS);
			c->starttls_pending = true;
			return 0;
		}
		smtp_result_from_reply(&res, r, SMTP_STAGE_STARTTLS);
		if (r->code == 421)
			return session_fail(c, &res, false);
		if (c->cfg.tls == SMTP_TLS_REQUIRED) {
			res.klass = 4;
			res.status = (struct smtp_status){ 4, 7, 5 };
			res.status_synth = true;
			res.reason = SMTP_REASON_STARTTLS_REFUSED;
			return session_fail(c, &res, true);
		}
		/* TLS MAY: continue in the clear (RFC 3207 4.1). */
		return become_ready(c);
	case SMTP_CLIENT_RSET:
	case SMTP_CLIENT_ENVELOPE:
		return envelope_reply(c, r, ev);
	case SMTP_CLIENT_BODY:
		if (c->chunked && c->bdat_outstanding > 0) {
			c->bdat_outstanding--;
			if (r->code / 100 != 2 && !c->bdat_failed) {
				/* A chunk failed while more are in flight: the
				 * pipeline is out of step, so end the session
				 * (RFC 3030 4.2: no more BDAT after a failure). */
				c->bdat_failed = true;
				smtp_result_from_reply(&res, r,
				    SMTP_STAGE_BDAT);
				return session_fail(c, &res, r->code != 421);
			}
			return 0;
		}
		break;
	case SMTP_CLIENT_DOT:
		if (c->bdat_outstanding > 1) {
			/* Replies to BDAT chunks before the LAST one. */
			c->bdat_outstanding--;
			if (r->code / 100 != 2 && !c->bdat_failed) {
				c->bdat_failed = true;
				smtp_result_from_reply(&c->msg_res, r,
				    SMTP_STAGE_BDAT);
			}
			return 0;
		}
		c->bdat_outstanding = 0;
		if (c->bdat_failed) {
			res = c->msg_res;
		} else {
			smtp_result_from_reply(&res, r,
			    c->chunked ? SMTP_STAGE_BDAT : SMTP_STAGE_DOT);
		}
		/* RFC 5321 4.1.1.4: the transaction is over either way. */
		c->need_rset = c->chunked && c->bdat_failed;
		finish_message(c, &res);
		if (r->code == 421)
			return session_fail(c, &res, false);
		return 0;
	case SMTP_CLIENT_QUIT:
		c->done_pending = true;
		if (!c->dead)
			smtp_result_from_reply(&c->session_res, r,
			    SMTP_STAGE_QUIT);
		return 0;
	case SMTP_CLIENT_READY:
	case SMTP_CLIENT_TLS:
	case SMTP_CLIENT_DONE:
		break;
	}
	/* A reply nobody asked for: a 421 (idle timeout) or a broken peer. */
	smtp_result_from_reply(&res, r, SMTP_STAGE_MAIL);
	if (r->code != 421) {
		res.klass = 4;
		res.status = (struct smtp_status){ 4, 5, 0 };
		res.status_synth = true;
		res.reason = SMTP_REASON_PROTOCOL;
	}
	return session_fail(c, &res, false);
}

/* Clears the finished message; the session continues unless dead. */
static int
after_message(struct smtp_client *c)
{
	msg_free(&c->msg);
	c->have_msg = false;
	c->msg_active = false;
	if (c->dead)
		return 0;
	return become_ready(c);
}

int
smtp_client_next(struct smtp_client *c, struct smtp_client_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	for (;;) {
		if (c->flush) {
			if (c->rcpt_reported < c->msg.n) {
				ev->type = SMTP_CLIENT_EV_RCPT;
				ev->rcpt_index = c->rcpt_reported++;
				ev->result = &c->fail;
				return 0;
			}
			c->flush = false;
			c->msg_res = c->fail;
			c->msg_pending = true;
		}
		if (c->msg_pending) {
			c->msg_pending = false;
			c->ev_res = c->msg_res;
			ev->type = SMTP_CLIENT_EV_MESSAGE;
			ev->result = &c->ev_res;
			int rc = after_message(c);
			return rc < 0 ? rc : 0;
		}
		if (c->done_pending) {
			c->done_pending = false;
			c->done_emitted = true;
			enter_state(c, SMTP_CLIENT_DONE);
			smtp_buf_reset(&c->in);
			ev->type = SMTP_CLIENT_EV_DONE;
			ev->result = &c->session_res;
			return 0;
		}
		if (c->starttls_pending) {
			c->starttls_pending = false;
			ev->type = SMTP_CLIENT_EV_STARTTLS;
			return 0;
		}
		if (c->body_pending) {
			c->body_pending = false;
			ev->type = SMTP_CLIENT_EV_SEND_BODY;
			return 0;
		}
		if (c->ready_pending) {
			c->ready_pending = false;
			if (c->state == SMTP_CLIENT_READY && !c->have_msg) {
				ev->type = SMTP_CLIENT_EV_READY;
				return 0;
			}
		}
		if (c->state == SMTP_CLIENT_DONE || c->state == SMTP_CLIENT_TLS)
			break;
		size_t len = smtp_buf_len(&c->in);
		if (len == 0)
			break;
		struct smtp_reply r;
		int n = smtp_reply_parse(smtp_buf_data(&c->in), len, &r);
		if (n == SMTP_ERR_AGAIN)
			break;
		if (n < 0) {
			struct smtp_result res;
			local_result(&res, 4, 5, 0, SMTP_STAGE_BANNER,
			    SMTP_REASON_PROTOCOL,
			    "malformed reply from the server");
			switch (c->state) {
			case SMTP_CLIENT_BANNER:
				res.stage = SMTP_STAGE_BANNER;
				break;
			case SMTP_CLIENT_EHLO:
				res.stage = SMTP_STAGE_EHLO;
				break;
			case SMTP_CLIENT_HELO:
				res.stage = SMTP_STAGE_HELO;
				break;
			case SMTP_CLIENT_STARTTLS:
				res.stage = SMTP_STAGE_STARTTLS;
				break;
			case SMTP_CLIENT_RSET:
				res.stage = SMTP_STAGE_RSET;
				break;
			case SMTP_CLIENT_ENVELOPE:
				res.stage = SMTP_STAGE_RCPT;
				break;
			case SMTP_CLIENT_BODY:
				res.stage = SMTP_STAGE_DATA;
				break;
			case SMTP_CLIENT_DOT:
				res.stage = SMTP_STAGE_DOT;
				break;
			case SMTP_CLIENT_QUIT:
				res.stage = SMTP_STAGE_QUIT;
				break;
			case SMTP_CLIENT_READY:
			case SMTP_CLIENT_TLS:
			case SMTP_CLIENT_DONE:
				break;
			}
			if (c->state == SMTP_CLIENT_QUIT) {
				c->done_pending = true;
				smtp_buf_reset(&c->in);
				continue;
			}
			int rc = session_fail(c, &res, false);
			if (rc < 0)
				return rc;
			continue;
		}
		/* The reply's slices stay valid: consuming does not move data. */
		smtp_buf_consume(&c->in, (size_t)n);
		int rc = handle_reply(c, &r, ev);
		if (rc < 0)
			return rc;
		if (rc > 0)
			return 0;
	}
	ev->type = SMTP_CLIENT_EV_NONE;
	return 0;
}

int
smtp_client_feed(struct smtp_client *c, const uint8_t *p, size_t len)
{
	if (c->state == SMTP_CLIENT_TLS || c->state == SMTP_CLIENT_DONE ||
	    c->done_pending)
		return 0;
	int rc = smtp_buf_append(&c->in, p, len);
	if (rc == SMTP_ERR_FULL) {
		struct smtp_result res;
		local_result(&res, 4, 5, 0, SMTP_STAGE_BANNER,
		    SMTP_REASON_PROTOCOL, "reply too long");
		int r2 = session_fail(c, &res, false);
		(void)r2;
	}
	return rc;
}

int
smtp_client_eof(struct smtp_client *c)
{
	if (c->done_emitted || c->done_pending)
		return 0;
	if (c->state == SMTP_CLIENT_QUIT) {
		c->done_pending = true;
		if (!c->dead)
			local_result(&c->session_res, 2, 0, 0, SMTP_STAGE_QUIT,
			    SMTP_REASON_CONNECTION_LOST,
			    "connection closed after QUIT");
		return 0;
	}
	struct smtp_result res;
	local_result(&res, 4, 4, 2, SMTP_STAGE_BANNER,
	    SMTP_REASON_CONNECTION_LOST, "lost connection with the server");
	res.stage = c->state == SMTP_CLIENT_BODY ? SMTP_STAGE_DATA
	    : c->state == SMTP_CLIENT_DOT        ? SMTP_STAGE_DOT
	    : c->state == SMTP_CLIENT_ENVELOPE   ? SMTP_STAGE_RCPT
	    : c->state == SMTP_CLIENT_EHLO       ? SMTP_STAGE_EHLO
	    : c->state == SMTP_CLIENT_STARTTLS || c->state == SMTP_CLIENT_TLS
	    ? SMTP_STAGE_STARTTLS
	    : SMTP_STAGE_BANNER;
	c->dead = false;
	int rc = session_fail(c, &res, false);
	return rc < 0 ? rc : 0;
}

int
smtp_client_abort(struct smtp_client *c, const char *enhanced, const char *text)
{
	struct smtp_status st = { 4, 4, 2 };
	if (enhanced != NULL) {
		size_t n = strlen(enhanced);
		if (smtp_status_parse((const uint8_t *)enhanced, n, &st) !=
		        (int)n ||
		    st.klass == 2)
			return SMTP_ERR_INVAL;
	}
	if (text != NULL && !smtp__text_ok(text, SMTP_RESULT_TEXT_MAX - 1))
		return SMTP_ERR_INVAL;
	if (c->done_emitted || c->done_pending)
		return 0;
	struct smtp_result res;
	local_result(&res, st.klass, (uint8_t)st.subject, st.detail,
	    SMTP_STAGE_BANNER, SMTP_REASON_ABORTED, text ? text : "aborted");
	res.stage = c->state == SMTP_CLIENT_TLS ? SMTP_STAGE_STARTTLS
	    : c->state == SMTP_CLIENT_BODY      ? SMTP_STAGE_DATA
	    : c->state == SMTP_CLIENT_DOT       ? SMTP_STAGE_DOT
	    : c->state == SMTP_CLIENT_ENVELOPE  ? SMTP_STAGE_RCPT
	    : c->state == SMTP_CLIENT_EHLO      ? SMTP_STAGE_EHLO
	    : c->state == SMTP_CLIENT_QUIT      ? SMTP_STAGE_QUIT
	                                        : SMTP_STAGE_BANNER;
	bool was_dead = c->dead;
	c->dead = false;
	if (was_dead) {
		/* Already failing: keep the first reason, just stop waiting. */
		c->dead = true;
		c->done_pending = true;
		smtp_buf_reset(&c->in);
		return 0;
	}
	return session_fail(c, &res, false) < 0 ? SMTP_ERR_NOMEM : 0;
}

int
smtp_client_tls_started(struct smtp_client *c)
{
	if (c->state != SMTP_CLIENT_TLS || c->dead)
		return SMTP_ERR_STATE;
	/* RFC 3207 4.2: forget the capabilities, EHLO again. */
	c->tls = true;
	smtp_buf_reset(&c->in);
	return send_ehlo(c);
}

static bool
xtext_str_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	return n > 0 && n <= max && smtp_xtext_valid((const uint8_t *)s, n);
}

int
smtp_client_start_message(struct smtp_client *c,
    const struct smtp_envelope *env)
{
	if (c->have_msg || c->dead || c->done_emitted ||
	    c->state == SMTP_CLIENT_QUIT)
		return SMTP_ERR_STATE;
	if (env->sender == NULL || env->rcpts == NULL || env->nrcpts == 0)
		return SMTP_ERR_INVAL;
	if (env->envid != NULL && !xtext_str_ok(env->envid, SMTP_ENVID_MAX))
		return SMTP_ERR_INVAL;
	struct smtp_addr a;
	bool utf8 = env->smtputf8;
	if (smtp_addr_parse_mailbox((const uint8_t *)env->sender,
	        strlen(env->sender), SMTP_ADDR_UTF8 | SMTP_ADDR_NULL_OK,
	        &a) < 0)
		return SMTP_ERR_ADDR;
	utf8 |= a.utf8;
	for (size_t i = 0; i < env->nrcpts; i++) {
		const struct smtp_client_rcpt *r = &env->rcpts[i];
		if (r->addr == NULL ||
		    smtp_addr_parse_mailbox((const uint8_t *)r->addr,
		        strlen(r->addr), SMTP_ADDR_UTF8, &a) < 0)
			return SMTP_ERR_ADDR;
		utf8 |= a.utf8;
		if (r->orcpt != NULL) {
			const char *semi = strchr(r->orcpt, ';');
			if (semi == NULL || semi == r->orcpt ||
			    strlen(r->orcpt) > SMTP_ORCPT_MAX ||
			    !xtext_str_ok(semi + 1, SMTP_ORCPT_MAX))
				return SMTP_ERR_INVAL;
		}
		if ((r->notify & SMTP_NOTIFY_NEVER) &&
		    r->notify != SMTP_NOTIFY_NEVER)
			return SMTP_ERR_INVAL;
	}
	struct msg *m = &c->msg;
	memset(m, 0, sizeof(*m));
	m->sender = dup_str(env->sender);
	m->rcpts = calloc(env->nrcpts, sizeof(*m->rcpts));
	if (m->sender == NULL || m->rcpts == NULL)
		goto nomem;
	m->n = env->nrcpts;
	for (size_t i = 0; i < env->nrcpts; i++) {
		m->rcpts[i].addr = dup_str(env->rcpts[i].addr);
		m->rcpts[i].notify = env->rcpts[i].notify;
		if (m->rcpts[i].addr == NULL)
			goto nomem;
		if (env->rcpts[i].orcpt != NULL) {
			m->rcpts[i].orcpt = dup_str(env->rcpts[i].orcpt);
			if (m->rcpts[i].orcpt == NULL)
				goto nomem;
		}
	}
	if (env->envid != NULL && (m->envid = dup_str(env->envid)) == NULL)
		goto nomem;
	m->size = env->size;
	m->body = env->body;
	m->ret = env->ret;
	m->utf8 = utf8;
	m->requiretls = env->requiretls;
	c->have_msg = true;
	c->msg_active = false;
	if (c->state == SMTP_CLIENT_READY) {
		c->ready_pending = false;
		return send_envelope(c);
	}
	return 0;
nomem:
	msg_free(m);
	return SMTP_ERR_NOMEM;
}

int
smtp_client_body(struct smtp_client *c, const uint8_t *p, size_t len)
{
	if (c->state != SMTP_CLIENT_BODY || c->msg_pending || c->bdat_failed ||
	    c->dead)
		return SMTP_ERR_STATE;
	if (len == 0)
		return 0;
	size_t bound = smtp_data_enc_bound(len);
	if (!c->chunked) {
		uint8_t *wp;
		int rc = smtp_buf_reserve(&c->out, bound, &wp);
		if (rc < 0)
			return rc;
		long n = smtp_data_encode(&c->enc, p, len, wp, bound);
		SMTP_ASSERT(n >= 0);
		smtp_buf_commit(&c->out, (size_t)n);
		return 0;
	}
	/* RFC 3030 2: "BDAT" SP chunk-size CRLF, then the octets. */
	if (smtp_buf_avail(&c->out) < bound + 32)
		return SMTP_ERR_FULL;
	uint8_t *tmp = malloc(bound);
	if (tmp == NULL)
		return SMTP_ERR_NOMEM;
	long n = smtp_data_encode(&c->enc, p, len, tmp, bound);
	SMTP_ASSERT(n >= 0);
	int rc = 0;
	if (n > 0) {
		rc = smtp_buf_printf(&c->out, "BDAT %ld\r\n", n);
		if (rc == 0)
			rc = smtp_buf_append(&c->out, tmp, (size_t)n);
		if (rc == 0)
			c->bdat_outstanding++;
	}
	free(tmp);
	return rc;
}

int
smtp_client_body_end(struct smtp_client *c)
{
	if (c->state != SMTP_CLIENT_BODY || c->msg_pending || c->bdat_failed ||
	    c->dead)
		return SMTP_ERR_STATE;
	if (smtp_buf_avail(&c->out) < 40)
		return SMTP_ERR_FULL;
	int rc;
	if (!c->chunked) {
		uint8_t tail[8];
		long n = smtp_data_encode_end(&c->enc, tail, sizeof(tail));
		SMTP_ASSERT(n > 0);
		rc = smtp_buf_append(&c->out, tail, (size_t)n);
	} else {
		/* End the content with CRLF, as a DATA transfer would. */
		bool crlf = c->enc.pending_cr || !c->enc.at_line_start;
		rc = smtp_buf_printf(&c->out, "BDAT %d LAST\r\n%s",
		    crlf ? 2 : 0, crlf ? "\r\n" : "");
		smtp_data_enc_init(&c->enc);
		c->bdat_outstanding++;
	}
	if (rc < 0)
		return rc;
	enter_state(c, SMTP_CLIENT_DOT);
	return 0;
}

int
smtp_client_quit(struct smtp_client *c)
{
	if (c->state != SMTP_CLIENT_READY || c->have_msg || c->dead)
		return SMTP_ERR_STATE;
	c->ready_pending = false;
	enter_state(c, SMTP_CLIENT_QUIT);
	return send_cmd(c, "QUIT", NULL);
}

const uint8_t *
smtp_client_output(const struct smtp_client *c, size_t *len)
{
	*len = smtp_buf_len(&c->out);
	return *len ? smtp_buf_data(&c->out) : NULL;
}

void
smtp_client_output_consume(struct smtp_client *c, size_t n)
{
	smtp_buf_consume(&c->out, n);
}

enum smtp_client_state
smtp_client_state(const struct smtp_client *c)
{
	return c->state;
}

const struct smtp_caps *
smtp_client_caps(const struct smtp_client *c)
{
	return &c->caps;
}

bool
smtp_client_is_tls(const struct smtp_client *c)
{
	return c->tls;
}
