/*
 * relay_report: `queue list`, `queue show` and `report` as pure functions
 * over envelopes. See relay_report.h.
 */
#include "relay_report.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "relay_config.h"
#include "relay_json.h"
#include "tlsa_hint.h"

#define US_PER_S 1000000u
/* Reasons are cut in list lines; show prints them whole. */
#define LIST_REASON_MAX 160
/* RFC 5322 2.1.1: a line is at most 998 characters (the mail report). */
#define MAIL_LINE_MAX 998
/* The widest domain column of the report table. */
#define REPORT_DOMAIN_COL_MAX 60

/* ------------------------------------------------------------ output */

/* Sticky-error printing: every helper returns nothing, the caller checks
 * ferror() once at the end. */
__attribute__((format(printf, 2, 3))) static void
pf(FILE *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vfprintf(out, fmt, ap);
	va_end(ap);
}

static int
out_status(FILE *out)
{
	return ferror(out) ? -1 : 0;
}

/*
 * Untrusted text on one line: runs of CR, LF, TAB and SP become one
 * space, other control bytes '?', non-ASCII passes when it is valid UTF-8
 * (and not ascii), else '?'. At most max input bytes, then "...".
 * Returns the number of bytes written.
 */
static size_t
put_safe_n(FILE *out, const uint8_t *p, size_t len, size_t max, bool ascii)
{
	size_t i = 0, w = 0;
	bool space = false;

	while (i < len) {
		uint8_t c = p[i];
		if (i >= max) {
			fputs("...", out);
			return w + 3;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = true;
			i++;
			continue;
		}
		if (space && w > 0) {
			fputc(' ', out);
			w++;
		}
		space = false;
		if (c >= 0x80) {
			size_t n = relay_json_utf8_len(p + i, len - i);
			if (n == 0 || ascii) {
				fputc('?', out);
				w++;
				i += n == 0 ? 1 : n;
			} else {
				fwrite(p + i, 1, n, out);
				w += n;
				i += n;
			}
			continue;
		}
		fputc(c < 0x20 || c == 0x7f ? '?' : (char)c, out);
		w++;
		i++;
	}
	return w;
}

static size_t
put_safe(FILE *out, const char *s, size_t max, bool ascii)
{
	if (s == NULL)
		return 0;
	return put_safe_n(out, (const uint8_t *)s, strlen(s), max, ascii);
}

static void
fmt_utc(char *buf, size_t size, uint64_t us)
{
	time_t t = (time_t)(us / US_PER_S);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		(void)snprintf(buf, size, "@%" PRIu64, us / US_PER_S);
}

static void
fmt_local(char *buf, size_t size, uint64_t us)
{
	time_t t = (time_t)(us / US_PER_S);
	struct tm tm;

	/* Postfix mailq's arrival column: "Sat Nov 22 15:08:01". */
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%a %b %e %H:%M:%S", &tm) == 0)
		(void)snprintf(buf, size, "@%" PRIu64, us / US_PER_S);
}

/* "45s", "12m", "2h 5m", "3d 4h". */
static void
fmt_age(char *buf, size_t size, uint64_t us)
{
	uint64_t s = us / US_PER_S;

	if (s < 60)
		(void)snprintf(buf, size, "%" PRIu64 "s", s);
	else if (s < 3600)
		(void)snprintf(buf, size, "%" PRIu64 "m", s / 60);
	else if (s < 86400)
		(void)snprintf(buf, size, "%" PRIu64 "h %" PRIu64 "m", s / 3600,
		    s % 3600 / 60);
	else
		(void)snprintf(buf, size, "%" PRIu64 "d %" PRIu64 "h",
		    s / 86400, s % 86400 / 3600);
}

static uint64_t
age_us(uint64_t now_us, uint64_t then_us)
{
	return now_us > then_us ? now_us - then_us : 0;
}

/* ------------------------------------------------------ shared pieces */

const char *
relay_report_queue_name(enum relay_report_queue q)
{
	switch (q) {
	case RELAY_REPORT_QUEUE_ACTIVE:
		return "active";
	case RELAY_REPORT_QUEUE_DEFERRED:
		return "deferred";
	case RELAY_REPORT_QUEUE_HOLD:
		return "hold";
	}
	return "active";
}

static bool
rcpt_open(const struct relay_queue_rcpt *r)
{
	return r->status == RELAY_QUEUE_RCPT_PENDING ||
	    r->status == RELAY_QUEUE_RCPT_DEFERRED;
}

enum relay_report_queue
relay_report_queue_of(const struct relay_queue_envelope *env, uint64_t now_us)
{
	if (env->hold)
		return RELAY_REPORT_QUEUE_HOLD;
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct relay_queue_rcpt *r = &env->rcpt[i];
		if (r->status == RELAY_QUEUE_RCPT_DEFERRED &&
		    r->next_attempt_us > now_us)
			return RELAY_REPORT_QUEUE_DEFERRED;
	}
	return RELAY_REPORT_QUEUE_ACTIVE;
}

char *
relay_report_domain(const char *address, char *buf, size_t size)
{
	const char *at = strrchr(address, '@');
	size_t n = 0;

	if (size == 0)
		return buf;
	if (at != NULL) {
		for (const char *s = at + 1; *s != '\0' && n + 1 < size; s++)
			buf[n++] = (char)tolower((unsigned char)*s);
		/* A trailing dot names the same domain. */
		if (n > 0 && buf[n - 1] == '.')
			n--;
	}
	buf[n] = '\0';
	return buf;
}

/* The hint for a class nobody wrote one for, or a class this version does
 * not know (relay_fail_class.h: kept verbatim from another version). */
static const char generic_hint[] =
    "no hint for this class; see the latest reason and the log";

/* One line per failure class the daemon writes (relay_class.h). Every
 * class is listed (STYLE 3), so a new one does not build until someone
 * decides what operators are told. */
