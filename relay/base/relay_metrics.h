#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H
/*
 * relay_metrics: the daemon's counters, and their rendering in the
 * Prometheus text exposition format, version 0.0.4 (served by `serve` on
 * metrics_listen at GET /metrics, and printed by `danerelay metrics`).
 *
 * One struct relay_metrics per `serve` process, owned by the daemon and
 * handed to the layers below through their context structs (a NULL
 * pointer counts nothing: tests, probe and the CLI pass none). Every
 * counter is a fixed-size array indexed by an enum, so an increment never
 * allocates, never fails and takes no lock: every increment runs on the
 * loop thread (delivery outcomes, libunbound answers after ub_process(),
 * TLS handshakes, which all run in loop callbacks; no thread-pool work
 * counts anything).
 *
 * The layers below the queue cannot see enum relay_fail_class (queue/), so
 * a failure class is passed as its integer value and the names come from
 * relay_metrics_init() (the daemon builds them with relay_fail_class_name()).
 * RFC 8460 result types are passed as their strings
 * (relay_fail_class_tlsrpt_result()) and matched against the table here.
 *
 * Gauges that describe the present (queue sizes, the self-test) are not
 * kept here: the caller reads them when it renders and passes them in
 * struct relay_metrics_gauges.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The Content-Type of the rendered text (exposition format 0.0.4). */
#define RELAY_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Failure classes the delivery counter has room for (an index at or above
 * it is counted as RELAY_METRICS_CLASS_MAX - 1, "unknown"). */
#define RELAY_METRICS_CLASS_MAX 32
/* Distinct routing-change kinds kept apart; later kinds share "other". */
#define RELAY_METRICS_ROUTING_KINDS 16
#define RELAY_METRICS_KIND_MAX 48

/* Outcome of one recipient attempt: the delivery line's status=. */
enum relay_metrics_outcome {
	RELAY_METRICS_SENT,
	RELAY_METRICS_DEFERRED,
	RELAY_METRICS_BOUNCED,
};
#define RELAY_METRICS_OUTCOME_COUNT 3

/* How the session was protected: the delivery line's tls=
 * (tlsa_auth_name(), or sts-enforce / sts-testing under MTA-STS), plus
 * "other" for a spelling not in that table. */
#define RELAY_METRICS_TLS_COUNT 9

/* DNSSEC status of one answer (RFC 4035 4.3), in relay_dns_sec's order. */
enum relay_metrics_dnssec {
	RELAY_METRICS_DNSSEC_SECURE,
	RELAY_METRICS_DNSSEC_INSECURE,
	RELAY_METRICS_DNSSEC_BOGUS,
	RELAY_METRICS_DNSSEC_INDETERMINATE,
};
#define RELAY_METRICS_DNSSEC_COUNT 4
/* Query types counted apart: A, AAAA, MX, TLSA, CNAME, SOA, other. */
#define RELAY_METRICS_QTYPE_COUNT 7

enum relay_metrics_handshake {
	RELAY_METRICS_HANDSHAKE_OK,     /* completed and authenticated as the
	                                 * verdict requires */
	RELAY_METRICS_HANDSHAKE_FAILED, /* failed, timed out, or its
	                                 * authentication failed */
};
#define RELAY_METRICS_HANDSHAKE_COUNT 2

/* RFC 8460 4.3 result types plus "success" (see relay_metrics.c). */
#define RELAY_METRICS_DANE_RESULT_COUNT 12

/* Upper bounds of the latency histogram's buckets, in seconds; +Inf is
 * implied. */
#define RELAY_METRICS_LATENCY_BUCKETS 15

