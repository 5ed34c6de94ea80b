/*
 * relay_class: outcome -> failure class. See relay_class.h for the list.
 */
#include <stdio.h>
#include <string.h>

#include "relay_class.h"

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

static const char *
class_failed(struct tlsa_lookup l, const char *otherwise)
{
	return l.dnssec == TLSA_DNSSEC_BOGUS ? "dnssec-bogus" : otherwise;
}

const char *
relay_class_dns(enum tlsa_failure f, const struct relay_dns_result *res,
    const struct relay_dns_host *h)
{
	switch (f) {
	case TLSA_FAIL_DNSSEC_INVALID:
	case TLSA_FAIL_DNS_ERROR:
		if (h != NULL) {
			for (size_t i = 0; i < h->in.n_tlsa; i++)
				if (class_lookup_failed(h->in.tlsa[i].res) || h->in.tlsa[i].malformed)
					return class_failed(h->in.tlsa[i].res, "tlsa-lookup");
			if (class_lookup_failed(h->in.addr))
				return class_failed(h->in.addr, "dns-lookup");
			/* The first CNAME of the address expansion (C16). */
			if (h->in.expanded != NULL &&
			    (h->in.first_cname == TLSA_DNSSEC_BOGUS ||
			    h->in.first_cname == TLSA_DNSSEC_INDETERMINATE))
				return h->in.first_cname == TLSA_DNSSEC_BOGUS ?
				    "dnssec-bogus" : "dns-lookup";
		}
		if (res != NULL && class_lookup_failed(res->dest.mx))
			return class_failed(res->dest.mx, "dns-lookup");
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

const char *
relay_class_tls(const struct tlsa_verdict *v, const struct tlsa_result *r)
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

const char *
relay_class_smtp(const struct smtp_result *r, const char *abort_class)
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
		return abort_class != NULL && abort_class[0] ? abort_class : "connect";
	}
	return "smtp-4xx";
}

void
relay_class_policy(const struct relay_config *cfg, const char *domain,
    struct relay_class_policy *out)
{
	const struct relay_tls_policy_entry *e =
	    relay_config_tls_policy_entry(cfg, domain, strlen(domain));
	memset(out, 0, sizeof(*out));
	out->level = e != NULL ? e->level : cfg->tls_security_level;
	if (e != NULL) {
		int w = snprintf(out->entry, sizeof(out->entry), "%s:%u", e->file, e->line);
		if (w < 0)
			out->entry[0] = '\0';
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
