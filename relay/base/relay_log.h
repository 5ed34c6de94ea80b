#ifndef RELAY_LOG_H
#define RELAY_LOG_H
/*
 * relay_log: one line per event, key=value (STYLE.md section 7, after
 * OpenSMTPD's mta_log and Postfix's status= lines).
 *
 *     2025-11-22T15:08:01.123Z level=info event=delivery id=064A1B2C3D4E5F
 *         to=<a@b.example> relay=mx.b.example[192.0.2.1]:25 tls=dane-ee
 *         dsn=2.0.0 status=sent why="250 2.0.0 Ok: queued as 4Xy"
 *
 * (one line; wrapped here). The timestamp is UTC with milliseconds.
 *
 * A line is built on the stack, field by field, without format strings:
 *
 *     struct relay_log_line l;
 *     if (relay_log_begin(&l, RELAY_LOG_INFO, "delivery")) {
 *         relay_log_str(&l, "id", id);
 *         relay_log_mem(&l, "why", reply, reply_len);   // untrusted
 *         relay_log_u64(&l, "attempts", n);
 *         relay_log_end(&l);
 *     }
 *
 * relay_log_begin() returns false when the level is filtered out; the
 * other calls are then no-ops anyway, so the `if` is only an optimisation.
 *
 * Values: bare when made only of safe bytes [A-Za-z0-9 . _ - : / @ < > [ ]
 * + , ; ! ? * ~ ^ ' ( ) { } | $ & % #] and non-empty; otherwise quoted with
 * \" \\ \n \r \t and \xHH escapes (bytes < 0x20, 0x7f and >= 0x80 are
 * always escaped, so a log line is printable ASCII). Each value is cut to
 * RELAY_LOG_VALUE_MAX input bytes, with "..." appended inside the value;
 * a line longer than RELAY_LOG_LINE_MAX ends with " truncated=yes".
 * Keys are trusted identifiers ([a-z0-9_.-], checked by assert).
 *
 * Output: one write(2) per line to stderr (systemd's journal adds its own
 * time stamps; ours stay for plain files) and, when opened, also to a log
 * file (O_APPEND). When stderr is the journal, each stderr line starts with
 * its syslog priority (relay_log_detect_journal). Logging is for the loop
 * thread; the module keeps process-global state and is not thread-safe.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "relay_clock.h"

enum relay_log_level {
	RELAY_LOG_ERROR,   /* the daemon cannot do what it must */
	RELAY_LOG_WARNING, /* something is wrong but handled */
	RELAY_LOG_INFO,    /* one line per delivery attempt / session */
	RELAY_LOG_DEBUG,   /* state changes, DANE decision inputs */
};
const char *relay_log_level_name(enum relay_log_level level);

#define RELAY_LOG_LINE_MAX 4096 /* bytes of one line, newline included */
#define RELAY_LOG_VALUE_MAX 512 /* input bytes kept of one value */

struct relay_log_line {
	/* private */
	char buf[RELAY_LOG_LINE_MAX];
	size_t len;
	bool active;
	bool truncated;
	enum relay_log_level level;
};

/*
 * Sets the threshold: lines above it (more verbose) are dropped.
 * Default RELAY_LOG_INFO.
 */
void relay_log_set_level(enum relay_log_level level);
enum relay_log_level relay_log_get_level(void);

/*
 * Also writes every line to the file at path (created 0640, appended).
 * Replaces a previously opened file: `serve` calls it again on SIGHUP, so
 * after a log rotation renamed the file, lines go to a new one at path.
 * path NULL or "" closes the file. Returns 0 or -errno; on error the
 * previous file stays open (and keeps receiving lines).
 */
int relay_log_open_file(const char *path) __attribute__((warn_unused_result));

/*
 * Gives the open log file to uid:gid (fchown), so that a process that then
 * drops root still owns it, and a rotation that creates the next file with
 * the old one's owner (logrotate's `create`) leaves it one it may open.
 * No file open: 0. Returns 0 or -errno.
 */
