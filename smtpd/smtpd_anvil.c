/*
 * smtpd_anvil.c - the per-client limits of postern-smtpd on the table
 * shared by every smtpd process (common/anvil.h): connections at once
 * per client address, MAIL commands per address per window, and the AUTH
 * lock-out after too many failures per address per window.
 *
 * Owns: this process's mapping of the table and its column (the process
 * index), and the replies and log lines of these refusals:
 *   - over smtpd_client_connection_limit, before the banner:
 *     "421 4.7.0 HOSTNAME Error: too many connections from IP", closed;
 *   - over smtpd_client_message_limit in smtpd_client_message_window, at
 *     MAIL: "450 4.7.1 Error: too much mail from IP"; the session goes on;
 *   - AUTH lock-out (auth_failure_limit in auth_failure_window): the
 *     caller, smtpd_auth.c, replies 421 4.7.0 and closes.
 * Like Postfix (smtpd_client_event_limit_exceptions = $mynetworks), the
 * clients in trusted_networks are neither counted nor limited for
 * connections and messages; the AUTH lock-out applies to everyone, since
 * a password guessed from a trusted network is as bad as any other.
 * Every MAIL command that reaches the check counts, accepted or not, as
 * Postfix's smtpd_client_message_rate_limit does. When the table has no
 * room for an address the limits fail open (and say so in the log at
 * most once a minute): a full table must never lock clients out.
 * Without a table from the master (a process started by hand) a private
 * one is made, so the limits hold per process.
 *
 * SECURITY: the table is shared with the other smtpd processes only; it
 * is keyed by the peer address of the socket, never by anything the
 * client says.
 * STANDARDS: RFC 5321 4.2.2 (421 closes, 450), RFC 3463 (4.7.0, 4.7.1).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "anvil.h"
#include "conf.h"
#include "log.h"
#include "netaddr.h"
#include "proc.h"

#include "smtpd.h"

static struct anvil *table;
static unsigned column;         /* this process's index */

/* smtpd_anvil_init - map the table the master passed, or make a private
 * one (before priv_drop) */
void
smtpd_anvil_init(int index)
{
	int fd = child_anvil_fd();

	column = index >= 0 ? (unsigned)index : ANVIL_COLUMNS;
	if (column >= ANVIL_COLUMNS)
		log_warnx("process index %d has no anvil column: connections "
		    "are not counted", index);
	if (fd >= 0 && (table = anvil_attach(fd)) != NULL)
		return;
	log_warnx("no shared per-client table (%s): limits hold per process",
	    PROC_ENV_ANVIL_FD);
	fd = anvil_create(&table);
	close(fd);      /* the mapping stays */
}

/* client_key - the session's table key; -1 if it has no IP address */
static int
client_key(const struct session *s, uint8_t key[16])
{
	return anvil_key((const struct sockaddr *)&s->ss, key);
}

/* client_exempt - trusted_networks are not counted (Postfix's default
 * smtpd_client_event_limit_exceptions = $mynetworks) */
static int
client_exempt(const struct session *s)
{
	return netlist_match(&smtpd.conf->trusted_networks,
	    (const struct sockaddr *)&s->ss);
}

/* table_full - the table had no slot: fail open, warn once a minute */
static void
table_full(const struct session *s, const char *what)
{
	if (anvil_full_warn_due(table, anvil_now()))
		log_warnx("per-client table full (%d addresses): %s from [%s] not "
		    "counted; limits fail open", ANVIL_SLOTS, what, s->ip);
}

/* smtpd_anvil_connect - count a new connection; -1 after refusing it
 * (421, closing) when the client has too many open */
int
smtpd_anvil_connect(struct session *s)
{
	unsigned limit = (unsigned)smtpd.conf->client_connection_limit, open;
	uint8_t key[16];

	if (table == NULL || limit == 0 || client_exempt(s) ||
	    client_key(s, key) == -1)
		return 0;
	switch (anvil_connect(table, key, column, limit, anvil_now(), &open)) {
	case ANVIL_OK:
		s->anvil_counted = 1;
		return 0;
	case ANVIL_FULL:
		table_full(s, "connection");
		return 0;
	case ANVIL_OVER:
		break;
	}
	session_reject(s, REJ_CONN_LIMIT, "CONNECT", NULL,
	    "421 4.7.0 %s Error: too many connections from %s",
	    smtpd.conf->hostname, s->ip);
	session_close(s);
	return -1;
}

/* smtpd_anvil_disconnect - the session ends: uncount it (every path
 * goes through session_free) */
void
smtpd_anvil_disconnect(struct session *s)
{
	uint8_t key[16];

	if (!s->anvil_counted || table == NULL || client_key(s, key) == -1)
		return;
	s->anvil_counted = 0;
	anvil_disconnect(table, key, column);
}

/* smtpd_anvil_mail - count a MAIL command; -1 after the 450 refusal
 * when the client sent too many in the window */
int
smtpd_anvil_mail(struct session *s)
{
	unsigned limit = (unsigned)smtpd.conf->client_message_limit, n;
	uint8_t key[16];

	if (table == NULL || limit == 0 || client_exempt(s) ||
	    client_key(s, key) == -1)
		return 0;
	switch (anvil_message(table, key, limit, smtpd.conf->client_message_window,
	    anvil_now(), &n)) {
	case ANVIL_OK:
		return 0;
	case ANVIL_FULL:
		table_full(s, "MAIL");
		return 0;
	case ANVIL_OVER:
		break;
	}
	log_debug("[%s] MAIL %u within %llds, limit %u", s->ip, n,
	    (long long)smtpd.conf->client_message_window, limit);
	session_reject(s, REJ_MESSAGE_RATE, "MAIL", NULL,
	    "450 4.7.1 Error: too much mail from %s", s->ip);
	return -1;
}

/* smtpd_anvil_auth_locked - 1 if the client's AUTH failures within
 * auth_failure_window reached auth_failure_limit */
int
smtpd_anvil_auth_locked(const struct session *s)
{
	int limit = smtpd.conf->auth_failure_limit;
	uint8_t key[16];

	if (table == NULL || limit <= 0 || smtpd.conf->auth_failure_window <= 0 ||
	    client_key(s, key) == -1)
		return 0;
	return anvil_auth_failures(table, key, anvil_now()) >= (unsigned)limit;
}

/* smtpd_anvil_auth_failed - one more AUTH failure for the client */
void
smtpd_anvil_auth_failed(const struct session *s)
{
	uint8_t key[16];

	if (table == NULL || smtpd.conf->auth_failure_limit <= 0 ||
	    smtpd.conf->auth_failure_window <= 0 || client_key(s, key) == -1)
		return;
	if (anvil_auth_failure(table, key, smtpd.conf->auth_failure_window,
	    anvil_now()) == ANVIL_FULL)
		table_full(s, "AUTH failure");
}
