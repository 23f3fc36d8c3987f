/*
 * smtpd_session.c - one SMTP session: its lifecycle, reading command
 * lines, replies, refusals, the error limit, timeouts and closing.
 *
 * Owns: struct session and its bufferevent. A session reads commands
 * while in SS_COMMAND, hands the input to smtpd_data.c while in SS_DATA,
 * and stops reading while it waits for queued (pipelined bytes wait in
 * the input buffer). It also stops reading a client that does not read
 * its replies (SMTPD_OUTPUT_MAX), so a hostile peer cannot grow our
 * memory.
 *
 * SECURITY: all input is untrusted. Command lines are bounded to
 * SMTPD_LINE_MAX octets (longer ones are discarded to their end, so the
 * session stays in step), NUL bytes are refused, and anything echoed into
 * a log is either parsed and validated or sanitised first. The dialogue
 * log (debug) never shows an AUTH payload: the argument after the AUTH
 * mechanism and every continuation line of an exchange are "[redacted]".
 *
 * STANDARDS: RFC 5321 (4.5.3.1.4 line length, 4.5.3.2 timeouts, 3.8
 * 421 on shutdown), RFC 2920 (pipelining: process every complete command
 * in order, replies buffered), RFC 3463 (enhanced codes).
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "netaddr.h"
#include "util.h"

#include "smtpd.h"

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_input(struct session *s);

/* session_new - start a session on an accepted socket (sends 220) */
void
session_new(int fd, const struct sockaddr *sa, int salen, int listener)
{
	struct bufferevent *bev;
	struct session *s;
	size_t n;

	s = xcalloc(1, sizeof(*s));
	n = salen > 0 ? (size_t)salen : 0;
	if (n > sizeof(s->ss))
		n = sizeof(s->ss);
	memcpy(&s->ss, sa, n);
	if (sockaddr_str((const struct sockaddr *)&s->ss, s->ip, sizeof(s->ip)) == NULL)
		strlcpy(s->ip, "unknown", sizeof(s->ip));
	s->listener = listener;
	s->serial = ++smtpd.next_serial;
	s->fd = fd;
	if (session_listen(s) != NULL && session_listen(s)->debug)
		s->flags |= SF_DEBUG;
	if (tls_implicit(listener)) {
		/* smtps: TLS from the first byte; the bufferevent owns fd */
		bev = tls_bev_new(fd, listener);
		s->flags |= SF_TLS;
	} else
		bev = bufferevent_socket_new(smtpd.base, fd, 0);
	if (bev == NULL) {
		log_warnx("cannot make a bufferevent for [%s]", s->ip);
		close(fd);
		free(s);
		return;
	}
	TAILQ_INSERT_TAIL(&smtpd.sessions, s, entry);
	smtpd.nsessions++;
	stats_add(&stats->connections, 1);
	log_info("connect from [%s]%s", s->ip, (s->flags & SF_TLS) ? " (smtps)" : "");
	session_attach(s, bev);
	session_reply(s, "220 %s ESMTP Postern", smtpd.conf->hostname);
}

/* session_attach - use bev for s: callbacks, timeouts, reading */
void
session_attach(struct session *s, struct bufferevent *bev)
{
	struct timeval tv;

	s->bev = bev;
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
	tv.tv_sec = smtpd.conf->smtpd_timeout > 0 ? smtpd.conf->smtpd_timeout : 300;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	session_update_read(s);
}

/* session_listen - the configuration of the session's listener */
const struct conf_listen *
session_listen(const struct session *s)
{
	if (s->listener < 0 || (size_t)s->listener >= smtpd.conf->nlisten)
		return NULL;
	return &smtpd.conf->listen[s->listener];
}

/* session_debugging - 1 if the dialogue of s is logged */
int
session_debugging(const struct session *s)
{
	return (s->flags & SF_DEBUG) || log_get_level() >= LOG_LEVEL_DEBUG;
}

