/*
 * addr.c - RFC 5321 paths and mailboxes (MAIL FROM, RCPT TO, config and
 * sendmail arguments).
 *
 * Owns: address syntax and the domain every relay decision is made on.
 * SECURITY: untrusted network input. Every form that could route mail to
 * a domain other than the one returned is refused with a specific reason:
 * source routes, '%' or '!' in the local part (quoted or not), '@' inside
 * a quoted local part, address literals without ADDR_ALLOW_LITERAL, a
 * trailing dot, empty labels, a bare dotted-quad domain, octets >= 0x80
 * without ADDR_ALLOW_UTF8 (and malformed UTF-8 always). The domain is
 * lower-cased; the local part is kept exactly as written. An envelope
 * domain may hold '_' (a host named "my_host" puts it in the MAIL FROM
 * of its cron and mailx mail; Postfix accepts it, DNS carries it, and it
 * cannot route anywhere else); config domains may not.
 * STANDARDS: RFC 5321 4.1.2 and 4.5.3.1, RFC 1035 2.3.1, RFC 6531 3.3,
 * RFC 3629 (UTF-8).
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "util.h"

/* is_atext - RFC 5322 atext, minus '%' and '!' (refused separately) */
static int
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("#$&'*+-/=?^_`{|}~", c) != NULL;
}

/* utf8_seq - length of the well-formed UTF-8 sequence at p (max n), 0 if bad */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* high_octets_ok - 1 if s[0..n) has no octet >= 0x80, or only valid
 * UTF-8 when allowed; *why says which rule failed */
static int
high_octets_ok(const char *s, size_t n, int allow_utf8, const char **why)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (!allow_utf8) {
			*why = "non-ASCII addresses need SMTPUTF8";
			return 0;
		}
		if ((k = utf8_seq(p + i, n - i)) == 0) {
			*why = "malformed UTF-8 in address";
			return 0;
		}
		i += k;
	}
	return 1;
}

