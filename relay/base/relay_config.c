/*
 * relay_config: the parameter table and everything it drives.
 *
 * Adding a parameter = one field in struct relay_config (relay_config.h)
 * and one row in relay_config_table[] below (kept sorted by name). Its
 * default is written as text and goes through the same parser as the
 * file, so a default is valid by construction (a unit test loads them
 * all), and `danerelay config -d` prints exactly what the table says.
 */
#include "relay_config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A configuration or policy file larger than this is refused. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* One logical line (continuations joined). */
#define CONFIG_LINE_MAX (64 * 1024)
/* RFC 1035 2.3.4: 255 octets on the wire, 253 in text. */
#define DOMAIN_TEXT_MAX 253

#define MS_S 1000LL
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)

#define F(field) offsetof(struct relay_config, field)
#define NOCOUNT 0

static const char *const log_level_words[] = { "info", "debug", NULL };
/* Index = enum relay_tls_level; the global level refuses "none". */
static const char *const tls_level_words[] = { "dane", "dane-only", "may",
	"encrypt", "verify", NULL };
static const char *const tls_required_header_words[] = { "ignore", "honour",
	NULL };
static const char *const tls_policy_words[] = { "dane", "dane-only", "may",
	"encrypt", "verify", "none", NULL };
/* Index = enum relay_inet_protocols, Postfix's inet_protocols words. */
static const char *const inet_protocols_words[] = { "all", "ipv4", "ipv6",
	NULL };
/* Index = enum relay_address_preference (Postfix smtp_address_preference). */
static const char *const address_preference_words[] = { "any", "ipv4", "ipv6",
	NULL };

