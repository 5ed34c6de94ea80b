#ifndef TLSA_H
#define TLSA_H
/*
 * tlsa/: RFC 7672 (SMTP security via opportunistic DANE TLS) as a pure
 * decision, plus the OpenSSL glue that applies a decision to one connection.
 *
 * OpenSSL only: no libuv, no libunbound, no clock, no logging. The daemon
 * (relay/) gathers the DNS facts with libunbound, asks this module what to
 * do, prepares the SSL* here, drives the handshake itself over memory BIOs,
 * and asks this module how the peer was authenticated.
 *
 * Flow for one destination (next-hop domain):
 *
 *   1. MX lookup (skipped for [host] and address-literal next-hops), then
 *      tlsa_policy_destination(): use the MX hosts, use the implicit MX,
 *      defer or bounce.
 *   2. For each MX host in preference order (C27-C29: the daemon sorts; a
 *      host's TLSA never changes the order): A/AAAA lookups, then
 *      while (tlsa_policy_tlsa_next(...) == 1) look up _25._tcp.<base>
 *      (tlsa_qname()) and append the answer to host->tlsa[].
 *   3. tlsa_policy_decide() -> struct tlsa_verdict (owns its records:
 *      tlsa_verdict_release()). DO_NOT_CONNECT means do not even open TCP.
 *   4. tlsa_ssl_new(ctx, verdict) -> SSL* ready for SSL_do_handshake().
 *   5. tlsa_ssl_result(ssl, verdict, handshake_ok) -> struct tlsa_result:
 *      ok (policy satisfied, deliver) or not (try the next MX / defer with
 *      result.status, never fall back to cleartext: C19, C21).
 *
 * Conventions (STYLE.md): functions returning int return 0 (or a positive
 * count where stated) on success and a negative enum tlsa_err on failure.
 * Pointer parameters are borrowed for the duration of the call unless stated.
 * Row ids (C18, I13, ...) refer to docs/rfc7672-checklist.md.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define TLSA_MUST_USE __attribute__((warn_unused_result))

/* ---------------------------------------------------------------- errors */

enum tlsa_err {
	TLSA_OK = 0,
	TLSA_ERR_NOMEM = -1, /* allocation failed */
	TLSA_ERR_TRUNCATED =
	    -2,              /* TLSA rdata shorter than its 3 fixed octets */
	TLSA_ERR_INVAL = -3, /* caller error: bad argument or facts */
	TLSA_ERR_NAME =
	    -4, /* not a valid DNS host name (RFC 1035 2.3.4 limits) */
	TLSA_ERR_SYNTAX =
	    -5, /* text form (level, digest list, record) malformed */
	TLSA_ERR_TOO_MANY =
	    -6, /* a fixed limit (TLSA_DIGESTS_MAX, ...) exceeded */
	TLSA_ERR_OPENSSL = -7, /* OpenSSL call failed (see ERR_get_error) */
	TLSA_ERR_SPACE =
	    -8, /* output buffer too small; text truncated, NUL-ended */
	TLSA_ERR_INCOMPLETE =
	    -9, /* decide() called before tlsa_policy_tlsa_next() said done */
};

/* Static English text for a tlsa_err value; never NULL. */
const char *tlsa_strerror(int err);

/* --------------------------------------------------------------- records */

/* RFC 6698 2.1.1 / RFC 7218 mnemonics. */
enum tlsa_usage_value {
	TLSA_USAGE_PKIX_TA = 0,
	TLSA_USAGE_PKIX_EE = 1,
	TLSA_USAGE_DANE_TA = 2,
	TLSA_USAGE_DANE_EE = 3,
};
enum tlsa_selector_value {
	TLSA_SELECTOR_CERT = 0,
	TLSA_SELECTOR_SPKI = 1,
};
enum tlsa_mtype_value {
	TLSA_MTYPE_FULL = 0,
	TLSA_MTYPE_SHA256 = 1,
	TLSA_MTYPE_SHA512 = 2,
	TLSA_MTYPE_PRIVATE = 255,
};

