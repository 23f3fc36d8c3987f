/*
 * smtpd_access_cache.c - the FCrDNS verdicts of one smtpd process
 * (smtpd_access_cache.h).
 *
 * Owns: a tree of verdicts by (listener, family, address) and the same
 * entries in the order they were kept, oldest first, for eviction. An
 * entry expires at the time it was kept plus its TTL (capped); an
 * expired one is dropped when it is looked up, and the oldest entry goes
 * when a new one would pass ACCESS_CACHE_MAX. So memory is bounded
 * whatever the clients do, and a verdict never outlives the DNS data
 * that made it.
 * SECURITY: keys are client addresses (4 or 16 bytes, any value) and the
 * texts are names and reasons already validated by smtpd_access.c (host
 * name syntax), copied here. Nothing is kept across a restart or reload.
 * STANDARDS: RFC 1035 3.2.1 (TTL), RFC 2308 (negative caching).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include "smtpd_access_cache.h"
#include "util.h"

struct acache {
	RB_ENTRY(acache) by_key;
	TAILQ_ENTRY(acache) by_age;
	struct access_key key;
	enum access_cached verdict;
	char *text;
	int64_t expires;        /* unix seconds */
};

RB_HEAD(acache_tree, acache);
TAILQ_HEAD(acache_list, acache);

static struct acache_tree tree = RB_INITIALIZER(&tree);
static struct acache_list ages = TAILQ_HEAD_INITIALIZER(ages);
static size_t count;

/* cmp_key - order entries by listener, family, then address */
static int
cmp_key(const struct acache *a, const struct acache *b)
{
	if (a->key.listener != b->key.listener)
		return a->key.listener < b->key.listener ? -1 : 1;
	if (a->key.family != b->key.family)
		return a->key.family < b->key.family ? -1 : 1;
	return memcmp(a->key.addr, b->key.addr, sizeof(a->key.addr));
}

#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
RB_GENERATE_STATIC(acache_tree, acache, by_key, cmp_key)

/* entry_free - forget e */
static void
entry_free(struct acache *e)
{
	RB_REMOVE(acache_tree, &tree, e);
	TAILQ_REMOVE(&ages, e, by_age);
	count--;
	free(e->text);
	free(e);
}

/* entry_find - the entry for k, or NULL */
static struct acache *
entry_find(const struct access_key *k)
{
	struct acache probe;

	probe.key = *k;
	return RB_FIND(acache_tree, &tree, &probe);
}

/* access_cache_get - a live verdict for k, or ACACHE_MISS */
enum access_cached
access_cache_get(const struct access_key *k, int64_t now, const char **text)
{
	struct acache *e = entry_find(k);

	if (e == NULL)
		return ACACHE_MISS;
	if (e->expires <= now) {
		entry_free(e);
		return ACACHE_MISS;
	}
	*text = e->text;
	return e->verdict;
}

/* access_cache_put - keep a verdict for min(ttl, the cap) seconds */
void
access_cache_put(const struct access_key *k, enum access_cached v,
    const char *text, int64_t ttl, int64_t now)
{
	struct acache *e;

	if (ttl <= 0 || (v != ACACHE_ALLOW && v != ACACHE_DENY))
		return;
	if (ttl > ACCESS_CACHE_TTL_MAX)
		ttl = ACCESS_CACHE_TTL_MAX;
	if ((e = entry_find(k)) != NULL)
		entry_free(e);
	while (count >= ACCESS_CACHE_MAX)
		entry_free(TAILQ_FIRST(&ages));
	e = xcalloc(1, sizeof(*e));
	e->key = *k;
	e->verdict = v;
	e->text = xstrdup(text != NULL ? text : "");
	e->expires = now + ttl;
	RB_INSERT(acache_tree, &tree, e);
	TAILQ_INSERT_TAIL(&ages, e, by_age);
	count++;
}

/* access_cache_count - how many verdicts are kept */
size_t
access_cache_count(void)
{
	return count;
}