static const struct relay_config_param relay_config_table[] = {
	{ "connection_cache_time", RELAY_CONFIG_DURATION, "2s", NULL, 0,
	    300 * MS_S, NULL, F(connection_cache_time_ms), NOCOUNT,
	    "How long an idle, verified outbound connection is kept for the "
	    "next message to the same MX host, address and TLS verdict "
	    "(0 disables reuse)." },
	{ "delay_warning_time", RELAY_CONFIG_DURATION, "4h", NULL, 0,
	    365 * MS_D, NULL, F(delay_warning_time_ms), NOCOUNT,
	    "After this time in the queue the sender gets one RFC 3464 "
	    "\"delayed\" DSN, when NOTIFY allows it (0 disables)." },
	{ "destination_concurrency_limit", RELAY_CONFIG_INT, "20", NULL, 1,
	    1000, NULL, F(destination_concurrency_limit), NOCOUNT,
	    "Maximum parallel deliveries to one destination domain." },
	{ "dns_forwarders", RELAY_CONFIG_FWDLIST, "", NULL, 0, 32, NULL,
	    F(dns_forwarders), F(dns_forwarders_count),
	    "Forward DNS queries to these resolvers (`addr[@port]`, e.g. "
	    "`127.0.0.1@5353`) instead of recursing; answers are still "
	    "DNSSEC-validated in process." },
	{ "dns_resolver_config", RELAY_CONFIG_PATH, "", NULL, 0, 0, NULL,
	    F(dns_resolver_config), NOCOUNT,
	    "An unbound.conf-format file handed to libunbound "
	    "(`ub_ctx_config`): trust anchors, stub and forward zones." },
	{ "dns_selftest_interval", RELAY_CONFIG_DURATION, "10m", NULL, MS_M,
	    MS_D, NULL, F(dns_selftest_interval_ms), NOCOUNT,
	    "How often the DNSSEC self-test runs after the one at start." },
	{ "dns_selftest_name", RELAY_CONFIG_STRING, ".", NULL, 0, 0, NULL,
	    F(dns_selftest_name), NOCOUNT,
	    "A name whose SOA must validate as secure under the configured "
	    "trust anchor (the root by default). When it does not, deliveries "
	    "whose policy depends on DNSSEC are deferred." },
	{ "dns_trust_anchor_file", RELAY_CONFIG_PATH, "/usr/share/dns/root.key",
	    NULL, 0, 0, NULL, F(dns_trust_anchor_file), NOCOUNT,
	    "DNSSEC trust anchor file (DS or DNSKEY records; Debian's "
	    "dns-root-data provides the root's). Empty: only anchors from "
	    "dns_resolver_config." },
	{ "in_flow_delay", RELAY_CONFIG_DURATION, "1s", NULL, 0, 10 * MS_S,
	    NULL, F(in_flow_delay_ms), NOCOUNT,
	    "Time to pause before accepting a new message (the reply to MAIL "
	    "FROM) when the message arrival rate exceeds the delivery rate, as "
	    "Postfix's in_flow_delay: each message the scheduler takes on for "
	    "delivery lets one more in at once, and while no due message waits "
	    "for the scheduler every new one comes in at once; a message that "
	    "finds none of that waits this long, then is accepted all the same "
	    "(0 disables)." },
	{ "inet_protocols", RELAY_CONFIG_ENUM, "all", NULL, 0, 0,
	    inet_protocols_words, F(inet_protocols), NOCOUNT,
	    "Address families for outbound SMTP (Postfix inet_protocols): "
	    "`all`, `ipv4` or `ipv6`. With `ipv4` no AAAA lookup is made and no "
	    "IPv6 address is ever tried; with `ipv6` the same for A and IPv4. "
	    "TLSA lookups are the same either way." },
	{ "initial_destination_concurrency", RELAY_CONFIG_INT, "5", NULL, 1,
	    1000, NULL, F(initial_destination_concurrency), NOCOUNT,
	    "Parallel deliveries a destination domain starts with, as "
	    "Postfix's initial_destination_concurrency: each delivery that "
	    "reaches a server allows one more, up to "
	    "destination_concurrency_limit, so a domain that fails every "
	    "attempt costs this many handshakes, not the limit." },
	{ "listen", RELAY_CONFIG_ADDRLIST, "127.0.0.1:10025", NULL, 1, 16, NULL,
	    F(listen), F(listen_count),
	    "Addresses the SMTP server listens on: `ipv4:port` or "
	    "`[ipv6]:port`, comma separated." },
	{ "log_file", RELAY_CONFIG_PATH, "", NULL, 0, 0, NULL, F(log_file),
	    NOCOUNT,
	    "Also append log lines to this file (stderr always gets them)." },
	{ "log_level", RELAY_CONFIG_ENUM, "info", NULL, 0, 0, log_level_words,
	    F(log_level), NOCOUNT,
	    "`info`: one line per event; `debug`: also state changes and "
	    "the inputs of every DANE decision." },
	{ "max_connections", RELAY_CONFIG_INT, "100", NULL, 1, 100000, NULL,
	    F(max_connections), NOCOUNT,
	    "Maximum simultaneous inbound SMTP connections." },
	{ "max_connections_per_client", RELAY_CONFIG_INT, "50", NULL, 1, 100000,
	    NULL, F(max_connections_per_client), NOCOUNT,
	    "Maximum simultaneous inbound connections from one client "
	    "address." },
	{ "max_queue_lifetime", RELAY_CONFIG_DURATION, "5d", NULL, 0,
	    365 * MS_D, NULL, F(max_queue_lifetime_ms), NOCOUNT,
	    "A recipient still undelivered after this time bounces "
	    "(0: bounce after the first failure)." },
	{ "max_recipients", RELAY_CONFIG_INT, "1000", NULL, 1, 100000, NULL,
	    F(max_recipients), NOCOUNT,
	    "Maximum recipients per message (RFC 5321 4.5.3.1.8 requires at "
	    "least 100)." },
	{ "message_size_limit", RELAY_CONFIG_SIZE, "10240000", NULL, 1024,
	    1024LL * 1024 * 1024, NULL, F(message_size_limit), NOCOUNT,
	    "Largest message accepted, in bytes (`k`, `m` suffixes); "
	    "advertised with the SIZE extension (RFC 1870)." },
	{ "metrics_listen", RELAY_CONFIG_ADDRLIST, "", NULL, 0, 4, NULL,
	    F(metrics_listen), F(metrics_listen_count),
	    "Addresses of the Prometheus metrics endpoint (`GET /metrics`, "
	    "text format 0.0.4), e.g. `127.0.0.1:9325`; empty: off. Only "
	    "127.0.0.1, ::1 and mynetworks clients are answered." },
	{ "mta_sts_ca_file", RELAY_CONFIG_PATH,
	    "/etc/ssl/certs/ca-certificates.crt", NULL, 0, 0, NULL,
	    F(mta_sts_ca_file), NOCOUNT,
	    "CA bundle for MTA-STS (RFC 8461): the HTTPS policy fetch and, under "
	    "an `enforce` policy (and for the report in `testing` mode), the MX "
	    "host's certificate. Empty: the TLS library's default store. A "
	    "reload (SIGHUP) reads it again." },
	{ "mta_sts_check_interval", RELAY_CONFIG_DURATION, "10m", NULL, MS_S,
	    MS_D, NULL, F(mta_sts_check_interval_ms), NOCOUNT,
	    "How long a domain's MTA-STS answer (policy id, or no policy) is "
	    "trusted before its `_mta-sts` TXT record is checked again, in the "
	    "background; a changed id fetches the policy again." },
	{ "mta_sts_enable", RELAY_CONFIG_BOOL, "yes", NULL, 0, 0, NULL,
	    F(mta_sts_enable), NOCOUNT,
	    "Apply MTA-STS policies (RFC 8461) to MX hosts without DANE under "
	    "the `dane` level (global or per destination; any other level is "
	    "left alone): DANE > MTA-STS enforce > opportunistic TLS." },
	{ "mta_sts_timeout", RELAY_CONFIG_DURATION, "10s", NULL, MS_S, 2 * MS_M,
	    NULL, F(mta_sts_timeout_ms), NOCOUNT,
	    "MTA-STS policy fetch: connection set-up and whole transfer "
	    "(RFC 8461 3.3), each." },
	{ "myhostname", RELAY_CONFIG_STRING, NULL,
	    "the host name "
	    "(gethostname)",
	    0, 0, NULL, F(myhostname), NOCOUNT,
	    "Name used in the SMTP greeting, EHLO and Received headers." },
	{ "mynetworks", RELAY_CONFIG_CIDRLIST, "127.0.0.0/8, [::1]/128", NULL,
	    1, 256, NULL, F(mynetworks), F(mynetworks_count),
	    "Clients allowed to relay; others get 554 5.7.1 and nothing is "
	    "queued." },
	{ "notify_relayhost", RELAY_CONFIG_NEXTHOP, "", NULL, 0, 0, NULL,
	    F(notify_relayhost), NOCOUNT,
	    "Where mail danerelay generates itself (DSNs, delay warnings, "
	    "reports) goes: `[host]` or `[host]:port` (port 25 by default; "
	    "an address or a host name, no MX lookup), usually the site's "
	    "Postfix (`[127.0.0.1]:25`), over opportunistic STARTTLS. Empty: "
	    "delivered through DNS and DANE like any other mail." },
	{ "policy_exceptions_require_reason", RELAY_CONFIG_BOOL, "no", NULL, 0,
	    0, NULL, F(policy_exceptions_require_reason), NOCOUNT,
	    "With `yes`, every tls_policy_file entry must carry "
	    "`reason=\"...\"`; an entry without one is a configuration error "
	    "(serve refuses to start or to reload, `danerelay check` reports "
	    "it)." },
	{ "report_interval", RELAY_CONFIG_DURATION, "1d", NULL, MS_M,
	    365 * MS_D, NULL, F(report_interval_ms), NOCOUNT,
	    "How often the deferred-delivery report is mailed to "
	    "report_recipient." },
	{ "report_recipient", RELAY_CONFIG_STRING, "", NULL, 0, 0, NULL,
	    F(report_recipient), NOCOUNT,
	    "Address that receives the deferred-delivery report (empty: "
	    "none)." },
	{ "retry_max", RELAY_CONFIG_DURATION, "4000s", NULL, MS_S, 7 * MS_D,
	    NULL, F(retry_max_ms), NOCOUNT,
	    "Longest time between two attempts for a deferred recipient "
	    "(Postfix maximal_backoff_time)." },
	{ "retry_min", RELAY_CONFIG_DURATION, "300s", NULL, MS_S, 7 * MS_D,
	    NULL, F(retry_min_ms), NOCOUNT,
	    "Shortest time between two attempts; the wait doubles up to "
	    "retry_max (Postfix minimal_backoff_time)." },
	{ "routing_monitor_enable", RELAY_CONFIG_BOOL, "yes", NULL, 0, 0, NULL,
	    F(routing_monitor_enable), NOCOUNT,
	    "Remember, per destination domain, its MX hosts, their addresses, "
	    "the DNSSEC status of the lookups, the TLSA RRset and the keys the "
	    "hosts presented, and log `event=routing-change` when a delivery "
	    "finds them changed (README \"Routing changes\"; kept in "
	    "`spool_dir/routing-monitor`). Read at start: a change takes effect "
	    "at the next start." },
	{ "routing_monitor_size", RELAY_CONFIG_INT, "100000", NULL, 100,
	    10000000, NULL, F(routing_monitor_size), NOCOUNT,
	    "Destination domains the routing monitor remembers; the least "
	    "recently used is forgotten beyond this (under 100 bytes each on "
	    "disk). Read at start." },
	{ "run_user", RELAY_CONFIG_STRING, "danerelay", NULL, 0, 0, NULL,
	    F(run_user), NOCOUNT,
	    "Unprivileged user the daemon switches to when started as root." },
	{ "shutdown_timeout", RELAY_CONFIG_DURATION, "30s", NULL, 0, 10 * MS_M,
	    NULL, F(shutdown_timeout_ms), NOCOUNT,
	    "On SIGTERM, how long deliveries in flight may take to finish." },
	{ "smtp_address_preference", RELAY_CONFIG_ENUM, "any", NULL, 0, 0,
	    address_preference_words, F(smtp_address_preference), NOCOUNT,
	    "The order in which an MX host's addresses are tried when it has "
	    "both (Postfix smtp_address_preference): `ipv6` or `ipv4` first, "
	    "each family in answer order, or `any`: random order, the families "
	    "alternating from a random first one (as Postfix's "
	    "smtp_balance_inet_protocols), so that an outage of one family never "
	    "stops delivery over the other. No effect unless inet_protocols is "
	    "`all`." },
	{ "smtp_bind_address", RELAY_CONFIG_STRING, "", NULL, 0, 0, NULL,
	    F(smtp_bind_address), NOCOUNT,
	    "Outbound: the local IPv4 address that SMTP connections to IPv4 "
	    "addresses come from (an address literal; empty: the kernel "
	    "chooses). When it cannot be bound the attempt is deferred (4.4.0), "
	    "never made from another address." },
	{ "smtp_bind_address6", RELAY_CONFIG_STRING, "", NULL, 0, 0, NULL,
	    F(smtp_bind_address6), NOCOUNT,
	    "Outbound: the local IPv6 address for connections to IPv6 "
	    "addresses, as smtp_bind_address (no brackets)." },
	{ "smtp_connect_timeout", RELAY_CONFIG_DURATION, "30s", NULL, MS_S,
	    MS_H, NULL, F(smtp_connect_timeout_ms), NOCOUNT,
	    "Outbound: TCP connection set-up." },
	{ "smtp_data_done_timeout", RELAY_CONFIG_DURATION, "600s", NULL, MS_S,
	    MS_H, NULL, F(smtp_data_done_timeout_ms), NOCOUNT,
	    "Outbound: reply to the final \".\" (RFC 5321 4.5.3.2.6)." },
	{ "smtp_data_init_timeout", RELAY_CONFIG_DURATION, "120s", NULL, MS_S,
	    MS_H, NULL, F(smtp_data_init_timeout_ms), NOCOUNT,
	    "Outbound: reply to DATA (RFC 5321 4.5.3.2.4)." },
	{ "smtp_data_xfer_timeout", RELAY_CONFIG_DURATION, "180s", NULL, MS_S,
	    MS_H, NULL, F(smtp_data_xfer_timeout_ms), NOCOUNT,
	    "Outbound: each write of message content (RFC 5321 4.5.3.2.5)." },
	{ "smtp_helo_name", RELAY_CONFIG_STRING, NULL, "`myhostname`", 0, 0,
	    NULL, F(smtp_helo_name), NOCOUNT,
	    "Outbound: the name sent in EHLO (and HELO) to MX hosts "
	    "(Postfix smtp_helo_name); one word, a host name or an address "
	    "literal like `[192.0.2.1]`." },
	{ "smtp_helo_timeout", RELAY_CONFIG_DURATION, "300s", NULL, MS_S, MS_H,
	    NULL, F(smtp_helo_timeout_ms), NOCOUNT,
	    "Outbound: greeting and EHLO reply (RFC 5321 4.5.3.2.1)." },
	{ "smtp_mail_timeout", RELAY_CONFIG_DURATION, "300s", NULL, MS_S, MS_H,
	    NULL, F(smtp_mail_timeout_ms), NOCOUNT,
	    "Outbound: reply to MAIL FROM (RFC 5321 4.5.3.2.2)." },
	{ "smtp_quit_timeout", RELAY_CONFIG_DURATION, "300s", NULL, MS_S, MS_H,
	    NULL, F(smtp_quit_timeout_ms), NOCOUNT,
	    "Outbound: reply to QUIT." },
	{ "smtp_rcpt_timeout", RELAY_CONFIG_DURATION, "300s", NULL, MS_S, MS_H,
	    NULL, F(smtp_rcpt_timeout_ms), NOCOUNT,
	    "Outbound: reply to RCPT TO (RFC 5321 4.5.3.2.3)." },
	{ "smtp_starttls_timeout", RELAY_CONFIG_DURATION, "300s", NULL, MS_S,
	    MS_H, NULL, F(smtp_starttls_timeout_ms), NOCOUNT,
	    "Outbound: STARTTLS reply and TLS handshake." },
	{ "smtpd_min_data_rate", RELAY_CONFIG_INT, "500", NULL, 1, 1000000000,
	    NULL, F(smtpd_min_data_rate), NOCOUNT,
	    "Inbound: slowest content transfer, in bytes per second: the "
	    "content of one message must arrive within smtpd_timeout plus its "
	    "size at this rate (Postfix smtpd_min_data_rate)." },
	{ "smtpd_reject_connection_limit", RELAY_CONFIG_INT, "10", NULL, 1,
	    100000, NULL, F(smtpd_reject_connection_limit), NOCOUNT,
	    "Inbound: simultaneous connections from clients outside "
	    "mynetworks (answered 554 5.7.1); counted apart from "
	    "max_connections, so they never lock out mynetworks clients." },
	{ "smtpd_reject_timeout", RELAY_CONFIG_DURATION, "10s", NULL, MS_S,
	    MS_H, NULL, F(smtpd_reject_timeout_ms), NOCOUNT,
	    "Inbound: a client outside mynetworks is disconnected this long "
	    "after its 554 greeting if it has not sent QUIT." },
	{ "smtpd_starttls_timeout", RELAY_CONFIG_DURATION, "300s", NULL, MS_S,
	    MS_H, NULL, F(smtpd_starttls_timeout_ms), NOCOUNT,
	    "Inbound: the whole TLS handshake after STARTTLS." },
	{ "smtpd_timeout", RELAY_CONFIG_DURATION, "300s", NULL, MS_S, MS_H,
	    NULL, F(smtpd_timeout_ms), NOCOUNT,
	    "Inbound: waiting for a command or content from the client "
	    "(RFC 5321 4.5.3.2.7: at least 5 minutes); also the deadline for "
	    "a whole command and its reply, however slowly its bytes arrive "
	    "(Postfix smtpd_per_request_deadline)." },
	{ "smtputf8_enable", RELAY_CONFIG_BOOL, "yes", NULL, 0, 0, NULL,
	    F(smtputf8_enable), NOCOUNT,
	    "Advertise SMTPUTF8 (RFC 6531) to the client, and convert a UTF-8 "
	    "recipient domain to A-labels (IDNA2008, UTS #46 non-transitional) for "
	    "the MX, address and TLSA lookups, SNI and DANE name checks; an invalid "
	    "one bounces (5.1.2). With `no` nothing is converted and a UTF-8 "
	    "recipient domain bounces (5.6.7)." },
	{ "spool_dir", RELAY_CONFIG_PATH, "/var/spool/danerelay", NULL, 0, 0,
	    NULL, F(spool_dir), NOCOUNT,
	    "Queue directory (relay/QUEUE.md); one `serve` per directory." },
	{ "tls_ca_file", RELAY_CONFIG_PATH,
	    "/etc/ssl/certs/ca-certificates.crt", NULL, 0, 0, NULL,
	    F(tls_ca_file), NOCOUNT,
	    "CA bundle for the `verify` level (WebPKI), unused by DANE." },
	{ "tls_cert_file", RELAY_CONFIG_PATH, "", NULL, 0, 0, NULL,
	    F(tls_cert_file), NOCOUNT,
	    "Inbound STARTTLS certificate chain (PEM); with tls_key_file. "
	    "Empty: no inbound STARTTLS." },
	{ "tls_key_file", RELAY_CONFIG_PATH, "", NULL, 0, 0, NULL,
	    F(tls_key_file), NOCOUNT, "Private key for tls_cert_file (PEM)." },
	{ "tls_policy_file", RELAY_CONFIG_PATH, "", NULL, 0, 0, NULL,
	    F(tls_policy_file), NOCOUNT,
	    "Per-destination levels: lines `domain level [until=YYYY-MM-DD] "
	    "[reason=\"...\"]`; `.example.com` matches every subdomain; levels "
	    "as tls_security_level plus `none`. An entry with `until=` applies "
	    "through the end of that day (UTC), then no longer (logged once as "
	    "`event=policy-exception-expired`); `reason=` is logged with every "
	    "delivery it decides." },
	{ "tls_required_header", RELAY_CONFIG_ENUM, "ignore", NULL, 0, 0,
	    tls_required_header_words, F(tls_required_header), NOCOUNT,
	    "What a `TLS-Required: No` header field (RFC 8689 4.2.2) does. "
	    "`ignore`: nothing; every message gets the operator's TLS policy. "
	    "`honour`: the sender's request is logged and lets such a message "
	    "skip the recipient domain's MTA-STS policy (opportunistic TLS "
	    "instead), but never the DANE authentication that the policy "
	    "requires for a domain with usable TLSA records; a REQUIRETLS "
	    "message ignores the field (RFC 8689 4.2.2). The default is "
	    "`ignore` because the header is unauthenticated: anyone who can "
	    "put mail into the relay could otherwise lower its protection." },
	{ "tls_security_level", RELAY_CONFIG_ENUM, "dane", NULL, 0, 0,
	    tls_level_words, F(tls_security_level), NOCOUNT,
	    "`dane` (RFC 7672: DANE where TLSA is usable, else opportunistic), "
	    "`dane-only`, `may`, `encrypt` or `verify`." },
	{ "tlsrpt_ca_file", RELAY_CONFIG_PATH, "", NULL, 0, 0, NULL,
	    F(tlsrpt_ca_file), NOCOUNT,
	    "CA bundle that authenticates the HTTPS servers of `https:` TLS "
	    "report addresses (RFC 8460 5.2). Empty: the system's CA store." },
	{ "tlsrpt_contact", RELAY_CONFIG_STRING, "", NULL, 0, 0, NULL,
	    F(tlsrpt_contact), NOCOUNT,
	    "`contact-info` of the TLS reports (RFC 8460 4.4). Empty: "
	    "`postmaster@` myhostname." },
	{ "tlsrpt_enable", RELAY_CONFIG_BOOL, "yes", NULL, 0, 0, NULL,
	    F(tlsrpt_enable), NOCOUNT,
	    "Count every outbound TLS session per policy domain and UTC day "
	    "(spool_dir/tlsrpt/), and send the daily RFC 8460 TLS reports to "
	    "the domains that publish a `_smtp._tls` TXT record." },
	{ "tlsrpt_organization", RELAY_CONFIG_STRING, "", NULL, 0, 0, NULL,
	    F(tlsrpt_organization), NOCOUNT,
	    "`organization-name` of the TLS reports. Empty: myhostname." },
	{ "tlsrpt_sender", RELAY_CONFIG_STRING, "", NULL, 0, 0, NULL,
	    F(tlsrpt_sender), NOCOUNT,
	    "Envelope sender and From: of mailed TLS reports. Empty: "
	    "`postmaster@` myhostname." },
	{ "tlsrpt_submitter", RELAY_CONFIG_STRING, "", NULL, 0, 0, NULL,
	    F(tlsrpt_submitter), NOCOUNT,
	    "The submitter of the TLS reports: the domain in `report-id` and "
	    "`TLS-Report-Submitter` (RFC 8460 4.4, 5.3). Empty: myhostname." },
};

