/*
 * queued_control.c - the queue control socket: posternctl's queue
 * commands (list, show, flush, hold, release, delete, requeue), the
 * operator console's (search, destinations, flush-destination: httpd's
 * admin API and status page) and message submission by
 * postern-sendmail.
 *
 * The master binds control_socket (mode 0666) and hands it to queued as
 * PROC_FD_LISTEN0 (POSTERN_LISTEN_FDS=1); queued accepts on it. Each
 * connection is an ipc_chan with its own handler table:
 *   IPC_QUEUED_CTL_REQUEST    one command -> IPC_CTL_ROW* + IPC_CTL_DONE
 *                             (a list goes out CTL_LIST_BATCH rows per
 *                             event-loop round, and waits while the
 *                             client is slow to read)
 *   IPC_QUEUED_MSG_OPEN       a spool file for a new message, with the
 *                             Received: header already written by queued
 *   IPC_QUEUED_MSG_COMMIT     checked here, then the same group commit
 *                             as SMTP (queued_commit.c): the same
 *                             durability, the same replies
 *   IPC_QUEUED_MSG_ABORT
 * A connection is a struct qlink of its own (never on the links list of
 * queued_link.c), so queued_commit.c treats it like an smtpd link.
 *
 * Owns: the control connections (struct ctlconn): at most CTL_MAX_OTHERS
 * from unprivileged callers, so that other users holding connections
 * open can never lock root and the postern user out (they have
 * CTL_MAX_CONNS in all).
 *
 * SECURITY: peers are ANY local user. The caller's uid comes from
 * SO_PEERCRED, never from the payload: root and the uid queued runs as
 * (conf->user, or the starting uid when user is empty) may change the
 * queue and read message contents (show --message); anyone may list, show
 * envelopes and submit. Every payload is checked with msg_ok() (never
 * msg_end(), which would let a local user kill queued): a malformed frame
 * or a protocol error closes that connection only, and so does
 * smtpd_timeout without a request. One message at a time per
 * connection; the client never names a path; client, helo and
 * authenticated user of a submission are set here from the credentials.
 * STANDARDS: RFC 5321 4.4 (the Received: trace field), RFC 5322 3.6.7.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "proc.h"
#include "queued.h"
#include "queued_dstat.h"
#include "util.h"

#define CTL_MAX_CONNS 256      /* every connection holds a descriptor */
#define CTL_MAX_OTHERS 64       /* of them, from unprivileged callers */
#define CTL_LIST_BATCH 500      /* rows per event-loop round */
#define CTL_LIST_PENDING (1024u * 1024)  /* wait while more is unsent */
#define CTL_SEARCH_MAX 100      /* messages a search returns */
#define CTL_TEXT_MAX 255        /* bytes of a search or destination argument */

struct ctlconn;

/* A walk over the whole queue, batch by batch (list, search,
 * destinations): row for every message (1: stop early), then end, which
 * sends IPC_CTL_DONE. */
struct ctlwalk {
	int (*row)(struct ctlconn *cc, const struct qmsg *m);
	void (*end)(struct ctlconn *cc);
};

/* One control connection. */
struct ctlconn {
	struct qlink link;      /* link.chan, link.txns for submissions */
	TAILQ_ENTRY(ctlconn) entry;
	uid_t uid;
	pid_t pid;
	int privileged;         /* root or queued's own uid */
	uint64_t hdrlen;        /* bytes of Received: in the open message */
	struct event *idle_ev;  /* smtpd_timeout without a request: close */
	struct event *list_ev;  /* the next batch of a long list */
	int listing;            /* a walk is under way */
	const struct ctlwalk *walk;     /* which */
	char list_after[QUEUE_ID_LEN + 1];      /* its last id seen */
	char arg[CTL_TEXT_MAX + 1];     /* search: the text looked for */
	unsigned found;                 /* search: messages sent */
	struct qdwalk *tally;           /* destinations: the tally so far */
};

/* One queue command. */
struct ctlcmd {
	const char *name;
	int needs_id;           /* 1 required, 0 none, -1 optional */
	int text;               /* the argument is text, not a queue id */
	int privileged;         /* changes the queue */
	int (*op)(const char *id);
	const char *done;       /* "held", ... for the reply text */
};

