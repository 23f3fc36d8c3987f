/*
 * delivery_dkim_ed.c - ed25519-sha256 DKIM signatures (RFC 8463) made
 * with OpenSSL directly.
 *
 * Why not libopendkim: its 2.11 dkim_free() does not release the EVP_PKEY
 * and output buffer dkim_privkey_load() allocates for Ed25519 keys, so
 * every ed25519 signature leaked about 1.3 KB in a long-running worker.
 * RSA signatures stay with libopendkim (delivery_dkim.c).
 *
 * Owns: the RFC 6376 canonicalizations (simple and relaxed, header and
 * body), the selection of signed header instances (bottom-up, with From
 * oversigned), and the DKIM-Signature field layout, which follows the one
 * libopendkim writes (v, a, c, d, s, t, bh, h, b).
 * SECURITY: the private key is the EVP_PKEY parsed at start-up; never
 * logged. Works on the job's message only, bounded by its length.
 * STANDARDS: RFC 6376 3.4 (canonicalization), 3.5 (tags), 3.7 (hashes),
 * 5.4.2 (header instances); RFC 8463 (ed25519-sha256: PureEdDSA over the
 * SHA-256 of the canonicalized headers).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "util.h"

#include "delivery.h"

/* A growing byte buffer. */
struct buf {
	char *p;
	size_t len, cap;
};

/* b_add - append n bytes */
static void
b_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xreallocarray(b->p, b->cap, 1);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* b_str - append a string */
static void
b_str(struct buf *b, const char *s)
{
	b_add(b, s, strlen(s));
}

/* One header field of the message: [start, end) including its CRLF. */
struct field {
	const char *start;
	size_t len, namelen;
	int used;               /* already chosen for h= */
};

/* split_fields - the header fields; returns the body start offset */
static size_t
split_fields(const char *m, size_t len, struct field **out, size_t *nout)
{
	size_t i = 0, n = 0, cap = 16, eol;
	struct field *f = xcalloc(cap, sizeof(*f));

	while (i < len) {
		if (m[i] == '\r' && i + 1 < len && m[i + 1] == '\n') {
			i += 2;         /* the empty line: body follows */
			break;
		}
		for (eol = i; eol < len; eol++)
			if (m[eol] == '\n' && (eol + 1 >= len || (m[eol + 1] != ' ' &&
			    m[eol + 1] != '\t')))
				break;
		eol = eol < len ? eol + 1 : len;
		if (n == cap)
			f = xreallocarray(f, cap *= 2, sizeof(*f));
		f[n].start = m + i;
		f[n].len = eol - i;
		f[n].namelen = strcspn(m + i, ":\r\n");
		if (f[n].namelen > f[n].len)
			f[n].namelen = f[n].len;
		while (f[n].namelen > 0 && (m[i + f[n].namelen - 1] == ' ' ||
		    m[i + f[n].namelen - 1] == '\t'))
			f[n].namelen--;
		n++;
		i = eol;
	}
	*out = f;
	*nout = n;
	return i;
}

/* canon_header - one field, relaxed (RFC 6376 3.4.2) or simple, with CRLF
 * unless crlf is 0 (the signature field itself) */
static void
canon_header(struct buf *b, const char *s, size_t len, int relaxed, int crlf)
{
	size_t i, colon = strcspn(s, ":");
	int ws = 0;
	char c;

	if (!relaxed) {
		while (!crlf && len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
			len--;
		b_add(b, s, len);
		return;
	}
	for (i = 0; i < colon && i < len; i++)
		if (s[i] != ' ' && s[i] != '\t') {
			c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
			b_add(b, &c, 1);
		}
	b_add(b, ":", 1);
	for (i = colon + 1; i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
	    s[i] == '\n'); i++)
		;
	for (; i < len; i++) {
		if (s[i] == '\r' || s[i] == '\n')
			continue;
		if (s[i] == ' ' || s[i] == '\t') {
			ws = 1;
			continue;
		}
		if (ws)
			b_add(b, " ", 1);
		ws = 0;
		b_add(b, s + i, 1);
	}
	if (crlf)
		b_add(b, "\r\n", 2);
}

