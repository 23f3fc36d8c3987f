/*
 * conf.c - the one typed configuration of Postern: the libconfuse schema
 * of postern.conf, a parse callback (validator) for every typed option,
 * the checks that span options, and struct conf.
 *
 * Owns: the option table below (keep conf/postern.conf and
 * man/postern.conf.5 in step), the value syntaxes (durations, sizes) and
 * the one-line error format "FILE:LINE: option 'NAME': expected WHAT, got
 * 'VALUE'".
 * SECURITY: reads a file owned by the operator, in the master and in every
 * child before privileges are dropped; never follows include directives
 * (the schema has no include function) and never logs anything but
 * option names and values (the file holds no secrets; key material lives
 * in separate files named here).
 * STANDARDS: RFC 1035 2.3.1 (relay_domains, dkim titles), RFC 4632
 * (trusted_networks).
 */
#include "config.h"

#include <arpa/inet.h>
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
#include "route.h"
#include "conf.h"
#include "log.h"
#include "util.h"

#ifndef LIBEXECDIR
#define LIBEXECDIR "/usr/local/libexec"
#endif

#define BUILTIN_TRANSPORT "local"
#define BUILTIN_MAILDIR "/var/mail/postern"

/* The state of one conf_load(); libconfuse callbacks have no user
 * pointer, and loading is single-threaded. */
static struct conf_ctx {
	const char *path;               /* the file being read */
	char *err;                      /* caller's buffer */
	size_t errlen;
	int failed;                     /* first error kept */
	int sec_first_line;             /* first option line in a section */
	int default_transport_line;
	char strbuf[512];               /* normalised string results */
} ctx;

/* conf_errorf - record the first error, prefixed "FILE:LINE: " when
 * line > 0 or "FILE: " otherwise */
static void PRINTF_LIKE(3, 4)
conf_errorf(const char *file, int line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (ctx.failed || ctx.err == NULL)
		return;
	ctx.failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(ctx.err, ctx.errlen, "%s:%d: %s", file, line, msg);
	else
		snprintf(ctx.err, ctx.errlen, "%s: %s", file, msg);
}

/* line_keyword - the first word of line n of the file being read */
static void
line_keyword(int n, char *buf, size_t len)
{
	char line[512];
	FILE *fp = fopen(ctx.path, "re");

	snprintf(buf, len, "%s", "section");
	if (fp == NULL)
		return;
	while (n-- > 0 && fgets(line, sizeof(line), fp) != NULL)
		if (n == 0)
			sscanf(line, " %63[A-Za-z0-9_]", buf);
	fclose(fp);
}

/* conf_errfunc - libconfuse's own messages, in our one-line format */
static void
conf_errfunc(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[512], word[64], *nl;
	int line = cfg ? cfg->line : 0;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if ((nl = strchr(msg, '\n')) != NULL)
		*nl = '\0';
	if (strncmp(msg, "found duplicate title ", 22) == 0) {
		/* name the section option, as every other message does */
		line_keyword(line, word, sizeof(word));
		conf_errorf(ctx.path, line, "option '%s': duplicate title %s", word,
		    msg + 22);
		return;
	}
	conf_errorf(ctx.path, line, "%s", msg);
}

/* bad_value - the "expected WHAT, got 'VALUE'" error at the current line */
static int
bad_value(cfg_t *cfg, cfg_opt_t *opt, const char *what, const char *value)
{
	conf_errorf(ctx.path, cfg->line, "option '%s': expected %s, got '%s'",
	    opt->name, what, value);
	return -1;
}

/* note_line - remember where the current section's options start */
static void
note_line(cfg_t *cfg)
{
	if (ctx.sec_first_line == 0 && cfg->name != NULL && strcmp(cfg->name, "root") != 0)
		ctx.sec_first_line = cfg->line;
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

/* cb_duration - CFGT_INT holding seconds */
static int
cb_duration(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	time_t t;

	note_line(cfg);
	if (parse_duration(value, &t) == -1)
		return bad_value(cfg, opt, "a duration such as 30s, 5m, 2h or 5d", value);
	*(long *)result = (long)t;
	return 0;
}

/* cb_window - a duration of at least one second (a counting window) */
static int
cb_window(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	time_t t;

	note_line(cfg);
	if (parse_duration(value, &t) == -1 || t < 1)
		return bad_value(cfg, opt, "a duration of at least 1s such as 30s, "
		    "1m or 1h", value);
	*(long *)result = (long)t;
	return 0;
}

/* cb_size - CFGT_INT holding bytes */
static int
cb_size(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	size_t n;

	note_line(cfg);
	if (parse_size(value, &n) == -1)
		return bad_value(cfg, opt, "a size such as 512, 64K, 10M or 1G", value);
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
	{ "max_recipients", 1, 100000, "a number from 1 to 100000" },
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
};

/* cb_int_range - a decimal integer within the option's int_ranges row */
static int
cb_int_range(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char *end;
	long v;
	size_t i;

	note_line(cfg);
	for (i = 0; i < sizeof(int_ranges) / sizeof(int_ranges[0]); i++)
		if (strcmp(int_ranges[i].name, opt->name) == 0)
			break;
	if (i == sizeof(int_ranges) / sizeof(int_ranges[0]))
		panic("conf: no range for option '%s'", opt->name);
	errno = 0;
	v = strtol(value, &end, 10);
	if (*value == '\0' || *end != '\0' || errno != 0 || v < int_ranges[i].min ||
	    v > int_ranges[i].max)
		return bad_value(cfg, opt, int_ranges[i].what, value);
	*(long *)result = v;
	return 0;
}

/* cb_float - a decimal number: retry_factor >= 1, retry_jitter 0..1 */
static int
cb_float(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	int jitter = strcmp(opt->name, "retry_jitter") == 0;
	char *end;
	double v;

	note_line(cfg);
	errno = 0;
	v = strtod(value, &end);
	if (*value == '\0' || *end != '\0' || errno != 0 || v != v ||
	    (jitter ? v < 0 || v > 1 : v < 1 || v > 1000))
		return bad_value(cfg, opt, jitter ? "a fraction from 0 to 1" :
		    "a number of at least 1", value);
	*(double *)result = v;
	return 0;
}

/* cb_bool - true/false, yes/no, on/off */
static int
cb_bool(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	size_t i;

	note_line(cfg);
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
	return bad_value(cfg, opt, "true or false", value);
}

/* str_result - hand libconfuse a string (it copies it) */
static int
str_result(const char *s, void *result)
{
	snprintf(ctx.strbuf, sizeof(ctx.strbuf), "%s", s);
	*(char **)result = ctx.strbuf;
	return 0;
}

/* cb_string - any string; only notes the line */
static int
cb_string(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	note_line(cfg);
	if (strlen(value) >= sizeof(ctx.strbuf))
		return bad_value(cfg, opt, "a shorter value", "...");
	return str_result(value, result);
}

/* cb_log_level - error, warning, info or debug */
static int
cb_log_level(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	note_line(cfg);
	if (log_level_parse(value) == -1)
		return bad_value(cfg, opt, "error, warning, info or debug", value);
	return str_result(value, result);
}

/* cb_hostport - "host:port", "[v6]:port" or "*:port" */
static int
cb_hostport(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char host[256], port[32];

	note_line(cfg);
	if (hostport_parse(value, host, sizeof(host), port, sizeof(port)) == -1)
		return bad_value(cfg, opt, "host:port, [IPv6]:port or *:port", value);
	return str_result(value, result);
}

/* cb_http_listen - host:port, or "" for no HTTP listener */
static int
cb_http_listen(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char host[256], port[32];

	note_line(cfg);
	if (*value != '\0' &&
	    hostport_parse(value, host, sizeof(host), port, sizeof(port)) == -1)
		return bad_value(cfg, opt, "host:port or \"\" (off)", value);
	return str_result(value, result);
}

/* cb_cidr - one trusted network */
static int
cb_cidr(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct cidr c;

	note_line(cfg);
	if (cidr_parse(value, &c) == -1)
		return bad_value(cfg, opt, "a network such as 192.0.2.0/24 or 2001:db8::/32",
		    value);
	return str_result(value, result);
}

/* cb_client_allow - one smtpd_client_allow / client_allow entry: an IP
 * address or CIDR network, or a host name pattern "mx.example.com",
 * ".example.com" or "*.example.com" (stored lower-case, "*." as ".") */
static int
cb_client_allow(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *name = value;
	struct cidr c;

	note_line(cfg);
	if (cidr_parse(value, &c) == 0)
		return str_result(value, result);
	if (strncmp(name, "*.", 2) == 0)
		name += 2;
	else if (*name == '.')
		name++;
	/* "10.1.2.300", "::g": a mistyped network, not a host name */
	if (strpbrk(value, ":/") != NULL || !domain_valid(name, 0) ||
	    strspn(name, "0123456789.") == strlen(name))
		return bad_value(cfg, opt, "an IP address, a network such as "
		    "192.0.2.0/24 or 2001:db8::/32, or a host name pattern such as "
		    "mail.example.com or .example.com", value);
	str_result(name != value ? name - 1 : name, result);
	str_lower(ctx.strbuf);
	return 0;
}

/* cb_control_socket - a Unix socket path that fits sun_path, or "" */
static int
cb_control_socket(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	note_line(cfg);
	if (strlen(value) >= 100)
		return bad_value(cfg, opt, "a socket path shorter than 100 bytes",
		    value);
	return str_result(value, result);
}

/* cb_domain - one relay (or sender) domain, stored lower-case; UTF-8
 * U-labels are accepted as written (no IDNA mapping: SMTPUTF8 clients
 * send them as is) and only their ASCII letters are lower-cased */
static int
cb_domain(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	note_line(cfg);
	if (!domain_valid(value, 1))
		return bad_value(cfg, opt, "a domain name without a trailing dot", value);
	str_result(value, result);
	str_lower(ctx.strbuf);
	return 0;
}

/* The transport types by name (transport { type = NAME }). */
static const struct {
	const char *name;
	enum transport_type type;
} transport_types[] = {
	{ "maildir", TRANSPORT_MAILDIR }, { "relay", TRANSPORT_RELAY },
	{ "mx", TRANSPORT_MX }, { "file", TRANSPORT_FILE },
	{ "pipe", TRANSPORT_PIPE }, { "http", TRANSPORT_HTTP },
};

#define TRANSPORT_TYPE_NAMES "maildir, relay, mx, file, pipe or http"

/* transport_type_parse - a type name to enum transport_type, or 0 */
static enum transport_type
transport_type_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(transport_types) / sizeof(transport_types[0]); i++)
		if (strcmp(s, transport_types[i].name) == 0)
			return transport_types[i].type;
	return 0;
}

