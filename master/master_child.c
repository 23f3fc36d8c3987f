/*
 * master_child.c - the master's child table: fork+exec of postern-ROLE
 * with the descriptors of common/proc.h, restarts with backoff, graceful
 * replacement after a reload, and the queue links between queued and
 * every other child.
 *
 * Owns: struct mchild slots (mirrored into stats->child[] for httpd), the
 * control channels to the children, the master's ends of new queue links
 * until they are handed to queued.
 * SECURITY: runs as the user that started postern (root in production)
 * and never drops it: replacements must be able to read keys and the
 * children drop privileges themselves (common/privdrop.h). A child gets
 * exactly fds 0-2, its control socket, the stats memfd, its queue link
 * and its listeners (smtpd also the anvil memfd, common/anvil.h: only
 * the processes that enforce per-client limits may change them);
 * everything else is closed before execv(). When an smtpd exits, its
 * column of the anvil is reset before a replacement starts, so the
 * connections of a crashed process never stay counted. Children
 * are trusted to speak the IPC protocol; a malformed control frame is
 * fatal only to the channel's process (common/ipc.h). A child that breaks
 * the protocol on its queue link is reported by queued (which closed
 * that link) and killed here the same way; its restart has a new link.
 * STANDARDS: none.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "anvil.h"
#include "backoff.h"
#include "conf.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "master.h"
#include "msgbuf.h"
#include "proc.h"
#include "stats.h"
#include "util.h"

/* The order children are started in: queued must exist before the others
 * get their links. */
static const enum proc_role start_order[] = {
	PROC_QUEUED, PROC_DELIVERY, PROC_SMTPD, PROC_HTTPD,
};
#define NSTART_ORDER (sizeof(start_order) / sizeof(start_order[0]))

static void child_ready_msg(struct ipc_chan *, struct ipc_msg *, void *);
static void child_link_broken(struct ipc_chan *, struct ipc_msg *, void *);

/* What a child may send on its control link (LINK_BROKEN: queued only). */
static const struct ipc_handler control_table[] = {
	{ IPC_MASTER_READY, child_ready_msg },
	{ IPC_MASTER_LINK_BROKEN, child_link_broken },
	{ 0, NULL },
};

/* child_name - "smtpd[0]" into buf */
const char *
child_name(const struct mchild *ch, char *buf, size_t len)
{
	snprintf(buf, len, "%s[%d]", proc_role_name(ch->role), ch->index);
	return buf;
}

/* slot_of - index of ch in the table (= its stats->child[] slot) */
static size_t
slot_of(const struct mchild *ch)
{
	return (size_t)(ch - ch->m->child);
}

/* stats_slot - the shared-memory mirror of ch */
static struct stats_child *
stats_slot(const struct mchild *ch)
{
	return &stats->child[slot_of(ch)];
}

/* stats_set32 - relaxed atomic store into a shared int32 field */
static void
stats_set32(int32_t *p, int32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* stats_nchildren_update - nchildren = highest used slot + 1 */
static void
stats_nchildren_update(const struct master *m)
{
	uint32_t n = 0, i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++)
		if (m->child[i].used)
			n = i + 1;
	__atomic_store_n(&stats->nchildren, n, __ATOMIC_RELAXED);
}

/* desired_count - how many children of role the configuration asks for */
static int
desired_count(const struct conf *c, enum proc_role role)
{
	switch (role) {
	case PROC_QUEUED:
		return 1;
	case PROC_DELIVERY:
		return c->delivery_processes;
	case PROC_SMTPD:
		return c->nlisten > 0 ? c->smtpd_processes : 0;
	case PROC_HTTPD:
		return c->http_listen != NULL && c->http_listen[0] != '\0';
	default:
		return 0;
	}
}

