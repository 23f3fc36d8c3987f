/*
 * delivery_relay.c - the relay transport: an SMTP client that hands each
 * job to the transport's smarthost.
 *
 * Owns: one session per job, a libevent bufferevent state machine
 * (resolve -> connect -> greeting -> EHLO/HELO -> MAIL -> RCPT... -> DATA
 * -> message -> QUIT), and the per-recipient result mapping:
 *   - a 4xx/5xx greeting, EHLO-and-HELO, MAIL or DATA reply, or a 421 at
 *     any step, applies to every recipient still without a result;
 *   - a RCPT reply applies to its recipient; with no accepted recipient
 *     DATA is skipped;
 *   - the reply after the message applies to every accepted recipient;
 *   - connection failures give class 4, dsn 4.4.1, timeouts and lost
 *     connections during the dialogue dsn 4.4.2, with the reply
 *     "connect to HOST[IP]:PORT: REASON".
 * A reply's dsn is its enhanced status code (RFC 2034) when present, else
 * "C.0.0" for its class C. Each step waits at most transport->timeout.
 * SECURITY: runs unprivileged; the peer is an untrusted network server:
 * replies are length-bounded (per line and in total), malformed replies
 * end the session with a temporary failure, and nothing the peer says is
 * used except as text for the log. Name resolution never blocks the loop
 * (literal addresses are parsed, names go through evdns).
 * STANDARDS: RFC 5321 (SMTP: replies 4.2, multi-line replies 4.2.1,
 * dot-stuffing 4.5.2, timeouts 4.5.3.2), RFC 1870 (SIZE), RFC 6152
 * (8BITMIME), RFC 2034 and RFC 3463 (enhanced status codes).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "netaddr.h"
#include "util.h"

#include "delivery.h"

#define REPLY_LINE_MAX 4096     /* RFC 5321 4.5.3.1.5 says 512; be lenient */
#define REPLY_TEXT_MAX 2048     /* what we keep of a reply for the log */
#define REPLY_LINES_MAX 200     /* a longer multi-line reply is abuse */
#define QUIT_TIMEOUT 10         /* seconds to wait for the QUIT reply */

enum relay_state {
	RS_RESOLVE = 0,
	RS_CONNECT,
	RS_GREETING,
	RS_EHLO,
	RS_HELO,
	RS_MAIL,
	RS_RCPT,
	RS_DATA,
	RS_BODY,
	RS_QUIT,
};

/* One SMTP session, for one job. */
struct relay {
	struct delivery_job *job;       /* NULL once the job is finished */
	struct bufferevent *bev;
	struct evutil_addrinfo *ai;     /* the resolved addresses */
	struct evutil_addrinfo *cur;    /* the one being tried */
	enum relay_state state;
	time_t timeout;
	char host[ADDR_DOMAIN_MAX + 1];
	char port[32];
	char relay[ADDR_DOMAIN_MAX + 80];       /* HOST[IP]:PORT */
	char why[128];                  /* last connect failure */
	char qid[32];                   /* the job's queue id, for logs */
	size_t rcpt;                    /* the RCPT whose reply is awaited */
	size_t naccepted;
	int has_size, has_8bitmime, eightbit;
	unsigned long long size_limit;
	int data_sent;                  /* "." written: message handed over */
	/* the reply being read */
	int code;
	size_t nlines;
	char text[REPLY_TEXT_MAX];      /* "550 5.1.1 first line, next ..." */
	size_t tlen;
};

typedef int relay_step_fn(struct relay *r);

static relay_step_fn step_greeting, step_ehlo, step_helo, step_mail, step_rcpt,
    step_data, step_body, step_quit;

/* What to do with the complete reply in each state; 'what' names the
 * command in results and errors. A step returns -1 if it freed r. */
static const struct relay_step {
	enum relay_state state;
	const char *what;
	relay_step_fn *fn;
} steps[] = {
	{ RS_RESOLVE, "name resolution", NULL },
	{ RS_CONNECT, "connect", NULL },
	{ RS_GREETING, "the greeting", step_greeting },
	{ RS_EHLO, "EHLO", step_ehlo },
	{ RS_HELO, "HELO", step_helo },
	{ RS_MAIL, "MAIL FROM", step_mail },
	{ RS_RCPT, "RCPT TO", step_rcpt },
	{ RS_DATA, "DATA", step_data },
	{ RS_BODY, "end of data", step_body },
	{ RS_QUIT, "QUIT", step_quit },
};

