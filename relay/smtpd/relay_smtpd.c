/*
 * relay_smtpd: inbound SMTP sessions from the local MTA.
 *
 * The protocol is smtp/'s server machine; this file only moves bytes between
 * it and a relay_conn, and turns its events into queue operations:
 *
 *   MAIL     -> a new envelope (sender, RET, ENVID, BODY, SMTPUTF8)
 *   RCPT     -> a recipient (address, NOTIFY, ORCPT)
 *   DATA     -> relay_queue_msg_begin(): the spool file
 *   BODY     -> relay_queue_writer_write() (thread pool; back-pressure)
 *   MESSAGE  -> relay_queue_writer_commit(): fsync file + directory, and
 *               only then "250 2.0.0 Ok: queued as ID" (or 452 4.3.1 when
 *               the disk is full, 451 4.3.0 on other I/O errors)
 *   STARTTLS -> TLS through the connection's memory BIOs
 *
 * Clients outside mynetworks get the machine's reject mode (554 5.7.1
 * banner, 503 to everything but QUIT): nothing they send is queued. They
 * have their own connection limit (smtpd_reject_connection_limit), so they
 * never take a slot from mynetworks clients, and their whole session ends
 * at smtpd_reject_timeout.
 *
 * Time limits (Postfix smtpd_timeout plus smtpd_per_request_deadline and
 * smtpd_min_data_rate): the connection's idle timer (smtpd_timeout) restarts
 * on every read; beside it an overall deadline per phase, which bytes do
 * not restart, so a client that drips one byte per idle period is still
 * cut off:
 *   command phase  a request and its reply within smtpd_timeout; restarts
 *                  when a reply goes out;
 *   content        smtpd_timeout from DATA/the first BDAT, plus the time
 *                  the content received so far takes at smtpd_min_data_rate;
 *   verdict        none: the client waits for our fsync;
 *   STARTTLS       smtpd_starttls_timeout for the whole handshake;
 *   reject mode    smtpd_reject_timeout for the whole session.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay_clock.h"
#include "relay_conn.h"
#include "relay_log.h"
#include "relay_smtpd.h"
#include "relay_text.h"
#include "smtp.h"


/* Stop reading from the client while this much content waits for the
 * thread pool: a fast client cannot make us buffer a whole message. */
#define SMTPD_WRITE_HIGH_WATER (1024u * 1024)

struct relay_smtpd {
	struct relay_smtpd_server *srv;
	struct relay_smtpd *next, **pprev;
	struct relay_conn *conn;
	struct smtp_server *smtp;
	struct relay_queue_envelope *env;  /* transaction being received */
	struct relay_queue_writer *writer; /* its spool file, after DATA */
	int write_err;                     /* sticky begin/write failure */
	char client[INET6_ADDRSTRLEN];
	char helo[256];
	uint64_t msgs;
	uint64_t content_start_ms; /* monotonic, at DATA/first BDAT */
	uint64_t content_bytes;    /* wire bytes read since then */
	bool in_content;
	bool rejected;
	bool closing;
	bool paused_for_disk;
	bool paused_for_output; /* replies wait for the client */
	/* in_flow_delay: the reply to MAIL FROM waits on this timer. */
	uv_timer_t flow_timer;
	bool flow_timer_open;
};

static void smtpd_pump(struct relay_smtpd *s);

/* Reading stops while the disk or the client's reading lags behind. */
static void
smtpd_update_pause(struct relay_smtpd *s)
{
	if (s->conn != NULL)
		relay_conn_pause(s->conn,
		    s->paused_for_disk || s->paused_for_output);
}

static void
smtpd_drop_txn(struct relay_smtpd *s)
{
	if (s->writer != NULL) {
		relay_queue_writer_abort(s->writer);
		s->writer = NULL;
	}
	relay_queue_envelope_free(s->env);
	s->env = NULL;
	s->write_err = 0;
	s->in_content = false;
	if (s->paused_for_disk) {
		s->paused_for_disk = false;
		smtpd_update_pause(s);
	}
}

