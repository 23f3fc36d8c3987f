/*
 * delivery.h - the delivery process (postern-delivery): what its files
 * share.
 *
 * A job is one IPC_DELIVERY_JOB from queued: one message and the
 * recipients of it that are due. delivery.c owns the job list and the
 * queue link; a transport (delivery_maildir.c, delivery_relay.c) takes a
 * job, gives every recipient a result and hands the job back with
 * delivery_job_done(), which sends the one IPC_QUEUED_JOB_RESULT and frees
 * it. delivery_dkim.c signs a job's message before the transport sees it.
 */
#ifndef POSTERN_DELIVERY_H
#define POSTERN_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct conf;
struct conf_transport;
struct event_base;

/* The longest DSN we keep ("4.4.1" is 5; RFC 3463 allows 3 digits each). */
#define DLV_DSN_MAX 16

/* One recipient of a job and, once known, its result. */
struct delivery_rcpt {
	uint32_t index;         /* queued's recipient index */
	char *addr;             /* "local@domain" */
	int class;              /* 0 = no result yet, else 2, 4 or 5 */
	char dsn[DLV_DSN_MAX];
	char *relay;            /* "maildir:/path", "host[1.2.3.4]:25" */
	char *reply;            /* human text for the log line */
	int accepted;           /* relay: the RCPT got a 2xx */
};

/* One delivery job. */
struct delivery_job {
	struct delivery_job *prev, *next;       /* the running jobs */
	uint64_t jobid;
	char *queueid;
	char *sender;           /* "" for the null sender */
	int64_t arrival;
	uint32_t attempt;
	struct delivery_rcpt *rcpt;
	size_t nrcpt;
	char *msg;              /* the message, CRLF text, signed if due */
	size_t msglen;
	unsigned link_gen;      /* queue link it came over (see delivery.c) */
	const struct conf_transport *transport;
	void *session;          /* transport state (relay) */
	uint64_t started_ms;
};

/* delivery.c */

/* delivery_main - the process: start-up, event loop; never returns */
int delivery_main(int argc, char **argv) NORETURN;
/* delivery_conf, delivery_base - the running configuration and loop */
const struct conf *delivery_conf(void);
struct event_base *delivery_base(void);
/* delivery_rcpt_result - set one recipient's result (printf-style reply) */
void delivery_rcpt_result(struct delivery_rcpt *r, int class, const char *dsn,
    const char *relay, const char *fmt, ...) PRINTF_LIKE(5, 6);
/* delivery_job_result - the same result for every recipient that has
 * none yet (accepted_only: only those whose RCPT was accepted) */
void delivery_job_result(struct delivery_job *j, int accepted_only, int class,
    const char *dsn, const char *relay, const char *fmt, ...) PRINTF_LIKE(6, 7);
/* delivery_job_done - send the job's result to queued (unless its link
 * died meanwhile) and free it; the transport must not touch j afterwards */
void delivery_job_done(struct delivery_job *j);

/* delivery_dkim.c */

/* delivery_dkim_load - privileged start-up: read every configured key
 * and set up libopendkim; a key that cannot be read exits EXIT_CONFIG */
void delivery_dkim_load(const struct conf *c);
/* delivery_dkim_sign - prepend a DKIM-Signature when the job's signing
 * domain has a key. 0 (signed or nothing to sign), or -1 with the reason
 * in err */
int delivery_dkim_sign(struct delivery_job *j, char *err, size_t errlen);
/* delivery_dkim_domain - the signing domain of a message: the From:
 * header's addr-spec domain, else the envelope sender's; lower-case into
 * out. 0, or -1 when there is none */
int delivery_dkim_domain(const char *msg, size_t len, const char *sender, char *out,
    size_t outlen);

/* delivery_maildir.c */

/* delivery_maildir_run - write the job into the transport's Maildir;
 * finishes the job before returning */
void delivery_maildir_run(struct delivery_job *j);

/* delivery_relay.c */

/* delivery_relay_run - start the SMTP dialogue for the job; the job is
 * finished from the event loop (or at once on an immediate failure) */
void delivery_relay_run(struct delivery_job *j);
/* delivery_relay_abandon - the queue link died: drop the session unless
 * the message is already handed over (end of data sent); returns 1 if the
 * job was finished (freed) here */
int delivery_relay_abandon(struct delivery_job *j);

#endif
