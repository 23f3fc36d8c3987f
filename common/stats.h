/*
 * stats.h - counters shared by every process, read by httpd for /metrics
 * and /healthz.
 *
 * The master creates one memfd holding struct stats_shm before it forks
 * anything, and every child maps it (PROC_FD_STATS). Each process adds to
 * the counters it owns with relaxed atomics: smtpd counts connections and
 * acceptances, queued the queue gauges and delivery outcomes, the master
 * the child table, smtpd and delivery the certificate dates and DKIM key
 * facts the status page shows. The mapping outlives child restarts, so counters are
 * monotonic for the life of the master, as Prometheus expects.
 * SECURITY: every child can write the whole region; it holds only
 * counters, never anything a decision depends on.
 */
#ifndef POSTERN_STATS_H
#define POSTERN_STATS_H

#include <stdint.h>
#include <sys/types.h>

#include "proc.h"

#define STATS_MAX_CHILDREN 64
#define STATS_MAGIC 0x70737436u /* "pst6": bump on any layout change */
#define STATS_MAX_DKIM 32       /* dkim sections with published facts */

/* Why smtpd (or another receiver) refused a message or a recipient. */
enum stats_reject {
	REJ_RELAY_DENIED = 0,  /* 554 5.7.1 not a permitted destination */
	REJ_SIZE,              /* 552 message too big */
	REJ_RCPT_LIMIT,        /* 452 too many recipients */
	REJ_SYNTAX,            /* 501 bad address syntax */
	REJ_QUEUE_ERROR,       /* 451/452 queue could not take it */
	REJ_PROTOCOL,          /* 500/503/421 protocol abuse */
	REJ_ACCESS,            /* 554 5.7.1 client not on the ingress allow-list */
	REJ_CONN_LIMIT,        /* 421 4.7.0 too many connections from the client */
	REJ_MESSAGE_RATE,      /* 450 4.7.1 too many messages from the client */
	REJ_AUTH_FAILED,       /* 535 5.7.8 wrong credentials */
	REJ_AUTH_LOCKOUT,      /* 421 4.7.0 too many AUTH failures */
	REJ_TLS_REQUIRED,      /* 530 5.7.0 / 538 5.7.11 TLS first */
	REJ_SENDER,            /* 553 5.7.1 sender domain not permitted */
	REJ_TIMEOUT,           /* 421 4.4.2 idle or DATA time bound */
	REJ_AUTH_REQUIRED,     /* 530 5.7.0 MAIL before AUTH where required */
	REJ_HOPS,              /* 554 5.4.6 too many Received: (a mail loop) */
	REJ_MAX
};

/* The outcome of one delivery attempt for one recipient. */
enum stats_delivery {
	DLV_DELIVERED = 0,
	DLV_DEFERRED,
	DLV_BOUNCED,
	DLV_MAX
};

/* How the send API answered a request (httpd; label values in
 * httpd_metrics.c). */
enum stats_http_send {
	HSEND_ACCEPTED = 0,     /* 202: queued */
	HSEND_BAD_REQUEST,      /* 400 */
	HSEND_FORBIDDEN,        /* 403: allow-list, nonce, hash */
	HSEND_RATE_LIMITED,     /* 429 */
	HSEND_UNAVAILABLE,      /* 503: queue down or full */
	HSEND_MAX
};

/* DNS lookups by record type and result (smtpd FCrDNS, delivery MX). */
enum stats_dns_type { SDNS_MX = 0, SDNS_A, SDNS_AAAA, SDNS_PTR, SDNS_MAX };
enum stats_dns_result {
	SDNS_OK = 0,            /* an answer */
	SDNS_NOTFOUND,          /* NXDOMAIN or no data */
	SDNS_TEMPFAIL,          /* SERVFAIL, timeout, refused, no server */
	SDNS_RESULT_MAX
};

/* smtpd listeners counted separately (conf listen sections, in order) */
#define STATS_MAX_LISTENERS 32
/* smtpd processes with their own row of open-session gauges (conf:
 * smtpd_processes is 1 to 16) */
