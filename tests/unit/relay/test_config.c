/*
 * Unit tests for relay_config: the parameter table, every value type, file
 * errors (one line FILE:LINE: message), the TLS policy file and
 * mynetworks matching. Table-driven: one cmocka case per row.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay_clock.h"
#include "relay_config.h"

static int
load(struct relay_config *cfg, const char *text, char *err)
{
	return relay_config_load_buf(cfg, "t.conf", (const uint8_t *)text,
	    strlen(text), err);
}

static void
fmt(const struct relay_config *cfg, const char *name, char *buf, size_t n)
{
	const struct relay_config_param *p =
	    relay_config_param_find(name, strlen(name));

	assert_non_null(p);
	assert_true(relay_config_format(cfg, p, buf, n) >= 0);
}

/* ---- the table ---- */

static void
test_table_sorted_and_documented(void **state)
{
	size_t n;
	const struct relay_config_param *t = relay_config_params(&n);

	(void)state;
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(t[i].doc);
		assert_true(strlen(t[i].doc) > 10);
		assert_true(t[i].def != NULL || t[i].def_doc != NULL);
		if (i > 0)
			assert_true(strcmp(t[i - 1].name, t[i].name) < 0);
		assert_ptr_equal(relay_config_param_find(t[i].name,
		                     strlen(t[i].name)),
		    &t[i]);
		/* The doc is one Markdown table cell. */
		assert_null(strchr(t[i].doc, '|'));
	}
	assert_null(relay_config_param_find("listenx", 7));
	assert_null(relay_config_param_find("liste", 5));
	/* Length-delimited lookup, no NUL needed. */
	assert_non_null(relay_config_param_find("listen = 1", 6));
}

/* Every default goes through the parser (init asserts that) and comes
 * back out as the same text, except canonical rewrites listed here. */
