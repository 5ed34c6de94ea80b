/*
 * relay_monitor: the routing monitor's table, its change detection and its
 * snapshot file (relay_monitor.h).
 *
 * Snapshot file (all integers little-endian):
 *   "DRMON001"                        magic, 8 octets
 *   u32 domains                       then per domain, least recently used
 *                                     first (loading in order rebuilds the
 *                                     LRU order):
 *     u64 domain hash, u8 flags, u8 hosts, then per host:
 *       u32 name hash, u16 preference, u8 flags, u8 addresses known,
 *       u64 address Bloom filter,
 *       u32 TLSA RRset digest        when flags has H_TLSA
 *       u64 last key prefix          when flags has H_KEY
 *       u64 first key prefix         when flags has H_KEY_OLDER (differs)
 *       u32 unmatched new key        when flags has H_UNMATCHED
 *   u32 changes                       then per change, oldest first:
 *     u64 time, u8 kind, then four strings (u8 length, bytes): domain,
 *     host, old, new
 *   u64 FNV-1a of every octet before it
 * A host takes 16 to 40 octets, a domain 10 plus its hosts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "relay_json.h"
#include "relay_log.h"
#include "relay_monitor.h"
#include "relay_text.h"

#define MAGIC "DRMON001"
#define MAGIC_LEN 8
/* A file larger than this is not ours (100 bytes x 10 million domains). */
#define FILE_MAX (1024ull * 1024 * 1024)

/* Domain flags. */
#define D_MX_SECURE 0x01u
#define D_IMPLICIT 0x02u
/* Host flags. */
#define H_ADDR_SECURE 0x01u /* the last usable address answer was secure */
#define H_TLSA 0x02u        /* a secure TLSA RRset was seen: tlsa_h */
#define H_KEY 0x04u         /* a key was seen: key_last */
#define H_KEY_OLDER 0x08u   /* key_first differs from key_last */
#define H_STARTTLS 0x10u    /* the last EHLO offered STARTTLS */
#define H_MATCHED 0x20u     /* a DANE handshake matched at least once */
#define H_EHLO 0x40u        /* an EHLO reply was seen */
#define H_UNMATCHED 0x80u   /* key_bad: a new key failed DANE (logged) */

/* Bloom filter bits per address. */
#define BLOOM_K 3
/* Beyond this many bits set the filter says "known" too often: it starts
 * over with the current addresses. */
#define BLOOM_FULL 40

struct mon_host {
	uint32_t name_h;
	uint16_t pref;
	uint8_t flags;
	uint8_t naddrs_known;
	uint64_t bloom;
	uint32_t tlsa_h;
	uint64_t key_first, key_last;
	/* The first 4 octets of a new key that matched no TLSA record: it
	 * does not become key_last (which stays the key that worked), and
	 * it is logged once. */
	uint32_t key_bad;
};

struct mon_dom {
	uint64_t h;
	struct mon_dom *hnext;
	struct mon_dom *lprev, *lnext; /* LRU: head most recent */
	uint8_t flags;
	uint8_t nhosts;
	struct mon_host *hosts;
};

struct mon_table {
	struct mon_dom **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	struct mon_dom *head, *tail;
	struct relay_monitor_change *recent; /* ring, RELAY_MONITOR_RECENT */
	size_t recent_next, recent_n;
};

struct relay_monitor {
	struct relay_monitor_ctx ctx;
	char *path;
	struct mon_table t;
	bool ready;
	bool dirty;
	bool closing;
	uv_timer_t timer;
	bool timer_open;
	/* Load in flight. */
	uv_work_t load_req;
	bool loading;
	struct mon_table loaded;
	int load_err;
	/* Write in flight. */
	uv_work_t save_req;
	bool saving;
	uint8_t *save_buf;
	size_t save_len;
	int save_err;
	void (*done)(void *arg);
	void *done_arg;
};

/* ------------------------------------------------------------- names */

static const struct {
	const char *name;
	const char *severity;
} kinds[RELAY_MONITOR_KIND_COUNT] = {
	[RELAY_MONITOR_MX_HOST_ADDED] = { "mx-host-added", "medium" },
	[RELAY_MONITOR_MX_HOST_REMOVED] = { "mx-host-removed", "low" },
	[RELAY_MONITOR_ADDRESS_NEW] = { "address-new", "medium" },
	[RELAY_MONITOR_DNSSEC_DOWNGRADE] = { "dnssec-downgrade", "high" },
	[RELAY_MONITOR_TLSA_REMOVED] = { "tlsa-removed", "high" },
	[RELAY_MONITOR_TLSA_CHANGED] = { "tlsa-changed", "medium" },
	[RELAY_MONITOR_KEY_NEW_UNMATCHED] = { "key-new-unmatched", "high" },
	[RELAY_MONITOR_STARTTLS_DROPPED] = { "starttls-dropped", "high" },
};

const char *
relay_monitor_kind_name(enum relay_monitor_kind k)
{
	return (unsigned)k < RELAY_MONITOR_KIND_COUNT ? kinds[k].name
	                                              : "unknown";
}

const char *
relay_monitor_kind_severity(enum relay_monitor_kind k)
{
	return (unsigned)k < RELAY_MONITOR_KIND_COUNT ? kinds[k].severity
	                                              : "low";
}

char *
relay_monitor_kinds_format(unsigned mask, char *buf, size_t size)
{
	size_t off = 0;
	if (size == 0)
		return buf;
	buf[0] = '\0';
	for (unsigned k = 0; k < RELAY_MONITOR_KIND_COUNT; k++) {
		if (!(mask & (1u << k)))
			continue;
		int w = snprintf(buf + off, size - off, "%s%s", off ? "," : "",
		    kinds[k].name);
		if (w < 0 || (size_t)w >= size - off)
			break;
		off += (size_t)w;
	}
	return buf;
}

