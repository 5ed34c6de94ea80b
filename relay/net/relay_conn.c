/*
 * relay_conn: TCP on libuv with TLS through memory BIOs. See relay_conn.h.
 *
 * TLS: OpenSSL reads ciphertext from rbio (filled from the socket) and writes
 * ciphertext to wbio (drained to the socket after every SSL call). Neither
 * BIO touches a file descriptor, so every byte moves on the loop thread and
 * the SMTP state machines stay free of I/O.
 */
#include "relay_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

/* Output queued beyond this is a stuck peer or a bug, not a reason to grow
 * without bound (STYLE.md section 4). */
#define RELAY_CONN_MAX_PENDING (8u * 1024 * 1024)
/* Largest plaintext chunk handed to on_data from one SSL_read. */
#define RELAY_CONN_TLS_CHUNK 16384
/* Bound on a graceful close: flush and close_notify must finish by then. */
#define RELAY_CONN_CLOSE_MS 5000

struct relay_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t connect_req;
	uv_shutdown_t shutdown_req;
	const struct relay_conn_cbs *cbs;
	void *arg;
	SSL *ssl;
	BIO *rbio; /* borrowed from ssl */
	BIO *wbio; /* borrowed from ssl */
	size_t pending;
	uint64_t idle_ms;
	uint64_t
	    deadline_at; /* uv_now() time of the overall deadline; 0: none */
	int last_uv_error;
	unsigned long tls_error; /* first OpenSSL error of a TLS failure */
	int tls_ssl_error;       /* its SSL_get_error() value */
	int open_handles;
	bool connecting;
	bool handshaking;
	bool paused;
	bool reading;
	bool closing;
	bool failed;      /* on_error already reported */
	bool has_source;  /* connecting from a given source address */
	bool bind_failed; /* that source could not be bound */
};

struct conn_write {
	uv_write_t req;
	struct relay_conn *conn;
	size_t len;
	uint8_t data[];
};

const char *
relay_conn_strerror(int err)
{
	switch (err) {
	case RELAY_CONN_OK:
		return "ok";
	case RELAY_CONN_EOF:
		return "connection closed by peer";
	case RELAY_CONN_TIMEOUT:
		return "timeout";
	case RELAY_CONN_IO:
		return "I/O error";
	case RELAY_CONN_TLS:
		return "TLS failure";
	case RELAY_CONN_NOMEM:
		return "out of memory";
	case RELAY_CONN_OVERFLOW:
		return "output queue overflow";
	default:
		return "unknown error";
	}
}

static void conn_read_start(struct relay_conn *c);
static void on_timer(uv_timer_t *t);

/* One timer serves the idle timeout and the overall deadline: it is armed
 * for whichever comes first, and re-armed after every read (which restarts
 * only the idle part). */
static void
conn_timer_arm(struct relay_conn *c)
{
	if (c->closing || c->connecting)
		return;
	uint64_t due = c->idle_ms;
	if (c->deadline_at != 0) {
		uint64_t now = uv_now(c->tcp.loop);
		uint64_t left = c->deadline_at > now ? c->deadline_at - now : 0;
		if (due == 0 || left < due)
			due = left;
		uv_timer_start(&c->timer, on_timer, due, 0);
		return;
	}
	if (due == 0)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, on_timer, due, 0);
}

/* Installed when a half-made connection is torn down: its owner never saw it. */
static const struct relay_conn_cbs conn_no_cbs;

static void
on_handle_closed(uv_handle_t *h)
{
	struct relay_conn *c = h->data;

	if (--c->open_handles > 0)
		return;
	if (c->cbs->on_closed != NULL)
		c->cbs->on_closed(c, c->arg);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	free(c);
}

static void
conn_close_handles(struct relay_conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* Report a failure once; the owner decides to close. */
static void
conn_fail(struct relay_conn *c, int err)
{
	if (c->closing || c->failed)
		return;
	c->failed = true;
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	uv_timer_stop(&c->timer);
	c->cbs->on_error(c, err, c->arg);
}

static void
on_write_done(uv_write_t *req, int status)
{
	struct conn_write *w = (struct conn_write *)req;
	struct relay_conn *c = w->conn;

	bool was_high = c->pending >= RELAY_CONN_LOW_WATER;
	c->pending -= w->len;
	free(w);
	if (status < 0 && status != UV_ECANCELED) {
		c->last_uv_error = status;
		conn_fail(c, RELAY_CONN_IO);
		return;
	}
	if (was_high && c->pending < RELAY_CONN_LOW_WATER && !c->closing &&
	    !c->failed && c->cbs->on_drain != NULL)
		c->cbs->on_drain(c, c->arg);
}

static int
conn_write_raw(struct relay_conn *c, const uint8_t *p, size_t len)
{
	if (len == 0)
		return RELAY_CONN_OK;
	if (c->pending + len > RELAY_CONN_MAX_PENDING)
		return RELAY_CONN_OVERFLOW;
	struct conn_write *w = malloc(sizeof(*w) + len);
	if (w == NULL)
		return RELAY_CONN_NOMEM;
	w->conn = c;
	w->len = len;
	memcpy(w->data, p, len);
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned int)len);
	int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write_done);
	if (r < 0) {
		free(w);
		c->last_uv_error = r;
		return RELAY_CONN_IO;
	}
	c->pending += len;
	return RELAY_CONN_OK;
}

