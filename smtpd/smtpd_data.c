/*
 * smtpd_data.c - message content, for DATA and for BDAT alike: the
 * Received: header, the line, header, size and NUL checks, and streaming
 * the message into the spool file queued opened for it; on top of that,
 * for DATA only, end-of-data detection and dot-unstuffing; and the time
 * bound on a whole DATA or BDAT phase.
 *
 * Owns: struct smtpd_data (only while a message is being received: the
 * spool descriptor, a 64 KiB write buffer, the parser state, counters)
 * and the session's phase timer (s->data_timer).
 *
 * One parser serves both: DATA feeds it the client input until end of
 * data (data_input), BDAT feeds it each chunk's octets (data_chunk, in
 * "raw" mode: a "." at the start of a line is data, nothing ends the
 * message but BDAT LAST). Everything else is shared.
 *
 * Rules (see postern-smtpd(8)):
 *  - A line ends at CR LF. End of data is exactly CR LF "." CR LF, where
 *    the first CR LF ends the previous line (or is the one of the DATA
 *    command). A bare CR never ends a line nor the message; a message
 *    containing one is refused after its end with 550 5.6.11. A bare LF
 *    is what smtpd_forbid_bare_newline says (Postfix's semantics):
 *    "normalize" (the default): it ends the line, which is stored with
 *    CR LF, but it never takes part in an end of data: "." CR LF after
 *    a bare LF, and "." LF anywhere, are a line holding "." (unstuffed:
 *    an empty line), so no smuggling variant splits one message in two;
 *    "reject": it is kept and the message refused with 550 5.6.11; a
 *    client in the exclusions: it ends a line and "." LF or a "." line
 *    after a bare LF ends the data too (Postfix's "no", for legacy
 *    clients an operator trusts). Nothing stored has a bare CR or LF,
 *    so nothing we relay can be read differently by the next hop. BDAT
 *    content follows the same line rules; a CR LF split between two
 *    chunks is still one CR LF, and a last line without CR LF at the
 *    end of BDAT LAST is completed with one.
 *  - A text line over 1000 octets with its CR LF (RFC 5321 4.5.3.1.6,
 *    counted after unstuffing): 500 5.5.2. The line is not buffered: its
 *    bytes are counted and dropped.
 *  - NUL anywhere: 550 5.6.0. Over max_message_size: stop writing, 552.
 *    Write errors (ENOSPC, EIO): 452 4.3.1. In every case the rest of
 *    the message (DATA) or of the chunk (BDAT: the refusal answers that
 *    chunk) is still read to its real end, so the session stays in step
 *    with the client, and the spool file is aborted.
 *  - The whole phase, from the DATA or first BDAT command to the end of
 *    the data, may take at most smtpd_data_timeout: then 421 4.4.2, the
 *    spool file is aborted and the session closed.
 *  - The file receives the Received: header and then the message with
 *    CR LF line endings, exactly as received after unstuffing, except
 *    that on a submission listener a missing Date: or Message-ID: is
 *    added at the end of the header section (smtpd_header.c).
 *  - An authenticated user restricted to some sender domains whose
 *    From: names another domain: 550 5.7.1 after the end of data.
 *  - More than hopcount_limit Received: fields, the one we add included:
 *    554 5.4.6 after the end of data (a mail loop; refused rather than
 *    accepted and bounced, as Postfix's cleanup does).
 *
 * SECURITY: message bytes are untrusted and never logged. The only file
 * written is the descriptor queued passed; no path is opened here.
 *
 * STANDARDS: RFC 5321 (4.1.1.4 DATA, 4.5.2 transparency, 4.4 trace
 * information, 2.3.8 lines, 4.5.3.1.6 text line length), RFC 3030
 * (BDAT content is not dot-stuffed), RFC 5322 (3.6.7 trace fields, dates),
 * RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA "with" keywords), RFC 3463
 * (5.6.0, 5.3.4, 5.4.6), RFC 6409 (submission: Date, Message-ID).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "util.h"

#include "smtpd.h"

/* Where the parser is within the current line. */
enum data_state {
	DS_BOL = 0,             /* at the start of a line */
	DS_DOT,                 /* a "." at the start of a line */
	DS_DOTCR,               /* "." CR at the start of a line */
	DS_TEXT,                /* inside a line */
	DS_CR,                  /* inside a line, after a CR */
};

