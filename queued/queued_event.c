/*
 * queued_event.c - the queue's state changes as log lines and as events
 * for httpd (IPC_HTTPD_EVENT, one JSON object each; httpd keeps the last
 * ones for its live stream).
 *
 * Log formats (stable; postern-queued(8) documents them):
 *   ID: from=<S> size=N nrcpt=N (queue active)          queued
 *   ID: to=<R> from=<S> relay=.. delay=.. attempt=N dsn=X status=sent|
 *       deferred|bounced (reply)                        every attempt
 *   ID: to=<R> from=<S> status=held|released|requeued   control
 *   ID: bounce-sent id=DSNID to=<S> action=failed|delayed nrcpt=N
 *   ID: deleted        ID: removed        ID: retained
 * Event names: queued, delivered, deferred, bounced, expired, held,
 * released, requeued, deleted, removed, bounce-sent.
 *
 * Owns: nothing; it formats and sends. An httpd link with more than
 * EVENT_BACKLOG bytes still unsent misses events rather than grow
 * queued's memory.
 *
 * SECURITY: addresses and replies come from outside: control
 * characters never reach a log line, and jansson escapes the JSON.
 * STANDARDS: RFC 8259 (JSON).
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "queued.h"
#include "util.h"

#define EVENT_BACKLOG (1024u * 1024)

/* clean - copy s into buf with control characters replaced by '?' */
static const char *
clean(char *buf, size_t len, const char *s)
{
	size_t i;

	if (s == NULL)
		s = "";
	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

/* iso_time - "2026-11-22T04:04:47.942Z" for unix milliseconds ms */
static void
iso_time(char *buf, size_t len, uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char s[24];

	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03uZ", s, (unsigned)(ms % 1000));
}

/* event_json - the JSON text of one event (malloc'd) */
static char *
event_json(const char *event, const struct qmsg *m, const struct qrcpt *r,
    const char *relay)
{
	uint64_t now = now_real_ms();
	uint64_t delay = now > m->arrival_ms ? now - m->arrival_ms : 0;
	char when[32];
	json_t *j;
	char *s;

	iso_time(when, sizeof(when), now);
	j = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:i, s:f}",
	    "time", when, "event", event, "id", m->id,
	    "from", m->sender != NULL ? m->sender : "",
	    "rcpt", r != NULL ? r->address : NULL,
	    "dsn", r != NULL && r->last_dsn != NULL && *r->last_dsn ? r->last_dsn : NULL,
	    "reply", r != NULL && r->last_reply != NULL && *r->last_reply ?
	    r->last_reply : NULL, "relay", relay,
	    "attempt", r != NULL ? (json_int_t)r->attempts : (json_int_t)0,
	    "delay", (double)delay / 1000.0);
	if (j == NULL)
		return NULL;        /* invalid UTF-8 in an address or reply */
	s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(j);
	return s;
}

/* event_log - the log line of a non-attempt event */
static void
event_log(const char *event, const struct qmsg *m, const struct qrcpt *r)
{
	char to[512], from[512];

	if (r == NULL)
		log_info("%s: %s", m->id, event);
	else
		log_info("%s: to=<%s> from=<%s> status=%s", m->id,
		    clean(to, sizeof(to), r->address),
		    clean(from, sizeof(from), m->sender), event);
}

/* qevent - log (if log_it) and send the event to every httpd link */
void
qevent(const char *event, const struct qmsg *m, const struct qrcpt *r,
    const char *relay, int log_it)
{
	struct msgbuf b;
	char *s;

	if (log_it)
		event_log(event, m, r);
	if (qlink_count(PROC_HTTPD) == 0)
		return;
	if ((s = event_json(event, m, r, relay)) == NULL) {
		log_debug("%s: event %s not encodable as JSON", m->id, event);
		return;
	}
	msgbuf_init(&b);
	msg_add_str(&b, s);
	(void)qlink_broadcast(PROC_HTTPD, IPC_HTTPD_EVENT, &b, EVENT_BACKLOG);
	msgbuf_free(&b);
	free(s);
}
