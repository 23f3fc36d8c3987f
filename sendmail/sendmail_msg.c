/*
 * sendmail_msg.c - postern-sendmail's message handling: standard input
 * into lines (a lone "." ends it unless -i), the header block (To/Cc/Bcc
 * collected for -t, Bcc removed, From:/Date:/Message-ID: added when
 * missing) and the CR LF form that goes into the spool.
 *
 * Owns: struct sm_text, struct sm_buf, struct sm_list.
 * SECURITY: runs as the calling user; the input is whatever the caller
 * pipes in: lengths are bounded by max_message_size, a NUL byte is
 * refused, nothing is interpreted beyond the header fields named above.
 * STANDARDS: RFC 5322 (2.2 header fields and folding, 3.4 address lists
 * and groups, 3.6 required fields: Date and From, 3.6.4 Message-ID),
 * RFC 5321 2.3.8 (lines end in CR LF). The address lists are parsed by
 * common/addrlist.c; a -t field it cannot read ends the program with
 * EX_DATAERR rather than guessing at recipients.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addrlist.h"
#include "sendmail.h"
#include "util.h"

/* ---- buffers and lists -------------------------------------------------- */

/* sm_buf_add - append n bytes */
void
sm_buf_add(struct sm_buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->data = xreallocarray(b->data, b->cap, 1);
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* sm_buf_str - append a string */
static void
sm_buf_str(struct sm_buf *b, const char *s)
{
	sm_buf_add(b, s, strlen(s));
}

/* sm_buf_free - release the storage */
void
sm_buf_free(struct sm_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* sm_list_add - append s (the list owns it) */
void
sm_list_add(struct sm_list *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n++] = s;
}

/* sm_list_free - free every string and the list */
void
sm_list_free(struct sm_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* ---- reading ------------------------------------------------------------ */

/* split_lines - cut t->raw into lines (LF or CR LF ends one); stop at a
 * lone "." unless ignore_dots */
static void
split_lines(struct sm_text *t, int ignore_dots)
{
	char *p, *end, *nl;
	size_t len;

	t->store = xmalloc(t->raw.len + 1);
	memcpy(t->store, t->raw.data ? t->raw.data : "", t->raw.len);
	t->store[t->raw.len] = '\0';
	p = t->store;
	end = t->store + t->raw.len;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		p[len] = '\0';
		if (!ignore_dots && strcmp(p, ".") == 0)
			break;
		sm_list_add(&t->lines, p);
		p = nl != NULL ? nl + 1 : end;
	}
}

/* sm_read - see sendmail.h */
int
sm_read(int fd, int ignore_dots, size_t max, struct sm_text *t, const char **why)
{
	char chunk[65536];
	ssize_t n;

	memset(t, 0, sizeof(*t));
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			*why = "cannot read the message from standard input";
			return EX_IOERR;
		}
		if (memchr(chunk, '\0', (size_t)n) != NULL) {
			*why = "the message contains a NUL byte";
			return EX_DATAERR;
		}
		if (t->raw.len + (size_t)n > max) {
			*why = "the message is larger than max_message_size";
			return EX_DATAERR;
		}
		sm_buf_add(&t->raw, chunk, (size_t)n);
	}
	split_lines(t, ignore_dots);
	return 0;
}

/* sm_text_free - release t */
void
sm_text_free(struct sm_text *t)
{
	sm_buf_free(&t->raw);
	free(t->lines.v);       /* the lines point into store */
	free(t->store);
	memset(t, 0, sizeof(*t));
}

/* ---- address lists ------------------------------------------------------ */

/* sm_header_addrs - see sendmail.h (common/addrlist.c parses) */
int
sm_header_addrs(const char *value, struct sm_list *out, const char **why)
{
	struct addrlist l = { 0 };
	size_t i;
	int rc = 0;

	if (addrlist_parse(value, &l, why) == -1)
		return EX_DATAERR;
	for (i = 0; i < l.n && rc == 0; i++)
		if (l.v[i].routed) {
			/* never delivered to the address behind it, as
			 * addr_parse refuses routes on the command line */
			*why = "source routes are not accepted";
			rc = EX_NOUSER;
		}
	for (i = 0; i < l.n && rc == 0; i++)
		sm_list_add(out, *l.v[i].domain != '\0' ?
		    xasprintf("%s@%s", l.v[i].local, l.v[i].domain) :
		    xstrdup(l.v[i].local));
	addrlist_free(&l);
	return rc;
}

/* ---- the header --------------------------------------------------------- */

/* Header fields postern-sendmail looks at. */
struct hdr_seen {
	int from, date, msgid;
};

/* is_field - 1 if line starts a header field ("Name:") */
static int
is_field(const char *line)
{
	const char *p = line;

	while (*p > 32 && *p < 127 && *p != ':')
		p++;
	return p > line && *p == ':';
}

