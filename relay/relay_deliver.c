/*
 * relay_deliver: the scheduler and the delivery of queued recipients.
 *
 * Pipeline, per message and destination domain:
 *
 *   scheduler   finds messages with due recipients (relay_queue_foreach),
 *               loads envelope + content, groups the due recipients by
 *               domain (one "destination job" per domain), and runs at most
 *               destination_concurrency_limit jobs per domain at once.
 *   DNS         relay_dns_resolve(): MX, A/AAAA, TLSA with DNSSEC status.
 *   policy      tlsa_policy_destination() and tlsa_policy_decide() for each
 *               MX host in preference order (RFC 7672 2.2.1: preference
 *               before channel security, C27-C29).
 *   session     TCP to each address of the host, smtp/'s client machine,
 *               STARTTLS with an SSL prepared by tlsa_ssl_new(), and after
 *               the handshake tlsa_ssl_result(): only a satisfied verdict
 *               lets the transaction go on (C18-C21, C50, C51, C67).
 *   outcome     per recipient: sent, deferred (backoff), bounced (5xx,
 *               null MX, NXDOMAIN, queue lifetime); one log line each;
 *               envelope persisted with the attempt details; DSNs.
 *
 * A DANE, TLS or DNSSEC failure at one MX host moves on to the next host
 * (C19, C21, C24); when none is left the recipients are deferred with the
 * failure's enhanced status (4.7.5 for DANE/TLSA/DNSSEC) and class. There is
 * no path from a verdict that requires TLS to a cleartext transaction: the
 * smtp/ client runs in TLS REQUIRED mode for every verdict but MAY, and the
 * transaction starts only after tlsa_ssl_result() said ok.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay_conn.h"
#include "relay_dsn.h"
#include "relay_int.h"
#include "relay_log.h"
#include "relay_report.h"
#include "smtp.h"

/* For results that carry no decision here (the machine records the failure
 * itself); gcc does not accept a (void) cast for warn_unused_result. */
static inline void
rc_ignore(int rc)
{
	(void)rc;
}

/* Messages processed at once (each holds its content in memory). */
#define SCHED_MAX_JOBS 256
/* Longest sleep between scans when nothing is due earlier. */
#define SCHED_MAX_SLEEP_MS 60000
/* Addresses tried per MX host, and in total per destination (Postfix's
 * smtp_mx_address_limit is 5). */
#define DEST_ADDRS_PER_HOST 2
#define DEST_ADDRS_TOTAL 5
/* Content is sent in chunks below half the client machine's output
 * ceiling (smtp_client_body contract). */
#define BODY_CHUNK (64u * 1024)
#define SCHED_HASH_BUCKETS 1024

#define CLASS_MAX 32
#define REASON_MAX 512

struct msg_job;
struct dest_job;

/* Result of one recipient in one attempt. */
struct rcpt_out {
	enum relay_queue_rcpt_status status;  /* SENT, DEFERRED or BOUNCED */
	char dsn[16];
	char class[CLASS_MAX];
	char reason[REASON_MAX];
	bool decided;
};

/* What the last failure of a destination job was (for the recipients
 * when no MX is left). */
struct failure {
	bool set;
	bool permanent;
	char dsn[16];
	char class[CLASS_MAX];
	char reason[REASON_MAX];
};

/* Details of the connection attempt that decided, for the log and
 * `queue show`. */
struct attempt_info {
	char mx[RELAY_DNS_HOST_MAX];
	char addr[INET6_ADDRSTRLEN];
	char dnssec_mx[16], dnssec_addr[16], dnssec_tlsa[16];
	char tlsa[160];
	char tls[16];
	char trust[16];
	int depth;
	char spki[65];
	char names[256];
	char matched[64];
	char reply[REASON_MAX];
	unsigned conn_use;   /* 1 for a new connection, n for its n-th message */
};

/*
 * One outbound SMTP connection. While a destination job drives it, j is
 * set. After a message, a connection whose server is ready for more may be
 * parked in the scheduler's connection cache (RFC 5321 4.1.4 allows any
 * number of transactions per session) and later attached to another job
 * whose delivery needs exactly the same thing: same MX host, same address
 * and the same TLS verdict, including its TLSA RRset digest
 * (tlsa_verdict_cache_key), so a reused connection never satisfies a
 * policy it was not authenticated under.
 */
struct out_sess {
	struct relay_daemon *d;
	struct relay_sched *s;
	struct dest_job *j;
	struct out_sess *cnext, **cpprev;   /* in s->cache while parked */
	bool parked;
	bool reported;              /* outcome handed to the job */
	uint8_t key[32];            /* verdict cache key */
	char host[RELAY_DNS_HOST_MAX];
	char addr[INET6_ADDRSTRLEN];
	unsigned uses;              /* messages sent on this connection */
	struct relay_conn *conn;
	struct smtp_client *smtp;
	struct smtp_client_rcpt *rcpts;
	struct smtp_result *rres;   /* per recipient RCPT results */
	bool *rseen;
	struct smtp_result mres;    /* MESSAGE result */
	bool mseen;
	bool any_txn_reply;         /* the server answered MAIL/RCPT/DATA */
	bool tls_ok;
	struct tlsa_result tres;
	bool tls_failed;
	size_t body_off;
	bool body_wait_drain;
	char abort_class[CLASS_MAX];
	bool connect_failed;
	char connect_err[128];
	bool done;
};

struct dest_job {
	struct msg_job *m;
	struct dest_job *next;        /* in m->dests */
	struct dest_job *wait_next;   /* in the domain's wait queue */
	struct dest_slot *slot;
	char domain[RELAY_DNS_HOST_MAX];
	size_t *ri;                   /* recipient indexes into m->env */
	size_t nr;
	struct rcpt_out *out;
	struct relay_dns_req *dns_req;
	struct relay_dns_result *dns;
	enum tlsa_level level;
	struct tlsa_verdict verdict;
	size_t host_i;                /* current host */
	size_t addr_i;                /* next address of the current host */
	size_t addrs_tried;
	struct out_sess *sess;
	struct failure fail;
	struct attempt_info info;
	bool started;
	bool finished;
};

/* Concurrency bookkeeping per destination domain. */
struct dest_slot {
	struct dest_slot *next;
	char domain[RELAY_DNS_HOST_MAX];
	size_t active;
	struct dest_job *wait_head, *wait_tail;
};

struct msg_job {
	struct relay_sched *s;
	struct msg_job *next, **pprev;   /* in s->jobs */
	struct msg_job *hnext;           /* in the id hash */
	char id[RELAY_QUEUE_ID_SIZE];
	struct relay_queue_envelope *env;
	uint8_t *content;
	size_t content_len;
	struct dest_job *dests;
	size_t dests_open;
	uv_work_t work;                  /* content read in the thread pool */
	char path[4096];
	int read_err;
	uint64_t started_us;
};

/* Idle connections kept at most (the oldest is closed first). */
#define SCHED_CACHE_MAX 64

struct relay_sched {
	struct relay_daemon *d;
	struct out_sess *cache;     /* parked connections, newest first */
	size_t ncache;
	uv_timer_t timer;
	uv_timer_t grace;
	struct msg_job *jobs;
	size_t njobs;
	struct msg_job *hash[SCHED_HASH_BUCKETS];
	struct dest_slot *slots;
	bool stopping;
	bool aborting;
	int open_handles;
	void (*done)(struct relay_daemon *d);
	bool done_called;
};

static void dest_next(struct dest_job *j);
static void dest_finish(struct dest_job *j);
static void sched_scan(struct relay_sched *s);
static void sched_timer_cb(uv_timer_t *t);
static void sched_maybe_done(struct relay_sched *s);

/* ------------------------------------------------------------ helpers */

static uint64_t
now_us(void)
{
	return relay_now_us();
}

