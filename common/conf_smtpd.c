/*
 * conf_smtpd.c - the configuration of the listeners and of smtpd's
 * policy: listen sections (mode, TLS, AUTH, client allow-lists), the relay
 * policy (trusted_networks, relay_domains, message limits), per-client
 * limits and AUTH users (smtp_user sections and users_file).
 *
 * Owns: the listen and smtp_user schema and their checks, the users_file
 * format "name:hash:domain,domain" (postern-smtpd(8)).
 * SECURITY: users_file and the password hashes are read before privileges
 * are dropped; a hash is never echoed in an error and is wiped on free.
 * STANDARDS: RFC 4632 (networks), RFC 1035 (host name patterns).
 */
#include "config.h"

#include <arpa/inet.h>
#include <confuse.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "netaddr.h"
#include "conf.h"
#include "conf_int.h"
#include "log.h"
#include "util.h"

/* cb_client_allow - one smtpd_client_allow / client_allow entry: an IP
 * address or CIDR network, or a host name pattern "mx.example.com",
 * ".example.com" or "*.example.com" (stored lower-case, "*." as ".") */
static int
cb_client_allow(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *name = value;
	struct cidr c;

	conf_note_line(cfg);
	if (cidr_parse(value, &c) == 0)
		return conf_str_result(cfg, opt, value, result);
	if (strncmp(name, "*.", 2) == 0)
		name += 2;
	else if (*name == '.')
		name++;
	/* "10.1.2.300", "::g": a mistyped network, not a host name */
	if (strpbrk(value, ":/") != NULL || !domain_valid(name, 0) ||
	    strspn(name, "0123456789.") == strlen(name))
		return conf_bad_value(cfg, opt, "an IP address, a network such as "
		    "192.0.2.0/24 or 2001:db8::/32, or a host name pattern such as "
		    "mail.example.com or .example.com", value);
	if (conf_str_result(cfg, opt, name != value ? name - 1 : name, result) == -1)
		return -1;
	str_lower(conf_ctx.strbuf);
	return 0;
}

/* The word-valued smtpd options; the position of a word is its enum. */
static const struct {
	const char *opt;
	const char *words[4];
	const char *what;
} smtpd_words[] = {
	{ "mode", { "smtp", "smtps", NULL, NULL }, "smtp or smtps" },
	{ "auth", { "off", "optional", "required", NULL }, "off, optional or required" },
	{ "smtpd_forbid_bare_newline", { "reject", "normalize", NULL, NULL },
	    "reject or normalize" },
	{ "forbid_bare_newline", { "", "reject", "normalize", NULL },
	    "reject, normalize or \"\" (smtpd_forbid_bare_newline)" },
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

	conf_note_line(cfg);
	if (word_index(opt->name, value) >= 0)
		return conf_str_result(cfg, opt, value, result);
	for (i = 0; i < sizeof(smtpd_words) / sizeof(smtpd_words[0]); i++)
		if (strcmp(smtpd_words[i].opt, opt->name) == 0)
			return conf_bad_value(cfg, opt, smtpd_words[i].what, value);
	return conf_bad_value(cfg, opt, "a known value", value);
}

static cfg_opt_t listen_opts[] = {
	CFG_STR_CB("address", NULL, CFGF_NONE, conf_cb_hostport),
	CFG_STR_CB("mode", "smtp", CFGF_NONE, cb_word),
	CFG_BOOL_CB("require_tls", cfg_false, CFGF_NONE, conf_cb_bool),
	CFG_STR_CB("auth", "optional", CFGF_NONE, cb_word),
	CFG_BOOL_CB("auth_cleartext", cfg_false, CFGF_NONE, conf_cb_bool),
	CFG_BOOL_CB("submission", cfg_false, CFGF_NONE, conf_cb_bool),
	CFG_BOOL_CB("debug", cfg_false, CFGF_NONE, conf_cb_bool),
	CFG_STR_CB("tls_cert", "", CFGF_NONE, conf_cb_string),
	CFG_STR_CB("tls_key", "", CFGF_NONE, conf_cb_string),
	CFG_STR_LIST_CB("client_allow", "{}", CFGF_NONE, cb_client_allow),
	CFG_STR_CB("forbid_bare_newline", "", CFGF_NONE, cb_word),
	CFG_STR_LIST_CB("forbid_bare_newline_exclusions", "{}", CFGF_NONE,
	    conf_cb_cidr),
	CFG_END()
};

