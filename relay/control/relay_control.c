/*
 * relay_control: the control socket of `serve`, the engine that applies
 * hold/release/delete/retry to a queue, the client used by the CLI, and
 * the periodic report mail. See relay_control.h.
 */
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#include "relay_control.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "relay_clock.h"
#include "relay_dns.h"
#include "relay_log.h"
#include "relay_monitor.h"
#include "relay_report.h"
#include "relay_text.h"

/* How often waiting changes look again at a delivery in flight. */
#define CTL_TICK_MS 100u
/* Recent routing changes in the report mail. */
#define REPORT_CHANGES_MAX 20
/* Simultaneous control connections. */
#define CTL_MAX_CONNS 16u
/* The CLI gives up on a silent daemon after this long. */
#define CLIENT_TIMEOUT_MS 60000

static const char *const cmd_names[] = {
	[RELAY_CONTROL_HOLD] = "hold",
	[RELAY_CONTROL_RELEASE] = "release",
	[RELAY_CONTROL_DELETE] = "delete",
	[RELAY_CONTROL_RETRY] = "retry",
};

const char *
relay_control_cmd_name(enum relay_control_cmd cmd)
{
	switch (cmd) {
	case RELAY_CONTROL_HOLD:
	case RELAY_CONTROL_RELEASE:
	case RELAY_CONTROL_DELETE:
	case RELAY_CONTROL_RETRY:
		return cmd_names[cmd];
	}
	return "?";
}

int
relay_control_cmd_parse(const char *word, enum relay_control_cmd *out)
{
	for (size_t i = 0; i < sizeof(cmd_names) / sizeof(cmd_names[0]); i++) {
		if (strcmp(word, cmd_names[i]) == 0) {
			*out = (enum relay_control_cmd)i;
			return 0;
		}
	}
	return -1;
}

const char *
relay_control_strerror(int status)
{
	switch (status) {
	case RELAY_CONTROL_OK:
		return "ok";
	case RELAY_CONTROL_ENOENT:
		return "no such message in the queue";
	case RELAY_CONTROL_EBUSY:
		return "busy: being delivered right now, try again";
	case RELAY_CONTROL_EIO:
		return "queue error";
	case RELAY_CONTROL_EINVAL:
		return "not a queue id";
	case RELAY_CONTROL_ENOMEM:
		return "out of memory";
	default:
		return "unknown error";
	}
}

int
relay_control_path(const char *spool_dir, char *buf, size_t size)
{
	struct sockaddr_un sun;
	int n = snprintf(buf, size, "%s/%s", spool_dir, RELAY_CONTROL_SOCKET);

	if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(sun.sun_path))
		return -1;
	return 0;
}

/* ================================================================ engine */

struct ctl_item {
	struct relay_control_exec *x;
	char id[RELAY_QUEUE_ID_SIZE];
	uint64_t deadline; /* monotonic ms; 0 until first begun */
	bool waiting;      /* for a delivery in flight to end */
	bool applied;      /* our write went through at least once */
};

struct relay_control_exec {
	uv_loop_t *loop;
	struct relay_queue *q;
	struct relay_control_hooks hooks;
	enum relay_control_cmd cmd;
	struct ctl_item *items;
	size_t n, next;
	size_t inflight; /* items with a queue operation pending */
	size_t nwaiting;
	size_t nok, nerr;
	relay_control_result_fn result;
	relay_control_done_fn done;
	void *arg;
	uv_timer_t timer;
	bool timer_running;
	bool cancelled;
	bool finished;
	bool closing;
};

static void exec_pump(struct relay_control_exec *x);
static void item_begin(struct ctl_item *it);

static bool
is_active(const struct relay_control_exec *x, const char *id)
{
	return x->hooks.is_active != NULL &&
	    x->hooks.is_active(x->hooks.arg, id);
}

static void
exec_closed(uv_handle_t *h)
{
	struct relay_control_exec *x = h->data;
	free(x->items);
	free(x);
}

/* Frees x once nothing refers to it any more. */
static void
exec_maybe_free(struct relay_control_exec *x)
{
	if (x->closing || x->inflight > 0)
		return;
	if (!x->finished && !x->cancelled)
		return;
	x->closing = true;
	uv_close((uv_handle_t *)&x->timer, exec_closed);
}

static void
item_report(struct ctl_item *it, int status, const char *text)
{
	struct relay_control_exec *x = it->x;

	if (status == 0)
		x->nok++;
	else
		x->nerr++;
	if (!x->cancelled && x->result != NULL)
		x->result(x->arg, it->id, status, text);
}

static void
exec_tick(uv_timer_t *t)
{
	struct relay_control_exec *x = t->data;

	for (size_t i = 0; i < x->next && x->nwaiting > 0; i++) {
		struct ctl_item *it = &x->items[i];
		if (!it->waiting)
			continue;
		it->waiting = false;
		x->nwaiting--;
		item_begin(it);
	}
	if (x->nwaiting == 0) {
		uv_timer_stop(&x->timer);
		x->timer_running = false;
	}
	exec_pump(x);
}

static void
item_wait(struct ctl_item *it)
{
	struct relay_control_exec *x = it->x;

	it->waiting = true;
	x->nwaiting++;
	if (!x->timer_running) {
		x->timer_running = true;
		uv_timer_start(&x->timer, exec_tick, CTL_TICK_MS, CTL_TICK_MS);
	}
}

static const char *
done_text(enum relay_control_cmd cmd)
{
	switch (cmd) {
	case RELAY_CONTROL_HOLD:
		return "held";
	case RELAY_CONTROL_RELEASE:
		return "released";
	case RELAY_CONTROL_DELETE:
		return "deleted";
	case RELAY_CONTROL_RETRY:
		return "scheduled for delivery now";
	}
	return "done";
}

static void
item_queue_error(struct ctl_item *it, int qerr)
{
	char text[160];

	if (qerr == RELAY_QUEUE_ENOENT) {
		item_report(it, RELAY_CONTROL_ENOENT,
		    relay_control_strerror(RELAY_CONTROL_ENOENT));
		return;
	}
	(void)snprintf(text, sizeof(text), "queue error: %s",
	    relay_queue_strerror(qerr));
	item_report(it,
	    qerr == RELAY_QUEUE_ENOMEM ? RELAY_CONTROL_ENOMEM
	                               : RELAY_CONTROL_EIO,
	    text);
}

