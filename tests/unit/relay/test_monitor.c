/*
 * Unit tests for relay_monitor: change detection per kind (log line, mask,
 * counter hook), first sight without a line, hints from the key history,
 * LRU eviction, the snapshot's roundtrip through the thread pool, a
 * corrupt file, and the footprint: 100,000 synthetic domains must take
 * under 100 bytes each on disk (the figures are printed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "relay_clock.h"
#include "relay_json.h"
#include "relay_log.h"
#include "relay_monitor.h"

#define T0 1732288081000000u

/* ---- captured log lines and counter calls ---- */

static char logbuf[65536];
static size_t loglen;
static unsigned counted[RELAY_MONITOR_KIND_COUNT];

static void
sink(enum relay_log_level level, const char *line, size_t len, void *arg)
{
	(void)arg;
	if (strstr(line, "event=routing-change") != NULL)
		assert_int_equal(level, RELAY_LOG_WARNING);
	if (loglen + len + 2 < sizeof(logbuf)) {
		memcpy(logbuf + loglen, line, len);
		loglen += len;
		logbuf[loglen++] = '\n';
		logbuf[loglen] = '\0';
	}
}

static void
on_change(void *arg, const char *kind)
{
	(void)arg;
	for (unsigned k = 0; k < RELAY_MONITOR_KIND_COUNT; k++)
		if (strcmp(kind, relay_monitor_kind_name(k)) == 0)
			counted[k]++;
}

static void
log_clear(void)
{
	loglen = 0;
	logbuf[0] = '\0';
	memset(counted, 0, sizeof(counted));
}

static size_t
lines_with(const char *needle)
{
	size_t n = 0;
	if (getenv("MON_DEBUG") != NULL)
		fprintf(stderr, "--- log:\n%s", logbuf);
	for (const char *p = logbuf; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static struct relay_clock_manual mclock;

static int
setup(void **state)
{
	(void)state;
	relay_clock_manual_init(&mclock, 0, T0);
	relay_log_set_stderr(false);
	relay_log_set_clock(&mclock.clock);
	relay_log_set_sink(sink, NULL);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	relay_log_reset();
	return 0;
}

/* A memory-only monitor (no file, ready at once). */
static struct relay_monitor *
mon_new(size_t max)
{
	struct relay_monitor_ctx c = {
		.clock = &mclock.clock,
		.max_domains = max,
		.on_change = on_change,
	};
	struct relay_monitor *m = NULL;
	assert_int_equal(relay_monitor_open(&c, &m), 0);
	assert_true(relay_monitor_ready(m));
	return m;
}

static void
mon_free(struct relay_monitor *m)
{
	/* Memory only and no loop: freed at once, no callback. */
	relay_monitor_close(m, NULL, NULL);
}

/* ---- a small world of facts ---- */

struct host_spec {
	const char *name;
	uint16_t pref;
	bool secure;
	const char *addr; /* IPv4 text */
	enum relay_monitor_tlsa tlsa;
	uint8_t tlsa_byte; /* data of its one 3 1 1 record */
};

static struct tlsa_record recs_store[8];
static uint8_t recs_data[8][32];
static struct relay_monitor_addr addr_store[8];

static unsigned
observe(struct relay_monitor *m, const char *domain, bool mx_secure,
    const struct host_spec *hs, size_t n)
{
	struct relay_monitor_host_obs ho[8];
	memset(ho, 0, sizeof(ho));
	for (size_t i = 0; i < n; i++) {
		ho[i].name = hs[i].name;
		ho[i].pref = hs[i].pref;
		ho[i].addr_usable = true;
		ho[i].addr_secure = hs[i].secure;
		addr_store[i].family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, hs[i].addr,
		                     addr_store[i].bytes),
		    1);
		ho[i].addrs = &addr_store[i];
		ho[i].naddrs = 1;
		ho[i].tlsa = hs[i].tlsa;
		if (hs[i].tlsa == RELAY_MONITOR_TLSA_SECURE_DATA) {
			memset(recs_data[i], hs[i].tlsa_byte, 32);
			recs_store[i] =
			    (struct tlsa_record){ 3, 1, 1, recs_data[i], 32 };
			ho[i].recs = &recs_store[i];
			ho[i].nrecs = 1;
		}
	}
	struct relay_monitor_dns_obs o = {
		.domain = domain,
		.mx_secure = mx_secure,
		.hosts = ho,
		.nhosts = n,
	};
	return relay_monitor_observe_dns(m, "0001", &o);
}

