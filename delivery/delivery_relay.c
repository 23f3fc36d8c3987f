/*
 * delivery_relay.c - the outbound SMTP client, and the relay transport
 * that hands each job to a fixed smarthost with it.
 *
 * Owns: the SMTP session (a libevent bufferevent state machine: connect
 * -> greeting -> EHLO/HELO -> STARTTLS -> EHLO -> AUTH -> MAIL -> RCPT...
 * -> DATA -> message, then QUIT or parking the connection for the next
 * message to the same destination), the per-process cache of idle
 * connections (keyed by destination, RSET before each further message,
 * closed after reuse_idle or reuse_max messages), and the per-recipient
 * result mapping:
 *   - a failed connection, no greeting (a timeout, a hang-up, a line
 *     that is not a reply), a 4xx greeting (any non-2xx greeting while
 *     other addresses remain) or a TLS requirement the peer cannot meet
 *     moves on to the next address; when none is left every recipient
 *     gets the last reason (4.4.1 for connections, 4.4.2 or 4.5.0 for
 *     the greeting, 4.7.x for TLS);
 *   - mx only: the best MX greeting or answering EHLO with our own
 *     hostname is this server: 5.4.6 "mail for DOMAIN loops back to
 *     myself" for every recipient (Postfix's rule);
 *   - an EHLO-and-HELO, MAIL or DATA failure, or a 421 at any step,
 *     applies to every recipient of the session still without a result;
 *   - a RCPT reply applies to its recipient; with no accepted recipient
 *     the message is not sent;
 *   - the reply after the message applies to every accepted recipient;
 *   - timeouts and lost connections during the dialogue give 4.4.2.
 * Every step (connect, TLS handshake, each reply) is bounded as a whole
 * by the transport's timeout (deadline_ev), not only between two reads:
 * a peer trickling a byte at a time cannot hold a job in flight; the
 * reply after the message gets one more second per KiB of it.
 * A reply's dsn is its enhanced status code (RFC 2034) when present, else
 * "C.0.0". With PIPELINING, MAIL, every RCPT and DATA go in one write and
 * the replies are matched in order (RFC 2920). With CHUNKING the message
 * goes as one "BDAT size LAST" chunk (RFC 3030) instead of DATA, once a
 * recipient was accepted: CR LF line ends, no dot-stuffing, and no
 * end-of-data line for the next hop to read differently. A message needing an
 * extension the peer lacks is deferred, never sent anyway: SMTPUTF8 for
 * non-ASCII addresses (4.6.7), 8BITMIME for an 8-bit message (4.6.3; no
 * downgrade to 7 bit is attempted). The envelope carries the MAIL
 * parameters its SMTP client gave (ENV_F_*, envelope_needs): SMTPUTF8 is
 * said when the client said it and the peer offers it (RFC 6531 3.4),
 * BODY=8BITMIME when the client said it or the content is 8-bit (a
 * "7BIT" message with 8-bit octets is labelled by what it holds). A
 * non-ASCII sender or recipient needs SMTPUTF8 whatever was said
 * (deferred without it). Envelopes without a declaration (sendmail, the
 * send API, older records) infer it: UTF-8 in the header section asks for
 * SMTPUTF8 where offered. A UTF-8 header section alone never defers: it
 * goes with BODY=8BITMIME, as legacy 8-bit headers always did. A result
 * that is a remote reply is that reply alone (a DSN's Diagnostic-Code);
 * its note for the log line says what it answered ("(in reply to RCPT
 * TO)"), and on a connected session "[TLS=none]" or "[TLS=TLSv1.3
 * cipher=... verified=yes]", the words every TLS handshake is logged with.
 * SECURITY: runs unprivileged; the peer is an untrusted network server:
 * replies are length-bounded (per line and in total), malformed replies
 * end the session with a temporary failure, and nothing the peer says is
 * used except as text for the log. AUTH is only sent inside TLS, and the
 * credentials are never logged (debug logs show "AUTH PLAIN ***").
 * STANDARDS: RFC 5321 (SMTP: replies 4.2, dot-stuffing 4.5.2, timeouts
 * 4.5.3.2), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8),
 * RFC 2920 (PIPELINING), RFC 3030 (CHUNKING), RFC 3207 (STARTTLS), RFC
 * 8314 (implicit TLS),
 * RFC 4954 and RFC 4616 (AUTH PLAIN; LOGIN as deployed), RFC 2034 and
 * RFC 3463 (enhanced status codes).
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
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <ares.h>

#include "addr.h"
#include "conf.h"
#include "ipc_types.h"
#include "log.h"
#include "netaddr.h"
#include "stats.h"
#include "util.h"

#include "delivery.h"

#define REPLY_LINE_MAX 4096     /* RFC 5321 4.5.3.1.5 says 512; be lenient */
#define REPLY_TEXT_MAX 2048     /* what we keep of a reply for the log */
#define REPLY_LINES_MAX 200     /* a longer multi-line reply is abuse */
#define QUIT_TIMEOUT 10         /* seconds to wait for the QUIT reply */
#define IDLE_MAX 32             /* idle connections kept per process */

enum relay_state {
	RS_RESOLVE = 0,
	RS_CONNECT,
	RS_TLS,
	RS_GREETING,
	RS_EHLO,
	RS_HELO,
	RS_STARTTLS,
	RS_AUTH,
	RS_AUTH_USER,
	RS_AUTH_PASS,
	RS_RSET,
	RS_MAIL,
	RS_RCPT,
	RS_DATA,
	RS_BODY,
	RS_QUIT,
	RS_IDLE,
};

/* One SMTP session: a connection and the job it carries now. */
struct relay {
	struct relay *idle_prev, *idle_next;    /* the idle cache */
	struct delivery_job *job;       /* NULL once the job is handed back */
	size_t *ri;                     /* the job's recipients we carry */
	size_t nri;
	smtp_done_cb *done;
	void *done_arg;
	struct smtp_dest d;
	size_t cur;                     /* the target being tried */
	struct bufferevent *bev;
	enum relay_state state;
	char relay[ADDR_DOMAIN_MAX + 80];       /* HOST[IP]:PORT */
	char why[512];                  /* why the last target failed */
	char whydsn[DLV_DSN_MAX];
	char qid[32];                   /* the job's queue id, for logs */
	size_t rcpt;                    /* the RCPT whose reply is awaited */
	size_t naccepted;
	/* what the peer offered (EHLO) */
	int has_size, has_8bitmime, has_pipelining, has_starttls, has_smtputf8;
	int has_chunking;
	int auth_plain, auth_login;
	unsigned long long size_limit;
	/* this message and this connection: eightbit (8-bit content: needs
	 * 8BITMIME), body8 (say BODY=8BITMIME), utf8 (a non-ASCII address:
	 * needs SMTPUTF8), utf8ask (say SMTPUTF8 where it is offered) */
	int eightbit, body8, utf8, utf8ask;
	int pipelined, mail_failed;
	int connected, tls_on, no_tls, authed;
	int data_sent;                  /* "." written: message handed over */
	int nmsgs;                      /* messages sent on this connection */
	char tls_info[160];
	struct event *idle_ev;
	struct event *deadline_ev;      /* the whole of the awaited step */
	/* the reply being read */
	int code;
	size_t nlines;
	char text[REPLY_TEXT_MAX];      /* "550 5.1.1 first line, next ..." */
	size_t tlen;
};

