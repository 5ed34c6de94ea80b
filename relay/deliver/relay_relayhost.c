/*
 * relay_relayhost: destination jobs for mail danerelay generates itself
 * (DSNs, delay warnings, reports: envelope origin "local", see
 * relay_submit_local()) while notify_relayhost is set.
 *
 * Such mail goes to the site's MTA, "[host]:port" in Postfix's relayhost
 * syntax, instead of the recipients' MX hosts: a sender in an internal
 * domain that only the site MTA knows still gets its bounce, and the
 * site MTA logs it like any other mail. The route is decided when the job
 * is made (relay_sched.c), from the envelope and the configuration then in
 * effect, so a message queued before notify_relayhost was set goes there
 * at its next attempt.
 *
 * TLS: opportunistic (level may), never DANE. For an address literal RFC
 * 7672 2.2 leaves DANE out (there is no name whose TLSA records could be
 * looked up, checklist C26). For a bracketed host name the name comes from
 * the administrator, not from DNS (tlsa_dest_in.no_mx): it is the site's
 * own MTA, usually on loopback or an internal name under no signed zone,
 * so there is nothing for DANE to authenticate it against, and refusing
 * cleartext would strand notifications on a host that offers no STARTTLS.
 * A bracketed name is resolved with A/AAAA only (relay_dns_resolve_host()).
 *
 * Failure: a connection refused, a timeout or a 4xx defers the recipients,
 * retried with the normal backoff like any deferred mail; a 5xx bounces
 * them, and relay_sched.c then applies the null-sender rule (no DSN of a
 * DSN).
 */
#include <stdio.h>
#include <string.h>

#include "deliver_int.h"
#include "relay_log.h"

/* Decide every recipient still open with the job's last failure (always
 * temporary: only a server's 5xx reply bounces notification mail). */
static void
relayhost_defer_open(struct dest_job *j)
{
	if (!j->fail.set) {
		char why[REASON_MAX];
		relay_fmt(why, sizeof(why),
		    "notify_relayhost %s: delivery not completed",
		    j->nexthop.text);
		deliver__fail_set(&j->fail, false, "4.4.1",
		    RELAY_FAIL_CLASS_CONNECT, why);
	}
	deliver__dest_decide_all(j, false, j->fail.dsn, j->fail.class,
	    j->fail.reason);
}

/*
 * Start job j (j->notify) from its destination slot. Returns 0 when work is
 * under way (a DNS request or an SMTP session whose callbacks continue the
 * job), or nonzero with every recipient decided; the caller then finishes
 * the job (never this function: the slot is still being filled).
 */
int
deliver__relayhost_start(struct dest_job *j)
{
	struct relay_sched *s = j->m->s;
	const struct relay_config_nexthop *nh = &j->nexthop;

	j->port = nh->port;
	memset(&j->info, 0, sizeof(j->info));
	j->info.depth = -1;
	if (!nh->literal) {
		int r = relay_dns_resolve_host(*s->ctx->dns, nh->host, nh->port,
		    TLSA_LEVEL_MAY, deliver__dest_dns_done, j, &j->dns_req);
		if (r != 0) {
			char why[REASON_MAX];
			relay_fmt(why, sizeof(why),
			    "notify_relayhost %s: address lookup: %s", nh->text,
			    relay_dns_strerror(r));
			deliver__dest_decide_all(j, false, "4.4.3",
			    RELAY_FAIL_CLASS_DNS_LOOKUP, why);
		}
		return r;
	}

	/* An address from the configuration: no lookup at all. */
	struct attempt_info *in = &j->info;
	relay_copy(in->mx, sizeof(in->mx), nh->host);
	relay_copy(in->dnssec_mx, sizeof(in->dnssec_mx), "none");
	relay_copy(in->dnssec_addr, sizeof(in->dnssec_addr), "none");
	relay_copy(in->dnssec_tlsa, sizeof(in->dnssec_tlsa), "not-looked-up");
	struct tlsa_dest_in dest = {
		.level = TLSA_LEVEL_MAY,
		.nexthop = nh->host,
		.nexthop_literal = true,
		.port = nh->port,
	};
	struct tlsa_host_in host = {
		.name = nh->host,
		.name_numeric = true,
		.addr = { .answer = TLSA_ANSWER_DATA,
		    .dnssec = TLSA_DNSSEC_INSECURE },
	};
	tlsa_verdict_release(&j->verdict);
	int r = tlsa_policy_decide(&dest, &host, s->ctx->digests, &j->verdict);
	if (r != 0 || j->verdict.kind != TLSA_VERDICT_MAY) {
		char why[REASON_MAX];
		relay_fmt(why, sizeof(why),
		    "notify_relayhost %s: TLS policy error: %s", nh->text,
		    r != 0 ? tlsa_strerror(r) : "not opportunistic");
		deliver__dest_decide_all(j, false, "4.3.0",
		    RELAY_FAIL_CLASS_LOCAL, why);
		return -1;
	}
	struct relay_dns_addr a = { .family = nh->family };
	memcpy(a.bytes, nh->addr, sizeof(a.bytes));
	j->addrs_tried = 1;
	if (deliver__sess_start(j, &a, deliver__tls_mode(&j->verdict, false)))
		return 0; /* the session's end calls deliver__dest_next() */
	relayhost_defer_open(j);
	return -1;
}

/* The session to an address literal ended (deliver__dest_next() sends
 * such jobs here): there is one address, so the job is done. */
void
deliver__relayhost_next(struct dest_job *j)
{
	relayhost_defer_open(j);
	deliver__dest_finish(j);
}