/* Move whatever OpenSSL wrote into wbio onto the socket. */
static int
conn_flush_wbio(struct relay_conn *c)
{
	char *data;
	long n = BIO_get_mem_data(c->wbio, &data);

	if (n <= 0)
		return RELAY_CONN_OK;
	int r = conn_write_raw(c, (const uint8_t *)data, (size_t)n);
	(void)BIO_reset(c->wbio);
	return r;
}

/* Deliver decrypted application data until OpenSSL wants more input. */
static void
conn_tls_drain(struct relay_conn *c)
{
	uint8_t buf[RELAY_CONN_TLS_CHUNK];

	while (!c->closing && !c->failed && !c->paused && !c->handshaking) {
		ERR_clear_error();
		int n = SSL_read(c->ssl, buf, sizeof(buf));
		int fl = conn_flush_wbio(c);
		if (fl != RELAY_CONN_OK) {
			conn_fail(c, fl);
			return;
		}
		if (n > 0) {
			c->cbs->on_data(c, buf, (size_t)n, c->arg);
			continue;
		}
		int e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			return;
		c->tls_ssl_error = e;
		c->tls_error = ERR_peek_error();
		conn_fail(c,
		    e == SSL_ERROR_ZERO_RETURN ? RELAY_CONN_EOF
		                               : RELAY_CONN_TLS);
		return;
	}
}

