#ifndef RELAY_DNS_TA_H
#define RELAY_DNS_TA_H
/*
 * relay_dns_ta: a syntax check of a DNSSEC trust anchor file
 * (dns_trust_anchor_file), for `danerelay check`.
 *
 * libunbound reads the file only when the first query is made, so a
 * broken file surfaces only once the daemon resolves. This check reads
 * what ub_ctx_add_ta_file() accepts in practice: zone-file lines (RFC 1035
 * 5.1: ';' comments, parentheses joining lines, $ORIGIN/$TTL directives)
 * holding DS (RFC 4034 5.3) or DNSKEY (RFC 4034 2.2) records in
 * presentation format. It does not resolve, does not validate digests and
 * does not allocate.
 */
#include <stddef.h>
#include <stdint.h>

/* Longest reason written into why. */
#define RELAY_DNS_TA_WHY_MAX 160

struct relay_dns_ta_result {
	size_t ds;     /* DS records found */
	size_t dnskey; /* DNSKEY records found */
	unsigned line; /* on error: the 1-based line of the bad record */
	char why[RELAY_DNS_TA_WHY_MAX]; /* on error: what is wrong */
};

/*
 * Checks the trust anchor file content p/len (need not be NUL terminated).
 * Returns 0 when every record is a well-formed DS or DNSKEY and there is
 * at least one; -1 otherwise, with res->line (0 when the file as a whole
 * is at fault) and res->why set. res is always filled.
 */
int relay_dns_ta_check(const uint8_t *p, size_t len,
    struct relay_dns_ta_result *res) __attribute__((warn_unused_result));

#endif