/* TLSA RDATA is at most 65535 octets (RFC 1035 3.2.1 RDLENGTH). */
#define TLSA_RDATA_MAX 65535u
/* Most records one RRset may carry; more is treated as a malformed answer. */
#define TLSA_RRSET_MAX 64u

/* One TLSA record. `data` is a borrowed slice (into the parsed rdata or into
 * the verdict that owns it). */
struct tlsa_record {
	uint8_t usage;
	uint8_t selector;
	uint8_t mtype;
	const uint8_t *data;
	size_t data_len;
};

/*
 * Parse one TLSA RDATA (RFC 6698 2.1): usage(1) selector(1) mtype(1) data.
 * The rdata is complete (the DNS layer gives its length), so there is no
 * AGAIN: returns len (> 0, bytes consumed) or TLSA_ERR_TRUNCATED when
 * len < 3. Zero-length data parses (the record is then unusable). out->data
 * points into p. Never allocates.
 */
TLSA_MUST_USE int tlsa_rdata_parse(const uint8_t *p, size_t len,
    struct tlsa_record *out);

/*
 * Parse the presentation form "U S M hex" (RFC 6698 2.2, hex may contain
 * spaces, either case) into out, writing the data into buf[0..bufsize).
 * Returns 0, TLSA_ERR_SYNTAX or TLSA_ERR_SPACE. Used for config, tests and
 * the OpenSSL corpus.
 */
TLSA_MUST_USE int tlsa_record_from_text(const char *s, size_t len, uint8_t *buf,
    size_t bufsize, struct tlsa_record *out);

/* Why a record is not used. */
enum tlsa_unusable {
	TLSA_USABLE = 0,
	TLSA_UNUSABLE_PKIX_USAGE, /* usage 0/1: RFC 7672 3.1.3 (C49) */
	TLSA_UNUSABLE_USAGE,      /* unknown usage (I22) */
	TLSA_UNUSABLE_SELECTOR,   /* unknown selector (I22) */
	TLSA_UNUSABLE_MTYPE, /* matching type not in the digest list (I12, I22, I23) */
	TLSA_UNUSABLE_PRIVATE_MTYPE, /* 255 PrivDigest from DNS (I22) */
	TLSA_UNUSABLE_DIGEST_LENGTH, /* data length != digest length (I22) */
	TLSA_UNUSABLE_MALFORMED_FULL, /* Full(0) data is not one DER cert / SPKI (I22) */
	TLSA_UNUSABLE_SUPERSEDED, /* a stronger digest exists for the same usage+selector (I13) */
};
/* Static name ("pkix-usage", "digest-length", ...); never NULL. */
const char *tlsa_unusable_name(enum tlsa_unusable u);

/* ----------------------------------------------------- digest agility */

/* RFC 7671 9 (I12, I13, C60, C61): configurable digest order, strongest
 * first, with a configurable mapping from matching type to digest. */
#define TLSA_DIGESTS_MAX 8
#define TLSA_DIGEST_NAME_MAX 31
struct tlsa_digest {
	uint8_t mtype; /* 1..254 */
	uint8_t len;   /* digest length in octets */
	char
	    name[TLSA_DIGEST_NAME_MAX + 1]; /* OpenSSL digest name ("sha512") */
};
struct tlsa_digests {
	size_t n;
	struct tlsa_digest d[TLSA_DIGESTS_MAX]; /* d[0] strongest */
};

/* Default order: SHA2-512(2) over SHA2-256(1) (I03). */
void tlsa_digests_default(struct tlsa_digests *out);

/*
 * Parse a digest order: space/comma separated, strongest first. Each item is
 * "sha512" / "sha256" (standard matching types 2 / 1) or "name=N" mapping an
 * OpenSSL digest name to matching type N (1..254), e.g. "sha384=3 sha256".
 * Digests OpenSSL does not know, duplicate names or types, and an empty list
 * are TLSA_ERR_SYNTAX. Full(0) is always accepted and never listed.
 */
