/*
 * route.h - the route table: which transport a recipient (and sender)
 * takes, and why.
 *
 * A route section names a recipient pattern (its title, or 'recipient'),
 * optionally a sender pattern, and a transport. Patterns, most specific
 * first:
 *     user@example.com      exact address               (ROUTE_EXACT)
 *     *@example.com         one domain                  (ROUTE_DOMAIN)
 *     *@*.example.com       its subdomains, longest first (ROUTE_SUBDOMAIN)
 *     user@*                a local part in any domain  (ROUTE_LOCAL)
 *     *@*                   everything                  (ROUTE_ANY)
 * Matching ignores case. The most specific recipient match wins; among
 * equals, a route whose sender pattern matches beats one without a sender
 * condition (more specific sender first), then file order. No match:
 * default_transport. Used by postern-delivery (dispatch), postern-queued
 * (destination keys) and posternctl route.
 */
#ifndef POSTERN_ROUTE_H
#define POSTERN_ROUTE_H

#include <stddef.h>

struct conf;
struct conf_route;
struct conf_transport;

enum route_class {
	ROUTE_EXACT = 0,
	ROUTE_DOMAIN,
	ROUTE_SUBDOMAIN,
	ROUTE_LOCAL,
	ROUTE_ANY,
	ROUTE_NONE              /* no pattern / no match */
};

/* The result of a lookup. */
struct route_match {
	const struct conf_transport *transport; /* never NULL after lookup */
	const struct conf_route *route;         /* NULL: default_transport */
	enum route_class class;                 /* of the recipient pattern */
	char why[512];                          /* one line for humans */
};

/* route_pattern_valid - 1 if pat is one of the pattern forms above */
int route_pattern_valid(const char *pat);
/* route_pattern_class - the class of a valid pattern */
enum route_class route_pattern_class(const char *pat);
/* route_pattern_match - 0 if addr does not match pat, else a rank
 * (smaller = more specific, >= 1) */
int route_pattern_match(const char *pat, const char *addr);
/* route_class_name - "exact address", "domain", ... */
const char *route_class_name(enum route_class class);
/* route_lookup - the transport for rcpt from sender ("" = null sender) */
void route_lookup(const struct conf *c, const char *rcpt, const char *sender,
    struct route_match *m);
/* route_destination - a key naming where rcpt goes, for per-destination
 * concurrency and rate: "TRANSPORT:domain" for mx, "TRANSPORT:host" for
 * relay, "TRANSPORT" for local outputs; lower-case */
void route_destination(const struct conf *c, const char *rcpt, const char *sender,
    char *buf, size_t len);

#endif
