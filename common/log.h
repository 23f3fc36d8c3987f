/*
 * log.h - logging for every Postern process.
 *
 * Foreground mode (-f) writes "TIMESTAMP postern/ROLE[PID]: LEVEL: text" to
 * stderr; otherwise lines go to syslog(3) with facility LOG_MAIL. With a
 * sink installed (the master's log_file) every line goes to the sink;
 * lines for stderr and sinks are text or JSON (log.c gives the format).
 * Two warnings, two fatals (OpenSMTPD log.h, Postfix msg.c):
 *   log_warn   adds strerror(errno);   log_warnx does not;
 *   fatal      environment failure: log, then exit(EX_SOFTWARE-ish code);
 *   fatalx     same without errno;
 *   panic      broken invariant: log, then abort().
 * SECURITY: callers never pass AUTH payloads, passwords or keys; use
 * log_redact() wherever a protocol line may carry one.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include <stddef.h>

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

/* A destination for whole lines (each ends in '\n'). */
typedef void log_sink_fn(const char *line, size_t len, void *arg);

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))

/* log_init - set the process name ("smtpd"), foreground mode and level */
void log_init(const char *role, int foreground, int level);
/* log_set_level - change the level (after a config reload) */
void log_set_level(int level);
/* log_get_level - current level, so callers can skip costly debug work */
int log_get_level(void);
/* log_level_parse - "error|warning|info|debug" to a level, -1 if unknown */
int log_level_parse(const char *s);
/* log_set_stderr - lines to stderr from now on, even without -f (a child
 * whose stderr is the master's log socket, proc.h) */
void log_set_stderr(void);
/* log_set_format - LOG_FORMAT_TEXT or LOG_FORMAT_JSON for stderr/sinks */
void log_set_format(enum log_format f);
/* log_format_parse - "text|json" to enum log_format, -1 if unknown */
int log_format_parse(const char *s);
/* log_set_sink - every line to fn(line, len, arg); NULL: stderr/syslog */
void log_set_sink(log_sink_fn *fn, void *arg);
/* log_write_all - write(2) all of buf to fd (EINTR retried, errors
 * dropped: a logger has nobody to tell) */
void log_write_all(int fd, const char *buf, size_t len);

void log_debug(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_info(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_warn(const char *fmt, ...) PRINTF_LIKE(1, 2);
void log_warnx(const char *fmt, ...) PRINTF_LIKE(1, 2);
void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2) NORETURN;
void fatalx(const char *fmt, ...) PRINTF_LIKE(1, 2) NORETURN;
void panic(const char *fmt, ...) PRINTF_LIKE(1, 2) NORETURN;
/* log_vis - s made safe for one field of a key=value log line: vis(3)
 * with blanks, control and non-ASCII octets as \ooo and a backslash as
 * two; into buf, cut to fit; returns buf */
const char *log_vis(const char *s, char *buf, size_t len);

/* exit status of a child that stopped on a configuration error (sysexits) */
#define EXIT_CONFIG 78
/* exit status of fatal()/fatalx() */
#define EXIT_FATAL 70

#endif
