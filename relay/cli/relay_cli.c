/*
 * relay_cli: shared helpers of the subcommands, and the `version` and
 * `config` subcommands themselves. The dispatch table is in main.c.
 */
#include "relay_cli.h"

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "danerelay_version.h"
#include "relay_control.h"

static const char *global_config;

void
relay_cli_set_global_config(const char *path)
{
	global_config = path;
}

const char *
relay_cli_config_path(const char *sub_path)
{
	const char *env;

	if (sub_path != NULL)
		return sub_path;
	if (global_config != NULL)
		return global_config;
	env = getenv("DANERELAY_CONF");
	if (env != NULL && env[0] != '\0')
		return env;
	return RELAY_CLI_DEFAULT_CONF;
}

int
relay_cli_load_config(const char *cmd, const char *sub_path,
    struct relay_config *cfg)
{
	char err[RELAY_CONFIG_ERRMAX];

	if (relay_config_load(cfg, relay_cli_config_path(sub_path), err) != 0) {
		fprintf(stderr, "danerelay %s: %s\n", cmd, err);
		return RELAY_CLI_EXIT_ERROR;
	}
	return 0;
}

int
relay_cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "danerelay %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return RELAY_CLI_EXIT_USAGE;
}

int
relay_cli_help(const char *synopsis)
{
	printf("usage: %s\n", synopsis);
	return fflush(stdout) == 0 ? RELAY_CLI_EXIT_OK : RELAY_CLI_EXIT_ERROR;
}

int
relay_cli_bad_option(const char *cmd, const char *synopsis, int c, char **argv)
{
	/* getopt_long() leaves the offending word at argv[optind - 1], except
	 * for an unknown letter inside a group such as -nx: optopt names it. */
	const char *word = optind > 0 ? argv[optind - 1] : "?";
	char letter[3] = { '-', (char)optopt, '\0' };

	if (c == '?' && optopt > 0 && optopt < 128 && isprint(optopt))
		word = letter;
	if (c == ':' && optopt == 'c')
		return relay_cli_usage(cmd,
		    "option -c needs a file name; "
		    "usage: %s",
		    synopsis);
	if (c == ':')
		return relay_cli_usage(cmd,
		    "option %s needs a value; usage: %s", word, synopsis);
	return relay_cli_usage(cmd, "unknown option %s; usage: %s", word,
	    synopsis);
}

int
relay_cli_conf_only(const char *cmd, const char *synopsis, int argc,
    char **argv, const char **sub_conf, const struct relay_cli_flag *flags,
    size_t nflags)
{
	/* getopt_long() returns val for a long option: the flags take values
	 * past every single-byte option letter. */
	const int flag_val = 256;
	struct option longopts[RELAY_CLI_FLAGS_MAX + 2];
	int c;

	if (nflags > RELAY_CLI_FLAGS_MAX) {
		fprintf(stderr, "%s:%d: nflags > RELAY_CLI_FLAGS_MAX\n",
		    __FILE__, __LINE__);
		abort();
	}
	for (size_t i = 0; i < nflags; i++) {
		longopts[i] = (struct option){ flags[i].name, no_argument, NULL,
			flag_val + (int)i };
		*flags[i].on = false;
	}
	longopts[nflags] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[nflags + 1] = (struct option){ NULL, 0, NULL, 0 };

	*sub_conf = NULL;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		if (c == 'c')
			*sub_conf = optarg;
		else if (c >= flag_val && c < flag_val + (int)nflags)
			*flags[c - flag_val].on = true;
		else if (c == 'h')
			return relay_cli_help(synopsis);
		else
			return relay_cli_bad_option(cmd, synopsis, c, argv);
	}
	if (optind < argc)
		return relay_cli_usage(cmd, "takes no arguments; usage: %s",
		    synopsis);
	return -1;
}

/* Reply lines of a control request: to stdout, an error to stderr. */
struct reply_lines {
	const char *what;
	bool failed;
};

static void
reply_line(void *arg, const char *id, int status, const char *text)
{
	struct reply_lines *r = arg;

	(void)id;
	if (status != 0) {
		r->failed = true;
		fprintf(stderr, "danerelay %s: %s\n", r->what, text);
	} else {
		printf("%s\n", text);
	}
}