const char *
relay_monitor_strerror(int err)
{
	switch (err) {
	case RELAY_MONITOR_OK:
		return "ok";
	case RELAY_MONITOR_ERR_NOMEM:
		return "out of memory";
	case RELAY_MONITOR_ERR_IO:
		return "I/O error";
	case RELAY_MONITOR_ERR_FORMAT:
		return "file does not parse";
	case RELAY_MONITOR_ERR_LOOP:
		return "event loop error";
	default:
		return "unknown error";
	}
}

/* ------------------------------------------------------------ hashing */

static uint64_t
fnv64(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

/* splitmix64's finaliser: spreads FNV's weak low bits. */
static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t
hash_name(const char *s)
{
	return mix64(fnv64(FNV_INIT, s, strlen(s)));
}

static uint64_t
hash_addr(const struct relay_monitor_addr *a)
{
	uint8_t fam = a->family == AF_INET6 ? 6 : 4;
	uint64_t h = fnv64(FNV_INIT, &fam, 1);
	return mix64(fnv64(h, a->bytes, fam == 6 ? 16 : 4));
}

static uint64_t
bloom_bits(uint64_t h)
{
	uint64_t bits = 0;
	for (int i = 0; i < BLOOM_K; i++)
		bits |= 1ull << ((h >> (i * 6)) & 63);
	return bits;
}

/* The digest of a TLSA RRset: order does not matter (an RRset is a set,
 * RFC 2181 5), so the per-record hashes are summed. */
static uint32_t
tlsa_digest(const struct tlsa_record *recs, size_t n)
{
	uint64_t sum = n;
	for (size_t i = 0; i < n; i++) {
		uint8_t head[3] = { recs[i].usage, recs[i].selector,
			recs[i].mtype };
		uint64_t h = fnv64(FNV_INIT, head, 3);
		if (recs[i].data_len > 0)
			h = fnv64(h, recs[i].data, recs[i].data_len);
		sum += mix64(h);
	}
	return (uint32_t)(mix64(sum) >> 32);
}

/* -------------------------------------------------------------- table */

static int
table_init(struct mon_table *t, size_t max_domains)
{
	memset(t, 0, sizeof(*t));
	size_t nb = 64;
	while (nb < max_domains && nb < ((size_t)1 << 26))
		nb <<= 1;
	t->buckets = calloc(nb, sizeof(struct mon_dom *));
	t->recent = calloc(RELAY_MONITOR_RECENT, sizeof(*t->recent));
	if (t->buckets == NULL || t->recent == NULL) {
		free(t->buckets);
		free(t->recent);
		memset(t, 0, sizeof(*t));
		return RELAY_MONITOR_ERR_NOMEM;
	}
	t->nbuckets = nb;
	return 0;
}

static void
table_free(struct mon_table *t)
{
	struct mon_dom *d = t->head;
	while (d != NULL) {
		struct mon_dom *n = d->lnext;
		free(d->hosts);
		free(d);
		d = n;
	}
	free(t->buckets);
	free(t->recent);
	memset(t, 0, sizeof(*t));
}

static struct mon_dom *
table_find(const struct mon_table *t, uint64_t h)
{
	for (struct mon_dom *d = t->buckets[h & (t->nbuckets - 1)]; d != NULL;
	     d = d->hnext)
		if (d->h == h)
			return d;
	return NULL;
}

static void
lru_unlink(struct mon_table *t, struct mon_dom *d)
{
	if (d->lprev != NULL)
		d->lprev->lnext = d->lnext;
	else
		t->head = d->lnext;
	if (d->lnext != NULL)
		d->lnext->lprev = d->lprev;
	else
		t->tail = d->lprev;
	d->lprev = d->lnext = NULL;
}

static void
lru_push_head(struct mon_table *t, struct mon_dom *d)
{
	d->lprev = NULL;
	d->lnext = t->head;
	if (t->head != NULL)
		t->head->lprev = d;
	t->head = d;
	if (t->tail == NULL)
		t->tail = d;
}

static void
table_remove(struct mon_table *t, struct mon_dom *d)
{
	struct mon_dom **pp = &t->buckets[d->h & (t->nbuckets - 1)];
	while (*pp != d)
		pp = &(*pp)->hnext;
	*pp = d->hnext;
	lru_unlink(t, d);
	t->count--;
	free(d->hosts);
	free(d);
}

/* A new, empty domain at the LRU head; the least recently used go beyond
 * max. NULL when out of memory. */
static struct mon_dom *
table_add(struct mon_table *t, uint64_t h, size_t max)
{
	/* table_remove() unlinks the tail (tail moves to the node before it)
	 * before freeing it. */
	while (t->count >= max && t->tail != NULL)
		/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc): see above */
		table_remove(t, t->tail);
	struct mon_dom *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->h = h;
	size_t b = h & (t->nbuckets - 1);
	d->hnext = t->buckets[b];
	t->buckets[b] = d;
	lru_push_head(t, d);
	t->count++;
	return d;
}

static void
recent_push(struct mon_table *t, const struct relay_monitor_change *c)
{
	t->recent[t->recent_next] = *c;
	t->recent_next = (t->recent_next + 1) % RELAY_MONITOR_RECENT;
	if (t->recent_n < RELAY_MONITOR_RECENT)
		t->recent_n++;
}

/* --------------------------------------------------------- serialising */

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static void
w_bytes(struct wbuf *w, const void *p, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *np = realloc(w->p, cap);
		if (np == NULL) {
			w->oom = true;
			return;
		}
		w->p = np;
		w->cap = cap;
	}
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