TLSA_MUST_USE int tlsa_digests_parse(const char *s, size_t len,
    struct tlsa_digests *out);

/*
 * Classify an RRset: why[i] receives the verdict for recs[i] (usable or the
 * reason it is not), applying RFC 7672 3.1.3, RFC 6698 4.1 and then digest
 * agility per (usage, selector) over the records that survived (RFC 7671 9:
 * keep only the strongest digest present; Full(0) always kept). Returns the
 * number of usable records (>= 0) or TLSA_ERR_INVAL. Does not allocate
 * except transiently inside OpenSSL for the Full(0) DER check.
 */
TLSA_MUST_USE int tlsa_rrset_classify(const struct tlsa_record *recs, size_t n,
    const struct tlsa_digests *digests, enum tlsa_unusable *why);

/*
 * SHA-256 over the canonical form of a record set: each record encoded as
 * usage|selector|mtype|len16|data, the encodings sorted bytewise, duplicates
 * dropped. Order- and duplicate-independent. Returns 0 or TLSA_ERR_NOMEM /
 * TLSA_ERR_OPENSSL.
 */
TLSA_MUST_USE int tlsa_rrset_digest(const struct tlsa_record *recs, size_t n,
    uint8_t out[32]);

/* "_<port>._tcp.<base>" (C41: the real destination port). Returns 0,
 * TLSA_ERR_NAME or TLSA_ERR_SPACE. */
TLSA_MUST_USE int tlsa_qname(const char *base, uint16_t port, char *buf,
    size_t size);

/* ---------------------------------------------------------------- policy */

/*
 * Configured TLS security level for a destination. There is no "none" here
 * (tlsa_level_parse("none") fails): a per-destination `none` in the
 * daemon's tls_policy_file is passed as `may`, and the daemon then never
 * offers STARTTLS (see README.md, and TLSA_CHANNEL_CLEARTEXT_POLICY).
 */
enum tlsa_level {
	TLSA_LEVEL_DANE = 0,  /* default: opportunistic DANE (RFC 7672 2.2) */
	TLSA_LEVEL_DANE_ONLY, /* mandatory DANE (C25, C30, C62) */
	TLSA_LEVEL_MAY,       /* opportunistic TLS, no TLSA lookups */
	TLSA_LEVEL_ENCRYPT, /* TLS required, no authentication, no TLSA lookups */
	TLSA_LEVEL_VERIFY, /* TLS + PKIX (system CAs) + MX host name; no TLSA lookups */
};
const char *tlsa_level_name(enum tlsa_level l); /* "dane", "dane-only", ... */
TLSA_MUST_USE int tlsa_level_parse(const char *s, size_t len,
    enum tlsa_level *out);

/* DNSSEC status of one answer as the validating resolver reports it (C04).
 * INDETERMINATE is handled exactly like BOGUS (C05). */
enum tlsa_dnssec {
	TLSA_DNSSEC_SECURE = 0,
	TLSA_DNSSEC_INSECURE,
	TLSA_DNSSEC_BOGUS,
	TLSA_DNSSEC_INDETERMINATE,
};
/* What the lookup returned. ERROR: SERVFAIL, timeout, malformed answer,
 * resolver error (its dnssec field is then ignored). */
enum tlsa_answer {
	TLSA_ANSWER_DATA = 0,
	TLSA_ANSWER_NODATA,
	TLSA_ANSWER_NXDOMAIN,
	TLSA_ANSWER_ERROR,
};
struct tlsa_lookup {
	enum tlsa_answer answer;
	enum tlsa_dnssec
	    dnssec; /* of the final answer, C17 applied (insecure once any CNAME step was) */
};

