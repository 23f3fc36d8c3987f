/*
 * conf-test.c - tests of common/conf.c: the shipped configurations load
 * with the documented values, and every kind of bad configuration gives
 * one line naming the file, the line and the option.
 *
 * Reads $POSTERN_SRCDIR/conf/postern.conf and conf/quickstart.conf
 * (POSTERN_SRCDIR defaults to "."); writes bad configurations into a
 * mkdtemp(3) directory that it removes again.
 * SECURITY: none (a test). STANDARDS: none.
 */
#include "config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "tap.h"

static char tmpdir[] = "/tmp/postern-conf-test.XXXXXX";

/* One bad configuration and what its error must say. */
struct bad_case {
	const char *name;
	const char *text;
	int line;               /* expected line, 0 = "FILE: " form */
	const char *option;     /* quoted in the message */
	const char *expect;     /* another fragment of the message */
};

static const struct bad_case bad_cases[] = {
	{ "line counted right after comments",
	  "# one\n# two\nuser = \"x\" # three\n// four\n/* five\n six */\nbogus = 1\n", 7,
	  "bogus", "no such option" },
	{ "comment inside a list",
	  "trusted_networks = {\n \"10.0.0.0/8\", # office\n \"10.0.0.300/8\"\n}\n", 3,
	  "trusted_networks", "10.0.0.300" },
	{ "listen port not a number",
	  "listen smtp {\n\taddress = \"127.0.0.1:notaport\"\n}\n", 2, "address", "65535" },
	{ "unknown option", "user = \"postern\"\nbogus_option = 1\n", 2,
	  "bogus_option", "no such option" },
	{ "bad size", "user = \"x\"\n\nmax_message_size = ten\n", 3,
	  "max_message_size", "got 'ten'" },
	{ "bad duration", "smtpd_timeout = 5x\n", 1, "smtpd_timeout", "duration" },
	{ "bad duration in queue", "queue {\n\tretry_base = soon\n}\n", 2,
	  "retry_base", "got 'soon'" },
	{ "bad CIDR", "trusted_networks = { \"10.0.0.0/8\",\n \"10.0.0.300/8\" }\n", 2,
	  "trusted_networks", "10.0.0.300/8" },
	{ "bad CIDR prefix", "trusted_networks = { \"10.0.0.0/33\" }\n", 1,
	  "trusted_networks", "network" },
	{ "relay transport without host",
	  "transport smarthost {\n\ttype = relay\n\ttimeout = 30s\n}\n"
	  "default_transport = smarthost\n", 2, "host", "relay transport 'smarthost'" },
	{ "empty transport after a root list",
	  "trusted_networks = { \"10.0.0.0/8\" }\ntransport t {\n}\n", 3, "type",
	  "maildir, relay, mx" },
	{ "maildir transport without path", "transport box {\n\ttype = maildir\n}\n", 2,
	  "path", "maildir" },
	{ "bad transport type", "transport x {\n\ttype = carrier-pigeon\n}\n", 2,
	  "type", "maildir, relay, mx" },
	{ "unknown default_transport",
	  "transport local {\n\ttype = maildir\n\tpath = \"/tmp/m\"\n}\n"
	  "default_transport = \"nowhere\"\n", 5, "default_transport", "nowhere" },
	{ "dkim without key", "\ndkim example.com {\n\tselector = \"s1\"\n}\n", 3,
	  "key", "example.com" },
	{ "route with a bad pattern",
	  "transport t { type = mx }\nroute \"a*@example.com\" {\n\ttransport = t\n}\n", 3,
	  "route", "a*@example.com" },
	{ "route to an unknown transport",
	  "transport t { type = mx }\n\nroute \"*@example.com\" { transport = nowhere }\n", 3,
	  "transport", "nowhere" },
	{ "route without transport", "route \"*@*\" {\n\tsender = \"*@x.org\"\n}\n", 2,
	  "transport", "route '*@*'" },
	{ "pipe without command", "transport p {\n\ttype = pipe\n}\n", 2,
	  "command", "pipe transport 'p'" },
	{ "http with a bad URL", "transport h {\n\ttype = http\n\turl = \"ftp://x\"\n}\n", 2,
	  "url", "ftp://x" },
	{ "file template with a slash",
	  "transport f {\n\ttype = file\n\tpath = \"/tmp/f\"\n\ttemplate = \"a/%i\"\n}\n", 2,
	  "template", "a/%i" },
	{ "bad dkim canonicalization", "dkim_canonicalization = \"loose\"\n", 1,
	  "dkim_canonicalization", "loose" },
	{ "bad dkim header name", "dkim_signed_headers = { \"From\", \"Bad Name\" }\n", 1,
	  "dkim_signed_headers", "Bad Name" },
	{ "dkim without selector", "dkim example.com {\n\tkey = \"/k\"\n}\n", 2,
	  "selector", "example.com" },
	{ "dkim title not a domain", "dkim bad..domain {\n\tselector = s\n\tkey = k\n}\n", 2,
	  "dkim", "bad..domain" },
	{ "bad log_level", "log_level = \"loud\"\n", 1, "log_level", "debug" },
	{ "processes out of range", "smtpd_processes = 17\n", 1, "smtpd_processes",
	  "1 to 16" },
	{ "processes zero", "delivery_processes = 0\n", 1, "delivery_processes", "1 to 16" },
	{ "max_recipients out of range", "max_recipients = 100001\n", 1, "max_recipients",
	  "100000" },
	{ "retry_factor below 1", "queue {\n retry_factor = 0.5\n}\n", 2, "retry_factor",
	  "at least 1" },
	{ "retry_jitter above 1", "queue {\n retry_jitter = 1.5\n}\n", 2, "retry_jitter",
	  "0 to 1" },
	{ "concurrency out of range", "queue {\n concurrency = 0\n}\n", 2, "concurrency",
	  "10000" },
	{ "relay domain with trailing dot", "relay_domains = { \"example.com.\" }\n", 1,
	  "relay_domains", "example.com." },
	{ "bad listen address", "listen smtp {\n\taddress = \"localhost\"\n}\n", 2,
	  "address", "host:port" },
	{ "bad relay host", "transport s {\n\ttype = relay\n\thost = \"a:b:c\"\n}\n", 3,
	  "host", "a:b:c" },
	{ "bad generate", "dkim e.com {\n selector = s\n key = k\n generate = maybe\n}\n", 4,
	  "generate", "true or false" },
	{ "bad http_listen", "http_listen = \"8025\"\n", 1, "http_listen", "8025" },
	{ "duplicate listen title",
	  "listen a {\n address = \"127.0.0.1:25\"\n}\nlisten a {\n address = \"127.0.0.1:26\"\n}\n",
	  4, "listen", "duplicate title 'a'" },
	/* control bytes would reach the greeting, headers and logs (issue 19) */
	{ "CR LF in hostname", "hostname = \"evil.test\\r\\n250-INJECTED\"\n", 1,
	  "hostname", "expected no control characters (CR, LF, tab, ...), got "
	  "'evil.test\\r\\n250-INJECTED'" },
	{ "raw tab in a value", "user = \"post\tern\"\n", 1, "user",
	  "got 'post\\tern'" },
	{ "control byte in a pipe command",
	  "transport p {\n type = pipe\n command = \"/bin/cat \\x01\"\n}\n", 3,
	  "command", "got '/bin/cat \\x01'" },
	{ "CR in a list value", "relay_domains = { \"a.test\", \"b\\rtest\" }\n", 1,
	  "relay_domains", "got 'b\\rtest'" },
	{ "LF in a section title",
	  "transport \"a\\nb\" {\n type = relay\n host = \"127.0.0.1:25\"\n}\n", 4,
	  "transport", "a title without control characters, got 'a\\nb'" },
	{ "escaped NUL, hex", "hostname = \"ev\\x00il.test\"\n", 1, "hostname",
	  "an escaped NUL byte" },
	{ "escaped NUL, octal", "user = \"ab\\000\"\n", 1, "user",
	  "an escaped NUL byte" },
	{ "unterminated quote", "user = \"postern\"\nhostname = \"abc\n"
	  "spool_dir = \"/x\"\nrun_dir = \"/y\"\n", 2, "hostname",
	  "a quoted string that does not end on its line (a missing closing \"?)" },
};

