#ifndef RELAY_MONITOR_H
#define RELAY_MONITOR_H
/*
 * relay_monitor: the routing monitor. Per destination domain it remembers,
 * compactly, how mail to it was routed: the MX host set with preferences,
 * each host's addresses, the DNSSEC status of the MX, address and TLSA
 * answers, the TLSA RRset, whether each host offered STARTTLS, and the key
 * (SPKI SHA-256) each host presented first and last. Each delivery attempt
 * compares what it finds with that and logs one line per change:
 *
 *   level=warning event=routing-change domain=example.com kind=mx-host-added
 *     severity=medium host=mx9.example.com old="2 hosts"
 *     new="10 mx1.example.com,20 mx9.example.com"
 *
 * Kinds (relay_monitor_kind_name(); README "Routing changes"):
 *   mx-host-added      a host joined the MX set                  medium
 *   mx-host-removed    a host left the MX set                    low
 *   address-new        an address outside the host's known set   medium
 *   dnssec-downgrade   a secure MX or address answer is now
 *                      insecure (DS removed, chain stripped)     high
 *   tlsa-removed       a secure TLSA RRset is gone or insecure   high
 *   tlsa-changed       the secure TLSA RRset has other records   medium
 *   key-new-unmatched  the host presents a key that matches no
 *                      TLSA record and was never seen before     high
 *                      (such a key never becomes the host's last
 *                      key: that stays the last one that worked)
 *   starttls-dropped   a host that offered STARTTLS stops        high
 * The first sight of a domain is recorded without a line. Lines are at
 * level warning: the relay handled the delivery (fail closed, RFC 7672),
 * but an operator should know; severity says how urgent.
 *
 * Compact: a domain is keyed by a 64-bit hash of its name, a host by a
 * 32-bit hash of its name; addresses are kept as a 64-bit Bloom filter
 * (3 bits per address; a new address that collides with known ones goes
 * unnoticed, about 1 in 200 with 4 known addresses), the TLSA RRset as a
 * 32-bit digest of the set, keys as their first 8 octets. The names a line
 * shows come from the current answer; of the old state it shows counts
 * and digests. On disk a domain with two hosts takes 42 to 90 bytes.
 *
 * Bounded: at most max_domains domains, the least recently used evicted.
 *
 * Never blocks the loop: the file (spool_dir/routing-monitor) is read and
 * parsed at open on libuv's thread pool; observations before it is loaded
 * are ignored (ready() is false). Snapshots are serialised in memory on the
 * loop and written (tmp file, fsync, rename, fsync of the directory) on
 * the thread pool, every snapshot interval when something changed, and at
 * close. A file that does not parse is set aside as routing-monitor.bad
 * and the monitor starts empty (nothing to compare is never a reason to
 * deliver differently: the monitor only reports).
 *
 * The last RELAY_MONITOR_RECENT changes are kept with the snapshot for
 * `report` and the report mail (relay_monitor_read_recent()).
 *
 * Everything runs on the loop thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "relay_clock.h"
#include "tlsa.h"
#include "tlsa_hint.h"

#define RELAY_MONITOR_WUR __attribute__((warn_unused_result))

/* The file in spool_dir. */
#define RELAY_MONITOR_FILE "routing-monitor"
/* Changes kept for reports. */
#define RELAY_MONITOR_RECENT 100
/* Hosts remembered per domain (RELAY_DNS_MAX_MX). */
#define RELAY_MONITOR_HOSTS_MAX 16
/* Default time between two snapshots of a changed table. */
#define RELAY_MONITOR_SNAPSHOT_MS 60000