typedef int relay_step_fn(struct relay *r);

static relay_step_fn step_greeting, step_ehlo, step_helo, step_starttls, step_auth,
    step_rset, step_mail, step_rcpt, step_data, step_body, step_quit;

/* What to do with the complete reply in each state; 'what' names the
 * command in results and errors. A step returns -1 if it freed r. */
static const struct relay_step {
	enum relay_state state;
	const char *what;
	relay_step_fn *fn;
} steps[] = {
	{ RS_RESOLVE, "name resolution", NULL },
	{ RS_CONNECT, "connect", NULL },
	{ RS_TLS, "the TLS handshake", NULL },
	{ RS_GREETING, "the greeting", step_greeting },
	{ RS_EHLO, "EHLO", step_ehlo },
	{ RS_HELO, "HELO", step_helo },
	{ RS_STARTTLS, "STARTTLS", step_starttls },
	{ RS_AUTH, "AUTH", step_auth },
	{ RS_AUTH_USER, "AUTH", step_auth },
	{ RS_AUTH_PASS, "AUTH", step_auth },
	{ RS_RSET, "RSET", step_rset },
	{ RS_MAIL, "MAIL FROM", step_mail },
	{ RS_RCPT, "RCPT TO", step_rcpt },
	{ RS_DATA, "DATA", step_data },
	{ RS_BODY, "end of data", step_body },
	{ RS_QUIT, "QUIT", step_quit },
	{ RS_IDLE, "nothing (idle)", NULL },
};

static struct relay *idle_head;         /* the idle cache, newest first */
static size_t idle_count;

static void relay_connect(struct relay *r);
static void relay_read(struct bufferevent *bev, void *arg);
static void relay_event(struct bufferevent *bev, short what, void *arg);
static int begin_message(struct relay *r);

/* step_of - the table row of a state */
static const struct relay_step *
step_of(enum relay_state s)
{
	if ((size_t)s >= sizeof(steps) / sizeof(steps[0]) || steps[s].state != s)
		panic("relay: state %d out of the step table", (int)s);
	return &steps[s];
}

/* idle_unlink - take a session out of the idle cache */
static void
idle_unlink(struct relay *r)
{
	if (r->state != RS_IDLE)
		return;
	if (r->idle_prev != NULL)
		r->idle_prev->idle_next = r->idle_next;
	else
		idle_head = r->idle_next;
	if (r->idle_next != NULL)
		r->idle_next->idle_prev = r->idle_prev;
	r->idle_prev = r->idle_next = NULL;
	idle_count--;
	if (r->idle_ev != NULL)
		evtimer_del(r->idle_ev);
}

/* write_now - what is queued on the socket bufferevent u, written to
 * the socket at once; best effort. (Its output buffer is frozen at the
 * front outside libevent's own write callback, so it is thawed around
 * the write.) */
static void
write_now(struct bufferevent *u)
{
	struct evbuffer *out = bufferevent_get_output(u);

	if (evbuffer_get_length(out) == 0 || bufferevent_getfd(u) < 0)
		return;
	evbuffer_unfreeze(out, 1);
	(void)evbuffer_write(out, bufferevent_getfd(u));
	evbuffer_freeze(out, 1);
}

/* tls_close_notify - end TLS with a close_notify alert (RFC 8446 6.1)
 * before the socket closes, as Postfix's client does: libevent frees
 * the SSL without one, and peers log a truncated connection (Exim: "TLS
 * connection was non-properly terminated"). Best effort: the alert is
 * written to the socket at once, nothing waits for the peer's. */
static void
tls_close_notify(struct relay *r)
{
	struct bufferevent *u;
	SSL *ssl;

	if (r->bev == NULL || !r->tls_on)
		return;
	ssl = bufferevent_openssl_get_ssl(r->bev);
	u = bufferevent_get_underlying(r->bev);
	if (ssl == NULL || u == NULL)
		return;
	(void)SSL_shutdown(ssl);
	write_now(u);
}

/* relay_free - close the connection and free the session */
static void
relay_free(struct relay *r)
{
	idle_unlink(r);
	if (r->job != NULL)
		r->job->session = NULL;
	tls_close_notify(r);
	if (r->bev != NULL)
		bufferevent_free(r->bev);
	if (r->idle_ev != NULL)
		event_free(r->idle_ev);
	if (r->deadline_ev != NULL)
		event_free(r->deadline_ev);
	free(r->ri);
	free(r);
}

/* relay_finish - hand the job back (every recipient we carry has a
 * result); the session may live on */
