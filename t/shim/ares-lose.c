/*
 * ares-lose.c - an LD_PRELOAD shim for t/38-dns-lost.t: c-ares as a
 * resolver library that loses a query.
 *
 * The first ares_query() of type MX for the name in the environment
 * variable POSTERN_TEST_LOSE_QUERY is swallowed: it is never sent and its
 * callback never runs, as c-ares 1.34.7 does with a query whose random id
 * collides with one in flight (c-ares pull request 1256). Every other
 * call goes to the real ares_query(). No network, no state but one flag.
 * SECURITY: test only; never installed.
 * STANDARDS: none.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <strings.h>

#include <ares.h>

#define T_MX 15

typedef void query_fn(ares_channel, const char *, int, int, ares_callback, void *);

/* ares_query - lose the first MX query for $POSTERN_TEST_LOSE_QUERY */
void
ares_query(ares_channel channel, const char *name, int dnsclass, int type,
    ares_callback callback, void *arg)
{
	static int lost;
	const char *lose = getenv("POSTERN_TEST_LOSE_QUERY");
	query_fn *real;

	if (!lost && type == T_MX && lose != NULL && strcasecmp(name, lose) == 0) {
		lost = 1;
		return;
	}
	*(void **)&real = dlsym(RTLD_NEXT, "ares_query");
	if (real != NULL)
		real(channel, name, dnsclass, type, callback, arg);
}
