#ifndef RELAY_DNS_H
#define RELAY_DNS_H
/*
 * relay_dns: DNSSEC-validated DNS for the relay, on libunbound inside the one
 * libuv loop.
 *
 * Three layers, each usable on its own:
 *
 * 1. Pure functions (relay_dns_rdata.c; no I/O, no allocation): bounded
 *    parsers for the rdata libunbound hands back (MX, A, AAAA; TLSA rdata
 *    goes through tlsa/'s tlsa_rdata_parse()), the
 *    classification of a struct ub_result into a typed DNSSEC status, MX
 *    ordering with an injected RNG, host name normalisation.
 *
 * 2. The resolver context (relay_dns.c): one ub_ctx in threaded async mode
 *    (ub_ctx_async(ctx, 1): a worker thread inside this process; no fork, so
 *    no second process holding copies of the daemon's keys and sockets, and
 *    ASan sees every allocation). Its result pipe, ub_fd(), is polled by a
 *    uv_poll_t and drained with ub_process(). Single lookups with a per-query
 *    deadline, and the known-answer self-test.
 *
 * 3. The destination driver (relay_dns_dest.c): next-hop domain ->
 *    MX -> A/AAAA -> TLSA for every MX host, delivered as one owned
 *    struct relay_dns_result (RFC 7672 2.1, 2.2.1, 2.2.2, 2.2.3; RFC 5321 5.1;
 *    RFC 7505).
 *
 * Thread safety: everything runs on the loop thread. Callbacks never run from
 * inside the call that starts the work (libuv's rule: an error return means
 * the callback never runs).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "relay_config.h"
#include "tlsa.h"

struct ub_result;
struct relay_config;
struct relay_config_fwd;
struct relay_metrics;

/* Debian's dns-root-data package (RFC 5011 rollovers arrive as package
 * updates, so the file is read, never written: ub_ctx_add_ta_file). */
#define RELAY_DNS_ROOT_KEY "/usr/share/dns/root.key"

/* Text form of a host name, lowercase, without the trailing dot: at most 253
 * characters for the 255-octet wire limit (RFC 1035 3.1) plus the NUL. */
#define RELAY_DNS_HOST_MAX 254
/* Upper bounds on what one destination may make us do. Postfix defaults to
 * 5 MX addresses per delivery; 16 hosts and 32 addresses per family keep the
 * work bounded while never dropping a realistic MX set. */
#define RELAY_DNS_MAX_MX 16
#define RELAY_DNS_MAX_ADDRS 32

#define RELAY_DNS_TYPE_A 1
#define RELAY_DNS_TYPE_CNAME 5
#define RELAY_DNS_TYPE_SOA 6
#define RELAY_DNS_TYPE_MX 15
#define RELAY_DNS_TYPE_AAAA 28
#define RELAY_DNS_TYPE_TLSA 52

enum relay_dns_err {
	RELAY_DNS_OK = 0,
	RELAY_DNS_ERR_NOMEM = -1,
	RELAY_DNS_ERR_CONFIG = -2,    /* libunbound refused an option or file */
	RELAY_DNS_ERR_RESOLVER = -3,  /* ub_resolve_async() failed */
	RELAY_DNS_ERR_MALFORMED = -4, /* rdata does not follow its schema */
	RELAY_DNS_ERR_NAME = -5,      /* not a host name (LDH/underscore) */
	RELAY_DNS_ERR_LOOP = -6,      /* a libuv call failed */
	RELAY_DNS_ERR_CLOSING = -7,   /* relay_dns_close() was called */
};

/* Static text for a relay_dns_err (or "unknown error"). */
const char *relay_dns_strerror(int err);

/*
 * DNSSEC status of one answer, RFC 4035 4.3 as required by RFC 7672 2.1.1
 * (C04): secure, insecure, bogus, indeterminate. Indeterminate covers
 * SERVFAIL, timeouts, other rcodes and library errors; per C05 callers treat
 * it like bogus.
 */
enum relay_dns_sec {
	RELAY_DNS_SECURE,
	RELAY_DNS_INSECURE,
	RELAY_DNS_BOGUS,
	RELAY_DNS_INDETERMINATE,
};

/* What a secure or insecure answer says. FAILED exactly when the status is
 * bogus or indeterminate: the content of such an answer is never used. */
