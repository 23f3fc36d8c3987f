/*
 * access-cache-test.c - tests of smtpd/smtpd_access_cache.c (the FCrDNS
 * verdicts an smtpd keeps) and common/dnsttl.c (how long an answer may
 * be kept): a verdict lives for its TTL, never beyond the cap, is kept
 * per listener and address, at most ACCESS_CACHE_MAX of them (the oldest
 * go); an answer's TTL is its smallest record TTL, a negative answer's
 * min(SOA TTL, MINIMUM), and without an SOA or on garbage it is -1.
 *
 * SECURITY: none (a test). STANDARDS: RFC 1035 4.1 (the messages built
 * here), RFC 2308 5.
 */
#include "config.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsttl.h"
#include "smtpd_access_cache.h"
#include "tap.h"

/* key4 - the key of IPv4 address a.b.c.d on a listener */
static struct access_key
key4(int listener, const char *ip)
{
	struct access_key k;

	memset(&k, 0, sizeof(k));
	k.listener = listener;
	k.family = AF_INET;
	inet_pton(AF_INET, ip, k.addr);
	return k;
}

/* test_cache - lifetime, cap, keys, replacement */
static void
test_cache(void)
{
	struct access_key a = key4(0, "192.0.2.1"), b = key4(1, "192.0.2.1");
	const char *text = NULL;

	is_int(access_cache_get(&a, 1000, &text), ACACHE_MISS, "empty: a miss");
	access_cache_put(&a, ACACHE_ALLOW, "mx.example.com", 60, 1000);
	is_int(access_cache_get(&a, 1059, &text), ACACHE_ALLOW, "within the TTL: allowed");
	is_str(text, "mx.example.com", "  with the confirmed name");
	is_int(access_cache_get(&b, 1001, &text), ACACHE_MISS,
	    "another listener (another allow-list) does not share it");
	is_int(access_cache_get(&a, 1060, &text), ACACHE_MISS, "at the TTL: gone");
	is_int((long long)access_cache_count(), 0, "  and dropped");
	access_cache_put(&a, ACACHE_DENY, "no reverse hostname", 86400, 2000);
	is_int(access_cache_get(&a, 2000 + ACCESS_CACHE_TTL_MAX - 1, &text), ACACHE_DENY,
	    "a day's TTL: kept up to the cap");
	is_str(text, "no reverse hostname", "  with the reason");
	is_int(access_cache_get(&a, 2000 + ACCESS_CACHE_TTL_MAX, &text), ACACHE_MISS,
	    "  and not past it");
	access_cache_put(&a, ACACHE_DENY, "x", 0, 3000);
	access_cache_put(&a, ACACHE_DENY, "x", -1, 3000);
	is_int((long long)access_cache_count(), 0, "TTL 0 or unknown: nothing kept");
	access_cache_put(&a, ACACHE_DENY, "old", 60, 3000);
	access_cache_put(&a, ACACHE_ALLOW, "new.example.com", 60, 3001);
	is_int(access_cache_get(&a, 3002, &text), ACACHE_ALLOW, "a new verdict replaces the old");
	is_int((long long)access_cache_count(), 1, "  one entry");
	access_cache_put(&a, ACACHE_MISS, "x", 60, 3003);
	is_int(access_cache_get(&a, 3004, &text), ACACHE_ALLOW, "a miss is never put");
}

/* test_bound - at most ACCESS_CACHE_MAX verdicts, the oldest go first */
static void
test_bound(void)
{
	struct access_key k;
	const char *text;
	char ip[32];
	int i;

	for (i = 0; i < ACCESS_CACHE_MAX + 10; i++) {
		snprintf(ip, sizeof(ip), "198.51.%d.%d", i / 256, i % 256);
		k = key4(0, ip);
		access_cache_put(&k, ACACHE_DENY, "flood", 600, 5000);
	}
	is_int((long long)access_cache_count(), ACCESS_CACHE_MAX,
	    "a flood of addresses: the cache stops at ACCESS_CACHE_MAX");
	k = key4(0, "198.51.0.0");
	is_int(access_cache_get(&k, 5001, &text), ACACHE_MISS, "  the oldest went first");
	snprintf(ip, sizeof(ip), "198.51.%d.%d", (ACCESS_CACHE_MAX + 9) / 256,
	    (ACCESS_CACHE_MAX + 9) % 256);
	k = key4(0, ip);
	is_int(access_cache_get(&k, 5001, &text), ACACHE_DENY, "  the newest is kept");
}

/* A DNS message being built. */
struct dnsmsg {
	unsigned char b[512];
	int n;
};

/* put8, put16, put32 - append big-endian integers */
static void
put8(struct dnsmsg *m, unsigned v)
{
	m->b[m->n++] = (unsigned char)v;
}

static void
put16(struct dnsmsg *m, unsigned v)
{
	put8(m, (v >> 8) & 0xff);
	put8(m, v & 0xff);
}

