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
	TRANSPORT_MX,           /* SMTP to the recipient domain's MX hosts */
	TRANSPORT_FILE,         /* one file per message from a name template */
	TRANSPORT_PIPE,         /* a command, message on stdin, no shell */
	TRANSPORT_HTTP,         /* POST a CloudEvents JSON document */
};

/* smtpd listener modes and AUTH policies (postern-smtpd(8)) */
enum conf_listen_mode { LISTEN_MODE_SMTP = 0, LISTEN_MODE_SMTPS };
enum conf_auth_policy { LISTEN_AUTH_OFF = 0, LISTEN_AUTH_OPTIONAL, LISTEN_AUTH_REQUIRED };
/* what a bare LF in message content is (smtpd_forbid_bare_newline;
 * BARE_LF_ALLOW is what a client in the exclusions gets) */
enum conf_bare_lf { BARE_LF_REJECT = 0, BARE_LF_NORMALIZE, BARE_LF_ALLOW };

/* smtpd_client_allow / a listener's client_allow: who may connect
 * (both empty: anyone); see postern-smtpd(8) "Ingress allow-list". */
struct conf_client_allow {
	struct netlist nets;    /* entries that are an IP address or CIDR */
	char **names;           /* host name patterns, lower-case: "mx.example.com"
	                           exact, ".example.com" its subdomains ("*."
	                           written in the file is stored as ".") */
	size_t nnames;
};

struct conf_listen {
	char *name;             /* section title */
	char *address;          /* "127.0.0.1:25", "[::1]:25", "*:25" */
	int mode;               /* enum conf_listen_mode */
	int require_tls;        /* TLS before MAIL and AUTH */
	int auth;               /* enum conf_auth_policy */
	int auth_cleartext;     /* offer AUTH without TLS */
	int submission;         /* add Date:/Message-ID: when missing */
	int debug;              /* log the whole dialogue */
	char *tls_cert;         /* resolved: the listener's or the global; "" = none */
	char *tls_key;
	struct conf_client_allow client_allow; /* empty = the global list */
	int bare_lf;            /* enum conf_bare_lf: its own, or the global */
	struct netlist bare_lf_exclusions; /* empty = the global list */
};

/* A smtp_user section or users_file line: an AUTH identity (smtpd). */
struct conf_user {
	char *name;
	char *password;         /* crypt(3) hash: $y$, $6$, $2b$ ... */
	char **domains;         /* lower-case sender domains; none = any */
	size_t ndomains;
};

struct conf_transport {
	char *name;             /* section title, referred to by routes */
	enum transport_type type;
	char *path;             /* maildir: the Maildir directory */
	char *host;             /* relay: "host:port" */
	time_t timeout;         /* relay: per-command timeout */
	/* SMTP transports (mx, relay); see postern.conf(5) */
	int port;               /* mx: the port MX hosts are reached on (25) */
	int tls;                /* enum conf_tls_level */
	int tls_implicit;       /* relay: TLS from the first byte (SMTPS) */
	char *ca_file;          /* "" = the system trust store */
	char *auth_user;        /* relay: "" = no AUTH */
	char *auth_password;    /* relay: secret, never logged */
	char *auth_password_file;
	int reuse_max;          /* messages per connection (1 = no reuse) */
	time_t reuse_idle;      /* an idle connection is closed after this */
	/* local outputs (file, pipe, http); see postern.conf(5) */
	char *name_template;    /* file: "%Y%m%d-%i.eml" under path */
	char **argv;            /* pipe: command and arguments, NULL-ended */
	size_t argc;
	char *url;              /* http: where the CloudEvent is POSTed */
	char *secret;           /* http: HMAC-SHA256 key, "" = unsigned */
};

/* A route section: recipient (and optionally sender) pattern -> transport */
struct conf_route {
	char *name;             /* section title */
	char *recipient;        /* pattern, lower-case (the title by default) */
	char *sender;           /* pattern, or "" = any sender */
	const struct conf_transport *transport;
	int line;               /* where it was defined (for posternctl route) */
};

