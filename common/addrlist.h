/*
 * addrlist.h - the address lists of header fields (From:, Sender:, To:,
 * Cc:, Bcc:) as RFC 5322 defines them, and the one rule for "the From:
 * domain" that the sender-domain check (smtpd), DKIM signing (delivery)
 * and postern-sendmail -t share.
 *
 * STANDARDS: RFC 5322 3.4 (address, mailbox, group, angle-addr), 3.2.2
 * (comments, folding), 3.2.4 (quoted strings), 4.4 (obsolete syntax:
 * routes, CFWS around dots, '.' in display names, empty list elements),
 * 3.6.2 (several From: mailboxes need one Sender: mailbox), RFC 6532
 * (UTF-8 in atoms and quoted strings), RFC 2047 (an encoded word is an
 * atom of the display name; it is never decoded into an address).
 * SECURITY: the sender-domain check is decided on what this parser
 * returns, so it refuses what it cannot read whole instead of repairing
 * it: text after an address ("a@b.example@c.example", "a@b.example;
 * c@d.example" outside a group, "x <a@b.example> <c@d.example>"), an
 * unterminated quoted string, comment, literal or angle-addr, control
 * characters. An '@' inside a quoted local part, a comment, a quoted
 * display name or an encoded word is no address; the domain is what
 * follows the addr-spec's own '@'.
 */
#ifndef POSTERN_ADDRLIST_H
#define POSTERN_ADDRLIST_H

#include <stddef.h>

/* One mailbox of a list: its addr-spec. */
struct addrlist_mbox {
	char *local;            /* as written, CFWS removed ("\"a b\"", "a.b") */
	char *domain;           /* lower-cased; "[...]" for a literal; "" when
	                         * the address has no '@' (sendmail's "root") */
	int routed;             /* it had an obs-route ("<@a.example:u@d>"),
	                         * which RFC 5322 4.4 says to ignore */
};

/* The mailboxes of an address list, group members included, in order. */
struct addrlist {
	struct addrlist_mbox *v;
	size_t n;
	size_t cap;
};

/* addrlist_parse - the mailboxes of the unfolded header value into *l
 * (which starts zeroed); 0, or -1 with *why saying what is wrong (l is
 * then empty). An empty value is an empty list. */
int addrlist_parse(const char *value, struct addrlist *l, const char **why);
/* addrlist_free - release the mailboxes; l is zeroed */
void addrlist_free(struct addrlist *l);
/* addrlist_author_domain - "the From: domain": the domain of From:'s only
 * mailbox, or, when From: holds several, of Sender:'s (which must then be
 * present and hold exactly one, RFC 5322 3.6.2); sender may be NULL. 0
 * with the lower-cased domain in out, or -1 with *why (unparseable, no
 * mailbox, several without Sender:, no domain, an address literal) */
int addrlist_author_domain(const char *from, const char *sender, char *out,
    size_t outlen, const char **why);

#endif
