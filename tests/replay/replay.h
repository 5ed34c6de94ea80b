#ifndef REPLAY_H
#define REPLAY_H
/*
 * replay: the deterministic scenario runner for delivery (tests/replay/).
 *
 * A scenario file (tests/replay/README.md has the format) says what the DNS
 * answers with which DNSSEC status, how each SMTP peer behaves, what is
 * submitted, how the clock moves, and what must follow: log lines, the
 * queued envelope, DSNs, what each peer saw. The runner builds the
 * delivery part of the daemon around the real scheduler, destination jobs,
 * outbound sessions, queue, DNS destination driver (relay_dns_dest.c) and
 * tlsa/, and replaces only the two edges that touch the network:
 *
 *   fake_dns.c   instead of relay/dns/relay_dns.c (libunbound): scripted
 *                answers per (name, type), answered on the loop
 *   fake_conn.c  instead of relay/net/relay_conn.c (TCP): each connection is
 *                joined in memory to a scripted SMTP server (replay_peer.c)
 *                whose TLS is a real OpenSSL server with a real certificate
 *                from tests/data/tlsa, so DANE matching is the real code
 *
 * Both fakes sit below seams that the world tests in tests/integration
 * cover with the real resolver and real sockets.
 *
 * This header holds the parsed scenario (replay_scenario.c), the state a
 * run shares with the fakes (struct replay_world), and the peer model.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RPL_NAME_MAX 256
#define RPL_TEXT_MAX 512
#define RPL_RR_MAX 16

/* ------------------------------------------------------------ scenario */

enum rpl_sec {
	RPL_SECURE,
	RPL_INSECURE,
	RPL_BOGUS,
	RPL_INDETERMINATE
};

/* What an answer holds. SERVFAIL, REFUSED and TIMEOUT go with the status
 * indeterminate only. */
enum rpl_answer {
	RPL_ANS_DATA,
	RPL_ANS_NODATA,
	RPL_ANS_NXDOMAIN,
	RPL_ANS_SERVFAIL,
	RPL_ANS_REFUSED,
	RPL_ANS_TIMEOUT,
};

struct rpl_rdata {
	uint8_t *p; /* owned */
	size_t len;
};

/* One answer: every `dns` line with the same name and type adds a record. */
struct rpl_rrset {
	char name[RPL_NAME_MAX]; /* lowercase, no trailing dot */
	uint16_t type;
	enum rpl_sec sec;
	enum rpl_answer ans;
	char canon[RPL_NAME_MAX]; /* the CNAME chain's end, "" for none */
	struct rpl_rdata rr[RPL_RR_MAX];
	size_t nrr;
	unsigned line;
};

/* `zone NAME STATUS`: unscripted names under NAME get a denial (NXDOMAIN,
 * or NODATA where the name has other records) with this status. */
struct rpl_zone {
	char name[RPL_NAME_MAX];
	enum rpl_sec sec;
};

/* What a peer directive does. */
enum rpl_pdir {
	RPL_P_REFUSE,          /* TCP connect refused */
	RPL_P_CONNECT_TIMEOUT, /* connect never completes */
	RPL_P_CERT,            /* STARTTLS offered; chain in arg (names) */
	RPL_P_REPLY,           /* reply to stage cmd (addr: RCPT only) */
	RPL_P_DROP,            /* close on reaching stage cmd, no reply */
	RPL_P_STALL,           /* say nothing more from stage cmd on */
	RPL_P_TLS_GARBAGE,     /* answer the ClientHello with garbage */
	RPL_P_EXT,             /* one more EHLO keyword */
	RPL_P_NO_EXT,          /* leave out a default EHLO keyword */
};

struct rpl_pdirective {
	enum rpl_pdir kind;
	unsigned conn;           /* 0: every connection, else only the n-th */
	char cmd[16];            /* stage: greeting EHLO HELO STARTTLS tls
	                                MAIL RCPT DATA DOT RSET QUIT */
	char addr[RPL_NAME_MAX]; /* REPLY to RCPT: only this recipient */
	char text[RPL_TEXT_MAX]; /* reply line, chain names, keyword */
	unsigned line;
};

