/*
 * addrlist-test.c - table-driven tests of common/addrlist.c: the
 * mailboxes of header address lists (comments, quoted local parts with
 * '@', groups, encoded words, several mailboxes, obsolete syntax) and
 * what it refuses rather than repairs, then the "From: domain" rule
 * (one mailbox, or several with one Sender:).
 *
 * SECURITY: none (a test). STANDARDS: RFC 5322 3.4, 3.6.2, 4.4; RFC 2047;
 * RFC 6532.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "addrlist.h"
#include "util.h"
#include "tap.h"

/* One list case: a header value and its mailboxes ("local@domain"
 * joined by spaces, "local" when there is no domain, "(routed)" after
 * one that had an obsolete route), or NULL when the value must be
 * refused. */
struct list_case {
	const char *value;
	const char *want;
};

static const struct list_case list_cases[] = {
	/* plain, display names, several mailboxes */
	{ "a@example.org", "a@example.org" },
	{ " Ann <ann@Example.ORG>, bob@example.org", "ann@example.org bob@example.org" },
	{ "\"Doe, John\" <jd@example.org>", "jd@example.org" },
	{ "John Q. Public <jqp@example.org>", "jqp@example.org" },
	/* comments, nested, with '@' and parentheses inside */
	{ "carl@example.org (Carl, the boss)", "carl@example.org" },
	{ "(x@evil.example) me (c) @ (c) good.example (a (nested) one)",
	    "me@good.example" },
	{ "me@good.example (\\) x@evil.example)", "me@good.example" },
	/* quoted strings: an '@' there is no address */
	{ "\"x@evil.example\" <me@good.example>", "me@good.example" },
	{ "\"me@good.example\"@evil.example", "\"me@good.example\"@evil.example" },
	{ "\"a\\\"b\"@good.example", "\"a\\\"b\"@good.example" },
	{ "\"a<b\" <r@example.org>", "r@example.org" },
	/* encoded words are atoms of the display name, never decoded */
	{ "=?utf-8?q?J=C3=B6rg?= <j@good.example>", "j@good.example" },
	{ "=?utf-8?q?a=40evil.example?= <j@good.example>", "j@good.example" },
	{ "=?utf-8?b?PGFAZXZpbC5leGFtcGxlPg==?=", "=?utf-8?b?PGFAZXZpbC5leGFtcGxlPg==?=" },
	/* groups */
	{ "team: x@example.org, y@example.org;, z@example.org",
	    "x@example.org y@example.org z@example.org" },
	{ "undisclosed-recipients:;", "" },
	{ "a: <b@x.example>;", "b@x.example" },
	/* obsolete syntax (RFC 5322 4.4) */
	{ "<@route.example,@other.example:me@good.example>", "me@good.example(routed)" },
	{ "Me <,@route.example:me@good.example>", "me@good.example(routed)" },
	{ "me . x @ good . example", "me.x@good.example" },
	{ "\"a\".b@good.example", "\"a\".b@good.example" },
	{ " <q@example.org>  ,  ,", "q@example.org" },
	{ ", , a@example.org", "a@example.org" },
	/* literals, UTF-8, no domain */
	{ "me@[192.0.2.1]", "me@[192.0.2.1]" },
	{ "J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbc" "cher.example>",
	    "j\xc3\xb6rg@b\xc3\xbc" "cher.example" },
	{ "root", "root" },
	{ "Root <root>", "root" },
	{ "", "" },
	{ "  (only a comment)  ", "" },
	/* refused, not repaired */
	{ "me@good.example@evil.example", NULL },
	{ "me@good.example;x@evil.example", NULL },
	{ "x <a@good.example> <b@evil.example>", NULL },
	{ "a@good.example>x@evil.example", NULL },
	{ "me@good.example <x@evil.example>", NULL },
	{ "Name <me@good.example", NULL },
	{ "\"unterminated@evil.example <me@good.example>", NULL },
	{ "me@good.example (unterminated", NULL },
	{ "me@good.example) x@evil.example", NULL },
	{ "me@[192.0.2.1", NULL },
	{ "me@good.example.", NULL },
	{ "me@good..example", NULL },
	{ "me@", NULL },
	{ "John Smith@good.example", NULL },
	{ "<>", NULL },
	{ "a: b: c@x.example;;", NULL },
	{ "a: b@x.example", NULL },
	{ "<@route.example me@good.example>", NULL },
	{ "me@good\x01.example", NULL },
	{ "me\\@evil.example@good.example", NULL },
};

