/*
 * httpd_admin.c - the admin API: the queue operations of posternctl over
 * HTTP, authenticated with the bearer token admin_token, carried out
 * through queued's control socket (httpd_ctl.c: the same exchange
 * posternctl uses).
 *
 *   GET    /api/v1/queue              list: {"count", "messages": [...]}
 *   GET    /api/v1/queue?q=TEXT       search by queue id, sender, recipient
 *   GET    /api/v1/queue/summary      counts by recipient state, oldest age
 *   GET    /api/v1/queue/destinations the queue by destination:
 *                                     {"count", "destinations": [...]}
 *   GET    /api/v1/queue/ID           show: the message in detail, with
 *                                     its header fields
 *   POST   /api/v1/queue/flush        retry everything now
 *   POST   /api/v1/queue/destinations/flush?destination=KEY
 *                                     retry one destination now
 *   POST   /api/v1/queue/ID/ACTION    flush, hold, release, requeue
 *   DELETE /api/v1/queue/ID           delete
 *
 * Owns: struct adm, one per request, from the request until the reply.
 * SECURITY: 401 without the token (constant-time compare in
 * httpd_events.c); queue ids are checked (16 hex digits) and actions come
 * from a fixed table before anything reaches queued; search texts and
 * destinations are checked again by queued. httpd runs as queued's user,
 * so queued lets it change the queue and read a message (SO_PEERCRED);
 * of the message httpd reads only the header (ADM_HEADER_MAX bytes)
 * and only for a request with the token. Request data is never echoed.
 * STANDARDS: RFC 9110 (methods, 200/400/401/404/405/409/503), RFC 6750,
 * RFC 8259, RFC 5322 (header fields).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "conf.h"
#include "httpd.h"
#include "ipc_types.h"
#include "log.h"
#include "mime.h"
#include "spool.h"
#include "util.h"

#define ADM_PREFIX "/api/v1/queue"
#define ADM_HEADER_MAX (64 * 1024)      /* bytes of a message read for show */

/* How the rows of an answer are replied. */
enum adm_kind { ADM_ROWS = 0, ADM_SUMMARY, ADM_SHOW, ADM_DESTINATIONS };

