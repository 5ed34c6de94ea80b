/*
 * relay_metrics: counters indexed by enums, and the Prometheus text
 * exposition format 0.0.4 renderer. See relay_metrics.h.
 *
 * Format rules followed here (Prometheus "Exposition formats", text format
 * 0.0.4): one "# HELP name text" and one "# TYPE name type" line per
 * family before its samples; samples "name{label="value",...} number";
 * in label values backslash, double quote and line feed are escaped, in
 * HELP text backslash and line feed; counters end in _total; a histogram
 * has cumulative name_bucket{le="..."} samples ending with le="+Inf", then
 * name_sum and name_count (count == the +Inf bucket). Lines end in LF.
 */
#include "relay_metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* tls= spellings (tlsa_auth_name()), then the slot for anything else. */
static const char *const tls_names[RELAY_METRICS_TLS_COUNT] = {
	"none",
	"may",
	"encrypt",
	"verified",
	"dane-ee",
	"dane-ta",
	/* MTA-STS (RFC 8461) for hosts without DANE. */
	"sts-enforce",
	"sts-testing",
	"other",
};

static const char *const outcome_names[RELAY_METRICS_OUTCOME_COUNT] = {
	[RELAY_METRICS_SENT] = "sent",
	[RELAY_METRICS_DEFERRED] = "deferred",
	[RELAY_METRICS_BOUNCED] = "bounced",
};

/* RFC 8460 4.3 result types: 4.3.1 negotiation failures, 4.3.2.1 DANE
 * policy failures, 4.3.2.2 MTA-STS policy failures (never produced by
 * danerelay, listed so that dashboards see the whole registry), 4.3.3
 * the general validation-failure; and "success" (RFC 8460 4.4's
 * total-successful-session-count). */
static const char *const dane_result_names[RELAY_METRICS_DANE_RESULT_COUNT] = {
	"success",
	"starttls-not-supported",
	"certificate-host-mismatch",
	"certificate-expired",
	"certificate-not-trusted",
	"validation-failure",
	"tlsa-invalid",
	"dnssec-invalid",
	"dane-required",
	"sts-policy-fetch-error",
	"sts-policy-invalid",
	"sts-webpki-invalid",
};

static const char *const dnssec_names[RELAY_METRICS_DNSSEC_COUNT] = {
	[RELAY_METRICS_DNSSEC_SECURE] = "secure",
	[RELAY_METRICS_DNSSEC_INSECURE] = "insecure",
	[RELAY_METRICS_DNSSEC_BOGUS] = "bogus",
	[RELAY_METRICS_DNSSEC_INDETERMINATE] = "indeterminate",
};

/* Query types by DNS type code (RFC 1035 3.2.2, RFC 3596, RFC 6698);
 * the last row catches the rest. */
static const struct {
	uint16_t code;
	const char *name;
} qtypes[RELAY_METRICS_QTYPE_COUNT] = {
	{ 1, "A" },
	{ 28, "AAAA" },
	{ 15, "MX" },
	{ 52, "TLSA" },
	{ 5, "CNAME" },
	{ 6, "SOA" },
	{ 0, "other" },
};

static const char *const handshake_names[RELAY_METRICS_HANDSHAKE_COUNT] = {
	[RELAY_METRICS_HANDSHAKE_OK] = "ok",
	[RELAY_METRICS_HANDSHAKE_FAILED] = "failed",
};

/* Seconds, as rendered in le="..."; the same bounds in microseconds for
 * the increments. From a fast local hand-off (50 ms) to an hour of
 * retries (Postfix's minimal_backoff_time is 300 s). */
static const char *const latency_le[RELAY_METRICS_LATENCY_BUCKETS] = {
	"0.05",
	"0.1",
	"0.25",
	"0.5",
	"1",
	"2.5",
	"5",
	"10",
	"30",
	"60",
	"120",
	"300",
	"600",
	"1800",
	"3600",
};
static const uint64_t latency_le_us[RELAY_METRICS_LATENCY_BUCKETS] = {
	50000,
	100000,
	250000,
	500000,
	1000000,
	2500000,
	5000000,
	10000000,
	30000000,
	60000000,
	120000000,
	300000000,
	600000000,
	1800000000,
	3600000000,
};