#define TABLE_N (sizeof(relay_config_table) / sizeof(relay_config_table[0]))

_Static_assert(sizeof(enum relay_tls_level) == sizeof(int),
    "enum fields are stored as int");
_Static_assert(sizeof(enum relay_config_log_level) == sizeof(int),
    "enum fields are stored as int");
_Static_assert(sizeof(enum relay_inet_protocols) == sizeof(int),
    "enum fields are stored as int");
_Static_assert(sizeof(enum relay_address_preference) == sizeof(int),
    "enum fields are stored as int");
_Static_assert(sizeof(enum relay_tls_required_header) == sizeof(int),
    "enum fields are stored as int");

const char *
relay_config_strerror(int err)
{
	switch (err) {
	case RELAY_CONFIG_OK:
		return "success";
	case RELAY_CONFIG_ENOMEM:
		return "out of memory";
	case RELAY_CONFIG_EIO:
		return "cannot read file";
	case RELAY_CONFIG_ESYNTAX:
		return "syntax error";
	case RELAY_CONFIG_EUNKNOWN:
		return "unknown parameter";
	case RELAY_CONFIG_EVALUE:
		return "bad value";
	case RELAY_CONFIG_EDUP:
		return "duplicate parameter";
	case RELAY_CONFIG_EPOLICY:
		return "bad TLS policy file";
	default:
		return "unknown error";
	}
}

const char *
relay_tls_level_name(enum relay_tls_level level)
{
	switch (level) {
	case RELAY_TLS_DANE:
	case RELAY_TLS_DANE_ONLY:
	case RELAY_TLS_MAY:
	case RELAY_TLS_ENCRYPT:
	case RELAY_TLS_VERIFY:
	case RELAY_TLS_NONE:
		return tls_policy_words[level];
	}
	return "?";
}

const struct relay_config_param *
relay_config_params(size_t *count)
{
	*count = TABLE_N;
	return relay_config_table;
}

