/*
 * conf.h - the one typed configuration of Postern (STYLE 13).
 *
 * conf_load() parses postern.conf with libconfuse into struct conf, with a
 * default and a validator for every option. Errors name the file, the
 * line, the option and what was expected:
 *     postern.conf:12: option 'max_message_size': expected a size such as
 *     10M, got 'ten'
 * Durations are "30s", "5m", "2h", "5d" (a bare number is seconds); sizes
 * are "512", "64K", "10M", "1G". Every option is documented in
 * conf/postern.conf and man/postern.conf.5; t/ checks that they agree.
 */
#ifndef POSTERN_CONF_H
#define POSTERN_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "netaddr.h"

enum transport_type {
	TRANSPORT_MAILDIR = 1,  /* write into a Maildir's new/ */
	TRANSPORT_RELAY,        /* SMTP to a fixed smarthost host:port */
};

struct conf_listen {
	char *name;             /* section title */
	char *address;          /* "127.0.0.1:25", "[::1]:25", "*:25" */
};

struct conf_transport {
	char *name;             /* section title, referred to by routes */
	enum transport_type type;
	char *path;             /* maildir: the Maildir directory */
	char *host;             /* relay: "host:port" */
	time_t timeout;         /* relay: per-command timeout */
};

struct conf_dkim {
	char *domain;           /* section title, lower-case */
	char *selector;
	char *key;              /* PEM private key file */
	int generate;           /* create a 2048-bit RSA key when missing */
};

struct conf_queue {
	time_t retry_base;      /* first retry after this */
	double retry_factor;    /* each further retry waits factor x longer */
	time_t retry_cap;       /* never wait longer than this */
	double retry_jitter;    /* +- this fraction, 0 .. 1 */
	time_t lifetime;        /* then the recipient bounces */
	int concurrency;        /* deliveries in flight at once */
};

struct conf {
	char *path;             /* file it was read from */

	char *hostname;         /* greeting, Received:, EHLO */
	char *user;             /* unprivileged user when started as root */
	char *spool_dir;
	char *run_dir;          /* pid file */
	char *libexec_dir;      /* where postern-smtpd etc. live */
	int log_level;          /* enum log_level */
	int smtpd_processes;
	int delivery_processes;
	time_t shutdown_timeout;

	struct conf_listen *listen;
	size_t nlisten;
	char *http_listen;      /* "" = no HTTP listener */

	struct netlist trusted_networks;
	char **relay_domains;   /* lower-case */
	size_t nrelay_domains;
	size_t max_message_size;
	int max_recipients;
	time_t smtpd_timeout;   /* idle time per command */

	struct conf_queue queue;

	struct conf_transport *transport;
	size_t ntransport;
	struct conf_transport *default_transport; /* points into transport */

	struct conf_dkim *dkim;
	size_t ndkim;
};

/* conf_load - parse path; NULL on error with the message in err (one
 * line, "FILE:LINE: ..."). */
struct conf *conf_load(const char *path, char *err, size_t errlen);
/* conf_free - release everything; *cp = NULL */
void conf_free(struct conf **cp);
/* conf_dkim_for - the DKIM entry for a domain (case-insensitive), or NULL */
const struct conf_dkim *conf_dkim_for(const struct conf *c, const char *domain);
/* conf_is_relay_domain - 1 if domain is listed in relay_domains */
int conf_is_relay_domain(const struct conf *c, const char *domain);
/* conf_dump - print the effective configuration (posternctl) */
void conf_dump(const struct conf *c, FILE *fp);

/* parse_duration, parse_size - the value syntaxes above; 0 or -1 */
int parse_duration(const char *s, time_t *out);
int parse_size(const char *s, size_t *out);

#endif