/* write_file - create dir/name with text; returns the path (static) */
static const char *
write_file(const char *name, const char *text)
{
	static char path[PATH_MAX];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if ((fp = fopen(path, "w")) == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* run_bad_case - load one bad configuration and check the message */
static void
run_bad_case(const struct bad_case *t, int n)
{
	char name[32], err[1024], prefix[PATH_MAX + 32], opt[128];
	const char *path;
	struct conf *c;
	int pass = 1;

	snprintf(name, sizeof(name), "bad%02d.conf", n);
	path = write_file(name, t->text);
	c = conf_load(path, err, sizeof(err));
	if (!ok(c == NULL, "%s: refused", t->name)) {
		conf_free(&c);
		return;
	}
	if (t->line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, t->line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", path);
	snprintf(opt, sizeof(opt), "'%s'", t->option);
	pass &= ok(strncmp(err, prefix, strlen(prefix)) == 0,
	    "  %s: names file and line %d", t->name, t->line);
	pass &= ok(strstr(err, opt) != NULL, "  %s: names %s", t->name, opt);
	pass &= ok(strstr(err, t->expect) != NULL, "  %s: says '%s'", t->name, t->expect);
	pass &= ok(strchr(err, '\n') == NULL, "  %s: one line", t->name);
	if (!pass)
		diag("message was: %s", err);
	unlink(path);
}

/* sa4 - a sockaddr_in for a dotted quad */
static struct sockaddr_in
sa4(const char *s)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, s, &sin.sin_addr);
	return sin;
}

/* sa6 - a sockaddr_in6 for an IPv6 address */
static struct sockaddr_in6
sa6(const char *s)
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, s, &sin6.sin6_addr);
	return sin6;
}

