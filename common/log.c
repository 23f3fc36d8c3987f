/*
 * log.c - logging for every Postern process: stderr in the foreground,
 * syslog(3) facility LOG_MAIL otherwise, or a sink the master installs
 * for its log file (master/master_log.c).
 *
 * Owns: the process's role name, destination, line format and level.
 * Text line: "2026-11-22T03:00:00.123Z postern/smtpd[1234]: warning: text"
 * (the level word only for warning, error and debug).
 * JSON line (log_format = json), one object per line, keys in this order:
 *   {"time":"2026-11-22T03:00:00.123Z","level":"warning",
 *    "program":"postern/smtpd","pid":1234,"msg":"text"}
 * Those five keys are a stable interface (postern(8)): never renamed or
 * removed; new keys may only be added after them. Bytes of the message
 * that are not UTF-8 become '?', so every line is valid JSON.
 * SECURITY: never given secrets (see log.h); each line is built whole and
 * written with one write(2), so processes sharing stderr, a file opened
 * O_APPEND or the master's datagram log socket never interleave mid-line.
 * STANDARDS: RFC 3339 timestamps; RFC 8259 (JSON); syslog(3).
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

#include <jansson.h>

#include "log.h"

static char log_ident[64] = "postern";
static int log_foreground = 1;
static int log_level = LOG_LEVEL_INFO;
static enum log_format log_fmt = LOG_FORMAT_TEXT;
static log_sink_fn *log_sink;   /* when set, every line goes there */
static void *log_sink_arg;

/* The longest line written: a 4 KB message escaped for JSON, and more. */
#define LOG_LINE_MAX 32768

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

/* log_set_stderr - lines to stderr from now on (closing syslog): a
 * child whose stderr is the master's log socket */
void
log_set_stderr(void)
{
	if (!log_foreground)
		closelog();
	log_foreground = 1;
}

/* log_set_format - text or JSON lines (stderr and sinks, not syslog) */
void
log_set_format(enum log_format f)
{
	log_fmt = f == LOG_FORMAT_JSON ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT;
}

/* log_format_parse - "text" or "json" to enum log_format, -1 if unknown */
int
log_format_parse(const char *s)
{
	if (s != NULL && strcasecmp(s, "text") == 0)
		return LOG_FORMAT_TEXT;
	if (s != NULL && strcasecmp(s, "json") == 0)
		return LOG_FORMAT_JSON;
	return -1;
}

/* log_set_sink - send every line to fn (NULL: back to stderr/syslog) */
void
log_set_sink(log_sink_fn *fn, void *arg)
{
	log_sink = fn;
	log_sink_arg = arg;
}

/* log_write_all - write(2) all of buf to fd, retrying on EINTR; a short
 * write of a regular file continues where it stopped */
void
log_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return;         /* nowhere left to tell */
		}
		buf += n;
		len -= (size_t)n;
	}
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

/* log_stamp - the RFC 3339 UTC time with milliseconds into buf */
static void
log_stamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", sec, (int)(ts.tv_nsec / 1000000L));
}

/* log_json_line - the JSON object of one line plus "\n" into buf; its
 * length, or 0 if jansson failed (the caller writes text instead) */
static size_t
log_json_line(int level, const char *stamp, const char *msg, char *buf,
    size_t len)
{
	char clean[4096];
	json_t *o;
	size_t i, n;

	o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "time", stamp, "level",
	    log_levels[level].name, "program", log_ident, "pid",
	    (json_int_t)getpid(), "msg", msg);
	if (o == NULL) {        /* not UTF-8: keep ASCII, '?' for the rest */
		for (i = 0; msg[i] != '\0' && i < sizeof(clean) - 1; i++)
			clean[i] = (unsigned char)msg[i] < 0x80 ? msg[i] : '?';
		clean[i] = '\0';
		o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "time", stamp, "level",
		    log_levels[level].name, "program", log_ident, "pid",
		    (json_int_t)getpid(), "msg", clean);
	}
	if (o == NULL)
		return 0;
	n = json_dumpb(o, buf, len - 1, JSON_COMPACT);
	json_decref(o);
	if (n == 0 || n >= len - 1)
		return 0;
	buf[n++] = '\n';
	return n;
}

/* log_line - write one whole line (text or JSON) to the sink or stderr */
static void
log_line(int level, const char *msg)
{
	static char line[LOG_LINE_MAX];
	const char *pfx = log_levels[level].prefix;
	char stamp[40];
	size_t n = 0;
	int r;

	log_stamp(stamp, sizeof(stamp));
	if (log_fmt == LOG_FORMAT_JSON)
		n = log_json_line(level, stamp, msg, line, sizeof(line));
	if (n == 0) {
		r = snprintf(line, sizeof(line) - 1, "%s %s[%ld]: %s%s%s", stamp,
		    log_ident, (long)getpid(), pfx ? pfx : "", pfx ? ": " : "", msg);
		n = r < 0 ? 0 : (size_t)r >= sizeof(line) - 1 ? sizeof(line) - 2 :
		    (size_t)r;
		line[n++] = '\n';
	}
	if (log_sink != NULL)
		log_sink(line, n, log_sink_arg);
	else
		log_write_all(STDERR_FILENO, line, n);
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
	if (log_foreground || log_sink != NULL)
		log_line(level, msg);
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