const char *
relay_report_fail_class_hint(enum relay_fail_class c)
{
	switch (c) {
	case RELAY_FAIL_CLASS_TLSA_MISMATCH:
		return "the server's key does not match its TLSA records; "
		       "if the key was rotated, the domain must publish a TLSA record for "
		       "the new key";
	case RELAY_FAIL_CLASS_DNSSEC_BOGUS:
		return "DNSSEC validation of the domain's records fails "
		       "(bad or expired signatures, broken DS chain); the domain's DNS "
		       "operator must fix its zone signing";
	case RELAY_FAIL_CLASS_TLSA_LOOKUP:
		/* RFC 7672 2.2.3 / RFC 6698 3: the owner name carries the
		 * port connected to. */
		return "the TLSA lookup for the MX host failed or could not "
		       "be validated; check the host's _" RELAY_SMTP_PORT_TEXT
		       "._tcp "
		       "TLSA records and their signatures";
	case RELAY_FAIL_CLASS_STARTTLS_MISSING:
		return "the domain publishes TLSA records but its server "
		       "does not offer STARTTLS; the server must enable TLS (RFC 7672 "
		       "forbids falling back to cleartext)";
	case RELAY_FAIL_CLASS_TLS_HANDSHAKE:
		return "the TLS handshake with the server failed; check "
		       "the server's TLS versions, ciphers and certificate chain";
	case RELAY_FAIL_CLASS_DNS_LOOKUP:
		return "the MX or address lookup failed (SERVFAIL, timeout or "
		       "no address); check the domain's DNS and this host's resolver";
	case RELAY_FAIL_CLASS_CONNECT:
		return "the MX hosts could not be reached on port " RELAY_SMTP_PORT_TEXT
		       " (refused, timed out or connection lost)";
	case RELAY_FAIL_CLASS_SMTP_4XX:
		return "the receiving server answered with a temporary error "
		       "(greylisting, rate limit, full mailbox...); see its reply";
	case RELAY_FAIL_CLASS_SMTP_5XX:
		return "the receiving server refused with a permanent error; "
		       "see its reply";
	case RELAY_FAIL_CLASS_DANE_REQUIRED:
		return "the policy requires DANE (dane-only) but the domain "
		       "has no usable TLSA records; the domain must publish them, or the "
		       "per-destination policy must be relaxed";
	case RELAY_FAIL_CLASS_TLSA_INVALID:
		return "none of the domain's TLSA records is usable (unknown "
		       "parameters or malformed data); the domain must publish valid "
		       "records";
	case RELAY_FAIL_CLASS_NULL_MX:
		return "the domain publishes a null MX (RFC 7505) and accepts no "
		       "mail";
	case RELAY_FAIL_CLASS_DNSSEC_SELFTEST:
		return "this relay's own DNSSEC self-test fails, so every "
		       "DANE-dependent delivery waits; check the resolver, the trust anchor "
		       "and the clock of this host";
	case RELAY_FAIL_CLASS_ADDRESS:
		return "the recipient address is malformed";
	case RELAY_FAIL_CLASS_SHUTDOWN:
		return "delivery was interrupted by a shutdown of danerelay; it "
		       "is retried automatically";
	case RELAY_FAIL_CLASS_SMTP_PROTOCOL:
		return "the receiving server broke the SMTP protocol; see "
		       "its reply";
	case RELAY_FAIL_CLASS_MESSAGE_SIZE:
		return "the message is larger than the receiving server "
		       "accepts (SIZE)";
	case RELAY_FAIL_CLASS_SMTPUTF8_MISSING:
		return "the message needs SMTPUTF8 but the receiving "
		       "server does not offer it";
	case RELAY_FAIL_CLASS_REQUIRETLS:
		return "the sender asked for REQUIRETLS (RFC 8689): no MX host "
		       "had DNSSEC-secure MX records, DANE-authenticated TLS "
		       "and REQUIRETLS after STARTTLS";
	case RELAY_FAIL_CLASS_LOCAL:
		return "a local error in danerelay (memory, disk); see the log";
	case RELAY_FAIL_CLASS_STS_MX_MISMATCH:
		return "the domain's MTA-STS policy (enforce) lists none of its "
		       "MX hosts; the domain must fix its policy's mx lines or its MX "
		       "records";
	case RELAY_FAIL_CLASS_STS_CERTIFICATE:
		return "the MX host's certificate is not valid for its name "
		       "under the public CAs (mta_sts_ca_file), which the domain's "
		       "MTA-STS policy (enforce) requires";
	case RELAY_FAIL_CLASS_STS_STARTTLS_MISSING:
		return "the MX host offers no STARTTLS, which the domain's "
		       "MTA-STS policy (enforce) requires";
	case RELAY_FAIL_CLASS_STS_POLICY_FETCH:
		return "the domain's _mta-sts TXT lookup was bogus or failed and "
		       "no policy is cached; check the domain's DNS";
	case RELAY_FAIL_CLASS_CERT_HOST_MISMATCH:
	case RELAY_FAIL_CLASS_CERT_EXPIRED:
	case RELAY_FAIL_CLASS_CERT_NOT_TRUSTED:
	case RELAY_FAIL_CLASS_TIMEOUT:
		/* No hint written yet: the PKIX classes of a `verify` policy,
		 * and probe's deadline (never in a spool). */
	case RELAY_FAIL_CLASS_NONE:
	case RELAY_FAIL_CLASS_UNKNOWN:
		break;
	}
	return generic_hint;
}

const char *
relay_report_class_hint(const char *failure_class)
{
	return relay_report_fail_class_hint(
	    relay_fail_class_parse(failure_class));
}

/* ------------------------------------------------------------ filters */

static bool
domain_match(const char *want, const char *domain)
{
	if (want[0] == '.') {
		size_t wl = strlen(want), dl = strlen(domain);
		return dl > wl && strcasecmp(domain + dl - wl, want) == 0;
	}
	size_t wl = strlen(want);
	if (wl > 0 && want[wl - 1] == '.')
		wl--;
	return strlen(domain) == wl && strncasecmp(domain, want, wl) == 0;
}

bool
relay_report_rcpt_match(const struct relay_report_filter *f,
    const struct relay_queue_rcpt *r)
{
	if (f == NULL)
		return true;
	if (f->domain != NULL) {
		char d[256];
		if (!domain_match(f->domain,
		        relay_report_domain(r->address, d, sizeof(d))))
			return false;
	}
	if (f->failure_class != NULL &&
	    strcmp(f->failure_class, r->failure_class) != 0)
		return false;
	return true;
}

bool
relay_report_env_match(const struct relay_report_filter *f,
    const struct relay_queue_envelope *env, uint64_t now_us)
{
	if (f == NULL)
		return true;
	if (f->older_than_us > 0 &&
	    age_us(now_us, env->arrival_us) < f->older_than_us)
		return false;
	for (size_t i = 0; i < env->rcpt_count; i++)
		if (relay_report_rcpt_match(f, &env->rcpt[i]))
			return true;
	return false;
}

/* ------------------------------------------------------------ queue list */

#define LIST_INDENT 46

int
relay_report_list_header(FILE *out)
{
	pf(out, "%-15s %8s %-20s %s\n", "-Queue ID-", "--Size--",
	    "----Arrival Time----", "-Sender/Recipient-------");
	return out_status(out);
}

static void
put_rcpt_state(FILE *out, const struct relay_queue_rcpt *r, uint64_t now_us)
{
	pf(out, "(%s", relay_queue_rcpt_status_name(r->status));
	if (r->dsn[0] != '\0') {
		fputc(' ', out);
		put_safe(out, r->dsn, 16, true);
	}
	if (r->failure_class[0] != '\0') {
		fputc(' ', out);
		put_safe(out, r->failure_class, 32, true);
	}
	if (r->attempts > 0)
		pf(out, ", %" PRIu32 " attempt%s", r->attempts,
		    r->attempts == 1 ? "" : "s");
	if (r->status == RELAY_QUEUE_RCPT_DEFERRED) {
		char age[32];
		if (r->next_attempt_us > now_us) {
			fmt_age(age, sizeof(age), r->next_attempt_us - now_us);
			pf(out, ", next in %s", age);
		} else {
			fputs(", retry due", out);
		}
	}
	if (r->reason[0] != '\0') {
		fputs(": ", out);
		put_safe(out, r->reason, LIST_REASON_MAX, false);
	}
	fputs(")", out);
}

int
relay_report_list_text(FILE *out, const struct relay_queue_envelope *env,
    const struct relay_report_filter *f, uint64_t now_us,
    struct relay_report_list_totals *totals)
{
	char date[40];
	char flag = ' ';