/* test_sample - conf/postern.conf: every documented default */
static void
test_sample(const char *srcdir)
{
	char path[PATH_MAX], err[1024];
	struct conf *c;
	struct sockaddr_in a;
	struct sockaddr_in6 b;

	snprintf(path, sizeof(path), "%s/conf/postern.conf", srcdir);
	c = conf_load(path, err, sizeof(err));
	if (!ok(c != NULL, "postern.conf loads")) {
		diag("%s", err);
		return;
	}
	is_str(c->user, "postern", "user");
	is_str(c->spool_dir, "/var/spool/postern", "spool_dir");
	is_str(c->run_dir, "/run/postern", "run_dir");
	is_str(c->libexec_dir, LIBEXECDIR, "libexec_dir defaults to LIBEXECDIR");
	ok(c->hostname != NULL && c->hostname[0] != '\0', "hostname from gethostname");
	is_int(c->log_level, LOG_LEVEL_INFO, "log_level");
	is_int(c->smtpd_processes, 2, "smtpd_processes");
	is_int(c->delivery_processes, 2, "delivery_processes");
	is_int(c->shutdown_timeout, 30, "shutdown_timeout");
	is_int((long long)c->nlisten, 2, "two listeners, for local applications");
	if (c->nlisten == 2) {
		is_str(c->listen[0].name, "smtp", "  the first's title");
		is_str(c->listen[0].address, "127.0.0.1:25", "  its address");
		is_str(c->listen[1].address, "[::1]:25", "  the second on ::1");
	}
	is_int((long long)c->trusted_networks.n, 2, "two trusted networks");
	a = sa4("127.0.0.1");
	ok(netlist_match(&c->trusted_networks, (struct sockaddr *)&a), "  127.0.0.1 trusted");
	a = sa4("10.0.0.1");
	ok(!netlist_match(&c->trusted_networks, (struct sockaddr *)&a), "  10.0.0.1 not");
	b = sa6("::1");
	ok(netlist_match(&c->trusted_networks, (struct sockaddr *)&b), "  ::1 trusted");
	b = sa6("::ffff:127.0.0.2");
	ok(netlist_match(&c->trusted_networks, (struct sockaddr *)&b), "  ::ffff:127.0.0.2 trusted");
	b = sa6("::2");
	ok(!netlist_match(&c->trusted_networks, (struct sockaddr *)&b), "  ::2 not");
	is_int((long long)c->nrelay_domains, 0, "no relay domains");
	is_int((long long)c->max_message_size, 25 * 1024 * 1024, "max_message_size 25M");
	is_int(c->max_recipients, 100, "max_recipients");
	is_int(c->smtpd_timeout, 300, "smtpd_timeout");
	is_int(c->queue.retry_base, 300, "queue.retry_base");
	ok(c->queue.retry_factor == 2.0, "queue.retry_factor");
	is_int(c->queue.retry_cap, 4 * 3600, "queue.retry_cap");
	ok(c->queue.retry_jitter == 0.2, "queue.retry_jitter");
	is_int(c->queue.lifetime, 5 * 86400, "queue.lifetime");
	is_int(c->queue.concurrency, 20, "queue.concurrency");
	is_int((long long)c->ntransport, 1, "one transport");
	is_str(c->default_transport ? c->default_transport->name : NULL, "internet",
	    "default_transport");
	is_int(c->transport[0].type, TRANSPORT_MX, "  by MX");
	is_int(c->transport[0].port, 25, "  port 25");
	is_int(c->transport[0].tls, CONF_TLS_MAY, "  tls = may");
	is_int((long long)c->ndkim, 0, "no dkim");
	is_str(c->http_listen, "127.0.0.1:8025", "http_listen");
	conf_free(&c);
	ok(c == NULL, "conf_free clears the pointer");
}

