/*
 * pidfile.c - reading the master's pid file and telling whether the pid
 * in it is still a running postern.
 *
 * Owns: nothing on disk (the master writes and removes the file).
 * SECURITY: the file's content is only trusted as far as /proc confirms:
 * a stale pid reused by another program is not postern.
 * STANDARDS: none.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pidfile.h"
#include "util.h"

/* pidfile_path - "RUN_DIR/postern.pid" */
char *
pidfile_path(const char *run_dir)
{
	return xasprintf("%s/%s", run_dir, PIDFILE_NAME);
}

/* pidfile_read - the pid in path, or 0 */
pid_t
pidfile_read(const char *path)
{
	char buf[32];
	ssize_t n;
	long v;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strtol(buf, NULL, 10);
	return v > 0 && v < INT_MAX ? (pid_t)v : 0;
}

/* pidfile_alive - pid runs and its command line says postern */
int
pidfile_alive(pid_t pid)
{
	char path[64], buf[256];
	ssize_t n;
	int fd;

	if (pid <= 0 || (kill(pid, 0) == -1 && errno != EPERM))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;       /* zombies have an empty command line */
	buf[n] = '\0';
	return memmem(buf, (size_t)n, "postern", 7) != NULL;
}

/* pidfile_running - the running postern of run_dir, or 0 */
pid_t
pidfile_running(const char *run_dir)
{
	char *path = pidfile_path(run_dir);
	pid_t pid = pidfile_read(path);

	free(path);
	return pidfile_alive(pid) ? pid : 0;
}
