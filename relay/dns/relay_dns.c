/*
 * relay_dns: the libunbound context inside the libuv loop, single lookups
 * with deadlines, and the DNSSEC known-answer self-test.
 *
 * The async contract (unbound.h, STYLE.md 1): ub_ctx_async(ctx, 1) runs the
 * resolver in a worker thread of this process; answers are written to a
 * pipe whose read end is ub_fd(). A uv_poll_t watches it and ub_process()
 * drains it, calling our callback for each answer on the loop thread with no
 * libunbound lock held (so callbacks may start and cancel lookups).
 * ub_cancel() in threaded mode marks the query cancelled: its answer is
 * dropped inside ub_process() and the callback never runs, so a cancelled
 * relay_dns_query can be freed at once.
 *
 * libunbound has no per-query timeout of its own that we can bound, so every
 * lookup carries a deadline; one uv_timer_t fires at the earliest one and
 * the expired lookups are cancelled and answered "indeterminate, timeout".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <unbound.h>

#include "relay_config.h"
#include "dns_int.h"
#include "relay_metrics.h"

#define DEFAULT_QUERY_TIMEOUT_MS 10000u
#define DEFAULT_SELFTEST_INTERVAL_MS 3600000u
#define DEFAULT_SELFTEST_RETRY_MS 30000u
/* "_65535._tcp." plus a 253-character host name, and some slack. */
#define QNAME_MAX 272
#define LOG_LINE_MAX 768

struct relay_dns_query {
	/* private */
	struct relay_dns *dns;
	struct relay_dns_query *prev, *next; /* dns deadline list */
	uint64_t deadline;
	int id;
	uint16_t qtype;
	relay_dns_lookup_cb *cb;
	void *arg;
	char qname[QNAME_MAX];
};

void
dns__log(struct relay_dns *dns, enum relay_log_level level, const char *fmt,
    ...)
{
	char text[LOG_LINE_MAX];
	struct relay_log_line l;
	va_list ap;

	(void)dns;
	if (!relay_log_begin(&l, level, "dns"))
		return;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (n < 0)
		text[0] = '\0';
	/* relay_log escapes and truncates: names from DNS are untrusted. */
	relay_log_str(&l, "why", text);
	relay_log_end(&l);
}

static uint32_t
default_rng(void *arg)
{
	uint32_t v;

	(void)arg;
	/* Synchronous form (no loop, no callback): getrandom(2). */
	if (uv_random(NULL, NULL, &v, sizeof v, 0, NULL) != 0)
		abort();
	return v;
}

static char *
dup_or_null(const char *s)
{
	return s == NULL ? NULL : strdup(s);
}

/* ub_ctx_set_fwd() for each entry of "a[@p], b[@p]". */
static int
set_forwarders(struct relay_dns *dns, const char *list)
{
	char one[128];
	const char *p = list;

	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0 || n >= sizeof one) {
			dns__log(dns, RELAY_LOG_ERROR,
			    "dns_forwarders: empty or over-long entry");
			return RELAY_DNS_ERR_CONFIG;
		}
		memcpy(one, p, n);
		one[n] = '\0';
		int r = ub_ctx_set_fwd(dns->ub, one);
		if (r != 0) {
			dns__log(dns, RELAY_LOG_ERROR, "dns_forwarders: %s: %s",
			    one, ub_strerror(r));
			return RELAY_DNS_ERR_CONFIG;
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return 0;
}

