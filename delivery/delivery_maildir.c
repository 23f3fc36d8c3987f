/*
 * delivery_maildir.c - the maildir transport: each job becomes ONE file
 * in the transport's Maildir, written into tmp/, fsync'd, renamed into
 * new/, and new/ fsync'd, so a reader never sees a partial message and a
 * crash after the result loses nothing.
 *
 * Owns: the Maildir file name counter. Content: "Return-Path: <sender>"
 * then the (signed) message with LF line ends, as mail readers expect of
 * Maildir files.
 * SECURITY: runs unprivileged (the master made the Maildir owned by the
 * user); files are created O_EXCL with mode 0600 and directories 0700;
 * writes only under the configured path; file names contain no data from
 * the message.
 * STANDARDS: the Maildir format (cr.yp.to/proto/maildir.html), RFC 5322
 * (Return-Path: from RFC 5321 4.4).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "util.h"

#include "delivery.h"

/* deliveries made by this process: the Q<n> of Maildir file names */
static unsigned long maildir_count;

/* maildir_dirs - PATH/{tmp,new,cur}, created 0700 when missing; 0 or -1
 * with errno and *what naming the directory */
static int
maildir_dirs(const char *path, char **what)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	size_t i;

	char *dir;
	int saved;

	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		dir = xasprintf("%s/%s", path, sub[i]);
		if (mkdir_p(dir, 0700) == -1) {
			saved = errno;
			*what = xasprintf("create directory %s", dir);
			free(dir);
			errno = saved;
			return -1;
		}
		free(dir);
	}
	return 0;
}

/* maildir_host - the host part of a file name: '/' and ':' escaped as the
 * Maildir specification asks */
static void
maildir_host(const char *host, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *host != '\0' && o + 5 < outlen; host++) {
		if (*host == '/' || *host == ':') {
			o += (size_t)snprintf(out + o, outlen - o, "\\%03o", (unsigned char)*host);
			continue;
		}
		out[o++] = *host;
	}
	out[o] = '\0';
}

/* maildir_name - "SECONDS.M<usec>P<pid>Q<n>.HOST", unique per delivery */
static char *
maildir_name(const char *hostname)
{
	char host[256];
	struct timeval tv;

	gettimeofday(&tv, NULL);
	maildir_host(hostname != NULL ? hostname : "localhost", host, sizeof(host));
	return xasprintf("%lld.M%06ldP%ldQ%lu.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
	    (long)getpid(), ++maildir_count, host);
}

/* delivery_local_content - "Return-Path: <sender>\n" and the message,
 * CRLF -> LF: what maildir and file outputs store */
char *
delivery_local_content(const struct delivery_job *j, size_t *lenp)
{
	char *head = xasprintf("Return-Path: <%s>\n", j->sender);
	size_t hlen = strlen(head), i, o;
	char *out = xmalloc(hlen + j->msglen + 1);

	memcpy(out, head, hlen);
	free(head);
	o = hlen;
	for (i = 0; i < j->msglen; i++) {
		if (j->msg[i] == '\r' && i + 1 < j->msglen && j->msg[i + 1] == '\n')
			continue;
		out[o++] = j->msg[i];
	}
	out[o] = '\0';
	*lenp = o;
	return out;
}

/* delivery_write_all - write(2) until done; 0 or -1 with errno */
int
delivery_write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* delivery_store_atomic - create tmp (O_EXCL), write, fsync, rename to
 * dst, fsync dstdir: after 0 the file survives a power loss. Otherwise
 * an errno, tmp removed, *step naming the step that failed */
int
delivery_store_atomic(const char *tmp, const char *dst, const char *dstdir,
    const char *data, size_t len, const char **step)
{
	int fd, err = 0;

	*step = "create";
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return errno;
	*step = "write";
	if (delivery_write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		err = errno;
		close(fd);
	} else if (close(fd) == -1)
		err = errno;
	if (err == 0) {
		*step = "rename";
		if (rename(tmp, dst) == -1)
			err = errno;
	}
	if (err != 0) {
		unlink(tmp);
		return err;
	}
	*step = "fsync the directory";
	return fsync_dir(dstdir) == -1 ? errno : 0;
}

/* maildir_store - tmp/NAME, then new/NAME atomically (see above); 0, or
 * an errno with *what saying which step on which file */
static int
maildir_store(const char *path, const char *name, const char *data, size_t len,
    char **what)
{
	char *tmp = xasprintf("%s/tmp/%s", path, name);
	char *dst = xasprintf("%s/new/%s", path, name);
	char *newdir = xasprintf("%s/new", path);
	const char *step;
	int err;

	if ((err = delivery_store_atomic(tmp, dst, newdir, data, len, &step)) != 0)
		*what = xasprintf("%s %s", step, strcmp(step, "rename") == 0 ? dst :
		    strcmp(step, "fsync the directory") == 0 ? newdir : tmp);
	free(tmp);
	free(dst);
	free(newdir);
	return err;
}

/* delivery_maildir_run - deliver the job into the Maildir, report it */
void
delivery_maildir_run(struct delivery_job *j)
{
	const char *path = j->transport->path;
	char *relay = xasprintf("maildir:%s", path);
	char *what = NULL, *name = NULL, *data = NULL;
	size_t len;
	int err = 0;

	if (maildir_dirs(path, &what) == -1)
		err = errno;
	if (err == 0) {
		name = maildir_name(delivery_conf()->hostname);
		data = delivery_local_content(j, &len);
		err = maildir_store(path, name, data, len, &what);
	}
	if (err == 0) {
		log_debug("%s: stored as %s/new/%s", j->queueid, path, name);
		delivery_job_result(j, 0, 2, "2.0.0", relay, "delivered to maildir");
	} else {
		log_warnx("%s: maildir %s: cannot %s: %s", j->queueid, path, what,
		    strerror(err));
		delivery_job_result(j, 0, 4, "4.3.0", relay, "cannot %s: %s", what,
		    strerror(err));
	}
	free(what);
	free(name);
	free(data);
	free(relay);
	delivery_job_done(j);
}
