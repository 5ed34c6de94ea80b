/*
 * relay_log: key=value event lines (see relay_log.h for the format).
 *
 * A line is assembled in a fixed buffer on the caller's stack; nothing is
 * allocated and no caller-supplied text ever reaches a format string.
 * Emission is one write(2) per destination so that lines from several
 * processes appending to one file do not interleave (O_APPEND writes of
 * less than PIPE_BUF bytes are atomic in practice on local file systems).
 */
#include "relay_log.h"
#include "relay_clock.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char truncated_mark[] = " truncated=yes";

static struct {
	enum relay_log_level level;
	bool to_stderr;
	bool journal; /* stderr lines start with "<N>" */
	int fd;
	relay_log_sink_fn sink;
	void *sink_arg;
	const struct relay_clock *clock; /* NULL: the system clock */
} g = { RELAY_LOG_INFO, true, false, -1, NULL, NULL, NULL };

const char *
relay_log_level_name(enum relay_log_level level)
{
	switch (level) {
	case RELAY_LOG_ERROR:
		return "error";
	case RELAY_LOG_WARNING:
		return "warning";
	case RELAY_LOG_INFO:
		return "info";
	case RELAY_LOG_DEBUG:
		return "debug";
	}
	return "?";
}

void
relay_log_set_level(enum relay_log_level level)
{
	g.level = level;
}

enum relay_log_level
relay_log_get_level(void)
{
	return g.level;
}

int
relay_log_open_file(const char *path)
{
	int fd = -1;

	if (path != NULL && path[0] != '\0') {
		fd =
		    open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return -errno;
	}
	if (g.fd >= 0)
		(void)close(g.fd);
	g.fd = fd;
	return 0;
}

int
relay_log_chown_file(uid_t uid, gid_t gid)
{
	if (g.fd >= 0 && fchown(g.fd, uid, gid) != 0)
		return -errno;
	return 0;
}

/* Syslog priority of a level (sd-daemon(3): "<3>" err, "<4>" warning,
 * "<6>" info, "<7>" debug). */
static unsigned
syslog_priority(enum relay_log_level level)
{
	switch (level) {
	case RELAY_LOG_ERROR:
		return 3;
	case RELAY_LOG_WARNING:
		return 4;
	case RELAY_LOG_INFO:
		return 6;
	case RELAY_LOG_DEBUG:
		return 7;
	}
	return 6;
}

/* Parses "DEVICE:INODE" (decimal, nothing else). */
static bool
parse_journal_stream(const char *s, unsigned long long *dev,
    unsigned long long *ino)
{
	char *end;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	*dev = strtoull(s, &end, 10);
	if (errno != 0 || *end != ':' || end[1] < '0' || end[1] > '9')
		return false;
	*ino = strtoull(end + 1, &end, 10);
	return errno == 0 && *end == '\0';
}

bool
relay_log_detect_journal(void)
{
	unsigned long long dev, ino;
	struct stat st;

	g.journal =
	    parse_journal_stream(getenv("JOURNAL_STREAM"), &dev, &ino) &&
	    fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
	return g.journal;
}

void
relay_log_set_stderr(bool on)
{
	g.to_stderr = on;
}

void
relay_log_set_sink(relay_log_sink_fn fn, void *arg)
{
	g.sink = fn;
	g.sink_arg = arg;
}

void
relay_log_set_clock(const struct relay_clock *clock)
{
	g.clock = clock;
}

void
relay_log_reset(void)
{
	if (g.fd >= 0)
		(void)close(g.fd);
	g.fd = -1;
	g.level = RELAY_LOG_INFO;
	g.to_stderr = true;
	g.journal = false;
	g.sink = NULL;
	g.sink_arg = NULL;
	g.clock = NULL;
}

static uint64_t
now_us(void)
{
	return relay_clock_wall_us(
	    g.clock != NULL ? g.clock : relay_clock_system());
}

/* Room kept at the end of the buffer for " truncated=yes\n". */
static size_t
line_room(void)
{
	return RELAY_LOG_LINE_MAX - sizeof(truncated_mark) - 1;
}

