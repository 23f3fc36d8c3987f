/*
 * httpd_console.c - the operator console's tables on the status page:
 * destinations (from queued's "destinations" control command, sorted,
 * the worst first), the processes (the master's child table in the
 * shared stats) and the TLS certificates and DKIM keys in use (the facts
 * smtpd and delivery publish in the shared stats, named from httpd's own
 * configuration).
 *
 * Owns: the sort orders of the destinations table and what "worst" means:
 * a destination in backoff first, then the most messages deferred, then
 * the most deferrals and bounces in the last hour, then the most waiting.
 * SECURITY: every string is HTML-escaped (httpd_html). Without the admin
 * token (detail 0) a destination's last error is shown as its enhanced
 * status code and reason class only: remote reply texts may hold
 * addresses, and the page is readable by anyone who reaches the port.
 * httpd never reads a certificate or a key: the dates and fingerprints
 * come from the processes that loaded them.
 * STANDARDS: HTML Living Standard, RFC 3463 (status code classes),
 * RFC 6376 3.6.2.1 (the DKIM key's DNS name).
 */
#include "config.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "conf.h"
#include "dkimkey.h"
#include "httpd.h"
#include "proc.h"
#include "stats.h"
#include "util.h"

#define CONSOLE_DESTS 200       /* destination rows rendered at most */
#define CERT_WARN_DAYS 14       /* a certificate this close to expiry warns */

/* One destination row, from queued's JSON object. */
struct dest {
	json_t *o;
	json_int_t waiting, deferred, held, delivered, errors, in_flight, backoff;
	const char *key;
	const char *error_time;         /* ISO 8601, UTC: sorts as text */
};

/* How a column sorts: by name, by a number (largest first), by the time
 * of the last error (newest first); ties by name. */
enum col_kind { COL_NAME, COL_NUM, COL_TIME };

/* The sortable columns: the query value, the header, how it sorts. */
struct column {
	const char *sort;
	const char *label;
	enum col_kind kind;
	size_t off;             /* COL_NUM: the json_int_t in struct dest */
};

static const struct column columns[] = {
	{ "destination", "Destination", COL_NAME, 0 },
	{ "waiting", "Waiting", COL_NUM, offsetof(struct dest, waiting) },
	{ "deferred", "Deferred", COL_NUM, offsetof(struct dest, deferred) },
	{ "delivered", "Delivered (1 h)", COL_NUM, offsetof(struct dest, delivered) },
	{ "inuse", "In use", COL_NUM, offsetof(struct dest, in_flight) },
	{ "backoff", "Backoff until", COL_NUM, offsetof(struct dest, backoff) },
	{ "error", "Last error", COL_TIME, 0 },
};

/* the column qsort sorts by; NULL: the worst first */
static const struct column *sort_by;

/* num - the number at offset off of d */
static json_int_t
num(const struct dest *d, size_t off)
{
	return *(const json_int_t *)(const void *)((const char *)d + off);
}

/* by_num - larger first (-1), equal (0) */
static int
by_num(const struct dest *a, const struct dest *b, size_t off)
{
	json_int_t x = num(a, off), y = num(b, off);

	return x == y ? 0 : x > y ? -1 : 1;
}

/* cmp_worst - in backoff first, then by messages deferred, deferrals and
 * bounces of the hour, messages waiting */
static int
cmp_worst(const struct dest *a, const struct dest *b)
{
	static const size_t order[] = { offsetof(struct dest, deferred),
	    offsetof(struct dest, errors), offsetof(struct dest, waiting) };
	int down_a = a->backoff > 0, down_b = b->backoff > 0, c;
	size_t i;

	if (down_a != down_b)
		return down_a ? -1 : 1;
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if ((c = by_num(a, b, order[i])) != 0)
			return c;
	return 0;
}

/* qsort_cmp - the order of sort_by (or the worst first), ties by name */
static int
qsort_cmp(const void *va, const void *vb)
{
	const struct dest *a = va, *b = vb;
	int c = 0;

	if (sort_by == NULL)
		c = cmp_worst(a, b);
	else if (sort_by->kind == COL_NUM)
		c = by_num(a, b, sort_by->off);
	else if (sort_by->kind == COL_TIME)
		c = strcmp(b->error_time, a->error_time);
	return c != 0 ? c : strcmp(a->key, b->key);
}

