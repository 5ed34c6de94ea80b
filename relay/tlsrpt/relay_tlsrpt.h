#ifndef RELAY_TLSRPT_H
#define RELAY_TLSRPT_H
/*
 * relay_tlsrpt: SMTP TLS Reporting (RFC 8460) as the sending side.
 *
 *   relay_tlsrpt_table.c   the counts of one UTC day: rows keyed by policy
 *                          and failure detail, the journal line format,
 *                          reading a day's journal file
 *   relay_tlsrpt_report.c  the RFC 8460 4.4 JSON report of a domain and
 *                          day, its report-id, gzip, the 5.3 mail
 *   relay_tlsrpt_record.c  the _smtp._tls TXT record (RFC 8460 3)
 *   relay_tlsrpt_store.c   the daemon's live counts: journal appended on
 *                          the thread pool, fsync'd at most once a second
 *   relay_tlsrpt_send.c    the daily sending: TXT lookup, mailto through
 *                          the queue, https POST (libcurl), sent state
 *
 * On disk, under spool_dir/tlsrpt/ (RELAY_TLSRPT_DIR):
 *   YYYY-MM-DD.log   the journal of that UTC day: one line per row and
 *                    count added (relay_tlsrpt_table_line()); the counts
 *                    are the sums of its lines. Appended while the day
 *                    runs, rewritten with one line per row when it grows
 *                    past RELAY_TLSRPT_JOURNAL_COMPACT and after the day.
 *                    An unterminated last line (a crash in mid-write) is
 *                    ignored. Days older than RELAY_TLSRPT_KEEP_DAYS go.
 *   sent-YYYY-MM-DD  what the sender did for that day's reports.
 * Both are read by `danerelay tlsrpt show|send` without the daemon.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <uv.h>

#include "relay_clock.h"
#include "relay_config.h"

#define RELAY_TLSRPT_WUR __attribute__((warn_unused_result))

/* Folder inside spool_dir. */
#define RELAY_TLSRPT_DIR "tlsrpt"
/* Rows (distinct policy x failure detail) kept per day: a bound on memory
 * and on the journal; sessions of a new row beyond it are not counted
 * (logged once a day). */
#define RELAY_TLSRPT_ROWS_MAX 20000u
/* Longest journal line, LF included (a row's fields are bounded below). */
#define RELAY_TLSRPT_LINE_MAX 4096u
/* Longest policy-string (TLSA records joined by '|'). */
#define RELAY_TLSRPT_POLICY_MAX 2048u
/* Journal size after which the live day's file is rewritten compactly. */
#define RELAY_TLSRPT_JOURNAL_COMPACT (1024u * 1024)
/* Day files kept (for `tlsrpt show --date` and late sending). */
#define RELAY_TLSRPT_KEEP_DAYS 8
/* "YYYY-MM-DD" plus NUL. */
#define RELAY_TLSRPT_DAY_SIZE 11

enum relay_tlsrpt_err {
	RELAY_TLSRPT_OK = 0,
	RELAY_TLSRPT_ENOMEM = -1,
	RELAY_TLSRPT_EIO = -2,     /* a file could not be read or written */
	RELAY_TLSRPT_EFORMAT = -3, /* a malformed journal line or record */
	RELAY_TLSRPT_EFULL = -4,   /* RELAY_TLSRPT_ROWS_MAX reached */
	RELAY_TLSRPT_EINVAL = -5,  /* a field with a forbidden byte */
};
const char *relay_tlsrpt_strerror(int err);

/* RFC 8460 4.4 policy-type. `sts` is kept for MTA-STS (RFC 8461), which
 * the relay does not apply yet: nothing produces it today. */
enum relay_tlsrpt_policy_type {
	RELAY_TLSRPT_POLICY_TLSA = 0,
	RELAY_TLSRPT_POLICY_STS,
	RELAY_TLSRPT_POLICY_NONE, /* "no-policy-found" */
};
/* "tlsa", "sts", "no-policy-found" (static). */
const char *relay_tlsrpt_policy_type_name(enum relay_tlsrpt_policy_type t);

