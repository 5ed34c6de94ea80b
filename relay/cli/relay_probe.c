/*
 * relay_probe: `danerelay probe [-c FILE] [--json] DOMAIN`.
 *
 * Runs the delivery decision `serve` makes for one next-hop domain, with the
 * same configuration, tls_policy_file overrides and resolver, and shows its
 * inputs and outcome:
 *
 *   DNS       relay_dns_resolve(): MX, A/AAAA, TLSA with DNSSEC status, after
 *             the resolver's known-answer self-test has given its verdict.
 *   policy    tlsa_policy_destination(), then tlsa_policy_decide() for every
 *             MX host in preference order (RFC 7672 2.2.1, C27-C29).
 *   session   for the first host whose verdict allows connecting: the
 *             delivery's own outbound session to its first address, in
 *             probe mode (relay_outbound_probe(), deliver/): the same TLS
 *             mode, STARTTLS, fail-closed DANE check (RFC 7672 2.2 C18-C21,
 *             3.1 C50-C52) and timeouts, stopping before MAIL: QUIT as soon
 *             as the server is ready for a transaction. Its failure class,
 *             status and reason are the ones delivery would record. A
 *             failing host moves on to the next (C10, C14, C19, C21).
 *
 * Exit status (relay_cli.h, danerelay(8)): 0 when delivery would be allowed
 * (one host passed); 1 when it would not because the policy, DNSSEC or the
 * server refused; 2 on a usage or configuration error; 3 on a temporary
 * failure (DNS lookup or connection failed, DNSSEC self-test failing,
 * deadline, local error). The reason is printed: failure class, enhanced
 * status, why.
 *
 * The probe needs no privileges and never opens the spool. Failure classes
 * come from relay_class.h, shared with delivery.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "relay_class.h"
#include "relay_cli.h"
#include "relay_conn.h"
#include "relay_deliver.h"
#include "relay_dns.h"
#include "relay_idn.h"
#include "relay_json.h"
#include "relay_log.h"
#include "relay_text.h"
#include "tlsa.h"

/* The whole probe (self-test, DNS, every session) ends within this. */
#define PROBE_DEADLINE_MS 120000u
#define PROBE_WHY_MAX 512


struct probe_host {
	int decide_rc; /* tlsa_policy_decide() */
	struct tlsa_verdict v;
	bool considered; /* reached in the walk (serve would too) */
	bool attempted;  /* a connection was started */
	bool connected;  /* TCP came up */
	char addr[INET6_ADDRSTRLEN];
	bool tls_tried; /* on_tls ran */
	struct tlsa_result tres;
	bool ok;         /* ready for MAIL under the verdict */
	bool tls_active; /* the session was encrypted when ready */
	enum relay_fail_class fclass;
	char dsn[TLSA_STATUS_MAX + 1];
	char why[PROBE_WHY_MAX];
	/* What the text output has shown of this host so far. */
	bool decided;       /* v / decide_rc are set */
	bool addr_ready;    /* its address answers are in */
	bool dns_complete;  /* every lookup it gets is in */
	bool shown_addr;    /* the "host" line */
	bool shown_dns;     /* its tlsa and verdict lines */
	bool shown_session; /* the session header (several hosts) */
	bool shown_connect;
	bool shown_tls;
	bool shown_result;
	/* MTA-STS for this host, as serve decides it. */
	enum relay_sts_use sts;
	bool sts_match;
	enum relay_fail_class sts_fclass; /* when REFUSE */
	char sts_why[PROBE_WHY_MAX];
};

struct probe {
	uv_loop_t loop;
	uv_timer_t wait_timer; /* self-test poll, then idle */
	uv_timer_t deadline;
	struct relay_config cfg;
	struct relay_dns *dns;
	struct tlsa_ctx *tlsa;
	struct tlsa_ctx *tlsa_sts; /* verify store: mta_sts_ca_file */
	/* MTA-STS: the policy cache (reads serve's files, writes none),
	 * the wait for the domain's answer, the answer (NULL: not asked). */
	struct relay_sts *sts;
	struct relay_sts_wait *sts_wait;
	struct relay_sts_answer *sts_ans;
	struct tlsa_digests digests;
	char domain[RELAY_DNS_HOST_MAX]; /* DNS form (A-labels) */
	const char *domain_utf8; /* the argument when UTF-8, else NULL */
	enum tlsa_level level;
	bool cleartext;                   /* explicit "none" policy */
	struct relay_class_policy policy; /* level, tls_policy_file entry */
	enum relay_dns_validation validation;

	struct relay_dns_result *res;
	bool resolved;
	int dest_rc;
	struct tlsa_dest_verdict dv;
	struct probe_host *hosts;
	size_t nhosts; /* entries of hosts */
	size_t host_i;

	/* Text output is written as the facts arrive (posttls-finger
	 * style), one flushed line at a time: what has been shown. */
	bool stream;
	bool shown_head;
	bool shown_sts; /* the mta-sts line */
	bool shown_mx;
	size_t shown_hosts; /* hosts whose DNS block is complete on screen */

	/* What the outbound session borrows (loop, cfg, tlsa), and the
	 * session in progress. */
	struct relay_deliver_ctx dctx;
	struct relay_outbound_probe *sess;

	/* Outcome. */
	bool finished;
	bool allowed;
	size_t allowed_host;
	enum relay_fail_class fclass; /* NONE until a failure */
	char dsn[TLSA_STATUS_MAX + 1];
	char why[PROBE_WHY_MAX];
};

static void probe_next_host(struct probe *p);
/* The text output, shown as it becomes known (see "output" below). */
static void show_head(struct probe *p);
static void show_dns(struct probe *p, const struct relay_dns_result *res,
    bool final);
static void show_session(struct probe *p, size_t i, bool final);

static void
probe_fail(struct probe *p, enum relay_fail_class fclass, const char *dsn,
    const char *why)
{
	p->fclass = fclass;
	relay_copy(p->dsn, sizeof(p->dsn), dsn);
	relay_copy(p->why, sizeof(p->why), why);
}