static struct evdns_base *relay_dns;

static void relay_connect(struct relay *r, struct evutil_addrinfo *ai);

/* step_of - the table row of a state */
static const struct relay_step *
step_of(enum relay_state s)
{
	if ((size_t)s >= sizeof(steps) / sizeof(steps[0]) || steps[s].state != s)
		panic("relay: state %d out of the step table", (int)s);
	return &steps[s];
}

/* relay_free - close the connection and free the session */
static void
relay_free(struct relay *r)
{
	if (r->job != NULL)
		r->job->session = NULL;
	if (r->bev != NULL)
		bufferevent_free(r->bev);
	if (r->ai != NULL)
		evutil_freeaddrinfo(r->ai);
	free(r);
}

/* relay_finish - hand the job back (every recipient has a result); the
 * session may live on to say QUIT */
static void
relay_finish(struct relay *r)
{
	struct delivery_job *j = r->job;

	if (j == NULL)
		return;
	r->job = NULL;
	j->session = NULL;
	delivery_job_done(j);
}

/* relay_close - finish the job and drop the session; returns -1 (r is
 * gone) so steps can 'return relay_close(r)' */
static int
relay_close(struct relay *r)
{
	relay_finish(r);
	relay_free(r);
	return -1;
}

/* relay_abort - a temporary failure for every recipient without a
 * result ("connect to HOST[IP]:PORT: REASON"), then close */
static int
relay_abort(struct relay *r, const char *dsn, const char *fmt, ...) PRINTF_LIKE(3, 4);
static int
relay_abort(struct relay *r, const char *dsn, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (r->job != NULL) {
		log_debug("%s: relay %s: %s", r->qid, r->relay, reason);
		delivery_job_result(r->job, 0, 4, dsn, r->relay, "connect to %s: %s", r->relay,
		    reason);
	}
	return relay_close(r);
}

