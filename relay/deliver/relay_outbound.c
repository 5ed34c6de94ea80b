/*
 * relay_outbound: one SMTP session to one MX address, and the cache of
 * verified idle connections.
 *
 * TCP and TLS come from relay_conn (memory BIOs), the protocol from smtp/'s
 * client machine, the TLS policy from tlsa/: the machine runs in TLS
 * REQUIRED mode for every verdict but MAY, the SSL is prepared by
 * tlsa_ssl_new() for the verdict, and the transaction goes on only after
 * tlsa_ssl_result() says the verdict is satisfied (C18-C21, C50, C51, C67).
 * There is no path from a verdict that requires TLS to a cleartext
 * transaction.
 *
 * `danerelay probe` runs the same session in probe mode
 * (relay_outbound_probe): no job and no envelope, so the machine reports
 * READY once EHLO is done (after STARTTLS and the check above when TLS is
 * required); the session records that, says QUIT and reports what a
 * delivery attempt would have recorded. It never sends MAIL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "deliver_int.h"
#include "relay_class.h"
#include "relay_log.h"

static void sess_pump(struct out_sess *ss);
static void greet_unlink(struct out_sess *ss);
static bool sess_cacheable(struct out_sess *ss);
static bool sess_park(struct out_sess *ss);
static bool sess_attach_envelope(struct out_sess *ss, struct dest_job *j);

/* A session in probe mode: who hears the outcome, and the outcome. */
struct relay_outbound_probe {
	struct out_sess *ss;
	const struct tlsa_verdict *verdict; /* borrowed, see relay_deliver.h */
	void (*step)(void *arg, enum relay_outbound_step step,
	    const struct relay_outbound_result *res);
	void (*done)(void *arg, const struct relay_outbound_result *res);
	void *arg;
	struct relay_outbound_result res;
};

enum smtp_tls_mode
deliver__tls_mode(const struct tlsa_verdict *v, bool cleartext)
{
	/* Only a MAY verdict lets the session go on without TLS; a `none`
	 * policy entry (which asks for MAY) does not even offer it. */
	if (v->kind != TLSA_VERDICT_MAY)
		return SMTP_TLS_REQUIRED;
	return cleartext ? SMTP_TLS_NONE : SMTP_TLS_MAY;
}

/* ------------------------------------------------------------ sessions */

/* The verdict the session's TLS is prepared and judged by. */
static const struct tlsa_verdict *
sess_verdict(const struct out_sess *ss)
{
	return ss->probe != NULL ? ss->probe->verdict : &ss->j->verdict;
}

/* Whether someone waits for this session's outcome (a job or a probe),
 * as opposed to an idle cached connection. */
static bool
sess_working(const struct out_sess *ss)
{
	return ss->j != NULL || ss->probe != NULL;
}

static const struct smtp_result *
sess_rcpt_result(const struct out_sess *ss, size_t k)
{
	if (ss->rseen[k] && ss->rres[k].klass != 2)
		return &ss->rres[k];
	if (ss->mseen)
		return &ss->mres;
	return ss->rseen[k] ? &ss->rres[k] : NULL;
}

/*
 * The outcome of a session that ended before the server said anything about
 * a transaction (connect, banner, EHLO, STARTTLS, TLS/DANE, connection
 * lost): another address or MX host may do better (RFC 5321 5.1, RFC 7672
 * 2.2 C19/C21). The probe reports the same outcome (relay_outbound_probe).
 * v is the verdict the session ran under (the caller's: a reporting job
 * is already detached from the session).
 */
static void
sess_fail_outcome(const struct out_sess *ss, const struct tlsa_verdict *v,
    struct failure *f)
{
	const struct smtp_result *r = ss->mseen ? &ss->mres : NULL;
	char why[REASON_MAX];
	if (ss->bind_failed) {
		/* A local fault, not the host's (RFC 3463 X.4.0): the attempt
		 * is deferred, never made from another source address. */
		relay_fmt(why, sizeof(why),
		    "connect to %s[%s]:%u: cannot bind source address %s: %s",
		    ss->host, ss->addr, (unsigned)ss->port, ss->source,
		    ss->connect_err);
		deliver__fail_set(f, false, "4.4.0", RELAY_FAIL_CLASS_CONNECT,
		    why);
	} else if (ss->connect_failed) {
		relay_fmt(why, sizeof(why), "connect to %s[%s]:%u: %s",
		    ss->host, ss->addr, (unsigned)ss->port, ss->connect_err);
		deliver__fail_set(f, false, "4.4.1", RELAY_FAIL_CLASS_CONNECT,
		    why);
	} else if (ss->tls_failed) {
		relay_fmt(why, sizeof(why), "TLS with %s[%s]: %s", ss->host,
		    ss->addr, ss->tres.why);
		deliver__fail_set(f, false,
		    ss->tres.status[0] ? ss->tres.status : "4.7.5",
		    relay_class_tls(v, &ss->tres), why);
	} else if (r != NULL) {
		/* A result without a reply code is the client's own finding
		 * (STARTTLS not offered, connection lost, a timeout): the host
		 * did not say it. */
		relay_fmt(why, sizeof(why), "%s%s[%s]%s %s (in reply to %s)",
		    r->code != 0 ? "host " : "", ss->host, ss->addr,
		    r->code != 0 ? " said:" : ":", r->text,
		    smtp_stage_name(r->stage));
		char st[16];
		deliver__fail_set(f, false,
		    smtp_status_format(&r->status, st, sizeof(st)),
		    relay_class_smtp(r, ss->abort_class), why);
	} else {
		deliver__fail_set(f, false, "4.4.2", RELAY_FAIL_CLASS_CONNECT,
		    "lost connection");
	}
	if (ss->sts == RELAY_STS_USE_ENFORCE) {
		/* RFC 8461 4.2, 5: under an enforce policy a missing STARTTLS
		 * or a certificate that is not valid for the MX host name is
		 * a policy failure: this MX is not used (4.7.5). */
		enum relay_fail_class c = relay_class_sts_enforce(f->class,
		    ss->tls_failed ? &ss->tres : NULL);
		if (c != f->class) {
			f->class = c;
			relay_copy(f->dsn, sizeof(f->dsn), "4.7.5");
		}
	}
}

/* RFC 8461 5 (testing): the delivery goes on as before; what enforce
 * would have refused is logged, for the domain's operator to see. */
static void
log_sts_testing(const struct dest_job *j, const struct out_sess *ss,
    enum relay_fail_class would_fail)
{
	struct relay_log_line l;
	if (!relay_log_begin(&l, RELAY_LOG_INFO, "mta-sts-testing"))
		return;
	relay_log_str(&l, "id", j->m->id);
	relay_log_str(&l, "domain", j->domain);
	relay_log_strf(&l, "relay", "%s[%s]:%u", ss->host, ss->addr,
	    (unsigned)ss->port);
	relay_log_str(&l, "would_fail", relay_fail_class_name(would_fail));
	if (would_fail == RELAY_FAIL_CLASS_STS_CERTIFICATE)
		relay_log_strf(&l, "why",
		    "certificate not valid for %s under mta_sts_ca_file: %s",
		    ss->host, X509_verify_cert_error_string(ss->sts_x509_err));
	else
		relay_log_str(&l, "why",
		    ss->tls_failed ? "TLS failed" : "no TLS on this session");
	relay_log_end(&l);
}

