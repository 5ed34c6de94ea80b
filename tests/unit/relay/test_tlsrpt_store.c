/*
 * Unit tests for relay_tlsrpt_store and the journal: counts reach the disk
 * within a flush, a restart rebuilds them from the journal, a torn last
 * line (a kill -9 in mid-write) is cut off, the day rolls over with the
 * finished day's file compacted, and the table refuses what would break a
 * line. A real libuv loop and thread pool; the day comes from a manual
 * clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "relay_tlsrpt.h"

/* 2026-12-07 12:00:00 UTC */
#define NOON_US (1796644800ull * 1000000u)
#define DAY_US (86400ull * 1000000u)

struct fx {
	char spool[64];
	char dir[128];
	uv_loop_t loop;
	struct relay_clock_manual clock;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->spool, sizeof(f->spool), "/tmp/tlsrpt-test-XXXXXX");
	assert_non_null(mkdtemp(f->spool));
	snprintf(f->dir, sizeof(f->dir), "%s/tlsrpt", f->spool);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	relay_clock_manual_init(&f->clock, 1, NOON_US);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	assert_int_equal(uv_loop_close(&f->loop), 0);
	DIR *d = opendir(f->dir);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		char p[400];
		snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
		if (e->d_name[0] != '.')
			assert_int_equal(unlink(p), 0);
	}
	if (d != NULL)
		closedir(d);
	(void)rmdir(f->dir);
	assert_int_equal(rmdir(f->spool), 0);
	free(f);
	return 0;
}

static void
stop_loop(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Runs the loop for ms of real time (the store's flush timer). */
static void
run_for(uv_loop_t *loop, uint64_t ms)
{
	uv_timer_t t;
	uv_timer_init(loop, &t);
	uv_timer_start(&t, stop_loop, ms, 0);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

static void
closed(void *arg)
{
	*(bool *)arg = true;
}

static void
close_store(uv_loop_t *loop, struct relay_tlsrpt_store *st)
{
	bool done = false;
	relay_tlsrpt_store_close(st, closed, &done);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_true(done);
}

static const struct relay_tlsrpt_session ok = {
	.domain = "dane.example",
	.type = RELAY_TLSRPT_POLICY_TLSA,
	.policy = "3 1 1 aabb",
	.policy_mx = "mx.dane.example",
	.receiving_mx = "mx.dane.example",
	.receiving_ip = "127.0.0.1",
};
static const struct relay_tlsrpt_session bad = {
	.domain = "dane.example",
	.type = RELAY_TLSRPT_POLICY_TLSA,
	.policy = "3 1 1 aabb",
	.policy_mx = "mx.dane.example",
	.result = "validation-failure",
	.reason_code = "tlsa-mismatch",
	.sending_ip = "127.0.0.2",
	.receiving_mx = "mx.dane.example",
	.receiving_ip = "127.0.0.1",
};

/* Sums of the day's file as `tlsrpt show` reads it. */
static void
counts(const struct fx *f, const char *day, uint64_t *good, uint64_t *fail)
{
	struct relay_tlsrpt_table t;
	relay_tlsrpt_table_init(&t);
	char err[300];
	assert_int_equal(relay_tlsrpt_table_read_day(&t, f->dir, day, err,
	                     sizeof(err)),
	    0);
	*good = *fail = 0;
	for (size_t i = 0; i < t.nrows; i++) {
		if (t.rows[i].result[0])
			*fail += t.rows[i].count;
		else
			*good += t.rows[i].count;
	}
	relay_tlsrpt_table_free(&t);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	char *b = calloc(1, 1 << 20);
	*len = fread(b, 1, (1 << 20) - 1, fp);
	fclose(fp);
	return b;
}

static void
spit(const char *path, const char *p, size_t len)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, len, fp), len);
	fclose(fp);
}