/* Combine the A and AAAA lookups of one host: DATA if either has data;
 * secure only if both are secure; bogus/indeterminate/error in either wins.
 * A daemon that uses one family only passes that lookup alone. */
struct tlsa_lookup tlsa_lookup_combine(struct tlsa_lookup a,
    struct tlsa_lookup aaaa);

#define TLSA_NAME_MAX                                                          \
	253 /* RFC 1035 2.3.4, presentation form without the final dot */

/* Facts about the destination. All strings borrowed for the call. */
struct tlsa_dest_in {
	enum tlsa_level level;
	const char
	    *nexthop; /* next-hop domain as configured / recipient domain */
	bool
	    nexthop_literal; /* "[192.0.2.1]" style or numeric: DANE never applies (C26) */
	bool
	    no_mx; /* "[host]": no MX lookup; nexthop is the host, from config */
	uint16_t port; /* destination port, 25 normally (C41) */
	/* MX lookup (ignored when no_mx or nexthop_literal). */
	struct tlsa_lookup
	    mx; /* dnssec covers any CNAME leading to the MX RRset (C30) */
	bool
	    mx_null; /* the RRset contains "MX 0 ." (RFC 7505), alone or mixed */
	const char *
	    mx_expanded; /* CNAME-expanded next-hop of the MX lookup, NULL if none */
};

/* One TLSA answer for one candidate base domain. */
struct tlsa_tlsa_in {
	const char *
	    base; /* the base domain queried (must equal what tlsa_policy_tlsa_next() said) */
	struct tlsa_lookup res;
	const struct tlsa_record
	    *recs; /* parsed rdata (tlsa_rdata_parse), borrowed */
	size_t n_recs;
	bool malformed; /* some rdata did not parse: the lookup failed (C12) */
};

#define TLSA_BASES_MAX 2 /* expanded name, then original (C39, C44) */

/* Facts about one MX host (or the implicit MX / [host]). */
struct tlsa_host_in {
	const char *
	    name; /* as in the MX RDATA; the next-hop for implicit MX / [host] */
	uint16_t preference; /* informational (the daemon sorts) */
	bool name_numeric;   /* numeric MX data (C26): no DANE */
	struct tlsa_lookup
	    addr; /* tlsa_lookup_combine(A, AAAA): the first address response (C36, C37) */
	const char *
	    expanded; /* CNAME-expanded name of the address lookup, NULL if no CNAME */
	/* Security of the first CNAME (only read when expanded != NULL). Bogus or
	 * indeterminate refuses the host like a failed address lookup (C16, C40). */
	enum tlsa_dnssec first_cname;
	size_t
	    n_tlsa; /* answers appended in the order tlsa_policy_tlsa_next() asked */
	struct tlsa_tlsa_in tlsa[TLSA_BASES_MAX];
};

/* Failure classes, named after the TLSRPT result types (RFC 8460 4.3,
 * IANA registry) where one fits; the last three are local DNS classes. */
enum tlsa_failure {
	TLSA_FAIL_NONE = 0,
	TLSA_FAIL_STARTTLS_NOT_SUPPORTED, /* "starttls-not-supported" (set by the relay) */
	TLSA_FAIL_CERT_HOST_MISMATCH, /* "certificate-host-mismatch" */
	TLSA_FAIL_CERT_EXPIRED,       /* "certificate-expired" */
	TLSA_FAIL_CERT_NOT_TRUSTED,   /* "certificate-not-trusted" */
	TLSA_FAIL_VALIDATION, /* "validation-failure" (handshake or other) */
	TLSA_FAIL_TLSA_INVALID, /* "tlsa-invalid" (malformed / no usable record under dane-only) */
	TLSA_FAIL_DNSSEC_INVALID, /* "dnssec-invalid" (bogus, indeterminate, lookup error) */
	TLSA_FAIL_DANE_REQUIRED, /* "dane-required" (dane-only without DANE) */
	TLSA_FAIL_DNS_ERROR, /* "dns-error": non-DNSSEC lookup failure (local) */
	TLSA_FAIL_HOST_NOT_FOUND, /* "host-not-found": no address / no domain (local) */
	TLSA_FAIL_NULL_MX, /* "null-mx": RFC 7505 (local) */
};
const char *tlsa_failure_name(enum tlsa_failure f); /* the strings above */