/* test_quickstart - conf/quickstart.conf, relative paths made absolute */
static void
test_quickstart(const char *srcdir)
{
	char path[PATH_MAX], err[1024], cwd[PATH_MAX], want[PATH_MAX + 32];
	struct conf *c;

	snprintf(path, sizeof(path), "%s/conf/quickstart.conf", srcdir);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		strcpy(cwd, "/");
	c = conf_load(path, err, sizeof(err));
	if (!ok(c != NULL, "quickstart.conf loads")) {
		diag("%s", err);
		return;
	}
	is_str(c->hostname, "postern.localhost", "hostname");
	snprintf(want, sizeof(want), "%s/run/spool", cwd);
	is_str(c->spool_dir, want, "spool_dir made absolute");
	snprintf(want, sizeof(want), "%s/run", cwd);
	is_str(c->run_dir, want, "run_dir made absolute");
	is_str(c->libexec_dir, cwd, "libexec_dir '.' is the cwd");
	is_int(c->smtpd_processes, 1, "smtpd_processes");
	is_int(c->shutdown_timeout, 5, "shutdown_timeout");
	is_str(c->nlisten ? c->listen[0].address : NULL, "127.0.0.1:2525", "listen");
	is_int(c->queue.retry_base, 10, "queue.retry_base");
	is_int(c->queue.retry_cap, 300, "queue.retry_cap");
	ok(c->queue.retry_factor == 2.0, "queue.retry_factor default");
	snprintf(want, sizeof(want), "%s/run/mail", cwd);
	is_str(c->default_transport->path, want, "maildir path made absolute");
	is_int((long long)c->ndkim, 1, "one dkim domain");
	ok(conf_dkim_for(c, "EXAMPLE.com") == &c->dkim[0], "conf_dkim_for ignores case");
	ok(conf_dkim_for(c, "example.org") == NULL, "conf_dkim_for other domain");
	is_str(c->dkim[0].selector, "dev", "  selector");
	snprintf(want, sizeof(want), "%s/run/dkim/example.com.dev.key", cwd);
	is_str(c->dkim[0].key, want, "  key made absolute");
	ok(c->dkim[0].generate, "  generate");
	conf_free(&c);
}