static void
host_fail(struct probe *p, struct probe_host *h, enum relay_fail_class fclass,
    const char *dsn, const char *why)
{
	h->fclass = fclass;
	relay_copy(h->dsn, sizeof(h->dsn), dsn);
	relay_copy(h->why, sizeof(h->why), why);
	/* As in serve: the last failure decides when no host is left. */
	probe_fail(p, fclass, dsn, why);
}

/* ------------------------------------------- classification (as serve) */


static const char *
answer_word(enum tlsa_answer a)
{
	switch (a) {
	case TLSA_ANSWER_DATA:
		return "data";
	case TLSA_ANSWER_NODATA:
		return "nodata";
	case TLSA_ANSWER_NXDOMAIN:
		return "nxdomain";
	case TLSA_ANSWER_ERROR:
		return "error";
	}
	return "?";
}


/* ------------------------------------------------------------- teardown */

static void
probe_finish(struct probe *p)
{
	if (p->finished)
		return;
	p->finished = true;
	/* Before the resolver: the cache cancels its own lookups; a fetch
	 * in flight is aborted and the loop runs until it has returned. */
	relay_sts_close(p->sts, NULL, NULL);
	p->sts = NULL;
	p->sts_wait = NULL;
	if (p->dns != NULL) {
		relay_dns_close(p->dns, NULL, NULL);
		p->dns = NULL;
	}
	uv_timer_stop(&p->wait_timer);
	uv_timer_stop(&p->deadline);
	if (!uv_is_closing((uv_handle_t *)&p->wait_timer))
		uv_close((uv_handle_t *)&p->wait_timer, NULL);
	if (!uv_is_closing((uv_handle_t *)&p->deadline))
		uv_close((uv_handle_t *)&p->deadline, NULL);
}

static void
deadline_cb(uv_timer_t *t)
{
	struct probe *p = t->data;
	probe_fail(p, RELAY_FAIL_CLASS_TIMEOUT, "4.4.7",
	    "probe did not finish in time");
	if (p->sess != NULL)
		relay_outbound_probe_cancel(p->sess); /* sess_done finishes */
	else
		probe_finish(p);
}

/* ------------------------------------------------------------- sessions */

/* The outbound session of the current host is over (closed). */
static void
sess_done(void *arg, const struct relay_outbound_result *res)
{
	struct probe *p = arg;
	struct probe_host *h = &p->hosts[p->host_i];
	p->sess = NULL;
	h->connected = res->connected;
	h->tls_tried = res->tls_tried;
	if (res->tls_tried)
		h->tres = res->tls;
	h->ok = res->ready;
	h->tls_active = res->encrypted;
	if (p->finished)
		return;
	if (h->ok) {
		p->allowed = true;
		p->allowed_host = p->host_i;
		show_session(p, p->host_i, true);
		probe_finish(p);
		return;
	}
	if (uv_is_closing((uv_handle_t *)&p->deadline) ||
	    !uv_is_active((uv_handle_t *)&p->deadline)) {
		/* The deadline passed and cancelled the session: the host
		 * says what the session met, the deadline decides. */
		h->fclass = res->fclass;
		relay_copy(h->dsn, sizeof(h->dsn), res->dsn);
		relay_copy(h->why, sizeof(h->why), res->why);
		show_session(p, p->host_i, true);
		probe_finish(p);
		return;
	}
	host_fail(p, h, res->fclass, res->dsn, res->why);
	show_session(p, p->host_i, true);
	p->host_i++;
	probe_next_host(p);
}

/* The session of the current host passed a step: show it at once. */
static void
sess_step(void *arg, enum relay_outbound_step step,
    const struct relay_outbound_result *res)
{
	struct probe *p = arg;
	struct probe_host *h = &p->hosts[p->host_i];
	switch (step) {
	case RELAY_OUTBOUND_STEP_CONNECTED:
		h->connected = res->connected;
		show_session(p, p->host_i, false);
		break;
	case RELAY_OUTBOUND_STEP_STARTTLS:
		show_session(p, p->host_i, false);
		if (p->stream)
			printf("  starttls: accepted, TLS handshake\n");
		break;
	case RELAY_OUTBOUND_STEP_TLS:
		h->tls_tried = true;
		h->tres = res->tls;
		show_session(p, p->host_i, false);
		break;
	}
}

/* Start a session to the first address of the current host. Returns true
 * when a session is under way (sess_done continues the walk). */
static bool
sess_start(struct probe *p)
{
	const struct relay_dns_host *dh = &p->res->hosts[p->host_i];
	struct probe_host *h = &p->hosts[p->host_i];
	const struct relay_dns_addr *a = &dh->addrs[0];
	if (inet_ntop(a->family, a->bytes, h->addr, sizeof(h->addr)) == NULL)
		relay_copy(h->addr, sizeof(h->addr), "?");
	h->attempted = true;
	const struct relay_outbound_target t = {
		.host = dh->name,
		.addr = a,
		.port = p->res->dest.port,
		.verdict = &h->v,
		.cleartext = p->cleartext,
		.step = sess_step,
		.sts = h->sts,
	};
	int r = relay_outbound_probe(&p->dctx, &t, sess_done, p, &p->sess);
	if (r == RELAY_CONN_NOMEM) {
		host_fail(p, h, RELAY_FAIL_CLASS_LOCAL, "4.3.0",
		    "out of memory");
		return false;
	}
	if (r != 0) {
		/* As delivery counts a socket it cannot create. */
		host_fail(p, h, RELAY_FAIL_CLASS_CONNECT, "4.4.1",
		    "cannot create socket");
		return false;
	}
	return true;
}

/* ---------------------------------------------------------- the decision */

