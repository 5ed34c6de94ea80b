/*
 * relay_sts: the MTA-STS policy cache (see relay_sts.h).
 *
 * One entry per domain asked about, in a list (a relay talks to a bounded
 * set of domains per max_age; the list is searched linearly). A refresh
 * is a chain of steps, one at a time, on the loop thread unless noted:
 *
 *   load     (thread pool, first time only) read spool_dir/mta-sts/DOMAIN
 *   txt      _mta-sts.DOMAIN TXT through the validating resolver (3.1)
 *   addr     mta-sts.DOMAIN A, then AAAA, through the same resolver
 *   fetch    (thread pool) HTTPS GET with libcurl, pinned to those
 *            addresses (CURLOPT_RESOLVE), parse, write the cache file
 *   done     update the entry, answer every waiter
 *
 * Why the relay resolves mta-sts.DOMAIN itself: libcurl's resolver is the
 * system's (getaddrinfo, /etc/resolv.conf), which is not the relay's
 * resolver (dns_forwarders, dns_resolver_config), may block a pool thread
 * on its own timeouts, and does not validate; a bogus answer from the
 * relay's resolver is refused here like any other fetch failure. The
 * HTTPS certificate is then checked for the name mta-sts.DOMAIN (libcurl
 * verifies the host name it was given, not the pinned address).
 */
#include "relay_sts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <unbound.h>

#include "relay_log.h"
#include "relay_text.h"

#define DNS_TYPE_TXT 16
/* Addresses of mta-sts.DOMAIN handed to libcurl. */
#define STS_ADDRS_MAX 8
#define STS_URL_MAX 320
#define STS_PATH_MAX 4096
/* Domains kept in memory before idle ones are dropped (their policies
 * stay on disk and are read back at the next use). */
#define STS_ENTRIES_SOFT_MAX 4096

struct relay_sts_wait {
	struct relay_sts_wait *next, **pprev;
	struct sts_entry *e;
	relay_sts_cb *cb;
	void *arg;
};

struct sts_entry {
	struct sts_entry *next;
	struct relay_sts *sts;
	char domain[RELAY_DNS_HOST_MAX];
	struct relay_sts_state st;
	struct relay_sts_policy *policy; /* owned, NULL when none */
	char id[RELAY_STS_ID_MAX + 1];
	char why[RELAY_STS_WHY_MAX]; /* of the last NONE / FAILED */
	bool policy_stale;           /* the last refresh failed, policy kept */
	bool loaded;                 /* the disk cache was read */
	bool busy;                   /* a refresh is running */
	struct relay_sts_wait *waiters;
	/* The refresh in progress. */
	struct relay_dns_query *q;
	char txt_id[RELAY_STS_ID_MAX + 1];
	char addrs[STS_ADDRS_MAX][INET6_ADDRSTRLEN + 2];
	size_t naddrs;
	struct sts_work *work;
};

enum sts_work_kind {
	STS_WORK_LOAD,
	STS_WORK_FETCH
};

/* One thread-pool job. The worker reads only the inputs and writes only
 * the outputs; the loop thread touches neither while it runs. */
struct sts_work {
	uv_work_t req;
	struct sts_entry *e;
	enum sts_work_kind kind;
	/* inputs */
	const struct relay_sts *sts;
	char domain[RELAY_DNS_HOST_MAX];
	char path[STS_PATH_MAX];
	char id[RELAY_STS_ID_MAX + 1];
	uint64_t now_wall_s;
	char resolve[STS_ADDRS_MAX * (INET6_ADDRSTRLEN + 4) + 300];
	/* mta_sts_ca_file when the fetch started (a reload may change
	 * sts->ca_file meanwhile, on the loop thread). */
	char ca_file[STS_PATH_MAX];
	/* outputs */
	bool ok;
	struct relay_sts_policy pol;
	char got_id[RELAY_STS_ID_MAX + 1];
	uint64_t fetched_wall_s;
	char err[RELAY_STS_WHY_MAX];
};

struct relay_sts {
	uv_loop_t *loop;
	const struct relay_clock *clock;
	struct relay_dns *const *dns;
	char cache_dir[STS_PATH_MAX];
	char ca_file[STS_PATH_MAX];
	uint64_t timeout_ms;
	uint64_t check_interval_ms;
	bool read_only;
	/* Waiter callbacks running: a close from inside one frees nothing
	 * until they have returned. */
	unsigned in_callbacks;
	struct sts_entry *entries;
	size_t nentries;
	size_t works;         /* thread-pool jobs in flight */
	atomic_bool aborting; /* read by fetches in the pool */
	bool closing;
	void (*closed_cb)(void *arg);
	void *closed_arg;
};

