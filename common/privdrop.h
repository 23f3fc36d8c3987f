/*
 * privdrop.h - drop root in one visible sequence (STYLE 8).
 *
 * When the process is root: look up user, setgroups(1, {gid}), setresgid,
 * setresuid, then verify root cannot be regained. In every case:
 * prctl(PR_SET_NO_NEW_PRIVS) and core dumps stay off for processes that
 * held keys. Not root: nothing to drop (the quick start runs as the user).
 */
#ifndef POSTERN_PRIVDROP_H
#define POSTERN_PRIVDROP_H

#include <sys/types.h>

/* priv_drop - as above; fatal on any failure. user NULL or "" keeps the
 * starting user, even root (quick start; the master should warn). */
void priv_drop(const char *user);
/* priv_lookup - uid/gid of user; 0, or -1 if unknown */
int priv_lookup(const char *user, uid_t *uid, gid_t *gid);

#endif
