/*
 * delivery.c - postern-delivery: the outbound worker process.
 *
 * Owns: start-up (DKIM keys read while privileged, then the privilege
 * drop), the control link to the master, the link to queued, the list of
 * running jobs, reading each job's message from the spool descriptor
 * queued passed, the choice of transport per recipient (route_lookup();
 * a job whose recipients take several transports runs as sub-jobs, one
 * per transport, whose results are gathered into the parent), the hop
 * count (more than hopcount_limit Received: fields bounce with 5.4.6, a
 * mail loop), and the one result message per job. Many jobs run at
 * once in this one process: transports are event driven (relay, mx,
 * pipe, http) or short and synchronous (maildir, file).
 *
 * SECURITY: started by the master with its privileges only to read the
 * DKIM private keys (delivery_dkim.c); priv_drop() follows at once, before
 * any link is served. Peers: the master (control, trusted) and queued
 * (jobs, trusted; a malformed frame is a bug and kills the process). It
 * never opens spool paths (queued passes a read-only descriptor per job),
 * never logs message contents or key material, and never delivers a
 * message unsigned when its domain has a key: a signing failure defers.
 * STANDARDS: RFC 3463 (the enhanced status codes in results), RFC 5321
 * 6.3 (loop detection by counting Received: fields).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "privdrop.h"
#include "proc.h"
#include "route.h"
#include "stats.h"
#include "util.h"

#include "delivery.h"

/* The process state. link_gen counts queue links: a job remembers the
 * generation it came over, and its result is only sent over that link
 * (a new queued re-sends what the old one had in flight). */
static struct {
	struct child ch;
	struct ipc_chan *queue;
	unsigned link_gen;
	struct delivery_job *jobs;
	size_t njobs;
	int stopping;
	struct event *grace;
} D;

static void on_stop(struct ipc_chan *c, struct ipc_msg *m, void *arg);
static void on_queue_link(struct ipc_chan *c, struct ipc_msg *m, void *arg);
static void on_job(struct ipc_chan *c, struct ipc_msg *m, void *arg);
static void sub_done(struct delivery_job *s);

/* mx_run - the mx transport (delivery_mx.c) in the runners' form */
static void
mx_run(struct delivery_job *j)
{
	mx_deliver(j, j->transport);
}

/* master -> delivery */
static const struct ipc_handler control_table[] = {
	{ IPC_CHILD_STOP, on_stop },
	{ IPC_CHILD_QUEUE_LINK, on_queue_link },
	{ 0, NULL },
};

/* queued -> delivery */
static const struct ipc_handler queue_table[] = {
	{ IPC_DELIVERY_JOB, on_job },
	{ 0, NULL },
};

/* How each transport type runs a job; the runner owns the job. */
static const struct {
	enum transport_type type;
	void (*run)(struct delivery_job *j);
} transports[] = {
	{ TRANSPORT_MAILDIR, delivery_maildir_run },
	{ TRANSPORT_RELAY, delivery_relay_run },
	{ TRANSPORT_MX, mx_run },
	{ TRANSPORT_FILE, delivery_file_run },
	{ TRANSPORT_PIPE, delivery_pipe_run },
	{ TRANSPORT_HTTP, delivery_http_run },
	{ 0, NULL },
};

/* delivery_conf - the running configuration */
const struct conf *
delivery_conf(void)
{
	return D.ch.conf;
}

/* delivery_base - the event loop */
struct event_base *
delivery_base(void)
{
	return D.ch.base;
}

/* delivery_exit - flush what queued should still hear, then exit 0 */
static void NORETURN
delivery_exit(void)
{
	if (D.queue != NULL && ipc_flush_blocking(D.queue) == -1)
		log_warnx("could not flush the last results to queued");
	delivery_pipe_killall();
	smtp_close_idle();
	log_info("stopped");
	exit(0);
}

/* rcpt_clear - forget a recipient's result strings */
static void
rcpt_clear(struct delivery_rcpt *r)
{
	xfree(&r->relay);
	xfree(&r->reply);
	xfree(&r->note);
}

/* rcpt_vresult - set one recipient's result from a va_list */
static void rcpt_vresult(struct delivery_rcpt *r, int class, const char *dsn,
    const char *relay, const char *fmt, va_list ap) PRINTF_LIKE(5, 0);