/*
 * One TLS session attempt (one connection to one MX address) as the
 * report counts it. Every string is borrowed for the call; NULL means "".
 * Strings must not hold bytes below 0x20 or '|' (policy), else
 * RELAY_TLSRPT_EINVAL.
 */
struct relay_tlsrpt_session {
	const char *domain; /* policy-domain, A-labels, lower case */
	enum relay_tlsrpt_policy_type type;
	/* TLSA: the records applied, presentation form ("3 1 1 ab..."),
	 * joined by '|'; the MX host they belong to (mx-host). */
	const char *policy;
	const char *policy_mx;
	/* NULL or "": the session succeeded. Else the RFC 8460 4.3
	 * result-type and an optional failure-reason-code. */
	const char *result;
	const char *reason_code;
	const char *sending_ip;
	const char *receiving_mx;
	const char *receiving_ip;
};

/* ------------------------------------------------------------- the table */

struct relay_tlsrpt_row {
	/* read-only */
	char *day, *domain, *policy, *policy_mx, *result, *reason_code,
	    *sending_ip, *receiving_mx, *receiving_ip;
	enum relay_tlsrpt_policy_type type;
	uint64_t count;
	/* private: counted but not yet in the journal (store) */
	uint64_t unflushed;
	size_t hnext;
};

/* The counts of any number of days; rows in the order first seen. */
struct relay_tlsrpt_table {
	/* read-only */
	struct relay_tlsrpt_row *rows;
	size_t nrows;
	/* private */
	size_t cap;
	size_t *hash; /* bucket -> row index + 1 */
	size_t nbuckets;
};

void relay_tlsrpt_table_init(struct relay_tlsrpt_table *t);
void relay_tlsrpt_table_free(struct relay_tlsrpt_table *t);

/* The session a row counts (its fields borrowed from r). */
struct relay_tlsrpt_session relay_tlsrpt_row_session(
    const struct relay_tlsrpt_row *r);

/*
 * Adds n sessions like s on day to t (a new row or an existing one).
 * Sets *row (optional) to the row. Returns 0, RELAY_TLSRPT_EINVAL,
 * RELAY_TLSRPT_EFULL (a new row beyond RELAY_TLSRPT_ROWS_MAX) or ENOMEM.
 */
int relay_tlsrpt_table_add(struct relay_tlsrpt_table *t, const char *day,
    const struct relay_tlsrpt_session *s, uint64_t n,
    struct relay_tlsrpt_row **row) RELAY_TLSRPT_WUR;

/*
 * The journal line of row r with the given count (LF-terminated) into buf.
 * Returns its length, or 0 when it does not fit.
 */
size_t relay_tlsrpt_table_line(const struct relay_tlsrpt_row *r, uint64_t count,
    char *buf, size_t size);

/*
 * Adds every line of journal text p/len to t. A last line without LF (a
 * write cut short by a crash) is ignored and its offset put in *good_len
 * (optional; len when every line is whole). Returns 0, or
 * RELAY_TLSRPT_EFORMAT naming the line in *bad_line (optional, 1-based)
 * for a whole line that does not parse, or EFULL/ENOMEM.
 */
int relay_tlsrpt_table_load(struct relay_tlsrpt_table *t, const char *p,
    size_t len, size_t *good_len, size_t *bad_line) RELAY_TLSRPT_WUR;

/*
 * Reads the journal of day from dir (spool_dir/tlsrpt) into t. A missing
 * day file is an empty day (0); a missing or unreadable dir is
 * RELAY_TLSRPT_EIO. err gets one line on any error.
 */
int relay_tlsrpt_table_read_day(struct relay_tlsrpt_table *t, const char *dir,
    const char *day, char *err, size_t errlen) RELAY_TLSRPT_WUR;

