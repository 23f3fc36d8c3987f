/*
 * queued_spool.c - the message files under spool_dir (layout in
 * common/spool.h): tmp/ID while a message is received, msg/ID once it is
 * accepted, and the directory for the LMDB index.
 *
 * Owns: descriptors of the tmp/ and msg/ directories (every file
 * operation is relative to them: openat, renameat, unlinkat), the fsync
 * of files and of msg/, and the directory scans used by recovery.
 *
 * SECURITY: runs as the unprivileged user after priv_drop(); only queued
 * opens spool paths. File names are queue ids checked with
 * queue_id_valid() (hex only), so no name can leave its directory. Files
 * are created O_EXCL with mode 0600, directories 0700.
 * STANDARDS: none (POSIX rename(2) atomicity, fsync(2) durability).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "queued.h"
#include "spool.h"
#include "util.h"

#define TMP_CREATE_TRIES 16

static int tmp_dfd = -1;
static int msg_dfd = -1;
static char *index_dir;
static char *spool_root;

/* open_subdir - create spool_dir/name (0700) if missing and open it */
static int
open_subdir(const char *spool_dir, const char *name)
{
	char *path = xasprintf("%s/%s", spool_dir, name);
	int fd;

	if (mkdir_p(path, 0700) == -1)
		fatal("cannot create %s", path);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		fatal("cannot open %s", path);
	free(path);
	return fd;
}

/* qspool_init - create tmp/, msg/ and index/ and open the first two */
void
qspool_init(const char *spool_dir)
{
	int fd;

	tmp_dfd = open_subdir(spool_dir, SPOOL_TMP);
	msg_dfd = open_subdir(spool_dir, SPOOL_MSG);
	fd = open_subdir(spool_dir, SPOOL_INDEX);
	close(fd);
	index_dir = xasprintf("%s/%s", spool_dir, SPOOL_INDEX);
	spool_root = xstrdup(spool_dir);
}

/* qspool_index_dir - SPOOL/index */
const char *
qspool_index_dir(void)
{
	return index_dir;
}

/* qspool_tmp_create - a new id and tmp/ID open O_WRONLY; 0 or errno */
int
qspool_tmp_create(char *id, int *fd)
{
	int i;

	for (i = 0; i < TMP_CREATE_TRIES; i++) {
		queue_id_new(id);
		/* An id must also be free in msg/ and among commits under way. */
		if (qmsg_find(id) != NULL || qcommit_id_busy(id))
			continue;
		*fd = openat(tmp_dfd, id, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (*fd != -1)
			return 0;
		if (errno != EEXIST) {
			log_warn("cannot create %s/%s", SPOOL_TMP, id);
			return errno;
		}
	}
	log_warnx("cannot find a free queue id after %d tries", TMP_CREATE_TRIES);
	return EEXIST;
}

/* qspool_tmp_unlink - remove tmp/ID (a message never acknowledged) */
void
qspool_tmp_unlink(const char *id)
{
	if (unlinkat(tmp_dfd, id, 0) == -1 && errno != ENOENT)
		log_warn("cannot remove %s/%s", SPOOL_TMP, id);
}

/* qspool_sync_fd - fsync a message file; 0 or errno */
int
qspool_sync_fd(int fd)
{
	if (fsync(fd) == -1) {
		log_warn("fsync of a spool file");
		return errno;
	}
	return 0;
}

/* qspool_rename - move tmp/ID to msg/ID; 0 or errno */
int
qspool_rename(const char *id)
{
	if (renameat(tmp_dfd, id, msg_dfd, id) == -1) {
		log_warn("cannot rename %s/%s to %s/%s", SPOOL_TMP, id, SPOOL_MSG, id);
		return errno;
	}
	return 0;
}

/* qspool_sync_msgdir - fsync msg/ so renames into it are durable */
int
qspool_sync_msgdir(void)
{
	if (fsync(msg_dfd) == -1) {
		log_warn("fsync of %s/", SPOOL_MSG);
		return errno;
	}
	return 0;
}

/* qspool_msg_unlink - remove msg/ID */
void
qspool_msg_unlink(const char *id)
{
	if (unlinkat(msg_dfd, id, 0) == -1 && errno != ENOENT)
		log_warn("cannot remove %s/%s", SPOOL_MSG, id);
}

/* qspool_msg_open - msg/ID open O_RDONLY for a delivery; 0 or errno */
int
qspool_msg_open(const char *id, int *fd)
{
	*fd = openat(msg_dfd, id, O_RDONLY | O_CLOEXEC);
	if (*fd == -1) {
		log_warn("cannot open %s/%s", SPOOL_MSG, id);
		return errno;
	}
	return 0;
}

/* scan_dir - call fn for every entry of directory fd except . and .. */
static void
scan_dir(int dfd, const char *what, void (*fn)(const char *name, void *arg),
    void *arg)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = dup(dfd)) == -1 || (d = fdopendir(fd)) == NULL)
		fatal("cannot read %s/", what);
	rewinddir(d);
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		fn(de->d_name, arg);
	}
	if (errno != 0)
		fatal("cannot read %s/", what);
	closedir(d);
}

/* clean_one - recovery: unlink one tmp/ entry */
static void
clean_one(const char *name, void *arg)
{
	unsigned *n = arg;

	if (!queue_id_valid(name)) {
		log_warnx("%s/%s: not a queue file, left alone", SPOOL_TMP, name);
		return;
	}
	qspool_tmp_unlink(name);
	(*n)++;
}

/* qspool_clean_tmp - recovery: nothing in tmp/ was acknowledged, remove
 * it all; returns how many files went */
unsigned
qspool_clean_tmp(void)
{
	unsigned n = 0;

	scan_dir(tmp_dfd, SPOOL_TMP, clean_one, &n);
	return n;
}

/* qspool_scan_msg - recovery: call fn for every name in msg/ */
void
qspool_scan_msg(void (*fn)(const char *name, void *arg), void *arg)
{
	scan_dir(msg_dfd, SPOOL_MSG, fn, arg);
}

/* qspool_subdir - spool_dir/name created (0700) and opened, for
 * retained/; fatal on failure */
int
qspool_subdir(const char *name)
{
	return open_subdir(spool_root, name);
}

/* qspool_msg_dirfd - the descriptor of msg/ (renames out of it) */
int
qspool_msg_dirfd(void)
{
	return msg_dfd;
}