static void
test_defaults(void **state)
{
	struct relay_config cfg;
	char buf[512];

	(void)state;
	assert_int_equal(relay_config_init(&cfg), 0);
	assert_int_equal(cfg.listen_count, 1);
	assert_string_equal(cfg.listen[0].text, "127.0.0.1:10025");
	assert_int_equal(cfg.mynetworks_count, 2);
	assert_string_equal(cfg.spool_dir, "/var/spool/danerelay");
	assert_string_equal(cfg.run_user, "danerelay");
	assert_string_equal(cfg.dns_trust_anchor_file,
	    "/usr/share/dns/root.key");
	assert_int_equal(cfg.tls_security_level, RELAY_TLS_DANE);
	assert_int_equal(cfg.retry_min_ms, 300000);
	assert_int_equal(cfg.retry_max_ms, 4000000);
	assert_int_equal(cfg.max_queue_lifetime_ms, 5ull * 86400 * 1000);
	assert_int_equal(cfg.delay_warning_time_ms, 4ull * 3600 * 1000);
	assert_int_equal(cfg.message_size_limit, 10240000);
	assert_int_equal(cfg.log_level, RELAY_CONFIG_LOG_INFO);
	assert_true(cfg.smtputf8_enable);
	assert_true(cfg.myhostname[0] != '\0');
	fmt(&cfg, "mynetworks", buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.0/8, [::1]/128");
	fmt(&cfg, "retry_min", buf, sizeof(buf));
	assert_string_equal(buf, "5m");
	fmt(&cfg, "dns_forwarders", buf, sizeof(buf));
	assert_string_equal(buf, "");
	assert_false(relay_config_is_explicit(&cfg,
	    relay_config_param_find("listen", 6)));
	relay_config_free(&cfg);
	relay_config_free(&cfg); /* freeing twice is harmless */
	relay_config_free(NULL);
}

/* ---- values: one row per case ---- */

struct value_case {
	const char *name;
	const char *value;
	int rc;
	const char *formatted; /* canonical output when rc == 0 */
};

static const struct value_case value_cases[] = {
	/* durations */
	{ "retry_min", "300", 0, "5m" },
	{ "retry_min", "300s", 0, "5m" },
	{ "retry_min", "90s", 0, "90s" },
	{ "retry_max", "2h", 0, "2h" },
	{ "retry_max", "1d", 0, "1d" },
	{ "retry_min", "1500ms", 0, "1500ms" },
	{ "retry_min", "0s", RELAY_CONFIG_EVALUE, NULL }, /* below min */
	{ "retry_min", "8d", RELAY_CONFIG_EVALUE, NULL }, /* above max */
	{ "retry_min", "5x", RELAY_CONFIG_EVALUE, NULL },
	{ "retry_min", "-5s", RELAY_CONFIG_EVALUE, NULL },
	{ "retry_min", "", RELAY_CONFIG_EVALUE, NULL },
	{ "retry_min", "5 m", RELAY_CONFIG_EVALUE, NULL },
	{ "retry_min", "99999999999999999999s", RELAY_CONFIG_EVALUE, NULL },
	{ "max_queue_lifetime", "1w", 0, "7d" },
	{ "max_queue_lifetime", "0", 0, "0s" },
	/* sizes */
	{ "message_size_limit", "10240000", 0, "10240000" },
	{ "message_size_limit", "50m", 0, "52428800" },
	{ "message_size_limit", "64K", 0, "65536" },
	{ "message_size_limit", "1023", RELAY_CONFIG_EVALUE, NULL },
	{ "message_size_limit", "2g", RELAY_CONFIG_EVALUE, NULL },
	{ "message_size_limit", "1.5m", RELAY_CONFIG_EVALUE, NULL },
	/* ints */
	{ "max_recipients", "100", 0, "100" },
	{ "max_recipients", "0", RELAY_CONFIG_EVALUE, NULL },
	{ "max_recipients", "100001", RELAY_CONFIG_EVALUE, NULL },
	{ "max_recipients", "12a", RELAY_CONFIG_EVALUE, NULL },
	{ "max_recipients", "+5", RELAY_CONFIG_EVALUE, NULL },
	/* bool */
	{ "smtputf8_enable", "no", 0, "no" },
	{ "smtputf8_enable", "YES", 0, "yes" },
	{ "smtputf8_enable", "1", RELAY_CONFIG_EVALUE, NULL },
	/* enums */
	{ "tls_security_level", "dane-only", 0, "dane-only" },
	{ "tls_security_level", "may", 0, "may" },
	{ "tls_security_level", "verify", 0, "verify" },
	{ "tls_security_level", "none", RELAY_CONFIG_EVALUE, NULL },
	{ "tls_security_level", "dane only", RELAY_CONFIG_EVALUE, NULL },
	{ "log_level", "debug", 0, "debug" },
	{ "log_level", "trace", RELAY_CONFIG_EVALUE, NULL },
	/* outbound families and address order (Postfix's words) */
	{ "inet_protocols", "all", 0, "all" },
	{ "inet_protocols", "IPv4", 0, "ipv4" },
	{ "inet_protocols", "ipv6", 0, "ipv6" },
	{ "inet_protocols", "ipv4, ipv6", RELAY_CONFIG_EVALUE, NULL },
	{ "inet_protocols", "inet", RELAY_CONFIG_EVALUE, NULL },
	{ "smtp_address_preference", "any", 0, "any" },
	{ "smtp_address_preference", "ipv4", 0, "ipv4" },
	{ "smtp_address_preference", "ipv6", 0, "ipv6" },
	{ "smtp_address_preference", "all", RELAY_CONFIG_EVALUE, NULL },
	/* outbound source addresses and EHLO name (accepted forms; the
	 * refused ones are cross-checks: test_outbound_checks) */
	{ "smtp_bind_address", "192.0.2.25", 0, "192.0.2.25" },
	{ "smtp_bind_address", "", 0, "" },
	{ "smtp_bind_address6", "2001:db8::25", 0, "2001:db8::25" },
	{ "smtp_helo_name", "out.example.org", 0, "out.example.org" },
	{ "smtp_helo_name", "[192.0.2.25]", 0, "[192.0.2.25]" },
	/* address lists */
	{ "listen", "127.0.0.1:10025, [::1]:10025", 0,
	    "127.0.0.1:10025, [::1]:10025" },
	{ "listen", "127.0.0.2:25 [0:0::1]:26", 0, "127.0.0.2:25, [::1]:26" },
	{ "listen", "127.0.0.1", RELAY_CONFIG_EVALUE, NULL },
	{ "listen", "127.0.0.1:0", RELAY_CONFIG_EVALUE, NULL },
	{ "listen", "127.0.0.1:65536", RELAY_CONFIG_EVALUE, NULL },
	{ "listen", "::1:25", RELAY_CONFIG_EVALUE, NULL },
	{ "listen", "[127.0.0.1]:25", RELAY_CONFIG_EVALUE, NULL },
	{ "listen", "localhost:25", RELAY_CONFIG_EVALUE, NULL },
	{ "listen", "", RELAY_CONFIG_EVALUE, NULL }, /* min 1 */
	/* CIDR lists */
	{ "mynetworks", "10.1.2.3/8, 192.168.0.1", 0,
	    "10.0.0.0/8, 192.168.0.1/32" },
	{ "mynetworks", "[2001:db8::1]/32, ::1/128", 0,
	    "[2001:db8::]/32, [::1]/128" },
	{ "mynetworks", "0.0.0.0/0", 0, "0.0.0.0/0" },
	{ "mynetworks", "10.0.0.0/33", RELAY_CONFIG_EVALUE, NULL },
	{ "mynetworks", "[::1]/129", RELAY_CONFIG_EVALUE, NULL },
	{ "mynetworks", "10.0.0.0/", RELAY_CONFIG_EVALUE, NULL },
	{ "mynetworks", "[10.0.0.0]/8", RELAY_CONFIG_EVALUE, NULL },
	/* forwarders */
	{ "dns_forwarders", "127.0.0.1@5353, ::1", 0, "127.0.0.1@5353, ::1" },
	{ "dns_forwarders", "127.0.0.1@0", RELAY_CONFIG_EVALUE, NULL },
	{ "dns_forwarders", "dns.example@53", RELAY_CONFIG_EVALUE, NULL },
	/* strings and paths */
	{ "myhostname", "relay.example.org", 0, "relay.example.org" },
	{ "spool_dir", "/var/spool/x", 0, "/var/spool/x" },
	{ "report_recipient", "", 0, "" },
	/* next hop (Postfix relayhost syntax, bracketed only) */
	{ "notify_relayhost", "", 0, "" },
	{ "notify_relayhost", "[127.0.0.1]", 0, "[127.0.0.1]:25" },
	{ "notify_relayhost", "[127.0.0.1]:25", 0, "[127.0.0.1]:25" },
	{ "notify_relayhost", "[127.0.0.1]:10026", 0, "[127.0.0.1]:10026" },
	{ "notify_relayhost", "[::1]:2525", 0, "[::1]:2525" },
	{ "notify_relayhost", "[IPv6:0:0::1]", 0, "[::1]:25" },
	{ "notify_relayhost", "[Mail.Example.ORG.]:587", 0,
	    "[mail.example.org]:587" },
	{ "notify_relayhost", "[localhost]", 0, "[localhost]:25" },
	{ "notify_relayhost", "127.0.0.1:25", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "mail.example.org", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "[]", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "[]:25", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "[127.0.0.1", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "[127.0.0.1]:", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "[127.0.0.1]:0", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "[127.0.0.1]:65536", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "[127.0.0.1]25", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "[127.0.0.1]:25x", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "[127.0.0.1]:25, [::1]", RELAY_CONFIG_EVALUE,
	    NULL },
	{ "notify_relayhost", "[ipv6:127.0.0.1]", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "[mail..example]", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "[bad name]", RELAY_CONFIG_EVALUE, NULL },
	{ "notify_relayhost", "[mail.example.org]:25 extra",
	    RELAY_CONFIG_EVALUE, NULL },
};

static void
test_value(void **state)
{
	const struct value_case *c = *state;
	struct relay_config cfg;
	char text[512], err[RELAY_CONFIG_ERRMAX] = "", buf[512];
	int rc;

	(void)snprintf(text, sizeof(text), "# case\n%s = %s\n", c->name,
	    c->value);
	rc = load(&cfg, text, err);
	assert_int_equal(rc, c->rc);
	if (rc != 0) {
		/* One line naming file, line and parameter. */
		assert_non_null(strstr(err, "t.conf:2: bad value for "));
		assert_non_null(strstr(err, c->name));
		assert_null(strchr(err, '\n'));
		return;
	}
	fmt(&cfg, c->name, buf, sizeof(buf));
	assert_string_equal(buf, c->formatted);
	assert_true(relay_config_is_explicit(&cfg,
	    relay_config_param_find(c->name, strlen(c->name))));
	relay_config_free(&cfg);
}

/* The parsed next hop: what delivery connects to. */
static void
test_nexthop_fields(void **state)
{
	struct relay_config_nexthop nh;
	(void)state;

	assert_int_equal(relay_config_nexthop_parse("", 0, &nh), 0);
	assert_false(nh.set);
	assert_string_equal(nh.text, "");

	const char *v4 = "[127.0.0.1]";
	assert_int_equal(relay_config_nexthop_parse(v4, strlen(v4), &nh), 0);
	assert_true(nh.set);
	assert_true(nh.literal);
	assert_int_equal(nh.family, AF_INET);
	assert_int_equal(nh.port, 25);
	assert_memory_equal(nh.addr, "\x7f\x00\x00\x01", 4);
	assert_string_equal(nh.host, "127.0.0.1");

	const char *v6 = "[ipv6:2001:db8::1]:2525";
	assert_int_equal(relay_config_nexthop_parse(v6, strlen(v6), &nh), 0);
	assert_true(nh.literal);
	assert_int_equal(nh.family, AF_INET6);
	assert_int_equal(nh.port, 2525);
	assert_string_equal(nh.host, "2001:db8::1");
	assert_string_equal(nh.text, "[2001:db8::1]:2525");

	const char *name = "[MX.Example.net.]";
	assert_int_equal(relay_config_nexthop_parse(name, strlen(name), &nh),
	    0);
	assert_false(nh.literal);
	assert_string_equal(nh.host, "mx.example.net");
	assert_int_equal(nh.port, 25);

	/* A refused value leaves *out as it was. */
	const char *bad = "mx.example.net:25";
	assert_int_equal(relay_config_nexthop_parse(bad, strlen(bad), &nh), -1);
	assert_string_equal(nh.host, "mx.example.net");

	/* A label of 64 octets, a name over 253. */
	char lng[300];
	memset(lng, 'a', sizeof(lng));
	lng[0] = '[';
	lng[65] = ']';
	assert_int_equal(relay_config_nexthop_parse(lng, 66, &nh), -1);
	for (size_t i = 1; i < 256; i += 50)
		lng[i] = '.';
	lng[1] = 'a';
	lng[256] = ']';
	assert_int_equal(relay_config_nexthop_parse(lng, 257, &nh), -1);

	/* The default is unset: today's behaviour. */
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX];
	assert_int_equal(load(&cfg, "", err), 0);
	assert_false(cfg.notify_relayhost.set);
	relay_config_free(&cfg);
	assert_int_equal(load(&cfg, "notify_relayhost = [127.0.0.1]:10026\n",
	                     err),
	    0);
	assert_true(cfg.notify_relayhost.set);
	assert_int_equal(cfg.notify_relayhost.port, 10026);
	relay_config_free(&cfg);
}

