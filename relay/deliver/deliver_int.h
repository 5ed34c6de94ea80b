#ifndef RELAY_DELIVER_INT_H
#define RELAY_DELIVER_INT_H
/*
 * deliver_int.h: what the three parts of delivery share. Private to
 * relay_sched.c, relay_dest.c and relay_outbound.c.
 *
 *   relay_sched.c     the scheduler, message jobs, per-recipient outcomes
 *                     (queue update, log line), DSNs, local submission
 *   relay_dest.c      destination jobs: one message x one domain; DNS ->
 *                     RFC 7672 verdict per MX host -> addresses in order;
 *                     per-domain concurrency slots
 *   relay_outbound.c  one SMTP session over TCP/TLS to one MX address, and
 *                     the cache of verified idle connections
 *   relay_relayhost.c destination jobs of locally generated mail when
 *                     notify_relayhost is set: its [host]:port instead
 *                     of the recipients' MX hosts
 *
 * Ownership: a msg_job owns its dest_jobs; a dest_job points at the
 * out_sess that works for it (at most one); an out_sess is owned by its
 * relay_conn's lifetime (freed in on_closed), and while parked it belongs
 * to the scheduler's cache.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "relay_class.h"
#include "relay_clock.h"
#include "relay_conn.h"
#include "relay_deliver.h"
#include "relay_idn.h"
#include "relay_text.h"
#include "smtp.h"

/* Messages processed at once (each holds its content in memory). */
#define SCHED_MAX_JOBS 256
/* A scan of the queue's index is cut into slices, one per loop iteration:
 * at most this many messages looked at, and at most this many started,
 * per slice. Whatever the number of messages that come due at once (a
 * restart, `queue retry` with a million deferred messages), one loop
 * iteration does a bounded amount of work, and sessions, the listener and
 * the control socket are served between slices. */
#define SCHED_SCAN_SLICE 4096
#define SCHED_START_SLICE 32
/* Longest sleep between scans when nothing is due earlier. */
#define SCHED_MAX_SLEEP_MS 60000
/* Addresses tried per MX host, and in total per destination (Postfix's
 * smtp_mx_address_limit is 5). */
#define DEST_ADDRS_PER_HOST 2
#define DEST_ADDRS_TOTAL 5
/* Content is sent in chunks below half the client machine's output
 * ceiling (smtp_client_body contract). */
#define BODY_CHUNK (64u * 1024)
#define SCHED_HASH_BUCKETS 1024

#define REASON_MAX 512

struct msg_job;
struct dest_job;

/* Result of one recipient in one attempt. */
struct rcpt_out {
	enum relay_queue_rcpt_status status; /* SENT, DEFERRED or BOUNCED */
	char dsn[16];
	enum relay_fail_class class; /* NONE when sent */
	char reason[REASON_MAX];
	bool decided;
};

/* What the last failure of a destination job was (for the recipients
 * when no MX is left). */
struct failure {
	bool set;
	bool permanent;
	char dsn[16];
	enum relay_fail_class class;
	char reason[REASON_MAX];
};

/* Details of the connection attempt that decided, for the log and
 * `queue show`. */
struct attempt_info {
	char mx[RELAY_DNS_HOST_MAX];
	char addr[INET6_ADDRSTRLEN];
	uint16_t port; /* the port connected to, with addr */
	char dnssec_mx[16], dnssec_addr[16], dnssec_tlsa[16];
	char tlsa[1400]; /* records seen, digests in full (queue show) */
	char tls[16];
	char trust[16];
	int depth;
	char spki[65];
	char names[256];
	char matched[64];
	char reply[REASON_MAX];
	unsigned conn_use; /* 1 for a new connection, n for its n-th message */
};

/*
 * One outbound SMTP connection. While a destination job drives it, j is
 * set. After a message, a connection whose server is ready for more may be
 * parked in the scheduler's connection cache (RFC 5321 4.1.4 allows any
 * number of transactions per session) and later attached to another job
 * whose delivery needs exactly the same thing: same MX host, same address,
 * the same TLS level and verdict, including its TLSA RRset digest, and the
 * same channel (TLS, or cleartext by a `none` policy entry)
 * (tlsa_verdict_cache_key), so a reused connection never satisfies a
 * policy it was not authenticated under, and a cleartext connection never
 * carries mail for a destination that would get TLS.
 */
