/*
 * relay_cli_check: `danerelay check [-c FILE] [--no-dns]`: what `serve`
 * would refuse or trip over, found before it runs (Postfix's `postfix
 * check`).
 *
 * Output: one line per finding on stdout, "SEVERITY: SUBJECT: text", where
 * SEVERITY is "error", "warning" or "ok" and SUBJECT a stable word (a
 * parameter name such as tls_key_file or listen, or config, run_user,
 * daemon, tls, dns_selftest). Exit 0 when no line is an error, 1 otherwise,
 * 2 on a usage error. danerelay(8) documents the format.
 *
 * Identity. `serve` started as root binds its listeners, reads the TLS
 * key and becomes run_user before anything else; danerelay.service starts
 * it as run_user directly. Either way every file it reads later (on
 * SIGHUP, the trust anchor when the resolver starts) and the spool must
 * work for run_user, and under the packaged unit every file must. So the
 * listeners are bound as the caller (root binds before dropping, as serve
 * does) and everything else runs in a child that became run_user the way
 * serve does (setgroups, setgid, setuid): files are opened, not guessed
 * from their mode bits. Not started as root, check runs as the caller,
 * as serve would.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "relay_cli.h"
#include "relay_clock.h"
#include "relay_control.h"
#include "relay_dns.h"
#include "relay_dns_ta.h"
#include "relay_log.h"
#include "tlsa.h"

static const char check_synopsis[] = "danerelay check [-c FILE] [--no-dns]";

/* Longest trust anchor file read (the root's is a few hundred bytes). */
#define CHECK_TA_MAX (1024u * 1024)
/* How long the DNSSEC self-test may take (libunbound's own per-query
 * timeout is 10 s; a cold recursion to the root takes a few queries). */
#define CHECK_SELFTEST_MS 30000u

enum check_sev {
	CHECK_OK,
	CHECK_WARNING,
	CHECK_ERROR,
};

struct check {
	unsigned errors, warnings;
	const char *who; /* user name the checks run as */
	uid_t uid;
};

__attribute__((format(printf, 4, 5))) static void
finding(struct check *k, enum check_sev sev, const char *subject,
    const char *fmt, ...)
{
	static const char *const names[] = { "ok", "warning", "error" };
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* One line each: file names and library messages could hold a
	 * newline. */
	for (char *p = text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
	printf("%s: %s: %s\n", names[sev], subject, text);
	if (sev == CHECK_ERROR)
		k->errors++;
	else if (sev == CHECK_WARNING)
		k->warnings++;
}

/* ---- as the caller: listeners and a running daemon ---- */

/* The pid a running serve gives in its control greeting ("pid=N"), or 0
 * when no daemon answers on spool_dir/control. */
static long
running_daemon(const char *spool)
{
	struct relay_control_client cl;
	char err[256];
	long pid = 0;

	if (relay_control_client_connect(&cl, spool, err, sizeof(err)) != 0)
		return 0;
	const char *p = strstr(cl.daemon, "pid=");
	pid = p != NULL ? strtol(p + 4, NULL, 10) : -1;
	relay_control_client_close(&cl);
	return pid != 0 ? pid : -1;
}

/* Binds each listen address as serve does (SO_REUSEADDR as libuv sets it,
 * IPV6_V6ONLY for IPv6), then lets it go. */
static void
check_listen(struct check *k, const struct relay_config *cfg, long daemon)
{
	for (size_t i = 0; i < cfg->listen_count; i++) {
		const struct relay_config_addr *a = &cfg->listen[i];
		int fam = a->sa.ss_family, on = 1, e = 0;
		int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) !=
		        0 ||
		    (fam == AF_INET6 &&
		        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
		            sizeof(on)) != 0) ||
		    bind(fd, (const struct sockaddr *)&a->sa, a->salen) != 0)
			e = errno;
		if (fd >= 0)
			(void)close(fd);
		if (e == 0)
			finding(k, CHECK_OK, "listen", "%s: can bind", a->text);
		else if (e == EADDRINUSE && daemon != 0)
			finding(k, CHECK_WARNING, "listen",
			    "%s: in use (daemon running: serve pid %ld on this "
			    "spool)",
			    a->text, daemon);
		else if (e == EADDRINUSE)
			finding(k, CHECK_ERROR, "listen",
			    "%s: in use by another program (no danerelay "
			    "daemon answers on this spool)",
			    a->text);
		else
			finding(k, CHECK_ERROR, "listen", "%s: %s", a->text,
			    strerror(e));
	}
}