/* What enforce would have refused this testing-mode attempt for (RFC
 * 8461 5), recorded in j->sts_would_fail and logged: a host the policy
 * does not name (already set by the host step), no TLS, or a certificate
 * that is not PKIX-valid for the MX host name. */
static void
sess_sts_testing(struct out_sess *ss, struct dest_job *j)
{
	if (ss->sts != RELAY_STS_USE_TESTING || ss->connect_failed ||
	    j->sts_would_fail != RELAY_FAIL_CLASS_NONE)
		return;
	if (!ss->tls_ok)
		j->sts_would_fail = RELAY_FAIL_CLASS_STS_STARTTLS_MISSING;
	else if (ss->sts_cert_fail != RELAY_FAIL_CLASS_NONE)
		j->sts_would_fail = ss->sts_cert_fail;
	else
		return;
	log_sts_testing(j, ss, j->sts_would_fail);
}

/*
 * Hand what a new session learnt about its MX host to the routing monitor
 * (relay_monitor.h): whether the EHLO reply offered STARTTLS, the key the
 * server presented, and whether it matched the DANE records. A DANE
 * mismatch gets the monitor's diagnosis in j->hint. Once per connection:
 * a reused connection adds nothing.
 */
static void
sess_monitor(struct out_sess *ss, struct dest_job *j)
{
	struct relay_monitor *mon = ss->ctx->monitor;
	if (ss->monitored || mon == NULL || ss->connect_failed || j->notify)
		return;
	ss->monitored = true;
	const struct smtp_caps *caps = smtp_client_caps(ss->smtp);
	bool tls_tried = ss->tls_ok || ss->tls_failed;
	struct relay_monitor_tls_obs o = {
		.domain = j->domain,
		.host = ss->host,
		/* A `none` policy entry never looks at STARTTLS. After TLS the
		 * client forgets the first EHLO's capabilities (RFC 3207 4.2),
		 * so a handshake stands for "offered". */
		.ehlo_seen = !ss->cleartext_policy &&
		    (tls_tried || (caps != NULL && caps->esmtp)),
		.starttls = tls_tried || (caps != NULL && caps->starttls),
		.have_key = tls_tried && ss->tres.have_spki,
		.dane = j->verdict.kind == TLSA_VERDICT_DANE,
		.matched = ss->tls_ok && ss->tres.ok,
		.recs = j->verdict.usable,
		.nrecs = j->verdict.n_usable,
		.chain_len = ss->tres.chain_len,
	};
	if (o.have_key)
		memcpy(o.key_sha256, ss->tres.spki_sha256, 32);
	enum tlsa_hint hint = TLSA_HINT_NONE;
	j->mon_kinds |= relay_monitor_observe_tls(mon, j->m->id, &o,
	    o.dane && tls_tried && !o.matched ? &hint : NULL);
	if (hint != TLSA_HINT_NONE)
		j->hint = hint;
}

/* Report this connection's TLS session attempt once, for TLS reporting
 * (relay_deliver.h: struct relay_tls_session). before_txn: the session
 * ended before the transaction, with j->fail just set by
 * sess_fail_outcome. */
static void
sess_count_tls(struct out_sess *ss, const struct dest_job *j, bool before_txn)
{
	const struct relay_deliver_ctx *ctx = ss->ctx;
	if (ctx->tls_session == NULL || ss->tls_counted ||
	    ss->cleartext_policy || ss->connect_failed)
		return;
	enum relay_fail_class c;
	if (ss->tls_ok)
		c = RELAY_FAIL_CLASS_NONE;
	else if (ss->tls_failed)
		c = relay_class_tls(&j->verdict, &ss->tres);
	else if (before_txn &&
	    j->fail.class == RELAY_FAIL_CLASS_STARTTLS_MISSING)
		c = RELAY_FAIL_CLASS_STARTTLS_MISSING;
	else if (!before_txn && j->verdict.kind == TLSA_VERDICT_MAY)
		c = RELAY_FAIL_CLASS_STARTTLS_MISSING; /* went on in cleartext */
	else
		return; /* ended before STARTTLS could be tried */
	/* RFC 8460 4.3 under a testing policy: the session is reported with
	 * the failure enforce would have met (RFC 8461 5). */
	if (c == RELAY_FAIL_CLASS_NONE && ss->sts == RELAY_STS_USE_TESTING)
		c = j->sts_would_fail;
	ss->tls_counted = true;
	struct relay_tls_session ev = {
		.domain = j->domain,
		.mx = ss->host,
		.addr = ss->addr,
		.local_addr = ss->local,
		.verdict = &j->verdict,
		.sts = ss->sts == RELAY_STS_USE_ENFORCE ||
		        ss->sts == RELAY_STS_USE_TESTING
		    ? j->sts
		    : NULL,
		.fclass = c,
	};
	ctx->tls_session(ctx->arg, &ev);
}

/* Decide what this session's attempt means for its destination job and
 * detach the job (the caller continues it with dest_next). */
static struct dest_job *
sess_report(struct out_sess *ss)
{
	struct dest_job *j = ss->j;
	if (j == NULL || ss->reported)
		return NULL;
	ss->reported = true;
	ss->j = NULL;
	j->sess = NULL;
	greet_unlink(ss);
	sess_monitor(ss, j);

	sess_sts_testing(ss, j);
	if (ss->connect_failed || !ss->any_txn_reply) {
		struct failure prev = j->fail;
		sess_fail_outcome(ss, &j->verdict, &j->fail);
		sess_count_tls(ss, j, true);
		/* No REQUIRETLS after STARTTLS (RFC 8689 4.2.1). */
		deliver__requiretls_keep(&j->fail, &prev);
		if (!ss->connect_failed && !ss->tls_failed && ss->mseen)
			relay_copy(j->info.reply, sizeof(j->info.reply),
			    ss->mres.text);
	} else {
		sess_count_tls(ss, j, false);
		/* The transaction reached the server: its replies decide each
		 * recipient of this attempt. */
		for (size_t k = 0; k < j->nr; k++) {
			const struct smtp_result *r = sess_rcpt_result(ss, k);
			if (r == NULL) {
				deliver__rcpt_decide(j, k,
				    RELAY_QUEUE_RCPT_DEFERRED, "4.4.2",
				    RELAY_FAIL_CLASS_CONNECT,
				    "lost connection before the recipient was answered");
				continue;
			}
			char why[REASON_MAX];
			relay_fmt(why, sizeof(why),
			    "%s[%s] said: %s (in reply to %s)", j->info.mx,
			    j->info.addr, r->text, smtp_stage_name(r->stage));
			enum relay_queue_rcpt_status st = r->klass == 2
			    ? RELAY_QUEUE_RCPT_SENT
			    : r->klass == 5 ? RELAY_QUEUE_RCPT_BOUNCED
			                    : RELAY_QUEUE_RCPT_DEFERRED;
			char stx[16];
			deliver__rcpt_decide(j, k, st,
			    smtp_status_format(&r->status, stx, sizeof(stx)),
			    r->klass == 2
			        ? RELAY_FAIL_CLASS_NONE
			        : relay_class_smtp(r, ss->abort_class),
			    why);
		}
		if (ss->mseen)
			relay_copy(j->info.reply, sizeof(j->info.reply),
			    ss->mres.text);
	}
	return j;
}

