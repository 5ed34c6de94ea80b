#ifndef RELAY_CLI_H
#define RELAY_CLI_H
/*
 * relay_cli: the `danerelay` subcommands.
 *
 * main.c holds one dispatch table { name, function, usage }. A subcommand
 * function receives argc/argv starting at its own name (argv[0] = "serve")
 * and returns the process exit status:
 *     0  success
 *     1  runtime or configuration error (one line on stderr)
 *     2  usage error (one line on stderr: "danerelay CMD: message")
 *
 * The configuration file: `-c FILE` given after the subcommand wins, then
 * `-c FILE` given before it (global option), then $DANERELAY_CONF, then
 * RELAY_CLI_DEFAULT_CONF.
 *
 * Adding a subcommand implemented in its own file relay_<x>.c: declare its
 * function here and add a row to the table in main.c.
 */
#include <stdbool.h>
#include <stddef.h>

#include "danerelay_paths.h"
#include "relay_config.h"

/* sysconfdir/danerelay/danerelay.conf of the build (meson.build): the file
 * `meson install` and the package put there, and the unit's -c. */
#define RELAY_CLI_DEFAULT_CONF DANERELAY_DEFAULT_CONF

enum relay_cli_exit {
	RELAY_CLI_EXIT_OK = 0,
	RELAY_CLI_EXIT_ERROR = 1,
	RELAY_CLI_EXIT_USAGE = 2,
	RELAY_CLI_EXIT_NO_DAEMON = 3, /* status: no daemon answers */
};

/* Subcommands. */
int relay_cli_version(int argc, char **argv);
int relay_cli_config(int argc, char **argv);
/* `serve`: relay_cli_serve.c (the daemon itself: daemon/relay_serve.c). */
int relay_cli_serve(int argc, char **argv);
/* `check` (relay_cli_check.c): what serve would refuse, found before it
 * runs; exit 0 when nothing is an error. `status` (relay_cli_status.c):
 * the running daemon's state over the control socket; exit
 * RELAY_CLI_EXIT_NO_DAEMON when none answers. */
int relay_cli_check(int argc, char **argv);
int relay_cli_status(int argc, char **argv);
/* `queue` (list, show, hold, release, delete, retry) and `report`:
 * relay_cli_queue.c. */
int relay_cli_queue(int argc, char **argv);
int relay_cli_report(int argc, char **argv);
/* `dns flush` (relay_cli_dns.c: asks the running daemon
 * over the control socket) and `tlsa` (relay_cli_tlsa.c: TLSA records for
 * a PEM certificate file). */
int relay_cli_dns(int argc, char **argv);
/* `tlsrpt show|send` (relay_cli_tlsrpt.c): TLS reports (RFC 8460). */
int relay_cli_tlsrpt(int argc, char **argv);
int relay_cli_tlsa(int argc, char **argv);
/* `metrics` (relay_cli_metrics.c): the running daemon's counters in the
 * Prometheus text format, over the control socket. */
int relay_cli_metrics(int argc, char **argv);
/* `probe` (relay_probe.c): serve's delivery decision for one domain, up
 * to the DANE check and QUIT before MAIL. Its exit statuses tell a script
 * why delivery would not happen: */
enum relay_probe_exit {
	RELAY_PROBE_EXIT_ALLOWED = 0, /* delivery would be allowed */
	RELAY_PROBE_EXIT_REFUSED = 1, /* refused by policy, DNSSEC or server */
	RELAY_PROBE_EXIT_USAGE = 2,   /* usage or configuration error */
	RELAY_PROBE_EXIT_TEMPFAIL =
	    3, /* temporary: DNS, connection, self-test */
};
int relay_cli_probe(int argc, char **argv);

/*
 * Called by main for a global `-c FILE` before the subcommand. path is
 * borrowed and must outlive the process's use of it (argv does).
 */
void relay_cli_set_global_config(const char *path);

/*
 * The configuration path a subcommand should read: sub_path (its own -c,
 * may be NULL), else the global -c, else $DANERELAY_CONF, else
 * RELAY_CLI_DEFAULT_CONF. Static or borrowed storage.
 */
const char *relay_cli_config_path(const char *sub_path);

/*
 * Loads the configuration for subcommand cmd (for messages) from
 * relay_cli_config_path(sub_path) into *cfg. On error prints
 * "danerelay CMD: FILE:LINE: message" to stderr and returns
 * RELAY_CLI_EXIT_ERROR; *cfg then holds nothing. On success returns 0
 * and the caller frees *cfg with relay_config_free().
 */
int relay_cli_load_config(const char *cmd, const char *sub_path,
    struct relay_config *cfg) __attribute__((warn_unused_result));

/*
 * Prints "danerelay CMD: <message>" and a newline to stderr and returns
 * RELAY_CLI_EXIT_USAGE, for `return relay_cli_usage(...)`.
 */
int relay_cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Options. Every subcommand parses its options with getopt_long(), an
 * optstring that starts with ':' (so that a missing value is told apart
 * from an unknown option), opterr = 0, and "help" as a long option; its
 * synopsis is one string, "danerelay CMD [OPTIONS] ARGS", as in the
 * man page.
 *
 * relay_cli_help() answers --help: "usage: SYNOPSIS" on stdout. Returns
 * RELAY_CLI_EXIT_OK, or RELAY_CLI_EXIT_ERROR when stdout cannot be written.
 *
 * relay_cli_bad_option() is the loop's answer to ':' and '?': one line on
 * stderr, "danerelay CMD: unknown option X; usage: SYNOPSIS" (or "option X
 * needs a value; ..."), from getopt's optopt and optind. argv is the
 * vector given to getopt_long(). Returns RELAY_CLI_EXIT_USAGE.
 */
int relay_cli_help(const char *synopsis);
int relay_cli_bad_option(const char *cmd, const char *synopsis, int c,
    char **argv);

/*
 * A long option without a value, such as --json: *on is true when it was
 * given. name and on are borrowed for the call.
 */
struct relay_cli_flag {
	const char *name;
	bool *on;
};

/* The most flags relay_cli_conf_only() takes; more is a bug (abort). */
#define RELAY_CLI_FLAGS_MAX 4

/*
 * The options of a subcommand that takes only -c FILE, --help and the
 * nflags flags, and no arguments: returns -1 with *sub_conf set (NULL
 * without -c) and each flag's *on set to go on, or the exit status the
 * subcommand returns (--help, a bad option or an argument). flags may be
 * NULL when nflags is 0.
 */
int relay_cli_conf_only(const char *cmd, const char *synopsis, int argc,
    char **argv, const char **sub_conf, const struct relay_cli_flag *flags,
    size_t nflags);

/*
 * Sends request (with nargs args) to the running serve of spool and
 * prints its reply lines to stdout; an error line goes to stderr as
 * "danerelay WHAT: TEXT". When no daemon answers, says so with what only
 * a running daemon has (only_daemon, e.g. "counters"). Returns the exit
 * status: RELAY_CLI_EXIT_OK when every line was a success and stdout took
 * them, else RELAY_CLI_EXIT_ERROR.
 */
int relay_cli_control_lines(const char *what, const char *spool,
    const char *request, const char *const *args, size_t nargs,
    const char *only_daemon);

#endif
