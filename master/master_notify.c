/*
 * master_notify.c - the master's readiness protocol with systemd
 * (Type=notify, sd_notify(3) from libsystemd):
 *   READY=1      once the listeners are bound (before any child starts)
 *                and every configured child has reported IPC_MASTER_READY;
 *                after a reload, once every child runs the new
 *                configuration (queued may still be the old one: it is
 *                replaced last, when nothing old uses it);
 *   RELOADING=1  when SIGHUP arrives (with MONOTONIC_USEC), followed by
 *                READY=1 as above, or at once when the new file is refused;
 *   STOPPING=1   when a graceful stop begins;
 *   WATCHDOG=1   every WatchdogSec/2 while the event loop runs, when the
 *                unit sets WatchdogSec (sd_watchdog_enabled).
 * STATUS= says the same in words for `systemctl status`.
 *
 * Owns: whether a READY=1 is owed, the watchdog timer.
 * SECURITY: writes only to $NOTIFY_SOCKET, which the service manager
 * set; sd_notify does nothing without it (the foreground, the tests).
 * The children never see NOTIFY_SOCKET (master_child.c removes it).
 * STANDARDS: sd_notify(3), systemd.service(5) Type=notify.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "master.h"

/* notify_ready_maybe - READY=1 when one is owed and every child is up */
void
notify_ready_maybe(struct master *m)
{
	if (!m->notify_owed || m->shutting_down || !children_all_up(m))
		return;
	m->notify_owed = 0;
	sd_notifyf(0, "READY=1\nSTATUS=running, %d processes",
	    children_live(m, PROC_ROLE_MAX));
	log_info("ready: every process is up (%d)", children_live(m, PROC_ROLE_MAX));
}

/* notify_reloading - SIGHUP: RELOADING=1 with the monotonic time */
void
notify_reloading(struct master *m)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL, m->conf_path);
}

/* notify_reloaded - the reload was taken (a READY=1 is owed once the
 * children run it) or refused (READY=1 now: the old one is in force) */
void
notify_reloaded(struct master *m, int ok)
{
	if (ok) {
		m->notify_owed = 1;
		notify_ready_maybe(m);
	} else if (!m->notify_owed) {
		sd_notify(0, "READY=1\nSTATUS=running; the reload was refused, "
		    "see the log");
	}
}

/* notify_stopping - STOPPING=1 */
void
notify_stopping(struct master *m)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

/* notify_watchdog - the timer: the loop is alive */
static void
notify_watchdog(evutil_socket_t fd, short ev, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
}

/* notify_init - a READY=1 is owed; start the watchdog timer when the
 * service manager asks for one */
void
notify_init(struct master *m)
{
	uint64_t usec = 0;
	struct timeval tv;

	m->notify_owed = 1;
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	m->watchdog_ev = event_new(m->base, -1, EV_PERSIST, notify_watchdog, m);
	if (m->watchdog_ev == NULL || event_add(m->watchdog_ev, &tv) == -1)
		fatalx("cannot start the watchdog timer");
	sd_notify(0, "WATCHDOG=1");
	log_info("systemd watchdog: WATCHDOG=1 every %lld.%06lds",
	    (long long)tv.tv_sec, (long)tv.tv_usec);
}
