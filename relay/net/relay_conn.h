#ifndef RELAY_CONN_H
#define RELAY_CONN_H
/*
 * relay_conn: one TCP connection on the libuv loop, with optional TLS run
 * through memory BIOs (OpenSSL never touches the socket), an idle timer and
 * a bounded output queue. Both directions of the relay use it: inbound
 * sessions from the local MTA and outbound sessions to MX hosts.
 *
 * Lifecycle (libuv rules, STYLE.md section 4): the connection owns its
 * uv_tcp_t and uv_timer_t. relay_conn_close() starts closing both; when the
 * last handle is closed, on_closed runs once and the connection frees itself
 * (and its SSL). After relay_conn_close() no other callback runs.
 * Callbacks never run from inside the call that caused them, except that
 * on_data may be followed by more on_data within one read.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>
#include <uv.h>

struct relay_conn;

enum relay_conn_err {
	RELAY_CONN_OK = 0,
	RELAY_CONN_EOF = -1,     /* peer closed the connection */
	RELAY_CONN_TIMEOUT = -2, /* idle timer expired */
	RELAY_CONN_IO = -3,      /* socket error (uv error in last_uv_error) */
	RELAY_CONN_TLS = -4,     /* TLS handshake or record failure */
	RELAY_CONN_NOMEM = -5,
	RELAY_CONN_OVERFLOW = -6, /* output queue over its ceiling */
};

const char *relay_conn_strerror(int err);

struct relay_conn_cbs {
	/* Outbound only: connect finished. status 0 or a negative uv error. */
	void (*on_connected)(struct relay_conn *c, int status, void *arg);
	/* Plaintext bytes from the peer (decrypted when TLS is on). The bytes
	 * are borrowed for the duration of the call. */
	void (*on_data)(struct relay_conn *c, const uint8_t *p, size_t len,
	    void *arg);
	/* TLS handshake finished: status RELAY_CONN_OK or RELAY_CONN_TLS. The
	 * SSL object is inspected with relay_conn_ssl(). */
	void (*on_tls)(struct relay_conn *c, int status, void *arg);
	/* The connection failed (EOF, timeout, I/O, TLS). The owner closes. */
	void (*on_error)(struct relay_conn *c, int err, void *arg);
	/* Optional: queued output fell below RELAY_CONN_LOW_WATER after
	 * relay_conn_pending() had exceeded it (back-pressure for senders of
	 * large bodies). */
	void (*on_drain)(struct relay_conn *c, void *arg);
	/* Last callback: the connection is about to be freed. */
	void (*on_closed)(struct relay_conn *c, void *arg);
};

/*
 * Start an outbound TCP connection to addr, from the local address source
 * (port 0) when source is not NULL; it must be of addr's family. On
 * success *out is the new connection and on_connected will run; on failure
 * nothing was created and no callback runs. connect_timeout_ms bounds the
 * connect itself.
 * A source that cannot be bound (not a local address, ports exhausted)
 * fails the connection as a refused connect does: on_connected runs with
 * the bind's negative uv error (never from inside this call) and
 * relay_conn_bind_failed() is then true. The connection is never made from
 * another address instead.
 */
int relay_conn_connect(uv_loop_t *loop, const struct sockaddr *addr,
    const struct sockaddr *source, uint64_t connect_timeout_ms,
    const struct relay_conn_cbs *cbs, void *arg, struct relay_conn **out)
    __attribute__((warn_unused_result));

/* True when on_connected reported that the source address given to
 * relay_conn_connect() could not be bound. */
bool relay_conn_bind_failed(const struct relay_conn *c);

/*
 * Accept a pending connection on server. Reading starts at once.
 */
int relay_conn_accept(uv_stream_t *server, const struct relay_conn_cbs *cbs,
    void *arg, struct relay_conn **out) __attribute__((warn_unused_result));

/* Queue bytes for the peer (encrypted when TLS is on). Copies p. */
int relay_conn_write(struct relay_conn *c, const uint8_t *p, size_t len)
    __attribute__((warn_unused_result));

/*
 * Begin TLS with ssl (owned by the connection from now on; freed with it).
 * The SSL must already be in client or server mode. Plaintext bytes that
 * arrived before this call and were not consumed must have been discarded by
 * the caller (STARTTLS command injection). on_tls reports the result.
 */
int relay_conn_start_tls(struct relay_conn *c, SSL *ssl)
    __attribute__((warn_unused_result));

/* The connection's SSL, or NULL before relay_conn_start_tls. Borrowed. */
SSL *relay_conn_ssl(const struct relay_conn *c);

/* (Re)arm the idle timer: on_error(RELAY_CONN_TIMEOUT) when no byte arrives
 * within ms. 0 disables it. */
void relay_conn_set_timeout(struct relay_conn *c, uint64_t ms);

/* (Re)set an overall deadline ms from now: on_error(RELAY_CONN_TIMEOUT) then,
 * however many bytes arrive meanwhile (a client that drips one byte per
 * idle period). Works beside the idle timer; whichever expires first
 * fires. 0 removes the deadline. */
void relay_conn_set_deadline(struct relay_conn *c, uint64_t ms);

/* True when the deadline set with relay_conn_set_deadline() has passed
 * (tells a deadline from an idle timeout in on_error). */
bool relay_conn_deadline_passed(const struct relay_conn *c);

/* Stop or restart delivering on_data (back-pressure). */
void relay_conn_pause(struct relay_conn *c, bool paused);

/* Writers of large data keep relay_conn_pending() below this and wait for
 * on_drain when it is reached. */
#define RELAY_CONN_LOW_WATER (256u * 1024)

/* Bytes queued for writing and not yet written to the socket. */
size_t relay_conn_pending(const struct relay_conn *c);

/* Peer address (numeric host and port). */
int relay_conn_peer(const struct relay_conn *c, struct sockaddr_storage *ss)
    __attribute__((warn_unused_result));

/* Our own address of the connection (getsockname), once connected. */
int relay_conn_local(const struct relay_conn *c, struct sockaddr_storage *ss)
    __attribute__((warn_unused_result));

/* The OpenSSL reason of the last TLS failure, for log lines; returns buf. */
const char *relay_conn_tls_errstr(const struct relay_conn *c, char *buf,
    size_t size);

/* Last libuv error code seen (0 if none), for log lines. */
int relay_conn_last_uv_error(const struct relay_conn *c);

/* Close gracefully: pending output is flushed first (bounded by the idle
 * timer), then a TLS close_notify when TLS is up, then the socket. */
void relay_conn_close(struct relay_conn *c);

/* Close at once, dropping pending output. */
void relay_conn_abort(struct relay_conn *c);

#endif
