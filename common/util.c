/*
 * util.c - allocation that never returns NULL, small string, time and
 * file-descriptor helpers shared by every Postern process.
 *
 * Owns: nothing global. Knows nothing about mail.
 * SECURITY: allocation failure is an environment failure and ends the
 * process with fatal(); the master restarts it. No function here logs
 * data it is given.
 * STANDARDS: RFC 5322 3.3 (date-time in rfc5322_date).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* xmalloc - malloc that dies on failure; never returns NULL */
void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("malloc %zu bytes", n);
	return p;
}

/* xcalloc - zeroed allocation that dies on failure or overflow */
void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		fatal("calloc %zu x %zu bytes", n, size);
	return p;
}

/* xreallocarray - reallocarray(3) that dies on failure or overflow */
void *
xreallocarray(void *p, size_t n, size_t size)
{
	void *q;

	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		fatal("reallocarray %zu x %zu overflows", n, size);
	}
	n *= size;
	q = realloc(p, n > 0 ? n : 1);
	if (q == NULL)
		fatal("realloc %zu bytes", n);
	return q;
}

/* xstrdup - strdup that dies on failure */
char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatal("strdup");
	return p;
}

/* xstrndup - strndup that dies on failure */
char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		fatal("strndup");
	return p;
}

/* xasprintf - formatted allocation that dies on failure */
char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (r < 0)
		fatal("asprintf");
	return p;
}

/* xfree_ - free *p and clear the caller's pointer */
void
xfree_(void **p)
{
	if (p == NULL)
		return;
	free(*p);
	*p = NULL;
}

/* str_lower - lower-case ASCII letters in place */
char *
str_lower(char *s)
{
	char *p;

	for (p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

/* clock_ms - milliseconds of the given clock */
static uint64_t
clock_ms(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) == -1)
		fatal("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* now_mono_ms - monotonic clock in milliseconds */
uint64_t
now_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

/* now_real_ms - wall clock in milliseconds since the epoch */
uint64_t
now_real_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

/* rfc5322_date - RFC 5322 date-time in UTC, independent of the locale */
void
rfc5322_date(time_t t, char *buf, size_t len)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		if (len > 0)
			buf[0] = '\0';
		return;
	}
	snprintf(buf, len, "%s, %d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* set_nonblock - add O_NONBLOCK to fd */
int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1)
		return -1;
	if (fl & O_NONBLOCK)
		return 0;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* set_cloexec - add FD_CLOEXEC to fd */
int
set_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl == -1)
		return -1;
	return fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/* mkdir_p - create path and missing parents with mode */
int
mkdir_p(const char *path, unsigned mode)
{
	char *tmp, *p;
	struct stat st;
	int r = 0;

	if (path == NULL || *path == '\0') {
		errno = EINVAL;
		return -1;
	}
	tmp = xstrdup(path);
	for (p = tmp + 1; r == 0; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(tmp, (mode_t)mode) == -1) {
			if (errno != EEXIST || stat(tmp, &st) == -1)
				r = -1;
			else if (!S_ISDIR(st.st_mode)) {
				errno = ENOTDIR;
				r = -1;
			}
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(tmp);
	return r;
}

/* fsync_dir - make a directory's entries (renames, creations) durable */
int
fsync_dir(const char *path)
{
	int fd, r, saved;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	r = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

/* raise_nofile - soft descriptor limit up to the hard one, for processes
 * that hold a descriptor per session or per message being received */
void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit(RLIMIT_NOFILE)");
	}
}
