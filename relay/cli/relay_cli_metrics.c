/*
 * relay_cli_metrics: `danerelay metrics [-c FILE]`.
 *
 * Prints the running `serve`'s counters in the Prometheus text format
 * 0.0.4, the same text its metrics_listen endpoint answers GET /metrics
 * with, fetched over the control socket (request "metrics",
 * relay_control.h). Counters live in the daemon: with no control socket
 * answering this says so and exits 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "relay_cli.h"
#include "relay_control.h"

static const char metrics_synopsis[] = "danerelay metrics [-c FILE]";

static void
metrics_line(void *arg, const char *id, int status, const char *text)
{
	int *failed = arg;

	(void)id;
	if (status != 0) {
		*failed = 1;
		fprintf(stderr, "danerelay metrics: %s\n", text);
	} else {
		printf("%s\n", text);
	}
}

int
relay_cli_metrics(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sub_conf = NULL;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		if (c == 'c')
			sub_conf = optarg;
		else if (c == 'h')
			return relay_cli_help(metrics_synopsis);
		else
			return relay_cli_bad_option("metrics", metrics_synopsis,
			    c, argv);
	}
	if (optind < argc)
		return relay_cli_usage("metrics",
		    "unexpected argument %s; usage: %s", argv[optind],
		    metrics_synopsis);

	struct relay_config cfg;
	if (relay_cli_load_config("metrics", sub_conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;

	struct relay_control_client cl;
	char err[512] = "";
	int failed = 0;
	int rc = RELAY_CLI_EXIT_ERROR;
	int r =
	    relay_control_client_connect(&cl, cfg.spool_dir, err, sizeof(err));
	if (r == RELAY_CONTROL_ENOENT) {
		fprintf(stderr,
		    "danerelay metrics: no running serve for spool %s (no "
		    "control socket answers); only a running daemon has "
		    "counters\n",
		    cfg.spool_dir);
		goto out;
	}
	if (r != 0) {
		fprintf(stderr, "danerelay metrics: %s\n", err);
		goto out;
	}
	r = relay_control_client_run(&cl, "metrics", NULL, 0, false,
	    metrics_line, &failed, err, sizeof(err));
	relay_control_client_close(&cl);
	if (r != 0) {
		fprintf(stderr, "danerelay metrics: %s\n", err);
		goto out;
	}
	if (!failed && fflush(stdout) == 0)
		rc = RELAY_CLI_EXIT_OK;
out:
	relay_config_free(&cfg);
	return rc;
}