	if (!relay_report_env_match(f, env, now_us))
		return out_status(out);
	switch (relay_report_queue_of(env, now_us)) {
	case RELAY_REPORT_QUEUE_HOLD:
		flag = '!';
		break;
	case RELAY_REPORT_QUEUE_ACTIVE:
		flag = '*';
		break;
	case RELAY_REPORT_QUEUE_DEFERRED:
		break;
	}
	fmt_local(date, sizeof(date), env->arrival_us);
	pf(out, "%s%c %8" PRIu64 " %-20s ", env->id, flag, env->size, date);
	if (env->sender[0] == '\0')
		fputs("MAILER-DAEMON", out);
	else
		put_safe(out, env->sender, 512, false);
	fputc('\n', out);
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct relay_queue_rcpt *r = &env->rcpt[i];
		if (!relay_report_rcpt_match(f, r))
			continue;
		pf(out, "%*s", LIST_INDENT, "");
		put_safe(out, r->address, 512, false);
		fputc('\n', out);
		pf(out, "%*s", LIST_INDENT + 2, "");
		put_rcpt_state(out, r, now_us);
		fputc('\n', out);
	}
	fputc('\n', out);
	if (totals != NULL) {
		totals->bytes += env->size;
		totals->messages++;
	}
	return out_status(out);
}

int
relay_report_list_footer(FILE *out,
    const struct relay_report_list_totals *totals)
{
	const struct relay_queue_scan_counts *u = &totals->unreadable;
	bool damaged = u->unparsable > 0 || u->corrupt > 0;

	/* "Empty" only when the scan found nothing at all: a queue holding
	 * only envelopes that do not parse is not empty. */
	if (totals->messages == 0 && !damaged)
		fputs("Mail queue is empty\n", out);
	else
		pf(out, "-- %" PRIu64 " Kbytes in %" PRIu64 " Request%s.\n",
		    (totals->bytes + 1023) / 1024, totals->messages,
		    totals->messages == 1 ? "" : "s");
	if (damaged)
		pf(out,
		    "-- %" PRIu64 " unparsable envelope%s in queue/, %" PRIu64
		    " file%s in corrupt/.\n",
		    u->unparsable, u->unparsable == 1 ? "" : "s", u->corrupt,
		    u->corrupt == 1 ? "" : "s");
	return out_status(out);
}

static void
notify_text(unsigned notify, char *buf, size_t size)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ RELAY_QUEUE_NOTIFY_NEVER, "never" },
		{ RELAY_QUEUE_NOTIFY_SUCCESS, "success" },
		{ RELAY_QUEUE_NOTIFY_FAILURE, "failure" },
		{ RELAY_QUEUE_NOTIFY_DELAY, "delay" },
	};
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(notify & names[i].bit))
			continue;
		int w = snprintf(buf + n, size - n, "%s%s", n ? "," : "",
		    names[i].name);
		if (w < 0 || (size_t)w >= size - n)
			return;
		n += (size_t)w;
	}
}

static void
json_rcpt_summary(struct relay_json *j, const struct relay_queue_rcpt *r)
{
	char notify[64];

	relay_json_kv_str(j, "address", r->address);
	relay_json_kv_str(j, "status", relay_queue_rcpt_status_name(r->status));
	relay_json_kv_str(j, "dsn", r->dsn);
	relay_json_kv_str(j, "reason", r->reason);
	relay_json_kv_str(j, "failure_class", r->failure_class);
	relay_json_kv_u64(j, "attempts", r->attempts);
	relay_json_kv_u64(j, "next_attempt", r->next_attempt_us / US_PER_S);
	relay_json_kv_str(j, "orcpt", r->orcpt);
	notify_text(r->notify, notify, sizeof(notify));
	relay_json_kv_str(j, "notify", notify);
	relay_json_kv_bool(j, "delay_warned", r->delay_warned);
}

static void
json_env_summary(struct relay_json *j, const struct relay_queue_envelope *env,
    uint64_t now_us)
{
	relay_json_kv_str(j, "queue_id", env->id);
	relay_json_kv_str(j, "queue_name",
	    relay_report_queue_name(relay_report_queue_of(env, now_us)));
	relay_json_kv_u64(j, "arrival_time", env->arrival_us / US_PER_S);
	relay_json_kv_u64(j, "message_size", env->size);
	relay_json_kv_str(j, "sender", env->sender);
	relay_json_kv_bool(j, "hold", env->hold);
}

int
relay_report_list_json(FILE *out, const struct relay_queue_envelope *env,
    const struct relay_report_filter *f, uint64_t now_us)
{
	struct relay_json j;

	if (!relay_report_env_match(f, env, now_us))
		return out_status(out);
	relay_json_init(&j, out);
	relay_json_obj_begin(&j);
	json_env_summary(&j, env, now_us);
	relay_json_key(&j, "recipients");
	relay_json_arr_begin(&j);
	for (size_t i = 0; i < env->rcpt_count; i++) {
		if (!relay_report_rcpt_match(f, &env->rcpt[i]))
			continue;
		relay_json_obj_begin(&j);
		json_rcpt_summary(&j, &env->rcpt[i]);
		relay_json_obj_end(&j);
	}
	relay_json_arr_end(&j);
	relay_json_obj_end(&j);
	int rc = relay_json_finish(&j);
	fputc('\n', out);
	return rc != 0 ? rc : out_status(out);
}

/* ------------------------------------------------------------ queue show */

/* RFC 5322 2.2: field-name ":" field-body CRLF, folded lines start with
 * WSP. Bare LF line ends are accepted too (content is read leniently: this
 * is a display, not a gateway). */
void
relay_report_headers_parse(const uint8_t *p, size_t len,
    struct relay_report_headers *h)
{
	static const struct {
		const char *name;
		size_t off;
	} want[] = {
		{ "from", offsetof(struct relay_report_headers, from) },
		{ "to", offsetof(struct relay_report_headers, to) },
		{ "subject", offsetof(struct relay_report_headers, subject) },
		{ "message-id",
		    offsetof(struct relay_report_headers, message_id) },
		{ "date", offsetof(struct relay_report_headers, date) },
	};
	size_t i = 0;

	memset(h, 0, sizeof(*h));
	while (i < len) {
		size_t ls = i, le;
		/* The end of this logical field: up to a line end not
		 * followed by WSP. */
		for (le = i; le < len; le++) {
			if (p[le] != '\n')
				continue;
			if (le + 1 < len &&
			    (p[le + 1] == ' ' || p[le + 1] == '\t'))
				continue;
			break;
		}
		size_t next = le < len ? le + 1 : le;
		size_t end = le;
		if (end > ls && p[end - 1] == '\r')
			end--;
		if (end == ls)
			break; /* the empty line ends the header */
		size_t colon = ls;
		while (colon < end && p[colon] != ':')
			colon++;
		if (colon < end) {
			for (size_t k = 0; k < sizeof(want) / sizeof(want[0]);
			     k++) {
				size_t nl = strlen(want[k].name);
				struct relay_report_slice *s =
				    (struct relay_report_slice *)(void
				            *)((char *)h + want[k].off);
				if (s->p != NULL || colon - ls != nl ||
				    strncasecmp((const char *)p + ls,
				        want[k].name, nl) != 0)
					continue;
				size_t v = colon + 1;
				while (v < end && (p[v] == ' ' || p[v] == '\t'))
					v++;
				s->p = p + v;
				s->len = end - v;
			}
		}
		i = next;
	}
}

static void
put_slice(FILE *out, const struct relay_report_slice *s)
{
	if (s->p == NULL)
		fputs("(none)", out);
	else
		put_safe_n(out, s->p, s->len, 998, false);
}

