/*
 * tlsa_hint: the likely mistake behind a DANE-EE/DANE-TA mismatch, from the
 * host's key history (tlsa_hint.h).
 */
#include <string.h>

#include <openssl/evp.h>

#include "tlsa_hint.h"

static const struct {
	const char *name;
	const char *text;
} hints[] = {
	[TLSA_HINT_NONE] = { "", "" },
	[TLSA_HINT_NEW_KEY_BEFORE_TLSA] = { "new-key-before-tlsa",
	    "the server presents a new key that no TLSA record names, while "
	    "its previous key still matches one: the key was rotated before "
	    "its TLSA record was published; publish a record for the new key "
	    "(RFC 7671 section 8.1: publish, wait the TTL, then switch)" },
	[TLSA_HINT_CERT_RENEWED_3_0] = { "cert-renewed-3-0",
	    "the server still presents the key that matched before, but its "
	    "\"3 0 x\" record pins the whole certificate, which was renewed; "
	    "publish \"3 1 1\" records, which survive renewals with the same "
	    "key (RFC 7671 section 5.1)" },
	[TLSA_HINT_TA_CHAIN_MISSING] = { "ta-chain-missing",
	    "the TLSA records are \"2 x x\" (DANE-TA) but the server sends its "
	    "certificate without the issuer chain; configure the server to "
	    "send the full chain (RFC 7671 section 5.2.2)" },
	[TLSA_HINT_TLSA_UNSEEN_KEY] = { "tlsa-unseen-key",
	    "a TLSA record names a key this server was never seen to present: "
	    "the record for a key not yet deployed replaced the one in use, or "
	    "the wrong key was hashed; keep a record for the key in use until "
	    "the new key is deployed (RFC 7671 section 8.1)" },
};

#define NHINTS (sizeof(hints) / sizeof(hints[0]))

const char *
tlsa_hint_name(enum tlsa_hint h)
{
	return (size_t)h < NHINTS ? hints[h].name : "";
}

const char *
tlsa_hint_text(enum tlsa_hint h)
{
	return (size_t)h < NHINTS ? hints[h].text : "";
}

enum tlsa_hint
tlsa_hint_parse(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return TLSA_HINT_NONE;
	for (size_t i = 1; i < NHINTS; i++)
		if (strcmp(hints[i].name, name) == 0)
			return (enum tlsa_hint)i;
	return TLSA_HINT_NONE;
}

const char *
tlsa_hint_text_of(const char *name)
{
	return tlsa_hint_text(tlsa_hint_parse(name));
}

uint64_t
tlsa_hint_key_prefix(const uint8_t sha256[32])
{
	uint64_t v = 0;
	for (size_t i = 0; i < TLSA_HINT_KEY_PREFIX; i++)
		v = (v << 8) | sha256[i];
	return v;
}

/* The key prefix a "3 1 x" record names: its digest for 3 1 1, the SHA-256
 * of the key for 3 1 0. false for 3 1 2 (a SHA-512 cannot be compared
 * with the SHA-256 history) and for records of other shapes. */
static bool
record_key_prefix(const struct tlsa_record *r, uint64_t *out)
{
	if (r->usage != TLSA_USAGE_DANE_EE || r->selector != TLSA_SELECTOR_SPKI)
		return false;
	if (r->mtype == TLSA_MTYPE_SHA256 && r->data_len == 32) {
		*out = tlsa_hint_key_prefix(r->data);
		return true;
	}
	if (r->mtype == TLSA_MTYPE_FULL && r->data_len > 0) {
		uint8_t d[32];
		unsigned int len = 0;
		if (EVP_Digest(r->data, r->data_len, d, &len, EVP_sha256(),
		        NULL) != 1 ||
		    len != 32)
			return false;
		*out = tlsa_hint_key_prefix(d);
		return true;
	}
	return false;
}

static bool
some_record_names(const struct tlsa_hint_facts *f, uint64_t key)
{
	for (size_t i = 0; i < f->n_recs; i++) {
		uint64_t k;
		if (record_key_prefix(&f->recs[i], &k) && k == key)
			return true;
	}
	return false;
}

enum tlsa_hint
tlsa_hint_diagnose(const struct tlsa_hint_facts *f)
{
	if (f == NULL || f->n_recs == 0)
		return TLSA_HINT_NONE;
	bool only_3_0 = true, only_2 = true, any_3_1 = false;
	for (size_t i = 0; i < f->n_recs; i++) {
		const struct tlsa_record *r = &f->recs[i];
		if (r->usage != TLSA_USAGE_DANE_EE ||
		    r->selector != TLSA_SELECTOR_CERT)
			only_3_0 = false;
		if (r->usage != TLSA_USAGE_DANE_TA)
			only_2 = false;
		uint64_t k;
		if (record_key_prefix(r, &k))
			any_3_1 = true;
	}
	uint64_t cur = f->have_key ? tlsa_hint_key_prefix(f->key_sha256) : 0;

	/* (1) Rotated before publishing: a new key, no record for it, and the
	 * previous key still named by a record. */
	if (f->have_key && f->have_history && f->last_key != cur &&
	    !some_record_names(f, cur) && some_record_names(f, f->last_key))
		return TLSA_HINT_NEW_KEY_BEFORE_TLSA;
	/* (2) Same key as when it matched, but only whole-certificate pins. */
	if (only_3_0 && f->have_key && f->have_history && f->ever_matched &&
	    f->last_key == cur)
		return TLSA_HINT_CERT_RENEWED_3_0;
	/* (3) DANE-TA only, and the server sends its leaf alone. */
	if (only_2 && f->chain_len == 1)
		return TLSA_HINT_TA_CHAIN_MISSING;
	/* (4) A key record naming none of the keys ever seen here. */
	if (any_3_1 && f->have_key) {
		bool named_seen = some_record_names(f, cur) ||
		    (f->have_history &&
		        (some_record_names(f, f->first_key) ||
		            some_record_names(f, f->last_key)));
		if (!named_seen)
			return TLSA_HINT_TLSA_UNSEEN_KEY;
	}
	return TLSA_HINT_NONE;
}
