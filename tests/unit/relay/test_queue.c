/*
 * Unit tests for relay_queue (relay_queue.c, relay_queue_env.c): a real
 * temporary spool directory and a real libuv loop. Every test ends with
 * uv_loop_close() == 0, so a leaked request or handle fails it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay_log.h"
#include "relay_queue.h"
#include "queue_int.h"

struct fx {
	char dir[256];
	uv_loop_t loop;
	struct relay_queue *q;
	/* When set, the queue's clock, also after a reopen. */
	struct relay_clock_manual *clock;
};

/* ---- helpers ---- */

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

static size_t
count_files(const char *dir, const char *sub)
{
	char p[1024];
	DIR *d;
	struct dirent *de;
	size_t n = 0;

	(void)snprintf(p, sizeof(p), "%s/%s", dir, sub);
	d = opendir(p);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	(void)closedir(d);
	return n;
}

static void
write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static char *
read_path(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	(void)fclose(f);
	*len = (size_t)n;
	return buf;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	(void)snprintf(f->dir, sizeof(f->dir), "/tmp/danerelay-queue-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(relay_queue_open(&f->loop, f->dir, &f->q, err,
	                     sizeof(err)),
	    0);
	relay_log_set_stderr(false);
	*state = f;
	return 0;
}

static void
closed_cb(void *arg)
{
	*(int *)arg += 1;
}

static void
queue_close(struct fx *f)
{
	int closed = 0;

	if (f->q == NULL)
		return;
	relay_queue_close(f->q, closed_cb, &closed);
	assert_int_equal(closed, 0); /* never from inside the call */
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(closed, 1);
	f->q = NULL;
}

static void
queue_reopen(struct fx *f)
{
	char err[256];

	queue_close(f);
	assert_int_equal(relay_queue_open(&f->loop, f->dir, &f->q, err,
	                     sizeof(err)),
	    0);
	if (f->clock != NULL)
		relay_queue_set_clock(f->q, &f->clock->clock);
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	queue__fault = NULL;
	f->clock = NULL;
	queue_close(f);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	rm_rf(f->dir);
	relay_log_reset();
	free(f);
	return 0;
}

static struct relay_queue_envelope *
make_env(const char *sender, size_t nrcpt)
{
	struct relay_queue_envelope *env = relay_queue_envelope_new();
	char addr[64];

	assert_non_null(env);
	assert_int_equal(relay_queue_set_str(&env->sender, sender), 0);
	assert_int_equal(relay_queue_set_str(&env->client_addr, "127.0.0.1"),
	    0);
	assert_int_equal(relay_queue_set_str(&env->helo, "localhost"), 0);
	env->ret = RELAY_QUEUE_RET_HDRS;
	env->body = RELAY_QUEUE_BODY_8BITMIME;
	for (size_t i = 0; i < nrcpt; i++) {
		(void)snprintf(addr, sizeof(addr), "rcpt%zu@example.net", i);
		assert_int_equal(relay_queue_rcpt_add(env, addr,
		                     i == 0 ? "rfc822;orig@example.net" : NULL,
		                     RELAY_QUEUE_NOTIFY_FAILURE |
		                         RELAY_QUEUE_NOTIFY_DELAY,
		                     NULL),
		    0);
	}
	return env;
}

struct commit_res {
	int calls;
	int status;
	char id[RELAY_QUEUE_ID_SIZE];
};

static void
commit_cb(struct relay_queue_writer *w, int status, const char *id, void *arg)
{
	struct commit_res *r = arg;

	(void)w;
	r->calls++;
	r->status = status;
	(void)snprintf(r->id, sizeof(r->id), "%s", id);
}

