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
 *   smtpd_data.c     DATA and BDAT content: line, header, size and NUL
 *                    checks, dot-unstuffing (DATA), streaming into the
 *                    spool descriptor queued passed us, the time bound
 *   smtpd_bdat.c     BDAT (RFC 3030 CHUNKING): the command, counted chunks
 *   smtpd_queue.c    the IPC with queued (open, commit, abort)
 *   smtpd_tls.c      TLS contexts, implicit TLS and STARTTLS upgrades
 *   smtpd_auth.c     AUTH PLAIN and LOGIN, password checks, sender domains
 *   smtpd_anvil.c    per-client limits shared by the smtpd processes:
 *                    connections, MAIL rate, AUTH lock-out (common/anvil.h)
 *   smtpd_header.c   header scan while streaming: From: ownership,
 *                    Date:/Message-ID: for submission
 *   smtpd_access.c   before the banner: the ingress allow-list (CIDR and
 *                    FCrDNS); at MAIL: smtpd_sender_local_only
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
struct access_check;
struct conf_listen;
struct conf_user;
struct ssl_ctx_st;

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF. */
#define SMTPD_LINE_MAX 512
/* RFC 5321 4.5.3.1.6: a text line of a message (DATA or BDAT) is at
 * most 1000 octets with CRLF; a longer one gets 500 5.5.2 at the end */
#define SMTPD_TEXT_MAX 998
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
	SS_STARTTLS,            /* 220 sent, waiting for it to drain */
	SS_GREETING,            /* before the 220: checks running, no reading */
	SS_BDAT,                /* reading BDAT chunk octets (stored, or
	                         * discarded when the command was refused) */
};

/* Where an AUTH exchange is (RFC 4954 continuation lines). */
enum auth_step {
	AUTH_STEP_NONE = 0,
	AUTH_STEP_PLAIN,        /* 334 sent, waiting for the PLAIN response */
	AUTH_STEP_LOGIN_USER,   /* waiting for the base64 user name */
	AUTH_STEP_LOGIN_PASS,   /* waiting for the base64 password */
};

/* Session flags */
#define SF_HELO 0x01            /* HELO or EHLO seen */
#define SF_ESMTP 0x02           /* it was EHLO */
#define SF_DISCARD 0x04         /* discarding the rest of a long line */
#define SF_CLOSING 0x08         /* last reply queued; free once flushed */
#define SF_OUTFULL 0x10         /* reading paused: client not reading */
#define SF_WAITING 0x20         /* on the queue wait list */
#define SF_TLS 0x40             /* TLS is up (bev is an openssl one) */
#define SF_AUTH 0x80            /* authenticated: s->user is set */
#define SF_DEBUG 0x100          /* log the dialogue (debug = yes) */
#define SF_SMTPUTF8 0x1000      /* this transaction's MAIL had SMTPUTF8 */
#define SF_8BITMIME 0x2000      /* this transaction's MAIL had BODY=8BITMIME */

struct session {
	TAILQ_ENTRY(session) entry;     /* smtpd.sessions */
	TAILQ_ENTRY(session) wait;      /* smtpd.waiting (SF_WAITING) */
	struct bufferevent *bev;
	int fd;                         /* the socket (bev owns it under TLS) */
	struct sockaddr_storage ss;
	char ip[48];                    /* "192.0.2.1", "2001:db8::1" */
	uint64_t serial;                /* for debug logs */
	int listener;                   /* index into conf->listen */
	enum session_state state;
	unsigned flags;
	int errors;                     /* refusals so far (limit 20) */
	char *helo;                     /* sanitised HELO/EHLO argument */
	enum auth_step auth_step;
	char *auth_login;               /* AUTH LOGIN: the user name so far */
	const struct conf_user *user;   /* SF_AUTH: who (points into conf) */
	int anvil_counted;              /* its connection is counted in the
	                                   shared table (smtpd_anvil.c) */
	char *client_name;              /* FCrDNS-confirmed name, NULL = unknown */
	struct access_check *access;    /* SS_GREETING: the DNS check in flight */

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
	struct smtpd_data *data;        /* from the spool fd to end of data */

