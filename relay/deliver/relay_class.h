#ifndef RELAY_CLASS_H
#define RELAY_CLASS_H
/*
 * relay_class: the classes of delivery outcomes. Every failure a delivery
 * attempt can meet (a DNS lookup, the RFC 7672 verdict, the TLS handshake,
 * the SMTP dialogue) maps to one failure class (enum relay_fail_class,
 * spelled by relay_fail_class_name()); the queue stores it, the log
 * prints it as class=, `queue list --class` and `report` group by it, and
 * `probe` reports it. One mapping, used by serve and probe alike:
 *
 *   tlsa-mismatch    the certificate matches no usable TLSA record (DANE)
 *   dnssec-bogus     a lookup in the chain (MX, address, TLSA) was bogus
 *   tlsa-lookup      the TLSA lookup failed otherwise (SERVFAIL, timeout, malformed)
 *   dns-lookup       an MX or address lookup failed, or the host has no address
 *   starttls-missing STARTTLS not offered or refused where TLS is required
 *   tls-handshake    the handshake failed for another reason
 *   connect          TCP connect, reset, timeout, lost connection
 *   smtp-4xx / smtp-5xx  the server's reply decided
 *   null-mx, tlsa-invalid, dane-required, smtputf8-missing, message-size,
 *   smtp-protocol, and the TLSRPT names for PKIX (verify) failures.
 */
#include <stdbool.h>
#include <stdint.h>

#include "relay_config.h"
#include "relay_dns.h"
#include "relay_fail_class.h"
#include "relay_sts.h"
#include "smtp.h"
#include "tlsa.h"

/* "secure", "insecure", "bogus", "indeterminate", or "error" for a lookup
 * that failed. Static string. */
const char *relay_class_dnssec_word(struct tlsa_lookup l);

/* Class of a DO_NOT_CONNECT verdict or destination failure f: which lookup
 * failed (h's TLSA and address, then res's MX; either may be NULL) and
 * whether DNSSEC said bogus. */
enum relay_fail_class relay_class_dns(enum tlsa_failure f,
    const struct relay_dns_result *res, const struct relay_dns_host *h);

/* Class of a handshake that did not satisfy verdict v (tlsa_ssl_result()
 * said !ok): under DANE a certificate failure is tlsa-mismatch. */
enum relay_fail_class relay_class_tls(const struct tlsa_verdict *v,
    const struct tlsa_result *r);

/* Class of failure c met by a host under an MTA-STS enforce policy
 * (RFC 8461 4.2): STARTTLS missing becomes sts-starttls-missing, a
 * certificate failure (r, when the handshake ran: a PKIX class or an
 * X.509 error) sts-certificate; anything else stays c. */
enum relay_fail_class relay_class_sts_enforce(enum relay_fail_class c,
    const struct tlsa_result *r);

/* Class of an SMTP client result; abort_class is the cause the driver
 * gave when it aborted the session (RELAY_FAIL_CLASS_NONE for none). */
enum relay_fail_class relay_class_smtp(const struct smtp_result *r,
    enum relay_fail_class abort_class);

/* How MTA-STS (RFC 8461) applies to one MX host. DANE comes first: a
 * host with a secure TLSA RRset is never under MTA-STS. */
enum relay_sts_use {
	RELAY_STS_USE_OFF = 0, /* no policy, mode none, or DANE applies */
	RELAY_STS_USE_TESTING, /* opportunistic as before; failures logged */
	RELAY_STS_USE_ENFORCE, /* STARTTLS + PKIX for the MX host required */
	RELAY_STS_USE_REFUSE,  /* do not use this host: *fclass, why */
};

/*
 * MTA-STS for MX host `host` of `domain` whose RFC 7672 verdict is *v,
 * under the policy answer a (NULL: MTA-STS not asked). Serve and probe
 * alike. A DANE or DO_NOT_CONNECT verdict is left alone (OFF). Under an
 * enforce policy a MAY or ENCRYPT verdict becomes VERIFY for the MX host
 * name in place (RFC 8461 4.2: PKIX, RFC 6125 with the MX host as the
 * reference identity), or the host is refused with
 * sts-mx-mismatch when it matches no mx pattern (4.1); a failed discovery
 * (a->outcome FAILED) refuses it with sts-policy-fetch. *mx_match says
 * whether the host matched (for testing's would-fail log).
 */
enum relay_sts_use relay_class_sts_host(const struct relay_sts_answer *a,
    const char *domain, const char *host, struct tlsa_verdict *v,
    bool *mx_match, enum relay_fail_class *fclass, char *why, size_t whylen);

/* Whether some host of res would be under MTA-STS (a MAY or ENCRYPT
 * verdict): a destination whose hosts all have DANE never asks. */
bool relay_class_sts_wanted(const struct relay_dns_result *res,
    const struct tlsa_digests *digests);

/* The tls= word of a session that satisfied its verdict: sts-enforce or
 * sts-testing under MTA-STS, else tlsa_auth_name(). Static string. */
const char *relay_class_tls_word(enum relay_sts_use use,
    const struct tlsa_result *r);

/* Room for "FILE:LINE" of a tls_policy_file entry (a longer path is cut). */
#define RELAY_CLASS_POLICY_ENTRY_MAX 1024
/* Room for an entry's reason= (the parser keeps at most 400 bytes). */
#define RELAY_CLASS_POLICY_REASON_MAX 404

/* The TLS policy of one destination as serve and probe apply it, with the
 * tls_policy_file entry that chose it, so every decision can name it. */
struct relay_class_policy {
	enum relay_tls_level
	    level; /* the entry's level, else tls_security_level */
	enum tlsa_level tlsa_level; /* asked of tlsa/: `none` asks for may */
	bool cleartext;             /* `none`: STARTTLS is never tried */
	/* A tls_policy_file entry sets a level without DANE (none, may,
	 * encrypt, verify): no TLSA lookups, whatever the destination
	 * publishes. Operators must see it (logged per delivery). */
	bool dane_overridden;
	char entry
	    [RELAY_CLASS_POLICY_ENTRY_MAX]; /* "FILE:LINE", "" for the global level */
	/* The entry's reason= ("" when none) and until= date ("" when
	 * none), for the delivery log line and the envelope. */
	char reason[RELAY_CLASS_POLICY_REASON_MAX];
	char until[11];
};

/*
 * Fill *out for domain from cfg (tls_policy_file, else tls_security_level)
 * at wall time now_us: entries past their until= date are skipped. When
 * expired is not NULL it receives the first matching entry skipped that
 * way (borrowed from cfg, for the call's caller to log; NULL when none).
 */
void relay_class_policy(const struct relay_config *cfg, const char *domain,
    uint64_t now_us, struct relay_class_policy *out,
    const struct relay_tls_policy_entry **expired);

#endif
