/*
 * queued_sched.c - the in-memory schedule: which recipients are due, the
 * jobs handed to delivery processes, their results, retries with
 * jittered exponential backoff, expiry, and removal of finished messages.
 *
 * Owns: every struct qmsg (a tree by queue id and a tree by due time),
 * the jobs in flight, the delivery log line, the counters
 * deliveries[], transport_deliveries[], deferrals[] and bounces[], and
 * the gauges queue_messages / queue_recipients / queue_state[] (kept per
 * message by due_update(), which every state change goes through) /
 * queue_oldest_ms.
 *
 * Scheduling: every recipient has a destination (queued_destination(),
 * queued_dest.c). A message is in the due tree, keyed by the earliest
 * time one of its recipients that are PENDING or DEFERRED, not in flight
 * and not parked may go: max(next_attempt, wait_until), wait_until being
 * set while its destination is down or its rate is used up.
 * sched_run() takes due messages in order; for each it takes the
 * destination of its first due recipient and, if qdest_wait() allows,
 * sends IPC_DELIVERY_JOB with the due recipients of that ONE message and
 * ONE destination (at most QUEUED_JOB_MAX_RCPT) to the delivery link with
 * the fewest jobs, while fewer than queue.concurrency jobs are in flight.
 * A destination at its concurrency parks the recipients (a finishing job
 * unparks); one that is down or rate-limited sets their wait_until, so
 * they wait without an attempt being counted and other destinations go
 * on. A timer wakes sched_run at the next due time. It runs from a
 * deferred event (qsched_kick), never inside another handler, so links
 * can come and go while it is not running. The round's deferred disk
 * syncs (the removal batch here, the commit batch in queued_commit.c)
 * first run a kick still pending (qsched_run_pending): the slots freed
 * by the round's results get their next jobs before the fsyncs, not
 * after them, so a busy destination is not left idle for the length of
 * every sync (with many arrivals, most of the time).
 * Results: class 2 delivered, 5 bounced, 4 deferred by backoff_delay()
 * unless that passes arrival + lifetime (then bounced, dsn 4.4.7, event
 * "expired"). A job whose every recipient got class 4 with dsn 4.4.x
 * (connection level) backs its destination off as a whole. Recipients
 * bounced in one result share one DSN to the sender (queued_dsn.c), made
 * durable before their states are; deferred ones past queue.delay_warning
 * share one "delayed" DSN, once. One LMDB transaction per result; a
 * message whose recipients are all final loses its records and its msg/
 * file (or the file moves to retained/).
 *
 * SECURITY: runs unprivileged. Reply texts come from remote servers via
 * delivery: control characters are replaced before they reach a log
 * line, and stored texts are cut to QUEUED_REPLY_MAX.
 * STANDARDS: RFC 3463 (enhanced status codes, 4.4.7), RFC 5321 4.5.4.1
 * (retry strategy: give up after a few days).
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "conf.h"
#include "queued_dest.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "queued.h"
#include "route.h"
#include "stats.h"
#include "util.h"

/* One recipient's result, as read from IPC_QUEUED_JOB_RESULT. */
struct rcpt_result {
	uint32_t index;
	uint32_t cls;
	const char *dsn;
	const char *relay;
	const char *reply;      /* stored: the log, events, DSNs */
	const char *note;       /* the log line only */
};

/* What a result class does to a recipient. */
struct outcome {
	uint32_t cls;
	uint32_t state;
	const char *status;
	enum stats_delivery dlv;
};

static const struct outcome outcomes[] = {
	{ 2, RCPT_DELIVERED, "sent", DLV_DELIVERED },
	{ 4, RCPT_DEFERRED, "deferred", DLV_DEFERRED },
	{ 5, RCPT_BOUNCED, "bounced", DLV_BOUNCED },
};

RB_HEAD(qmsg_ids, qmsg);
RB_HEAD(qmsg_due, qmsg);

static struct qmsg_ids msgs_by_id = RB_INITIALIZER(&msgs_by_id);
static struct qmsg_due msgs_by_due = RB_INITIALIZER(&msgs_by_due);
static struct event *kick_ev;
static struct event *remove_ev;
static TAILQ_HEAD(, qmsg) removals = TAILQ_HEAD_INITIALIZER(removals);

static void flush_removals(evutil_socket_t, short, void *);
static void removals_event(evutil_socket_t, short, void *);
static struct event *timer_ev;
static uint64_t next_jobid = 1;
static unsigned jobs_inflight;
static uint64_t count_msgs;
static uint64_t count_rcpts;

/* cmp_id - order messages by queue id */
static int
cmp_id(const struct qmsg *a, const struct qmsg *b)
{
	return strcmp(a->id, b->id);
}

/* cmp_due - order messages by due time, then queue id */
static int
cmp_due(const struct qmsg *a, const struct qmsg *b)
{
	if (a->due != b->due)
		return a->due < b->due ? -1 : 1;
	return strcmp(a->id, b->id);
}

/* libbsd's tree.h marks its static functions __unused, which libbsd
 * leaves undefined (Debian #522773); defined here, after every header. */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
RB_GENERATE_STATIC(qmsg_ids, qmsg, by_id, cmp_id)
RB_GENERATE_STATIC(qmsg_due, qmsg, by_due, cmp_due)

/* ---- messages -------------------------------------------------------- */

