/*
 * queued_space.c - room in the queue index's LMDB map: the high-water
 * mark above which new mail is refused, growing the map at run time, and
 * the /metrics gauges of its use.
 *
 * LMDB needs free pages for every write, a removal too (copy-on-write:
 * the pages a transaction frees are reused only by later ones). A map
 * filled to the last page therefore refuses the removals that would
 * empty it, and the queue wedges. So new mail stops short of that:
 * above queue.index_high_water percent of the map, commits of new mail
 * fail with ENOSPC (the client gets 452 4.3.1, the send API 503), and
 * the rest of the map (at least 256 KiB however small the map) stays a
 * reserve for what the queue already holds:
 * result updates, DSNs and removals always find room, the queue drains
 * and acceptance resumes by itself. Before refusing, the map grows
 * (doubling, up to queue.index_max_size); mdb_env_set_mapsize() needs
 * no transaction open in this process, which holds at the top of a
 * group commit and in the timer, since queued's transactions never span
 * an event-loop round.
 *
 * Use is measured as LMDB's mdb_stat does: the pages up to the last one
 * written, minus the free list. Below the mark the first figure alone
 * settles it; above it the free list is read at every check.
 *
 * Owns: the refusing state and the gauges' values.
 * SECURITY: none beyond queued's.
 * STANDARDS: RFC 3463 (4.3.1 mail system full).
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>

#include "conf.h"
#include "log.h"
#include "queued.h"
#include "stats.h"
#include "util.h"

#define SPACE_MIN_RESERVE (256u * 1024) /* never less free than this */
#define SPACE_TICK_S 5          /* gauges refreshed this often */

static int refusing;            /* 1 while new mail is refused */
static struct event *tick_ev;

/* high_water - the byte mark of a map of mapsize bytes: the configured
 * percentage, lower in a small map so that the reserve is never below
 * SPACE_MIN_RESERVE (the pages a group commit and the transactions
 * just before it may hold) */
static uint64_t
high_water(uint64_t mapsize)
{
	uint64_t mark = mapsize / 100 * (uint64_t)qenv.conf->queue.index_high_water;

	if (mapsize - mark < SPACE_MIN_RESERVE)
		mark = mapsize - SPACE_MIN_RESERVE;
	return mark;
}

/* used_bytes - bytes of the map in use; the free list is read only when
 * the pages written pass the mark (a read transaction and a walk over
 * its few records: cheap next to the group commit it guards) */
static uint64_t
used_bytes(uint64_t mapsize, uint64_t written, uint64_t psize)
{
	int64_t nfree;

	if (written <= high_water(mapsize))
		return written;
	if ((nfree = qidx_free_pages()) < 0)
		return written;
	return written - (uint64_t)nfree * psize;
}

/* grow - double the map (up to queue.index_max_size); 1 if it grew */
static int
grow(uint64_t *mapsize)
{
	uint64_t max = qenv.conf->queue.index_max_size, next;

	if (*mapsize >= max)
		return 0;
	next = *mapsize > max / 2 ? max : *mapsize * 2;
	if (qidx_set_mapsize((size_t)next) != 0)
		return 0;
	log_info("queue index: map grown from %" PRIu64 " to %" PRIu64
	    " bytes (queue.index_max_size %" PRIu64 ")", *mapsize, next, max);
	*mapsize = next;
	return 1;
}

/* set_refusing - note a change of state, in one log line */
static void
set_refusing(int on, uint64_t used, uint64_t mapsize)
{
	if (on && !refusing)
		log_warnx("queue index: %" PRIu64 " of %" PRIu64 " bytes in use, "
		    "over queue.index_high_water (%d%%): new mail is refused "
		    "with 452 4.3.1 until the queue drains", used, mapsize,
		    qenv.conf->queue.index_high_water);
	else if (!on && refusing)
		log_info("queue index: %" PRIu64 " of %" PRIu64 " bytes in use, "
		    "accepting new mail again", used, mapsize);
	refusing = on;
}

/* check - measure, grow if over the mark, refresh gauges and state */
static int
check(void)
{
	uint64_t mapsize, written, psize, used;

	qidx_map_info(&mapsize, &written, &psize);
	used = used_bytes(mapsize, written, psize);
	while (used > high_water(mapsize) && grow(&mapsize))
		;
	stats_gauge_set(&stats->queue_index_used, (int64_t)used);
	stats_gauge_set(&stats->queue_index_size, (int64_t)mapsize);
	set_refusing(used > high_water(mapsize), used, mapsize);
	return refusing ? ENOSPC : 0;
}

/* qspace_accept - 0 if new mail may be committed now, else ENOSPC;
 * called with no index transaction open */
int
qspace_accept(void)
{
	return check();
}

/* tick - the gauges, and acceptance resuming without new mail */
static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { SPACE_TICK_S, 0 };

	(void)check();
	event_add(tick_ev, &tv);
}

/* qspace_init - first measure and the periodic refresh */
void
qspace_init(void)
{
	tick_ev = evtimer_new(qenv.base, tick, NULL);
	if (tick_ev == NULL)
		fatalx("cannot create the index space timer");
	tick(-1, 0, NULL);
}
