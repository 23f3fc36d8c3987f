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