/* child_ready_msg - IPC_MASTER_READY: the child finished start-up */
static void
child_ready_msg(struct ipc_chan *c, struct ipc_msg *msg, void *arg)
{
	struct mchild *ch = arg;
	char name[32];

	if (msg->fd >= 0)
		close(msg->fd);
	if (!msg_ok(&msg->r)) {
		/* never die for a child's bug: kill it, the restart follows */
		log_warnx("%s (pid %d): malformed IPC_MASTER_READY; killing it",
		    child_name(ch, name, sizeof(name)), (int)ch->pid);
		if (ch->pid > 0)
			kill(ch->pid, SIGKILL);
		return;
	}
	stats_set32(&stats_slot(ch)->up, 1);
	ch->ready = 1;
	log_debug("%s (pid %d) ready", child_name(ch, name, sizeof(name)),
	    (int)ch->pid);
	notify_ready_maybe(ch->m);
}

/* child_find - the running child of role/index with that pid, or NULL */
static struct mchild *
child_find(struct master *m, uint32_t role, uint32_t index, uint32_t pid)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		struct mchild *ch = &m->child[i];

		if (ch->used && (uint32_t)ch->role == role &&
		    (uint32_t)ch->index == index && ch->pid > 0 &&
		    (uint32_t)ch->pid == pid)
			return ch;
	}
	return NULL;
}

/* child_link_broken - IPC_MASTER_LINK_BROKEN from queued: kill the child
 * that broke its queue link or hung on a delivery job (unless it is
 * already gone); the restart gives it a fresh link. From any other
 * child: a violation of its own. */
static void
child_link_broken(struct ipc_chan *c, struct ipc_msg *msg, void *arg)
{
	struct mchild *q = arg, *ch;
	uint32_t role, index, pid, reason;
	char name[32];

	if (msg->fd >= 0)
		close(msg->fd);
	role = msg_get_u32(&msg->r);
	index = msg_get_u32(&msg->r);
	pid = msg_get_u32(&msg->r);
	reason = msg_get_u32(&msg->r);
	if (q->role != PROC_QUEUED || !msg_ok(&msg->r) ||
	    (reason != IPC_LINK_VIOLATION && reason != IPC_LINK_HUNG)) {
		log_warnx("%s (pid %d): unexpected IPC_MASTER_LINK_BROKEN; killing it",
		    child_name(q, name, sizeof(name)), (int)q->pid);
		if (q->pid > 0)
			kill(q->pid, SIGKILL);
		return;
	}
	if ((ch = child_find(q->m, role, index, pid)) == NULL)
		return;         /* it died meanwhile: its restart has a new link */
	log_warnx("%s (pid %d) %s; killing it", child_name(ch, name, sizeof(name)),
	    (int)ch->pid, reason == IPC_LINK_HUNG ? "left a delivery job unanswered "
	    "past queue.job_timeout" : "broke the queue link protocol");
	kill(ch->pid, SIGKILL);
}

/* control_closed - the child closed its control link (it is exiting) */
static void
control_closed(struct ipc_chan *c, void *arg)
{
	struct mchild *ch = arg;
	char name[32];

	ch->control = NULL;     /* freed by ipc.c when we return */
	if (ipc_chan_violated(c) && ch->pid > 0) {
		log_warnx("%s (pid %d) broke the control protocol; killing it",
		    child_name(ch, name, sizeof(name)), (int)ch->pid);
		kill(ch->pid, SIGKILL);
	}
}

/* queued_slot - the running queued, or NULL */
static struct mchild *
queued_slot(struct master *m)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		struct mchild *ch = &m->child[i];

		if (ch->used && ch->role == PROC_QUEUED && ch->pid > 0 &&
		    ch->control != NULL)
			return ch;
	}
	return NULL;
}

/* queued_give_link - send queued its end (fd) of a link to ch; without a
 * running queued the end is closed and ch gets a new link when queued
 * starts */
static void
queued_give_link(struct master *m, const struct mchild *ch, int fd)
{
	struct mchild *q = queued_slot(m);
	struct msgbuf mb;

	if (q == NULL) {
		close(fd);
		return;
	}
	msgbuf_init(&mb);
	msg_add_u32(&mb, (uint32_t)ch->role);
	msg_add_u32(&mb, (uint32_t)ch->index);
	msg_add_u32(&mb, (uint32_t)ch->pid);
	ipc_send(q->control, IPC_QUEUED_NEW_LINK, &mb, fd);
	msgbuf_free(&mb);
}

