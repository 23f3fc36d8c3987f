/*
 * dnsttl.c - the cache lifetime of a DNS answer (dnsttl.h).
 *
 * Owns nothing: a pure function over the raw answer c-ares hands to its
 * query callbacks (c-ares 1.18 gives no TTL for PTR answers and never
 * reads the authority section, so the message is walked here with
 * libresolv's parser, ns_initparse/ns_parserr, not by hand).
 * SECURITY: the answer comes from the network: every record is read by
 * libresolv's bounds-checked parser; a malformed message yields -1 (do
 * not cache), never a read past its end. Runs in unprivileged processes.
 * STANDARDS: RFC 1035 3.2.1 and 3.3.13 (TTL, SOA MINIMUM), RFC 2181 8
 * (a TTL is at most 2^31 - 1), RFC 2308 3 and 5 (negative answers are
 * kept for min(SOA TTL, MINIMUM); without an SOA not at all).
 */
#include "config.h"

#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <resolv.h>

#include "dnsttl.h"

/* ttl_clamp - RFC 2181 8: a TTL with the top bit set is 0 */
static int64_t
ttl_clamp(uint32_t ttl)
{
	return ttl > 0x7fffffffu ? 0 : (int64_t)ttl;
}

/* soa_negative - min(TTL, MINIMUM) of the first SOA in the authority
 * section, or -1 */
static int64_t
soa_negative(ns_msg *h)
{
	const unsigned char *p, *end;
	int64_t ttl, minimum;
	ns_rr rr;
	int i, n = ns_msg_count(*h, ns_s_ns);

	for (i = 0; i < n; i++) {
		if (ns_parserr(h, ns_s_ns, i, &rr) == -1)
			return -1;
		if (ns_rr_type(rr) != ns_t_soa)
			continue;
		p = ns_rr_rdata(rr);
		end = p + ns_rr_rdlen(rr);
		/* MNAME and RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM */
		if (ns_name_skip(&p, end) == -1 || ns_name_skip(&p, end) == -1 ||
		    end - p < 5 * NS_INT32SZ)
			return -1;
		minimum = ttl_clamp(ns_get32(p + 4 * NS_INT32SZ));
		ttl = ttl_clamp(ns_rr_ttl(rr));
		return ttl < minimum ? ttl : minimum;
	}
	return -1;
}

/* dnsttl_answer - the TTL of the answer, or its negative TTL, or -1 */
int64_t
dnsttl_answer(const unsigned char *abuf, int alen, int type)
{
	int64_t ttl = -1, t;
	int i, n, found = 0;
	ns_msg h;
	ns_rr rr;

	if (abuf == NULL || alen <= 0 || ns_initparse(abuf, alen, &h) == -1)
		return -1;
	n = ns_msg_count(h, ns_s_an);
	for (i = 0; i < n; i++) {
		if (ns_parserr(&h, ns_s_an, i, &rr) == -1)
			return -1;
		/* every record of the chain (CNAMEs too) bounds the answer */
		t = ttl_clamp(ns_rr_ttl(rr));
		if (ttl == -1 || t < ttl)
			ttl = t;
		if ((int)ns_rr_type(rr) == type)
			found = 1;
	}
	return found ? ttl : soa_negative(&h);
}
