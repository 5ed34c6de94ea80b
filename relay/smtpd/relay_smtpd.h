#ifndef RELAY_SMTPD_H
#define RELAY_SMTPD_H
/*
 * relay_smtpd: inbound SMTP sessions from the local MTA (relay_smtpd.c).
 *
 * A session receives a transaction (smtp/ server machine), writes it to
 * the queue, and answers 250 only after the commit is durable. It does not
 * know who delivers: it reports "message committed" through a callback
 * its owner wired (STYLE.md section 11).
 */
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "relay_clock.h"
#include "relay_config.h"
#include "relay_queue.h"

/* What the sessions borrow from their owner, who keeps it alive until
 * every session is closed. */
struct relay_smtpd_ctx {
	uv_loop_t *loop;
	/* Where sessions read time (relay_clock.h): monotonic for the
	 * DATA/BDAT deadline (smtpd_min_data_rate), wall for the date of the
	 * Received: header. The daemon's is relay_clock_system(). */
	const struct relay_clock *clock;
	/* The configuration in effect; a reload may replace its contents
	 * between two loop turns. */
	const struct relay_config *cfg;
	struct relay_queue *queue;
	SSL_CTX *server_tls; /* inbound STARTTLS, NULL when no cert */
	/* Message queue_id is durable in the queue (the client gets its
	 * 250 next). May be NULL. */
	void (*committed)(void *arg, const char *queue_id);
	/* Inflow control (in_flow_delay): true when a new message may be
	 * accepted at once (a token was taken), false when delivery lags:
	 * the reply to MAIL FROM then waits in_flow_delay. May be NULL. */
	bool (*in_flow_take)(void *arg);
	void *arg;
};

struct relay_smtpd;

/* The set of inbound sessions (for limits and shutdown), embedded in its
 * owner. */
struct relay_smtpd_server {
	/* public */
	struct relay_smtpd_ctx ctx;
	/* private */
	struct relay_smtpd *sessions;
	size_t nsessions;
	bool stopping;
};

/* Start with no sessions; ctx is copied (what it points to is borrowed). */
void relay_smtpd_server_init(struct relay_smtpd_server *srv,
    const struct relay_smtpd_ctx *ctx);

/* Accept one connection from a listener. */
void relay_smtpd_accept(struct relay_smtpd_server *srv, uv_stream_t *server);

/* Refuse new connections and transactions from now on; 421 to idle
 * sessions, let transactions whose commit is in flight complete. */
void relay_smtpd_shutdown(struct relay_smtpd_server *srv);

/* Inbound sessions open now. */
size_t relay_smtpd_count(const struct relay_smtpd_server *srv);

/* Drop every inbound session at once (end of shutdown). */
void relay_smtpd_abort_all(struct relay_smtpd_server *srv);

#endif
