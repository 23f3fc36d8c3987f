/*
 * httpd.c - postern-httpd: the HTTP listener for health and readiness
 * checks, Prometheus metrics, the JSON send API, the status page, the
 * token-protected admin API and event stream (evhttp on the socket the
 * master bound).
 *
 * Owns: the evhttp server on PROC_FD_LISTEN0, the routing table (which
 * routes exist depends on the http section: send_api, compat_paths),
 * JSON replies and CORS headers, and the queue link: the send API queues
 * messages over it (httpd_send.c) and queued sends queue events over it
 * (IPC_HTTPD_EVENT, kept in a ring of the last HTTPD_EVENTS for the live
 * stream).
 * SECURITY: untrusted network input; runs unprivileged after priv_drop()
 * and opens no files (it writes only the spool descriptors queued
 * passes, and reads a message header only through a descriptor queued
 * passes to the admin API, which connects to queued's control socket;
 * it never reads a certificate or a key). Of the shared counters it
 * writes only its own (http_send).
 * It never echoes request data into a response (errors name a field, not
 * its value). Request size and idle time are bounded (HTTPD_MAX_* below,
 * and max_body).
 * STANDARDS: RFC 9110/9112 (HTTP/1.1), RFC 8259 (JSON), Prometheus text
 * exposition format 0.0.4, the Fetch standard's CORS protocol.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "conf.h"
#include "httpd.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "privdrop.h"
#include "proc.h"
#include "stats.h"
#include "util.h"

#define HTTPD_MAX_HEADERS 8192          /* bytes of request headers */
#define HTTPD_MAX_BODY 65536            /* bytes of request body */
#define HTTPD_TIMEOUT 30                /* seconds per request */
#define HTTPD_EVENTS 100                /* queue events kept */

#define CT_JSON "application/json"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

/* The process's state (one per process, reached from callbacks). */
struct httpd {
	struct child ch;
	struct evhttp *http;
	struct ipc_chan *queue; /* link to queued (events; the send API) */
	char *events[HTTPD_EVENTS];     /* ring of the last queue events */
	unsigned nevents;               /* events received in all */
};

static struct httpd httpd;

typedef void route_fn(struct evhttp_request *);

#define RF_SEND 0x1             /* only with http { send_api = yes } */
#define RF_COMPAT 0x2           /* only with http { compat_paths = yes } */
#define RF_ADMIN 0x4            /* only with an http { admin_token } */

#define M_GET (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)

/* One route: an exact path and method(s), its handler, when it exists. */
struct route {
	const char *path;
	int methods;            /* EVHTTP_REQ_* mask */
	route_fn *fn;
	int flags;              /* RF_* */
	const char *allow;      /* the path's methods, for a 405's Allow */
};

static void route_healthz(struct evhttp_request *);
static void route_health_compat(struct evhttp_request *);
static void route_metrics(struct evhttp_request *);

static const struct route routes[] = {
	{ "/", M_GET, status_route, 0, "GET, HEAD" },
	{ "/healthz", M_GET, route_healthz, 0, "GET, HEAD" },
	{ "/readyz", M_GET, ready_route, 0, "GET, HEAD" },
	{ "/metrics", M_GET, route_metrics, 0, "GET, HEAD" },
	{ "/api/v1/stats/history", M_GET, history_route, 0, "GET, HEAD" },
	{ "/api/v1/send", EVHTTP_REQ_POST, send_route_send, RF_SEND,
	  "POST, OPTIONS" },
	{ "/api/v1/send", EVHTTP_REQ_OPTIONS, send_route_preflight, RF_SEND,
	  "POST, OPTIONS" },
	{ "/api/v1/nonce", M_GET, send_route_nonce, RF_SEND, "GET, HEAD, OPTIONS" },
	{ "/api/v1/nonce", EVHTTP_REQ_OPTIONS, send_route_preflight, RF_SEND,
	  "GET, HEAD, OPTIONS" },
	{ "/send", EVHTTP_REQ_POST, send_route_send_compat, RF_SEND | RF_COMPAT,
	  "POST, OPTIONS" },
	{ "/send", EVHTTP_REQ_OPTIONS, send_route_preflight, RF_SEND | RF_COMPAT,
	  "POST, OPTIONS" },
	{ "/nonce", M_GET, send_route_nonce, RF_SEND | RF_COMPAT,
	  "GET, HEAD, OPTIONS" },
	{ "/nonce", EVHTTP_REQ_OPTIONS, send_route_preflight, RF_SEND | RF_COMPAT,
	  "GET, HEAD, OPTIONS" },
	{ "/health", M_GET, route_health_compat, RF_COMPAT, "GET, HEAD" },
	{ "/api/v1/events", EVHTTP_REQ_GET, events_route, RF_ADMIN, "GET" },
};

static void control_stop(struct ipc_chan *, struct ipc_msg *, void *);
static void control_queue_link(struct ipc_chan *, struct ipc_msg *, void *);

static void queue_event(struct ipc_chan *, struct ipc_msg *, void *);

