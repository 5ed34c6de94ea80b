/*
 * daemon_metrics: the metrics endpoint of `serve` (metrics_listen), and
 * the text it and the control socket's "metrics" request answer with.
 *
 * A deliberately small HTTP/1.x server on the daemon's loop: one request
 * per connection, GET /metrics only, no keep-alive, no body read.
 *   - Only clients at 127.0.0.1, ::1 or inside mynetworks are answered;
 *     others are logged and disconnected without a byte (like Postfix's
 *     smtpd for a client it will not serve).
 *   - The request head must arrive within METRICS_HEAD_TIMEOUT_MS and fit
 *     in RELAY_HTTP_HEAD_MAX bytes (relay_http.h parses it); else 408 or
 *     431 (RFC 6585 5), 400 for a malformed head, 505 for another HTTP
 *     version (RFC 9110 15.6.6).
 *   - GET /metrics: 200 with the text (RELAY_METRICS_CONTENT_TYPE); another
 *     path: 404; another method: 405 with "Allow: GET" (RFC 9110 15.5.6).
 *     Every answer says "Connection: close" and the connection is shut
 *     down after it (RFC 9112 9.6).
 *   - At most METRICS_MAX_CONNS connections at once; more are closed at
 *     once, so a flood cannot hold memory.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"
#include "relay_http.h"
#include "relay_log.h"
#include "relay_metrics.h"
#include "relay_text.h"

/* A scraper sends its request at once; a client that dribbles for this
 * long is not one. */
#define METRICS_HEAD_TIMEOUT_MS 10000u
#define METRICS_MAX_CONNS 8u
/* Pending connections the kernel holds for a scraper or two. */
#define METRICS_BACKLOG 16
/* How long a client may take to close after its answer. */
#define METRICS_LINGER_MS 2000u
/* First guess for the rendered text (grown when it does not fit). */
#define METRICS_TEXT_INITIAL 16384u

struct metrics_conn {
	struct relay_daemon *d;
	struct metrics_conn *next, **pprev; /* in d->mconns */
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	int handles; /* open handles: freed when it reaches 0 */
	bool closing;
	bool answered;
	char peer[INET6_ADDRSTRLEN];
	char *resp; /* the answer being written (owned) */
	size_t len;
	uint8_t head[RELAY_HTTP_HEAD_MAX];
};

/* ------------------------------------------------------------- the text */

static int
gauge_cb(const struct relay_queue_info *info, void *arg)
{
	struct relay_metrics_gauges *g = ((void **)arg)[0];
	const uint64_t *now_us = ((void **)arg)[1];
	uint64_t *oldest_us = ((void **)arg)[2];

	/* As `queue list` names them (relay_report_queue_of()): held, then
	 * waiting for a retry, else active (due now or being delivered). */
	if (info->hold)
		g->queue_hold++;
	else if (info->deferred && info->next_attempt_us > *now_us)
		g->queue_deferred++;
	else
		g->queue_active++;
	if (*oldest_us == 0 || info->arrival_us < *oldest_us)
		*oldest_us = info->arrival_us;
	return 0;
}

char *
daemon__metrics_text(void *arg, size_t *len)
{
	struct relay_daemon *d = arg;
	struct relay_metrics_gauges g = { 0 };
	uint64_t now_us = relay_clock_wall_us(d->clock), oldest_us = 0;
	void *cb_arg[3] = { &g, &now_us, &oldest_us };

	if (d->queue != NULL)
		(void)relay_queue_foreach(d->queue, gauge_cb, cb_arg);
	if (oldest_us != 0 && now_us > oldest_us)
		g.oldest_age_s = (double)(now_us - oldest_us) / 1e6;
	g.selftest_ok = d->dns != NULL && relay_dns_validation_ok(d->dns);
	g.selftest_last_success_s = (double)d->selftest_ok_wall_us / 1e6;

	size_t size = METRICS_TEXT_INITIAL;
	for (int round = 0; round < 2; round++) {
		char *buf = malloc(size);
		if (buf == NULL)
			return NULL;
		size_t n = relay_metrics_render(&d->metrics, &g, buf, size);
		if (n < size) {
			*len = n;
			return buf;
		}
		free(buf);
		size = n + 1;
	}
	return NULL; /* unreachable: the second buffer fits */
}

/* ------------------------------------------------------- the connections */

