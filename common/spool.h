/*
 * spool.h - the spool's layout and queue ids (owned by queued).
 *
 *   SPOOL/tmp/ID     message being received (O_EXCL, mode 0600)
 *   SPOOL/msg/ID     message accepted: renamed here, then fsync'd dir
 *   SPOOL/index/     the LMDB environment (data.mdb, lock.mdb)
 *
 * A queue id is 16 upper-case hex digits: 11 of milliseconds since the
 * epoch (so ids sort by arrival) and 5 random; queued creates the file
 * with O_EXCL and draws again on a clash.
 * SECURITY: only queued opens these paths; smtpd and httpd get a
 * descriptor for the one file they write, delivery one for the file it
 * reads.
 */
#ifndef POSTERN_SPOOL_H
#define POSTERN_SPOOL_H

#include <stddef.h>

#define QUEUE_ID_LEN 16
#define SPOOL_TMP "tmp"
#define SPOOL_MSG "msg"
#define SPOOL_INDEX "index"

/* queue_id_new - a fresh id into buf (QUEUE_ID_LEN + 1 bytes) */
void queue_id_new(char *buf);
/* queue_id_valid - 1 if s is QUEUE_ID_LEN hex digits */
int queue_id_valid(const char *s);

#endif
