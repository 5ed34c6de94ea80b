/*
 * fake_dns: stands in for relay/dns/relay_dns.c (the libunbound glue) in the
 * replay runner. Everything above it is real: relay_dns_dest.c drives MX ->
 * A/AAAA -> first CNAME -> TLSA through dns->ops exactly as in the daemon,
 * and relay_dns_classify() turns each answer into its DNSSEC status.
 *
 * Each lookup is answered from the scenario's `dns` lines on a later loop
 * iteration (a zero timer: callbacks never run inside the call that started
 * the work, relay_dns.h). The answer is built as the struct ub_result
 * libunbound would hand back (rcode, havedata, nxdomain, secure, bogus,
 * canonname, rdata), so classification is the daemon's own. A `timeout`
 * answer arrives after the context's query timeout, as relay_dns.c's
 * deadline timer makes it, on the driven clock.
 *
 * Lookups nobody scripted: under a `zone`, the zone's denial (NXDOMAIN, or
 * NODATA where the name has records of another type); for the domains of
 * envelope senders (where DSNs go), SERVFAIL; anything else is recorded and
 * fails the scenario, so a scenario lists every answer its outcome depends
 * on.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unbound.h>

#include "relay_config.h"
#include "dns_int.h"
#include "replay.h"

#define DEFAULT_QUERY_TIMEOUT_MS 10000u
#define QNAME_MAX 272

/* relay_dns_int.h leaves struct relay_dns_query to the lookup layer. */
struct relay_dns_query {
	struct relay_dns *dns;
	struct relay_dns_query *prev, *next; /* dns->qhead list */
	uv_timer_t timer;
	bool cancelled;
	uint16_t qtype;
	relay_dns_lookup_cb *cb;
	void *arg;
	char qname[QNAME_MAX];
};

static const struct dns__lookup_ops fake_ops;

void
dns__log(struct relay_dns *dns, enum relay_log_level level, const char *fmt,
    ...)
{
	char text[768];
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
	relay_log_str(&l, "why", text);
	relay_log_end(&l);
}

/* Deterministic MX shuffle: the same scenario orders equal preferences
 * the same way every run (a small LCG). */
