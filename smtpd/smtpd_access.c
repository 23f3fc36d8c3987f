/*
 * smtpd_access.c - who may talk to postern-smtpd at all, and which
 * senders an unauthenticated client may use.
 *
 * Owns: the ingress allow-list check that runs before the banner
 * (smtpd_client_allow, or a listener's client_allow) and its DNS state
 * (struct access_check), and the smtpd_sender_local_only rule at MAIL.
 *
 * The allow-list: an empty list lets everyone in. A client whose address
 * lies in one of the listed networks is greeted at once, without DNS.
 * Otherwise, when the list has host name patterns, the client must have
 * a forward-confirmed reverse name (FCrDNS) matching one: the PTR records
 * of its address are looked up, the names that match a pattern
 * ("mx.example.com" exactly, ".example.com" any name below it) are kept,
 * and the A (IPv4 client) or AAAA (IPv6 client) records of each must
 * contain the client's address. The first name that does is the
 * client's name (Received:). No match: 554 5.7.1 and close. A DNS failure
 * (SERVFAIL, timeout) where a match was still possible: 421 4.7.0 and
 * close, so a legitimate client retries later. The whole check is
 * bounded by 4 x dns_timeout; while it runs the session reads nothing.
 * A verdict (not a temporary failure) is kept for the smallest TTL of
 * the answers that made it, a negative answer's being its SOA's
 * (smtpd_access_cache.c, common/dnsttl.c): the same client on the same
 * listener is then greeted or refused without a query until it expires.
 *
 * SECURITY: PTR and A/AAAA answers are attacker-controlled (anyone can
 * publish any PTR name for their own addresses): a PTR name alone is
 * never believed, only one whose forward lookup points back to the
 * client. Names from DNS are validated (RFC 1035 host name syntax)
 * before they are matched, logged or put into a header. Queries go
 * through the process's one c-ares channel (common/dnsloop.c); the
 * session may be freed while they are in flight (access_cancel), so each
 * check outlives its session until its last callback ran.
 *
 * STANDARDS: RFC 1035 (PTR, A), RFC 3596 (AAAA, ip6.arpa), RFC 5321
 * 3.1 and 4.3.2 (554 instead of the greeting; 421 for a temporary
 * refusal), RFC 3463 (5.7.1, 4.7.0), RFC 8601 2.7.3 (iprev: a name is
 * the client's only if it resolves back to the client's address).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <netinet/in.h>

#include <arpa/nameser.h>
#include <event2/event.h>

#include "conf.h"
#include "dnsloop.h"
#include "dnsttl.h"
#include "log.h"
#include "netaddr.h"
#include "util.h"

#include "smtpd.h"
#include "smtpd_access_cache.h"

/* PTR names that match a pattern and are checked forward */
#define ACCESS_MAX_NAMES 8
/* the whole check gives up after this many dns_timeout periods */
#define ACCESS_TIMEOUT_FACTOR 4

enum access_verdict { ACCESS_ALLOW, ACCESS_DENY, ACCESS_TEMP };

/* The FCrDNS check of one session (outlives it while queries run). */
struct access_check {
	struct session *s;      /* NULL once decided or cancelled */
	int pending;            /* queries in flight (+1 while launching) */
	int family;             /* AF_INET or AF_INET6: the client's */
	unsigned char addr[16]; /* the client address, 4 or 16 bytes */
	int tempfail;           /* a forward lookup failed temporarily */
	int64_t ttl;            /* the verdict may be kept this long: the
	                           smallest TTL of the answers so far, -1
	                           if one may not be kept */
	char *names[ACCESS_MAX_NAMES]; /* PTR names matching a pattern */
	size_t nnames;
	struct event *timer;    /* the bound of the whole check */
};

/* One forward (A/AAAA) query: which name of which check. */
struct access_fwd {
	struct access_check *c;
	size_t i;
};

