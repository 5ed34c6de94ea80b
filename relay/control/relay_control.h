#ifndef RELAY_CONTROL_H
#define RELAY_CONTROL_H
/*
 * relay_control: changing queued messages (hold, release, delete, retry)
 * without corrupting the queue, whether or not `serve` runs.
 *
 * Only the holder of the spool lock writes queue files (relay_queue.h).
 * So:
 *   - while `serve` runs, the CLI asks the daemon through a unix stream
 *     socket, spool_dir/control (mode 0600 inside the 0700 spool; the
 *     daemon also checks the peer's uid: its own or root). The daemon
 *     applies the change on its loop with relay_queue_load/update/remove,
 *     serialised with its own updates of the same message;
 *   - when no `serve` runs, the CLI takes the spool lock itself
 *     (relay_queue_open) and runs the very same code (the "engine" below)
 *     on a private loop, then closes the queue.
 *
 * A message that is being delivered (a scheduler job holds a copy of its
 * envelope and will write its outcome back) is not changed under the job:
 * the engine waits up to RELAY_CONTROL_BUSY_WAIT_MS for the job to end and
 * otherwise answers "busy" (retry answers "being delivered now", which is
 * what was asked). After a hold/release the engine checks that no job
 * started in the moment between its read and its write; if one did, it
 * waits for that job and applies the change again.
 *
 * Wire protocol (text lines ending in LF, at most RELAY_CONTROL_LINE_MAX
 * bytes):
 *   daemon:  "danerelay-control 1 pid=PID"            on connect
 *   client:  "hold|release|delete|retry ID [ID...]"  or "CMD --all"
 *            "report"                                 mail the report now
 *            "dns-flush [NAME]"                       fresh resolver context
 *                                                      (empty DNS cache; NAME
 *                                                      is only logged)
 *            "metrics"                                the Prometheus text
 *                                                      (one "ok - LINE" per
 *                                                      line of it)
 *            "tlsrpt-send DAY"                        send the TLS reports of
 *                                                      DAY (YYYY-MM-DD) now;
 *                                                      answered at once with
 *                                                      "ok - run N ..."
 *            "status"                                 "ok KEY VALUE" lines
 *                                                      (relay_control_status_pairs)
 *   daemon:  "ok ID TEXT" / "error ID TEXT" per message (ID "-" for an
 *            error of the whole request), then "end NOK NERR".
 * Several requests may follow on one connection; each is answered in
 * full before the next one is read.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "relay_clock.h"
#include "relay_config.h"
#include "relay_fail_class.h"
#include "relay_queue.h"

#define RELAY_CONTROL_WUR __attribute__((warn_unused_result))

/* File name of the socket inside spool_dir. */
#define RELAY_CONTROL_SOCKET "control"
/* Longest request or reply line, LF included. */
#define RELAY_CONTROL_LINE_MAX (256u * 1024)
/* How long a change waits for a delivery in flight to end. */
#define RELAY_CONTROL_BUSY_WAIT_MS 5000u
/* Changes applied at once (their fsyncs share group commits). */
#define RELAY_CONTROL_PARALLEL 32u

enum relay_control_cmd {
	RELAY_CONTROL_HOLD,    /* env->hold = true: not scheduled */
	RELAY_CONTROL_RELEASE, /* env->hold = false */
	RELAY_CONTROL_DELETE,  /* relay_queue_remove(), no DSN */
	RELAY_CONTROL_RETRY,   /* next attempt of open recipients: now */
};
/* "hold" ... (static string). */
const char *relay_control_cmd_name(enum relay_control_cmd cmd);
/* The command named word (NUL-terminated). Returns 0 or -1. */
int relay_control_cmd_parse(const char *word,
    enum relay_control_cmd *out) RELAY_CONTROL_WUR;

/* Result of one message. */
enum relay_control_status {
	RELAY_CONTROL_OK = 0,
	RELAY_CONTROL_ENOENT = -1, /* no such message */
	RELAY_CONTROL_EBUSY = -2,  /* being delivered: try again */
	RELAY_CONTROL_EIO = -3,    /* queue error (text says which) */
	RELAY_CONTROL_EINVAL = -4, /* not a queue id / bad request */
	RELAY_CONTROL_ENOMEM = -5,
};

/*
 * spool_dir/control into buf (size bytes). Returns 0, or -1 when it does
 * not fit or is longer than a unix socket path may be (108 bytes).
 */
int relay_control_path(const char *spool_dir, char *buf,
    size_t size) RELAY_CONTROL_WUR;

/* ---- The engine: applies one command to a queue the caller has open ---- */

struct relay_control_hooks {
	/* Whether a delivery of id is in flight (NULL: never). */
	bool (*is_active)(void *arg, const char *id);
	/* Called after a release or retry took effect (NULL: nothing). */
	void (*kick)(void *arg);
	void *arg;
	/* How long to wait for a delivery in flight (0: the default
	 * RELAY_CONTROL_BUSY_WAIT_MS; tests use less). */
	uint64_t busy_wait_ms;
	/* Whose monotonic time measures that wait (borrowed; NULL:
	 * relay_clock_system()). */
	const struct relay_clock *clock;
};