#define K(kind) (1u << (RELAY_MONITOR_##kind))
#define SD RELAY_MONITOR_TLSA_SECURE_DATA

static const struct host_spec base_hosts[] = {
	{ "mx1.example.com", 10, true, "192.0.2.1", SD, 0xaa },
	{ "mx2.example.com", 20, true, "192.0.2.2", SD, 0xbb },
};

static void
test_first_sight_silent(void **state)
{
	(void)state;
	struct relay_monitor *m = mon_new(10);
	log_clear();
	assert_int_equal(observe(m, "example.com", true, base_hosts, 2), 0);
	assert_int_equal(observe(m, "example.com", true, base_hosts, 2), 0);
	assert_int_equal(lines_with("routing-change"), 0);
	assert_int_equal(relay_monitor_count(m), 1);
	mon_free(m);
}

static void
test_mx_host_added_removed(void **state)
{
	(void)state;
	struct relay_monitor *m = mon_new(10);
	observe(m, "example.com", true, base_hosts, 2);
	log_clear();
	struct host_spec h[2] = { base_hosts[0],
		{ "mx9.example.net", 30, true, "192.0.2.9", SD, 0xcc } };
	assert_int_equal(observe(m, "example.com", true, h, 2),
	    K(MX_HOST_ADDED) | K(MX_HOST_REMOVED));
	assert_int_equal(lines_with(
	                     "level=warning event=routing-change "
	                     "id=0001 domain=example.com "
	                     "kind=mx-host-added "
	                     "severity=medium host=mx9.example.net "
	                     "old=\"2 hosts\" "
	                     "new=\"10 mx1.example.com,30 mx9.example.net\""),
	    1);
	assert_int_equal(lines_with("kind=mx-host-removed severity=low "
	                            "old=\"2 hosts (1 removed)\""),
	    1);
	assert_int_equal(counted[RELAY_MONITOR_MX_HOST_ADDED], 1);
	assert_int_equal(counted[RELAY_MONITOR_MX_HOST_REMOVED], 1);
	/* Recorded: the same answer again is quiet. */
	log_clear();
	assert_int_equal(observe(m, "example.com", true, h, 2), 0);
	mon_free(m);
}

static void
test_address_new(void **state)
{
	(void)state;
	struct relay_monitor *m = mon_new(10);
	observe(m, "example.com", true, base_hosts, 2);
	log_clear();
	struct host_spec h[2] = { base_hosts[0], base_hosts[1] };
	h[1].addr = "198.51.100.7";
	assert_int_equal(observe(m, "example.com", true, h, 2), K(ADDRESS_NEW));
	assert_int_equal(lines_with("kind=address-new severity=medium "
	                            "host=mx2.example.com old=\"1 known\" "
	                            "new=198.51.100.7"),
	    1);
	/* Known now, and so is the old one: round robin is no change. */
	log_clear();
	assert_int_equal(observe(m, "example.com", true, h, 2), 0);
	assert_int_equal(observe(m, "example.com", true, base_hosts, 2), 0);
	mon_free(m);
}

