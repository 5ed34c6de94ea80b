#ifndef TLSA_H
#define TLSA_H
/* tlsa/: RFC 7672 policy and OpenSSL DANE glue. */
const char *tlsa_module_name(void);
#endif
