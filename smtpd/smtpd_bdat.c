/*
 * smtpd_bdat.c - CHUNKING (RFC 3030): the BDAT command and the reading
 * of its chunks, octet-counted, from the client input.
 *
 * Owns: the chunk fields of struct session (chunk_size, chunk_left,
 * chunk_last) and the SS_BDAT input mode. A BDAT command line is followed
 * by exactly <size> octets that are not command lines: the session
 * switches to SS_BDAT and this file takes that many octets from the
 * input, pipelined or not, before commands are read again.
 *
 * A transaction's first BDAT asks queued for a spool file the way DATA
 * does (queue_open; no reading until it answers); its chunks go through
 * smtpd_data.c in raw mode (no dot-unstuffing, "." lines are data), so
 * the Received: header, the header scan and every check DATA makes apply
 * to them. A chunk that is not the last is answered "250 2.0.0 <n> octets
 * received" once read; BDAT LAST ends the message exactly like the end
 * of data (250 only after queued's commit). A refusal found while a
 * chunk is read (size, bare CR or LF, NUL, over-long line, write error)
 * is answered at the end of that chunk and aborts the transaction.
 *
 * A refused BDAT command whose size could be read (no transaction,
 * mixing with DATA, bad LAST keyword, queue trouble) still has its chunk
 * read and thrown away, so the session stays in step (RFC 3030 sec. 2:
 * the chunk follows the command whatever its reply). A refused BDAT in a
 * BDAT transaction aborts the transaction: a message never loses a chunk
 * in the middle.
 *
 * SECURITY: chunk octets are untrusted and never logged (not even in the
 * debug dialogue). The size is parsed strictly (digits only, no
 * overflow); it bounds nothing we allocate: octets are streamed, counted
 * against max_message_size, and discarded once over it.
 *
 * STANDARDS: RFC 3030 (2 BDAT, 3 CHUNKING; no BINARYMIME), RFC 2920
 * (pipelined BDAT commands and chunks), RFC 3463 (5.5.1, 5.5.4).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "smtpd.h"

/* What bdat_parse made of the argument. */
enum bdat_syntax {
	BDAT_OK = 0,
	BDAT_NOSIZE,            /* no valid size: nothing can be skipped */
	BDAT_BADARG,            /* a size, then something other than LAST */
};

/* bdat_parse - "<size> [LAST]": digits without overflow, then optionally
 * the LAST keyword (case-insensitive) */
static enum bdat_syntax
bdat_parse(const char *arg, uint64_t *size, int *last)
{
	unsigned long long n;
	char *end;

	*size = 0;
	*last = 0;
	if (!isdigit((unsigned char)*arg))
		return BDAT_NOSIZE;
	errno = 0;
	n = strtoull(arg, &end, 10);
	if (errno == ERANGE || (*end != '\0' && *end != ' '))
		return BDAT_NOSIZE;
	*size = (uint64_t)n;
	while (*end == ' ')
		end++;
	if (*end == '\0')
		return BDAT_OK;
	if (strcasecmp(end, "LAST") != 0)
		return BDAT_BADARG;
	*last = 1;
	return BDAT_OK;
}

/* bdat_skip - after a refused BDAT: abort a BDAT transaction, and read
 * and discard the chunk of size octets that follows the command */
static void
bdat_skip(struct session *s, uint64_t size)
{
	if (s->bdat)
		session_txn_reset(s);
	s->chunk_size = s->chunk_left = size;
	s->chunk_last = 0;
	if (size > 0)
		s->state = SS_BDAT;     /* s->data is NULL: discard */
}

/* bdat_sequence - the transaction may take a BDAT now; else the 503 is
 * sent and 0 returned */
static int
bdat_sequence(struct session *s)
{
	if (s->sender == NULL) {
		session_reject(s, REJ_PROTOCOL, "BDAT", NULL,
		    "503 5.5.1 Error: need MAIL command");
		return 0;
	}
	if (s->nrcpt == 0) {
		session_reject(s, REJ_PROTOCOL, "BDAT", NULL,
		    "503 5.5.1 Error: need RCPT command");
		return 0;
	}
	return 1;
}

/* cmd_bdat - BDAT size [LAST] (RFC 3030) */
void
cmd_bdat(struct session *s, char *arg)
{
	enum bdat_syntax syn;
	uint64_t size;
	int last;

	if ((syn = bdat_parse(arg, &size, &last)) != BDAT_OK) {
		session_reject(s, REJ_SYNTAX, "BDAT", NULL,
		    "501 5.5.4 Syntax: BDAT size [LAST]");
		bdat_skip(s, syn == BDAT_BADARG ? size : 0);
		return;
	}
	if (!bdat_sequence(s)) {
		bdat_skip(s, size);
		return;
	}
	s->chunk_size = s->chunk_left = size;
	s->chunk_last = last;
	if (s->data != NULL) {
		/* a further chunk of the open message */
		s->state = SS_BDAT;
		return;
	}
	/* the first chunk: a spool file, as for DATA; the chunk waits in
	 * the input buffer until queued answers (data_start) */
	s->bdat = 1;
	data_phase_begin(s);
	if (queue_open(s) < 0) {
		session_reject(s, REJ_QUEUE_ERROR, "BDAT", NULL,
		    "451 4.3.0 Queue unavailable, try again later");
		bdat_skip(s, size);
	}
}

/* bdat_chunk_end - the whole chunk was read: the next command, the
 * chunk's 250 or refusal, or (LAST) the end of the message */
static void
bdat_chunk_end(struct session *s)
{
	if (s->data == NULL) {
		/* a refused command's chunk, now discarded */
		s->state = SS_COMMAND;
		return;
	}
	if (s->chunk_last) {
		data_end(s);
		return;
	}
	if (data_refused(s))
		return;
	s->state = SS_COMMAND;
	session_reply(s, "250 2.0.0 %" PRIu64 " octets received", s->chunk_size);
}

/* bdat_input - read the current chunk from the client input; 1 when it
 * was read whole (the session moved on), 0 if it needs more input */
int
bdat_input(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec v[8];
	size_t want, used, k;
	int i, nv;

	while (s->chunk_left > 0 && evbuffer_get_length(in) > 0) {
		want = evbuffer_get_length(in);
		if ((uint64_t)want > s->chunk_left)
			want = (size_t)s->chunk_left;
		if (s->data == NULL) {
			evbuffer_drain(in, want);
			s->chunk_left -= want;
			continue;
		}
		nv = evbuffer_peek(in, (ev_ssize_t)want, NULL, v, 8);
		if (nv > 8)
			nv = 8;
		used = 0;
		for (i = 0; i < nv && used < want; i++) {
			k = v[i].iov_len;
			if (k > want - used)
				k = want - used;
			data_chunk(s, v[i].iov_base, k);
			used += k;
		}
		evbuffer_drain(in, used);
		s->chunk_left -= used;
	}
	if (s->chunk_left > 0)
		return 0;
	bdat_chunk_end(s);
	return 1;
}
