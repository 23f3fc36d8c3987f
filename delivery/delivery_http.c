/*
 * delivery_http.c - the http transport: POST each message as a CloudEvents
 * 1.0 JSON document (structured mode) to the transport's URL, with
 * libcurl's multi interface driven by the libevent loop.
 *
 * Owns: the curl multi handle and its socket/timer events, the CloudEvent
 * layout (seed 002's structure) and the HMAC signature header. The event:
 *   { "specversion": "1.0", "id": QUEUE-ID, "source": "postern://HOST/TRANSPORT",
 *     "type": "org.postern.mail.delivery", "time": RFC 3339,
 *     "datacontenttype": "application/json", "subject": SUBJECT,
 *     "data": { "envelope": { "from": SENDER, "to": [RCPT...] },
 *               "email": { "from", "to", "cc", "replyTo" (each
 *                          { "text", "value": [{ "address", "name" }] }),
 *                          "subject", "date", "messageId",
 *                          "headers": [{ "name", "value" }],
 *                          "text", "html",
 *                          "attachments": [{ "filename", "contentType", "size" }] },
 *               "server": { "hostname", "queueId", "transport", "attempt" } } }
 * The MIME structure is parsed with GMime 3 (charsets decoded to UTF-8;
 * attachment sizes are decoded sizes). With a secret the request carries
 * "X-Postern-Signature: sha256=HEX", the HMAC-SHA256 of the exact body.
 * Status: 2xx delivered; 408, 429 and 5xx deferred; other 4xx bounced;
 * 1xx/3xx (redirects are not followed) and network errors deferred.
 * SECURITY: runs unprivileged; only http and https URLs (and redirects
 * never followed); the secret and the URL's userinfo are never logged
 * (the relay field names the transport, not the URL); the loop never
 * blocks (curl's sockets are watched by libevent; its resolver runs in
 * curl's own thread or asynchronously). Response bodies are read up to
 * 512 bytes for the reply text only.
 * STANDARDS: CloudEvents 1.0 (JSON format, structured content mode),
 * RFC 2104 (HMAC), RFC 9110 (HTTP semantics), RFC 2045-2049 (MIME),
 * RFC 3339 (time).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <gmime/gmime.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "conf.h"
#include "log.h"
#include "util.h"

#include "delivery.h"

#define HTTP_REPLY_MAX 512
#define HTTP_SIG_HEADER "X-Postern-Signature"

/* One request in flight. */
struct http_req {
	struct delivery_job *j;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	char reply[HTTP_REPLY_MAX];
	size_t replylen;
	char errbuf[CURL_ERROR_SIZE];
};

static CURLM *multi;
static struct event *multi_timer;

/* js - a JSON string of s, made valid UTF-8 (never NULL) */
static json_t *
js(const char *s)
{
	gchar *v;
	json_t *r;

	if (s == NULL)
		return json_null();
	if (g_utf8_validate(s, -1, NULL))
		return json_string(s);
	v = g_utf8_make_valid(s, -1);
	r = json_string(v);
	g_free(v);
	return r != NULL ? r : json_string("");
}

/* addr_list - { "text", "value": [{ "address", "name" }] } or null */
static json_t *
addr_list(InternetAddressList *l)
{
	json_t *o, *arr;
	char *text;
	int i, n;

	if (l == NULL || (n = internet_address_list_length(l)) == 0)
		return json_null();
	o = json_object();
	arr = json_array();
	text = internet_address_list_to_string(l, NULL, FALSE);
	json_object_set_new(o, "text", js(text));
	g_free(text);
	for (i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);
		json_t *a = json_object();

		if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			json_object_set_new(a, "address", js(internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(ia))));
		json_object_set_new(a, "name", js(internet_address_get_name(ia)));
		json_array_append_new(arr, a);
	}
	json_object_set_new(o, "value", arr);
	return o;
}

/* on_part - one MIME leaf: text, html (the first of each) or attachment */
static void
on_part(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	json_t *email = data;
	GMimeContentType *ct = g_mime_object_get_content_type(part);
	GMimeDataWrapper *w;
	GMimeStream *null;
	const char *fn;
	json_t *a;
	char *text, *type;

	if (!GMIME_IS_PART(part))
		return;
	fn = g_mime_part_get_filename(GMIME_PART(part));
	if (GMIME_IS_TEXT_PART(part) && fn == NULL &&
	    !g_mime_part_is_attachment(GMIME_PART(part))) {
		const char *key = g_mime_content_type_is_type(ct, "text", "html") ?
		    "html" : g_mime_content_type_is_type(ct, "text", "plain") ? "text" : NULL;

		if (key != NULL && json_is_null(json_object_get(email, key))) {
			text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
			json_object_set_new(email, key, js(text));
			g_free(text);
			return;
		}
	}
	a = json_object();
	json_object_set_new(a, "filename", js(fn));
	type = g_mime_content_type_get_mime_type(ct);
	json_object_set_new(a, "contentType", js(type));
	g_free(type);
	null = g_mime_stream_null_new();
	w = g_mime_part_get_content(GMIME_PART(part));
	json_object_set_new(a, "size", json_integer(w != NULL ?
	    (json_int_t)g_mime_data_wrapper_write_to_stream(w, null) : 0));
	g_object_unref(null);
	json_array_append_new(json_object_get(email, "attachments"), a);
}