/* Why the message will be refused at its end (first one wins). */
#define DF_BARE 0x01            /* bare CR or LF */
#define DF_NUL 0x02             /* NUL byte */
#define DF_SIZE 0x04            /* over max_message_size */
#define DF_WERR 0x08            /* write(2) to the spool file failed */
#define DF_LONG 0x10            /* a line over SMTPD_TEXT_MAX (+ CR LF) */
#define DF_REFUSE (DF_BARE | DF_NUL | DF_SIZE | DF_WERR | DF_LONG)

struct smtpd_data {
	int fd;                 /* the spool file, O_WRONLY */
	int raw;                /* BDAT: no dot handling, no end of data */
	enum conf_bare_lf lf;   /* what a bare LF is for this client */
	int after_lf;           /* the last line ended with a bare LF */
	enum data_state st;
	unsigned flags;
	int werrno;             /* errno of the failed write */
	uint64_t body;          /* message bytes after unstuffing */
	uint64_t stored;        /* bytes written, Received: included */
	size_t linelen;         /* octets of the current line so far */
	struct session *s;
	struct smtpd_hdr *hdr;  /* while in the header section, else NULL */
	int from_refused;       /* From: names a domain the user does not own */
	int hops;               /* Received: fields, ours included */
	size_t hlen;            /* bytes of the current line in hline */
	char hline[SMTPD_TEXT_MAX]; /* the current header line, held until
	                         * its end (a longer one is refused) */
	size_t len;             /* bytes waiting in buf */
	char buf[SMTPD_DATA_BUF];
};

/* data_flush - write the buffer to the spool file */
static void
data_flush(struct smtpd_data *d)
{
	size_t off = 0;
	ssize_t n;

	while (off < d->len && !(d->flags & DF_WERR)) {
		n = write(d->fd, d->buf + off, d->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			d->werrno = n < 0 ? errno : EIO;
			d->flags |= DF_WERR;
			break;
		}
		off += (size_t)n;
		d->stored += (uint64_t)n;
	}
	d->len = 0;
}

/* data_put - store bytes (buffered) unless the message is refused */
static void
data_put(struct smtpd_data *d, const char *p, size_t n)
{
	size_t room;

	if (d->flags & DF_REFUSE)
		return;
	while (n > 0) {
		if (d->len == sizeof(d->buf)) {
			data_flush(d);
			if (d->flags & DF_WERR)
				return;
		}
		room = sizeof(d->buf) - d->len;
		if (room > n)
			room = n;
		memcpy(d->buf + d->len, p, room);
		d->len += room;
		p += room;
		n -= room;
	}
}

/* data_emit - message content: count it against the size and line
 * limits, hold it (header line) or store it */
static void
data_emit(struct smtpd_data *d, const char *p, size_t n)
{
	d->body += n;
	if (d->body > smtpd.conf->max_message_size)
		d->flags |= DF_SIZE;
	d->linelen += n;
	if (d->linelen > SMTPD_TEXT_MAX)
		d->flags |= DF_LONG;
	if (d->flags & DF_REFUSE)
		return;         /* nothing more is kept, not even in hline */
	if (d->hdr != NULL) {
		/* a header line is held until its end: what a submission
		 * message lacks may have to go before it (it fits: a longer
		 * line set DF_LONG above) */
		memcpy(d->hline + d->hlen, p, n);
		d->hlen += n;
		return;
	}
	data_put(d, p, n);
}

/* data_headers_end - the header section ended: add what a submission
 * message lacks (and the empty line when a body line ended it), stop
 * scanning */
static void
data_headers_end(struct smtpd_data *d, int body_line)
{
	char add[512];

	hdr_missing(d->hdr, d->s, add, sizeof(add));
	if (*add != '\0' && body_line)
		strlcat(add, "\r\n", sizeof(add));
	data_put(d, add, strlen(add));
	d->from_refused = hdr_from_refused(d->hdr, d->s);
	d->hops = hdr_received(d->hdr) + 1;
	hdr_free(&d->hdr);
}

/* data_eol - a CR LF: the line is complete (look at header lines) */
static void
data_eol(struct smtpd_data *d)
{
	int end;

	d->body += 2;
	if (d->body > smtpd.conf->max_message_size)
		d->flags |= DF_SIZE;
	d->linelen = 0;
	if (d->hdr == NULL || (d->flags & DF_REFUSE)) {
		data_put(d, "\r\n", 2);
		return;
	}
	/* the empty line, or a line that is no header field, ends the
	 * header section: additions go before it */
	end = hdr_line(d->hdr, d->s, d->hline, d->hlen);
	if (end)
		data_headers_end(d, d->hlen > 0);
	data_put(d, d->hline, d->hlen);
	data_put(d, "\r\n", 2);
	d->hlen = 0;
}

