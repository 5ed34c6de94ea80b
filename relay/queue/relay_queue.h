#ifndef RELAY_QUEUE_H
#define RELAY_QUEUE_H
/*
 * relay_queue: the durable mail queue in spool_dir.
 *
 * The promise this module keeps: when a commit callback reports success,
 * the message content and its envelope are on disk (file data fsync'd,
 * directory entry fsync'd), so the SMTP server may answer 250 and a
 * kill -9 or power loss afterwards loses nothing. Recipient state changes
 * are crash-safe in the same way (new envelope file, fsync, rename, fsync
 * of the directory). Spool layout and envelope format: relay/QUEUE.md and
 * the comment at the top of relay_queue.c.
 *
 * Threads: all functions are called on the loop thread. Blocking work
 * (write, fsync, rename, unlink) runs in libuv's thread pool; callbacks
 * come back on the loop thread. As in libuv, a function that returns an
 * error never runs its callback; a function that returns 0 runs it exactly
 * once (except after relay_queue_writer_abort(), see there), and never
 * from inside the call itself.
 *
 * Exclusive ownership: relay_queue_open() takes an flock on spool_dir/lock;
 * only its holder creates, changes or removes messages. Readers without
 * the lock (CLI `queue list`, `queue show`) use relay_queue_scan() and
 * relay_queue_read(): every file they see is complete, because files enter
 * the queue directory only by rename.
 *
 * Times are microseconds since the epoch (uint64_t, _us suffix).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "relay_clock.h"

#define RELAY_QUEUE_WUR __attribute__((warn_unused_result))

enum relay_queue_err {
	RELAY_QUEUE_OK = 0,
	RELAY_QUEUE_ENOMEM = -1,
	RELAY_QUEUE_ENOSPC = -2,    /* disk full / quota: answer 452 4.3.1 */
	RELAY_QUEUE_EIO = -3,       /* other I/O error: answer 451 4.3.0 */
	RELAY_QUEUE_ELOCKED = -4,   /* another process holds the spool */
	RELAY_QUEUE_ENOENT = -5,    /* no such message */
	RELAY_QUEUE_ECORRUPT = -6,  /* envelope file does not parse */
	RELAY_QUEUE_EINVAL = -7,    /* bad argument (no recipient, CR/LF...) */
	RELAY_QUEUE_ECANCELED = -8, /* queue is closing */
	RELAY_QUEUE_EBUSY = -9,     /* writer already committing */
};
const char *relay_queue_strerror(int err);

/*
 * Queue id: 14 upper-case hex digits of a strictly increasing microsecond
 * clock (never below the largest id already in the spool), so ids are
 * unique per spool and sort by arrival as strings.
 */
#define RELAY_QUEUE_ID_LEN 14
#define RELAY_QUEUE_ID_SIZE (RELAY_QUEUE_ID_LEN + 1)
/* Whether p/len has the syntax of a queue id. */
bool relay_queue_id_valid(const char *p, size_t len);

/* Per-attempt details kept per recipient (most recent last). */
#define RELAY_QUEUE_ATTEMPTS_KEPT 10

/*
 * One delivery attempt for one recipient, for `queue show`. Every string
 * is owned by the envelope (set with relay_queue_set_str()), never NULL
 * after relay_queue_attempt_add() (empty when unknown).
 */
