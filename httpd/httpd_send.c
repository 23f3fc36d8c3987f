/*
 * httpd_send.c - the JSON send API (seed 000, the contact-form relay):
 * POST /api/v1/send, GET /api/v1/nonce, their CORS preflight, and the
 * seed's own paths /send and /nonce when compat_paths is on.
 *
 * Owns: the rate limiter and nonce store (common/limiter.h,
 * noncestore.h, local implementations), the input checks, and the list of
 * requests waiting on queued. A request that passes every check asks
 * queued for a spool file (IPC_QUEUED_MSG_OPEN), writes the message
 * (httpd_mime.c) into the descriptor it gets, commits it
 * (IPC_QUEUED_MSG_COMMIT) and answers 202 {"id": QUEUEID} only after
 * IPC_SMTPD_MSG_COMMITTED with status 0: the same durability as a 250
 * after DATA. A client that goes away before the file is written gets
 * its transaction aborted.
 *
 * Order of the checks: JSON and each field (400 naming the field), then
 * the per-client rate limit (429 + Retry-After; malformed requests do not
 * count), the recipient allow-list (403), the nonce and hash when
 * require_nonce is on (403), then the queue (503 when it is down or
 * full). The visitor's "from" goes into Reply-To (unless "reply_to" is
 * given); From: is always the configured sender, so the message is
 * signed for a domain we own and no visitor can forge it.
 *
 * SECURITY: every byte of the request is untrusted. Header-bound fields
 * (to, from, reply_to, subject) must not contain CR, LF or any other
 * control character, addresses pass addr_parse(), bodies are bounded by
 * max_body; the nonce hash is compared in constant time; the secret and
 * the request body are never logged. The client address is taken from
 * client_ip_header only when the peer is one of trusted_proxies.
 * STANDARDS: RFC 9110 (202, 400, 403, 429 Retry-After, 503), RFC 8259
 * (JSON), RFC 6585 4 (429), Fetch standard CORS protocol, FIPS 180-4
 * (SHA-256).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "addr.h"
#include "conf.h"
#include "httpd.h"
#include "ipc.h"
#include "ipc_types.h"
#include "limiter.h"
#include "log.h"
#include "msgbuf.h"
#include "netaddr.h"
#include "noncestore.h"
#include "spool.h"
#include "stats.h"
#include "util.h"

#define SEND_MAX_KEYS 100000    /* clients the limiter remembers */
#define SEND_MAX_NONCES 100000  /* nonces outstanding */
#define SEND_SUBJECT_MAX 900    /* bytes: the header line stays < 998 */
#define SEND_IP_MAX 64
#define SEND_RETRY_QUEUE "30"   /* Retry-After when queued is down */

/* The string fields of a request. */
enum field {
	F_TO, F_SUBJECT, F_BODY, F_FROM, F_REPLY_TO, F_NONCE, F_HASH, F_HTML,
	F_MAX
};

#define FF_REQUIRED 0x1         /* must be present */
#define FF_HEADER 0x2           /* goes into a header: no control chars */
#define FF_ADDRESS 0x4          /* a mailbox: addr_parse() */
#define FF_BODY 0x8             /* bounded by max_body */

/* One field: its JSON name and rules. */
static const struct field_rule {
	const char *name;
	int flags;
} field_rules[F_MAX] = {
	[F_TO] = { "to", FF_REQUIRED | FF_HEADER | FF_ADDRESS },
	[F_SUBJECT] = { "subject", FF_REQUIRED | FF_HEADER },
	[F_BODY] = { "body", FF_REQUIRED | FF_BODY },
	[F_FROM] = { "from", FF_HEADER | FF_ADDRESS },
	[F_REPLY_TO] = { "reply_to", FF_HEADER | FF_ADDRESS },
	[F_NONCE] = { "nonce", FF_HEADER },
	[F_HASH] = { "hash", FF_HEADER },
	[F_HTML] = { "html", FF_BODY },
};

enum pending_state { PS_WAIT_OPEN, PS_WAIT_COMMIT };

/* A request waiting on queued. */
struct pending {
	TAILQ_ENTRY(pending) entry;
	uint32_t reqid;
	enum pending_state state;
	struct evhttp_request *req;     /* answered (or freed) exactly once */
	struct evhttp_connection *conn; /* NULL once the client went away */
	int gone;                       /* the client closed the connection */
	int compat;                     /* answer 204 without a body */
	char qid[QUEUE_ID_LEN + 1];
	char ip[SEND_IP_MAX];
	char *v[F_MAX];                 /* the fields (NULL if absent) */
};

