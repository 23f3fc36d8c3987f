/*
 * noncestore.h - single-use nonces for the send API behind an interface
 * (ARCHITECTURE.md, "Scaling out").
 *
 * noncestore_local_new() is the in-memory implementation; a shared one
 * (Redis: SET nonce 1 NX EX max_age to issue, and GETDEL or DEL's reply
 * to consume) provides the same operations so a nonce fetched from one
 * instance can be spent on another. A nonce is 32 lower-case hex digits
 * (128 random bits); it is valid for max_age seconds and exactly once.
 */
#ifndef POSTERN_NONCESTORE_H
#define POSTERN_NONCESTORE_H

#include <stddef.h>
#include <time.h>

#define NONCE_LEN 32            /* hex digits */

/* What consuming a nonce can say. */
enum nonce_result {
	NONCE_OK = 0,           /* was issued, fresh, now spent */
	NONCE_UNKNOWN,          /* never issued here, or already spent */
	NONCE_EXPIRED,          /* issued more than max_age ago */
	NONCE_ERROR,            /* the store cannot answer */
};

struct noncestore;

/* What every implementation provides. */
struct noncestore_ops {
	const char *name;       /* "local", "redis" */
	/* issue - remember a fresh nonce (NONCE_LEN + 1 bytes into out);
	 * 0, or -1 when the store is full or cannot answer */
	int (*issue)(struct noncestore *s, char *out, time_t now);
	/* consume - spend nonce at now (see enum nonce_result) */
	enum nonce_result (*consume)(struct noncestore *s, const char *nonce,
	    time_t now);
	/* free - release the state and s itself */
	void (*free)(struct noncestore *s);
};

struct noncestore {
	const struct noncestore_ops *ops;
	time_t max_age;
	void *impl;
};

/* noncestore_local_new - in memory, at most max nonces outstanding */
struct noncestore *noncestore_local_new(time_t max_age, size_t max);
/* noncestore_issue, noncestore_consume - through the vtable */
int noncestore_issue(struct noncestore *s, char *out, time_t now);
enum nonce_result noncestore_consume(struct noncestore *s, const char *nonce,
    time_t now);
/* noncestore_free - release; *sp = NULL */
void noncestore_free(struct noncestore **sp);

#endif
