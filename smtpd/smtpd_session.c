/*
 * smtpd_session.c - one SMTP session: its lifecycle, reading command
 * lines, replies, refusals, the error limit, timeouts and closing.
 *
 * Owns: struct session and its bufferevent. A new session starts in
 * SS_GREETING, reading nothing while the checks before the banner run
 * (session_start: the per-client connection limit in smtpd_anvil.c,
 * then the ingress allow-list in smtpd_access.c); on smtps
 * the TLS bufferevent replaces the plain one only once they passed, so a
 * refused smtps client is closed before any handshake and gets no reply.
 * A session reads commands
 * while in SS_COMMAND, hands the input to smtpd_data.c while in SS_DATA
 * (and to smtpd_bdat.c, octet-counted, while in SS_BDAT),
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
static void session_count(const struct session *s, int64_t open);

/* session_new - a session on an accepted socket; calls session_start */
void
session_new(int fd, const struct sockaddr *sa, int salen, int listener)
{
	struct bufferevent *bev;
	struct session *s;
	size_t n;
	int smtps;

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
	/* plain until the checks passed, even on smtps (session_greet):
	 * the bufferevent does not own fd, and reading is off */
	s->state = SS_GREETING;
	smtps = tls_implicit(listener);
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
	session_count(s, 1);
	log_info("connect from [%s]%s", s->ip, smtps ? " (smtps)" : "");
	session_attach(s, bev);
	session_start(s);
}

/* session_start - the checks before the banner (SS_GREETING: nothing is
 * read); a check that refuses closes the session, one that passes calls
 * the next, the last calls session_greet (maybe later, from DNS) */
void
session_start(struct session *s)
{
	if (smtpd_anvil_connect(s) < 0)     /* too many from this address */
		return;
	access_start(s);
}

/* session_greet - the checks passed: on smtps the TLS bufferevent takes
 * over the socket (the handshake follows), then the 220 banner */
void
session_greet(struct session *s)
{
	struct bufferevent *bev;

	if (tls_implicit(s->listener)) {
		if ((bev = tls_bev_new(s->fd, s->listener)) == NULL) {
			log_warnx("cannot start TLS with [%s]", s->ip);
			session_close(s);
			return;
		}
		/* the plain bufferevent never read: nothing is lost */
		bufferevent_free(s->bev);
		s->flags |= SF_TLS;
		s->bev = NULL;
		session_attach(s, bev);
	}
	s->state = SS_COMMAND;
	if (smtpd.stopping) {
		session_reply(s, "421 4.3.2 %s Service shutting down",
		    smtpd.conf->hostname);
		session_close(s);
		return;
	}
	session_reply(s, "220 %s ESMTP Postern", smtpd.conf->hostname);
	session_update_read(s);
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
	s->flags &= ~(SF_SMTPUTF8 | SF_8BITMIME);
}

/* session_txn_reset - forget the transaction (aborting it with queued
 * if a spool file is open) */
void
session_txn_reset(struct session *s)
{
	/* a spool file is open from the fd's arrival to the end of data
	 * (SS_DATA, or SS_BDAT and SS_COMMAND between chunks) */
	if (s->data != NULL) {
		queue_abort(s);
		data_free(s);
	}
	data_phase_end(s);
	/* a late MSG_OPENED for a session no longer waiting is aborted by
	 * smtpd_queue.c; a late MSG_COMMITTED is only logged */
	queue_unwait(s);
	s->qid[0] = '\0';
	s->msgsize = 0;
	s->bdat = 0;
	/* a BDAT chunk announced but not read yet is still read, and
	 * discarded (smtpd_bdat.c), so the session stays in step */
	s->state = s->chunk_left > 0 ? SS_BDAT : SS_COMMAND;
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

/* this process's row of stats->smtpd_listener_active; -1: none */
static int stats_row = -1;

/* session_stats_init - smtpd process index i: its open-session gauges
 * start at 0 (a restarted process drops what the dead one left) */
void
session_stats_init(int i)
{
	int l;

	stats_row = i >= 0 && i < STATS_MAX_SMTPD ? i : -1;
	for (l = 0; stats_row >= 0 && l < STATS_MAX_LISTENERS; l++)
		stats_gauge_set(&stats->smtpd_listener_active[stats_row][l], 0);
}

/* session_count - count a session of s's listener starting (open 1)
 * or ending (open -1) */
static void
session_count(const struct session *s, int64_t open)
{
	if (s->listener < 0 || s->listener >= STATS_MAX_LISTENERS)
		return;
	if (open > 0)
		stats_add(&stats->listener_sessions[s->listener], 1);
	if (stats_row >= 0)
		stats_gauge_add(&stats->smtpd_listener_active[stats_row][s->listener],
		    open);
}

/* session_free - release everything; aborts an open transaction */
void
session_free(struct session *s)
{
	session_txn_reset(s);
	auth_reset(s);
	access_cancel(s);
	smtpd_anvil_disconnect(s);
	log_info("disconnect from [%s]", s->ip);
	TAILQ_REMOVE(&smtpd.sessions, s, entry);
	smtpd.nsessions--;
	session_count(s, -1);
	tls_session_end(s);
	bufferevent_free(s->bev);
	/* a plain bufferevent does not own the socket, a TLS one does */
	if (!(s->flags & SF_TLS))
		close(s->fd);
	free(s->helo);
	free(s->client_name);
	free(s);
	smtpd_session_gone();
}

/* session_reply - queue one reply line (CRLF added) */
void
session_reply(struct session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	/* smtps before TLS: no clear text to a client expecting a
	 * handshake; a refusal there is only logged, then closed */
	if ((s->flags & SF_CLOSING) || (s->state == SS_GREETING &&
	    tls_implicit(s->listener)))
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
 * limit? Not the ones caused by our own limits or our queue, nor a
 * timeout (the session ends anyway). */
static int
reject_counts(enum stats_reject why)
{
	return why != REJ_QUEUE_ERROR && why != REJ_RCPT_LIMIT &&
	    why != REJ_TIMEOUT;
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
	    (s->state == SS_COMMAND || s->state == SS_DATA ||
	    s->state == SS_BDAT))
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
		if (s->auth_step != AUTH_STEP_NONE) {
			/* RFC 4954 4: the exchange ends, the next line is a
			 * command again */
			auth_reset(s);
			session_reject(s, REJ_SYNTAX, "AUTH", NULL,
			    "500 5.5.6 Authentication Exchange line is too long");
		} else
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
		if (s->state == SS_BDAT) {
			if (!bdat_input(s))
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
		[SS_GREETING] = "CONNECT",
		[SS_BDAT] = "BDAT content",
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
		/* one refusal line (reason timeout) names what it waited for */
		session_reject(s, REJ_TIMEOUT, session_state_name(s), NULL,
		    "421 4.4.2 %s Error: timeout exceeded", smtpd.conf->hostname);
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
