/*
 * ctlsock.c - connecting to the queue control socket (see ctlsock.h).
 *
 * Owns: nothing but the descriptor it returns.
 * SECURITY: runs as the calling user (posternctl, postern-sendmail);
 * connects to the configured path only; queued decides what the caller
 * may do from SO_PEERCRED, not from anything sent here.
 * STANDARDS: none.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ctlsock.h"
#include "util.h"

/* ctlsock_connect - see ctlsock.h */
int
ctlsock_connect(const char *path, int timeout_s)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { timeout_s, 0 };
	int fd, saved;

	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (timeout_s > 0 &&
	    (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1))
		goto fail;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}