/* jint - integer member of o, 0 when absent */
static json_int_t
jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* jstr - string member of o, "" when absent */
static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

/* dests_of - rows as an array of struct dest (malloc'd, *n of them),
 * sorted by the column called sort ("worst" or unknown: the worst first) */
static struct dest *
dests_of(json_t *rows, const char *sort, size_t *n)
{
	struct dest *d = xcalloc(json_array_size(rows) + 1, sizeof(*d));
	json_t *o;
	size_t i;

	json_array_foreach(rows, i, o) {
		d[i].o = o;
		d[i].key = jstr(o, "destination");
		d[i].waiting = jint(o, "waiting");
		d[i].deferred = jint(o, "deferred");
		d[i].held = jint(o, "held");
		d[i].delivered = jint(o, "delivered_1h");
		d[i].errors = jint(o, "deferred_1h") + jint(o, "bounced_1h");
		d[i].in_flight = jint(o, "in_flight");
		d[i].backoff = jint(o, "backoff_until");
		d[i].error_time = jstr(o, "last_error_time");
	}
	*n = json_array_size(rows);
	sort_by = NULL;
	for (i = 0; i < sizeof(columns) / sizeof(columns[0]); i++)
		if (strcmp(columns[i].sort, sort) == 0)
			sort_by = &columns[i];
	qsort(d, *n, sizeof(*d), qsort_cmp);
	return d;
}

/* dest_header - the header row: each column a link sorting by it */
static void
dest_header(struct evbuffer *out, const char *sort, int detail)
{
	size_t i;

	evbuffer_add_printf(out, "<thead><tr>");
	for (i = 0; i < sizeof(columns) / sizeof(columns[0]); i++)
		evbuffer_add_printf(out, "<th%s><a href=\"?sort=%s#destinations\">"
		    "%s</a></th>", strcmp(columns[i].sort, sort) == 0 ?
		    " aria-sort=\"descending\"" : "", columns[i].sort,
		    columns[i].label);
	evbuffer_add_printf(out, "%s</tr></thead>\n", detail ? "<th></th>" : "");
}

/* dest_error - the last error cell: the code and class, the reply text
 * too with detail */
static void
dest_error(struct evbuffer *out, const struct dest *d, int detail)
{
	const char *dsn = jstr(d->o, "last_dsn"), *err = jstr(d->o, "last_error");

	EVB_ADD(out, "<td class=\"err\">");
	if (*dsn == '\0' && *err == '\0') {
		EVB_ADD(out, "-</td>");
		return;
	}
	EVB_ADD(out, "<code>");
	httpd_html(out, dsn);
	evbuffer_add_printf(out, "</code> %s", stats_reason_name(stats_reason_of(dsn)));
	if (detail && *err != '\0') {
		EVB_ADD(out, ": <span class=\"reply\">");
		httpd_html(out, err);
		EVB_ADD(out, "</span>");
	}
	EVB_ADD(out, " ");
	httpd_time_text(out, jstr(d->o, "last_error_time"));
	EVB_ADD(out, "</td>");
}

/* dest_row - one destination */
static void
dest_row(struct evbuffer *out, const struct dest *d, int detail)
{
	evbuffer_add_printf(out, "<tr class=\"dest%s\" data-dest=\"",
	    d->backoff > 0 ? " bad" : d->deferred > 0 ? " warn" : "");
	httpd_html(out, d->key);
	EVB_ADD(out, "\"><th scope=\"row\">");
	httpd_html(out, d->key);
	evbuffer_add_printf(out, "</th><td class=\"num\">%" JSON_INTEGER_FORMAT,
	    d->waiting);
	if (d->held > 0)
		evbuffer_add_printf(out, " (%" JSON_INTEGER_FORMAT " held)", d->held);
	evbuffer_add_printf(out, "</td><td class=\"num\">%" JSON_INTEGER_FORMAT
	    "</td><td class=\"num\">%" JSON_INTEGER_FORMAT "</td><td class=\"num\">%"
	    JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT "</td><td>", d->deferred,
	    d->delivered, d->in_flight, jint(d->o, "concurrency"));
	httpd_time_text(out, jstr(d->o, "backoff_until_time"));
	EVB_ADD(out, "</td>");
	dest_error(out, d, detail);
	if (detail) {
		EVB_ADD(out, "<td><button type=\"button\" class=\"act\" "
		    "data-flush-dest=\"");
		httpd_html(out, d->key);
		EVB_ADD(out, "\">Flush</button></td>");
	}
	EVB_ADD(out, "</tr>\n");
}

