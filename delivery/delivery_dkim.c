/*
 * delivery_dkim.c - DKIM signing of outgoing messages with libopendkim.
 *
 * Owns: the private keys (read once at start-up, while privileged) and
 * the libopendkim library handle. The signing domain of a message is
 * "the From: domain" of common/addrlist.c (From:'s only mailbox, or the
 * Sender: mailbox when From: holds several; RFC 5322 3.6.2), else the
 * envelope sender's domain; when
 * the configuration has dkim sections for it, the message is signed with
 * each of their keys (several selectors: one DKIM-Signature each),
 * rsa-sha256 with libopendkim or ed25519-sha256 (delivery_dkim_ed.c,
 * without libopendkim, whose 2.11 leaks per Ed25519 signature) by key
 * type, with dkim_canonicalization (relaxed/relaxed by default), over
 * dkim_signed_headers plus from, to,
 * subject, date and message-id, with From oversigned so no second From
 * can be added; each DKIM-Signature header is prepended.
 * SECURITY: the only place that holds key material; keys are never
 * logged (only public facts are published, in the shared stats for the
 * status page: algorithm, bits, SHA-256 of p=), and a key that cannot be read or parsed stops the process with
 * EXIT_CONFIG at start (never sign nothing silently). A signing failure
 * is reported to the caller, which defers the message: a message whose
 * domain has a key never leaves unsigned.
 * STANDARDS: RFC 6376 (DKIM), RFC 8463 (ed25519-sha256), RFC 5322 3.6.2
 * (From:), RFC 5322 3.2.2 (folding, comments).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <dkim.h>

#include "addr.h"
#include "addrlist.h"
#include "conf.h"
#include "dkimkey.h"
#include "log.h"
#include "stats.h"
#include "util.h"

#include "delivery.h"

/* A key file is a few kilobytes of PEM; anything far bigger is wrong. */
#define DKIM_KEY_MAX (64 * 1024)

/* One loaded key, for one dkim section of the configuration. */
struct dkim_key {
	const struct conf_dkim *cd;
	char *pem;              /* NUL-terminated PEM text */
	size_t len;
	dkim_alg_t alg;
	EVP_PKEY *pkey;         /* ed25519: signed by delivery_dkim_ed.c */
};

static struct dkim_key *keys;
static size_t nkeys;
static DKIM_LIB *dkim_lib;

/* The headers signed when present: dkim_signed_headers plus these,
 * which are always signed (RFC 6376 5.4.1). */
static const char *const always_signed[] = {
	"from", "to", "subject", "date", "message-id", NULL
};
static const char **sign_headers;
/* dkim_canonicalization: header and body */
static dkim_canon_t canon_hdr = DKIM_CANON_RELAXED, canon_body = DKIM_CANON_RELAXED;
/* Signed once more than present, so another From: breaks the signature. */
static const char *oversign_headers[] = { "from", NULL };
/* libopendkim refuses to sign without a From: by default; a message
 * without one is signed for its envelope sender's domain instead (From is
 * still in h=, oversigned, so one cannot be added later). */
static const char *required_headers[] = { NULL };

/* key_read - the key file into a NUL-terminated buffer; 0 or an errno */
static int
key_read(const char *path, char **out, size_t *lenp)
{
	struct stat st;
	size_t off = 0;
	ssize_t n;
	char *buf;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return errno;
	if (fstat(fd, &st) == -1) {
		err = errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = EINVAL;
		goto out;
	}
	if (st.st_size > DKIM_KEY_MAX) {
		err = EFBIG;
		goto out;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n == 0 ? EIO : errno;
			explicit_bzero(buf, (size_t)st.st_size + 1);
			free(buf);
			goto out;
		}
		off += (size_t)n;
	}
	buf[off] = '\0';
	*out = buf;
	*lenp = off;
out:
	close(fd);
	return err;
}

/* key_publish - the public facts of dkim section i's key (algorithm,
 * bits, fingerprint of p=) into the shared stats for the status page */
