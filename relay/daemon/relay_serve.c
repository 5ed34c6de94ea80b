/*
 * relay_serve: `danerelay serve`, the daemon (relay_daemon_run(); the
 * command line is cli/relay_cli_serve.c).
 *
 * One libuv loop runs everything: listeners and inbound sessions
 * (smtpd/), the scheduler and outbound sessions (deliver/), libunbound's
 * result pipe (dns/) and the queue's thread-pool requests (queue/). This
 * file is the only one that knows them all: it gives each its small
 * context and connects them through the hooks below (STYLE.md section 11).
 *
 * Start: configuration, spool lock (a second `serve` on the same spool
 * refuses to start), resolver with its DNSSEC self-test, TLS contexts,
 * listeners, signals.
 * SIGTERM/SIGINT: stop accepting, 421 to idle clients, let deliveries in
 * flight finish for shutdown_timeout, then abort them (their recipients stay
 * queued: at-least-once), close the resolver and the queue, exit 0.
 * SIGHUP: reopen log_file (for log rotation) and reload the configuration
 * (listen, metrics_listen and spool_dir need a restart), reading
 * mta_sts_ca_file again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "danerelay_version.h"
#include "daemon_int.h"
#include "relay_clock.h"
#include "relay_daemon.h"
#include "relay_log.h"
#include "relay_monitor.h"
#include "relay_notify.h"
#include "relay_text.h"

/* Pending connections the kernel keeps for us (listen(2) backlog). */
#define SERVE_BACKLOG 128

/*
 * Tells a service manager (systemd Type=notify) what serve is doing: state
 * is "" or assignments ending in "\n" (READY=1, STOPPING=1, ...), what is
 * the STATUS= text. Without $NOTIFY_SOCKET nothing is sent; a failure to
 * send is logged and otherwise ignored, because delivery does not depend
 * on anyone listening.
 */
static void
serve_notify(struct relay_daemon *d, const char *state, const char *what)
{
	int r = relay_notifyf("%sSTATUS=%.400s, %zu queued", state, what,
	    d->queue != NULL ? relay_queue_count(d->queue) : 0);
	if (r != 0)
		relay_log_msg(RELAY_LOG_WARNING, "notify",
		    relay_notify_strerror(r));
}

/* relay_dns has logged the verdict (event=dnssec-selftest); the service
 * manager's status follows it, and a pass lets the deliveries that waited
 * for it go. */
static void
dns_selftest(void *arg, bool ok, const char *why)
{
	struct relay_daemon *d = arg;
	char what[480];
	d->selftest_ok = ok;
	d->selftest_us = relay_clock_wall_us(d->clock);
	relay_fmt(d->selftest_why, sizeof(d->selftest_why), "%s",
	    why != NULL ? why : "");
	relay_fmt(what, sizeof(what), "serving, dns self-test %s%.400s",
	    ok ? "ok" : "FAILED (DNSSEC deliveries deferred): ",
	    ok || why == NULL ? "" : why);
	serve_notify(d, "", what);
	if (ok)
		d->selftest_ok_wall_us = relay_clock_wall_us(d->clock);
	if (ok && d->sched != NULL)
		relay_sched_kick(d->sched);
}

/* The background queue load added messages due by earliest_due_us, or
 * finished: let the scheduler look (kicks coalesce into one scan). */
static void
queue_loaded(bool done, uint64_t earliest_due_us, void *arg)
{
	struct relay_daemon *d = arg;

	if (d->sched == NULL)
		return;
	if (done || earliest_due_us <= relay_clock_wall_us(d->clock))
		relay_sched_kick(d->sched);
}

static int
start_dns(struct relay_daemon *d)
{
	struct relay_dns_opts o;
	relay_dns_opts_from_config(&o, &d->cfg);
	o.on_selftest = dns_selftest;
	o.selftest_arg = d;
	o.metrics = &d->metrics;
	int r = relay_dns_new(d->loop, &o, &d->dns);
	if (r != 0)
		return r;
	r = relay_dns_start(d->dns);
	if (r != 0) {
		relay_dns_close(d->dns, NULL, NULL);
		d->dns = NULL;
	}
	return r;
}

/* ---- `danerelay dns flush` ---- */

/* A retired resolver context, until its last lookup in flight is done. */
struct dns_retired {
	const struct relay_clock *clock;
	uint64_t since_us; /* monotonic, when it was retired */
	size_t pending;    /* outstanding when it was retired */
};

static void
dns_retired_closed(void *arg)
{
	struct dns_retired *rt = arg;
	struct relay_log_line l;

	if (relay_log_begin(&l, RELAY_LOG_INFO, "dns-flush")) {
		relay_log_str(&l, "status", "old-context-closed");
		relay_log_u64(&l, "in_flight_at_flush", rt->pending);
		relay_log_u64(&l, "drain_ms",
		    (relay_clock_mono_us(rt->clock) - rt->since_us) / 1000u);
		relay_log_end(&l);
	}
	free(rt);
}