#define TLSA_STATUS_MAX 15 /* "4.7.5" */
#define TLSA_REASON_MAX 255

enum tlsa_dest_action {
	TLSA_DEST_USE_MX = 0, /* connect to the MX hosts (mx.answer == DATA) */
	TLSA_DEST_IMPLICIT, /* no MX: the next-hop itself is the only host (I27), or [host] */
	TLSA_DEST_LITERAL, /* address literal: connect to it, no DANE (C26) */
	TLSA_DEST_DEFER, /* temporary failure for the whole destination (C09, C30) */
	TLSA_DEST_BOUNCE, /* permanent: null MX (I32), NXDOMAIN next-hop (I25) */
};
const char *tlsa_dest_action_name(enum tlsa_dest_action a);

struct tlsa_dest_verdict {
	enum tlsa_dest_action action;
	bool mx_secure; /* host names are trustworthy for C33 logging */
	char status[TLSA_STATUS_MAX +
	    1]; /* "4.7.5", "5.1.10", ""; set for DEFER/BOUNCE */
	enum tlsa_failure fclass;
	char reason[TLSA_REASON_MAX + 1];
};

/*
 * Decide what to do with a destination after its MX lookup. Pure; fills
 * *out completely. Returns 0 or TLSA_ERR_INVAL / TLSA_ERR_NAME (bad facts).
 */
TLSA_MUST_USE int tlsa_policy_destination(const struct tlsa_dest_in *dest,
    struct tlsa_dest_verdict *out);

/*
 * Whether another TLSA lookup is needed for this host, given host->n_tlsa
 * answers so far (C11, C36, C37, C39, C44; never for may/encrypt/verify,
 * literals, numeric MX data, or after an insecure/failed address lookup).
 * Returns 1 and sets *base (borrowed from host->name / host->expanded) to the
 * TLSA base domain to query at _<port>._tcp.<base>; 0 when no (more) TLSA
 * lookups are needed; TLSA_ERR_INVAL on inconsistent facts.
 */
TLSA_MUST_USE int tlsa_policy_tlsa_next(const struct tlsa_dest_in *dest,
    const struct tlsa_host_in *host, const char **base);

enum tlsa_verdict_kind {
	TLSA_VERDICT_DANE = 0, /* DANE-authenticated TLS required (C18, C50) */
	TLSA_VERDICT_ENCRYPT, /* TLS required, no authentication (C20, C43, level encrypt) */
	TLSA_VERDICT_MAY, /* opportunistic TLS, cleartext allowed (C22, C23) */
	TLSA_VERDICT_VERIFY, /* TLS + PKIX with the system CAs, name = MX host */
	TLSA_VERDICT_DO_NOT_CONNECT, /* see status/fclass/reason/scope */
};
const char *tlsa_verdict_kind_name(enum tlsa_verdict_kind
        k); /* "dane", "encrypt", "may", "verify", "do-not-connect" */

/* How a successful delivery under this verdict may be logged (C33). */
enum tlsa_trust {
	TLSA_TRUST_NONE = 0,  /* cleartext */
	TLSA_TRUST_UNTRUSTED, /* TLS, peer not authenticated */
	TLSA_TRUST_TRUSTED, /* authenticated, but the MX name came from insecure DNS (C33) */
	TLSA_TRUST_VERIFIED, /* authenticated for the next-hop domain */
};
const char *tlsa_trust_name(
    enum tlsa_trust t); /* "none", "Untrusted", "Trusted", "Verified" */