static int
configure(struct relay_dns *dns, const struct relay_dns_opts *opts)
{
	int r;

	/* Threads, not fork: see the file comment in relay_dns.h. */
	if ((r = ub_ctx_async(dns->ub, 1)) != 0) {
		dns__log(dns, RELAY_LOG_ERROR, "ub_ctx_async: %s",
		    ub_strerror(r));
		return RELAY_DNS_ERR_CONFIG;
	}
	if (opts->resolver_config != NULL &&
	    (r = ub_ctx_config(dns->ub, opts->resolver_config)) != 0) {
		dns__log(dns, RELAY_LOG_ERROR, "dns_resolver_config %s: %s",
		    opts->resolver_config, ub_strerror(r));
		return RELAY_DNS_ERR_CONFIG;
	}

	/* A static anchor file, not ub_ctx_add_ta_autr(): RFC 5011 tracking
	 * must write its state back, and the relay must not write into the
	 * package-owned /usr/share/dns. Operators who want RFC 5011 put
	 * auto-trust-anchor-file (on a writable path) in dns_resolver_config. */
	const char *ta = opts->trust_anchor_file;
	if (ta == NULL)
		ta = opts->resolver_config == NULL ? RELAY_DNS_ROOT_KEY : "";
	if (ta[0] != '\0') {
		/* libunbound reads the file only when the first query starts;
		 * check it now so a typo fails at startup. */
		if (access(ta, R_OK) != 0) {
			dns__log(dns, RELAY_LOG_ERROR,
			    "dns_trust_anchor_file %s: %s", ta,
			    strerror(errno));
			return RELAY_DNS_ERR_CONFIG;
		}
		if ((r = ub_ctx_add_ta_file(dns->ub, ta)) != 0) {
			dns__log(dns, RELAY_LOG_ERROR,
			    "dns_trust_anchor_file %s: %s", ta, ub_strerror(r));
			return RELAY_DNS_ERR_CONFIG;
		}
	}

	if (opts->forwarders != NULL && opts->forwarders[0] != '\0' &&
	    (r = set_forwarders(dns, opts->forwarders)) != 0)
		return r;
	for (size_t i = 0; i < opts->nfwd; i++) {
		if ((r = set_forwarders(dns, opts->fwd[i].text)) != 0)
			return r;
	}
	/* The recommended forwarder is a validating Unbound on loopback
	 * (127.0.0.1@5353), which libunbound refuses to query by default. */
	if (((opts->forwarders != NULL && opts->forwarders[0] != '\0') ||
	        opts->nfwd > 0) &&
	    (r = ub_ctx_set_option(dns->ub, "do-not-query-localhost:", "no")) !=
	        0) {
		dns__log(dns, RELAY_LOG_ERROR,
		    "dns_forwarders: allowing loopback: %s", ub_strerror(r));
		return RELAY_DNS_ERR_CONFIG;
	}

	/* Whatever the resolver config says, validation stays on and strict
	 * (RFC 7672 2.1.1, C02): permissive mode would hand back bogus answers
	 * as indeterminate, which libunbound reports as secure=0 bogus=0,
	 * indistinguishable from insecure. */
	if ((r = ub_ctx_set_option(dns->ub,
	         "module-config:", "validator iterator")) != 0 ||
	    (r = ub_ctx_set_option(dns->ub, "val-permissive-mode:", "no")) !=
	        0) {
		dns__log(dns, RELAY_LOG_ERROR, "forcing DNSSEC validation: %s",
		    ub_strerror(r));
		return RELAY_DNS_ERR_CONFIG;
	}
	return 0;
}

void
relay_dns_opts_from_config(struct relay_dns_opts *opts,
    const struct relay_config *cfg)
{
	memset(opts, 0, sizeof *opts);
	/* relay_config strings are never NULL; "" means unset. */
	if (cfg->dns_resolver_config[0] != '\0')
		opts->resolver_config = cfg->dns_resolver_config;
	opts->fwd = cfg->dns_forwarders;
	opts->nfwd = cfg->dns_forwarders_count;
	opts->trust_anchor_file = cfg->dns_trust_anchor_file;
	if (cfg->dns_selftest_name[0] != '\0')
		opts->selftest_name = cfg->dns_selftest_name;
	opts->selftest_interval_ms = cfg->dns_selftest_interval_ms;
	opts->inet_protocols = cfg->inet_protocols;
	opts->address_preference = cfg->smtp_address_preference;
}

static void
free_dns(struct relay_dns *dns)
{
	free(dns->selftest_name);
	free(dns);
}

static void poll_cb(uv_poll_t *h, int status, int events);
static void selftest_timer_cb(uv_timer_t *t);

static const struct dns__lookup_ops ub_lookup_ops = {
	.lookup = relay_dns_lookup,
	.cancel = relay_dns_lookup_cancel,
};

int
relay_dns_new(uv_loop_t *loop, const struct relay_dns_opts *opts,
    struct relay_dns **out)
{
	struct relay_dns *dns = calloc(1, sizeof *dns);
	int r;