/*
 * `danerelay dns flush` (the control socket's dns_flush hook): replace
 * d->dns by a fresh resolver context built from the same configuration (an
 * empty cache: libunbound has no flush call) and retire the old one with
 * relay_dns_close_when_idle(), so lookups of delivery jobs in flight finish
 * on it. name (may be NULL) is only logged: the whole cache goes either
 * way. Logs event=dns-flush. Writes one line for the operator into msg.
 * Returns 0, or -1 (d->dns unchanged) when stopping or the new context
 * cannot be made.
 */
static int
serve_dns_flush(void *arg, const char *name, char *msg, size_t msglen)
{
	struct relay_daemon *d = arg;
	struct relay_log_line l;

	if (d->stopping || d->dns == NULL) {
		relay_fmt(msg, msglen, "the daemon is stopping");
		return -1;
	}
	struct dns_retired *rt = malloc(sizeof(*rt));
	if (rt == NULL) {
		relay_fmt(msg, msglen, "out of memory");
		return -1;
	}
	/* Same options as at start (the configuration as last loaded, so a
	 * SIGHUP's resolver changes apply too); start_dns() runs the
	 * self-test on the new context and kicks the scheduler when it
	 * passes. Until then the new context's validation state is
	 * "unknown" and the scheduler waits, as at start. */
	struct relay_dns *old = d->dns;
	d->dns = NULL;
	int r = start_dns(d);
	if (r != 0) {
		d->dns = old;
		free(rt);
		if (relay_log_begin(&l, RELAY_LOG_ERROR, "dns-flush")) {
			relay_log_str(&l, "status", "failed");
			relay_log_str(&l, "why", relay_dns_strerror(r));
			relay_log_end(&l);
		}
		relay_fmt(msg, msglen,
		    "cannot create a new resolver context "
		    "(%s); the old cache stays",
		    relay_dns_strerror(r));
		return -1;
	}
	rt->clock = d->clock;
	rt->since_us = relay_clock_mono_us(d->clock);
	rt->pending = relay_dns_pending(old);
	/* Destination jobs hold relay_dns_req handles on the old context:
	 * closing it now would cancel them without their callbacks and
	 * strand the jobs. It closes itself once they are answered. */
	relay_dns_close_when_idle(old, dns_retired_closed, rt);
	/* New DNS answers may route around what made a domain fail. */
	if (d->sched != NULL)
		relay_sched_resume_all(d->sched);
	if (relay_log_begin(&l, RELAY_LOG_INFO, "dns-flush")) {
		relay_log_str(&l, "status", "ok");
		relay_log_str(&l, "name", name != NULL ? name : "(all)");
		relay_log_str(&l, "scope", "full");
		relay_log_u64(&l, "in_flight", rt->pending);
		relay_log_end(&l);
	}
	relay_fmt(msg, msglen,
	    "DNS cache flushed%s%s%s: new resolver context, "
	    "%zu DNS request(s) in flight finish on the old one",
	    name != NULL ? " (whole cache, asked for " : "",
	    name != NULL ? name : "", name != NULL ? ")" : "", rt->pending);
	return 0;
}

static int
start_server_tls(struct relay_daemon *d, char *err, size_t errlen)
{
	if (d->cfg.tls_cert_file[0] == '\0' || d->cfg.tls_key_file[0] == '\0')
		return 0;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, d->cfg.tls_cert_file) !=
	        1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, d->cfg.tls_key_file,
	        SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		char e[256];
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		snprintf(err, errlen, "tls_cert_file/tls_key_file: %s", e);
		SSL_CTX_free(ctx);
		return -1;
	}
	d->server_tls = ctx;
	return 0;
}

/* Give the spool tree to uid/gid: the directories and every file directly
 * in them (the spool is flat: lock, tmp/, queue/, corrupt/, pool/). Without
 * pool/ every removal's rename into it fails and the queue falls back to
 * creating and unlinking files (relay/QUEUE.md "The pool"). */
