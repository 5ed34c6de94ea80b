/*
 * relay_tlsrpt_send: mailing and posting the reports of a finished day.
 *
 * A run takes one day: it reads that day's journal and the day's sent
 * state on the thread pool, then, one policy domain after the other, looks
 * up _smtp._tls.<domain> TXT through the validating resolver (RFC 8460 3:
 * exactly one record starting "v=TLSRPTv1", else the domain does not
 * want reports; a bogus or failed answer is retried later, never guessed
 * at), and delivers the report to every rua:
 *   mailto:  the 5.3 mail, queued with the submit hook (the queue retries);
 *   https:   the gzip'ed JSON POSTed with libcurl on the thread pool
 *            (5.2: Content-Type application/tlsrpt+gzip; PKIX validation
 *            with the system CAs or tlsrpt_ca_file; the host's address
 *            from the validating resolver).
 * At the end the state file spool_dir/tlsrpt/sent-DAY is replaced: one
 * line per domain and target, "DOMAIN TARGET STATUS ATTEMPTS DETAIL"
 * (tab-separated), then "end RUN". A later automatic run skips what is
 * final there (sent, no-record, bad-record) and tries failures again, up
 * to SEND_ATTEMPTS_MAX times, every SEND_RETRY_S. `tlsrpt send` runs a
 * day in full whatever the state says.
 *
 * The daily run starts after each UTC midnight plus a random delay of up
 * to SEND_DELAY_MAX_S (RFC 8460 4.1: spread the load of the receivers).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/rand.h>
#include <unbound.h>

#include "danerelay_version.h"
#include "relay_dns.h"
#include "relay_log.h"
#include "relay_queue.h"
#include "relay_text.h"
#include "relay_tlsrpt.h"

#define SEND_DELAY_MAX_S 3600
#define SEND_RETRY_S 900
#define SEND_ATTEMPTS_MAX 5
#define SEND_CATCHUP_MAX_S 300
#define HTTPS_TIMEOUT_S 60
#define DNS_TYPE_TXT 16

enum step {
	STEP_LOAD,
	STEP_POST,
	STEP_SAVE,
};

struct prev {
	char *domain, *target, *status;
	unsigned attempts;
};

struct run {
	struct relay_tlsrpt_sender *s;
	long id;
	char day[RELAY_TLSRPT_DAY_SIZE];
	bool manual;
	struct relay_tlsrpt_table t;
	struct prev *prev;
	size_t nprev;
	const char **domains;
	size_t ndomains, next;
	/* the domain in progress */
	const char *domain;
	struct relay_tlsrpt_record rec;
	size_t rua_i;
	char *json;
	size_t jlen;
	uint8_t *gz;
	size_t gzlen;
	struct relay_dns_query *q;
	/* state lines of this run */
	char *state;
	size_t state_len, state_cap;
	bool retry_left;
	/* thread-pool step */
	enum step step;
	uv_work_t work;
	char url[512], resolve[600], ca_file[4096];
	long http_code;
	int err;
	char why[300];
};

struct relay_tlsrpt_sender {
	struct relay_tlsrpt_send_ctx ctx;
	char dir[4096];
	uv_timer_t timer;
	struct run *run;
	long next_id;
	bool stopping;
};

static void run_next_domain(struct run *r);
static void run_next_rua(struct run *r);

/* ------------------------------------------------------------ helpers */

