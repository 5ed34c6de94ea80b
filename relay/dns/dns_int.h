#ifndef RELAY_DNS_INT_H
#define RELAY_DNS_INT_H
/* Private to relay_dns*.c: the context layout shared by the lookup layer
 * (relay_dns.c) and the destination driver (relay_dns_dest.c). */
#include "relay_dns.h"
#include "relay_log.h"

struct ub_ctx;
struct ub_result;

/*
 * How the destination driver (relay_dns_dest.c) starts and cancels its
 * single lookups, with relay_dns_lookup()'s and relay_dns_lookup_cancel()'s
 * contracts. relay_dns_new() installs those two; a unit test of the driver
 * installs a scripted resolver that hands back ub_results it built, through
 * dns__answer_from_ub() like the real one (the real pair is covered
 * by tests/integration/dns against signed zones).
 */
struct dns__lookup_ops {
	int (*lookup)(struct relay_dns *dns, const char *name, uint16_t rrtype,
	    relay_dns_lookup_cb *cb, void *arg, struct relay_dns_query **out);
	void (*cancel)(struct relay_dns_query *q);
};

struct relay_dns {
	/* private */
	uv_loop_t *loop;
	struct ub_ctx *ub;
	uv_poll_t poll;      /* ub_fd(): results ready */
	uv_timer_t deadline; /* earliest query deadline */
	uv_timer_t selftest_timer;
	int open_handles;
	bool started;
	bool closing;
	/* dns flush: relay_dns_close_when_idle() was called; the
	 * context closes itself once relay_dns_pending() reaches 0. */
	bool draining;
	void (*close_cb)(void *arg);
	void *close_arg;

	/* Outstanding lookups, sorted by deadline (head first). */
	struct relay_dns_query *qhead, *qtail;
	/* Outstanding destination requests (cancelled by relay_dns_close). */
	struct relay_dns_req *reqs;

	uint64_t query_timeout_ms;
	const struct dns__lookup_ops *ops;
	relay_dns_rng_fn *rng;
	void *rng_arg;
	/* inet_protocols, smtp_address_preference (relay_dns_opts). */
	enum relay_inet_protocols inet_protocols;
	enum relay_address_preference address_preference;

	char *selftest_name;
	uint64_t selftest_interval_ms;
	uint64_t selftest_retry_ms;
	void (*on_selftest)(void *arg, bool ok, const char *why);
	void *selftest_arg;
	struct relay_dns_query *selftest_q;
	enum relay_dns_validation validation;
	struct relay_metrics *metrics; /* NULL: nothing counted */
};

/*
 * The answer a lookup of qname/qtype hands its callback, from libunbound's
 * callback arguments err and r (r may be NULL; borrowed, and ans->ub points
 * to it). canon is storage for ans->canon, the normalised CNAME target when
 * it differs from qname; a target that is not a host name fails the answer
 * (indeterminate, malformed). qname is borrowed by ans->qname.
 */
void dns__answer_from_ub(const char *qname, uint16_t qtype, int err,
    const struct ub_result *r, char canon[RELAY_DNS_HOST_MAX],
    struct relay_dns_answer *ans);

/* One relay_log line: event=dns why="<formatted text>". */
void dns__log(struct relay_dns *dns, enum relay_log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* For relay_dns_close_when_idle(): closes a draining context that has
 * nothing outstanding any more (no-op otherwise). Called after anything
 * that may end a lookup or a destination request. */
void dns__drain_check(struct relay_dns *dns);

/* The next request in dns->reqs (relay_dns_dest.c owns the layout). */
const struct relay_dns_req *dns__req_next(const struct relay_dns_req *req);

/* Destination driver hook for relay_dns_close(): cancel every request. */
void dns__cancel_all_reqs(struct relay_dns *dns);

#endif
