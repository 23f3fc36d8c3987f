/*
 * limiter.c - the rate limiter interface and its in-memory
 * implementation, and the bounded key -> time table (timemap) beneath
 * it and the local nonce store.
 *
 * Owns: struct limiter's local state (a timemap of key -> time of the
 * last allowed hit) and the timemap buckets.
 * SECURITY: keys come from the network (client addresses): the table is
 * bounded (max entries; expired ones are dropped first, then the store
 * refuses) and the hash is seeded at random so a peer cannot aim many
 * keys at one bucket. Nothing here logs.
 * STANDARDS: none (RFC 9110 10.2.3 Retry-After is the caller's).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "limiter.h"
#include "util.h"

#define TIMEMAP_MIN_BUCKETS 64

struct timemap_entry {
	struct timemap_entry *next;
	time_t t;
	char key[];
};

static uint64_t timemap_seed;

/* timemap_hash - FNV-1a over key, with a per-process random seed */
static size_t
timemap_hash(const struct timemap *m, const char *key)
{
	uint64_t h = 14695981039346656037ull ^ timemap_seed;

	while (*key != '\0') {
		h ^= (unsigned char)*key++;
		h *= 1099511628211ull;
	}
	return (size_t)(h % m->nbucket);
}

/* timemap_init - an empty map; buckets sized for max entries */
void
timemap_init(struct timemap *m, size_t max, time_t ttl)
{
	if (timemap_seed == 0)
		timemap_seed = ((uint64_t)arc4random() << 32) | arc4random() | 1;
	m->nbucket = max / 4 > TIMEMAP_MIN_BUCKETS ? max / 4 : TIMEMAP_MIN_BUCKETS;
	m->bucket = xcalloc(m->nbucket, sizeof(*m->bucket));
	m->n = 0;
	m->max = max;
	m->ttl = ttl;
}

/* timemap_find - the link pointing at key's entry (or at the NULL end) */
static struct timemap_entry **
timemap_find(struct timemap *m, const char *key)
{
	struct timemap_entry **pp = &m->bucket[timemap_hash(m, key)];

	while (*pp != NULL && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* timemap_live - e is not expired at now */
static int
timemap_live(const struct timemap *m, const struct timemap_entry *e, time_t now)
{
	return now - e->t < m->ttl;
}

/* timemap_get - the live entry's time */
int
timemap_get(struct timemap *m, const char *key, time_t now, time_t *t)
{
	struct timemap_entry *e = *timemap_find(m, key);

	if (e == NULL || !timemap_live(m, e, now))
		return 0;
	*t = e->t;
	return 1;
}

/* timemap_put - insert or replace; expire first when full */
int
timemap_put(struct timemap *m, const char *key, time_t t, time_t now)
{
	struct timemap_entry **pp = timemap_find(m, key), *e;
	size_t len;

	if (*pp != NULL) {
		(*pp)->t = t;
		return 0;
	}
	if (m->n >= m->max) {
		timemap_expire(m, now);
		if (m->n >= m->max)
			return -1;
		pp = timemap_find(m, key);
	}
	len = strlen(key) + 1;
	e = xmalloc(sizeof(*e) + len);
	memcpy(e->key, key, len);
	e->t = t;
	e->next = NULL;
	*pp = e;
	m->n++;
	return 0;
}

/* timemap_del - unlink and free key's entry */
int
timemap_del(struct timemap *m, const char *key)
{
	struct timemap_entry **pp = timemap_find(m, key), *e = *pp;

	if (e == NULL)
		return 0;
	*pp = e->next;
	free(e);
	m->n--;
	return 1;
}

/* timemap_expire - walk every bucket, dropping expired entries */
void
timemap_expire(struct timemap *m, time_t now)
{
	struct timemap_entry **pp, *e;
	size_t i;

	for (i = 0; i < m->nbucket; i++) {
		pp = &m->bucket[i];
		while ((e = *pp) != NULL) {
			if (timemap_live(m, e, now)) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			free(e);
			m->n--;
		}
	}
}

/* timemap_clear - free all */
void
timemap_clear(struct timemap *m)
{
	struct timemap_entry *e;
	size_t i;

	for (i = 0; m->bucket != NULL && i < m->nbucket; i++)
		while ((e = m->bucket[i]) != NULL) {
			m->bucket[i] = e->next;
			free(e);
		}
	free(m->bucket);
	m->bucket = NULL;
	m->n = 0;
}

/* ---- the local limiter ---- */

/* local_hit - allowed when the key's last allowed hit is interval old */
static int
local_hit(struct limiter *l, const char *key, time_t now, time_t *retry_after)
{
	struct timemap *m = l->impl;
	time_t last;

	if (timemap_get(m, key, now, &last)) {
		*retry_after = last + l->interval - now;
		if (*retry_after < 1)
			*retry_after = 1;
		return 0;
	}
	return timemap_put(m, key, now, now) == 0 ? 1 : -1;
}

/* local_free - the table and the limiter */
static void
local_free(struct limiter *l)
{
	timemap_clear(l->impl);
	free(l->impl);
	free(l);
}

static const struct limiter_ops local_ops = { "local", local_hit, local_free };

/* limiter_local_new - a limiter over a timemap whose ttl is the interval */
struct limiter *
limiter_local_new(time_t interval, size_t max_keys)
{
	struct limiter *l = xcalloc(1, sizeof(*l));
	struct timemap *m = xcalloc(1, sizeof(*m));

	timemap_init(m, max_keys, interval);
	l->ops = &local_ops;
	l->interval = interval;
	l->impl = m;
	return l;
}

/* limiter_hit - the implementation's hit, unless limiting is off */
int
limiter_hit(struct limiter *l, const char *key, time_t now, time_t *retry_after)
{
	*retry_after = 0;
	if (l->interval <= 0)
		return 1;
	return l->ops->hit(l, key, now, retry_after);
}

/* limiter_free - through the vtable */
void
limiter_free(struct limiter **lp)
{
	if (*lp == NULL)
		return;
	(*lp)->ops->free(*lp);
	*lp = NULL;
}