static void
state_add(struct run *r, const char *domain, const char *target,
    const char *status, unsigned attempts, const char *detail)
{
	char line[1400], clean[600];
	relay_copy(clean, sizeof(clean), detail);
	for (char *c = clean; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = ' ';
	int n = snprintf(line, sizeof(line), "%s\t%s\t%s\t%u\t%s\n", domain,
	    target, status, attempts, clean);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (r->state_len + (size_t)n > r->state_cap) {
		size_t nc = (r->state_cap + (size_t)n) * 2;
		char *p = realloc(r->state, nc);
		if (p == NULL)
			return;
		r->state = p;
		r->state_cap = nc;
	}
	memcpy(r->state + r->state_len, line, (size_t)n);
	r->state_len += (size_t)n;
	if (strcmp(status, "failed") == 0 || strcmp(status, "dns-error") == 0)
		if (attempts < SEND_ATTEMPTS_MAX)
			r->retry_left = true;
	struct relay_log_line l;
	bool bad =
	    strcmp(status, "failed") == 0 || strcmp(status, "dns-error") == 0;
	if (relay_log_begin(&l, bad ? RELAY_LOG_WARNING : RELAY_LOG_INFO,
	        "tlsrpt-send")) {
		relay_log_str(&l, "day", r->day);
		relay_log_str(&l, "domain", domain);
		relay_log_str(&l, "to", target);
		relay_log_str(&l, "status", status);
		if (detail[0])
			relay_log_str(&l, "detail", detail);
		relay_log_end(&l);
	}
}

static const struct prev *
prev_find(const struct run *r, const char *domain, const char *target)
{
	for (size_t i = 0; i < r->nprev; i++)
		if (strcmp(r->prev[i].domain, domain) == 0 &&
		    strcmp(r->prev[i].target, target) == 0)
			return &r->prev[i];
	return NULL;
}

static bool
final_status(const char *s)
{
	return strcmp(s, "sent") == 0 || strcmp(s, "no-record") == 0 ||
	    strcmp(s, "bad-record") == 0;
}

/* Whether an automatic run has nothing left to do for domain. */
static bool
domain_done(const struct run *r, const char *domain)
{
	bool any = false;
	for (size_t i = 0; i < r->nprev; i++) {
		if (strcmp(r->prev[i].domain, domain) != 0)
			continue;
		any = true;
		if (!final_status(r->prev[i].status) &&
		    r->prev[i].attempts < SEND_ATTEMPTS_MAX)
			return false;
	}
	return any;
}

static unsigned
attempts_of(const struct run *r, const char *domain, const char *target)
{
	const struct prev *p = prev_find(r, domain, target);
	return p != NULL ? p->attempts : 0;
}

static void
run_free(struct run *r)
{
	relay_tlsrpt_table_free(&r->t);
	for (size_t i = 0; i < r->nprev; i++) {
		free(r->prev[i].domain);
		free(r->prev[i].target);
		free(r->prev[i].status);
	}
	free(r->prev);
	free(r->domains);
	free(r->json);
	free(r->gz);
	free(r->state);
	free(r);
}

/* ---------------------------------------------------- thread pool */

static void
load_prev(struct run *r)
{
	char path[4200];
	relay_fmt(path, sizeof(path), "%s/sent-%s", r->s->dir, r->day);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return;
	char line[1600];
	while (fgets(line, sizeof(line), f) != NULL) {
		char *fld[5];
		size_t n = 0;
		char *p = line;
		line[strcspn(line, "\n")] = '\0';
		while (n < 5) {
			fld[n++] = p;
			char *tab = strchr(p, '\t');
			if (tab == NULL)
				break;
			*tab = '\0';
			p = tab + 1;
		}
		if (n < 4)
			continue; /* "end RUN" */
		struct prev *np =
		    realloc(r->prev, (r->nprev + 1) * sizeof(*np));
		if (np == NULL)
			break;
		r->prev = np;
		struct prev *e = &r->prev[r->nprev];
		e->domain = strdup(fld[0]);
		e->target = strdup(fld[1]);
		e->status = strdup(fld[2]);
		e->attempts = (unsigned)strtoul(fld[3], NULL, 10);
		if (e->domain == NULL || e->target == NULL ||
		    e->status == NULL) {
			free(e->domain);
			free(e->target);
			free(e->status);
			break;
		}
		r->nprev++;
	}
	fclose(f);
}

static size_t
discard_body(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* RFC 8460 5.2: POST the gzip'ed report; 2xx is success. */
static void
post(struct run *r)
{
	CURL *c = curl_easy_init();
	if (c == NULL) {
		r->err = -1;
		relay_copy(r->why, sizeof(r->why), "curl_easy_init failed");
		return;
	}
	struct curl_slist *h = NULL;
	h = curl_slist_append(h, "Content-Type: application/tlsrpt+gzip");
	curl_easy_setopt(c, CURLOPT_URL, r->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (r->ca_file[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, r->ca_file);
	struct curl_slist *res = NULL;
	if (r->resolve[0]) {
		res = curl_slist_append(res, r->resolve);
		curl_easy_setopt(c, CURLOPT_RESOLVE, res);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)r->gz);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)r->gzlen);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "danerelay/" DANERELAY_VERSION);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)HTTPS_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
	CURLcode cr = curl_easy_perform(c);
	r->http_code = 0;
	if (cr == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->http_code);
	if (cr != CURLE_OK) {
		r->err = -1;
		relay_copy(r->why, sizeof(r->why), curl_easy_strerror(cr));
	} else if (r->http_code < 200 || r->http_code > 299) {
		r->err = -1;
		relay_fmt(r->why, sizeof(r->why), "HTTP status %ld",
		    r->http_code);
	} else {
		r->err = 0;
		relay_fmt(r->why, sizeof(r->why), "HTTP status %ld",
		    r->http_code);
	}
	curl_slist_free_all(h);
	curl_slist_free_all(res);
	curl_easy_cleanup(c);
}

