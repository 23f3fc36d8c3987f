/*
 * addr.h - RFC 5321 mail addresses as they appear in MAIL FROM / RCPT TO.
 *
 * STANDARDS: RFC 5321 4.1.2 (Path, Mailbox, Local-part, Domain), RFC 6531
 * (UTF-8 local parts and domains, SMTPUTF8).
 * SECURITY: the relay decision is made on the domain this parser returns,
 * so it refuses every form that could make a relay reach a domain other
 * than the one it checked: source routes (@a,@b:u@d), a '%' or '!' in an
 * unquoted local part (percent hack, bang path), a quoted local part that
 * contains '@', '%' or '!', address literals ([192.0.2.1]) unless
 * explicitly allowed, a domain with a trailing dot, and empty labels. The
 * domain is lower-cased; the local part is kept as written.
 */
#ifndef POSTERN_ADDR_H
#define POSTERN_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX 64       /* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255     /* RFC 5321 4.5.3.1.2 */
#define ADDR_MAX 256            /* forward-path incl. <> (4.5.3.1.3) */

struct mailaddr {
	char local[ADDR_LOCAL_MAX + 1];
	char domain[ADDR_DOMAIN_MAX + 1];
	int null_sender;        /* "<>" */
};

/* Parse flags */
#define ADDR_ALLOW_NULL 0x1     /* accept "<>" (MAIL FROM) */
#define ADDR_ALLOW_LITERAL 0x2  /* accept [IPv4] / [IPv6:...] domains */
#define ADDR_ALLOW_UTF8 0x4     /* accept octets >= 0x80 (SMTPUTF8) */

/* addr_parse_path - parse "<local@domain>" at the start of s (after
 * "MAIL FROM:" / "RCPT TO:"); *end points after '>'. 0, or -1 with *why a
 * human reason ("source routes are not accepted"). */
int addr_parse_path(const char *s, int flags, struct mailaddr *a, const char **end,
    const char **why);
/* addr_parse - a bare "local@domain" (config, sendmail arguments) */
int addr_parse(const char *s, int flags, struct mailaddr *a, const char **why);
/* addr_format - "local@domain" or "" for the null sender */
const char *addr_format(const struct mailaddr *a, char *buf, size_t len);
/* domain_valid - RFC 1035 host name rules (LDH labels, no trailing dot);
 * allow: DOMAIN_UTF8 (octets >= 0x80, well-formed UTF-8; 1 for short)
 * and DOMAIN_UNDERSCORE ('_' in a label, as in envelope addresses) */
#define DOMAIN_UTF8 0x1
#define DOMAIN_UNDERSCORE 0x2
int domain_valid(const char *d, int allow);
/* addr_domain_of - pointer to the domain part of "local@domain" (after the
 * last '@'), or "" */
const char *addr_domain_of(const char *addr);

#endif