/* link_pair - a socketpair for a queue link; 0, or -1 logged */
static int
link_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair");
		return -1;
	}
	return 0;
}

/* queued_relink_all - a new queued started: every other running child
 * gets a fresh link (IPC_CHILD_QUEUE_LINK), queued the other end */
static void
queued_relink_all(struct master *m)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		struct mchild *ch = &m->child[i];
		struct msgbuf mb;
		int sv[2];

		if (!ch->used || ch->role == PROC_QUEUED || ch->pid == 0 ||
		    ch->control == NULL)
			continue;
		if (link_pair(sv) == -1)
			continue;
		msgbuf_init(&mb);
		ipc_send(ch->control, IPC_CHILD_QUEUE_LINK, &mb, sv[0]);
		msgbuf_free(&mb);
		queued_give_link(m, ch, sv[1]);
	}
}

/* child_fds - the descriptors ch inherits from 3 up; returns the count;
 * *anvil is the number smtpd finds the anvil on (-1: none) */
static int
child_fds(const struct master *m, const struct mchild *ch, int ctl, int qfd,
    int *fds, int max, int *nlisten, int *anvil)
{
	int n = 0;
	size_t i;

	fds[n++] = ctl;
	fds[n++] = m->stats_fd;
	fds[n++] = qfd;         /* -1 for queued: fd 5 stays closed */
	*nlisten = 0;
	*anvil = -1;
	if (ch->role == PROC_SMTPD) {
		for (i = 0; i < m->nlisten && n < max; i++)
			fds[n++] = m->listen[i].fd;
		*nlisten = (int)m->nlisten;
		if (m->anvil_fd >= 0 && n < max) {
			*anvil = PROC_FD_CONTROL + n;
			fds[n++] = m->anvil_fd;
		}
	} else if (ch->role == PROC_HTTPD && m->http.fd >= 0) {
		fds[n++] = m->http.fd;
		*nlisten = 1;
	} else if (ch->role == PROC_QUEUED && m->control.fd >= 0) {
		fds[n++] = m->control.fd;       /* the queue control socket */
		*nlisten = 1;
	}
	return n;
}

/* child_env - the environment of proc.h: listener count, anvil fd, log
 * stream flag; systemd's notification variables are the master's only */
static void
child_env(int nlisten, int anvil, int logfd)
{
	char env[16];

	snprintf(env, sizeof(env), "%d", nlisten);
	setenv(PROC_ENV_LISTEN_FDS, env, 1);
	snprintf(env, sizeof(env), "%d", anvil);
	if (anvil >= 0)
		setenv(PROC_ENV_ANVIL_FD, env, 1);
	else
		unsetenv(PROC_ENV_ANVIL_FD);
	if (logfd >= 0)
		setenv(PROC_ENV_LOG_STREAM, "1", 1);
	else
		unsetenv(PROC_ENV_LOG_STREAM);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

/* child_exec - in the forked child: put the descriptors in place and
 * execv the program; never returns. In the foreground the children ignore
 * SIGINT: ^C reaches the whole process group, and the master stops them
 * gracefully instead. SIGUSR1 (reopen the log) is the master's: a
 * `systemctl kill -s USR1` reaching every process must not end them.
 * logfd >= 0: the log socket becomes stderr (proc.h). */
static void NORETURN
child_exec(const char *path, char *const argv[], const int *fds, int nfds,
    int nlisten, int anvil, int foreground, int logfd)
{
	int tmp[PROC_FD_LISTEN0 + 64], base = PROC_FD_CONTROL + nfds, i, null;
	sigset_t none;

	if (logfd >= 0 && dup2(logfd, STDERR_FILENO) == -1)
		goto fail;
	/* first move every source above the targets, then dup2 down:
	 * a source may already sit on another one's target number */
	for (i = 0; i < nfds; i++) {
		tmp[i] = fds[i] < 0 ? -1 : fcntl(fds[i], F_DUPFD_CLOEXEC, base);
		if (fds[i] >= 0 && tmp[i] < 0)
			goto fail;
	}
	for (i = 0; i < nfds; i++)
		if (tmp[i] >= 0 && dup2(tmp[i], PROC_FD_CONTROL + i) == -1)
			goto fail;
	for (i = 0; i < nfds; i++)
		if (tmp[i] < 0)
			close(PROC_FD_CONTROL + i);
	closefrom(base);
	if ((null = open("/dev/null", O_RDONLY)) >= 0 && null != STDIN_FILENO) {
		dup2(null, STDIN_FILENO);
		close(null);
	}
	child_env(nlisten, anvil, logfd);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGUSR1, SIG_IGN);
	if (foreground)         /* ^C on the terminal is the master's to handle */
		signal(SIGINT, SIG_IGN);
	execv(path, argv);
fail:
	dprintf(STDERR_FILENO, "postern: cannot execute %s: %s\n", path,
	    strerror(errno));
	_exit(EXIT_FATAL);
}