static void
op_removed(int status, void *arg)
{
	struct ctl_item *it = arg;
	struct relay_control_exec *x = it->x;

	x->inflight--;
	if (status != 0)
		item_queue_error(it, status);
	else
		item_report(it, 0, done_text(x->cmd));
	exec_pump(x);
}

static void
op_updated(int status, void *arg)
{
	struct ctl_item *it = arg;
	struct relay_control_exec *x = it->x;

	x->inflight--;
	if (x->cancelled) {
		exec_pump(x);
		return;
	}
	if (status != 0) {
		item_queue_error(it, status);
	} else {
		it->applied = true;
		/* A delivery that started between our read and our write holds
		 * an envelope copy without the change and will write it back:
		 * wait for it and check again (item_begin sees the index). */
		if ((x->cmd == RELAY_CONTROL_HOLD ||
		        x->cmd == RELAY_CONTROL_RELEASE) &&
		    is_active(x, it->id)) {
			item_wait(it);
		} else {
			item_report(it, 0, done_text(x->cmd));
			if (x->cmd != RELAY_CONTROL_HOLD &&
			    x->hooks.kick != NULL)
				x->hooks.kick(x->hooks.arg);
		}
	}
	exec_pump(x);
}

static void
op_loaded(int status, struct relay_queue_envelope *env, void *arg)
{
	struct ctl_item *it = arg;
	struct relay_control_exec *x = it->x;
	int r;

	x->inflight--;
	if (x->cancelled) {
		relay_queue_envelope_free(env);
		exec_pump(x);
		return;
	}
	if (status != 0) {
		item_queue_error(it, status);
		exec_pump(x);
		return;
	}
	if (is_active(x, it->id)) {
		relay_queue_envelope_free(env);
		item_wait(it);
		exec_pump(x);
		return;
	}
	switch (x->cmd) {
	case RELAY_CONTROL_HOLD:
		env->hold = true;
		break;
	case RELAY_CONTROL_RELEASE:
		env->hold = false;
		break;
	case RELAY_CONTROL_RETRY:
		for (size_t i = 0; i < env->rcpt_count; i++) {
			struct relay_queue_rcpt *rc = &env->rcpt[i];
			if (rc->status == RELAY_QUEUE_RCPT_PENDING ||
			    rc->status == RELAY_QUEUE_RCPT_DEFERRED)
				rc->next_attempt_us = 0;
		}
		break;
	case RELAY_CONTROL_DELETE:
		break; /* never loaded */
	}
	/* relay_queue_update() serialises env during the call. */
	r = relay_queue_update(x->q, env, op_updated, it);
	relay_queue_envelope_free(env);
	if (r != 0)
		item_queue_error(it, r);
	else
		x->inflight++;
	exec_pump(x);
}

static void
item_load(struct ctl_item *it)
{
	struct relay_control_exec *x = it->x;
	int r = relay_queue_load(x->q, it->id, op_loaded, it);

	if (r != 0)
		item_queue_error(it, r);
	else
		x->inflight++;
}

/* Starts (or restarts after a wait) the change of one message. May report
 * at once; never calls exec_pump. */
static void
item_begin(struct ctl_item *it)
{
	struct relay_control_exec *x = it->x;
	struct relay_queue_info info;
	uint64_t now = relay_clock_mono_ms(x->hooks.clock);
	int r;

	if (it->deadline == 0)
		it->deadline = now +
		    (x->hooks.busy_wait_ms != 0 ? x->hooks.busy_wait_ms
		                                : RELAY_CONTROL_BUSY_WAIT_MS);
	r = relay_queue_lookup(x->q, it->id, &info);
	if (r == RELAY_QUEUE_EBUSY) {
		/* In queue/ but not yet in the index (serve just started and
		 * is still reading the envelopes): it exists, so wait for it
		 * like for a delivery in flight rather than call it gone. */
		if (now < it->deadline)
			item_wait(it);
		else
			item_report(it, RELAY_CONTROL_EBUSY,
			    "busy: the queue is still being loaded, try again");
		return;
	}
	if (r != 0) {
		item_report(it, RELAY_CONTROL_ENOENT,
		    relay_control_strerror(RELAY_CONTROL_ENOENT));
		return;
	}
	if (is_active(x, it->id)) {
		if (now < it->deadline) {
			item_wait(it);
		} else if (x->cmd == RELAY_CONTROL_RETRY) {
			item_report(it, 0, "being delivered now");
		} else {
			item_report(it, RELAY_CONTROL_EBUSY,
			    it->applied
			        ? "busy: a delivery in flight may undo this change, "
			          "try again"
			        : relay_control_strerror(RELAY_CONTROL_EBUSY));
		}
		return;
	}
	switch (x->cmd) {
	case RELAY_CONTROL_DELETE:
		r = relay_queue_remove(x->q, it->id, op_removed, it);
		if (r != 0)
			item_queue_error(it, r);
		else
			x->inflight++;
		return;
	case RELAY_CONTROL_HOLD:
		if (info.hold)
			item_report(it, 0,
			    it->applied ? "held" : "already held");
		else
			item_load(it);
		return;
	case RELAY_CONTROL_RELEASE:
		if (!info.hold) {
			item_report(it, 0,
			    it->applied ? "released" : "was not held");
			if (it->applied && x->hooks.kick != NULL)
				x->hooks.kick(x->hooks.arg);
		} else {
			item_load(it);
		}
		return;
	case RELAY_CONTROL_RETRY:
		if (info.rcpt_open == 0)
			item_report(it, 0, "nothing left to deliver");
		else
			item_load(it);
		return;
	}
}

static void
exec_pump(struct relay_control_exec *x)
{
	if (x->cancelled) {
		exec_maybe_free(x);
		return;
	}
	while (x->next < x->n &&
	    x->inflight + x->nwaiting < RELAY_CONTROL_PARALLEL)
		item_begin(&x->items[x->next++]);
	if (x->next == x->n && x->inflight == 0 && x->nwaiting == 0 &&
	    !x->finished) {
		x->finished = true;
		if (x->done != NULL)
			x->done(x->arg, x->nok, x->nerr);
		exec_maybe_free(x);
	}
}

struct all_ctx {
	struct relay_control_exec *x;
	size_t cap;
	int err;
};

