/*
 * proc.h - the master-to-child contract (Dovecot master-interface.h,
 * Postfix master_proto.h): which programs exist, their argv, and the file
 * descriptors each inherits. Change both sides together.
 *
 * Every child is exec'd from $libexec_dir as
 *     postern-ROLE -c CONFIG -i INDEX [-f]
 * (-f: log to stderr, the master runs in the foreground). It starts with
 * the master's privileges, reads CONFIG itself, opens what it needs
 * (delivery: DKIM keys), calls priv_drop(), sends IPC_MASTER_READY on the
 * control link, and runs its event loop until IPC_CHILD_STOP or EOF on the
 * control link (the master died: exit at once).
 *
 * Inherited descriptors:
 *   PROC_FD_CONTROL   3  socketpair to the master (every child)
 *   PROC_FD_STATS     4  memfd of struct stats_shm (every child)
 *   PROC_FD_QUEUE     5  link to queued (smtpd, delivery, httpd); queued
 *                        gets its links with IPC_QUEUED_NEW_LINK instead
 *   PROC_FD_LISTEN0   6  first listening socket: smtpd gets one per
 *                        configured listener, in config order; httpd gets
 *                        the HTTP listener; queued gets the control
 *                        socket (Unix, conf control_socket). Their count
 *                        is in the environment variable
 *                        POSTERN_LISTEN_FDS.
 *   (after the listeners) smtpd only: the memfd of the per-client table
 *                        shared by the smtpd processes (common/anvil.h);
 *                        its number is in POSTERN_ANVIL_FD.
 * Nothing else is inherited; stdin is /dev/null, stdout/stderr are the
 * master's, except that with log_file set stderr is the master's log
 * socket (a SOCK_DGRAM socketpair: one datagram per line, written to the
 * file by the master alone, master/master_log.c) and the environment
 * variable POSTERN_LOG_STREAM is "1": the child then logs every line to
 * stderr, daemon or not. NOTIFY_SOCKET and WATCHDOG_* (systemd) are the
 * master's alone and removed from the children's environment.
 */
#ifndef POSTERN_PROC_H
#define POSTERN_PROC_H

#define PROC_FD_CONTROL 3
#define PROC_FD_STATS 4
#define PROC_FD_QUEUE 5
#define PROC_FD_LISTEN0 6
#define PROC_ENV_LISTEN_FDS "POSTERN_LISTEN_FDS"
#define PROC_ENV_ANVIL_FD "POSTERN_ANVIL_FD"
#define PROC_ENV_LOG_STREAM "POSTERN_LOG_STREAM"

enum proc_role {
	PROC_MASTER = 0,
	PROC_SMTPD,
	PROC_QUEUED,
	PROC_DELIVERY,
	PROC_HTTPD,
	PROC_ROLE_MAX
};

/* proc_role_name - "smtpd", "queued", ... */
const char *proc_role_name(enum proc_role role);

/* Options every child parses from argv. */
struct child_args {
	const char *config;     /* -c */
	int index;              /* -i */
	int foreground;         /* -f */
};

struct conf;
struct event_base;
struct ipc_chan;
struct ipc_handler;

/* What every child holds after child_start(). */
struct child {
	enum proc_role role;
	struct child_args args;
	struct conf *conf;
	struct event_base *base;
	struct ipc_chan *control;       /* link to the master */
};

/* child_start - the common start-up of every child: parse argv, set the
 * process title "postern: ROLE" (and the index when there are several),
 * log_init, conf_load (fatal with EXIT_CONFIG on error), stats_attach,
 * event_base_new, ignore SIGPIPE, and open the control link with the
 * child's own handler table (which handles at least IPC_CHILD_STOP). EOF
 * on the control link means the master died: the child exits 0 at once. */
void child_start(struct child *ch, enum proc_role role, int argc, char **argv,
    const struct ipc_handler *control_table);
/* child_ready - after priv_drop(): tell the master start-up is done */
void child_ready(struct child *ch);

/* child_args_parse - parse argv as above; usage error exits EXIT_CONFIG */
void child_args_parse(int argc, char **argv, struct child_args *a);
/* child_listen_fds - number of PROC_FD_LISTEN0.. descriptors (env) */
int child_listen_fds(void);
/* child_anvil_fd - smtpd: the anvil descriptor (env), -1 without one */
int child_anvil_fd(void);

#endif