static void
cache_unlink(struct out_sess *ss)
{
	if (!ss->parked)
		return;
	ss->parked = false;
	*ss->cpprev = ss->cnext;
	if (ss->cnext != NULL)
		ss->cnext->cpprev = ss->cpprev;
	ss->s->ncache--;
}

/*
 * Fair use of connections. A new connection is made for one job, but a
 * busy server may leave it without a greeting for minutes (it sits in the
 * server's listen queue until a server process is free), while other
 * connections to the same server deliver message after message. So a job
 * is not tied to the connection made for it until that connection has
 * been greeted: a connection that is ready for another transaction first
 * takes the oldest such job (same host, address, port and verdict key, as
 * for the cache), and the ungreeted connection is dropped. Jobs are served
 * in the order their connections were started, not in the order servers
 * happen to accept connections.
 */
static void
greet_unlink(struct out_sess *ss)
{
	if (!ss->greeting)
		return;
	ss->greeting = false;
	*ss->gpprev = ss->gnext;
	if (ss->gnext != NULL)
		ss->gnext->gpprev = ss->gpprev;
	else
		ss->s->greet_tail = ss->gpprev;
}

static void
greet_link(struct out_sess *ss)
{
	struct relay_sched *s = ss->s;
	ss->greeting = true;
	ss->gnext = NULL;
	ss->gpprev = s->greet_tail;
	*s->greet_tail = ss;
	s->greet_tail = &ss->gnext;
}

static bool sess_may_serve(const struct relay_sched *s,
    const struct out_sess *ss, bool requiretls, const char *domain);

/* The oldest job that waits for a greeting on another connection and that
 * ready session ss (its key set by sess_cacheable) may carry, detached
 * from its connection, which is dropped; NULL when there is none. */
static struct dest_job *
greet_take(struct out_sess *ss)
{
	struct out_sess *w = ss->s->greet;
	while (w != NULL) {
		struct out_sess *next = w->gnext;
		if (w->j == NULL ||
		    smtp_client_state(w->smtp) != SMTP_CLIENT_BANNER) {
			/* Greeted (or no job any more): it keeps its job. */
			greet_unlink(w);
		} else if (strcmp(w->host, ss->host) == 0 &&
		    strcmp(w->addr, ss->addr) == 0 && w->port == ss->port &&
		    memcmp(w->key, ss->key, 32) == 0 &&
		    sess_may_serve(ss->s, ss, deliver__requiretls(w->j),
		        w->j->domain)) {
			struct dest_job *j = w->j;
			greet_unlink(w);
			w->j = NULL;
			w->reported = true;
			j->sess = NULL;
			struct relay_log_line l;
			if (relay_log_begin(&l, RELAY_LOG_DEBUG,
			        "connection-handover")) {
				relay_log_str(&l, "id", j->m->id);
				relay_log_strf(&l, "relay", "%s[%s]:%u",
				    ss->host, ss->addr, (unsigned)ss->port);
				relay_log_u64(&l, "conn_use", ss->uses + 1);
				relay_log_str(&l, "why",
				    "a ready connection serves the job before its own "
				    "connection was greeted");
				relay_log_end(&l);
			}
			/* on_closed frees it; nothing is reported for it: it
			 * never reached the server's greeting. */
			relay_conn_abort(w->conn);
			return j;
		}
		w = next;
	}
	return NULL;
}

static void
sess_free(struct out_sess *ss)
{
	smtp_client_free(ss->smtp);
	free(ss->rcpts);
	free(ss->rres);
	free(ss->rseen);
	free(ss);
}

/* Fill a probe's result from its finished session. */
static void
probe_report(struct relay_outbound_probe *pr, const struct out_sess *ss)
{
	struct relay_outbound_result *res = &pr->res;
	res->tls_tried = ss->tls_ok || ss->tls_failed;
	if (res->tls_tried)
		res->tls = ss->tres;
	if (res->ready)
		return;
	struct failure f;
	memset(&f, 0, sizeof(f));
	sess_fail_outcome(ss, pr->verdict, &f);
	res->fclass = f.class;
	relay_copy(res->dsn, sizeof(res->dsn), f.dsn);
	relay_copy(res->why, sizeof(res->why), f.reason);
}

/* Tell a probe's watcher that its session passed step. */
static void
probe_step(struct out_sess *ss, enum relay_outbound_step step)
{
	struct relay_outbound_probe *pr = ss->probe;
	if (pr == NULL || pr->step == NULL)
		return;
	if (step == RELAY_OUTBOUND_STEP_TLS) {
		pr->res.tls_tried = true;
		pr->res.tls = ss->tres;
	}
	pr->step(pr->arg, step, &pr->res);
}

/* The connection is gone (on_closed): report to a job still attached or
 * to the probe, free the session, and let the job go on. */
static void
sess_end(struct out_sess *ss)
{
	if (ss->done)
		return;
	ss->done = true;
	cache_unlink(ss);
	struct dest_job *j = sess_report(ss);
	struct relay_outbound_probe *pr = ss->probe;
	if (pr != NULL) {
		probe_report(pr, ss);
		pr->ss = NULL;
	}
	sess_free(ss);
	if (pr != NULL) {
		pr->done(pr->arg, &pr->res);
		free(pr);
	}
	if (j != NULL)
		deliver__dest_next(j);
}

static bool
sess_flush(struct out_sess *ss)
{
	size_t len;
	const uint8_t *p = smtp_client_output(ss->smtp, &len);
	if (p == NULL || len == 0)
		return true;
	int r = relay_conn_write(ss->conn, p, len);
	smtp_client_output_consume(ss->smtp, len);
	return r == RELAY_CONN_OK;
}

static uint64_t
sess_timeout_ms(const struct out_sess *ss)
{
	const struct relay_config *cfg = ss->ctx->cfg;
	switch (smtp_client_state(ss->smtp)) {
	case SMTP_CLIENT_BANNER:
	case SMTP_CLIENT_EHLO:
	case SMTP_CLIENT_HELO:
		return cfg->smtp_helo_timeout_ms;
	case SMTP_CLIENT_STARTTLS:
	case SMTP_CLIENT_TLS:
		return cfg->smtp_starttls_timeout_ms;
	case SMTP_CLIENT_READY:
	case SMTP_CLIENT_RSET:
		return cfg->smtp_mail_timeout_ms;
	case SMTP_CLIENT_ENVELOPE:
		return cfg->smtp_rcpt_timeout_ms;
	case SMTP_CLIENT_BODY:
		return cfg->smtp_data_xfer_timeout_ms;
	case SMTP_CLIENT_DOT:
		return cfg->smtp_data_done_timeout_ms;
	case SMTP_CLIENT_QUIT:
	case SMTP_CLIENT_DONE:
		return cfg->smtp_quit_timeout_ms;
	}
	return cfg->smtp_helo_timeout_ms;
}

