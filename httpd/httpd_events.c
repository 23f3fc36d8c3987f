/*
 * httpd_events.c - GET /api/v1/events: the live stream of queue and
 * delivery events (seed 003's audit stream) as Server-Sent Events,
 * authenticated with the bearer token admin_token.
 *
 * Owns: the list of subscribers and the keep-alive timer. Each event
 * queued sends (IPC_HTTPD_EVENT, one JSON object) goes to every
 * subscriber as "id: N" and "data: JSON"; a client that reconnects with
 * Last-Event-ID gets the events it missed while they are still in
 * httpd's ring. A comment line every EVENTS_PING seconds keeps proxies
 * from closing an idle stream and finds clients that went away.
 *
 * Bounded: a subscriber whose connection holds more than EVENTS_BACKLOG
 * bytes not yet sent is disconnected, so a slow reader never makes httpd
 * (or queued, which drops events for a backed-up httpd) grow or stall.
 *
 * SECURITY: events carry addresses and remote replies: the stream needs
 * the token, compared in constant time (SHA-256 of both sides, so the
 * length does not leak either). The token is never logged. Without
 * admin_token the path does not exist (404).
 * STANDARDS: HTML Living Standard 9.2 (Server-Sent Events), RFC 6750
 * (Bearer tokens), RFC 9110 (401, WWW-Authenticate).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "conf.h"
#include "httpd.h"
#include "log.h"
#include "util.h"

#ifndef EVENTS_BACKLOG
#define EVENTS_BACKLOG (256u * 1024)    /* unsent bytes per subscriber */
#endif
#define EVENTS_PING 15                  /* seconds between keep-alives */
#define EVENTS_MAX 64                   /* subscribers at once */
#define EVENTS_IDLE 86400               /* seconds a stream may idle */

/* One open stream. */
struct subscriber {
	TAILQ_ENTRY(subscriber) entry;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
};

TAILQ_HEAD(subscriber_list, subscriber);

static struct {
	struct subscriber_list subs;
	size_t nsubs;
	struct event *ping;
} events = { .subs = TAILQ_HEAD_INITIALIZER(events.subs) };

/* digest - SHA-256 of s into md (32 bytes) */
static void
digest(const char *s, unsigned char *md)
{
	unsigned int len = 0;

	if (EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL) != 1 ||
	    len != 32)
		fatalx("SHA-256 failed");
}

/* httpd_token_ok - "Authorization: Bearer TOKEN" matches admin_token */
int
httpd_token_ok(struct evhttp_request *req)
{
	const char *token = httpd_conf()->http.admin_token;
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	unsigned char want[32], got[32];

	if (*token == '\0' || h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	for (h += 7; *h == ' '; h++)
		continue;
	digest(token, want);
	digest(h, got);
	return CRYPTO_memcmp(want, got, sizeof(want)) == 0;
}

/* sub_free_later - free a request libevent detached (after the callback
 * that told us, which is still using the connection) */
static void
sub_free_later(evutil_socket_t fd, short what, void *arg)
{
	evhttp_send_reply_end(arg);
}

/* sub_gone - the client closed its end: forget it */
static void
sub_gone(struct evhttp_connection *conn, void *arg)
{
	struct subscriber *s = arg;

	TAILQ_REMOVE(&events.subs, s, entry);
	events.nsubs--;
	event_base_once(evhttp_connection_get_base(conn), -1, EV_TIMEOUT,
	    sub_free_later, s->req, NULL);
	free(s);
}

/* sub_drop - disconnect a subscriber that does not keep up */
static void
sub_drop(struct subscriber *s)
{
	struct evhttp_connection *conn = s->conn;

	log_warnx("events: a subscriber fell %u bytes behind; disconnected",
	    EVENTS_BACKLOG);
	TAILQ_REMOVE(&events.subs, s, entry);
	events.nsubs--;
	evhttp_connection_set_closecb(conn, NULL, NULL);
	free(s);
	evhttp_connection_free(conn);   /* frees the request too */
}

/* sub_send - text to one subscriber unless it is too far behind; 0/-1 */
static int
sub_send(struct subscriber *s, const char *text, size_t len)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(s->conn);
	struct evbuffer *b;

	if (bev != NULL &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > EVENTS_BACKLOG) {
		sub_drop(s);
		return -1;
	}
	if ((b = evbuffer_new()) == NULL)
		fatalx("out of memory");
	evbuffer_add(b, text, len);
	evhttp_send_reply_chunk(s->req, b);
	evbuffer_free(b);
	return 0;
}