static int
chown_spool(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	static const char *const sub[] = { "", "tmp", "queue", "corrupt",
		"pool", RELAY_TLSRPT_DIR };
	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		char path[PATH_MAX];
		int w = snprintf(path, sizeof(path), "%s%s%s", dir,
		    sub[i][0] != '\0' ? "/" : "", sub[i]);
		if (w < 0 || (size_t)w >= sizeof(path))
			return -1;
		DIR *dp = opendir(path);
		if (dp == NULL) {
			if (errno == ENOENT && i > 0)
				continue;
			relay_fmt(err, errlen, "spool %s: %s", path,
			    strerror(errno));
			return -1;
		}
		/* A queue/ serve already handed over holds only files
		 * the run user made (the CLI becomes the spool owner before
		 * it writes): walking a queue of a million messages file by
		 * file would hold up every start by seconds. */
		struct stat dst;
		bool handed = strcmp(sub[i], "queue") == 0 &&
		    fstat(dirfd(dp), &dst) == 0 && dst.st_uid == uid &&
		    dst.st_gid == gid && (dst.st_mode & 07777) == 0700;
		/* The spool is the daemon's alone: mail and
		 * envelopes are not for other local users to read. */
		if (fchown(dirfd(dp), uid, gid) != 0 ||
		    fchmod(dirfd(dp), 0700) != 0) {
			relay_fmt(err, errlen, "chown %s: %s", path,
			    strerror(errno));
			closedir(dp);
			return -1;
		}
		struct dirent *de;
		while (!handed && (de = readdir(dp)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			struct stat st;
			if (fstatat(dirfd(dp), de->d_name, &st,
			        AT_SYMLINK_NOFOLLOW) != 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			if (fchownat(dirfd(dp), de->d_name, uid, gid,
			        AT_SYMLINK_NOFOLLOW) != 0) {
				relay_fmt(err, errlen, "chown %s/%s: %s", path,
				    de->d_name, strerror(errno));
				closedir(dp);
				return -1;
			}
		}
		closedir(dp);
	}
	return 0;
}

/*
 * Started as root: hand the spool to run_user and become run_user for good.
 * An empty run_user keeps root (development only; logged as a warning). A
 * run_user that does not exist is an error, never a silent "stay root".
 */
static int
drop_privileges(struct relay_daemon *d, char *err, size_t errlen)
{
	if (geteuid() != 0)
		return 0;
	const char *user = d->cfg.run_user;
	if (user[0] == '\0') {
		relay_log_msg(RELAY_LOG_WARNING, "privileges",
		    "running as root because run_user is empty");
		return 0;
	}
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err, errlen,
		    "run_user %s does not exist (create it with: "
		    "adduser --system --group %s)",
		    user, user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen,
		    "run_user %s is root; choose an unprivileged user", user);
		return -1;
	}
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	if (chown_spool(relay_queue_dir(d->queue), uid, gid, err, errlen) != 0)
		return -1;
	/* The log file stays open across the switch; owning it lets the run
	 * user reopen it on SIGHUP, and a rotation that copies its owner
	 * (logrotate's `create`) makes the next one the run user's too.
	 * Without it only reopening after a rotation may fail (logged then),
	 * so this is no reason to stop. */
	int lr = relay_log_chown_file(uid, gid);
	if (lr != 0) {
		struct relay_log_line wl;
		if (relay_log_begin(&wl, RELAY_LOG_WARNING, "privileges")) {
			relay_log_str(&wl, "log_file", d->cfg.log_file);
			relay_log_str(&wl, "why", strerror(-lr));
			relay_log_str(&wl, "effect",
			    "log_file stays root's; reopening it on SIGHUP may fail");
			relay_log_end(&wl);
		}
	}
	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		snprintf(err, errlen, "cannot become %s: %s", user,
		    strerror(errno));
		return -1;
	}
	/* Paranoia, as Postfix does: root must be gone for good. */
	if (setuid(0) == 0 || geteuid() == 0) {
		snprintf(err, errlen,
		    "privileges could be regained after dropping to %s", user);
		return -1;
	}
	struct relay_log_line l;
	if (relay_log_begin(&l, RELAY_LOG_INFO, "privileges")) {
		relay_log_str(&l, "user", user);
		relay_log_u64(&l, "uid", uid);
		relay_log_u64(&l, "gid", gid);
		relay_log_end(&l);
	}
	return 0;
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct daemon_listener *li = server->data;
	if (status < 0) {
		relay_log_msg(RELAY_LOG_WARNING, "accept", uv_strerror(status));
		return;
	}
	relay_smtpd_accept(&li->d->smtpd, server);
}

/* One keep-alive for the service manager's watchdog (sd_notify(3)). It
 * runs on the loop, after whatever the loop did before it: the pings stop
 * when the loop stops turning. A failed send is logged and the next tick
 * tries again (the manager acts only after a whole timeout without one). */
static void
on_watchdog(uv_timer_t *t)
{
	(void)t;
	int r = relay_notify("WATCHDOG=1");
	if (r != 0)
		relay_log_msg(RELAY_LOG_WARNING, "notify",
		    relay_notify_strerror(r));
}

/*
 * Starts the watchdog pings when the service manager asks for them
 * (WatchdogSec= in the unit sets $WATCHDOG_USEC): the first at once, then
 * every half of the timeout, as sd_watchdog_enabled(3) recommends.
 */
