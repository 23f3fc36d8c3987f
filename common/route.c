/*
 * route.c - the route table: address patterns, their specificity, and
 * the lookup that picks a transport for a recipient (and sender).
 *
 * Owns: the pattern syntax and ranking described in route.h, the "why"
 * text posternctl route prints, and the destination keys queued groups
 * deliveries by.
 * SECURITY: pure functions over the loaded configuration and addresses
 * that came from SMTP/HTTP clients; never allocates, never logs, bounds
 * every copy. A pattern never widens on tricks: the domain is what follows
 * the LAST '@', compared whole or as a dot-separated suffix.
 * STANDARDS: RFC 5321 4.1.2 (local-part@domain), RFC 1035 2.3.1 (names).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "conf.h"
#include "route.h"

/* Rank = class * ROUTE_CLASS_STEP - (suffix length within a class). */
#define ROUTE_CLASS_STEP 1024

/* The class names, by enum route_class. */
static const char *const class_names[] = {
	"exact address", "domain", "subdomain", "local part", "catch-all", "none"
};

/* route_class_name - words for a class */
const char *
route_class_name(enum route_class class)
{
	return class_names[class <= ROUTE_NONE ? class : ROUTE_NONE];
}

/* split_at - the position of the last '@' of s, or NULL */
static const char *
split_at(const char *s)
{
	return strrchr(s, '@');
}

/* route_pattern_class - which of the five forms pat has */
enum route_class
route_pattern_class(const char *pat)
{
	const char *at = split_at(pat), *dom;
	int anylocal;

	if (at == NULL)
		return ROUTE_NONE;
	dom = at + 1;
	anylocal = at - pat == 1 && pat[0] == '*';
	if (strcmp(dom, "*") == 0)
		return anylocal ? ROUTE_ANY : ROUTE_LOCAL;
	if (strncmp(dom, "*.", 2) == 0)
		return anylocal ? ROUTE_SUBDOMAIN : ROUTE_NONE;
	return anylocal ? ROUTE_DOMAIN : ROUTE_EXACT;
}

/* route_pattern_valid - a well-formed pattern of a known form */
int
route_pattern_valid(const char *pat)
{
	const char *at = split_at(pat), *dom;
	enum route_class cl = route_pattern_class(pat);

	if (at == NULL || cl == ROUTE_NONE || at == pat || strlen(pat) > 320)
		return 0;
	dom = at + 1;
	/* a literal local part: no wildcard, no second '@' */
	if ((cl == ROUTE_EXACT || cl == ROUTE_LOCAL) &&
	    (memchr(pat, '*', (size_t)(at - pat)) != NULL ||
	    memchr(pat, '@', (size_t)(at - pat)) != NULL))
		return 0;
	if (cl == ROUTE_DOMAIN || cl == ROUTE_EXACT)
		return domain_valid(dom, 1);
	if (cl == ROUTE_SUBDOMAIN)
		return domain_valid(dom + 2, 1);
	return 1;
}

/* domain_suffix - 1 if dom is a strict subdomain of suffix */
static int
domain_suffix(const char *dom, const char *suffix)
{
	size_t dl = strlen(dom), sl = strlen(suffix);

	return dl > sl + 1 && dom[dl - sl - 1] == '.' &&
	    strcasecmp(dom + dl - sl, suffix) == 0;
}

