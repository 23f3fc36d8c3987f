/*
 * httpd_ctl.c - httpd's client of queued's control socket: one
 * connection per request, the IPC_QUEUED_CTL_REQUEST -> IPC_CTL_ROW* ->
 * IPC_CTL_DONE exchange posternctl uses, with the rows collected and
 * handed to a callback (the admin API, the status page's destinations).
 *
 * Owns: struct ctlreq, from the request until its callback has run; it
 * is freed from the event loop afterwards (never inside an ipc callback
 * that still uses the channel).
 * SECURITY: queued treats the connection as any local client's and
 * decides from SO_PEERCRED what httpd may do (httpd runs as queued's
 * user); rows are parsed as JSON and never passed on as text.
 * A request is bounded: CTL_CONNECT seconds to connect, CTL_ANSWER for
 * the whole exchange.
 * STANDARDS: RFC 8259 (the rows).
 */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf.h"
#include "ctlsock.h"
#include "httpd.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "util.h"

#define CTL_CONNECT 10          /* seconds for connecting to queued */
#define CTL_ANSWER 30           /* seconds for the whole answer */

/* One request to queued. */
struct ctlreq {
	struct ipc_chan *chan;
	struct event_base *base;
	struct event *timer;
	json_t *rows;
	httpd_ctl_fn *done;
	void *arg;
	int answered, finishing;
};

static void ctl_row(struct ipc_chan *, struct ipc_msg *, void *);
static void ctl_done(struct ipc_chan *, struct ipc_msg *, void *);

static const struct ipc_handler ctl_table[] = {
	{ IPC_CTL_ROW, ctl_row },
	{ IPC_CTL_DONE, ctl_done },
	{ 0, NULL },
};

/* ctl_free - release the request (from the event loop) */
static void
ctl_free(evutil_socket_t fd, short what, void *arg)
{
	struct ctlreq *q = arg;

	if (q->chan != NULL)
		ipc_chan_free(&q->chan);
	if (q->timer != NULL)
		event_free(q->timer);
	json_decref(q->rows);
	free(q);
}

/* ctl_finish - the callback once, then ctl_free after this round */
static void
ctl_finish(struct ctlreq *q, int status, const char *text, int fd)
{
	if (!q->answered) {
		q->answered = 1;
		q->done(q->arg, status, text, q->rows, fd);
	} else if (fd >= 0)
		close(fd);
	if (q->finishing)
		return;
	q->finishing = 1;
	event_base_once(q->base, -1, EV_TIMEOUT, ctl_free, q, NULL);
}

/* ctl_row - IPC_CTL_ROW: keep the JSON object */
static void
ctl_row(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct ctlreq *q = arg;
	json_t *j = json_loads(msg_get_str(&m->r), 0, NULL);

	msg_end(&m->r, "IPC_CTL_ROW");
	if (j != NULL)
		json_array_append_new(q->rows, j);
}

/* ctl_done - IPC_CTL_DONE: the callback gets status, text and fd */
static void
ctl_done(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct ctlreq *q = arg;
	uint32_t status = msg_get_u32(&m->r);
	const char *text = msg_get_str(&m->r);
	int fd = m->fd;

	msg_end(&m->r, "IPC_CTL_DONE");
	m->fd = -1;
	ctl_finish(q, (int)status, text, fd);
}

/* ctl_closed - queued closed the connection (before DONE: lost) */
static void
ctl_closed(struct ipc_chan *c, void *arg)
{
	struct ctlreq *q = arg;

	q->chan = NULL;         /* ipc frees it after we return */
	ctl_finish(q, -1, "queue control connection lost", -1);
}

/* ctl_timeout - no answer within CTL_ANSWER */
static void
ctl_timeout(evutil_socket_t fd, short what, void *arg)
{
	log_warnx("control: queued did not answer within %ds", CTL_ANSWER);
	ctl_finish(arg, -1, "queue did not answer", -1);
}

/* httpd_ctl - connect, send the command, collect the answer */
void
httpd_ctl(struct event_base *base, const char *command, const char *argument,
    uint32_t flags, httpd_ctl_fn *done, void *arg)
{
	struct timeval tv = { CTL_ANSWER, 0 };
	struct ctlreq *q;
	struct msgbuf b;
	int fd;

	if ((fd = ctlsock_connect(httpd_conf()->control_socket, CTL_CONNECT)) == -1) {
		log_warn("control: cannot reach queued at %s",
		    httpd_conf()->control_socket);
		done(arg, -1, "queue unavailable", NULL, -1);
		return;
	}
	q = xcalloc(1, sizeof(*q));
	q->base = base;
	q->done = done;
	q->arg = arg;
	q->rows = json_array();
	q->timer = evtimer_new(base, ctl_timeout, q);
	if (q->rows == NULL || q->timer == NULL)
		fatalx("out of memory");
	evtimer_add(q->timer, &tv);
	q->chan = ipc_chan_new(base, fd, "control", ctl_table, ctl_closed, q);
	ipc_chan_set_untrusted(q->chan);
	msgbuf_init(&b);
	msg_add_str(&b, command);
	msg_add_str(&b, argument);
	msg_add_u32(&b, flags);
	ipc_send(q->chan, IPC_QUEUED_CTL_REQUEST, &b, -1);
	msgbuf_free(&b);
}