enum relay_dns_kind {
	RELAY_DNS_DATA,
	RELAY_DNS_NODATA,
	RELAY_DNS_NXDOMAIN,
	RELAY_DNS_FAILED,
};

/* Why an answer failed (NONE for usable answers). */
enum relay_dns_why {
	RELAY_DNS_WHY_NONE,
	RELAY_DNS_WHY_BOGUS, /* validation failed; see why_bogus */
	RELAY_DNS_WHY_SERVFAIL,
	RELAY_DNS_WHY_RCODE,        /* REFUSED, FORMERR, NOTIMP, ... */
	RELAY_DNS_WHY_TIMEOUT,      /* our per-query deadline passed */
	RELAY_DNS_WHY_LIBERR,       /* libunbound error code in rcode */
	RELAY_DNS_WHY_MALFORMED,    /* rdata did not parse (C12) */
	RELAY_DNS_WHY_INCONSISTENT, /* result flags contradict each other */
};

struct relay_dns_status {
	enum relay_dns_sec sec;
	enum relay_dns_kind kind;
	enum relay_dns_why why;
	int rcode; /* DNS rcode, or the libunbound error for WHY_LIBERR */
};

const char *relay_dns_sec_name(enum relay_dns_sec s);
const char *relay_dns_kind_name(enum relay_dns_kind k);
const char *relay_dns_why_name(enum relay_dns_why w);

/* true for secure or insecure answers (the answer's content is usable). */
static inline bool
relay_dns_status_usable(const struct relay_dns_status *st)
{
	return st->kind != RELAY_DNS_FAILED;
}

/*
 * Classify a libunbound answer. err is the callback's err argument (0 on
 * success), r its result (may be NULL when err != 0). Reads bogus, secure,
 * rcode, havedata, nxdomain and data: never the rcode alone, because a bogus
 * answer comes back as NOERROR with data and bogus=1. Pure; never fails.
 */
struct relay_dns_status relay_dns_classify(int err, const struct ub_result *r);

/* ---- Pure rdata parsers (STYLE.md 5). Inputs are borrowed; nothing is
 * allocated. The rdata of one record is a complete unit, so there is no
 * "incomplete" return: truncated or over-long input is MALFORMED. ---- */

/*
 * Parse an uncompressed wire-format domain name at p into lowercase text
 * without the trailing dot ("." for the root) in out (outsz must be at least
 * RELAY_DNS_HOST_MAX). Returns bytes consumed (>0), RELAY_DNS_ERR_MALFORMED
 * (truncated, label length > 63 including compression pointers, which
 * libunbound never leaves in rdata, or name over 255 octets), or
 * RELAY_DNS_ERR_NAME when the name is well formed but a label holds
 * something other than letters, digits, '-' or '_' (out then holds the name
 * with such bytes replaced by '?', safe to log).
 */
int relay_dns_name_parse(const uint8_t *p, size_t len, char *out, size_t outsz)
    __attribute__((warn_unused_result));

struct relay_dns_mx {
	uint16_t pref;
	char host[RELAY_DNS_HOST_MAX]; /* "." for a null MX (RFC 7505) */
};

/* MX rdata (RFC 1035 3.3.9): 16-bit preference, exchange name, nothing
 * after. Returns 0, RELAY_DNS_ERR_MALFORMED or RELAY_DNS_ERR_NAME (out is
 * filled as for relay_dns_name_parse). */
int relay_dns_mx_parse(const uint8_t *p, size_t len, struct relay_dns_mx *out)
    __attribute__((warn_unused_result));

/* RFC 7505 3: exchange "." is a null MX. Any preference counts (Postfix does
 * the same; checklist note 3). */
static inline bool
relay_dns_mx_is_null(const struct relay_dns_mx *mx)
{
	return mx->host[0] == '.' && mx->host[1] == '\0';
}

/* A rdata: exactly 4 octets. AAAA: exactly 16. Returns 0 or MALFORMED. */
int relay_dns_a_parse(const uint8_t *p, size_t len, uint8_t out[4])
    __attribute__((warn_unused_result));
int relay_dns_aaaa_parse(const uint8_t *p, size_t len, uint8_t out[16])
    __attribute__((warn_unused_result));

/*
 * Normalise a host or domain name given as text (next-hop from the queue,
 * canonname from libunbound): strip one trailing dot, lowercase, check
 * labels of 1..63 letters, digits, '-' or '_', at most 253 characters.
 * Returns 0 or RELAY_DNS_ERR_NAME (address literals like "[192.0.2.1]" are
 * refused: DANE does not apply to them, RFC 7672 2.2, C26).
 */
