/*
 * conf_value.c - the value syntaxes of postern.conf and the one error
 * format every configuration check reports in: parse callbacks for
 * durations, sizes, ranged integers, numbers, booleans, strings, host:port,
 * networks, domains and header names, and the helpers the area files
 * (conf_smtpd.c, conf_queue.c, ...) share.
 *
 * Owns: the error format "FILE:LINE: option 'NAME': expected WHAT, got
 * 'VALUE'", the section line tracking, the integer ranges by option name.
 * SECURITY: runs in every process while it reads the operator's file;
 * values are echoed in errors as the operator wrote them, but with control
 * bytes escaped (an error is one line); string values with control bytes
 * are refused, as they could end an SMTP reply, a header or a log line.
 * STANDARDS: RFC 1035 2.3.1 (domains), RFC 4632 (networks), RFC 5322 2.2
 * (header field names).
 */
#include "config.h"

#include <confuse.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "conf_int.h"
#include "log.h"
#include "util.h"

/* The state of one conf_load(); libconfuse callbacks have no user
 * pointer, and loading is single-threaded. */
struct conf_ctx conf_ctx;

/* conf_escape - s for an error message: control bytes as \r, \n, \t or
 * \xHH, so a value never echoes a line of its own; cut at len */
static void
conf_escape(const char *s, char *buf, size_t len)
{
	size_t o = 0;
	unsigned char c;

	for (; (c = (unsigned char)*s) != '\0' && o + 5 < len; s++) {
		if (c == '\r' || c == '\n' || c == '\t')
			o += (size_t)snprintf(buf + o, len - o, "\\%c",
			    c == '\r' ? 'r' : c == '\n' ? 'n' : 't');
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
}

/* conf_errorf - record the first error, prefixed "FILE:LINE: " when
 * line > 0 or "FILE: " otherwise */
void PRINTF_LIKE(3, 4)
conf_errorf(const char *file, int line, const char *fmt, ...)
{
	char raw[768], msg[768];
	va_list ap;

	if (conf_ctx.failed || conf_ctx.err == NULL)
		return;
	conf_ctx.failed = 1;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	conf_escape(raw, msg, sizeof(msg));
	if (line > 0)
		snprintf(conf_ctx.err, conf_ctx.errlen, "%s:%d: %s", file, line, msg);
	else
		snprintf(conf_ctx.err, conf_ctx.errlen, "%s: %s", file, msg);
}

/* conf_bad_value - the "expected WHAT, got 'VALUE'" error at the current line */
int
conf_bad_value(cfg_t *cfg, cfg_opt_t *opt, const char *what, const char *value)
{
	conf_errorf(conf_ctx.path, cfg->line, "option '%s': expected %s, got '%s'",
	    opt->name, what, value);
	return -1;
}

/* conf_note_line - remember where the current section's options start */
void
conf_note_line(cfg_t *cfg)
{
	if (conf_ctx.sec_first_line == 0 && cfg->name != NULL && strcmp(cfg->name, "root") != 0)
		conf_ctx.sec_first_line = cfg->line;
}

/* conf_last_section - the section libconfuse just finished */
cfg_t *
conf_last_section(cfg_opt_t *opt)
{
	return cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);
}

/* conf_section_line - where to point an error about the section just parsed */
int
conf_section_line(cfg_t *cfg)
{
	int line = conf_ctx.sec_first_line ? conf_ctx.sec_first_line : cfg->line;

	conf_ctx.sec_first_line = 0;
	return line;
}

/* conf_missing - "option 'NAME': expected WHAT, got ''" for a required option */
int
conf_missing(cfg_t *cfg, int line, const char *name, const char *what)
{
	conf_errorf(conf_ctx.path, line, "option '%s': expected %s, got ''", name, what);
	return -1;
}

/* parse_duration - "30s", "5m", "2h", "5d", "1w" or bare seconds */
int
parse_duration(const char *s, time_t *out)
{
	static const struct {
		char unit;
		long mul;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
		{ 'w', 604800 } };
	unsigned long long v;
	char *end;
	size_t i;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || v > (unsigned long long)INT32_MAX)
		return -1;
	if (*end == '\0') {
		*out = (time_t)v;
		return 0;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (end[0] != units[i].unit || end[1] != '\0')
			continue;
		if (v > (unsigned long long)INT32_MAX / (unsigned long long)units[i].mul)
			return -1;
		*out = (time_t)(v * (unsigned long long)units[i].mul);
		return 0;
	}
	return -1;
}

