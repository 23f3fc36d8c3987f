/*
 * dest-test.c - tests of queued/queued_dest.c: per-destination
 * concurrency (park, unpark), rate per second, and whole-destination
 * backoff: a connection-level failure marks one destination down on the
 * jittered schedule (one probe at a time afterwards) while another
 * destination is not delayed; a reached destination is up again. The
 * table's memory: an unreferenced destination is kept while its backoff
 * runs and freed once it is over (qdest_expire), and at most
 * QDEST_IDLE_MAX idle ones are kept (the oldest go first).
 *
 * SECURITY: none (a test). STANDARDS: none.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "queued_dest.h"
#include "tap.h"

static const struct qdest_limits lim = { 2, 3, { 10, 2.0, 100, 0.2 } };

/* test_concurrency - two in flight, the third parks, a finish unparks */
static void
test_concurrency(void)
{
	struct qdest *d = qdest_ref("relay:a.test");
	char id[17];

	is_int(qdest_wait(d, &lim, 1000), 0, "idle destination: start now");
	qdest_started(d, 1000);
	is_int(qdest_wait(d, &lim, 1000), 0, "one in flight: start now");
	qdest_started(d, 1000);
	is_int(qdest_wait(d, &lim, 1000), QDEST_FULL, "two in flight: full");
	qdest_park(d, "AAAAAAAAAAAAAAAA");
	qdest_park(d, "BBBBBBBBBBBBBBBB");
	is_int(qdest_done(d, QDEST_REACHED, &lim, 1000, 0.5), 0, "a reached job: not down");
	is_int(qdest_unpark(d, id), 1, "a finish unparks");
	is_str(id, "AAAAAAAAAAAAAAAA", "  the oldest first");
	is_int(qdest_unpark(d, id), 1, "then the next");
	is_str(id, "BBBBBBBBBBBBBBBB", "  in order");
	is_int(qdest_unpark(d, id), 0, "then none");
	qdest_done(d, QDEST_REACHED, &lim, 1000, 0.5);
	qdest_unref(&d);
	is_int((long long)qdest_count(), 0, "unreferenced idle destination freed");
}

/* test_rate - three jobs per second, the fourth waits for the next */
static void
test_rate(void)
{
	struct qdest *d = qdest_ref("relay:r.test");
	int i;

	for (i = 0; i < 3; i++) {
		qdest_started(d, 2000);
		qdest_done(d, QDEST_REACHED, &lim, 2000, 0.5);
	}
	is_int(qdest_wait(d, &lim, 2000), 2001, "rate used up: wait for the next second");
	is_int(qdest_wait(d, &lim, 2001), 0, "next second: start");
	qdest_unref(&d);
}

/* test_backoff - a dead destination backs off alone */
static void
test_backoff(void)
{
	struct qdest *dead = qdest_ref("mx:dead.test");
	struct qdest *live = qdest_ref("mx:live.test");

	qdest_started(dead, 3000);
	is_int(qdest_done(dead, QDEST_CONN_FAILED, &lim, 3000, 0.5), 1,
	    "a connection failure takes the destination down");
	is_int(qdest_wait(dead, &lim, 3000), 3010, "down for base (10 s at the middle draw)");
	is_int(qdest_wait(live, &lim, 3000), 0, "another destination is not delayed");
	is_int(qdest_wait(dead, &lim, 3010), 0, "up again at its retry time");
	qdest_started(dead, 3010);
	is_int(qdest_wait(dead, &lim, 3010), QDEST_FULL,
	    "a failing destination gets one probe at a time");
	qdest_done(dead, QDEST_CONN_FAILED, &lim, 3010, 0.5);
	is_int(qdest_wait(dead, &lim, 3010), 3030, "second failure: 20 s (factor 2)");
	qdest_started(dead, 3030);
	qdest_done(dead, QDEST_CONN_FAILED, &lim, 3030, 0.0);
	is_int(qdest_wait(dead, &lim, 3030), 3062, "third: 40 s x 0.8 (low draw, jitter 0.2)");
	qdest_started(dead, 3062);
	qdest_done(dead, QDEST_ABANDONED, &lim, 3062, 0.5);
	is_int((long long)dead->failures, 3, "an abandoned job counts nothing");
	qdest_started(dead, 3062);
	is_int(qdest_done(dead, QDEST_REACHED, &lim, 3062, 0.5), 0, "reached: not down");
	is_int(qdest_wait(dead, &lim, 3062), 0, "up, with its full concurrency");
	is_int((long long)dead->failures, 0, "failure count reset");
	qdest_started(dead, 3100);
	qdest_done(dead, QDEST_CONN_FAILED, &lim, 3100, 0.5);
	qdest_all_up();
	is_int(qdest_wait(dead, &lim, 3100), 0, "flush: every destination up");
	qdest_unref(&dead);
	qdest_unref(&live);
}

/* test_expire - a failed destination nobody refers to is kept while it
 * is down, then forgotten; a new reference takes it off the idle list */
static void
test_expire(void)
{
	struct qdest *d = qdest_ref("mx:gone.test");

	qdest_started(d, 4000);
	qdest_done(d, QDEST_CONN_FAILED, &lim, 4000, 0.5);
	d->down_until = (int64_t)time(NULL) + 10;  /* unref reads the clock */
	qdest_unref(&d);
	is_int((long long)qdest_count(), 1, "a backed-off destination outlives its last reference");
	is_int((long long)qdest_idle_count(), 1, "  on the idle list");
	qdest_expire((int64_t)time(NULL) + 5);
	is_int((long long)qdest_count(), 1, "  kept while its backoff runs");
	d = qdest_ref("mx:gone.test");
	is_int((long long)d->failures, 1, "  and its failure count is still known");
	is_int((long long)qdest_idle_count(), 0, "a new reference takes it off the idle list");
	qdest_unref(&d);
	qdest_expire((int64_t)time(NULL) + 11);
	is_int((long long)qdest_count(), 0, "freed once the backoff is over");
	is_int((long long)qdest_idle_count(), 0, "  and off the idle list");
}

/* test_bound - at most QDEST_IDLE_MAX idle destinations, oldest out */
static void
test_bound(void)
{
	int64_t until = (int64_t)time(NULL) + 3600;
	struct qdest *d;
	char key[64];
	int i;

	for (i = 0; i < QDEST_IDLE_MAX + 50; i++) {
		snprintf(key, sizeof(key), "mx:dead%d.test", i);
		d = qdest_ref(key);
		qdest_started(d, 5000);
		qdest_done(d, QDEST_CONN_FAILED, &lim, 5000, 0.5);
		d->down_until = until;
		qdest_unref(&d);
	}
	is_int((long long)qdest_count(), QDEST_IDLE_MAX,
	    "failing destinations given up: the table stops at QDEST_IDLE_MAX");
	is_int((long long)qdest_idle_count(), QDEST_IDLE_MAX, "  all of them idle");
	ok(qdest_find("mx:dead0.test") == NULL && qdest_find("mx:dead49.test") == NULL,
	    "  the oldest were forgotten");
	ok(qdest_find("mx:dead50.test") != NULL &&
	    qdest_find("mx:dead10049.test") != NULL, "  the newest are kept");
	qdest_expire(until);
	is_int((long long)qdest_count(), 0, "every one freed when the backoffs are over");
}

/* main - run the tests */
int
main(void)
{
	test_concurrency();
	test_rate();
	test_backoff();
	test_expire();
	test_bound();
	return done_testing();
}