/* child_fork - fork+exec ch with its control socket and queue link;
 * pid, or -1 logged */
static pid_t
child_fork(struct master *m, struct mchild *ch, int ctl, int qfd)
{
	char path[PATH_MAX], idx[16];
	char *argv[8];
	int fds[PROC_FD_LISTEN0 + 64], nfds, nlisten, anvil, argc = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/postern-%s", m->conf->libexec_dir,
	    proc_role_name(ch->role));
	snprintf(idx, sizeof(idx), "%d", ch->index);
	argv[argc++] = path;
	argv[argc++] = "-c";
	argv[argc++] = m->conf_path;
	argv[argc++] = "-i";
	argv[argc++] = idx;
	if (m->foreground)
		argv[argc++] = "-f";
	argv[argc] = NULL;
	nfds = child_fds(m, ch, ctl, qfd, fds, (int)(sizeof(fds) / sizeof(fds[0])),
	    &nlisten, &anvil);
	if ((pid = fork()) == -1) {
		log_warn("fork");
		return -1;
	}
	if (pid == 0)
		child_exec(path, argv, fds, nfds, nlisten, anvil, m->foreground,
		    masterlog_child_fd(m));
	return pid;
}

/* child_record_start - ch now runs as pid: table, stats and channel */
static void
child_record_start(struct master *m, struct mchild *ch, pid_t pid, int ctl)
{
	struct stats_child *sc = stats_slot(ch);

	ch->pid = pid;
	ch->started = time(NULL);
	ch->gen = m->gen;
	ch->stopping = 0;
	ch->replace = 0;
	ch->ready = 0;
	child_name(ch, ch->name, sizeof(ch->name));
	ch->control = ipc_chan_new(m->base, ctl, ch->name, control_table,
	    control_closed, ch);
	ipc_chan_set_untrusted(ch->control);
	stats_set32(&sc->role, (int32_t)ch->role);
	stats_set32(&sc->index, ch->index);
	stats_set32(&sc->up, 0);
	__atomic_store_n(&sc->started, (int64_t)ch->started, __ATOMIC_RELAXED);
	stats_set32(&sc->pid, (int32_t)pid);
	log_info("started %s (pid %d)", ch->name, (int)pid);
}

static void child_schedule_restart(struct master *, struct mchild *);

/* child_spawn - start the process of slot ch with fresh links */
static void
child_spawn(struct master *m, struct mchild *ch)
{
	int ctl[2], ql[2] = { -1, -1 };
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) == -1) {
		log_warn("socketpair");
		child_schedule_restart(m, ch);
		return;
	}
	if (ch->role != PROC_QUEUED && link_pair(ql) == -1) {
		close(ctl[0]);
		close(ctl[1]);
		child_schedule_restart(m, ch);
		return;
	}
	pid = child_fork(m, ch, ctl[1], ql[1]);
	close(ctl[1]);
	if (ql[1] >= 0)
		close(ql[1]);
	if (pid == -1) {
		close(ctl[0]);
		if (ql[0] >= 0)
			close(ql[0]);
		child_schedule_restart(m, ch);
		return;
	}
	child_record_start(m, ch, pid, ctl[0]);
	if (ch->role == PROC_QUEUED)
		queued_relink_all(m);
	else
		queued_give_link(m, ch, ql[0]);
}

