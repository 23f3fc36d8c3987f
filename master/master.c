/*
 * master.c - postern, the supervisor: reads the configuration, prepares
 * the spool, maildirs and DKIM development keys, binds the listening
 * sockets, writes the pid file, starts the children (master_child.c) and
 * handles SIGHUP (reload), SIGTERM/SIGINT (graceful stop), SIGUSR1
 * (reopen log_file, master_log.c) and SIGCHLD; tells systemd when it is
 * ready, reloading and stopping (master_notify.c).
 *
 * Owns: the configuration in force, the listening sockets, the pid file
 * RUN_DIR/postern.pid, the stats memfd, and the queue control socket
 * (control_socket, mode 0666: bound here, accepted only by queued, which
 * checks each caller's uid; removed at exit, a stale one at start).
 * SECURITY: the master keeps every privilege it was started with and
 * drops nothing: on a reload it must bind new (possibly privileged) ports
 * and start children that open DKIM keys and the spool before they drop
 * to conf->user themselves. It therefore touches no network input: it
 * never accepts connections, reads no message data and talks only to its
 * own children over socketpairs. It creates spool_dir and maildir
 * transport paths owned by conf->user when root, and DKIM keys mode 0600.
 * Relative paths in the configuration are resolved against the directory
 * postern was started from, so the master stays in it (no chdir("/")):
 * children and reloads resolve them the same way.
 * STANDARDS: none (RFC 6376 3.6.1 for the TXT record it prints).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "anvil.h"
#include "conf.h"
#include "dkimkey.h"
#include "log.h"
#include "pidfile.h"
#include "master.h"
#include "netaddr.h"
#include "privdrop.h"
#include "proc.h"
#include "stats.h"
#include "util.h"

#define EXIT_USAGE 64

/* One shutdown phase: the roles asked to stop together. */
static const enum proc_role shutdown_phases[][2] = {
	{ PROC_SMTPD, PROC_HTTPD },     /* stop taking new work */
	{ PROC_DELIVERY, PROC_MASTER }, /* finish deliveries in flight */
	{ PROC_QUEUED, PROC_MASTER },   /* then the queue */
};
#define NSHUTDOWN_PHASES (sizeof(shutdown_phases) / sizeof(shutdown_phases[0]))

/* usage - the synopsis, exit EX_USAGE */
static void NORETURN
usage(void)
{
	fprintf(stderr, "usage: postern [-f] [-c file]\n");
	exit(EXIT_USAGE);
}

/* mkdir_parents - mkdir_p path's parents 0755 and path itself with mode
 * (mkdir_p alone would give the parents mode too, and a 0700 parent
 * would lock the unprivileged children out) */
static int
mkdir_parents(const char *path, unsigned mode)
{
	char *dir = xstrdup(path);
	int rc = mkdir_p(dirname(dir), 0755);

	free(dir);
	return rc == -1 ? -1 : mkdir_p(path, mode);
}

/* pidf_check - create run_dir; refuse to start when another postern
 * is running on the same pid file */
static void
pidf_check(struct master *m)
{
	pid_t pid;

	if (mkdir_parents(m->conf->run_dir, 0755) == -1)
		fatal("cannot create run_dir %s", m->conf->run_dir);
	m->pidfile = pidfile_path(m->conf->run_dir);
	if ((pid = pidfile_read(m->pidfile)) != 0 && pid != getpid() &&
	    pidfile_alive(pid)) {
		fprintf(stderr, "postern is already running (pid %d)\n", (int)pid);
		exit(1);
	}
}

/* pidf_write - write our pid through a temporary file and rename(2),
 * so readers never see a partial file */
static void
pidf_write(struct master *m)
{
	char *tmp = xasprintf("%s.tmp", m->pidfile);
	char buf[32];
	int fd, len;

	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1 ||
	    write(fd, buf, (size_t)len) != len || close(fd) == -1 ||
	    rename(tmp, m->pidfile) == -1)
		fatal("cannot write pid file %s", m->pidfile);
	free(tmp);
}