static void
relay_finish(struct relay *r)
{
	struct delivery_job *j = r->job;

	if (j == NULL)
		return;
	r->job = NULL;
	j->session = NULL;
	r->done(j, r->done_arg);
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

/* rcpt_note - the log line's note after a reply: the command it answered
 * (cmd, or NULL) and, on a connected session, its TLS state; a DSN shows
 * neither (its Diagnostic-Code is the reply alone) */
static void
rcpt_note(const struct relay *r, struct delivery_rcpt *rc, const char *cmd)
{
	delivery_rcpt_note(rc, "%s%s%s%s%s%s", cmd != NULL ? " (in reply to " : "",
	    cmd != NULL ? cmd : "", cmd != NULL ? ")" : "",
	    r->connected ? " [TLS=" : "",
	    r->connected ? (r->tls_on ? r->tls_info : "none") : "",
	    r->connected ? "]" : "");
}

/* sess_text - text as the result of every carried recipient without one
 * (accepted_only: of the accepted ones); cmd names the command whose
 * reply the text is, NULL when the text is ours */
static void
sess_text(struct relay *r, int accepted_only, int class, const char *dsn,
    const char *cmd, const char *text)
{
	size_t i;

	if (r->job == NULL)
		return;
	for (i = 0; i < r->nri; i++) {
		struct delivery_rcpt *rc = &r->job->rcpt[r->ri[i]];

		if (rc->class != 0 || (accepted_only && !rc->accepted))
			continue;
		delivery_rcpt_result(rc, class, dsn, r->relay, "%s", text);
		rcpt_note(r, rc, cmd);
	}
}

/* sess_result - sess_text with a format, for our own reasons */
static void sess_result(struct relay *r, int accepted_only, int class, const char *dsn,
    const char *fmt, ...) PRINTF_LIKE(5, 6);
static void
sess_result(struct relay *r, int accepted_only, int class, const char *dsn,
    const char *fmt, ...)
{
	char text[REPLY_TEXT_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	sess_text(r, accepted_only, class, dsn, NULL, text);
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
	log_debug("%s: relay %s: %s", r->qid, r->relay, reason);
	sess_result(r, 0, 4, dsn, "connect to %s: %s", r->relay, reason);
	return relay_close(r);
}

/* relay_reset_conn - forget the connection and what it offered */
static void
relay_reset_conn(struct relay *r)
{
	tls_close_notify(r);
	if (r->bev != NULL)
		bufferevent_free(r->bev);
	r->bev = NULL;
	if (r->deadline_ev != NULL)
		evtimer_del(r->deadline_ev);
	r->has_size = r->has_8bitmime = r->has_pipelining = 0;
	r->has_starttls = r->has_smtputf8 = r->auth_plain = r->auth_login = 0;
	r->has_chunking = 0;
	r->size_limit = 0;
	r->connected = r->tls_on = r->authed = 0;
	r->nmsgs = 0;
	r->tls_info[0] = '\0';
}

/* relay_next - this target failed for reason (kept for the results if no
 * other target works): try the next one, or the same one without TLS */
static int
relay_next(struct relay *r, int same, const char *dsn, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
static int
relay_next(struct relay *r, int same, const char *dsn, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	strlcpy(r->whydsn, dsn, sizeof(r->whydsn));
	log_info("%s: %s: %s%s", r->qid, r->relay, r->why,
	    same ? "; retrying without TLS" : r->cur + 1 < r->d.ntarget ?
	    "; trying the next address" : "");
	relay_reset_conn(r);
	if (same)
		r->no_tls = 1;
	else {
		r->cur++;
		r->no_tls = 0;
	}
	relay_connect(r);
	return -1;
}

/* step_bound - how long state s may take as a whole: the transport's
 * timeout (a reply trickled a byte at a time does not re-arm it); the
 * reply after the message also covers sending it, at 1 KiB/s at least */
static time_t
step_bound(const struct relay *r, enum relay_state s)
{
	if (s == RS_QUIT)
		return r->d.timeout < QUIT_TIMEOUT ? r->d.timeout : QUIT_TIMEOUT;
	if (s == RS_BODY && r->job != NULL)
		return r->d.timeout + (time_t)(r->job->msglen / 1024);
	return r->d.timeout;
}

/* on_deadline - the step took longer than step_bound: a timeout */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;

	(void)fd;
	(void)what;
	log_info("%s: %s: %s not complete within %llds", r->qid, r->relay,
	    step_of(r->state)->what, (long long)step_bound(r, r->state));
	relay_event(r->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, r);
}

/* relay_expect - wait for the reply of state s (sent now or earlier,
 * pipelined), for at most step_bound; an idle connection has no bound */
static void
relay_expect(struct relay *r, enum relay_state s)
{
	struct timeval tv = { 0, 0 };

	r->state = s;
	r->code = 0;
	r->nlines = 0;
	r->tlen = 0;
	r->text[0] = '\0';
	if (r->deadline_ev == NULL && (r->deadline_ev = evtimer_new(delivery_base(),
	    on_deadline, r)) == NULL)
		fatalx("relay: cannot create a timer");
	evtimer_del(r->deadline_ev);
	if (s == RS_IDLE)
		return;
	tv.tv_sec = step_bound(r, s);
	evtimer_add(r->deadline_ev, &tv);
}

/* relay_cmd_v - queue one command line; the log shows 'shown' */
static void
relay_cmd_v(struct relay *r, enum relay_state next, const char *shown, const char *fmt,
    va_list ap) PRINTF_LIKE(4, 0);
static void
relay_cmd_v(struct relay *r, enum relay_state next, const char *shown, const char *fmt,
    va_list ap)
{
	struct evbuffer *out = bufferevent_get_output(r->bev);
	va_list aq;

	if (log_get_level() >= LOG_LEVEL_DEBUG) {
		char line[600];

		va_copy(aq, ap);
		vsnprintf(line, sizeof(line), fmt, aq);
		va_end(aq);
		log_debug("%s: relay %s: > %s", r->qid, r->relay, shown != NULL ? shown : line);
	}
	evbuffer_add_vprintf(out, fmt, ap);
	evbuffer_add(out, "\r\n", 2);
	relay_expect(r, next);
}

/* relay_cmd - send one command line */
static void
relay_cmd(struct relay *r, enum relay_state next, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void
relay_cmd(struct relay *r, enum relay_state next, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	relay_cmd_v(r, next, NULL, fmt, ap);
	va_end(ap);
}

/* relay_cmd_secret - send a command line holding a secret; the log
 * shows only 'shown' */
static void
relay_cmd_secret(struct relay *r, enum relay_state next, const char *shown,
    const char *fmt, ...) PRINTF_LIKE(4, 5);
static void
relay_cmd_secret(struct relay *r, enum relay_state next, const char *shown,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	relay_cmd_v(r, next, shown, fmt, ap);
	va_end(ap);
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

	reply_dsn(r, class, dsn, sizeof(dsn));
	sess_text(r, accepted_only, class, dsn, step_of(r->state)->what, r->text);
}

/* relay_quit - every recipient has its result: report the job, say QUIT */
static int
relay_quit(struct relay *r)
{
	struct timeval tv = { QUIT_TIMEOUT, 0 };

	if (r->code == 421)
		return relay_close(r);  /* the server is closing already */
	relay_cmd(r, RS_QUIT, "QUIT");
	if (r->d.timeout < QUIT_TIMEOUT)
		tv.tv_sec = r->d.timeout;
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

/* on_idle_timeout - an idle connection was not needed again: QUIT */
static void
on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;

	(void)fd;
	(void)what;
	idle_unlink(r);
	r->code = 0;
	relay_quit(r);
}

/* idle_evict - close the oldest idle connection (the cache is full) */
static void
idle_evict(void)
{
	struct relay *o;

	for (o = idle_head; o != NULL && o->idle_next != NULL; o = o->idle_next)
		;
	if (o != NULL)
		on_idle_timeout(-1, 0, o);
}

/* relay_park - the message is done: keep the connection for the next
 * message to the same destination, or say QUIT */
static int
relay_park(struct relay *r)
{
	struct timeval tv = { r->d.reuse_idle, 0 };
	struct delivery_job *j = r->job;

	r->nmsgs++;
	/* only a connection whose last message went through is kept: after a
	 * failure the retry starts afresh */
	if (reply_class(r->code) != 2 || r->state != RS_BODY || r->d.reuse_max <= 1 ||
	    r->nmsgs >= r->d.reuse_max || r->d.reuse_idle <= 0)
		return relay_quit(r);
	bufferevent_set_timeouts(r->bev, NULL, NULL);
	if (r->idle_ev == NULL && (r->idle_ev = evtimer_new(delivery_base(),
	    on_idle_timeout, r)) == NULL)
		return relay_quit(r);
	if (idle_count >= IDLE_MAX)
		idle_evict();
	relay_expect(r, RS_IDLE);
	idle_count++;
	r->idle_prev = NULL;
	r->idle_next = idle_head;
	if (idle_head != NULL)
		idle_head->idle_prev = r;
	idle_head = r;
	evtimer_add(r->idle_ev, &tv);
	log_debug("%s: relay %s: connection kept for reuse (%d messages)", r->qid, r->relay,
	    r->nmsgs);
	/* hand the job back last: done() may take this very connection */
	r->job = NULL;
	j->session = NULL;
	r->done(j, r->done_arg);
	return -1;
}

/* ehlo_keyword - note the extensions we use from one EHLO reply line */
static void
ehlo_keyword(struct relay *r, const char *kw)
{
	size_t n = strcspn(kw, " =");

	if (n == 4 && strncasecmp(kw, "SIZE", 4) == 0) {
		r->has_size = 1;
		r->size_limit = kw[4] == ' ' ? strtoull(kw + 5, NULL, 10) : 0;
	} else if (n == 8 && strncasecmp(kw, "8BITMIME", 8) == 0)
		r->has_8bitmime = 1;
	else if (n == 10 && strncasecmp(kw, "PIPELINING", 10) == 0)
		r->has_pipelining = 1;
	else if (n == 8 && strncasecmp(kw, "STARTTLS", 8) == 0)
		r->has_starttls = 1;
	else if (n == 8 && strncasecmp(kw, "SMTPUTF8", 8) == 0)
		r->has_smtputf8 = 1;
	else if (n == 8 && strncasecmp(kw, "CHUNKING", 8) == 0)
		r->has_chunking = 1;
	else if (n == 4 && strncasecmp(kw, "AUTH", 4) == 0) {
		const char *p = kw + 4;

		while (*p == ' ' || *p == '=') {
			p++;
			n = strcspn(p, " ");
			if (n == 5 && strncasecmp(p, "PLAIN", 5) == 0)
				r->auth_plain = 1;
			if (n == 5 && strncasecmp(p, "LOGIN", 5) == 0)
				r->auth_login = 1;
			p += n;
		}
	}
}

/* send_envelope - MAIL FROM, and with PIPELINING every RCPT and DATA
 * (not BDAT: it carries the message, sent only to an accepted RCPT) */
static void
send_envelope(struct relay *r)
{
	struct delivery_job *j = r->job;
	char size[40] = "";
	size_t i;

	if (r->has_size)
		snprintf(size, sizeof(size), " SIZE=%zu", j->msglen);
	r->pipelined = r->has_pipelining;
	r->mail_failed = 0;
	r->naccepted = 0;
	r->data_sent = 0;
	relay_cmd(r, RS_MAIL, "MAIL FROM:<%s>%s%s%s", j->sender, size,
	    r->has_8bitmime && r->body8 ? " BODY=8BITMIME" : "",
	    r->utf8 || (r->utf8ask && r->has_smtputf8) ? " SMTPUTF8" : "");
	if (!r->pipelined)
		return;
	for (i = 0; i < r->nri; i++)
		relay_cmd(r, RS_MAIL, "RCPT TO:<%s>", j->rcpt[r->ri[i]].addr);
	if (!r->has_chunking)
		relay_cmd(r, RS_MAIL, "DATA");
}

/* begin_message - the extensions the message needs, then the envelope */
static int
begin_message(struct relay *r)
{
	struct delivery_job *j = r->job;

	if (r->utf8 && !r->has_smtputf8) {
		sess_result(r, 0, 4, "4.6.7", "an address is not ASCII and %s does not offer "
		    "SMTPUTF8", r->relay);
		return relay_quit(r);
	}
	if (r->eightbit && !r->has_8bitmime) {
		sess_result(r, 0, 4, "4.6.3", "the message has 8-bit content and %s does not "
		    "offer 8BITMIME", r->relay);
		return relay_quit(r);
	}
	if (r->has_size && r->size_limit > 0 && j->msglen > r->size_limit) {
		sess_result(r, 0, 5, "5.3.4", "message size %zu exceeds the size limit %llu of %s",
		    j->msglen, r->size_limit, r->relay);
		return relay_quit(r);
	}
	send_envelope(r);
	return 0;
}

/* b64 - base64 of len bytes into out (NUL-terminated) */
static void
b64(const char *in, size_t len, char *out, size_t outlen)
{
	if (4 * ((len + 2) / 3) + 1 > outlen) {
		out[0] = '\0';
		return;
	}
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)len);
}

/* send_auth - AUTH PLAIN with the initial response, else AUTH LOGIN */
static int
send_auth(struct relay *r)
{
	char plain[1024], enc[1400];
	size_t ul = strlen(r->d.auth_user), pl = strlen(r->d.auth_password);

	if (!r->tls_on) {
		sess_result(r, 0, 4, "4.7.11", "not sending AUTH to %s without TLS", r->relay);
		return relay_quit(r);
	}
	if (!r->auth_plain && !r->auth_login) {
		sess_result(r, 0, 4, "4.7.0", "%s offers neither AUTH PLAIN nor AUTH LOGIN",
		    r->relay);
		return relay_quit(r);
	}
	if (!r->auth_plain) {
		relay_cmd(r, RS_AUTH, "AUTH LOGIN");
		return 0;
	}
	if (ul + pl + 2 > sizeof(plain)) {
		sess_result(r, 0, 4, "4.7.0", "AUTH credentials too long");
		return relay_quit(r);
	}
	plain[0] = '\0';
	memcpy(plain + 1, r->d.auth_user, ul);
	plain[ul + 1] = '\0';
	memcpy(plain + ul + 2, r->d.auth_password, pl);
	b64(plain, ul + pl + 2, enc, sizeof(enc));
	relay_cmd_secret(r, RS_AUTH_PASS, "AUTH PLAIN ***", "AUTH PLAIN %s", enc);
	explicit_bzero(plain, sizeof(plain));
	explicit_bzero(enc, sizeof(enc));
	return 0;
}

/* after_ehlo - STARTTLS, TLS requirements and AUTH, then the message */
static int
after_ehlo(struct relay *r)
{
	if (!r->tls_on && r->has_starttls && r->d.tls >= CONF_TLS_MAY && !r->no_tls) {
		relay_cmd(r, RS_STARTTLS, "STARTTLS");
		return 0;
	}
	if (!r->tls_on && r->d.tls >= CONF_TLS_ENCRYPT)
		return relay_next(r, 0, "4.7.4", "TLS is required, but was not offered by %s",
		    r->relay);
	if (r->d.auth_user[0] != '\0' && !r->authed)
		return send_auth(r);
	return begin_message(r);
}

/* is_loop - mx: the best MX greets (or answers EHLO) with our own
 * hostname: the mail would come back here; bounce it as Postfix does
 * (5.4.6). 1 when so (r is then closing) */
static int
is_loop(struct relay *r, const char *what)
{
	if (r->d.nexthop[0] == '\0' || !r->d.target[r->cur].best || !loop_own_name(r->text))
		return 0;
	log_warnx("%s: %s %s with my own hostname %s", r->qid, r->relay, what,
	    delivery_conf()->hostname);
	sess_result(r, 0, 5, "5.4.6", "mail for %s loops back to myself", r->d.nexthop);
	relay_quit(r);
	return 1;
}

/* step_greeting - 220: EHLO; otherwise the next address if any */
static int
step_greeting(struct relay *r)
{
	char dsn[DLV_DSN_MAX];

	if (reply_class(r->code) != 2) {
		if (r->cur + 1 >= r->d.ntarget)
			return relay_fail(r);
		reply_dsn(r, reply_class(r->code), dsn, sizeof(dsn));
		return relay_next(r, 0, reply_class(r->code) == 4 ? dsn : "4.4.1",
		    "%s (in reply to the greeting of %s)", r->text, r->relay);
	}
	if (is_loop(r, "greeted me"))
		return -1;
	relay_cmd(r, RS_EHLO, "EHLO %s", delivery_conf()->hostname);
	return 0;
}

/* step_ehlo - 250: on; 5xx: try HELO (RFC 5321 3.2) unless TLS is on */
static int
step_ehlo(struct relay *r)
{
	if (reply_class(r->code) == 2 && is_loop(r, "replied to EHLO"))
		return -1;
	if (reply_class(r->code) == 2)
		return after_ehlo(r);
	if (reply_class(r->code) == 5 && !r->tls_on) {
		relay_cmd(r, RS_HELO, "HELO %s", delivery_conf()->hostname);
		return 0;
	}
	return relay_fail(r);
}

/* step_helo - 250: on, without any extension */
static int
step_helo(struct relay *r)
{
	if (reply_class(r->code) != 2)
		return relay_fail(r);
	return after_ehlo(r);
}

/* tls_start - wrap the connection in TLS (after STARTTLS's 220, or at
 * once for implicit TLS) */
static int
tls_start(struct relay *r)
{
	const struct smtp_target *t = &r->d.target[r->cur];
	struct bufferevent *tb;
	struct timeval tv = { r->d.timeout, 0 };
	char err[256];
	SSL *ssl;

	ssl = delivery_tls_new(r->d.ca_file, t->host, err, sizeof(err));
	if (ssl == NULL) {
		stats_add(&stats->smtp_tls_failed, 1);
		return relay_next(r, 0, "4.7.5", "TLS setup for %s failed: %s", r->relay, err);
	}
	tb = bufferevent_openssl_filter_new(delivery_base(), r->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		stats_add(&stats->smtp_tls_failed, 1);
		return relay_next(r, 0, "4.7.5", "TLS setup for %s failed", r->relay);
	}
	r->bev = tb;
	relay_expect(r, RS_TLS);
	bufferevent_setcb(tb, relay_read, NULL, relay_event, r);
	bufferevent_set_timeouts(tb, &tv, &tv);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	return 0;
}

/* tls_done - the handshake finished: check the certificate as the level
 * demands, log the session, go on */
static int
tls_done(struct relay *r)
{
	SSL *ssl = bufferevent_openssl_get_ssl(r->bev);
	int verified, need;

	verified = delivery_tls_describe(ssl, r->tls_info, sizeof(r->tls_info));
	stats_add(&stats->smtp_tls[verified ? 0 : 1], 1);
	need = r->d.tls == CONF_TLS_VERIFY || (r->d.tls_verify_used &&
	    r->d.tls != CONF_TLS_ENCRYPT);
	log_info("%s: %s: TLS %s", r->qid, r->relay, r->tls_info);
	if (need && !verified)
		return relay_next(r, 0, "4.7.5", "server certificate not verified for %s: %s",
		    r->relay, r->tls_info);
	r->tls_on = 1;
	if (r->d.tls_implicit) {
		relay_expect(r, RS_GREETING);
		return 0;
	}
	relay_cmd(r, RS_EHLO, "EHLO %s", delivery_conf()->hostname);
	return 0;
}

/* step_starttls - 220: handshake; else on in plain text (may) or next */
static int
step_starttls(struct relay *r)
{
	if (r->code == 220)
		return tls_start(r);
	if (r->d.tls >= CONF_TLS_ENCRYPT)
		return relay_next(r, 0, "4.7.4", "%s (in reply to STARTTLS)", r->text);
	r->no_tls = 1;
	return after_ehlo(r);
}

/* step_auth - 334: the next LOGIN step; 235: on; else defer (a smarthost
 * refusing our credentials is a configuration problem, not a bounce) */
static int
step_auth(struct relay *r)
{
	char enc[1400], dsn[DLV_DSN_MAX], why[REPLY_TEXT_MAX + 32];
	const char *s;

	if (r->code == 334 && r->state != RS_AUTH_PASS) {
		s = r->state == RS_AUTH ? r->d.auth_user : r->d.auth_password;
		b64(s, strlen(s), enc, sizeof(enc));
		relay_cmd_secret(r, r->state == RS_AUTH ? RS_AUTH_USER : RS_AUTH_PASS, "***",
		    "%s", enc);
		explicit_bzero(enc, sizeof(enc));
		return 0;
	}
	if (reply_class(r->code) == 2) {
		r->authed = 1;
		log_debug("%s: relay %s: authenticated as %s", r->qid, r->relay,
		    r->d.auth_user);
		return begin_message(r);
	}
	reply_dsn(r, reply_class(r->code), dsn, sizeof(dsn));
	dsn[0] = '4';
	snprintf(why, sizeof(why), "authentication failed: %s", r->text);
	sess_text(r, 0, 4, dsn, "AUTH", why);
	return relay_quit(r);
}

/* step_rset - a reused connection is ready: the message; else start over
 * on a new connection */
static int
step_rset(struct relay *r)
{
	if (reply_class(r->code) == 2)
		return begin_message(r);
	log_info("%s: %s: %s (in reply to RSET); reconnecting", r->qid, r->relay, r->text);
	relay_reset_conn(r);
	r->cur = 0;
	relay_connect(r);
	return -1;
}

/* step_mail - 250: the first RCPT (unless pipelined: its reply is next) */
static int
step_mail(struct relay *r)
{
	r->rcpt = 0;
	if (reply_class(r->code) != 2) {
		relay_result(r, 0);
		if (!r->pipelined)
			return relay_park(r);
		r->mail_failed = 1;
		relay_expect(r, RS_RCPT);
		return 0;
	}
	if (r->pipelined)
		relay_expect(r, RS_RCPT);
	else
		relay_cmd(r, RS_RCPT, "RCPT TO:<%s>", r->job->rcpt[r->ri[0]].addr);
	return 0;
}

static void send_bdat(struct relay *r);

/* step_rcpt - note this recipient's fate; next RCPT, DATA, BDAT or the
 * end */
static int
step_rcpt(struct relay *r)
{
	struct delivery_job *j = r->job;
	struct delivery_rcpt *rc = &j->rcpt[r->ri[r->rcpt]];
	int class = reply_class(r->code);
	char dsn[DLV_DSN_MAX];

	if (r->mail_failed)
		;               /* the MAIL failure is everyone's result */
	else if (class == 2) {
		rc->accepted = 1;
		r->naccepted++;
	} else {
		reply_dsn(r, class, dsn, sizeof(dsn));
		delivery_rcpt_result(rc, class, dsn, r->relay, "%s", r->text);
		rcpt_note(r, rc, "RCPT TO");
	}
	if (++r->rcpt < r->nri) {
		if (r->pipelined)
			relay_expect(r, RS_RCPT);
		else
			relay_cmd(r, RS_RCPT, "RCPT TO:<%s>", j->rcpt[r->ri[r->rcpt]].addr);
		return 0;
	}
	if (r->pipelined && !r->has_chunking) {
		relay_expect(r, RS_DATA);
		return 0;
	}
	if (r->naccepted == 0 || r->mail_failed)
		return relay_park(r);
	if (r->has_chunking)
		send_bdat(r);
	else
		relay_cmd(r, RS_DATA, "DATA");
	return 0;
}

/* body_add - the message with CRLF line ends; for DATA (stuff) dot-
 * stuffed and then "." */
static void
body_add(struct evbuffer *out, const char *m, size_t len, int stuff)
{
	size_t i = 0, e, l;

	while (i < len) {
		for (e = i; e < len && m[e] != '\n'; e++)
			;
		l = e - i;
		if (l > 0 && m[i + l - 1] == '\r')
			l--;
		if (l > 0 && m[i] == '.' && stuff)
			evbuffer_add(out, ".", 1);
		evbuffer_add(out, m + i, l);
		evbuffer_add(out, "\r\n", 2);
		i = e + 1;
	}
	if (stuff)
		evbuffer_add(out, ".\r\n", 3);
}

/* send_bdat - the whole message as one chunk: BDAT size LAST, then it */
static void
send_bdat(struct relay *r)
{
	struct evbuffer *chunk = evbuffer_new();

	if (chunk == NULL)
		fatalx("evbuffer_new failed");
	body_add(chunk, r->job->msg, r->job->msglen, 0);
	relay_cmd(r, RS_BODY, "BDAT %zu LAST", evbuffer_get_length(chunk));
	evbuffer_add_buffer(bufferevent_get_output(r->bev), chunk);
	evbuffer_free(chunk);
	r->data_sent = 1;
}

/* step_data - 354: send the message */
static int
step_data(struct relay *r)
{
	int nothing = r->mail_failed || r->naccepted == 0;

	if (r->code / 100 == 3 && nothing) {
		/* pipelined DATA accepted with no valid recipient: end it empty
		 * and drop the connection rather than trust its state */
		evbuffer_add(bufferevent_get_output(r->bev), ".\r\n", 3);
		return relay_close(r);
	}
	if (r->code / 100 == 3) {
		log_debug("%s: relay %s: > (%zu bytes of message)", r->qid, r->relay,
		    r->job->msglen);
		body_add(bufferevent_get_output(r->bev), r->job->msg, r->job->msglen, 1);
		r->data_sent = 1;
		relay_expect(r, RS_BODY);
		return 0;
	}
	if (nothing)
		return relay_park(r);
	if (r->code / 100 == 2)
		r->code = 451;  /* a 2xx to DATA is a protocol error: retry */
	relay_result(r, 1);
	r->state = RS_BODY;     /* a failed DATA still ends the transaction */
	return relay_park(r);
}

/* step_body - the reply to the message is every accepted recipient's */
static int
step_body(struct relay *r)
{
	relay_result(r, 1);
	return relay_park(r);
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

	log_debug("%s: relay %s: < %s", r->qid, r->relay, r->text);
	if (r->state == RS_IDLE) {
		relay_free(r);          /* e.g. "421 idle timeout" */
		return -1;
	}
	if (s->fn == NULL)
		return relay_abort(r, "4.5.0", "unexpected reply before %s", s->what);
	if (r->code == 421 && r->state != RS_QUIT && r->state != RS_GREETING) {
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

	if (r->state == RS_GREETING || r->state == RS_TLS)
		snprintf(buf, len, "%s", what);
	else
		snprintf(buf, len, "the reply to %s", what);
}

/* relay_broken - the dialogue failed (timeout, lost connection, bad
 * reply): before a usable greeting another address may do better (RFC
 * 5321 5.1), so try it; later, every recipient without a result gets
 * the failure */
static void
relay_broken(struct relay *r, const char *dsn, const char *what)
{
	char step[64];

	waiting_for(r, step, sizeof(step));
	if (r->state == RS_GREETING)
		relay_next(r, 0, dsn, "connect to %s: %s while waiting for %s", r->relay,
		    what, step);
	else
		relay_abort(r, dsn, "%s while waiting for %s", what, step);
}

/* relay_connected - the TCP connection is up: TLS or the greeting;
 * -1 if r may be gone (a failed TLS setup moved on, maybe to the end) */
static int
relay_connected(struct relay *r)
{
	r->connected = 1;
	log_debug("%s: relay %s: connected", r->qid, r->relay);
	if (r->d.tls_implicit)
		return tls_start(r);
	relay_expect(r, RS_GREETING);
	return 0;
}

/* relay_read - bufferevent read callback: complete lines into replies */
static void
relay_read(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t n;
	int rc;

	/* libevent may run the read callback before reporting the connect */
	if (r->state == RS_CONNECT &&
	    (relay_connected(r) == -1 || r->state != RS_GREETING))
		return;
	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		rc = n > REPLY_LINE_MAX ? -1 : reply_line(r, line, n);
		free(line);
		if (rc == -1) {
			if (r->state == RS_QUIT || r->state == RS_IDLE) {
				relay_free(r);
				return;
			}
			relay_broken(r, "4.5.0", "malformed reply");
			return;
		}
		if (rc == 1 && relay_reply(r) == -1)
			return;
		if (r->state == RS_TLS)
			return;         /* the rest is the TLS layer's */
	}
	if (evbuffer_get_length(in) > REPLY_LINE_MAX)
		relay_broken(r, "4.5.0", "reply line too long");
}

/* tls_error_text - what went wrong in a TLS bufferevent */
static void
tls_error_text(struct bufferevent *bev, int err, char *buf, size_t len)
{
	unsigned long e = bufferevent_get_openssl_error(bev);

	if (e != 0)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "%s", err != 0 ? evutil_socket_error_to_string(err) :
		    "connection closed");
}

