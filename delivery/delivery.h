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
#include <time.h>
#include <time.h>
#include <sys/socket.h>

#include "addr.h"
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
	char *reply;            /* the remote reply, or our reason: the log
	                         * line, the DSN's Diagnostic-Code */
	char *note;             /* for the log line only, after the reply:
	                         * " (in reply to RCPT TO) [TLS=...]", or NULL */
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
	uint32_t envflags;      /* ENV_F_* (common/ipc_types.h) */
	struct delivery_rcpt *rcpt;
	size_t nrcpt;
	char *msg;              /* the message, CRLF text, signed if due */
	size_t msglen;
	unsigned link_gen;      /* queue link it came over (see delivery.c) */
	const struct conf_transport *transport;
	void *session;          /* transport state (relay) */
	uint64_t started_ms;
	/* routing: a job whose recipients take several transports runs as
	 * sub-jobs, one per transport, sharing the parent's message */
	struct delivery_job *parent;    /* NULL: reports to queued itself */
	size_t pending;                 /* parent: sub-jobs still running */
	int msg_borrowed;               /* msg belongs to the parent */
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
/* delivery_rcpt_note - what the log line says after a recipient's reply
 * (the command it answered, the TLS state), never in a DSN */
void delivery_rcpt_note(struct delivery_rcpt *r, const char *fmt, ...) PRINTF_LIKE(2, 3);
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
/* How signing can fail: the key or the library (deferred: an operator
 * can fix it), or the message itself (never heals: dkim_unsignable). */
enum { DKIM_FAIL_KEY = -1, DKIM_FAIL_CONTENT = -2 };
/* delivery_dkim_sign - prepend a DKIM-Signature when the job's signing
 * domain has a key. 0 (signed or nothing to sign), or DKIM_FAIL_KEY /
 * DKIM_FAIL_CONTENT with the reason in err */
int delivery_dkim_sign(struct delivery_job *j, char *err, size_t errlen);
/* delivery_dkim_domain - the signing domain of a message: the From:
 * header's addr-spec domain, else the envelope sender's; lower-case into
 * out. 0, or -1 when there is none */
int delivery_dkim_domain(const char *msg, size_t len, const char *sender, char *out,
    size_t outlen);
/* delivery_header_value - the unfolded value of the message's first NAME:
 * header field (CR/LF removed); malloc'd, or NULL */
char *delivery_header_value(const char *msg, size_t len, const char *name);
/* delivery_header_count - how many NAME: fields the message's header
 * section has (Received: for the hop count) */
int delivery_header_count(const char *msg, size_t len, const char *name);

/* delivery_dkim_ed.c */
struct evp_pkey_st;
/* delivery_dkim_ed25519 - an ed25519-sha256 DKIM-Signature value (folded,
 * without the field name and final CRLF) signing the names[] fields of
 * msg (From oversigned); malloc'd, or NULL */
char *delivery_dkim_ed25519(const char *msg, size_t len, struct evp_pkey_st *key,
    const char *domain, const char *selector, const char *const *names, int hrelaxed,
    int brelaxed);

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

/* delivery_file.c */

/* delivery_file_run - write the message as one file named from the
 * transport's template; finishes the job before returning */
void delivery_file_run(struct delivery_job *j);
/* delivery_file_name - expand a file name template (%i queue id, %Y %m
 * %d %H %M %S date, %s sender, %r recipient, %j subject, %%) with every
 * value sanitised (no '/', no "..", no control characters); 0 or -1 */
int delivery_file_name(const char *tmpl, const struct delivery_job *j, time_t now,
    char *out, size_t outlen);

/* delivery_pipe.c */

/* delivery_pipe_run - run the transport's command with the message on
 * stdin; the job is finished from the event loop */
void delivery_pipe_run(struct delivery_job *j);
/* delivery_pipe_killall - kill the running commands (at exit) */
void delivery_pipe_killall(void);

/* delivery_http.c */

/* delivery_http_run - POST the message as a CloudEvent; the job is
 * finished from the event loop */
void delivery_http_run(struct delivery_job *j);
/* delivery_http_init - set up libcurl (once, at start) */
void delivery_http_init(void);

/* The SMTP client (delivery_relay.c) as the relay and mx transports use
 * it: one destination, the addresses to try in order, and its policy. */
