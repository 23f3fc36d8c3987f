/*
 * addr-test.c - table-driven tests of common/addr.c: every address trick
 * that could widen a relay decision is refused, valid forms are accepted
 * with the domain lower-cased and the local part as written.
 *
 * SECURITY: none (a test). STANDARDS: RFC 5321 4.1.2, RFC 6531.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "tap.h"

#define N ADDR_ALLOW_NULL
#define L ADDR_ALLOW_LITERAL
#define U ADDR_ALLOW_UTF8

/* One case: the path text, flags, and the expected result. */
struct path_case {
	const char *in;
	int flags;
	int ok;                 /* 0 accept, -1 refuse */
	const char *local;      /* when accepted */
	const char *domain;
	const char *rest;       /* text after '>' */
	const char *why;        /* a word the refusal must contain */
};

static const struct path_case path_cases[] = {
	/* valid forms */
	{ "<user@example.com>", 0, 0, "user", "example.com", "", NULL },
	{ "<User.Name+tag@Example.COM>", 0, 0, "User.Name+tag", "example.com", "", NULL },
	{ "<user@example.com> SIZE=100", 0, 0, "user", "example.com", " SIZE=100", NULL },
	{ " <user@example.com>", 0, 0, "user", "example.com", "", NULL },
	{ "<\"john doe\"@example.com>", 0, 0, "\"john doe\"", "example.com", "", NULL },
	{ "<a-b_c@sub-1.example.org>", 0, 0, "a-b_c", "sub-1.example.org", "", NULL },
	{ "<user@localhost>", 0, 0, "user", "localhost", "", NULL },
	/* '_' in a host name (mailx's user@my_host): Postfix takes it too */
	{ "<root@My_Host.example>", 0, 0, "root", "my_host.example", "", NULL },
	{ "<>", N, 0, "", "", "", NULL },
	{ "<user@[192.0.2.1]>", L, 0, "user", "[192.0.2.1]", "", NULL },
	{ "<user@[IPv6:2001:db8::1]>", L, 0, "user", "[ipv6:2001:db8::1]", "", NULL },
	{ "<j\xc3\xb6rg@b\xc3\xbc" "cher.example>", U, 0, "j\xc3\xb6rg",
	  "b\xc3\xbc" "cher.example", "", NULL },
	/* the null sender only where allowed */
	{ "<>", 0, -1, NULL, NULL, NULL, "null" },
	/* source routes */
	{ "<@relay.example:user@example.com>", 0, -1, NULL, NULL, NULL, "source route" },
	{ "<@a.example,@b.example:user@example.com>", 0, -1, NULL, NULL, NULL,
	  "source route" },
	/* percent hack and bang paths */
	{ "<user%evil.example@example.com>", 0, -1, NULL, NULL, NULL, "%" },
	{ "<evil.example!user@example.com>", 0, -1, NULL, NULL, NULL, "!" },
	/* quoted local parts carrying routing */
	{ "<\"user@evil.example\"@example.com>", 0, -1, NULL, NULL, NULL, "quoted" },
	{ "<\"user%evil.example\"@example.com>", 0, -1, NULL, NULL, NULL, "quoted" },
	{ "<\"evil!user\"@example.com>", 0, -1, NULL, NULL, NULL, "quoted" },
	/* address literals need the flag */
	{ "<user@[192.0.2.1]>", 0, -1, NULL, NULL, NULL, "literal" },
	{ "<user@[300.1.1.1]>", L, -1, NULL, NULL, NULL, "literal" },
	{ "<user@192.0.2.1>", 0, -1, NULL, NULL, NULL, "domain" },
	/* trailing dot, empty labels, bad labels */
	{ "<user@example.com.>", 0, -1, NULL, NULL, NULL, "dot" },
	{ "<user@example..com>", 0, -1, NULL, NULL, NULL, "domain" },
	{ "<user@.example.com>", 0, -1, NULL, NULL, NULL, "domain" },
	{ "<user@-example.com>", 0, -1, NULL, NULL, NULL, "domain" },
	{ "<user@exa_mple-.com>", 0, -1, NULL, NULL, NULL, "domain" },
	{ "<user.@example.com>", 0, -1, NULL, NULL, NULL, "dot" },
	{ "<.user@example.com>", 0, -1, NULL, NULL, NULL, "dot" },
	{ "<us..er@example.com>", 0, -1, NULL, NULL, NULL, "atom" },
	/* a domain is required: no bare postmaster */
	{ "<postmaster>", 0, -1, NULL, NULL, NULL, "domain" },
	{ "<user@>", 0, -1, NULL, NULL, NULL, "domain" },
	{ "<@example.com>", 0, -1, NULL, NULL, NULL, "source route" },
	{ "<a@b@example.com>", 0, -1, NULL, NULL, NULL, "@" },
	/* syntax */
	{ "user@example.com", 0, -1, NULL, NULL, NULL, "<>" },
	{ "<user@example.com", 0, -1, NULL, NULL, NULL, ">" },
	{ "<us er@example.com>", 0, -1, NULL, NULL, NULL, "character" },
	{ "<\"unterminated@example.com>", 0, -1, NULL, NULL, NULL, "quoted" },
	/* UTF-8 only with SMTPUTF8, and then only well-formed */
	{ "<j\xc3\xb6rg@example.com>", 0, -1, NULL, NULL, NULL, "SMTPUTF8" },
	{ "<user@b\xc3\xbc" "cher.example>", 0, -1, NULL, NULL, NULL, "SMTPUTF8" },
	{ "<j\xc3rg@example.com>", U, -1, NULL, NULL, NULL, "UTF-8" },
	{ "<j\xc0\xafrg@example.com>", U, -1, NULL, NULL, NULL, "UTF-8" },
};

