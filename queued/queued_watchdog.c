/*
 * queued_watchdog.c - no recipient stays in flight forever. Delivery
 * bounds every step of a job itself (DNS, connect, each reply: see
 * postern-delivery(8)), but a bug or a blocked system call in a delivery
 * process would still leave its jobs unanswered, with nothing deferred
 * and nothing logged. So queued checks, every few seconds, the oldest job
 * of every delivery link: one unanswered for queue.job_timeout has its
 * recipients deferred (4.4.1, retried with the usual backoff), is logged,
 * and the master is asked to replace that delivery process (Postfix's
 * daemon_timeout plays the same part). The process's other jobs go back
 * to the queue when its link closes, without counting an attempt.
 *
 * Owns: the watchdog timer.
 * SECURITY: runs unprivileged in queued; acts only through the master.
 * STANDARDS: RFC 3463 (4.4.1).
 */
#include "config.h"

#include <event2/event.h>
#include <time.h>

#include "conf.h"
#include "ipc_types.h"
#include "log.h"
#include "queued.h"

#define WATCHDOG_TICK_MAX 30    /* seconds between checks, at most */

static struct event *watchdog_ev;

/* watchdog_link - defer every overdue job of l (jobs are in the order
 * they were sent, so the first that is not overdue ends the walk) and
 * have l's process replaced */
static void
watchdog_link(struct qlink *l, void *arg)
{
	int64_t now = *(const int64_t *)arg, limit = qenv.conf->queue.job_timeout;
	struct qjob *j;
	unsigned n = 0;

	while ((j = TAILQ_FIRST(&l->jobs)) != NULL && now - j->sent >= limit) {
		log_warnx("%s: job %llu to %s (%u recipient(s)) unanswered after "
		    "%llds (queue.job_timeout): deferred", j->msg->id,
		    (unsigned long long)j->id, l->name, j->nrcpt,
		    (long long)(now - j->sent));
		qsched_job_overdue(j);
		n++;
	}
	if (n > 0 && !l->replacing) {
		log_warnx("%s (pid %u): %u job(s) unanswered past queue.job_timeout; "
		    "the master replaces it", l->name, l->pid, n);
		qlink_replace(l, IPC_LINK_HUNG);
	}
}

/* watchdog_tick - look at every delivery link */
static void
watchdog_tick(evutil_socket_t fd, short what, void *arg)
{
	int64_t now = time(NULL);

	(void)fd;
	(void)what;
	(void)arg;
	qlink_each(PROC_DELIVERY, watchdog_link, &now);
}

/* qwatchdog_init - start the periodic check (a quarter of job_timeout,
 * at most WATCHDOG_TICK_MAX seconds, at least one) */
void
qwatchdog_init(void)
{
	time_t t = qenv.conf->queue.job_timeout / 4;
	struct timeval tv = { t < 1 ? 1 : t > WATCHDOG_TICK_MAX ?
	    WATCHDOG_TICK_MAX : t, 0 };

	watchdog_ev = event_new(qenv.base, -1, EV_PERSIST, watchdog_tick, NULL);
	if (watchdog_ev == NULL || event_add(watchdog_ev, &tv) == -1)
		fatalx("cannot create the watchdog timer");
}