struct relay_queue_attempt {
	uint64_t time_us;
	char *mx_host;   /* MX host name tried */
	char *addr;      /* "192.0.2.1" or "2001:db8::1" */
	char *dnssec_mx; /* secure | insecure | bogus | ... */
	char *dnssec_addr;
	char *dnssec_tlsa;
	char *tlsa;          /* records seen, "3 1 1 ab..; 2 1 1 cd.." */
	char *tls;           /* dane-ee | dane-ta | encrypt | may | none */
	char *peer_spki;     /* SHA-256 of the peer's SPKI, hex */
	char *peer_names;    /* subject names of the peer certificate */
	char *matched;       /* matching TLSA record and depth, or mismatch */
	char *reply;         /* last SMTP reply (untrusted text) */
	char *dsn;           /* enhanced status, "4.7.5" */
	char *status;        /* sent | deferred | bounced */
	char *failure_class; /* tlsa-mismatch, dnssec-bogus, ... */
	char *reason;        /* one-line human reason */
	char *
	    policy; /* TLS level applied: dane | dane-only | may | encrypt | verify | none */
	char *
	    policy_entry; /* tls_policy_file "FILE:LINE" that chose it, "" for the global level */
	char *
	    routing_change; /* routing monitor kinds this attempt logged, "a,b" */
	char *
	    hint; /* tlsa-mismatch: the likely key-rollover mistake (tlsa_hint_name) */
	char *policy_reason; /* that entry's reason=, "" when none */
};

enum relay_queue_rcpt_status {
	RELAY_QUEUE_RCPT_PENDING,  /* not tried yet */
	RELAY_QUEUE_RCPT_DEFERRED, /* tried, will be retried */
	RELAY_QUEUE_RCPT_SENT,     /* final: delivered */
	RELAY_QUEUE_RCPT_BOUNCED,  /* final: failed */
};
const char *relay_queue_rcpt_status_name(enum relay_queue_rcpt_status s);

/* RFC 3461 4.1 NOTIFY, a bit mask; 0 means "not given". */
enum {
	RELAY_QUEUE_NOTIFY_NEVER = 1u << 0,
	RELAY_QUEUE_NOTIFY_SUCCESS = 1u << 1,
	RELAY_QUEUE_NOTIFY_FAILURE = 1u << 2,
	RELAY_QUEUE_NOTIFY_DELAY = 1u << 3,
};

struct relay_queue_rcpt {
	char *address;   /* mailbox without <>, as received */
	char *orcpt;     /* RFC 3461 ORCPT "rfc822;a@b" decoded, or "" */
	unsigned notify; /* RELAY_QUEUE_NOTIFY_* */
	enum relay_queue_rcpt_status status;
	char *dsn;                /* last enhanced status code, or "" */
	char *reason;             /* last reason, or "" */
	char *failure_class;      /* last failure class, or "" */
	uint32_t attempts;        /* attempts so far (not capped) */
	uint64_t next_attempt_us; /* 0: as soon as possible */
	bool delay_warned;        /* RFC 3464 "delayed" DSN sent */
	struct relay_queue_attempt *attempt; /* owned; most recent last */
	size_t attempt_count;                /* <= RELAY_QUEUE_ATTEMPTS_KEPT */
};

enum relay_queue_ret {
	RELAY_QUEUE_RET_NONE, /* RET not given */
	RELAY_QUEUE_RET_FULL,
	RELAY_QUEUE_RET_HDRS,
};

enum relay_queue_body {
	RELAY_QUEUE_BODY_7BIT,
	RELAY_QUEUE_BODY_8BITMIME,
	RELAY_QUEUE_BODY_BINARYMIME,
};

/* Who made the message. LOCAL: danerelay itself (a DSN, a delay warning,
 * a report; relay_submit_local()), routed to notify_relayhost when one is
 * set. Kept in the envelope so the routing is decided at each attempt. */
enum relay_queue_origin {
	RELAY_QUEUE_ORIGIN_SMTP,  /* received from a client */
	RELAY_QUEUE_ORIGIN_LOCAL, /* generated by danerelay */
};
/* "smtp" or "local" (static). */
const char *relay_queue_origin_name(enum relay_queue_origin o);

/*
 * The envelope of one message. A plain value: create with
 * relay_queue_envelope_new(), fill, free with relay_queue_envelope_free().
 * Every string is owned by the envelope and never NULL (""), set through
 * relay_queue_set_str() so ownership stays simple.
 */