const char *
relay_sts_outcome_name(enum relay_sts_outcome o)
{
	switch (o) {
	case RELAY_STS_OUTCOME_NONE:
		return "none";
	case RELAY_STS_OUTCOME_POLICY:
		return "policy";
	case RELAY_STS_OUTCOME_FAILED:
		return "failed";
	}
	return "failed";
}

/* ------------------------------------------------------------ decision */

enum relay_sts_action
relay_sts_decide(const struct relay_sts_state *st, uint64_t now_wall_s,
    uint64_t now_mono_us, uint64_t check_interval_ms)
{
	uint64_t age_ms = st->checked && now_mono_us >= st->checked_mono_us
	    ? (now_mono_us - st->checked_mono_us) / 1000u
	    : UINT64_MAX;
	if (st->have_policy && now_wall_s < st->expires_wall_s) {
		/* RFC 8461 5.1 step 1: a cached policy whose max_age has not
		 * passed is used; refreshing it (the TXT id) happens beside
		 * the delivery, never in front of it. */
		return age_ms >= check_interval_ms
		    ? RELAY_STS_USE_POLICY_REFRESH
		    : RELAY_STS_USE_POLICY;
	}
	if (st->checked && !st->have_policy) {
		uint64_t limit = check_interval_ms;
		if (st->last == RELAY_STS_OUTCOME_FAILED &&
		    limit > RELAY_STS_FAILED_RECHECK_MS)
			limit = RELAY_STS_FAILED_RECHECK_MS;
		if (age_ms < limit)
			return RELAY_STS_USE_LAST;
	}
	/* Nothing known, or a policy that has expired (3.2 max_age): the
	 * caller waits for a fresh answer. */
	return RELAY_STS_WAIT;
}

int
relay_sts_cache_parse(const uint8_t *p, size_t len,
    char id[RELAY_STS_ID_MAX + 1], uint64_t *fetched_wall_s,
    struct relay_sts_policy *pol)
{
	/* "id ID\n" */
	static const char k_id[] = "id ", k_f[] = "fetched ";
	size_t i = 0;
	if (len < sizeof(k_id) - 1 || memcmp(p, k_id, sizeof(k_id) - 1) != 0)
		return RELAY_STS_ERR_SYNTAX;
	i = sizeof(k_id) - 1;
	size_t n = 0;
	while (i < len && p[i] != '\n') {
		uint8_t c = p[i++];
		if (n >= RELAY_STS_ID_MAX ||
		    !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		        (c >= 'A' && c <= 'Z')))
			return RELAY_STS_ERR_SYNTAX;
		id[n++] = (char)c;
	}
	id[n] = '\0';
	if (n == 0 || i >= len)
		return RELAY_STS_ERR_SYNTAX;
	i++;
	/* "fetched SECONDS\n" */
	if (len - i < sizeof(k_f) - 1 ||
	    memcmp(p + i, k_f, sizeof(k_f) - 1) != 0)
		return RELAY_STS_ERR_SYNTAX;
	i += sizeof(k_f) - 1;
	uint64_t v = 0;
	size_t digits = 0;
	while (i < len && p[i] >= '0' && p[i] <= '9' && digits < 19) {
		v = v * 10 + (uint64_t)(p[i++] - '0');
		digits++;
	}
	if (digits == 0 || i + 1 >= len || p[i] != '\n' || p[i + 1] != '\n')
		return RELAY_STS_ERR_SYNTAX;
	*fetched_wall_s = v;
	return relay_sts_policy_parse(p + i + 2, len - i - 2, pol);
}

/* -------------------------------------------------------------- helpers */

static void
log_refresh(const struct sts_entry *e, enum relay_log_level lvl,
    const char *status, const char *why)
{
	struct relay_log_line l;
	if (!relay_log_begin(&l, lvl, "mta-sts"))
		return;
	relay_log_str(&l, "domain", e->domain);
	relay_log_str(&l, "status", status);
	if (e->policy != NULL) {
		relay_log_str(&l, "mode", relay_sts_mode_name(e->policy->mode));
		relay_log_str(&l, "policy_id", e->id);
		relay_log_u64(&l, "max_age", e->policy->max_age);
	}
	if (why != NULL && why[0] != '\0')
		relay_log_str(&l, "why", why);
	relay_log_end(&l);
}