int relay_log_chown_file(uid_t uid, gid_t gid)
    __attribute__((warn_unused_result));

/*
 * Decides whether stderr is a systemd journal stream: $JOURNAL_STREAM
 * ("DEVICE:INODE", set by systemd when a service's standard error is the
 * journal) must name the file descriptor 2 is open on, since children
 * inherit the variable with stderr redirected elsewhere (systemd.exec(5)).
 * If so, every line written to stderr starts with its syslog priority,
 * "<3>" error, "<4>" warning, "<6>" info, "<7>" debug (sd-daemon(3), the
 * RFC 5424 6.2.1 severities), which journald strips and records as the
 * entry's priority, so `journalctl -p warning` shows warnings and errors.
 * The log file and the sink never get the prefix. Call at start, once
 * stderr is final; relay_log_reset() turns the prefix off. Returns whether
 * it is on.
 */
bool relay_log_detect_journal(void);

/* Whether stderr receives lines (default true). */
void relay_log_set_stderr(bool on);

/*
 * A sink that receives each finished line (without the newline), for tests
 * and for the control socket. line is valid only during the call. NULL
 * removes it.
 */
typedef void (*relay_log_sink_fn)(enum relay_log_level level, const char *line,
    size_t len, void *arg);
void relay_log_set_sink(relay_log_sink_fn fn, void *arg);

/*
 * The clock (borrowed; it must outlive its use here) whose wall time
 * stamps each line: the daemon's, or a manual one in tests for fixed
 * output. NULL restores relay_clock_system().
 */
void relay_log_set_clock(const struct relay_clock *clock);

/* Closes the log file and restores defaults (level, stderr, sink, clock,
 * no journal prefix). */
void relay_log_reset(void);

/*
 * Starts a line for event (a trusted identifier). Returns false if level
 * is filtered out; the line is then inert.
 */
bool relay_log_begin(struct relay_log_line *l, enum relay_log_level level,
    const char *event);

/* key=value from a NUL-terminated string (escaped, truncated). NULL logs
 * key="" . */
void relay_log_str(struct relay_log_line *l, const char *key, const char *val);
/* key=value from len bytes of untrusted data (NULs allowed). */
void relay_log_mem(struct relay_log_line *l, const char *key, const void *val,
    size_t len);
/* key=<value>: a mail address in angle brackets, as Postfix logs it. */
void relay_log_addr(struct relay_log_line *l, const char *key,
    const char *mailbox);
void relay_log_u64(struct relay_log_line *l, const char *key, uint64_t v);
void relay_log_i64(struct relay_log_line *l, const char *key, int64_t v);
void relay_log_bool(struct relay_log_line *l, const char *key, bool v);
/* key=1.234 (seconds, milliseconds precision), e.g. delay=. */
void relay_log_ms(struct relay_log_line *l, const char *key, uint64_t ms);
/* key=lower-case hex of len bytes (digests), cut like any value. */
void relay_log_hex(struct relay_log_line *l, const char *key, const void *p,
    size_t len);
/* key=192.0.2.1:25 or key=[2001:db8::1]:25 (port omitted when 0). */
void relay_log_sockaddr(struct relay_log_line *l, const char *key,
    const struct sockaddr *sa);
/*
 * key=value from a compile-checked format (trusted format only; the
 * result is escaped like any value). For things like "%s[%s]:%u".
 */
void relay_log_strf(struct relay_log_line *l, const char *key, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* Emits the line (one write per destination) and makes it inert. */
void relay_log_end(struct relay_log_line *l);

/*
 * Shorthand for a line with event and one why= field, e.g.
 * relay_log_msg(RELAY_LOG_WARNING, "reload", "configuration reloaded").
 */
void relay_log_msg(enum relay_log_level level, const char *event,
    const char *why);

/*
 * Escapes len bytes as a log value into out (size bytes, NUL-terminated).
 * Returns the length written. Exposed for tests and for the CLI.
 */
size_t relay_log_escape(char *out, size_t size, const void *val, size_t len);

#endif
