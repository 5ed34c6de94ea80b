#ifndef RELAY_DELIVER_H
#define RELAY_DELIVER_H
/*
 * relay_deliver: outbound delivery (relay_sched.c, relay_dest.c,
 * relay_outbound.c), the public side of deliver/.
 *
 * The scheduler finds due recipients in the queue, resolves their
 * destinations, applies the RFC 7672 policy (tlsa/), delivers, records the
 * outcome per recipient and sends DSNs. It knows nothing of the daemon:
 * everything it uses comes in a struct relay_deliver_ctx, which is the
 * seam where a test (tests/replay/) puts fakes below deliver/.
 *
 * Time. Delivery reads time only from ctx->clock (relay_clock.h):
 *   - Due times live in envelopes (arrival_us, next_attempt_us, attempt
 *     times) and are wall time, on disk as in memory: they survive a
 *     restart, `queue list` and `queue show` print them, and DSN dates
 *     and the log's delay= derive from them. So the scheduler compares
 *     them with the clock's wall reading, and relay_backoff.h computes
 *     retry, expiry and delay-warning times from them.
 *   - libuv timers wake the scheduler; their durations are the distance
 *     from the wall reading to the next due time, rounded up,
 *     never a stored deadline, so a wall-clock step only moves the due
 *     times it moves on disk too, as a restart would.
 *   - Timeouts of a session (connect, per SMTP state, connection cache
 *     idle time) are durations handed to relay_conn, which runs them on
 *     the loop's monotonic time; the grace period of relay_sched_stop()
 *     likewise.
 * A test with a relay_clock_manual advances it and calls
 * relay_sched_kick() to have due work run.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "relay_clock.h"
#include "relay_class.h"
#include "relay_config.h"
#include "relay_dns.h"
#include "relay_fail_class.h"
#include "relay_metrics.h"
#include "relay_monitor.h"
#include "relay_queue.h"
#include "relay_sts.h"
#include "tlsa.h"

/*
 * One outbound TLS session attempt (one connection to one MX address), as
 * SMTP TLS Reporting counts them (RFC 8460 4.3, 4.4): reported once per
 * connection, when its TLS outcome under the verdict is known, whatever
 * number of messages it then carries. Connections that never got as far
 * as STARTTLS (connect failures, a greeting or EHLO refused) and
 * cleartext by a `none` policy entry are not TLS sessions and are not
 * reported; nor are `probe` sessions. A host the RFC 7672 verdict forbids
 * (DO_NOT_CONNECT: bogus or unusable TLSA, DNSSEC failures) is reported
 * once per delivery attempt with its class and no address (addr ""; mx ""
 * when the whole destination was refused). Everything is borrowed for
 * the call.
 */
struct relay_tls_session {
	const char *domain;                 /* the destination, A-labels */
	const char *mx;                     /* the MX host connected to */
	const char *addr;                   /* its address, numeric */
	const char *local_addr;             /* ours, numeric, or "" */
	const struct tlsa_verdict *verdict; /* the policy applied */
	/* The domain's MTA-STS policy when it applied to this host (enforce
	 * or testing; RFC 8461), else NULL: the report's policy is then
	 * "sts" (RFC 8460 4.4). */
	const struct relay_sts_answer *sts;
	/* NONE: TLS was negotiated as the verdict requires. Else the
	 * failure: a TLS class, or STARTTLS_MISSING (not offered, refused,
	 * or a `may` session that went on in cleartext). */
	enum relay_fail_class fclass;
};

/*
 * What delivery borrows from its owner. The owner keeps it (and what it
 * points to) alive until the scheduler's done callback has run and every
 * local submission has committed: outbound connections closing after
 * relay_sched_stop() still read it.
 */