static void
test_flush_and_replay(void **state)
{
	struct fx *f = *state;
	struct relay_tlsrpt_store *st;
	char err[300];
	assert_int_equal(relay_tlsrpt_store_open(&f->loop, &f->clock.clock,
	                     f->spool, &st, err, sizeof(err)),
	    0);
	for (int i = 0; i < 3; i++)
		relay_tlsrpt_store_note(st, &ok);
	relay_tlsrpt_store_note(st, &bad);
	uint64_t g, b;
	counts(f, "2026-12-07", &g, &b);
	assert_int_equal(g, 0); /* not yet: the flush is due within 1 s */
	run_for(&f->loop, 1300);
	counts(f, "2026-12-07", &g, &b);
	assert_int_equal(g, 3);
	assert_int_equal(b, 1);

	/* What a kill -9 now would leave: the journal as it is, plus the
	 * start of a line whose write was cut short. */
	char path[256];
	snprintf(path, sizeof(path), "%s/2026-12-07.log", f->dir);
	size_t len;
	char *snap = slurp(path, &len);
	relay_tlsrpt_store_note(st, &ok);
	close_store(&f->loop, st);
	counts(f, "2026-12-07", &g, &b);
	assert_int_equal(g, 4); /* a clean stop writes everything */

	const char torn[] = "t1\t2026-12-07\tdane.example\ttlsa\tmx.d";
	memcpy(snap + len, torn, sizeof(torn) - 1);
	spit(path, snap, len + sizeof(torn) - 1);
	/* show tolerates the torn tail too. */
	counts(f, "2026-12-07", &g, &b);
	assert_int_equal(g, 3);
	assert_int_equal(b, 1);

	/* Restart: the counts come back from the journal, the torn line is
	 * cut off, and counting goes on from there. */
	assert_int_equal(relay_tlsrpt_store_open(&f->loop, &f->clock.clock,
	                     f->spool, &st, err, sizeof(err)),
	    0);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal((size_t)sb.st_size, len);
	relay_tlsrpt_store_note(st, &bad);
	close_store(&f->loop, st);
	counts(f, "2026-12-07", &g, &b);
	assert_int_equal(g, 3);
	assert_int_equal(b, 2);
	free(snap);
}

static void
test_rollover(void **state)
{
	struct fx *f = *state;
	struct relay_tlsrpt_store *st;
	char err[300];
	assert_int_equal(relay_tlsrpt_store_open(&f->loop, &f->clock.clock,
	                     f->spool, &st, err, sizeof(err)),
	    0);
	/* Two flushes of the same row: two journal lines. */
	relay_tlsrpt_store_note(st, &ok);
	run_for(&f->loop, 1200);
	relay_tlsrpt_store_note(st, &ok);
	relay_tlsrpt_store_note(st, &bad);
	run_for(&f->loop, 1200);
	char path[256];
	snprintf(path, sizeof(path), "%s/2026-12-07.log", f->dir);
	size_t len;
	char *p = slurp(path, &len);
	int lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += p[i] == '\n';
	assert_int_equal(lines, 3);
	free(p);

	/* Midnight: new sessions count for the new day; the old day's
	 * file is compacted to one line per row. */
	relay_clock_manual_advance(&f->clock, DAY_US / 2 + 1000000u);
	relay_tlsrpt_store_note(st, &bad);
	run_for(&f->loop, 1300);
	uint64_t g, b;
	counts(f, "2026-12-07", &g, &b);
	assert_int_equal(g, 2);
	assert_int_equal(b, 1);
	counts(f, "2026-12-08", &g, &b);
	assert_int_equal(g, 0);
	assert_int_equal(b, 1);
	p = slurp(path, &len);
	lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += p[i] == '\n';
	assert_int_equal(lines, 2);
	free(p);
	close_store(&f->loop, st);
}

static int
count_lines(const char *path)
{
	size_t len;
	char *p = slurp(path, &len);
	int lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += p[i] == '\n';
	free(p);
	return lines;
}

/* The running day's journal past its limit is rewritten with one line per
 * row, the counts unchanged, and appending goes on after it. */
static void
test_compact_running_day(void **state)
{
	struct fx *f = *state;
	struct relay_tlsrpt_store *st;
	char err[300], path[256];
	snprintf(path, sizeof(path), "%s/2026-12-07.log", f->dir);
	assert_int_equal(relay_tlsrpt_store_open(&f->loop, &f->clock.clock,
	                     f->spool, &st, err, sizeof(err)),
	    0);
	relay_tlsrpt_store_set_compact(st, 300);
	relay_tlsrpt_store_note(st, &ok);
	relay_tlsrpt_store_note(st, &bad);
	run_for(&f->loop, 1200);
	assert_int_equal(count_lines(path), 2); /* ~180 bytes */
	relay_tlsrpt_store_note(st, &ok);
	relay_tlsrpt_store_note(st, &bad);
	run_for(&f->loop, 1100);
	assert_int_equal(count_lines(path), 4); /* past 300 bytes now */
	run_for(&f->loop, 1100);                /* the rewrite */
	assert_int_equal(count_lines(path), 2);
	uint64_t g, b;
	counts(f, "2026-12-07", &g, &b);
	assert_int_equal(g, 2);
	assert_int_equal(b, 2);
	relay_tlsrpt_store_set_compact(st, 1u << 20);
	relay_tlsrpt_store_note(st, &ok);
	close_store(&f->loop, st);
	assert_int_equal(count_lines(path), 3);
	counts(f, "2026-12-07", &g, &b);
	assert_int_equal(g, 3);
	assert_int_equal(b, 2);
}