/* ---- outbound source addresses and EHLO name ---- */

struct outbound_check_case {
	const char *text; /* the file */
	const char *err;  /* expected error text, NULL: loads */
};

static const struct outbound_check_case outbound_check_cases[] = {
	{ "smtp_bind_address = 127.22.30.1\n", NULL },
	{ "\nsmtp_bind_address = 2001:db8::1\n",
	    "t.conf:2: smtp_bind_address must be an IPv4 address literal" },
	{ "smtp_bind_address = mail.example.org\n",
	    "t.conf:1: smtp_bind_address must be an IPv4 address literal" },
	{ "smtp_bind_address = 192.0.2.1:25\n",
	    "t.conf:1: smtp_bind_address must be an IPv4 address literal" },
	{ "smtp_bind_address = 192.0.2.256\n",
	    "t.conf:1: smtp_bind_address must be an IPv4 address literal" },
	{ "smtp_bind_address6 = ::1\n", NULL },
	{ "smtp_bind_address6 = 127.0.0.1\n",
	    "t.conf:1: smtp_bind_address6 must be an IPv6 address literal" },
	{ "smtp_bind_address6 = [2001:db8::1]\n",
	    "t.conf:1: smtp_bind_address6 must be an IPv6 address literal" },
	{ "#\nsmtp_helo_name = two words\n",
	    "t.conf:2: smtp_helo_name must be one word" },
	{ "smtp_helo_name =\n", "t.conf:1: smtp_helo_name must be one word" },
	/* Following myhostname, the EHLO name inherits its faults. */
	{ "myhostname = my host\n",
	    "t.conf:1: smtp_helo_name must be one word" },
};

