/*
 * queued_dstat.h - what the operator console shows per destination
 * (queued_dstat.c): the recipient outcomes of the last hour, the last
 * error, and the tally of the queue by destination that the control
 * command "destinations" builds. Pure bookkeeping, no I/O and no clock
 * of its own (times are passed in), so t/unit/dstat-test.c drives it.
 *
 * A destination is the key queued_destination() computes (the same as
 * queued_dest.h's). The outcome history outlives the destination's
 * messages (delivered in the last hour is still shown once the queue is
 * empty) and is bounded: at most QDSTAT_MAX destinations, the one
 * updated least recently forgotten first.
 */
#ifndef POSTERN_QUEUED_DSTAT_H
#define POSTERN_QUEUED_DSTAT_H

#include <stddef.h>
#include <stdint.h>

#define QDSTAT_MAX 1024         /* destinations with a history */
#define QDSTAT_MINUTES 60       /* the history: one bucket per minute */

/* What one delivery attempt did for one recipient. */
enum qdstat_outcome { QDSTAT_DELIVERED = 0, QDSTAT_DEFERRED, QDSTAT_BOUNCED,
	QDSTAT_OUTCOMES };

/* How a waiting recipient counts in a tally. */
enum qdstat_wait { QDSTAT_WAIT_PENDING = 0, QDSTAT_WAIT_DEFERRED,
	QDSTAT_WAIT_HELD };

/* One destination as the console shows it. */
struct qdstat_row {
	const char *key;
	unsigned waiting;       /* messages with a recipient not final there */
	unsigned deferred;      /*   of them with a deferred recipient */
	unsigned held;          /*   of them with a held recipient */
	unsigned last_hour[QDSTAT_OUTCOMES];    /* recipient outcomes */
	const char *last_dsn;   /* of the last deferral or bounce, or "" */
	const char *last_error; /* its reply text, or "" */
	int64_t last_error_at;  /* unix seconds, 0 = none */
	int64_t last_delivered_at;
};

struct qdwalk;

/* qdstat_outcome - count one outcome for destination key at now; a
 * deferral or a bounce becomes its last error (dsn, reply) */
void qdstat_outcome(const char *key, enum qdstat_outcome o, const char *dsn,
    const char *reply, int64_t now);
/* qdstat_count - destinations with a history (tests) */
size_t qdstat_count(void);
/* qdstat_reset - forget every history (tests) */
void qdstat_reset(void);

/* qdwalk_new - an empty tally */
struct qdwalk *qdwalk_new(void);
/* qdwalk_rcpt - a waiting recipient of message id for key (the
 * recipients of one message come one after the other) */
void qdwalk_rcpt(struct qdwalk *w, const char *key, const char *id,
    enum qdstat_wait how);
/* qdwalk_rows - fn for every destination of the tally and every other
 * one with a history, in key order, with its outcomes of the hour
 * before now */
void qdwalk_rows(struct qdwalk *w, int64_t now,
    void (*fn)(const struct qdstat_row *, void *), void *arg);
/* qdwalk_free - release the tally; *wp = NULL */
void qdwalk_free(struct qdwalk **wp);

#endif
