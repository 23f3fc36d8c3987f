/*
 * dnsttl.h - how long a DNS answer may be kept: the TTL of its records
 * (RFC 1035 3.2.1) or, for an answer that has none of the type asked for
 * (NXDOMAIN, NODATA), the negative TTL of the SOA in its authority
 * section (RFC 2308 5). No mail knowledge; used by smtpd's cache of
 * FCrDNS verdicts (smtpd_access_cache.c).
 */
#ifndef POSTERN_DNSTTL_H
#define POSTERN_DNSTTL_H

#include <stdint.h>

/* dnsttl_answer - seconds the raw answer abuf (alen bytes, as c-ares
 * gives it to a query callback, for any status) may be kept for a
 * question of 'type' (ns_t_ptr, ns_t_a...): the smallest TTL of the
 * answer section when it holds a record of that type; otherwise
 * min(SOA TTL, SOA MINIMUM) of the authority section's SOA; -1 when
 * there is neither, or abuf is not a DNS message (then it must not be
 * kept: RFC 2308 5). */
int64_t dnsttl_answer(const unsigned char *abuf, int alen, int type);

#endif