static void
test_outbound_checks(void **state)
{
	char err[RELAY_CONFIG_ERRMAX];

	(void)state;
	for (size_t i = 0;
	     i < sizeof(outbound_check_cases) / sizeof(outbound_check_cases[0]);
	     i++) {
		const struct outbound_check_case *c = &outbound_check_cases[i];
		struct relay_config cfg;
		int rc;

		err[0] = '\0';
		rc = load(&cfg, c->text, err);
		if (c->err == NULL) {
			assert_int_equal(rc, 0);
			relay_config_free(&cfg);
			continue;
		}
		assert_int_equal(rc, RELAY_CONFIG_EVALUE);
		if (strncmp(err, c->err, strlen(c->err)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err,
			    c->err);
	}
}

/* smtp_helo_name follows myhostname unless set, as Postfix's default
 * smtp_helo_name = $myhostname; `config -n` does not list it then. */
static void
test_helo_name_follows_myhostname(void **state)
{
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX] = "";
	const struct relay_config_param *helo =
	    relay_config_param_find("smtp_helo_name", 14);

	(void)state;
	assert_non_null(helo);
	assert_int_equal(load(&cfg, "myhostname = relay.example.org\n", err),
	    0);
	assert_string_equal(cfg.smtp_helo_name, "relay.example.org");
	assert_false(relay_config_is_explicit(&cfg, helo));
	relay_config_free(&cfg);

	assert_int_equal(load(&cfg,
	                     "smtp_helo_name = out.example.org\n"
	                     "myhostname = relay.example.org\n",
	                     err),
	    0);
	assert_string_equal(cfg.smtp_helo_name, "out.example.org");
	assert_string_equal(cfg.myhostname, "relay.example.org");
	assert_true(relay_config_is_explicit(&cfg, helo));
	relay_config_free(&cfg);

	/* Without either, both are the host name. */
	assert_int_equal(load(&cfg, "", err), 0);
	assert_string_equal(cfg.smtp_helo_name, cfg.myhostname);
	assert_int_equal(cfg.inet_protocols, RELAY_INET_ALL);
	assert_int_equal(cfg.smtp_address_preference, RELAY_ADDRPREF_ANY);
	assert_string_equal(cfg.smtp_bind_address, "");
	assert_string_equal(cfg.smtp_bind_address6, "");
	relay_config_free(&cfg);
}

/* ---- durations: one syntax for the configuration and the CLI ---- */

#define MS_PER_S 1000ull
#define MS_PER_D (86400 * MS_PER_S)

/* Every input is given to both uses; each must accept exactly the same
 * inputs with the same value (the CLI keeps microseconds). */
struct duration_case {
	const char *text;
	int rc; /* 0 accepted, -1 refused */
	uint64_t ms;
};

static const struct duration_case duration_cases[] = {
	{ "90", 0, 90 * MS_PER_S },
	{ "30s", 0, 30 * MS_PER_S },
	{ "250ms", 0, 250 },
	{ "5m", 0, 300 * MS_PER_S },
	{ "5M", 0, 300 * MS_PER_S },
	{ "1h", 0, 3600 * MS_PER_S },
	{ "2d", 0, 2 * MS_PER_D },
	{ "1w", 0, 7 * MS_PER_D },
	{ "52w", 0, 364 * MS_PER_D },
	{ "0", 0, 0 },
	{ "", -1, 0 },
	{ "m", -1, 0 },
	{ "5x", -1, 0 },
	{ "5mm", -1, 0 },
	{ "1.5h", -1, 0 },
	{ "-5m", -1, 0 },
	{ "+5m", -1, 0 },
	{ "5 m", -1, 0 },
	{ "99999999999999999999s", -1, 0 },
};

/* The parser itself. */
static void
test_duration_parser(void **state)
{
	const struct duration_case *c = *state;
	uint64_t ms = 12345;

	assert_int_equal(relay_config_parse_duration(c->text, strlen(c->text),
	                     &ms),
	    c->rc);
	assert_int_equal(ms, c->rc == 0 ? c->ms : 12345);
}

/* A configuration value: max_queue_lifetime (range 0..365d) holds every
 * accepted value of the table. */
static void
test_duration_config(void **state)
{
	const struct duration_case *c = *state;
	struct relay_config cfg;
	char text[256], err[RELAY_CONFIG_ERRMAX] = "";

	(void)snprintf(text, sizeof(text), "max_queue_lifetime = %s\n",
	    c->text);
	if (c->rc != 0) {
		assert_int_equal(load(&cfg, text, err), RELAY_CONFIG_EVALUE);
		return;
	}
	assert_int_equal(load(&cfg, text, err), 0);
	assert_int_equal(cfg.max_queue_lifetime_ms, c->ms);
	relay_config_free(&cfg);
}

/* A command-line option (`queue list --older-than`). */
static void
test_duration_cli(void **state)
{
	const struct duration_case *c = *state;
	uint64_t us = 12345;

	assert_int_equal(relay_config_duration_us(c->text, &us), c->rc);
	assert_int_equal(us, c->rc == 0 ? c->ms * 1000 : 12345);
}

/* ---- file-level errors: one row per case ---- */

struct file_case {
	const char *text;
	int rc;
	const char *err; /* exact message */
};

static const struct file_case file_cases[] = {
	{ "foo = 1\n", RELAY_CONFIG_EUNKNOWN,
	    "t.conf:1: unknown parameter \"foo\"" },
	{ "\n\n# x\nlisten = 127.0.0.1:25\nretry_min = 5m\nlisten = "
	  "127.0.0.1:26\n",
	    RELAY_CONFIG_EDUP,
	    "t.conf:6: duplicate parameter listen (first set at line 4)" },
	{ "retry_min\n", RELAY_CONFIG_ESYNTAX,
	    "t.conf:1: expected \"name = value\"" },
	{ "  retry_min = 5m\n", RELAY_CONFIG_ESYNTAX,
	    "t.conf:1: continuation line without a parameter" },
	{ "= 5m\n", RELAY_CONFIG_ESYNTAX,
	    "t.conf:1: missing parameter name before \"=\"" },
	{ "Retry_Min = 5m\n", RELAY_CONFIG_ESYNTAX,
	    "t.conf:1: bad parameter name \"Retry_Min\"" },
	{ "retry_min = 2h\nretry_max = 1h\n", RELAY_CONFIG_EVALUE,
	    "t.conf:2: retry_min must not exceed retry_max" },
	{ "tls_cert_file = /x.pem\n", RELAY_CONFIG_EVALUE,
	    "t.conf:1: tls_cert_file and tls_key_file must be set together" },
	{ "myhostname = a\x01"
	  "b\n",
	    RELAY_CONFIG_EVALUE,
	    "t.conf:1: bad value for myhostname: \"a\x01"
	    "b\" (expected one "
	    "line of text)" },
	{ "log_level = loud\n", RELAY_CONFIG_EVALUE,
	    "t.conf:1: bad value for log_level: \"loud\" (expected one of info, "
	    "debug)" },
	{ "max_recipients = 0\n", RELAY_CONFIG_EVALUE,
	    "t.conf:1: bad value for max_recipients: \"0\" (expected an integer "
	    "from 1 to 100000)" },
	{ "tls_policy_file = /nonexistent/policy\n", RELAY_CONFIG_EIO,
	    "/nonexistent/policy: cannot open tls_policy_file: No such file or "
	    "directory" },
};

