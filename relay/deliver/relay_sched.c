/*
 * relay_sched: the scheduler of deliveries (see deliver_int.h for the
 * whole pipeline).
 *
 * It scans the queue's index for messages with due recipients, loads each
 * message (envelope, and content in the thread pool), groups its due
 * recipients by domain into destination jobs (relay_dest.c), and when all
 * of them are done records every recipient's outcome: sent, deferred with
 * backoff (retry_min doubling up to retry_max), or bounced (5xx, null MX,
 * NXDOMAIN, or max_queue_lifetime reached; RFC 3464 2.3.4 lets such a
 * bounce keep its 4.x.x status). One log line per recipient and attempt,
 * the envelope persisted crash-safely, then RFC 3461/3464 DSNs: "failed"
 * for bounces, one "delayed" warning per message after delay_warning_time,
 * each only when NOTIFY allows and never to the null sender.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver_int.h"
#include "relay_backoff.h"
#include "relay_dsn.h"
#include "relay_log.h"
#include "relay_report.h"

static void sched_timer_cb(uv_timer_t *t);
static void sched_next_slice(struct relay_sched *s);
static void sched_arm(struct relay_sched *s, uint64_t when_us);
static void sched_maybe_done(struct relay_sched *s);


/* ------------------------------------------------------------ helpers */

/* Wall time: what envelopes' due times are compared with (relay_deliver.h,
 * "Time"). */
static uint64_t
wall_us(const struct relay_sched *s)
{
	return relay_clock_wall_us(s->ctx->clock);
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
	for (const struct msg_job *m = s->hash[hash_id(id)]; m != NULL;
	     m = m->hnext)
		if (strcmp(m->id, id) == 0)
			return true;
	return false;
}

/* ----------------------------------------------------- outcome recording */

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
	e |= relay_queue_set_str(&a->policy,
	    relay_tls_level_name(j->policy.level));
	e |= relay_queue_set_str(&a->policy_entry, j->policy.entry);
	e |= relay_queue_set_str(&a->policy_reason, j->policy.reason);
	e |= relay_queue_set_str(&a->dsn, o->dsn);
	e |= relay_queue_set_str(&a->status,
	    relay_queue_rcpt_status_name(o->status));
	e |= relay_queue_set_str(&a->failure_class,
	    relay_fail_class_name(o->class));
	e |= relay_queue_set_str(&a->reason, o->reason);
	char kinds[256];
	e |= relay_queue_set_str(&a->routing_change,
	    relay_monitor_kinds_format(j->mon_kinds, kinds, sizeof(kinds)));
	e |= relay_queue_set_str(&a->hint,
	    o->class == RELAY_FAIL_CLASS_TLSA_MISMATCH ? tlsa_hint_name(j->hint)
	                                               : "");
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
	if (j->domain_utf8[0] != '\0') {
		/* A UTF-8 recipient domain: the A-label form that was looked up
		 * (empty when it could not be converted) and the original. */
		if (j->domain[0] != '\0')
			relay_log_str(&l, "domain", j->domain);
		relay_log_str(&l, "domain_utf8", j->domain_utf8);
	}
	if (in->mx[0] != '\0') {
		if (in->addr[0] != '\0')
			relay_log_strf(&l, "relay", "%s[%s]:%u", in->mx,
			    in->addr, (unsigned)in->port);
		else
			relay_log_str(&l, "relay", in->mx);
	} else {
		relay_log_str(&l, "relay", "none");
	}
	if (j->notify)
		relay_log_str(&l, "nexthop", j->nexthop.text);
	if (j->policy.entry[0] != '\0') {
		/* The level came from a tls_policy_file entry: name it. */
		relay_log_str(&l, "policy",
		    relay_tls_level_name(j->policy.level));
		relay_log_str(&l, "policy_entry", j->policy.entry);
		if (j->policy.reason[0] != '\0')
			relay_log_str(&l, "policy_reason", j->policy.reason);
		if (j->policy.until[0] != '\0')
			relay_log_str(&l, "policy_until", j->policy.until);
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
	if (o->class != RELAY_FAIL_CLASS_NONE)
		relay_log_str(&l, "class", relay_fail_class_name(o->class));
	/* RFC 8461 5: what an enforce policy would have refused. */
	if (j->sts_would_fail != RELAY_FAIL_CLASS_NONE)
		relay_log_str(&l, "sts_testing_failure",
		    relay_fail_class_name(j->sts_would_fail));
	if (o->class == RELAY_FAIL_CLASS_TLSA_MISMATCH &&
	    j->hint != TLSA_HINT_NONE)
		relay_log_str(&l, "hint", tlsa_hint_name(j->hint));
	if (j->mon_kinds != 0) {
		char kinds[256];
		relay_log_str(&l, "routing_change",
		    relay_monitor_kinds_format(j->mon_kinds, kinds,
		        sizeof(kinds)));
	}
	relay_log_u64(&l, "attempts", r->attempts);
	if (in->conn_use > 1)
		relay_log_u64(&l, "conn_use", in->conn_use);
	relay_log_str(&l, "why", o->reason);
	relay_log_end(&l);
}