static void
put(struct relay_log_line *l, const char *s, size_t n)
{
	if (!l->active || l->truncated)
		return;
	if (n > line_room() - l->len) {
		l->truncated = true;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
put_str(struct relay_log_line *l, const char *s)
{
	put(l, s, strlen(s));
}

static bool
key_ok(const char *key)
{
	if (key == NULL || key[0] == '\0')
		return false;
	for (const char *k = key; *k != '\0'; k++) {
		char c = *k;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		        c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static bool
bare_ok(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("._-:/@<>[]+,;!?*~^'(){}|$&%#", c) != NULL;
}

size_t
relay_log_escape(char *out, size_t size, const void *val, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = val;
	bool cut = false, quote = (len == 0), quoted;
	size_t o = 0;

	if (size == 0)
		return 0;
	if (len > RELAY_LOG_VALUE_MAX) {
		len = RELAY_LOG_VALUE_MAX;
		cut = true;
	}
	for (size_t i = 0; i < len && !quote; i++)
		quote = !bare_ok(p[i]);
		/* Worst case per byte is 4 ("\xHH"); stop before overflowing. */
#define EMIT(c)                                                                \
	do {                                                                   \
		if (o + 1 < size)                                              \
			out[o++] = (c);                                        \
	} while (0)
	quoted = quote || cut;
	if (quoted)
		EMIT('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (o + 6 >= size) {
			cut = true;
			break;
		}
		switch (c) {
		case '"':
			EMIT('\\');
			EMIT('"');
			break;
		case '\\':
			EMIT('\\');
			EMIT('\\');
			break;
		case '\n':
			EMIT('\\');
			EMIT('n');
			break;
		case '\r':
			EMIT('\\');
			EMIT('r');
			break;
		case '\t':
			EMIT('\\');
			EMIT('t');
			break;
		default:
			if (c < 0x20 || c >= 0x7f) {
				EMIT('\\');
				EMIT('x');
				EMIT(hex[c >> 4]);
				EMIT(hex[c & 15]);
			} else {
				EMIT((char)c);
			}
			break;
		}
	}
	if (cut) {
		EMIT('.');
		EMIT('.');
		EMIT('.');
	}
	if (quoted)
		EMIT('"');
#undef EMIT
	out[o] = '\0';
	return o;
}

bool
relay_log_begin(struct relay_log_line *l, enum relay_log_level level,
    const char *event)
{
	uint64_t us;
	time_t sec;
	struct tm tm;
	char ts[128];
	int n;

	l->len = 0;
	l->truncated = false;
	l->level = level;
	l->active = level <= g.level;
	if (!l->active)
		return false;
	us = now_us();
	sec = (time_t)(us / 1000000u);
	if (gmtime_r(&sec, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	n = snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (unsigned)(us % 1000000u / 1000u));
	if (n > 0 && (size_t)n < sizeof(ts))
		put(l, ts, (size_t)n);
	put_str(l, " level=");
	put_str(l, relay_log_level_name(level));
	relay_log_str(l, "event", event);
	return true;
}

void
relay_log_mem(struct relay_log_line *l, const char *key, const void *val,
    size_t len)
{
	/* " key=" plus the escaped value, added to the line in one piece so
	 * that a truncated line never ends inside a field. */
	char field[64 + RELAY_LOG_VALUE_MAX * 4 + 8];
	size_t klen, n;

	if (!l->active)
		return;
	assert(key_ok(key));
	klen = strlen(key);
	assert(klen < 62);
	field[0] = ' ';
	memcpy(field + 1, key, klen);
	field[klen + 1] = '=';
	n = relay_log_escape(field + klen + 2, sizeof(field) - klen - 2,
	    val == NULL ? "" : val, val == NULL ? 0 : len);
	put(l, field, klen + 2 + n);
}

void
relay_log_str(struct relay_log_line *l, const char *key, const char *val)
{
	if (val == NULL)
		val = "";
	relay_log_mem(l, key, val, strlen(val));
}

void
relay_log_addr(struct relay_log_line *l, const char *key, const char *mailbox)
{
	char buf[RELAY_LOG_VALUE_MAX + 3];
	size_t n = mailbox == NULL ? 0 : strlen(mailbox);

	if (n > RELAY_LOG_VALUE_MAX)
		n = RELAY_LOG_VALUE_MAX;
	buf[0] = '<';
	if (n > 0)
		memcpy(buf + 1, mailbox, n);
	buf[n + 1] = '>';
	relay_log_mem(l, key, buf, n + 2);
}

void
relay_log_u64(struct relay_log_line *l, const char *key, uint64_t v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);

	relay_log_mem(l, key, buf, (size_t)n);
}

void
relay_log_i64(struct relay_log_line *l, const char *key, int64_t v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" PRId64, v);

	relay_log_mem(l, key, buf, (size_t)n);
}

void
relay_log_bool(struct relay_log_line *l, const char *key, bool v)
{
	relay_log_str(l, key, v ? "yes" : "no");
}

void
relay_log_ms(struct relay_log_line *l, const char *key, uint64_t ms)
{
	char buf[40];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64 ".%03u", ms / 1000u,
	    (unsigned)(ms % 1000u));

	relay_log_mem(l, key, buf, (size_t)n);
}

void
relay_log_hex(struct relay_log_line *l, const char *key, const void *p,
    size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char buf[RELAY_LOG_VALUE_MAX];
	const unsigned char *b = p;
	size_t n = 0;

	for (size_t i = 0; i < len && n + 2 <= sizeof(buf); i++) {
		buf[n++] = hex[b[i] >> 4];
		buf[n++] = hex[b[i] & 15];
	}
	relay_log_mem(l, key, buf, n);
}

void
relay_log_sockaddr(struct relay_log_line *l, const char *key,
    const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN], buf[INET6_ADDRSTRLEN + 16];
	unsigned port = 0;
	int n = -1;

	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in =
		    (const struct sockaddr_in *)(const void *)sa;
		if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host))) {
			port = ntohs(in->sin_port);
			n = port
			    ? snprintf(buf, sizeof(buf), "%s:%u", host, port)
			    : snprintf(buf, sizeof(buf), "%s", host);
		}
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)(const void *)sa;
		if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host))) {
			port = ntohs(in6->sin6_port);
			n = port
			    ? snprintf(buf, sizeof(buf), "[%s]:%u", host, port)
			    : snprintf(buf, sizeof(buf), "%s", host);
		}
	}
	if (n < 0 || (size_t)n >= sizeof(buf))
		relay_log_str(l, key, "unknown");
	else
		relay_log_mem(l, key, buf, (size_t)n);
}