/* access_list - the allow-list that applies to the session */
static const struct conf_client_allow *
access_list(const struct session *s)
{
	return conf_client_allow_for(smtpd.conf, (size_t)s->listener);
}

/* access_name_matches - 1 if name matches a pattern of the list */
static int
access_name_matches(const struct conf_client_allow *a, const char *name)
{
	size_t i, n = strlen(name), p;

	for (i = 0; i < a->nnames; i++) {
		p = strlen(a->names[i]);
		if (a->names[i][0] == '.') {
			if (n > p && strcasecmp(name + n - p, a->names[i]) == 0)
				return 1;
		} else if (strcasecmp(name, a->names[i]) == 0)
			return 1;
	}
	return 0;
}

/* access_refuse - the one refusal of a client: 554 5.7.1 (deny) or
 * 421 4.7.0 (temporary), logged and counted as access_denied, closed */
static void
access_refuse(struct session *s, enum access_verdict v, const char *reason)
{
	/* smtps: session_reply sends nothing before TLS; say so in the log */
	const char *note = tls_implicit(s->listener) ?
	    " [smtps: closed before the TLS handshake, no reply sent]" : "";

	if (v == ACCESS_TEMP)
		session_reject(s, REJ_ACCESS, "CONNECT", NULL, "421 4.7.0 %s Error: "
		    "cannot verify your hostname [%s] (%s); try again later%s",
		    smtpd.conf->hostname, s->ip, reason, note);
	else
		session_reject(s, REJ_ACCESS, "CONNECT", NULL, "554 5.7.1 %s Error: "
		    "access denied for [%s] (%s)%s", smtpd.conf->hostname, s->ip, reason,
		    note);
	session_close(s);
}

/* access_free - release a check no session and no query refers to */
static void
access_free(struct access_check *c)
{
	size_t i;

	for (i = 0; i < c->nnames; i++)
		free(c->names[i]);
	if (c->timer != NULL)
		event_free(c->timer);
	free(c);
}

/* access_release - drop one reference: free when nothing is left */
static void
access_release(struct access_check *c)
{
	if (c->s == NULL && c->pending == 0)
		access_free(c);
}

/* access_pregreet - note a plain-text client that talked before the
 * banner (RFC 5321 4.3.1: it must wait); informational only */
static void
access_pregreet(const struct session *s)
{
	char b;

	if (!tls_implicit(s->listener) &&
	    recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
		log_info("pregreet traffic from [%s]", s->ip);
}

/* access_key_of - the cache key of check c on listener */
static void
access_key_of(const struct access_check *c, int listener, struct access_key *k)
{
	memset(k, 0, sizeof(*k));
	k->listener = listener;
	k->family = c->family;
	memcpy(k->addr, c->addr, c->family == AF_INET ? 4 : 16);
}

/* access_note_ttl - an answer (abuf, to a question of type) took part in
 * the verdict: it may not be kept longer than that answer */
static void
access_note_ttl(struct access_check *c, const unsigned char *abuf, int alen,
    int type)
{
	int64_t t = dnsttl_answer(abuf, alen, type);

	if (t < 0 || c->ttl < 0)
		c->ttl = -1;
	else if (t < c->ttl)
		c->ttl = t;
}

/* access_keep - keep a final verdict for the TTL of its answers */
static void
access_keep(const struct access_check *c, const struct session *s,
    enum access_verdict v, const char *text)
{
	struct access_key k;

	if (v == ACCESS_TEMP)
		return;
	access_key_of(c, s->listener, &k);
	access_cache_put(&k, v == ACCESS_ALLOW ? ACACHE_ALLOW : ACACHE_DENY, text,
	    c->ttl, (int64_t)time(NULL));
}

/* access_decide - the check is over: greet or refuse; the check stays
 * allocated while queries are still in flight */
static void
access_decide(struct access_check *c, enum access_verdict v, const char *name,
    const char *reason)
{
	struct session *s = c->s;

	c->s = NULL;
	s->access = NULL;
	evtimer_del(c->timer);
	access_keep(c, s, v, v == ACCESS_ALLOW ? name : reason);
	if (v == ACCESS_ALLOW) {
		s->client_name = xstrdup(name);
		log_info("client [%s] is %s (forward-confirmed)", s->ip, name);
		access_pregreet(s);
		session_greet(s);
	} else
		access_refuse(s, v, reason);
	access_release(c);
}

/* access_dns_result - count a lookup; its enum dnsloop_result */
static enum dnsloop_result
access_dns_result(enum stats_dns_type type, int status)
{
	enum dnsloop_result r = dnsloop_result(status);

	stats_dns(type, r == DNSLOOP_OK ? SDNS_OK : r == DNSLOOP_TEMP ?
	    SDNS_TEMPFAIL : SDNS_NOTFOUND);
	return r;
}

/* access_addr_listed - 1 if the A/AAAA answer holds the client address */
static int
access_addr_listed(const struct access_check *c, const unsigned char *abuf,
    int alen)
{
	struct ares_addrttl a4[64];
	struct ares_addr6ttl a6[64];
	int i, n = 64;

	if (c->family == AF_INET) {
		if (ares_parse_a_reply(abuf, alen, NULL, a4, &n) != ARES_SUCCESS)
			return 0;
		for (i = 0; i < n; i++)
			if (memcmp(&a4[i].ipaddr, c->addr, 4) == 0)
				return 1;
		return 0;
	}
	if (ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n) != ARES_SUCCESS)
		return 0;
	for (i = 0; i < n; i++)
		if (memcmp(&a6[i].ip6addr, c->addr, 16) == 0)
			return 1;
	return 0;
}