	*out = NULL;
	if (dns == NULL)
		return RELAY_DNS_ERR_NOMEM;
	dns->loop = loop;
	dns->ops = &ub_lookup_ops;
	dns->rng = opts->rng != NULL ? opts->rng : default_rng;
	dns->rng_arg = opts->rng_arg;
	dns->inet_protocols = opts->inet_protocols;
	dns->address_preference = opts->address_preference;
	dns->query_timeout_ms = opts->query_timeout_ms != 0
	    ? opts->query_timeout_ms
	    : DEFAULT_QUERY_TIMEOUT_MS;
	dns->selftest_interval_ms = opts->selftest_interval_ms != 0
	    ? opts->selftest_interval_ms
	    : DEFAULT_SELFTEST_INTERVAL_MS;
	dns->selftest_retry_ms = opts->selftest_retry_ms != 0
	    ? opts->selftest_retry_ms
	    : DEFAULT_SELFTEST_RETRY_MS;
	if (dns->selftest_retry_ms > dns->selftest_interval_ms)
		dns->selftest_retry_ms = dns->selftest_interval_ms;
	dns->on_selftest = opts->on_selftest;
	dns->selftest_arg = opts->selftest_arg;
	dns->metrics = opts->metrics;
	dns->validation = RELAY_DNS_VALIDATION_UNKNOWN;
	if (opts->selftest_name != NULL && opts->selftest_name[0] != '\0') {
		dns->selftest_name = dup_or_null(opts->selftest_name);
		if (dns->selftest_name == NULL) {
			free_dns(dns);
			return RELAY_DNS_ERR_NOMEM;
		}
	}

	dns->ub = ub_ctx_create();
	if (dns->ub == NULL) {
		free_dns(dns);
		return RELAY_DNS_ERR_NOMEM;
	}
	if ((r = configure(dns, opts)) != 0) {
		ub_ctx_delete(dns->ub);
		free_dns(dns);
		return r;
	}
	int fd = ub_fd(dns->ub);
	if (fd < 0 || (r = uv_poll_init(loop, &dns->poll, fd)) != 0) {
		dns__log(dns, RELAY_LOG_ERROR, "polling ub_fd: %s",
		    fd < 0 ? "no descriptor" : uv_strerror(r));
		ub_ctx_delete(dns->ub);
		free_dns(dns);
		return RELAY_DNS_ERR_LOOP;
	}
	/* uv_timer_init() cannot fail (it only links the handle). */
	(void)uv_timer_init(loop, &dns->deadline);
	(void)uv_timer_init(loop, &dns->selftest_timer);
	dns->poll.data = dns;
	dns->deadline.data = dns;
	dns->selftest_timer.data = dns;
	dns->open_handles = 3;
	*out = dns;
	return 0;
}

static void
selftest_finish(struct relay_dns *dns, bool ok, const char *why)
{
	enum relay_dns_validation prev = dns->validation;

	dns->validation =
	    ok ? RELAY_DNS_VALIDATION_OK : RELAY_DNS_VALIDATION_FAILED;
	(void)uv_timer_start(&dns->selftest_timer, selftest_timer_cb,
	    ok ? dns->selftest_interval_ms : dns->selftest_retry_ms, 0);
	/* Loud on failure: every DNSSEC-dependent delivery now defers. */
	struct relay_log_line l;
	if (relay_log_begin(&l,
	        ok ? (prev == RELAY_DNS_VALIDATION_OK ? RELAY_LOG_DEBUG
	                                              : RELAY_LOG_INFO)
	           : RELAY_LOG_ERROR,
	        "dnssec-selftest")) {
		relay_log_str(&l, "status", ok ? "ok" : "failed");
		relay_log_str(&l, "name", dns->selftest_name);
		relay_log_str(&l, "why", why);
		if (!ok)
			relay_log_str(&l, "effect",
			    "deferring every delivery whose policy depends on "
			    "DNSSEC until the self-test passes");
		relay_log_end(&l);
	}
	/* Last: the callback may close the context. */
	if (dns->on_selftest != NULL)
		dns->on_selftest(dns->selftest_arg, ok, why);
}

static void
selftest_done(void *arg, const struct relay_dns_answer *ans)
{
	struct relay_dns *dns = arg;
	char why[512];
	bool ok = false;

	dns->selftest_q = NULL;
	switch (ans->st.sec) {
	case RELAY_DNS_SECURE:
		/* Data or a validated denial both prove the chain of trust
		 * works; a secure NXDOMAIN means the configured name is wrong,
		 * and a self-test that cannot be trusted counts as failed. */
		ok = ans->st.kind != RELAY_DNS_NXDOMAIN;
		snprintf(why, sizeof why, "%s",
		    ok ? "secure" : "secure but the name does not exist");
		break;
	case RELAY_DNS_INSECURE:
		snprintf(why, sizeof why,
		    "answer is insecure: no trust anchor "
		    "covers the name, or the chain of trust is broken");
		break;
	case RELAY_DNS_BOGUS:
		snprintf(why, sizeof why, "answer is bogus: %s",
		    ans->why_bogus != NULL ? ans->why_bogus : "(no reason)");
		break;
	case RELAY_DNS_INDETERMINATE:
		snprintf(why, sizeof why, "lookup failed: %s rcode=%d",
		    relay_dns_why_name(ans->st.why), ans->st.rcode);
		break;
	}
	selftest_finish(dns, ok, why);
}