const struct relay_config_param *
relay_config_param_find(const char *name, size_t len)
{
	size_t lo = 0, hi = TABLE_N;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *n = relay_config_table[mid].name;
		int c = strncmp(n, name, len);

		if (c == 0 && n[len] != '\0')
			c = 1;
		if (c == 0)
			return &relay_config_table[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static size_t
param_index(const struct relay_config_param *p)
{
	return (size_t)(p - relay_config_table);
}

/* ---- small helpers ---- */

static void seterr(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
seterr(char *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	/* Truncation is fine: the message is for a human. */
	(void)vsnprintf(err, RELAY_CONFIG_ERRMAX, fmt, ap);
	va_end(ap);
}

static char *
memdup_str(const char *p, size_t len)
{
	char *s = malloc(len + 1);

	if (s != NULL) {
		memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

static bool
is_space(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static void
trim(const char **p, size_t *len)
{
	while (*len > 0 && is_space((uint8_t) * *p)) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && is_space((uint8_t)(*p)[*len - 1]))
		(*len)--;
}

static bool
word_eq(const char *p, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(p, word, len) == 0;
}

/* Decimal digits only, no sign, into *v; false on overflow or no digit. */
static bool
parse_u64(const char *p, size_t len, uint64_t *v, size_t *used)
{
	uint64_t n = 0;
	size_t i = 0;

	while (i < len && p[i] >= '0' && p[i] <= '9') {
		unsigned d = (unsigned)(p[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
		i++;
	}
	*v = n;
	*used = i;
	return i > 0;
}

/* ---- value parsers: (p, len) is the trimmed value; result in *out ---- */

int
relay_config_parse_duration(const char *p, size_t len, uint64_t *ms)
{
	uint64_t n, mult;
	size_t used;

	if (!parse_u64(p, len, &n, &used))
		return -1;
	p += used;
	len -= used;
	if (len == 0 || word_eq(p, len, "s"))
		mult = MS_S;
	else if (word_eq(p, len, "ms"))
		mult = 1;
	else if (word_eq(p, len, "m"))
		mult = MS_M;
	else if (word_eq(p, len, "h"))
		mult = MS_H;
	else if (word_eq(p, len, "d"))
		mult = MS_D;
	else if (word_eq(p, len, "w"))
		mult = 7 * MS_D;
	else
		return -1;
	if (n > UINT64_MAX / mult)
		return -1;
	*ms = n * mult;
	return 0;
}

static int
parse_size(const char *p, size_t len, uint64_t *bytes)
{
	uint64_t n, mult;
	size_t used;

	if (!parse_u64(p, len, &n, &used))
		return -1;
	p += used;
	len -= used;
	if (len == 0)
		mult = 1;
	else if (word_eq(p, len, "k"))
		mult = 1024;
	else if (word_eq(p, len, "m"))
		mult = 1024 * 1024;
	else if (word_eq(p, len, "g"))
		mult = 1024 * 1024 * 1024;
	else
		return -1;
	if (n > UINT64_MAX / mult)
		return -1;
	*bytes = n * mult;
	return 0;
}

static int
parse_port(const char *p, size_t len, uint16_t *port)
{
	uint64_t n;
	size_t used;

	if (!parse_u64(p, len, &n, &used) || used != len || n == 0 || n > 65535)
		return -1;
	*port = (uint16_t)n;
	return 0;
}

/* An IP literal (no brackets) into family/bytes. */
static int
parse_ip(const char *p, size_t len, int *family, uint8_t addr[16])
{
	char buf[INET6_ADDRSTRLEN + 1];

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, p, len);
	buf[len] = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, addr) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

/* "1.2.3.4:25" or "[v6]:25". */
static int
parse_hostport(const char *p, size_t len, struct relay_config_addr *a)
{
	const char *host, *port;
	size_t hlen, plen;
	uint8_t ip[16];
	int family;
	uint16_t pn;
	char htext[INET6_ADDRSTRLEN];
	int n;

	if (len > 0 && p[0] == '[') {
		const char *close = memchr(p, ']', len);
		if (close == NULL || (size_t)(close - p) + 1 >= len ||
		    close[1] != ':')
			return -1;
		host = p + 1;
		hlen = (size_t)(close - host);
		port = close + 2;
		plen = len - (size_t)(port - p);
		if (parse_ip(host, hlen, &family, ip) != 0 ||
		    family != AF_INET6)
			return -1;
	} else {
		const char *colon = memchr(p, ':', len);
		if (colon == NULL)
			return -1;
		host = p;
		hlen = (size_t)(colon - p);
		port = colon + 1;
		plen = len - hlen - 1;
		if (parse_ip(host, hlen, &family, ip) != 0 || family != AF_INET)
			return -1;
	}
	if (parse_port(port, plen, &pn) != 0)
		return -1;
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&a->sa;
		in->sin_family = AF_INET;
		in->sin_port = htons(pn);
		memcpy(&in->sin_addr, ip, 4);
		a->salen = sizeof(*in);
		(void)inet_ntop(AF_INET, ip, htext, sizeof(htext));
		n = snprintf(a->text, sizeof(a->text), "%s:%u", htext, pn);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->sa;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(pn);
		memcpy(&in6->sin6_addr, ip, 16);
		a->salen = sizeof(*in6);
		(void)inet_ntop(AF_INET6, ip, htext, sizeof(htext));
		n = snprintf(a->text, sizeof(a->text), "[%s]:%u", htext, pn);
	}
	return n > 0 && (size_t)n < sizeof(a->text) ? 0 : -1;
}

/* "10.0.0.0/8", "10.1.2.3", "[::1]/128", "::1/128", "[::1]". */
static int
parse_cidr(const char *p, size_t len, struct relay_config_cidr *c)
{
	const char *slash = memchr(p, '/', len);
	size_t alen = slash ? (size_t)(slash - p) : len;
	unsigned maxbits;
	uint64_t bits;
	size_t used;

	if (alen >= 2 && p[0] == '[' && p[alen - 1] == ']') {
		if (parse_ip(p + 1, alen - 2, &c->family, c->addr) != 0 ||
		    c->family != AF_INET6)
			return -1;
	} else if (parse_ip(p, alen, &c->family, c->addr) != 0) {
		return -1;
	}
	maxbits = c->family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		size_t blen = len - alen - 1;
		if (!parse_u64(slash + 1, blen, &bits, &used) || used != blen ||
		    bits > maxbits)
			return -1;
	} else {
		bits = maxbits;
	}
	c->prefix = (unsigned)bits;
	/* Clear host bits so that matching is a plain prefix compare. */
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = c->prefix > i * 8 ? c->prefix - i * 8 : 0;
		if (keep < 8)
			c->addr[i] &= (uint8_t)(0xff00u >> keep);
	}
	return 0;
}

/* unbound forward-addr syntax: "addr" or "addr@port". */
static int
parse_fwd(const char *p, size_t len, struct relay_config_fwd *f)
{
	const char *at = memchr(p, '@', len);
	size_t alen = at ? (size_t)(at - p) : len;
	uint8_t ip[16];
	int family;
	uint16_t port;

	if (parse_ip(p, alen, &family, ip) != 0)
		return -1;
	if (at != NULL && parse_port(at + 1, len - alen - 1, &port) != 0)
		return -1;
	if (len >= sizeof(f->text))
		return -1;
	memcpy(f->text, p, len);
	f->text[len] = '\0';
	return 0;
}

/* A host name as a next hop: LDH labels (and '_'), 1..63 octets each,
 * at most 253 in all (RFC 1035 2.3.4), one trailing dot allowed. */
static bool
nexthop_name_ok(const char *p, size_t len)
{
	if (len > 0 && p[len - 1] == '.')
		len--;
	if (len == 0 || len > DOMAIN_TEXT_MAX)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)p[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

int
relay_config_nexthop_parse(const char *p, size_t len,
    struct relay_config_nexthop *out)
{
	struct relay_config_nexthop nh;
	memset(&nh, 0, sizeof(nh));
	if (len == 0) {
		*out = nh;
		return 0;
	}
	/* Postfix relayhost: "[host]" skips the MX lookup. The unbracketed
	 * form means "look up MX records", which mail generated here must
	 * not depend on: refused. */
	if (p[0] != '[')
		return -1;
	const char *close = memchr(p, ']', len);
	if (close == NULL)
		return -1;
	const char *host = p + 1;
	size_t hlen = (size_t)(close - host);
	size_t rest = len - (size_t)(close - p) - 1;
	nh.port = RELAY_SMTP_PORT;
	if (rest > 0) {
		if (close[1] != ':' ||
		    parse_port(close + 2, rest - 1, &nh.port) != 0)
			return -1;
	}
	/* RFC 5321 4.1.3 writes an IPv6 literal "IPv6:addr"; Postfix
	 * accepts both spellings inside the brackets. */
	if (hlen > 5 && strncasecmp(host, "ipv6:", 5) == 0) {
		if (parse_ip(host + 5, hlen - 5, &nh.family, nh.addr) != 0 ||
		    nh.family != AF_INET6)
			return -1;
		nh.literal = true;
	} else if (parse_ip(host, hlen, &nh.family, nh.addr) == 0) {
		nh.literal = true;
	} else if (!nexthop_name_ok(host, hlen)) {
		return -1;
	}
	if (nh.literal) {
		(void)inet_ntop(nh.family, nh.addr, nh.host, sizeof(nh.host));
	} else {
		if (host[hlen - 1] == '.')
			hlen--;
		for (size_t i = 0; i < hlen; i++)
			nh.host[i] = (char)tolower((unsigned char)host[i]);
		nh.host[hlen] = '\0';
	}
	int n = snprintf(nh.text, sizeof(nh.text), "[%s]:%u", nh.host,
	    (unsigned)nh.port);
	if (n < 0 || (size_t)n >= sizeof(nh.text))
		return -1;
	nh.set = true;
	*out = nh;
	return 0;
}

/* Splits a list on commas and white space, calling fn for each item. */
typedef int (*item_fn)(const char *p, size_t len, void *out);

static int
parse_list(const char *p, size_t len, size_t elem, item_fn fn, void **arr,
    size_t *count)
{
	char *a = NULL;
	size_t n = 0;

	for (size_t i = 0; i < len;) {
		size_t j;

		while (i < len && (is_space((uint8_t)p[i]) || p[i] == ','))
			i++;
		if (i == len)
			break;
		j = i;
		while (j < len && !is_space((uint8_t)p[j]) && p[j] != ',')
			j++;
		{
			char *na = realloc(a, (n + 1) * elem);
			if (na == NULL) {
				free(a);
				return RELAY_CONFIG_ENOMEM;
			}
			a = na;
		}
		if (fn(p + i, j - i, a + n * elem) != 0) {
			free(a);
			return RELAY_CONFIG_EVALUE;
		}
		n++;
		i = j;
	}
	*arr = a;
	*count = n;
	return 0;
}

static int
item_addr(const char *p, size_t len, void *out)
{
	return parse_hostport(p, len, out);
}

static int
item_cidr(const char *p, size_t len, void *out)
{
	return parse_cidr(p, len, out);
}

static int
item_fwd(const char *p, size_t len, void *out)
{
	return parse_fwd(p, len, out);
}

static bool
printable_line(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)p[i];
		if (c < 0x20 && c != '\t')
			return false;
		if (c == 0x7f)
			return false;
	}
	return true;
}

/* A path made absolute against the working directory. */
static char *
make_path(const char *p, size_t len)
{
	char cwd[PATH_MAX];
	size_t clen;
	char *s;

	if (len == 0 || p[0] == '/')
		return memdup_str(p, len);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	while (len >= 2 && p[0] == '.' && p[1] == '/') {
		p += 2;
		len -= 2;
		while (len > 0 && p[0] == '/') {
			p++;
			len--;
		}
	}
	if (len == 1 && p[0] == '.')
		len = 0;
	clen = strlen(cwd);
	s = malloc(clen + 1 + len + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, cwd, clen);
	if (len > 0) {
		s[clen] = '/';
		memcpy(s + clen + 1, p, len);
		s[clen + 1 + len] = '\0';
	} else {
		s[clen] = '\0';
	}
	return s;
}

struct out {
	char *buf;
	size_t size, len;
	bool overflow;
};

static void out_add(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
out_add(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->size - o->len) {
		o->overflow = true;
		return;
	}
	o->len += (size_t)n;
}

/* Text describing what a type expects, for error messages. */
static const char *
expect_text(const struct relay_config_param *prm, char *buf, size_t size)
{
	struct out o = { buf, size, 0, false };

	buf[0] = '\0';
	switch (prm->type) {
	case RELAY_CONFIG_STRING:
		return "one line of text";
	case RELAY_CONFIG_PATH:
		return "a file name";
	case RELAY_CONFIG_BOOL:
		return "yes or no";
	case RELAY_CONFIG_INT:
		out_add(&o, "an integer from %" PRId64 " to %" PRId64, prm->min,
		    prm->max);
		return buf;
	case RELAY_CONFIG_DURATION:
		return "a duration like 300s, 5m, 4h, 5d within the allowed "
		       "range";
	case RELAY_CONFIG_SIZE:
		out_add(&o,
		    "a size in bytes (k, m suffixes) from %" PRId64
		    " to %" PRId64,
		    prm->min, prm->max);
		return buf;
	case RELAY_CONFIG_ADDRLIST:
		return "a list of ipv4:port or [ipv6]:port";
	case RELAY_CONFIG_CIDRLIST:
		return "a list of networks like 127.0.0.0/8, [::1]/128";
	case RELAY_CONFIG_FWDLIST:
		return "a list of addr or addr@port";
	case RELAY_CONFIG_NEXTHOP:
		return "[host] or [host]:port (brackets required), or nothing";
	case RELAY_CONFIG_ENUM:
		out_add(&o, "one of");
		for (size_t i = 0; prm->values[i] != NULL; i++)
			out_add(&o, "%s %s", i ? "," : "", prm->values[i]);
		return buf;
	}
	return "?";
}

static void *
field_ptr(struct relay_config *cfg, size_t off)
{
	return (char *)cfg + off;
}

static const void *
cfield_ptr(const struct relay_config *cfg, size_t off)
{
	return (const char *)cfg + off;
}

static void
free_field(struct relay_config *cfg, const struct relay_config_param *prm)
{
	switch (prm->type) {
	case RELAY_CONFIG_STRING:
	case RELAY_CONFIG_PATH:
	case RELAY_CONFIG_ADDRLIST:
	case RELAY_CONFIG_CIDRLIST:
	case RELAY_CONFIG_FWDLIST: {
		void **pp = field_ptr(cfg, prm->offset);
		free(*pp);
		*pp = NULL;
		break;
	}
	case RELAY_CONFIG_BOOL:
	case RELAY_CONFIG_INT:
	case RELAY_CONFIG_DURATION:
	case RELAY_CONFIG_SIZE:
	case RELAY_CONFIG_ENUM:
	case RELAY_CONFIG_NEXTHOP:
		break;
	}
}

/*
 * Parses the value (p, len, trimmed) of prm into cfg. Returns 0,
 * RELAY_CONFIG_EVALUE or RELAY_CONFIG_ENOMEM.
 */
static int
set_value(struct relay_config *cfg, const struct relay_config_param *prm,
    const char *p, size_t len)
{
	void *fp = field_ptr(cfg, prm->offset);
	uint64_t u;
	size_t used;

	if (!printable_line(p, len))
		return RELAY_CONFIG_EVALUE;
	switch (prm->type) {
	case RELAY_CONFIG_STRING:
	case RELAY_CONFIG_PATH: {
		char *s = prm->type == RELAY_CONFIG_PATH ? make_path(p, len)
		                                         : memdup_str(p, len);
		if (s == NULL)
			return RELAY_CONFIG_ENOMEM;
		free(*(char **)fp);
		*(char **)fp = s;
		return 0;
	}
	case RELAY_CONFIG_BOOL:
		if (word_eq(p, len, "yes"))
			*(bool *)fp = true;
		else if (word_eq(p, len, "no"))
			*(bool *)fp = false;
		else
			return RELAY_CONFIG_EVALUE;
		return 0;
	case RELAY_CONFIG_INT:
		if (!parse_u64(p, len, &u, &used) || used != len ||
		    u > (uint64_t)prm->max || (int64_t)u < prm->min)
			return RELAY_CONFIG_EVALUE;
		*(int64_t *)fp = (int64_t)u;
		return 0;
	case RELAY_CONFIG_DURATION:
		if (relay_config_parse_duration(p, len, &u) != 0 ||
		    u > (uint64_t)prm->max || u < (uint64_t)prm->min)
			return RELAY_CONFIG_EVALUE;
		*(uint64_t *)fp = u;
		return 0;
	case RELAY_CONFIG_SIZE:
		if (parse_size(p, len, &u) != 0 || u > (uint64_t)prm->max ||
		    u < (uint64_t)prm->min)
			return RELAY_CONFIG_EVALUE;
		*(uint64_t *)fp = u;
		return 0;
	case RELAY_CONFIG_ENUM:
		for (int i = 0; prm->values[i] != NULL; i++) {
			if (word_eq(p, len, prm->values[i])) {
				memcpy(fp, &i, sizeof(i));
				return 0;
			}
		}
		return RELAY_CONFIG_EVALUE;
	case RELAY_CONFIG_NEXTHOP: {
		struct relay_config_nexthop nh;
		if (relay_config_nexthop_parse(p, len, &nh) != 0)
			return RELAY_CONFIG_EVALUE;
		memcpy(fp, &nh, sizeof(nh));
		return 0;
	}
	case RELAY_CONFIG_ADDRLIST:
	case RELAY_CONFIG_CIDRLIST:
	case RELAY_CONFIG_FWDLIST: {
		void *arr = NULL;
		size_t n = 0;
		int rc;

		if (prm->type == RELAY_CONFIG_ADDRLIST)
			rc =
			    parse_list(p, len, sizeof(struct relay_config_addr),
			        item_addr, &arr, &n);
		else if (prm->type == RELAY_CONFIG_CIDRLIST)
			rc =
			    parse_list(p, len, sizeof(struct relay_config_cidr),
			        item_cidr, &arr, &n);
		else
			rc = parse_list(p, len, sizeof(struct relay_config_fwd),
			    item_fwd, &arr, &n);
		if (rc != 0)
			return rc;
		if ((int64_t)n < prm->min || (int64_t)n > prm->max) {
			free(arr);
			return RELAY_CONFIG_EVALUE;
		}
		free(*(void **)fp);
		*(void **)fp = arr;
		*(size_t *)field_ptr(cfg, prm->count_offset) = n;
		return 0;
	}
	}
	return RELAY_CONFIG_EVALUE;
}

void
relay_config_free(struct relay_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < TABLE_N; i++)
		free_field(cfg, &relay_config_table[i]);
	relay_tls_policy_free(cfg->tls_policy, cfg->tls_policy_count);
	free(cfg->source_);
	free(cfg->explicit_);
	free(cfg->line_);
	memset(cfg, 0, sizeof(*cfg));
}

int
relay_config_init(struct relay_config *cfg)
{
	char host[256];

	memset(cfg, 0, sizeof(*cfg));
	cfg->explicit_ = calloc(TABLE_N, sizeof(bool));
	cfg->line_ = calloc(TABLE_N, sizeof(unsigned));
	if (cfg->explicit_ == NULL || cfg->line_ == NULL)
		goto nomem;
	for (size_t i = 0; i < TABLE_N; i++) {
		const struct relay_config_param *prm = &relay_config_table[i];
		const char *def = prm->def;
		int rc;

		if (def == NULL) {
			/* Computed defaults: myhostname, and smtp_helo_name,
			 * which follows myhostname (relay_config_load_buf()
			 * copies the final myhostname when the file leaves it
			 * unset, as Postfix's $myhostname). */
			assert(prm->offset == F(myhostname) ||
			    prm->offset == F(smtp_helo_name));
			if (gethostname(host, sizeof(host)) != 0 ||
			    memchr(host, '\0', sizeof(host)) == NULL)
				memcpy(host, "localhost", sizeof("localhost"));
			def = host;
		}
		rc = set_value(cfg, prm, def, strlen(def));
		if (rc == RELAY_CONFIG_ENOMEM)
			goto nomem;
		/* A default that does not parse is a bug in the table. */
		assert(rc == 0);
	}
	return 0;
nomem:
	relay_config_free(cfg);
	return RELAY_CONFIG_ENOMEM;
}

/* ---- the file parser ---- */

static bool
key_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/*
 * Applies one logical line "key = value" (text, len; line number lineno).
 */
static int
apply_line(struct relay_config *cfg, const char *name, unsigned lineno,
    const char *text, size_t len, char *err)
{
	const char *eq = memchr(text, '=', len);
	const char *key = text, *val;
	size_t klen, vlen;
	const struct relay_config_param *prm;
	size_t idx;
	char ebuf[200];
	int rc;

	if (eq == NULL) {
		seterr(err, "%s:%u: expected \"name = value\"", name, lineno);
		return RELAY_CONFIG_ESYNTAX;
	}
	klen = (size_t)(eq - text);
	trim(&key, &klen);
	val = eq + 1;
	vlen = len - (size_t)(val - text);
	trim(&val, &vlen);
	for (size_t i = 0; i < klen; i++) {
		if (!key_char((uint8_t)key[i])) {
			seterr(err, "%s:%u: bad parameter name \"%.*s\"", name,
			    lineno, (int)(klen > 64 ? 64 : klen), key);
			return RELAY_CONFIG_ESYNTAX;
		}
	}
	if (klen == 0) {
		seterr(err, "%s:%u: missing parameter name before \"=\"", name,
		    lineno);
		return RELAY_CONFIG_ESYNTAX;
	}
	prm = relay_config_param_find(key, klen);
	if (prm == NULL) {
		seterr(err, "%s:%u: unknown parameter \"%.*s\"", name, lineno,
		    (int)(klen > 64 ? 64 : klen), key);
		return RELAY_CONFIG_EUNKNOWN;
	}
	idx = param_index(prm);
	if (cfg->explicit_[idx]) {
		seterr(err,
		    "%s:%u: duplicate parameter %s (first set at line "
		    "%u)",
		    name, lineno, prm->name, cfg->line_[idx]);
		return RELAY_CONFIG_EDUP;
	}
	rc = set_value(cfg, prm, val, vlen);
	if (rc == RELAY_CONFIG_ENOMEM) {
		seterr(err, "%s:%u: out of memory", name, lineno);
		return rc;
	}
	if (rc != 0) {
		seterr(err, "%s:%u: bad value for %s: \"%.*s\" (expected %s)",
		    name, lineno, prm->name, (int)(vlen > 80 ? 80 : vlen), val,
		    expect_text(prm, ebuf, sizeof(ebuf)));
		return rc;
	}
	cfg->explicit_[idx] = true;
	cfg->line_[idx] = lineno;
	return 0;
}

static int
parse_buf(struct relay_config *cfg, const char *name, const uint8_t *p,
    size_t len, char *err)
{
	char *logical = malloc(CONFIG_LINE_MAX);
	size_t llen = 0;
	unsigned lineno = 0, start = 0;
	bool have = false;
	int rc = 0;

	if (logical == NULL) {
		seterr(err, "%s: out of memory", name);
		return RELAY_CONFIG_ENOMEM;
	}
	for (size_t i = 0; i <= len && rc == 0;) {
		const uint8_t *nl =
		    i < len ? memchr(p + i, '\n', len - i) : NULL;
		size_t end = nl ? (size_t)(nl - p) : len;
		const char *line = (const char *)p + i;
		size_t n = end - i, j = 0;
		bool cont;

		if (i == len)
			break;
		lineno++;
		i = end + 1;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (memchr(line, '\0', n) != NULL) {
			seterr(err, "%s:%u: NUL byte in line", name, lineno);
			rc = RELAY_CONFIG_ESYNTAX;
			break;
		}
		while (j < n && is_space((uint8_t)line[j]))
			j++;
		if (j == n || line[j] == '#')
			continue; /* blank or comment */
		cont = j > 0;
		if (cont && !have) {
			seterr(err,
			    "%s:%u: continuation line without a "
			    "parameter",
			    name, lineno);
			rc = RELAY_CONFIG_ESYNTAX;
			break;
		}
		if (!cont && have) {
			rc = apply_line(cfg, name, start, logical, llen, err);
			have = false;
			llen = 0;
			if (rc != 0)
				break;
		}
		if (llen + 1 + n > CONFIG_LINE_MAX) {
			seterr(err, "%s:%u: line too long", name, lineno);
			rc = RELAY_CONFIG_ESYNTAX;
			break;
		}
		if (cont)
			logical[llen++] = ' ';
		else
			start = lineno;
		memcpy(logical + llen, line + j, n - j);
		llen += n - j;
		have = true;
	}
	if (rc == 0 && have)
		rc = apply_line(cfg, name, start, logical, llen, err);
	free(logical);
	return rc;
}

/* Reads a whole file (at most CONFIG_FILE_MAX bytes). */
static int
read_file(const char *path, uint8_t **out, size_t *outlen, char *err,
    const char *what)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	size_t n = 0;

	if (fd < 0) {
		seterr(err, "%s: cannot open %s: %s", path, what,
		    strerror(errno));
		return RELAY_CONFIG_EIO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		seterr(err, "%s: %s is not a regular file", path, what);
		(void)close(fd);
		return RELAY_CONFIG_EIO;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		seterr(err, "%s: %s larger than %d bytes", path, what,
		    CONFIG_FILE_MAX);
		(void)close(fd);
		return RELAY_CONFIG_EIO;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		(void)close(fd);
		seterr(err, "%s: out of memory", path);
		return RELAY_CONFIG_ENOMEM;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			seterr(err, "%s: cannot read %s: %s", path, what,
			    strerror(errno));
			free(buf);
			(void)close(fd);
			return RELAY_CONFIG_EIO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > (size_t)st.st_size) {
			seterr(err, "%s: %s changed while being read", path,
			    what);
			free(buf);
			(void)close(fd);
			return RELAY_CONFIG_EIO;
		}
	}
	(void)close(fd);
	*out = buf;
	*outlen = n;
	return 0;
}