static void
w_uint(struct wbuf *w, uint64_t v, size_t octets)
{
	uint8_t b[8];
	for (size_t i = 0; i < octets; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	w_bytes(w, b, octets);
}

static void
w_str(struct wbuf *w, const char *s)
{
	size_t n = strlen(s);
	if (n > 255)
		n = 255;
	w_uint(w, n, 1);
	w_bytes(w, s, n);
}

static size_t
host_size(const struct mon_host *hs)
{
	return 16 + ((hs->flags & H_TLSA) ? 4 : 0) +
	    ((hs->flags & H_KEY) ? 8 : 0) +
	    ((hs->flags & H_KEY_OLDER) ? 8 : 0) +
	    ((hs->flags & H_UNMATCHED) ? 4 : 0);
}

static void
serialise(const struct mon_table *t, struct wbuf *w)
{
	w_bytes(w, MAGIC, MAGIC_LEN);
	w_uint(w, t->count, 4);
	for (const struct mon_dom *d = t->tail; d != NULL; d = d->lprev) {
		w_uint(w, d->h, 8);
		w_uint(w, d->flags, 1);
		w_uint(w, d->nhosts, 1);
		for (size_t i = 0; i < d->nhosts; i++) {
			const struct mon_host *hs = &d->hosts[i];
			w_uint(w, hs->name_h, 4);
			w_uint(w, hs->pref, 2);
			w_uint(w, hs->flags, 1);
			w_uint(w, hs->naddrs_known, 1);
			w_uint(w, hs->bloom, 8);
			if (hs->flags & H_TLSA)
				w_uint(w, hs->tlsa_h, 4);
			if (hs->flags & H_KEY)
				w_uint(w, hs->key_last, 8);
			if (hs->flags & H_KEY_OLDER)
				w_uint(w, hs->key_first, 8);
			if (hs->flags & H_UNMATCHED)
				w_uint(w, hs->key_bad, 4);
		}
	}
	w_uint(w, t->recent_n, 4);
	for (size_t i = 0; i < t->recent_n; i++) {
		size_t at =
		    (t->recent_next + RELAY_MONITOR_RECENT - t->recent_n + i) %
		    RELAY_MONITOR_RECENT;
		const struct relay_monitor_change *c = &t->recent[at];
		w_uint(w, c->time_s, 8);
		w_uint(w, (uint64_t)c->kind, 1);
		w_str(w, c->domain);
		w_str(w, c->host);
		w_str(w, c->old_);
		w_str(w, c->new_);
	}
	uint64_t sum = fnv64(FNV_INIT, w->p, w->oom ? 0 : w->len);
	w_uint(w, sum, 8);
}

struct rbuf {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static uint64_t
r_uint(struct rbuf *r, size_t octets)
{
	if (r->bad || r->len - r->off < octets) {
		r->bad = true;
		return 0;
	}
	uint64_t v = 0;
	for (size_t i = 0; i < octets; i++)
		v |= (uint64_t)r->p[r->off + i] << (8 * i);
	r->off += octets;
	return v;
}

static void
r_str(struct rbuf *r, char *out, size_t size)
{
	size_t n = (size_t)r_uint(r, 1);
	out[0] = '\0';
	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return;
	}
	size_t c = n < size - 1 ? n : size - 1;
	memcpy(out, r->p + r->off, c);
	out[c] = '\0';
	r->off += n;
}

/*
 * Parses a snapshot into t (initialised, empty). With domains false the
 * domain records are checked and skipped (the CLI wants the changes only).
 */
static int
parse(const uint8_t *p, size_t len, struct mon_table *t, size_t max,
    bool domains)
{
	if (len < MAGIC_LEN + 16 || memcmp(p, MAGIC, MAGIC_LEN) != 0)
		return RELAY_MONITOR_ERR_FORMAT;
	struct rbuf sr = { p + len - 8, 8, 0, false };
	if (r_uint(&sr, 8) != fnv64(FNV_INIT, p, len - 8))
		return RELAY_MONITOR_ERR_FORMAT;
	struct rbuf r = { p, len - 8, MAGIC_LEN, false };
	uint64_t nd = r_uint(&r, 4);
	for (uint64_t i = 0; i < nd && !r.bad; i++) {
		uint64_t h = r_uint(&r, 8);
		uint8_t fl = (uint8_t)r_uint(&r, 1);
		uint8_t nh = (uint8_t)r_uint(&r, 1);
		if (nh > RELAY_MONITOR_HOSTS_MAX) {
			r.bad = true;
			break;
		}
		struct mon_host hosts[RELAY_MONITOR_HOSTS_MAX];
		memset(hosts, 0, sizeof(hosts));
		for (size_t k = 0; k < nh; k++) {
			struct mon_host *hs = &hosts[k];
			hs->name_h = (uint32_t)r_uint(&r, 4);
			hs->pref = (uint16_t)r_uint(&r, 2);
			hs->flags = (uint8_t)r_uint(&r, 1);
			hs->naddrs_known = (uint8_t)r_uint(&r, 1);
			hs->bloom = r_uint(&r, 8);
			if (hs->flags & H_TLSA)
				hs->tlsa_h = (uint32_t)r_uint(&r, 4);
			if (hs->flags & H_KEY)
				hs->key_first = hs->key_last = r_uint(&r, 8);
			if (hs->flags & H_KEY_OLDER)
				hs->key_first = r_uint(&r, 8);
			if (hs->flags & H_UNMATCHED)
				hs->key_bad = (uint32_t)r_uint(&r, 4);
		}
		if (r.bad || !domains)
			continue;
		struct mon_dom *d = table_find(t, h);
		if (d != NULL) {
			r.bad = true; /* the same domain twice */
			break;
		}
		d = table_add(t, h, max);
		if (d == NULL)
			return RELAY_MONITOR_ERR_NOMEM;
		d->flags = fl;
		if (nh > 0) {
			d->hosts = malloc(nh * sizeof(*d->hosts));
			if (d->hosts == NULL)
				return RELAY_MONITOR_ERR_NOMEM;
			memcpy(d->hosts, hosts, nh * sizeof(*d->hosts));
		}
		d->nhosts = nh;
	}
	uint64_t nc = r_uint(&r, 4);
	for (uint64_t i = 0; i < nc && !r.bad; i++) {
		struct relay_monitor_change c;
		memset(&c, 0, sizeof(c));
		c.time_s = r_uint(&r, 8);
		uint64_t k = r_uint(&r, 1);
		if (k >= RELAY_MONITOR_KIND_COUNT)
			r.bad = true;
		c.kind = (enum relay_monitor_kind)k;
		r_str(&r, c.domain, sizeof(c.domain));
		r_str(&r, c.host, sizeof(c.host));
		r_str(&r, c.old_, sizeof(c.old_));
		r_str(&r, c.new_, sizeof(c.new_));
		if (!r.bad)
			recent_push(t, &c);
	}
	if (r.bad || r.off != r.len)
		return RELAY_MONITOR_ERR_FORMAT;
	return 0;
}

/* Reads a whole file (blocking). ENOENT: *p NULL, *len 0, returns 0. */
static int
read_file(const char *path, uint8_t **p, size_t *len)
{
	*p = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : RELAY_MONITOR_ERR_IO;
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size < 0 ||
	    (uint64_t)st.st_size > FILE_MAX) {
		close(fd);
		return RELAY_MONITOR_ERR_IO;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL) {
		close(fd);
		return RELAY_MONITOR_ERR_NOMEM;
	}
	size_t off = 0;
	while (off < n) {
		ssize_t r = read(fd, buf + off, n - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			close(fd);
			return RELAY_MONITOR_ERR_IO;
		}
		off += (size_t)r;
	}
	close(fd);
	*p = buf;
	*len = n;
	return 0;
}