/* The slice as a JSON string, unfolded (CRLF/LF before WSP dropped). */
static void
json_slice(struct relay_json *j, const char *key,
    const struct relay_report_slice *s)
{
	relay_json_key(j, key);
	if (s->p == NULL) {
		relay_json_null(j);
		return;
	}
	char *buf = malloc(s->len + 1);
	size_t n = 0;
	if (buf == NULL) {
		relay_json_strn(j, s->p, s->len);
		return;
	}
	for (size_t i = 0; i < s->len; i++)
		if (s->p[i] != '\r' && s->p[i] != '\n')
			buf[n++] = (char)s->p[i];
	relay_json_strn(j, buf, n);
	free(buf);
}

static const char *
ret_name(enum relay_queue_ret r)
{
	switch (r) {
	case RELAY_QUEUE_RET_NONE:
		return "none";
	case RELAY_QUEUE_RET_FULL:
		return "full";
	case RELAY_QUEUE_RET_HDRS:
		return "hdrs";
	}
	return "none";
}

static const char *
body_name(enum relay_queue_body b)
{
	switch (b) {
	case RELAY_QUEUE_BODY_7BIT:
		return "7bit";
	case RELAY_QUEUE_BODY_8BITMIME:
		return "8bitmime";
	case RELAY_QUEUE_BODY_BINARYMIME:
		return "binarymime";
	}
	return "7bit";
}

/* "  label:   value\n" with value untrusted; nothing when value is "". */
static void
show_field(FILE *out, int indent, const char *label, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	pf(out, "%*s%-13s ", indent, "", label);
	put_safe(out, value, 4096, false);
	fputc('\n', out);
}

/*
 * The DANE details of one attempt, one "label value" line each, shared by
 * `queue show` and the report: MX host and address, DNSSEC status of the
 * MX / address / TLSA lookups, the TLSA records seen, how TLS went, the
 * matched record, the peer's key and names, the server's reply. indent and
 * width lay the lines out for their caller; ascii (mail) replaces non-ASCII.
 */
static void
put_attempt_details(FILE *out, const struct relay_queue_attempt *a, int indent,
    int width, size_t max, bool ascii)
{
	if (a->mx_host[0] != '\0' || a->addr[0] != '\0') {
		pf(out, "%*s%-*s ", indent, "", width, "mx:");
		put_safe(out, a->mx_host[0] ? a->mx_host : "(none)", 256,
		    ascii);
		if (a->addr[0] != '\0') {
			fputs(" [", out);
			put_safe(out, a->addr, 64, ascii);
			fputc(']', out);
		}
		fputc('\n', out);
	}
	if (a->dnssec_mx[0] || a->dnssec_addr[0] || a->dnssec_tlsa[0]) {
		pf(out, "%*s%-*s mx=", indent, "", width, "dnssec:");
		put_safe(out, a->dnssec_mx[0] ? a->dnssec_mx : "-", 32, true);
		fputs(" addr=", out);
		put_safe(out, a->dnssec_addr[0] ? a->dnssec_addr : "-", 32,
		    true);
		fputs(" tlsa=", out);
		put_safe(out, a->dnssec_tlsa[0] ? a->dnssec_tlsa : "-", 32,
		    true);
		fputc('\n', out);
	}
	if (a->policy_entry[0] != '\0') {
		/* A tls_policy_file entry chose the level: name it, and say when
		 * it switched DANE off (RFC 7672 2.2 C25: local policy may, but
		 * not silently). */
		bool dane = strcmp(a->policy, "dane") == 0 ||
		    strcmp(a->policy, "dane-only") == 0;
		pf(out, "%*s%-*s ", indent, "", width, "policy:");
		put_safe(out, a->policy[0] ? a->policy : "-", 32, true);
		fputs(" (tls_policy_file ", out);
		put_safe(out, a->policy_entry, 1024, ascii);
		if (a->policy_reason[0] != '\0') {
			fputs(", reason: ", out);
			put_safe(out, a->policy_reason, 400, ascii);
		}
		fputs(dane ? ")\n" : "; DANE overridden)\n", out);
	}
	const struct {
		const char *label;
		const char *value;
	} lines[] = {
		{ "tlsa seen:", a->tlsa },
		{ "tls:", a->tls },
		{ "match:", a->matched },
		{ "peer spki:", a->peer_spki },
		{ "peer names:", a->peer_names },
		{ "reply:", a->reply },
		{ "routing:", a->routing_change },
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (lines[i].value == NULL || lines[i].value[0] == '\0')
			continue;
		pf(out, "%*s%-*s ", indent, "", width, lines[i].label);
		put_safe(out, lines[i].value, max, ascii);
		fputc('\n', out);
	}
	if (a->hint != NULL && a->hint[0] != '\0') {
		/* The routing monitor's diagnosis of a tlsa-mismatch. */
		pf(out, "%*s%-*s ", indent, "", width, "hint:");
		put_safe(out, a->hint, 64, true);
		const char *text = tlsa_hint_text_of(a->hint);
		if (text[0] != '\0')
			pf(out, ": %s", text);
		fputc('\n', out);
	}
}

static void
show_attempt(FILE *out, size_t n, const struct relay_queue_attempt *a)
{
	char when[40];

	fmt_utc(when, sizeof(when), a->time_us);
	pf(out, "    attempt %zu at %s:\n", n, when);
	put_attempt_details(out, a, 6, 13, 4096, false);
	pf(out, "      %-13s ", "result:");
	put_safe(out, a->status[0] ? a->status : "-", 32, true);
	if (a->dsn[0] != '\0') {
		fputc(' ', out);
		put_safe(out, a->dsn, 16, true);
	}
	if (a->failure_class[0] != '\0') {
		fputc(' ', out);
		put_safe(out, a->failure_class, 32, true);
	}
	if (a->reason[0] != '\0') {
		fputs(": ", out);
		put_safe(out, a->reason, 4096, false);
	}
	fputc('\n', out);
}

