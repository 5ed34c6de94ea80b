/*
 * relay_tlsrpt_store: the daemon's live TLS session counts.
 *
 * Counting is a hash-table increment on the loop. Once a second a timer
 * gathers what changed since the last write as journal lines (one per
 * changed row, with the increment) and hands them to one libuv thread-pool
 * work item, which appends them to the day's file and fdatasync()s it.
 * So the loop never blocks on the disk, a kill -9 loses at most the last
 * second of counts, and a restart sums the journal back
 * (relay_tlsrpt_table_load). The file of the running day is rewritten
 * with one line per row when it passes RELAY_TLSRPT_JOURNAL_COMPACT, and
 * a finished day's file once after midnight; days older than
 * RELAY_TLSRPT_KEEP_DAYS are removed. Rewrites go through a temporary
 * file, fsync and rename(2), so a crash leaves the old or the new file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay_log.h"
#include "relay_text.h"
#include "relay_tlsrpt.h"

#define FLUSH_MS 1000
/* Lines of a failed write kept for the next try, at most. */
#define RETRY_MAX (1024u * 1024)

struct job {
	char *text; /* lines, each naming its day */
	size_t len;
	bool rewrite; /* text is today's whole file */
	char today[RELAY_TLSRPT_DAY_SIZE];
	char compact[RELAY_TLSRPT_DAY_SIZE]; /* a finished day, or "" */
	/* out */
	int err;
	char why[256];
	uint64_t today_size;
};

struct relay_tlsrpt_store {
	uv_loop_t *loop;
	const struct relay_clock *clock;
	char dir[4096];
	struct relay_tlsrpt_table t;
	char day[RELAY_TLSRPT_DAY_SIZE]; /* the day t's newest rows are of */
	uint64_t today_size;
	uint64_t compact_at; /* today_size that triggers a rewrite */
	char full_day[RELAY_TLSRPT_DAY_SIZE]; /* EFULL logged for this day */
	uv_timer_t timer;
	uv_work_t work;
	struct job job;
	bool busy;
	char *retry;
	size_t retry_len;
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
};

static void
today(const struct relay_tlsrpt_store *st, char out[RELAY_TLSRPT_DAY_SIZE])
{
	relay_tlsrpt_day((time_t)(relay_clock_wall_us(st->clock) / 1000000u),
	    out);
}

/* ------------------------------------------------ thread pool side */

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return r;
}

/* Replaces dir/day.log by text, atomically and durably. */
static int
replace_file(const char *dir, const char *day, const char *text, size_t len)
{
	char tmp[4200], path[4200];
	relay_fmt(tmp, sizeof(tmp), "%s/%s.log.tmp", dir, day);
	relay_fmt(path, sizeof(path), "%s/%s.log", dir, day);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, text, len);
	if (r == 0 && fsync(fd) != 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(tmp, path) != 0)
		r = -errno;
	if (r == 0)
		r = fsync_dir(dir);
	if (r != 0)
		(void)unlink(tmp);
	return r;
}

/* Appends the job's lines, each to the file of its day. */
static int
append_lines(const char *dir, const char *text, size_t len,
    const char *today_day, uint64_t *today_size)
{
	size_t off = 0;
	while (off < len) {
		/* Lines start "t1\tYYYY-MM-DD\t": group those of one day. */
		char day[RELAY_TLSRPT_DAY_SIZE];
		memcpy(day, text + off + 3, 10);
		day[10] = '\0';
		size_t end = off;
		while (end < len && memcmp(text + end + 3, day, 10) == 0) {
			const char *nl = memchr(text + end, '\n', len - end);
			end = (size_t)(nl - text) + 1;
		}
		char path[4200];
		relay_fmt(path, sizeof(path), "%s/%s.log", dir, day);
		int fd =
		    open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		int r = write_all(fd, text + off, end - off);
		if (r == 0 && fdatasync(fd) != 0)
			r = -errno;
		struct stat sb;
		if (r == 0 && strcmp(day, today_day) == 0 &&
		    fstat(fd, &sb) == 0)
			*today_size = (uint64_t)sb.st_size;
		close(fd);
		if (r != 0)
			return r;
		off = end;
	}
	return 0;
}