/* access_maybe_done - after a forward answer: refuse once every name
 * failed (421 if a failure was temporary, else 554) */
static void
access_maybe_done(struct access_check *c)
{
	if (c->s == NULL || c->pending > 0)
		return;
	if (c->tempfail)
		access_decide(c, ACCESS_TEMP, NULL, "temporary DNS failure");
	else
		access_decide(c, ACCESS_DENY, NULL, "hostname does not resolve to "
		    "your address");
}

/* on_forward - the A or AAAA answer for one PTR name */
static void
on_forward(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct access_fwd *f = arg;
	struct access_check *c = f->c;
	size_t i = f->i;
	enum dnsloop_result r;

	(void)timeouts;
	free(f);
	c->pending--;
	r = access_dns_result(c->family == AF_INET ? SDNS_A : SDNS_AAAA, status);
	if (c->s == NULL) {
		access_release(c);
		return;
	}
	if (r == DNSLOOP_TEMP)
		c->tempfail = 1;
	else
		access_note_ttl(c, abuf, alen, c->family == AF_INET ? ns_t_a :
		    ns_t_aaaa);
	if (r == DNSLOOP_OK && access_addr_listed(c, abuf, alen)) {
		access_decide(c, ACCESS_ALLOW, c->names[i], NULL);
		return;
	}
	access_maybe_done(c);
}

/* access_clean_name - a PTR name without its trailing dot into buf
 * (ADDR_DOMAIN_MAX + 1 bytes); 0, or -1 if it is no valid host name */
static int
access_clean_name(const char *name, char *buf)
{
	size_t n;

	if (name == NULL)
		return -1;
	n = strlcpy(buf, name, ADDR_DOMAIN_MAX + 1);
	if (n > ADDR_DOMAIN_MAX)
		return -1;
	if (n > 0 && buf[n - 1] == '.')
		buf[n - 1] = '\0';
	return domain_valid(buf, 0) ? 0 : -1;
}

/* access_keep_name - keep a PTR name that is valid, matches and is not
 * kept yet (c-ares lists the first PTR name among the aliases too) */