/* relay_cmd - send one command line */
static void
relay_cmd(struct relay *r, enum relay_state next, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void
relay_cmd(struct relay *r, enum relay_state next, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(r->bev);
	va_list ap;

	if (log_get_level() >= LOG_LEVEL_DEBUG) {
		char line[600];

		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		log_debug("%s: relay %s: > %s", r->qid,
		    r->relay, line);
	}
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	r->state = next;
	r->code = 0;
	r->nlines = 0;
	r->tlen = 0;
	r->text[0] = '\0';
}

/* reply_class - 2, 4 or 5 from a reply code (anything odd counts as 4) */
static int
reply_class(int code)
{
	return code / 100 == 2 ? 2 : code / 100 == 5 ? 5 : 4;
}

/* digits - how many decimal digits (at most 3) start p */
static size_t
digits(const char *p)
{
	size_t n;

	for (n = 0; n < 3 && isdigit((unsigned char)p[n]); n++)
		;
	return n;
}

/* reply_dsn - the enhanced status code ("5.1.1") starting the reply text
 * when its class matches, else "C.0.0" */
static void
reply_dsn(const struct relay *r, int class, char *dsn, size_t len)
{
	const char *p = r->text + 4, *q;
	size_t n;

	if (r->tlen > 4 && p[0] - '0' == class && p[1] == '.') {
		q = p + 2;
		n = digits(q);
		if (n > 0 && q[n] == '.') {
			q += n + 1;
			n = digits(q);
			if (n > 0 && (q[n] == ' ' || q[n] == '\0')) {
				snprintf(dsn, len, "%.*s", (int)(q + n - p), p);
				return;
			}
		}
	}
	snprintf(dsn, len, "%d.0.0", class);
}

/* relay_result - the current reply as the result of every recipient
 * without one (accepted_only: of the accepted ones) */
static void
relay_result(struct relay *r, int accepted_only)
{
	int class = reply_class(r->code);
	char dsn[DLV_DSN_MAX];

	if (r->job == NULL)
		return;
	reply_dsn(r, class, dsn, sizeof(dsn));
	delivery_job_result(r->job, accepted_only, class, dsn, r->relay,
	    "%s (in reply to %s)", r->text, step_of(r->state)->what);
}

/* relay_quit - every recipient has its result: report the job, say QUIT */
static int
relay_quit(struct relay *r)
{
	struct timeval tv = { QUIT_TIMEOUT, 0 };

	if (r->code == 421)
		return relay_close(r);  /* the server is closing already */
	relay_cmd(r, RS_QUIT, "QUIT");
	if (r->timeout < QUIT_TIMEOUT)
		tv.tv_sec = r->timeout;
	bufferevent_set_timeouts(r->bev, &tv, &tv);
	relay_finish(r);
	return 0;
}

/* relay_fail - the reply fails everyone still without a result */
static int
relay_fail(struct relay *r)
{
	relay_result(r, 0);
	return relay_quit(r);
}

/* ehlo_keyword - note the extensions we use from one EHLO reply line */
static void
ehlo_keyword(struct relay *r, const char *kw)
{
	size_t n = strcspn(kw, " ");

	if (n == 4 && strncasecmp(kw, "SIZE", 4) == 0) {
		r->has_size = 1;
		r->size_limit = kw[4] == ' ' ? strtoull(kw + 5, NULL, 10) : 0;
	} else if (n == 8 && strncasecmp(kw, "8BITMIME", 8) == 0)
		r->has_8bitmime = 1;
}

/* send_mail - MAIL FROM with SIZE and BODY when the server offers them */
static int
send_mail(struct relay *r)
{
	struct delivery_job *j = r->job;
	char size[40] = "";

	if (r->has_size && r->size_limit > 0 && j->msglen > r->size_limit) {
		delivery_job_result(j, 0, 5, "5.3.4", r->relay,
		    "message size %zu exceeds the size limit %llu of %s", j->msglen,
		    r->size_limit, r->relay);
		return relay_quit(r);
	}
	if (r->has_size)
		snprintf(size, sizeof(size), " SIZE=%zu", j->msglen);
	relay_cmd(r, RS_MAIL, "MAIL FROM:<%s>%s%s", j->sender, size,
	    r->has_8bitmime && r->eightbit ? " BODY=8BITMIME" : "");
	return 0;
}

/* step_greeting - 220: EHLO */
static int
step_greeting(struct relay *r)
{
	if (reply_class(r->code) != 2)
		return relay_fail(r);
	relay_cmd(r, RS_EHLO, "EHLO %s", delivery_conf()->hostname);
	return 0;
}

/* step_ehlo - 250: MAIL; 5xx: try HELO (RFC 5321 3.2) */
static int
step_ehlo(struct relay *r)
{
	if (reply_class(r->code) == 2)
		return send_mail(r);
	if (reply_class(r->code) == 5) {
		relay_cmd(r, RS_HELO, "HELO %s", delivery_conf()->hostname);
		return 0;
	}
	return relay_fail(r);
}

/* step_helo - 250: MAIL */
static int
step_helo(struct relay *r)
{
	if (reply_class(r->code) != 2)
		return relay_fail(r);
	return send_mail(r);
}

/* step_mail - 250: the first RCPT */
static int
step_mail(struct relay *r)
{
	if (reply_class(r->code) != 2)
		return relay_fail(r);
	r->rcpt = 0;
	relay_cmd(r, RS_RCPT, "RCPT TO:<%s>", r->job->rcpt[0].addr);
	return 0;
}

/* step_rcpt - note this recipient's fate; next RCPT, DATA or QUIT */
static int
step_rcpt(struct relay *r)
{
	struct delivery_job *j = r->job;
	struct delivery_rcpt *rc = &j->rcpt[r->rcpt];
	int class = reply_class(r->code);
	char dsn[DLV_DSN_MAX];

	if (class == 2) {
		rc->accepted = 1;
		r->naccepted++;
	} else {
		reply_dsn(r, class, dsn, sizeof(dsn));
		delivery_rcpt_result(rc, class, dsn, r->relay, "%s (in reply to RCPT TO)",
		    r->text);
	}
	if (++r->rcpt < j->nrcpt) {
		relay_cmd(r, RS_RCPT, "RCPT TO:<%s>", j->rcpt[r->rcpt].addr);
		return 0;
	}
	if (r->naccepted == 0)
		return relay_quit(r);
	relay_cmd(r, RS_DATA, "DATA");
	return 0;
}

/* body_add - the message dot-stuffed with CRLF line ends, then "." */
static void
body_add(struct evbuffer *out, const char *m, size_t len)
{
	size_t i = 0, e, l;

	while (i < len) {
		for (e = i; e < len && m[e] != '\n'; e++)
			;
		l = e - i;
		if (l > 0 && m[i + l - 1] == '\r')
			l--;
		if (l > 0 && m[i] == '.')
			evbuffer_add(out, ".", 1);
		evbuffer_add(out, m + i, l);
		evbuffer_add(out, "\r\n", 2);
		i = e + 1;
	}
	evbuffer_add(out, ".\r\n", 3);
}

/* step_data - 354: send the message */
static int
step_data(struct relay *r)
{
	if (r->code / 100 == 3) {
		log_debug("%s: relay %s: > (%zu bytes of message)", r->qid, r->relay,
		    r->job->msglen);
		body_add(bufferevent_get_output(r->bev), r->job->msg, r->job->msglen);
		r->data_sent = 1;
		r->state = RS_BODY;
		r->code = 0;
		r->nlines = r->tlen = 0;
		return 0;
	}
	if (r->code / 100 == 2)
		r->code = 451;  /* a 2xx to DATA is a protocol error: retry */
	relay_result(r, 1);
	return relay_quit(r);
}

/* step_body - the reply to the message is every accepted recipient's */
static int
step_body(struct relay *r)
{
	relay_result(r, 1);
	return relay_quit(r);
}

/* step_quit - the end */
static int
step_quit(struct relay *r)
{
	relay_free(r);
	return -1;
}

/* reply_line - add one reply line; 1 when the reply is complete, 0 when
 * more lines follow, -1 when the line is malformed */
static int
reply_line(struct relay *r, const char *line, size_t n)
{
	int code;

	if (n < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) || (n > 3 && line[3] != ' ' && line[3] != '-'))
		return -1;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (code < 200 || code > 599)
		return -1;
	if (r->nlines > 0 && code != r->code)
		return -1;
	if (++r->nlines > REPLY_LINES_MAX)
		return -1;
	r->code = code;
	if (r->nlines == 1) {
		r->tlen = (size_t)snprintf(r->text, sizeof(r->text), "%.*s", (int)n, line);
		if (n > 3)
			r->text[3] = ' ';       /* "250-first" reads "250 first" */
	}
	else if (n > 4 && r->tlen + 1 < sizeof(r->text))
		r->tlen += (size_t)snprintf(r->text + r->tlen, sizeof(r->text) - r->tlen,
		    " %.*s", (int)(n - 4), line + 4);
	if (r->tlen >= sizeof(r->text))
		r->tlen = sizeof(r->text) - 1;
	if (r->state == RS_EHLO && r->nlines > 1 && n > 4)
		ehlo_keyword(r, line + 4);
	return n == 3 || line[3] == ' ';
}

