/*
 * relay_cli_status: `danerelay status [-c FILE] [--json]`.
 *
 * Asks the running `serve` over its control socket (request "status",
 * relay_control.h) for its pid, version, uptime, DNSSEC self-test state,
 * what is in flight, the connection cache and the queue's counts by queue
 * and by failure class, and prints them as text or as one JSON object.
 * With no daemon answering it says so on stderr and exits 3
 * (RELAY_CLI_EXIT_NO_DAEMON), like `postfix status`, so scripts can tell
 * "not running" from an error (1).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay_cli.h"
#include "relay_control.h"
#include "relay_json.h"

static const char status_synopsis[] = "danerelay status [-c FILE] [--json]";

/* The daemon's "ok KEY VALUE" lines, in order. */
struct status_reply {
	char **key, **value;
	size_t n, cap;
	bool failed; /* out of memory, or an "error" line */
	char error[256];
};

static void
status_result(void *arg, const char *id, int status, const char *text)
{
	struct status_reply *r = arg;

	if (status != 0) {
		r->failed = true;
		(void)snprintf(r->error, sizeof(r->error), "%s", text);
		return;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		char **k = realloc(r->key, cap * sizeof(*k));
		if (k != NULL)
			r->key = k;
		char **v = realloc(r->value, cap * sizeof(*v));
		if (v != NULL)
			r->value = v;
		if (k == NULL || v == NULL) {
			r->failed = true;
			return;
		}
		r->cap = cap;
	}
	r->key[r->n] = strdup(id);
	r->value[r->n] = strdup(text);
	if (r->key[r->n] == NULL || r->value[r->n] == NULL) {
		free(r->key[r->n]);
		free(r->value[r->n]);
		r->failed = true;
		return;
	}
	r->n++;
}

static void
status_reply_free(struct status_reply *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->key[i]);
		free(r->value[i]);
	}
	free(r->key);
	free(r->value);
}

/* The value of key, or "" when the daemon did not send it. */
static const char *
get(const struct status_reply *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->key[i], key) == 0)
			return r->value[i];
	return "";
}

static uint64_t
get_u64(const struct status_reply *r, const char *key)
{
	return strtoull(get(r, key), NULL, 10);
}

static void
put_time(FILE *out, uint64_t epoch_s)
{
	char buf[64];
	time_t t = (time_t)epoch_s;
	struct tm tm;
	if (epoch_s != 0 && gmtime_r(&t, &tm) != NULL &&
	    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm) > 0)
		fputs(buf, out);
	else
		fputs("never", out);
}

static void
put_duration(FILE *out, uint64_t s)
{
	if (s >= 86400)
		fprintf(out, "%" PRIu64 "d ", s / 86400);
	if (s >= 3600)
		fprintf(out, "%" PRIu64 "h ", s / 3600 % 24);
	if (s >= 60)
		fprintf(out, "%" PRIu64 "m ", s / 60 % 60);
	fprintf(out, "%" PRIu64 "s", s % 60);
}

/* One policy_exception value, "DOMAIN LEVEL UNTIL DAYS_LEFT FILE:LINE
 * REASON...", as "  DOMAIN LEVEL until UNTIL (N days left), FILE:LINE:
 * REASON". */
static void
print_exception(FILE *out, const char *v)
{
	const char *f[5];
	size_t len[5];
	const char *p = v;

	for (size_t k = 0; k < 5; k++) {
		const char *sp = strchr(p, ' ');
		f[k] = p;
		len[k] = sp != NULL ? (size_t)(sp - p) : strlen(p);
		p += len[k];
		while (*p == ' ')
			p++;
	}
	long long left = strtoll(f[3], NULL, 10);
	fprintf(out, "  %.*s %.*s until %.*s (%lld day%s left), %.*s%s%s\n",
	    (int)len[0], f[0], (int)len[1], f[1], (int)len[2], f[2], left,
	    left == 1 ? "" : "s", (int)len[4], f[4], *p ? ": " : "", p);
}

