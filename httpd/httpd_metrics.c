/*
 * httpd_metrics.c - the Prometheus text exposition of Postern's shared
 * counters, and the child-table view behind /healthz.
 *
 * Owns: the metric family names, help texts and label sets (documented
 * in postern-httpd(8)).
 * SECURITY: reads the shared stats region only; every value it prints is
 * a number or a fixed label, never text another process wrote (the child
 * table's role is mapped through proc_role_name()).
 * STANDARDS: Prometheus text exposition format 0.0.4.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "httpd.h"
#include "proc.h"
#include "stats.h"

/* One metric family: its name, type and help line. */
struct family {
	const char *name;
	const char *type;
	const char *help;
	void (*emit)(struct evbuffer *, const char *);
};

/* slot_used - the child-table slot i holds a role */
static int
slot_used(size_t i)
{
	int32_t role = __atomic_load_n(&stats->child[i].role, __ATOMIC_RELAXED);

	return role > PROC_MASTER && role < PROC_ROLE_MAX;
}

/* slot_up - slot i's child is running and said it was ready */
static int
slot_up(size_t i)
{
	return __atomic_load_n(&stats->child[i].up, __ATOMIC_RELAXED) == 1 &&
	    __atomic_load_n(&stats->child[i].pid, __ATOMIC_RELAXED) > 0;
}

/* emit_connections - postern_connections_total */
static void
emit_connections(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s %" PRIu64 "\n", name,
	    stats_read(&stats->connections));
}

/* emit_accepted - postern_messages_accepted_total */
static void
emit_accepted(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s %" PRIu64 "\n", name,
	    stats_read(&stats->messages_accepted));
}

/* emit_rejected - postern_messages_rejected_total{reason} */
static void
emit_rejected(struct evbuffer *out, const char *name)
{
	int r;

	for (r = 0; r < REJ_MAX; r++)
		evbuffer_add_printf(out, "%s{reason=\"%s\"} %" PRIu64 "\n", name,
		    stats_reject_name(r), stats_read(&stats->rejected[r]));
}

/* emit_deliveries - postern_deliveries_total{status} */
static void
emit_deliveries(struct evbuffer *out, const char *name)
{
	int d;

	for (d = 0; d < DLV_MAX; d++)
		evbuffer_add_printf(out, "%s{status=\"%s\"} %" PRIu64 "\n", name,
		    stats_delivery_name(d), stats_read(&stats->deliveries[d]));
}

/* emit_dkim - postern_dkim_signatures_total */
static void
emit_dkim(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s %" PRIu64 "\n", name,
	    stats_read(&stats->dkim_signed));
}

/* emit_queue_messages - postern_queue_messages */
static void
emit_queue_messages(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s %" PRId64 "\n", name,
	    stats_gauge_read(&stats->queue_messages));
}

/* emit_queue_recipients - postern_queue_recipients */
static void
emit_queue_recipients(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s %" PRId64 "\n", name,
	    stats_gauge_read(&stats->queue_recipients));
}

/* emit_child_up - postern_child_up{process,index} */
static void
emit_child_up(struct evbuffer *out, const char *name)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++)
		if (slot_used(i))
			evbuffer_add_printf(out,
			    "%s{process=\"%s\",index=\"%d\"} %d\n", name,
			    proc_role_name(stats->child[i].role),
			    (int)stats->child[i].index, slot_up(i));
}

/* emit_child_restarts - postern_child_restarts_total{process,index} */
static void
emit_child_restarts(struct evbuffer *out, const char *name)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++)
		if (slot_used(i))
			evbuffer_add_printf(out,
			    "%s{process=\"%s\",index=\"%d\"} %" PRIu64 "\n", name,
			    proc_role_name(stats->child[i].role),
			    (int)stats->child[i].index,
			    stats_read(&stats->child[i].restarts));
}

/* emit_child_started - postern_child_start_time_seconds{process,index} */
static void
emit_child_started(struct evbuffer *out, const char *name)
{
	size_t i;

	for (i = 0; i < STATS_MAX_CHILDREN; i++)
		if (slot_used(i) && slot_up(i))
			evbuffer_add_printf(out,
			    "%s{process=\"%s\",index=\"%d\"} %" PRId64 "\n", name,
			    proc_role_name(stats->child[i].role),
			    (int)stats->child[i].index,
			    stats_gauge_read(&stats->child[i].started));
}

/* The label values of enum stats_http_send. */
static const char *const http_send_names[HSEND_MAX] = {
	[HSEND_ACCEPTED] = "accepted",
	[HSEND_BAD_REQUEST] = "bad_request",
	[HSEND_FORBIDDEN] = "forbidden",
	[HSEND_RATE_LIMITED] = "rate_limited",
	[HSEND_UNAVAILABLE] = "unavailable",
};

/* emit_http_send - postern_send_api_requests_total{result} */
static void
emit_http_send(struct evbuffer *out, const char *name)
{
	int r;

	for (r = 0; r < HSEND_MAX; r++)
		evbuffer_add_printf(out, "%s{result=\"%s\"} %" PRIu64 "\n", name,
		    http_send_names[r], stats_read(&stats->http_send[r]));
}

