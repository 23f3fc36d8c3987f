/*
 * smtpd_cmd.c - the SMTP command table and one function per verb.
 *
 * Owns: the verb table (verb, argument rule, syntax hint, function), the
 * MAIL FROM parameters table (SIZE, BODY, SMTPUTF8), the relay decision
 * and the recipient limit.
 *
 * SECURITY: never an open relay. A recipient is accepted only when the
 * client address lies in trusted_networks or the recipient's domain, as
 * returned by addr_parse_path() (which refuses percent hacks, bang paths,
 * source routes, quoted '@', address literals and trailing dots), is one
 * of relay_domains, or the client authenticated (submission). Listener
 * policy: require_tls refuses MAIL (530 5.7.0) before STARTTLS, auth =
 * required refuses MAIL (530 5.7.0) before AUTH, and an authenticated
 * user may only use the sender domains the configuration gives them (553
 * 5.7.1). Client-supplied text (HELO names, parameter names) is
 * sanitised before it reaches a reply, a log line or a header. STARTTLS
 * throws away whatever the client pipelined after it (CVE-2011-0411).
 * A UTF-8 address is accepted only in a transaction whose MAIL carried
 * SMTPUTF8 (otherwise 553 5.6.7), and addr.c still checks that it is
 * well-formed UTF-8 and applies every ASCII rule to it; relay domains
 * are compared byte for byte after ASCII lower-casing (no IDNA mapping,
 * so an A-label and its U-label are different domains here).
 *
 * STANDARDS: RFC 5321 (4.1.1 commands, 4.1.4 order, 3.5.3 VRFY 252),
 * RFC 1869 (EHLO, parameters, 555), RFC 1870 (SIZE), RFC 6152 (8BITMIME,
 * BODY=), RFC 2920 (PIPELINING), RFC 2034 / RFC 3463 (enhanced codes:
 * on every 2xx/4xx/5xx reply except the greeting and the HELO/EHLO
 * replies, which RFC 2034 section 3 exempts), RFC 3207 (STARTTLS),
 * RFC 3030 (CHUNKING: BDAT is in smtpd_bdat.c; DATA and RCPT after a BDAT
 * chunk get 503),
 * RFC 4954 (AUTH), RFC 6531 (SMTPUTF8: 3.3 the keyword, 3.4 the MAIL
 * parameter without a value, 3.5 "553 5.6.7" for UTF-8 addresses in a
 * transaction without it).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "netaddr.h"
#include "util.h"

#include "smtpd.h"

/* argument rules */
#define CMD_ARG 0x1             /* an argument is required */
#define CMD_NOARG 0x2           /* no argument is allowed */

struct smtp_cmd {
	const char *verb;
	unsigned flags;
	const char *syntax;     /* for 501 5.5.4 */
	void (*run)(struct session *s, char *arg);
};

/* One MAIL FROM parameter: 0 = ok, -1 = refused (reply sent). */
struct mail_param {
	const char *key;
	int (*run)(struct session *s, const char *value);
};

static void cmd_helo(struct session *s, char *arg);
static void cmd_ehlo(struct session *s, char *arg);
static void cmd_mail(struct session *s, char *arg);
static void cmd_rcpt(struct session *s, char *arg);
static void cmd_data(struct session *s, char *arg);
static void cmd_rset(struct session *s, char *arg);
static void cmd_noop(struct session *s, char *arg);
static void cmd_quit(struct session *s, char *arg);
static void cmd_vrfy(struct session *s, char *arg);
static void cmd_help(struct session *s, char *arg);
static void cmd_starttls(struct session *s, char *arg);

