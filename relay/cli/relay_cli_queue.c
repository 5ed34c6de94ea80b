/*
 * relay_cli_queue: the operator subcommands `queue` and `report`.
 *
 *   danerelay queue list [-c FILE] [--json] [--domain D] [--class C]
 *                        [--older-than DURATION]
 *   danerelay queue show [-c FILE] [--json] ID
 *   danerelay queue hold|release|delete|retry [-c FILE] ID... | --all
 *   danerelay report [-c FILE] [--json] [--mail]
 *
 * list/show/report read the spool without its lock (relay_queue_scan,
 * relay_queue_read): safe while `serve` runs, because queue files only
 * appear by rename. Changes go through the daemon's control socket when
 * `serve` runs, else the CLI takes the spool lock itself and applies them
 * with the same engine (relay_control.h); the last output line says which
 * ("via daemon pid=N" / "spool locked directly").
 *
 * Exit status: 0 success; 1 runtime error (unknown queue id, busy message,
 * unreadable spool: each named on stderr or in the output); 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "relay_cli.h"
#include "relay_clock.h"
#include "relay_control.h"
#include "relay_json.h"
#include "relay_monitor.h"
#include "relay_queue.h"
#include "relay_report.h"
#include "relay_text.h"

/* Bytes of a message read for its header summary. */
#define SHOW_HEADER_MAX (64u * 1024)

static const char list_synopsis[] =
    "danerelay queue list [-c FILE] [--json] [--domain DOMAIN] "
    "[--class CLASS] [--older-than DURATION]";
static const char show_synopsis[] =
    "danerelay queue show [-c FILE] [--json] ID";
static const char change_synopsis[] =
    "danerelay queue hold|release|delete|retry [-c FILE] ID... | --all";
static const char queue_synopsis[] =
    "danerelay queue list|show|hold|release|delete|retry [OPTIONS] [ID...]";
static const char report_synopsis[] =
    "danerelay report [-c FILE] [--json] [--mail]";

/* Now, for ages and report dates people read: the CLI has no daemon to
 * pass a clock in, so it reads the system's. */
static uint64_t
wall_us(void)
{
	return relay_clock_wall_us(relay_clock_system());
}

struct qopts {
	const char *conf;
	bool json;
	bool all;
	bool mail;
	const char *domain;
	const char *failure_class;
	const char *older_than;
};

enum {
	OPT_JSON = 256,
	OPT_DOMAIN,
	OPT_CLASS,
	OPT_OLDER,
	OPT_ALL,
	OPT_MAIL,
};

/*
 * Parses options anywhere among the arguments (getopt_long permutes).
 * Returns true when the command is over: --help answered on stdout, or a
 * usage error printed; *status is then its exit status.
 */
static bool
parse_opts(const char *cmd, const char *synopsis, int argc, char **argv,
    struct qopts *o, int *status)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "domain", required_argument, NULL, OPT_DOMAIN },
		{ "class", required_argument, NULL, OPT_CLASS },
		{ "older-than", required_argument, NULL, OPT_OLDER },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "mail", no_argument, NULL, OPT_MAIL },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->conf = optarg;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_DOMAIN:
			o->domain = optarg;
			break;
		case OPT_CLASS:
			o->failure_class = optarg;
			break;
		case OPT_OLDER:
			o->older_than = optarg;
			break;
		case OPT_ALL:
			o->all = true;
			break;
		case OPT_MAIL:
			o->mail = true;
			break;
		case 'h':
			*status = relay_cli_help(synopsis);
			return true;
		default:
			*status = relay_cli_bad_option(cmd, synopsis, c, argv);
			return true;
		}
	}
	return false;
}

/*
 * Whether the queue of spool can be read. Otherwise prints one line
 * naming the directory and the reason (as postqueue does when it cannot
 * enter the queue directory) and returns false: a queue that could not be
 * read is never reported empty.
 */
