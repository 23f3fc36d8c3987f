/*
 * anvil.c - the per-client-address table shared by every smtpd process
 * (Postfix anvil(8) as shared memory instead of a server process).
 *
 * Owns: the layout of the table (struct anvil) in a memfd the master
 * creates and only the smtpd children map, its lock, its hash and its
 * eviction rule.
 *
 * Layout and choices:
 *   - ANVIL_SLOTS fixed slots keyed by the 16-byte client address (IPv4
 *     as IPv4-mapped IPv6, so both spellings of one client share a slot).
 *     Open addressing: an address lives in one of the ANVIL_PROBE slots
 *     after its hash. A lookup scans all of them (a slot may be taken over
 *     in the middle of a run, so there is no early stop and no tombstone);
 *     an insert takes the first empty or idle slot there. Idle means no
 *     open connection and every window over; nothing else is ever evicted,
 *     so a live count is never lost. When no slot is free the call answers
 *     ANVIL_FULL and counts nothing: callers fail open.
 *   - The hash is keyed with 128 random bits chosen by the master, so a
 *     client cannot pick addresses that crowd one neighbourhood.
 *   - Connections are counted per smtpd process index (a column), so the
 *     master resets the column of a process that died (crash, SIGKILL)
 *     and its sessions never leak into the counts. The master does that
 *     with atomic stores and no lock: it must never block on its children,
 *     and only the process of a column (now dead) ever raises it.
 *   - Windows (messages, AUTH failures) are fixed: they start with the
 *     first event and end 'window' seconds later, in CLOCK_MONOTONIC
 *     seconds, the same clock in every process.
 *   - One pthread mutex, PTHREAD_PROCESS_SHARED and PTHREAD_MUTEX_ROBUST:
 *     a process killed while holding it leaves EOWNERDEAD to the next one,
 *     which marks it consistent and goes on (the slot it was changing may
 *     be off by one event; nothing points anywhere, so nothing can break).
 *     Critical sections are a scan of ANVIL_PROBE slots.
 *   Counts are per Postern instance, as Postfix's are per host; several
 *   instances behind a load balancer each enforce their own limits.
 *
 * SECURITY: every smtpd maps the region read-write, so a subverted smtpd
 * could corrupt it: that can make limits wrong for clients or stall the
 * other smtpd processes on the lock (it could as well stop serving), but
 * never make a process read or write outside the region: every index is
 * computed locally and bounded by the compile-time sizes, never read from
 * it. The master never reads the region after creating it and never
 * takes its lock, so nothing an smtpd does there reaches the master. The
 * memfd is sealed against growing and shrinking. Only addresses and
 * counters are stored.
 * STANDARDS: none (POSIX.1-2008 robust process-shared mutexes).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anvil.h"
#include "log.h"

#define ANVIL_MAGIC 0x706e7631u /* "pnv1": bump on any layout change */

/* One client address. conns[] is read and written with atomics: the
 * master zeroes a column without the lock. */
struct anvil_slot {
	uint8_t addr[16];
	uint32_t used;
	uint32_t msg_count;     /* MAIL commands in the window */
	uint32_t auth_count;    /* AUTH failures in the window */
	int64_t msg_end;        /* monotonic s: the message window ends */
	int64_t auth_end;       /* ... the AUTH failure window ends */
	uint16_t conns[ANVIL_COLUMNS];
};

struct anvil {
	uint32_t magic;
	uint32_t nslots;        /* ANVIL_SLOTS, checked by anvil_attach */
	uint32_t ncolumns;      /* ANVIL_COLUMNS, likewise */
	uint32_t pad;
	uint64_t seed[2];       /* hash key */
	int64_t full_warned;    /* monotonic s of the last "full" warning */
	pthread_mutex_t lock;
	struct anvil_slot slot[ANVIL_SLOTS];
};

