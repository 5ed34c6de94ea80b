/*
 * fake_conn: stands in for relay/net/relay_conn.c in the replay runner, with
 * the same contract (relay_conn.h): the owner's callbacks never run inside
 * the call that caused them, on_closed is the last one, and the connection
 * frees itself once its two libuv handles are closed.
 *
 * Instead of a socket, each connection is joined in memory to one session
 * of a scripted peer (replay_peer.c), found by the numeric address the
 * client connects to. Bytes move on a zero timer (the "kick"), never inside
 * relay_conn_write(). TLS is real on both ends: the client SSL the daemon
 * prepared with tlsa_ssl_new() runs over memory BIOs as in relay_conn.c,
 * and the server is an OpenSSL server presenting the peer's certificate
 * chain from tests/data/tlsa, so the DANE and PKIX checks are OpenSSL's
 * and tlsa/'s own. Time (connect, idle and deadline timers) is the loop's,
 * which the runner drives (replay_clock.h).
 */
#include "relay_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "replay.h"

#define CONN_IO_CHUNK 16384
#define CLOSE_MS 5000

struct bytes {
	uint8_t *p;
	size_t len, cap;
};

struct relay_conn {
	uv_loop_t *loop;
	uv_timer_t timer; /* connect, idle and deadline, close bound */
	uv_timer_t kick;  /* moves bytes and reports, next iteration */
	const struct relay_conn_cbs *cbs;
	void *arg;
	struct sockaddr_storage addr;
	char addr_text[64];
	struct rpl_peer *peer; /* NULL: nobody listens there */
	struct peer_sess *ps;

	/* client end, as in relay_conn.c */
	SSL *ssl;
	BIO *rbio, *wbio;
	struct bytes c2s, s2c; /* plaintext before TLS */

	/* server end */
	SSL_CTX *sctx;
	SSL *sssl;
	BIO *srbio, *swbio;
	bool server_tls; /* past STARTTLS */
	bool server_hs_done;
	bool server_garbage; /* answer the ClientHello with garbage */
	bool server_stalled; /* reads nothing any more */
	bool server_gone;    /* closed its end */

