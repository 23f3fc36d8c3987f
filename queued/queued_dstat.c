/*
 * queued_dstat.c - per-destination figures for the operator console:
 * the outcomes of the last hour and the last error of each destination,
 * and the tally of the waiting queue by destination.
 *
 * Owns: the history tree (struct hist by key, at most QDSTAT_MAX, an LRU
 * list deciding which is forgotten) and the tallies qdwalk_new() makes.
 * A history keeps one bucket per minute for QDSTAT_MINUTES minutes,
 * reused when its minute comes round again, so "the last hour" costs a
 * fixed 60 buckets however much is delivered. A tally lives for one
 * control request (queued_browse.c fills it while walking the queue in
 * batches); it holds copies of keys, never pointers into the queue,
 * which may change between batches.
 * SECURITY: no I/O; keys and reply texts come from queued's own records
 * (already bounded: QUEUED_REPLY_MAX).
 * STANDARDS: none.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include "queued_dstat.h"
#include "spool.h"
#include "util.h"

/* The outcome history of one destination. */
struct hist {
	RB_ENTRY(hist) entry;
	TAILQ_ENTRY(hist) lru;          /* most recently updated last */
	char *key;
	int64_t minute[QDSTAT_MINUTES]; /* the unix minute a bucket counts */
	uint32_t count[QDSTAT_MINUTES][QDSTAT_OUTCOMES];
	char dsn[16];
	char *error;
	int64_t error_at, delivered_at;
};

/* One destination of a tally. */
struct tally {
	RB_ENTRY(tally) entry;
	char *key;
	unsigned n[3];                  /* waiting, deferred, held */
	char seen[3][QUEUE_ID_LEN + 1]; /* the message each last counted */
	const struct hist *h;
};

RB_HEAD(hist_tree, hist);
RB_HEAD(tally_tree, tally);

struct qdwalk {
	struct tally_tree t;
};

static struct hist_tree hists = RB_INITIALIZER(&hists);
static TAILQ_HEAD(, hist) lru = TAILQ_HEAD_INITIALIZER(lru);
static size_t nhists;

/* cmp_hist, cmp_tally - order by key */
static int
cmp_hist(const struct hist *a, const struct hist *b)
{
	return strcmp(a->key, b->key);
}

static int
cmp_tally(const struct tally *a, const struct tally *b)
{
	return strcmp(a->key, b->key);
}

#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
RB_GENERATE_STATIC(hist_tree, hist, entry, cmp_hist)
RB_GENERATE_STATIC(tally_tree, tally, entry, cmp_tally)

/* hist_find - the history of key, or NULL */
static struct hist *
hist_find(const char *key)
{
	struct hist k;

	k.key = (char *)(uintptr_t)key;
	return RB_FIND(hist_tree, &hists, &k);
}

/* hist_free - forget h */
static void
hist_free(struct hist *h)
{
	RB_REMOVE(hist_tree, &hists, h);
	TAILQ_REMOVE(&lru, h, lru);
	nhists--;
	free(h->error);
	free(h->key);
	free(h);
}

/* hist_get - the history of key, made (forgetting the least recently
 * updated beyond QDSTAT_MAX) if new, moved to the end of the LRU list */
static struct hist *
hist_get(const char *key)
{
	struct hist *h = hist_find(key);

	if (h != NULL) {
		TAILQ_REMOVE(&lru, h, lru);
		TAILQ_INSERT_TAIL(&lru, h, lru);
		return h;
	}
	while (nhists >= QDSTAT_MAX)
		hist_free(TAILQ_FIRST(&lru));
	h = xcalloc(1, sizeof(*h));
	h->key = xstrdup(key);
	h->error = xstrdup("");
	RB_INSERT(hist_tree, &hists, h);
	TAILQ_INSERT_TAIL(&lru, h, lru);
	nhists++;
	return h;
}