enum relay_monitor_kind {
	RELAY_MONITOR_MX_HOST_ADDED = 0,
	RELAY_MONITOR_MX_HOST_REMOVED,
	RELAY_MONITOR_ADDRESS_NEW,
	RELAY_MONITOR_DNSSEC_DOWNGRADE,
	RELAY_MONITOR_TLSA_REMOVED,
	RELAY_MONITOR_TLSA_CHANGED,
	RELAY_MONITOR_KEY_NEW_UNMATCHED,
	RELAY_MONITOR_STARTTLS_DROPPED,
	RELAY_MONITOR_KIND_COUNT
};
/* "mx-host-added", ...; "unknown" out of range. */
const char *relay_monitor_kind_name(enum relay_monitor_kind k);
/* "high" | "medium" | "low". */
const char *relay_monitor_kind_severity(enum relay_monitor_kind k);
/* A bit mask of kinds (1u << kind) as "kind,kind" in buf (size bytes,
 * NUL-ended, cut to fit); "" for 0. Returns buf. */
char *relay_monitor_kinds_format(unsigned mask, char *buf, size_t size);

enum relay_monitor_err {
	RELAY_MONITOR_OK = 0,
	RELAY_MONITOR_ERR_NOMEM = -1,
	RELAY_MONITOR_ERR_IO = -2,
	RELAY_MONITOR_ERR_FORMAT = -3, /* the file does not parse */
	RELAY_MONITOR_ERR_LOOP = -4,   /* a libuv call failed */
};
const char *relay_monitor_strerror(int err);

struct relay_monitor_ctx {
	uv_loop_t *loop;
	const struct relay_clock *clock; /* wall time of recent changes */
	/* The file (copied); NULL or "": memory only, nothing read or
	 * written, ready at once. */
	const char *path;
	size_t max_domains;   /* >= 1 */
	uint64_t snapshot_ms; /* 0: RELAY_MONITOR_SNAPSHOT_MS */
	/* Per logged change, on the loop; may be NULL. The hook for
	 * counters (one per kind). */
	void (*on_change)(void *arg, const char *kind);
	void *arg;
};

struct relay_monitor;

/*
 * Creates a monitor (ctx is copied) and starts reading ctx->path on the
 * thread pool. Returns 0 and sets *out, or RELAY_MONITOR_ERR_NOMEM /
 * _LOOP (nothing started). A missing file is an empty table.
 */
int relay_monitor_open(const struct relay_monitor_ctx *ctx,
    struct relay_monitor **out) RELAY_MONITOR_WUR;

/* The table is loaded and observations count. */
bool relay_monitor_ready(const struct relay_monitor *m);

/* Domains in the table now. */
size_t relay_monitor_count(const struct relay_monitor *m);

/*
 * Writes a final snapshot when something changed, waits for the load and
 * any write in flight, closes the timer and frees m; done(arg) runs after
 * that, from the loop (never from inside this call; a memory-only
 * monitor opened without a loop, in tests, is freed at once instead).
 * m == NULL is a no-op: done never runs.
 */
void relay_monitor_close(struct relay_monitor *m, void (*done)(void *arg),
    void *arg);

/* ---- observations ---- */

struct relay_monitor_addr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t bytes[16]; /* 4 used for AF_INET */
};

/* What the TLSA lookup of a host said. */
enum relay_monitor_tlsa {
	RELAY_MONITOR_TLSA_NOT_LOOKED_UP, /* address insecure or policy */
	RELAY_MONITOR_TLSA_SECURE_DATA,
	RELAY_MONITOR_TLSA_SECURE_NODATA, /* proven absent */
	RELAY_MONITOR_TLSA_INSECURE,      /* data or denial, insecure */
	RELAY_MONITOR_TLSA_FAILED,        /* bogus, SERVFAIL, ... */
};

struct relay_monitor_host_obs {
	const char *name; /* lower case, no trailing dot */
	uint16_t pref;
	/* The address answer: usable (secure or insecure data) and secure. */
	bool addr_usable;
	bool addr_secure;
	const struct relay_monitor_addr *addrs;
	size_t naddrs;
	enum relay_monitor_tlsa tlsa;
	const struct tlsa_record *recs; /* SECURE_DATA: the records */
	size_t nrecs;
};

/* One destination's DNS, as a delivery found it (MX usable: secure or
 * insecure; a failed MX lookup is not observed). */
