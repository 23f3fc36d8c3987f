/*
 * dnsloop.c - one c-ares channel per process, driven by a libevent loop.
 *
 * Owns: the channel (created on first use by dnsloop_setup), the
 * libevent events that watch its sockets (c-ares tells us about them
 * through its socket-state callback) and the timer that wakes c-ares
 * for its timeouts and retries. Knows nothing of what is asked: callers
 * issue ares_query() on dnsloop_channel() and call dnsloop_arm().
 * SECURITY: answers come from the network and are parsed only by
 * c-ares; nothing here blocks the loop (c-ares sockets are non-blocking
 * and serviced by ares_process_fd when libevent says they are ready).
 * Runs in unprivileged processes; reads /etc/resolv.conf only when no
 * server is configured.
 * STANDARDS: RFC 1035 (DNS).
 */
#include "config.h"

#include <string.h>

#include <event2/event.h>

#include "dnsloop.h"
#include "log.h"

#define DNSLOOP_MAX_FDS 16      /* c-ares uses a few sockets per server */

/* One watched c-ares socket. */
struct dnsloop_fd {
	ares_socket_t fd;       /* ARES_SOCKET_BAD: free slot */
	struct event *ev;
};

/* The resolver state of the process. */
static struct {
	int ready;
	struct event_base *base;
	ares_channel chan;
	struct dnsloop_fd fds[DNSLOOP_MAX_FDS];
	struct event *timer;
	time_t bound;           /* dnsloop_bound() */
} L;

/* dnsloop_result - a c-ares status as enum dnsloop_result */
enum dnsloop_result
dnsloop_result(int st)
{
	switch (st) {
	case ARES_SUCCESS:
		return DNSLOOP_OK;
	case ARES_ENOTFOUND:
	case ARES_ENONAME:
		return DNSLOOP_NOTFOUND;
	case ARES_ENODATA:
		return DNSLOOP_NODATA;
	default:
		return DNSLOOP_TEMP;
	}
}

/* on_fd - a c-ares socket is readable or writable */
static void
on_fd(evutil_socket_t fd, short what, void *arg)
{
	(void)arg;
	ares_process_fd(L.chan, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dnsloop_arm();
}

/* on_timer - c-ares's next timeout: let it retry or give up */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	ares_process_fd(L.chan, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dnsloop_arm();
}

/* dnsloop_arm - wake up when c-ares wants to time something out */
void
dnsloop_arm(void)
{
	struct timeval tv, *tvp;

	if (!L.ready)
		return;
	tvp = ares_timeout(L.chan, NULL, &tv);
	if (tvp == NULL) {
		evtimer_del(L.timer);
		return;
	}
	evtimer_add(L.timer, tvp);
}

/* on_sock_state - c-ares opens, closes or changes interest in a socket */
static void
on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dnsloop_fd *slot = NULL, *free_slot = NULL;
	size_t i;
	short what;

	(void)data;
	for (i = 0; i < DNSLOOP_MAX_FDS; i++) {
		if (L.fds[i].fd == fd)
			slot = &L.fds[i];
		else if (L.fds[i].fd == ARES_SOCKET_BAD && free_slot == NULL)
			free_slot = &L.fds[i];
	}
	if (slot != NULL) {
		event_free(slot->ev);
		slot->ev = NULL;
		slot->fd = ARES_SOCKET_BAD;
	}
	if (!readable && !writable)
		return;
	if (slot == NULL)
		slot = free_slot;
	if (slot == NULL)
		fatalx("dns: more than %d resolver sockets", DNSLOOP_MAX_FDS);
	what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	slot->fd = fd;
	slot->ev = event_new(L.base, fd, what, on_fd, NULL);
	if (slot->ev == NULL || event_add(slot->ev, NULL) == -1)
		fatalx("dns: cannot watch a resolver socket");
}

/* bound_of - what every try of every server of chan can take at most:
 * round r (0, 1, ...) waits timeout << r per server (c-ares's
 * ares__send_query), so tries rounds take (2^tries - 1) timeouts each;
 * one more timeout of slack */
static time_t
bound_of(ares_channel chan, time_t timeout, int tries)
{
	struct ares_addr_port_node *servers = NULL, *n;
	time_t nservers = 0;

	if (ares_get_servers_ports(chan, &servers) == ARES_SUCCESS)
		for (n = servers; n != NULL; n = n->next)
			nservers++;
	ares_free_data(servers);
	if (nservers == 0)
		nservers = 1;
	return nservers * timeout * ((1 << tries) - 1) + timeout;
}

/* dnsloop_bound - how long a caller waits for c-ares at most */
time_t
dnsloop_bound(void)
{
	if (!L.ready)
		panic("dnsloop_bound before dnsloop_setup");
	return L.bound;
}

/* dnsloop_setup - create the channel on base, once */
void
dnsloop_setup(struct event_base *base, const char *server, time_t timeout,
    int tries)
{
	struct ares_options o;
	int mask, rc;
	size_t i;

	if (L.ready)
		return;
	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS)
		fatalx("dns: ares_library_init: %s", ares_strerror(rc));
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = on_sock_state;
	o.flags = ARES_FLAG_NOSEARCH;
	o.timeout = (int)(timeout > 0 ? timeout : 5) * 1000;
	o.tries = tries > 0 ? tries : 2;
	o.ndomains = 0;
	o.domains = NULL;
	o.lookups = (char *)(*server != '\0' ? "b" : "fb");
	mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
	    ARES_OPT_TRIES | ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS;
	rc = ares_init_options(&L.chan, &o, mask);
	if (rc != ARES_SUCCESS)
		fatalx("dns: ares_init_options: %s", ares_strerror(rc));
	if (*server != '\0') {
		rc = ares_set_servers_ports_csv(L.chan, server);
		if (rc != ARES_SUCCESS)
			fatalx("dns: dns_server '%s': %s", server, ares_strerror(rc));
	}
	L.bound = bound_of(L.chan, o.timeout / 1000, o.tries);
	for (i = 0; i < DNSLOOP_MAX_FDS; i++)
		L.fds[i].fd = ARES_SOCKET_BAD;
	L.base = base;
	L.timer = evtimer_new(base, on_timer, NULL);
	if (L.timer == NULL)
		fatalx("dns: cannot create the timer");
	L.ready = 1;
	log_debug("dns: resolver ready (%s)", *server != '\0' ? server :
	    "system servers");
}

/* dnsloop_channel - the channel (after dnsloop_setup) */
ares_channel
dnsloop_channel(void)
{
	if (!L.ready)
		panic("dnsloop_channel before dnsloop_setup");
	return L.chan;
}
