/*
 * httpd.h - postern-httpd: health, readiness, Prometheus metrics and the
 * JSON send API over HTTP.
 *
 * httpd.c owns the process (start-up, control link, evhttp, the routing
 * table, replies and CORS); httpd_metrics.c renders the shared counters
 * (common/stats.h) as Prometheus text and /healthz's view of the child
 * table; httpd_ready.c answers /readyz; httpd_send.c is the send API
 * (its queue transactions); httpd_mime.c composes the message it queues;
 * httpd_events.c streams queue events (Server-Sent Events);
 * httpd_status.c is the HTML status page (the operator console), with
 * its charts (httpd_chart.c, from httpd_history.c's rings, httpd_ring.c)
 * and tables (httpd_console.c); httpd_admin.c the admin API;
 * httpd_ctl.c the client of queued's control socket both use.
 */
#ifndef POSTERN_HTTPD_H
#define POSTERN_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "httpd_ring.h"

struct evbuffer;
struct event_base;
struct evhttp_request;
struct ipc_chan;
struct ipc_msg;
struct conf;
struct json_t;

/* EVB_ADD - append a string literal to an evbuffer (its length counted
 * by the compiler) */
#define EVB_ADD(b, lit) evbuffer_add((b), (lit), sizeof(lit) - 1)

/* httpd_main - the process: never returns on error, 0 after a stop */
int httpd_main(int argc, char **argv);

/* ---- httpd.c: shared with the route files ---- */

/* httpd_conf - the loaded configuration */
const struct conf *httpd_conf(void);
/* httpd_queue - the link to queued, or NULL while queued is down */
struct ipc_chan *httpd_queue(void);
/* httpd_reply_json - send code with the JSON encoding of j (freed) */
void httpd_reply_json(struct evhttp_request *req, int code, const char *reason,
    struct json_t *j);
/* httpd_reply_error - {"error": text} (and "field" when not NULL) */
void httpd_reply_error(struct evhttp_request *req, int code, const char *reason,
    const char *field, const char *text);
/* httpd_cors - Access-Control-Allow-Origin for a listed Origin; 1 if the
 * request had an Origin that is listed, 0 if none, -1 if not listed */
int httpd_cors(struct evhttp_request *req);

/* httpd_event - the queue event number id (1-based) if still in the
 * ring, else NULL */
const char *httpd_event(unsigned id);

/* httpd_events_seen - how many queue events arrived (the newest id) */
unsigned httpd_events_seen(void);

/* ---- httpd_history.c ---- */

#define HISTORY_COARSE 24       /* fine steps in one coarse step */

/* history_init - the rings (http.history_size) and the sampling timer
 * (http.history_step) */
void history_init(struct event_base *base, const struct conf *c);
/* history_read - the shared counters (cumulative) and gauges now */
void history_read(struct ring_sample *s);
/* history_fine, history_coarse - the rings; history_step - seconds
 * between fine samples */
const struct ring *history_fine(void);
const struct ring *history_coarse(void);
time_t history_step(void);
/* history_route - GET /api/v1/stats/history */
void history_route(struct evhttp_request *req);

/* ---- httpd_status.c ---- */

/* status_init - start sampling the counters for the page's rates */
void status_init(struct event_base *base);
/* status_route - GET /: the HTML status page (the operator console) */
void status_route(struct evhttp_request *req);
/* httpd_html - s HTML-escaped into out (NULL: nothing) */
void httpd_html(struct evbuffer *out, const char *s);
/* httpd_time, httpd_time_text - a <time> element for unix seconds t or
 * an ISO 8601 UTC text ("-" for 0 or "") */
void httpd_time(struct evbuffer *out, int64_t t);
void httpd_time_text(struct evbuffer *out, const char *iso);
/* httpd_duration - s seconds as "3d 4h", "5h 12m", "4m 3s" or "12s" */
const char *httpd_duration(int64_t s, char *buf, size_t len);

/* ---- httpd_chart.c ---- */

/* chart_section - the charts of both history rings, as inline SVG */
void chart_section(struct evbuffer *out);

/* ---- httpd_console.c ---- */