/* One message done: status 0 or a negative relay_control_status; text
 * (borrowed for the call) says what happened ("held", "no such message",
 * ...). */
typedef void (*relay_control_result_fn)(void *arg, const char *id, int status,
    const char *text);
/* Every message done (nok + nerr results were reported). */
typedef void (*relay_control_done_fn)(void *arg, size_t nok, size_t nerr);

struct relay_control_exec;

/*
 * Applies cmd to the messages ids[0..nids) (borrowed for the call; each a
 * syntactically valid queue id), or with all to every message it concerns
 * (hold: those not held; release: held ones; retry: those with open
 * recipients; delete: all), on queue q (borrowed; must stay open until
 * done ran or the exec was cancelled and its in-flight operations ended).
 * result runs once per message, done once at the end, both on the loop and
 * never inside this call. hooks is copied.
 * Returns 0 and *out (optional; valid until done returns),
 * RELAY_CONTROL_EBUSY with all while serve is still loading the queue
 * (relay_queue_loading), or RELAY_CONTROL_ENOMEM (no callback runs). A
 * named message not yet loaded is waited for like one being delivered.
 */
int relay_control_exec(uv_loop_t *loop, struct relay_queue *q,
    const struct relay_control_hooks *hooks, enum relay_control_cmd cmd,
    const char *const *ids, size_t nids, bool all,
    relay_control_result_fn result, relay_control_done_fn done, void *arg,
    struct relay_control_exec **out) RELAY_CONTROL_WUR;

/*
 * No further callback of x runs. Changes already handed to the queue
 * complete; x frees itself when they have.
 */
void relay_control_exec_cancel(struct relay_control_exec *x);

/* Text for a relay_control_status. */
const char *relay_control_strerror(int status);

/* ---- `danerelay status` (relay_control_status.c) ---- */

/*
 * What the daemon says about itself (the status hook fills it; control
 * knows neither the scheduler nor the listeners). Times are wall time in
 * microseconds since the epoch, 0 when unknown.
 */
struct relay_control_daemon_info {
	uint64_t started_us;        /* serve started (wall) */
	uint64_t uptime_us;         /* monotonic time since then */
	const char *selftest_state; /* relay_dns_validation_name(): "unknown",
	                               "ok", "failed" (static) */
	bool selftest_ran;          /* a self-test has finished */
	bool selftest_ok;           /* ... and its result */
	char selftest_why[256];     /* ... and its reason */
	uint64_t selftest_us;       /* ... and when (wall) */
	size_t deliveries;          /* message jobs in flight */
	size_t destinations;        /* destination jobs in flight */
	size_t connections_out;     /* outbound sessions working for a job */
	size_t connections_in;      /* inbound SMTP sessions */
	size_t connection_cache;    /* idle verified outbound connections */
};

/* The queue as `status` counts it: one pass over the envelopes. Queue
 * names as relay_report_queue_of(); by_class counts deferred recipients
 * (status DEFERRED) by their failure class (enum relay_fail_class). */
struct relay_control_queue_counts {
	uint64_t now_us; /* wall, set by the caller before adding */
	uint64_t messages, active, deferred, hold;
	uint64_t recipients;          /* not yet final */
	uint64_t deferred_recipients; /* status DEFERRED */
	uint64_t by_class[RELAY_FAIL_CLASS_COUNT];
	struct relay_queue_scan_counts unreadable;
};

/* Adds one envelope (borrowed for the call) to c. */
void relay_control_counts_add(struct relay_control_queue_counts *c,
    const struct relay_queue_envelope *env);

/*
 * The status reply as "KEY VALUE" pairs, in a fixed order: line(arg, key,
 * value) once per pair (both borrowed for the call). Keys: pid, version,
 * started, uptime_s, dns_selftest.state, dns_selftest.last_result,
 * dns_selftest.last_time, dns_selftest.why, deliveries.messages,
 * deliveries.destinations, connections.outbound, connections.inbound,
 * connection_cache, queue.messages, queue.active, queue.deferred,
 * queue.hold, queue.recipients, queue.deferred_recipients, then
 * queue.class.NAME for every class with a count ("none" for deferred
 * recipients without a class), queue.unparsable, queue.corrupt, then
 * policy_exception lines (relay_control_policy_exceptions()). Times are
 * epoch seconds.
 */
typedef void (
    *relay_control_pair_fn)(void *arg, const char *key, const char *value);
void relay_control_status_pairs(long pid,
    const struct relay_control_daemon_info *d,
    const struct relay_control_queue_counts *q, relay_control_pair_fn line,
    void *arg);

