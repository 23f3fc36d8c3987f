/*
 * httpd_admin.c - the admin API: the queue operations of posternctl over
 * HTTP, authenticated with the bearer token admin_token, carried out
 * through queued's control socket (the same IPC_QUEUED_CTL_REQUEST ->
 * IPC_CTL_ROW* -> IPC_CTL_DONE exchange posternctl uses).
 *
 *   GET    /api/v1/queue              list: {"count", "messages": [...]}
 *   GET    /api/v1/queue/summary      counts by recipient state, oldest age
 *   GET    /api/v1/queue/ID           show: the message in detail
 *   POST   /api/v1/queue/flush        retry everything now
 *   POST   /api/v1/queue/ID/ACTION    flush, hold, release, requeue
 *   DELETE /api/v1/queue/ID           delete
 *
 * Owns: one control connection per request (struct adm), opened when the
 * request arrives and closed after IPC_CTL_DONE.
 * SECURITY: 401 without the token (constant-time compare in
 * httpd_events.c); queue ids are checked (16 hex digits) and actions come
 * from a fixed table before anything reaches queued. httpd runs as
 * queued's user, so queued lets it change the queue (SO_PEERCRED).
 * STANDARDS: RFC 9110 (methods, 200/400/401/404/405/409/503), RFC 6750,
 * RFC 8259.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "conf.h"
#include "ctlsock.h"
#include "httpd.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "spool.h"
#include "util.h"

#define ADM_PREFIX "/api/v1/queue"
#define ADM_TIMEOUT 10          /* seconds for connecting to queued */

/* One admin request talking to queued. */
struct adm {
	struct evhttp_request *req;
	struct ipc_chan *chan;
	struct event_base *base;
	json_t *rows;
	int summary;            /* answer with counts, not the rows */
	int replied, closed, finishing;
};

/* What a path and method mean. */
struct adm_op {
	int method;             /* EVHTTP_REQ_* */
	const char *action;     /* after the id ("" = none, NULL = no id) */
	const char *command;    /* the control command */
};

static const struct adm_op adm_ops[] = {
	{ EVHTTP_REQ_GET, "", "show" },
	{ EVHTTP_REQ_DELETE, "", "delete" },
	{ EVHTTP_REQ_POST, "flush", "flush" },
	{ EVHTTP_REQ_POST, "hold", "hold" },
	{ EVHTTP_REQ_POST, "release", "release" },
	{ EVHTTP_REQ_POST, "requeue", "requeue" },
};

static void adm_row(struct ipc_chan *, struct ipc_msg *, void *);
static void adm_done(struct ipc_chan *, struct ipc_msg *, void *);

static const struct ipc_handler adm_table[] = {
	{ IPC_CTL_ROW, adm_row },
	{ IPC_CTL_DONE, adm_done },
	{ 0, NULL },
};

/* adm_finish - free the request state (from the event loop) */
static void
adm_finish(evutil_socket_t fd, short what, void *arg)
{
	struct adm *a = arg;

	if (a->chan != NULL)
		ipc_chan_free(&a->chan);
	json_decref(a->rows);
	free(a);
}

/* adm_schedule_finish - adm_finish once, after the current callback */
static void
adm_schedule_finish(struct adm *a)
{
	if (a->finishing)
		return;
	a->finishing = 1;
	event_base_once(a->base, -1, EV_TIMEOUT, adm_finish, a, NULL);
}

/* adm_row - IPC_CTL_ROW: keep the JSON object */
static void
adm_row(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct adm *a = arg;
	json_t *j = json_loads(msg_get_str(&m->r), 0, NULL);

	msg_end(&m->r, "IPC_CTL_ROW");
	if (j != NULL)
		json_array_append_new(a->rows, j);
}

/* status_code - the HTTP answer for a control status */
static int
status_code(uint32_t status, const char **reason)
{
	static const struct { uint32_t err; int code; const char *reason; } map[] = {
		{ 0, HTTP_OK, "OK" },
		{ ENOENT, HTTP_NOTFOUND, "Not Found" },
		{ EPERM, 403, "Forbidden" },
		{ EINVAL, HTTP_BADREQUEST, "Bad Request" },
		{ EBUSY, 409, "Conflict" },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].err == status) {
			*reason = map[i].reason;
			return map[i].code;
		}
	*reason = "Internal Server Error";
	return HTTP_INTERNAL;
}

/* summarise - counts of messages and recipients by state, oldest age */
static json_t *
summarise(json_t *rows)
{
	json_t *states = json_object(), *m, *r;
	json_int_t oldest = 0, nrcpt = 0;
	size_t i, k;

	json_array_foreach(rows, i, m) {
		json_int_t arr = json_integer_value(json_object_get(m, "arrival"));
		json_t *rc = json_object_get(m, "recipients");

		if (oldest == 0 || (arr > 0 && arr < oldest))
			oldest = arr;
		json_array_foreach(rc, k, r) {
			const char *st = json_string_value(json_object_get(r, "state"));
			json_t *n;

			if (st == NULL)
				continue;
			n = json_object_get(states, st);
			json_object_set_new(states, st,
			    json_integer(n != NULL ? json_integer_value(n) + 1 : 1));
			nrcpt++;
		}
	}
	return json_pack("{s:I,s:I,s:o,s:I}", "messages",
	    (json_int_t)json_array_size(rows), "recipients", nrcpt, "states", states,
	    "oldest_age_seconds", oldest > 0 ? (json_int_t)time(NULL) - oldest :
	    (json_int_t)0);
}