int relay_dns_host_normalize(const char *in, size_t len,
    char out[RELAY_DNS_HOST_MAX]) __attribute__((warn_unused_result));

/* Uniform random 32-bit values; arg is the caller's. */
typedef uint32_t relay_dns_rng_fn(void *arg);

/*
 * Order an MX set (RFC 5321 5.1, RFC 7672 2.2.1 C27/C29, I30): sort by
 * preference, drop repeated hosts (the best preference stays), then shuffle
 * each run of equal preference with rng. Returns the new count (<= n).
 */
size_t relay_dns_mx_order(struct relay_dns_mx *mx, size_t n,
    relay_dns_rng_fn *rng, void *rng_arg);

/* One address of an MX host. */
struct relay_dns_addr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t bytes[16]; /* 4 used for AF_INET */
};

/*
 * The order in which one host's addresses are tried (Postfix
 * smtp_address_preference): v6 (n6 AAAA answers, each at most
 * RELAY_DNS_MAX_ADDRS) and v4 (n4 A answers), each in answer order, into
 * out (room for n6 + n4). IPV6 or IPV4: that family first, each family in
 * answer order. ANY: each family shuffled with rng, then the two
 * alternating from a family chosen with rng, so that any two consecutive
 * attempts cover both families. Returns n6 + n4. Pure; inputs borrowed.
 */
size_t relay_dns_addr_order(const struct relay_dns_addr *v6, size_t n6,
    const struct relay_dns_addr *v4, size_t n4,
    enum relay_address_preference pref, relay_dns_rng_fn *rng, void *rng_arg,
    struct relay_dns_addr *out);

/* ---- The resolver context ---- */

struct relay_dns;
struct relay_dns_query;

struct relay_dns_opts {
	/* dns_resolver_config: an unbound.conf-format file for ub_ctx_config()
	 * (trust anchors, stub and forward zones), or NULL. */
	const char *resolver_config;
	/* dns_forwarders: "addr[@port][,addr[@port]...]" for ub_ctx_set_fwd(),
	 * or NULL for full recursion, and/or the same as the config's array
	 * (fwd, nfwd). Answers are still validated here (C07). */
	const char *forwarders;
	const struct relay_config_fwd *fwd;
	size_t nfwd;
	/* dns_trust_anchor_file: read with ub_ctx_add_ta_file(). NULL means
	 * RELAY_DNS_ROOT_KEY when resolver_config is NULL and none otherwise
	 * (the resolver config then names its anchors); "" means none. */
	const char *trust_anchor_file;
	/* dns_selftest_name: a name that validates as secure under the
	 * configured anchor (its SOA is asked; data or a secure denial pass). NULL
	 * disables the self-test, and validation is then assumed to work. */
	const char *selftest_name;
	uint64_t selftest_interval_ms; /* 0: 3600000 */
	uint64_t selftest_retry_ms;    /* after a failure; 0: 30000 */
	uint64_t query_timeout_ms;     /* per lookup; 0: 10000 */
	/* inet_protocols: the families looked up (a family that is off gets
	 * no A or no AAAA query at all); smtp_address_preference: the order
	 * of each host's addresses (relay_dns_addr_order()). Zero: all, any. */
	enum relay_inet_protocols inet_protocols;
	enum relay_address_preference address_preference;
	/* Equal-preference MX and address shuffles. NULL: uv_random(). */
	relay_dns_rng_fn *rng;
	void *rng_arg;
	/* Called after every self-test run, on the loop thread. */
	void (*on_selftest)(void *arg, bool ok, const char *why);
	void *selftest_arg;
	/* Counts every answer (and timeout) by query type and DNSSEC status
	 * (relay_metrics.h; borrowed, must outlive the context). NULL:
	 * none. */
	struct relay_metrics *metrics;
};

/*
 * Fill opts from the daemon configuration (relay_config.h): every pointer
 * borrows from cfg, which must outlive relay_dns_new(). Keys:
 * dns_resolver_config, dns_forwarders, dns_trust_anchor_file (the config
 * default is RELAY_DNS_ROOT_KEY; "" leaves only the resolver config's
 * anchors), dns_selftest_name, dns_selftest_interval. Fields the config
 * does not know (timeouts, rng, on_selftest) are zeroed: set them after.
 * Also inet_protocols and smtp_address_preference.
 */
