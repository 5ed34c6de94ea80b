#ifndef TLSA_HINT_H
#define TLSA_HINT_H
/*
 * tlsa_hint: names the likely operator mistake behind a DANE
 * authentication failure (class tlsa-mismatch), from what the server
 * presents now and what it presented before. Pure: no I/O, no allocation,
 * no OpenSSL state (one SHA-256 of a "3 1 0" record's data).
 *
 * RFC 7671 section 8.1 gives the safe order of a key rollover: publish the
 * TLSA record of the new key next to the old one, wait at least the TTL,
 * then deploy the new key, and only then withdraw the old record. Each
 * hint names one way of departing from that order, or from the record
 * choices of RFC 7671 sections 5.1 and 5.2.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsa.h"

enum tlsa_hint {
	TLSA_HINT_NONE = 0,
	/* The server presents a key no TLSA record names while the key it
	 * presented before still matches a record: the key was deployed
	 * before its TLSA record was published (RFC 7671 8.1). */
	TLSA_HINT_NEW_KEY_BEFORE_TLSA,
	/* Only "3 0 x" records (the whole certificate), the server presents
	 * the same key as when it last matched: the certificate was renewed
	 * with the same key, which a "3 1 1" record survives (RFC 7671 5.1). */
	TLSA_HINT_CERT_RENEWED_3_0,
	/* Only "2 x x" records and the server sends its leaf alone: a DANE-TA
	 * trust anchor must be in the chain the server sends (RFC 7671 5.2.2). */
	TLSA_HINT_TA_CHAIN_MISSING,
	/* A "3 1 x" record names a key this server was never seen to present:
	 * a record for a key not yet deployed replaced the one in use, or the
	 * wrong key was hashed (RFC 7671 8.1). */
	TLSA_HINT_TLSA_UNSEEN_KEY,
};

/* "new-key-before-tlsa", "cert-renewed-3-0", "ta-chain-missing",
 * "tlsa-unseen-key"; "" for NONE. Never NULL. */
const char *tlsa_hint_name(enum tlsa_hint h);
/* One sentence for an operator (reports, DSNs); "" for NONE. */
const char *tlsa_hint_text(enum tlsa_hint h);
/* The hint a name denotes (TLSA_HINT_NONE for NULL, "" and unknown). */
enum tlsa_hint tlsa_hint_parse(const char *name);
/* The same sentence for a name as spelled in an envelope ("" if unknown). */
const char *tlsa_hint_text_of(const char *name);

/* Length of a key prefix kept in history: the first 8 octets of the
 * SHA-256 of a SubjectPublicKeyInfo, compared with the first 8 octets of
 * a "3 1 1" record's data. */
#define TLSA_HINT_KEY_PREFIX 8

struct tlsa_hint_facts {
	/* The usable TLSA records of the host (borrowed). */
	const struct tlsa_record *recs;
	size_t n_recs;
	/* The key presented now: SHA-256 of the leaf's SPKI. */
	bool have_key;
	uint8_t key_sha256[32];
	/* Certificates the server sent, leaf included (0: unknown). */
	int chain_len;
	/* History of this host: prefixes of the first and last key seen, and
	 * whether a DANE handshake with it ever matched a record. */
	bool have_history;
	uint64_t first_key;
	uint64_t last_key;
	bool ever_matched;
};

/* The key prefix of a SHA-256 digest (big-endian first 8 octets). */
uint64_t tlsa_hint_key_prefix(const uint8_t sha256[32]);

/*
 * The likely mistake for a tlsa-mismatch with facts f (borrowed), or
 * TLSA_HINT_NONE when the history says nothing. Checked in the order of
 * enum tlsa_hint: the first that applies wins.
 */
enum tlsa_hint tlsa_hint_diagnose(const struct tlsa_hint_facts *f);

#endif