int
relay_cli_control_lines(const char *what, const char *spool,
    const char *request, const char *const *args, size_t nargs,
    const char *only_daemon)
{
	struct relay_control_client cl;
	char err[512] = "";
	struct reply_lines reply = { .what = what, .failed = false };
	int r = relay_control_client_connect(&cl, spool, err, sizeof(err));
	if (r == RELAY_CONTROL_ENOENT) {
		fprintf(stderr,
		    "danerelay %s: no running serve for spool %s (no control "
		    "socket answers); only a running daemon has %s\n",
		    what, spool, only_daemon);
		return RELAY_CLI_EXIT_ERROR;
	}
	if (r != 0) {
		fprintf(stderr, "danerelay %s: %s\n", what, err);
		return RELAY_CLI_EXIT_ERROR;
	}
	r = relay_control_client_run(&cl, request, args, nargs, false,
	    reply_line, &reply, err, sizeof(err));
	relay_control_client_close(&cl);
	if (r != 0) {
		fprintf(stderr, "danerelay %s: %s\n", what, err);
		return RELAY_CLI_EXIT_ERROR;
	}
	return !reply.failed && fflush(stdout) == 0 ? RELAY_CLI_EXIT_OK
	                                            : RELAY_CLI_EXIT_ERROR;
}

static const char version_synopsis[] = "danerelay version";

int
relay_cli_version(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h')
			return relay_cli_help(version_synopsis);
		return relay_cli_bad_option("version", version_synopsis, c,
		    argv);
	}
	if (optind < argc)
		return relay_cli_usage("version",
		    "takes no arguments; usage: %s", version_synopsis);
	printf("danerelay %s\n", DANERELAY_VERSION);
	return fflush(stdout) == 0 ? RELAY_CLI_EXIT_OK : RELAY_CLI_EXIT_ERROR;
}

/*
 * danerelay config [-c FILE] [-n | -d | --doc] [NAME...]
 * Like postconf: every parameter's effective value; -n only those set in
 * the file; -d the defaults (the file is not read); --doc the Markdown
 * reference table; NAMEs restrict the output to those parameters.
 */
static const char config_synopsis[] =
    "danerelay config [-c FILE] [-n | -d | --doc] [NAME...]";

int
relay_cli_config(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "doc", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = NULL;
	enum relay_config_print_mode mode = RELAY_CONFIG_PRINT_ALL;
	bool doc = false, nflag = false, dflag = false;
	struct relay_config cfg;
	char buf[8192];
	int c, rc = RELAY_CLI_EXIT_OK;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:ndh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 'n':
			nflag = true;
			break;
		case 'd':
			dflag = true;
			break;
		case 'D':
			doc = true;
			break;
		case 'h':
			return relay_cli_help(config_synopsis);
		default:
			return relay_cli_bad_option("config", config_synopsis,
			    c, argv);
		}
	}
	if ((int)nflag + (int)dflag + (int)doc > 1)
		return relay_cli_usage("config",
		    "-n, -d and --doc exclude "
		    "each other");
	if (doc) {
		if (optind < argc)
			return relay_cli_usage("config",
			    "--doc takes no names");
		return relay_config_print_doc(stdout) == 0
		    ? RELAY_CLI_EXIT_OK
		    : RELAY_CLI_EXIT_ERROR;
	}
	for (int i = optind; i < argc; i++) {
		if (relay_config_param_find(argv[i], strlen(argv[i])) == NULL) {
			fprintf(stderr,
			    "danerelay config: unknown parameter "
			    "\"%s\"\n",
			    argv[i]);
			return RELAY_CLI_EXIT_ERROR;
		}
	}
	if (dflag) {
		mode = RELAY_CONFIG_PRINT_DEFAULTS;
		if (relay_config_init(&cfg) != 0) {
			fprintf(stderr, "danerelay config: out of memory\n");
			return RELAY_CLI_EXIT_ERROR;
		}
	} else {
		if (nflag)
			mode = RELAY_CONFIG_PRINT_EXPLICIT;
		if (relay_cli_load_config("config", conf, &cfg) != 0)
			return RELAY_CLI_EXIT_ERROR;
	}
	if (optind == argc) {
		if (relay_config_print(stdout, &cfg, mode) != 0)
			rc = RELAY_CLI_EXIT_ERROR;
	} else {
		for (int i = optind; i < argc; i++) {
			const struct relay_config_param *p =
			    relay_config_param_find(argv[i], strlen(argv[i]));
			if (mode == RELAY_CONFIG_PRINT_EXPLICIT &&
			    !relay_config_is_explicit(&cfg, p))
				continue;
			if (relay_config_format(&cfg, p, buf, sizeof(buf)) < 0)
				rc = RELAY_CLI_EXIT_ERROR;
			printf("%s =%s%s\n", p->name, buf[0] ? " " : "", buf);
		}
		if (fflush(stdout) != 0)
			rc = RELAY_CLI_EXIT_ERROR;
	}
	relay_config_free(&cfg);
	return rc;
}