/* TLS levels of SMTP transports and tls_policy sections */
enum conf_tls_level {
	CONF_TLS_NONE = 0,      /* never STARTTLS */
	CONF_TLS_MAY,           /* STARTTLS when offered */
	CONF_TLS_ENCRYPT,       /* STARTTLS required, certificate not checked */
	CONF_TLS_VERIFY,        /* STARTTLS required, chain and name verified */
};

/* A tls_policy section: the TLS level for one destination domain. */
struct conf_tls_policy {
	char *domain;           /* section title, lower-case */
	int level;              /* enum conf_tls_level */
	char *ca_file;          /* "" = the transport's or the system's */
};

struct conf_dkim {
	char *domain;           /* section title, lower-case */
	char *selector;
	char *key;              /* PEM private key file */
	int generate;           /* create a 2048-bit RSA key when missing */
	char *name;             /* section title (the domain unless 'domain'
	                           is set: several keys per domain) */
};

struct conf_queue {
	time_t retry_base;      /* first retry after this */
	double retry_factor;    /* each further retry waits factor x longer */
	time_t retry_cap;       /* never wait longer than this */
	double retry_jitter;    /* +- this fraction, 0 .. 1 */
	time_t lifetime;        /* then the recipient bounces */
	int concurrency;        /* deliveries in flight at once */
	int destination_concurrency; /* ... to one destination */
	int destination_rate;   /* jobs per second to one destination, 0 = any */
	time_t delay_warning;   /* DSN "delayed" after this; 0 = never */
	time_t retention;       /* keep finished files this long; 0 = not */
	int group_commit;       /* 1: commits of one loop round share a sync */
	time_t job_timeout;     /* a job unanswered this long: its delivery
	                           process is replaced, recipients deferred */
	size_t index_size;      /* the LMDB map of the queue index at start */
	size_t index_max_size;  /* ... grown at run time up to this */
	int index_high_water;   /* percent of the map: new mail refused above */
};

/* The http section: the send API, CORS and /readyz (postern-httpd(8)). */
struct conf_http {
	int send_api;           /* POST /api/v1/send and GET /api/v1/nonce */
	int compat_paths;       /* also /send, /nonce, /health (seed 000) */
	char **allow_list;      /* "user@domain" or "@domain", lower-case */
	size_t nallow_list;
	char *sender;           /* From: and envelope sender */
	time_t rate_limit;      /* one send per client IP per this; 0 = off */
	size_t max_body;        /* bytes of body (and html) */
	char *client_ip_header; /* "" = the peer address only */
	struct netlist trusted_proxies; /* peers whose header is believed */
	int require_nonce;
	char *nonce_secret;     /* secret, never logged */
	time_t nonce_max_age;
	char **cors_origins;    /* "https://site.example" or "*" */
	size_t ncors_origins;
	size_t ready_min_free;  /* /readyz: bytes free on spool_dir */
	char *admin_token;      /* bearer token of /api/v1/events; "" = off */
	size_t history_size;    /* samples in each ring of the status page */
	time_t history_step;    /* seconds between samples (the fine ring) */
};

struct conf {
	char *path;             /* file it was read from */