/* adm_done - IPC_CTL_DONE: the HTTP answer */
static void
adm_done(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct adm *a = arg;
	uint32_t status = msg_get_u32(&m->r);
	const char *text = msg_get_str(&m->r), *reason;
	int code = status_code(status, &reason);
	json_t *j;

	msg_end(&m->r, "IPC_CTL_DONE");
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	a->replied = 1;
	if (status != 0)
		httpd_reply_error(a->req, code, reason, NULL, text);
	else if (a->summary)
		httpd_reply_json(a->req, code, reason, summarise(a->rows));
	else {
		j = json_pack("{s:s,s:I,s:O}", "result", text, "count",
		    (json_int_t)json_array_size(a->rows), "messages", a->rows);
		httpd_reply_json(a->req, code, reason, j);
	}
	adm_schedule_finish(a);
}

/* adm_closed - queued closed the connection (before DONE: 503) */
static void
adm_closed(struct ipc_chan *c, void *arg)
{
	struct adm *a = arg;

	a->chan = NULL;         /* ipc frees it after we return */
	a->closed = 1;
	if (!a->replied) {
		a->replied = 1;
		httpd_reply_error(a->req, HTTP_SERVUNAVAIL, "Service Unavailable", NULL,
		    "queue control connection lost");
	}
	adm_schedule_finish(a);
}

/* adm_start - connect to queued and send the command */
static void
adm_start(struct evhttp_request *req, const char *command, const char *id,
    int summary)
{
	struct adm *a;
	struct msgbuf b;
	int fd;

	if ((fd = ctlsock_connect(httpd_conf()->control_socket, ADM_TIMEOUT)) == -1) {
		log_warn("admin: cannot reach queued at %s", httpd_conf()->control_socket);
		httpd_reply_error(req, HTTP_SERVUNAVAIL, "Service Unavailable", NULL,
		    "queue unavailable");
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->req = req;
	a->summary = summary;
	a->rows = json_array();
	a->base = evhttp_connection_get_base(evhttp_request_get_connection(req));
	a->chan = ipc_chan_new(a->base, fd, "control", adm_table, adm_closed, a);
	ipc_chan_set_untrusted(a->chan);
	msgbuf_init(&b);
	msg_add_str(&b, command);
	msg_add_str(&b, id);
	msg_add_u32(&b, 0);
	ipc_send(a->chan, IPC_QUEUED_CTL_REQUEST, &b, -1);
	msgbuf_free(&b);
}

/* adm_auth - 401 unless the token is right; 0 if it is */
static int
adm_auth(struct evhttp_request *req)
{
	if (httpd_token_ok(req))
		return 0;
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "WWW-Authenticate", "Bearer realm=\"postern\"");
	httpd_reply_error(req, 401, "Unauthorized", NULL, "token required");
	return -1;
}

/* not_allowed - 405 with the methods of the path */
static void
not_allowed(struct evhttp_request *req, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	httpd_reply_error(req, HTTP_BADMETHOD, "Method Not Allowed", NULL,
	    "method not allowed");
}

/* adm_collection - /api/v1/queue, /summary and /flush */
static void
adm_collection(struct evhttp_request *req, int method, const char *rest)
{
	if (*rest == '\0' || strcmp(rest, "/summary") == 0) {
		if (method != EVHTTP_REQ_GET)
			not_allowed(req, "GET");
		else
			adm_start(req, "list", "", *rest != '\0');
		return;
	}
	if (method != EVHTTP_REQ_POST)
		not_allowed(req, "POST");
	else
		adm_start(req, "flush", "", 0);
}

/* admin_route - everything under /api/v1/queue */
void
admin_route(struct evhttp_request *req, const char *path)
{
	int method = (int)evhttp_request_get_command(req);
	const char *rest = path + strlen(ADM_PREFIX), *action;
	char id[QUEUE_ID_LEN + 1];
	size_t i;

	if (adm_auth(req) == -1)
		return;
	if (*rest == '\0' || strcmp(rest, "/summary") == 0 ||
	    strcmp(rest, "/flush") == 0) {
		adm_collection(req, method, rest);
		return;
	}
	if (rest[0] != '/' || strlen(rest + 1) < QUEUE_ID_LEN) {
		httpd_reply_error(req, HTTP_NOTFOUND, "Not Found", NULL, "not found");
		return;
	}
	strlcpy(id, rest + 1, sizeof(id));
	action = rest + 1 + QUEUE_ID_LEN;
	if (!queue_id_valid(id) || (*action != '\0' && *action++ != '/')) {
		httpd_reply_error(req, HTTP_NOTFOUND, "Not Found", NULL, "not found");
		return;
	}
	for (i = 0; i < sizeof(adm_ops) / sizeof(adm_ops[0]); i++)
		if (strcmp(adm_ops[i].action, action) == 0 &&
		    adm_ops[i].method == method) {
			adm_start(req, adm_ops[i].command, id, 0);
			return;
		}
	for (i = 0; i < sizeof(adm_ops) / sizeof(adm_ops[0]); i++)
		if (strcmp(adm_ops[i].action, action) == 0) {
			not_allowed(req, *action == '\0' ? "GET, DELETE" : "POST");
			return;
		}
	httpd_reply_error(req, HTTP_NOTFOUND, "Not Found", NULL, "not found");
}

/* admin_path - 1 if path is under /api/v1/queue */
int
admin_path(const char *path)
{
	size_t n = strlen(ADM_PREFIX);

	return strncmp(path, ADM_PREFIX, n) == 0 &&
	    (path[n] == '\0' || path[n] == '/');
}
