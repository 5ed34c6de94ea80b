#ifndef RELAY_STS_H
#define RELAY_STS_H
/*
 * relay_sts: the MTA-STS (RFC 8461) policy cache of `serve`: discovery of
 * `_mta-sts.<domain>` TXT through the relay's validating resolver, the
 * HTTPS fetch of the policy with libcurl on libuv's thread pool, and the
 * cache in memory and under spool_dir/mta-sts/.
 *
 * Per domain the cache answers at once when it can (a cached unexpired
 * policy, or a recent "no policy" or failure), and refreshes in the
 * background when its last TXT check is older than
 * mta_sts_check_interval; only a domain it knows nothing about makes the
 * caller wait, for at most the TXT lookup and one fetch (bounded by
 * mta_sts_timeout). See relay_sts_get().
 *
 * Outcomes (RFC 8461 sections cited where the code decides):
 *   POLICY  a valid policy (from the fetch or the cache), any mode;
 *   NONE    the domain has no usable policy: no TXT record, several, a
 *           malformed one (3.1), or a TXT record but no policy could be
 *           fetched and none is cached (3.3: deliver as though the domain
 *           had not implemented MTA-STS);
 *   FAILED  the TXT lookup was bogus or failed (SERVFAIL, timeout) and no
 *           policy is cached: fail closed, the caller defers
 *           (class sts-policy-fetch), never "no policy".
 * Everything runs on the loop thread except the fetch and the disk I/O.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "relay_clock.h"
#include "relay_dns.h"
#include "relay_sts_policy.h"

enum relay_sts_outcome {
	RELAY_STS_OUTCOME_NONE = 0,
	RELAY_STS_OUTCOME_POLICY,
	RELAY_STS_OUTCOME_FAILED,
};
const char *relay_sts_outcome_name(enum relay_sts_outcome o);

#define RELAY_STS_WHY_MAX 256

/* What relay_sts_get() answers: a copy, the caller's to keep. */
struct relay_sts_answer {
	enum relay_sts_outcome outcome;
	struct relay_sts_policy policy; /* when POLICY */
	char id[RELAY_STS_ID_MAX + 1];  /* when POLICY */
	bool from_cache; /* POLICY kept although the last refresh failed */
	char why[RELAY_STS_WHY_MAX]; /* NONE / FAILED: why, for the log */
};

struct relay_sts_ctx {
	uv_loop_t *loop;
	const struct relay_clock *clock;
	/* The resolver for new lookups (see relay_deliver_ctx.dns). */
	struct relay_dns *const *dns;
	const char *cache_dir;      /* spool_dir/mta-sts, created by new() */
	const char *ca_file;        /* "" or NULL: the system store */
	uint64_t timeout_ms;        /* connect + whole transfer */
	uint64_t check_interval_ms; /* TXT re-check of a known domain */
	/* Read cached policies, never write or create (probe: another user
	 * than serve's must not leave files there). */
	bool read_only;
};

struct relay_sts;
struct relay_sts_wait;

/* Creates the cache (ctx and its strings are copied; the loop, clock and
 * dns pointer are borrowed until relay_sts_close()'s cb). Returns 0 or -1
 * (libcurl could not start, no memory, the cache directory cannot be made:
 * the reason is logged). */
int relay_sts_new(const struct relay_sts_ctx *ctx, struct relay_sts **out)
    __attribute__((warn_unused_result));

typedef void relay_sts_cb(void *arg, const struct relay_sts_answer *ans);

/*
 * The policy of domain (normalised DNS name). Returns 1 and fills *now
 * when the cache can answer at once (and starts a background refresh if
 * one is due); returns 0 and sets *w when the caller must wait: cb(arg,
 * ans) then runs exactly once, later, from the loop, unless
 * relay_sts_wait_cancel(*w) comes first. Returns -1 when closing.
 */
int relay_sts_get(struct relay_sts *sts, const char *domain,
    struct relay_sts_answer *now, relay_sts_cb *cb, void *arg,
    struct relay_sts_wait **w) __attribute__((warn_unused_result));

/* The callback of w never runs; w is freed. */
void relay_sts_wait_cancel(struct relay_sts_wait *w);

/* The CA file for policy fetches from now on ("" or NULL: the system
 * store), read anew by each fetch (RFC 8461 3.3: the policy host's
 * certificate is PKIX-checked); fetches under way keep theirs. For a
 * reload. */
void relay_sts_set_ca_file(struct relay_sts *sts, const char *ca_file);

/* Tear down: DNS lookups are cancelled, waiters dropped without their
 * callbacks, a fetch in flight is aborted at its next progress check;
 * once the last thread-pool job has returned, sts is freed and cb(arg)
 * runs (cb may be NULL). Call before the resolver is closed. */
void relay_sts_close(struct relay_sts *sts, void (*cb)(void *arg), void *arg);

/* ---- exposed for the unit tests: the cache's decision, pure ---- */

/* What the cache holds for one domain, as relay_sts_decide() reads it. */
struct relay_sts_state {
	bool have_policy;
	uint64_t expires_wall_s; /* fetched + max_age */
	bool checked;            /* a refresh has completed */
	uint64_t checked_mono_us;
	enum relay_sts_outcome last; /* NONE / FAILED of the last refresh
	                                when no policy */
};

enum relay_sts_action {
	RELAY_STS_USE_POLICY,         /* answer the cached policy */
	RELAY_STS_USE_POLICY_REFRESH, /* answer it, refresh in background */
	RELAY_STS_USE_LAST,           /* answer the last NONE/FAILED */
	RELAY_STS_WAIT,               /* refresh, the caller waits */
};

/* The cache's rule: an unexpired policy is always used (RFC 8461 5.1 step
 * 1), re-checked once check_interval has passed since the last check; a
 * NONE is trusted for check_interval, a FAILED for
 * min(check_interval, RELAY_STS_FAILED_RECHECK_MS); anything else waits
 * for a refresh. */
#define RELAY_STS_FAILED_RECHECK_MS 30000u
enum relay_sts_action relay_sts_decide(const struct relay_sts_state *st,
    uint64_t now_wall_s, uint64_t now_mono_us, uint64_t check_interval_ms);

/* The on-disk form of a cached policy: "id ID\nfetched SECONDS\n\n" then
 * the policy body as served. relay_sts_cache_parse() reads it back (pure;
 * 0 or a negative relay_sts_err). */
int relay_sts_cache_parse(const uint8_t *p, size_t len,
    char id[RELAY_STS_ID_MAX + 1], uint64_t *fetched_wall_s,
    struct relay_sts_policy *pol) __attribute__((warn_unused_result));

#endif
