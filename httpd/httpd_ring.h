/*
 * httpd_ring.h - the bounded rings of counter samples behind the status
 * page's charts and /api/v1/stats/history (httpd_ring.c). Pure
 * bookkeeping, no I/O and no clock of its own, so t/unit/ring-test.c
 * drives it directly.
 *
 * A ring holds at most its capacity of samples, the oldest overwritten
 * first; its memory is allocated once, at ring_init(), and never grows.
 * A coarse ring is fed by an accumulator that sums the counters of a
 * fixed number of fine samples and keeps the gauges of the last one.
 */
#ifndef POSTERN_HTTPD_RING_H
#define POSTERN_HTTPD_RING_H

#include <stddef.h>
#include <stdint.h>

/* What a sample counts during its step (deltas of the shared counters). */
enum ring_counter { RC_ACCEPTED = 0, RC_DELIVERED, RC_DEFERRED, RC_BOUNCED,
	RC_MAX };
/* What a sample reads at its end (gauges): the queue by state
 * (enum stats_queue_state order), then the oldest message's age. */
enum ring_gauge { RG_ACTIVE = 0, RG_PENDING, RG_DEFERRED, RG_HELD, RG_BROKEN,
	RG_OLDEST_AGE, RG_MAX };

struct ring_sample {
	int64_t t;                      /* unix seconds at the step's end */
	uint64_t c[RC_MAX];
	int64_t g[RG_MAX];
};

struct ring {
	struct ring_sample *s;          /* cap entries */
	size_t cap, n, next;            /* n used; next: where the next goes */
};

/* A coarse step being summed. */
struct ring_acc {
	struct ring_sample sum;
	unsigned n;                     /* fine samples in it */
};

/* ring_init - an empty ring of capacity cap (>= 1) */
void ring_init(struct ring *r, size_t cap);
/* ring_free - release its memory */
void ring_free(struct ring *r);
/* ring_push - append s, overwriting the oldest when full */
void ring_push(struct ring *r, const struct ring_sample *s);
/* ring_len - samples held (never more than cap) */
size_t ring_len(const struct ring *r);
/* ring_get - sample i, 0 the oldest; NULL when i >= ring_len() */
const struct ring_sample *ring_get(const struct ring *r, size_t i);
/* ring_acc_add - add fine sample s to a; when a holds 'every' samples,
 * push their sum (counters added, gauges and time of the last) to coarse
 * and start again; returns 1 when it pushed */
int ring_acc_add(struct ring_acc *a, const struct ring_sample *s, unsigned every,
    struct ring *coarse);

#endif