#define SMTP_TARGETS_MAX 32
struct smtp_target {
	char host[ADDR_DOMAIN_MAX + 1];         /* name, for logs and TLS */
	struct sockaddr_storage ss;             /* address and port */
	socklen_t sslen;
	int best;               /* mx: a host of the lowest preference */
};
struct smtp_dest {
	char key[ADDR_DOMAIN_MAX + 64];         /* idle-connection cache key */
	char nexthop[ADDR_DOMAIN_MAX + 1];      /* mx: the domain, for loop
	                                         * detection; "" = none */
	struct smtp_target target[SMTP_TARGETS_MAX];
	size_t ntarget;
	int tls;                /* enum conf_tls_level */
	int tls_verify_used;    /* verify the certificate whenever TLS is used */
	int tls_implicit;       /* TLS from the first byte */
	const char *ca_file;    /* "" = system trust store */
	const char *auth_user;  /* "" = no AUTH */
	const char *auth_password;
	time_t timeout;         /* per command */
	int reuse_max;          /* messages per connection */
	time_t reuse_idle;      /* idle connections close after this */
};
/* smtp_done_cb - every recipient the session carried has a result */
typedef void smtp_done_cb(struct delivery_job *j, void *arg);
/* smtp_deliver - deliver the job to the recipients ri[0..nri-1] (indexes
 * into j->rcpt) at d, on an idle cached connection to d->key when there
 * is one; done runs from the event loop (or at once) when they all have
 * a result. d is copied. */
void smtp_deliver(struct delivery_job *j, const size_t *ri, size_t nri,
    const struct smtp_dest *d, smtp_done_cb *done, void *arg);
/* smtp_close_idle - at exit: QUIT and close every idle connection */
void smtp_close_idle(void);

/* delivery_mx.c */

/* mx_deliver - the mx transport: RFC 5321 section 5 resolution of each
 * recipient domain, then SMTP to its hosts; finishes the job from the
 * event loop */
void mx_deliver(struct delivery_job *j, const struct conf_transport *t);

/* delivery_dns.c: c-ares on the event loop */
enum { DNS_OK = 0, DNS_NODATA, DNS_NOTFOUND, DNS_TEMP };
struct ares_mx_reply;
struct ares_addrinfo_node;
/* dns_mx_cb - status DNS_*, the records (DNS_OK only), c-ares's text */
typedef void dns_mx_cb(void *arg, int status, struct ares_mx_reply *mx, const char *err);
/* dns_addr_cb - status DNS_*, the addresses (DNS_OK only), c-ares's text */
typedef void dns_addr_cb(void *arg, int status, struct ares_addrinfo_node *ai,
    const char *err);
/* dns_lookup_mx, dns_lookup_addr - MX, or A and AAAA, of a name; the
 * callback may run before they return */
void dns_lookup_mx(const char *name, dns_mx_cb *cb, void *arg);
void dns_lookup_addr(const char *name, dns_addr_cb *cb, void *arg);

/* delivery_loop.c */

/* loop_self_addr - 1 if sa (address and port) is one of our smtpd
 * listeners (a wildcard one: any local address of its family) */
int loop_self_addr(const struct sockaddr *sa);
/* loop_own_name - 1 if a reply's first word ("220 NAME ...") is our
 * hostname */
int loop_own_name(const char *reply);

/* delivery_tls.c */
struct ssl_st;
/* delivery_tls_new - a client SSL for host (SNI and the name checked),
 * trusting ca_file or the system store; NULL with err */
struct ssl_st *delivery_tls_new(const char *ca_file, const char *host, char *err,
    size_t errlen);
/* delivery_tls_describe - "TLSv1.3 cipher=NAME verified=yes" into buf;
 * returns 1 when the chain and the name verified */
int delivery_tls_describe(struct ssl_st *ssl, char *buf, size_t len);

/* delivery_local_content - "Return-Path: <sender>\n" and the message
 * with LF line ends (maildir and file outputs); malloc'd, length in *lenp */
char *delivery_local_content(const struct delivery_job *j, size_t *lenp);
/* delivery_write_all - write(2) until done; 0 or -1 with errno */
int delivery_write_all(int fd, const char *p, size_t len);
/* delivery_store_atomic - tmp, write, fsync, rename to dst, fsync dstdir;
 * 0 or an errno with *step naming the failed step */
int delivery_store_atomic(const char *tmp, const char *dst, const char *dstdir,
    const char *data, size_t len, const char **step);

#endif