struct relay_deliver_ctx {
	uv_loop_t *loop;
	/* Where delivery reads time (see "Time" above); the daemon's is
	 * relay_clock_system(). */
	const struct relay_clock *clock;
	/* The configuration in effect. A reload may replace the contents of
	 * *cfg between two loop turns; nothing keeps pointers into it across
	 * a callback. */
	const struct relay_config *cfg;
	struct relay_queue *queue;
	/* *dns is the resolver for new lookups: `dns flush` replaces it, and
	 * the old one finishes the lookups already started. */
	struct relay_dns *const *dns;
	struct tlsa_ctx *tlsa; /* outbound TLS client contexts */
	/* The routing monitor (relay_monitor.h), fed by every delivery
	 * attempt; NULL when routing_monitor_enable is off. */
	struct relay_monitor *monitor;
	/* MTA-STS (RFC 8461): the policy cache, and the client contexts
	 * whose `verify` store is mta_sts_ca_file, for MX hosts under an
	 * enforce policy. sts NULL: MTA-STS is off. */
	struct relay_sts *sts;
	struct tlsa_ctx *tlsa_sts;
	/* Bumped by the owner whenever it replaces tlsa_sts (a reload reads
	 * mta_sts_ca_file again): a parked connection verified under an
	 * older store is not reused. */
	uint64_t tlsa_sts_gen;
	const struct tlsa_digests *digests;
	/* A local message (DSN, report) was committed: the owner kicks the
	 * scheduler if it still has one (the commit can complete after the
	 * scheduler is gone at shutdown). May be NULL. */
	void (*local_queued)(void *arg);
	/* An outbound TLS session attempt ended its TLS part (see struct
	 * relay_tls_session). May be NULL. */
	void (*tls_session)(void *arg, const struct relay_tls_session *ev);
	/* Inflow control (in_flow_delay): the scheduler took on a message
	 * for delivery (idle false), or no due message waits for it any
	 * more (idle true). Postfix's queue manager likewise hands out one
	 * token per message it moves into its active queue, and tops the
	 * pool up while its incoming queue is empty. May be NULL. */
	void (*in_flow)(void *arg, bool idle);
	void *arg;
	/* Counters of delivery outcomes, DANE results, TLS handshakes and
	 * connection reuses (relay_metrics.h; borrowed). NULL: none. */
	struct relay_metrics *metrics;
};

struct relay_sched;

/*
 * Starts the scheduler on ctx (borrowed, see above); its first scan runs on
 * the next loop iteration. Returns 0 and sets *out, or a relay_queue_err.
 */
int relay_sched_new(const struct relay_deliver_ctx *ctx,
    struct relay_sched **out) __attribute__((warn_unused_result));

/* Rescan the queue for due work on the next loop iteration (after a
 * retry command, a passing self-test, a reload, a local submission). */
void relay_sched_kick(struct relay_sched *s);

/* Message id was just committed by an inbound session: start delivering it
 * now (no index scan) when a place is free. */
void relay_sched_new_message(struct relay_sched *s, const char *id);

/* Stop starting work; abort work in flight after grace_ms (0: at once).
 * done(arg) runs once nothing is in flight any more and every handle of
 * the scheduler is closed; the scheduler is freed before it runs. */
void relay_sched_stop(struct relay_sched *s, uint64_t grace_ms,
    void (*done)(void *arg), void *arg);

/*
 * Forget which destinations are suspended after failing (struct dest_slot
 * in deliver_int.h), so that their next messages are tried again at once:
 * an operator's retry, a reload or a DNS flush says something may have
 * been fixed (as Postfix's `postqueue -f` forgets dead destinations).
 */
void relay_sched_resume_all(struct relay_sched *s);

/* Number of delivery jobs in flight. */
size_t relay_sched_active(const struct relay_sched *s);

/* What `danerelay status` shows of delivery. */
struct relay_sched_stats {
	size_t messages;     /* message jobs in flight (relay_sched_active) */
	size_t destinations; /* destination jobs (message x domain) started
	                        and not finished */
	size_t connections;  /* outbound SMTP sessions working for a job */
	size_t cached;       /* idle verified connections parked in the cache */
};
void relay_sched_stats(const struct relay_sched *s,
    struct relay_sched_stats *out);

/* Whether message id (a queue id) is being delivered now: loaded by a job
 * whose outcome will be written back over the envelope. */
bool relay_sched_is_active(const struct relay_sched *s, const char *id);

/*
 * Queue a locally generated message (DSN, report) in ctx->queue with the
 * null sender or the given sender, for one recipient. content is copied.
 * ctx->local_queued runs after the commit. Returns 0 or a relay_queue_err.
 */
