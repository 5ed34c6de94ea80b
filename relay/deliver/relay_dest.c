/*
 * relay_dest: one destination job = one message x one recipient domain.
 *
 *   DNS         relay_dns_resolve(): MX, A/AAAA, TLSA with DNSSEC status.
 *   policy      tlsa_policy_destination() and tlsa_policy_decide() for each
 *               MX host in preference order (RFC 7672 2.2.1: preference
 *               before channel security, C27-C29).
 *   addresses   each host's addresses in order, through relay_outbound.c:
 *               a parked verified connection with the same key, or a new
 *               session.
 *
 * A DANE, TLS or DNSSEC failure at one MX host moves on to the next host
 * (C19, C21, C24); when none is left the recipients are deferred with the
 * failure's enhanced status (4.7.5 for DANE/TLSA/DNSSEC) and class. At most
 * destination_concurrency_limit jobs per domain run at once (slots); a
 * domain starts at initial_destination_concurrency and each job that
 * reaches a server lets one more run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver_int.h"
#include "relay_class.h"
#include "relay_log.h"

/* TLSA data kept per record in the attempt details: a SHA2-512 digest in
 * full; Full(0) certificates and keys are cut (".."), their digest is what
 * an operator compares. */
#define TLSA_SHOWN_MAX 64


void
deliver__fail_set(struct failure *f, bool permanent, const char *dsn,
    enum relay_fail_class class, const char *reason)
{
	f->set = true;
	f->permanent = permanent;
	relay_copy(f->dsn, sizeof(f->dsn), dsn);
	f->class = class;
	relay_copy(f->reason, sizeof(f->reason), reason);
}


void
deliver__rcpt_decide(struct dest_job *j, size_t k,
    enum relay_queue_rcpt_status st, const char *dsn,
    enum relay_fail_class class, const char *reason)
{
	struct rcpt_out *o = &j->out[k];
	if (o->decided)
		return;
	o->decided = true;
	o->status = st;
	relay_copy(o->dsn, sizeof(o->dsn), dsn);
	o->class = class;
	relay_copy(o->reason, sizeof(o->reason), reason);
}