/* console_destinations - the destinations table */
void
console_destinations(struct evbuffer *out, json_t *rows, const char *sort,
    int detail)
{
	struct dest *d;
	size_t n, i;

	evbuffer_add_printf(out, "<h2>Destinations</h2>\n");
	if (rows == NULL) {
		evbuffer_add_printf(out, "<p class=\"bad\" id=\"dest-none\">the queue "
		    "manager does not answer</p>\n");
		return;
	}
	d = dests_of(rows, sort, &n);
	if (n == 0)
		evbuffer_add_printf(out, "<p id=\"dest-none\">no destination has "
		    "mail waiting or was tried in the last hour</p>\n");
	else {
		evbuffer_add_printf(out, "<div class=\"scroll\"><table id=\"dest-table\">\n");
		dest_header(out, sort, detail);
		evbuffer_add_printf(out, "<tbody>\n");
		for (i = 0; i < n && i < CONSOLE_DESTS; i++)
			dest_row(out, &d[i], detail);
		evbuffer_add_printf(out, "</tbody></table></div>\n");
		if (n > CONSOLE_DESTS)
			evbuffer_add_printf(out, "<p>and %zu more (GET "
			    "/api/v1/queue/destinations lists them all)</p>\n",
			    n - CONSOLE_DESTS);
	}
	free(d);
}

/* slot_role - slot i's role if it is in use, else -1 */
static int
slot_role(size_t i)
{
	int32_t role = __atomic_load_n(&stats->child[i].role, __ATOMIC_RELAXED);

	return role > PROC_MASTER && role < PROC_ROLE_MAX ? role : -1;
}

/* console_processes - the child table: process, pid, state, uptime,
 * restarts */
void
console_processes(struct evbuffer *out)
{
	int64_t now = time(NULL), started;
	char up[32];
	int32_t pid, ready;
	size_t i;
	int role;

	evbuffer_add_printf(out, "<div class=\"scroll\"><table id=\"proc-table\">"
	    "<thead><tr><th>Process</th><th>PID</th><th>State</th><th>Uptime</th>"
	    "<th>Restarts</th></tr></thead>\n<tbody>\n");
	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		if ((role = slot_role(i)) == -1)
			continue;
		pid = __atomic_load_n(&stats->child[i].pid, __ATOMIC_RELAXED);
		ready = __atomic_load_n(&stats->child[i].up, __ATOMIC_RELAXED);
		started = stats_gauge_read(&stats->child[i].started);
		evbuffer_add_printf(out, "<tr class=\"%s\"><th scope=\"row\">%s[%d]</th>"
		    "<td class=\"num\">%d</td><td>%s</td><td>%s</td><td class=\"num\">%"
		    PRIu64 "</td></tr>\n", pid > 0 && ready == 1 ? "" : "bad",
		    proc_role_name(role), (int)stats->child[i].index, (int)pid,
		    pid > 0 && ready == 1 ? "up" : pid > 0 ? "starting" : "down",
		    pid > 0 && started > 0 ? httpd_duration(now - started, up,
		    sizeof(up)) : "-", stats_read(&stats->child[i].restarts));
	}
	evbuffer_add_printf(out, "</tbody></table></div>\n");
}

/* row_head - "<tr class=CLS><th scope=row>NAME</th>" (name escaped) */
static void
row_head(struct evbuffer *out, const char *cls, const char *name)
{
	evbuffer_add_printf(out, "<tr class=\"%s\"><th scope=\"row\">", cls);
	httpd_html(out, name);
	EVB_ADD(out, "</th>");
}

/* cell - "<td>TEXT</td>" (escaped) */
static void
cell(struct evbuffer *out, const char *text)
{
	EVB_ADD(out, "<td>");
	httpd_html(out, text);
	EVB_ADD(out, "</td>");
}

