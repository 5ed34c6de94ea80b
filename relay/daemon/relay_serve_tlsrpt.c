/*
 * relay_serve_tlsrpt: the daemon's wiring of TLS reporting (tlsrpt/):
 * deliver's TLS session outcomes become counts in the store, the sender
 * queues its mail through deliver's local submission, and the control
 * command `tlsrpt-send` starts a run. deliver/ and tlsrpt/ never see
 * each other (STYLE.md section 11).
 */
#include <stdio.h>
#include <string.h>

#include "daemon_int.h"
#include "relay_log.h"
#include "relay_text.h"

/* The TLSA records of a DANE verdict, presentation form, joined by '|'
 * (RFC 8460 4.4 policy-string: one string per record). Records that do
 * not fit RELAY_TLSRPT_POLICY_MAX are left out. */
static void
policy_string(const struct tlsa_verdict *v, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < v->n_usable; i++) {
		const struct tlsa_record *r = &v->usable[i];
		size_t need = 12 + 2 * r->data_len + 1;
		if (o + need >= size)
			break;
		o += (size_t)snprintf(buf + o, size - o, "%s%u %u %u ",
		    i > 0 ? "|" : "", r->usage, r->selector, r->mtype);
		for (size_t k = 0; k < r->data_len; k++)
			o += (size_t)snprintf(buf + o, size - o, "%02x",
			    r->data[k]);
	}
}

/* An MTA-STS policy as RFC 8460 4.4 reports it: policy-string holds its
 * lines ("version: STSv1", "mode: ...", "mx: ..." each, "max_age: ..."),
 * mx-host its mx patterns, each list joined by '|'. What does not fit
 * is left out. */
static void
sts_strings(const struct relay_sts_policy *p, char *policy, size_t psize,
    char *mx, size_t mxsize)
{
	size_t o = (size_t)snprintf(policy, psize, "version: STSv1|mode: %s",
	    relay_sts_mode_name(p->mode));
	size_t m = 0;
	mx[0] = '\0';
	for (size_t i = 0; i < p->n_mx; i++) {
		size_t n = strlen(p->mx[i]);
		if (o + n + 6 < psize)
			o += (size_t)snprintf(policy + o, psize - o, "|mx: %s",
			    p->mx[i]);
		if (m + n + 2 < mxsize)
			m += (size_t)snprintf(mx + m, mxsize - m, "%s%s",
			    m > 0 ? "|" : "", p->mx[i]);
	}
	if (o + 24 < psize)
		snprintf(policy + o, psize - o, "|max_age: %u",
		    (unsigned)p->max_age);
}

void
serve__tlsrpt_session(void *arg, const struct relay_tls_session *ev)
{
	struct relay_daemon *d = arg;
	if (d->tlsrpt_store == NULL || !d->cfg.tlsrpt_enable)
		return;
	const char *result = NULL;
	if (ev->fclass != RELAY_FAIL_CLASS_NONE) {
		result = relay_fail_class_tlsrpt_result(ev->fclass);
		if (result == NULL)
			return; /* not a TLS failure: not counted */
	}
	char policy[RELAY_TLSRPT_POLICY_MAX + 1];
	char sts_mx[512];
	struct relay_tlsrpt_session s = {
		.domain = ev->domain,
		.result = result,
	};
	/* The addresses matter only in failure-details (RFC 8460 4.4); a
	 * success adds to its policy's summary, one row per policy. */
	if (result != NULL) {
		s.reason_code = relay_fail_class_name(ev->fclass);
		s.sending_ip = ev->local_addr;
		s.receiving_mx = ev->mx;
		s.receiving_ip = ev->addr;
	}
	/* A DANE verdict applies the domain's published TLSA records (RFC
	 * 8460 4.4 "tlsa"); a host without one under the domain's MTA-STS
	 * policy applies that ("sts"); every other session had none to
	 * apply. */
	if (ev->verdict->kind == TLSA_VERDICT_DANE) {
		policy_string(ev->verdict, policy, sizeof(policy));
		s.type = RELAY_TLSRPT_POLICY_TLSA;
		s.policy = policy;
		s.policy_mx = ev->mx;
	} else if (ev->verdict->kind == TLSA_VERDICT_DO_NOT_CONNECT &&
	    ev->verdict->tlsa_looked_up && ev->mx[0] &&
	    (ev->fclass == RELAY_FAIL_CLASS_TLSA_INVALID ||
	        ev->fclass == RELAY_FAIL_CLASS_TLSA_LOOKUP ||
	        ev->fclass == RELAY_FAIL_CLASS_DNSSEC_BOGUS)) {
		/* The host's TLSA RRset was the policy, but it could not be
		 * applied (bogus, failed, or no usable record): "tlsa" for that
		 * MX host, without records to show. */
		s.type = RELAY_TLSRPT_POLICY_TLSA;
		s.policy_mx = ev->mx;
	} else if (ev->sts != NULL &&
	    ev->sts->outcome == RELAY_STS_OUTCOME_POLICY) {
		sts_strings(&ev->sts->policy, policy, sizeof(policy), sts_mx,
		    sizeof(sts_mx));
		s.type = RELAY_TLSRPT_POLICY_STS;
		s.policy = policy;
		s.policy_mx = sts_mx;
	} else {
		s.type = RELAY_TLSRPT_POLICY_NONE;
	}
	relay_tlsrpt_store_note(d->tlsrpt_store, &s);
}

static int
hook_tlsrpt_submit(void *arg, const char *sender, const char *rcpt,
    const uint8_t *content, size_t len)
{
	struct relay_daemon *d = arg;
	if (d->stopping)
		return RELAY_QUEUE_ECANCELED;
	return relay_submit_local(&d->deliver, sender, rcpt,
	    RELAY_QUEUE_NOTIFY_NEVER, content, len);
}

long
serve__tlsrpt_send(void *arg, const char *day, char *msg, size_t msglen)
{
	struct relay_daemon *d = arg;
	if (d->tlsrpt_sender == NULL) {
		relay_copy(msg, msglen, "TLS reporting is off (tlsrpt_enable)");
		return -1;
	}
	return relay_tlsrpt_sender_run(d->tlsrpt_sender, day, msg, msglen);
}

void
serve__tlsrpt_start(struct relay_daemon *d)
{
	if (!d->cfg.tlsrpt_enable)
		return;
	char err[512];
	if (relay_tlsrpt_store_open(d->loop, d->clock, d->cfg.spool_dir,
	        &d->tlsrpt_store, err, sizeof(err)) != 0) {
		/* Delivery does not depend on reporting: say so and go on
		 * without it. */
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_ERROR, "tlsrpt")) {
			relay_log_str(&l, "status", "disabled");
			relay_log_str(&l, "why", err);
			relay_log_end(&l);
		}
		d->tlsrpt_store = NULL;
		return;
	}
	struct relay_tlsrpt_send_ctx sc = {
		.loop = d->loop,
		.clock = d->clock,
		.cfg = &d->cfg,
		.dns = &d->dns,
		.submit = hook_tlsrpt_submit,
		.arg = d,
	};
	if (relay_tlsrpt_sender_start(&sc, &d->tlsrpt_sender) != 0) {
		relay_log_msg(RELAY_LOG_ERROR, "tlsrpt",
		    "cannot start sending TLS reports");
		d->tlsrpt_sender = NULL;
	}
}