static void
save(struct run *r)
{
	char tmp[4200], path[4200];
	relay_fmt(tmp, sizeof(tmp), "%s/sent-%s.tmp", r->s->dir, r->day);
	relay_fmt(path, sizeof(path), "%s/sent-%s", r->s->dir, r->day);
	char end[64];
	int en = snprintf(end, sizeof(end), "end\t%ld\n", r->id);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	r->err = fd < 0 ? -errno : 0;
	if (fd >= 0) {
		if ((r->state_len > 0 &&
		        write(fd, r->state, r->state_len) !=
		            (ssize_t)r->state_len) ||
		    write(fd, end, (size_t)en) != en || fsync(fd) != 0)
			r->err = -EIO;
		close(fd);
	}
	if (r->err == 0 && rename(tmp, path) != 0)
		r->err = -errno;
	if (r->err != 0)
		relay_fmt(r->why, sizeof(r->why), "cannot write %s: %s", path,
		    strerror(-r->err));
}

static void
work_cb(uv_work_t *w)
{
	struct run *r = w->data;
	switch (r->step) {
	case STEP_LOAD:
		r->err = relay_tlsrpt_table_read_day(&r->t, r->s->dir, r->day,
		    r->why, sizeof(r->why));
		load_prev(r);
		break;
	case STEP_POST:
		post(r);
		break;
	case STEP_SAVE:
		save(r);
		break;
	}
}

/* -------------------------------------------------------- the loop */

static void schedule(struct relay_tlsrpt_sender *s, uint64_t delay_s);
static void after_work(uv_work_t *w, int status);

static void
queue_step(struct run *r, enum step step)
{
	r->step = step;
	r->work.data = r;
	if (uv_queue_work(r->s->ctx.loop, &r->work, work_cb, after_work) != 0) {
		/* Only an invalid request fails: treat it like a failed
		 * step. */
		r->err = -1;
		relay_copy(r->why, sizeof(r->why), "cannot queue work");
		after_work(&r->work, 0);
	}
}

static void
sender_closed(uv_handle_t *h)
{
	free(h->data);
	curl_global_cleanup();
}

static void
run_end(struct run *r)
{
	struct relay_tlsrpt_sender *s = r->s;
	s->run = NULL;
	bool retry = r->retry_left && !r->manual;
	run_free(r);
	if (s->stopping) {
		if (!uv_is_closing((uv_handle_t *)&s->timer))
			uv_close((uv_handle_t *)&s->timer, sender_closed);
		return;
	}
	if (retry)
		schedule(s, SEND_RETRY_S);
	else
		schedule(s, 0);
}