static const struct smtp_cmd commands[] = {
	{ "HELO", CMD_ARG, "HELO hostname", cmd_helo },
	{ "EHLO", CMD_ARG, "EHLO hostname", cmd_ehlo },
	{ "MAIL", CMD_ARG, "MAIL FROM:<address>", cmd_mail },
	{ "RCPT", CMD_ARG, "RCPT TO:<address>", cmd_rcpt },
	{ "DATA", CMD_NOARG, "DATA", cmd_data },
	{ "RSET", CMD_NOARG, "RSET", cmd_rset },
	{ "NOOP", 0, "NOOP", cmd_noop },
	{ "QUIT", CMD_NOARG, "QUIT", cmd_quit },
	{ "VRFY", CMD_ARG, "VRFY address", cmd_vrfy },
	{ "HELP", 0, "HELP", cmd_help },
	{ "STARTTLS", CMD_NOARG, "STARTTLS", cmd_starttls },
	{ "AUTH", CMD_ARG, "AUTH mechanism [initial-response]", cmd_auth },
	{ "BDAT", CMD_ARG, "BDAT size [LAST]", cmd_bdat },
	{ NULL, 0, NULL, NULL },
};

static int param_size(struct session *s, const char *value);
static int param_body(struct session *s, const char *value);
static int param_smtputf8(struct session *s, const char *value);

static const struct mail_param mail_params[] = {
	{ "SIZE", param_size },
	{ "BODY", param_body },
	{ "SMTPUTF8", param_smtputf8 },
	{ NULL, NULL },
};

/* cmd_find - the table row for a verb (case-insensitive), or NULL */
static const struct smtp_cmd *
cmd_find(const char *verb)
{
	const struct smtp_cmd *c;

	for (c = commands; c->verb != NULL; c++)
		if (strcasecmp(c->verb, verb) == 0)
			return c;
	return NULL;
}

/* cmd_dispatch - run one command line (no CRLF, NUL-free) */
void
cmd_dispatch(struct session *s, char *line, size_t len)
{
	const struct smtp_cmd *c;
	char *arg, *end;

	for (arg = line; *arg != '\0' && *arg != ' '; arg++)
		;
	if (*arg == ' ')
		*arg++ = '\0';
	while (*arg == ' ')
		arg++;
	for (end = arg + strlen(arg); end > arg && isspace((unsigned char)end[-1]); end--)
		end[-1] = '\0';

	if ((c = cmd_find(line)) == NULL) {
		session_reject(s, REJ_PROTOCOL, "unknown", NULL,
		    "500 5.5.2 Error: command not recognized");
		return;
	}
	if (((c->flags & CMD_ARG) && *arg == '\0') ||
	    ((c->flags & CMD_NOARG) && *arg != '\0')) {
		session_reject(s, REJ_SYNTAX, c->verb, NULL, "501 5.5.4 Syntax: %s",
		    c->syntax);
		return;
	}
	c->run(s, arg);
}

/* helo_store - keep the first word of the HELO argument, printable
 * ASCII only (it goes into logs and the Received: header) */
static void
helo_store(struct session *s, const char *arg)
{
	size_t i, n = strcspn(arg, " \t");

	if (n > 255)
		n = 255;
	free(s->helo);
	s->helo = xstrndup(arg, n);
	for (i = 0; s->helo[i] != '\0'; i++)
		if (s->helo[i] < 0x21 || s->helo[i] > 0x7e)
			s->helo[i] = '?';
}

/* helo_common - HELO and EHLO: remember the name, reset the transaction */
static void
helo_common(struct session *s, const char *arg, int esmtp)
{
	session_txn_reset(s);
	helo_store(s, arg);
	s->flags |= SF_HELO;
	if (esmtp)
		s->flags |= SF_ESMTP;
	else
		s->flags &= ~SF_ESMTP;
}

/* cmd_helo - HELO name */
static void
cmd_helo(struct session *s, char *arg)
{
	helo_common(s, arg, 0);
	session_reply(s, "250 %s", smtpd.conf->hostname);
}