/* relay_event - connected, or the connection failed, timed out, ended */
static void
relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;
	int err = EVUTIL_SOCKET_ERROR();
	char why[256];

	if (what & BEV_EVENT_CONNECTED) {
		if (r->state == RS_CONNECT)
			(void)relay_connected(r);
		else if (r->state == RS_TLS)
			tls_done(r);
		return;
	}
	if (r->state == RS_CONNECT) {
		/* EOF before CONNECTED was seen: the peer accepted and closed at
		 * once (errno is stale then, often EINPROGRESS) */
		relay_next(r, 0, "4.4.1", "connect to %s: %s", r->relay,
		    (what & BEV_EVENT_TIMEOUT) ? "Connection timed out" :
		    (what & BEV_EVENT_EOF) ? "lost connection while waiting for the "
		    "greeting" : evutil_socket_error_to_string(err));
		return;
	}
	if (r->state == RS_TLS) {
		stats_add(&stats->smtp_tls_failed, 1);
		tls_error_text(bev, err, why, sizeof(why));
		relay_next(r, r->d.tls == CONF_TLS_MAY && !r->d.tls_implicit &&
		    !r->d.tls_verify_used, "4.7.5", "TLS handshake with %s failed: %s",
		    r->relay, (what & BEV_EVENT_TIMEOUT) ? "timed out" : why);
		return;
	}
	if (r->state == RS_QUIT || r->state == RS_IDLE) {
		relay_free(r);
		return;
	}
	if (r->state == RS_RSET) {
		/* the cached connection died while idle: start over */
		relay_reset_conn(r);
		r->cur = 0;
		relay_connect(r);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		relay_broken(r, "4.4.2", "conversation timed out");
	else if (what & BEV_EVENT_EOF)
		relay_broken(r, "4.4.2", "lost connection");
	else {
		snprintf(why, sizeof(why), "lost connection (%s)",
		    evutil_socket_error_to_string(err));
		relay_broken(r, "4.4.2", why);
	}
}