/* qmsg_new - an empty message with nrcpt zeroed recipients */
struct qmsg *
qmsg_new(const char *id, uint32_t nrcpt)
{
	struct qmsg *m = xcalloc(1, sizeof(*m));
	uint32_t i;

	strlcpy(m->id, id, sizeof(m->id));
	m->nrcpt = nrcpt;
	m->rcpt = nrcpt ? xcalloc(nrcpt, sizeof(*m->rcpt)) : NULL;
	for (i = 0; i < nrcpt; i++)
		m->rcpt[i].index = i;
	m->due = -1;
	return m;
}

/* qmsg_free - release m and its recipients; *mp = NULL */
void
qmsg_free(struct qmsg **mp)
{
	struct qmsg *m = *mp;
	uint32_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nrcpt; i++) {
		free(m->rcpt[i].address);
		free(m->rcpt[i].last_dsn);
		free(m->rcpt[i].last_reply);
	}
	free(m->rcpt);
	free(m->sender);
	free(m->client);
	free(m->helo);
	free(m->authuser);
	free(m);
	*mp = NULL;
}

/* qmsg_find - the queued message with this id, or NULL */
struct qmsg *
qmsg_find(const char *id)
{
	struct qmsg key;

	strlcpy(key.id, id, sizeof(key.id));
	return RB_FIND(qmsg_ids, &msgs_by_id, &key);
}

/* rcpt_schedulable - 1 if r waits for an attempt (not final, held,
 * busy, parked) */
static int
rcpt_schedulable(const struct qrcpt *r)
{
	return (r->state == RCPT_PENDING || r->state == RCPT_DEFERRED) &&
	    r->job == NULL && !r->parked;
}

/* rcpt_due_at - the second r may go (next attempt, destination wait) */
static int64_t
rcpt_due_at(const struct qrcpt *r)
{
	return r->wait_until > r->next_attempt ? r->wait_until : r->next_attempt;
}

/* dest_limits - the destination limits from the configuration */
static struct qdest_limits
dest_limits(void)
{
	const struct conf_queue *cq = &qenv.conf->queue;
	struct qdest_limits lim = { (unsigned)cq->destination_concurrency,
	    (unsigned)cq->destination_rate, { cq->retry_base, cq->retry_factor,
	    cq->retry_cap, cq->retry_jitter } };

	return lim;
}

/* live_rcpts - how many recipients of m are not final */
static uint64_t
live_rcpts(const struct qmsg *m)
{
	uint64_t n = 0;
	uint32_t i;

	if (m->broken)
		return 0;
	for (i = 0; i < m->nrcpt; i++)
		if (!RCPT_IS_FINAL(m->rcpt[i].state))
			n++;
	return n;
}

/* publish_gauges - copy the counts and the arrival of the oldest
 * message (ids sort by arrival) into the shared stats */
static void
publish_gauges(void)
{
	struct qmsg *oldest = RB_MIN(qmsg_ids, &msgs_by_id);
	int64_t ms = 0;

	if (oldest != NULL)
		ms = oldest->arrival_ms > 0 ? (int64_t)oldest->arrival_ms :
		    oldest->arrival * 1000;
	stats_gauge_set(&stats->queue_messages, (int64_t)count_msgs);
	stats_gauge_set(&stats->queue_recipients, (int64_t)count_rcpts);
	stats_gauge_set(&stats->queue_oldest_ms, ms);
}

/* msg_gauge_state - what m is doing, for the queue gauge by state */
static enum stats_queue_state
msg_gauge_state(const struct qmsg *m)
{
	int pending = 0, held = 0;
	uint32_t i;

	if (m->broken)
		return SQUEUE_BROKEN;
	if (m->njobs > 0)
		return SQUEUE_ACTIVE;
	for (i = 0; i < m->nrcpt; i++) {
		if (m->rcpt[i].state == RCPT_DEFERRED)
			return SQUEUE_DEFERRED;
		pending |= m->rcpt[i].state == RCPT_PENDING;
		held |= m->rcpt[i].state == RCPT_HELD;
	}
	if (pending)
		return SQUEUE_PENDING;
	return held ? SQUEUE_HELD : SQUEUE_ACTIVE;     /* (all final: finishing) */
}

/* gauge_state_set - move m's count in the gauge by state to state+1
 * (0: out of the gauge) */
static void
gauge_state_set(struct qmsg *m, int state)
{
	if (m->gauge_state == state)
		return;
	if (m->gauge_state > 0)
		stats_gauge_add(&stats->queue_state[m->gauge_state - 1], -1);
	if (state > 0)
		stats_gauge_add(&stats->queue_state[state - 1], 1);
	m->gauge_state = state;
}

/* count_outcome - count r's outcome d by its route's transport type and,
 * for a deferral or a bounce, its reason; and in its destination's
 * history (the console's destinations table) */
static void
count_outcome(const struct qmsg *m, const struct qrcpt *r,
    enum stats_delivery d, int expired)
{
	struct route_match rm;

	route_lookup(qenv.conf, r->address, m->sender != NULL ? m->sender : "", &rm);
	stats_outcome((int)rm.transport->type, d,
	    expired ? SREASON_EXPIRED : stats_reason_of(r->last_dsn));
	qbrowse_outcome(r, (int)d, time(NULL));
}

/* due_update - re-key m in the due tree after its recipients changed */
static void
due_update(struct qmsg *m)
{
	int64_t due = -1;
	uint32_t i;

	if (m->due != -1)
		RB_REMOVE(qmsg_due, &msgs_by_due, m);
	for (i = 0; i < m->nrcpt && !m->broken && !m->deleting; i++)
		if (rcpt_schedulable(&m->rcpt[i]) &&
		    (due == -1 || rcpt_due_at(&m->rcpt[i]) < due))
			due = rcpt_due_at(&m->rcpt[i]);
	m->due = due;
	if (due != -1)
		RB_INSERT(qmsg_due, &msgs_by_due, m);
	gauge_state_set(m, (int)msg_gauge_state(m) + 1);
}