static void
after_work(uv_work_t *w, int status)
{
	struct run *r = w->data;
	if (status != 0) {
		r->err = -1;
		relay_copy(r->why, sizeof(r->why), "cancelled");
	}
	switch (r->step) {
	case STEP_LOAD:
		if (r->err != 0) {
			relay_log_msg(RELAY_LOG_ERROR, "tlsrpt-send", r->why);
			run_end(r);
			return;
		}
		if (relay_tlsrpt_domains(&r->t, r->day, &r->domains,
		        &r->ndomains) != 0) {
			run_end(r);
			return;
		}
		run_next_domain(r);
		return;
	case STEP_POST: {
		const struct relay_tlsrpt_rua *u = &r->rec.rua[r->rua_i];
		unsigned att = attempts_of(r, r->domain, u->uri) + 1;
		state_add(r, r->domain, u->uri, r->err == 0 ? "sent" : "failed",
		    att, r->why);
		r->rua_i++;
		run_next_rua(r);
		return;
	}
	case STEP_SAVE:
		if (r->err != 0)
			relay_log_msg(RELAY_LOG_ERROR, "tlsrpt-send", r->why);
		run_end(r);
		return;
	}
}

static void
mail_to(struct run *r, const struct relay_tlsrpt_rua *u)
{
	const struct relay_config *cfg = r->s->ctx.cfg;
	char contact[600], from[600];
	struct relay_tlsrpt_meta meta =
	    relay_tlsrpt_meta_from_config(cfg, contact, sizeof(contact));
	if (cfg->tlsrpt_sender[0])
		relay_copy(from, sizeof(from), cfg->tlsrpt_sender);
	else
		relay_fmt(from, sizeof(from), "postmaster@%s", cfg->myhostname);
	uint64_t seed = 0;
	if (RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1)
		seed = relay_clock_mono_us(r->s->ctx.clock);
	char *msg = NULL;
	size_t len = 0;
	unsigned att = attempts_of(r, r->domain, u->uri) + 1;
	time_t now = (time_t)(relay_clock_wall_us(r->s->ctx.clock) / 1000000u);
	if (relay_tlsrpt_mail(&meta, r->day, r->domain, from, u->uri, r->gz,
	        r->gzlen, now, seed, &msg, &len) != 0) {
		state_add(r, r->domain, u->uri, "failed", att,
		    "cannot compose the mail");
		return;
	}
	/* The null sender would do as for a DSN, but a report is not
	 * one: it comes from the operator's address, with NOTIFY=NEVER so a
	 * rua that does not take mail makes no bounce loop. */
	int e = r->s->ctx.submit(r->s->ctx.arg, from, u->uri,
	    (const uint8_t *)msg, len);
	free(msg);
	char d[128];
	relay_fmt(d, sizeof(d), e == 0 ? "queued" : "queue error %d", e);
	state_add(r, r->domain, u->uri, e == 0 ? "sent" : "failed", att, d);
}

