/*
 * smtpd_auth.c - SMTP AUTH for postern-smtpd: the PLAIN and LOGIN
 * mechanisms (with the initial-response form), password checks against
 * crypt(3) hashes, and the sender domains a user may use.
 *
 * Owns: the mechanism table, the AUTH exchange state of a session
 * (auth_step, the LOGIN user name), the dummy hash checked for unknown
 * users so that they cost as much time as known ones. The lock-out
 * (auth_failure_limit failures within auth_failure_window per client
 * address) is counted in the table shared by every smtpd process
 * (smtpd_anvil.c), so failures spread over processes add up.
 *
 * SECURITY: credentials are untrusted input and secrets. They are never
 * logged (the dialogue log shows "[redacted]", see smtpd_session.c),
 * decoded buffers are wiped after use, the hash result is compared in
 * constant time, and an unknown user and a wrong password get the same
 * answer (535 5.7.8) after the same work. AUTH is refused (538 5.7.11)
 * without TLS unless the listener says auth_cleartext = yes (and never
 * when it says require_tls). Verification runs crypt_rn() in the event
 * loop: a yescrypt check costs tens of milliseconds per attempt, which is
 * why a client address that failed too often is locked out (421 4.7.0)
 * before any further hashing.
 *
 * STANDARDS: RFC 4954 (SMTP AUTH, 235/334/501/503/504/535/538), RFC 4616
 * (PLAIN), draft-murchison-sasl-login (LOGIN), RFC 4648 (base64),
 * RFC 3463 (enhanced codes).
 */
#include "config.h"

#include <crypt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "conf.h"
#include "log.h"
#include "util.h"

#include "smtpd.h"

/* decoded credentials are bounded by the command line length */
#define AUTH_BUF SMTPD_LINE_MAX

struct auth_mech {
	const char *name;
	void (*start)(struct session *s, const char *initial);
};

static void mech_plain(struct session *s, const char *initial);
static void mech_login(struct session *s, const char *initial);

static const struct auth_mech mechs[] = {
	{ "PLAIN", mech_plain },
	{ "LOGIN", mech_login },
	{ NULL, NULL },
};

/* a valid setting string hashed for unknown users (timing) */
static char dummy_setting[CRYPT_GENSALT_OUTPUT_SIZE];

/* auth_init - prepare the dummy hash used for unknown users */
void
auth_init(void)
{
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, dummy_setting,
	    sizeof(dummy_setting)) == NULL)
		strlcpy(dummy_setting, "$6$postern.dummy$", sizeof(dummy_setting));
}

/* auth_offered - 1 if EHLO may advertise AUTH on this session now */
int
auth_offered(const struct session *s)
{
	const struct conf_listen *l = session_listen(s);

	if (l == NULL || l->auth == LISTEN_AUTH_OFF || smtpd.conf->nusers == 0)
		return 0;
	if (s->flags & SF_TLS)
		return 1;
	return l->auth_cleartext && !l->require_tls;
}

/* auth_reset - forget a half-done exchange (wipes the LOGIN name) */
void
auth_reset(struct session *s)
{
	if (s->auth_login != NULL) {
		explicit_bzero(s->auth_login, strlen(s->auth_login));
		xfree(&s->auth_login);
	}
	s->auth_step = AUTH_STEP_NONE;
}

/* b64_decode - a response as RFC 4954 sends it (RFC 4648 base64, one
 * token: no white space, no line breaks, padding only at the end) into
 * out, NUL added after it; the decoded length, or -1 if it is not that
 * or does not fit. OpenSSL decodes and checks the padding; it would skip
 * white space and stop at '-', so the alphabet is checked first. */
static ssize_t
b64_decode(const char *in, unsigned char *out, size_t outlen)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
	size_t n = strlen(in);
	EVP_ENCODE_CTX *ctx;
	int len = 0, fin = 0, rc;

	if (n % 4 != 0 || in[strspn(in, alphabet)] != '\0' || n / 4 * 3 + 1 > outlen)
		return -1;
	if ((ctx = EVP_ENCODE_CTX_new()) == NULL)
		fatalx("cannot allocate a base64 context");
	EVP_DecodeInit(ctx);
	rc = EVP_DecodeUpdate(ctx, out, &len, (const unsigned char *)in, (int)n);
	if (rc != -1 && EVP_DecodeFinal(ctx, out + len, &fin) != 1)
		rc = -1;
	EVP_ENCODE_CTX_free(ctx);
	if (rc == -1) {
		explicit_bzero(out, outlen);
		return -1;
	}
	out[len + fin] = '\0';
	return len + fin;
}

/* auth_decode - a client response: "=" is empty; -1 after the 501
 * reply if it is not base64 */
