/*
 * relay_control_status: the reply to the control socket's "status"
 * request (relay_control.h): the queue tally and the "KEY VALUE" pairs the
 * CLI turns into text or JSON. No I/O: the daemon's part comes in a
 * struct, the queue's from envelopes the caller scanned.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "danerelay_version.h"
#include "relay_control.h"
#include "relay_report.h"

void
relay_control_counts_add(struct relay_control_queue_counts *c,
    const struct relay_queue_envelope *env)
{
	c->messages++;
	switch (relay_report_queue_of(env, c->now_us)) {
	case RELAY_REPORT_QUEUE_ACTIVE:
		c->active++;
		break;
	case RELAY_REPORT_QUEUE_DEFERRED:
		c->deferred++;
		break;
	case RELAY_REPORT_QUEUE_HOLD:
		c->hold++;
		break;
	}
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct relay_queue_rcpt *r = &env->rcpt[i];
		if (r->status == RELAY_QUEUE_RCPT_SENT ||
		    r->status == RELAY_QUEUE_RCPT_BOUNCED)
			continue;
		c->recipients++;
		if (r->status != RELAY_QUEUE_RCPT_DEFERRED)
			continue;
		c->deferred_recipients++;
		c->by_class[relay_fail_class_parse(r->failure_class)]++;
	}
}

static void
pair_u64(relay_control_pair_fn line, void *arg, const char *key, uint64_t v)
{
	char buf[32];
	(void)snprintf(buf, sizeof(buf), "%" PRIu64, v);
	line(arg, key, buf);
}

void
relay_control_status_pairs(long pid, const struct relay_control_daemon_info *d,
    const struct relay_control_queue_counts *q, relay_control_pair_fn line,
    void *arg)
{
	pair_u64(line, arg, "pid", (uint64_t)pid);
	line(arg, "version", DANERELAY_VERSION);
	pair_u64(line, arg, "started", d->started_us / 1000000u);
	pair_u64(line, arg, "uptime_s", d->uptime_us / 1000000u);
	line(arg, "dns_selftest.state",
	    d->selftest_state != NULL ? d->selftest_state : "unknown");
	line(arg, "dns_selftest.last_result",
	    !d->selftest_ran     ? "none"
	        : d->selftest_ok ? "ok"
	                         : "failed");
	pair_u64(line, arg, "dns_selftest.last_time",
	    d->selftest_us / 1000000u);
	line(arg, "dns_selftest.why", d->selftest_why);
	pair_u64(line, arg, "deliveries.messages", d->deliveries);
	pair_u64(line, arg, "deliveries.destinations", d->destinations);
	pair_u64(line, arg, "connections.outbound", d->connections_out);
	pair_u64(line, arg, "connections.inbound", d->connections_in);
	pair_u64(line, arg, "connection_cache", d->connection_cache);
	pair_u64(line, arg, "queue.messages", q->messages);
	pair_u64(line, arg, "queue.active", q->active);
	pair_u64(line, arg, "queue.deferred", q->deferred);
	pair_u64(line, arg, "queue.hold", q->hold);
	pair_u64(line, arg, "queue.recipients", q->recipients);
	pair_u64(line, arg, "queue.deferred_recipients",
	    q->deferred_recipients);
	for (int c = 0; c < RELAY_FAIL_CLASS_COUNT; c++) {
		if (q->by_class[c] == 0)
			continue;
		char key[64];
		const char *name =
		    relay_fail_class_name((enum relay_fail_class)c);
		(void)snprintf(key, sizeof(key), "queue.class.%s",
		    name[0] != '\0' ? name : "none");
		pair_u64(line, arg, key, q->by_class[c]);
	}
	pair_u64(line, arg, "queue.unparsable", q->unreadable.unparsable);
	pair_u64(line, arg, "queue.corrupt", q->unreadable.corrupt);
}

void
relay_control_policy_exceptions(const struct relay_config *cfg, uint64_t now_us,
    relay_control_pair_fn line, void *arg)
{
	for (size_t i = 0; i < cfg->tls_policy_count; i++) {
		const struct relay_tls_policy_entry *e = &cfg->tls_policy[i];
		char v[1600];
		if (!e->has_until || !relay_tls_policy_active(e, now_us))
			continue;
		(void)snprintf(v, sizeof(v), "%s %s %s %lld %s:%u %s",
		    e->domain, relay_tls_level_name(e->level), e->until,
		    (long long)relay_tls_policy_days_left(e, now_us), e->file,
		    e->line, e->reason);
		line(arg, "policy_exception", v);
	}
}
