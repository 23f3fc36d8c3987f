/*
 * queued.c - postern-queued, the queue manager: start-up, recovery of the
 * queue after any stop (clean or SIGKILL), and the control link to the
 * master.
 *
 * Owns: the spool (tmp/, msg/, index/ under spool_dir) and its LMDB
 * index; nothing else opens them. Receivers (smtpd, httpd) get one
 * descriptor per message they write, delivery one per message it reads.
 *
 * Start-up: child_start(); raise the descriptor limit (one descriptor per
 * message being received); priv_drop() BEFORE the spool is touched so
 * every file and the LMDB environment belong to the unprivileged user
 * (the master made spool_dir theirs); create tmp/ msg/ index/ (0700);
 * open LMDB here, after the fork (LMDB caveat); recover; child_ready();
 * run the event loop.
 *
 * Recovery, at every start (a 250 was only ever given for a message
 * whose file is in msg/ AND whose records are in the index):
 *   - everything in tmp/ is removed: never acknowledged;
 *   - a msg/ file without a message record is removed: the crash came
 *     between its rename and the LMDB commit, never acknowledged;
 *   - a message record whose msg/ file is missing is logged and dropped;
 *   - a message whose recipients are all final is finished off;
 *   - a recipient whose hold was asked for while it was in delivery
 *     (QRCPT_F_HOLD: the result never came back) is held now;
 *   - every other recipient that is not final is scheduled: pending ones
 *     at once, deferred ones at their stored next attempt (held ones are
 *     kept but not scheduled).
 *
 * SECURITY: runs as conf->user (no privileges kept: it needs none once
 * the spool is the user's). Peers: the master (trusted: control), and the
 * links it hands over. Never opens a path named by a peer.
 * STANDARDS: none.
 */
#include "config.h"

#include <event2/event.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "privdrop.h"
#include "proc.h"
#include "queued.h"
#include "util.h"

struct queued_env qenv;

/* What recovery found, for its summary line. */
struct recovery {
	int64_t now;
	unsigned tmp_removed;
	unsigned orphan_files;
	unsigned missing_files;
	unsigned finished;
	unsigned broken;
};

/* ctl_stop - IPC_CHILD_STOP: everything acknowledged is durable, so stop
 * at once; commits already received are flushed and answered first */
static void
ctl_stop(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	uint32_t grace;

	grace = msg_get_u32(&m->r);
	msg_end(&m->r, "IPC_CHILD_STOP");
	log_info("stopping (grace %us not needed: the queue is durable)", grace);
	qcommit_flush_now();
	qsched_flush_removals();
	qlink_flush_all();
	qidx_close();
	exit(0);
}

static const struct ipc_handler control_table[] = {
	{ IPC_CHILD_STOP, ctl_stop },
	{ IPC_QUEUED_NEW_LINK, qlink_control_new },
	{ 0, NULL },
};

/* recover_hold - a hold asked for while r was in delivery applies now:
 * its result was lost with the process (the record is rewritten with
 * the next change of r; until then every start does the same) */
static void
recover_hold(struct qmsg *m, struct qrcpt *r)
{
	if (!(r->flags & QRCPT_F_HOLD))
		return;
	r->flags &= ~QRCPT_F_HOLD;
	if (r->state != RCPT_PENDING && r->state != RCPT_DEFERRED)
		return;
	r->state = RCPT_HELD;
	qevent("held", m, r, NULL, 1);
}

/* recover_msg - qidx_load callback: take one indexed message */
static void
recover_msg(struct qmsg *m, void *arg)
{
	struct recovery *rec = arg;
	uint32_t i;

	for (i = 0; i < m->nrcpt && !m->broken; i++) {
		recover_hold(m, &m->rcpt[i]);
		if (m->rcpt[i].state == RCPT_PENDING)
			m->rcpt[i].next_attempt = rec->now;
	}
	if (m->broken)
		rec->broken++;
	qsched_add(m);
}