static void
selftest_timer_cb(uv_timer_t *t)
{
	struct relay_dns *dns = t->data;

	if (dns->closing || dns->draining || dns->selftest_name == NULL ||
	    dns->selftest_q != NULL)
		return;
	int r = relay_dns_lookup(dns, dns->selftest_name, RELAY_DNS_TYPE_SOA,
	    selftest_done, dns, &dns->selftest_q);
	if (r != 0)
		selftest_finish(dns, false, relay_dns_strerror(r));
}

int
relay_dns_start(struct relay_dns *dns)
{
	int r;

	if (dns->closing)
		return RELAY_DNS_ERR_CLOSING;
	if (dns->started)
		return 0;
	if ((r = uv_poll_start(&dns->poll, UV_READABLE, poll_cb)) != 0) {
		dns__log(dns, RELAY_LOG_ERROR, "uv_poll_start: %s",
		    uv_strerror(r));
		return RELAY_DNS_ERR_LOOP;
	}
	dns->started = true;
	if (dns->selftest_name == NULL) {
		dns__log(dns, RELAY_LOG_WARNING,
		    "dnssec_selftest=disabled: validation is assumed to work");
		dns->validation = RELAY_DNS_VALIDATION_OK;
		return 0;
	}
	/* The first query makes libunbound read its anchors and start the
	 * worker: configuration errors it finds only then surface here. */
	r = relay_dns_lookup(dns, dns->selftest_name, RELAY_DNS_TYPE_SOA,
	    selftest_done, dns, &dns->selftest_q);
	return r == RELAY_DNS_ERR_RESOLVER ? RELAY_DNS_ERR_CONFIG : r;
}

void
relay_dns_selftest_run(struct relay_dns *dns)
{
	/* Through the timer, so the callback never runs inside this call. */
	if (!dns->closing && !dns->draining && dns->selftest_name != NULL &&
	    dns->selftest_q == NULL)
		(void)uv_timer_start(&dns->selftest_timer, selftest_timer_cb, 0,
		    0);
}

enum relay_dns_validation
relay_dns_validation_state(const struct relay_dns *dns)
{
	return dns->validation;
}

bool
relay_dns_validation_ok(const struct relay_dns *dns)
{
	return dns->validation == RELAY_DNS_VALIDATION_OK;
}

/* ---- lookups ---- */

static void
q_unlink(struct relay_dns_query *q)
{
	struct relay_dns *dns = q->dns;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		dns->qhead = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else
		dns->qtail = q->prev;
	q->prev = q->next = NULL;
}

static void deadline_cb(uv_timer_t *t);

static void
arm_deadline(struct relay_dns *dns)
{
	if (dns->qhead == NULL) {
		(void)uv_timer_stop(&dns->deadline);
		return;
	}
	uint64_t now = uv_now(dns->loop);
	uint64_t d = dns->qhead->deadline;
	(void)uv_timer_start(&dns->deadline, deadline_cb, d > now ? d - now : 0,
	    0);
}

/* Insert by deadline, scanning from the tail (usually O(1): most lookups
 * share one timeout). */
static void
q_insert(struct relay_dns_query *q)
{
	struct relay_dns *dns = q->dns;
	struct relay_dns_query *after = dns->qtail;

	while (after != NULL && after->deadline > q->deadline)
		after = after->prev;
	q->prev = after;
	q->next = after != NULL ? after->next : dns->qhead;
	if (q->next != NULL)
		q->next->prev = q;
	else
		dns->qtail = q;
	if (after != NULL)
		after->next = q;
	else
		dns->qhead = q;
}

void
dns__answer_from_ub(const char *qname, uint16_t qtype, int err,
    const struct ub_result *r, char canon[RELAY_DNS_HOST_MAX],
    struct relay_dns_answer *ans)
{
	char qnorm[RELAY_DNS_HOST_MAX];

