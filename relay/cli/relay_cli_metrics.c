/*
 * relay_cli_metrics: `danerelay metrics [-c FILE]`.
 *
 * Prints the running `serve`'s counters in the Prometheus text format
 * 0.0.4, the same text its metrics_listen endpoint answers GET /metrics
 * with, fetched over the control socket (request "metrics",
 * relay_control.h). Counters live in the daemon: with no control socket
 * answering this says so and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include "relay_cli.h"
#include "relay_control.h"

static const char metrics_synopsis[] = "danerelay metrics [-c FILE]";

int
relay_cli_metrics(int argc, char **argv)
{
	const char *sub_conf;
	int ex = relay_cli_conf_only("metrics", metrics_synopsis, argc, argv,
	    &sub_conf);
	if (ex >= 0)
		return ex;

	struct relay_config cfg;
	if (relay_cli_load_config("metrics", sub_conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;

	struct relay_control_client cl;
	char err[512] = "";
	struct relay_cli_reply reply = { .what = "metrics", .failed = 0 };
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
	    relay_cli_reply_line, &reply, err, sizeof(err));
	relay_control_client_close(&cl);
	if (r != 0) {
		fprintf(stderr, "danerelay metrics: %s\n", err);
		goto out;
	}
	if (!reply.failed && fflush(stdout) == 0)
		rc = RELAY_CLI_EXIT_OK;
out:
	relay_config_free(&cfg);
	return rc;
}
