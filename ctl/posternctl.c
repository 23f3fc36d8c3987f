/*
 * posternctl.c - posternctl, the operator's control tool: check and dump
 * the configuration, start, stop, reload and query the master through
 * its pid file and signals.
 *
 * Owns: the command table and the exit statuses documented in
 * posternctl(8): 0 ok, 1 failure, 3 not running (status), 64 usage,
 * 78 configuration error.
 * SECURITY: runs as its caller; reads the configuration and the pid file
 * only, and signals the pid found there only if that process looks like
 * postern (its command line says so). Starts postern with a fixed argv,
 * never through a shell.
 * STANDARDS: none (sysexits(3) codes).
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "pidfile.h"
#include "posternctl.h"
#include "util.h"

#define EXIT_NOT_RUNNING 3
#define START_WAIT_MS 10000
#define STOP_SLACK 10                   /* seconds beyond shutdown_timeout */
#define POLL_MS 50

typedef int cmd_fn(const char *config);

/* One command: its name and handler. */
struct command {
	const char *name;
	cmd_fn *fn;
};

/* usage - the synopsis on stderr, exit EX_USAGE */
static void NORETURN
usage(void)
{
	fprintf(stderr, "usage: posternctl [-c file] command\n"
	    "commands: check-config dump-config start stop reload reopen-logs "
	    "status\n"
	    "          queue list|show|flush|hold|release|delete|requeue "
	    "[--json] [ID]\n"
	    "          route ADDRESS [--sender ADDR]\n"
	    "          dkim-generate DOMAIN SELECTOR [--ed25519] [--dir DIR]\n"
	    "          hash-password\n");
	exit(EXIT_USAGE);
}

