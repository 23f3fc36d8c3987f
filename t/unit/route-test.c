/*
 * route-test.c - tests of common/route.c: pattern syntax, the
 * specificity order (exact > *@domain > *@*.domain, longest suffix first >
 * local@* > *@*), sender conditions, file order among equals, the
 * default transport, case, and the destination keys.
 *
 * Writes one configuration into a mkdtemp(3) directory and removes it.
 * SECURITY: none (a test). STANDARDS: none.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "route.h"
#include "tap.h"

static const char config_text[] =
    "transport dflt { type = mx }\n"
    "transport exact { type = maildir path = \"/tmp/x\" }\n"
    "transport dom { type = relay host = \"127.0.0.1:25\" }\n"
    "transport sub { type = file path = \"/tmp/f\" }\n"
    "transport subsub { type = file path = \"/tmp/g\" }\n"
    "transport local { type = maildir path = \"/tmp/l\" }\n"
    "transport any { type = maildir path = \"/tmp/a\" }\n"
    "transport shop { type = pipe command = { \"/bin/cat\" } }\n"
    "transport first { type = maildir path = \"/tmp/1\" }\n"
    "default_transport = dflt\n"
    /* in an order that is NOT the specificity order */
    "route \"*@*\" { transport = any }\n"
    "route \"postmaster@*\" { transport = local }\n"
    "route \"*@*.example.com\" { transport = sub }\n"
    "route \"*@*.b.example.com\" { transport = subsub }\n"
    "route \"*@example.com\" { transport = dom }\n"
    "route \"Boss@Example.com\" { transport = exact }\n"
    "route shop { recipient = \"*@example.com\" sender = \"*@shop.example\" "
    "transport = shop }\n"
    "route \"*@twice.example\" { transport = first }\n"
    "route second { recipient = \"*@twice.example\" transport = any }\n";

/* One lookup and the transport it must pick. */
static const struct {
	const char *rcpt, *sender, *transport;
	enum route_class class;
} cases[] = {
	{ "boss@example.com", "", "exact", ROUTE_EXACT },
	{ "BOSS@EXAMPLE.COM", "", "exact", ROUTE_EXACT },
	{ "other@example.com", "", "dom", ROUTE_DOMAIN },
	{ "postmaster@example.com", "", "dom", ROUTE_DOMAIN },
	{ "x@a.example.com", "", "sub", ROUTE_SUBDOMAIN },
	{ "x@c.b.example.com", "", "subsub", ROUTE_SUBDOMAIN },
	{ "x@b.example.com", "", "sub", ROUTE_SUBDOMAIN },
	{ "postmaster@other.org", "", "local", ROUTE_LOCAL },
	{ "x@other.org", "", "any", ROUTE_ANY },
	{ "x@notexample.com", "", "any", ROUTE_ANY },
	{ "x@example.com", "a@shop.example", "shop", ROUTE_DOMAIN },
	{ "x@example.com", "a@other.example", "dom", ROUTE_DOMAIN },
	{ "boss@example.com", "a@shop.example", "exact", ROUTE_EXACT },
	{ "x@twice.example", "", "first", ROUTE_DOMAIN },
};

/* Patterns and whether they are valid. */
static const struct {
	const char *pat;
	int valid;
} patterns[] = {
	{ "user@example.com", 1 }, { "*@example.com", 1 }, { "*@*.example.com", 1 },
	{ "user@*", 1 }, { "*@*", 1 }, { "example.com", 0 }, { "@example.com", 0 },
	{ "u*@example.com", 0 }, { "user@*.example.com", 0 }, { "*@*.*", 0 },
	{ "*@exa mple.com", 0 }, { "*@", 0 }, { "a@b@c.com", 0 },
};

/* check_patterns - route_pattern_valid over the table */
static void
check_patterns(void)
{
	size_t i;

	for (i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++)
		is_int(route_pattern_valid(patterns[i].pat), patterns[i].valid,
		    "pattern '%s' %s", patterns[i].pat, patterns[i].valid ? "valid" :
		    "rejected");
}