/* relay_reply - a complete reply: run the state's step */
static int
relay_reply(struct relay *r)
{
	const struct relay_step *s = step_of(r->state);

	log_debug("%s: relay %s: < %s", r->qid, r->relay,
	    r->text);
	if (s->fn == NULL)
		return relay_abort(r, "4.5.0", "unexpected reply before %s", s->what);
	if (r->code == 421 && r->state != RS_QUIT) {
		relay_result(r, 0);
		return relay_close(r);
	}
	if (r->state != RS_QUIT && r->job == NULL)
		panic("relay: a reply in state %s without a job", s->what);
	return s->fn(r);
}

/* waiting_for - "the greeting", "the reply to RCPT TO" for messages */
static void
waiting_for(const struct relay *r, char *buf, size_t len)
{
	const char *what = step_of(r->state)->what;

	if (r->state == RS_GREETING)
		snprintf(buf, len, "%s", what);
	else
		snprintf(buf, len, "the reply to %s", what);
}

/* relay_connected - the TCP connection is up: wait for the greeting */
static void
relay_connected(struct relay *r)
{
	r->state = RS_GREETING;
	log_debug("%s: relay %s: connected", r->qid, r->relay);
}

/* relay_read - bufferevent read callback: complete lines into replies */
static void
relay_read(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line, step[64];
	size_t n;
	int rc;

	/* libevent may run the read callback before reporting the connect */
	if (r->state == RS_CONNECT)
		relay_connected(r);
	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		rc = n > REPLY_LINE_MAX ? -1 : reply_line(r, line, n);
		free(line);
		if (rc == -1) {
			if (r->state == RS_QUIT) {
				relay_free(r);
				return;
			}
			waiting_for(r, step, sizeof(step));
			relay_abort(r, "4.5.0", "malformed reply while waiting for %s", step);
			return;
		}
		if (rc == 1 && relay_reply(r) == -1)
			return;
	}
	if (evbuffer_get_length(in) > REPLY_LINE_MAX) {
		waiting_for(r, step, sizeof(step));
		relay_abort(r, "4.5.0", "reply line too long while waiting for %s", step);
	}
}