/*
 * The time-boxed tls_policy_file entries (until=) that still apply at wall
 * time now_us, one "policy_exception" pair each, in the file's domain
 * order: "DOMAIN LEVEL UNTIL DAYS_LEFT FILE:LINE REASON" (REASON may be
 * empty and hold spaces; DAYS_LEFT is 0 on the last day). Shared by
 * `status` (through the daemon) and `report` (the CLI's configuration).
 */
void relay_control_policy_exceptions(const struct relay_config *cfg,
    uint64_t now_us, relay_control_pair_fn line, void *arg);

/* ---- The server side (wired by daemon/) ---- */

/*
 * What the control server borrows from its owner, who keeps it alive until
 * the server has freed itself (see relay_control_stop). The hooks are how
 * control reaches its siblings without knowing them (STYLE.md section 11).
 */
struct relay_control_ctx {
	uv_loop_t *loop;
	/* Where control reads time (borrowed; relay_clock.h): monotonic for
	 * the wait on a delivery in flight, wall for the report's date and
	 * ages. The daemon's is relay_clock_system(). */
	const struct relay_clock *clock;
	/* The configuration in effect (report_recipient, report_interval,
	 * myhostname); a reload may replace its contents between two loop
	 * turns. */
	const struct relay_config *cfg;
	struct relay_queue *queue;
	/* For the engine (relay_control_hooks): a delivery of id in flight?
	 * Changes took effect: look at the queue again. Either may be NULL. */
	bool (*is_active)(void *arg, const char *id);
	void (*kick)(void *arg);
	/* Queue a locally made message (the report mail) with the given
	 * sender for one recipient; content is copied. Returns 0 or a
	 * relay_queue_err. Required. */
	int (*submit)(void *arg, const char *sender, const char *rcpt,
	    unsigned notify, const uint8_t *content, size_t len);
	/* `dns-flush [NAME]`: replace the resolver's cache; name (may be
	 * NULL) is only logged. Writes one line for the operator into msg.
	 * Returns 0 or -1. Required. */
	int (*dns_flush)(void *arg, const char *name, char *msg, size_t msglen);
	/* `metrics`: the daemon's counters in the Prometheus text format
	 * (relay_metrics_render()): a malloc'd NUL-terminated text the
	 * caller frees, its length in *len; NULL when out of memory. May be
	 * NULL (the request is then answered with an error). */
	char *(*metrics)(void *arg, size_t *len);
	/* `tlsrpt-send DAY`: start sending the TLS reports of day; writes
	 * one line into msg. Returns the run number (> 0) or -1. May be NULL
	 * (TLS reporting is off). */
	long (
	    *tlsrpt_send)(void *arg, const char *day, char *msg, size_t msglen);
	/* `status`: fill *out (zeroed by the caller). May be NULL: the
	 * reply then has only the queue's part. */
	void (*status)(void *arg, struct relay_control_daemon_info *out);
	void *arg;
};

struct relay_control;

/*
 * Listens on spool_dir/control (removing a stale socket: we hold the spool
 * lock, so no other daemon uses it) and starts the report timer
 * (report_recipient, report_interval: the text report is mailed through
 * the queue when something is deferred). ctx is copied (what it points to
 * is borrowed). Sets *out. A socket that cannot be created is logged and
 * leaves only the report timer (the CLI then says so). Returns 0 or a
 * negative relay_control_status (nothing started).
 */
int relay_control_start(const struct relay_control_ctx *ctx,
    struct relay_control **out) RELAY_CONTROL_WUR;

/*
 * Stops accepting, drops clients, cancels changes not yet handed to the
 * queue, removes the socket file. The object frees itself once its handles
 * are closed and queue operations in flight have ended (before the queue's
 * close callback runs). NULL-safe; c must not be used afterwards.
 */
void relay_control_stop(struct relay_control *c);

/* ---- The client side (CLI; blocking I/O, not for the serve loop) ---- */

struct relay_control_client {
	/* read-only */
	int fd;
	char daemon[128]; /* greeting after "danerelay-control 1 " */
	/* private */
	char *buf;
	size_t len;
};

/*
 * Connects to spool_dir/control and reads the greeting.
 * Returns 0, RELAY_CONTROL_ENOENT when no daemon listens there (no
 * socket, or connection refused: a stale socket), or RELAY_CONTROL_EIO
 * with one line in err.
 */
int relay_control_client_connect(struct relay_control_client *c,
    const char *spool_dir, char *err, size_t errlen) RELAY_CONTROL_WUR;

/*
 * Sends one command for ids (or all) and calls result per reply line
 * (id, status 0 / RELAY_CONTROL_EIO for "error", text), splitting long id
 * lists over several requests. cmd_word is "hold", ..., or "report".
 * Returns 0 when the daemon answered every request, else
 * RELAY_CONTROL_EIO with err set (connection lost, timeout, bad reply).
 */
int relay_control_client_run(struct relay_control_client *c,
    const char *cmd_word, const char *const *ids, size_t nids, bool all,
    relay_control_result_fn result, void *arg, char *err,
    size_t errlen) RELAY_CONTROL_WUR;

void relay_control_client_close(struct relay_control_client *c);

#endif