static void
start_watchdog(struct relay_daemon *d)
{
	uint64_t usec = 0;
	int r = relay_notify_watchdog_usec(&usec);

	if (r < 0) {
		relay_log_msg(RELAY_LOG_WARNING, "watchdog",
		    "WATCHDOG_USEC or WATCHDOG_PID is malformed: no "
		    "keep-alive sent");
		return;
	}
	if (r == 0)
		return;
	uint64_t every_ms = usec / 2000;
	if (every_ms == 0)
		every_ms = 1; /* libuv: a repeat of 0 would mean once */
	struct relay_log_line l;
	if (relay_log_begin(&l, RELAY_LOG_INFO, "watchdog")) {
		relay_log_ms(&l, "timeout", usec / 1000);
		relay_log_ms(&l, "interval", every_ms);
		relay_log_end(&l);
	}
	uv_timer_start(&d->watchdog_timer, on_watchdog, 0, every_ms);
}

static void
queue_closed(void *arg)
{
	struct relay_daemon *d = arg;
	d->queue = NULL;
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
	uv_close((uv_handle_t *)&d->stop_timer, NULL);
	uv_close((uv_handle_t *)&d->watchdog_timer, NULL);
	relay_log_msg(RELAY_LOG_INFO, "stopped", "shutdown complete");
}

static void
dns_closed(void *arg)
{
	struct relay_daemon *d = arg;
	d->dns = NULL;
	if (d->queue != NULL)
		relay_queue_close(d->queue, queue_closed, d);
	else
		queue_closed(d);
}

/* The TLS counts are on disk: the resolver goes next. */
static void
tlsrpt_store_closed(void *arg)
{
	struct relay_daemon *d = arg;
	d->tlsrpt_store = NULL;
	if (d->dns != NULL)
		relay_dns_close(d->dns, dns_closed, d);
	else
		dns_closed(d);
}

static void
monitor_closed(void *arg)
{
	struct relay_daemon *d = arg;
	d->monitor = NULL;
	/* No session reports any more: write the last TLS counts. */
	if (d->tlsrpt_store != NULL)
		relay_tlsrpt_store_close(d->tlsrpt_store, tlsrpt_store_closed,
		    d);
	else
		tlsrpt_store_closed(d);
}

static void
sched_done(void *arg)
{
	struct relay_daemon *d = arg;
	d->sched = NULL;
	/* Inbound sessions still open now are dropped; a commit in flight
	 * completes inside the queue (the client retries: at-least-once). */
	relay_smtpd_abort_all(&d->smtpd);
	/* Before the resolver: the MTA-STS cache cancels its own lookups.
	 * Fetches in the thread pool stop at their next progress check, and
	 * the loop runs until they have returned. */
	relay_sts_close(d->sts, NULL, NULL);
	d->sts = NULL;
	/* No delivery feeds the monitor any more: its last snapshot goes to
	 * disk (thread pool) before the resolver and the queue close. */
	if (d->monitor != NULL)
		relay_monitor_close(d->monitor, monitor_closed, d);
	else
		monitor_closed(d);
}

/* monitor: one routing change, for danerelay_routing_changes_total. */
static void
monitor_changed(void *arg, const char *kind)
{
	struct relay_daemon *d = arg;
	relay_metrics_routing_change(&d->metrics, kind);
}

/*
 * Opens the routing monitor (routing_monitor_enable), which reads
 * spool_dir/routing-monitor on the thread pool. Without it delivery goes
 * on unmonitored: the monitor only reports, so its failure is logged and
 * changes nothing else.
 */

static void
start_monitor(struct relay_daemon *d)
{
	if (!d->cfg.routing_monitor_enable)
		return;
	char path[4096];
	relay_fmt(path, sizeof(path), "%s/%s", relay_queue_dir(d->queue),
	    RELAY_MONITOR_FILE);
	struct relay_monitor_ctx mc = {
		.loop = d->loop,
		.clock = d->clock,
		.path = path,
		.max_domains = (size_t)d->cfg.routing_monitor_size,
		.on_change = monitor_changed,
		.arg = d,
	};
	int r = relay_monitor_open(&mc, &d->monitor);
	if (r != 0) {
		d->monitor = NULL;
		relay_log_msg(RELAY_LOG_ERROR, "routing-monitor",
		    relay_monitor_strerror(r));
	}
}

/* The MTA-STS policy cache, under spool_dir/mta-sts. Returns 0 or -1
 * (logged): serve then stops rather than deliver without the policies
 * it was told to apply. */
static int
start_sts(struct relay_daemon *d)
{
	char dir[4200];
	relay_fmt(dir, sizeof(dir), "%s/mta-sts", relay_queue_dir(d->queue));
	struct relay_sts_ctx sc = {
		.loop = d->loop,
		.clock = d->clock,
		.dns = &d->dns,
		.cache_dir = dir,
		.ca_file = d->cfg.mta_sts_ca_file,
		.timeout_ms = d->cfg.mta_sts_timeout_ms,
		.check_interval_ms = d->cfg.mta_sts_check_interval_ms,
	};
	if (relay_sts_new(&sc, &d->sts) != 0) {
		d->sts = NULL;
		return -1;
	}
	return 0;
}

