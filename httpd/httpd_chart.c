/*
 * httpd_chart.c - the status page's charts, drawn on the server as
 * inline SVG from the history rings (httpd_history.c): messages
 * accepted, delivered, deferred and bounced per minute, the queue by
 * state, and the age of the oldest message, over the fine ring (the
 * last hour by default) and the coarse ring (the last 24 hours).
 *
 * Owns: the chart geometry and the series drawn. Each series is one
 * <path> with data-series, data-points (samples drawn), data-max and
 * data-last (values), so that scripts and tests can read what is drawn;
 * the page needs no script to show them.
 * SECURITY: numbers only; the SVG uses presentation attributes and
 * classes, never a style attribute (the page's Content-Security-Policy
 * allows only its own style sheet).
 * STANDARDS: SVG 1.1 (paths, text), HTML Living Standard (inline svg).
 */
#include "config.h"

#include <stdio.h>
#include <time.h>

#include <event2/buffer.h>

#include "httpd.h"

/* The plot area in the viewBox (0 0 CH_W CH_H). */
#define CH_W 640
#define CH_H 200
#define CH_X0 52
#define CH_X1 632
#define CH_Y0 14
#define CH_Y1 176

/* One series: its name (CSS class s-NAME), a gauge or a counter, which. */
struct series {
	const char *name;
	int gauge;
	int idx;                /* enum ring_gauge or enum ring_counter */
};

/* One chart: its id, title, series, and whether values are durations. */
struct chart {
	const char *id;
	const char *title;
	const struct series *s;
	size_t n;
	int age;
};

static const struct series rate_series[] = {
	{ "accepted", 0, RC_ACCEPTED }, { "delivered", 0, RC_DELIVERED },
	{ "deferred", 0, RC_DEFERRED }, { "bounced", 0, RC_BOUNCED },
};
static const struct series queue_series[] = {
	{ "active", 1, RG_ACTIVE }, { "pending", 1, RG_PENDING },
	{ "deferred", 1, RG_DEFERRED }, { "held", 1, RG_HELD },
	{ "broken", 1, RG_BROKEN },
};
static const struct series age_series[] = {
	{ "oldest", 1, RG_OLDEST_AGE },
};

static const struct chart charts[] = {
	{ "rates", "Messages per minute", rate_series,
	  sizeof(rate_series) / sizeof(rate_series[0]), 0 },
	{ "queue", "Queue by state (messages)", queue_series,
	  sizeof(queue_series) / sizeof(queue_series[0]), 0 },
	{ "age", "Age of the oldest message", age_series, 1, 1 },
};

/* value - series s of sample x: a gauge as read, a counter per minute */
static double
value(const struct ring_sample *x, const struct series *s, time_t step)
{
	if (s->gauge)
		return (double)x->g[s->idx];
	return (double)x->c[s->idx] * 60.0 / (double)(step > 0 ? step : 1);
}

/* nice_max - the smallest 1, 2 or 5 times a power of ten >= v (>= 1) */
static double
nice_max(double v)
{
	double p = 1;

	if (v <= 1)
		return 1;
	while (p * 10 < v)
		p *= 10;
	if (v <= 2 * p)
		return 2 * p;
	if (v <= 5 * p)
		return 5 * p;
	return 10 * p;
}

/* label - a y-axis value: a number, or a duration for the age chart */
static const char *
label(double v, int age, char *buf, size_t len)
{
	if (age)
		return httpd_duration((int64_t)v, buf, len);
	snprintf(buf, len, v >= 10 || v == (double)(long long)v ? "%.0f" : "%.1f", v);
	return buf;
}

/* ymax - the top of the y axis: the largest value drawn, made nice */
static double
ymax(const struct ring *r, const struct chart *c, time_t step)
{
	double m = 0, v;
	size_t i, k;

	for (i = 0; i < ring_len(r); i++)
		for (k = 0; k < c->n; k++)
			if ((v = value(ring_get(r, i), &c->s[k], step)) > m)
				m = v;
	return nice_max(m);
}

/* axes - grid lines with the y labels, and the x labels (age of the
 * left edge, the middle, now) */
static void
axes(struct evbuffer *out, double top, int age, int64_t span)
{
	char b[32];
	int i;

	for (i = 0; i <= 2; i++) {
		double y = CH_Y1 - (CH_Y1 - CH_Y0) * i / 2.0;

		evbuffer_add_printf(out, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" "
		    "x2=\"%d\" y2=\"%.1f\"/><text class=\"ylabel\" x=\"%d\" y=\"%.1f\" "
		    "text-anchor=\"end\">%s</text>", CH_X0, y, CH_X1, y, CH_X0 - 6,
		    y + 4, label(top * i / 2.0, age, b, sizeof(b)));
	}
	evbuffer_add_printf(out, "<text class=\"xlabel\" x=\"%d\" y=\"%d\">-%s</text>",
	    CH_X0, CH_H - 4, httpd_duration(span, b, sizeof(b)));
	evbuffer_add_printf(out, "<text class=\"xlabel\" x=\"%d\" y=\"%d\" "
	    "text-anchor=\"middle\">-%s</text>", (CH_X0 + CH_X1) / 2, CH_H - 4,
	    httpd_duration(span / 2, b, sizeof(b)));
	evbuffer_add_printf(out, "<text class=\"xlabel\" x=\"%d\" y=\"%d\" "
	    "text-anchor=\"end\">now</text>", CH_X1, CH_H - 4);
}