struct out_sess {
	const struct relay_deliver_ctx *ctx;
	struct relay_sched *s; /* NULL for a probe */
	struct dest_job *j;
	/* Set for a session started by relay_outbound_probe(): no job, no
	 * envelope; it stops when ready for MAIL. */
	struct relay_outbound_probe *probe;
	struct out_sess *cnext, **cpprev; /* in s->cache while parked */
	bool parked;
	/* In s->greet while its job waits for the server's greeting: a
	 * connection that becomes ready first may take the job over
	 * (relay_outbound.c, greet_take()). */
	struct out_sess *gnext, **gpprev;
	bool greeting;
	bool cleartext_policy;  /* STARTTLS never tried (policy `none`) */
	enum relay_sts_use sts; /* MTA-STS for the host it was made for */
	/* The handshake was PKIX-verified for host under an MTA-STS enforce
	 * policy of sts_domain, against the mta_sts_ca_file store of
	 * generation sts_gen (relay_deliver_ctx.tlsa_sts_gen). Set once, when
	 * TLS comes up; a reuse never changes it (RFC 8689 4.2.1: only such a
	 * session, or a DANE one, carries a REQUIRETLS message). */
	bool sts_enforced;
	uint64_t sts_gen;
	char sts_domain[RELAY_DNS_HOST_MAX];
	/* MTA-STS testing (RFC 8461 5): the class enforce would have refused
	 * this session's certificate with (sts-certificate, checked against
	 * mta_sts_ca_file for host after the handshake), else NONE; and the
	 * X.509 error that says why. */
	enum relay_fail_class sts_cert_fail;
	long sts_x509_err;
	bool sts_cert_checked;
	bool reported;                /* outcome handed to the job */
	bool tls_counted;             /* relay_tls_session reported (once) */
	char local[INET6_ADDRSTRLEN]; /* our address, once connected */
	uint8_t key[32];              /* verdict cache key */
	char host[RELAY_DNS_HOST_MAX];
	char addr[INET6_ADDRSTRLEN];
	uint16_t port;
	unsigned uses; /* messages sent on this connection */
	struct relay_conn *conn;
	struct smtp_client *smtp;
	struct smtp_client_rcpt *rcpts;
	struct smtp_result *rres; /* per recipient RCPT results */
	bool *rseen;
	struct smtp_result mres; /* MESSAGE result */
	bool mseen;
	bool any_txn_reply; /* the server answered MAIL/RCPT/DATA */
	bool tls_ok;
	struct tlsa_result tres;
	bool tls_failed;
	size_t body_off;
	bool body_wait_drain;
	enum relay_fail_class abort_class; /* NONE unless the driver aborted */
	bool connect_failed;
	/* The connect failed because the source address (smtp_bind_address
	 * or smtp_bind_address6, in source) could not be bound. */
	bool bind_failed;
	char source[INET6_ADDRSTRLEN];
	char connect_err[128];
	bool done;
	bool monitored; /* facts handed to the routing monitor */
};

struct dest_job {
	struct msg_job *m;
	struct dest_job *next;      /* in m->dests */
	struct dest_job *wait_next; /* in the domain's wait queue */
	struct dest_slot *slot;
	/* The destination in DNS form (A-labels, relay_idn.h): what the MX,
	 * address and TLSA lookups, the TLSA base domain, SNI and the DANE-TA
	 * reference identifiers see, and the key for concurrency and
	 * tls_policy_file. "" when the recipient domain could not be
	 * converted (idn_err). */
	char domain[RELAY_DNS_HOST_MAX];
	/* The recipient's UTF-8 spelling, for logs; "" when ASCII. */
	char domain_utf8[RELAY_IDN_UTF8_MAX];
	/* Locally generated mail routed to notify_relayhost (decided when the
	 * job is made, from the envelope's origin and the configuration then
	 * in effect): domain holds nexthop.text, and the recipients' domains
	 * play no part. nexthop is a copy, so a reload cannot split a job. */
	bool notify;
	struct relay_config_nexthop nexthop;
	/* The port connected to: the DNS result's, or the next hop's. */
	uint16_t port;
	int idn_err;            /* relay_idn_to_ascii() result */
	const char *idn_detail; /* static, why idn_err */
	size_t *ri;             /* recipient indexes into m->env */
	size_t nr;
	struct rcpt_out *out;
	struct relay_dns_req *dns_req;
	/* MTA-STS: the wait for the domain's policy, then the answer (NULL
	 * when MTA-STS does not apply to this destination), and how it
	 * applies to the current host. */
	struct relay_sts_wait *sts_wait;
	struct relay_sts_answer *sts;
	enum relay_sts_use sts_host;
	/* RFC 8461 5 (testing): what enforce would have refused the current
	 * host's attempt for (sts-mx-mismatch, sts-certificate,
	 * sts-starttls-missing), else NONE; logged on the delivery line as
	 * sts_testing_failure=, reported to TLSRPT and counted. */
	enum relay_fail_class sts_would_fail;
	/* A REQUIRETLS message whose MX RRset is not DNSSEC-secure: an
	 * MTA-STS enforce policy must name each host (RFC 8689 4.2.1). */
	bool requiretls_sts;
	struct relay_dns_result *dns;
	enum tlsa_level level; /* policy.tlsa_level, for the DNS lookups */
	struct relay_class_policy policy; /* chosen once, at the start */
	struct tlsa_verdict verdict;
	size_t host_i; /* current host */
	size_t addr_i; /* next address of the current host */
	size_t addrs_tried;
	struct out_sess *sess;
	struct failure fail;
	struct attempt_info info;
	/* Routing monitor: kinds of change this job logged (1u << kind), and
	 * the diagnosis of its last tlsa-mismatch (tlsa_hint_name()). */
	unsigned mon_kinds;
	enum tlsa_hint hint;
	bool started;
	bool finished;
	/* Every MX address tried failed at the session level (connect, TLS,
	 * DANE, greeting, EHLO): the destination, not this message, failed. */
	bool all_mx_failed;
	/* `TLS-Required: No` honoured (relay_requiretls.c): recipient-side
	 * MTA-STS policy may be skipped for this job; DANE never is. */
	bool tls_required_no;
};

