/*
 * httpd.c - postern-httpd: the HTTP listener for health checks and
 * Prometheus metrics (evhttp on the socket the master bound).
 *
 * Owns: the evhttp server on PROC_FD_LISTEN0, the routing table, the
 * queue link (kept open for the send API that will use it).
 * SECURITY: untrusted network input; runs unprivileged after priv_drop()
 * and opens no files. It reads the shared counters, writes nothing to
 * them, and never echoes request data into a response. Request size and
 * idle time are bounded (HTTPD_MAX_* below).
 * STANDARDS: RFC 9110/9112 (HTTP/1.1), RFC 8259 (JSON), Prometheus text
 * exposition format 0.0.4.
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

#define CT_JSON "application/json"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

/* The process's state (one per process, reached from callbacks). */
struct httpd {
	struct child ch;
	struct evhttp *http;
	int queue_fd;           /* link to queued, kept for the send API */
};

static struct httpd httpd;

typedef void route_fn(struct evhttp_request *);

/* One route: an exact path, the methods it answers, its handler. */
struct route {
	const char *path;
	int methods;            /* EVHTTP_REQ_* mask */
	route_fn *fn;
};

static void route_healthz(struct evhttp_request *);
static void route_metrics(struct evhttp_request *);

static const struct route routes[] = {
	{ "/healthz", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, route_healthz },
	{ "/metrics", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, route_metrics },
};

static void control_stop(struct ipc_chan *, struct ipc_msg *, void *);
static void control_queue_link(struct ipc_chan *, struct ipc_msg *, void *);

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

/* dispatch - find the route for req; 404 or 405 in JSON otherwise */
static void
dispatch(struct evhttp_request *req, void *arg)
{
	const char *path = request_path(req);
	int method = (int)evhttp_request_get_command(req);
	size_t i;

	if (path == NULL) {
		reply_error(req, HTTP_BADREQUEST, "Bad Request", "bad request");
		return;
	}
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(path, routes[i].path) != 0)
			continue;
		if ((routes[i].methods & method) == 0) {
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "Allow", "GET, HEAD");
			reply_error(req, HTTP_BADMETHOD, "Method Not Allowed",
			    "method not allowed");
			return;
		}
		routes[i].fn(req);
		return;
	}
	reply_error(req, HTTP_NOTFOUND, "Not Found", "not found");
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

/* control_queue_link - IPC_CHILD_QUEUE_LINK: keep the new link */
static void
control_queue_link(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	msg_end(&m->r, "IPC_CHILD_QUEUE_LINK");
	if (httpd.queue_fd >= 0)
		close(httpd.queue_fd);
	httpd.queue_fd = m->fd;
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
	evhttp_set_max_body_size(h->http, HTTPD_MAX_BODY);
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
	httpd.queue_fd = PROC_FD_QUEUE;
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