static void
smtpd_close(struct relay_smtpd *s)
{
	if (s->closing)
		return;
	s->closing = true;
	smtpd_drop_txn(s);
	relay_conn_close(s->conn);
}

/* Send whatever the machine has produced. */
static bool
smtpd_flush(struct relay_smtpd *s)
{
	size_t len;
	const uint8_t *p = smtp_server_output(s->smtp, &len);

	if (p == NULL || len == 0)
		return true;
	int r = relay_conn_write(s->conn, p, len);
	smtp_server_output_consume(s->smtp, len);
	if (r != RELAY_CONN_OK) {
		smtpd_close(s);
		return false;
	}
	return true;
}

static void
smtpd_log_simple(const struct relay_smtpd *s, enum relay_log_level lvl,
    const char *event, const char *why)
{
	struct relay_log_line l;
	if (relay_log_begin(&l, lvl, event)) {
		relay_log_str(&l, "client", s->client);
		if (why != NULL)
			relay_log_str(&l, "why", why);
		relay_log_end(&l);
	}
}

/* A NUL-terminated heap copy of a slice (caller frees), or NULL. */
static char *
slice_dup(struct smtp_slice sl)
{
	char *tmp = malloc(sl.len + 1);
	if (tmp == NULL)
		return NULL;
	if (sl.len > 0)
		memcpy(tmp, sl.p, sl.len);
	tmp[sl.len] = '\0';
	return tmp;
}

/* Sets an envelope string field (owned by the envelope) from a slice. */
static int
slice_set(char **field, struct smtp_slice sl)
{
	char *tmp = slice_dup(sl);
	if (tmp == NULL)
		return RELAY_QUEUE_ENOMEM;
	int r = relay_queue_set_str(field, tmp);
	free(tmp);
	return r;
}

/*
 * Inflow control, as Postfix's in_flow_delay: when messages arrive faster
 * than they are delivered (the owner has no token for this one), the
 * reply to MAIL FROM waits in_flow_delay, then the transaction goes on
 * all the same. A client that sends faster than delivery goes is slowed
 * down, never refused, and messages do not pile up in the queue only to
 * wait there.
 */
static void
smtpd_flow_cb(uv_timer_t *t)
{
	struct relay_smtpd *s = t->data;
	if (s->closing)
		return;
	if (smtp_server_accept(s->smtp) != 0) {
		smtpd_close(s);
		return;
	}
	smtpd_pump(s);
}

static bool
smtpd_in_flow_wait(struct relay_smtpd *s)
{
	uint64_t delay = s->srv->ctx.cfg->in_flow_delay_ms;
	if (delay == 0 || s->srv->ctx.in_flow_take == NULL ||
	    !s->flow_timer_open || s->srv->ctx.in_flow_take(s->srv->ctx.arg))
		return false;
	return uv_timer_start(&s->flow_timer, smtpd_flow_cb, delay, 0) == 0;
}

