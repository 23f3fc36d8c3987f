/*
 * spool.c - queue ids: 11 hex digits of milliseconds since the epoch (so
 * ids sort by arrival until the year 2527) and 5 random, all upper case.
 *
 * Owns: the queue id format (spool.h).
 * SECURITY: ids name spool files, so queue_id_valid() is the gate for any
 * id that arrives from another process or a command line: hex only, no
 * path characters.
 * STANDARDS: none.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "util.h"

/* queue_id_new - a fresh id into buf (QUEUE_ID_LEN + 1 bytes) */
void
queue_id_new(char *buf)
{
	/* 11 hex digits hold 2^44 ms (557 years from 1970) */
	uint64_t ms = now_real_ms() & 0xfffffffffffull;
	uint32_t rnd = arc4random() & 0xfffffu;         /* 5 hex digits */

	snprintf(buf, QUEUE_ID_LEN + 1, "%011llX%05X", (unsigned long long)ms,
	    (unsigned)rnd);
}

/* queue_id_valid - exactly QUEUE_ID_LEN upper-case hex digits */
int
queue_id_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < QUEUE_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return s[QUEUE_ID_LEN] == '\0';
}