/* relay_event - connected, or the connection failed, timed out, ended */
static void
relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;
	int err = EVUTIL_SOCKET_ERROR();
	char step[64];

	if (what & BEV_EVENT_CONNECTED) {
		/* the greeting may have been read already (relay_read) */
		if (r->state == RS_CONNECT)
			relay_connected(r);
		return;
	}
	if (r->state == RS_CONNECT) {
		snprintf(r->why, sizeof(r->why), "%s",
		    (what & BEV_EVENT_TIMEOUT) ? "Connection timed out" :
		    evutil_socket_error_to_string(err));
		bufferevent_free(r->bev);
		r->bev = NULL;
		relay_connect(r, r->cur->ai_next);
		return;
	}
	if (r->state == RS_QUIT) {
		relay_free(r);
		return;
	}
	waiting_for(r, step, sizeof(step));
	if (what & BEV_EVENT_TIMEOUT)
		relay_abort(r, "4.4.2", "conversation timed out while waiting for %s", step);
	else if (what & BEV_EVENT_EOF)
		relay_abort(r, "4.4.2", "lost connection while waiting for %s", step);
	else
		relay_abort(r, "4.4.2", "lost connection (%s) while waiting for %s",
		    evutil_socket_error_to_string(err), step);
}

/* relay_try - start a non-blocking connect to r->cur; 0, or -1 with
 * r->why set when it failed at once. connect(2) is ours so an immediate
 * failure is known here with its errno; libevent then waits for the
 * outcome (bufferevent_socket_connect with no address). */
static int
relay_try(struct relay *r)
{
	struct timeval tv = { r->timeout, 0 };
	const struct evutil_addrinfo *ai = r->cur;
	int fd, one = 1;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(r->why, sizeof(r->why), "%s", strerror(errno));
		return -1;
	}
	/* commands are small and each waits for its reply: no Nagle delay */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		log_warn("setsockopt TCP_NODELAY");
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1 && errno != EINPROGRESS) {
		snprintf(r->why, sizeof(r->why), "%s", strerror(errno));
		close(fd);
		return -1;
	}
	r->bev = bufferevent_socket_new(delivery_base(), fd, BEV_OPT_CLOSE_ON_FREE);
	if (r->bev == NULL) {
		close(fd);
		snprintf(r->why, sizeof(r->why), "cannot create a bufferevent");
		return -1;
	}
	bufferevent_setcb(r->bev, relay_read, NULL, relay_event, r);
	bufferevent_set_timeouts(r->bev, &tv, &tv);
	r->state = RS_CONNECT;
	if (bufferevent_socket_connect(r->bev, NULL, 0) == -1) {
		snprintf(r->why, sizeof(r->why), "cannot wait for the connection");
		bufferevent_free(r->bev);
		r->bev = NULL;
		return -1;
	}
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
	return 0;
}