static uint32_t
replay_rng(void *arg)
{
	uint32_t *state = arg;
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

static uint32_t rng_state;

void
relay_dns_opts_from_config(struct relay_dns_opts *opts,
    const struct relay_config *cfg)
{
	memset(opts, 0, sizeof *opts);
	/* What the destination driver reads (relay_dns_dest.c is real). */
	opts->inet_protocols = cfg->inet_protocols;
	opts->address_preference = cfg->smtp_address_preference;
}

static void
handle_closed(uv_handle_t *h)
{
	struct relay_dns *dns = h->data;
	if (--dns->open_handles > 0)
		return;
	void (*cb)(void *) = dns->close_cb;
	void *arg = dns->close_arg;
	free(dns);
	if (cb != NULL)
		cb(arg);
}

int
relay_dns_new(uv_loop_t *loop, const struct relay_dns_opts *opts,
    struct relay_dns **out)
{
	struct relay_dns *dns = calloc(1, sizeof *dns);
	if (dns == NULL)
		return RELAY_DNS_ERR_NOMEM;
	dns->loop = loop;
	dns->ops = &fake_ops;
	rng_state = 1;
	dns->rng = replay_rng;
	dns->rng_arg = &rng_state;
	dns->inet_protocols = opts->inet_protocols;
	dns->address_preference = opts->address_preference;
	dns->query_timeout_ms = opts->query_timeout_ms
	    ? opts->query_timeout_ms
	    : DEFAULT_QUERY_TIMEOUT_MS;
	/* The known-answer self-test is the resolver's; here the scenario
	 * says how it went (`selftest failing`). */
	dns->validation =
	    replay_world != NULL && replay_world->sc->selftest_failing
	    ? RELAY_DNS_VALIDATION_FAILED
	    : RELAY_DNS_VALIDATION_OK;
	/* The deadline timer only holds the context open until close. */
	if (uv_timer_init(loop, &dns->deadline) != 0) {
		free(dns);
		return RELAY_DNS_ERR_LOOP;
	}
	dns->deadline.data = dns;
	dns->open_handles = 1;
	*out = dns;
	return 0;
}

int
relay_dns_start(struct relay_dns *dns)
{
	dns->started = true;
	return 0;
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

void
relay_dns_selftest_run(struct relay_dns *dns)
{
	(void)dns;
}

/* ------------------------------------------------------------ lookups */

static void
q_unlink(struct relay_dns_query *q)
{
	struct relay_dns *dns = q->dns;
	if (q->prev != NULL)
		q->prev->next = q->next;
	else if (dns->qhead == q)
		dns->qhead = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else if (dns->qtail == q)
		dns->qtail = q->prev;
	q->prev = q->next = NULL;
}

static void
q_closed(uv_handle_t *h)
{
	struct relay_dns_query *q = h->data;
	struct relay_dns *dns = q->dns;
	free(q);
	handle_closed((uv_handle_t *)&dns->deadline);
}

/* The query's timer is closed; the query is freed when it is. */
static void
q_retire(struct relay_dns_query *q)
{
	q_unlink(q);
	q->cancelled = true;
	uv_close((uv_handle_t *)&q->timer, q_closed);
}

static bool
under(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);
	if (strcmp(zone, ".") == 0)
		return true;
	return n == z ? strcmp(name, zone) == 0
	              : n > z && name[n - z - 1] == '.' &&
	        strcmp(name + n - z, zone) == 0;
}

static void
normalize(const char *in, char *out, size_t size)
{
	size_t n = strlen(in);
	if (n > 1 && in[n - 1] == '.')
		n--;
	if (n >= size)
		n = size - 1;
	for (size_t i = 0; i < n; i++)
		out[i] =
		    (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
	out[n] = '\0';
}

/* The answer libunbound would give, as a ub_result on the heap. */
struct built {
	struct ub_result ub;
	char *data[RPL_RR_MAX + 1];
	int len[RPL_RR_MAX + 1];
	char qname[QNAME_MAX];
	char canon[RPL_NAME_MAX + 1];
	char why[64];
};

static void
set_sec(struct built *b, enum rpl_sec sec)
{
	b->ub.secure = sec == RPL_SECURE;
	b->ub.bogus = sec == RPL_BOGUS;
	if (sec == RPL_BOGUS) {
		snprintf(b->why, sizeof b->why,
		    "validation failure (scripted bogus)");
		b->ub.why_bogus = b->why;
	}
}

/* Fill b for q; returns false when the answer is a timeout. */
static bool
build_answer(const struct relay_dns_query *q, struct built *b)
{
	struct replay_world *w = replay_world;
	char name[QNAME_MAX];
	normalize(q->qname, name, sizeof name);
	memset(b, 0, sizeof *b);
	snprintf(b->qname, sizeof b->qname, "%s", q->qname);
	b->ub.qname = b->qname;
	b->ub.qtype = q->qtype;
	b->ub.qclass = 1;
	b->ub.data = b->data;
	b->ub.len = b->len;
	b->ub.ttl = 300;
	if (w->nqueries < sizeof w->queries / sizeof w->queries[0] &&
	    asprintf(&w->queries[w->nqueries], "%s %s", name,
	        rpl_type_name(q->qtype)) > 0)
		w->nqueries++;

	const struct rpl_rrset *rs = NULL;
	bool name_exists = false;
	enum rpl_sec name_sec = RPL_INSECURE;
	for (size_t i = 0; i < w->sc->nrrsets; i++) {
		const struct rpl_rrset *r = &w->sc->rrsets[i];
		if (strcmp(r->name, name) != 0)
			continue;
		if (r->type == q->qtype)
			rs = r;
		else if (!name_exists && r->ans != RPL_ANS_NXDOMAIN) {
			name_exists = true;
			name_sec = r->sec;
		}
	}
	if (rs != NULL) {
		set_sec(b, rs->sec);
		switch (rs->ans) {
		case RPL_ANS_TIMEOUT:
			return false;
		case RPL_ANS_SERVFAIL:
			b->ub.rcode = 2;
			return true;
		case RPL_ANS_REFUSED:
			b->ub.rcode = 5;
			return true;
		case RPL_ANS_NXDOMAIN:
			b->ub.rcode = 3;
			b->ub.nxdomain = 1;
			break;
		case RPL_ANS_NODATA:
			break;
		case RPL_ANS_DATA:
			for (size_t k = 0; k < rs->nrr; k++) {
				b->data[k] = (char *)rs->rr[k].p;
				b->len[k] = (int)rs->rr[k].len;
			}
			b->ub.havedata = rs->nrr > 0;
			break;
		}
		if (rs->canon[0] != '\0') {
			snprintf(b->canon, sizeof b->canon, "%s.", rs->canon);
			b->ub.canonname = b->canon;
		}
		return true;
	}
	/* Unscripted: the longest enclosing zone decides. */
	const struct rpl_zone *zone = NULL;
	for (size_t i = 0; i < w->sc->nzones; i++) {
		const struct rpl_zone *z = &w->sc->zones[i];
		if (under(name, z->name) &&
		    (zone == NULL || strlen(z->name) > strlen(zone->name)))
			zone = z;
	}
	if (zone != NULL) {
		set_sec(b, name_exists ? name_sec : zone->sec);
		if (!name_exists) {
			b->ub.rcode = 3;
			b->ub.nxdomain = 1;
		}
		return true;
	}
	bool allowed = false;
	for (size_t i = 0; i < w->nallowed; i++)
		allowed |= under(name, w->allowed[i]);
	if (!allowed &&
	    w->nunscripted < sizeof w->unscripted / sizeof w->unscripted[0])
		snprintf(w->unscripted[w->nunscripted++],
		    sizeof w->unscripted[0], "%s/%s", name,
		    rpl_type_name(q->qtype));
	b->ub.rcode = 2;
	return true;
}

/* What relay_dns.c hands the callback for a libunbound result: the
 * classification, why_bogus, and the CNAME target when it differs from the
 * question (a target that is not a host name fails the answer). */
static void
answer_from_result(const char *qname, uint16_t qtype, const struct ub_result *r,
    char canon[RELAY_DNS_HOST_MAX], struct relay_dns_answer *ans)
{
	char qnorm[RELAY_DNS_HOST_MAX];
	*ans = (struct relay_dns_answer){
		.qname = qname,
		.qtype = qtype,
		.st = relay_dns_classify(0, r),
		.ub = r,
	};
	if (r->bogus)
		ans->why_bogus = r->why_bogus;
	if (relay_dns_status_usable(&ans->st) && r->canonname != NULL) {
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

static void
q_timeout_cb(uv_timer_t *t)
{
	struct relay_dns_query *q = t->data;
	struct relay_dns *dns = q->dns;
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
	relay_dns_lookup_cb *cb = q->cb;
	void *arg = q->arg;
	q_retire(q);
	cb(arg, &ans);
	dns__drain_check(dns);
}

static void
q_answer_cb(uv_timer_t *t)
{
	struct relay_dns_query *q = t->data;
	struct relay_dns *dns = q->dns;
	struct built *b = malloc(sizeof *b);
	if (b == NULL)
		abort();
	if (!build_answer(q, b)) {
		free(b);
		uv_timer_start(&q->timer, q_timeout_cb, dns->query_timeout_ms,
		    0);
		return;
	}
	char canon[RELAY_DNS_HOST_MAX];
	struct relay_dns_answer ans;
	char qname[QNAME_MAX];
	memcpy(qname, q->qname, sizeof qname);
	answer_from_result(qname, q->qtype, &b->ub, canon, &ans);
	relay_dns_lookup_cb *cb = q->cb;
	void *arg = q->arg;
	q_retire(q);
	cb(arg, &ans);
	free(b);
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
	if (uv_timer_init(dns->loop, &q->timer) != 0) {
		free(q);
		return RELAY_DNS_ERR_LOOP;
	}
	q->timer.data = q;
	dns->open_handles++;
	uv_timer_start(&q->timer, q_answer_cb, 0, 0);
	q->prev = dns->qtail;
	if (dns->qtail != NULL)
		dns->qtail->next = q;
	else
		dns->qhead = q;
	dns->qtail = q;
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
	q_retire(q);
	dns__drain_check(dns);
}

static const struct dns__lookup_ops fake_ops = {
	.lookup = relay_dns_lookup,
	.cancel = relay_dns_lookup_cancel,
};

/* ------------------------------------------------------------ teardown */

size_t
relay_dns_pending(const struct relay_dns *dns)
{
	size_t n = 0;
	for (const struct relay_dns_query *q = dns->qhead; q != NULL;
	     q = q->next)
		n++;
	for (const struct relay_dns_req *r = dns->reqs; r != NULL;
	     r = dns__req_next(r))
		n++;
	return n;
}

void
dns__drain_check(struct relay_dns *dns)
{
	if (dns->draining && !dns->closing && relay_dns_pending(dns) == 0)
		relay_dns_close(dns, dns->close_cb, dns->close_arg);
}

void
relay_dns_close_when_idle(struct relay_dns *dns, void (*cb)(void *arg),
    void *arg)
{
	if (dns->closing)
		return;
	dns->draining = true;
	dns->close_cb = cb;
	dns->close_arg = arg;
	dns__drain_check(dns);
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
	while (dns->qhead != NULL)
		q_retire(dns->qhead);
	uv_close((uv_handle_t *)&dns->deadline, handle_closed);
}
