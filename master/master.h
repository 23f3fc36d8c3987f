/*
 * master.h - the supervisor's shared state (postern).
 *
 * One struct master holds the configuration in force, the listening
 * sockets the master owns and hands to children, and the child table.
 * Slot i of master.child[] mirrors stats->child[i] (common/stats.h), which
 * httpd reads for /healthz and /metrics.
 */
#ifndef POSTERN_MASTER_H
#define POSTERN_MASTER_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "proc.h"
#include "stats.h"

struct anvil;
struct conf;
struct event;
struct event_base;
struct ipc_chan;
struct logfile;

#define MASTER_LISTEN_BACKLOG 4096
#define MASTER_RESTART_MAX 60           /* longest restart backoff, s */
#define MASTER_QUICK_DEATH 10           /* a child dying sooner is "quick" */
#define MASTER_KILL_SLACK 5             /* SIGKILL after grace + this, s */
#define MASTER_MAX_LISTEN 64            /* SMTP listeners handed to smtpd */

/* One listening socket held by the master. */
struct mlistener {
	char *address;          /* as written in the config */
	int fd;
};

/* One slot of the child table. */
struct mchild {
	struct master *m;
	int used;               /* slot holds a role */
	enum proc_role role;
	int index;
	pid_t pid;              /* 0 while not running */
	time_t started;
	unsigned quick_deaths;  /* consecutive deaths within MASTER_QUICK_DEATH */
	unsigned gen;           /* configuration generation it runs with */
	int ready;              /* sent IPC_MASTER_READY */
	int stopping;           /* IPC_CHILD_STOP sent */
	int retired;            /* free the slot when it exits */
	int replace;            /* start its replacement at once on exit */
	char name[32];          /* "smtpd[0]", the control channel's name */
	struct ipc_chan *control;
	struct event *restart_ev;       /* pending restart after backoff */
	struct event *kill_ev;          /* SIGKILL if a stop takes too long */
};

struct master {
	char *conf_path;        /* absolute */
	struct conf *conf;
	unsigned gen;           /* bumped by every successful reload */
	int foreground;
	struct event_base *base;
	int stats_fd;
	int anvil_fd;                   /* per-client table, smtpd only */
	struct anvil *anvil;            /* its mapping: columns reset only */

	struct mlistener *listen;       /* parallel to conf->listen */
	size_t nlisten;
	struct mlistener http;          /* fd -1 when there is none */
	struct mlistener control;       /* queue control socket (Unix): its
	                                   address is the path; fd -1 when
	                                   there is none. Bound at start
	                                   only, kept across reloads. */

	struct mchild child[STATS_MAX_CHILDREN];

	int shutting_down;
	int shutdown_phase;
	time_t shutdown_deadline;
	int shutdown_forced;            /* grace over: receivers may linger */
	struct event *shutdown_grace_ev;
	struct event *shutdown_kill_ev;

	char *pidfile;
	struct event *sig_ev[5];

	struct logfile *logfile;        /* log_file, NULL when off */
	int log_rx, log_tx;             /* the children's log socket, -1 */
	struct event *log_ev;

	int notify_owed;                /* READY=1 still to send (systemd) */
	struct event *watchdog_ev;
};

/* master.c */
/* master_shutdown_advance - move a graceful stop to its next phase when
 * the current one is done; exits the loop when every child is gone */
void master_shutdown_advance(struct master *m);

/* master_log.c */
/* masterlog_apply - follow conf's log_file (open, switch or close); 0, or
 * -1 with err filled and nothing changed */
int masterlog_apply(struct master *m, const struct conf *c, char *err,
    size_t errlen);
/* masterlog_watch - read the children's log socket from m->base */
void masterlog_watch(struct master *m);
/* masterlog_reopen - SIGUSR1: reopen log_file */
void masterlog_reopen(struct master *m);
/* masterlog_child_fd - the stderr a new child gets, -1: the master's */
int masterlog_child_fd(const struct master *m);
/* masterlog_unwatch - drain the socket, drop its event (before the
 * event base is freed) */
void masterlog_unwatch(struct master *m);
/* masterlog_close - drain the socket, close the file (at exit) */
void masterlog_close(struct master *m);

/* master_notify.c (sd_notify) */
/* notify_init - READY=1 owed; the watchdog timer if systemd wants one */
void notify_init(struct master *m);
/* notify_ready_maybe - READY=1 if owed and children_all_up() */
void notify_ready_maybe(struct master *m);
/* notify_reloading - RELOADING=1 */
void notify_reloading(struct master *m);
/* notify_reloaded - after a reload: ok = taken (READY=1 once the new
 * children are up), else refused (READY=1 now) */
void notify_reloaded(struct master *m, int ok);
/* notify_stopping - STOPPING=1 */
void notify_stopping(struct master *m);

/* master_child.c */
/* child_table_init - empty slots with their timers */
void child_table_init(struct master *m);
/* child_table_free - release timers and channels (at exit) */
void child_table_free(struct master *m);
/* children_start_all - queued, delivery, smtpd, httpd as configured */
void children_start_all(struct master *m);
/* children_reconcile - after a reload: restart every child gracefully and
 * adjust the process counts to the new configuration */
void children_reconcile(struct master *m);
/* children_reap - SIGCHLD: waitpid loop, restarts */
void children_reap(struct master *m);
/* children_stop_role - send IPC_CHILD_STOP(grace) to every live child of
 * role; returns how many are still running */
int children_stop_role(struct master *m, enum proc_role role, unsigned grace);
/* children_all_up - every configured child runs and has reported ready,
 * each with the configuration in force (queued: any generation) */
int children_all_up(const struct master *m);
/* children_live - how many children of role (PROC_ROLE_MAX: any) run */
int children_live(const struct master *m, enum proc_role role);
/* children_cancel_restarts - drop pending restarts (shutting down) */
void children_cancel_restarts(struct master *m);
/* children_kill_all - SIGKILL every running child */
void children_kill_all(struct master *m);
/* child_name - "smtpd[0]" into buf */
const char *child_name(const struct mchild *ch, char *buf, size_t len);

#endif
