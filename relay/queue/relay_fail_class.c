/*
 * relay_fail_class: the one name table of the failure classes.
 */
#include <stddef.h>
#include <string.h>

#include "relay_fail_class.h"

/* The only place the spellings live. A switch with every case and no
 * default (STYLE 3): a new class does not build until it has a name. */
const char *
relay_fail_class_name(enum relay_fail_class c)
{
	switch (c) {
	case RELAY_FAIL_CLASS_NONE:
		return "";
	case RELAY_FAIL_CLASS_DNS_LOOKUP:
		return "dns-lookup";
	case RELAY_FAIL_CLASS_DNSSEC_BOGUS:
		return "dnssec-bogus";
	case RELAY_FAIL_CLASS_DNSSEC_SELFTEST:
		return "dnssec-selftest";
	case RELAY_FAIL_CLASS_TLSA_LOOKUP:
		return "tlsa-lookup";
	case RELAY_FAIL_CLASS_TLSA_INVALID:
		return "tlsa-invalid";
	case RELAY_FAIL_CLASS_DANE_REQUIRED:
		return "dane-required";
	case RELAY_FAIL_CLASS_NULL_MX:
		return "null-mx";
	case RELAY_FAIL_CLASS_STARTTLS_MISSING:
		return "starttls-missing";
	case RELAY_FAIL_CLASS_TLS_HANDSHAKE:
		return "tls-handshake";
	case RELAY_FAIL_CLASS_TLSA_MISMATCH:
		return "tlsa-mismatch";
	case RELAY_FAIL_CLASS_CERT_HOST_MISMATCH:
		return "certificate-host-mismatch";
	case RELAY_FAIL_CLASS_CERT_EXPIRED:
		return "certificate-expired";
	case RELAY_FAIL_CLASS_CERT_NOT_TRUSTED:
		return "certificate-not-trusted";
	case RELAY_FAIL_CLASS_STS_MX_MISMATCH:
		return "sts-mx-mismatch";
	case RELAY_FAIL_CLASS_STS_CERTIFICATE:
		return "sts-certificate";
	case RELAY_FAIL_CLASS_STS_STARTTLS_MISSING:
		return "sts-starttls-missing";
	case RELAY_FAIL_CLASS_STS_POLICY_FETCH:
		return "sts-policy-fetch";
	case RELAY_FAIL_CLASS_CONNECT:
		return "connect";
	case RELAY_FAIL_CLASS_TIMEOUT:
		return "timeout";
	case RELAY_FAIL_CLASS_SMTP_4XX:
		return "smtp-4xx";
	case RELAY_FAIL_CLASS_SMTP_5XX:
		return "smtp-5xx";
	case RELAY_FAIL_CLASS_SMTP_PROTOCOL:
		return "smtp-protocol";
	case RELAY_FAIL_CLASS_SMTPUTF8_MISSING:
		return "smtputf8-missing";
	case RELAY_FAIL_CLASS_MESSAGE_SIZE:
		return "message-size";
	case RELAY_FAIL_CLASS_REQUIRETLS:
		return "requiretls";
	case RELAY_FAIL_CLASS_ADDRESS:
		return "address";
	case RELAY_FAIL_CLASS_SHUTDOWN:
		return "shutdown";
	case RELAY_FAIL_CLASS_LOCAL:
		return "local";
	case RELAY_FAIL_CLASS_UNKNOWN:
		return "unknown";
	}
	/* Only a value outside the enum gets here (memory corruption). */
	return "unknown";
}

/*
 * RFC 8460 4.3 result types. 4.3.1 (negotiation failures):
 * "starttls-not-supported", "certificate-host-mismatch" ("the certificate
 * presented did not adhere to the constraints specified in the MTA-STS or
 * DANE policy"), "certificate-expired", "certificate-not-trusted",
 * "validation-failure". 4.3.2.1 (DANE policy failures): "tlsa-invalid"
 * ("none of the records in the RRset were found to be valid"),
 * "dnssec-invalid" ("no valid records were returned from the recursive
 * resolver"), "dane-required". 4.3.2.2 (MTA-STS: sts-policy-fetch-error,
 * sts-policy-invalid, sts-webpki-invalid): a policy that could not be
 * fetched is "sts-policy-fetch-error". 4.3.3: a negotiation failure that fits no category above is a
 * "validation-failure".
 */