static cfg_opt_t smtp_user_opts[] = {
	CFG_STR_CB("password", NULL, CFGF_NONE, conf_cb_string),
	CFG_STR_LIST_CB("sender_domains", "{}", CFGF_NONE, conf_cb_domain),
	CFG_END()
};

/* The listeners and smtpd's policy: the top-level options and sections
 * of postern-smtpd(8). */
cfg_opt_t conf_smtpd_top[] = {
	CFG_SEC("listen", listen_opts, CONF_SEC_FLAGS),
	CFG_STR_LIST_CB("trusted_networks", "{\"127.0.0.0/8\", \"::1/128\"}",
	    CFGF_NONE, conf_cb_cidr),
	CFG_STR_LIST_CB("relay_domains", "{}", CFGF_NONE, conf_cb_domain),
	CFG_INT_CB("max_message_size", 25 * 1024 * 1024, CFGF_NONE, conf_cb_size),
	CFG_INT_CB("max_recipients", 100, CFGF_NONE, conf_cb_int_range),
	CFG_INT_CB("hopcount_limit", 50, CFGF_NONE, conf_cb_int_range),
	CFG_INT_CB("smtpd_timeout", 300, CFGF_NONE, conf_cb_duration),
	CFG_INT_CB("smtpd_data_timeout", 600, CFGF_NONE, conf_cb_duration),
	CFG_STR_CB("tls_cert", "", CFGF_NONE, conf_cb_string),
	CFG_STR_CB("tls_key", "", CFGF_NONE, conf_cb_string),
	CFG_STR_CB("users_file", "", CFGF_NONE, conf_cb_string),
	CFG_BOOL_CB("received_show_auth", cfg_false, CFGF_NONE, conf_cb_bool),
	CFG_INT_CB("auth_failure_limit", 10, CFGF_NONE, conf_cb_int_range),
	CFG_INT_CB("auth_failure_window", 600, CFGF_NONE, conf_cb_duration),
	CFG_INT_CB("smtpd_client_connection_limit", 50, CFGF_NONE, conf_cb_int_range),
	CFG_INT_CB("smtpd_client_message_limit", 0, CFGF_NONE, conf_cb_int_range),
	CFG_INT_CB("smtpd_client_message_window", 60, CFGF_NONE, conf_cb_window),
	CFG_STR_LIST_CB("smtpd_client_allow", "{}", CFGF_NONE, cb_client_allow),
	CFG_BOOL_CB("smtpd_sender_local_only", cfg_false, CFGF_NONE, conf_cb_bool),
	CFG_STR_CB("smtpd_forbid_bare_newline", "normalize", CFGF_NONE, cb_word),
	CFG_STR_LIST_CB("smtpd_forbid_bare_newline_exclusions", "{}", CFGF_NONE,
	    conf_cb_cidr),
	CFG_SEC("smtp_user", smtp_user_opts, CONF_SEC_FLAGS),
	CFG_END()
};

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

/* conf_check_listen - a listen section needs an address that can be bound */
int
conf_check_listen(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = conf_last_section(opt);
	int line = conf_section_line(cfg);
	const char *addr = cfg_getstr(sec, "address");

	if (addr == NULL)
		return conf_missing(cfg, line, "address", "host:port in this listen section");
	if (!listen_address_valid(addr)) {
		conf_errorf(conf_ctx.path, line, "option 'address': expected host:port with a "
		    "port from 1 to 65535, got '%s'", addr);
		return -1;
	}
	return 0;
}

/* The hash kinds of hash_plausible, as its errors name them (all of them:
 * postern.conf(5) lists the same, which t/95 checks). */
#define HASH_KINDS "$y$, $gy$, $7$, $6$, $5$, $2b$, $2y$ or $2a$"

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

