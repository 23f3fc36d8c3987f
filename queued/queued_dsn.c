/*
 * queued_dsn.c - delivery status notifications: the RFC 3464 report sent
 * to a message's envelope sender when recipients bounce (permanent
 * failure, or the queue lifetime expired: Action: failed) or have been
 * deferred longer than queue.delay_warning (Action: delayed).
 *
 * A DSN is a new message in this queue with the null sender <> and one
 * recipient, the original sender; it is made durable exactly like a
 * received message (tmp/ file, fsync, rename into msg/, fsync of msg/,
 * one LMDB transaction) BEFORE the recipient states that caused it are
 * stored, so a crash may send a DSN twice but never lose one. Delivery
 * takes the normal path. Never a DSN to <> (so a DSN that bounces is
 * dropped, and logged: no loops).
 *
 * The message is built with GMime (common/mime.c): boundary, folding
 * and line ends are the library's; the texts of the parts are written
 * here. Layout (multipart/report; report-type=delivery-status):
 *   1. text/plain: what happened, one line per recipient;
 *   2. message/delivery-status: Reporting-MTA, Arrival-Date, then per
 *      recipient Final-Recipient, Action, Status, Remote-MTA (when the
 *      relay was an SMTP server), Diagnostic-Code (the last reply),
 *      Last-Attempt-Date, and Will-Retry-Until for "delayed";
 *   3. text/rfc822-headers: the original message's header section.
 *
 * SECURITY: runs unprivileged in queued. The remote reply text and the
 * original headers are untrusted: replies are put on one line with
 * control characters replaced and cut to 900 bytes; the header section
 * is copied as received (smtpd checked its line endings) and cut at
 * DSN_HEADERS_MAX bytes at a line end.
 * STANDARDS: RFC 3464 (DSN format), RFC 3462/6522 (multipart/report),
 * RFC 3463 (status codes), RFC 5321 4.5.5 (null reverse-path for
 * notifications), RFC 3834 (Auto-Submitted), RFC 5322 (dates).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "mime.h"
#include "msgbuf.h"
#include "queued.h"
#include "stats.h"
#include "util.h"

#define DSN_HEADERS_MAX (64u * 1024)
#define DSN_REPLY_MAX 900

/* The texts that differ between a bounce and a delay warning. */
struct dsn_kind {
	const char *action;
	const char *subject;
	const char *intro;
	const char *default_status;
};

static const struct dsn_kind kinds[] = {
	{ "failed", "Undelivered Mail Returned to Sender",
	  "I'm sorry to have to inform you that your message could not\r\n"
	  "be delivered to one or more recipients. The reasons are below.\r\n",
	  "5.0.0" },
	{ "delayed", "Delayed Mail (still being retried)",
	  "Your message could not be delivered yet to one or more recipients.\r\n"
	  "It will be retried until it is too old; you need not send it again.\r\n",
	  "4.0.0" },
};

/* kind_for - the texts of an action ("failed" or "delayed") */
static const struct dsn_kind *
kind_for(const char *action)
{
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].action, action) == 0)
			return &kinds[i];
	panic("DSN action '%s'", action);
}

/* add - append a string to b (no terminating NUL) */
static void
add(struct msgbuf *b, const char *s)
{
	msg_add_data(b, s, strlen(s));
}

/* addf - append a formatted string to b */
static void __attribute__((format(printf, 2, 3)))
addf(struct msgbuf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		fatalx("out of memory");
	va_end(ap);
	add(b, s);
	free(s);
}

/* date_of - the RFC 5322 date of t in buf */
static const char *
date_of(char *buf, size_t len, time_t t)
{
	rfc5322_date(t, buf, len);
	return buf;
}

/* one_line - s with control characters replaced, cut to max bytes */
static char *
one_line(const char *s, size_t max)
{
	char *o = xstrndup(s != NULL ? s : "", max);
	size_t i;

	for (i = 0; o[i] != '\0'; i++)
		if ((unsigned char)o[i] < 0x20 || o[i] == 0x7f)
			o[i] = ' ';
	return o;
}

/* status_ok - 1 if s looks like an RFC 3463 code "d.ddd.ddd" */
static int
status_ok(const char *s)
{
	unsigned a, b, c;
	char tail;

	return s != NULL && sscanf(s, "%1u.%3u.%3u%c", &a, &b, &c, &tail) == 3 &&
	    (a == 2 || a == 4 || a == 5);
}