/* A file that does not parse is reported by show with its line, and set
 * aside by the daemon, which starts counting afresh. */
static void
test_corrupt(void **state)
{
	struct fx *f = *state;
	char path[256], err[300];
	assert_int_equal(mkdir(f->dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/2026-12-07.log", f->dir);
	spit(path, "garbage\n", 8);
	struct relay_tlsrpt_table t;
	relay_tlsrpt_table_init(&t);
	assert_int_equal(relay_tlsrpt_table_read_day(&t, f->dir, "2026-12-07",
	                     err, sizeof(err)),
	    RELAY_TLSRPT_EFORMAT);
	assert_non_null(strstr(err, "line 1"));
	relay_tlsrpt_table_free(&t);
	/* No store at all is an error for show, not an empty report. */
	relay_tlsrpt_table_init(&t);
	assert_int_equal(relay_tlsrpt_table_read_day(&t, "/nonexistent/x",
	                     "2026-12-07", err, sizeof(err)),
	    RELAY_TLSRPT_EIO);
	relay_tlsrpt_table_free(&t);

	struct relay_tlsrpt_store *st;
	assert_int_equal(relay_tlsrpt_store_open(&f->loop, &f->clock.clock,
	                     f->spool, &st, err, sizeof(err)),
	    0);
	relay_tlsrpt_store_note(st, &ok);
	close_store(&f->loop, st);
	uint64_t g, b;
	counts(f, "2026-12-07", &g, &b);
	assert_int_equal(g, 1);
	char aside[300];
	snprintf(aside, sizeof(aside), "%s.bad", path);
	assert_int_equal(access(aside, F_OK), 0);
}

static void
test_table_refuses(void **state)
{
	(void)state;
	struct relay_tlsrpt_table t;
	relay_tlsrpt_table_init(&t);
	struct relay_tlsrpt_session s = ok;
	s.receiving_mx = "mx\tevil";
	assert_int_equal(relay_tlsrpt_table_add(&t, "2026-12-07", &s, 1, NULL),
	    RELAY_TLSRPT_EINVAL);
	s = ok;
	s.domain = "";
	assert_int_equal(relay_tlsrpt_table_add(&t, "2026-12-07", &s, 1, NULL),
	    RELAY_TLSRPT_EINVAL);
	assert_int_equal(relay_tlsrpt_table_add(&t, "yesterday", &ok, 1, NULL),
	    RELAY_TLSRPT_EINVAL);
	/* Bounded: RELAY_TLSRPT_ROWS_MAX rows, then EFULL for new rows only. */
	char ip[32];
	for (unsigned i = 0; i < RELAY_TLSRPT_ROWS_MAX; i++) {
		s = bad;
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16, (i >> 8) & 255,
		    i & 255);
		s.receiving_ip = ip;
		assert_int_equal(relay_tlsrpt_table_add(&t, "2026-12-07", &s, 1,
		                     NULL),
		    0);
	}
	assert_int_equal(relay_tlsrpt_table_add(&t, "2026-12-07", &ok, 1, NULL),
	    RELAY_TLSRPT_EFULL);
	assert_int_equal(relay_tlsrpt_table_add(&t, "2026-12-07", &s, 1, NULL),
	    0);
	assert_int_equal(t.nrows, RELAY_TLSRPT_ROWS_MAX);
	relay_tlsrpt_table_free(&t);
	/* Malformed lines. */
	static const char *const lines[] = {
		"t2\t2026-12-07\td\ttlsa\t\t\t\t\t\t\t\t1\n",
		"t1\t2026-12-07\td\tbogus\t\t\t\t\t\t\t\t1\n",
		"t1\t2026-12-07\td\ttlsa\t\t\t\t\t\t\t\tx\n",
		"t1\t2026-12-07\td\ttlsa\t\t\t\t\t\t\t1\n",
		"t1\t2026-12-07\t\ttlsa\t\t\t\t\t\t\t\t1\n",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		relay_tlsrpt_table_init(&t);
		size_t badl = 0;
		assert_int_equal(relay_tlsrpt_table_load(&t, lines[i],
		                     strlen(lines[i]), NULL, &badl),
		    RELAY_TLSRPT_EFORMAT);
		assert_int_equal(badl, 1);
		relay_tlsrpt_table_free(&t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flush_and_replay, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rollover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compact_running_day, setup,
		    teardown),
		cmocka_unit_test(test_table_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
