/*
 * conf_transport.c - the transport sections of postern.conf (maildir,
 * relay, mx, file, pipe, http), default_transport, and the TLS levels an
 * SMTP transport or a tls_policy names (postern-delivery(8)).
 *
 * Owns: the transport schema and its checks, the transport type and TLS
 * level names, struct conf_transport's values and their dump.
 * SECURITY: auth_password_file is read here, before privileges are
 * dropped; passwords and HMAC secrets are never printed (only "(set)")
 * and are wiped on free.
 * STANDARDS: RFC 3207 (the TLS levels), RFC 4954 (relay AUTH).
 */
#include "config.h"

#include <confuse.h>
#include <errno.h>
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

#define BUILTIN_TRANSPORT "local"
#define BUILTIN_MAILDIR "/var/mail/postern"

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
	conf_note_line(cfg);
	if (transport_type_parse(value) == 0)
		return conf_bad_value(cfg, opt, TRANSPORT_TYPE_NAMES, value);
	return conf_str_result(cfg, opt, value, result);
}

/* cb_default_transport - any name now, checked once transports are known */
static int
cb_default_transport(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	conf_ctx.default_transport_line = cfg->line;
	return conf_cb_string(cfg, opt, value, result);
}

/* conf_tls_levels - the names of enum conf_tls_level, in order */
const char *const conf_tls_levels[] = { "none", "may", "encrypt", "verify" };

/* conf_tls_level_parse - a level name to enum conf_tls_level, or -1 */
int
conf_tls_level_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(conf_tls_levels) / sizeof(conf_tls_levels[0]); i++)
		if (strcmp(s, conf_tls_levels[i]) == 0)
			return (int)i;
	return -1;
}

/* conf_cb_tls_level - none, may, encrypt or verify */
int
conf_cb_tls_level(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	conf_note_line(cfg);
	if (conf_tls_level_parse(value) == -1)
		return conf_bad_value(cfg, opt, "none, may, encrypt or verify", value);
	return conf_str_result(cfg, opt, value, result);
}

static cfg_opt_t transport_opts[] = {
	CFG_STR_CB("type", NULL, CFGF_NONE, cb_transport_type),
	CFG_STR_CB("path", NULL, CFGF_NONE, conf_cb_string),
	CFG_STR_CB("host", NULL, CFGF_NONE, conf_cb_hostport),
	CFG_INT_CB("timeout", 300, CFGF_NONE, conf_cb_duration),
	CFG_INT_CB("port", 25, CFGF_NONE, conf_cb_int_range),
	CFG_STR_CB("tls", "may", CFGF_NONE, conf_cb_tls_level),
	CFG_BOOL_CB("tls_implicit", cfg_false, CFGF_NONE, conf_cb_bool),
	CFG_STR_CB("ca_file", "", CFGF_NONE, conf_cb_string),
	CFG_STR_CB("auth_user", "", CFGF_NONE, conf_cb_string),
	CFG_STR_CB("auth_password", "", CFGF_NONE, conf_cb_string),
	CFG_STR_CB("auth_password_file", "", CFGF_NONE, conf_cb_string),
	CFG_INT_CB("reuse_max", 100, CFGF_NONE, conf_cb_int_range),
	CFG_INT_CB("reuse_idle", 10, CFGF_NONE, conf_cb_duration),
	CFG_STR_CB("template", "%Y%m%d-%i.eml", CFGF_NONE, conf_cb_string),
	CFG_STR_LIST_CB("command", "{}", CFGF_NONE, conf_cb_string),
	CFG_STR_CB("url", "", CFGF_NONE, conf_cb_string),
	CFG_STR_CB("secret", "", CFGF_NONE, conf_cb_string),
	CFG_END()
};

/* The transports and the default one. */
cfg_opt_t conf_transport_top[] = {
	CFG_SEC("transport", transport_opts, CONF_SEC_FLAGS),
	CFG_STR_CB("default_transport", BUILTIN_TRANSPORT, CFGF_NONE,
	    cb_default_transport),
	CFG_END()
};