static const struct relay_config_param *
param_by_offset(size_t off)
{
	for (size_t i = 0; i < TABLE_N; i++)
		if (relay_config_table[i].offset == off)
			return &relay_config_table[i];
	abort();
}

static unsigned
line_of(const struct relay_config *cfg, size_t off)
{
	return cfg->line_[param_index(param_by_offset(off))];
}

/*
 * An outbound source address: empty (the kernel chooses), or a literal of
 * exactly the given family, the only thing bind() can use. A host name is
 * refused: resolving it would make the source depend on DNS.
 */
static bool
bind_literal_ok(const char *text, int family)
{
	uint8_t addr[16];

	return text[0] == '\0' || inet_pton(family, text, addr) == 1;
}

/*
 * The EHLO argument (RFC 5321 4.1.1.1: a domain or an address literal) is
 * one word on the command line: no white space, at most 255 characters
 * (RFC 5321 4.5.3.1.2 bounds a domain at 255 octets).
 */
static bool
helo_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)name[i] <= 0x20 || (uint8_t)name[i] >= 0x7f)
			return false;
	return true;
}

/*
 * Defaults that follow another parameter, set once the file is read:
 * smtp_helo_name is myhostname unless the file names it (Postfix's
 * smtp_helo_name = $myhostname). Returns 0 or RELAY_CONFIG_ENOMEM.
 */
