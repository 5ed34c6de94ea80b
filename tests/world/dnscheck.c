/*
 * dnscheck: resolve one name through libunbound with the test world's
 * resolver configuration and print what a DANE client must look at.
 *
 *   dnscheck [-c UNBOUND_CONF] [-a TRUST_ANCHOR_FILE] NAME TYPE
 *
 * UNBOUND_CONF defaults to $WORLD_UNBOUND_CONF. Output, one key=value per line
 * (values with spaces are quoted; answer lines repeat):
 *
 *   status=secure|insecure|bogus   from the result's secure/bogus flags
 *   rcode=NOERROR|NXDOMAIN|SERVFAIL|...
 *   havedata=0|1
 *   why_bogus="..."                only when bogus
 *   answer="<rdata in presentation form>"   one line per record
 *
 * libunbound reports a bogus answer with rcode NOERROR and its data present;
 * only the bogus flag tells it apart, so status comes from the flags alone.
 *
 * Exit status: 0 resolved (whatever the status), 2 usage or resolver error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>

struct rrtype_name {
	const char *name;
	int type;
};

static const struct rrtype_name rrtypes[] = {
	{ "A", 1 },
	{ "NS", 2 },
	{ "CNAME", 5 },
	{ "SOA", 6 },
	{ "MX", 15 },
	{ "TXT", 16 },
	{ "AAAA", 28 },
	{ "DS", 43 },
	{ "RRSIG", 46 },
	{ "DNSKEY", 48 },
	{ "TLSA", 52 },
};

static const char *const rcodes[] = {
	"NOERROR",
	"FORMERR",
	"SERVFAIL",
	"NXDOMAIN",
	"NOTIMP",
	"REFUSED",
};

static int
parse_type(const char *s)
{
	for (size_t i = 0; i < sizeof(rrtypes) / sizeof(rrtypes[0]); i++) {
		if (strcasecmp(s, rrtypes[i].name) == 0)
			return rrtypes[i].type;
	}
	/* RFC 3597 generic form TYPEnnn. */
	if (strncasecmp(s, "TYPE", 4) == 0 && s[4] != '\0') {
		char *end = NULL;
		errno = 0;
		unsigned long v = strtoul(s + 4, &end, 10);
		if (errno == 0 && *end == '\0' && v > 0 && v <= 65535)
			return (int)v;
	}
	return -1;
}

static void
put_hex(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
}

/*
 * Print an uncompressed wire-format domain name (libunbound hands out rdata
 * with names uncompressed). Returns the bytes consumed, 0 when malformed.
 */
static size_t
put_name(const uint8_t *p, size_t len)
{
	size_t off = 0;

	if (len == 0)
		return 0;
	if (p[0] == 0) {
		putchar('.');
		return 1;
	}
	while (off < len) {
		uint8_t lab = p[off];
		if (lab == 0)
			return off + 1;
		if (lab > 63 || off + 1 + lab > len)
			return 0;
		for (size_t i = 0; i < lab; i++) {
			uint8_t c = p[off + 1 + i];
			if (c == '.' || c == '\\' || c <= ' ' || c >= 0x7f)
				printf("\\%03u", c);
			else
				putchar(c);
		}
		putchar('.');
		off += 1u + lab;
	}
	return 0;
}