/* Receives one message with content data/len; returns the commit result. */
static struct commit_res
put_message(struct fx *f, struct relay_queue_envelope *env, const char *data,
    size_t len, size_t piece)
{
	struct relay_queue_writer *w;
	struct commit_res r = { 0 };

	assert_int_equal(relay_queue_msg_begin(f->q, env, &w), 0);
	assert_string_equal(relay_queue_writer_id(w), env->id);
	for (size_t o = 0; o < len; o += piece) {
		size_t n = len - o < piece ? len - o : piece;
		int rc = relay_queue_writer_write(w, data + o, n, NULL, NULL);
		if (rc != 0)
			break;
	}
	assert_int_equal(relay_queue_writer_commit(w, commit_cb, &r), 0);
	assert_int_equal(r.calls, 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(r.calls, 1);
	return r;
}

static int
collect_ids(const struct relay_queue_info *info, void *arg)
{
	char(*ids)[RELAY_QUEUE_ID_SIZE] = arg;
	size_t i = 0;

	while (ids[i][0] != '\0')
		i++;
	memcpy(ids[i], info->id, RELAY_QUEUE_ID_SIZE);
	return 0;
}

/* ---- envelope file format ---- */

static struct relay_queue_envelope *
rich_env(void)
{
	struct relay_queue_envelope *env = make_env("a b%c\"\xc3\xa9@x", 2);
	struct relay_queue_attempt *a;

	memcpy(env->id, "00064A1B2C3D4E", RELAY_QUEUE_ID_SIZE);
	env->arrival_us = 1732288081123456u;
	env->size = 4242;
	env->smtputf8 = true;
	env->hold = true;
	assert_int_equal(relay_queue_set_str(&env->envid, "env+2Did"), 0);
	env->rcpt[1].status = RELAY_QUEUE_RCPT_DEFERRED;
	env->rcpt[1].next_attempt_us = 1732288999000000u;
	env->rcpt[1].delay_warned = true;
	assert_int_equal(relay_queue_set_str(&env->rcpt[1].dsn, "4.7.5"), 0);
	assert_int_equal(relay_queue_set_str(&env->rcpt[1].failure_class,
	                     "tlsa-mismatch"),
	    0);
	assert_int_equal(relay_queue_set_str(&env->rcpt[1].reason,
	                     "no TLSA record matched\r\nthe certificate"),
	    0);
	assert_int_equal(relay_queue_attempt_add(&env->rcpt[1], &a), 0);
	a->time_us = 1732288090000000u;
	assert_int_equal(relay_queue_set_str(&a->mx_host, "mx.example.net"), 0);
	assert_int_equal(relay_queue_set_str(&a->tlsa, "3 1 1 ab12; 2 1 1 cd"),
	    0);
	assert_int_equal(relay_queue_set_str(&a->reply, "250 2.0.0 Ok %41"), 0);
	return env;
}

static void
assert_env_equal(const struct relay_queue_envelope *a,
    const struct relay_queue_envelope *b)
{
	size_t la, lb;
	char *fa = relay_queue_envelope_format(a, &la);
	char *fb = relay_queue_envelope_format(b, &lb);

	assert_non_null(fa);
	assert_non_null(fb);
	assert_int_equal(la, lb);
	assert_memory_equal(fa, fb, la);
	free(fa);
	free(fb);
}

static void
test_env_roundtrip(void **state)
{
	struct relay_queue_envelope *env = rich_env(), *back = NULL, *dup;
	size_t len;
	char *text = relay_queue_envelope_format(env, &len);

	(void)state;
	assert_non_null(text);
	/* Percent-encoding keeps every value one token on one line. */
	assert_non_null(strstr(text, "sender a%20b%25c\"%C3%A9@x\n"));
	assert_int_equal(relay_queue_envelope_parse((const uint8_t *)text, len,
	                     &back),
	    0);
	assert_string_equal(back->sender, env->sender);
	assert_string_equal(back->id, "00064A1B2C3D4E");
	assert_int_equal(back->arrival_us, env->arrival_us);
	assert_true(back->hold);
	assert_true(back->smtputf8);
	assert_int_equal(back->ret, RELAY_QUEUE_RET_HDRS);
	assert_int_equal(back->body, RELAY_QUEUE_BODY_8BITMIME);
	assert_int_equal(back->rcpt_count, 2);
	assert_string_equal(back->rcpt[0].orcpt, "rfc822;orig@example.net");
	assert_int_equal(back->rcpt[0].notify,
	    RELAY_QUEUE_NOTIFY_FAILURE | RELAY_QUEUE_NOTIFY_DELAY);
	assert_int_equal(back->rcpt[1].status, RELAY_QUEUE_RCPT_DEFERRED);
	assert_string_equal(back->rcpt[1].reason,
	    "no TLSA record matched\r\nthe certificate");
	assert_int_equal(back->rcpt[1].attempts, 1);
	assert_int_equal(back->rcpt[1].attempt_count, 1);
	assert_string_equal(back->rcpt[1].attempt[0].tlsa,
	    "3 1 1 ab12; 2 1 1 cd");
	assert_string_equal(back->rcpt[1].attempt[0].reply, "250 2.0.0 Ok %41");
	assert_env_equal(env, back);
	dup = relay_queue_envelope_dup(env);
	assert_non_null(dup);
	assert_env_equal(env, dup);
	relay_queue_envelope_free(dup);
	relay_queue_envelope_free(back);
	relay_queue_envelope_free(env);
	free(text);
}

/* The REQUIRETLS tag (RFC 8689 4.1) is durable: it survives the
 * envelope file and a dup; an envelope written before the key existed
 * reads as untagged; a bad value makes the file corrupt. */
static void
test_env_requiretls(void **state)
{
	struct relay_queue_envelope *env = rich_env(), *back = NULL, *dup;
	size_t len;
	char *text;

	(void)state;
	env->requiretls = true;
	text = relay_queue_envelope_format(env, &len);
	assert_non_null(text);
	assert_non_null(strstr(text, "\nrequiretls yes\n"));
	assert_int_equal(relay_queue_envelope_parse((const uint8_t *)text, len,
	                     &back),
	    0);
	assert_true(back->requiretls);
	assert_env_equal(env, back);
	dup = relay_queue_envelope_dup(env);
	assert_non_null(dup);
	assert_true(dup->requiretls);
	relay_queue_envelope_free(dup);
	relay_queue_envelope_free(back);
	back = NULL;

	/* Without the line (an older envelope): not tagged. */
	char *line = strstr(text, "requiretls yes\n");
	size_t ll = strlen("requiretls yes\n");
	memmove(line, line + ll, len - (size_t)(line - text) - ll);
	assert_int_equal(relay_queue_envelope_parse((const uint8_t *)text,
	                     len - ll, &back),
	    0);
	assert_false(back->requiretls);
	relay_queue_envelope_free(back);
	back = NULL;
	free(text);

	/* A value that is neither yes nor no: corrupt, never "no". */
	env->requiretls = false;
	text = relay_queue_envelope_format(env, &len);
	assert_non_null(text);
	line = strstr(text, "requiretls no\n");
	assert_non_null(line);
	memcpy(line + strlen("requiretls "), "xx", 2);
	assert_int_equal(relay_queue_envelope_parse((const uint8_t *)text, len,
	                     &back),
	    RELAY_QUEUE_ECORRUPT);
	free(text);
	relay_queue_envelope_free(env);
}

/* The TLS policy of an attempt survives a restart (it is what `queue
 * show` prints), and an envelope written before it was kept still parses,
 * with the policy unknown (empty). */
static void
test_env_attempt_policy(void **state)
{
	struct relay_queue_envelope *env = rich_env(), *back = NULL;
	struct relay_queue_attempt *a = &env->rcpt[1].attempt[0];
	size_t len;
	char *text;

	(void)state;
	assert_int_equal(relay_queue_set_str(&a->policy, "none"), 0);
	assert_int_equal(relay_queue_set_str(&a->policy_entry,
	                     "/etc/danerelay/tls policy:12"),
	    0);
	text = relay_queue_envelope_format(env, &len);
	assert_non_null(text);
	assert_non_null(strstr(text, "\na.policy none\n"));
	assert_non_null(
	    strstr(text, "\na.policy_entry /etc/danerelay/tls%20policy:12\n"));
	assert_int_equal(relay_queue_envelope_parse((const uint8_t *)text, len,
	                     &back),
	    0);
	assert_string_equal(back->rcpt[1].attempt[0].policy, "none");
	assert_string_equal(back->rcpt[1].attempt[0].policy_entry,
	    "/etc/danerelay/tls policy:12");
	relay_queue_envelope_free(back);
	back = NULL;

	/* Version 1 as written before: drop both lines. */
	char *old = malloc(len + 1);
	size_t o = 0;
	assert_non_null(old);
	for (const char *l = text; *l != '\0';) {
		const char *nl = strchr(l, '\n');
		size_t ll = nl != NULL ? (size_t)(nl - l) + 1 : strlen(l);
		if (strncmp(l, "a.policy", 8) != 0) {
			memcpy(old + o, l, ll);
			o += ll;
		}
		l += ll;
	}
	old[o] = '\0';
	assert_null(strstr(old, "a.policy"));
	assert_int_equal(relay_queue_envelope_parse((const uint8_t *)old, o,
	                     &back),
	    0);
	assert_string_equal(back->rcpt[1].attempt[0].policy, "");
	assert_string_equal(back->rcpt[1].attempt[0].policy_entry, "");
	assert_string_equal(back->rcpt[1].attempt[0].reply, "250 2.0.0 Ok %41");
	relay_queue_envelope_free(back);
	free(old);
	free(text);
	relay_queue_envelope_free(env);
}

/* A torn envelope (any strict prefix of a valid file) never parses. */
static void
test_env_every_prefix_is_corrupt(void **state)
{
	struct relay_queue_envelope *env = rich_env(), *back;
	size_t len;
	char *text = relay_queue_envelope_format(env, &len);

	(void)state;
	for (size_t i = 0; i < len; i++) {
		back = NULL;
		assert_int_equal(relay_queue_envelope_parse((const uint8_t *)
		                                                text,
		                     i, &back),
		    RELAY_QUEUE_ECORRUPT);
		assert_null(back);
	}
	free(text);
	relay_queue_envelope_free(env);
}

static void
test_env_bad_values(void **state)
{
	static const char *const bad[] = {
		"danerelay-queue 1\nid 064A\narrival 1\nrcpt a\nend\n",
		"danerelay-queue 1\nid 00064A1B2C3D4E\narrival x\nrcpt a\nend\n",
		"danerelay-queue 1\nid 00064A1B2C3D4E\narrival 1\nend\n",
		"danerelay-queue 1\nid 00064A1B2C3D4E\narrival 1\nrcpt a\n"
		"r.status lost\nend\n",
		"danerelay-queue 1\nid 00064A1B2C3D4E\narrival 1\nrcpt a%0\nend\n",
		"danerelay-queue 1\nid 00064A1B2C3D4E\narrival 1\nrcpt a%00\n"
		"end\n",
		"danerelay-queue 1\nid 00064A1B2C3D4E\narrival 1\nrcpt a\nend\n"
		"x y\n",
		"danerelay-queue 2\nid 00064A1B2C3D4E\narrival 1\nrcpt a\nend\n",
		"danerelay-queue 1\nid 00064A1B2C3D4E\narrival 1\na.reply x\n"
		"rcpt a\nend\n",
	};
	struct relay_queue_envelope *env = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(relay_queue_envelope_parse((const uint8_t *)
		                                                bad[i],
		                     strlen(bad[i]), &env),
		    RELAY_QUEUE_ECORRUPT);
	}
	/* Unknown keys (a newer version) are ignored. */
	{
		const char *ok =
		    "danerelay-queue 1\nid 00064A1B2C3D4E\n"
		    "arrival 1\nfuture yes\nrcpt a\nr.future 1\nend\n";
		assert_int_equal(relay_queue_envelope_parse((const uint8_t *)ok,
		                     strlen(ok), &env),
		    0);
		assert_string_equal(env->rcpt[0].address, "a");
		relay_queue_envelope_free(env);
	}
}