/* console_destinations - the destinations table from queued's rows (NULL:
 * queued did not answer), sorted by the column sort ("worst" or unknown:
 * the worst first); detail (the admin token was sent): the last errors'
 * texts and a flush button per destination */
void console_destinations(struct evbuffer *out, struct json_t *rows,
    const char *sort, int detail);
/* console_processes - the child table: process, pid, state, uptime,
 * restarts */
void console_processes(struct evbuffer *out);
/* console_tls - the listeners' certificates and the DKIM keys in use */
void console_tls(struct evbuffer *out);

/* ---- httpd_events.c ---- */

/* httpd_token_ok - the request carries "Authorization: Bearer" with the
 * admin_token (constant-time compare); 0 when no token is configured */
int httpd_token_ok(struct evhttp_request *req);
/* events_route - GET /api/v1/events (Server-Sent Events) */
void events_route(struct evhttp_request *req);
/* events_publish - event number id to every subscriber */
void events_publish(unsigned id, const char *json);

/* ---- httpd_ctl.c ---- */

/* httpd_ctl_fn - the end of a control request: status 0 or queued's
 * errno, or -1 when queued was unreachable or did not answer; text
 * queued's (or why not); rows the IPC_CTL_ROW objects (a JSON array,
 * borrowed, NULL when queued was unreachable); fd the descriptor
 * IPC_CTL_DONE carried or -1 (the callee closes it) */
typedef void httpd_ctl_fn(void *arg, int status, const char *text,
    struct json_t *rows, int fd);
/* httpd_ctl - one request to queued's control socket; done runs exactly
 * once, maybe before httpd_ctl returns */
void httpd_ctl(struct event_base *base, const char *command,
    const char *argument, uint32_t flags, httpd_ctl_fn *done, void *arg);

/* ---- httpd_admin.c ---- */

/* admin_path - 1 if path is under /api/v1/queue */
int admin_path(const char *path);
/* admin_route - the admin API (token checked here) */
void admin_route(struct evhttp_request *req, const char *path);

/* ---- httpd_metrics.c ---- */

/* httpd_metrics - append the Prometheus text exposition (format 0.0.4)
 * of every postern_* family to out */
void httpd_metrics(struct evbuffer *out);
/* httpd_down_children - names ("delivery[1]") of every used slot of the
 * child table that is not up, appended to a JSON array; returns how many */
size_t httpd_down_children(struct json_t *array);

/* ---- httpd_ready.c ---- */

/* ready_route - GET /readyz */
void ready_route(struct evhttp_request *req);

/* ---- httpd_send.c ---- */

/* send_init - the limiter and nonce store for the configuration */
void send_init(const struct conf *c);
/* send_route_send, send_route_send_compat - POST /api/v1/send, /send */
void send_route_send(struct evhttp_request *req);
void send_route_send_compat(struct evhttp_request *req);
/* send_route_nonce - GET /api/v1/nonce, /nonce */
void send_route_nonce(struct evhttp_request *req);
/* send_route_preflight - OPTIONS on the send API paths (CORS) */
void send_route_preflight(struct evhttp_request *req);
/* send_opened, send_committed - IPC_SMTPD_MSG_OPENED / _COMMITTED */
void send_opened(struct ipc_chan *c, struct ipc_msg *m, void *arg);
void send_committed(struct ipc_chan *c, struct ipc_msg *m, void *arg);
/* send_queue_lost - the queue link died: 503 to every waiting request */
void send_queue_lost(void);

/* ---- httpd_mime.c ---- */

/* What a send request puts into the message. */
struct mime_in {
	const char *hostname;   /* ours: Received:, Message-ID */
	const char *client_ip;
	const char *qid;
	time_t date;
	const char *from;       /* the configured sender */
	const char *to;
	const char *reply_to;   /* or NULL */
	const char *subject;    /* UTF-8, no CR/LF */
	const char *body;       /* UTF-8 text */
	const char *html;       /* or NULL: then text/plain only */
};

/* mime_message - the RFC 5322 message with CR LF line ends (malloc'd,
 * *len bytes, NUL-terminated) */
char *mime_message(const struct mime_in *in, size_t *len);

#endif
