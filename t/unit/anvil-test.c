/*
 * anvil-test.c - tests of common/anvil.c, the per-client table shared by
 * the smtpd processes: address keys, connection counts per column and
 * their limit, the per-process column reset, message and AUTH windows
 * and their expiry, a full table (ANVIL_FULL, then room again once slots
 * go idle), the once-a-minute warning, sharing with a forked process
 * through the descriptor, and recovery of the lock after its owner died.
 *
 * White-box: includes anvil.c to reach the lock for the last test.
 * SECURITY: none (a test). STANDARDS: none.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/anvil.c"
#include "tap.h"

/* key4 - the key of an IPv4 address in text */
static void
key4(const char *ip, uint8_t key[16])
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sin.sin_addr);
	anvil_key((struct sockaddr *)&sin, key);
}

/* key_n - a distinct IPv6 key for a number */
static void
key_n(unsigned n, uint8_t key[16])
{
	memset(key, 0, 16);
	key[0] = 0x20;
	key[1] = 0x01;
	key[12] = (uint8_t)(n >> 24);
	key[13] = (uint8_t)(n >> 16);
	key[14] = (uint8_t)(n >> 8);
	key[15] = (uint8_t)n;
}

/* test_keys - IPv4 and IPv4-mapped IPv6 share a key, IPv6 is itself */
static void
test_keys(void)
{
	struct sockaddr_in6 s6;
	struct sockaddr_un { sa_family_t f; char p[8]; } su = { AF_UNIX, "x" };
	uint8_t k4[16], k6[16];

	key4("127.0.0.1", k4);
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
	is_int(anvil_key((struct sockaddr *)&s6, k6), 0, "IPv6 key made");
	ok(memcmp(k4, k6, 16) == 0, "IPv4 and IPv4-mapped IPv6 share a key");
	inet_pton(AF_INET6, "::1", &s6.sin6_addr);
	anvil_key((struct sockaddr *)&s6, k6);
	ok(memcmp(k4, k6, 16) != 0, "::1 is another key");
	is_int(anvil_key((struct sockaddr *)&su, k6), -1, "not an IP address: -1");
	is_int(anvil_key(NULL, k6), -1, "NULL: -1");
}

/* test_connections - the limit over columns, disconnects, column reset */
static void
test_connections(struct anvil *a)
{
	uint8_t k[16], k2[16];
	unsigned open;

	key4("192.0.2.1", k);
	key4("192.0.2.2", k2);
	is_int(anvil_connect(a, k, 0, 3, 100, &open), ANVIL_OK, "1st connection");
	is_int(open, 0, "... none open before");
	is_int(anvil_connect(a, k, 0, 3, 100, &open), ANVIL_OK, "2nd (column 0)");
	is_int(anvil_connect(a, k, 1, 3, 100, &open), ANVIL_OK, "3rd (column 1)");
	is_int(open, 2, "... two open before, from the other column");
	is_int(anvil_connect(a, k, 1, 3, 100, &open), ANVIL_OVER, "4th over the limit");
	is_int(open, 3, "... three open");
	is_int(anvil_connections(a, k), 3, "the refused one is not counted");
	is_int(anvil_connect(a, k2, 1, 3, 100, &open), ANVIL_OK, "another address");
	anvil_disconnect(a, k, 1);
	is_int(anvil_connections(a, k), 2, "a disconnect lowers the count");
	is_int(anvil_connect(a, k, 1, 3, 100, &open), ANVIL_OK, "room again");
	anvil_column_reset(a, 0);
	is_int(anvil_connections(a, k), 1, "column 0 reset: its two are forgotten");
	is_int(anvil_connections(a, k2), 1, "other columns untouched");
	anvil_disconnect(a, k, 0);
	is_int(anvil_connections(a, k), 1, "a late disconnect on a reset column "
	    "does not go below zero");
	is_int(anvil_connect(a, k, 0, 0, 100, &open), ANVIL_OK, "limit 0: no limit");
	is_int(anvil_connect(a, k, ANVIL_COLUMNS, 3, 100, &open), ANVIL_FULL,
	    "a column out of range is refused (not counted)");
	anvil_column_reset(a, 0);
	anvil_column_reset(a, 1);
	is_int(anvil_connections(a, k) + anvil_connections(a, k2), 0, "all reset");
}

/* test_messages - the fixed message window */
static void
test_messages(struct anvil *a)
{
	uint8_t k[16];
	unsigned n;

	key4("198.51.100.7", k);
	is_int(anvil_message(a, k, 2, 60, 1000, &n), ANVIL_OK, "message 1");
	is_int(anvil_message(a, k, 2, 60, 1010, &n), ANVIL_OK, "message 2");
	is_int(anvil_message(a, k, 2, 60, 1020, &n), ANVIL_OVER, "message 3 over 2/60s");
	is_int(n, 3, "... counted as the third");
	is_int(anvil_message(a, k, 2, 60, 1059, &n), ANVIL_OVER, "still over at 59s");
	is_int(anvil_message(a, k, 2, 60, 1060, &n), ANVIL_OK, "a new window at 60s");
	is_int(n, 1, "... counting from 1");
	is_int(anvil_message(a, k, 0, 60, 1061, &n), ANVIL_OK, "limit 0: no limit");
}