static void
test_attempts_capped(void **state)
{
	struct relay_queue_envelope *env = make_env("s@x", 1);
	struct relay_queue_attempt *a;

	(void)state;
	for (unsigned i = 0; i < RELAY_QUEUE_ATTEMPTS_KEPT + 5; i++) {
		assert_int_equal(relay_queue_attempt_add(&env->rcpt[0], &a), 0);
		a->time_us = i;
	}
	assert_int_equal(env->rcpt[0].attempts, RELAY_QUEUE_ATTEMPTS_KEPT + 5);
	assert_int_equal(env->rcpt[0].attempt_count, RELAY_QUEUE_ATTEMPTS_KEPT);
	assert_int_equal(env->rcpt[0].attempt[0].time_us, 5);
	relay_queue_envelope_free(env);
}

/* ---- the spool ---- */

static void
test_commit_and_reload(void **state)
{
	struct fx *f = *state;
	struct relay_queue_envelope *env = make_env("alice@example.org", 2);
	struct relay_queue_envelope *back = NULL;
	const char body[] = "Subject: hi\r\n\r\nhello\r\n";
	struct relay_queue_info info;
	struct commit_res r;
	char path[1024], *content;
	size_t len;

	r = put_message(f, env, body, sizeof(body) - 1, 5);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.id, env->id);
	assert_true(relay_queue_id_valid(r.id, strlen(r.id)));
	assert_int_equal(relay_queue_count(f->q), 1);
	assert_int_equal(count_files(f->dir, "tmp"), 0);
	assert_int_equal(count_files(f->dir, "queue"), 2);

	queue_reopen(f);
	assert_int_equal(relay_queue_count(f->q), 1);
	assert_int_equal(relay_queue_lookup(f->q, r.id, &info), 0);
	assert_int_equal(info.size, sizeof(body) - 1);
	assert_int_equal(info.rcpt_open, 2);
	assert_int_equal(info.next_attempt_us, 0);
	assert_false(info.hold);
	assert_int_equal(info.arrival_us, env->arrival_us);

	assert_int_equal(relay_queue_read(f->dir, r.id, &back), 0);
	assert_string_equal(back->sender, "alice@example.org");
	assert_int_equal(back->rcpt_count, 2);
	assert_int_equal(back->size, sizeof(body) - 1);
	relay_queue_envelope_free(back);

	assert_int_equal(relay_queue_content_path(f->q, r.id, path,
	                     sizeof(path)),
	    0);
	content = read_path(path, &len);
	assert_non_null(content);
	/* NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage): len is set: cmocka's assert_non_null above longjmps out on failure, the analyzer cannot see it */
	assert_int_equal(len, sizeof(body) - 1);
	assert_memory_equal(content, body, len);
	free(content);
	relay_queue_envelope_free(env);
}

static int
stop_at_second(const struct relay_queue_info *info, void *arg)
{
	int *n = arg;
	(void)info;
	return ++*n == 2 ? 7 : 0;
}

/* Ids are unique and sort by arrival, even with a clock that stands
 * still or steps back, and across a restart. */
static void
test_ids_unique_and_ordered(void **state)
{
	struct fx *f = *state;
	char ids[12][RELAY_QUEUE_ID_SIZE];
	char seen[12][RELAY_QUEUE_ID_SIZE];
	int n = 0;

	memset(ids, 0, sizeof(ids));
	memset(seen, 0, sizeof(seen));
	/* Static: the queue borrows it until teardown closes the queue. */
	static struct relay_clock_manual mc;
	relay_clock_manual_init(&mc, 0, 1732288081000000u);
	f->clock = &mc;
	relay_queue_set_clock(f->q, &mc.clock);
	for (int i = 0; i < 10; i++) {
		struct relay_queue_envelope *env = make_env("s@x", 1);
		struct commit_res r;

		if (i == 4)
			relay_clock_manual_set_wall(&mc, /* clock steps back */
			    mc.wall_us - 3600000000u);
		if (i == 7)
			queue_reopen(f); /* and a restart */
		r = put_message(f, env, "x\r\n", 3, 3);
		assert_int_equal(r.status, 0);
		memcpy(ids[i], r.id, sizeof(ids[i]));
		if (i > 0)
			assert_true(strcmp(ids[i - 1], ids[i]) < 0);
		relay_queue_envelope_free(env);
	}
	assert_int_equal(relay_queue_foreach(f->q, collect_ids, seen), 0);
	for (int i = 0; i < 10; i++)
		assert_string_equal(seen[i], ids[i]);
	assert_int_equal(relay_queue_foreach(f->q, stop_at_second, &n), 7);
	assert_int_equal(n, 2);

	/* In slices: at most `limit` each, going on after the last id seen,
	 * in the same order as one whole walk; an id between two entries
	 * starts at the next one. */
	char after[RELAY_QUEUE_ID_SIZE] = "";
	for (int k = 0; k < 10; k += 3) {
		char part[12][RELAY_QUEUE_ID_SIZE];
		memset(part, 0, sizeof(part));
		assert_int_equal(relay_queue_foreach_after(f->q, after, 3,
		                     collect_ids, part),
		    0);
		for (int i = 0; i < 3 && k + i < 10; i++)
			assert_string_equal(part[i], ids[k + i]);
		assert_true(part[k + 3 <= 10 ? 3 : 10 - k][0] == '\0');
		memcpy(after, part[k + 3 <= 10 ? 2 : 10 - k - 1],
		    sizeof(after));
	}
	char between[RELAY_QUEUE_ID_SIZE + 1];
	snprintf(between, sizeof(between), "%s0", ids[4]);
	memset(seen, 0, sizeof(seen));
	assert_int_equal(relay_queue_foreach_after(f->q, between, 100,
	                     collect_ids, seen),
	    0);
	assert_string_equal(seen[0], ids[5]);
	assert_string_equal(seen[4], ids[9]);
	assert_true(seen[5][0] == '\0');
}

struct wstate {
	int calls;
	int last_status;
	size_t buffered_at_cb;
};

static void
write_cb(struct relay_queue_writer *w, int status, void *arg)
{
	struct wstate *s = arg;

	s->calls++;
	s->last_status = status;
	s->buffered_at_cb = relay_queue_writer_buffered(w);
}

/* A message of several chunks, written with back-pressure callbacks. */
static void
test_large_message(void **state)
{
	struct fx *f = *state;
	struct relay_queue_envelope *env = make_env("big@example.org", 1);
	struct relay_queue_writer *w;
	struct commit_res r = { 0 };
	struct wstate ws = { 0 };
	size_t total = 1000003, len;
	char *data = malloc(total), *content, path[1024];

	assert_non_null(data);
	for (size_t i = 0; i < total; i++)
		data[i] = (char)('a' + i % 26);
	assert_int_equal(relay_queue_msg_begin(f->q, env, &w), 0);
	for (size_t o = 0; o < total; o += 100000) {
		size_t n = total - o < 100000 ? total - o : 100000;
		int before = ws.calls;
		assert_int_equal(relay_queue_writer_write(w, data + o, n,
		                     write_cb, &ws),
		    0);
		assert_int_equal(ws.calls, before); /* never synchronous */
		while (ws.calls == before)
			(void)uv_run(&f->loop, UV_RUN_ONCE);
		assert_int_equal(ws.last_status, 0);
		assert_int_equal(ws.buffered_at_cb, 0);
	}
	assert_int_equal(relay_queue_writer_commit(w, commit_cb, &r), 0);
	assert_int_equal(relay_queue_writer_write(w, "x", 1, NULL, NULL),
	    RELAY_QUEUE_EBUSY);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(relay_queue_content_path(f->q, r.id, path,
	                     sizeof(path)),
	    0);
	content = read_path(path, &len);
	assert_int_equal(len, total);
	assert_memory_equal(content, data, total);
	free(content);
	free(data);
	relay_queue_envelope_free(env);
}