static int op_list(const char *id);
static int op_show(const char *id);
static int op_flush(const char *id);
static int op_search(const char *text);
static int op_destinations(const char *id);

static const struct ctlcmd ctlcmds[] = {
	{ "list", 0, 0, 0, op_list, "listed" },
	{ "show", 1, 0, 0, op_show, "shown" },
	{ "flush", -1, 0, 1, op_flush, "flushed" },
	{ "hold", 1, 0, 1, sched_hold, "held" },
	{ "release", 1, 0, 1, sched_release, "released" },
	{ "delete", 1, 0, 1, sched_delete, "deleted" },
	{ "requeue", 1, 0, 1, sched_requeue, "requeued" },
	{ "search", 1, 1, 0, op_search, "found" },
	{ "destinations", 0, 0, 0, op_destinations, "listed" },
	{ "flush-destination", 1, 1, 1, sched_flush_dest, "flushed" },
};

static TAILQ_HEAD(, ctlconn) conns = TAILQ_HEAD_INITIALIZER(conns);
static unsigned nconns;
static unsigned nothers;        /* unprivileged connections */
static struct event *accept_ev;
/* the request being served, for op_list/op_show */
static struct ctlconn *cur;
static uint32_t cur_flags;

static void conn_closed(struct ipc_chan *c, void *arg);

/* ---- replies ------------------------------------------------------------ */

/* conn_drop - a protocol error: forget the connection now (ipc_chan_free
 * does not call conn_closed, and is safe inside a handler) */
static void
conn_drop(struct ctlconn *cc, const char *why)
{
	struct ipc_chan *c = cc->link.chan;

	log_warnx("%s: %s, closing", cc->link.name, why);
	conn_closed(c, cc);
	ipc_chan_free(&c);
}

/* conn_idle - the client sent nothing for smtpd_timeout: close */
static void
conn_idle(evutil_socket_t fd, short what, void *arg)
{
	conn_drop(arg, "idle for too long");
}

/* conn_touch - a request arrived: restart the idle timer */
static void
conn_touch(struct ctlconn *cc)
{
	struct timeval tv = { qenv.conf->smtpd_timeout, 0 };

	evtimer_add(cc->idle_ev, &tv);
}

/* no_fd - control clients pass no descriptors: close a stray one */
static void
no_fd(struct ipc_msg *m)
{
	if (m->fd != -1) {
		close(m->fd);
		m->fd = -1;
	}
}

/* send_done - IPC_CTL_DONE: status, text, optional fd */
static void
send_done(struct ctlconn *cc, int status, const char *text, int fd)
{
	struct msgbuf b;

	msgbuf_init(&b);
	msg_add_u32(&b, (uint32_t)status);
	msg_add_str(&b, text);
	ipc_send(cc->link.chan, IPC_CTL_DONE, &b, fd);
	msgbuf_free(&b);
}

/* send_row - IPC_CTL_ROW with one JSON object (consumed) */
static void
send_row(struct ctlconn *cc, json_t *o)
{
	struct msgbuf b;
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);

	json_decref(o);
	if (s == NULL)
		fatalx("json_dumps: out of memory");
	msgbuf_init(&b);
	msg_add_str(&b, s);
	ipc_send(cc->link.chan, IPC_CTL_ROW, &b, -1);
	msgbuf_free(&b);
	free(s);
}

/* ---- list and show ------------------------------------------------------ */

/* iso_time - unix seconds as "2026-11-22T03:00:00Z" */
static const char *
iso_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strlcpy(buf, "?", len);
	return buf;
}