/* cmd_ehlo - EHLO name: the extensions we offer */
static void
cmd_ehlo(struct session *s, char *arg)
{
	helo_common(s, arg, 1);
	session_reply(s, "250-%s", smtpd.conf->hostname);
	session_reply(s, "250-PIPELINING");
	session_reply(s, "250-CHUNKING");
	session_reply(s, "250-SIZE %zu", smtpd.conf->max_message_size);
	session_reply(s, "250-8BITMIME");
	session_reply(s, "250-SMTPUTF8");
	if (tls_available(s) && !(s->flags & SF_TLS))
		session_reply(s, "250-STARTTLS");
	if (auth_offered(s))
		session_reply(s, "250-AUTH PLAIN LOGIN");
	session_reply(s, "250 ENHANCEDSTATUSCODES");
}

/* cmd_starttls - STARTTLS (RFC 3207): discard anything pipelined after
 * it, reply 220, and switch once the reply is written */
static void
cmd_starttls(struct session *s, char *arg)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t junk;

	if (s->flags & SF_TLS) {
		session_reject(s, REJ_PROTOCOL, "STARTTLS", NULL,
		    "503 5.5.1 Error: TLS already active");
		return;
	}
	if (!tls_available(s)) {
		session_reject(s, REJ_PROTOCOL, "STARTTLS", NULL,
		    "502 5.5.1 Error: command not implemented");
		return;
	}
	/* CVE-2011-0411: never execute plaintext commands inside TLS */
	if ((junk = evbuffer_get_length(in)) > 0) {
		log_info("[%s] pipelined %zu bytes after STARTTLS; discarded", s->ip,
		    junk);
		evbuffer_drain(in, junk);
	}
	session_txn_reset(s);
	session_reply(s, "220 2.0.0 Ready to start TLS");
	s->state = SS_STARTTLS;
	session_update_read(s);
}

/* mail_policy - the listener's TLS and AUTH requirements for MAIL; 0 if
 * met, -1 after the refusal */
static int
mail_policy(struct session *s)
{
	const struct conf_listen *l = session_listen(s);

	if (l == NULL)
		return 0;
	if (l->require_tls && !(s->flags & SF_TLS)) {
		session_reject(s, REJ_TLS_REQUIRED, "MAIL", NULL,
		    "530 5.7.0 Must issue a STARTTLS command first");
		return -1;
	}
	if (l->auth == LISTEN_AUTH_REQUIRED && !(s->flags & SF_AUTH)) {
		session_reject(s, REJ_AUTH_REQUIRED, "MAIL", NULL,
		    "530 5.7.0 Authentication required");
		return -1;
	}
	return 0;
}

/* path_arg - after "FROM:" / "TO:" (case-insensitive, blanks allowed
 * after the colon as many clients send them); NULL if absent */
static char *
path_arg(char *arg, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncasecmp(arg, prefix, n) != 0)
		return NULL;
	arg += n;
	while (*arg == ' ')
		arg++;
	return arg;
}

/* keyword_ok - RFC 5321 esmtp-keyword: ALPHA / DIGIT / "-" */
static int
keyword_ok(const char *k)
{
	if (*k == '\0')
		return 0;
	for (; *k != '\0'; k++)
		if (!isalnum((unsigned char)*k) && *k != '-')
			return 0;
	return 1;
}

/* param_size - SIZE=n (RFC 1870): refuse what we would refuse anyway */
static int
param_size(struct session *s, const char *value)
{
	unsigned long long n;
	char *end;

	if (value == NULL || !isdigit((unsigned char)*value)) {
		session_reject(s, REJ_SYNTAX, "MAIL", NULL,
		    "501 5.5.4 Bad SIZE parameter syntax");
		return -1;
	}
	errno = 0;
	n = strtoull(value, &end, 10);
	if (*end != '\0') {
		session_reject(s, REJ_SYNTAX, "MAIL", NULL,
		    "501 5.5.4 Bad SIZE parameter syntax");
		return -1;
	}
	if (errno == ERANGE || n > smtpd.conf->max_message_size) {
		session_reject(s, REJ_SIZE, "MAIL", NULL,
		    "552 5.3.4 Message size exceeds fixed maximum message size");
		return -1;
	}
	return 0;
}

/* param_body - BODY=7BIT|8BITMIME (RFC 6152); nothing to convert, the
 * body type goes into the envelope */