/* relay_connect - try ai and the addresses after it; when none is left,
 * every recipient gets 4.4.1 with the last failure */
static void
relay_connect(struct relay *r, struct evutil_addrinfo *ai)
{
	char ip[64];

	for (; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		r->cur = ai;
		snprintf(r->relay, sizeof(r->relay), "%s[%s]:%s", r->host,
		    sockaddr_str(ai->ai_addr, ip, sizeof(ip)), r->port);
		if (relay_try(r) == 0)
			return;
		log_debug("%s: relay %s: %s", r->qid, r->relay, r->why);
	}
	relay_abort(r, "4.4.1", "%s", r->why[0] != '\0' ? r->why : "no usable address");
}

/* relay_resolved - evdns answered (possibly before evdns_getaddrinfo
 * returned); an abandoned session only frees itself */
static void
relay_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct relay *r = arg;

	if (r->job == NULL) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		relay_free(r);
		return;
	}
	if (result != 0) {
		snprintf(r->relay, sizeof(r->relay), "%s:%s", r->host, r->port);
		delivery_job_result(r->job, 0, 4, "4.4.3", r->relay, "cannot resolve %s: %s",
		    r->host, evutil_gai_strerror(result));
		relay_close(r);
		return;
	}
	r->ai = res;
	relay_connect(r, res);
}

/* relay_resolve - a literal address at once, a name through evdns */
static void
relay_resolve(struct relay *r)
{
	struct evutil_addrinfo hints;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_NUMERICHOST;
	if (evutil_getaddrinfo(r->host, r->port, &hints, &r->ai) == 0) {
		relay_connect(r, r->ai);
		return;
	}
	r->ai = NULL;
	r->state = RS_RESOLVE;
	if (relay_dns == NULL)
		relay_dns = evdns_base_new(delivery_base(), EVDNS_BASE_INITIALIZE_NAMESERVERS |
		    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (relay_dns == NULL) {
		delivery_job_result(r->job, 0, 4, "4.4.3", NULL,
		    "cannot set up the resolver for %s", r->host);
		relay_close(r);
		return;
	}
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	/* r may be gone when this returns: the callback can run at once */
	evdns_getaddrinfo(relay_dns, r->host, r->port, &hints, relay_resolved, r);
}

/* has_8bit - 1 if any octet is >= 0x80 (then BODY=8BITMIME) */
static int
has_8bit(const char *m, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)m[i] & 0x80)
			return 1;
	return 0;
}

/* delivery_relay_run - start the session for a job */
void
delivery_relay_run(struct delivery_job *j)
{
	struct relay *r = xcalloc(1, sizeof(*r));

	r->job = j;
	j->session = r;
	strlcpy(r->qid, j->queueid, sizeof(r->qid));
	r->timeout = j->transport->timeout > 0 ? j->transport->timeout : 300;
	if (hostport_parse(j->transport->host, r->host, sizeof(r->host), r->port,
	    sizeof(r->port)) == -1) {
		log_warnx("transport %s: bad host '%s'", j->transport->name, j->transport->host);
		delivery_job_result(j, 0, 4, "4.3.5", NULL, "bad relay host '%s'",
		    j->transport->host);
		relay_close(r);
		return;
	}
	snprintf(r->relay, sizeof(r->relay), "%s:%s", r->host, r->port);
	r->eightbit = has_8bit(j->msg, j->msglen);
	if (j->nrcpt == 0) {
		relay_close(r);
		return;
	}
	relay_resolve(r);
}

/* delivery_relay_abandon - the queue link died: stop unless the message
 * is already handed over (then finish; the result is dropped) */
int
delivery_relay_abandon(struct delivery_job *j)
{
	struct relay *r = j->session;

	if (r == NULL || r->data_sent)
		return 0;
	r->job = NULL;
	j->session = NULL;
	if (r->state != RS_RESOLVE)
		relay_free(r);          /* else relay_resolved() frees it */
	delivery_job_result(j, 0, 4, "4.3.0", NULL, "abandoned: the queue link was lost");
	delivery_job_done(j);
	return 1;
}