/* anvil_map - map fd's table read-write shared; NULL on failure */
static struct anvil *
anvil_map(int fd)
{
	void *p = mmap(NULL, sizeof(struct anvil), PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* anvil_lock_init - the process-shared robust mutex; fatal on failure */
static void
anvil_lock_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t at;

	if (pthread_mutexattr_init(&at) != 0 ||
	    pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(m, &at) != 0)
		fatalx("anvil: cannot make a process-shared robust mutex");
	pthread_mutexattr_destroy(&at);
}

/* anvil_create - master: make, size, seal and map the memfd */
int
anvil_create(struct anvil **ap)
{
	int fd = memfd_create("postern-anvil", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	struct anvil *a;

	if (fd == -1)
		fatal("memfd_create anvil");
	if (ftruncate(fd, sizeof(struct anvil)) == -1)
		fatal("ftruncate anvil");
	/* best effort: children must not shrink or grow the region */
	(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	if ((a = anvil_map(fd)) == NULL)
		fatal("mmap anvil");
	a->nslots = ANVIL_SLOTS;
	a->ncolumns = ANVIL_COLUMNS;
	a->seed[0] = ((uint64_t)arc4random() << 32) | arc4random();
	a->seed[1] = ((uint64_t)arc4random() << 32) | arc4random();
	anvil_lock_init(&a->lock);
	__atomic_store_n(&a->magic, ANVIL_MAGIC, __ATOMIC_RELEASE);
	*ap = a;
	return fd;
}

/* anvil_attach - child: map fd and check that it holds our layout */
struct anvil *
anvil_attach(int fd)
{
	struct anvil *a;
	struct stat st;

	if (fstat(fd, &st) == -1) {
		log_warn("anvil fd %d", fd);
		return NULL;
	}
	if ((size_t)st.st_size < sizeof(struct anvil)) {
		log_warnx("anvil fd %d: region too small (%lld bytes)", fd,
		    (long long)st.st_size);
		return NULL;
	}
	if ((a = anvil_map(fd)) == NULL) {
		log_warn("mmap anvil fd %d", fd);
		return NULL;
	}
	if (__atomic_load_n(&a->magic, __ATOMIC_ACQUIRE) != ANVIL_MAGIC ||
	    a->nslots != ANVIL_SLOTS || a->ncolumns != ANVIL_COLUMNS) {
		log_warnx("anvil fd %d: not a table of this version", fd);
		munmap(a, sizeof(*a));
		return NULL;
	}
	return a;
}

/* anvil_detach - unmap the table */
void
anvil_detach(struct anvil **ap)
{
	if (*ap != NULL)
		munmap(*ap, sizeof(**ap));
	*ap = NULL;
}

/* anvil_now - CLOCK_MONOTONIC seconds */
time_t
anvil_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* anvil_key - IPv4 as IPv4-mapped IPv6; IPv6 as it is */
int
anvil_key(const struct sockaddr *sa, uint8_t key[16])
{
	const struct sockaddr_in *in4;
	const struct sockaddr_in6 *in6;

	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		in4 = (const struct sockaddr_in *)(const void *)sa;
		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &in4->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		in6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(key, &in6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

/* mix64 - the splitmix64 finaliser */
static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* anvil_hash - keyed hash of an address: the first slot it may use */
static size_t
anvil_hash(const struct anvil *a, const uint8_t key[16])
{
	uint64_t w0, w1;

	memcpy(&w0, key, 8);
	memcpy(&w1, key + 8, 8);
	return (size_t)(mix64(mix64(w0 ^ a->seed[0]) ^ w1 ^ a->seed[1]) % ANVIL_SLOTS);
}

/* anvil_lock - take the lock, repairing it after a dead owner; -1
 * (logged) when it cannot be had: the caller fails open */
static int
anvil_lock(struct anvil *a)
{
	int r = pthread_mutex_lock(&a->lock);

	if (r == EOWNERDEAD) {
		log_warnx("anvil: a process died holding the table lock; recovered");
		pthread_mutex_consistent(&a->lock);
		return 0;
	}
	if (r != 0) {
		log_warnx("anvil: cannot lock the table: %s", strerror(r));
		return -1;
	}
	return 0;
}

/* anvil_unlock - release the lock */
static void
anvil_unlock(struct anvil *a)
{
	pthread_mutex_unlock(&a->lock);
}

/* slot_conns - connections of a slot over all columns */
static unsigned
slot_conns(const struct anvil_slot *s)
{
	unsigned n = 0, i;

	for (i = 0; i < ANVIL_COLUMNS; i++)
		n += __atomic_load_n(&s->conns[i], __ATOMIC_RELAXED);
	return n;
}

/* slot_idle - nothing open and every window over: the slot may go */
static int
slot_idle(const struct anvil_slot *s, time_t now)
{
	return slot_conns(s) == 0 && now >= s->msg_end && now >= s->auth_end;
}

/* slot_take - make s the (empty) slot of key */
static void
slot_take(struct anvil_slot *s, const uint8_t key[16])
{
	unsigned i;

	memcpy(s->addr, key, 16);
	s->used = 1;
	s->msg_count = s->auth_count = 0;
	s->msg_end = s->auth_end = 0;
	for (i = 0; i < ANVIL_COLUMNS; i++)
		__atomic_store_n(&s->conns[i], 0, __ATOMIC_RELAXED);
}

/* slot_find - under the lock: the slot of key; with create, a free one
 * taken for it when it has none; NULL if none (or full) */
static struct anvil_slot *
slot_find(struct anvil *a, const uint8_t key[16], time_t now, int create)
{
	struct anvil_slot *s, *spare = NULL;
	size_t h = anvil_hash(a, key), i;

	for (i = 0; i < ANVIL_PROBE; i++) {
		s = &a->slot[(h + i) % ANVIL_SLOTS];
		if (s->used && memcmp(s->addr, key, 16) == 0)
			return s;
		if (spare == NULL && (!s->used || slot_idle(s, now)))
			spare = s;
	}
	if (!create || spare == NULL)
		return NULL;
	slot_take(spare, key);
	return spare;
}

/* anvil_connect - count a connection unless limit are open already */
enum anvil_status
anvil_connect(struct anvil *a, const uint8_t key[16], unsigned column,
    unsigned limit, time_t now, unsigned *open)
{
	struct anvil_slot *s;
	enum anvil_status r = ANVIL_OK;
	uint16_t c;

	*open = 0;
	if (column >= ANVIL_COLUMNS || anvil_lock(a) == -1)
		return ANVIL_FULL;
	if ((s = slot_find(a, key, now, 1)) == NULL) {
		anvil_unlock(a);
		return ANVIL_FULL;
	}
	*open = slot_conns(s);
	if (limit > 0 && *open >= limit)
		r = ANVIL_OVER;
	else if ((c = __atomic_load_n(&s->conns[column], __ATOMIC_RELAXED)) < UINT16_MAX)
		__atomic_store_n(&s->conns[column], (uint16_t)(c + 1), __ATOMIC_RELAXED);
	anvil_unlock(a);
	return r;
}

/* anvil_disconnect - one connection of column from key ended (never
 * below zero: the master may have reset the column meanwhile) */
void
anvil_disconnect(struct anvil *a, const uint8_t key[16], unsigned column)
{
	struct anvil_slot *s;
	uint16_t c;

	if (column >= ANVIL_COLUMNS || anvil_lock(a) == -1)
		return;
	if ((s = slot_find(a, key, 0, 0)) != NULL &&
	    (c = __atomic_load_n(&s->conns[column], __ATOMIC_RELAXED)) > 0)
		__atomic_store_n(&s->conns[column], (uint16_t)(c - 1), __ATOMIC_RELAXED);
	anvil_unlock(a);
}

/* anvil_connections - connections open from key (all columns) */
unsigned
anvil_connections(struct anvil *a, const uint8_t key[16])
{
	struct anvil_slot *s;
	unsigned n = 0;

	if (anvil_lock(a) == -1)
		return 0;
	if ((s = slot_find(a, key, 0, 0)) != NULL)
		n = slot_conns(s);
	anvil_unlock(a);
	return n;
}

/* window_hit - one event in a fixed window: a new window when the last
 * one is over; the count including this event */
static uint32_t
window_hit(uint32_t *count, int64_t *end, time_t window, time_t now)
{
	if (now >= *end) {
		*end = (int64_t)now + (window > 0 ? window : 1);
		*count = 0;
	}
	if (*count < UINT32_MAX)
		(*count)++;
	return *count;
}

/* slot_window_hit - under the lock, one more event in key's message
 * window (auth 0) or AUTH failure window (auth 1); the count in *count;
 * -1 when the table cannot take key */
static int
slot_window_hit(struct anvil *a, const uint8_t key[16], int auth,
    time_t window, time_t now, unsigned *count)
{
	struct anvil_slot *s;

	*count = 0;
	if (anvil_lock(a) == -1)
		return -1;
	if ((s = slot_find(a, key, now, 1)) == NULL) {
		anvil_unlock(a);
		return -1;
	}
	*count = auth ? window_hit(&s->auth_count, &s->auth_end, window, now) :
	    window_hit(&s->msg_count, &s->msg_end, window, now);
	anvil_unlock(a);
	return 0;
}

/* anvil_message - one MAIL command from key in the message window */
enum anvil_status
anvil_message(struct anvil *a, const uint8_t key[16], unsigned limit,
    time_t window, time_t now, unsigned *count)
{
	if (slot_window_hit(a, key, 0, window, now, count) == -1)
		return ANVIL_FULL;
	return limit > 0 && *count > limit ? ANVIL_OVER : ANVIL_OK;
}

/* anvil_auth_failure - one more AUTH failure from key in its window */
enum anvil_status
anvil_auth_failure(struct anvil *a, const uint8_t key[16], time_t window,
    time_t now)
{
	unsigned count;

	return slot_window_hit(a, key, 1, window, now, &count) == -1 ?
	    ANVIL_FULL : ANVIL_OK;
}

/* anvil_auth_failures - the AUTH failures of key's current window */
unsigned
anvil_auth_failures(struct anvil *a, const uint8_t key[16], time_t now)
{
	struct anvil_slot *s;
	unsigned n = 0;

	if (anvil_lock(a) == -1)
		return 0;
	if ((s = slot_find(a, key, now, 0)) != NULL && now < s->auth_end)
		n = s->auth_count;
	anvil_unlock(a);
	return n;
}

/* anvil_column_reset - master: zero one column in every slot, no lock */
void
anvil_column_reset(struct anvil *a, unsigned column)
{
	size_t i;

	if (a == NULL || column >= ANVIL_COLUMNS)
		return;
	for (i = 0; i < ANVIL_SLOTS; i++)
		__atomic_store_n(&a->slot[i].conns[column], 0, __ATOMIC_RELAXED);
}

/* anvil_full_warn_due - 1 for the one caller that may warn now */
int
anvil_full_warn_due(struct anvil *a, time_t now)
{
	int64_t last = __atomic_load_n(&a->full_warned, __ATOMIC_RELAXED);

	if (last != 0 && now - last < ANVIL_FULL_WARN)
		return 0;
	return __atomic_compare_exchange_n(&a->full_warned, &last,
	    (int64_t)(now != 0 ? now : 1), 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}