static ssize_t
auth_decode(struct session *s, const char *in, unsigned char *out, size_t len)
{
	ssize_t n;

	if (strcmp(in, "=") == 0) {
		out[0] = '\0';
		return 0;
	}
	if ((n = b64_decode(in, out, len)) < 0) {
		auth_reset(s);
		session_reject(s, REJ_SYNTAX, "AUTH", NULL,
		    "501 5.5.2 Cannot decode response");
	}
	return n;
}

/* password_ok - constant-time check of password against the user's hash
 * (or the dummy one when there is no such user) */
static int
password_ok(const struct conf_user *u, const char *password)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *hash = u != NULL ? u->password : dummy_setting;
	size_t hl = strlen(hash);
	int ok = 0;

	if (crypt_rn(password, hash, cd, sizeof(*cd)) != NULL &&
	    cd->output[0] != '*' && strlen(cd->output) == hl)
		ok = CRYPTO_memcmp(cd->output, hash, hl) == 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok && u != NULL;
}

/* auth_finish - the credentials are complete: 235 or 535 */
static void
auth_finish(struct session *s, const char *mech, const char *user,
    const char *password)
{
	const struct conf_user *u = conf_user_find(smtpd.conf, user);
	char safe[65];
	size_t i;

	auth_reset(s);
	/* the name may be anything: printable ASCII only into the log */
	strlcpy(safe, user, sizeof(safe));
	for (i = 0; safe[i] != '\0'; i++)
		if (safe[i] < 0x21 || safe[i] > 0x7e)
			safe[i] = '?';
	if (*password == '\0' || !password_ok(u, password)) {
		log_info("[%s] AUTH %s failed for user %s", s->ip, mech, safe);
		stats_add(&stats->smtpd_auth[1], 1);
		smtpd_anvil_auth_failed(s);
		session_reject(s, REJ_AUTH_FAILED, "AUTH", NULL,
		    "535 5.7.8 Authentication credentials invalid");
		return;
	}
	s->flags |= SF_AUTH;
	s->user = u;
	log_info("[%s] authenticated as %s (AUTH %s)", s->ip, u->name, mech);
	stats_add(&stats->smtpd_auth[0], 1);
	session_reply(s, "235 2.7.0 Authentication successful");
}

/* auth_malformed - 501 for a response that decodes but is not what the
 * mechanism defines; the exchange ends */
static void
auth_malformed(struct session *s, const char *mech, unsigned char *buf,
    size_t len)
{
	explicit_bzero(buf, len);
	auth_reset(s);
	session_reject(s, REJ_SYNTAX, "AUTH", NULL,
	    "501 5.5.2 Malformed %s response", mech);
}

/* plain_response - "[authzid] NUL authcid NUL passwd" (RFC 4616 2):
 * exactly two NULs, a non-empty authcid and passwd; the parts are cut
 * by length, so nothing after a NUL inside passwd can be ignored */
static void
plain_response(struct session *s, const char *resp)
{
	unsigned char buf[AUTH_BUF];
	unsigned char *nul1, *nul2;
	const char *authz, *user, *pass;
	ssize_t n;

	if ((n = auth_decode(s, resp, buf, sizeof(buf))) < 0)
		return;
	if ((nul1 = memchr(buf, '\0', (size_t)n)) == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', (size_t)(buf + n - nul1 - 1))) == NULL ||
	    nul2 == nul1 + 1 || nul2 + 1 == buf + n ||
	    memchr(nul2 + 1, '\0', (size_t)(buf + n - nul2 - 1)) != NULL) {
		auth_malformed(s, "PLAIN", buf, sizeof(buf));
		return;
	}
	authz = (const char *)buf;
	user = (const char *)nul1 + 1;
	pass = (const char *)nul2 + 1;
	if (*authz != '\0' && strcmp(authz, user) != 0) {
		/* acting as someone else is not something we offer */
		explicit_bzero(buf, sizeof(buf));
		auth_finish(s, "PLAIN", user, "");
		return;
	}
	auth_finish(s, "PLAIN", user, pass);
	explicit_bzero(buf, sizeof(buf));
}

/* mech_plain - AUTH PLAIN [initial-response] */
static void
mech_plain(struct session *s, const char *initial)
{
	if (initial != NULL) {
		plain_response(s, initial);
		return;
	}
	s->auth_step = AUTH_STEP_PLAIN;
	session_reply(s, "334 ");
}

/* login_user - the LOGIN user name arrived: ask for the password */
static void
login_user(struct session *s, const char *resp)
{
	unsigned char buf[AUTH_BUF];
	ssize_t n;

	if ((n = auth_decode(s, resp, buf, sizeof(buf))) < 0)
		return;
	if (memchr(buf, '\0', (size_t)n) != NULL) {
		auth_malformed(s, "LOGIN", buf, sizeof(buf));
		return;
	}
	s->auth_login = xstrdup((char *)buf);
	explicit_bzero(buf, sizeof(buf));
	s->auth_step = AUTH_STEP_LOGIN_PASS;
	session_reply(s, "334 UGFzc3dvcmQ6");
}