#define STATS_MAX_SMTPD 16

/* Deliveries by transport: indexed by conf.h's enum transport_type
 * (1 maildir ... 6 http; 0 unused), room for two more types. */
#define STATS_TRANSPORT_MAX 8

/* Why a recipient was deferred or bounced: the subject of its RFC 3463
 * enhanced status code (X.1.Y address ... X.7.Y policy), or the queue
 * lifetime running out (bounces only). */
enum stats_reason {
	SREASON_OTHER = 0,      /* no or an unknown subject (X.0.Y) */
	SREASON_ADDRESS,        /* X.1.Y */
	SREASON_MAILBOX,        /* X.2.Y */
	SREASON_SYSTEM,         /* X.3.Y */
	SREASON_NETWORK,        /* X.4.Y: connection and routing */
	SREASON_PROTOCOL,       /* X.5.Y */
	SREASON_CONTENT,        /* X.6.Y */
	SREASON_POLICY,         /* X.7.Y: security and policy */
	SREASON_EXPIRED,        /* queue.lifetime passed (dsn 4.4.7) */
	SREASON_MAX
};

/* The DSNs queued makes (RFC 3464 Action). */
enum stats_dsn { SDSN_FAILED = 0, SDSN_DELAYED, SDSN_MAX };

/* What a queued message is doing (queue gauge by state). */
enum stats_queue_state {
	SQUEUE_ACTIVE = 0,      /* a delivery job is in flight (or finishing) */
	SQUEUE_PENDING,         /* waiting for its first attempt */
	SQUEUE_DEFERRED,        /* a recipient failed temporarily: waits to retry */
	SQUEUE_HELD,            /* every waiting recipient is on hold */
	SQUEUE_BROKEN,          /* its index record is unreadable: kept aside */
	SQUEUE_MAX
};

struct stats_child {
	int32_t role;           /* enum proc_role; 0 = unused slot */
	int32_t index;
	int32_t pid;            /* 0 while not running */
	int32_t up;             /* 1 once the child said IPC_MASTER_READY */
	uint64_t restarts;
	int64_t started;        /* unix seconds */
};

/* What delivery loaded for dkim section i (conf order): facts from the
 * public half only, for the status page. */
struct stats_dkim {
	int32_t loaded;         /* 1 once a delivery process loaded the key */
	int32_t alg;            /* enum dkim_alg (dkimkey.h): 0 rsa, 1 ed25519 */
	int32_t bits;
	uint8_t fingerprint[32];        /* dkimkey_fingerprint() */
};