static void
sess_abort(struct out_sess *ss, const char *dsn, enum relay_fail_class class,
    const char *why)
{
	ss->abort_class = class;
	rc_ignore(smtp_client_abort(ss->smtp, dsn, why));
	sess_pump(ss);
}

/* Stream content until the connection's queue is full or the body ends. */
static void
sess_send_body(struct out_sess *ss)
{
	const struct msg_job *m = ss->j->m;
	while (ss->body_off < m->content_len) {
		if (relay_conn_pending(ss->conn) >= RELAY_CONN_LOW_WATER) {
			ss->body_wait_drain = true;
			return;
		}
		size_t n = m->content_len - ss->body_off;
		if (n > BODY_CHUNK)
			n = BODY_CHUNK;
		int r =
		    smtp_client_body(ss->smtp, m->content + ss->body_off, n);
		if (r == SMTP_ERR_FULL) {
			if (!sess_flush(ss))
				goto io_error;
			r = smtp_client_body(ss->smtp,
			    m->content + ss->body_off, n);
		}
		if (r == SMTP_ERR_STATE)
			return; /* the message failed meanwhile; events follow */
		if (r != 0)
			goto io_error;
		ss->body_off += n;
		if (!sess_flush(ss))
			goto io_error;
	}
	ss->body_wait_drain = false;
	if (smtp_client_body_end(ss->smtp) == SMTP_ERR_FULL) {
		if (!sess_flush(ss) || smtp_client_body_end(ss->smtp) != 0)
			goto io_error;
	}
	if (!sess_flush(ss))
		goto io_error;
	return;
io_error:
	ss->body_wait_drain = false;
	sess_abort(ss, "4.4.2", RELAY_FAIL_CLASS_CONNECT,
	    "write error while sending the message");
}

static void
sess_start_tls(struct out_sess *ss)
{
	SSL *ssl = NULL;
	/* Under an MTA-STS enforce policy the MX certificate is checked
	 * against mta_sts_ca_file (RFC 8461 4.2), not tls_ca_file; the
	 * store's generation tells a reload's new one apart. */
	struct tlsa_ctx *tc =
	    ss->sts == RELAY_STS_USE_ENFORCE && ss->ctx->tlsa_sts != NULL
	    ? ss->ctx->tlsa_sts
	    : ss->ctx->tlsa;
	ss->sts_gen = ss->ctx->tlsa_sts_gen;
	int r = tlsa_ssl_new(tc, sess_verdict(ss), &ssl);
	if (r != 0) {
		sess_abort(ss, "4.7.5", RELAY_FAIL_CLASS_TLS_HANDSHAKE,
		    "cannot prepare TLS");
		return;
	}
	if (relay_conn_start_tls(ss->conn, ssl) != RELAY_CONN_OK)
		sess_abort(ss, "4.7.5", RELAY_FAIL_CLASS_TLS_HANDSHAKE,
		    "cannot start TLS");
}

static void
sess_pump(struct out_sess *ss)
{
	while (!ss->done) {
		struct smtp_client_event ev;
		if (smtp_client_next(ss->smtp, &ev) != 0) {
			rc_ignore(smtp_client_abort(ss->smtp, "4.3.0",
			    "local error"));
			continue;
		}
		switch (ev.type) {
		case SMTP_CLIENT_EV_NONE:
			if (!sess_flush(ss)) {
				rc_ignore(smtp_client_abort(ss->smtp, "4.4.2",
				    "write error"));
				continue;
			}
			relay_conn_set_timeout(ss->conn, sess_timeout_ms(ss));
			return;
		case SMTP_CLIENT_EV_STARTTLS:
			probe_step(ss, RELAY_OUTBOUND_STEP_STARTTLS);
			(void)sess_flush(ss);
			relay_conn_set_timeout(ss->conn, sess_timeout_ms(ss));
			sess_start_tls(ss);
			return;
		case SMTP_CLIENT_EV_READY:
			if (ss->parked)
				return; /* idle in the cache */
			if (ss->probe != NULL) {
				/* Ready for MAIL under the verdict: that is the
				 * probe's answer. It never goes further than this. */
				ss->probe->res.ready = true;
				ss->probe->res.encrypted =
				    smtp_client_is_tls(ss->smtp);
			} else if (ss->j != NULL) {
				/* The message is done and the server is ready for
				 * more: report, then keep the connection for the next
				 * message with the same key, or say QUIT. */
				bool keep = sess_cacheable(ss);
				struct dest_job *j = sess_report(ss);
				/* The oldest job waiting for a greeting
				 * elsewhere comes before the cache. */
				struct dest_job *w =
				    keep ? greet_take(ss) : NULL;
				bool parked =
				    keep && w == NULL && sess_park(ss);
				deliver__dest_next(j);
				if (w != NULL) {
					if (!deliver__sess_reuse(ss, w))
						deliver__dest_next(w);
					return;
				}
				if (parked)
					return;
			}
			if (smtp_client_quit(ss->smtp) != 0)
				rc_ignore(smtp_client_abort(ss->smtp, "4.3.0",
				    "cannot quit"));
			break;
		case SMTP_CLIENT_EV_RCPT:
			if (ss->j != NULL && ev.rcpt_index < ss->j->nr) {
				ss->rres[ev.rcpt_index] = *ev.result;
				ss->rseen[ev.rcpt_index] = true;
				/* The server (or its advertised capabilities) decided
				 * this recipient: the attempt reached the transaction. */
				if ((ev.result->reason == SMTP_REASON_REPLY &&
				        (ev.result->stage == SMTP_STAGE_MAIL ||
				            ev.result->stage ==
				                SMTP_STAGE_RCPT)) ||
				    ev.result->reason ==
				        SMTP_REASON_SMTPUTF8_NOT_OFFERED ||
				    ev.result->reason ==
				        SMTP_REASON_SIZE_EXCEEDED)
					ss->any_txn_reply = true;
			}
			break;
		case SMTP_CLIENT_EV_SEND_BODY:
			relay_conn_set_timeout(ss->conn, sess_timeout_ms(ss));
			if (ss->j == NULL) {
				rc_ignore(smtp_client_abort(ss->smtp, "4.3.0",
				    "no message"));
				break;
			}
			sess_send_body(ss);
			if (ss->body_wait_drain)
				return;
			break;
		case SMTP_CLIENT_EV_MESSAGE:
			ss->mres = *ev.result;
			ss->mseen = true;
			if (ev.result->reason == SMTP_REASON_REPLY &&
			    ev.result->stage >= SMTP_STAGE_MAIL)
				ss->any_txn_reply = true;
			break;
		case SMTP_CLIENT_EV_DONE:
			/* Without a message no MESSAGE event carries the failure
			 * of a probe: the session's result does. */
			if (ss->probe != NULL && !ss->probe->res.ready &&
			    !ss->mseen && ev.result != NULL) {
				ss->mres = *ev.result;
				ss->mseen = true;
			}
			(void)sess_flush(ss);
			relay_conn_close(ss->conn);
			/* sess_end runs from on_closed. */
			return;
		}
	}
}