static void
stop_daemon(struct relay_daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = true;
	relay_log_msg(RELAY_LOG_INFO, "stopping", why);
	serve_notify(d, "STOPPING=1\n", "stopping");
	daemon__listeners_close(&d->listeners);
	daemon__metrics_stop(d);
	relay_smtpd_shutdown(&d->smtpd);
	/* No more control requests or report mails. */
	relay_control_stop(d->control);
	d->control = NULL;
	relay_tlsrpt_sender_stop(d->tlsrpt_sender);
	d->tlsrpt_sender = NULL;
	if (d->sched != NULL)
		relay_sched_stop(d->sched, d->cfg.shutdown_timeout_ms,
		    sched_done, d);
	else
		sched_done(d);
}

/*
 * Reopens log_file at path, so that after a rotation renamed it the lines
 * go to a new file there. A failure (the run user may not create files in
 * the log directory) keeps the old file open and says so in it.
 */
static void
reopen_log(const char *path)
{
	int r = relay_log_open_file(path);
	if (r != 0) {
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_ERROR, "log-reopen")) {
			relay_log_str(&l, "status", "failed");
			relay_log_str(&l, "log_file", path);
			relay_log_str(&l, "why", strerror(-r));
			relay_log_str(&l, "effect",
			    "lines still go to the file opened before");
			relay_log_end(&l);
		}
	}
}

/*
 * Reads mta_sts_ca_file again (a reload may name another file, or the
 * file may have new contents): the client contexts for MX hosts under an
 * MTA-STS enforce policy (RFC 8461 4.2) and the policy fetches (3.3).
 * When the file cannot be read the old store stays, and the log says so:
 * the operator fixes the file and reloads again. Sessions already under
 * way keep the store they started with (OpenSSL holds a reference); parked
 * ones verified under the old store are not reused (tlsa_sts_gen).
 */
static void
reload_sts_ca(struct relay_daemon *d)
{
	const char *ca = d->cfg.mta_sts_ca_file;
	struct tlsa_ctx_config tcs = {
		.digests = &d->digests,
		.ca_file = ca[0] ? ca : NULL,
	};
	struct tlsa_ctx *n = NULL;
	int r = tlsa_ctx_new(&tcs, &n);
	struct relay_log_line l;
	if (r != 0) {
		if (relay_log_begin(&l, RELAY_LOG_ERROR, "reload")) {
			relay_log_str(&l, "status", "failed");
			relay_log_str(&l, "mta_sts_ca_file",
			    ca[0] ? ca : "(system store)");
			relay_log_str(&l, "why", tlsa_strerror(r));
			relay_log_str(&l, "effect",
			    "the CA certificates read before stay in use");
			relay_log_end(&l);
		}
		ERR_clear_error();
		return;
	}
	tlsa_ctx_free(d->tlsa_sts);
	d->tlsa_sts = n;
	d->deliver.tlsa_sts = n;
	d->deliver.tlsa_sts_gen++;
	if (d->sts != NULL)
		relay_sts_set_ca_file(d->sts, ca);
	if (relay_log_begin(&l, RELAY_LOG_INFO, "reload")) {
		relay_log_str(&l, "mta_sts_ca_file",
		    ca[0] ? ca : "(system store)");
		relay_log_str(&l, "status", "read");
		relay_log_end(&l);
	}
}

