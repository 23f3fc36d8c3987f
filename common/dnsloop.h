/*
 * dnsloop.h - the one c-ares channel of a process, driven by its
 * libevent loop (no mail knowledge: the callers ask the questions).
 *
 * Used by postern-delivery (MX, A/AAAA: delivery_dns.c) and by
 * postern-smtpd (PTR, A/AAAA for the ingress allow-list:
 * smtpd_access.c). Single-threaded, like the loop that drives it.
 */
#ifndef POSTERN_DNSLOOP_H
#define POSTERN_DNSLOOP_H

#include <time.h>

#include <ares.h>

struct event_base;

/* What a lookup came to, for callers that need no more detail. */
enum dnsloop_result {
	DNSLOOP_OK = 0,         /* an answer */
	DNSLOOP_NODATA,         /* the name exists, no record of the type */
	DNSLOOP_NOTFOUND,       /* NXDOMAIN */
	DNSLOOP_TEMP,           /* SERVFAIL, timeout, refused, no server */
};

/* dnsloop_setup - create the channel on base, once (later calls return
 * at once). server: "IP:PORT" or "[IPv6]:PORT" to ask only that server
 * (tests run their own), "" for the servers of /etc/resolv.conf. Each
 * try waits timeout seconds (c-ares doubles it for every further round),
 * tries: rounds over the servers. The search list is never applied
 * (every name asked is fully qualified). Fatal when c-ares cannot start
 * or server is unusable (the configuration validated it). */
void dnsloop_setup(struct event_base *base, const char *server, time_t timeout,
    int tries);
/* dnsloop_channel - the channel for ares_query() and friends; after
 * dnsloop_setup */
ares_channel dnsloop_channel(void);
/* dnsloop_arm - after starting queries: wake up for c-ares's next
 * timeout (callbacks may have run before the query call returned) */
void dnsloop_arm(void);
/* dnsloop_bound - the seconds after which a query c-ares has not
 * answered is given up by its caller: every try of every server, each
 * round twice as long as the one before, and one timeout more. A lookup
 * whose callback has not run by then never will (a library bug, such as
 * c-ares 1.34.7 dropping a query whose id collides with one in flight);
 * after dnsloop_setup */
time_t dnsloop_bound(void);
/* dnsloop_result - a c-ares status as enum dnsloop_result */
enum dnsloop_result dnsloop_result(int ares_status);

#endif
