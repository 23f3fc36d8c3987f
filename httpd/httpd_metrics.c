/*
 * httpd_metrics.c - the Prometheus text exposition of Postern's shared
 * counters, and the child-table view behind /healthz.
 *
 * Owns: the metric family names, help texts and label sets (documented
 * in postern-httpd(8)).
 * Label sets are fixed (enums of common/stats.h, the transport types of
 * conf.h) except the listener names, which come from httpd's own copy of
 * the configuration (listen sections, in order, as smtpd counts them).
 * SECURITY: reads the shared stats region only; every value it prints is
 * a number or a fixed label, never text another process wrote (the child
 * table's role is mapped through proc_role_name()); listener names are
 * escaped as label values.
 * STANDARDS: Prometheus text exposition format 0.0.4.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "conf.h"
#include "httpd.h"
#include "proc.h"
#include "stats.h"
#include "util.h"

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

/* emit_rejected - postern_smtpd_rejections_total{reason} */
static void
emit_rejected(struct evbuffer *out, const char *name)
{
	int r;

	for (r = 0; r < REJ_MAX; r++)
		evbuffer_add_printf(out, "%s{reason=\"%s\"} %" PRIu64 "\n", name,
		    stats_reject_name(r), stats_read(&stats->rejected[r]));
}

/* label_escape - v as a label value: backslash, quote and newline
 * escaped, cut to fit buf */
static const char *
label_escape(char *buf, size_t len, const char *v)
{
	size_t o = 0;

	for (; *v != '\0' && o + 3 < len; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			buf[o++] = '\\';
			buf[o++] = *v == '\n' ? 'n' : *v;
		} else
			buf[o++] = *v;
	}
	buf[o] = '\0';
	return buf;
}

/* listener_count - how many listeners smtpd counts (conf order) */
static size_t
listener_count(const struct conf *c)
{
	return c->nlisten < STATS_MAX_LISTENERS ? c->nlisten : STATS_MAX_LISTENERS;
}

/* emit_listener_sessions - postern_smtpd_sessions_total{listener} */
static void
emit_listener_sessions(struct evbuffer *out, const char *name)
{
	const struct conf *c = httpd_conf();
	char l[256];
	size_t i;

	for (i = 0; i < listener_count(c); i++)
		evbuffer_add_printf(out, "%s{listener=\"%s\"} %" PRIu64 "\n", name,
		    label_escape(l, sizeof(l), c->listen[i].name),
		    stats_read(&stats->listener_sessions[i]));
}

/* emit_listener_active - postern_smtpd_sessions{listener}: the sum of
 * the smtpd processes' rows */
static void
emit_listener_active(struct evbuffer *out, const char *name)
{
	const struct conf *c = httpd_conf();
	char l[256];
	int64_t open;
	size_t i, p;

	for (i = 0; i < listener_count(c); i++) {
		for (open = 0, p = 0; p < STATS_MAX_SMTPD; p++)
			open += stats_gauge_read(&stats->smtpd_listener_active[p][i]);
		evbuffer_add_printf(out, "%s{listener=\"%s\"} %" PRId64 "\n", name,
		    label_escape(l, sizeof(l), c->listen[i].name), open);
	}
}

/* emit_smtpd_handshakes - postern_smtpd_tls_handshakes_total{result} */
static void
emit_smtpd_handshakes(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s{result=\"ok\"} %" PRIu64 "\n", name,
	    stats_read(&stats->smtpd_tls));
	evbuffer_add_printf(out, "%s{result=\"failed\"} %" PRIu64 "\n", name,
	    stats_read(&stats->smtpd_tls_failed));
}

/* emit_client_handshakes - postern_smtp_client_tls_handshakes_total{result} */
static void
emit_client_handshakes(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s{result=\"ok\"} %" PRIu64 "\n", name,
	    stats_read(&stats->smtp_tls[0]) + stats_read(&stats->smtp_tls[1]));
	evbuffer_add_printf(out, "%s{result=\"failed\"} %" PRIu64 "\n", name,
	    stats_read(&stats->smtp_tls_failed));
}

/* emit_deliveries - postern_deliveries_total{transport,status}: every
 * transport type, every status */