static void
conn_closed(uv_handle_t *h)
{
	struct metrics_conn *c = h->data;

	if (--c->handles > 0)
		return;
	*c->pprev = c->next;
	if (c->next != NULL)
		c->next->pprev = c->pprev;
	c->d->nmconns--;
	free(c->resp);
	free(c);
}

static void
conn_close(struct metrics_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->timer, conn_closed);
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* After the answer: bytes the client sent beyond the head (an oversized
 * head, a body) are read and dropped until it closes, for at most
 * METRICS_LINGER_MS. Closing with unread input would make the kernel
 * send a reset, which can destroy the answer before the client reads it
 * (RFC 9112 9.6: a server closes in stages). */
static void
linger_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct metrics_conn *c = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)c->head, sizeof(c->head));
}

static void
linger_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	if (nread < 0)
		conn_close(s->data); /* EOF: the client is done */
}

static void
linger_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

static void
conn_shut(uv_shutdown_t *req, int status)
{
	struct metrics_conn *c = req->data;

	if (c->closing)
		return;
	if (status != 0 ||
	    uv_timer_start(&c->timer, linger_timeout, METRICS_LINGER_MS, 0) !=
	        0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, linger_alloc, linger_read) !=
	        0)
		conn_close(c);
}

static void
conn_written(uv_write_t *req, int status)
{
	struct metrics_conn *c = req->data;

	if (c->closing)
		return; /* cancelled by conn_close() */
	if (status != 0 ||
	    uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, conn_shut) != 0)
		conn_close(c);
}

/* Writes one complete answer and closes after it. body may be NULL. */
static void
conn_answer(struct metrics_conn *c, const char *status, const char *extra,
    const char *ctype, const char *body, size_t blen)
{
	char head[512];
	struct relay_log_line l;

	c->answered = true;
	(void)uv_read_stop((uv_stream_t *)&c->tcp);
	(void)uv_timer_stop(&c->timer);
	int hn = snprintf(head, sizeof(head),
	    "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "%sConnection: close\r\n\r\n",
	    status, ctype, blen, extra);
	if (hn < 0 || (size_t)hn >= sizeof(head)) {
		conn_close(c);
		return;
	}
	c->resp = malloc((size_t)hn + blen);
	if (c->resp == NULL) {
		conn_close(c);
		return;
	}
	memcpy(c->resp, head, (size_t)hn);
	if (blen > 0)
		memcpy(c->resp + hn, body, blen);
	if (relay_log_begin(&l, RELAY_LOG_DEBUG, "metrics")) {
		relay_log_str(&l, "client", c->peer);
		relay_log_str(&l, "status", status);
		relay_log_u64(&l, "bytes", blen);
		relay_log_end(&l);
	}
	uv_buf_t b = uv_buf_init(c->resp, (unsigned)((size_t)hn + blen));
	c->wreq.data = c;
	c->sreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_written) !=
	    0)
		conn_close(c);
}

static void
conn_error(struct metrics_conn *c, const char *status, const char *extra)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%s\n", status);
	conn_answer(c, status, extra, "text/plain; charset=utf-8", body,
	    n > 0 ? (size_t)n : 0);
}

static bool
slice_eq(const uint8_t *p, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* A complete head arrived: answer it. */
static void
conn_request(struct metrics_conn *c, const struct relay_http_request *req)
{
	if (!slice_eq(req->method, req->method_len, "GET")) {
		conn_error(c, "405 Method Not Allowed", "Allow: GET\r\n");
		return;
	}
	if (!slice_eq(req->path, req->path_len, "/metrics")) {
		conn_error(c, "404 Not Found", "");
		return;
	}
	size_t len;
	char *text = daemon__metrics_text(c->d, &len);
	if (text == NULL) {
		conn_error(c, "500 Internal Server Error", "");
		return;
	}
	conn_answer(c, "200 OK", "", RELAY_METRICS_CONTENT_TYPE, text, len);
	free(text);
}

static void
conn_parse(struct metrics_conn *c)
{
	struct relay_http_request req;
	int r = relay_http_head_parse(c->head, c->len, &req);

	switch (r) {
	case RELAY_HTTP_AGAIN:
		return;
	case RELAY_HTTP_ETOOBIG:
		conn_error(c, "431 Request Header Fields Too Large", "");
		return;
	case RELAY_HTTP_EVERSION:
		conn_error(c, "505 HTTP Version Not Supported", "");
		return;
	case RELAY_HTTP_EBAD:
		conn_error(c, "400 Bad Request", "");
		return;
	default:
		break;
	}
	if (r > 0)
		conn_request(c, &req);
	else
		conn_error(c, "400 Bad Request", "");
}

static void
conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct metrics_conn *c = h->data;
	size_t room = sizeof(c->head) - c->len;

	(void)suggested;
	/* No room: libuv reports UV_ENOBUFS to conn_read. */
	*buf = uv_buf_init(room > 0 ? (char *)c->head + c->len : NULL,
	    (unsigned)room);
}