static int
collect_all(const struct relay_queue_info *info, void *arg)
{
	struct all_ctx *c = arg;
	struct relay_control_exec *x = c->x;
	bool want = false;

	switch (x->cmd) {
	case RELAY_CONTROL_HOLD:
		want = !info->hold;
		break;
	case RELAY_CONTROL_RELEASE:
		want = info->hold;
		break;
	case RELAY_CONTROL_RETRY:
		want = info->rcpt_open > 0 && !info->hold;
		break;
	case RELAY_CONTROL_DELETE:
		want = true;
		break;
	}
	if (!want)
		return 0;
	if (x->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct ctl_item *n = realloc(x->items, cap * sizeof(*n));
		if (n == NULL) {
			c->err = RELAY_CONTROL_ENOMEM;
			return 1;
		}
		x->items = n;
		c->cap = cap;
	}
	memset(&x->items[x->n], 0, sizeof(x->items[x->n]));
	memcpy(x->items[x->n].id, info->id, sizeof(x->items[x->n].id));
	x->n++;
	return 0;
}

static void
exec_start_cb(uv_timer_t *t)
{
	struct relay_control_exec *x = t->data;
	exec_pump(x);
}

int
relay_control_exec(uv_loop_t *loop, struct relay_queue *q,
    const struct relay_control_hooks *hooks, enum relay_control_cmd cmd,
    const char *const *ids, size_t nids, bool all,
    relay_control_result_fn result, relay_control_done_fn done, void *arg,
    struct relay_control_exec **out)
{
	struct relay_control_exec *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return RELAY_CONTROL_ENOMEM;
	x->loop = loop;
	x->q = q;
	if (hooks != NULL)
		x->hooks = *hooks;
	if (x->hooks.clock == NULL)
		x->hooks.clock = relay_clock_system();
	x->cmd = cmd;
	x->result = result;
	x->done = done;
	x->arg = arg;
	if (all && relay_queue_loading(q)) {
		/* --all means every message in queue/, and part of them is
		 * not in the index yet (serve just started). */
		free(x);
		return RELAY_CONTROL_EBUSY;
	}
	if (all) {
		struct all_ctx c = { .x = x };
		(void)relay_queue_foreach(q, collect_all, &c);
		if (c.err != 0) {
			free(x->items);
			free(x);
			return c.err;
		}
	} else if (nids > 0) {
		x->items = calloc(nids, sizeof(*x->items));
		if (x->items == NULL) {
			free(x);
			return RELAY_CONTROL_ENOMEM;
		}
		for (size_t i = 0; i < nids; i++) {
			size_t l = strlen(ids[i]);
			if (l >= sizeof(x->items[i].id))
				l = sizeof(x->items[i].id) - 1;
			memcpy(x->items[i].id, ids[i], l);
			x->items[i].id[l] = '\0';
		}
		x->n = nids;
	}
	for (size_t i = 0; i < x->n; i++)
		x->items[i].x = x;
	(void)uv_timer_init(loop, &x->timer);
	x->timer.data = x;
	/* The first step runs from the loop: no callback inside this call. */
	x->timer_running = false;
	uv_timer_start(&x->timer, exec_start_cb, 0, 0);
	if (out != NULL)
		*out = x;
	return 0;
}

void
relay_control_exec_cancel(struct relay_control_exec *x)
{
	if (x == NULL || x->cancelled)
		return;
	x->cancelled = true;
	x->nwaiting = 0;
	uv_timer_stop(&x->timer);
	x->timer_running = false;
	exec_maybe_free(x);
}

/* ================================================================ daemon */

struct ctl_conn;

/* One `status` request: the queue scan runs in the thread pool (the
 * envelopes are files: never read on the loop). */
struct status_job {
	uv_work_t work;
	struct relay_control *c;
	struct ctl_conn *conn; /* NULL once the asker has gone */
	char *spool;
	struct relay_control_daemon_info d;
	struct relay_control_queue_counts q;
	int err;
};

/* A report being built in the thread pool. */
struct report_job {
	uv_work_t work;
	struct relay_control *c;
	struct ctl_conn *conn; /* asked by `report --mail`, or NULL */
	char *spool;
	char *hostname;
	char *rcpt;
	uint64_t now_us;
	uint8_t *msg; /* the mail, CRLF lines */
	size_t msglen;
	uint64_t deferred;
	int err;
};

struct relay_control {
	struct relay_control_ctx ctx;
	uv_pipe_t server;
	bool listening;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ctl_conn *conns;
	size_t nconns;
	uv_timer_t report_timer;
	struct report_job *report; /* in the thread pool */
	size_t nstatus;            /* status jobs in the thread pool */
	int handles;               /* open handles of c itself */
	bool stopping;
};

struct ctl_conn {
	uv_pipe_t pipe;
	struct relay_control *c;
	struct ctl_conn *next, **pprev;
	char *buf;
	size_t len;
	struct relay_control_exec *exec;
	struct report_job *report;
	struct status_job *status;
	size_t pre_err; /* bad ids of the current request */
	bool busy;      /* a request is being answered */
	bool closing;
};

struct ctl_write {
	uv_write_t req;
	char data[];
};

static void control_maybe_free(struct relay_control *c);
static void conn_process(struct ctl_conn *k);
static void report_start(struct relay_control *c, struct ctl_conn *asker);
static void status_start(struct ctl_conn *k);

static void
conn_write_cb(uv_write_t *req, int status)
{
	(void)status; /* a dead client is noticed by the read side */
	free(req->data);
}

static void
conn_send(struct ctl_conn *k, const char *line)
{
	size_t len = strlen(line);
	struct ctl_write *w;

	if (k->closing)
		return;
	w = malloc(sizeof(*w) + len);
	if (w == NULL)
		return;
	memcpy(w->data, line, len);
	w->req.data = w;
	uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&k->pipe, &b, 1, conn_write_cb) !=
	    0)
		free(w);
}

/* "ok ID text\n" with text reduced to one printable line. */
static void
conn_sendf(struct ctl_conn *k, const char *word, const char *id,
    const char *text)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "%s %s ", word, id);
	size_t i = n > 0 ? (size_t)n : 0;

	for (const char *s = text; *s != '\0' && i + 2 < sizeof(line); s++)
		line[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	line[i++] = '\n';
	line[i] = '\0';
	conn_send(k, line);
}