static int
smtpd_on_mail(struct relay_smtpd *s, const struct smtp_server_event *ev)
{
	smtpd_drop_txn(s);
	if (s->srv->stopping)
		return smtp_server_reply(s->smtp, 421, "4.3.2",
		    "Service shutting down, try again later");
	struct relay_queue_envelope *env = relay_queue_envelope_new();
	if (env == NULL)
		return smtp_server_reply(s->smtp, 451, "4.3.0",
		    "Out of memory");
	if (slice_set(&env->sender,
	        ev->addr.null ? (struct smtp_slice){ 0 } : ev->addr.mailbox) !=
	        0 ||
	    slice_set(&env->envid, ev->mail.envid) != 0 ||
	    relay_queue_set_str(&env->client_addr, s->client) != 0 ||
	    relay_queue_set_str(&env->client_name, "unknown") != 0 ||
	    relay_queue_set_str(&env->helo, s->helo) != 0) {
		relay_queue_envelope_free(env);
		return smtp_server_reply(s->smtp, 451, "4.3.0",
		    "Out of memory");
	}
	switch (ev->mail.ret) {
	case SMTP_RET_NONE:
		env->ret = RELAY_QUEUE_RET_NONE;
		break;
	case SMTP_RET_FULL:
		env->ret = RELAY_QUEUE_RET_FULL;
		break;
	case SMTP_RET_HDRS:
		env->ret = RELAY_QUEUE_RET_HDRS;
		break;
	}
	switch (ev->mail.body) {
	case SMTP_BODY_NONE:
	case SMTP_BODY_7BIT:
		env->body = RELAY_QUEUE_BODY_7BIT;
		break;
	case SMTP_BODY_8BITMIME:
		env->body = RELAY_QUEUE_BODY_8BITMIME;
		break;
	case SMTP_BODY_BINARYMIME:
		env->body = RELAY_QUEUE_BODY_BINARYMIME;
		break;
	}
	env->smtputf8 = ev->mail.smtputf8;
	/* RFC 8689 4.1: the message is tagged for REQUIRETLS handling. */
	env->requiretls = ev->mail.requiretls;
	s->env = env;
	if (smtpd_in_flow_wait(s))
		return 0; /* the verdict comes from smtpd_flow_cb() */
	return smtp_server_accept(s->smtp);
}

static int
smtpd_on_rcpt(struct relay_smtpd *s, const struct smtp_server_event *ev)
{
	if (s->env == NULL)
		return smtp_server_reply(s->smtp, 451, "4.3.0",
		    "Transaction lost");
	/* The relay routes by domain; a bare "Postmaster" has none here. */
	if (ev->addr.postmaster || ev->addr.domain.len == 0)
		return smtp_server_reply(s->smtp, 550, "5.1.3",
		    "Recipient address has no domain");
	char *addr = slice_dup(ev->addr.mailbox);
	char *orcpt = slice_dup(ev->rcpt.orcpt);
	int r = RELAY_QUEUE_ENOMEM;
	if (addr != NULL && orcpt != NULL)
		r = relay_queue_rcpt_add(s->env, addr, orcpt, ev->rcpt.notify,
		    NULL);
	free(addr);
	free(orcpt);
	if (r != 0)
		return smtp_server_reply(s->smtp, 451, "4.3.0",
		    "Out of memory");
	return smtp_server_accept(s->smtp);
}

static void
smtpd_on_data(struct relay_smtpd *s)
{
	s->write_err = 0;
	if (s->env == NULL) {
		s->write_err = RELAY_QUEUE_EINVAL;
		return;
	}
	int r = relay_queue_msg_begin(s->srv->ctx.queue, s->env, &s->writer);
	if (r != 0) {
		s->writer = NULL;
		s->write_err = r;
		return;
	}
	/* RFC 5321 4.4: every relay prepends its Received: line (trace). The
	 * client's HELO and address are ours to report, escaped to printable
	 * ASCII without parentheses so the header cannot be broken. */
	char helo[64], date[64], line[512];
	size_t k = 0;
	for (const char *p = s->helo; *p != '\0' && k < sizeof(helo) - 1; p++)
		helo[k++] = (*p > 0x20 && *p < 0x7f && *p != '(' && *p != ')')
		    ? *p
		    : '?';
	helo[k] = '\0';
	time_t now = (time_t)relay_clock_wall_s(s->srv->ctx.clock);
	struct tm tm;
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm) ==
	        0)
		date[0] = '\0';
	int w = snprintf(line, sizeof(line),
	    "Received: from %s (%s)\r\n\tby %s (danerelay) with %s id %s;\r\n\t%s\r\n",
	    helo[0] ? helo : "unknown", s->client, s->srv->ctx.cfg->myhostname,
	    smtp_server_is_tls(s->smtp) ? "ESMTPS" : "ESMTP",
	    relay_queue_writer_id(s->writer), date);
	if (w > 0 && (size_t)w < sizeof(line)) {
		r = relay_queue_writer_write(s->writer, line, (size_t)w, NULL,
		    NULL);
		if (r != 0)
			s->write_err = r;
	}
}