static void
key_publish(size_t i, EVP_PKEY *pkey)
{
	struct stats_dkim *s = i < STATS_MAX_DKIM ? &stats->dkim[i] : NULL;
	unsigned char md[32];

	if (s == NULL || dkimkey_fingerprint(pkey, md) == -1)
		return;
	memcpy(s->fingerprint, md, sizeof(md));
	__atomic_store_n(&s->alg, EVP_PKEY_is_a(pkey, "ED25519") ? DKIM_ED25519 :
	    DKIM_RSA, __ATOMIC_RELAXED);
	__atomic_store_n(&s->bits, EVP_PKEY_get_bits(pkey), __ATOMIC_RELAXED);
	__atomic_store_n(&s->loaded, 1, __ATOMIC_RELEASE);
}

/* key_check - parse the PEM key with OpenSSL and pick the algorithm
 * (the public facts of key i published); NULL, or why it is unusable */
static const char *
key_check(size_t i, const char *pem, size_t len, dkim_alg_t *alg,
    EVP_PKEY **keep)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pkey;
	const char *why = NULL;

	if (bio == NULL)
		return "out of memory";
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL)
		return "not a PEM private key";
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		*alg = DKIM_SIGN_RSASHA256;
		if (EVP_PKEY_get_bits(pkey) < 1024)
			why = "RSA key shorter than 1024 bits";
		break;
	case EVP_PKEY_ED25519:
		*alg = DKIM_SIGN_ED25519SHA256;
		break;
	default:
		why = "neither an RSA nor an Ed25519 key";
	}
	if (why == NULL)
		key_publish(i, pkey);
	if (why == NULL && *alg == DKIM_SIGN_ED25519SHA256)
		*keep = pkey;
	else
		EVP_PKEY_free(pkey);
	return why;
}

/* dkim_settings - canonicalization and the signed header list */
static void
dkim_settings(const struct conf *c)
{
	const char *slash = strchr(c->dkim_canon, '/');
	size_t i, n = 0, k;

	canon_hdr = strncmp(c->dkim_canon, "simple", 6) == 0 ? DKIM_CANON_SIMPLE :
	    DKIM_CANON_RELAXED;
	/* "relaxed" alone means relaxed/simple (RFC 6376 3.5, c=) */
	canon_body = slash != NULL && strcmp(slash + 1, "relaxed") == 0 ?
	    DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
	sign_headers = xcalloc(c->ndkim_headers + 6, sizeof(char *));
	for (i = 0; always_signed[i] != NULL; i++)
		sign_headers[n++] = always_signed[i];
	for (i = 0; i < c->ndkim_headers; i++) {
		for (k = 0; k < n && strcasecmp(sign_headers[k], c->dkim_headers[i]) != 0; k++)
			;
		if (k == n)
			sign_headers[n++] = c->dkim_headers[i];
	}
	sign_headers[n] = NULL;
}

/* delivery_dkim_load - read every key, set up libopendkim; a bad key
 * ends the process with EXIT_CONFIG */
void
delivery_dkim_load(const struct conf *c)
{
	const char *why;
	size_t i;
	int err;

	keys = xcalloc(c->ndkim > 0 ? c->ndkim : 1, sizeof(*keys));
	for (i = 0; i < c->ndkim; i++) {
		struct dkim_key *k = &keys[nkeys];

		k->cd = &c->dkim[i];
		err = key_read(c->dkim[i].key, &k->pem, &k->len);
		why = err != 0 ? strerror(err) : key_check(i, k->pem, k->len, &k->alg,
		    &k->pkey);
		if (why != NULL) {
			log_warnx("dkim %s: cannot read key %s: %s", c->dkim[i].domain,
			    c->dkim[i].key, why);
			exit(EXIT_CONFIG);
		}
		nkeys++;
		log_debug("dkim %s: key %s loaded (selector %s)", c->dkim[i].domain,
		    c->dkim[i].key, c->dkim[i].selector);
	}
	dkim_settings(c);
	dkim_lib = dkim_init(NULL, NULL);
	if (dkim_lib == NULL)
		fatalx("dkim_init failed");
	/* list options take the array itself, with the size of a pointer */
	if (dkim_options(dkim_lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, sign_headers,
	    sizeof(char **)) != DKIM_STAT_OK ||
	    dkim_options(dkim_lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, oversign_headers,
	    sizeof(char **)) != DKIM_STAT_OK ||
	    dkim_options(dkim_lib, DKIM_OP_SETOPT, DKIM_OPTS_REQUIREDHDRS, required_headers,
	    sizeof(char **)) != DKIM_STAT_OK)
		fatalx("dkim_options: cannot set the signed header list");
}

