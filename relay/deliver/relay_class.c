/*
 * relay_class: outcome -> failure class. See relay_class.h for the list.
 */
#include <stdio.h>
#include <string.h>

#include "relay_class.h"
#include "relay_text.h"

const char *
relay_class_dnssec_word(struct tlsa_lookup l)
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

static bool
class_lookup_failed(struct tlsa_lookup l)
{
	return l.answer == TLSA_ANSWER_ERROR || l.dnssec == TLSA_DNSSEC_BOGUS ||
	    l.dnssec == TLSA_DNSSEC_INDETERMINATE;
}

static enum relay_fail_class
class_failed(struct tlsa_lookup l, enum relay_fail_class otherwise)
{
	return l.dnssec == TLSA_DNSSEC_BOGUS ? RELAY_FAIL_CLASS_DNSSEC_BOGUS
	                                     : otherwise;
}

enum relay_fail_class
relay_class_dns(enum tlsa_failure f, const struct relay_dns_result *res,
    const struct relay_dns_host *h)
{
	switch (f) {
	case TLSA_FAIL_DNSSEC_INVALID:
	case TLSA_FAIL_DNS_ERROR:
		if (h != NULL) {
			for (size_t i = 0; i < h->in.n_tlsa; i++)
				if (class_lookup_failed(h->in.tlsa[i].res) ||
				    h->in.tlsa[i].malformed)
					return class_failed(h->in.tlsa[i].res,
					    RELAY_FAIL_CLASS_TLSA_LOOKUP);
			if (class_lookup_failed(h->in.addr))
				return class_failed(h->in.addr,
				    RELAY_FAIL_CLASS_DNS_LOOKUP);
			/* The first CNAME of the address expansion (C16). */
			if (h->in.expanded != NULL &&
			    (h->in.first_cname == TLSA_DNSSEC_BOGUS ||
			        h->in.first_cname == TLSA_DNSSEC_INDETERMINATE))
				return h->in.first_cname == TLSA_DNSSEC_BOGUS
				    ? RELAY_FAIL_CLASS_DNSSEC_BOGUS
				    : RELAY_FAIL_CLASS_DNS_LOOKUP;
		}
		if (res != NULL && class_lookup_failed(res->dest.mx))
			return class_failed(res->dest.mx,
			    RELAY_FAIL_CLASS_DNS_LOOKUP);
		return f == TLSA_FAIL_DNS_ERROR ? RELAY_FAIL_CLASS_DNS_LOOKUP
		                                : RELAY_FAIL_CLASS_DNSSEC_BOGUS;
	case TLSA_FAIL_HOST_NOT_FOUND:
		return RELAY_FAIL_CLASS_DNS_LOOKUP;
	case TLSA_FAIL_NULL_MX:
		return RELAY_FAIL_CLASS_NULL_MX;
	case TLSA_FAIL_TLSA_INVALID:
		return RELAY_FAIL_CLASS_TLSA_INVALID;
	case TLSA_FAIL_DANE_REQUIRED:
		return RELAY_FAIL_CLASS_DANE_REQUIRED;
	case TLSA_FAIL_STARTTLS_NOT_SUPPORTED:
		return RELAY_FAIL_CLASS_STARTTLS_MISSING;
	case TLSA_FAIL_CERT_HOST_MISMATCH:
	case TLSA_FAIL_CERT_EXPIRED:
	case TLSA_FAIL_CERT_NOT_TRUSTED:
	case TLSA_FAIL_VALIDATION:
		return RELAY_FAIL_CLASS_TLS_HANDSHAKE;
	case TLSA_FAIL_NONE:
		break;
	}
	return RELAY_FAIL_CLASS_DNS_LOOKUP;
}