	char *hostname;         /* greeting, Received:, EHLO */
	char *user;             /* unprivileged user when started as root */
	char *spool_dir;
	char *run_dir;          /* pid file */
	char *control_socket;   /* queue control socket; default
	                           RUN_DIR/control.sock */
	char *libexec_dir;      /* where postern-smtpd etc. live */
	int log_level;          /* enum log_level */
	char *log_file;         /* "" = syslog (or stderr with -f) */
	size_t log_file_size_limit; /* rotate past this many bytes, 0 = never */
	int log_file_keep;      /* numbered files kept by that rotation */
	int log_format;         /* enum log_format: stderr and log_file lines */
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
	int hopcount_limit;     /* most Received: fields of a message (loops) */
	time_t smtpd_timeout;   /* idle time per command */
	time_t smtpd_data_timeout; /* a whole DATA/BDAT phase, 0 = no bound */
	char *tls_cert;         /* smtpd server certificate (PEM chain), "" = none */
	char *tls_key;          /* its private key (PEM) */
	char *users_file;       /* "name:hash:dom1,dom2" lines, "" = none */
	int received_show_auth; /* name the AUTH user in Received: */
	int auth_failure_limit; /* AUTH failures per client IP, 0 = no lock-out */
	time_t auth_failure_window; /* ... counted over this long */
	int client_connection_limit; /* connections at once per client IP,
	                                0 = no limit (common/anvil.h) */
	int client_message_limit;    /* MAIL commands per client IP per
	                                window, 0 = no limit */
	time_t client_message_window; /* ... that window */
	struct conf_user *users;        /* smtp_user sections, then users_file */
	size_t nusers;
	struct conf_client_allow client_allow; /* smtpd_client_allow */
	int sender_local_only;  /* unauthenticated, untrusted: MAIL FROM a
	                           relay domain, the hostname or <> only */
	int bare_lf;            /* smtpd_forbid_bare_newline (conf_bare_lf) */
	struct netlist bare_lf_exclusions; /* ..._exclusions */

	struct conf_queue queue;

	struct conf_transport *transport;
	size_t ntransport;
	struct conf_transport *default_transport; /* points into transport */

	struct conf_dkim *dkim;
	size_t ndkim;

	char *dns_server;       /* "IP:PORT" for MX lookups; "" = system */
	time_t dns_timeout;     /* per DNS try (two tries) */
	struct conf_tls_policy *tls_policy;
	size_t ntls_policy;

	struct conf_route *route;       /* in file order; see route.h */
	size_t nroute;
	char *dkim_canon;       /* "relaxed/relaxed" (header/body) */
	int dkim_unsignable_bounce; /* content the signer cannot parse:
	                               1 bounce, 0 deliver unsigned */
	char **dkim_headers;    /* signed when present; NULL-ended */
	size_t ndkim_headers;
	struct conf_http http;  /* the http section (postern-httpd) */
};

/* conf_transport_type_name - "maildir", "relay", "mx", ... */
const char *conf_transport_type_name(enum transport_type type);

/* conf_load - parse path; NULL on error with the message in err (one
 * line, "FILE:LINE: ..."). */
struct conf *conf_load(const char *path, char *err, size_t errlen);
/* conf_free - release everything; *cp = NULL */
void conf_free(struct conf **cp);
/* conf_dkim_for - the DKIM entry for a domain (case-insensitive), or NULL */
const struct conf_dkim *conf_dkim_for(const struct conf *c, const char *domain);
/* conf_tls_policy_for - the tls_policy section of a domain, or NULL */
const struct conf_tls_policy *conf_tls_policy_for(const struct conf *c,
    const char *domain);
/* conf_user_find - the AUTH user called name (exact), or NULL */
const struct conf_user *conf_user_find(const struct conf *c, const char *name);
/* conf_is_relay_domain - 1 if domain is listed in relay_domains */
int conf_is_relay_domain(const struct conf *c, const char *domain);
/* conf_client_allow_for - the allow-list of listener i: its own when
 * it has entries, else the global one (maybe empty: anyone) */
const struct conf_client_allow *conf_client_allow_for(const struct conf *c,
    size_t i);
/* conf_bare_lf_for - how listener i treats a bare LF from a client at
 * sa: its (or the global) smtpd_forbid_bare_newline, or BARE_LF_ALLOW
 * when sa lies in its (or the global) exclusions */
enum conf_bare_lf conf_bare_lf_for(const struct conf *c, size_t i,
    const struct sockaddr *sa);
/* conf_dump - print the effective configuration (posternctl) */
void conf_dump(const struct conf *c, FILE *fp);

/* parse_duration, parse_size - the value syntaxes above; 0 or -1 */
int parse_duration(const char *s, time_t *out);
int parse_size(const char *s, size_t *out);

#endif