static void
fill_answer(const struct sts_entry *e, struct relay_sts_answer *a)
{
	memset(a, 0, sizeof(*a));
	uint64_t now = (uint64_t)relay_clock_wall_s(e->sts->clock);
	if (e->policy != NULL && now < e->st.expires_wall_s) {
		a->outcome = RELAY_STS_OUTCOME_POLICY;
		a->policy = *e->policy;
		relay_copy(a->id, sizeof(a->id), e->id);
		a->from_cache = e->policy_stale;
		return;
	}
	a->outcome = e->st.checked ? e->st.last : RELAY_STS_OUTCOME_FAILED;
	relay_copy(a->why, sizeof(a->why),
	    e->why[0] ? e->why : "no MTA-STS answer yet");
}

static void
entry_set_policy(struct sts_entry *e, const struct relay_sts_policy *pol,
    const char *id, uint64_t fetched_wall_s)
{
	if (e->policy == NULL) {
		e->policy = malloc(sizeof(*e->policy));
		if (e->policy == NULL)
			return; /* no policy kept: the next refresh tries again */
	}
	*e->policy = *pol;
	relay_copy(e->id, sizeof(e->id), id);
	e->st.have_policy = true;
	e->st.expires_wall_s = fetched_wall_s + pol->max_age;
	e->policy_stale = false;
}


static void sts_maybe_free(struct relay_sts *sts);

/* The refresh is over: record it and answer every waiter. */
static void
entry_done(struct sts_entry *e, enum relay_sts_outcome last, const char *why)
{
	e->busy = false;
	e->q = NULL;
	e->st.checked = true;
	e->st.checked_mono_us = relay_clock_mono_us(e->sts->clock);
	e->st.last = last;
	relay_copy(e->why, sizeof(e->why), why != NULL ? why : "");
	struct relay_sts_answer a;
	fill_answer(e, &a);
	struct relay_sts *sts = e->sts;
	sts->in_callbacks++;
	/* A callback may close sts (which drops the other waiters) or
	 * cancel another waiter: the list is re-read each time. */
	while (e->waiters != NULL) {
		struct relay_sts_wait *w = e->waiters;
		e->waiters = w->next;
		if (e->waiters != NULL)
			e->waiters->pprev = &e->waiters;
		relay_sts_cb *cb = w->cb;
		void *arg = w->arg;
		free(w);
		cb(arg, &a);
	}
	sts->in_callbacks--;
	sts_maybe_free(sts);
}

/* The refresh could not get a new policy. An unexpired cached policy
 * stays in force (RFC 8461 5.1 step 1; 3.3: only without one does the
 * sender go on as though there were no policy). */
static void
entry_fail_at(struct sts_entry *e, enum relay_sts_outcome without_policy,
    const char *why, enum relay_log_level lvl)
{
	uint64_t now = (uint64_t)relay_clock_wall_s(e->sts->clock);
	if (e->policy != NULL && now < e->st.expires_wall_s) {
		e->policy_stale = true;
		log_refresh(e, RELAY_LOG_WARNING, "refresh-failed-using-cache",
		    why);
		entry_done(e, without_policy, why);
		return;
	}
	log_refresh(e, lvl,
	    without_policy == RELAY_STS_OUTCOME_FAILED ? "failed" : "no-policy",
	    why);
	entry_done(e, without_policy, why);
}

static void
entry_fail(struct sts_entry *e, enum relay_sts_outcome without_policy,
    const char *why)
{
	entry_fail_at(e, without_policy, why, RELAY_LOG_WARNING);
}

/* ------------------------------------------------------- thread pool */

static void sts_work_after(uv_work_t *req, int status);

struct body {
	uint8_t buf[RELAY_STS_BODY_MAX];
	size_t len;
	bool too_big;
};

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	if (n > sizeof(b->buf) - b->len) {
		/* RFC 8461 3.3: a bounded body; stop the transfer. */
		b->too_big = true;
		return 0;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	return n;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	const struct relay_sts *sts = arg;
	(void)dt, (void)dn, (void)ut, (void)un;
	return atomic_load(&sts->aborting) ? 1 : 0;
}