void relay_dns_opts_from_config(struct relay_dns_opts *opts,
    const struct relay_config *cfg);

/*
 * Create the context: ub_ctx_create, trust anchor, resolver config,
 * forwarders, threaded async mode, and handles on loop (borrowed; must
 * outlive the context). opts and its strings are copied. Forced after the
 * resolver config: module-config "validator iterator" and
 * val-permissive-mode "no" (permissive mode turns bogus answers into
 * insecure-looking ones).
 * Returns 0 and *out, or RELAY_DNS_ERR_CONFIG/NOMEM/LOOP with nothing left
 * behind (the reason is logged through relay_log, event=dns).
 */
int relay_dns_new(uv_loop_t *loop, const struct relay_dns_opts *opts,
    struct relay_dns **out) __attribute__((warn_unused_result));

/*
 * Start polling and run the first self-test. A trust anchor or resolver
 * configuration that libunbound only checks when it starts shows up here as
 * RELAY_DNS_ERR_CONFIG; the caller then logs and calls relay_dns_close().
 */
int relay_dns_start(struct relay_dns *dns) __attribute__((warn_unused_result));

/*
 * Tear down: every outstanding lookup is ub_cancel()ed and every destination
 * request freed without its callback, the handles are closed, and once the
 * last one is closed the ub_ctx is deleted, cb(arg) runs (cb may be NULL) and
 * dns is freed. Every relay_dns_query and relay_dns_req handle is invalid
 * from this call on. Safe to call from inside any relay_dns callback.
 */
void relay_dns_close(struct relay_dns *dns, void (*cb)(void *arg), void *arg);

/*
 * Lookups and destination requests outstanding on dns (the self-test's own
 * lookup not counted): what closing it now would cancel.
 */
size_t relay_dns_pending(const struct relay_dns *dns);

/*
 * Retire dns without stranding its callers (`danerelay dns flush`:
 * libunbound has no cache flush, so the daemon switches to a fresh context
 * and retires the old one). The self-test stops at once (its timer, its
 * lookup; on_selftest never runs again). Lookups and destination requests
 * already outstanding go on and their callbacks run as usual (they may
 * start further lookups of their own request). When relay_dns_pending()
 * reaches 0 the context is closed as by relay_dns_close(dns, cb, arg); that
 * may happen inside this call's loop iteration but never inside this call:
 * cb runs from a handle close callback. The caller must not start new
 * requests on dns. A later relay_dns_close() still cancels what is left
 * (and its cb replaces this one). Idempotent.
 */
void relay_dns_close_when_idle(struct relay_dns *dns, void (*cb)(void *arg),
    void *arg);

/* ---- Self-test (a known answer) ---- */

enum relay_dns_validation {
	RELAY_DNS_VALIDATION_UNKNOWN, /* first self-test still running */
	RELAY_DNS_VALIDATION_OK,
	RELAY_DNS_VALIDATION_FAILED,
};

enum relay_dns_validation relay_dns_validation_state(
    const struct relay_dns *dns);
const char *relay_dns_validation_name(enum relay_dns_validation v);

/* True only after the last self-test passed (or when it is disabled).
 * While false, defer every delivery whose policy depends on DNSSEC. */
bool relay_dns_validation_ok(const struct relay_dns *dns);

/* Run the self-test now (e.g. after SIGHUP), unless one is running. */
void relay_dns_selftest_run(struct relay_dns *dns);

/* ---- Single lookups ---- */

/* One answer, borrowed for the duration of the callback. */
struct relay_dns_answer {
	const char *qname;
	uint16_t qtype;
	struct relay_dns_status st;
	const char *canon;     /* final CNAME target (normalised) or NULL */
	const char *why_bogus; /* libunbound's text or NULL */
	/* NULL on timeout or library error. Its data[]/len[] are the answer's
	 * rdata (uncompressed) when st.kind == RELAY_DNS_DATA. */
	const struct ub_result *ub;
};

typedef void relay_dns_lookup_cb(void *arg, const struct relay_dns_answer *ans);

/*
 * Ask name/rrtype (class IN). name is copied. On 0, *out (may be NULL) is a
 * handle valid until cb runs or relay_dns_lookup_cancel(); cb runs exactly
 * once unless cancelled. Errors: NAME (too long), RESOLVER (logged), CLOSING,
 * NOMEM; then cb never runs.
 */
