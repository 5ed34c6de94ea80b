/*
 * relay_dsn: RFC 3464 delivery status notifications. See relay_dsn.h.
 *
 * Layout (RFC 3462 multipart/report, RFC 3464 message/delivery-status):
 *   part 1 text/plain: what happened, in plain language, per domain;
 *   part 2 message/delivery-status: per-message fields, then one block of
 *          per-recipient fields (Final-Recipient, Action, Status, ...);
 *   part 3 text/rfc822-headers (RET=HDRS or absent) or message/rfc822
 *          (RET=FULL) carrying the original.
 * Text from the network (server replies, addresses) is reduced to printable
 * ASCII on one line before it goes into a header field, so a hostile reply
 * cannot inject header lines into the notification.
 */
#include "relay_dsn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A DSN is the report plus at most the original; this bounds the prose. */
#define DSN_FIELD_MAX 900

struct sb {
	uint8_t *p;
	size_t len, cap;
	bool failed;
};

static void
sb_put(struct sb *b, const void *p, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *np = realloc(b->p, cap);
		if (np == NULL) {
			b->failed = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
sb_str(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void
sb_fmt(struct sb *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->failed = true;
		return;
	}
	sb_put(b, tmp, (size_t)n);
}

/* One header-safe line: printable ASCII, runs of white space folded to one
 * space, at most DSN_FIELD_MAX bytes. */
static void
sb_safe(struct sb *b, const char *s)
{
	size_t n = 0;
	bool space = false;

	if (s == NULL)
		return;
	for (; *s != '\0' && n < DSN_FIELD_MAX; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			space = true;
			continue;
		}
		if (space && n > 0) {
			sb_put(b, " ", 1);
			n++;
		}
		space = false;
		char out = (ch >= 0x21 && ch <= 0x7e) ? (char)ch : '?';
		sb_put(b, &out, 1);
		n++;
	}
}

static void
fmt_date(char *buf, size_t len, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	/* RFC 5322 3.3 date-time, always in UTC to avoid locale and zone data. */
	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
		snprintf(buf, len, "Thu, 01 Jan 1970 00:00:00 +0000");
}

bool
relay_dsn_wanted(enum relay_dsn_action action, unsigned notify,
    const char *sender)
{
	if (sender == NULL || sender[0] == '\0')
		return false;
	if (notify & RELAY_DSN_NOTIFY_NEVER)
		return false;
	switch (action) {
	case RELAY_DSN_FAILED:
		/* RFC 3461 5.2.6: absent NOTIFY means FAILURE (and DELAY). */
		return notify == 0 || (notify & RELAY_DSN_NOTIFY_FAILURE);
	case RELAY_DSN_DELAYED:
		/* RFC 3461 5.2.5: with NOTIFY given, only if it has DELAY. */
		return notify == 0 || (notify & RELAY_DSN_NOTIFY_DELAY);
	}
	return false;
}

/* Copy the original, normalising line ends to CRLF; stop after the header
 * when headers_only. */
static void
put_original(struct sb *b, const uint8_t *p, size_t len, bool headers_only)
{
	size_t i = 0;
	bool line_start = true;

	while (i < len) {
		size_t j = i;
		while (j < len && p[j] != '\n')
			j++;
		size_t end = j;
		if (end > i && p[end - 1] == '\r')
			end--;
		if (headers_only && line_start && end == i)
			return; /* the empty line ends the header */
		sb_put(b, p + i, end - i);
		sb_put(b, "\r\n", 2);
		i = j < len ? j + 1 : j;
		line_start = true;
	}
}

int
relay_dsn_compose(const struct relay_dsn_msg *m, const struct relay_dsn_rcpt *r,
    size_t n, uint8_t **out, size_t *outlen)
{
	struct sb b = { 0 };
	char date[64], boundary[128];

	if (n == 0 || m->sender == NULL || m->sender[0] == '\0')
		return RELAY_DSN_EINVAL;
	enum relay_dsn_action action = r[0].action;
	for (size_t i = 1; i < n; i++)
		if (r[i].action != action)
			return RELAY_DSN_EINVAL;
	bool failed = action == RELAY_DSN_FAILED;

	fmt_date(date, sizeof(date), m->now);
	int w = snprintf(boundary, sizeof(boundary), "%s/%lld/%s", m->queue_id,
	    (long long)m->now, m->reporting_mta);
	if (w < 0 || (size_t)w >= sizeof(boundary))
		return RELAY_DSN_EINVAL;

	/* RFC 3461 6.1: the DSN itself goes out with MAIL FROM:<>; the header
	 * From names the reporting MTA's postmaster role. */
	sb_fmt(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    m->reporting_mta);
	sb_str(&b, "To: <");
	sb_safe(&b, m->sender);
	sb_str(&b, ">\r\n");
	sb_fmt(&b, "Subject: %s\r\n",
	    failed ? "Undelivered Mail Returned to Sender"
	           : "Delayed Mail (still being retried)");
	sb_fmt(&b, "Date: %s\r\n", date);
	sb_fmt(&b, "Message-ID: <%s.%lld.dsn@%s>\r\n", m->queue_id,
	    (long long)m->now, m->reporting_mta);
	sb_str(&b, "Auto-Submitted: auto-replied\r\n");
	sb_str(&b, "MIME-Version: 1.0\r\n");
	sb_fmt(&b,
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n\r\n",
	    boundary);
	sb_str(&b, "This is a MIME-encapsulated message.\r\n\r\n");

	/* Part 1: prose. */
	sb_fmt(&b,
	    "--%s\r\nContent-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
	    boundary);
	sb_fmt(&b, "This is the mail system at host %s (danerelay).\r\n\r\n",
	    m->reporting_mta);
	if (failed)
		sb_str(&b,
		    "Your message could not be delivered to one or more "
		    "recipients. It has been\r\ngiven up on; no further attempts "
		    "will be made.\r\n\r\n");
	else
		sb_str(&b,
		    "Your message has not yet been delivered to one or "
		    "more recipients. This is\r\na warning only: the mail system "
		    "keeps trying and you need not resend it.\r\n\r\n");
	for (size_t i = 0; i < n; i++) {
		sb_str(&b, "<");
		sb_safe(&b, r[i].address);
		sb_str(&b, ">: ");
		if (r[i].domain != NULL) {
			sb_str(&b, "delivery to the domain ");
			sb_safe(&b, r[i].domain);
			sb_str(&b, failed ? " failed: " : " is delayed: ");
		}
		sb_safe(&b,
		    r[i].reason != NULL ? r[i].reason : r[i].diagnostic);
		sb_str(&b, "\r\n");
		if (!failed && r[i].will_retry_until != 0) {
			char until[64];
			fmt_date(until, sizeof(until), r[i].will_retry_until);
			sb_fmt(&b, "    Retries continue until %s.\r\n", until);
		}
	}
	sb_str(&b, "\r\n");

	/* Part 2: RFC 3464 2.2 per-message and 2.3 per-recipient fields. */
	sb_fmt(&b,
	    "--%s\r\nContent-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n",
	    boundary);
	sb_fmt(&b, "Reporting-MTA: dns; %s\r\n", m->reporting_mta);
	sb_fmt(&b, "X-Danerelay-Queue-ID: %s\r\n", m->queue_id);
	if (m->envid != NULL && m->envid[0] != '\0') {
		sb_str(&b, "Original-Envelope-Id: ");
		sb_safe(&b, m->envid);
		sb_str(&b, "\r\n");
	}
	sb_str(&b, "Arrival-Date: ");
	fmt_date(date, sizeof(date), m->arrival);
	sb_fmt(&b, "%s\r\n", date);
	for (size_t i = 0; i < n; i++) {
		sb_str(&b, "\r\n");
		if (r[i].orcpt != NULL && r[i].orcpt[0] != '\0') {
			sb_str(&b, "Original-Recipient: ");
			sb_safe(&b, r[i].orcpt);
			sb_str(&b, "\r\n");
		}
		sb_str(&b, "Final-Recipient: rfc822; ");
		sb_safe(&b, r[i].address);
		sb_str(&b, "\r\n");
		/* RFC 3464 2.3.4: a 4.x.x Status with Action failed is fine on
		 * queue-lifetime expiry (checklist I37). */
		sb_fmt(&b, "Action: %s\r\n", failed ? "failed" : "delayed");
		sb_str(&b, "Status: ");
		sb_safe(&b,
		    r[i].status != NULL ? r[i].status
		                        : (failed ? "5.0.0" : "4.0.0"));
		sb_str(&b, "\r\n");
		if (r[i].remote_mta != NULL && r[i].remote_mta[0] != '\0') {
			sb_str(&b, "Remote-MTA: dns; ");
			sb_safe(&b, r[i].remote_mta);
			sb_str(&b, "\r\n");
		}
		if (r[i].diagnostic != NULL && r[i].diagnostic[0] != '\0') {
			sb_str(&b, "Diagnostic-Code: ");
			/* An SMTP reply is "smtp"; a local reason is "x-unix". */
			bool smtp = r[i].diagnostic[0] >= '2' &&
			    r[i].diagnostic[0] <= '5' &&
			    strlen(r[i].diagnostic) >= 3;
			sb_str(&b, smtp ? "smtp; " : "x-danerelay; ");
			sb_safe(&b, r[i].diagnostic);
			sb_str(&b, "\r\n");
		}
		if (r[i].last_attempt != 0) {
			fmt_date(date, sizeof(date), r[i].last_attempt);
			sb_fmt(&b, "Last-Attempt-Date: %s\r\n", date);
		}
		if (!failed && r[i].will_retry_until != 0) {
			fmt_date(date, sizeof(date), r[i].will_retry_until);
			sb_fmt(&b, "Will-Retry-Until: %s\r\n", date);
		}
	}
	sb_str(&b, "\r\n");

	/* Part 3: the original (RFC 3461 4.3 RET). */
	if (m->ret_full && failed) {
		sb_fmt(&b,
		    "--%s\r\nContent-Description: Undelivered Message\r\n"
		    "Content-Type: message/rfc822\r\n\r\n",
		    boundary);
		put_original(&b, m->original, m->original_len, false);
	} else {
		sb_fmt(&b,
		    "--%s\r\nContent-Description: %s\r\n"
		    "Content-Type: text/rfc822-headers\r\n\r\n",
		    boundary,
		    failed ? "Undelivered Message Headers"
		           : "Delayed Message Headers");
		put_original(&b, m->original, m->original_len, true);
	}
	sb_str(&b, "\r\n");
	sb_fmt(&b, "--%s--\r\n", boundary);

	if (b.failed) {
		free(b.p);
		return RELAY_DSN_ENOMEM;
	}
	*out = b.p;
	*outlen = b.len;
	return RELAY_DSN_OK;
}
