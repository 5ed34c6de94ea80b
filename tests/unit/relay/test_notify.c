/*
 * Unit tests for relay_notify: a unix datagram socket plays the service
 * manager (a path in a temporary directory, and a name in the abstract
 * namespace); $NOTIFY_SOCKET points at it and each test reads back exactly
 * what was sent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "relay_notify.h"

struct fixture {
	int fd;        /* the "service manager" end */
	char dir[64];  /* temporary directory, "" when abstract */
	char env[128]; /* value given to NOTIFY_SOCKET */
};

/* Binds fd to env's address: a path, or "@name" in the abstract namespace. */
static void
bind_env(struct fixture *f)
{
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	size_t len = strlen(f->env);
	assert_true(len < sizeof(sun.sun_path));
	memcpy(sun.sun_path, f->env, len);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sun,
	                     (socklen_t)(offsetof(struct sockaddr_un,
	                                     sun_path) +
	                         len)),
	    0);
	assert_int_equal(setenv("NOTIFY_SOCKET", f->env, 1), 0);
}

static int
setup_path(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_notify.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->env, sizeof(f->env), "%s/notify", f->dir);
	bind_env(f);
	*state = f;
	return 0;
}

static int
setup_abstract(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	/* The pid keeps parallel runs of this test apart. */
	snprintf(f->env, sizeof(f->env), "@danerelay/test_notify/%ld",
	    (long)getpid());
	bind_env(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	close(f->fd);
	if (f->dir[0] != '\0') {
		char path[160];
		snprintf(path, sizeof(path), "%s/notify", f->dir);
		unlink(path);
		rmdir(f->dir);
	}
	unsetenv("NOTIFY_SOCKET");
	free(f);
	return 0;
}

/* Reads one datagram without waiting; "" when none is queued. */
static void
recv_one(int fd, char *buf, size_t size)
{
	ssize_t n = recv(fd, buf, size - 1, MSG_DONTWAIT);
	if (n < 0) {
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		n = 0;
	}
	buf[n] = '\0';
}

static void
test_messages_arrive_in_order(void **state)
{
	struct fixture *f = *state;
	char buf[2048];

	assert_int_equal(relay_notify("READY=1\nSTATUS=listening"), 0);
	assert_int_equal(relay_notify("STOPPING=1"), 0);
	recv_one(f->fd, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1\nSTATUS=listening");
	recv_one(f->fd, buf, sizeof(buf));
	assert_string_equal(buf, "STOPPING=1");
	recv_one(f->fd, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void
test_formatted(void **state)
{
	struct fixture *f = *state;
	char buf[2048];

	assert_int_equal(relay_notifyf("STATUS=%zu queued, dns %s", (size_t)42,
	                     "ok"),
	    0);
	recv_one(f->fd, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=42 queued, dns ok");
}

/* A message at the limit goes out whole; one byte more is refused, not cut. */
static void
test_length_limit(void **state)
{
	struct fixture *f = *state;
	char msg[RELAY_NOTIFY_MAX + 2], buf[RELAY_NOTIFY_MAX + 16];

	memset(msg, 'x', sizeof(msg));
	memcpy(msg, "STATUS=", 7);
	msg[RELAY_NOTIFY_MAX] = '\0';
	assert_int_equal(relay_notify(msg), 0);
	recv_one(f->fd, buf, sizeof(buf));
	assert_int_equal(strlen(buf), RELAY_NOTIFY_MAX);

	msg[RELAY_NOTIFY_MAX] = 'x';
	msg[RELAY_NOTIFY_MAX + 1] = '\0';
	assert_int_equal(relay_notify(msg), RELAY_NOTIFY_ETOOLONG);
	assert_int_equal(relay_notifyf("%s", msg), RELAY_NOTIFY_ETOOLONG);
	recv_one(f->fd, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

/* Without a service manager every call succeeds and sends nothing. */
static void
test_unset_is_noop(void **state)
{
	struct fixture *f = *state;
	char buf[64];

	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(relay_notify("READY=1"), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
	assert_int_equal(relay_notifyf("STATUS=%d", 1), 0);
	recv_one(f->fd, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

struct bad_addr {
	const char *env;
	int err;
};

static const struct bad_addr bad_addrs[] = {
	{ "relative/notify", RELAY_NOTIFY_EADDR },
	{ "vsock:2:1234", RELAY_NOTIFY_EADDR },
	{ "@", RELAY_NOTIFY_EADDR },
	{ "/", RELAY_NOTIFY_EADDR },
	/* Well-formed, but nobody listens there. */
	{ "/nonexistent/danerelay-notify", RELAY_NOTIFY_ESEND },
	{ "@danerelay/test_notify/nobody-listens", RELAY_NOTIFY_ESEND },
};

static void
test_bad_address(void **state)
{
	const struct bad_addr *b = *state;

	assert_int_equal(setenv("NOTIFY_SOCKET", b->env, 1), 0);
	assert_int_equal(relay_notify("READY=1"), b->err);
	assert_non_null(relay_notify_strerror(b->err));
	unsetenv("NOTIFY_SOCKET");
}

static void
test_address_too_long(void **state)
{
	char env[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];

	memset(env, 'a', sizeof(env));
	env[0] = '/';
	env[sizeof(env) - 1] = '\0';
	assert_int_equal(setenv("NOTIFY_SOCKET", env, 1), 0);
	assert_int_equal(relay_notify("READY=1"), RELAY_NOTIFY_EADDR);
	unsetenv("NOTIFY_SOCKET");
}

/* sd_watchdog_enabled(3)'s rules, case by case. pid: NULL unset, "self"
 * this process, else the text given. */
struct watchdog_case {
	const char *usec;
	const char *pid;
	int rc;
	uint64_t want;
};

static const struct watchdog_case watchdog_cases[] = {
	{ NULL, NULL, 0, 0 },              /* no watchdog asked for */
	{ NULL, "self", 0, 0 },            /* a PID alone means nothing */
	{ "30000000", NULL, 1, 30000000 }, /* WatchdogSec=30s */
	{ "30000000", "self", 1, 30000000 },
	{ "30000000", "1", 0, 0 }, /* meant for another process */
	{ "1", NULL, 1, 1 },
	{ "18446744073709551615", NULL, 1, UINT64_MAX },
	{ "18446744073709551616", NULL, -1, 0 }, /* overflow */
	{ "0", NULL, -1, 0 },
	{ "", NULL, -1, 0 },
	{ "-5", NULL, -1, 0 },
	{ "+5", NULL, -1, 0 },
	{ "5s", NULL, -1, 0 },
	{ " 5", NULL, -1, 0 },
	{ "30000000", "", -1, 0 },
	{ "30000000", "12x", -1, 0 },
	{ "30000000", "0", -1, 0 },
};

static void
test_watchdog_usec(void **state)
{
	(void)state;
	for (size_t i = 0;
	     i < sizeof(watchdog_cases) / sizeof(watchdog_cases[0]); i++) {
		const struct watchdog_case *c = &watchdog_cases[i];
		char self[32];
		uint64_t usec = 12345;

		unsetenv("WATCHDOG_USEC");
		unsetenv("WATCHDOG_PID");
		if (c->usec != NULL)
			assert_int_equal(setenv("WATCHDOG_USEC", c->usec, 1),
			    0);
		if (c->pid != NULL) {
			const char *v = c->pid;
			if (strcmp(v, "self") == 0) {
				snprintf(self, sizeof(self), "%ld",
				    (long)getpid());
				v = self;
			}
			assert_int_equal(setenv("WATCHDOG_PID", v, 1), 0);
		}
		int rc = relay_notify_watchdog_usec(&usec);
		if (rc != c->rc)
			fail_msg("case %zu (%s, %s): rc %d, want %d", i,
			    c->usec ? c->usec : "unset",
			    c->pid ? c->pid : "unset", rc, c->rc);
		assert_true(usec == (c->rc == 1 ? c->want : 12345));
		/* Read, never changed (sd_watchdog_enabled(0, ...)). */
		if (c->usec != NULL)
			assert_string_equal(getenv("WATCHDOG_USEC"), c->usec);
	}
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

int
main(void)
{
	struct CMUnitTest tests[9 + sizeof(bad_addrs) / sizeof(bad_addrs[0])];
	size_t n = 0;

	tests[n] = (struct CMUnitTest)
	    cmocka_unit_test_setup_teardown(test_messages_arrive_in_order,
	        setup_path, teardown);
	tests[n++].name = "messages in order, path socket";
	tests[n] = (struct CMUnitTest)
	    cmocka_unit_test_setup_teardown(test_messages_arrive_in_order,
	        setup_abstract, teardown);
	tests[n++].name = "messages in order, abstract socket";
	tests[n++] =
	    (struct CMUnitTest)cmocka_unit_test_setup_teardown(test_formatted,
	        setup_path, teardown);
	tests[n++] = (struct CMUnitTest)
	    cmocka_unit_test_setup_teardown(test_length_limit, setup_abstract,
	        teardown);
	tests[n++] = (struct CMUnitTest)
	    cmocka_unit_test_setup_teardown(test_unset_is_noop, setup_path,
	        teardown);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_address_too_long);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_watchdog_usec);
	for (size_t i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
		tests[n] = (struct CMUnitTest)
		    cmocka_unit_test_prestate(test_bad_address,
		        (void *)&bad_addrs[i]);
		tests[n++].name = bad_addrs[i].env;
	}
	return _cmocka_run_group_tests("relay_notify", tests, n, NULL, NULL);
}