int relay_dns_lookup(struct relay_dns *dns, const char *name, uint16_t rrtype,
    relay_dns_lookup_cb *cb, void *arg, struct relay_dns_query **out)
    __attribute__((warn_unused_result));

/* ub_cancel() the lookup and free it; its callback never runs. */
void relay_dns_lookup_cancel(struct relay_dns_query *q);

/* ---- Destination resolution (RFC 7672 2.2) ---- */

/* One lookup's facts inside a result, for logging. Strings are owned by
 * the result. */
struct relay_dns_lookup {
	/* read-only */
	bool done; /* false: this lookup was not made */
	struct relay_dns_status st;
	char *canon; /* CNAME-expanded name, or NULL */
	char *why;   /* why_bogus or error text, or NULL */
};

/* relay_dns_status -> tlsa/'s input form: secure/insecure keep their
 * answer; bogus -> {DATA, BOGUS} (tlsa/ checks dnssec first: 4.7.5);
 * indeterminate -> {ERROR, INDETERMINATE} (a DNS failure: 4.4.3 for the MX,
 * 4.7.5 for TLSA, as tlsa/ decides). */
struct tlsa_lookup relay_dns_to_tlsa(const struct relay_dns_status *st);

/*
 * One MX host. in is tlsa/'s policy input for this host, complete (every
 * TLSA lookup tlsa_policy_tlsa_next() asked for has been made), ready for
 * tlsa_policy_decide(&res->dest, &host->in, ...). Its pointers point into
 * this struct and the result: do not copy a host out of its result.
 */
struct relay_dns_host {
	/* read-only */
	char name[RELAY_DNS_HOST_MAX]; /* the MX exchange (or the next-hop
	                                * domain for an implicit MX) */
	uint16_t pref;
	/* The exchange is not a host name (its bad bytes show as '?'): no
	 * lookups were made, in.addr is an error, and tlsa_policy_decide()
	 * refuses it with TLSA_ERR_NAME. Skip the host. */
	bool bad_name;
	struct relay_dns_lookup a;
	struct relay_dns_lookup aaaa;
	/* RFC 7672 2.2.2 C39: made only when the address answer came through
	 * CNAMEs, is insecure, and the policy would use a secure first CNAME:
	 * the original name's CNAME alone, whose status is in.first_cname. */
	struct relay_dns_lookup cname;
	/* The TLSA lookups in the order made (in.n_tlsa of them). */
	struct relay_dns_lookup tlsa[TLSA_BASES_MAX];
	struct relay_dns_addr *addrs; /* AAAA answers, then A; owned */
	size_t naddrs;
	struct tlsa_host_in in;
	/* private: storage in.* points into */
	char base_[TLSA_BASES_MAX][RELAY_DNS_HOST_MAX];
	struct tlsa_record *recs_[TLSA_BASES_MAX];
};

/* What the MX lookup gave; tlsa_policy_destination(&res->dest) is the
 * authority on what to do, this is for the hosts[] contract and logs. */
enum relay_dns_dest_kind {
	RELAY_DNS_DEST_HOSTS,    /* hosts[] (MX hosts or the implicit MX) */
	RELAY_DNS_DEST_NULL_MX,  /* RFC 7505: bounce, 5.1.10 (I32, I33) */
	RELAY_DNS_DEST_NXDOMAIN, /* RFC 5321 5.1: bounce (I25) */
	RELAY_DNS_DEST_DEFER,    /* MX lookup bogus/indeterminate (C09) */
};
const char *relay_dns_dest_kind_name(enum relay_dns_dest_kind k);

struct relay_dns_result {
	/* read-only */
	char domain[RELAY_DNS_HOST_MAX]; /* normalised next-hop domain */
	enum relay_dns_dest_kind kind;
	struct relay_dns_lookup mx; /* mx.canon: CNAME-expanded next-hop */
	bool implicit_mx;           /* MX NODATA: hosts[0] is the domain */
	bool mx_truncated;          /* more than RELAY_DNS_MAX_MX hosts */
	/* tlsa/'s destination input (level and port as given to
	 * relay_dns_resolve()); strings point into this result. */
	struct tlsa_dest_in dest;
	/* Sorted by preference, equal preferences shuffled (C27, I30). Empty
	 * unless kind == RELAY_DNS_DEST_HOSTS. */
	struct relay_dns_host *hosts;
	size_t nhosts;
	/* private: storage dest.mx_expanded points into. A copy, not mx.canon:
	 * an MX answer that fails after it was recorded (malformed rdata,
	 * no memory) clears mx.canon, and dest must stay readable. */
	char mx_expanded_[RELAY_DNS_HOST_MAX];
};

