/*
 * conf_http.c - the configuration of postern-httpd: http_listen and the
 * http section (the send API's allow-list, sender, rate limit, body limit,
 * client address header and trusted proxies, nonces, CORS, /readyz, the
 * admin token and the status page's history).
 *
 * Owns: the http schema and its checks, struct conf_http's values.
 * SECURITY: nonce_secret and admin_token are secrets: printed only as
 * "(set)" and wiped on free.
 * STANDARDS: RFC 9110 (header field names), RFC 5322 3.4.1 (addresses).
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
#include "netaddr.h"
#include "conf.h"
#include "conf_int.h"
#include "log.h"
#include "util.h"

/* cb_http_listen - host:port, or "" for no HTTP listener */
static int
cb_http_listen(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char host[256], port[32];

	conf_note_line(cfg);
	if (*value != '\0' &&
	    hostport_parse(value, host, sizeof(host), port, sizeof(port)) == -1)
		return conf_bad_value(cfg, opt, "host:port or \"\" (off)", value);
	return conf_str_result(cfg, opt, value, result);
}

/* cb_allow_entry - "user@domain" or "@domain", stored lower-case */
static int
cb_allow_entry(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct mailaddr a;
	const char *why;

	conf_note_line(cfg);
	if (value[0] == '@' ? !domain_valid(value + 1, 0) :
	    addr_parse(value, 0, &a, &why) == -1)
		return conf_bad_value(cfg, opt, "an address user@domain or @domain", value);
	if (conf_str_result(cfg, opt, value, result) == -1)
		return -1;
	str_lower(conf_ctx.strbuf);
	return 0;
}

/* cb_http_sender - an address user@domain, or "" (postern@hostname) */
static int
cb_http_sender(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct mailaddr a;
	const char *why;

	conf_note_line(cfg);
	if (*value != '\0' && addr_parse(value, 0, &a, &why) == -1)
		return conf_bad_value(cfg, opt, "an address user@domain", value);
	return conf_str_result(cfg, opt, value, result);
}

/* The http section (postern-httpd: send API, CORS, /readyz). */
static cfg_opt_t http_opts[] = {
	CFG_BOOL_CB("send_api", cfg_false, CFGF_NONE, conf_cb_bool),
	CFG_BOOL_CB("compat_paths", cfg_false, CFGF_NONE, conf_cb_bool),
	CFG_STR_LIST_CB("allow_list", "{}", CFGF_NONE, cb_allow_entry),
	CFG_STR_CB("sender", "", CFGF_NONE, cb_http_sender),
	CFG_INT_CB("rate_limit", 60, CFGF_NONE, conf_cb_duration),
	CFG_INT_CB("max_body", 64 * 1024, CFGF_NONE, conf_cb_size),
	CFG_STR_CB("client_ip_header", "", CFGF_NONE, conf_cb_header_name_or_empty),
	CFG_STR_LIST_CB("trusted_proxies", "{}", CFGF_NONE, conf_cb_cidr),
	CFG_BOOL_CB("require_nonce", cfg_false, CFGF_NONE, conf_cb_bool),
	CFG_STR_CB("nonce_secret", "", CFGF_NONE, conf_cb_string),
	CFG_INT_CB("nonce_max_age", 60, CFGF_NONE, conf_cb_duration),
	CFG_STR_LIST_CB("cors_origins", "{}", CFGF_NONE, conf_cb_string),
	CFG_INT_CB("ready_min_free", 64 * 1024 * 1024, CFGF_NONE, conf_cb_size),
	CFG_STR_CB("admin_token", "", CFGF_NONE, conf_cb_string),
	CFG_INT_CB("history_size", 60, CFGF_NONE, conf_cb_int_range),
	CFG_INT_CB("history_step", 60, CFGF_NONE, conf_cb_window),
	CFG_END()
};

/* postern-httpd's listener and its section. */
cfg_opt_t conf_http_top[] = {
	CFG_STR_CB("http_listen", "127.0.0.1:8025", CFGF_NONE, cb_http_listen),
	CFG_SEC("http", http_opts, CFGF_NONE),
	CFG_END()
};

/* conf_check_http - the send API needs an allow-list, nonces need a secret */
int
conf_check_http(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = conf_last_section(opt);
	int line = conf_section_line(cfg);

	if (cfg_getbool(sec, "send_api") && cfg_size(sec, "allow_list") == 0)
		return conf_missing(cfg, line, "allow_list",
		    "at least one recipient address when send_api is on");
	if (cfg_getbool(sec, "require_nonce") &&
	    *cfg_getstr(sec, "nonce_secret") == '\0')
		return conf_missing(cfg, line, "nonce_secret",
		    "a shared secret when require_nonce is on");
	return 0;
}

/* conf_http_fill - http_listen and the http section */
void
conf_http_fill(struct conf *c, cfg_t *cfg)
{
	cfg_t *h = cfg_getsec(cfg, "http");
	struct conf_http *ch = &c->http;
	size_t i;

	c->http_listen = xstrdup(cfg_getstr(cfg, "http_listen"));
	ch->send_api = cfg_getbool(h, "send_api") ? 1 : 0;
	ch->compat_paths = cfg_getbool(h, "compat_paths") ? 1 : 0;
	ch->allow_list = conf_strlist_copy(h, "allow_list", &ch->nallow_list);
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
	ch->cors_origins = conf_strlist_copy(h, "cors_origins", &ch->ncors_origins);
	ch->ready_min_free = (size_t)cfg_getint(h, "ready_min_free");
	ch->admin_token = xstrdup(cfg_getstr(h, "admin_token"));
	ch->history_size = (size_t)cfg_getint(h, "history_size");
	ch->history_step = (time_t)cfg_getint(h, "history_step");
}

/* conf_http_free - what conf_http_fill allocated; secrets wiped */
void
conf_http_free(struct conf *c)
{
	struct conf_http *ch = &c->http;
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
	free(c->http_listen);
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

/* conf_http_dump - http_listen and the http section (secrets only as set or not) */
void
conf_http_dump(const struct conf *c, FILE *fp)
{
	const struct conf_http *h = &c->http;

	fprintf(fp, "http_listen = %s\n", c->http_listen);
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
	fprintf(fp, "http.history_size = %zu\nhttp.history_step = %llds\n",
	    h->history_size, (long long)h->history_step);
}
