/*
 * smtpd_access_cache.h - the FCrDNS verdicts an smtpd process keeps
 * (smtpd_access_cache.c), so that a client that connects again within
 * the TTL of the DNS answers that judged it costs no DNS query. Pure
 * bookkeeping, no I/O and no clock of its own (times are passed in):
 * t/unit/access-cache-test.c drives it directly.
 *
 * A verdict is kept per listener (each may have its own allow-list) and
 * client address, for the smallest TTL of the answers that made it,
 * capped at ACCESS_CACHE_TTL_MAX; at most ACCESS_CACHE_MAX are kept (the
 * oldest kept is forgotten first). Temporary failures are never kept:
 * the caller does not put them.
 */
#ifndef POSTERN_SMTPD_ACCESS_CACHE_H
#define POSTERN_SMTPD_ACCESS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define ACCESS_CACHE_MAX 1024           /* verdicts per smtpd process */
#define ACCESS_CACHE_TTL_MAX 3600       /* seconds, whatever the TTL says */

/* Who a verdict is about. */
struct access_key {
	int listener;           /* index into conf->listen */
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* 4 or 16 bytes, the rest zero */
};

enum access_cached {
	ACACHE_MISS = 0,        /* nothing kept (or it expired) */
	ACACHE_ALLOW,           /* text: the forward-confirmed name */
	ACACHE_DENY,            /* text: the reason of the refusal */
};

/* access_cache_get - the verdict kept for k at 'now', its text in *text
 * (valid until the next access_cache_put); an expired one is dropped */
enum access_cached access_cache_get(const struct access_key *k, int64_t now,
    const char **text);
/* access_cache_put - keep verdict v (ALLOW or DENY) with its text for
 * ttl seconds from now (capped); ttl <= 0 keeps nothing */
void access_cache_put(const struct access_key *k, enum access_cached v,
    const char *text, int64_t ttl, int64_t now);
/* access_cache_count - verdicts kept (tests) */
size_t access_cache_count(void);

#endif