/* ---- as run_user: files, TLS, spool, trust anchor, DNS ---- */

/* Opens path for reading as the current identity; 0 or errno. */
static int
try_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno;
	(void)close(fd);
	return 0;
}

/* A file serve reads: finding for param (the subject) at path. Returns
 * whether it could be opened. Empty path: not configured, no finding. */
static bool
check_file(struct check *k, const char *param, const char *path)
{
	if (path[0] == '\0')
		return false;
	int e = try_open(path);
	if (e == 0) {
		finding(k, CHECK_OK, param, "%s: readable by %s", path, k->who);
		return true;
	}
	finding(k, CHECK_ERROR, param, "%s: not readable by %s: %s", path,
	    k->who, strerror(e));
	return false;
}

/* What serve's start_server_tls() does with the pair. */
static void
check_server_tls(struct check *k, const struct relay_config *cfg)
{
	if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0')
		return;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx != NULL &&
	    SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) == 1 &&
	    SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file,
	        SSL_FILETYPE_PEM) == 1 &&
	    SSL_CTX_check_private_key(ctx) == 1) {
		finding(k, CHECK_OK, "tls",
		    "tls_cert_file and tls_key_file load and match");
	} else {
		char e[256];
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		finding(k, CHECK_ERROR, "tls",
		    "tls_cert_file/tls_key_file as %s: %s", k->who, e);
	}
	ERR_clear_error();
	SSL_CTX_free(ctx);
}

/* What serve's tlsa_ctx_new() does with tls_ca_file. */
static void
check_client_tls(struct check *k, const struct relay_config *cfg)
{
	struct tlsa_digests dg;
	struct tlsa_ctx *t = NULL;

	tlsa_digests_default(&dg);
	struct tlsa_ctx_config tc = {
		.digests = &dg,
		.ca_file = cfg->tls_ca_file[0] ? cfg->tls_ca_file : NULL,
	};
	int r = tlsa_ctx_new(&tc, &t);
	if (r != 0)
		finding(k, CHECK_ERROR, "tls_ca_file",
		    "outbound TLS setup as %s: %s", k->who, tlsa_strerror(r));
	tlsa_ctx_free(t);
}

static void
check_trust_anchor(struct check *k, const struct relay_config *cfg)
{
	const char *path = cfg->dns_trust_anchor_file;

	if (path[0] == '\0') {
		if (cfg->dns_resolver_config[0] == '\0')
			finding(k, CHECK_WARNING, "dns_trust_anchor_file",
			    "empty, and no dns_resolver_config: no trust "
			    "anchor, so nothing validates as secure");
		return;
	}
	if (!check_file(k, "dns_trust_anchor_file", path))
		return;
	FILE *f = fopen(path, "re");
	uint8_t *buf = malloc(CHECK_TA_MAX);
	size_t n = 0;
	if (f != NULL && buf != NULL)
		n = fread(buf, 1, CHECK_TA_MAX, f);
	if (f == NULL || buf == NULL || ferror(f) || n == CHECK_TA_MAX) {
		finding(k, CHECK_ERROR, "dns_trust_anchor_file",
		    "%s: cannot read it whole (larger than %u bytes, or an "
		    "I/O error)",
		    path, CHECK_TA_MAX);
	} else {
		struct relay_dns_ta_result res;
		if (relay_dns_ta_check(buf, n, &res) == 0)
			finding(k, CHECK_OK, "dns_trust_anchor_file",
			    "%s: %zu DS and %zu DNSKEY record(s)", path, res.ds,
			    res.dnskey);
		else if (res.line > 0)
			finding(k, CHECK_ERROR, "dns_trust_anchor_file",
			    "%s:%u: %s", path, res.line, res.why);
		else
			finding(k, CHECK_ERROR, "dns_trust_anchor_file",
			    "%s: %s", path, res.why);
	}
	if (f != NULL)
		(void)fclose(f);
	free(buf);
}