	uint64_t idle_ms;
	uint64_t deadline_at;
	int last_uv_error;
	unsigned long tls_error;
	int tls_ssl_error;
	int open_handles;
	bool connecting;
	bool connect_timeout; /* the peer never accepts */
	bool refused;
	bool handshaking;
	bool paused;
	bool closing;
	bool failed;
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

static void
bytes_add(struct bytes *b, const void *p, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		uint8_t *n = realloc(b->p, cap);
		if (n == NULL)
			abort();
		b->p = n;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

static void
bytes_consume(struct bytes *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static void on_timer(uv_timer_t *t);
static void on_kick(uv_timer_t *t);

static void
kick(struct relay_conn *c)
{
	if (!c->closing)
		uv_timer_start(&c->kick, on_kick, 0, 0);
}

static void
conn_timer_arm(struct relay_conn *c)
{
	if (c->closing || c->connecting)
		return;
	uint64_t due = c->idle_ms;
	if (c->deadline_at != 0) {
		uint64_t now = uv_now(c->loop);
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

static void
on_handle_closed(uv_handle_t *h)
{
	struct relay_conn *c = h->data;
	if (--c->open_handles > 0)
		return;
	if (c->cbs->on_closed != NULL)
		c->cbs->on_closed(c, c->arg);
	SSL_free(c->ssl);
	SSL_free(c->sssl);
	SSL_CTX_free(c->sctx);
	peer_sess_free(c->ps);
	free(c->c2s.p);
	free(c->s2c.p);
	free(c);
}

static void
conn_close_handles(struct relay_conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&c->kick))
		uv_close((uv_handle_t *)&c->kick, on_handle_closed);
}

static void
conn_fail(struct relay_conn *c, int err)
{
	if (c->closing || c->failed)
		return;
	c->failed = true;
	uv_timer_stop(&c->timer);
	c->cbs->on_error(c, err, c->arg);
}

/* ------------------------------------------------------------- server */

static int
server_ctx(struct relay_conn *c, const char *chain)
{
	char names[RPL_TEXT_MAX];
	snprintf(names, sizeof names, "%s", chain);
	c->sctx = SSL_CTX_new(TLS_server_method());
	if (c->sctx == NULL)
		return -1;
	const char *dir = replay_world->data_dir;
	bool first = true;
	for (char *save = NULL, *n = strtok_r(names, " ", &save); n != NULL;
	     n = strtok_r(NULL, " ", &save)) {
		char path[1200];
		snprintf(path, sizeof path, "%s/%s.pem", dir, n);
		if (first) {
			char key[1200];
			snprintf(key, sizeof key, "%s/%s.key", dir, n);
			if (SSL_CTX_use_certificate_file(c->sctx, path,
			        SSL_FILETYPE_PEM) != 1 ||
			    SSL_CTX_use_PrivateKey_file(c->sctx, key,
			        SSL_FILETYPE_PEM) != 1)
				return -1;
			first = false;
			continue;
		}
		FILE *f = fopen(path, "r");
		X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
		if (f != NULL)
			fclose(f);
		if (x == NULL || SSL_CTX_add1_chain_cert(c->sctx, x) != 1) {
			X509_free(x);
			return -1;
		}
		X509_free(x);
	}
	return 0;
}

/* The server accepted STARTTLS: from now on it speaks TLS (or pretends). */
static void
server_start_tls(struct relay_conn *c)
{
	c->server_tls = true;
	c->c2s.len = 0; /* RFC 3207 4.2: what came after STARTTLS is dropped */
	if (peer_sess_has(c->ps, RPL_P_DROP, "tls")) {
		replay_peer_note(c->peer, "drop at tls");
		c->server_gone = true;
		return;
	}
	if (peer_sess_has(c->ps, RPL_P_STALL, "tls")) {
		replay_peer_note(c->peer, "stall at tls");
		c->server_stalled = true;
		return;
	}
	if (peer_sess_has(c->ps, RPL_P_TLS_GARBAGE, NULL)) {
		c->server_garbage = true;
		return;
	}
	if (server_ctx(c, peer_sess_cert(c->ps)) != 0 ||
	    (c->sssl = SSL_new(c->sctx)) == NULL) {
		snprintf(replay_world->fatal, sizeof replay_world->fatal,
		    "peer %s: cannot set up its TLS server with '%s'",
		    c->addr_text, peer_sess_cert(c->ps));
		c->server_gone = true;
		return;
	}
	c->srbio = BIO_new(BIO_s_mem());
	c->swbio = BIO_new(BIO_s_mem());
	if (c->srbio == NULL || c->swbio == NULL)
		abort();
	BIO_set_mem_eof_return(c->srbio, -1);
	SSL_set_bio(c->sssl, c->srbio, c->swbio);
	SSL_set_accept_state(c->sssl);
}

/* Move all of from's content to to (mem BIOs). */
static bool
bio_move(BIO *from, BIO *to)
{
	char *data;
	long n = BIO_get_mem_data(from, &data);
	if (n <= 0)
		return false;
	if (to != NULL && BIO_write(to, data, (int)n) != (int)n)
		abort();
	(void)BIO_reset(from);
	return true;
}

/* The server's turn: read what the client sent, answer. */
static bool
server_step(struct relay_conn *c)
{
	bool progress = false;
	if (c->ps == NULL)
		return false;
	if (c->server_gone) {
		/* Bytes sent to a closed connection vanish. */
		progress = c->c2s.len > 0;
		c->c2s.len = 0;
		if (c->wbio != NULL)
			progress |= bio_move(c->wbio, NULL);
		return progress;
	}
	if (!c->server_tls) {
		if (c->c2s.len > 0) {
			size_t n = peer_sess_input(c->ps, c->c2s.p, c->c2s.len);
			bytes_consume(&c->c2s, n);
			progress = true;
		}
	} else if (c->ssl != NULL) {
		if (c->server_stalled) {
			progress |= bio_move(c->wbio, NULL);
		} else if (c->server_garbage) {
			if (bio_move(c->wbio, NULL)) {
				static const char junk[] =
				    "this is not TLS\r\n";
				replay_peer_note(c->peer, "tls garbage");
				if (BIO_write(c->rbio, junk, sizeof junk - 1) !=
				    (int)sizeof junk - 1)
					abort();
				c->server_garbage = false;
				c->server_stalled = true;
				progress = true;
			}
		} else {
			progress |= bio_move(c->wbio, c->srbio);
			if (!c->server_hs_done) {
				ERR_clear_error();
				int r = SSL_do_handshake(c->sssl);
				if (r == 1) {
					c->server_hs_done = true;
					peer_sess_tls_up(c->ps,
					    SSL_get_servername(c->sssl,
					        TLSEXT_NAMETYPE_host_name));
					progress = true;
				} else if (SSL_get_error(c->sssl, r) !=
				    SSL_ERROR_WANT_READ) {
					/* The client gave up (its alert is in srbio). */
					replay_peer_note(c->peer,
					    "tls handshake failed");
					progress |= bio_move(c->swbio, c->rbio);
					c->server_gone = true;
					return true;
				}
			}
			if (c->server_hs_done) {
				uint8_t buf[CONN_IO_CHUNK];
				int n;
				while ((n = SSL_read(c->sssl, buf,
				            sizeof buf)) > 0) {
					(void)peer_sess_input(c->ps, buf,
					    (size_t)n);
					progress = true;
				}
			}
		}
	}
	size_t olen;
	const uint8_t *out = peer_sess_output(c->ps, &olen);
	if (olen > 0) {
		if (!c->server_tls)
			bytes_add(&c->s2c, out, olen);
		else if (c->sssl != NULL && c->server_hs_done &&
		    SSL_write(c->sssl, out, (int)olen) != (int)olen)
			abort();
		peer_sess_output_done(c->ps);
		progress = true;
	}
	if (!c->server_tls && peer_sess_take_starttls(c->ps)) {
		server_start_tls(c);
		progress = true;
	}
	if (c->sssl != NULL && c->rbio != NULL)
		progress |= bio_move(c->swbio, c->rbio);
	if (peer_sess_closed(c->ps) && !c->server_gone) {
		replay_peer_note(c->peer, "close");
		c->server_gone = true;
		progress = true;
	}
	return progress;
}

/* ------------------------------------------------------------- client */

static bool
client_step(struct relay_conn *c)
{
	if (c->paused || c->closing || c->failed)
		return false;
	if (c->ssl == NULL) {
		if (c->s2c.len == 0)
			goto eof;
		size_t n = c->s2c.len;
		uint8_t *p = malloc(n);
		if (p == NULL)
			abort();
		memcpy(p, c->s2c.p, n);
		c->s2c.len = 0;
		if (c->idle_ms != 0 || c->deadline_at != 0)
			conn_timer_arm(c);
		c->cbs->on_data(c, p, n, c->arg);
		free(p);
		return true;
	}
	if (c->handshaking) {
		ERR_clear_error();
		int r = SSL_do_handshake(c->ssl);
		if (r == 1) {
			c->handshaking = false;
			if (c->idle_ms != 0 || c->deadline_at != 0)
				conn_timer_arm(c);
			c->cbs->on_tls(c, RELAY_CONN_OK, c->arg);
			return true;
		}
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ) {
			/* Progress when the client has a flight for the server. */
			if (BIO_ctrl_pending(c->wbio) > 0)
				return true;
			goto eof;
		}
		c->tls_ssl_error = e;
		c->tls_error = ERR_peek_error();
		c->handshaking = false;
		c->failed = true;
		uv_timer_stop(&c->timer);
		c->cbs->on_tls(c, RELAY_CONN_TLS, c->arg);
		return true;
	}
	uint8_t buf[CONN_IO_CHUNK];
	ERR_clear_error();
	int n = SSL_read(c->ssl, buf, sizeof buf);
	if (n > 0) {
		if (c->idle_ms != 0 || c->deadline_at != 0)
			conn_timer_arm(c);
		c->cbs->on_data(c, buf, (size_t)n, c->arg);
		return true;
	}
	int e = SSL_get_error(c->ssl, n);
	if (e != SSL_ERROR_WANT_READ) {
		c->tls_ssl_error = e;
		c->tls_error = ERR_peek_error();
		conn_fail(c,
		    e == SSL_ERROR_ZERO_RETURN ? RELAY_CONN_EOF
		                               : RELAY_CONN_TLS);
		return true;
	}
eof:
	/* The server closed and everything it sent was read: EOF. */
	if (c->server_gone && c->s2c.len == 0 &&
	    (c->rbio == NULL || BIO_ctrl_pending(c->rbio) == 0)) {
		conn_fail(c, RELAY_CONN_EOF);
		return true;
	}
	return false;
}

static void
pump(struct relay_conn *c)
{
	for (int guard = 0; guard < 100000; guard++) {
		if (c->closing || c->failed)
			return;
		bool progress = server_step(c);
		progress |= client_step(c);
		if (!progress)
			return;
	}
	snprintf(replay_world->fatal, sizeof replay_world->fatal,
	    "connection to %s does not settle", c->addr_text);
}

static void
on_kick(uv_timer_t *t)
{
	struct relay_conn *c = t->data;
	if (c->closing)
		return;
	if (c->connecting) {
		if (c->connect_timeout)
			return;
		c->connecting = false;
		uv_timer_stop(&c->timer);
		if (c->refused) {
			c->failed = true;
			c->last_uv_error = UV_ECONNREFUSED;
			c->cbs->on_connected(c, UV_ECONNREFUSED, c->arg);
			return;
		}
		peer_sess_start(c->ps);
		conn_timer_arm(c);
		c->cbs->on_connected(c, 0, c->arg);
	}
	pump(c);
}

static void
on_timer(uv_timer_t *t)
{
	struct relay_conn *c = t->data;
	if (c->closing) {
		conn_close_handles(c);
		return;
	}
	if (c->connecting) {
		c->connecting = false;
		c->failed = true;
		c->last_uv_error = UV_ETIMEDOUT;
		c->cbs->on_connected(c, UV_ETIMEDOUT, c->arg);
		return;
	}
	if (c->failed)
		return;
	uv_timer_stop(&c->timer);
	c->cbs->on_error(c, RELAY_CONN_TIMEOUT, c->arg);
}

/* ---------------------------------------------------------------- API */

bool
relay_conn_bind_failed(const struct relay_conn *c)
{
	(void)c;
	return false;
}

int
relay_conn_connect(uv_loop_t *loop, const struct sockaddr *addr,
    const struct sockaddr *source, uint64_t connect_timeout_ms,
    const struct relay_conn_cbs *cbs, void *arg, struct relay_conn **out)
{
	/* Source addresses are real sockets' business: the world test
	 * (tests/integration/test_outbound_source.sh) covers the bind. */
	(void)source;
	struct relay_conn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return RELAY_CONN_NOMEM;
	c->loop = loop;
	c->cbs = cbs;
	c->arg = arg;
	size_t alen = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                          : sizeof(struct sockaddr_in);
	memcpy(&c->addr, addr, alen);
	const void *ap = addr->sa_family == AF_INET6
	    ? (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr
	    : (const void *)&((const struct sockaddr_in *)addr)->sin_addr;
	if (inet_ntop(addr->sa_family, ap, c->addr_text, sizeof c->addr_text) ==
	    NULL)
		snprintf(c->addr_text, sizeof c->addr_text, "?");
	if (uv_timer_init(loop, &c->timer) != 0 ||
	    uv_timer_init(loop, &c->kick) != 0)
		abort();
	c->timer.data = c;
	c->kick.data = c;
	c->open_handles = 2;
	c->connecting = true;

	struct replay_world *w = replay_world;
	c->peer = replay_peer_find(c->addr_text);
	if (c->peer == NULL) {
		if (w->nunknown_peer <
		    sizeof w->unknown_peer / sizeof w->unknown_peer[0])
			snprintf(w->unknown_peer[w->nunknown_peer++],
			    sizeof w->unknown_peer[0], "%s", c->addr_text);
		c->refused = true;
	} else {
		c->peer->connections++;
		c->ps = peer_sess_new(c->peer, c->peer->connections);
		if (c->ps == NULL)
			abort();
		if (peer_sess_has(c->ps, RPL_P_REFUSE, NULL)) {
			replay_peer_note(c->peer, "refused %u",
			    c->peer->connections);
			c->refused = true;
		} else if (peer_sess_has(c->ps, RPL_P_CONNECT_TIMEOUT, NULL)) {
			replay_peer_note(c->peer, "no answer to connect %u",
			    c->peer->connections);
			c->connect_timeout = true;
		}
	}
	if (connect_timeout_ms != 0)
		uv_timer_start(&c->timer, on_timer, connect_timeout_ms, 0);
	kick(c);
	*out = c;
	return RELAY_CONN_OK;
}

int
relay_conn_accept(uv_stream_t *server, const struct relay_conn_cbs *cbs,
    void *arg, struct relay_conn **out)
{
	/* The runner has no inbound side. */
	(void)server;
	(void)cbs;
	(void)arg;
	(void)out;
	return RELAY_CONN_IO;
}

int
relay_conn_write(struct relay_conn *c, const uint8_t *p, size_t len)
{
	if (c->closing || c->failed)
		return RELAY_CONN_IO;
	if (len == 0)
		return RELAY_CONN_OK;
	if (c->ssl == NULL) {
		bytes_add(&c->c2s, p, len);
	} else {
		ERR_clear_error();
		int w = SSL_write(c->ssl, p, (int)len);
		if (w <= 0) {
			c->tls_ssl_error = SSL_get_error(c->ssl, w);
			c->tls_error = ERR_peek_error();
			return RELAY_CONN_TLS;
		}
	}
	kick(c);
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
	BIO_set_mem_eof_return(rb, -1);
	SSL_set_bio(ssl, rb, wb);
	c->ssl = ssl;
	c->rbio = rb;
	c->wbio = wb;
	c->handshaking = true;
	/* Plaintext the server sent after its 220 is never read as TLS. */
	c->s2c.len = 0;
	kick(c);
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
	conn_timer_arm(c);
}

void
relay_conn_set_deadline(struct relay_conn *c, uint64_t ms)
{
	if (c->closing)
		return;
	c->deadline_at = ms == 0 ? 0 : uv_now(c->loop) + ms;
	conn_timer_arm(c);
}

bool
relay_conn_deadline_passed(const struct relay_conn *c)
{
	return c->deadline_at != 0 && uv_now(c->loop) >= c->deadline_at;
}

void
relay_conn_pause(struct relay_conn *c, bool paused)
{
	if (c->closing || c->failed || c->paused == paused)
		return;
	c->paused = paused;
	if (!paused)
		kick(c);
}

size_t
relay_conn_pending(const struct relay_conn *c)
{
	(void)c;
	return 0; /* written bytes reach the peer at once */
}

int
relay_conn_peer(const struct relay_conn *c, struct sockaddr_storage *ss)
{
	*ss = c->addr;
	return 0;
}

/* Scenarios have no local address: a report names none. */
int
relay_conn_local(const struct relay_conn *c, struct sockaddr_storage *ss)
{
	(void)c;
	memset(ss, 0, sizeof(*ss));
	return UV_ENOTCONN;
}

int
relay_conn_last_uv_error(const struct relay_conn *c)
{
	return c->last_uv_error;
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

void
relay_conn_close(struct relay_conn *c)
{
	if (c->closing)
		return;
	/* A graceful close delivers what the client wrote last (QUIT) and
	 * its close_notify before the connection goes. */
	if (!c->connecting && !c->failed) {
		if (c->ssl != NULL && !c->handshaking)
			(void)SSL_shutdown(c->ssl);
		c->paused = true;
		for (int guard = 0; guard < 100 && server_step(c); guard++)
			;
	}
	c->closing = true;
	if (c->peer != NULL && !c->refused && !c->connect_timeout)
		replay_peer_note(c->peer, "client closed");
	conn_close_handles(c);
}

void
relay_conn_abort(struct relay_conn *c)
{
	if (c->closing && uv_is_closing((uv_handle_t *)&c->timer))
		return;
	c->closing = true;
	if (c->peer != NULL)
		replay_peer_note(c->peer, "client aborted");
	conn_close_handles(c);
}