	/* DATA/BDAT (smtpd_data.c, smtpd_bdat.c) */
	struct event *data_timer;       /* smtpd_data_timeout of the phase */
	int bdat;                       /* the transaction uses BDAT */
	int chunk_last;                 /* the current chunk is BDAT LAST */
	uint64_t chunk_size;            /* octets of the current chunk */
	uint64_t chunk_left;            /* of them still to read (SS_BDAT) */
};

TAILQ_HEAD(session_list, session);

/* The process: one instance, smtpd in smtpd.c. */
struct smtpd {
	struct conf *conf;
	struct event_base *base;
	struct evconnlistener **listeners;
	int nlisteners;
	struct ssl_ctx_st **tls_ctx;    /* per listener; NULL = no certificate */
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
/* session_new - a session on an accepted socket; calls session_start */
void session_new(int fd, const struct sockaddr *sa, int salen, int listener);
/* session_stats_init - smtpd process index i: its open-session gauges
 * start at 0 */
void session_stats_init(int i);
/* session_start - the checks before the banner (SS_GREETING, nothing
 * read yet); each may refuse and close, else session_greet follows */
void session_start(struct session *s);
/* session_greet - the checks passed: TLS on smtps, then the 220 */
void session_greet(struct session *s);
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
/* data_start - the spool fd arrived: write Received:, then reply 354
 * (DATA) or read the pending chunk (BDAT, s->bdat) */
void data_start(struct session *s, int fd);
/* data_chunk - BDAT: n octets of the message, taken as they are */
void data_chunk(struct session *s, const char *p, size_t n);
/* data_refused - refuse now if the content so far must be (reply sent,
 * transaction aborted); 1 if so */
int data_refused(struct session *s);
/* data_end - end of data: refuse, or commit and wait for queued */
void data_end(struct session *s);
/* data_phase_begin, data_phase_end - arm and disarm the bound on the
 * whole DATA or BDAT phase (smtpd_data_timeout: 421 4.4.2 and close) */
void data_phase_begin(struct session *s);
void data_phase_end(struct session *s);
/* data_input - consume message bytes from the client input; returns 1
 * when end of data was reached (the session moved on), 0 if it needs
 * more input */
int data_input(struct session *s);
/* data_free - close the spool fd and free the data state */
void data_free(struct session *s);

/* smtpd_bdat.c */
/* cmd_bdat - BDAT size [LAST] (RFC 3030) */
void cmd_bdat(struct session *s, char *arg);
/* bdat_input - read the current chunk from the client input; 1 when it
 * was read whole (the session moved on), 0 if it needs more input */
int bdat_input(struct session *s);

/* session_listen - the configuration of the session's listener (NULL
 * if the file changed and it has no section any more) */
const struct conf_listen *session_listen(const struct session *s);
/* session_update_read - read from the client only when we can use it */
void session_update_read(struct session *s);
/* session_attach - use bev for s: callbacks, timeouts, reading */
void session_attach(struct session *s, struct bufferevent *bev);
/* session_reset_protocol - forget HELO and the transaction (after TLS) */
void session_reset_protocol(struct session *s);
/* session_debugging - 1 if the dialogue of s is logged */
int session_debugging(const struct session *s);

/* smtpd_tls.c */
/* tls_init - a context for every listener with a certificate (before
 * the privileges are dropped: the key may be readable by root only) */
void tls_init(void);
/* tls_available - 1 if the session's listener has a certificate */
int tls_available(const struct session *s);
/* tls_implicit - 1 if the listener is mode smtps */
int tls_implicit(int listener);
/* tls_bev_new - an accepting openssl bufferevent on fd for listener */
struct bufferevent *tls_bev_new(int fd, int listener);
/* tls_upgrade - STARTTLS: replace the plain bufferevent (its 220 was
 * written, its input discarded) with a TLS one on the same socket */
void tls_upgrade(struct session *s);
/* tls_describe - "TLSv1.3 with cipher NAME (256/256 bits)", or "" */
void tls_describe(const struct session *s, char *buf, size_t len);
/* tls_version - "TLSv1.3", or "" without TLS */
const char *tls_version(const struct session *s);
/* tls_log_error - log why a TLS session failed (handshake, I/O) */
void tls_log_error(const struct session *s);
/* tls_session_end - count a TLS handshake of s that never completed */
void tls_session_end(const struct session *s);

/* smtpd_auth.c */
/* auth_init - prepare the dummy hash used for unknown users */
void auth_init(void);
/* auth_offered - 1 if EHLO may advertise AUTH on this session now */
int auth_offered(const struct session *s);
/* cmd_auth - AUTH mechanism [initial-response] */
void cmd_auth(struct session *s, char *arg);
/* auth_continue - a continuation line while auth_step != NONE */
void auth_continue(struct session *s, char *line);
/* auth_reset - forget a half-done exchange (wipes the LOGIN name) */
void auth_reset(struct session *s);
/* auth_sender_owned - 1 if the authenticated user may use domain */
int auth_sender_owned(const struct session *s, const char *domain);

/* smtpd_anvil.c */
/* smtpd_anvil_init - map the table the master passed (POSTERN_ANVIL_FD;
 * a private one without it); index is the process's column */
void smtpd_anvil_init(int index);
/* smtpd_anvil_connect - before the banner: count the connection; -1
 * after refusing it (421 4.7.0, closing) over smtpd_client_connection_limit */
int smtpd_anvil_connect(struct session *s);
/* smtpd_anvil_disconnect - the session ends: uncount its connection */
void smtpd_anvil_disconnect(struct session *s);
/* smtpd_anvil_mail - at MAIL: count it; -1 after the 450 4.7.1 refusal
 * over smtpd_client_message_limit */
int smtpd_anvil_mail(struct session *s);
/* smtpd_anvil_auth_locked - 1 if the client is locked out of AUTH */
int smtpd_anvil_auth_locked(const struct session *s);
/* smtpd_anvil_auth_failed - count one AUTH failure of the client */
void smtpd_anvil_auth_failed(const struct session *s);

/* smtpd_access.c */
/* access_start - the ingress allow-list (smtpd_client_allow): greets,
 * refuses (554/421, closed) or starts DNS lookups and returns */
void access_start(struct session *s);
/* access_cancel - the session is being freed: detach its DNS check */
void access_cancel(struct session *s);
/* access_sender_refused - 1 if smtpd_sender_local_only refuses this MAIL
 * FROM address for the session (the caller replies 553 5.7.1) */
int access_sender_refused(const struct session *s, const struct mailaddr *a);

/* smtpd_header.c */
struct smtpd_hdr;
/* hdr_new, hdr_free - the header scanner of one message */
struct smtpd_hdr *hdr_new(void);
void hdr_free(struct smtpd_hdr **hp);
/* hdr_line - one complete header-section line (no CR LF); returns 1 if
 * it ends the header section (the empty line, or the first line that is
 * no header field: the body begins with it) */
int hdr_line(struct smtpd_hdr *h, struct session *s, const char *p, size_t n);
/* hdr_missing - the Date:/Message-ID: lines a submission message lacks
 * (CR LF ended; "" if none or not a submission listener) */
void hdr_missing(struct smtpd_hdr *h, struct session *s, char *buf, size_t len);
/* hdr_received - the number of Received: fields seen */
int hdr_received(struct smtpd_hdr *h);
/* hdr_from_refused - 1 if a From: address uses a domain the
 * authenticated user does not own */
int hdr_from_refused(struct smtpd_hdr *h, struct session *s);

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