/* check_matching - the raw matcher and its ranks */
static void
check_matching(void)
{
	int exact = route_pattern_match("a@x.org", "a@x.org");
	int dom = route_pattern_match("*@x.org", "a@x.org");
	int sub1 = route_pattern_match("*@*.org", "a@b.x.org");
	int sub2 = route_pattern_match("*@*.x.org", "a@b.x.org");
	int local = route_pattern_match("a@*", "a@x.org");
	int any = route_pattern_match("*@*", "a@x.org");

	ok(exact > 0 && exact < dom && dom < sub2 && sub2 < sub1 && sub1 < local &&
	    local < any, "ranks: exact %d < domain %d < longer suffix %d < shorter %d "
	    "< local %d < any %d", exact, dom, sub2, sub1, local, any);
	is_int(route_pattern_match("*@*.x.org", "a@x.org"), 0,
	    "*@*.domain does not match the domain itself");
	is_int(route_pattern_match("*@*.x.org", "a@evilx.org"), 0,
	    "*@*.domain needs a dot boundary");
	is_int(route_pattern_match("*@x.org", "a@x.org@evil.com"), 0,
	    "the domain is what follows the last '@'");
	is_int(route_pattern_match("*@x.org", ""), 0, "null sender matches no domain");
	ok(route_pattern_match("*@*", "") > 0, "null sender matches *@*");
}

/* write_config - the test configuration in a temporary directory */
static const char *
write_config(char *dir)
{
	static char path[PATH_MAX];
	FILE *fp;

	if (mkdtemp(dir) == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/route.conf", dir);
	if ((fp = fopen(path, "w")) == NULL)
		return NULL;
	fputs(config_text, fp);
	fclose(fp);
	return path;
}

/* check_lookups - route_lookup over the case table */
static void
check_lookups(const struct conf *c)
{
	struct route_match m;
	char key[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		route_lookup(c, cases[i].rcpt, cases[i].sender, &m);
		is_str(m.transport->name, cases[i].transport, "<%s> from <%s> -> %s (%s)",
		    cases[i].rcpt, cases[i].sender, cases[i].transport, m.why);
		is_int((int)m.class, (int)cases[i].class, "<%s>: class %s", cases[i].rcpt,
		    route_class_name(cases[i].class));
	}
	route_lookup(c, "x@example.com", "a@shop.example", &m);
	ok(strstr(m.why, "sender <a@shop.example> matches") != NULL, "why names the "
	    "sender: %s", m.why);
	route_destination(c, "x@Other.Example", "", key, sizeof(key));
	is_str(key, "any", "destination key of a local output");
	route_destination(c, "x@example.com", "", key, sizeof(key));
	is_str(key, "dom:127.0.0.1:25", "destination key of a relay");
}

/* check_default - no routes at all: default_transport, and why says so */
static void
check_default(char *dir)
{
	char path[PATH_MAX], err[512];
	struct route_match m;
	struct conf *c;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/plain.conf", dir);
	if ((fp = fopen(path, "w")) == NULL)
		return;
	fputs("transport out { type = mx }\ndefault_transport = out\n", fp);
	fclose(fp);
	c = conf_load(path, err, sizeof(err));
	ok(c != NULL, "config without routes loads: %s", c ? "" : err);
	if (c == NULL)
		return;
	route_lookup(c, "a@b.example", "", &m);
	ok(m.route == NULL && strcmp(m.transport->name, "out") == 0 &&
	    strstr(m.why, "default_transport") != NULL, "no route: %s", m.why);
	{
		char key[256];

		route_destination(c, "a@B.Example", "", key, sizeof(key));
		is_str(key, "out:b.example", "destination key of mx is per domain");
	}
	conf_free(&c);
	unlink(path);
}

/* main - run every check */
int
main(void)
{
	char dir[] = "/tmp/postern-route-test.XXXXXX", err[512];
	const char *path;
	struct conf *c;

	log_init("route-test", 1, LOG_LEVEL_WARNING);
	check_patterns();
	check_matching();
	path = write_config(dir);
	ok(path != NULL, "wrote the test configuration");
	c = path != NULL ? conf_load(path, err, sizeof(err)) : NULL;
	ok(c != NULL, "route configuration loads%s%s", c ? "" : ": ", c ? "" : err);
	if (c != NULL) {
		check_lookups(c);
		conf_free(&c);
	}
	check_default(dir);
	if (path != NULL)
		unlink(path);
	rmdir(dir);
	return done_testing();
}