/* canon_body - the body, relaxed or simple (RFC 6376 3.4.3, 3.4.4) */
static void
canon_body(struct buf *b, const char *s, size_t len, int relaxed)
{
	size_t i = 0, eol, end, empties = 0, k;
	int ws;

	while (i < len) {
		for (eol = i; eol < len && s[eol] != '\n'; eol++)
			;
		end = eol > i && s[eol - 1] == '\r' ? eol - 1 : eol;
		if (relaxed)
			while (end > i && (s[end - 1] == ' ' || s[end - 1] == '\t'))
				end--;
		if (end == i) {
			empties++;      /* held back: trailing empty lines go */
		} else {
			for (k = 0; k < empties; k++)
				b_add(b, "\r\n", 2);
			empties = 0;
			for (ws = 0; i < end; i++) {
				if (relaxed && (s[i] == ' ' || s[i] == '\t')) {
					ws = 1;
					continue;
				}
				if (ws)
					b_add(b, " ", 1);
				ws = 0;
				b_add(b, s + i, 1);
			}
			b_add(b, "\r\n", 2);
		}
		i = eol + 1;
	}
	if (b->len == 0 && !relaxed)
		b_add(b, "\r\n", 2);
}

/* b64 - base64 of n bytes, malloc'd */
static char *
b64(const unsigned char *p, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* pick_headers - append the signed fields (bottom-up per name) to hin
 * and their names to h; From is listed once more than present */
static void
pick_headers(struct field *f, size_t nf, const char *const *names, int relaxed,
    struct buf *hin, struct buf *h)
{
	size_t i, k, nlen;

	for (i = 0; names[i] != NULL; i++) {
		nlen = strlen(names[i]);
		for (k = nf; k-- > 0;) {
			if (f[k].used || f[k].namelen != nlen ||
			    strncasecmp(f[k].start, names[i], nlen) != 0)
				continue;
			f[k].used = 1;
			canon_header(hin, f[k].start, f[k].len, relaxed, 1);
			if (h->len > 0)
				b_add(h, ":", 1);
			b_str(h, names[i]);
		}
	}
	/* oversign: a From: added later would have to match "nothing" */
	b_str(h, h->len > 0 ? ":from" : "from");
}

/* sign_hash - Ed25519 over the SHA-256 of data; base64, or NULL */
static char *
sign_hash(EVP_PKEY *key, const char *data, size_t len)
{
	unsigned char md[32], sig[64];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx;
	char *out = NULL;

	if (EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL) != 1)
		return NULL;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return NULL;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, md, sizeof(md)) == 1)
		out = b64(sig, siglen);
	EVP_MD_CTX_free(ctx);
	return out;
}

/* delivery_dkim_ed25519 - the DKIM-Signature field (without its name and
 * final CRLF, folded with CRLF TAB) for msg; malloc'd, or NULL */
char *
delivery_dkim_ed25519(const char *msg, size_t len, EVP_PKEY *key, const char *domain,
    const char *selector, const char *const *names, int hrelaxed, int brelaxed)
{
	struct buf body = { 0 }, hin = { 0 }, h = { 0 }, sig = { 0 };
	unsigned char bh[32];
	struct field *f;
	size_t nf, boff, i, n;
	char *bh64, *b, *out = NULL;

	boff = split_fields(msg, len, &f, &nf);
	canon_body(&body, msg + boff, len - boff, brelaxed);
	EVP_Digest(body.p != NULL ? body.p : "", body.len, bh, NULL, EVP_sha256(), NULL);
	bh64 = b64(bh, sizeof(bh));
	pick_headers(f, nf, names, hrelaxed, &hin, &h);
	b = xasprintf("v=1; a=ed25519-sha256; c=%s/%s; d=%s; s=%s;\r\n\tt=%lld; "
	    "bh=%s;\r\n\th=%s;\r\n\tb=", hrelaxed ? "relaxed" : "simple",
	    brelaxed ? "relaxed" : "simple", domain, selector, (long long)time(NULL),
	    bh64, h.p);
	b_str(&sig, "DKIM-Signature: ");
	b_str(&sig, b);
	canon_header(&hin, sig.p, sig.len, hrelaxed, 0);
	free(sig.p);
	sig.p = NULL;
	sig.len = sig.cap = 0;
	if ((out = sign_hash(key, hin.p != NULL ? hin.p : "", hin.len)) != NULL) {
		b_str(&sig, b);
		for (i = 0, n = strlen(out); i < n; i += 64) {
			if (i > 0)
				b_str(&sig, "\r\n\t ");
			b_add(&sig, out + i, strnlen(out + i, 64));
		}
		free(out);
		out = sig.p;
	} else
		free(sig.p);
	free(b);
	free(bh64);
	free(body.p);
	free(hin.p);
	free(h.p);
	free(f);
	return out;
}
