/*
 * stats.c - the shared counter region (struct stats_shm) in a memfd
 * created by the master and mapped by every child.
 *
 * Owns: the global 'stats' mapping of this process.
 * SECURITY: the region holds counters only; every child may write all of
 * it, so nothing reads a decision from it. The memfd is sealed against
 * shrinking so a child cannot make others fault.
 * STANDARDS: none (the Prometheus exposition lives in httpd).
 */
#include "config.h"

#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "stats.h"

struct stats_shm *stats;

static const char *const reject_names[REJ_MAX] = {
	[REJ_RELAY_DENIED] = "relay_denied",
	[REJ_SIZE] = "size",
	[REJ_RCPT_LIMIT] = "rcpt_limit",
	[REJ_SYNTAX] = "syntax",
	[REJ_QUEUE_ERROR] = "queue_error",
	[REJ_PROTOCOL] = "protocol",
	[REJ_ACCESS] = "access_denied",
	[REJ_CONN_LIMIT] = "connection_limit",
	[REJ_MESSAGE_RATE] = "message_rate",
	[REJ_AUTH_FAILED] = "auth_failed",
	[REJ_AUTH_LOCKOUT] = "auth_lockout",
	[REJ_TLS_REQUIRED] = "tls_required",
	[REJ_SENDER] = "sender_denied",
	[REJ_TIMEOUT] = "timeout",
	[REJ_AUTH_REQUIRED] = "auth_required",
	[REJ_HOPS] = "too_many_hops",
};

static const char *const delivery_names[DLV_MAX] = {
	[DLV_DELIVERED] = "delivered",
	[DLV_DEFERRED] = "deferred",
	[DLV_BOUNCED] = "bounced",
};

