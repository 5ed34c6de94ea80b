#ifndef RELAY_STS_POLICY_H
#define RELAY_STS_POLICY_H
/*
 * relay_sts_policy: the pure half of MTA-STS (RFC 8461): the
 * `_mta-sts.<domain>` TXT record, the policy file served at
 * https://mta-sts.<domain>/.well-known/mta-sts.txt, and the MX pattern
 * match. No I/O, no clock, no allocation, no logging (STYLE.md 5): inputs
 * are (pointer, length) and never need a NUL.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 8461 3.1: sts-id = 1*32( ALPHA / DIGIT ). */
#define RELAY_STS_ID_MAX 32
/* RFC 8461 3.2: max_age is at most 31557600 seconds (about one year). */
#define RELAY_STS_MAX_AGE_CAP 31557600u
/* RFC 8461 3.3: senders may refuse a policy body larger than 64 KiB. */
#define RELAY_STS_BODY_MAX (64u * 1024u)
/* Patterns kept per policy. A policy naming more is refused as malformed
 * (a bound on what a remote document makes us hold; real policies name a
 * handful). */
#define RELAY_STS_MX_MAX 64
/* A pattern is a host name or "*." plus a domain: 253 characters
 * (RFC 1035 2.3.4) plus the NUL. */
#define RELAY_STS_NAME_MAX 254

enum relay_sts_err {
	RELAY_STS_OK = 0,
	RELAY_STS_ERR_SYNTAX = -1,  /* does not follow the RFC 8461 grammar */
	RELAY_STS_ERR_VERSION = -2, /* not v=STSv1 / version: STSv1 */
	RELAY_STS_ERR_MODE = -3,    /* mode missing or unknown */
	RELAY_STS_ERR_MAX_AGE = -4, /* max_age missing or not 1*10DIGIT */
	RELAY_STS_ERR_MX = -5,      /* no mx with mode enforce/testing, or a
	                                bad pattern */
	RELAY_STS_ERR_TOO_BIG = -6, /* over RELAY_STS_BODY_MAX or
	                                RELAY_STS_MX_MAX */
};

const char *relay_sts_strerror(int err);

enum relay_sts_mode {
	RELAY_STS_MODE_NONE = 0, /* RFC 8461 5: as if there were no policy */
	RELAY_STS_MODE_TESTING,
	RELAY_STS_MODE_ENFORCE,
};
const char *relay_sts_mode_name(enum relay_sts_mode m); /* "none", ... */

/* One parsed policy (RFC 8461 3.2). A value type: copy it freely. */
struct relay_sts_policy {
	enum relay_sts_mode mode;
	uint32_t max_age; /* seconds, capped at RELAY_STS_MAX_AGE_CAP */
	size_t n_mx;
	char mx[RELAY_STS_MX_MAX]
	       [RELAY_STS_NAME_MAX]; /* lowercase, no final dot */
};

/*
 * Parse one TXT record (its strings already concatenated, RFC 8461 3.1):
 * "v=STSv1; id=<1..32 alphanumerics>" with optional further
 * `name=value` fields, fields separated by ';' and optional spaces or tabs,
 * an optional final ';'. Writes the id, NUL-terminated, to id
 * (RELAY_STS_ID_MAX + 1 bytes). Returns 0, RELAY_STS_ERR_VERSION when the
 * record does not start with "v=STSv1" (such records are not MTA-STS
 * records at all and are discarded before counting, 3.1), or
 * RELAY_STS_ERR_SYNTAX.
 */
int relay_sts_txt_parse(const uint8_t *p, size_t len,
    char id[RELAY_STS_ID_MAX + 1]) __attribute__((warn_unused_result));

/*
 * Parse a policy body (RFC 8461 3.2): lines ending in CRLF or LF (the last
 * may lack it), each `name *WSP ":" *WSP value *WSP`. version must be
 * STSv1; mode enforce, testing or none; max_age 1*10DIGIT (capped, 3.2);
 * mx repeatable, required unless the mode is none. Unknown fields are
 * ignored (3.2: extensions); for a repeated field other than mx the first
 * wins. Returns 0 and fills *out, or a negative relay_sts_err.
 */
int relay_sts_policy_parse(const uint8_t *p, size_t len,
    struct relay_sts_policy *out) __attribute__((warn_unused_result));

/*
 * RFC 8461 4.1: does MX host name host (any case, an optional final dot)
 * match one of the policy's patterns? A pattern "*.example.com" matches
 * exactly one more leftmost label ("mx.example.com", not
 * "a.b.example.com" nor "example.com"); any other pattern matches the
 * name exactly, case-insensitively.
 */
bool relay_sts_mx_match(const struct relay_sts_policy *pol, const char *host);

/* Media type check of RFC 8461 3.3: "text/plain", any case, optionally
 * followed by parameters (";charset=utf-8"). ct may be NULL (false). */
bool relay_sts_media_type_ok(const char *ct);

#endif
