/*
 * anvil.h - per-client-address counters shared by every smtpd process
 * (Postfix anvil(8), without the server): concurrent connections, MAIL
 * commands per time window and AUTH failures per time window.
 *
 * The master makes one table in a memfd (anvil_create) before it forks
 * anything and hands it to the smtpd children only (proc.h,
 * POSTERN_ANVIL_FD). Each smtpd maps it (anvil_attach) and updates it
 * under a process-shared robust mutex. Connection counts are kept per
 * smtpd process index ("column", 0 .. ANVIL_COLUMNS-1), so the master can
 * forget what a dead process held with anvil_column_reset() without
 * taking the lock.
 *
 * Times are seconds of CLOCK_MONOTONIC (anvil_now), which all processes
 * of one machine share. Windows are fixed: they start with the first
 * event for an address and last 'window' seconds (Postfix's
 * anvil_rate_time_unit works the same way).
 *
 * Threading: every function may be called by several processes at once.
 * Only anvil_column_reset() is meant for the master; it never blocks.
 */
#ifndef POSTERN_ANVIL_H
#define POSTERN_ANVIL_H

#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define ANVIL_SLOTS 8192        /* client addresses tracked at once */
#define ANVIL_PROBE 32          /* slots an address may live in */
#define ANVIL_COLUMNS 16        /* smtpd processes (smtpd_processes max) */
#define ANVIL_FULL_WARN 60      /* at most one "table full" warning per this */

struct anvil;

/* What a counting call found. */
enum anvil_status {
	ANVIL_OK = 0,           /* counted, within the limit */
	ANVIL_OVER,             /* over the limit (connections: not counted) */
	ANVIL_FULL,             /* no slot for the address: nothing counted;
	                           callers fail open */
};

/* anvil_create - master: make, size, seal and map the memfd and set up
 * the lock; returns the descriptor (close-on-exec) and the mapping in
 * *ap. Fatal on failure (the master cannot run without it). */
int anvil_create(struct anvil **ap);
/* anvil_attach - child: map the table on fd and check it; NULL (logged)
 * if fd is not such a table */
struct anvil *anvil_attach(int fd);
/* anvil_detach - unmap; *ap = NULL */
void anvil_detach(struct anvil **ap);

/* anvil_now - monotonic seconds, the clock of every window */
time_t anvil_now(void);
/* anvil_key - the 16-byte key of an IPv4 or IPv6 socket address: IPv4
 * and IPv4-mapped IPv6 give the same key; 0, or -1 if sa is neither */
int anvil_key(const struct sockaddr *sa, uint8_t key[16]);

/* anvil_connect - a new connection from key served by column: counted
 * and ANVIL_OK if fewer than limit are open (limit 0: no limit), else
 * ANVIL_OVER without counting it. *open is the number open before this
 * one (all columns). */
enum anvil_status anvil_connect(struct anvil *a, const uint8_t key[16],
    unsigned column, unsigned limit, time_t now, unsigned *open);
/* anvil_disconnect - a connection counted by anvil_connect ended */
void anvil_disconnect(struct anvil *a, const uint8_t key[16], unsigned column);
/* anvil_connections - connections open from key now (all columns) */
unsigned anvil_connections(struct anvil *a, const uint8_t key[16]);

/* anvil_message - one MAIL command from key: counted in the window of
 * 'window' seconds; ANVIL_OVER when the count (this one included) is
 * above limit. *count is that count. */
enum anvil_status anvil_message(struct anvil *a, const uint8_t key[16],
    unsigned limit, time_t window, time_t now, unsigned *count);

/* anvil_auth_failure - one more AUTH failure from key in its window */
enum anvil_status anvil_auth_failure(struct anvil *a, const uint8_t key[16],
    time_t window, time_t now);
/* anvil_auth_failures - AUTH failures from key in the current window
 * (0 when it ended or there is none) */
unsigned anvil_auth_failures(struct anvil *a, const uint8_t key[16], time_t now);

/* anvil_column_reset - master: the process of column died; forget every
 * connection it held. Lock-free (atomic stores), never blocks. */
void anvil_column_reset(struct anvil *a, unsigned column);

/* anvil_full_warn_due - 1 at most once per ANVIL_FULL_WARN seconds over
 * all processes: the caller then logs that the table is full */
int anvil_full_warn_due(struct anvil *a, time_t now);

#endif