static void
test_file_error(void **state)
{
	const struct file_case *c = *state;
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX] = "";

	assert_int_equal(load(&cfg, c->text, err), c->rc);
	assert_string_equal(err, c->err);
	/* On error nothing is left to free (a zeroed struct). */
	assert_null(cfg.listen);
	assert_null(cfg.spool_dir);
}

static void
test_file_syntax(void **state)
{
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX] = "", buf[512];
	const char *text =
	    "# comment\r\n"
	    "\r\n"
	    "mynetworks = 10.0.0.0/8,\r\n"
	    "    # a comment inside a continuation is skipped\n"
	    "\t192.168.0.0/16\n"
	    "   [::1]/128\n"
	    "listen=127.0.0.1:2525\n"
	    "myhostname =   relay.example   \n"
	    "report_recipient = postmaster@example.org"; /* no final LF */

	(void)state;
	assert_int_equal(load(&cfg, text, err), 0);
	fmt(&cfg, "mynetworks", buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.0/8, 192.168.0.0/16, [::1]/128");
	fmt(&cfg, "listen", buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.1:2525");
	assert_string_equal(cfg.myhostname, "relay.example");
	assert_string_equal(cfg.report_recipient, "postmaster@example.org");
	relay_config_free(&cfg);
}

static void
test_relative_paths(void **state)
{
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX], cwd[1024], want[1100];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(load(&cfg,
	                     "spool_dir = ./var/spool\nlog_file = "
	                     "x.log\n",
	                     err),
	    0);
	(void)snprintf(want, sizeof(want), "%s/var/spool", cwd);
	assert_string_equal(cfg.spool_dir, want);
	(void)snprintf(want, sizeof(want), "%s/x.log", cwd);
	assert_string_equal(cfg.log_file, want);
	relay_config_free(&cfg);
}

static void
test_load_file(void **state)
{
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX], path[] = "/tmp/danerelay-cfg-XXXXXX";
	int fd = mkstemp(path);
	const char text[] = "retry_min = 10m\n";
	FILE *out;
	char *printed = NULL;
	size_t plen = 0;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1),
	    (ssize_t)sizeof(text) - 1);
	assert_int_equal(close(fd), 0);
	assert_int_equal(relay_config_load(&cfg, path, err), 0);
	assert_int_equal(cfg.retry_min_ms, 600000);
	/* postconf -n: only what the file sets. */
	out = open_memstream(&printed, &plen);
	assert_non_null(out);
	assert_int_equal(relay_config_print(out, &cfg,
	                     RELAY_CONFIG_PRINT_EXPLICIT),
	    0);
	assert_int_equal(fclose(out), 0);
	assert_string_equal(printed, "retry_min = 10m\n");
	free(printed);
	relay_config_free(&cfg);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(relay_config_load(&cfg, path, err), RELAY_CONFIG_EIO);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file or directory"));
}

static void
test_print_all_and_doc(void **state)
{
	struct relay_config cfg;
	size_t n, lines = 0, plen = 0;
	char *printed = NULL;
	FILE *out;

	(void)state;
	relay_config_params(&n);
	assert_int_equal(relay_config_init(&cfg), 0);
	out = open_memstream(&printed, &plen);
	assert_int_equal(relay_config_print(out, &cfg, RELAY_CONFIG_PRINT_ALL),
	    0);
	assert_int_equal(fclose(out), 0);
	for (char *p = printed; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, n);
	assert_non_null(strstr(printed, "\ntls_security_level = dane\n"));
	assert_non_null(strstr(printed, "\nreport_recipient =\n"));
	free(printed);

	printed = NULL;
	out = open_memstream(&printed, &plen);
	assert_int_equal(relay_config_print_doc(out), 0);
	assert_int_equal(fclose(out), 0);
	lines = 0;
	for (char *p = printed; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, n + 2);
	assert_non_null(strstr(printed,
	    "| `retry_max` | duration (1s..7d) | "
	    "`4000s` |"));
	free(printed);
	relay_config_free(&cfg);
}

/* ---- TLS policy file ---- */

static void
test_tls_policy(void **state)
{
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX], path[] = "/tmp/danerelay-pol-XXXXXX";
	char text[256];
	int fd = mkstemp(path);
	const char pol[] = "# per-destination levels\n"
	                   "example.com dane-only\n"
	                   ".example.com may\n"
	                   "Sub.Example.COM. encrypt\n"
	                   "legacy.example   none   \n";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pol, sizeof(pol) - 1),
	    (ssize_t)sizeof(pol) - 1);
	assert_int_equal(close(fd), 0);
	(void)snprintf(text, sizeof(text), "tls_policy_file = %s\n", path);
	assert_int_equal(load(&cfg, text, err), 0);
	assert_int_equal(cfg.tls_policy_count, 4);
#define POL(d) relay_config_tls_policy(&cfg, d, strlen(d), 0)
	assert_int_equal(POL("example.com"), RELAY_TLS_DANE_ONLY);
	assert_int_equal(POL("EXAMPLE.com."), RELAY_TLS_DANE_ONLY);
	assert_int_equal(POL("a.example.com"), RELAY_TLS_MAY);
	assert_int_equal(POL("sub.example.com"), RELAY_TLS_ENCRYPT);
	assert_int_equal(POL("x.sub.example.com"), RELAY_TLS_MAY);
	assert_int_equal(POL("legacy.example"), RELAY_TLS_NONE);
	assert_int_equal(POL("other.org"), RELAY_TLS_DANE);
	assert_int_equal(POL("notexample.com"), RELAY_TLS_DANE);
	assert_int_equal(POL(""), RELAY_TLS_DANE);
#undef POL
	relay_config_free(&cfg);
	assert_int_equal(unlink(path), 0);
}

