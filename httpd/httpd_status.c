/*
 * httpd_status.c - GET /: a small status page (HTML, inline style, no
 * script, no external assets) with the queue figures, rates over the
 * last minute, the children, and the most recent queue events; it
 * reloads itself every STATUS_REFRESH seconds.
 *
 * Owns: a ring of counter samples taken every STATUS_SAMPLE seconds, from
 * which the per-minute rates are computed.
 * SECURITY: shows what /metrics shows, plus event kinds, times, queue ids
 * and status codes, never an address or a remote reply (those are
 * behind the token of /api/v1/events). Every string is HTML-escaped; a
 * Content-Security-Policy forbids scripts and outside resources.
 * STANDARDS: HTML Living Standard, RFC 9110.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "conf.h"
#include "httpd.h"
#include "log.h"
#include "proc.h"
#include "stats.h"
#include "util.h"

#define STATUS_SAMPLE 5         /* seconds between samples */
#define STATUS_SAMPLES 13       /* one minute and one more */
#define STATUS_REFRESH "5"      /* seconds between page reloads */
#define STATUS_EVENTS 15        /* recent events shown */

/* One sample of the counters that have rates. */
struct sample {
	time_t t;
	uint64_t accepted, delivered, deferred, bounced;
};

static struct {
	struct sample s[STATUS_SAMPLES];
	unsigned n;             /* samples taken */
	struct event *ev;
} status;

/* sample_now - the counters now */
static void
sample_now(struct sample *s)
{
	s->t = time(NULL);
	s->accepted = stats_read(&stats->messages_accepted) +
	    stats_read(&stats->http_send[HSEND_ACCEPTED]);
	s->delivered = stats_read(&stats->deliveries[DLV_DELIVERED]);
	s->deferred = stats_read(&stats->deliveries[DLV_DEFERRED]);
	s->bounced = stats_read(&stats->deliveries[DLV_BOUNCED]);
}

/* sample_tick - keep one more sample */
static void
sample_tick(evutil_socket_t fd, short what, void *arg)
{
	sample_now(&status.s[status.n++ % STATUS_SAMPLES]);
}

/* status_init - the first sample and the sampling timer */
void
status_init(struct event_base *base)
{
	struct timeval tv = { STATUS_SAMPLE, 0 };

	sample_tick(-1, 0, NULL);
	status.ev = event_new(base, -1, EV_PERSIST, sample_tick, NULL);
	event_add(status.ev, &tv);
}

/* oldest - the oldest sample at most a minute old (or the first) */
static const struct sample *
oldest(void)
{
	unsigned k = status.n < STATUS_SAMPLES ? status.n : STATUS_SAMPLES;

	return &status.s[(status.n - k) % STATUS_SAMPLES];
}

/* per_min - the rate of a counter between a and b, per minute */
static double
per_min(uint64_t a, uint64_t b, time_t dt)
{
	return dt > 0 && b >= a ? (double)(b - a) * 60.0 / (double)dt : 0.0;
}

/* html - s HTML-escaped into out */
static void
html(struct evbuffer *out, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '<': evbuffer_add(out, "&lt;", 4); break;
		case '>': evbuffer_add(out, "&gt;", 4); break;
		case '&': evbuffer_add(out, "&amp;", 5); break;
		case '"': evbuffer_add(out, "&quot;", 6); break;
		case '\'': evbuffer_add(out, "&#39;", 5); break;
		default: evbuffer_add(out, s, 1);
		}
	}
}

/* row - one figure of the table (decimals places), with an id for tests
 * and scrapers */
static void
row(struct evbuffer *out, const char *id, const char *label, int decimals,
    double v)
{
	evbuffer_add_printf(out, "<tr><th>%s</th><td id=\"%s\">%.*f</td></tr>\n",
	    label, id, decimals, v);
}