static bool
write_cache(const char *path, const char *id, uint64_t fetched,
    const uint8_t *body, size_t len, char *err, size_t errlen)
{
	char tmp[STS_PATH_MAX + 8];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return false;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		relay_fmt(err, errlen, "cache %s: %s", tmp, strerror(errno));
		return false;
	}
	char head[96];
	int hl = snprintf(head, sizeof(head), "id %s\nfetched %llu\n\n", id,
	    (unsigned long long)fetched);
	bool ok = hl > 0 && (size_t)hl < sizeof(head) &&
	    write(fd, head, (size_t)hl) == hl &&
	    write(fd, body, len) == (ssize_t)len && fsync(fd) == 0;
	if (close(fd) != 0)
		ok = false;
	if (!ok || rename(tmp, path) != 0) {
		relay_fmt(err, errlen, "cache %s: %s", path, strerror(errno));
		(void)unlink(tmp);
		return false;
	}
	return true;
}

static void
work_fetch(struct sts_work *w)
{
	const struct relay_sts *sts = w->sts;
	struct body *b = malloc(sizeof(*b));
	CURL *c = curl_easy_init();
	struct curl_slist *res = NULL;
	if (b == NULL || c == NULL) {
		relay_copy(w->err, sizeof(w->err), "out of memory");
		goto out;
	}
	b->len = 0;
	b->too_big = false;
	char url[STS_URL_MAX];
	snprintf(url, sizeof(url), "https://mta-sts.%s/.well-known/mta-sts.txt",
	    w->domain);
	res = curl_slist_append(NULL, w->resolve);
	if (res == NULL) {
		relay_copy(w->err, sizeof(w->err), "out of memory");
		goto out;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	long to = (long)sts->timeout_ms;
	/* RFC 8461 3.3: HTTPS only, a valid certificate for mta-sts.DOMAIN
	 * (RFC 6125), no redirects, only 200; a bounded time and size. No
	 * proxy from the environment: the fetch goes where DNS said. */
	int bad = 0;
	bad |= curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_RESOLVE, res) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_NOPROXY, "*") != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_SSLVERSION,
	           (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK;
	if (w->ca_file[0] != '\0')
		bad |=
		    curl_easy_setopt(c, CURLOPT_CAINFO, w->ca_file) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, to) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, to) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "danerelay") != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, b) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress) !=
	    CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_XFERINFODATA, sts) != CURLE_OK;
	if (bad) {
		relay_copy(w->err, sizeof(w->err), "libcurl refused an option");
		goto out;
	}
	CURLcode cr = curl_easy_perform(c);
	if (b->too_big) {
		relay_fmt(w->err, sizeof(w->err),
		    "%s: policy larger than %u bytes", url, RELAY_STS_BODY_MAX);
		goto out;
	}
	if (cr != CURLE_OK) {
		relay_fmt(w->err, sizeof(w->err), "%s: %s", url,
		    errbuf[0] ? errbuf : curl_easy_strerror(cr));
		goto out;
	}
	long code = 0;
	char *ct = NULL;
	if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
	    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK) {
		relay_fmt(w->err, sizeof(w->err), "%s: no response code", url);
		goto out;
	}
	if (code != 200) {
		relay_fmt(w->err, sizeof(w->err), "%s: HTTP status %ld", url,
		    code);
		goto out;
	}
	if (!relay_sts_media_type_ok(ct)) {
		relay_fmt(w->err, sizeof(w->err),
		    "%s: media type %.64s, not text/plain", url,
		    ct != NULL ? ct : "(none)");
		goto out;
	}
	int pr = relay_sts_policy_parse(b->buf, b->len, &w->pol);
	if (pr != 0) {
		relay_fmt(w->err, sizeof(w->err), "%s: policy invalid: %s", url,
		    relay_sts_strerror(pr));
		goto out;
	}
	relay_copy(w->got_id, sizeof(w->got_id), w->id);
	w->fetched_wall_s = w->now_wall_s;
	w->ok = true;
	/* A cache that cannot be written costs a fetch after a restart,
	 * nothing more: the policy is good either way. */
	if (!sts->read_only)
		(void)write_cache(w->path, w->id, w->now_wall_s, b->buf, b->len,
		    w->err, sizeof(w->err));
out:
	curl_slist_free_all(res);
	if (c != NULL)
		curl_easy_cleanup(c);
	free(b);
}