/* spool_dir/tlsrpt into buf. Returns 0 or -1 (does not fit). */
int relay_tlsrpt_dir(const char *spool_dir, char *buf,
    size_t size) RELAY_TLSRPT_WUR;

/* The UTC day of t as "YYYY-MM-DD". */
void relay_tlsrpt_day(time_t t, char out[RELAY_TLSRPT_DAY_SIZE]);
/* Whether s is a valid "YYYY-MM-DD"; sets *start (optional) to its
 * 00:00:00 UTC. */
bool relay_tlsrpt_day_parse(const char *s, time_t *start);

/* ------------------------------------------------------------ the report */

/* Who makes the report (RFC 8460 4.4). Strings borrowed. */
struct relay_tlsrpt_meta {
	const char *organization; /* organization-name */
	const char *contact;      /* contact-info */
	const char *submitter;    /* report-id's domain, TLS-Report-Submitter */
};

/* The meta of cfg: tlsrpt_organization, tlsrpt_contact, tlsrpt_submitter,
 * each defaulting from myhostname. Borrowed from cfg. */
struct relay_tlsrpt_meta
relay_tlsrpt_meta_from_config(const struct relay_config *cfg, char *contact_buf,
    size_t contact_size);

/*
 * The report-id of domain's report for day (RFC 8460 4.4): unique per
 * day, domain and submitter, and the same every time it is made, so that
 * a report sent twice (a retry) is recognised. Also a valid msg-id
 * right-hand side, as 5.3's Subject wants it. Returns 0 or -1 (too long).
 */
int relay_tlsrpt_report_id(const char *day, const char *domain,
    const char *submitter, char *buf, size_t size) RELAY_TLSRPT_WUR;

/*
 * Writes the RFC 8460 4.4 JSON report of domain for day, from the rows of
 * t for that day and domain, to out (compact, no trailing newline).
 * Policies and failure details come in a stable order. Returns 0, -1 on a
 * write error, or RELAY_TLSRPT_EINVAL when t has no row for them.
 */
int relay_tlsrpt_report_write(const struct relay_tlsrpt_table *t,
    const char *day, const char *domain, const struct relay_tlsrpt_meta *meta,
    FILE *out) RELAY_TLSRPT_WUR;

/* The same into a malloc'd buffer (*out, *outlen; caller frees). */
int relay_tlsrpt_report_json(const struct relay_tlsrpt_table *t,
    const char *day, const char *domain, const struct relay_tlsrpt_meta *meta,
    char **out, size_t *outlen) RELAY_TLSRPT_WUR;

/*
 * The sorted, distinct policy domains of t on day into *out (malloc'd
 * array of borrowed pointers into t; caller frees the array).
 */
int relay_tlsrpt_domains(const struct relay_tlsrpt_table *t, const char *day,
    const char ***out, size_t *n) RELAY_TLSRPT_WUR;

/* gzip (RFC 1952) of p/len into a malloc'd *out. Returns 0 or ENOMEM. */
int relay_tlsrpt_gzip(const void *p, size_t len, uint8_t **out,
    size_t *outlen) RELAY_TLSRPT_WUR;

/*
 * The RFC 8460 5.3 mail of a report: multipart/report;
 * report-type="tlsrpt" with a text part and the gzip'ed JSON as an
 * application/tlsrpt+gzip attachment (base64) named per 5.1. from and
 * to are addresses; now gives the Date header; boundary_seed makes the
 * MIME boundary. Returns 0 and a malloc'd CRLF message in *out, or -1.
 */
int relay_tlsrpt_mail(const struct relay_tlsrpt_meta *meta, const char *day,
    const char *domain, const char *from, const char *to, const uint8_t *gz,
    size_t gzlen, time_t now, uint64_t boundary_seed, char **out,
    size_t *outlen) RELAY_TLSRPT_WUR;

/* ------------------------------------------------------------ the record */

#define RELAY_TLSRPT_RUA_MAX 8

enum relay_tlsrpt_rua_kind {
	RELAY_TLSRPT_RUA_MAILTO,
	RELAY_TLSRPT_RUA_HTTPS,
};