/* conf_check_smtp_user - a user needs a password hash (never echoed in errors) */
int
conf_check_smtp_user(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = conf_last_section(opt);
	int line = conf_section_line(cfg);
	const char *pw = cfg_getstr(sec, "password");

	if (pw == NULL)
		return conf_missing(cfg, line, "password", "a crypt(3) hash (posternctl "
		    "hash-password) in this smtp_user section");
	if (!hash_plausible(pw)) {
		conf_errorf(conf_ctx.path, line, "option 'password': expected a crypt(3) "
		    "hash (" HASH_KINDS "; see posternctl hash-password), got a "
		    "value that is not one");
		return -1;
	}
	return 0;
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
		conf_errorf(path, lineno, "user '%s': expected a crypt(3) hash ("
		    HASH_KINDS "; see posternctl hash-password)", name);
		return -1;
	}
	if (users_line_domains(doms != NULL ? doms : hash + strlen(hash), &dv,
	    &nd) == -1) {
		conf_strv_free(dv, nd);
		conf_errorf(path, lineno, "user '%s': expected a comma-separated list "
		    "of domain names", name);
		return -1;
	}
	if (user_add(c, path, lineno, name, hash, dv, nd) == -1) {
		conf_strv_free(dv, nd);
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
			conf_strv_free(dv, nd);
			return -1;
		}
	}
	c->users_file = *cfg_getstr(cfg, "users_file") != '\0' ?
	    conf_abs_path(cwd, cfg_getstr(cfg, "users_file")) : xstrdup("");
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
	return *v != '\0' ? conf_abs_path(cwd, v) : xstrdup("");
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

/* conf_fill_nets - the validated networks of list option name of sec */
static void
conf_fill_nets(struct netlist *l, cfg_t *sec, const char *name)
{
	size_t i;

	for (i = 0; i < cfg_size(sec, name); i++)
		if (netlist_add(l, cfg_getnstr(sec, name, (unsigned)i)) == -1)
			panic("conf: validated network failed to parse");
}