static void
put_rdata(int type, const uint8_t *p, size_t len)
{
	char buf[INET6_ADDRSTRLEN];

	switch (type) {
	case 1:
		if (len == 4 && inet_ntop(AF_INET, p, buf, sizeof(buf))) {
			fputs(buf, stdout);
			return;
		}
		break;
	case 28:
		if (len == 16 && inet_ntop(AF_INET6, p, buf, sizeof(buf))) {
			fputs(buf, stdout);
			return;
		}
		break;
	case 2:
	case 5:
		if (put_name(p, len) == len)
			return;
		break;
	case 15:
		if (len >= 3) {
			printf("%u ", (unsigned)(p[0] << 8 | p[1]));
			if (put_name(p + 2, len - 2) == len - 2)
				return;
		}
		break;
	case 52:
		/* RFC 6698 2.1: usage, selector, matching type, data. */
		if (len >= 3) {
			printf("%u %u %u ", p[0], p[1], p[2]);
			put_hex(p + 3, len - 3);
			return;
		}
		break;
	case 16: {
		size_t off = 0;
		while (off < len) {
			size_t n = p[off];
			if (off + 1 + n > len)
				break;
			putchar('\\');
			putchar('"');
			for (size_t i = 0; i < n; i++) {
				uint8_t c = p[off + 1 + i];
				if (c < ' ' || c >= 0x7f || c == '"' ||
				    c == '\\')
					printf("\\%03u", c);
				else
					putchar(c);
			}
			putchar('\\');
			putchar('"');
			off += 1 + n;
			if (off < len)
				putchar(' ');
		}
		if (off == len)
			return;
		break;
	}
	default:
		break;
	}
	/* RFC 3597 unknown-type form for anything else or anything malformed. */
	printf("\\# %zu ", len);
	put_hex(p, len);
}

static void
usage(void)
{
	fputs(
	    "usage: dnscheck [-c UNBOUND_CONF] [-a TRUST_ANCHOR_FILE] NAME TYPE\n",
	    stderr);
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *conf = getenv("WORLD_UNBOUND_CONF");
	const char *anchor = NULL;
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			conf = argv[i + 1];
		else if (strcmp(argv[i], "-a") == 0 && i + 1 < argc)
			anchor = argv[i + 1];
		else
			usage();
		i += 2;
	}
	if (argc - i != 2 || conf == NULL || conf[0] == '\0')
		usage();
	const char *name = argv[i];
	int type = parse_type(argv[i + 1]);
	if (type < 0) {
		fprintf(stderr, "dnscheck: unknown type %s\n", argv[i + 1]);
		return 2;
	}

	struct ub_ctx *ctx = ub_ctx_create();
	if (ctx == NULL) {
		fputs("dnscheck: ub_ctx_create failed\n", stderr);
		return 2;
	}
	int rc = ub_ctx_config(ctx, conf);
	if (rc != 0) {
		fprintf(stderr, "dnscheck: %s: %s\n", conf, ub_strerror(rc));
		ub_ctx_delete(ctx);
		return 2;
	}
	if (anchor != NULL && (rc = ub_ctx_add_ta_file(ctx, anchor)) != 0) {
		fprintf(stderr, "dnscheck: %s: %s\n", anchor, ub_strerror(rc));
		ub_ctx_delete(ctx);
		return 2;
	}

	struct ub_result *res = NULL;
	rc = ub_resolve(ctx, name, type, 1 /* IN */, &res);
	if (rc != 0) {
		fprintf(stderr, "dnscheck: %s: %s\n", name, ub_strerror(rc));
		ub_ctx_delete(ctx);
		return 2;
	}

	const char *status = res->bogus ? "bogus"
	    : res->secure               ? "secure"
	                                : "insecure";
	printf("status=%s\n", status);
	if (res->rcode >= 0 &&
	    (size_t)res->rcode < sizeof(rcodes) / sizeof(rcodes[0]))
		printf("rcode=%s\n", rcodes[res->rcode]);
	else
		printf("rcode=%d\n", res->rcode);
	printf("havedata=%d\n", res->havedata ? 1 : 0);
	if (res->bogus) {
		fputs("why_bogus=\"", stdout);
		for (const char *w = res->why_bogus ? res->why_bogus : ""; *w;
		     w++)
			putchar(*w == '"' || *w == '\n' ? '\'' : *w);
		fputs("\"\n", stdout);
	}
	for (size_t k = 0; res->havedata && res->data[k] != NULL; k++) {
		fputs("answer=\"", stdout);
		put_rdata(res->qtype, (const uint8_t *)res->data[k],
		    (size_t)res->len[k]);
		fputs("\"\n", stdout);
	}
	ub_resolve_free(res);
	ub_ctx_delete(ctx);
	return fflush(stdout) == 0 ? 0 : 2;
}
