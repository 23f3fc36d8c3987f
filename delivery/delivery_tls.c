/*
 * delivery_tls.c - TLS for the outbound SMTP client: client contexts and
 * what a finished handshake proved.
 *
 * Owns: one SSL_CTX per trust anchor set (the system store, or one
 * `ca_file`), made on first use and kept for the life of the process;
 * the per-connection SSL with SNI and the name the certificate must
 * carry; the one-line description of a session that the delivery log
 * carries ("TLSv1.3 cipher=... verified=yes").
 * Handshakes never fail on the certificate itself (SSL_VERIFY_NONE): the
 * caller reads the verification result and decides by its TLS level
 * (may and encrypt accept any certificate, verify defers), so an
 * opportunistic session is still encrypted against a self-signed peer.
 * SECURITY: runs unprivileged; reads CA files only (no private keys);
 * the peer certificate is untrusted input parsed by OpenSSL; TLS 1.2 is
 * the minimum version.
 * STANDARDS: RFC 3207 (STARTTLS), RFC 8314 (implicit TLS), RFC 6125
 * (name checks, via X509_VERIFY_PARAM), RFC 6066 (SNI).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "util.h"

#include "delivery.h"

#define TLS_CTX_MAX 16          /* distinct ca_file values we keep */

/* The client contexts, by ca_file ("" = the system store). */
static struct {
	char *ca_file;
	SSL_CTX *ctx;
} ctxs[TLS_CTX_MAX];

/* tls_err - the last OpenSSL error as text into err */
static void
tls_err(const char *what, char *err, size_t errlen)
{
	char buf[200];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, e != 0 ? buf : "unknown error");
	ERR_clear_error();
}

/* tls_ctx - the context trusting ca_file (made once), or NULL with err */
static SSL_CTX *
tls_ctx(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	size_t i;
	int ok;

	for (i = 0; i < TLS_CTX_MAX && ctxs[i].ctx != NULL; i++)
		if (strcmp(ctxs[i].ca_file, ca_file) == 0)
			return ctxs[i].ctx;
	if (i == TLS_CTX_MAX) {
		snprintf(err, errlen, "too many distinct ca_file values");
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_err("SSL_CTX_new", err, errlen);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	ok = *ca_file != '\0' ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		tls_err(*ca_file != '\0' ? ca_file : "the system trust store", err, errlen);
		SSL_CTX_free(ctx);
		return NULL;
	}
	ctxs[i].ca_file = xstrdup(ca_file);
	ctxs[i].ctx = ctx;
	return ctx;
}

/* delivery_tls_new - a client SSL for host */
SSL *
delivery_tls_new(const char *ca_file, const char *host, char *err, size_t errlen)
{
	SSL_CTX *ctx = tls_ctx(ca_file != NULL ? ca_file : "", err, errlen);
	unsigned char a[16];
	SSL *ssl;
	int ip;

	if (ctx == NULL)
		return NULL;
	if ((ssl = SSL_new(ctx)) == NULL) {
		tls_err("SSL_new", err, errlen);
		return NULL;
	}
	ip = inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
	if (ip) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
	} else {
		SSL_set_tlsext_host_name(ssl, host);
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(ssl, host) != 1) {
			tls_err("SSL_set1_host", err, errlen);
			SSL_free(ssl);
			return NULL;
		}
	}
	return ssl;
}

/* delivery_tls_describe - version, cipher and verification of a session */
int
delivery_tls_describe(SSL *ssl, char *buf, size_t len)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);
	long vr = SSL_get_verify_result(ssl);
	int ok = peer != NULL && vr == X509_V_OK;

	snprintf(buf, len, "%s cipher=%s verified=%s%s%s", SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl), ok ? "yes" : "no", ok ? "" : " ",
	    ok ? "" : peer == NULL ? "(no certificate)" : X509_verify_cert_error_string(vr));
	return ok;
}