/* The https rua's host address, from the validating resolver. */
static void
https_addr_answer(void *arg, const struct relay_dns_answer *ans)
{
	struct run *r = arg;
	r->q = NULL;
	const struct relay_tlsrpt_rua *u = &r->rec.rua[r->rua_i];
	unsigned att = attempts_of(r, r->domain, u->uri) + 1;
	if (r->s->stopping) {
		state_add(r, r->domain, u->uri, "failed", att, "stopping");
		r->rua_i++;
		run_next_rua(r);
		return;
	}
	char addr[INET6_ADDRSTRLEN] = "";
	if (ans->st.kind == RELAY_DNS_DATA && ans->ub != NULL &&
	    ans->ub->data[0] != NULL) {
		if (ans->qtype == RELAY_DNS_TYPE_A && ans->ub->len[0] == 4)
			inet_ntop(AF_INET, ans->ub->data[0], addr,
			    sizeof(addr));
		else if (ans->ub->len[0] == 16)
			inet_ntop(AF_INET6, ans->ub->data[0], addr,
			    sizeof(addr));
	}
	if (addr[0] == '\0') {
		if (ans->qtype == RELAY_DNS_TYPE_A &&
		    relay_dns_status_usable(&ans->st) &&
		    *r->s->ctx.dns != NULL) {
			/* No A: try AAAA. */
			if (relay_dns_lookup(*r->s->ctx.dns, ans->qname,
			        RELAY_DNS_TYPE_AAAA, https_addr_answer, r,
			        &r->q) == 0)
				return;
		}
		char d[200];
		relay_fmt(d, sizeof(d), "no address for the host (%s %s)",
		    relay_dns_sec_name(ans->st.sec),
		    relay_dns_kind_name(ans->st.kind));
		state_add(r, r->domain, u->uri, "failed", att, d);
		r->rua_i++;
		run_next_rua(r);
		return;
	}
	/* The host and port of the URL, pinned to the validated address
	 * (CURLOPT_RESOLVE): curl still checks the certificate against the
	 * host name. */
	const char *h = u->uri + 8;
	size_t hl = strcspn(h, ":/?#");
	unsigned port = 443;
	if (h[hl] == ':')
		port = (unsigned)strtoul(h + hl + 1, NULL, 10);
	relay_fmt(r->resolve, sizeof(r->resolve), "%.*s:%u:%s%s%s", (int)hl, h,
	    port, strchr(addr, ':') ? "[" : "", addr,
	    strchr(addr, ':') ? "]" : "");
	relay_copy(r->url, sizeof(r->url), u->uri);
	relay_copy(r->ca_file, sizeof(r->ca_file),
	    r->s->ctx.cfg->tlsrpt_ca_file);
	queue_step(r, STEP_POST);
}

static void
post_to(struct run *r, const struct relay_tlsrpt_rua *u)
{
	const char *h = u->uri + 8;
	size_t hl = strcspn(h, ":/?#");
	char host[RELAY_DNS_HOST_MAX];
	unsigned att = attempts_of(r, r->domain, u->uri) + 1;
	if (hl == 0 || relay_dns_host_normalize(h, hl, host) != 0) {
		state_add(r, r->domain, u->uri, "bad-record", att,
		    "not a host name in the URI");
		r->rua_i++;
		run_next_rua(r);
		return;
	}
	struct relay_dns *dns = *r->s->ctx.dns;
	if (dns == NULL ||
	    relay_dns_lookup(dns, host, RELAY_DNS_TYPE_A, https_addr_answer, r,
	        &r->q) != 0) {
		state_add(r, r->domain, u->uri, "failed", att,
		    "cannot start the address lookup");
		r->rua_i++;
		run_next_rua(r);
	}
}

static void
run_next_rua(struct run *r)
{
	if (r->s->stopping) {
		/* Nothing new once the daemon stops (the queue is closing):
		 * the state says what was done. */
		r->next = r->ndomains;
		queue_step(r, STEP_SAVE);
		return;
	}
	while (r->rua_i < r->rec.nrua) {
		const struct relay_tlsrpt_rua *u = &r->rec.rua[r->rua_i];
		const struct prev *p = prev_find(r, r->domain, u->uri);
		if (!r->manual && p != NULL &&
		    (final_status(p->status) ||
		        p->attempts >= SEND_ATTEMPTS_MAX)) {
			/* Done before: carry the line over. */
			state_add(r, r->domain, u->uri, p->status, p->attempts,
			    "");
			r->rua_i++;
			continue;
		}
		if (u->kind == RELAY_TLSRPT_RUA_HTTPS) {
			post_to(r, u);
			return;
		}
		mail_to(r, u);
		r->rua_i++;
	}
	r->next++;
	run_next_domain(r);
}

/* The text of the TXT record in rdata (RFC 1035 3.3.14: its character
 * strings joined, RFC 8460 3). Returns its length or -1. */
static int
txt_join(const uint8_t *p, size_t len, uint8_t *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t n = p[i++];
		if (i + n > len || o + n > size)
			return -1;
		memcpy(out + o, p + i, n);
		o += n;
		i += n;
	}
	return (int)o;
}

