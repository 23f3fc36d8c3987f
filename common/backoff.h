/*
 * backoff.h - jittered exponential backoff (queue retries, child restarts).
 *
 * delay(attempt) = min(cap, base * factor^(attempt-1)), then multiplied by
 * a uniform random factor in [1 - jitter, 1 + jitter] and clamped to
 * [1, cap]. attempt counts from 1 (the wait after the first failure).
 */
#ifndef POSTERN_BACKOFF_H
#define POSTERN_BACKOFF_H

#include <stdint.h>
#include <time.h>

struct backoff {
	time_t base;
	double factor;
	time_t cap;
	double jitter;          /* 0 .. 1 */
};

/* backoff_delay - the wait before retry number 'attempt' (>= 1), using
 * 'rnd' in [0, 1) as the random draw (so tests can fix it) */
time_t backoff_delay(const struct backoff *b, unsigned attempt, double rnd);
/* backoff_random - arc4random(3) draw in [0, 1) */
double backoff_random(void);

#endif