static int
derive_defaults(struct relay_config *cfg)
{
	const struct relay_config_param *helo =
	    param_by_offset(F(smtp_helo_name));

	if (relay_config_is_explicit(cfg, helo))
		return 0;
	return set_value(cfg, helo, cfg->myhostname, strlen(cfg->myhostname));
}

/* Relations between parameters, checked after the whole file is read. */
static int
cross_check(struct relay_config *cfg, const char *name, char *err)
{
	if (cfg->retry_min_ms > cfg->retry_max_ms) {
		unsigned l = line_of(cfg, F(retry_min_ms));
		unsigned l2 = line_of(cfg, F(retry_max_ms));
		seterr(err, "%s:%u: retry_min must not exceed retry_max", name,
		    l > l2 ? l : l2);
		return RELAY_CONFIG_EVALUE;
	}
	if ((cfg->tls_cert_file[0] == '\0') != (cfg->tls_key_file[0] == '\0')) {
		unsigned l = line_of(cfg, F(tls_cert_file));
		unsigned l2 = line_of(cfg, F(tls_key_file));
		seterr(err,
		    "%s:%u: tls_cert_file and tls_key_file must be set "
		    "together",
		    name, l > l2 ? l : l2);
		return RELAY_CONFIG_EVALUE;
	}
	if (cfg->dns_selftest_name[0] == '\0') {
		seterr(err, "%s:%u: dns_selftest_name must not be empty", name,
		    line_of(cfg, F(dns_selftest_name)));
		return RELAY_CONFIG_EVALUE;
	}
	if (!bind_literal_ok(cfg->smtp_bind_address, AF_INET)) {
		seterr(err,
		    "%s:%u: smtp_bind_address must be an IPv4 address literal "
		    "such as 192.0.2.1 (or empty)",
		    name, line_of(cfg, F(smtp_bind_address)));
		return RELAY_CONFIG_EVALUE;
	}
	if (!bind_literal_ok(cfg->smtp_bind_address6, AF_INET6)) {
		seterr(err,
		    "%s:%u: smtp_bind_address6 must be an IPv6 address literal "
		    "such as 2001:db8::1, without brackets (or empty)",
		    name, line_of(cfg, F(smtp_bind_address6)));
		return RELAY_CONFIG_EVALUE;
	}
	if (!helo_name_ok(cfg->smtp_helo_name)) {
		unsigned l = relay_config_is_explicit(cfg,
		                 param_by_offset(F(smtp_helo_name)))
		    ? line_of(cfg, F(smtp_helo_name))
		    : line_of(cfg, F(myhostname));
		seterr(err,
		    "%s:%u: smtp_helo_name must be one word of at most 255 "
		    "characters, a host name or an address literal (it "
		    "follows myhostname unless set)",
		    name, l);
		return RELAY_CONFIG_EVALUE;
	}
	return 0;
}

static int
load_policy(struct relay_config *cfg, char *err)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if (cfg->tls_policy_file[0] == '\0')
		return 0;
	rc =
	    read_file(cfg->tls_policy_file, &buf, &len, err, "tls_policy_file");
	if (rc != 0)
		return rc;
	rc = relay_tls_policy_parse(cfg->tls_policy_file, buf, len,
	    &cfg->tls_policy, &cfg->tls_policy_count, err);
	free(buf);
	if (rc != 0 || !cfg->policy_exceptions_require_reason)
		return rc;
	/* The audit trail: every exception says why it exists. The first
	 * such line of the file is named (entries are sorted by domain). */
	const struct relay_tls_policy_entry *first = NULL;
	for (size_t i = 0; i < cfg->tls_policy_count; i++) {
		const struct relay_tls_policy_entry *e = &cfg->tls_policy[i];
		if (e->reason[0] == '\0' &&
		    (first == NULL || e->line < first->line))
			first = e;
	}
	if (first == NULL)
		return 0;
	seterr(err,
	    "%s:%u: entry for %s has no reason=\"...\" "
	    "(policy_exceptions_require_reason = yes)",
	    first->file, first->line, first->domain);
	return RELAY_CONFIG_EPOLICY;
}

int
relay_config_load_buf(struct relay_config *cfg, const char *name,
    const uint8_t *p, size_t len, char *err)
{
	int rc = relay_config_init(cfg);

	if (rc != 0) {
		seterr(err, "%s: out of memory", name);
		return rc;
	}
	cfg->source_ = memdup_str(name, strlen(name));
	if (cfg->source_ == NULL) {
		seterr(err, "%s: out of memory", name);
		rc = RELAY_CONFIG_ENOMEM;
	}
	if (rc == 0)
		rc = parse_buf(cfg, name, p, len, err);
	if (rc == 0) {
		rc = derive_defaults(cfg);
		if (rc != 0)
			seterr(err, "%s: out of memory", name);
	}
	if (rc == 0)
		rc = cross_check(cfg, name, err);
	if (rc == 0)
		rc = load_policy(cfg, err);
	if (rc != 0)
		relay_config_free(cfg);
	return rc;
}

int
relay_config_load(struct relay_config *cfg, const char *path, char *err)
{
	uint8_t *buf;
	size_t len;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	rc = read_file(path, &buf, &len, err, "configuration file");
	if (rc != 0)
		return rc;
	rc = relay_config_load_buf(cfg, path, buf, len, err);
	free(buf);
	return rc;
}

/* ---- TLS policy file ---- */

void
relay_tls_policy_free(struct relay_tls_policy_entry *entries, size_t count)
{
	for (size_t i = 0; i < count && entries != NULL; i++) {
		free(entries[i].domain);
		free(entries[i].file);
		free(entries[i].reason);
	}
	free(entries);
}

static int
policy_cmp(const void *a, const void *b)
{
	const struct relay_tls_policy_entry *x = a, *y = b;
	return strcmp(x->domain, y->domain);
}

/*
 * A domain as it may appear in the policy file: optional leading '.',
 * LDH labels (underscore tolerated), optional trailing '.', at most 253
 * characters (RFC 1035 2.3.4). Lower-cased into out.
 */
static bool
policy_domain(const char *p, size_t len, char *out)
{
	size_t o = 0, label = 0;

	if (len > 0 && p[len - 1] == '.')
		len--;
	if (len == 0 || len > DOMAIN_TEXT_MAX + 1)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '.') {
			if (label == 0 && i != 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
			if (++label > 63)
				return false;
			c = (char)tolower((unsigned char)c);
		} else {
			return false;
		}
		out[o++] = c;
	}
	if (label == 0)
		return false;
	out[o] = '\0';
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the civil-date
 * arithmetic of H. Hinnant's "days_from_civil", public domain). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned mp = m > 2 ? m - 3 : m + 9; /* March = 0 */
	const unsigned doy = (153 * mp + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* "YYYY-MM-DD", a real date in 1970..9999, into days since the epoch. */
static bool
parse_date(const char *p, size_t len, int64_t *day)
{
	static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
		31, 30, 31 };
	unsigned v[3] = { 0, 0, 0 };
	static const size_t width[3] = { 4, 2, 2 };
	size_t i = 0;

	if (len != 10)
		return false;
	for (size_t f = 0; f < 3; f++) {
		for (size_t k = 0; k < width[f]; k++, i++) {
			if (p[i] < '0' || p[i] > '9')
				return false;
			v[f] = v[f] * 10 + (unsigned)(p[i] - '0');
		}
		if (f < 2 && p[i++] != '-')
			return false;
	}
	if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1)
		return false;
	bool leap = (v[0] % 4 == 0 && v[0] % 100 != 0) || v[0] % 400 == 0;
	unsigned max = mdays[v[1] - 1] + (v[1] == 2 && leap ? 1u : 0u);
	if (v[2] > max)
		return false;
	*day = days_from_civil(v[0], v[1], v[2]);
	return true;
}