static void
test_dnssec_downgrade(void **state)
{
	(void)state;
	struct relay_monitor *m = mon_new(10);
	observe(m, "example.com", true, base_hosts, 2);
	log_clear();
	/* The DS is gone: MX and addresses insecure, no TLSA lookups. */
	struct host_spec h[2] = { base_hosts[0], base_hosts[1] };
	for (int i = 0; i < 2; i++) {
		h[i].secure = false;
		h[i].tlsa = RELAY_MONITOR_TLSA_NOT_LOOKED_UP;
	}
	unsigned got = observe(m, "example.com", false, h, 2);
	assert_int_equal(got, K(DNSSEC_DOWNGRADE) | K(TLSA_REMOVED));
	/* One line for the domain, not one per host. */
	assert_int_equal(lines_with("kind=dnssec-downgrade severity=high "
	                            "old=\"MX secure\" new=\"MX insecure\""),
	    1);
	assert_int_equal(lines_with("kind=dnssec-downgrade"), 1);
	assert_int_equal(lines_with("kind=tlsa-removed severity=high"), 2);
	/* Insecure stays insecure: no more lines. */
	log_clear();
	assert_int_equal(observe(m, "example.com", false, h, 2), 0);
	/* Only a host's address answer goes insecure (its zone lost the
	 * DS): a downgrade for that host. */
	struct relay_monitor *m2 = mon_new(10);
	observe(m2, "example.org", true, base_hosts, 2);
	log_clear();
	struct host_spec h2[2] = { base_hosts[0], base_hosts[1] };
	h2[0].secure = false;
	h2[0].tlsa = RELAY_MONITOR_TLSA_NOT_LOOKED_UP;
	assert_int_equal(observe(m2, "example.org", true, h2, 2),
	    K(DNSSEC_DOWNGRADE) | K(TLSA_REMOVED));
	assert_int_equal(lines_with("kind=dnssec-downgrade severity=high "
	                            "host=mx1.example.com "
	                            "old=\"address secure\""),
	    1);
	mon_free(m2);
	mon_free(m);
}

static void
test_tlsa_changed_removed(void **state)
{
	(void)state;
	struct relay_monitor *m = mon_new(10);
	observe(m, "example.com", true, base_hosts, 2);
	log_clear();
	struct host_spec h[2] = { base_hosts[0], base_hosts[1] };
	h[0].tlsa_byte = 0xab;
	assert_int_equal(observe(m, "example.com", true, h, 2),
	    K(TLSA_CHANGED));
	assert_int_equal(lines_with("kind=tlsa-changed severity=medium "
	                            "host=mx1.example.com"),
	    1);
	assert_int_equal(lines_with("3 1 1 abababababababab.."), 1);
	log_clear();
	h[1].tlsa = RELAY_MONITOR_TLSA_SECURE_NODATA;
	assert_int_equal(observe(m, "example.com", true, h, 2),
	    K(TLSA_REMOVED));
	assert_int_equal(lines_with("kind=tlsa-removed severity=high "
	                            "host=mx2.example.com"),
	    1);
	/* A failed TLSA lookup keeps the history and says nothing. */
	log_clear();
	h[0].tlsa = RELAY_MONITOR_TLSA_FAILED;
	assert_int_equal(observe(m, "example.com", true, h, 2), 0);
	h[0].tlsa = SD;
	assert_int_equal(observe(m, "example.com", true, h, 2), 0);
	mon_free(m);
}

static struct relay_monitor_tls_obs
tls_obs(const char *host, const uint8_t *key, bool matched,
    const struct tlsa_record *recs, size_t n)
{
	struct relay_monitor_tls_obs o;
	memset(&o, 0, sizeof(o));
	o.domain = "example.com";
	o.host = host;
	o.ehlo_seen = true;
	o.starttls = true;
	o.have_key = key != NULL;
	if (key != NULL)
		memcpy(o.key_sha256, key, 32);
	o.dane = true;
	o.matched = matched;
	o.recs = recs;
	o.nrecs = n;
	o.chain_len = 2;
	return o;
}