static void
work_load(struct sts_work *w)
{
	int fd = open(w->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size_t cap = RELAY_STS_BODY_MAX + 128;
	uint8_t *buf = malloc(cap);
	size_t len = 0;
	if (buf != NULL) {
		for (;;) {
			ssize_t n = read(fd, buf + len, cap - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			if (len == cap)
				break;
		}
		if (len < cap &&
		    relay_sts_cache_parse(buf, len, w->got_id,
		        &w->fetched_wall_s, &w->pol) == 0)
			w->ok = true;
		else
			relay_fmt(w->err, sizeof(w->err),
			    "cache file %s unreadable, ignored", w->path);
	}
	free(buf);
	close(fd);
}

static void
sts_work_run(uv_work_t *req)
{
	struct sts_work *w = req->data;
	switch (w->kind) {
	case STS_WORK_LOAD:
		work_load(w);
		return;
	case STS_WORK_FETCH:
		work_fetch(w);
		return;
	}
}

static bool
work_start(struct sts_entry *e, enum sts_work_kind kind)
{
	struct relay_sts *sts = e->sts;
	struct sts_work *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return false;
	w->e = e;
	w->kind = kind;
	w->sts = sts;
	relay_copy(w->domain, sizeof(w->domain), e->domain);
	if ((size_t)snprintf(w->path, sizeof(w->path), "%s/%s", sts->cache_dir,
	        e->domain) >= sizeof(w->path)) {
		free(w);
		return false;
	}
	relay_copy(w->id, sizeof(w->id), e->txt_id);
	w->now_wall_s = (uint64_t)relay_clock_wall_s(sts->clock);
	if (kind == STS_WORK_FETCH) {
		relay_copy(w->ca_file, sizeof(w->ca_file), sts->ca_file);
		/* CURLOPT_RESOLVE: "HOST:443:ADDR[,ADDR...]" */
		size_t off = (size_t)snprintf(w->resolve, sizeof(w->resolve),
		    "mta-sts.%s:443:", e->domain);
		for (size_t i = 0; i < e->naddrs && off < sizeof(w->resolve);
		     i++)
			off += (size_t)snprintf(w->resolve + off,
			    sizeof(w->resolve) - off, "%s%s", i ? "," : "",
			    e->addrs[i]);
		if (off >= sizeof(w->resolve)) {
			free(w);
			return false;
		}
	}
	w->req.data = w;
	if (uv_queue_work(sts->loop, &w->req, sts_work_run, sts_work_after) !=
	    0) {
		free(w);
		return false;
	}
	e->work = w;
	sts->works++;
	return true;
}

/* --------------------------------------------------- the refresh chain */

static void step_txt(struct sts_entry *e);
static void step_addr(struct sts_entry *e, uint16_t qtype);

static void
on_addr(void *arg, const struct relay_dns_answer *ans)
{
	struct sts_entry *e = arg;
	e->q = NULL;
	if (ans->st.kind == RELAY_DNS_FAILED) {
		char why[RELAY_STS_WHY_MAX];
		relay_fmt(why, sizeof(why), "address lookup of %s: %s%s%s",
		    ans->qname, relay_dns_why_name(ans->st.why),
		    ans->why_bogus ? ": " : "",
		    ans->why_bogus ? ans->why_bogus : "");
		entry_fail(e, RELAY_STS_OUTCOME_NONE, why);
		return;
	}
	if (ans->st.kind == RELAY_DNS_DATA && ans->ub != NULL) {
		for (size_t i = 0;
		     ans->ub->data[i] != NULL && e->naddrs < STS_ADDRS_MAX;
		     i++) {
			const uint8_t *p = (const uint8_t *)ans->ub->data[i];
			size_t len = (size_t)ans->ub->len[i];
			uint8_t b[16];
			char t[INET6_ADDRSTRLEN];
			if (ans->qtype == RELAY_DNS_TYPE_A &&
			    relay_dns_a_parse(p, len, b) == 0 &&
			    inet_ntop(AF_INET, b, t, sizeof(t)) != NULL)
				relay_copy(e->addrs[e->naddrs++],
				    sizeof(e->addrs[0]), t);
			else if (ans->qtype == RELAY_DNS_TYPE_AAAA &&
			    relay_dns_aaaa_parse(p, len, b) == 0 &&
			    inet_ntop(AF_INET6, b, t, sizeof(t)) != NULL)
				relay_fmt(e->addrs[e->naddrs++],
				    sizeof(e->addrs[0]), "[%s]", t);
		}
	}
	if (ans->qtype == RELAY_DNS_TYPE_A) {
		step_addr(e, RELAY_DNS_TYPE_AAAA);
		return;
	}
	if (e->naddrs == 0) {
		char why[RELAY_STS_WHY_MAX];
		relay_fmt(why, sizeof(why), "mta-sts.%s has no address",
		    e->domain);
		entry_fail(e, RELAY_STS_OUTCOME_NONE, why);
		return;
	}
	if (!work_start(e, STS_WORK_FETCH))
		entry_fail(e, RELAY_STS_OUTCOME_NONE, "cannot start the fetch");
}

static void
step_addr(struct sts_entry *e, uint16_t qtype)
{
	char name[RELAY_DNS_HOST_MAX + 16];
	relay_fmt(name, sizeof(name), "mta-sts.%s", e->domain);
	if (qtype == RELAY_DNS_TYPE_A)
		e->naddrs = 0;
	int r = relay_dns_lookup(*e->sts->dns, name, qtype, on_addr, e, &e->q);
	if (r != 0) {
		e->q = NULL;
		entry_fail(e, RELAY_STS_OUTCOME_NONE, relay_dns_strerror(r));
	}
}

static void
on_txt(void *arg, const struct relay_dns_answer *ans)
{
	struct sts_entry *e = arg;
	e->q = NULL;
	char why[RELAY_STS_WHY_MAX];
	if (ans->st.kind == RELAY_DNS_FAILED) {
		/* Bogus or failed: not "no policy". Without a cached policy
		 * the caller defers (fail closed). */
		relay_fmt(why, sizeof(why), "TXT lookup of %s: %s %s%s%s",
		    ans->qname, relay_dns_sec_name(ans->st.sec),
		    relay_dns_why_name(ans->st.why), ans->why_bogus ? ": " : "",
		    ans->why_bogus ? ans->why_bogus : "");
		entry_fail(e, RELAY_STS_OUTCOME_FAILED, why);
		return;
	}
	/* RFC 8461 3.1: records not starting with "v=STSv1" are discarded;
	 * not exactly one left, or that one invalid: no policy. A record's
	 * strings are concatenated (RFC 7208-style, 3.1). */
	size_t found = 0;
	bool invalid = false;
	char id[RELAY_STS_ID_MAX + 1] = "";
	if (ans->st.kind == RELAY_DNS_DATA && ans->ub != NULL) {
		for (size_t i = 0; ans->ub->data[i] != NULL; i++) {
			const uint8_t *p = (const uint8_t *)ans->ub->data[i];
			size_t len = (size_t)ans->ub->len[i];
			uint8_t txt[4096];
			size_t tl = 0;
			bool bad = false;
			for (size_t k = 0; k < len;) {
				size_t sl = p[k++];
				if (sl > len - k || sl > sizeof(txt) - tl) {
					bad = true;
					break;
				}
				memcpy(txt + tl, p + k, sl);
				tl += sl;
				k += sl;
			}
			if (bad)
				continue;
			char rid[RELAY_STS_ID_MAX + 1];
			int r = relay_sts_txt_parse(txt, tl, rid);
			if (r == RELAY_STS_ERR_VERSION)
				continue;
			found++;
			if (r != 0)
				invalid = true;
			else
				relay_copy(id, sizeof(id), rid);
		}
	}
	if (found != 1 || invalid) {
		relay_fmt(why, sizeof(why), "%s: %s", ans->qname,
		    found == 0      ? "no STSv1 TXT record"
		        : found > 1 ? "more than one STSv1 TXT record"
		                    : "malformed STSv1 TXT record");
		/* No record is what most domains have: not worth a warning
		 * (a cached policy that lost its record still is one). */
		entry_fail_at(e, RELAY_STS_OUTCOME_NONE, why,
		    found == 0 ? RELAY_LOG_DEBUG : RELAY_LOG_WARNING);
		return;
	}
	relay_copy(e->txt_id, sizeof(e->txt_id), id);
	uint64_t now = (uint64_t)relay_clock_wall_s(e->sts->clock);
	if (e->policy != NULL && now < e->st.expires_wall_s &&
	    strcmp(e->id, id) == 0) {
		/* Same id: the cached policy is current (3.1). */
		e->policy_stale = false;
		entry_done(e, RELAY_STS_OUTCOME_NONE, NULL);
		return;
	}
	step_addr(e, RELAY_DNS_TYPE_A);
}

static void
step_txt(struct sts_entry *e)
{
	char name[RELAY_DNS_HOST_MAX + 16];
	relay_fmt(name, sizeof(name), "_mta-sts.%s", e->domain);
	int r = relay_dns_lookup(*e->sts->dns, name, DNS_TYPE_TXT, on_txt, e,
	    &e->q);
	if (r != 0) {
		e->q = NULL;
		entry_fail(e, RELAY_STS_OUTCOME_FAILED, relay_dns_strerror(r));
	}
}

static void
sts_work_after(uv_work_t *req, int status)
{
	struct sts_work *w = req->data;
	struct sts_entry *e = w->e;
	struct relay_sts *sts = e->sts;
	sts->works--;
	e->work = NULL;
	if (sts->closing) {
		free(w);
		sts_maybe_free(sts);
		return;
	}
	if (status != 0 && !w->ok)
		relay_copy(w->err, sizeof(w->err), "fetch cancelled");
	switch (w->kind) {
	case STS_WORK_LOAD:
		e->loaded = true;
		if (w->ok) {
			entry_set_policy(e, &w->pol, w->got_id,
			    w->fetched_wall_s);
			log_refresh(e, RELAY_LOG_DEBUG, "loaded", NULL);
		} else if (w->err[0] != '\0') {
			relay_log_msg(RELAY_LOG_WARNING, "mta-sts", w->err);
		}
		free(w);
		step_txt(e);
		return;
	case STS_WORK_FETCH:
		if (w->ok) {
			entry_set_policy(e, &w->pol, w->got_id,
			    w->fetched_wall_s);
			log_refresh(e, RELAY_LOG_INFO, "fetched",
			    w->err[0] ? w->err : NULL);
			free(w);
			entry_done(e, RELAY_STS_OUTCOME_NONE, NULL);
			return;
		}
		{
			char why[RELAY_STS_WHY_MAX];
			relay_copy(why, sizeof(why), w->err);
			free(w);
			/* RFC 8461 3.3: a TXT record but no policy fetched
			 * and none cached: as though there were no MTA-STS. */
			entry_fail(e, RELAY_STS_OUTCOME_NONE, why);
		}
		return;
	}
}

static void
refresh_start(struct sts_entry *e)
{
	if (e->busy)
		return;
	e->busy = true;
	if (!e->loaded) {
		if (!work_start(e, STS_WORK_LOAD)) {
			e->loaded = true;
			step_txt(e);
		}
		return;
	}
	step_txt(e);
}

/* ------------------------------------------------------------- public */

int
relay_sts_new(const struct relay_sts_ctx *ctx, struct relay_sts **out)
{
	static bool curl_ready;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			relay_log_msg(RELAY_LOG_ERROR, "mta-sts",
			    "libcurl initialisation failed");
			return -1;
		}
		curl_ready = true;
	}
	struct relay_sts *sts = calloc(1, sizeof(*sts));
	if (sts == NULL)
		return -1;
	sts->loop = ctx->loop;
	sts->clock = ctx->clock;
	sts->dns = ctx->dns;
	relay_copy(sts->cache_dir, sizeof(sts->cache_dir), ctx->cache_dir);
	relay_copy(sts->ca_file, sizeof(sts->ca_file),
	    ctx->ca_file != NULL ? ctx->ca_file : "");
	sts->timeout_ms = ctx->timeout_ms ? ctx->timeout_ms : 10000;
	sts->check_interval_ms = ctx->check_interval_ms;
	atomic_init(&sts->aborting, false);
	sts->read_only = ctx->read_only;
	if (!sts->read_only && mkdir(sts->cache_dir, 0700) != 0 &&
	    errno != EEXIST) {
		char why[STS_PATH_MAX + 64];
		relay_fmt(why, sizeof(why), "cannot create %s: %s",
		    sts->cache_dir, strerror(errno));
		relay_log_msg(RELAY_LOG_ERROR, "mta-sts", why);
		free(sts);
		return -1;
	}
	*out = sts;
	return 0;
}

