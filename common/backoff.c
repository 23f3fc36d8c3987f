/*
 * backoff.c - jittered exponential backoff for queue retries and child
 * restarts.
 *
 * Owns: the delay formula in backoff.h.
 * SECURITY: none; pure arithmetic, bounded by cap.
 * STANDARDS: none (RFC 5321 4.5.4.1 asks for retry intervals of at least
 * 30 minutes by default; the configuration decides).
 */
#include "config.h"

#include <stdlib.h>

#include "backoff.h"

/* backoff_delay - min(cap, base*factor^(attempt-1)) jittered, in [1, cap] */
time_t
backoff_delay(const struct backoff *b, unsigned attempt, double rnd)
{
	double d = (double)b->base, cap = (double)b->cap, jit = b->jitter;
	unsigned i;

	if (cap < 1)
		cap = 1;
	if (attempt < 1)
		attempt = 1;
	for (i = 1; i < attempt && d < cap; i++)
		d *= b->factor < 1 ? 1 : b->factor;
	if (d > cap)
		d = cap;
	if (jit < 0)
		jit = 0;
	if (jit > 1)
		jit = 1;
	if (rnd < 0)
		rnd = 0;
	if (rnd > 1)
		rnd = 1;
	d *= 1.0 + jit * (2.0 * rnd - 1.0);
	if (d > cap)
		d = cap;
	if (d < 1)
		d = 1;
	return (time_t)(d + 0.5);     /* d >= 1: round half up */
}

/* backoff_random - uniform draw in [0, 1) from arc4random(3) */
double
backoff_random(void)
{
	return (double)arc4random() / 4294967296.0;
}