/* qsched_add - take m into the queue (new commit or recovery) */
void
qsched_add(struct qmsg *m)
{
	char key[512];
	uint32_t i;

	if (RB_INSERT(qmsg_ids, &msgs_by_id, m) != NULL)
		panic("%s: queued twice", m->id);
	for (i = 0; i < m->nrcpt && !m->broken; i++)
		m->rcpt[i].dest = qdest_ref(queued_destination(m->rcpt[i].address,
		    m->sender, key, sizeof(key)));
	m->due = -1;
	due_update(m);
	count_msgs++;
	count_rcpts += live_rcpts(m);
	publish_gauges();
}

/* qsched_drop - forget m; it must have no job in flight */
void
qsched_drop(struct qmsg *m)
{
	uint32_t i;

	if (m->njobs != 0)
		panic("%s: dropped with %u job(s) in flight", m->id, m->njobs);
	if (m->due != -1)
		RB_REMOVE(qmsg_due, &msgs_by_due, m);
	RB_REMOVE(qmsg_ids, &msgs_by_id, m);
	count_msgs--;
	count_rcpts -= live_rcpts(m);
	gauge_state_set(m, 0);
	publish_gauges();
	for (i = 0; i < m->nrcpt; i++)
		qdest_unref(&m->rcpt[i].dest);
	qmsg_free(&m);
}

/* qsched_first - the first message in id order */
struct qmsg *
qsched_first(void)
{
	return RB_MIN(qmsg_ids, &msgs_by_id);
}

/* qsched_next - the message after m in id order */
struct qmsg *
qsched_next(struct qmsg *m)
{
	return RB_NEXT(qmsg_ids, &msgs_by_id, m);
}

/* qsched_counts - messages and not-final recipients */
void
qsched_counts(uint64_t *msgs, uint64_t *rcpts)
{
	*msgs = count_msgs;
	*rcpts = count_rcpts;
}

/* ---- jobs out ----------------------------------------------------------- */

static void set_text(char **, const char *);
static void log_attempt(const struct qmsg *, const struct qrcpt *, const char *,
    const char *, const char *);

/* job_free - detach a finished or abandoned job from link and message */
static void
job_free(struct qjob *j)
{
	uint32_t i;

	for (i = 0; i < j->nrcpt; i++)
		if (j->msg->rcpt[j->rcpt[i]].job == j)
			j->msg->rcpt[j->rcpt[i]].job = NULL;
	TAILQ_REMOVE(&j->link->jobs, j, entry);
	j->link->njobs--;
	j->msg->njobs--;
	jobs_inflight--;
	free(j->rcpt);
	free(j);
}

/* rcpt_due_now - 1 if r of destination d may be sent at 'now' */
static int
rcpt_due_now(const struct qrcpt *r, const struct qdest *d, int64_t now)
{
	return rcpt_schedulable(r) && r->dest == d && rcpt_due_at(r) <= now;
}

/* unpark_msg - the recipients of m parked on d may go again; 1 if any */
static int
unpark_msg(struct qmsg *m, const struct qdest *d)
{
	uint32_t i;
	int n = 0;

	for (i = 0; i < m->nrcpt; i++)
		if (m->rcpt[i].parked && m->rcpt[i].dest == d) {
			m->rcpt[i].parked = 0;
			n = 1;
		}
	if (n)
		due_update(m);
	return n;
}

/* dest_release - a job to d ended with outcome o: count it, back d off
 * on a connection failure, and unpark one waiting message (all of them
 * when nothing is in flight to d any more) */
static void
dest_release(struct qdest *d, enum qdest_outcome o, int64_t now, double rnd)
{
	struct qdest_limits lim = dest_limits();
	char id[QUEUE_ID_LEN + 1];
	struct qmsg *m;
	int all;

	d->refs++;      /* keep d while we look at it */
	if (qdest_done(d, o, &lim, now, rnd))
		log_info("destination %s: down for %llds after %u connection "
		    "failure(s)", d->key, (long long)(d->down_until - now),
		    d->failures);
	all = d->inflight == 0;
	while (qdest_unpark(d, id))
		if ((m = qmsg_find(id)) != NULL && unpark_msg(m, d) && !all)
			break;
	qdest_unref(&d);
}

/* job_collect - a job holding the due recipients of m that go to d */
static struct qjob *
job_collect(struct qmsg *m, struct qdest *d, int64_t now, uint32_t *attempt)
{
	struct qjob *j = xcalloc(1, sizeof(*j));
	uint32_t i;

	j->rcpt = xcalloc(m->nrcpt < QUEUED_JOB_MAX_RCPT ? m->nrcpt :
	    QUEUED_JOB_MAX_RCPT, sizeof(*j->rcpt));
	*attempt = 1;
	for (i = 0; i < m->nrcpt && j->nrcpt < QUEUED_JOB_MAX_RCPT; i++) {
		if (!rcpt_due_now(&m->rcpt[i], d, now))
			continue;
		j->rcpt[j->nrcpt++] = i;
		if (m->rcpt[i].attempts + 1 > *attempt)
			*attempt = m->rcpt[i].attempts + 1;
	}
	j->id = next_jobid++;
	j->msg = m;
	j->dest = d;
	return j;
}

