#ifndef RELAY_NOTIFY_H
#define RELAY_NOTIFY_H
/*
 * relay_notify: the service manager's readiness protocol (systemd's
 * sd_notify(3)) without linking libsystemd.
 *
 * The protocol is one datagram per message, sent to the AF_UNIX socket
 * whose address is in $NOTIFY_SOCKET: a file system path ("/run/...") or,
 * when the value starts with '@', a name in the abstract namespace (the
 * '@' stands for the leading NUL byte). A message is newline-separated
 * VARIABLE=value assignments, for instance "READY=1\nSTATUS=...".
 *
 * Without $NOTIFY_SOCKET (started by hand, by `make run` or by a test)
 * every call is a no-op that returns 0, so the daemon behaves the same
 * with and without a service manager.
 *
 * The functions open a socket, send and close it again on each call:
 * messages are rare (start, reload, stop, self-test results), and a socket
 * kept open would be one more descriptor to account for at shutdown.
 * Blocking: the datagram goes to a local socket with MSG_DONTWAIT, so a
 * service manager that does not read never stalls the loop.
 */
#include <stddef.h>
#include <stdint.h>

#define RELAY_NOTIFY_WUR __attribute__((warn_unused_result))

/* Longest message sent, in bytes; longer formatted messages are an error
 * rather than cut, so that a cut never turns one assignment into another. */
#define RELAY_NOTIFY_MAX 1024

enum relay_notify_err {
	RELAY_NOTIFY_EADDR = -1,    /* $NOTIFY_SOCKET is not a usable address */
	RELAY_NOTIFY_ETOOLONG = -2, /* message longer than RELAY_NOTIFY_MAX */
	RELAY_NOTIFY_ESOCKET = -3,  /* socket(2) failed; see errno */
	RELAY_NOTIFY_ESEND = -4,    /* sendto(2) failed or was short; errno */
};

/*
 * Sends msg (borrowed, NUL-terminated) to $NOTIFY_SOCKET. Returns 0 when
 * sent or when $NOTIFY_SOCKET is unset or empty, else a negative
 * enum relay_notify_err.
 */
int relay_notify(const char *msg) RELAY_NOTIFY_WUR;

/* As relay_notify(), with the message built by printf-style formatting. */
int relay_notifyf(const char *fmt, ...) RELAY_NOTIFY_WUR
    __attribute__((format(printf, 1, 2)));

/*
 * The service manager's watchdog (sd_watchdog_enabled(3)'s rules): enabled
 * when $WATCHDOG_USEC holds a positive decimal number of microseconds and
 * $WATCHDOG_PID is unset or holds getpid() (a variable inherited by some
 * other process is not meant for it). Returns 1 and stores the timeout in
 * *usec when enabled; 0 when not (unset, or another process's); -1 when a
 * variable is malformed (no digits, a sign, trailing bytes, zero,
 * overflow). The environment is read, never changed. The daemon sends
 * "WATCHDOG=1" through relay_notify() every half of *usec, as the man
 * page recommends.
 */
int relay_notify_watchdog_usec(uint64_t *usec) RELAY_NOTIFY_WUR;

/* A static English description of a relay_notify() result. */
const char *relay_notify_strerror(int err);

#endif
