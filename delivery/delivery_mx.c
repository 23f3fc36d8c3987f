/*
 * delivery_mx.c - the mx transport: deliver by DNS, as RFC 5321 section 5
 * says.
 *
 * Owns: mx_deliver(). A job's recipients are grouped by domain; for each
 * domain in turn: the MX records (delivery_dns.c); a record whose target
 * is not a host name (RFC 1035 LDH labels; not an address) is skipped
 * and logged escaped; all the others sorted by preference with equal
 * preferences in random order, and only then the best MX_HOSTS_MAX kept
 * (so answer order can never drop the best host); the implicit MX (the
 * domain's own A/AAAA) when the domain has no MX record; Null MX (RFC
 * 7505: the single record "0 .") bounced at once with 5.1.10; NXDOMAIN
 * bounced with 5.1.2; MX records none of which names a valid host
 * bounced with 5.4.4; SERVFAIL and timeouts deferred with 4.4.3; then
 * the A and AAAA records of every MX host, asked in parallel, and the
 * ordered list of addresses (per host IPv6 first, then IPv4; at most
 * SMTP_TARGETS_MAX), cut before the first MX host that is this server
 * (delivery_loop.c; a loop, 5.4.6, when nothing is left), handed to the
 * SMTP client, which moves on to the
 * next address after a failed connection, a bad or missing greeting or
 * an unmet TLS requirement. The TLS level is the transport's `tls`, or
 * the domain's `tls_policy` section.
 * SECURITY: runs unprivileged in postern-delivery; DNS answers are
 * untrusted: bounded counts, host names checked before they are used or
 * logged (an invalid one only appears escaped), copied with strlcpy;
 * nothing blocks.
 * STANDARDS: RFC 5321 section 5 (MX, implicit MX), RFC 7505 (Null MX),
 * RFC 3463 (5.1.2, 5.1.10, 4.4.3, 5.4.4, 5.4.6).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <netinet/in.h>

#include <ares.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "util.h"

#include "delivery.h"

#define MX_HOSTS_MAX 10         /* MX hosts we look at per domain */
#define MX_ADDRS_MAX 8          /* addresses we keep per host */

struct mx_job;

/* One MX host and its addresses. */
struct mx_host {
	struct mx_job *mx;
	char name[ADDR_DOMAIN_MAX + 1];
	int pref;
	int status;             /* DNS_* of its address lookup */
	struct sockaddr_storage addr[MX_ADDRS_MAX];
	socklen_t addrlen[MX_ADDRS_MAX];
	size_t naddr;
};

/* One mx job: its recipients in domain order and the domain in hand. */
struct mx_job {
	struct delivery_job *j;
	const struct conf_transport *t;
	size_t *order;          /* recipient indexes, grouped by domain */
	size_t gstart, gend;    /* the current domain's slice of order */
	char domain[ADDR_DOMAIN_MAX + 1];
	struct mx_host host[MX_HOSTS_MAX];
	size_t nhost;
	size_t pending;         /* address lookups in flight */
	int implicit;           /* no MX: the domain itself */
};

static void mx_next_group(struct mx_job *mx);

/* rcpt_domain - the domain of an address ("" when none) */
static const char *
rcpt_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

/* cmp_domain - qsort_r: recipient indexes by domain, then by index */
static int
cmp_domain(const void *a, const void *b, void *arg)
{
	const struct delivery_job *j = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcasecmp(rcpt_domain(j->rcpt[x].addr), rcpt_domain(j->rcpt[y].addr));

	return c != 0 ? c : x < y ? -1 : x > y;
}

/* group_result - one result for every recipient of the current domain */
static void group_result(struct mx_job *mx, int class, const char *dsn, const char *fmt,
    ...) PRINTF_LIKE(4, 5);
static void
group_result(struct mx_job *mx, int class, const char *dsn, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_debug("%s: %s: %s", mx->j->queueid, mx->domain, text);
	for (i = mx->gstart; i < mx->gend; i++)
		delivery_rcpt_result(&mx->j->rcpt[mx->order[i]], class, dsn, mx->domain, "%s",
		    text);
}