static bool
queue_readable(const char *cmd, const char *spool)
{
	char path[4096];
	struct stat st;
	DIR *d;
	int n;

	if (stat(spool, &st) != 0) {
		int e = errno;
		fprintf(stderr,
		    "danerelay %s: cannot read spool directory %s: "
		    "%s%s\n",
		    cmd, spool, strerror(e),
		    e == ENOENT ? " (has serve ever run with this spool_dir?)"
		                : "");
		return false;
	}
	n = snprintf(path, sizeof(path), "%s/queue", spool);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr,
		    "danerelay %s: spool directory name too long: "
		    "%s\n",
		    cmd, spool);
		return false;
	}
	d = opendir(path);
	if (d == NULL) {
		fprintf(stderr,
		    "danerelay %s: cannot read queue directory %s: "
		    "%s\n",
		    cmd, path, strerror(errno));
		return false;
	}
	(void)closedir(d);
	return true;
}

/* One line on stderr for what a scan could not show, where stdout carries
 * JSON that has no place for it. */
static void
warn_unreadable(const char *cmd, const char *spool,
    const struct relay_queue_scan_counts *u)
{
	if (u->unparsable == 0 && u->corrupt == 0)
		return;
	fflush(stdout);
	fprintf(stderr,
	    "danerelay %s: warning: %s: %" PRIu64 " unparsable "
	    "envelope%s in queue/, %" PRIu64 " file%s in corrupt/ not shown\n",
	    cmd, spool, u->unparsable, u->unparsable == 1 ? "" : "s",
	    u->corrupt, u->corrupt == 1 ? "" : "s");
}

/* Whether spool_dir/queue exists (a spool `serve` has opened). */
static bool
have_queue_dir(const char *spool)
{
	char p[4096];
	struct stat st;
	int n = snprintf(p, sizeof(p), "%s/queue", spool);
	return n > 0 && (size_t)n < sizeof(p) && stat(p, &st) == 0 &&
	    S_ISDIR(st.st_mode);
}

/* ------------------------------------------------------------ list */

struct list_ctx {
	FILE *out;
	bool json;
	bool header_done;
	struct relay_report_filter f;
	uint64_t now;
	struct relay_report_list_totals totals;
};

static int
list_one(const struct relay_queue_envelope *env, void *arg)
{
	struct list_ctx *c = arg;

	if (c->json)
		return relay_report_list_json(c->out, env, &c->f, c->now) != 0
		    ? RELAY_QUEUE_EIO
		    : 0;
	if (!c->header_done && relay_report_env_match(&c->f, env, c->now)) {
		c->header_done = true;
		if (relay_report_list_header(c->out) != 0)
			return RELAY_QUEUE_EIO;
	}
	return relay_report_list_text(c->out, env, &c->f, c->now, &c->totals) !=
	        0
	    ? RELAY_QUEUE_EIO
	    : 0;
}