/* email_headers - every header of the message, in order */
static json_t *
email_headers(GMimeMessage *m)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	json_t *arr = json_array(), *h;
	int i, n = g_mime_header_list_get_count(hl);

	for (i = 0; i < n; i++) {
		GMimeHeader *hd = g_mime_header_list_get_header_at(hl, i);

		h = json_object();
		json_object_set_new(h, "name", js(g_mime_header_get_name(hd)));
		json_object_set_new(h, "value", js(g_mime_header_get_value(hd)));
		json_array_append_new(arr, h);
	}
	return arr;
}

/* email_object - the "email" member from the parsed message */
static json_t *
email_object(GMimeMessage *m)
{
	json_t *e = json_object();
	GDateTime *dt = g_mime_message_get_date(m);
	gchar *date;

	json_object_set_new(e, "from", addr_list(g_mime_message_get_from(m)));
	json_object_set_new(e, "to", addr_list(g_mime_message_get_to(m)));
	json_object_set_new(e, "cc", addr_list(g_mime_message_get_cc(m)));
	json_object_set_new(e, "replyTo", addr_list(g_mime_message_get_reply_to(m)));
	json_object_set_new(e, "subject", js(g_mime_message_get_subject(m)));
	date = dt != NULL ? g_date_time_format_iso8601(dt) : NULL;
	json_object_set_new(e, "date", js(date));
	g_free(date);
	json_object_set_new(e, "messageId", js(g_mime_message_get_message_id(m)));
	json_object_set_new(e, "headers", email_headers(m));
	json_object_set_new(e, "text", json_null());
	json_object_set_new(e, "html", json_null());
	json_object_set_new(e, "attachments", json_array());
	g_mime_message_foreach(m, on_part, e);
	return e;
}

/* envelope_object - { "from": SENDER, "to": [RCPT...] } */
static json_t *
envelope_object(const struct delivery_job *j)
{
	json_t *env = json_object(), *to = json_array();
	size_t i;

	json_object_set_new(env, "from", js(j->sender));
	for (i = 0; i < j->nrcpt; i++)
		json_array_append_new(to, js(j->rcpt[i].addr));
	json_object_set_new(env, "to", to);
	return env;
}

/* cloudevent - the whole document as compact JSON; malloc'd or NULL */
static char *
cloudevent(const struct delivery_job *j)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(j->msg, j->msglen);
	GMimeParser *parser = g_mime_parser_new_with_stream(st);
	GMimeMessage *m = g_mime_parser_construct_message(parser, NULL);
	json_t *ev, *data, *server;
	char now[64], *out;
	time_t t = time(NULL);
	struct tm tm;

	g_object_unref(parser);
	g_object_unref(st);
	if (m == NULL)
		return NULL;
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	data = json_object();
	json_object_set_new(data, "envelope", envelope_object(j));
	json_object_set_new(data, "email", email_object(m));
	server = json_object();
	json_object_set_new(server, "hostname", js(delivery_conf()->hostname));
	json_object_set_new(server, "queueId", js(j->queueid));
	json_object_set_new(server, "transport", js(j->transport->name));
	json_object_set_new(server, "attempt", json_integer(j->attempt));
	json_object_set_new(data, "server", server);
	ev = json_object();
	json_object_set_new(ev, "specversion", json_string("1.0"));
	json_object_set_new(ev, "id", js(j->queueid));
	out = xasprintf("postern://%s/%s", delivery_conf()->hostname, j->transport->name);
	json_object_set_new(ev, "source", js(out));
	free(out);
	json_object_set_new(ev, "type", json_string("org.postern.mail.delivery"));
	json_object_set_new(ev, "time", json_string(now));
	json_object_set_new(ev, "datacontenttype", json_string("application/json"));
	json_object_set_new(ev, "subject", js(g_mime_message_get_subject(m)));
	json_object_set_new(ev, "data", data);
	out = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	g_object_unref(m);
	return out;
}

/* hmac_header - "X-Postern-Signature: sha256=HEX" over body */
static char *
hmac_header(const char *secret, const char *body)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int len = 0, i;

	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body,
	    strlen(body), mac, &len);
	for (i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	hex[2 * len] = '\0';
	return xasprintf("%s: sha256=%s", HTTP_SIG_HEADER, hex);
}

/* on_write - keep the start of the response body for the reply text */
static size_t
on_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct http_req *r = arg;
	size_t n = size * nmemb, k = n;

	if (k > sizeof(r->reply) - 1 - r->replylen)
		k = sizeof(r->reply) - 1 - r->replylen;
	memcpy(r->reply + r->replylen, ptr, k);
	r->replylen += k;
	r->reply[r->replylen] = '\0';
	return n;
}

/* req_free - release a finished request */
static void
req_free(struct http_req *r)
{
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->body);
	free(r);
}