/* rcpt_json - one recipient as a JSON object */
static json_t *
rcpt_json(const struct qrcpt *r)
{
	char when[32];
	json_t *o = json_object();

	json_object_set_new(o, "address", json_string(r->address ? r->address : ""));
	json_object_set_new(o, "state", json_string(qrcpt_state_name(r->state)));
	json_object_set_new(o, "attempts", json_integer(r->attempts));
	if (r->state == RCPT_DEFERRED || r->state == RCPT_PENDING) {
		json_object_set_new(o, "next_attempt", json_integer(r->next_attempt));
		json_object_set_new(o, "next_attempt_time",
		    json_string(iso_time(r->next_attempt, when, sizeof(when))));
	}
	json_object_set_new(o, "in_flight", json_boolean(r->job != NULL));
	json_object_set_new(o, "dsn", json_string(r->last_dsn ? r->last_dsn : ""));
	json_object_set_new(o, "last_reply",
	    json_string(r->last_reply ? r->last_reply : ""));
	return o;
}

/* msg_json - one message (envelope and recipients) as a JSON object */
static json_t *
msg_json(const struct qmsg *m, int detail)
{
	char when[32];
	json_t *o = json_object(), *rc = json_array();
	uint32_t i;

	json_object_set_new(o, "id", json_string(m->id));
	json_object_set_new(o, "size", json_integer((json_int_t)m->size));
	json_object_set_new(o, "arrival", json_integer(m->arrival));
	json_object_set_new(o, "arrival_time",
	    json_string(iso_time(m->arrival, when, sizeof(when))));
	json_object_set_new(o, "sender", json_string(m->sender ? m->sender : ""));
	if (detail) {
		json_object_set_new(o, "client", json_string(m->client ? m->client : ""));
		json_object_set_new(o, "helo", json_string(m->helo ? m->helo : ""));
		json_object_set_new(o, "auth_user",
		    json_string(m->authuser ? m->authuser : ""));
	}
	if (m->broken)
		json_object_set_new(o, "broken", json_true());
	for (i = 0; i < m->nrcpt && !m->broken; i++)
		json_array_append_new(rc, rcpt_json(&m->rcpt[i]));
	json_object_set_new(o, "recipients", rc);
	return o;
}

/* list_next - the first message after id "after" ("" : the first) */
static struct qmsg *
list_next(const char *after)
{
	struct qmsg *m;

	if (*after == '\0')
		return qsched_first();
	if ((m = qmsg_find(after)) != NULL)
		return qsched_next(m);
	/* it left the queue meanwhile: find its place (ids are ordered) */
	for (m = qsched_first(); m != NULL && strcmp(m->id, after) <= 0;
	    m = qsched_next(m))
		;
	return m;
}

/* walk_batch - the walk's row function for up to CTL_LIST_BATCH
 * messages, then yield to the event loop (a queue of a million messages
 * is never walked in one go, and a slow reader makes us wait instead of
 * buffering it all); its end function at the end */
static void
walk_batch(struct ctlconn *cc)
{
	struct timeval tv = { 0, 0 };
	struct qmsg *m;
	unsigned n = 0;
	int stop = 0;

	for (m = list_next(cc->list_after); m != NULL && n < CTL_LIST_BATCH &&
	    !stop; m = qsched_next(m)) {
		if (m->deleting)
			continue;
		stop = cc->walk->row(cc, m);
		strlcpy(cc->list_after, m->id, sizeof(cc->list_after));
		n++;
	}
	if (m == NULL || stop) {
		cc->listing = 0;
		cc->walk->end(cc);
		return;
	}
	if (ipc_pending(cc->link.chan) > CTL_LIST_PENDING)
		tv.tv_usec = 20000;
	evtimer_add(cc->list_ev, &tv);
}

/* list_more - the walk timer: the next batch */
static void
list_more(evutil_socket_t fd, short what, void *arg)
{
	struct ctlconn *cc = arg;

	conn_touch(cc);
	walk_batch(cc);
}

/* walk_start - walk the queue for the current request */
static int
walk_start(const struct ctlwalk *w)
{
	cur->listing = 1;
	cur->walk = w;
	cur->list_after[0] = '\0';
	cur->found = 0;
	walk_batch(cur);
	return -1;              /* answered by the walk's end */
}

/* list_row, list_end - list: every message */
static int
list_row(struct ctlconn *cc, const struct qmsg *m)
{
	send_row(cc, msg_json(m, 0));
	return 0;
}

static void
list_end(struct ctlconn *cc)
{
	send_done(cc, 0, "listed", -1);
}