/* data_text - DS_TEXT: copy a run of ordinary bytes, or handle one of
 * CR, LF, NUL; returns bytes consumed */
static size_t
data_text(struct smtpd_data *d, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] != '\r' && p[i] != '\n' && p[i] != '\0')
		i++;
	if (i > 0) {
		data_emit(d, p, i);
		return i;
	}
	if (p[0] == '\r') {
		d->st = DS_CR;
		return 1;
	}
	if (p[0] == '\n' && d->lf != BARE_LF_REJECT) {
		/* normalized: the line ends as at CR LF */
		data_eol(d);
		d->st = DS_BOL;
		d->after_lf = 1;
		return 1;
	}
	/* a bare LF (reject) or a NUL: kept as it is, refused at the end */
	d->flags |= p[0] == '\n' ? DF_BARE : DF_NUL;
	data_emit(d, p, 1);
	return 1;
}

/* data_dot - DS_DOT or DS_DOTCR (a "." at the start of a line, maybe a
 * CR after it) and byte c: 1 if c ends the data; else the next state,
 * DS_TEXT when c is to be looked at again as text */
static int
data_dot(struct smtpd_data *d, char c)
{
	if (d->st == DS_DOT) {
		if (c == '\r')
			d->st = DS_DOTCR;
		else if (c == '\n' && d->lf == BARE_LF_ALLOW)
			return 1;
		else
			d->st = DS_TEXT;        /* unstuffing: the dot goes */
		return 0;
	}
	if (c != '\n') {
		/* "." then a bare CR: not the end */
		d->flags |= DF_BARE;
		data_emit(d, "\r", 1);
		d->st = DS_TEXT;
		return 0;
	}
	if (d->after_lf && d->lf == BARE_LF_NORMALIZE) {
		/* LF "." CR LF: a line holding the (unstuffed) dot */
		data_eol(d);
		d->st = DS_BOL;
		d->after_lf = 0;
		return 0;
	}
	return 1;
}

/* data_scan - run the parser over n bytes; returns bytes consumed and
 * sets *done when the end-of-data line was consumed */
static size_t
data_scan(struct smtpd_data *d, const char *p, size_t n, int *done)
{
	size_t i = 0;

	while (i < n) {
		switch (d->st) {
		case DS_TEXT:
			i += data_text(d, p + i, n - i);
			break;
		case DS_CR:
			if (p[i] == '\n') {
				data_eol(d);
				d->st = DS_BOL;
				d->after_lf = 0;
				i++;
			} else {
				/* bare CR; look at this byte again as text */
				d->flags |= DF_BARE;
				data_emit(d, "\r", 1);
				d->st = DS_TEXT;
			}
			break;
		case DS_BOL:
			if (p[i] == '.' && !d->raw) {
				d->st = DS_DOT;
				i++;
			} else
				d->st = DS_TEXT;
			break;
		case DS_DOT:
		case DS_DOTCR:
			if (data_dot(d, p[i])) {
				*done = 1;
				return i + 1;
			}
			if (d->st != DS_TEXT)
				i++;
			break;
		}
	}
	return i;
}

/* received_protocol - the RFC 3848 "with" keyword of the session (RFC
 * 6531 4.3: the UTF8SMTP ones when the transaction used SMTPUTF8) */
static const char *
received_protocol(const struct session *s)
{
	static const char *const esmtp[] = { "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA" };
	static const char *const utf8[] = { "UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA",
	    "UTF8SMTPSA" };
	int i = ((s->flags & SF_TLS) ? 1 : 0) + ((s->flags & SF_AUTH) ? 2 : 0);

	if (!(s->flags & SF_ESMTP))
		return "SMTP";
	return (s->flags & SF_SMTPUTF8) ? utf8[i] : esmtp[i];
}

/* received_extras - the TLS comment and the authenticated user (when
 * received_show_auth) as continuation lines, or "" */
static void
received_extras(const struct session *s, char *buf, size_t len)
{
	char tls[160];
	size_t off = 0;

	buf[0] = '\0';
	tls_describe(s, tls, sizeof(tls));
	if (*tls != '\0')
		off += (size_t)snprintf(buf, len, "\r\n\t(using %s)", tls);
	if ((s->flags & SF_AUTH) && s->user != NULL && smtpd.conf->received_show_auth &&
	    off < len)
		snprintf(buf + off, len - off, "\r\n\t(Authenticated sender: %s)",
		    s->user->name);
}

