/*
 * logfile.h - an append-only log file that can be reopened (after an
 * external rotation: logrotate, SIGUSR1) and that rotates itself by size
 * into numbered files: PATH.1 is the newest, PATH.KEEP the oldest.
 *
 * One writer (the master) owns it; nothing here logs (it sits under the
 * logger): failures are reported through the err buffers, and a line
 * that cannot be written goes to stderr instead.
 */
#ifndef POSTERN_LOGFILE_H
#define POSTERN_LOGFILE_H

#include <stddef.h>
#include <sys/types.h>

struct logfile;

/* logfile_open - open (create, mode 0640) path for appending; limit 0 =
 * never rotate by size; keep = how many numbered files to keep (>= 1);
 * NULL with err filled */
struct logfile *logfile_open(const char *path, off_t limit, int keep,
    char *err, size_t errlen);
/* logfile_path - the path it was opened with */
const char *logfile_path(const struct logfile *lf);
/* logfile_set_limits - new size limit and count (a reload) */
void logfile_set_limits(struct logfile *lf, off_t limit, int keep);
/* logfile_reopen - close and open the path again (it may have been
 * renamed away); 0, or -1 with err filled and the old file kept */
int logfile_reopen(struct logfile *lf, char *err, size_t errlen);
/* logfile_write - append one line; when it would take the file past
 * the limit, rotate first (PATH.N-1 -> PATH.N ... PATH -> PATH.1) */
void logfile_write(struct logfile *lf, const char *buf, size_t len);
/* logfile_close - close and free; *lfp = NULL */
void logfile_close(struct logfile **lfp);

#endif
