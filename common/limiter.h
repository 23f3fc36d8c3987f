/*
 * limiter.h - per-key rate limiting behind an interface (ARCHITECTURE.md,
 * "Scaling out"): one hit per key per interval.
 *
 * A limiter is a vtable and its state. limiter_local_new() makes the
 * in-memory implementation (one process, one instance); a shared store
 * (Redis: SET key 1 NX EX interval, and TTL for Retry-After) provides the
 * same three operations so a cluster of instances shares the counters.
 * Callers only use limiter_hit() and limiter_free().
 *
 * Also here: struct timemap, the bounded key -> time table the local
 * limiter and the local nonce store (noncestore.h) are built on.
 */
#ifndef POSTERN_LIMITER_H
#define POSTERN_LIMITER_H

#include <stddef.h>
#include <time.h>

struct limiter;

/* What every implementation provides. */
struct limiter_ops {
	const char *name;       /* "local", "redis" */
	/* hit - count a hit for key at now: 1 allowed, 0 limited with
	 * *retry_after seconds (>= 1) until the next allowed hit, -1 when the
	 * store cannot answer (the caller refuses with a 503) */
	int (*hit)(struct limiter *l, const char *key, time_t now,
	    time_t *retry_after);
	/* free - release the implementation's state and l itself */
	void (*free)(struct limiter *l);
};

struct limiter {
	const struct limiter_ops *ops;
	time_t interval;        /* one hit per key per interval; 0 = no limit */
	void *impl;             /* the implementation's state */
};

/* limiter_local_new - the in-memory limiter; at most max_keys keys are
 * remembered (when full and nothing has expired, hits are refused: -1) */
struct limiter *limiter_local_new(time_t interval, size_t max_keys);
/* limiter_hit - see limiter_ops.hit; always 1 when interval is 0 */
int limiter_hit(struct limiter *l, const char *key, time_t now,
    time_t *retry_after);
/* limiter_free - release; *lp = NULL */
void limiter_free(struct limiter **lp);

/* ---- timemap: a bounded hash table of string key -> time ---- */

struct timemap_entry;

struct timemap {
	struct timemap_entry **bucket;
	size_t nbucket;
	size_t n;               /* entries */
	size_t max;             /* never more entries than this */
	time_t ttl;             /* entries older than this are expired */
};

/* timemap_init - an empty map of at most max entries living ttl seconds */
void timemap_init(struct timemap *m, size_t max, time_t ttl);
/* timemap_get - 1 and *t if key is present and not expired at now, else 0 */
int timemap_get(struct timemap *m, const char *key, time_t now, time_t *t);
/* timemap_put - set key to t (replacing); 0, or -1 when full of live
 * entries */
int timemap_put(struct timemap *m, const char *key, time_t t, time_t now);
/* timemap_del - remove key; 1 if it was there */
int timemap_del(struct timemap *m, const char *key);
/* timemap_expire - drop every entry older than ttl at now */
void timemap_expire(struct timemap *m, time_t now);
/* timemap_clear - release every entry and the table */
void timemap_clear(struct timemap *m);

#endif