static void
smtpd_write_done(struct relay_queue_writer *w, int status, void *arg)
{
	struct relay_smtpd *s = arg;
	(void)w;
	if (status != 0 && s->write_err == 0)
		s->write_err = status;
	if (s->paused_for_disk) {
		s->paused_for_disk = false;
		smtpd_update_pause(s);
	}
}

static void
smtpd_on_body(struct relay_smtpd *s, struct smtp_slice data)
{
	if (s->writer == NULL || s->write_err != 0 || data.len == 0)
		return;
	bool high = relay_queue_writer_buffered(s->writer) + data.len >
	        SMTPD_WRITE_HIGH_WATER &&
	    !s->paused_for_disk;
	int r = relay_queue_writer_write(s->writer, data.p, data.len,
	    high ? smtpd_write_done : NULL, s);
	if (r != 0) {
		s->write_err = r;
		return;
	}
	if (high) {
		s->paused_for_disk = true;
		smtpd_update_pause(s);
	}
}

static int
smtpd_reply_for_queue_error(struct relay_smtpd *s, int err)
{
	if (err == RELAY_QUEUE_ENOSPC)
		return smtp_server_reply(s->smtp, 452, "4.3.1",
		    "Insufficient system storage");
	if (err == RELAY_QUEUE_ECANCELED)
		return smtp_server_reply(s->smtp, 421, "4.3.2",
		    "Service shutting down, try again later");
	return smtp_server_reply(s->smtp, 451, "4.3.0",
	    "Local error in processing, try again later");
}

static void
smtpd_committed(struct relay_queue_writer *w, int status, const char *queue_id,
    void *arg)
{
	struct relay_smtpd *s = arg;
	(void)w;
	s->writer = NULL; /* freed by the queue after this callback */
	int r;
	if (status == 0) {
		char text[128];
		snprintf(text, sizeof(text), "Ok: queued as %s", queue_id);
		r = smtp_server_reply(s->smtp, 250, "2.0.0", text);
		s->msgs++;
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_INFO, "queued")) {
			relay_log_str(&l, "id", queue_id);
			relay_log_addr(&l, "from",
			    s->env != NULL ? s->env->sender : "");
			relay_log_u64(&l, "nrcpt",
			    s->env != NULL ? s->env->rcpt_count : 0);
			relay_log_str(&l, "client", s->client);
			relay_log_end(&l);
		}
		if (s->srv->ctx.committed != NULL)
			s->srv->ctx.committed(s->srv->ctx.arg, queue_id);
	} else {
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_WARNING,
		        "queue-write-failed")) {
			relay_log_str(&l, "client", s->client);
			relay_log_str(&l, "why", relay_queue_strerror(status));
			relay_log_end(&l);
		}
		r = smtpd_reply_for_queue_error(s, status);
	}
	relay_queue_envelope_free(s->env);
	s->env = NULL;
	if (r != 0) {
		smtpd_close(s);
		return;
	}
	smtpd_pump(s);
}

static void
smtpd_on_message(struct relay_smtpd *s)
{
	int r;
	if (s->writer == NULL || s->write_err != 0) {
		int err = s->write_err != 0 ? s->write_err : RELAY_QUEUE_EIO;
		if (s->writer != NULL) {
			relay_queue_writer_abort(s->writer);
			s->writer = NULL;
		}
		r = smtpd_reply_for_queue_error(s, err);
		relay_queue_envelope_free(s->env);
		s->env = NULL;
		s->write_err = 0;
		if (r != 0)
			smtpd_close(s);
		return;
	}
	r = relay_queue_writer_commit(s->writer, smtpd_committed, s);
	if (r != 0) {
		relay_queue_writer_abort(s->writer);
		s->writer = NULL;
		if (smtpd_reply_for_queue_error(s, r) != 0)
			smtpd_close(s);
	}
}