static void
sess_on_connected(struct relay_conn *c, int status, void *arg)
{
	struct out_sess *ss = arg;
	if (status < 0) {
		ss->connect_failed = true;
		relay_copy(ss->connect_err, sizeof(ss->connect_err),
		    uv_strerror(status));
		if (relay_conn_bind_failed(c)) {
			struct relay_log_line l;
			ss->bind_failed = true;
			/* Said once per attempt at warning level: it is the
			 * local configuration, and every attempt from this
			 * source fails the same way until it is fixed. */
			if (relay_log_begin(&l, RELAY_LOG_WARNING,
			        "smtp-bind")) {
				relay_log_str(&l, "status", "failed");
				relay_log_str(&l, "source", ss->source);
				relay_log_strf(&l, "relay", "%s[%s]:%u",
				    ss->host, ss->addr, (unsigned)ss->port);
				relay_log_str(&l, "why", ss->connect_err);
				relay_log_end(&l);
			}
		}
		relay_conn_close(c);
		return;
	}
	if (ss->probe != NULL)
		ss->probe->res.connected = true;
	struct sockaddr_storage la;
	if (relay_conn_local(c, &la) == 0 &&
	    inet_ntop(la.ss_family,
	        la.ss_family == AF_INET6
	            ? (const void *)&((struct sockaddr_in6 *)&la)->sin6_addr
	            : (const void *)&((struct sockaddr_in *)&la)->sin_addr,
	        ss->local, sizeof(ss->local)) == NULL)
		ss->local[0] = '\0';
	probe_step(ss, RELAY_OUTBOUND_STEP_CONNECTED);
	sess_pump(ss);
}

static void
sess_on_data(struct relay_conn *c, const uint8_t *p, size_t len, void *arg)
{
	struct out_sess *ss = arg;
	(void)c;
	if (smtp_client_feed(ss->smtp, p, len) != 0) {
		/* Over the input ceiling: the machine failed the session. */
	}
	sess_pump(ss);
}

static void
sess_fill_tls_info(struct dest_job *j, const struct tlsa_result *r)
{
	struct attempt_info *in = &j->info;
	/* MTA-STS shows as the verdict: `verified` under an enforce policy
	 * is sts-enforce; any TLS under a testing policy is sts-testing. */
	relay_copy(in->tls, sizeof(in->tls),
	    relay_class_tls_word(j->sts_host, r));
	relay_copy(in->trust, sizeof(in->trust), tlsa_trust_name(r->trust));
	in->depth = r->depth;
	relay_copy(in->matched, sizeof(in->matched), r->matched);
	if (r->have_spki) {
		for (size_t i = 0; i < 32; i++)
			snprintf(in->spki + 2 * i, 3, "%02x",
			    r->spki_sha256[i]);
	}
	char names[256];
	relay_fmt(names, sizeof(names), "%s%s%s", r->subject,
	    r->dns_names[0] ? " san=" : "", r->dns_names);
	relay_copy(in->names, sizeof(in->names), names);
}

/*
 * MTA-STS after a handshake that satisfied its verdict (handshake), or
 * when a parked connection is reused. Enforce (RFC 8461 4.2): the
 * handshake was PKIX-verified for the MX host name under mta_sts_ca_file,
 * remembered for RFC 8689 4.2.1 (at the handshake only: a reuse never
 * moves it to another domain). Testing (RFC 8461 5): the chain is checked
 * the same way after the fact, and a failure only recorded
 * (sess_sts_testing()); the session goes on.
 */
static void
sess_sts_tls(struct out_sess *ss, const struct dest_job *j, SSL *ssl,
    bool handshake)
{
	if (handshake && ss->sts == RELAY_STS_USE_ENFORCE &&
	    ss->tres.auth == TLSA_AUTH_VERIFIED) {
		ss->sts_enforced = true;
		relay_copy(ss->sts_domain, sizeof(ss->sts_domain), j->domain);
		return;
	}
	if (ss->sts != RELAY_STS_USE_TESTING || ss->sts_cert_checked ||
	    ssl == NULL)
		return;
	/* Once per connection: a reuse shows the same certificate. */
	ss->sts_cert_checked = true;
	struct tlsa_ctx *tc =
	    ss->ctx->tlsa_sts != NULL ? ss->ctx->tlsa_sts : ss->ctx->tlsa;
	enum tlsa_failure f = TLSA_FAIL_NONE;
	int r = tlsa_ssl_pkix_check(tc, ssl, ss->host, &ss->sts_x509_err, &f);
	if (r != 0) {
		/* Only a report is at stake: say so, count nothing. */
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_WARNING, "mta-sts-testing")) {
			relay_log_str(&l, "id", j->m->id);
			relay_log_str(&l, "domain", j->domain);
			relay_log_str(&l, "mx", ss->host);
			relay_log_str(&l, "why", tlsa_strerror(r));
			relay_log_str(&l, "effect",
			    "certificate not checked for the report");
			relay_log_end(&l);
		}
		return;
	}
	if (f != TLSA_FAIL_NONE)
		ss->sts_cert_fail = RELAY_FAIL_CLASS_STS_CERTIFICATE;
}

static void
sess_on_tls(struct relay_conn *c, int status, void *arg)
{
	struct out_sess *ss = arg;
	struct dest_job *j = ss->j;
	const struct tlsa_verdict *v = sess_verdict(ss);
	if (tlsa_ssl_result(relay_conn_ssl(c), v, status == RELAY_CONN_OK,
	        &ss->tres) != 0) {
		memset(&ss->tres, 0, sizeof(ss->tres));
		ss->tres.ok = false;
		ss->tres.depth = -1; /* no authority, not "the leaf matched" */
		relay_copy(ss->tres.why, sizeof(ss->tres.why),
		    "TLS result unavailable");
		relay_copy(ss->tres.status, sizeof(ss->tres.status), "4.7.5");
	}
	if (j != NULL)
		sess_fill_tls_info(j, &ss->tres);
	if (j != NULL && status == RELAY_CONN_OK && ss->tres.ok)
		sess_sts_tls(ss, j, relay_conn_ssl(c), true);
	relay_metrics_tls_handshake(ss->ctx->metrics,
	    ss->tres.ok && status == RELAY_CONN_OK
	        ? RELAY_METRICS_HANDSHAKE_OK
	        : RELAY_METRICS_HANDSHAKE_FAILED);
	struct relay_log_line l;
	if (relay_log_begin(&l, ss->tres.ok ? RELAY_LOG_DEBUG : RELAY_LOG_INFO,
	        "tls")) {
		char buf[1024];
		if (j != NULL)
			relay_log_str(&l, "id", j->m->id);
		relay_log_strf(&l, "relay", "%s[%s]:%u", ss->host, ss->addr,
		    (unsigned)ss->port);
		if (tlsa_result_format(&ss->tres, buf, sizeof(buf)) == 0 ||
		    buf[0])
			relay_log_str(&l, "result", buf);
		relay_log_end(&l);
	}
	if (!ss->tres.ok || status != RELAY_CONN_OK) {
		/* RFC 7672 2.2 (C19, C21) and 3.2 (C51): never continue on a
		 * session whose authentication or encryption failed. */
		ss->tls_failed = true;
		if (ss->tres.ok) {
			ss->tres.ok = false;
			relay_copy(ss->tres.status, sizeof(ss->tres.status),
			    "4.7.5");
			relay_copy(ss->tres.why, sizeof(ss->tres.why),
			    "TLS handshake failed");
		}
		probe_step(ss, RELAY_OUTBOUND_STEP_TLS);
		sess_abort(ss, ss->tres.status[0] ? ss->tres.status : "4.7.5",
		    relay_class_tls(v, &ss->tres), ss->tres.why);
		return;
	}
	ss->tls_ok = true;
	probe_step(ss, RELAY_OUTBOUND_STEP_TLS);
	if (smtp_client_tls_started(ss->smtp) != 0) {
		sess_abort(ss, "4.7.5", RELAY_FAIL_CLASS_TLS_HANDSHAKE,
		    "TLS state error");
		return;
	}
	sess_pump(ss);
}