struct relay_queue_envelope {
	char id[RELAY_QUEUE_ID_SIZE]; /* set by the queue at msg_begin */
	char *sender; /* reverse path without <>; "" = null sender */
	char *envid;  /* RFC 3461 ENVID (xtext decoded), or "" */
	enum relay_queue_ret ret;
	enum relay_queue_body body; /* BODY= as the client declared it */
	bool content_8bit; /* the content has octets above 127, found at
	                           receipt whatever BODY= said (RFC 6152) */
	bool smtputf8;
	bool requiretls;     /* MAIL ... REQUIRETLS (RFC 8689 4.1: the
	                           message is tagged for REQUIRETLS handling) */
	uint64_t arrival_us; /* set by the queue at msg_begin */
	uint64_t size;       /* content bytes; set by the queue at commit */
	char *client_addr;   /* "127.0.0.1" */
	char *client_name;   /* reverse name or "unknown" */
	char *helo;          /* EHLO/HELO argument */
	bool hold;           /* `queue hold`: not scheduled */
	bool delay_warned;   /* a delay DSN was sent for this message */
	enum relay_queue_origin origin;
	struct relay_queue_rcpt *rcpt; /* owned array */
	size_t rcpt_count;
};

/* A new empty envelope (all strings ""), or NULL when out of memory. */
struct relay_queue_envelope *relay_queue_envelope_new(void);
void relay_queue_envelope_free(struct relay_queue_envelope *env);
/* Deep copy, or NULL when out of memory. */
struct relay_queue_envelope *relay_queue_envelope_dup(
    const struct relay_queue_envelope *env);
/*
 * Replaces *field (a string owned by an envelope) with a copy of s
 * (NULL means ""). Returns 0 or RELAY_QUEUE_ENOMEM (field unchanged).
 */
int relay_queue_set_str(char **field, const char *s) RELAY_QUEUE_WUR;
/*
 * Appends a pending recipient; *out (optional) receives it. The pointer is
 * valid until the next add. Returns 0 or RELAY_QUEUE_ENOMEM.
 */
int relay_queue_rcpt_add(struct relay_queue_envelope *env, const char *address,
    const char *orcpt, unsigned notify,
    struct relay_queue_rcpt **out) RELAY_QUEUE_WUR;
/*
 * Appends an attempt record (strings "", time 0) to rcpt, dropping the
 * oldest beyond RELAY_QUEUE_ATTEMPTS_KEPT; increments rcpt->attempts.
 * *out receives it (valid until the next add). Returns 0 or ENOMEM.
 */
int relay_queue_attempt_add(struct relay_queue_rcpt *rcpt,
    struct relay_queue_attempt **out) RELAY_QUEUE_WUR;

/* Whether every recipient is SENT or BOUNCED. */
bool relay_queue_envelope_final(const struct relay_queue_envelope *env);

/*
 * Envelope file format (serialise / parse), exposed for the CLI and tests.
 * relay_queue_envelope_format() returns a malloc'd NUL-terminated text
 * (caller frees) and its length without the NUL in *len, or NULL when out
 * of memory.
 * relay_queue_envelope_parse() reads p/len (no NUL needed) into a new
 * envelope in *out (caller frees); returns 0, RELAY_QUEUE_ECORRUPT or
 * RELAY_QUEUE_ENOMEM.
 */
char *relay_queue_envelope_format(const struct relay_queue_envelope *env,
    size_t *len);
int relay_queue_envelope_parse(const uint8_t *p, size_t len,
    struct relay_queue_envelope **out) RELAY_QUEUE_WUR;

/* ------------------------------------------------------------------ */
/* The queue (owned by the serving process).                           */

struct relay_queue;

/*
 * Opens the spool at dir (borrowed; copied), creating dir, dir/tmp and
 * dir/queue (mode 0700) when missing, takes the lock, removes what a crash
 * left half-written, and loads the index of every committed message.
 * Blocks (startup only). On success *out is the queue.
 * Errors: RELAY_QUEUE_ELOCKED (another `serve` holds dir: err says which
 * pid), RELAY_QUEUE_EIO, RELAY_QUEUE_ENOMEM. err (optional, errlen bytes)
 * receives one line for the operator. Unparsable envelopes are moved to
 * dir/corrupt/ and logged, not fatal.
 */