struct relay_metrics {
	/* private: read through relay_metrics_render() */
	uint64_t deliveries[RELAY_METRICS_OUTCOME_COUNT]
	                   [RELAY_METRICS_TLS_COUNT][RELAY_METRICS_CLASS_MAX];
	uint64_t dane_results[RELAY_METRICS_DANE_RESULT_COUNT];
	uint64_t dns[RELAY_METRICS_QTYPE_COUNT][RELAY_METRICS_DNSSEC_COUNT];
	uint64_t handshakes[RELAY_METRICS_HANDSHAKE_COUNT];
	uint64_t reuses;
	uint64_t routing[RELAY_METRICS_ROUTING_KINDS + 1]; /* + "other" */
	char routing_kind[RELAY_METRICS_ROUTING_KINDS][RELAY_METRICS_KIND_MAX];
	size_t nrouting_kinds;
	/* Non-cumulative counts per bucket, [RELAY_METRICS_LATENCY_BUCKETS]
	 * for +Inf; the sum in microseconds (exact, no float drift). */
	uint64_t latency[RELAY_METRICS_LATENCY_BUCKETS + 1];
	uint64_t latency_sum_us;
	uint64_t latency_count;
	/* Failure class names by index (borrowed, static strings). */
	const char *const *class_names;
	size_t nclass;
};

/* What the caller reads at render time. */
struct relay_metrics_gauges {
	uint64_t queue_active;   /* due now or being delivered */
	uint64_t queue_deferred; /* waiting for a retry */
	uint64_t queue_hold;     /* on hold */
	double oldest_age_s;     /* age of the oldest queued message, 0 */
	bool selftest_ok;        /* the last DNSSEC self-test passed */
	/* Wall time of the last passing self-test (seconds since the epoch),
	 * 0 when none passed yet. */
	double selftest_last_success_s;
};

/*
 * Zeroes m. class_names[0..nclass) (borrowed, must outlive m) name the
 * failure classes by index; index 0 is "no failure" and its name may be ""
 * (rendered as "none"). nclass is capped at RELAY_METRICS_CLASS_MAX.
 */
void relay_metrics_init(struct relay_metrics *m, const char *const *class_names,
    size_t nclass);

/*
 * One recipient attempt, as its delivery line says: outcome, tls (the
 * tls= value: "none", "may", "encrypt", "verified", "dane-ee", "dane-ta",
 * "sts-enforce", "sts-testing";
 * NULL or "" mean "none") and failure class index (0: none). m may be
 * NULL (nothing is counted), for every function below too.
 */
void relay_metrics_delivery(struct relay_metrics *m,
    enum relay_metrics_outcome outcome, const char *tls, unsigned fail_class);

/* Accept-to-delivered time of a recipient that was sent. */
void relay_metrics_latency(struct relay_metrics *m, uint64_t micros);

/*
 * One DANE/TLS result: an RFC 8460 4.3 result type
 * ("certificate-host-mismatch", ...) or "success". A string outside that
 * table is not counted (a unit test keeps the class mapping inside it).
 */
void relay_metrics_dane_result(struct relay_metrics *m, const char *result);

/* Whether result is one of the result types counted above. */
bool relay_metrics_dane_result_known(const char *result);

/* One DNS answer (or timeout) for qtype with its DNSSEC status. */
void relay_metrics_dns(struct relay_metrics *m, uint16_t qtype,
    enum relay_metrics_dnssec status);

void relay_metrics_tls_handshake(struct relay_metrics *m,
    enum relay_metrics_handshake result);

/* A parked outbound connection carried another message. */
void relay_metrics_connection_reuse(struct relay_metrics *m);

/*
 * A routing change of the given kind (NUL-terminated, copied, cut at
 * RELAY_METRICS_KIND_MAX - 1 bytes). The first RELAY_METRICS_ROUTING_KINDS
 * distinct kinds are counted apart, later ones as "other".
 */
void relay_metrics_routing_change(struct relay_metrics *m, const char *kind);

/*
 * Renders every family (HELP and TYPE lines, then samples) of m and g
 * into buf (size bytes, NUL-terminated when size > 0). Returns the length
 * of the whole text, like snprintf: when it is >= size the text was cut
 * and the caller renders again into a buffer of at least that length + 1.
 * Families whose labels come from a fixed small set show every value,
 * zeros included; the deliveries family shows only combinations seen.
 */
size_t relay_metrics_render(const struct relay_metrics *m,
    const struct relay_metrics_gauges *g, char *buf, size_t size);

/*
 * Writes s as a label value (exposition format 0.0.4: backslash, double
 * quote and line feed escaped as \\, \" and \n) into buf (size bytes,
 * NUL-terminated when size > 0). Returns the escaped length, like
 * snprintf.
 */
size_t relay_metrics_escape_label(const char *s, char *buf, size_t size);

#endif