/* search_row, search_end - search: the messages qbrowse_match() finds,
 * at most CTL_SEARCH_MAX */
static int
search_row(struct ctlconn *cc, const struct qmsg *m)
{
	if (!qbrowse_match(m, cc->arg))
		return 0;
	send_row(cc, msg_json(m, 0));
	return ++cc->found >= CTL_SEARCH_MAX;
}

static void
search_end(struct ctlconn *cc)
{
	send_done(cc, 0, cc->found >= CTL_SEARCH_MAX ? "found (more not shown)" :
	    "found", -1);
}

/* dest_row, dest_send, dest_end - destinations: the queue tallied by
 * destination, then one row per destination */
static int
dest_row(struct ctlconn *cc, const struct qmsg *m)
{
	qbrowse_tally(cc->tally, m);
	return 0;
}

static void
dest_send(const struct qdstat_row *r, void *arg)
{
	send_row(arg, qbrowse_dest_json(r));
}

static void
dest_end(struct ctlconn *cc)
{
	qdwalk_rows(cc->tally, time(NULL), dest_send, cc);
	qdwalk_free(&cc->tally);
	send_done(cc, 0, "listed", -1);
}

static const struct ctlwalk list_walk = { list_row, list_end };
static const struct ctlwalk search_walk = { search_row, search_end };
static const struct ctlwalk dest_walk = { dest_row, dest_end };

/* op_list - every message, in id (arrival) order, batch by batch */
static int
op_list(const char *id)
{
	return walk_start(&list_walk);
}

/* op_search - the messages whose id, sender or a recipient holds text */
static int
op_search(const char *text)
{
	strlcpy(cur->arg, text, sizeof(cur->arg));
	return walk_start(&search_walk);
}

/* op_destinations - the queue by destination, with their histories */
static int
op_destinations(const char *id)
{
	qdwalk_free(&cur->tally);
	cur->tally = qdwalk_new();
	return walk_start(&dest_walk);
}

/* op_show - one message in detail; its file too when asked (and allowed) */
static int
op_show(const char *id)
{
	struct qmsg *m = qmsg_find(id);
	int fd = -1, err;

	if (m == NULL || m->deleting)
		return ENOENT;
	if ((cur_flags & IPC_CTL_F_MESSAGE) && !cur->privileged)
		return EPERM;
	if ((cur_flags & IPC_CTL_F_MESSAGE) && (err = qspool_msg_open(id, &fd)) != 0)
		return err;
	send_row(cur, msg_json(m, 1));
	send_done(cur, 0, "shown", fd);
	return -1;              /* answered here: the fd travels with DONE */
}

/* op_flush - one message, or the whole queue when id is "" */
static int
op_flush(const char *id)
{
	return sched_flush(*id != '\0' ? id : NULL);
}

/* ---- requests ----------------------------------------------------------- */

/* ctlcmd_find - the command called name, or NULL */
static const struct ctlcmd *
ctlcmd_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(ctlcmds) / sizeof(ctlcmds[0]); i++)
		if (strcmp(ctlcmds[i].name, name) == 0)
			return &ctlcmds[i];
	return NULL;
}

/* text_ok - a search or destination argument: 1 to CTL_TEXT_MAX bytes,
 * no control characters */
static int
text_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > CTL_TEXT_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* request_check - why cmd cannot run for cc with id (NULL: it can) */
static const char *
request_check(const struct ctlconn *cc, const struct ctlcmd *cmd,
    const char *id, int *status)
{
	*status = EINVAL;
	if (cmd == NULL)
		return "unknown command";
	if (cmd->text && !text_ok(id))
		return "the argument must be 1 to 255 bytes without control "
		    "characters";
	if (cmd->needs_id == 1 && *id == '\0')
		return "a queue id is required";
	if (cmd->needs_id == 0 && *id != '\0')
		return "this command takes no queue id";
	if (*id != '\0' && !cmd->text && !queue_id_valid(id)) {
		*status = ENOENT;
		return "no such message";
	}
	if (cmd->privileged && !cc->privileged) {
		*status = EPERM;
		return "permission denied: only root and the postern user may "
		    "change the queue";
	}
	return NULL;
}