/* job_encode - the IPC_DELIVERY_JOB payload of j */
static void
job_encode(struct msgbuf *b, const struct qjob *j, uint32_t attempt)
{
	const struct qmsg *m = j->msg;
	uint32_t i;

	msg_add_u64(b, j->id);
	msg_add_str(b, m->id);
	msg_add_str(b, m->sender);
	msg_add_i64(b, m->arrival);
	msg_add_u32(b, attempt);
	msg_add_u32(b, m->envflags);
	msg_add_u32(b, j->nrcpt);
	for (i = 0; i < j->nrcpt; i++) {
		msg_add_u32(b, m->rcpt[j->rcpt[i]].index);
		msg_add_str(b, m->rcpt[j->rcpt[i]].address);
	}
}

/* postpone - the file cannot be opened: try the due recipients later */
static void
postpone(struct qmsg *m, int64_t now)
{
	uint32_t i;

	for (i = 0; i < m->nrcpt; i++)
		if (rcpt_schedulable(&m->rcpt[i]) && rcpt_due_at(&m->rcpt[i]) <= now)
			m->rcpt[i].next_attempt = now + qenv.conf->queue.retry_base;
	due_update(m);
}

/* dest_blocked - d cannot take a job now (w from qdest_wait): park the
 * due recipients of m that go there, or make them wait until w */
static void
dest_blocked(struct qmsg *m, struct qdest *d, int64_t w, int64_t now)
{
	uint32_t i;

	for (i = 0; i < m->nrcpt; i++) {
		if (!rcpt_due_now(&m->rcpt[i], d, now))
			continue;
		if (w == QDEST_FULL)
			m->rcpt[i].parked = 1;
		else
			m->rcpt[i].wait_until = w;
	}
	if (w == QDEST_FULL)
		qdest_park(d, m->id);
	due_update(m);
}

/* expire_waiting - recipients of m waiting for destination d after the
 * lifetime bounce now, without an attempt (dsn 4.4.7), sharing one DSN.
 * Returns -1 if that finished m (it is gone), else how many expired. */
static int
expire_waiting(struct qmsg *m, struct qdest *d, int64_t now)
{
	uint32_t *idx, n = 0, i;
	const char **relay;
	struct qrcpt *r;
	char *why;

	if (now < m->arrival + qenv.conf->queue.lifetime)
		return 0;
	idx = xcalloc(m->nrcpt, sizeof(*idx));
	relay = xcalloc(m->nrcpt, sizeof(*relay));
	for (i = 0; i < m->nrcpt; i++) {
		if (!rcpt_due_now(r = &m->rcpt[i], d, now))
			continue;
		why = xasprintf("delivery time expired (destination %s not "
		    "reachable%s%s)", d->key, *r->last_reply ? ": " : "",
		    r->last_reply);
		set_text(&r->last_dsn, "4.4.7");
		set_text(&r->last_reply, why);
		free(why);
		r->state = RCPT_BOUNCED;
		count_rcpts--;
		stats_add(&stats->deliveries[DLV_BOUNCED], 1);
		count_outcome(m, r, DLV_BOUNCED, 1);
		log_attempt(m, r, "none", "bounced", "");
		qevent("expired", m, r, NULL, 0);
		relay[n] = NULL;
		idx[n++] = i;
	}
	if (n > 0) {
		(void)qdsn_send(m, idx, relay, n, "failed");
		if (qsched_persist(m, idx, n) != 0)
			log_warnx("%s: cannot record the expiry", m->id);
	}
	free(idx);
	free(relay);
	publish_gauges();
	if (n > 0 && live_rcpts(m) == 0 && m->njobs == 0) {
		qsched_remove(m, "removed");
		return -1;
	}
	return (int)n;
}

/* first_due_dest - the destination of m's first recipient due now */
static struct qdest *
first_due_dest(const struct qmsg *m, int64_t now)
{
	uint32_t i;

	for (i = 0; i < m->nrcpt; i++)
		if (rcpt_schedulable(&m->rcpt[i]) && rcpt_due_at(&m->rcpt[i]) <= now)
			return m->rcpt[i].dest;
	return NULL;
}

/* job_send - hand the due recipients of m for one destination to
 * delivery link l, or park them / make them wait for the destination */
static void
job_send(struct qmsg *m, struct qlink *l, int64_t now)
{
	struct qdest_limits lim = dest_limits();
	struct msgbuf b;
	struct qdest *d;
	struct qjob *j;
	uint32_t attempt, i;
	int64_t w;
	int fd, expired;

	if ((d = first_due_dest(m, now)) == NULL) {
		due_update(m);
		return;
	}
	if ((w = qdest_wait(d, &lim, now)) != 0) {
		/* past the lifetime, waiting any longer is pointless */
		if ((expired = expire_waiting(m, d, now)) == 0)
			dest_blocked(m, d, w, now);
		else if (expired > 0)
			due_update(m);  /* (-1: m is gone) */
		return;
	}
	if (qspool_msg_open(m->id, &fd) != 0) {
		postpone(m, now);
		return;
	}
	j = job_collect(m, d, now, &attempt);
	j->link = l;
	j->sent = now;
	for (i = 0; i < j->nrcpt; i++) {
		m->rcpt[j->rcpt[i]].job = j;
		m->rcpt[j->rcpt[i]].wait_until = 0;
	}
	TAILQ_INSERT_TAIL(&l->jobs, j, entry);
	l->njobs++;
	m->njobs++;
	jobs_inflight++;
	qdest_started(d, now);
	msgbuf_init(&b);
	job_encode(&b, j, attempt);
	ipc_send(l->chan, IPC_DELIVERY_JOB, &b, fd);
	msgbuf_free(&b);
	log_debug("%s: job %llu to %s for %s: %u recipient(s), attempt %u", m->id,
	    (unsigned long long)j->id, l->name, d->key, j->nrcpt, attempt);
	due_update(m);
}