int relay_queue_open(uv_loop_t *loop, const char *dir, struct relay_queue **out,
    char *err, size_t errlen) RELAY_QUEUE_WUR;

/*
 * Like relay_queue_open(), but reads no envelope: the lock is taken, the
 * spool recovered and queue/ listed by name (which fixes the id clock, so
 * new messages may be received at once), and the index starts empty.
 * relay_queue_load_start() then fills it in the background. For `serve`,
 * which answers 220 before a large queue is read.
 */
int relay_queue_open_lazy(uv_loop_t *loop, const char *dir,
    struct relay_queue **out, char *err, size_t errlen) RELAY_QUEUE_WUR;

/*
 * Called on the loop thread while the background load runs: after a batch
 * that added a message with open recipients due at earliest_due_us
 * (wall time; only when the batch had one), and once at the end with done
 * true (earliest_due_us is then that of the last batch, or UINT64_MAX).
 * The daemon kicks its scheduler from here.
 */
typedef void (
    *relay_queue_loaded_cb)(bool done, uint64_t earliest_due_us, void *arg);

/*
 * Parses the envelopes listed by relay_queue_open_lazy() in the thread
 * pool (batches of 1,024, two at a time) and adds them to the index in id
 * order; messages received meanwhile are in the index already. What does
 * not parse goes to corrupt/ as with relay_queue_open(); an envelope that
 * cannot be loaded for lack of memory stays in queue/ and is logged (it is
 * loaded at the next start). Call once, after the process dropped its
 * privileges (this starts the pool's threads). cb (may be NULL) runs as
 * described above, never from inside this call. Returns 0,
 * RELAY_QUEUE_ECANCELED, EBUSY (already started), ENOMEM or EIO.
 */
int relay_queue_load_start(struct relay_queue *q, relay_queue_loaded_cb cb,
    void *arg) RELAY_QUEUE_WUR;

/* Whether the background load has envelopes left to add. */
bool relay_queue_loading(const struct relay_queue *q);
/* How many listed envelopes are not in the index yet (0 when loaded). */
size_t relay_queue_load_left(const struct relay_queue *q);

/* Whether message id is in queue/ but not yet in the index (background
 * load): it exists, ask again shortly. */
bool relay_queue_load_pending(const struct relay_queue *q, const char *id);

/*
 * Closes the queue: new operations fail with RELAY_QUEUE_ECANCELED,
 * operations in flight complete and run their callbacks, then the lock is
 * released, q is freed and cb (may be NULL) runs. Writers not yet
 * committed must be aborted by their owners before or after this call;
 * close waits for them.
 */
typedef void (*relay_queue_close_cb)(void *arg);
void relay_queue_close(struct relay_queue *q, relay_queue_close_cb cb,
    void *arg);

/*
 * The clock (borrowed; it must outlive q) whose wall time stamps new
 * messages: their arrival_us and their ids, which sort by arrival. The
 * queue reads no other time: due times in envelopes are written by their
 * callers. Until this is called, q uses relay_clock_system().
 */
void relay_queue_set_clock(struct relay_queue *q,
    const struct relay_clock *clock);

/* The spool directory (absolute as given to open); valid while q lives. */
const char *relay_queue_dir(const struct relay_queue *q);

/* Number of messages in the index. */
size_t relay_queue_count(const struct relay_queue *q);

/* ---- Receiving a message ---- */

struct relay_queue_writer;

/*
 * Starts a message: assigns the queue id and arrival time (written into
 * env->id/env->arrival_us of the caller's envelope too) and copies env
 * (the caller keeps ownership of env). Needs at least one recipient.
 * Never blocks: the spool file is created by the first background write.
 * Returns 0 and *out, or RELAY_QUEUE_EINVAL / ENOMEM / ECANCELED.
 */
int relay_queue_msg_begin(struct relay_queue *q,
    struct relay_queue_envelope *env,
    struct relay_queue_writer **out) RELAY_QUEUE_WUR;

