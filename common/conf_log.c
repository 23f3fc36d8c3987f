/*
 * conf_log.c - the configuration of logging beyond log_level: log_file
 * (the master writes every process's lines there instead of syslog or
 * stderr), its size limit and numbered rotation, and the line format.
 *
 * Owns: the log schema, its values in struct conf, their dump.
 * SECURITY: log_file is opened by the master (root) without following a
 * symbolic link (common/logfile.c); nothing here is a secret.
 * STANDARDS: none.
 */
#include "config.h"

#include <confuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_int.h"
#include "log.h"
#include "util.h"

/* cb_log_format - text or json */
static int
cb_log_format(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	conf_note_line(cfg);
	if (log_format_parse(value) == -1)
		return conf_bad_value(cfg, opt, "text or json", value);
	return conf_str_result(cfg, opt, value, result);
}

/* cb_log_file - "" (off) or a path that is not a directory */
static int
cb_log_file(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	size_t n = strlen(value);

	conf_note_line(cfg);
	if (n > 0 && value[n - 1] == '/')
		return conf_bad_value(cfg, opt, "a file path or \"\" (off)", value);
	return conf_cb_string(cfg, opt, value, result);
}

/* The logging options (log_level is a core option, conf.c). */
cfg_opt_t conf_log_top[] = {
	CFG_STR_CB("log_file", "", CFGF_NONE, cb_log_file),
	CFG_INT_CB("log_file_size_limit", 0, CFGF_NONE, conf_cb_size),
	CFG_INT_CB("log_file_keep", 5, CFGF_NONE, conf_cb_int_range),
	CFG_STR_CB("log_format", "text", CFGF_NONE, cb_log_format),
	CFG_END()
};

/* conf_log_fill - the logging options, log_file made absolute */
void
conf_log_fill(struct conf *c, cfg_t *cfg, const char *cwd)
{
	const char *f = cfg_getstr(cfg, "log_file");

	c->log_file = *f != '\0' ? conf_abs_path(cwd, f) : xstrdup("");
	c->log_file_size_limit = (size_t)cfg_getint(cfg, "log_file_size_limit");
	c->log_file_keep = (int)cfg_getint(cfg, "log_file_keep");
	c->log_format = log_format_parse(cfg_getstr(cfg, "log_format"));
}

/* conf_log_free - what conf_log_fill allocated */
void
conf_log_free(struct conf *c)
{
	free(c->log_file);
}

/* conf_log_dump - the logging options */
void
conf_log_dump(const struct conf *c, FILE *fp)
{
	fprintf(fp, "log_file = %s\n", c->log_file);
	fprintf(fp, "log_file_size_limit = %zu\n", c->log_file_size_limit);
	fprintf(fp, "log_file_keep = %d\n", c->log_file_keep);
	fprintf(fp, "log_format = %s\n",
	    c->log_format == LOG_FORMAT_JSON ? "json" : "text");
}