/* emit_smtpd_auth - postern_smtpd_auth_total{result} */
static void
emit_smtpd_auth(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s{result=\"success\"} %" PRIu64 "\n", name,
	    stats_read(&stats->smtpd_auth[0]));
	evbuffer_add_printf(out, "%s{result=\"failure\"} %" PRIu64 "\n", name,
	    stats_read(&stats->smtpd_auth[1]));
}

/* emit_smtpd_tls - postern_smtpd_tls_sessions_total */
static void
emit_smtpd_tls(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s %" PRIu64 "\n", name, stats_read(&stats->smtpd_tls));
}

/* emit_smtp_connections - postern_smtp_client_connections_total{how} */
static void
emit_smtp_connections(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s{how=\"opened\"} %" PRIu64 "\n", name,
	    stats_read(&stats->smtp_connections[0]));
	evbuffer_add_printf(out, "%s{how=\"reused\"} %" PRIu64 "\n", name,
	    stats_read(&stats->smtp_connections[1]));
}

/* emit_smtp_tls - postern_smtp_client_tls_sessions_total{verified} */
static void
emit_smtp_tls(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s{verified=\"yes\"} %" PRIu64 "\n", name,
	    stats_read(&stats->smtp_tls[0]));
	evbuffer_add_printf(out, "%s{verified=\"no\"} %" PRIu64 "\n", name,
	    stats_read(&stats->smtp_tls[1]));
}

/* emit_start_time - postern_start_time_seconds */
static void
emit_start_time(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s %" PRId64 "\n", name,
	    stats_gauge_read(&stats->master_started));
}

/* emit_build_info - postern_build_info{version} 1 */
static void
emit_build_info(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s{version=\"%s\"} 1\n", name, PACKAGE_VERSION);
}

static const struct family families[] = {
	{ "postern_connections_total", "counter",
	  "SMTP connections accepted.", emit_connections },
	{ "postern_messages_accepted_total", "counter",
	  "Messages accepted for delivery (250 after DATA).", emit_accepted },
	{ "postern_messages_rejected_total", "counter",
	  "Messages or recipients refused, by reason.", emit_rejected },
	{ "postern_deliveries_total", "counter",
	  "Delivery attempt outcomes per recipient, by status.", emit_deliveries },
	{ "postern_dkim_signatures_total", "counter",
	  "Messages signed with DKIM.", emit_dkim },
	{ "postern_queue_messages", "gauge",
	  "Messages in the queue.", emit_queue_messages },
	{ "postern_queue_recipients", "gauge",
	  "Recipients in the queue not yet delivered or bounced.",
	  emit_queue_recipients },
	{ "postern_child_up", "gauge",
	  "1 when the child process is running and ready.", emit_child_up },
	{ "postern_child_restarts_total", "counter",
	  "Restarts of the child process after it died.", emit_child_restarts },
	{ "postern_child_start_time_seconds", "gauge",
	  "Start time of the running child process, seconds since the epoch.",
	  emit_child_started },
	{ "postern_send_api_requests_total", "counter",
	  "Send API requests (POST /api/v1/send), by result.", emit_http_send },
	{ "postern_smtpd_auth_total", "counter",
	  "SMTP AUTH attempts that completed, by result.", emit_smtpd_auth },
	{ "postern_smtpd_tls_sessions_total", "counter",
	  "TLS handshakes completed by smtpd (STARTTLS and implicit TLS).",
	  emit_smtpd_tls },
	{ "postern_smtp_client_connections_total", "counter",
	  "Outbound SMTP connections (relay and mx), opened or reused from the "
	  "idle cache.", emit_smtp_connections },
	{ "postern_smtp_client_tls_sessions_total", "counter",
	  "Outbound TLS sessions, by whether the certificate verified.",
	  emit_smtp_tls },
	{ "postern_start_time_seconds", "gauge",
	  "Start time of the master process, seconds since the epoch.",
	  emit_start_time },
	{ "postern_build_info", "gauge",
	  "Postern version; the value is always 1.", emit_build_info },
};

/* httpd_metrics - every family with its HELP and TYPE lines */
void
httpd_metrics(struct evbuffer *out)
{
	size_t i;

	for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		const struct family *f = &families[i];

		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name,
		    f->help, f->name, f->type);
		f->emit(out, f->name);
	}
}

/* httpd_down_children - append "role[index]" of every slot not up */
size_t
httpd_down_children(json_t *array)
{
	char name[48];
	size_t i, n = 0;

	for (i = 0; i < STATS_MAX_CHILDREN; i++) {
		if (!slot_used(i) || slot_up(i))
			continue;
		snprintf(name, sizeof(name), "%s[%d]",
		    proc_role_name(stats->child[i].role), (int)stats->child[i].index);
		json_array_append_new(array, json_string(name));
		n++;
	}
	return n;
}