/* sched_run - send every due message while links and capacity allow */
static void
sched_run(void)
{
	uint64_t now_ms = now_real_ms();
	int64_t now = (int64_t)(now_ms / 1000), wait_ms;
	struct timeval tv;
	struct qmsg *m;
	struct qlink *l;

	evtimer_del(timer_ev);
	while ((m = RB_MIN(qmsg_due, &msgs_by_due)) != NULL && m->due <= now) {
		/* A result or a new link kicks us again. */
		if (jobs_inflight >= (unsigned)qenv.conf->queue.concurrency)
			return;
		if ((l = qlink_pick_delivery()) == NULL)
			return;
		job_send(m, l, now);
	}
	if (m != NULL) {
		/* wake at the very start of the due second */
		wait_ms = m->due * 1000 - (int64_t)now_ms;
		tv.tv_sec = wait_ms / 1000;
		tv.tv_usec = (wait_ms % 1000) * 1000;
		evtimer_add(timer_ev, &tv);
	}
}

/* sched_event - the kick and timer callback */
static void
sched_event(evutil_socket_t fd, short what, void *arg)
{
	sched_run();
}

/* qsched_kick - run the scheduler once the current handler returns */
void
qsched_kick(void)
{
	event_active(kick_ev, EV_TIMEOUT, 0);
}

/* qsched_run_pending - run a pending kick now; for the deferred events
 * that sync the disk, before they sync */
void
qsched_run_pending(void)
{
	if (kick_ev != NULL && event_pending(kick_ev, EV_TIMEOUT, NULL)) {
		event_del(kick_ev);
		sched_run();
	}
}

/* qsched_init - create the kick event and the timer; nothing runs yet */
void
qsched_init(void)
{
	int i;

	kick_ev = event_new(qenv.base, -1, 0, sched_event, NULL);
	timer_ev = evtimer_new(qenv.base, sched_event, NULL);
	remove_ev = event_new(qenv.base, -1, 0, removals_event, NULL);
	if (kick_ev == NULL || timer_ev == NULL || remove_ev == NULL)
		fatalx("cannot create the scheduler events");
	/* a restarted queued counts its recovered messages afresh */
	for (i = 0; i < SQUEUE_MAX; i++)
		stats_gauge_set(&stats->queue_state[i], 0);
	publish_gauges();
}

/* ---- after a job ---------------------------------------------------------- */

/* apply_holds - recipients of m held while in flight become HELD now
 * (if still waiting) and lose QRCPT_F_HOLD; returns how many changed
 * (their records are the caller's business) */
static uint32_t
apply_holds(struct qmsg *m, uint32_t *idx)
{
	uint32_t i, n = 0;

	for (i = 0; i < m->nrcpt; i++) {
		struct qrcpt *r = &m->rcpt[i];

		if (!(r->flags & QRCPT_F_HOLD) || r->job != NULL)
			continue;
		r->flags &= ~QRCPT_F_HOLD;
		if (r->state == RCPT_PENDING || r->state == RCPT_DEFERRED) {
			r->state = RCPT_HELD;
			r->parked = 0;
			qevent("held", m, r, NULL, 1);
		}
		if (idx != NULL)
			idx[n] = i;
		n++;
	}
	return n;
}

/* msg_after_job - m lost a job: a delete waiting for it happens now,
 * pending holds apply, else m is scheduled again */
static void
msg_after_job(struct qmsg *m)
{
	uint32_t *idx, n;

	if (m->deleting) {
		if (m->njobs == 0)
			qsched_remove(m, "deleted");
		return;
	}
	idx = xcalloc(m->nrcpt ? m->nrcpt : 1, sizeof(*idx));
	if ((n = apply_holds(m, idx)) > 0)
		(void)qsched_persist(m, idx, n);
	free(idx);
	due_update(m);
}

/* qsched_link_closed - a delivery link died: its jobs are due again at
 * once, without counting an attempt */
void
qsched_link_closed(struct qlink *l)
{
	int64_t now = time(NULL);
	struct qjob *j;
	struct qdest *d;
	struct qmsg *m;
	unsigned n = 0;

	while ((j = TAILQ_FIRST(&l->jobs)) != NULL) {
		m = j->msg;
		d = j->dest;
		job_free(j);
		dest_release(d, QDEST_ABANDONED, now, 0.5);
		msg_after_job(m);
		n++;
	}
	if (n > 0)
		log_warnx("%s went away: %u job(s) back in the queue", l->name, n);
	qsched_kick();
}

/* ---- results in --------------------------------------------------------- */

