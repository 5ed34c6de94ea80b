#ifndef RELAY_CONFIG_H
#define RELAY_CONFIG_H
/*
 * relay_config: danerelay's configuration, declared once.
 *
 * Every parameter lives in ONE table (relay_config.c: relay_config_table[])
 * with its name, type, default (as text), range and documentation. That
 * table drives parsing, validation, `danerelay config` output and the
 * Markdown reference in the README, the way Postfix's mail_params.h and
 * postconf do (STYLE.md section 8).
 *
 * File format (main.cf-like):
 *     # comment
 *     key = value
 *     key = value, value,
 *         continued value        (a line starting with white space
 *                                 continues the previous one)
 * Blank lines and lines whose first non-blank byte is '#' are ignored.
 * An unknown key, a bad value, a duplicate key or an unreadable file is an
 * error reported as one line "FILE:LINE: message".
 *
 * Relative paths (type path) are resolved against the working directory at
 * load time, so `spool_dir = ./var/spool` with `make run` means
 * $PWD/var/spool. Every path field of struct relay_config is absolute
 * (or empty when the parameter is unset and has no default).
 *
 * Durations are stored in milliseconds and accept the suffixes ms, s, m,
 * h, d, w (a bare number means seconds, as in Postfix; see
 * relay_config_parse_duration()). Sizes are bytes and
 * accept k (1024) and m (1048576).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define RELAY_CONFIG_WUR __attribute__((warn_unused_result))

/*
 * The port of every outbound SMTP connection (RFC 5321 4.5.4.2: the SMTP
 * port, 25), and so of the TLSA owner name looked up for it: RFC 6698 3 and
 * RFC 7672 2.2.3 put the port connected to in it (_25._tcp.<base>). The
 * port travels from here through relay_dns_resolve() to tlsa_qname(), the
 * sockaddr and the relay=host[addr]:port of the logs, so changing it here
 * changes all of them together. Not a parameter: Postfix has none for its
 * SMTP transport either, and the test world's MX servers listen on port 25
 * of their own loopback addresses.
 */
#define RELAY_SMTP_PORT 25
/* The same as a string literal, for prose assembled at compile time
 * (stringized, so the two cannot disagree; no function can do this). */
#define RELAY_SMTP_PORT_TEXT RELAY_CONFIG_STR_(RELAY_SMTP_PORT)
#define RELAY_CONFIG_STR_(x) RELAY_CONFIG_STR2_(x)
#define RELAY_CONFIG_STR2_(x) #x

enum relay_config_err {
	RELAY_CONFIG_OK = 0,
	RELAY_CONFIG_ENOMEM = -1,
	RELAY_CONFIG_EIO = -2,      /* file missing or unreadable */
	RELAY_CONFIG_ESYNTAX = -3,  /* a line that is not "key = value" */
	RELAY_CONFIG_EUNKNOWN = -4, /* unknown parameter name */
	RELAY_CONFIG_EVALUE = -5,  /* value of the wrong type or out of range */
	RELAY_CONFIG_EDUP = -6,    /* parameter set twice */
	RELAY_CONFIG_EPOLICY = -7, /* error in tls_policy_file */
};

/* Returns a static string for an enum relay_config_err value. */
const char *relay_config_strerror(int err);

/* Parameter types (column "type" of the table). */
enum relay_config_type {
	RELAY_CONFIG_STRING,   /* free text on one line */
	RELAY_CONFIG_PATH,     /* file or directory; made absolute */
	RELAY_CONFIG_BOOL,     /* yes | no */
	RELAY_CONFIG_INT,      /* decimal integer within [min, max] */
	RELAY_CONFIG_DURATION, /* 300s 5m 1h 5d 250ms; stored in ms */
	RELAY_CONFIG_SIZE,     /* bytes, k or m suffix */
	RELAY_CONFIG_ADDRLIST, /* 127.0.0.1:10025, [::1]:10025 */
	RELAY_CONFIG_CIDRLIST, /* 127.0.0.0/8, [::1]/128 */
	RELAY_CONFIG_FWDLIST,  /* 127.0.0.1@5353, ::1 (unbound forward-addr) */
	RELAY_CONFIG_ENUM,     /* one word of a fixed list */
	RELAY_CONFIG_NEXTHOP,  /* [host]:port, Postfix relayhost syntax */
};

