/*
 * delivery_pipe.c - the pipe transport: run a configured command, without
 * a shell, with the message on its standard input, and map its exit
 * status to a result.
 *
 * Owns: the running commands of this process. fork(2) + execve(2) of
 * the transport's argv (arguments "%s", "%r" and "%i" - sender, first
 * recipient and queue id, as in the file transport's template - are
 * replaced whole by those values; libconfuse would expand "${...}"); the message (LF line
 * ends) is written to a non-blocking pipe and the first line of standard
 * error is read from another, both driven by libevent; SIGCHLD (a libevent
 * signal event) and waitpid(pid, WNOHANG) end the run. Exit 0: delivered;
 * 75 (EX_TEMPFAIL), death by a signal, or the transport's timeout (the
 * whole process group is killed): deferred; any other status: bounced,
 * with the DSN of the sysexits code when there is one. The reply text is
 * the first line of the command's standard error.
 * SECURITY: runs as the unprivileged postern user; no shell ever sees a
 * value (argv only; values replace whole arguments); the child gets a
 * fixed minimal environment (PATH, SENDER, RECIPIENT, QUEUE_ID), no other
 * descriptors (closefrom), its own process group, and stdout on
 * /dev/null. The event loop never blocks on the command.
 * STANDARDS: RFC 3463 (status codes), sysexits(3).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "util.h"

#include "delivery.h"

/* The most of a command's stderr we keep for the reply. */
#define PIPE_ERR_MAX 512

/* One running command. */
struct pipe_run {
	struct pipe_run *next;
	struct delivery_job *j;
	pid_t pid;
	char *data;             /* the message with LF line ends */
	size_t len, off;
	int in_fd, err_fd;
	struct event *in_ev, *err_ev, *timer;
	char err[PIPE_ERR_MAX];
	size_t errlen;
	int timed_out;
};

static struct pipe_run *runs;
static struct event *sigchld_ev;

/* sysexits codes and their DSN; 75 alone defers */
static const struct {
	int code;
	const char *dsn;
	const char *what;
} exit_codes[] = {
	{ 64, "5.3.0", "command line usage error" },
	{ 65, "5.6.0", "data format error" },
	{ 67, "5.1.1", "user unknown" },
	{ 68, "5.1.2", "host name unknown" },
	{ 69, "5.3.0", "service unavailable" },
	{ 70, "5.3.0", "internal software error" },
	{ 71, "5.3.0", "system error" },
	{ 73, "5.3.0", "cannot create output" },
	{ 74, "5.3.0", "input/output error" },
	{ 75, "4.3.0", "temporary failure" },
	{ 77, "5.7.1", "permission denied" },
	{ 0, NULL, NULL },
};

/* pipe_data - the message with CRLF turned into LF */
static char *
pipe_data(const struct delivery_job *j, size_t *lenp)
{
	char *out = xmalloc(j->msglen + 1);
	size_t i, o = 0;

	for (i = 0; i < j->msglen; i++) {
		if (j->msg[i] == '\r' && i + 1 < j->msglen && j->msg[i + 1] == '\n')
			continue;
		out[o++] = j->msg[i];
	}
	out[o] = '\0';
	*lenp = o;
	return out;
}

/* pipe_exec - in the child: wire the descriptors, exec argv; never returns */
static void NORETURN
pipe_exec(const struct delivery_job *j, int in_fd, int err_fd)
{
	const struct conf_transport *t = j->transport;
	const char *rcpt = j->nrcpt > 0 ? j->rcpt[0].addr : "";
	char **argv = xcalloc(t->argc + 1, sizeof(char *)), *envp[5];
	int null = open("/dev/null", O_WRONLY);
	size_t i;

	for (i = 0; i < t->argc; i++) {
		argv[i] = t->argv[i];
		if (strcmp(argv[i], "%s") == 0)
			argv[i] = j->sender;
		else if (strcmp(argv[i], "%r") == 0)
			argv[i] = (char *)rcpt;
		else if (strcmp(argv[i], "%i") == 0)
			argv[i] = j->queueid;
	}
	envp[0] = (char *)"PATH=/usr/local/bin:/usr/bin:/bin";
	envp[1] = xasprintf("SENDER=%s", j->sender);
	envp[2] = xasprintf("RECIPIENT=%s", rcpt);
	envp[3] = xasprintf("QUEUE_ID=%s", j->queueid);
	envp[4] = NULL;
	setpgid(0, 0);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(in_fd, 0) == -1 || dup2(null != -1 ? null : err_fd, 1) == -1 ||
	    dup2(err_fd, 2) == -1)
		_exit(75);
	closefrom(3);
	execve(argv[0], argv, envp);
	dprintf(2, "cannot execute %s: %s\n", argv[0], strerror(errno));
	_exit(75);
}

