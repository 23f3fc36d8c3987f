/*
 * backoff-test.c - tests of common/backoff.c: the exact schedule at the
 * middle draw, the cap, the jitter bounds, the 1-second floor.
 *
 * SECURITY: none (a test). STANDARDS: none.
 */
#include "config.h"

#include <stdio.h>

#include "backoff.h"
#include "tap.h"

/* test_schedule - rnd 0.5 means no jitter: base * factor^(n-1) */
static void
test_schedule(void)
{
	struct backoff b = { 300, 2.0, 4 * 3600, 0.2 };
	time_t want = 300;
	unsigned n;

	for (n = 1; n <= 6; n++, want *= 2)
		is_int(backoff_delay(&b, n, 0.5), want, "attempt %u waits %lld s", n,
		    (long long)want);
	is_int(backoff_delay(&b, 7, 0.5), 4 * 3600, "attempt 7 is capped (19200 > 14400)");
	is_int(backoff_delay(&b, 1000, 0.5), 4 * 3600, "attempt 1000 is capped, no overflow");
	is_int(backoff_delay(&b, 0, 0.5), 300, "attempt 0 counts as 1");

	struct backoff c = { 10, 1.5, 1000, 0 };
	is_int(backoff_delay(&c, 3, 0.5), 23, "factor 1.5: 10*1.5^2 = 22.5 rounds to 23");
	is_int(backoff_delay(&c, 3, 0.0), 23, "jitter 0: rnd does not matter");
	is_int(backoff_delay(&c, 3, 0.999), 23, "  nor at the top");
}

/* test_jitter - the draw spans [1 - jitter, 1 + jitter] */
static void
test_jitter(void)
{
	struct backoff b = { 100, 2.0, 100000, 0.2 };
	time_t lo = backoff_delay(&b, 1, 0.0), hi = backoff_delay(&b, 1, 0.999999);

	is_int(lo, 80, "rnd 0 gives base * (1 - jitter)");
	ok(hi >= 119 && hi <= 120, "rnd ~1 gives base * (1 + jitter) (%lld)", (long long)hi);
	struct backoff capped = { 100, 2.0, 100, 0.5 };
	ok(backoff_delay(&capped, 1, 0.999) <= 100, "jitter never exceeds the cap");
	is_int(backoff_delay(&capped, 1, 0.0), 50, "  but may go below it");
	struct backoff full = { 10, 2.0, 1000, 1.0 };
	is_int(backoff_delay(&full, 1, 0.0), 1, "jitter 1 at rnd 0 is floored at 1 s");
	struct backoff zero = { 0, 2.0, 1000, 0.0 };
	is_int(backoff_delay(&zero, 5, 0.5), 1, "base 0 still waits 1 s");
}

/* test_random - backoff_random stays in [0, 1) */
static void
test_random(void)
{
	int i, inrange = 1, lo = 0, hi = 0;

	for (i = 0; i < 10000; i++) {
		double r = backoff_random();

		if (r < 0 || r >= 1)
			inrange = 0;
		lo += r < 0.5;
		hi += r >= 0.5;
	}
	ok(inrange, "backoff_random in [0, 1) over 10000 draws");
	ok(lo > 4000 && hi > 4000, "  and spread over both halves (%d/%d)", lo, hi);
}

/* main - run the groups */
int
main(void)
{
	test_schedule();
	test_jitter();
	test_random();
	return done_testing();
}