TAILQ_HEAD(pending_list, pending);

/* The send API's state. */
static struct {
	struct limiter *limiter;
	struct noncestore *nonces;
	struct pending_list waiting;
	uint32_t next_reqid;
} send_api = { .waiting = TAILQ_HEAD_INITIALIZER(send_api.waiting) };

/* send_init - local limiter and nonce store */
void
send_init(const struct conf *c)
{
	send_api.limiter = limiter_local_new(c->http.rate_limit, SEND_MAX_KEYS);
	send_api.nonces = noncestore_local_new(c->http.nonce_max_age,
	    SEND_MAX_NONCES);
}

/* code_result - the metrics label of an answer */
static enum stats_http_send
code_result(int code)
{
	switch (code) {
	case 400:
		return HSEND_BAD_REQUEST;
	case 403:
		return HSEND_FORBIDDEN;
	case 429:
		return HSEND_RATE_LIMITED;
	default:
		return HSEND_UNAVAILABLE;
	}
}

/* refuse - an error answer to a send request, counted */
static void
refuse(struct evhttp_request *req, int code, const char *reason,
    const char *field, const char *text)
{
	stats_add(&stats->http_send[code_result(code)], 1);
	httpd_reply_error(req, code, reason, field, text);
}

/* bad_field - 400 naming the field */
static void
bad_field(struct evhttp_request *req, const char *field, const char *text)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s: %s", field, text);
	refuse(req, HTTP_BADREQUEST, "Bad Request", field, msg);
}

/* ---- the client address ---- */

/* last_item - the last comma-separated item of v, trimmed, into buf */
static void
last_item(const char *v, char *buf, size_t len)
{
	const char *p = strrchr(v, ',');
	size_t n;

	p = p != NULL ? p + 1 : v;
	while (*p == ' ' || *p == '\t')
		p++;
	n = strcspn(p, " \t");
	if (n >= len)
		n = len - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
}

/* header_ip - the address in the configured header, normalised; 0/-1 */
static int
header_ip(const char *v, char *buf, size_t len)
{
	unsigned char bin[16];
	char item[SEND_IP_MAX];

	last_item(v, item, sizeof(item));
	if (inet_pton(AF_INET, item, bin) == 1)
		return inet_ntop(AF_INET, bin, buf, (socklen_t)len) != NULL ? 0 : -1;
	if (inet_pton(AF_INET6, item, bin) == 1)
		return inet_ntop(AF_INET6, bin, buf, (socklen_t)len) != NULL ? 0 : -1;
	return -1;
}

/* client_ip - the peer, or the header's address if the peer is a trusted
 * proxy and the header holds a valid address */
static void
client_ip(struct evhttp_request *req, char *buf, size_t len)
{
	const struct conf_http *h = &httpd_conf()->http;
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	const struct sockaddr *sa = conn != NULL ? evhttp_connection_get_addr(conn) :
	    NULL;
	const char *v;

	strlcpy(buf, "unknown", len);
	if (sa == NULL)
		return;
	sockaddr_str(sa, buf, len);
	if (*h->client_ip_header == '\0' || !netlist_match(&h->trusted_proxies, sa))
		return;
	v = evhttp_find_header(evhttp_request_get_input_headers(req),
	    h->client_ip_header);
	if (v != NULL && header_ip(v, buf, len) == -1) {
		log_warnx("send: %s from proxy %s is not an address; using the proxy's",
		    h->client_ip_header, buf);
		sockaddr_str(sa, buf, len);
	}
}

/* ---- parsing and checking the request ---- */

