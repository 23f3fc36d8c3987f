/*
 * queued_browse.c - what the operator console (httpd's status page and
 * admin API) asks of the queue through the control socket: a search by
 * queue id, sender or recipient, and the queue by destination (messages
 * waiting and deferred, recipient outcomes of the last hour, the last
 * error, the backoff and the concurrency in use).
 *
 * Owns: nothing; it reads the schedule (struct qmsg), the destinations
 * (queued_dest.c) and their histories (queued_dstat.c), and builds the
 * JSON rows queued_control.c sends.
 * SECURITY: runs in queued; the search text comes from a local control
 * client (checked there: bounded, no control characters) and is only
 * compared, never used as a pattern or a path.
 * STANDARDS: RFC 8259 (JSON).
 */
#include "config.h"

#include <jansson.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf.h"
#include "queued.h"
#include "queued_dest.h"
#include "queued_dstat.h"
#include "stats.h"
#include "util.h"

/* qbrowse_outcome - one recipient outcome into its destination's
 * history (the outcomes of enum stats_delivery and enum qdstat_outcome
 * are in the same order) */
void
qbrowse_outcome(const struct qrcpt *r, int d, int64_t now)
{
	_Static_assert(DLV_DELIVERED == (int)QDSTAT_DELIVERED &&
	    DLV_DEFERRED == (int)QDSTAT_DEFERRED &&
	    DLV_BOUNCED == (int)QDSTAT_BOUNCED, "outcome orders differ");

	if (r->dest != NULL)
		qdstat_outcome(r->dest->key, (enum qdstat_outcome)d, r->last_dsn,
		    r->last_reply, now);
}

/* qbrowse_tally - every recipient of m not final, by destination */
void
qbrowse_tally(struct qdwalk *w, const struct qmsg *m)
{
	const struct qrcpt *r;
	uint32_t i;

	for (i = 0; i < m->nrcpt && !m->broken; i++) {
		r = &m->rcpt[i];
		if (RCPT_IS_FINAL(r->state) || r->dest == NULL)
			continue;
		qdwalk_rcpt(w, r->dest->key, m->id, r->state == RCPT_HELD ?
		    QDSTAT_WAIT_HELD : r->state == RCPT_DEFERRED ?
		    QDSTAT_WAIT_DEFERRED : QDSTAT_WAIT_PENDING);
	}
}

/* iso - unix seconds t as "2026-11-22T03:00:00Z" into buf, "" for 0 */
static const char *
iso(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		*buf = '\0';
	return buf;
}

/* qbrowse_dest_json - one destination as the console shows it */
json_t *
qbrowse_dest_json(const struct qdstat_row *r)
{
	const struct qdest *d = qdest_find(r->key);
	int64_t now = time(NULL), until = d != NULL && d->down_until > now ?
	    d->down_until : 0;
	char t1[32], t2[32];
	json_t *j;

	j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, "
	    "s:s, s:s, s:I, s:s}",
	    "destination", r->key,
	    "waiting", (json_int_t)r->waiting, "deferred", (json_int_t)r->deferred,
	    "held", (json_int_t)r->held,
	    "delivered_1h", (json_int_t)r->last_hour[QDSTAT_DELIVERED],
	    "deferred_1h", (json_int_t)r->last_hour[QDSTAT_DEFERRED],
	    "bounced_1h", (json_int_t)r->last_hour[QDSTAT_BOUNCED],
	    "in_flight", (json_int_t)(d != NULL ? d->inflight : 0),
	    "concurrency", (json_int_t)qenv.conf->queue.destination_concurrency,
	    "failures", (json_int_t)(d != NULL ? d->failures : 0),
	    "last_dsn", r->last_dsn, "last_error", r->last_error,
	    "last_error_time", iso(r->last_error_at, t1, sizeof(t1)),
	    "backoff_until", (json_int_t)until,
	    "backoff_until_time", iso(until, t2, sizeof(t2)));
	if (j == NULL)          /* a reply that is not UTF-8 */
		j = json_pack("{s:s, s:s}", "destination", r->key, "last_error", "?");
	return j;
}

/* holds - s contains text, ASCII case-insensitively */
static int
holds(const char *s, const char *text)
{
	size_t n = strlen(text);

	for (; s != NULL && *s != '\0'; s++)
		if (strncasecmp(s, text, n) == 0)
			return 1;
	return 0;
}

/* qbrowse_match - the id exactly, or part of the sender or a recipient */
int
qbrowse_match(const struct qmsg *m, const char *text)
{
	uint32_t i;

	if (strcasecmp(m->id, text) == 0 || holds(m->sender, text))
		return 1;
	for (i = 0; i < m->nrcpt && !m->broken; i++)
		if (holds(m->rcpt[i].address, text))
			return 1;
	return 0;
}
