/*
 * relay_cli_tlsrpt: `danerelay tlsrpt show|send`.
 *
 *   show [-c FILE] [--date YYYY-MM-DD] [DOMAIN]
 *       The RFC 8460 JSON report that would be sent for DOMAIN and the UTC
 *       day (today's counts so far without --date), read from the store
 *       on disk (spool_dir/tlsrpt/; no daemon needed; counts of the last
 *       second may still be on their way). Without DOMAIN, the report of
 *       every domain with sessions that day, one JSON document per line
 *       (JSON Lines), in domain order. A store that cannot be read is an
 *       error (exit 1), never an empty report.
 *   send [-c FILE] [--date YYYY-MM-DD] [--wait SECONDS]
 *       Asks the running daemon to send the reports of the day (yesterday
 *       without --date) now, waits for the run to end (up to --wait,
 *       default 120 s) and prints what was done per domain and address
 *       (the sent state, "DOMAIN TARGET STATUS ATTEMPTS DETAIL"). Exit 1
 *       when a report could not be sent.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay_cli.h"
#include "relay_clock.h"
#include "relay_control.h"
#include "relay_text.h"
#include "relay_tlsrpt.h"

static const char tlsrpt_synopsis[] =
    "danerelay tlsrpt show [-c FILE] [--date YYYY-MM-DD] [DOMAIN]\n"
    "  danerelay tlsrpt send [-c FILE] [--date YYYY-MM-DD] [--wait SECONDS]";

static int
show(const struct relay_config *cfg, const char *day, const char *domain)
{
	char dir[4096], err[600] = "";
	if (relay_tlsrpt_dir(cfg->spool_dir, dir, sizeof(dir)) != 0) {
		fprintf(stderr, "danerelay tlsrpt show: spool_dir too long\n");
		return RELAY_CLI_EXIT_ERROR;
	}
	struct relay_tlsrpt_table t;
	relay_tlsrpt_table_init(&t);
	int rc = RELAY_CLI_EXIT_ERROR;
	if (relay_tlsrpt_table_read_day(&t, dir, day, err, sizeof(err)) != 0) {
		fprintf(stderr, "danerelay tlsrpt show: %s\n", err);
		goto out;
	}
	char contact[600];
	struct relay_tlsrpt_meta meta =
	    relay_tlsrpt_meta_from_config(cfg, contact, sizeof(contact));
	const char **domains = NULL;
	size_t n = 0;
	if (relay_tlsrpt_domains(&t, day, &domains, &n) != 0) {
		fprintf(stderr, "danerelay tlsrpt show: out of memory\n");
		goto out;
	}
	bool found = false;
	for (size_t i = 0; i < n; i++) {
		if (domain != NULL && strcmp(domains[i], domain) != 0)
			continue;
		found = true;
		if (relay_tlsrpt_report_write(&t, day, domains[i], &meta,
		        stdout) != 0 ||
		    putchar('\n') == EOF) {
			fprintf(stderr, "danerelay tlsrpt show: write error\n");
			free(domains);
			goto out;
		}
	}
	free(domains);
	if (domain != NULL && !found) {
		fprintf(stderr,
		    "danerelay tlsrpt show: no TLS sessions with %s on %s\n",
		    domain, day);
		goto out;
	}
	rc = fflush(stdout) == 0 ? RELAY_CLI_EXIT_OK : RELAY_CLI_EXIT_ERROR;
out:
	relay_tlsrpt_table_free(&t);
	return rc;
}

static void
send_result(void *arg, const char *id, int status, const char *text)
{
	long *run = arg;
	(void)id;
	const char *p = strstr(text, "run ");
	if (status != 0 || p == NULL) {
		fprintf(stderr, "danerelay tlsrpt send: %s\n", text);
		*run = -1;
		return;
	}
	*run = strtol(p + 4, NULL, 10);
}

/* Prints the sent state of day once it ends with "end RUN"; returns 1
 * when it does not (yet), -1 when a report failed, 0 when all went. */
static int
print_state(const char *dir, const char *day, long run, bool print)
{
	char path[4200], line[2048], end[64];
	relay_fmt(path, sizeof(path), "%s/sent-%s", dir, day);
	relay_fmt(end, sizeof(end), "end\t%ld\n", run);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 1;
	bool ended = false, failed = false;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strcmp(line, end) == 0)
			ended = true;
		else if (strncmp(line, "end\t", 4) != 0) {
			if (strstr(line, "\tfailed\t") != NULL ||
			    strstr(line, "\tdns-error\t") != NULL)
				failed = true;
			if (print)
				fputs(line, stdout);
		}
	}
	fclose(f);
	if (!ended)
		return 1;
	return failed ? -1 : 0;
}

