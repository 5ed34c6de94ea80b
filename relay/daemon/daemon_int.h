#ifndef DAEMON_INT_H
#define DAEMON_INT_H
/*
 * daemon_int.h: the state of one `serve` process. Private to daemon/: the
 * layers below get small contexts of what they need (struct
 * relay_deliver_ctx, relay_smtpd_ctx, relay_control_ctx), filled and wired
 * here, never this struct.
 *
 * One struct relay_daemon per `serve` process, owned by relay_serve.c. It
 * outlives every session and delivery job: shutdown waits for them (or
 * aborts them) before the daemon is torn down.
 */
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "relay_clock.h"
#include "relay_config.h"
#include "relay_control.h"
#include "relay_deliver.h"
#include "relay_dns.h"
#include "relay_queue.h"
#include "relay_smtpd.h"
#include "tlsa.h"

struct relay_listener {
	uv_tcp_t tcp;
	struct relay_daemon *d;
	char text[64];
};

struct relay_daemon {
	uv_loop_t *loop;
	/* The one clock (relay_clock.h), passed to every context below:
	 * relay_clock_system() in `serve`. */
	const struct relay_clock *clock;
	struct relay_config cfg;
	char *config_path; /* for SIGHUP */
	struct relay_queue *queue;
	struct relay_dns *dns;
	struct tlsa_ctx *tlsa; /* outbound client contexts */
	/* MTA-STS: outbound contexts whose verify store is mta_sts_ca_file,
	 * and the policy cache (NULL when it could not start). */
	struct tlsa_ctx *tlsa_sts;
	struct relay_sts *sts;
	struct tlsa_digests digests;
	SSL_CTX *server_tls; /* inbound STARTTLS, NULL when no cert */

	struct relay_listener *listeners;
	size_t nlisteners;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t stop_timer;

	/* Inbound sessions (for limits and shutdown). */
	struct relay_smtpd_server smtpd;

	/* What the scheduler borrows; points into this struct. */
	struct relay_deliver_ctx deliver;
	struct relay_sched *sched;
	struct relay_control *control; /* control socket, report */

	bool stopping;
	int exit_code;
};

#endif
