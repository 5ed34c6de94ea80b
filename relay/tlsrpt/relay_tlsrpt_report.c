/*
 * relay_tlsrpt_report: the RFC 8460 4.4 JSON report, its report-id, gzip
 * and the 5.3 mail that carries it.
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "relay_json.h"
#include "relay_text.h"
#include "relay_tlsrpt.h"

struct relay_tlsrpt_meta
relay_tlsrpt_meta_from_config(const struct relay_config *cfg, char *contact_buf,
    size_t contact_size)
{
	struct relay_tlsrpt_meta m = {
		.organization = cfg->tlsrpt_organization[0]
		    ? cfg->tlsrpt_organization
		    : cfg->myhostname,
		.submitter = cfg->tlsrpt_submitter[0] ? cfg->tlsrpt_submitter
		                                      : cfg->myhostname,
	};
	if (cfg->tlsrpt_contact[0]) {
		m.contact = cfg->tlsrpt_contact;
	} else {
		relay_fmt(contact_buf, contact_size, "postmaster@%s",
		    cfg->myhostname);
		m.contact = contact_buf;
	}
	return m;
}

int
relay_tlsrpt_report_id(const char *day, const char *domain,
    const char *submitter, char *buf, size_t size)
{
	/* "20261207.example.org@relay.example.net": the day and the policy
	 * domain make it unique per report of this submitter, the
	 * submitter among submitters; it reads as a msg-id (RFC 5322 3.6.4),
	 * which the Subject of 5.3 puts in angle brackets. */
	if (!relay_tlsrpt_day_parse(day, NULL) || domain[0] == '\0' ||
	    submitter[0] == '\0')
		return -1;
	int n = snprintf(buf, size, "%.4s%.2s%.2s.%s@%s", day, day + 5, day + 8,
	    domain, submitter);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Row order inside a report: the policy first (type, MX, records), then
 * successes before failures, then the failure detail. */
static int
row_cmp(const struct relay_tlsrpt_row *a, const struct relay_tlsrpt_row *b)
{
	int c;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if ((c = strcmp(a->policy_mx, b->policy_mx)) != 0 ||
	    (c = strcmp(a->policy, b->policy)) != 0 ||
	    (c = strcmp(a->result, b->result)) != 0 ||
	    (c = strcmp(a->reason_code, b->reason_code)) != 0 ||
	    (c = strcmp(a->receiving_mx, b->receiving_mx)) != 0 ||
	    (c = strcmp(a->receiving_ip, b->receiving_ip)) != 0 ||
	    (c = strcmp(a->sending_ip, b->sending_ip)) != 0)
		return c;
	return 0;
}

static int
rowp_cmp(const void *x, const void *y)
{
	return row_cmp(*(const struct relay_tlsrpt_row *const *)x,
	    *(const struct relay_tlsrpt_row *const *)y);
}

static bool
same_policy(const struct relay_tlsrpt_row *a, const struct relay_tlsrpt_row *b)
{
	return a->type == b->type && strcmp(a->policy_mx, b->policy_mx) == 0 &&
	    strcmp(a->policy, b->policy) == 0;
}

static void
write_policy(struct relay_json *j, const struct relay_tlsrpt_row *r)
{
	relay_json_key(j, "policy");
	relay_json_obj_begin(j);
	relay_json_kv_str(j, "policy-type",
	    relay_tlsrpt_policy_type_name(r->type));
	/* RFC 8460 4.4: for "tlsa" the TLSA records applied, one string
	 * each, and the MX host they were looked up for; for "sts" the
	 * policy's lines and its mx patterns; mx-host is an array (erratum
	 * 6241). "no-policy-found" has neither. Both lists are stored joined
	 * by '|'. */
	if (r->type != RELAY_TLSRPT_POLICY_NONE) {
		relay_json_key(j, "policy-string");
		relay_json_arr_begin(j);
		const char *p = r->policy;
		while (*p) {
			const char *bar = strchr(p, '|');
			size_t n = bar ? (size_t)(bar - p) : strlen(p);
			relay_json_strn(j, p, n);
			p += n + (bar ? 1 : 0);
		}
		relay_json_arr_end(j);
	}
	relay_json_kv_str(j, "policy-domain", r->domain);
	if (r->type != RELAY_TLSRPT_POLICY_NONE && r->policy_mx[0]) {
		relay_json_key(j, "mx-host");
		relay_json_arr_begin(j);
		for (const char *p = r->policy_mx; *p;) {
			const char *bar = strchr(p, '|');
			size_t n = bar ? (size_t)(bar - p) : strlen(p);
			relay_json_strn(j, p, n);
			p += n + (bar ? 1 : 0);
		}
		relay_json_arr_end(j);
	}
	relay_json_obj_end(j);
}