static void
conn_tls_handshake(struct relay_conn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	int fl = conn_flush_wbio(c);
	if (fl != RELAY_CONN_OK) {
		conn_fail(c, fl);
		return;
	}
	if (r == 1) {
		c->handshaking = false;
		c->cbs->on_tls(c, RELAY_CONN_OK, c->arg);
		/* Application data may have arrived with the last flight. */
		conn_tls_drain(c);
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		return;
	c->tls_ssl_error = e;
	c->tls_error = ERR_peek_error();
	/* The handshake failed: the verify result and error queue stay on the
	 * SSL for the owner to inspect in on_tls. Stop reading; the owner
	 * closes. */
	c->handshaking = false;
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	c->failed = true;
	c->cbs->on_tls(c, RELAY_CONN_TLS, c->arg);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	/* libuv suggests 64 KiB; that bounds one read. */
	buf->base = malloc(suggested);
	buf->len = buf->base != NULL ? suggested : 0;
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct relay_conn *c = s->data;

	if (nread == 0 || c->closing || c->failed) {
		free(buf->base);
		return;
	}
	if (nread < 0) {
		free(buf->base);
		if (nread == UV_ENOBUFS) {
			conn_fail(c, RELAY_CONN_NOMEM);
			return;
		}
		c->last_uv_error = (int)nread;
		conn_fail(c, nread == UV_EOF ? RELAY_CONN_EOF : RELAY_CONN_IO);
		return;
	}
	if (c->idle_ms != 0 || c->deadline_at != 0)
		conn_timer_arm(c);
	if (c->ssl == NULL) {
		c->cbs->on_data(c, (const uint8_t *)buf->base, (size_t)nread,
		    c->arg);
		free(buf->base);
		return;
	}
	int w = BIO_write(c->rbio, buf->base, (int)nread);
	free(buf->base);
	if (w != (int)nread) {
		conn_fail(c, RELAY_CONN_NOMEM);
		return;
	}
	if (c->handshaking)
		conn_tls_handshake(c);
	else
		conn_tls_drain(c);
}

static void
conn_read_start(struct relay_conn *c)
{
	if (c->reading || c->closing || c->failed || c->paused)
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
		c->reading = true;
}

static void
on_timer(uv_timer_t *t)
{
	struct relay_conn *c = t->data;

	if (c->closing) {
		/* A graceful close took too long: drop the connection. */
		conn_close_handles(c);
		return;
	}
	/* An idle peer is not a broken socket: the owner may still write a
	 * last reply (421 4.4.2, RFC 5321 4.5.3.2.7) before closing. */
	if (c->failed)
		return;
	uv_timer_stop(&c->timer);
	c->cbs->on_error(c, RELAY_CONN_TIMEOUT, c->arg);
}

static struct relay_conn *
conn_new(uv_loop_t *loop, const struct relay_conn_cbs *cbs, void *arg)
{
	struct relay_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->cbs = cbs;
	c->arg = arg;
	if (uv_tcp_init(loop, &c->tcp) != 0) {
		free(c);
		return NULL;
	}
	c->tcp.data = c;
	c->open_handles = 1;
	if (uv_timer_init(loop, &c->timer) != 0) {
		/* Only the TCP handle is open; its close callback frees c. */
		c->cbs = &conn_no_cbs;
		uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
		return NULL;
	}
	c->timer.data = c;
	c->open_handles = 2;
	return c;
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct relay_conn *c = req->data;

	c->connecting = false;
	if (c->closing)
		return;
	uv_timer_stop(&c->timer);
	if (status < 0) {
		/* libuv keeps an EADDRINUSE from bind() and reports it here. */
		if (c->has_source && status == UV_EADDRINUSE)
			c->bind_failed = true;
		c->last_uv_error = status;
		c->failed = true;
		c->cbs->on_connected(c, status, c->arg);
		return;
	}
	(void)uv_tcp_nodelay(&c->tcp, 1);
	conn_read_start(c);
	conn_timer_arm(c);
	c->cbs->on_connected(c, 0, c->arg);
}

static void
on_connect_timer(uv_timer_t *t)
{
	struct relay_conn *c = t->data;

	if (c->closing || !c->connecting)
		return;
	c->connecting = false;
	c->failed = true;
	c->last_uv_error = UV_ETIMEDOUT;
	c->cbs->on_connected(c, UV_ETIMEDOUT, c->arg);
}

/* The source address could not be bound: report it as the connect's
 * outcome, one loop turn after relay_conn_connect() returned. */
static void
on_bind_failed_timer(uv_timer_t *t)
{
	struct relay_conn *c = t->data;

	if (c->closing || !c->connecting)
		return;
	c->connecting = false;
	c->failed = true;
	c->cbs->on_connected(c, c->last_uv_error, c->arg);
}

int
relay_conn_connect(uv_loop_t *loop, const struct sockaddr *addr,
    const struct sockaddr *source, uint64_t connect_timeout_ms,
    const struct relay_conn_cbs *cbs, void *arg, struct relay_conn **out)
{
	struct relay_conn *c = conn_new(loop, cbs, arg);
	int r;

	if (c == NULL)
		return RELAY_CONN_NOMEM;
	c->connect_req.data = c;
	if (source != NULL) {
		c->has_source = true;
		r = uv_tcp_bind(&c->tcp, source, 0);
		if (r < 0) {
			/* Fail this connection, never connect from elsewhere. */
			c->bind_failed = true;
			c->last_uv_error = r;
			c->connecting = true;
			uv_timer_start(&c->timer, on_bind_failed_timer, 0, 0);
			*out = c;
			return RELAY_CONN_OK;
		}
	}
	r = uv_tcp_connect(&c->connect_req, &c->tcp, addr, on_connect);
	if (r < 0) {
		/* No callback for the caller: detach it before closing. */
		c->cbs = &conn_no_cbs;
		c->closing = true;
		conn_close_handles(c);
		return r;
	}
	c->connecting = true;
	if (connect_timeout_ms != 0)
		uv_timer_start(&c->timer, on_connect_timer, connect_timeout_ms,
		    0);
	*out = c;
	return RELAY_CONN_OK;
}

int
relay_conn_accept(uv_stream_t *server, const struct relay_conn_cbs *cbs,
    void *arg, struct relay_conn **out)
{
	struct relay_conn *c = conn_new(server->loop, cbs, arg);

	if (c == NULL)
		return RELAY_CONN_NOMEM;
	int r = uv_accept(server, (uv_stream_t *)&c->tcp);
	if (r < 0) {
		c->cbs = &conn_no_cbs;
		c->closing = true;
		conn_close_handles(c);
		return r;
	}
	(void)uv_tcp_nodelay(&c->tcp, 1);
	conn_read_start(c);
	*out = c;
	return RELAY_CONN_OK;
}

int
relay_conn_write(struct relay_conn *c, const uint8_t *p, size_t len)
{
	if (c->closing || c->failed)
		return RELAY_CONN_IO;
	if (c->ssl == NULL)
		return conn_write_raw(c, p, len);
	size_t off = 0;
	while (off < len) {
		size_t n = len - off > 65536 ? 65536 : len - off;
		ERR_clear_error();
		int w = SSL_write(c->ssl, p + off, (int)n);
		if (w <= 0) {
			c->tls_ssl_error = SSL_get_error(c->ssl, w);
			c->tls_error = ERR_peek_error();
			return RELAY_CONN_TLS;
		}
		off += (size_t)w;
		int fl = conn_flush_wbio(c);
		if (fl != RELAY_CONN_OK)
			return fl;
	}
	return RELAY_CONN_OK;
}

int
relay_conn_start_tls(struct relay_conn *c, SSL *ssl)
{
	if (c->ssl != NULL || c->closing || c->failed) {
		SSL_free(ssl);
		return RELAY_CONN_TLS;
	}
	BIO *rb = BIO_new(BIO_s_mem());
	BIO *wb = BIO_new(BIO_s_mem());
	if (rb == NULL || wb == NULL) {
		BIO_free(rb);
		BIO_free(wb);
		SSL_free(ssl);
		return RELAY_CONN_NOMEM;
	}
	/* An empty read BIO means "want more", not EOF. */
	BIO_set_mem_eof_return(rb, -1);
	SSL_set_bio(ssl, rb, wb);
	c->ssl = ssl;
	c->rbio = rb;
	c->wbio = wb;
	c->handshaking = true;
	/* A client speaks first; a server waits for the ClientHello. */
	if (!SSL_is_server(ssl))
		conn_tls_handshake(c);
	return RELAY_CONN_OK;
}

SSL *
relay_conn_ssl(const struct relay_conn *c)
{
	return c->ssl;
}

void
relay_conn_set_timeout(struct relay_conn *c, uint64_t ms)
{
	if (c->closing)
		return;
	c->idle_ms = ms;
	/* Until connected the connect timer owns the timer. */
	conn_timer_arm(c);
}

void
relay_conn_set_deadline(struct relay_conn *c, uint64_t ms)
{
	if (c->closing)
		return;
	c->deadline_at = ms == 0 ? 0 : uv_now(c->tcp.loop) + ms;
	conn_timer_arm(c);
}

bool
relay_conn_deadline_passed(const struct relay_conn *c)
{
	return c->deadline_at != 0 && uv_now(c->tcp.loop) >= c->deadline_at;
}

void
relay_conn_pause(struct relay_conn *c, bool paused)
{
	if (c->closing || c->failed || c->paused == paused)
		return;
	c->paused = paused;
	if (paused) {
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->reading = false;
		}
		return;
	}
	conn_read_start(c);
	/* Decrypted data may be waiting inside OpenSSL. */
	if (c->ssl != NULL && !c->handshaking)
		conn_tls_drain(c);
}