static void
put32(struct dnsmsg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

/* put_name - append an uncompressed domain name */
static void
put_name(struct dnsmsg *m, const char *name)
{
	const char *dot;
	size_t len;

	while (*name != '\0') {
		dot = strchr(name, '.');
		len = dot != NULL ? (size_t)(dot - name) : strlen(name);
		put8(m, (unsigned)len);
		memcpy(m->b + m->n, name, len);
		m->n += (int)len;
		name += len + (dot != NULL);
	}
	put8(m, 0);
}

/* msg_start - header (a response with rcode and the section counts) and
 * the question */
static void
msg_start(struct dnsmsg *m, unsigned rcode, unsigned an, unsigned ns,
    const char *qname, unsigned qtype)
{
	m->n = 0;
	put16(m, 1);
	put16(m, 0x8400 | rcode);       /* QR, AA */
	put16(m, 1);
	put16(m, an);
	put16(m, ns);
	put16(m, 0);
	put_name(m, qname);
	put16(m, qtype);
	put16(m, ns_c_in);
}

/* put_rr - one record: its header and rdata */
static void
put_rr(struct dnsmsg *m, const char *name, unsigned type, uint32_t ttl,
    const struct dnsmsg *rdata)
{
	put_name(m, name);
	put16(m, type);
	put16(m, ns_c_in);
	put32(m, ttl);
	put16(m, (unsigned)rdata->n);
	memcpy(m->b + m->n, rdata->b, (size_t)rdata->n);
	m->n += rdata->n;
}

/* soa_rdata - MNAME, RNAME, serial, refresh, retry, expire, minimum */
static void
soa_rdata(struct dnsmsg *r, uint32_t minimum)
{
	r->n = 0;
	put_name(r, "ns.example.com");
	put_name(r, "hostmaster.example.com");
	put32(r, 1);
	put32(r, 3600);
	put32(r, 600);
	put32(r, 86400);
	put32(r, minimum);
}

/* test_ttl - positive, negative and unusable answers */
static void
test_ttl(void)
{
	struct dnsmsg m, r;

	r.n = 0;
	put_name(&r, "mx.example.com");
	msg_start(&m, ns_r_noerror, 2, 0, "1.2.0.192.in-addr.arpa", ns_t_ptr);
	put_rr(&m, "1.2.0.192.in-addr.arpa", ns_t_ptr, 300, &r);
	put_rr(&m, "1.2.0.192.in-addr.arpa", ns_t_ptr, 120, &r);
	is_int(dnsttl_answer(m.b, m.n, ns_t_ptr), 120, "PTR answer: the smallest TTL");

	msg_start(&m, ns_r_noerror, 2, 0, "www.example.com", ns_t_a);
	put_rr(&m, "www.example.com", ns_t_cname, 30, &r);
	r.n = 0;
	put32(&r, 0xc0000201);
	put_rr(&m, "mx.example.com", ns_t_a, 60, &r);
	is_int(dnsttl_answer(m.b, m.n, ns_t_a), 30, "a CNAME in the chain bounds it too");

	msg_start(&m, ns_r_noerror, 1, 0, "big.example.com", ns_t_a);
	put_rr(&m, "big.example.com", ns_t_a, 0x80000000u, &r);
	is_int(dnsttl_answer(m.b, m.n, ns_t_a), 0, "a TTL with the top bit set is 0 (RFC 2181)");

	soa_rdata(&r, 300);
	msg_start(&m, ns_r_nxdomain, 0, 1, "1.2.0.192.in-addr.arpa", ns_t_ptr);
	put_rr(&m, "2.0.192.in-addr.arpa", ns_t_soa, 900, &r);
	is_int(dnsttl_answer(m.b, m.n, ns_t_ptr), 300, "NXDOMAIN: the SOA MINIMUM");
	msg_start(&m, ns_r_nxdomain, 0, 1, "1.2.0.192.in-addr.arpa", ns_t_ptr);
	put_rr(&m, "2.0.192.in-addr.arpa", ns_t_soa, 100, &r);
	is_int(dnsttl_answer(m.b, m.n, ns_t_ptr), 100, "  or the SOA's own TTL if smaller");
	msg_start(&m, ns_r_noerror, 0, 1, "www.example.com", ns_t_aaaa);
	put_rr(&m, "example.com", ns_t_soa, 900, &r);
	is_int(dnsttl_answer(m.b, m.n, ns_t_aaaa), 300, "NODATA: the same");
	msg_start(&m, ns_r_nxdomain, 0, 0, "1.2.0.192.in-addr.arpa", ns_t_ptr);
	is_int(dnsttl_answer(m.b, m.n, ns_t_ptr), -1, "NXDOMAIN without an SOA: not to be kept");
	is_int(dnsttl_answer(m.b, 7, ns_t_ptr), -1, "a truncated message: -1");
	m.b[5] = 9;     /* 9 questions that are not there */
	is_int(dnsttl_answer(m.b, m.n, ns_t_ptr), -1, "counts past the end: -1");
	is_int(dnsttl_answer(NULL, 0, ns_t_ptr), -1, "no message (a timeout): -1");
}

/* main - run the tests */
int
main(void)
{
	test_cache();
	test_bound();
	test_ttl();
	return done_testing();
}