/* relay_try - start a non-blocking connect to the current target; 0, or
 * -1 with r->why set when it failed at once */
static int
relay_try(struct relay *r)
{
	struct timeval tv = { r->d.timeout, 0 };
	const struct smtp_target *t = &r->d.target[r->cur];
	int fd, one = 1;

	fd = socket(t->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(r->why, sizeof(r->why), "connect to %s: %s", r->relay, strerror(errno));
		return -1;
	}
	/* commands are small and each waits for its reply: no Nagle delay */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		log_warn("setsockopt TCP_NODELAY");
	if (connect(fd, (const struct sockaddr *)&t->ss, t->sslen) == -1 &&
	    errno != EINPROGRESS) {
		snprintf(r->why, sizeof(r->why), "connect to %s: %s", r->relay, strerror(errno));
		close(fd);
		return -1;
	}
	r->bev = bufferevent_socket_new(delivery_base(), fd, BEV_OPT_CLOSE_ON_FREE);
	if (r->bev == NULL) {
		close(fd);
		snprintf(r->why, sizeof(r->why), "connect to %s: no bufferevent", r->relay);
		return -1;
	}
	bufferevent_setcb(r->bev, relay_read, NULL, relay_event, r);
	bufferevent_set_timeouts(r->bev, &tv, &tv);
	relay_expect(r, RS_CONNECT);
	if (bufferevent_socket_connect(r->bev, NULL, 0) == -1) {
		snprintf(r->why, sizeof(r->why), "connect to %s: cannot wait", r->relay);
		bufferevent_free(r->bev);
		r->bev = NULL;
		return -1;
	}
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
	stats_add(&stats->smtp_connections[0], 1);
	return 0;
}

