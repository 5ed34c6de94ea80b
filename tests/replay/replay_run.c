/*
 * replay: runs scenario files against the delivery code (see replay.h and
 * README.md) and reports TAP, one case per scenario:
 *
 *   replay --data DIR [-v] FILE|DIR...       run scenarios
 *   replay --data DIR --parse-errors DIR     the parser's own test: every
 *       file there is malformed and says on its first line, as
 *       "# error: LINE: TEXT", which error the parser must report
 *
 * Each scenario runs in a child process (a crash fails that scenario only)
 * on a fresh loop, spool and driven clock. The daemon's delivery half is
 * assembled as relay/daemon/relay_serve.c does it: configuration, queue, tlsa/ context,
 * resolver (the fake), scheduler. Messages are submitted through the real
 * queue API and handed to the scheduler as the inbound server does.
 *
 * The loop never sleeps: the runner runs it without blocking until nothing
 * is due at the current instant ("settle"), and a `step` moves the clock
 * from one due timer to the next (replay_clock.h). Only thread-pool work
 * (the queue's file I/O) is waited for in real time.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "relay_deliver.h"
#include "relay_log.h"
#include "relay_text.h"
#include "replay.h"
#include "replay_clock.h"

struct replay_world *replay_world;

static bool verbose;

/* ------------------------------------------------------------ the log */

#define LOG_MAX 100000

static char *log_lines[LOG_MAX];
static unsigned long log_turn[LOG_MAX]; /* loop iteration of each line */
static size_t nlog;
/* Loop iterations so far (a prepare handle counts them), so that a
 * scenario can say that things happened in separate turns of the loop. */
static unsigned long loop_turns;
static size_t window; /* first line of the current window */

struct dsn_doc {
	char id[RELAY_QUEUE_ID_SIZE];
	char rcpt[512]; /* its envelope recipient: the original sender */
	char *text;
};
#define DSN_MAX 64
static struct dsn_doc dsns[DSN_MAX];
static size_t ndsn;

/* What relay_serve.c owns for delivery: the context the scheduler
 * borrows (struct relay_deliver_ctx) and what it points to. */
struct replay_daemon {
	uv_loop_t *loop;
	struct relay_config cfg;
	struct relay_queue *queue;
	struct relay_dns *dns;
	struct tlsa_ctx *tlsa;
	struct tlsa_digests digests;
	struct relay_deliver_ctx ctx;
	struct relay_sched *sched;
	struct relay_monitor *monitor; /* memory only: no file */
};
static struct replay_daemon daemon_;

static void
capture_dsn(const char *line)
{
	/* event=queued-local id=ID: a DSN (the only local submissions here)
	 * was committed; keep its text before any delivery can remove it. */
	const char *p = strstr(line, " id=");
	if (p == NULL || ndsn == DSN_MAX || daemon_.queue == NULL)
		return;
	p += 4;
	size_t n = strcspn(p, " ");
	if (n == 0 || n >= RELAY_QUEUE_ID_SIZE)
		return;
	struct dsn_doc *d = &dsns[ndsn];
	memcpy(d->id, p, n);
	d->id[n] = '\0';
	char path[4096];
	if (relay_queue_content_path(daemon_.queue, d->id, path, sizeof path) !=
	    0)
		return;
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return;
	size_t cap = 65536;
	d->text = calloc(1, cap + 1);
	size_t got = d->text != NULL ? fread(d->text, 1, cap, f) : 0;
	fclose(f);
	if (got == 0) {
		free(d->text);
		d->text = NULL;
	}
	struct relay_queue_envelope *env = NULL;
	if (d->text != NULL &&
	    relay_queue_read(relay_queue_dir(daemon_.queue), d->id, &env) ==
	        0 &&
	    env->rcpt_count > 0)
		(void)snprintf(d->rcpt, sizeof d->rcpt, "%s",
		    env->rcpt[0].address);
	relay_queue_envelope_free(env);
	if (d->text != NULL)
		ndsn++;
}

static void
log_sink(enum relay_log_level level, const char *text, size_t len, void *arg)
{
	(void)level;
	(void)arg;
	char *line = strndup(text, len);
	if (line == NULL)
		abort();
	if (verbose)
		printf("# log: %s\n", line);
	if (strstr(line, " event=queued-local ") != NULL &&
	    strstr(line, " id= ") == NULL)
		capture_dsn(line);
	if (nlog < LOG_MAX) {
		log_turn[nlog] = loop_turns;
		log_lines[nlog++] = line;
	} else
		free(line);
}

/* ------------------------------------------------------------ the loop */

static uv_loop_t loop;
static bool loop_stuck;
static uv_prepare_t turn_counter;

static void
count_turn(uv_prepare_t *h)
{
	(void)h;
	loop_turns++;
}