/* reply_text - the response body's first line, printable */
static void
reply_text(struct http_req *r, char *out, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < r->replylen && r->reply[i] != '\n' && o + 1 < len; i++)
		if ((unsigned char)r->reply[i] >= ' ' && r->reply[i] != 0x7f)
			out[o++] = r->reply[i];
	out[o] = '\0';
}

/* req_done - the request ended with res: give the result */
static void
req_done(struct http_req *r, CURLcode res)
{
	struct delivery_job *j = r->j;
	char relay[300], body[200];
	long code = 0;

	snprintf(relay, sizeof(relay), "http:%s", j->transport->name);
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	reply_text(r, body, sizeof(body));
	if (res != CURLE_OK) {
		log_warnx("%s: http %s: %s", j->queueid, j->transport->name,
		    r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(res));
		delivery_job_result(j, 0, 4, res == CURLE_OPERATION_TIMEDOUT ? "4.4.7" :
		    "4.4.1", relay, "HTTP request failed: %s", r->errbuf[0] != '\0' ?
		    r->errbuf : curl_easy_strerror(res));
	} else if (code >= 200 && code <= 299)
		delivery_job_result(j, 0, 2, "2.0.0", relay, "HTTP %ld %s", code, body);
	else if (code >= 400 && code <= 499 && code != 408 && code != 429)
		delivery_job_result(j, 0, 5, "5.3.0", relay, "HTTP %ld %s", code, body);
	else
		delivery_job_result(j, 0, 4, "4.3.0", relay, "HTTP %ld %s", code, body);
	if (res == CURLE_OK && (code < 200 || code > 299))
		log_info("%s: http %s: status %ld", j->queueid, j->transport->name, code);
	req_free(r);
	delivery_job_done(j);
}

/* check_done - finish every transfer curl reports as done */
static void
check_done(void)
{
	struct http_req *r;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		curl_multi_remove_handle(multi, msg->easy_handle);
		req_done(r, msg->data.result);
	}
}

/* on_socket_event - a curl socket is ready */
static void
on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	int running, action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
	    ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(multi, fd, action, &running);
	check_done();
}

/* on_multi_timer - curl's timeout ran out */
static void
on_multi_timer(evutil_socket_t fd, short what, void *arg)
{
	int running;

	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done();
}

/* sock_cb - CURLMOPT_SOCKETFUNCTION: watch s as curl asks */
static int
sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct event *ev = socketp;
	short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
	    ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);

	if (ev != NULL) {
		event_del(ev);
		event_free(ev);
		curl_multi_assign(multi, s, NULL);
	}
	if (what == CURL_POLL_REMOVE)
		return 0;
	ev = event_new(delivery_base(), s, kind, on_socket_event, NULL);
	if (ev == NULL || event_add(ev, NULL) == -1)
		fatalx("http: cannot watch a socket");
	curl_multi_assign(multi, s, ev);
	return 0;
}

/* timer_cb - CURLMOPT_TIMERFUNCTION: (re)arm or stop the one timer */
static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(multi_timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(multi_timer, &tv);
	return 0;
}

/* delivery_http_init - libcurl, GMime and the multi handle */
void
delivery_http_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("curl_global_init failed");
	g_mime_init();
	multi = curl_multi_init();
	multi_timer = evtimer_new(delivery_base(), on_multi_timer, NULL);
	if (multi == NULL || multi_timer == NULL)
		fatalx("http: cannot set up libcurl");
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
}

/* req_setup - the easy handle of a request; 0 or -1 */
static int
req_setup(struct http_req *r)
{
	const struct conf_transport *t = r->j->transport;
	char *sig;

	if ((r->easy = curl_easy_init()) == NULL)
		return -1;
	r->headers = curl_slist_append(r->headers,
	    "Content-Type: application/cloudevents+json; charset=utf-8");
	r->headers = curl_slist_append(r->headers, "Expect:");
	if (t->secret[0] != '\0') {
		sig = hmac_header(t->secret, r->body);
		r->headers = curl_slist_append(r->headers, sig);
		explicit_bzero(sig, strlen(sig));
		free(sig);
	}
	curl_easy_setopt(r->easy, CURLOPT_URL, t->url);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->body));
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT, (long)t->timeout);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	return curl_multi_add_handle(multi, r->easy) == CURLM_OK ? 0 : -1;
}

/* delivery_http_run - build the CloudEvent and start the POST */
void
delivery_http_run(struct delivery_job *j)
{
	struct http_req *r = xcalloc(1, sizeof(*r));

	r->j = j;
	if ((r->body = cloudevent(j)) == NULL) {
		delivery_job_result(j, 0, 5, "5.6.0", NULL, "http: the message cannot be "
		    "parsed as MIME");
		req_free(r);
		delivery_job_done(j);
		return;
	}
	if (req_setup(r) == -1) {
		delivery_job_result(j, 0, 4, "4.3.0", NULL, "http: cannot start the request");
		req_free(r);
		delivery_job_done(j);
		return;
	}
	log_debug("%s: http %s: POST %zu bytes", j->queueid, j->transport->name,
	    strlen(r->body));
}
