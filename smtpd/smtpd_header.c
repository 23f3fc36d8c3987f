/*
 * smtpd_header.c - the header section of a message as it streams past:
 * which fields it has (Date:, Message-ID:) and whether its From: uses a
 * domain the authenticated user does not own.
 *
 * Owns: struct smtpd_hdr, one per message being received: the current
 * (unfolded) field, at most HDR_FIELD_MAX bytes of it, and what was seen.
 * smtpd_data.c feeds it every line up to the empty line that ends the
 * header section, then asks what to add (submission listeners) and
 * whether to refuse.
 *
 * SECURITY: header bytes are untrusted; nothing here is logged. A From:
 * field longer than HDR_FIELD_MAX is judged on its first HDR_FIELD_MAX
 * bytes and refused if it is truncated and the user is restricted (no
 * address can hide past the end).
 *
 * STANDARDS: RFC 5322 (2.2 fields and folding, 3.4 addresses, 3.6.1
 * Date, 3.6.4 Message-ID), RFC 6409 (8.2 and 8.3: a submission server
 * may add Date and Message-ID).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf.h"
#include "util.h"

#include "smtpd.h"

#define HDR_FIELD_MAX 4096

struct smtpd_hdr {
	char field[HDR_FIELD_MAX + 1];
	size_t len;
	int truncated;
	int have_date;
	int have_msgid;
	int from_refused;
};

/* hdr_new - the header scanner of one message */
struct smtpd_hdr *
hdr_new(void)
{
	return xcalloc(1, sizeof(struct smtpd_hdr));
}

/* hdr_free - release it; *hp = NULL */
void
hdr_free(struct smtpd_hdr **hp)
{
	xfree(hp);
}

/* hdr_append - add bytes to the current field (bounded) */
static void
hdr_append(struct smtpd_hdr *h, const char *p, size_t n)
{
	if (n > HDR_FIELD_MAX - h->len) {
		n = HDR_FIELD_MAX - h->len;
		h->truncated = 1;
	}
	memcpy(h->field + h->len, p, n);
	h->len += n;
	h->field[h->len] = '\0';
}

/* strip_quoted - blank out quoted strings and (nested) comments, where
 * an '@' is no address */
static void
strip_quoted(char *p)
{
	int depth = 0, quote = 0;

	for (; *p != '\0'; p++) {
		if ((quote || depth) && *p == '\\' && p[1] != '\0') {
			p[0] = p[1] = ' ';
			p++;
		} else if (quote) {
			quote = *p != '"';
			*p = ' ';
		} else if (*p == '"') {
			quote = 1;
			*p = ' ';
		} else if (*p == '(') {
			depth++;
			*p = ' ';
		} else if (depth) {
			if (*p == ')')
				depth--;
			*p = ' ';
		}
	}
}

/* from_check - every domain after an '@' in a From: value must be owned */
static int
from_check(struct session *s, char *value)
{
	char *at, *d, *end;
	char save;

	strip_quoted(value);
	for (at = strchr(value, '@'); at != NULL; at = strchr(end, '@')) {
		d = at + 1;
		end = d + strcspn(d, " \t\r\n<>,;:\"()[]");
		save = *end;
		*end = '\0';
		if (*d == '\0' || !auth_sender_owned(s, d)) {
			*end = save;
			return 1;
		}
		*end = save;
	}
	return 0;
}

/* hdr_field_done - the current field is complete: look at it */
static void
hdr_field_done(struct smtpd_hdr *h, struct session *s)
{
	char *colon;
	size_t nl;

	if (h->len == 0)
		return;
	colon = strchr(h->field, ':');
	if (colon != NULL) {
		nl = (size_t)(colon - h->field);
		while (nl > 0 && (h->field[nl - 1] == ' ' || h->field[nl - 1] == '\t'))
			nl--;
		if (nl == 4 && strncasecmp(h->field, "Date", 4) == 0)
			h->have_date = 1;
		else if (nl == 10 && strncasecmp(h->field, "Message-ID", 10) == 0)
			h->have_msgid = 1;
		else if (nl == 4 && strncasecmp(h->field, "From", 4) == 0 &&
		    (s->flags & SF_AUTH) && s->user != NULL && s->user->ndomains > 0 &&
		    (h->truncated || from_check(s, colon + 1)))
			h->from_refused = 1;
	}
	h->len = 0;
	h->truncated = 0;
	h->field[0] = '\0';
}

/* field_start - 1 if the line starts a header field: a name of
 * printable ASCII other than ':' then optional blanks and ':' */
static int
field_start(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] > 0x20 && p[i] < 0x7f && p[i] != ':')
		i++;
	if (i == 0)
		return 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':';
}

/* hdr_line - one complete header-section line (no CR LF); returns 1 if
 * it ends the header section: the empty line, or a line that is neither
 * a field nor a continuation (then the body starts with it) */
int
hdr_line(struct smtpd_hdr *h, struct session *s, const char *p, size_t n)
{
	if (n > 0 && (p[0] == ' ' || p[0] == '\t') && h->len > 0) {
		hdr_append(h, p, n);    /* folded: unfold into the field */
		return 0;
	}
	hdr_field_done(h, s);
	if (n == 0 || !field_start(p, n))
		return 1;
	hdr_append(h, p, n);
	return 0;
}

/* hdr_missing - the Date:/Message-ID: lines a submission message lacks */
void
hdr_missing(struct smtpd_hdr *h, struct session *s, char *buf, size_t len)
{
	const struct conf_listen *l = session_listen(s);
	char date[64], id[160];
	size_t off = 0;

	buf[0] = '\0';
	if (l == NULL || !l->submission)
		return;
	if (!h->have_date) {
		rfc5322_date(time(NULL), date, sizeof(date));
		off += (size_t)snprintf(buf + off, len - off, "Date: %s\r\n", date);
		h->have_date = 1;
	}
	if (!h->have_msgid && off < len) {
		snprintf(id, sizeof(id), "%lld.%s.%08x@%s", (long long)time(NULL),
		    s->qid, arc4random(), smtpd.conf->hostname);
		snprintf(buf + off, len - off, "Message-ID: <%s>\r\n", id);
		h->have_msgid = 1;
	}
}

/* hdr_from_refused - 1 if a From: address uses a domain the
 * authenticated user does not own */
int
hdr_from_refused(struct smtpd_hdr *h, struct session *s)
{
	return h->from_refused;
}