int relay_submit_local(const struct relay_deliver_ctx *ctx, const char *sender,
    const char *rcpt, unsigned notify, const uint8_t *content, size_t len)
    __attribute__((warn_unused_result));

/* ------------------------------------------------- probe: stop at READY */

/* Room for the reason in struct relay_outbound_result (the delivery
 * path's own limit). */
#define RELAY_OUTBOUND_WHY_MAX 512

/* The steps of a probe session, in the order they can happen. */
enum relay_outbound_step {
	RELAY_OUTBOUND_STEP_CONNECTED, /* TCP is up */
	RELAY_OUTBOUND_STEP_STARTTLS,  /* the server accepted STARTTLS */
	RELAY_OUTBOUND_STEP_TLS,       /* the handshake was judged (res->tls) */
};

struct relay_outbound_result;

/* One MX address to probe, as a destination job would try it. */
struct relay_outbound_target {
	const char *host; /* MX host name, for reasons and logs; copied */
	const struct relay_dns_addr *addr; /* copied */
	uint16_t port;
	/* The RFC 7672 verdict for host (tlsa_policy_decide()), not
	 * DO_NOT_CONNECT. Borrowed until the done callback has run: the TLS
	 * handshake is prepared and judged against it. */
	const struct tlsa_verdict *verdict;
	/* A `none` policy entry: STARTTLS is never tried. Only meaningful
	 * with a MAY verdict (every other verdict requires TLS). */
	bool cleartext;
	/* Optional: told, with done's arg, as the session passes each step
	 * (res borrowed for the call; res->connected, and res->tls once the
	 * TLS step came). It may only look: done still runs at the end. */
	void (*step)(void *arg, enum relay_outbound_step step,
	    const struct relay_outbound_result *res);
	/* MTA-STS for this host (relay_class_sts_host(), never REFUSE):
	 * ENFORCE checks the certificate against ctx->tlsa_sts and gives
	 * failures the sts-* classes, as delivery does. */
	enum relay_sts_use sts;
};

/* What one probe session found. The failure fields are the class, status
 * and reason a delivery attempt to the same address would record. */
struct relay_outbound_result {
	bool connected;         /* TCP came up */
	bool tls_tried;         /* a handshake ran (or broke): tls is set */
	struct tlsa_result tls; /* tlsa_ssl_result() of the handshake */
	bool ready;             /* ready for MAIL under the verdict */
	bool encrypted;         /* ready, and over TLS */
	/* When !ready: */
	enum relay_fail_class fclass;
	char dsn[16];
	char why[RELAY_OUTBOUND_WHY_MAX];
};

struct relay_outbound_probe;

/*
 * Runs the outbound session delivery runs, for target, and stops once the
 * server is ready for MAIL: after EHLO following STARTTLS and the
 * verdict's authentication (tlsa_ssl_result(), fail closed: RFC 7672 2.2
 * C18-C21, 3.2 C51), or after EHLO when the verdict allows cleartext. It
 * then says QUIT and closes; it never sends MAIL. Timeouts are the
 * delivery's (smtp_*_timeout of ctx->cfg). The session uses ctx->loop,
 * ctx->cfg and ctx->tlsa only (borrowed until done has run); it never
 * touches the queue.
 *
 * Returns 0 and sets *out, then done(arg, res) runs exactly once, after the
 * connection is closed (res is borrowed for the call; *out is freed right
 * after it). Returns a negative relay_conn_err when the session could not
 * start: RELAY_CONN_NOMEM, or relay_conn_connect()'s error for the socket.
 * Nothing runs then and *out is untouched.
 */
int relay_outbound_probe(const struct relay_deliver_ctx *ctx,
    const struct relay_outbound_target *target,
    void (*done)(void *arg, const struct relay_outbound_result *res), void *arg,
    struct relay_outbound_probe **out) __attribute__((warn_unused_result));

/* Give up on probe pr at once (a deadline): the connection is dropped and
 * done still runs, from the loop, with the failure the session met. Only
 * before done has run. */
void relay_outbound_probe_cancel(struct relay_outbound_probe *pr);

#endif