/* field_is - 1 if the field on line is called name (any case) */
static int
field_is(const char *line, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/* header_end - index of the first line after the header fields */
static size_t
header_end(const struct sm_text *t)
{
	size_t i = 0;

	while (i < t->lines.n && (is_field(t->lines.v[i]) ||
	    (i > 0 && (t->lines.v[i][0] == ' ' || t->lines.v[i][0] == '\t'))))
		i++;
	return i;
}

/* field_value - the unfolded value of the field starting at line i */
static char *
field_value(const struct sm_text *t, size_t i, size_t hend)
{
	struct sm_buf b = { 0 };
	const char *colon = strchr(t->lines.v[i], ':');

	sm_buf_str(&b, colon + 1);
	for (i++; i < hend && (t->lines.v[i][0] == ' ' || t->lines.v[i][0] == '\t'); i++)
		sm_buf_str(&b, t->lines.v[i]);
	if (b.data == NULL)
		sm_buf_add(&b, "", 0);
	return b.data;
}

/* add_line - one line and CR LF */
static void
add_line(struct sm_buf *out, const char *line)
{
	sm_buf_str(out, line);
	sm_buf_add(out, "\r\n", 2);
}

/* extract - the -t recipients of field i (To, Cc or Bcc); 0, or an EX_*
 * status with *why naming the field */
static int
extract(const struct sm_text *t, size_t i, size_t hend, const char *name,
    struct sm_list *rcpts, const char **why)
{
	static char msg[128];
	char *v = field_value(t, i, hend);
	const char *err;
	int rc;

	if ((rc = sm_header_addrs(v, rcpts, &err)) != 0) {
		snprintf(msg, sizeof(msg), rc == EX_NOUSER ?
		    "bad recipient address in %s: (%s)" :
		    "cannot read the addresses of %s: (%s)", name, err);
		*why = msg;
	}
	free(v);
	return rc;
}

/* copy_header - the fields of t into out, Bcc left out; note what is
 * there and collect the -t recipients; 0, or an EX_* status with *why */
static int
copy_header(const struct sm_text *t, size_t hend, const struct sm_hdr_opts *o,
    struct sm_list *rcpts, struct hdr_seen *seen, struct sm_buf *out,
    const char **why)
{
	static const char *const rcpt_fields[] = { "To", "Cc", "Bcc" };
	const char *l;
	size_t i, k;
	int skip = 0, rc;

	for (i = 0; i < hend; i++) {
		l = t->lines.v[i];
		if (l[0] == ' ' || l[0] == '\t') {
			if (!skip)
				add_line(out, l);
			continue;
		}
		seen->from |= field_is(l, "From");
		seen->date |= field_is(l, "Date");
		seen->msgid |= field_is(l, "Message-ID");
		for (k = 0; o->extract && k < 3; k++)
			if (field_is(l, rcpt_fields[k]) &&
			    (rc = extract(t, i, hend, rcpt_fields[k], rcpts, why)) != 0)
				return rc;
		skip = field_is(l, "Bcc");
		if (!skip)
			add_line(out, l);
	}
	return 0;
}

/* add_missing - From:, Date:, Message-ID: when the message has none */
static void
add_missing(const struct hdr_seen *seen, const struct sm_hdr_opts *o,
    struct sm_buf *out)
{
	char date[64], *s;

	if (!seen->from) {
		if (o->fullname != NULL && *o->fullname != '\0')
			s = xasprintf("From: \"%s\" <%s>", o->fullname, o->sender);
		else if (*o->sender != '\0')
			s = xasprintf("From: <%s>", o->sender);
		else
			s = xasprintf("From: <MAILER-DAEMON@%s>", o->hostname);
		add_line(out, s);
		free(s);
	}
	if (!seen->date) {
		rfc5322_date(time(NULL), date, sizeof(date));
		s = xasprintf("Date: %s", date);
		add_line(out, s);
		free(s);
	}
	if (!seen->msgid) {
		s = xasprintf("Message-ID: <%llu.%08x%08x@%s>",
		    (unsigned long long)time(NULL), arc4random(), arc4random(),
		    o->hostname);
		add_line(out, s);
		free(s);
	}
}

/* sm_build - see sendmail.h */
int
sm_build(const struct sm_text *t, const struct sm_hdr_opts *o,
    struct sm_list *rcpts, struct sm_buf *out, const char **why)
{
	struct hdr_seen seen = { 0, 0, 0 };
	size_t hend = header_end(t), i;
	int rc;

	if ((rc = copy_header(t, hend, o, rcpts, &seen, out, why)) != 0)
		return rc;
	add_missing(&seen, o, out);
	/* the header ends with an empty line; supply it if the body
	 * started right after the fields */
	if (hend >= t->lines.n || t->lines.v[hend][0] != '\0')
		sm_buf_add(out, "\r\n", 2);
	for (i = hend; i < t->lines.n; i++)
		add_line(out, t->lines.v[i]);
	return 0;
}