static int
queue_list(const char *cmd, const struct qopts *o, int nargs)
{
	struct relay_config cfg;
	struct list_ctx c = { .out = stdout,
		.json = o->json,
		.now = wall_us() };
	int rc = RELAY_CLI_EXIT_OK;

	if (nargs > 0)
		return relay_cli_usage(cmd,
		    "takes no arguments, only options; "
		    "usage: %s",
		    list_synopsis);
	if (o->all || o->mail)
		return relay_cli_usage(cmd,
		    "--all and --mail do not apply; "
		    "usage: %s",
		    list_synopsis);
	if (o->older_than != NULL &&
	    relay_config_duration_us(o->older_than, &c.f.older_than_us) != 0)
		return relay_cli_usage(cmd,
		    "bad duration \"%s\" (e.g. 30s, 5m, "
		    "1h, 2d, 1w)",
		    o->older_than);
	c.f.domain = o->domain;
	c.f.failure_class = o->failure_class;
	if (relay_cli_load_config(cmd, o->conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;
	if (!queue_readable(cmd, cfg.spool_dir)) {
		relay_config_free(&cfg);
		return RELAY_CLI_EXIT_ERROR;
	}
	int r =
	    relay_queue_scan(cfg.spool_dir, list_one, &c, &c.totals.unreadable);
	if (r != 0) {
		fflush(stdout);
		fprintf(stderr, "danerelay %s: %s/queue: %s\n", cmd,
		    cfg.spool_dir, relay_queue_strerror(r));
		rc = RELAY_CLI_EXIT_ERROR;
	}
	if (rc == 0 && o->json)
		warn_unreadable(cmd, cfg.spool_dir, &c.totals.unreadable);
	if (rc == 0 && !o->json &&
	    relay_report_list_footer(stdout, &c.totals) != 0)
		rc = RELAY_CLI_EXIT_ERROR;
	if (fflush(stdout) != 0)
		rc = RELAY_CLI_EXIT_ERROR;
	relay_config_free(&cfg);
	return rc;
}

/* ------------------------------------------------------------ show */

static int
queue_show(const char *cmd, const struct qopts *o, int nargs, char **args)
{
	struct relay_config cfg;
	struct relay_queue_envelope *env = NULL;
	struct relay_report_headers h;
	uint8_t *content = NULL;
	size_t clen = 0;
	int rc = RELAY_CLI_EXIT_OK;

	if (nargs != 1)
		return relay_cli_usage(cmd,
		    "needs exactly one queue id; usage: %s", show_synopsis);
	if (!relay_queue_id_valid(args[0], strlen(args[0])))
		return relay_cli_usage(cmd,
		    "not a queue id: \"%s\" (14 hex "
		    "digits, see queue list)",
		    args[0]);
	if (relay_cli_load_config(cmd, o->conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;
	if (!queue_readable(cmd, cfg.spool_dir)) {
		relay_config_free(&cfg);
		return RELAY_CLI_EXIT_ERROR;
	}
	int r = relay_queue_read(cfg.spool_dir, args[0], &env);
	if (r != 0) {
		if (r == RELAY_QUEUE_ENOENT)
			fprintf(stderr,
			    "danerelay %s: no message %s in %s/queue\n", cmd,
			    args[0], cfg.spool_dir);
		else
			fprintf(stderr, "danerelay %s: %s: %s\n", cmd, args[0],
			    relay_queue_strerror(r));
		relay_config_free(&cfg);
		return RELAY_CLI_EXIT_ERROR;
	}
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/queue/%s.msg", cfg.spool_dir,
	    args[0]);
	FILE *f = n > 0 && (size_t)n < sizeof(path) ? fopen(path, "rb") : NULL;
	if (f != NULL) {
		content = malloc(SHOW_HEADER_MAX);
		if (content != NULL)
			clen = fread(content, 1, SHOW_HEADER_MAX, f);
		fclose(f);
	}
	if (content != NULL)
		relay_report_headers_parse(content, clen, &h);
	r = o->json ? relay_report_show_json(stdout, env,
	                  content != NULL ? &h : NULL, wall_us())
	            : relay_report_show_text(stdout, env,
	                  content != NULL ? &h : NULL, wall_us());
	if (r != 0 || fflush(stdout) != 0)
		rc = RELAY_CLI_EXIT_ERROR;
	free(content);
	relay_queue_envelope_free(env);
	relay_config_free(&cfg);
	return rc;
}

/* ------------------------------------------------------------ changes */

struct change_ctx {
	size_t nok, nerr;
	bool finished;
};

static void
change_result(void *arg, const char *id, int status, const char *text)
{
	struct change_ctx *c = arg;

	if (status == 0) {
		c->nok++;
		printf("%s: %s\n", id, text);
	} else {
		/* Failures go to stderr, naming the message (exit status 1). */
		c->nerr++;
		fflush(stdout);
		fprintf(stderr, "danerelay queue: %s: %s\n", id, text);
	}
}

static void
change_done(void *arg, size_t nok, size_t nerr)
{
	struct change_ctx *c = arg;
	(void)nok;
	(void)nerr;
	c->finished = true;
}

/*
 * Run as root on a spool that `serve` handed to run_user: become that user
 * first (for good; the process ends after the change), as Postfix's
 * postsuper works as the mail owner. Files written as root would be
 * unreadable to the daemon (the queue creates them 0600). Returns 0 or -1
 * with a message printed.
 */
static int
become_spool_owner(const char *cmd, const char *spool)
{
	struct stat st;

	if (geteuid() != 0)
		return 0;
	if (stat(spool, &st) != 0) {
		fprintf(stderr, "danerelay %s: %s: %s\n", cmd, spool,
		    strerror(errno));
		return -1;
	}
	if (st.st_uid == 0)
		return 0;
	if (setgroups(0, NULL) != 0 || setgid(st.st_gid) != 0 ||
	    setuid(st.st_uid) != 0 || geteuid() == 0) {
		fprintf(stderr,
		    "danerelay %s: cannot become the owner of %s "
		    "(uid %lu): %s\n",
		    cmd, spool, (unsigned long)st.st_uid, strerror(errno));
		return -1;
	}
	return 0;
}

/* No `serve` answers: take the spool lock and apply the change here. */
static int
change_direct(const char *cmd, const char *spool, enum relay_control_cmd op,
    char **ids, size_t nids, bool all, struct change_ctx *c)
{
	uv_loop_t loop;
	struct relay_queue *q;
	char err[512] = "";
	int rc = RELAY_CLI_EXIT_OK;

	if (become_spool_owner(cmd, spool) != 0)
		return RELAY_CLI_EXIT_ERROR;
	if (uv_loop_init(&loop) != 0) {
		fprintf(stderr, "danerelay %s: cannot create an event loop\n",
		    cmd);
		return RELAY_CLI_EXIT_ERROR;
	}
	int r = relay_queue_open(&loop, spool, &q, err, sizeof(err));
	if (r != 0) {
		if (r == RELAY_QUEUE_ELOCKED)
			fprintf(stderr,
			    "danerelay %s: %s; its control socket %s/%s "
			    "does not answer (is serve still starting?)\n",
			    cmd, err[0] ? err : "the spool is locked", spool,
			    RELAY_CONTROL_SOCKET);
		else
			fprintf(stderr, "danerelay %s: %s\n", cmd,
			    err[0] ? err : relay_queue_strerror(r));
		(void)uv_loop_close(&loop);
		return RELAY_CLI_EXIT_ERROR;
	}
	r = relay_control_exec(&loop, q, NULL, op, (const char *const *)ids,
	    nids, all, change_result, change_done, c, NULL);
	if (r != 0) {
		fprintf(stderr, "danerelay %s: %s\n", cmd,
		    relay_control_strerror(r));
		rc = RELAY_CLI_EXIT_ERROR;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	relay_queue_close(q, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		rc = RELAY_CLI_EXIT_ERROR;
	return rc;
}

static int
queue_change(const char *cmd, enum relay_control_cmd op, const struct qopts *o,
    int nargs, char **args)
{
	struct relay_config cfg;
	struct relay_control_client cl;
	struct change_ctx c = { 0 };
	char err[512] = "";
	char mode[160];
	int rc;

	if (o->all && nargs > 0)
		return relay_cli_usage(cmd,
		    "give queue ids or --all, not both");
	if (!o->all && nargs == 0)
		return relay_cli_usage(cmd, "needs queue ids or --all");
	if (o->json || o->domain || o->failure_class || o->older_than ||
	    o->mail)
		return relay_cli_usage(cmd,
		    "takes only -c, queue ids and --all");
	for (int i = 0; i < nargs; i++)
		if (!relay_queue_id_valid(args[i], strlen(args[i])))
			return relay_cli_usage(cmd,
			    "not a queue id: \"%s\" (14 hex "
			    "digits, see queue list)",
			    args[i]);
	if (relay_cli_load_config(cmd, o->conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;
	if (!have_queue_dir(cfg.spool_dir)) {
		fprintf(stderr,
		    "danerelay %s: no queue in %s (has serve ever "
		    "run with this spool_dir?)\n",
		    cmd, cfg.spool_dir);
		relay_config_free(&cfg);
		return RELAY_CLI_EXIT_ERROR;
	}
	rc = relay_control_client_connect(&cl, cfg.spool_dir, err, sizeof(err));
	if (rc == 0) {
		(void)snprintf(mode, sizeof(mode), "via daemon %s", cl.daemon);
		rc = relay_control_client_run(&cl, relay_control_cmd_name(op),
		    (const char *const *)args, (size_t)nargs, o->all,
		    change_result, &c, err, sizeof(err));
		relay_control_client_close(&cl);
		if (rc != 0) {
			fprintf(stderr, "danerelay %s: %s\n", cmd, err);
			rc = RELAY_CLI_EXIT_ERROR;
		}
	} else if (rc == RELAY_CONTROL_ENOENT) {
		(void)snprintf(mode, sizeof(mode), "spool locked directly");
		rc = change_direct(cmd, cfg.spool_dir, op, args, (size_t)nargs,
		    o->all, &c);
	} else {
		fprintf(stderr, "danerelay %s: %s\n", cmd, err);
		rc = RELAY_CLI_EXIT_ERROR;
	}
	if (rc == 0 || c.nok + c.nerr > 0)
		printf("%s: %zu ok, %zu failed (%s)\n",
		    relay_control_cmd_name(op), c.nok, c.nerr, mode);
	if (fflush(stdout) != 0 || c.nerr > 0)
		rc = RELAY_CLI_EXIT_ERROR;
	relay_config_free(&cfg);
	return rc;
}

int
relay_cli_queue(int argc, char **argv)
{
	struct qopts o;
	enum relay_control_cmd op;
	const char *synopsis;
	char cmd[32], change[128];
	int status;

	if (argc >= 2 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: %s\n       %s\n       %s\n", list_synopsis,
		    show_synopsis, change_synopsis);
		return fflush(stdout) == 0 ? RELAY_CLI_EXIT_OK
		                           : RELAY_CLI_EXIT_ERROR;
	}
	if (argc < 2)
		return relay_cli_usage("queue", "missing action; usage: %s",
		    queue_synopsis);
	if (argv[1][0] == '-')
		return relay_cli_usage("queue",
		    "unknown option %s before the "
		    "action; usage: %s",
		    argv[1], queue_synopsis);
	/* The action is decided once, here: op is set exactly when change. */
	bool list = false, show = false;
	if (strcmp(argv[1], "list") == 0) {
		list = true;
		synopsis = list_synopsis;
	} else if (strcmp(argv[1], "show") == 0) {
		show = true;
		synopsis = show_synopsis;
	} else if (relay_control_cmd_parse(argv[1], &op) == 0) {
		(void)snprintf(change, sizeof(change),
		    "danerelay queue %s "
		    "[-c FILE] ID... | --all",
		    relay_control_cmd_name(op));
		synopsis = change;
	} else {
		return relay_cli_usage("queue",
		    "unknown action \"%s\" (list, "
		    "show, hold, release, delete, retry); usage: %s",
		    argv[1], queue_synopsis);
	}
	(void)snprintf(cmd, sizeof(cmd), "queue %.20s", argv[1]);
	/* argv[1] (the action) plays argv[0] for getopt. */
	if (parse_opts(cmd, synopsis, argc - 1, argv + 1, &o, &status))
		return status;
	int nargs = argc - 1 - optind;
	char **args = argv + 1 + optind;
	if (list)
		return queue_list(cmd, &o, nargs);
	if (show) {
		if (o.all || o.domain || o.failure_class || o.older_than ||
		    o.mail)
			return relay_cli_usage(cmd,
			    "takes only -c, --json and an id");
		return queue_show(cmd, &o, nargs, args);
	}
	return queue_change(cmd, op, &o, nargs, args);
}

/* ------------------------------------------------------------ report */

static int
report_one(const struct relay_queue_envelope *env, void *arg)
{
	return relay_report_add(arg, env) != 0 ? RELAY_QUEUE_ENOMEM : 0;
}

static void
report_mail_result(void *arg, const char *id, int status, const char *text)
{
	int *failed = arg;
	(void)id;
	if (status != 0)
		*failed = 1;
	printf("%s%s\n", status != 0 ? "error: " : "", text);
}

static int
report_mail(const char *spool)
{
	struct relay_control_client cl;
	char err[512] = "";
	int failed = 0;
	int r = relay_control_client_connect(&cl, spool, err, sizeof(err));

	if (r == RELAY_CONTROL_ENOENT) {
		fprintf(stderr,
		    "danerelay report: --mail needs a running serve "
		    "(no control socket in %s)\n",
		    spool);
		return RELAY_CLI_EXIT_ERROR;
	}
	if (r != 0) {
		fprintf(stderr, "danerelay report: %s\n", err);
		return RELAY_CLI_EXIT_ERROR;
	}
	r = relay_control_client_run(&cl, "report", NULL, 0, false,
	    report_mail_result, &failed, err, sizeof(err));
	relay_control_client_close(&cl);
	if (r != 0) {
		fprintf(stderr, "danerelay report: %s\n", err);
		return RELAY_CLI_EXIT_ERROR;
	}
	return failed || fflush(stdout) != 0 ? RELAY_CLI_EXIT_ERROR
	                                     : RELAY_CLI_EXIT_OK;
}

/* The routing monitor's recent changes (its snapshot, replaced by rename
 * while serve runs) into c[RELAY_MONITOR_RECENT]. Returns how many, or -1
 * when the file cannot be read, said on stderr: the report itself
 * stands. */
static int
read_routing_changes(const char *spool, struct relay_monitor_change *c)
{
	char path[4096];
	relay_fmt(path, sizeof(path), "%s/%s", spool, RELAY_MONITOR_FILE);
	int n = relay_monitor_read_recent(path, c, RELAY_MONITOR_RECENT);
	if (n < 0) {
		fprintf(stderr, "danerelay report: %s: %s\n", path,
		    relay_monitor_strerror(n));
		return -1;
	}
	return n;
}

/* The report as JSON, with the routing changes c[0..n) as
 * "recent_routing_changes" (null when n < 0: the monitor's file could not
 * be read, which is not the same as no change). Returns 0 or -1 on a write
 * error. */
static int
report_json(const struct relay_report *rep, const char *hostname,
    const struct relay_monitor_change *c, int n)
{
	struct relay_json j;
	relay_json_init(&j, stdout);
	relay_json_obj_begin(&j);
	relay_report_json_members(&j, rep, hostname);
	relay_json_key(&j, "recent_routing_changes");
	if (n < 0)
		relay_json_null(&j);
	else
		relay_monitor_json_recent(&j, c, (size_t)n);
	relay_json_obj_end(&j);
	int r = relay_json_finish(&j);
	return putchar('\n') == EOF ? -1 : r;
}

int
relay_cli_report(int argc, char **argv)
{
	struct qopts o;
	struct relay_config cfg;
	struct relay_report rep;
	int rc = RELAY_CLI_EXIT_OK;

	int status;

	if (parse_opts("report", report_synopsis, argc, argv, &o, &status))
		return status;
	if (optind < argc)
		return relay_cli_usage("report",
		    "takes no arguments, only options; "
		    "usage: %s",
		    report_synopsis);
	if (o.all || o.domain || o.failure_class || o.older_than ||
	    (o.mail && o.json))
		return relay_cli_usage("report",
		    "options: -c FILE, --json or --mail");
	if (relay_cli_load_config("report", o.conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;
	if (o.mail) {
		rc = report_mail(cfg.spool_dir);
		relay_config_free(&cfg);
		return rc;
	}
	if (!queue_readable("report", cfg.spool_dir)) {
		relay_config_free(&cfg);
		return RELAY_CLI_EXIT_ERROR;
	}
	relay_report_init(&rep, wall_us());
	rep.policy = cfg.tls_policy;
	rep.policy_count = cfg.tls_policy_count;
	int r =
	    relay_queue_scan(cfg.spool_dir, report_one, &rep, &rep.unreadable);
	if (r != 0) {
		fprintf(stderr, "danerelay report: %s/queue: %s\n",
		    cfg.spool_dir, relay_queue_strerror(r));
		rc = RELAY_CLI_EXIT_ERROR;
	}
	struct relay_monitor_change *changes = NULL;
	if (rc == 0) {
		changes = calloc(RELAY_MONITOR_RECENT, sizeof(*changes));
		if (changes == NULL) {
			fprintf(stderr, "danerelay report: out of memory\n");
			rc = RELAY_CLI_EXIT_ERROR;
		}
	}
	if (rc == 0) {
		relay_report_sort(&rep);
		int n = read_routing_changes(cfg.spool_dir, changes);
		if (o.json) {
			r = report_json(&rep, cfg.myhostname, changes, n);
		} else {
			r = relay_report_print_text(stdout, &rep,
			    cfg.myhostname, false);
			if (r == 0 && n > 0)
				r = relay_monitor_print_recent(stdout, changes,
				    (size_t)n);
		}
		if (r != 0 || fflush(stdout) != 0)
			rc = RELAY_CLI_EXIT_ERROR;
	}
	free(changes);
	relay_report_free(&rep);
	relay_config_free(&cfg);
	return rc;
}