/* page_figures - queue size and rates */
static void
page_figures(struct evbuffer *out)
{
	struct sample now;
	const struct sample *o = oldest();
	time_t dt;

	sample_now(&now);
	dt = now.t - o->t;
	evbuffer_add_printf(out, "<h2>Queue</h2>\n<table>\n");
	row(out, "queue-messages", "messages in the queue", 0,
	    (double)stats_gauge_read(&stats->queue_messages));
	row(out, "queue-recipients", "recipients waiting", 0,
	    (double)stats_gauge_read(&stats->queue_recipients));
	row(out, "accepted-total", "messages accepted", 0, (double)now.accepted);
	row(out, "delivered-total", "deliveries", 0, (double)now.delivered);
	row(out, "deferred-total", "deferrals", 0, (double)now.deferred);
	row(out, "bounced-total", "bounces", 0, (double)now.bounced);
	evbuffer_add_printf(out, "</table>\n<h2>Last minute</h2>\n<table>\n");
	row(out, "accepted-rate", "accepted / min", 1,
	    per_min(o->accepted, now.accepted, dt));
	row(out, "delivered-rate", "delivered / min", 1,
	    per_min(o->delivered, now.delivered, dt));
	row(out, "deferred-rate", "deferred / min", 1,
	    per_min(o->deferred, now.deferred, dt));
	row(out, "bounced-rate", "bounced / min", 1,
	    per_min(o->bounced, now.bounced, dt));
	evbuffer_add_printf(out, "</table>\n");
}

/* page_children - the child table */
static void
page_children(struct evbuffer *out)
{
	json_t *down = json_array();
	size_t n = httpd_down_children(down);

	evbuffer_add_printf(out, "<h2>Processes</h2>\n<p id=\"children\">%s</p>\n",
	    n == 0 ? "all processes up" : "processes down:");
	if (n > 0) {
		size_t i;

		evbuffer_add(out, "<ul>", 4);
		for (i = 0; i < n; i++) {
			evbuffer_add(out, "<li>", 4);
			html(out, json_string_value(json_array_get(down, i)));
			evbuffer_add(out, "</li>", 5);
		}
		evbuffer_add(out, "</ul>\n", 6);
	}
	json_decref(down);
}

/* event_cell - one string member of an event as a table cell */
static void
event_cell(struct evbuffer *out, json_t *e, const char *key)
{
	evbuffer_add(out, "<td>", 4);
	html(out, json_string_value(json_object_get(e, key)));
	evbuffer_add(out, "</td>", 5);
}

/* page_events - the most recent events, newest first */
static void
page_events(struct evbuffer *out)
{
	unsigned id, last = httpd_events_seen(), shown = 0;
	const char *text;
	json_t *e;

	evbuffer_add_printf(out, "<h2>Recent events</h2>\n<table id=\"events\">\n"
	    "<tr><th>time</th><th>event</th><th>queue id</th><th>dsn</th></tr>\n");
	for (id = last; id > 0 && shown < STATUS_EVENTS; id--, shown++) {
		if ((text = httpd_event(id)) == NULL ||
		    (e = json_loads(text, 0, NULL)) == NULL)
			break;
		evbuffer_add(out, "<tr>", 4);
		event_cell(out, e, "time");
		event_cell(out, e, "event");
		event_cell(out, e, "id");
		event_cell(out, e, "dsn");
		evbuffer_add(out, "</tr>\n", 6);
		json_decref(e);
	}
	evbuffer_add_printf(out, "</table>\n");
}

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta http-equiv=\"refresh\" content=\"" STATUS_REFRESH "\">\n"
    "<meta name=\"viewport\" content=\"width=device-width\">\n"
    "<title>Postern status</title>\n<style>\n"
    "body{font:15px/1.4 sans-serif;margin:2em;color:#222;background:#fafafa}\n"
    "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}\n"
    "table{border-collapse:collapse}th,td{padding:.2em .8em;text-align:left;"
    "border-bottom:1px solid #ddd}td{font-family:monospace;font-size:1.1em}\n"
    "</style></head><body>\n";

/* status_route - GET / */
void
status_route(struct evhttp_request *req)
{
	struct evbuffer *out = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (out == NULL)
		fatalx("out of memory");
	evbuffer_add(out, page_head, sizeof(page_head) - 1);
	evbuffer_add(out, "<h1>Postern on ", 15);
	html(out, httpd_conf()->hostname);
	evbuffer_add_printf(out, "</h1>\n<p>version %s</p>\n", PACKAGE_VERSION);
	page_figures(out);
	page_children(out);
	page_events(out);
	evbuffer_add_printf(out, "</body></html>\n");
	evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "Content-Security-Policy",
	    "default-src 'none'; style-src 'unsafe-inline'");
	evhttp_send_reply(req, HTTP_OK, "OK", out);
	evbuffer_free(out);
}