static void
test_key_new_unmatched_and_hint(void **state)
{
	(void)state;
	struct relay_monitor *m = mon_new(10);
	uint8_t k_old[32], k_new[32];
	memset(k_old, 0x11, 32);
	memset(k_new, 0x77, 32);
	struct tlsa_record r = { 3, 1, 1, k_old, 32 };
	observe(m, "example.com", true, base_hosts, 2);
	log_clear();
	enum tlsa_hint hint = TLSA_HINT_NONE;
	struct relay_monitor_tls_obs o =
	    tls_obs("mx1.example.com", k_old, true, &r, 1);
	assert_int_equal(relay_monitor_observe_tls(m, "0001", &o, &hint), 0);
	assert_int_equal(hint, TLSA_HINT_NONE);
	/* The server switches to a key no TLSA names: wrong-order rollover. */
	o = tls_obs("mx1.example.com", k_new, false, &r, 1);
	assert_int_equal(relay_monitor_observe_tls(m, "0002", &o, &hint),
	    K(KEY_NEW_UNMATCHED));
	assert_int_equal(hint, TLSA_HINT_NEW_KEY_BEFORE_TLSA);
	assert_int_equal(lines_with("id=0002 domain=example.com "
	                            "kind=key-new-unmatched severity=high "
	                            "host=mx1.example.com "
	                            "old=\"first=1111111111111111.. "
	                            "last=1111111111111111..\" "
	                            "new=sha256:7777"),
	    1);
	/* Seen now: the same key again is no new key, the hint stays. */
	log_clear();
	assert_int_equal(relay_monitor_observe_tls(m, "0003", &o, &hint), 0);
	assert_int_equal(hint, TLSA_HINT_NEW_KEY_BEFORE_TLSA);
	/* A host not in the table is recorded nowhere and logs nothing. */
	o = tls_obs("mx-unknown.example.com", k_new, false, &r, 1);
	assert_int_equal(relay_monitor_observe_tls(m, "0004", &o, &hint), 0);
	mon_free(m);
}

static void
test_starttls_dropped(void **state)
{
	(void)state;
	struct relay_monitor *m = mon_new(10);
	observe(m, "example.com", true, base_hosts, 2);
	log_clear();
	struct relay_monitor_tls_obs o =
	    tls_obs("mx2.example.com", NULL, false, NULL, 0);
	o.dane = false;
	assert_int_equal(relay_monitor_observe_tls(m, NULL, &o, NULL), 0);
	o.starttls = false;
	assert_int_equal(relay_monitor_observe_tls(m, NULL, &o, NULL),
	    K(STARTTLS_DROPPED));
	assert_int_equal(lines_with("kind=starttls-dropped severity=high "
	                            "host=mx2.example.com"),
	    1);
	/* Still without: said once. */
	assert_int_equal(relay_monitor_observe_tls(m, NULL, &o, NULL), 0);
	mon_free(m);
}

static void
test_lru_eviction(void **state)
{
	(void)state;
	struct relay_monitor *m = mon_new(3);
	observe(m, "a.example", true, base_hosts, 1);
	observe(m, "b.example", true, base_hosts, 1);
	observe(m, "c.example", true, base_hosts, 1);
	/* a is used again: b is now the least recently used. */
	observe(m, "a.example", true, base_hosts, 1);
	observe(m, "d.example", true, base_hosts, 1);
	assert_int_equal(relay_monitor_count(m), 3);
	/* b was evicted: its next sight is a first sight (no line even
	 * though the MX set differs); a was kept: a change is logged. */
	log_clear();
	assert_int_equal(observe(m, "b.example", true, base_hosts + 1, 1), 0);
	assert_int_not_equal(observe(m, "a.example", true, base_hosts + 1, 1),
	    0);
	assert_int_equal(relay_monitor_count(m), 3);
	mon_free(m);
}