/* conf_transport_type_name - "maildir", "relay", ... for a type */
const char *
conf_transport_type_name(enum transport_type type)
{
	size_t i;

	for (i = 0; i < sizeof(transport_types) / sizeof(transport_types[0]); i++)
		if (transport_types[i].type == type)
			return transport_types[i].name;
	return "unknown";
}

/* cb_transport_type - one of transport_types */
static int
cb_transport_type(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	note_line(cfg);
	if (transport_type_parse(value) == 0)
		return bad_value(cfg, opt, TRANSPORT_TYPE_NAMES, value);
	return str_result(value, result);
}

/* cb_route_pattern - "local@domain", "*@domain", "*@*.domain",
 * "local@*" or "*@*" (an empty value: no condition) */
static int
cb_route_pattern(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	note_line(cfg);
	if (*value != '\0' && route_pattern_valid(value) == 0)
		return bad_value(cfg, opt, "an address pattern such as user@example.com, "
		    "*@example.com, *@*.example.com, user@* or *@*", value);
	str_result(value, result);
	str_lower(ctx.strbuf);
	return 0;
}

/* cb_dkim_canon - relaxed/relaxed, simple/simple, relaxed/simple ... */
static int
cb_dkim_canon(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	static const char *const ok[] = { "relaxed/relaxed", "relaxed/simple",
		"simple/relaxed", "simple/simple", "relaxed", "simple" };
	size_t i;

	note_line(cfg);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(value, ok[i]) == 0)
			return str_result(value, result);
	return bad_value(cfg, opt, "relaxed/relaxed, relaxed/simple, simple/relaxed "
	    "or simple/simple", value);
}

/* cb_header_name - an RFC 5322 field name (printable, no colon) */
static int
cb_header_name(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *p;

	note_line(cfg);
	for (p = value; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~' || *p == ':')
			break;
	if (*value == '\0' || *p != '\0' || p - value > 64)
		return bad_value(cfg, opt, "a header field name such as Subject", value);
	return str_result(value, result);
}

/* cb_header_name_or_empty - a header field name, or "" for none */
static int
cb_header_name_or_empty(cfg_t *cfg, cfg_opt_t *opt, const char *value,
    void *result)
{
	note_line(cfg);
	if (*value == '\0')
		return str_result(value, result);
	return cb_header_name(cfg, opt, value, result);
}

/* cb_allow_entry - "user@domain" or "@domain", stored lower-case */
static int
cb_allow_entry(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct mailaddr a;
	const char *why;

	note_line(cfg);
	if (value[0] == '@' ? !domain_valid(value + 1, 0) :
	    addr_parse(value, 0, &a, &why) == -1)
		return bad_value(cfg, opt, "an address user@domain or @domain", value);
	str_result(value, result);
	str_lower(ctx.strbuf);
	return 0;
}

/* cb_http_sender - an address user@domain, or "" (postern@hostname) */
static int
cb_http_sender(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct mailaddr a;
	const char *why;

	note_line(cfg);
	if (*value != '\0' && addr_parse(value, 0, &a, &why) == -1)
		return bad_value(cfg, opt, "an address user@domain", value);
	return str_result(value, result);
}

/* cb_default_transport - any name now, checked once transports are known */
static int
cb_default_transport(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	ctx.default_transport_line = cfg->line;
	return cb_string(cfg, opt, value, result);
}

/* tls_levels - the names of enum conf_tls_level, in order */
static const char *const tls_levels[] = { "none", "may", "encrypt", "verify" };

/* tls_level_parse - a level name to enum conf_tls_level, or -1 */
static int
tls_level_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(tls_levels) / sizeof(tls_levels[0]); i++)
		if (strcmp(s, tls_levels[i]) == 0)
			return (int)i;
	return -1;
}

/* cb_tls_level - none, may, encrypt or verify */
static int
cb_tls_level(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	note_line(cfg);
	if (tls_level_parse(value) == -1)
		return bad_value(cfg, opt, "none, may, encrypt or verify", value);
	return str_result(value, result);
}

/* cb_dns_server - "" or a numeric "IP:PORT" / "[IPv6]:PORT" */
static int
cb_dns_server(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char host[256], port[32];
	unsigned char a[16];

	note_line(cfg);
	if (*value != '\0' && (hostport_parse(value, host, sizeof(host), port,
	    sizeof(port)) == -1 || (inet_pton(AF_INET, host, a) != 1 &&
	    inet_pton(AF_INET6, host, a) != 1) || atoi(port) < 1 || atoi(port) > 65535))
		return bad_value(cfg, opt, "\"\" or a numeric IP:PORT such as 127.0.0.1:53",
		    value);
	return str_result(value, result);
}

static cfg_opt_t tls_policy_opts[] = {
	CFG_STR_CB("level", NULL, CFGF_NONE, cb_tls_level),
	CFG_STR_CB("ca_file", "", CFGF_NONE, cb_string),
	CFG_END()
};

/* cb_word - value must be one of the words of opt (smtpd_words) */
static int cb_word(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result);

static cfg_opt_t listen_opts[] = {
	CFG_STR_CB("address", NULL, CFGF_NONE, cb_hostport),
	CFG_STR_CB("mode", "smtp", CFGF_NONE, cb_word),
	CFG_BOOL_CB("require_tls", cfg_false, CFGF_NONE, cb_bool),
	CFG_STR_CB("auth", "optional", CFGF_NONE, cb_word),
	CFG_BOOL_CB("auth_cleartext", cfg_false, CFGF_NONE, cb_bool),
	CFG_BOOL_CB("submission", cfg_false, CFGF_NONE, cb_bool),
	CFG_BOOL_CB("debug", cfg_false, CFGF_NONE, cb_bool),
	CFG_STR_CB("tls_cert", "", CFGF_NONE, cb_string),
	CFG_STR_CB("tls_key", "", CFGF_NONE, cb_string),
	CFG_STR_LIST_CB("client_allow", "{}", CFGF_NONE, cb_client_allow),
	CFG_END()
};

static cfg_opt_t smtp_user_opts[] = {
	CFG_STR_CB("password", NULL, CFGF_NONE, cb_string),
	CFG_STR_LIST_CB("sender_domains", "{}", CFGF_NONE, cb_domain),
	CFG_END()
};

static cfg_opt_t queue_opts[] = {
	CFG_INT_CB("retry_base", 300, CFGF_NONE, cb_duration),
	CFG_FLOAT_CB("retry_factor", 2.0, CFGF_NONE, cb_float),
	CFG_INT_CB("retry_cap", 4 * 3600, CFGF_NONE, cb_duration),
	CFG_FLOAT_CB("retry_jitter", 0.2, CFGF_NONE, cb_float),
	CFG_INT_CB("lifetime", 5 * 86400, CFGF_NONE, cb_duration),
	CFG_INT_CB("concurrency", 20, CFGF_NONE, cb_int_range),
	CFG_INT_CB("destination_concurrency", 10, CFGF_NONE, cb_int_range),
	CFG_INT_CB("destination_rate", 0, CFGF_NONE, cb_int_range),
	CFG_INT_CB("delay_warning", 0, CFGF_NONE, cb_duration),
	CFG_INT_CB("retention", 0, CFGF_NONE, cb_duration),
	CFG_BOOL_CB("group_commit", cfg_true, CFGF_NONE, cb_bool),
	CFG_END()
};

/* The http section (postern-httpd: send API, CORS, /readyz). */
static cfg_opt_t http_opts[] = {
	CFG_BOOL_CB("send_api", cfg_false, CFGF_NONE, cb_bool),
	CFG_BOOL_CB("compat_paths", cfg_false, CFGF_NONE, cb_bool),
	CFG_STR_LIST_CB("allow_list", "{}", CFGF_NONE, cb_allow_entry),
	CFG_STR_CB("sender", "", CFGF_NONE, cb_http_sender),
	CFG_INT_CB("rate_limit", 60, CFGF_NONE, cb_duration),
	CFG_INT_CB("max_body", 64 * 1024, CFGF_NONE, cb_size),
	CFG_STR_CB("client_ip_header", "", CFGF_NONE, cb_header_name_or_empty),
	CFG_STR_LIST_CB("trusted_proxies", "{}", CFGF_NONE, cb_cidr),
	CFG_BOOL_CB("require_nonce", cfg_false, CFGF_NONE, cb_bool),
	CFG_STR_CB("nonce_secret", "", CFGF_NONE, cb_string),
	CFG_INT_CB("nonce_max_age", 60, CFGF_NONE, cb_duration),
	CFG_STR_LIST_CB("cors_origins", "{}", CFGF_NONE, cb_string),
	CFG_INT_CB("ready_min_free", 64 * 1024 * 1024, CFGF_NONE, cb_size),
	CFG_STR_CB("admin_token", "", CFGF_NONE, cb_string),
	CFG_END()
};

static cfg_opt_t transport_opts[] = {
	CFG_STR_CB("type", NULL, CFGF_NONE, cb_transport_type),
	CFG_STR_CB("path", NULL, CFGF_NONE, cb_string),
	CFG_STR_CB("host", NULL, CFGF_NONE, cb_hostport),
	CFG_INT_CB("timeout", 300, CFGF_NONE, cb_duration),
	CFG_INT_CB("port", 25, CFGF_NONE, cb_int_range),
	CFG_STR_CB("tls", "may", CFGF_NONE, cb_tls_level),
	CFG_BOOL_CB("tls_implicit", cfg_false, CFGF_NONE, cb_bool),
	CFG_STR_CB("ca_file", "", CFGF_NONE, cb_string),
	CFG_STR_CB("auth_user", "", CFGF_NONE, cb_string),
	CFG_STR_CB("auth_password", "", CFGF_NONE, cb_string),
	CFG_STR_CB("auth_password_file", "", CFGF_NONE, cb_string),
	CFG_INT_CB("reuse_max", 100, CFGF_NONE, cb_int_range),
	CFG_INT_CB("reuse_idle", 10, CFGF_NONE, cb_duration),
	CFG_STR_CB("template", "%Y%m%d-%i.eml", CFGF_NONE, cb_string),
	CFG_STR_LIST_CB("command", "{}", CFGF_NONE, cb_string),
	CFG_STR_CB("url", "", CFGF_NONE, cb_string),
	CFG_STR_CB("secret", "", CFGF_NONE, cb_string),
	CFG_END()
};