/* broadcast - text to every subscriber */
static void
broadcast(const char *text, size_t len)
{
	struct subscriber *s, *next;

	for (s = TAILQ_FIRST(&events.subs); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		(void)sub_send(s, text, len);
	}
}

/* frame - "id: N\ndata: JSON\n\n" (malloc'd) */
static char *
frame(unsigned id, const char *json)
{
	return xasprintf("id: %u\ndata: %s\n\n", id, json);
}

/* events_publish - one event from queued to every subscriber */
void
events_publish(unsigned id, const char *json)
{
	char *f;

	if (events.nsubs == 0 || strpbrk(json, "\r\n") != NULL)
		return;
	f = frame(id, json);
	broadcast(f, strlen(f));
	free(f);
}

/* ping - the keep-alive comment */
static void
ping(evutil_socket_t fd, short what, void *arg)
{
	broadcast(": ping\n\n", 8);
}

/* replay - the events after Last-Event-ID still in the ring */
static void
replay(struct subscriber *s, const char *last)
{
	unsigned long from;
	unsigned id;
	const char *json;
	char *end, *f;

	if (last == NULL)
		return;
	from = strtoul(last, &end, 10);
	if (*last == '\0' || *end != '\0')
		return;
	for (id = (unsigned)from + 1; (json = httpd_event(id)) != NULL; id++) {
		f = frame(id, json);
		if (sub_send(s, f, strlen(f)) == -1) {
			free(f);
			return;
		}
		free(f);
	}
}

/* events_route - GET /api/v1/events: 401 without the token, else the
 * stream */
void
events_route(struct evhttp_request *req)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct subscriber *s;

	if (!httpd_token_ok(req)) {
		evhttp_add_header(out, "WWW-Authenticate", "Bearer realm=\"postern\"");
		httpd_reply_error(req, 401, "Unauthorized", NULL, "token required");
		return;
	}
	if (events.nsubs >= EVENTS_MAX) {
		httpd_reply_error(req, HTTP_SERVUNAVAIL, "Service Unavailable", NULL,
		    "too many event streams");
		return;
	}
	if (events.ping == NULL) {
		struct timeval tv = { EVENTS_PING, 0 };

		events.ping = event_new(evhttp_connection_get_base(
		    evhttp_request_get_connection(req)), -1, EV_PERSIST, ping, NULL);
		event_add(events.ping, &tv);
	}
	s = xcalloc(1, sizeof(*s));
	s->req = req;
	s->conn = evhttp_request_get_connection(req);
	/* a stream is idle by nature: only the backlog bound applies */
	evhttp_connection_set_timeout(s->conn, EVENTS_IDLE);
	TAILQ_INSERT_TAIL(&events.subs, s, entry);
	events.nsubs++;
	evhttp_connection_set_closecb(s->conn, sub_gone, s);
	evhttp_add_header(out, "Content-Type", "text/event-stream");
	evhttp_add_header(out, "Cache-Control", "no-store");
	evhttp_add_header(out, "X-Accel-Buffering", "no");
	evhttp_send_reply_start(req, HTTP_OK, "OK");
	if (sub_send(s, "retry: 2000\n\n", 13) == 0)
		replay(s, evhttp_find_header(evhttp_request_get_input_headers(req),
		    "Last-Event-ID"));
}
