/*
 * conf_queue.c - the queue section of postern.conf: retry schedule,
 * message lifetime, concurrency, destination limits, delay warnings,
 * retention, group commit and the index map (postern-queued(8)).
 *
 * Owns: the queue schema, struct conf_queue's values and their dump.
 * SECURITY: plain numbers; nothing secret.
 * STANDARDS: none.
 */
#include "config.h"

#include <confuse.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "conf_int.h"
#include "log.h"
#include "util.h"

static cfg_opt_t queue_opts[] = {
	CFG_INT_CB("retry_base", 300, CFGF_NONE, conf_cb_duration),
	CFG_FLOAT_CB("retry_factor", 2.0, CFGF_NONE, conf_cb_float),
	CFG_INT_CB("retry_cap", 4 * 3600, CFGF_NONE, conf_cb_duration),
	CFG_FLOAT_CB("retry_jitter", 0.2, CFGF_NONE, conf_cb_float),
	CFG_INT_CB("lifetime", 5 * 86400, CFGF_NONE, conf_cb_duration),
	CFG_INT_CB("concurrency", 20, CFGF_NONE, conf_cb_int_range),
	CFG_INT_CB("destination_concurrency", 10, CFGF_NONE, conf_cb_int_range),
	CFG_INT_CB("destination_rate", 0, CFGF_NONE, conf_cb_int_range),
	CFG_INT_CB("delay_warning", 0, CFGF_NONE, conf_cb_duration),
	CFG_INT_CB("retention", 0, CFGF_NONE, conf_cb_duration),
	CFG_BOOL_CB("group_commit", cfg_true, CFGF_NONE, conf_cb_bool),
	CFG_INT_CB("job_timeout", 3600, CFGF_NONE, conf_cb_window),
	CFG_INT_CB("index_size", 1024l * 1024 * 1024, CFGF_NONE, conf_cb_size),
	CFG_INT_CB("index_max_size", 16l * 1024 * 1024 * 1024, CFGF_NONE,
	    conf_cb_size),
	CFG_INT_CB("index_high_water", 90, CFGF_NONE, conf_cb_int_range),
	CFG_END()
};

/* The queue's one section. */
cfg_opt_t conf_queue_top[] = {
	CFG_SEC("queue", queue_opts, CFGF_NONE),
	CFG_END()
};

/* The smallest index map: a few hundred pages, room for the reserve. */
#define INDEX_SIZE_MIN (1024l * 1024)

/* conf_check_queue - the index map's sizes agree with one another */
int
conf_check_queue(cfg_t *cfg, cfg_opt_t *opt)
{
	cfg_t *sec = conf_last_section(opt);
	int line = conf_section_line(cfg);
	long size = cfg_getint(sec, "index_size");

	if (size < INDEX_SIZE_MIN) {
		conf_errorf(conf_ctx.path, line, "option 'index_size': expected "
		    "a size of at least 1M, got %ld bytes", size);
		return -1;
	}
	if (cfg_getint(sec, "index_max_size") < size) {
		conf_errorf(conf_ctx.path, line, "option 'index_max_size': "
		    "expected a size no smaller than index_size (%ld bytes)", size);
		return -1;
	}
	return 0;
}

/* conf_queue_fill - the queue section */
void
conf_queue_fill(struct conf *c, cfg_t *cfg)
{
	cfg_t *q = cfg_getsec(cfg, "queue");

	c->queue.retry_base = (time_t)cfg_getint(q, "retry_base");
	c->queue.retry_factor = cfg_getfloat(q, "retry_factor");
	c->queue.retry_cap = (time_t)cfg_getint(q, "retry_cap");
	c->queue.retry_jitter = cfg_getfloat(q, "retry_jitter");
	c->queue.lifetime = (time_t)cfg_getint(q, "lifetime");
	c->queue.concurrency = (int)cfg_getint(q, "concurrency");
	c->queue.destination_concurrency = (int)cfg_getint(q,
	    "destination_concurrency");
	c->queue.destination_rate = (int)cfg_getint(q, "destination_rate");
	c->queue.delay_warning = (time_t)cfg_getint(q, "delay_warning");
	c->queue.retention = (time_t)cfg_getint(q, "retention");
	c->queue.group_commit = cfg_getbool(q, "group_commit") ? 1 : 0;
	c->queue.job_timeout = (time_t)cfg_getint(q, "job_timeout");
	c->queue.index_size = (size_t)cfg_getint(q, "index_size");
	c->queue.index_max_size = (size_t)cfg_getint(q, "index_max_size");
	c->queue.index_high_water = (int)cfg_getint(q, "index_high_water");
}

/* conf_queue_dump - the queue section */
void
conf_queue_dump(const struct conf *c, FILE *fp)
{
	fprintf(fp, "queue.retry_base = %llds\n", (long long)c->queue.retry_base);
	fprintf(fp, "queue.retry_factor = %g\n", c->queue.retry_factor);
	fprintf(fp, "queue.retry_cap = %llds\n", (long long)c->queue.retry_cap);
	fprintf(fp, "queue.retry_jitter = %g\n", c->queue.retry_jitter);
	fprintf(fp, "queue.lifetime = %llds\n", (long long)c->queue.lifetime);
	fprintf(fp, "queue.concurrency = %d\n", c->queue.concurrency);
	fprintf(fp, "queue.destination_concurrency = %d\n",
	    c->queue.destination_concurrency);
	fprintf(fp, "queue.destination_rate = %d\n", c->queue.destination_rate);
	fprintf(fp, "queue.delay_warning = %llds\n",
	    (long long)c->queue.delay_warning);
	fprintf(fp, "queue.retention = %llds\n", (long long)c->queue.retention);
	fprintf(fp, "queue.group_commit = %s\n",
	    c->queue.group_commit ? "yes" : "no");
	fprintf(fp, "queue.job_timeout = %llds\n", (long long)c->queue.job_timeout);
	fprintf(fp, "queue.index_size = %zu\nqueue.index_max_size = %zu\n"
	    "queue.index_high_water = %d\n", c->queue.index_size,
	    c->queue.index_max_size, c->queue.index_high_water);
}