static void
access_keep_name(struct access_check *c, const char *name)
{
	char buf[ADDR_DOMAIN_MAX + 1];
	size_t i;

	if (c->nnames >= ACCESS_MAX_NAMES || access_clean_name(name, buf) == -1 ||
	    !access_name_matches(access_list(c->s), buf))
		return;
	for (i = 0; i < c->nnames; i++)
		if (strcasecmp(c->names[i], buf) == 0)
			return;
	c->names[c->nnames++] = xstrdup(buf);
}

/* access_forward_all - the A/AAAA lookups of every kept name */
static void
access_forward_all(struct access_check *c)
{
	struct access_fwd *f;
	size_t i;

	/* a callback may run inside ares_query: hold a reference */
	c->pending++;
	for (i = 0; i < c->nnames; i++) {
		f = xcalloc(1, sizeof(*f));
		f->c = c;
		f->i = i;
		c->pending++;
		ares_query(dnsloop_channel(), c->names[i], ns_c_in,
		    c->family == AF_INET ? ns_t_a : ns_t_aaaa, on_forward, f);
	}
	c->pending--;
	dnsloop_arm();
	if (c->s == NULL)
		access_release(c);      /* decided while launching */
	else
		access_maybe_done(c);
}

/* on_ptr - the PTR answer for the client address */
static void
on_ptr(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct access_check *c = arg;
	char first[ADDR_DOMAIN_MAX + 1], why[ADDR_DOMAIN_MAX + 64];
	struct hostent *he = NULL;
	enum dnsloop_result r;
	size_t i;
	int st = status;

	(void)timeouts;
	c->pending--;
	if (st == ARES_SUCCESS)
		st = ares_parse_ptr_reply(abuf, alen, c->addr,
		    c->family == AF_INET ? 4 : 16, c->family, &he);
	r = access_dns_result(SDNS_PTR, st);
	if (c->s == NULL) {
		if (he != NULL)
			ares_free_hostent(he);
		access_release(c);
		return;
	}
	if (r == DNSLOOP_TEMP) {
		access_decide(c, ACCESS_TEMP, NULL, "temporary DNS failure");
		return;
	}
	access_note_ttl(c, abuf, alen, ns_t_ptr);
	if (r != DNSLOOP_OK || he == NULL) {
		access_decide(c, ACCESS_DENY, NULL, "no reverse hostname");
		return;
	}
	access_keep_name(c, he->h_name);
	for (i = 0; he->h_aliases != NULL && he->h_aliases[i] != NULL; i++)
		access_keep_name(c, he->h_aliases[i]);
	/* validated: safe to show; not confirmed, so only as "PTR" */
	if (access_clean_name(he->h_name, first) == 0)
		snprintf(why, sizeof(why), "PTR %s not on the allow-list", first);
	else
		snprintf(why, sizeof(why), "no valid reverse hostname");
	ares_free_hostent(he);
	if (c->nnames == 0) {
		access_decide(c, ACCESS_DENY, NULL, why);
		return;
	}
	access_forward_all(c);
}

/* on_check_timeout - the check took longer than its bound */
static void
on_check_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct access_check *c = arg;

	(void)fd;
	(void)what;
	if (c->s != NULL)
		access_decide(c, ACCESS_TEMP, NULL, "DNS lookup timed out");
}

/* access_client_addr - the client address for DNS (a v4-mapped IPv6
 * address is the IPv4 client it is); 0, or -1 if not IP */
static int
access_client_addr(const struct session *s, struct access_check *c)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&s->ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&s->ss;

	if (s->ss.ss_family == AF_INET) {
		c->family = AF_INET;
		memcpy(c->addr, &sin->sin_addr, 4);
	} else if (s->ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		c->family = AF_INET;
		memcpy(c->addr, sin6->sin6_addr.s6_addr + 12, 4);
	} else if (s->ss.ss_family == AF_INET6) {
		c->family = AF_INET6;
		memcpy(c->addr, &sin6->sin6_addr, 16);
	} else
		return -1;
	return 0;
}