/* next_field - from *ip, the next line of the header section that
 * starts a NAME: field: the offset of its colon, *ip moved past that
 * line; 0 at the end of the header section */
static size_t
next_field(const char *msg, size_t len, size_t *ip, const char *name)
{
	size_t nlen = strlen(name), i = *ip, eol, k;

	for (; i < len; i = eol + 1) {
		for (eol = i; eol < len && msg[eol] != '\n'; eol++)
			;
		if (eol == i || (eol == i + 1 && msg[i] == '\r'))
			break;                  /* end of the header section */
		if (eol - i <= nlen || strncasecmp(msg + i, name, nlen) != 0)
			continue;
		for (k = i + nlen; k < eol && (msg[k] == ' ' || msg[k] == '\t'); k++)
			;
		if (k < eol && msg[k] == ':') {
			*ip = eol + 1;
			return k;
		}
	}
	*ip = len;
	return 0;
}

/* header_value - the unfolded value of the first NAME: field of the
 * message's header section; malloc'd, or NULL when there is none */
static char *
header_value(const char *msg, size_t len, const char *name)
{
	size_t i = 0, k = next_field(msg, len, &i, name), o;
	char *v;

	if (k == 0)
		return NULL;
	/* k is at the colon: copy to the end of the field, dropping CR/LF */
	v = xmalloc(len - k);
	for (o = 0, k++; k < len; k++) {
		if (msg[k] == '\n') {
			if (k + 1 >= len || (msg[k + 1] != ' ' && msg[k + 1] != '\t'))
				break;
			continue;
		}
		if (msg[k] != '\r')
			v[o++] = msg[k];
	}
	v[o] = '\0';
	return v;
}

/* delivery_header_value - the unfolded value of the first NAME: field */
char *
delivery_header_value(const char *msg, size_t len, const char *name)
{
	return header_value(msg, len, name);
}

/* delivery_header_count - how many NAME: fields the header section has */
int
delivery_header_count(const char *msg, size_t len, const char *name)
{
	size_t i = 0;
	int n = 0;

	while (next_field(msg, len, &i, name) != 0)
		n++;
	return n;
}

/* delivery_dkim_domain - the signing domain: "the From: domain"
 * (common/addrlist.c: From:'s only mailbox, or Sender:'s when From: holds
 * several), else the envelope sender's */
int
delivery_dkim_domain(const char *msg, size_t len, const char *sender, char *out,
    size_t outlen)
{
	char *from = header_value(msg, len, "From");
	char *sndr = from != NULL ? header_value(msg, len, "Sender") : NULL;
	const char *why;
	int rc;

	rc = addrlist_author_domain(from, sndr, out, outlen, &why);
	if (rc == 0 && !domain_valid(out, 0))
		rc = -1;
	free(from);
	free(sndr);
	if (rc == 0)
		return 0;
	if (sender == NULL || *addr_domain_of(sender) == '\0')
		return -1;
	strlcpy(out, addr_domain_of(sender), outlen);
	str_lower(out);
	return 0;
}

/* key_for - the loaded key of a dkim section */
static const struct dkim_key *
key_for(const struct conf_dkim *cd)
{
	size_t i;

	for (i = 0; i < nkeys; i++)
		if (keys[i].cd == cd)
			return &keys[i];
	return NULL;
}

/* sig_prepend - "DKIM-Signature: VALUE" (folds as CRLF) before the message */
static void
sig_prepend(struct delivery_job *j, const unsigned char *sig, size_t siglen)
{
	static const char name[] = DKIM_SIGNHEADER ": ";
	size_t cap = sizeof(name) + 2 * siglen + 2 + j->msglen + 1, o, i;
	char *m = xmalloc(cap);

	memcpy(m, name, sizeof(name) - 1);
	o = sizeof(name) - 1;
	for (i = 0; i < siglen; i++) {
		if (sig[i] == '\n' && (i == 0 || sig[i - 1] != '\r'))
			m[o++] = '\r';
		m[o++] = (char)sig[i];
	}
	m[o++] = '\r';
	m[o++] = '\n';
	memcpy(m + o, j->msg, j->msglen);
	o += j->msglen;
	m[o] = '\0';
	free(j->msg);
	j->msg = m;
	j->msglen = o;
}