/* stats_map - map fd's struct stats_shm read-write shared */
static struct stats_shm *
stats_map(int fd)
{
	void *p = mmap(NULL, sizeof(struct stats_shm), PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* stats_create - master: make, size, seal and map the memfd */
int
stats_create(void)
{
	int fd = memfd_create("postern-stats", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd == -1)
		fatal("memfd_create");
	if (ftruncate(fd, sizeof(struct stats_shm)) == -1)
		fatal("ftruncate stats");
	/* best effort: children must not shrink or grow the region */
	(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	if ((stats = stats_map(fd)) == NULL)
		fatal("mmap stats");
	stats->magic = STATS_MAGIC;
	stats->master_started = (int64_t)time(NULL);
	return fd;
}

/* stats_attach - child: map fd (PROC_FD_STATS when fd < 0), check magic */
void
stats_attach(int fd)
{
	struct stat st;

	if (fd < 0)
		fd = PROC_FD_STATS;
	if (fstat(fd, &st) == -1)
		fatal("stats fd %d", fd);
	if ((size_t)st.st_size < sizeof(struct stats_shm))
		fatalx("stats fd %d: region too small (%lld bytes)", fd,
		    (long long)st.st_size);
	if ((stats = stats_map(fd)) == NULL)
		fatal("mmap stats fd %d", fd);
	if (stats->magic != STATS_MAGIC)
		fatalx("stats fd %d: bad magic %#x", fd, (unsigned)stats->magic);
}

/* stats_add - relaxed atomic add to a counter */
void
stats_add(uint64_t *counter, uint64_t v)
{
	__atomic_fetch_add(counter, v, __ATOMIC_RELAXED);
}

/* stats_gauge_add - relaxed atomic add (may be negative) to a gauge */
void
stats_gauge_add(int64_t *gauge, int64_t v)
{
	__atomic_fetch_add(gauge, v, __ATOMIC_RELAXED);
}

/* stats_gauge_set - relaxed atomic store */
void
stats_gauge_set(int64_t *gauge, int64_t v)
{
	__atomic_store_n(gauge, v, __ATOMIC_RELAXED);
}

/* stats_read - relaxed atomic load of a counter */
uint64_t
stats_read(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* stats_gauge_read - relaxed atomic load of a gauge */
int64_t
stats_gauge_read(const int64_t *gauge)
{
	return __atomic_load_n(gauge, __ATOMIC_RELAXED);
}

/* stats_reject_name - Prometheus label value of a reject reason */
const char *
stats_reject_name(enum stats_reject r)
{
	return (unsigned)r < REJ_MAX ? reject_names[r] : "unknown";
}

/* stats_delivery_name - Prometheus label value of a delivery outcome */
const char *
stats_delivery_name(enum stats_delivery d)
{
	return (unsigned)d < DLV_MAX ? delivery_names[d] : "unknown";
}

static const char *const dns_type_names[SDNS_MAX] = {
	[SDNS_MX] = "mx", [SDNS_A] = "a", [SDNS_AAAA] = "aaaa", [SDNS_PTR] = "ptr",
};

static const char *const dns_result_names[SDNS_RESULT_MAX] = {
	[SDNS_OK] = "ok", [SDNS_NOTFOUND] = "notfound", [SDNS_TEMPFAIL] = "tempfail",
};

/* stats_dns_type_name - label value of a DNS record type */
const char *
stats_dns_type_name(enum stats_dns_type t)
{
	return (unsigned)t < SDNS_MAX ? dns_type_names[t] : "unknown";
}

/* stats_dns_result_name - label value of a DNS lookup result */
const char *
stats_dns_result_name(enum stats_dns_result r)
{
	return (unsigned)r < SDNS_RESULT_MAX ? dns_result_names[r] : "unknown";
}

/* stats_dns - count one DNS lookup (no-op before stats_attach) */
void
stats_dns(enum stats_dns_type t, enum stats_dns_result r)
{
	if (stats != NULL && (unsigned)t < SDNS_MAX && (unsigned)r < SDNS_RESULT_MAX)
		stats_add(&stats->dns_lookups[t][r], 1);
}

static const char *const reason_names[SREASON_MAX] = {
	[SREASON_OTHER] = "other",
	[SREASON_ADDRESS] = "address",
	[SREASON_MAILBOX] = "mailbox",
	[SREASON_SYSTEM] = "system",
	[SREASON_NETWORK] = "network",
	[SREASON_PROTOCOL] = "protocol",
	[SREASON_CONTENT] = "content",
	[SREASON_POLICY] = "policy",
	[SREASON_EXPIRED] = "expired",
};

static const char *const dsn_names[SDSN_MAX] = {
	[SDSN_FAILED] = "failed",
	[SDSN_DELAYED] = "delayed",
};

static const char *const queue_state_names[SQUEUE_MAX] = {
	[SQUEUE_ACTIVE] = "active",
	[SQUEUE_PENDING] = "pending",
	[SQUEUE_DEFERRED] = "deferred",
	[SQUEUE_HELD] = "held",
	[SQUEUE_BROKEN] = "broken",
};

/* stats_reason_name - label value of a deferral or bounce reason */
const char *
stats_reason_name(enum stats_reason r)
{
	return (unsigned)r < SREASON_MAX ? reason_names[r] : "unknown";
}

/* stats_dsn_name - label value of a DSN action */
const char *
stats_dsn_name(enum stats_dsn d)
{
	return (unsigned)d < SDSN_MAX ? dsn_names[d] : "unknown";
}

/* stats_queue_state_name - label value of a queue state */
const char *
stats_queue_state_name(enum stats_queue_state q)
{
	return (unsigned)q < SQUEUE_MAX ? queue_state_names[q] : "unknown";
}

/* stats_reason_of - the RFC 3463 subject of "C.S.D" as a reason; "other"
 * when dsn is not such a code or its subject is 0 or unknown */
enum stats_reason
stats_reason_of(const char *dsn)
{
	if (dsn == NULL || (dsn[0] != '2' && dsn[0] != '4' && dsn[0] != '5') ||
	    dsn[1] != '.' || dsn[2] < '1' || dsn[2] > '7' || dsn[3] != '.')
		return SREASON_OTHER;
	return (enum stats_reason)(SREASON_ADDRESS + (dsn[2] - '1'));
}

/* stats_outcome - count one recipient outcome by transport type, and a
 * deferral or bounce by reason (no-op before stats_attach) */
void
stats_outcome(int transport, enum stats_delivery d, enum stats_reason why)
{
	if (stats == NULL || (unsigned)d >= DLV_MAX || (unsigned)why >= SREASON_MAX)
		return;
	if (transport > 0 && transport < STATS_TRANSPORT_MAX)
		stats_add(&stats->transport_deliveries[transport][d], 1);
	if (d == DLV_DEFERRED)
		stats_add(&stats->deferrals[why], 1);
	else if (d == DLV_BOUNCED)
		stats_add(&stats->bounces[why], 1);
}