int
relay_report_show_text(FILE *out, const struct relay_queue_envelope *env,
    const struct relay_report_headers *h, uint64_t now_us)
{
	char when[40], age[32], notify[64];

	pf(out, "%-14s %s\n", "Queue ID:", env->id);
	pf(out, "%-14s %s%s\n", "Queue:",
	    relay_report_queue_name(relay_report_queue_of(env, now_us)),
	    env->hold ? " (held: not scheduled until released)" : "");
	fmt_utc(when, sizeof(when), env->arrival_us);
	fmt_age(age, sizeof(age), age_us(now_us, env->arrival_us));
	pf(out, "%-14s %s (%s ago)\n", "Arrival:", when, age);
	pf(out, "%-14s %" PRIu64 " bytes\n", "Size:", env->size);
	pf(out, "%-14s <", "Sender:");
	put_safe(out, env->sender, 512, false);
	fputs(env->sender[0] == '\0' ? "> (null sender)\n" : ">\n", out);
	pf(out, "%-14s ", "Client:");
	put_safe(out, env->client_name[0] ? env->client_name : "unknown", 256,
	    false);
	fputs("[", out);
	put_safe(out, env->client_addr, 64, false);
	fputs("] helo=", out);
	put_safe(out, env->helo[0] ? env->helo : "-", 256, false);
	fputc('\n', out);
	pf(out, "%-14s %s\n", "Origin:",
	    env->origin == RELAY_QUEUE_ORIGIN_LOCAL
	        ? "local (generated by danerelay: a DSN or a report; "
	          "goes to notify_relayhost when set)"
	        : "smtp (received from a client)");
	pf(out, "%-14s ret=%s body=%s smtputf8=%s requiretls=%s",
	    "Options:", ret_name(env->ret), body_name(env->body),
	    env->smtputf8 ? "yes" : "no", env->requiretls ? "yes" : "no");
	if (env->envid[0] != '\0') {
		fputs(" envid=", out);
		put_safe(out, env->envid, 100, false);
	}
	pf(out, " delay_warned=%s\n", env->delay_warned ? "yes" : "no");
	if (h != NULL) {
		fputs("Headers:\n", out);
		pf(out, "  %-12s ", "From:");
		put_slice(out, &h->from);
		pf(out, "\n  %-12s ", "To:");
		put_slice(out, &h->to);
		pf(out, "\n  %-12s ", "Subject:");
		put_slice(out, &h->subject);
		pf(out, "\n  %-12s ", "Message-ID:");
		put_slice(out, &h->message_id);
		pf(out, "\n  %-12s ", "Date:");
		put_slice(out, &h->date);
		fputc('\n', out);
	} else {
		fputs("Headers:       (content not readable)\n", out);
	}
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct relay_queue_rcpt *r = &env->rcpt[i];
		fputs("Recipient <", out);
		put_safe(out, r->address, 512, false);
		pf(out, ">: %s", relay_queue_rcpt_status_name(r->status));
		if (r->dsn[0] != '\0') {
			fputc(' ', out);
			put_safe(out, r->dsn, 16, true);
		}
		if (r->failure_class[0] != '\0') {
			fputc(' ', out);
			put_safe(out, r->failure_class, 32, true);
		}
		fputc('\n', out);
		show_field(out, 2, "reason:", r->reason);
		pf(out, "  %-13s %" PRIu32 "\n", "attempts:", r->attempts);
		if (rcpt_open(r)) {
			if (r->next_attempt_us == 0 ||
			    r->next_attempt_us <= now_us) {
				pf(out, "  %-13s as soon as possible\n",
				    "next attempt:");
			} else {
				fmt_utc(when, sizeof(when), r->next_attempt_us);
				fmt_age(age, sizeof(age),
				    r->next_attempt_us - now_us);
				pf(out, "  %-13s %s (in %s)\n",
				    "next attempt:", when, age);
			}
		}
		notify_text(r->notify, notify, sizeof(notify));
		show_field(out, 2, "notify:", notify);
		show_field(out, 2, "orcpt:", r->orcpt);
		if (r->delay_warned)
			pf(out, "  %-13s yes\n", "delay DSN:");
		for (size_t k = 0; k < r->attempt_count; k++)
			show_attempt(out,
			    r->attempts - r->attempt_count + k + 1,
			    &r->attempt[k]);
	}
	return out_status(out);
}

static void
json_attempt(struct relay_json *j, const struct relay_queue_attempt *a)
{
	relay_json_obj_begin(j);
	relay_json_kv_u64(j, "time", a->time_us / US_PER_S);
	relay_json_kv_str(j, "mx_host", a->mx_host);
	relay_json_kv_str(j, "addr", a->addr);
	relay_json_kv_str(j, "dnssec_mx", a->dnssec_mx);
	relay_json_kv_str(j, "dnssec_addr", a->dnssec_addr);
	relay_json_kv_str(j, "dnssec_tlsa", a->dnssec_tlsa);
	relay_json_kv_str(j, "tlsa", a->tlsa);
	relay_json_kv_str(j, "tls", a->tls);
	relay_json_kv_str(j, "peer_spki", a->peer_spki);
	relay_json_kv_str(j, "peer_names", a->peer_names);
	relay_json_kv_str(j, "matched", a->matched);
	relay_json_kv_str(j, "reply", a->reply);
	relay_json_kv_str(j, "dsn", a->dsn);
	relay_json_kv_str(j, "status", a->status);
	relay_json_kv_str(j, "failure_class", a->failure_class);
	relay_json_kv_str(j, "reason", a->reason);
	/* Present only when the routing monitor had something to say. */
	if (a->routing_change != NULL && a->routing_change[0] != '\0')
		relay_json_kv_str(j, "routing_change", a->routing_change);
	if (a->hint != NULL && a->hint[0] != '\0') {
		relay_json_kv_str(j, "hint", a->hint);
		relay_json_kv_str(j, "hint_text", tlsa_hint_text_of(a->hint));
	}
	if (a->policy[0] != '\0') {
		/* Absent for attempts recorded before the envelope kept the
		 * policy: unknown, rather than a made-up level. */
		relay_json_kv_str(j, "policy", a->policy);
		relay_json_key(j, "policy_entry");
		if (a->policy_entry[0] != '\0')
			relay_json_str(j, a->policy_entry);
		else
			relay_json_null(j);
		if (a->policy_reason[0] != '\0')
			relay_json_kv_str(j, "policy_reason", a->policy_reason);
	}
	relay_json_obj_end(j);
}

int
relay_report_show_json(FILE *out, const struct relay_queue_envelope *env,
    const struct relay_report_headers *h, uint64_t now_us)
{
	struct relay_json j;

	relay_json_init(&j, out);
	relay_json_obj_begin(&j);
	json_env_summary(&j, env, now_us);
	relay_json_kv_str(&j, "envid", env->envid);
	relay_json_kv_str(&j, "ret", ret_name(env->ret));
	relay_json_kv_str(&j, "body", body_name(env->body));
	relay_json_kv_bool(&j, "smtputf8", env->smtputf8);
	relay_json_kv_bool(&j, "requiretls", env->requiretls);
	relay_json_kv_str(&j, "client_addr", env->client_addr);
	relay_json_kv_str(&j, "client_name", env->client_name);
	relay_json_kv_str(&j, "helo", env->helo);
	relay_json_kv_bool(&j, "delay_warned", env->delay_warned);
	relay_json_kv_str(&j, "origin", relay_queue_origin_name(env->origin));
	relay_json_key(&j, "headers");
	if (h == NULL) {
		relay_json_null(&j);
	} else {
		relay_json_obj_begin(&j);
		json_slice(&j, "from", &h->from);
		json_slice(&j, "to", &h->to);
		json_slice(&j, "subject", &h->subject);
		json_slice(&j, "message_id", &h->message_id);
		json_slice(&j, "date", &h->date);
		relay_json_obj_end(&j);
	}
	relay_json_key(&j, "recipients");
	relay_json_arr_begin(&j);
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct relay_queue_rcpt *r = &env->rcpt[i];
		relay_json_obj_begin(&j);
		json_rcpt_summary(&j, r);
		relay_json_key(&j, "attempt_records");
		relay_json_arr_begin(&j);
		for (size_t k = 0; k < r->attempt_count; k++)
			json_attempt(&j, &r->attempt[k]);
		relay_json_arr_end(&j);
		relay_json_obj_end(&j);
	}
	relay_json_arr_end(&j);
	relay_json_obj_end(&j);
	int rc = relay_json_finish(&j);
	fputc('\n', out);
	return rc != 0 ? rc : out_status(out);
}

/* ------------------------------------------------------------ report */

static const char *const bucket_labels[RELAY_REPORT_BUCKETS] = {
	"5m",
	"10m",
	"20m",
	"40m",
	"80m",
	"160m",
	"320m",
	"640m",
	"1280m",
	"1280m+",
};

const char *
relay_report_bucket_label(size_t i)
{
	return i < RELAY_REPORT_BUCKETS ? bucket_labels[i] : "?";
}