/* Walk the hosts from host_i as deliver__dest_next() does. */
static void
probe_next_host(struct probe *p)
{
	for (; p->host_i < p->res->nhosts; p->host_i++) {
		const struct relay_dns_host *dh = &p->res->hosts[p->host_i];
		struct probe_host *h = &p->hosts[p->host_i];
		h->considered = true;
		if (h->decide_rc != 0) {
			/* Facts the policy cannot judge: never guess. */
			char why[PROBE_WHY_MAX];
			relay_fmt(why, sizeof(why),
			    "DANE policy error for %s: %s", dh->name,
			    tlsa_strerror(h->decide_rc));
			host_fail(p, h, RELAY_FAIL_CLASS_DNSSEC_BOGUS, "4.7.5",
			    why);
			show_session(p, p->host_i, true);
			continue;
		}
		if (h->sts == RELAY_STS_USE_REFUSE) {
			host_fail(p, h, h->sts_fclass, "4.7.5", h->sts_why);
			continue; /* RFC 8461 4.1, 4.2: not a policy MX */
		}
		if (h->v.kind == TLSA_VERDICT_DO_NOT_CONNECT) {
			char why[PROBE_WHY_MAX];
			relay_fmt(why, sizeof(why), "%s: %s", dh->name,
			    h->v.reason);
			host_fail(p, h,
			    relay_class_dns(h->v.fclass, p->res, dh),
			    h->v.status, why);
			show_session(p, p->host_i, true);
			if (h->v.scope == TLSA_SCOPE_DESTINATION)
				break;
			continue; /* C10, C14: skip this host */
		}
		if (dh->naddrs == 0) {
			char why[PROBE_WHY_MAX];
			relay_fmt(why, sizeof(why), "%s: no address", dh->name);
			host_fail(p, h, RELAY_FAIL_CLASS_DNS_LOOKUP, "4.4.3",
			    why);
			show_session(p, p->host_i, true);
			continue;
		}
		if (sess_start(p))
			return;
		show_session(p, p->host_i, true);
	}
	if (p->fclass == RELAY_FAIL_CLASS_NONE)
		probe_fail(p, RELAY_FAIL_CLASS_DNS_LOOKUP, "4.4.3",
		    "no usable MX host");
	probe_finish(p);
}

/* p->hosts for res's hosts (once). False when out of memory. */
static bool
probe_hosts_alloc(struct probe *p, const struct relay_dns_result *res)
{
	if (p->hosts != NULL || res->nhosts == 0)
		return true;
	p->hosts = calloc(res->nhosts, sizeof(*p->hosts));
	if (p->hosts == NULL)
		return false;
	p->nhosts = res->nhosts;
	return true;
}

/* The RFC 7672 decision for host i, once its facts are complete. It is
 * pure, so deciding each host as soon as its lookups are in equals serve's
 * deciding them in the walk. */
static void
decide_host(struct probe *p, const struct relay_dns_result *res, size_t i)
{
	struct probe_host *h = &p->hosts[i];
	if (h->decided)
		return;
	h->decide_rc = tlsa_policy_decide(&res->dest, &res->hosts[i].in,
	    &p->digests, &h->v);
	h->decided = true;
}

/* Progress of the destination lookups: show each answer as it arrives. */
static void
dns_progress_mx(void *arg, const struct relay_dns_result *res)
{
	struct probe *p = arg;
	if (probe_hosts_alloc(p, res))
		show_dns(p, res, false);
}

static void
dns_progress_addresses(void *arg, const struct relay_dns_result *res, size_t i)
{
	struct probe *p = arg;
	if (p->hosts == NULL || i >= p->nhosts)
		return;
	p->hosts[i].addr_ready = true;
	show_dns(p, res, false);
}

static void
dns_progress_host_done(void *arg, const struct relay_dns_result *res, size_t i)
{
	struct probe *p = arg;
	if (p->hosts == NULL || i >= p->nhosts)
		return;
	p->hosts[i].addr_ready = true;
	p->hosts[i].dns_complete = true;
	show_dns(p, res, false);
}

static const struct relay_dns_progress probe_dns_progress = {
	.mx = dns_progress_mx,
	.addresses = dns_progress_addresses,
	.host_done = dns_progress_host_done,
};

/* The MTA-STS answer, once it is known (text output). */
static void
show_sts(struct probe *p)
{
	if (!p->stream || p->sts_ans == NULL || p->shown_sts)
		return;
	p->shown_sts = true;
	const struct relay_sts_answer *a = p->sts_ans;
	if (a->outcome == RELAY_STS_OUTCOME_POLICY)
		printf("mta-sts policy mode=%s id=%s max_age=%u%s\n",
		    relay_sts_mode_name(a->policy.mode), a->id,
		    (unsigned)a->policy.max_age,
		    a->from_cache ? " (cached; refresh failed)" : "");
	else
		printf("mta-sts %s why=%s\n",
		    a->outcome == RELAY_STS_OUTCOME_NONE ? "none" : "failed",
		    a->why);
}

/* Apply the MTA-STS answer (if any) to every host, then walk them. */
static void
probe_hosts_start(struct probe *p)
{
	show_sts(p);
	for (size_t i = 0; p->sts_ans != NULL && i < p->res->nhosts; i++) {
		struct probe_host *h = &p->hosts[i];
		if (h->decide_rc != 0)
			continue;
		h->sts = relay_class_sts_host(p->sts_ans, p->domain,
		    p->res->hosts[i].name, &h->v, &h->sts_match, &h->sts_fclass,
		    h->sts_why, sizeof(h->sts_why));
	}
	p->host_i = 0;
	probe_next_host(p);
}

static void
sts_done(void *arg, const struct relay_sts_answer *ans)
{
	struct probe *p = arg;
	p->sts_wait = NULL;
	*p->sts_ans = *ans;
	probe_hosts_start(p);
}

