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
#include "relay_fail_class.h"
#include "relay_metrics.h"
#include "relay_queue.h"
#include "relay_smtpd.h"
#include "relay_tlsrpt.h"
#include "tlsa.h"

/* One listening TCP socket (daemon_listen.c); tcp.data points to it, so
 * a connection callback finds the daemon. */
struct daemon_listener {
	uv_tcp_t tcp;
	struct relay_daemon *d;
	char text[64]; /* the address as configured, for the log */
};

/* The listeners of one address list of the configuration. */
struct daemon_listeners {
	struct daemon_listener *l; /* owned; NULL when the list is empty */
	size_t n;                  /* initialised handles in l */
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
	/* in_flow_delay: messages that may be accepted at once (relay_serve.c,
	 * hook_in_flow_take()). */
	size_t in_flow_tokens;

	struct daemon_listeners listeners; /* listen */
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t stop_timer;
	/* WATCHDOG=1 to the service manager every half of $WATCHDOG_USEC
	 * (not started when the watchdog is off). A timer on the loop, so a
	 * loop that hangs stops the pings and the manager restarts serve. */
	uv_timer_t watchdog_timer;

	/* Inbound sessions (for limits and shutdown). */
	struct relay_smtpd_server smtpd;

	/* What the scheduler borrows; points into this struct. */
	struct relay_deliver_ctx deliver;
	struct relay_sched *sched;
	/* The routing monitor (NULL when routing_monitor_enable is off or
	 * it could not start); closed after the scheduler. */
	struct relay_monitor *monitor;
	struct relay_control *control; /* control socket, report */
	/* TLS reporting (RFC 8460): NULL when tlsrpt_enable is off or the
	 * store could not be opened. */
	struct relay_tlsrpt_store *tlsrpt_store;
	struct relay_tlsrpt_sender *tlsrpt_sender;

	/* Counters for the metrics endpoint and `danerelay metrics`
	 * (daemon_metrics.c); the deliver and dns contexts point here. */
	struct relay_metrics metrics;
	const char *fail_class_names[RELAY_FAIL_CLASS_COUNT];
	uint64_t selftest_ok_wall_us; /* last passing self-test, 0: none */
	struct daemon_listeners mlisteners; /* metrics_listen */
	struct metrics_conn *mconns;        /* open metrics connections */
	size_t nmconns;

	/* For `danerelay status`: when serve started, and the last
	 * DNSSEC self-test's result (selftest_us == 0: none yet). */
	uint64_t started_wall_us, started_mono_us;
	bool selftest_ok;
	uint64_t selftest_us;
	char selftest_why[256];

	bool stopping;
	int exit_code;
};

/* ---- daemon_listen.c: listening sockets ---- */

/* Binds each of the naddrs addresses of the configuration key key and
 * listens on it with backlog, on_connection taking its connections.
 * Returns 0, or -1 with "KEY ADDRESS: why" in err; the handles made so far
 * are in set either way, for daemon__listeners_close(). */
int daemon__listen(struct relay_daemon *d, const char *key,
    const struct relay_config_addr *addrs, size_t naddrs, int backlog,
    uv_connection_cb on_connection, struct daemon_listeners *set, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/* Closes every handle of set (shutdown); safe to call again. */
void daemon__listeners_close(struct daemon_listeners *set);

/* Frees set's array once the loop has ended. */
void daemon__listeners_free(struct daemon_listeners *set);

/* ---- daemon_metrics.c: the metrics endpoint ---- */

/* Binds and listens on every metrics_listen address. Returns 0, or -1
 * with a line in err (the listeners made so far stay for
 * daemon__metrics_stop()). */
int daemon__metrics_listen(struct relay_daemon *d, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Closes the listeners and every metrics connection (shutdown). */
void daemon__metrics_stop(struct relay_daemon *d);

/* The exposition text of d's counters and gauges, malloc'd and
 * NUL-terminated (the caller frees it), its length in *len; NULL when out
 * of memory. arg is the daemon (the control socket's metrics hook). */
char *daemon__metrics_text(void *arg, size_t *len);
/* relay_serve_tlsrpt.c */
void serve__tlsrpt_start(struct relay_daemon *d);
void serve__tlsrpt_session(void *arg, const struct relay_tls_session *ev);
long serve__tlsrpt_send(void *arg, const char *day, char *msg, size_t msglen);

#endif
