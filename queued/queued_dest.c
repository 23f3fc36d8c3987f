/*
 * queued_dest.c - the destinations of the queue: how many jobs are in
 * flight to each, how many started this second, and whether it is down.
 *
 * Owns: the tree of struct qdest by key, and each destination's FIFO of
 * parked queue ids (messages with due recipients that found the
 * destination's concurrency used up; a finishing job unparks one).
 *
 * Whole-destination backoff: a job whose every recipient failed at the
 * connection level (class 4, dsn 4.4.x: no answer, refused, timed out)
 * counts one failure of its destination, which is then down until
 * now + backoff_delay(failures, rnd), with the retry schedule of the
 * queue. While it is down its other due recipients wait for it without
 * counting attempts; other destinations are not affected. Any job that
 * reached the destination resets the count. So one dead domain costs
 * one job per backoff step, never the whole concurrency.
 *
 * Memory: a destination nobody refers to any more is freed at once
 * unless it still remembers a backoff that is not over or the jobs
 * started this second; then it waits on the idle list (at most
 * QDEST_IDLE_MAX, the oldest forgotten first: forgetting costs at most
 * one early probe) until qdest_expire() finds it over. So destinations
 * that failed and were given up (bounced, deleted) do not stay forever.
 *
 * SECURITY: no I/O; keys come from recipient addresses already accepted
 * by smtpd (bounded by the address limits there).
 * STANDARDS: RFC 5321 4.5.4.1 (retry strategy per destination).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queued_dest.h"
#include "util.h"

RB_HEAD(qdest_tree, qdest);

static struct qdest_tree dests = RB_INITIALIZER(&dests);
static size_t ndests;
static TAILQ_HEAD(, qdest) idle_list = TAILQ_HEAD_INITIALIZER(idle_list);
static size_t nidle;
static int64_t last_expire;     /* the second of the last qdest_expire */

/* cmp_dest - order destinations by key */
static int
cmp_dest(const struct qdest *a, const struct qdest *b)
{
	return strcmp(a->key, b->key);
}

#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
RB_GENERATE_STATIC(qdest_tree, qdest, entry, cmp_dest)

/* qdest_find - the destination 'key', or NULL */
struct qdest *
qdest_find(const char *key)
{
	struct qdest k;

	k.key = (char *)(uintptr_t)key;
	return RB_FIND(qdest_tree, &dests, &k);
}

/* dest_remembers - d still holds state that must outlive its last
 * reference: its rate count for the current second, or a backoff that
 * is not over (once it is, the next job is a probe like any first one) */
static int
dest_remembers(const struct qdest *d, int64_t now)
{
	return d->rate_second >= now || d->down_until > now;
}

/* dest_unidle - take d off the idle list (it is referenced again) */
static void
dest_unidle(struct qdest *d)
{
	if (!d->idle)
		return;
	TAILQ_REMOVE(&idle_list, d, idle_entry);
	d->idle = 0;
	nidle--;
}

/* dest_free - forget d */
static void
dest_free(struct qdest *d)
{
	dest_unidle(d);
	RB_REMOVE(qdest_tree, &dests, d);
	ndests--;
	free(d->parked);
	free(d->key);
	free(d);
}

/* dest_idle - d is unreferenced but remembers: keep it on the idle list,
 * forgetting the oldest idle destination beyond QDEST_IDLE_MAX */
static void
dest_idle(struct qdest *d)
{
	if (!d->idle) {
		TAILQ_INSERT_TAIL(&idle_list, d, idle_entry);
		d->idle = 1;
		nidle++;
	}
	while (nidle > QDEST_IDLE_MAX)
		dest_free(TAILQ_FIRST(&idle_list));
}

/* qdest_expire - free idle destinations that remember nothing at now */
void
qdest_expire(int64_t now)
{
	struct qdest *d, *next;

	last_expire = now;
	for (d = TAILQ_FIRST(&idle_list); d != NULL; d = next) {
		next = TAILQ_NEXT(d, idle_entry);
		if (!dest_remembers(d, now))
			dest_free(d);
	}
}

