/*
 * master_log.c - the master's side of log_file: it alone opens the file,
 * writes its own lines there (a log.c sink), and writes there what the
 * children send on the log socket, their stderr; it reopens the file on
 * SIGUSR1 (logrotate, `posternctl reopen-logs`) and rotates it by size
 * (common/logfile.c).
 *
 * Owns: the log file, the log socketpair (SOCK_DGRAM: one datagram per
 * line, so lines of many processes never mix; proc.h) and its event.
 * Why the master writes for everyone: one writer makes size rotation and
 * reopening exact (no child keeps writing to a renamed file), and the
 * unprivileged children never get write access to the file.
 * SECURITY: the master never interprets what children send: each
 * datagram is one line, copied as it is (a newline added when missing).
 * A child that floods the socket only fills its own send buffer. Secrets
 * are kept out of log lines by every writer (common/log.h).
 * STANDARDS: none.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "logfile.h"
#include "master.h"
#include "util.h"

#define MASTERLOG_DGRAM_MAX 65536       /* a child's longest line */
#define MASTERLOG_BATCH 256             /* datagrams per wake-up */

/* masterlog_sink - log.c sink: the master's own lines into the file */
static void
masterlog_sink(const char *line, size_t len, void *arg)
{
	struct master *m = arg;

	if (m->logfile != NULL)
		logfile_write(m->logfile, line, len);
	else
		log_write_all(STDERR_FILENO, line, len);
}

/* masterlog_drain - copy every waiting datagram to the file */
static void
masterlog_drain(struct master *m)
{
	static char buf[MASTERLOG_DGRAM_MAX + 1];
	ssize_t n;
	int i;

	for (i = 0; m->log_rx >= 0 && i < MASTERLOG_BATCH; i++) {
		if ((n = recv(m->log_rx, buf, MASTERLOG_DGRAM_MAX, MSG_DONTWAIT)) <= 0)
			return;
		if (buf[n - 1] != '\n')
			buf[n++] = '\n';
		masterlog_sink(buf, (size_t)n, m);
	}
}

/* masterlog_readable - the log socket has lines */
static void
masterlog_readable(evutil_socket_t fd, short ev, void *arg)
{
	masterlog_drain(arg);
}

/* masterlog_watch - read the socket from the event loop (once there is
 * both a socket and an event base) */
void
masterlog_watch(struct master *m)
{
	if (m->log_rx < 0 || m->base == NULL || m->log_ev != NULL)
		return;
	m->log_ev = event_new(m->base, m->log_rx, EV_READ | EV_PERSIST,
	    masterlog_readable, m);
	if (m->log_ev == NULL || event_add(m->log_ev, NULL) == -1)
		fatalx("cannot watch the log socket");
}

/* masterlog_socket - the children's log socketpair, made once */
static int
masterlog_socket(struct master *m, char *err, size_t errlen)
{
	int sv[2];

	if (m->log_rx >= 0)
		return 0;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == -1) {
		snprintf(err, errlen, "log socket: %s", strerror(errno));
		return -1;
	}
	m->log_rx = sv[0];
	m->log_tx = sv[1];
	shutdown(m->log_tx, SHUT_RD);
	return 0;
}

/* masterlog_open - open c->log_file (its directory created 0750) */
static struct logfile *
masterlog_open(const struct conf *c, char *err, size_t errlen)
{
	char *dir = xstrdup(c->log_file);
	int rc = mkdir_p(dirname(dir), 0750);

	free(dir);
	if (rc == -1) {
		snprintf(err, errlen, "cannot create the directory of log_file %s: %s",
		    c->log_file, strerror(errno));
		return NULL;
	}
	return logfile_open(c->log_file, (off_t)c->log_file_size_limit,
	    c->log_file_keep, err, errlen);
}

/* masterlog_apply - follow c's log_file: open it (or switch to a new
 * path, or close it when "" ); 0, or -1 with err and nothing changed */
int
masterlog_apply(struct master *m, const struct conf *c, char *err, size_t errlen)
{
	struct logfile *lf;

	if (*c->log_file == '\0') {
		log_set_sink(NULL, NULL);
		logfile_close(&m->logfile);
		return 0;
	}
	if (m->logfile != NULL && strcmp(logfile_path(m->logfile), c->log_file) == 0) {
		logfile_set_limits(m->logfile, (off_t)c->log_file_size_limit,
		    c->log_file_keep);
		return 0;
	}
	if (masterlog_socket(m, err, errlen) == -1 ||
	    (lf = masterlog_open(c, err, errlen)) == NULL)
		return -1;
	logfile_close(&m->logfile);
	m->logfile = lf;
	log_set_sink(masterlog_sink, m);
	masterlog_watch(m);
	return 0;
}

/* masterlog_reopen - SIGUSR1: open log_file again (after a rotation) */
void
masterlog_reopen(struct master *m)
{
	char err[512];

	if (m->logfile == NULL) {
		log_debug("SIGUSR1: no log_file to reopen");
		return;
	}
	masterlog_drain(m);     /* lines sent before the signal: old file */
	if (logfile_reopen(m->logfile, err, sizeof(err)) == -1) {
		log_warnx("%s; writing on to the file already open", err);
		return;
	}
	log_info("reopened log_file %s", logfile_path(m->logfile));
}

/* masterlog_child_fd - what a new child gets as stderr: the log socket
 * when log_file is on, else -1 (it keeps the master's stderr) */
int
masterlog_child_fd(const struct master *m)
{
	return m->logfile != NULL ? m->log_tx : -1;
}

/* masterlog_unwatch - copy what is waiting, stop watching the socket */
void
masterlog_unwatch(struct master *m)
{
	masterlog_drain(m);
	if (m->log_ev != NULL)
		event_free(m->log_ev);
	m->log_ev = NULL;
}

/* masterlog_close - at exit: the last lines, then close everything */
void
masterlog_close(struct master *m)
{
	masterlog_unwatch(m);
	if (m->log_rx >= 0)
		close(m->log_rx);
	if (m->log_tx >= 0)
		close(m->log_tx);
	m->log_rx = m->log_tx = -1;
	log_set_sink(NULL, NULL);
	logfile_close(&m->logfile);
}
