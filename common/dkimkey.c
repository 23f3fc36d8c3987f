/*
 * dkimkey.c - DKIM private key files: generation (RSA 2048, ed25519) and
 * the DNS TXT record that publishes the public half.
 *
 * Owns: the key file format (PKCS#8 PEM, mode 0600) and the write
 * sequence: PATH.tmp (O_CREAT|O_EXCL, 0600), write, fsync, rename.
 * SECURITY: runs in the master (before children start) and in
 * posternctl. Never logs key material; the private key buffer is freed
 * by OpenSSL (which clears it). A leftover PATH.tmp from a crash is
 * unlinked, then the new one is created O_EXCL|O_NOFOLLOW, so a planted
 * file or symlink is never written through.
 * STANDARDS: RFC 6376 3.6.1 (key record), RFC 8463 (ed25519-sha256),
 * RFC 5958 (PKCS#8), RFC 5280 (SubjectPublicKeyInfo).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dkimkey.h"
#include "util.h"

/* ssl_err - fill err with what and OpenSSL's last error */
static void
ssl_err(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s: %s", path, what, e ? buf : "unknown error");
	ERR_clear_error();
}

/* key_new - a fresh key of the given algorithm, or NULL */
static EVP_PKEY *
key_new(enum dkim_alg alg)
{
	if (alg == DKIM_ED25519)
		return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return EVP_RSA_gen(2048);
}

/* key_write_tmp - write pkey as PKCS#8 PEM into a new file tmp (0600),
 * fsync'd; 0 or -1 with err */
static int
key_write_tmp(EVP_PKEY *pkey, const char *tmp, char *err, size_t errlen)
{
	int fd;
	FILE *fp;

	/* a PATH.tmp left by a crash is ours and incomplete: remove it;
	 * O_EXCL|O_NOFOLLOW then refuse anything planted meanwhile */
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if ((fp = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "%s: fdopen: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (!PEM_write_PKCS8PrivateKey(fp, pkey, NULL, NULL, 0, NULL, NULL)) {
		ssl_err(err, errlen, "PEM_write_PKCS8PrivateKey", tmp);
		goto fail;
	}
	if (fflush(fp) == EOF || fsync(fd) == -1) {
		snprintf(err, errlen, "%s: write: %s", tmp, strerror(errno));
		goto fail;
	}
	if (fclose(fp) == EOF) {
		snprintf(err, errlen, "%s: close: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
fail:
	fclose(fp);
	unlink(tmp);
	return -1;
}

/* dir_of - the directory part of path, for fsync_dir ("." if none) */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* dkimkey_generate - new key into path (its directory created 0700 if
 * missing) via path.tmp and rename(2) */
int
dkimkey_generate(const char *path, enum dkim_alg alg, char *err, size_t errlen)
{
	EVP_PKEY *pkey;
	char *tmp, *dir;
	int r = -1;

	if ((pkey = key_new(alg)) == NULL) {
		ssl_err(err, errlen, "key generation", path);
		return -1;
	}
	tmp = xasprintf("%s.tmp", path);
	dir = dir_of(path);
	if (mkdir_p(dir, 0700) == -1) {
		snprintf(err, errlen, "%s: mkdir: %s", dir, strerror(errno));
		free(dir);
		free(tmp);
		EVP_PKEY_free(pkey);
		return -1;
	}
	if (key_write_tmp(pkey, tmp, err, errlen) == 0) {
		if (rename(tmp, path) == -1) {
			snprintf(err, errlen, "%s: rename: %s", path, strerror(errno));
			unlink(tmp);
		} else {
			(void)fsync_dir(dir);   /* best effort: the key is complete */
			r = 0;
		}
	}
	free(dir);
	free(tmp);
	EVP_PKEY_free(pkey);
	return r;
}

/* b64 - base64 without line breaks of n bytes; malloc'd */
static char *
b64(const unsigned char *p, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* pubkey_bytes - the bytes p= publishes for pkey (OPENSSL_malloc'd, *n
 * bytes): the DER SubjectPublicKeyInfo of an RSA key, the raw 32-byte
 * key of an ed25519 one (RFC 8463 4.2); NULL on failure or another type */
static unsigned char *
pubkey_bytes(EVP_PKEY *pkey, size_t *n)
{
	unsigned char *der = NULL;
	int len;

	if (EVP_PKEY_is_a(pkey, "RSA")) {
		if ((len = i2d_PUBKEY(pkey, &der)) <= 0)
			return NULL;
		*n = (size_t)len;
		return der;
	}
	if (!EVP_PKEY_is_a(pkey, "ED25519") ||
	    EVP_PKEY_get_raw_public_key(pkey, NULL, n) != 1)
		return NULL;
	der = OPENSSL_malloc(*n > 0 ? *n : 1);
	if (der == NULL || EVP_PKEY_get_raw_public_key(pkey, der, n) != 1) {
		OPENSSL_free(der);
		return NULL;
	}
	return der;
}

/* pubkey_b64 - base64 of pubkey_bytes(), or NULL */
static char *
pubkey_b64(EVP_PKEY *pkey)
{
	unsigned char *p;
	size_t n;
	char *s;

	if ((p = pubkey_bytes(pkey, &n)) == NULL)
		return NULL;
	s = b64(p, n);
	OPENSSL_free(p);
	return s;
}

/* dkimkey_fingerprint - SHA-256 of the p= bytes of pkey into md */
int
dkimkey_fingerprint(struct evp_pkey_st *pkey, unsigned char md[32])
{
	unsigned char *p;
	unsigned int len = 0;
	size_t n;
	int r;

	if ((p = pubkey_bytes(pkey, &n)) == NULL)
		return -1;
	r = EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) == 1 && len == 32 ?
	    0 : -1;
	OPENSSL_free(p);
	return r;
}

/* key_read - the private key in path, or NULL with err */
static EVP_PKEY *
key_read(const char *path, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "re");
	EVP_PKEY *pkey;

	if (fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (pkey == NULL)
		ssl_err(err, errlen, "not a PEM private key", path);
	return pkey;
}

/* dkimkey_txt - "v=DKIM1; k=rsa|ed25519; p=..." for the key in path */
char *
dkimkey_txt(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *pkey;
	char *p = NULL, *txt = NULL;
	const char *k = NULL;

	if ((pkey = key_read(path, err, errlen)) == NULL)
		return NULL;
	if (EVP_PKEY_is_a(pkey, "RSA"))
		k = "rsa";
	else if (EVP_PKEY_is_a(pkey, "ED25519"))
		k = "ed25519";
	else
		snprintf(err, errlen, "%s: key type is neither RSA nor ed25519", path);
	if (k != NULL && (p = pubkey_b64(pkey)) == NULL)
		ssl_err(err, errlen, "public key export", path);
	if (p != NULL)
		txt = xasprintf("v=DKIM1; k=%s; p=%s", k, p);
	free(p);
	EVP_PKEY_free(pkey);
	return txt;
}
