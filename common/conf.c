/*
 * conf.c - the one typed configuration of Postern: assembles the
 * libconfuse schema of postern.conf from its areas, reads the file, fills
 * struct conf area by area and runs the checks that span areas.
 *
 * The areas, each with its options, validators, values and dump:
 *   conf_text.c       the file as text: size, NUL bytes, comments, quotes
 *   conf_value.c      value syntaxes and the one error format
 *   conf_smtpd.c      listeners, relay policy, per-client limits, users
 *   conf_queue.c      the queue section
 *   conf_transport.c  transports, default_transport, TLS levels
 *   conf_route.c      routes, DNS, tls_policy sections
 *   conf_dkim.c       DKIM signing
 *   conf_http.c       postern-httpd
 *   conf_log.c        log_file, its rotation, log_format
 * Adding an option: its line in the area's table, its value in the area's
 * fill/free/dump, and conf/postern.conf and man/postern.conf.5 (t/95).
 *
 * Owns: the process and file-system options, reading the file, the
 * order in which areas are filled.
 * SECURITY: reads a file owned by the operator, in the master and in every
 * child before privileges are dropped; never follows include directives
 * (the schema has no include function) and never logs anything but
 * option names and values (secrets only as "(set)"; key material lives
 * in separate files named here).
 * STANDARDS: none beyond the areas'.
 */
#include "config.h"

#include <confuse.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "conf_int.h"
#include "log.h"
#include "util.h"

#ifndef LIBEXECDIR
#define LIBEXECDIR "/usr/local/libexec"
#endif

/* line_keyword - the first word of line n of the file being read */
static void
line_keyword(int n, char *buf, size_t len)
{
	char line[512];
	FILE *fp = fopen(conf_ctx.path, "re");

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
		conf_errorf(conf_ctx.path, line, "option '%s': duplicate title %s", word,
		    msg + 22);
		return;
	}
	conf_errorf(conf_ctx.path, line, "%s", msg);
}

/* cb_log_level - error, warning, info or debug */
static int
cb_log_level(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	conf_note_line(cfg);
	if (log_level_parse(value) == -1)
		return conf_bad_value(cfg, opt, "error, warning, info or debug", value);
	return conf_str_result(cfg, opt, value, result);
}

/* cb_control_socket - a Unix socket path that fits sun_path, or "" */
static int
cb_control_socket(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	conf_note_line(cfg);
	if (strlen(value) >= 100)
		return conf_bad_value(cfg, opt, "a socket path shorter than 100 bytes",
		    value);
	return conf_str_result(cfg, opt, value, result);
}

/* The process and file-system options every process reads. */
static cfg_opt_t core_top[] = {
	CFG_STR_CB("hostname", NULL, CFGF_NONE, conf_cb_string),
	CFG_STR_CB("user", "postern", CFGF_NONE, conf_cb_string),
	CFG_STR_CB("spool_dir", "/var/spool/postern", CFGF_NONE, conf_cb_string),
	CFG_STR_CB("run_dir", "/run/postern", CFGF_NONE, conf_cb_string),
	CFG_STR_CB("control_socket", "", CFGF_NONE, cb_control_socket),
	CFG_STR_CB("libexec_dir", LIBEXECDIR, CFGF_NONE, conf_cb_string),
	CFG_STR_CB("log_level", "info", CFGF_NONE, cb_log_level),
	CFG_INT_CB("smtpd_processes", 2, CFGF_NONE, conf_cb_int_range),
	CFG_INT_CB("delivery_processes", 2, CFGF_NONE, conf_cb_int_range),
	CFG_INT_CB("shutdown_timeout", 30, CFGF_NONE, conf_cb_duration),
	CFG_END()
};

/* The areas of the schema, each in its own file, in the order their
 * options are assembled into the top level. */
static cfg_opt_t *const schema_parts[] = {
	core_top, conf_smtpd_top, conf_queue_top, conf_transport_top,
	conf_route_top, conf_dkim_top, conf_http_top, conf_log_top,
};

/* The check run when a section of each kind has been parsed. */
static const struct {
	const char *section;
	cfg_validate_callback_t check;
} section_checks[] = {
	{ "listen", conf_check_listen }, { "smtp_user", conf_check_smtp_user },
	{ "queue", conf_check_queue }, { "transport", conf_check_transport },
	{ "route", conf_check_route }, { "tls_policy", conf_check_tls_policy },
	{ "dkim", conf_check_dkim }, { "http", conf_check_http },
};

/* schema_options - the top-level option table: every area's options
 * in one CFG_END-ended array, built once */
static cfg_opt_t *
schema_options(void)
{
	static cfg_opt_t *opts;
	size_t i, k, n = 0;

	if (opts != NULL)
		return opts;
	for (i = 0; i < sizeof(schema_parts) / sizeof(schema_parts[0]); i++)
		for (k = 0; schema_parts[i][k].name != NULL; k++)
			n++;
	opts = xcalloc(n + 1, sizeof(*opts));        /* zeroed: CFG_END() */
	for (i = 0, n = 0; i < sizeof(schema_parts) / sizeof(schema_parts[0]); i++)
		for (k = 0; schema_parts[i][k].name != NULL; k++)
			opts[n++] = schema_parts[i][k];
	return opts;
}