/* Run everything due at this instant. */
static void
settle(void)
{
	for (long guard = 0; guard < 2000000; guard++) {
		(void)uv_run(&loop, UV_RUN_NOWAIT);
		if (loop.active_reqs.count > 0) {
			/* The queue's file I/O in the thread pool: real time. */
			struct timespec ts = { 0, 20000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (!uv_loop_alive(&loop) || uv_backend_timeout(&loop) != 0)
			return;
	}
	loop_stuck = true;
}

/* Move the clock forward by ms, firing every timer on its way in order. */
static void
advance(uint64_t ms)
{
	uint64_t target = replay_clock_elapsed_ms() + ms;
	settle();
	for (int guard = 0; guard < 1000000 && !loop_stuck; guard++) {
		int t = uv_loop_alive(&loop) ? uv_backend_timeout(&loop) : -1;
		uint64_t now = replay_clock_elapsed_ms();
		if (t < 0 || now + (uint64_t)t > target) {
			replay_clock_advance_ms(target - now);
			settle();
			return;
		}
		replay_clock_advance_ms((uint64_t)t);
		settle();
	}
	loop_stuck = true;
}

/* ----------------------------------------------------------- scenario */

struct submitted {
	char id[RELAY_QUEUE_ID_SIZE]; /* the first copy's */
	const struct rpl_submit *s;
	unsigned committed; /* copies committed */
	int status;         /* the first error, or 0 */
};
static struct submitted subs[RPL_MAX_ACTIONS];
static size_t nsubs;

static struct rpl_scenario *cur;
static bool failed;
static bool dumped;

static void __attribute__((format(printf, 2, 3)))
fail_at(unsigned line, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	printf("# %s:%u: %s\n", cur->path, line, msg);
	failed = true;
}

/* On the first failure, what the scenario produced, for the reader. */
static void
dump_context(void)
{
	if (dumped || verbose)
		return;
	dumped = true;
	printf("# --- log lines of the current window:\n");
	for (size_t i = window; i < nlog && i < window + 80; i++)
		printf("#   %s\n", log_lines[i]);
	for (size_t k = 0; k < cur->npeers; k++) {
		const struct rpl_peer *p = &cur->peers[k];
		printf("# --- peer %s saw:\n", p->addr);
		for (size_t i = 0; i < p->ntranscript && i < 60; i++)
			printf("#   %s\n", p->transcript[i]);
	}
}

struct rpl_peer *
replay_peer_find(const char *addr)
{
	for (size_t i = 0; i < cur->npeers; i++)
		if (strcmp(cur->peers[i].addr, addr) == 0)
			return &cur->peers[i];
	return NULL;
}

static bool
matches(const char *re, const char *text)
{
	regex_t rx;
	if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	bool m = regexec(&rx, text, 0, NULL, 0) == 0;
	regfree(&rx);
	return m;
}

static void
committed(struct relay_queue_writer *w, int status, const char *id, void *arg)
{
	struct submitted *sb = arg;
	(void)w;
	sb->committed++;
	if (sb->status == 0)
		sb->status = status;
	if (status == 0) {
		if (sb->id[0] == '\0')
			relay_copy(sb->id, sizeof sb->id, id);
		/* As the inbound server does after its commit. */
		if (daemon_.sched != NULL)
			relay_sched_new_message(daemon_.sched, id);
	}
}

static void
do_submit(const struct rpl_action *a)
{
	const struct rpl_submit *s = a->submit;
	struct relay_queue_envelope *env = relay_queue_envelope_new();
	if (env == NULL)
		abort();
	int r = relay_queue_set_str(&env->sender, s->from);
	r |= relay_queue_set_str(&env->client_addr, "127.0.0.1");
	r |= relay_queue_set_str(&env->client_name, "localhost");
	r |= relay_queue_set_str(&env->helo, "postfix.replay.test");
	r |= relay_queue_set_str(&env->envid, s->envid);
	for (size_t i = 0; i < s->nto; i++)
		r |=
		    relay_queue_rcpt_add(env, s->to[i], "", s->notify[i], NULL);
	env->ret = s->ret_full ? RELAY_QUEUE_RET_FULL
	    : s->ret_hdrs      ? RELAY_QUEUE_RET_HDRS
	                       : RELAY_QUEUE_RET_NONE;
	env->smtputf8 = s->smtputf8;
	env->requiretls = s->requiretls;
	env->body =
	    s->eightbit ? RELAY_QUEUE_BODY_8BITMIME : RELAY_QUEUE_BODY_7BIT;
	env->content_8bit = s->eightbit;
	if (r != 0)
		abort();

	/* The content: a short message, padded with lines to body-bytes. */
	size_t cap = s->body_bytes + 1024;
	char *body = malloc(cap);
	if (body == NULL)
		abort();
	int n = snprintf(body, cap,
	    "From: <%s>\r\nTo: <%s>\r\nSubject: replay %zu\r\n%s"
	    "Message-ID: <%zu@replay.test>\r\n\r\n%s\r\n",
	    s->from, s->to[0], nsubs,
	    s->tls_required_no ? "TLS-Required:\r\n No\r\n" : "", nsubs,
	    s->eightbit ? "Gr\xc3\xbc\xc3\x9f"
	                  "e."
	                : "Hello.");
	size_t len = (size_t)n;
	while (len + 80 <= s->body_bytes) {
		memset(body + len, 'x', 76);
		memcpy(body + len + 76, "\r\n", 2);
		len += 78;
	}
	struct submitted *sb = &subs[nsubs++];
	memset(sb, 0, sizeof *sb);
	sb->s = s;
	/* copies=N: N messages committed one after the other without the
	 * loop running in between, as a burst of arrivals. */
	unsigned copies = s->copies > 0 ? s->copies : 1;
	for (unsigned k = 0; k < copies && r == 0; k++) {
		struct relay_queue_writer *w = NULL;
		r = relay_queue_msg_begin(daemon_.queue, env, &w);
		if (r == 0)
			r = relay_queue_writer_write(w, body, len, NULL, NULL);
		if (r == 0)
			r = relay_queue_writer_commit(w, committed, sb);
		else if (w != NULL)
			relay_queue_writer_abort(w);
	}
	relay_queue_envelope_free(env);
	free(body);
	if (r != 0)
		fail_at(a->line, "cannot queue the message: %s",
		    relay_queue_strerror(r));
	settle();
	if (r == 0 && (sb->committed != copies || sb->status != 0))
		fail_at(a->line, "the message was not committed");
}

static void
sched_done(void *arg)
{
	struct replay_daemon *d = arg;
	d->sched = NULL; /* freed before this runs */
}

/* A DSN was committed: as the daemon does, let the scheduler see it. */
static void
local_queued(void *arg)
{
	struct replay_daemon *d = arg;
	if (d->sched != NULL)
		relay_sched_kick(d->sched);
}

/* A TLS session attempt for TLS reporting (relay_deliver.h): the daemon
 * counts it; here it becomes a log line that scenarios can expect
 * (`expect log-count N event=tls-session ...`). */
static void
tls_session(void *arg, const struct relay_tls_session *ev)
{
	(void)arg;
	struct relay_log_line l;
	if (!relay_log_begin(&l, RELAY_LOG_INFO, "tls-session"))
		return;
	relay_log_str(&l, "domain", ev->domain);
	relay_log_str(&l, "mx", ev->mx);
	relay_log_str(&l, "addr", ev->addr[0] ? ev->addr : "-");
	relay_log_str(&l, "verdict", tlsa_verdict_kind_name(ev->verdict->kind));
	relay_log_str(&l, "class",
	    ev->fclass == RELAY_FAIL_CLASS_NONE
	        ? "ok"
	        : relay_fail_class_name(ev->fclass));
	relay_log_end(&l);
}

/* Inflow control (relay_deliver.h): the daemon counts tokens for
 * in_flow_delay; here each call becomes a log line that scenarios can
 * count (`event=in-flow token=one` per message taken on, `token=fill`
 * when no due message waits). */
static void
in_flow(void *arg, bool idle)
{
	(void)arg;
	struct relay_log_line l;
	if (!relay_log_begin(&l, RELAY_LOG_DEBUG, "in-flow"))
		return;
	relay_log_str(&l, "token", idle ? "fill" : "one");
	relay_log_end(&l);
}

/* The message a recipient was submitted in (the first one). */
static const struct submitted *
sub_of(const char *rcpt)
{
	for (size_t i = 0; i < nsubs; i++)
		for (size_t k = 0; k < subs[i].s->nto; k++)
			if (strcasecmp(subs[i].s->to[k], rcpt) == 0)
				return &subs[i];
	return NULL;
}

/* The first DSN queued for rcpt (the sender of a bounced message). */
static const struct dsn_doc *
dsn_of(const char *rcpt)
{
	for (size_t i = 0; i < ndsn; i++)
		if (strcasecmp(dsns[i].rcpt, rcpt) == 0)
			return &dsns[i];
	return NULL;
}

static void
expect_queue(const struct rpl_action *a)
{
	/* A submitted message, else a DSN sent to that address. */
	const struct submitted *sb = sub_of(a->arg);
	const struct dsn_doc *dd = sb == NULL ? dsn_of(a->arg) : NULL;
	const char *id = sb != NULL ? sb->id : dd != NULL ? dd->id : "";
	if (id[0] == '\0') {
		fail_at(a->line, "no submitted message or DSN has recipient %s",
		    a->arg);
		return;
	}
	struct relay_queue_info info;
	bool present = relay_queue_lookup(daemon_.queue, id, &info) == 0;
	if (strcmp(a->state, "removed") == 0) {
		if (present)
			fail_at(a->line, "message %s is still queued", id);
		return;
	}
	if (!present) {
		fail_at(a->line,
		    "message %s of %s was removed from the queue; expected %s",
		    id, a->arg, a->state);
		return;
	}
	struct relay_queue_envelope *env = NULL;
	int r = relay_queue_read(relay_queue_dir(daemon_.queue), id, &env);
	if (r != 0) {
		fail_at(a->line, "cannot read envelope %s: %s", id,
		    relay_queue_strerror(r));
		return;
	}
	const struct relay_queue_rcpt *rc = NULL;
	for (size_t i = 0; i < env->rcpt_count; i++)
		if (strcasecmp(env->rcpt[i].address, a->arg) == 0)
			rc = &env->rcpt[i];
	if (rc == NULL) {
		fail_at(a->line, "recipient %s not in envelope %s", a->arg, id);
	} else {
		const char *st = relay_queue_rcpt_status_name(rc->status);
		if (strcmp(st, a->state) != 0 ||
		    (a->dsn[0] != '\0' && strcmp(rc->dsn, a->dsn) != 0) ||
		    (a->klass[0] != '\0' &&
		        strcmp(rc->failure_class, a->klass) != 0) ||
		    (a->attempts >= 0 && rc->attempts != (uint32_t)a->attempts))
			fail_at(a->line,
			    "queue %s: want %s dsn=%s class=%s attempts=%d; got %s "
			    "dsn=%s class=%s attempts=%u why=\"%s\"",
			    a->arg, a->state, a->dsn[0] ? a->dsn : "*",
			    a->klass[0] ? a->klass : "*", a->attempts, st,
			    rc->dsn, rc->failure_class, rc->attempts,
			    rc->reason);
	}
	relay_queue_envelope_free(env);
}

/* Whether DSN text holds a per-recipient block for rcpt with the action
 * and status (RFC 3464 2.3); action NULL: any block for rcpt. */
static bool
dsn_has(const char *text, const char *rcpt, const char *action,
    const char *status)
{
	const char *p = text;
	while ((p = strcasestr(p, "Final-Recipient: rfc822;")) != NULL) {
		const char *end = strstr(p, "\r\n\r\n");
		size_t blen = end != NULL ? (size_t)(end - p) : strlen(p);
		char block[4096];
		if (blen >= sizeof block)
			blen = sizeof block - 1;
		memcpy(block, p, blen);
		block[blen] = '\0';
		p += blen > 0 ? blen : 1;
		const char *addr = block + strlen("Final-Recipient: rfc822;");
		while (*addr == ' ')
			addr++;
		size_t al = strcspn(addr, "\r\n");
		if (al != strlen(rcpt) || strncasecmp(addr, rcpt, al) != 0)
			continue;
		if (action == NULL)
			return true;
		char want_a[64], want_s[64];
		snprintf(want_a, sizeof want_a, "\r\nAction: %s\r", action);
		snprintf(want_s, sizeof want_s, "\r\nStatus: %s", status);
		char tail[4100];
		snprintf(tail, sizeof tail, "%s\r\n", block);
		const char *sp = strstr(tail, want_s);
		if (strstr(tail, want_a) != NULL && sp != NULL &&
		    (sp[strlen(want_s)] == '\r' || sp[strlen(want_s)] == ' '))
			return true;
	}
	return false;
}

static void
expectation(const struct rpl_action *a)
{
	switch (a->kind) {
	case RPL_A_SUBMIT:
	case RPL_A_STEP:
	case RPL_A_STOP:
	case RPL_A_DNS:
		return;
	case RPL_A_EXPECT_LOG:
	case RPL_A_EXPECT_NO_LOG:
	case RPL_A_EXPECT_LOG_COUNT: {
		unsigned n = 0;
		const char *first = NULL;
		for (size_t i = window; i < nlog; i++)
			if (matches(a->regex, log_lines[i])) {
				n++;
				if (first == NULL)
					first = log_lines[i];
			}
		if (a->kind == RPL_A_EXPECT_LOG && n == 0)
			fail_at(a->line,
			    "no log line in this window matches /%s/",
			    a->regex);
		if (a->kind == RPL_A_EXPECT_NO_LOG && n > 0)
			fail_at(a->line, "a log line matches /%s/: %s",
			    a->regex, first);
		if (a->kind == RPL_A_EXPECT_LOG_COUNT && n != a->count)
			fail_at(a->line, "%u log lines match /%s/, want %u", n,
			    a->regex, a->count);
		return;
	}
	case RPL_A_EXPECT_LOG_APART: {
		/* No two lines that match were written in the same turn of
		 * the loop: the loop ran its other work between them. */
		unsigned long prev = 0;
		bool have = false;
		for (size_t i = window; i < nlog; i++) {
			if (!matches(a->regex, log_lines[i]))
				continue;
			if (have && log_turn[i] == prev) {
				fail_at(a->line,
				    "two lines matching /%s/ in one loop turn: %s",
				    a->regex, log_lines[i]);
				return;
			}
			prev = log_turn[i];
			have = true;
		}
		if (!have)
			fail_at(a->line,
			    "no log line in this window matches /%s/",
			    a->regex);
		return;
	}
	case RPL_A_EXPECT_QUEUE:
		expect_queue(a);
		return;
	case RPL_A_EXPECT_DSN: {
		for (size_t i = 0; i < ndsn; i++)
			if (dsn_has(dsns[i].text, a->arg, a->state, a->dsn))
				return;
		fail_at(a->line, "no DSN says %s %s for %s (%zu DSNs queued)",
		    a->state, a->dsn, a->arg, ndsn);
		for (size_t i = 0; i < ndsn; i++)
			printf("# --- DSN %s:\n#   %.1500s\n", dsns[i].id,
			    dsns[i].text);
		return;
	}
	case RPL_A_EXPECT_NO_DSN:
		for (size_t i = 0; i < ndsn; i++)
			if (a->arg[0] == '\0' ||
			    dsn_has(dsns[i].text, a->arg, NULL, NULL)) {
				fail_at(a->line, "a DSN was queued (%s)%s%s",
				    dsns[i].id, a->arg[0] ? " for " : "",
				    a->arg);
				return;
			}
		return;
	case RPL_A_EXPECT_DSN_TEXT:
	case RPL_A_EXPECT_NO_DSN_TEXT: {
		/* Over each DSN's whole text; ^ and $ per line (CRLF: end a
		 * pattern before the \r, not with $). */
		size_t hit = ndsn;
		regex_t rx;
		if (regcomp(&rx, a->regex,
		        REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0) {
			fail_at(a->line, "bad regex /%s/", a->regex);
			return;
		}
		for (size_t i = 0; i < ndsn && hit == ndsn; i++)
			if (regexec(&rx, dsns[i].text, 0, NULL, 0) == 0)
				hit = i;
		regfree(&rx);
		if (a->kind == RPL_A_EXPECT_DSN_TEXT && hit == ndsn)
			fail_at(a->line, "no DSN text matches /%s/ (%zu DSNs)",
			    a->regex, ndsn);
		if (a->kind == RPL_A_EXPECT_NO_DSN_TEXT && hit < ndsn)
			fail_at(a->line, "DSN %s matches /%s/", dsns[hit].id,
			    a->regex);
		return;
	}
	case RPL_A_EXPECT_CONNECTIONS:
	case RPL_A_EXPECT_MESSAGES: {
		const struct rpl_peer *p = replay_peer_find(a->arg);
		unsigned got = 0;
		if (p != NULL)
			got = a->kind == RPL_A_EXPECT_CONNECTIONS
			    ? p->connections
			    : p->messages;
		else if (a->kind == RPL_A_EXPECT_CONNECTIONS)
			for (size_t i = 0; i < replay_world->nunknown_peer; i++)
				got += strcmp(replay_world->unknown_peer[i],
				           a->arg) == 0;
		if (got != a->count)
			fail_at(a->line, "%s %s: %u, want %u",
			    a->kind == RPL_A_EXPECT_CONNECTIONS
			        ? "connections to"
			        : "messages accepted by",
			    a->arg, got, a->count);
		return;
	}
	case RPL_A_EXPECT_QUERY:
	case RPL_A_EXPECT_NO_QUERY: {
		/* Over every lookup made so far, "name TYPE". */
		const struct replay_world *w = replay_world;
		const char *hit = NULL;
		for (size_t i = 0; i < w->nqueries && hit == NULL; i++)
			if (matches(a->regex, w->queries[i]))
				hit = w->queries[i];
		if (a->kind == RPL_A_EXPECT_QUERY && hit == NULL)
			fail_at(a->line, "no DNS lookup matches /%s/",
			    a->regex);
		if (a->kind == RPL_A_EXPECT_NO_QUERY && hit != NULL)
			fail_at(a->line, "a DNS lookup matches /%s/: %s",
			    a->regex, hit);
		return;
	}
	case RPL_A_EXPECT_TRANSCRIPT:
	case RPL_A_EXPECT_NO_TRANSCRIPT: {
		const struct rpl_peer *p = replay_peer_find(a->arg);
		if (p == NULL) {
			fail_at(a->line, "no peer %s in this scenario", a->arg);
			return;
		}
		const char *hit = NULL;
		for (size_t i = 0; i < p->ntranscript && hit == NULL; i++)
			if (matches(a->regex, p->transcript[i]))
				hit = p->transcript[i];
		if (a->kind == RPL_A_EXPECT_TRANSCRIPT && hit == NULL)
			fail_at(a->line, "peer %s saw nothing matching /%s/",
			    a->arg, a->regex);
		if (a->kind == RPL_A_EXPECT_NO_TRANSCRIPT && hit != NULL)
			fail_at(a->line, "peer %s saw /%s/: %s", a->arg,
			    a->regex, hit);
		return;
	}
	}
}

/* {dir} and {data} in config and file lines. */
static char *
substitute(const char *in, const char *dir, const char *data)
{
	size_t cap = strlen(in) * 4 + 4096;
	char *out = malloc(cap);
	if (out == NULL)
		abort();
	size_t o = 0;
	for (const char *p = in; *p != '\0';) {
		const char *rep = NULL;
		size_t skip = 0;
		if (strncmp(p, "{dir}", 5) == 0)
			rep = dir, skip = 5;
		else if (strncmp(p, "{data}", 6) == 0)
			rep = data, skip = 6;
		if (rep != NULL) {
			size_t n = strlen(rep);
			if (o + n + 1 >= cap)
				abort();
			memcpy(out + o, rep, n);
			o += n;
			p += skip;
		} else {
			if (o + 2 >= cap)
				abort();
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	return out;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
sender_domains(struct replay_world *w)
{
	for (size_t i = 0; i < cur->nactions; i++) {
		const struct rpl_submit *s = cur->actions[i].submit;
		if (s == NULL)
			continue;
		const char *at = strrchr(s->from, '@');
		if (at == NULL || w->nallowed == RPL_RCPT_MAX)
			continue;
		relay_copy(w->allowed[w->nallowed++], RPL_NAME_MAX, at + 1);
	}
}

/* Run one scenario; returns 0 when every expectation held. */
/*
 * A `dns` run line: its answer replaces the scenario's answer for the same
 * name and type, or, right after a `dns` line for the same name and type,
 * adds its records to it (so consecutive lines give a whole RRset). The
 * fake resolver reads the scenario at each lookup. Returns 0 or -1.
 */
static int
dns_change(struct rpl_scenario *sc, const struct rpl_action *a,
    const struct rpl_action *prev)
{
	const struct rpl_rrset *src = a->rrset;
	struct rpl_rrset *dst = NULL;
	for (size_t i = 0; i < sc->nrrsets; i++)
		if (sc->rrsets[i].type == src->type &&
		    strcmp(sc->rrsets[i].name, src->name) == 0)
			dst = &sc->rrsets[i];
	bool extend = dst != NULL && prev != NULL && prev->kind == RPL_A_DNS &&
	    prev->rrset->type == src->type &&
	    strcmp(prev->rrset->name, src->name) == 0;
	if (dst == NULL) {
		if (sc->nrrsets == RPL_MAX_RRSETS)
			return -1;
		dst = &sc->rrsets[sc->nrrsets++];
		memset(dst, 0, sizeof *dst);
	}
	if (!extend) {
		for (size_t k = 0; k < dst->nrr; k++)
			free(dst->rr[k].p);
		*dst = *src;
		dst->nrr = 0;
	}
	for (size_t k = 0; k < src->nrr; k++) {
		if (dst->nrr == RPL_RR_MAX)
			return -1;
		uint8_t *p = malloc(src->rr[k].len ? src->rr[k].len : 1);
		if (p == NULL)
			return -1;
		memcpy(p, src->rr[k].p, src->rr[k].len);
		dst->rr[dst->nrr].p = p;
		dst->rr[dst->nrr].len = src->rr[k].len;
		dst->nrr++;
	}
	return 0;
}

static int
run_scenario(struct rpl_scenario *sc, const char *data_dir)
{
	cur = sc;
	struct replay_world world = { .sc = sc, .data_dir = data_dir };
	replay_world = &world;
	sender_domains(&world);
	replay_clock_reset();

	const char *tmp = getenv("TMPDIR");
	char dir[1024];
	snprintf(dir, sizeof dir, "%s/replay.XXXXXX",
	    tmp != NULL && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		printf("# cannot make a temporary directory in %s: %s\n", dir,
		    strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < sc->nfiles; i++) {
		char path[1200];
		snprintf(path, sizeof path, "%s/%s", dir, sc->files[i].name);
		char *text = substitute(sc->files[i].text, dir, data_dir);
		FILE *f = fopen(path, "w");
		if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
			printf("# cannot write %s\n", path);
			free(text);
			return 1;
		}
		free(text);
	}

	/* Defaults first, the scenario's lines after them (a later line wins),
	 * the spool last. */
	char head[2048];
	snprintf(head, sizeof head,
	    "myhostname = relay.replay.test\n"
	    "log_level = debug\n"
	    "dns_trust_anchor_file = \"\"\n");
	char tail[1200];
	snprintf(tail, sizeof tail, "spool_dir = %s/spool\n", dir);
	char *body =
	    substitute(sc->config != NULL ? sc->config : "", dir, data_dir);
	size_t len = strlen(head) + strlen(body) + strlen(tail) + 1;
	char *text = malloc(len);
	if (text == NULL)
		abort();
	snprintf(text, len, "%s%s%s", head, body, tail);
	free(body);

	struct replay_daemon *d = &daemon_;
	memset(d, 0, sizeof *d);
	char err[RELAY_CONFIG_ERRMAX];
	int r = relay_config_load_buf(&d->cfg, sc->path, (const uint8_t *)text,
	    strlen(text), err);
	free(text);
	if (r != 0) {
		printf("# config: %s\n", err);
		return 1;
	}
	relay_log_set_stderr(false);
	relay_log_set_sink(log_sink, NULL);
	relay_log_set_level(RELAY_LOG_DEBUG);
	if (uv_loop_init(&loop) != 0)
		abort();
	loop_turns = 0;
	if (uv_prepare_init(&loop, &turn_counter) != 0 ||
	    uv_prepare_start(&turn_counter, count_turn) != 0)
		abort();
	uv_unref((uv_handle_t *)&turn_counter);
	d->loop = &loop;
	relay_log_set_clock(replay_clock());
	tlsa_digests_default(&d->digests);
	char qerr[512] = "";
	r = relay_queue_open(&loop, d->cfg.spool_dir, &d->queue, qerr,
	    sizeof qerr);
	if (r != 0) {
		printf("# queue: %s\n",
		    qerr[0] ? qerr : relay_queue_strerror(r));
		return 1;
	}
	relay_queue_set_clock(d->queue, replay_clock());
	struct tlsa_ctx_config tc = {
		.digests = &d->digests,
		.ca_file = d->cfg.tls_ca_file != NULL && d->cfg.tls_ca_file[0]
		    ? d->cfg.tls_ca_file
		    : NULL,
		/* Certificates are judged at the scenario's own time, which
		 * steps do not move far: the fixtures never expire. */
		.verify_time = (int64_t)REPLAY_CLOCK_EPOCH_S,
	};
	if (tlsa_ctx_new(&tc, &d->tlsa) != 0) {
		printf("# tlsa_ctx_new failed\n");
		return 1;
	}
	struct relay_dns_opts o;
	relay_dns_opts_from_config(&o, &d->cfg);
	if (relay_dns_new(&loop, &o, &d->dns) != 0 ||
	    relay_dns_start(d->dns) != 0) {
		printf("# resolver setup failed\n");
		return 1;
	}
	/* The routing monitor as serve has it, without its file. */
	d->monitor = NULL;
	if (d->cfg.routing_monitor_enable) {
		struct relay_monitor_ctx mc = {
			.loop = &loop,
			.clock = replay_clock(),
			.max_domains = (size_t)d->cfg.routing_monitor_size,
		};
		if (relay_monitor_open(&mc, &d->monitor) != 0) {
			printf("# routing monitor setup failed\n");
			return 1;
		}
	}
	d->ctx = (struct relay_deliver_ctx){
		.loop = &loop,
		.clock = replay_clock(),
		.cfg = &d->cfg,
		.queue = d->queue,
		.dns = &d->dns,
		.tlsa = d->tlsa,
		.digests = &d->digests,
		.monitor = d->monitor,
		.local_queued = local_queued,
		.tls_session = tls_session,
		.in_flow = in_flow,
		.arg = d,
	};
	if (relay_sched_new(&d->ctx, &d->sched) != 0) {
		printf("# scheduler setup failed\n");
		return 1;
	}
	settle();

	for (size_t i = 0; i < sc->nactions && !loop_stuck; i++) {
		const struct rpl_action *a = &sc->actions[i];
		switch (a->kind) {
		case RPL_A_SUBMIT:
			window = nlog;
			if (d->sched == NULL)
				fail_at(a->line, "submit after stop");
			else
				do_submit(a);
			break;
		case RPL_A_STEP:
			window = nlog;
			advance(a->ms);
			break;
		case RPL_A_STOP:
			window = nlog;
			if (d->sched != NULL)
				relay_sched_stop(d->sched, a->ms, sched_done,
				    d);
			advance(a->ms);
			break;
		case RPL_A_EXPECT_LOG:
		case RPL_A_EXPECT_NO_LOG:
		case RPL_A_EXPECT_LOG_COUNT:
		case RPL_A_EXPECT_LOG_APART:
		case RPL_A_EXPECT_QUEUE:
		case RPL_A_EXPECT_DSN:
		case RPL_A_EXPECT_NO_DSN:
		case RPL_A_EXPECT_DSN_TEXT:
		case RPL_A_EXPECT_NO_DSN_TEXT:
		case RPL_A_EXPECT_CONNECTIONS:
		case RPL_A_EXPECT_MESSAGES:
		case RPL_A_EXPECT_TRANSCRIPT:
		case RPL_A_EXPECT_NO_TRANSCRIPT:
		case RPL_A_EXPECT_QUERY:
		case RPL_A_EXPECT_NO_QUERY:
			expectation(a);
			if (failed)
				dump_context();
			break;
		case RPL_A_DNS:
			window = nlog;
			if (dns_change(sc, a,
			        i > 0 ? &sc->actions[i - 1] : NULL) != 0)
				fail_at(a->line, "cannot change the DNS");
			break;
		}
		if (world.fatal[0] != '\0') {
			fail_at(a->line, "%s", world.fatal);
			break;
		}
	}

	/* Teardown as serve does it; every handle must close. */
	if (d->sched != NULL)
		relay_sched_stop(d->sched, 0, sched_done, d);
	for (int i = 0; i < 100 && d->sched != NULL && !loop_stuck; i++)
		advance(1000);
	if (d->sched != NULL)
		fail_at(0, "the scheduler did not stop");
	relay_monitor_close(d->monitor, NULL, NULL);
	d->monitor = NULL;
	relay_dns_close(d->dns, NULL, NULL);
	relay_queue_close(d->queue, NULL, NULL);
	uv_close((uv_handle_t *)&turn_counter, NULL);
	for (int i = 0; i < 1000 && uv_loop_alive(&loop) && !loop_stuck; i++)
		advance(10000);
	if (loop_stuck)
		fail_at(0, "the loop never settled (a callback loop?)");
	if (uv_loop_close(&loop) != 0)
		fail_at(0, "handles left open at the end");
	tlsa_ctx_free(d->tlsa);
	relay_config_free(&d->cfg);
	for (size_t i = 0; i < world.nunscripted; i++)
		fail_at(0,
		    "unscripted DNS lookup %s (add it to the dns section, or a zone)",
		    world.unscripted[i]);
	for (size_t i = 0; i < world.nunknown_peer; i++)
		fail_at(0, "connection to %s, which has no peer section",
		    world.unknown_peer[i]);
	if (failed)
		dump_context();
	relay_log_set_sink(NULL, NULL);
	(void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	for (size_t i = 0; i < nlog; i++)
		free(log_lines[i]);
	for (size_t i = 0; i < ndsn; i++)
		free(dsns[i].text);
	for (size_t i = 0; i < world.nqueries; i++)
		free(world.queries[i]);
	replay_world = NULL;
	return failed ? 1 : 0;
}

/* ------------------------------------------------------------------ main */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t
collect(const char *arg, char ***files, size_t n)
{
	struct stat st;
	if (stat(arg, &st) != 0 || !S_ISDIR(st.st_mode)) {
		*files = realloc(*files, (n + 1) * sizeof **files);
		(*files)[n] = strdup(arg);
		return n + 1;
	}
	DIR *dp = opendir(arg);
	if (dp == NULL)
		return n;
	size_t start = n;
	struct dirent *e;
	while ((e = readdir(dp)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l < 5 || strcmp(e->d_name + l - 4, ".rpl") != 0)
			continue;
		*files = realloc(*files, (n + 1) * sizeof **files);
		if (asprintf(&(*files)[n], "%s/%s", arg, e->d_name) < 0)
			abort();
		n++;
	}
	closedir(dp);
	/* An empty directory leaves *files NULL: qsort() must not see it. */
	if (n > start)
		qsort(*files + start, n - start, sizeof **files, cmp_str);
	return n;
}

static const char *
base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s != NULL ? s + 1 : path;
}

/* The parser's own test: each malformed file names its error. */
static int
check_parse_error(const char *path, const char *data_dir, char *why,
    size_t size)
{
	FILE *f = fopen(path, "r");
	char first[512] = "";
	if (f == NULL || fgets(first, sizeof first, f) == NULL) {
		if (f != NULL)
			fclose(f);
		snprintf(why, size, "cannot read");
		return 1;
	}
	fclose(f);
	first[strcspn(first, "\n")] = '\0';
	if (strncmp(first, "# error: ", 9) != 0) {
		snprintf(why, size, "first line is not '# error: LINE: TEXT'");
		return 1;
	}
	char want[1200];
	snprintf(want, sizeof want, "%s:%s", path, first + 9);
	struct rpl_scenario *sc = NULL;
	char err[1024] = "";
	if (rpl_scenario_load(path, data_dir, &sc, err, sizeof err) == 0) {
		rpl_scenario_free(sc);
		snprintf(why, size, "accepted; want %s", want);
		return 1;
	}
	if (strncmp(err, want, strlen(want)) != 0) {
		snprintf(why, size, "got '%s'; want '%s'", err, want);
		return 1;
	}
	return 0;
}

/* One scenario in a child process, its TAP lines kept until its turn. */
struct job {
	struct rpl_scenario *sc;
	const char *file;
	FILE *out;
	pid_t pid;
	bool done;
	int status;
};

static void
job_start(struct job *j, const char *data_dir)
{
	j->out = tmpfile();
	if (j->out == NULL) {
		perror("tmpfile");
		exit(2);
	}
	/* Nothing buffered may be written twice by the child's exit(). */
	fflush(NULL);
	j->pid = fork();
	if (j->pid < 0) {
		perror("fork");
		exit(2);
	}
	if (j->pid == 0) {
		if (dup2(fileno(j->out), STDOUT_FILENO) < 0)
			_exit(2);
		exit(run_scenario(j->sc, data_dir));
	}
}

/* Print job j's result as TAP case n; returns whether it counts as failed. */
static bool
job_report(struct job *j, size_t n)
{
	char buf[4096];
	rewind(j->out);
	size_t r;
	while ((r = fread(buf, 1, sizeof buf, j->out)) > 0)
		fwrite(buf, 1, r, stdout);
	fclose(j->out);
	int status = j->status;
	bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (WIFSIGNALED(status))
		printf("# killed by signal %d\n", WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) > 1)
		printf("# exit status %d (sanitizer report on stderr?)\n",
		    WEXITSTATUS(status));
	printf("%s %zu - %s: %s%s%s\n", ok ? "ok" : "not ok", n, base(j->file),
	    j->sc->title, j->sc->todo[0] ? " # TODO " : "", j->sc->todo);
	fflush(stdout);
	return !ok && j->sc->todo[0] == '\0';
}

int
main(int argc, char **argv)
{
	const char *data_dir = NULL;
	bool parse_errors = false;
	long jobs = 1;
	char **files = NULL;
	size_t n = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-v") == 0)
			verbose = true;
		else if (strcmp(argv[i], "--parse-errors") == 0)
			parse_errors = true;
		else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
			data_dir = argv[++i];
		else if (strcmp(argv[i], "-j") == 0 && i + 1 < argc)
			jobs = strtol(argv[++i], NULL, 10);
		else
			n = collect(argv[i], &files, n);
	}
	if (data_dir == NULL || n == 0 || jobs < 1 || jobs > 64) {
		fprintf(stderr,
		    "usage: replay --data CERTDIR [-v] [-j N] [--parse-errors] "
		    "FILE|DIR...\n");
		for (size_t i = 0; i < n; i++)
			free(files[i]);
		free(files);
		return 2;
	}
	if (verbose)
		jobs = 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("1..%zu\n", n);
	int bad = 0;
	if (parse_errors) {
		for (size_t i = 0; i < n; i++) {
			char why[2048];
			int r = check_parse_error(files[i], data_dir, why,
			    sizeof why);
			printf(
			    "%s %zu - %s: malformed scenario rejected with its line%s%s\n",
			    r == 0 ? "ok" : "not ok", i + 1, base(files[i]),
			    r ? ": " : "", r ? why : "");
			bad += r != 0;
			free(files[i]);
		}
		free(files);
		return bad == 0 ? 0 : 1;
	}
	/* Scenarios are independent (own loop, spool, clock): run up to
	 * `jobs` at once; they mostly wait for the queue's fsync. Results are
	 * printed in file order. */
	struct job *js = calloc(n, sizeof *js);
	if (js == NULL) {
		for (size_t i = 0; i < n; i++)
			free(files[i]);
		free(files);
		return 2;
	}
	size_t next_start = 0, next_print = 0, running = 0;
	while (next_print < n) {
		while (running < (size_t)jobs && next_start < n) {
			struct job *j = &js[next_start];
			j->file = files[next_start];
			char err[1024];
			if (rpl_scenario_load(j->file, data_dir, &j->sc, err,
			        sizeof err) != 0) {
				j->done = true;
				j->status = -1;
				j->out = tmpfile();
				if (j->out != NULL)
					fprintf(j->out, "# %s\n", err);
			} else {
				job_start(j, data_dir);
				running++;
			}
			next_start++;
		}
		while (next_print < next_start && js[next_print].done) {
			struct job *j = &js[next_print];
			if (j->sc == NULL) {
				char buf[1100] = "";
				if (j->out != NULL) {
					rewind(j->out);
					if (fgets(buf, sizeof buf, j->out) ==
					    NULL)
						buf[0] = '\0';
					fclose(j->out);
				}
				buf[strcspn(buf, "\n")] = '\0';
				printf("not ok %zu - %s: does not parse: %s\n",
				    next_print + 1, base(j->file),
				    buf + (buf[0] == '#' ? 2 : 0));
				bad++;
			} else {
				bad += job_report(j, next_print + 1);
				rpl_scenario_free(j->sc);
			}
			free(files[next_print]);
			next_print++;
		}
		if (next_print == n)
			break;
		if (running == 0)
			continue;
		int status;
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			perror("waitpid");
			for (size_t i = next_print; i < n; i++) {
				if (i < next_start)
					rpl_scenario_free(js[i].sc);
				free(files[i]);
			}
			free(js);
			free(files);
			return 2;
		}
		for (size_t i = 0; i < next_start; i++)
			if (js[i].pid == pid && !js[i].done) {
				js[i].done = true;
				js[i].status = status;
				running--;
			}
	}
	free(js);
	free(files);
	return bad == 0 ? 0 : 1;
}
