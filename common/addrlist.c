/*
 * addrlist.c - RFC 5322 address lists of header fields (see addrlist.h):
 * a lexer that drops folding white space and comments, a recursive-
 * descent parser over its tokens, and the "From: domain" rule.
 *
 * Owns: nothing beyond the lists it returns.
 * Why not GMime: internet_address_list_parse() is made for reading mail
 * and repairs what it cannot parse, silently, even with
 * GMIME_RFC_COMPLIANCE_STRICT: "a@b.example@c.example" becomes a@b.example
 * and "a@b.example;c@d.example" loses c@d.example. A policy check must
 * see every domain a reader may be shown, so this parser refuses such
 * input, and smtpd and postern-sendmail need not link GLib for it.
 * SECURITY: input is untrusted header text, bounded by the caller; no
 * recursion deeper than group -> mailbox; nothing is logged.
 * STANDARDS: RFC 5322 3.2 (atoms, quoted strings, comments), 3.4
 * (addresses), 3.6.2 (From:, Sender:), 4.4 (obsolete addressing), RFC
 * 6532 3.2 (UTF-8 in atext, qtext, ctext, dtext).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "addrlist.h"
#include "util.h"

enum tok_type {
	TOK_END = 0,
	TOK_ATOM,               /* 1*atext */
	TOK_QUOTED,             /* "..." with its quotes */
	TOK_LITERAL,            /* [...] with its brackets */
	TOK_SPECIAL,            /* one of < > @ , ; : . */
	TOK_ERROR,              /* why says what */
};

/* The lexer and parser state of one value. */
struct parse {
	const char *p;          /* after the current token */
	enum tok_type type;     /* the current token */
	const char *tp;
	size_t tn;
	const char *why;
	char *buf;              /* scratch: every token's text fits */
	size_t len;
	struct addrlist *l;
};

/* is_atext - RFC 5322 3.2.3 atext, and any octet of UTF-8 (RFC 6532) */
static int
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c >= 0x80 || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* is_ctl - a control character other than HTAB (never in a header value) */
static int
is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* lex_fail - the first error ends the parse */
static void
lex_fail(struct parse *P, const char *why)
{
	if (P->why == NULL)
		P->why = why;
	P->type = TOK_ERROR;
}

/* skip_comment - past the (nested) comment at P->p; 0 or -1 */
static int
skip_comment(struct parse *P)
{
	int depth = 0;

	for (;;) {
		unsigned char c = (unsigned char)*P->p;

		if (c == '\0') {
			lex_fail(P, "unterminated comment");
			return -1;
		}
		if (c == '\\' && P->p[1] != '\0' && !is_ctl((unsigned char)P->p[1]))
			P->p++;
		else if (c == '(')
			depth++;
		else if (c == ')' && --depth == 0) {
			P->p++;
			return 0;
		} else if (is_ctl(c) && c != '\r' && c != '\n') {
			lex_fail(P, "control character in a comment");
			return -1;
		}
		P->p++;
	}
}

/* skip_cfws - past white space (folding included) and comments */
static int
skip_cfws(struct parse *P)
{
	for (;;) {
		if (*P->p == ' ' || *P->p == '\t' || *P->p == '\r' || *P->p == '\n')
			P->p++;
		else if (*P->p == '(') {
			if (skip_comment(P) == -1)
				return -1;
		} else
			return 0;
	}
}

/* scan_delimited - a quoted string or literal from P->p to its closing
 * character (quoted pairs allowed); its length, or 0 after lex_fail */
static size_t
scan_delimited(struct parse *P, char close, const char *unterminated)
{
	const char *q = P->p + 1;

	for (;; q++) {
		if (*q == '\0') {
			lex_fail(P, unterminated);
			return 0;
		}
		if (*q == '\\' && q[1] != '\0' && !is_ctl((unsigned char)q[1]))
			q++;
		else if (*q == close)
			return (size_t)(q + 1 - P->p);
		else if (is_ctl((unsigned char)*q) || (close == ']' && (*q == '[' || *q == '\\'))) {
			lex_fail(P, "control character or stray octet in a quoted string or literal");
			return 0;
		}
	}
}