enum tlsa_scope {
	TLSA_SCOPE_HOST = 0,   /* skip this MX host, try the next (C10, C14) */
	TLSA_SCOPE_DESTINATION /* the whole destination defers/bounces */
};

#define TLSA_REFS_MAX 3

struct tlsa_verdict {
	/* read-only */
	enum tlsa_verdict_kind kind;
	enum tlsa_trust
	    log_as; /* trust to log if the handshake satisfies the verdict */
	enum tlsa_level level; /* input, for logging */
	bool mx_secure;        /* input summary, for logging */
	bool addr_secure;
	enum tlsa_dnssec
	    tlsa_dnssec; /* of the TLSA answer used (when tlsa_looked_up) */
	enum tlsa_answer tlsa_answer;
	bool tlsa_looked_up;
	size_t n_tlsa; /* records in the TLSA answer used */
	/* DANE / VERIFY: base domain = SNI (C63, I11, I14); for VERIFY the MX
	 * host; for ENCRYPT from unusable TLSA the base domain (SNI only). */
	char base_domain[TLSA_NAME_MAX + 1];
	/* Reference identifiers for name checks, primary first (C53-C56). For
	 * DANE they matter for DANE-TA(2) only; DANE-EE(3) has none (C52). */
	size_t n_refs;
	char refs[TLSA_REFS_MAX][TLSA_NAME_MAX + 1];
	/* DANE: the usable records after agility (C61), owned by the verdict. */
	size_t n_usable;
	struct tlsa_record *usable;
	/* SHA-256 of the usable records (tlsa_rrset_digest), zero unless DANE. */
	uint8_t rrset_digest[32];
	/* DO_NOT_CONNECT */
	enum tlsa_scope scope;
	bool permanent; /* bounce rather than defer (null MX, NXDOMAIN) */
	char status[TLSA_STATUS_MAX + 1];
	enum tlsa_failure fclass;
	char reason[TLSA_REASON_MAX + 1];
	/* private */
	uint8_t *blob_;
};

/*
 * The RFC 7672 decision for one host. Pure (no I/O, no clock). Applies the
 * destination decision first, so a destination that must defer yields
 * DO_NOT_CONNECT with scope DESTINATION. *out is overwritten (release any
 * previous verdict first) and must be released with tlsa_verdict_release()
 * even on error. Returns 0; TLSA_ERR_INCOMPLETE when tlsa_policy_tlsa_next()
 * would still ask for a lookup; TLSA_ERR_INVAL / TLSA_ERR_NAME for bad facts
 * (a caller bug: the daemon should then defer); TLSA_ERR_NOMEM.
 * digests: NULL means tlsa_digests_default().
 */
TLSA_MUST_USE int tlsa_policy_decide(const struct tlsa_dest_in *dest,
    const struct tlsa_host_in *host, const struct tlsa_digests *digests,
    struct tlsa_verdict *out);

/* Free what a verdict owns and zero it. NULL and zeroed verdicts are fine. */
void tlsa_verdict_release(struct tlsa_verdict *v);

/* Deep copy (the copy owns its records). Returns 0 or TLSA_ERR_NOMEM. */
TLSA_MUST_USE int tlsa_verdict_copy(struct tlsa_verdict *dst,
    const struct tlsa_verdict *src);

/*
 * How an SMTP connection carries its messages, beyond what the verdict says.
 * A cached connection is keyed by it as well as by the verdict: a verdict of
 * kind MAY is satisfied by a TLS session and by a cleartext one alike, so
 * without it a cleartext session would serve a destination that would have
 * had TLS on a new connection.
 */
enum tlsa_channel {
	TLSA_CHANNEL_TLS = 0,   /* STARTTLS done, the verdict satisfied */
	TLSA_CHANNEL_CLEARTEXT, /* MAY, and the server offered no STARTTLS */
	TLSA_CHANNEL_CLEARTEXT_POLICY, /* MAY, STARTTLS never tried: the daemon's
	                                   per-destination "none" (it passes MAY) */
};

