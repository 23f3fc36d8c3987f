/*
 * httpd_status.c - GET /: the operator console, one self-contained HTML
 * page (its style sheet and script inline, no external asset): the queue
 * figures and the last minute's rates, charts of the last hour and the
 * last 24 hours (httpd_chart.c), the destinations, processes, TLS
 * certificates and DKIM keys (httpd_console.c) and the recent queue
 * events, all rendered here so that they work without a script; and,
 * for a browser with a script and the admin token, a queue browser with
 * actions and live updates (httpd/console.js: it fetches this page again
 * on each queue event and swaps the sections in place).
 *
 * Owns: a ring of counter samples taken every STATUS_SAMPLE seconds for
 * the per-minute rates, the Content-Security-Policy (the SHA-256 hashes
 * of the inline style sheet and script, computed once), the page's
 * layout and the request state while queued's destinations are fetched.
 * SECURITY: anyone who reaches the port sees what /metrics shows, plus
 * event kinds, times, queue ids and status codes, destination names
 * (domains, relay hosts) and certificate and key facts; never an address
 * or a remote reply. A request carrying the admin token (the script
 * sends it as an Authorization header, never a cookie, so a page of
 * another site cannot make the browser send it) also gets the
 * recipients and replies of the events and the destinations' last error
 * texts. Every string is HTML-escaped; the CSP allows only the page's
 * own style sheet and script and connections to this origin.
 * STANDARDS: HTML Living Standard, RFC 9110, Content Security Policy
 * Level 3 (hash sources).
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "conf.h"
#include "httpd.h"
#include "log.h"
#include "proc.h"
#include "stats.h"
#include "util.h"

#include "httpd/httpd_assets.h"

#define STATUS_SAMPLE 5         /* seconds between samples */
#define STATUS_SAMPLES 13       /* one minute and one more */
#define STATUS_REFRESH "5"      /* seconds between reloads without script */
#define STATUS_EVENTS 15        /* recent events shown */

static struct {
	struct ring rates;      /* cumulative counters, every STATUS_SAMPLE s */
	struct event *ev;
	char *csp;
} status;

/* One page being rendered: the request, waiting for the destinations. */
struct page {
	struct evhttp_request *req;
	char sort[16];
	int detail;             /* the request carries the admin token */
};

/* sample_tick - keep one more sample */
static void
sample_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ring_sample s;

	history_read(&s);
	ring_push(&status.rates, &s);
}

/* csp_hash - "'sha256-BASE64'" of text (malloc'd) */
static char *
csp_hash(const char *text)
{
	unsigned char md[32], b64[64];
	unsigned int len = 0;

	if (EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) != 1 ||
	    len != sizeof(md))
		fatalx("SHA-256 failed");
	EVP_EncodeBlock(b64, md, (int)len);
	return xasprintf("'sha256-%s'", b64);
}

/* status_init - the first sample, the sampling timer, the CSP */
void
status_init(struct event_base *base)
{
	struct timeval tv = { STATUS_SAMPLE, 0 };
	char *css = csp_hash(console_css), *js = csp_hash(console_js);

	ring_init(&status.rates, STATUS_SAMPLES);
	sample_tick(-1, 0, NULL);
	status.ev = event_new(base, -1, EV_PERSIST, sample_tick, NULL);
	event_add(status.ev, &tv);
	status.csp = xasprintf("default-src 'none'; style-src %s; script-src %s; "
	    "connect-src 'self'; base-uri 'none'; form-action 'none'; "
	    "frame-ancestors 'none'", css, js);
	free(css);
	free(js);
}

/* per_min - the rate of counter c between samples a and b, per minute */
static double
per_min(const struct ring_sample *a, const struct ring_sample *b, int c)
{
	time_t dt = (time_t)(b->t - a->t);

	return dt > 0 && b->c[c] >= a->c[c] ?
	    (double)(b->c[c] - a->c[c]) * 60.0 / (double)dt : 0.0;
}

/* httpd_html - s HTML-escaped into out */
void
httpd_html(struct evbuffer *out, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '<': EVB_ADD(out, "&lt;"); break;
		case '>': EVB_ADD(out, "&gt;"); break;
		case '&': EVB_ADD(out, "&amp;"); break;
		case '"': EVB_ADD(out, "&quot;"); break;
		case '\'': EVB_ADD(out, "&#39;"); break;
		default: evbuffer_add(out, s, 1);
		}
	}
}

/* httpd_time_text - an ISO 8601 UTC time as <time> ("-" if empty) */
void
httpd_time_text(struct evbuffer *out, const char *iso)
{
	if (iso == NULL || *iso == '\0') {
		EVB_ADD(out, "-");
		return;
	}
	EVB_ADD(out, "<time datetime=\"");
	httpd_html(out, iso);
	EVB_ADD(out, "\">");
	httpd_html(out, iso);
	EVB_ADD(out, "</time>");
}

/* httpd_time - unix seconds as <time> ("-" for 0) */
void
httpd_time(struct evbuffer *out, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char iso[32];

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		*iso = '\0';
	httpd_time_text(out, iso);
}