static void
copy_str(char *dst, size_t size, const char *src)
{
	if (size == 0)
		return;
	if (src == NULL)
		src = "";
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static unsigned
hash_id(const char *id)
{
	unsigned h = 2166136261u;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % SCHED_HASH_BUCKETS;
}

static bool
job_running(const struct relay_sched *s, const char *id)
{
	for (const struct msg_job *m = s->hash[hash_id(id)]; m != NULL; m = m->hnext)
		if (strcmp(m->id, id) == 0)
			return true;
	return false;
}

static const char *
dnssec_word(struct tlsa_lookup l)
{
	if (l.answer == TLSA_ANSWER_ERROR)
		return "error";
	switch (l.dnssec) {
	case TLSA_DNSSEC_SECURE:
		return "secure";
	case TLSA_DNSSEC_INSECURE:
		return "insecure";
	case TLSA_DNSSEC_BOGUS:
		return "bogus";
	case TLSA_DNSSEC_INDETERMINATE:
		return "indeterminate";
	}
	return "?";
}

static enum tlsa_level
tls_level_for(const struct relay_config *cfg, const char *domain, bool *cleartext)
{
	*cleartext = false;
	switch (relay_config_tls_policy(cfg, domain, strlen(domain))) {
	case RELAY_TLS_DANE:
		return TLSA_LEVEL_DANE;
	case RELAY_TLS_DANE_ONLY:
		return TLSA_LEVEL_DANE_ONLY;
	case RELAY_TLS_MAY:
		return TLSA_LEVEL_MAY;
	case RELAY_TLS_ENCRYPT:
		return TLSA_LEVEL_ENCRYPT;
	case RELAY_TLS_VERIFY:
		return TLSA_LEVEL_VERIFY;
	case RELAY_TLS_NONE:
		/* Only an explicit per-destination "none" in tls_policy_file
		 * sends in cleartext; DANE lookups are then skipped. */
		*cleartext = true;
		return TLSA_LEVEL_MAY;
	}
	return TLSA_LEVEL_DANE;
}

static void
fail_set(struct failure *f, bool permanent, const char *dsn, const char *class,
    const char *reason)
{
	f->set = true;
	f->permanent = permanent;
	copy_str(f->dsn, sizeof(f->dsn), dsn);
	copy_str(f->class, sizeof(f->class), class);
	copy_str(f->reason, sizeof(f->reason), reason);
}

static bool
lookup_failed(struct tlsa_lookup l)
{
	return l.answer == TLSA_ANSWER_ERROR || l.dnssec == TLSA_DNSSEC_BOGUS ||
	    l.dnssec == TLSA_DNSSEC_INDETERMINATE;
}

static const char *
failed_class(struct tlsa_lookup l, const char *otherwise)
{
	return l.dnssec == TLSA_DNSSEC_BOGUS ? "dnssec-bogus" : otherwise;
}

/* Failure class (issue 6 names) for a DNS-side DO_NOT_CONNECT: which lookup
 * of the chain failed, and whether DNSSEC said bogus. */
static const char *
class_for_dns(enum tlsa_failure f, const struct relay_dns_result *res,
    const struct relay_dns_host *h)
{
	switch (f) {
	case TLSA_FAIL_DNSSEC_INVALID:
	case TLSA_FAIL_DNS_ERROR:
		if (h != NULL) {
			for (size_t i = 0; i < h->in.n_tlsa; i++)
				if (lookup_failed(h->in.tlsa[i].res) || h->in.tlsa[i].malformed)
					return failed_class(h->in.tlsa[i].res, "tlsa-lookup");
			if (lookup_failed(h->in.addr))
				return failed_class(h->in.addr, "dns-lookup");
		}
		if (res != NULL && lookup_failed(res->dest.mx))
			return failed_class(res->dest.mx, "dns-lookup");
		return f == TLSA_FAIL_DNS_ERROR ? "dns-lookup" : "dnssec-bogus";
	case TLSA_FAIL_HOST_NOT_FOUND:
		return "dns-lookup";
	case TLSA_FAIL_NULL_MX:
		return "null-mx";
	case TLSA_FAIL_TLSA_INVALID:
		return "tlsa-invalid";
	case TLSA_FAIL_DANE_REQUIRED:
		return "dane-required";
	case TLSA_FAIL_STARTTLS_NOT_SUPPORTED:
		return "starttls-missing";
	case TLSA_FAIL_CERT_HOST_MISMATCH:
	case TLSA_FAIL_CERT_EXPIRED:
	case TLSA_FAIL_CERT_NOT_TRUSTED:
	case TLSA_FAIL_VALIDATION:
		return "tls-handshake";
	case TLSA_FAIL_NONE:
		break;
	}
	return "dns-lookup";
}

/* Failure class after the handshake (tlsa_result not ok). */
static const char *
class_for_tls(const struct tlsa_verdict *v, const struct tlsa_result *r)
{
	switch (r->fclass) {
	case TLSA_FAIL_CERT_HOST_MISMATCH:
	case TLSA_FAIL_CERT_NOT_TRUSTED:
	case TLSA_FAIL_CERT_EXPIRED:
		/* Under DANE the certificate failed the TLSA match (for
		 * DANE-TA possibly the name check): RFC 7672 3.2, C51. */
		if (v->kind == TLSA_VERDICT_DANE)
			return "tlsa-mismatch";
		return tlsa_failure_name(r->fclass);
	case TLSA_FAIL_VALIDATION:
		if (v->kind == TLSA_VERDICT_DANE && r->x509_err != X509_V_OK)
			return "tlsa-mismatch";
		return "tls-handshake";
	case TLSA_FAIL_NONE:
	case TLSA_FAIL_STARTTLS_NOT_SUPPORTED:
	case TLSA_FAIL_TLSA_INVALID:
	case TLSA_FAIL_DNSSEC_INVALID:
	case TLSA_FAIL_DANE_REQUIRED:
	case TLSA_FAIL_DNS_ERROR:
	case TLSA_FAIL_HOST_NOT_FOUND:
	case TLSA_FAIL_NULL_MX:
		break;
	}
	return "tls-handshake";
}

static const char *
class_for_smtp(const struct smtp_result *r, const struct out_sess *ss)
{
	switch (r->reason) {
	case SMTP_REASON_REPLY:
		return r->klass == 5 ? "smtp-5xx" : "smtp-4xx";
	case SMTP_REASON_STARTTLS_NOT_OFFERED:
	case SMTP_REASON_STARTTLS_REFUSED:
		return "starttls-missing";
	case SMTP_REASON_EHLO_REFUSED:
		return r->klass == 5 ? "smtp-5xx" : "smtp-4xx";
	case SMTP_REASON_SMTPUTF8_NOT_OFFERED:
		return "smtputf8-missing";
	case SMTP_REASON_SIZE_EXCEEDED:
		return "message-size";
	case SMTP_REASON_PROTOCOL:
		return "smtp-protocol";
	case SMTP_REASON_CONNECTION_LOST:
		return "connect";
	case SMTP_REASON_ABORTED:
		return ss->abort_class[0] ? ss->abort_class : "connect";
	}
	return "smtp-4xx";
}

/* ----------------------------------------------------- outcome recording */

static uint64_t
backoff_us(const struct relay_config *cfg, uint32_t attempts)
{
	uint64_t ms = cfg->retry_min_ms;
	for (uint32_t i = 1; i < attempts && ms < cfg->retry_max_ms; i++)
		ms *= 2;
	if (ms > cfg->retry_max_ms)
		ms = cfg->retry_max_ms;
	if (ms == 0)
		ms = 1000;
	return ms * 1000;
}

static void
rcpt_decide(struct dest_job *j, size_t k, enum relay_queue_rcpt_status st,
    const char *dsn, const char *class, const char *reason)
{
	struct rcpt_out *o = &j->out[k];
	if (o->decided)
		return;
	o->decided = true;
	o->status = st;
	copy_str(o->dsn, sizeof(o->dsn), dsn);
	copy_str(o->class, sizeof(o->class), class);
	copy_str(o->reason, sizeof(o->reason), reason);
}

static void
dest_decide_all(struct dest_job *j, bool permanent, const char *dsn,
    const char *class, const char *reason)
{
	for (size_t k = 0; k < j->nr; k++)
		rcpt_decide(j, k, permanent ? RELAY_QUEUE_RCPT_BOUNCED :
		    RELAY_QUEUE_RCPT_DEFERRED, dsn, class, reason);
}

static int
set_attempt(struct relay_queue_rcpt *r, const struct dest_job *j,
    const struct rcpt_out *o, uint64_t t)
{
	struct relay_queue_attempt *a;
	int e = relay_queue_attempt_add(r, &a);
	if (e != 0)
		return e;
	const struct attempt_info *in = &j->info;
	a->time_us = t;
	e |= relay_queue_set_str(&a->mx_host, in->mx);
	e |= relay_queue_set_str(&a->addr, in->addr);
	e |= relay_queue_set_str(&a->dnssec_mx, in->dnssec_mx);
	e |= relay_queue_set_str(&a->dnssec_addr, in->dnssec_addr);
	e |= relay_queue_set_str(&a->dnssec_tlsa, in->dnssec_tlsa);
	e |= relay_queue_set_str(&a->tlsa, in->tlsa);
	e |= relay_queue_set_str(&a->tls, in->tls);
	e |= relay_queue_set_str(&a->peer_spki, in->spki);
	e |= relay_queue_set_str(&a->peer_names, in->names);
	e |= relay_queue_set_str(&a->matched, in->matched);
	e |= relay_queue_set_str(&a->reply, in->reply);
	e |= relay_queue_set_str(&a->dsn, o->dsn);
	e |= relay_queue_set_str(&a->status, relay_queue_rcpt_status_name(o->status));
	e |= relay_queue_set_str(&a->failure_class, o->class);
	e |= relay_queue_set_str(&a->reason, o->reason);
	return e != 0 ? RELAY_QUEUE_ENOMEM : 0;
}

static void
log_delivery(const struct dest_job *j, const struct relay_queue_rcpt *r,
    const struct rcpt_out *o, uint64_t t)
{
	const struct msg_job *m = j->m;
	const struct attempt_info *in = &j->info;
	struct relay_log_line l;
	if (!relay_log_begin(&l, RELAY_LOG_INFO, "delivery"))
		return;
	relay_log_str(&l, "id", m->id);
	relay_log_addr(&l, "to", r->address);
	if (in->mx[0] != '\0') {
		if (in->addr[0] != '\0')
			relay_log_strf(&l, "relay", "%s[%s]:25", in->mx, in->addr);
		else
			relay_log_str(&l, "relay", in->mx);
	} else {
		relay_log_str(&l, "relay", "none");
	}
	uint64_t arr = m->env->arrival_us;
	relay_log_ms(&l, "delay", t > arr ? (t - arr) / 1000 : 0);
	relay_log_str(&l, "tls", in->tls[0] ? in->tls : "none");
	if (in->trust[0])
		relay_log_str(&l, "trust", in->trust);
	if (in->depth >= 0)
		relay_log_i64(&l, "depth", in->depth);
	if (in->matched[0])
		relay_log_str(&l, "tlsa", in->matched);
	else if (in->tlsa[0])
		relay_log_str(&l, "tlsa_seen", in->tlsa);
	relay_log_str(&l, "dsn", o->dsn);
	relay_log_str(&l, "status", relay_queue_rcpt_status_name(o->status));
	if (o->class[0])
		relay_log_str(&l, "class", o->class);
	relay_log_u64(&l, "attempts", r->attempts);
	if (in->conn_use > 1)
		relay_log_u64(&l, "conn_use", in->conn_use);
	relay_log_str(&l, "why", o->reason);
	relay_log_end(&l);
}

/* ------------------------------------------------------------ sessions */

static void sess_pump(struct out_sess *ss);
static bool sess_cacheable(struct out_sess *ss);
static bool sess_park(struct out_sess *ss);

static const struct smtp_result *
sess_rcpt_result(const struct out_sess *ss, size_t k)
{
	if (ss->rseen[k] && ss->rres[k].klass != 2)
		return &ss->rres[k];
	if (ss->mseen)
		return &ss->mres;
	return ss->rseen[k] ? &ss->rres[k] : NULL;
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

	if (ss->connect_failed) {
		char why[REASON_MAX];
		relay_fmt(why, sizeof(why), "connect to %s[%s]:25: %s", j->info.mx,
		    j->info.addr, ss->connect_err);
		fail_set(&j->fail, false, "4.4.1", "connect", why);
	} else if (!ss->any_txn_reply) {
		/* The session failed before the server said anything about the
		 * transaction (banner, EHLO, STARTTLS, TLS/DANE, connection
		 * lost): another address or MX host may do better (RFC 5321
		 * 5.1, RFC 7672 2.2 C19/C21). */
		const struct smtp_result *r = ss->mseen ? &ss->mres : NULL;
		char why[REASON_MAX];
		if (ss->tls_failed) {
			relay_fmt(why, sizeof(why), "TLS with %s[%s]: %s", j->info.mx,
			    j->info.addr, ss->tres.why);
			fail_set(&j->fail, false, ss->tres.status[0] ? ss->tres.status : "4.7.5",
			    class_for_tls(&j->verdict, &ss->tres), why);
		} else if (r != NULL) {
			relay_fmt(why, sizeof(why), "host %s[%s] said: %s (in reply to %s)",
			    j->info.mx, j->info.addr, r->text, smtp_stage_name(r->stage));
			char st[16];
			fail_set(&j->fail, false, smtp_status_format(&r->status, st, sizeof(st)),
			    class_for_smtp(r, ss), why);
			copy_str(j->info.reply, sizeof(j->info.reply), r->text);
		} else {
			fail_set(&j->fail, false, "4.4.2", "connect", "lost connection");
		}
	} else {
		/* The transaction reached the server: its replies decide each
		 * recipient of this attempt. */
		for (size_t k = 0; k < j->nr; k++) {
			const struct smtp_result *r = sess_rcpt_result(ss, k);
			if (r == NULL) {
				rcpt_decide(j, k, RELAY_QUEUE_RCPT_DEFERRED, "4.4.2",
				    "connect", "lost connection before the recipient was answered");
				continue;
			}
			char why[REASON_MAX];
			relay_fmt(why, sizeof(why), "%s[%s] said: %s (in reply to %s)",
			    j->info.mx, j->info.addr, r->text, smtp_stage_name(r->stage));
			enum relay_queue_rcpt_status st = r->klass == 2 ? RELAY_QUEUE_RCPT_SENT :
			    r->klass == 5 ? RELAY_QUEUE_RCPT_BOUNCED : RELAY_QUEUE_RCPT_DEFERRED;
			char stx[16];
			rcpt_decide(j, k, st, smtp_status_format(&r->status, stx, sizeof(stx)),
			    r->klass == 2 ? "" : class_for_smtp(r, ss), why);
		}
		if (ss->mseen)
			copy_str(j->info.reply, sizeof(j->info.reply), ss->mres.text);
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

/* The connection is gone (on_closed): report to a job still attached,
 * free the session, and let the job go on. */
static void
sess_end(struct out_sess *ss)
{
	if (ss->done)
		return;
	ss->done = true;
	cache_unlink(ss);
	struct dest_job *j = sess_report(ss);
	smtp_client_free(ss->smtp);
	free(ss->rcpts);
	free(ss->rres);
	free(ss->rseen);
	free(ss);
	if (j != NULL)
		dest_next(j);
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
	const struct relay_config *cfg = &ss->d->cfg;
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
sess_abort(struct out_sess *ss, const char *dsn, const char *class, const char *why)
{
	copy_str(ss->abort_class, sizeof(ss->abort_class), class);
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
		int r = smtp_client_body(ss->smtp, m->content + ss->body_off, n);
		if (r == SMTP_ERR_FULL) {
			if (!sess_flush(ss))
				goto io_error;
			r = smtp_client_body(ss->smtp, m->content + ss->body_off, n);
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
	sess_abort(ss, "4.4.2", "connect", "write error while sending the message");
}

static void
sess_start_tls(struct out_sess *ss)
{
	struct dest_job *j = ss->j;
	SSL *ssl = NULL;
	int r = tlsa_ssl_new(j->m->s->d->tlsa, &j->verdict, &ssl);
	if (r != 0) {
		sess_abort(ss, "4.7.5", "tls-handshake", "cannot prepare TLS");
		return;
	}
	if (relay_conn_start_tls(ss->conn, ssl) != RELAY_CONN_OK)
		sess_abort(ss, "4.7.5", "tls-handshake", "cannot start TLS");
}

static void
sess_pump(struct out_sess *ss)
{
	while (!ss->done) {
		struct smtp_client_event ev;
		if (smtp_client_next(ss->smtp, &ev) != 0) {
			rc_ignore(smtp_client_abort(ss->smtp, "4.3.0", "local error"));
			continue;
		}
		switch (ev.type) {
		case SMTP_CLIENT_EV_NONE:
			if (!sess_flush(ss)) {
				rc_ignore(smtp_client_abort(ss->smtp, "4.4.2", "write error"));
				continue;
			}
			relay_conn_set_timeout(ss->conn, sess_timeout_ms(ss));
			return;
		case SMTP_CLIENT_EV_STARTTLS:
			(void)sess_flush(ss);
			relay_conn_set_timeout(ss->conn, sess_timeout_ms(ss));
			sess_start_tls(ss);
			return;
		case SMTP_CLIENT_EV_READY:
			if (ss->parked)
				return; /* idle in the cache */
			if (ss->j != NULL) {
				/* The message is done and the server is ready for
				 * more: report, then keep the connection for the next
				 * message with the same key, or say QUIT. */
				bool keep = sess_cacheable(ss);
				struct dest_job *j = sess_report(ss);
				bool parked = keep && sess_park(ss);
				dest_next(j);
				if (parked)
					return;
			}
			if (smtp_client_quit(ss->smtp) != 0)
				rc_ignore(smtp_client_abort(ss->smtp, "4.3.0", "cannot quit"));
			break;
		case SMTP_CLIENT_EV_RCPT:
			if (ss->j != NULL && ev.rcpt_index < ss->j->nr) {
				ss->rres[ev.rcpt_index] = *ev.result;
				ss->rseen[ev.rcpt_index] = true;
				/* The server (or its advertised capabilities) decided
				 * this recipient: the attempt reached the transaction. */
				if ((ev.result->reason == SMTP_REASON_REPLY &&
				    (ev.result->stage == SMTP_STAGE_MAIL ||
				    ev.result->stage == SMTP_STAGE_RCPT)) ||
				    ev.result->reason == SMTP_REASON_SMTPUTF8_NOT_OFFERED ||
				    ev.result->reason == SMTP_REASON_SIZE_EXCEEDED)
					ss->any_txn_reply = true;
			}
			break;
		case SMTP_CLIENT_EV_SEND_BODY:
			relay_conn_set_timeout(ss->conn, sess_timeout_ms(ss));
			if (ss->j == NULL) {
				rc_ignore(smtp_client_abort(ss->smtp, "4.3.0", "no message"));
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
		copy_str(ss->connect_err, sizeof(ss->connect_err), uv_strerror(status));
		relay_conn_close(c);
		return;
	}
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
	copy_str(in->tls, sizeof(in->tls), tlsa_auth_name(r->auth));
	copy_str(in->trust, sizeof(in->trust), tlsa_trust_name(r->trust));
	in->depth = r->depth;
	copy_str(in->matched, sizeof(in->matched), r->matched);
	if (r->have_spki) {
		for (size_t i = 0; i < 32; i++)
			snprintf(in->spki + 2 * i, 3, "%02x", r->spki_sha256[i]);
	}
	char names[256];
	relay_fmt(names, sizeof(names), "%s%s%s", r->subject,
	    r->dns_names[0] ? " san=" : "", r->dns_names);
	copy_str(in->names, sizeof(in->names), names);
}

static void
sess_on_tls(struct relay_conn *c, int status, void *arg)
{
	struct out_sess *ss = arg;
	struct dest_job *j = ss->j;
	if (tlsa_ssl_result(relay_conn_ssl(c), &j->verdict, status == RELAY_CONN_OK,
	    &ss->tres) != 0) {
		memset(&ss->tres, 0, sizeof(ss->tres));
		ss->tres.ok = false;
		copy_str(ss->tres.why, sizeof(ss->tres.why), "TLS result unavailable");
		copy_str(ss->tres.status, sizeof(ss->tres.status), "4.7.5");
	}
	sess_fill_tls_info(j, &ss->tres);
	struct relay_log_line l;
	if (relay_log_begin(&l, ss->tres.ok ? RELAY_LOG_DEBUG : RELAY_LOG_INFO, "tls")) {
		char buf[1024];
		relay_log_str(&l, "id", j->m->id);
		relay_log_strf(&l, "relay", "%s[%s]:25", j->info.mx, j->info.addr);
		if (tlsa_result_format(&ss->tres, buf, sizeof(buf)) == 0 || buf[0])
			relay_log_str(&l, "result", buf);
		relay_log_end(&l);
	}
	if (!ss->tres.ok || status != RELAY_CONN_OK) {
		/* RFC 7672 2.2 (C19, C21) and 3.2 (C51): never continue on a
		 * session whose authentication or encryption failed. */
		ss->tls_failed = true;
		if (ss->tres.ok) {
			ss->tres.ok = false;
			copy_str(ss->tres.status, sizeof(ss->tres.status), "4.7.5");
			copy_str(ss->tres.why, sizeof(ss->tres.why), "TLS handshake failed");
		}
		sess_abort(ss, ss->tres.status[0] ? ss->tres.status : "4.7.5",
		    class_for_tls(&j->verdict, &ss->tres), ss->tres.why);
		return;
	}
	ss->tls_ok = true;
	if (smtp_client_tls_started(ss->smtp) != 0) {
		sess_abort(ss, "4.7.5", "tls-handshake", "TLS state error");
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
		relay_conn_set_timeout(ss->conn, ss->d->cfg.smtp_quit_timeout_ms);
		if (smtp_client_quit(ss->smtp) == 0) {
			sess_pump(ss);
			return;
		}
	}
	cache_unlink(ss);
	if (err == RELAY_CONN_EOF) {
		rc_ignore(smtp_client_eof(ss->smtp));
		sess_pump(ss);
	} else if (err == RELAY_CONN_TIMEOUT) {
		char why[96];
		relay_fmt(why, sizeof(why), "timeout in state %s",
		    smtp_client_state_name(smtp_client_state(ss->smtp)));
		sess_abort(ss, "4.4.2", "connect", why);
	} else if (err == RELAY_CONN_TLS) {
		char e[256], why[320];
		relay_fmt(why, sizeof(why), "TLS failure after the handshake: %s",
		    relay_conn_tls_errstr(c, e, sizeof(e)));
		sess_abort(ss, "4.4.2", "tls-handshake", why);
	} else {
		sess_abort(ss, "4.4.2", "connect", relay_conn_strerror(err));
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
	if (!ss->connect_failed && !ss->mseen && ss->j != NULL) {
		/* Closed under the machine's feet (abort at shutdown): make
		 * sure every recipient has an outcome. */
		rc_ignore(smtp_client_eof(ss->smtp));
		struct smtp_client_event ev;
		for (int guard = 0; guard < 10000; guard++) {
			if (smtp_client_next(ss->smtp, &ev) != 0 ||
			    ev.type == SMTP_CLIENT_EV_DONE || ev.type == SMTP_CLIENT_EV_NONE)
				break;
			if (ev.type == SMTP_CLIENT_EV_RCPT && ev.rcpt_index < ss->j->nr) {
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

/* May this session serve a later message? Only an authenticated or
 * policy-satisfying TLS state is worth keeping, and only while its key can
 * be computed. Sets ss->key. */
static bool
sess_cacheable(struct out_sess *ss)
{
	const struct dest_job *j = ss->j;
	if (j == NULL || ss->d->cfg.connection_cache_time_ms == 0 || ss->s->stopping)
		return false;
	if (smtp_client_state(ss->smtp) != SMTP_CLIENT_READY)
		return false;
	return tlsa_verdict_cache_key(&j->verdict, ss->key) == 0;
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
	relay_conn_set_timeout(ss->conn, ss->d->cfg.connection_cache_time_ms);
	return true;
}

static struct out_sess *
cache_take(struct relay_sched *s, const char *host, const char *addr,
    const uint8_t key[32])
{
	for (struct out_sess *ss = s->cache; ss != NULL; ss = ss->cnext) {
		if (strcmp(ss->host, host) == 0 && strcmp(ss->addr, addr) == 0 &&
		    memcmp(ss->key, key, 32) == 0) {
			cache_unlink(ss);
			return ss;
		}
	}
	return NULL;
}

/* Close every idle connection (shutdown). */
static void
cache_flush(struct relay_sched *s)
{
	while (s->cache != NULL) {
		struct out_sess *ss = s->cache;
		cache_unlink(ss);
		relay_conn_set_timeout(ss->conn, ss->d->cfg.smtp_quit_timeout_ms);
		if (smtp_client_quit(ss->smtp) == 0)
			sess_pump(ss);
		else
			relay_conn_close(ss->conn);
	}
}

static bool sess_attach_envelope(struct out_sess *ss, struct dest_job *j);

/* Put a parked connection to work for job j. Returns true when the job now
 * waits for this session; false when the envelope could not be started
 * (its recipients are then decided and the connection parked again). */
static bool
sess_reuse(struct out_sess *ss, struct dest_job *j)
{
	ss->j = j;
	ss->reported = false;
	ss->mseen = false;
	ss->any_txn_reply = false;
	ss->body_off = 0;
	ss->body_wait_drain = false;
	ss->abort_class[0] = '\0';
	ss->uses++;
	copy_str(j->info.addr, sizeof(j->info.addr), ss->addr);
	j->info.reply[0] = '\0';
	j->info.conn_use = ss->uses;
	if (ss->tls_ok)
		sess_fill_tls_info(j, &ss->tres);
	if (!sess_attach_envelope(ss, j)) {
		ss->j = NULL;
		ss->reported = true;
		(void)sess_park(ss);
		return false;
	}
	j->sess = ss;
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
		dest_decide_all(j, false, "4.3.0", "local", "out of memory");
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
		.body = m->env->body == RELAY_QUEUE_BODY_8BITMIME ? SMTP_BODY_8BITMIME :
		    m->env->body == RELAY_QUEUE_BODY_BINARYMIME ? SMTP_BODY_BINARYMIME :
		    SMTP_BODY_NONE,
		.ret = m->env->ret == RELAY_QUEUE_RET_FULL ? SMTP_RET_FULL :
		    m->env->ret == RELAY_QUEUE_RET_HDRS ? SMTP_RET_HDRS : SMTP_RET_NONE,
		.envid = m->env->envid[0] ? m->env->envid : NULL,
		.smtputf8 = m->env->smtputf8,
	};
	int r = smtp_client_start_message(ss->smtp, &env);
	if (r != 0) {
		/* An address the engine refuses to send: permanent for the
		 * recipients concerned. */
		char why[REASON_MAX];
		relay_fmt(why, sizeof(why), "cannot send envelope: %s", smtp_strerror(r));
		dest_decide_all(j, true, "5.1.3", "address", why);
		return false;
	}
	return true;
}

static bool
sess_start(struct dest_job *j, const struct relay_dns_addr *a, enum smtp_tls_mode mode)
{
	struct msg_job *m = j->m;
	struct relay_daemon *d = m->s->d;
	struct out_sess *ss = calloc(1, sizeof(*ss));
	if (ss == NULL)
		return false;
	ss->d = d;
	ss->s = m->s;
	ss->j = j;
	ss->uses = 1;
	j->info.conn_use = 1;
	struct smtp_client_config cc = {
		.helo_name = d->cfg.myhostname,
		.tls = mode,
		.allow_helo = mode != SMTP_TLS_REQUIRED,
	};
	ss->smtp = smtp_client_new(&cc);
	if (ss->smtp == NULL || !sess_attach_envelope(ss, j))
		goto fail;

	struct sockaddr_storage ss_addr;
	memset(&ss_addr, 0, sizeof(ss_addr));
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss_addr;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(j->dns->dest.port);
		memcpy(&s6->sin6_addr, a->bytes, 16);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss_addr;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(j->dns->dest.port);
		memcpy(&s4->sin_addr, a->bytes, 4);
	}
	inet_ntop(a->family, a->bytes, j->info.addr, sizeof(j->info.addr));
	copy_str(ss->addr, sizeof(ss->addr), j->info.addr);
	copy_str(ss->host, sizeof(ss->host), j->info.mx);
	j->info.reply[0] = '\0';
	j->sess = ss;
	if (relay_conn_connect(d->loop, (struct sockaddr *)&ss_addr,
	    d->cfg.smtp_connect_timeout_ms, &sess_cbs, ss, &ss->conn) != RELAY_CONN_OK) {
		j->sess = NULL;
		fail_set(&j->fail, false, "4.4.1", "connect", "cannot create socket");
		goto fail;
	}
	return true;
fail:
	smtp_client_free(ss->smtp);
	free(ss->rcpts);
	free(ss->rres);
	free(ss->rseen);
	free(ss);
	return false;
}

/* ------------------------------------------------------ destination jobs */

static bool
dest_all_decided(const struct dest_job *j)
{
	for (size_t k = 0; k < j->nr; k++)
		if (!j->out[k].decided)
			return false;
	return true;
}

static void
info_from_host(struct dest_job *j, const struct relay_dns_host *h)
{
	struct attempt_info *in = &j->info;
	copy_str(in->mx, sizeof(in->mx), h->name);
	in->addr[0] = '\0';
	copy_str(in->dnssec_mx, sizeof(in->dnssec_mx),
	    j->dns->implicit_mx ? "none" : dnssec_word(j->dns->dest.mx));
	copy_str(in->dnssec_addr, sizeof(in->dnssec_addr), dnssec_word(h->in.addr));
	in->tlsa[0] = '\0';
	if (h->in.n_tlsa == 0) {
		copy_str(in->dnssec_tlsa, sizeof(in->dnssec_tlsa), "not-looked-up");
	} else {
		const struct tlsa_tlsa_in *t = &h->in.tlsa[h->in.n_tlsa - 1];
		copy_str(in->dnssec_tlsa, sizeof(in->dnssec_tlsa),
		    t->res.answer == TLSA_ANSWER_NODATA || t->res.answer == TLSA_ANSWER_NXDOMAIN ?
		    (t->res.dnssec == TLSA_DNSSEC_SECURE ? "secure-nodata" : "insecure-nodata") :
		    dnssec_word(t->res));
		size_t off = 0;
		for (size_t i = 0; i < t->n_recs && off + 24 < sizeof(in->tlsa); i++) {
			const struct tlsa_record *rec = &t->recs[i];
			int w = snprintf(in->tlsa + off, sizeof(in->tlsa) - off, "%s%u %u %u ",
			    i ? "; " : "", rec->usage, rec->selector, rec->mtype);
			if (w < 0 || (size_t)w >= sizeof(in->tlsa) - off)
				break;
			off += (size_t)w;
			for (size_t b = 0; b < rec->data_len && b < 6 && off + 3 < sizeof(in->tlsa);
			    b++, off += 2)
				snprintf(in->tlsa + off, 3, "%02x", rec->data[b]);
			if (rec->data_len > 6 && off + 3 < sizeof(in->tlsa)) {
				memcpy(in->tlsa + off, "..", 3);
				off += 2;
			}
		}
	}
	in->tls[0] = '\0';
	in->trust[0] = '\0';
	in->depth = -1;
	in->spki[0] = '\0';
	in->names[0] = '\0';
	in->matched[0] = '\0';
}

static void
log_decision(const struct dest_job *j, const struct tlsa_verdict *v)
{
	struct relay_log_line l;
	char buf[1024];
	if (!relay_log_begin(&l, v->kind == TLSA_VERDICT_DO_NOT_CONNECT ?
	    RELAY_LOG_INFO : RELAY_LOG_DEBUG, "dane-decision"))
		return;
	relay_log_str(&l, "id", j->m->id);
	relay_log_str(&l, "domain", j->domain);
	relay_log_str(&l, "mx", j->info.mx);
	if (tlsa_verdict_format(v, buf, sizeof(buf)) == 0 || buf[0])
		relay_log_str(&l, "decision", buf);
	relay_log_end(&l);
}

/* Try the next address of the current host, or the next host, or finish. */
static void
dest_next(struct dest_job *j)
{
	struct relay_sched *s = j->m->s;
	const struct relay_config *cfg = &s->d->cfg;

	for (;;) {
		if (dest_all_decided(j) || s->aborting) {
			dest_finish(j);
			return;
		}
		if (j->host_i >= j->dns->nhosts || j->addrs_tried >= DEST_ADDRS_TOTAL) {
			/* No MX host left: the last failure decides (4.7.5 for
			 * DANE, TLSA and DNSSEC failures). */
			if (!j->fail.set)
				fail_set(&j->fail, false, "4.4.3", "dns-lookup",
				    "no usable MX host");
			dest_decide_all(j, false, j->fail.dsn, j->fail.class, j->fail.reason);
			dest_finish(j);
			return;
		}
		const struct relay_dns_host *h = &j->dns->hosts[j->host_i];
		if (j->addr_i == 0) {
			/* First visit of this host: the RFC 7672 decision. */
			info_from_host(j, h);
			tlsa_verdict_release(&j->verdict);
			int r = tlsa_policy_decide(&j->dns->dest, &h->in, &s->d->digests,
			    &j->verdict);
			if (r != 0) {
				/* Facts the policy cannot judge: never guess. */
				char why[128];
				relay_fmt(why, sizeof(why), "DANE policy error for %s: %s",
				    h->name, tlsa_strerror(r));
				fail_set(&j->fail, false, "4.7.5", "dnssec-bogus", why);
				j->host_i++;
				continue;
			}
			log_decision(j, &j->verdict);
			if (j->verdict.kind == TLSA_VERDICT_DO_NOT_CONNECT) {
				const char *cls = class_for_dns(j->verdict.fclass, j->dns, h);
				char why[REASON_MAX];
				relay_fmt(why, sizeof(why), "%s: %s", h->name, j->verdict.reason);
				fail_set(&j->fail, j->verdict.permanent, j->verdict.status, cls, why);
				if (j->verdict.scope == TLSA_SCOPE_DESTINATION) {
					dest_decide_all(j, j->verdict.permanent, j->verdict.status,
					    cls, why);
					dest_finish(j);
					return;
				}
				j->host_i++; /* C10, C14: skip this host */
				continue;
			}
		}
		if (j->addr_i >= h->naddrs || j->addr_i >= DEST_ADDRS_PER_HOST) {
			j->host_i++;
			j->addr_i = 0;
			continue;
		}
		const struct relay_dns_addr *a = &h->addrs[j->addr_i++];
		j->addrs_tried++;
		/* A parked connection to this very host and address, verified
		 * under an identical verdict, serves this message too. */
		char atext[INET6_ADDRSTRLEN];
		uint8_t key[32];
		if (s->ncache > 0 && inet_ntop(a->family, a->bytes, atext, sizeof(atext)) != NULL &&
		    tlsa_verdict_cache_key(&j->verdict, key) == 0) {
			struct out_sess *c = cache_take(s, h->name, atext, key);
			if (c != NULL) {
				if (sess_reuse(c, j))
					return;
				continue;
			}
		}
		bool cleartext = false;
		(void)tls_level_for(cfg, j->domain, &cleartext);
		enum smtp_tls_mode mode = j->verdict.kind == TLSA_VERDICT_MAY ?
		    (cleartext ? SMTP_TLS_NONE : SMTP_TLS_MAY) : SMTP_TLS_REQUIRED;
		if (sess_start(j, a, mode))
			return; /* sess_end() calls dest_next() again */
	}
}

static void
dest_dns_done(void *arg, struct relay_dns_result *res)
{
	struct dest_job *j = arg;
	j->dns_req = NULL;
	j->dns = res;
	memset(&j->info, 0, sizeof(j->info));
	j->info.depth = -1;

	struct tlsa_dest_verdict dv;
	int r = tlsa_policy_destination(&res->dest, &dv);
	if (r != 0) {
		dest_decide_all(j, false, "4.7.5", "dns-lookup", "DANE policy error");
		dest_finish(j);
		return;
	}
	switch (dv.action) {
	case TLSA_DEST_DEFER:
	case TLSA_DEST_BOUNCE: {
		const char *cls = res->kind == RELAY_DNS_DEST_NULL_MX ? "null-mx" :
		    class_for_dns(dv.fclass, res, NULL);
		char why[REASON_MAX];
		relay_fmt(why, sizeof(why), "%s: %s", j->domain, dv.reason);
		copy_str(j->info.dnssec_mx, sizeof(j->info.dnssec_mx), dnssec_word(res->dest.mx));
		dest_decide_all(j, dv.action == TLSA_DEST_BOUNCE, dv.status, cls, why);
		dest_finish(j);
		return;
	}
	case TLSA_DEST_LITERAL:
		dest_decide_all(j, true, "5.1.2", "address",
		    "address literal destinations are not supported");
		dest_finish(j);
		return;
	case TLSA_DEST_USE_MX:
	case TLSA_DEST_IMPLICIT:
		break;
	}
	j->host_i = 0;
	j->addr_i = 0;
	dest_next(j);
}

static void msg_dest_done(struct msg_job *m);

static bool
slot_has_room(const struct relay_sched *s, const struct dest_slot *slot)
{
	int64_t lim = s->d->cfg.destination_concurrency_limit;
	return lim <= 0 || slot->active < (size_t)lim;
}

/*
 * Start waiting jobs of slot while its concurrency limit allows. Jobs whose
 * start fails are finished only after the loop, because finishing releases
 * the slot (and may free it).
 */
static void
slot_fill(struct relay_sched *s, struct dest_slot *slot)
{
	struct dest_job *failed = NULL;
	while (slot->wait_head != NULL && slot_has_room(s, slot)) {
		struct dest_job *w = slot->wait_head;
		slot->wait_head = w->wait_next;
		if (slot->wait_head == NULL)
			slot->wait_tail = NULL;
		w->wait_next = NULL;
		slot->active++;
		w->started = true;
		int r = s->aborting ? RELAY_DNS_ERR_CLOSING :
		    relay_dns_resolve(s->d->dns, w->domain, 25, w->level, dest_dns_done, w,
		    &w->dns_req);
		if (r != 0) {
			w->dns_req = NULL;
			if (s->aborting)
				dest_decide_all(w, false, "4.3.2", "shutdown",
				    "delivery interrupted by shutdown");
			else
				dest_decide_all(w, false, "4.4.3", "dns-lookup",
				    relay_dns_strerror(r));
			w->wait_next = failed;
			failed = w;
		}
	}
	while (failed != NULL) {
		struct dest_job *w = failed;
		failed = w->wait_next;
		w->wait_next = NULL;
		dest_finish(w);
	}
}

static void
slot_release(struct relay_sched *s, struct dest_slot *slot)
{
	slot->active--;
	if (slot->active == 0 && slot->wait_head == NULL) {
		struct dest_slot **pp = &s->slots;
		while (*pp != slot)
			pp = &(*pp)->next;
		*pp = slot->next;
		free(slot);
		return;
	}
	slot_fill(s, slot);
}

static void
dest_finish(struct dest_job *j)
{
	if (j->finished)
		return;
	j->finished = true;
	tlsa_verdict_release(&j->verdict);
	relay_dns_result_free(j->dns);
	j->dns = NULL;
	struct relay_sched *s = j->m->s;
	if (j->started && j->slot != NULL) {
		struct dest_slot *slot = j->slot;
		j->slot = NULL;
		slot_release(s, slot);
	}
	msg_dest_done(j->m);
}

static void
dest_start(struct dest_job *j)
{
	struct relay_sched *s = j->m->s;
	struct relay_daemon *d = s->d;

	bool cleartext;
	enum tlsa_level level = tls_level_for(&d->cfg, j->domain, &cleartext);
	j->level = level;
	if (!relay_dns_validation_ok(d->dns) &&
	    (level == TLSA_LEVEL_DANE || level == TLSA_LEVEL_DANE_ONLY)) {
		/* The known-answer self-test fails: DNSSEC cannot be trusted
		 * to tell DANE domains apart, so nothing DANE-dependent goes
		 * out (issue 5 item 3; RFC 7672 2.1.1 C02). */
		dest_decide_all(j, false, "4.7.5", "dnssec-selftest",
		    "DNSSEC validation self-test is failing; delivery deferred");
		j->slot = NULL;
		dest_finish(j);
		return;
	}
	struct dest_slot *slot;
	for (slot = s->slots; slot != NULL; slot = slot->next)
		if (strcmp(slot->domain, j->domain) == 0)
			break;
	if (slot == NULL) {
		slot = calloc(1, sizeof(*slot));
		if (slot == NULL) {
			dest_decide_all(j, false, "4.3.0", "local", "out of memory");
			dest_finish(j);
			return;
		}
		copy_str(slot->domain, sizeof(slot->domain), j->domain);
		slot->next = s->slots;
		s->slots = slot;
	}
	j->slot = slot;
	j->started = false;
	if (slot->wait_tail != NULL)
		slot->wait_tail->wait_next = j;
	else
		slot->wait_head = j;
	slot->wait_tail = j;
	slot_fill(s, slot);
}

/* ------------------------------------------------------------ messages */

static void
msg_unlink(struct msg_job *m)
{
	struct relay_sched *s = m->s;
	*m->pprev = m->next;
	if (m->next != NULL)
		m->next->pprev = m->pprev;
	struct msg_job **hp = &s->hash[hash_id(m->id)];
	while (*hp != m)
		hp = &(*hp)->hnext;
	*hp = m->hnext;
	s->njobs--;
}

static void
msg_free(struct msg_job *m)
{
	struct dest_job *j = m->dests;
	while (j != NULL) {
		struct dest_job *n = j->next;
		free(j->ri);
		free(j->out);
		free(j);
		j = n;
	}
	relay_queue_envelope_free(m->env);
	free(m->content);
	free(m);
}

static void
msg_persisted(int status, void *arg)
{
	struct msg_job *m = arg;
	struct relay_sched *s = m->s;
	if (status != 0) {
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_ERROR, "queue-update-failed")) {
			relay_log_str(&l, "id", m->id);
			relay_log_str(&l, "why", relay_queue_strerror(status));
			relay_log_end(&l);
		}
	}
	msg_unlink(m);
	msg_free(m);
	if (!s->stopping)
		relay_sched_kick(s);
	sched_maybe_done(s);
}

/* RFC 3461/3464 notifications for this round's bounces and delays. */
static void
msg_send_dsns(struct msg_job *m, uint64_t t)
{
	struct relay_daemon *d = m->s->d;
	struct relay_queue_envelope *env = m->env;
	for (int pass = 0; pass < 2; pass++) {
		enum relay_dsn_action act = pass == 0 ? RELAY_DSN_FAILED : RELAY_DSN_DELAYED;
		struct relay_dsn_rcpt *rs = calloc(env->rcpt_count, sizeof(*rs));
		char (*domains)[RELAY_DNS_HOST_MAX] = calloc(env->rcpt_count, sizeof(*domains));
		/* Plain language first (the class hint), then the technical
		 * reason; the SMTP detail goes to Diagnostic-Code. */
		char (*prose)[REASON_MAX + 256] = calloc(env->rcpt_count, sizeof(*prose));
		bool *mark = calloc(env->rcpt_count, sizeof(*mark));
		size_t n = 0;
		if (rs == NULL || domains == NULL || mark == NULL || prose == NULL)
			goto next;
		for (struct dest_job *j = m->dests; j != NULL; j = j->next) {
			for (size_t k = 0; k < j->nr; k++) {
				size_t i = j->ri[k];
				struct relay_queue_rcpt *r = &env->rcpt[i];
				const struct rcpt_out *o = &j->out[k];
				bool want;
				if (act == RELAY_DSN_FAILED)
					want = o->decided && r->status == RELAY_QUEUE_RCPT_BOUNCED;
				else
					want = o->decided && r->status == RELAY_QUEUE_RCPT_DEFERRED &&
					    !r->delay_warned && d->cfg.delay_warning_time_ms > 0 &&
					    /* issue 6 item 5: one delay DSN per message. */
					    !env->delay_warned &&
					    t >= env->arrival_us + d->cfg.delay_warning_time_ms * 1000;
				if (!want || !relay_dsn_wanted(act, r->notify, env->sender))
					continue;
				if (act == RELAY_DSN_DELAYED) {
					r->delay_warned = true;
					mark[i] = true;
				}
				copy_str(domains[n], sizeof(domains[n]), j->domain);
				if (o->class[0] != '\0')
					relay_fmt(prose[n], sizeof(prose[n]), "%s (%s)",
					    relay_report_class_hint(o->class), o->reason);
				else
					copy_str(prose[n], sizeof(prose[n]), o->reason);
				rs[n] = (struct relay_dsn_rcpt){
					.address = r->address,
					.orcpt = r->orcpt,
					.action = act,
					.status = o->dsn,
					.remote_mta = j->info.mx[0] ? j->info.mx : NULL,
					.diagnostic = j->info.reply[0] ? j->info.reply : o->reason,
					.domain = domains[n],
					.reason = prose[n],
					.last_attempt = (int64_t)(t / 1000000),
					.will_retry_until = act == RELAY_DSN_DELAYED ?
					    (int64_t)((env->arrival_us + d->cfg.max_queue_lifetime_ms * 1000) / 1000000) : 0,
				};
				n++;
			}
		}
		if (n > 0) {
			struct relay_dsn_msg dm = {
				.reporting_mta = d->cfg.myhostname,
				.queue_id = m->id,
				.envid = env->envid,
				.sender = env->sender,
				.arrival = (int64_t)(env->arrival_us / 1000000),
				.now = (int64_t)(t / 1000000),
				.ret_full = env->ret == RELAY_QUEUE_RET_FULL,
				.original = m->content,
				.original_len = m->content_len,
			};
			uint8_t *out = NULL;
			size_t outlen = 0;
			int r = relay_dsn_compose(&dm, rs, n, &out, &outlen);
			if (r == 0)
				r = relay_submit_local(d, "", env->sender, RELAY_QUEUE_NOTIFY_NEVER,
				    out, outlen);
			free(out);
			struct relay_log_line l;
			if (relay_log_begin(&l, r == 0 ? RELAY_LOG_INFO : RELAY_LOG_ERROR, "dsn")) {
				relay_log_str(&l, "id", m->id);
				relay_log_str(&l, "action", act == RELAY_DSN_FAILED ? "failed" : "delayed");
				relay_log_addr(&l, "to", env->sender);
				relay_log_u64(&l, "nrcpt", n);
				if (r != 0)
					relay_log_str(&l, "why", relay_queue_strerror(r));
				relay_log_end(&l);
			}
			if (r == 0 && act == RELAY_DSN_DELAYED)
				env->delay_warned = true;
			if (r != 0 && act == RELAY_DSN_DELAYED) {
				/* Try the warning again next round. */
				for (size_t i = 0; i < env->rcpt_count; i++)
					if (mark[i])
						env->rcpt[i].delay_warned = false;
			}
		}
next:
		free(rs);
		free(domains);
		free(prose);
		free(mark);
	}
}

/* All destination jobs of m are done: record, notify, persist. */
static void
msg_dest_done(struct msg_job *m)
{
	if (--m->dests_open > 0)
		return;
	struct relay_daemon *d = m->s->d;
	struct relay_queue_envelope *env = m->env;
	uint64_t t = now_us();
	uint64_t lifetime_us = d->cfg.max_queue_lifetime_ms * 1000;

	for (struct dest_job *j = m->dests; j != NULL; j = j->next) {
		for (size_t k = 0; k < j->nr; k++) {
			struct rcpt_out *o = &j->out[k];
			if (!o->decided)
				rcpt_decide(j, k, RELAY_QUEUE_RCPT_DEFERRED, "4.3.0", "local",
				    "delivery not completed");
			struct relay_queue_rcpt *r = &env->rcpt[j->ri[k]];
			/* RFC 3464 2.3.4 / checklist I37: a recipient still failing
			 * temporarily at the end of its queue lifetime bounces with
			 * its 4.x.x status. */
			if (o->status == RELAY_QUEUE_RCPT_DEFERRED &&
			    t >= env->arrival_us + lifetime_us) {
				o->status = RELAY_QUEUE_RCPT_BOUNCED;
				char why[REASON_MAX];
				relay_fmt(why, sizeof(why), "message expired in queue: %s", o->reason);
				copy_str(o->reason, sizeof(o->reason), why);
			}
			r->status = o->status;
			rc_ignore(relay_queue_set_str(&r->dsn, o->dsn));
			rc_ignore(relay_queue_set_str(&r->reason, o->reason));
			rc_ignore(relay_queue_set_str(&r->failure_class, o->class));
			(void)set_attempt(r, j, o, t);
			r->next_attempt_us = o->status == RELAY_QUEUE_RCPT_DEFERRED ?
			    t + backoff_us(&d->cfg, r->attempts) : 0;
			log_delivery(j, r, o, t);
		}
	}
	msg_send_dsns(m, t);

	int r;
	if (relay_queue_envelope_final(env)) {
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_INFO, "removed")) {
			relay_log_str(&l, "id", m->id);
			relay_log_end(&l);
		}
		r = relay_queue_remove(d->queue, m->id, msg_persisted, m);
	} else {
		r = relay_queue_update(d->queue, env, msg_persisted, m);
	}
	if (r != 0)
		msg_persisted(r, m);
}

static void
msg_start_dests(struct msg_job *m)
{
	struct relay_sched *s = m->s;
	struct relay_queue_envelope *env = m->env;
	uint64_t t = now_us();

	/* Group the due recipients by normalised domain. */
	for (size_t i = 0; i < env->rcpt_count; i++) {
		struct relay_queue_rcpt *r = &env->rcpt[i];
		if (r->status == RELAY_QUEUE_RCPT_SENT || r->status == RELAY_QUEUE_RCPT_BOUNCED)
			continue;
		if (r->next_attempt_us > t)
			continue;
		struct smtp_addr a;
		char domain[RELAY_DNS_HOST_MAX];
		const char *addr = r->address;
		int pr = smtp_addr_parse_mailbox((const uint8_t *)addr, strlen(addr),
		    SMTP_ADDR_UTF8, &a);
		int dl = pr == 0 ? smtp_addr_domain(&a, domain, sizeof(domain)) : -1;
		if (dl <= 0) {
			copy_str(domain, sizeof(domain), "");
		}
		struct dest_job *j;
		for (j = m->dests; j != NULL; j = j->next)
			if (strcmp(j->domain, domain) == 0)
				break;
		if (j == NULL) {
			j = calloc(1, sizeof(*j));
			if (j == NULL)
				continue;
			copy_str(j->domain, sizeof(j->domain), domain);
			j->m = m;
			j->info.depth = -1;
			j->next = m->dests;
			m->dests = j;
		}
		size_t *nri = realloc(j->ri, (j->nr + 1) * sizeof(*nri));
		struct rcpt_out *nout = realloc(j->out, (j->nr + 1) * sizeof(*nout));
		if (nri != NULL)
			j->ri = nri;
		if (nout != NULL)
			j->out = nout;
		if (nri == NULL || nout == NULL)
			continue;
		j->ri[j->nr] = i;
		memset(&j->out[j->nr], 0, sizeof(j->out[j->nr]));
		j->nr++;
	}
	m->dests_open = 1; /* held until every job is started */
	for (struct dest_job *j = m->dests; j != NULL; j = j->next) {
		if (j->nr == 0)
			continue;
		m->dests_open++;
		if (j->domain[0] == '\0') {
			dest_decide_all(j, true, "5.1.3", "address", "bad recipient address syntax");
			dest_finish(j);
			continue;
		}
		if (s->aborting) {
			dest_decide_all(j, false, "4.3.2", "shutdown", "delivery interrupted by shutdown");
			dest_finish(j);
			continue;
		}
		dest_start(j);
	}
	msg_dest_done(m);
}

static void
msg_read_work(uv_work_t *req)
{
	struct msg_job *m = req->data;
	FILE *f = fopen(m->path, "rb");
	if (f == NULL) {
		m->read_err = RELAY_QUEUE_EIO;
		return;
	}
	size_t cap = 65536, len = 0;
	uint8_t *buf = malloc(cap);
	while (buf != NULL) {
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (buf == NULL || bad) {
		free(buf);
		m->read_err = buf == NULL ? RELAY_QUEUE_ENOMEM : RELAY_QUEUE_EIO;
		return;
	}
	m->content = buf;
	m->content_len = len;
}

static void
msg_read_done(uv_work_t *req, int status)
{
	struct msg_job *m = req->data;
	struct relay_sched *s = m->s;
	if (status != 0 || m->read_err != 0) {
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_ERROR, "content-read-failed")) {
			relay_log_str(&l, "id", m->id);
			relay_log_str(&l, "why", relay_queue_strerror(m->read_err));
			relay_log_end(&l);
		}
		msg_unlink(m);
		msg_free(m);
		sched_maybe_done(s);
		return;
	}
	msg_start_dests(m);
}

static void
msg_loaded(int status, struct relay_queue_envelope *env, void *arg)
{
	struct msg_job *m = arg;
	struct relay_sched *s = m->s;
	if (status != 0 || env == NULL) {
		relay_queue_envelope_free(env);
		msg_unlink(m);
		msg_free(m);
		sched_maybe_done(s);
		return;
	}
	m->env = env;
	m->work.data = m;
	if (relay_queue_content_path(s->d->queue, m->id, m->path, sizeof(m->path)) != 0 ||
	    uv_queue_work(s->d->loop, &m->work, msg_read_work, msg_read_done) != 0) {
		msg_unlink(m);
		msg_free(m);
		sched_maybe_done(s);
	}
}

static bool
msg_start(struct relay_sched *s, const char *id)
{
	struct msg_job *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return false;
	m->s = s;
	copy_str(m->id, sizeof(m->id), id);
	m->started_us = now_us();
	m->next = s->jobs;
	m->pprev = &s->jobs;
	if (s->jobs != NULL)
		s->jobs->pprev = &m->next;
	s->jobs = m;
	unsigned h = hash_id(m->id);
	m->hnext = s->hash[h];
	s->hash[h] = m;
	s->njobs++;
	if (relay_queue_load(s->d->queue, id, msg_loaded, m) != 0) {
		msg_unlink(m);
		free(m);
		return false;
	}
	return true;
}

/* ----------------------------------------------------------- scheduler */

struct scan_ctx {
	struct relay_sched *s;
	uint64_t now;
	uint64_t next_due;
	char (*due)[RELAY_QUEUE_ID_SIZE];
	size_t ndue, cap;
};

static int
scan_one(const struct relay_queue_info *info, void *arg)
{
	struct scan_ctx *c = arg;
	if (info->hold || info->rcpt_open == 0)
		return 0;
	if (job_running(c->s, info->id))
		return 0;
	if (info->next_attempt_us > c->now) {
		if (info->next_attempt_us < c->next_due)
			c->next_due = info->next_attempt_us;
		return 0;
	}
	if (c->ndue >= c->cap) {
		/* More are due than we may run now: rescan when jobs finish. */
		c->next_due = c->now;
		return 1;
	}
	copy_str(c->due[c->ndue], sizeof(c->due[0]), info->id);
	c->ndue++;
	return 0;
}

static void
sched_scan(struct relay_sched *s)
{
	if (s->stopping)
		return;
	if (relay_dns_validation_state(s->d->dns) == RELAY_DNS_VALIDATION_UNKNOWN) {
		/* The first DNSSEC self-test is still running: wait for its
		 * verdict (it kicks us) instead of deferring everything once. */
		uv_timer_start(&s->timer, sched_timer_cb, 1000, 0);
		return;
	}
	size_t room = s->njobs < SCHED_MAX_JOBS ? SCHED_MAX_JOBS - s->njobs : 0;
	struct scan_ctx c = {
		.s = s,
		.now = now_us(),
		.next_due = UINT64_MAX,
		.cap = room,
	};
	if (room > 0) {
		c.due = calloc(room, sizeof(*c.due));
		if (c.due == NULL)
			c.cap = 0;
	}
	(void)relay_queue_foreach(s->d->queue, scan_one, &c);
	/* Start after the walk: foreach forbids changes to the queue. */
	for (size_t i = 0; i < c.ndue; i++)
		if (!msg_start(s, c.due[i]))
			break;
	free(c.due);
	uint64_t sleep_ms = SCHED_MAX_SLEEP_MS;
	if (c.next_due != UINT64_MAX) {
		uint64_t t = now_us();
		uint64_t delta = c.next_due > t ? (c.next_due - t) / 1000 + 1 : 1000;
		if (delta < sleep_ms)
			sleep_ms = delta;
	}
	uv_timer_start(&s->timer, sched_timer_cb, sleep_ms, 0);
}

static void
sched_timer_cb(uv_timer_t *t)
{
	sched_scan(t->data);
}

void
relay_sched_kick(struct relay_sched *s)
{
	if (s->stopping)
		return;
	/* Kicks coalesce: however many arrive in one loop iteration, the
	 * scan runs once, on the next. */
	uv_timer_start(&s->timer, sched_timer_cb, 0, 0);
}

size_t
relay_sched_active(const struct relay_sched *s)
{
	return s->njobs;
}

/* issue 6 (control socket): whether message id has a delivery job in
 * flight, so `queue delete/hold` can refuse to touch it meanwhile. */
bool
relay_sched_is_active(const struct relay_sched *s, const char *id)
{
	return job_running(s, id);
}

int
relay_sched_new(struct relay_daemon *d, struct relay_sched **out)
{
	struct relay_sched *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return RELAY_QUEUE_ENOMEM;
	s->d = d;
	if (uv_timer_init(d->loop, &s->timer) != 0) {
		free(s);
		return RELAY_QUEUE_EIO;
	}
	if (uv_timer_init(d->loop, &s->grace) != 0) {
		uv_close((uv_handle_t *)&s->timer, NULL);
		/* The timer's memory is s: freed after a loop turn is not
		 * possible here; keep s alive (startup failure exits). */
		return RELAY_QUEUE_EIO;
	}
	s->timer.data = s;
	s->grace.data = s;
	s->open_handles = 2;
	uv_timer_start(&s->timer, sched_timer_cb, 0, 0);
	*out = s;
	return 0;
}

static void
sched_handle_closed(uv_handle_t *h)
{
	struct relay_sched *s = h->data;
	if (--s->open_handles > 0)
		return;
	struct relay_daemon *d = s->d;
	void (*done)(struct relay_daemon *) = s->done;
	while (s->slots != NULL) {
		struct dest_slot *n = s->slots->next;
		free(s->slots);
		s->slots = n;
	}
	free(s);
	d->sched = NULL;
	if (done != NULL)
		done(d);
}

static void
sched_maybe_done(struct relay_sched *s)
{
	if (!s->stopping || s->njobs > 0 || s->done_called)
		return;
	s->done_called = true;
	uv_close((uv_handle_t *)&s->timer, sched_handle_closed);
	uv_close((uv_handle_t *)&s->grace, sched_handle_closed);
}

static void
sched_abort_all(struct relay_sched *s)
{
	s->aborting = true;
	/* Finishing a job can free its message, so rescan from the start
	 * after each cancelled DNS request. Sessions are aborted in place:
	 * their close callbacks finish their jobs later. */
again:
	for (struct msg_job *m = s->jobs; m != NULL; m = m->next) {
		for (struct dest_job *j = m->dests; j != NULL; j = j->next) {
			if (j->finished)
				continue;
			if (j->dns_req != NULL) {
				relay_dns_cancel(j->dns_req);
				j->dns_req = NULL;
				dest_decide_all(j, false, "4.3.2", "shutdown",
				    "delivery interrupted by shutdown");
				dest_finish(j);
				goto again;
			}
			if (j->sess != NULL && j->sess->conn != NULL)
				relay_conn_abort(j->sess->conn);
		}
	}
}

static void
sched_grace_cb(uv_timer_t *t)
{
	struct relay_sched *s = t->data;
	relay_log_msg(RELAY_LOG_WARNING, "shutdown", "aborting deliveries in flight");
	sched_abort_all(s);
}

void
relay_sched_stop(struct relay_sched *s, uint64_t grace_ms,
    void (*done)(struct relay_daemon *d))
{
	s->stopping = true;
	s->done = done;
	uv_timer_stop(&s->timer);
	cache_flush(s);
	if (s->njobs == 0) {
		sched_maybe_done(s);
		return;
	}
	uv_timer_start(&s->grace, sched_grace_cb, grace_ms, 0);
}

/* ------------------------------------------------------ local submission */

struct local_submit {
	struct relay_daemon *d;
};

static void
local_committed(struct relay_queue_writer *w, int status, const char *queue_id, void *arg)
{
	struct local_submit *ls = arg;
	(void)w;
	struct relay_log_line l;
	if (relay_log_begin(&l, status == 0 ? RELAY_LOG_INFO : RELAY_LOG_ERROR, "queued-local")) {
		relay_log_str(&l, "id", status == 0 ? queue_id : "");
		if (status != 0)
			relay_log_str(&l, "why", relay_queue_strerror(status));
		relay_log_end(&l);
	}
	if (status == 0 && ls->d->sched != NULL)
		relay_sched_kick(ls->d->sched);
	free(ls);
}

int
relay_submit_local(struct relay_daemon *d, const char *sender, const char *rcpt,
    unsigned notify, const uint8_t *content, size_t len)
{
	struct relay_queue_envelope *env = relay_queue_envelope_new();
	if (env == NULL)
		return RELAY_QUEUE_ENOMEM;
	int r = relay_queue_set_str(&env->sender, sender);
	if (r == 0)
		r = relay_queue_set_str(&env->client_addr, "local");
	if (r == 0)
		r = relay_queue_rcpt_add(env, rcpt, "", notify, NULL);
	struct relay_queue_writer *w = NULL;
	if (r == 0)
		r = relay_queue_msg_begin(d->queue, env, &w);
	relay_queue_envelope_free(env);
	if (r != 0)
		return r;
	struct local_submit *ls = malloc(sizeof(*ls));
	if (ls == NULL) {
		relay_queue_writer_abort(w);
		return RELAY_QUEUE_ENOMEM;
	}
	ls->d = d;
	r = relay_queue_writer_write(w, content, len, NULL, NULL);
	if (r == 0)
		r = relay_queue_writer_commit(w, local_committed, ls);
	if (r != 0) {
		relay_queue_writer_abort(w);
		free(ls);
	}
	return r;
}