/* Drop the entries that no refresh, waiter or job uses and whose last
 * check is older than the check interval: the next use would check them
 * again anyway, and their policies are on disk. Keeps memory bounded by
 * the domains in recent use. */
static void
sts_evict_idle(struct relay_sts *sts)
{
	uint64_t now = relay_clock_mono_us(sts->clock);
	struct sts_entry **pp = &sts->entries;
	while (*pp != NULL) {
		struct sts_entry *e = *pp;
		bool idle = !e->busy && e->work == NULL && e->q == NULL &&
		    e->waiters == NULL && e->st.checked &&
		    now >= e->st.checked_mono_us &&
		    (now - e->st.checked_mono_us) / 1000u >=
		        sts->check_interval_ms;
		if (!idle) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		free(e->policy);
		free(e);
		sts->nentries--;
	}
}

int
relay_sts_get(struct relay_sts *sts, const char *domain,
    struct relay_sts_answer *now, relay_sts_cb *cb, void *arg,
    struct relay_sts_wait **wout)
{
	if (sts->closing)
		return -1;
	struct sts_entry *e;
	for (e = sts->entries; e != NULL; e = e->next)
		if (strcmp(e->domain, domain) == 0)
			break;
	if (e == NULL) {
		if (sts->nentries >= STS_ENTRIES_SOFT_MAX)
			sts_evict_idle(sts);
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			return -1;
		e->sts = sts;
		relay_copy(e->domain, sizeof(e->domain), domain);
		e->next = sts->entries;
		sts->entries = e;
		sts->nentries++;
	}
	enum relay_sts_action act =
	    relay_sts_decide(&e->st, (uint64_t)relay_clock_wall_s(sts->clock),
	        relay_clock_mono_us(sts->clock), sts->check_interval_ms);
	switch (act) {
	case RELAY_STS_USE_POLICY_REFRESH:
		refresh_start(e);
		fill_answer(e, now);
		return 1;
	case RELAY_STS_USE_POLICY:
	case RELAY_STS_USE_LAST:
		fill_answer(e, now);
		return 1;
	case RELAY_STS_WAIT:
		break;
	}
	/* Started before the waiter is added: a refresh that ends at once
	 * (the resolver refused the lookup) answers here, so the callback
	 * never runs inside this call. A busy entry already has its
	 * refresh, and the waiter joins it. */
	refresh_start(e);
	if (!e->busy) {
		fill_answer(e, now);
		return 1;
	}
	struct relay_sts_wait *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	w->e = e;
	w->cb = cb;
	w->arg = arg;
	w->next = e->waiters;
	if (w->next != NULL)
		w->next->pprev = &w->next;
	w->pprev = &e->waiters;
	e->waiters = w;
	*wout = w;
	return 0;
}