struct relay_tlsrpt_rua {
	enum relay_tlsrpt_rua_kind kind;
	/* mailto: the address, %-decoded; https: the whole URI. */
	char uri[512];
};

struct relay_tlsrpt_record {
	size_t nrua;
	struct relay_tlsrpt_rua rua[RELAY_TLSRPT_RUA_MAX];
};

/*
 * Parses one TXT record's text (its strings joined) as an RFC 8460 3
 * record: "v=TLSRPTv1" then ";"-separated fields, one of them rua= with
 * comma-separated URIs. URIs of other schemes are skipped; a record
 * without a mailto: or https: URI is an error. Returns 0,
 * RELAY_TLSRPT_EFORMAT (not a TLSRPT record or malformed).
 */
int relay_tlsrpt_record_parse(const uint8_t *p, size_t len,
    struct relay_tlsrpt_record *out) RELAY_TLSRPT_WUR;

/* Whether p/len begins like a TLSRPT record ("v=TLSRPTv1" then ';',
 * white space or the end), the RFC 8460 3 filter over all TXT records. */
bool relay_tlsrpt_record_is_tlsrpt(const uint8_t *p, size_t len);

/* ------------------------------------------------- the store (daemon) */

struct relay_tlsrpt_store;

/*
 * Opens the counts in spool_dir/tlsrpt (made if missing) for the daemon:
 * reads today's journal (day from clock's wall time), cutting off a torn
 * last line, and starts the one-second flush timer on loop. Returns 0 and
 * *out, or an error with one line in err.
 */
int relay_tlsrpt_store_open(uv_loop_t *loop, const struct relay_clock *clock,
    const char *spool_dir, struct relay_tlsrpt_store **out, char *err,
    size_t errlen) RELAY_TLSRPT_WUR;

/* Counts one session now (today, UTC). Never blocks: the journal line is
 * written by the next flush, within a second. */
void relay_tlsrpt_store_note(struct relay_tlsrpt_store *st,
    const struct relay_tlsrpt_session *s);

/* The journal size past which the running day's file is rewritten
 * (default RELAY_TLSRPT_JOURNAL_COMPACT; tests use less). */
void relay_tlsrpt_store_set_compact(struct relay_tlsrpt_store *st,
    uint64_t bytes);

/* Flushes what is counted, waits for the write, frees the store, then
 * calls cb(arg) (may be NULL) from the loop. */
void relay_tlsrpt_store_close(struct relay_tlsrpt_store *st,
    void (*cb)(void *arg), void *arg);

/* -------------------------------------------------- sending (daemon) */

struct relay_dns;

struct relay_tlsrpt_send_ctx {
	uv_loop_t *loop;
	const struct relay_clock *clock;
	const struct relay_config *cfg; /* contents may change on reload */
	struct relay_dns *const *dns;
	/* Queue a message (see relay_submit_local). Returns 0 or an error. */
	int (*submit)(void *arg, const char *sender, const char *rcpt,
	    const uint8_t *content, size_t len);
	void *arg;
};

struct relay_tlsrpt_sender;

/* Starts the daily timer (after each UTC midnight plus a random delay,
 * RFC 8460 4.1) and a catch-up run for yesterday if it was not done. */
int relay_tlsrpt_sender_start(const struct relay_tlsrpt_send_ctx *ctx,
    struct relay_tlsrpt_sender **out) RELAY_TLSRPT_WUR;

/*
 * Sends the reports of day now (an operator's `tlsrpt send`), whatever
 * was sent before. Writes one line into msg. Returns the run number (>0)
 * that the sent state file will name when the run is over, or -1 (busy,
 * bad day).
 */
long relay_tlsrpt_sender_run(struct relay_tlsrpt_sender *s, const char *day,
    char *msg, size_t msglen);

/* Stops timers and lookups; frees itself once work in flight ended. */
void relay_tlsrpt_sender_stop(struct relay_tlsrpt_sender *s);

#endif