/* restart_timer - the backoff ran out: start the child again */
static void
restart_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct mchild *ch = arg;
	uint64_t *restarts = &stats_slot(ch)->restarts;

	if (ch->m->shutting_down || !ch->used || ch->pid != 0)
		return;
	stats_add(restarts, 1);
	child_spawn(ch->m, ch);
}

/* child_schedule_restart - start ch again after its backoff: 1 s,
 * doubling while it keeps dying within MASTER_QUICK_DEATH seconds of its
 * start, at most MASTER_RESTART_MAX, reset after a good run */
static void
child_schedule_restart(struct master *m, struct mchild *ch)
{
	struct backoff b = { 1, 2.0, MASTER_RESTART_MAX, 0.0 };
	time_t now = time(NULL), delay;
	int quick = ch->started == 0 || now - ch->started < MASTER_QUICK_DEATH;
	struct timeval tv;
	char name[32];

	if (!quick)
		ch->quick_deaths = 0;
	delay = backoff_delay(&b, ch->quick_deaths + 1, 0.5);
	if (quick && ch->quick_deaths < 16)
		ch->quick_deaths++;
	log_info("restarting %s in %llds", child_name(ch, name, sizeof(name)),
	    (long long)delay);
	tv.tv_sec = delay;
	tv.tv_usec = 0;
	evtimer_add(ch->restart_ev, &tv);
}

/* kill_timer - a stopping child overran its grace: SIGKILL it */
static void
kill_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct mchild *ch = arg;
	char name[32];

	if (ch->pid <= 0 || ch->m->shutting_down)   /* shutdown_kill's job */
		return;
	log_warnx("%s (pid %d) did not stop in time; killing it",
	    child_name(ch, name, sizeof(name)), (int)ch->pid);
	kill(ch->pid, SIGKILL);
}

/* child_stop - ask ch to stop within grace seconds; SIGKILL after
 * grace + MASTER_KILL_SLACK */
static void
child_stop(struct mchild *ch, unsigned grace)
{
	struct timeval tv = { (time_t)grace + MASTER_KILL_SLACK, 0 };
	struct msgbuf mb;

	if (ch->pid <= 0 || ch->stopping)
		return;
	ch->stopping = 1;
	if (ch->control != NULL) {
		msgbuf_init(&mb);
		msg_add_u32(&mb, grace);
		ipc_send(ch->control, IPC_CHILD_STOP, &mb, -1);
		msgbuf_free(&mb);
	} else
		kill(ch->pid, SIGTERM);    /* no link left to ask politely */
	evtimer_add(ch->kill_ev, &tv);
}

/* slot_free - forget the slot (process count lowered by a reload) */
static void
slot_free(struct master *m, struct mchild *ch)
{
	event_del(ch->restart_ev);
	event_del(ch->kill_ev);
	ch->used = 0;
	ch->retired = 0;
	ch->pid = 0;
	memset(stats_slot(ch), 0, sizeof(struct stats_child));
	stats_nchildren_update(m);
}

/* slot_alloc - a free slot for role/index, or NULL when the table is full */
static struct mchild *
slot_alloc(struct master *m, enum proc_role role, int index)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		struct mchild *ch = &m->child[i];

		if (ch->used)
			continue;
		ch->used = 1;
		ch->role = role;
		ch->index = index;
		ch->pid = 0;
		ch->started = 0;
		ch->quick_deaths = 0;
		ch->stopping = ch->retired = ch->replace = 0;
		memset(stats_slot(ch), 0, sizeof(struct stats_child));
		stats_set32(&stats_slot(ch)->role, (int32_t)role);
		stats_set32(&stats_slot(ch)->index, index);
		stats_nchildren_update(m);
		return ch;
	}
	log_warnx("child table full (%d slots): %s[%d] not started",
	    STATS_MAX_CHILDREN, proc_role_name(role), index);
	return NULL;
}