static void
test_kinds_format(void **state)
{
	(void)state;
	char buf[256];
	assert_string_equal(relay_monitor_kinds_format(0, buf, sizeof(buf)),
	    "");
	assert_string_equal(relay_monitor_kinds_format(K(MX_HOST_ADDED) |
	                            K(STARTTLS_DROPPED),
	                        buf, sizeof(buf)),
	    "mx-host-added,starttls-dropped");
	assert_string_equal(relay_monitor_kind_severity(
	                        RELAY_MONITOR_DNSSEC_DOWNGRADE),
	    "high");
}

/* `report --json`'s "recent_routing_changes": the text line's fields,
 * names from the zone escaped as JSON, an empty host kept as "". */
static void
test_recent_json(void **state)
{
	(void)state;
	struct relay_monitor_change c[2];
	memset(c, 0, sizeof(c));
	c[0].time_s = 1700000100;
	c[0].kind = RELAY_MONITOR_KEY_NEW_UNMATCHED;
	(void)snprintf(c[0].domain, sizeof(c[0].domain), "%s", "example.com");
	(void)snprintf(c[0].host, sizeof(c[0].host), "%s", "mx1.example.com");
	(void)snprintf(c[0].old_, sizeof(c[0].old_), "%s", "first=0011");
	(void)snprintf(c[0].new_, sizeof(c[0].new_), "%s", "sha256:\"q\"\n");
	c[1].time_s = 1700000000;
	c[1].kind = RELAY_MONITOR_DNSSEC_DOWNGRADE;
	(void)snprintf(c[1].domain, sizeof(c[1].domain), "%s", "example.org");
	(void)snprintf(c[1].old_, sizeof(c[1].old_), "%s", "secure");
	(void)snprintf(c[1].new_, sizeof(c[1].new_), "%s", "insecure");

	char *text = NULL;
	size_t tlen = 0;
	FILE *f = open_memstream(&text, &tlen);
	assert_non_null(f);
	struct relay_json j;
	relay_json_init(&j, f);
	relay_monitor_json_recent(&j, c, 2);
	assert_int_equal(relay_json_finish(&j), 0);
	fclose(f);
	assert_string_equal(text,
	    "[{\"time\":1700000100,\"kind\":\"key-new-unmatched\","
	    "\"severity\":\"high\",\"domain\":\"example.com\","
	    "\"host\":\"mx1.example.com\",\"old\":\"first=0011\","
	    "\"new\":\"sha256:\\\"q\\\"\\n\"},"
	    "{\"time\":1700000000,\"kind\":\"dnssec-downgrade\","
	    "\"severity\":\"high\",\"domain\":\"example.org\","
	    "\"host\":\"\",\"old\":\"secure\",\"new\":\"insecure\"}]");
	free(text);

	/* No change: an empty array, not null (null is the CLI's "could not
	 * read the file"). */
	text = NULL;
	f = open_memstream(&text, &tlen);
	assert_non_null(f);
	relay_json_init(&j, f);
	relay_monitor_json_recent(&j, c, 0);
	assert_int_equal(relay_json_finish(&j), 0);
	fclose(f);
	assert_string_equal(text, "[]");
	free(text);
}

/* ---- the file: roundtrip through the thread pool ---- */

static void
closed_cb(void *arg)
{
	*(bool *)arg = true;
}

static struct relay_monitor *
mon_open_file(uv_loop_t *loop, const char *path, size_t max)
{
	struct relay_monitor_ctx c = {
		.loop = loop,
		.clock = &mclock.clock,
		.path = path,
		.max_domains = max,
		.on_change = on_change,
	};
	struct relay_monitor *m = NULL;
	assert_int_equal(relay_monitor_open(&c, &m), 0);
	assert_false(relay_monitor_ready(m)); /* loading on the pool */
	while (!relay_monitor_ready(m))
		uv_run(loop, UV_RUN_ONCE);
	return m;
}

static void
mon_close_file(uv_loop_t *loop, struct relay_monitor *m)
{
	bool closed = false;
	relay_monitor_close(m, closed_cb, &closed);
	assert_false(closed); /* never from inside the call */
	while (!closed)
		uv_run(loop, UV_RUN_ONCE);
}