int
relay_tlsrpt_report_write(const struct relay_tlsrpt_table *t, const char *day,
    const char *domain, const struct relay_tlsrpt_meta *meta, FILE *out)
{
	time_t start;
	if (!relay_tlsrpt_day_parse(day, &start))
		return RELAY_TLSRPT_EINVAL;
	/* An array of pointers into t (their size is meant), sorted below. */
	size_t cap = t->nrows + 1;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression) */
	const struct relay_tlsrpt_row **rows = calloc(cap, sizeof(*rows));
	if (rows == NULL)
		return RELAY_TLSRPT_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < t->nrows; i++)
		if (strcmp(t->rows[i].day, day) == 0 &&
		    strcmp(t->rows[i].domain, domain) == 0)
			rows[n++] = &t->rows[i];
	if (n == 0) {
		free(rows);
		return RELAY_TLSRPT_EINVAL;
	}
	/* NOLINTNEXTLINE(bugprone-sizeof-expression) */
	qsort(rows, n, sizeof(*rows), rowp_cmp);

	char id[1024];
	if (relay_tlsrpt_report_id(day, domain, meta->submitter, id,
	        sizeof(id)) != 0) {
		free(rows);
		return RELAY_TLSRPT_EINVAL;
	}
	char from[32], to[32];
	relay_fmt(from, sizeof(from), "%sT00:00:00Z", day);
	relay_fmt(to, sizeof(to), "%sT23:59:59Z", day);

	struct relay_json j;
	relay_json_init(&j, out);
	relay_json_obj_begin(&j);
	relay_json_kv_str(&j, "organization-name", meta->organization);
	relay_json_key(&j, "date-range");
	relay_json_obj_begin(&j);
	relay_json_kv_str(&j, "start-datetime", from);
	relay_json_kv_str(&j, "end-datetime", to);
	relay_json_obj_end(&j);
	relay_json_kv_str(&j, "contact-info", meta->contact);
	relay_json_kv_str(&j, "report-id", id);
	relay_json_key(&j, "policies");
	relay_json_arr_begin(&j);
	for (size_t i = 0; i < n;) {
		size_t e = i;
		uint64_t ok = 0, fail = 0;
		while (e < n && same_policy(rows[i], rows[e])) {
			if (rows[e]->result[0])
				fail += rows[e]->count;
			else
				ok += rows[e]->count;
			e++;
		}
		relay_json_obj_begin(&j);
		write_policy(&j, rows[i]);
		relay_json_key(&j, "summary");
		relay_json_obj_begin(&j);
		relay_json_kv_u64(&j, "total-successful-session-count", ok);
		relay_json_kv_u64(&j, "total-failure-session-count", fail);
		relay_json_obj_end(&j);
		relay_json_key(&j, "failure-details");
		relay_json_arr_begin(&j);
		for (size_t k = i; k < e; k++) {
			const struct relay_tlsrpt_row *r = rows[k];
			if (!r->result[0])
				continue;
			relay_json_obj_begin(&j);
			relay_json_kv_str(&j, "result-type", r->result);
			/* A host the policy refused was never connected:
			 * no addresses (and no host for a refused domain). */
			if (r->sending_ip[0])
				relay_json_kv_str(&j, "sending-mta-ip",
				    r->sending_ip);
			if (r->receiving_mx[0])
				relay_json_kv_str(&j, "receiving-mx-hostname",
				    r->receiving_mx);
			if (r->receiving_ip[0])
				relay_json_kv_str(&j, "receiving-ip",
				    r->receiving_ip);
			relay_json_kv_u64(&j, "failed-session-count", r->count);
			if (r->reason_code[0])
				relay_json_kv_str(&j, "failure-reason-code",
				    r->reason_code);
			relay_json_obj_end(&j);
		}
		relay_json_arr_end(&j);
		relay_json_obj_end(&j);
		i = e;
	}
	relay_json_arr_end(&j);
	relay_json_obj_end(&j);
	free(rows);
	return relay_json_finish(&j) == 0 ? 0 : -1;
}