/* One line per row: the finished day's file, compacted. */
static int
compact_day(const char *dir, const char *day, char *why, size_t whylen)
{
	struct relay_tlsrpt_table t;
	relay_tlsrpt_table_init(&t);
	int r = relay_tlsrpt_table_read_day(&t, dir, day, why, whylen);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = r == 0 ? open_memstream(&buf, &len) : NULL;
	if (r == 0 && f == NULL)
		r = RELAY_TLSRPT_ENOMEM;
	for (size_t i = 0; r == 0 && i < t.nrows; i++) {
		char line[RELAY_TLSRPT_LINE_MAX];
		size_t n = relay_tlsrpt_table_line(&t.rows[i], t.rows[i].count,
		    line, sizeof(line));
		if (n > 0)
			fwrite(line, 1, n, f);
	}
	if (f != NULL && fclose(f) != 0 && r == 0)
		r = RELAY_TLSRPT_ENOMEM;
	if (r == 0 && t.nrows > 0) {
		int e = replace_file(dir, day, buf, len);
		if (e != 0) {
			relay_fmt(why, whylen, "rewrite %s: %s", day,
			    strerror(-e));
			r = RELAY_TLSRPT_EIO;
		}
	}
	free(buf);
	relay_tlsrpt_table_free(&t);
	return r;
}

/* Removes day files (and sent states) older than RELAY_TLSRPT_KEEP_DAYS
 * before today. Names sort like days, so a string compare does. */
static void
expire_days(const char *dir, const char *today_day)
{
	time_t start;
	if (!relay_tlsrpt_day_parse(today_day, &start))
		return;
	char oldest[RELAY_TLSRPT_DAY_SIZE];
	relay_tlsrpt_day(start - (time_t)RELAY_TLSRPT_KEEP_DAYS * 86400,
	    oldest);
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		const char *day = strncmp(n, "sent-", 5) == 0 ? n + 5 : n;
		if (strlen(day) < 10 || day[4] != '-')
			continue;
		if (strncmp(day, oldest, 10) < 0) {
			char path[4400];
			relay_fmt(path, sizeof(path), "%s/%s", dir, n);
			(void)unlink(path);
		}
	}
	closedir(d);
}

static void
work_cb(uv_work_t *w)
{
	struct relay_tlsrpt_store *st = w->data;
	struct job *j = &st->job;
	int r = 0;
	if (j->rewrite) {
		r = replace_file(st->dir, j->today, j->text, j->len);
		if (r == 0)
			j->today_size = j->len;
	} else if (j->len > 0) {
		r = append_lines(st->dir, j->text, j->len, j->today,
		    &j->today_size);
	}
	if (r != 0) {
		j->err = RELAY_TLSRPT_EIO;
		relay_fmt(j->why, sizeof(j->why), "journal write: %s",
		    strerror(-r));
		return;
	}
	if (j->compact[0]) {
		if (compact_day(st->dir, j->compact, j->why, sizeof(j->why)) !=
		    0)
			j->err = RELAY_TLSRPT_EIO;
		expire_days(st->dir, j->today);
	}
}

/* ------------------------------------------------------ loop side */

static void tick(uv_timer_t *h);

static void
timer_closed(uv_handle_t *h)
{
	struct relay_tlsrpt_store *st = h->data;
	void (*cb)(void *) = st->close_cb;
	void *arg = st->close_arg;
	relay_tlsrpt_table_free(&st->t);
	free(st->retry);
	free(st);
	if (cb != NULL)
		cb(arg);
}

static bool
pending(const struct relay_tlsrpt_store *st)
{
	if (st->retry_len > 0)
		return true;
	for (size_t i = 0; i < st->t.nrows; i++)
		if (st->t.rows[i].unflushed > 0)
			return true;
	return false;
}

static void
after_work(uv_work_t *w, int status)
{
	struct relay_tlsrpt_store *st = w->data;
	struct job *j = &st->job;
	st->busy = false;
	if (status == 0 && j->err == 0) {
		if (j->today_size > 0 || j->rewrite)
			st->today_size = j->today_size;
		free(j->text);
	} else {
		relay_log_msg(RELAY_LOG_ERROR, "tlsrpt",
		    j->why[0] ? j->why : "journal write cancelled");
		/* Keep the lines for the next write (bounded): counts are
		 * late, not lost, unless the disk stays broken. A failed
		 * rewrite's counts are in memory and get written again. */
		if (!j->rewrite && st->retry_len + j->len <= RETRY_MAX) {
			char *n = realloc(st->retry, st->retry_len + j->len);
			if (n != NULL) {
				memcpy(n + st->retry_len, j->text, j->len);
				st->retry = n;
				st->retry_len += j->len;
			}
		} else if (j->rewrite) {
			st->today_size = st->compact_at + 1;
			for (size_t i = 0; i < st->t.nrows; i++)
				st->t.rows[i].unflushed = 0;
		}
		free(j->text);
	}
	memset(j, 0, sizeof(*j));
	if (st->closing) {
		if (pending(st))
			tick(&st->timer);
		if (!st->busy)
			uv_close((uv_handle_t *)&st->timer, timer_closed);
	}
}