void
deliver__dest_decide_all(struct dest_job *j, bool permanent, const char *dsn,
    enum relay_fail_class class, const char *reason)
{
	for (size_t k = 0; k < j->nr; k++)
		deliver__rcpt_decide(j, k,
		    permanent ? RELAY_QUEUE_RCPT_BOUNCED
		              : RELAY_QUEUE_RCPT_DEFERRED,
		    dsn, class, reason);
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
	relay_copy(in->mx, sizeof(in->mx), h->name);
	in->addr[0] = '\0';
	in->port = 0;
	relay_copy(in->dnssec_mx, sizeof(in->dnssec_mx),
	    j->dns->implicit_mx ? "none"
	                        : relay_class_dnssec_word(j->dns->dest.mx));
	relay_copy(in->dnssec_addr, sizeof(in->dnssec_addr),
	    relay_class_dnssec_word(h->in.addr));
	in->tlsa[0] = '\0';
	if (h->in.n_tlsa == 0) {
		relay_copy(in->dnssec_tlsa, sizeof(in->dnssec_tlsa),
		    "not-looked-up");
	} else {
		const struct tlsa_tlsa_in *t = &h->in.tlsa[h->in.n_tlsa - 1];
		relay_copy(in->dnssec_tlsa, sizeof(in->dnssec_tlsa),
		    t->res.answer == TLSA_ANSWER_NODATA ||
		            t->res.answer == TLSA_ANSWER_NXDOMAIN
		        ? (t->res.dnssec == TLSA_DNSSEC_SECURE
		                  ? "secure-nodata"
		                  : "insecure-nodata")
		        : relay_class_dnssec_word(t->res));
		size_t off = 0;
		for (size_t i = 0; i < t->n_recs && off + 24 < sizeof(in->tlsa);
		     i++) {
			const struct tlsa_record *rec = &t->recs[i];
			int w = snprintf(in->tlsa + off, sizeof(in->tlsa) - off,
			    "%s%u %u %u ", i ? "; " : "", rec->usage,
			    rec->selector, rec->mtype);
			if (w < 0 || (size_t)w >= sizeof(in->tlsa) - off)
				break;
			off += (size_t)w;
			for (size_t b = 0; b < rec->data_len &&
			     b < TLSA_SHOWN_MAX && off + 3 < sizeof(in->tlsa);
			     b++, off += 2)
				snprintf(in->tlsa + off, 3, "%02x",
				    rec->data[b]);
			if (rec->data_len > TLSA_SHOWN_MAX &&
			    off + 3 < sizeof(in->tlsa)) {
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
	if (!relay_log_begin(&l,
	        v->kind == TLSA_VERDICT_DO_NOT_CONNECT ? RELAY_LOG_INFO
	                                               : RELAY_LOG_DEBUG,
	        "dane-decision"))
		return;
	relay_log_str(&l, "id", j->m->id);
	relay_log_str(&l, "domain", j->domain);
	if (j->domain_utf8[0] != '\0')
		relay_log_str(&l, "domain_utf8", j->domain_utf8);
	relay_log_str(&l, "mx", j->info.mx);
	if (tlsa_verdict_format(v, buf, sizeof(buf)) == 0 || buf[0])
		relay_log_str(&l, "decision", buf);
	relay_log_end(&l);
}

/* A tls_policy_file entry switches DANE off for this destination: say so,
 * once per delivery, with the entry, so a forgotten override is visible
 * (RFC 7672 2.2 C25 lets local policy decide; it must not do so silently). */
static void
log_dane_overridden(const struct dest_job *j)
{
	struct relay_log_line l;
	/* A warning on each use: DANE was switched off by hand for a
	 * destination that may publish TLSA records. */
	if (!relay_log_begin(&l, RELAY_LOG_WARNING, "dane-overridden"))
		return;
	relay_log_str(&l, "id", j->m->id);
	relay_log_str(&l, "domain", j->domain);
	relay_log_str(&l, "policy", relay_tls_level_name(j->policy.level));
	relay_log_str(&l, "policy_entry", j->policy.entry);
	if (j->policy.reason[0] != '\0')
		relay_log_str(&l, "policy_reason", j->policy.reason);
	if (j->policy.until[0] != '\0')
		relay_log_str(&l, "policy_until", j->policy.until);
	relay_log_str(&l, "why",
	    j->policy.cleartext
	        ? "tls_policy_file entry: no DANE, no TLSA lookups, cleartext without STARTTLS"
	        : "tls_policy_file entry: no DANE, no TLSA lookups");
	relay_log_end(&l);
}

/* The policy forbade connecting to host (a DO_NOT_CONNECT verdict with
 * class cls): for TLS reporting that is a session attempt that failed
 * before it began (RFC 8460 4.3.2: tlsa-invalid, dnssec-invalid,
 * dane-required). The owner keeps only classes that have a result type. */
static void
dest_count_refused(const struct dest_job *j, const char *host,
    enum relay_fail_class cls)
{
	const struct relay_deliver_ctx *ctx = j->m->s->ctx;
	if (ctx->tls_session == NULL || j->domain[0] == '\0')
		return;
	struct relay_tls_session ev = {
		.domain = j->domain,
		.mx = host,
		.addr = "",
		.local_addr = "",
		.verdict = &j->verdict,
		.fclass = cls,
	};
	ctx->tls_session(ctx->arg, &ev);
}

/* A time-boxed tls_policy_file entry has passed its until= date and no
 * longer applies: say so once per entry (per scheduler), at warning
 * level, so the operator learns that the default policy is back. */
static void
log_exception_expired(struct relay_sched *s,
    const struct relay_tls_policy_entry *e)
{
	char key[RELAY_CLASS_POLICY_ENTRY_MAX + RELAY_DNS_HOST_MAX + 2];
	(void)snprintf(key, sizeof(key), "%s:%u %s", e->file, e->line,
	    e->domain);
	if (!deliver__first_time(s, key))
		return;
	struct relay_log_line l;
	if (!relay_log_begin(&l, RELAY_LOG_WARNING, "policy-exception-expired"))
		return;
	relay_log_str(&l, "domain", e->domain);
	relay_log_strf(&l, "policy_entry", "%s:%u", e->file, e->line);
	relay_log_str(&l, "policy", relay_tls_level_name(e->level));
	relay_log_str(&l, "until", e->until);
	relay_log_str(&l, "reason", e->reason);
	relay_log_str(&l, "effect",
	    "the entry no longer applies; the next matching entry or "
	    "tls_security_level decides");
	relay_log_end(&l);
}

/* ------------------------------------------------------------ MTA-STS */

/* Whether MTA-STS is asked about for this destination: on, the level is
 * opportunistic DANE (global or per destination; MTA-STS never overrides
 * another local policy), and some MX host has no DANE (RFC 8461 2: a
 * destination whose hosts all have usable TLSA is DANE's alone, and its
 * delivery never waits for, or fails on, an MTA-STS lookup). */
static bool
dest_sts_on(const struct dest_job *j)
{
	const struct relay_deliver_ctx *ctx = j->m->s->ctx;
	/* A `TLS-Required: No` the operator lets count (RFC 8689 4.2.2,
	 * tls_required_header = honour) sets recipient-side MTA-STS aside;
	 * DANE is never set aside. */
	return ctx->sts != NULL && ctx->cfg->mta_sts_enable &&
	    j->level == TLSA_LEVEL_DANE && !j->tls_required_no;
}

static bool
dest_sts_applies(const struct dest_job *j)
{
	return dest_sts_on(j) &&
	    relay_class_sts_wanted(j->dns, j->m->s->ctx->digests);
}

static void
log_sts_decision(const struct dest_job *j, const char *mx, const char *what,
    enum relay_log_level lvl)
{
	struct relay_log_line l;
	if (!relay_log_begin(&l, lvl, "mta-sts-decision"))
		return;
	relay_log_str(&l, "id", j->m->id);
	relay_log_str(&l, "domain", j->domain);
	relay_log_str(&l, "mx", mx);
	relay_log_str(&l, "mode", relay_sts_mode_name(j->sts->policy.mode));
	relay_log_str(&l, "policy_id", j->sts->id);
	if (j->sts->from_cache)
		relay_log_str(&l, "policy_source", "cache");
	relay_log_str(&l, "decision", what);
	relay_log_end(&l);
}

/*
 * MTA-STS for host h, after its RFC 7672 verdict (RFC 8461 2: a host with
 * a secure TLSA RRset is DANE's alone; MTA-STS never weakens it). Under an
 * enforce policy a MAY or ENCRYPT verdict becomes VERIFY for the MX host
 * name (4.2: PKIX, RFC 6125 with the MX host as reference identity) and a
 * host that matches no mx pattern is refused (4.1). Returns false when the
 * host must be skipped (j->fail says why).
 */
static bool
dest_sts_host(struct dest_job *j, const struct relay_dns_host *h)
{
	bool match;
	enum relay_fail_class cls = RELAY_FAIL_CLASS_NONE;
	char why[REASON_MAX];
	j->sts_host = relay_class_sts_host(j->sts, j->domain, h->name,
	    &j->verdict, &match, &cls, why, sizeof(why));
	switch (j->sts_host) {
	case RELAY_STS_USE_OFF:
		return true;
	case RELAY_STS_USE_TESTING:
		/* RFC 8461 5: testing delivers as without a policy; what
		 * enforce would refuse is reported. */
		if (!match) {
			j->sts_would_fail = RELAY_FAIL_CLASS_STS_MX_MISMATCH;
			log_sts_decision(j, h->name,
			    "would-fail class=sts-mx-mismatch", RELAY_LOG_INFO);
		}
		return true;
	case RELAY_STS_USE_ENFORCE:
		log_sts_decision(j, h->name, "enforce", RELAY_LOG_DEBUG);
		return true;
	case RELAY_STS_USE_REFUSE:
		break;
	}
	deliver__fail_set(&j->fail, false, "4.7.5", cls, why);
	if (cls == RELAY_FAIL_CLASS_STS_MX_MISMATCH)
		log_sts_decision(j, h->name, "refused class=sts-mx-mismatch",
		    RELAY_LOG_INFO);
	j->sts_host = RELAY_STS_USE_OFF;
	return false;
}

static void dest_hosts_start(struct dest_job *j);

/*
 * RFC 8689 4.2.1 for host h of a REQUIRETLS message, after its RFC 7672
 * verdict: the MTA-STS step first (an enforce policy turns a verdict
 * without DANE into PKIX for the MX name), then the name must be vouched
 * for (DNSSEC-secure MX records, or the enforce policy names the host) and
 * the TLS authenticated (DANE, or that PKIX). Returns false when the host
 * must be skipped (j->fail says why: 5.7.30, or a deferral when the policy
 * could not be discovered).
 */
static bool
dest_requiretls_host(struct dest_job *j, const struct relay_dns_host *h)
{
	struct failure prev = j->fail;
	char why[REASON_MAX];
	if (!dest_sts_host(j, h)) {
		if (j->fail.class != RELAY_FAIL_CLASS_STS_MX_MISMATCH)
			return false; /* discovery failed: may qualify later */
		j->fail = prev;
		relay_fmt(why, sizeof(why),
		    "%s matches no mx of the MTA-STS policy (enforce)",
		    h->name);
		deliver__requiretls_refuse(j, why);
		return false;
	}
	if (!deliver__requiretls_verdict_ok(&j->verdict, j->sts_host)) {
		relay_fmt(why, sizeof(why),
		    "%s: no DANE-authenticated TLS and no MTA-STS policy in "
		    "enforce mode for it (%s%s)",
		    h->name, tlsa_verdict_kind_name(j->verdict.kind),
		    j->sts_host == RELAY_STS_USE_TESTING ? ", mta-sts testing"
		                                         : "");
		deliver__requiretls_refuse(j, why);
		return false;
	}
	if (!deliver__requiretls_host_vouched(j, h->name)) {
		relay_fmt(why, sizeof(why),
		    "%s: the MX records are not DNSSEC-secure and no MTA-STS "
		    "policy in enforce mode names this host",
		    h->name);
		deliver__requiretls_refuse(j, why);
		return false;
	}
	return true;
}

/*
 * A REQUIRETLS message whose MX RRset is not DNSSEC-secure, once the
 * domain's MTA-STS policy is known: only an enforce policy can vouch for
 * the MX names (RFC 8689 4.2.1). A failed discovery defers (it may work
 * later, RFC 8461 3.3 does not apply to a fail-closed lookup); no policy,
 * or one in testing or none mode, bounces 5.7.30 as without MTA-STS.
 * Returns false when the job was decided and finished.
 */
static bool
dest_requiretls_sts_ready(struct dest_job *j)
{
	if (!j->requiretls_sts)
		return true;
	const struct relay_sts_answer *a = j->sts;
	char why[REASON_MAX];
	if (a != NULL && a->outcome == RELAY_STS_OUTCOME_POLICY &&
	    a->policy.mode == RELAY_STS_MODE_ENFORCE)
		return true;
	if (a != NULL && a->outcome == RELAY_STS_OUTCOME_FAILED) {
		relay_fmt(why, sizeof(why),
		    "%s: MTA-STS policy discovery failed: %s", j->domain,
		    a->why);
		deliver__dest_decide_all(j, false, "4.7.5",
		    RELAY_FAIL_CLASS_STS_POLICY_FETCH, why);
	} else {
		relay_fmt(why, sizeof(why),
		    "REQUIRETLS support required: the MX records of %s are "
		    "not DNSSEC-secure (%s) and no MTA-STS policy in enforce "
		    "mode vouches for them (%s)",
		    j->domain, relay_class_dnssec_word(j->dns->dest.mx),
		    a == NULL || a->outcome != RELAY_STS_OUTCOME_POLICY
		        ? "no policy"
		        : relay_sts_mode_name(a->policy.mode));
		deliver__dest_decide_all(j, true, "5.7.30",
		    RELAY_FAIL_CLASS_REQUIRETLS, why);
	}
	deliver__dest_finish(j);
	return false;
}

static void
dest_sts_done(void *arg, const struct relay_sts_answer *ans)
{
	struct dest_job *j = arg;
	j->sts_wait = NULL;
	*j->sts = *ans;
	dest_hosts_start(j);
}

/* Try the next address of the current host, or the next host, or finish. */
void
deliver__dest_next(struct dest_job *j)
{
	struct relay_sched *s = j->m->s;

	if (j->notify && j->nexthop.literal) {
		/* An address as notify_relayhost: no DNS result to walk. */
		deliver__relayhost_next(j);
		return;
	}

	for (;;) {
		if (dest_all_decided(j) || s->aborting) {
			deliver__dest_finish(j);
			return;
		}
		if (j->host_i >= j->dns->nhosts ||
		    j->addrs_tried >= DEST_ADDRS_TOTAL) {
			/* No MX host left: the last failure decides (4.7.5 for
			 * DANE, TLSA and DNSSEC failures). */
			if (!j->fail.set)
				deliver__fail_set(&j->fail, false, "4.4.3",
				    RELAY_FAIL_CLASS_DNS_LOOKUP,
				    "no usable MX host");
			j->all_mx_failed = j->addrs_tried > 0;
			/* Only a REQUIRETLS refusal at every host is final
			 * (relay_requiretls.c); every other failure defers. */
			deliver__dest_decide_all(j,
			    j->fail.permanent &&
			        j->fail.class == RELAY_FAIL_CLASS_REQUIRETLS,
			    j->fail.dsn, j->fail.class, j->fail.reason);
			deliver__dest_finish(j);
			return;
		}
		const struct relay_dns_host *h = &j->dns->hosts[j->host_i];
		if (j->addr_i == 0) {
			/* First visit of this host: the RFC 7672 decision. */
			info_from_host(j, h);
			tlsa_verdict_release(&j->verdict);
			int r = tlsa_policy_decide(&j->dns->dest, &h->in,
			    s->ctx->digests, &j->verdict);
			if (r != 0) {
				/* Facts the policy cannot judge: never guess. */
				char why[128];
				relay_fmt(why, sizeof(why),
				    "DANE policy error for %s: %s", h->name,
				    tlsa_strerror(r));
				deliver__fail_set(&j->fail, false, "4.7.5",
				    RELAY_FAIL_CLASS_DNSSEC_BOGUS, why);
				j->host_i++;
				continue;
			}
			log_decision(j, &j->verdict);
			if (j->verdict.kind == TLSA_VERDICT_DO_NOT_CONNECT) {
				enum relay_fail_class cls =
				    relay_class_dns(j->verdict.fclass, j->dns,
				        h);
				char why[REASON_MAX];
				relay_fmt(why, sizeof(why), "%s: %s", h->name,
				    j->verdict.reason);
				deliver__fail_set(&j->fail,
				    j->verdict.permanent, j->verdict.status,
				    cls, why);
				dest_count_refused(j,
				    j->verdict.scope == TLSA_SCOPE_HOST
				        ? h->name
				        : "",
				    cls);
				if (j->verdict.scope ==
				    TLSA_SCOPE_DESTINATION) {
					deliver__dest_decide_all(j,
					    j->verdict.permanent,
					    j->verdict.status, cls, why);
					deliver__dest_finish(j);
					return;
				}
				j->host_i++; /* C10, C14: skip this host */
				continue;
			}
			j->sts_would_fail = RELAY_FAIL_CLASS_NONE;
			if (deliver__requiretls(j)) {
				/* RFC 8689 4.2.1: nothing is sent to a host
				 * that cannot carry the message. */
				if (!dest_requiretls_host(j, h)) {
					j->host_i++;
					continue;
				}
			} else if (!dest_sts_host(j, h)) {
				j->host_i++; /* RFC 8461 4.1: not a policy MX */
				continue;
			}
		}
		if (j->addr_i >= h->naddrs ||
		    j->addr_i >= DEST_ADDRS_PER_HOST) {
			j->host_i++;
			j->addr_i = 0;
			continue;
		}
		const struct relay_dns_addr *a = &h->addrs[j->addr_i++];
		j->addrs_tried++;
		/* The level chosen at the start, which the DNS lookups and the
		 * verdict followed (a reload meanwhile does not split them). */
		bool cleartext = j->policy.cleartext;
		/* A parked connection to this very host and address, made under
		 * the same level and an identical verdict, with TLS up (or, for
		 * a `none` entry, made in cleartext by that policy), serves this
		 * message too. */
		char atext[INET6_ADDRSTRLEN];
		uint8_t key[32];
		if (s->ncache > 0 &&
		    inet_ntop(a->family, a->bytes, atext, sizeof(atext)) !=
		        NULL &&
		    tlsa_verdict_cache_key(&j->verdict,
		        cleartext ? TLSA_CHANNEL_CLEARTEXT_POLICY
		                  : TLSA_CHANNEL_TLS,
		        key) == 0) {
			struct out_sess *c =
			    deliver__cache_take(s, h->name, atext, j->port, key,
			        deliver__requiretls(j), j->domain);
			if (c != NULL) {
				if (deliver__sess_reuse(c, j))
					return;
				continue;
			}
		}
		if (deliver__sess_start(j, a,
		        deliver__tls_mode(&j->verdict, cleartext)))
			return; /* sess_end() calls deliver__dest_next() again */
	}
}

/* What one host's TLSA lookup said, for the routing monitor. */
static enum relay_monitor_tlsa
monitor_tlsa_state(const struct relay_dns_host *h,
    const struct tlsa_tlsa_in **used)
{
	*used = NULL;
	if (h->in.n_tlsa == 0)
		return RELAY_MONITOR_TLSA_NOT_LOOKED_UP;
	const struct tlsa_tlsa_in *t = &h->in.tlsa[h->in.n_tlsa - 1];
	if (t->malformed || t->res.answer == TLSA_ANSWER_ERROR ||
	    t->res.dnssec == TLSA_DNSSEC_BOGUS ||
	    t->res.dnssec == TLSA_DNSSEC_INDETERMINATE)
		return RELAY_MONITOR_TLSA_FAILED;
	if (t->res.dnssec == TLSA_DNSSEC_INSECURE)
		return RELAY_MONITOR_TLSA_INSECURE;
	if (t->res.answer != TLSA_ANSWER_DATA)
		return RELAY_MONITOR_TLSA_SECURE_NODATA;
	*used = t;
	return RELAY_MONITOR_TLSA_SECURE_DATA;
}

/*
 * Hand the destination's DNS to the routing monitor (relay_monitor.h),
 * which logs what changed since the last delivery to it. Only for usable
 * MX answers: a failed lookup defers and says nothing about the routing.
 */
void
deliver__monitor_dns(struct dest_job *j)
{
	struct relay_monitor *mon = j->m->s->ctx->monitor;
	const struct relay_dns_result *res = j->dns;
	/* The notify_relayhost hop is configuration, not routing. */
	if (j->notify || mon == NULL || !relay_monitor_ready(mon) ||
	    res == NULL || res->kind != RELAY_DNS_DEST_HOSTS)
		return;
	size_t nh = res->nhosts < RELAY_MONITOR_HOSTS_MAX
	    ? res->nhosts
	    : RELAY_MONITOR_HOSTS_MAX;
	size_t na = 0;
	for (size_t i = 0; i < nh; i++)
		na += res->hosts[i].naddrs;
	struct relay_monitor_host_obs hosts[RELAY_MONITOR_HOSTS_MAX];
	struct relay_monitor_addr *addrs =
	    na > 0 ? calloc(na, sizeof(*addrs)) : NULL;
	if (na > 0 && addrs == NULL)
		return; /* the monitor only reports: skip this observation */
	size_t off = 0;
	for (size_t i = 0; i < nh; i++) {
		const struct relay_dns_host *h = &res->hosts[i];
		struct relay_monitor_host_obs *ho = &hosts[i];
		const struct tlsa_tlsa_in *t;
		memset(ho, 0, sizeof(*ho));
		ho->name = h->name;
		ho->pref = h->pref;
		ho->addr_usable = !h->bad_name &&
		    h->in.addr.answer != TLSA_ANSWER_ERROR &&
		    (h->in.addr.dnssec == TLSA_DNSSEC_SECURE ||
		        h->in.addr.dnssec == TLSA_DNSSEC_INSECURE);
		ho->addr_secure =
		    ho->addr_usable && h->in.addr.dnssec == TLSA_DNSSEC_SECURE;
		ho->addrs = addrs != NULL ? addrs + off : NULL;
		for (size_t k = 0; addrs != NULL && k < h->naddrs; k++) {
			addrs[off + k].family = h->addrs[k].family;
			memcpy(addrs[off + k].bytes, h->addrs[k].bytes, 16);
		}
		ho->naddrs = h->naddrs;
		off += h->naddrs;
		ho->tlsa = monitor_tlsa_state(h, &t);
		if (t != NULL) {
			ho->recs = t->recs;
			ho->nrecs = t->n_recs;
		}
	}
	struct relay_monitor_dns_obs o = {
		.domain = res->domain,
		/* For an implicit MX this is the security of the proof that
		 * there is no MX RRset. */
		.mx_secure = res->dest.mx.dnssec == TLSA_DNSSEC_SECURE,
		.implicit_mx = res->implicit_mx,
		.hosts = hosts,
		.nhosts = nh,
	};
	j->mon_kinds |= relay_monitor_observe_dns(mon, j->m->id, &o);
	free(addrs);
}

void
deliver__dest_dns_done(void *arg, struct relay_dns_result *res)
{
	struct dest_job *j = arg;
	j->dns_req = NULL;
	j->dns = res;
	j->port = res->dest.port;
	memset(&j->info, 0, sizeof(j->info));
	j->info.depth = -1;

	struct tlsa_dest_verdict dv;
	int r = tlsa_policy_destination(&res->dest, &dv);
	if (r != 0) {
		deliver__dest_decide_all(j, false, "4.7.5",
		    RELAY_FAIL_CLASS_DNS_LOOKUP, "DANE policy error");
		deliver__dest_finish(j);
		return;
	}
	switch (dv.action) {
	case TLSA_DEST_DEFER:
	case TLSA_DEST_BOUNCE: {
		enum relay_fail_class cls = res->kind == RELAY_DNS_DEST_NULL_MX
		    ? RELAY_FAIL_CLASS_NULL_MX
		    : relay_class_dns(dv.fclass, res, NULL);
		char why[REASON_MAX];
		relay_fmt(why, sizeof(why), "%s: %s", j->domain, dv.reason);
		relay_copy(j->info.dnssec_mx, sizeof(j->info.dnssec_mx),
		    relay_class_dnssec_word(res->dest.mx));
		deliver__dest_decide_all(j, dv.action == TLSA_DEST_BOUNCE,
		    dv.status, cls, why);
		deliver__dest_finish(j);
		return;
	}
	case TLSA_DEST_LITERAL:
		deliver__dest_decide_all(j, true, "5.1.2",
		    RELAY_FAIL_CLASS_ADDRESS,
		    "address literal destinations are not supported");
		deliver__dest_finish(j);
		return;
	case TLSA_DEST_USE_MX:
	case TLSA_DEST_IMPLICIT:
		break;
	}
	deliver__monitor_dns(j);
	/* MX records that are not DNSSEC-secure: only an MTA-STS policy in
	 * enforce mode can vouch for the hosts of a REQUIRETLS message. */
	bool rt_insecure =
	    deliver__requiretls(j) && !deliver__requiretls_mx_secure(j);
	j->requiretls_sts = rt_insecure && dest_sts_on(j);
	if (rt_insecure && !j->requiretls_sts) {
		/* RFC 8689 4.2.1: no MX host of this domain can carry the
		 * message, now or on a retry of the same answer. */
		char why[REASON_MAX];
		relay_fmt(why, sizeof(why),
		    "REQUIRETLS support required: the MX records of %s are "
		    "not DNSSEC-secure (%s)",
		    j->domain, relay_class_dnssec_word(res->dest.mx));
		relay_copy(j->info.dnssec_mx, sizeof(j->info.dnssec_mx),
		    relay_class_dnssec_word(res->dest.mx));
		deliver__dest_decide_all(j, true, "5.7.30",
		    RELAY_FAIL_CLASS_REQUIRETLS, why);
		deliver__dest_finish(j);
		return;
	}
	if (j->requiretls_sts || dest_sts_applies(j)) {
		j->sts = malloc(sizeof(*j->sts));
		if (j->sts == NULL) {
			deliver__dest_decide_all(j, false, "4.3.0",
			    RELAY_FAIL_CLASS_LOCAL, "out of memory");
			deliver__dest_finish(j);
			return;
		}
		/* A domain the cache knows is answered at once; only a new
		 * one waits, for one TXT lookup and one bounded fetch. */
		int sr = relay_sts_get(j->m->s->ctx->sts, j->domain, j->sts,
		    dest_sts_done, j, &j->sts_wait);
		if (sr == 0)
			return;
		if (sr < 0) {
			deliver__dest_decide_all(j, false, "4.3.0",
			    RELAY_FAIL_CLASS_LOCAL,
			    "MTA-STS policy cache unavailable");
			deliver__dest_finish(j);
			return;
		}
	}
	dest_hosts_start(j);
}

static void
dest_hosts_start(struct dest_job *j)
{
	if (!dest_requiretls_sts_ready(j))
		return;
	j->host_i = 0;
	j->addr_i = 0;
	deliver__dest_next(j);
}


static uint64_t
mono_us(const struct relay_sched *s)
{
	return relay_clock_mono_us(s->ctx->clock);
}

static bool
slot_has_room(const struct relay_sched *s, const struct dest_slot *slot)
{
	/* A suspended domain, or one being probed after its suspension, runs
	 * one job at a time (struct dest_slot). */
	if (slot->suspended_until_us != 0)
		return slot->active < 1;
	if (slot->active >= slot->window)
		return false;
	int64_t lim = s->ctx->cfg->destination_concurrency_limit;
	return lim <= 0 || slot->active < (size_t)lim;
}

/* Whether jobs for slot at level are deferred without an attempt now. A
 * suspension made under another level (a reload changed the policy) does
 * not apply: the new policy gets its own attempt. */
static bool
slot_suspended(const struct relay_sched *s, const struct dest_slot *slot,
    enum tlsa_level level)
{
	return slot->suspended_until_us != 0 &&
	    slot->suspended_level == level &&
	    mono_us(s) < slot->suspended_until_us;
}

/* Classes that say the destination cannot be delivered to this way, as
 * opposed to this relay being unable to try (shutdown, memory, disk). */
static bool
fail_suspends(enum relay_fail_class c)
{
	return c != RELAY_FAIL_CLASS_SHUTDOWN && c != RELAY_FAIL_CLASS_LOCAL &&
	    c != RELAY_FAIL_CLASS_NONE;
}

static void
log_suspended(const struct relay_sched *s, const struct dest_slot *slot)
{
	struct relay_log_line l;
	if (!relay_log_begin(&l, RELAY_LOG_INFO, "destination-suspended"))
		return;
	relay_log_str(&l, "domain", slot->domain);
	relay_log_ms(&l, "for", s->ctx->cfg->retry_min_ms);
	relay_log_str(&l, "dsn", slot->suspended_by.dsn);
	relay_log_str(&l, "class",
	    relay_fail_class_name(slot->suspended_by.class));
	relay_log_str(&l, "reason", slot->suspended_by.reason);
	relay_log_end(&l);
}

/* What job j, which is ending, says about its domain: every address it
 * tried failed (suspend, or renew the suspension), or it reached a
 * server (lift it). Jobs that made no attempt say nothing. */
static void
slot_learn(struct relay_sched *s, struct dest_slot *slot,
    const struct dest_job *j)
{
	if (j->addrs_tried == 0 || s->aborting)
		return;
	if (!j->all_mx_failed) {
		if (slot->window < SIZE_MAX)
			slot->window++;
		if (slot->suspended_until_us != 0) {
			slot->suspended_until_us = 0;
			struct relay_log_line l;
			if (relay_log_begin(&l, RELAY_LOG_INFO,
			        "destination-resumed")) {
				relay_log_str(&l, "domain", slot->domain);
				relay_log_end(&l);
			}
		}
		return;
	}
	if (!j->fail.set || j->fail.permanent || !fail_suspends(j->fail.class))
		return;
	slot->suspended_until_us =
	    mono_us(s) + s->ctx->cfg->retry_min_ms * 1000;
	slot->suspended_level = j->level;
	slot->suspended_by = j->fail;
	slot->suspended_info = j->info;
	slot->suspended_info.conn_use = 0;
	log_suspended(s, slot);
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
	while (slot->wait_head != NULL) {
		struct dest_job *w = slot->wait_head;
		/* A suspended domain's jobs end at once and need no room. */
		bool suspended =
		    !s->aborting && slot_suspended(s, slot, w->level);
		if (!suspended && !slot_has_room(s, slot))
			break;
		slot->wait_head = w->wait_next;
		if (slot->wait_head == NULL)
			slot->wait_tail = NULL;
		w->wait_next = NULL;
		slot->active++;
		w->started = true;
		if (suspended) {
			char why[REASON_MAX];
			relay_fmt(why, sizeof(why),
			    "delivery temporarily suspended: %s",
			    slot->suspended_by.reason);
			w->info = slot->suspended_info;
			deliver__dest_decide_all(w, false,
			    slot->suspended_by.dsn, slot->suspended_by.class,
			    why);
			w->wait_next = failed;
			failed = w;
			continue;
		}
		int r = s->aborting ? RELAY_DNS_ERR_CLOSING
		    : w->notify     ? deliver__relayhost_start(w)
		                    : relay_dns_resolve(*s->ctx->dns, w->domain,
		                          RELAY_SMTP_PORT, w->level,
		                          deliver__dest_dns_done, w, &w->dns_req);
		if (r != 0) {
			w->dns_req = NULL;
			/* deliver__relayhost_start() decided the recipients
			 * itself when it failed. */
			if (s->aborting)
				deliver__dest_decide_all(w, false, "4.3.2",
				    RELAY_FAIL_CLASS_SHUTDOWN,
				    "delivery interrupted by shutdown");
			else if (!w->notify)
				deliver__dest_decide_all(w, false, "4.4.3",
				    RELAY_FAIL_CLASS_DNS_LOOKUP,
				    relay_dns_strerror(r));
			w->wait_next = failed;
			failed = w;
		}
	}
	while (failed != NULL) {
		struct dest_job *w = failed;
		failed = w->wait_next;
		w->wait_next = NULL;
		deliver__dest_finish(w);
	}
}

/* A suspension is remembered until retry_max after it ended: long enough
 * for the messages it deferred to come back to a probing slot, bounded so
 * that domains nobody sends to any more are forgotten. */
static bool
slot_remembers(const struct relay_sched *s, const struct dest_slot *slot)
{
	return slot->suspended_until_us != 0 &&
	    mono_us(s) <
	    slot->suspended_until_us + s->ctx->cfg->retry_max_ms * 1000;
}

static void
slot_release(struct relay_sched *s, struct dest_slot *slot)
{
	slot->active--;
	/* An idle slot goes, unless it remembers a suspension: that must
	 * outlive its jobs, until a probe lifts it or it is long stale. */
	if (slot->active == 0 && slot->wait_head == NULL &&
	    !slot_remembers(s, slot)) {
		struct dest_slot **pp = &s->slots;
		while (*pp != slot)
			pp = &(*pp)->next;
		*pp = slot->next;
		free(slot);
		return;
	}
	slot_fill(s, slot);
}

void
deliver__dest_finish(struct dest_job *j)
{
	if (j->finished)
		return;
	j->finished = true;
	tlsa_verdict_release(&j->verdict);
	relay_dns_result_free(j->dns);
	j->dns = NULL;
	relay_sts_wait_cancel(j->sts_wait);
	j->sts_wait = NULL;
	free(j->sts);
	j->sts = NULL;
	struct relay_sched *s = j->m->s;
	if (j->started && j->slot != NULL) {
		struct dest_slot *slot = j->slot;
		j->slot = NULL;
		slot_learn(s, slot, j);
		slot_release(s, slot);
	}
	deliver__msg_dest_done(j->m);
}

void
deliver__dest_start(struct dest_job *j)
{
	struct relay_sched *s = j->m->s;
	const struct relay_deliver_ctx *ctx = s->ctx;

	const struct relay_tls_policy_entry *expired = NULL;
	if (j->notify) {
		/* The site's own MTA named by the administrator: opportunistic
		 * TLS, no DANE (relay_relayhost.c says why), so nothing here
		 * depends on DNSSEC or on tls_policy_file. */
		memset(&j->policy, 0, sizeof(j->policy));
		j->policy.level = RELAY_TLS_MAY;
		j->policy.tlsa_level = TLSA_LEVEL_MAY;
	} else {
		relay_class_policy(ctx->cfg, j->domain,
		    relay_clock_wall_us(ctx->clock), &j->policy, &expired);
		if (deliver__requiretls(j))
			deliver__requiretls_policy(j);
		deliver__tls_required_header(j);
	}
	if (expired != NULL)
		log_exception_expired(s, expired);
	enum tlsa_level level = j->policy.tlsa_level;
	j->level = level;
	if (j->policy.dane_overridden)
		log_dane_overridden(j);
	if (!relay_dns_validation_ok(*ctx->dns) &&
	    (level == TLSA_LEVEL_DANE || level == TLSA_LEVEL_DANE_ONLY)) {
		/* The known-answer self-test fails: DNSSEC cannot be trusted
		 * to tell DANE domains apart, so nothing DANE-dependent goes
		 * out (RFC 7672 2.1.1 C02). */
		deliver__dest_decide_all(j, false, "4.7.5",
		    RELAY_FAIL_CLASS_DNSSEC_SELFTEST,
		    "DNSSEC validation self-test is failing; delivery deferred");
		j->slot = NULL;
		deliver__dest_finish(j);
		return;
	}
	struct dest_slot *slot = NULL;
	for (struct dest_slot **pp = &s->slots; *pp != NULL;) {
		struct dest_slot *c = *pp;
		if (strcmp(c->domain, j->domain) == 0) {
			slot = c;
			break;
		}
		/* Forget idle suspensions that went stale (slot_remembers). */
		if (c->active == 0 && c->wait_head == NULL &&
		    !slot_remembers(s, c)) {
			*pp = c->next;
			free(c);
			continue;
		}
		pp = &c->next;
	}
	if (slot == NULL) {
		slot = calloc(1, sizeof(*slot));
		if (slot == NULL) {
			deliver__dest_decide_all(j, false, "4.3.0",
			    RELAY_FAIL_CLASS_LOCAL, "out of memory");
			deliver__dest_finish(j);
			return;
		}
		relay_copy(slot->domain, sizeof(slot->domain), j->domain);
		int64_t w = s->ctx->cfg->initial_destination_concurrency;
		slot->window = w > 0 ? (size_t)w : 1;
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

void
deliver__slots_resume(struct relay_sched *s)
{
	for (struct dest_slot *slot = s->slots; slot != NULL; slot = slot->next)
		slot->suspended_until_us = 0;
}