/* domain_label_ok - one LDH label (UTF-8 octets, '_' allowed when asked) */
static int
domain_label_ok(const char *l, size_t n, int allow)
{
	size_t i;

	if (n == 0 || n > 63 || l[0] == '-' || l[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)l[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-')
			continue;
		if ((c >= 0x80 && (allow & DOMAIN_UTF8)) ||
		    (c == '_' && (allow & DOMAIN_UNDERSCORE)))
			continue;
		return 0;
	}
	return 1;
}

/* all_digits - 1 if l[0..n) is only digits (an all-numeric TLD) */
static int
all_digits(const char *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (l[i] < '0' || l[i] > '9')
			return 0;
	return n > 0;
}

/* domain_valid - RFC 1035 host name: LDH labels, no trailing dot */
int
domain_valid(const char *d, int allow)
{
	const char *p = d, *dot;
	size_t n = strlen(d), len;
	const char *why;

	if (n == 0 || n > 253)
		return 0;
	if (!high_octets_ok(d, n, allow & DOMAIN_UTF8, &why))
		return 0;
	for (;;) {
		dot = strchr(p, '.');
		len = dot ? (size_t)(dot - p) : strlen(p);
		if (!domain_label_ok(p, len, allow))
			return 0;
		if (dot == NULL)
			return !all_digits(p, len);     /* no bare 192.0.2.1 */
		p = dot + 1;
	}
}

/* parse_literal - "[IPv4]" or "[IPv6:...]" of n bytes */
static int
parse_literal(const char *s, size_t n, const char **why)
{
	char buf[64];
	unsigned char bin[16];

	if (n < 3 || s[n - 1] != ']' || n - 2 >= sizeof(buf)) {
		*why = "malformed address literal";
		return -1;
	}
	memcpy(buf, s + 1, n - 2);
	buf[n - 2] = '\0';
	if (strncasecmp(buf, "IPv6:", 5) == 0 ? inet_pton(AF_INET6, buf + 5, bin) == 1 :
	    inet_pton(AF_INET, buf, bin) == 1)
		return 0;
	*why = "malformed address literal";
	return -1;
}

/* parse_quoted - quoted local part at s (starts with '"'), return its
 * length with the quotes, or 0 with *why */
static size_t
parse_quoted(const char *s, size_t n, const char **why)
{
	size_t i;

	for (i = 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"')
			return i + 1;
		if (c == '\\') {
			if (++i >= n || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				break;
			c = (unsigned char)s[i];
		} else if (c < 0x20 || c == 0x7f)
			break;
		if (c == '@' || c == '%' || c == '!') {
			*why = "'@', '%' and '!' are not accepted in a quoted local part";
			return 0;
		}
	}
	*why = "malformed quoted local part";
	return 0;
}

/* parse_dotstring - unquoted local part s[0..n): atoms and single dots */
static int
parse_dotstring(const char *s, size_t n, int flags, const char **why)
{
	size_t i;

	if (s[0] == '.' || s[n - 1] == '.') {
		*why = "a local part may not start or end with a dot";
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%' || c == '!') {
			*why = "'%' and '!' routing is not accepted";
			return -1;
		}
		if (c == '.' && s[i + 1] == '.') {
			*why = "empty atom in local part";
			return -1;
		}
		if (c == '.' || is_atext(c) || (c >= 0x80 && (flags & ADDR_ALLOW_UTF8)))
			continue;
		*why = c >= 0x80 ? "non-ASCII addresses need SMTPUTF8" :
		    "invalid character in local part";
		return -1;
	}
	return 0;
}

/* parse_local - local part of mbox (n bytes before the last '@') */
static int
parse_local(const char *s, size_t n, int flags, struct mailaddr *a, const char **why)
{
	if (n == 0) {
		*why = "empty local part";
		return -1;
	}
	if (n > ADDR_LOCAL_MAX) {
		*why = "local part longer than 64 octets";
		return -1;
	}
	if (!high_octets_ok(s, n, flags & ADDR_ALLOW_UTF8, why))
		return -1;
	if (s[0] == '"') {
		if (parse_quoted(s, n, why) != n) {
			if (*why == NULL)
				*why = "malformed quoted local part";
			return -1;
		}
	} else if (parse_dotstring(s, n, flags, why) == -1)
		return -1;
	memcpy(a->local, s, n);
	a->local[n] = '\0';
	return 0;
}

/* parse_domain - domain part d[0..n) into a (lower-cased) */
static int
parse_domain(const char *d, size_t n, int flags, struct mailaddr *a, const char **why)
{
	if (n == 0) {
		*why = "a domain is required";
		return -1;
	}
	if (n > 253) {
		*why = "domain longer than 253 octets";
		return -1;
	}
	if (d[0] == '[') {
		if (!(flags & ADDR_ALLOW_LITERAL)) {
			*why = "address literals are not accepted";
			return -1;
		}
		if (parse_literal(d, n, why) == -1)
			return -1;
	} else {
		if (!high_octets_ok(d, n, flags & ADDR_ALLOW_UTF8, why))
			return -1;
		if (d[n - 1] == '.') {
			*why = "a domain may not end with a dot";
			return -1;
		}
		memcpy(a->domain, d, n);
		a->domain[n] = '\0';
		if (!domain_valid(a->domain, DOMAIN_UNDERSCORE |
		    ((flags & ADDR_ALLOW_UTF8) ? DOMAIN_UTF8 : 0))) {
			*why = "invalid domain";
			return -1;
		}
	}
	memcpy(a->domain, d, n);
	a->domain[n] = '\0';
	str_lower(a->domain);
	return 0;
}

/* local_end - length of the local part at s (up to the '@' that ends
 * it, skipping a quoted string), or n if there is none */
static size_t
local_end(const char *s, size_t n)
{
	size_t i = 0;

	if (n > 0 && s[0] == '"') {
		for (i = 1; i < n && s[i] != '"'; i++)
			if (s[i] == '\\' && i + 1 < n)
				i++;
		if (i < n)
			i++;
	}
	for (; i < n; i++)
		if (s[i] == '@')
			return i;
	return n;
}

/* parse_mailbox - "local@domain" of exactly n bytes */
static int
parse_mailbox(const char *s, size_t n, int flags, struct mailaddr *a, const char **why)
{
	size_t at;

	memset(a, 0, sizeof(*a));
	if (n == 0) {
		*why = "empty address";
		return -1;
	}
	if (n > ADDR_MAX - 2) {
		*why = "address longer than 254 octets";
		return -1;
	}
	if (memchr(s, '\0', n) != NULL) {
		*why = "NUL in address";
		return -1;
	}
	if (s[0] == '@') {
		*why = "source routes are not accepted";
		return -1;
	}
	at = local_end(s, n);
	if (at == n) {
		*why = "a domain is required";
		return -1;
	}
	if (parse_local(s, at, flags, a, why) == -1)
		return -1;
	if (memchr(s + at + 1, '@', n - at - 1) != NULL) {
		*why = "more than one '@' in address";
		return -1;
	}
	return parse_domain(s + at + 1, n - at - 1, flags, a, why);
}

/* addr_parse_path - "<mailbox>" or "<>" at s; *end after '>' */
int
addr_parse_path(const char *s, int flags, struct mailaddr *a, const char **end,
    const char **why)
{
	const char *close;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	memset(a, 0, sizeof(*a));
	while (*s == ' ')
		s++;
	if (*s != '<') {
		*why = "the address must be enclosed in <>";
		return -1;
	}
	s++;
	if (*s == '@') {
		*why = "source routes are not accepted";
		return -1;
	}
	/* the closing '>' is the first one outside a quoted local part */
	if (*s == '"' && parse_quoted(s, strlen(s), why) == 0)
		return -1;
	close = s + local_end(s, strlen(s));
	if ((close = strchr(s[0] == '"' ? close : s, '>')) == NULL) {
		*why = "missing '>' after the address";
		return -1;
	}
	if (close == s) {
		if (!(flags & ADDR_ALLOW_NULL)) {
			*why = "the null address <> is not accepted here";
			return -1;
		}
		a->null_sender = 1;
	} else if (parse_mailbox(s, (size_t)(close - s), flags, a, why) == -1)
		return -1;
	if (end != NULL)
		*end = close + 1;
	return 0;
}

/* addr_parse - a bare "local@domain" (or a whole "<...>" path) */
int
addr_parse(const char *s, int flags, struct mailaddr *a, const char **why)
{
	const char *end, *dummy;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	if (s[0] == '<') {
		if (addr_parse_path(s, flags, a, &end, why) == -1)
			return -1;
		if (*end != '\0') {
			*why = "text after the address";
			return -1;
		}
		return 0;
	}
	return parse_mailbox(s, strlen(s), flags, a, why);
}

/* addr_format - "local@domain", or "" for the null sender */
const char *
addr_format(const struct mailaddr *a, char *buf, size_t len)
{
	if (a->null_sender || a->local[0] == '\0')
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, "%s@%s", a->local, a->domain);
	return buf;
}

/* addr_domain_of - the domain after the last '@', or "" */
const char *
addr_domain_of(const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;

	return at ? at + 1 : "";
}
