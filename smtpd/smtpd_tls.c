/*
 * smtpd_tls.c - TLS for postern-smtpd: one server context per listener,
 * implicit TLS (mode smtps) and the STARTTLS upgrade of a plain session.
 *
 * Owns: smtpd.tls_ctx[] (an SSL_CTX per listener that has a certificate:
 * TLS 1.2 minimum, no compression, no renegotiation) and the switch of a
 * session from its plain bufferevent to an openssl one on the same fd.
 *
 * SECURITY: the certificate and key are read once at start-up, before
 * the privileges are dropped (the key may be readable by root only);
 * the certificate's validity dates go to the shared stats (the status
 * page shows them: httpd never reads certificate or key files); a
 * reload restarts the smtpd processes, so a new certificate is served by
 * the next process. STARTTLS (CVE-2011-0411): whatever the client
 * pipelined after the STARTTLS command is thrown away by smtpd_cmd.c
 * before the 220 is queued, and reading stays off until the 220 is
 * written; the TLS layer then reads the socket itself, so no plaintext
 * byte is ever taken for a command inside TLS. Key material never
 * reaches a log.
 *
 * STANDARDS: RFC 3207 (STARTTLS), RFC 8314 (implicit TLS for
 * submission), RFC 8996 (no TLS 1.0/1.1), RFC 3848 (trace keywords).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "stats.h"
#include "util.h"

#include "smtpd.h"

/* tls_config_error - a certificate or key problem: say which and stop
 * (a configuration error, not a crash the master should retry fast) */
static void NORETURN
tls_config_error(const char *what, const char *file, const char *listener)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, buf, sizeof(buf));
	log_warnx("listen %s: cannot use %s %s: %s", listener, what, file,
	    e ? buf : "unknown error");
	exit(EXIT_CONFIG);
}

/* tls_ctx_new - a server context for one listener's certificate and key */
static SSL_CTX *
tls_ctx_new(const struct conf_listen *l)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		fatalx("SSL_CTX_new failed");
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		fatalx("cannot set the minimum TLS version");
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* thousands of idle sessions: no 34 KiB buffers while idle */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_cert) != 1)
		tls_config_error("certificate", l->tls_cert, l->name);
	if (SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1)
		tls_config_error("key", l->tls_key, l->name);
	if (SSL_CTX_check_private_key(ctx) != 1)
		tls_config_error("key (does not match the certificate)", l->tls_key,
		    l->name);
	return ctx;
}

/* asn1_unix - an ASN.1 time as unix seconds, 0 if unreadable */
static int64_t
asn1_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

/* tls_publish_dates - the validity of listener i's certificate (none
 * when ctx is NULL) into the shared stats: the status page shows when it
 * expires */
static void
tls_publish_dates(size_t i, SSL_CTX *ctx)
{
	X509 *x = ctx != NULL ? SSL_CTX_get0_certificate(ctx) : NULL;

	if (i >= STATS_MAX_LISTENERS)
		return;
	stats_gauge_set(&stats->tls_not_before[i],
	    x != NULL ? asn1_unix(X509_get0_notBefore(x)) : 0);
	stats_gauge_set(&stats->tls_not_after[i],
	    x != NULL ? asn1_unix(X509_get0_notAfter(x)) : 0);
}

/* tls_init - a context for every listener with a certificate */
void
tls_init(void)
{
	size_t i, n = smtpd.conf->nlisten;

	smtpd.tls_ctx = xcalloc(n ? n : 1, sizeof(*smtpd.tls_ctx));
	for (i = 0; i < n; i++) {
		const struct conf_listen *l = &smtpd.conf->listen[i];

		if (l->tls_cert != NULL && *l->tls_cert != '\0') {
			smtpd.tls_ctx[i] = tls_ctx_new(l);
			log_debug("listen %s: TLS certificate %s", l->name, l->tls_cert);
		}
		tls_publish_dates(i, smtpd.tls_ctx[i]);
	}
}

/* tls_ctx_of - the context of listener i, or NULL */
static SSL_CTX *
tls_ctx_of(int i)
{
	if (smtpd.tls_ctx == NULL || i < 0 || (size_t)i >= smtpd.conf->nlisten)
		return NULL;
	return smtpd.tls_ctx[i];
}

/* tls_available - 1 if the session's listener has a certificate */
int
tls_available(const struct session *s)
{
	return tls_ctx_of(s->listener) != NULL;
}