/* done_text - the reply text for status after cmd on id */
static const char *
done_text(const struct ctlcmd *cmd, int status, char *buf, size_t len)
{
	if (status == ENOENT)
		return cmd->text ? "no such destination" : "no such message";
	if (status == EPERM)
		return "permission denied: only root and the postern user may read "
		    "message contents";
	if (status != 0)
		snprintf(buf, len, "%s failed: %s", cmd->name, strerror(status));
	else
		snprintf(buf, len, "%s", cmd->done);
	return buf;
}

/* ctl_request - IPC_QUEUED_CTL_REQUEST */
static void
ctl_request(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct ctlconn *cc = arg;
	const struct ctlcmd *cmd;
	const char *name, *id, *why;
	char text[256];
	uint32_t flags;
	int status;

	name = msg_get_str(&m->r);
	id = msg_get_str(&m->r);
	flags = msg_get_u32(&m->r);
	no_fd(m);
	conn_touch(cc);
	if (!msg_ok(&m->r)) {
		conn_drop(cc, "malformed control request");
		return;
	}
	cmd = ctlcmd_find(name);
	if (cc->listing) {
		/* one request at a time: the client broke the protocol */
		conn_drop(cc, "request during a list");
		return;
	}
	if ((why = request_check(cc, cmd, id, &status)) != NULL) {
		send_done(cc, status, why, -1);
		return;
	}
	cur = cc;
	cur_flags = flags;
	status = cmd->op(id);
	cur = NULL;
	if (status == -1)
		return;
	if (cmd->privileged && status == 0)
		log_info("control: %s %s by uid %u", cmd->name,
		    *id ? id : "(all)", (unsigned)cc->uid);
	send_done(cc, status, done_text(cmd, status, text, sizeof(text)), -1);
}

/* ---- submission (postern-sendmail) --------------------------------------- */

/* user_name - the login name of uid into buf, or "uid N" */
static const char *
user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL && pw->pw_name != NULL)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)uid);
	return buf;
}

/* write_received - the trace field naming the caller, at the start of
 * the new spool file t (shared offset: the client writes after it) */
static int
write_received(struct ctlconn *cc, struct qtxn *t)
{
	char date[64], hdr[512];
	int n;

	rfc5322_date(time(NULL), date, sizeof(date));
	n = snprintf(hdr, sizeof(hdr), "Received: by %s (Postern, from userid %u)"
	    "\r\n\tid %s; %s\r\n", qenv.conf->hostname, (unsigned)cc->uid, t->id,
	    date);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return EINVAL;
	if (write(t->fd, hdr, (size_t)n) != n)
		return errno != 0 ? errno : EIO;
	cc->hdrlen = (uint64_t)n;
	return 0;
}

/* ctl_open - IPC_QUEUED_MSG_OPEN: queued_commit.c makes the file and
 * replies; the Received: header goes in before the reply leaves */
static void
ctl_open(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct ctlconn *cc = arg;
	struct qtxn *t;

	(void)msg_get_u32(&m->r);
	no_fd(m);
	conn_touch(cc);
	if (!msg_ok(&m->r) || !TAILQ_EMPTY(&cc->link.txns)) {
		conn_drop(cc, "malformed or second MSG_OPEN");
		return;
	}
	m->r.off = 0;
	cc->hdrlen = 0;
	qcommit_open(c, m, &cc->link);
	if ((t = TAILQ_FIRST(&cc->link.txns)) != NULL &&
	    write_received(cc, t) != 0) {
		/* the client finds out at COMMIT: the size will not match */
		log_warn("%s: cannot write the Received: header", t->id);
		cc->hdrlen = UINT64_MAX / 2;
	}
}

/* commit_read - check a MSG_COMMIT from a local user and rebuild it with
 * the trusted fields; 0, or an errno for the reply (-1: malformed) */
static int
commit_read(struct ctlconn *cc, struct msgreader *r, struct msgbuf *out,
    struct qtxn **tp)
{
	char who[128];
	const char *id, *sender, *rcpt, *why;
	struct mailaddr a;
	uint32_t reqid, nrcpt, i;
	uint64_t size;
	int err = 0;