/* path - one series as a path over the samples of the last span */
static void
path(struct evbuffer *out, const struct ring *r, const struct series *s,
    time_t step, double top, int64_t now)
{
	int64_t span = (int64_t)step * (int64_t)r->cap, t0 = now - span;
	double x, y, v, max = 0, last = 0;
	struct evbuffer *d = evbuffer_new();
	size_t i, n = 0;

	for (i = 0; d != NULL && i < ring_len(r); i++) {
		const struct ring_sample *p = ring_get(r, i);

		if (p->t < t0)
			continue;
		v = value(p, s, step);
		x = CH_X0 + (CH_X1 - CH_X0) * (double)(p->t - t0) / (double)span;
		y = CH_Y1 - (CH_Y1 - CH_Y0) * v / top;
		evbuffer_add_printf(d, "%s%.1f %.1f", n == 0 ? "M" : " L", x, y);
		if (ring_len(r) == 1)   /* one sample: a short stroke */
			evbuffer_add_printf(d, " L%.1f %.1f", x - 4, y);
		max = v > max ? v : max;
		last = v;
		n++;
	}
	if (d == NULL)
		return;
	evbuffer_add_printf(out, "<path class=\"line s-%s\" data-series=\"%s\" "
	    "data-points=\"%zu\" data-max=\"%.1f\" data-last=\"%.1f\" d=\"", s->name,
	    s->name, n, max, last);
	evbuffer_add_buffer(out, d);
	EVB_ADD(out, "\"/>");
	evbuffer_free(d);
}

/* legend - the series names with their last values */
static void
legend(struct evbuffer *out, const struct ring *r, const struct chart *c,
    time_t step)
{
	const struct ring_sample *last = ring_len(r) > 0 ?
	    ring_get(r, ring_len(r) - 1) : NULL;
	char b[32];
	size_t k;

	evbuffer_add_printf(out, "<ul class=\"legend\">");
	for (k = 0; k < c->n; k++)
		evbuffer_add_printf(out, "<li><span class=\"sw s-%s\"></span>%s "
		    "<b>%s</b></li>", c->s[k].name, c->s[k].name, last == NULL ? "-" :
		    label(value(last, &c->s[k], step), c->age, b, sizeof(b)));
	evbuffer_add_printf(out, "</ul>");
}

/* chart - one chart of ring r (fine steps of 'step' seconds) */
static void
chart(struct evbuffer *out, const char *ring_name, const struct ring *r,
    time_t step, const struct chart *c, int64_t now)
{
	int64_t span = (int64_t)step * (int64_t)r->cap;
	double top = ymax(r, c, step);
	size_t k;

	evbuffer_add_printf(out, "<figure class=\"chart\" id=\"chart-%s-%s\">"
	    "<figcaption>%s</figcaption><svg viewBox=\"0 0 %d %d\" role=\"img\" "
	    "aria-label=\"%s\">", ring_name, c->id, c->title, CH_W, CH_H, c->title);
	axes(out, top, c->age, span);
	for (k = 0; k < c->n; k++)
		path(out, r, &c->s[k], step, top, now);
	if (ring_len(r) == 0)
		evbuffer_add_printf(out, "<text class=\"empty\" x=\"%d\" y=\"%d\" "
		    "text-anchor=\"middle\">no sample yet (one every %llds)</text>",
		    (CH_X0 + CH_X1) / 2, (CH_Y0 + CH_Y1) / 2, (long long)step);
	evbuffer_add_printf(out, "</svg>");
	legend(out, r, c, step);
	evbuffer_add_printf(out, "</figure>\n");
}

/* ring_title - "Last hour", "Last 24 hours" or "Last <span>" */
static void
ring_title(struct evbuffer *out, const char *id, int64_t span, time_t step)
{
	char b[32], s[32];

	evbuffer_add_printf(out, "<h2 id=\"%s\">", id);
	if (span == 3600)
		evbuffer_add_printf(out, "Last hour");
	else if (span == 86400)
		evbuffer_add_printf(out, "Last 24 hours");
	else
		evbuffer_add_printf(out, "Last %s", httpd_duration(span, b, sizeof(b)));
	evbuffer_add_printf(out, " <small>(a sample every %s)</small></h2>\n",
	    httpd_duration(step, s, sizeof(s)));
}

/* chart_section - both rings, three charts each */
void
chart_section(struct evbuffer *out)
{
	const struct ring *fine = history_fine(), *coarse = history_coarse();
	time_t step = history_step(), cstep = step * HISTORY_COARSE;
	int64_t now = time(NULL);
	size_t k;

	ring_title(out, "hour", (int64_t)step * (int64_t)fine->cap, step);
	evbuffer_add_printf(out, "<div class=\"charts\">\n");
	for (k = 0; k < sizeof(charts) / sizeof(charts[0]); k++)
		chart(out, "fine", fine, step, &charts[k], now);
	evbuffer_add_printf(out, "</div>\n");
	ring_title(out, "day", (int64_t)cstep * (int64_t)coarse->cap, cstep);
	evbuffer_add_printf(out, "<div class=\"charts\">\n");
	for (k = 0; k < sizeof(charts) / sizeof(charts[0]); k++)
		chart(out, "coarse", coarse, cstep, &charts[k], now);
	evbuffer_add_printf(out, "</div>\n");
}