static const struct ipc_handler queue_table[] = {
	{ IPC_HTTPD_EVENT, queue_event },
	{ IPC_SMTPD_MSG_OPENED, send_opened },
	{ IPC_SMTPD_MSG_COMMITTED, send_committed },
	{ 0, NULL },
};

static const struct ipc_handler control_table[] = {
	{ IPC_CHILD_STOP, control_stop },
	{ IPC_CHILD_QUEUE_LINK, control_queue_link },
	{ 0, NULL },
};

/* reply - send code with body of content type ctype; body is consumed */
static void
reply(struct evhttp_request *req, int code, const char *reason,
    const char *ctype, struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, body);
}

/* reply_json - send code with the JSON encoding of j (which it frees) */
static void
reply_json(struct evhttp_request *req, int code, const char *reason, json_t *j)
{
	struct evbuffer *body = evbuffer_new();
	char *s;

	if (body == NULL || j == NULL ||
	    (s = json_dumps(j, JSON_COMPACT)) == NULL)
		fatalx("out of memory building a JSON reply");
	evbuffer_add(body, s, strlen(s));
	evbuffer_add(body, "\n", 1);
	free(s);
	json_decref(j);
	reply(req, code, reason, CT_JSON, body);
	evbuffer_free(body);
}

/* reply_error - {"error": text} with code */
static void
reply_error(struct evhttp_request *req, int code, const char *reason,
    const char *text)
{
	reply_json(req, code, reason, json_pack("{s:s}", "error", text));
}

/* httpd_conf - the loaded configuration */
const struct conf *
httpd_conf(void)
{
	return httpd.ch.conf;
}

/* httpd_queue - the queue link or NULL */
struct ipc_chan *
httpd_queue(void)
{
	return httpd.queue;
}

/* httpd_reply_json - reply_json for the route files */
void
httpd_reply_json(struct evhttp_request *req, int code, const char *reason,
    json_t *j)
{
	reply_json(req, code, reason, j);
}

/* httpd_reply_error - {"error": text, "field": field} */
void
httpd_reply_error(struct evhttp_request *req, int code, const char *reason,
    const char *field, const char *text)
{
	if (field == NULL)
		reply_error(req, code, reason, text);
	else
		reply_json(req, code, reason, json_pack("{s:s,s:s}", "error", text,
		    "field", field));
}

/* httpd_cors - allow a listed Origin (or any, with "*") to read replies */
int
httpd_cors(struct evhttp_request *req)
{
	const struct conf_http *h = &httpd.ch.conf->http;
	const char *origin = evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Origin");
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	size_t i;

	if (origin == NULL)
		return 0;
	for (i = 0; i < h->ncors_origins; i++) {
		if (strcmp(h->cors_origins[i], "*") != 0 &&
		    strcmp(h->cors_origins[i], origin) != 0)
			continue;
		evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
		evhttp_add_header(out, "Vary", "Origin");
		return 1;
	}
	return -1;
}

/* route_health_compat - GET /health: 204 (seed 000's liveness) */
static void
route_health_compat(struct evhttp_request *req)
{
	evhttp_send_reply(req, 204, "No Content", NULL);
}

/* route_healthz - 200 when every child is up, else 503 with the names */
static void
route_healthz(struct evhttp_request *req)
{
	json_t *down = json_array();

	if (down == NULL)
		fatalx("out of memory");
	if (httpd_down_children(down) == 0) {
		json_decref(down);
		reply_json(req, HTTP_OK, "OK", json_pack("{s:s}", "status", "ok"));
		return;
	}
	reply_json(req, HTTP_SERVUNAVAIL, "Service Unavailable",
	    json_pack("{s:s,s:o}", "status", "unavailable", "down", down));
}

/* route_metrics - the Prometheus text of the shared counters */
static void
route_metrics(struct evhttp_request *req)
{
	struct evbuffer *body = evbuffer_new();

	if (body == NULL)
		fatalx("out of memory");
	httpd_metrics(body);
	reply(req, HTTP_OK, "OK", CT_METRICS, body);
	evbuffer_free(body);
}

/* request_path - the decoded path of req's URI, or NULL if malformed */
static const char *
request_path(struct evhttp_request *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);

	return uri != NULL ? evhttp_uri_get_path(uri) : NULL;
}

/* route_enabled - the route exists in this configuration */
static int
route_enabled(const struct route *r)
{
	const struct conf_http *h = &httpd.ch.conf->http;

	if ((r->flags & RF_SEND) && !h->send_api)
		return 0;
	if ((r->flags & RF_COMPAT) && !h->compat_paths)
		return 0;
	if ((r->flags & RF_ADMIN) && *h->admin_token == '\0')
		return 0;
	return 1;
}