static void
smtpd_start_tls(struct relay_smtpd *s)
{
	SSL *ssl = s->srv->ctx.server_tls != NULL
	    ? SSL_new(s->srv->ctx.server_tls)
	    : NULL;
	if (ssl == NULL) {
		smtpd_close(s);
		return;
	}
	SSL_set_accept_state(ssl);
	relay_conn_set_timeout(s->conn,
	    s->srv->ctx.cfg->smtpd_starttls_timeout_ms);
	relay_conn_set_deadline(s->conn,
	    s->srv->ctx.cfg->smtpd_starttls_timeout_ms);
	/* relay_conn_start_tls owns ssl from here, also on failure. */
	if (relay_conn_start_tls(s->conn, ssl) != RELAY_CONN_OK)
		smtpd_close(s);
}

/* The overall deadline of the phase the session is in (see the top). */
static void
smtpd_update_deadline(struct relay_smtpd *s, bool replied)
{
	const struct relay_config *cfg = s->srv->ctx.cfg;
	if (s->rejected || s->closing)
		return; /* reject mode: one deadline for the session */
	switch (smtp_server_state(s->smtp)) {
	case SMTP_SERVER_VERDICT:
		relay_conn_set_deadline(s->conn, 0);
		return;
	case SMTP_SERVER_STARTTLS:
	case SMTP_SERVER_CLOSED:
	case SMTP_SERVER_REJECT:
		return;
	case SMTP_SERVER_INIT:
	case SMTP_SERVER_READY:
	case SMTP_SERVER_MAIL:
	case SMTP_SERVER_DATA:
	case SMTP_SERVER_BDAT:
		break;
	}
	if (s->in_content) {
		uint64_t now = relay_clock_mono_ms(s->srv->ctx.clock);
		uint64_t rate = (uint64_t)cfg->smtpd_min_data_rate;
		uint64_t end = s->content_start_ms + cfg->smtpd_timeout_ms +
		    s->content_bytes * 1000 / rate;
		relay_conn_set_deadline(s->conn, end > now ? end - now : 1);
	} else if (replied) {
		relay_conn_set_deadline(s->conn, cfg->smtpd_timeout_ms);
	}
}

/* The machine refused a protocol violation: one line per refusal, so an
 * attempt to smuggle, or to overflow a limit, leaves a trace. */
static void
smtpd_log_refused(const struct relay_smtpd *s, unsigned code,
    const char *enhanced, const char *why)
{
	struct relay_log_line l;
	if (relay_log_begin(&l, RELAY_LOG_INFO, "refused")) {
		relay_log_str(&l, "client", s->client);
		if (s->helo[0] != '\0')
			relay_log_str(&l, "helo", s->helo);
		if (s->env != NULL)
			relay_log_addr(&l, "from", s->env->sender);
		relay_log_u64(&l, "reply", code);
		relay_log_str(&l, "dsn", enhanced);
		relay_log_str(&l, "why", why);
		relay_log_end(&l);
	}
}