/* pidf_remove - remove the pid file if it is still ours */
static void
pidf_remove(struct master *m)
{
	if (m->pidfile != NULL && pidfile_read(m->pidfile) == getpid() &&
	    unlink(m->pidfile) == -1)
		log_warn("unlink %s", m->pidfile);
}

/* dir_for_user - mkdir_parents path with mode; when root, chown it to
 * user */
static int
dir_for_user(const char *path, unsigned mode, const char *user, char *err,
    size_t errlen)
{
	uid_t uid;
	gid_t gid;

	if (mkdir_parents(path, mode) == -1) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	if (geteuid() != 0 || user == NULL || *user == '\0')
		return 0;       /* nobody to hand it to: children keep our uid */
	if (priv_lookup(user, &uid, &gid) == -1) {
		snprintf(err, errlen, "user '%s' does not exist", user);
		return -1;
	}
	if (chown(path, uid, gid) == -1) {
		snprintf(err, errlen, "cannot chown %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* dkim_generate - create the missing keys of generate = true sections */
static int
dkim_generate(const struct conf *c, char *err, size_t errlen)
{
	char e[256], *dir;
	size_t i;

	for (i = 0; i < c->ndkim; i++) {
		const struct conf_dkim *d = &c->dkim[i];

		if (!d->generate || access(d->key, F_OK) == 0)
			continue;
		dir = xstrdup(d->key);
		if (mkdir_parents(dirname(dir), 0700) == -1) {
			snprintf(err, errlen, "dkim %s: cannot create %s: %s",
			    d->domain, dir, strerror(errno));
			free(dir);
			return -1;
		}
		free(dir);
		if (dkimkey_generate(d->key, DKIM_RSA, e, sizeof(e)) == -1) {
			snprintf(err, errlen, "dkim %s: cannot generate key %s: %s",
			    d->domain, d->key, e);
			return -1;
		}
		log_info("dkim %s: generated a new RSA key %s", d->domain, d->key);
	}
	return 0;
}

/* prepare_fs - spool, maildirs and DKIM keys the configuration needs */
static int
prepare_fs(const struct conf *c, char *err, size_t errlen)
{
	size_t i;

	if (geteuid() == 0 && (c->user == NULL || *c->user == '\0'))
		log_warnx("%s: user is empty: every child runs as root "
		    "(for development only)", c->path);
	if (dir_for_user(c->spool_dir, 0700, c->user, err, errlen) == -1)
		return -1;
	for (i = 0; i < c->ntransport; i++)
		if ((c->transport[i].type == TRANSPORT_MAILDIR ||
		    c->transport[i].type == TRANSPORT_FILE) &&
		    dir_for_user(c->transport[i].path, 0700, c->user, err,
		    errlen) == -1)
			return -1;
	return dkim_generate(c, err, errlen);
}

/* check_programs - every child program the configuration needs exists */
static int
check_programs(const struct conf *c, char *err, size_t errlen)
{
	static const enum proc_role roles[] = {
		PROC_QUEUED, PROC_DELIVERY, PROC_SMTPD, PROC_HTTPD,
	};
	char *path;
	size_t i;
	int rc = 0;

	for (i = 0; i < sizeof(roles) / sizeof(roles[0]) && rc == 0; i++) {
		path = xasprintf("%s/postern-%s", c->libexec_dir,
		    proc_role_name(roles[i]));
		if (access(path, X_OK) == -1) {
			snprintf(err, errlen, "cannot execute %s: %s", path,
			    strerror(errno));
			rc = -1;
		}
		free(path);
	}
	return rc;
}

/* dkim_announce - log the DNS record of every generate = true key, so
 * the quick-start user can publish or verify it */
static void
dkim_announce(const struct conf *c)
{
	char e[256], *txt;
	size_t i;

	for (i = 0; i < c->ndkim; i++) {
		const struct conf_dkim *d = &c->dkim[i];

		if (!d->generate)
			continue;
		if ((txt = dkimkey_txt(d->key, e, sizeof(e))) == NULL) {
			log_warnx("dkim %s: %s", d->domain, e);
			continue;
		}
		log_info("dkim: %s selector %s key %s; publish "
		    "%s._domainkey.%s. IN TXT \"%s\"", d->domain, d->selector,
		    d->key, d->selector, d->domain, txt);
		free(txt);
	}
}

/* listener_find - the open listener of m bound to address, or NULL */
static struct mlistener *
listener_find(struct master *m, const char *address)
{
	size_t i;

	for (i = 0; i < m->nlisten; i++)
		if (m->listen[i].fd >= 0 && strcmp(m->listen[i].address, address) == 0)
			return &m->listen[i];
	if (m->http.fd >= 0 && strcmp(m->http.address, address) == 0)
		return &m->http;
	return NULL;
}

/* listener_open - bind address unless m already holds it (fd -2 marks
 * "take over the old one"); 0, or -1 with err */
static int
listener_open(struct master *m, struct mlistener *l, const char *address,
    char *err, size_t errlen)
{
	const char *why = "listen";

	l->address = xstrdup(address);
	if (listener_find(m, address) != NULL) {
		l->fd = -2;
		return 0;
	}
	if ((l->fd = listen_socket(address, MASTER_LISTEN_BACKLOG, &why)) == -1) {
		snprintf(err, errlen, "cannot listen on %s: %s: %s", address, why,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* listeners_release - close and free a listener array (fds >= 0 only) */
static void
listeners_release(struct mlistener *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (l[i].fd >= 0)
			close(l[i].fd);
		free(l[i].address);
	}
}

/* listeners_dup_check - refuse an address configured twice */
static int
listeners_dup_check(const struct conf *c, char *err, size_t errlen)
{
	size_t i, j;

	if (c->nlisten > MASTER_MAX_LISTEN) {
		snprintf(err, errlen, "too many listen sections (%zu, at most %d)",
		    c->nlisten, MASTER_MAX_LISTEN);
		return -1;
	}
	for (i = 0; i < c->nlisten; i++) {
		const char *a = c->listen[i].address;

		for (j = i + 1; j < c->nlisten; j++)
			if (strcmp(a, c->listen[j].address) == 0)
				goto dup;
		if (c->http_listen != NULL && strcmp(a, c->http_listen) == 0)
			goto dup;
		continue;
dup:
		snprintf(err, errlen, "address %s is configured twice", a);
		return -1;
	}
	return 0;
}

/* listeners_take_over - move the fds marked -2 from the old set */
static void
listeners_take_over(struct master *m, struct mlistener *l, size_t n)
{
	struct mlistener *old;
	size_t i;

	for (i = 0; i < n; i++) {
		if (l[i].fd != -2)
			continue;
		old = listener_find(m, l[i].address);
		l[i].fd = old->fd;
		old->fd = -1;
	}
}

/* listeners_update - bind the sockets c asks for, keeping those whose
 * address is unchanged and closing those no longer configured; 0, or -1
 * with err filled and nothing changed */
static int
listeners_update(struct master *m, const struct conf *c, char *err, size_t errlen)
{
	struct mlistener *nl, nh = { NULL, -1 };
	size_t i;

	if (listeners_dup_check(c, err, errlen) == -1)
		return -1;
	nl = xcalloc(c->nlisten + 1, sizeof(*nl));
	for (i = 0; i < c->nlisten; i++)
		nl[i].fd = -1;          /* unopened: nothing to close on failure */
	for (i = 0; i < c->nlisten; i++)
		if (listener_open(m, &nl[i], c->listen[i].address, err, errlen) == -1)
			goto fail;
	if (c->http_listen != NULL && c->http_listen[0] != '\0' &&
	    listener_open(m, &nh, c->http_listen, err, errlen) == -1)
		goto fail;
	listeners_take_over(m, nl, c->nlisten);
	listeners_take_over(m, &nh, 1);
	listeners_release(m->listen, m->nlisten);
	listeners_release(&m->http, m->http.address != NULL);
	free(m->listen);
	m->listen = nl;
	m->nlisten = c->nlisten;
	m->http = nh;
	return 0;
fail:
	for (i = 0; i < c->nlisten; i++)
		if (nl[i].fd == -2)     /* still the old set's: not ours to close */
			nl[i].fd = -1;
	listeners_release(nl, c->nlisten);
	free(nl);
	if (nh.address != NULL) {
		if (nh.fd >= 0)
			close(nh.fd);
		free(nh.address);
	}
	return -1;
}

/* control_stale - 1 if path is a socket nobody listens on (left by a
 * postern that was killed), 0 if it is absent; -1 with err filled if it
 * is something else or still answers */
static int
control_stale(const char *path, const struct sockaddr_un *sun, char *err,
    size_t errlen)
{
	struct stat st;
	int fd, live;

	if (lstat(path, &st) == -1)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "control_socket %s exists and is not a socket",
		    path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	if (live) {
		snprintf(err, errlen, "control_socket %s is in use by another "
		    "postern", path);
		return -1;
	}
	return 1;
}

/* control_defaulted - 1 if control_socket is the default under run_dir */
static int
control_defaulted(const struct conf *c)
{
	char *def = xasprintf("%s/control.sock", c->run_dir);
	int same = strcmp(def, c->control_socket) == 0;

	free(def);
	return same;
}

/* control_open - bind the queue control socket, mode 0666 (anyone may
 * list and submit; queued checks the caller's uid for the rest) */
static int
control_open(struct master *m, char *err, size_t errlen)
{
	const char *path = m->conf->control_socket;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, stale;

	m->control.fd = -1;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control_socket %s: path too long for a Unix "
		    "socket", path);
		if (!control_defaulted(m->conf))
			return -1;
		/* only the default grew too long (a deep run_dir): run on */
		log_warnx("%s; queue control is off (set control_socket)", err);
		return 0;
	}
	if ((stale = control_stale(path, &sun, err, errlen)) == -1)
		return -1;
	if (stale && unlink(path) == -1) {
		snprintf(err, errlen, "cannot remove stale control_socket %s: %s",
		    path, strerror(errno));
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(path, 0666) == -1 || listen(fd, MASTER_LISTEN_BACKLOG) == -1) {
		snprintf(err, errlen, "cannot listen on control_socket %s: %s",
		    path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	m->control.fd = fd;
	m->control.address = xstrdup(path);
	return 0;
}

/* control_close - at exit: close and remove the control socket */
static void
control_close(struct master *m)
{
	struct stat st;

	if (m->control.fd >= 0) {
		close(m->control.fd);
		m->control.fd = -1;
	}
	if (m->control.address != NULL) {
		if (lstat(m->control.address, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    unlink(m->control.address) == -1)
			log_warn("unlink %s", m->control.address);
		free(m->control.address);
		m->control.address = NULL;
	}
}

/* listeners_close_all - stop accepting: close the master's copies */
static void
listeners_close_all(struct master *m)
{
	size_t i;

	for (i = 0; i < m->nlisten; i++)
		if (m->listen[i].fd >= 0) {
			close(m->listen[i].fd);
			m->listen[i].fd = -1;
		}
	if (m->http.fd >= 0) {
		close(m->http.fd);
		m->http.fd = -1;
	}
}

/* daemonize - fork, setsid, fork; stdio to /dev/null */
static void
daemonize(void)
{
	pid_t pid;
	int fd;

	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (setsid() == -1)
		fatal("setsid");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	umask(022);
	if ((fd = open("/dev/null", O_RDWR)) == -1)
		fatal("/dev/null");
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

/* master_reload - SIGHUP: load the file again and, when it is valid,
 * switch to it and replace every child gracefully */
static void
master_reload(struct master *m)
{
	char err[1024];
	struct conf *nc;

	if (m->shutting_down)
		return;
	log_info("reloading %s", m->conf_path);
	notify_reloading(m);
	/* the pid file stays where it was written even if run_dir changed */
	if ((nc = conf_load(m->conf_path, err, sizeof(err))) == NULL)
		goto bad;
	if (check_programs(nc, err, sizeof(err)) == -1 ||
	    prepare_fs(nc, err, sizeof(err)) == -1 ||
	    listeners_update(m, nc, err, sizeof(err)) == -1) {
		conf_free(&nc);
		goto bad;
	}
	conf_free(&m->conf);
	m->conf = nc;
	m->gen++;
	log_set_level(nc->log_level);
	log_set_format(nc->log_format);
	if (masterlog_apply(m, nc, err, sizeof(err)) == -1)
		log_warnx("reload: %s; logging on as before", err);
	dkim_announce(nc);
	children_reconcile(m);
	log_info("reloaded %s", m->conf_path);
	notify_reloaded(m, 1);
	return;
bad:
	log_warnx("reload: %s; keeping the running configuration", err);
	notify_reloaded(m, 0);
}

/* shutdown_kill - the grace period is over: SIGKILL what is left */
static void
shutdown_kill(evutil_socket_t fd, short ev, void *arg)
{
	children_kill_all(arg);
}

/* shutdown_grace - the grace period is over: go on with delivery and
 * queued even if receivers are still finishing */
static void
shutdown_grace(evutil_socket_t fd, short ev, void *arg)
{
	struct master *m = arg;

	m->shutdown_forced = 1;
	master_shutdown_advance(m);
}

/* master_stop - SIGTERM/SIGINT: stop accepting, then stop the children
 * phase by phase (master_shutdown_advance) */
static void
master_stop(struct master *m)
{
	struct timeval tv = { m->conf->shutdown_timeout + MASTER_KILL_SLACK, 0 };
	struct timeval grace = { m->conf->shutdown_timeout, 0 };

	if (m->shutting_down)
		return;
	log_info("stopping");
	notify_stopping(m);
	m->shutting_down = 1;
	m->shutdown_deadline = time(NULL) + m->conf->shutdown_timeout;
	listeners_close_all(m);
	children_cancel_restarts(m);
	m->shutdown_kill_ev = evtimer_new(m->base, shutdown_kill, m);
	m->shutdown_grace_ev = evtimer_new(m->base, shutdown_grace, m);
	if (m->shutdown_kill_ev == NULL || m->shutdown_grace_ev == NULL)
		fatalx("evtimer_new");
	evtimer_add(m->shutdown_kill_ev, &tv);
	evtimer_add(m->shutdown_grace_ev, &grace);
	master_shutdown_advance(m);
}

/* master_shutdown_advance - ask the current phase's roles to stop; move
 * on when none of them runs (or, for the receivers, when the grace period
 * is over); leave the loop when no child is left */
void
master_shutdown_advance(struct master *m)
{
	time_t left;
	size_t r;
	int running;

	while (m->shutdown_phase < (int)NSHUTDOWN_PHASES) {
		left = m->shutdown_deadline - time(NULL);
		running = 0;
		for (r = 0; r < 2; r++) {
			enum proc_role role = shutdown_phases[m->shutdown_phase][r];

			if (role != PROC_MASTER)
				running += children_stop_role(m, role,
				    left > 1 ? (unsigned)left : 1);
		}
		if (running > 0 && !(m->shutdown_forced && m->shutdown_phase == 0))
			return;
		m->shutdown_phase++;
	}
	if (children_live(m, PROC_ROLE_MAX) == 0)
		event_base_loopbreak(m->base);
}

/* on_signal - SIGCHLD, SIGHUP, SIGTERM, SIGINT from the event loop */
static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct master *m = arg;

	switch (sig) {
	case SIGCHLD:
		children_reap(m);
		break;
	case SIGHUP:
		master_reload(m);
		break;
	case SIGUSR1:
		masterlog_reopen(m);
		break;
	default:
		master_stop(m);
		break;
	}
}

/* signals_init - route the five signals through the event loop */
static void
signals_init(struct master *m)
{
	static const int sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGUSR1 };
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		m->sig_ev[i] = evsignal_new(m->base, sigs[i], on_signal, m);
		if (m->sig_ev[i] == NULL || event_add(m->sig_ev[i], NULL) == -1)
			fatalx("cannot watch signal %d", sigs[i]);
	}
}

/* master_load - the first configuration load; errors end the program */
static void
master_load(struct master *m, const char *path)
{
	char err[1024], *abs;

	if ((m->conf = conf_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		exit(EXIT_CONFIG);
	}
	abs = realpath(path, NULL);
	m->conf_path = abs != NULL ? abs : xstrdup(path);
	log_set_level(m->conf->log_level);
	log_set_format(m->conf->log_format);
}

/* master_prepare - everything that can fail with a clear message on the
 * terminal, done before daemonising */
static void
master_prepare(struct master *m)
{
	char err[1024];

	if (check_programs(m->conf, err, sizeof(err)) == -1 ||
	    prepare_fs(m->conf, err, sizeof(err)) == -1 ||
	    masterlog_apply(m, m->conf, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		exit(EXIT_CONFIG);
	}
	pidf_check(m);
	m->stats_fd = stats_create();
	m->anvil_fd = anvil_create(&m->anvil);
	if (listeners_update(m, m->conf, err, sizeof(err)) == -1 ||
	    control_open(m, err, sizeof(err)) == -1)
		fatalx("%s", err);
}

/* master_cleanup - free everything at exit (keeps sanitizers quiet) */
static void
master_cleanup(struct master *m)
{
	size_t i;

	child_table_free(m);
	for (i = 0; i < sizeof(m->sig_ev) / sizeof(m->sig_ev[0]); i++)
		if (m->sig_ev[i] != NULL)
			event_free(m->sig_ev[i]);
	if (m->shutdown_kill_ev != NULL)
		event_free(m->shutdown_kill_ev);
	if (m->shutdown_grace_ev != NULL)
		event_free(m->shutdown_grace_ev);
	if (m->watchdog_ev != NULL)
		event_free(m->watchdog_ev);
	masterlog_unwatch(m);      /* before the base goes */
	listeners_close_all(m);
	listeners_release(m->listen, m->nlisten);
	listeners_release(&m->http, m->http.address != NULL);
	free(m->listen);
	control_close(m);
	event_base_free(m->base);
	pidf_remove(m);
	free(m->pidfile);
	free(m->conf_path);
	conf_free(&m->conf);
}

/* main - postern [-f] [-c file] */
int
main(int argc, char **argv)
{
	static struct master m;
	const char *path = SYSCONFDIR "/postern/postern.conf";
	int ch;

	setproctitle_init(argc, argv, environ);
	m.http.fd = -1;
	m.control.fd = -1;
	m.stats_fd = -1;
	m.anvil_fd = -1;
	m.log_rx = m.log_tx = -1;
	while ((ch = getopt(argc, argv, "fc:")) != -1) {
		if (ch == 'f')
			m.foreground = 1;
		else if (ch == 'c')
			path = optarg;
		else
			usage();
	}
	if (optind != argc)
		usage();
	log_init("master", 1, LOG_LEVEL_INFO);
	master_load(&m, path);
	master_prepare(&m);
	if (!m.foreground) {
		daemonize();
		log_init("master", 0, m.conf->log_level);
	}
	pidf_write(&m);
	setproctitle("-postern: master");
	if ((m.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	signals_init(&m);
	masterlog_watch(&m);
	child_table_init(&m);
	log_info("starting (pid %d) with %s", (int)getpid(), m.conf_path);
	dkim_announce(m.conf);
	notify_init(&m);
	children_start_all(&m);
	event_base_dispatch(m.base);
	master_cleanup(&m);
	log_info("stopped");
	masterlog_close(&m);
	return 0;
}