/* The queue id of a writer (valid while the writer lives). */
const char *relay_queue_writer_id(const struct relay_queue_writer *w);

/*
 * Appends len bytes of message content (already dot-unstuffed, CRLF line
 * ends). The bytes are copied: buf is borrowed only during the call.
 * When cb is not NULL it runs once these bytes (and all before them) were
 * written to the spool file or failed: status 0 or a negative error. Use
 * it for back-pressure (stop reading the socket while
 * relay_queue_writer_buffered() is large, resume in cb).
 * An error is sticky: later writes return it and commit reports it.
 * Returns 0, or the sticky error / RELAY_QUEUE_EBUSY after commit (cb then
 * never runs).
 */
typedef void (
    *relay_queue_write_cb)(struct relay_queue_writer *w, int status, void *arg);
int relay_queue_writer_write(struct relay_queue_writer *w, const void *buf,
    size_t len, relay_queue_write_cb cb, void *arg) RELAY_QUEUE_WUR;

/* Records that the content has octets above 127 (envelope content_8bit):
 * known only once all of it was received, so after msg_begin copied the
 * envelope. Call before relay_queue_writer_commit(). */
void relay_queue_writer_set_8bit(struct relay_queue_writer *w);

/* Bytes accepted by write() but not yet written to the file. */
size_t relay_queue_writer_buffered(const struct relay_queue_writer *w);

/*
 * Makes the message durable: flushes, fsyncs the content and the envelope,
 * renames both into the queue and fsyncs the directory (commits running
 * at the same time share that directory fsync). Then cb runs with status
 * 0 (answer 250, message in the index and visible to
 * relay_queue_foreach()), RELAY_QUEUE_ENOSPC (answer 452 4.3.1) or another
 * error (451 4.3.0); on error every file of the message was removed.
 * queue_id is borrowed for the call. The writer is freed after cb
 * returns. Returns 0, or RELAY_QUEUE_EBUSY if already committing (cb then
 * never runs).
 */
typedef void (*relay_queue_commit_cb)(struct relay_queue_writer *w, int status,
    const char *queue_id, void *arg);
int relay_queue_writer_commit(struct relay_queue_writer *w,
    relay_queue_commit_cb cb, void *arg) RELAY_QUEUE_WUR;

/*
 * Gives up the writer (client gone, RSET, size limit): no callback of
 * this writer runs any more and w must not be used again. Before commit
 * the message's files are removed. During a commit the commit runs to its
 * end (the message may then be queued although no 250 was sent; the
 * client retries, at-least-once delivery). The writer is freed when its
 * last background request finishes.
 */
void relay_queue_writer_abort(struct relay_queue_writer *w);

/* ---- The index, for the scheduler ---- */

/* A read-only summary of one message kept in memory (small: 100k fine). */
struct relay_queue_info {
	char id[RELAY_QUEUE_ID_SIZE];
	uint64_t arrival_us;
	uint64_t size;
	uint64_t next_attempt_us; /* min over non-final recipients; 0 = now;
	                              UINT64_MAX when none is left */
	uint32_t rcpt_open;       /* recipients not SENT/BOUNCED */
	bool hold;
	bool deferred; /* some recipient DEFERRED */
};

/*
 * Calls fn for each message in id (arrival) order; fn returns 0 to go on,
 * non-zero to stop (that value is returned). info is valid only during
 * the call; fn must not call functions that modify q.
 */
typedef int (
    *relay_queue_foreach_fn)(const struct relay_queue_info *info, void *arg);
int relay_queue_foreach(const struct relay_queue *q, relay_queue_foreach_fn fn,
    void *arg);

/*
 * The same for at most limit messages whose id sorts after `after` ("" for
 * the first): one slice of a walk that goes on where the last slice
 * stopped (the last id it saw), so that no single call does work in
 * proportion to the whole queue. Messages added or removed between two
 * slices are seen or not according to their id.
 */
int relay_queue_foreach_after(const struct relay_queue *q, const char *after,
    size_t limit, relay_queue_foreach_fn fn, void *arg);