static cfg_opt_t dkim_opts[] = {
	CFG_STR_CB("selector", NULL, CFGF_NONE, cb_string),
	CFG_STR_CB("key", NULL, CFGF_NONE, cb_string),
	CFG_BOOL_CB("generate", cfg_false, CFGF_NONE, cb_bool),
	CFG_STR_CB("domain", "", CFGF_NONE, cb_string),
	CFG_END()
};

static cfg_opt_t route_opts[] = {
	CFG_STR_CB("recipient", "", CFGF_NONE, cb_route_pattern),
	CFG_STR_CB("sender", "", CFGF_NONE, cb_route_pattern),
	CFG_STR_CB("transport", NULL, CFGF_NONE, cb_string),
	CFG_END()
};

#define SEC_FLAGS (CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES)

static cfg_opt_t root_opts[] = {
	CFG_STR_CB("hostname", NULL, CFGF_NONE, cb_string),
	CFG_STR_CB("user", "postern", CFGF_NONE, cb_string),
	CFG_STR_CB("spool_dir", "/var/spool/postern", CFGF_NONE, cb_string),
	CFG_STR_CB("run_dir", "/run/postern", CFGF_NONE, cb_string),
	CFG_STR_CB("control_socket", "", CFGF_NONE, cb_control_socket),
	CFG_STR_CB("libexec_dir", LIBEXECDIR, CFGF_NONE, cb_string),
	CFG_STR_CB("log_level", "info", CFGF_NONE, cb_log_level),
	CFG_INT_CB("smtpd_processes", 2, CFGF_NONE, cb_int_range),
	CFG_INT_CB("delivery_processes", 2, CFGF_NONE, cb_int_range),
	CFG_INT_CB("shutdown_timeout", 30, CFGF_NONE, cb_duration),
	CFG_SEC("listen", listen_opts, SEC_FLAGS),
	CFG_STR_LIST_CB("trusted_networks", "{\"127.0.0.0/8\", \"::1/128\"}",
	    CFGF_NONE, cb_cidr),
	CFG_STR_LIST_CB("relay_domains", "{}", CFGF_NONE, cb_domain),
	CFG_INT_CB("max_message_size", 25 * 1024 * 1024, CFGF_NONE, cb_size),
	CFG_INT_CB("max_recipients", 100, CFGF_NONE, cb_int_range),
	CFG_INT_CB("smtpd_timeout", 300, CFGF_NONE, cb_duration),
	CFG_INT_CB("smtpd_data_timeout", 600, CFGF_NONE, cb_duration),
	CFG_STR_CB("tls_cert", "", CFGF_NONE, cb_string),
	CFG_STR_CB("tls_key", "", CFGF_NONE, cb_string),
	CFG_STR_CB("users_file", "", CFGF_NONE, cb_string),
	CFG_BOOL_CB("received_show_auth", cfg_false, CFGF_NONE, cb_bool),
	CFG_INT_CB("auth_failure_limit", 10, CFGF_NONE, cb_int_range),
	CFG_INT_CB("auth_failure_window", 600, CFGF_NONE, cb_duration),
	CFG_INT_CB("smtpd_client_connection_limit", 50, CFGF_NONE, cb_int_range),
	CFG_INT_CB("smtpd_client_message_limit", 0, CFGF_NONE, cb_int_range),
	CFG_INT_CB("smtpd_client_message_window", 60, CFGF_NONE, cb_window),
	CFG_STR_LIST_CB("smtpd_client_allow", "{}", CFGF_NONE, cb_client_allow),
	CFG_BOOL_CB("smtpd_sender_local_only", cfg_false, CFGF_NONE, cb_bool),
	CFG_SEC("smtp_user", smtp_user_opts, SEC_FLAGS),
	CFG_SEC("queue", queue_opts, CFGF_NONE),
	CFG_SEC("transport", transport_opts, SEC_FLAGS),
	CFG_STR_CB("default_transport", BUILTIN_TRANSPORT, CFGF_NONE,
	    cb_default_transport),
	CFG_SEC("dkim", dkim_opts, SEC_FLAGS),
	CFG_STR_CB("dkim_canonicalization", "relaxed/relaxed", CFGF_NONE, cb_dkim_canon),
	CFG_STR_LIST_CB("dkim_signed_headers", "{\"From\", \"To\", \"Cc\", "
	    "\"Subject\", \"Date\", \"Message-ID\", \"Reply-To\", \"In-Reply-To\", "
	    "\"References\", \"MIME-Version\", \"Content-Type\", "
	    "\"Content-Transfer-Encoding\"}", CFGF_NONE, cb_header_name),
	CFG_SEC("route", route_opts, SEC_FLAGS),
	CFG_STR_CB("dns_server", "", CFGF_NONE, cb_dns_server),
	CFG_INT_CB("dns_timeout", 5, CFGF_NONE, cb_duration),
	CFG_SEC("tls_policy", tls_policy_opts, SEC_FLAGS),
	CFG_STR_CB("http_listen", "127.0.0.1:8025", CFGF_NONE, cb_http_listen),
	CFG_SEC("http", http_opts, CFGF_NONE),
	CFG_END()
};

/* last_section - the section libconfuse just finished */
static cfg_t *
last_section(cfg_opt_t *opt)
{
	return cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);
}

/* section_line - where to point an error about the section just parsed */
static int
section_line(cfg_t *cfg)
{
	int line = ctx.sec_first_line ? ctx.sec_first_line : cfg->line;

	ctx.sec_first_line = 0;
	return line;
}

/* missing - "option 'NAME': expected WHAT, got ''" for a required option */
static int
missing(cfg_t *cfg, int line, const char *name, const char *what)
{
	conf_errorf(ctx.path, line, "option '%s': expected %s, got ''", name, what);
	return -1;
}

/* listen_address_valid - "host:port" whose port is a number 1..65535 */
static int
listen_address_valid(const char *addr)
{
	char host[256], port[16], *end;
	long n;

	if (hostport_parse(addr, host, sizeof(host), port, sizeof(port)) == -1)
		return 0;
	n = strtol(port, &end, 10);
	return port[0] != '\0' && *end == '\0' && n >= 1 && n <= 65535;
}

/* v_listen - a listen section needs an address that can be bound */
static int
v_listen(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = last_section(opt);
	int line = section_line(cfg);
	const char *addr = cfg_getstr(sec, "address");

	if (addr == NULL)
		return missing(cfg, line, "address", "host:port in this listen section");
	if (!listen_address_valid(addr)) {
		conf_errorf(ctx.path, line, "option 'address': expected host:port with a "
		    "port from 1 to 65535, got '%s'", addr);
		return -1;
	}
	return 0;
}

static int v_transport_smtp(cfg_t *cfg, cfg_t *sec, int line);
static int v_transport_local(cfg_t *cfg, cfg_t *sec, const char *type, int line);
static void conf_fill_local(struct conf_transport *t, cfg_t *s);
static char *abs_path(const char *cwd, const char *p);

/* v_transport - type, and path (maildir) or host (relay) */
static int
v_transport(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = last_section(opt);
	const char *type = cfg_getstr(sec, "type");
	int line = section_line(cfg);
	char what[320];

	if (type == NULL)
		return missing(cfg, line, "type", TRANSPORT_TYPE_NAMES);
	if (strcmp(type, "maildir") == 0 && cfg_getstr(sec, "path") == NULL) {
		snprintf(what, sizeof(what), "a Maildir path for maildir transport '%s'",
		    cfg_title(sec));
		return missing(cfg, line, "path", what);
	}
	if (strcmp(type, "relay") == 0 && cfg_getstr(sec, "host") == NULL) {
		snprintf(what, sizeof(what), "host:port for relay transport '%s'",
		    cfg_title(sec));
		return missing(cfg, line, "host", what);
	}
	if (v_transport_local(cfg, sec, type, line) == -1)
		return -1;
	return v_transport_smtp(cfg, sec, line);
}

/* v_transport_local - file needs a directory, pipe a command, http a URL */
static int
v_transport_local(cfg_t *cfg, cfg_t *sec, const char *type, int line)
{
	const char *url = cfg_getstr(sec, "url");
	char what[320];

	if (strcmp(type, "file") == 0 && cfg_getstr(sec, "path") == NULL) {
		snprintf(what, sizeof(what), "a directory for file transport '%s'",
		    cfg_title(sec));
		return missing(cfg, line, "path", what);
	}
	if (strcmp(type, "file") == 0 && (*cfg_getstr(sec, "template") == '\0' ||
	    strchr(cfg_getstr(sec, "template"), '/') != NULL)) {
		conf_errorf(ctx.path, line, "option 'template': expected a file name "
		    "template without '/', got '%s'", cfg_getstr(sec, "template"));
		return -1;
	}
	if (strcmp(type, "pipe") == 0 && (cfg_size(sec, "command") == 0 ||
	    cfg_getnstr(sec, "command", 0)[0] != '/')) {
		snprintf(what, sizeof(what), "a list such as {\"/usr/bin/cmd\", \"arg\"} "
		    "starting with an absolute path for pipe transport '%s'", cfg_title(sec));
		return missing(cfg, line, "command", what);
	}
	if (strcmp(type, "http") == 0 && strncmp(url, "http://", 7) != 0 &&
	    strncmp(url, "https://", 8) != 0) {
		conf_errorf(ctx.path, line, "option 'url': expected an http:// or https:// "
		    "URL for http transport '%s', got '%s'", cfg_title(sec), url);
		return -1;
	}
	return 0;
}

/* read_secret - the first line of a password file, or NULL (errno) */
static char *
read_secret(const char *path)
{
	char buf[512];
	FILE *fp = fopen(path, "re");

	if (fp == NULL)
		return NULL;
	if (fgets(buf, sizeof(buf), fp) == NULL)
		buf[0] = '\0';
	fclose(fp);
	buf[strcspn(buf, "\r\n")] = '\0';
	return xstrdup(buf);
}