/* Writes p to path through path.tmp: write, fsync, rename, fsync of the
 * directory (blocking: the thread pool, or tests). */
static int
write_file(const char *path, const uint8_t *p, size_t len)
{
	char tmp[4096], dir[4096];
	relay_fmt(tmp, sizeof(tmp), "%s.tmp", path);
	relay_copy(dir, sizeof(dir), path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		relay_copy(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return RELAY_MONITOR_ERR_IO;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			unlink(tmp);
			return RELAY_MONITOR_ERR_IO;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		close(fd);
		unlink(tmp);
		return RELAY_MONITOR_ERR_IO;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return RELAY_MONITOR_ERR_IO;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		int r = fsync(dfd);
		close(dfd);
		if (r != 0)
			return RELAY_MONITOR_ERR_IO;
	}
	return 0;
}

/* ------------------------------------------------------- load and save */

static void
log_err(const char *event, const char *status, const char *path, int err)
{
	struct relay_log_line l;
	if (!relay_log_begin(&l, RELAY_LOG_WARNING, event))
		return;
	relay_log_str(&l, "status", status);
	relay_log_str(&l, "file", path);
	relay_log_str(&l, "why", relay_monitor_strerror(err));
	relay_log_end(&l);
}

static void
load_work(uv_work_t *req)
{
	struct relay_monitor *m = req->data;
	uint8_t *p;
	size_t len;
	m->load_err = read_file(m->path, &p, &len);
	if (m->load_err != 0 || p == NULL)
		return;
	m->load_err = parse(p, len, &m->loaded, m->ctx.max_domains, true);
	free(p);
	if (m->load_err == RELAY_MONITOR_ERR_FORMAT) {
		/* Keep the bad file for a human, start empty. */
		char bad[4096];
		relay_fmt(bad, sizeof(bad), "%s.bad", m->path);
		if (rename(m->path, bad) != 0)
			m->load_err = RELAY_MONITOR_ERR_IO;
	}
}

static void maybe_finish_close(struct relay_monitor *m);
static void on_timer_closed(uv_handle_t *h);
static void start_save(struct relay_monitor *m);

static void
load_done(uv_work_t *req, int status)
{
	struct relay_monitor *m = req->data;
	m->loading = false;
	if (status != 0 || m->load_err != 0) {
		log_err("routing-monitor-load", "failed", m->path,
		    status != 0 ? RELAY_MONITOR_ERR_LOOP : m->load_err);
		struct mon_table empty;
		if (table_init(&empty, m->ctx.max_domains) == 0) {
			table_free(&m->loaded);
			m->loaded = empty;
		}
	}
	table_free(&m->t);
	m->t = m->loaded;
	memset(&m->loaded, 0, sizeof(m->loaded));
	m->ready = m->t.buckets != NULL;
	struct relay_log_line l;
	if (relay_log_begin(&l, RELAY_LOG_INFO, "routing-monitor-load")) {
		relay_log_str(&l, "status", m->ready ? "ok" : "failed");
		relay_log_u64(&l, "domains", m->t.count);
		relay_log_end(&l);
	}
	if (m->closing)
		maybe_finish_close(m);
}

static void
save_work(uv_work_t *req)
{
	struct relay_monitor *m = req->data;
	m->save_err = write_file(m->path, m->save_buf, m->save_len);
}

static void
save_done(uv_work_t *req, int status)
{
	struct relay_monitor *m = req->data;
	m->saving = false;
	free(m->save_buf);
	m->save_buf = NULL;
	if (status != 0 || m->save_err != 0) {
		log_err("routing-monitor-save", "failed", m->path,
		    status != 0 ? RELAY_MONITOR_ERR_LOOP : m->save_err);
		/* Try again at the next tick; at close, once is enough (the
		 * history is only a report's memory, not mail). */
		m->dirty = !m->closing;
	}
	if (m->closing)
		maybe_finish_close(m);
}

static void
start_save(struct relay_monitor *m)
{
	if (m->saving || !m->dirty || !m->ready || m->path == NULL)
		return;
	struct wbuf w = { NULL, 0, 0, false };
	serialise(&m->t, &w);
	if (w.oom) {
		free(w.p);
		log_err("routing-monitor-save", "failed", m->path,
		    RELAY_MONITOR_ERR_NOMEM);
		return;
	}
	m->save_buf = w.p;
	m->save_len = w.len;
	m->save_req.data = m;
	if (uv_queue_work(m->ctx.loop, &m->save_req, save_work, save_done) !=
	    0) {
		free(m->save_buf);
		m->save_buf = NULL;
		log_err("routing-monitor-save", "failed", m->path,
		    RELAY_MONITOR_ERR_LOOP);
		return;
	}
	m->saving = true;
	m->dirty = false;
}

static void
on_timer(uv_timer_t *t)
{
	start_save(t->data);
}

int
relay_monitor_open(const struct relay_monitor_ctx *ctx,
    struct relay_monitor **out)
{
	struct relay_monitor *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return RELAY_MONITOR_ERR_NOMEM;
	m->ctx = *ctx;
	if (m->ctx.max_domains == 0)
		m->ctx.max_domains = 1;
	if (m->ctx.snapshot_ms == 0)
		m->ctx.snapshot_ms = RELAY_MONITOR_SNAPSHOT_MS;
	m->ctx.path = NULL;
	if (ctx->path != NULL && ctx->path[0] != '\0') {
		m->path = strdup(ctx->path);
		if (m->path == NULL) {
			free(m);
			return RELAY_MONITOR_ERR_NOMEM;
		}
	}
	if (table_init(&m->t, m->ctx.max_domains) != 0) {
		free(m->path);
		free(m);
		return RELAY_MONITOR_ERR_NOMEM;
	}
	if (m->path == NULL) {
		m->ready = true;
		*out = m;
		return 0;
	}
	if (table_init(&m->loaded, m->ctx.max_domains) != 0 ||
	    uv_timer_init(ctx->loop, &m->timer) != 0) {
		table_free(&m->loaded);
		table_free(&m->t);
		free(m->path);
		free(m);
		return RELAY_MONITOR_ERR_NOMEM;
	}
	m->timer.data = m;
	m->timer_open = true;
	m->load_req.data = m;
	if (uv_timer_start(&m->timer, on_timer, m->ctx.snapshot_ms,
	        m->ctx.snapshot_ms) != 0 ||
	    uv_queue_work(ctx->loop, &m->load_req, load_work, load_done) != 0) {
		/* Nothing in flight: the timer closes on a later loop turn
		 * and frees m then (no done callback). */
		m->closing = true;
		m->timer_open = false;
		uv_close((uv_handle_t *)&m->timer, on_timer_closed);
		return RELAY_MONITOR_ERR_LOOP;
	}
	m->loading = true;
	uv_unref((uv_handle_t *)&m->timer);
	*out = m;
	return 0;
}

bool
relay_monitor_ready(const struct relay_monitor *m)
{
	return m != NULL && m->ready;
}

size_t
relay_monitor_count(const struct relay_monitor *m)
{
	return m != NULL ? m->t.count : 0;
}

static void
free_monitor(struct relay_monitor *m)
{
	void (*done)(void *) = m->done;
	void *arg = m->done_arg;
	table_free(&m->t);
	table_free(&m->loaded);
	free(m->save_buf);
	free(m->path);
	free(m);
	if (done != NULL)
		done(arg);
}

static void
on_timer_closed(uv_handle_t *h)
{
	free_monitor(h->data);
}

static void
on_idle_close(uv_handle_t *h)
{
	free_monitor(h->data);
}

static void
maybe_finish_close(struct relay_monitor *m)
{
	if (m->loading)
		return;
	if (m->dirty && !m->saving && m->ready)
		start_save(m);
	if (m->saving)
		return;
	if (m->timer_open) {
		m->timer_open = false;
		uv_close((uv_handle_t *)&m->timer, on_timer_closed);
		return;
	}
}

void
relay_monitor_close(struct relay_monitor *m, void (*done)(void *arg), void *arg)
{
	if (m == NULL || m->closing)
		return;
	m->closing = true;
	m->done = done;
	m->done_arg = arg;
	if (m->timer_open) {
		uv_timer_stop(&m->timer);
		maybe_finish_close(m);
		return;
	}
	/* Memory only: no handle of ours to close; run done from the loop
	 * anyway, through a short-lived idle... a timer is simplest. */
	if (m->ctx.loop != NULL && uv_timer_init(m->ctx.loop, &m->timer) == 0) {
		m->timer.data = m;
		uv_close((uv_handle_t *)&m->timer, on_idle_close);
		return;
	}
	free_monitor(m);
}

int
relay_monitor_save_sync(struct relay_monitor *m)
{
	if (m->path == NULL || !m->ready)
		return 0;
	struct wbuf w = { NULL, 0, 0, false };
	serialise(&m->t, &w);
	if (w.oom) {
		free(w.p);
		return RELAY_MONITOR_ERR_NOMEM;
	}
	int r = write_file(m->path, w.p, w.len);
	free(w.p);
	if (r == 0)
		m->dirty = false;
	return r;
}

size_t
relay_monitor_snapshot_size(const struct relay_monitor *m)
{
	size_t n = MAGIC_LEN + 4 + 4 + 8;
	for (const struct mon_dom *d = m->t.head; d != NULL; d = d->lnext) {
		n += 10;
		for (size_t i = 0; i < d->nhosts; i++)
			n += host_size(&d->hosts[i]);
	}
	for (size_t i = 0; i < m->t.recent_n; i++) {
		const struct relay_monitor_change *c = &m->t.recent[i];
		size_t s[4] = { strlen(c->domain), strlen(c->host),
			strlen(c->old_), strlen(c->new_) };
		n += 9;
		for (size_t k = 0; k < 4; k++)
			n += 1 + (s[k] > 255 ? 255 : s[k]);
	}
	return n;
}

/* --------------------------------------------------- change reporting */

struct obs_run {
	struct relay_monitor *m;
	const char *id;
	const char *domain;
	unsigned mask;
};

static void
report(struct obs_run *run, enum relay_monitor_kind k, const char *host,
    const char *old_, const char *new_)
{
	struct relay_monitor *m = run->m;
	run->mask |= 1u << k;
	struct relay_log_line l;
	if (relay_log_begin(&l, RELAY_LOG_WARNING, "routing-change")) {
		if (run->id != NULL)
			relay_log_str(&l, "id", run->id);
		relay_log_str(&l, "domain", run->domain);
		relay_log_str(&l, "kind", relay_monitor_kind_name(k));
		relay_log_str(&l, "severity", relay_monitor_kind_severity(k));
		if (host != NULL)
			relay_log_str(&l, "host", host);
		relay_log_str(&l, "old", old_);
		relay_log_str(&l, "new", new_);
		relay_log_end(&l);
	}
	struct relay_monitor_change c;
	memset(&c, 0, sizeof(c));
	c.time_s = m->ctx.clock != NULL ? relay_clock_wall_s(m->ctx.clock) : 0;
	c.kind = k;
	relay_copy(c.domain, sizeof(c.domain), run->domain);
	relay_copy(c.host, sizeof(c.host), host != NULL ? host : "");
	relay_copy(c.old_, sizeof(c.old_), old_);
	relay_copy(c.new_, sizeof(c.new_), new_);
	recent_push(&m->t, &c);
	if (m->ctx.on_change != NULL)
		m->ctx.on_change(m->ctx.arg, relay_monitor_kind_name(k));
}

static void
addr_text(const struct relay_monitor_addr *a, char *buf, size_t size)
{
	if (inet_ntop(a->family, a->bytes, buf, (socklen_t)size) == NULL)
		relay_copy(buf, size, "?");
}

static void
key_hex(uint64_t k, char *buf, size_t size)
{
	relay_fmt(buf, size, "%016llx", (unsigned long long)k);
}

/* "10 mx1.example,20 mx2.example" of the current answer. */
static void
host_set_text(const struct relay_monitor_dns_obs *o, char *buf, size_t size)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < o->nhosts; i++) {
		int w = snprintf(buf + off, size - off, "%s%u %s", i ? "," : "",
		    (unsigned)o->hosts[i].pref, o->hosts[i].name);
		if (w < 0 || (size_t)w >= size - off)
			break;
		off += (size_t)w;
	}
}