static void
emit_deliveries(struct evbuffer *out, const char *name)
{
	const char *t;
	int i, d;

	for (i = 1; i < STATS_TRANSPORT_MAX; i++) {
		if (strcmp(t = conf_transport_type_name(i), "unknown") == 0)
			continue;
		for (d = 0; d < DLV_MAX; d++)
			evbuffer_add_printf(out,
			    "%s{transport=\"%s\",status=\"%s\"} %" PRIu64 "\n", name,
			    t, stats_delivery_name(d),
			    stats_read(&stats->transport_deliveries[i][d]));
	}
}

/* emit_deferrals - postern_deferrals_total{reason} (never "expired") */
static void
emit_deferrals(struct evbuffer *out, const char *name)
{
	int r;

	for (r = 0; r < SREASON_MAX; r++)
		if (r != SREASON_EXPIRED)
			evbuffer_add_printf(out, "%s{reason=\"%s\"} %" PRIu64 "\n",
			    name, stats_reason_name(r),
			    stats_read(&stats->deferrals[r]));
}

/* emit_bounces - postern_bounces_total{reason} */
static void
emit_bounces(struct evbuffer *out, const char *name)
{
	int r;

	for (r = 0; r < SREASON_MAX; r++)
		evbuffer_add_printf(out, "%s{reason=\"%s\"} %" PRIu64 "\n", name,
		    stats_reason_name(r), stats_read(&stats->bounces[r]));
}

/* emit_dsn - postern_dsn_messages_total{action} */
static void
emit_dsn(struct evbuffer *out, const char *name)
{
	int a;

	for (a = 0; a < SDSN_MAX; a++)
		evbuffer_add_printf(out, "%s{action=\"%s\"} %" PRIu64 "\n", name,
		    stats_dsn_name(a), stats_read(&stats->dsn_messages[a]));
}

/* emit_link_violations - postern_queue_link_violations_total{process}:
 * the receivers, whose links to queued are untrusted */
static void
emit_link_violations(struct evbuffer *out, const char *name)
{
	static const enum proc_role roles[] = { PROC_SMTPD, PROC_HTTPD };
	size_t i;

	for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		evbuffer_add_printf(out, "%s{process=\"%s\"} %" PRIu64 "\n", name,
		    proc_role_name(roles[i]),
		    stats_read(&stats->link_violations[roles[i]]));
}

/* emit_dns - postern_dns_lookups_total{type,result} */
static void
emit_dns(struct evbuffer *out, const char *name)
{
	int t, r;

	for (t = 0; t < SDNS_MAX; t++)
		for (r = 0; r < SDNS_RESULT_MAX; r++)
			evbuffer_add_printf(out,
			    "%s{type=\"%s\",result=\"%s\"} %" PRIu64 "\n", name,
			    stats_dns_type_name(t), stats_dns_result_name(r),
			    stats_read(&stats->dns_lookups[t][r]));
}

/* emit_dkim - postern_dkim_signatures_total */
static void
emit_dkim(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s %" PRIu64 "\n", name,
	    stats_read(&stats->dkim_signed));
}

/* emit_dkim_unsignable - postern_dkim_unsignable_total */
static void
emit_dkim_unsignable(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s %" PRIu64 "\n", name,
	    stats_read(&stats->dkim_unsignable));
}

/* emit_queue_messages - postern_queue_messages{state} */
static void
emit_queue_messages(struct evbuffer *out, const char *name)
{
	int q;

	for (q = 0; q < SQUEUE_MAX; q++)
		evbuffer_add_printf(out, "%s{state=\"%s\"} %" PRId64 "\n", name,
		    stats_queue_state_name(q),
		    stats_gauge_read(&stats->queue_state[q]));
}

/* emit_queue_oldest - postern_queue_oldest_message_age_seconds: now
 * minus the arrival of the oldest message, 0 when the queue is empty */
static void
emit_queue_oldest(struct evbuffer *out, const char *name)
{
	int64_t oldest = stats_gauge_read(&stats->queue_oldest_ms);
	int64_t now = (int64_t)now_real_ms(), age;

	age = oldest > 0 && now > oldest ? now - oldest : 0;
	evbuffer_add_printf(out, "%s %" PRId64 ".%03d\n", name, age / 1000,
	    (int)(age % 1000));
}