/* conf_free_client_allow - what conf_fill_client_allow allocated */
static void
conf_free_client_allow(struct conf_client_allow *a)
{
	netlist_free(&a->nets);
	conf_strv_free(a->names, a->nnames);
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

/* conf_bare_lf_for - listener i's bare LF rule for a client at sa */
enum conf_bare_lf
conf_bare_lf_for(const struct conf *c, size_t i, const struct sockaddr *sa)
{
	const struct netlist *ex = &c->bare_lf_exclusions;
	int mode = c->bare_lf;

	if (i < c->nlisten) {
		mode = c->listen[i].bare_lf;
		if (c->listen[i].bare_lf_exclusions.n > 0)
			ex = &c->listen[i].bare_lf_exclusions;
	}
	if (sa != NULL && netlist_match(ex, sa))
		return BARE_LF_ALLOW;
	return mode == BARE_LF_REJECT ? BARE_LF_REJECT : BARE_LF_NORMALIZE;
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
	l->bare_lf = word_index("forbid_bare_newline", cfg_getstr(s,
	    "forbid_bare_newline")) - 1;
	if (l->bare_lf < 0)
		l->bare_lf = c->bare_lf;
	conf_fill_nets(&l->bare_lf_exclusions, s, "forbid_bare_newline_exclusions");
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

/* conf_fill_policy - the listeners' names and addresses, and the relay
 * policy: trusted networks, relay domains, message limits */
static void
conf_fill_policy(struct conf *c, cfg_t *cfg)
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
	conf_fill_nets(&c->trusted_networks, cfg, "trusted_networks");
	c->nrelay_domains = cfg_size(cfg, "relay_domains");
	c->relay_domains = xcalloc(c->nrelay_domains + 1, sizeof(char *));
	for (i = 0; i < c->nrelay_domains; i++)
		c->relay_domains[i] = xstrdup(cfg_getnstr(cfg, "relay_domains", (unsigned)i));
	c->max_message_size = (size_t)cfg_getint(cfg, "max_message_size");
	c->max_recipients = (int)cfg_getint(cfg, "max_recipients");
	c->hopcount_limit = (int)cfg_getint(cfg, "hopcount_limit");
	c->smtpd_timeout = (time_t)cfg_getint(cfg, "smtpd_timeout");
	c->smtpd_data_timeout = (time_t)cfg_getint(cfg, "smtpd_data_timeout");
}

/* conf_smtpd_fill - the smtpd options: listeners, relay policy, TLS,
 * AUTH and users; -1 (error set) on a conf_missing certificate or bad user */
int
conf_smtpd_fill(struct conf *c, cfg_t *cfg, const char *cwd)
{
	size_t i;

	conf_fill_policy(c, cfg);
	c->tls_cert = *cfg_getstr(cfg, "tls_cert") != '\0' ?
	    conf_abs_path(cwd, cfg_getstr(cfg, "tls_cert")) : xstrdup("");
	c->tls_key = *cfg_getstr(cfg, "tls_key") != '\0' ?
	    conf_abs_path(cwd, cfg_getstr(cfg, "tls_key")) : xstrdup("");
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
	c->bare_lf = word_index("smtpd_forbid_bare_newline", cfg_getstr(cfg,
	    "smtpd_forbid_bare_newline"));
	conf_fill_nets(&c->bare_lf_exclusions, cfg,
	    "smtpd_forbid_bare_newline_exclusions");
	for (i = 0; i < c->nlisten; i++)
		if (conf_fill_listen_smtpd(c, &c->listen[i],
		    cfg_getnsec(cfg, "listen", (unsigned)i), cfg, cwd) == -1)
			return -1;
	return conf_fill_users(c, cfg, cwd);
}

/* conf_smtpd_free - what conf_smtpd_fill allocated; hashes wiped */
void
conf_smtpd_free(struct conf *c)
{
	size_t i;

	for (i = 0; i < c->nlisten; i++) {
		free(c->listen[i].name);
		free(c->listen[i].address);
		free(c->listen[i].tls_cert);
		free(c->listen[i].tls_key);
		conf_free_client_allow(&c->listen[i].client_allow);
		netlist_free(&c->listen[i].bare_lf_exclusions);
	}
	conf_free_client_allow(&c->client_allow);
	netlist_free(&c->bare_lf_exclusions);
	for (i = 0; i < c->nusers; i++) {
		free(c->users[i].name);
		explicit_bzero(c->users[i].password, strlen(c->users[i].password));
		free(c->users[i].password);
		conf_strv_free(c->users[i].domains, c->users[i].ndomains);
	}
	free(c->users);
	free(c->listen);
	for (i = 0; i < c->nrelay_domains; i++)
		free(c->relay_domains[i]);
	free(c->relay_domains);
	netlist_free(&c->trusted_networks);
	free(c->users_file);
	free(c->tls_cert);
	free(c->tls_key);
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

/* conf_dump_policy - the relay policy and message limits */
static void
conf_dump_policy(const struct conf *c, FILE *fp)
{
	size_t i;

	fprintf(fp, "max_message_size = %zu\n", c->max_message_size);
	fprintf(fp, "max_recipients = %d\n", c->max_recipients);
	fprintf(fp, "hopcount_limit = %d\n", c->hopcount_limit);
	fprintf(fp, "smtpd_timeout = %llds\n", (long long)c->smtpd_timeout);
	fprintf(fp, "smtpd_client_connection_limit = %d\n",
	    c->client_connection_limit);
	fprintf(fp, "smtpd_client_message_limit = %d\n", c->client_message_limit);
	fprintf(fp, "smtpd_client_message_window = %llds\n",
	    (long long)c->client_message_window);
	fprintf(fp, "smtpd_data_timeout = %llds\n", (long long)c->smtpd_data_timeout);
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
	fprintf(fp, "\nsmtpd_sender_local_only = %s\n",
	    c->sender_local_only ? "yes" : "no");
	fprintf(fp, "smtpd_forbid_bare_newline = %s\n",
	    smtpd_words[2].words[c->bare_lf & 1]);
	fprintf(fp, "smtpd_forbid_bare_newline_exclusions =");
	conf_dump_nets(&c->bare_lf_exclusions, fp);
	fputc('\n', fp);
}

/* conf_smtpd_dump - the smtpd options, listeners and users (user names
 * and their domain counts only) */
void
conf_smtpd_dump(const struct conf *c, FILE *fp)
{
	size_t i;

	conf_dump_policy(c, fp);
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
		fprintf(fp, "listen.%s.forbid_bare_newline = %s\n", l->name,
		    smtpd_words[2].words[l->bare_lf & 1]);
		fprintf(fp, "listen.%s.forbid_bare_newline_exclusions =", l->name);
		conf_dump_nets(&l->bare_lf_exclusions, fp);
		fputc('\n', fp);
	}
	for (i = 0; i < c->nusers; i++)
		fprintf(fp, "smtp_user.%s.sender_domains = %zu\n", c->users[i].name,
		    c->users[i].ndomains);
}