void
relay_metrics_init(struct relay_metrics *m, const char *const *class_names,
    size_t nclass)
{
	memset(m, 0, sizeof(*m));
	m->class_names = class_names;
	m->nclass =
	    nclass < RELAY_METRICS_CLASS_MAX ? nclass : RELAY_METRICS_CLASS_MAX;
}

static size_t
tls_index(const char *tls)
{
	if (tls == NULL || tls[0] == '\0')
		return 0; /* "none", as the delivery line writes it */
	for (size_t i = 0; i + 1 < RELAY_METRICS_TLS_COUNT; i++)
		if (strcmp(tls, tls_names[i]) == 0)
			return i;
	return RELAY_METRICS_TLS_COUNT - 1;
}

void
relay_metrics_delivery(struct relay_metrics *m,
    enum relay_metrics_outcome outcome, const char *tls, unsigned fail_class)
{
	if (m == NULL || (unsigned)outcome >= RELAY_METRICS_OUTCOME_COUNT)
		return;
	if (fail_class >= RELAY_METRICS_CLASS_MAX)
		fail_class = RELAY_METRICS_CLASS_MAX - 1;
	m->deliveries[outcome][tls_index(tls)][fail_class]++;
}

void
relay_metrics_latency(struct relay_metrics *m, uint64_t micros)
{
	size_t b = 0;

	if (m == NULL)
		return;
	while (b < RELAY_METRICS_LATENCY_BUCKETS && micros > latency_le_us[b])
		b++;
	m->latency[b]++;
	m->latency_sum_us += micros;
	m->latency_count++;
}

static int
dane_result_index(const char *result)
{
	for (int i = 0; result != NULL && i < RELAY_METRICS_DANE_RESULT_COUNT;
	     i++)
		if (strcmp(result, dane_result_names[i]) == 0)
			return i;
	return -1;
}

bool
relay_metrics_dane_result_known(const char *result)
{
	return dane_result_index(result) >= 0;
}

void
relay_metrics_dane_result(struct relay_metrics *m, const char *result)
{
	int i = dane_result_index(result);

	if (m != NULL && i >= 0)
		m->dane_results[i]++;
}

void
relay_metrics_dns(struct relay_metrics *m, uint16_t qtype,
    enum relay_metrics_dnssec status)
{
	size_t t = 0;

	if (m == NULL || (unsigned)status >= RELAY_METRICS_DNSSEC_COUNT)
		return;
	while (t + 1 < RELAY_METRICS_QTYPE_COUNT && qtypes[t].code != qtype)
		t++;
	m->dns[t][status]++;
}

void
relay_metrics_tls_handshake(struct relay_metrics *m,
    enum relay_metrics_handshake result)
{
	if (m != NULL && (unsigned)result < RELAY_METRICS_HANDSHAKE_COUNT)
		m->handshakes[result]++;
}

void
relay_metrics_connection_reuse(struct relay_metrics *m)
{
	if (m != NULL)
		m->reuses++;
}

void
relay_metrics_routing_change(struct relay_metrics *m, const char *kind)
{
	char k[RELAY_METRICS_KIND_MAX];
	size_t n;

	if (m == NULL)
		return;
	if (kind == NULL || kind[0] == '\0')
		kind = "unknown";
	n = strlen(kind);
	if (n >= sizeof(k))
		n = sizeof(k) - 1;
	memcpy(k, kind, n);
	k[n] = '\0';
	for (size_t i = 0; i < m->nrouting_kinds; i++) {
		if (strcmp(m->routing_kind[i], k) == 0) {
			m->routing[i]++;
			return;
		}
	}
	if (m->nrouting_kinds < RELAY_METRICS_ROUTING_KINDS) {
		memcpy(m->routing_kind[m->nrouting_kinds], k, n + 1);
		m->routing[m->nrouting_kinds++]++;
		return;
	}
	m->routing[RELAY_METRICS_ROUTING_KINDS]++;
}

/* ------------------------------------------------------------ rendering */

