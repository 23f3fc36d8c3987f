/*
 * httpd_history.c - the history behind the status page's charts and
 * GET /api/v1/stats/history: every http.history_step a sample of the
 * shared counters that /metrics exports (messages accepted, deliveries,
 * deferrals and bounces during the step; the queue by state and the age
 * of its oldest message at its end) goes into a fine ring, and every
 * HISTORY_COARSE fine samples their sum into a coarse ring. Both hold
 * http.history_size samples, allocated at start: memory never grows.
 *
 * Owns: the two rings, the accumulator of the coarse step, the counters
 * read at the last step (the deltas' base) and the sampling timer.
 * SECURITY: reads the shared stats region only (nothing is counted here;
 * the figures are those of /metrics) and replies with numbers.
 * STANDARDS: RFC 8259 (JSON), RFC 9110.
 */
#include "config.h"

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "httpd.h"
#include "log.h"
#include "stats.h"
#include "util.h"

/* The names of the counters and gauges of a sample, in JSON. */
static const char *const counter_names[RC_MAX] = {
	"accepted", "delivered", "deferred", "bounced",
};

static struct {
	struct ring fine, coarse;
	struct ring_acc acc;
	struct ring_sample last;        /* cumulative counters at the last step */
	time_t step;
	struct event *ev;
} hist;

/* history_read - the counters (cumulative) and gauges now */
void
history_read(struct ring_sample *s)
{
	int64_t oldest = stats_gauge_read(&stats->queue_oldest_ms);
	int64_t now_ms = (int64_t)now_real_ms();
	int q;

	memset(s, 0, sizeof(*s));
	s->t = now_ms / 1000;
	s->c[RC_ACCEPTED] = stats_read(&stats->messages_accepted) +
	    stats_read(&stats->http_send[HSEND_ACCEPTED]);
	s->c[RC_DELIVERED] = stats_read(&stats->deliveries[DLV_DELIVERED]);
	s->c[RC_DEFERRED] = stats_read(&stats->deliveries[DLV_DEFERRED]);
	s->c[RC_BOUNCED] = stats_read(&stats->deliveries[DLV_BOUNCED]);
	for (q = 0; q < SQUEUE_MAX && q < RG_OLDEST_AGE; q++)
		s->g[q] = stats_gauge_read(&stats->queue_state[q]);
	s->g[RG_OLDEST_AGE] = oldest > 0 && now_ms > oldest ?
	    (now_ms - oldest) / 1000 : 0;
}

/* history_tick - one step: the deltas since the last one, the gauges */
static void
history_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ring_sample now, d;
	int i;

	history_read(&now);
	d = now;
	for (i = 0; i < RC_MAX; i++)
		d.c[i] = now.c[i] >= hist.last.c[i] ? now.c[i] - hist.last.c[i] : 0;
	hist.last = now;
	ring_push(&hist.fine, &d);
	ring_acc_add(&hist.acc, &d, HISTORY_COARSE, &hist.coarse);
}

/* history_init - empty rings, the base counters, the timer */
void
history_init(struct event_base *base, const struct conf *c)
{
	struct timeval tv = { c->http.history_step, 0 };

	hist.step = c->http.history_step;
	ring_init(&hist.fine, c->http.history_size);
	ring_init(&hist.coarse, c->http.history_size);
	history_read(&hist.last);
	hist.ev = event_new(base, -1, EV_PERSIST, history_tick, NULL);
	if (hist.ev == NULL || event_add(hist.ev, &tv) == -1)
		fatalx("cannot start the history timer");
}

/* history_fine, history_coarse - the rings; history_step - the fine step */
const struct ring *
history_fine(void)
{
	return &hist.fine;
}

const struct ring *
history_coarse(void)
{
	return &hist.coarse;
}

time_t
history_step(void)
{
	return hist.step;
}

/* sample_json - one sample as a JSON object */
static json_t *
sample_json(const struct ring_sample *s)
{
	json_t *o = json_object(), *q = json_object();
	int i;

	json_object_set_new(o, "time", json_integer(s->t));
	for (i = 0; i < RC_MAX; i++)
		json_object_set_new(o, counter_names[i], json_integer((json_int_t)s->c[i]));
	for (i = 0; i < SQUEUE_MAX && i < RG_OLDEST_AGE; i++)
		json_object_set_new(q, stats_queue_state_name(i), json_integer(s->g[i]));
	json_object_set_new(o, "queue", q);
	json_object_set_new(o, "oldest_age", json_integer(s->g[RG_OLDEST_AGE]));
	return o;
}

/* ring_json - {"step", "span", "samples": [oldest ... newest]} */
static json_t *
ring_json(const struct ring *r, time_t step)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < ring_len(r); i++)
		json_array_append_new(a, sample_json(ring_get(r, i)));
	return json_pack("{s:I, s:I, s:o}", "step", (json_int_t)step, "span",
	    (json_int_t)step * (json_int_t)r->cap, "samples", a);
}

/* history_route - GET /api/v1/stats/history */
void
history_route(struct evhttp_request *req)
{
	httpd_reply_json(req, HTTP_OK, "OK", json_pack("{s:I, s:o, s:o}", "size",
	    (json_int_t)hist.fine.cap, "fine", ring_json(&hist.fine, hist.step),
	    "coarse", ring_json(&hist.coarse, hist.step * HISTORY_COARSE)));
}