static void
tlsa_text(const struct tlsa_record *recs, size_t n, char *buf, size_t size)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + off, size - off, "%s%u %u %u ",
		    i ? "; " : "", recs[i].usage, recs[i].selector,
		    recs[i].mtype);
		if (w < 0 || (size_t)w >= size - off)
			return;
		off += (size_t)w;
		for (size_t b = 0;
		     b < recs[i].data_len && b < 8 && off + 3 < size;
		     b++, off += 2)
			snprintf(buf + off, 3, "%02x", recs[i].data[b]);
		if (recs[i].data_len > 8 && off + 3 < size) {
			memcpy(buf + off, "..", 3);
			off += 2;
		}
	}
}

static const struct mon_host *
find_host(const struct mon_dom *d, uint32_t name_h)
{
	for (size_t i = 0; i < d->nhosts; i++)
		if (d->hosts[i].name_h == name_h)
			return &d->hosts[i];
	return NULL;
}

static uint32_t
host_hash(const char *name)
{
	return (uint32_t)(hash_name(name) >> 32);
}

/* Adds the current addresses to the host's known set; returns the first
 * unknown one's index in unknown[] (count in *nunknown). */
static void
host_addrs(struct mon_host *hs, const struct relay_monitor_host_obs *ho,
    size_t *unknown, size_t *nunknown)
{
	*nunknown = 0;
	if (__builtin_popcountll(hs->bloom) > BLOOM_FULL) {
		hs->bloom = 0;
		hs->naddrs_known = 0;
	}
	for (size_t i = 0; i < ho->naddrs; i++) {
		uint64_t bits = bloom_bits(hash_addr(&ho->addrs[i]));
		if ((hs->bloom & bits) != bits) {
			unknown[(*nunknown)++] = i;
			hs->bloom |= bits;
			if (hs->naddrs_known < 255)
				hs->naddrs_known++;
		}
	}
}