/* run_path_case - one row of path_cases */
static void
run_path_case(const struct path_case *t)
{
	struct mailaddr a;
	const char *end = NULL, *why = NULL;
	int r = addr_parse_path(t->in, t->flags, &a, &end, &why);

	if (t->ok == 0) {
		if (!is_int(r, 0, "accept %s (flags %d)", t->in, t->flags)) {
			diag("reason: %s", why ? why : "(none)");
			return;
		}
		is_str(a.local, t->local, "  local part of %s", t->in);
		is_str(a.domain, t->domain, "  domain of %s", t->in);
		is_str(end, t->rest, "  end pointer after %s", t->in);
		return;
	}
	if (!is_int(r, -1, "refuse %s (flags %d)", t->in, t->flags))
		return;
	ok(why != NULL && strstr(why, t->why) != NULL, "  reason for %s mentions '%s' (%s)",
	    t->in, t->why, why ? why : "(none)");
}

/* test_lengths - the RFC 5321 4.5.3.1 limits */
static void
test_lengths(void)
{
	char buf[600], local[80];
	struct mailaddr a;
	const char *why;

	memset(local, 'a', 64);
	local[64] = '\0';
	snprintf(buf, sizeof(buf), "<%s@example.com>", local);
	is_int(addr_parse_path(buf, 0, &a, NULL, &why), 0, "64-octet local part accepted");
	memset(local, 'a', 65);
	local[65] = '\0';
	snprintf(buf, sizeof(buf), "<%s@example.com>", local);
	is_int(addr_parse_path(buf, 0, &a, NULL, &why), -1, "65-octet local part refused");
	snprintf(buf, sizeof(buf), "<u@%063d.%063d.%063d.%063d.com>", 1, 2, 3, 4);
	for (char *p = buf; *p; p++)
		if (*p == '0')
			*p = 'x';
	is_int(addr_parse_path(buf, 0, &a, NULL, &why), -1, "over-long domain refused");
	snprintf(buf, sizeof(buf), "<u@%064d.com>", 1);
	for (char *p = buf; *p; p++)
		if (*p == '0')
			*p = 'x';
	is_int(addr_parse_path(buf, 0, &a, NULL, &why), -1, "64-octet label refused");
}

/* test_bare - addr_parse, addr_format, domain_valid, addr_domain_of */
static void
test_bare(void)
{
	struct mailaddr a;
	const char *why;
	char buf[ADDR_MAX + 1];

	is_int(addr_parse("Admin@Example.NET", 0, &a, &why), 0, "bare address accepted");
	is_str(addr_format(&a, buf, sizeof(buf)), "Admin@example.net",
	    "addr_format keeps the local part, lower-cases the domain");
	is_int(addr_parse("postmaster", 0, &a, &why), -1, "bare postmaster refused");
	is_int(addr_parse("a%b@example.net", 0, &a, &why), -1, "bare percent hack refused");
	is_int(addr_parse("<x@example.net> junk", 0, &a, &why), -1,
	    "text after a path refused");
	is_int(addr_parse("<>", N, &a, &why), 0, "bare <> with ADDR_ALLOW_NULL");
	ok(a.null_sender, "  null_sender set");
	is_str(addr_format(&a, buf, sizeof(buf)), "", "  formats as empty");
	ok(domain_valid("example.com", 0), "domain_valid example.com");
	ok(!domain_valid("example.com.", 0), "domain_valid refuses trailing dot");
	ok(!domain_valid("", 0), "domain_valid refuses empty");
	ok(!domain_valid("a..b", 0), "domain_valid refuses empty label");
	ok(!domain_valid("b\xc3\xbc" "cher.example", 0), "domain_valid refuses UTF-8 by default");
	ok(domain_valid("b\xc3\xbc" "cher.example", 1), "domain_valid allows UTF-8 when asked");
	ok(!domain_valid("my_host.example", 0), "domain_valid refuses '_' by default");
	ok(domain_valid("my_host.example", DOMAIN_UNDERSCORE),
	    "domain_valid allows '_' when asked");
	is_int(addr_parse("root@my_host.example", 0, &a, &why), 0,
	    "an envelope domain may hold '_' (as Postfix accepts)");
	is_str(a.domain, "my_host.example", "  the domain with its '_'");
	is_str(addr_domain_of("a@b@c.example"), "c.example", "addr_domain_of: last '@'");
	is_str(addr_domain_of("nodomain"), "", "addr_domain_of: none");
}

/* main - run every table row and the extra checks */
int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++)
		run_path_case(&path_cases[i]);
	test_lengths();
	test_bare();
	return done_testing();
}