struct relay_monitor_dns_obs {
	const char *domain; /* DNS form (A-labels) */
	bool mx_secure;
	bool implicit_mx; /* no MX: the domain is its own host */
	const struct relay_monitor_host_obs *hosts;
	size_t nhosts;
};

/*
 * Compares o with the domain's history, logs a line per change (id: the
 * queue id for the line, may be NULL), calls on_change, and records o.
 * Returns the mask of kinds logged (0 when nothing changed, at the first
 * sight of the domain, and while !ready()).
 */
unsigned relay_monitor_observe_dns(struct relay_monitor *m, const char *id,
    const struct relay_monitor_dns_obs *o);

/* One outbound session's TLS facts for one MX host. */
struct relay_monitor_tls_obs {
	const char *domain;
	const char *host;
	/* The server's EHLO reply was seen: starttls says whether it offered
	 * STARTTLS. */
	bool ehlo_seen;
	bool starttls;
	/* A handshake ran and the leaf's key is known. */
	bool have_key;
	uint8_t key_sha256[32];
	/* The verdict was DANE with usable records recs (borrowed), and
	 * whether the handshake matched one of them. */
	bool dane;
	bool matched;
	const struct tlsa_record *recs;
	size_t nrecs;
	int chain_len; /* tlsa_result.chain_len */
};

/*
 * Compares o with the host's history (key-new-unmatched, starttls-dropped),
 * logs and records as relay_monitor_observe_dns() does. When o->dane and
 * !o->matched (a tlsa-mismatch) and *hint is not NULL, sets *hint to the
 * likely mistake from the history before this observation
 * (tlsa_hint_diagnose()). Returns the mask of kinds logged. A host or
 * domain not in the table (evicted, or first seen in a failed DNS
 * attempt) is recorded without a line.
 */
unsigned relay_monitor_observe_tls(struct relay_monitor *m, const char *id,
    const struct relay_monitor_tls_obs *o, enum tlsa_hint *hint);

/* ---- recent changes (report) ---- */

struct relay_monitor_change {
	uint64_t time_s; /* wall, seconds since the epoch */
	enum relay_monitor_kind kind;
	char domain[254];
	char host[254];
	char old_[128];
	char new_[256];
};

/*
 * Copies up to max of the most recent changes of m, newest first, into
 * out. Returns how many.
 */
size_t relay_monitor_recent(const struct relay_monitor *m,
    struct relay_monitor_change *out, size_t max);

/*
 * Reads the recent changes kept in the file path (the CLI's `report`, on a
 * stopped or running relay: the file is replaced by rename). Blocking: not
 * for the loop. Returns how many (0..max) newest first, 0 when the file
 * does not exist, or a negative relay_monitor_err.
 */
int relay_monitor_read_recent(const char *path,
    struct relay_monitor_change *out, size_t max) RELAY_MONITOR_WUR;

/*
 * The "Recent routing changes" section of `report` (text; untrusted
 * names printed with control bytes replaced) for changes c[0..n), newest
 * first. Prints nothing when n == 0. Returns 0 or -1 on a write error.
 */
int relay_monitor_print_recent(FILE *out, const struct relay_monitor_change *c,
    size_t n) RELAY_MONITOR_WUR;

/*
 * The same changes as the value of `report --json`'s
 * "recent_routing_changes": an array, newest first, of objects with the
 * fields of the text lines: "time" (seconds since the epoch, as the
 * report's other times), "kind", "severity", "domain", "host" ("" for a
 * change of the domain itself), "old" and "new". j must be where a value
 * is due.
 */
struct relay_json;
void relay_monitor_json_recent(struct relay_json *j,
    const struct relay_monitor_change *c, size_t n);

/* ---- what the store costs (tests, measurements) ---- */

/* Bytes the snapshot of m takes now. */
size_t relay_monitor_snapshot_size(const struct relay_monitor *m);

/*
 * Serialises m and writes it to its path at once, blocking (tests and
 * measurements only; the daemon writes from the thread pool). Returns 0 or
 * a relay_monitor_err.
 */
int relay_monitor_save_sync(struct relay_monitor *m) RELAY_MONITOR_WUR;

#endif
