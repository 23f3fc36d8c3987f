/*
 * log.c - logging for every Postern process: stderr in the foreground,
 * syslog(3) facility LOG_MAIL otherwise.
 *
 * Owns: the process's role name, foreground flag and level.
 * Foreground line: "2026-11-22T03:00:00.123Z postern/smtpd[1234]: warning: text"
 * (the level word only for warning, error and debug).
 * SECURITY: never given secrets (see log.h); writes one line per call so
 * concurrent processes sharing stderr do not interleave mid-line.
 * STANDARDS: RFC 3339 timestamps; syslog(3).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LIBBSD_OPENBSD_VIS      /* silence the strnvis prototype warning */
#include <vis.h>

#include "log.h"

static char log_ident[64] = "postern";
static int log_foreground = 1;
static int log_level = LOG_LEVEL_INFO;

/* Level names and syslog priorities, indexed by enum log_level. */
static const struct {
	const char *name;       /* log_level_parse word */
	const char *prefix;     /* in the line; NULL for info */
	int prio;
} log_levels[] = {
	[LOG_LEVEL_ERROR] = { "error", "error", LOG_ERR },
	[LOG_LEVEL_WARNING] = { "warning", "warning", LOG_WARNING },
	[LOG_LEVEL_INFO] = { "info", NULL, LOG_INFO },
	[LOG_LEVEL_DEBUG] = { "debug", "debug", LOG_DEBUG },
};

/* log_init - set role, destination and level; opens syslog if needed */
void
log_init(const char *role, int foreground, int level)
{
	snprintf(log_ident, sizeof(log_ident), "postern/%s", role ? role : "?");
	log_foreground = foreground;
	log_set_level(level);
	if (!foreground)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* log_set_level - change the level, clamped to the known range */
void
log_set_level(int level)
{
	if (level < LOG_LEVEL_ERROR)
		level = LOG_LEVEL_ERROR;
	if (level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_DEBUG;
	log_level = level;
}

/* log_get_level - the current level */
int
log_get_level(void)
{
	return log_level;
}

/* log_level_parse - level word to enum log_level, -1 if unknown */
int
log_level_parse(const char *s)
{
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcasecmp(s, log_levels[i].name) == 0)
			return (int)i;
	return -1;
}

/* log_stderr - write one foreground line with an RFC 3339 UTC stamp */
static void
log_stderr(int level, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	const char *pfx = log_levels[level].prefix;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03dZ %s[%ld]: %s%s%s\n", stamp,
	    (int)(ts.tv_nsec / 1000000L), log_ident, (long)getpid(),
	    pfx ? pfx : "", pfx ? ": " : "", msg);
	fflush(stderr);
}

/* log_vemit - format and send one line at level, optionally with errno */
static void
log_vemit(int level, int with_errno, const char *fmt, va_list ap)
{
	char msg[4096];
	int saved = errno;
	size_t n;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	}
	if (log_foreground)
		log_stderr(level, msg);
	else
		syslog(log_levels[level].prio, "%s%s%s",
		    log_levels[level].prefix ? log_levels[level].prefix : "",
		    log_levels[level].prefix ? ": " : "", msg);
	errno = saved;
}

/* fatal_line - one error-level line (for panic's prefix) */
static void PRINTF_LIKE(1, 2)
fatal_line(const char *fmt, ...)
{
	va_list ap;

	/* errors pass every level: log_set_level never goes below ERROR */
	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
}

/* log_debug - debugging detail, off unless log_level = debug */
void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_DEBUG, 0, fmt, ap);
	va_end(ap);
}

/* log_info - normal operation */
void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_INFO, 0, fmt, ap);
	va_end(ap);
}

/* log_warn - a warning with strerror(errno) appended */
void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_WARNING, 1, fmt, ap);
	va_end(ap);
}

/* log_warnx - a warning without errno */
void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_WARNING, 0, fmt, ap);
	va_end(ap);
}

/* fatal - environment failure with errno: log and exit EXIT_FATAL */
void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERROR, 1, fmt, ap);
	va_end(ap);
	exit(EXIT_FATAL);
}

/* fatalx - environment failure without errno: log and exit EXIT_FATAL */
void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(EXIT_FATAL);
}

/* panic - broken invariant: log and abort() for a core */
void
panic(const char *fmt, ...)
{
	va_list ap;
	char msg[4096];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fatal_line("panic: %s", msg);
	abort();
}

/* log_vis - s as vis(3) octal escapes for a log field (stravis: the
 * bounded strnvis of libbsd 0.11 writes one byte past dstsize) */
const char *
log_vis(const char *s, char *buf, size_t len)
{
	char *v;

	if (stravis(&v, s, VIS_OCTAL | VIS_WHITE) == -1)
		fatal("stravis");
	strlcpy(buf, v, len);
	free(v);
	return buf;
}
