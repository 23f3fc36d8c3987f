/*
 * ring-test.c - tests of httpd/httpd_ring.c: a ring never holds more
 * than its capacity and gives its samples oldest first after wrapping
 * round; the accumulator sums the counters of a fixed number of fine
 * samples into one coarse sample with the gauges and time of the last.
 *
 * SECURITY: none (a test). STANDARDS: none.
 */
#include "config.h"

#include <string.h>

#include "httpd_ring.h"
#include "tap.h"

/* sample - a sample at t with every counter c and every gauge g */
static struct ring_sample
sample(long long t, unsigned c, long long g)
{
	struct ring_sample s;
	int i;

	memset(&s, 0, sizeof(s));
	s.t = t;
	for (i = 0; i < RC_MAX; i++)
		s.c[i] = c;
	for (i = 0; i < RG_MAX; i++)
		s.g[i] = g;
	return s;
}

/* test_bound - capacity 5: 12 pushes keep the last 5, in order */
static void
test_bound(void)
{
	struct ring r;
	struct ring_sample s;
	int i, ordered = 1;

	ring_init(&r, 5);
	is_int((long long)ring_len(&r), 0, "a new ring is empty");
	ok(ring_get(&r, 0) == NULL, "  and has no sample 0");
	for (i = 1; i <= 3; i++) {
		s = sample(100 + i, (unsigned)i, i);
		ring_push(&r, &s);
	}
	is_int((long long)ring_len(&r), 3, "3 pushes: 3 samples");
	is_int(ring_get(&r, 0)->t, 101, "  the oldest first");
	for (i = 4; i <= 12; i++) {
		s = sample(100 + i, (unsigned)i, i);
		ring_push(&r, &s);
		if (ring_len(&r) > 5)
			ordered = 0;
	}
	ok(ordered, "the length never passed the capacity");
	is_int((long long)ring_len(&r), 5, "12 pushes into 5: 5 samples");
	for (i = 0; i < 5; i++)
		if (ring_get(&r, (size_t)i)->t != 108 + i)
			ordered = 0;
	ok(ordered, "  the last five, oldest first (108..112)");
	is_int((long long)ring_get(&r, 4)->c[RC_DELIVERED], 12, "  the newest's counter");
	ok(ring_get(&r, 5) == NULL, "  nothing past the end");
	ring_free(&r);
	ok(r.s == NULL && r.cap == 0, "ring_free releases it");
}

/* test_coarse - every 3 fine samples make one coarse sample */
static void
test_coarse(void)
{
	struct ring coarse;
	struct ring_acc acc;
	struct ring_sample s;
	int i, pushed = 0;

	memset(&acc, 0, sizeof(acc));
	ring_init(&coarse, 2);
	for (i = 1; i <= 7; i++) {
		s = sample(i * 10, (unsigned)i, 100 + i);
		pushed += ring_acc_add(&acc, &s, 3, &coarse);
	}
	is_int(pushed, 2, "7 fine samples, 3 per step: 2 coarse samples");
	is_int((long long)ring_len(&coarse), 2, "  in the coarse ring");
	is_int((long long)ring_get(&coarse, 0)->c[RC_ACCEPTED], 1 + 2 + 3,
	    "  counters summed (1+2+3)");
	is_int(ring_get(&coarse, 0)->g[RG_DEFERRED], 103, "  gauges of the last");
	is_int(ring_get(&coarse, 0)->t, 30, "  time of the last");
	is_int((long long)ring_get(&coarse, 1)->c[RC_BOUNCED], 4 + 5 + 6,
	    "  the second: 4+5+6");
	is_int((long long)acc.n, 1, "one fine sample waits for the next step");
	for (i = 8; i <= 12; i++) {
		s = sample(i * 10, 1, 0);
		ring_acc_add(&acc, &s, 3, &coarse);
	}
	is_int((long long)ring_len(&coarse), 2, "the coarse ring keeps its bound");
	is_int(ring_get(&coarse, 1)->t, 120, "  and the newest step last");
	ring_free(&coarse);
}

/* main - run the groups */
int
main(void)
{
	test_bound();
	test_coarse();
	return done_testing();
}