size_t
relay_conn_pending(const struct relay_conn *c)
{
	return c->pending;
}

int
relay_conn_peer(const struct relay_conn *c, struct sockaddr_storage *ss)
{
	int len = (int)sizeof(*ss);
	return uv_tcp_getpeername(&c->tcp, (struct sockaddr *)ss, &len);
}

int
relay_conn_local(const struct relay_conn *c, struct sockaddr_storage *ss)
{
	int len = (int)sizeof(*ss);
	return uv_tcp_getsockname(&c->tcp, (struct sockaddr *)ss, &len);
}

int
relay_conn_last_uv_error(const struct relay_conn *c)
{
	return c->last_uv_error;
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	conn_close_handles(req->data);
}

void
relay_conn_close(struct relay_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	if (c->connecting || c->failed) {
		conn_close_handles(c);
		return;
	}
	if (c->ssl != NULL && !c->handshaking) {
		/* RFC 8446 6.1: send close_notify; do not wait for the peer's. */
		(void)SSL_shutdown(c->ssl);
		(void)conn_flush_wbio(c);
	}
	/* Flush queued output, bounded in time. */
	uv_timer_start(&c->timer, on_timer, RELAY_CONN_CLOSE_MS, 0);
	c->shutdown_req.data = c;
	if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp,
	        on_shutdown) != 0)
		conn_close_handles(c);
}

bool
relay_conn_bind_failed(const struct relay_conn *c)
{
	return c->bind_failed;
}

void
relay_conn_abort(struct relay_conn *c)
{
	if (c->closing && uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	c->closing = true;
	conn_close_handles(c);
}

const char *
relay_conn_tls_errstr(const struct relay_conn *c, char *buf, size_t size)
{
	if (c->tls_error != 0)
		ERR_error_string_n(c->tls_error, buf, size);
	else if (c->tls_ssl_error != 0)
		snprintf(buf, size, "SSL_get_error %d", c->tls_ssl_error);
	else
		snprintf(buf, size, "no TLS error recorded");
	return buf;
}