	msgbuf_init(out);
	reqid = msg_get_u32(r);
	id = msg_get_str(r);
	sender = msg_get_str(r);
	size = msg_get_u64(r);
	(void)msg_get_str(r);
	(void)msg_get_str(r);
	(void)msg_get_str(r);
	nrcpt = msg_get_u32(r);
	*tp = TAILQ_FIRST(&cc->link.txns);
	if (r->err || *tp == NULL || (*tp)->committing || strcmp((*tp)->id, id) != 0)
		return -1;
	if (*sender != '\0' && addr_parse(sender, ADDR_ALLOW_UTF8, &a, &why) == -1)
		err = EINVAL;
	if (nrcpt == 0 || nrcpt > (uint32_t)qenv.conf->max_recipients)
		err = E2BIG;
	if (size > qenv.conf->max_message_size)
		err = EFBIG;
	msg_add_u32(out, reqid);
	msg_add_str(out, id);
	msg_add_str(out, sender);
	msg_add_u64(out, size + cc->hdrlen);
	msg_add_str(out, "local");
	msg_add_str(out, "");
	msg_add_str(out, user_name(cc->uid, who, sizeof(who)));
	msg_add_u32(out, nrcpt);
	for (i = 0; i < nrcpt && !r->err; i++) {
		rcpt = msg_get_str(r);
		if (addr_parse(rcpt, ADDR_ALLOW_UTF8, &a, &why) == -1)
			err = EINVAL;
		msg_add_str(out, rcpt);
	}
	(void)msg_get_u32(r);
	msg_add_u32(out, 0);    /* no MAIL parameters: inferred at delivery */
	if (err == 0 && !msg_ok(r))
		return -1;
	return err;
}

/* commit_refuse - MSG_COMMITTED with err, and the file removed */
static void
commit_refuse(struct ctlconn *cc, struct qtxn *t, uint32_t reqid, int err)
{
	struct ipc_msg am = { .type = IPC_QUEUED_MSG_ABORT, .fd = -1 };
	struct msgbuf b;
	char id[QUEUE_ID_LEN + 1];

	strlcpy(id, t->id, sizeof(id));
	msgbuf_init(&b);
	msg_add_str(&b, id);
	msgreader_init(&am.r, b.data, b.len);
	qcommit_abort(cc->link.chan, &am, &cc->link);
	msgbuf_reset(&b);
	msg_add_u32(&b, reqid);
	msg_add_u32(&b, (uint32_t)err);
	msg_add_str(&b, id);
	ipc_send(cc->link.chan, IPC_SMTPD_MSG_COMMITTED, &b, -1);
	msgbuf_free(&b);
	log_info("%s: submission by uid %u refused: %s", id, (unsigned)cc->uid,
	    strerror(err));
}

/* ctl_commit - IPC_QUEUED_MSG_COMMIT: checked, then the group commit */
static void
ctl_commit(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct ctlconn *cc = arg;
	struct ipc_msg nm = { .type = IPC_QUEUED_MSG_COMMIT, .fd = -1 };
	struct msgbuf out;
	struct qtxn *t;
	uint32_t reqid;
	int err;

	no_fd(m);
	conn_touch(cc);
	err = commit_read(cc, &m->r, &out, &t);
	if (err == -1) {
		msgbuf_free(&out);
		conn_drop(cc, "malformed or unexpected MSG_COMMIT");
		return;
	}
	if (err != 0) {
		m->r.off = 0;
		reqid = msg_get_u32(&m->r);
		commit_refuse(cc, t, reqid, err);
		msgbuf_free(&out);
		return;
	}
	log_info("%s: submitted by uid %u (pid %d)", t->id, (unsigned)cc->uid,
	    (int)cc->pid);
	msgreader_init(&nm.r, out.data, out.len);
	qcommit_commit(c, &nm, &cc->link);
	msgbuf_free(&out);
}