static void
conn_closed(uv_handle_t *h)
{
	struct ctl_conn *k = h->data;
	struct relay_control *c = k->c;

	*k->pprev = k->next;
	if (k->next != NULL)
		k->next->pprev = k->pprev;
	c->nconns--;
	free(k->buf);
	free(k);
	c->handles--;
	control_maybe_free(c);
}

static void
conn_close(struct ctl_conn *k)
{
	if (k->closing)
		return;
	k->closing = true;
	if (k->exec != NULL) {
		relay_control_exec_cancel(k->exec);
		k->exec = NULL;
	}
	if (k->report != NULL) {
		k->report->conn = NULL;
		k->report = NULL;
	}
	if (k->status != NULL) {
		k->status->conn = NULL;
		k->status = NULL;
	}
	uv_close((uv_handle_t *)&k->pipe, conn_closed);
}

static void
conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct ctl_conn *k = h->data;
	size_t room = RELAY_CONTROL_LINE_MAX - k->len;

	(void)suggested;
	if (k->buf == NULL)
		k->buf = malloc(RELAY_CONTROL_LINE_MAX);
	if (k->buf == NULL || room == 0) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	*buf = uv_buf_init(k->buf + k->len,
	    (unsigned)(room > 65536 ? 65536 : room));
}

static void
conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct ctl_conn *k = s->data;

	(void)buf;
	if (nread == UV_ENOBUFS) {
		/* conn_alloc had no room: the line exceeds the maximum. */
		conn_send(k, "error - request line too long\nend 0 1\n");
		conn_close(k);
		return;
	}
	if (nread < 0) {
		conn_close(k); /* EOF or error */
		return;
	}
	if (nread == 0)
		return;
	k->len += (size_t)nread;
	conn_process(k);
}

static void
exec_result(void *arg, const char *id, int status, const char *text)
{
	struct ctl_conn *k = arg;
	conn_sendf(k, status == 0 ? "ok" : "error", id, text);
}

static void
request_done(struct ctl_conn *k, size_t nok, size_t nerr)
{
	char line[64];

	(void)snprintf(line, sizeof(line), "end %zu %zu\n", nok, nerr);
	conn_send(k, line);
	k->busy = false;
	k->exec = NULL;
	k->pre_err = 0;
}

static void
exec_done(void *arg, size_t nok, size_t nerr)
{
	struct ctl_conn *k = arg;
	struct relay_log_line l;

	if (relay_log_begin(&l, RELAY_LOG_INFO, "control")) {
		relay_log_u64(&l, "ok", nok);
		relay_log_u64(&l, "failed", nerr + k->pre_err);
		relay_log_end(&l);
	}
	request_done(k, nok, nerr + k->pre_err);
	conn_process(k); /* the next buffered request, or read on */
}

/*
 * One request line (NUL-terminated, LF removed). Answers synchronously
 * (request_done before returning) or starts the work whose completion
 * answers; the caller's loop (conn_process) goes on when k->busy is false.
 */
static void conn_dispatch(struct ctl_conn *k, char **words, size_t nw);

static void
conn_request(struct ctl_conn *k, char *line, size_t len)
{
	/* At most one word per two bytes of the line. */
	char **words = malloc((len / 2 + 2) * sizeof(*words));
	size_t nw = 0;

	k->busy = true;
	if (words == NULL) {
		conn_send(k, "error - out of memory\n");
		request_done(k, 0, 1);
		return;
	}
	for (char *p = line; *p != '\0';) {
		while (*p == ' ' || *p == '\t' || *p == '\r')
			*p++ = '\0';
		if (*p == '\0')
			break;
		words[nw++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r')
			p++;
	}
	conn_dispatch(k, words, nw);
	free(words);
}
/* Answers "metrics": the text from the daemon's hook, each of its lines
 * (printable ASCII: metric names, fixed label values, numbers) sent as
 * "ok - LINE", in one write. */
static void
conn_metrics(struct ctl_conn *k)
{
	const struct relay_control_ctx *ctx = &k->c->ctx;
	size_t len = 0, nlines = 0;
	char *text = ctx->metrics != NULL ? ctx->metrics(ctx->arg, &len) : NULL;

	if (text == NULL) {
		conn_send(k,
		    ctx->metrics == NULL ? "error - metrics not available\n"
		                         : "error - out of memory\n");
		request_done(k, 0, 1);
		return;
	}
	for (size_t i = 0; i < len; i++)
		nlines += text[i] == '\n';
	/* Each line gains "ok - " (5 bytes); a last line without LF gains
	 * one more. */
	char *out = malloc(len + 5 * (nlines + 1) + 2);
	if (out == NULL) {
		free(text);
		conn_send(k, "error - out of memory\n");
		request_done(k, 0, 1);
		return;
	}
	size_t o = 0, n = 0;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t ll = nl != NULL ? (size_t)(nl - (text + i)) : len - i;
		memcpy(out + o, "ok - ", 5);
		o += 5;
		for (size_t b = 0; b < ll; b++) {
			char ch = text[i + b];
			out[o++] = (ch >= 0x20 && ch < 0x7f) ? ch : '?';
		}
		out[o++] = '\n';
		n++;
		i += ll + 1;
	}
	out[o] = '\0';
	free(text);
	conn_send(k, out);
	free(out);
	request_done(k, n, 0);
}