static void
reload_config(struct relay_daemon *d)
{
	struct relay_config n;
	char err[RELAY_CONFIG_ERRMAX];
	int r = relay_config_load(&n, d->config_path, err);
	/* First, so this reload's own lines land in the new file; with the
	 * configuration in effect afterwards (the old one if the new one is
	 * rejected: rotation must work even then). */
	reopen_log(r == 0 ? n.log_file : d->cfg.log_file);
	if (r != 0) {
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_ERROR, "reload")) {
			relay_log_str(&l, "status", "failed");
			relay_log_str(&l, "why", err);
			relay_log_end(&l);
		}
		return;
	}
	if (strcmp(n.spool_dir, d->cfg.spool_dir) != 0 ||
	    n.listen_count != d->cfg.listen_count ||
	    n.metrics_listen_count != d->cfg.metrics_listen_count)
		relay_log_msg(RELAY_LOG_WARNING, "reload",
		    "listen, metrics_listen and spool_dir changes take effect "
		    "after a restart");
	/* The new table keeps the running listeners and spool. */
	relay_config_free(&d->cfg);
	d->cfg = n;
	relay_log_set_level(d->cfg.log_level == RELAY_CONFIG_LOG_DEBUG
	        ? RELAY_LOG_DEBUG
	        : RELAY_LOG_INFO);
	if (d->dns != NULL)
		relay_dns_selftest_run(d->dns);
	reload_sts_ca(d);
	relay_log_msg(RELAY_LOG_INFO, "reload", "configuration reloaded");
	if (d->sched != NULL) {
		relay_sched_resume_all(d->sched);
		relay_sched_kick(d->sched);
	}
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct relay_daemon *d = h->data;
	if (signum == SIGHUP) {
		/* MONOTONIC_USEC lets a manager match this reload to its
		 * request (systemd's notify-reload; older ones ignore it). */
		char state[64];
		relay_fmt(state, sizeof(state),
		    "RELOADING=1\nMONOTONIC_USEC=%llu\n",
		    (unsigned long long)relay_clock_mono_us(d->clock));
		serve_notify(d, state, "reloading");
		reload_config(d);
		serve_notify(d, "READY=1\n",
		    "serving, configuration reread (see event=reload)");
	} else
		stop_daemon(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- Wiring between the siblings (STYLE.md section 11) ---- */

/* smtpd: a message is durable in the queue; deliver it now. */
static void
hook_committed(void *arg, const char *queue_id)
{
	struct relay_daemon *d = arg;
	if (d->sched != NULL)
		relay_sched_new_message(d->sched, queue_id);
}

/*
 * Inflow control (in_flow_delay), as Postfix's mail_flow tokens: the
 * scheduler adds one for each message it takes on for delivery and fills
 * the pool while no due message waits for it (Postfix's qmgr: one per
 * message moved from the incoming into the active queue, topped up while
 * the incoming queue is empty); each new message takes one, or its MAIL
 * FROM reply waits in_flow_delay. The pool holds what Postfix's qmgr tops
 * it up to, default_process_limit (100).
 */
#define SERVE_IN_FLOW_TOKENS 100

static bool
hook_in_flow_take(void *arg)
{
	struct relay_daemon *d = arg;
	if (d->in_flow_tokens == 0)
		return false;
	d->in_flow_tokens--;
	return true;
}

static void
hook_in_flow(void *arg, bool idle)
{
	struct relay_daemon *d = arg;
	if (idle)
		d->in_flow_tokens = SERVE_IN_FLOW_TOKENS;
	else if (d->in_flow_tokens < SERVE_IN_FLOW_TOKENS)
		d->in_flow_tokens++;
}

/* deliver: a local message (DSN, report) was committed. The scheduler may
 * be gone by then (a commit ending during shutdown). */
static void
hook_local_queued(void *arg)
{
	struct relay_daemon *d = arg;
	if (d->sched != NULL)
		relay_sched_kick(d->sched);
}

/* control: whether a delivery of id is in flight. */
static bool
hook_active(void *arg, const char *id)
{
	struct relay_daemon *d = arg;
	return d->sched != NULL && relay_sched_is_active(d->sched, id);
}

/* control: a release or retry took effect. A retry is the operator
 * saying the destination may be fixed: suspended ones are tried again. */
static void
hook_kick(void *arg)
{
	struct relay_daemon *d = arg;
	if (d->sched != NULL && !d->stopping) {
		relay_sched_resume_all(d->sched);
		relay_sched_kick(d->sched);
	}
}

/* control: the report mail. */
static int
hook_submit(void *arg, const char *sender, const char *rcpt, unsigned notify,
    const uint8_t *content, size_t len)
{
	struct relay_daemon *d = arg;
	return relay_submit_local(&d->deliver, sender, rcpt, notify, content,
	    len);
}

/* control: `danerelay status`, the daemon's part. */
static void
hook_status(void *arg, struct relay_control_daemon_info *out)
{
	struct relay_daemon *d = arg;
	out->started_us = d->started_wall_us;
	out->uptime_us = relay_clock_mono_us(d->clock) - d->started_mono_us;
	out->selftest_state = d->dns != NULL
	    ? relay_dns_validation_name(relay_dns_validation_state(d->dns))
	    : "unknown";
	out->selftest_ran = d->selftest_us != 0;
	out->selftest_ok = d->selftest_ok;
	out->selftest_us = d->selftest_us;
	relay_fmt(out->selftest_why, sizeof(out->selftest_why), "%s",
	    d->selftest_why);
	if (d->sched != NULL) {
		struct relay_sched_stats st;
		relay_sched_stats(d->sched, &st);
		out->deliveries = st.messages;
		out->destinations = st.destinations;
		out->connections_out = st.connections;
		out->connection_cache = st.cached;
	}
	out->connections_in = relay_smtpd_count(&d->smtpd);
}

int
relay_daemon_run(struct relay_config *cfg, const char *config_path)
{
	static struct relay_daemon daemon;
	struct relay_daemon *d = &daemon;
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	d->clock = relay_clock_system();
	d->started_wall_us = relay_clock_wall_us(d->clock);
	d->started_mono_us = relay_clock_mono_us(d->clock);
	relay_log_set_clock(d->clock);
	d->config_path = strdup(config_path);
	relay_log_set_level(d->cfg.log_level == RELAY_CONFIG_LOG_DEBUG
	        ? RELAY_LOG_DEBUG
	        : RELAY_LOG_INFO);
	/* Under systemd with StandardError=journal, lines carry their syslog
	 * priority. */
	(void)relay_log_detect_journal();
	if (d->cfg.log_file[0] != '\0' &&
	    relay_log_open_file(d->cfg.log_file) != 0)
		fprintf(stderr, "danerelay serve: cannot open log_file %s\n",
		    d->cfg.log_file);

	signal(SIGPIPE, SIG_IGN);
	uv_loop_t loop;
	if (uv_loop_init(&loop) != 0) {
		fprintf(stderr,
		    "danerelay serve: cannot create the event loop\n");
		return 1;
	}
	d->loop = &loop;
	tlsa_digests_default(&d->digests);
	for (int i = 0; i < RELAY_FAIL_CLASS_COUNT; i++)
		d->fail_class_names[i] =
		    relay_fail_class_name((enum relay_fail_class)i);
	relay_metrics_init(&d->metrics, d->fail_class_names,
	    RELAY_FAIL_CLASS_COUNT);

	char err[512] = "";
	int rc = 1;
	/* Names only: the envelopes are read in the background once the
	 * listeners answer (relay_queue_load_start below). */
	int r = relay_queue_open_lazy(&loop, d->cfg.spool_dir, &d->queue, err,
	    sizeof(err));
	if (r != 0) {
		fprintf(stderr, "danerelay serve: %s\n",
		    err[0] ? err : relay_queue_strerror(r));
		goto out_loop;
	}
	relay_queue_set_clock(d->queue, d->clock);
	if (chmod(relay_queue_dir(d->queue), 0700) != 0)
		relay_log_msg(RELAY_LOG_WARNING, "spool",
		    "cannot set mode 0700 on spool_dir");
	struct tlsa_ctx_config tc = {
		.digests = &d->digests,
		.ca_file = d->cfg.tls_ca_file[0] ? d->cfg.tls_ca_file : NULL,
	};
	r = tlsa_ctx_new(&tc, &d->tlsa);
	if (r != 0) {
		fprintf(stderr, "danerelay serve: TLS client setup: %s\n",
		    tlsa_strerror(r));
		goto out_queue;
	}
	/* RFC 8461 4.2: MX hosts under an MTA-STS enforce policy are checked
	 * against mta_sts_ca_file. */
	struct tlsa_ctx_config tcs = {
		.digests = &d->digests,
		.ca_file =
		    d->cfg.mta_sts_ca_file[0] ? d->cfg.mta_sts_ca_file : NULL,
	};
	r = tlsa_ctx_new(&tcs, &d->tlsa_sts);
	if (r != 0) {
		fprintf(stderr,
		    "danerelay serve: TLS client setup (mta_sts_ca_file): %s\n",
		    tlsa_strerror(r));
		goto out_queue;
	}
	if (start_server_tls(d, err, sizeof(err)) != 0) {
		fprintf(stderr, "danerelay serve: %s\n", err);
		goto out_queue;
	}
	struct relay_smtpd_ctx sc = {
		.loop = d->loop,
		.clock = d->clock,
		.cfg = &d->cfg,
		.queue = d->queue,
		.server_tls = d->server_tls,
		.committed = hook_committed,
		.in_flow_take = hook_in_flow_take,
		.arg = d,
	};
	d->in_flow_tokens = SERVE_IN_FLOW_TOKENS;
	relay_smtpd_server_init(&d->smtpd, &sc);
	if (daemon__listen(d, "listen", d->cfg.listen, d->cfg.listen_count,
	        SERVE_BACKLOG, on_connection, &d->listeners, err,
	        sizeof(err)) != 0) {
		fprintf(stderr, "danerelay serve: %s\n", err);
		daemon__listeners_close(&d->listeners);
		goto out_queue;
	}
	if (daemon__metrics_listen(d, err, sizeof(err)) != 0) {
		fprintf(stderr, "danerelay serve: %s\n", err);
		daemon__listeners_close(&d->listeners);
		daemon__metrics_stop(d);
		goto out_queue;
	}
	/* Ports are bound and the TLS key is read: no more root from here on,
	 * and before any thread exists (libunbound's worker,
	 * libuv's pool), so every thread runs unprivileged. */
	if (drop_privileges(d, err, sizeof(err)) != 0) {
		fprintf(stderr, "danerelay serve: %s\n", err);
		daemon__listeners_close(&d->listeners);
		daemon__metrics_stop(d);
		goto out_queue;
	}
	r = start_dns(d);
	if (r != 0) {
		fprintf(stderr, "danerelay serve: DNS resolver: %s\n",
		    relay_dns_strerror(r));
		daemon__listeners_close(&d->listeners);
		daemon__metrics_stop(d);
		goto out_queue;
	}
	uv_signal_init(&loop, &d->sig_term);
	uv_signal_init(&loop, &d->sig_int);
	uv_signal_init(&loop, &d->sig_hup);
	uv_timer_init(&loop, &d->stop_timer);
	uv_timer_init(&loop, &d->watchdog_timer);
	start_watchdog(d);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, on_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_signal, SIGINT);
	uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
	start_monitor(d);
	bool sts_ok = start_sts(d) == 0;
	d->deliver = (struct relay_deliver_ctx){
		.loop = d->loop,
		.clock = d->clock,
		.cfg = &d->cfg,
		.queue = d->queue,
		.dns = &d->dns,
		.tlsa = d->tlsa,
		.sts = d->sts,
		.tlsa_sts = d->tlsa_sts,
		.digests = &d->digests,
		.monitor = d->monitor,
		.local_queued = hook_local_queued,
		.tls_session = serve__tlsrpt_session,
		.in_flow = hook_in_flow,
		.arg = d,
		.metrics = &d->metrics,
	};
	/* After the privileges are dropped: the store's files are the run
	 * user's. */
	serve__tlsrpt_start(d);
	if (!sts_ok) {
		fprintf(stderr,
		    "danerelay serve: MTA-STS policy cache unavailable\n");
		stop_daemon(d, "startup failure");
	} else if (relay_sched_new(&d->deliver, &d->sched) != 0) {
		fprintf(stderr,
		    "danerelay serve: cannot start the scheduler\n");
		stop_daemon(d, "startup failure");
	} else {
		/* Control socket (queue hold/release/delete/retry) and the
		 * periodic report mail. */
		struct relay_control_ctx cc = {
			.loop = d->loop,
			.clock = d->clock,
			.cfg = &d->cfg,
			.queue = d->queue,
			.is_active = hook_active,
			.kick = hook_kick,
			.submit = hook_submit,
			.dns_flush = serve_dns_flush,
			.metrics = daemon__metrics_text,
			.tlsrpt_send = serve__tlsrpt_send,
			.status = hook_status,
			.arg = d,
		};
		if (relay_control_start(&cc, &d->control) != 0)
			relay_log_msg(RELAY_LOG_ERROR, "control",
			    "cannot start");
		r = relay_queue_load_start(d->queue, queue_loaded, d);
		if (r != 0) {
			fprintf(stderr,
			    "danerelay serve: cannot load the queue: %s\n",
			    relay_queue_strerror(r));
			stop_daemon(d, "startup failure");
		}
		struct relay_log_line l;
		if (relay_log_begin(&l, RELAY_LOG_INFO, "started")) {
			relay_log_str(&l, "version", DANERELAY_VERSION);
			for (size_t i = 0; i < d->listeners.n; i++)
				relay_log_str(&l, "listen",
				    d->listeners.l[i].text);
			for (size_t i = 0; i < d->mlisteners.n; i++)
				relay_log_str(&l, "metrics_listen",
				    d->mlisteners.l[i].text);
			relay_log_str(&l, "spool", relay_queue_dir(d->queue));
			relay_log_u64(&l, "queued",
			    relay_queue_count(d->queue));
			/* Envelopes still being read (event=queue-loaded
			 * follows): queued counts only those read. */
			relay_log_u64(&l, "loading",
			    relay_queue_load_left(d->queue));
			relay_log_str(&l, "tls_security_level",
			    relay_tls_level_name(d->cfg.tls_security_level));
			relay_log_end(&l);
		}
		/* Listening, and the spool was recovered by
		 * relay_queue_open_lazy(); its envelopes are being loaded. */
		serve_notify(d, "READY=1\n", "serving, dns self-test pending");
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	rc = d->exit_code;
	goto out_tls;

out_queue:
	if (d->queue != NULL) {
		relay_queue_close(d->queue, NULL, NULL);
		d->queue = NULL;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
out_tls:
	tlsa_ctx_free(d->tlsa);
	tlsa_ctx_free(d->tlsa_sts);
	SSL_CTX_free(d->server_tls);
	daemon__listeners_free(&d->listeners);
	daemon__listeners_free(&d->mlisteners);
out_loop:
	if (uv_loop_close(&loop) != 0) {
		relay_log_msg(RELAY_LOG_ERROR, "stopped",
		    "event loop still had open handles");
		if (rc == 0)
			rc = 1;
	}
	relay_config_free(&d->cfg);
	free(d->config_path);
	return rc;
}