static void
txt_answer(void *arg, const struct relay_dns_answer *ans)
{
	struct run *r = arg;
	r->q = NULL;
	unsigned att = attempts_of(r, r->domain, "-") + 1;
	if (r->s->stopping) {
		state_add(r, r->domain, "-", "dns-error", att, "stopping");
		r->next++;
		run_next_domain(r);
		return;
	}
	if (!relay_dns_status_usable(&ans->st)) {
		/* Bogus or failed: no report now (fail closed), try later. */
		char d[200];
		relay_fmt(d, sizeof(d), "TXT lookup %s (%s)",
		    relay_dns_sec_name(ans->st.sec),
		    relay_dns_why_name(ans->st.why));
		state_add(r, r->domain, "-", "dns-error", att, d);
		r->next++;
		run_next_domain(r);
		return;
	}
	size_t found = 0;
	uint8_t text[4096];
	int tlen = -1;
	for (int i = 0; ans->st.kind == RELAY_DNS_DATA && ans->ub != NULL &&
	     ans->ub->data[i] != NULL;
	     i++) {
		uint8_t t[4096];
		int n = txt_join((const uint8_t *)ans->ub->data[i],
		    (size_t)ans->ub->len[i], t, sizeof(t));
		if (n < 0 || !relay_tlsrpt_record_is_tlsrpt(t, (size_t)n))
			continue;
		found++;
		memcpy(text, t, (size_t)n);
		tlen = n;
	}
	if (found != 1) {
		/* RFC 8460 3: not exactly one record: no reporting. */
		state_add(r, r->domain, "-", "no-record", att,
		    found == 0 ? "no TLSRPT record" : "several TLSRPT records");
		r->next++;
		run_next_domain(r);
		return;
	}
	if (relay_tlsrpt_record_parse(text, (size_t)tlen, &r->rec) != 0) {
		state_add(r, r->domain, "-", "bad-record", att,
		    "malformed TLSRPT record");
		r->next++;
		run_next_domain(r);
		return;
	}
	char contact[600];
	struct relay_tlsrpt_meta meta =
	    relay_tlsrpt_meta_from_config(r->s->ctx.cfg, contact,
	        sizeof(contact));
	free(r->json);
	free(r->gz);
	r->json = NULL;
	r->gz = NULL;
	if (relay_tlsrpt_report_json(&r->t, r->day, r->domain, &meta, &r->json,
	        &r->jlen) != 0 ||
	    relay_tlsrpt_gzip(r->json, r->jlen, &r->gz, &r->gzlen) != 0) {
		state_add(r, r->domain, "-", "failed", att,
		    "cannot make the report");
		r->next++;
		run_next_domain(r);
		return;
	}
	r->rua_i = 0;
	run_next_rua(r);
}

static void
run_next_domain(struct run *r)
{
	while (r->next < r->ndomains) {
		r->domain = r->domains[r->next];
		if (r->s->stopping) {
			r->next = r->ndomains;
			break;
		}
		if (!r->manual && domain_done(r, r->domain)) {
			for (size_t i = 0; i < r->nprev; i++)
				if (strcmp(r->prev[i].domain, r->domain) == 0)
					state_add(r, r->domain,
					    r->prev[i].target,
					    r->prev[i].status,
					    r->prev[i].attempts, "");
			r->next++;
			continue;
		}
		char qname[RELAY_DNS_HOST_MAX + 16];
		relay_fmt(qname, sizeof(qname), "_smtp._tls.%s", r->domain);
		struct relay_dns *dns = *r->s->ctx.dns;
		if (dns != NULL &&
		    relay_dns_lookup(dns, qname, DNS_TYPE_TXT, txt_answer, r,
		        &r->q) == 0)
			return;
		state_add(r, r->domain, "-", "dns-error",
		    attempts_of(r, r->domain, "-") + 1,
		    "cannot start the TXT lookup");
		r->next++;
	}
	queue_step(r, STEP_SAVE);
}