/* route_pattern_match - 0, or the rank of pat's match of addr */
int
route_pattern_match(const char *pat, const char *addr)
{
	const char *pat_at = split_at(pat), *at = split_at(addr);
	enum route_class cl = route_pattern_class(pat);
	size_t llen;

	if (pat_at == NULL || cl == ROUTE_NONE)
		return 0;
	if (at == NULL)         /* the null sender: only the catch-all */
		return cl == ROUTE_ANY ? ROUTE_ANY * ROUTE_CLASS_STEP + 1 : 0;
	llen = (size_t)(pat_at - pat);
	switch (cl) {
	case ROUTE_EXACT:
		if ((size_t)(at - addr) != llen || strncasecmp(pat, addr, llen) != 0 ||
		    strcasecmp(pat_at + 1, at + 1) != 0)
			return 0;
		break;
	case ROUTE_DOMAIN:
		if (strcasecmp(pat_at + 1, at + 1) != 0)
			return 0;
		break;
	case ROUTE_SUBDOMAIN:
		if (!domain_suffix(at + 1, pat_at + 3))
			return 0;
		/* a longer suffix is more specific */
		llen = strlen(pat_at + 3);
		return (int)cl * ROUTE_CLASS_STEP + (ROUTE_CLASS_STEP - 1) -
		    (int)(llen < ROUTE_CLASS_STEP - 2 ? llen : ROUTE_CLASS_STEP - 2);
	case ROUTE_LOCAL:
		if ((size_t)(at - addr) != llen || strncasecmp(pat, addr, llen) != 0)
			return 0;
		break;
	default:
		break;
	}
	return (int)cl * ROUTE_CLASS_STEP + 1;
}

/* route_rank - recipient rank, sender rank (no condition ranks last) of
 * route r for the addresses; 0 when it does not apply */
static int
route_rank(const struct conf_route *r, const char *rcpt, const char *sender,
    int *srank)
{
	int rr = route_pattern_match(r->recipient, rcpt);

	if (rr == 0)
		return 0;
	*srank = ROUTE_NONE * ROUTE_CLASS_STEP;
	if (r->sender[0] != '\0' && (*srank = route_pattern_match(r->sender, sender)) == 0)
		return 0;
	return rr;
}

/* route_explain - the why text of a match */
static void
route_explain(struct route_match *m, const char *rcpt, const char *sender)
{
	const struct conf_route *r = m->route;
	int n;

	if (r == NULL) {
		snprintf(m->why, sizeof(m->why), "no route matches <%s>; "
		    "default_transport \"%s\"", rcpt, m->transport->name);
		return;
	}
	n = snprintf(m->why, sizeof(m->why), "route \"%s\" (line %d): recipient <%s> "
	    "matches \"%s\" (%s)", r->name, r->line, rcpt, r->recipient,
	    route_class_name(m->class));
	if (r->sender[0] != '\0' && n > 0 && (size_t)n < sizeof(m->why))
		snprintf(m->why + n, sizeof(m->why) - (size_t)n, ", sender <%s> matches "
		    "\"%s\"", sender, r->sender);
}

/* route_lookup - the most specific route of rcpt (and sender) */
void
route_lookup(const struct conf *c, const char *rcpt, const char *sender,
    struct route_match *m)
{
	int best_r = 0, best_s = 0, rr, sr = 0;
	size_t i;

	if (sender == NULL)
		sender = "";
	memset(m, 0, sizeof(*m));
	m->class = ROUTE_NONE;
	for (i = 0; i < c->nroute; i++) {
		rr = route_rank(&c->route[i], rcpt, sender, &sr);
		if (rr == 0)
			continue;
		if (m->route == NULL || rr < best_r || (rr == best_r && sr < best_s)) {
			m->route = &c->route[i];
			best_r = rr;
			best_s = sr;
		}
	}
	if (m->route != NULL) {
		m->transport = m->route->transport;
		m->class = route_pattern_class(m->route->recipient);
	} else {
		m->transport = c->default_transport;
	}
	route_explain(m, rcpt, sender);
}

/* route_destination - "TRANSPORT:domain", "TRANSPORT:host" or "TRANSPORT" */
void
route_destination(const struct conf *c, const char *rcpt, const char *sender,
    char *buf, size_t len)
{
	struct route_match m;
	char *p;

	route_lookup(c, rcpt, sender, &m);
	if (m.transport->type == TRANSPORT_MX)
		snprintf(buf, len, "%s:%s", m.transport->name, addr_domain_of(rcpt));
	else if (m.transport->type == TRANSPORT_RELAY)
		snprintf(buf, len, "%s:%s", m.transport->name, m.transport->host);
	else
		snprintf(buf, len, "%s", m.transport->name);
	for (p = buf; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}