static void
smtpd_pump(struct relay_smtpd *s)
{
	while (!s->closing) {
		struct smtp_server_event ev;
		int r = smtp_server_next(s->smtp, &ev);
		if (r != 0) {
			smtpd_close(s);
			return;
		}
		switch (ev.type) {
		case SMTP_SERVER_EV_NONE: {
			/* The machine stops early when it has a large batch of
			 * replies (RFC 2920 pipelining); it goes on once they
			 * are handed to the connection. It is done when it has
			 * nothing more to say. */
			size_t pending;
			if (smtp_server_output(s->smtp, &pending) == NULL) {
				smtpd_update_deadline(s, false);
				return;
			}
			if (!smtpd_flush(s))
				return;
			smtpd_update_deadline(s, true);
			/* A client that does not read its replies is not
			 * served further until it does (on_drain). */
			if (relay_conn_pending(s->conn) >=
			    RELAY_CONN_LOW_WATER) {
				s->paused_for_output = true;
				smtpd_update_pause(s);
				return;
			}
			continue;
		}
		case SMTP_SERVER_EV_HELO: {
			size_t n = ev.helo.len < sizeof(s->helo) - 1
			    ? ev.helo.len
			    : sizeof(s->helo) - 1;
			memcpy(s->helo, ev.helo.p, n);
			s->helo[n] = '\0';
			break;
		}
		case SMTP_SERVER_EV_MAIL:
			r = smtpd_on_mail(s, &ev);
			break;
		case SMTP_SERVER_EV_RCPT:
			r = smtpd_on_rcpt(s, &ev);
			break;
		case SMTP_SERVER_EV_DATA:
			s->in_content = true;
			s->content_start_ms =
			    relay_clock_mono_ms(s->srv->ctx.clock);
			s->content_bytes = 0;
			smtpd_on_data(s);
			break;
		case SMTP_SERVER_EV_BODY:
			smtpd_on_body(s, ev.data);
			break;
		case SMTP_SERVER_EV_MESSAGE:
			/* The verdict comes from the commit callback. */
			s->in_content = false;
			if (ev.eightbit && s->writer != NULL)
				relay_queue_writer_set_8bit(s->writer);
			smtpd_flush(s);
			smtpd_update_deadline(s, false);
			smtpd_on_message(s);
			return;
		case SMTP_SERVER_EV_RESET:
			smtpd_drop_txn(s);
			break;
		case SMTP_SERVER_EV_STARTTLS:
			if (smtpd_flush(s))
				smtpd_start_tls(s);
			return;
		case SMTP_SERVER_EV_CLOSE:
			smtpd_flush(s);
			smtpd_close(s);
			return;
		case SMTP_SERVER_EV_REFUSED:
			smtpd_log_refused(s, ev.code, ev.enhanced, ev.reason);
			break;
		}
		if (r != 0) {
			smtpd_close(s);
			return;
		}
	}
}

static void
smtpd_on_data_in(struct relay_conn *c, const uint8_t *p, size_t len, void *arg)
{
	struct relay_smtpd *s = arg;
	(void)c;
	if (s->closing)
		return;
	if (s->in_content)
		s->content_bytes += len;
	if (smtp_server_feed(s->smtp, p, len) != 0) {
		/* Over the input ceiling: the machine queued 421 and CLOSE. */
		smtpd_log_refused(s, 421, "4.3.0", "input overflow");
	}
	smtpd_pump(s);
}

/* The client read enough of its replies: serve it again. */
static void
smtpd_on_drain(struct relay_conn *c, void *arg)
{
	struct relay_smtpd *s = arg;
	(void)c;
	if (s->closing || !s->paused_for_output)
		return;
	s->paused_for_output = false;
	smtpd_update_pause(s);
	smtpd_pump(s);
}

static void
smtpd_on_tls(struct relay_conn *c, int status, void *arg)
{
	struct relay_smtpd *s = arg;
	(void)c;
	if (status != RELAY_CONN_OK || smtp_server_tls_started(s->smtp) != 0) {
		smtpd_log_simple(s, RELAY_LOG_INFO, "smtpd-tls-failed", NULL);
		smtpd_close(s);
		return;
	}
	relay_conn_set_timeout(s->conn, s->srv->ctx.cfg->smtpd_timeout_ms);
	relay_conn_set_deadline(s->conn, s->srv->ctx.cfg->smtpd_timeout_ms);
	smtpd_pump(s);
}

static void
smtpd_on_error(struct relay_conn *c, int err, void *arg)
{
	struct relay_smtpd *s = arg;
	(void)c;
	if (s->closing)
		return;
	switch (err) {
	case RELAY_CONN_EOF:
		rc_ignore(smtp_server_eof(s->smtp));
		smtpd_pump(s);
		if (!s->closing)
			smtpd_close(s);
		return;
	case RELAY_CONN_TIMEOUT: {
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_INFO, "smtpd-timeout")) {
			relay_log_str(&l, "client", s->client);
			relay_log_str(&l, "why",
			    smtp_server_state_name(smtp_server_state(s->smtp)));
			relay_log_str(&l, "limit",
			    relay_conn_deadline_passed(s->conn) ? "deadline"
			                                        : "idle");
			relay_log_end(&l);
		}
		/* A commit in flight finishes first: never time out a client
		 * that is waiting for our fsync. */
		if (smtp_server_state(s->smtp) == SMTP_SERVER_VERDICT)
			return;
		if (smtp_server_abort(s->smtp, "4.4.2",
		        "Error: timeout exceeded") == 0) {
			smtpd_pump(s);
			if (!s->closing)
				smtpd_close(s);
			return;
		}
		break;
	}
	default:
		smtpd_log_simple(s, RELAY_LOG_INFO, "smtpd-error",
		    relay_conn_strerror(err));
		break;
	}
	smtpd_close(s);
}

