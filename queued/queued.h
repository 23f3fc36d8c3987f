/*
 * queued.h - the queue manager's internal interfaces (postern-queued).
 *
 * queued owns the spool (common/spool.h) and its LMDB index. Its files:
 *   queued.c          start-up, recovery, the control link
 *   queued_index.c    the LMDB index: records, every mdb_* call wrapped
 *   queued_spool.c    tmp/ and msg/ files, fsync, rename, directory scans
 *   queued_commit.c   receiving: MSG_OPEN, group commit, MSG_ABORT
 *   queued_sched.c    the in-memory schedule, jobs, results, backoff
 *   queued_dest.c     destinations: concurrency, rate, whole backoff
 *   queued_dstat.c    destinations: the last hour's outcomes, last error
 *   queued_browse.c   the console's views: search, destinations
 *   queued_ops.c      hold/release/delete/flush/requeue (control)
 *   queued_dsn.c      delivery status notifications (RFC 3464)
 *   queued_event.c    state-change log lines and httpd events
 *   queued_retain.c   retention of finished message files
 *   queued_link.c     links to smtpd/httpd/delivery, per-role tables
 *   queued_watchdog.c every delivery job bounded by queue.job_timeout
 *   queued_space.c    room in the index map: high-water mark, growth
 *
 * The in-memory queue mirrors the index: one struct qmsg per message
 * record and one struct qrcpt per recipient record. Memory is rebuilt
 * from the index (and checked against msg/) at every start.
 */
#ifndef POSTERN_QUEUED_H
#define POSTERN_QUEUED_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include "proc.h"
#include "spool.h"

struct ipc_chan;
struct ipc_msg;
struct msgbuf;
struct MDB_txn;

/* Index records carry this version first; bump on any layout change.
 * Version 2 added the recipient flags, version 3 the envelope flags of
 * the message record; version 1 and 2 records still load. */
#define QUEUED_RECORD_VERSION 3
/* A message with more due recipients than this goes out in several jobs. */
#define QUEUED_JOB_MAX_RCPT 1000
/* Stored SMTP reply texts are cut to this many bytes. */
#define QUEUED_REPLY_MAX 1000

/* Recipient states, as stored in the index (never renumber). */
enum rcpt_state {
	RCPT_PENDING = 0,       /* never tried: due at once */
	RCPT_DEFERRED = 1,      /* failed temporarily: due at next_attempt */
	RCPT_DELIVERED = 2,     /* final */
	RCPT_BOUNCED = 3,       /* final */
	RCPT_HELD = 4,          /* kept, not scheduled (operator hold) */
};

#define RCPT_IS_FINAL(s) ((s) == RCPT_DELIVERED || (s) == RCPT_BOUNCED)

/* Recipient flags, stored (record version 2). */
#define QRCPT_F_WARNED 0x1u     /* the delay warning DSN was sent */
#define QRCPT_F_HOLD 0x2u       /* a hold asked for while in flight: HELD
                                   when the result comes back, or at the
                                   next start if it never did */

struct qjob;
struct qdest;

struct qrcpt {
	uint32_t index;         /* position in the envelope, key suffix */
	uint32_t state;         /* enum rcpt_state */
	uint32_t attempts;      /* attempts with a result so far */
	int64_t next_attempt;   /* unix seconds */
	char *address;
	char *last_dsn;         /* "" before the first attempt */
	char *last_reply;
	uint32_t flags;         /* QRCPT_F_* */
	struct qjob *job;       /* the job carrying it, NULL if not in flight */
	/* in memory only: */
	struct qdest *dest;     /* its destination (a reference) */
	int64_t wait_until;     /* its destination is down or rate-limited */
	int parked;             /* waits for a slot of its destination */
};