static int
param_body(struct session *s, const char *value)
{
	if (value != NULL && strcasecmp(value, "7BIT") == 0) {
		s->flags &= ~SF_8BITMIME;
		return 0;
	}
	if (value != NULL && strcasecmp(value, "8BITMIME") == 0) {
		s->flags |= SF_8BITMIME;
		return 0;
	}
	session_reject(s, REJ_SYNTAX, "MAIL", NULL,
	    "501 5.5.4 Unsupported BODY parameter (7BIT or 8BITMIME)");
	return -1;
}

/* param_smtputf8 - SMTPUTF8 (RFC 6531 3.4): a keyword without a value;
 * UTF-8 addresses are permitted in this transaction */
static int
param_smtputf8(struct session *s, const char *value)
{
	if (value != NULL) {
		session_reject(s, REJ_SYNTAX, "MAIL", NULL,
		    "501 5.5.4 The SMTPUTF8 parameter takes no value");
		return -1;
	}
	s->flags |= SF_SMTPUTF8;
	return 0;
}

/* addr_is_ascii - 1 if the address has no octet >= 0x80 */
static int
addr_is_ascii(const char *addr)
{
	const unsigned char *p;

	for (p = (const unsigned char *)addr; *p != '\0'; p++)
		if (*p >= 0x80)
			return 0;
	return 1;
}