static void
smtpd_free_cb(uv_handle_t *h)
{
	free(h->data);
}

static void
smtpd_on_closed(struct relay_conn *c, void *arg)
{
	struct relay_smtpd *s = arg;
	(void)c;
	struct relay_log_line l;
	if (relay_log_begin(&l, RELAY_LOG_INFO, "disconnect")) {
		relay_log_str(&l, "client", s->client);
		relay_log_u64(&l, "msgs", s->msgs);
		relay_log_end(&l);
	}
	smtpd_drop_txn(s);
	smtp_server_free(s->smtp);
	*s->pprev = s->next;
	if (s->next != NULL)
		s->next->pprev = s->pprev;
	s->srv->nsessions--;
	if (s->flow_timer_open)
		uv_close((uv_handle_t *)&s->flow_timer, smtpd_free_cb);
	else
		free(s);
}

static const struct relay_conn_cbs smtpd_cbs = {
	.on_data = smtpd_on_data_in,
	.on_tls = smtpd_on_tls,
	.on_error = smtpd_on_error,
	.on_drain = smtpd_on_drain,
	.on_closed = smtpd_on_closed,
};

static size_t
smtpd_count_client(const struct relay_smtpd_server *srv, const char *client)
{
	size_t n = 0;
	for (const struct relay_smtpd *s = srv->sessions; s != NULL;
	     s = s->next)
		if (strcmp(s->client, client) == 0)
			n++;
	return n;
}

/* Sessions of one kind: mynetworks clients, or refused outsiders. */
static size_t
smtpd_count_kind(const struct relay_smtpd_server *srv, bool rejected)
{
	size_t n = 0;
	for (const struct relay_smtpd *s = srv->sessions; s != NULL;
	     s = s->next)
		if (s->rejected == rejected)
			n++;
	return n;
}

