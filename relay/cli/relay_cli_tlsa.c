/*
 * relay_cli_tlsa: `danerelay tlsa [--chain] [--host NAME] CERT.pem`, for
 * operators who also run the receiving side.
 *
 * Reads the PEM certificates in CERT.pem, leaf first then its issuers (the
 * order of a server's chain file), and prints the TLSA records to publish
 * at _25._tcp.<MX host> (RFC 7672 3.1: port 25, TCP, the MX host name):
 *   - the leaf: DANE-EE(3) SPKI(1) SHA2-256(1), the record RFC 7671 5.1
 *     and RFC 7672 3.1.1 recommend: it survives certificate renewal with
 *     the same key and is free of name checks and expiry (C18 family);
 *   - with --chain, every further certificate: DANE-TA(2) SPKI(1)
 *     SHA2-256(1) (RFC 7672 3.1.2: the TA must be in the chain the server
 *     sends, which is why only certificates of the file are offered).
 * The selector 1 digest is over the DER SubjectPublicKeyInfo, exactly what
 * `openssl x509 -pubkey | openssl pkey -pubin -outform DER | sha256sum`
 * gives.
 *
 * Output is zone-file text: per certificate a comment naming it, the full
 * record with the owner _25._tcp.<host>. (placeholder mx.example.com
 * unless --host), and the bare rdata as a comment, for a DNS provider's
 * web form. Exit 0, 1 (file unreadable, no certificate, bad PEM), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "relay_cli.h"

#define TLSA_CLI_PLACEHOLDER "mx.example.com"
/* Longest host name in text form (RFC 1035 3.1). */
#define TLSA_CLI_HOST_MAX 253

static const char tlsa_synopsis[] =
    "danerelay tlsa [--chain] [--host MXHOST] CERT.pem";

/* SHA-256 of the certificate's DER SubjectPublicKeyInfo into hex (65). */
static int
spki_sha256_hex(X509 *x, char hex[65])
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);

	if (len <= 0)
		return -1;
	int ok = EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL);
	OPENSSL_free(der);
	if (ok != 1 || mdlen != 32)
		return -1;
	for (unsigned int i = 0; i < mdlen; i++)
		(void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* The subject as one printable line (control bytes become '?'). */
static void
subject_line(X509 *x, char *buf, size_t size)
{
	buf[0] = '\0';
	if (X509_NAME_oneline(X509_get_subject_name(x), buf, (int)size) == NULL)
		(void)snprintf(buf, size, "(unreadable subject)");
	for (char *p = buf; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
}

/* Letters, digits, '-', '.', at most TLSA_CLI_HOST_MAX: a host for the
 * owner name (a trailing dot is dropped). */
static bool
host_ok(const char *h, size_t len)
{
	if (len == 0 || len > TLSA_CLI_HOST_MAX || h[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '.') ||
		    (c == '.' && i > 0 && h[i - 1] == '.'))
			return false;
	}
	return true;
}

static int
print_record(FILE *out, const char *host, size_t hostlen, size_t index, X509 *x,
    unsigned usage)
{
	char hex[65], subj[256];

	if (spki_sha256_hex(x, hex) != 0)
		return -1;
	subject_line(x, subj, sizeof(subj));
	fprintf(out, "; certificate %zu (%s): %s\n", index,
	    usage == 3 ? "leaf, DANE-EE" : "issuer, DANE-TA", subj);
	/* RFC 6698 3: the owner carries the port senders connect to. */
	fprintf(out, "_%u._tcp.%.*s. IN TLSA %u 1 1 %s\n",
	    (unsigned)RELAY_SMTP_PORT, (int)hostlen, host, usage, hex);
	fprintf(out, "; rdata: %u 1 1 %s\n", usage, hex);
	return 0;
}

int
relay_cli_tlsa(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "chain", no_argument, NULL, 'C' },
		{ "host", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL, *host = TLSA_CLI_PLACEHOLDER;
	bool chain = false;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'C':
			chain = true;
			break;
		case 'H':
			host = optarg;
			break;
		case 'h':
			return relay_cli_help(tlsa_synopsis);
		default:
			return relay_cli_bad_option("tlsa", tlsa_synopsis, c,
			    argv);
		}
	}
	if (argc - optind != 1)
		return relay_cli_usage("tlsa", "%s; usage: %s",
		    optind == argc ? "missing CERT.pem" : "only one CERT.pem",
		    tlsa_synopsis);
	file = argv[optind];
	size_t hostlen = strlen(host);
	if (hostlen > 0 && host[hostlen - 1] == '.')
		hostlen--;
	if (!host_ok(host, hostlen))
		return relay_cli_usage("tlsa", "--host: not a host name: %s",
		    host);

	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (f == NULL) {
		fprintf(stderr, "danerelay tlsa: %s: %s\n", file,
		    strerror(errno));
		return RELAY_CLI_EXIT_ERROR;
	}
	int rc = RELAY_CLI_EXIT_OK;
	size_t n = 0, skipped = 0;
	for (;;) {
		ERR_clear_error();
		X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
		if (x == NULL) {
			/* End of file is "no start line" (or nothing at all);
			 * anything else is a damaged certificate. */
			unsigned long e = ERR_peek_last_error();
			if (e != 0 &&
			    !(ERR_GET_LIB(e) == ERR_LIB_PEM &&
			        ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
				char es[256];
				ERR_error_string_n(e, es, sizeof(es));
				fprintf(stderr,
				    "danerelay tlsa: %s: certificate %zu "
				    "does not parse: %s\n",
				    file, n + 1, es);
				rc = RELAY_CLI_EXIT_ERROR;
			}
			break;
		}
		n++;
		if (n == 1 || chain) {
			if (print_record(stdout, host, hostlen, n, x,
			        n == 1 ? 3u : 2u) != 0) {
				fprintf(stderr,
				    "danerelay tlsa: %s: certificate %zu: "
				    "cannot encode its public key\n",
				    file, n);
				rc = RELAY_CLI_EXIT_ERROR;
			}
		} else {
			skipped++;
		}
		X509_free(x);
		if (rc != RELAY_CLI_EXIT_OK)
			break;
	}
	if (f != stdin)
		(void)fclose(f);
	ERR_clear_error();
	if (rc == RELAY_CLI_EXIT_OK && n == 0) {
		fprintf(stderr,
		    "danerelay tlsa: %s: no PEM certificate "
		    "(-----BEGIN CERTIFICATE-----) found\n",
		    file);
		rc = RELAY_CLI_EXIT_ERROR;
	}
	if (rc == RELAY_CLI_EXIT_OK && skipped > 0)
		printf("; %zu issuer certificate(s) not shown: add --chain for "
		       "their 2 1 1 records\n",
		    skipped);
	if (rc == RELAY_CLI_EXIT_OK && fflush(stdout) != 0)
		rc = RELAY_CLI_EXIT_ERROR;
	return rc;
}
