/*
 * delivery_dns.c - DNS for the mx transport: c-ares driven by the
 * delivery process's libevent loop.
 *
 * Owns: the MX and address queries of the mx transport and the mapping
 * of c-ares results to the outcomes MX delivery cares about: found,
 * permanently not found (NXDOMAIN or no data) and temporary failure
 * (SERVFAIL, timeout, refused, no server). The channel itself, its
 * sockets and its timer are common/dnsloop.c's, shared with smtpd.
 * The channel asks `dns_server` (IP:PORT) when configured, else the
 * servers of /etc/resolv.conf; the search list is never applied (MX
 * domains are fully qualified) and each try waits dns_timeout. Every
 * lookup is counted in stats dns_lookups (type mx, a, aaaa; /metrics).
 * Every lookup is bounded in time by our own timer as well
 * (dnsloop_bound(): c-ares's every try, and one timeout more): should
 * the library never call back, the lookup is given up with a warning
 * and reported as a temporary failure, so no job waits forever for
 * DNS; a late answer is dropped (a lookup that never ends leaks only
 * its small struct).
 * SECURITY: runs unprivileged inside postern-delivery; answers come from
 * the network and are only parsed by c-ares; nothing here blocks the
 * event loop (c-ares sockets are non-blocking, driven by ares_process_fd).
 * STANDARDS: RFC 1035 (DNS), RFC 3596 (AAAA), RFC 5321 section 5 (what
 * the caller does with the answers).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/nameser.h>

#include <ares.h>
#include <event2/event.h>

#include "addr.h"
#include "conf.h"
#include "dnsloop.h"
#include "log.h"
#include "netaddr.h"
#include "stats.h"
#include "util.h"

#include "delivery.h"

/* One query in flight: the caller's callback and argument, and the
 * timer that gives it up if c-ares never calls back. */
struct dns_query {
	dns_mx_cb *mx_cb;
	dns_addr_cb *addr_cb;
	void *arg;
	struct event *deadline;
	int given_up;           /* the caller has had its answer: drop c-ares's */
	char name[ADDR_DOMAIN_MAX + 2];
};

/* dns_status - a c-ares status as DNS_OK, DNS_NOTFOUND or DNS_TEMP */
static int
dns_status(int st)
{
	switch (dnsloop_result(st)) {
	case DNSLOOP_OK:
		return DNS_OK;
	case DNSLOOP_NOTFOUND:
		return DNS_NOTFOUND;
	case DNSLOOP_NODATA:
		return DNS_NODATA;
	default:
		return DNS_TEMP;
	}
}

/* dns_count - count one lookup of type t with c-ares status st */
static void
dns_count(enum stats_dns_type t, int st)
{
	int r = dns_status(st);

	stats_dns(t, r == DNS_OK ? SDNS_OK : r == DNS_TEMP ? SDNS_TEMPFAIL :
	    SDNS_NOTFOUND);
}

/* dns_count_addr - count the A and the AAAA query of one address lookup
 * (AF_UNSPEC asks both): a family without an address is "notfound" */
static void
dns_count_addr(int st, const struct ares_addrinfo_node *n)
{
	int has4 = 0, has6 = 0;

	if (st != ARES_SUCCESS) {
		dns_count(SDNS_A, st);
		dns_count(SDNS_AAAA, st);
		return;
	}
	for (; n != NULL; n = n->ai_next) {
		has4 |= n->ai_family == AF_INET;
		has6 |= n->ai_family == AF_INET6;
	}
	stats_dns(SDNS_A, has4 ? SDNS_OK : SDNS_NOTFOUND);
	stats_dns(SDNS_AAAA, has6 ? SDNS_OK : SDNS_NOTFOUND);
}

/* dns_setup - the process's channel (common/dnsloop.c), on first use,
 * asking dns_server, two tries of dns_timeout */
static void
dns_setup(void)
{
	const struct conf *c = delivery_conf();

	dnsloop_setup(delivery_base(), c->dns_server, c->dns_timeout, 2);
}