/* pipe_free - release a finished run */
static void
pipe_free(struct pipe_run *p)
{
	struct pipe_run **pp;

	for (pp = &runs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (p->in_ev != NULL)
		event_free(p->in_ev);
	if (p->err_ev != NULL)
		event_free(p->err_ev);
	if (p->timer != NULL)
		event_free(p->timer);
	if (p->in_fd != -1)
		close(p->in_fd);
	if (p->err_fd != -1)
		close(p->err_fd);
	free(p->data);
	free(p);
}

/* pipe_read_err - collect stderr (the first PIPE_ERR_MAX bytes); 0 at EOF */
static int
pipe_read_err(struct pipe_run *p)
{
	char buf[1024];
	ssize_t n;
	size_t k;

	for (;;) {
		n = read(p->err_fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? 0 : -1;
		k = (size_t)n;
		if (k > sizeof(p->err) - 1 - p->errlen)
			k = sizeof(p->err) - 1 - p->errlen;
		memcpy(p->err + p->errlen, buf, k);
		p->errlen += k;
		p->err[p->errlen] = '\0';
	}
}

/* reply_line - the first line of stderr, printable, or a default */
static void
reply_line(struct pipe_run *p, const char *dflt, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < p->errlen && p->err[i] != '\n' && o + 1 < outlen; i++)
		if (p->err[i] >= ' ' && p->err[i] != 0x7f)
			out[o++] = p->err[i];
	out[o] = '\0';
	if (o == 0)
		snprintf(out, outlen, "%s", dflt);
}

/* pipe_finish - the command ended with status: give the result */
static void
pipe_finish(struct pipe_run *p, int status)
{
	struct delivery_job *j = p->j;
	char relay[300], text[PIPE_ERR_MAX], dflt[128];
	const char *dsn = "5.3.0";
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1, class, i;

	if (p->err_fd != -1)
		(void)pipe_read_err(p);
	snprintf(relay, sizeof(relay), "pipe:%s", j->transport->argv[0]);
	for (i = 0; exit_codes[i].code != 0 && exit_codes[i].code != code; i++)
		;
	if (p->timed_out) {
		class = 4, dsn = "4.4.7";
		snprintf(dflt, sizeof(dflt), "command timed out after %llds",
		    (long long)j->transport->timeout);
	} else if (code == 0) {
		class = 2, dsn = "2.0.0";
		snprintf(dflt, sizeof(dflt), "delivered to command");
	} else if (code == -1) {
		class = 4, dsn = "4.3.0";
		snprintf(dflt, sizeof(dflt), "command killed by signal %d",
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	} else {
		class = code == 75 ? 4 : 5;
		if (exit_codes[i].code != 0)
			dsn = exit_codes[i].dsn;
		snprintf(dflt, sizeof(dflt), "command exited with status %d%s%s", code,
		    exit_codes[i].code != 0 ? ": " : "",
		    exit_codes[i].code != 0 ? exit_codes[i].what : "");
	}
	reply_line(p, dflt, text, sizeof(text));
	if (p->timed_out || (class != 2 && code != -1 && text[0] != '\0' &&
	    strcmp(text, dflt) != 0))
		log_info("%s: pipe %s: %s (%s)", j->queueid, j->transport->argv[0], dflt,
		    text);
	delivery_job_result(j, 0, class, dsn, relay, "%s", text);
	pipe_free(p);
	delivery_job_done(j);
}

/* on_sigchld - reap the commands that ended */
static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct pipe_run *p, *next;
	int status;
	pid_t r;

	for (p = runs; p != NULL; p = next) {
		next = p->next;
		r = waitpid(p->pid, &status, WNOHANG);
		if (r == p->pid)
			pipe_finish(p, status);
	}
}

/* on_stdin - write more of the message; close stdin when done */
static void
on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct pipe_run *p = arg;
	ssize_t n;

	n = write(fd, p->data + p->off, p->len - p->off);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		p->off += (size_t)n;
	if (n == -1 || p->off >= p->len) {
		/* done, or the command closed its stdin (EPIPE): its status decides */
		event_del(p->in_ev);
		close(p->in_fd);
		p->in_fd = -1;
	}
}

