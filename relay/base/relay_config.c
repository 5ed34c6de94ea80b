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
	{ "run_user", RELAY_CONFIG_STRING, "danerelay", NULL, 0, 0, NULL,
	    F(run_user), NOCOUNT,
	    "Unprivileged user the daemon switches to when started as root." },
	{ "shutdown_timeout", RELAY_CONFIG_DURATION, "30s", NULL, 0, 10 * MS_M,
	    NULL, F(shutdown_timeout_ms), NOCOUNT,
	    "On SIGTERM, how long deliveries in flight may take to finish." },
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
	    "Per-destination levels: lines `domain level`; `.example.com` "
	    "matches every subdomain; levels as tls_security_level plus "
	    "`none`." },
	{ "tls_required_header", RELAY_CONFIG_ENUM, "ignore", NULL, 0, 0,
	    tls_required_header_words, F(tls_required_header), NOCOUNT,
	    "What a `TLS-Required: No` header field (RFC 8689 4.2.2) does. "
	    "`ignore`: nothing; every message gets the operator's TLS policy. "
	    "`honour`: the sender's request is noted (logged) and lets such a "
	    "message skip a recipient domain's MTA-STS policy once danerelay "
	    "applies one, but never the DANE authentication that the policy "
	    "requires for a domain with usable TLSA records; a REQUIRETLS "
	    "message ignores the field (RFC 8689 4.2.2). The default is "
	    "`ignore` because the header is unauthenticated: anyone who can "
	    "put mail into the relay could otherwise lower its protection." },
	{ "tls_security_level", RELAY_CONFIG_ENUM, "dane", NULL, 0, 0,
	    tls_level_words, F(tls_security_level), NOCOUNT,
	    "`dane` (RFC 7672: DANE where TLSA is usable, else opportunistic), "
	    "`dane-only`, `may`, `encrypt` or `verify`." },
};

#define TABLE_N (sizeof(relay_config_table) / sizeof(relay_config_table[0]))

_Static_assert(sizeof(enum relay_tls_level) == sizeof(int),
    "enum fields are stored as int");
_Static_assert(sizeof(enum relay_config_log_level) == sizeof(int),
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
			/* Computed defaults: only myhostname so far. */
			assert(prm->offset == F(myhostname));
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
	return rc;
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
		if (l2 == 0 || j != ln) {
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
			arr[n].domain = memdup_str(dom, strlen(dom));
			arr[n].file = memdup_str(name, strlen(name));
			if (arr[n].domain == NULL || arr[n].file == NULL) {
				n++; /* freed with the rest */
				goto nomem;
			}
			arr[n].level = (enum relay_tls_level)level;
			arr[n].line = lineno;
			n++;
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

static const struct relay_tls_policy_entry *
policy_find(const struct relay_config *cfg, const char *key)
{
	struct relay_tls_policy_entry k = { (char *)(uintptr_t)key,
		RELAY_TLS_DANE, NULL, 0 };

	if (cfg->tls_policy_count == 0)
		return NULL;
	return bsearch(&k, cfg->tls_policy, cfg->tls_policy_count, sizeof(k),
	    policy_cmp);
}

const struct relay_tls_policy_entry *
relay_config_tls_policy_entry(const struct relay_config *cfg,
    const char *domain, size_t len)
{
	char d[DOMAIN_TEXT_MAX + 2];
	const struct relay_tls_policy_entry *e;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > DOMAIN_TEXT_MAX)
		return NULL;
	for (size_t i = 0; i < len; i++)
		d[i] = (char)tolower((unsigned char)domain[i]);
	d[len] = '\0';
	if (memchr(d, '\0', len) != NULL)
		return NULL;
	if ((e = policy_find(cfg, d)) != NULL)
		return e;
	/* ".parent" entries, nearest parent first (Postfix semantics: the
	 * leading dot matches subdomains, not the domain itself). */
	for (size_t i = 1; i < len; i++) {
		if (d[i] == '.' && (e = policy_find(cfg, d + i)) != NULL)
			return e;
	}
	return NULL;
}

enum relay_tls_level
relay_config_tls_policy(const struct relay_config *cfg, const char *domain,
    size_t len)
{
	const struct relay_tls_policy_entry *e =
	    relay_config_tls_policy_entry(cfg, domain, len);

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
