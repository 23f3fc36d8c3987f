/*
 * queued.h - the queue manager's internal interfaces (postern-queued).
 *
 * queued owns the spool (common/spool.h) and its LMDB index. Its files:
 *   queued.c          start-up, recovery, the control link
 *   queued_index.c    the LMDB index: records, every mdb_* call wrapped
 *   queued_spool.c    tmp/ and msg/ files, fsync, rename, directory scans
 *   queued_commit.c   receiving: MSG_OPEN, group commit, MSG_ABORT
 *   queued_sched.c    the in-memory schedule, jobs, results, backoff
 *   queued_link.c     links to smtpd/httpd/delivery, per-role tables
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
struct MDB_txn;

/* Index records carry this version first; bump on any layout change. */
#define QUEUED_RECORD_VERSION 1
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

struct qjob;

struct qrcpt {
	uint32_t index;         /* position in the envelope, key suffix */
	uint32_t state;         /* enum rcpt_state */
	uint32_t attempts;      /* attempts with a result so far */
	int64_t next_attempt;   /* unix seconds */
	char *address;
	char *last_dsn;         /* "" before the first attempt */
	char *last_reply;
	struct qjob *job;       /* the job carrying it, NULL if not in flight */
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
	uint32_t nrcpt;
	struct qrcpt *rcpt;     /* nrcpt entries, rcpt[i].index == i */
	int64_t due;            /* key in the due tree; -1 when not in it */
	unsigned njobs;         /* jobs in flight */
	int broken;             /* unreadable record: kept aside, never sent */
	int seen;               /* recovery: msg/ID exists */
};

struct qlink;

struct qjob {
	TAILQ_ENTRY(qjob) entry;        /* on link->jobs */
	uint64_t id;
	struct qmsg *msg;
	struct qlink *link;
	uint32_t nrcpt;
	uint32_t *rcpt;                 /* indexes into msg->rcpt[] */
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
	char name[32];                  /* "smtpd[0]" */
	struct ipc_chan *chan;
	struct qtxn_list txns;          /* receivers: open transactions */
	struct qjob_list jobs;          /* delivery: jobs in flight */
	unsigned njobs;
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
void qidx_open(const char *dir);
void qidx_close(void);
int qidx_begin(struct MDB_txn **txn);
int qidx_commit(struct MDB_txn *txn);
void qidx_abort(struct MDB_txn *txn);
int qidx_put_msg(struct MDB_txn *txn, const struct qmsg *m);
int qidx_put_rcpt(struct MDB_txn *txn, const struct qmsg *m, const struct qrcpt *r);
int qidx_del_msg(struct MDB_txn *txn, const char *id);
int qidx_errno(int rc);
/* qidx_load - call fn for every message in the index, with its
 * recipients (m->broken set when a record does not decode); remove
 * recipient records that have no message record. fn owns m. */
void qidx_load(void (*fn)(struct qmsg *m, void *arg), void *arg);

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
void qsched_result(struct ipc_chan *c, struct ipc_msg *m, void *arg);
void qsched_link_closed(struct qlink *l);
/* qsched_first, qsched_next - walk every message (recovery) */
struct qmsg *qsched_first(void);
struct qmsg *qsched_next(struct qmsg *m);
/* qsched_drop - forget m (files and records are the caller's business) */
void qsched_drop(struct qmsg *m);
/* qsched_counts - messages and not-final recipients in the queue */
void qsched_counts(uint64_t *msgs, uint64_t *rcpts);

/* queued_link.c - links to the other children */
void qlink_control_new(struct ipc_chan *c, struct ipc_msg *m, void *arg);
struct qlink *qlink_pick_delivery(void);
unsigned qlink_count(enum proc_role role);
void qlink_flush_all(void);

#endif
