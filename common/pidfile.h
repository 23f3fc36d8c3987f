/*
 * pidfile.h - the master's pid file, read by the master itself (to refuse
 * a second instance) and by posternctl (stop, reload, status).
 */
#ifndef POSTERN_PIDFILE_H
#define POSTERN_PIDFILE_H

#include <sys/types.h>

#define PIDFILE_NAME "postern.pid"

/* pidfile_path - "RUN_DIR/postern.pid", malloc'd */
char *pidfile_path(const char *run_dir);
/* pidfile_read - the pid in path, or 0 when missing or malformed */
pid_t pidfile_read(const char *path);
/* pidfile_alive - 1 if pid names a running postern (or a process we
 * cannot inspect); a zombie or an unrelated program that reuses the pid
 * is not */
int pidfile_alive(pid_t pid);
/* pidfile_running - the live postern named by RUN_DIR's pid file, or 0 */
pid_t pidfile_running(const char *run_dir);

#endif
