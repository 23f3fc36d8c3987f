/*
 * smtpd_queue.c - smtpd's side of the queue link: IPC_QUEUED_MSG_OPEN,
 * _COMMIT and _ABORT out; IPC_SMTPD_MSG_OPENED and _COMMITTED in.
 *
 * Owns: the link to queued (smtpd.queue), its generation counter, the
 * request ids and the list of sessions waiting for an answer. A session
 * waits (not reading its client) from DATA to MSG_OPENED and from the end
 * of data to MSG_COMMITTED. When the link dies (queued crashed) every
 * waiting session gets 451 and new transactions get 451 until the master
 * sends IPC_CHILD_QUEUE_LINK; a message still streaming is refused with
 * 451 at its end (the generation of its spool file no longer matches).
 *
 * The durability rule lives here: "250 ... queued as" is said only after
 * MSG_COMMITTED with status 0. A transaction that ends without a commit
 * after MSG_OPENED sends MSG_ABORT (to the same queued only: a new one
 * has already discarded the old tmp/ files at recovery).
 *
 * SECURITY: queued is trusted; a malformed frame is fatal (msg_end). We
 * receive exactly one descriptor per message, write-only, and never a
 * path.
 *
 * STANDARDS: RFC 5321 4.2.5 (250 after end of data means responsibility
 * taken), RFC 3463 (4.3.0, 4.3.1).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "util.h"

#include "smtpd.h"

static void queue_opened(struct ipc_chan *c, struct ipc_msg *m, void *arg);
static void queue_committed(struct ipc_chan *c, struct ipc_msg *m, void *arg);
static void queue_closed(struct ipc_chan *c, void *arg);

/* What queued may send us. */
static const struct ipc_handler queue_table[] = {
	{ IPC_SMTPD_MSG_OPENED, queue_opened },
	{ IPC_SMTPD_MSG_COMMITTED, queue_committed },
	{ 0, NULL },
};

/* queue_wait - put s on the wait list for request reqid */
static void
queue_wait(struct session *s, uint32_t reqid)
{
	s->reqid = reqid;
	s->flags |= SF_WAITING;
	TAILQ_INSERT_TAIL(&smtpd.waiting, s, wait);
	session_pause(s);
}

/* queue_unwait - take s off the wait list (session going away) */
void
queue_unwait(struct session *s)
{
	if (!(s->flags & SF_WAITING))
		return;
	TAILQ_REMOVE(&smtpd.waiting, s, wait);
	s->flags &= ~SF_WAITING;
}

/* queue_find - the session waiting in state st for reqid, or NULL */
static struct session *
queue_find(uint32_t reqid, enum session_state st)
{
	struct session *s;

	TAILQ_FOREACH(s, &smtpd.waiting, wait)
		if (s->reqid == reqid && s->state == st)
			return s;
	return NULL;
}

/* queue_reqid - the next request id (never 0) */
static uint32_t
queue_reqid(void)
{
	if (smtpd.next_reqid == 0)
		smtpd.next_reqid = 1;
	return smtpd.next_reqid++;
}

/* queue_current - 1 if the link that opened s->qid is still up */
int
queue_current(const struct session *s)
{
	return smtpd.queue != NULL && s->qgen == smtpd.qgen;
}

/* queue_fail_waiting - the link died: 451 to everyone waiting on it */
static void
queue_fail_waiting(void)
{
	struct session_list failed;
	struct session *s;

	/* detach first: resumed sessions may start waiting again */
	TAILQ_INIT(&failed);
	while ((s = TAILQ_FIRST(&smtpd.waiting)) != NULL) {
		queue_unwait(s);
		TAILQ_INSERT_TAIL(&failed, s, wait);
	}
	while ((s = TAILQ_FIRST(&failed)) != NULL) {
		TAILQ_REMOVE(&failed, s, wait);
		session_reject(s, REJ_QUEUE_ERROR,
		    s->state == SS_WAIT_OPEN ? "DATA" : "END-OF-MESSAGE", NULL,
		    "451 4.3.0 Queue unavailable, try again later");
		s->qid[0] = '\0';       /* that queued is gone: nothing to abort */
		session_txn_reset(s);
		session_resume(s);
	}
}

/* queue_closed - queued went away (it will be restarted by the master) */
static void
queue_closed(struct ipc_chan *c, void *arg)
{
	log_warnx("lost the link to queued; refusing messages until it is back");
	smtpd.queue = NULL;
	queue_fail_waiting();
}

/* queue_link_set - use fd as the link to queued (replacing any old one) */
void
queue_link_set(int fd)
{
	if (smtpd.queue != NULL) {
		/* the master only sends a new link after queued died */
		ipc_chan_free(&smtpd.queue);
		smtpd.qgen++;
		queue_fail_waiting();
	}
	smtpd.queue = ipc_chan_new(smtpd.base, fd, "queued", queue_table,
	    queue_closed, NULL);
	smtpd.qgen++;
}

/* queue_open - ask queued for a spool file (IPC_QUEUED_MSG_OPEN) */
int
queue_open(struct session *s)
{
	struct msgbuf b;
	uint32_t reqid;

	if (smtpd.queue == NULL)
		return -1;
	reqid = queue_reqid();
	msgbuf_init(&b);
	msg_add_u32(&b, reqid);
	ipc_send(smtpd.queue, IPC_QUEUED_MSG_OPEN, &b, -1);
	msgbuf_free(&b);
	s->state = SS_WAIT_OPEN;
	queue_wait(s, reqid);
	return 0;
}