/*
 * Key for a connection cache: SHA-256 over the configured level, kind, base
 * domain, reference identifiers, the usable-record digest, and the channel.
 * Two (verdict, channel) pairs with the same key were configured, and
 * authenticate and encrypt, the same way, so a connection made for one may
 * serve the other. Postfix likewise folds the TLS security level into its
 * connection-cache key. Returns 0, TLSA_ERR_INVAL (NULL argument or a
 * channel out of range) or TLSA_ERR_OPENSSL / TLSA_ERR_NOMEM.
 */
TLSA_MUST_USE int tlsa_verdict_cache_key(const struct tlsa_verdict *v,
    enum tlsa_channel channel, uint8_t out[32]);

/*
 * Log fields for the decision: `dane=dane mx_secure=yes addr_secure=yes
 * tlsa=secure/data n_tlsa=2 usable=1 verdict=dane sni=mx.example
 * refs=mx.example,example.com log_as=Verified` or, for DO_NOT_CONNECT,
 * `... verdict=do-not-connect scope=host dsn=4.7.5 class=dnssec-invalid
 * why="..."`. Untrusted text is escaped. Returns 0 or TLSA_ERR_SPACE.
 */
TLSA_MUST_USE int tlsa_verdict_format(const struct tlsa_verdict *v, char *buf,
    size_t size);

/* ----------------------------------------------------------- OpenSSL glue */

struct tlsa_ctx; /* opaque: the client SSL_CTXs, built once */

struct tlsa_ctx_config {
	const struct tlsa_digests *digests; /* NULL: default order */
	/* Trust anchors for level verify ONLY (never for DANE: the DANE context
	 * has an empty store). Both NULL: OpenSSL's default system paths. */
	const char *ca_file;
	const char *ca_path;
	/* Minimum protocol for DANE and VERIFY (0: TLS1_2_VERSION) and for
	 * ENCRYPT and MAY (0: TLS1_VERSION, at security level 0 since OpenSSL 3
	 * refuses TLS < 1.2 otherwise; I01). */
	int auth_min_version;
	int unauth_min_version;
	/* Verification time in seconds since the epoch; 0 = OpenSSL uses the
	 * clock. Tests pin it so fixtures never expire. */
	int64_t verify_time;
};

/* Build the contexts. Returns 0 and *out (free with tlsa_ctx_free) or
 * TLSA_ERR_OPENSSL / TLSA_ERR_NOMEM / TLSA_ERR_INVAL. */
TLSA_MUST_USE int tlsa_ctx_new(const struct tlsa_ctx_config *cfg,
    struct tlsa_ctx **out);
void tlsa_ctx_free(struct tlsa_ctx *ctx);

/*
 * A client SSL* prepared for one connection under verdict v (kind DANE,
 * ENCRYPT, MAY or VERIFY; DO_NOT_CONNECT is TLSA_ERR_INVAL): connect state,
 * SNI, DANE enabled with the base domain (RFC 7672 8.1, C63), reference
 * identifiers added (C53-C56), DANE_FLAG_NO_DANE_EE_NAMECHECKS (C52), only
 * the usable records added (C50), peer verification on so a failure aborts
 * the handshake (I24). The caller owns *out (SSL_free) and sets its BIOs; v
 * must stay valid until tlsa_ssl_result(). Session resumption is disabled.
 */
TLSA_MUST_USE int tlsa_ssl_new(struct tlsa_ctx *ctx,
    const struct tlsa_verdict *v, SSL **out);

enum tlsa_auth {
	TLSA_AUTH_NONE = 0, /* no TLS session (handshake failed) */
	TLSA_AUTH_MAY,      /* TLS, unauthenticated, opportunistic */
	TLSA_AUTH_ENCRYPT,  /* TLS, unauthenticated, required */
	TLSA_AUTH_VERIFIED, /* PKIX + host name (level verify) */
	TLSA_AUTH_DANE_EE,  /* matched a DANE-EE(3) record */
	TLSA_AUTH_DANE_TA,  /* matched a DANE-TA(2) record + name check */
};
const char *tlsa_auth_name(enum tlsa_auth
        a); /* "none", "may", "encrypt", "verified", "dane-ee", "dane-ta" */