enum relay_fail_class
relay_class_tls(const struct tlsa_verdict *v, const struct tlsa_result *r)
{
	switch (r->fclass) {
	/* Under DANE the certificate failed the TLSA match (for DANE-TA
	 * possibly the name check): RFC 7672 3.2, C51. Otherwise (verify)
	 * the class is the TLSRPT name of the PKIX failure. */
	case TLSA_FAIL_CERT_HOST_MISMATCH:
		return v->kind == TLSA_VERDICT_DANE
		    ? RELAY_FAIL_CLASS_TLSA_MISMATCH
		    : RELAY_FAIL_CLASS_CERT_HOST_MISMATCH;
	case TLSA_FAIL_CERT_NOT_TRUSTED:
		return v->kind == TLSA_VERDICT_DANE
		    ? RELAY_FAIL_CLASS_TLSA_MISMATCH
		    : RELAY_FAIL_CLASS_CERT_NOT_TRUSTED;
	case TLSA_FAIL_CERT_EXPIRED:
		return v->kind == TLSA_VERDICT_DANE
		    ? RELAY_FAIL_CLASS_TLSA_MISMATCH
		    : RELAY_FAIL_CLASS_CERT_EXPIRED;
	case TLSA_FAIL_VALIDATION:
		if (v->kind == TLSA_VERDICT_DANE && r->x509_err != X509_V_OK)
			return RELAY_FAIL_CLASS_TLSA_MISMATCH;
		return RELAY_FAIL_CLASS_TLS_HANDSHAKE;
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
	return RELAY_FAIL_CLASS_TLS_HANDSHAKE;
}

enum relay_sts_use
relay_class_sts_host(const struct relay_sts_answer *a, const char *domain,
    const char *host, struct tlsa_verdict *v, bool *mx_match,
    enum relay_fail_class *fclass, char *why, size_t whylen)
{
	*mx_match = true;
	if (a == NULL ||
	    (v->kind != TLSA_VERDICT_MAY && v->kind != TLSA_VERDICT_ENCRYPT))
		return RELAY_STS_USE_OFF; /* DANE (or do-not-connect) alone */
	if (a->outcome == RELAY_STS_OUTCOME_FAILED) {
		/* The TXT lookup was bogus or failed and nothing is cached:
		 * whether this host needs authenticated TLS is unknown, so it
		 * is not used (fail closed). DANE hosts are not affected. */
		*fclass = RELAY_FAIL_CLASS_STS_POLICY_FETCH;
		relay_fmt(why, whylen,
		    "%s: MTA-STS policy discovery failed: %s", domain, a->why);
		return RELAY_STS_USE_REFUSE;
	}
	if (a->outcome != RELAY_STS_OUTCOME_POLICY ||
	    a->policy.mode == RELAY_STS_MODE_NONE)
		return RELAY_STS_USE_OFF;
	*mx_match = relay_sts_mx_match(&a->policy, host);
	if (a->policy.mode == RELAY_STS_MODE_TESTING) {
		/* RFC 8461 5: delivered as without a policy, but the
		 * certificate is checked as enforce would, for the report:
		 * SNI names the MX host so the server shows the certificate
		 * enforce would see (an unauthenticated verdict uses
		 * base_domain for nothing else). */
		relay_copy(v->base_domain, sizeof(v->base_domain), host);
		return RELAY_STS_USE_TESTING;
	}
	if (!*mx_match) {
		*fclass = RELAY_FAIL_CLASS_STS_MX_MISMATCH;
		relay_fmt(why, whylen,
		    "%s: MX host %s matches no mx of the MTA-STS policy (id %s, "
		    "enforce)",
		    domain, host, a->id);
		return RELAY_STS_USE_REFUSE;
	}
	/* The verdict is rewritten in place: VERIFY with SNI and the one
	 * reference identifier the MX host name (a MAY or ENCRYPT verdict
	 * owns no records). */
	v->kind = TLSA_VERDICT_VERIFY;
	v->log_as = TLSA_TRUST_VERIFIED;
	relay_copy(v->base_domain, sizeof(v->base_domain), host);
	v->n_refs = 1;
	relay_copy(v->refs[0], sizeof(v->refs[0]), host);
	return RELAY_STS_USE_ENFORCE;
}

bool
relay_class_sts_wanted(const struct relay_dns_result *res,
    const struct tlsa_digests *digests)
{
	for (size_t i = 0; i < res->nhosts; i++) {
		struct tlsa_verdict v;
		memset(&v, 0, sizeof(v));
		int r = tlsa_policy_decide(&res->dest, &res->hosts[i].in,
		    digests, &v);
		bool no_dane = r == 0 &&
		    (v.kind == TLSA_VERDICT_MAY ||
		        v.kind == TLSA_VERDICT_ENCRYPT);
		tlsa_verdict_release(&v);
		if (no_dane)
			return true;
	}
	return false;
}

const char *
relay_class_tls_word(enum relay_sts_use use, const struct tlsa_result *r)
{
	if (r->ok && use == RELAY_STS_USE_ENFORCE)
		return "sts-enforce";
	if (r->ok && use == RELAY_STS_USE_TESTING)
		return "sts-testing";
	return tlsa_auth_name(r->auth);
}

enum relay_fail_class
relay_class_sts_enforce(enum relay_fail_class c, const struct tlsa_result *r)
{
	if (c == RELAY_FAIL_CLASS_STARTTLS_MISSING)
		return RELAY_FAIL_CLASS_STS_STARTTLS_MISSING;
	if (c == RELAY_FAIL_CLASS_CERT_HOST_MISMATCH ||
	    c == RELAY_FAIL_CLASS_CERT_EXPIRED ||
	    c == RELAY_FAIL_CLASS_CERT_NOT_TRUSTED)
		return RELAY_FAIL_CLASS_STS_CERTIFICATE;
	if (c == RELAY_FAIL_CLASS_TLS_HANDSHAKE && r != NULL &&
	    r->x509_err != X509_V_OK)
		return RELAY_FAIL_CLASS_STS_CERTIFICATE;
	return c;
}

enum relay_fail_class
relay_class_smtp(const struct smtp_result *r, enum relay_fail_class abort_class)
{
	switch (r->reason) {
	case SMTP_REASON_REPLY:
		return r->klass == 5 ? RELAY_FAIL_CLASS_SMTP_5XX
		                     : RELAY_FAIL_CLASS_SMTP_4XX;
	case SMTP_REASON_STARTTLS_NOT_OFFERED:
	case SMTP_REASON_STARTTLS_REFUSED:
		return RELAY_FAIL_CLASS_STARTTLS_MISSING;
	case SMTP_REASON_EHLO_REFUSED:
		return r->klass == 5 ? RELAY_FAIL_CLASS_SMTP_5XX
		                     : RELAY_FAIL_CLASS_SMTP_4XX;
	case SMTP_REASON_SMTPUTF8_NOT_OFFERED:
		return RELAY_FAIL_CLASS_SMTPUTF8_MISSING;
	case SMTP_REASON_REQUIRETLS_NOT_OFFERED:
		return RELAY_FAIL_CLASS_REQUIRETLS;
	case SMTP_REASON_SIZE_EXCEEDED:
		return RELAY_FAIL_CLASS_MESSAGE_SIZE;
	case SMTP_REASON_PROTOCOL:
		return RELAY_FAIL_CLASS_SMTP_PROTOCOL;
	case SMTP_REASON_CONNECTION_LOST:
		return RELAY_FAIL_CLASS_CONNECT;
	case SMTP_REASON_ABORTED:
		return abort_class != RELAY_FAIL_CLASS_NONE
		    ? abort_class
		    : RELAY_FAIL_CLASS_CONNECT;
	}
	return RELAY_FAIL_CLASS_SMTP_4XX;
}

void
relay_class_policy(const struct relay_config *cfg, const char *domain,
    uint64_t now_us, struct relay_class_policy *out,
    const struct relay_tls_policy_entry **expired)
{
	const struct relay_tls_policy_entry *e =
	    relay_config_tls_policy_entry(cfg, domain, strlen(domain), now_us,
	        expired);
	memset(out, 0, sizeof(*out));
	out->level = e != NULL ? e->level : cfg->tls_security_level;
	if (e != NULL) {
		int w = snprintf(out->entry, sizeof(out->entry), "%s:%u",
		    e->file, e->line);
		if (w < 0)
			out->entry[0] = '\0';
		(void)snprintf(out->reason, sizeof(out->reason), "%s",
		    e->reason);
		(void)snprintf(out->until, sizeof(out->until), "%s", e->until);
	}
	switch (out->level) {
	case RELAY_TLS_DANE:
		out->tlsa_level = TLSA_LEVEL_DANE;
		return;
	case RELAY_TLS_DANE_ONLY:
		out->tlsa_level = TLSA_LEVEL_DANE_ONLY;
		return;
	case RELAY_TLS_MAY:
		out->tlsa_level = TLSA_LEVEL_MAY;
		break;
	case RELAY_TLS_ENCRYPT:
		out->tlsa_level = TLSA_LEVEL_ENCRYPT;
		break;
	case RELAY_TLS_VERIFY:
		out->tlsa_level = TLSA_LEVEL_VERIFY;
		break;
	case RELAY_TLS_NONE:
		/* Only an explicit per-destination "none" in tls_policy_file
		 * sends in cleartext; DANE lookups are then skipped. tlsa/ has
		 * no such level: it is asked for `may`, and the daemon never
		 * offers STARTTLS. */
		out->tlsa_level = TLSA_LEVEL_MAY;
		out->cleartext = true;
		break;
	}
	out->dane_overridden = e != NULL;
}