struct qmsg {
	RB_ENTRY(qmsg) by_id;
	RB_ENTRY(qmsg) by_due;
	char id[QUEUE_ID_LEN + 1];
	char *sender;
	char *client;
	char *helo;
	char *authuser;
	int64_t arrival;        /* unix seconds, as stored */
	uint64_t arrival_ms;    /* for delay=; arrival * 1000 after recovery */
	uint64_t size;
	uint32_t envflags;      /* ENV_F_* (ipc_types.h): MAIL parameters */
	uint32_t nrcpt;
	struct qrcpt *rcpt;     /* nrcpt entries, rcpt[i].index == i */
	int64_t due;            /* key in the due tree; -1 when not in it */
	unsigned njobs;         /* jobs in flight */
	int broken;             /* unreadable record: kept aside, never sent */
	int deleting;           /* delete once the jobs in flight return */
	int removing;           /* 1 "removed", 2 "deleted": in the batch */
	TAILQ_ENTRY(qmsg) rm_entry;     /* in the removal batch */
	int seen;               /* recovery: msg/ID exists */
	int gauge_state;        /* enum stats_queue_state + 1 it is counted
	                           in (queued_sched.c); 0 = none yet */
};

struct qlink;

struct qjob {
	TAILQ_ENTRY(qjob) entry;        /* on link->jobs */
	uint64_t id;
	struct qmsg *msg;
	struct qlink *link;
	struct qdest *dest;             /* every recipient's destination */
	uint32_t nrcpt;
	uint32_t *rcpt;                 /* indexes into msg->rcpt[] */
	int64_t sent;                   /* when it went to the link */
};
TAILQ_HEAD(qjob_list, qjob);

/* A message being received on a link: MSG_OPEN until COMMIT/ABORT. */
struct qtxn {
	TAILQ_ENTRY(qtxn) entry;        /* on link->txns */
	TAILQ_ENTRY(qtxn) batch;        /* in the group-commit batch */
	struct qlink *link;             /* NULL once the link went away */
	char id[QUEUE_ID_LEN + 1];
	int fd;                         /* our descriptor of tmp/ID */
	int committing;                 /* in the batch */
	uint32_t reqid;                 /* of the COMMIT, for the reply */
	struct qmsg *msg;               /* envelope, built at COMMIT */
};
TAILQ_HEAD(qtxn_list, qtxn);

struct qlink {
	TAILQ_ENTRY(qlink) entry;
	enum proc_role role;
	uint32_t index;
	uint32_t pid;                   /* of the peer, from the master */
	char name[32];                  /* "smtpd[0]" */
	struct ipc_chan *chan;
	struct qtxn_list txns;          /* receivers: open transactions */
	struct qjob_list jobs;          /* delivery: jobs in flight */
	unsigned njobs;
	int replacing;                  /* the master was asked to replace
	                                   this process: no new jobs */
};

/* Process-wide state, set up once by queued_main(). */
struct queued_env {
	struct child ch;
	struct conf *conf;
	struct event_base *base;
};
extern struct queued_env qenv;

/* queued.c */
int queued_main(int argc, char **argv);

/* queued_index.c - the LMDB index ("msg" and "rcpt" named databases).
 * Functions returning int return 0 or an LMDB/errno code, already
 * logged; qidx_errno() turns one into an errno for a reply. */
void qidx_open(const char *dir, size_t mapsize);
void qidx_close(void);
int qidx_begin(struct MDB_txn **txn);
int qidx_commit(struct MDB_txn *txn);
void qidx_abort(struct MDB_txn *txn);
int qidx_put_msg(struct MDB_txn *txn, const struct qmsg *m);
int qidx_put_rcpt(struct MDB_txn *txn, const struct qmsg *m, const struct qrcpt *r);
int qidx_del_msg(struct MDB_txn *txn, const char *id);
int qidx_errno(int rc);
void qidx_map_info(uint64_t *mapsize, uint64_t *written, uint64_t *psize);
int64_t qidx_free_pages(void);
int qidx_set_mapsize(size_t size);
/* qidx_load - call fn for every message in the index, with its
 * recipients (m->broken set when a record does not decode); remove
 * recipient records that have no message record. fn owns m. */
void qidx_load(void (*fn)(struct qmsg *m, void *arg), void *arg);

/* queued_space.c - the index map's high-water mark (new mail refused
 * above it: ENOSPC) and its growth; gauges for /metrics */