/* received_header - the trace field (RFC 5321 4.4) into the buffer */
static void
received_header(struct session *s)
{
	struct smtpd_data *d = s->data;
	char date[64], forpart[SMTPD_ADDR_BUF + 16], extras[512];
	const char *v6;
	int n;

	rfc5322_date(time(NULL), date, sizeof(date));
	v6 = s->ss.ss_family == AF_INET6 && strchr(s->ip, ':') != NULL ? "IPv6:" : "";
	forpart[0] = '\0';
	if (s->nrcpt == 1)
		snprintf(forpart, sizeof(forpart), "\r\n\tfor <%s>", s->rcpt[0]);
	received_extras(s, extras, sizeof(extras));
	n = snprintf(d->buf, sizeof(d->buf),
	    "Received: from %s (%s [%s%s])%s\r\n"
	    "\tby %s (Postern) with %s id %s%s; %s\r\n",
	    s->helo != NULL ? s->helo : "unknown",
	    s->client_name != NULL ? s->client_name : "unknown", v6, s->ip, extras,
	    smtpd.conf->hostname, received_protocol(s), s->qid, forpart, date);
	if (n < 0 || (size_t)n >= sizeof(d->buf))
		panic("Received: header does not fit");
	d->len = (size_t)n;
}

/* data_start - the spool fd arrived: write Received:, then reply 354
 * (DATA) or read the pending chunk (BDAT, s->bdat) */
void
data_start(struct session *s, int fd)
{
	struct smtpd_data *d;

	d = xmalloc(sizeof(*d));
	d->fd = fd;
	d->raw = s->bdat;
	d->lf = conf_bare_lf_for(smtpd.conf, (size_t)s->listener,
	    (const struct sockaddr *)&s->ss);
	d->after_lf = 0;
	d->st = DS_BOL;         /* the DATA command's CR LF precedes the body */
	d->flags = 0;
	d->werrno = 0;
	d->body = d->stored = 0;
	d->linelen = 0;
	d->len = 0;
	d->s = s;
	d->hdr = hdr_new();
	d->hlen = 0;
	d->from_refused = 0;
	d->hops = 0;
	s->data = d;
	received_header(s);
	if (d->raw)
		s->state = SS_BDAT;
	else {
		s->state = SS_DATA;
		session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	}
	session_resume(s);
}

/* data_free - close the spool fd and free the data state */
void
data_free(struct session *s)
{
	if (s->data == NULL)
		return;
	if (s->data->fd >= 0)
		close(s->data->fd);
	hdr_free(&s->data->hdr);
	xfree(&s->data);
}

/* data_refuse - the message is refused: reply and abort the spool file */
static void
data_refuse(struct session *s, enum stats_reject why, const char *text)
{
	session_reject(s, why, s->bdat ? "BDAT" : "END-OF-MESSAGE", NULL, "%s",
	    text);
	session_txn_reset(s);
}

/* data_refuse_hops - a mail loop, most likely: too many Received: */
static void
data_refuse_hops(struct session *s, int hops)
{
	char text[160];

	snprintf(text, sizeof(text), "554 5.4.6 Too many hops: %d Received: header "
	    "fields, the limit is %d (a mail loop?)", hops, smtpd.conf->hopcount_limit);
	data_refuse(s, REJ_HOPS, text);
}

/* data_refused - refuse now if the content so far must be (reply sent,
 * transaction aborted); 1 if so */
int
data_refused(struct session *s)
{
	struct smtpd_data *d = s->data;

	if (d->flags & DF_BARE)
		data_refuse(s, REJ_PROTOCOL, "550 5.6.11 Message contains bare CR or LF;"
		    " lines must end with CR LF");
	else if (d->flags & DF_NUL)
		data_refuse(s, REJ_PROTOCOL, "550 5.6.0 Message contains NUL");
	else if (d->flags & DF_LONG)
		data_refuse(s, REJ_PROTOCOL, "500 5.5.2 Message contains a line over "
		    "1000 octets");
	else if (d->flags & DF_SIZE)
		data_refuse(s, REJ_SIZE, "552 5.3.4 Message size exceeds fixed maximum "
		    "message size");
	else if (d->hops > smtpd.conf->hopcount_limit)
		data_refuse_hops(s, d->hops);
	else if (d->from_refused)
		data_refuse(s, REJ_SENDER, "550 5.7.1 Sender address rejected: "
		    "From: header not owned by the authenticated user");
	else if (d->flags & DF_WERR) {
		log_warnx("%s: cannot write the spool file: %s", s->qid,
		    strerror(d->werrno));
		data_refuse(s, REJ_QUEUE_ERROR, "452 4.3.1 Insufficient system storage");
	} else
		return 0;
	return 1;
}

