/*
 * logfile.c - the master's log file: append, reopen, rotate by size.
 *
 * Owns: the file descriptor of log_file and its size as written.
 * Rotation (like seed 002's FILE logger sizeLimit, numbered as logrotate
 * does): before a line would take the file past the limit, PATH.(KEEP-1)
 * is renamed to PATH.KEEP (the oldest is replaced), ..., PATH to PATH.1,
 * and a new PATH is opened; a file already over the limit when opened is
 * rotated before its first line. A line is never split across files and
 * one longer than the limit gets a file of its own.
 * SECURITY: opened by the master (root) with O_NOFOLLOW, O_APPEND and
 * mode 0640, so the unprivileged children cannot write the file directly
 * nor point it elsewhere with a symbolic link; they reach it only through
 * the master's log socket (master/master_log.c).
 * STANDARDS: none.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "logfile.h"
#include "util.h"

struct logfile {
	char *path;
	int fd;
	off_t size;             /* bytes in the current file */
	off_t limit;            /* 0: no rotation by size */
	int keep;               /* numbered files kept */
	int rotate_failed;      /* stop retrying until the next reopen */
};

/* lf_open_fd - open path for appending; fd and *size, or -1 with err */
static int
lf_open_fd(const char *path, off_t *size, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY |
	    O_NOFOLLOW, 0640);
	if (fd == -1) {
		snprintf(err, errlen, "cannot open log_file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "log_file %s is not a regular file", path);
		close(fd);
		return -1;
	}
	*size = st.st_size;
	return fd;
}

/* logfile_open - a new logfile on path, or NULL with err */
struct logfile *
logfile_open(const char *path, off_t limit, int keep, char *err, size_t errlen)
{
	struct logfile *lf;
	off_t size;
	int fd;

	if ((fd = lf_open_fd(path, &size, err, errlen)) == -1)
		return NULL;
	lf = xcalloc(1, sizeof(*lf));
	lf->path = xstrdup(path);
	lf->fd = fd;
	lf->size = size;
	logfile_set_limits(lf, limit, keep);
	return lf;
}

/* logfile_path - the configured path */
const char *
logfile_path(const struct logfile *lf)
{
	return lf->path;
}

/* logfile_set_limits - size limit (0: none) and numbered files kept */
void
logfile_set_limits(struct logfile *lf, off_t limit, int keep)
{
	lf->limit = limit > 0 ? limit : 0;
	lf->keep = keep >= 1 ? keep : 1;
	lf->rotate_failed = 0;
}

/* logfile_reopen - open path again and switch to it */
int
logfile_reopen(struct logfile *lf, char *err, size_t errlen)
{
	off_t size;
	int fd;

	if ((fd = lf_open_fd(lf->path, &size, err, errlen)) == -1)
		return -1;
	if (lf->fd >= 0)
		close(lf->fd);
	lf->fd = fd;
	lf->size = size;
	lf->rotate_failed = 0;
	return 0;
}

/* lf_rotate - shift PATH.N up by one, PATH to PATH.1, open a new PATH;
 * 0, or -1 with err (the current file stays in use) */
static int
lf_rotate(struct logfile *lf, char *err, size_t errlen)
{
	char from[PATH_MAX], to[PATH_MAX];
	int i;

	for (i = lf->keep - 1; i >= 1; i--) {
		snprintf(from, sizeof(from), "%s.%d", lf->path, i);
		snprintf(to, sizeof(to), "%s.%d", lf->path, i + 1);
		if (rename(from, to) == -1 && errno != ENOENT) {
			snprintf(err, errlen, "cannot rename %s.%d: %s", lf->path, i,
			    strerror(errno));
			return -1;
		}
	}
	snprintf(to, sizeof(to), "%s.1", lf->path);
	if (rename(lf->path, to) == -1) {
		snprintf(err, errlen, "cannot rename %s: %s", lf->path,
		    strerror(errno));
		return -1;
	}
	return logfile_reopen(lf, err, errlen);
}

/* lf_complain - a rotation problem, told on stderr (the journal under
 * systemd): the logger cannot log about itself */
static void
lf_complain(const char *what)
{
	char line[PATH_MAX + 512];
	int n = snprintf(line, sizeof(line), "postern: log rotation: %s; "
	    "writing on to the current file\n", what);

	if (n > 0)
		log_write_all(STDERR_FILENO, line,
		    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* logfile_write - one line, rotating first when the limit is reached */
void
logfile_write(struct logfile *lf, const char *buf, size_t len)
{
	char err[PATH_MAX + 256];

	if (lf->limit > 0 && !lf->rotate_failed && lf->size > 0 &&
	    lf->size + (off_t)len > lf->limit &&
	    lf_rotate(lf, err, sizeof(err)) == -1) {
		lf->rotate_failed = 1;
		lf_complain(err);
	}
	if (lf->fd < 0) {
		log_write_all(STDERR_FILENO, buf, len);
		return;
	}
	log_write_all(lf->fd, buf, len);
	lf->size += (off_t)len;
}

/* logfile_close - close and free */
void
logfile_close(struct logfile **lfp)
{
	struct logfile *lf = *lfp;

	if (lf == NULL)
		return;
	if (lf->fd >= 0)
		close(lf->fd);
	free(lf->path);
	free(lf);
	*lfp = NULL;
}
