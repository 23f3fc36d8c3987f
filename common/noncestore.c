/*
 * noncestore.c - the nonce store interface and its in-memory
 * implementation.
 *
 * Owns: the local store's table of outstanding nonces (a timemap from
 * limiter.h, nonce -> time issued). Spent nonces are removed at once;
 * expired ones are kept for twice max_age so a late use is told
 * "expired" rather than "unknown", then dropped.
 * SECURITY: nonces come from arc4random(3) (128 bits); a consumed nonce
 * is deleted before the caller learns it was good, so it cannot be used
 * twice. The table is bounded (issuing fails when full of live nonces).
 * STANDARDS: none.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limiter.h"
#include "noncestore.h"
#include "util.h"

/* local_issue - 16 random bytes as hex, remembered with the time */
static int
local_issue(struct noncestore *s, char *out, time_t now)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[NONCE_LEN / 2];
	size_t i;

	arc4random_buf(raw, sizeof(raw));
	for (i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[NONCE_LEN] = '\0';
	return timemap_put(s->impl, out, now, now);
}

/* local_consume - delete the nonce; say whether it was fresh */
static enum nonce_result
local_consume(struct noncestore *s, const char *nonce, time_t now)
{
	struct timemap *m = s->impl;
	time_t issued;

	if (strlen(nonce) != NONCE_LEN || !timemap_get(m, nonce, now, &issued))
		return NONCE_UNKNOWN;
	timemap_del(m, nonce);
	if (now - issued > s->max_age)
		return NONCE_EXPIRED;
	return NONCE_OK;
}

/* local_free - the table and the store */
static void
local_free(struct noncestore *s)
{
	timemap_clear(s->impl);
	free(s->impl);
	free(s);
}

static const struct noncestore_ops local_ops = {
	"local", local_issue, local_consume, local_free
};

/* noncestore_local_new - entries live 2 x max_age (see above) */
struct noncestore *
noncestore_local_new(time_t max_age, size_t max)
{
	struct noncestore *s = xcalloc(1, sizeof(*s));
	struct timemap *m = xcalloc(1, sizeof(*m));

	timemap_init(m, max, 2 * max_age + 1);
	s->ops = &local_ops;
	s->max_age = max_age;
	s->impl = m;
	return s;
}

/* noncestore_issue - through the vtable */
int
noncestore_issue(struct noncestore *s, char *out, time_t now)
{
	return s->ops->issue(s, out, now);
}

/* noncestore_consume - through the vtable */
enum nonce_result
noncestore_consume(struct noncestore *s, const char *nonce, time_t now)
{
	return s->ops->consume(s, nonce, now);
}

/* noncestore_free - through the vtable */
void
noncestore_free(struct noncestore **sp)
{
	if (*sp == NULL)
		return;
	(*sp)->ops->free(*sp);
	*sp = NULL;
}