	*ans = (struct relay_dns_answer){
		.qname = qname,
		.qtype = qtype,
		.st = relay_dns_classify(err, r),
		.ub = r,
	};
	if (r != NULL && r->bogus)
		ans->why_bogus = r->why_bogus;
	/* libunbound sets canonname to the last CNAME target (with a trailing
	 * dot); report it only when it differs from the question. */
	if (r != NULL && relay_dns_status_usable(&ans->st) &&
	    r->canonname != NULL) {
		if (relay_dns_host_normalize(r->canonname, strlen(r->canonname),
		        canon) != 0) {
			ans->st.sec = RELAY_DNS_INDETERMINATE;
			ans->st.kind = RELAY_DNS_FAILED;
			ans->st.why = RELAY_DNS_WHY_MALFORMED;
		} else if (relay_dns_host_normalize(qname, strlen(qname),
		               qnorm) != 0 ||
		    strcmp(qnorm, canon) != 0) {
			ans->canon = canon;
		}
	}
}

/* One answer for the counters, with the status its callback gets. Runs
 * on the loop thread (ub_process() and the deadline timer). */
static void
count_answer(struct relay_dns *dns, const struct relay_dns_answer *ans)
{
	enum relay_metrics_dnssec st = RELAY_METRICS_DNSSEC_INDETERMINATE;

	switch (ans->st.sec) {
	case RELAY_DNS_SECURE:
		st = RELAY_METRICS_DNSSEC_SECURE;
		break;
	case RELAY_DNS_INSECURE:
		st = RELAY_METRICS_DNSSEC_INSECURE;
		break;
	case RELAY_DNS_BOGUS:
		st = RELAY_METRICS_DNSSEC_BOGUS;
		break;
	case RELAY_DNS_INDETERMINATE:
		st = RELAY_METRICS_DNSSEC_INDETERMINATE;
		break;
	}
	relay_metrics_dns(dns->metrics, ans->qtype, st);
}

static void
ub_cb(void *arg, int err, struct ub_result *r)
{
	struct relay_dns_query *q = arg;
	char canon[RELAY_DNS_HOST_MAX];
	struct relay_dns_answer ans;

	q_unlink(q);
	dns__answer_from_ub(q->qname, q->qtype, err, r, canon, &ans);
	count_answer(q->dns, &ans);
	if (err != 0)
		dns__log(q->dns, RELAY_LOG_WARNING, "dns lookup %s/%u: %s",
		    q->qname, q->qtype, ub_strerror(err));
	q->cb(q->arg, &ans);
	if (r != NULL)
		ub_resolve_free(r);
	free(q);
}

static void
deadline_cb(uv_timer_t *t)
{
	struct relay_dns *dns = t->data;
	struct relay_dns_query *q;

	uint64_t now = uv_now(dns->loop);
	while (
	    !dns->closing && (q = dns->qhead) != NULL && q->deadline <= now) {
		q_unlink(q);
		(void)ub_cancel(dns->ub, q->id);
		struct relay_dns_answer ans = {
			.qname = q->qname,
			.qtype = q->qtype,
			.st = {
				.sec = RELAY_DNS_INDETERMINATE,
				.kind = RELAY_DNS_FAILED,
				.why = RELAY_DNS_WHY_TIMEOUT,
			},
		};
		dns__log(dns, RELAY_LOG_WARNING, "dns lookup %s/%u: timed out",
		    q->qname, q->qtype);
		count_answer(dns, &ans);
		q->cb(q->arg, &ans);
		free(q);
	}
	if (!dns->closing)
		arm_deadline(dns);
	dns__drain_check(dns);
}

int
relay_dns_lookup(struct relay_dns *dns, const char *name, uint16_t rrtype,
    relay_dns_lookup_cb *cb, void *arg, struct relay_dns_query **out)
{
	if (out != NULL)
		*out = NULL;
	if (dns->closing)
		return RELAY_DNS_ERR_CLOSING;
	size_t n = strlen(name);
	if (n == 0 || n >= QNAME_MAX)
		return RELAY_DNS_ERR_NAME;
	struct relay_dns_query *q = calloc(1, sizeof *q);
	if (q == NULL)
		return RELAY_DNS_ERR_NOMEM;
	q->dns = dns;
	q->qtype = rrtype;
	q->cb = cb;
	q->arg = arg;
	memcpy(q->qname, name, n + 1);
	q->deadline = uv_now(dns->loop) + dns->query_timeout_ms;

	/* libunbound never calls back from inside ub_resolve_async(): the
	 * answer always travels through the pipe to ub_process(). */
	int r = ub_resolve_async(dns->ub, q->qname, rrtype, 1 /* IN */, q,
	    ub_cb, &q->id);
	if (r != 0) {
		dns__log(dns, RELAY_LOG_ERROR,
		    "dns lookup %s/%u: cannot start: %s", name, rrtype,
		    ub_strerror(r));
		free(q);
		return RELAY_DNS_ERR_RESOLVER;
	}
	q_insert(q);
	if (dns->qhead == q)
		arm_deadline(dns);
	if (out != NULL)
		*out = q;
	return 0;
}