static void
sess_on_error(struct relay_conn *c, int err, void *arg)
{
	struct out_sess *ss = arg;
	(void)c;
	if (ss->done)
		return;
	if (ss->parked && err == RELAY_CONN_TIMEOUT) {
		/* Idle for connection_cache_time: leave politely. */
		cache_unlink(ss);
		relay_conn_set_timeout(ss->conn,
		    ss->ctx->cfg->smtp_quit_timeout_ms);
		if (smtp_client_quit(ss->smtp) == 0) {
			sess_pump(ss);
			return;
		}
	}
	cache_unlink(ss);
	if (sess_working(ss) &&
	    smtp_client_state(ss->smtp) == SMTP_CLIENT_TLS) {
		/* The server said 220 to STARTTLS, then reset, closed or
		 * stalled during the handshake: that is a TLS failure (class
		 * tls-handshake, 4.7.5), whatever the socket says (RFC 7672 2.2:
		 * next MX or defer, never cleartext). */
		char e[256];
		relay_metrics_tls_handshake(ss->ctx->metrics,
		    RELAY_METRICS_HANDSHAKE_FAILED);
		memset(&ss->tres, 0, sizeof(ss->tres));
		ss->tres.depth = -1;
		ss->tls_failed = true;
		relay_copy(ss->tres.status, sizeof(ss->tres.status), "4.7.5");
		relay_fmt(ss->tres.why, sizeof(ss->tres.why),
		    "TLS handshake %s",
		    err == RELAY_CONN_TIMEOUT ? "timed out"
		        : err == RELAY_CONN_EOF
		        ? "ended by the server"
		        : relay_conn_tls_errstr(c, e, sizeof(e)));
		sess_abort(ss, "4.7.5", RELAY_FAIL_CLASS_TLS_HANDSHAKE,
		    ss->tres.why);
		if (smtp_client_state(ss->smtp) == SMTP_CLIENT_DONE)
			relay_conn_close(c);
		return;
	}
	if (err == RELAY_CONN_EOF) {
		rc_ignore(smtp_client_eof(ss->smtp));
		sess_pump(ss);
	} else if (err == RELAY_CONN_TIMEOUT) {
		char why[96];
		relay_fmt(why, sizeof(why), "timeout in state %s",
		    smtp_client_state_name(smtp_client_state(ss->smtp)));
		sess_abort(ss, "4.4.2", RELAY_FAIL_CLASS_CONNECT, why);
	} else if (err == RELAY_CONN_TLS) {
		char e[256], why[320];
		relay_fmt(why, sizeof(why),
		    "TLS failure after the handshake: %s",
		    relay_conn_tls_errstr(c, e, sizeof(e)));
		sess_abort(ss, "4.4.2", RELAY_FAIL_CLASS_TLS_HANDSHAKE, why);
	} else {
		sess_abort(ss, "4.4.2", RELAY_FAIL_CLASS_CONNECT,
		    relay_conn_strerror(err));
	}
	/* The machine is DONE now or soon; make sure the socket goes. */
	if (smtp_client_state(ss->smtp) == SMTP_CLIENT_DONE)
		relay_conn_close(c);
}

static void
sess_on_drain(struct relay_conn *c, void *arg)
{
	struct out_sess *ss = arg;
	(void)c;
	if (!ss->body_wait_drain || ss->done)
		return;
	sess_send_body(ss);
	if (!ss->body_wait_drain)
		sess_pump(ss);
}

static void
sess_on_closed(struct relay_conn *c, void *arg)
{
	struct out_sess *ss = arg;
	(void)c;
	if (!ss->connect_failed && !ss->mseen &&
	    (ss->j != NULL || (ss->probe != NULL && !ss->probe->res.ready))) {
		/* Closed under the machine's feet (abort at shutdown, a
		 * probe's deadline): make sure every recipient, or the probe,
		 * has an outcome. */
		rc_ignore(smtp_client_eof(ss->smtp));
		struct smtp_client_event ev;
		for (int guard = 0; guard < 10000; guard++) {
			if (smtp_client_next(ss->smtp, &ev) != 0 ||
			    ev.type == SMTP_CLIENT_EV_NONE)
				break;
			if (ev.type == SMTP_CLIENT_EV_DONE) {
				if (ss->probe != NULL && ev.result != NULL) {
					ss->mres = *ev.result;
					ss->mseen = true;
				}
				break;
			}
			if (ev.type == SMTP_CLIENT_EV_RCPT && ss->j != NULL &&
			    ev.rcpt_index < ss->j->nr) {
				ss->rres[ev.rcpt_index] = *ev.result;
				ss->rseen[ev.rcpt_index] = true;
			} else if (ev.type == SMTP_CLIENT_EV_MESSAGE) {
				ss->mres = *ev.result;
				ss->mseen = true;
			}
		}
	}
	sess_end(ss);
}

static const struct relay_conn_cbs sess_cbs = {
	.on_connected = sess_on_connected,
	.on_data = sess_on_data,
	.on_tls = sess_on_tls,
	.on_error = sess_on_error,
	.on_drain = sess_on_drain,
	.on_closed = sess_on_closed,
};

/* May this session serve a later message? Only a TLS session that
 * satisfied its verdict, or a cleartext one made for a `none` policy
 * entry, is worth keeping, and only while its key can be computed. The key
 * holds the level and the channel, so the session only ever serves a
 * destination that asks for exactly this (a `none` session never carries
 * mail that would have had TLS). Sets ss->key. */