static void
conn_dispatch(struct ctl_conn *k, char **words, size_t nw)
{
	struct relay_control *c = k->c;
	const struct relay_control_ctx *ctx = &c->ctx;
	enum relay_control_cmd cmd;
	bool all = false;

	if (nw == 0) {
		conn_send(k, "error - empty request\n");
		request_done(k, 0, 1);
		return;
	}
	if (strcmp(words[0], "report") == 0 && nw == 1) {
		if (ctx->cfg->report_recipient[0] == '\0') {
			conn_send(k, "error - report_recipient is not set\n");
			request_done(k, 0, 1);
		} else if (c->report != NULL) {
			conn_send(k,
			    "error - a report is being made, try again\n");
			request_done(k, 0, 1);
		} else {
			report_start(c, k);
			if (k->report == NULL) {
				conn_send(k,
				    "error - cannot start the report\n");
				request_done(k, 0, 1);
			}
		}
		return;
	}
	/* "status": the daemon's state and the queue's counts, as "ok KEY
	 * VALUE" lines once a scan of the envelopes in the thread pool is
	 * done. */
	if (strcmp(words[0], "status") == 0 && nw == 1) {
		status_start(k);
		if (k->status == NULL) {
			conn_send(k, "error - cannot start the status scan\n");
			request_done(k, 0, 1);
		}
		return;
	}
	/* "dns-flush [NAME]": a fresh resolver context (the name
	 * is only logged: libunbound cannot drop one name, so the whole cache
	 * goes). Answered at once: "ok NAME|- text" or "error - text". */
	if (strcmp(words[0], "dns-flush") == 0 && nw <= 2) {
		char norm[RELAY_DNS_HOST_MAX], text[384];
		if (nw == 2 &&
		    relay_dns_host_normalize(words[1], strlen(words[1]),
		        norm) != 0) {
			conn_sendf(k, "error", "-", "not a domain name");
			request_done(k, 0, 1);
			return;
		}
		int fr = ctx->dns_flush(ctx->arg, nw == 2 ? norm : NULL, text,
		    sizeof(text));
		conn_sendf(k, fr == 0 ? "ok" : "error",
		    nw == 2 && fr == 0 ? norm : "-", text);
		request_done(k, fr == 0 ? 1 : 0, fr == 0 ? 0 : 1);
		return;
	}
	/* "metrics": the exposition text, one "ok - LINE" per line. */
	if (strcmp(words[0], "metrics") == 0 && nw == 1) {
		conn_metrics(k);
		return;
	}
	/* "tlsrpt-send DAY": the sender starts a run and answers at once;
	 * the run's outcome lands in spool_dir/tlsrpt/sent-DAY. */
	if (strcmp(words[0], "tlsrpt-send") == 0 && nw == 2) {
		char text[256];
		long id = -1;
		if (ctx->tlsrpt_send == NULL)
			relay_copy(text, sizeof(text), "TLS reporting is off");
		else
			id = ctx->tlsrpt_send(ctx->arg, words[1], text,
			    sizeof(text));
		conn_sendf(k, id > 0 ? "ok" : "error", "-", text);
		request_done(k, id > 0 ? 1 : 0, id > 0 ? 0 : 1);
		return;
	}
	if (relay_control_cmd_parse(words[0], &cmd) != 0) {
		conn_send(k, "error - unknown command\n");
		request_done(k, 0, 1);
		return;
	}
	if (nw == 2 && strcmp(words[1], "--all") == 0) {
		all = true;
		nw = 1;
	}
	/* Bad ids are answered here; the rest go to the engine. */
	size_t nids = 0;
	for (size_t i = 1; i < nw; i++) {
		if (relay_queue_id_valid(words[i], strlen(words[i]))) {
			words[1 + nids++] = words[i];
		} else {
			char text[64];
			(void)snprintf(text, sizeof(text),
			    "not a queue id: %.20s", words[i]);
			conn_sendf(k, "error", "-", text);
			k->pre_err++;
		}
	}
	if (!all && nids == 0 && k->pre_err == 0) {
		conn_send(k, "error - no queue id given\n");
		request_done(k, 0, 1);
		return;
	}
	struct relay_control_hooks hooks = {
		.is_active = ctx->is_active,
		.kick = ctx->kick,
		.arg = ctx->arg,
		.clock = ctx->clock,
	};
	int r = relay_control_exec(ctx->loop, ctx->queue, &hooks, cmd,
	    (const char *const *)(words + 1), nids, all, exec_result, exec_done,
	    k, &k->exec);
	if (r != 0) {
		conn_sendf(k, "error", "-", relay_control_strerror(r));
		request_done(k, 0, k->pre_err + 1);
	}
}

static void
conn_process(struct ctl_conn *k)
{
	while (!k->busy && !k->closing) {
		char *nl = k->buf != NULL ? memchr(k->buf, '\n', k->len) : NULL;
		if (nl == NULL) {
			if (k->len >= RELAY_CONTROL_LINE_MAX) {
				conn_send(k,
				    "error - request line too long\nend 0 1\n");
				conn_close(k);
				return;
			}
			(void)uv_read_start((uv_stream_t *)&k->pipe, conn_alloc,
			    conn_read);
			return;
		}
		size_t ll = (size_t)(nl - k->buf);
		char *line = malloc(ll + 1);
		if (line == NULL) {
			conn_close(k);
			return;
		}
		memcpy(line, k->buf, ll);
		line[ll] = '\0';
		memmove(k->buf, nl + 1, k->len - ll - 1);
		k->len -= ll + 1;
		/* One request at a time: stop reading until it is answered. */
		(void)uv_read_stop((uv_stream_t *)&k->pipe);
		conn_request(k, line, ll);
		free(line);
	}
}

/* Only our own user (or root) may change the queue. */
static bool
peer_allowed(uv_pipe_t *p)
{
	uv_os_fd_t fd;
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (uv_fileno((uv_handle_t *)p, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
		return false;
	return cr.uid == 0 || cr.uid == geteuid();
}

static void
on_control_connection(uv_stream_t *server, int status)
{
	struct relay_control *c = server->data;
	struct ctl_conn *k;
	char greet[64];

	if (status < 0 || c->stopping)
		return;
	k = calloc(1, sizeof(*k));
	if (k == NULL || uv_pipe_init(c->ctx.loop, &k->pipe, 0) != 0) {
		free(k);
		return;
	}
	k->c = c;
	k->pipe.data = k;
	k->next = c->conns;
	k->pprev = &c->conns;
	if (c->conns != NULL)
		c->conns->pprev = &k->next;
	c->conns = k;
	c->nconns++;
	c->handles++;
	if (uv_accept(server, (uv_stream_t *)&k->pipe) != 0) {
		conn_close(k);
		return;
	}
	if (!peer_allowed(&k->pipe) || c->nconns > CTL_MAX_CONNS) {
		relay_log_msg(RELAY_LOG_WARNING, "control",
		    c->nconns > CTL_MAX_CONNS
		        ? "too many control connections"
		        : "connection from another user refused");
		conn_close(k);
		return;
	}
	(void)snprintf(greet, sizeof(greet), "danerelay-control 1 pid=%ld\n",
	    (long)getpid());
	conn_send(k, greet);
	conn_process(k);
}

/* ---- the report mail ---- */

static int
report_scan_cb(const struct relay_queue_envelope *env, void *arg)
{
	return relay_report_add(arg, env) != 0 ? RELAY_QUEUE_ENOMEM : 0;
}

/* Header-safe copy: printable ASCII only. */
static void
put_hdr_safe(FILE *f, const char *s)
{
	for (; *s != '\0'; s++)
		fputc(*s > 0x20 && *s < 0x7f ? *s : '?', f);
}

/* The report text with CRLF line ends and no line above 998 bytes
 * (RFC 5322 2.1.1; longer ones are wrapped). */
static void
put_crlf_wrapped(FILE *f, const char *p, size_t len)
{
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n') {
			fputs("\r\n", f);
			col = 0;
			continue;
		}
		if (col == 998) {
			fputs("\r\n", f);
			col = 0;
		}
		fputc(p[i], f);
		col++;
	}
	if (col > 0)
		fputs("\r\n", f);
}