/* queue_send_abort - IPC_QUEUED_MSG_ABORT for one queue id */
static void
queue_send_abort(const char *qid)
{
	struct msgbuf b;

	msgbuf_init(&b);
	msg_add_str(&b, qid);
	ipc_send(smtpd.queue, IPC_QUEUED_MSG_ABORT, &b, -1);
	msgbuf_free(&b);
}

/* queue_abort - IPC_QUEUED_MSG_ABORT for s->qid (if still meaningful) */
void
queue_abort(struct session *s)
{
	if (s->qid[0] != '\0' && queue_current(s))
		queue_send_abort(s->qid);
	s->qid[0] = '\0';
}

/* queue_commit - IPC_QUEUED_MSG_COMMIT for the finished message */
int
queue_commit(struct session *s, uint64_t size)
{
	struct msgbuf b;
	uint32_t reqid;
	size_t i;

	if (!queue_current(s))
		return -1;
	reqid = queue_reqid();
	msgbuf_init(&b);
	msg_add_u32(&b, reqid);
	msg_add_str(&b, s->qid);
	msg_add_str(&b, s->sender);
	msg_add_u64(&b, size);
	msg_add_str(&b, s->ip);
	msg_add_str(&b, s->helo);
	msg_add_str(&b, "");            /* no AUTH yet */
	msg_add_u32(&b, (uint32_t)s->nrcpt);
	for (i = 0; i < s->nrcpt; i++)
		msg_add_str(&b, s->rcpt[i]);
	msg_add_u32(&b, ENV_F_DECLARED |
	    (s->flags & SF_SMTPUTF8 ? ENV_F_SMTPUTF8 : 0) |
	    (s->flags & SF_8BITMIME ? ENV_F_8BITMIME : 0));
	ipc_send(smtpd.queue, IPC_QUEUED_MSG_COMMIT, &b, -1);
	msgbuf_free(&b);
	s->msgsize = size;
	s->state = SS_WAIT_COMMIT;
	queue_wait(s, reqid);
	return 0;
}

/* queue_opened - IPC_SMTPD_MSG_OPENED: start the DATA phase, or 451 */
static void
queue_opened(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct session *s;
	uint32_t reqid, status;
	const char *qid;

	reqid = msg_get_u32(&m->r);
	status = msg_get_u32(&m->r);
	qid = msg_get_str(&m->r);
	msg_end(&m->r, "IPC_SMTPD_MSG_OPENED");
	if (status == 0 && (m->fd < 0 || !queue_id_valid(qid)))
		fatalx("IPC_SMTPD_MSG_OPENED: status 0 without a descriptor or "
		    "with a bad queue id");
	if ((s = queue_find(reqid, SS_WAIT_OPEN)) == NULL) {
		/* the session ended while waiting: give the file back */
		if (m->fd >= 0)
			close(m->fd);
		if (status == 0)
			queue_send_abort(qid);
		return;
	}
	queue_unwait(s);
	if (status != 0) {
		if (m->fd >= 0)
			close(m->fd);
		log_warnx("queued cannot create a spool file: %s", strerror((int)status));
		session_reject(s, REJ_QUEUE_ERROR, "DATA", NULL,
		    "451 4.3.0 Queue unavailable, try again later");
		session_txn_reset(s);
		session_resume(s);
		return;
	}
	strlcpy(s->qid, qid, sizeof(s->qid));
	s->qgen = smtpd.qgen;
	data_start(s, m->fd);
}

/* queue_accepted - the message is durable: 250, count, one log line */
static void
queue_accepted(struct session *s)
{
	session_reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
	stats_add(&stats->messages_accepted, 1);
	log_info("%s: client=[%s] helo=%s from=<%s> size=%" PRIu64 " nrcpt=%zu",
	    s->qid, s->ip, s->helo, s->sender, s->msgsize, s->nrcpt);
	/* a client that delivers mail is not the one the limit is for */
	s->errors = 0;
}

/* queue_committed - IPC_SMTPD_MSG_COMMITTED: the end-of-data reply */
static void
queue_committed(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct session *s;
	uint32_t reqid, status;
	const char *qid;

	reqid = msg_get_u32(&m->r);
	status = msg_get_u32(&m->r);
	qid = msg_get_str(&m->r);
	msg_end(&m->r, "IPC_SMTPD_MSG_COMMITTED");
	if (m->fd >= 0)
		close(m->fd);
	if ((s = queue_find(reqid, SS_WAIT_COMMIT)) == NULL) {
		if (status == 0)
			log_warnx("%s: queued, but the client left before the reply "
			    "(it may send the message again)", qid);
		return;
	}
	queue_unwait(s);
	if (status == 0)
		queue_accepted(s);
	else {
		log_warnx("%s: queued cannot commit the message: %s", s->qid,
		    strerror((int)status));
		if (status == ENOSPC)
			session_reject(s, REJ_QUEUE_ERROR, "END-OF-MESSAGE", NULL,
			    "452 4.3.1 Insufficient system storage");
		else
			session_reject(s, REJ_QUEUE_ERROR, "END-OF-MESSAGE", NULL,
			    "451 4.3.0 Error: queue file write error");
	}
	/* committed or failed, queued owns the file now: no abort */
	s->qid[0] = '\0';
	session_txn_reset(s);
	session_resume(s);
}
