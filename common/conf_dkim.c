/*
 * conf_dkim.c - the DKIM signing configuration: dkim sections (domain,
 * selector, key file, generate), the canonicalisation, the signed header
 * list and what to do with a message that cannot be signed
 * (postern-delivery(8)).
 *
 * Owns: the dkim schema and its checks, struct conf_dkim's values.
 * SECURITY: only key file paths live here; the keys are read by
 * postern-delivery alone (common/dkimkey.c).
 * STANDARDS: RFC 6376 3.4 (canonicalisation), 5.4 (signed fields).
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

/* one_of - value must be one of the NULL-ended words */
static int
one_of(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result,
    const char *const *words, const char *what)
{
	conf_note_line(cfg);
	for (; *words != NULL; words++)
		if (strcmp(value, *words) == 0)
			return conf_str_result(cfg, opt, value, result);
	return conf_bad_value(cfg, opt, what, value);
}

/* cb_dkim_canon - relaxed/relaxed, simple/simple, relaxed/simple ... */
static int
cb_dkim_canon(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	static const char *const ok[] = { "relaxed/relaxed", "relaxed/simple",
		"simple/relaxed", "simple/simple", "relaxed", "simple", NULL };

	return one_of(cfg, opt, value, result, ok, "relaxed/relaxed, "
	    "relaxed/simple, simple/relaxed or simple/simple");
}

/* cb_dkim_unsignable - deliver or bounce */
static int
cb_dkim_unsignable(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	static const char *const ok[] = { "deliver", "bounce", NULL };

	return one_of(cfg, opt, value, result, ok, "deliver or bounce");
}

static cfg_opt_t dkim_opts[] = {
	CFG_STR_CB("selector", NULL, CFGF_NONE, conf_cb_string),
	CFG_STR_CB("key", NULL, CFGF_NONE, conf_cb_string),
	CFG_BOOL_CB("generate", cfg_false, CFGF_NONE, conf_cb_bool),
	CFG_STR_CB("domain", "", CFGF_NONE, conf_cb_string),
	CFG_END()
};

/* The signing domains and how every signature is made. */
cfg_opt_t conf_dkim_top[] = {
	CFG_SEC("dkim", dkim_opts, CONF_SEC_FLAGS),
	CFG_STR_CB("dkim_canonicalization", "relaxed/relaxed", CFGF_NONE, cb_dkim_canon),
	CFG_STR_CB("dkim_unsignable", "deliver", CFGF_NONE, cb_dkim_unsignable),
	CFG_STR_LIST_CB("dkim_signed_headers", "{\"From\", \"To\", \"Cc\", "
	    "\"Subject\", \"Date\", \"Message-ID\", \"Reply-To\", \"In-Reply-To\", "
	    "\"References\", \"MIME-Version\", \"Content-Type\", "
	    "\"Content-Transfer-Encoding\"}", CFGF_NONE, conf_cb_header_name),
	CFG_END()
};

/* conf_check_dkim - a signing domain needs a valid title, a selector and a key */
int
conf_check_dkim(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = conf_last_section(opt);
	int line = conf_section_line(cfg);
	char what[320];

	const char *domain = *cfg_getstr(sec, "domain") != '\0' ?
	    cfg_getstr(sec, "domain") : cfg_title(sec);

	if (!domain_valid(domain, 0)) {
		conf_errorf(conf_ctx.path, line, "option 'dkim': expected a domain name "
		    "as the section title or in 'domain', got '%s'", domain);
		return -1;
	}
	if (cfg_getstr(sec, "selector") == NULL) {
		snprintf(what, sizeof(what), "a selector for dkim '%s'", cfg_title(sec));
		return conf_missing(cfg, line, "selector", what);
	}
	if (cfg_getstr(sec, "key") == NULL) {
		snprintf(what, sizeof(what), "a key file for dkim '%s'", cfg_title(sec));
		return conf_missing(cfg, line, "key", what);
	}
	return 0;
}

/* conf_dkim_fill - the dkim sections, dkim_canonicalization and
 * dkim_signed_headers */
void
conf_dkim_fill(struct conf *c, cfg_t *cfg, const char *cwd)
{
	size_t i;
	cfg_t *s;

	c->ndkim = cfg_size(cfg, "dkim");
	c->dkim = xcalloc(c->ndkim + 1, sizeof(*c->dkim));
	for (i = 0; i < c->ndkim; i++) {
		s = cfg_getnsec(cfg, "dkim", (unsigned)i);
		c->dkim[i].name = xstrdup(cfg_title(s));
		c->dkim[i].domain = str_lower(xstrdup(*cfg_getstr(s, "domain") != '\0' ?
		    cfg_getstr(s, "domain") : cfg_title(s)));
		c->dkim[i].selector = xstrdup(cfg_getstr(s, "selector"));
		c->dkim[i].key = conf_abs_path(cwd, cfg_getstr(s, "key"));
		c->dkim[i].generate = cfg_getbool(s, "generate") == cfg_true;
	}
	c->dkim_canon = xstrdup(cfg_getstr(cfg, "dkim_canonicalization"));
	c->dkim_unsignable_bounce = strcmp(cfg_getstr(cfg, "dkim_unsignable"),
	    "bounce") == 0;
	c->ndkim_headers = cfg_size(cfg, "dkim_signed_headers");
	c->dkim_headers = xcalloc(c->ndkim_headers + 1, sizeof(char *));
	for (i = 0; i < c->ndkim_headers; i++)
		c->dkim_headers[i] = str_lower(xstrdup(cfg_getnstr(cfg,
		    "dkim_signed_headers", (unsigned)i)));
}

/* conf_dkim_free - what conf_dkim_fill allocated */
void
conf_dkim_free(struct conf *c)
{
	size_t i;

	for (i = 0; c->dkim != NULL && i < c->ndkim; i++) {
		free(c->dkim[i].name);
		free(c->dkim[i].domain);
		free(c->dkim[i].selector);
		free(c->dkim[i].key);
	}
	free(c->dkim);
	for (i = 0; c->dkim_headers != NULL && i < c->ndkim_headers; i++)
		free(c->dkim_headers[i]);
	free(c->dkim_headers);
	free(c->dkim_canon);
}

/* conf_dkim_dump - the signing domains (key paths, never keys) */
void
conf_dkim_dump(const struct conf *c, FILE *fp)
{
	size_t i;

	fprintf(fp, "dkim_unsignable = %s\n",
	    c->dkim_unsignable_bounce ? "bounce" : "deliver");
	for (i = 0; i < c->ndkim; i++) {
		const struct conf_dkim *d = &c->dkim[i];

		fprintf(fp, "dkim.%s.selector = %s\n", d->domain, d->selector);
		fprintf(fp, "dkim.%s.key = %s\n", d->domain, d->key);
		fprintf(fp, "dkim.%s.generate = %s\n", d->domain,
		    d->generate ? "true" : "false");
	}
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