/* cert_row - listener i's certificate: name, address, file, dates */
static void
cert_row(struct evbuffer *out, size_t i, int64_t now)
{
	const struct conf_listen *l = &httpd_conf()->listen[i];
	int64_t before = stats_gauge_read(&stats->tls_not_before[i]);
	int64_t after = stats_gauge_read(&stats->tls_not_after[i]);
	char left[32];

	row_head(out, after == 0 ? "" : after <= now ? "bad" :
	    after - now < CERT_WARN_DAYS * 86400 ? "warn" : "", l->name);
	cell(out, l->address);
	cell(out, l->tls_cert);
	EVB_ADD(out, "<td>");
	httpd_time(out, before);
	EVB_ADD(out, "</td><td class=\"expiry\">");
	httpd_time(out, after);
	evbuffer_add_printf(out, "</td><td>%s</td></tr>\n", after == 0 ?
	    "not loaded yet" : after <= now ? "expired" :
	    httpd_duration(after - now, left, sizeof(left)));
}

/* console_certs - the certificates smtpd serves */
static void
console_certs(struct evbuffer *out)
{
	const struct conf *c = httpd_conf();
	int64_t now = time(NULL);
	size_t i, n = 0;

	for (i = 0; i < c->nlisten && i < STATS_MAX_LISTENERS; i++) {
		if (c->listen[i].tls_cert == NULL || *c->listen[i].tls_cert == '\0')
			continue;
		if (n++ == 0)
			evbuffer_add_printf(out, "<div class=\"scroll\"><table "
			    "id=\"tls-table\"><thead><tr><th>Listener</th><th>Address"
			    "</th><th>Certificate</th><th>Valid from</th><th>Expires"
			    "</th><th>Left</th></tr></thead>\n<tbody>\n");
		cert_row(out, i, now);
	}
	if (n == 0)
		evbuffer_add_printf(out, "<p id=\"tls-none\">no listener has a "
		    "certificate (no STARTTLS, no implicit TLS)</p>\n");
	else
		evbuffer_add_printf(out, "</tbody></table></div>\n");
}

/* key_row - dkim section i: domain, selector, DNS name, key facts */
static void
key_row(struct evbuffer *out, size_t i)
{
	const struct conf_dkim *k = &httpd_conf()->dkim[i];
	const struct stats_dkim *s = i < STATS_MAX_DKIM ? &stats->dkim[i] : NULL;
	int loaded = s != NULL && __atomic_load_n(&s->loaded, __ATOMIC_ACQUIRE) == 1;
	size_t b;

	row_head(out, loaded ? "" : "warn", k->domain);
	cell(out, k->selector);
	EVB_ADD(out, "<td><code>");
	httpd_html(out, k->selector);
	EVB_ADD(out, "._domainkey.");
	httpd_html(out, k->domain);
	EVB_ADD(out, "</code></td>");
	if (!loaded) {
		evbuffer_add_printf(out, "<td>not loaded yet</td><td>-</td></tr>\n");
		return;
	}
	evbuffer_add_printf(out, "<td>%s %d bits</td><td><code class=\"fp\">",
	    s->alg == DKIM_ED25519 ? "ed25519" : "rsa", (int)s->bits);
	for (b = 0; b < 8; b++)
		evbuffer_add_printf(out, "%02x", s->fingerprint[b]);
	evbuffer_add_printf(out, "</code></td></tr>\n");
}

/* console_tls - certificates, then DKIM keys */
void
console_tls(struct evbuffer *out)
{
	const struct conf *c = httpd_conf();
	size_t i;

	evbuffer_add_printf(out, "<h2>TLS certificates</h2>\n");
	console_certs(out);
	evbuffer_add_printf(out, "<h2>DKIM keys</h2>\n");
	if (c->ndkim == 0) {
		evbuffer_add_printf(out, "<p id=\"dkim-none\">no dkim section: "
		    "nothing is signed</p>\n");
		return;
	}
	evbuffer_add_printf(out, "<div class=\"scroll\"><table id=\"dkim-table\">"
	    "<thead><tr><th>Domain</th><th>Selector</th><th>DNS name</th>"
	    "<th>Key</th><th title=\"SHA-256 of the public key as published in "
	    "p=, first 8 bytes\">Fingerprint</th></tr></thead>\n<tbody>\n");
	for (i = 0; i < c->ndkim; i++)
		key_row(out, i);
	evbuffer_add_printf(out, "</tbody></table></div>\n");
}