static void
dns_done(void *arg, struct relay_dns_result *res)
{
	struct probe *p = arg;
	p->res = res;
	p->resolved = true;
	p->dest_rc = tlsa_policy_destination(&res->dest, &p->dv);
	if (p->dest_rc != 0) {
		probe_fail(p, RELAY_FAIL_CLASS_DNS_LOOKUP, "4.7.5",
		    "DANE policy error");
		probe_finish(p);
		return;
	}
	if (!probe_hosts_alloc(p, res)) {
		probe_fail(p, RELAY_FAIL_CLASS_LOCAL, "4.3.0", "out of memory");
		probe_finish(p);
		return;
	}
	/* Whatever the progress hooks did not show yet. */
	show_dns(p, res, true);
	switch (p->dv.action) {
	case TLSA_DEST_DEFER:
	case TLSA_DEST_BOUNCE: {
		char why[PROBE_WHY_MAX];
		relay_fmt(why, sizeof(why), "%s: %s", p->domain, p->dv.reason);
		probe_fail(p,
		    res->kind == RELAY_DNS_DEST_NULL_MX
		        ? RELAY_FAIL_CLASS_NULL_MX
		        : relay_class_dns(p->dv.fclass, res, NULL),
		    p->dv.status, why);
		probe_finish(p);
		return;
	}
	case TLSA_DEST_LITERAL:
		probe_fail(p, RELAY_FAIL_CLASS_ADDRESS, "5.1.2",
		    "address literal destinations are not supported");
		probe_finish(p);
		return;
	case TLSA_DEST_USE_MX:
	case TLSA_DEST_IMPLICIT:
		break;
	}
	/* The RFC 7672 decision of every host, in preference order. It is
	 * pure, so deciding all at once equals serve's one at a time. */
	for (size_t i = 0; i < res->nhosts; i++)
		decide_host(p, res, i);
	/* MTA-STS as serve asks it: level dane, and some host without
	 * DANE. */
	if (p->sts != NULL && p->cfg.mta_sts_enable &&
	    p->level == TLSA_LEVEL_DANE &&
	    relay_class_sts_wanted(res, &p->digests)) {
		p->sts_ans = malloc(sizeof(*p->sts_ans));
		int r = p->sts_ans == NULL
		    ? -1
		    : relay_sts_get(p->sts, p->domain, p->sts_ans, sts_done, p,
		          &p->sts_wait);
		if (r == 0)
			return; /* sts_done continues */
		if (r < 0) {
			probe_fail(p, RELAY_FAIL_CLASS_LOCAL, "4.3.0",
			    "MTA-STS policy cache unavailable");
			probe_finish(p);
			return;
		}
	}
	probe_hosts_start(p);
}

static void
probe_resolve(struct probe *p)
{
	p->validation = relay_dns_validation_state(p->dns);
	if (!relay_dns_validation_ok(p->dns) &&
	    (p->level == TLSA_LEVEL_DANE || p->level == TLSA_LEVEL_DANE_ONLY)) {
		/* As serve: nothing DANE-dependent goes out while the DNSSEC
		 * self-test fails (RFC 7672 2.1.1 C02). */
		probe_fail(p, RELAY_FAIL_CLASS_DNSSEC_SELFTEST, "4.7.5",
		    "DNSSEC validation self-test is failing; delivery deferred");
		probe_finish(p);
		return;
	}
	/* The self-test has spoken: the first line can go out. */
	show_head(p);
	struct relay_dns_req *req = NULL;
	int r = relay_dns_resolve(p->dns, p->domain, RELAY_SMTP_PORT, p->level,
	    dns_done, p, &req);
	if (r == 0)
		relay_dns_set_progress(req, &probe_dns_progress, p);
	if (r != 0) {
		probe_fail(p, RELAY_FAIL_CLASS_DNS_LOOKUP, "4.4.3",
		    relay_dns_strerror(r));
		probe_finish(p);
	}
}

static void
wait_cb(uv_timer_t *t)
{
	struct probe *p = t->data;
	if (relay_dns_validation_state(p->dns) == RELAY_DNS_VALIDATION_UNKNOWN)
		return; /* the first self-test is still running */
	uv_timer_stop(t);
	probe_resolve(p);
}

/* -------------------------------------------------------------- output */

static void
hex_str(const uint8_t *b, size_t n, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 3 <= size; i++, o += 2)
		snprintf(out + o, 3, "%02x", b[i]);
	out[o < size ? o : size - 1] = '\0';
}

static void
record_text(const struct tlsa_record *rec, char *out, size_t size)
{
	int w = snprintf(out, size, "%u %u %u ", rec->usage, rec->selector,
	    rec->mtype);
	if (w < 0 || (size_t)w >= size)
		return;
	hex_str(rec->data, rec->data_len, out + w, size - (size_t)w);
}

static const char *
mx_dnssec(const struct probe *p)
{
	if (!p->resolved)
		return "not-looked-up";
	return p->res->implicit_mx ? "none"
	                           : relay_class_dnssec_word(p->res->dest.mx);
}

static const char *
host_verdict_name(const struct probe_host *h)
{
	return h->decide_rc != 0 ? "policy-error"
	                         : tlsa_verdict_kind_name(h->v.kind);
}

/*
 * The text output. Every line goes out as soon as what it says is known,
 * as posttls-finger prints its steps, and stdout is line-buffered, so a
 * slow DNS answer or a stalled server shows where the probe waits: the
 * header once the DNSSEC self-test has spoken, the MX answer, each host's
 * addresses, then its TLSA answers and verdict (in preference order), then
 * each session's connect, STARTTLS, TLS/DANE check and result, and the
 * final line. The lines are those of the complete report; with several
 * hosts, a "session HOST" line heads the session lines of each host tried,
 * since they follow all the hosts' DNS lines. --json prints at the end.
 */
static void
show_head(struct probe *p)
{
	if (!p->stream || p->shown_head)
		return;
	p->shown_head = true;
	/* The level serve would apply, and the tls_policy_file entry that
	 * chose it (none when tls_security_level applies). */
	printf("domain %s policy=%s%s%s validation=%s\n", p->domain,
	    relay_tls_level_name(p->policy.level),
	    p->policy.entry[0] ? " policy_entry=" : "", p->policy.entry,
	    relay_dns_validation_name(p->validation));
	if (p->policy.dane_overridden)
		printf(
		    "DANE overridden by tls_policy_file %s: no TLSA lookups%s\n",
		    p->policy.entry,
		    p->cleartext ? ", cleartext without STARTTLS" : "");
	if (p->domain_utf8 != NULL)
		printf("idn %s = %s\n", p->domain_utf8, p->domain);
}

/* The MX answer and the destination's action: from the progress hook
 * (final false: shown only when the action can be decided) or from the
 * complete result. */