/* dkim_reason - libopendkim's words for a failure */
static void
dkim_reason(DKIM *d, DKIM_STAT st, char *err, size_t errlen)
{
	const char *e = d != NULL ? dkim_geterror(d) : NULL;

	snprintf(err, errlen, "%s", e != NULL && *e != '\0' ? e : dkim_getresultstr(st));
}

/* dkim_run - sign j->msg with key k for domain; 0, or with err
 * DKIM_FAIL_KEY (the key or the library: may heal) or DKIM_FAIL_CONTENT
 * (libopendkim cannot parse this message: it never will) */
static int
dkim_run(struct delivery_job *j, const struct dkim_key *k, const char *domain, char *err,
    size_t errlen)
{
	unsigned char *sig = NULL;
	size_t siglen = 0;
	DKIM_STAT st;
	DKIM *d;
	char *edsig;

	if (k->alg == DKIM_SIGN_ED25519SHA256) {
		edsig = delivery_dkim_ed25519(j->msg, j->msglen, k->pkey, domain,
		    k->cd->selector, sign_headers, canon_hdr == DKIM_CANON_RELAXED,
		    canon_body == DKIM_CANON_RELAXED);
		if (edsig == NULL) {
			snprintf(err, errlen, "ed25519 signing failed");
			return DKIM_FAIL_KEY;
		}
		sig_prepend(j, (unsigned char *)edsig, strlen(edsig));
		free(edsig);
		return 0;
	}
	d = dkim_sign(dkim_lib, (const unsigned char *)j->queueid, NULL,
	    (dkim_sigkey_t)k->pem, (const unsigned char *)k->cd->selector,
	    (const unsigned char *)domain, canon_hdr, canon_body, k->alg,
	    -1, &st);
	if (d == NULL) {
		dkim_reason(NULL, st, err, errlen);
		return DKIM_FAIL_KEY;
	}
	st = dkim_chunk(d, (unsigned char *)j->msg, j->msglen);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(d, NULL);
	if (st == DKIM_STAT_OK)
		st = dkim_getsighdr_d(d, sizeof(DKIM_SIGNHEADER ": ") - 1, &sig, &siglen);
	if (st != DKIM_STAT_OK) {
		dkim_reason(d, st, err, errlen);
		dkim_free(d);
		return st == DKIM_STAT_SYNTAX ? DKIM_FAIL_CONTENT : DKIM_FAIL_KEY;
	}
	sig_prepend(j, sig, siglen);
	dkim_free(d);
	return 0;
}

/* delivery_dkim_sign - sign the job's message with every key of its
 * domain (several selectors: one DKIM-Signature each); 0, or
 * DKIM_FAIL_KEY / DKIM_FAIL_CONTENT with err */
int
delivery_dkim_sign(struct delivery_job *j, char *err, size_t errlen)
{
	const struct conf *c = delivery_conf();
	const struct dkim_key *k;
	char domain[ADDR_DOMAIN_MAX + 1];
	size_t i;
	int r;

	if (nkeys == 0 ||
	    delivery_dkim_domain(j->msg, j->msglen, j->sender, domain, sizeof(domain)) == -1)
		return 0;
	for (i = 0; i < c->ndkim; i++) {
		if (strcasecmp(c->dkim[i].domain, domain) != 0)
			continue;
		if ((k = key_for(&c->dkim[i])) == NULL) {
			snprintf(err, errlen, "no key loaded for %s", domain);
			return DKIM_FAIL_KEY;
		}
		if ((r = dkim_run(j, k, domain, err, errlen)) != 0)
			return r;
		stats_add(&stats->dkim_signed, 1);
		log_debug("%s: signed d=%s s=%s (%s)", j->queueid, domain,
		    c->dkim[i].selector, k->alg == DKIM_SIGN_ED25519SHA256 ?
		    "ed25519-sha256" : "rsa-sha256");
	}
	return 0;
}