/* Each entry remembers FILE:LINE, so a decision can name its entry. */
static void
test_tls_policy_entry_file_line(void **state)
{
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX], path[] = "/tmp/danerelay-pol-XXXXXX";
	char text[256];
	int fd = mkstemp(path);
	const char pol[] = "# line 1: comment\n"
	                   "\n"
	                   "legacy.example none\r\n"
	                   "   # line 4: indented comment\n"
	                   ".example.com may\n"
	                   "example.com dane-only\n";
	const struct relay_tls_policy_entry *e;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pol, sizeof(pol) - 1),
	    (ssize_t)sizeof(pol) - 1);
	assert_int_equal(close(fd), 0);
	(void)snprintf(text, sizeof(text), "tls_policy_file = %s\n", path);
	assert_int_equal(load(&cfg, text, err), 0);
#define ENTRY(d) relay_config_tls_policy_entry(&cfg, d, strlen(d), 0, NULL)
	e = ENTRY("Legacy.Example.");
	assert_non_null(e);
	assert_int_equal(e->level, RELAY_TLS_NONE);
	assert_string_equal(e->file, path);
	assert_int_equal(e->line, 3);
	e = ENTRY("mx.a.example.com"); /* through the ".parent" entry */
	assert_non_null(e);
	assert_int_equal(e->level, RELAY_TLS_MAY);
	assert_string_equal(e->file, path);
	assert_int_equal(e->line, 5);
	e = ENTRY("example.com");
	assert_non_null(e);
	assert_int_equal(e->line, 6);
	/* The global level is no entry. */
	assert_null(ENTRY("other.org"));
	assert_null(ENTRY(""));
#undef ENTRY
	relay_config_free(&cfg);
	assert_int_equal(unlink(path), 0);
}

/* The parser alone keeps the name it was given and the line. */
static void
test_tls_policy_parse_file_line(void **state)
{
	const char text[] = "\n# c\nb.example verify\na.example none\n";
	struct relay_tls_policy_entry *e = NULL;
	size_t n = 0;
	char err[RELAY_CONFIG_ERRMAX] = "";

	(void)state;
	assert_int_equal(relay_tls_policy_parse("/etc/danerelay/tls_policy",
	                     (const uint8_t *)text, strlen(text), &e, &n, err),
	    0);
	assert_int_equal(n, 2);
	/* Sorted by domain: a.example first. */
	assert_string_equal(e[0].domain, "a.example");
	assert_string_equal(e[0].file, "/etc/danerelay/tls_policy");
	assert_int_equal(e[0].line, 4);
	assert_string_equal(e[1].domain, "b.example");
	assert_string_equal(e[1].file, "/etc/danerelay/tls_policy");
	assert_int_equal(e[1].line, 3);
	relay_tls_policy_free(e, n);
}

struct policy_case {
	const char *text;
	const char *err;
};

static const struct policy_case policy_cases[] = {
	{ "example.com\n", "p:1: expected \"domain level\"" },
	{ "example.com dane extra\n",
	    "p:1: unexpected \"extra\" (expected until=YYYY-MM-DD or "
	    "reason=\"...\")" },
	{ "\nexa mple.com dane\n",
	    "p:2: bad level \"mple.com\" (expected dane, dane-only, may, "
	    "encrypt, verify or none)" },
	/* Time-boxed exceptions: dates, quotes, unknown attributes. */
	{ "a.com may until=2027-02-29\n",
	    "p:1: bad date \"2027-02-29\" in until= (expected YYYY-MM-DD, a "
	    "real date)" },
	{ "a.com may until=2024-02-30\n",
	    "p:1: bad date \"2024-02-30\" in until= (expected YYYY-MM-DD, a "
	    "real date)" },
	{ "a.com may until=2027-13-01\n",
	    "p:1: bad date \"2027-13-01\" in until= (expected YYYY-MM-DD, a "
	    "real date)" },
	{ "a.com may until=2027-1-15\n",
	    "p:1: bad date \"2027-1-15\" in until= (expected YYYY-MM-DD, a "
	    "real date)" },
	{ "a.com may until=15.01.2027\n",
	    "p:1: bad date \"15.01.2027\" in until= (expected YYYY-MM-DD, a "
	    "real date)" },
	{ "a.com may until=1969-12-31\n",
	    "p:1: bad date \"1969-12-31\" in until= (expected YYYY-MM-DD, a "
	    "real date)" },
	{ "a.com may until=\n",
	    "p:1: bad date \"\" in until= (expected YYYY-MM-DD, a real "
	    "date)" },
	{ "a.com may until=2027-01-15 until=2027-01-16\n",
	    "p:1: until= given twice" },
	{ "a.com may owner=bob\n",
	    "p:1: unknown attribute \"owner\" (expected until= or reason=)" },
	{ "a.com may reason=\"rollover\n",
	    "p:1: reason= has no closing quote" },
	{ "a.com may reason=\"a\"b\n",
	    "p:1: text after the closing quote of reason=" },
	{ "a.com may reason=\"\"\n", "p:1: empty reason=" },
	{ "a.com may reason=\n", "p:1: empty reason=" },
	{ "a.com may reason=ab\"c\n",
	    "p:1: a quote inside an unquoted reason=" },
	{ "a.com may reason=\"a\tb\"\n", "p:1: control character in reason=" },
	{ "a.com may reason=x reason=y\n", "p:1: reason= given twice" },
	{ "ex!ample.com dane\n", "p:1: bad domain \"ex!ample.com\"" },
	{ "a..b dane\n", "p:1: bad domain \"a..b\"" },
	{ "example.com strict\n",
	    "p:1: bad level \"strict\" (expected dane, "
	    "dane-only, may, encrypt, verify or none)" },
	{ "a.com may\nA.COM dane\n", "p:2: duplicate domain a.com" },
};

