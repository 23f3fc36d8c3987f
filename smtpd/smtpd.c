/*
 * smtpd.c - postern-smtpd: start-up, the listening sockets, the control
 * link to the master and the graceful stop.
 *
 * Owns: the process state (struct smtpd), the evconnlistener for every
 * inherited listening socket (PROC_FD_LISTEN0 + i is conf->listen[i]),
 * and the control handlers IPC_CHILD_STOP and IPC_CHILD_QUEUE_LINK.
 *
 * SECURITY: every byte from the network is untrusted. The process starts
 * with the master's privileges only to read the configuration, then drops
 * to conf->user (priv_drop) before the first connection is accepted; the
 * TLS certificates and keys are read just before that (smtpd_tls.c). It
 * never opens spool paths itself: queued passes one descriptor per
 * message. Peers: the master (control link) and queued
 * (queue link), both trusted; malformed frames from them are fatal.
 *
 * STANDARDS: RFC 5321 (SMTP), RFC 1869 (ESMTP), RFC 1870 (SIZE),
 * RFC 2920 (PIPELINING), RFC 6152 (8BITMIME), RFC 2034 and RFC 3463
 * (enhanced status codes), RFC 3207 (STARTTLS), RFC 4954 (AUTH).
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conf.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "privdrop.h"
#include "proc.h"
#include "util.h"

#include "smtpd.h"

struct smtpd smtpd;
static int exiting;             /* smtpd_exit() is running */

static void ctl_stop(struct ipc_chan *c, struct ipc_msg *m, void *arg);
static void ctl_queue_link(struct ipc_chan *c, struct ipc_msg *m, void *arg);

/* What the master may tell us. */
static const struct ipc_handler control_table[] = {
	{ IPC_CHILD_STOP, ctl_stop },
	{ IPC_CHILD_QUEUE_LINK, ctl_queue_link },
	{ 0, NULL },
};

/* listener_accept - a new TCP connection on listener i. Replies go out
 * at once (TCP_NODELAY): a reply written while an earlier one is still
 * unacknowledged (the 354 after a pipelined MAIL, RCPT, DATA) would
 * otherwise wait for the client's delayed ACK, about 40 ms a message.
 * Pipelined replies still leave in one segment: they are buffered and
 * written together once the input is processed. */
static void
listener_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	int one = 1;

	(void)l;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		log_warn("setsockopt TCP_NODELAY");
	session_new(fd, sa, salen, (int)(intptr_t)arg);
}

/* listener_name - the configured name of listener i, for logs */
static const char *
listener_name(int i)
{
	if (i >= 0 && (size_t)i < smtpd.conf->nlisten)
		return smtpd.conf->listen[i].name;
	return "?";
}

/* listener_resume - re-enable a listener paused after an accept error */
static void
listener_resume(evutil_socket_t fd, short ev, void *arg)
{
	int i = (int)(intptr_t)arg;

	/* the listeners are gone once a stop began */
	if (!smtpd.stopping && i < smtpd.nlisteners)
		evconnlistener_enable(smtpd.listeners[i]);
}

/* listener_error - accept(2) failed (EMFILE, ENFILE, ENOBUFS ...): pause
 * the listener for a second instead of spinning on the error */
static void
listener_error(struct evconnlistener *l, void *arg)
{
	struct timeval tv = { 1, 0 };
	int i = (int)(intptr_t)arg;

	log_warn("accept on listener %s", listener_name(i));
	evconnlistener_disable(l);
	event_base_once(smtpd.base, -1, EV_TIMEOUT, listener_resume, arg, &tv);
}

/* listeners_open - an evconnlistener on every inherited listening fd */
static void
listeners_open(void)
{
	int i, n = child_listen_fds();

	if (n < 0)
		n = 0;
	/* differs only while the file changed and no reload happened yet:
	 * serve what the master gave us */
	if ((size_t)n != smtpd.conf->nlisten)
		log_warnx("%d listening sockets inherited, but %zu listen sections "
		    "in %s", n, smtpd.conf->nlisten, smtpd.conf->path);
	smtpd.listeners = xcalloc(n ? (size_t)n : 1, sizeof(*smtpd.listeners));
	for (i = 0; i < n; i++) {
		/* libevent accepts until EAGAIN: the socket must not block
		 * (the master makes it so; be sure) */
		if (set_nonblock(PROC_FD_LISTEN0 + i) < 0)
			fatal("listener %s (fd %d)", listener_name(i), PROC_FD_LISTEN0 + i);
		/* backlog 0: the master already called listen(2) */
		smtpd.listeners[i] = evconnlistener_new(smtpd.base, listener_accept,
		    (void *)(intptr_t)i, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
		    0, PROC_FD_LISTEN0 + i);
		if (smtpd.listeners[i] == NULL)
			fatal("listener %s (fd %d)", listener_name(i),
			    PROC_FD_LISTEN0 + i);
		evconnlistener_set_error_cb(smtpd.listeners[i], listener_error);
	}
	smtpd.nlisteners = n;
}