static bool
show_mx(struct probe *p, const struct relay_dns_result *res, bool final)
{
	struct tlsa_dest_verdict dv;
	if (p->shown_mx)
		return true;
	if (final)
		dv = p->dv;
	else if (tlsa_policy_destination(&res->dest, &dv) != 0)
		return false; /* dns_done shows it with its error */
	p->shown_mx = true;
	printf("mx dnssec=%s kind=%s%s hosts=%zu\n",
	    res->implicit_mx ? "none" : relay_class_dnssec_word(res->dest.mx),
	    relay_dns_dest_kind_name(res->kind),
	    res->implicit_mx ? " implicit" : "", res->nhosts);
	if (res->mx.why)
		printf("  why: %s\n", res->mx.why);
	printf("destination action=%s%s%s\n", tlsa_dest_action_name(dv.action),
	    dv.reason[0] ? " reason=" : "", dv.reason);
	return true;
}

static void
show_host_addresses(const struct relay_dns_host *dh)
{
	printf("host %u %s addr_dnssec=%s addresses=", (unsigned)dh->pref,
	    dh->name, relay_class_dnssec_word(dh->in.addr));
	for (size_t k = 0; k < dh->naddrs; k++) {
		char a[INET6_ADDRSTRLEN];
		if (inet_ntop(dh->addrs[k].family, dh->addrs[k].bytes, a,
		        sizeof(a)) == NULL)
			relay_copy(a, sizeof(a), "?");
		printf("%s%s", k ? "," : "", a);
	}
	printf("%s\n", dh->naddrs ? "" : "(none)");
}

static void
show_host_tlsa(struct probe *p, const struct relay_dns_result *res, size_t i)
{
	const struct relay_dns_host *dh = &res->hosts[i];
	const struct probe_host *h = &p->hosts[i];
	char buf[2048];
	for (size_t t = 0; t < dh->in.n_tlsa; t++) {
		const struct tlsa_tlsa_in *ti = &dh->in.tlsa[t];
		printf("  tlsa _%u._tcp.%s dnssec=%s answer=%s%s\n",
		    (unsigned)res->dest.port, ti->base,
		    relay_class_dnssec_word(ti->res),
		    answer_word(ti->res.answer),
		    ti->malformed ? " malformed" : "");
		for (size_t k = 0; k < ti->n_recs; k++) {
			record_text(&ti->recs[k], buf, sizeof(buf));
			printf("    %s\n", buf);
		}
	}
	if (dh->in.n_tlsa == 0)
		printf("  tlsa not looked up\n");
	if (h->decide_rc != 0)
		printf("  verdict: policy error: %s\n",
		    tlsa_strerror(h->decide_rc));
	else if (tlsa_verdict_format(&h->v, buf, sizeof(buf)) == 0 || buf[0])
		printf("  verdict: %s\n", buf);
}

/* The DNS lines known so far, hosts in preference order (a host's lines
 * wait for the hosts before it). final: the whole result is in. */
static void
show_dns(struct probe *p, const struct relay_dns_result *res, bool final)
{
	if (!p->stream)
		return;
	show_head(p);
	if (!show_mx(p, res, final) || p->hosts == NULL)
		return;
	while (p->shown_hosts < res->nhosts) {
		size_t i = p->shown_hosts;
		struct probe_host *h = &p->hosts[i];
		if (!h->shown_addr) {
			if (!final && !h->addr_ready)
				return;
			show_host_addresses(&res->hosts[i]);
			h->shown_addr = true;
		}
		if (!final && !h->dns_complete)
			return;
		decide_host(p, res, i);
		show_host_tlsa(p, res, i);
		h->shown_dns = true;
		p->shown_hosts++;
	}
}

/* Host i's session lines known so far; final: its outcome is decided. */
static void
show_session(struct probe *p, size_t i, bool final)
{
	struct probe_host *h = &p->hosts[i];
	char buf[2048];
	if (!p->stream)
		return;
	if (p->nhosts > 1 && !h->shown_session) {
		printf("session %s\n", p->res->hosts[i].name);
		h->shown_session = true;
	}
	if (!h->considered) {
		if (final && !h->shown_result)
			printf("  not tried\n");
		h->shown_result = final;
		return;
	}
	if (h->attempted && !h->shown_connect && (h->connected || final)) {
		printf("  connect %s:%u: %s\n", h->addr,
		    (unsigned)p->res->dest.port,
		    h->connected ? "connected" : "failed");
		h->shown_connect = true;
	}
	if (h->tls_tried && !h->shown_tls &&
	    (tlsa_result_format(&h->tres, buf, sizeof(buf)) == 0 || buf[0])) {
		printf("  tls: %s\n", buf);
		h->shown_tls = true;
	}
	if (!final || h->shown_result)
		return;
	h->shown_result = true;
	if (h->sts == RELAY_STS_USE_ENFORCE || h->sts == RELAY_STS_USE_TESTING)
		printf("  mta-sts: %s%s\n",
		    h->sts == RELAY_STS_USE_ENFORCE ? "enforce" : "testing",
		    h->sts_match ? "" : " (would fail: sts-mx-mismatch)");
	if (h->ok)
		printf("  result: ok, ready for MAIL (%s) tls=%s; QUIT sent\n",
		    h->tls_active ? "TLS" : "cleartext",
		    h->tls_tried ? relay_class_tls_word(h->sts, &h->tres)
		                 : "none");
	else
		printf("  result: failed class=%s dsn=%s why=%s\n",
		    relay_fail_class_name(h->fclass), h->dsn, h->why);
}

/* The rest of the report once the probe is over: anything not shown yet
 * (a deadline, an early failure), the hosts never tried, the outcome. */
static void
print_text(struct probe *p)
{
	show_head(p);
	if (p->resolved) {
		show_dns(p, p->res, true);
		for (size_t i = 0; p->hosts != NULL && i < p->res->nhosts; i++)
			show_session(p, i, true);
	}
	if (p->allowed)
		printf("delivery allowed via %s[%s]\n",
		    p->res->hosts[p->allowed_host].name,
		    p->hosts[p->allowed_host].addr);
	else
		printf("delivery NOT allowed: class=%s dsn=%s why=%s\n",
		    relay_fail_class_name(p->fclass), p->dsn, p->why);
}