/* Read, write and search access to a spool directory, as the identity. */
static void
check_spool_dir(struct check *k, const char *path, bool top)
{
	struct stat st;

	if (lstat(path, &st) != 0) {
		int e = errno;
		if (e == ENOENT && !top)
			return; /* serve creates tmp/, queue/, corrupt/ */
		if (e == ENOENT) {
			/* serve creates missing parents too (mkdir -p): the
			 * nearest existing ancestor must let it. */
			char parent[PATH_MAX];
			(void)snprintf(parent, sizeof(parent), "%s", path);
			const char *d = dirname(parent);
			while (access(d, F_OK) != 0 && strcmp(d, "/") != 0 &&
			    strcmp(d, ".") != 0)
				d = dirname(parent);
			if (access(d, W_OK | X_OK) == 0)
				finding(k, CHECK_WARNING, "spool_dir",
				    "%s: does not exist; serve creates it "
				    "(mode 0700)",
				    path);
			else
				finding(k, CHECK_ERROR, "spool_dir",
				    "%s: does not exist, and %s cannot create "
				    "it in %s: %s",
				    path, k->who, d, strerror(errno));
			return;
		}
		finding(k, CHECK_ERROR, "spool_dir", "%s: %s", path,
		    strerror(e));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		finding(k, CHECK_ERROR, "spool_dir", "%s: not a directory",
		    path);
		return;
	}
	if (access(path, R_OK | W_OK | X_OK) != 0) {
		struct passwd *pw = getpwuid(st.st_uid);
		finding(k, CHECK_ERROR, "spool_dir",
		    "%s: not writable by %s (owner %s, mode %04o): chown -R "
		    "%s %s",
		    path, k->who, pw != NULL ? pw->pw_name : "?",
		    (unsigned)(st.st_mode & 07777), k->who, path);
		return;
	}
	if (!top)
		return;
	if (st.st_uid != k->uid) {
		struct passwd *pw = getpwuid(st.st_uid);
		finding(k, CHECK_WARNING, "spool_dir",
		    "%s: owned by %s, not by %s", path,
		    pw != NULL ? pw->pw_name : "?", k->who);
	}
	/* The spool holds other people's mail: relay/QUEUE.md and serve keep
	 * it 0700. serve sets the mode again when it starts. */
	if ((st.st_mode & 077) != 0)
		finding(k, CHECK_WARNING, "spool_dir",
		    "%s: mode %04o lets other users at queued mail; serve sets "
		    "0700 when it starts (chmod 0700 %s)",
		    path, (unsigned)(st.st_mode & 07777), path);
	else
		finding(k, CHECK_OK, "spool_dir",
		    "%s: writable by %s, mode %04o", path, k->who,
		    (unsigned)(st.st_mode & 07777));
}

static void
check_spool(struct check *k, const struct relay_config *cfg)
{
	static const char *const sub[] = { "tmp", "queue", "corrupt" };
	char path[PATH_MAX];

	check_spool_dir(k, cfg->spool_dir, true);
	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		int w = snprintf(path, sizeof(path), "%s/%s", cfg->spool_dir,
		    sub[i]);
		if (w > 0 && (size_t)w < sizeof(path))
			check_spool_dir(k, path, false);
	}
}

/* log_file: serve only warns when it cannot open it, and so do we. */
static void
check_log_file(struct check *k, const struct relay_config *cfg)
{
	const char *path = cfg->log_file;
	char parent[PATH_MAX];

	if (path[0] == '\0')
		return;
	(void)snprintf(parent, sizeof(parent), "%s", path);
	int ok = access(path, F_OK) == 0 ? access(path, W_OK)
	                                 : access(dirname(parent), W_OK | X_OK);
	if (ok != 0)
		finding(k, CHECK_WARNING, "log_file",
		    "%s: %s cannot write it: %s (log lines still go to "
		    "stderr)",
		    path, k->who, strerror(errno));
	else
		finding(k, CHECK_OK, "log_file", "%s: writable by %s", path,
		    k->who);
}

/* ---- the DNSSEC self-test, the daemon's own (relay_dns.h) ---- */

struct selftest_wait {
	uv_timer_t timer;
	struct relay_dns *dns;
	bool done, ok;
	char why[512];
};

static void
selftest_result(void *arg, bool ok, const char *why)
{
	struct selftest_wait *w = arg;

	if (w->done)
		return;
	w->done = true;
	w->ok = ok;
	(void)snprintf(w->why, sizeof(w->why), "%s", why != NULL ? why : "");
	/* Safe from inside a relay_dns callback (relay_dns.h). */
	relay_dns_close(w->dns, NULL, NULL);
	w->dns = NULL;
	uv_close((uv_handle_t *)&w->timer, NULL);
}

static void
selftest_deadline(uv_timer_t *t)
{
	struct selftest_wait *w = t->data;

	w->done = true;
	(void)snprintf(w->why, sizeof(w->why), "no answer within %u s",
	    CHECK_SELFTEST_MS / 1000u);
	if (w->dns != NULL)
		relay_dns_close(w->dns, NULL, NULL);
	w->dns = NULL;
	uv_close((uv_handle_t *)&w->timer, NULL);
}

