/*
 * delivery_loop.c - mail-loop detection for the SMTP transports: is a
 * next hop this very server?
 *
 * Owns: the list of our own listening addresses (the smtpd listeners of
 * the running configuration, resolved once per configuration as the
 * master bound them; a wildcard listener stands for every address of a
 * local interface and every loopback address of its family), and the
 * test of a greeting or EHLO reply that names our own hostname. The mx
 * transport uses them as Postfix does (RFC 5321 5.1): an MX host that is
 * one of our addresses cuts the MX list at its preference, and when we
 * are the best MX, or the best MX greets with our name, the mail "loops
 * back to myself" and bounces with 5.4.6.
 * SECURITY: runs unprivileged in postern-delivery; resolves only the
 * operator's listener addresses (numeric, or names the master resolved
 * at start-up); reads the interface list with getifaddrs(3).
 * STANDARDS: RFC 5321 5.1 (a host that finds itself in the MX list),
 * RFC 3463 (5.4.6 routing loop detected).
 */
#include "config.h"

#include <ifaddrs.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <netinet/in.h>

#include "conf.h"
#include "log.h"
#include "netaddr.h"
#include "util.h"

#include "delivery.h"

#define SELF_MAX 64             /* listener addresses we remember */

/* Our listening addresses, for the configuration they were made from. */
static struct {
	const struct conf *conf;
	struct sockaddr_storage addr[SELF_MAX];
	size_t n;
} S;

/* sa_port - the port of an IPv4 or IPv6 address */
static unsigned
sa_port(const struct sockaddr *sa)
{
	return ntohs(sa->sa_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)sa)->sin6_port :
	    ((const struct sockaddr_in *)sa)->sin_port);
}

/* sa_is_any - 1 for 0.0.0.0 and :: (a wildcard listener) */
static int
sa_is_any(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
}

/* sa_same_host - 1 if a and b are the same address (ports aside) */
static int
sa_same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
	return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
	    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

/* sa_is_local - 1 if sa is a loopback address or one of an interface */
static int
sa_is_local(const struct sockaddr *sa)
{
	struct ifaddrs *ifs, *i;
	int found = 0;

	if (sa->sa_family == AF_INET6 ?
	    IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr) :
	    (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127)
		return 1;
	if (getifaddrs(&ifs) == -1) {
		log_warn("getifaddrs");
		return 0;
	}
	for (i = ifs; i != NULL && !found; i = i->ifa_next)
		found = i->ifa_addr != NULL && sa_same_host(i->ifa_addr, sa);
	freeifaddrs(ifs);
	return found;
}

/* self_add - the addresses of one listener ("host:port", "*:port") */
static void
self_add(const char *hostport)
{
	char host[256], port[32];
	struct addrinfo hints, *res = NULL, *a;

	if (hostport_parse(hostport, host, sizeof(host), port, sizeof(port)) == -1)
		return;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (getaddrinfo(strcmp(host, "*") == 0 ? "0.0.0.0" : host, port, &hints, &res) != 0)
		return;
	for (a = res; a != NULL && S.n < SELF_MAX; a = a->ai_next)
		if (a->ai_addrlen <= sizeof(S.addr[0]) &&
		    (a->ai_family == AF_INET || a->ai_family == AF_INET6))
			memcpy(&S.addr[S.n++], a->ai_addr, a->ai_addrlen);
	freeaddrinfo(res);
}

/* self_load - our listening addresses, once per configuration */
static void
self_load(void)
{
	const struct conf *c = delivery_conf();
	size_t i;

	if (S.conf == c)
		return;
	S.conf = c;
	S.n = 0;
	for (i = 0; i < c->nlisten; i++)
		self_add(c->listen[i].address);
}

/* loop_self_addr - 1 if sa (address and port) is where our smtpd listens */
int
loop_self_addr(const struct sockaddr *sa)
{
	const struct sockaddr *l;
	size_t i;

	self_load();
	for (i = 0; i < S.n; i++) {
		l = (const struct sockaddr *)&S.addr[i];
		if (l->sa_family != sa->sa_family || sa_port(l) != sa_port(sa))
			continue;
		if (sa_is_any(l) ? sa_is_local(sa) : sa_same_host(l, sa))
			return 1;
	}
	return 0;
}

/* loop_own_name - 1 if a reply ("220 NAME ...", "250 NAME ...") names our
 * hostname as its first word */
int
loop_own_name(const char *reply)
{
	const char *me = delivery_conf()->hostname, *p = reply;
	size_t n = strlen(me);

	if (strlen(p) < 4)
		return 0;
	p += 4;
	return n > 0 && strncasecmp(p, me, n) == 0 && (p[n] == '\0' || p[n] == ' ');
}