/* has_control - a control character (or DEL) in s */
static int
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* check_field - one field's type and content; 0 or -1 (answered) */
static int
check_field(struct evhttp_request *req, json_t *root, enum field f,
    const char **out)
{
	const struct field_rule *r = &field_rules[f];
	json_t *j = json_object_get(root, r->name);
	struct mailaddr a;
	const char *s, *why;
	char msg[160];

	*out = NULL;
	if (j == NULL || json_is_null(j)) {
		if (r->flags & FF_REQUIRED) {
			bad_field(req, r->name, "missing");
			return -1;
		}
		return 0;
	}
	if (!json_is_string(j)) {
		bad_field(req, r->name, "must be a string");
		return -1;
	}
	s = json_string_value(j);
	if (strlen(s) != json_string_length(j)) {
		bad_field(req, r->name, "must not contain NUL");
		return -1;
	}
	if ((r->flags & FF_REQUIRED) && *s == '\0' && f != F_BODY) {
		bad_field(req, r->name, "must not be empty");
		return -1;
	}
	if ((r->flags & FF_HEADER) && strpbrk(s, "\r\n") != NULL) {
		bad_field(req, r->name, "must not contain CR or LF");
		return -1;
	}
	if ((r->flags & FF_HEADER) && has_control(s)) {
		bad_field(req, r->name, "must not contain control characters");
		return -1;
	}
	if ((r->flags & FF_BODY) && strlen(s) > httpd_conf()->http.max_body) {
		snprintf(msg, sizeof(msg), "larger than %zu bytes",
		    httpd_conf()->http.max_body);
		bad_field(req, r->name, msg);
		return -1;
	}
	if (f == F_SUBJECT && strlen(s) > SEND_SUBJECT_MAX) {
		bad_field(req, r->name, "longer than 900 bytes");
		return -1;
	}
	if ((r->flags & FF_ADDRESS) && (strlen(s) >= ADDR_MAX ||
	    addr_parse(s, 0, &a, &why) == -1)) {
		snprintf(msg, sizeof(msg), "not a valid address (%s)",
		    strlen(s) >= ADDR_MAX ? "too long" : why);
		bad_field(req, r->name, msg);
		return -1;
	}
	*out = s;
	return 0;
}