/* parse_size - "512", "64K", "10M", "1G" (bytes, binary multiples) */
int
parse_size(const char *s, size_t *out)
{
	static const struct {
		char unit;
		unsigned long long mul;
	} units[] = { { 'K', 1ull << 10 }, { 'M', 1ull << 20 }, { 'G', 1ull << 30 } };
	unsigned long long v;
	char *end;
	size_t i;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || v > (unsigned long long)LONG_MAX)
		return -1;
	if (*end == '\0') {
		*out = (size_t)v;
		return 0;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if ((end[0] != units[i].unit && end[0] != units[i].unit + 32) ||
		    (end[1] != '\0' && !((end[1] == 'B' || end[1] == 'b') && end[2] == '\0')))
			continue;
		if (v > (unsigned long long)LONG_MAX / units[i].mul)
			return -1;
		*out = (size_t)(v * units[i].mul);
		return 0;
	}
	return -1;
}

/* conf_cb_duration - CFGT_INT holding seconds */
int
conf_cb_duration(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	time_t t;

	conf_note_line(cfg);
	if (parse_duration(value, &t) == -1)
		return conf_bad_value(cfg, opt, "a duration such as 30s, 5m, 2h or 5d", value);
	*(long *)result = (long)t;
	return 0;
}

/* conf_cb_window - a duration of at least one second (a counting window) */
int
conf_cb_window(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	time_t t;

	conf_note_line(cfg);
	if (parse_duration(value, &t) == -1 || t < 1)
		return conf_bad_value(cfg, opt, "a duration of at least 1s such as 30s, "
		    "1m or 1h", value);
	*(long *)result = (long)t;
	return 0;
}

/* conf_cb_size - CFGT_INT holding bytes */
int
conf_cb_size(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	size_t n;

	conf_note_line(cfg);
	if (parse_size(value, &n) == -1)
		return conf_bad_value(cfg, opt, "a size such as 512, 64K, 10M or 1G", value);
	*(long *)result = (long)n;
	return 0;
}

/* Ranges of the integer options, by name. */
static const struct {
	const char *name;
	long min, max;
	const char *what;
} int_ranges[] = {
	{ "smtpd_processes", 1, 16, "a number from 1 to 16" }, /* ANVIL_COLUMNS */
	{ "delivery_processes", 1, 16, "a number from 1 to 16" },
	{ "log_file_keep", 1, 100, "a number from 1 to 100" },
	{ "max_recipients", 1, 100000, "a number from 1 to 100000" },
	{ "hopcount_limit", 1, 1000, "a number from 1 to 1000" },
	{ "concurrency", 1, 10000, "a number from 1 to 10000" },
	{ "destination_concurrency", 1, 10000, "a number from 1 to 10000" },
	{ "destination_rate", 0, 100000, "a number from 0 (unlimited) to 100000" },
	{ "port", 1, 65535, "a port from 1 to 65535" },
	{ "reuse_max", 1, 100000, "a number from 1 to 100000" },
	{ "auth_failure_limit", 0, 1000, "a number from 0 (no lock-out) to 1000" },
	{ "smtpd_client_connection_limit", 0, 65535,
	    "a number from 0 (no limit) to 65535" },
	{ "smtpd_client_message_limit", 0, 1000000,
	    "a number from 0 (no limit) to 1000000" },
	{ "history_size", 2, 10080, "a number from 2 to 10080" },
	{ "index_high_water", 50, 99, "a percentage from 50 to 99" },
};

/* conf_cb_int_range - a decimal integer within the option's int_ranges row */
int
conf_cb_int_range(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char *end;
	long v;
	size_t i;

	conf_note_line(cfg);
	for (i = 0; i < sizeof(int_ranges) / sizeof(int_ranges[0]); i++)
		if (strcmp(int_ranges[i].name, opt->name) == 0)
			break;
	if (i == sizeof(int_ranges) / sizeof(int_ranges[0]))
		panic("conf: no range for option '%s'", opt->name);
	errno = 0;
	v = strtol(value, &end, 10);
	if (*value == '\0' || *end != '\0' || errno != 0 || v < int_ranges[i].min ||
	    v > int_ranges[i].max)
		return conf_bad_value(cfg, opt, int_ranges[i].what, value);
	*(long *)result = v;
	return 0;
}

/* conf_cb_float - a decimal number: retry_factor >= 1, retry_jitter 0..1 */
int
conf_cb_float(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	int jitter = strcmp(opt->name, "retry_jitter") == 0;
	char *end;
	double v;

	conf_note_line(cfg);
	errno = 0;
	v = strtod(value, &end);
	if (*value == '\0' || *end != '\0' || errno != 0 || v != v ||
	    (jitter ? v < 0 || v > 1 : v < 1 || v > 1000))
		return conf_bad_value(cfg, opt, jitter ? "a fraction from 0 to 1" :
		    "a number of at least 1", value);
	*(double *)result = v;
	return 0;
}

