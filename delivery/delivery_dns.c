/*
 * delivery_dns.c - DNS for the mx transport: c-ares driven by the
 * delivery process's libevent loop.
 *
 * Owns: the one c-ares channel of the process (created on first use),
 * the libevent events that watch its sockets and its timeout timer, and
 * the mapping of c-ares results to the three outcomes MX delivery cares
 * about: found, permanently not found (NXDOMAIN or no data) and
 * temporary failure (SERVFAIL, timeout, refused, no server).
 * The channel asks `dns_server` (IP:PORT) when configured, else the
 * servers of /etc/resolv.conf; the search list is never applied (MX
 * domains are fully qualified) and each try waits dns_timeout.
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
#include "log.h"
#include "netaddr.h"
#include "util.h"

#include "delivery.h"

#define DNS_MAX_FDS 16          /* c-ares uses a few sockets per server */

/* One watched c-ares socket. */
struct dns_fd {
	int fd;                 /* -1: free slot */
	struct event *ev;
};

/* The resolver state of the process. */
static struct {
	int ready;
	ares_channel chan;
	struct dns_fd fds[DNS_MAX_FDS];
	struct event *timer;
} R;

/* One query in flight: the caller's callback and argument. */
struct dns_query {
	dns_mx_cb *mx_cb;
	dns_addr_cb *addr_cb;
	void *arg;
	char name[ADDR_DOMAIN_MAX + 2];
};

static void dns_arm_timer(void);

/* dns_status - a c-ares status as DNS_OK, DNS_NOTFOUND or DNS_TEMP */
static int
dns_status(int st)
{
	switch (st) {
	case ARES_SUCCESS:
		return DNS_OK;
	case ARES_ENOTFOUND:
	case ARES_ENONAME:
		return DNS_NOTFOUND;
	case ARES_ENODATA:
		return DNS_NODATA;
	default:
		return DNS_TEMP;
	}
}

/* on_fd - a c-ares socket is readable or writable */
static void
on_fd(evutil_socket_t fd, short what, void *arg)
{
	(void)arg;
	ares_process_fd(R.chan, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_arm_timer();
}

/* on_timer - c-ares's next timeout: let it retry or give up */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	ares_process_fd(R.chan, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_arm_timer();
}

/* dns_arm_timer - wake up when c-ares wants to time something out */
static void
dns_arm_timer(void)
{
	struct timeval tv, *tvp;

	tvp = ares_timeout(R.chan, NULL, &tv);
	if (tvp == NULL) {
		evtimer_del(R.timer);
		return;
	}
	evtimer_add(R.timer, tvp);
}

/* on_sock_state - c-ares opens, closes or changes interest in a socket */
static void
on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_fd *slot = NULL, *free_slot = NULL;
	size_t i;
	short what;

	(void)data;
	for (i = 0; i < DNS_MAX_FDS; i++) {
		if (R.fds[i].fd == fd)
			slot = &R.fds[i];
		else if (R.fds[i].fd == -1 && free_slot == NULL)
			free_slot = &R.fds[i];
	}
	if (slot != NULL) {
		event_free(slot->ev);
		slot->ev = NULL;
		slot->fd = -1;
	}
	if (!readable && !writable)
		return;
	if (slot == NULL)
		slot = free_slot;
	if (slot == NULL)
		fatalx("dns: more than %d resolver sockets", DNS_MAX_FDS);
	what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	slot->fd = fd;
	slot->ev = event_new(delivery_base(), fd, what, on_fd, NULL);
	if (slot->ev == NULL || event_add(slot->ev, NULL) == -1)
		fatalx("dns: cannot watch a resolver socket");
}

/* dns_setup - create the channel on first use */
static void
dns_setup(void)
{
	const struct conf *c = delivery_conf();
	struct ares_options o;
	int mask, rc;
	size_t i;

	if (R.ready)
		return;
	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS)
		fatalx("dns: ares_library_init: %s", ares_strerror(rc));
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = on_sock_state;
	o.flags = ARES_FLAG_NOSEARCH;
	o.timeout = (int)(c->dns_timeout > 0 ? c->dns_timeout : 5) * 1000;
	o.tries = 2;
	o.ndomains = 0;
	o.domains = NULL;
	o.lookups = (char *)(c->dns_server[0] != '\0' ? "b" : "fb");
	mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
	    ARES_OPT_TRIES | ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS;
	rc = ares_init_options(&R.chan, &o, mask);
	if (rc != ARES_SUCCESS)
		fatalx("dns: ares_init_options: %s", ares_strerror(rc));
	if (c->dns_server[0] != '\0') {
		rc = ares_set_servers_ports_csv(R.chan, c->dns_server);
		if (rc != ARES_SUCCESS)
			fatalx("dns: dns_server '%s': %s", c->dns_server, ares_strerror(rc));
	}
	for (i = 0; i < DNS_MAX_FDS; i++)
		R.fds[i].fd = -1;
	R.timer = evtimer_new(delivery_base(), on_timer, NULL);
	if (R.timer == NULL)
		fatalx("dns: cannot create the timer");
	R.ready = 1;
	log_debug("dns: resolver ready (%s)", c->dns_server[0] != '\0' ? c->dns_server :
	    "system servers");
}

/* on_mx - the MX answer: parse it and hand it over */
static void
on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct ares_mx_reply *mx = NULL;
	int st = status;

	(void)timeouts;
	if (st == ARES_SUCCESS)
		st = ares_parse_mx_reply(abuf, alen, &mx);
	if (st == ARES_SUCCESS && mx == NULL)
		st = ARES_ENODATA;
	log_debug("dns: %s MX: %s", q->name, ares_strerror(st));
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
	if (st == ARES_SUCCESS && (res == NULL || res->nodes == NULL))
		st = ARES_ENODATA;
	log_debug("dns: %s A/AAAA: %s", q->name, ares_strerror(st));
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
	struct dns_query *q = xcalloc(1, sizeof(*q));

	dns_setup();
	q->mx_cb = cb;
	q->arg = arg;
	strlcpy(q->name, name, sizeof(q->name));
	ares_query(R.chan, name, ns_c_in, ns_t_mx, on_mx, q);
	dns_arm_timer();
}

/* dns_lookup_addr - the A and AAAA records of name */
void
dns_lookup_addr(const char *name, dns_addr_cb *cb, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	struct ares_addrinfo_hints hints;

	dns_setup();
	q->addr_cb = cb;
	q->arg = arg;
	strlcpy(q->name, name, sizeof(q->name));
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = ARES_AI_NOSORT;
	ares_getaddrinfo(R.chan, name, NULL, &hints, on_addr, q);
	dns_arm_timer();
}