static bool
sess_cacheable(struct out_sess *ss)
{
	const struct dest_job *j = ss->j;
	if (j == NULL || ss->ctx->cfg->connection_cache_time_ms == 0 ||
	    ss->s->stopping)
		return false;
	if (smtp_client_state(ss->smtp) != SMTP_CLIENT_READY)
		return false;
	enum tlsa_channel ch;
	if (ss->cleartext_policy)
		ch = TLSA_CHANNEL_CLEARTEXT_POLICY;
	else if (ss->tls_ok)
		ch = TLSA_CHANNEL_TLS;
	else
		return false; /* `may` without STARTTLS: the next message tries TLS anew */
	if (ch != TLSA_CHANNEL_TLS && j->verdict.kind != TLSA_VERDICT_MAY)
		return false; /* cannot happen (TLS was required); never cache it */
	return tlsa_verdict_cache_key(&j->verdict, ch, ss->key) == 0;
}

static bool
sess_park(struct out_sess *ss)
{
	struct relay_sched *s = ss->s;
	if (s->ncache >= SCHED_CACHE_MAX) {
		/* Make room: the oldest idle connection says QUIT. */
		struct out_sess *old = s->cache;
		while (old != NULL && old->cnext != NULL)
			old = old->cnext;
		if (old == NULL)
			return false;
		cache_unlink(old);
		if (smtp_client_quit(old->smtp) == 0)
			sess_pump(old);
		else
			relay_conn_close(old->conn);
	}
	ss->parked = true;
	ss->cnext = s->cache;
	ss->cpprev = &s->cache;
	if (s->cache != NULL)
		s->cache->cpprev = &ss->cnext;
	s->cache = ss;
	s->ncache++;
	relay_conn_set_timeout(ss->conn,
	    ss->ctx->cfg->connection_cache_time_ms);
	return true;
}

/* RFC 8689 4.2.1: a parked connection carries a REQUIRETLS message for
 * domain only when it was authenticated by DANE, or by PKIX under an
 * MTA-STS enforce policy of that very domain (RFC 8461 4.2), and its EHLO
 * after STARTTLS offered REQUIRETLS. The key already fixes the verdict;
 * this says so explicitly, so the rule does not hang on how keys are
 * made. */
static bool
sess_serves_requiretls(const struct out_sess *ss, const char *domain)
{
	const struct smtp_caps *caps = smtp_client_caps(ss->smtp);
	if (!ss->tls_ok || ss->cleartext_policy ||
	    !smtp_client_is_tls(ss->smtp) || caps == NULL ||
	    !caps->requiretls || !ss->tres.ok)
		return false;
	if (ss->tres.auth == TLSA_AUTH_DANE_EE ||
	    ss->tres.auth == TLSA_AUTH_DANE_TA)
		return true;
	return ss->sts_enforced && ss->tres.auth == TLSA_AUTH_VERIFIED &&
	    strcmp(ss->sts_domain, domain) == 0;
}

/* Whether a connection that is up may carry another message (from the
 * cache, or by taking over a job still waiting for its own greeting). */
static bool
sess_may_serve(const struct relay_sched *s, const struct out_sess *ss,
    bool requiretls, const char *domain)
{
	/* Verified against an mta_sts_ca_file a reload replaced: the trust
	 * it was made under is gone (RFC 8461 4.2). */
	if (ss->sts_enforced && ss->sts_gen != s->ctx->tlsa_sts_gen)
		return false;
	return !requiretls || sess_serves_requiretls(ss, domain);
}

struct out_sess *
deliver__cache_take(struct relay_sched *s, const char *host, const char *addr,
    uint16_t port, const uint8_t key[32], bool requiretls, const char *domain)
{
	for (struct out_sess *ss = s->cache; ss != NULL; ss = ss->cnext) {
		if (!sess_may_serve(s, ss, requiretls, domain))
			continue;
		if (strcmp(ss->host, host) == 0 &&
		    strcmp(ss->addr, addr) == 0 && ss->port == port &&
		    memcmp(ss->key, key, 32) == 0) {
			cache_unlink(ss);
			return ss;
		}
	}
	return NULL;
}

/* Close every idle connection (shutdown). */
void
deliver__cache_flush(struct relay_sched *s)
{
	while (s->cache != NULL) {
		struct out_sess *ss = s->cache;
		cache_unlink(ss);
		relay_conn_set_timeout(ss->conn,
		    ss->ctx->cfg->smtp_quit_timeout_ms);
		if (smtp_client_quit(ss->smtp) == 0)
			sess_pump(ss);
		else
			relay_conn_close(ss->conn);
	}
}


/* Put a parked connection to work for job j. Returns true when the job now
 * waits for this session; false when the envelope could not be started
 * (its recipients are then decided and the connection parked again). */
bool
deliver__sess_reuse(struct out_sess *ss, struct dest_job *j)
{
	ss->j = j;
	ss->sts = j->sts_host;
	ss->reported = false;
	ss->mseen = false;
	ss->any_txn_reply = false;
	ss->body_off = 0;
	ss->body_wait_drain = false;
	ss->abort_class = RELAY_FAIL_CLASS_NONE;
	ss->uses++;
	relay_copy(j->info.addr, sizeof(j->info.addr), ss->addr);
	j->info.port = ss->port;
	j->info.reply[0] = '\0';
	j->info.conn_use = ss->uses;
	if (ss->tls_ok) {
		sess_fill_tls_info(j, &ss->tres);
		/* A connection made without a testing policy (same verdict
		 * key) is checked now, for this one. */
		sess_sts_tls(ss, j, relay_conn_ssl(ss->conn), false);
	}
	if (!sess_attach_envelope(ss, j)) {
		ss->j = NULL;
		ss->reported = true;
		(void)sess_park(ss);
		return false;
	}
	j->sess = ss;
	relay_metrics_connection_reuse(ss->ctx->metrics);
	relay_conn_set_timeout(ss->conn, sess_timeout_ms(ss));
	sess_pump(ss);
	return true;
}

/* Size the per-recipient arrays for job j and queue its envelope on the
 * session's machine. On failure the job's recipients are decided. */
static bool
sess_attach_envelope(struct out_sess *ss, struct dest_job *j)
{
	const struct msg_job *m = j->m;
	free(ss->rcpts);
	free(ss->rres);
	free(ss->rseen);
	ss->rcpts = calloc(j->nr, sizeof(*ss->rcpts));
	ss->rres = calloc(j->nr, sizeof(*ss->rres));
	ss->rseen = calloc(j->nr, sizeof(*ss->rseen));
	if (ss->rcpts == NULL || ss->rres == NULL || ss->rseen == NULL) {
		deliver__dest_decide_all(j, false, "4.3.0",
		    RELAY_FAIL_CLASS_LOCAL, "out of memory");
		return false;
	}
	for (size_t k = 0; k < j->nr; k++) {
		const struct relay_queue_rcpt *r = &m->env->rcpt[j->ri[k]];
		ss->rcpts[k].addr = r->address;
		ss->rcpts[k].notify = r->notify;
		ss->rcpts[k].orcpt = r->orcpt[0] ? r->orcpt : NULL;
	}
	struct smtp_envelope env = {
		.sender = m->env->sender,
		.rcpts = ss->rcpts,
		.nrcpts = j->nr,
		.size = m->content_len,
		/* RFC 6152 3: 8-bit content is declared even when the client
		 * did not (content_8bit was found at receipt). */
		.body = m->env->body == RELAY_QUEUE_BODY_BINARYMIME
		    ? SMTP_BODY_BINARYMIME
		    : m->env->body == RELAY_QUEUE_BODY_8BITMIME ||
		        m->env->content_8bit
		    ? SMTP_BODY_8BITMIME
		    : SMTP_BODY_NONE,
		.ret = m->env->ret == RELAY_QUEUE_RET_FULL ? SMTP_RET_FULL
		    : m->env->ret == RELAY_QUEUE_RET_HDRS  ? SMTP_RET_HDRS
		                                           : SMTP_RET_NONE,
		.envid = m->env->envid[0] ? m->env->envid : NULL,
		.smtputf8 = m->env->smtputf8,
		/* RFC 8689 4.2.1: the machine sends it only over TLS to a
		 * server that offered it, else fails the message (5.7.30). */
		.requiretls = m->env->requiretls,
	};
	int r = smtp_client_start_message(ss->smtp, &env);
	if (r != 0) {
		/* An address the engine refuses to send: permanent for the
		 * recipients concerned. */
		char why[REASON_MAX];
		relay_fmt(why, sizeof(why), "cannot send envelope: %s",
		    smtp_strerror(r));
		deliver__dest_decide_all(j, true, "5.1.3",
		    RELAY_FAIL_CLASS_ADDRESS, why);
		return false;
	}
	return true;
}