static void
check_dns(struct check *k, const struct relay_config *cfg)
{
	if (cfg->dns_selftest_name[0] == '\0') {
		finding(k, CHECK_WARNING, "dns_selftest",
		    "disabled (dns_selftest_name is empty): validation is "
		    "assumed to work");
		return;
	}
	uv_loop_t loop;
	struct selftest_wait w;
	memset(&w, 0, sizeof(w));
	if (uv_loop_init(&loop) != 0) {
		finding(k, CHECK_ERROR, "dns_selftest",
		    "cannot create an event loop");
		return;
	}
	struct relay_dns_opts o;
	relay_dns_opts_from_config(&o, cfg);
	o.on_selftest = selftest_result;
	o.selftest_arg = &w;
	int r = relay_dns_new(&loop, &o, &w.dns);
	if (r == 0) {
		r = relay_dns_start(w.dns);
		if (r != 0) {
			relay_dns_close(w.dns, NULL, NULL);
			w.dns = NULL;
		}
	}
	if (r != 0) {
		finding(k, CHECK_ERROR, "dns_selftest",
		    "resolver setup as %s (trust anchor, dns_resolver_config, "
		    "dns_forwarders): %s",
		    k->who, relay_dns_strerror(r));
	} else {
		(void)uv_timer_init(&loop, &w.timer);
		w.timer.data = &w;
		(void)uv_timer_start(&w.timer, selftest_deadline,
		    CHECK_SELFTEST_MS, 0);
	}
	(void)uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		finding(k, CHECK_ERROR, "dns_selftest",
		    "event loop still had open handles");
	if (r != 0)
		return;
	if (w.ok)
		finding(k, CHECK_OK, "dns_selftest", "%s: %s",
		    cfg->dns_selftest_name, w.why);
	else
		finding(k, CHECK_ERROR, "dns_selftest",
		    "%s: %s (serve would defer every delivery that depends on "
		    "DNSSEC)",
		    cfg->dns_selftest_name, w.why);
}

/* An exception this close to its until= date is a warning: the
 * destination falls back to the default policy soon. */
#define CHECK_EXPIRY_WARN_DAYS 7

/* Time-boxed tls_policy_file entries: expired ones no longer apply, and
 * ones about to expire deserve a look. */
static void
check_exceptions(struct check *k, const struct relay_config *cfg)
{
	uint64_t now = relay_clock_wall_us(relay_clock_system());

	for (size_t i = 0; i < cfg->tls_policy_count; i++) {
		const struct relay_tls_policy_entry *e = &cfg->tls_policy[i];
		if (!e->has_until)
			continue;
		int64_t left = relay_tls_policy_days_left(e, now);
		const char *level = relay_tls_level_name(e->level);
		const char *why = e->reason[0] ? e->reason : "no reason given";
		if (left < 0)
			finding(k, CHECK_WARNING, "tls_policy_file",
			    "%s:%u: %s %s expired on %s and no longer applies "
			    "(%s); remove the line",
			    e->file, e->line, e->domain, level, e->until, why);
		else if (left < CHECK_EXPIRY_WARN_DAYS)
			finding(k, CHECK_WARNING, "tls_policy_file",
			    "%s:%u: %s %s expires in %lld day%s (applies through "
			    "%s UTC; %s)",
			    e->file, e->line, e->domain, level, (long long)left,
			    left == 1 ? "" : "s", e->until, why);
		else
			finding(k, CHECK_OK, "tls_policy_file",
			    "%s:%u: %s %s until %s (%lld days left; %s)",
			    e->file, e->line, e->domain, level, e->until,
			    (long long)left, why);
	}
}

/* Everything that depends on who serve runs as. */
static void
check_as_identity(struct check *k, const struct relay_config *cfg,
    const char *config_path, bool dns)
{
	/* SIGHUP rereads the configuration and tls_policy_file as run_user. */
	(void)check_file(k, "config", config_path);
	(void)check_file(k, "tls_policy_file", cfg->tls_policy_file);
	(void)check_file(k, "tls_cert_file", cfg->tls_cert_file);
	(void)check_file(k, "tls_key_file", cfg->tls_key_file);
	(void)check_file(k, "dns_resolver_config", cfg->dns_resolver_config);
	check_server_tls(k, cfg);
	check_client_tls(k, cfg);
	check_trust_anchor(k, cfg);
	check_spool(k, cfg);
	check_log_file(k, cfg);
	if (dns)
		check_dns(k, cfg);
}

