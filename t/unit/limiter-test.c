/*
 * limiter-test.c - tests of common/limiter.c and common/noncestore.c:
 * one hit per interval and Retry-After, interval 0 disables, the bound on
 * keys, the timemap; nonces are single-use, expire, and unknown ones are
 * refused.
 *
 * SECURITY: none (a test). STANDARDS: none.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "limiter.h"
#include "noncestore.h"
#include "tap.h"

/* test_limiter - the local limiter over a fake clock */
static void
test_limiter(void)
{
	struct limiter *l = limiter_local_new(60, 2);
	time_t ra;

	is_int(limiter_hit(l, "192.0.2.1", 1000, &ra), 1, "first hit allowed");
	is_int(limiter_hit(l, "192.0.2.1", 1010, &ra), 0, "second hit within 60s limited");
	is_int(ra, 50, "retry after 50s");
	is_int(limiter_hit(l, "192.0.2.2", 1010, &ra), 1, "another key allowed");
	is_int(limiter_hit(l, "192.0.2.3", 1010, &ra), -1, "full table of live keys: -1");
	is_int(limiter_hit(l, "192.0.2.1", 1060, &ra), 1, "allowed again after 60s");
	is_int(limiter_hit(l, "192.0.2.3", 1075, &ra), 1, "expired keys make room");
	is_int(limiter_hit(l, "192.0.2.3", 1134, &ra), 0, "limited at 59s");
	is_int(ra, 1, "retry after 1s");
	is_str(l->ops->name, "local", "implementation name");
	limiter_free(&l);
	ok(l == NULL, "limiter_free clears the pointer");

	l = limiter_local_new(0, 1);
	is_int(limiter_hit(l, "a", 1, &ra), 1, "interval 0: allowed");
	is_int(limiter_hit(l, "a", 1, &ra), 1, "interval 0: allowed again");
	limiter_free(&l);
}

/* test_timemap - put, get, del, expiry, many keys */
static void
test_timemap(void)
{
	struct timemap m;
	char key[32];
	time_t t;
	int i, bad = 0;

	timemap_init(&m, 1000, 10);
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		bad += timemap_put(&m, key, i % 20, 0) != 0;
	}
	is_int(bad, 0, "1000 puts");
	is_int(timemap_put(&m, "more", 0, 0), -1, "full");
	ok(timemap_get(&m, "k5", 9, &t) && t == 5, "get k5");
	ok(!timemap_get(&m, "k5", 15, &t), "k5 expired at 15");
	is_int(timemap_del(&m, "k7"), 1, "del k7");
	is_int(timemap_del(&m, "k7"), 0, "del k7 again");
	timemap_expire(&m, 19);
	is_int((int)m.n, 500, "expire at 19 keeps t = 10..19, half of them");
	timemap_clear(&m);
}

/* test_nonces - issue, spend once, expiry, unknown */
static void
test_nonces(void)
{
	struct noncestore *s = noncestore_local_new(60, 100);
	char a[NONCE_LEN + 1], b[NONCE_LEN + 1];

	is_int(noncestore_issue(s, a, 1000), 0, "issue a");
	is_int(noncestore_issue(s, b, 1000), 0, "issue b");
	is_int((int)strlen(a), NONCE_LEN, "32 hex digits");
	ok(strspn(a, "0123456789abcdef") == NONCE_LEN, "lower-case hex");
	ok(strcmp(a, b) != 0, "two nonces differ");
	is_int(noncestore_consume(s, a, 1030), NONCE_OK, "a spent");
	is_int(noncestore_consume(s, a, 1031), NONCE_UNKNOWN, "a again: unknown");
	is_int(noncestore_consume(s, b, 1061), NONCE_EXPIRED, "b after 61s: expired");
	is_int(noncestore_consume(s, b, 1062), NONCE_UNKNOWN, "b again: unknown");
	is_int(noncestore_consume(s, "00000000000000000000000000000000", 1000),
	    NONCE_UNKNOWN, "never issued: unknown");
	is_int(noncestore_consume(s, "x", 1000), NONCE_UNKNOWN, "malformed: unknown");
	noncestore_free(&s);
	ok(s == NULL, "noncestore_free clears the pointer");
}

int
main(void)
{
	test_limiter();
	test_timemap();
	test_nonces();
	return done_testing();
}
