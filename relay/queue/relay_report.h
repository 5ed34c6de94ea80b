#ifndef RELAY_REPORT_H
#define RELAY_REPORT_H
/*
 * relay_report: operator views of the queue, as pure functions over
 * envelopes (no I/O but the FILE * they print to, no clock: `now_us` is
 * passed in). Used by the CLI (`queue list`, `queue show`, `report`) and by
 * `serve` for the periodic report mail (report_recipient/report_interval).
 *
 * Definitions shared by every view:
 *   queue_name  "hold" when env->hold; "deferred" when some open
 *               recipient was tried and waits for a next attempt in the
 *               future; "active" otherwise (new, or due now).
 *   domain      of a recipient: the text after its last '@', lower-cased
 *               ("" when there is none).
 *   deferred recipient (report): status DEFERRED (tried, failed
 *               temporarily, will be retried), held messages included.
 *   age buckets qshape's: a message younger than 5 minutes counts under
 *               "5m", 5 to 10 minutes under "10m", ... 640 to 1280
 *               minutes under "1280m", older under "1280m+".
 *
 * Text output is for terminals and mail: untrusted strings (replies,
 * reasons, addresses, header fields) are printed on one line with control
 * bytes replaced by '?' (and, in ASCII mode, non-ASCII bytes too). JSON
 * output goes through relay_json (always valid UTF-8).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "relay_config.h"
#include "relay_fail_class.h"
#include "relay_queue.h"

#define RELAY_REPORT_WUR __attribute__((warn_unused_result))

/* ---- small shared pieces ---- */

enum relay_report_queue {
	RELAY_REPORT_QUEUE_ACTIVE,
	RELAY_REPORT_QUEUE_DEFERRED,
	RELAY_REPORT_QUEUE_HOLD,
};
/* "active" | "deferred" | "hold". */
const char *relay_report_queue_name(enum relay_report_queue q);
enum relay_report_queue
relay_report_queue_of(const struct relay_queue_envelope *env, uint64_t now_us);

/*
 * The domain of address (borrowed) into buf (size bytes, lower case,
 * NUL-terminated, cut to fit). Returns buf.
 */
char *relay_report_domain(const char *address, char *buf, size_t size);

/*
 * The one-line operator hint for a failure class (static string), e.g.
 * tlsa-mismatch: "the server's key does not match its TLSA records; ...".
 * NONE, UNKNOWN and classes without a hint of their own get one generic
 * hint; never NULL.
 */
const char *relay_report_fail_class_hint(enum relay_fail_class c);
/* The same for a class as spelled in an envelope (relay_fail_class_parse():
 * NULL, "" and unknown spellings get the generic hint). */
const char *relay_report_class_hint(const char *failure_class);

/* ---- queue list ---- */

/*
 * Recipient filters of `queue list` (all optional, NULL/0 = not set).
 * A message is listed when it is older than older_than_us (if set) and at
 * least one recipient matches domain (exact, case-insensitive; a leading
 * '.' matches every subdomain) and failure_class (exact); only the
 * matching recipients are printed.
 */
struct relay_report_filter {
	const char *domain;
	const char *failure_class;
	uint64_t older_than_us;
};
bool relay_report_rcpt_match(const struct relay_report_filter *f,
    const struct relay_queue_rcpt *r);
bool relay_report_env_match(const struct relay_report_filter *f,
    const struct relay_queue_envelope *env, uint64_t now_us);

/* Totals for the mailq footer; unreadable is what the scan could not
 * show (relay_queue_scan()'s counts). */
struct relay_report_list_totals {
	uint64_t bytes;
	uint64_t messages;
	struct relay_queue_scan_counts unreadable;
};

/*
 * mailq-style text: the header line (print once, before the first
 * message), one block per message (queue id with '!' for hold and '*' for
 * active, size, arrival in local time, sender or MAILER-DAEMON, then per
 * recipient its address and "(status dsn class, N attempts: reason)"),
 * and the footer "-- N Kbytes in M Requests." or "Mail queue is empty"
 * (only when nothing at all was found), followed, when the scan met
 * envelopes it could not parse or files in corrupt/, by
 * "-- N unparsable envelopes in queue/, M files in corrupt/.".
 * Each returns 0 or -1 on a write error. list_text skips messages the
 * filter rejects (totals unchanged).
 */
int relay_report_list_header(FILE *out) RELAY_REPORT_WUR;
int relay_report_list_text(FILE *out, const struct relay_queue_envelope *env,
    const struct relay_report_filter *f, uint64_t now_us,
    struct relay_report_list_totals *totals) RELAY_REPORT_WUR;
int relay_report_list_footer(FILE *out,
    const struct relay_report_list_totals *totals) RELAY_REPORT_WUR;

/*
 * One JSON Lines object for env (with a trailing newline), or nothing when
 * the filter rejects it. Fields: queue_id, queue_name, arrival_time
 * (epoch seconds), message_size, sender, hold, recipients [{address,
 * status, dsn, reason, failure_class, attempts, next_attempt (epoch
 * seconds, 0 = as soon as possible), orcpt, notify, delay_warned}].
 * Returns 0 or -1 on a write error.
 */
int relay_report_list_json(FILE *out, const struct relay_queue_envelope *env,
    const struct relay_report_filter *f, uint64_t now_us) RELAY_REPORT_WUR;

/* ---- queue show ---- */