/* listeners_close - stop accepting: close every listening socket */
static void
listeners_close(void)
{
	int i;

	for (i = 0; i < smtpd.nlisteners; i++)
		if (smtpd.listeners[i] != NULL)
			evconnlistener_free(smtpd.listeners[i]);
	xfree(&smtpd.listeners);
	smtpd.nlisteners = 0;
}

/* smtpd_exit - leave: tell queued about open transactions, then exit 0 */
static void NORETURN
smtpd_exit(void)
{
	struct session *s;

	exiting = 1;
	while ((s = TAILQ_FIRST(&smtpd.sessions)) != NULL)
		session_free(s);
	if (smtpd.queue != NULL)
		ipc_flush_blocking(smtpd.queue);
	log_info("stopped");
	exit(0);
}

/* stop_timeout - the grace period is over */
static void
stop_timeout(evutil_socket_t fd, short ev, void *arg)
{
	if (smtpd.nsessions > 0)
		log_info("grace period over, closing %zu sessions", smtpd.nsessions);
	smtpd_exit();
}

/* smtpd_session_gone - after a session ended: exit when stopping and idle */
void
smtpd_session_gone(void)
{
	if (smtpd.stopping && smtpd.nsessions == 0 && !exiting)
		smtpd_exit();
}

/* ctl_stop - IPC_CHILD_STOP: stop accepting, let transactions finish */
static void
ctl_stop(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct session *s, *next;
	struct timeval tv;
	uint32_t grace;

	grace = msg_get_u32(&m->r);
	msg_end(&m->r, "IPC_CHILD_STOP");
	if (m->fd >= 0)
		close(m->fd);
	if (smtpd.stopping)
		return;
	smtpd.stopping = 1;
	log_info("stopping (grace %us, %zu sessions)", grace, smtpd.nsessions);
	listeners_close();
	for (s = TAILQ_FIRST(&smtpd.sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		session_stop_idle(s);
	}
	if (smtpd.nsessions == 0)
		smtpd_exit();
	tv.tv_sec = grace;
	tv.tv_usec = 0;
	smtpd.stop_timer = evtimer_new(smtpd.base, stop_timeout, NULL);
	evtimer_add(smtpd.stop_timer, &tv);
}

/* ctl_queue_link - IPC_CHILD_QUEUE_LINK: queued restarted, a new link */
static void
ctl_queue_link(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	msg_end(&m->r, "IPC_CHILD_QUEUE_LINK");
	if (m->fd < 0)
		fatalx("IPC_CHILD_QUEUE_LINK without a descriptor");
	log_info("new link to queued");
	queue_link_set(m->fd);
}

/* smtpd_main - start-up in the order proc.h prescribes, then the loop */
int
smtpd_main(int argc, char **argv)
{
	struct child ch;

	memset(&smtpd, 0, sizeof(smtpd));
	TAILQ_INIT(&smtpd.sessions);
	TAILQ_INIT(&smtpd.waiting);
	child_start(&ch, PROC_SMTPD, argc, argv, control_table);
	smtpd.conf = ch.conf;
	smtpd.base = ch.base;
	smtpd.next_reqid = 1;
	raise_nofile(); /* every session holds a descriptor */

	listeners_open();
	queue_link_set(PROC_FD_QUEUE);
	session_stats_init(ch.args.index);
	/* the key may be readable by root only: before dropping */
	tls_init();
	auth_init();
	smtpd_anvil_init(ch.args.index);
	priv_drop(smtpd.conf->user);
	child_ready(&ch);
	log_info("ready, %d listeners", smtpd.nlisteners);

	event_base_dispatch(smtpd.base);
	fatalx("event loop ended unexpectedly");
}

/* main - postern-smtpd */
int
main(int argc, char **argv)
{
	return smtpd_main(argc, argv);
}