/*
 * Concurrency bookkeeping per destination domain, and whether the domain is
 * suspended. When a job tried MX addresses and every one failed at the
 * session level, the domain is suspended for retry_min: jobs for it are
 * deferred at once with the same failure, without DNS or a connection
 * (Postfix's "delivery temporarily suspended"). When that time has passed,
 * one job at a time probes the domain; a probe that reaches a server
 * lifts the suspension, one that fails renews it. So a domain that fails
 * DANE costs one failing handshake per retry round, not one per message,
 * and its messages do not hold delivery slots the other domains need.
 */
struct dest_slot {
	struct dest_slot *next;
	char domain[RELAY_DNS_HOST_MAX];
	size_t active;
	/* Jobs allowed at once: starts at initial_destination_concurrency
	 * and grows by one with each job that reached a server (Postfix's
	 * slow start), so a destination nobody can reach costs a few
	 * handshakes before its suspension, not the concurrency limit. */
	size_t window;
	struct dest_job *wait_head, *wait_tail;
	uint64_t suspended_until_us;     /* monotonic; 0: not suspended */
	enum tlsa_level suspended_level; /* the level that failed */
	struct failure suspended_by;     /* the failure, for the recipients */
	/* What the failing attempt saw (MX, address, DNSSEC, TLSA, key): the
	 * deferred messages' attempts record it, so `queue show` and `report`
	 * still say why. */
	struct attempt_info suspended_info;
};

struct msg_job {
	struct relay_sched *s;
	struct msg_job *next, **pprev; /* in s->jobs */
	struct msg_job *hnext;         /* in the id hash */
	char id[RELAY_QUEUE_ID_SIZE];
	struct relay_queue_envelope *env;
	uint8_t *content;
	size_t content_len;
	struct dest_job *dests;
	size_t dests_open;
	uv_work_t work; /* content read in the thread pool */
	char path[4096];
	int read_err;
	uint64_t started_us;
	uint64_t next_due_us; /* earliest retry after this job, 0 none */
};

/* Idle connections kept at most (the oldest is closed first). */
#define SCHED_CACHE_MAX 512

/* A tls_policy_file entry whose expiry was logged (once per entry). */
struct expired_seen {
	struct expired_seen *next;
	char key[]; /* "FILE:LINE DOMAIN" */
};

struct relay_sched {
	const struct relay_deliver_ctx *ctx;
	struct expired_seen *expired_seen;
	struct out_sess *cache; /* parked connections, newest first */
	size_t ncache;
	/* New connections whose job still waits for the greeting, oldest
	 * first (greet_tail: where the next one goes). */
	struct out_sess *greet, **greet_tail;
	uv_timer_t timer;
	uv_timer_t grace;
	/* Run the next slice of a scan after the loop has polled for I/O
	 * (a check handle runs right after the poll, once per turn; a timer
	 * of 0 ms started from a timer callback would run in the same turn),
	 * with slice_idle active meanwhile so that the poll does not block. */
	uv_check_t slice;
	uv_idle_t slice_idle;
	struct msg_job *jobs;
	size_t njobs;
	struct msg_job *hash[SCHED_HASH_BUCKETS];
	struct dest_slot *slots;
	bool stopping;
	bool aborting;
	/* The scan in progress (relay_sched.c, sched_scan()): it walks the
	 * index in id (arrival) order, a slice per loop iteration, from the
	 * first id after scan_after, and starts due messages in that order.
	 * Paused while no place is free: a finishing job resumes it, so the
	 * oldest due message gets the next place. */
	bool scanning;
	bool scan_paused;
	/* Something may have become due behind the cursor (a kick, a message
	 * committed with a lower id): another scan follows this one. */
	bool scan_again;
	char scan_after[RELAY_QUEUE_ID_SIZE];
	/* Earliest due time (wall) of what the scan passed over, and of
	 * messages deferred meanwhile: the timer after the scan. */
	uint64_t scan_next_due;
	int open_handles;
	void (*done)(void *arg);
	void *done_arg;
	bool done_called;
};

