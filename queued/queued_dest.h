/*
 * queued_dest.h - destinations of the queue: per-destination concurrency,
 * rate and whole-destination backoff (queued_dest.c). Pure bookkeeping,
 * no I/O and no clock of its own (times are passed in), so the unit test
 * t/unit/dest-test.c drives it directly.
 *
 * A destination is the key queued_destination() computes for a recipient
 * (the lower-cased domain). Each recipient holds a reference; a
 * destination with no reference and nothing in flight is idle: it is
 * kept only while it remembers something (its rate count for the
 * current second, or a backoff that is not over), on an idle list of at
 * most QDEST_IDLE_MAX entries (the oldest idle one is forgotten first),
 * and freed once that is over (qdest_expire).
 */
#ifndef POSTERN_QUEUED_DEST_H
#define POSTERN_QUEUED_DEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include "backoff.h"

struct qdest {
	RB_ENTRY(qdest) entry;
	char *key;
	unsigned refs;          /* recipients pointing at it */
	unsigned inflight;      /* jobs in flight */
	uint32_t failures;      /* connection-level failures in a row */
	int64_t down_until;     /* unix seconds; 0 = up */
	int64_t rate_second;    /* the second rate_count counts */
	unsigned rate_count;    /* jobs started in rate_second */
	char (*parked)[17];     /* queue ids waiting for a free slot, FIFO */
	size_t nparked, parked_head, parked_cap;
	TAILQ_ENTRY(qdest) idle_entry;  /* on the idle list, oldest first */
	int idle;               /* on the idle list */
};

/* Idle destinations kept for their backoff or rate, at most (memory:
 * about 100 bytes plus the key each). Referenced ones are not counted:
 * the queue itself bounds them. */
#define QDEST_IDLE_MAX 10000

/* The limits every destination shares (from conf queue {}). */
struct qdest_limits {
	unsigned concurrency;   /* destination_concurrency, >= 1 */
	unsigned rate;          /* destination_rate per second, 0 = any */
	struct backoff backoff; /* the retry schedule, for destinations too */
};

/* What a finished job tells about its destination. */
enum qdest_outcome {
	QDEST_REACHED,          /* at least one recipient got an answer */
	QDEST_CONN_FAILED,      /* every recipient: class 4, dsn 4.4.x */
	QDEST_ABANDONED,        /* no result (the delivery process died) */
};

/* When qdest_wait() says a job must wait for a free slot. */
#define QDEST_FULL (-1)

/* qdest_ref - the destination 'key' (created), one reference more */
struct qdest *qdest_ref(const char *key);
/* qdest_unref - drop a reference; *dp = NULL */
void qdest_unref(struct qdest **dp);
/* qdest_find - the destination 'key' or NULL (no reference taken) */
struct qdest *qdest_find(const char *key);
/* qdest_wait - 0 if a job to d may start at 'now'; else the unix second
 * to wait for (down, or the rate used up), or QDEST_FULL when the
 * concurrency is used up (wait for qdest_unpark) */
int64_t qdest_wait(const struct qdest *d, const struct qdest_limits *lim,
    int64_t now);
/* qdest_started - a job to d starts now */
void qdest_started(struct qdest *d, int64_t now);
/* qdest_done - a job to d ended with outcome o; a connection failure
 * marks d down for backoff(failures, rnd) seconds. Returns 1 if d just
 * went down. */
int qdest_done(struct qdest *d, enum qdest_outcome o,
    const struct qdest_limits *lim, int64_t now, double rnd);
/* qdest_park - remember message id as waiting for a slot of d */
void qdest_park(struct qdest *d, const char *id);
/* qdest_unpark - pop the oldest parked id into id (17 bytes); 0 if none */
int qdest_unpark(struct qdest *d, char *id);
/* qdest_all_up - every destination up again (flush) */
void qdest_all_up(void);
/* qdest_up - destination d up again (flush of one destination) */
void qdest_up(struct qdest *d);
/* qdest_expire - free the idle destinations whose backoff and rate
 * second are over at 'now'; runs by itself when a destination is made
 * (at most once per second) */
void qdest_expire(int64_t now);
/* qdest_count - destinations known (tests); qdest_idle_count - of them,
 * idle ones */
size_t qdest_count(void);
size_t qdest_idle_count(void);

#endif