/* access_reverse_name - "4.3.2.1.in-addr.arpa" or the ip6.arpa nibbles */
static void
access_reverse_name(const struct access_check *c, char *buf, size_t len)
{
	const unsigned char *a = c->addr;
	size_t off = 0;
	int i;

	if (c->family == AF_INET) {
		snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
		return;
	}
	for (i = 15; i >= 0 && off + 4 < len; i--)
		off += (size_t)snprintf(buf + off, len - off, "%x.%x.", a[i] & 0xf,
		    a[i] >> 4);
	snprintf(buf + off, len - off, "ip6.arpa");
}

/* access_from_cache - a verdict kept from an earlier check of the same
 * client: greet or refuse without DNS and free c; 0 if there is none */
static int
access_from_cache(struct session *s, struct access_check *c)
{
	enum access_cached v;
	struct access_key k;
	const char *text;

	access_key_of(c, s->listener, &k);
	if ((v = access_cache_get(&k, (int64_t)time(NULL), &text)) == ACACHE_MISS)
		return 0;
	free(c);
	if (v == ACACHE_DENY) {
		access_refuse(s, ACCESS_DENY, text);
		return 1;
	}
	s->client_name = xstrdup(text);
	log_info("client [%s] is %s (forward-confirmed, cached)", s->ip, text);
	access_pregreet(s);
	session_greet(s);
	return 1;
}

/* access_start - the ingress allow-list: greet, refuse, or look up */
void
access_start(struct session *s)
{
	const struct conf_client_allow *a = access_list(s);
	const struct conf *conf = smtpd.conf;
	struct access_check *c;
	struct timeval tv;
	char rev[80];

	if (a->nets.n == 0 && a->nnames == 0) {
		session_greet(s);
		return;
	}
	if (netlist_match(&a->nets, (const struct sockaddr *)&s->ss)) {
		session_greet(s);
		return;
	}
	if (a->nnames == 0) {
		access_refuse(s, ACCESS_DENY, "not on the allow-list");
		return;
	}
	c = xcalloc(1, sizeof(*c));
	if (access_client_addr(s, c) == -1) {
		free(c);
		access_refuse(s, ACCESS_DENY, "not an IP client");
		return;
	}
	if (access_from_cache(s, c))
		return;
	c->ttl = ACCESS_CACHE_TTL_MAX;
	c->s = s;
	s->access = c;
	dnsloop_setup(smtpd.base, conf->dns_server, conf->dns_timeout, 2);
	if ((c->timer = evtimer_new(smtpd.base, on_check_timeout, c)) == NULL)
		fatalx("access: cannot create a timer");
	tv.tv_sec = ACCESS_TIMEOUT_FACTOR * (conf->dns_timeout > 0 ?
	    conf->dns_timeout : 5);
	tv.tv_usec = 0;
	evtimer_add(c->timer, &tv);
	access_reverse_name(c, rev, sizeof(rev));
	c->pending++;
	ares_query(dnsloop_channel(), rev, ns_c_in, ns_t_ptr, on_ptr, c);
	dnsloop_arm();
}

/* access_cancel - the session is being freed: detach its DNS check */
void
access_cancel(struct session *s)
{
	struct access_check *c = s->access;

	if (c == NULL)
		return;
	s->access = NULL;
	c->s = NULL;
	evtimer_del(c->timer);
	access_release(c);
}

/* access_sender_refused - 1 if smtpd_sender_local_only refuses a: an
 * unauthenticated client outside trusted_networks may use only the null
 * sender, a relay domain or the hostname (seed 003: "the sender must be
 * local"); authenticated users have their own sender domains */
int
access_sender_refused(const struct session *s, const struct mailaddr *a)
{
	const struct conf *c = smtpd.conf;

	if (!c->sender_local_only || a->null_sender || (s->flags & SF_AUTH))
		return 0;
	if (netlist_match(&c->trusted_networks, (const struct sockaddr *)&s->ss))
		return 0;
	return !conf_is_relay_domain(c, a->domain) &&
	    strcasecmp(a->domain, c->hostname) != 0;
}