static void
test_persistence_roundtrip(void **state)
{
	(void)state;
	char dir[] = "/tmp/danerelay-test-monitor.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, RELAY_MONITOR_FILE);
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);

	struct relay_monitor *m = mon_open_file(&loop, path, 10);
	observe(m, "example.com", true, base_hosts, 2);
	uint8_t k_old[32];
	memset(k_old, 0x11, 32);
	struct tlsa_record r = { 3, 1, 1, k_old, 32 };
	struct relay_monitor_tls_obs o =
	    tls_obs("mx1.example.com", k_old, true, &r, 1);
	assert_int_equal(relay_monitor_observe_tls(m, NULL, &o, NULL), 0);
	struct host_spec h[1] = { base_hosts[0] };
	assert_int_not_equal(observe(m, "example.com", true, h, 1), 0);
	mon_close_file(&loop, m); /* the final snapshot */

	/* The recent changes, as `report` reads them. */
	struct relay_monitor_change c[4];
	int n = relay_monitor_read_recent(path, c, 4);
	assert_int_equal(n, 1);
	assert_int_equal(c[0].kind, RELAY_MONITOR_MX_HOST_REMOVED);
	assert_string_equal(c[0].domain, "example.com");
	assert_int_equal(c[0].time_s, T0 / 1000000u);
	char *text = NULL;
	size_t tlen = 0;
	FILE *f = open_memstream(&text, &tlen);
	assert_int_equal(relay_monitor_print_recent(f, c, (size_t)n), 0);
	fclose(f);
	assert_non_null(strstr(text, "Recent routing changes"));
	assert_non_null(strstr(text, "mx-host-removed"));
	free(text);

	/* Reopened: the history is back, the same answer is quiet, and the
	 * key history gives the rollover hint. */
	log_clear();
	m = mon_open_file(&loop, path, 10);
	assert_int_equal(relay_monitor_count(m), 1);
	assert_int_equal(observe(m, "example.com", true, h, 1), 0);
	uint8_t k_new[32];
	memset(k_new, 0x77, 32);
	enum tlsa_hint hint;
	o = tls_obs("mx1.example.com", k_new, false, &r, 1);
	assert_int_equal(relay_monitor_observe_tls(m, NULL, &o, &hint),
	    K(KEY_NEW_UNMATCHED));
	assert_int_equal(hint, TLSA_HINT_NEW_KEY_BEFORE_TLSA);
	struct relay_monitor_change c2[4];
	assert_int_equal(relay_monitor_recent(m, c2, 4), 2);
	assert_int_equal(c2[0].kind, RELAY_MONITOR_KEY_NEW_UNMATCHED);
	mon_close_file(&loop, m);

	/* A torn file: set aside, the monitor starts empty. */
	FILE *w = fopen(path, "r+");
	assert_non_null(w);
	assert_int_equal(fseek(w, 20, SEEK_SET), 0);
	fputc('X', w);
	fclose(w);
	assert_int_equal(relay_monitor_read_recent(path, c, 4),
	    RELAY_MONITOR_ERR_FORMAT);
	m = mon_open_file(&loop, path, 10);
	assert_int_equal(relay_monitor_count(m), 0);
	mon_close_file(&loop, m);
	char bad[300];
	snprintf(bad, sizeof(bad), "%s.bad", path);
	assert_int_equal(access(bad, F_OK), 0);
	unlink(bad);
	unlink(path);
	rmdir(dir);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* A snapshot that cannot be written (its directory is gone) is logged
 * and, at close, not retried: close still completes. */
