/*
 * stats-test.c - tests of common/stats.c's label tables and counting
 * helpers: the reason of an enhanced status code, every enum value named
 * (distinct, Prometheus-safe), stats_outcome() and stats_dns() counting
 * into the right cells and ignoring values out of range.
 *
 * SECURITY: none (a test). STANDARDS: RFC 3463 (status code subjects).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "stats.h"
#include "tap.h"

/* test_reason_of - the subject digit of "C.S.D" picks the reason */
static void
test_reason_of(void)
{
	static const struct { const char *dsn; enum stats_reason want; } t[] = {
		{ "5.1.1", SREASON_ADDRESS }, { "4.2.1", SREASON_MAILBOX },
		{ "4.3.0", SREASON_SYSTEM }, { "4.4.1", SREASON_NETWORK },
		{ "4.4.7", SREASON_NETWORK }, { "5.5.2", SREASON_PROTOCOL },
		{ "5.6.0", SREASON_CONTENT }, { "4.7.1", SREASON_POLICY },
		{ "5.1.10", SREASON_ADDRESS }, { "2.0.0", SREASON_OTHER },
		{ "4.0.0", SREASON_OTHER }, { "4.8.0", SREASON_OTHER },
		{ "3.1.1", SREASON_OTHER }, { "", SREASON_OTHER },
		{ "4", SREASON_OTHER }, { "4.", SREASON_OTHER },
		{ "4.1", SREASON_OTHER }, { "x.1.1", SREASON_OTHER },
		{ "41.1", SREASON_OTHER },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_str(stats_reason_name(stats_reason_of(t[i].dsn)),
		    stats_reason_name(t[i].want), "reason of \"%s\"", t[i].dsn);
	is_int(stats_reason_of(NULL), SREASON_OTHER, "reason of NULL: other");
}

/* label_ok - a non-empty [a-z_] label value */
static int
label_ok(const char *s)
{
	return *s != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyz_") == strlen(s);
}

/* names_ok - names(0..n-1) are label values, all different */
static int
names_ok(const char *(*name)(int), int n)
{
	int i, j;

	for (i = 0; i < n; i++) {
		if (!label_ok(name(i)) || strcmp(name(i), "unknown") == 0)
			return 0;
		for (j = 0; j < i; j++)
			if (strcmp(name(i), name(j)) == 0)
				return 0;
	}
	return strcmp(name(n), "unknown") == 0 && strcmp(name(-1), "unknown") == 0;
}

static const char *reason(int i) { return stats_reason_name(i); }
static const char *dsn(int i) { return stats_dsn_name(i); }
static const char *qstate(int i) { return stats_queue_state_name(i); }
static const char *reject(int i) { return stats_reject_name(i); }
static const char *delivery(int i) { return stats_delivery_name(i); }
static const char *dnstype(int i) { return stats_dns_type_name(i); }
static const char *dnsresult(int i) { return stats_dns_result_name(i); }

/* test_names - every enum value has its own label value */
static void
test_names(void)
{
	ok(names_ok(reason, SREASON_MAX), "reasons named, distinct, 'unknown' past the end");
	ok(names_ok(dsn, SDSN_MAX), "DSN actions named");
	ok(names_ok(qstate, SQUEUE_MAX), "queue states named");
	ok(names_ok(reject, REJ_MAX), "reject reasons named");
	ok(names_ok(delivery, DLV_MAX), "delivery statuses named");
	ok(names_ok(dnstype, SDNS_MAX), "DNS types named");
	ok(names_ok(dnsresult, SDNS_RESULT_MAX), "DNS results named");
	is_str(stats_reason_name(SREASON_EXPIRED), "expired", "SREASON_EXPIRED is \"expired\"");
}

/* test_counting - stats_outcome and stats_dns hit one cell each */
static void
test_counting(void)
{
	static struct stats_shm shm;

	stats = NULL;
	stats_outcome(1, DLV_BOUNCED, SREASON_ADDRESS);
	stats_dns(SDNS_MX, SDNS_OK);
	ok(1, "no stats region: stats_outcome and stats_dns do nothing");
	stats = &shm;
	stats_outcome(3, DLV_DELIVERED, SREASON_OTHER);
	stats_outcome(3, DLV_DEFERRED, SREASON_NETWORK);
	stats_outcome(2, DLV_BOUNCED, SREASON_EXPIRED);
	is_int((long long)shm.transport_deliveries[3][DLV_DELIVERED], 1, "delivered by transport 3");
	is_int((long long)shm.transport_deliveries[3][DLV_DEFERRED], 1, "deferred by transport 3");
	is_int((long long)shm.transport_deliveries[2][DLV_BOUNCED], 1, "bounced by transport 2");
	is_int((long long)shm.deferrals[SREASON_NETWORK], 1, "a deferral for network");
	is_int((long long)shm.bounces[SREASON_EXPIRED], 1, "a bounce for expired");
	is_int((long long)shm.deferrals[SREASON_OTHER] + shm.bounces[SREASON_OTHER], 0,
	    "a delivery is no deferral or bounce");
	stats_outcome(0, DLV_BOUNCED, SREASON_POLICY);
	stats_outcome(STATS_TRANSPORT_MAX, DLV_BOUNCED, SREASON_POLICY);
	is_int((long long)shm.bounces[SREASON_POLICY], 2,
	    "transport out of range: the reason still counts");
	is_int((long long)shm.transport_deliveries[0][DLV_BOUNCED], 0, "  not the transport");
	stats_outcome(1, DLV_MAX, SREASON_POLICY);
	stats_outcome(1, DLV_BOUNCED, SREASON_MAX);
	is_int((long long)shm.transport_deliveries[1][DLV_BOUNCED], 0,
	    "status or reason out of range: nothing counted");
	stats_dns(SDNS_AAAA, SDNS_TEMPFAIL);
	stats_dns(SDNS_MAX, SDNS_OK);
	stats_dns(SDNS_A, SDNS_RESULT_MAX);
	is_int((long long)shm.dns_lookups[SDNS_AAAA][SDNS_TEMPFAIL], 1, "aaaa tempfail counted");
	is_int((long long)shm.dns_lookups[SDNS_A][SDNS_OK], 0, "out of range: not counted");
	stats = NULL;
}

/* main - run the groups */
int
main(void)
{
	test_reason_of();
	test_names();
	test_counting();
	return done_testing();
}