/* session_dialogue - one line of the dialogue into the log, non-printable
 * bytes as '?'; at info level when only the listener has debug = yes */
static void
session_dialogue(const struct session *s, const char *dir, const char *line,
    size_t len)
{
	char buf[SMTPD_LINE_MAX + 1];
	size_t i;

	if (len > SMTPD_LINE_MAX)
		len = SMTPD_LINE_MAX;
	for (i = 0; i < len; i++)
		buf[i] = isprint((unsigned char)line[i]) ? line[i] : '?';
	buf[len] = '\0';
	if (log_get_level() >= LOG_LEVEL_DEBUG)
		log_debug("%llu [%s] %s %s", (unsigned long long)s->serial, s->ip, dir, buf);
	else
		log_info("debug: %llu [%s] %s %s", (unsigned long long)s->serial, s->ip,
		    dir, buf);
}

/* session_log_command - a client line for the dialogue log, AUTH
 * payloads redacted */
static void
session_log_command(const struct session *s, const char *line, size_t len)
{
	char buf[64];
	size_t n;

	if (s->auth_step != AUTH_STEP_NONE) {
		session_dialogue(s, "<", "[redacted]", 10);
		return;
	}
	if (len >= 4 && strncasecmp(line, "AUTH", 4) == 0 &&
	    (len == 4 || !isalnum((unsigned char)line[4]))) {
		/* "AUTH MECH" kept, whatever follows the mechanism is not
		 * (any odd spacing: everything after the first word) */
		n = line[4] == ' ' ? 5 + strcspn(line + 5, " \t") : 4;
		if (n >= sizeof(buf) - 12)
			n = sizeof(buf) - 12;
		memcpy(buf, line, n);
		buf[n] = '\0';
		if (n < len)
			strlcat(buf, " [redacted]", sizeof(buf));
		session_dialogue(s, "<", buf, strlen(buf));
		return;
	}
	session_dialogue(s, "<", line, len);
}

/* session_txn_free - release the transaction's memory */
static void
session_txn_free(struct session *s)
{
	size_t i;

	for (i = 0; i < s->nrcpt; i++)
		free(s->rcpt[i]);
	xfree(&s->rcpt);
	s->nrcpt = s->rcptcap = s->rcptbytes = 0;
	xfree(&s->sender);
}

/* session_txn_reset - forget the transaction (aborting it with queued
 * if a spool file is open) */
void
session_txn_reset(struct session *s)
{
	if (s->state == SS_DATA) {
		queue_abort(s);
		data_free(s);
	}
	/* a late MSG_OPENED for a session no longer waiting is aborted by
	 * smtpd_queue.c; a late MSG_COMMITTED is only logged */
	queue_unwait(s);
	s->qid[0] = '\0';
	s->msgsize = 0;
	s->state = SS_COMMAND;
	session_txn_free(s);
}

/* session_reset_protocol - forget HELO and the transaction (RFC 3207
 * 4.2: after TLS the client starts again with EHLO) */
void
session_reset_protocol(struct session *s)
{
	session_txn_reset(s);
	auth_reset(s);
	s->flags &= ~(SF_HELO | SF_ESMTP);
	xfree(&s->helo);
}

/* session_free - release everything; aborts an open transaction */
void
session_free(struct session *s)
{
	session_txn_reset(s);
	auth_reset(s);
	log_info("disconnect from [%s]", s->ip);
	TAILQ_REMOVE(&smtpd.sessions, s, entry);
	smtpd.nsessions--;
	bufferevent_free(s->bev);
	/* a plain bufferevent does not own the socket, a TLS one does */
	if (!(s->flags & SF_TLS))
		close(s->fd);
	free(s->helo);
	free(s);
	smtpd_session_gone();
}