/*
 * TLS security levels (Postfix smtp_tls_security_level names). The global
 * tls_security_level accepts dane, dane-only, may, encrypt, verify;
 * the per-destination tls_policy_file also accepts none.
 */
enum relay_tls_level {
	RELAY_TLS_DANE,      /* RFC 7672: DANE when TLSA usable, else may */
	RELAY_TLS_DANE_ONLY, /* DANE required: defer when no usable TLSA */
	RELAY_TLS_MAY,       /* opportunistic TLS, no authentication */
	RELAY_TLS_ENCRYPT,   /* TLS required, no authentication */
	RELAY_TLS_VERIFY,    /* TLS required, WebPKI chain + name check */
	RELAY_TLS_NONE,      /* cleartext (policy file only) */
};
/* "dane", "dane-only", ... for a level (static string). */
const char *relay_tls_level_name(enum relay_tls_level level);

enum relay_config_log_level {
	RELAY_CONFIG_LOG_INFO,
	RELAY_CONFIG_LOG_DEBUG,
};

/*
 * inet_protocols (Postfix's name): the address families outbound SMTP
 * uses. A family that is off is neither looked up (no A or no AAAA query)
 * nor connected to.
 */
enum relay_inet_protocols {
	RELAY_INET_ALL,
	RELAY_INET_IPV4,
	RELAY_INET_IPV6,
};

/*
 * smtp_address_preference (Postfix's name): the order of one MX host's
 * addresses. ANY shuffles them all; IPV4/IPV6 put that family first, each
 * family in answer order.
 */
enum relay_address_preference {
	RELAY_ADDRPREF_ANY,
	RELAY_ADDRPREF_IPV4,
	RELAY_ADDRPREF_IPV6,
};

/* tls_required_header: what a `TLS-Required: No` header field (RFC 8689
 * 4.2.2) does. Index into the config words "ignore", "honour". */
enum relay_tls_required_header {
	RELAY_TLS_REQUIRED_HEADER_IGNORE,
	RELAY_TLS_REQUIRED_HEADER_HONOUR,
};

/* One element of an address list (listen). */
struct relay_config_addr {
	struct sockaddr_storage sa; /* AF_INET or AF_INET6, port set */
	socklen_t salen;
	char text[64]; /* canonical "1.2.3.4:25" / "[::1]:25" */
};

/* One element of a CIDR list (mynetworks). */
struct relay_config_cidr {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network, host bits cleared */
	unsigned prefix;  /* 0..32 or 0..128 */
};

/* One DNS forwarder, kept in unbound's "addr[@port]" syntax. */
struct relay_config_fwd {
	char text[64];
};

/*
 * A next hop in Postfix's relayhost syntax, bracketed form only:
 * "[host]" or "[host]:port" (the brackets mean: no MX lookup, connect to
 * host itself). host is an IPv4 address, an IPv6 address (also written
 * "ipv6:addr", as Postfix and RFC 5321 4.1.3 do) or a host name. The
 * port defaults to 25. Unset when the value is empty.
 */
#define RELAY_CONFIG_NEXTHOP_HOST_MAX 254 /* 253 + NUL (RFC 1035 2.3.4) */
struct relay_config_nexthop {
	bool set;                                 /* false: empty value */
	char host[RELAY_CONFIG_NEXTHOP_HOST_MAX]; /* lower case, no brackets */
	bool literal;     /* host is an address: family/addr are set */
	int family;       /* AF_INET or AF_INET6 when literal */
	uint8_t addr[16]; /* 4 used for AF_INET */
	uint16_t port;    /* 25 unless given */
	char text[RELAY_CONFIG_NEXTHOP_HOST_MAX + 16]; /* canonical
	                                   "[host]:port", "" when unset */
};

/*
 * Parse p/len (trimmed, no NUL needed) as a bracketed next hop into *out.
 * An empty value gives an unset next hop. Refused (-1, *out unchanged):
 * a value without brackets (Postfix would look up MX records for it),
 * an empty or malformed host, a port outside 1..65535, anything after
 * the port. Returns 0 or -1.
 */
