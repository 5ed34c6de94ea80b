/*
 * relay_tlsrpt_table: the counts of TLS sessions per day, policy and
 * failure detail, and their journal line.
 *
 * A journal line is ten tab-separated fields and a count:
 *   "t1" day domain type policy-mx policy result reason sending-ip
 *   receiving-mx receiving-ip count LF
 * (the "t1" marks the format). Fields never hold a tab, LF or control
 * byte (relay_tlsrpt_table_add refuses them), so no escaping is needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay_text.h"
#include "relay_tlsrpt.h"

#define FIELD_MAX 512u
#define NFIELDS 12

const char *
relay_tlsrpt_strerror(int err)
{
	switch (err) {
	case RELAY_TLSRPT_OK:
		return "ok";
	case RELAY_TLSRPT_ENOMEM:
		return "out of memory";
	case RELAY_TLSRPT_EIO:
		return "input/output error";
	case RELAY_TLSRPT_EFORMAT:
		return "malformed data";
	case RELAY_TLSRPT_EFULL:
		return "too many rows";
	case RELAY_TLSRPT_EINVAL:
		return "invalid argument";
	default:
		return "unknown error";
	}
}

const char *
relay_tlsrpt_policy_type_name(enum relay_tlsrpt_policy_type t)
{
	switch (t) {
	case RELAY_TLSRPT_POLICY_TLSA:
		return "tlsa";
	case RELAY_TLSRPT_POLICY_STS:
		return "sts";
	case RELAY_TLSRPT_POLICY_NONE:
		return "no-policy-found";
	}
	return "no-policy-found";
}

static int
type_parse(const char *s, enum relay_tlsrpt_policy_type *out)
{
	for (int i = RELAY_TLSRPT_POLICY_TLSA; i <= RELAY_TLSRPT_POLICY_NONE;
	     i++) {
		enum relay_tlsrpt_policy_type t =
		    (enum relay_tlsrpt_policy_type)i;
		if (strcmp(relay_tlsrpt_policy_type_name(t), s) == 0) {
			*out = t;
			return 0;
		}
	}
	return -1;
}

void
relay_tlsrpt_table_init(struct relay_tlsrpt_table *t)
{
	memset(t, 0, sizeof(*t));
}

static void
row_free(struct relay_tlsrpt_row *r)
{
	free(r->day);
	free(r->domain);
	free(r->policy);
	free(r->policy_mx);
	free(r->result);
	free(r->reason_code);
	free(r->sending_ip);
	free(r->receiving_mx);
	free(r->receiving_ip);
}

void
relay_tlsrpt_table_free(struct relay_tlsrpt_table *t)
{
	for (size_t i = 0; i < t->nrows; i++)
		row_free(&t->rows[i]);
	free(t->rows);
	free(t->hash);
	memset(t, 0, sizeof(*t));
}

static const char *
nz(const char *s)
{
	return s != NULL ? s : "";
}

/* A field may not hold a byte that would break the line, nor exceed
 * FIELD_MAX (policy: RELAY_TLSRPT_POLICY_MAX). */
static bool
field_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static uint64_t
fnv(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	h ^= 0xff; /* field separator */
	h *= 1099511628211ull;
	return h;
}

static uint64_t
key_hash(const char *day, const struct relay_tlsrpt_session *s)
{
	uint64_t h = 14695981039346656037ull;
	h = fnv(h, day);
	h = fnv(h, nz(s->domain));
	h = fnv(h, relay_tlsrpt_policy_type_name(s->type));
	h = fnv(h, nz(s->policy));
	h = fnv(h, nz(s->policy_mx));
	h = fnv(h, nz(s->result));
	h = fnv(h, nz(s->reason_code));
	h = fnv(h, nz(s->sending_ip));
	h = fnv(h, nz(s->receiving_mx));
	h = fnv(h, nz(s->receiving_ip));
	return h;
}

struct relay_tlsrpt_session
relay_tlsrpt_row_session(const struct relay_tlsrpt_row *r)
{
	return (struct relay_tlsrpt_session){
		.domain = r->domain,
		.type = r->type,
		.policy = r->policy,
		.policy_mx = r->policy_mx,
		.result = r->result,
		.reason_code = r->reason_code,
		.sending_ip = r->sending_ip,
		.receiving_mx = r->receiving_mx,
		.receiving_ip = r->receiving_ip,
	};
}

static uint64_t
row_hash(const struct relay_tlsrpt_row *r)
{
	struct relay_tlsrpt_session s = relay_tlsrpt_row_session(r);
	return key_hash(r->day, &s);
}

