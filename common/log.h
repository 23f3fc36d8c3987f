/*
 * log.h - logging for every Postern process.
 *
 * Foreground mode (-f) writes "TIMESTAMP postern/ROLE[PID]: LEVEL: text" to
 * stderr; otherwise lines go to syslog(3) with facility LOG_MAIL.
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

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

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