/* on_stderr - collect stderr until EOF */
static void
on_stderr(evutil_socket_t fd, short what, void *arg)
{
	struct pipe_run *p = arg;

	if (pipe_read_err(p) == -1 && errno == EAGAIN)
		return;
	event_del(p->err_ev);
	close(p->err_fd);
	p->err_fd = -1;
}

/* on_timeout - kill the command's process group; SIGCHLD finishes it */
static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pipe_run *p = arg;

	p->timed_out = 1;
	log_warnx("%s: pipe %s: timeout, killing process group %ld", p->j->queueid,
	    p->j->transport->argv[0], (long)p->pid);
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
}

/* pipe_start - fork and exec; 0, or -1 with errno */
static int
pipe_start(struct pipe_run *p)
{
	int in[2], err[2];

	if (pipe2(in, O_CLOEXEC) == -1)
		return -1;
	if (pipe2(err, O_CLOEXEC) == -1) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	p->pid = fork();
	if (p->pid == 0)
		pipe_exec(p->j, in[0], err[1]);
	close(in[0]);
	close(err[1]);
	p->in_fd = in[1];
	p->err_fd = err[0];
	if (p->pid == -1)
		return -1;
	setpgid(p->pid, p->pid);        /* no race with kill(-pid) */
	set_nonblock(p->in_fd);
	set_nonblock(p->err_fd);
	return 0;
}

/* delivery_pipe_run - start the command for the job */
void
delivery_pipe_run(struct delivery_job *j)
{
	struct event_base *base = delivery_base();
	struct pipe_run *p = xcalloc(1, sizeof(*p));
	struct timeval tv = { j->transport->timeout, 0 };

	p->j = j;
	p->in_fd = p->err_fd = -1;
	p->data = pipe_data(j, &p->len);
	if (sigchld_ev == NULL) {
		sigchld_ev = evsignal_new(base, SIGCHLD, on_sigchld, NULL);
		if (sigchld_ev == NULL || event_add(sigchld_ev, NULL) == -1)
			fatalx("pipe: cannot watch SIGCHLD");
	}
	if (pipe_start(p) == -1) {
		log_warnx("%s: pipe: cannot start %s: %s", j->queueid, j->transport->argv[0],
		    strerror(errno));
		delivery_job_result(j, 0, 4, "4.3.0", NULL, "cannot start command: %s",
		    strerror(errno));
		pipe_free(p);
		delivery_job_done(j);
		return;
	}
	p->next = runs;
	runs = p;
	p->in_ev = event_new(base, p->in_fd, EV_WRITE | EV_PERSIST, on_stdin, p);
	p->err_ev = event_new(base, p->err_fd, EV_READ | EV_PERSIST, on_stderr, p);
	p->timer = evtimer_new(base, on_timeout, p);
	if (p->in_ev == NULL || p->err_ev == NULL || p->timer == NULL ||
	    event_add(p->in_ev, NULL) == -1 || event_add(p->err_ev, NULL) == -1 ||
	    evtimer_add(p->timer, &tv) == -1)
		fatalx("pipe: cannot add events");
	log_debug("%s: pipe: started %s as pid %ld", j->queueid, j->transport->argv[0],
	    (long)p->pid);
}

/* delivery_pipe_killall - the process is exiting: kill every running
 * command's process group (queued retries their messages) */
void
delivery_pipe_killall(void)
{
	struct pipe_run *p;

	for (p = runs; p != NULL; p = p->next) {
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
	}
}