void
relay_log_strf(struct relay_log_line *l, const char *key, const char *fmt, ...)
{
	char buf[RELAY_LOG_VALUE_MAX + 2];
	va_list ap;
	int n;

	if (!l->active)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	/* Longer than the value limit: passing RELAY_LOG_VALUE_MAX + 1
	 * bytes makes relay_log_escape() mark the cut. */
	relay_log_mem(l, key, buf,
	    (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere to report a log write error */
		p += w;
		n -= (size_t)w;
	}
}

void
relay_log_end(struct relay_log_line *l)
{
	size_t len;

	if (!l->active)
		return;
	l->active = false;
	if (l->truncated) {
		memcpy(l->buf + l->len, truncated_mark,
		    sizeof(truncated_mark) - 1);
		l->len += sizeof(truncated_mark) - 1;
	}
	len = l->len;
	if (g.sink != NULL) {
		l->buf[len] = '\0';
		g.sink(l->level, l->buf, len, g.sink_arg);
	}
	l->buf[len++] = '\n';
	if (g.to_stderr && g.journal) {
		/* The priority and the line in one write, as without it. */
		char out[8 + RELAY_LOG_LINE_MAX];
		int n = snprintf(out, sizeof(out), "<%u>",
		    syslog_priority(l->level));

		memcpy(out + n, l->buf, len);
		write_all(STDERR_FILENO, out, (size_t)n + len);
	} else if (g.to_stderr) {
		write_all(STDERR_FILENO, l->buf, len);
	}
	if (g.fd >= 0)
		write_all(g.fd, l->buf, len);
}

void
relay_log_msg(enum relay_log_level level, const char *event, const char *why)
{
	struct relay_log_line l;

	if (relay_log_begin(&l, level, event)) {
		relay_log_str(&l, "why", why);
		relay_log_end(&l);
	}
}