/*
 * A recipient of a null-sender message (a DSN: ours, or one Postfix handed
 * over) bounced. There is nobody to tell: RFC 5321 4.5.5 says a
 * notification must not be sent for a message with a null reverse-path,
 * and RFC 3461 6.2 that no DSN is issued for one. Postfix, too, discards
 * such a double bounce unless notify_classes asks for 2bounce; it logs
 * it, and so do we, at warning: the message leaves the queue with this
 * recipient undelivered.
 */
static void
log_null_sender_bounce(const struct msg_job *m,
    const struct relay_queue_rcpt *r, const struct rcpt_out *o)
{
	struct relay_log_line l;
	if (!relay_log_begin(&l, RELAY_LOG_WARNING, "bounce-discarded"))
		return;
	relay_log_str(&l, "id", m->id);
	relay_log_addr(&l, "to", r->address);
	relay_log_str(&l, "origin", relay_queue_origin_name(m->env->origin));
	relay_log_str(&l, "dsn", o->dsn);
	relay_log_str(&l, "why",
	    "undeliverable mail with the null sender: no notification is "
	    "sent for it (RFC 5321 4.5.5, RFC 3461 6.2)");
	relay_log_end(&l);
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
		if (relay_log_begin(&l, RELAY_LOG_ERROR,
		        "queue-update-failed")) {
			relay_log_str(&l, "id", m->id);
			relay_log_str(&l, "why", relay_queue_strerror(status));
			relay_log_end(&l);
		}
	}
	uint64_t next_us = m->next_due_us;
	msg_unlink(m);
	msg_free(m);
	if (!s->stopping && next_us != 0)
		sched_arm(s, next_us);
	/* A finished job frees a place: a scan that stopped for lack of
	 * places goes on where it stopped, at the oldest due message it could
	 * not start (never from the start of the index: one walk of the whole
	 * index per finished job would be quadratic under load). */
	if (!s->stopping && s->scan_paused) {
		s->scan_paused = false;
		sched_next_slice(s);
	}
	sched_maybe_done(s);
}