/* tls_implicit - 1 if the listener is mode smtps (with a context) */
int
tls_implicit(int listener)
{
	return tls_ctx_of(listener) != NULL &&
	    smtpd.conf->listen[listener].mode == LISTEN_MODE_SMTPS;
}

/* tls_bev_new - an accepting openssl bufferevent on fd for listener;
 * it owns fd (closed on free) */
struct bufferevent *
tls_bev_new(int fd, int listener)
{
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = SSL_new(tls_ctx_of(listener))) == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(smtpd.base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	/* on failure libevent may already have freed ssl (it owns it with
	 * BEV_OPT_CLOSE_ON_FREE): never free it twice; only out of memory
	 * gets here */
	if (bev == NULL)
		return NULL;
	/* a client closing without close_notify is an ordinary EOF */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* tls_upgrade - STARTTLS: the 220 is written and the plain input was
 * discarded; continue on the same socket inside TLS */
void
tls_upgrade(struct session *s)
{
	struct bufferevent *bev;

	bev = tls_bev_new(s->fd, s->listener);
	if (bev == NULL) {
		log_warnx("cannot start TLS with [%s]", s->ip);
		stats_add(&stats->smtpd_tls_failed, 1);
		session_close(s);
		return;
	}
	/* the plain bufferevent does not own the fd: freeing it keeps the
	 * connection; its input is empty and reading was off */
	bufferevent_free(s->bev);
	s->flags |= SF_TLS;
	s->state = SS_COMMAND;
	session_reset_protocol(s);
	session_attach(s, bev);
}

/* tls_ssl - the SSL object of a TLS session, or NULL */
static SSL *
tls_ssl(const struct session *s)
{
	if (!(s->flags & SF_TLS))
		return NULL;
	return bufferevent_openssl_get_ssl(s->bev);
}

/* tls_version - "TLSv1.3", or "" without TLS */
const char *
tls_version(const struct session *s)
{
	SSL *ssl = tls_ssl(s);

	return ssl != NULL ? SSL_get_version(ssl) : "";
}

/* tls_describe - "TLSv1.3 with cipher NAME (256/256 bits)", or "" */
void
tls_describe(const struct session *s, char *buf, size_t len)
{
	const SSL_CIPHER *c;
	SSL *ssl = tls_ssl(s);
	int alg = 0, bits;

	if (ssl == NULL || (c = SSL_get_current_cipher(ssl)) == NULL) {
		snprintf(buf, len, "%s", "");
		return;
	}
	bits = SSL_CIPHER_get_bits(c, &alg);
	snprintf(buf, len, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
	    SSL_CIPHER_get_name(c), bits, alg);
}

/* tls_log_error - log why a TLS session failed (handshake, I/O): one line
 * per OpenSSL error. libevent also queues the SSL_get_error() value of
 * the failed call (SSL_ERROR_SSL, SSL_ERROR_SYSCALL: library 0), which
 * ERR_error_string_n would print as "error:00000001:lib(0)::reason(1)";
 * it only says which kind of failure it was when OpenSSL left nothing. */
void
tls_log_error(const struct session *s)
{
	char buf[256];
	unsigned long e;
	int logged = 0, kind = 0;

	while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
		if (ERR_GET_LIB(e) == 0) {
			kind = (int)e;
			continue;
		}
		ERR_error_string_n(e, buf, sizeof(buf));
		log_info("TLS error with [%s]: %s", s->ip, buf);
		logged = 1;
	}
	if (logged)
		return;
	if (kind == SSL_ERROR_SYSCALL)
		log_info("TLS connection with [%s] failed: connection closed or I/O error",
		    s->ip);
	else if (kind == SSL_ERROR_SSL)
		log_info("TLS connection with [%s] failed: protocol error", s->ip);
	else
		log_info("TLS connection with [%s] failed", s->ip);
}

/* tls_session_end - a session with TLS on ends: count its handshake as
 * failed if it never completed (refused certificate, protocol mismatch,
 * a client gone or timed out mid-handshake); completed ones are counted
 * by session_event_cb */
void
tls_session_end(const struct session *s)
{
	SSL *ssl = tls_ssl(s);

	if (ssl != NULL && !SSL_is_init_finished(ssl))
		stats_add(&stats->smtpd_tls_failed, 1);
}