size_t
relay_report_bucket_of(uint64_t age)
{
	uint64_t limit_us = 5ull * 60 * US_PER_S;

	for (size_t i = 0; i + 1 < RELAY_REPORT_BUCKETS; i++) {
		if (age < limit_us)
			return i;
		limit_us *= 2;
	}
	return RELAY_REPORT_BUCKETS - 1;
}

void
relay_report_init(struct relay_report *r, uint64_t now_us)
{
	memset(r, 0, sizeof(*r));
	r->now_us = now_us;
}

/* The string fields of struct relay_queue_attempt, for copy and free. */
static const size_t attempt_str_off[] = {
	offsetof(struct relay_queue_attempt, mx_host),
	offsetof(struct relay_queue_attempt, addr),
	offsetof(struct relay_queue_attempt, dnssec_mx),
	offsetof(struct relay_queue_attempt, dnssec_addr),
	offsetof(struct relay_queue_attempt, dnssec_tlsa),
	offsetof(struct relay_queue_attempt, tlsa),
	offsetof(struct relay_queue_attempt, tls),
	offsetof(struct relay_queue_attempt, peer_spki),
	offsetof(struct relay_queue_attempt, peer_names),
	offsetof(struct relay_queue_attempt, matched),
	offsetof(struct relay_queue_attempt, reply),
	offsetof(struct relay_queue_attempt, dsn),
	offsetof(struct relay_queue_attempt, status),
	offsetof(struct relay_queue_attempt, failure_class),
	offsetof(struct relay_queue_attempt, reason),
	offsetof(struct relay_queue_attempt, policy),
	offsetof(struct relay_queue_attempt, policy_entry),
	offsetof(struct relay_queue_attempt, routing_change),
	offsetof(struct relay_queue_attempt, hint),
	offsetof(struct relay_queue_attempt, policy_reason),
};
#define ATTEMPT_NSTR (sizeof(attempt_str_off) / sizeof(attempt_str_off[0]))

static char **
attempt_field(struct relay_queue_attempt *a, size_t k)
{
	return (char **)(void *)((char *)a + attempt_str_off[k]);
}

static void
attempt_clear(struct relay_queue_attempt *a)
{
	for (size_t k = 0; k < ATTEMPT_NSTR; k++)
		free(*attempt_field(a, k));
	memset(a, 0, sizeof(*a));
}

/* Deep copy of src into dst (cleared first); NULL fields become "". */
static int
attempt_copy(struct relay_queue_attempt *dst,
    const struct relay_queue_attempt *src)
{
	int rc = 0;

	attempt_clear(dst);
	dst->time_us = src->time_us;
	for (size_t k = 0; k < ATTEMPT_NSTR; k++) {
		const char *s =
		    *attempt_field((struct relay_queue_attempt *)(uintptr_t)src,
		        k);
		char *c = strdup(s != NULL ? s : "");
		if (c == NULL)
			rc = -1;
		*attempt_field(dst, k) = c;
	}
	return rc;
}

static void
dest_free(struct relay_report_dest *d)
{
	free(d->domain);
	for (size_t i = 0; i < d->ncls; i++)
		free(d->cls[i].failure_class);
	free(d->cls);
	attempt_clear(&d->latest);
	free(d->latest_rcpt);
}

void
relay_report_free(struct relay_report *r)
{
	for (size_t i = 0; i < r->ndest; i++)
		dest_free(&r->dest[i]);
	free(r->dest);
	r->dest = NULL;
	r->ndest = r->cap = 0;
}

static struct relay_report_dest *
dest_get(struct relay_report *r, const char *domain)
{
	for (size_t i = 0; i < r->ndest; i++)
		if (strcmp(r->dest[i].domain, domain) == 0)
			return &r->dest[i];
	if (r->ndest == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct relay_report_dest *n =
		    realloc(r->dest, cap * sizeof(*n));
		if (n == NULL)
			return NULL;
		r->dest = n;
		r->cap = cap;
	}
	struct relay_report_dest *d = &r->dest[r->ndest];
	memset(d, 0, sizeof(*d));
	d->domain = strdup(domain);
	if (d->domain == NULL)
		return NULL;
	r->ndest++;
	return d;
}

static struct relay_report_class *
class_get(struct relay_report_dest *d, const char *name)
{
	for (size_t i = 0; i < d->ncls; i++)
		if (strcmp(d->cls[i].failure_class, name) == 0)
			return &d->cls[i];
	struct relay_report_class *n =
	    realloc(d->cls, (d->ncls + 1) * sizeof(*n));
	if (n == NULL)
		return NULL;
	d->cls = n;
	struct relay_report_class *c = &d->cls[d->ncls];
	memset(c, 0, sizeof(*c));
	c->failure_class = strdup(name);
	if (c->failure_class == NULL)
		return NULL;
	d->ncls++;
	return c;
}

/* Records r's latest attempt in d when it is more recent than d's. */
static int
dest_note_latest(struct relay_report_dest *d,
    const struct relay_queue_envelope *env, const struct relay_queue_rcpt *rc)
{
	struct relay_queue_attempt fallback = { 0 };
	const struct relay_queue_attempt *a;

	if (rc->attempt_count > 0) {
		a = &rc->attempt[rc->attempt_count - 1];
		if (d->latest_rcpt != NULL && a->time_us < d->latest.time_us)
			return 0;
	} else {
		/* No attempt record (an old envelope): keep the recipient's
		 * own last outcome unless something better is known. */
		if (d->latest_rcpt != NULL)
			return 0;
		fallback.dsn = rc->dsn;
		fallback.failure_class = rc->failure_class;
		fallback.reason = rc->reason;
		a = &fallback;
	}
	char *who = strdup(rc->address);
	if (who == NULL || attempt_copy(&d->latest, a) != 0) {
		free(who);
		return -1;
	}
	free(d->latest_rcpt);
	d->latest_rcpt = who;
	memcpy(d->latest_id, env->id, sizeof(d->latest_id));
	return 0;
}

int
relay_report_add(struct relay_report *r, const struct relay_queue_envelope *env)
{
	bool counted = false;
	size_t b = relay_report_bucket_of(age_us(r->now_us, env->arrival_us));

	if (r->failed)
		return -1;
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct relay_queue_rcpt *rc = &env->rcpt[i];
		char domain[256];
		if (rc->status != RELAY_QUEUE_RCPT_DEFERRED)
			continue;
		struct relay_report_dest *d = dest_get(r,
		    relay_report_domain(rc->address, domain, sizeof(domain)));
		struct relay_report_class *c =
		    d != NULL ? class_get(d, rc->failure_class) : NULL;
		if (c == NULL || dest_note_latest(d, env, rc) != 0) {
			r->failed = true;
			return -1;
		}
		c->count[b]++;
		c->total++;
		d->count[b]++;
		d->total++;
		if (env->hold)
			d->held++;
		/* Envelopes come one at a time: the id of the last message
		 * counted tells whether this one is new for the domain. */
		if (strcmp(d->last_id_, env->id) != 0) {
			memcpy(d->last_id_, env->id, sizeof(d->last_id_));
			d->messages++;
		}
		if (d->oldest_id[0] == '\0' ||
		    env->arrival_us < d->oldest_arrival_us) {
			memcpy(d->oldest_id, env->id, sizeof(d->oldest_id));
			d->oldest_arrival_us = env->arrival_us;
		}
		r->count[b]++;
		r->total++;
		counted = true;
	}
	if (!counted)
		return 0;
	r->messages++;
	if (r->oldest_id[0] == '\0' || env->arrival_us < r->oldest_arrival_us) {
		memcpy(r->oldest_id, env->id, sizeof(r->oldest_id));
		r->oldest_arrival_us = env->arrival_us;
	}
	return 0;
}