/* dispatch - find the route for req; 404 or 405 in JSON otherwise */
static void
dispatch(struct evhttp_request *req, void *arg)
{
	const char *path = request_path(req);
	int method = (int)evhttp_request_get_command(req);
	const struct route *known = NULL;
	size_t i;

	if (path == NULL) {
		reply_error(req, HTTP_BADREQUEST, "Bad Request", "bad request");
		return;
	}
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(path, routes[i].path) != 0 || !route_enabled(&routes[i]))
			continue;
		known = &routes[i];
		if ((routes[i].methods & method) != 0) {
			routes[i].fn(req);
			return;
		}
	}
	if (known == NULL && *httpd.ch.conf->http.admin_token != '\0' &&
	    admin_path(path)) {
		admin_route(req, path);
		return;
	}
	if (known == NULL) {
		reply_error(req, HTTP_NOTFOUND, "Not Found", "not found");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	    known->allow);
	reply_error(req, HTTP_BADMETHOD, "Method Not Allowed", "method not allowed");
}

/* control_stop - IPC_CHILD_STOP: requests are short; stop at once */
static void
control_stop(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	uint32_t grace = msg_get_u32(&m->r);

	msg_end(&m->r, "IPC_CHILD_STOP");
	if (m->fd >= 0)
		close(m->fd);
	log_debug("stopping (grace %us)", (unsigned)grace);
	event_base_loopbreak(httpd.ch.base);
}

/* queue_event - IPC_HTTPD_EVENT: keep the event in the ring */
static void
queue_event(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	const char *json = msg_get_str(&m->r);
	unsigned slot;

	msg_end(&m->r, "IPC_HTTPD_EVENT");
	slot = httpd.nevents++ % HTTPD_EVENTS;
	free(httpd.events[slot]);
	httpd.events[slot] = xstrdup(json);
	log_debug("queue event %s", json);
	events_publish(httpd.nevents, json);
}

/* httpd_events_seen - the number of the newest event */
unsigned
httpd_events_seen(void)
{
	return httpd.nevents;
}

/* httpd_event - event number id (1-based) while it is in the ring */
const char *
httpd_event(unsigned id)
{
	if (id == 0 || id > httpd.nevents || httpd.nevents - id >= HTTPD_EVENTS)
		return NULL;
	return httpd.events[(id - 1) % HTTPD_EVENTS];
}

/* queue_closed - queued went away; the master sends a new link */
static void
queue_closed(struct ipc_chan *c, void *arg)
{
	log_debug("queue link closed");
	httpd.queue = NULL;
	send_queue_lost();
}

/* queue_attach - wrap a queue link descriptor */
static void
queue_attach(int fd)
{
	if (httpd.queue != NULL) {
		ipc_chan_free(&httpd.queue);
		send_queue_lost();
	}
	httpd.queue = ipc_chan_new(httpd.ch.base, fd, "queued", queue_table,
	    queue_closed, NULL);
}

/* control_queue_link - IPC_CHILD_QUEUE_LINK: use the new link */
static void
control_queue_link(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	msg_end(&m->r, "IPC_CHILD_QUEUE_LINK");
	if (m->fd < 0)
		fatalx("protocol violation: IPC_CHILD_QUEUE_LINK without a descriptor");
	queue_attach(m->fd);
	m->fd = -1;
}

/* httpd_max_body - request bodies: room for body and html, JSON-escaped */
static size_t
httpd_max_body(const struct conf *c)
{
	size_t n = 4 * c->http.max_body + HTTPD_MAX_BODY;

	return n > HTTPD_MAX_BODY ? n : HTTPD_MAX_BODY;
}

/* httpd_listen - evhttp on the inherited listener */
static void
httpd_listen(struct httpd *h)
{
	if (child_listen_fds() < 1)
		fatalx("no HTTP listener passed (%s unset)", PROC_ENV_LISTEN_FDS);
	if ((h->http = evhttp_new(h->ch.base)) == NULL)
		fatalx("evhttp_new failed");
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(h->http, HTTPD_MAX_HEADERS);
	evhttp_set_max_body_size(h->http, httpd_max_body(h->ch.conf));
	evhttp_set_timeout(h->http, HTTPD_TIMEOUT);
	evhttp_set_gencb(h->http, dispatch, h);
	if (evhttp_accept_socket_with_handle(h->http, PROC_FD_LISTEN0) == NULL)
		fatalx("cannot accept on fd %d", PROC_FD_LISTEN0);
}

/* httpd_main - start-up, privilege drop, the event loop */
int
httpd_main(int argc, char **argv)
{
	child_start(&httpd.ch, PROC_HTTPD, argc, argv, control_table);
	queue_attach(PROC_FD_QUEUE);
	send_init(httpd.ch.conf);
	status_init(httpd.ch.base);
	history_init(httpd.ch.base, httpd.ch.conf);
	httpd_listen(&httpd);
	priv_drop(httpd.ch.conf->user);
	child_ready(&httpd.ch);
	log_info("listening on %s", httpd.ch.conf->http_listen);
	event_base_dispatch(httpd.ch.base);
	evhttp_free(httpd.http);
	ipc_flush_blocking(httpd.ch.control);
	log_info("stopped");
	return 0;
}

/* main - postern-httpd -c CONFIG -i INDEX [-f] */
int
main(int argc, char **argv)
{
	return httpd_main(argc, argv);
}
