/*
 * queued_retain.c - retention of finished messages (queue.retention):
 * when it is not 0, the file of a message whose recipients are all done
 * (delivered, bounced or deleted) is moved from msg/ to SPOOL/retained/
 * (its modification time set to the moment it finished) instead of
 * being removed, and removed once it is older than the retention.
 * The sweep runs at start and then every hour (every retention period
 * when that is shorter, so short test values work).
 *
 * Owns: SPOOL/retained/ and the sweep timer. The index knows nothing of
 * retained files: they are copies for the operator, never delivered.
 *
 * SECURITY: runs unprivileged in queued. Only names that are valid queue
 * ids are moved or removed; everything is relative to directory
 * descriptors.
 * STANDARDS: none.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "queued.h"
#include "spool.h"
#include "util.h"

#define SPOOL_RETAINED "retained"
#define RETAIN_SWEEP_MAX 3600   /* seconds between sweeps, at most */

static int ret_dfd = -1;
static struct event *sweep_ev;

/* qretain_keep - move msg/ID into retained/; -1 when retention is off or
 * the move failed (the caller removes the file then) */
int
qretain_keep(const char *id)
{
	if (ret_dfd == -1)
		return -1;
	if (renameat(qspool_msg_dirfd(), id, ret_dfd, id) == -1) {
		log_warn("cannot move %s/%s to %s/", SPOOL_MSG, id, SPOOL_RETAINED);
		return -1;
	}
	/* retention counts from now, not from the arrival */
	if (utimensat(ret_dfd, id, NULL, 0) == -1)
		log_warn("utimensat %s/%s", SPOOL_RETAINED, id);
	return 0;
}

/* sweep_one - remove retained/name if it is older than the retention */
static void
sweep_one(int dfd, const char *name, time_t cutoff)
{
	struct stat st;

	if (!queue_id_valid(name))
		return;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    st.st_mtime > cutoff)
		return;
	if (unlinkat(dfd, name, 0) == -1 && errno != ENOENT)
		log_warn("cannot remove %s/%s", SPOOL_RETAINED, name);
	else
		log_info("%s: retention over, removed from %s/", name, SPOOL_RETAINED);
}

/* sweep - remove every retained file past the retention */
static void
sweep(evutil_socket_t fd, short what, void *arg)
{
	time_t keep = qenv.conf->queue.retention;
	time_t cutoff = time(NULL) - keep;
	struct timeval tv = { keep < RETAIN_SWEEP_MAX ? keep : RETAIN_SWEEP_MAX, 0 };
	struct dirent *de;
	DIR *d;
	int dfd;

	if ((dfd = dup(ret_dfd)) == -1 || (d = fdopendir(dfd)) == NULL) {
		log_warn("cannot read %s/", SPOOL_RETAINED);
		if (dfd != -1)
			close(dfd);
	} else {
		rewinddir(d);
		while ((de = readdir(d)) != NULL)
			sweep_one(ret_dfd, de->d_name, cutoff);
		closedir(d);
	}
	evtimer_add(sweep_ev, &tv);
}

/* qretain_init - open retained/ and sweep it when retention is on */
void
qretain_init(void)
{
	if (qenv.conf->queue.retention <= 0)
		return;
	ret_dfd = qspool_subdir(SPOOL_RETAINED);
	if ((sweep_ev = evtimer_new(qenv.base, sweep, NULL)) == NULL)
		fatalx("cannot create the retention timer");
	sweep(-1, 0, NULL);
}