struct stats_shm {
	uint32_t magic;
	int64_t master_started;
	uint64_t connections;               /* smtpd: TCP sessions accepted */
	uint64_t messages_accepted;         /* smtpd: 250 after DATA */
	uint64_t rejected[REJ_MAX];         /* smtpd */
	uint64_t deliveries[DLV_MAX];       /* queued, per recipient */
	uint64_t dkim_signed;               /* delivery */
	uint64_t dkim_unsignable;           /* delivery: content libopendkim
	                                       cannot parse (sent unsigned or
	                                       bounced, dkim_unsignable) */
	int64_t queue_messages;             /* queued gauge */
	int64_t queue_recipients;           /* queued gauge: not yet done */
	uint32_t nchildren;                 /* master */
	struct stats_child child[STATS_MAX_CHILDREN];
	uint64_t http_send[HSEND_MAX];      /* httpd: send API answers */
	uint64_t smtpd_auth[2];             /* smtpd: AUTH 0 success, 1 failure */
	uint64_t smtpd_tls;                 /* smtpd: TLS handshakes completed */
	uint64_t smtp_connections[2];       /* delivery: SMTP client connections,
	                                       0 opened, 1 reused (cached) */
	uint64_t smtp_tls[2];               /* delivery: client TLS sessions,
	                                       0 verified, 1 not verified */
	uint64_t dns_lookups[SDNS_MAX][SDNS_RESULT_MAX]; /* smtpd, delivery */
	uint64_t listener_sessions[STATS_MAX_LISTENERS]; /* smtpd: accepted */
	/* metrics of issue 6 (label values in stats.c): */
	uint64_t smtpd_tls_failed;          /* smtpd: handshakes never completed */
	uint64_t smtp_tls_failed;           /* delivery: client handshakes failed */
	uint64_t transport_deliveries[STATS_TRANSPORT_MAX][DLV_MAX]; /* queued */
	uint64_t deferrals[SREASON_MAX];    /* queued: deferred results, by reason */
	uint64_t bounces[SREASON_MAX];      /* queued: bounced recipients */
	uint64_t dsn_messages[SDSN_MAX];    /* queued: DSNs queued, by action */
	int64_t queue_state[SQUEUE_MAX];    /* queued gauge: messages by state */
	int64_t queue_oldest_ms;            /* queued gauge: arrival of the oldest
	                                       message (unix ms), 0 when empty */
	/* smtpd process i (-i): sessions open now per listener; each process
	 * zeroes its row at start, so a crashed one leaves nothing behind */
	int64_t smtpd_listener_active[STATS_MAX_SMTPD][STATS_MAX_LISTENERS];
	/* queued: links closed because the child broke the protocol, by the
	 * child's enum proc_role (smtpd, httpd) */
	uint64_t link_violations[PROC_ROLE_MAX];
	/* the status page's TLS and DKIM facts (numbers, never key material):
	 * smtpd: the notAfter and notBefore of each listener's certificate
	 * (unix seconds; 0 = no certificate, or smtpd not started yet) */
	int64_t tls_not_after[STATS_MAX_LISTENERS];
	int64_t tls_not_before[STATS_MAX_LISTENERS];
	struct stats_dkim dkim[STATS_MAX_DKIM];     /* delivery */
	/* queued: the index map, bytes in use and its size (queued_space.c) */
	int64_t queue_index_used;
	int64_t queue_index_size;
};

extern struct stats_shm *stats;

/* stats_create - master: make the memfd, map it, return the fd */
int stats_create(void);
/* stats_attach - child: map PROC_FD_STATS (or fd); fatal on failure */
void stats_attach(int fd);
/* stats_add - atomically add v to *counter */
void stats_add(uint64_t *counter, uint64_t v);
/* stats_gauge_add - atomically add v (may be negative) to *gauge */
void stats_gauge_add(int64_t *gauge, int64_t v);
/* stats_gauge_set - atomically store v */
void stats_gauge_set(int64_t *gauge, int64_t v);
/* stats_read - atomic load of a counter or gauge */
uint64_t stats_read(const uint64_t *counter);
int64_t stats_gauge_read(const int64_t *gauge);
/* stats_reject_name, stats_delivery_name - label values ("relay_denied") */
const char *stats_reject_name(enum stats_reject r);
const char *stats_delivery_name(enum stats_delivery d);
/* stats_dns_type_name, stats_dns_result_name - "mx", "tempfail" ... */
const char *stats_dns_type_name(enum stats_dns_type t);
const char *stats_dns_result_name(enum stats_dns_result r);
/* stats_dns - count one DNS lookup */
void stats_dns(enum stats_dns_type t, enum stats_dns_result r);
/* stats_reason_name, stats_dsn_name, stats_queue_state_name - label
 * values ("network", "failed", "deferred") */
const char *stats_reason_name(enum stats_reason r);
const char *stats_dsn_name(enum stats_dsn d);
const char *stats_queue_state_name(enum stats_queue_state q);
/* stats_reason_of - the reason of an enhanced status code ("4.4.1") */
enum stats_reason stats_reason_of(const char *dsn);
/* stats_outcome - count one recipient outcome by transport type and, for
 * a deferral or a bounce, by reason (the caller counts deliveries[]) */
void stats_outcome(int transport, enum stats_delivery d, enum stats_reason why);

#endif