/* v_transport_local - file needs a directory, pipe a command, http a URL */
static int
v_transport_local(cfg_t *cfg, cfg_t *sec, const char *type, int line)
{
	const char *url = cfg_getstr(sec, "url");
	char what[320];

	if (strcmp(type, "file") == 0 && cfg_getstr(sec, "path") == NULL) {
		snprintf(what, sizeof(what), "a directory for file transport '%s'",
		    cfg_title(sec));
		return conf_missing(cfg, line, "path", what);
	}
	if (strcmp(type, "file") == 0 && (*cfg_getstr(sec, "template") == '\0' ||
	    strchr(cfg_getstr(sec, "template"), '/') != NULL)) {
		conf_errorf(conf_ctx.path, line, "option 'template': expected a file name "
		    "template without '/', got '%s'", cfg_getstr(sec, "template"));
		return -1;
	}
	if (strcmp(type, "pipe") == 0 && (cfg_size(sec, "command") == 0 ||
	    cfg_getnstr(sec, "command", 0)[0] != '/')) {
		snprintf(what, sizeof(what), "a list such as {\"/usr/bin/cmd\", \"arg\"} "
		    "starting with an absolute path for pipe transport '%s'", cfg_title(sec));
		return conf_missing(cfg, line, "command", what);
	}
	if (strcmp(type, "http") == 0 && strncmp(url, "http://", 7) != 0 &&
	    strncmp(url, "https://", 8) != 0) {
		conf_errorf(conf_ctx.path, line, "option 'url': expected an http:// or https:// "
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
		conf_errorf(conf_ctx.path, line, "option 'auth_password_file': expected either "
		    "auth_password or auth_password_file in transport '%s', not both",
		    cfg_title(sec));
		return -1;
	}
	if (*file != '\0') {
		if ((secret = read_secret(file)) == NULL) {
			conf_errorf(conf_ctx.path, line, "option 'auth_password_file': cannot read "
			    "'%s': %s", file, strerror(errno));
			return -1;
		}
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	if (*user != '\0' && *pw == '\0' && *file == '\0')
		return conf_missing(cfg, line, "auth_password",
		    "auth_password or auth_password_file with auth_user");
	return 0;
}

/* conf_check_transport - type, and path (maildir) or host (relay) */
int
conf_check_transport(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = conf_last_section(opt);
	const char *type = cfg_getstr(sec, "type");
	int line = conf_section_line(cfg);
	char what[320];

	if (type == NULL)
		return conf_missing(cfg, line, "type", TRANSPORT_TYPE_NAMES);
	if (strcmp(type, "maildir") == 0 && cfg_getstr(sec, "path") == NULL) {
		snprintf(what, sizeof(what), "a Maildir path for maildir transport '%s'",
		    cfg_title(sec));
		return conf_missing(cfg, line, "path", what);
	}
	if (strcmp(type, "relay") == 0 && cfg_getstr(sec, "host") == NULL) {
		snprintf(what, sizeof(what), "host:port for relay transport '%s'",
		    cfg_title(sec));
		return conf_missing(cfg, line, "host", what);
	}
	if (v_transport_local(cfg, sec, type, line) == -1)
		return -1;
	return v_transport_smtp(cfg, sec, line);
}

/* conf_fill_smtp - the SMTP options of one transport section */
static void
conf_fill_smtp(struct conf_transport *t, cfg_t *s, const char *cwd)
{
	const char *file = cfg_getstr(s, "auth_password_file");

	t->port = (int)cfg_getint(s, "port");
	t->tls = conf_tls_level_parse(cfg_getstr(s, "tls"));
	t->tls_implicit = cfg_getbool(s, "tls_implicit") == cfg_true;
	t->ca_file = *cfg_getstr(s, "ca_file") != '\0' ? conf_abs_path(cwd,
	    cfg_getstr(s, "ca_file")) : xstrdup("");
	t->auth_user = xstrdup(cfg_getstr(s, "auth_user"));
	t->auth_password_file = *file != '\0' ? conf_abs_path(cwd, file) : xstrdup("");
	t->auth_password = *file != '\0' ? read_secret(t->auth_password_file) :
	    xstrdup(cfg_getstr(s, "auth_password"));
	if (t->auth_password == NULL)
		t->auth_password = xstrdup("");
	t->reuse_max = (int)cfg_getint(s, "reuse_max");
	t->reuse_idle = (time_t)cfg_getint(s, "reuse_idle");
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

/* conf_transport_fill - the transport sections, or the built-in local
 * Maildir when there is none */
void
conf_transport_fill(struct conf *c, cfg_t *cfg, const char *cwd)
{
	size_t i;
	cfg_t *s;

	c->ntransport = cfg_size(cfg, "transport");
	c->transport = xcalloc(c->ntransport + 1, sizeof(*c->transport));
	for (i = 0; i < c->ntransport; i++) {
		struct conf_transport *t = &c->transport[i];

		s = cfg_getnsec(cfg, "transport", (unsigned)i);
		t->name = xstrdup(cfg_title(s));
		t->type = transport_type_parse(cfg_getstr(s, "type"));
		if (cfg_getstr(s, "path") != NULL)
			t->path = conf_abs_path(cwd, cfg_getstr(s, "path"));
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
}

/* conf_transport_resolve_default - point default_transport at its section */
int
conf_transport_resolve_default(struct conf *c, cfg_t *cfg)
{
	const char *name = cfg_getstr(cfg, "default_transport");
	size_t i;

	for (i = 0; i < c->ntransport; i++)
		if (strcmp(c->transport[i].name, name) == 0) {
			c->default_transport = &c->transport[i];
			return 0;
		}
	conf_errorf(c->path, conf_ctx.default_transport_line, "option 'default_transport': "
	    "expected the name of a transport section, got '%s'", name);
	return -1;
}

/* conf_transport_free - every transport's options; secrets wiped */
void
conf_transport_free(struct conf *c)
{
	size_t i, k;

	for (i = 0; c->transport != NULL && i < c->ntransport; i++) {
		struct conf_transport *t = &c->transport[i];

		free(t->name);
		free(t->path);
		free(t->host);
		if (t->auth_password != NULL)
			explicit_bzero(t->auth_password, strlen(t->auth_password));
		free(t->auth_password);
		free(t->auth_password_file);
		free(t->auth_user);
		free(t->ca_file);
		for (k = 0; k < t->argc; k++)
			free(t->argv[k]);
		free(t->argv);
		free(t->name_template);
		free(t->url);
		if (t->secret != NULL)
			explicit_bzero(t->secret, strlen(t->secret));
		free(t->secret);
	}
	free(c->transport);
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

/* conf_dump_smtp - the SMTP options of a relay or mx transport (the
 * password only as set or not) */
static void
conf_dump_smtp(const struct conf_transport *t, FILE *fp)
{
	fprintf(fp, "transport.%s.port = %d\n", t->name, t->port);
	fprintf(fp, "transport.%s.tls = %s\n", t->name, conf_tls_levels[t->tls & 3]);
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

/* conf_transport_dump - default_transport and every transport */
void
conf_transport_dump(const struct conf *c, FILE *fp)
{
	size_t i;

	fprintf(fp, "default_transport = %s\n", c->default_transport->name);
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
		if (t->type == TRANSPORT_RELAY || t->type == TRANSPORT_MX)
			conf_dump_smtp(t, fp);
	}
}