/* relay_connect - try the current target and those after it; when none
 * is left, every recipient gets the last failure */
static void
relay_connect(struct relay *r)
{
	const struct smtp_target *t;
	char ip[64];

	for (; r->cur < r->d.ntarget; r->cur++) {
		t = &r->d.target[r->cur];
		sockaddr_str((const struct sockaddr *)&t->ss, ip, sizeof(ip));
		snprintf(r->relay, sizeof(r->relay), "%s[%s]:%u", t->host, ip,
		    ntohs(t->ss.ss_family == AF_INET6 ?
		    ((const struct sockaddr_in6 *)&t->ss)->sin6_port :
		    ((const struct sockaddr_in *)&t->ss)->sin_port));
		if (relay_try(r) == 0)
			return;
		strlcpy(r->whydsn, "4.4.1", sizeof(r->whydsn));
		log_debug("%s: %s", r->qid, r->why);
		r->no_tls = 0;
	}
	if (r->why[0] == '\0')
		snprintf(r->why, sizeof(r->why), "no usable address");
	r->connected = 0;
	log_debug("%s: %s", r->qid, r->why);
	sess_result(r, 0, 4, r->whydsn[0] != '\0' ? r->whydsn : "4.4.1", "%s", r->why);
	relay_close(r);
}

/* relay_take - an idle connection to d's destination, or NULL */
static struct relay *
relay_take(const struct smtp_dest *d)
{
	struct relay *r;

	for (r = idle_head; r != NULL; r = r->idle_next)
		if (strcmp(r->d.key, d->key) == 0) {
			idle_unlink(r);
			return r;
		}
	return NULL;
}