int
relay_tlsrpt_report_json(const struct relay_tlsrpt_table *t, const char *day,
    const char *domain, const struct relay_tlsrpt_meta *meta, char **out,
    size_t *outlen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return RELAY_TLSRPT_ENOMEM;
	int r = relay_tlsrpt_report_write(t, day, domain, meta, f);
	if (fclose(f) != 0 && r == 0)
		r = RELAY_TLSRPT_ENOMEM;
	if (r != 0) {
		free(buf);
		return r;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
relay_tlsrpt_domains(const struct relay_tlsrpt_table *t, const char *day,
    const char ***out, size_t *nout)
{
	const char **d = calloc(t->nrows + 1, sizeof(*d));
	if (d == NULL)
		return RELAY_TLSRPT_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < t->nrows; i++)
		if (strcmp(t->rows[i].day, day) == 0)
			d[n++] = t->rows[i].domain;
	qsort(d, n, sizeof(*d), str_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || strcmp(d[k - 1], d[i]) != 0)
			d[k++] = d[i];
	*out = d;
	*nout = k;
	return 0;
}

int
relay_tlsrpt_gzip(const void *p, size_t len, uint8_t **out, size_t *outlen)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip wrapper (RFC 1952), as 5.1 wants. */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
	        Z_DEFAULT_STRATEGY) != Z_OK)
		return RELAY_TLSRPT_ENOMEM;
	uLong cap = deflateBound(&z, (uLong)len) + 64;
	uint8_t *buf = malloc(cap);
	if (buf == NULL) {
		deflateEnd(&z);
		return RELAY_TLSRPT_ENOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)p;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	int r = deflate(&z, Z_FINISH);
	size_t n = (size_t)z.total_out;
	deflateEnd(&z);
	if (r != Z_STREAM_END) {
		free(buf);
		return RELAY_TLSRPT_ENOMEM;
	}
	*out = buf;
	*outlen = n;
	return 0;
}

/* Appends base64 (RFC 2045 6.8: 76-character lines, CRLF) of p/len. */
static int
put_base64(FILE *f, const uint8_t *p, size_t len)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t col = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		char q[4] = { a[(v >> 18) & 63], a[(v >> 12) & 63],
			i + 1 < len ? a[(v >> 6) & 63] : '=',
			i + 2 < len ? a[v & 63] : '=' };
		if (fwrite(q, 1, 4, f) != 4)
			return -1;
		col += 4;
		if (col == 76) {
			fputs("\r\n", f);
			col = 0;
		}
	}
	if (col != 0)
		fputs("\r\n", f);
	return 0;
}

int
relay_tlsrpt_mail(const struct relay_tlsrpt_meta *meta, const char *day,
    const char *domain, const char *from, const char *to, const uint8_t *gz,
    size_t gzlen, time_t now, uint64_t boundary_seed, char **out,
    size_t *outlen)
{
	time_t start;
	char id[1024], date[64], boundary[64];
	if (!relay_tlsrpt_day_parse(day, &start) ||
	    relay_tlsrpt_report_id(day, domain, meta->submitter, id,
	        sizeof(id)) != 0)
		return -1;
	struct tm tm;
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm) ==
	        0)
		return -1;
	relay_fmt(boundary, sizeof(boundary), "tlsrpt-%016llx",
	    (unsigned long long)boundary_seed);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return -1;
	/* RFC 8460 5.3: the Subject, the two TLS-Report headers and
	 * multipart/report with report-type "tlsrpt". */
	fprintf(f,
	    "From: <%s>\r\n"
	    "To: <%s>\r\n"
	    "Date: %s\r\n"
	    "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n"
	    "Message-ID: <%s>\r\n"
	    "TLS-Report-Domain: %s\r\n"
	    "TLS-Report-Submitter: %s\r\n"
	    "Auto-Submitted: auto-generated\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n"
	    "\tboundary=\"%s\"\r\n"
	    "\r\n"
	    "This is a multipart message in MIME format.\r\n"
	    "\r\n"
	    "--%s\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n"
	    "\r\n"
	    "This is an aggregate TLS report (RFC 8460) from %s\r\n"
	    "for mail to %s on %s (UTC).\r\n"
	    "\r\n"
	    "--%s\r\n"
	    "Content-Type: application/tlsrpt+gzip\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    /* RFC 8460 5.1: sender!policy-domain!begin!end!unique-id */
	    "Content-Disposition: attachment;\r\n"
	    "\tfilename=\"%s!%s!%lld!%lld!0.json.gz\"\r\n"
	    "\r\n",
	    from, to, date, domain, meta->submitter, id, id, domain,
	    meta->submitter, boundary, boundary, meta->organization, domain,
	    day, boundary, meta->submitter, domain, (long long)start,
	    (long long)start + 86399);
	int r = put_base64(f, gz, gzlen);
	fprintf(f, "\r\n--%s--\r\n", boundary);
	if (fclose(f) != 0 || r != 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = len;
	return 0;
}
