/*
 * queued_ops.c - the queue operations the control socket offers
 * (queued_control.c calls them): hold, release, delete, flush, requeue,
 * and the walk over the queue for list and show.
 *
 * Owns: nothing of its own; it changes recipient states through the
 * scheduler (queued_sched.c) and stores them in one LMDB transaction per
 * operation before anything is reported done. A recipient in flight is
 * not touched: a hold is stored with it at once (QRCPT_F_HOLD, in the
 * same transaction as any other change) and applies when its result
 * comes back, or at the next start if queued stopped before that
 * (queued.c); a delete waits for the jobs in flight.
 * Every change is one log line and one event (queued_event.c).
 *
 * SECURITY: runs unprivileged in queued; the caller (queued_control.c)
 * has already checked the peer's uid. Queue ids are looked up, never
 * used as paths here.
 * STANDARDS: none.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "queued.h"
#include "queued_dest.h"
#include "route.h"
#include "util.h"

/* The stored names of the recipient states (enum rcpt_state order). */
static const char *const state_names[] = {
	"pending", "deferred", "delivered", "bounced", "held",
};

/* A change applied to one recipient; 1 if it changed r. */
typedef int rcpt_op(struct qmsg *m, struct qrcpt *r, int64_t now);

/* qrcpt_state_name - the name of a recipient state */
const char *
qrcpt_state_name(uint32_t state)
{
	if (state < sizeof(state_names) / sizeof(state_names[0]))
		return state_names[state];
	return "unknown";
}

/* op_hold - PENDING/DEFERRED -> HELD (in flight: when it returns) */
static int
op_hold(struct qmsg *m, struct qrcpt *r, int64_t now)
{
	if (r->state != RCPT_PENDING && r->state != RCPT_DEFERRED)
		return 0;
	if (r->job != NULL) {
		if (r->flags & QRCPT_F_HOLD)
			return 0;
		r->flags |= QRCPT_F_HOLD;       /* stored now, applied later */
		return 1;
	}
	r->state = RCPT_HELD;
	r->parked = 0;
	qevent("held", m, r, NULL, 1);
	return 1;
}

/* op_release - HELD -> due now; a hold asked for in flight is off */
static int
op_release(struct qmsg *m, struct qrcpt *r, int64_t now)
{
	if (r->flags & QRCPT_F_HOLD) {
		r->flags &= ~QRCPT_F_HOLD;
		if (r->state != RCPT_HELD)
			return 1;
	}
	if (r->state != RCPT_HELD)
		return 0;
	r->state = r->attempts == 0 ? RCPT_PENDING : RCPT_DEFERRED;
	r->next_attempt = now;
	r->wait_until = 0;
	qevent("released", m, r, NULL, 1);
	return 1;
}

/* op_flush - DEFERRED -> due now */
static int
op_flush(struct qmsg *m, struct qrcpt *r, int64_t now)
{
	r->wait_until = 0;
	if (r->state != RCPT_DEFERRED || r->job != NULL || r->next_attempt <= now)
		return 0;
	r->next_attempt = now;
	return 1;
}

/* op_requeue - not final -> PENDING, attempts 0, due now */
static int
op_requeue(struct qmsg *m, struct qrcpt *r, int64_t now)
{
	if (RCPT_IS_FINAL(r->state) || r->job != NULL)
		return 0;
	r->state = RCPT_PENDING;
	r->attempts = 0;
	r->next_attempt = now;
	r->wait_until = 0;
	r->flags = 0;
	free(r->last_dsn);
	r->last_dsn = xstrdup("");
	free(r->last_reply);
	r->last_reply = xstrdup("");
	qevent("requeued", m, r, NULL, 1);
	return 1;
}

/* apply_msg - run op over the recipients of m, store what changed */
static int
apply_msg(struct qmsg *m, rcpt_op *op, int64_t now)
{
	uint32_t *idx, n = 0, i;
	int err = 0;

	idx = xcalloc(m->nrcpt ? m->nrcpt : 1, sizeof(*idx));
	for (i = 0; i < m->nrcpt; i++)
		if (op(m, &m->rcpt[i], now))
			idx[n++] = i;
	if (n > 0 && (err = qsched_persist(m, idx, n)) != 0)
		log_warnx("%s: cannot store the new recipient states: %s", m->id,
		    strerror(err));
	free(idx);
	qsched_reschedule(m);
	return err;
}

/* apply_op - run op over the recipients of message id */
static int
apply_op(const char *id, rcpt_op *op)
{
	struct qmsg *m;

	if (id == NULL || (m = qmsg_find(id)) == NULL || m->deleting)
		return ENOENT;
	if (m->broken)
		return EINVAL;
	return apply_msg(m, op, time(NULL));
}

/* the destination sched_flush_dest flushes (op_flush_dest's argument) */
static const struct qdest *flush_dest;

/* op_flush_dest - op_flush for the recipients of flush_dest only */
static int
op_flush_dest(struct qmsg *m, struct qrcpt *r, int64_t now)
{
	return r->dest == flush_dest && op_flush(m, r, now);
}

/* sched_hold - hold every waiting recipient of id */
int
sched_hold(const char *id)
{
	return apply_op(id, op_hold);
}

/* sched_release - release every held recipient of id */
int
sched_release(const char *id)
{
	return apply_op(id, op_release);
}

/* sched_requeue - every not-final recipient of id starts afresh */
int
sched_requeue(const char *id)
{
	return apply_op(id, op_requeue);
}

/* sched_flush - id's deferred recipients due now; NULL: everything */
int
sched_flush(const char *id)
{
	if (id == NULL || *id == '\0') {
		log_info("flush: every deferred recipient is due now");
		qsched_all_due();
		return 0;
	}
	return apply_op(id, op_flush);
}

/* sched_flush_dest - every deferred recipient of destination key due
 * now, the destination up (one transaction per message it changes) */
int
sched_flush_dest(const char *key)
{
	int64_t now = time(NULL);
	struct qdest *d = qdest_find(key);
	struct qmsg *m;
	int err = 0, e;

	if (d == NULL)
		return ENOENT;
	log_info("flush: every deferred recipient for %s is due now", key);
	qdest_up(d);
	flush_dest = d;
	for (m = qsched_first(); m != NULL; m = qsched_next(m))
		if (!m->deleting && !m->broken &&
		    (e = apply_msg(m, op_flush_dest, now)) != 0)
			err = e;
	flush_dest = NULL;
	return err;
}

/* sched_delete - remove id without a DSN */
int
sched_delete(const char *id)
{
	struct qmsg *m;

	if (id == NULL || (m = qmsg_find(id)) == NULL || m->deleting)
		return ENOENT;
	qsched_remove(m, "deleted");
	qsched_kick();
	return 0;
}

/* sched_foreach - every message in id order */
void
sched_foreach(void (*fn)(const struct qmsg *m, void *arg), void *arg)
{
	struct qmsg *m;

	for (m = qsched_first(); m != NULL; m = qsched_next(m))
		if (!m->deleting)
			fn(m, arg);
}

/* queued_destination - the destination key of a recipient: where the
 * route table sends it ("TRANSPORT:domain" for mx, "TRANSPORT:host" for
 * a relay, "TRANSPORT" for a local output), lower-case */
const char *
queued_destination(const char *address, const char *sender, char *buf,
    size_t len)
{
	route_destination(qenv.conf, address, sender != NULL ? sender : "", buf,
	    len);
	return buf;
}