void
relay_sts_wait_cancel(struct relay_sts_wait *w)
{
	if (w == NULL)
		return;
	*w->pprev = w->next;
	if (w->next != NULL)
		w->next->pprev = w->pprev;
	free(w);
}

static void
sts_maybe_free(struct relay_sts *sts)
{
	if (!sts->closing || sts->works > 0 || sts->in_callbacks > 0)
		return;
	while (sts->entries != NULL) {
		struct sts_entry *e = sts->entries;
		sts->entries = e->next;
		free(e->policy);
		free(e);
	}
	void (*cb)(void *) = sts->closed_cb;
	void *arg = sts->closed_arg;
	free(sts);
	if (cb != NULL)
		cb(arg);
}

void
relay_sts_set_ca_file(struct relay_sts *sts, const char *ca_file)
{
	relay_copy(sts->ca_file, sizeof(sts->ca_file),
	    ca_file != NULL ? ca_file : "");
}

void
relay_sts_close(struct relay_sts *sts, void (*cb)(void *arg), void *arg)
{
	if (sts == NULL) {
		if (cb != NULL)
			cb(arg);
		return;
	}
	sts->closing = true;
	atomic_store(&sts->aborting, true);
	sts->closed_cb = cb;
	sts->closed_arg = arg;
	for (struct sts_entry *e = sts->entries; e != NULL; e = e->next) {
		if (e->q != NULL) {
			relay_dns_lookup_cancel(e->q);
			e->q = NULL;
		}
		/* Dropped without their callbacks (the caller's jobs are
		 * gone). */
		while (e->waiters != NULL) {
			struct relay_sts_wait *w = e->waiters;
			e->waiters = w->next;
			if (e->waiters != NULL)
				e->waiters->pprev = &e->waiters;
			free(w);
		}
	}
	sts_maybe_free(sts);
}
