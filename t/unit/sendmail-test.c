/*
 * sendmail-test.c - unit tests of postern-sendmail's message handling
 * (sendmail/sendmail_msg.c): address lists of To/Cc/Bcc (display names,
 * quoted commas, comments, groups, bare local parts; what does not parse
 * is refused), the lone dot with and without -i,
 * Bcc removal with its folded lines, the header fields added when
 * missing, and the empty line between header and body.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sendmail.h"
#include "tap.h"

/* One address-list case: a header value and the addresses it holds. */
struct addr_case {
	const char *value;
	const char *want;       /* addresses joined with a space; NULL:
	                         * refused */
};

static const struct addr_case addr_cases[] = {
	{ " a@example.org", "a@example.org" },
	{ " Ann <ann@example.org>, bob@example.org", "ann@example.org bob@example.org" },
	{ " \"Doe, John\" <jd@example.org>", "jd@example.org" },
	{ " carl@example.org (Carl, the boss)", "carl@example.org" },
	{ " team: x@example.org, y@example.org;, z@example.org",
	    "x@example.org y@example.org z@example.org" },
	{ " undisclosed-recipients:;", "" },
	{ " <q@example.org>  ,  ,", "q@example.org" },
	{ " \"a<b\" <r@example.org>", "r@example.org" },
	{ " root, Admin <admin>", "root admin" },
	{ " \"x@y.example\" <s@Example.ORG> (t@u.example)", "s@example.org" },
	{ " a@example.org b@example.org", NULL },
	{ " a@example.org@evil.example", NULL },
	{ " Name <a@example.org", NULL },
	{ " <@relay.example:x@example.org>", NULL },
};

/* joined - the list as one space-separated string (static buffer) */
static const char *
joined(const struct sm_list *l)
{
	static char buf[1024];
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < l->n; i++) {
		if (i > 0)
			strlcat(buf, " ", sizeof(buf));
		strlcat(buf, l->v[i], sizeof(buf));
	}
	return buf;
}

/* test_addrs - sm_header_addrs over the table */
static void
test_addrs(void)
{
	struct sm_list l;
	const char *why;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		memset(&l, 0, sizeof(l));
		rc = sm_header_addrs(addr_cases[i].value, &l, &why);
		if (addr_cases[i].want == NULL)
			ok(rc != 0 && l.n == 0, "refused: '%s'", addr_cases[i].value);
		else
			is_str(rc == 0 ? joined(&l) : why, addr_cases[i].want,
			    "addresses of '%s'", addr_cases[i].value);
		sm_list_free(&l);
	}
}

/* read_string - sm_read over a pipe holding s */
static int
read_string(const char *s, int ignore_dots, size_t max, struct sm_text *t)
{
	const char *why = NULL;
	int fds[2], rc;

	if (pipe(fds) == -1)
		return -1;
	if (write(fds[1], s, strlen(s)) != (ssize_t)strlen(s))
		return -1;
	close(fds[1]);
	rc = sm_read(fds[0], ignore_dots, max, t, &why);
	close(fds[0]);
	return rc;
}

/* build - read s, build with o; the queued form (static copy) */
static const char *
build(const char *s, int ignore_dots, int extract, struct sm_list *rcpts)
{
	static char out[4096];
	struct sm_hdr_opts o = { extract, "me@example.org", NULL, "host.test" };
	struct sm_text t;
	struct sm_buf b = { 0 };
	const char *why;

	if (read_string(s, ignore_dots, 1 << 20, &t) != 0)
		return "(read failed)";
	if (sm_build(&t, &o, rcpts, &b, &why) != 0)
		strlcpy(out, why, sizeof(out));
	else
		strlcpy(out, b.data ? b.data : "", sizeof(out));
	sm_buf_free(&b);
	sm_text_free(&t);
	return out;
}

/* test_message - dots, Bcc, added fields, CR LF */
static void
test_message(void)
{
	struct sm_list r = { 0 };
	struct sm_text t;
	const char *m;

	m = build("Subject: s\nDate: d\nFrom: f\nMessage-ID: <i>\n\nx\n.\ny\n", 0, 0, &r);
	is_str(m, "Subject: s\r\nDate: d\r\nFrom: f\r\nMessage-ID: <i>\r\n\r\nx\r\n",
	    "a lone dot ends the message without -i");
	m = build("Subject: s\nDate: d\nFrom: f\nMessage-ID: <i>\n\nx\n.\ny\n", 1, 0, &r);
	ok(strstr(m, "\r\nx\r\n.\r\ny\r\n") != NULL, "-i keeps the dot and what follows");
	m = build("To: a@example.org\nBcc: b@example.org,\n c@example.org\nCc: d@example.org\n"
	    "From: f\nDate: d\nMessage-ID: <i>\n\nbody\n", 0, 1, &r);
	is_str(joined(&r), "a@example.org b@example.org c@example.org d@example.org",
	    "-t: To, folded Bcc and Cc");
	ok(strstr(m, "Bcc") == NULL && strstr(m, "c@example.org") == NULL,
	    "Bcc and its folded line are removed");
	ok(strstr(m, "Cc: d@example.org\r\n") != NULL, "other fields are kept");
	sm_list_free(&r);
	m = build("To: a@example.org, Bad <b@example.org\n\nbody\n", 0, 1, &r);
	ok(strstr(m, "cannot read the addresses of To") != NULL,
	    "-t: a To: that does not parse is an error, not a guess");
	sm_list_free(&r);
	m = build("To: a@example.org\n\nbody\n", 0, 0, &r);
	is_int((long long)r.n, 0, "without -t the header gives no recipients");
	ok(strstr(m, "\r\nFrom: <me@example.org>\r\n") != NULL, "From: added");
	ok(strstr(m, "\r\nDate: ") != NULL, "Date: added");
	ok(strstr(m, "\r\nMessage-ID: <") != NULL && strstr(m, "@host.test>\r\n") != NULL,
	    "Message-ID: added with the hostname");
	ok(strstr(m, ">\r\n\r\nbody\r\n") != NULL, "then the empty line and the body");
	m = build("no header here\n", 0, 0, &r);
	ok(strstr(m, "\r\n\r\nno header here\r\n") != NULL,
	    "a body without header gets an empty line after the added fields");
	m = build("Subject: x\r\nX: y\r\n\r\nz\r\n", 0, 0, &r);
	ok(strstr(m, "Subject: x\r\nX: y\r\n") == m && strstr(m, "\r\n\r\nz\r\n") != NULL,
	    "CR LF input stays CR LF");
	is_int(read_string("0123456789", 0, 5, &t), 65, "over the size limit: EX_DATAERR");
	sm_text_free(&t);
	is_int(read_string("a\nb", 0, 100, &t), 0, "a last line without LF is read");
	is_int((long long)t.lines.n, 2, "as a line of its own");
	sm_text_free(&t);
}

/* main - run everything */
int
main(void)
{
	test_addrs();
	test_message();
	return done_testing();
}