static void
report_work(uv_work_t *w)
{
	struct report_job *j = w->data;
	struct relay_report rep;
	char *text = NULL, *msg = NULL;
	size_t tlen = 0, mlen = 0;
	FILE *f;

	relay_report_init(&rep, j->now_us);
	int r =
	    relay_queue_scan(j->spool, report_scan_cb, &rep, &rep.unreadable);
	if (r != 0 || rep.failed) {
		j->err = r != 0 ? r : RELAY_QUEUE_ENOMEM;
		relay_report_free(&rep);
		return;
	}
	relay_report_sort(&rep);
	j->deferred = rep.total;
	if (rep.total == 0) {
		relay_report_free(&rep);
		return;
	}
	/* The routing monitor's recent changes (its snapshot file; this runs
	 * on the thread pool). Unreadable: the section is left out. */
	char mon_path[4096];
	relay_fmt(mon_path, sizeof(mon_path), "%s/%s", j->spool,
	    RELAY_MONITOR_FILE);
	struct relay_monitor_change *changes =
	    calloc(REPORT_CHANGES_MAX, sizeof(*changes));
	int nchanges = changes != NULL
	    ? relay_monitor_read_recent(mon_path, changes, REPORT_CHANGES_MAX)
	    : 0;
	f = open_memstream(&text, &tlen);
	if (f == NULL ||
	    relay_report_print_text(f, &rep, j->hostname, true) != 0 ||
	    (nchanges > 0 &&
	        relay_monitor_print_recent(f, changes, (size_t)nchanges) !=
	            0)) {
		free(changes);
		if (f != NULL)
			fclose(f);
		free(text);
		relay_report_free(&rep);
		j->err = RELAY_QUEUE_ENOMEM;
		return;
	}
	free(changes);
	fclose(f);

	char date[64];
	time_t t = (time_t)(j->now_us / 1000000u);
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm) ==
	        0)
		(void)snprintf(date, sizeof(date),
		    "Thu, 01 Jan 1970 00:00:00 +0000");
	f = open_memstream(&msg, &mlen);
	if (f != NULL) {
		/* A locally generated message (RFC 5322 3.6): from the mail
		 * system itself, auto-generated (RFC 3834), plain text. */
		fputs("From: Mail Delivery System <MAILER-DAEMON@", f);
		put_hdr_safe(f, j->hostname);
		fputs(">\r\nTo: <", f);
		put_hdr_safe(f, j->rcpt);
		fprintf(f,
		    ">\r\nSubject: danerelay: %llu deferred recipient%s on ",
		    (unsigned long long)rep.total, rep.total == 1 ? "" : "s");
		put_hdr_safe(f, j->hostname);
		fprintf(f, "\r\nDate: %s\r\n", date);
		fprintf(f, "Message-ID: <%llu.report@",
		    (unsigned long long)j->now_us);
		put_hdr_safe(f, j->hostname);
		fputs(
		    ">\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=us-ascii\r\n"
		    "Content-Transfer-Encoding: 7bit\r\n\r\n",
		    f);
		put_crlf_wrapped(f, text, tlen);
		if (fclose(f) != 0) {
			free(msg);
			msg = NULL;
		}
	}
	free(text);
	relay_report_free(&rep);
	if (msg == NULL) {
		j->err = RELAY_QUEUE_ENOMEM;
		return;
	}
	j->msg = (uint8_t *)msg;
	j->msglen = mlen;
}

static void report_timer_cb(uv_timer_t *t);

static void
report_arm(struct relay_control *c)
{
	if (!c->stopping)
		uv_timer_start(&c->report_timer, report_timer_cb,
		    c->ctx.cfg->report_interval_ms, 0);
}

static void
report_after(uv_work_t *w, int status)
{
	struct report_job *j = w->data;
	struct relay_control *c = j->c;
	const struct relay_control_ctx *ctx = &c->ctx;
	char text[300];
	int r = status != 0 ? RELAY_QUEUE_ECANCELED : j->err;

	c->report = NULL;
	if (r == 0 && j->msg != NULL && !c->stopping && ctx->queue != NULL)
		r = ctx->submit(ctx->arg, "", j->rcpt, RELAY_QUEUE_NOTIFY_NEVER,
		    j->msg, j->msglen);
	struct relay_log_line l;
	if (!c->stopping &&
	    relay_log_begin(&l, r == 0 ? RELAY_LOG_INFO : RELAY_LOG_ERROR,
	        "report")) {
		relay_log_addr(&l, "to", j->rcpt);
		relay_log_u64(&l, "deferred", j->deferred);
		relay_log_str(&l, "status",
		    r != 0               ? "failed"
		        : j->msg != NULL ? "queued"
		                         : "nothing-deferred");
		if (r != 0)
			relay_log_str(&l, "why", relay_queue_strerror(r));
		relay_log_end(&l);
	}
	if (j->conn != NULL) {
		struct ctl_conn *k = j->conn;
		k->report = NULL;
		if (r != 0) {
			(void)snprintf(text, sizeof(text), "report failed: %s",
			    relay_queue_strerror(r));
			conn_sendf(k, "error", "-", text);
		} else if (j->msg != NULL) {
			(void)snprintf(text, sizeof(text),
			    "report on %llu deferred "
			    "recipient%s queued for %s",
			    (unsigned long long)j->deferred,
			    j->deferred == 1 ? "" : "s", j->rcpt);
			conn_sendf(k, "ok", "-", text);
		} else {
			conn_sendf(k, "ok", "-",
			    "nothing deferred, no report sent");
		}
		request_done(k, r == 0, r != 0);
		conn_process(k);
	}
	free(j->spool);
	free(j->hostname);
	free(j->rcpt);
	free(j->msg);
	free(j);
	report_arm(c);
	control_maybe_free(c);
}