/* A header field value as a slice of the content (folded, raw). */
struct relay_report_slice {
	const uint8_t *p; /* NULL when the field is absent */
	size_t len;
};

/* The header summary of a message: first occurrence of each field. */
struct relay_report_headers {
	struct relay_report_slice from, to, subject, message_id, date;
};

/*
 * Finds the header fields above in the header of the message p/len (up to
 * the first empty line, or len). Never allocates; the slices point into p
 * (value after the colon, leading white space skipped, continuation lines
 * included up to the field's last CRLF/LF excluded). Always succeeds.
 */
void relay_report_headers_parse(const uint8_t *p, size_t len,
    struct relay_report_headers *h);

/*
 * `queue show`: envelope, header summary (h may be NULL when the content
 * could not be read), per recipient its state and every attempt record.
 * Returns 0 or -1 on a write error.
 */
int relay_report_show_text(FILE *out, const struct relay_queue_envelope *env,
    const struct relay_report_headers *h, uint64_t now_us) RELAY_REPORT_WUR;
/* The same as one JSON object (and a newline). */
int relay_report_show_json(FILE *out, const struct relay_queue_envelope *env,
    const struct relay_report_headers *h, uint64_t now_us) RELAY_REPORT_WUR;

/* ---- report: deferred deliveries by destination ---- */

#define RELAY_REPORT_BUCKETS 10
/* Bucket labels "5m" ... "1280m", "1280m+" (static strings). */
const char *relay_report_bucket_label(size_t i);
/* Bucket of a message of this age (microseconds). */
size_t relay_report_bucket_of(uint64_t age_us);

/* One failure class of one destination. */
struct relay_report_class {
	char *failure_class; /* owned; "" when none was recorded */
	uint64_t count[RELAY_REPORT_BUCKETS];
	uint64_t total;
};

/* One destination domain. All strings owned by the report. */
struct relay_report_dest {
	char *domain;
	uint64_t count[RELAY_REPORT_BUCKETS];
	uint64_t total;    /* deferred recipients */
	uint64_t messages; /* distinct messages */
	uint64_t held;     /* deferred recipients in held messages */
	struct relay_report_class *cls;
	size_t ncls;
	char oldest_id[RELAY_QUEUE_ID_SIZE];
	uint64_t oldest_arrival_us;
	/* The most recent attempt of any deferred recipient of the domain
	 * (latest.time_us == 0 when none was recorded: then only the
	 * recipient's dsn/failure_class/reason are filled in). */
	struct relay_queue_attempt latest;
	char latest_id[RELAY_QUEUE_ID_SIZE];
	char *latest_rcpt;
	/* private */
	char last_id_[RELAY_QUEUE_ID_SIZE];
};

/* The aggregate. Fields are read-only for callers. */
struct relay_report {
	/* read-only */
	uint64_t now_us;
	uint64_t total;    /* deferred recipients */
	uint64_t messages; /* messages with one or more */
	uint64_t count[RELAY_REPORT_BUCKETS];
	char oldest_id[RELAY_QUEUE_ID_SIZE];
	uint64_t oldest_arrival_us;
	struct relay_report_dest *dest; /* sorted by relay_report_sort() */
	size_t ndest;
	/* public: the caller passes it to relay_queue_scan(); the report
	 * shows what the scan could not read (their recipients are not in
	 * the counts above) */
	struct relay_queue_scan_counts unreadable;
	/* public, optional: the tls_policy_file entries (the configuration's
	 * array, borrowed; NULL/0 for none). The views list those with an
	 * until= date that still apply at now_us, with the days left. */
	const struct relay_tls_policy_entry *policy;
	size_t policy_count;
	/* private */
	size_t cap;
	bool failed; /* out of memory during add */
};

/* An empty report as of now_us. */
void relay_report_init(struct relay_report *r, uint64_t now_us);
/* Releases everything r owns (r itself is the caller's). */
void relay_report_free(struct relay_report *r);
/*
 * Adds the deferred recipients of env (borrowed for the call). Returns 0
 * or -1 when out of memory (the report is then incomplete and later adds
 * keep failing).
 */
int relay_report_add(struct relay_report *r,
    const struct relay_queue_envelope *env) RELAY_REPORT_WUR;
/* Orders destinations by total (descending) then name, and classes the
 * same way; call once after the last add. */
void relay_report_sort(struct relay_report *r);

/*
 * The report as text (ascii: non-ASCII bytes printed as '?', lines at most
 * 998 bytes, for mail) or as one JSON object and a newline; both say how
 * many envelopes did not parse and how many files are in corrupt/ (JSON
 * "unparsable_envelopes", "corrupt_files", always present). hostname
 * (borrowed, may be NULL) names the reporting host in the title.
 * Return 0 or -1 on a write error.
 */
int relay_report_print_text(FILE *out, const struct relay_report *r,
    const char *hostname, bool ascii) RELAY_REPORT_WUR;
int relay_report_print_json(FILE *out, const struct relay_report *r,
    const char *hostname) RELAY_REPORT_WUR;

/*
 * The members of that JSON object, written into the object open in j, for
 * a caller that adds members of its own (the CLI's routing changes, from
 * a layer the report does not use) before it closes the object.
 */
struct relay_json;
void relay_report_json_members(struct relay_json *j,
    const struct relay_report *r, const char *hostname);

#endif