struct load_res {
	int calls, status;
	struct relay_queue_envelope *env;
};

static void
load_cb(int status, struct relay_queue_envelope *env, void *arg)
{
	struct load_res *r = arg;

	r->calls++;
	r->status = status;
	r->env = env;
}

struct done_res {
	int calls, status;
};

static void
done_cb(int status, void *arg)
{
	struct done_res *r = arg;

	r->calls++;
	r->status = status;
}

/* Recipient state persists across a restart; the index follows. */
static void
test_update_and_remove(void **state)
{
	struct fx *f = *state;
	struct relay_queue_envelope *env = make_env("s@example.org", 2);
	struct relay_queue_attempt *a;
	struct relay_queue_info info;
	struct load_res lr = { 0 };
	struct done_res d1 = { 0 }, d2 = { 0 }, d3 = { 0 };
	struct commit_res r = put_message(f, env, "body\r\n", 6, 6);

	assert_int_equal(r.status, 0);
	assert_int_equal(relay_queue_load(f->q, r.id, load_cb, &lr), 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(lr.status, 0);
	assert_non_null(lr.env);
	assert_string_equal(lr.env->id, r.id);

	lr.env->rcpt[0].status = RELAY_QUEUE_RCPT_SENT;
	assert_int_equal(relay_queue_set_str(&lr.env->rcpt[0].dsn, "2.0.0"), 0);
	lr.env->rcpt[1].status = RELAY_QUEUE_RCPT_DEFERRED;
	lr.env->rcpt[1].next_attempt_us = 1900000000000000u;
	assert_int_equal(relay_queue_attempt_add(&lr.env->rcpt[1], &a), 0);
	assert_int_equal(relay_queue_set_str(&a->failure_class,
	                     "tlsa-mismatch"),
	    0);
	/* Two updates in a row run in order; the second wins. */
	assert_int_equal(relay_queue_update(f->q, lr.env, done_cb, &d1), 0);
	lr.env->hold = true;
	assert_int_equal(relay_queue_update(f->q, lr.env, done_cb, &d2), 0);
	assert_int_equal(d1.calls + d2.calls, 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(d1.calls, 1);
	assert_int_equal(d2.calls, 1);
	assert_int_equal(d1.status | d2.status, 0);
	assert_int_equal(relay_queue_lookup(f->q, r.id, &info), 0);
	assert_int_equal(info.rcpt_open, 1);
	assert_true(info.deferred);
	assert_true(info.hold);
	assert_int_equal(info.next_attempt_us, 1900000000000000u);

	queue_reopen(f);
	assert_int_equal(relay_queue_lookup(f->q, r.id, &info), 0);
	assert_int_equal(info.rcpt_open, 1);
	assert_true(info.hold);
	relay_queue_envelope_free(lr.env);
	lr.env = NULL;
	assert_int_equal(relay_queue_read(f->dir, r.id, &lr.env), 0);
	assert_int_equal(lr.env->rcpt[0].status, RELAY_QUEUE_RCPT_SENT);
	assert_string_equal(lr.env->rcpt[1].attempt[0].failure_class,
	    "tlsa-mismatch");
	assert_int_equal(lr.env->rcpt[1].attempts, 1);

	assert_int_equal(relay_queue_remove(f->q, r.id, done_cb, &d3), 0);
	/* Gone from the index at once, and from the spool before the loop
	 * runs again: a kill -9 right after a delivery must not find the
	 * message and deliver it twice. Only the directory fsync waits. */
	assert_int_equal(relay_queue_lookup(f->q, r.id, &info),
	    RELAY_QUEUE_ENOENT);
	assert_int_equal(count_files(f->dir, "queue"), 0);
	assert_int_equal(d3.calls, 0);
	assert_int_equal(relay_queue_remove(f->q, r.id, NULL, NULL),
	    RELAY_QUEUE_ENOENT);
	assert_int_equal(relay_queue_update(f->q, lr.env, NULL, NULL),
	    RELAY_QUEUE_ENOENT);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(d3.calls, 1);
	assert_int_equal(d3.status, 0);
	assert_int_equal(count_files(f->dir, "queue"), 0);
	queue_reopen(f);
	assert_int_equal(relay_queue_count(f->q), 0);
	relay_queue_envelope_free(lr.env);
	relay_queue_envelope_free(env);
}

/* What a crash leaves behind is cleaned up or completed at open. */
static void
test_crash_recovery(void **state)
{
	struct fx *f = *state;
	struct relay_queue_envelope *env = make_env("s@x", 1), *back;
	struct commit_res r1 = put_message(f, env, "one\r\n", 5, 5);
	struct commit_res r2 = put_message(f, env, "two\r\n", 5, 5);
	struct relay_queue_info info;
	char p[1024], p2[1024];

	assert_int_equal(r1.status | r2.status, 0);
	queue_close(f);

	/* 1. Half-received message: content in tmp/, no envelope. */
	(void)snprintf(p, sizeof(p), "%s/tmp/00070000000001.msg", f->dir);
	write_file(p, "partial", 7);
	/* 2. Torn update of message 1: old envelope must survive. */
	(void)snprintf(p, sizeof(p), "%s/tmp/%s.upd", f->dir, r1.id);
	write_file(p, "danerelay-queue 1\nid ", 21);
	/* 3. A commit whose content rename did not reach the disk while
	 *    the envelope rename did: message 2's content back in tmp/. */
	(void)snprintf(p, sizeof(p), "%s/queue/%s.msg", f->dir, r2.id);
	(void)snprintf(p2, sizeof(p2), "%s/tmp/%s.msg", f->dir, r2.id);
	assert_int_equal(rename(p, p2), 0);
	/* 4. Content without envelope in queue/ (remove cut short). */
	(void)snprintf(p, sizeof(p), "%s/queue/00070000000002.msg", f->dir);
	write_file(p, "orphan", 6);
	/* 5. An envelope that does not parse. */
	(void)snprintf(p, sizeof(p), "%s/queue/00070000000003.env", f->dir);
	write_file(p, "garbage\n", 8);
	(void)snprintf(p, sizeof(p), "%s/queue/00070000000003.msg", f->dir);
	write_file(p, "x", 1);

	queue_reopen(f);
	assert_int_equal(relay_queue_count(f->q), 2);
	assert_int_equal(relay_queue_lookup(f->q, r1.id, &info), 0);
	assert_int_equal(relay_queue_lookup(f->q, r2.id, &info), 0);
	assert_int_equal(count_files(f->dir, "tmp"), 0);
	assert_int_equal(count_files(f->dir, "queue"), 4);
	assert_int_equal(count_files(f->dir, "corrupt"), 2);
	assert_int_equal(relay_queue_read(f->dir, r1.id, &back), 0);
	assert_string_equal(back->rcpt[0].address, "rcpt0@example.net");
	relay_queue_envelope_free(back);
	(void)snprintf(p, sizeof(p), "%s/queue/%s.msg", f->dir, r2.id);
	assert_int_equal(access(p, F_OK), 0);
	relay_queue_envelope_free(env);
}

/* ---- the pool of spent files ---- */

/* Inode number of dir/sub/name (0 when missing). */
static ino_t
inode_of(const char *dir, const char *sub, const char *name)
{
	char p[1024];
	struct stat st;

	(void)snprintf(p, sizeof(p), "%s/%s/%s", dir, sub, name);
	return stat(p, &st) == 0 ? st.st_ino : 0;
}

/* The inode numbers of the files in dir/sub, sorted, into ino (max n). */
static size_t
inodes_in(const char *dir, const char *sub, ino_t *ino, size_t n)
{
	char p[1024];
	DIR *d;
	struct dirent *de;
	size_t k = 0;

	(void)snprintf(p, sizeof(p), "%s/%s", dir, sub);
	d = opendir(p);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL && k < n)
		if (de->d_name[0] != '.')
			ino[k++] = inode_of(dir, sub, de->d_name);
	(void)closedir(d);
	for (size_t i = 1; i < k; i++)
		for (size_t j = i; j > 0 && ino[j - 1] > ino[j]; j--) {
			ino_t t = ino[j];
			ino[j] = ino[j - 1];
			ino[j - 1] = t;
		}
	return k;
}

static void
remove_message(struct fx *f, const char *id)
{
	struct done_res d = { 0 };

	assert_int_equal(relay_queue_remove(f->q, id, done_cb, &d), 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.status, 0);
}

/*
 * A removed message's two files go to pool/ and, once the reuse delay
 * has passed, a new message is written into them: no new inode, and the
 * shorter new content is cut to its own length.
 */
static void
test_pool_recycles_files(void **state)
{
	struct fx *f = *state;
	static struct relay_clock_manual mc;
	struct relay_queue_envelope *env = make_env("s@example.org", 1);
	struct relay_queue_envelope *back = NULL;
	char big[20000], name[64], p[1024];
	ino_t pooled[4] = { 0 }, now[4] = { 0 };
	struct commit_res r1, r2, r3;
	size_t len = 0;
	char *got;

	relay_clock_manual_init(&mc, 5000000, 1732288081000000u);
	f->clock = &mc;
	relay_queue_set_clock(f->q, &mc.clock);
	memset(big, 'a', sizeof(big));
	r1 = put_message(f, env, big, sizeof(big), 4096);
	assert_int_equal(r1.status, 0);
	remove_message(f, r1.id);
	assert_int_equal(count_files(f->dir, "queue"), 0);
	assert_int_equal(count_files(f->dir, "pool"), 2);
	assert_int_equal(inodes_in(f->dir, "pool", pooled, 4), 2);

	/* Within the delay: not reused (a reader may still hold them). */
	r2 = put_message(f, env, "two\r\n", 5, 5);
	assert_int_equal(r2.status, 0);
	assert_int_equal(count_files(f->dir, "pool"), 2);

	relay_clock_manual_advance(&mc, 1000001);
	r3 = put_message(f, env, "three\r\n", 7, 7);
	assert_int_equal(r3.status, 0);
	assert_int_equal(count_files(f->dir, "pool"), 0);
	now[0] = inode_of(f->dir, "queue",
	    (snprintf(name, sizeof(name), "%s.msg", r3.id), name));
	now[1] = inode_of(f->dir, "queue",
	    (snprintf(name, sizeof(name), "%s.env", r3.id), name));
	if (now[0] > now[1]) {
		ino_t t = now[0];
		now[0] = now[1];
		now[1] = t;
	}
	assert_true(now[0] == pooled[0] && now[1] == pooled[1]);
	(void)snprintf(p, sizeof(p), "%s/queue/%s.msg", f->dir, r3.id);
	got = read_path(p, &len);
	assert_int_equal(len, 7);
	assert_memory_equal(got, "three\r\n", 7);
	free(got);
	/* The envelope written over the old one parses and is the new. */
	assert_int_equal(relay_queue_read(f->dir, r3.id, &back), 0);
	assert_string_equal(back->id, r3.id);
	assert_int_equal(back->size, 7);
	relay_queue_envelope_free(back);

	/* The pool outlives a restart; its files are reused at once. */
	remove_message(f, r2.id);
	queue_reopen(f);
	assert_int_equal(count_files(f->dir, "pool"), 2);
	r1 = put_message(f, env, "four\r\n", 6, 6);
	assert_int_equal(r1.status, 0);
	assert_int_equal(count_files(f->dir, "pool"), 0);
	assert_int_equal(relay_queue_count(f->q), 2);
	relay_queue_envelope_free(env);
}

/*
 * An update writes its new envelope into a pool file too; the message
 * stays whole.
 */
static void
test_pool_update(void **state)
{
	struct fx *f = *state;
	static struct relay_clock_manual mc;
	struct relay_queue_envelope *env = make_env("s@example.org", 2);
	struct relay_queue_envelope *back = NULL;
	struct done_res d = { 0 };
	struct commit_res r1, r2;

	relay_clock_manual_init(&mc, 5000000, 1732288081000000u);
	f->clock = &mc;
	relay_queue_set_clock(f->q, &mc.clock);
	r1 = put_message(f, env, "one\r\n", 5, 5);
	r2 = put_message(f, env, "two\r\n", 5, 5);
	assert_int_equal(r1.status | r2.status, 0);
	remove_message(f, r1.id);
	/* The next directory fsync (this commit's) makes the removal
	 * durable; then the delay passes. */
	r1 = put_message(f, env, "three\r\n", 7, 7);
	assert_int_equal(r1.status, 0);
	relay_clock_manual_advance(&mc, 2000000);
	assert_int_equal(relay_queue_read(f->dir, r2.id, &back), 0);
	back->rcpt[0].status = RELAY_QUEUE_RCPT_SENT;
	assert_int_equal(relay_queue_update(f->q, back, done_cb, &d), 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(d.status, 0);
	assert_int_equal(count_files(f->dir, "pool"), 1);
	relay_queue_envelope_free(back);
	back = NULL;
	assert_int_equal(relay_queue_read(f->dir, r2.id, &back), 0);
	assert_int_equal(back->rcpt[0].status, RELAY_QUEUE_RCPT_SENT);
	assert_int_equal(back->rcpt[1].status, RELAY_QUEUE_RCPT_PENDING);
	relay_queue_envelope_free(back);
	relay_queue_envelope_free(env);
}

/*
 * Start-up: what pool/ holds is reused only when it is a plain file with
 * no other name. A file also linked from queue/ (a removal's rename that
 * reached pool/ but not queue/ before a power cut, fsck then keeps both
 * names) must not be written over: that would change a queued message.
 */
static void
test_pool_recovery(void **state)
{
	struct fx *f = *state;
	struct relay_queue_envelope *env = make_env("s@x", 1), *back = NULL;
	struct commit_res r1, r2;
	char p[1024], p2[1024];
	size_t len = 0;
	char *got;

	r1 = put_message(f, env, "keep me\r\n", 9, 9);
	assert_int_equal(r1.status, 0);
	queue_close(f);
	/* Both files of r1 also linked into the pool. */
	(void)snprintf(p, sizeof(p), "%s/queue/%s.msg", f->dir, r1.id);
	(void)snprintf(p2, sizeof(p2), "%s/pool/0000000000000001", f->dir);
	assert_int_equal(link(p, p2), 0);
	(void)snprintf(p, sizeof(p), "%s/queue/%s.env", f->dir, r1.id);
	(void)snprintf(p2, sizeof(p2), "%s/pool/0000000000000002", f->dir);
	assert_int_equal(link(p, p2), 0);
	/* A name that is not a pool name, and a directory. */
	(void)snprintf(p2, sizeof(p2), "%s/pool/junk", f->dir);
	write_file(p2, "x", 1);
	(void)snprintf(p2, sizeof(p2), "%s/pool/0000000000000003", f->dir);
	assert_int_equal(mkdir(p2, 0700), 0);
	queue_reopen(f);
	/* Only the directory is left (unlink cannot remove it); not used. */
	assert_int_equal(count_files(f->dir, "pool"), 1);

	r2 = put_message(f, env, "new\r\n", 5, 5);
	assert_int_equal(r2.status, 0);
	assert_int_equal(count_files(f->dir, "pool"), 1);
	(void)snprintf(p, sizeof(p), "%s/queue/%s.msg", f->dir, r1.id);
	got = read_path(p, &len);
	assert_int_equal(len, 9);
	assert_memory_equal(got, "keep me\r\n", 9);
	free(got);
	assert_int_equal(relay_queue_read(f->dir, r1.id, &back), 0);
	assert_string_equal(back->id, r1.id);
	relay_queue_envelope_free(back);
	relay_queue_envelope_free(env);
}

/* The content of a large message is freed, not kept: the pool's size on
 * disk stays bounded. */
static void
test_pool_skips_large(void **state)
{
	struct fx *f = *state;
	struct relay_queue_envelope *env = make_env("s@x", 1);
	size_t len = 300 * 1024;
	char *big = malloc(len);
	struct commit_res r;

	assert_non_null(big);
	memset(big, 'b', len);
	r = put_message(f, env, big, len, 65536);
	assert_int_equal(r.status, 0);
	remove_message(f, r.id);
	assert_int_equal(count_files(f->dir, "queue"), 0);
	assert_int_equal(count_files(f->dir, "pool"), 1); /* the envelope */
	free(big);
	relay_queue_envelope_free(env);
}

/* The FIFO of pool names: ready times, the cap, reservations. */
static void
test_pool_fifo(void **state)
{
	static struct queue__pool p;
	uint64_t a, b;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_true(queue__pool_take(&p, 100) == QUEUE__POOL_NONE);
	a = queue__pool_reserve(&p);
	b = queue__pool_reserve(&p);
	assert_true(a != b && a != QUEUE__POOL_NONE && b != QUEUE__POOL_NONE);
	queue__pool_settle(&p, a, true, 50);
	queue__pool_settle(&p, b, false, 50); /* unlinked, not listed */
	assert_int_equal(queue__pool_count(&p), 1);
	assert_true(queue__pool_take(&p, 49) == QUEUE__POOL_NONE);
	assert_true(queue__pool_take(&p, 50) == a);
	assert_int_equal(queue__pool_count(&p), 0);
	/* Full: reservations and puts refused, the file is unlinked. */
	for (uint64_t i = 0; i < QUEUE__POOL_MAX; i++)
		assert_true(queue__pool_put(&p, 1000 + i, i));
	assert_false(queue__pool_put(&p, 5000, 0));
	assert_true(queue__pool_reserve(&p) == QUEUE__POOL_NONE);
	assert_true(queue__pool_take(&p, 0) == 1000);
	/* Fresh names never repeat one already listed. */
	assert_true(queue__pool_reserve(&p) > 1000 + QUEUE__POOL_MAX - 1);
}

/* ---- disk full at every step of the commit ---- */

static enum queue__op fault_op;
static int fault_errno;
static int fault_hits;

static int
fault_hook(enum queue__op op, const char *path)
{
	(void)path;
	if (op != fault_op)
		return 0;
	fault_hits++;
	return fault_errno;
}

static void
enospc_case(struct fx *f, enum queue__op op, int e, int expect)
{
	struct relay_queue_envelope *env = make_env("s@x", 1);
	struct commit_res r;
	char big[200000];

	memset(big, 'y', sizeof(big));
	fault_op = op;
	fault_errno = e;
	fault_hits = 0;
	queue__fault = fault_hook;
	r = put_message(f, env, big, sizeof(big), 70000);
	queue__fault = NULL;
	assert_true(fault_hits > 0);
	assert_int_equal(r.status, expect);
	/* Never a half-written message: nothing left anywhere. */
	assert_int_equal(relay_queue_count(f->q), 0);
	assert_int_equal(count_files(f->dir, "tmp"), 0);
	assert_int_equal(count_files(f->dir, "queue"), 0);
	relay_queue_envelope_free(env);
}

/*
 * A removal asks for no directory fsync; its files wait for the next
 * one. When that fails the removal is not known to be on disk: its files
 * stay out of use (a new message must not write into a file that queue/
 * may still name after a crash).
 */
static void
test_pool_needs_dirsync(void **state)
{
	struct fx *f = *state;
	static struct relay_clock_manual mc;
	struct relay_queue_envelope *env = make_env("s@x", 1);
	struct done_res d = { 0 };
	struct commit_res r1, r2;
	ino_t pooled[2] = { 0 }, now[4] = { 0 };

	relay_clock_manual_init(&mc, 5000000, 1732288081000000u);
	f->clock = &mc;
	relay_queue_set_clock(f->q, &mc.clock);
	r1 = put_message(f, env, "one\r\n", 5, 5);
	assert_int_equal(r1.status, 0);
	fault_op = RELAY__QOP_DIRSYNC;
	fault_errno = EIO;
	fault_hits = 0;
	queue__fault = fault_hook;
	assert_int_equal(relay_queue_remove(f->q, r1.id, done_cb, &d), 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(fault_hits, 0); /* no fsync of its own */
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.status, 0);
	assert_int_equal(inodes_in(f->dir, "pool", pooled, 2), 2);
	r2 = put_message(f, env, "lost\r\n", 6, 6);
	queue__fault = NULL;
	assert_int_equal(fault_hits, 1);
	assert_int_equal(r2.status, RELAY_QUEUE_EIO);
	relay_clock_manual_advance(&mc, 5000000);
	r2 = put_message(f, env, "two\r\n", 5, 5);
	assert_int_equal(r2.status, 0);
	assert_int_equal(inodes_in(f->dir, "queue", now, 4), 2);
	for (size_t i = 0; i < 2; i++)
		assert_true(now[i] != pooled[0] && now[i] != pooled[1]);
	relay_queue_envelope_free(env);
}

static void
test_enospc_open(void **state)
{
	enospc_case(*state, RELAY__QOP_OPEN, ENOSPC, RELAY_QUEUE_ENOSPC);
}

static void
test_enospc_write(void **state)
{
	enospc_case(*state, RELAY__QOP_WRITE, ENOSPC, RELAY_QUEUE_ENOSPC);
}

static void
test_edquot_fsync(void **state)
{
	enospc_case(*state, RELAY__QOP_FSYNC, EDQUOT, RELAY_QUEUE_ENOSPC);
}

static void
test_eio_rename(void **state)
{
	enospc_case(*state, RELAY__QOP_RENAME, EIO, RELAY_QUEUE_EIO);
}

static void
test_eio_dirsync(void **state)
{
	enospc_case(*state, RELAY__QOP_DIRSYNC, EIO, RELAY_QUEUE_EIO);
}

/* A write error is reported to the write callback and is sticky. */
static void
test_write_error_sticky(void **state)
{
	struct fx *f = *state;
	struct relay_queue_envelope *env = make_env("s@x", 1);
	struct relay_queue_writer *w;
	struct wstate ws = { 0 };

	fault_op = RELAY__QOP_WRITE;
	fault_errno = ENOSPC;
	queue__fault = fault_hook;
	assert_int_equal(relay_queue_msg_begin(f->q, env, &w), 0);
	assert_int_equal(relay_queue_writer_write(w, "abc", 3, write_cb, &ws),
	    0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(ws.calls, 1);
	assert_int_equal(ws.last_status, RELAY_QUEUE_ENOSPC);
	assert_int_equal(relay_queue_writer_write(w, "d", 1, NULL, NULL),
	    RELAY_QUEUE_ENOSPC);
	relay_queue_writer_abort(w);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(count_files(f->dir, "tmp"), 0);
	relay_queue_envelope_free(env);
}

/* Abort before commit removes the file; no callback runs afterwards. */
static void
test_abort(void **state)
{
	struct fx *f = *state;
	struct relay_queue_envelope *env = make_env("s@x", 1);
	struct relay_queue_writer *w;
	struct wstate ws = { 0 };

	assert_int_equal(relay_queue_msg_begin(f->q, env, &w), 0);
	assert_int_equal(relay_queue_writer_write(w, "abc", 3, write_cb, &ws),
	    0);
	relay_queue_writer_abort(w); /* flush job in flight */
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(ws.calls, 0);
	assert_int_equal(count_files(f->dir, "tmp"), 0);
	assert_int_equal(count_files(f->dir, "queue"), 0);

	/* Abort with nothing written yet: freed at once. */
	assert_int_equal(relay_queue_msg_begin(f->q, env, &w), 0);
	relay_queue_writer_abort(w);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);

	/* Abort during commit: the commit completes silently. */
	{
		struct commit_res r = { 0 };
		assert_int_equal(relay_queue_msg_begin(f->q, env, &w), 0);
		assert_int_equal(relay_queue_writer_write(w, "abc", 3, NULL,
		                     NULL),
		    0);
		assert_int_equal(relay_queue_writer_commit(w, commit_cb, &r),
		    0);
		relay_queue_writer_abort(w);
		assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
		assert_int_equal(r.calls, 0);
		assert_int_equal(relay_queue_count(f->q), 1);
	}
	/* Envelope without recipients is refused. */
	{
		struct relay_queue_envelope *none = relay_queue_envelope_new();
		assert_int_equal(relay_queue_msg_begin(f->q, none, &w),
		    RELAY_QUEUE_EINVAL);
		relay_queue_envelope_free(none);
	}
	relay_queue_envelope_free(env);
}

/* A second queue on the same spool refuses to open, naming the pid. */
static void
test_lock_refusal(void **state)
{
	struct fx *f = *state;
	struct relay_queue *q2 = NULL;
	char err[256] = "", pid[32];

	assert_int_equal(relay_queue_open(&f->loop, f->dir, &q2, err,
	                     sizeof(err)),
	    RELAY_QUEUE_ELOCKED);
	assert_null(q2);
	(void)snprintf(pid, sizeof(pid), "(pid %ld)", (long)getpid());
	assert_non_null(strstr(err, "in use by another danerelay serve"));
	assert_non_null(strstr(err, pid));
	/* After close the lock is free again. */
	queue_reopen(f);
}

struct scan_res {
	int n;
	char first[RELAY_QUEUE_ID_SIZE];
};

static int
scan_fn(const struct relay_queue_envelope *env, void *arg)
{
	struct scan_res *s = arg;

	if (s->n++ == 0)
		memcpy(s->first, env->id, sizeof(s->first));
	return 0;
}

/* The CLI reads the spool without the lock while serve holds it. */
static void
test_scan_while_open(void **state)
{
	struct fx *f = *state;
	struct relay_queue_envelope *env = make_env("s@x", 1);
	struct commit_res r1 = put_message(f, env, "a", 1, 1);
	struct commit_res r2 = put_message(f, env, "b", 1, 1);
	struct scan_res s = { 0 };
	char p[1024];

	/* A torn update file in tmp/ must not be seen. */
	(void)snprintf(p, sizeof(p), "%s/tmp/%s.upd", f->dir, r2.id);
	write_file(p, "danerelay", 9);
	assert_int_equal(relay_queue_scan(f->dir, scan_fn, &s, NULL), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.first, r1.id);
	(void)unlink(p);
	relay_queue_envelope_free(env);
}

/* What the scan cannot hand over is counted, never dropped in silence:
 * an envelope that does not parse, one that names another id, and the
 * files serve set aside in corrupt/. */
static void
test_scan_counts_unreadable(void **state)
{
	struct fx *f = *state;
	struct relay_queue_envelope *env = make_env("s@x", 1);
	struct commit_res r1 = put_message(f, env, "a", 1, 1);
	struct commit_res r2 = put_message(f, env, "b", 1, 1);
	struct relay_queue_scan_counts u = { 99, 99 };
	struct scan_res s = { 0 };
	char p[1024], q[1024];

	assert_int_equal(relay_queue_scan(f->dir, scan_fn, &s, &u), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(u.unparsable, 0);
	assert_int_equal(u.corrupt, 0);

	/* r1's envelope torn; a copy of r2's envelope under a third id. */
	(void)snprintf(p, sizeof(p), "%s/queue/%s.env", f->dir, r1.id);
	write_file(p, "danerelay-queue 1\nid ", 21);
	(void)snprintf(p, sizeof(p), "%s/queue/%s.env", f->dir, r2.id);
	(void)snprintf(q, sizeof(q), "%s/queue/00000000000FFF.env", f->dir);
	assert_int_equal(link(p, q), 0);
	(void)snprintf(p, sizeof(p), "%s/corrupt", f->dir);
	assert_int_equal(mkdir(p, 0700), 0);
	(void)snprintf(p, sizeof(p), "%s/corrupt/00000000000AAA.env", f->dir);
	write_file(p, "x", 1);
	(void)snprintf(p, sizeof(p), "%s/corrupt/00000000000AAA.msg", f->dir);
	write_file(p, "x", 1);

	memset(&s, 0, sizeof(s));
	assert_int_equal(relay_queue_scan(f->dir, scan_fn, &s, &u), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.first, r2.id);
	assert_int_equal(u.unparsable, 2);
	assert_int_equal(u.corrupt, 2);
	(void)unlink(q);
	relay_queue_envelope_free(env);
}

/* ---- background load at start (relay_queue_open_lazy) ---- */

#define LAZY_N 2100 /* more than two load batches */
#define LAZY_CORRUPT 1500

/* Writes LAZY_N messages into queue/ as serve leaves them (no fsync: the
 * test only reads them back), message LAZY_CORRUPT with an envelope that
 * does not parse. The queue must be closed. */
static void
write_backlog(struct fx *f)
{
	struct relay_queue_envelope *env = make_env("s@x", 1);
	char p[1024];

	for (size_t i = 0; i < LAZY_N; i++) {
		char *text;
		size_t len;

		(void)snprintf(env->id, sizeof(env->id), "%014zX",
		    (size_t)0x70000000000u + i);
		env->arrival_us = 0x70000000000u + i;
		env->size = 5;
		env->rcpt[0].status = RELAY_QUEUE_RCPT_DEFERRED;
		env->rcpt[0].next_attempt_us = 1000u + i;
		text = relay_queue_envelope_format(env, &len);
		assert_non_null(text);
		(void)snprintf(p, sizeof(p), "%s/queue/%s.env", f->dir,
		    env->id);
		if (i == LAZY_CORRUPT)
			write_file(p, "garbage\n", 8);
		else
			write_file(p, text, len);
		free(text);
		(void)snprintf(p, sizeof(p), "%s/queue/%s.msg", f->dir,
		    env->id);
		write_file(p, "body\n", 5);
	}
	relay_queue_envelope_free(env);
}

struct loaded_res {
	int calls, done_calls;
	uint64_t due;
};

static void
loaded_cb(bool done, uint64_t earliest_due_us, void *arg)
{
	struct loaded_res *r = arg;

	r->calls++;
	r->done_calls += done;
	if (earliest_due_us < r->due)
		r->due = earliest_due_us;
}

static int
check_order(const struct relay_queue_info *info, void *arg)
{
	char *prev = arg;

	assert_true(strcmp(prev, info->id) < 0);
	memcpy(prev, info->id, RELAY_QUEUE_ID_SIZE);
	return 0;
}

static void
test_lazy_load(void **state)
{
	struct fx *f = *state;
	struct relay_queue_envelope *env = make_env("new@x", 1);
	struct loaded_res lr = { .due = UINT64_MAX };
	struct relay_queue_info info;
	char first[RELAY_QUEUE_ID_SIZE], bad[RELAY_QUEUE_ID_SIZE];
	char prev[RELAY_QUEUE_ID_SIZE] = "";
	char err[256];

	queue_close(f);
	write_backlog(f);
	(void)snprintf(first, sizeof(first), "%014zX", (size_t)0x70000000000u);
	(void)snprintf(bad, sizeof(bad), "%014zX",
	    (size_t)0x70000000000u + LAZY_CORRUPT);
	assert_int_equal(relay_queue_open_lazy(&f->loop, f->dir, &f->q, err,
	                     sizeof(err)),
	    0);
	/* Nothing read yet: the messages exist but are not in the index. */
	assert_int_equal(relay_queue_count(f->q), 0);
	assert_true(relay_queue_loading(f->q));
	assert_int_equal(relay_queue_lookup(f->q, first, &info),
	    RELAY_QUEUE_EBUSY);
	assert_int_equal(relay_queue_lookup(f->q, "0000000000000A", &info),
	    RELAY_QUEUE_ENOENT);
	assert_int_equal(relay_queue_load_start(f->q, loaded_cb, &lr), 0);
	assert_int_equal(lr.calls, 0); /* never from inside the call */
	assert_int_equal(relay_queue_load_start(f->q, loaded_cb, &lr),
	    RELAY_QUEUE_EBUSY);
	/* A message received while the load runs (put_message runs the
	 * loop, so the load and the commit interleave): its id sorts after
	 * every listed one and it is in the index with them at the end. */
	struct commit_res r = put_message(f, env, "new\r\n", 5, 5);
	assert_int_equal(r.status, 0);
	assert_true(strcmp(r.id, "00070000000833") > 0);
	assert_false(relay_queue_loading(f->q));
	assert_int_equal(lr.done_calls, 1);
	assert_int_equal(lr.due, 1000u); /* the earliest listed retry */
	/* Nothing lost: every listed message but the corrupt one, plus the
	 * new one, in id order; the corrupt one went to corrupt/. */
	assert_int_equal(relay_queue_count(f->q), LAZY_N - 1 + 1);
	assert_int_equal(relay_queue_foreach(f->q, check_order, prev), 0);
	assert_string_equal(prev, r.id);
	assert_int_equal(relay_queue_lookup(f->q, first, &info), 0);
	assert_int_equal(info.next_attempt_us, 1000u);
	assert_true(info.deferred);
	assert_int_equal(relay_queue_lookup(f->q, bad, &info),
	    RELAY_QUEUE_ENOENT);
	assert_int_equal(count_files(f->dir, "corrupt"), 2);
	assert_int_equal(count_files(f->dir, "queue"), 2 * LAZY_N);
	/* And a blocking open finds the same. */
	queue_reopen(f);
	assert_int_equal(relay_queue_count(f->q), LAZY_N);
	relay_queue_envelope_free(env);
}

/* Closing while the load runs: close waits for the batches in flight, no
 * message is lost, and the next start finds every one. */
static void
test_lazy_load_close_early(void **state)
{
	struct fx *f = *state;
	char err[256];

	queue_close(f);
	write_backlog(f);
	assert_int_equal(relay_queue_open_lazy(&f->loop, f->dir, &f->q, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(relay_queue_load_start(f->q, NULL, NULL), 0);
	queue_close(f);
	/* The batches in flight ran to their end (the corrupt envelope may
	 * have gone to corrupt/ already); nothing else moved. */
	assert_int_equal(count_files(f->dir, "queue") +
	        count_files(f->dir, "corrupt"),
	    2 * LAZY_N);
	queue_reopen(f);
	assert_int_equal(relay_queue_count(f->q), LAZY_N - 1);
	assert_int_equal(count_files(f->dir, "corrupt"), 2);
}

/* An empty spool: the load ends at once, reported from the loop. */
static void
test_lazy_load_empty(void **state)
{
	struct fx *f = *state;
	struct loaded_res lr = { .due = UINT64_MAX };
	char err[256];

	queue_close(f);
	assert_int_equal(relay_queue_open_lazy(&f->loop, f->dir, &f->q, err,
	                     sizeof(err)),
	    0);
	assert_false(relay_queue_loading(f->q));
	assert_int_equal(relay_queue_load_start(f->q, loaded_cb, &lr), 0);
	assert_int_equal(lr.calls, 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(lr.done_calls, 1);
	assert_int_equal(lr.due, UINT64_MAX);
}

struct scan_many {
	char prev[RELAY_QUEUE_ID_SIZE];
	size_t n, stop_at;
};

static int
scan_many_fn(const struct relay_queue_envelope *env, void *arg)
{
	struct scan_many *c = arg;

	assert_true(strcmp(c->prev, env->id) < 0);
	memcpy(c->prev, env->id, RELAY_QUEUE_ID_SIZE);
	c->n++;
	return c->n == c->stop_at ? 42 : 0;
}

/* The scan reads on threads but hands every envelope over once, in id
 * order; it stops when told, and fails (never skips) on an envelope it
 * cannot read. */
static void
test_scan_many(void **state)
{
	struct fx *f = *state;
	struct relay_queue_scan_counts counts;
	struct scan_many c = { .prev = "" };
	char p[1024];

	queue_close(f);
	write_backlog(f);
	assert_int_equal(relay_queue_scan(f->dir, scan_many_fn, &c, &counts),
	    0);
	assert_int_equal(c.n, LAZY_N - 1);
	assert_int_equal(counts.unparsable, 1);
	memset(&c, 0, sizeof(c));
	c.stop_at = 1000;
	assert_int_equal(relay_queue_scan(f->dir, scan_many_fn, &c, NULL), 42);
	assert_int_equal(c.n, 1000);
	/* A directory where an envelope should be: read(2) fails. */
	(void)snprintf(p, sizeof(p), "%s/queue/%014zX.env", f->dir,
	    (size_t)0x70000000000u + 1700);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0700), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(relay_queue_scan(f->dir, scan_many_fn, &c, NULL),
	    RELAY_QUEUE_EIO);
	assert_int_equal(c.n, 1699);
	assert_int_equal(rmdir(p), 0);
}

int
main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_env_roundtrip),
		cmocka_unit_test(test_env_requiretls),
		cmocka_unit_test(test_env_attempt_policy),
		cmocka_unit_test(test_env_every_prefix_is_corrupt),
		cmocka_unit_test(test_env_bad_values),
		cmocka_unit_test(test_attempts_capped),
	};
	const struct CMUnitTest spool[] = {
		cmocka_unit_test_setup_teardown(test_commit_and_reload, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ids_unique_and_ordered,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_message, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_update_and_remove, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pool_recycles_files, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pool_update, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pool_recovery, setup,
		    teardown),
		cmocka_unit_test(test_pool_fifo),
		cmocka_unit_test_setup_teardown(test_pool_skips_large, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pool_needs_dirsync, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crash_recovery, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_enospc_open, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_enospc_write, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_edquot_fsync, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_eio_rename, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_eio_dirsync, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_error_sticky, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_refusal, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_scan_while_open, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_scan_counts_unreadable,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_lazy_load, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lazy_load_close_early,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_lazy_load_empty, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_scan_many, setup,
		    teardown),
	};
	int rc =
	    cmocka_run_group_tests_name("queue_envelope", pure, NULL, NULL);

	return rc |
	    cmocka_run_group_tests_name("queue_spool", spool, NULL, NULL);
}