/* load - the configuration, or exit EXIT_CONFIG with its one-line error */
static struct conf *
load(const char *path)
{
	char err[1024];
	struct conf *c;

	if ((c = conf_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		exit(EXIT_CONFIG);
	}
	return c;
}

/* sleep_ms - pause for ms milliseconds */
static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* cmd_check_config - load the file; say it is fine */
static int
cmd_check_config(const char *config)
{
	struct conf *c = load(config);

	printf("%s: configuration ok\n", config);
	conf_free(&c);
	return 0;
}

/* cmd_dump_config - print the effective values */
static int
cmd_dump_config(const char *config)
{
	struct conf *c = load(config);

	conf_dump(c, stdout);
	conf_free(&c);
	return 0;
}

/* postern_path - the postern beside this binary (build tree), else the
 * installed one */
static char *
postern_path(void)
{
	char self[PATH_MAX], *p;
	ssize_t n;

	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[n] = '\0';
		p = xasprintf("%s/postern", dirname(self));
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return xstrdup(SBINDIR "/postern");
}

/* run_postern - fork+exec postern -c config and wait for its (daemon
 * parent's) exit status; -1 if it failed */
static int
run_postern(const char *config)
{
	char *path = postern_path();
	int status;
	pid_t pid;

	if ((pid = fork()) == -1) {
		fprintf(stderr, "posternctl: fork: %s\n", strerror(errno));
		free(path);
		return -1;
	}
	if (pid == 0) {
		execl(path, "postern", "-c", config, (char *)NULL);
		fprintf(stderr, "posternctl: cannot execute %s: %s\n", path,
		    strerror(errno));
		_exit(127);
	}
	free(path);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* cmd_start - start the daemon and wait until its pid file is live */
static int
cmd_start(const char *config)
{
	struct conf *c = load(config);
	pid_t pid;
	long waited;
	int rc = 1;

	if (run_postern(config) == 0) {
		for (waited = 0; waited < START_WAIT_MS; waited += POLL_MS) {
			if ((pid = pidfile_running(c->run_dir)) != 0) {
				printf("postern started (pid %d)\n", (int)pid);
				rc = 0;
				break;
			}
			sleep_ms(POLL_MS);
		}
		if (rc != 0)
			fprintf(stderr, "postern did not start within %d s\n",
			    START_WAIT_MS / 1000);
	}
	conf_free(&c);
	return rc;
}

/* cmd_stop - SIGTERM and wait until the master is gone */
static int
cmd_stop(const char *config)
{
	struct conf *c = load(config);
	pid_t pid = pidfile_running(c->run_dir);
	long limit = ((long)c->shutdown_timeout + STOP_SLACK) * 1000, waited;
	int rc = 1;

	conf_free(&c);
	if (pid == 0) {
		printf("postern is not running\n");
		return 0;
	}
	if (kill(pid, SIGTERM) == -1) {
		fprintf(stderr, "posternctl: kill %d: %s\n", (int)pid,
		    strerror(errno));
		return 1;
	}
	for (waited = 0; waited < limit; waited += POLL_MS) {
		if (!pidfile_alive(pid)) {
			printf("postern stopped\n");
			rc = 0;
			break;
		}
		sleep_ms(POLL_MS);
	}
	if (rc != 0)
		fprintf(stderr, "postern (pid %d) did not stop within %ld s\n",
		    (int)pid, limit / 1000);
	return rc;
}

/* signal_master - check the configuration, then send sig to the master
 * and say "postern WHAT (pid N)" */
static int
signal_master(const char *config, int sig, const char *what)
{
	struct conf *c = load(config);
	pid_t pid = pidfile_running(c->run_dir);

	conf_free(&c);
	if (pid == 0) {
		fprintf(stderr, "postern is not running\n");
		return 1;
	}
	if (kill(pid, sig) == -1) {
		fprintf(stderr, "posternctl: kill %d: %s\n", (int)pid,
		    strerror(errno));
		return 1;
	}
	printf("postern %s (pid %d)\n", what, (int)pid);
	return 0;
}

/* cmd_reload - check the configuration, then SIGHUP */
static int
cmd_reload(const char *config)
{
	return signal_master(config, SIGHUP, "reloading");
}

/* cmd_reopen_logs - SIGUSR1: the master reopens log_file (logrotate) */
static int
cmd_reopen_logs(const char *config)
{
	return signal_master(config, SIGUSR1, "reopening its log file");
}

/* cmd_status - running or not, by the pid file */
static int
cmd_status(const char *config)
{
	struct conf *c = load(config);
	pid_t pid = pidfile_running(c->run_dir);

	conf_free(&c);
	if (pid == 0) {
		printf("postern is not running\n");
		return EXIT_NOT_RUNNING;
	}
	printf("postern is running (pid %d)\n", (int)pid);
	return 0;
}

/* Commands that take arguments (posternctl.h). */
struct subcommand {
	const char *name;
	subcmd_fn *fn;
};

static const struct subcommand subcommands[] = {
	{ "queue", posternctl_queue },
	{ "route", posternctl_route },
	{ "dkim-generate", posternctl_dkim_generate },
	{ "hash-password", posternctl_hash_password },
};

static const struct command commands[] = {
	{ "check-config", cmd_check_config },
	{ "dump-config", cmd_dump_config },
	{ "start", cmd_start },
	{ "stop", cmd_stop },
	{ "reload", cmd_reload },
	{ "reopen-logs", cmd_reopen_logs },
	{ "status", cmd_status },
};

/* main - posternctl [-c file] command */
int
main(int argc, char **argv)
{
	const char *config = SYSCONFDIR "/postern/postern.conf";
	size_t i;
	int ch;

	log_init("posternctl", 1, LOG_LEVEL_WARNING);
	/* "+": options end at the command (its own options follow it) */
	while ((ch = getopt(argc, argv, "+c:")) != -1) {
		if (ch == 'c')
			config = optarg;
		else
			usage();
	}
	for (i = 0; optind < argc &&
	    i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(argv[optind], subcommands[i].name) == 0)
			return subcommands[i].fn(config, argc - optind, argv + optind);
	if (argc - optind != 1)
		usage();
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			return commands[i].fn(config);
	fprintf(stderr, "posternctl: unknown command '%s'\n", argv[optind]);
	usage();
}