/* joined - the mailboxes as one space-separated string (static buffer) */
static const char *
joined(const struct addrlist *l)
{
	static char buf[1024];
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < l->n; i++) {
		if (i > 0)
			strlcat(buf, " ", sizeof(buf));
		strlcat(buf, l->v[i].local, sizeof(buf));
		if (*l->v[i].domain != '\0') {
			strlcat(buf, "@", sizeof(buf));
			strlcat(buf, l->v[i].domain, sizeof(buf));
		}
		if (l->v[i].routed)
			strlcat(buf, "(routed)", sizeof(buf));
	}
	return buf;
}

/* test_lists - addrlist_parse over the table */
static void
test_lists(void)
{
	struct addrlist l;
	const char *why;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
		const struct list_case *c = &list_cases[i];

		memset(&l, 0, sizeof(l));
		why = NULL;
		rc = addrlist_parse(c->value, &l, &why);
		if (c->want == NULL)
			ok(rc == -1 && why != NULL && l.n == 0, "refused: '%s' (%s)",
			    c->value, why != NULL ? why : "accepted");
		else if (rc == 0)
			is_str(joined(&l), c->want, "mailboxes of '%s'", c->value);
		else
			ok(0, "mailboxes of '%s': refused (%s)", c->value, why);
		addrlist_free(&l);
	}
}

/* One "From: domain" case: From: and Sender: values, the domain or NULL. */
struct author_case {
	const char *from;
	const char *sender;
	const char *want;
};

static const struct author_case author_cases[] = {
	{ "Alice <alice@EXAMPLE.com>", NULL, "example.com" },
	{ "\"x@evil.example\" <me@good.example> (y@evil.example)", NULL, "good.example" },
	{ "a@one.example", "b@two.example", "one.example" },
	{ "a@one.example, b@two.example", NULL, NULL },
	{ "a@one.example, b@two.example", "Boss <boss@three.example>", "three.example" },
	{ "a@one.example, b@two.example", "x@y.example, z@y.example", NULL },
	{ "a@one.example, b@two.example", "garbage <", NULL },
	{ "list: a@one.example;", NULL, "one.example" },
	{ "undisclosed-recipients:;", NULL, NULL },
	{ "root", NULL, NULL },
	{ "me@[192.0.2.1]", NULL, NULL },
	{ "me@good.example@evil.example", NULL, NULL },
	{ NULL, NULL, NULL },
};

/* test_author - addrlist_author_domain over the table */
static void
test_author(void)
{
	char d[256];
	const char *why;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(author_cases) / sizeof(author_cases[0]); i++) {
		const struct author_case *c = &author_cases[i];

		why = NULL;
		d[0] = '\0';
		rc = addrlist_author_domain(c->from, c->sender, d, sizeof(d), &why);
		if (c->want == NULL)
			ok(rc == -1 && why != NULL, "no From: domain for '%s' / '%s' (%s)",
			    c->from ? c->from : "(none)", c->sender ? c->sender : "(none)",
			    why != NULL ? why : d);
		else
			is_str(rc == 0 ? d : why, c->want, "From: domain of '%s' / '%s'",
			    c->from, c->sender ? c->sender : "(none)");
	}
	rc = addrlist_author_domain("a@a-rather-long-domain.example", NULL, d, 8, &why);
	ok(rc == -1, "a domain longer than the buffer is refused");
}

/* main - run everything */
int
main(void)
{
	test_lists();
	test_author();
	return done_testing();
}
