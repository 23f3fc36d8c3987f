/*
 * queued_commit.c - receiving messages from smtpd and httpd: a spool
 * file per transaction (IPC_QUEUED_MSG_OPEN), the group commit that makes
 * file and envelope durable before anything is acknowledged
 * (IPC_QUEUED_MSG_COMMIT), and abandoned transactions (IPC_QUEUED_MSG_ABORT,
 * or the link closing).
 *
 * Owns: the open transactions of every receiving link (struct qtxn) and
 * the commit batch.
 *
 * Crash safety (the durability contract in ARCHITECTURE.md). Commits
 * that arrive in the same event-loop round are flushed together by
 * flush_batch(), which runs from a deferred event after the round's
 * handlers (and after a scheduler run still pending in the round, so the
 * jobs it starts do not wait for these syncs). The state on disk after
 * each step, and what a crash at that instant leaves:
 *   0. receiving   tmp/ID, partly written, no index record. Crash: the
 *                  next start unlinks everything in tmp/; nothing was
 *                  acknowledged, the client gets no 250 and retries.
 *   1. fsync(tmp/ID) of every file: the data is on disk, still only under
 *                  tmp/. Crash: as in 0.
 *   2. rename(tmp/ID, msg/ID) of every file: the name may be old or new
 *                  on disk until the directory is synced. Crash: the file
 *                  is in tmp/ (unlinked) or in msg/ without an index
 *                  record (unlinked): nothing acknowledged is lost.
 *   3. fsync(msg/) once for the batch: every msg/ID is durable, none has
 *                  an index record yet. Crash: as in 2.
 *   4. ONE LMDB write transaction with each message record and its
 *                  recipient records; mdb_txn_commit() (default flags: it
 *                  fsyncs the data and then the meta page). A crash
 *                  before the meta page is durable leaves the old index:
 *                  as in 3. A crash after it leaves records and files: the
 *                  message is delivered after the restart even though the
 *                  client saw no 250 (a possible duplicate, never a loss).
 *   5. MSG_COMMITTED status 0 to each receiver: only now may it say 250.
 *                  Records and file are durable, so a crash at any later
 *                  instant loses nothing: recovery reloads the schedule.
 * With queue.group_commit = no, every commit is flushed on its own as
 * it arrives (a batch of one: one fsync of msg/ and one LMDB commit per
 * message), which is what the benchmark compares against.
 * Before step 1, each file must hold exactly the number of bytes its
 * receiver says it wrote (else EIO: a truncated message is never queued).
 * A failure at step 1 or 2 fails that message only; at step 3 or 4 it
 * fails the whole batch: every file made so far is unlinked and each
 * receiver gets the errno (ENOSPC for a full disk or a full LMDB map),
 * so it answers 4xx and nothing is acknowledged.
 *
 * SECURITY: runs unprivileged; the receivers are untrusted-input
 * processes (their links are untrusted channels, queued_link.c): a
 * malformed frame, a descriptor sent to us, or a commit for an id that is
 * not open on the same link is a protocol violation that closes that
 * link only (ipc_chan_reject), never queued itself; a receiver never
 * names a path: it only ever gets a descriptor.
 * STANDARDS: RFC 5321 4.1.1.4 (a 250 after DATA means the message is
 * taken responsibility for).
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "queued.h"
#include "util.h"

/* Where a failing message's file is when it is given up. */
enum txn_stage { STAGE_TMP, STAGE_MSG };

static struct qtxn_list batch = TAILQ_HEAD_INITIALIZER(batch);
static struct event *flush_ev;

static void flush_batch(evutil_socket_t, short, void *);

/* txn_find - the open transaction for id on link l, or NULL */
static struct qtxn *
txn_find(struct qlink *l, const char *id)
{
	struct qtxn *t;

	TAILQ_FOREACH(t, &l->txns, entry)
		if (strcmp(t->id, id) == 0)
			return t;
	return NULL;
}

/* qcommit_id_busy - 1 if id belongs to a commit being flushed */
int
qcommit_id_busy(const char *id)
{
	struct qtxn *t;

	TAILQ_FOREACH(t, &batch, batch)
		if (strcmp(t->id, id) == 0)
			return 1;
	return 0;
}

