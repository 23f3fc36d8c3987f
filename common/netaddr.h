/*
 * netaddr.h - socket addresses and CIDR lists (no mail knowledge).
 */
#ifndef POSTERN_NETADDR_H
#define POSTERN_NETADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* One IPv4 or IPv6 network; v4 addresses are kept as v4-mapped v6. */
struct cidr {
	uint8_t addr[16];
	int prefix;             /* 0..128 over the 16-byte form */
};

struct netlist {
	struct cidr *net;
	size_t n;
};

/* hostport_parse - "host:port", "[v6]:port", "*:port"; host is copied
 * without brackets ("*" stays "*"). 0, or -1 if malformed. */
int hostport_parse(const char *s, char *host, size_t hostlen, char *port, size_t portlen);
/* listen_socket - socket, SO_REUSEADDR, bind, listen(backlog) on a
 * "host:port"; non-blocking, close-on-exec. fd, or -1 with errno and
 * *why set to the failing step. */
int listen_socket(const char *hostport, int backlog, const char **why);
/* cidr_parse - "10.0.0.0/8", "::1/128", "192.0.2.1" (host); 0 or -1 */
int cidr_parse(const char *s, struct cidr *out);
/* netlist_add - parse and append; 0 or -1 */
int netlist_add(struct netlist *l, const char *s);
void netlist_free(struct netlist *l);
/* netlist_match - 1 if the socket address lies in any network */
int netlist_match(const struct netlist *l, const struct sockaddr *sa);
/* sockaddr_str - "127.0.0.1" or "::1" (no port) into buf */
const char *sockaddr_str(const struct sockaddr *sa, char *buf, size_t len);

#endif
