/*
 * relay_notify: sd_notify(3)'s wire protocol, one datagram per message.
 * See relay_notify.h for the contract.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "relay_notify.h"

/*
 * Fills *sun from $NOTIFY_SOCKET. Returns the address length for sendto(2),
 * 0 when the variable is unset or empty, or RELAY_NOTIFY_EADDR.
 */
static int
notify_address(struct sockaddr_un *sun)
{
	const char *e = getenv("NOTIFY_SOCKET");
	if (e == NULL || e[0] == '\0')
		return 0;
	/* Other forms (vsock:...) belong to virtual machines, not to a
	 * daemon started by a service manager on the same host. */
	if (e[0] != '/' && e[0] != '@')
		return RELAY_NOTIFY_EADDR;
	size_t len = strlen(e);
	if (len < 2 || len > sizeof(sun->sun_path))
		return RELAY_NOTIFY_EADDR;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, e, len);
	/* An abstract name is every byte of sun_path up to the given length,
	 * starting with a NUL: the length must not include a terminator. */
	if (sun->sun_path[0] == '@')
		sun->sun_path[0] = '\0';
	return (int)(offsetof(struct sockaddr_un, sun_path) + len);
}

int
relay_notify(const char *msg)
{
	struct sockaddr_un sun;
	int alen = notify_address(&sun);
	if (alen <= 0)
		return alen;
	size_t len = strlen(msg);
	if (len > RELAY_NOTIFY_MAX)
		return RELAY_NOTIFY_ETOOLONG;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return RELAY_NOTIFY_ESOCKET;
	ssize_t n = sendto(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT,
	    (const struct sockaddr *)&sun, (socklen_t)alen);
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)len ? 0 : RELAY_NOTIFY_ESEND;
}

int
relay_notifyf(const char *fmt, ...)
{
	char buf[RELAY_NOTIFY_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return RELAY_NOTIFY_ETOOLONG;
	return relay_notify(buf);
}

/* A positive decimal number with nothing around it, into *v. */
static bool
parse_positive(const char *text, uint64_t *v)
{
	uint64_t n = 0;

	if (text[0] == '\0')
		return false;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return false;
		unsigned d = (unsigned)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*v = n;
	return n > 0;
}

int
relay_notify_watchdog_usec(uint64_t *usec)
{
	const char *u = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	uint64_t timeout, owner;

	if (u == NULL)
		return 0;
	if (!parse_positive(u, &timeout))
		return -1;
	if (pid != NULL) {
		if (!parse_positive(pid, &owner))
			return -1;
		if (owner != (uint64_t)getpid())
			return 0;
	}
	*usec = timeout;
	return 1;
}

const char *
relay_notify_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case RELAY_NOTIFY_EADDR:
		return "NOTIFY_SOCKET is not an AF_UNIX path or @abstract name";
	case RELAY_NOTIFY_ETOOLONG:
		return "notification message too long";
	case RELAY_NOTIFY_ESOCKET:
		return "cannot create a datagram socket";
	case RELAY_NOTIFY_ESEND:
		return "cannot send to NOTIFY_SOCKET";
	default:
		return "unknown error";
	}
}