/* reply_committed - IPC_SMTPD_MSG_COMMITTED to t's link, if it is alive */
static void
reply_committed(struct qtxn *t, int status)
{
	struct msgbuf b;

	if (t->link == NULL)
		return;
	msgbuf_init(&b);
	msg_add_u32(&b, t->reqid);
	msg_add_u32(&b, (uint32_t)status);
	msg_add_str(&b, t->id);
	ipc_send(t->link->chan, IPC_SMTPD_MSG_COMMITTED, &b, -1);
	msgbuf_free(&b);
}

/* txn_free - detach t from its link and the batch, close, free */
static void
txn_free(struct qtxn *t)
{
	if (t->link != NULL)
		TAILQ_REMOVE(&t->link->txns, t, entry);
	if (t->committing)
		TAILQ_REMOVE(&batch, t, batch);
	if (t->fd != -1)
		close(t->fd);
	qmsg_free(&t->msg);
	free(t);
}

/* txn_fail - give t up: remove its file, answer status err (if any) */
static void
txn_fail(struct qtxn *t, enum txn_stage stage, int err)
{
	if (stage == STAGE_MSG)
		qspool_msg_unlink(t->id);
	else
		qspool_tmp_unlink(t->id);
	if (err != 0) {
		log_warnx("%s: not queued: %s", t->id, strerror(err));
		reply_committed(t, err);
	}
	txn_free(t);
}

/* frame_ok - a receiver's frame is whole and carries no descriptor; else
 * its link is closed as a violation and 0 returned (return at once) */
static int
frame_ok(struct ipc_chan *c, struct ipc_msg *m, const char *what)
{
	if (m->fd != -1) {
		close(m->fd);
		m->fd = -1;
		ipc_chan_reject(c, "%s with a descriptor", what);
		return 0;
	}
	if (!msg_ok(&m->r)) {
		ipc_chan_reject(c, "malformed %s", what);
		return 0;
	}
	return 1;
}