/* The record of a host from the current answer, with its history prev
 * (NULL: first sight). Logs per-host changes when run is not NULL. */
static void
host_update(struct obs_run *run, struct mon_host *hs,
    const struct mon_host *prev, const struct relay_monitor_host_obs *ho,
    bool mx_downgraded)
{
	char o[128], n[256];
	if (prev != NULL)
		*hs = *prev;
	else
		memset(hs, 0, sizeof(*hs));
	hs->name_h = host_hash(ho->name);
	hs->pref = ho->pref;
	if (!ho->addr_usable)
		return; /* a failed lookup says nothing about the host */

	/* At most 64 addresses per host count (RELAY_DNS_MAX_ADDRS per
	 * family). */
	size_t unknown[64];
	size_t nunknown = 0;
	uint8_t known_before = hs->naddrs_known;
	struct relay_monitor_host_obs cut = *ho;
	if (cut.naddrs > 64)
		cut.naddrs = 64;
	host_addrs(hs, &cut, unknown, &nunknown);
	if (run != NULL && prev != NULL && known_before > 0) {
		for (size_t i = 0; i < nunknown; i++) {
			relay_fmt(o, sizeof(o), "%u known",
			    (unsigned)known_before);
			addr_text(&ho->addrs[unknown[i]], n, sizeof(n));
			report(run, RELAY_MONITOR_ADDRESS_NEW, ho->name, o, n);
		}
	}
	/* RFC 7672 2.2: an insecure address answer turns DANE off for this
	 * host; when it was secure before, that is a downgrade (unless the
	 * MX answer itself went insecure: one line says it for the domain). */
	if (run != NULL && prev != NULL && (prev->flags & H_ADDR_SECURE) &&
	    !ho->addr_secure && !mx_downgraded)
		report(run, RELAY_MONITOR_DNSSEC_DOWNGRADE, ho->name,
		    "address secure", "address insecure");
	if (ho->addr_secure)
		hs->flags |= H_ADDR_SECURE;
	else
		hs->flags &= (uint8_t)~H_ADDR_SECURE;

	switch (ho->tlsa) {
	case RELAY_MONITOR_TLSA_NOT_LOOKED_UP:
		/* An insecure address answer means no TLSA lookup (RFC 7672
		 * 2.2): a TLSA RRset seen before is gone from the decision. */
		if (run != NULL && prev != NULL && (prev->flags & H_TLSA) &&
		    !ho->addr_secure) {
			relay_fmt(o, sizeof(o), "secure digest=%08x",
			    (unsigned)prev->tlsa_h);
			report(run, RELAY_MONITOR_TLSA_REMOVED, ho->name, o,
			    "not looked up (address insecure)");
			hs->flags &= (uint8_t)~H_TLSA;
		}
		break;
	case RELAY_MONITOR_TLSA_FAILED:
		break; /* bogus or failed: delivery defers; keep the history */
	case RELAY_MONITOR_TLSA_SECURE_DATA: {
		uint32_t dg = tlsa_digest(ho->recs, ho->nrecs);
		if (run != NULL && prev != NULL && (prev->flags & H_TLSA) &&
		    prev->tlsa_h != dg) {
			relay_fmt(o, sizeof(o), "digest=%08x",
			    (unsigned)prev->tlsa_h);
			char recs[200];
			tlsa_text(ho->recs, ho->nrecs, recs, sizeof(recs));
			relay_fmt(n, sizeof(n), "digest=%08x %s", (unsigned)dg,
			    recs);
			report(run, RELAY_MONITOR_TLSA_CHANGED, ho->name, o, n);
		}
		hs->flags |= H_TLSA;
		hs->tlsa_h = dg;
		break;
	}
	case RELAY_MONITOR_TLSA_SECURE_NODATA:
	case RELAY_MONITOR_TLSA_INSECURE:
		if (run != NULL && prev != NULL && (prev->flags & H_TLSA)) {
			relay_fmt(o, sizeof(o), "secure digest=%08x",
			    (unsigned)prev->tlsa_h);
			report(run, RELAY_MONITOR_TLSA_REMOVED, ho->name, o,
			    ho->tlsa == RELAY_MONITOR_TLSA_INSECURE
			        ? "insecure"
			        : "none (secure denial)");
		}
		hs->flags &= (uint8_t)~H_TLSA;
		hs->tlsa_h = 0;
		break;
	}
}