int relay_config_nexthop_parse(const char *p, size_t len,
    struct relay_config_nexthop *out) RELAY_CONFIG_WUR;

/* One line of tls_policy_file: "example.com dane-only". */
struct relay_tls_policy_entry {
	char *domain; /* lower case, no trailing dot; a leading '.'
	                         means "every subdomain of" (Postfix style) */
	enum relay_tls_level level;
	/* Where the entry was written, so every decision it makes can name
	 * it ("FILE:LINE" in logs, queue show and probe). */
	char *file;    /* the name given to the parser (owned) */
	unsigned line; /* 1-based line number in that file */
	/* A time-boxed exception: `until=YYYY-MM-DD` applies the entry
	 * through the end of that day, UTC; from the next day on it is
	 * skipped as if it were not in the file. until_day is the date as
	 * days since 1970-01-01 (UTC), until the text as written; both
	 * unset (has_until false, until "") without until=. */
	bool has_until;
	int64_t until_day;
	char until[11];
	/* `reason="..."`: why the exception exists, named in every log line
	 * of a delivery it decides (owned; "" when not given). */
	char *reason;
};

/*
 * The effective configuration. Public, read-only after relay_config_load();
 * every char * and array is owned by the struct and released by
 * relay_config_free(). Strings are never NULL (empty string when unset).
 * Field names equal parameter names; durations carry an _ms suffix.
 */
struct relay_config {
	/* public, read-only */
	struct relay_config_addr *listen;
	size_t listen_count;
	struct relay_config_cidr *mynetworks;
	size_t mynetworks_count;
	struct relay_config_addr *metrics_listen; /* empty: no endpoint */
	size_t metrics_listen_count;
	char *myhostname;
	char *spool_dir;
	char *run_user;
	char *log_file;
	enum relay_config_log_level log_level;

	char *dns_resolver_config;
	struct relay_config_fwd *dns_forwarders;
	size_t dns_forwarders_count;
	char *dns_trust_anchor_file;
	char *dns_selftest_name;
	uint64_t dns_selftest_interval_ms;

	enum relay_tls_level tls_security_level;
	enum relay_tls_required_header tls_required_header;
	char *tls_policy_file;
	char *tls_cert_file;
	char *tls_key_file;
	char *tls_ca_file;

	/* MTA-STS (RFC 8461). */
	bool mta_sts_enable;
	char *mta_sts_ca_file;
	uint64_t mta_sts_timeout_ms;
	uint64_t mta_sts_check_interval_ms;

	uint64_t retry_min_ms;
	uint64_t retry_max_ms;
	uint64_t max_queue_lifetime_ms;
	uint64_t delay_warning_time_ms;
	uint64_t message_size_limit;
	int64_t max_recipients;
	int64_t max_connections;
	int64_t max_connections_per_client;
	int64_t destination_concurrency_limit;
	int64_t initial_destination_concurrency;
	uint64_t connection_cache_time_ms;
	uint64_t in_flow_delay_ms;
	uint64_t shutdown_timeout_ms;
	bool smtputf8_enable;
	bool routing_monitor_enable;
	int64_t routing_monitor_size;

	/* Outbound SMTP client: families, address order, source addresses
	 * (literals checked at load; "" lets the kernel choose) and the EHLO
	 * name (myhostname unless set). */
	enum relay_inet_protocols inet_protocols;
	enum relay_address_preference smtp_address_preference;
	char *smtp_bind_address;
	char *smtp_bind_address6;
	char *smtp_helo_name;

	/* Outbound SMTP client, per state (Postfix smtp_*_timeout). */
	uint64_t smtp_connect_timeout_ms;
	uint64_t smtp_helo_timeout_ms;
	uint64_t smtp_starttls_timeout_ms;
	uint64_t smtp_mail_timeout_ms;
	uint64_t smtp_rcpt_timeout_ms;
	uint64_t smtp_data_init_timeout_ms;
	uint64_t smtp_data_xfer_timeout_ms;
	uint64_t smtp_data_done_timeout_ms;
	uint64_t smtp_quit_timeout_ms;
	/* Inbound SMTP server. */
	uint64_t smtpd_timeout_ms;
	uint64_t smtpd_starttls_timeout_ms;
	int64_t smtpd_min_data_rate; /* bytes per second */
	int64_t smtpd_reject_connection_limit;
	uint64_t smtpd_reject_timeout_ms;