/* v_transport_smtp - AUTH options of an SMTP transport hang together */
static int
v_transport_smtp(cfg_t *cfg, cfg_t *sec, int line)
{
	const char *user = cfg_getstr(sec, "auth_user");
	const char *pw = cfg_getstr(sec, "auth_password");
	const char *file = cfg_getstr(sec, "auth_password_file");
	char *secret;

	if (*pw != '\0' && *file != '\0') {
		conf_errorf(ctx.path, line, "option 'auth_password_file': expected either "
		    "auth_password or auth_password_file in transport '%s', not both",
		    cfg_title(sec));
		return -1;
	}
	if (*file != '\0') {
		if ((secret = read_secret(file)) == NULL) {
			conf_errorf(ctx.path, line, "option 'auth_password_file': cannot read "
			    "'%s': %s", file, strerror(errno));
			return -1;
		}
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	if (*user != '\0' && *pw == '\0' && *file == '\0')
		return missing(cfg, line, "auth_password",
		    "auth_password or auth_password_file with auth_user");
	return 0;
}

/* v_tls_policy - a destination domain and its TLS level */
static int
v_tls_policy(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = last_section(opt);
	int line = section_line(cfg);

	if (!domain_valid(cfg_title(sec), 0)) {
		conf_errorf(ctx.path, line, "option 'tls_policy': expected a domain name, "
		    "got '%s'", cfg_title(sec));
		return -1;
	}
	if (cfg_getstr(sec, "level") == NULL)
		return missing(cfg, line, "level", "none, may, encrypt or verify");
	return 0;
}

/* conf_fill_smtp - the SMTP options of one transport section */
static void
conf_fill_smtp(struct conf_transport *t, cfg_t *s, const char *cwd)
{
	const char *file = cfg_getstr(s, "auth_password_file");

	t->port = (int)cfg_getint(s, "port");
	t->tls = tls_level_parse(cfg_getstr(s, "tls"));
	t->tls_implicit = cfg_getbool(s, "tls_implicit") == cfg_true;
	t->ca_file = *cfg_getstr(s, "ca_file") != '\0' ? abs_path(cwd,
	    cfg_getstr(s, "ca_file")) : xstrdup("");
	t->auth_user = xstrdup(cfg_getstr(s, "auth_user"));
	t->auth_password_file = *file != '\0' ? abs_path(cwd, file) : xstrdup("");
	t->auth_password = *file != '\0' ? read_secret(t->auth_password_file) :
	    xstrdup(cfg_getstr(s, "auth_password"));
	if (t->auth_password == NULL)
		t->auth_password = xstrdup("");
	t->reuse_max = (int)cfg_getint(s, "reuse_max");
	t->reuse_idle = (time_t)cfg_getint(s, "reuse_idle");
}

/* conf_fill_tls_policy - the tls_policy sections */
static void
conf_fill_tls_policy(struct conf *c, cfg_t *cfg, const char *cwd)
{
	size_t i;
	cfg_t *s;

	c->dns_server = xstrdup(cfg_getstr(cfg, "dns_server"));
	c->dns_timeout = (time_t)cfg_getint(cfg, "dns_timeout");
	c->ntls_policy = cfg_size(cfg, "tls_policy");
	c->tls_policy = xcalloc(c->ntls_policy + 1, sizeof(*c->tls_policy));
	for (i = 0; i < c->ntls_policy; i++) {
		s = cfg_getnsec(cfg, "tls_policy", (unsigned)i);
		c->tls_policy[i].domain = str_lower(xstrdup(cfg_title(s)));
		c->tls_policy[i].level = tls_level_parse(cfg_getstr(s, "level"));
		c->tls_policy[i].ca_file = *cfg_getstr(s, "ca_file") != '\0' ?
		    abs_path(cwd, cfg_getstr(s, "ca_file")) : xstrdup("");
	}
}

/* conf_tls_policy_for - the tls_policy section of a domain, or NULL */
const struct conf_tls_policy *
conf_tls_policy_for(const struct conf *c, const char *domain)
{
	size_t i;

	for (i = 0; i < c->ntls_policy; i++)
		if (strcasecmp(c->tls_policy[i].domain, domain) == 0)
			return &c->tls_policy[i];
	return NULL;
}

/* v_dkim - a signing domain needs a valid title, a selector and a key */
static int
v_dkim(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = last_section(opt);
	int line = section_line(cfg);
	char what[320];

	const char *domain = *cfg_getstr(sec, "domain") != '\0' ?
	    cfg_getstr(sec, "domain") : cfg_title(sec);

	if (!domain_valid(domain, 0)) {
		conf_errorf(ctx.path, line, "option 'dkim': expected a domain name "
		    "as the section title or in 'domain', got '%s'", domain);
		return -1;
	}
	if (cfg_getstr(sec, "selector") == NULL) {
		snprintf(what, sizeof(what), "a selector for dkim '%s'", cfg_title(sec));
		return missing(cfg, line, "selector", what);
	}
	if (cfg_getstr(sec, "key") == NULL) {
		snprintf(what, sizeof(what), "a key file for dkim '%s'", cfg_title(sec));
		return missing(cfg, line, "key", what);
	}
	return 0;
}

/* v_route - a recipient pattern (title or 'recipient') and a transport */
static int
v_route(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = last_section(opt);
	int line = section_line(cfg);
	const char *rcpt = *cfg_getstr(sec, "recipient") != '\0' ?
	    cfg_getstr(sec, "recipient") : cfg_title(sec);
	char what[320];

	if (!route_pattern_valid(rcpt)) {
		conf_errorf(ctx.path, line, "option 'route': expected an address pattern "
		    "such as user@example.com, *@example.com, *@*.example.com, user@* or "
		    "*@* as the title or in 'recipient', got '%s'", rcpt);
		return -1;
	}
	if (cfg_getstr(sec, "transport") == NULL) {
		snprintf(what, sizeof(what), "a transport name for route '%s'",
		    cfg_title(sec));
		return missing(cfg, line, "transport", what);
	}
	return 0;
}

/* v_queue - only resets the section line tracking */
static int
v_queue(cfg_t *cfg, cfg_opt_t *opt)
{
	(void)section_line(cfg);
	return 0;
}

/* v_http - the send API needs an allow-list, nonces need a secret */
static int
v_http(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = last_section(opt);
	int line = section_line(cfg);

	if (cfg_getbool(sec, "send_api") && cfg_size(sec, "allow_list") == 0)
		return missing(cfg, line, "allow_list",
		    "at least one recipient address when send_api is on");
	if (cfg_getbool(sec, "require_nonce") &&
	    *cfg_getstr(sec, "nonce_secret") == '\0')
		return missing(cfg, line, "nonce_secret",
		    "a shared secret when require_nonce is on");
	return 0;
}

/* abs_path - p made absolute against cwd ("./x" -> "CWD/x"); malloc'd */
static char *
abs_path(const char *cwd, const char *p)
{
	if (p[0] == '/' || cwd == NULL)
		return xstrdup(p);
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (strcmp(p, ".") == 0 || *p == '\0')
		return xstrdup(cwd);
	return xasprintf("%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, p);
}

/* --- smtpd: listener TLS and AUTH, users (postern-smtpd(8)) ---------- */

/* The word-valued smtpd options; the position of a word is its enum. */
static const struct {
	const char *opt;
	const char *words[4];
	const char *what;
} smtpd_words[] = {
	{ "mode", { "smtp", "smtps", NULL, NULL }, "smtp or smtps" },
	{ "auth", { "off", "optional", "required", NULL }, "off, optional or required" },
};

/* word_index - position of value among the words of option name, or -1 */
static int
word_index(const char *name, const char *value)
{
	size_t i;
	int k;

	for (i = 0; i < sizeof(smtpd_words) / sizeof(smtpd_words[0]); i++) {
		if (strcmp(smtpd_words[i].opt, name) != 0)
			continue;
		for (k = 0; smtpd_words[i].words[k] != NULL; k++)
			if (strcasecmp(smtpd_words[i].words[k], value) == 0)
				return k;
	}
	return -1;
}

/* cb_word - value must be one of the words of its option */
static int
cb_word(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	size_t i;

	note_line(cfg);
	if (word_index(opt->name, value) >= 0)
		return str_result(value, result);
	for (i = 0; i < sizeof(smtpd_words) / sizeof(smtpd_words[0]); i++)
		if (strcmp(smtpd_words[i].opt, opt->name) == 0)
			return bad_value(cfg, opt, smtpd_words[i].what, value);
	return bad_value(cfg, opt, "a known value", value);
}

/* hash_plausible - a crypt(3) hash of a kind smtpd verifies */
static int
hash_plausible(const char *h)
{
	static const char *const prefixes[] = { "$y$", "$gy$", "$7$", "$6$", "$5$",
	    "$2b$", "$2y$", "$2a$", NULL };
	size_t i;

	for (i = 0; prefixes[i] != NULL; i++)
		if (strncmp(h, prefixes[i], strlen(prefixes[i])) == 0)
			return strlen(h) > strlen(prefixes[i]) + 8 &&
			    strpbrk(h, ": \t\r\n") == NULL;
	return 0;
}

/* v_smtp_user - a user needs a password hash (never echoed in errors) */
static int
v_smtp_user(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = last_section(opt);
	int line = section_line(cfg);
	const char *pw = cfg_getstr(sec, "password");

	if (pw == NULL)
		return missing(cfg, line, "password", "a crypt(3) hash (posternctl "
		    "hash-password) in this smtp_user section");
	if (!hash_plausible(pw)) {
		conf_errorf(ctx.path, line, "option 'password': expected a crypt(3) "
		    "hash ($y$, $6$ or $2b$; see posternctl hash-password), got a "
		    "value that is not one");
		return -1;
	}
	return 0;
}

/* user_add - append a user; -1 (error set) if the name is taken */
static int
user_add(struct conf *c, const char *file, int line, const char *name,
    const char *hash, char **domains, size_t ndomains)
{
	struct conf_user *u;

	if (conf_user_find(c, name) != NULL) {
		conf_errorf(file, line, "user '%s' is defined twice", name);
		return -1;
	}
	c->users = xreallocarray(c->users, c->nusers + 1, sizeof(*c->users));
	u = &c->users[c->nusers++];
	u->name = xstrdup(name);
	u->password = xstrdup(hash);
	u->domains = domains;
	u->ndomains = ndomains;
	return 0;
}

/* users_line_domains - "dom1,dom2" into a lower-case array; -1 if one
 * is not a domain name */
static int
users_line_domains(char *list, char ***out, size_t *n)
{
	char *tok, *save = NULL;

	*out = xcalloc(1, sizeof(char *));
	*n = 0;
	for (tok = strtok_r(list, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (!domain_valid(tok, 0))
			return -1;
		*out = xreallocarray(*out, *n + 2, sizeof(char *));
		(*out)[(*n)++] = str_lower(xstrdup(tok));
		(*out)[*n] = NULL;
	}
	return 0;
}

/* strv_free - free a NULL-ended string array of n entries */
static void
strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

/* users_file_line - one "name:hash:domains" line; 0, or -1 (error set) */
static int
users_file_line(struct conf *c, const char *path, int lineno, char *line)
{
	char *name = line, *hash, *doms, **dv;
	size_t nd;

	line[strcspn(line, "\r\n")] = '\0';
	while (*name == ' ' || *name == '\t')
		name++;
	if (*name == '\0' || *name == '#')
		return 0;
	if ((hash = strchr(name, ':')) == NULL || hash == name) {
		conf_errorf(path, lineno, "expected name:hash:domain,domain");
		return -1;
	}
	*hash++ = '\0';
	if ((doms = strchr(hash, ':')) != NULL)
		*doms++ = '\0';
	if (!hash_plausible(hash)) {
		conf_errorf(path, lineno, "user '%s': expected a crypt(3) hash ($y$, $6$ "
		    "or $2b$; see posternctl hash-password)", name);
		return -1;
	}
	if (users_line_domains(doms != NULL ? doms : hash + strlen(hash), &dv,
	    &nd) == -1) {
		strv_free(dv, nd);
		conf_errorf(path, lineno, "user '%s': expected a comma-separated list "
		    "of domain names", name);
		return -1;
	}
	if (user_add(c, path, lineno, name, hash, dv, nd) == -1) {
		strv_free(dv, nd);
		return -1;
	}
	return 0;
}

/* users_file_read - every line of users_file; 0 or -1 (error set) */
static int
users_file_read(struct conf *c, const char *path)
{
	char line[1024];
	FILE *fp;
	int n = 0, r = 0;

	if ((fp = fopen(path, "re")) == NULL) {
		/* an unprivileged posternctl does not need the users; the
		 * master and smtpd read the file as root */
		if (errno == EACCES && geteuid() != 0) {
			log_warnx("users_file %s: permission denied; its users are "
			    "not loaded by this process", path);
			return 0;
		}
		conf_errorf(c->path, 0, "option 'users_file': cannot read %s: %s",
		    path, strerror(errno));
		return -1;
	}
	while (r == 0 && fgets(line, sizeof(line), fp) != NULL)
		r = users_file_line(c, path, ++n, line);
	explicit_bzero(line, sizeof(line));
	fclose(fp);
	return r;
}

/* conf_fill_users - smtp_user sections, then users_file */
static int
conf_fill_users(struct conf *c, cfg_t *cfg, const char *cwd)
{
	char **dv;
	size_t i, k, nd;
	cfg_t *s;

	for (i = 0; i < cfg_size(cfg, "smtp_user"); i++) {
		s = cfg_getnsec(cfg, "smtp_user", (unsigned)i);
		nd = cfg_size(s, "sender_domains");
		dv = xcalloc(nd + 1, sizeof(char *));
		for (k = 0; k < nd; k++)
			dv[k] = xstrdup(cfg_getnstr(s, "sender_domains", (unsigned)k));
		if (user_add(c, c->path, s->line, cfg_title(s), cfg_getstr(s, "password"),
		    dv, nd) == -1) {
			strv_free(dv, nd);
			return -1;
		}
	}
	c->users_file = *cfg_getstr(cfg, "users_file") != '\0' ?
	    abs_path(cwd, cfg_getstr(cfg, "users_file")) : xstrdup("");
	if (*c->users_file != '\0')
		return users_file_read(c, c->users_file);
	return 0;
}

/* listen_tls_file - the listener's file option, else the global one */
static char *
listen_tls_file(cfg_t *s, cfg_t *cfg, const char *name, const char *cwd)
{
	const char *v = cfg_getstr(s, name);

	if (*v == '\0')
		v = cfg_getstr(cfg, name);
	return *v != '\0' ? abs_path(cwd, v) : xstrdup("");
}

/* conf_fill_client_allow - the validated entries of list option name
 * of sec: networks into a->nets, host name patterns into a->names */
static void
conf_fill_client_allow(struct conf_client_allow *a, cfg_t *sec, const char *name)
{
	size_t i, n = cfg_size(sec, name);
	const char *v;
	struct cidr c;

	a->names = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		v = cfg_getnstr(sec, name, (unsigned)i);
		if (cidr_parse(v, &c) == 0) {
			if (netlist_add(&a->nets, v) == -1)
				panic("conf: validated network failed to parse");
		} else
			a->names[a->nnames++] = xstrdup(v);
	}
}

/* conf_free_client_allow - what conf_fill_client_allow allocated */
static void
conf_free_client_allow(struct conf_client_allow *a)
{
	netlist_free(&a->nets);
	strv_free(a->names, a->nnames);
	a->names = NULL;
	a->nnames = 0;
}

/* conf_client_allow_for - the allow-list of listener i: its own when
 * it has entries, else the global one */
const struct conf_client_allow *
conf_client_allow_for(const struct conf *c, size_t i)
{
	const struct conf_client_allow *l;

	if (i >= c->nlisten)
		return &c->client_allow;
	l = &c->listen[i].client_allow;
	return l->nets.n > 0 || l->nnames > 0 ? l : &c->client_allow;
}

/* conf_fill_listen_smtpd - one listener's smtpd options; -1 (error set)
 * when TLS is needed but no readable certificate is configured */
static int
conf_fill_listen_smtpd(struct conf *c, struct conf_listen *l, cfg_t *s, cfg_t *cfg,
    const char *cwd)
{
	l->mode = word_index("mode", cfg_getstr(s, "mode"));
	l->auth = word_index("auth", cfg_getstr(s, "auth"));
	l->require_tls = cfg_getbool(s, "require_tls") == cfg_true;
	l->auth_cleartext = cfg_getbool(s, "auth_cleartext") == cfg_true;
	l->submission = cfg_getbool(s, "submission") == cfg_true;
	l->debug = cfg_getbool(s, "debug") == cfg_true;
	conf_fill_client_allow(&l->client_allow, s, "client_allow");
	l->tls_cert = listen_tls_file(s, cfg, "tls_cert", cwd);
	l->tls_key = listen_tls_file(s, cfg, "tls_key", cwd);
	if (*l->tls_key == '\0' && *l->tls_cert != '\0') {
		free(l->tls_key);
		l->tls_key = xstrdup(l->tls_cert);
	}
	if (*l->tls_cert == '\0' && (l->mode == LISTEN_MODE_SMTPS || l->require_tls)) {
		conf_errorf(c->path, s->line, "option 'tls_cert': expected a certificate "
		    "file for listen '%s' (mode smtps or require_tls), got ''", l->name);
		return -1;
	}
	/* existence only: the key may be readable by root alone, and an
	 * unprivileged posternctl loads this file too; smtpd reads both */
	if (*l->tls_cert != '\0' && (access(l->tls_cert, F_OK) == -1 ||
	    access(l->tls_key, F_OK) == -1)) {
		conf_errorf(c->path, s->line, "option 'tls_cert': cannot find %s or %s "
		    "(listen '%s'): %s", l->tls_cert, l->tls_key, l->name, strerror(errno));
		return -1;
	}
	return 0;
}

/* conf_fill_smtpd - the smtpd options: listeners' TLS/AUTH, users */
static int
conf_fill_smtpd(struct conf *c, cfg_t *cfg, const char *cwd)
{
	size_t i;

	c->tls_cert = *cfg_getstr(cfg, "tls_cert") != '\0' ?
	    abs_path(cwd, cfg_getstr(cfg, "tls_cert")) : xstrdup("");
	c->tls_key = *cfg_getstr(cfg, "tls_key") != '\0' ?
	    abs_path(cwd, cfg_getstr(cfg, "tls_key")) : xstrdup("");
	c->received_show_auth = cfg_getbool(cfg, "received_show_auth") == cfg_true;
	c->auth_failure_limit = (int)cfg_getint(cfg, "auth_failure_limit");
	c->auth_failure_window = (time_t)cfg_getint(cfg, "auth_failure_window");
	c->client_connection_limit = (int)cfg_getint(cfg,
	    "smtpd_client_connection_limit");
	c->client_message_limit = (int)cfg_getint(cfg, "smtpd_client_message_limit");
	c->client_message_window = (time_t)cfg_getint(cfg,
	    "smtpd_client_message_window");
	conf_fill_client_allow(&c->client_allow, cfg, "smtpd_client_allow");
	c->sender_local_only = cfg_getbool(cfg, "smtpd_sender_local_only") == cfg_true;
	for (i = 0; i < c->nlisten; i++)
		if (conf_fill_listen_smtpd(c, &c->listen[i],
		    cfg_getnsec(cfg, "listen", (unsigned)i), cfg, cwd) == -1)
			return -1;
	return conf_fill_users(c, cfg, cwd);
}

/* conf_free_smtpd - what conf_fill_smtpd allocated; hashes wiped */
static void
conf_free_smtpd(struct conf *c)
{
	size_t i;

	for (i = 0; i < c->nlisten; i++) {
		free(c->listen[i].tls_cert);
		free(c->listen[i].tls_key);
		conf_free_client_allow(&c->listen[i].client_allow);
	}
	conf_free_client_allow(&c->client_allow);
	for (i = 0; i < c->nusers; i++) {
		free(c->users[i].name);
		explicit_bzero(c->users[i].password, strlen(c->users[i].password));
		free(c->users[i].password);
		strv_free(c->users[i].domains, c->users[i].ndomains);
	}
	free(c->users);
	free(c->users_file);
	free(c->tls_cert);
	free(c->tls_key);
}

/* conf_user_find - the AUTH user called name (exact), or NULL */
const struct conf_user *
conf_user_find(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < c->nusers; i++)
		if (strcmp(c->users[i].name, name) == 0)
			return &c->users[i];
	return NULL;
}

/* conf_hostname - the configured name or gethostname(2) */
static char *
conf_hostname(const char *configured)
{
	char buf[256];

	if (configured != NULL && *configured != '\0')
		return xstrdup(configured);
	if (gethostname(buf, sizeof(buf)) == -1)
		return xstrdup("localhost");
	buf[sizeof(buf) - 1] = '\0';
	return xstrdup(buf);
}

/* conf_fill_root - the top-level scalar options */
static void
conf_fill_root(struct conf *c, cfg_t *cfg, const char *cwd)
{
	size_t i;

	c->hostname = conf_hostname(cfg_getstr(cfg, "hostname"));
	c->user = xstrdup(cfg_getstr(cfg, "user"));
	c->spool_dir = abs_path(cwd, cfg_getstr(cfg, "spool_dir"));
	c->run_dir = abs_path(cwd, cfg_getstr(cfg, "run_dir"));
	c->control_socket = *cfg_getstr(cfg, "control_socket") != '\0' ?
	    abs_path(cwd, cfg_getstr(cfg, "control_socket")) :
	    xasprintf("%s/control.sock", c->run_dir);
	c->libexec_dir = abs_path(cwd, cfg_getstr(cfg, "libexec_dir"));
	c->log_level = log_level_parse(cfg_getstr(cfg, "log_level"));
	c->smtpd_processes = (int)cfg_getint(cfg, "smtpd_processes");
	c->delivery_processes = (int)cfg_getint(cfg, "delivery_processes");
	c->shutdown_timeout = (time_t)cfg_getint(cfg, "shutdown_timeout");
	c->http_listen = xstrdup(cfg_getstr(cfg, "http_listen"));
	for (i = 0; i < cfg_size(cfg, "trusted_networks"); i++)
		if (netlist_add(&c->trusted_networks, cfg_getnstr(cfg, "trusted_networks",
		    (unsigned)i)) == -1)
			panic("conf: validated network failed to parse");
	c->nrelay_domains = cfg_size(cfg, "relay_domains");
	c->relay_domains = xcalloc(c->nrelay_domains + 1, sizeof(char *));
	for (i = 0; i < c->nrelay_domains; i++)
		c->relay_domains[i] = xstrdup(cfg_getnstr(cfg, "relay_domains", (unsigned)i));
	c->max_message_size = (size_t)cfg_getint(cfg, "max_message_size");
	c->max_recipients = (int)cfg_getint(cfg, "max_recipients");
	c->smtpd_timeout = (time_t)cfg_getint(cfg, "smtpd_timeout");
	c->smtpd_data_timeout = (time_t)cfg_getint(cfg, "smtpd_data_timeout");
}

/* strlist_copy - a NULL-ended copy of a string list option */
static char **
strlist_copy(cfg_t *sec, const char *name, size_t *np)
{
	size_t i, n = cfg_size(sec, name);
	char **v = xcalloc(n + 1, sizeof(char *));

	for (i = 0; i < n; i++)
		v[i] = xstrdup(cfg_getnstr(sec, name, (unsigned)i));
	*np = n;
	return v;
}

/* conf_fill_http - the http section */
static void
conf_fill_http(struct conf *c, cfg_t *cfg)
{
	cfg_t *h = cfg_getsec(cfg, "http");
	struct conf_http *ch = &c->http;
	size_t i;

	ch->send_api = cfg_getbool(h, "send_api") ? 1 : 0;
	ch->compat_paths = cfg_getbool(h, "compat_paths") ? 1 : 0;
	ch->allow_list = strlist_copy(h, "allow_list", &ch->nallow_list);
	ch->sender = *cfg_getstr(h, "sender") != '\0' ?
	    xstrdup(cfg_getstr(h, "sender")) : xasprintf("postern@%s", c->hostname);
	ch->rate_limit = (time_t)cfg_getint(h, "rate_limit");
	ch->max_body = (size_t)cfg_getint(h, "max_body");
	ch->client_ip_header = xstrdup(cfg_getstr(h, "client_ip_header"));
	for (i = 0; i < cfg_size(h, "trusted_proxies"); i++)
		if (netlist_add(&ch->trusted_proxies, cfg_getnstr(h, "trusted_proxies",
		    (unsigned)i)) == -1)
			panic("conf: validated network failed to parse");
	ch->require_nonce = cfg_getbool(h, "require_nonce") ? 1 : 0;
	ch->nonce_secret = xstrdup(cfg_getstr(h, "nonce_secret"));
	ch->nonce_max_age = (time_t)cfg_getint(h, "nonce_max_age");
	ch->cors_origins = strlist_copy(h, "cors_origins", &ch->ncors_origins);
	ch->ready_min_free = (size_t)cfg_getint(h, "ready_min_free");
	ch->admin_token = xstrdup(cfg_getstr(h, "admin_token"));
}

/* conf_free_http - what conf_fill_http allocated */
static void
conf_free_http(struct conf_http *ch)
{
	size_t i;

	for (i = 0; ch->allow_list != NULL && i < ch->nallow_list; i++)
		free(ch->allow_list[i]);
	for (i = 0; ch->cors_origins != NULL && i < ch->ncors_origins; i++)
		free(ch->cors_origins[i]);
	free(ch->allow_list);
	free(ch->cors_origins);
	free(ch->sender);
	free(ch->client_ip_header);
	if (ch->nonce_secret != NULL)
		explicit_bzero(ch->nonce_secret, strlen(ch->nonce_secret));
	free(ch->nonce_secret);
	if (ch->admin_token != NULL)
		explicit_bzero(ch->admin_token, strlen(ch->admin_token));
	free(ch->admin_token);
	netlist_free(&ch->trusted_proxies);
}

/* conf_fill_queue - the queue section */
static void
conf_fill_queue(struct conf *c, cfg_t *cfg)
{
	cfg_t *q = cfg_getsec(cfg, "queue");

	c->queue.retry_base = (time_t)cfg_getint(q, "retry_base");
	c->queue.retry_factor = cfg_getfloat(q, "retry_factor");
	c->queue.retry_cap = (time_t)cfg_getint(q, "retry_cap");
	c->queue.retry_jitter = cfg_getfloat(q, "retry_jitter");
	c->queue.lifetime = (time_t)cfg_getint(q, "lifetime");
	c->queue.concurrency = (int)cfg_getint(q, "concurrency");
	c->queue.destination_concurrency = (int)cfg_getint(q,
	    "destination_concurrency");
	c->queue.destination_rate = (int)cfg_getint(q, "destination_rate");
	c->queue.delay_warning = (time_t)cfg_getint(q, "delay_warning");
	c->queue.retention = (time_t)cfg_getint(q, "retention");
	c->queue.group_commit = cfg_getbool(q, "group_commit") ? 1 : 0;
}

/* conf_fill_sections - listen, transport and dkim sections */
static void
conf_fill_sections(struct conf *c, cfg_t *cfg, const char *cwd)
{
	size_t i;
	cfg_t *s;

	c->nlisten = cfg_size(cfg, "listen");
	c->listen = xcalloc(c->nlisten + 1, sizeof(*c->listen));
	for (i = 0; i < c->nlisten; i++) {
		s = cfg_getnsec(cfg, "listen", (unsigned)i);
		c->listen[i].name = xstrdup(cfg_title(s));
		c->listen[i].address = xstrdup(cfg_getstr(s, "address"));
	}
	c->ntransport = cfg_size(cfg, "transport");
	c->transport = xcalloc(c->ntransport + 1, sizeof(*c->transport));
	for (i = 0; i < c->ntransport; i++) {
		struct conf_transport *t = &c->transport[i];

		s = cfg_getnsec(cfg, "transport", (unsigned)i);
		t->name = xstrdup(cfg_title(s));
		t->type = transport_type_parse(cfg_getstr(s, "type"));
		if (cfg_getstr(s, "path") != NULL)
			t->path = abs_path(cwd, cfg_getstr(s, "path"));
		if (cfg_getstr(s, "host") != NULL)
			t->host = xstrdup(cfg_getstr(s, "host"));
		t->timeout = (time_t)cfg_getint(s, "timeout");
		conf_fill_smtp(t, s, cwd);
		conf_fill_local(t, s);
	}
	if (c->ntransport == 0) {
		/* no transport configured: the built-in local Maildir */
		c->ntransport = 1;
		c->transport[0].name = xstrdup(BUILTIN_TRANSPORT);
		c->transport[0].type = TRANSPORT_MAILDIR;
		c->transport[0].path = xstrdup(BUILTIN_MAILDIR);
		c->transport[0].timeout = 300;
	}
	c->ndkim = cfg_size(cfg, "dkim");
	c->dkim = xcalloc(c->ndkim + 1, sizeof(*c->dkim));
	for (i = 0; i < c->ndkim; i++) {
		s = cfg_getnsec(cfg, "dkim", (unsigned)i);
		c->dkim[i].name = xstrdup(cfg_title(s));
		c->dkim[i].domain = str_lower(xstrdup(*cfg_getstr(s, "domain") != '\0' ?
		    cfg_getstr(s, "domain") : cfg_title(s)));
		c->dkim[i].selector = xstrdup(cfg_getstr(s, "selector"));
		c->dkim[i].key = abs_path(cwd, cfg_getstr(s, "key"));
		c->dkim[i].generate = cfg_getbool(s, "generate") == cfg_true;
	}
}

/* conf_fill_local - the file, pipe and http options of a transport */
static void
conf_fill_local(struct conf_transport *t, cfg_t *s)
{
	size_t i;

	t->name_template = xstrdup(cfg_getstr(s, "template"));
	t->argc = cfg_size(s, "command");
	t->argv = xcalloc(t->argc + 1, sizeof(char *));
	for (i = 0; i < t->argc; i++)
		t->argv[i] = xstrdup(cfg_getnstr(s, "command", (unsigned)i));
	t->url = xstrdup(cfg_getstr(s, "url"));
	t->secret = xstrdup(cfg_getstr(s, "secret"));
}

/* conf_fill_dkim_opts - dkim_canonicalization and dkim_signed_headers */
static void
conf_fill_dkim_opts(struct conf *c, cfg_t *cfg)
{
	size_t i;

	c->dkim_canon = xstrdup(cfg_getstr(cfg, "dkim_canonicalization"));
	c->ndkim_headers = cfg_size(cfg, "dkim_signed_headers");
	c->dkim_headers = xcalloc(c->ndkim_headers + 1, sizeof(char *));
	for (i = 0; i < c->ndkim_headers; i++)
		c->dkim_headers[i] = str_lower(xstrdup(cfg_getnstr(cfg,
		    "dkim_signed_headers", (unsigned)i)));
}

/* conf_fill_routes - the route sections, each pointed at its transport */
static int
conf_fill_routes(struct conf *c, cfg_t *cfg)
{
	const struct conf_transport *t;
	size_t i, k;
	cfg_t *s;

	c->nroute = cfg_size(cfg, "route");
	c->route = xcalloc(c->nroute + 1, sizeof(*c->route));
	for (i = 0; i < c->nroute; i++) {
		struct conf_route *r = &c->route[i];

		s = cfg_getnsec(cfg, "route", (unsigned)i);
		r->name = xstrdup(cfg_title(s));
		r->recipient = str_lower(xstrdup(*cfg_getstr(s, "recipient") != '\0' ?
		    cfg_getstr(s, "recipient") : cfg_title(s)));
		r->sender = xstrdup(cfg_getstr(s, "sender"));
		r->line = s->line;
		for (k = 0, t = NULL; k < c->ntransport && t == NULL; k++)
			if (strcmp(c->transport[k].name, cfg_getstr(s, "transport")) == 0)
				t = &c->transport[k];
		if (t == NULL) {
			conf_errorf(c->path, s->line, "option 'transport': expected the name "
			    "of a transport section in route '%s', got '%s'", r->name,
			    cfg_getstr(s, "transport"));
			return -1;
		}
		r->transport = t;
	}
	return 0;
}

/* conf_resolve_default - point default_transport at its section */
static int
conf_resolve_default(struct conf *c, cfg_t *cfg)
{
	const char *name = cfg_getstr(cfg, "default_transport");
	size_t i;

	for (i = 0; i < c->ntransport; i++)
		if (strcmp(c->transport[i].name, name) == 0) {
			c->default_transport = &c->transport[i];
			return 0;
		}
	conf_errorf(c->path, ctx.default_transport_line, "option 'default_transport': "
	    "expected the name of a transport section, got '%s'", name);
	return -1;
}

#define CONF_MAX_BYTES (1024 * 1024)

/* conf_schema - a libconfuse context with our validators and errors */
static cfg_t *
conf_schema(void)
{
	cfg_t *cfg = cfg_init(root_opts, CFGF_NONE);

	if (cfg == NULL)
		fatal("cfg_init");
	cfg_set_error_function(cfg, conf_errfunc);
	cfg_set_validate_func(cfg, "listen", v_listen);
	cfg_set_validate_func(cfg, "smtp_user", v_smtp_user);
	cfg_set_validate_func(cfg, "transport", v_transport);
	cfg_set_validate_func(cfg, "dkim", v_dkim);
	cfg_set_validate_func(cfg, "route", v_route);
	cfg_set_validate_func(cfg, "tls_policy", v_tls_policy);
	cfg_set_validate_func(cfg, "queue", v_queue);
	cfg_set_validate_func(cfg, "http", v_http);
	return cfg;
}

/* blank_comments - overwrite '#' and '//' comments (to the end of the
 * line) and C comments with spaces, keeping newlines and quoted strings.
 * libconfuse 3.3's lexer counts every comment as three lines, so its error
 * lines drift, and it rejects a comment inside a list (upstream issue
 * #150); it never sees our comments at all. */
static void
blank_comments(char *p)
{
	char quote = 0;

	for (; *p != '\0'; p++) {
		if (quote) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == quote)
				quote = 0;
		} else if (*p == '"' || *p == '\'') {
			quote = *p;
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			for (; *p != '\0' && *p != '\n'; p++)
				*p = ' ';
			if (*p == '\0')
				break;
		} else if (p[0] == '/' && p[1] == '*') {
			for (; *p != '\0' && !(p[0] == '*' && p[1] == '/'); p++)
				if (*p != '\n')
					*p = ' ';
			if (*p == '\0')
				break;
			p[0] = p[1] = ' ';
			p++;
		}
	}
}