static void
json_tls(struct relay_json *j, const struct tlsa_result *r)
{
	char hex[65];
	relay_json_obj_begin(j);
	relay_json_kv_bool(j, "ok", r->ok);
	relay_json_kv_str(j, "auth", tlsa_auth_name(r->auth));
	relay_json_kv_str(j, "trust", tlsa_trust_name(r->trust));
	relay_json_kv_i64(j, "depth", r->depth);
	relay_json_kv_str(j, "matched", r->matched);
	relay_json_kv_str(j, "peername", r->peername);
	if (r->have_spki) {
		hex_str(r->spki_sha256, sizeof(r->spki_sha256), hex,
		    sizeof(hex));
		relay_json_kv_str(j, "spki_sha256", hex);
	} else {
		relay_json_key(j, "spki_sha256");
		relay_json_null(j);
	}
	relay_json_kv_str(j, "subject", r->subject);
	relay_json_kv_str(j, "dns_names", r->dns_names);
	relay_json_kv_str(j, "protocol", r->protocol);
	relay_json_kv_str(j, "cipher", r->cipher);
	if (!r->ok) {
		relay_json_kv_str(j, "failure", tlsa_failure_name(r->fclass));
		relay_json_kv_i64(j, "x509_err", r->x509_err);
		relay_json_kv_str(j, "dsn", r->status);
		relay_json_kv_str(j, "why", r->why);
	}
	relay_json_obj_end(j);
}

static void
json_host(struct relay_json *j, const struct probe *p, size_t i)
{
	const struct relay_dns_host *dh = &p->res->hosts[i];
	const struct probe_host *h = &p->hosts[i];
	char buf[2048];
	relay_json_obj_begin(j);
	relay_json_kv_str(j, "name", dh->name);
	/* How MTA-STS applied to this host (serve's decision). */
	relay_json_kv_str(j, "mta_sts",
	    h->sts == RELAY_STS_USE_ENFORCE       ? "enforce"
	        : h->sts == RELAY_STS_USE_TESTING ? "testing"
	        : h->sts == RELAY_STS_USE_REFUSE  ? "refused"
	                                          : "off");
	relay_json_kv_u64(j, "pref", dh->pref);
	relay_json_kv_str(j, "dnssec_addr",
	    relay_class_dnssec_word(dh->in.addr));
	relay_json_key(j, "addresses");
	relay_json_arr_begin(j);
	for (size_t k = 0; k < dh->naddrs; k++) {
		char a[INET6_ADDRSTRLEN];
		if (inet_ntop(dh->addrs[k].family, dh->addrs[k].bytes, a,
		        sizeof(a)) != NULL)
			relay_json_str(j, a);
	}
	relay_json_arr_end(j);
	relay_json_key(j, "tlsa");
	relay_json_arr_begin(j);
	for (size_t t = 0; t < dh->in.n_tlsa; t++) {
		const struct tlsa_tlsa_in *ti = &dh->in.tlsa[t];
		relay_json_obj_begin(j);
		relay_json_kv_str(j, "base", ti->base);
		relay_json_kv_str(j, "dnssec",
		    relay_class_dnssec_word(ti->res));
		relay_json_kv_str(j, "answer", answer_word(ti->res.answer));
		relay_json_kv_bool(j, "malformed", ti->malformed);
		relay_json_key(j, "records");
		relay_json_arr_begin(j);
		for (size_t k = 0; k < ti->n_recs; k++) {
			record_text(&ti->recs[k], buf, sizeof(buf));
			relay_json_str(j, buf);
		}
		relay_json_arr_end(j);
		relay_json_obj_end(j);
	}
	relay_json_arr_end(j);
	relay_json_kv_str(j, "verdict", host_verdict_name(h));
	if (h->decide_rc == 0 &&
	    (tlsa_verdict_format(&h->v, buf, sizeof(buf)) == 0 || buf[0]))
		relay_json_kv_str(j, "decision", buf);
	relay_json_kv_bool(j, "considered", h->considered);
	relay_json_kv_bool(j, "connected", h->connected);
	if (h->attempted)
		relay_json_kv_str(j, "address", h->addr);
	relay_json_key(j, "tls");
	if (h->tls_tried)
		json_tls(j, &h->tres);
	else
		relay_json_null(j);
	relay_json_kv_bool(j, "ok", h->ok);
	if (h->considered && !h->ok) {
		relay_json_kv_str(j, "failure_class",
		    relay_fail_class_name(h->fclass));
		relay_json_kv_str(j, "dsn", h->dsn);
		relay_json_kv_str(j, "why", h->why);
	}
	relay_json_obj_end(j);
}

static int
print_json(const struct probe *p)
{
	struct relay_json j;
	relay_json_init(&j, stdout);
	relay_json_obj_begin(&j);
	relay_json_kv_str(&j, "domain", p->domain);
	if (p->domain_utf8 != NULL)
		relay_json_kv_str(&j, "domain_utf8", p->domain_utf8);
	relay_json_kv_str(&j, "policy", relay_tls_level_name(p->policy.level));
	relay_json_key(&j, "policy_entry");
	if (p->policy.entry[0])
		relay_json_str(&j, p->policy.entry);
	else
		relay_json_null(&j);
	relay_json_kv_bool(&j, "dane_overridden", p->policy.dane_overridden);
	relay_json_kv_bool(&j, "cleartext_allowed", p->cleartext);
	relay_json_kv_str(&j, "validation",
	    relay_dns_validation_name(p->validation));
	relay_json_kv_str(&j, "mx_dnssec", mx_dnssec(p));
	if (p->resolved) {
		relay_json_kv_str(&j, "mx_kind",
		    relay_dns_dest_kind_name(p->res->kind));
		relay_json_kv_bool(&j, "implicit_mx", p->res->implicit_mx);
		relay_json_kv_str(&j, "mx_why", p->res->mx.why);
		relay_json_kv_str(&j, "destination_action",
		    tlsa_dest_action_name(p->dv.action));
	}
	if (p->sts_ans != NULL) {
		const struct relay_sts_answer *a = p->sts_ans;
		relay_json_key(&j, "mta_sts");
		relay_json_obj_begin(&j);
		relay_json_kv_str(&j, "outcome",
		    relay_sts_outcome_name(a->outcome));
		if (a->outcome == RELAY_STS_OUTCOME_POLICY) {
			relay_json_kv_str(&j, "mode",
			    relay_sts_mode_name(a->policy.mode));
			relay_json_kv_str(&j, "id", a->id);
			relay_json_kv_u64(&j, "max_age", a->policy.max_age);
			relay_json_kv_bool(&j, "from_cache", a->from_cache);
		} else {
			relay_json_kv_str(&j, "why", a->why);
		}
		relay_json_obj_end(&j);
	}
	relay_json_key(&j, "hosts");
	relay_json_arr_begin(&j);
	for (size_t i = 0;
	     p->resolved && p->hosts != NULL && i < p->res->nhosts; i++)
		json_host(&j, p, i);
	relay_json_arr_end(&j);
	relay_json_kv_bool(&j, "allowed", p->allowed);
	if (p->allowed) {
		relay_json_kv_str(&j, "via",
		    p->res->hosts[p->allowed_host].name);
		relay_json_kv_str(&j, "via_address",
		    p->hosts[p->allowed_host].addr);
	} else {
		relay_json_kv_str(&j, "failure_class",
		    relay_fail_class_name(p->fclass));
		relay_json_kv_str(&j, "dsn", p->dsn);
		relay_json_kv_str(&j, "why", p->why);
	}
	relay_json_obj_end(&j);
	int r = relay_json_finish(&j);
	if (putchar('\n') == EOF)
		r = -1;
	return r;
}

