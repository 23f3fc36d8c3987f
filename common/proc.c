/*
 * proc.c - the child side of the master-to-child contract (proc.h): argv,
 * inherited descriptors, process title and the common start-up.
 *
 * Owns: struct child's start-up sequence and the control link's close
 * behaviour (the master went away: exit at once).
 * SECURITY: runs with the master's privileges until the caller invokes
 * priv_drop(); opens nothing but the config file. Never trusts its
 * environment beyond POSTERN_LISTEN_FDS and POSTERN_ANVIL_FD, which are
 * range-checked.
 * STANDARDS: none.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "proc.h"
#include "stats.h"
#include "util.h"

extern char **environ;

static const char *const role_names[PROC_ROLE_MAX] = {
	[PROC_MASTER] = "master",
	[PROC_SMTPD] = "smtpd",
	[PROC_QUEUED] = "queued",
	[PROC_DELIVERY] = "delivery",
	[PROC_HTTPD] = "httpd",
};

/* proc_role_name - "smtpd", "queued", ... ("?" if out of range) */
const char *
proc_role_name(enum proc_role role)
{
	return (unsigned)role < PROC_ROLE_MAX ? role_names[role] : "?";
}

/* child_usage - complain about argv and exit EXIT_CONFIG */
static void NORETURN
child_usage(const char *prog)
{
	fprintf(stderr, "usage: %s -c CONFIG [-i INDEX] [-f]\n", prog);
	exit(EXIT_CONFIG);
}

/* child_args_parse - -c CONFIG -i INDEX [-f] */
void
child_args_parse(int argc, char **argv, struct child_args *a)
{
	char *end;
	long v;
	int ch;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((ch = getopt(argc, argv, "c:i:f")) != -1) {
		switch (ch) {
		case 'c':
			a->config = xstrdup(optarg);
			break;
		case 'i':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || v < 0 || v > 1000)
				child_usage(argv[0]);
			a->index = (int)v;
			break;
		case 'f':
			a->foreground = 1;
			break;
		default:
			child_usage(argv[0]);
		}
	}
	if (optind != argc || a->config == NULL)
		child_usage(argc > 0 ? argv[0] : "postern-child");
}

/* child_listen_fds - POSTERN_LISTEN_FDS, 0 when absent or malformed */
int
child_listen_fds(void)
{
	const char *s = getenv(PROC_ENV_LISTEN_FDS);
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > 256)
		return 0;
	return (int)v;
}

/* child_anvil_fd - POSTERN_ANVIL_FD: a descriptor after the listeners,
 * -1 when absent or malformed */
int
child_anvil_fd(void)
{
	const char *s = getenv(PROC_ENV_ANVIL_FD);
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < PROC_FD_LISTEN0 ||
	    v > PROC_FD_LISTEN0 + 256)
		return -1;
	return (int)v;
}

/* child_control_closed - EOF on the control link: the master died */
static void
child_control_closed(struct ipc_chan *c, void *arg)
{
	log_info("master went away, exiting");
	exit(0);
}

/* child_title - "postern: ROLE" or "postern: ROLE N" */
static void
child_title(enum proc_role role, int index)
{
	if (index > 0)
		setproctitle("-postern: %s %d", proc_role_name(role), index);
	else
		setproctitle("-postern: %s", proc_role_name(role));
}

/* child_start - common start-up of every child (see proc.h) */
void
child_start(struct child *ch, enum proc_role role, int argc, char **argv,
    const struct ipc_handler *control_table)
{
	char err[1024], name[32];

	memset(ch, 0, sizeof(*ch));
	ch->role = role;
	/* the title overwrites argv's strings: keep copies of what we need
	 * (child_args_parse duplicates the config path) before taking them */
	child_args_parse(argc, argv, &ch->args);
	setproctitle_init(argc, argv, environ);
	child_title(role, ch->args.index);
	log_init(proc_role_name(role), ch->args.foreground, LOG_LEVEL_INFO);
	if ((ch->conf = conf_load(ch->args.config, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		exit(EXIT_CONFIG);
	}
	log_set_level(ch->conf->log_level);
	log_set_format(ch->conf->log_format);
	if (getenv(PROC_ENV_LOG_STREAM) != NULL)
		log_set_stderr();       /* stderr is the master's log socket */
	stats_attach(PROC_FD_STATS);
	if ((ch->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		fatal("signal(SIGPIPE)");
	ch->control = ipc_chan_new(ch->base, PROC_FD_CONTROL, "master", control_table,
	    child_control_closed, ch);
	snprintf(name, sizeof(name), "%s[%d]", proc_role_name(role), ch->args.index);
	log_debug("%s: started, config %s", name, ch->args.config);
}

/* child_ready - tell the master start-up (and priv_drop) is done */
void
child_ready(struct child *ch)
{
	ipc_send_empty(ch->control, IPC_MASTER_READY);
}