	char *report_recipient;
	uint64_t report_interval_ms;

	/* Where locally generated mail (DSNs, reports) is handed over; unset:
	 * delivered like any other mail. */
	struct relay_config_nexthop notify_relayhost;
	/* SMTP TLS Reporting (RFC 8460): relay/tlsrpt/. */
	bool tlsrpt_enable;
	char *tlsrpt_organization;
	char *tlsrpt_contact;
	char *tlsrpt_submitter;
	char *tlsrpt_sender;
	char *tlsrpt_ca_file;
	bool policy_exceptions_require_reason;

	/* Parsed tls_policy_file, sorted; see relay_config_tls_policy(). */
	struct relay_tls_policy_entry *tls_policy;
	size_t tls_policy_count;

	/* private */
	char *source_;   /* file name of the last load (owned) */
	bool *explicit_; /* per table row: set in the file */
	unsigned *line_; /* per table row: line where set */
};

/* One row of the parameter table. */
struct relay_config_param {
	const char *name;
	enum relay_config_type type;
	const char *def;           /* default as text; NULL: computed
	                               (see def_doc) */
	const char *def_doc;       /* how a computed default is obtained */
	int64_t min, max;          /* INT, DURATION (ms), SIZE: the range */
	const char *const *values; /* ENUM: NULL-terminated word list */
	size_t offset;             /* offsetof(struct relay_config, field) */
	size_t count_offset;       /* lists: offset of the _count field */
	const char *doc;           /* one or two sentences, Markdown */
};

/*
 * The parameter table, sorted by name. *count receives the number of rows.
 * Static storage; never NULL.
 */
const struct relay_config_param *relay_config_params(size_t *count);

/* The row for a parameter name (len bytes, no NUL needed), or NULL. */
const struct relay_config_param *relay_config_param_find(const char *name,
    size_t len);

/* Room for "FILE:LINE: message". */
#define RELAY_CONFIG_ERRMAX 512

/*
 * Fills *cfg with every default (myhostname from gethostname(), relative
 * default paths resolved against the working directory). On error *cfg
 * holds nothing to free. Returns 0 or RELAY_CONFIG_ENOMEM.
 */
int relay_config_init(struct relay_config *cfg) RELAY_CONFIG_WUR;

/*
 * Initialises *cfg with defaults, then applies the file at path, then sets
 * the defaults that follow other parameters (smtp_helo_name), then
 * cross-checks (retry_min <= retry_max, tls_cert_file and tls_key_file
 * together) and loads tls_policy_file. path is borrowed.
 * On error returns a negative enum relay_config_err, writes one line
 * "FILE:LINE: message" (no newline) into err[RELAY_CONFIG_ERRMAX] and
 * leaves *cfg with nothing to free. On success the caller owns *cfg and
 * must call relay_config_free().
 */
int relay_config_load(struct relay_config *cfg, const char *path,
    char *err) RELAY_CONFIG_WUR;

/*
 * As relay_config_load() but from memory: name is used in messages, p/len
 * is the file content (need not be NUL terminated). The tls_policy_file,
 * when set, is still read from disk.
 */
int relay_config_load_buf(struct relay_config *cfg, const char *name,
    const uint8_t *p, size_t len, char *err) RELAY_CONFIG_WUR;

/*
 * The one duration syntax of danerelay, for configuration values and
 * command-line options alike (`queue list --older-than`): decimal digits,
 * then one unit of ms, s, m, h, d or w (case-insensitive; none means
 * seconds, as in Postfix). p/len need not be NUL-terminated and must
 * already be trimmed: white space anywhere is an error. On success stores
 * milliseconds in *ms and returns 0; returns -1 on a syntax error or when
 * the value does not fit in 64 bits (*ms unchanged). The range of a
 * parameter is checked by the caller.
 */
int relay_config_parse_duration(const char *p, size_t len,
    uint64_t *ms) RELAY_CONFIG_WUR;

/*
 * A duration on the command line (`queue list --older-than 1w`) in the
 * configuration's syntax (relay_config_parse_duration(): one parser for
 * both), into *us, microseconds as queue times are kept. text is
 * NUL-terminated and borrowed. Returns 0, or -1 on a syntax error or a
 * value too large for *us (*us unchanged).
 */