int64_t
relay_config_day_of(uint64_t now_us)
{
	return (int64_t)(now_us / 1000000u / 86400u);
}

int64_t
relay_tls_policy_days_left(const struct relay_tls_policy_entry *e,
    uint64_t now_us)
{
	return e->until_day - relay_config_day_of(now_us);
}

bool
relay_tls_policy_active(const struct relay_tls_policy_entry *e, uint64_t now_us)
{
	/* The entry applies through the whole of its until= day, UTC. */
	return !e->has_until || relay_config_day_of(now_us) <= e->until_day;
}

/* Longest reason= text kept (one log value is cut at 512 bytes anyway). */
#define POLICY_REASON_MAX 400

/*
 * The attributes after "domain level" on one line (line[j..ln)): fills
 * e's has_until/until_day/until and reason (owned, "" when absent).
 * Returns 0, or -1 with err set ("NAME:LINE: ...").
 */
static int
policy_attrs(const char *name, unsigned lineno, const char *line, size_t j,
    size_t ln, struct relay_tls_policy_entry *e, char *err)
{
	char reason[POLICY_REASON_MAX + 1];
	size_t rlen = 0;
	bool have_reason = false;

	while (j < ln) {
		const char *a = line + j;
		while (j < ln && line[j] != '=' && !is_space((uint8_t)line[j]))
			j++;
		size_t alen = (size_t)(line + j - a);
		if (j == ln || line[j] != '=') {
			seterr(err,
			    "%s:%u: unexpected \"%.*s\" (expected "
			    "until=YYYY-MM-DD or reason=\"...\")",
			    name, lineno, (int)(alen > 40 ? 40 : alen), a);
			return RELAY_CONFIG_EPOLICY;
		}
		j++; /* '=' */
		if (word_eq(a, alen, "until")) {
			const char *v = line + j;
			while (j < ln && !is_space((uint8_t)line[j]))
				j++;
			size_t vlen = (size_t)(line + j - v);
			if (e->has_until) {
				seterr(err, "%s:%u: until= given twice", name,
				    lineno);
				return RELAY_CONFIG_EPOLICY;
			}
			if (!parse_date(v, vlen, &e->until_day)) {
				seterr(err,
				    "%s:%u: bad date \"%.*s\" in until= "
				    "(expected YYYY-MM-DD, a real date)",
				    name, lineno, (int)(vlen > 20 ? 20 : vlen),
				    v);
				return RELAY_CONFIG_EPOLICY;
			}
			e->has_until = true;
			memcpy(e->until, v, 10);
			e->until[10] = '\0';
		} else if (word_eq(a, alen, "reason")) {
			if (have_reason) {
				seterr(err, "%s:%u: reason= given twice", name,
				    lineno);
				return RELAY_CONFIG_EPOLICY;
			}
			have_reason = true;
			bool quoted = j < ln && line[j] == '"';
			if (quoted)
				j++;
			for (;;) {
				if (j == ln) {
					if (!quoted)
						break;
					seterr(err,
					    "%s:%u: reason= has no closing "
					    "quote",
					    name, lineno);
					return RELAY_CONFIG_EPOLICY;
				}
				char c = line[j];
				if (!quoted && is_space((uint8_t)c))
					break;
				if (quoted && c == '"') {
					j++;
					break;
				}
				if (quoted && c == '\\' && j + 1 < ln &&
				    (line[j + 1] == '"' ||
				        line[j + 1] == '\\')) {
					c = line[++j];
				} else if (!quoted && c == '"') {
					seterr(err,
					    "%s:%u: a quote inside an unquoted "
					    "reason=",
					    name, lineno);
					return RELAY_CONFIG_EPOLICY;
				}
				if ((unsigned char)c < 0x20 || c == 0x7f) {
					seterr(err,
					    "%s:%u: control character in "
					    "reason=",
					    name, lineno);
					return RELAY_CONFIG_EPOLICY;
				}
				if (rlen == POLICY_REASON_MAX) {
					seterr(err,
					    "%s:%u: reason= longer than %d "
					    "bytes",
					    name, lineno, POLICY_REASON_MAX);
					return RELAY_CONFIG_EPOLICY;
				}
				reason[rlen++] = c;
				j++;
			}
			if (j < ln && !is_space((uint8_t)line[j])) {
				seterr(err,
				    "%s:%u: text after the closing quote of "
				    "reason=",
				    name, lineno);
				return RELAY_CONFIG_EPOLICY;
			}
			if (rlen == 0) {
				seterr(err, "%s:%u: empty reason=", name,
				    lineno);
				return RELAY_CONFIG_EPOLICY;
			}
		} else {
			seterr(err,
			    "%s:%u: unknown attribute \"%.*s\" (expected "
			    "until= or reason=)",
			    name, lineno, (int)(alen > 40 ? 40 : alen), a);
			return RELAY_CONFIG_EPOLICY;
		}
		while (j < ln && is_space((uint8_t)line[j]))
			j++;
	}
	reason[rlen] = '\0';
	e->reason = memdup_str(reason, rlen);
	return e->reason != NULL ? 0 : RELAY_CONFIG_ENOMEM;
}

int
relay_tls_policy_parse(const char *name, const uint8_t *p, size_t len,
    struct relay_tls_policy_entry **entries, size_t *count, char *err)
{
	struct relay_tls_policy_entry *arr = NULL;
	size_t n = 0;
	unsigned lineno = 0;
	char dom[DOMAIN_TEXT_MAX + 2];

	for (size_t i = 0; i < len;) {
		const uint8_t *nl = memchr(p + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - p) : len;
		const char *line = (const char *)p + i, *w1, *w2;
		size_t ln = end - i, j = 0, l1, l2;
		int level = -1;

		lineno++;
		i = end + 1;
		if (ln > 0 && line[ln - 1] == '\r')
			ln--;
		while (j < ln && is_space((uint8_t)line[j]))
			j++;
		if (j == ln || line[j] == '#')
			continue;
		w1 = line + j;
		while (j < ln && !is_space((uint8_t)line[j]))
			j++;
		l1 = (size_t)(line + j - w1);
		while (j < ln && is_space((uint8_t)line[j]))
			j++;
		w2 = line + j;
		while (j < ln && !is_space((uint8_t)line[j]))
			j++;
		l2 = (size_t)(line + j - w2);
		while (j < ln && is_space((uint8_t)line[j]))
			j++;
		if (l2 == 0) {
			seterr(err, "%s:%u: expected \"domain level\"", name,
			    lineno);
			goto fail;
		}
		if (!policy_domain(w1, l1, dom)) {
			seterr(err, "%s:%u: bad domain \"%.*s\"", name, lineno,
			    (int)(l1 > 80 ? 80 : l1), w1);
			goto fail;
		}
		for (int k = 0; tls_policy_words[k] != NULL; k++)
			if (word_eq(w2, l2, tls_policy_words[k]))
				level = k;
		if (level < 0) {
			seterr(err,
			    "%s:%u: bad level \"%.*s\" (expected dane, "
			    "dane-only, may, encrypt, verify or none)",
			    name, lineno, (int)(l2 > 40 ? 40 : l2), w2);
			goto fail;
		}
		for (size_t k = 0; k < n; k++) {
			if (strcmp(arr[k].domain, dom) == 0) {
				seterr(err, "%s:%u: duplicate domain %s", name,
				    lineno, dom);
				goto fail;
			}
		}
		{
			struct relay_tls_policy_entry *na =
			    realloc(arr, (n + 1) * sizeof(*arr));
			if (na == NULL)
				goto nomem;
			arr = na;
			memset(&arr[n], 0, sizeof(arr[n]));
			arr[n].domain = memdup_str(dom, strlen(dom));
			arr[n].file = memdup_str(name, strlen(name));
			arr[n].level = (enum relay_tls_level)level;
			arr[n].line = lineno;
			n++; /* from here on freed with the rest */
			if (arr[n - 1].domain == NULL ||
			    arr[n - 1].file == NULL)
				goto nomem;
			int ar = policy_attrs(name, lineno, line, j, ln,
			    &arr[n - 1], err);
			if (ar == RELAY_CONFIG_ENOMEM)
				goto nomem;
			if (ar != 0)
				goto fail;
		}
	}
	if (n > 0)
		qsort(arr, n, sizeof(*arr), policy_cmp);
	relay_tls_policy_free(*entries, *count);
	*entries = arr;
	*count = n;
	return 0;
nomem:
	seterr(err, "%s:%u: out of memory", name, lineno);
	relay_tls_policy_free(arr, n);
	return RELAY_CONFIG_ENOMEM;
fail:
	relay_tls_policy_free(arr, n);
	return RELAY_CONFIG_EPOLICY;
}

/* The entry for key that applies at now_us; an expired one is skipped and
 * remembered in *expired (the first one met). */
static const struct relay_tls_policy_entry *
policy_find(const struct relay_config *cfg, const char *key, uint64_t now_us,
    const struct relay_tls_policy_entry **expired)
{
	struct relay_tls_policy_entry k;

	if (cfg->tls_policy_count == 0)
		return NULL;
	memset(&k, 0, sizeof(k));
	k.domain = (char *)(uintptr_t)key;
	const struct relay_tls_policy_entry *e = bsearch(&k, cfg->tls_policy,
	    cfg->tls_policy_count, sizeof(k), policy_cmp);
	if (e == NULL || relay_tls_policy_active(e, now_us))
		return e;
	if (*expired == NULL)
		*expired = e;
	return NULL;
}