unsigned
relay_monitor_observe_dns(struct relay_monitor *m, const char *id,
    const struct relay_monitor_dns_obs *o)
{
	if (m == NULL || !m->ready || m->closing || o == NULL ||
	    o->domain == NULL)
		return 0;
	struct obs_run run = { m, id, o->domain, 0 };
	uint64_t h = hash_name(o->domain);
	struct mon_dom *d = table_find(&m->t, h);
	bool first = d == NULL;
	size_t nh = o->nhosts < RELAY_MONITOR_HOSTS_MAX
	    ? o->nhosts
	    : RELAY_MONITOR_HOSTS_MAX;
	struct mon_host *hosts = nh ? calloc(nh, sizeof(*hosts)) : NULL;
	if (nh > 0 && hosts == NULL)
		return 0;
	if (first) {
		d = table_add(&m->t, h, m->ctx.max_domains);
		if (d == NULL) {
			free(hosts);
			return 0;
		}
	} else {
		lru_unlink(&m->t, d);
		lru_push_head(&m->t, d);
	}
	struct obs_run *rp = first ? NULL : &run;

	bool mx_down = false;
	if (!first && (d->flags & D_MX_SECURE) && !o->mx_secure) {
		/* RFC 7672 2.2.1: an insecure MX RRset means no DANE for the
		 * domain at all: a DS removed or a chain stripped. */
		report(&run, RELAY_MONITOR_DNSSEC_DOWNGRADE, NULL, "MX secure",
		    "MX insecure");
		mx_down = true;
	}

	char o_[128], n_[256];
	host_set_text(o, n_, sizeof(n_));
	relay_fmt(o_, sizeof(o_), "%u host%s", (unsigned)d->nhosts,
	    d->nhosts == 1 ? "" : "s");
	size_t added = 0;
	for (size_t i = 0; i < nh; i++) {
		uint32_t hh = host_hash(o->hosts[i].name);
		const struct mon_host *prev = first ? NULL : find_host(d, hh);
		if (!first && prev == NULL) {
			report(&run, RELAY_MONITOR_MX_HOST_ADDED,
			    o->hosts[i].name, o_, n_);
			added++;
		}
		host_update(prev != NULL ? rp : NULL, &hosts[i], prev,
		    &o->hosts[i], mx_down);
	}
	if (!first) {
		size_t removed = 0;
		for (size_t i = 0; i < d->nhosts; i++) {
			bool still = false;
			for (size_t k = 0; k < nh && !still; k++)
				still = hosts[k].name_h == d->hosts[i].name_h;
			if (!still)
				removed++;
		}
		if (removed > 0) {
			char rm[128];
			relay_fmt(rm, sizeof(rm), "%s (%zu removed)", o_,
			    removed);
			report(&run, RELAY_MONITOR_MX_HOST_REMOVED, NULL, rm,
			    n_);
		}
	}
	free(d->hosts);
	d->hosts = hosts;
	d->nhosts = (uint8_t)nh;
	d->flags = (uint8_t)((o->mx_secure ? D_MX_SECURE : 0) |
	    (o->implicit_mx ? D_IMPLICIT : 0));
	m->dirty = true;
	return run.mask;
}