static void
report_start(struct relay_control *c, struct ctl_conn *asker)
{
	const struct relay_control_ctx *ctx = &c->ctx;
	struct report_job *j;

	if (c->report != NULL || c->stopping || ctx->queue == NULL)
		return;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return;
	j->c = c;
	j->now_us = relay_clock_wall_us(ctx->clock);
	j->spool = strdup(relay_queue_dir(ctx->queue));
	j->hostname = strdup(ctx->cfg->myhostname);
	j->rcpt = strdup(ctx->cfg->report_recipient);
	j->work.data = j;
	if (j->spool == NULL || j->hostname == NULL || j->rcpt == NULL ||
	    uv_queue_work(ctx->loop, &j->work, report_work, report_after) !=
	        0) {
		free(j->spool);
		free(j->hostname);
		free(j->rcpt);
		free(j);
		return;
	}
	c->report = j;
	if (asker != NULL) {
		j->conn = asker;
		asker->report = j;
	}
}

static void
report_timer_cb(uv_timer_t *t)
{
	struct relay_control *c = t->data;

	/* report_recipient and report_interval may change with SIGHUP. */
	if (c->ctx.cfg->report_recipient[0] == '\0' || c->report != NULL) {
		report_arm(c);
		return;
	}
	report_start(c, NULL);
	if (c->report == NULL)
		report_arm(c);
}

/* ---- status ---- */

static int
status_scan_cb(const struct relay_queue_envelope *env, void *arg)
{
	relay_control_counts_add(arg, env);
	return 0;
}

static void
status_work(uv_work_t *w)
{
	struct status_job *j = w->data;
	j->err =
	    relay_queue_scan(j->spool, status_scan_cb, &j->q, &j->q.unreadable);
}

static void
status_pair(void *arg, const char *key, const char *value)
{
	conn_sendf(arg, "ok", key, value);
}

static void
status_after(uv_work_t *w, int status)
{
	struct status_job *j = w->data;
	struct relay_control *c = j->c;
	struct ctl_conn *k = j->conn;

	c->nstatus--;
	if (k != NULL) {
		k->status = NULL;
		int r = status != 0 ? RELAY_QUEUE_ECANCELED : j->err;
		if (r != 0) {
			char text[200];
			(void)snprintf(text, sizeof(text),
			    "cannot read the queue: %s",
			    relay_queue_strerror(r));
			conn_sendf(k, "error", "-", text);
			request_done(k, 0, 1);
		} else {
			relay_control_status_pairs((long)getpid(), &j->d, &j->q,
			    status_pair, k);
			relay_control_policy_exceptions(c->ctx.cfg, j->q.now_us,
			    status_pair, k);
			request_done(k, 1, 0);
		}
		conn_process(k);
	}
	free(j->spool);
	free(j);
	control_maybe_free(c);
}

static void
status_start(struct ctl_conn *k)
{
	struct relay_control *c = k->c;
	const struct relay_control_ctx *ctx = &c->ctx;
	struct status_job *j;

	if (c->stopping || ctx->queue == NULL)
		return;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return;
	j->c = c;
	j->conn = k;
	j->work.data = j;
	j->q.now_us = relay_clock_wall_us(ctx->clock);
	/* The daemon's part now, on the loop: it is what is in flight at
	 * the moment of the request. */
	if (ctx->status != NULL)
		ctx->status(ctx->arg, &j->d);
	j->spool = strdup(relay_queue_dir(ctx->queue));
	if (j->spool == NULL ||
	    uv_queue_work(ctx->loop, &j->work, status_work, status_after) !=
	        0) {
		free(j->spool);
		free(j);
		return;
	}
	c->nstatus++;
	k->status = j;
}

/* ---- start / stop ---- */

static void
control_handle_closed(uv_handle_t *h)
{
	struct relay_control *c = h->data;
	c->handles--;
	control_maybe_free(c);
}

static void
control_maybe_free(struct relay_control *c)
{
	if (!c->stopping || c->handles > 0 || c->report != NULL ||
	    c->nstatus > 0)
		return;
	free(c);
}

int
relay_control_start(const struct relay_control_ctx *ctx,
    struct relay_control **out)
{
	struct relay_control *c = calloc(1, sizeof(*c));
	int r;

	if (c == NULL)
		return RELAY_CONTROL_ENOMEM;
	c->ctx = *ctx;
	(void)uv_timer_init(ctx->loop, &c->report_timer);
	c->report_timer.data = c;
	c->handles = 1;
	*out = c;
	report_arm(c);

	if (relay_control_path(relay_queue_dir(ctx->queue), c->path,
	        sizeof(c->path)) != 0) {
		relay_log_msg(RELAY_LOG_ERROR, "control",
		    "spool_dir path too long for a unix socket; no control socket");
		return 0;
	}
	/* We hold the spool lock, so a socket left here is stale. */
	(void)unlink(c->path);
	if ((r = uv_pipe_init(ctx->loop, &c->server, 0)) != 0) {
		relay_log_msg(RELAY_LOG_ERROR, "control", uv_strerror(r));
		return 0;
	}
	c->server.data = c;
	c->handles++;
	/* Owner only from the start (no window with a wider mode); the spool
	 * directory is 0700 as well. umask affects only permission bits the
	 * queue never sets anyway (its files are 0600). */
	mode_t old = umask(077);
	r = uv_pipe_bind(&c->server, c->path);
	umask(old);
	if (r == 0 && chmod(c->path, 0600) != 0)
		r = uv_translate_sys_error(errno);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&c->server, 8,
		    on_control_connection);
	if (r != 0) {
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_ERROR, "control")) {
			relay_log_str(&l, "socket", c->path);
			relay_log_str(&l, "why", uv_strerror(r));
			relay_log_end(&l);
		}
		uv_close((uv_handle_t *)&c->server, control_handle_closed);
		(void)unlink(c->path);
		c->path[0] = '\0';
		return 0;
	}
	c->listening = true;
	struct relay_log_line l;
	if (relay_log_begin(&l, RELAY_LOG_INFO, "control")) {
		relay_log_str(&l, "socket", c->path);
		relay_log_str(&l, "status", "listening");
		relay_log_end(&l);
	}
	return 0;
}

