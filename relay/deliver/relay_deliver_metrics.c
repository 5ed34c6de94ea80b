/*
 * relay_deliver_metrics: what one recipient attempt adds to the daemon's
 * counters (relay_metrics.h), from the same facts its delivery line logs,
 * so that the counters and the log never disagree.
 */
#include "deliver_int.h"
#include "relay_metrics.h"

/* The metrics take a class as its index and name it with the table the
 * daemon hands to relay_metrics_init(). */
_Static_assert(RELAY_FAIL_CLASS_COUNT <= RELAY_METRICS_CLASS_MAX,
    "RELAY_METRICS_CLASS_MAX must have room for every failure class");

void
deliver__count_delivery(const struct dest_job *j, const struct rcpt_out *o,
    uint64_t t)
{
	const struct msg_job *m = j->m;
	struct relay_metrics *mx = m->s->ctx->metrics;
	enum relay_metrics_outcome outcome;
	const char *tls = j->info.tls[0] != '\0' ? j->info.tls : "none";

	if (mx == NULL)
		return;
	switch (o->status) {
	case RELAY_QUEUE_RCPT_SENT:
		outcome = RELAY_METRICS_SENT;
		break;
	case RELAY_QUEUE_RCPT_DEFERRED:
		outcome = RELAY_METRICS_DEFERRED;
		break;
	case RELAY_QUEUE_RCPT_BOUNCED:
		outcome = RELAY_METRICS_BOUNCED;
		break;
	case RELAY_QUEUE_RCPT_PENDING:
		return; /* not an attempt (never logged either) */
	}
	relay_metrics_delivery(mx, outcome, tls, (unsigned)o->class);

	/* RFC 8460 4.3 result type of a TLS/DANE failure; a recipient sent
	 * over a session authenticated by TLSA records counts as success. */
	const char *result = relay_fail_class_tlsrpt_result(o->class);
	if (result == NULL && outcome == RELAY_METRICS_SENT &&
	    (strcmp(tls, "dane-ee") == 0 || strcmp(tls, "dane-ta") == 0))
		result = "success";
	if (result != NULL)
		relay_metrics_dane_result(mx, result);
	/* RFC 8461 5: an attempt under a testing policy that enforce would
	 * have refused counts under that failure's result type, as TLSRPT
	 * reports it, although the message went on. */
	if (result == NULL && j->sts_would_fail != RELAY_FAIL_CLASS_NONE) {
		const char *would =
		    relay_fail_class_tlsrpt_result(j->sts_would_fail);
		if (would != NULL)
			relay_metrics_dane_result(mx, would);
	}

	if (outcome == RELAY_METRICS_SENT) {
		uint64_t arr = m->env->arrival_us;
		relay_metrics_latency(mx, t > arr ? t - arr : 0);
	}
}