/* recover_file - qspool_scan_msg callback: check one msg/ file */
static void
recover_file(const char *name, void *arg)
{
	struct recovery *rec = arg;
	struct qmsg *m;

	if (!queue_id_valid(name)) {
		log_warnx("%s/%s: not a queue file, left alone", SPOOL_MSG, name);
		return;
	}
	if ((m = qmsg_find(name)) != NULL) {
		m->seen = 1;
		return;
	}
	log_info("%s: no index record (never acknowledged), removed", name);
	qspool_msg_unlink(name);
	rec->orphan_files++;
}

/* msg_all_final - 1 if no recipient of a readable m is waiting */
static int
msg_all_final(const struct qmsg *m)
{
	uint32_t i;

	if (m->broken)
		return 0;
	for (i = 0; i < m->nrcpt; i++)
		if (!RCPT_IS_FINAL(m->rcpt[i].state))
			return 0;
	return 1;
}

/* recover_prune - drop messages without a file and finished ones, in
 * one index transaction */
static void
recover_prune(struct recovery *rec)
{
	struct qmsg *m, *next;
	struct MDB_txn *txn;
	int rc;

	if ((rc = qidx_begin(&txn)) != 0)
		fatalx("cannot update the queue index during recovery");
	for (m = qsched_first(); m != NULL && rc == 0; m = qsched_next(m))
		if (!m->seen || msg_all_final(m))
			rc = qidx_del_msg(txn, m->id);
	if (rc != 0 || (rc = qidx_commit(txn)) != 0)
		fatalx("cannot update the queue index during recovery");
	for (m = qsched_first(); m != NULL; m = next) {
		next = qsched_next(m);
		if (!m->seen) {
			log_warnx("%s: index record without its %s/ file, dropped",
			    m->id, SPOOL_MSG);
			rec->missing_files++;
		} else if (msg_all_final(m)) {
			if (qretain_keep(m->id) == 0)
				log_info("%s: retained", m->id);
			else {
				qspool_msg_unlink(m->id);
				log_info("%s: removed", m->id);
			}
			rec->finished++;
		} else
			continue;
		qsched_drop(m);
	}
}

/* recover - rebuild the schedule from the index and the spool */
static void
recover(void)
{
	struct recovery rec = { .now = time(NULL) };
	uint64_t msgs, rcpts;

	rec.tmp_removed = qspool_clean_tmp();
	qidx_load(recover_msg, &rec);
	qspool_scan_msg(recover_file, &rec);
	recover_prune(&rec);
	qsched_counts(&msgs, &rcpts);
	if (rec.tmp_removed || rec.orphan_files || rec.missing_files ||
	    rec.finished || rec.broken)
		log_info("recovery: removed %u unfinished and %u unindexed files, "
		    "dropped %u records without a file, finished %u, kept %u "
		    "unreadable aside", rec.tmp_removed, rec.orphan_files,
		    rec.missing_files, rec.finished, rec.broken);
	log_info("recovered %llu messages, %llu recipients",
	    (unsigned long long)msgs, (unsigned long long)rcpts);
}

/* queued_main - start-up, recovery, then the event loop */
int
queued_main(int argc, char **argv)
{
	child_start(&qenv.ch, PROC_QUEUED, argc, argv, control_table);
	qenv.conf = qenv.ch.conf;
	qenv.base = qenv.ch.base;
	raise_nofile(); /* every message being received holds one */
	priv_drop(qenv.conf->user);
	umask(077);
	qspool_init(qenv.conf->spool_dir);
	qretain_init();
	qidx_open(qspool_index_dir(), qenv.conf->queue.index_size);
	qsched_init();
	qwatchdog_init();
	qcommit_init();
	recover();
	qspace_init();
	qcontrol_init();
	child_ready(&qenv.ch);
	qsched_kick();
	event_base_dispatch(qenv.base);
	return 0;
}

/* main - postern-queued */
int
main(int argc, char **argv)
{
	return queued_main(argc, argv);
}