static bool
row_matches(const struct relay_tlsrpt_row *r, const char *day,
    const struct relay_tlsrpt_session *s)
{
	return r->type == s->type && strcmp(r->day, day) == 0 &&
	    strcmp(r->domain, nz(s->domain)) == 0 &&
	    strcmp(r->policy, nz(s->policy)) == 0 &&
	    strcmp(r->policy_mx, nz(s->policy_mx)) == 0 &&
	    strcmp(r->result, nz(s->result)) == 0 &&
	    strcmp(r->reason_code, nz(s->reason_code)) == 0 &&
	    strcmp(r->sending_ip, nz(s->sending_ip)) == 0 &&
	    strcmp(r->receiving_mx, nz(s->receiving_mx)) == 0 &&
	    strcmp(r->receiving_ip, nz(s->receiving_ip)) == 0;
}

static int
rehash(struct relay_tlsrpt_table *t, size_t nb)
{
	size_t *h = calloc(nb, sizeof(*h));
	if (h == NULL)
		return RELAY_TLSRPT_ENOMEM;
	free(t->hash);
	t->hash = h;
	t->nbuckets = nb;
	for (size_t i = 0; i < t->nrows; i++) {
		size_t b = (size_t)(row_hash(&t->rows[i]) % nb);
		t->rows[i].hnext = h[b];
		h[b] = i + 1;
	}
	return 0;
}

int
relay_tlsrpt_table_add(struct relay_tlsrpt_table *t, const char *day,
    const struct relay_tlsrpt_session *s, uint64_t n,
    struct relay_tlsrpt_row **row)
{
	if (!relay_tlsrpt_day_parse(day, NULL) || nz(s->domain)[0] == '\0' ||
	    !field_ok(nz(s->domain), FIELD_MAX) ||
	    !field_ok(nz(s->policy), RELAY_TLSRPT_POLICY_MAX) ||
	    !field_ok(nz(s->policy_mx), FIELD_MAX) ||
	    !field_ok(nz(s->result), FIELD_MAX) ||
	    !field_ok(nz(s->reason_code), FIELD_MAX) ||
	    !field_ok(nz(s->sending_ip), FIELD_MAX) ||
	    !field_ok(nz(s->receiving_mx), FIELD_MAX) ||
	    !field_ok(nz(s->receiving_ip), FIELD_MAX))
		return RELAY_TLSRPT_EINVAL;
	if (t->nbuckets == 0 && rehash(t, 256) != 0)
		return RELAY_TLSRPT_ENOMEM;
	size_t b = (size_t)(key_hash(day, s) % t->nbuckets);
	for (size_t i = t->hash[b]; i != 0; i = t->rows[i - 1].hnext) {
		struct relay_tlsrpt_row *r = &t->rows[i - 1];
		if (row_matches(r, day, s)) {
			r->count += n;
			if (row != NULL)
				*row = r;
			return 0;
		}
	}
	if (t->nrows >= RELAY_TLSRPT_ROWS_MAX)
		return RELAY_TLSRPT_EFULL;
	if (t->nrows == t->cap) {
		size_t nc = t->cap ? 2 * t->cap : 64;
		struct relay_tlsrpt_row *nr =
		    realloc(t->rows, nc * sizeof(*nr));
		if (nr == NULL)
			return RELAY_TLSRPT_ENOMEM;
		t->rows = nr;
		t->cap = nc;
	}
	struct relay_tlsrpt_row *r = &t->rows[t->nrows];
	memset(r, 0, sizeof(*r));
	r->type = s->type;
	r->day = strdup(day);
	r->domain = strdup(nz(s->domain));
	r->policy = strdup(nz(s->policy));
	r->policy_mx = strdup(nz(s->policy_mx));
	r->result = strdup(nz(s->result));
	r->reason_code = strdup(nz(s->reason_code));
	r->sending_ip = strdup(nz(s->sending_ip));
	r->receiving_mx = strdup(nz(s->receiving_mx));
	r->receiving_ip = strdup(nz(s->receiving_ip));
	if (r->day == NULL || r->domain == NULL || r->policy == NULL ||
	    r->policy_mx == NULL || r->result == NULL ||
	    r->reason_code == NULL || r->sending_ip == NULL ||
	    r->receiving_mx == NULL || r->receiving_ip == NULL) {
		row_free(r);
		return RELAY_TLSRPT_ENOMEM;
	}
	r->count = n;
	r->hnext = t->hash[b];
	t->hash[b] = t->nrows + 1;
	t->nrows++;
	if (t->nrows > 2 * t->nbuckets)
		(void)rehash(t,
		    4 * t->nbuckets); /* a slower table still works */
	if (row != NULL)
		*row = r;
	return 0;
}

size_t
relay_tlsrpt_table_line(const struct relay_tlsrpt_row *r, uint64_t count,
    char *buf, size_t size)
{
	int n = snprintf(buf, size,
	    "t1\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%" PRIu64 "\n", r->day,
	    r->domain, relay_tlsrpt_policy_type_name(r->type), r->policy_mx,
	    r->policy, r->result, r->reason_code, r->sending_ip,
	    r->receiving_mx, r->receiving_ip, count);
	if (n < 0 || (size_t)n >= size)
		return 0;
	return (size_t)n;
}