/* emit_index_used - postern_queue_index_used_bytes */
static void
emit_index_used(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s %" PRId64 "\n", name,
	    stats_gauge_read(&stats->queue_index_used));
}

/* emit_index_size - postern_queue_index_size_bytes */
static void
emit_index_size(struct evbuffer *out, const char *name)
{
	evbuffer_add_printf(out, "%s %" PRId64 "\n", name,
	    stats_gauge_read(&stats->queue_index_size));
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
	{ "postern_smtpd_sessions_total", "counter",
	  "SMTP sessions started, by listener.", emit_listener_sessions },
	{ "postern_smtpd_sessions", "gauge",
	  "SMTP sessions open now, by listener.", emit_listener_active },
	{ "postern_messages_accepted_total", "counter",
	  "Messages accepted for delivery (250 after DATA).", emit_accepted },
	{ "postern_smtpd_rejections_total", "counter",
	  "Connections, commands and messages refused by smtpd, by reason.",
	  emit_rejected },
	{ "postern_deliveries_total", "counter",
	  "Delivery attempt outcomes per recipient, by transport type and "
	  "status.", emit_deliveries },
	{ "postern_deferrals_total", "counter",
	  "Recipients deferred by a delivery attempt, by reason.",
	  emit_deferrals },
	{ "postern_bounces_total", "counter",
	  "Recipients bounced, by reason.", emit_bounces },
	{ "postern_dsn_messages_total", "counter",
	  "Delivery status notifications queued, by action.", emit_dsn },
	{ "postern_dkim_signatures_total", "counter",
	  "Messages signed with DKIM.", emit_dkim },
	{ "postern_dkim_unsignable_total", "counter",
	  "Messages whose content the DKIM signer cannot parse (delivered "
	  "unsigned or bounced, dkim_unsignable).", emit_dkim_unsignable },
	{ "postern_queue_messages", "gauge",
	  "Messages in the queue, by state.", emit_queue_messages },
	{ "postern_queue_recipients", "gauge",
	  "Recipients in the queue not yet delivered or bounced.",
	  emit_queue_recipients },
	{ "postern_queue_oldest_message_age_seconds", "gauge",
	  "Age of the oldest message in the queue; 0 when it is empty.",
	  emit_queue_oldest },
	{ "postern_queue_index_used_bytes", "gauge",
	  "Bytes of the queue index's LMDB map in use.", emit_index_used },
	{ "postern_queue_index_size_bytes", "gauge",
	  "Size of the queue index's LMDB map (queue.index_size, grown up to "
	  "queue.index_max_size).", emit_index_size },
	{ "postern_dns_lookups_total", "counter",
	  "DNS lookups, by record type and result.", emit_dns },
	{ "postern_child_up", "gauge",
	  "1 when the child process is running and ready.", emit_child_up },
	{ "postern_child_restarts_total", "counter",
	  "Restarts of the child process after it died.", emit_child_restarts },
	{ "postern_queue_link_violations_total", "counter",
	  "Links to queued closed because the child broke the protocol, by "
	  "process.", emit_link_violations },
	{ "postern_child_start_time_seconds", "gauge",
	  "Start time of the running child process, seconds since the epoch.",
	  emit_child_started },
	{ "postern_send_api_requests_total", "counter",
	  "Send API requests (POST /api/v1/send), by result.", emit_http_send },
	{ "postern_smtpd_auth_total", "counter",
	  "SMTP AUTH attempts that completed, by result.", emit_smtpd_auth },
	{ "postern_smtpd_tls_handshakes_total", "counter",
	  "TLS handshakes of smtpd (STARTTLS and implicit TLS), by result.",
	  emit_smtpd_handshakes },
	{ "postern_smtpd_tls_sessions_total", "counter",
	  "TLS handshakes completed by smtpd (STARTTLS and implicit TLS).",
	  emit_smtpd_tls },
	{ "postern_smtp_client_connections_total", "counter",
	  "Outbound SMTP connections (relay and mx), opened or reused from the "
	  "idle cache.", emit_smtp_connections },
	{ "postern_smtp_client_tls_handshakes_total", "counter",
	  "Outbound TLS handshakes (relay and mx), by result.",
	  emit_client_handshakes },
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