/* log_clean - copy s into buf, control characters replaced by '?' */
static const char *
log_clean(char *buf, size_t len, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

/* log_attempt - THE delivery log line: one per recipient per attempt;
 * note (what the reply answered, the TLS state) follows the reply */
static void
log_attempt(const struct qmsg *m, const struct qrcpt *r, const char *relay,
    const char *status, const char *note)
{
	char to[512], from[512], rel[256], dsn[32], reply[QUEUED_REPLY_MAX + 1];
	char nt[256];
	uint64_t now = now_real_ms();
	uint64_t delay = now > m->arrival_ms ? now - m->arrival_ms : 0;

	log_info("%s: to=<%s> from=<%s> relay=%s delay=%llu.%llu attempt=%u "
	    "dsn=%s status=%s (%s%s)", m->id, log_clean(to, sizeof(to), r->address),
	    log_clean(from, sizeof(from), m->sender),
	    log_clean(rel, sizeof(rel), relay),
	    (unsigned long long)(delay / 1000),
	    (unsigned long long)(delay % 1000 / 100), r->attempts,
	    log_clean(dsn, sizeof(dsn), r->last_dsn), status,
	    log_clean(reply, sizeof(reply), r->last_reply),
	    log_clean(nt, sizeof(nt), note));
}

/* outcome_for - the table row of a result class; unknown counts as 4 */
static const struct outcome *
outcome_for(uint32_t cls)
{
	size_t i;

	for (i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		if (outcomes[i].cls == cls)
			return &outcomes[i];
	log_warnx("delivery result class %u is not 2, 4 or 5: treated as 4", cls);
	return &outcomes[1];
}

/* set_text - replace *dst with s cut to QUEUED_REPLY_MAX bytes */
static void
set_text(char **dst, const char *s)
{
	free(*dst);
	*dst = xstrndup(s, QUEUED_REPLY_MAX);
}

/* What one result did, for the DSNs of the round. */
struct round {
	uint32_t *bounced, nbounced;
	uint32_t *delayed, ndelayed;
	const char **bounced_relay, **delayed_relay;
};

/* round_note - remember r for the round's DSNs (bounce or delay) */
static void
round_note(struct round *rd, const struct qmsg *m, struct qrcpt *r,
    const char *relay, int64_t now)
{
	time_t warn = qenv.conf->queue.delay_warning;

	if (r->state == RCPT_BOUNCED) {
		rd->bounced_relay[rd->nbounced] = relay;
		rd->bounced[rd->nbounced++] = r->index;
	} else if (r->state == RCPT_DEFERRED && warn > 0 &&
	    !(r->flags & QRCPT_F_WARNED) && now - m->arrival >= warn) {
		r->flags |= QRCPT_F_WARNED;
		rd->delayed_relay[rd->ndelayed] = relay;
		rd->delayed[rd->ndelayed++] = r->index;
	}
}

/* rcpt_outcome - apply one result to r, count it, log it, send its event */
static void
rcpt_outcome(struct qmsg *m, struct qrcpt *r, const struct rcpt_result *res,
    int64_t now, double rnd)
{
	const struct conf_queue *cq = &qenv.conf->queue;
	const struct outcome *o = outcome_for(res->cls);
	struct backoff b = { cq->retry_base, cq->retry_factor, cq->retry_cap,
	    cq->retry_jitter };
	const char *event = NULL;
	char dsn[16];
	int64_t next;

	r->attempts++;
	snprintf(dsn, sizeof(dsn), "%u.0.0", o->cls);
	set_text(&r->last_dsn, res->dsn[0] != '\0' ? res->dsn : dsn);
	set_text(&r->last_reply, res->reply);
	if (o->state == RCPT_DEFERRED) {
		next = now + backoff_delay(&b, r->attempts, rnd);
		if (next > m->arrival + cq->lifetime) {
			char *why = xasprintf("delivery time expired (%s)", res->reply);

			set_text(&r->last_dsn, "4.4.7");
			set_text(&r->last_reply, why);
			free(why);
			o = &outcomes[2];
			event = "expired";
		} else
			r->next_attempt = next;
	}
	r->state = o->state;
	stats_add(&stats->deliveries[o->dlv], 1);
	count_outcome(m, r, o->dlv, event != NULL);
	if (RCPT_IS_FINAL(r->state))
		count_rcpts--;
	log_attempt(m, r, res->relay, o->status, res->note);
	qevent(event != NULL ? event : stats_delivery_name(o->dlv), m, r,
	    res->relay, 0);
}

/* persist_job - store the states of the recipients of j (one txn) */
static void
persist_job(const struct qjob *j)
{
	if (qsched_persist(j->msg, j->rcpt, j->nrcpt) != 0)
		log_warnx("%s: cannot record delivery results; they may be "
		    "repeated after a restart", j->msg->id);
}

/* job_find - job 'jobid' of link l, or NULL */
static struct qjob *
job_find(struct qlink *l, uint64_t jobid)
{
	struct qjob *j;

	TAILQ_FOREACH(j, &l->jobs, entry)
		if (j->id == jobid)
			return j;
	return NULL;
}

/* conn_failed - 1 if every result is class 4 with dsn 4.4.x: the
 * destination itself could not be reached */
static int
conn_failed(const struct rcpt_result *res, uint32_t n)
{
	uint32_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (res[i].cls != 4 || strncmp(res[i].dsn, "4.4.", 4) != 0)
			return 0;
	return 1;
}

/* job_apply - apply the results to the job's recipients; a recipient
 * without a result is deferred */
static void
job_apply(struct qjob *j, const struct rcpt_result *res, uint32_t n,
    struct round *rd, int64_t now, double rnd)
{
	static const struct rcpt_result none = { 0, 4, "4.3.0", "none",
	    "the delivery agent returned no result", "" };
	struct qmsg *m = j->msg;
	struct qrcpt *r;
	uint32_t i;

	for (i = 0; i < n; i++) {
		if (res[i].index >= m->nrcpt || m->rcpt[res[i].index].job != j) {
			log_warnx("%s: result for recipient %u, not in job %llu",
			    m->id, res[i].index, (unsigned long long)j->id);
			continue;
		}
		r = &m->rcpt[res[i].index];
		rcpt_outcome(m, r, &res[i], now, rnd);
		round_note(rd, m, r, res[i].relay, now);
		r->job = NULL;
	}
	for (i = 0; i < j->nrcpt; i++)
		if ((r = &m->rcpt[j->rcpt[i]])->job == j) {
			rcpt_outcome(m, r, &none, now, rnd);
			round_note(rd, m, r, none.relay, now);
			r->job = NULL;
		}
}

/* read_results - decode the recipient entries of a JOB_RESULT */
static struct rcpt_result *
read_results(struct msgreader *r, uint32_t *np)
{
	struct rcpt_result *res;
	uint32_t n = msg_get_u32(r), i;

	/* each entry is at least 4 + 4 + 4 x 5 bytes: bound the allocation */
	if (n > (r->len - r->off) / 28)
		n = (uint32_t)((r->len - r->off) / 28) + 1;
	res = xcalloc(n ? n : 1, sizeof(*res));
	for (i = 0; i < n; i++) {
		res[i].index = msg_get_u32(r);
		res[i].cls = msg_get_u32(r);
		res[i].dsn = msg_get_str(r);
		res[i].relay = msg_get_str(r);
		res[i].reply = msg_get_str(r);
		res[i].note = msg_get_str(r);
	}
	*np = n;
	return res;
}

/* round_dsns - the DSNs of one result: bounces, then delay warnings */
static void
round_dsns(const struct qmsg *m, const struct round *rd)
{
	if (m->deleting)
		return;         /* the operator deleted it: no notification */
	if (rd->nbounced > 0)
		(void)qdsn_send(m, rd->bounced, rd->bounced_relay, rd->nbounced,
		    "failed");
	if (rd->ndelayed > 0)
		(void)qdsn_send(m, rd->delayed, rd->delayed_relay, rd->ndelayed,
		    "delayed");
}

/* round_new - the per-result DSN lists, sized for j */
static void
round_new(struct round *rd, const struct qjob *j)
{
	size_t n = j->nrcpt ? j->nrcpt : 1;

	rd->bounced = xcalloc(n, sizeof(*rd->bounced));
	rd->delayed = xcalloc(n, sizeof(*rd->delayed));
	rd->bounced_relay = xcalloc(n, sizeof(*rd->bounced_relay));
	rd->delayed_relay = xcalloc(n, sizeof(*rd->delayed_relay));
	rd->nbounced = rd->ndelayed = 0;
}

/* round_free - release the lists of round_new */
static void
round_free(struct round *rd)
{
	free(rd->bounced);
	free(rd->delayed);
	free(rd->bounced_relay);
	free(rd->delayed_relay);
}

/* job_finish - apply a job's results, send the round's DSNs (durable
 * before the states that caused them), persist, release the destination */
static void
job_finish(struct qjob *j, const struct rcpt_result *res, uint32_t n)
{
	struct qmsg *m = j->msg;
	struct qdest *d = j->dest;
	/* rounded up, so a retry never comes before its delay is over */
	int64_t now = (int64_t)((now_real_ms() + 999) / 1000);
	double rnd = backoff_random();  /* one draw: the job stays together */
	int failed = conn_failed(res, n);
	struct round rd;

	round_new(&rd, j);
	job_apply(j, res, n, &rd, now, rnd);
	round_dsns(m, &rd);
	round_free(&rd);
	if (live_rcpts(m) == 0 && !m->deleting) {
		job_free(j);
		dest_release(d, failed ? QDEST_CONN_FAILED : QDEST_REACHED, now, rnd);
		if (m->njobs == 0)
			qsched_remove(m, "removed");
		return;
	}
	persist_job(j);
	job_free(j);
	dest_release(d, failed ? QDEST_CONN_FAILED : QDEST_REACHED, now, rnd);
	msg_after_job(m);
}

/* qsched_result - IPC_QUEUED_JOB_RESULT from a delivery link */
void
qsched_result(struct ipc_chan *c, struct ipc_msg *msg, void *arg)
{
	struct qlink *l = arg;
	struct rcpt_result *res;
	struct qjob *j;
	const char *id;
	uint64_t jobid;
	uint32_t n;

	jobid = msg_get_u64(&msg->r);
	id = msg_get_str(&msg->r);
	res = read_results(&msg->r, &n);
	msg_end(&msg->r, "IPC_QUEUED_JOB_RESULT");
	j = job_find(l, jobid);
	if (j == NULL || strcmp(j->msg->id, id) != 0) {
		log_warnx("%s: result for unknown job %llu (%s), ignored",
		    l->name, (unsigned long long)jobid, id);
		free(res);
		return;
	}
	job_finish(j, res, n);
	free(res);
	qsched_kick();
}

/* qsched_job_overdue - j stayed unanswered past queue.job_timeout: its
 * recipients are deferred (4.4.1, the destination backs off as after a
 * failed connection) and a late result for it is ignored as unknown */
void
qsched_job_overdue(struct qjob *j)
{
	struct rcpt_result *res = xcalloc(j->nrcpt ? j->nrcpt : 1, sizeof(*res));
	uint32_t i, n = 0;

	for (i = 0; i < j->nrcpt; i++) {
		if (j->msg->rcpt[j->rcpt[i]].job != j)
			continue;
		res[n].index = j->rcpt[i];
		res[n].cls = 4;
		res[n].dsn = "4.4.1";
		res[n].relay = j->link->name;
		res[n].reply = "the delivery did not finish within queue.job_timeout; "
		    "the delivery process is replaced";
		res[n++].note = "";
	}
	job_finish(j, res, n);
	free(res);
	qsched_kick();
}

/* ---- shared with queued_ops.c ------------------------------------------ */

/* qsched_persist - store recipients idx[0..n-1] of m (one txn) */
int
qsched_persist(struct qmsg *m, const uint32_t *idx, uint32_t n)
{
	struct MDB_txn *txn;
	uint32_t i;
	int rc;

	if ((rc = qidx_begin(&txn)) != 0)
		return qidx_errno(rc);
	for (i = 0; i < n && rc == 0; i++)
		rc = qidx_put_rcpt(txn, m, &m->rcpt[idx[i]]);
	if (rc != 0) {
		qidx_abort(txn);
		return qidx_errno(rc);
	}
	if ((rc = qidx_commit(txn)) != 0)
		return qidx_errno(rc);
	return 0;
}

/* qsched_reschedule - re-key m and kick */
void
qsched_reschedule(struct qmsg *m)
{
	uint32_t i;

	for (i = 0; i < m->nrcpt; i++)
		if (m->rcpt[i].parked && m->rcpt[i].job == NULL)
			m->rcpt[i].parked = 0;
	due_update(m);
	qsched_kick();
}

/* qsched_all_due - every waiting recipient due now, destinations up */
void
qsched_all_due(void)
{
	int64_t now = time(NULL);
	struct qmsg *m;
	uint32_t i;

	qdest_all_up();
	RB_FOREACH(m, qmsg_ids, &msgs_by_id) {
		for (i = 0; i < m->nrcpt; i++) {
			struct qrcpt *r = &m->rcpt[i];

			r->wait_until = 0;
			r->parked = 0;
			if (r->state == RCPT_DEFERRED && r->next_attempt > now)
				r->next_attempt = now;
		}
		due_update(m);
	}
	qsched_kick();
}

/* remove_done - the records of m are gone: its file goes (or is
 * retained), the lines are logged, m is forgotten */
static void
remove_done(struct qmsg *m)
{
	if (m->removing == 2)
		qevent("deleted", m, NULL, NULL, 1);
	if (qretain_keep(m->id) == 0)
		log_info("%s: retained", m->id);
	else {
		qspool_msg_unlink(m->id);
		qevent("removed", m, NULL, NULL, 1);
	}
	qsched_drop(m);
}

/* del_records - delete the records of the first n messages of the
 * removal batch (all when n is 0) in one transaction; rc */
static int
del_records(size_t n)
{
	struct MDB_txn *txn;
	struct qmsg *m;
	size_t i = 0;
	int rc;

	if ((rc = qidx_begin(&txn)) != 0)
		return rc;
	TAILQ_FOREACH(m, &removals, rm_entry) {
		if ((rc = qidx_del_msg(txn, m->id)) != 0) {
			qidx_abort(txn);
			return rc;
		}
		if (++i == n)
			break;
	}
	return qidx_commit(txn);
}

/* removals_retry - what could not be removed stays in the batch (never
 * scheduled again, so never delivered twice) and is tried again soon */
static void
removals_retry(size_t n, int rc)
{
	struct timeval tv = { 1, 0 };

	log_warnx("%zu finished message(s) not yet removed from the queue "
	    "index (%s); trying again in 1s", n, rc > 0 ? strerror(rc) :
	    "index error");
	event_add(remove_ev, &tv);
}

/* flush_removals - one index transaction for every message finished in
 * this event-loop round (a crash before it only repeats deliveries),
 * then their files; when the batch fails as a whole (a map short of
 * pages), one message at a time, and the rest is retried */
static void
flush_removals(evutil_socket_t fd, short what, void *arg)
{
	struct qmsg *m;
	size_t kept = 0;
	int rc;

	if (TAILQ_EMPTY(&removals))
		return;
	if ((rc = del_records(0)) == 0) {
		while ((m = TAILQ_FIRST(&removals)) != NULL) {
			TAILQ_REMOVE(&removals, m, rm_entry);
			remove_done(m);
		}
		return;
	}
	while ((m = TAILQ_FIRST(&removals)) != NULL &&
	    (rc = del_records(1)) == 0) {
		TAILQ_REMOVE(&removals, m, rm_entry);
		remove_done(m);
	}
	TAILQ_FOREACH(m, &removals, rm_entry)
		kept++;
	if (kept > 0)
		removals_retry(kept, qidx_errno(rc));
}

/* removals_event - the removal batch's event: pending jobs out first */
static void
removals_event(evutil_socket_t fd, short what, void *arg)
{
	qsched_run_pending();
	flush_removals(fd, what, arg);
}

/* qsched_flush_removals - run the removal batch now */
void
qsched_flush_removals(void)
{
	flush_removals(-1, 0, NULL);
}

/* qsched_remove - drop m's records, then its file (or retain it), in the
 * removal batch of this round; a message with jobs in flight is only
 * marked and goes when they return */
void
qsched_remove(struct qmsg *m, const char *why)
{
	m->deleting = 1;
	due_update(m);
	if (m->njobs > 0 || m->removing)
		return;
	m->removing = strcmp(why, "deleted") == 0 ? 2 : 1;
	TAILQ_INSERT_TAIL(&removals, m, rm_entry);
	event_active(remove_ev, EV_TIMEOUT, 0);
}