/* conf_read_uncommented - the whole file (at most CONF_MAX_BYTES) with
 * its comments blanked; NULL with *err an errno */
static char *
conf_read_uncommented(const char *path, int *err)
{
	FILE *fp = fopen(path, "re");
	char *buf;
	size_t n;

	if (fp == NULL) {
		*err = errno;
		return NULL;
	}
	buf = xmalloc(CONF_MAX_BYTES + 1);
	n = fread(buf, 1, CONF_MAX_BYTES + 1, fp);
	*err = ferror(fp) ? EIO : EFBIG;
	fclose(fp);
	if (n > CONF_MAX_BYTES || memchr(buf, '\0', n) != NULL) {
		if (n <= CONF_MAX_BYTES)
			*err = EINVAL;
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	blank_comments(buf);
	return buf;
}

/* conf_load - parse path into a new struct conf, or NULL with err */
struct conf *
conf_load(const char *path, char *err, size_t errlen)
{
	struct conf *c = NULL;
	char cwd[PATH_MAX], *cwdp, *text;
	cfg_t *cfg;
	int r, rerrno = 0;

	memset(&ctx, 0, sizeof(ctx));
	ctx.path = path;
	ctx.err = err;
	ctx.errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
	cfg = conf_schema();
	if ((text = conf_read_uncommented(path, &rerrno)) == NULL) {
		conf_errorf(path, 0, "cannot read: %s", strerror(rerrno));
		r = CFG_FILE_ERROR;
	} else {
		r = cfg_parse_buf(cfg, text);
		free(text);
	}
	if (r != CFG_SUCCESS && r != CFG_FILE_ERROR && !ctx.failed)
		conf_errorf(path, 0, "syntax error");
	if (r == CFG_SUCCESS) {
		cwdp = getcwd(cwd, sizeof(cwd));
		c = xcalloc(1, sizeof(*c));
		c->path = xstrdup(path);
		conf_fill_root(c, cfg, cwdp);
		conf_fill_queue(c, cfg);
		conf_fill_http(c, cfg);
		conf_fill_sections(c, cfg, cwdp);
		conf_fill_tls_policy(c, cfg, cwdp);
		conf_fill_dkim_opts(c, cfg);
		if (conf_fill_routes(c, cfg) == -1 || conf_resolve_default(c, cfg) == -1 ||
		    conf_fill_smtpd(c, cfg, cwdp) == -1)
			conf_free(&c);
	}
	cfg_free(cfg);
	memset(&ctx, 0, sizeof(ctx));
	return c;
}

/* conf_free_local - local output options, routes and DKIM options */
static void
conf_free_local(struct conf *c)
{
	size_t i, k;

	for (i = 0; i < c->ntransport; i++) {
		struct conf_transport *t = &c->transport[i];

		for (k = 0; k < t->argc; k++)
			free(t->argv[k]);
		free(t->argv);
		free(t->name_template);
		free(t->url);
		if (t->secret != NULL)
			explicit_bzero(t->secret, strlen(t->secret));
		free(t->secret);
	}
	for (i = 0; i < c->nroute; i++) {
		free(c->route[i].name);
		free(c->route[i].recipient);
		free(c->route[i].sender);
	}
	free(c->route);
	for (i = 0; i < c->ndkim_headers; i++)
		free(c->dkim_headers[i]);
	free(c->dkim_headers);
	free(c->dkim_canon);
	for (i = 0; i < c->ndkim; i++)
		free(c->dkim[i].name);
}

/* conf_free_smtp - the SMTP transport options and tls_policy sections */
static void
conf_free_smtp(struct conf *c)
{
	size_t i;

	for (i = 0; i < c->ntransport; i++) {
		struct conf_transport *t = &c->transport[i];

		if (t->auth_password != NULL)
			explicit_bzero(t->auth_password, strlen(t->auth_password));
		free(t->auth_password);
		free(t->auth_password_file);
		free(t->auth_user);
		free(t->ca_file);
	}
	for (i = 0; i < c->ntls_policy; i++) {
		free(c->tls_policy[i].domain);
		free(c->tls_policy[i].ca_file);
	}
	free(c->tls_policy);
	free(c->dns_server);
	conf_free_local(c);
}

/* conf_free - release a configuration; *cp = NULL */
void
conf_free(struct conf **cp)
{
	struct conf *c = *cp;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nlisten; i++) {
		free(c->listen[i].name);
		free(c->listen[i].address);
	}
	for (i = 0; i < c->ntransport; i++) {
		free(c->transport[i].name);
		free(c->transport[i].path);
		free(c->transport[i].host);
	}
	for (i = 0; i < c->ndkim; i++) {
		free(c->dkim[i].domain);
		free(c->dkim[i].selector);
		free(c->dkim[i].key);
	}
	for (i = 0; i < c->nrelay_domains; i++)
		free(c->relay_domains[i]);
	conf_free_smtp(c);
	conf_free_smtpd(c);
	free(c->listen);
	free(c->transport);
	free(c->dkim);
	free(c->relay_domains);
	netlist_free(&c->trusted_networks);
	free(c->path);
	free(c->hostname);
	free(c->user);
	free(c->spool_dir);
	free(c->run_dir);
	free(c->control_socket);
	free(c->libexec_dir);
	free(c->http_listen);
	conf_free_http(&c->http);
	free(c);
	*cp = NULL;
}