static void
conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct metrics_conn *c = s->data;

	(void)buf;
	if (c->answered || c->closing)
		return;
	if (nread == UV_ENOBUFS) {
		conn_error(c, "431 Request Header Fields Too Large", "");
		return;
	}
	if (nread < 0) {
		conn_close(c); /* EOF before a complete head, or an error */
		return;
	}
	c->len += (size_t)nread;
	conn_parse(c);
}

static void
conn_timeout(uv_timer_t *t)
{
	struct metrics_conn *c = t->data;

	if (!c->answered)
		conn_error(c, "408 Request Timeout", "");
}

/* RFC 5735 / RFC 4291 2.5.3: this host's own loopback address, also as an
 * IPv4-mapped IPv6 address (RFC 4291 2.5.5.2). */
static bool
is_local_loopback(const struct sockaddr_storage *ss)
{
	static const uint8_t v6_loop[16] = { [15] = 1 };
	static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		return ntohl(s4->sin_addr.s_addr) == INADDR_LOOPBACK;
	}
	if (ss->ss_family == AF_INET6) {
		const uint8_t *a =
		    ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		if (memcmp(a, v6_loop, 16) == 0)
			return true;
		return memcmp(a, v4_mapped, 12) == 0 && a[12] == 127 &&
		    a[13] == 0 && a[14] == 0 && a[15] == 1;
	}
	return false;
}

static void
peer_text(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	const void *a = ss->ss_family == AF_INET6
	    ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
	    : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
	if (inet_ntop(ss->ss_family, a, buf, (socklen_t)size) == NULL)
		relay_copy(buf, size, "?");
}

static void
on_metrics_connection(uv_stream_t *server, int status)
{
	struct daemon_listener *li = server->data;
	struct relay_daemon *d = li->d;
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);

	if (status < 0) {
		relay_log_msg(RELAY_LOG_WARNING, "metrics",
		    uv_strerror(status));
		return;
	}
	struct metrics_conn *c = calloc(1, sizeof(*c));
	if (c == NULL || uv_tcp_init(d->loop, &c->tcp) != 0) {
		free(c);
		return;
	}
	c->d = d;
	c->tcp.data = c;
	c->timer.data = c;
	c->handles = 2;
	(void)uv_timer_init(d->loop, &c->timer);
	c->next = d->mconns;
	c->pprev = &d->mconns;
	if (d->mconns != NULL)
		d->mconns->pprev = &c->next;
	d->mconns = c;
	d->nmconns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
	    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) != 0) {
		conn_close(c);
		return;
	}
	peer_text(&ss, c->peer, sizeof(c->peer));
	bool allowed = is_local_loopback(&ss) ||
	    relay_config_mynetworks_match(&d->cfg, (struct sockaddr *)&ss);
	if (!allowed || d->nmconns > METRICS_MAX_CONNS || d->stopping) {
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_WARNING, "metrics")) {
			relay_log_str(&l, "client", c->peer);
			relay_log_str(&l, "status", "refused");
			relay_log_str(&l, "why",
			    !allowed ? "client not in mynetworks"
			             : "too many metrics connections");
			relay_log_end(&l);
		}
		conn_close(c);
		return;
	}
	if (uv_timer_start(&c->timer, conn_timeout, METRICS_HEAD_TIMEOUT_MS,
	        0) != 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) != 0)
		conn_close(c);
}

/* ------------------------------------------------------------ listeners */

int
daemon__metrics_listen(struct relay_daemon *d, char *err, size_t errlen)
{
	return daemon__listen(d, "metrics_listen", d->cfg.metrics_listen,
	    d->cfg.metrics_listen_count, METRICS_BACKLOG, on_metrics_connection,
	    &d->mlisteners, err, errlen);
}

void
daemon__metrics_stop(struct relay_daemon *d)
{
	daemon__listeners_close(&d->mlisteners);
	for (struct metrics_conn *c = d->mconns; c != NULL; c = c->next)
		conn_close(c);
}