/* Free a result (NULL is a no-op). */
void relay_dns_result_free(struct relay_dns_result *res);

struct relay_dns_req;

/* res is owned by the callee from here on (relay_dns_result_free). */
typedef void relay_dns_dest_cb(void *arg, struct relay_dns_result *res);

/*
 * Resolve next-hop domain (text, normalised with relay_dns_host_normalize)
 * for SMTP to port under the destination's TLS level: MX (null MX,
 * NXDOMAIN, implicit MX on NODATA, bogus or indeterminate -> DEFER), then
 * for every MX host, all in parallel, A and AAAA (C36), the first-CNAME
 * check when C39 needs it, then the TLSA lookups tlsa_policy_tlsa_next()
 * asks for, one after another (_port._tcp.<base>, C41; expanded name, then
 * the original, C44). No TLSA lookups for may/encrypt/verify.
 * cb runs exactly once with the complete facts, unless relay_dns_cancel()
 * or relay_dns_close() comes first. On 0, *out (may be NULL) is the handle,
 * valid until cb runs. Errors (cb never runs): NAME, RESOLVER, CLOSING,
 * NOMEM. The self-test is not consulted: check relay_dns_validation_ok().
 */
int relay_dns_resolve(struct relay_dns *dns, const char *domain, uint16_t port,
    enum tlsa_level level, relay_dns_dest_cb *cb, void *arg,
    struct relay_dns_req **out) __attribute__((warn_unused_result));

/*
 * Resolve a bracketed next hop "[host]" (Postfix relayhost syntax): no MX
 * lookup; host (a host name, normalised like a domain) is the only host,
 * with its A and AAAA lookups and, when level asks for them, its TLSA
 * lookups, exactly as for an implicit MX. The result has kind
 * RELAY_DNS_DEST_HOSTS (one host), implicit_mx set and dest.no_mx set, so
 * tlsa_policy_destination() answers TLSA_DEST_IMPLICIT. Same callback
 * contract and errors as relay_dns_resolve().
 */
int relay_dns_resolve_host(struct relay_dns *dns, const char *host,
    uint16_t port, enum tlsa_level level, relay_dns_dest_cb *cb, void *arg,
    struct relay_dns_req **out) __attribute__((warn_unused_result));

/*
 * Optional progress of a destination request, for a caller that shows the
 * lookups as they are answered (`danerelay probe`). Each hook sees the
 * result being filled (borrowed, read-only, valid during the call) and may
 * be NULL. They run from lookup answers on the loop, never from inside
 * relay_dns_resolve(), and must not cancel the request or close dns. A
 * destination that is not RELAY_DNS_DEST_HOSTS only ever reaches the done
 * callback, as may a host whose name is not a host name (bad_name), so a
 * caller still reads everything from the final result.
 *   mx:        the MX answer is in: kind, mx, dest, implicit_mx, and
 *              hosts[].name/pref (nhosts), before any address lookup.
 *   addresses: host i's A/AAAA answers are in: a, aaaa, addrs, in.addr.
 *   host_done: host i is complete (every TLSA lookup tlsa/ asked for):
 *              hosts[i].in is ready for tlsa_policy_decide().
 */
struct relay_dns_progress {
	void (*mx)(void *arg, const struct relay_dns_result *res);
	void (*addresses)(void *arg, const struct relay_dns_result *res,
	    size_t i);
	void (*host_done)(void *arg, const struct relay_dns_result *res,
	    size_t i);
};

/* Install progress hooks on req (a handle from relay_dns_resolve(), before
 * its callback ran); pg is borrowed until then, arg is passed to them. */
void relay_dns_set_progress(struct relay_dns_req *req,
    const struct relay_dns_progress *pg, void *arg);

/* Cancel a destination request: its lookups are ub_cancel()ed, it is freed,
 * and its callback never runs (STYLE.md 4). */
void relay_dns_cancel(struct relay_dns_req *req);

#endif
