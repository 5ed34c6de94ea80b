/*
 * Unit tests for relay_control's engine (relay/control/relay_control.c): hold,
 * release, delete and retry applied to a real temporary spool on a real
 * libuv loop, as `serve` (through the control socket) and the CLI (on a
 * locked spool) both use it. The "delivery in flight" hook is scripted.
 * Every test ends with uv_loop_close() == 0: a leaked handle fails it.
 * The socket side is exercised against a real `serve` by
 * test_cli_queue.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay_control.h"
#include "relay_log.h"
#include "relay_queue.h"

#define MAXR 16

struct fx {
	char dir[256];
	uv_loop_t loop;
	struct relay_queue *q;
	char ids[4][RELAY_QUEUE_ID_SIZE];
	/* results */
	char rid[MAXR][RELAY_QUEUE_ID_SIZE];
	int rstatus[MAXR];
	char rtext[MAXR][128];
	size_t nres;
	size_t done_calls, nok, nerr;
	size_t kicks;
	/* the scripted "delivery in flight" hook */
	unsigned active_calls;
	unsigned active_from,
	    active_until; /* true for calls in [from, until) */
};

static void
rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char p[1024];

	if (d == NULL) {
		(void)unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		(void)snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		rm_rf(p);
	}
	(void)closedir(d);
	(void)rmdir(path);
}

static void
commit_cb(struct relay_queue_writer *w, int status, const char *id, void *arg)
{
	char *out = arg;
	(void)w;
	assert_int_equal(status, 0);
	memcpy(out, id, RELAY_QUEUE_ID_SIZE);
}