static int
cmp_dest(const void *a, const void *b)
{
	const struct relay_report_dest *x = a, *y = b;
	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	return strcmp(x->domain, y->domain);
}

static int
cmp_class(const void *a, const void *b)
{
	const struct relay_report_class *x = a, *y = b;
	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	return strcmp(x->failure_class, y->failure_class);
}

void
relay_report_sort(struct relay_report *r)
{
	if (r->ndest > 1)
		qsort(r->dest, r->ndest, sizeof(*r->dest), cmp_dest);
	for (size_t i = 0; i < r->ndest; i++)
		if (r->dest[i].ncls > 1)
			qsort(r->dest[i].cls, r->dest[i].ncls,
			    sizeof(*r->dest[i].cls), cmp_class);
}

static void
table_row(FILE *out, int width, int indent, const char *label, uint64_t total,
    const uint64_t *count, bool ascii)
{
	pf(out, "%*s", indent, "");
	size_t w = put_safe(out, label[0] ? label : "(none)",
	    (size_t)(width - indent), ascii);
	pf(out, "%*s %6" PRIu64,
	    (int)((size_t)width - (size_t)indent > w
	            ? (size_t)width - (size_t)indent - w
	            : 0),
	    "", total);
	for (size_t i = 0; i < RELAY_REPORT_BUCKETS; i++)
		pf(out, " %6" PRIu64, count[i]);
	fputc('\n', out);
}

/* The time-boxed exceptions in effect at r->now_us (text view). */
static void
print_exceptions_text(FILE *out, const struct relay_report *r, bool ascii)
{
	bool any = false;
	for (size_t i = 0; i < r->policy_count; i++) {
		const struct relay_tls_policy_entry *e = &r->policy[i];
		if (!e->has_until || !relay_tls_policy_active(e, r->now_us))
			continue;
		if (!any)
			fputs("\nTime-boxed TLS policy exceptions in effect "
			      "(tls_policy_file until=):\n",
			    out);
		any = true;
		int64_t left = relay_tls_policy_days_left(e, r->now_us);
		fputs("  ", out);
		put_safe(out, e->domain, 255, ascii);
		pf(out, " %s until %s (%lld day%s left), ",
		    relay_tls_level_name(e->level), e->until, (long long)left,
		    left == 1 ? "" : "s");
		put_safe(out, e->file, 512, ascii);
		pf(out, ":%u", e->line);
		if (e->reason[0] != '\0') {
			fputs(": ", out);
			put_safe(out, e->reason, 400, ascii);
		}
		fputc('\n', out);
	}
}

int
relay_report_print_text(FILE *out, const struct relay_report *r,
    const char *hostname, bool ascii)
{
	char when[40], age[32];
	int width = 24;

	fmt_utc(when, sizeof(when), r->now_us);
	fputs("danerelay deferred-delivery report", out);
	if (hostname != NULL && hostname[0] != '\0') {
		fputs(" for ", out);
		put_safe(out, hostname, 255, ascii);
	}
	pf(out, ", %s\n\n", when);
	if (r->unreadable.unparsable > 0 || r->unreadable.corrupt > 0)
		pf(out,
		    "Not counted below: %" PRIu64 " envelope%s in queue/ that "
		    "do%s not parse, %" PRIu64 " file%s in corrupt/ (see queue "
		    "list).\n\n",
		    r->unreadable.unparsable,
		    r->unreadable.unparsable == 1 ? "" : "s",
		    r->unreadable.unparsable == 1 ? "es" : "",
		    r->unreadable.corrupt,
		    r->unreadable.corrupt == 1 ? "" : "s");
	if (r->total == 0) {
		fputs("No deferred mail.\n", out);
		print_exceptions_text(out, r, ascii);
		return out_status(out);
	}
	fmt_utc(when, sizeof(when), r->oldest_arrival_us);
	fmt_age(age, sizeof(age), age_us(r->now_us, r->oldest_arrival_us));
	pf(out,
	    "%" PRIu64 " deferred recipient%s in %" PRIu64 " message%s to %zu "
	    "destination%s; oldest message %s, queued %s (%s ago).\n\n",
	    r->total, r->total == 1 ? "" : "s", r->messages,
	    r->messages == 1 ? "" : "s", r->ndest, r->ndest == 1 ? "" : "s",
	    r->oldest_id, when, age);

	for (size_t i = 0; i < r->ndest; i++) {
		size_t l = strlen(r->dest[i].domain) + 1;
		for (size_t k = 0; k < r->dest[i].ncls; k++)
			if (strlen(r->dest[i].cls[k].failure_class) + 3 > l)
				l = strlen(r->dest[i].cls[k].failure_class) + 3;
		if (l > (size_t)width)
			width = l > REPORT_DOMAIN_COL_MAX
			    ? REPORT_DOMAIN_COL_MAX
			    : (int)l;
	}
	pf(out, "%-*s %6s", width, "domain / failure class", "T");
	for (size_t i = 0; i < RELAY_REPORT_BUCKETS; i++)
		pf(out, " %6s", bucket_labels[i]);
	fputc('\n', out);
	table_row(out, width, 0, "TOTAL", r->total, r->count, ascii);
	for (size_t i = 0; i < r->ndest; i++) {
		const struct relay_report_dest *d = &r->dest[i];
		table_row(out, width, 0, d->domain, d->total, d->count, ascii);
		for (size_t k = 0; k < d->ncls; k++)
			table_row(out, width, 2, d->cls[k].failure_class,
			    d->cls[k].total, d->cls[k].count, ascii);
	}

	for (size_t i = 0; i < r->ndest; i++) {
		const struct relay_report_dest *d = &r->dest[i];
		const struct relay_queue_attempt *a = &d->latest;
		fputc('\n', out);
		put_safe(out, d->domain[0] ? d->domain : "(no domain)", 255,
		    ascii);
		fmt_age(age, sizeof(age),
		    age_us(r->now_us, d->oldest_arrival_us));
		pf(out,
		    ": %" PRIu64 " deferred recipient%s in %" PRIu64
		    " message%s",
		    d->total, d->total == 1 ? "" : "s", d->messages,
		    d->messages == 1 ? "" : "s");
		if (d->held > 0)
			pf(out, " (%" PRIu64 " held)", d->held);
		pf(out, ", oldest %s (%s)\n", d->oldest_id, age);
		if (a->time_us > 0) {
			fmt_utc(when, sizeof(when), a->time_us);
			pf(out, "  latest attempt %s, message %s, <", when,
			    d->latest_id);
		} else {
			pf(out, "  latest outcome, message %s, <",
			    d->latest_id);
		}
		put_safe(out, d->latest_rcpt, 255, ascii);
		fputs(">:\n", out);
		pf(out, "    %-11s ", "result:");
		put_safe(out, a->failure_class[0] ? a->failure_class : "-", 32,
		    ascii);
		if (a->dsn[0] != '\0') {
			fputc(' ', out);
			put_safe(out, a->dsn, 16, ascii);
		}
		if (a->reason[0] != '\0') {
			fputs(": ", out);
			put_safe(out, a->reason, MAIL_LINE_MAX - 60, ascii);
		}
		fputc('\n', out);
		put_attempt_details(out, a, 4, 11, MAIL_LINE_MAX - 20, ascii);
	}

	fputs("\nHints:\n", out);
	/* Each class once, in the order of first appearance. */
	for (size_t i = 0; i < r->ndest; i++) {
		for (size_t k = 0; k < r->dest[i].ncls; k++) {
			const char *c = r->dest[i].cls[k].failure_class;
			bool seen = false;
			for (size_t i2 = 0; i2 <= i && !seen; i2++)
				for (size_t k2 = 0; k2 < r->dest[i2].ncls;
				     k2++) {
					if (i2 == i && k2 == k)
						break;
					if (strcmp(r->dest[i2]
					               .cls[k2]
					               .failure_class,
					        c) == 0) {
						seen = true;
						break;
					}
				}
			if (seen)
				continue;
			fputs("  ", out);
			put_safe(out, c[0] ? c : "(none)", 32, ascii);
			pf(out, ": %s\n", relay_report_class_hint(c));
		}
	}
	/* What the routing monitor found behind a tlsa-mismatch, per
	 * destination (its latest attempt). */
	for (size_t i = 0; i < r->ndest; i++) {
		const struct relay_queue_attempt *a = &r->dest[i].latest;
		const char *text =
		    a->hint != NULL ? tlsa_hint_text_of(a->hint) : "";
		if (text[0] == '\0')
			continue;
		fputs("  ", out);
		put_safe(out, r->dest[i].domain, 255, ascii);
		pf(out, " (%s): %s\n", a->hint, text);
	}
	print_exceptions_text(out, r, ascii);
	return out_status(out);
}