/* needs_utf8 - 1 if the sender or a carried recipient is not ASCII */
static int
needs_utf8(const struct delivery_job *j, const size_t *ri, size_t nri)
{
	const unsigned char *p;
	size_t i;

	for (p = (const unsigned char *)j->sender; *p != '\0'; p++)
		if (*p & 0x80)
			return 1;
	for (i = 0; i < nri; i++)
		for (p = (const unsigned char *)j->rcpt[ri[i]].addr; *p != '\0'; p++)
			if (*p & 0x80)
				return 1;
	return 0;
}

/* utf8_header - 1 if the header section has non-ASCII octets and they
 * all form UTF-8 sequences (RFC 6532 headers, not legacy 8-bit ones) */
static int
utf8_header(const char *m, size_t len)
{
	const unsigned char *p = (const unsigned char *)m;
	size_t i, k, n;
	int seen = 0;

	for (i = 0; i < len; i++) {
		if (p[i] == '\n' && i + 1 < len && (p[i + 1] == '\n' ||
		    (p[i + 1] == '\r' && i + 2 < len && p[i + 2] == '\n')))
			break;          /* the empty line ends the header section */
		if (p[i] < 0x80)
			continue;
		n = p[i] >= 0xf0 && p[i] <= 0xf4 ? 3 : p[i] >= 0xe0 && p[i] <= 0xef ?
		    2 : p[i] >= 0xc2 && p[i] <= 0xdf ? 1 : 0;
		if (n == 0 || i + n >= len)
			return 0;
		for (k = 1; k <= n; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
		i += n;
		seen = 1;
	}
	return seen;
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

/* envelope_needs - the extensions the message needs and asks for: what
 * its SMTP client declared (ENV_F_DECLARED: SMTPUTF8, BODY=8BITMIME)
 * with what its content needs; without a declaration (postern-sendmail,
 * the send API, envelopes stored before record version 3) a UTF-8 header
 * section asks for SMTPUTF8 */
static void
envelope_needs(struct relay *r, const struct delivery_job *j, const size_t *ri,
    size_t nri)
{
	r->eightbit = has_8bit(j->msg, j->msglen);
	r->body8 = r->eightbit || (j->envflags & ENV_F_8BITMIME);
	r->utf8 = needs_utf8(j, ri, nri);
	if (j->envflags & ENV_F_DECLARED)
		r->utf8ask = (j->envflags & ENV_F_SMTPUTF8) != 0;
	else
		r->utf8ask = r->eightbit && utf8_header(j->msg, j->msglen);
}

/* smtp_deliver - carry recipients ri of j to destination d */
void
smtp_deliver(struct delivery_job *j, const size_t *ri, size_t nri,
    const struct smtp_dest *d, smtp_done_cb *done, void *arg)
{
	struct relay *r = d->reuse_max > 1 ? relay_take(d) : NULL;
	struct timeval tv = { d->timeout, 0 };
	int reused = r != NULL;

	if (r == NULL) {
		r = xcalloc(1, sizeof(*r));
		r->d = *d;
	}
	r->job = j;
	j->session = r;
	free(r->ri);
	r->ri = xcalloc(nri > 0 ? nri : 1, sizeof(*r->ri));
	memcpy(r->ri, ri, nri * sizeof(*ri));
	r->nri = nri;
	r->done = done;
	r->done_arg = arg;
	strlcpy(r->qid, j->queueid, sizeof(r->qid));
	envelope_needs(r, j, ri, nri);
	r->why[0] = r->whydsn[0] = '\0';
	if (nri == 0) {
		relay_close(r);
		return;
	}
	if (reused) {
		log_debug("%s: relay %s: reusing the connection", r->qid, r->relay);
		stats_add(&stats->smtp_connections[1], 1);
		bufferevent_set_timeouts(r->bev, &tv, &tv);
		relay_cmd(r, RS_RSET, "RSET");
		return;
	}
	relay_connect(r);
}

/* ---- the relay transport ------------------------------------------- */

/* A relay job waiting for the smarthost's addresses. */
struct relay_lookup {
	struct delivery_job *j;
	struct smtp_dest d;
	char host[ADDR_DOMAIN_MAX + 1];
	int port;
};

/* relay_done - the session is over: report the job */
static void
relay_done(struct delivery_job *j, void *arg)
{
	(void)arg;
	delivery_job_done(j);
}

/* relay_dest - the smtp_dest of a relay transport (no targets yet) */
static void
relay_dest(const struct conf_transport *t, struct smtp_dest *d)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->key, sizeof(d->key), "relay:%s", t->name);
	d->tls = t->tls;
	d->tls_verify_used = 1;         /* a smarthost's certificate must verify */
	d->tls_implicit = t->tls_implicit;
	d->ca_file = t->ca_file != NULL ? t->ca_file : "";
	d->auth_user = t->auth_user != NULL ? t->auth_user : "";
	d->auth_password = t->auth_password != NULL ? t->auth_password : "";
	d->timeout = t->timeout > 0 ? t->timeout : 300;
	d->reuse_max = t->reuse_max;
	d->reuse_idle = t->reuse_idle;
}

