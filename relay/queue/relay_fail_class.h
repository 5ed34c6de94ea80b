#ifndef RELAY_FAIL_CLASS_H
#define RELAY_FAIL_CLASS_H
/*
 * relay_fail_class: the failure classes of delivery, as one enum with one
 * name table. Code that produces a class (deliver/, probe) or acts on one
 * (the report's hints, probe's exit status) uses the enum; the spellings
 * appear only at the edges: the log's class=, JSON, the envelope's r.class
 * and a.failure_class, DSN prose. The spellings are a contract with
 * operators' scripts and with envelopes already in spools: never change one.
 *
 * It lives in queue/ because that is the lowest layer that needs it: the
 * queue's report maps a class to its operator hint. base/ has no use for
 * it, and deliver/ and cli/ sit above queue/.
 *
 * The envelope keeps the text it was given (struct relay_queue_rcpt's
 * failure_class), not the enum: the spool is the source of truth, and a
 * class written by another version of danerelay must survive a rewrite of
 * the envelope byte for byte. Reading such a text gives
 * RELAY_FAIL_CLASS_UNKNOWN, which the report treats with a generic hint.
 */

enum relay_fail_class {
	/* No failure: delivered, or never tried. Spelled "" (an empty
	 * r.class; no class= in the log). */
	RELAY_FAIL_CLASS_NONE = 0,
	/* DNS and the RFC 7672 verdict. */
	RELAY_FAIL_CLASS_DNS_LOOKUP, /* MX or address lookup failed, no address */
	RELAY_FAIL_CLASS_DNSSEC_BOGUS,    /* a lookup in the chain was bogus */
	RELAY_FAIL_CLASS_DNSSEC_SELFTEST, /* this relay's own validation fails */
	RELAY_FAIL_CLASS_TLSA_LOOKUP,     /* TLSA lookup failed otherwise */
	RELAY_FAIL_CLASS_TLSA_INVALID,    /* no usable TLSA record */
	RELAY_FAIL_CLASS_DANE_REQUIRED,   /* dane-only without usable TLSA */
	RELAY_FAIL_CLASS_NULL_MX,         /* RFC 7505 */
	/* TLS. */
	RELAY_FAIL_CLASS_STARTTLS_MISSING, /* not offered or refused where required */
	RELAY_FAIL_CLASS_TLS_HANDSHAKE,
	RELAY_FAIL_CLASS_TLSA_MISMATCH, /* DANE authentication failed */
	/* PKIX failures of a `verify` policy, with the TLSRPT names
	 * (RFC 8460 4.3) that tlsa_failure_name() gives them. */
	RELAY_FAIL_CLASS_CERT_HOST_MISMATCH,
	RELAY_FAIL_CLASS_CERT_EXPIRED,
	RELAY_FAIL_CLASS_CERT_NOT_TRUSTED,
	/* MTA-STS (RFC 8461) under an `enforce` policy, the destination
	 * having no DANE: the MX host matches no mx pattern of the policy
	 * (4.1), its certificate is not PKIX-valid for its name (4.2), it
	 * offers no STARTTLS, or the policy could not be discovered because
	 * the TXT lookup was bogus or failed and none was cached. */
	RELAY_FAIL_CLASS_STS_MX_MISMATCH,
	RELAY_FAIL_CLASS_STS_CERTIFICATE,
	RELAY_FAIL_CLASS_STS_STARTTLS_MISSING,
	RELAY_FAIL_CLASS_STS_POLICY_FETCH,
	/* The connection and the SMTP dialogue. */
	RELAY_FAIL_CLASS_CONNECT, /* connect, reset, timeout, lost */
	RELAY_FAIL_CLASS_TIMEOUT, /* probe: the whole probe's deadline */
	RELAY_FAIL_CLASS_SMTP_4XX,
	RELAY_FAIL_CLASS_SMTP_5XX,
	RELAY_FAIL_CLASS_SMTP_PROTOCOL,
	RELAY_FAIL_CLASS_SMTPUTF8_MISSING,
	RELAY_FAIL_CLASS_MESSAGE_SIZE,
	/* A REQUIRETLS message (RFC 8689) and an MX host that cannot carry
	 * it: MX names not DNSSEC-secure, no DANE-authenticated TLS, or no
	 * REQUIRETLS in the EHLO after STARTTLS. 5.7.30 (RFC 8689 5). */
	RELAY_FAIL_CLASS_REQUIRETLS,
	/* This side. */
	RELAY_FAIL_CLASS_ADDRESS,  /* the recipient address or domain */
	RELAY_FAIL_CLASS_SHUTDOWN, /* interrupted by a shutdown */
	RELAY_FAIL_CLASS_LOCAL,    /* memory, disk, internal */
	/* A text read back that is none of the above (written by another
	 * version). Never produced by delivery. Keep it last. */
	RELAY_FAIL_CLASS_UNKNOWN,
};

/* Number of values, for loops over every class. */
#define RELAY_FAIL_CLASS_COUNT ((int)RELAY_FAIL_CLASS_UNKNOWN + 1)

/*
 * The spelling of c in logs, JSON, envelopes and DSNs (static string, never
 * NULL): "" for NONE, "unknown" for UNKNOWN, else the class name, e.g.
 * "tlsa-mismatch".
 */
const char *relay_fail_class_name(enum relay_fail_class c);

/*
 * The class spelled name (NUL-terminated, borrowed). NULL and "" give
 * RELAY_FAIL_CLASS_NONE; a spelling not in the table gives
 * RELAY_FAIL_CLASS_UNKNOWN (callers that must not lose it keep the text).
 * parse(name(c)) == c for every c.
 */
enum relay_fail_class relay_fail_class_parse(const char *name);

/*
 * The RFC 8460 4.3 result-type a TLS report gives a session that failed
 * with class c (static string), or NULL when c is not a failure to
 * negotiate TLS under the domain's policy (connection, SMTP, local
 * failures, and NONE). A DANE authentication failure (tlsa-mismatch) is
 * "certificate-host-mismatch" (4.3.1: the certificate "did not adhere to
 * the constraints specified in the ... DANE policy"); a handshake that
 * broke is "validation-failure" (the general failure); a TLSA or address
 * lookup that did not validate is "dnssec-invalid".
 */
const char *relay_fail_class_tlsrpt_result(enum relay_fail_class c);

#endif
