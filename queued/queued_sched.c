/*
 * queued_sched.c - the in-memory schedule: which recipients are due, the
 * jobs handed to delivery processes, their results, retries with
 * jittered exponential backoff, expiry, and removal of finished messages.
 *
 * Owns: every struct qmsg (a tree by queue id and a tree by due time),
 * the jobs in flight, the delivery log line, the counters
 * deliveries[] and the gauges queue_messages / queue_recipients.
 *
 * Scheduling: a message is in the due tree, keyed by the earliest
 * next_attempt of its recipients that are PENDING or DEFERRED and not in
 * flight. sched_run() takes due messages in order and sends each one
 * IPC_DELIVERY_JOB (its due recipients, at most QUEUED_JOB_MAX_RCPT) to
 * the delivery link with the fewest jobs, while fewer than
 * queue.concurrency jobs are in flight; a timer wakes it at the next due
 * time. It runs from a deferred event (qsched_kick), never inside another
 * handler, so links can come and go while it is not running.
 * Results: class 2 delivered, 5 bounced, 4 deferred by backoff_delay()
 * unless that passes arrival + lifetime (then bounced, dsn 4.4.7). One
 * LMDB transaction per result; a message whose recipients are all final
 * loses its records and its msg/ file.
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
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "queued.h"
#include "stats.h"
#include "util.h"

/* One recipient's result, as read from IPC_QUEUED_JOB_RESULT. */
struct rcpt_result {
	uint32_t index;
	uint32_t cls;
	const char *dsn;
	const char *relay;
	const char *reply;
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

/* rcpt_schedulable - 1 if r waits for an attempt (not final, held, busy) */
static int
rcpt_schedulable(const struct qrcpt *r)
{
	return (r->state == RCPT_PENDING || r->state == RCPT_DEFERRED) &&
	    r->job == NULL;
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

/* publish_gauges - copy the counts into the shared stats */
static void
publish_gauges(void)
{
	stats_gauge_set(&stats->queue_messages, (int64_t)count_msgs);
	stats_gauge_set(&stats->queue_recipients, (int64_t)count_rcpts);
}

/* due_update - re-key m in the due tree after its recipients changed */
static void
due_update(struct qmsg *m)
{
	int64_t due = -1;
	uint32_t i;

	if (m->due != -1)
		RB_REMOVE(qmsg_due, &msgs_by_due, m);
	for (i = 0; i < m->nrcpt && !m->broken; i++)
		if (rcpt_schedulable(&m->rcpt[i]) &&
		    (due == -1 || m->rcpt[i].next_attempt < due))
			due = m->rcpt[i].next_attempt;
	m->due = due;
	if (due != -1)
		RB_INSERT(qmsg_due, &msgs_by_due, m);
}

/* qsched_add - take m into the queue (new commit or recovery) */
void
qsched_add(struct qmsg *m)
{
	if (RB_INSERT(qmsg_ids, &msgs_by_id, m) != NULL)
		panic("%s: queued twice", m->id);
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
	if (m->njobs != 0)
		panic("%s: dropped with %u job(s) in flight", m->id, m->njobs);
	if (m->due != -1)
		RB_REMOVE(qmsg_due, &msgs_by_due, m);
	RB_REMOVE(qmsg_ids, &msgs_by_id, m);
	count_msgs--;
	count_rcpts -= live_rcpts(m);
	publish_gauges();
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

/* job_collect - a job holding the due recipients of m (none: NULL) */
static struct qjob *
job_collect(struct qmsg *m, int64_t now, uint32_t *attempt)
{
	struct qjob *j = xcalloc(1, sizeof(*j));
	uint32_t i;

	j->rcpt = xcalloc(m->nrcpt < QUEUED_JOB_MAX_RCPT ? m->nrcpt :
	    QUEUED_JOB_MAX_RCPT, sizeof(*j->rcpt));
	*attempt = 1;
	for (i = 0; i < m->nrcpt && j->nrcpt < QUEUED_JOB_MAX_RCPT; i++) {
		if (!rcpt_schedulable(&m->rcpt[i]) || m->rcpt[i].next_attempt > now)
			continue;
		j->rcpt[j->nrcpt++] = i;
		if (m->rcpt[i].attempts + 1 > *attempt)
			*attempt = m->rcpt[i].attempts + 1;
	}
	if (j->nrcpt == 0) {
		free(j->rcpt);
		free(j);
		return NULL;
	}
	j->id = next_jobid++;
	j->msg = m;
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
		if (rcpt_schedulable(&m->rcpt[i]) && m->rcpt[i].next_attempt <= now)
			m->rcpt[i].next_attempt = now + qenv.conf->queue.retry_base;
	due_update(m);
}

/* job_send - hand the due recipients of m to delivery link l */
static void
job_send(struct qmsg *m, struct qlink *l, int64_t now)
{
	struct msgbuf b;
	struct qjob *j;
	uint32_t attempt, i;
	int fd;

	if ((j = job_collect(m, now, &attempt)) == NULL) {
		due_update(m);
		return;
	}
	if (qspool_msg_open(m->id, &fd) != 0) {
		free(j->rcpt);
		free(j);
		postpone(m, now);
		return;
	}
	j->link = l;
	for (i = 0; i < j->nrcpt; i++)
		m->rcpt[j->rcpt[i]].job = j;
	TAILQ_INSERT_TAIL(&l->jobs, j, entry);
	l->njobs++;
	m->njobs++;
	jobs_inflight++;
	msgbuf_init(&b);
	job_encode(&b, j, attempt);
	ipc_send(l->chan, IPC_DELIVERY_JOB, &b, fd);
	msgbuf_free(&b);
	log_debug("%s: job %llu to %s: %u recipient(s), attempt %u", m->id,
	    (unsigned long long)j->id, l->name, j->nrcpt, attempt);
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

/* qsched_init - create the kick event and the timer; nothing runs yet */
void
qsched_init(void)
{
	kick_ev = event_new(qenv.base, -1, 0, sched_event, NULL);
	timer_ev = evtimer_new(qenv.base, sched_event, NULL);
	if (kick_ev == NULL || timer_ev == NULL)
		fatalx("cannot create the scheduler events");
	publish_gauges();
}

/* qsched_link_closed - a delivery link died: its jobs are due again at
 * once, without counting an attempt */
void
qsched_link_closed(struct qlink *l)
{
	struct qjob *j;
	struct qmsg *m;
	unsigned n = 0;

	while ((j = TAILQ_FIRST(&l->jobs)) != NULL) {
		m = j->msg;
		job_free(j);
		due_update(m);
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

/* log_attempt - THE delivery log line: one per recipient per attempt */
static void
log_attempt(const struct qmsg *m, const struct qrcpt *r, const char *relay,
    const char *status)
{
	char to[512], from[512], rel[256], dsn[32], reply[QUEUED_REPLY_MAX + 1];
	uint64_t now = now_real_ms();
	uint64_t delay = now > m->arrival_ms ? now - m->arrival_ms : 0;

	log_info("%s: to=<%s> from=<%s> relay=%s delay=%llu.%llu attempt=%u "
	    "dsn=%s status=%s (%s)", m->id, log_clean(to, sizeof(to), r->address),
	    log_clean(from, sizeof(from), m->sender),
	    log_clean(rel, sizeof(rel), relay),
	    (unsigned long long)(delay / 1000),
	    (unsigned long long)(delay % 1000 / 100), r->attempts,
	    log_clean(dsn, sizeof(dsn), r->last_dsn), status,
	    log_clean(reply, sizeof(reply), r->last_reply));
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

/* rcpt_outcome - apply one result to r, count it and log it */
static void
rcpt_outcome(struct qmsg *m, struct qrcpt *r, const struct rcpt_result *res,
    int64_t now, double rnd)
{
	const struct conf_queue *cq = &qenv.conf->queue;
	const struct outcome *o = outcome_for(res->cls);
	struct backoff b = { cq->retry_base, cq->retry_factor, cq->retry_cap,
	    cq->retry_jitter };
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
		} else
			r->next_attempt = next;
	}
	r->state = o->state;
	stats_add(&stats->deliveries[o->dlv], 1);
	if (RCPT_IS_FINAL(r->state))
		count_rcpts--;
	log_attempt(m, r, res->relay, o->status);
}

/* msg_finished - every recipient of m is final: drop records and file */
static void
msg_finished(struct qmsg *m)
{
	struct MDB_txn *txn;
	int rc;

	if ((rc = qidx_begin(&txn)) == 0) {
		if ((rc = qidx_del_msg(txn, m->id)) == 0)
			rc = qidx_commit(txn);
		else
			qidx_abort(txn);
	}
	if (rc == 0) {
		qspool_msg_unlink(m->id);
		log_info("%s: removed", m->id);
	} else
		log_warnx("%s: cannot remove it from the queue index; it may be "
		    "delivered again after a restart", m->id);
	qsched_drop(m);
}

/* persist_job - store the states of the recipients of j (one txn) */
static void
persist_job(const struct qjob *j)
{
	struct MDB_txn *txn;
	uint32_t i;
	int rc;

	if ((rc = qidx_begin(&txn)) != 0)
		goto fail;
	for (i = 0; i < j->nrcpt && rc == 0; i++)
		rc = qidx_put_rcpt(txn, j->msg, &j->msg->rcpt[j->rcpt[i]]);
	if (rc != 0) {
		qidx_abort(txn);
		goto fail;
	}
	if ((rc = qidx_commit(txn)) == 0)
		return;
fail:
	log_warnx("%s: cannot record delivery results; they may be repeated "
	    "after a restart", j->msg->id);
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

/* job_apply - apply the results to the job's recipients; a recipient
 * without a result is deferred */
static void
job_apply(struct qjob *j, const struct rcpt_result *res, uint32_t n)
{
	static const struct rcpt_result none = { 0, 4, "4.3.0", "none",
	    "the delivery agent returned no result" };
	struct qmsg *m = j->msg;
	/* rounded up, so a retry never comes before its delay is over */
	int64_t now = (int64_t)((now_real_ms() + 999) / 1000);
	double rnd = backoff_random();  /* one draw: the job stays together */
	uint32_t i;

	for (i = 0; i < n; i++) {
		if (res[i].index >= m->nrcpt || m->rcpt[res[i].index].job != j) {
			log_warnx("%s: result for recipient %u, not in job %llu",
			    m->id, res[i].index, (unsigned long long)j->id);
			continue;
		}
		rcpt_outcome(m, &m->rcpt[res[i].index], &res[i], now, rnd);
		m->rcpt[res[i].index].job = NULL;
	}
	for (i = 0; i < j->nrcpt; i++)
		if (m->rcpt[j->rcpt[i]].job == j) {
			rcpt_outcome(m, &m->rcpt[j->rcpt[i]], &none, now, rnd);
			m->rcpt[j->rcpt[i]].job = NULL;
		}
}

/* read_results - decode the recipient entries of a JOB_RESULT */
static struct rcpt_result *
read_results(struct msgreader *r, uint32_t *np)
{
	struct rcpt_result *res;
	uint32_t n = msg_get_u32(r), i;

	/* each entry is at least 4 + 4 + 3 x 5 bytes: bound the allocation */
	if (n > (r->len - r->off) / 23)
		n = (uint32_t)((r->len - r->off) / 23) + 1;
	res = xcalloc(n ? n : 1, sizeof(*res));
	for (i = 0; i < n; i++) {
		res[i].index = msg_get_u32(r);
		res[i].cls = msg_get_u32(r);
		res[i].dsn = msg_get_str(r);
		res[i].relay = msg_get_str(r);
		res[i].reply = msg_get_str(r);
	}
	*np = n;
	return res;
}

/* qsched_result - IPC_QUEUED_JOB_RESULT from a delivery link */
void
qsched_result(struct ipc_chan *c, struct ipc_msg *msg, void *arg)
{
	struct qlink *l = arg;
	struct rcpt_result *res;
	struct qjob *j;
	struct qmsg *m;
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
	m = j->msg;
	job_apply(j, res, n);
	free(res);
	if (live_rcpts(m) == 0) {
		job_free(j);
		msg_finished(m);
	} else {
		persist_job(j);
		job_free(j);
		due_update(m);
	}
	qsched_kick();
}