/* Keeps only rows of day today (a new table: indexes change). */
static void
drop_old_rows(struct relay_tlsrpt_store *st, const char *day)
{
	struct relay_tlsrpt_table n;
	relay_tlsrpt_table_init(&n);
	for (size_t i = 0; i < st->t.nrows; i++) {
		const struct relay_tlsrpt_row *r = &st->t.rows[i];
		if (strcmp(r->day, day) != 0)
			continue;
		struct relay_tlsrpt_session s = relay_tlsrpt_row_session(r);
		struct relay_tlsrpt_row *nr;
		if (relay_tlsrpt_table_add(&n, day, &s, r->count, &nr) == 0)
			nr->unflushed = r->unflushed;
	}
	relay_tlsrpt_table_free(&st->t);
	st->t = n;
}

static void
tick(uv_timer_t *h)
{
	struct relay_tlsrpt_store *st = h->data;
	if (st->busy)
		return;
	struct job *j = &st->job;
	memset(j, 0, sizeof(*j));
	today(st, j->today);
	bool rollover = strcmp(st->day, j->today) != 0;
	/* Compact the running day's file once it is large (not while the
	 * day changes: one thing at a time). */
	j->rewrite =
	    !rollover && st->retry_len == 0 && st->today_size > st->compact_at;
	FILE *f = open_memstream(&j->text, &j->len);
	if (f == NULL)
		return;
	if (st->retry_len > 0) {
		fwrite(st->retry, 1, st->retry_len, f);
		free(st->retry);
		st->retry = NULL;
		st->retry_len = 0;
	}
	for (size_t i = 0; i < st->t.nrows; i++) {
		struct relay_tlsrpt_row *r = &st->t.rows[i];
		uint64_t n = j->rewrite ? r->count : r->unflushed;
		if (n == 0)
			continue;
		char line[RELAY_TLSRPT_LINE_MAX];
		size_t len = relay_tlsrpt_table_line(r, n, line, sizeof(line));
		if (len > 0)
			fwrite(line, 1, len, f);
		r->unflushed = 0;
	}
	if (fclose(f) != 0) {
		free(j->text);
		memset(j, 0, sizeof(*j));
		return;
	}
	if (rollover) {
		/* Every count of the old day is in this job: the day is
		 * finished (RFC 8460 4.1: a report covers one UTC day). */
		relay_copy(j->compact, sizeof(j->compact), st->day);
		drop_old_rows(st, j->today);
		relay_copy(st->day, sizeof(st->day), j->today);
		st->today_size = 0;
	}
	if (j->len == 0 && !rollover) {
		free(j->text);
		memset(j, 0, sizeof(*j));
		return;
	}
	st->busy = true;
	st->work.data = st;
	if (uv_queue_work(st->loop, &st->work, work_cb, after_work) != 0) {
		st->busy = false;
		relay_log_msg(RELAY_LOG_ERROR, "tlsrpt",
		    "cannot queue the journal write");
		free(j->text);
		memset(j, 0, sizeof(*j));
	}
}

void
relay_tlsrpt_store_note(struct relay_tlsrpt_store *st,
    const struct relay_tlsrpt_session *s)
{
	char day[RELAY_TLSRPT_DAY_SIZE];
	today(st, day);
	struct relay_tlsrpt_row *row;
	int r = relay_tlsrpt_table_add(&st->t, day, s, 1, &row);
	if (r == 0) {
		row->unflushed++;
		return;
	}
	if (r == RELAY_TLSRPT_EFULL && strcmp(st->full_day, day) == 0)
		return;
	if (r == RELAY_TLSRPT_EFULL)
		relay_copy(st->full_day, sizeof(st->full_day), day);
	struct relay_log_line l;
	if (relay_log_begin(&l, RELAY_LOG_WARNING, "tlsrpt")) {
		relay_log_str(&l, "domain", s->domain);
		relay_log_str(&l, "status", "not-counted");
		relay_log_str(&l, "why", relay_tlsrpt_strerror(r));
		relay_log_end(&l);
	}
}

/* Reads today's journal; a torn last line is cut off, a file that does not
 * parse is set aside (counting goes on; the operator sees the log). */