/* One admin request waiting for queued. */
struct adm {
	struct evhttp_request *req;
	enum adm_kind kind;
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

/* status_code - the HTTP answer for a control status */
static int
status_code(int status, const char **reason)
{
	static const struct { int err; int code; const char *reason; } map[] = {
		{ 0, HTTP_OK, "OK" },
		{ ENOENT, HTTP_NOTFOUND, "Not Found" },
		{ EPERM, 403, "Forbidden" },
		{ EINVAL, HTTP_BADREQUEST, "Bad Request" },
		{ EBUSY, 409, "Conflict" },
		{ -1, HTTP_SERVUNAVAIL, "Service Unavailable" },
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

/* header_add - one header field into the JSON array arg */
static void
header_add(const char *name, const char *value, void *arg)
{
	json_t *h = json_pack("{s:s, s:s}", "name", name != NULL ? name : "",
	    "value", value != NULL ? value : "");

	if (h == NULL)          /* not UTF-8 */
		h = json_pack("{s:s, s:s}", "name", "?", "value", "?");
	json_array_append_new(arg, h);
}

/* message_headers - the header fields of the message file fd (its
 * first ADM_HEADER_MAX bytes) as [{"name", "value"}] */
static json_t *
message_headers(int fd)
{
	json_t *a = json_array();
	char *buf = xmalloc(ADM_HEADER_MAX);
	ssize_t n;
	size_t len = 0;

	while (len < ADM_HEADER_MAX &&
	    (n = pread(fd, buf + len, ADM_HEADER_MAX - len, (off_t)len)) > 0)
		len += (size_t)n;
	if (len > 0 && mime_headers(buf, len, header_add, a) == -1)
		log_warnx("admin: a queued message header GMime cannot read");
	free(buf);
	return a;
}

/* adm_done - the control answer as the HTTP reply */
static void
adm_done(void *arg, int status, const char *text, json_t *rows, int fd)
{
	struct adm *a = arg;
	const char *reason;
	int code = status_code(status, &reason);
	json_t *first;

	if (status != 0)
		httpd_reply_error(a->req, code, reason, NULL, text);
	else if (a->kind == ADM_SUMMARY)
		httpd_reply_json(a->req, code, reason, summarise(rows));
	else {
		if (a->kind == ADM_SHOW && fd >= 0 &&
		    (first = json_array_get(rows, 0)) != NULL)
			json_object_set_new(first, "headers", message_headers(fd));
		httpd_reply_json(a->req, code, reason, json_pack("{s:s,s:I,s:O}",
		    "result", text, "count", (json_int_t)json_array_size(rows),
		    a->kind == ADM_DESTINATIONS ? "destinations" : "messages", rows));
	}
	if (fd >= 0)
		close(fd);
	free(a);
}

/* adm_start - send the command; the reply comes from adm_done */
static void
adm_start(struct evhttp_request *req, const char *command, const char *arg,
    enum adm_kind kind)
{
	struct adm *a = xcalloc(1, sizeof(*a));

	a->req = req;
	a->kind = kind;
	httpd_ctl(evhttp_connection_get_base(evhttp_request_get_connection(req)),
	    command, arg, kind == ADM_SHOW ? IPC_CTL_F_MESSAGE : 0, adm_done, a);
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

/* query_param - the decoded query parameter name of req into buf; 1 if
 * present and not empty, 0 if absent, -1 if malformed or too long */
static int
query_param(struct evhttp_request *req, const char *name, char *buf, size_t len)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq params;
	const char *v;
	int r = 0;

	if (q == NULL)
		return 0;
	if (evhttp_parse_query_str(q, &params) == -1)
		return -1;
	if ((v = evhttp_find_header(&params, name)) != NULL && *v != '\0')
		r = strlcpy(buf, v, len) < len ? 1 : -1;
	evhttp_clear_headers(&params);
	return r;
}

/* adm_list - GET /api/v1/queue: list, or with ?q=TEXT a search */
static void
adm_list(struct evhttp_request *req)
{
	char text[256];

	switch (query_param(req, "q", text, sizeof(text))) {
	case 1:
		adm_start(req, "search", text, ADM_ROWS);
		break;
	case 0:
		adm_start(req, "list", "", ADM_ROWS);
		break;
	default:
		httpd_reply_error(req, HTTP_BADREQUEST, "Bad Request", "q",
		    "a search text of 1 to 255 bytes");
	}
}

/* adm_destinations - /destinations and /destinations/flush */
static void
adm_destinations(struct evhttp_request *req, int method, int flush)
{
	char key[256];

	if (!flush && method != EVHTTP_REQ_GET) {
		not_allowed(req, "GET");
		return;
	}
	if (!flush) {
		adm_start(req, "destinations", "", ADM_DESTINATIONS);
		return;
	}
	if (method != EVHTTP_REQ_POST)
		not_allowed(req, "POST");
	else if (query_param(req, "destination", key, sizeof(key)) != 1)
		httpd_reply_error(req, HTTP_BADREQUEST, "Bad Request", "destination",
		    "a destination of 1 to 255 bytes");
	else
		adm_start(req, "flush-destination", key, ADM_ROWS);
}

/* adm_collection - the paths that name no message; 0 if rest is none */
static int
adm_collection(struct evhttp_request *req, int method, const char *rest)
{
	if (*rest == '\0' || strcmp(rest, "/summary") == 0) {
		if (method != EVHTTP_REQ_GET)
			not_allowed(req, "GET");
		else if (*rest == '\0')
			adm_list(req);
		else
			adm_start(req, "list", "", ADM_SUMMARY);
	} else if (strcmp(rest, "/flush") == 0) {
		if (method != EVHTTP_REQ_POST)
			not_allowed(req, "POST");
		else
			adm_start(req, "flush", "", ADM_ROWS);
	} else if (strcmp(rest, "/destinations") == 0)
		adm_destinations(req, method, 0);
	else if (strcmp(rest, "/destinations/flush") == 0)
		adm_destinations(req, method, 1);
	else
		return 0;
	return 1;
}

/* adm_message - /ID and /ID/ACTION */
static void
adm_message(struct evhttp_request *req, int method, const char *rest)
{
	char id[QUEUE_ID_LEN + 1];
	const char *action;
	size_t i;

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
			adm_start(req, adm_ops[i].command, id,
			    *action == '\0' && method == EVHTTP_REQ_GET ? ADM_SHOW :
			    ADM_ROWS);
			return;
		}
	for (i = 0; i < sizeof(adm_ops) / sizeof(adm_ops[0]); i++)
		if (strcmp(adm_ops[i].action, action) == 0) {
			not_allowed(req, *action == '\0' ? "GET, DELETE" : "POST");
			return;
		}
	httpd_reply_error(req, HTTP_NOTFOUND, "Not Found", NULL, "not found");
}

/* admin_route - everything under /api/v1/queue */
void
admin_route(struct evhttp_request *req, const char *path)
{
	int method = (int)evhttp_request_get_command(req);
	const char *rest = path + strlen(ADM_PREFIX);

	if (adm_auth(req) == -1)
		return;
	if (!adm_collection(req, method, rest))
		adm_message(req, method, rest);
}

/* admin_path - 1 if path is under /api/v1/queue */
int
admin_path(const char *path)
{
	size_t n = strlen(ADM_PREFIX);

	return strncmp(path, ADM_PREFIX, n) == 0 &&
	    (path[n] == '\0' || path[n] == '/');
}