static void
print_text(FILE *out, const struct status_reply *r)
{
	fprintf(out, "daemon: pid %s, danerelay %s, started ", get(r, "pid"),
	    get(r, "version"));
	put_time(out, get_u64(r, "started"));
	fputs(", up ", out);
	put_duration(out, get_u64(r, "uptime_s"));
	fprintf(out, "\ndns_selftest: %s (last result %s at ",
	    get(r, "dns_selftest.state"), get(r, "dns_selftest.last_result"));
	put_time(out, get_u64(r, "dns_selftest.last_time"));
	const char *why = get(r, "dns_selftest.why");
	fprintf(out, "%s%s)\n", why[0] ? ": " : "", why);
	fprintf(out,
	    "in flight: %s deliveries (%s destinations), %s outbound "
	    "connections, %s inbound sessions\n",
	    get(r, "deliveries.messages"), get(r, "deliveries.destinations"),
	    get(r, "connections.outbound"), get(r, "connections.inbound"));
	fprintf(out, "connection_cache: %s idle connections\n",
	    get(r, "connection_cache"));
	fprintf(out,
	    "queue: %s messages (%s active, %s deferred, %s hold), %s open "
	    "recipients, %s deferred\n",
	    get(r, "queue.messages"), get(r, "queue.active"),
	    get(r, "queue.deferred"), get(r, "queue.hold"),
	    get(r, "queue.recipients"), get(r, "queue.deferred_recipients"));
	fputs("deferred by failure class:", out);
	size_t ncls = 0;
	for (size_t i = 0; i < r->n; i++)
		if (strncmp(r->key[i], "queue.class.", 12) == 0)
			fprintf(out, "%s %s %s", ncls++ ? "," : "",
			    r->key[i] + 12, r->value[i]);
	fprintf(out, "%s\n", ncls ? "" : " none");
	if (get_u64(r, "queue.unparsable") + get_u64(r, "queue.corrupt") > 0)
		fprintf(out,
		    "unreadable: %s unparsable envelopes in queue/, %s files in "
		    "corrupt/\n",
		    get(r, "queue.unparsable"), get(r, "queue.corrupt"));
	size_t nexc = 0;
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->key[i], "policy_exception") == 0) {
			if (nexc++ == 0)
				fputs("policy exceptions:\n", out);
			print_exception(out, r->value[i]);
		}
	if (nexc == 0)
		fputs("policy exceptions: none\n", out);
}

/* One policy_exception value: "DOMAIN LEVEL UNTIL DAYS_LEFT FILE:LINE
 * REASON..." (relay_control_policy_exceptions()). */
static void
json_exception(struct relay_json *j, const char *v)
{
	static const char *const names[] = { "domain", "level", "until",
		"days_left", "entry" };
	const char *p = v;

	relay_json_obj_begin(j);
	for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
		const char *sp = strchr(p, ' ');
		size_t len = sp != NULL ? (size_t)(sp - p) : strlen(p);
		relay_json_key(j, names[f]);
		if (strcmp(names[f], "days_left") == 0)
			relay_json_i64(j, strtoll(p, NULL, 10));
		else
			relay_json_strn(j, p, len);
		p += len;
		while (*p == ' ')
			p++;
	}
	relay_json_kv_str(j, "reason", p);
	relay_json_obj_end(j);
}