void
relay_control_stop(struct relay_control *c)
{
	if (c == NULL)
		return;
	c->stopping = true;
	uv_close((uv_handle_t *)&c->report_timer, control_handle_closed);
	if (c->listening) {
		uv_close((uv_handle_t *)&c->server, control_handle_closed);
		(void)unlink(c->path);
		c->listening = false;
	}
	for (struct ctl_conn *k = c->conns; k != NULL; k = k->next)
		conn_close(k);
	/* A report in the thread pool: cancel if not started, else it
	 * finishes and report_after frees it. */
	if (c->report != NULL)
		(void)uv_cancel((uv_req_t *)&c->report->work);
	control_maybe_free(c);
}

/* ================================================================ client */

__attribute__((format(printf, 3, 4))) static int
client_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return RELAY_CONTROL_EIO;
}

/* Reads one line (without LF, NUL-terminated) into *line, its length
 * with the LF into *used (for client_consume); waits at most
 * CLIENT_TIMEOUT_MS for each chunk. Returns 0 or -1 (EOF, error, timeout,
 * line too long). */
static int
client_line(struct relay_control_client *c, char **line, size_t *used)
{
	for (;;) {
		char *nl = c->len > 0 ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl != NULL) {
			*nl = '\0';
			*line = c->buf;
			*used = (size_t)(nl - c->buf) + 1;
			return 0;
		}
		if (c->len + 1 >= RELAY_CONTROL_LINE_MAX)
			return -1;
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int pr = poll(&pfd, 1, CLIENT_TIMEOUT_MS);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return -1;
		ssize_t n = read(c->fd, c->buf + c->len,
		    RELAY_CONTROL_LINE_MAX - 1 - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
	}
}

/* Drops the line returned by client_line() from the buffer. */
static void
client_consume(struct relay_control_client *c, size_t ll)
{
	memmove(c->buf, c->buf + ll, c->len - ll);
	c->len -= ll;
}

static int
client_send(struct relay_control_client *c, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
relay_control_client_connect(struct relay_control_client *c,
    const char *spool_dir, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char *line;
	size_t used;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (relay_control_path(spool_dir, sun.sun_path, sizeof(sun.sun_path)) !=
	    0)
		return client_err(err, errlen,
		    "%s: spool_dir path too long for "
		    "a unix socket",
		    spool_dir);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return client_err(err, errlen, "socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int e = errno;
		relay_control_client_close(c);
		if (e == ENOENT || e == ECONNREFUSED)
			return RELAY_CONTROL_ENOENT;
		(void)snprintf(err, errlen, "%s: %s", sun.sun_path,
		    strerror(e));
		return RELAY_CONTROL_EIO;
	}
	c->buf = malloc(RELAY_CONTROL_LINE_MAX);
	if (c->buf == NULL) {
		relay_control_client_close(c);
		return client_err(err, errlen, "%s", "out of memory");
	}
	static const char greet[] = "danerelay-control 1 ";
	if (client_line(c, &line, &used) != 0 ||
	    strncmp(line, greet, sizeof(greet) - 1) != 0) {
		relay_control_client_close(c);
		return client_err(err, errlen,
		    "%s: no greeting from the daemon "
		    "(refused, or not a danerelay control socket)",
		    sun.sun_path);
	}
	(void)snprintf(c->daemon, sizeof(c->daemon), "%s",
	    line + sizeof(greet) - 1);
	client_consume(c, used);
	return 0;
}

/* Sends "cmd args\n" and reads the replies up to "end". */
static int
client_request(struct relay_control_client *c, const char *req, size_t len,
    relay_control_result_fn result, void *arg, char *err, size_t errlen)
{
	char *line;
	size_t used;

	if (client_send(c, req, len) != 0)
		return client_err(err, errlen, "%s",
		    "lost the connection to the "
		    "daemon");
	for (;;) {
		if (client_line(c, &line, &used) != 0)
			return client_err(err, errlen, "%s",
			    "no complete answer "
			    "from the daemon (timeout or connection lost)");
		if (strncmp(line, "end ", 4) == 0) {
			client_consume(c, used);
			return 0;
		}
		int status;
		char *rest;
		if (strncmp(line, "ok ", 3) == 0) {
			status = 0;
			rest = line + 3;
		} else if (strncmp(line, "error ", 6) == 0) {
			status = RELAY_CONTROL_EIO;
			rest = line + 6;
		} else {
			return client_err(err, errlen,
			    "unexpected reply from the "
			    "daemon: %.100s",
			    line);
		}
		char *sp = strchr(rest, ' ');
		const char *text = "";
		if (sp != NULL) {
			*sp = '\0';
			text = sp + 1;
		}
		if (result != NULL)
			result(arg, rest, status, text);
		client_consume(c, used);
	}
}

int
relay_control_client_run(struct relay_control_client *c, const char *cmd_word,
    const char *const *ids, size_t nids, bool all,
    relay_control_result_fn result, void *arg, char *err, size_t errlen)
{
	char *req = malloc(RELAY_CONTROL_LINE_MAX);
	size_t i = 0;
	int rc = 0;

	if (req == NULL)
		return client_err(err, errlen, "%s", "out of memory");
	do {
		size_t n = (size_t)snprintf(req, RELAY_CONTROL_LINE_MAX, "%s",
		    cmd_word);
		if (all) {
			n += (size_t)snprintf(req + n,
			    RELAY_CONTROL_LINE_MAX - n, " --all");
		}
		/* As many ids as fit in one request line. */
		while (!all && i < nids) {
			size_t l = strlen(ids[i]);
			if (n + 1 + l + 1 >= RELAY_CONTROL_LINE_MAX)
				break;
			req[n++] = ' ';
			memcpy(req + n, ids[i], l);
			n += l;
			i++;
		}
		req[n++] = '\n';
		rc = client_request(c, req, n, result, arg, err, errlen);
	} while (rc == 0 && !all && i < nids);
	free(req);
	return rc;
}

void
relay_control_client_close(struct relay_control_client *c)
{
	if (c->fd >= 0)
		(void)close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = 0;
}
