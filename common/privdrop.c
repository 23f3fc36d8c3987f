/*
 * privdrop.c - drop root in one visible sequence (STYLE 8).
 *
 * Owns: the privilege-dropping sequence for every child.
 * SECURITY: when root and a user is configured: getpwnam, setgroups(1, {gid}), setresgid,
 * setresuid, then prove that setuid(0) fails. Always:
 * PR_SET_NO_NEW_PRIVS (no set-id exec can regain anything) and
 * PR_SET_DUMPABLE 0 (no core dump of a process that may have held keys).
 * An empty user (the quick start, "run as whoever started it") changes
 * no ids. Any failure is fatal: a child must never run with more than it
 * asked.
 * STANDARDS: none (Linux prctl(2), setresuid(2)).
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include "log.h"
#include "privdrop.h"

/* priv_lookup - uid and gid of user from the password database */
int
priv_lookup(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	if (user == NULL || *user == '\0')
		return -1;
	errno = 0;
	if ((pw = getpwnam(user)) == NULL)
		return -1;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

/* priv_drop_root - switch every uid and gid to user's; verify */
static void
priv_drop_root(const char *user)
{
	uid_t uid;
	gid_t gid;

	if (priv_lookup(user, &uid, &gid) == -1)
		fatalx("unprivileged user '%s' does not exist", user ? user : "");
	if (uid == 0)
		fatalx("user '%s' is root: refusing to run children as root", user);
	if (setgroups(1, &gid) == -1)
		fatal("setgroups(%lu)", (unsigned long)gid);
	if (setresgid(gid, gid, gid) == -1)
		fatal("setresgid(%lu)", (unsigned long)gid);
	if (setresuid(uid, uid, uid) == -1)
		fatal("setresuid(%lu)", (unsigned long)uid);
	if (setuid(0) != -1 || seteuid(0) != -1)
		fatalx("privilege drop failed: root could be regained");
}

/* priv_drop - drop root if held, then forbid regaining privileges */
void
priv_drop(const char *user)
{
	/* user "" (the quick start): keep the starting user, even root */
	if ((geteuid() == 0 || getuid() == 0) && user != NULL && *user != '\0')
		priv_drop_root(user);
	else if (geteuid() == 0)
		log_debug("no unprivileged user configured: staying root");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_DUMPABLE)");
}
