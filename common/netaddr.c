/*
 * netaddr.c - "host:port" strings, listening sockets and CIDR lists.
 *
 * Owns: nothing global. Knows nothing about mail.
 * SECURITY: trusted_networks decisions (netlist_match) are made here, so
 * IPv4 peers are always compared in their v4-mapped IPv6 form: a client
 * arriving as ::ffff:192.0.2.1 on a dual-stack socket matches exactly the
 * networks that 192.0.2.1 would.
 * STANDARDS: RFC 4291 2.5.5.2 (IPv4-mapped IPv6), RFC 4632 (CIDR),
 * RFC 3986 3.2.2 (bracketed IPv6 literals).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netaddr.h"
#include "util.h"

/* port_valid - decimal min..65535 (or a service name without ':') */
static int
port_valid(const char *p, long min)
{
	char *end;
	long v;

	if (*p == '\0')
		return 0;
	if (p[0] >= '0' && p[0] <= '9') {
		errno = 0;
		v = strtol(p, &end, 10);
		return errno == 0 && *end == '\0' && v >= min && v <= 65535;
	}
	return strpbrk(p, ":[]/ ") == NULL;
}

/* copy_out - strlcpy into an out buffer, -1 when it does not fit */
static int
copy_out(char *dst, size_t dstlen, const char *src, size_t n)
{
	if (n >= dstlen)
		return -1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

/* hostport_split - split "host:port", "[v6]:port" or "*:port" with a
 * port of at least min_port */
static int
hostport_split(const char *s, char *host, size_t hostlen, char *port, size_t portlen,
    long min_port)
{
	const char *h, *hend, *p;

	if (s == NULL || *s == '\0')
		return -1;
	if (*s == '[') {
		h = s + 1;
		if ((hend = strchr(h, ']')) == NULL || hend[1] != ':')
			return -1;
		p = hend + 2;
		if (memchr(h, ':', (size_t)(hend - h)) == NULL)
			return -1;      /* brackets are for IPv6 only */
	} else {
		h = s;
		if ((hend = strrchr(s, ':')) == NULL)
			return -1;
		if (memchr(s, ':', (size_t)(hend - s)) != NULL)
			return -1;      /* bare IPv6 needs brackets */
		p = hend + 1;
	}
	if (hend == h || !port_valid(p, min_port))
		return -1;
	if (memchr(h, ' ', (size_t)(hend - h)) != NULL)
		return -1;
	if (copy_out(host, hostlen, h, (size_t)(hend - h)) == -1 ||
	    copy_out(port, portlen, p, strlen(p)) == -1)
		return -1;
	return 0;
}

/* hostport_parse - split a configured address; port 1..65535 */
int
hostport_parse(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
	return hostport_split(s, host, hostlen, port, portlen, 1);
}

/* listen_socket - bind and listen on hostport; fd or -1 with *why */
int
listen_socket(const char *hostport, int backlog, const char **why)
{
	char host[256], port[32];
	struct addrinfo hints, *res = NULL;
	int fd, on = 1, saved;

	/* port 0 (kernel's choice) is allowed here, for tests */
	if (hostport_split(hostport, host, sizeof(host), port, sizeof(port), 0) == -1) {
		*why = "parse address";
		errno = EINVAL;
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV * (port[0] >= '0' && port[0] <= '9');
	if (getaddrinfo(strcmp(host, "*") == 0 ? "0.0.0.0" : host, port, &hints, &res) != 0) {
		*why = "resolve address";
		errno = EADDRNOTAVAIL;
		return -1;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    res->ai_protocol);
	if (fd == -1) {
		*why = "socket";
		goto fail;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1) {
		*why = "setsockopt SO_REUSEADDR";
		goto fail;
	}
	if (res->ai_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1) {
		*why = "setsockopt IPV6_V6ONLY";
		goto fail;
	}
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1) {
		*why = "bind";
		goto fail;
	}
	if (listen(fd, backlog) == -1) {
		*why = "listen";
		goto fail;
	}
	freeaddrinfo(res);
	return fd;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	errno = saved;
	return -1;
}

/* map_v4 - write the v4-mapped IPv6 form of a 4-byte address */
static void
map_v4(uint8_t out[16], const void *v4)
{
	memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	memcpy(out + 12, v4, 4);
}

/* mask_host_bits - clear the bits past prefix (so matching is a compare) */
static void
mask_host_bits(struct cidr *c)
{
	int i;

	for (i = 0; i < 16; i++) {
		int bits = c->prefix - 8 * i;

		if (bits >= 8)
			continue;
		c->addr[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
}

/* cidr_parse - "a.b.c.d[/n]" or "v6[/n]" into the 16-byte form */
int
cidr_parse(const char *s, struct cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	uint8_t v4[4];
	long plen = -1;
	int is4;

	if (s == NULL || strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) != NULL) {
		*slash++ = '\0';
		if (*slash < '0' || *slash > '9')
			return -1;
		errno = 0;
		plen = strtol(slash, &end, 10);
		if (errno != 0 || *end != '\0' || end - slash > 3)
			return -1;
	}
	if (inet_pton(AF_INET, buf, v4) == 1) {
		is4 = 1;
		map_v4(out->addr, v4);
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		is4 = 0;
	} else
		return -1;
	if (plen == -1)
		plen = is4 ? 32 : 128;
	if (plen < 0 || plen > (is4 ? 32 : 128))
		return -1;
	out->prefix = (int)plen + (is4 ? 96 : 0);
	mask_host_bits(out);
	return 0;
}

/* netlist_add - parse s and append it to l */
int
netlist_add(struct netlist *l, const char *s)
{
	struct cidr c;

	if (cidr_parse(s, &c) == -1)
		return -1;
	l->net = xreallocarray(l->net, l->n + 1, sizeof(*l->net));
	l->net[l->n++] = c;
	return 0;
}

/* netlist_free - release the list */
void
netlist_free(struct netlist *l)
{
	free(l->net);
	l->net = NULL;
	l->n = 0;
}

/* sockaddr_bytes - the 16-byte (v4-mapped) form of sa; -1 if not IP */
static int
sockaddr_bytes(const struct sockaddr *sa, uint8_t out[16])
{
	if (sa->sa_family == AF_INET) {
		map_v4(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

/* netlist_match - 1 if sa lies in any network of l */
int
netlist_match(const struct netlist *l, const struct sockaddr *sa)
{
	struct cidr a;
	size_t i;

	if (sa == NULL || sockaddr_bytes(sa, a.addr) == -1)
		return 0;
	for (i = 0; i < l->n; i++) {
		struct cidr probe;

		memcpy(probe.addr, a.addr, 16);
		probe.prefix = l->net[i].prefix;
		mask_host_bits(&probe);
		if (memcmp(probe.addr, l->net[i].addr, 16) == 0)
			return 1;
	}
	return 0;
}

/* sockaddr_str - numeric address without port; v4-mapped shown as v4 */
const char *
sockaddr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	uint8_t a[16];
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (sa == NULL || sockaddr_bytes(sa, a) == -1) {
		snprintf(buf, len, "%s", sa && sa->sa_family == AF_UNIX ? "local" : "?");
		return buf;
	}
	if (memcmp(a, mapped, 12) == 0)
		inet_ntop(AF_INET, a + 12, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a, buf, (socklen_t)len);
	return buf;
}