/* qcommit_open - IPC_QUEUED_MSG_OPEN: a spool file for a new message */
void
qcommit_open(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	char id[QUEUE_ID_LEN + 1] = "";
	struct qlink *l = arg;
	struct qtxn *t;
	struct msgbuf b;
	uint32_t reqid;
	int err, fd = -1, dupfd = -1;

	reqid = msg_get_u32(&m->r);
	if (!frame_ok(c, m, "IPC_QUEUED_MSG_OPEN"))
		return;
	if ((err = qspool_tmp_create(id, &fd)) == 0 &&
	    (dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		err = errno;
		log_warn("%s: dup", id);
		close(fd);
		qspool_tmp_unlink(id);
	}
	if (err == 0) {
		t = xcalloc(1, sizeof(*t));
		strlcpy(t->id, id, sizeof(t->id));
		t->fd = fd;
		t->link = l;
		TAILQ_INSERT_TAIL(&l->txns, t, entry);
		log_debug("%s: opened for %s", id, l->name);
	} else
		id[0] = '\0';
	msgbuf_init(&b);
	msg_add_u32(&b, reqid);
	msg_add_u32(&b, (uint32_t)err);
	msg_add_str(&b, id);
	ipc_send(c, IPC_SMTPD_MSG_OPENED, &b, dupfd);
	msgbuf_free(&b);
}

/* read_envelope - the envelope of a MSG_COMMIT as a new struct qmsg */
static struct qmsg *
read_envelope(struct msgreader *r, const char *id)
{
	const char *sender, *client, *helo, *authuser;
	struct qmsg *m;
	uint64_t size;
	uint32_t nrcpt, i;

	sender = msg_get_str(r);
	size = msg_get_u64(r);
	client = msg_get_str(r);
	helo = msg_get_str(r);
	authuser = msg_get_str(r);
	nrcpt = msg_get_u32(r);
	/* a recipient takes at least 5 bytes: a bigger count is malformed
	 * and msg_end() will say so; do not allocate for it */
	if (nrcpt > (r->len - r->off) / 5)
		nrcpt = (uint32_t)((r->len - r->off) / 5) + 1;
	m = qmsg_new(id, nrcpt);
	m->sender = xstrdup(sender);
	m->size = size;
	m->client = xstrdup(client);
	m->helo = xstrdup(helo);
	m->authuser = xstrdup(authuser);
	m->arrival_ms = now_real_ms();
	m->arrival = (int64_t)(m->arrival_ms / 1000);
	for (i = 0; i < nrcpt; i++) {
		m->rcpt[i].address = xstrdup(msg_get_str(r));
		m->rcpt[i].state = RCPT_PENDING;
		m->rcpt[i].next_attempt = m->arrival;
		m->rcpt[i].last_dsn = xstrdup("");
		m->rcpt[i].last_reply = xstrdup("");
	}
	m->envflags = msg_get_u32(r) & (ENV_F_DECLARED | ENV_F_SMTPUTF8 |
	    ENV_F_8BITMIME);
	return m;
}

/* check_size - the file must hold exactly the bytes the receiver says it
 * wrote: anything else is a truncated or garbled message, never queued */
static int
check_size(struct qtxn *t)
{
	struct stat st;

	if (fstat(t->fd, &st) == -1) {
		log_warn("%s: fstat", t->id);
		return errno;
	}
	if ((uint64_t)st.st_size != t->msg->size) {
		log_warnx("%s: receiver %s said %llu bytes, the file has %lld",
		    t->id, t->link->name, (unsigned long long)t->msg->size,
		    (long long)st.st_size);
		return EIO;
	}
	return 0;
}

/* qcommit_commit - IPC_QUEUED_MSG_COMMIT: join the next group commit */
void
qcommit_commit(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct qlink *l = arg;
	struct qmsg *env;
	struct qtxn *t;
	const char *id;
	uint32_t reqid;
	int err;

	reqid = msg_get_u32(&m->r);
	id = msg_get_str(&m->r);
	env = read_envelope(&m->r, id);
	if (!frame_ok(c, m, "IPC_QUEUED_MSG_COMMIT")) {
		qmsg_free(&env);
		return;
	}
	if ((t = txn_find(l, id)) == NULL || t->committing) {
		qmsg_free(&env);
		ipc_chan_reject(c, "commit of a message that is not open on this link");
		return;
	}
	t->reqid = reqid;
	t->msg = env;
	if (env->nrcpt == 0) {
		log_warnx("%s: commit without recipients from %s", id, l->name);
		txn_fail(t, STAGE_TMP, EINVAL);
		return;
	}
	if ((err = check_size(t)) != 0) {
		txn_fail(t, STAGE_TMP, err);
		return;
	}
	t->committing = 1;
	TAILQ_INSERT_TAIL(&batch, t, batch);
	if (qenv.conf->queue.group_commit)
		event_active(flush_ev, EV_TIMEOUT, 0);
	else
		flush_batch(-1, 0, NULL);       /* a batch of one: its own syncs */
}

/* qcommit_abort - IPC_QUEUED_MSG_ABORT: the receiver gave the message up */
void
qcommit_abort(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct qlink *l = arg;
	struct qtxn *t;
	const char *id;

	id = msg_get_str(&m->r);
	if (!frame_ok(c, m, "IPC_QUEUED_MSG_ABORT"))
		return;
	if ((t = txn_find(l, id)) == NULL || t->committing) {
		log_warnx("%s: abort of %s, which is not open, ignored", l->name, id);
		return;
	}
	log_debug("%s: aborted by %s", id, l->name);
	txn_fail(t, STAGE_TMP, 0);
}

/* qcommit_link_closed - a receiver went away: its open messages were
 * never acknowledged, remove them; commits under way lose their reply */
void
qcommit_link_closed(struct qlink *l)
{
	struct qtxn *t;
	unsigned n = 0;

	while ((t = TAILQ_FIRST(&l->txns)) != NULL) {
		TAILQ_REMOVE(&l->txns, t, entry);
		t->link = NULL;
		if (!t->committing) {
			txn_fail(t, STAGE_TMP, 0);
			n++;
		}
	}
	if (n > 0)
		log_warnx("%s went away: %u unfinished message(s) removed", l->name, n);
}

/* batch_files - steps 1 and 2: fsync and rename each file */
static void
batch_files(void)
{
	struct qtxn *t, *tn;
	int err;

	TAILQ_FOREACH_SAFE(t, &batch, batch, tn) {
		if (t->link == NULL) {
			/* the receiver is gone: nobody to acknowledge */
			txn_fail(t, STAGE_TMP, 0);
			continue;
		}
		if ((err = qspool_sync_fd(t->fd)) != 0 ||
		    (err = qspool_rename(t->id)) != 0)
			txn_fail(t, STAGE_TMP, err);
	}
}

/* batch_fail - steps 3 and 4 failed: give up every message of the batch */
static void
batch_fail(int err)
{
	struct qtxn *t;

	while ((t = TAILQ_FIRST(&batch)) != NULL)
		txn_fail(t, STAGE_MSG, err);
}

/* batch_index - step 4: one LMDB transaction for the whole batch */
static int
batch_index(void)
{
	struct MDB_txn *txn;
	struct qtxn *t;
	uint32_t i;
	int rc;

	if ((rc = qidx_begin(&txn)) != 0)
		return rc;
	TAILQ_FOREACH(t, &batch, batch) {
		rc = qidx_put_msg(txn, t->msg);
		for (i = 0; rc == 0 && i < t->msg->nrcpt; i++)
			rc = qidx_put_rcpt(txn, t->msg, &t->msg->rcpt[i]);
		if (rc != 0) {
			qidx_abort(txn);
			return rc;
		}
	}
	return qidx_commit(txn);
}

/* batch_done - step 5: schedule each message and acknowledge it */
static void
batch_done(void)
{
	struct qtxn *t;
	struct qmsg *m;

	while ((t = TAILQ_FIRST(&batch)) != NULL) {
		m = t->msg;
		t->msg = NULL;
		log_info("%s: from=<%s> size=%llu nrcpt=%u (queue active)", m->id,
		    m->sender, (unsigned long long)m->size, m->nrcpt);
		qsched_add(m);
		qevent("queued", m, NULL, NULL, 0);
		reply_committed(t, 0);
		txn_free(t);
	}
	qsched_kick();
}

/* batch_refuse - the index is over its high-water mark: every message
 * of the batch is given up from tmp/ with ENOSPC (queued_space.c) */
static void
batch_refuse(int err)
{
	struct qtxn *t;

	while ((t = TAILQ_FIRST(&batch)) != NULL)
		txn_fail(t, STAGE_TMP, err);
}

/* flush_batch - the group commit (steps in the header comment) */
static void
flush_batch(evutil_socket_t fd, short what, void *arg)
{
	int err, rc;

	if (TAILQ_EMPTY(&batch))
		return;
	if ((err = qspace_accept()) != 0) {
		batch_refuse(err);
		return;
	}
	batch_files();
	if (TAILQ_EMPTY(&batch))
		return;
	if ((err = qspool_sync_msgdir()) != 0) {
		batch_fail(err);
		return;
	}
	if ((rc = batch_index()) != 0) {
		batch_fail(qidx_errno(rc));
		return;
	}
	batch_done();
}

/* qcommit_flush_now - at a stop: flush a batch still waiting for its
 * event, so what was received is acknowledged rather than lost to a 451 */
void
qcommit_flush_now(void)
{
	if (!TAILQ_EMPTY(&batch))
		flush_batch(-1, 0, NULL);
}

/* batch_event - the commit batch's event: jobs freed in this round go
 * out before its syncs (qsched_run_pending) */
static void
batch_event(evutil_socket_t fd, short what, void *arg)
{
	qsched_run_pending();
	flush_batch(fd, what, arg);
}

/* qcommit_init - the deferred event that flushes the batch */
void
qcommit_init(void)
{
	flush_ev = event_new(qenv.base, -1, 0, batch_event, NULL);
	if (flush_ev == NULL)
		fatalx("cannot create the commit event");
}