/* RFC 3461/3464 notifications for this round's bounces and delays. */
static void
msg_send_dsns(struct msg_job *m, uint64_t t)
{
	const struct relay_deliver_ctx *ctx = m->s->ctx;
	struct relay_queue_envelope *env = m->env;
	/* The envelope parser refuses one without recipients, so this only
	 * keeps the calloc()s below from asking for 0 elements (which may
	 * return NULL, read as out of memory). */
	if (env->rcpt_count == 0)
		return;
	for (int pass = 0; pass < 2; pass++) {
		enum relay_dsn_action act =
		    pass == 0 ? RELAY_DSN_FAILED : RELAY_DSN_DELAYED;
		struct relay_dsn_rcpt *rs =
		    calloc(env->rcpt_count, sizeof(*rs));
		char(*domains)[RELAY_DNS_HOST_MAX] =
		    calloc(env->rcpt_count, sizeof(*domains));
		/* Plain language first (the class hint), then the technical
		 * reason; the SMTP detail goes to Diagnostic-Code. */
		char(*prose)[REASON_MAX + 640] =
		    calloc(env->rcpt_count, sizeof(*prose));
		bool *mark = calloc(env->rcpt_count, sizeof(*mark));
		size_t n = 0;
		if (rs == NULL || domains == NULL || mark == NULL ||
		    prose == NULL)
			goto next;
		for (struct dest_job *j = m->dests; j != NULL; j = j->next) {
			for (size_t k = 0; k < j->nr; k++) {
				size_t i = j->ri[k];
				struct relay_queue_rcpt *r = &env->rcpt[i];
				const struct rcpt_out *o = &j->out[k];
				bool want;
				if (act == RELAY_DSN_FAILED)
					want = o->decided &&
					    r->status ==
					        RELAY_QUEUE_RCPT_BOUNCED;
				else
					want = o->decided &&
					    r->status ==
					        RELAY_QUEUE_RCPT_DEFERRED &&
					    !r->delay_warned &&
					    /* One delay DSN per message. */
					    !env->delay_warned &&
					    relay_backoff_warn_due(ctx->cfg,
					        env->arrival_us, t);
				if (!want ||
				    !relay_dsn_wanted(act, r->notify,
				        env->sender))
					continue;
				if (act == RELAY_DSN_DELAYED) {
					r->delay_warned = true;
					mark[i] = true;
				}
				relay_copy(domains[n], sizeof(domains[n]),
				    j->domain[0] != '\0' ? j->domain
				                         : j->domain_utf8);
				if (o->class ==
				        RELAY_FAIL_CLASS_TLSA_MISMATCH &&
				    j->hint != TLSA_HINT_NONE)
					/* The routing monitor's diagnosis
					 * says what the receiving side got
					 * wrong. */
					relay_fmt(prose[n], sizeof(prose[n]),
					    "%s; likely cause: %s (%s)",
					    relay_report_fail_class_hint(
					        o->class),
					    tlsa_hint_text(j->hint), o->reason);
				else if (o->class != RELAY_FAIL_CLASS_NONE)
					relay_fmt(prose[n], sizeof(prose[n]),
					    "%s (%s)",
					    relay_report_fail_class_hint(
					        o->class),
					    o->reason);
				else
					relay_copy(prose[n], sizeof(prose[n]),
					    o->reason);
				rs[n] = (struct relay_dsn_rcpt){
					.address = r->address,
					.orcpt = r->orcpt,
					.action = act,
					.status = o->dsn,
					.remote_mta =
					    j->info.mx[0] ? j->info.mx : NULL,
					.diagnostic = j->info.reply[0]
					    ? j->info.reply
					    : o->reason,
					.domain = domains[n],
					.reason = prose[n],
					.last_attempt = (int64_t)(t / 1000000),
					.will_retry_until =
					    act == RELAY_DSN_DELAYED
					    ? (int64_t)(relay_backoff_expires_us(
					                    ctx->cfg,
					                    env->arrival_us) /
					          1000000)
					    : 0,
				};
				n++;
			}
		}
		if (n > 0) {
			struct relay_dsn_msg dm = {
				.reporting_mta = ctx->cfg->myhostname,
				.queue_id = m->id,
				.envid = env->envid,
				.sender = env->sender,
				.arrival = (int64_t)(env->arrival_us / 1000000),
				.now = (int64_t)(t / 1000000),
				/* RFC 8689 5: a REQUIRETLS message is
				 * returned as with RET=HDRS, RET=FULL
				 * disregarded. The DSN itself (null
				 * sender) is not tagged: the RFC says the
				 * tag should not get a bounce discarded,
				 * so it may take notify_relayhost. */
				.ret_full = env->ret == RELAY_QUEUE_RET_FULL &&
				    !env->requiretls,
				.original = m->content,
				.original_len = m->content_len,
			};
			uint8_t *out = NULL;
			size_t outlen = 0;
			int r = relay_dsn_compose(&dm, rs, n, &out, &outlen);
			if (r == 0)
				r = relay_submit_local(ctx, "", env->sender,
				    RELAY_QUEUE_NOTIFY_NEVER, out, outlen);
			free(out);
			struct relay_log_line l;
			if (relay_log_begin(&l,
			        r == 0 ? RELAY_LOG_INFO : RELAY_LOG_ERROR,
			        "dsn")) {
				relay_log_str(&l, "id", m->id);
				relay_log_str(&l, "action",
				    act == RELAY_DSN_FAILED ? "failed"
				                            : "delayed");
				relay_log_addr(&l, "to", env->sender);
				relay_log_u64(&l, "nrcpt", n);
				if (r != 0)
					relay_log_str(&l, "why",
					    relay_queue_strerror(r));
				relay_log_end(&l);
			}
			if (r == 0 && act == RELAY_DSN_DELAYED)
				env->delay_warned = true;
			if (r != 0 && act == RELAY_DSN_DELAYED) {
				/* Try the warning again next round. */
				for (size_t i = 0; i < env->rcpt_count; i++)
					if (mark[i])
						env->rcpt[i].delay_warned =
						    false;
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
void
deliver__msg_dest_done(struct msg_job *m)
{
	if (--m->dests_open > 0)
		return;
	const struct relay_deliver_ctx *ctx = m->s->ctx;
	struct relay_queue_envelope *env = m->env;
	uint64_t t = wall_us(m->s);

	for (struct dest_job *j = m->dests; j != NULL; j = j->next) {
		for (size_t k = 0; k < j->nr; k++) {
			struct rcpt_out *o = &j->out[k];
			if (!o->decided)
				deliver__rcpt_decide(j, k,
				    RELAY_QUEUE_RCPT_DEFERRED, "4.3.0",
				    RELAY_FAIL_CLASS_LOCAL,
				    "delivery not completed");
			struct relay_queue_rcpt *r = &env->rcpt[j->ri[k]];
			/* RFC 3464 2.3.4 / checklist I37: a recipient still failing
			 * temporarily at the end of its queue lifetime bounces with
			 * its 4.x.x status. */
			if (o->status == RELAY_QUEUE_RCPT_DEFERRED &&
			    relay_backoff_expired(ctx->cfg, env->arrival_us,
			        t)) {
				o->status = RELAY_QUEUE_RCPT_BOUNCED;
				char why[REASON_MAX];
				relay_fmt(why, sizeof(why),
				    "message expired in queue: %s", o->reason);
				relay_copy(o->reason, sizeof(o->reason), why);
			}
			r->status = o->status;
			rc_ignore(relay_queue_set_str(&r->dsn, o->dsn));
			rc_ignore(relay_queue_set_str(&r->reason, o->reason));
			rc_ignore(relay_queue_set_str(&r->failure_class,
			    relay_fail_class_name(o->class)));
			(void)set_attempt(r, j, o, t);
			r->next_attempt_us =
			    o->status == RELAY_QUEUE_RCPT_DEFERRED
			    ? relay_backoff_next_us(ctx->cfg, r->attempts, t)
			    : 0;
			if (r->next_attempt_us != 0 &&
			    (m->next_due_us == 0 ||
			        r->next_attempt_us < m->next_due_us))
				m->next_due_us = r->next_attempt_us;
			log_delivery(j, r, o, t);
			deliver__count_delivery(j, o, t);
			if (o->status == RELAY_QUEUE_RCPT_BOUNCED &&
			    env->sender[0] == '\0')
				log_null_sender_bounce(m, r, o);
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
		r = relay_queue_remove(ctx->queue, m->id, msg_persisted, m);
	} else {
		r = relay_queue_update(ctx->queue, env, msg_persisted, m);
	}
	if (r != 0)
		msg_persisted(r, m);
}

/* The destination of one recipient, as msg_start_dests() groups them. */
struct rcpt_dest {
	char
	    domain[RELAY_DNS_HOST_MAX]; /* DNS form; "" for bad syntax or err */
	char
	    utf8[RELAY_IDN_UTF8_MAX]; /* the recipient's spelling if not that */
	int err;                      /* relay_idn_to_ascii() */
	const char *detail;           /* static */
};

/*
 * The recipient's domain becomes the destination here, once: a UTF-8
 * domain (RFC 6531 3.2) is converted to A-labels (relay_idn.h) so that the
 * MX, address and TLSA lookups, the TLSA base domain, SNI and the DANE-TA
 * reference identifiers (RFC 7672 3.2.2, compared with A-label DNS-IDs)
 * all see the same name. With smtputf8_enable = no nothing is converted
 * and a UTF-8 domain fails (dest_idn_fail()). An address literal is kept
 * as it is.
 */
static void
rcpt_dest_form(const struct relay_config *cfg, const char *address,
    struct rcpt_dest *rd)
{
	struct smtp_addr a;
	char raw[RELAY_IDN_UTF8_MAX];

	rd->domain[0] = '\0';
	rd->utf8[0] = '\0';
	rd->err = 0;
	rd->detail = "";
	int pr = smtp_addr_parse_mailbox((const uint8_t *)address,
	    strlen(address), SMTP_ADDR_UTF8, &a);
	int dl = pr == 0 ? smtp_addr_domain(&a, raw, sizeof(raw)) : -1;
	if (dl <= 0)
		return;
	if (a.literal) {
		relay_copy(rd->domain, sizeof(rd->domain), raw);
		return;
	}
	rd->err = relay_idn_to_ascii(raw,
	    cfg->smtputf8_enable ? RELAY_IDN_ALLOW_UTF8 : 0, rd->domain,
	    &rd->detail);
	if (rd->err != 0 || !relay_idn_is_ascii(raw))
		relay_copy(rd->utf8, sizeof(rd->utf8), raw);
}

static bool
rcpt_dest_same(const struct dest_job *j, const struct rcpt_dest *rd)
{
	if ((j->idn_err != 0) != (rd->err != 0))
		return false;
	/* Names that failed to convert have no DNS form: their spelling. */
	return rd->err != 0 ? strcmp(j->domain_utf8, rd->utf8) == 0
	                    : strcmp(j->domain, rd->domain) == 0;
}

/* A recipient domain that cannot be converted will never be: bounce it
 * once (no retries), with the reason in the log and the DSN. */
static void
dest_idn_fail(struct dest_job *j)
{
	char why[REASON_MAX];
	relay_fmt(why, sizeof(why), "recipient domain: %s: %s",
	    relay_idn_strerror(j->idn_err), j->idn_detail);
	switch ((enum relay_idn_err)j->idn_err) {
	case RELAY_IDN_ERR_INVALID:
		/* RFC 3463 3.2: X.1.2 bad destination system address. */
		deliver__dest_decide_all(j, true, "5.1.2",
		    RELAY_FAIL_CLASS_ADDRESS, why);
		return;
	case RELAY_IDN_ERR_UTF8_OFF:
		/* RFC 6531 3.5: X.6.7 non-ASCII addresses not permitted. */
		deliver__dest_decide_all(j, true, "5.6.7",
		    RELAY_FAIL_CLASS_ADDRESS, why);
		return;
	case RELAY_IDN_ERR_NOMEM:
		deliver__dest_decide_all(j, false, "4.3.0",
		    RELAY_FAIL_CLASS_LOCAL, why);
		return;
	}
	deliver__dest_decide_all(j, false, "4.3.0", RELAY_FAIL_CLASS_LOCAL,
	    why);
}

static void
msg_start_dests(struct msg_job *m)
{
	struct relay_sched *s = m->s;
	struct relay_queue_envelope *env = m->env;
	uint64_t t = wall_us(s);

	/* Mail danerelay generated goes to notify_relayhost when one is set,
	 * decided now, at each attempt, from the configuration in effect: one
	 * destination for every recipient (relay_relayhost.c). */
	const struct relay_config_nexthop *nh = &s->ctx->cfg->notify_relayhost;
	/* A REQUIRETLS message never goes to the site MTA: that hop is
	 * opportunistic TLS without DANE (RFC 8689 4.2.1). danerelay never
	 * tags its own mail so; this holds should one ever be. */
	bool notify = env->origin == RELAY_QUEUE_ORIGIN_LOCAL && nh->set &&
	    !env->requiretls;

	/* Group the due recipients by destination: the domain in DNS form, so
	 * "Bücher.example" and "xn--bcher-kva.example" are one destination. */
	for (size_t i = 0; i < env->rcpt_count; i++) {
		struct relay_queue_rcpt *r = &env->rcpt[i];
		if (r->status == RELAY_QUEUE_RCPT_SENT ||
		    r->status == RELAY_QUEUE_RCPT_BOUNCED)
			continue;
		if (r->next_attempt_us > t)
			continue;
		struct rcpt_dest rd;
		if (notify) {
			memset(&rd, 0, sizeof(rd));
			relay_copy(rd.domain, sizeof(rd.domain), nh->text);
			rd.detail = "";
		} else {
			rcpt_dest_form(s->ctx->cfg, r->address, &rd);
		}
		struct dest_job *j;
		for (j = m->dests; j != NULL; j = j->next)
			if (rcpt_dest_same(j, &rd))
				break;
		if (j == NULL) {
			j = calloc(1, sizeof(*j));
			if (j == NULL)
				continue;
			relay_copy(j->domain, sizeof(j->domain), rd.domain);
			relay_copy(j->domain_utf8, sizeof(j->domain_utf8),
			    rd.utf8);
			j->notify = notify;
			if (notify)
				j->nexthop = *nh;
			j->idn_err = rd.err;
			j->idn_detail = rd.detail;
			j->m = m;
			j->info.depth = -1;
			j->next = m->dests;
			m->dests = j;
		}
		size_t *nri = realloc(j->ri, (j->nr + 1) * sizeof(*nri));
		struct rcpt_out *nout =
		    realloc(j->out, (j->nr + 1) * sizeof(*nout));
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
		if (j->idn_err != 0) {
			dest_idn_fail(j);
			deliver__dest_finish(j);
			continue;
		}
		if (j->domain[0] == '\0') {
			deliver__dest_decide_all(j, true, "5.1.3",
			    RELAY_FAIL_CLASS_ADDRESS,
			    "bad recipient address syntax");
			deliver__dest_finish(j);
			continue;
		}
		if (s->aborting) {
			deliver__dest_decide_all(j, false, "4.3.2",
			    RELAY_FAIL_CLASS_SHUTDOWN,
			    "delivery interrupted by shutdown");
			deliver__dest_finish(j);
			continue;
		}
		deliver__dest_start(j);
	}
	deliver__msg_dest_done(m);
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
		m->read_err =
		    buf == NULL ? RELAY_QUEUE_ENOMEM : RELAY_QUEUE_EIO;
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
		if (relay_log_begin(&l, RELAY_LOG_ERROR,
		        "content-read-failed")) {
			relay_log_str(&l, "id", m->id);
			relay_log_str(&l, "why",
			    relay_queue_strerror(m->read_err));
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
	if (relay_queue_content_path(s->ctx->queue, m->id, m->path,
	        sizeof(m->path)) != 0 ||
	    uv_queue_work(s->ctx->loop, &m->work, msg_read_work,
	        msg_read_done) != 0) {
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
	relay_copy(m->id, sizeof(m->id), id);
	m->started_us = relay_clock_mono_us(s->ctx->clock);
	m->next = s->jobs;
	m->pprev = &s->jobs;
	if (s->jobs != NULL)
		s->jobs->pprev = &m->next;
	s->jobs = m;
	unsigned h = hash_id(m->id);
	m->hnext = s->hash[h];
	s->hash[h] = m;
	s->njobs++;
	if (relay_queue_load(s->ctx->queue, id, msg_loaded, m) != 0) {
		msg_unlink(m);
		free(m);
		return false;
	}
	/* One more message may come in at once (in_flow_delay). */
	if (s->ctx->in_flow != NULL)
		s->ctx->in_flow(s->ctx->arg, false);
	return true;
}

/* ----------------------------------------------------------- scheduler */

/*
 * Dispatch order. Messages are started oldest first: a scan walks the
 * index in id order, which is arrival order (relay_queue.h), and starts
 * the due messages it meets while places are free. When none is free the
 * scan pauses at the first due message it could not start, and each job
 * that finishes resumes it there, so the oldest waiting message takes the
 * freed place. A message committed while a scan is under way is left to
 * it: starting it at once would let it overtake older messages that wait
 * for a place. Only when no scan is under way and a place is free does a
 * new message start at once (relay_sched_new_message()).
 *
 * The walk is cut into slices (SCHED_SCAN_SLICE, SCHED_START_SLICE), one
 * per loop iteration, so that a million messages coming due at the same
 * moment cost many short turns of the loop, not one long one.
 */

struct scan_ctx {
	struct relay_sched *s;
	uint64_t now;
	size_t cap;  /* messages this slice may start */
	bool full;   /* stopped at a due message it may not start */
	size_t seen; /* messages looked at */
	char (*due)[RELAY_QUEUE_ID_SIZE];
	size_t ndue;
	char last[RELAY_QUEUE_ID_SIZE]; /* the last id passed */
};

static int
scan_one(const struct relay_queue_info *info, void *arg)
{
	struct scan_ctx *c = arg;
	struct relay_sched *s = c->s;
	c->seen++;
	if (!info->hold && info->rcpt_open > 0 && !job_running(s, info->id)) {
		if (info->next_attempt_us > c->now) {
			if (info->next_attempt_us < s->scan_next_due)
				s->scan_next_due = info->next_attempt_us;
		} else if (c->ndue >= c->cap) {
			/* Due, and no place for it in this slice: the scan goes
			 * on from here, with this message first. */
			c->full = true;
			return 1;
		} else {
			relay_copy(c->due[c->ndue], sizeof(c->due[0]),
			    info->id);
			c->ndue++;
		}
	}
	relay_copy(c->last, sizeof(c->last), info->id);
	return 0;
}

static void
log_scan_slice(const struct relay_sched *s, const struct scan_ctx *c)
{
	struct relay_log_line l;
	if (!relay_log_begin(&l, RELAY_LOG_DEBUG, "scan-slice"))
		return;
	relay_log_u64(&l, "seen", c->seen);
	relay_log_u64(&l, "started", c->ndue);
	relay_log_u64(&l, "active", s->njobs);
	relay_log_str(&l, "next",
	    c->full && s->njobs >= SCHED_MAX_JOBS        ? "paused"
	        : c->full || c->seen >= SCHED_SCAN_SLICE ? "slice"
	                                                 : "done");
	relay_log_end(&l);
}

static void
sched_scan(struct relay_sched *s)
{
	if (s->stopping)
		return;
	if (!s->scanning) {
		if (relay_dns_validation_state(*s->ctx->dns) ==
		    RELAY_DNS_VALIDATION_UNKNOWN) {
			/* The first DNSSEC self-test is still running: wait
			 * for its verdict (it kicks us) instead of deferring
			 * everything once. */
			uv_timer_start(&s->timer, sched_timer_cb, 1000, 0);
			return;
		}
		s->scanning = true;
		s->scan_again = false;
		s->scan_after[0] = '\0';
		s->scan_next_due = UINT64_MAX;
	}
	s->scan_paused = false;
	size_t room = s->njobs < SCHED_MAX_JOBS ? SCHED_MAX_JOBS - s->njobs : 0;
	char due[SCHED_START_SLICE][RELAY_QUEUE_ID_SIZE];
	struct scan_ctx c = {
		.s = s,
		.now = wall_us(s),
		.cap = room < SCHED_START_SLICE ? room : SCHED_START_SLICE,
		.due = due,
	};
	relay_copy(c.last, sizeof(c.last), s->scan_after);
	(void)relay_queue_foreach_after(s->ctx->queue, s->scan_after,
	    SCHED_SCAN_SLICE, scan_one, &c);
	relay_copy(s->scan_after, sizeof(s->scan_after), c.last);
	/* Start after the walk: foreach forbids changes to the queue. */
	for (size_t i = 0; i < c.ndue; i++)
		if (!msg_start(s, c.due[i])) {
			/* Out of memory: what was passed over is due still. */
			s->scan_again = true;
			break;
		}
	log_scan_slice(s, &c);
	if (c.full && s->njobs >= SCHED_MAX_JOBS) {
		/* No place: the next finishing job resumes the scan here
		 * (msg_persisted()). */
		s->scan_paused = true;
		uv_timer_stop(&s->timer);
		return;
	}
	if (c.full || c.seen >= SCHED_SCAN_SLICE) {
		/* More to start or to look at: the next slice on the next
		 * loop iteration, after the loop has served everything else
		 * that is ready. */
		sched_next_slice(s);
		return;
	}
	/* The end of the index: this scan is over, and no due message waits
	 * for a place (in_flow_delay: new ones come in at once). */
	s->scanning = false;
	if (s->ctx->in_flow != NULL)
		s->ctx->in_flow(s->ctx->arg, true);
	if (s->scan_again) {
		uv_timer_start(&s->timer, sched_timer_cb, 0, 0);
		return;
	}
	uint64_t sleep_ms = SCHED_MAX_SLEEP_MS;
	if (s->scan_next_due != UINT64_MAX) {
		uint64_t t = wall_us(s);
		uint64_t delta = s->scan_next_due > t
		    ? (s->scan_next_due - t) / 1000 + 1
		    : 0;
		if (delta < sleep_ms)
			sleep_ms = delta;
	}
	uv_timer_start(&s->timer, sched_timer_cb, sleep_ms, 0);
}

/* Make sure a scan runs by when_us (wall time, an envelope's due time):
 * restart the timer only when it would fire later than that. During a
 * scan, the time is kept for the timer that follows it. */
static void
sched_arm(struct relay_sched *s, uint64_t when_us)
{
	if (s->scanning) {
		if (when_us < s->scan_next_due)
			s->scan_next_due = when_us;
		return;
	}
	uint64_t t = wall_us(s);
	uint64_t delay_ms = when_us > t ? (when_us - t) / 1000 + 1 : 0;
	if (uv_is_active((uv_handle_t *)&s->timer) &&
	    uv_timer_get_due_in(&s->timer) <= delay_ms)
		return;
	uv_timer_start(&s->timer, sched_timer_cb, delay_ms, 0);
}

static void
sched_timer_cb(uv_timer_t *t)
{
	sched_scan(t->data);
}

static void
sched_slice_cb(uv_check_t *h)
{
	struct relay_sched *s = h->data;
	uv_check_stop(&s->slice);
	uv_idle_stop(&s->slice_idle);
	sched_scan(s);
}

static void
sched_slice_idle_cb(uv_idle_t *h)
{
	(void)h; /* only keeps the poll from blocking */
}

/* The scan goes on once the loop has polled for I/O. */
static void
sched_next_slice(struct relay_sched *s)
{
	uv_timer_stop(&s->timer);
	uv_check_start(&s->slice, sched_slice_cb);
	uv_idle_start(&s->slice_idle, sched_slice_idle_cb);
}

void
relay_sched_resume_all(struct relay_sched *s)
{
	deliver__slots_resume(s);
}

void
relay_sched_kick(struct relay_sched *s)
{
	if (s->stopping)
		return;
	if (s->scanning) {
		/* What changed may lie behind the scan's cursor: one more
		 * scan after this one. */
		s->scan_again = true;
		return;
	}
	/* Kicks coalesce: however many arrive in one loop iteration, the
	 * scan starts once, on the next. */
	uv_timer_start(&s->timer, sched_timer_cb, 0, 0);
}

void
relay_sched_new_message(struct relay_sched *s, const char *id)
{
	/* A message just committed is due now: start it directly instead of
	 * rescanning the index, when a place is free and the DNSSEC self-test
	 * has spoken; otherwise the next scan finds it. */
	if (s->stopping)
		return;
	if (s->scanning) {
		/* The scan reaches it in id order, after the older messages
		 * it has not started yet (FIFO); one whose id it has passed
		 * already waits for the next scan. */
		if (strcmp(id, s->scan_after) <= 0)
			s->scan_again = true;
		return;
	}
	if (s->njobs >= SCHED_MAX_JOBS ||
	    relay_dns_validation_state(*s->ctx->dns) ==
	        RELAY_DNS_VALIDATION_UNKNOWN) {
		relay_sched_kick(s);
		return;
	}
	if (job_running(s, id))
		return;
	struct relay_queue_info info;
	if (relay_queue_lookup(s->ctx->queue, id, &info) != 0 || info.hold ||
	    info.rcpt_open == 0)
		return;
	if (!msg_start(s, id))
		relay_sched_kick(s);
}

size_t
relay_sched_active(const struct relay_sched *s)
{
	return s->njobs;
}

void
relay_sched_stats(const struct relay_sched *s, struct relay_sched_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->messages = s->njobs;
	out->cached = s->ncache;
	for (const struct msg_job *m = s->jobs; m != NULL; m = m->next)
		for (const struct dest_job *j = m->dests; j != NULL;
		     j = j->next) {
			if (j->started && !j->finished)
				out->destinations++;
			if (j->sess != NULL)
				out->connections++;
		}
}

/* control socket: whether message id has a delivery job in
 * flight, so `queue delete/hold` can refuse to touch it meanwhile. */
bool
relay_sched_is_active(const struct relay_sched *s, const char *id)
{
	return job_running(s, id);
}

bool
deliver__first_time(struct relay_sched *s, const char *key)
{
	for (const struct expired_seen *e = s->expired_seen; e != NULL;
	     e = e->next)
		if (strcmp(e->key, key) == 0)
			return false;
	size_t len = strlen(key);
	struct expired_seen *e = malloc(sizeof(*e) + len + 1);
	if (e == NULL)
		return true;
	memcpy(e->key, key, len + 1);
	e->next = s->expired_seen;
	s->expired_seen = e;
	return true;
}

int
relay_sched_new(const struct relay_deliver_ctx *ctx, struct relay_sched **out)
{
	struct relay_sched *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return RELAY_QUEUE_ENOMEM;
	s->ctx = ctx;
	s->greet_tail = &s->greet;
	if (uv_timer_init(ctx->loop, &s->timer) != 0) {
		free(s);
		return RELAY_QUEUE_EIO;
	}
	if (uv_timer_init(ctx->loop, &s->grace) != 0) {
		uv_close((uv_handle_t *)&s->timer, NULL);
		/* The timer's memory is s: freed after a loop turn is not
		 * possible here; keep s alive (startup failure exits). */
		return RELAY_QUEUE_EIO;
	}
	/* Neither can fail (libuv only fills in the handle). */
	if (uv_check_init(ctx->loop, &s->slice) != 0 ||
	    uv_idle_init(ctx->loop, &s->slice_idle) != 0)
		abort();
	s->timer.data = s;
	s->grace.data = s;
	s->slice.data = s;
	s->slice_idle.data = s;
	s->open_handles = 4;
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
	void (*done)(void *) = s->done;
	void *done_arg = s->done_arg;
	while (s->slots != NULL) {
		struct dest_slot *n = s->slots->next;
		free(s->slots);
		s->slots = n;
	}
	while (s->expired_seen != NULL) {
		struct expired_seen *n = s->expired_seen->next;
		free(s->expired_seen);
		s->expired_seen = n;
	}
	free(s);
	if (done != NULL)
		done(done_arg);
}

static void
sched_maybe_done(struct relay_sched *s)
{
	if (!s->stopping || s->njobs > 0 || s->done_called)
		return;
	s->done_called = true;
	uv_close((uv_handle_t *)&s->timer, sched_handle_closed);
	uv_close((uv_handle_t *)&s->grace, sched_handle_closed);
	uv_close((uv_handle_t *)&s->slice, sched_handle_closed);
	uv_close((uv_handle_t *)&s->slice_idle, sched_handle_closed);
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
			if (j->dns_req != NULL || j->sts_wait != NULL) {
				relay_dns_cancel(j->dns_req);
				j->dns_req = NULL;
				relay_sts_wait_cancel(j->sts_wait);
				j->sts_wait = NULL;
				deliver__dest_decide_all(j, false, "4.3.2",
				    RELAY_FAIL_CLASS_SHUTDOWN,
				    "delivery interrupted by shutdown");
				deliver__dest_finish(j);
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
	relay_log_msg(RELAY_LOG_WARNING, "shutdown",
	    "aborting deliveries in flight");
	sched_abort_all(s);
}

void
relay_sched_stop(struct relay_sched *s, uint64_t grace_ms,
    void (*done)(void *arg), void *arg)
{
	s->stopping = true;
	s->done = done;
	s->done_arg = arg;
	uv_timer_stop(&s->timer);
	uv_check_stop(&s->slice);
	uv_idle_stop(&s->slice_idle);
	deliver__cache_flush(s);
	if (s->njobs == 0) {
		sched_maybe_done(s);
		return;
	}
	uv_timer_start(&s->grace, sched_grace_cb, grace_ms, 0);
}

/* ------------------------------------------------------ local submission */

struct local_submit {
	const struct relay_deliver_ctx *ctx;
};

static void
local_committed(struct relay_queue_writer *w, int status, const char *queue_id,
    void *arg)
{
	struct local_submit *ls = arg;
	(void)w;
	struct relay_log_line l;
	if (relay_log_begin(&l, status == 0 ? RELAY_LOG_INFO : RELAY_LOG_ERROR,
	        "queued-local")) {
		relay_log_str(&l, "id", status == 0 ? queue_id : "");
		if (status != 0)
			relay_log_str(&l, "why", relay_queue_strerror(status));
		relay_log_end(&l);
	}
	if (status == 0 && ls->ctx->local_queued != NULL)
		ls->ctx->local_queued(ls->ctx->arg);
	free(ls);
}

int
relay_submit_local(const struct relay_deliver_ctx *ctx, const char *sender,
    const char *rcpt, unsigned notify, const uint8_t *content, size_t len)
{
	struct relay_queue_envelope *env = relay_queue_envelope_new();
	if (env == NULL)
		return RELAY_QUEUE_ENOMEM;
	/* Marked so that delivery can route it to notify_relayhost. */
	env->origin = RELAY_QUEUE_ORIGIN_LOCAL;
	int r = relay_queue_set_str(&env->sender, sender);
	if (r == 0)
		r = relay_queue_set_str(&env->client_addr, "local");
	if (r == 0)
		r = relay_queue_rcpt_add(env, rcpt, "", notify, NULL);
	/* A bounce carrying 8-bit headers or content is 8-bit too (RFC 6152). */
	env->content_8bit = smtp_data_has_8bit(content, len);
	struct relay_queue_writer *w = NULL;
	if (r == 0)
		r = relay_queue_msg_begin(ctx->queue, env, &w);
	relay_queue_envelope_free(env);
	if (r != 0)
		return r;
	struct local_submit *ls = malloc(sizeof(*ls));
	if (ls == NULL) {
		relay_queue_writer_abort(w);
		return RELAY_QUEUE_ENOMEM;
	}
	ls->ctx = ctx;
	r = relay_queue_writer_write(w, content, len, NULL, NULL);
	if (r == 0)
		r = relay_queue_writer_commit(w, local_committed, ls);
	if (r != 0) {
		relay_queue_writer_abort(w);
		free(ls);
	}
	return r;
}