void qspace_init(void);
int qspace_accept(void);

/* queued_spool.c - files under spool_dir. int returns: 0 or an errno. */
void qspool_init(const char *spool_dir);
const char *qspool_index_dir(void);
int qspool_tmp_create(char *id, int *fd);
void qspool_tmp_unlink(const char *id);
int qspool_sync_fd(int fd);
int qspool_rename(const char *id);
int qspool_sync_msgdir(void);
void qspool_msg_unlink(const char *id);
int qspool_msg_open(const char *id, int *fd);
unsigned qspool_clean_tmp(void);
void qspool_scan_msg(void (*fn)(const char *name, void *arg), void *arg);
int qspool_subdir(const char *name);
int qspool_msg_dirfd(void);

/* queued_commit.c - receiving messages (smtpd/httpd links) */
void qcommit_init(void);
void qcommit_open(struct ipc_chan *c, struct ipc_msg *m, void *arg);
void qcommit_commit(struct ipc_chan *c, struct ipc_msg *m, void *arg);
void qcommit_abort(struct ipc_chan *c, struct ipc_msg *m, void *arg);
void qcommit_link_closed(struct qlink *l);
void qcommit_flush_now(void);
int qcommit_id_busy(const char *id);

/* queued_sched.c - the schedule */
void qsched_init(void);
struct qmsg *qmsg_new(const char *id, uint32_t nrcpt);
void qmsg_free(struct qmsg **mp);
struct qmsg *qmsg_find(const char *id);
void qsched_add(struct qmsg *m);
void qsched_kick(void);
/* qsched_run_pending - a pending kick runs now (before a round's syncs) */
void qsched_run_pending(void);
void qsched_result(struct ipc_chan *c, struct ipc_msg *m, void *arg);
void qsched_link_closed(struct qlink *l);
/* qsched_job_overdue - defer the recipients of a job left unanswered */
void qsched_job_overdue(struct qjob *j);

/* queued_watchdog.c - every delivery job bounded in time */
void qwatchdog_init(void);
/* qsched_first, qsched_next - walk every message (recovery) */
struct qmsg *qsched_first(void);
struct qmsg *qsched_next(struct qmsg *m);
/* qsched_drop - forget m (files and records are the caller's business) */
void qsched_drop(struct qmsg *m);
/* qsched_counts - messages and not-final recipients in the queue */
void qsched_counts(uint64_t *msgs, uint64_t *rcpts);

/* ---- for queued_control.c (Q2): queue control, in queued_ops.c ----
 * Every function takes a queue id, acts at once (in-memory and in the
 * index, one LMDB transaction), logs one line per changed recipient or
 * message, sends the matching event, kicks the scheduler, and returns
 * 0, ENOENT (no such message) or an errno (index write failed: nothing
 * changed). Recipients in flight are handled when their result arrives:
 * a hold or delete requested meanwhile applies then (a hold is stored at
 * once, QRCPT_F_HOLD, so it survives a crash before the result). */
/* sched_hold - every PENDING/DEFERRED recipient of id becomes HELD */
int sched_hold(const char *id);
/* sched_release - every HELD recipient of id becomes due now (PENDING if
 * never tried, else DEFERRED with next_attempt = now) */
int sched_release(const char *id);
/* sched_delete - remove message id: records, file, no DSN ("deleted") */
int sched_delete(const char *id);
/* sched_flush - id's DEFERRED recipients due now; id NULL: every message,
 * and every destination marked down is up again */
int sched_flush(const char *id);
/* sched_requeue - every not-final recipient of id (HELD included) back to
 * PENDING: attempts 0, last reply cleared, due now */
int sched_requeue(const char *id);
/* sched_flush_dest - the DEFERRED recipients of destination key due
 * now, and the destination up again; ENOENT if queued knows no such
 * destination */
int sched_flush_dest(const char *key);
/* sched_foreach - call fn for every message in id order (list); fn must
 * not change the queue. Use qmsg_find() for one message (show) and
 * qspool_msg_open() to read its file. */
