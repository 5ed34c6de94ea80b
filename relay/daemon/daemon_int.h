#ifndef RELAY_INT_H
#define RELAY_INT_H
/*
 * relay_int.h: what the parts of the daemon share (serve loop, inbound SMTP
 * sessions, delivery). Private to relay/.
 *
 * One struct relay_daemon per `serve` process, owned by relay_serve.c. It
 * outlives every session and delivery job: shutdown waits for them (or
 * aborts them) before the daemon is torn down.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "relay_config.h"
#include "relay_dns.h"
#include "relay_queue.h"
#include "tlsa.h"

struct relay_smtpd;
struct relay_sched;
struct relay_control;   /* issue 6: relay_control.h */

struct relay_listener {
	uv_tcp_t tcp;
	struct relay_daemon *d;
	char text[64];
};

struct relay_daemon {
	uv_loop_t *loop;
	struct relay_config cfg;
	char *config_path;          /* for SIGHUP */
	struct relay_queue *queue;
	struct relay_dns *dns;
	struct tlsa_ctx *tlsa;      /* outbound client contexts */
	struct tlsa_digests digests;
	SSL_CTX *server_tls;        /* inbound STARTTLS, NULL when no cert */

	struct relay_listener *listeners;
	size_t nlisteners;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t stop_timer;

	/* Inbound sessions (for limits and shutdown). */
	struct relay_smtpd *sessions;
	size_t nsessions;

	struct relay_sched *sched;
	struct relay_control *control;  /* issue 6: control socket, report */

	bool stopping;
	int exit_code;
};

/*
 * issue 6, `danerelay dns flush` (relay_serve.c): replace d->dns by a fresh
 * resolver context built from the same configuration (an empty cache:
 * libunbound has no flush call) and retire the old one with
 * relay_dns_close_when_idle(), so lookups of delivery jobs in flight finish
 * on it. name (may be NULL) is only logged: the whole cache goes either
 * way. Logs event=dns-flush. Writes one line for the operator into msg.
 * Returns 0, or -1 (d->dns unchanged) when stopping or the new context
 * cannot be made.
 */
int relay_serve_dns_flush(struct relay_daemon *d, const char *name,
    char *msg, size_t msglen) __attribute__((warn_unused_result));

#include "relay_clock.h"
#include "relay_text.h"

/* ---- inbound (relay_smtpd.c) ---- */

/* Accept one connection from a listener. */
void relay_smtpd_accept(struct relay_daemon *d, uv_stream_t *server);

/* Ask every session to finish: 421 to idle ones, let transactions whose
 * commit is in flight complete. */
void relay_smtpd_shutdown(struct relay_daemon *d);

/* Drop every inbound session at once (end of shutdown). */
void relay_smtpd_abort_all(struct relay_daemon *d);

/* ---- delivery (relay_sched.c, relay_dest.c, relay_outbound.c) ---- */

/*
 * The scheduler: finds due recipients in the queue, resolves their
 * destinations, applies the RFC 7672 policy (tlsa/), delivers, and records
 * the outcome per recipient; sends DSNs.
 */
int relay_sched_new(struct relay_daemon *d, struct relay_sched **out)
    __attribute__((warn_unused_result));

/* Rescan the queue for due work on the next loop iteration (after a
 * retry command, a passing self-test, a reload, a local submission). */
void relay_sched_kick(struct relay_sched *s);

/* Message id was just committed by an inbound session: start delivering it
 * now (no index scan) when a place is free. */
void relay_sched_new_message(struct relay_sched *s, const char *id);

/* Stop starting work; abort work in flight after grace_ms (0: at once).
 * done(d) runs once nothing is in flight any more and every handle of the
 * scheduler is closed; the scheduler is freed then. */
void relay_sched_stop(struct relay_sched *s, uint64_t grace_ms,
    void (*done)(struct relay_daemon *d));

/* Number of delivery jobs in flight. */
size_t relay_sched_active(const struct relay_sched *s);

/* issue 6: whether message id (a queue id) is being delivered now: loaded
 * by a job whose outcome will be written back over the envelope. */
bool relay_sched_is_active(const struct relay_sched *s, const char *id);

/*
 * Queue a locally generated message (DSN, report) with the null sender or
 * the given sender, for one recipient. content is copied. cb may be NULL.
 * Returns 0 or a relay_queue_err.
 */
int relay_submit_local(struct relay_daemon *d, const char *sender,
    const char *rcpt, unsigned notify, const uint8_t *content, size_t len)
    __attribute__((warn_unused_result));

#endif