const struct relay_tls_policy_entry *
relay_config_tls_policy_entry(const struct relay_config *cfg,
    const char *domain, size_t len, uint64_t now_us,
    const struct relay_tls_policy_entry **expired)
{
	char d[DOMAIN_TEXT_MAX + 2];
	const struct relay_tls_policy_entry *e, *exp = NULL;

	if (expired == NULL)
		expired = &exp;
	*expired = NULL;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > DOMAIN_TEXT_MAX)
		return NULL;
	for (size_t i = 0; i < len; i++)
		d[i] = (char)tolower((unsigned char)domain[i]);
	d[len] = '\0';
	if (memchr(d, '\0', len) != NULL)
		return NULL;
	/* An expired entry is skipped as if it were not in the file: the
	 * next match (a ".parent" entry, else tls_security_level) decides. */
	if ((e = policy_find(cfg, d, now_us, expired)) != NULL)
		return e;
	/* ".parent" entries, nearest parent first (Postfix semantics: the
	 * leading dot matches subdomains, not the domain itself). */
	for (size_t i = 1; i < len; i++) {
		if (d[i] == '.' &&
		    (e = policy_find(cfg, d + i, now_us, expired)) != NULL)
			return e;
	}
	return NULL;
}

enum relay_tls_level
relay_config_tls_policy(const struct relay_config *cfg, const char *domain,
    size_t len, uint64_t now_us)
{
	const struct relay_tls_policy_entry *e =
	    relay_config_tls_policy_entry(cfg, domain, len, now_us, NULL);

	return e != NULL ? e->level : cfg->tls_security_level;
}

/* ---- mynetworks ---- */

bool
relay_config_mynetworks_match(const struct relay_config *cfg,
    const struct sockaddr *sa)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
		0xff };
	uint8_t a[16];
	int family;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in =
		    (const struct sockaddr_in *)(const void *)sa;
		family = AF_INET;
		memcpy(a, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)(const void *)sa;
		const uint8_t *b = (const uint8_t *)&in6->sin6_addr;
		if (memcmp(b, mapped, sizeof(mapped)) == 0) {
			family = AF_INET;
			memcpy(a, b + 12, 4);
		} else {
			family = AF_INET6;
			memcpy(a, b, 16);
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < cfg->mynetworks_count; i++) {
		const struct relay_config_cidr *c = &cfg->mynetworks[i];
		unsigned full = c->prefix / 8, rest = c->prefix % 8;

		if (c->family != family)
			continue;
		if (memcmp(a, c->addr, full) != 0)
			continue;
		if (rest != 0 &&
		    ((a[full] ^ c->addr[full]) & (uint8_t)(0xff00u >> rest)) !=
		        0)
			continue;
		return true;
	}
	return false;
}

/* ---- output ---- */

bool
relay_config_is_explicit(const struct relay_config *cfg,
    const struct relay_config_param *param)
{
	return cfg->explicit_ != NULL && cfg->explicit_[param_index(param)];
}

static void
format_duration(struct out *o, uint64_t ms)
{
	static const struct {
		uint64_t ms;
		const char *suffix;
	} units[] = {
		{ MS_D, "d" },
		{ MS_H, "h" },
		{ MS_M, "m" },
		{ MS_S, "s" },
	};

	if (ms == 0) {
		out_add(o, "0s");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms % units[i].ms == 0) {
			out_add(o, "%" PRIu64 "%s", ms / units[i].ms,
			    units[i].suffix);
			return;
		}
	}
	out_add(o, "%" PRIu64 "ms", ms);
}

int
relay_config_format(const struct relay_config *cfg,
    const struct relay_config_param *prm, char *buf, size_t size)
{
	const void *fp = cfield_ptr(cfg, prm->offset);
	struct out o = { buf, size, 0, false };
	size_t n;

	if (size == 0)
		return -1;
	buf[0] = '\0';
	switch (prm->type) {
	case RELAY_CONFIG_STRING:
	case RELAY_CONFIG_PATH:
		out_add(&o, "%s", *(char *const *)fp);
		break;
	case RELAY_CONFIG_BOOL:
		out_add(&o, "%s", *(const bool *)fp ? "yes" : "no");
		break;
	case RELAY_CONFIG_INT:
		out_add(&o, "%" PRId64, *(const int64_t *)fp);
		break;
	case RELAY_CONFIG_DURATION:
		format_duration(&o, *(const uint64_t *)fp);
		break;
	case RELAY_CONFIG_SIZE:
		out_add(&o, "%" PRIu64, *(const uint64_t *)fp);
		break;
	case RELAY_CONFIG_ENUM: {
		int v;
		memcpy(&v, fp, sizeof(v));
		out_add(&o, "%s", prm->values[v]);
		break;
	}
	case RELAY_CONFIG_ADDRLIST: {
		const struct relay_config_addr *a =
		    *(struct relay_config_addr *const *)fp;
		n = *(const size_t *)cfield_ptr(cfg, prm->count_offset);
		for (size_t i = 0; i < n; i++)
			out_add(&o, "%s%s", i ? ", " : "", a[i].text);
		break;
	}
	case RELAY_CONFIG_CIDRLIST: {
		const struct relay_config_cidr *c =
		    *(struct relay_config_cidr *const *)fp;
		char t[INET6_ADDRSTRLEN];
		n = *(const size_t *)cfield_ptr(cfg, prm->count_offset);
		for (size_t i = 0; i < n; i++) {
			(void)inet_ntop(c[i].family, c[i].addr, t, sizeof(t));
			out_add(&o,
			    c[i].family == AF_INET6 ? "%s[%s]/%u" : "%s%s/%u",
			    i ? ", " : "", t, c[i].prefix);
		}
		break;
	}
	case RELAY_CONFIG_FWDLIST: {
		const struct relay_config_fwd *f =
		    *(struct relay_config_fwd *const *)fp;
		n = *(const size_t *)cfield_ptr(cfg, prm->count_offset);
		for (size_t i = 0; i < n; i++)
			out_add(&o, "%s%s", i ? ", " : "", f[i].text);
		break;
	}
	case RELAY_CONFIG_NEXTHOP:
		out_add(&o, "%s",
		    ((const struct relay_config_nexthop *)fp)->text);
		break;
	}
	return o.overflow ? -1 : (int)o.len;
}

int
relay_config_print(FILE *out, const struct relay_config *cfg,
    enum relay_config_print_mode mode)
{
	struct relay_config defaults;
	const struct relay_config *src = cfg;
	char buf[8192];

	if (mode == RELAY_CONFIG_PRINT_DEFAULTS) {
		if (relay_config_init(&defaults) != 0)
			return -1;
		src = &defaults;
	}
	for (size_t i = 0; i < TABLE_N; i++) {
		const struct relay_config_param *prm = &relay_config_table[i];

		if (mode == RELAY_CONFIG_PRINT_EXPLICIT &&
		    !relay_config_is_explicit(cfg, prm))
			continue;
		if (relay_config_format(src, prm, buf, sizeof(buf)) < 0) {
			/* Cannot happen with the limits above; say so. */
			memcpy(buf, "(too long)", sizeof("(too long)"));
		}
		/* postconf prints "name =" for an empty value. */
		if (fprintf(out, "%s =%s%s\n", prm->name, buf[0] ? " " : "",
		        buf) < 0)
			break;
	}
	if (src == &defaults)
		relay_config_free(&defaults);
	return ferror(out) || fflush(out) != 0 ? -1 : 0;
}

static const char *
type_name(const struct relay_config_param *prm)
{
	switch (prm->type) {
	case RELAY_CONFIG_STRING:
		return "string";
	case RELAY_CONFIG_PATH:
		return "path";
	case RELAY_CONFIG_BOOL:
		return "bool";
	case RELAY_CONFIG_INT:
		return "int";
	case RELAY_CONFIG_DURATION:
		return "duration";
	case RELAY_CONFIG_SIZE:
		return "size";
	case RELAY_CONFIG_ADDRLIST:
		return "address list";
	case RELAY_CONFIG_CIDRLIST:
		return "network list";
	case RELAY_CONFIG_FWDLIST:
		return "forwarder list";
	case RELAY_CONFIG_NEXTHOP:
		return "next hop";
	case RELAY_CONFIG_ENUM:
		return "enum";
	}
	return "?";
}

int
relay_config_print_doc(FILE *out)
{
	char range[96];

	if (fprintf(out,
	        "| Parameter | Type | Default | Description |\n"
	        "|---|---|---|---|\n") < 0)
		return -1;
	for (size_t i = 0; i < TABLE_N; i++) {
		const struct relay_config_param *prm = &relay_config_table[i];
		struct out o = { range, sizeof(range), 0, false };

		range[0] = '\0';
		switch (prm->type) {
		case RELAY_CONFIG_INT:
		case RELAY_CONFIG_SIZE:
			out_add(&o, " (%" PRId64 "..%" PRId64 ")", prm->min,
			    prm->max);
			break;
		case RELAY_CONFIG_DURATION:
			out_add(&o, " (");
			format_duration(&o, (uint64_t)prm->min);
			out_add(&o, "..");
			format_duration(&o, (uint64_t)prm->max);
			out_add(&o, ")");
			break;
		case RELAY_CONFIG_STRING:
		case RELAY_CONFIG_PATH:
		case RELAY_CONFIG_BOOL:
		case RELAY_CONFIG_ADDRLIST:
		case RELAY_CONFIG_CIDRLIST:
		case RELAY_CONFIG_FWDLIST:
		case RELAY_CONFIG_ENUM:
		case RELAY_CONFIG_NEXTHOP:
			break;
		}
		if (prm->def == NULL)
			(void)fprintf(out, "| `%s` | %s | %s | %s |\n",
			    prm->name, type_name(prm), prm->def_doc, prm->doc);
		else if (prm->def[0] == '\0')
			(void)fprintf(out, "| `%s` | %s%s | (empty) | %s |\n",
			    prm->name, type_name(prm), range, prm->doc);
		else
			(void)fprintf(out, "| `%s` | %s%s | `%s` | %s |\n",
			    prm->name, type_name(prm), range, prm->def,
			    prm->doc);
	}
	return ferror(out) || fflush(out) != 0 ? -1 : 0;
}

int
relay_config_duration_us(const char *text, uint64_t *us)
{
	uint64_t ms;

	if (relay_config_parse_duration(text, strlen(text), &ms) != 0 ||
	    ms > UINT64_MAX / 1000)
		return -1;
	*us = ms * 1000;
	return 0;
}
