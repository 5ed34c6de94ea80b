/* relay_idn: recipient domain -> A-label form (RFC 5890, UTS #46). */
#include <string.h>

#include <idn2.h>

#include "relay_idn.h"

bool
relay_idn_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* RFC 5890 2.3.2.1: an A-label is an LDH label; so is every other label of
 * a host name (RFC 1123 2.1). libidn2 without STD3 rules lets other ASCII
 * through ("ä_b" -> "xn--_b-uia"), which is no name a host can have. */
static bool
ldh_only(const char *s)
{
	for (; *s != '\0'; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

int
relay_idn_to_ascii(const char *domain, unsigned flags,
    char out[RELAY_DNS_HOST_MAX], const char **detail)
{
	const char *why = "";
	int rc = 0;

	out[0] = '\0';
	if (relay_idn_is_ascii(domain)) {
		if (relay_dns_host_normalize(domain, strlen(domain), out) !=
		    0) {
			why = "not a valid host name";
			rc = RELAY_IDN_ERR_INVALID;
		}
		goto done;
	}
	if (!(flags & RELAY_IDN_ALLOW_UTF8)) {
		why = "UTF-8 domains are not converted to A-labels";
		rc = RELAY_IDN_ERR_UTF8_OFF;
		goto done;
	}
	/* IDNA2008 lookup (RFC 5891 5) after the UTS #46 non-transitional
	 * mapping: case folding and NFC, deviation characters (ß, ς, ZWJ,
	 * ZWNJ) kept as IDNA2008 defines them. libidn2 also checks the result
	 * (hyphens, CONTEXTJ, bidi, label and name length) and that each
	 * A-label decodes back to its U-label. */
	char *ascii = NULL;
	int r = idn2_to_ascii_8z(domain, &ascii,
	    IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	if (r != IDN2_OK) {
		why = idn2_strerror(r);
		rc = r == IDN2_MALLOC ? RELAY_IDN_ERR_NOMEM
		                      : RELAY_IDN_ERR_INVALID;
		goto done;
	}
	if (!ldh_only(ascii)) {
		why = "a label is not letters, digits and hyphens";
		rc = RELAY_IDN_ERR_INVALID;
	} else if (relay_dns_host_normalize(ascii, strlen(ascii), out) != 0) {
		why = "the A-label form is not a valid host name";
		rc = RELAY_IDN_ERR_INVALID;
	}
	idn2_free(ascii);
done:
	if (rc != 0)
		out[0] = '\0';
	if (detail != NULL)
		*detail = why;
	return rc;
}

const char *
relay_idn_strerror(int err)
{
	switch ((enum relay_idn_err)err) {
	case RELAY_IDN_ERR_INVALID:
		return "not a valid domain name (IDNA2008, UTS #46)";
	case RELAY_IDN_ERR_UTF8_OFF:
		return "non-ASCII domain name, and smtputf8_enable = no";
	case RELAY_IDN_ERR_NOMEM:
		return "out of memory";
	}
	return err == 0 ? "ok" : "unknown error";
}