/* Copies the summary of message id into *info. 0, RELAY_QUEUE_ENOENT, or
 * RELAY_QUEUE_EBUSY while the background load has not reached id yet. */
int relay_queue_lookup(const struct relay_queue *q, const char *id,
    struct relay_queue_info *info) RELAY_QUEUE_WUR;

/*
 * Path of the content file of message id into buf (size bytes). The file
 * is immutable while the message is queued; the delivery code opens and
 * streams it (uv_fs_open/uv_fs_read). Returns 0, RELAY_QUEUE_EINVAL (bad
 * id or buf too small).
 */
int relay_queue_content_path(const struct relay_queue *q, const char *id,
    char *buf, size_t size) RELAY_QUEUE_WUR;

/* ---- Loading and updating a queued message ---- */

/*
 * Reads and parses the envelope of id in the thread pool; cb gets status
 * 0 and env (owned by cb: free it with relay_queue_envelope_free()), or
 * an error and env NULL.
 */
typedef void (*relay_queue_load_cb)(int status,
    struct relay_queue_envelope *env, void *arg);
int relay_queue_load(struct relay_queue *q, const char *id,
    relay_queue_load_cb cb, void *arg) RELAY_QUEUE_WUR;

/*
 * Persists env (its id names the message) as the new envelope: the
 * serialisation is taken now (env is borrowed for the call only), written
 * to a new file, fsync'd, renamed over the old one, directory fsync'd.
 * A crash at any point leaves either the old or the new envelope. Updates
 * and removals of one message run in call order. The index is updated
 * before cb runs. cb may be NULL. Returns 0, ENOENT (not in the index),
 * EINVAL, ENOMEM, ECANCELED.
 */
typedef void (*relay_queue_done_cb)(int status, void *arg);
int relay_queue_update(struct relay_queue *q,
    const struct relay_queue_envelope *env, relay_queue_done_cb cb,
    void *arg) RELAY_QUEUE_WUR;

/*
 * Removes message id (all recipients final, or `queue delete`): envelope
 * first, then content, each renamed into spool_dir/pool/ for reuse; the
 * index entry goes at once. No directory fsync of its own: the next
 * commit's or update's makes it durable, so a crash before that may
 * bring the message back (delivered again, never lost). cb may be NULL.
 * Returns 0, ENOENT, ECANCELED, ENOMEM.
 */
int relay_queue_remove(struct relay_queue *q, const char *id,
    relay_queue_done_cb cb, void *arg) RELAY_QUEUE_WUR;

/* ---- Lock-free readers for the CLI (blocking; not on the serve loop) ---- */

/*
 * What a scan found but could not hand to its callback, so that no view of
 * the queue leaves it out in silence.
 */
struct relay_queue_scan_counts {
	uint64_t unparsable; /* queue/ID.env that does not parse, or names
	                           another id (serve moves it to corrupt/ at
	                           its next start) */
	uint64_t corrupt;    /* files in corrupt/, kept there for a human */
};

/*
 * Calls fn with each committed message's envelope in id order (env is
 * borrowed for the call; fn runs on the calling thread, while two threads
 * of the scan's own read and parse the envelopes ahead of it). An envelope that vanishes meanwhile (delivered
 * or deleted) is skipped; one that does not parse is counted in
 * counts->unparsable, and the files in dir/corrupt/ in counts->corrupt
 * (counts is zeroed first; may be NULL). Returns 0, fn's non-zero value,
 * or RELAY_QUEUE_EIO (a directory or envelope cannot be read) / ENOMEM.
 */
typedef int (
    *relay_queue_scan_fn)(const struct relay_queue_envelope *env, void *arg);
int relay_queue_scan(const char *dir, relay_queue_scan_fn fn, void *arg,
    struct relay_queue_scan_counts *counts) RELAY_QUEUE_WUR;

/* Reads the envelope of id from dir into *out (caller frees). */
int relay_queue_read(const char *dir, const char *id,
    struct relay_queue_envelope **out) RELAY_QUEUE_WUR;

#endif