/* ------------------------------------------------------------ command */

static void
walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static const char probe_synopsis[] =
    "danerelay probe [-c FILE] [--json] DOMAIN";

/*
 * The exit status for an outcome that did not allow delivery: 3 when the
 * deciding failure is one a later attempt may not meet (DNS or connection
 * trouble, the DNSSEC self-test failing, the deadline, a local error, a
 * 4xx reply), 1 for every other class: the policy, DNSSEC or the server
 * refused. Every class is listed (STYLE 3): a new class does not build
 * until it is placed, so it can never make a refusal look transient by
 * accident.
 */
static int
probe_refusal_exit(enum relay_fail_class fclass)
{
	switch (fclass) {
	case RELAY_FAIL_CLASS_DNS_LOOKUP:
	case RELAY_FAIL_CLASS_TLSA_LOOKUP:
	case RELAY_FAIL_CLASS_DNSSEC_SELFTEST:
	case RELAY_FAIL_CLASS_CONNECT:
	case RELAY_FAIL_CLASS_TIMEOUT:
	case RELAY_FAIL_CLASS_LOCAL:
	case RELAY_FAIL_CLASS_SMTP_4XX:
		return RELAY_PROBE_EXIT_TEMPFAIL;
	case RELAY_FAIL_CLASS_DNSSEC_BOGUS:
	case RELAY_FAIL_CLASS_TLSA_INVALID:
	case RELAY_FAIL_CLASS_DANE_REQUIRED:
	case RELAY_FAIL_CLASS_NULL_MX:
	case RELAY_FAIL_CLASS_STARTTLS_MISSING:
	case RELAY_FAIL_CLASS_TLS_HANDSHAKE:
	case RELAY_FAIL_CLASS_TLSA_MISMATCH:
	case RELAY_FAIL_CLASS_CERT_HOST_MISMATCH:
	case RELAY_FAIL_CLASS_CERT_EXPIRED:
	case RELAY_FAIL_CLASS_CERT_NOT_TRUSTED:
	case RELAY_FAIL_CLASS_STS_MX_MISMATCH:
	case RELAY_FAIL_CLASS_STS_CERTIFICATE:
	case RELAY_FAIL_CLASS_STS_STARTTLS_MISSING:
	case RELAY_FAIL_CLASS_STS_POLICY_FETCH:
	case RELAY_FAIL_CLASS_SMTP_5XX:
	case RELAY_FAIL_CLASS_SMTP_PROTOCOL:
	case RELAY_FAIL_CLASS_SMTPUTF8_MISSING:
	case RELAY_FAIL_CLASS_MESSAGE_SIZE:
	case RELAY_FAIL_CLASS_REQUIRETLS:
	case RELAY_FAIL_CLASS_ADDRESS:
	case RELAY_FAIL_CLASS_SHUTDOWN:
	/* Neither is ever the outcome of a probe that did not allow
	 * delivery; were one, it would count as a refusal. */
	case RELAY_FAIL_CLASS_NONE:
	case RELAY_FAIL_CLASS_UNKNOWN:
		break;
	}
	return RELAY_PROBE_EXIT_REFUSED;
}