static void
rcpt_vresult(struct delivery_rcpt *r, int class, const char *dsn, const char *relay,
    const char *fmt, va_list ap)
{
	char *text;

	if (vasprintf(&text, fmt, ap) == -1)
		fatal("vasprintf");
	rcpt_clear(r);
	r->class = class;
	strlcpy(r->dsn, dsn, sizeof(r->dsn));
	r->relay = xstrdup(relay != NULL && *relay != '\0' ? relay : "none");
	r->reply = text;
}

/* delivery_rcpt_result - set one recipient's result */
void
delivery_rcpt_result(struct delivery_rcpt *r, int class, const char *dsn,
    const char *relay, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rcpt_vresult(r, class, dsn, relay, fmt, ap);
	va_end(ap);
}

/* delivery_rcpt_note - see delivery.h */
void
delivery_rcpt_note(struct delivery_rcpt *r, const char *fmt, ...)
{
	va_list ap;

	free(r->note);
	va_start(ap, fmt);
	if (vasprintf(&r->note, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
}

/* delivery_job_result - one result for every recipient still without one */
void
delivery_job_result(struct delivery_job *j, int accepted_only, int class,
    const char *dsn, const char *relay, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	for (i = 0; i < j->nrcpt; i++) {
		if (j->rcpt[i].class != 0 || (accepted_only && !j->rcpt[i].accepted))
			continue;
		va_start(ap, fmt);
		rcpt_vresult(&j->rcpt[i], class, dsn, relay, fmt, ap);
		va_end(ap);
	}
}

/* job_free - release a job that is no longer on the list */
static void
job_free(struct delivery_job *j)
{
	size_t i;

	for (i = 0; i < j->nrcpt; i++) {
		xfree(&j->rcpt[i].addr);
		rcpt_clear(&j->rcpt[i]);
	}
	xfree(&j->rcpt);
	xfree(&j->queueid);
	xfree(&j->sender);
	if (!j->msg_borrowed)
		xfree(&j->msg);
	free(j);
}

/* job_link - put a job on the running list */
static void
job_link(struct delivery_job *j)
{
	j->prev = NULL;
	j->next = D.jobs;
	if (D.jobs != NULL)
		D.jobs->prev = j;
	D.jobs = j;
	D.njobs++;
}

/* job_unlink - take a job off the running list */
static void
job_unlink(struct delivery_job *j)
{
	if (j->prev == NULL && D.jobs != j)
		return;         /* not on the list (a parent of sub-jobs) */
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		D.jobs = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	j->prev = j->next = NULL;
	D.njobs--;
}

/* job_send_result - IPC_QUEUED_JOB_RESULT with every recipient */
static void
job_send_result(const struct delivery_job *j)
{
	struct msgbuf b;
	size_t i;

	msgbuf_init(&b);
	msg_add_u64(&b, j->jobid);
	msg_add_str(&b, j->queueid);
	msg_add_u32(&b, (uint32_t)j->nrcpt);
	for (i = 0; i < j->nrcpt; i++) {
		const struct delivery_rcpt *r = &j->rcpt[i];

		msg_add_u32(&b, r->index);
		msg_add_u32(&b, (uint32_t)r->class);
		msg_add_str(&b, r->dsn);
		msg_add_str(&b, r->relay);
		msg_add_str(&b, r->reply);
		msg_add_str(&b, r->note != NULL ? r->note : "");
	}
	ipc_send(D.queue, IPC_QUEUED_JOB_RESULT, &b, -1);
	msgbuf_free(&b);
}

/* delivery_job_done - report the job and free it */
void
delivery_job_done(struct delivery_job *j)
{
	size_t i;

	for (i = 0; i < j->nrcpt; i++) {
		if (j->rcpt[i].class != 0)
			continue;
		log_warnx("%s: no result for <%s>; deferring", j->queueid, j->rcpt[i].addr);
		delivery_rcpt_result(&j->rcpt[i], 4, "4.3.0", NULL,
		    "internal error: the transport gave no result");
	}
	if (j->parent != NULL) {
		sub_done(j);
		return;
	}
	if (j->link_gen == D.link_gen && D.queue != NULL)
		job_send_result(j);
	else
		log_info("%s: queue link gone, result of job %llu dropped (queued retries)",
		    j->queueid, (unsigned long long)j->jobid);
	log_debug("%s: job %llu done in %llu ms", j->queueid,
	    (unsigned long long)j->jobid,
	    (unsigned long long)(now_mono_ms() - j->started_ms));
	job_unlink(j);
	job_free(j);
	if (D.stopping && D.jobs == NULL)
		delivery_exit();
}

/* job_parse - an IPC_DELIVERY_JOB payload into a new job */
static struct delivery_job *
job_parse(struct ipc_msg *m)
{
	struct delivery_job *j = xcalloc(1, sizeof(*j));
	uint32_t i, n;

	j->jobid = msg_get_u64(&m->r);
	j->queueid = xstrdup(msg_get_str(&m->r));
	j->sender = xstrdup(msg_get_str(&m->r));
	j->arrival = msg_get_i64(&m->r);
	j->attempt = msg_get_u32(&m->r);
	j->envflags = msg_get_u32(&m->r);
	n = msg_get_u32(&m->r);
	/* each recipient takes at least 9 bytes: never allocate for a lie */
	if (m->r.err || n > (m->r.len - m->r.off) / 9)
		fatalx("queued: IPC_DELIVERY_JOB with %u recipients in %zu bytes", n,
		    m->r.len - m->r.off);
	j->nrcpt = n;
	j->rcpt = xcalloc(n > 0 ? n : 1, sizeof(*j->rcpt));
	for (i = 0; i < n; i++) {
		j->rcpt[i].index = msg_get_u32(&m->r);
		j->rcpt[i].addr = xstrdup(msg_get_str(&m->r));
	}
	msg_end(&m->r, "IPC_DELIVERY_JOB");
	return j;
}

/* job_read - the whole spool file (pread from 0) into j->msg; 0 or errno */
static int
job_read(struct delivery_job *j, int fd)
{
	struct stat st;
	size_t cap, off = 0;
	ssize_t n;

	if (fstat(fd, &st) == -1)
		return errno;
	/* room for the file, one byte to see EOF without growing, and NUL */
	cap = (size_t)st.st_size + 2;
	j->msg = xmalloc(cap);
	for (;;) {
		if (off + 1 >= cap) {
			cap *= 2;
			j->msg = xreallocarray(j->msg, cap, 1);
		}
		n = pread(fd, j->msg + off, cap - off - 1, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return errno;
		if (n == 0)
			break;
		off += (size_t)n;
	}
	j->msg[off] = '\0';
	j->msglen = off;
	return 0;
}

/* job_sub - a sub-job of j for the recipients routed to t */
static struct delivery_job *
job_sub(struct delivery_job *j, const struct conf_transport **tr,
    const struct conf_transport *t)
{
	struct delivery_job *s = xcalloc(1, sizeof(*s));
	size_t i;

	s->jobid = j->jobid;
	s->queueid = xstrdup(j->queueid);
	s->sender = xstrdup(j->sender);
	s->arrival = j->arrival;
	s->attempt = j->attempt;
	s->envflags = j->envflags;
	s->rcpt = xcalloc(j->nrcpt, sizeof(*s->rcpt));
	for (i = 0; i < j->nrcpt; i++) {
		if (tr[i] != t)
			continue;
		s->rcpt[s->nrcpt].index = j->rcpt[i].index;
		s->rcpt[s->nrcpt++].addr = xstrdup(j->rcpt[i].addr);
	}
	s->msg = j->msg;
	s->msglen = j->msglen;
	s->msg_borrowed = 1;
	s->link_gen = j->link_gen;
	s->started_ms = j->started_ms;
	s->parent = j;
	s->transport = t;
	return s;
}

/* sub_done - a sub-job's results go into its parent, which reports once
 * the last sub-job is done */
static void
sub_done(struct delivery_job *s)
{
	struct delivery_job *p = s->parent;
	size_t i, k;
	char *addr;

	for (i = 0; i < s->nrcpt; i++)
		for (k = 0; k < p->nrcpt; k++) {
			if (p->rcpt[k].index != s->rcpt[i].index)
				continue;
			addr = p->rcpt[k].addr;
			rcpt_clear(&p->rcpt[k]);
			p->rcpt[k] = s->rcpt[i];
			p->rcpt[k].addr = addr;
			s->rcpt[i].relay = s->rcpt[i].reply = s->rcpt[i].note = NULL;
			break;
		}
	/* the parent's link generation decides whether its result is sent */
	job_unlink(s);
	job_free(s);
	if (--p->pending == 0)
		delivery_job_done(p);
}

/* job_run - hand a job to the runner of its transport */
static void
job_run(struct delivery_job *j)
{
	size_t i;

	for (i = 0; j->transport != NULL && transports[i].run != NULL; i++) {
		if (transports[i].type == j->transport->type) {
			log_debug("%s: job %llu, %zu recipients, %zu bytes, transport %s",
			    j->queueid, (unsigned long long)j->jobid, j->nrcpt, j->msglen,
			    j->transport->name);
			transports[i].run(j);
			return;
		}
	}
	log_warnx("%s: no usable transport", j->queueid);
	delivery_job_result(j, 0, 4, "4.3.5", NULL, "no usable transport configured");
	delivery_job_done(j);
}

/* job_dispatch - route every recipient; run the job on its transport, or
 * as one sub-job per transport when the recipients' routes differ */
static void
job_dispatch(struct delivery_job *j)
{
	const struct conf_transport **tr = xcalloc(j->nrcpt + 1, sizeof(*tr));
	struct delivery_job **subs;
	struct route_match m;
	size_t i, k, n = 0;

	for (i = 0; i < j->nrcpt; i++) {
		route_lookup(D.ch.conf, j->rcpt[i].addr, j->sender, &m);
		tr[i] = m.transport;
		log_debug("%s: <%s>: %s", j->queueid, j->rcpt[i].addr, m.why);
	}
	for (i = 1; i < j->nrcpt && tr[i] == tr[0]; i++)
		;
	if (i >= j->nrcpt) {
		j->transport = j->nrcpt > 0 ? tr[0] : D.ch.conf->default_transport;
		free(tr);
		job_run(j);
		return;
	}
	subs = xcalloc(j->nrcpt, sizeof(*subs));
	for (i = 0; i < j->nrcpt; i++) {
		for (k = 0; k < i && tr[k] != tr[i]; k++)
			;
		if (k == i)
			subs[n++] = job_sub(j, tr, tr[i]);
	}
	free(tr);
	j->pending = n;
	/* off the list: abandon_jobs() walks sub-jobs, whose end may free it */
	job_unlink(j);
	for (i = 0; i < n; i++)
		job_link(subs[i]);
	/* the last run may finish (and free) the parent */
	for (i = 0; i < n; i++)
		job_run(subs[i]);
	free(subs);
}

/* job_looping - more than hopcount_limit Received: fields: a mail loop,
 * most likely (mail from the sendmail or HTTP paths, or queued before
 * the limit was lowered; smtpd refuses such mail at once). Bounce every
 * recipient with 5.4.6 and finish the job; 1 if so */
static int
job_looping(struct delivery_job *j)
{
	int hops = delivery_header_count(j->msg, j->msglen, "Received");
	int limit = D.ch.conf->hopcount_limit;

	if (hops <= limit)
		return 0;
	log_warnx("%s: %d Received: header fields, more than hopcount_limit %d; "
	    "bounced as a mail loop", j->queueid, hops, limit);
	delivery_job_result(j, 0, 5, "5.4.6", NULL, "Too many hops: %d Received: header "
	    "fields, the limit is %d (a mail loop?)", hops, limit);
	delivery_job_done(j);
	return 1;
}

/* job_sign - DKIM-sign the job's message; 1 to go on delivering it
 * (signed, or unsigned when its content cannot be signed and
 * dkim_unsignable = deliver), 0 when it has its results: deferred for a
 * key that may be fixed, bounced 5.6.0 for content that never signs and
 * dkim_unsignable = bounce */
static int
job_sign(struct delivery_job *j)
{
	char err[512];
	int r = delivery_dkim_sign(j, err, sizeof(err));

	if (r == 0)
		return 1;
	if (r == DKIM_FAIL_CONTENT && !delivery_conf()->dkim_unsignable_bounce) {
		log_warnx("%s: sending it unsigned: the message cannot be DKIM-signed: %s",
		    j->queueid, err);
		stats_add(&stats->dkim_unsignable, 1);
		return 1;
	}
	log_warnx("%s: DKIM signing failed: %s", j->queueid, err);
	if (r == DKIM_FAIL_CONTENT) {
		stats_add(&stats->dkim_unsignable, 1);
		delivery_job_result(j, 0, 5, "5.6.0", NULL, "the message cannot be "
		    "DKIM-signed: %s", err);
	} else {
		delivery_job_result(j, 0, 4, "4.3.0", NULL, "DKIM signing failed: %s", err);
	}
	delivery_job_done(j);
	return 0;
}

/* on_job - IPC_DELIVERY_JOB: read the message, sign it, start delivery */
static void
on_job(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct delivery_job *j;
	int fd = m->fd, rc;

	j = job_parse(m);
	if (fd < 0)
		fatalx("queued: IPC_DELIVERY_JOB %s without a descriptor", j->queueid);
	if (D.stopping) {
		/* queued re-sends it once this process (and its link) is gone */
		log_info("%s: not started, shutting down", j->queueid);
		close(fd);
		job_free(j);
		return;
	}
	j->link_gen = D.link_gen;
	j->started_ms = now_mono_ms();
	job_link(j);
	rc = job_read(j, fd);
	close(fd);
	if (rc != 0) {
		log_warnx("%s: cannot read the queue file: %s", j->queueid, strerror(rc));
		delivery_job_result(j, 0, 4, "4.3.0", NULL, "cannot read the queue file: %s",
		    strerror(rc));
		delivery_job_done(j);
		return;
	}
	if (job_looping(j))
		return;
	if (job_sign(j))
		job_dispatch(j);
}

/* abandon_jobs - the queue link changed: results of running jobs can no
 * longer be reported; stop the ones that have not handed the message over */
static void
abandon_jobs(void)
{
	struct delivery_job *j, *next;

	D.link_gen++;
	for (j = D.jobs; j != NULL; j = next) {
		next = j->next;
		if (j->transport != NULL && (j->transport->type == TRANSPORT_RELAY ||
		    j->transport->type == TRANSPORT_MX) && j->session != NULL)
			delivery_relay_abandon(j);
	}
}

/* on_queue_close - queued went away; the master sends a new link */
static void
on_queue_close(struct ipc_chan *c, void *arg)
{
	log_warnx("queue link closed; waiting for a new one (%zu jobs running)", D.njobs);
	D.queue = NULL;
	abandon_jobs();
}

/* on_queue_link - IPC_CHILD_QUEUE_LINK: a restarted queued's link */
static void
on_queue_link(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	msg_end(&m->r, "IPC_CHILD_QUEUE_LINK");
	if (m->fd < 0)
		fatalx("master: IPC_CHILD_QUEUE_LINK without a descriptor");
	if (D.queue != NULL) {
		ipc_chan_free(&D.queue);
		abandon_jobs();
	}
	D.queue = ipc_chan_new(D.ch.base, m->fd, "queued", queue_table, on_queue_close, NULL);
	log_info("new queue link");
}

/* on_grace - IPC_CHILD_STOP's grace ran out */
static void
on_grace(evutil_socket_t fd, short what, void *arg)
{
	log_warnx("stop: grace period over, %zu jobs unfinished (queued retries them)",
	    D.njobs);
	delivery_exit();
}

/* on_stop - IPC_CHILD_STOP: take no new jobs, finish within the grace */
static void
on_stop(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct timeval tv = { 0, 0 };
	uint32_t grace;

	grace = msg_get_u32(&m->r);
	msg_end(&m->r, "IPC_CHILD_STOP");
	if (D.stopping)
		return;
	D.stopping = 1;
	log_info("stopping: %zu jobs running, grace %us", D.njobs, grace);
	if (D.jobs == NULL)
		delivery_exit();
	tv.tv_sec = grace;
	D.grace = evtimer_new(D.ch.base, on_grace, NULL);
	if (D.grace == NULL || evtimer_add(D.grace, &tv) == -1)
		fatalx("cannot arm the stop timer");
}

/* delivery_main - start-up in the order proc.h prescribes, then the loop */
int
delivery_main(int argc, char **argv)
{
	child_start(&D.ch, PROC_DELIVERY, argc, argv, control_table);
	/* still privileged: the keys are readable only now */
	delivery_dkim_load(D.ch.conf);
	priv_drop(D.ch.conf->user);
	delivery_http_init();
	D.queue = ipc_chan_new(D.ch.base, PROC_FD_QUEUE, "queued", queue_table,
	    on_queue_close, NULL);
	child_ready(&D.ch);
	log_info("started, default transport %s",
	    D.ch.conf->default_transport != NULL ? D.ch.conf->default_transport->name :
	    "(none)");
	event_base_dispatch(D.ch.base);
	fatalx("event loop ended");
}

/* main - postern-delivery */
int
main(int argc, char **argv)
{
	delivery_main(argc, argv);
}