/* A session to host at address a (not connected yet), its machine in the
 * given TLS mode. NULL when out of memory. */
static struct out_sess *
sess_new(const struct relay_deliver_ctx *ctx, const char *host,
    const struct relay_dns_addr *a, uint16_t port, enum smtp_tls_mode mode)
{
	struct out_sess *ss = calloc(1, sizeof(*ss));
	if (ss == NULL)
		return NULL;
	ss->ctx = ctx;
	ss->uses = 1;
	ss->cleartext_policy = mode == SMTP_TLS_NONE;
	ss->port = port;
	relay_copy(ss->host, sizeof(ss->host), host);
	if (inet_ntop(a->family, a->bytes, ss->addr, sizeof(ss->addr)) == NULL)
		relay_copy(ss->addr, sizeof(ss->addr), "?");
	struct smtp_client_config cc = {
		.helo_name = ctx->cfg->smtp_helo_name,
		.tls = mode,
		.allow_helo = mode != SMTP_TLS_REQUIRED,
	};
	ss->smtp = smtp_client_new(&cc);
	if (ss->smtp == NULL) {
		free(ss);
		return NULL;
	}
	return ss;
}

/* Start the TCP connection of ss to a; sess_cbs take over. Returns
 * RELAY_CONN_OK or relay_conn_connect()'s error. */
static int
sess_connect(struct out_sess *ss, const struct relay_dns_addr *a)
{
	const struct relay_config *cfg = ss->ctx->cfg;
	struct sockaddr_storage ss_addr, src_addr;
	const char *src = a->family == AF_INET6 ? cfg->smtp_bind_address6
	                                        : cfg->smtp_bind_address;
	memset(&ss_addr, 0, sizeof(ss_addr));
	memset(&src_addr, 0, sizeof(src_addr));
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss_addr;
		struct sockaddr_in6 *b6 = (struct sockaddr_in6 *)&src_addr;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(ss->port);
		memcpy(&s6->sin6_addr, a->bytes, 16);
		b6->sin6_family = AF_INET6;
		if (src[0] != '\0' &&
		    inet_pton(AF_INET6, src, &b6->sin6_addr) != 1)
			return RELAY_CONN_IO; /* relay_config checked it */
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss_addr;
		struct sockaddr_in *b4 = (struct sockaddr_in *)&src_addr;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(ss->port);
		memcpy(&s4->sin_addr, a->bytes, 4);
		b4->sin_family = AF_INET;
		if (src[0] != '\0' &&
		    inet_pton(AF_INET, src, &b4->sin_addr) != 1)
			return RELAY_CONN_IO; /* relay_config checked it */
	}
	relay_copy(ss->source, sizeof(ss->source), src);
	return relay_conn_connect(ss->ctx->loop, (struct sockaddr *)&ss_addr,
	    src[0] != '\0' ? (struct sockaddr *)&src_addr : NULL,
	    cfg->smtp_connect_timeout_ms, &sess_cbs, ss, &ss->conn);
}

bool
deliver__sess_start(struct dest_job *j, const struct relay_dns_addr *a,
    enum smtp_tls_mode mode)
{
	struct msg_job *m = j->m;
	struct out_sess *ss = sess_new(m->s->ctx, j->info.mx, a, j->port, mode);
	if (ss == NULL)
		return false;
	ss->s = m->s;
	ss->j = j;
	ss->sts = j->sts_host;
	j->info.conn_use = 1;
	if (!sess_attach_envelope(ss, j))
		goto fail;
	relay_copy(j->info.addr, sizeof(j->info.addr), ss->addr);
	j->info.port = ss->port;
	j->info.reply[0] = '\0';
	j->sess = ss;
	if (sess_connect(ss, a) != RELAY_CONN_OK) {
		j->sess = NULL;
		deliver__fail_set(&j->fail, false, "4.4.1",
		    RELAY_FAIL_CLASS_CONNECT, "cannot create socket");
		goto fail;
	}
	/* Until the greeting, a ready connection with the same key may take
	 * the job over (greet_take()). The key is the one the session will be
	 * parked under. */
	if (m->s->ctx->cfg->connection_cache_time_ms > 0 &&
	    tlsa_verdict_cache_key(&j->verdict,
	        mode == SMTP_TLS_NONE ? TLSA_CHANNEL_CLEARTEXT_POLICY
	                              : TLSA_CHANNEL_TLS,
	        ss->key) == 0)
		greet_link(ss);
	return true;
fail:
	sess_free(ss);
	return false;
}

/* ------------------------------------------------------------- probe */

int
relay_outbound_probe(const struct relay_deliver_ctx *ctx,
    const struct relay_outbound_target *target,
    void (*done)(void *arg, const struct relay_outbound_result *res), void *arg,
    struct relay_outbound_probe **out)
{
	struct relay_outbound_probe *pr = calloc(1, sizeof(*pr));
	if (pr == NULL)
		return RELAY_CONN_NOMEM;
	struct out_sess *ss =
	    sess_new(ctx, target->host, target->addr, target->port,
	        deliver__tls_mode(target->verdict, target->cleartext));
	if (ss == NULL) {
		free(pr);
		return RELAY_CONN_NOMEM;
	}
	pr->ss = ss;
	pr->verdict = target->verdict;
	pr->step = target->step;
	pr->done = done;
	pr->arg = arg;
	/* No envelope is ever attached: the machine stops at READY. */
	ss->probe = pr;
	ss->sts = target->sts;
	int r = sess_connect(ss, target->addr);
	if (r != RELAY_CONN_OK) {
		sess_free(ss);
		free(pr);
		return r;
	}
	*out = pr;
	return 0;
}

void
relay_outbound_probe_cancel(struct relay_outbound_probe *pr)
{
	if (pr->ss != NULL && pr->ss->conn != NULL)
		relay_conn_abort(pr->ss->conn); /* on_closed reports */
}
