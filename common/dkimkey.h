/*
 * dkimkey.h - DKIM key files: generation and the DNS record to publish.
 *
 * Used by the master (the quick start's development key, 'generate = yes'),
 * by posternctl dkim-generate, and by delivery for the fingerprint of
 * each loaded key that the status page shows. Keys are written mode 0600 through a
 * temporary file and rename(2).
 * STANDARDS: RFC 6376 3.6.1 (the TXT record), RFC 8463 (ed25519).
 */
#ifndef POSTERN_DKIMKEY_H
#define POSTERN_DKIMKEY_H

#include <stddef.h>

enum dkim_alg { DKIM_RSA = 0, DKIM_ED25519 };

/* dkimkey_generate - write a new key to path (RSA 2048 or ed25519);
 * 0, or -1 with err filled */
int dkimkey_generate(const char *path, enum dkim_alg alg, char *err, size_t errlen);
/* dkimkey_txt - the TXT record value ("v=DKIM1; k=rsa; p=...") for the
 * private key in path; malloc'd string, or NULL with err filled */
char *dkimkey_txt(const char *path, char *err, size_t errlen);
/* dkimkey_fingerprint - SHA-256 of what p= publishes for the key (an
 * EVP_PKEY: the DER SubjectPublicKeyInfo of an RSA key, the raw ed25519
 * key) into md; 0, or -1 if the key is neither */
struct evp_pkey_st;
int dkimkey_fingerprint(struct evp_pkey_st *pkey, unsigned char md[32]);

#endif
