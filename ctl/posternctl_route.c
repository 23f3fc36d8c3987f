/*
 * posternctl_route.c - "posternctl route ADDRESS [--sender ADDR]" (which
 * route and transport a recipient takes, and why) and "posternctl
 * dkim-generate DOMAIN SELECTOR [--ed25519] [--dir DIR]" (a new DKIM key,
 * its DNS TXT record and the configuration lines to add).
 *
 * Owns: the output formats of both commands, documented in posternctl(8).
 * SECURITY: runs as its caller; route only reads the configuration.
 * dkim-generate writes one new private key file, mode 0600 (dkimkey.c,
 * through a temporary file and rename), never overwrites an existing one,
 * and prints only the PUBLIC key; the selector and domain are checked so
 * the file name stays inside DIR.
 * STANDARDS: RFC 6376 3.6.1 and 3.6.2.1 (TXT record, selector names),
 * RFC 8463 (ed25519), RFC 1035 3.3.14 (character-strings of 255 bytes).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "dkimkey.h"
#include "log.h"
#include "posternctl.h"
#include "route.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DKIM_DEFAULT_DIR SYSCONFDIR "/postern/dkim"

/* route_target - "type target" words for a transport */
static void
route_target(const struct conf_transport *t, const char *rcpt, char *buf, size_t len)
{
	const char *type = conf_transport_type_name(t->type);

	switch (t->type) {
	case TRANSPORT_MAILDIR:
	case TRANSPORT_FILE:
		snprintf(buf, len, "%s %s", type, t->path);
		break;
	case TRANSPORT_RELAY:
		snprintf(buf, len, "%s %s", type, t->host);
		break;
	case TRANSPORT_MX:
		snprintf(buf, len, "%s MX hosts of %s, port %d", type, addr_domain_of(rcpt),
		    t->port);
		break;
	case TRANSPORT_PIPE:
		snprintf(buf, len, "%s %s", type, t->argc > 0 ? t->argv[0] : "?");
		break;
	case TRANSPORT_HTTP:
		snprintf(buf, len, "%s %s", type, t->url);
		break;
	default:
		snprintf(buf, len, "%s", type);
	}
}

/* posternctl_route - print route, transport and why for an address */
int
posternctl_route(const char *config, int argc, char **argv)
{
	const char *rcpt = NULL, *sender = "";
	struct route_match m;
	char err[1024], target[600];
	struct conf *c;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sender") == 0 && i + 1 < argc)
			sender = argv[++i];
		else if (argv[i][0] != '-' && rcpt == NULL)
			rcpt = argv[i];
		else
			rcpt = NULL, i = argc + 1;
	}
	if (rcpt == NULL || i > argc || strchr(rcpt, '@') == NULL) {
		fprintf(stderr, "usage: posternctl [-c file] route ADDRESS [--sender ADDR]\n");
		return EXIT_USAGE;
	}
	if ((c = conf_load(config, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return EXIT_CONFIG;
	}
	route_lookup(c, rcpt, sender, &m);
	route_target(m.transport, rcpt, target, sizeof(target));
	if (m.route != NULL)
		printf("route: %s\n", m.route->name);
	else
		printf("route: (none)\n");
	printf("transport: %s (%s)\n", m.transport->name, target);
	printf("why: %s\n", m.why);
	conf_free(&c);
	return 0;
}

/* selector_valid - letters, digits, '-', '_' and inner dots */
static int
selector_valid(const char *s)
{
	const char *p;

	if (*s == '\0' || *s == '.' || strlen(s) > 63 || strstr(s, "..") != NULL)
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return 0;
	return 1;
}

/* print_txt - the TXT record, split into 255-byte character-strings */
static void
print_txt(const char *selector, const char *domain, const char *txt)
{
	size_t len = strlen(txt), off;

	printf("%s._domainkey.%s. IN TXT (", selector, domain);
	for (off = 0; off < len; off += 255)
		printf(" \"%.*s\"", (int)(len - off > 255 ? 255 : len - off), txt + off);
	printf(" )\n");
}

/* dkimgen_args - parse DOMAIN SELECTOR [--ed25519] [--dir DIR]; 0 or -1 */
static int
dkimgen_args(int argc, char **argv, const char **domain, const char **selector,
    enum dkim_alg *alg, const char **dir)
{
	int i, n = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ed25519") == 0)
			*alg = DKIM_ED25519;
		else if (strcmp(argv[i], "--rsa") == 0)
			*alg = DKIM_RSA;
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			*dir = argv[++i];
		else if (argv[i][0] != '-' && n == 0 && ++n)
			*domain = argv[i];
		else if (argv[i][0] != '-' && n == 1 && ++n)
			*selector = argv[i];
		else
			return -1;
	}
	return n == 2 ? 0 : -1;
}

/* posternctl_dkim_generate - write a key, print the TXT record and config */
int
posternctl_dkim_generate(const char *config, int argc, char **argv)
{
	const char *domain = NULL, *selector = NULL, *dir = DKIM_DEFAULT_DIR;
	enum dkim_alg alg = DKIM_RSA;
	char err[512], *path, *txt, *lower;
	struct stat st;

	(void)config;
	if (dkimgen_args(argc, argv, &domain, &selector, &alg, &dir) == -1) {
		fprintf(stderr, "usage: posternctl dkim-generate DOMAIN SELECTOR "
		    "[--ed25519] [--dir DIR]\n");
		return EXIT_USAGE;
	}
	if (!domain_valid(domain, 0) || !selector_valid(selector)) {
		fprintf(stderr, "posternctl: dkim-generate: expected a domain name and a "
		    "selector of letters, digits, '-', '_' and '.', got '%s' '%s'\n",
		    domain, selector);
		return EXIT_USAGE;
	}
	lower = str_lower(xstrdup(domain));
	if (mkdir_p(dir, 0700) == -1) {
		fprintf(stderr, "posternctl: dkim-generate: cannot create %s: %s\n", dir,
		    strerror(errno));
		free(lower);
		return 1;
	}
	path = xasprintf("%s/%s.%s.key", dir, lower, selector);
	if (stat(path, &st) == 0) {
		fprintf(stderr, "posternctl: dkim-generate: %s exists; not overwriting "
		    "a key (remove it first)\n", path);
		free(path);
		free(lower);
		return 1;
	}
	if (dkimkey_generate(path, alg, err, sizeof(err)) == -1 ||
	    (txt = dkimkey_txt(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "posternctl: dkim-generate: %s\n", err);
		free(path);
		free(lower);
		return 1;
	}
	printf("# wrote %s (%s, mode 0600)\n\n# DNS: publish this TXT record\n", path,
	    alg == DKIM_ED25519 ? "ed25519" : "rsa 2048");
	print_txt(selector, lower, txt);
	printf("\n# postern.conf: add this section\n"
	    "dkim \"%s._domainkey.%s\" {\n\tdomain = \"%s\"\n\tselector = \"%s\"\n"
	    "\tkey = \"%s\"\n}\n", selector, lower, lower, selector, path);
	free(txt);
	free(path);
	free(lower);
	return 0;
}