/* conf_dkim_for - the signing entry of domain (case-insensitive) */
const struct conf_dkim *
conf_dkim_for(const struct conf *c, const char *domain)
{
	size_t i;

	for (i = 0; domain != NULL && i < c->ndkim; i++)
		if (strcasecmp(c->dkim[i].domain, domain) == 0)
			return &c->dkim[i];
	return NULL;
}

/* conf_is_relay_domain - 1 if domain is one of relay_domains */
int
conf_is_relay_domain(const struct conf *c, const char *domain)
{
	size_t i;

	for (i = 0; domain != NULL && i < c->nrelay_domains; i++)
		if (strcasecmp(c->relay_domains[i], domain) == 0)
			return 1;
	return 0;
}

/* conf_dump_scalars - the top-level options */
static void
conf_dump_scalars(const struct conf *c, FILE *fp)
{
	static const char *const levels[] = { "error", "warning", "info", "debug" };

	fprintf(fp, "config = %s\n", c->path);
	fprintf(fp, "hostname = %s\n", c->hostname);
	fprintf(fp, "user = %s\n", c->user);
	fprintf(fp, "spool_dir = %s\n", c->spool_dir);
	fprintf(fp, "run_dir = %s\n", c->run_dir);
	fprintf(fp, "control_socket = %s\n", c->control_socket);
	fprintf(fp, "libexec_dir = %s\n", c->libexec_dir);
	fprintf(fp, "log_level = %s\n", levels[c->log_level & 3]);
	fprintf(fp, "smtpd_processes = %d\n", c->smtpd_processes);
	fprintf(fp, "delivery_processes = %d\n", c->delivery_processes);
	fprintf(fp, "shutdown_timeout = %llds\n", (long long)c->shutdown_timeout);
	fprintf(fp, "max_message_size = %zu\n", c->max_message_size);
	fprintf(fp, "max_recipients = %d\n", c->max_recipients);
	fprintf(fp, "smtpd_timeout = %llds\n", (long long)c->smtpd_timeout);
	fprintf(fp, "smtpd_client_connection_limit = %d\n",
	    c->client_connection_limit);
	fprintf(fp, "smtpd_client_message_limit = %d\n", c->client_message_limit);
	fprintf(fp, "smtpd_client_message_window = %llds\n",
	    (long long)c->client_message_window);
	fprintf(fp, "smtpd_data_timeout = %llds\n", (long long)c->smtpd_data_timeout);
	fprintf(fp, "default_transport = %s\n", c->default_transport->name);
	fprintf(fp, "http_listen = %s\n", c->http_listen);
}