/* ctl_abort - IPC_QUEUED_MSG_ABORT: only for the connection's own file */
static void
ctl_abort(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct ctlconn *cc = arg;
	const char *id = msg_get_str(&m->r);

	no_fd(m);
	conn_touch(cc);
	if (!msg_ok(&m->r)) {
		conn_drop(cc, "malformed MSG_ABORT");
		return;
	}
	if (*id != '\0' && queue_id_valid(id)) {
		m->r.off = 0;
		qcommit_abort(c, m, &cc->link);
	}
}

static const struct ipc_handler ctl_table[] = {
	{ IPC_QUEUED_CTL_REQUEST, ctl_request },
	{ IPC_QUEUED_MSG_OPEN, ctl_open },
	{ IPC_QUEUED_MSG_COMMIT, ctl_commit },
	{ IPC_QUEUED_MSG_ABORT, ctl_abort },
	{ 0, NULL },
};

/* ---- connections -------------------------------------------------------- */

/* conn_closed - the client went away (or broke the protocol) */
static void
conn_closed(struct ipc_chan *c, void *arg)
{
	struct ctlconn *cc = arg;

	event_free(cc->idle_ev);
	event_free(cc->list_ev);
	qdwalk_free(&cc->tally);
	qcommit_link_closed(&cc->link);
	TAILQ_REMOVE(&conns, cc, entry);
	nconns--;
	if (!cc->privileged)
		nothers--;
	free(cc);
}

/* conn_new - wrap an accepted socket after reading its credentials */
static void
conn_new(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct ctlconn *cc;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_warn("control: SO_PEERCRED");
		close(fd);
		return;
	}
	if (cred.uid != 0 && cred.uid != geteuid() && nothers >= CTL_MAX_OTHERS) {
		log_warnx("control: %u connections from other users open, refusing "
		    "uid %u", nothers, (unsigned)cred.uid);
		close(fd);
		return;
	}
	cc = xcalloc(1, sizeof(*cc));
	cc->uid = cred.uid;
	cc->pid = cred.pid;
	cc->privileged = cred.uid == 0 || cred.uid == geteuid();
	cc->link.role = PROC_MASTER;
	snprintf(cc->link.name, sizeof(cc->link.name), "control[uid %u]",
	    (unsigned)cred.uid);
	TAILQ_INIT(&cc->link.txns);
	TAILQ_INIT(&cc->link.jobs);
	cc->link.chan = ipc_chan_new(qenv.base, fd, cc->link.name, ctl_table,
	    conn_closed, cc);
	ipc_chan_set_untrusted(cc->link.chan);
	if ((cc->idle_ev = evtimer_new(qenv.base, conn_idle, cc)) == NULL ||
	    (cc->list_ev = evtimer_new(qenv.base, list_more, cc)) == NULL)
		fatalx("evtimer_new");
	conn_touch(cc);
	TAILQ_INSERT_TAIL(&conns, cc, entry);
	nconns++;
	if (!cc->privileged)
		nothers++;
	log_debug("control: connection from uid %u pid %d", (unsigned)cred.uid,
	    (int)cred.pid);
}

/* ctl_accept - the control socket is readable: take the waiting clients */
static void
ctl_accept(evutil_socket_t lfd, short what, void *arg)
{
	int fd, n;

	for (n = 0; n < 16; n++) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("control: accept");
			return;
		}
		if (nconns >= CTL_MAX_CONNS) {
			log_warnx("control: %u connections open, refusing one", nconns);
			close(fd);
			continue;
		}
		conn_new(fd);
	}
}

/* qcontrol_init - accept on the inherited control socket, if any */
void
qcontrol_init(void)
{
	if (child_listen_fds() < 1) {
		log_info("no control socket: queue control is off");
		return;
	}
	if (set_nonblock(PROC_FD_LISTEN0) == -1 || set_cloexec(PROC_FD_LISTEN0) == -1)
		fatal("control socket");
	accept_ev = event_new(qenv.base, PROC_FD_LISTEN0, EV_READ | EV_PERSIST,
	    ctl_accept, NULL);
	if (accept_ev == NULL || event_add(accept_ev, NULL) == -1)
		fatalx("cannot watch the control socket");
}