int
relay_cli_probe(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sub_conf = NULL;
	const char *domain_arg = NULL;
	bool json = false;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			sub_conf = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			return relay_cli_help(probe_synopsis);
		default:
			return relay_cli_bad_option("probe", probe_synopsis, c,
			    argv);
		}
	}
	if (argc - optind != 1)
		return relay_cli_usage("probe", "%s; usage: %s",
		    optind == argc ? "missing DOMAIN" : "only one DOMAIN",
		    probe_synopsis);
	domain_arg = argv[optind];

	struct probe *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		fprintf(stderr, "danerelay probe: out of memory\n");
		return RELAY_PROBE_EXIT_TEMPFAIL;
	}
	if (relay_cli_load_config("probe", sub_conf, &p->cfg) != 0) {
		free(p);
		return RELAY_PROBE_EXIT_USAGE;
	}
	/* The destination serve would form from a recipient at this domain:
	 * A-labels for a UTF-8 name (relay_idn.h). */
	const char *idn_why;
	int idn_rc = relay_idn_to_ascii(domain_arg,
	    p->cfg.smtputf8_enable ? RELAY_IDN_ALLOW_UTF8 : 0, p->domain,
	    &idn_why);
	if (idn_rc != 0) {
		relay_config_free(&p->cfg);
		free(p);
		if (relay_idn_is_ascii(domain_arg))
			return relay_cli_usage("probe", "not a domain name: %s",
			    domain_arg);
		return relay_cli_usage("probe", "%s: %s: %s", domain_arg,
		    relay_idn_strerror(idn_rc), idn_why);
	}
	p->domain_utf8 = relay_idn_is_ascii(domain_arg) ? NULL : domain_arg;
	/* The log goes to stderr; only problems unless debugging. */
	relay_log_set_level(p->cfg.log_level == RELAY_CONFIG_LOG_DEBUG
	        ? RELAY_LOG_DEBUG
	        : RELAY_LOG_WARNING);
	signal(SIGPIPE, SIG_IGN);

	int rc = RELAY_PROBE_EXIT_TEMPFAIL;
	relay_class_policy(&p->cfg, p->domain,
	    relay_clock_wall_us(relay_clock_system()), &p->policy, NULL);
	p->level = p->policy.tlsa_level;
	p->cleartext = p->policy.cleartext;
	tlsa_digests_default(&p->digests); /* as serve */
	if (uv_loop_init(&p->loop) != 0) {
		fprintf(stderr,
		    "danerelay probe: cannot create the event loop\n");
		relay_config_free(&p->cfg);
		free(p);
		return RELAY_PROBE_EXIT_TEMPFAIL;
	}
	struct tlsa_ctx_config tc = {
		.digests = &p->digests,
		.ca_file = p->cfg.tls_ca_file[0] ? p->cfg.tls_ca_file : NULL,
	};
	int r = tlsa_ctx_new(&tc, &p->tlsa);
	if (r != 0) {
		/* tls_ca_file or the TLS library: the configuration's to fix. */
		fprintf(stderr, "danerelay probe: TLS client setup: %s\n",
		    tlsa_strerror(r));
		rc = RELAY_PROBE_EXIT_USAGE;
		goto out_loop;
	}
	struct tlsa_ctx_config tcs = {
		.digests = &p->digests,
		.ca_file =
		    p->cfg.mta_sts_ca_file[0] ? p->cfg.mta_sts_ca_file : NULL,
	};
	r = tlsa_ctx_new(&tcs, &p->tlsa_sts);
	if (r != 0) {
		fprintf(stderr,
		    "danerelay probe: TLS client setup (mta_sts_ca_file): %s\n",
		    tlsa_strerror(r));
		rc = RELAY_PROBE_EXIT_USAGE;
		goto out_loop;
	}
	struct relay_dns_opts o;
	relay_dns_opts_from_config(&o, &p->cfg);
	r = relay_dns_new(&p->loop, &o, &p->dns);
	if (r == 0) {
		r = relay_dns_start(p->dns);
		if (r != 0) {
			relay_dns_close(p->dns, NULL, NULL);
			p->dns = NULL;
		}
	} else {
		p->dns = NULL;
	}
	if (r != 0) {
		/* The resolver options (trust anchor, resolver file, forwarders)
		 * come from the configuration. */
		fprintf(stderr, "danerelay probe: resolver: %s\n",
		    relay_dns_strerror(r));
		rc = RELAY_PROBE_EXIT_USAGE;
		goto out_loop;
	}
	p->dctx = (struct relay_deliver_ctx){
		.loop = &p->loop,
		.clock = relay_clock_system(),
		.cfg = &p->cfg,
		.dns = &p->dns,
		.tlsa = p->tlsa,
		.tlsa_sts = p->tlsa_sts,
		.digests = &p->digests,
	};
	/* Text goes out line by line as the probe learns it (show_head()):
	 * flushed per line even into a pipe or a file. */
	p->stream = !json;
	if (p->stream && setvbuf(stdout, NULL, _IOLBF, 0) != 0)
		fprintf(stderr, "danerelay probe: cannot line-buffer stdout\n");
	if (p->cfg.mta_sts_enable) {
		/* serve's cache, read only: a probe run as another user must
		 * not leave files serve cannot read. */
		char dir[4200];
		relay_fmt(dir, sizeof(dir), "%s/mta-sts", p->cfg.spool_dir);
		struct relay_sts_ctx sc = {
			.loop = &p->loop,
			.clock = relay_clock_system(),
			.dns = &p->dns,
			.cache_dir = dir,
			.ca_file = p->cfg.mta_sts_ca_file,
			.timeout_ms = p->cfg.mta_sts_timeout_ms,
			.check_interval_ms = p->cfg.mta_sts_check_interval_ms,
			.read_only = true,
		};
		if (relay_sts_new(&sc, &p->sts) != 0) {
			fprintf(stderr,
			    "danerelay probe: MTA-STS policy cache "
			    "unavailable\n");
			rc = RELAY_PROBE_EXIT_TEMPFAIL;
			goto out_loop;
		}
	}
	uv_timer_init(&p->loop, &p->wait_timer);
	uv_timer_init(&p->loop, &p->deadline);
	p->wait_timer.data = p;
	p->deadline.data = p;
	uv_timer_start(&p->deadline, deadline_cb, PROBE_DEADLINE_MS, 0);
	/* Wait for the first self-test verdict (as serve's scheduler does). */
	uv_timer_start(&p->wait_timer, wait_cb, 0, 50);
	uv_run(&p->loop, UV_RUN_DEFAULT);

	if (json) {
		if (print_json(p) != 0)
			fprintf(stderr, "danerelay probe: write error\n");
	} else {
		print_text(p);
	}
	if (fflush(stdout) != 0)
		fprintf(stderr, "danerelay probe: write error\n");
	rc = p->allowed ? RELAY_PROBE_EXIT_ALLOWED
	                : probe_refusal_exit(p->fclass);

out_loop:
	if (p->dns != NULL) {
		relay_dns_close(p->dns, NULL, NULL);
		p->dns = NULL;
	}
	uv_walk(&p->loop, walk_close, NULL);
	uv_run(&p->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&p->loop) != 0)
		fprintf(stderr,
		    "danerelay probe: event loop not empty at exit\n");
	for (size_t i = 0; p->hosts != NULL && i < p->nhosts; i++)
		tlsa_verdict_release(&p->hosts[i].v);
	free(p->hosts);
	relay_dns_result_free(p->res);
	free(p->sts_ans);
	tlsa_ctx_free(p->tlsa_sts);
	tlsa_ctx_free(p->tlsa);
	relay_config_free(&p->cfg);
	free(p);
	return rc;
}