/* test_auth - AUTH failures in their window */
static void
test_auth(struct anvil *a)
{
	uint8_t k[16];
	int i;

	key4("203.0.113.9", k);
	is_int(anvil_auth_failures(a, k, 100), 0, "no failures yet");
	for (i = 0; i < 3; i++)
		anvil_auth_failure(a, k, 10, 100 + i);
	is_int(anvil_auth_failures(a, k, 105), 3, "three failures in the window");
	is_int(anvil_auth_failures(a, k, 110), 0, "the window (from the first) ended");
	anvil_auth_failure(a, k, 10, 111);
	is_int(anvil_auth_failures(a, k, 111), 1, "a new window counts from 1");
}

/* test_full - a table with no idle slot fails open, and recovers */
static void
test_full(struct anvil *a)
{
	uint8_t k[16];
	unsigned n, open, filled = 0, full_at = 0;
	enum anvil_status r;

	for (n = 0; n < 2 * ANVIL_SLOTS && full_at == 0; n++) {
		key_n(n, k);
		r = anvil_connect(a, k, 2, 5, 500, &open);
		if (r == ANVIL_OK)
			filled++;
		else
			full_at = n + 1;
	}
	ok(full_at > 0 && filled > ANVIL_SLOTS / 4,
	    "the table fills up (%u addresses), then says ANVIL_FULL", filled);
	key_n(full_at - 1, k);
	is_int(anvil_message(a, k, 1, 60, 500, &n), ANVIL_FULL,
	    "no slot for a message count either");
	is_int(anvil_auth_failure(a, k, 60, 500), ANVIL_FULL, "nor for AUTH");
	key_n(0, k);
	is_int(anvil_connect(a, k, 2, 5, 500, &open), ANVIL_OK,
	    "an address already in the table still counts");
	is_int(open, 1, "... with its count");
	ok(anvil_full_warn_due(a, 500), "first full warning due");
	ok(!anvil_full_warn_due(a, 530), "not again within a minute");
	ok(anvil_full_warn_due(a, 560), "again after a minute");
	anvil_column_reset(a, 2);
	key_n(full_at - 1, k);
	is_int(anvil_connect(a, k, 2, 5, 500, &open), ANVIL_OK,
	    "idle slots are taken over once the connections are gone");
	anvil_column_reset(a, 2);
}

/* test_shared - a forked process maps the same table by descriptor */
static void
test_shared(int fd)
{
	struct anvil *b;
	uint8_t k[16];
	unsigned open;
	int st = -1;
	pid_t pid;

	key4("192.0.2.77", k);
	if ((pid = fork()) == 0) {
		b = anvil_attach(fd);
		_exit(b != NULL && anvil_connect(b, k, 5, 9, 1, &open) == ANVIL_OK ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	is_int(st, 0, "a child attached and counted");
	b = anvil_attach(fd);
	ok(b != NULL, "anvil_attach on the descriptor");
	if (b == NULL)
		return;
	is_int(anvil_connections(b, k), 1, "its connection is seen here");
	anvil_detach(&b);
	ok(b == NULL, "anvil_detach clears the pointer");
}

/* test_bad_fd - a descriptor that is not a table */
static void
test_bad_fd(void)
{
	int fd = memfd_create("not-anvil", MFD_CLOEXEC);

	ok(fd >= 0 && ftruncate(fd, 64) == 0, "a small memfd");
	ok(anvil_attach(fd) == NULL, "too small: refused");
	if (ftruncate(fd, sizeof(struct anvil)) == 0)
		ok(anvil_attach(fd) == NULL, "right size, no magic: refused");
	close(fd);
	ok(anvil_attach(-1) == NULL, "a bad descriptor: refused");
}

/* test_owner_died - a process killed while holding the lock */
static void
test_owner_died(struct anvil *a)
{
	uint8_t k[16];
	unsigned open;
	pid_t pid;
	int st;

	key4("192.0.2.99", k);
	if ((pid = fork()) == 0) {
		pthread_mutex_lock(&a->lock);
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	waitpid(pid, &st, 0);
	ok(WIFSIGNALED(st), "the lock holder was killed");
	is_int(anvil_connect(a, k, 0, 3, 1, &open), ANVIL_OK,
	    "the next caller recovers the lock (EOWNERDEAD) and counts");
	is_int(anvil_connections(a, k), 1, "... and the lock works after");
}

/* main - run every group */
int
main(void)
{
	struct anvil *a = NULL;
	int fd;

	log_init("anvil-test", 1, LOG_LEVEL_WARNING);
	fd = anvil_create(&a);
	ok(fd >= 0 && a != NULL, "anvil_create");
	test_keys();
	test_connections(a);
	test_messages(a);
	test_auth(a);
	test_shared(fd);
	test_bad_fd();
	test_owner_died(a);
	test_full(a);
	anvil_detach(&a);
	close(fd);
	return done_testing();
}