/* conf_dump_nets - " 192.0.2.0/24 2001:db8::/32" */
static void
conf_dump_nets(const struct netlist *l, FILE *fp)
{
	char buf[64];
	size_t i;

	for (i = 0; i < l->n; i++) {
		const struct cidr *n = &l->net[i];
		int v4 = n->prefix >= 96 && memcmp(n->addr,
		    "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;

		inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? n->addr + 12 : n->addr, buf,
		    sizeof(buf));
		fprintf(fp, " %s/%d", buf, v4 ? n->prefix - 96 : n->prefix);
	}
}

/* conf_dump_client_allow - "label = networks names" (no newline) */
static void
conf_dump_client_allow(const char *label, const struct conf_client_allow *a,
    FILE *fp)
{
	size_t i;

	fprintf(fp, "%s =", label);
	conf_dump_nets(&a->nets, fp);
	for (i = 0; i < a->nnames; i++)
		fprintf(fp, " %s", a->names[i]);
}

/* conf_dump_lists - trusted_networks, relay_domains and the queue */
static void
conf_dump_lists(const struct conf *c, FILE *fp)
{
	size_t i;

	fprintf(fp, "trusted_networks =");
	conf_dump_nets(&c->trusted_networks, fp);
	fprintf(fp, "\nrelay_domains =");
	for (i = 0; i < c->nrelay_domains; i++)
		fprintf(fp, " %s", c->relay_domains[i]);
	conf_dump_client_allow("\nsmtpd_client_allow", &c->client_allow, fp);
	for (i = 0; i < c->nlisten; i++) {
		fprintf(fp, "\nlisten.%s.", c->listen[i].name);
		conf_dump_client_allow("client_allow", &c->listen[i].client_allow, fp);
	}
	fprintf(fp, "\nsmtpd_sender_local_only = %s",
	    c->sender_local_only ? "yes" : "no");
	fprintf(fp, "\nqueue.retry_base = %llds\n", (long long)c->queue.retry_base);
	fprintf(fp, "queue.retry_factor = %g\n", c->queue.retry_factor);
	fprintf(fp, "queue.retry_cap = %llds\n", (long long)c->queue.retry_cap);
	fprintf(fp, "queue.retry_jitter = %g\n", c->queue.retry_jitter);
	fprintf(fp, "queue.lifetime = %llds\n", (long long)c->queue.lifetime);
	fprintf(fp, "queue.concurrency = %d\n", c->queue.concurrency);
	fprintf(fp, "queue.destination_concurrency = %d\n",
	    c->queue.destination_concurrency);
	fprintf(fp, "queue.destination_rate = %d\n", c->queue.destination_rate);
	fprintf(fp, "queue.delay_warning = %llds\n",
	    (long long)c->queue.delay_warning);
	fprintf(fp, "queue.retention = %llds\n", (long long)c->queue.retention);
	fprintf(fp, "queue.group_commit = %s\n",
	    c->queue.group_commit ? "yes" : "no");
}