/* conf_cb_bool - true/false, yes/no, on/off */
int
conf_cb_bool(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	size_t i;

	conf_note_line(cfg);
	for (i = 0; i < 3; i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*(cfg_bool_t *)result = cfg_true;
			return 0;
		}
		if (strcasecmp(value, no[i]) == 0) {
			*(cfg_bool_t *)result = cfg_false;
			return 0;
		}
	}
	return conf_bad_value(cfg, opt, "true or false", value);
}

/* conf_has_control - does s hold a byte below 0x20 or DEL? */
int
conf_has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* conf_str_result - hand libconfuse a string (it copies it); a value
 * with control bytes could end an SMTP reply or a header or a log line
 * early and start the attacker's own, so none is taken */
int
conf_str_result(cfg_t *cfg, cfg_opt_t *opt, const char *s, void *result)
{
	if (conf_has_control(s))
		return conf_bad_value(cfg, opt, "no control characters (CR, LF, "
		    "tab, ...)", s);
	snprintf(conf_ctx.strbuf, sizeof(conf_ctx.strbuf), "%s", s);
	*(char **)result = conf_ctx.strbuf;
	return 0;
}

/* conf_cb_string - any string; only notes the line */
int
conf_cb_string(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	conf_note_line(cfg);
	if (strlen(value) >= sizeof(conf_ctx.strbuf))
		return conf_bad_value(cfg, opt, "a shorter value", "...");
	return conf_str_result(cfg, opt, value, result);
}

/* conf_cb_hostport - "host:port", "[v6]:port" or "*:port" */
int
conf_cb_hostport(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char host[256], port[32];

	conf_note_line(cfg);
	if (hostport_parse(value, host, sizeof(host), port, sizeof(port)) == -1)
		return conf_bad_value(cfg, opt, "host:port, [IPv6]:port or *:port", value);
	return conf_str_result(cfg, opt, value, result);
}

/* conf_cb_cidr - one trusted network */
int
conf_cb_cidr(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct cidr c;

	conf_note_line(cfg);
	if (cidr_parse(value, &c) == -1)
		return conf_bad_value(cfg, opt, "a network such as 192.0.2.0/24 or 2001:db8::/32",
		    value);
	return conf_str_result(cfg, opt, value, result);
}

/* conf_cb_domain - one relay (or sender) domain, stored lower-case; UTF-8
 * U-labels are accepted as written (no IDNA mapping: SMTPUTF8 clients
 * send them as is) and only their ASCII letters are lower-cased */
int
conf_cb_domain(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	conf_note_line(cfg);
	if (!domain_valid(value, 1))
		return conf_bad_value(cfg, opt, "a domain name without a trailing dot", value);
	if (conf_str_result(cfg, opt, value, result) == -1)
		return -1;
	str_lower(conf_ctx.strbuf);
	return 0;
}

/* conf_cb_header_name - an RFC 5322 field name (printable, no colon) */
int
conf_cb_header_name(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *p;

	conf_note_line(cfg);
	for (p = value; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~' || *p == ':')
			break;
	if (*value == '\0' || *p != '\0' || p - value > 64)
		return conf_bad_value(cfg, opt, "a header field name such as Subject", value);
	return conf_str_result(cfg, opt, value, result);
}

/* conf_cb_header_name_or_empty - a header field name, or "" for none */
int
conf_cb_header_name_or_empty(cfg_t *cfg, cfg_opt_t *opt, const char *value,
    void *result)
{
	conf_note_line(cfg);
	if (*value == '\0')
		return conf_str_result(cfg, opt, value, result);
	return conf_cb_header_name(cfg, opt, value, result);
}

/* conf_abs_path - p made absolute against cwd ("./x" -> "CWD/x"); malloc'd */
char *
conf_abs_path(const char *cwd, const char *p)
{
	if (p[0] == '/' || cwd == NULL)
		return xstrdup(p);
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (strcmp(p, ".") == 0 || *p == '\0')
		return xstrdup(cwd);
	return xasprintf("%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, p);
}

/* conf_strv_free - free a NULL-ended string array of n entries */
void
conf_strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

/* conf_strlist_copy - a NULL-ended copy of a string list option */
char **
conf_strlist_copy(cfg_t *sec, const char *name, size_t *np)
{
	size_t i, n = cfg_size(sec, name);
	char **v = xcalloc(n + 1, sizeof(char *));

	for (i = 0; i < n; i++)
		v[i] = xstrdup(cfg_getnstr(sec, name, (unsigned)i));
	*np = n;
	return v;
}