/* A snprintf-style writer: counts every byte, stores what fits. */
struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void
out_bytes(struct out *o, const char *p, size_t n)
{
	if (o->len < o->size) {
		size_t room = o->size - o->len;
		memcpy(o->buf + o->len, p, n < room ? n : room);
	}
	o->len += n;
}

static void
out_str(struct out *o, const char *s)
{
	out_bytes(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void
out_fmt(struct out *o, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	/* Only numbers go through here; they always fit. */
	if (n > 0)
		out_bytes(o, tmp,
		    (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A label value, escaped (text format 0.0.4). */
static void
out_label(struct out *o, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			out_bytes(o, "\\\\", 2);
		else if (*s == '"')
			out_bytes(o, "\\\"", 2);
		else if (*s == '\n')
			out_bytes(o, "\\n", 2);
		else
			out_bytes(o, s, 1);
	}
}

size_t
relay_metrics_escape_label(const char *s, char *buf, size_t size)
{
	struct out o = { buf, size, 0 };

	out_label(&o, s);
	if (size > 0)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}

/* HELP and TYPE lines; help is our own constant text (no escapes
 * needed: no backslash, no line feed). */
static void
out_family(struct out *o, const char *name, const char *type, const char *help)
{
	out_str(o, "# HELP ");
	out_str(o, name);
	out_str(o, " ");
	out_str(o, help);
	out_str(o, "\n# TYPE ");
	out_str(o, name);
	out_str(o, " ");
	out_str(o, type);
	out_str(o, "\n");
}

/* name{l1="v1"} value, with one label (lname NULL: none). */
static void
out_sample1(struct out *o, const char *name, const char *lname,
    const char *lvalue, uint64_t v)
{
	out_str(o, name);
	if (lname != NULL) {
		out_str(o, "{");
		out_str(o, lname);
		out_str(o, "=\"");
		out_label(o, lvalue);
		out_str(o, "\"}");
	}
	out_fmt(o, " %" PRIu64 "\n", v);
}

static const char *
class_name(const struct relay_metrics *m, size_t c)
{
	const char *n = c < m->nclass && m->class_names != NULL
	    ? m->class_names[c]
	    : "unknown";
	return n == NULL || n[0] == '\0' ? "none" : n;
}

static void
render_deliveries(struct out *o, const struct relay_metrics *m)
{
	static const char name[] = "danerelay_deliveries_total";

	out_family(o, name, "counter",
	    "Recipient delivery attempts by outcome (the delivery line's "
	    "status=), TLS verdict (tls=) and failure class (class=, none when "
	    "sent).");
	for (size_t s = 0; s < RELAY_METRICS_OUTCOME_COUNT; s++) {
		for (size_t t = 0; t < RELAY_METRICS_TLS_COUNT; t++) {
			for (size_t c = 0; c < RELAY_METRICS_CLASS_MAX; c++) {
				uint64_t v = m->deliveries[s][t][c];
				if (v == 0)
					continue;
				out_str(o, name);
				out_str(o, "{outcome=\"");
				out_label(o, outcome_names[s]);
				out_str(o, "\",tls=\"");
				out_label(o, tls_names[t]);
				out_str(o, "\",class=\"");
				out_label(o, class_name(m, c));
				out_fmt(o, "\"} %" PRIu64 "\n", v);
			}
		}
	}
}

static void
render_latency(struct out *o, const struct relay_metrics *m)
{
	static const char name[] = "danerelay_delivery_latency_seconds";
	uint64_t cum = 0;

	out_family(o, name, "histogram",
	    "Time from acceptance (the 250 reply) to delivery of a recipient "
	    "that was sent, in seconds.");
	for (size_t b = 0; b <= RELAY_METRICS_LATENCY_BUCKETS; b++) {
		cum += m->latency[b];
		out_str(o, name);
		out_str(o, "_bucket{le=\"");
		out_str(o,
		    b < RELAY_METRICS_LATENCY_BUCKETS ? latency_le[b] : "+Inf");
		out_fmt(o, "\"} %" PRIu64 "\n", cum);
	}
	out_str(o, name);
	out_fmt(o, "_sum %" PRIu64 ".%06" PRIu64 "\n",
	    m->latency_sum_us / 1000000u, m->latency_sum_us % 1000000u);
	out_str(o, name);
	out_fmt(o, "_count %" PRIu64 "\n", m->latency_count);
}

size_t
relay_metrics_render(const struct relay_metrics *m,
    const struct relay_metrics_gauges *g, char *buf, size_t size)
{
	struct out o = { buf, size, 0 };
	const char *n;

	render_deliveries(&o, m);

	n = "danerelay_dane_results_total";
	out_family(&o, n, "counter",
	    "DANE and TLS outcomes of recipient attempts as RFC 8460 4.3 "
	    "result types, or success for an attempt sent over an "
	    "authenticated DANE session.");
	for (size_t i = 0; i < RELAY_METRICS_DANE_RESULT_COUNT; i++)
		out_sample1(&o, n, "result", dane_result_names[i],
		    m->dane_results[i]);

	n = "danerelay_dns_lookups_total";
	out_family(&o, n, "counter",
	    "DNS answers by query type and DNSSEC status (RFC 4035 4.3); "
	    "timeouts count as indeterminate.");
	for (size_t t = 0; t < RELAY_METRICS_QTYPE_COUNT; t++) {
		for (size_t s = 0; s < RELAY_METRICS_DNSSEC_COUNT; s++) {
			out_str(&o, n);
			out_str(&o, "{type=\"");
			out_label(&o, qtypes[t].name);
			out_str(&o, "\",status=\"");
			out_label(&o, dnssec_names[s]);
			out_fmt(&o, "\"} %" PRIu64 "\n", m->dns[t][s]);
		}
	}

	n = "danerelay_tls_handshakes_total";
	out_family(&o, n, "counter",
	    "Outbound TLS handshakes by result (failed includes a completed "
	    "handshake whose authentication failed).");
	for (size_t i = 0; i < RELAY_METRICS_HANDSHAKE_COUNT; i++)
		out_sample1(&o, n, "result", handshake_names[i],
		    m->handshakes[i]);

	n = "danerelay_connection_reuses_total";
	out_family(&o, n, "counter",
	    "Messages sent over a cached outbound connection.");
	out_sample1(&o, n, NULL, NULL, m->reuses);

	n = "danerelay_queue_messages";
	out_family(&o, n, "gauge", "Messages in the queue by state.");
	out_sample1(&o, n, "state", "active", g->queue_active);
	out_sample1(&o, n, "state", "deferred", g->queue_deferred);
	out_sample1(&o, n, "state", "hold", g->queue_hold);

	n = "danerelay_queue_oldest_age_seconds";
	out_family(&o, n, "gauge",
	    "Age of the oldest queued message in seconds (0 when the queue "
	    "is empty).");
	out_str(&o, n);
	out_fmt(&o, " %.3f\n", g->oldest_age_s);

	n = "danerelay_dnssec_selftest_ok";
	out_family(&o, n, "gauge",
	    "1 when the last DNSSEC self-test passed, else 0 (deliveries "
	    "that depend on DNSSEC are deferred).");
	out_sample1(&o, n, NULL, NULL, g->selftest_ok ? 1 : 0);

	n = "danerelay_dnssec_selftest_last_success_timestamp_seconds";
	out_family(&o, n, "gauge",
	    "When the DNSSEC self-test last passed, in seconds since the "
	    "epoch (0: not yet).");
	out_str(&o, n);
	out_fmt(&o, " %.3f\n", g->selftest_last_success_s);

	n = "danerelay_routing_changes_total";
	out_family(&o, n, "counter", "Routing changes seen, by kind.");
	for (size_t i = 0; i < m->nrouting_kinds; i++)
		out_sample1(&o, n, "kind", m->routing_kind[i], m->routing[i]);
	if (m->routing[RELAY_METRICS_ROUTING_KINDS] > 0)
		out_sample1(&o, n, "kind", "other",
		    m->routing[RELAY_METRICS_ROUTING_KINDS]);

	render_latency(&o, m);

	if (size > 0)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}