/* mail_parse_params - the " KEY[=VALUE]..." after the reverse path */
static int
mail_parse_params(struct session *s, char *p)
{
	const struct mail_param *mp;
	char *tok, *save = NULL, *value;

	for (tok = strtok_r(p, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		if ((value = strchr(tok, '=')) != NULL)
			*value++ = '\0';
		for (mp = mail_params; mp->key != NULL; mp++)
			if (strcasecmp(mp->key, tok) == 0)
				break;
		if (mp->key != NULL) {
			if (mp->run(s, value) < 0)
				return -1;
			continue;
		}
		if (keyword_ok(tok) && strlen(tok) <= 32)
			session_reject(s, REJ_SYNTAX, "MAIL", NULL,
			    "555 5.5.4 Unsupported option: %s", tok);
		else
			session_reject(s, REJ_SYNTAX, "MAIL", NULL,
			    "555 5.5.4 Unsupported option");
		return -1;
	}
	return 0;
}

/* mail_sender_refused - 1 (and the 553 sent) when this client may not use
 * sender a: not owned by the AUTH user, or not a local domain */
static int
mail_sender_refused(struct session *s, const struct mailaddr *a)
{
	char buf[SMTPD_ADDR_BUF];

	if ((s->flags & SF_AUTH) && !a->null_sender &&
	    !auth_sender_owned(s, a->domain)) {
		addr_format(a, buf, sizeof(buf));
		session_reject(s, REJ_SENDER, "MAIL", NULL,
		    "553 5.7.1 <%s>: Sender address rejected: not owned by user %s",
		    buf, s->user->name);
		return 1;
	}
	if (access_sender_refused(s, a)) {
		addr_format(a, buf, sizeof(buf));
		session_reject(s, REJ_SENDER, "MAIL", NULL,
		    "553 5.7.1 <%s>: Sender address rejected: not a local domain", buf);
		return 1;
	}
	return 0;
}

/* cmd_mail - MAIL FROM:<reverse-path> [SIZE=n] [BODY=...] [SMTPUTF8] */
static void
cmd_mail(struct session *s, char *arg)
{
	char buf[SMTPD_ADDR_BUF];
	struct mailaddr a;
	const char *end, *why;
	char *p;

	if (!(s->flags & SF_HELO)) {
		session_reject(s, REJ_PROTOCOL, "MAIL", NULL,
		    "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->sender != NULL) {
		session_reject(s, REJ_PROTOCOL, "MAIL", NULL,
		    "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (mail_policy(s) < 0)
		return;
	if ((p = path_arg(arg, "FROM:")) == NULL) {
		session_reject(s, REJ_SYNTAX, "MAIL", NULL,
		    "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	/* counted here, accepted or not (Postfix's message rate limit) */
	if (smtpd_anvil_mail(s) < 0)
		return;
	/* UTF-8 is parsed here; without SMTPUTF8 it is refused below, once
	 * the parameters said whether the transaction has it */
	if (addr_parse_path(p, ADDR_ALLOW_NULL | ADDR_ALLOW_UTF8, &a, &end,
	    &why) < 0) {
		session_reject(s, REJ_SYNTAX, "MAIL", NULL,
		    "501 5.1.7 Bad sender address syntax: %s", why);
		return;
	}
	if (*end != '\0' && *end != ' ') {
		session_reject(s, REJ_SYNTAX, "MAIL", NULL,
		    "501 5.1.7 Bad sender address syntax: text after the address");
		return;
	}
	if (mail_sender_refused(s, &a))
		return;
	/* set before the parameters so their refusals log the sender */
	s->sender = xstrdup(addr_format(&a, buf, sizeof(buf)));
	if (mail_parse_params(s, p + (end - p)) < 0) {
		xfree(&s->sender);
		s->flags &= ~(SF_SMTPUTF8 | SF_8BITMIME);
		return;
	}
	if (!(s->flags & SF_SMTPUTF8) && !addr_is_ascii(s->sender)) {
		session_reject(s, REJ_SYNTAX, "MAIL", NULL, "553 5.6.7 Non-ASCII "
		    "addresses not permitted for that sender without SMTPUTF8");
		xfree(&s->sender);
		return;
	}
	session_reply(s, "250 2.1.0 Ok");
}

/* rcpt_postmaster - 1 for the postmaster of this host (RFC 5321 4.5.1:
 * mail to it is accepted from anyone; it reaches that one address) */
static int
rcpt_postmaster(const struct mailaddr *a)
{
	return strcasecmp(a->local, "postmaster") == 0 &&
	    strcasecmp(a->domain, smtpd.conf->hostname) == 0;
}

/* rcpt_permitted - the relay rule: trusted client or relay domain, and
 * this host's postmaster for everyone */
static int
rcpt_permitted(const struct session *s, const struct mailaddr *a)
{
	if (netlist_match(&smtpd.conf->trusted_networks,
	    (const struct sockaddr *)&s->ss))
		return 1;
	/* submission: an authenticated user may send anywhere */
	if (s->flags & SF_AUTH)
		return 1;
	return rcpt_postmaster(a) || conf_is_relay_domain(smtpd.conf, a->domain);
}

/* rcpt_path - the forward-path at p; "<Postmaster>" without a domain (any
 * case, RFC 5321 4.1.1.3) is postmaster@hostname and routed as that */
static int
rcpt_path(const char *p, struct mailaddr *a, const char **end, const char **why)
{
	static const char pm[] = "<postmaster>";

	if (strncasecmp(p, pm, sizeof(pm) - 1) != 0)
		return addr_parse_path(p, ADDR_ALLOW_UTF8, a, end, why);
	memset(a, 0, sizeof(*a));
	strlcpy(a->local, "postmaster", sizeof(a->local));
	strlcpy(a->domain, smtpd.conf->hostname, sizeof(a->domain));
	str_lower(a->domain);
	*end = p + sizeof(pm) - 1;
	return 0;
}

/* rcpt_add - append an accepted recipient */
static void
rcpt_add(struct session *s, const char *addr)
{
	if (s->nrcpt == s->rcptcap) {
		s->rcptcap = s->rcptcap ? s->rcptcap * 2 : 4;
		s->rcpt = xreallocarray(s->rcpt, s->rcptcap, sizeof(*s->rcpt));
	}
	s->rcpt[s->nrcpt++] = xstrdup(addr);
	s->rcptbytes += strlen(addr) + 8;
}

/* cmd_rcpt - RCPT TO:<forward-path> */
static void
cmd_rcpt(struct session *s, char *arg)
{
	char buf[SMTPD_ADDR_BUF];
	struct mailaddr a;
	const char *end, *why;
	char *p;

	if (s->sender == NULL) {
		session_reject(s, REJ_PROTOCOL, "RCPT", NULL,
		    "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->bdat) {
		session_reject(s, REJ_PROTOCOL, "RCPT", NULL,
		    "503 5.5.1 Error: RCPT after BDAT");
		return;
	}
	if ((p = path_arg(arg, "TO:")) == NULL) {
		session_reject(s, REJ_SYNTAX, "RCPT", NULL,
		    "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (rcpt_path(p, &a, &end, &why) < 0) {
		session_reject(s, REJ_SYNTAX, "RCPT", NULL,
		    "501 5.1.3 Bad recipient address syntax: %s", why);
		return;
	}
	addr_format(&a, buf, sizeof(buf));
	if (!(s->flags & SF_SMTPUTF8) && !addr_is_ascii(buf)) {
		session_reject(s, REJ_SYNTAX, "RCPT", NULL, "553 5.6.7 Non-ASCII "
		    "addresses not permitted for that recipient without SMTPUTF8");
		return;
	}
	while (*end == ' ')
		end++;
	if (*end != '\0') {
		session_reject(s, REJ_SYNTAX, "RCPT", NULL,
		    "555 5.5.4 Unsupported option");
		return;
	}
	if (!rcpt_permitted(s, &a)) {
		session_reject(s, REJ_RELAY_DENIED, "RCPT", buf,
		    "554 5.7.1 <%s>: Relay access denied", buf);
		return;
	}
	if (s->nrcpt >= (size_t)smtpd.conf->max_recipients ||
	    s->rcptbytes + strlen(buf) + 8 > SMTPD_RCPT_BYTES_MAX) {
		session_reject(s, REJ_RCPT_LIMIT, "RCPT", buf,
		    "452 4.5.3 Too many recipients");
		return;
	}
	rcpt_add(s, buf);
	session_reply(s, "250 2.1.5 Ok");
}

/* cmd_data - DATA: ask queued for a spool file; the reply (354 or 451)
 * comes when it answers */
static void
cmd_data(struct session *s, char *arg)
{
	if (s->sender == NULL) {
		session_reject(s, REJ_PROTOCOL, "DATA", NULL,
		    "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->bdat) {
		/* RFC 3030 2: never both in one transaction; it is aborted */
		session_reject(s, REJ_PROTOCOL, "DATA", NULL,
		    "503 5.5.1 Error: DATA after BDAT in the same transaction");
		session_txn_reset(s);
		return;
	}
	if (s->nrcpt == 0) {
		session_reject(s, REJ_PROTOCOL, "DATA", NULL,
		    "554 5.5.1 No valid recipients");
		return;
	}
	data_phase_begin(s);
	if (queue_open(s) < 0) {
		session_reject(s, REJ_QUEUE_ERROR, "DATA", NULL,
		    "451 4.3.0 Queue unavailable, try again later");
		session_txn_reset(s);
	}
}

/* cmd_rset - RSET: abort the transaction */
static void
cmd_rset(struct session *s, char *arg)
{
	session_txn_reset(s);
	session_reply(s, "250 2.0.0 Ok");
}

/* cmd_noop - NOOP */
static void
cmd_noop(struct session *s, char *arg)
{
	session_reply(s, "250 2.0.0 Ok");
}

/* cmd_quit - QUIT: say goodbye and close once it is written */
static void
cmd_quit(struct session *s, char *arg)
{
	session_txn_reset(s);
	session_reply(s, "221 2.0.0 Bye");
	session_close(s);
}

/* cmd_vrfy - VRFY: we do not disclose users (RFC 5321 3.5.3) */
static void
cmd_vrfy(struct session *s, char *arg)
{
	session_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
}

/* cmd_help - HELP */
static void
cmd_help(struct session *s, char *arg)
{
	session_reply(s, "214 2.0.0 See RFC 5321");
}