static void
test_policy_error(void **state)
{
	const struct policy_case *c = *state;
	struct relay_tls_policy_entry *e = NULL;
	size_t n = 0;
	char err[RELAY_CONFIG_ERRMAX] = "";

	assert_int_equal(relay_tls_policy_parse("p", (const uint8_t *)c->text,
	                     strlen(c->text), &e, &n, err),
	    RELAY_CONFIG_EPOLICY);
	assert_string_equal(err, c->err);
	assert_null(e);
	assert_int_equal(n, 0);
}

/* until= and reason= as written, quotes and escapes undone. */
static void
test_tls_policy_attrs(void **state)
{
	const char text[] =
	    "broken.example may until=2027-01-15 reason=\"TLSA rollover "
	    "broken, ticket 4711\"\n"
	    "q.example none reason=\"say \\\"hi\\\" \\\\ ok\"   until=2024-02-29\n"
	    "w.example encrypt reason=ticket-12\n"
	    "plain.example verify\n";
	struct relay_tls_policy_entry *e = NULL;
	size_t n = 0;
	char err[RELAY_CONFIG_ERRMAX] = "";

	(void)state;
	assert_int_equal(relay_tls_policy_parse("p", (const uint8_t *)text,
	                     strlen(text), &e, &n, err),
	    0);
	assert_int_equal(n, 4);
	/* Sorted: broken, plain, q, w. */
	assert_string_equal(e[0].domain, "broken.example");
	assert_true(e[0].has_until);
	assert_int_equal(e[0].until_day, 20833); /* date(2027,1,15) - epoch */
	assert_string_equal(e[0].until, "2027-01-15");
	assert_string_equal(e[0].reason, "TLSA rollover broken, ticket 4711");
	assert_string_equal(e[1].domain, "plain.example");
	assert_false(e[1].has_until);
	assert_string_equal(e[1].until, "");
	assert_string_equal(e[1].reason, "");
	assert_string_equal(e[2].reason, "say \"hi\" \\ ok");
	assert_string_equal(e[2].until, "2024-02-29");
	assert_string_equal(e[3].reason, "ticket-12");
	assert_false(e[3].has_until);
	relay_tls_policy_free(e, n);
}

/*
 * The expiry boundary on the manual clock: an entry with until=2027-01-15
 * applies through 2027-01-15 23:59:59.999999 UTC and not a microsecond
 * later; then the ".parent" entry decides, and the expired one is named.
 */
static void
test_tls_policy_expiry(void **state)
{
	struct relay_config cfg;
	struct relay_clock_manual m;
	char err[RELAY_CONFIG_ERRMAX], path[] = "/tmp/danerelay-pol-XXXXXX";
	char text[256];
	int fd = mkstemp(path);
	const char pol[] =
	    "broken.example may until=2027-01-15 reason=\"t 4711\"\n"
	    ".example encrypt\n"
	    "gone.org none until=2027-01-15\n";
	const uint64_t day_end = 1800057600ull * 1000000u; /* 2027-01-16Z */
	const struct relay_tls_policy_entry *e, *expired;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pol, sizeof(pol) - 1),
	    (ssize_t)sizeof(pol) - 1);
	assert_int_equal(close(fd), 0);
	(void)snprintf(text, sizeof(text), "tls_policy_file = %s\n", path);
	assert_int_equal(load(&cfg, text, err), 0);

	relay_clock_manual_init(&m, 1000, day_end - 86400000000ull - 1);
#define NOW relay_clock_wall_us(&m.clock)
#define ENTRY(d)                                                               \
	relay_config_tls_policy_entry(&cfg, d, strlen(d), NOW, &expired)
	/* 2027-01-14 23:59:59.999999: one day left. */
	e = ENTRY("broken.example");
	assert_non_null(e);
	assert_null(expired);
	assert_int_equal(relay_tls_policy_days_left(e, NOW), 1);
	/* The whole of the last day. */
	relay_clock_manual_set_wall(&m, day_end - 86400000000ull);
	e = ENTRY("broken.example");
	assert_non_null(e);
	assert_int_equal(e->level, RELAY_TLS_MAY);
	assert_int_equal(relay_tls_policy_days_left(e, NOW), 0);
	relay_clock_manual_set_wall(&m, day_end - 1);
	e = ENTRY("broken.example");
	assert_non_null(e);
	assert_int_equal(e->level, RELAY_TLS_MAY);
	assert_true(relay_tls_policy_active(e, NOW));
	assert_null(expired);
	/* One microsecond later it is gone: the parent entry decides. */
	relay_clock_manual_advance(&m, 1);
	e = ENTRY("broken.example");
	assert_non_null(e);
	assert_int_equal(e->level, RELAY_TLS_ENCRYPT);
	assert_int_equal(e->line, 2);
	assert_non_null(expired);
	assert_int_equal(expired->line, 1);
	assert_string_equal(expired->reason, "t 4711");
	assert_false(relay_tls_policy_active(expired, NOW));
	assert_int_equal(relay_tls_policy_days_left(expired, NOW), -1);
	/* Without a parent entry: the global level, and the expired entry. */
	e = ENTRY("gone.org");
	assert_null(e);
	assert_non_null(expired);
	assert_string_equal(expired->domain, "gone.org");
	assert_int_equal(relay_config_tls_policy(&cfg, "gone.org", 8, NOW),
	    RELAY_TLS_DANE);
	/* An entry without until= never expires. */
	e = ENTRY("x.example");
	assert_non_null(e);
	assert_null(expired);
#undef ENTRY
#undef NOW
	relay_config_free(&cfg);
	assert_int_equal(unlink(path), 0);
}

/* policy_exceptions_require_reason = yes: an entry without reason= is a
 * configuration error naming FILE:LINE; with reasons everywhere it loads. */