/* lex_next - the next token into P->type/tp/tn */
static void
lex_next(struct parse *P)
{
	unsigned char c;

	if (P->type == TOK_ERROR || skip_cfws(P) == -1)
		return;
	P->tp = P->p;
	P->tn = 1;
	c = (unsigned char)*P->p;
	if (c == '\0') {
		P->type = TOK_END;
		P->tn = 0;
		return;
	}
	if (c == '"' || c == '[') {
		P->type = c == '"' ? TOK_QUOTED : TOK_LITERAL;
		P->tn = scan_delimited(P, c == '"' ? '"' : ']', c == '"' ?
		    "unterminated quoted string" : "unterminated address literal");
	} else if (strchr("<>@,;:.", c) != NULL)
		P->type = TOK_SPECIAL;
	else if (is_atext(c)) {
		P->type = TOK_ATOM;
		while (is_atext((unsigned char)P->p[P->tn]))
			P->tn++;
	} else
		lex_fail(P, c == ')' ? "unbalanced ')'" : "character not allowed here");
	if (P->type != TOK_ERROR)
		P->p += P->tn;
}

/* at - 1 if the current token is the special character c */
static int
at(const struct parse *P, char c)
{
	return P->type == TOK_SPECIAL && *P->tp == c;
}

/* fail - a parse error (the first one is kept); -1 */
static int
fail(struct parse *P, const char *why)
{
	lex_fail(P, why);
	return -1;
}

/* take - append the current token's text to the scratch buffer */
static void
take(struct parse *P)
{
	memcpy(P->buf + P->len, P->tp, P->tn);
	P->len += P->tn;
	P->buf[P->len] = '\0';
}

/* words - a run of words and dots into the scratch buffer (CFWS gone);
 * *dotted is 1 if it has the shape of a local part, word *("." word)
 * (RFC 5322 4.4 obs-local-part); the number of tokens */
static int
words(struct parse *P, int *dotted)
{
	int n = 0, last_word = 0;

	P->len = 0;
	P->buf[0] = '\0';
	*dotted = 1;
	while (P->type == TOK_ATOM || P->type == TOK_QUOTED || at(P, '.')) {
		int word = !at(P, '.');

		if (word == last_word || (n == 0 && !word))
			*dotted = 0;    /* two words or two dots in a row */
		last_word = word;
		take(P);
		n++;
		lex_next(P);
	}
	if (n > 0 && !last_word)
		*dotted = 0;
	return n;
}

/* domain - dot-atom, obs-domain or domain-literal into the scratch
 * buffer (lower-cased); 0 or -1 */
static int
domain(struct parse *P)
{
	P->len = 0;
	if (P->type == TOK_LITERAL) {
		take(P);
		lex_next(P);
		return 0;
	}
	if (P->type != TOK_ATOM)
		return fail(P, "a domain must follow '@'");
	take(P);
	lex_next(P);
	while (at(P, '.')) {
		take(P);
		lex_next(P);
		if (P->type != TOK_ATOM)
			return fail(P, "malformed domain");
		take(P);
		lex_next(P);
	}
	str_lower(P->buf);
	return 0;
}

/* mbox_add - a mailbox: local is the scratch text of a words() run; with
 * has_domain, '@' is the current token and the domain follows */
static int
mbox_add(struct parse *P, int has_domain)
{
	struct addrlist *l = P->l;
	char *local = xstrndup(P->buf, P->len);

	if (has_domain) {
		lex_next(P);
		if (domain(P) == -1) {
			free(local);
			return -1;
		}
	} else
		P->len = 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n].local = local;
	l->v[l->n].routed = 0;
	l->v[l->n++].domain = xstrndup(P->buf, P->len);
	return 0;
}

/* route - obs-route before an addr-spec in <>: "@a,@b:" (ignored) */
static int
route(struct parse *P)
{
	while (!at(P, ':')) {
		if (at(P, ','))
			lex_next(P);
		else if (at(P, '@')) {
			lex_next(P);
			if (domain(P) == -1)
				return -1;
		} else
			return fail(P, "malformed route in <>");
	}
	lex_next(P);
	return 0;
}