static int
print_json(FILE *out, const struct status_reply *r)
{
	struct relay_json j;

	relay_json_init(&j, out);
	relay_json_obj_begin(&j);
	relay_json_kv_u64(&j, "pid", get_u64(r, "pid"));
	relay_json_kv_str(&j, "version", get(r, "version"));
	relay_json_kv_u64(&j, "started", get_u64(r, "started"));
	relay_json_kv_u64(&j, "uptime_s", get_u64(r, "uptime_s"));
	relay_json_key(&j, "dns_selftest");
	relay_json_obj_begin(&j);
	relay_json_kv_str(&j, "state", get(r, "dns_selftest.state"));
	relay_json_kv_str(&j, "last_result",
	    get(r, "dns_selftest.last_result"));
	relay_json_kv_u64(&j, "last_time",
	    get_u64(r, "dns_selftest.last_time"));
	relay_json_kv_str(&j, "why", get(r, "dns_selftest.why"));
	relay_json_obj_end(&j);
	relay_json_key(&j, "deliveries");
	relay_json_obj_begin(&j);
	relay_json_kv_u64(&j, "messages", get_u64(r, "deliveries.messages"));
	relay_json_kv_u64(&j, "destinations",
	    get_u64(r, "deliveries.destinations"));
	relay_json_obj_end(&j);
	relay_json_key(&j, "connections");
	relay_json_obj_begin(&j);
	relay_json_kv_u64(&j, "outbound", get_u64(r, "connections.outbound"));
	relay_json_kv_u64(&j, "inbound", get_u64(r, "connections.inbound"));
	relay_json_obj_end(&j);
	relay_json_kv_u64(&j, "connection_cache",
	    get_u64(r, "connection_cache"));
	relay_json_key(&j, "queue");
	relay_json_obj_begin(&j);
	static const char *const qk[] = { "messages", "active", "deferred",
		"hold", "recipients", "deferred_recipients", "unparsable",
		"corrupt" };
	for (size_t i = 0; i < sizeof(qk) / sizeof(qk[0]); i++) {
		char key[64];
		(void)snprintf(key, sizeof(key), "queue.%s", qk[i]);
		relay_json_kv_u64(&j, qk[i], get_u64(r, key));
	}
	relay_json_key(&j, "by_failure_class");
	relay_json_obj_begin(&j);
	for (size_t i = 0; i < r->n; i++)
		if (strncmp(r->key[i], "queue.class.", 12) == 0)
			relay_json_kv_u64(&j, r->key[i] + 12,
			    strtoull(r->value[i], NULL, 10));
	relay_json_obj_end(&j);
	relay_json_obj_end(&j);
	relay_json_key(&j, "policy_exceptions");
	relay_json_arr_begin(&j);
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->key[i], "policy_exception") == 0)
			json_exception(&j, r->value[i]);
	relay_json_arr_end(&j);
	relay_json_obj_end(&j);
	if (relay_json_finish(&j) != 0)
		return -1;
	fputc('\n', out);
	return 0;
}

int
relay_cli_status(int argc, char **argv)
{
	const char *sub_conf;
	bool json = false;
	const struct relay_cli_flag flags[] = { { "json", &json } };
	int ex = relay_cli_conf_only("status", status_synopsis, argc, argv,
	    &sub_conf, flags, 1);
	if (ex >= 0)
		return ex;

	struct relay_config cfg;
	if (relay_cli_load_config("status", sub_conf, &cfg) != 0)
		return RELAY_CLI_EXIT_ERROR;
	struct relay_control_client cl;
	struct status_reply rep;
	char err[512] = "";
	int rc = RELAY_CLI_EXIT_ERROR;
	memset(&rep, 0, sizeof(rep));
	int r =
	    relay_control_client_connect(&cl, cfg.spool_dir, err, sizeof(err));
	if (r == RELAY_CONTROL_ENOENT) {
		fprintf(stderr,
		    "danerelay status: no daemon answers for spool %s (no "
		    "control socket, or a stale one): serve is not running\n",
		    cfg.spool_dir);
		rc = RELAY_CLI_EXIT_NO_DAEMON;
		goto out;
	}
	if (r != 0) {
		fprintf(stderr, "danerelay status: %s\n", err);
		goto out;
	}
	r = relay_control_client_run(&cl, "status", NULL, 0, false,
	    status_result, &rep, err, sizeof(err));
	relay_control_client_close(&cl);
	if (r != 0) {
		fprintf(stderr, "danerelay status: %s\n", err);
		goto out;
	}
	if (rep.failed) {
		fprintf(stderr, "danerelay status: %s\n",
		    rep.error[0] ? rep.error : "out of memory");
		goto out;
	}
	if (json ? print_json(stdout, &rep) != 0
	         : (print_text(stdout, &rep), 0))
		goto out;
	if (fflush(stdout) == 0)
		rc = RELAY_CLI_EXIT_OK;
out:
	status_reply_free(&rep);
	relay_config_free(&cfg);
	return rc;
}