/* relay_sched.c */
void deliver__msg_dest_done(struct msg_job *m);
/* True the first time key is seen by this scheduler (and remembers it);
 * false afterwards, and when out of memory (then it is logged again). */
bool deliver__first_time(struct relay_sched *s, const char *key);

/* relay_dest.c */
void deliver__monitor_dns(struct dest_job *j);
void deliver__fail_set(struct failure *f, bool permanent, const char *dsn,
    enum relay_fail_class class, const char *reason);
void deliver__rcpt_decide(struct dest_job *j, size_t k,
    enum relay_queue_rcpt_status st, const char *dsn,
    enum relay_fail_class class, const char *reason);
void deliver__dest_decide_all(struct dest_job *j, bool permanent,
    const char *dsn, enum relay_fail_class class, const char *reason);
void deliver__dest_next(struct dest_job *j);
void deliver__dest_finish(struct dest_job *j);
void deliver__dest_start(struct dest_job *j);
/* Lift every destination's suspension (relay_sched_resume_all()). */
void deliver__slots_resume(struct relay_sched *s);
void deliver__dest_dns_done(void *arg, struct relay_dns_result *res);

/* relay_requiretls.c (RFC 8689) */
/* The message is tagged REQUIRETLS. */
bool deliver__requiretls(const struct dest_job *j);
/* The destination's MX RRset is DNSSEC-secure (or its absence is). */
bool deliver__requiretls_mx_secure(const struct dest_job *j);
/* MX host `host` may carry it: its name came from DNSSEC-secure MX
 * records or from the domain's MTA-STS policy in enforce mode (j->sts). */
bool deliver__requiretls_host_vouched(const struct dest_job *j,
    const char *host);
/* A session under verdict v, with MTA-STS use sts, may carry it:
 * DANE-authenticated TLS, or PKIX under an MTA-STS enforce policy. */
bool deliver__requiretls_verdict_ok(const struct tlsa_verdict *v,
    enum relay_sts_use sts);
/* Raise a lower policy level of j to dane (logged); dane-only stays. */
void deliver__requiretls_policy(struct dest_job *j);
/* f was just set, prev is what it was before: a REQUIRETLS failure
 * becomes permanent 5.7.30 unless an earlier failure of another kind was
 * recorded, which then stays (it defers). */
void deliver__requiretls_keep(struct failure *f, const struct failure *prev);
/* The current MX host cannot carry the message: record why. */
void deliver__requiretls_refuse(struct dest_job *j, const char *why);
/* Reads `TLS-Required: No` (RFC 8689 4.2.2) from the message's header
 * section, sets j->tls_required_no per tls_required_header, logs it. */
void deliver__tls_required_header(struct dest_job *j);

/* relay_relayhost.c */
int deliver__relayhost_start(struct dest_job *j);
void deliver__relayhost_next(struct dest_job *j);

/* relay_outbound.c */
enum smtp_tls_mode deliver__tls_mode(const struct tlsa_verdict *v,
    bool cleartext);
/* A parked connection to host at addr:port made under the same verdict
 * key, or NULL. The port counts: notify_relayhost may name another port
 * of an address that is also an MX host's. A connection verified under
 * an mta_sts_ca_file that a reload replaced is never taken. With
 * requiretls, only a connection that satisfies RFC 8689 4.2.1 (TLS
 * authenticated by DANE, or by PKIX under an MTA-STS enforce policy of
 * domain, and REQUIRETLS in its EHLO after STARTTLS) is taken. */
struct out_sess *deliver__cache_take(struct relay_sched *s, const char *host,
    const char *addr, uint16_t port, const uint8_t key[32], bool requiretls,
    const char *domain);
void deliver__cache_flush(struct relay_sched *s);
bool deliver__sess_reuse(struct out_sess *ss, struct dest_job *j);

/* relay_deliver_metrics.c: counts one recipient attempt as its delivery
 * line (log_delivery) records it, t being the attempt's wall time. */
void deliver__count_delivery(const struct dest_job *j, const struct rcpt_out *o,
    uint64_t t);
bool deliver__sess_start(struct dest_job *j, const struct relay_dns_addr *a,
    enum smtp_tls_mode mode);

#endif