static void
json_counts(struct relay_json *j, const uint64_t *count)
{
	relay_json_obj_begin(j);
	for (size_t i = 0; i < RELAY_REPORT_BUCKETS; i++)
		relay_json_kv_u64(j, bucket_labels[i], count[i]);
	relay_json_obj_end(j);
}

void
relay_report_json_members(struct relay_json *j, const struct relay_report *r,
    const char *hostname)
{
	relay_json_kv_str(j, "hostname", hostname != NULL ? hostname : "");
	relay_json_kv_u64(j, "time", r->now_us / US_PER_S);
	relay_json_key(j, "buckets");
	relay_json_arr_begin(j);
	for (size_t i = 0; i < RELAY_REPORT_BUCKETS; i++)
		relay_json_str(j, bucket_labels[i]);
	relay_json_arr_end(j);
	relay_json_kv_u64(j, "recipients", r->total);
	relay_json_kv_u64(j, "messages", r->messages);
	relay_json_kv_u64(j, "unparsable_envelopes", r->unreadable.unparsable);
	relay_json_kv_u64(j, "corrupt_files", r->unreadable.corrupt);
	relay_json_key(j, "counts");
	json_counts(j, r->count);
	relay_json_key(j, "oldest");
	if (r->total == 0) {
		relay_json_null(j);
	} else {
		relay_json_obj_begin(j);
		relay_json_kv_str(j, "queue_id", r->oldest_id);
		relay_json_kv_u64(j, "arrival_time",
		    r->oldest_arrival_us / US_PER_S);
		relay_json_obj_end(j);
	}
	relay_json_key(j, "destinations");
	relay_json_arr_begin(j);
	for (size_t i = 0; i < r->ndest; i++) {
		const struct relay_report_dest *d = &r->dest[i];
		const struct relay_queue_attempt *a = &d->latest;
		relay_json_obj_begin(j);
		relay_json_kv_str(j, "domain", d->domain);
		relay_json_kv_u64(j, "recipients", d->total);
		relay_json_kv_u64(j, "messages", d->messages);
		relay_json_kv_u64(j, "held", d->held);
		relay_json_key(j, "counts");
		json_counts(j, d->count);
		relay_json_key(j, "classes");
		relay_json_arr_begin(j);
		for (size_t k = 0; k < d->ncls; k++) {
			relay_json_obj_begin(j);
			relay_json_kv_str(j, "failure_class",
			    d->cls[k].failure_class);
			relay_json_kv_u64(j, "recipients", d->cls[k].total);
			relay_json_key(j, "counts");
			json_counts(j, d->cls[k].count);
			relay_json_kv_str(j, "hint",
			    relay_report_class_hint(d->cls[k].failure_class));
			relay_json_obj_end(j);
		}
		relay_json_arr_end(j);
		relay_json_key(j, "oldest");
		relay_json_obj_begin(j);
		relay_json_kv_str(j, "queue_id", d->oldest_id);
		relay_json_kv_u64(j, "arrival_time",
		    d->oldest_arrival_us / US_PER_S);
		relay_json_obj_end(j);
		relay_json_key(j, "latest");
		relay_json_obj_begin(j);
		relay_json_kv_u64(j, "time", a->time_us / US_PER_S);
		relay_json_kv_str(j, "queue_id", d->latest_id);
		relay_json_kv_str(j, "recipient", d->latest_rcpt);
		relay_json_kv_str(j, "failure_class", a->failure_class);
		relay_json_kv_str(j, "dsn", a->dsn);
		relay_json_kv_str(j, "reason", a->reason);
		relay_json_kv_str(j, "mx_host", a->mx_host);
		relay_json_kv_str(j, "addr", a->addr);
		relay_json_kv_str(j, "dnssec_mx", a->dnssec_mx);
		relay_json_kv_str(j, "dnssec_addr", a->dnssec_addr);
		relay_json_kv_str(j, "dnssec_tlsa", a->dnssec_tlsa);
		relay_json_kv_str(j, "tlsa", a->tlsa);
		relay_json_kv_str(j, "tls", a->tls);
		relay_json_kv_str(j, "matched", a->matched);
		relay_json_kv_str(j, "peer_spki", a->peer_spki);
		relay_json_kv_str(j, "peer_names", a->peer_names);
		relay_json_kv_str(j, "reply", a->reply);
		relay_json_obj_end(j);
		relay_json_obj_end(j);
	}
	relay_json_arr_end(j);
	relay_json_key(j, "policy_exceptions");
	relay_json_arr_begin(j);
	for (size_t i = 0; i < r->policy_count; i++) {
		const struct relay_tls_policy_entry *e = &r->policy[i];
		if (!e->has_until || !relay_tls_policy_active(e, r->now_us))
			continue;
		relay_json_obj_begin(j);
		relay_json_kv_str(j, "domain", e->domain);
		relay_json_kv_str(j, "level", relay_tls_level_name(e->level));
		relay_json_kv_str(j, "until", e->until);
		relay_json_kv_i64(j, "days_left",
		    relay_tls_policy_days_left(e, r->now_us));
		relay_json_key(j, "entry");
		relay_json_obj_begin(j);
		relay_json_kv_str(j, "file", e->file);
		relay_json_kv_u64(j, "line", e->line);
		relay_json_obj_end(j);
		relay_json_kv_str(j, "reason", e->reason);
		relay_json_obj_end(j);
	}
	relay_json_arr_end(j);
}

int
relay_report_print_json(FILE *out, const struct relay_report *r,
    const char *hostname)
{
	struct relay_json j;

	relay_json_init(&j, out);
	relay_json_obj_begin(&j);
	relay_report_json_members(&j, r, hostname);
	relay_json_obj_end(&j);
	int rc = relay_json_finish(&j);
	fputc('\n', out);
	return rc != 0 ? rc : out_status(out);
}