/* test_defaults - an empty file, the built-in transport, and a dump */
static void
test_defaults(void)
{
	char err[1024], *dump = NULL;
	size_t dumplen = 0;
	struct conf *c;
	FILE *fp;

	c = conf_load(write_file("empty.conf", "# nothing\n"), err, sizeof(err));
	if (!ok(c != NULL, "empty configuration loads")) {
		diag("%s", err);
		return;
	}
	is_int((long long)c->nlisten, 0, "no listener by default");
	is_str(c->default_transport->name, "local", "built-in transport 'local'");
	is_str(c->default_transport->path, "/var/mail/postern", "  at /var/mail/postern");
	is_str(c->run_dir, "/run/postern", "run_dir default");
	is_int((long long)c->trusted_networks.n, 2, "trusted_networks default");
	fp = open_memstream(&dump, &dumplen);
	conf_dump(c, fp);
	fclose(fp);
	ok(strstr(dump, "\nsmtpd_processes = 2\n") != NULL, "conf_dump has name = value");
	ok(strstr(dump, "transport.local.path = /var/mail/postern\n") != NULL,
	    "conf_dump has the transport");
	free(dump);
	conf_free(&c);
	c = conf_load(write_file("rd.conf", "relay_domains = { \"Example.COM\" }\n"),
	    err, sizeof(err));
	ok(c != NULL && conf_is_relay_domain(c, "example.com") &&
	    conf_is_relay_domain(c, "EXAMPLE.com") && !conf_is_relay_domain(c, "x.com"),
	    "relay_domains lower-cased and matched");
	if (c)
		is_str(c->relay_domains[0], "example.com", "  stored lower-case");
	conf_free(&c);
	c = conf_load("/nonexistent/postern.conf", err, sizeof(err));
	ok(c == NULL && strncmp(err, "/nonexistent/postern.conf: ", 27) == 0,
	    "missing file: names it (%s)", err);
}

/* test_syntaxes - parse_duration and parse_size */
static void
test_syntaxes(void)
{
	static const struct {
		const char *s;
		int r;
		long long v;
	} d[] = { { "30", 0, 30 }, { "30s", 0, 30 }, { "5m", 0, 300 }, { "2h", 0, 7200 },
		  { "5d", 0, 432000 }, { "", -1, 0 }, { "s", -1, 0 }, { "5x", -1, 0 },
		  { "-5", -1, 0 }, { "5m5", -1, 0 }, { "99999999999", -1, 0 } },
	  z[] = { { "512", 0, 512 }, { "64K", 0, 65536 }, { "10M", 0, 10485760 },
		  { "1G", 0, 1073741824 }, { "ten", -1, 0 }, { "10Q", -1, 0 },
		  { "", -1, 0 }, { "-1", -1, 0 } };
	size_t i;
	time_t t;
	size_t n;

	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		t = 0;
		int r = parse_duration(d[i].s, &t);
		ok(r == d[i].r && (r == -1 || t == d[i].v), "parse_duration('%s')", d[i].s);
	}
	for (i = 0; i < sizeof(z) / sizeof(z[0]); i++) {
		n = 0;
		int r = parse_size(z[i].s, &n);
		ok(r == z[i].r && (r == -1 || (long long)n == z[i].v), "parse_size('%s')", z[i].s);
	}
}

/* test_file_errors - what cannot be a configuration file as text: a NUL
 * byte (named with its line) and a file over the 1 MiB limit (named) */
static void
test_file_errors(void)
{
	char path[PATH_MAX], err[1024], want[PATH_MAX + 16];
	struct conf *c;
	FILE *fp;
	int i;

	snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
	fp = fopen(path, "w");
	fputs("user = \"postern\"\nhostname = \"a", fp);
	fputc('\0', fp);
	fputs("b\"\n", fp);
	fclose(fp);
	c = conf_load(path, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:2: a NUL byte", path);
	ok(c == NULL && strncmp(err, want, strlen(want)) == 0,
	    "NUL byte in the file: says what and where (%s)", err);
	conf_free(&c);
	fp = fopen(path, "w");
	for (i = 0; i < 1100 * 1024 / 32; i++)
		fputs("# a comment of thirty-two bytes\n", fp);
	fclose(fp);
	c = conf_load(path, err, sizeof(err));
	ok(c == NULL && strstr(err, "larger than the limit of 1048576 bytes") != NULL,
	    "a file over the limit: names the limit (%s)", err);
	conf_free(&c);
	unlink(path);
}

/* main - good files, bad files, syntaxes */
int
main(void)
{
	const char *srcdir = getenv("POSTERN_SRCDIR");
	size_t i;

	if (srcdir == NULL || *srcdir == '\0')
		srcdir = ".";
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	log_init("conf-test", 1, LOG_LEVEL_WARNING);
	test_sample(srcdir);
	test_quickstart(srcdir);
	test_defaults();
	test_syntaxes();
	test_file_errors();
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		run_bad_case(&bad_cases[i], (int)i);
	unlink(write_file("empty.conf", ""));
	unlink(write_file("rd.conf", ""));
	rmdir(tmpdir);
	return done_testing();
}
