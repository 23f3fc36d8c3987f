/*
 * conf_int.h - what the files of the configuration (conf.c and the area
 * files conf_*.c) share with one another and with nothing else: the state
 * of one conf_load(), the error helpers, the value callbacks, and each
 * area's option table, section checks and fill/free/dump functions.
 * Programs include conf.h only.
 */
#ifndef POSTERN_CONF_INT_H
#define POSTERN_CONF_INT_H

#include <confuse.h>
#include <stdio.h>

#include "conf.h"
#include "log.h"
#include "util.h"

/* Sections that may appear many times, each with a unique title. */
#define CONF_SEC_FLAGS (CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES)

/* The state of one conf_load(); libconfuse callbacks have no user
 * pointer, and loading is single-threaded. */
struct conf_ctx {
	const char *path;               /* the file being read */
	char *err;                      /* caller's buffer */
	size_t errlen;
	int failed;                     /* first error kept */
	int sec_first_line;             /* first option line in a section */
	int default_transport_line;
	char strbuf[512];               /* normalised string results */
};
extern struct conf_ctx conf_ctx;

/* --- errors (conf_value.c): the first one is kept --------------------- */

/* conf_errorf - "FILE:LINE: message" (or "FILE: message" when line is 0) */
void conf_errorf(const char *file, int line, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
/* conf_bad_value - "option 'NAME': expected WHAT, got 'VALUE'"; -1 */
int conf_bad_value(cfg_t *cfg, cfg_opt_t *opt, const char *what,
    const char *value);
/* conf_missing - a required option of a section is absent; -1 */
int conf_missing(cfg_t *cfg, int line, const char *name, const char *what);
/* conf_note_line - remember where the current section's options start */
void conf_note_line(cfg_t *cfg);
/* conf_section_line - the line to name for the section just parsed */
int conf_section_line(cfg_t *cfg);
/* conf_last_section - the section libconfuse just finished */
cfg_t *conf_last_section(cfg_opt_t *opt);

/* --- the file as text (conf_text.c) ---------------------------------- */

/* conf_text_read - the file, comments blanked, strings checked, for
 * cfg_parse_buf(); NULL with the first error set */
char *conf_text_read(const char *path);

/* --- values (conf_value.c) -------------------------------------------- */

/* conf_has_control - does s hold a byte below 0x20 or DEL? */
int conf_has_control(const char *s);
/* conf_str_result - hand libconfuse a string result (it copies it), or
 * refuse one holding control bytes, naming opt; 0 or -1 */
int conf_str_result(cfg_t *cfg, cfg_opt_t *opt, const char *s, void *result);
/* conf_abs_path - p made absolute against cwd; malloc'd */
char *conf_abs_path(const char *cwd, const char *p);
/* conf_strv_free - free a NULL-ended string array of n entries */
void conf_strv_free(char **v, size_t n);
/* conf_strlist_copy - a NULL-ended copy of a string list option */
char **conf_strlist_copy(cfg_t *sec, const char *name, size_t *np);

/* The parse callbacks of the value syntaxes, by what they accept. */
int conf_cb_duration(cfg_t *, cfg_opt_t *, const char *, void *);
int conf_cb_window(cfg_t *, cfg_opt_t *, const char *, void *);
int conf_cb_size(cfg_t *, cfg_opt_t *, const char *, void *);
int conf_cb_int_range(cfg_t *, cfg_opt_t *, const char *, void *);
int conf_cb_float(cfg_t *, cfg_opt_t *, const char *, void *);
int conf_cb_bool(cfg_t *, cfg_opt_t *, const char *, void *);
int conf_cb_string(cfg_t *, cfg_opt_t *, const char *, void *);
int conf_cb_hostport(cfg_t *, cfg_opt_t *, const char *, void *);
int conf_cb_cidr(cfg_t *, cfg_opt_t *, const char *, void *);
int conf_cb_domain(cfg_t *, cfg_opt_t *, const char *, void *);
int conf_cb_header_name(cfg_t *, cfg_opt_t *, const char *, void *);
int conf_cb_header_name_or_empty(cfg_t *, cfg_opt_t *, const char *, void *);

/* --- TLS levels (conf_transport.c), shared with tls_policy ------------ */

/* conf_tls_levels - the names of enum conf_tls_level, in order */
extern const char *const conf_tls_levels[];
/* conf_tls_level_parse - a level name to enum conf_tls_level, or -1 */
int conf_tls_level_parse(const char *s);
/* conf_cb_tls_level - none, may, encrypt or verify */
int conf_cb_tls_level(cfg_t *, cfg_opt_t *, const char *, void *);

/* --- the areas: top-level options (CFG_END-ended), section checks ----- */

extern cfg_opt_t conf_smtpd_top[], conf_queue_top[], conf_transport_top[],
    conf_route_top[], conf_dkim_top[], conf_http_top[], conf_log_top[];

int conf_check_listen(cfg_t *cfg, cfg_opt_t *opt);
int conf_check_smtp_user(cfg_t *cfg, cfg_opt_t *opt);
int conf_check_queue(cfg_t *cfg, cfg_opt_t *opt);
int conf_check_transport(cfg_t *cfg, cfg_opt_t *opt);
int conf_check_route(cfg_t *cfg, cfg_opt_t *opt);
int conf_check_tls_policy(cfg_t *cfg, cfg_opt_t *opt);
int conf_check_dkim(cfg_t *cfg, cfg_opt_t *opt);
int conf_check_http(cfg_t *cfg, cfg_opt_t *opt);

/* --- the areas: values into struct conf, free, dump ------------------- */

int conf_smtpd_fill(struct conf *c, cfg_t *cfg, const char *cwd);
void conf_smtpd_free(struct conf *c);
void conf_smtpd_dump(const struct conf *c, FILE *fp);

void conf_queue_fill(struct conf *c, cfg_t *cfg);
void conf_queue_dump(const struct conf *c, FILE *fp);

void conf_transport_fill(struct conf *c, cfg_t *cfg, const char *cwd);
int conf_transport_resolve_default(struct conf *c, cfg_t *cfg);
void conf_transport_free(struct conf *c);
void conf_transport_dump(const struct conf *c, FILE *fp);

int conf_route_fill(struct conf *c, cfg_t *cfg);
void conf_tls_policy_fill(struct conf *c, cfg_t *cfg, const char *cwd);
void conf_route_free(struct conf *c);
void conf_route_dump(const struct conf *c, FILE *fp);

void conf_dkim_fill(struct conf *c, cfg_t *cfg, const char *cwd);
void conf_dkim_free(struct conf *c);
void conf_dkim_dump(const struct conf *c, FILE *fp);

void conf_log_fill(struct conf *c, cfg_t *cfg, const char *cwd);
void conf_log_free(struct conf *c);
void conf_log_dump(const struct conf *c, FILE *fp);

void conf_http_fill(struct conf *c, cfg_t *cfg);
void conf_http_free(struct conf *c);
void conf_http_dump(const struct conf *c, FILE *fp);

#endif