/* parse_body - the JSON object of the request; NULL if answered */
static json_t *
parse_body(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	json_error_t err;
	json_t *root;

	root = json_loadb((const char *)evbuffer_pullup(in, -1), len,
	    JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	if (root == NULL) {
		refuse(req, HTTP_BADREQUEST, "Bad Request", NULL,
		    "request body is not valid JSON");
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		refuse(req, HTTP_BADREQUEST, "Bad Request", NULL,
		    "request body must be a JSON object");
		return NULL;
	}
	return root;
}

/* canonical - "local@domain" with the domain lower-cased, into buf */
static void
canonical(const char *addr, char *buf, size_t len)
{
	struct mailaddr a;
	const char *why;

	if (addr_parse(addr, 0, &a, &why) == -1)
		panic("send: checked address failed to parse");
	addr_format(&a, buf, len);
}

/* allowed - the recipient is on the allow-list (address or @domain) */
static int
allowed(const char *to)
{
	const struct conf_http *h = &httpd_conf()->http;
	char c[ADDR_MAX + 8];
	size_t i;

	canonical(to, c, sizeof(c));
	for (i = 0; i < h->nallow_list; i++) {
		const char *e = h->allow_list[i];

		if (e[0] == '@' ? strcasecmp(e + 1, addr_domain_of(c)) == 0 :
		    strcasecmp(e, c) == 0)
			return 1;
	}
	return 0;
}

/* hash_ok - hash is hex SHA-256(nonce || secret), constant-time compare */
static int
hash_ok(const char *nonce, const char *hash)
{
	const char *secret = httpd_conf()->http.nonce_secret;
	unsigned char md[EVP_MAX_MD_SIZE];
	char want[2 * 32 + 1], got[sizeof(want)];
	unsigned int mdlen = 0, i;
	EVP_MD_CTX *ctx;
	int ok;

	if (strlen(hash) != sizeof(want) - 1)
		return 0;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, nonce, strlen(nonce)) != 1 ||
	    EVP_DigestUpdate(ctx, secret, strlen(secret)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		fatalx("SHA-256 failed");
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < mdlen; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	for (i = 0; i < sizeof(want); i++)
		got[i] = (char)(hash[i] >= 'A' && hash[i] <= 'F' ? hash[i] + 32 : hash[i]);
	ok = CRYPTO_memcmp(want, got, sizeof(want) - 1) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(md, sizeof(md));
	return ok;
}

/* check_nonce - when required: the nonce was issued, is fresh, unspent,
 * and the hash matches; 0 or -1 (answered) */
static int
check_nonce(struct evhttp_request *req, const char **v)
{
	static const char *const why[] = {
		[NONCE_UNKNOWN] = "nonce: unknown or already used",
		[NONCE_EXPIRED] = "nonce: expired",
	};
	enum nonce_result r;

	if (!httpd_conf()->http.require_nonce)
		return 0;
	if (v[F_NONCE] == NULL || v[F_HASH] == NULL) {
		bad_field(req, v[F_NONCE] == NULL ? "nonce" : "hash",
		    "missing (this server requires a nonce)");
		return -1;
	}
	r = noncestore_consume(send_api.nonces, v[F_NONCE], time(NULL));
	if (r == NONCE_ERROR) {
		refuse(req, HTTP_SERVUNAVAIL, "Service Unavailable", NULL,
		    "nonce store unavailable");
		return -1;
	}
	if (r != NONCE_OK) {
		refuse(req, 403, "Forbidden", "nonce", why[r]);
		return -1;
	}
	if (!hash_ok(v[F_NONCE], v[F_HASH])) {
		refuse(req, 403, "Forbidden", "hash", "hash: does not match");
		return -1;
	}
	return 0;
}

/* check_limit - one send per client per rate_limit; 0 or -1 (answered) */
static int
check_limit(struct evhttp_request *req, const char *ip)
{
	time_t retry;
	char ra[32];
	int r = limiter_hit(send_api.limiter, ip, time(NULL), &retry);

	if (r == 1)
		return 0;
	if (r == -1) {
		refuse(req, HTTP_SERVUNAVAIL, "Service Unavailable", NULL,
		    "rate limiter unavailable");
		return -1;
	}
	snprintf(ra, sizeof(ra), "%lld", (long long)retry);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
	log_info("send: client %s rate-limited (retry after %ss)", ip, ra);
	refuse(req, 429, "Too Many Requests", NULL, "too many requests");
	return -1;
}

/* ---- the queue transaction ---- */

/* pending_free - release p (off any list) */
static void
pending_free(struct pending *p)
{
	size_t i;

	if (p->conn != NULL)
		evhttp_connection_set_closecb(p->conn, NULL, NULL);
	for (i = 0; i < F_MAX; i++)
		free(p->v[i]);
	free(p);
}

/* pending_gone - the client's connection closed while we waited; libevent
 * detached the request, which our reply will then only free */
static void
pending_gone(struct evhttp_connection *conn, void *arg)
{
	struct pending *p = arg;

	p->gone = 1;
	p->conn = NULL;
}

/* pending_done - stop watching the connection; unlink and free p */
static void
pending_done(struct pending *p)
{
	TAILQ_REMOVE(&send_api.waiting, p, entry);
	pending_free(p);
}

/* pending_fail - 503 to the client (if still there), then free */
static void
pending_fail(struct pending *p, const char *text)
{
	struct evhttp_request *req = p->req;

	if (p->conn != NULL)
		evhttp_connection_set_closecb(p->conn, NULL, NULL);
	p->conn = NULL;
	p->req = NULL;
	if (req != NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", SEND_RETRY_QUEUE);
		refuse(req, HTTP_SERVUNAVAIL, "Service Unavailable", NULL, text);
	}
	pending_done(p);
}

/* next_reqid - never 0 */
static uint32_t
next_reqid(void)
{
	if (send_api.next_reqid == 0)
		send_api.next_reqid = 1;
	return send_api.next_reqid++;
}

/* queue_start - keep the fields and ask queued for a spool file */
static void
queue_start(struct evhttp_request *req, const char **v, const char *ip,
    int compat)
{
	struct pending *p = xcalloc(1, sizeof(*p));
	char addr[ADDR_MAX + 8];
	struct msgbuf b;
	size_t i;

	for (i = 0; i < F_MAX; i++) {
		if (v[i] != NULL && (field_rules[i].flags & FF_ADDRESS)) {
			canonical(v[i], addr, sizeof(addr));
			p->v[i] = xstrdup(addr);
		} else
			p->v[i] = v[i] != NULL ? xstrdup(v[i]) : NULL;
	}
	strlcpy(p->ip, ip, sizeof(p->ip));
	p->req = req;
	p->conn = evhttp_request_get_connection(req);
	p->compat = compat;
	p->reqid = next_reqid();
	p->state = PS_WAIT_OPEN;
	if (p->conn != NULL)
		evhttp_connection_set_closecb(p->conn, pending_gone, p);
	TAILQ_INSERT_TAIL(&send_api.waiting, p, entry);
	msgbuf_init(&b);
	msg_add_u32(&b, p->reqid);
	ipc_send(httpd_queue(), IPC_QUEUED_MSG_OPEN, &b, -1);
	msgbuf_free(&b);
}

/* send_abort - IPC_QUEUED_MSG_ABORT for qid */
static void
send_abort(const char *qid)
{
	struct msgbuf b;

	if (httpd_queue() == NULL)
		return;
	msgbuf_init(&b);
	msg_add_str(&b, qid);
	ipc_send(httpd_queue(), IPC_QUEUED_MSG_ABORT, &b, -1);
	msgbuf_free(&b);
}

/* write_all - the whole buffer to fd; 0 or -1 with errno */
static int
write_all(int fd, const char *s, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, s, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* write_message - compose p's message into fd; its size, or -1 */
static int64_t
write_message(struct pending *p, int fd)
{
	const struct conf *c = httpd_conf();
	struct mime_in in = {
		.hostname = c->hostname, .client_ip = p->ip, .qid = p->qid,
		.date = time(NULL), .from = c->http.sender, .to = p->v[F_TO],
		.reply_to = p->v[F_REPLY_TO] != NULL ? p->v[F_REPLY_TO] : p->v[F_FROM],
		.subject = p->v[F_SUBJECT], .body = p->v[F_BODY], .html = p->v[F_HTML],
	};
	size_t len;
	char *msg = mime_message(&in, &len);
	int r = write_all(fd, msg, len);

	free(msg);
	if (r == -1) {
		log_warn("send: %s: cannot write the spool file", p->qid);
		return -1;
	}
	return (int64_t)len;
}

/* send_commit - IPC_QUEUED_MSG_COMMIT for p's written file */
static void
send_commit(struct pending *p, uint64_t size)
{
	struct msgbuf b;

	p->reqid = next_reqid();
	p->state = PS_WAIT_COMMIT;
	msgbuf_init(&b);
	msg_add_u32(&b, p->reqid);
	msg_add_str(&b, p->qid);
	msg_add_str(&b, httpd_conf()->http.sender);
	msg_add_u64(&b, size);
	msg_add_str(&b, p->ip);
	msg_add_str(&b, "HTTP");
	msg_add_str(&b, "");
	msg_add_u32(&b, 1);
	msg_add_str(&b, p->v[F_TO]);
	msg_add_u32(&b, 0);     /* no MAIL parameters: inferred at delivery */
	ipc_send(httpd_queue(), IPC_QUEUED_MSG_COMMIT, &b, -1);
	msgbuf_free(&b);
}

/* pending_find - the request waiting in state st for reqid */
static struct pending *
pending_find(uint32_t reqid, enum pending_state st)
{
	struct pending *p;

	TAILQ_FOREACH(p, &send_api.waiting, entry)
		if (p->reqid == reqid && p->state == st)
			return p;
	return NULL;
}

/* send_opened - IPC_SMTPD_MSG_OPENED: write the message and commit */
void
send_opened(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	uint32_t reqid = msg_get_u32(&m->r), status = msg_get_u32(&m->r);
	const char *qid = msg_get_str(&m->r);
	struct pending *p;
	int64_t size;

	msg_end(&m->r, "IPC_SMTPD_MSG_OPENED");
	if (status == 0 && (m->fd < 0 || !queue_id_valid(qid)))
		fatalx("IPC_SMTPD_MSG_OPENED: status 0 without a descriptor or "
		    "with a bad queue id");
	p = pending_find(reqid, PS_WAIT_OPEN);
	if (p == NULL || p->gone || status != 0) {
		if (m->fd >= 0)
			close(m->fd);
		m->fd = -1;
		if (status == 0)
			send_abort(qid);
		if (p != NULL && status != 0)
			log_warnx("send: queued cannot create a spool file: %s",
			    strerror((int)status));
		if (p != NULL)
			pending_fail(p, "queue unavailable");
		return;
	}
	strlcpy(p->qid, qid, sizeof(p->qid));
	size = write_message(p, m->fd);
	close(m->fd);
	m->fd = -1;
	if (size < 0) {
		send_abort(p->qid);
		pending_fail(p, "queue file write error");
		return;
	}
	send_commit(p, (uint64_t)size);
}

/* accepted - 202 {"id": QID} (204 on the compatibility path), logged */
static void
accepted(struct pending *p)
{
	stats_add(&stats->http_send[HSEND_ACCEPTED], 1);
	log_info("%s: client=[%s] http from=<%s> to=<%s>", p->qid, p->ip,
	    httpd_conf()->http.sender, p->v[F_TO]);
	if (p->gone)
		log_warnx("%s: queued, but the client left before the reply", p->qid);
	if (p->conn != NULL)
		evhttp_connection_set_closecb(p->conn, NULL, NULL);
	if (p->compat)
		evhttp_send_reply(p->req, 204, "No Content", NULL);
	else
		httpd_reply_json(p->req, 202, "Accepted",
		    json_pack("{s:s}", "id", p->qid));
	p->req = NULL;
	p->conn = NULL;
}

/* send_committed - IPC_SMTPD_MSG_COMMITTED: 202, or 503 */
void
send_committed(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	uint32_t reqid = msg_get_u32(&m->r), status = msg_get_u32(&m->r);
	const char *qid = msg_get_str(&m->r);
	struct pending *p;

	msg_end(&m->r, "IPC_SMTPD_MSG_COMMITTED");
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	if ((p = pending_find(reqid, PS_WAIT_COMMIT)) == NULL) {
		log_warnx("%s: commit answer for no waiting request", qid);
		return;
	}
	if (status != 0) {
		log_warnx("%s: queued cannot commit the message: %s", p->qid,
		    strerror((int)status));
		pending_fail(p, status == ENOSPC ? "insufficient storage" :
		    "queue file write error");
		return;
	}
	accepted(p);
	pending_done(p);
}

/* send_queue_lost - every waiting request fails with 503 */
void
send_queue_lost(void)
{
	struct pending *p;

	while ((p = TAILQ_FIRST(&send_api.waiting)) != NULL)
		pending_fail(p, "queue unavailable");
}

/* ---- the routes ---- */

/* check_fields - every field in order; 0 or -1 (answered) */
static int
check_fields(struct evhttp_request *req, json_t *root, const char **v)
{
	int f;

	for (f = 0; f < F_MAX; f++)
		if (check_field(req, root, (enum field)f, &v[f]) == -1)
			return -1;
	return 0;
}

/* send_request - the checks in order, then the queue transaction */
static void
send_request(struct evhttp_request *req, int compat)
{
	const char *v[F_MAX];
	char ip[SEND_IP_MAX];
	json_t *root;

	(void)httpd_cors(req);
	client_ip(req, ip, sizeof(ip));
	if ((root = parse_body(req)) == NULL)
		return;
	if (check_fields(req, root, v) == -1 || check_limit(req, ip) == -1)
		goto out;
	if (!allowed(v[F_TO])) {
		log_info("send: client %s: recipient not on the allow-list", ip);
		refuse(req, 403, "Forbidden", "to", "to: address is not allowed");
		goto out;
	}
	if (check_nonce(req, v) == -1)
		goto out;
	if (httpd_queue() == NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", SEND_RETRY_QUEUE);
		refuse(req, HTTP_SERVUNAVAIL, "Service Unavailable", NULL,
		    "queue unavailable");
		goto out;
	}
	queue_start(req, v, ip, compat);
out:
	json_decref(root);
}

/* send_route_send - POST /api/v1/send */
void
send_route_send(struct evhttp_request *req)
{
	send_request(req, 0);
}

/* send_route_send_compat - POST /send: 204 on success (seed 000) */
void
send_route_send_compat(struct evhttp_request *req)
{
	send_request(req, 1);
}

/* send_route_nonce - {"nonce": fresh single-use nonce} */
void
send_route_nonce(struct evhttp_request *req)
{
	char nonce[NONCE_LEN + 1];

	(void)httpd_cors(req);
	if (noncestore_issue(send_api.nonces, nonce, time(NULL)) == -1) {
		httpd_reply_error(req, HTTP_SERVUNAVAIL, "Service Unavailable", NULL,
		    "too many outstanding nonces");
		return;
	}
	httpd_reply_json(req, HTTP_OK, "OK", json_pack("{s:s}", "nonce", nonce));
}

/* send_route_preflight - CORS preflight: 204 for a listed origin */
void
send_route_preflight(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (httpd_cors(req) != 1) {
		httpd_reply_error(req, 403, "Forbidden", NULL, "origin not allowed");
		return;
	}
	evhttp_add_header(h, "Access-Control-Allow-Methods", "POST, GET, OPTIONS");
	evhttp_add_header(h, "Access-Control-Allow-Headers", "Content-Type");
	evhttp_add_header(h, "Access-Control-Max-Age", "600");
	evhttp_send_reply(req, 204, "No Content", NULL);
}