#define RPL_PDIR_MAX 32
#define RPL_TRANSCRIPT_MAX 512

struct rpl_peer {
	char addr[64];           /* numeric, as connected to */
	char name[RPL_NAME_MAX]; /* for the greeting and EHLO */
	struct rpl_pdirective dir[RPL_PDIR_MAX];
	size_t ndir;
	unsigned line;
	/* run state */
	unsigned connections;
	unsigned messages; /* DATA ended with a 2xx */
	char *transcript[RPL_TRANSCRIPT_MAX];
	size_t ntranscript;
};

enum rpl_act {
	RPL_A_SUBMIT,
	RPL_A_STEP,
	RPL_A_STOP,
	RPL_A_EXPECT_LOG,
	RPL_A_EXPECT_NO_LOG,
	RPL_A_EXPECT_LOG_COUNT,
	RPL_A_EXPECT_LOG_APART,
	RPL_A_EXPECT_QUEUE,
	RPL_A_EXPECT_DSN,
	RPL_A_EXPECT_NO_DSN,
	RPL_A_EXPECT_DSN_TEXT,
	RPL_A_EXPECT_NO_DSN_TEXT,
	RPL_A_EXPECT_CONNECTIONS,
	RPL_A_EXPECT_MESSAGES,
	RPL_A_EXPECT_TRANSCRIPT,
	RPL_A_EXPECT_NO_TRANSCRIPT,
	RPL_A_EXPECT_QUERY,
	RPL_A_EXPECT_NO_QUERY,
	RPL_A_DNS, /* the DNS changes: rrset replaces (or extends) an answer */
};

#define RPL_RCPT_MAX 16

struct rpl_submit {
	char from[RPL_NAME_MAX];
	char to[RPL_RCPT_MAX][RPL_NAME_MAX];
	unsigned notify[RPL_RCPT_MAX]; /* RELAY_QUEUE_NOTIFY_* bits, 0: none */
	size_t nto;
	bool ret_full, ret_hdrs;
	bool smtputf8;
	bool eightbit;
	bool requiretls;      /* MAIL ... REQUIRETLS was given (RFC 8689) */
	bool tls_required_no; /* a folded `TLS-Required: No` header field */
	size_t body_bytes;    /* 0: a short default body */
	unsigned copies;      /* messages like this one, committed at once */
	char envid[64];
};

struct rpl_action {
	enum rpl_act kind;
	unsigned line;
	uint64_t ms;               /* STEP, STOP */
	unsigned count;            /* LOG_COUNT, CONNECTIONS, MESSAGES */
	char arg[RPL_NAME_MAX];    /* rcpt or peer address */
	char state[32];            /* QUEUE: pending deferred sent bounced
	                                    removed; DSN: failed delayed */
	char dsn[16];              /* QUEUE dsn=, DSN status */
	char klass[32];            /* QUEUE class= */
	int attempts;              /* QUEUE attempts=, -1: any */
	char *regex;               /* owned: LOG*, TRANSCRIPT, QUERY */
	struct rpl_submit *submit; /* owned: SUBMIT */
	struct rpl_rrset *rrset;   /* owned, with its rdata: DNS */
};

struct rpl_file {
	char name[64];
	char *text; /* owned */
	size_t len;
};

#define RPL_MAX_RRSETS 128
#define RPL_MAX_ZONES 16
#define RPL_MAX_PEERS 16
#define RPL_MAX_ACTIONS 128
#define RPL_MAX_FILES 4

struct rpl_scenario {
	char path[1024];
	char title[RPL_TEXT_MAX];
	/* `todo REASON`: a known defect; the scenario states the right
	 * behaviour and is reported as TAP "not ok ... # TODO REASON" until the
	 * code is fixed (an unexpected pass then fails the suite). */
	char todo[RPL_TEXT_MAX];
	char *config; /* owned; the `config` lines */
	size_t config_len;
	struct rpl_file files[RPL_MAX_FILES];
	size_t nfiles;
	struct rpl_rrset rrsets[RPL_MAX_RRSETS];
	size_t nrrsets;
	struct rpl_zone zones[RPL_MAX_ZONES];
	size_t nzones;
	bool selftest_failing; /* `dns` line `selftest failing` */
	struct rpl_peer peers[RPL_MAX_PEERS];
	size_t npeers;
	struct rpl_action actions[RPL_MAX_ACTIONS];
	size_t nactions;
};