/* read_headers - the header section of msg/ID (CRLF), bounded */
static char *
read_headers(const char *id)
{
	char *buf = xmalloc(DSN_HEADERS_MAX + 1), *end;
	size_t len = 0;
	ssize_t n;
	int fd;

	buf[0] = '\0';
	if (qspool_msg_open(id, &fd) != 0)
		return buf;
	while (len < DSN_HEADERS_MAX &&
	    (n = read(fd, buf + len, DSN_HEADERS_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	if ((end = strstr(buf, "\r\n\r\n")) != NULL)
		end[2] = '\0';
	else if ((end = strrchr(buf, '\n')) != NULL)
		end[1] = '\0';  /* cut at a line end */
	else
		buf[0] = '\0';
	return buf;
}

/* human_text - part 1: the human-readable text */
static void
human_text(struct msgbuf *b, const struct qmsg *m, const uint32_t *idx,
    uint32_t n, const struct dsn_kind *k)
{
	const char *host = qenv.conf->hostname;
	uint32_t i;
	char *why;

	addf(b, "This is the mail system at host %s.\r\n\r\n%s\r\n", host, k->intro);
	for (i = 0; i < n; i++) {
		why = one_line(m->rcpt[idx[i]].last_reply, DSN_REPLY_MAX);
		addf(b, "<%s>: %s\r\n", m->rcpt[idx[i]].address, why);
		free(why);
	}
}

/* rcpt_status - the per-recipient fields of part 2 */
static void
rcpt_status(struct msgbuf *b, const struct qmsg *m, const struct qrcpt *r,
    const char *relay, const struct dsn_kind *k, time_t now)
{
	char date[64], *reply;
	const char *br;
	int smtp;

	addf(b, "\r\nFinal-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\n",
	    r->address, k->action, status_ok(r->last_dsn) ? r->last_dsn :
	    k->default_status);
	if (relay != NULL && (br = strchr(relay, '[')) != NULL && br > relay)
		addf(b, "Remote-MTA: dns; %.*s\r\n", (int)(br - relay), relay);
	if (r->last_reply != NULL && *r->last_reply != '\0') {
		reply = one_line(r->last_reply, DSN_REPLY_MAX);
		smtp = strlen(reply) >= 3 && reply[0] >= '2' && reply[0] <= '5' &&
		    reply[1] >= '0' && reply[1] <= '9' && reply[2] >= '0' &&
		    reply[2] <= '9';
		addf(b, "Diagnostic-Code: %s; %s\r\n", smtp ? "smtp" : "x-postern", reply);
		free(reply);
	}
	addf(b, "Last-Attempt-Date: %s\r\n", date_of(date, sizeof(date), now));
	if (strcmp(k->action, "delayed") == 0)
		addf(b, "Will-Retry-Until: %s\r\n", date_of(date, sizeof(date),
		    (time_t)(m->arrival + qenv.conf->queue.lifetime)));
}

/* status_text - part 2: the per-message, then per-recipient fields */
static void
status_text(struct msgbuf *b, const struct qmsg *m, const uint32_t *idx,
    const char *const *relay, uint32_t n, const struct dsn_kind *k)
{
	time_t now = time(NULL);
	char date[64];
	uint32_t i;

	addf(b, "Reporting-MTA: dns; %s\r\nX-Postern-Queue-ID: %s\r\n"
	    "Arrival-Date: %s\r\n", qenv.conf->hostname, m->id,
	    date_of(date, sizeof(date), (time_t)m->arrival));
	for (i = 0; i < n; i++)
		rcpt_status(b, m, &m->rcpt[idx[i]], relay[i], k, now);
}

/* add_part - a part with its Content-Description from the text in b
 * (which is emptied) */
static void
add_part(GMimeMultipart *mp, const char *type, const char *subtype,
    const char *charset, const char *description, struct msgbuf *b)
{
	GMimeObject *p;

	msg_add_data(b, "", 1);         /* NUL-terminate the text */
	p = mime_leaf(type, subtype, charset, (const char *)b->data,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_object_set_header(p, "Content-Description", description, NULL);
	g_mime_multipart_add(mp, p);
	g_object_unref(p);
	msgbuf_reset(b);
}

/* dsn_header - the DSN's own header fields */
static void
dsn_header(GMimeObject *o, const char *newid, const struct qmsg *m,
    const struct dsn_kind *k)
{
	const char *host = qenv.conf->hostname;
	char date[64], *v;

	v = xasprintf("Mail Delivery System <MAILER-DAEMON@%s>", host);
	mime_header(o, "From", v);
	free(v);
	v = xasprintf("<%s>", m->sender);
	mime_header(o, "To", v);
	free(v);
	mime_header(o, "Subject", k->subject);
	mime_header(o, "Date", date_of(date, sizeof(date), time(NULL)));
	v = xasprintf("<%s@%s>", newid, host);
	mime_header(o, "Message-ID", v);
	free(v);
	mime_header(o, "Auto-Submitted", "auto-replied");
	mime_header(o, "MIME-Version", "1.0");
}

/* dsn_build - the whole DSN message for recipients idx of m (malloc'd,
 * *len bytes) */
static char *
dsn_build(const char *newid, const struct qmsg *m, const uint32_t *idx,
    const char *const *relay, uint32_t n, const struct dsn_kind *k, size_t *len)
{
	GMimeMessage *msg;
	GMimeMultipart *mp;
	struct msgbuf b;
	char *headers;

	mime_setup();
	msg = g_mime_message_new(FALSE);
	dsn_header(GMIME_OBJECT(msg), newid, m, k);
	mp = mime_multipart("multipart/report; report-type=delivery-status",
	    "This is a MIME-encapsulated message.");
	msgbuf_init(&b);
	human_text(&b, m, idx, n, k);
	add_part(mp, "text", "plain", "utf-8", "Notification", &b);
	status_text(&b, m, idx, relay, n, k);
	add_part(mp, "message", "delivery-status", NULL, "Delivery report", &b);
	headers = read_headers(m->id);
	add(&b, headers);
	free(headers);
	add_part(mp, "text", "rfc822-headers", NULL, "Undelivered Message Headers", &b);
	msgbuf_free(&b);
	g_mime_message_set_mime_part(msg, GMIME_OBJECT(mp));
	g_object_unref(mp);
	return mime_bytes(GMIME_OBJECT(msg), len);
}

/* write_all - write the whole buffer to fd; 0 or errno */
static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* dsn_envelope - the queue entry of the DSN: <> to the original sender */
static struct qmsg *
dsn_envelope(const char *newid, const struct qmsg *m, uint64_t size)
{
	struct qmsg *d = qmsg_new(newid, 1);

	d->sender = xstrdup("");
	d->client = xstrdup("");
	d->helo = xstrdup("");
	d->authuser = xstrdup("");
	d->size = size;
	d->arrival_ms = now_real_ms();
	d->arrival = (int64_t)(d->arrival_ms / 1000);
	d->rcpt[0].address = xstrdup(m->sender);
	d->rcpt[0].state = RCPT_PENDING;
	d->rcpt[0].next_attempt = d->arrival;
	d->rcpt[0].last_dsn = xstrdup("");
	d->rcpt[0].last_reply = xstrdup("");
	return d;
}

/* dsn_index - the records of d in one transaction; 0 or errno */
static int
dsn_index(const struct qmsg *d)
{
	struct MDB_txn *txn;
	int rc;

	if ((rc = qidx_begin(&txn)) != 0)
		return qidx_errno(rc);
	if ((rc = qidx_put_msg(txn, d)) != 0 ||
	    (rc = qidx_put_rcpt(txn, d, &d->rcpt[0])) != 0) {
		qidx_abort(txn);
		return qidx_errno(rc);
	}
	return (rc = qidx_commit(txn)) != 0 ? qidx_errno(rc) : 0;
}

/* dsn_store - write, sync, rename, index: the DSN is durable; 0 or errno */
static int
dsn_store(const struct qmsg *m, const uint32_t *idx, const char *const *relay,
    uint32_t n, const struct dsn_kind *k, struct qmsg **out)
{
	char newid[QUEUE_ID_LEN + 1], *text;
	struct qmsg *d;
	size_t len;
	int fd, err;

	if ((err = qspool_tmp_create(newid, &fd)) != 0)
		return err;
	text = dsn_build(newid, m, idx, relay, n, k, &len);
	err = write_all(fd, (const uint8_t *)text, len);
	if (err == 0)
		err = qspool_sync_fd(fd);
	close(fd);
	d = dsn_envelope(newid, m, len);
	free(text);
	if (err != 0 || (err = qspool_rename(newid)) != 0) {
		qspool_tmp_unlink(newid);
		qmsg_free(&d);
		return err;
	}
	if ((err = qspool_sync_msgdir()) != 0 || (err = dsn_index(d)) != 0) {
		qspool_msg_unlink(newid);
		qmsg_free(&d);
		return err;
	}
	*out = d;
	return 0;
}

/* qdsn_send - one DSN for recipients idx of m, or a log line why not */
int
qdsn_send(const struct qmsg *m, const uint32_t *idx, const char *const *relay,
    uint32_t n, const char *action)
{
	const struct dsn_kind *k = kind_for(action);
	struct qmsg *d = NULL;
	int err;

	if (n == 0)
		return 0;
	if (m->sender == NULL || *m->sender == '\0') {
		log_info("%s: no %s DSN: the sender is <> (a DSN or similar), "
		    "dropped", m->id, action);
		return 0;
	}
	if ((err = dsn_store(m, idx, relay, n, k, &d)) != 0) {
		log_warnx("%s: cannot queue the %s DSN to <%s>: %s", m->id, action,
		    m->sender, strerror(err));
		return err;
	}
	log_info("%s: bounce-sent id=%s to=<%s> action=%s nrcpt=%u", m->id, d->id,
	    m->sender, action, n);
	stats_add(&stats->dsn_messages[strcmp(action, "delayed") == 0 ?
	    SDSN_DELAYED : SDSN_FAILED], 1);
	qevent("bounce-sent", m, NULL, NULL, 0);
	log_info("%s: from=<> size=%llu nrcpt=1 (queue active)", d->id,
	    (unsigned long long)d->size);
	qsched_add(d);
	qevent("queued", d, NULL, NULL, 0);
	qsched_kick();
	return 0;
}