/* One whole line (without its LF) into t. */
static int
load_line(struct relay_tlsrpt_table *t, char *line)
{
	char *f[NFIELDS];
	size_t nf = 0;
	char *p = line;
	for (;;) {
		if (nf == NFIELDS)
			return RELAY_TLSRPT_EFORMAT;
		f[nf++] = p;
		char *tab = strchr(p, '\t');
		if (tab == NULL)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	if (nf != NFIELDS || strcmp(f[0], "t1") != 0)
		return RELAY_TLSRPT_EFORMAT;
	struct relay_tlsrpt_session s = {
		.domain = f[2],
		.policy_mx = f[4],
		.policy = f[5],
		.result = f[6],
		.reason_code = f[7],
		.sending_ip = f[8],
		.receiving_mx = f[9],
		.receiving_ip = f[10],
	};
	if (type_parse(f[3], &s.type) != 0)
		return RELAY_TLSRPT_EFORMAT;
	if (f[11][0] < '0' || f[11][0] > '9')
		return RELAY_TLSRPT_EFORMAT;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(f[11], &end, 10);
	if (errno != 0 || *end != '\0')
		return RELAY_TLSRPT_EFORMAT;
	int r = relay_tlsrpt_table_add(t, f[1], &s, n, NULL);
	return r == RELAY_TLSRPT_EINVAL ? RELAY_TLSRPT_EFORMAT : r;
}

int
relay_tlsrpt_table_load(struct relay_tlsrpt_table *t, const char *p, size_t len,
    size_t *good_len, size_t *bad_line)
{
	size_t off = 0, lineno = 0;
	char buf[RELAY_TLSRPT_LINE_MAX];
	while (off < len) {
		const char *nl = memchr(p + off, '\n', len - off);
		if (nl == NULL)
			break; /* torn tail: ignored */
		size_t n = (size_t)(nl - (p + off));
		lineno++;
		if (n >= sizeof(buf) || memchr(p + off, '\0', n) != NULL) {
			if (bad_line != NULL)
				*bad_line = lineno;
			return RELAY_TLSRPT_EFORMAT;
		}
		memcpy(buf, p + off, n);
		buf[n] = '\0';
		int r = load_line(t, buf);
		if (r != 0) {
			if (bad_line != NULL)
				*bad_line = lineno;
			return r;
		}
		off += n + 1;
	}
	if (good_len != NULL)
		*good_len = off;
	return 0;
}

int
relay_tlsrpt_dir(const char *spool_dir, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s", spool_dir, RELAY_TLSRPT_DIR);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int
relay_tlsrpt_table_read_day(struct relay_tlsrpt_table *t, const char *dir,
    const char *day, char *err, size_t errlen)
{
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		relay_fmt(err, errlen, "cannot read %s: %s", dir,
		    errno != 0 ? strerror(errno) : "not a directory");
		return RELAY_TLSRPT_EIO;
	}
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/%s.log", dir, day);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		relay_fmt(err, errlen, "path too long");
		return RELAY_TLSRPT_EIO;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		relay_fmt(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return RELAY_TLSRPT_EIO;
	}
	char *data = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (cap - len < 65536) {
			size_t nc = cap ? 2 * cap : 65536;
			char *nd = realloc(data, nc);
			if (nd == NULL) {
				free(data);
				close(fd);
				relay_fmt(err, errlen, "out of memory");
				return RELAY_TLSRPT_ENOMEM;
			}
			data = nd;
			cap = nc;
		}
		ssize_t r = read(fd, data + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			relay_fmt(err, errlen, "cannot read %s: %s", path,
			    strerror(errno));
			free(data);
			close(fd);
			return RELAY_TLSRPT_EIO;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	size_t bad = 0;
	int r = relay_tlsrpt_table_load(t, data, len, NULL, &bad);
	free(data);
	if (r != 0)
		relay_fmt(err, errlen, "%s: line %zu: %s", path, bad,
		    relay_tlsrpt_strerror(r));
	return r;
}

void
relay_tlsrpt_day(time_t t, char out[RELAY_TLSRPT_DAY_SIZE])
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, RELAY_TLSRPT_DAY_SIZE, "%Y-%m-%d", &tm) == 0)
		relay_copy(out, RELAY_TLSRPT_DAY_SIZE, "1970-01-01");
}

bool
relay_tlsrpt_day_parse(const char *s, time_t *start)
{
	if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 +
	    (s[2] - '0') * 10 + (s[3] - '0') - 1900;
	tm.tm_mon = (s[5] - '0') * 10 + (s[6] - '0') - 1;
	tm.tm_mday = (s[8] - '0') * 10 + (s[9] - '0');
	if (tm.tm_year < 70 || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31)
		return false;
	time_t t = timegm(&tm);
	char back[RELAY_TLSRPT_DAY_SIZE];
	relay_tlsrpt_day(t, back);
	if (strcmp(back, s) != 0)
		return false; /* 2026-02-31 */
	if (start != NULL)
		*start = t;
	return true;
}
