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
	{ "smtpd_processes", 1, 16, "a number from 1 to 16" },
	{ "delivery_processes", 1, 16, "a number from 1 to 16" },
	{ "max_recipients", 1, 100000, "a number from 1 to 100000" },
	{ "concurrency", 1, 10000, "a number from 1 to 10000" },
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

/* cb_domain - one relay domain, stored lower-case */
static int
cb_domain(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	note_line(cfg);
	if (!domain_valid(value, 0))
		return bad_value(cfg, opt, "a domain name without a trailing dot", value);
	str_result(value, result);
	str_lower(ctx.strbuf);
	return 0;
}

/* cb_transport_type - maildir or relay */
static int
cb_transport_type(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	note_line(cfg);
	if (strcmp(value, "maildir") != 0 && strcmp(value, "relay") != 0)
		return bad_value(cfg, opt, "maildir or relay", value);
	return str_result(value, result);
}

/* cb_default_transport - any name now, checked once transports are known */
static int
cb_default_transport(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	ctx.default_transport_line = cfg->line;
	return cb_string(cfg, opt, value, result);
}

static cfg_opt_t listen_opts[] = {
	CFG_STR_CB("address", NULL, CFGF_NONE, cb_hostport),
	CFG_END()
};

static cfg_opt_t queue_opts[] = {
	CFG_INT_CB("retry_base", 300, CFGF_NONE, cb_duration),
	CFG_FLOAT_CB("retry_factor", 2.0, CFGF_NONE, cb_float),
	CFG_INT_CB("retry_cap", 4 * 3600, CFGF_NONE, cb_duration),
	CFG_FLOAT_CB("retry_jitter", 0.2, CFGF_NONE, cb_float),
	CFG_INT_CB("lifetime", 5 * 86400, CFGF_NONE, cb_duration),
	CFG_INT_CB("concurrency", 20, CFGF_NONE, cb_int_range),
	CFG_END()
};

static cfg_opt_t transport_opts[] = {
	CFG_STR_CB("type", NULL, CFGF_NONE, cb_transport_type),
	CFG_STR_CB("path", NULL, CFGF_NONE, cb_string),
	CFG_STR_CB("host", NULL, CFGF_NONE, cb_hostport),
	CFG_INT_CB("timeout", 300, CFGF_NONE, cb_duration),
	CFG_END()
};

static cfg_opt_t dkim_opts[] = {
	CFG_STR_CB("selector", NULL, CFGF_NONE, cb_string),
	CFG_STR_CB("key", NULL, CFGF_NONE, cb_string),
	CFG_BOOL_CB("generate", cfg_false, CFGF_NONE, cb_bool),
	CFG_END()
};

#define SEC_FLAGS (CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES)