static void
test_tls_policy_require_reason(void **state)
{
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX], want[RELAY_CONFIG_ERRMAX];
	char path[] = "/tmp/danerelay-pol-XXXXXX", text[300];
	int fd = mkstemp(path);
	const char pol[] = "a.example may reason=\"ticket 1\"\n"
	                   "b.example none\n";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pol, sizeof(pol) - 1),
	    (ssize_t)sizeof(pol) - 1);
	assert_int_equal(close(fd), 0);
	(void)snprintf(text, sizeof(text), "tls_policy_file = %s\n", path);
	assert_int_equal(load(&cfg, text, err), 0);
	assert_false(cfg.policy_exceptions_require_reason);
	relay_config_free(&cfg);
	(void)snprintf(text, sizeof(text),
	    "policy_exceptions_require_reason = yes\ntls_policy_file = %s\n",
	    path);
	assert_int_equal(load(&cfg, text, err), RELAY_CONFIG_EPOLICY);
	(void)snprintf(want, sizeof(want),
	    "%s:2: entry for b.example has no reason=\"...\" "
	    "(policy_exceptions_require_reason = yes)",
	    path);
	assert_string_equal(err, want);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pol, 32), 32); /* the first line only */
	assert_int_equal(close(fd), 0);
	assert_int_equal(load(&cfg, text, err), 0);
	assert_true(cfg.policy_exceptions_require_reason);
	relay_config_free(&cfg);
	assert_int_equal(unlink(path), 0);
}

/* ---- mynetworks ---- */

static void
test_mynetworks(void **state)
{
	struct relay_config cfg;
	char err[RELAY_CONFIG_ERRMAX];
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };

	(void)state;
	assert_int_equal(load(&cfg,
	                     "mynetworks = 127.0.0.0/8, "
	                     "192.168.1.128/25, [2001:db8::]/33\n",
	                     err),
	    0);
#define V4(s, want)                                                            \
	do {                                                                   \
		assert_int_equal(inet_pton(AF_INET, s, &in.sin_addr), 1);      \
		assert_int_equal(relay_config_mynetworks_match(&cfg,           \
		                     (struct sockaddr *)&in),                  \
		    want);                                                     \
	} while (0)
#define V6(s, want)                                                            \
	do {                                                                   \
		assert_int_equal(inet_pton(AF_INET6, s, &in6.sin6_addr), 1);   \
		assert_int_equal(relay_config_mynetworks_match(&cfg,           \
		                     (struct sockaddr *)&in6),                 \
		    want);                                                     \
	} while (0)
	V4("127.0.0.1", true);
	V4("127.255.255.255", true);
	V4("128.0.0.1", false);
	V4("192.168.1.128", true);
	V4("192.168.1.255", true);
	V4("192.168.1.127", false);
	V6("::ffff:127.0.0.9", true); /* IPv4-mapped */
	V6("::ffff:10.0.0.1", false);
	V6("2001:db8:7fff::1", true);
	V6("2001:db8:8000::1", false);
	V6("::1", false);
#undef V4
#undef V6
	relay_config_free(&cfg);
}

int
main(void)
{
	const size_t nv = sizeof(value_cases) / sizeof(value_cases[0]);
	const size_t nf = sizeof(file_cases) / sizeof(file_cases[0]);
	const size_t np = sizeof(policy_cases) / sizeof(policy_cases[0]);
	const size_t nd = sizeof(duration_cases) / sizeof(duration_cases[0]);
	static void (*const duration_uses[])(void **) = {
		test_duration_parser,
		test_duration_config,
		test_duration_cli,
	};
	static const char *const duration_use_names[] = {
		"parser",
		"config",
		"cli",
	};
	const size_t nu = sizeof(duration_uses) / sizeof(duration_uses[0]);
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_table_sorted_and_documented),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_file_syntax),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_print_all_and_doc),
		cmocka_unit_test(test_tls_policy),
		cmocka_unit_test(test_tls_policy_entry_file_line),
		cmocka_unit_test(test_tls_policy_parse_file_line),
		cmocka_unit_test(test_tls_policy_attrs),
		cmocka_unit_test(test_tls_policy_expiry),
		cmocka_unit_test(test_tls_policy_require_reason),
		cmocka_unit_test(test_mynetworks),
		cmocka_unit_test(test_nexthop_fields),
		cmocka_unit_test(test_outbound_checks),
		cmocka_unit_test(test_helo_name_follows_myhostname),
	};
	const size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	struct CMUnitTest *t =
	    calloc(nfixed + nv + nf + np + nu * nd, sizeof(*t));
	char(*names)[96] = calloc(nv + nf + np + nu * nd, sizeof(*names));
	size_t k = 0;
	int rc;

	if (t == NULL || names == NULL) {
		free(t);
		free(names);
		return 1;
	}
	for (size_t i = 0; i < nfixed; i++)
		t[k++] = fixed[i];
	for (size_t i = 0; i < nv; i++, k++) {
		(void)snprintf(names[k - nfixed], sizeof(names[0]),
		    "value %s = %s", value_cases[i].name, value_cases[i].value);
		t[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_value,
		    (void *)(uintptr_t)&value_cases[i]);
		t[k].name = names[k - nfixed];
	}
	for (size_t i = 0; i < nf; i++, k++) {
		(void)snprintf(names[k - nfixed], sizeof(names[0]),
		    "file error %zu", i + 1);
		t[k] = (struct CMUnitTest)
		    cmocka_unit_test_prestate(test_file_error,
		        (void *)(uintptr_t)&file_cases[i]);
		t[k].name = names[k - nfixed];
	}
	for (size_t i = 0; i < np; i++, k++) {
		(void)snprintf(names[k - nfixed], sizeof(names[0]),
		    "policy error %zu", i + 1);
		t[k] = (struct CMUnitTest)
		    cmocka_unit_test_prestate(test_policy_error,
		        (void *)(uintptr_t)&policy_cases[i]);
		t[k].name = names[k - nfixed];
	}
	for (size_t u = 0; u < nu; u++) {
		for (size_t i = 0; i < nd; i++, k++) {
			(void)snprintf(names[k - nfixed], sizeof(names[0]),
			    "duration %s \"%s\"", duration_use_names[u],
			    duration_cases[i].text);
			t[k] = (struct CMUnitTest)
			    cmocka_unit_test_prestate(duration_uses[u],
			        (void *)(uintptr_t)&duration_cases[i]);
			t[k].name = names[k - nfixed];
		}
	}
	rc = _cmocka_run_group_tests("config", t, k, NULL, NULL);
	free(t);
	free(names);
	return rc;
}