static void
test_save_failure_at_close(void **state)
{
	(void)state;
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	log_clear();
	struct relay_monitor *m = mon_open_file(&loop,
	    "/nonexistent-danerelay-dir/" RELAY_MONITOR_FILE, 10);
	observe(m, "example.com", true, base_hosts, 2);
	mon_close_file(&loop, m);
	assert_int_equal(lines_with("event=routing-monitor-save status=failed"),
	    1);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- footprint: 100,000 domains ---- */

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_footprint(void **state)
{
	(void)state;
	enum {
		N = 100000
	};
	char dir[] = "/tmp/danerelay-test-monitor.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, RELAY_MONITOR_FILE);
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	relay_log_set_level(RELAY_LOG_ERROR); /* 100,000 quiet observations */
	struct relay_monitor *m = mon_open_file(&loop, path, N);

	/* Every domain with two MX hosts (the common shape), TLSA on both,
	 * and a key seen on each that later changed (first != last): the
	 * largest record a two-host domain takes. */
	uint8_t k1[32], k2[32];
	for (unsigned i = 0; i < N; i++) {
		char dom[64], n1[80], n2[80], a1[20], a2[20];
		snprintf(dom, sizeof(dom), "d%u.example", i);
		snprintf(n1, sizeof(n1), "mx1.d%u.example", i);
		snprintf(n2, sizeof(n2), "mx2.d%u.example", i);
		snprintf(a1, sizeof(a1), "10.%u.%u.1", (i >> 8) & 255, i & 255);
		snprintf(a2, sizeof(a2), "10.%u.%u.2", (i >> 8) & 255, i & 255);
		struct host_spec h[2] = {
			{ n1, 10, true, a1, SD, (uint8_t)i },
			{ n2, 20, true, a2, SD, (uint8_t)(i + 1) },
		};
		observe(m, dom, true, h, 2);
		for (int k = 0; k < 2; k++) {
			memset(k1, (int)(i & 255), 32);
			k1[1] = (uint8_t)(i >> 8);
			k1[2] = (uint8_t)k;
			memcpy(k2, k1, 32);
			k2[3] = 0xee;
			struct relay_monitor_tls_obs o =
			    tls_obs(k ? n2 : n1, k1, true, NULL, 0);
			o.domain = dom;
			o.dane = false;
			assert_int_equal(relay_monitor_observe_tls(m, NULL, &o,
			                     NULL),
			    0);
			memcpy(o.key_sha256, k2, 32);
			assert_int_equal(relay_monitor_observe_tls(m, NULL, &o,
			                     NULL),
			    0);
		}
	}
	assert_int_equal(relay_monitor_count(m), N);
	double t0 = now_s();
	assert_int_equal(relay_monitor_save_sync(m), 0);
	double t_save = now_s() - t0;
	mon_close_file(&loop, m);

	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	double per = (double)st.st_size / N;
	t0 = now_s();
	m = mon_open_file(&loop, path, N);
	double t_load = now_s() - t0;
	assert_int_equal(relay_monitor_count(m), N);
	printf("# footprint: %u domains (2 hosts, TLSA, 2 keys each): file "
	       "%lld bytes, %.1f bytes/domain; save %.1f ms, load %.1f ms\n",
	    (unsigned)N, (long long)st.st_size, per, t_save * 1000,
	    t_load * 1000);
	assert_true(per < 100.0);
	mon_close_file(&loop, m);
	relay_log_set_level(RELAY_LOG_INFO);
	unlink(path);
	rmdir(dir);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_sight_silent),
		cmocka_unit_test(test_mx_host_added_removed),
		cmocka_unit_test(test_address_new),
		cmocka_unit_test(test_dnssec_downgrade),
		cmocka_unit_test(test_tlsa_changed_removed),
		cmocka_unit_test(test_key_new_unmatched_and_hint),
		cmocka_unit_test(test_starttls_dropped),
		cmocka_unit_test(test_lru_eviction),
		cmocka_unit_test(test_kinds_format),
		cmocka_unit_test(test_recent_json),
		cmocka_unit_test(test_persistence_roundtrip),
		cmocka_unit_test(test_save_failure_at_close),
		cmocka_unit_test(test_footprint),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
