/*
 * dstat-test.c - tests of queued/queued_dstat.c: the last hour of
 * outcomes per destination (an outcome an hour old no longer counts,
 * minute buckets are reused), the last error, the bound on remembered
 * destinations (the least recently updated forgotten), and the tally of
 * waiting messages (each message once per column and destination, rows
 * in key order, histories without waiting messages included).
 *
 * SECURITY: none (a test). STANDARDS: none.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "queued_dstat.h"
#include "tap.h"

#define T0 1800000000LL         /* a minute boundary (30000000 * 60) */

/* Rows collected by qdwalk_rows. */
static struct qdstat_row rows[8];
static char keys[8][64], errs[8][128];
static int nrows;

/* collect - keep a copy of each row */
static void
collect(const struct qdstat_row *r, void *arg)
{
	if (nrows >= 8)
		return;
	rows[nrows] = *r;
	snprintf(keys[nrows], sizeof(keys[0]), "%s", r->key);
	snprintf(errs[nrows], sizeof(errs[0]), "%s", r->last_error);
	nrows++;
}

/* walk_rows - the rows of tally w at now */
static void
walk_rows(struct qdwalk *w, long long now)
{
	nrows = 0;
	qdwalk_rows(w, now, collect, NULL);
}

/* test_hour - outcomes of the last hour only, the last error kept */
static void
test_hour(void)
{
	struct qdwalk *w = qdwalk_new();

	qdstat_outcome("mx:a.test", QDSTAT_DELIVERED, "2.0.0", "ok", T0);
	qdstat_outcome("mx:a.test", QDSTAT_DELIVERED, "2.0.0", "ok", T0 + 59);
	qdstat_outcome("mx:a.test", QDSTAT_DEFERRED, "4.7.1", "451 try later",
	    T0 + 120);
	qdstat_outcome("mx:a.test", QDSTAT_DELIVERED, "2.0.0", "ok", T0 + 1800);
	walk_rows(w, T0 + 1800);
	is_int(nrows, 1, "one destination with a history");
	is_str(keys[0], "mx:a.test", "  its key");
	is_int(rows[0].last_hour[QDSTAT_DELIVERED], 3, "  3 delivered this hour");
	is_int(rows[0].last_hour[QDSTAT_DEFERRED], 1, "  1 deferred");
	is_str(errs[0], "451 try later", "  the last error stays after a delivery");
	is_int(rows[0].last_error_at, T0 + 120, "  with its time");
	is_int(rows[0].last_delivered_at, T0 + 1800, "  the last delivery's time");
	walk_rows(w, T0 + 3600 + 120);
	is_int(rows[0].last_hour[QDSTAT_DELIVERED], 1,
	    "an hour later the first minute's deliveries no longer count");
	is_int(rows[0].last_hour[QDSTAT_DEFERRED], 0, "  nor the deferral");
	qdstat_outcome("mx:a.test", QDSTAT_BOUNCED, "5.1.1", "550 no such user",
	    T0 + 3600 + 120);
	walk_rows(w, T0 + 3600 + 120);
	is_int(rows[0].last_hour[QDSTAT_BOUNCED], 1,
	    "a reused minute bucket starts from zero");
	is_int(rows[0].last_hour[QDSTAT_DELIVERED], 1, "  and keeps the others");
	is_str(errs[0], "550 no such user", "a bounce is the last error now");
	walk_rows(w, T0 + 3 * 3600);
	is_int(rows[0].last_hour[QDSTAT_DELIVERED] + rows[0].last_hour[QDSTAT_BOUNCED],
	    0, "two hours later nothing counts");
	qdwalk_free(&w);
	ok(w == NULL, "qdwalk_free sets NULL");
	qdstat_reset();
}

/* test_tally - messages counted once per destination and column */
static void
test_tally(void)
{
	struct qdwalk *w = qdwalk_new();

	qdstat_outcome("local", QDSTAT_DELIVERED, "2.0.0", "", T0);
	qdwalk_rcpt(w, "mx:b.test", "AAAAAAAAAAAAAAAA", QDSTAT_WAIT_DEFERRED);
	qdwalk_rcpt(w, "mx:b.test", "AAAAAAAAAAAAAAAA", QDSTAT_WAIT_DEFERRED);
	qdwalk_rcpt(w, "mx:b.test", "AAAAAAAAAAAAAAAA", QDSTAT_WAIT_HELD);
	qdwalk_rcpt(w, "mx:b.test", "BBBBBBBBBBBBBBBB", QDSTAT_WAIT_PENDING);
	qdwalk_rcpt(w, "mx:a.test", "BBBBBBBBBBBBBBBB", QDSTAT_WAIT_HELD);
	walk_rows(w, T0 + 10);
	is_int(nrows, 3, "tallied destinations and one with a history only");
	is_str(keys[0], "local", "rows in key order: local");
	is_int(rows[0].waiting, 0, "  nothing waits for it");
	is_int(rows[0].last_hour[QDSTAT_DELIVERED], 1, "  1 delivered");
	is_str(keys[1], "mx:a.test", "  then mx:a.test");
	is_int(rows[1].held, 1, "  1 held message");
	is_str(keys[2], "mx:b.test", "  then mx:b.test");
	is_int(rows[2].waiting, 2, "  2 messages waiting (not 4 recipients)");
	is_int(rows[2].deferred, 1, "  1 of them deferred");
	is_int(rows[2].held, 1, "  1 of them with a held recipient");
	is_str(errs[2], "", "  no error known");
	qdwalk_free(&w);
	qdstat_reset();
}

/* test_bound - at most QDSTAT_MAX histories, the stalest forgotten */
static void
test_bound(void)
{
	struct qdwalk *w;
	char key[32];
	int i;

	for (i = 0; i < QDSTAT_MAX; i++) {
		snprintf(key, sizeof(key), "mx:d%04d.test", i);
		qdstat_outcome(key, QDSTAT_DELIVERED, "", "", T0 + i);
	}
	is_int((long long)qdstat_count(), QDSTAT_MAX, "QDSTAT_MAX histories");
	qdstat_outcome("mx:d0000.test", QDSTAT_DELIVERED, "", "", T0 + 1030);
	qdstat_outcome("mx:new.test", QDSTAT_DEFERRED, "4.4.1", "refused", T0 + 1031);
	is_int((long long)qdstat_count(), QDSTAT_MAX, "  never more");
	/* the tally has d0001 without a history: if d0001 were still
	 * remembered, its row would count one delivery */
	w = qdwalk_new();
	qdwalk_rcpt(w, "mx:d0001.test", "CCCCCCCCCCCCCCCC", QDSTAT_WAIT_PENDING);
	walk_rows(w, T0 + 1031);
	qdwalk_free(&w);
	is_str(keys[0], "mx:d0000.test", "  a destination updated again is kept");
	is_int(rows[0].last_hour[QDSTAT_DELIVERED], 2, "  with both its deliveries");
	is_str(keys[1], "mx:d0001.test", "  the next one is listed (it waits)");
	is_int(rows[1].last_hour[QDSTAT_DELIVERED], 0,
	    "  but its history, the least recently updated, was forgotten");
	is_str(keys[2], "mx:d0002.test", "  the one after it is remembered");
	is_int(rows[2].last_hour[QDSTAT_DELIVERED], 1, "  with its delivery");
	qdstat_reset();
	is_int((long long)qdstat_count(), 0, "qdstat_reset forgets everything");
}

/* main - run the groups */
int
main(void)
{
	test_hour();
	test_tally();
	test_bound();
	return done_testing();
}