void sched_foreach(void (*fn)(const struct qmsg *m, void *arg), void *arg);
/* qrcpt_state_name - "pending", "deferred", "delivered", "bounced", "held" */
const char *qrcpt_state_name(uint32_t state);
/* queued_destination - the destination key of a recipient into buf:
 * route_destination() ("relay:host", "mx:domain", "maildir") */
const char *queued_destination(const char *address, const char *sender,
    char *buf, size_t len);

/* queued_ops.c - helpers of the control functions above */
/* qsched_persist - recipients of m changed outside a result: persist
 * the given recipients (one txn); 0 or an errno */
int qsched_persist(struct qmsg *m, const uint32_t *idx, uint32_t n);
/* qsched_reschedule - re-key m in the due tree after its recipients
 * changed, and kick the scheduler */
void qsched_reschedule(struct qmsg *m);
/* qsched_remove - every recipient of m is final or m is deleted: drop
 * its records, then its file (or keep it under retained/) */
void qsched_remove(struct qmsg *m, const char *why);
/* qsched_all_due - flush: every deferred recipient of every message due
 * now, every destination up */
void qsched_all_due(void);
/* qsched_flush_removals - run the removal batch now (at a stop) */
void qsched_flush_removals(void);

/* queued_dsn.c - delivery status notifications (RFC 3464) */
/* qdsn_send - one DSN to m's sender for recipients idx[0..n-1] with the
 * relays they were last tried at (or NULL); action "failed" or
 * "delayed". Queues it as a new message (same durability); never to <>.
 * 0, or an errno (logged). */
int qdsn_send(const struct qmsg *m, const uint32_t *idx, const char *const *relay,
    uint32_t n, const char *action);

/* queued_event.c - state-change log lines and events for httpd */
/* qevent - log "ID: to=<rcpt> status=EVENT ..." (r may be NULL for a
 * message-level event) and send IPC_HTTPD_EVENT to every httpd link */
void qevent(const char *event, const struct qmsg *m, const struct qrcpt *r,
    const char *relay, int log_it);

/* queued_browse.c - what the operator console asks of the queue */
struct qdwalk;
struct qdstat_row;
struct json_t;
/* qbrowse_outcome - count r's outcome d (enum stats_delivery) in its
 * destination's history */
void qbrowse_outcome(const struct qrcpt *r, int d, int64_t now);
/* qbrowse_tally - m's waiting recipients into the tally w */
void qbrowse_tally(struct qdwalk *w, const struct qmsg *m);
/* qbrowse_dest_json - one destination row, with its concurrency in use
 * and backoff (a new reference) */
struct json_t *qbrowse_dest_json(const struct qdstat_row *r);
/* qbrowse_match - m's id is text, or its sender or a recipient holds it
 * (ASCII case-insensitive) */
int qbrowse_match(const struct qmsg *m, const char *text);

/* queued_retain.c - retention of finished message files */
void qretain_init(void);
/* qretain_keep - move msg/ID to retained/ID (0), or -1: remove it */
int qretain_keep(const char *id);

/* queued_control.c (Q2) - the control socket (PROC_FD_LISTEN0):
 * posternctl queue commands and postern-sendmail submissions */
void qcontrol_init(void);

/* queued_link.c - links to the other children */
void qlink_control_new(struct ipc_chan *c, struct ipc_msg *m, void *arg);
struct qlink *qlink_pick_delivery(void);
unsigned qlink_count(enum proc_role role);
/* qlink_each - fn(link, arg) for every link of a role */
void qlink_each(enum proc_role role, void (*fn)(struct qlink *, void *),
    void *arg);
/* qlink_replace - ask the master to replace l's process (reason
 * IPC_LINK_VIOLATION or IPC_LINK_HUNG); once per link */
void qlink_replace(struct qlink *l, uint32_t reason);
void qlink_flush_all(void);
/* qlink_broadcast - send a frame to every link of a role, skipping links
 * with more than 'limit' bytes still queued; returns links sent to */
unsigned qlink_broadcast(enum proc_role role, uint16_t type,
    const struct msgbuf *b, size_t limit);

#endif
