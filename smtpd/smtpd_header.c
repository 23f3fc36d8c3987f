/*
 * smtpd_header.c - the header section of a message as it streams past:
 * which fields it has (Date:, Message-ID:), how many Received: fields
 * (the hop count, RFC 5321 6.3) and whether its From: or Sender: uses a
 * domain the authenticated user does not own.
 *
 * Owns: struct smtpd_hdr, one per message being received: the current
 * (unfolded) field, at most HDR_FIELD_MAX bytes of it, and what was seen.
 * smtpd_data.c feeds it every line up to the empty line that ends the
 * header section, then asks what to add (submission listeners) and
 * whether to refuse.
 *
 * SECURITY: header bytes are untrusted; nothing here is logged. For a
 * user restricted to some sender domains, From: and Sender: are parsed
 * by common/addrlist.c (which refuses what it cannot read whole) and
 * every mailbox in them must be in an owned domain; a From: with several
 * mailboxes needs a Sender: with one (RFC 5322 3.6.2); a second From: or
 * Sender: field, a field longer than HDR_FIELD_MAX (no address can hide
 * past the end) and an unparseable one are refused.
 *
 * STANDARDS: RFC 5322 (2.2 fields and folding, 3.4 addresses, 3.6.1
 * Date, 3.6.2 From and Sender, 3.6.4 Message-ID), RFC 6409 (8.2 and 8.3:
 * a submission server may add Date and Message-ID).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "addrlist.h"
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
	int received;           /* Received: fields (hop count) */
	int from_refused;       /* a second From:/Sender:, or one too long */
	char *from, *sender;    /* their values (restricted users only) */
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
	if (*hp != NULL) {
		free((*hp)->from);
		free((*hp)->sender);
	}
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

/* restricted - 1 if the session's user may use only some domains */
static int
restricted(const struct session *s)
{
	return (s->flags & SF_AUTH) && s->user != NULL && s->user->ndomains > 0;
}

/* owned - 1 if every mailbox of an address-list value has a domain the
 * user owns (an unparseable value owns nothing, nor does one with a
 * source route, whose domains a reader may be shown) */
static int
owned(const struct session *s, const char *value)
{
	struct addrlist l = { 0 };
	const char *why;
	size_t i;
	int ok;

	if (addrlist_parse(value, &l, &why) == -1)
		return 0;
	for (i = 0, ok = 1; i < l.n && ok; i++)
		ok = *l.v[i].domain != '\0' && !l.v[i].routed &&
		    auth_sender_owned(s, l.v[i].domain);
	addrlist_free(&l);
	return ok;
}

/* from_check - 1 if From: or Sender: is not the user's: "the From:
 * domain" must exist (one From: mailbox, or several and one Sender:
 * mailbox, RFC 5322 3.6.2), and every mailbox of both must be owned */
static int
from_check(const struct smtpd_hdr *h, const struct session *s)
{
	char domain[ADDR_DOMAIN_MAX + 1];
	const char *why;

	if (h->from == NULL)
		return h->sender != NULL && !owned(s, h->sender);
	if (addrlist_author_domain(h->from, h->sender, domain, sizeof(domain),
	    &why) == -1)
		return 1;
	return !owned(s, h->from) || (h->sender != NULL && !owned(s, h->sender));
}

/* keep_field - keep a From:/Sender: value for from_check; a second
 * field of the name, or one too long to judge, is refused at once */
static void
keep_field(struct smtpd_hdr *h, char **slot, const char *value)
{
	if (*slot != NULL || h->truncated)
		h->from_refused = 1;
	else
		*slot = xstrdup(value);
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
		else if (nl == 8 && strncasecmp(h->field, "Received", 8) == 0)
			h->received++;
		else if (nl == 4 && strncasecmp(h->field, "From", 4) == 0 && restricted(s))
			keep_field(h, &h->from, colon + 1);
		else if (nl == 6 && strncasecmp(h->field, "Sender", 6) == 0 && restricted(s))
			keep_field(h, &h->sender, colon + 1);
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
 * authenticated user does not own (see from_check) */
int
hdr_from_refused(struct smtpd_hdr *h, struct session *s)
{
	return restricted(s) && (h->from_refused || from_check(h, s));
}

/* hdr_received - how many Received: fields the header section had */
int
hdr_received(struct smtpd_hdr *h)
{
	return h->received;
}
