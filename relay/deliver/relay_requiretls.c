/*
 * relay_requiretls: what a message tagged REQUIRETLS (RFC 8689) may be
 * delivered over, and what a destination job does when an MX host falls
 * short.
 *
 * RFC 8689 4.2.1 lets such a message go only to an MX host
 *   - whose name came from DNSSEC-secure MX records (or an MTA-STS policy
 *     in enforce mode: requiretls_sts_enforced() is where that verdict
 *     plugs in),
 *   - over TLS whose certificate is authenticated (here: by DANE, a
 *     TLSA_VERDICT_DANE session, dane-ee or dane-ta),
 *   - that offers REQUIRETLS in its EHLO after STARTTLS (checked by the
 *     smtp/ client machine for every message, cached connection or not),
 * and the message then carries REQUIRETLS on MAIL FROM. A host that falls
 * short counts as failed and the next one is tried; when no host
 * qualifies the recipients are bounced with 5.7.30 (RFC 8689 5). A failure
 * that says nothing about REQUIRETLS (a host unreachable, a DNS error)
 * defers instead: that host may still qualify later.
 *
 * The sender's REQUIRETLS is above local policy: RFC 8689 4.2.1 states its
 * rules for the message "in addition to" (never instead of) the client's
 * own, so a tls_policy_file entry that lowers the level (none, may,
 * encrypt, verify) does not lower it for such a message: it gets `dane`,
 * or `dane-only` when that is the entry.
 */
#include "deliver_int.h"
#include "relay_log.h"

bool
deliver__requiretls(const struct dest_job *j)
{
	return j->m->env->requiretls;
}

/* The hook for MTA-STS (RFC 8461): true when the destination's MX host
 * names are vouched for by a policy in enforce mode. danerelay has no
 * MTA-STS yet, so no destination qualifies this way. */
static bool
requiretls_sts_enforced(const struct dest_job *j)
{
	(void)j;
	return false;
}

bool
deliver__requiretls_mx_trusted(const struct dest_job *j)
{
	/* RFC 8689 4.2.1 item 1: the MX RRset (or, without MX records, the
	 * denial that makes the domain its own MX host) must be
	 * DNSSEC-secure; bogus and indeterminate never count. */
	if (j->dns != NULL && j->dns->dest.mx.dnssec == TLSA_DNSSEC_SECURE &&
	    j->dns->dest.mx.answer != TLSA_ANSWER_ERROR)
		return true;
	return requiretls_sts_enforced(j);
}

bool
deliver__requiretls_verdict_ok(const struct tlsa_verdict *v)
{
	/* RFC 8689 4.2.1 item 3: an authenticated certificate. Only DANE
	 * authenticates here until MTA-STS adds PKIX under its policy. */
	return v->kind == TLSA_VERDICT_DANE;
}

void
deliver__requiretls_policy(struct dest_job *j)
{
	struct relay_class_policy *p = &j->policy;
	if (p->level == RELAY_TLS_DANE || p->level == RELAY_TLS_DANE_ONLY)
		return;
	struct relay_log_line l;
	if (relay_log_begin(&l, RELAY_LOG_INFO, "requiretls-policy")) {
		relay_log_str(&l, "id", j->m->id);
		relay_log_str(&l, "domain", j->domain);
		relay_log_str(&l, "policy", relay_tls_level_name(p->level));
		relay_log_str(&l, "policy_entry", p->entry);
		relay_log_str(&l, "why",
		    "REQUIRETLS message: the sender's requirement is above a "
		    "lower local level (RFC 8689 4.2.1); dane applied");
		relay_log_end(&l);
	}
	p->level = RELAY_TLS_DANE;
	p->tlsa_level = TLSA_LEVEL_DANE;
	p->cleartext = false;
	p->dane_overridden = false;
}

void
deliver__requiretls_keep(struct failure *f, const struct failure *prev)
{
	if (f->class != RELAY_FAIL_CLASS_REQUIRETLS)
		return;
	/* An earlier host that failed for another reason may still qualify
	 * later: that failure (a deferral) decides. */
	if (prev->set && prev->class != RELAY_FAIL_CLASS_REQUIRETLS) {
		*f = *prev;
		return;
	}
	f->permanent = true;
	relay_copy(f->dsn, sizeof(f->dsn), "5.7.30");
}

void
deliver__requiretls_refuse(struct dest_job *j, const char *why)
{
	struct failure prev = j->fail;
	char reason[REASON_MAX];
	relay_fmt(reason, sizeof(reason), "REQUIRETLS support required: %s",
	    why);
	deliver__fail_set(&j->fail, true, "5.7.30", RELAY_FAIL_CLASS_REQUIRETLS,
	    reason);
	deliver__requiretls_keep(&j->fail, &prev);
}