/* angle_addr - "<" [obs-route] addr-spec ">", '<' current */
static int
angle_addr(struct parse *P)
{
	int dotted, routed = 0;

	lex_next(P);
	if (at(P, '@') || at(P, ',')) {
		if (route(P) == -1)
			return -1;
		routed = 1;
	}
	if (words(P, &dotted) == 0 || !dotted)
		return fail(P, "malformed address in <>");
	if (mbox_add(P, at(P, '@')) == -1)
		return -1;
	P->l->v[P->l->n - 1].routed = routed;
	if (!at(P, '>'))
		return fail(P, "'<' without '>'");
	lex_next(P);
	return 0;
}

static int address(struct parse *P, int in_group);

/* group - display-name ":" [mailbox-list] ";", ':' current */
static int
group(struct parse *P)
{
	lex_next(P);
	for (;;) {
		while (at(P, ','))
			lex_next(P);
		if (at(P, ';')) {
			lex_next(P);
			return 0;
		}
		if (P->type == TOK_END || P->type == TOK_ERROR)
			return fail(P, "a group without ';'");
		if (address(P, 1) == -1)
			return -1;
		if (P->type == TOK_END)
			return fail(P, "a group without ';'");
		if (!at(P, ',') && !at(P, ';'))
			return fail(P, "text after an address");
	}
}

/* address - mailbox (name-addr or addr-spec) or, outside a group, group */
static int
address(struct parse *P, int in_group)
{
	int dotted, n = words(P, &dotted);

	if (P->type == TOK_ERROR)
		return -1;
	if (at(P, '<'))
		return angle_addr(P);
	if (at(P, ':') && n > 0)
		return in_group ? fail(P, "a group inside a group") : group(P);
	if (n == 0 || !dotted)
		return fail(P, "malformed address");
	if (at(P, '@'))
		return mbox_add(P, 1);
	if (P->type == TOK_END || at(P, ',') || at(P, ';'))
		return mbox_add(P, 0);  /* a local part alone ("root") */
	return fail(P, "malformed address");
}

/* addrlist_parse - see addrlist.h */
int
addrlist_parse(const char *value, struct addrlist *l, const char **why)
{
	struct parse P = { .p = value, .l = l };
	int rc = -1;

	P.buf = xmalloc(strlen(value) + 1);
	lex_next(&P);
	for (;;) {
		while (at(&P, ','))
			lex_next(&P);   /* obs-addr-list: empty elements */
		if (P.type == TOK_END) {
			rc = 0;
			break;
		}
		if (address(&P, 0) == -1)
			break;
		if (P.type != TOK_END && !at(&P, ',')) {
			fail(&P, "text after an address");
			break;
		}
	}
	free(P.buf);
	if (rc == -1) {
		*why = P.why != NULL ? P.why : "malformed address list";
		addrlist_free(l);
	}
	return rc;
}

/* addrlist_free - see addrlist.h */
void
addrlist_free(struct addrlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].local);
		free(l->v[i].domain);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* author_mbox - the mailbox whose domain is "the From: domain" */
static const struct addrlist_mbox *
author_mbox(const struct addrlist *from, const char *sender,
    struct addrlist *s, const char **why)
{
	if (from->n == 0) {
		*why = "From: holds no mailbox";
		return NULL;
	}
	if (from->n == 1)
		return &from->v[0];
	if (sender == NULL) {
		*why = "From: holds several mailboxes and there is no Sender:";
		return NULL;
	}
	if (addrlist_parse(sender, s, why) == -1)
		return NULL;
	if (s->n != 1) {
		*why = "Sender: must hold exactly one mailbox";
		return NULL;
	}
	return &s->v[0];
}

/* addrlist_author_domain - see addrlist.h */
int
addrlist_author_domain(const char *from, const char *sender, char *out,
    size_t outlen, const char **why)
{
	struct addrlist f = { 0 }, s = { 0 };
	const struct addrlist_mbox *m;
	int rc = -1;

	if (from == NULL) {
		*why = "no From: field";
		return -1;
	}
	if (addrlist_parse(from, &f, why) == -1)
		return -1;
	m = author_mbox(&f, sender, &s, why);
	if (m != NULL && (*m->domain == '\0' || *m->domain == '['))
		*why = "the author's address has no domain name";
	else if (m != NULL && strlcpy(out, m->domain, outlen) >= outlen)
		*why = "the author's domain is too long";
	else if (m != NULL)
		rc = 0;
	addrlist_free(&f);
	addrlist_free(&s);
	return rc;
}
