/*
 * httpd.h - postern-httpd: health and Prometheus metrics over HTTP.
 *
 * httpd.c owns the process (start-up, control link, evhttp and the
 * routing table); httpd_metrics.c renders the shared counters
 * (common/stats.h) as Prometheus text and /healthz's view of the child
 * table.
 */
#ifndef POSTERN_HTTPD_H
#define POSTERN_HTTPD_H

#include <stddef.h>

struct evbuffer;
struct json_t;

/* httpd_main - the process: never returns on error, 0 after a stop */
int httpd_main(int argc, char **argv);

/* httpd_metrics - append the Prometheus text exposition (format 0.0.4)
 * of every postern_* family to out */
void httpd_metrics(struct evbuffer *out);

/* httpd_down_children - names ("delivery[1]") of every used slot of the
 * child table that is not up, appended to a JSON array; returns how many */
size_t httpd_down_children(struct json_t *array);

#endif