/* conf_dump_local - file, pipe and http options (the secret only as set
 * or not) */
static void
conf_dump_local(const struct conf_transport *t, FILE *fp)
{
	size_t i;

	if (t->type == TRANSPORT_FILE)
		fprintf(fp, "transport.%s.template = %s\n", t->name, t->name_template);
	if (t->type == TRANSPORT_PIPE) {
		fprintf(fp, "transport.%s.command =", t->name);
		for (i = 0; i < t->argc; i++)
			fprintf(fp, " %s", t->argv[i]);
		fprintf(fp, "\n");
	}
	if (t->type == TRANSPORT_HTTP)
		fprintf(fp, "transport.%s.url = %s\ntransport.%s.secret = %s\n", t->name,
		    t->url, t->name, t->secret[0] != '\0' ? "(set)" : "(none)");
}

/* conf_dump_sections - listen, transport and dkim sections */
static void
conf_dump_sections(const struct conf *c, FILE *fp)
{
	size_t i;

	for (i = 0; i < c->nlisten; i++) {
		const struct conf_listen *l = &c->listen[i];

		fprintf(fp, "listen.%s.address = %s\n", l->name, l->address);
		fprintf(fp, "listen.%s.mode = %s\n", l->name,
		    smtpd_words[0].words[l->mode & 1]);
		fprintf(fp, "listen.%s.auth = %s\n", l->name,
		    smtpd_words[1].words[l->auth >= 0 && l->auth <= 2 ? l->auth : 0]);
		fprintf(fp, "listen.%s.require_tls = %s\n", l->name, l->require_tls ?
		    "yes" : "no");
		fprintf(fp, "listen.%s.tls_cert = %s\n", l->name, l->tls_cert);
	}
	for (i = 0; i < c->nusers; i++)
		fprintf(fp, "smtp_user.%s.sender_domains = %zu\n", c->users[i].name,
		    c->users[i].ndomains);
	for (i = 0; i < c->ntransport; i++) {
		const struct conf_transport *t = &c->transport[i];

		fprintf(fp, "transport.%s.type = %s\n", t->name,
		    conf_transport_type_name(t->type));
		if (t->path != NULL)
			fprintf(fp, "transport.%s.path = %s\n", t->name, t->path);
		if (t->host != NULL)
			fprintf(fp, "transport.%s.host = %s\n", t->name, t->host);
		if (t->type != TRANSPORT_MAILDIR)
			fprintf(fp, "transport.%s.timeout = %llds\n", t->name,
			    (long long)t->timeout);
		conf_dump_local(t, fp);
	}
	for (i = 0; i < c->nroute; i++)
		fprintf(fp, "route.%s = %s%s%s -> %s\n", c->route[i].name,
		    c->route[i].recipient, c->route[i].sender[0] != '\0' ? " from " : "",
		    c->route[i].sender, c->route[i].transport->name);
	for (i = 0; i < c->ndkim; i++) {
		const struct conf_dkim *d = &c->dkim[i];

		fprintf(fp, "dkim.%s.selector = %s\n", d->domain, d->selector);
		fprintf(fp, "dkim.%s.key = %s\n", d->domain, d->key);
		fprintf(fp, "dkim.%s.generate = %s\n", d->domain,
		    d->generate ? "true" : "false");
	}
}

/* conf_dump_smtp - the SMTP transport options, DNS and tls_policy
 * (passwords are shown only as set or not) */
static void
conf_dump_smtp(const struct conf *c, FILE *fp)
{
	size_t i;

	for (i = 0; i < c->ntransport; i++) {
		const struct conf_transport *t = &c->transport[i];

		if (t->type != TRANSPORT_RELAY && t->type != TRANSPORT_MX)
			continue;
		fprintf(fp, "transport.%s.port = %d\n", t->name, t->port);
		fprintf(fp, "transport.%s.tls = %s\n", t->name, tls_levels[t->tls & 3]);
		fprintf(fp, "transport.%s.tls_implicit = %s\n", t->name,
		    t->tls_implicit ? "true" : "false");
		fprintf(fp, "transport.%s.ca_file = %s\n", t->name, t->ca_file);
		fprintf(fp, "transport.%s.auth_user = %s\n", t->name, t->auth_user);
		fprintf(fp, "transport.%s.auth_password = %s\n", t->name,
		    t->auth_password[0] != '\0' ? "(set)" : "");
		fprintf(fp, "transport.%s.reuse_max = %d\n", t->name, t->reuse_max);
		fprintf(fp, "transport.%s.reuse_idle = %llds\n", t->name,
		    (long long)t->reuse_idle);
	}
	fprintf(fp, "dns_server = %s\n", c->dns_server);
	fprintf(fp, "dns_timeout = %llds\n", (long long)c->dns_timeout);
	for (i = 0; i < c->ntls_policy; i++)
		fprintf(fp, "tls_policy.%s.level = %s\ntls_policy.%s.ca_file = %s\n",
		    c->tls_policy[i].domain, tls_levels[c->tls_policy[i].level & 3],
		    c->tls_policy[i].domain, c->tls_policy[i].ca_file);
}

/* conf_dump_strs - "name = a, b" for a string list */
static void
conf_dump_strs(FILE *fp, const char *name, char *const *v, size_t n)
{
	size_t i;

	fprintf(fp, "%s =", name);
	for (i = 0; i < n; i++)
		fprintf(fp, "%s %s", i > 0 ? "," : "", v[i]);
	fprintf(fp, "\n");
}

/* conf_dump_http - the http section (secrets only as set or not) */
static void
conf_dump_http(const struct conf_http *h, FILE *fp)
{
	fprintf(fp, "http.send_api = %s\nhttp.compat_paths = %s\n",
	    h->send_api ? "yes" : "no", h->compat_paths ? "yes" : "no");
	conf_dump_strs(fp, "http.allow_list", h->allow_list, h->nallow_list);
	fprintf(fp, "http.sender = %s\nhttp.rate_limit = %llds\n"
	    "http.max_body = %zu\nhttp.client_ip_header = %s\n", h->sender,
	    (long long)h->rate_limit, h->max_body, h->client_ip_header);
	fprintf(fp, "http.trusted_proxies = %zu network(s)\n", h->trusted_proxies.n);
	fprintf(fp, "http.require_nonce = %s\nhttp.nonce_secret = %s\n"
	    "http.nonce_max_age = %llds\n", h->require_nonce ? "yes" : "no",
	    *h->nonce_secret != '\0' ? "(set)" : "(none)",
	    (long long)h->nonce_max_age);
	conf_dump_strs(fp, "http.cors_origins", h->cors_origins, h->ncors_origins);
	fprintf(fp, "http.ready_min_free = %zu\nhttp.admin_token = %s\n",
	    h->ready_min_free, *h->admin_token != '\0' ? "(set)" : "(none)");
}

/* conf_dump - every effective value as "name = value" lines */
void
conf_dump(const struct conf *c, FILE *fp)
{
	conf_dump_scalars(c, fp);
	conf_dump_lists(c, fp);
	conf_dump_sections(c, fp);
	conf_dump_smtp(c, fp);
	conf_dump_http(&c->http, fp);
}