static void
put(struct fx *f, char *id_out, const char *rcpt)
{
	struct relay_queue_envelope *env = relay_queue_envelope_new();
	struct relay_queue_writer *w;
	static const char body[] = "Subject: t\r\n\r\nhi\r\n";

	assert_non_null(env);
	assert_int_equal(relay_queue_set_str(&env->sender, "s@example.org"), 0);
	assert_int_equal(relay_queue_rcpt_add(env, rcpt, "", 0, NULL), 0);
	assert_int_equal(relay_queue_msg_begin(f->q, env, &w), 0);
	assert_int_equal(relay_queue_writer_write(w, body, sizeof(body) - 1,
	                     NULL, NULL),
	    0);
	assert_int_equal(relay_queue_writer_commit(w, commit_cb, id_out), 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	relay_queue_envelope_free(env);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	(void)snprintf(f->dir, sizeof(f->dir), "/tmp/danerelay-control-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	relay_log_set_stderr(false);
	assert_int_equal(relay_queue_open(&f->loop, f->dir, &f->q, err,
	                     sizeof(err)),
	    0);
	put(f, f->ids[0], "a@one.example");
	put(f, f->ids[1], "b@two.example");
	put(f, f->ids[2], "c@two.example");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	relay_queue_close(f->q, NULL, NULL);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static void
on_result(void *arg, const char *id, int status, const char *text)
{
	struct fx *f = arg;
	assert_true(f->nres < MAXR);
	(void)snprintf(f->rid[f->nres], sizeof(f->rid[0]), "%s", id);
	f->rstatus[f->nres] = status;
	(void)snprintf(f->rtext[f->nres], sizeof(f->rtext[0]), "%s", text);
	f->nres++;
}

static void
on_done(void *arg, size_t nok, size_t nerr)
{
	struct fx *f = arg;
	f->done_calls++;
	f->nok = nok;
	f->nerr = nerr;
}

static bool
scripted_active(void *arg, const char *id)
{
	struct fx *f = arg;
	unsigned n = f->active_calls++;
	(void)id;
	return n >= f->active_from && n < f->active_until;
}

static void
count_kick(void *arg)
{
	struct fx *f = arg;
	f->kicks++;
}

/* Runs cmd to completion; asserts that no callback ran inside the call. */
static void
run(struct fx *f, enum relay_control_cmd cmd, const char *const *ids, size_t n,
    bool all, uint64_t wait_ms)
{
	struct relay_control_hooks h = {
		.is_active = scripted_active,
		.kick = count_kick,
		.arg = f,
		.busy_wait_ms = wait_ms,
	};
	f->nres = 0;
	f->done_calls = 0;
	assert_int_equal(relay_control_exec(&f->loop, f->q, &h, cmd, ids, n,
	                     all, on_result, on_done, f, NULL),
	    0);
	assert_int_equal(f->nres, 0);
	assert_int_equal(f->done_calls, 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->nok + f->nerr, f->nres);
}

static struct relay_queue_envelope *
disk(struct fx *f, const char *id)
{
	struct relay_queue_envelope *env = NULL;
	assert_int_equal(relay_queue_read(f->dir, id, &env), 0);
	return env;
}

static void
test_hold_release(void **state)
{
	struct fx *f = *state;
	const char *ids[] = { f->ids[0] };
	struct relay_queue_info info;
	struct relay_queue_envelope *env;

	run(f, RELAY_CONTROL_HOLD, ids, 1, false, 0);
	assert_int_equal(f->nok, 1);
	assert_string_equal(f->rid[0], f->ids[0]);
	assert_string_equal(f->rtext[0], "held");
	assert_int_equal(relay_queue_lookup(f->q, f->ids[0], &info), 0);
	assert_true(info.hold);
	env = disk(f, f->ids[0]);
	assert_true(env->hold);
	relay_queue_envelope_free(env);
	assert_int_equal(f->kicks, 0);

	run(f, RELAY_CONTROL_HOLD, ids, 1, false, 0);
	assert_string_equal(f->rtext[0], "already held");

	run(f, RELAY_CONTROL_RELEASE, ids, 1, false, 0);
	assert_string_equal(f->rtext[0], "released");
	env = disk(f, f->ids[0]);
	assert_false(env->hold);
	relay_queue_envelope_free(env);
	assert_int_equal(f->kicks, 1);

	run(f, RELAY_CONTROL_RELEASE, ids, 1, false, 0);
	assert_string_equal(f->rtext[0], "was not held");
}

static void
test_unknown_id(void **state)
{
	struct fx *f = *state;
	const char *ids[] = { "00000000000001", f->ids[1] };

	run(f, RELAY_CONTROL_HOLD, ids, 2, false, 0);
	assert_int_equal(f->nok, 1);
	assert_int_equal(f->nerr, 1);
	for (size_t i = 0; i < 2; i++) {
		if (strcmp(f->rid[i], "00000000000001") == 0) {
			assert_int_equal(f->rstatus[i], RELAY_CONTROL_ENOENT);
			assert_string_equal(f->rtext[i],
			    "no such message in the queue");
		} else {
			assert_int_equal(f->rstatus[i], 0);
		}
	}
}

static void
test_all(void **state)
{
	struct fx *f = *state;
	const char *one[] = { f->ids[1] };
	struct relay_queue_info info;

	run(f, RELAY_CONTROL_HOLD, one, 1, false, 0);
	/* hold --all: only those not held yet. */
	run(f, RELAY_CONTROL_HOLD, NULL, 0, true, 0);
	assert_int_equal(f->nok, 2);
	assert_int_equal(f->nerr, 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(relay_queue_lookup(f->q, f->ids[i], &info), 0);
		assert_true(info.hold);
	}
	/* retry --all skips held messages. */
	run(f, RELAY_CONTROL_RETRY, NULL, 0, true, 0);
	assert_int_equal(f->nres, 0);
	run(f, RELAY_CONTROL_RELEASE, NULL, 0, true, 0);
	assert_int_equal(f->nok, 3);
	run(f, RELAY_CONTROL_DELETE, NULL, 0, true, 0);
	assert_int_equal(f->nok, 3);
	assert_int_equal(relay_queue_count(f->q), 0);
	/* Nothing left: done with no result. */
	run(f, RELAY_CONTROL_DELETE, NULL, 0, true, 0);
	assert_int_equal(f->nres, 0);
}

/* An update of one message's envelope, as the scheduler writes it. */
static void
upd_cb(int status, void *arg)
{
	(void)arg;
	assert_int_equal(status, 0);
}

static void
test_retry(void **state)
{
	struct fx *f = *state;
	const char *ids[] = { f->ids[2] };
	struct relay_queue_envelope *env = disk(f, f->ids[2]);

	env->rcpt[0].status = RELAY_QUEUE_RCPT_DEFERRED;
	env->rcpt[0].next_attempt_us = 4000000000000000ull;
	env->rcpt[0].attempts = 2;
	assert_int_equal(relay_queue_update(f->q, env, upd_cb, NULL), 0);
	relay_queue_envelope_free(env);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);

	run(f, RELAY_CONTROL_RETRY, ids, 1, false, 0);
	assert_string_equal(f->rtext[0], "scheduled for delivery now");
	assert_int_equal(f->kicks, 1);
	env = disk(f, f->ids[2]);
	assert_int_equal(env->rcpt[0].next_attempt_us, 0);
	assert_int_equal(env->rcpt[0].status, RELAY_QUEUE_RCPT_DEFERRED);
	assert_int_equal(env->rcpt[0].attempts, 2); /* nothing else changed */
	relay_queue_envelope_free(env);

	/* A message with nothing open left. */
	env = disk(f, f->ids[2]);
	env->rcpt[0].status = RELAY_QUEUE_RCPT_SENT;
	assert_int_equal(relay_queue_update(f->q, env, upd_cb, NULL), 0);
	relay_queue_envelope_free(env);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	run(f, RELAY_CONTROL_RETRY, ids, 1, false, 0);
	assert_string_equal(f->rtext[0], "nothing left to deliver");
}

static void
test_delete(void **state)
{
	struct fx *f = *state;
	const char *ids[] = { f->ids[0] };
	char p[600];
	struct relay_queue_envelope *env;

	run(f, RELAY_CONTROL_DELETE, ids, 1, false, 0);
	assert_string_equal(f->rtext[0], "deleted");
	assert_int_equal(relay_queue_read(f->dir, f->ids[0], &env),
	    RELAY_QUEUE_ENOENT);
	(void)snprintf(p, sizeof(p), "%s/queue/%s.msg", f->dir, f->ids[0]);
	assert_int_not_equal(access(p, F_OK), 0);
	run(f, RELAY_CONTROL_DELETE, ids, 1, false, 0);
	assert_int_equal(f->rstatus[0], RELAY_CONTROL_ENOENT);
}

/* Being delivered the whole time: delete and hold give up with "busy",
 * retry says the delivery is that attempt; nothing changes. */
static void
test_busy(void **state)
{
	struct fx *f = *state;
	const char *ids[] = { f->ids[1] };
	struct relay_queue_info info;
	uint64_t t0 = uv_now(&f->loop);

	f->active_from = 0;
	f->active_until = 1000000;
	run(f, RELAY_CONTROL_DELETE, ids, 1, false, 200);
	assert_true(uv_now(&f->loop) - t0 >= 200);
	assert_int_equal(f->rstatus[0], RELAY_CONTROL_EBUSY);
	assert_string_equal(f->rtext[0],
	    "busy: being delivered right now, try again");
	assert_int_equal(relay_queue_lookup(f->q, f->ids[1], &info), 0);

	run(f, RELAY_CONTROL_HOLD, ids, 1, false, 150);
	assert_int_equal(f->rstatus[0], RELAY_CONTROL_EBUSY);
	assert_int_equal(relay_queue_lookup(f->q, f->ids[1], &info), 0);
	assert_false(info.hold);

	run(f, RELAY_CONTROL_RETRY, ids, 1, false, 150);
	assert_int_equal(f->rstatus[0], 0);
	assert_string_equal(f->rtext[0], "being delivered now");
}

/* A delivery in flight that ends within the wait: the change waits for
 * it, then applies. */
static void
test_waits_for_delivery(void **state)
{
	struct fx *f = *state;
	const char *ids[] = { f->ids[1] };
	struct relay_queue_info info;

	f->active_from = 0;
	f->active_until = 3; /* the first three looks see it active */
	run(f, RELAY_CONTROL_DELETE, ids, 1, false, 5000);
	assert_int_equal(f->rstatus[0], 0);
	assert_string_equal(f->rtext[0], "deleted");
	assert_true(f->active_calls >= 4);
	assert_int_equal(relay_queue_lookup(f->q, f->ids[1], &info),
	    RELAY_QUEUE_ENOENT);
}

/* A delivery that starts between the read and the write of a hold (the
 * third look, right after the update) may write its older copy back: the
 * engine waits for it and checks the hold again before answering. */
static void
test_hold_race(void **state)
{
	struct fx *f = *state;
	const char *ids[] = { f->ids[2] };
	struct relay_queue_info info;

	f->active_from = 2;
	f->active_until = 4;
	run(f, RELAY_CONTROL_HOLD, ids, 1, false, 5000);
	assert_int_equal(f->rstatus[0], 0);
	assert_string_equal(f->rtext[0], "held");
	assert_true(f->active_calls >= 5);
	assert_int_equal(relay_queue_lookup(f->q, f->ids[2], &info), 0);
	assert_true(info.hold);
}

/* Cancelled at once: no callback, the loop still ends with nothing
 * open (teardown checks uv_loop_close). */
static void
test_cancel(void **state)
{
	struct fx *f = *state;
	const char *ids[] = { f->ids[0], f->ids[1] };
	struct relay_control_exec *x = NULL;
	struct relay_control_hooks h = { .is_active = scripted_active,
		.arg = f };

	f->nres = 0;
	f->done_calls = 0;
	assert_int_equal(relay_control_exec(&f->loop, f->q, &h,
	                     RELAY_CONTROL_HOLD, ids, 2, false, on_result,
	                     on_done, f, &x),
	    0);
	assert_non_null(x);
	relay_control_exec_cancel(x);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(f->nres, 0);
	assert_int_equal(f->done_calls, 0);
}

/* Cancelled while its removals are in the thread pool: they complete (the
 * queue is never left half-changed) but nobody is told any more. */
static size_t cancel_results;

static void
cancel_after_first(void *arg, const char *id, int status, const char *text)
{
	struct relay_control_exec **xp = arg;
	(void)id;
	(void)status;
	(void)text;
	cancel_results++;
	relay_control_exec_cancel(*xp);
}

static void
test_cancel_in_flight(void **state)
{
	struct fx *f = *state;
	const char *ids[] = { f->ids[0], f->ids[1], f->ids[2] };
	struct relay_control_exec *x = NULL;

	cancel_results = 0;
	f->done_calls = 0;
	assert_int_equal(relay_control_exec(&f->loop, f->q, NULL,
	                     RELAY_CONTROL_DELETE, ids, 3, false,
	                     cancel_after_first, on_done, &x, &x),
	    0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(cancel_results, 1);
	assert_int_equal(f->done_calls, 0);
	/* All three removals were handed to the queue and completed. */
	assert_int_equal(relay_queue_count(f->q), 0);
}

static void
test_names(void **state)
{
	enum relay_control_cmd c;
	char p[200];
	(void)state;

	for (int i = RELAY_CONTROL_HOLD; i <= RELAY_CONTROL_RETRY; i++) {
		assert_int_equal(
		    relay_control_cmd_parse(relay_control_cmd_name(
		                                (enum relay_control_cmd)i),
		        &c),
		    0);
		assert_int_equal((int)c, i);
	}
	assert_int_equal(relay_control_cmd_parse("purge", &c), -1);
	assert_int_equal(relay_control_path("/var/spool/danerelay", p,
	                     sizeof(p)),
	    0);
	assert_string_equal(p, "/var/spool/danerelay/control");
	char longdir[150];
	memset(longdir, 'x', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = '\0';
	assert_int_equal(relay_control_path(longdir, p, sizeof(p)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hold_release, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unknown_id, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waits_for_delivery, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hold_race, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_in_flight, setup,
		    teardown),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