static int
load_today(struct relay_tlsrpt_store *st, char *err, size_t errlen)
{
	char path[4200];
	relay_fmt(path, sizeof(path), "%s/%s.log", st->dir, st->day);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		relay_fmt(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return RELAY_TLSRPT_EIO;
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		relay_fmt(err, errlen, "cannot stat %s: %s", path,
		    strerror(errno));
		close(fd);
		return RELAY_TLSRPT_EIO;
	}
	size_t len = (size_t)sb.st_size;
	char *data = malloc(len + 1);
	size_t got = 0;
	while (data != NULL && got < len) {
		ssize_t n = read(fd, data + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (data == NULL || got != len) {
		relay_fmt(err, errlen, "cannot read %s", path);
		free(data);
		close(fd);
		return RELAY_TLSRPT_EIO;
	}
	size_t good = 0, bad = 0;
	int r = relay_tlsrpt_table_load(&st->t, data, len, &good, &bad);
	free(data);
	if (r == 0 && good < len) {
		/* The write a crash cut short: its second of counts is the
		 * loss the design allows. */
		if (ftruncate(fd, (off_t)good) != 0 || fsync(fd) != 0)
			relay_log_msg(RELAY_LOG_WARNING, "tlsrpt",
			    "cannot cut the torn end of the journal");
		else
			relay_log_msg(RELAY_LOG_WARNING, "tlsrpt",
			    "journal ended in a torn line: cut off");
		len = good;
	}
	close(fd);
	if (r == RELAY_TLSRPT_EFORMAT) {
		char aside[4300];
		relay_fmt(aside, sizeof(aside), "%s.bad", path);
		relay_tlsrpt_table_free(&st->t);
		relay_tlsrpt_table_init(&st->t);
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_ERROR, "tlsrpt")) {
			relay_log_str(&l, "journal", path);
			relay_log_u64(&l, "line", bad);
			relay_log_str(&l, "status", "set-aside");
			relay_log_str(&l, "file", aside);
			relay_log_end(&l);
		}
		if (rename(path, aside) != 0) {
			relay_fmt(err, errlen, "cannot set aside %s: %s", path,
			    strerror(errno));
			return RELAY_TLSRPT_EIO;
		}
		return 0;
	}
	if (r != 0) {
		relay_fmt(err, errlen, "%s: %s", path,
		    relay_tlsrpt_strerror(r));
		return r;
	}
	st->today_size = len;
	return 0;
}

int
relay_tlsrpt_store_open(uv_loop_t *loop, const struct relay_clock *clock,
    const char *spool_dir, struct relay_tlsrpt_store **out, char *err,
    size_t errlen)
{
	struct relay_tlsrpt_store *st = calloc(1, sizeof(*st));
	if (st == NULL) {
		relay_fmt(err, errlen, "out of memory");
		return RELAY_TLSRPT_ENOMEM;
	}
	st->loop = loop;
	st->clock = clock;
	st->compact_at = RELAY_TLSRPT_JOURNAL_COMPACT;
	relay_tlsrpt_table_init(&st->t);
	if (relay_tlsrpt_dir(spool_dir, st->dir, sizeof(st->dir)) != 0) {
		relay_fmt(err, errlen, "spool_dir too long");
		free(st);
		return RELAY_TLSRPT_EINVAL;
	}
	if (mkdir(st->dir, 0700) != 0 && errno != EEXIST) {
		relay_fmt(err, errlen, "cannot create %s: %s", st->dir,
		    strerror(errno));
		free(st);
		return RELAY_TLSRPT_EIO;
	}
	today(st, st->day);
	int r = load_today(st, err, errlen);
	if (r != 0) {
		relay_tlsrpt_table_free(&st->t);
		free(st);
		return r;
	}
	uv_timer_init(loop, &st->timer);
	st->timer.data = st;
	uv_timer_start(&st->timer, tick, FLUSH_MS, FLUSH_MS);
	*out = st;
	return 0;
}

void
relay_tlsrpt_store_set_compact(struct relay_tlsrpt_store *st, uint64_t bytes)
{
	st->compact_at = bytes;
}

void
relay_tlsrpt_store_close(struct relay_tlsrpt_store *st, void (*cb)(void *arg),
    void *arg)
{
	st->closing = true;
	st->close_cb = cb;
	st->close_arg = arg;
	uv_timer_stop(&st->timer);
	if (!st->busy)
		tick(&st->timer);
	if (!st->busy)
		uv_close((uv_handle_t *)&st->timer, timer_closed);
}