/* session_reply - queue one reply line (CRLF added) */
void
session_reply(struct session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	if (s->flags & SF_CLOSING)
		return;
	va_start(ap, fmt);
	if (session_debugging(s)) {
		char line[600];
		int n = vsnprintf(line, sizeof(line), fmt, ap);

		session_dialogue(s, ">", line, n < 0 ? 0 : strnlen(line, sizeof(line)));
		evbuffer_add(out, line, strlen(line));
	} else
		evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* reject_counts - does this kind of refusal count towards the error
 * limit? Not the ones caused by our own limits or our queue. */
static int
reject_counts(enum stats_reject why)
{
	return why != REJ_QUEUE_ERROR && why != REJ_RCPT_LIMIT;
}

/* session_reject - a refusal: reply, count, log, error limit */
void
session_reject(struct session *s, enum stats_reject why, const char *cmd,
    const char *rcpt, const char *fmt, ...)
{
	char text[600];
	va_list ap;

	if (s->flags & SF_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	session_reply(s, "%s", text);
	stats_add(&stats->rejected[why], 1);
	log_info("reject: %s from [%s]: %s; from=<%s> to=<%s>", cmd, s->ip, text,
	    s->sender != NULL ? s->sender : "", rcpt != NULL ? rcpt : "");
	if (!reject_counts(why) || ++s->errors < SMTPD_ERROR_LIMIT)
		return;
	session_reply(s, "421 4.7.0 Too many errors");
	stats_add(&stats->rejected[REJ_PROTOCOL], 1);
	log_info("reject: %s from [%s]: 421 4.7.0 Too many errors; from=<%s> to=<>",
	    cmd, s->ip, s->sender != NULL ? s->sender : "");
	session_close(s);
}

/* session_update_read - read from the client only when we can use it */
void
session_update_read(struct session *s)
{
	if ((s->flags & (SF_CLOSING | SF_OUTFULL)) == 0 &&
	    (s->state == SS_COMMAND || s->state == SS_DATA))
		bufferevent_enable(s->bev, EV_READ);
	else
		bufferevent_disable(s->bev, EV_READ);
}

/* session_close - close once the queued replies are written */
void
session_close(struct session *s)
{
	if (s->flags & SF_CLOSING)
		return;
	s->flags |= SF_CLOSING;
	session_update_read(s);
	/* the write callback frees the session once the output is empty;
	 * trigger it (deferred) in case it already is */
	bufferevent_trigger(s->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

/* session_pause - stop reading client input while waiting for queued */
void
session_pause(struct session *s)
{
	session_update_read(s);
}

/* session_resume - read again and process what is already buffered */
void
session_resume(struct session *s)
{
	session_update_read(s);
	session_input(s);
}

/* session_idle - between transactions: no MAIL, nothing pending */
int
session_idle(const struct session *s)
{
	return s->state == SS_COMMAND && s->sender == NULL;
}

/* session_stop_idle - while stopping: 421 and close if idle; 1 if so */
int
session_stop_idle(struct session *s)
{
	if (!smtpd.stopping || (s->flags & SF_CLOSING) || !session_idle(s))
		return 0;
	session_reply(s, "421 4.3.2 %s Service shutting down", smtpd.conf->hostname);
	session_close(s);
	return 1;
}

/* session_line - take one command line from the input and run it;
 * 0 if no complete line is buffered yet */
static int
session_line(struct session *s, struct evbuffer *in)
{
	char line[SMTPD_LINE_MAX + 1];
	struct evbuffer_ptr p;
	size_t len, have;

	p = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (p.pos < 0) {
		/* no end of line yet: a line that is already too long is
		 * discarded as it arrives, so memory stays bounded */
		have = evbuffer_get_length(in);
		if (have > SMTPD_LINE_MAX) {
			evbuffer_drain(in, have);
			s->flags |= SF_DISCARD;
		}
		return 0;
	}
	len = (size_t)p.pos;
	if ((s->flags & SF_DISCARD) || len + 1 > SMTPD_LINE_MAX) {
		evbuffer_drain(in, len + 1);
		s->flags &= ~SF_DISCARD;
		session_reject(s, REJ_PROTOCOL, "unknown", NULL,
		    "500 5.5.2 Error: line too long");
		return 1;
	}
	evbuffer_remove(in, line, len + 1);
	line[len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (memchr(line, '\0', len) != NULL) {
		auth_reset(s);
		session_reject(s, REJ_PROTOCOL, "unknown", NULL,
		    "500 5.5.2 Error: NUL in command");
		return 1;
	}
	if (session_debugging(s))
		session_log_command(s, line, len);
	if (s->auth_step != AUTH_STEP_NONE)
		auth_continue(s, line);
	else
		cmd_dispatch(s, line, len);
	explicit_bzero(line, len);
	return 1;
}

/* session_check_output - stop reading a client that does not read */
static void
session_check_output(struct session *s)
{
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) > SMTPD_OUTPUT_MAX) {
		s->flags |= SF_OUTFULL;
		session_update_read(s);
	}
}

/* session_input - process every complete command (and message data) in
 * the input buffer, in order, until we must wait */
static void
session_input(struct session *s)
{
	struct evbuffer *in;

	while ((s->flags & (SF_CLOSING | SF_OUTFULL)) == 0) {
		if (s->state == SS_DATA) {
			if (!data_input(s))
				break;
			continue;
		}
		if (s->state != SS_COMMAND || session_stop_idle(s))
			break;
		/* fetched each time: STARTTLS replaces the bufferevent */
		in = bufferevent_get_input(s->bev);
		if (!session_line(s, in))
			break;
		session_check_output(s);
	}
}

/* session_read_cb - bytes arrived */
static void
session_read_cb(struct bufferevent *bev, void *arg)
{
	session_input(arg);
}

/* session_write_cb - the output drained: finish closing, or read again */
static void
session_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->flags & SF_CLOSING) {
		session_free(s);
		return;
	}
	if (s->state == SS_STARTTLS &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		tls_upgrade(s);
		return;
	}
	if (s->flags & SF_OUTFULL) {
		s->flags &= ~SF_OUTFULL;
		session_resume(s);
	}
}

/* session_state_name - what the session was doing, for timeout logs */
static const char *
session_state_name(const struct session *s)
{
	static const char *const names[] = {
		[SS_COMMAND] = "command",
		[SS_WAIT_OPEN] = "DATA",
		[SS_DATA] = "DATA content",
		[SS_WAIT_COMMIT] = "END-OF-MESSAGE",
		[SS_STARTTLS] = "STARTTLS",
	};

	return names[s->state];
}

/* session_event_cb - EOF, error or timeout on the client socket */
static void
session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		/* the TLS handshake finished */
		char desc[160];

		tls_describe(s, desc, sizeof(desc));
		log_info("TLS established with [%s]: %s", s->ip, desc);
		stats_add(&stats->smtpd_tls, 1);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    !(s->flags & SF_CLOSING)) {
		log_info("timeout after %s from [%s]", session_state_name(s), s->ip);
		session_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    smtpd.conf->hostname);
		session_close(s);
		return;
	}
	if ((what & BEV_EVENT_ERROR) && (s->flags & SF_TLS))
		tls_log_error(s);
	else if (what & BEV_EVENT_ERROR)
		log_debug("connection error with [%s] in %s state", s->ip,
		    session_state_name(s));
	else if (!(s->flags & SF_CLOSING) && s->state != SS_COMMAND)
		log_info("lost connection after %s from [%s]", session_state_name(s),
		    s->ip);
	/* a client that half-closed after its last command still gets the
	 * replies already queued for it; the free follows the flush */
	if ((what & BEV_EVENT_EOF) && !(s->flags & SF_CLOSING) &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) > 0) {
		session_close(s);
		return;
	}
	session_free(s);
}