/* conf_schema - a libconfuse context with our validators and errors */
static cfg_t *
conf_schema(void)
{
	cfg_t *cfg = cfg_init(schema_options(), CFGF_NONE);
	size_t i;

	if (cfg == NULL)
		fatal("cfg_init");
	cfg_set_error_function(cfg, conf_errfunc);
	for (i = 0; i < sizeof(section_checks) / sizeof(section_checks[0]); i++)
		cfg_set_validate_func(cfg, section_checks[i].section,
		    section_checks[i].check);
	return cfg;
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

/* conf_fill_core - the process and file-system options */
static void
conf_fill_core(struct conf *c, cfg_t *cfg, const char *cwd)
{
	c->hostname = conf_hostname(cfg_getstr(cfg, "hostname"));
	c->user = xstrdup(cfg_getstr(cfg, "user"));
	c->spool_dir = conf_abs_path(cwd, cfg_getstr(cfg, "spool_dir"));
	c->run_dir = conf_abs_path(cwd, cfg_getstr(cfg, "run_dir"));
	c->control_socket = *cfg_getstr(cfg, "control_socket") != '\0' ?
	    conf_abs_path(cwd, cfg_getstr(cfg, "control_socket")) :
	    xasprintf("%s/control.sock", c->run_dir);
	c->libexec_dir = conf_abs_path(cwd, cfg_getstr(cfg, "libexec_dir"));
	c->log_level = log_level_parse(cfg_getstr(cfg, "log_level"));
	c->smtpd_processes = (int)cfg_getint(cfg, "smtpd_processes");
	c->delivery_processes = (int)cfg_getint(cfg, "delivery_processes");
	c->shutdown_timeout = (time_t)cfg_getint(cfg, "shutdown_timeout");
}

/* conf_fill - every area in turn, then the checks across areas: routes
 * and default_transport name transport sections, listeners that need TLS
 * have a certificate; 0, or -1 with the first error set */
static int
conf_fill(struct conf *c, cfg_t *cfg, const char *cwd)
{
	conf_fill_core(c, cfg, cwd);
	conf_log_fill(c, cfg, cwd);
	conf_queue_fill(c, cfg);
	conf_http_fill(c, cfg);
	conf_transport_fill(c, cfg, cwd);
	conf_tls_policy_fill(c, cfg, cwd);
	conf_dkim_fill(c, cfg, cwd);
	if (conf_route_fill(c, cfg) == -1 ||
	    conf_transport_resolve_default(c, cfg) == -1)
		return -1;
	return conf_smtpd_fill(c, cfg, cwd);
}

/* check_titles - no section title, at any depth, holds a control byte:
 * titles name listeners, transports, routes and keys in logs and
 * replies; 0, or -1 with the error set */
static int
check_titles(cfg_t *cfg)
{
	unsigned int i, j;
	cfg_opt_t *opt;
	cfg_t *sec;

	for (i = 0; i < cfg_num(cfg); i++) {
		opt = cfg_getnopt(cfg, i);
		if (opt == NULL || opt->type != CFGT_SEC)
			continue;
		for (j = 0; j < cfg_opt_size(opt); j++) {
			sec = cfg_opt_getnsec(opt, j);
			if (cfg_title(sec) != NULL && conf_has_control(cfg_title(sec))) {
				conf_errorf(conf_ctx.path, sec->line, "option '%s': "
				    "expected a title without control characters, "
				    "got '%s'", opt->name, cfg_title(sec));
				return -1;
			}
			if (check_titles(sec) == -1)
				return -1;
		}
	}
	return 0;
}

/* conf_load - parse path into a new struct conf, or NULL with err */
struct conf *
conf_load(const char *path, char *err, size_t errlen)
{
	struct conf *c = NULL;
	char cwd[PATH_MAX], *cwdp, *text;
	cfg_t *cfg;
	int r;

	memset(&conf_ctx, 0, sizeof(conf_ctx));
	conf_ctx.path = path;
	conf_ctx.err = err;
	conf_ctx.errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
	cfg = conf_schema();
	if ((text = conf_text_read(path)) == NULL) {
		r = CFG_FILE_ERROR;
	} else {
		r = cfg_parse_buf(cfg, text);
		free(text);
	}
	if (r != CFG_SUCCESS && r != CFG_FILE_ERROR && !conf_ctx.failed)
		conf_errorf(path, 0, "syntax error");
	if (r == CFG_SUCCESS && check_titles(cfg) == -1)
		r = CFG_PARSE_ERROR;
	if (r == CFG_SUCCESS) {
		cwdp = getcwd(cwd, sizeof(cwd));
		c = xcalloc(1, sizeof(*c));
		c->path = xstrdup(path);
		if (conf_fill(c, cfg, cwdp) == -1)
			conf_free(&c);
	}
	cfg_free(cfg);
	memset(&conf_ctx, 0, sizeof(conf_ctx));
	return c;
}

/* conf_free - release a configuration; *cp = NULL */
void
conf_free(struct conf **cp)
{
	struct conf *c = *cp;

	if (c == NULL)
		return;
	conf_smtpd_free(c);
	conf_transport_free(c);
	conf_route_free(c);
	conf_dkim_free(c);
	conf_http_free(c);
	conf_log_free(c);
	free(c->path);
	free(c->hostname);
	free(c->user);
	free(c->spool_dir);
	free(c->run_dir);
	free(c->control_socket);
	free(c->libexec_dir);
	free(c);
	*cp = NULL;
}

/* conf_dump_core - the process and file-system options */
static void
conf_dump_core(const struct conf *c, FILE *fp)
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
}

/* conf_dump - every effective value as "name = value" lines, area by
 * area (secrets only as "(set)") */
void
conf_dump(const struct conf *c, FILE *fp)
{
	conf_dump_core(c, fp);
	conf_log_dump(c, fp);
	conf_smtpd_dump(c, fp);
	conf_queue_dump(c, fp);
	conf_transport_dump(c, fp);
	conf_route_dump(c, fp);
	conf_dkim_dump(c, fp);
	conf_http_dump(c, fp);
}