static long
run_start(struct relay_tlsrpt_sender *s, const char *day, bool manual)
{
	if (s->run != NULL || s->stopping)
		return -1;
	struct run *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -1;
	r->s = s;
	r->id = ++s->next_id;
	r->manual = manual;
	relay_copy(r->day, sizeof(r->day), day);
	relay_tlsrpt_table_init(&r->t);
	s->run = r;
	uv_timer_stop(&s->timer);
	queue_step(r, STEP_LOAD);
	return r->id;
}

/* The timer: an automatic run of yesterday. */
static void
on_timer(uv_timer_t *h)
{
	struct relay_tlsrpt_sender *s = h->data;
	if (!s->ctx.cfg->tlsrpt_enable) {
		schedule(s, 0);
		return;
	}
	time_t now = (time_t)(relay_clock_wall_us(s->ctx.clock) / 1000000u);
	char day[RELAY_TLSRPT_DAY_SIZE];
	relay_tlsrpt_day(now - 86400, day);
	if (run_start(s, day, false) < 0)
		schedule(s, SEND_RETRY_S);
}

static uint32_t
random_below(uint32_t n)
{
	uint32_t v = 0;
	if (n == 0 || RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		return 0;
	return v % n;
}

/* Next automatic run: after delay_s, or (0) after the next UTC midnight
 * plus the random delay. */
static void
schedule(struct relay_tlsrpt_sender *s, uint64_t delay_s)
{
	if (s->stopping)
		return;
	if (delay_s == 0) {
		uint64_t now = relay_clock_wall_us(s->ctx.clock) / 1000000u;
		delay_s = 86400 - now % 86400 + random_below(SEND_DELAY_MAX_S);
	}
	uv_timer_start(&s->timer, on_timer, delay_s * 1000, 0);
}

int
relay_tlsrpt_sender_start(const struct relay_tlsrpt_send_ctx *ctx,
    struct relay_tlsrpt_sender **out)
{
	struct relay_tlsrpt_sender *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return RELAY_TLSRPT_ENOMEM;
	s->ctx = *ctx;
	if (relay_tlsrpt_dir(ctx->cfg->spool_dir, s->dir, sizeof(s->dir)) !=
	    0) {
		free(s);
		return RELAY_TLSRPT_EINVAL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		free(s);
		return RELAY_TLSRPT_ENOMEM;
	}
	uv_timer_init(ctx->loop, &s->timer);
	s->timer.data = s;
	/* Catch up on yesterday soon after a start, at a random moment: an
	 * automatic run skips what its sent state says is final, so this
	 * sends only what a stop cut short, what failed and may be retried,
	 * or everything when the daemon was down at the time. */
	schedule(s, 30 + random_below(SEND_CATCHUP_MAX_S));
	*out = s;
	return 0;
}

long
relay_tlsrpt_sender_run(struct relay_tlsrpt_sender *s, const char *day,
    char *msg, size_t msglen)
{
	if (!relay_tlsrpt_day_parse(day, NULL)) {
		relay_copy(msg, msglen, "not a day (YYYY-MM-DD)");
		return -1;
	}
	if (s->run != NULL) {
		relay_copy(msg, msglen, "a run is in progress, try again");
		return -1;
	}
	long id = run_start(s, day, true);
	if (id < 0)
		relay_copy(msg, msglen, "cannot start the run");
	else
		relay_fmt(msg, msglen, "run %ld sending the reports of %s", id,
		    day);
	return id;
}

void
relay_tlsrpt_sender_stop(struct relay_tlsrpt_sender *s)
{
	if (s == NULL)
		return;
	s->stopping = true;
	uv_timer_stop(&s->timer);
	if (s->run != NULL) {
		/* A lookup is cancelled and its step ends the run at once; a
		 * POST or a file step in the pool ends by itself, then the
		 * run ends (run_end closes the timer). */
		if (s->run->q != NULL) {
			struct run *r = s->run;
			relay_dns_lookup_cancel(r->q);
			r->q = NULL;
			r->next = r->ndomains;
			queue_step(r, STEP_SAVE);
		}
		return;
	}
	uv_close((uv_handle_t *)&s->timer, sender_closed);
}
