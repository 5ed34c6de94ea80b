/*
 * relay_requiretls: what a message tagged REQUIRETLS (RFC 8689) may be
 * delivered over, and what a destination job does when an MX host falls
 * short.
 *
 * RFC 8689 4.2.1 lets such a message go only to an MX host
 *   - whose name came from DNSSEC-secure MX records, or from the domain's
 *     MTA-STS policy in enforce mode (RFC 8461 4.1: the host matches one
 *     of its mx patterns),
 *   - over TLS whose certificate is authenticated: by DANE (a
 *     TLSA_VERDICT_DANE session, dane-ee or dane-ta), or by PKIX with the
 *     MX host name as reference identity under that enforce policy (RFC
 *     8461 4.2, a VERIFY session against mta_sts_ca_file, tls=sts-enforce),
 *   - that offers REQUIRETLS in its EHLO after STARTTLS (checked by the
 *     smtp/ client machine for every message, cached connection or not),
 * and the message then carries REQUIRETLS on MAIL FROM. An MTA-STS policy
 * in testing mode vouches for nothing (RFC 8461 5: it changes no
 * delivery). When the MX RRset is not DNSSEC-secure, the policy is looked
 * up even where every host has DANE (j->requiretls_sts): it alone can then
 * vouch for the names. A host that falls
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
 *
 * The `TLS-Required: No` header field (RFC 8689 4.2.2) asks the opposite:
 * that recipient-side policy (DANE, MTA-STS) be ignored for the message.
 * With tls_required_header = honour the job notes it (tls_required_no),
 * and the MTA-STS step (dest_sts_applies() in relay_dest.c) then sets the
 * domain's policy aside; the DANE policy never does: an unauthenticated header must not lower what the
 * operator requires for DANE domains. REQUIRETLS on MAIL FROM wins over
 * the header (4.2.2).
 */
#include <strings.h>

#include "deliver_int.h"
#include "relay_log.h"

bool
deliver__requiretls(const struct dest_job *j)
{
	return j->m->env->requiretls;
}

/* RFC 8689 4.2.1 item 1, second way: the domain's MTA-STS policy is in
 * enforce mode and host matches one of its mx patterns (RFC 8461 4.1).
 * A policy in testing mode, none, or a failed discovery never vouches. */
static bool
requiretls_sts_enforced(const struct dest_job *j, const char *host)
{
	const struct relay_sts_answer *a = j->sts;
	return a != NULL && a->outcome == RELAY_STS_OUTCOME_POLICY &&
	    a->policy.mode == RELAY_STS_MODE_ENFORCE &&
	    relay_sts_mx_match(&a->policy, host);
}

bool
deliver__requiretls_mx_secure(const struct dest_job *j)
{
	/* RFC 8689 4.2.1 item 1: the MX RRset (or, without MX records, the
	 * denial that makes the domain its own MX host) must be
	 * DNSSEC-secure; bogus and indeterminate never count. */
	return j->dns != NULL && j->dns->dest.mx.dnssec == TLSA_DNSSEC_SECURE &&
	    j->dns->dest.mx.answer != TLSA_ANSWER_ERROR;
}

bool
deliver__requiretls_host_vouched(const struct dest_job *j, const char *host)
{
	return deliver__requiretls_mx_secure(j) ||
	    requiretls_sts_enforced(j, host);
}

bool
deliver__requiretls_verdict_ok(const struct tlsa_verdict *v,
    enum relay_sts_use sts)
{
	/* RFC 8689 4.2.1 item 3: an authenticated certificate: DANE, or
	 * PKIX for the MX host name under an MTA-STS enforce policy (RFC
	 * 8461 4.2; relay_class_sts_host() made the verdict VERIFY). */
	return v->kind == TLSA_VERDICT_DANE ||
	    (sts == RELAY_STS_USE_ENFORCE && v->kind == TLSA_VERDICT_VERIFY);
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

/* Whether the header section of content (up to the first empty line)
 * holds a `TLS-Required: No` field (RFC 8689 4.2.2: the value "No",
 * case-insensitive, with folding white space around it). */
static bool
content_tls_required_no(const uint8_t *p, size_t len)
{
	static const char name[] = "TLS-Required";
	size_t nl = sizeof(name) - 1;
	size_t i = 0;
	while (i < len) {
		size_t e = i;
		while (e < len && p[e] != '\n')
			e++;
		size_t ll = e > i && p[e - 1] == '\r' ? e - 1 - i : e - i;
		if (ll == 0)
			return false; /* end of the header section */
		if (ll > nl &&
		    strncasecmp((const char *)p + i, name, nl) == 0) {
			/* The name, optional WSP, ':' and the unfolded value
			 * (continuation lines start with WSP). */
			size_t k = i + nl;
			while (k < i + ll && (p[k] == ' ' || p[k] == '\t'))
				k++;
			if (k < i + ll && p[k] == ':') {
				char val[8];
				size_t vn = 0;
				bool over = false;
				size_t q = k + 1;
				for (;;) {
					for (; q < i + ll; q++) {
						if (p[q] == ' ' || p[q] == '\t')
							continue;
						if (vn + 1 >= sizeof(val)) {
							over = true;
							break;
						}
						val[vn++] = (char)p[q];
					}
					/* A folded continuation belongs to it. */
					size_t nx = e + 1;
					if (over || nx >= len ||
					    (p[nx] != ' ' && p[nx] != '\t'))
						break;
					e = nx;
					while (e < len && p[e] != '\n')
						e++;
					i = nx;
					ll = e > i && p[e - 1] == '\r'
					    ? e - 1 - i
					    : e - i;
					q = i;
				}
				val[vn] = '\0';
				if (!over && strcasecmp(val, "No") == 0)
					return true;
			}
		}
		i = e + 1;
	}
	return false;
}

void
deliver__tls_required_header(struct dest_job *j)
{
	const struct msg_job *m = j->m;
	j->tls_required_no = false;
	if (m->content == NULL ||
	    !content_tls_required_no(m->content, m->content_len))
		return;
	const char *action;
	const char *why;
	if (deliver__requiretls(j)) {
		action = "ignored";
		why = "REQUIRETLS was given: the header field is ignored "
		      "(RFC 8689 4.2.2)";
	} else if (j->m->s->ctx->cfg->tls_required_header ==
	    RELAY_TLS_REQUIRED_HEADER_HONOUR) {
		action = "honoured";
		why = "tls_required_header = honour: recipient MTA-STS policy "
		      "may be skipped; the DANE policy still applies";
		j->tls_required_no = true;
	} else {
		action = "ignored";
		why = "tls_required_header = ignore";
	}
	struct relay_log_line l;
	if (relay_log_begin(&l, RELAY_LOG_INFO, "tls-required-header")) {
		relay_log_str(&l, "id", m->id);
		relay_log_str(&l, "domain", j->domain);
		relay_log_str(&l, "action", action);
		relay_log_str(&l, "why", why);
		relay_log_end(&l);
	}
}