/* httpd_duration - "3d 4h", "5h 12m", "4m 3s", "12s" */
const char *
httpd_duration(int64_t s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(buf, len, "%lldd %lldh", (long long)(s / 86400),
		    (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(buf, len, "%lldh %lldm", (long long)(s / 3600),
		    (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, len, "%lldm %llds", (long long)(s / 60),
		    (long long)(s % 60));
	else
		snprintf(buf, len, "%llds", (long long)s);
	return buf;
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
	struct ring_sample now;
	const struct ring_sample *o = ring_get(&status.rates, 0);
	int64_t oldest = stats_gauge_read(&stats->queue_oldest_ms);
	char age[32];

	history_read(&now);
	evbuffer_add_printf(out, "<div class=\"figures\"><div><h2>Queue</h2>\n"
	    "<table>\n");
	row(out, "queue-messages", "messages in the queue", 0,
	    (double)stats_gauge_read(&stats->queue_messages));
	row(out, "queue-recipients", "recipients waiting", 0,
	    (double)stats_gauge_read(&stats->queue_recipients));
	evbuffer_add_printf(out, "<tr><th>oldest message</th><td id=\"queue-oldest\">"
	    "%s</td></tr>\n", oldest > 0 ? httpd_duration(now.g[RG_OLDEST_AGE], age,
	    sizeof(age)) : "-");
	row(out, "accepted-total", "messages accepted", 0,
	    (double)now.c[RC_ACCEPTED]);
	row(out, "delivered-total", "deliveries", 0, (double)now.c[RC_DELIVERED]);
	row(out, "deferred-total", "deferrals", 0, (double)now.c[RC_DEFERRED]);
	row(out, "bounced-total", "bounces", 0, (double)now.c[RC_BOUNCED]);
	evbuffer_add_printf(out, "</table></div>\n<div><h2>Last minute</h2>\n"
	    "<table>\n");
	row(out, "accepted-rate", "accepted / min", 1, per_min(o, &now, RC_ACCEPTED));
	row(out, "delivered-rate", "delivered / min", 1,
	    per_min(o, &now, RC_DELIVERED));
	row(out, "deferred-rate", "deferred / min", 1, per_min(o, &now, RC_DEFERRED));
	row(out, "bounced-rate", "bounced / min", 1, per_min(o, &now, RC_BOUNCED));
	evbuffer_add_printf(out, "</table></div></div>\n");
}

/* page_children - whether every child is up, then the process table */
static void
page_children(struct evbuffer *out)
{
	json_t *down = json_array();
	size_t n = httpd_down_children(down), i;

	evbuffer_add_printf(out, "<h2>Processes</h2>\n<p id=\"children\" "
	    "class=\"%s\">%s", n == 0 ? "good" : "bad",
	    n == 0 ? "all processes up" : "processes down:");
	for (i = 0; i < n; i++) {
		EVB_ADD(out, " ");
		httpd_html(out, json_string_value(json_array_get(down, i)));
	}
	evbuffer_add_printf(out, "</p>\n");
	json_decref(down);
	console_processes(out);
}

/* event_cell - one string member of an event as a table cell */
static void
event_cell(struct evbuffer *out, json_t *e, const char *key)
{
	EVB_ADD(out, "<td>");
	httpd_html(out, json_string_value(json_object_get(e, key)));
	EVB_ADD(out, "</td>");
}

/* page_events - the most recent events, newest first (with detail, their
 * recipients and replies too) */
static void
page_events(struct evbuffer *out, int detail)
{
	unsigned id, last = httpd_events_seen(), shown = 0;
	const char *text;
	json_t *e;

	evbuffer_add_printf(out, "<h2>Recent events</h2>\n<div class=\"scroll\">"
	    "<table id=\"events\" data-last=\"%u\">\n<thead><tr><th>time</th>"
	    "<th>event</th><th>queue id</th><th>dsn</th>%s</tr></thead><tbody>\n",
	    last, detail ? "<th>recipient</th><th>reply</th>" : "");
	for (id = last; id > 0 && shown < STATUS_EVENTS; id--, shown++) {
		if ((text = httpd_event(id)) == NULL ||
		    (e = json_loads(text, 0, NULL)) == NULL)
			break;
		EVB_ADD(out, "<tr>");
		event_cell(out, e, "time");
		event_cell(out, e, "event");
		event_cell(out, e, "id");
		event_cell(out, e, "dsn");
		if (detail) {
			event_cell(out, e, "rcpt");
			event_cell(out, e, "reply");
		}
		EVB_ADD(out, "</tr>\n");
		json_decref(e);
	}
	evbuffer_add_printf(out, "</tbody></table></div>\n");
}

static const char page_browser[] =
    "<section id=\"browser\">\n<h2>Queue browser</h2>\n"
    "<noscript><p>The queue browser needs JavaScript and the admin token."
    "</p></noscript>\n"
    "<p id=\"browser-locked\" hidden>Enter the admin token above to search "
    "the queue and act on messages.</p>\n"
    "<div id=\"browser-open\" hidden>\n"
    "<form id=\"search\" role=\"search\"><input id=\"q\" type=\"search\" "
    "maxlength=\"255\" required placeholder=\"queue id, sender or recipient\" "
    "aria-label=\"search the queue\"><button type=\"submit\">Search</button>"
    "</form>\n<p id=\"search-note\" aria-live=\"polite\"></p>\n"
    "<div class=\"scroll\"><table id=\"results\" hidden><thead><tr><th>Queue id"
    "</th><th>Arrival</th><th>Sender</th><th>Recipients</th></tr></thead>"
    "<tbody></tbody></table></div>\n"
    "<div id=\"message\" hidden></div>\n</div>\n</section>\n";

/* page_head - doctype to the header with the token form */
static void
page_head(struct evbuffer *out)
{
	const struct conf *c = httpd_conf();
	char up[32];

	evbuffer_add_printf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\">\n<noscript><meta http-equiv=\"refresh\" "
	    "content=\"" STATUS_REFRESH "\"></noscript>\n<meta name=\"viewport\" "
	    "content=\"width=device-width, initial-scale=1\">\n<title>Postern on ");
	httpd_html(out, c->hostname);
	evbuffer_add_printf(out, "</title>\n<style>%s</style></head>\n<body "
	    "data-admin=\"%d\">\n<header><h1>Postern on ", console_css,
	    *c->http.admin_token != '\0');
	httpd_html(out, c->hostname);
	evbuffer_add_printf(out, "</h1>\n<p class=\"meta\">version %s &middot; up "
	    "%s &middot; <span id=\"live\">refreshed every " STATUS_REFRESH " s"
	    "</span></p>\n", PACKAGE_VERSION, httpd_duration(time(NULL) -
	    stats_gauge_read(&stats->master_started), up, sizeof(up)));
	evbuffer_add_printf(out, "<form id=\"tokenform\" hidden><input id=\"token\" "
	    "type=\"password\" autocomplete=\"off\" placeholder=\"admin token\" "
	    "aria-label=\"admin token\"><button type=\"submit\">Unlock</button>"
	    "<button type=\"button\" id=\"forget\" hidden>Forget the token</button>"
	    "<span id=\"token-note\" aria-live=\"polite\"></span></form>\n"
	    "</header>\n<main>\n");
}

/* page_render - the whole page, destinations from rows (NULL: queued
 * did not answer) */
static void
page_render(struct evbuffer *out, const struct page *p, json_t *rows)
{
	page_head(out);
	evbuffer_add_printf(out, "<section id=\"overview\" class=\"live\">\n");
	page_figures(out);
	evbuffer_add_printf(out, "</section>\n<section id=\"charts\" "
	    "class=\"live\">\n");
	chart_section(out);
	evbuffer_add_printf(out, "</section>\n<section id=\"destinations\" "
	    "class=\"live\">\n");
	console_destinations(out, rows, p->sort, p->detail);
	evbuffer_add_printf(out, "</section>\n");
	evbuffer_add(out, page_browser, sizeof(page_browser) - 1);
	evbuffer_add_printf(out, "<section id=\"processes\" class=\"live\">\n");
	page_children(out);
	evbuffer_add_printf(out, "</section>\n<section id=\"tls\" class=\"live\">\n");
	console_tls(out);
	evbuffer_add_printf(out, "</section>\n<section id=\"recent\" "
	    "class=\"live\">\n");
	page_events(out, p->detail);
	evbuffer_add_printf(out, "</section>\n</main>\n<script>%s</script>\n"
	    "</body></html>\n", console_js);
}

/* page_done - queued answered (or not): render and reply */
static void
page_done(void *arg, int rc, const char *text, json_t *rows, int fd)
{
	struct page *p = arg;
	struct evbuffer *out = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(p->req);

	if (out == NULL)
		fatalx("out of memory");
	page_render(out, p, rc == 0 ? rows : NULL);
	evhttp_add_header(h, "Content-Type", "text/html; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "Content-Security-Policy", status.csp);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Vary", "Authorization");
	evhttp_send_reply(p->req, HTTP_OK, "OK", out);
	evbuffer_free(out);
	free(p);
}

/* sort_param - ?sort=COLUMN into buf ("worst" when absent or odd) */
static void
sort_param(struct evhttp_request *req, char *buf, size_t len)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq params;
	const char *v;

	strlcpy(buf, "worst", len);
	if (q == NULL || evhttp_parse_query_str(q, &params) == -1)
		return;
	if ((v = evhttp_find_header(&params, "sort")) != NULL &&
	    strspn(v, "abcdefghijklmnopqrstuvwxyz") == strlen(v) && strlen(v) < len)
		strlcpy(buf, v, len);
	evhttp_clear_headers(&params);
}

/* status_route - GET /: ask queued for the destinations, then render */
void
status_route(struct evhttp_request *req)
{
	struct page *p = xcalloc(1, sizeof(*p));

	p->req = req;
	p->detail = httpd_token_ok(req);
	sort_param(req, p->sort, sizeof(p->sort));
	httpd_ctl(evhttp_connection_get_base(evhttp_request_get_connection(req)),
	    "destinations", "", 0, page_done, p);
}