int relay_config_duration_us(const char *text, uint64_t *us) RELAY_CONFIG_WUR;

/* Releases everything owned by *cfg. NULL and a zeroed struct are fine. */
void relay_config_free(struct relay_config *cfg);

/*
 * The tls_policy_file parser alone: lines "domain level [ATTR...]", '#'
 * comments. Attributes: until=YYYY-MM-DD (a real calendar date, years
 * 1970..9999) and reason="text" (double quotes; \" and \\ inside; a
 * single word needs none), each at most once; anything else is an error.
 * On success replaces the array in *entries (count in *count), freeing
 * the previous one; the caller frees the result with
 * relay_tls_policy_free() (or relay_config_free() when it belongs to a
 * config). On error nothing changes and err holds "NAME:LINE: message".
 */
int relay_tls_policy_parse(const char *name, const uint8_t *p, size_t len,
    struct relay_tls_policy_entry **entries, size_t *count,
    char *err) RELAY_CONFIG_WUR;
void relay_tls_policy_free(struct relay_tls_policy_entry *entries,
    size_t count);

/*
 * Security level for a destination domain (len bytes, case-insensitive,
 * a trailing dot ignored) at wall time now_us: an exact entry wins, then
 * the nearest ".parent" entry, then cfg->tls_security_level. Entries whose
 * until= date has passed at now_us are skipped.
 */
enum relay_tls_level relay_config_tls_policy(const struct relay_config *cfg,
    const char *domain, size_t len, uint64_t now_us);

/*
 * The tls_policy_file entry that decides the level of domain at wall time
 * now_us, with the same matching as relay_config_tls_policy(), or NULL
 * when tls_security_level applies. When expired is not NULL it receives
 * the first matching entry that was skipped because its until= date has
 * passed (NULL when none). Borrowed from cfg (valid until
 * relay_config_free()).
 */
const struct relay_tls_policy_entry *
relay_config_tls_policy_entry(const struct relay_config *cfg,
    const char *domain, size_t len, uint64_t now_us,
    const struct relay_tls_policy_entry **expired);

/* The UTC calendar day of wall time now_us (days since 1970-01-01). */
int64_t relay_config_day_of(uint64_t now_us);

/*
 * Days an exception has left at now_us: until_day minus today (0 on its
 * last day, negative once expired). Only for entries with has_until.
 */
int64_t relay_tls_policy_days_left(const struct relay_tls_policy_entry *e,
    uint64_t now_us);

/* Whether e applies at now_us (no until=, or not past its date). */
bool relay_tls_policy_active(const struct relay_tls_policy_entry *e,
    uint64_t now_us);

/*
 * True when the address is inside one of cfg->mynetworks. IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d) are matched as IPv4.
 */
bool relay_config_mynetworks_match(const struct relay_config *cfg,
    const struct sockaddr *sa);

/* Whether the parameter was set in the loaded file (postconf -n). */
bool relay_config_is_explicit(const struct relay_config *cfg,
    const struct relay_config_param *param);

/*
 * Formats the effective value of param in cfg into buf (canonical form:
 * durations in the largest exact unit, lists joined by ", ").
 * Returns the length, or -1 if it did not fit (buf then holds a
 * truncated NUL-terminated string).
 */
int relay_config_format(const struct relay_config *cfg,
    const struct relay_config_param *param, char *buf, size_t size);

enum relay_config_print_mode {
	RELAY_CONFIG_PRINT_ALL,      /* every parameter */
	RELAY_CONFIG_PRINT_EXPLICIT, /* postconf -n: only those in the file */
	RELAY_CONFIG_PRINT_DEFAULTS, /* postconf -d: the defaults */
};
/* Prints "key = value" lines. Returns 0 or -1 on a write error. */
int relay_config_print(FILE *out, const struct relay_config *cfg,
    enum relay_config_print_mode mode) RELAY_CONFIG_WUR;

/*
 * Prints the Markdown reference table (| Parameter | Type | Default |
 * Description |) generated from the table. Returns 0 or -1.
 */
int relay_config_print_doc(FILE *out) RELAY_CONFIG_WUR;

#endif