static int
send_now(const struct relay_config *cfg, const char *day, long wait_s)
{
	char dir[4096], err[512] = "";
	if (relay_tlsrpt_dir(cfg->spool_dir, dir, sizeof(dir)) != 0)
		return RELAY_CLI_EXIT_ERROR;
	struct relay_control_client cl;
	int r =
	    relay_control_client_connect(&cl, cfg->spool_dir, err, sizeof(err));
	if (r == RELAY_CONTROL_ENOENT) {
		fprintf(stderr,
		    "danerelay tlsrpt send: no running serve for spool %s: "
		    "reports are sent by the daemon (mail goes through its "
		    "queue)\n",
		    cfg->spool_dir);
		return RELAY_CLI_EXIT_ERROR;
	}
	if (r != 0) {
		fprintf(stderr, "danerelay tlsrpt send: %s\n", err);
		return RELAY_CLI_EXIT_ERROR;
	}
	long run = 0;
	const char *ids[1] = { day };
	r = relay_control_client_run(&cl, "tlsrpt-send", ids, 1, false,
	    send_result, &run, err, sizeof(err));
	relay_control_client_close(&cl);
	if (r != 0) {
		fprintf(stderr, "danerelay tlsrpt send: %s\n", err);
		return RELAY_CLI_EXIT_ERROR;
	}
	if (run <= 0)
		return RELAY_CLI_EXIT_ERROR;
	for (long i = 0; i <= wait_s * 10; i++) {
		int s = print_state(dir, day, run, false);
		if (s != 1) {
			(void)print_state(dir, day, run, true);
			if (fflush(stdout) != 0)
				return RELAY_CLI_EXIT_ERROR;
			return s == 0 ? RELAY_CLI_EXIT_OK
			              : RELAY_CLI_EXIT_ERROR;
		}
		usleep(100 * 1000);
	}
	fprintf(stderr,
	    "danerelay tlsrpt send: run %ld did not end within %lds (see the "
	    "log, event=tlsrpt-send)\n",
	    run, wait_s);
	return RELAY_CLI_EXIT_ERROR;
}

int
relay_cli_tlsrpt(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "date", required_argument, NULL, 'D' },
		{ "wait", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sub_conf = NULL, *date = NULL;
	long wait_s = 120;
	int c;

	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
		return relay_cli_help(tlsrpt_synopsis);
	if (argc < 2 ||
	    (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "send") != 0))
		return relay_cli_usage("tlsrpt", "%s%s%s; usage: %s",
		    argc < 2 ? "missing action" : "unknown action \"",
		    argc < 2 ? "" : argv[1], argc < 2 ? "" : "\"",
		    tlsrpt_synopsis);
	bool is_show = strcmp(argv[1], "show") == 0;
	const char *cmd = is_show ? "tlsrpt show" : "tlsrpt send";
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":c:h", longopts, NULL)) !=
	    -1) {
		switch (c) {
		case 'c':
			sub_conf = optarg;
			break;
		case 'D':
			date = optarg;
			break;
		case 'W': {
			char *end;
			errno = 0;
			wait_s = strtol(optarg, &end, 10);
			if (is_show || errno != 0 || *end != '\0' ||
			    wait_s < 0 || wait_s > 86400)
				return relay_cli_usage(cmd,
				    "bad --wait %s; usage: %s", optarg,
				    tlsrpt_synopsis);
			break;
		}
		case 'h':
			return relay_cli_help(tlsrpt_synopsis);
		default:
			return relay_cli_bad_option(cmd, tlsrpt_synopsis, c,
			    argv + 1);
		}
	}
	int rest = argc - 1 - optind;
	if (rest > (is_show ? 1 : 0))
		return relay_cli_usage(cmd, "too many arguments; usage: %s",
		    tlsrpt_synopsis);
	if (date != NULL && !relay_tlsrpt_day_parse(date, NULL))
		return relay_cli_usage(cmd, "not a date (YYYY-MM-DD): %s",
		    date);
	char domain[256] = "";
	if (rest == 1) {
		const char *d = argv[1 + optind];
		size_t n = strlen(d);
		if (n > 0 && d[n - 1] == '.')
			n--;
		if (n == 0 || n >= sizeof(domain))
			return relay_cli_usage(cmd, "not a domain: %s", d);
		for (size_t i = 0; i < n; i++) {
			char ch = d[i];
			domain[i] =
			    (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a'
			                                  : ch);
		}
		domain[n] = '\0';
	}
	/* Today (show) or yesterday (send), in UTC: the report's day. */
	char day[RELAY_TLSRPT_DAY_SIZE];
	if (date != NULL)
		relay_copy(day, sizeof(day), date);
	else
		relay_tlsrpt_day((time_t)relay_clock_wall_s(
		                     relay_clock_system()) -
		        (is_show ? 0 : 86400),
		    day);

	struct relay_config cfg;
	if (relay_cli_load_config(cmd, sub_conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;
	int rc = is_show ? show(&cfg, day, domain[0] ? domain : NULL)
	                 : send_now(&cfg, day, wait_s);
	relay_config_free(&cfg);
	return rc;
}