/* qdest_ref - find or create 'key' and take a reference */
struct qdest *
qdest_ref(const char *key)
{
	int64_t now = (int64_t)time(NULL);
	struct qdest *d;

	if ((d = qdest_find(key)) == NULL) {
		if (now != last_expire)
			qdest_expire(now);
		d = xcalloc(1, sizeof(*d));
		d->key = xstrdup(key);
		RB_INSERT(qdest_tree, &dests, d);
		ndests++;
	}
	dest_unidle(d);
	d->refs++;
	return d;
}

/* dest_maybe_free - once nothing refers to d: free it, or keep it idle
 * while it remembers (a freed destination would forget its rate and
 * backoff) */
static void
dest_maybe_free(struct qdest *d)
{
	if (d->refs > 0 || d->inflight > 0) {
		dest_unidle(d);
		return;
	}
	if (dest_remembers(d, (int64_t)time(NULL)))
		dest_idle(d);
	else
		dest_free(d);
}

/* qdest_unref - drop one reference; *dp = NULL */
void
qdest_unref(struct qdest **dp)
{
	struct qdest *d = *dp;

	if (d == NULL)
		return;
	*dp = NULL;
	if (d->refs > 0)
		d->refs--;
	dest_maybe_free(d);
}

/* qdest_wait - 0: start now; a second to wait for; QDEST_FULL: park */
int64_t
qdest_wait(const struct qdest *d, const struct qdest_limits *lim, int64_t now)
{
	if (d->down_until > now)
		return d->down_until;
	/* a failing destination gets one probe at a time */
	if (d->inflight >= (d->failures > 0 ? 1 : lim->concurrency))
		return QDEST_FULL;
	if (lim->rate > 0 && d->rate_second == now && d->rate_count >= lim->rate)
		return now + 1;
	return 0;
}

/* qdest_started - count a job starting at 'now' */
void
qdest_started(struct qdest *d, int64_t now)
{
	d->inflight++;
	if (d->rate_second != now) {
		d->rate_second = now;
		d->rate_count = 0;
	}
	d->rate_count++;
}

/* qdest_done - a job ended; back the destination off on a connection
 * failure; 1 if it just went down */
int
qdest_done(struct qdest *d, enum qdest_outcome o, const struct qdest_limits *lim,
    int64_t now, double rnd)
{
	int went_down = 0;

	if (d->inflight > 0)
		d->inflight--;
	if (o == QDEST_ABANDONED)
		return 0;
	if (o == QDEST_CONN_FAILED) {
		d->failures++;
		went_down = d->down_until <= now;
		d->down_until = now + backoff_delay(&lim->backoff, d->failures, rnd);
	} else {
		d->failures = 0;
		d->down_until = 0;
	}
	return went_down;
}

/* qdest_park - queue id waits for a slot of d */
void
qdest_park(struct qdest *d, const char *id)
{
	size_t i;

	if (d->nparked == d->parked_cap) {
		/* compact, then grow */
		if (d->parked_head > 0) {
			for (i = 0; i < d->nparked - d->parked_head; i++)
				memcpy(d->parked[i], d->parked[d->parked_head + i],
				    sizeof(d->parked[0]));
			d->nparked -= d->parked_head;
			d->parked_head = 0;
		}
		if (d->nparked == d->parked_cap) {
			d->parked_cap = d->parked_cap ? d->parked_cap * 2 : 16;
			d->parked = xreallocarray(d->parked, d->parked_cap,
			    sizeof(d->parked[0]));
		}
	}
	strlcpy(d->parked[d->nparked++], id, sizeof(d->parked[0]));
}

/* qdest_unpark - the oldest parked id into id; 0 if there is none */
int
qdest_unpark(struct qdest *d, char *id)
{
	if (d->parked_head >= d->nparked) {
		d->parked_head = d->nparked = 0;
		return 0;
	}
	strlcpy(id, d->parked[d->parked_head++], sizeof(d->parked[0]));
	return 1;
}

/* qdest_up - forget d's backoff */
void
qdest_up(struct qdest *d)
{
	d->down_until = 0;
	d->failures = 0;
}

/* qdest_all_up - forget every destination's backoff */
void
qdest_all_up(void)
{
	struct qdest *d;

	RB_FOREACH(d, qdest_tree, &dests)
		qdest_up(d);
}

/* qdest_count - how many destinations exist */
size_t
qdest_count(void)
{
	return ndests;
}

/* qdest_idle_count - how many of them are idle */
size_t
qdest_idle_count(void)
{
	return nidle;
}