/* slot_find - the active (not retiring) slot of role/index, or NULL */
static struct mchild *
slot_find(struct master *m, enum proc_role role, int index)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		struct mchild *ch = &m->child[i];

		if (ch->used && !ch->retired && ch->role == role &&
		    ch->index == index)
			return ch;
	}
	return NULL;
}

/* children_fill - start every configured child that has no slot yet */
static void
children_fill(struct master *m)
{
	size_t r;
	int i;

	for (r = 0; r < NSTART_ORDER; r++) {
		enum proc_role role = start_order[r];
		int want = desired_count(m->conf, role);

		for (i = 0; i < want; i++) {
			struct mchild *ch;

			if (slot_find(m, role, i) != NULL)
				continue;
			if ((ch = slot_alloc(m, role, i)) != NULL)
				child_spawn(m, ch);
		}
	}
}

/* reload_progress - once no child of an older generation other than
 * queued runs, replace queued too (so sessions in their grace period keep
 * a working queue) */
static void
reload_progress(struct master *m)
{
	struct mchild *q = NULL;
	size_t i;

	if (m->shutting_down)
		return;
	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		struct mchild *ch = &m->child[i];

		if (!ch->used || ch->pid == 0 || ch->gen >= m->gen)
			continue;
		if (ch->role != PROC_QUEUED)
			return;
		if (!ch->retired)
			q = ch;
	}
	if (q != NULL && !q->stopping) {
		q->replace = 1;
		child_stop(q, (unsigned)m->conf->shutdown_timeout);
	}
}

/* children_start_all - the first start: every configured child */
void
children_start_all(struct master *m)
{
	children_fill(m);
}

/* children_reconcile - after a reload: retire what the new configuration
 * no longer wants, replace everything else gracefully, start what is new */
void
children_reconcile(struct master *m)
{
	unsigned grace = (unsigned)m->conf->shutdown_timeout;
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		struct mchild *ch = &m->child[i];

		if (!ch->used || ch->retired)
			continue;
		if (ch->index >= desired_count(m->conf, ch->role)) {
			ch->retired = 1;
			if (ch->pid > 0)
				child_stop(ch, grace);
			else
				slot_free(m, ch);
		} else if (ch->pid > 0 && ch->role != PROC_QUEUED) {
			ch->replace = 1;
			child_stop(ch, grace);
		} else if (ch->pid == 0) {
			/* waiting out a backoff: the new file may be the fix */
			event_del(ch->restart_ev);
			ch->quick_deaths = 0;
			child_spawn(m, ch);
		}
	}
	children_fill(m);
	reload_progress(m);
}

/* log_exit - "smtpd[0] (pid N) exited with status S" or "killed by ..." */
static void
log_exit(const struct mchild *ch, int status)
{
	char name[32];

	child_name(ch, name, sizeof(name));
	if (WIFSIGNALED(status))
		log_warnx("%s (pid %d) killed by signal %d", name, (int)ch->pid,
		    WTERMSIG(status));
	else if (WEXITSTATUS(status) == 0 && (ch->stopping || ch->m->shutting_down))
		log_info("%s (pid %d) exited with status 0", name, (int)ch->pid);
	else
		log_warnx("%s (pid %d) exited with status %d", name, (int)ch->pid,
		    WEXITSTATUS(status));
}

/* anvil_forget - an smtpd exited: reset its anvil column (its index)
 * unless another running smtpd has the same index (a retiring one and
 * its successor after a reload) */
static void
anvil_forget(struct master *m, const struct mchild *ch)
{
	size_t i;

	if (ch->role != PROC_SMTPD || ch->index < 0)
		return;
	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		const struct mchild *o = &m->child[i];

		if (o != ch && o->used && o->pid > 0 && o->role == PROC_SMTPD &&
		    o->index == ch->index)
			return;
	}
	anvil_column_reset(m->anvil, (unsigned)ch->index);
}

/* child_exited - bookkeeping for a reaped child, then its restart,
 * replacement or retirement */