/* on_deadline - c-ares has not called back within dnsloop_bound(): it
 * never will; the caller gets a temporary failure (the recipient is
 * deferred and retried) and a late answer is dropped */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	const char *type = q->mx_cb != NULL ? "MX" : "A/AAAA";
	const char *why = "no answer from the resolver within the lookup's time bound";

	(void)fd;
	(void)what;
	log_warnx("dns: %s %s: no answer from the resolver within %llds; given up as a "
	    "temporary failure", q->name, type, (long long)dnsloop_bound());
	q->given_up = 1;
	event_free(q->deadline);        /* fired, not persistent: safe here */
	q->deadline = NULL;
	if (q->mx_cb != NULL) {
		dns_count(SDNS_MX, ARES_ETIMEOUT);
		q->mx_cb(q->arg, DNS_TEMP, NULL, why);
	} else {
		dns_count_addr(ARES_ETIMEOUT, NULL);
		q->addr_cb(q->arg, DNS_TEMP, NULL, why);
	}
}

/* query_new - a query for name, given up after dnsloop_bound() */
static struct dns_query *
query_new(const char *name, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	struct timeval tv = { 0, 0 };

	dns_setup();
	q->arg = arg;
	strlcpy(q->name, name, sizeof(q->name));
	q->deadline = evtimer_new(delivery_base(), on_deadline, q);
	tv.tv_sec = dnsloop_bound();
	if (q->deadline == NULL || evtimer_add(q->deadline, &tv) == -1)
		fatalx("dns: cannot arm a lookup's timer");
	return q;
}

/* query_end - c-ares called back: free q if its caller gave up on it;
 * 1 if the caller still waits for this answer */
static int
query_end(struct dns_query *q)
{
	if (q->deadline != NULL)
		event_free(q->deadline);
	q->deadline = NULL;
	if (!q->given_up)
		return 1;
	log_info("dns: %s: late answer dropped", q->name);
	free(q);
	return 0;
}

/* on_mx - the MX answer: parse it and hand it over */
static void
on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct ares_mx_reply *mx = NULL;
	int st = status;

	(void)timeouts;
	if (!query_end(q))
		return;
	if (st == ARES_SUCCESS)
		st = ares_parse_mx_reply(abuf, alen, &mx);
	if (st == ARES_SUCCESS && mx == NULL)
		st = ARES_ENODATA;
	log_debug("dns: %s MX: %s", q->name, ares_strerror(st));
	dns_count(SDNS_MX, st);
	q->mx_cb(q->arg, dns_status(st), st == ARES_SUCCESS ? mx : NULL,
	    ares_strerror(st));
	if (mx != NULL)
		ares_free_data(mx);
	free(q);
}

/* on_addr - the A/AAAA answer of a host */
static void
on_addr(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_query *q = arg;
	int st = status;

	(void)timeouts;
	if (!query_end(q)) {
		if (res != NULL)
			ares_freeaddrinfo(res);
		return;
	}
	if (st == ARES_SUCCESS && (res == NULL || res->nodes == NULL))
		st = ARES_ENODATA;
	log_debug("dns: %s A/AAAA: %s", q->name, ares_strerror(st));
	dns_count_addr(st, st == ARES_SUCCESS ? res->nodes : NULL);
	q->addr_cb(q->arg, dns_status(st), st == ARES_SUCCESS ? res->nodes : NULL,
	    ares_strerror(st));
	if (res != NULL)
		ares_freeaddrinfo(res);
	free(q);
}

/* dns_lookup_mx - the MX records of name; cb may run before this returns */
void
dns_lookup_mx(const char *name, dns_mx_cb *cb, void *arg)
{
	struct dns_query *q = query_new(name, arg);

	q->mx_cb = cb;
	ares_query(dnsloop_channel(), name, ns_c_in, ns_t_mx, on_mx, q);
	dnsloop_arm();
}

/* dns_lookup_addr - the A and AAAA records of name */
void
dns_lookup_addr(const char *name, dns_addr_cb *cb, void *arg)
{
	struct dns_query *q = query_new(name, arg);
	struct ares_addrinfo_hints hints;

	q->addr_cb = cb;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = ARES_AI_NOSORT;
	ares_getaddrinfo(dnsloop_channel(), name, NULL, &hints, on_addr, q);
	dnsloop_arm();
}