/* In a child that became pw the way serve's drop_privileges() does.
 * Returns the child's error count (capped), or -1 when it could not run. */
static int
check_as_run_user(struct check *k, const struct relay_config *cfg,
    const char *config_path, bool dns, const struct passwd *pw)
{
	(void)fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct check ck = { .who = pw->pw_name, .uid = pw->pw_uid };
		if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
		    setuid(pw->pw_uid) != 0 || geteuid() == 0) {
			finding(&ck, CHECK_ERROR, "run_user",
			    "cannot become %s: %s", pw->pw_name,
			    strerror(errno));
		} else {
			check_as_identity(&ck, cfg, config_path, dns);
		}
		(void)fflush(stdout);
		_exit(ck.errors > 100 ? 100 : (int)ck.errors);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

int
relay_cli_check(int argc, char **argv)
{
	const char *sub_conf;
	bool no_dns = false;
	const struct relay_cli_flag flags[] = { { "no-dns", &no_dns } };
	int ex = relay_cli_conf_only("check", check_synopsis, argc, argv,
	    &sub_conf, flags, 1);
	if (ex >= 0)
		return ex;
	bool dns = !no_dns;

	struct check k = { .uid = geteuid() };
	const char *path = relay_cli_config_path(sub_conf);
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX];
	if (relay_config_load(&cfg, path, err) != 0) {
		finding(&k, CHECK_ERROR, "config", "%s", err);
		(void)fflush(stdout);
		return RELAY_CLI_EXIT_ERROR;
	}
	finding(&k, CHECK_OK, "config",
	    "%s: parsed, %zu tls_policy_file "
	    "entr%s",
	    path, cfg.tls_policy_count,
	    cfg.tls_policy_count == 1 ? "y" : "ies");
	check_exceptions(&k, &cfg);
	/* The self-test's lines would repeat what the findings say. */
	relay_log_set_stderr(false);

	/* Who serve would run as (drop_privileges() in daemon/). */
	struct passwd *pw = NULL, self;
	char selfname[64];
	struct passwd *me = getpwuid(geteuid());
	(void)snprintf(selfname, sizeof(selfname), "%s",
	    me != NULL ? me->pw_name : "the current user");
	bool identity_ok = true;
	if (geteuid() == 0 && cfg.run_user[0] != '\0') {
		pw = getpwnam(cfg.run_user);
		if (pw == NULL) {
			finding(&k, CHECK_ERROR, "run_user",
			    "%s does not exist (create it with: adduser "
			    "--system --group %s)",
			    cfg.run_user, cfg.run_user);
			identity_ok = false;
		} else if (pw->pw_uid == 0) {
			finding(&k, CHECK_ERROR, "run_user",
			    "%s is root; choose an unprivileged user",
			    cfg.run_user);
			identity_ok = false;
		} else {
			self = *pw;
			pw = &self;
			finding(&k, CHECK_OK, "run_user",
			    "%s (uid %lu): files and spool are checked as %s",
			    pw->pw_name, (unsigned long)pw->pw_uid,
			    pw->pw_name);
		}
	} else if (geteuid() == 0) {
		finding(&k, CHECK_WARNING, "run_user",
		    "empty: serve started as root stays root");
	} else {
		finding(&k, CHECK_OK, "run_user",
		    "not started as root: serve would run as %s, and the "
		    "checks do",
		    selfname);
	}

	long daemon = running_daemon(cfg.spool_dir);
	if (daemon != 0)
		finding(&k, CHECK_WARNING, "daemon",
		    "serve pid %ld is running on spool %s", daemon,
		    cfg.spool_dir);
	check_listen(&k, &cfg, daemon);

	int rc = RELAY_CLI_EXIT_OK;
	if (pw != NULL) {
		/* pw points into getpwnam()'s buffer: copy what the child
		 * needs before anything else calls it. */
		char name[64];
		(void)snprintf(name, sizeof(name), "%s", pw->pw_name);
		self.pw_name = name;
		int ce = check_as_run_user(&k, &cfg, path, dns, &self);
		if (ce < 0) {
			finding(&k, CHECK_ERROR, "run_user",
			    "the checks as %s did not complete", name);
		} else {
			k.errors += (unsigned)ce;
		}
	} else if (identity_ok) {
		k.who = selfname;
		check_as_identity(&k, &cfg, path, dns);
	}
	relay_config_free(&cfg);
	if (fflush(stdout) != 0 || k.errors > 0)
		rc = RELAY_CLI_EXIT_ERROR;
	return rc;
}