/* mech_login - AUTH LOGIN [initial-response (the user name)] */
static void
mech_login(struct session *s, const char *initial)
{
	if (initial != NULL) {
		login_user(s, initial);
		return;
	}
	s->auth_step = AUTH_STEP_LOGIN_USER;
	session_reply(s, "334 VXNlcm5hbWU6");
}

/* auth_allowed - the checks before any mechanism; 0 or -1 (replied) */
static int
auth_allowed(struct session *s)
{
	const struct conf_listen *l = session_listen(s);

	if (l == NULL || l->auth == LISTEN_AUTH_OFF || smtpd.conf->nusers == 0) {
		session_reject(s, REJ_PROTOCOL, "AUTH", NULL,
		    "503 5.5.1 Error: authentication not enabled");
		return -1;
	}
	if (!(s->flags & SF_ESMTP)) {
		session_reject(s, REJ_PROTOCOL, "AUTH", NULL,
		    "503 5.5.1 Error: send EHLO first");
		return -1;
	}
	if (s->flags & SF_AUTH) {
		session_reject(s, REJ_PROTOCOL, "AUTH", NULL,
		    "503 5.5.1 Error: already authenticated");
		return -1;
	}
	if (s->sender != NULL) {
		session_reject(s, REJ_PROTOCOL, "AUTH", NULL,
		    "503 5.5.1 Error: MAIL transaction in progress");
		return -1;
	}
	if (!(s->flags & SF_TLS) && (l->require_tls || !l->auth_cleartext)) {
		session_reject(s, REJ_TLS_REQUIRED, "AUTH", NULL,
		    "538 5.7.11 Encryption required for requested authentication "
		    "mechanism");
		return -1;
	}
	return 0;
}

/* cmd_auth - AUTH mechanism [initial-response] */
void
cmd_auth(struct session *s, char *arg)
{
	const struct auth_mech *m;
	char *initial;

	if (auth_allowed(s) < 0)
		return;
	if (smtpd_anvil_auth_locked(s)) {
		log_info("[%s] AUTH lock-out: %d failures within %llds", s->ip,
		    smtpd.conf->auth_failure_limit,
		    (long long)smtpd.conf->auth_failure_window);
		session_reject(s, REJ_AUTH_LOCKOUT, "AUTH", NULL,
		    "421 4.7.0 %s Error: too many authentication failures",
		    smtpd.conf->hostname);
		session_close(s);
		return;
	}
	if ((initial = strchr(arg, ' ')) != NULL) {
		*initial++ = '\0';
		while (*initial == ' ')
			initial++;
		if (*initial == '\0')
			initial = NULL;
	}
	for (m = mechs; m->name != NULL; m++)
		if (strcasecmp(m->name, arg) == 0)
			break;
	if (m->name == NULL) {
		session_reject(s, REJ_SYNTAX, "AUTH", NULL,
		    "504 5.5.4 Unrecognized authentication type");
		return;
	}
	m->start(s, initial);
	if (initial != NULL)
		explicit_bzero(initial, strlen(initial));
}

/* auth_continue - a continuation line while auth_step != NONE */
void
auth_continue(struct session *s, char *line)
{
	enum auth_step step = s->auth_step;
	char *user;

	if (strcmp(line, "*") == 0) {
		auth_reset(s);
		session_reject(s, REJ_PROTOCOL, "AUTH", NULL,
		    "501 5.0.0 Authentication cancelled");
		return;
	}
	switch (step) {
	case AUTH_STEP_PLAIN:
		plain_response(s, line);
		break;
	case AUTH_STEP_LOGIN_USER:
		login_user(s, line);
		break;
	case AUTH_STEP_LOGIN_PASS: {
		unsigned char buf[AUTH_BUF];
		ssize_t n;

		if ((n = auth_decode(s, line, buf, sizeof(buf))) < 0)
			break;
		if (memchr(buf, '\0', (size_t)n) != NULL) {
			auth_malformed(s, "LOGIN", buf, sizeof(buf));
			break;
		}
		user = xstrdup(s->auth_login);
		auth_finish(s, "LOGIN", user, (const char *)buf);
		explicit_bzero(buf, sizeof(buf));
		free(user);
		break;
	}
	case AUTH_STEP_NONE:
		break;
	}
}

/* auth_sender_owned - 1 if the authenticated user may use domain (an
 * empty sender_domains list means every domain) */
int
auth_sender_owned(const struct session *s, const char *domain)
{
	size_t i;

	if (s->user == NULL || s->user->ndomains == 0)
		return 1;
	for (i = 0; i < s->user->ndomains; i++)
		if (strcasecmp(s->user->domains[i], domain) == 0)
			return 1;
	return 0;
}