#define TLSA_MATCH_TEXT_MAX 63 /* "3 1 1 " + hex, truncated with ".." */

struct tlsa_result {
	bool ok; /* the verdict is satisfied: deliver over this session */
	enum tlsa_auth auth;
	enum tlsa_trust
	    trust; /* what to log: Verified/Trusted/Untrusted/none */
	int depth; /* SSL_get0_dane_authority depth, -1 if none */
	char matched[TLSA_MATCH_TEXT_MAX + 1]; /* "3 1 1 ab12..", "" if none */
	char peername[TLSA_NAME_MAX +
	    1]; /* reference id that matched (DANE-TA/verify), "" */
	bool have_spki;
	uint8_t spki_sha256
	    [32];          /* SHA-256 of the peer leaf's SubjectPublicKeyInfo */
	char subject[128]; /* peer leaf subject (RFC 2253, escaped), "" */
	char
	    dns_names[256]; /* peer leaf DNS SANs, comma separated, truncated */
	char protocol[16];  /* "TLSv1.3", "" */
	char cipher[64];
	/* Certificates the server sent, leaf included (0 when none or not
	 * known): a DANE-TA trust anchor must be among them (RFC 7671 5.2.2). */
	int chain_len;
	/* when !ok */
	enum tlsa_failure fclass;
	long x509_err; /* SSL_get_verify_result, X509_V_OK if n/a */
	char status[TLSA_STATUS_MAX +
	    1]; /* "4.7.5" whenever !ok (RFC 7672 has no codes: departure 6) */
	char why[TLSA_REASON_MAX + 1];
};

/*
 * Interpret a connection after the handshake. handshake_ok: the caller's
 * SSL_do_handshake() returned 1. Fills *out completely; never fails for a
 * protocol reason (that is out->ok == false). Returns 0 or TLSA_ERR_INVAL.
 */
TLSA_MUST_USE int tlsa_ssl_result(SSL *ssl, const struct tlsa_verdict *v,
    bool handshake_ok, struct tlsa_result *out);

/*
 * PKIX (RFC 5280) and RFC 6125 host name check of the chain the peer sent
 * on ssl, against ctx's `verify` store (ca_file / ca_path), with host as
 * the one reference identifier, as a VERIFY verdict for host would judge
 * it, but after the fact and without touching the session: for MTA-STS
 * testing mode (RFC 8461 5), where delivery goes on as before and only the
 * would-be failure is reported. Sets *x509_err (X509_V_OK when the chain
 * is valid for host; X509_V_ERR_UNSPECIFIED when the peer sent none) and
 * *fclass (TLSA_FAIL_NONE when valid, else the class tlsa_ssl_result()
 * gives a VERIFY session that fails so). Returns 0, TLSA_ERR_INVAL or
 * TLSA_ERR_OPENSSL / TLSA_ERR_NOMEM.
 */
TLSA_MUST_USE int tlsa_ssl_pkix_check(struct tlsa_ctx *ctx, SSL *ssl,
    const char *host, long *x509_err, enum tlsa_failure *fclass);

/*
 * Log fields: `tls=dane-ee trust=Verified depth=0 tlsa="3 1 1 ab12.."
 * spki=sha256:... protocol=TLSv1.3 cipher=... subject="..." san="..."` or on
 * failure `tls=none class=certificate-not-trusted dsn=4.7.5 x509="..."
 * why="..."`. Returns 0 or TLSA_ERR_SPACE (truncated, NUL-ended).
 */
TLSA_MUST_USE int tlsa_result_format(const struct tlsa_result *r, char *buf,
    size_t size);

#endif /* TLSA_H */