static cfg_opt_t root_opts[] = {
	CFG_STR_CB("hostname", NULL, CFGF_NONE, cb_string),
	CFG_STR_CB("user", "postern", CFGF_NONE, cb_string),
	CFG_STR_CB("spool_dir", "/var/spool/postern", CFGF_NONE, cb_string),
	CFG_STR_CB("run_dir", "/run/postern", CFGF_NONE, cb_string),
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
	CFG_SEC("queue", queue_opts, CFGF_NONE),
	CFG_SEC("transport", transport_opts, SEC_FLAGS),
	CFG_STR_CB("default_transport", BUILTIN_TRANSPORT, CFGF_NONE,
	    cb_default_transport),
	CFG_SEC("dkim", dkim_opts, SEC_FLAGS),
	CFG_STR_CB("http_listen", "127.0.0.1:8025", CFGF_NONE, cb_http_listen),
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

/* v_transport - type, and path (maildir) or host (relay) */
static int
v_transport(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = last_section(opt);
	const char *type = cfg_getstr(sec, "type");
	int line = section_line(cfg);
	char what[320];

	if (type == NULL)
		return missing(cfg, line, "type", "maildir or relay");
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
	return 0;
}

/* v_dkim - a signing domain needs a valid title, a selector and a key */
static int
v_dkim(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = last_section(opt);
	int line = section_line(cfg);
	char what[320];

	if (!domain_valid(cfg_title(sec), 0)) {
		conf_errorf(ctx.path, line, "option 'dkim': expected a domain name "
		    "as the section title, got '%s'", cfg_title(sec));
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

/* v_queue - only resets the section line tracking */
static int
v_queue(cfg_t *cfg, cfg_opt_t *opt)
{
	(void)section_line(cfg);
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
		t->type = strcmp(cfg_getstr(s, "type"), "relay") == 0 ?
		    TRANSPORT_RELAY : TRANSPORT_MAILDIR;
		if (cfg_getstr(s, "path") != NULL)
			t->path = abs_path(cwd, cfg_getstr(s, "path"));
		if (cfg_getstr(s, "host") != NULL)
			t->host = xstrdup(cfg_getstr(s, "host"));
		t->timeout = (time_t)cfg_getint(s, "timeout");
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
		c->dkim[i].domain = str_lower(xstrdup(cfg_title(s)));
		c->dkim[i].selector = xstrdup(cfg_getstr(s, "selector"));
		c->dkim[i].key = abs_path(cwd, cfg_getstr(s, "key"));
		c->dkim[i].generate = cfg_getbool(s, "generate") == cfg_true;
	}
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
	cfg_set_validate_func(cfg, "transport", v_transport);
	cfg_set_validate_func(cfg, "dkim", v_dkim);
	cfg_set_validate_func(cfg, "queue", v_queue);
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
		conf_fill_sections(c, cfg, cwdp);
		if (conf_resolve_default(c, cfg) == -1)
			conf_free(&c);
	}
	cfg_free(cfg);
	memset(&ctx, 0, sizeof(ctx));
	return c;
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
	free(c->libexec_dir);
	free(c->http_listen);
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
	fprintf(fp, "libexec_dir = %s\n", c->libexec_dir);
	fprintf(fp, "log_level = %s\n", levels[c->log_level & 3]);
	fprintf(fp, "smtpd_processes = %d\n", c->smtpd_processes);
	fprintf(fp, "delivery_processes = %d\n", c->delivery_processes);
	fprintf(fp, "shutdown_timeout = %llds\n", (long long)c->shutdown_timeout);
	fprintf(fp, "max_message_size = %zu\n", c->max_message_size);
	fprintf(fp, "max_recipients = %d\n", c->max_recipients);
	fprintf(fp, "smtpd_timeout = %llds\n", (long long)c->smtpd_timeout);
	fprintf(fp, "default_transport = %s\n", c->default_transport->name);
	fprintf(fp, "http_listen = %s\n", c->http_listen);
}

/* conf_dump_lists - trusted_networks, relay_domains and the queue */
static void
conf_dump_lists(const struct conf *c, FILE *fp)
{
	char buf[64];
	size_t i;

	fprintf(fp, "trusted_networks =");
	for (i = 0; i < c->trusted_networks.n; i++) {
		const struct cidr *n = &c->trusted_networks.net[i];
		int v4 = n->prefix >= 96 && memcmp(n->addr,
		    "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;

		inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? n->addr + 12 : n->addr, buf,
		    sizeof(buf));
		fprintf(fp, " %s/%d", buf, v4 ? n->prefix - 96 : n->prefix);
	}
	fprintf(fp, "\nrelay_domains =");
	for (i = 0; i < c->nrelay_domains; i++)
		fprintf(fp, " %s", c->relay_domains[i]);
	fprintf(fp, "\nqueue.retry_base = %llds\n", (long long)c->queue.retry_base);
	fprintf(fp, "queue.retry_factor = %g\n", c->queue.retry_factor);
	fprintf(fp, "queue.retry_cap = %llds\n", (long long)c->queue.retry_cap);
	fprintf(fp, "queue.retry_jitter = %g\n", c->queue.retry_jitter);
	fprintf(fp, "queue.lifetime = %llds\n", (long long)c->queue.lifetime);
	fprintf(fp, "queue.concurrency = %d\n", c->queue.concurrency);
}

/* conf_dump_sections - listen, transport and dkim sections */
static void
conf_dump_sections(const struct conf *c, FILE *fp)
{
	size_t i;

	for (i = 0; i < c->nlisten; i++)
		fprintf(fp, "listen.%s.address = %s\n", c->listen[i].name,
		    c->listen[i].address);
	for (i = 0; i < c->ntransport; i++) {
		const struct conf_transport *t = &c->transport[i];

		fprintf(fp, "transport.%s.type = %s\n", t->name,
		    t->type == TRANSPORT_RELAY ? "relay" : "maildir");
		if (t->type == TRANSPORT_MAILDIR)
			fprintf(fp, "transport.%s.path = %s\n", t->name, t->path);
		else
			fprintf(fp, "transport.%s.host = %s\ntransport.%s.timeout = %llds\n",
			    t->name, t->host, t->name, (long long)t->timeout);
	}
	for (i = 0; i < c->ndkim; i++) {
		const struct conf_dkim *d = &c->dkim[i];

		fprintf(fp, "dkim.%s.selector = %s\n", d->domain, d->selector);
		fprintf(fp, "dkim.%s.key = %s\n", d->domain, d->key);
		fprintf(fp, "dkim.%s.generate = %s\n", d->domain,
		    d->generate ? "true" : "false");
	}
}

/* conf_dump - every effective value as "name = value" lines */
void
conf_dump(const struct conf *c, FILE *fp)
{
	conf_dump_scalars(c, fp);
	conf_dump_lists(c, fp);
	conf_dump_sections(c, fp);
}
