/*
 * daemon_listen: the listening TCP sockets of `serve`, one set for each
 * address list of the configuration (listen, metrics_listen).
 *
 * Binding happens while serve is still root (a port below 1024), before
 * privileges are dropped; the sockets then live until shutdown closes
 * them. An IPv6 address listens on IPv6 only (UV_TCP_IPV6ONLY), so that
 * "[::]:PORT" and "0.0.0.0:PORT" can both be listed: a dual-stack socket
 * for the first would take the second's port.
 */
#include <stdlib.h>
#include <sys/socket.h>

#include "daemon_int.h"
#include "relay_text.h"

int
daemon__listen(struct relay_daemon *d, const char *key,
    const struct relay_config_addr *addrs, size_t naddrs, int backlog,
    uv_connection_cb on_connection, struct daemon_listeners *set, char *err,
    size_t errlen)
{
	set->l = NULL;
	set->n = 0;
	if (naddrs == 0)
		return 0;
	set->l = calloc(naddrs, sizeof(*set->l));
	if (set->l == NULL) {
		relay_fmt(err, errlen, "%s: out of memory", key);
		return -1;
	}
	for (size_t i = 0; i < naddrs; i++) {
		struct daemon_listener *li = &set->l[i];
		const struct relay_config_addr *a = &addrs[i];
		li->d = d;
		relay_copy(li->text, sizeof(li->text), a->text);
		int r = uv_tcp_init(d->loop, &li->tcp);
		if (r != 0) {
			relay_fmt(err, errlen, "%s %s: %s", key, a->text,
			    uv_strerror(r));
			return -1;
		}
		set->n++;
		li->tcp.data = li;
		unsigned flags =
		    a->sa.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
		r = uv_tcp_bind(&li->tcp, (const struct sockaddr *)&a->sa,
		    flags);
		if (r == 0)
			r = uv_listen((uv_stream_t *)&li->tcp, backlog,
			    on_connection);
		if (r != 0) {
			relay_fmt(err, errlen, "%s %s: %s", key, a->text,
			    uv_strerror(r));
			return -1;
		}
	}
	return 0;
}

void
daemon__listeners_close(struct daemon_listeners *set)
{
	for (size_t i = 0; i < set->n; i++)
		if (!uv_is_closing((uv_handle_t *)&set->l[i].tcp))
			uv_close((uv_handle_t *)&set->l[i].tcp, NULL);
}

void
daemon__listeners_free(struct daemon_listeners *set)
{
	free(set->l);
	set->l = NULL;
	set->n = 0;
}