static void
child_exited(struct master *m, struct mchild *ch, int status)
{
	log_exit(ch, status);
	ch->pid = 0;
	anvil_forget(m, ch);
	stats_set32(&stats_slot(ch)->up, 0);
	stats_set32(&stats_slot(ch)->pid, 0);
	if (ch->control != NULL)
		ipc_chan_free(&ch->control);
	event_del(ch->kill_ev);
	if (m->shutting_down) {
		ch->stopping = 0;
		return;
	}
	if (ch->retired) {
		slot_free(m, ch);
	} else if (ch->replace) {
		ch->quick_deaths = 0;
		child_spawn(m, ch);
	} else {
		ch->stopping = 0;
		child_schedule_restart(m, ch);
	}
	reload_progress(m);
}

/* child_by_pid - the slot running pid, or NULL */
static struct mchild *
child_by_pid(struct master *m, pid_t pid)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++)
		if (m->child[i].used && m->child[i].pid == pid)
			return &m->child[i];
	return NULL;
}

/* children_reap - SIGCHLD: collect every exited child */
void
children_reap(struct master *m)
{
	struct mchild *ch;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if ((ch = child_by_pid(m, pid)) != NULL)
			child_exited(m, ch, status);
	}
	if (m->shutting_down)
		master_shutdown_advance(m);
}

/* children_stop_role - IPC_CHILD_STOP to every running child of role;
 * the number still running */
int
children_stop_role(struct master *m, enum proc_role role, unsigned grace)
{
	size_t i;
	int n = 0;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		struct mchild *ch = &m->child[i];

		if (!ch->used || ch->role != role || ch->pid == 0)
			continue;
		child_stop(ch, grace);
		n++;
	}
	return n;
}

/* children_all_up - every active slot runs a ready, not stopping child
 * of the current generation (queued of any: it is replaced last) */
int
children_all_up(const struct master *m)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		const struct mchild *ch = &m->child[i];

		if (!ch->used || ch->retired)
			continue;
		if (ch->pid <= 0 || !ch->ready || ch->stopping)
			return 0;
		if (ch->gen != m->gen && ch->role != PROC_QUEUED)
			return 0;
	}
	return 1;
}

/* children_live - running children of role (PROC_ROLE_MAX: of any role) */
int
children_live(const struct master *m, enum proc_role role)
{
	size_t i;
	int n = 0;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		const struct mchild *ch = &m->child[i];

		if (ch->used && ch->pid > 0 &&
		    (role == PROC_ROLE_MAX || ch->role == role))
			n++;
	}
	return n;
}

/* children_cancel_restarts - drop pending restarts (shutting down) */
void
children_cancel_restarts(struct master *m)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++)
		if (m->child[i].used)
			event_del(m->child[i].restart_ev);
}

/* children_kill_all - SIGKILL every running child */
void
children_kill_all(struct master *m)
{
	char name[32];
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		struct mchild *ch = &m->child[i];

		if (!ch->used || ch->pid <= 0)
			continue;
		log_warnx("%s (pid %d) still running; killing it",
		    child_name(ch, name, sizeof(name)), (int)ch->pid);
		event_del(ch->kill_ev);
		kill(ch->pid, SIGKILL);
	}
}

/* child_table_init - empty slots, each with its two timers */
void
child_table_init(struct master *m)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		struct mchild *ch = &m->child[i];

		memset(ch, 0, sizeof(*ch));
		ch->m = m;
		ch->restart_ev = evtimer_new(m->base, restart_timer, ch);
		ch->kill_ev = evtimer_new(m->base, kill_timer, ch);
		if (ch->restart_ev == NULL || ch->kill_ev == NULL)
			fatalx("evtimer_new");
	}
}

/* child_table_free - timers and channels, at exit */
void
child_table_free(struct master *m)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		struct mchild *ch = &m->child[i];

		if (ch->control != NULL)
			ipc_chan_free(&ch->control);
		if (ch->restart_ev != NULL)
			event_free(ch->restart_ev);
		if (ch->kill_ev != NULL)
			event_free(ch->kill_ev);
		ch->restart_ev = ch->kill_ev = NULL;
	}
}