/* relay_all - every recipient of the job, as indexes */
static void
relay_all(struct delivery_job *j, const struct smtp_dest *d)
{
	size_t *ri = xcalloc(j->nrcpt > 0 ? j->nrcpt : 1, sizeof(*ri)), i;

	for (i = 0; i < j->nrcpt; i++)
		ri[i] = i;
	smtp_deliver(j, ri, j->nrcpt, d, relay_done, NULL);
	free(ri);
}

/* relay_add_target - one address of the smarthost */
static void
relay_add_target(struct smtp_dest *d, const char *host, const struct sockaddr *sa,
    socklen_t len, int port)
{
	struct smtp_target *t;

	if (d->ntarget >= SMTP_TARGETS_MAX || len > sizeof(t->ss))
		return;
	t = &d->target[d->ntarget++];
	strlcpy(t->host, host, sizeof(t->host));
	memcpy(&t->ss, sa, len);
	t->sslen = len;
	if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)&t->ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)&t->ss)->sin_port = htons((uint16_t)port);
}

/* relay_resolved - the smarthost's addresses */
static void
relay_resolved(void *arg, int status, struct ares_addrinfo_node *ai, const char *err)
{
	struct relay_lookup *l = arg;
	struct delivery_job *j = l->j;
	size_t i;

	for (; status == DNS_OK && ai != NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
			relay_add_target(&l->d, l->host, ai->ai_addr, ai->ai_addrlen, l->port);
	if (l->d.ntarget == 0) {
		for (i = 0; i < j->nrcpt; i++)
			if (j->rcpt[i].class == 0)
				delivery_rcpt_result(&j->rcpt[i], 4, "4.4.3", l->host,
				    "cannot resolve %s: %s", l->host, err);
		free(l);
		delivery_job_done(j);
		return;
	}
	relay_all(j, &l->d);
	free(l);
}

/* delivery_relay_run - resolve the smarthost (literal addresses at once)
 * and start the session */
void
delivery_relay_run(struct delivery_job *j)
{
	const struct conf_transport *t = j->transport;
	struct relay_lookup *l = xcalloc(1, sizeof(*l));
	struct evutil_addrinfo hints, *ai = NULL, *a;
	char port[32];

	l->j = j;
	relay_dest(t, &l->d);
	if (hostport_parse(t->host, l->host, sizeof(l->host), port, sizeof(port)) == -1 ||
	    (l->port = atoi(port)) < 1 || l->port > 65535) {
		log_warnx("transport %s: bad host '%s'", t->name, t->host);
		delivery_job_result(j, 0, 4, "4.3.5", NULL, "bad relay host '%s'", t->host);
		free(l);
		delivery_job_done(j);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_NUMERICHOST;
	if (evutil_getaddrinfo(l->host, port, &hints, &ai) == 0) {
		for (a = ai; a != NULL; a = a->ai_next)
			relay_add_target(&l->d, l->host, a->ai_addr, (socklen_t)a->ai_addrlen,
			    l->port);
		evutil_freeaddrinfo(ai);
		relay_all(j, &l->d);
		free(l);
		return;
	}
	dns_lookup_addr(l->host, relay_resolved, l);
}

/* smtp_close_idle - at exit: QUIT, close_notify and close every idle
 * connection now (best effort: the bytes go to the sockets at once,
 * nothing waits for the peers), so that no peer sees a connection
 * simply cut */
void
smtp_close_idle(void)
{
	struct relay *r;
	struct bufferevent *u;

	while ((r = idle_head) != NULL) {
		idle_unlink(r);         /* while it is still RS_IDLE */
		relay_cmd(r, RS_QUIT, "QUIT");
		bufferevent_flush(r->bev, EV_WRITE, BEV_FLUSH);
		u = bufferevent_get_underlying(r->bev);
		write_now(u != NULL ? u : r->bev);
		relay_free(r);
	}
}

/* delivery_relay_abandon - the queue link died: stop unless the message
 * is already handed over (then finish; the result is dropped) */
int
delivery_relay_abandon(struct delivery_job *j)
{
	struct relay *r = j->session;

	if (r == NULL || r->data_sent || r->done != relay_done)
		return 0;
	r->job = NULL;
	j->session = NULL;
	relay_free(r);
	delivery_job_result(j, 0, 4, "4.3.0", NULL, "abandoned: the queue link was lost");
	delivery_job_done(j);
	return 1;
}