/* group_done - the domain has its results: the next one */
static void
group_done(struct delivery_job *j, void *arg)
{
	struct mx_job *mx = arg;

	(void)j;
	mx->gstart = mx->gend;
	mx_next_group(mx);
}

/* add_targets - a host's addresses of one family into d */
static void
add_targets(struct smtp_dest *d, const struct mx_host *h, int family, int port)
{
	struct smtp_target *t;
	size_t i;

	for (i = 0; i < h->naddr && d->ntarget < SMTP_TARGETS_MAX; i++) {
		if (h->addr[i].ss_family != family)
			continue;
		t = &d->target[d->ntarget++];
		strlcpy(t->host, h->name, sizeof(t->host));
		t->best = h->pref == h->mx->host[0].pref;
		memcpy(&t->ss, &h->addr[i], h->addrlen[i]);
		t->sslen = h->addrlen[i];
		if (family == AF_INET6)
			((struct sockaddr_in6 *)&t->ss)->sin6_port = htons((uint16_t)port);
		else
			((struct sockaddr_in *)&t->ss)->sin_port = htons((uint16_t)port);
	}
}

/* mx_dest - the destination's policy: the transport's, or tls_policy */
static void
mx_dest(const struct mx_job *mx, struct smtp_dest *d)
{
	const struct conf_transport *t = mx->t;
	const struct conf_tls_policy *p = conf_tls_policy_for(delivery_conf(), mx->domain);

	memset(d, 0, sizeof(*d));
	d->tls = p != NULL ? p->level : t->tls;
	d->ca_file = p != NULL && p->ca_file[0] != '\0' ? p->ca_file :
	    t->ca_file != NULL ? t->ca_file : "";
	d->auth_user = "";
	d->auth_password = "";
	d->timeout = t->timeout > 0 ? t->timeout : 300;
	d->reuse_max = t->reuse_max;
	d->reuse_idle = t->reuse_idle;
	snprintf(d->key, sizeof(d->key), "mx:%s:%d:%d:%s", mx->domain, t->port, d->tls,
	    t->name);
	strlcpy(d->nexthop, mx->domain, sizeof(d->nexthop));
}

/* host_is_self - 1 if one of h's addresses, at the transport's port, is
 * where our own smtpd listens */