void
relay_dns_lookup_cancel(struct relay_dns_query *q)
{
	if (q == NULL)
		return;
	struct relay_dns *dns = q->dns;
	q_unlink(q);
	/* In threaded mode this only marks the query; its answer is dropped
	 * inside ub_process() and our callback (which would use q) never runs. */
	(void)ub_cancel(dns->ub, q->id);
	free(q);
	dns__drain_check(dns);
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
	struct relay_dns *dns = h->data;

	(void)events;
	if (dns->closing)
		return;
	if (status < 0) {
		dns__log(dns, RELAY_LOG_ERROR, "polling ub_fd: %s",
		    uv_strerror(status));
		return;
	}
	int r = ub_process(dns->ub);
	if (r != 0)
		dns__log(dns, RELAY_LOG_ERROR, "ub_process: %s",
		    ub_strerror(r));
	dns__drain_check(dns);
}

/* ---- teardown ---- */

size_t
relay_dns_pending(const struct relay_dns *dns)
{
	size_t n = 0;

	for (const struct relay_dns_query *q = dns->qhead; q != NULL;
	     q = q->next)
		if (q != dns->selftest_q)
			n++;
	for (const struct relay_dns_req *r = dns->reqs; r != NULL;
	     r = dns__req_next(r))
		n++;
	return n;
}

void
dns__drain_check(struct relay_dns *dns)
{
	/* A destination request cancelling its own lookups is still linked
	 * in dns->reqs, so this never closes under a request being torn
	 * down. */
	if (dns->draining && !dns->closing && relay_dns_pending(dns) == 0)
		relay_dns_close(dns, dns->close_cb, dns->close_arg);
}

void
relay_dns_close_when_idle(struct relay_dns *dns, void (*cb)(void *arg),
    void *arg)
{
	if (dns->closing || dns->draining)
		return;
	dns->draining = true;
	dns->close_cb = cb;
	dns->close_arg = arg;
	/* The retired context no longer vouches for DNSSEC: no self-test, and
	 * on_selftest (which would kick the scheduler) never runs again. */
	(void)uv_timer_stop(&dns->selftest_timer);
	dns->on_selftest = NULL;
	if (dns->selftest_q != NULL) {
		struct relay_dns_query *q = dns->selftest_q;
		dns->selftest_q = NULL;
		q_unlink(q);
		(void)ub_cancel(dns->ub, q->id);
		free(q);
		if (dns->started)
			arm_deadline(dns);
	}
	/* Idle already: close now (cb runs from the last uv_close callback,
	 * on a later loop turn, never inside this call). */
	dns__drain_check(dns);
}

static void
handle_closed(uv_handle_t *h)
{
	struct relay_dns *dns = h->data;

	if (--dns->open_handles > 0)
		return;
	/* The poll handle is closed, so libunbound may close its pipe now;
	 * this also stops and joins the worker thread. */
	ub_ctx_delete(dns->ub);
	void (*cb)(void *) = dns->close_cb;
	void *arg = dns->close_arg;
	free_dns(dns);
	if (cb != NULL)
		cb(arg);
}

void
relay_dns_close(struct relay_dns *dns, void (*cb)(void *arg), void *arg)
{
	if (dns->closing)
		return;
	dns->closing = true;
	dns->close_cb = cb;
	dns->close_arg = arg;
	dns__cancel_all_reqs(dns);
	/* Detach the whole list first, then cancel and free each query: no
	 * callback runs, and nothing can reach a freed query through the list
	 * (the self-test's query is among them). */
	struct relay_dns_query *q = dns->qhead;
	dns->qhead = dns->qtail = NULL;
	while (q != NULL) {
		struct relay_dns_query *next = q->next;
		(void)ub_cancel(dns->ub, q->id);
		free(q);
		q = next;
	}
	dns->selftest_q = NULL;
	uv_close((uv_handle_t *)&dns->poll, handle_closed);
	uv_close((uv_handle_t *)&dns->deadline, handle_closed);
	uv_close((uv_handle_t *)&dns->selftest_timer, handle_closed);
}