/* qdstat_outcome - one outcome into its minute's bucket */
void
qdstat_outcome(const char *key, enum qdstat_outcome o, const char *dsn,
    const char *reply, int64_t now)
{
	struct hist *h;
	int64_t minute = now / 60;
	size_t b = (size_t)(minute % QDSTAT_MINUTES);

	if (key == NULL || o >= QDSTAT_OUTCOMES)
		return;
	h = hist_get(key);
	if (h->minute[b] != minute) {
		memset(h->count[b], 0, sizeof(h->count[b]));
		h->minute[b] = minute;
	}
	h->count[b][o]++;
	if (o == QDSTAT_DELIVERED) {
		h->delivered_at = now;
		return;
	}
	strlcpy(h->dsn, dsn != NULL ? dsn : "", sizeof(h->dsn));
	free(h->error);
	h->error = xstrdup(reply != NULL ? reply : "");
	h->error_at = now;
}

/* qdstat_count - how many destinations have a history */
size_t
qdstat_count(void)
{
	return nhists;
}

/* qdstat_reset - forget them all */
void
qdstat_reset(void)
{
	while (!TAILQ_EMPTY(&lru))
		hist_free(TAILQ_FIRST(&lru));
}

/* qdwalk_new - an empty tally */
struct qdwalk *
qdwalk_new(void)
{
	struct qdwalk *w = xcalloc(1, sizeof(*w));

	RB_INIT(&w->t);
	return w;
}

/* tally_get - the tally entry of key, made if new */
static struct tally *
tally_get(struct qdwalk *w, const char *key)
{
	struct tally k, *t;

	k.key = (char *)(uintptr_t)key;
	if ((t = RB_FIND(tally_tree, &w->t, &k)) != NULL)
		return t;
	t = xcalloc(1, sizeof(*t));
	t->key = xstrdup(key);
	RB_INSERT(tally_tree, &w->t, t);
	return t;
}

/* count_once - count message id in column c of t unless already done */
static void
count_once(struct tally *t, int c, const char *id)
{
	if (strcmp(t->seen[c], id) == 0)
		return;
	strlcpy(t->seen[c], id, sizeof(t->seen[c]));
	t->n[c]++;
}

/* qdwalk_rcpt - a waiting recipient: its message counts once per column */
void
qdwalk_rcpt(struct qdwalk *w, const char *key, const char *id,
    enum qdstat_wait how)
{
	struct tally *t = tally_get(w, key);

	count_once(t, 0, id);
	if (how == QDSTAT_WAIT_DEFERRED)
		count_once(t, 1, id);
	else if (how == QDSTAT_WAIT_HELD)
		count_once(t, 2, id);
}

/* hist_row - the history part of a row: outcomes since now - 1 hour */
static void
hist_row(const struct hist *h, int64_t now, struct qdstat_row *r)
{
	int64_t minute = now / 60;
	size_t b;
	int o;

	r->last_dsn = r->last_error = "";
	if (h == NULL)
		return;
	for (b = 0; b < QDSTAT_MINUTES; b++) {
		if (h->minute[b] <= minute - QDSTAT_MINUTES || h->minute[b] > minute)
			continue;
		for (o = 0; o < QDSTAT_OUTCOMES; o++)
			r->last_hour[o] += h->count[b][o];
	}
	r->last_dsn = h->dsn;
	r->last_error = h->error;
	r->last_error_at = h->error_at;
	r->last_delivered_at = h->delivered_at;
}

/* qdwalk_rows - every destination of w or with a history, in key order */
void
qdwalk_rows(struct qdwalk *w, int64_t now,
    void (*fn)(const struct qdstat_row *, void *), void *arg)
{
	struct qdstat_row r;
	struct hist *h;
	struct tally *t;

	RB_FOREACH(h, hist_tree, &hists)
		tally_get(w, h->key)->h = h;
	RB_FOREACH(t, tally_tree, &w->t) {
		memset(&r, 0, sizeof(r));
		r.key = t->key;
		r.waiting = t->n[0];
		r.deferred = t->n[1];
		r.held = t->n[2];
		hist_row(t->h, now, &r);
		fn(&r, arg);
	}
}

/* qdwalk_free - release a tally */
void
qdwalk_free(struct qdwalk **wp)
{
	struct qdwalk *w = *wp;
	struct tally *t, *next;

	if (w == NULL)
		return;
	for (t = RB_MIN(tally_tree, &w->t); t != NULL; t = next) {
		next = RB_NEXT(tally_tree, &w->t, t);
		RB_REMOVE(tally_tree, &w->t, t);
		free(t->key);
		free(t);
	}
	free(w);
	*wp = NULL;
}