static int
host_is_self(const struct mx_host *h, int port)
{
	struct sockaddr_storage ss;
	size_t i;

	for (i = 0; i < h->naddr; i++) {
		memcpy(&ss, &h->addr[i], h->addrlen[i]);
		if (ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		else
			((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		if (loop_self_addr((const struct sockaddr *)&ss))
			return 1;
	}
	return 0;
}

/* truncate_self - an MX host that is this server: only hosts of a lower
 * preference than its own may be tried (RFC 5321 5.1), the others
 * would send the mail back here; 1 if none is left (a loop) */
static int
truncate_self(struct mx_job *mx)
{
	size_t i;

	for (i = 0; i < mx->nhost && !host_is_self(&mx->host[i], mx->t->port); i++)
		;
	if (i == mx->nhost)
		return 0;
	log_info("%s: %s: MX host %s (preference %d) is this server: only MX hosts of a "
	    "lower preference are tried", mx->j->queueid, mx->domain, mx->host[i].name,
	    mx->host[i].pref);
	while (i > 0 && mx->host[i - 1].pref == mx->host[i].pref)
		i--;
	mx->nhost = i;
	return mx->nhost == 0;
}

/* mx_connect - every address lookup is back: hand the list to SMTP */
static void
mx_connect(struct mx_job *mx)
{
	struct smtp_dest d;
	size_t i;
	int temp = 0;

	if (truncate_self(mx)) {
		group_result(mx, 5, "5.4.6", "mail for %s loops back to myself", mx->domain);
		group_done(mx->j, mx);
		return;
	}
	mx_dest(mx, &d);
	for (i = 0; i < mx->nhost; i++) {
		add_targets(&d, &mx->host[i], AF_INET6, mx->t->port);
		add_targets(&d, &mx->host[i], AF_INET, mx->t->port);
		temp |= mx->host[i].status == DNS_TEMP;
	}
	if (d.ntarget == 0) {
		if (temp)
			group_result(mx, 4, "4.4.3", "cannot find the address of %s%s: "
			    "temporary DNS failure", mx->implicit ? "" : "any MX host of ",
			    mx->domain);
		else if (mx->implicit)
			group_result(mx, 5, "5.1.2", "%s has no address (A or AAAA record)",
			    mx->domain);
		else
			group_result(mx, 5, "5.4.4", "no MX host of %s has an address (A or "
			    "AAAA record)", mx->domain);
		group_done(mx->j, mx);
		return;
	}
	log_debug("%s: %s: %zu addresses from %zu %s", mx->j->queueid, mx->domain,
	    d.ntarget, mx->nhost, mx->implicit ? "(implicit MX)" : "MX hosts");
	smtp_deliver(mx->j, mx->order + mx->gstart, mx->gend - mx->gstart, &d, group_done,
	    mx);
}

/* on_addr - one MX host's addresses */
static void
on_addr(void *arg, int status, struct ares_addrinfo_node *ai, const char *err)
{
	struct mx_host *h = arg;
	struct mx_job *mx = h->mx;

	h->status = status;
	for (; status == DNS_OK && ai != NULL && h->naddr < MX_ADDRS_MAX; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(h->addr[0]))
			continue;
		memcpy(&h->addr[h->naddr], ai->ai_addr, ai->ai_addrlen);
		h->addrlen[h->naddr++] = ai->ai_addrlen;
	}
	if (status != DNS_OK)
		log_debug("%s: %s: MX host %s: %s", mx->j->queueid, mx->domain, h->name, err);
	if (--mx->pending == 0)
		mx_connect(mx);
}

/* One MX record of the answer while the best are chosen. */
struct mx_rr {
	const char *host;
	int pref;
	uint32_t tiebreak;      /* random: equal preferences in random order */
};

/* cmp_rr - qsort: by preference, equal ones by their random key */
static int
cmp_rr(const void *a, const void *b)
{
	const struct mx_rr *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return x->tiebreak < y->tiebreak ? -1 : x->tiebreak > y->tiebreak;
}

/* lookup_hosts - the addresses of every host, in parallel */
static void
lookup_hosts(struct mx_job *mx)
{
	size_t i;

	mx->pending = mx->nhost + 1;    /* +1: callbacks may run at once */
	for (i = 0; i < mx->nhost; i++) {
		mx->host[i].mx = mx;
		dns_lookup_addr(mx->host[i].name, on_addr, &mx->host[i]);
	}
	if (--mx->pending == 0)
		mx_connect(mx);
}

/* is_null_mx - the RFC 7505 record: preference 0, host "." */
static int
is_null_mx(const struct ares_mx_reply *m)
{
	return m->host == NULL || m->host[0] == '\0' || strcmp(m->host, ".") == 0;
}

/* mx_host_ok - 1 if an MX target is a host name (RFC 1035 2.3.1, RFC
 * 5321 2.3.5: LDH labels, not an address); else it is logged, escaped
 * (the name comes from a zone anyone may write), and skipped */
static int
mx_host_ok(const struct mx_job *mx, const char *host)
{
	char vis[ADDR_DOMAIN_MAX + 1];

	if (domain_valid(host, 0))
		return 1;
	log_warnx("%s: %s: MX host %s is not a valid host name; skipped", mx->j->queueid,
	    mx->domain, log_vis(host, vis, sizeof(vis)));
	return 0;
}

/* keep_best - the valid records of the n in the answer, sorted by
 * preference (equal ones at random), the first MX_HOSTS_MAX into
 * mx->host: the best host is never lost to answer order. Returns how
 * many records named a host (valid or not) */
static size_t
keep_best(struct mx_job *mx, const struct ares_mx_reply *mxr, size_t n)
{
	struct mx_rr *rr = xcalloc(n > 0 ? n : 1, sizeof(*rr));
	const struct ares_mx_reply *m;
	size_t k = 0, i, named = 0;

	for (m = mxr; m != NULL && k < n; m = m->next) {
		if (is_null_mx(m))
			continue;
		named++;
		if (!mx_host_ok(mx, m->host))
			continue;
		rr[k].host = m->host;
		rr[k].pref = m->priority;
		rr[k++].tiebreak = arc4random();
	}
	qsort(rr, k, sizeof(*rr), cmp_rr);
	for (i = 0; i < k && i < MX_HOSTS_MAX; i++) {
		strlcpy(mx->host[i].name, rr[i].host, sizeof(mx->host[i].name));
		mx->host[i].pref = rr[i].pref;
	}
	mx->nhost = i;
	if (k > i)
		log_debug("%s: %s: %zu MX hosts, the best %zu kept", mx->j->queueid,
		    mx->domain, k, i);
	free(rr);
	return named;
}

/* on_mx - the MX answer of the domain */
static void
on_mx(void *arg, int status, struct ares_mx_reply *mxr, const char *err)
{
	struct mx_job *mx = arg;
	const struct ares_mx_reply *m;
	size_t n = 0;

	if (status == DNS_NOTFOUND) {
		group_result(mx, 5, "5.1.2", "Host or domain name not found. Name service "
		    "error for name=%s type=MX: Host not found", mx->domain);
		group_done(mx->j, mx);
		return;
	}
	if (status == DNS_TEMP) {
		group_result(mx, 4, "4.4.3", "Host or domain name not found. Name service "
		    "error for name=%s type=MX: %s (try again)", mx->domain, err);
		group_done(mx->j, mx);
		return;
	}
	for (m = status == DNS_OK ? mxr : NULL; m != NULL; m = m->next)
		n++;
	if (n == 1 && is_null_mx(mxr)) {
		group_result(mx, 5, "5.1.10", "Domain %s does not accept mail (null MX)",
		    mx->domain);
		group_done(mx->j, mx);
		return;
	}
	if (keep_best(mx, mxr, n) > 0 && mx->nhost == 0) {
		group_result(mx, 5, "5.4.4", "no MX host of %s has a valid host name",
		    mx->domain);
		group_done(mx->j, mx);
		return;
	}
	mx->implicit = mx->nhost == 0;
	if (mx->implicit) {
		/* no MX record: the domain is its own mail host (5321 5.1) */
		strlcpy(mx->host[0].name, mx->domain, sizeof(mx->host[0].name));
		mx->host[0].pref = 0;
		mx->nhost = 1;
	}
	lookup_hosts(mx);
}

/* mx_next_group - the next domain, or the end of the job */
static void
mx_next_group(struct mx_job *mx)
{
	struct delivery_job *j = mx->j;
	const char *dom;

	if (mx->gstart >= j->nrcpt) {
		free(mx->order);
		free(mx);
		delivery_job_done(j);
		return;
	}
	dom = rcpt_domain(j->rcpt[mx->order[mx->gstart]].addr);
	for (mx->gend = mx->gstart + 1; mx->gend < j->nrcpt &&
	    strcasecmp(rcpt_domain(j->rcpt[mx->order[mx->gend]].addr), dom) == 0; mx->gend++)
		;
	strlcpy(mx->domain, dom, sizeof(mx->domain));
	str_lower(mx->domain);
	memset(mx->host, 0, sizeof(mx->host));
	mx->nhost = 0;
	mx->implicit = 0;
	if (mx->domain[0] == '\0' || mx->domain[0] == '[') {
		group_result(mx, 5, "5.1.2", "no deliverable domain in the address");
		group_done(j, mx);
		return;
	}
	dns_lookup_mx(mx->domain, on_mx, mx);
}

/* mx_deliver - the mx transport's entry point */
void
mx_deliver(struct delivery_job *j, const struct conf_transport *t)
{
	struct mx_job *mx = xcalloc(1, sizeof(*mx));
	size_t i;

	mx->j = j;
	mx->t = t;
	mx->order = xcalloc(j->nrcpt > 0 ? j->nrcpt : 1, sizeof(*mx->order));
	for (i = 0; i < j->nrcpt; i++)
		mx->order[i] = i;
	qsort_r(mx->order, j->nrcpt, sizeof(*mx->order), cmp_domain, j);
	mx_next_group(mx);
}