/*
 * Parse the scenario at path. data_dir holds the certificates a TLSA line
 * or a peer's `cert` names (NAME.pem, NAME.key). On error returns -1 and
 * err holds "FILE:LINE: what"; *out is then NULL. Free with
 * rpl_scenario_free().
 */
int rpl_scenario_load(const char *path, const char *data_dir,
    struct rpl_scenario **out, char *err, size_t errlen);
void rpl_scenario_free(struct rpl_scenario *sc);

/* The scenario's type names: "A", "AAAA", "MX", "CNAME", "TLSA" <-> code. */
const char *rpl_type_name(uint16_t type);

/* ------------------------------------------------------- run state */

/*
 * What the fakes read and record during one scenario. One at a time,
 * reached through replay_world (set by the runner).
 */
struct replay_world {
	struct rpl_scenario *sc;
	const char *data_dir;
	/* Domains whose unscripted lookups are expected (envelope senders, to
	 * which DSNs go): answered SERVFAIL without failing the scenario. */
	char allowed[RPL_RCPT_MAX][RPL_NAME_MAX];
	size_t nallowed;
	/* Lookups nobody scripted, "name/TYPE", for the failure report. */
	char unscripted[32][RPL_NAME_MAX + 64];
	size_t nunscripted;
	/* Connections to addresses without a `peer` section. */
	char unknown_peer[8][64];
	size_t nunknown_peer;
	/* Every lookup made, "name TYPE", in order. */
	char *queries[1024];
	size_t nqueries;
	/* Set by a fake that found the scenario itself broken. */
	char fatal[RPL_TEXT_MAX];
};

extern struct replay_world *replay_world;

/* Record a transcript line for peer p (printf-style). */
void replay_peer_note(struct rpl_peer *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The peer for a numeric address, or NULL. */
struct rpl_peer *replay_peer_find(const char *addr);

/* ------------------------------------------------------- the SMTP peer */

/*
 * One server-side SMTP session of a peer (replay_peer.c): plaintext in,
 * plaintext out, with the peer's directives. The transport (fake_conn.c)
 * moves bytes and runs TLS.
 */
struct peer_sess;

struct peer_sess *peer_sess_new(struct rpl_peer *p, unsigned conn_no);
void peer_sess_free(struct peer_sess *ps);

/* Start: the greeting (unless stalled or dropped there). */
void peer_sess_start(struct peer_sess *ps);

/* Feed client bytes. Stops consuming after a STARTTLS that it accepted
 * (the transport must then discard what is left: RFC 3207 4.2 says the
 * server discards what the client sent after STARTTLS) and returns the
 * number of bytes consumed. */
size_t peer_sess_input(struct peer_sess *ps, const uint8_t *p, size_t len);

/* Output queued for the client; consume it with peer_sess_output_done. */
const uint8_t *peer_sess_output(struct peer_sess *ps, size_t *len);
void peer_sess_output_done(struct peer_sess *ps);

/* The server accepted STARTTLS: TLS starts now (returns true once). */
bool peer_sess_take_starttls(struct peer_sess *ps);
/* TLS came up (after the handshake): EHLO is expected again. */
void peer_sess_tls_up(struct peer_sess *ps, const char *sni);
/* The server wants the connection closed (after its pending output). */
bool peer_sess_closed(const struct peer_sess *ps);
/* The server was told to stall or drop at stage (greeting, tls...). */
bool peer_sess_has(const struct peer_sess *ps, enum rpl_pdir kind,
    const char *stage);
/* The chain to present ("" when STARTTLS is not offered). */
const char *peer_sess_cert(const struct peer_sess *ps);

#endif
