/*
 * util.h - allocation that never returns NULL, small string helpers.
 *
 * Allocation failure is an environment failure: the process dies with
 * fatal() and the master restarts it (STYLE 11). Free functions that take
 * a pointer-to-pointer set it to NULL.
 */
#ifndef POSTERN_UTIL_H
#define POSTERN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* xasprintf - asprintf(3) that dies on failure */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* xfree - free(*p) and set *p = NULL */
void xfree_(void **p);
#define xfree(pp) xfree_((void **)(pp))

/* str_lower - lower-case ASCII in place, return s */
char *str_lower(char *s);
/* now_mono - monotonic clock in milliseconds */
uint64_t now_mono_ms(void);
/* now_real_ms - wall clock in milliseconds since the epoch */
uint64_t now_real_ms(void);
/* rfc5322_date - "Sun, 22 Nov 2026 03:00:00 +0000" for t into buf */
void rfc5322_date(time_t t, char *buf, size_t len);
/* set_nonblock, set_cloexec - fcntl helpers; return -1 with errno */
int set_nonblock(int fd);
int set_cloexec(int fd);
/* mkdir_p - create a directory and its parents with mode; 0 or -1/errno */
int mkdir_p(const char *path, unsigned mode);
/* fsync_dir - open path O_DIRECTORY and fsync it; 0 or -1/errno */
int fsync_dir(const char *path);
/* raise_nofile - soft RLIMIT_NOFILE up to the hard limit (warns on failure) */
void raise_nofile(void);

#endif
