/*
 * smtpd.h - postern-smtpd, the ESMTP listener: the process state, the
 * per-session state and the functions its files share.
 *
 * One process serves many sessions from one libevent loop; each session
 * is a bufferevent plus the small struct below (the 64 KiB data buffer
 * exists only while a message is being received).
 *
 * Files:
 *   smtpd.c          start-up, listeners, control link, graceful stop
 *   smtpd_session.c  session lifecycle, line reading, timeouts, replies
 *   smtpd_cmd.c      the command table and one function per verb
 *   smtpd_data.c     DATA: dot-unstuffing, checks, streaming into the
 *                    spool descriptor queued passed us
 *   smtpd_queue.c    the IPC with queued (open, commit, abort)
 */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "addr.h"
#include "spool.h"
#include "stats.h"

struct bufferevent;
struct conf;
struct event;
struct event_base;
struct evconnlistener;
struct ipc_chan;
struct smtpd_data;

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF.
 * (DATA lines over RFC 5321's 1000 octets are tolerated for now.) */
#define SMTPD_LINE_MAX 512
/* refusals in one session before "421 4.7.0 Too many errors" */
#define SMTPD_ERROR_LIMIT 20
/* stop reading a client that does not read its replies past this */
#define SMTPD_OUTPUT_MAX (64 * 1024)
/* DATA write buffer, flushed to the spool file with write(2) */
#define SMTPD_DATA_BUF (64 * 1024)
/* "local@domain" as addr_format() writes it */
#define SMTPD_ADDR_BUF (ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2)
/* keep a COMMIT frame (sender, recipients) well under IPC_MAX */
#define SMTPD_RCPT_BYTES_MAX (512 * 1024)

/* Where a session is in the protocol. */
enum session_state {
	SS_COMMAND = 0,         /* reading commands */
	SS_WAIT_OPEN,           /* DATA sent to queued, waiting for the fd */
	SS_DATA,                /* streaming the message */
	SS_WAIT_COMMIT,         /* end of data, waiting for durability */
};

/* Session flags */
#define SF_HELO 0x01            /* HELO or EHLO seen */
#define SF_ESMTP 0x02           /* it was EHLO */
#define SF_DISCARD 0x04         /* discarding the rest of a long line */
#define SF_CLOSING 0x08         /* last reply queued; free once flushed */
#define SF_OUTFULL 0x10         /* reading paused: client not reading */
#define SF_WAITING 0x20         /* on the queue wait list */

struct session {
	TAILQ_ENTRY(session) entry;     /* smtpd.sessions */
	TAILQ_ENTRY(session) wait;      /* smtpd.waiting (SF_WAITING) */
	struct bufferevent *bev;
	struct sockaddr_storage ss;
	char ip[48];                    /* "192.0.2.1", "2001:db8::1" */
	uint64_t serial;                /* for debug logs */
	int listener;                   /* index into conf->listen */
	enum session_state state;
	unsigned flags;
	int errors;                     /* refusals so far (limit 20) */
	char *helo;                     /* sanitised HELO/EHLO argument */

	/* the transaction: MAIL given when sender != NULL */
	char *sender;                   /* "" for the null sender */
	char **rcpt;
	size_t nrcpt;
	size_t rcptcap;
	size_t rcptbytes;
	uint32_t reqid;                 /* of the pending queued request */
	unsigned qgen;                  /* queue link generation of qid */
	char qid[QUEUE_ID_LEN + 1];     /* "" until MSG_OPENED */
	uint64_t msgsize;               /* bytes committed, for the log */
	struct smtpd_data *data;        /* SS_DATA only */
};

TAILQ_HEAD(session_list, session);

/* The process: one instance, smtpd in smtpd.c. */
struct smtpd {
	struct conf *conf;
	struct event_base *base;
	struct evconnlistener **listeners;
	int nlisteners;
	struct session_list sessions;
	size_t nsessions;
	uint64_t next_serial;

	struct ipc_chan *queue;         /* NULL while queued is away */
	unsigned qgen;                  /* bumped on every new queue link */
	uint32_t next_reqid;
	struct session_list waiting;    /* sessions waiting for queued */

	int stopping;                   /* IPC_CHILD_STOP received */
	struct event *stop_timer;
};

extern struct smtpd smtpd;

/* smtpd.c */
/* smtpd_main - the program (main() calls it) */
int smtpd_main(int argc, char **argv);
/* smtpd_session_gone - called after a session was freed (stop check) */
void smtpd_session_gone(void);

/* smtpd_session.c */
/* session_new - start a session on an accepted socket (sends 220) */
void session_new(int fd, const struct sockaddr *sa, int salen, int listener);
/* session_free - release everything; aborts an open transaction */
void session_free(struct session *s);
/* session_reply - queue one reply line (CRLF added) */
void session_reply(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* session_reject - a refusal: reply, count, log, error limit */
void session_reject(struct session *s, enum stats_reject why, const char *cmd,
    const char *rcpt, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* session_close - close once the queued replies are written */
void session_close(struct session *s);
/* session_pause, session_resume - stop/restart reading client input
 * while waiting for queued; resume processes what is buffered */
void session_pause(struct session *s);
void session_resume(struct session *s);
/* session_txn_reset - forget the transaction (aborting it with queued
 * if a spool file is open) */
void session_txn_reset(struct session *s);
/* session_idle - between transactions: no MAIL, nothing pending */
int session_idle(const struct session *s);
/* session_stop_idle - while stopping: 421 and close if idle; 1 if so */
int session_stop_idle(struct session *s);

/* smtpd_cmd.c */
/* cmd_dispatch - run one command line (no CRLF, NUL-free) */
void cmd_dispatch(struct session *s, char *line, size_t len);

/* smtpd_data.c */
/* data_start - the spool fd arrived: write Received:, reply 354 */
void data_start(struct session *s, int fd);
/* data_input - consume message bytes from the client input; returns 1
 * when end of data was reached (the session moved on), 0 if it needs
 * more input */
int data_input(struct session *s);
/* data_free - close the spool fd and free the data state */
void data_free(struct session *s);

/* smtpd_queue.c */
/* queue_link_set - use fd as the link to queued (replacing any old one) */
void queue_link_set(int fd);
/* queue_open - ask queued for a spool file (IPC_QUEUED_MSG_OPEN) */
int queue_open(struct session *s);
/* queue_commit - IPC_QUEUED_MSG_COMMIT for the finished message */
int queue_commit(struct session *s, uint64_t size);
/* queue_abort - IPC_QUEUED_MSG_ABORT for s->qid (if still meaningful) */
void queue_abort(struct session *s);
/* queue_unwait - take s off the wait list (session going away) */
void queue_unwait(struct session *s);
/* queue_current - 1 if the link that opened s->qid is still up */
int queue_current(const struct session *s);

#endif