unsigned
relay_monitor_observe_tls(struct relay_monitor *m, const char *id,
    const struct relay_monitor_tls_obs *o, enum tlsa_hint *hint)
{
	if (hint != NULL)
		*hint = TLSA_HINT_NONE;
	if (m == NULL || !m->ready || m->closing || o == NULL ||
	    o->domain == NULL || o->host == NULL)
		return 0;
	struct mon_dom *d = table_find(&m->t, hash_name(o->domain));
	if (d == NULL)
		return 0;
	struct mon_host *hs = NULL;
	uint32_t hh = host_hash(o->host);
	for (size_t i = 0; i < d->nhosts; i++)
		if (d->hosts[i].name_h == hh)
			hs = &d->hosts[i];
	if (hs == NULL)
		return 0;
	struct obs_run run = { m, id, o->domain, 0 };
	uint64_t cur = o->have_key ? tlsa_hint_key_prefix(o->key_sha256) : 0;
	bool have_hist = (hs->flags & H_KEY) != 0;

	if (o->dane && !o->matched && hint != NULL) {
		struct tlsa_hint_facts f = {
			.recs = o->recs,
			.n_recs = o->nrecs,
			.have_key = o->have_key,
			.chain_len = o->chain_len,
			.have_history = have_hist,
			.first_key = hs->key_first,
			.last_key = hs->key_last,
			.ever_matched = (hs->flags & H_MATCHED) != 0,
		};
		if (o->have_key)
			memcpy(f.key_sha256, o->key_sha256, 32);
		*hint = tlsa_hint_diagnose(&f);
	}

	if (o->ehlo_seen) {
		/* RFC 7672 2.2: with DANE, a missing STARTTLS defers; without
		 * it, a stripped STARTTLS is the classic downgrade. */
		if ((hs->flags & H_EHLO) && (hs->flags & H_STARTTLS) &&
		    !o->starttls)
			report(&run, RELAY_MONITOR_STARTTLS_DROPPED, o->host,
			    "STARTTLS offered", "STARTTLS not offered");
		hs->flags |= H_EHLO;
		if (o->starttls)
			hs->flags |= H_STARTTLS;
		else
			hs->flags &= (uint8_t)~H_STARTTLS;
	}
	if (o->have_key && o->dane && !o->matched) {
		/* RFC 7672 3.1: this key authenticates nothing. It is not the
		 * host's "last key" (the one that worked stays, for the
		 * rollover hint); a key never seen before is logged once. */
		uint32_t bad = (uint32_t)(cur >> 32);
		bool known =
		    have_hist && (cur == hs->key_last || cur == hs->key_first);
		bool logged = (hs->flags & H_UNMATCHED) && hs->key_bad == bad;
		if (!known && !logged) {
			char old_[128], new_[80], a[24], b[24];
			if (have_hist) {
				key_hex(hs->key_first, a, sizeof(a));
				key_hex(hs->key_last, b, sizeof(b));
				relay_fmt(old_, sizeof(old_),
				    "first=%s.. last=%s..", a, b);
			} else {
				relay_copy(old_, sizeof(old_), "no key seen");
			}
			relay_copy(new_, sizeof(new_), "sha256:");
			size_t off = strlen(new_);
			for (size_t i = 0; i < 32 && off + 3 <= sizeof(new_);
			     i++, off += 2)
				snprintf(new_ + off, 3, "%02x",
				    o->key_sha256[i]);
			report(&run, RELAY_MONITOR_KEY_NEW_UNMATCHED, o->host,
			    old_, new_);
			hs->flags |= H_UNMATCHED;
			hs->key_bad = bad;
		}
	} else if (o->have_key) {
		if (!have_hist) {
			hs->key_first = hs->key_last = cur;
			hs->flags |= H_KEY;
		} else if (cur != hs->key_last) {
			hs->key_last = cur;
		}
		if (hs->key_first != hs->key_last)
			hs->flags |= H_KEY_OLDER;
		else
			hs->flags &= (uint8_t)~H_KEY_OLDER;
		if (o->dane && o->matched)
			hs->flags |= H_MATCHED;
		hs->flags &= (uint8_t)~H_UNMATCHED;
		hs->key_bad = 0;
	}
	m->dirty = true;
	return run.mask;
}

/* ------------------------------------------------------ recent changes */

size_t
relay_monitor_recent(const struct relay_monitor *m,
    struct relay_monitor_change *out, size_t max)
{
	size_t n = 0;
	if (m == NULL || m->t.recent == NULL)
		return 0;
	for (size_t i = 0; i < m->t.recent_n && n < max; i++) {
		size_t at = (m->t.recent_next + RELAY_MONITOR_RECENT - 1 - i) %
		    RELAY_MONITOR_RECENT;
		out[n++] = m->t.recent[at];
	}
	return n;
}

int
relay_monitor_read_recent(const char *path, struct relay_monitor_change *out,
    size_t max)
{
	uint8_t *p;
	size_t len;
	int r = read_file(path, &p, &len);
	if (r != 0)
		return r;
	if (p == NULL)
		return 0;
	struct mon_table t;
	r = table_init(&t, 1);
	if (r == 0)
		r = parse(p, len, &t, 1, false);
	free(p);
	if (r != 0) {
		table_free(&t);
		return r;
	}
	struct relay_monitor tmp;
	memset(&tmp, 0, sizeof(tmp));
	tmp.t = t;
	size_t n = relay_monitor_recent(&tmp, out, max);
	table_free(&t);
	return (int)n;
}

static void
put_clean(FILE *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
	}
}

int
relay_monitor_print_recent(FILE *out, const struct relay_monitor_change *c,
    size_t n)
{
	if (n == 0)
		return 0;
	fprintf(out, "\nRecent routing changes (newest first):\n");
	for (size_t i = 0; i < n; i++) {
		char when[32] = "";
		time_t t = (time_t)c[i].time_s;
		struct tm tm;
		if (gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(out, "  %s %-18s %-6s ", when,
		    relay_monitor_kind_name(c[i].kind),
		    relay_monitor_kind_severity(c[i].kind));
		put_clean(out, c[i].domain);
		if (c[i].host[0] != '\0') {
			fputs(" host=", out);
			put_clean(out, c[i].host);
		}
		fputs(" old=\"", out);
		put_clean(out, c[i].old_);
		fputs("\" new=\"", out);
		put_clean(out, c[i].new_);
		fputs("\"\n", out);
	}
	return ferror(out) ? -1 : 0;
}

void
relay_monitor_json_recent(struct relay_json *j,
    const struct relay_monitor_change *c, size_t n)
{
	relay_json_arr_begin(j);
	for (size_t i = 0; i < n; i++) {
		relay_json_obj_begin(j);
		relay_json_kv_u64(j, "time", c[i].time_s);
		relay_json_kv_str(j, "kind",
		    relay_monitor_kind_name(c[i].kind));
		relay_json_kv_str(j, "severity",
		    relay_monitor_kind_severity(c[i].kind));
		relay_json_kv_str(j, "domain", c[i].domain);
		relay_json_kv_str(j, "host", c[i].host);
		relay_json_kv_str(j, "old", c[i].old_);
		relay_json_kv_str(j, "new", c[i].new_);
		relay_json_obj_end(j);
	}
	relay_json_arr_end(j);
}