const char *
relay_fail_class_tlsrpt_result(enum relay_fail_class c)
{
	switch (c) {
	case RELAY_FAIL_CLASS_DNSSEC_BOGUS:
		/* A bogus MX, address or TLSA answer: no valid records. */
		return "dnssec-invalid";
	case RELAY_FAIL_CLASS_TLSA_LOOKUP:
		/* The TLSA lookup failed (SERVFAIL, timeout): no valid
		 * records came back for the DANE policy. */
		return "dnssec-invalid";
	case RELAY_FAIL_CLASS_TLSA_INVALID:
		return "tlsa-invalid";
	case RELAY_FAIL_CLASS_DANE_REQUIRED:
		return "dane-required";
	case RELAY_FAIL_CLASS_STARTTLS_MISSING:
		return "starttls-not-supported";
	case RELAY_FAIL_CLASS_TLS_HANDSHAKE:
		/* 4.3.3: a failed handshake fits no named category. */
		return "validation-failure";
	case RELAY_FAIL_CLASS_TLSA_MISMATCH:
		/* 4.3.1: the certificate did not adhere to the constraints
		 * of the DANE policy (it matches no usable TLSA record). */
		return "certificate-host-mismatch";
	case RELAY_FAIL_CLASS_CERT_HOST_MISMATCH:
		return "certificate-host-mismatch";
	case RELAY_FAIL_CLASS_CERT_EXPIRED:
		return "certificate-expired";
	case RELAY_FAIL_CLASS_CERT_NOT_TRUSTED:
		return "certificate-not-trusted";
	/* MTA-STS (RFC 8461) under an enforce policy. */
	case RELAY_FAIL_CLASS_STS_STARTTLS_MISSING:
		return "starttls-not-supported";
	case RELAY_FAIL_CLASS_STS_CERTIFICATE:
		/* The MX certificate failed PKIX validation (4.3.1). */
		return "certificate-not-trusted";
	case RELAY_FAIL_CLASS_STS_MX_MISMATCH:
		/* The MX host matches none of the policy's mx patterns: no
		 * named category fits (4.3.1 "validation-failure"). */
		return "validation-failure";
	case RELAY_FAIL_CLASS_STS_POLICY_FETCH:
		return "sts-policy-fetch-error"; /* 4.3.2.2 */
	case RELAY_FAIL_CLASS_NONE:
	case RELAY_FAIL_CLASS_DNS_LOOKUP:
	/* This relay's own validation fails: nothing the receiving domain
	 * should be told about. */
	case RELAY_FAIL_CLASS_DNSSEC_SELFTEST:
	case RELAY_FAIL_CLASS_NULL_MX:
	case RELAY_FAIL_CLASS_CONNECT:
	case RELAY_FAIL_CLASS_TIMEOUT:
	case RELAY_FAIL_CLASS_SMTP_4XX:
	case RELAY_FAIL_CLASS_SMTP_5XX:
	case RELAY_FAIL_CLASS_SMTP_PROTOCOL:
	case RELAY_FAIL_CLASS_SMTPUTF8_MISSING:
	case RELAY_FAIL_CLASS_MESSAGE_SIZE:
	/* The message's own requirement (RFC 8689), not a failure of the
	 * receiving domain's policy. */
	case RELAY_FAIL_CLASS_REQUIRETLS:
	case RELAY_FAIL_CLASS_ADDRESS:
	case RELAY_FAIL_CLASS_SHUTDOWN:
	case RELAY_FAIL_CLASS_LOCAL:
	case RELAY_FAIL_CLASS_UNKNOWN:
		return NULL;
	}
	return NULL;
}

enum relay_fail_class
relay_fail_class_parse(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return RELAY_FAIL_CLASS_NONE;
	/* Derived from the name table, so the two can never disagree. */
	for (int i = 0; i < RELAY_FAIL_CLASS_COUNT; i++) {
		enum relay_fail_class c = (enum relay_fail_class)i;
		if (strcmp(relay_fail_class_name(c), name) == 0)
			return c;
	}
	return RELAY_FAIL_CLASS_UNKNOWN;
}
