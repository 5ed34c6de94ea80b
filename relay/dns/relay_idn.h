#ifndef RELAY_IDN_H
#define RELAY_IDN_H
/*
 * relay_idn: the DNS form of a recipient domain (RFC 5890, RFC 6531 3.2).
 *
 * A recipient domain may arrive in UTF-8 (SMTPUTF8, RFC 6531). DNS, the
 * TLSA base domain, SNI and the DANE-TA reference identifiers all need its
 * A-label form: RFC 7672 3.2.2 compares reference identifiers with DNS-IDs,
 * which hold A-labels (RFC 6125 6.4.2). The conversion is IDNA2008 with the
 * UTS #46 non-transitional mapping (libidn2: NFC input, non-transitional),
 * the lookup rules Postfix applies to UTF-8 domains, so "faß" stays "faß"
 * (xn--fa-hia) instead of becoming "fass".
 *
 * ASCII names are not converted: they pass through relay_dns_host_normalize()
 * (lower case, trailing dot dropped), as before UTF-8 support. An "xn--"
 * label in ASCII input is taken as it is, as Postfix does.
 */
#include <stdbool.h>

#include "relay_dns.h"

/* Bytes kept of a UTF-8 domain (NUL included). RFC 5321 4.5.3.1.2 allows
 * 255 octets of ASCII; a UTF-8 name holds up to four bytes per character,
 * and the UTS #46 mapping may drop characters (U+00AD), so the A-label form
 * decides whether a name is too long, not this buffer. */
#define RELAY_IDN_UTF8_MAX 1024

/* Conversion flags. */
#define RELAY_IDN_ALLOW_UTF8 0x1u /* smtputf8_enable: convert U-labels */

enum relay_idn_err {
	/* Not a valid domain name: invalid UTF-8, a code point IDNA2008 or
	 * UTS #46 disallows, a bad label (hyphens, CONTEXTJ, bidi), or an
	 * A-label form that is no host name (length, characters). */
	RELAY_IDN_ERR_INVALID = -1,
	/* Non-ASCII name, but RELAY_IDN_ALLOW_UTF8 was not given. */
	RELAY_IDN_ERR_UTF8_OFF = -2,
	/* libidn2 ran out of memory. */
	RELAY_IDN_ERR_NOMEM = -3,
};

/* Whether s (NUL-terminated) holds only octets below 0x80. */
bool relay_idn_is_ascii(const char *s);

/*
 * Converts domain (NUL-terminated, borrowed; ASCII or UTF-8, an optional
 * trailing dot) to its DNS form in out: A-labels, lower case, no trailing
 * dot, accepted by relay_dns_host_normalize(). ASCII input is only
 * normalised. Non-ASCII input is converted when flags has
 * RELAY_IDN_ALLOW_UTF8, and its result must consist of letters, digits,
 * hyphens and dots (RFC 5890 2.3.2.1: an A-label is an LDH label).
 *
 * Returns 0, or a negative enum relay_idn_err; out is then "". When detail
 * is not NULL it receives a static string saying what was wrong (libidn2's
 * reason for a refused name), or "" on success.
 */
int relay_idn_to_ascii(const char *domain, unsigned flags,
    char out[RELAY_DNS_HOST_MAX], const char **detail)
    __attribute__((warn_unused_result));

/* Static text for an enum relay_idn_err value. */
const char *relay_idn_strerror(int err);

#endif