void
relay_smtpd_accept(struct relay_smtpd_server *srv, uv_stream_t *server)
{
	struct relay_smtpd *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		relay_log_msg(RELAY_LOG_ERROR, "accept", "out of memory");
		return;
	}
	s->srv = srv;
	if (relay_conn_accept(server, &smtpd_cbs, s, &s->conn) !=
	    RELAY_CONN_OK) {
		free(s);
		return;
	}
	/* Cannot fail (libuv only fills in the handle); closed with the
	 * session (smtpd_on_closed). */
	s->flow_timer_open = uv_timer_init(srv->ctx.loop, &s->flow_timer) == 0;
	s->flow_timer.data = s;
	s->next = srv->sessions;
	s->pprev = &srv->sessions;
	if (srv->sessions != NULL)
		srv->sessions->pprev = &s->next;
	srv->sessions = s;
	srv->nsessions++;

	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (relay_conn_peer(s->conn, &ss) == 0) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET,
			    &((struct sockaddr_in *)&ss)->sin_addr, s->client,
			    sizeof(s->client));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)&ss)->sin6_addr, s->client,
			    sizeof(s->client));
	}
	if (s->client[0] == '\0')
		snprintf(s->client, sizeof(s->client), "unknown");

	const struct relay_config *cfg = srv->ctx.cfg;
	struct smtp_server_config sc = {
		.hostname = cfg->myhostname,
		.banner_text = "ESMTP danerelay",
		.max_message_size = cfg->message_size_limit,
		.max_recipients = (size_t)cfg->max_recipients,
		.starttls = srv->ctx.server_tls != NULL,
		.decide_mail = true,
		.decide_rcpt = true,
	};
	/* No open relay: only mynetworks may hand us mail. */
	bool allowed = ss.ss_family != 0 &&
	    relay_config_mynetworks_match(cfg, (const struct sockaddr *)&ss);
	if (!allowed) {
		sc.reject = true;
		sc.reject_text = "Relay access denied";
		s->rejected = true;
	}
	/* RFC 8689: only mynetworks clients may hand us mail, so only they
	 * are offered REQUIRETLS (after STARTTLS, smtp_server.h). */
	sc.requiretls = allowed && sc.starttls;
	s->smtp = smtp_server_new(&sc);
	if (s->smtp == NULL) {
		relay_log_msg(RELAY_LOG_ERROR, "accept", "out of memory");
		s->closing = true;
		relay_conn_abort(s->conn);
		return;
	}
	relay_conn_set_timeout(s->conn, cfg->smtpd_timeout_ms);
	relay_conn_set_deadline(s->conn,
	    s->rejected ? cfg->smtpd_reject_timeout_ms : cfg->smtpd_timeout_ms);

	/* Outsiders only ever get 554: they have their own small limit and
	 * never use up the slots of the clients we serve. */
	bool over_total = s->rejected ? smtpd_count_kind(srv, true) >
	        (size_t)cfg->smtpd_reject_connection_limit
	                              : cfg->max_connections > 0 &&
	        smtpd_count_kind(srv, false) > (size_t)cfg->max_connections;
	bool over_client = cfg->max_connections_per_client > 0 &&
	    smtpd_count_client(srv, s->client) >
	        (size_t)cfg->max_connections_per_client;
	if (srv->stopping || over_total || over_client) {
		static const char busy[] =
		    "421 4.7.0 Error: too many connections, try again later\r\n";
		static const char down[] =
		    "421 4.3.2 Service shutting down, try again later\r\n";
		const char *msg = srv->stopping ? down : busy;
		smtpd_log_simple(s, RELAY_LOG_INFO, "smtpd-refused",
		    srv->stopping ? "shutting down"
		        : over_total
		        ? (s->rejected ? "smtpd_reject_connection_limit"
		                       : "max_connections")
		        : "max_connections_per_client");
		rc_ignore(relay_conn_write(s->conn, (const uint8_t *)msg,
		    strlen(msg)));
		s->closing = true;
		relay_conn_close(s->conn);
		return;
	}
	smtpd_log_simple(s, RELAY_LOG_INFO, s->rejected ? "reject" : "connect",
	    s->rejected ? "client not in mynetworks" : NULL);
	smtpd_pump(s);
}

void
relay_smtpd_server_init(struct relay_smtpd_server *srv,
    const struct relay_smtpd_ctx *ctx)
{
	memset(srv, 0, sizeof(*srv));
	srv->ctx = *ctx;
}

void
relay_smtpd_shutdown(struct relay_smtpd_server *srv)
{
	srv->stopping = true;
	for (struct relay_smtpd *s = srv->sessions; s != NULL; s = s->next) {
		if (s->closing)
			continue;
		/* A client waiting for the 250 of a commit keeps its session
		 * until the commit ends; everything else gets 421 now. */
		if (smtp_server_state(s->smtp) == SMTP_SERVER_VERDICT)
			continue;
		if (smtp_server_abort(s->smtp, "4.3.2",
		        "Service shutting down") == 0)
			smtpd_pump(s);
		if (!s->closing)
			smtpd_close(s);
	}
}

void
relay_smtpd_abort_all(struct relay_smtpd_server *srv)
{
	for (struct relay_smtpd *s = srv->sessions; s != NULL; s = s->next) {
		if (!s->closing) {
			s->closing = true;
			smtpd_drop_txn(s);
		}
		relay_conn_abort(s->conn);
	}
}

size_t
relay_smtpd_count(const struct relay_smtpd_server *srv)
{
	return srv->nsessions;
}