/* data_last_line - BDAT LAST: a last line without CR LF is completed
 * with one (a lone CR at the very end is a bare CR) */
static void
data_last_line(struct smtpd_data *d)
{
	if (!d->raw || d->st == DS_BOL)
		return;
	if (d->st == DS_CR) {
		d->flags |= DF_BARE;
		data_emit(d, "\r", 1);
	}
	data_eol(d);
	d->st = DS_BOL;
}

/* data_end - end of data: refuse, or commit and wait for queued */
void
data_end(struct session *s)
{
	struct smtpd_data *d = s->data;
	uint64_t size;

	data_phase_end(s);
	data_last_line(d);
	/* a message that is all header: the additions go at its end */
	if (d->hdr != NULL && !(d->flags & DF_REFUSE)) {
		hdr_line(d->hdr, s, "", 0);
		data_headers_end(d, 0);
	}
	if (!(d->flags & DF_REFUSE)) {
		data_flush(d);
		if (close(d->fd) < 0 && !(d->flags & DF_WERR)) {
			d->werrno = errno;
			d->flags |= DF_WERR;
		}
		d->fd = -1;
	}
	if (data_refused(s))
		return;
	if (!queue_current(s))
		data_refuse(s, REJ_QUEUE_ERROR, "451 4.3.0 Queue unavailable, try again "
		    "later");
	else {
		size = d->stored;
		data_free(s);
		if (queue_commit(s, size) < 0)
			data_refuse(s, REJ_QUEUE_ERROR, "451 4.3.0 Queue unavailable, "
			    "try again later");
	}
}

/* data_chunk - BDAT: n octets of the message, taken as they are */
void
data_chunk(struct session *s, const char *p, size_t n)
{
	int done = 0;

	/* in raw mode there is no end of data: every byte is consumed */
	(void)data_scan(s->data, p, n, &done);
}

/* data_input - consume message bytes from the client input; returns 1
 * when end of data was reached (the session moved on), 0 if it needs
 * more input */
int
data_input(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec v[8];
	size_t used;
	int i, nv, done = 0;

	while (evbuffer_get_length(in) > 0) {
		nv = evbuffer_peek(in, -1, NULL, v, 8);
		if (nv > 8)
			nv = 8;
		used = 0;
		for (i = 0; i < nv && !done; i++)
			used += data_scan(s->data, v[i].iov_base, v[i].iov_len, &done);
		evbuffer_drain(in, used);
		if (done) {
			data_end(s);
			return 1;
		}
	}
	return 0;
}

/* data_timeout - the phase took longer than smtpd_data_timeout: 421,
 * abort the spool file, close */
static void
data_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	data_phase_end(s);
	if (s->flags & SF_CLOSING)
		return;
	session_reject(s, REJ_TIMEOUT, s->bdat ? "BDAT" : "DATA", NULL,
	    "421 4.4.2 %s Error: timeout exceeded", smtpd.conf->hostname);
	session_txn_reset(s);
	session_close(s);
}

/* data_phase_begin - arm the bound on the whole DATA or BDAT phase
 * (smtpd_data_timeout; 0 = none); no-op when armed already */
void
data_phase_begin(struct session *s)
{
	struct timeval tv;

	if (s->data_timer != NULL || smtpd.conf->smtpd_data_timeout <= 0)
		return;
	s->data_timer = evtimer_new(smtpd.base, data_timeout, s);
	if (s->data_timer == NULL)
		fatalx("evtimer_new failed");
	tv.tv_sec = smtpd.conf->smtpd_data_timeout;
	tv.tv_usec = 0;
	evtimer_add(s->data_timer, &tv);
}

/* data_phase_end - disarm the phase bound (end of data, reset, free) */
void
data_phase_end(struct session *s)
{
	if (s->data_timer == NULL)
		return;
	event_free(s->data_timer);
	s->data_timer = NULL;
}
