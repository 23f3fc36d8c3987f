/*
 * conf_route.c - where mail goes and how it is delivered per destination:
 * the route sections (address patterns to transports, see route.h), the
 * DNS resolver options and the tls_policy sections.
 *
 * Owns: the route and tls_policy schema and their checks, the check that
 * every route names a transport section.
 * SECURITY: names and patterns only; nothing secret.
 * STANDARDS: RFC 5321 2.3.5 (domains), RFC 3207 (TLS levels).
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
#include "conf.h"
#include "conf_int.h"
#include "log.h"
#include "route.h"
#include "util.h"

/* cb_route_pattern - "local@domain", "*@domain", "*@*.domain",
 * "local@*" or "*@*" (an empty value: no condition) */
static int
cb_route_pattern(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	conf_note_line(cfg);
	if (*value != '\0' && route_pattern_valid(value) == 0)
		return conf_bad_value(cfg, opt, "an address pattern such as user@example.com, "
		    "*@example.com, *@*.example.com, user@* or *@*", value);
	if (conf_str_result(cfg, opt, value, result) == -1)
		return -1;
	str_lower(conf_ctx.strbuf);
	return 0;
}

/* cb_dns_server - "" or a numeric "IP:PORT" / "[IPv6]:PORT" */
static int
cb_dns_server(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char host[256], port[32];
	unsigned char a[16];

	conf_note_line(cfg);
	if (*value != '\0' && (hostport_parse(value, host, sizeof(host), port,
	    sizeof(port)) == -1 || (inet_pton(AF_INET, host, a) != 1 &&
	    inet_pton(AF_INET6, host, a) != 1) || atoi(port) < 1 || atoi(port) > 65535))
		return conf_bad_value(cfg, opt, "\"\" or a numeric IP:PORT such as 127.0.0.1:53",
		    value);
	return conf_str_result(cfg, opt, value, result);
}

static cfg_opt_t route_opts[] = {
	CFG_STR_CB("recipient", "", CFGF_NONE, cb_route_pattern),
	CFG_STR_CB("sender", "", CFGF_NONE, cb_route_pattern),
	CFG_STR_CB("transport", NULL, CFGF_NONE, conf_cb_string),
	CFG_END()
};

static cfg_opt_t tls_policy_opts[] = {
	CFG_STR_CB("level", NULL, CFGF_NONE, conf_cb_tls_level),
	CFG_STR_CB("ca_file", "", CFGF_NONE, conf_cb_string),
	CFG_END()
};

/* Routes and the per-destination delivery policy: DNS and TLS. */
cfg_opt_t conf_route_top[] = {
	CFG_SEC("route", route_opts, CONF_SEC_FLAGS),
	CFG_STR_CB("dns_server", "", CFGF_NONE, cb_dns_server),
	CFG_INT_CB("dns_timeout", 5, CFGF_NONE, conf_cb_duration),
	CFG_SEC("tls_policy", tls_policy_opts, CONF_SEC_FLAGS),
	CFG_END()
};

/* conf_check_route - a recipient pattern (title or 'recipient') and a transport */
int
conf_check_route(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = conf_last_section(opt);
	int line = conf_section_line(cfg);
	const char *rcpt = *cfg_getstr(sec, "recipient") != '\0' ?
	    cfg_getstr(sec, "recipient") : cfg_title(sec);
	char what[320];

	if (!route_pattern_valid(rcpt)) {
		conf_errorf(conf_ctx.path, line, "option 'route': expected an address pattern "
		    "such as user@example.com, *@example.com, *@*.example.com, user@* or "
		    "*@* as the title or in 'recipient', got '%s'", rcpt);
		return -1;
	}
	if (cfg_getstr(sec, "transport") == NULL) {
		snprintf(what, sizeof(what), "a transport name for route '%s'",
		    cfg_title(sec));
		return conf_missing(cfg, line, "transport", what);
	}
	return 0;
}

/* conf_check_tls_policy - a destination domain and its TLS level */
int
conf_check_tls_policy(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = conf_last_section(opt);
	int line = conf_section_line(cfg);

	if (!domain_valid(cfg_title(sec), 0)) {
		conf_errorf(conf_ctx.path, line, "option 'tls_policy': expected a domain name, "
		    "got '%s'", cfg_title(sec));
		return -1;
	}
	if (cfg_getstr(sec, "level") == NULL)
		return conf_missing(cfg, line, "level", "none, may, encrypt or verify");
	return 0;
}

/* conf_route_fill - the route sections, each pointed at its transport */
int
conf_route_fill(struct conf *c, cfg_t *cfg)
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

/* conf_tls_policy_fill - dns_server, dns_timeout and the tls_policy
 * sections */
void
conf_tls_policy_fill(struct conf *c, cfg_t *cfg, const char *cwd)
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
		c->tls_policy[i].level = conf_tls_level_parse(cfg_getstr(s, "level"));
		c->tls_policy[i].ca_file = *cfg_getstr(s, "ca_file") != '\0' ?
		    conf_abs_path(cwd, cfg_getstr(s, "ca_file")) : xstrdup("");
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

/* conf_route_free - the routes, the tls_policy sections and dns_server */
void
conf_route_free(struct conf *c)
{
	size_t i;

	for (i = 0; c->route != NULL && i < c->nroute; i++) {
		free(c->route[i].name);
		free(c->route[i].recipient);
		free(c->route[i].sender);
	}
	free(c->route);
	for (i = 0; c->tls_policy != NULL && i < c->ntls_policy; i++) {
		free(c->tls_policy[i].domain);
		free(c->tls_policy[i].ca_file);
	}
	free(c->tls_policy);
	free(c->dns_server);
}

/* conf_route_dump - routes, DNS and tls_policy sections */
void
conf_route_dump(const struct conf *c, FILE *fp)
{
	size_t i;

	for (i = 0; i < c->nroute; i++)
		fprintf(fp, "route.%s = %s%s%s -> %s\n", c->route[i].name,
		    c->route[i].recipient, c->route[i].sender[0] != '\0' ? " from " : "",
		    c->route[i].sender, c->route[i].transport->name);
	fprintf(fp, "dns_server = %s\n", c->dns_server);
	fprintf(fp, "dns_timeout = %llds\n", (long long)c->dns_timeout);
	for (i = 0; i < c->ntls_policy; i++)
		fprintf(fp, "tls_policy.%s.level = %s\ntls_policy.%s.ca_file = %s\n",
		    c->tls_policy[i].domain, conf_tls_levels[c->tls_policy[i].level & 3],
		    c->tls_policy[i].domain, c->tls_policy[i].ca_file);
}
