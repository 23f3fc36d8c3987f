/*
 * queued_link.c - queued's links to the other children. The master makes
 * a socketpair per smtpd, delivery and httpd process and hands queued its
 * end with IPC_QUEUED_NEW_LINK (role, index, fd); queued wraps it in an
 * ipc_chan whose dispatch table depends on the role (OpenBSD proc.c
 * style: the process graph as data).
 *
 * Owns: the list of live links, the per-role handler tables, and what
 * happens when a link closes (its open transactions are removed, its jobs
 * in flight become due again).
 *
 * SECURITY: receivers (smtpd, httpd) face the network and may send only
 * MSG_OPEN/COMMIT/ABORT, on untrusted channels: any other type, a broken
 * frame (ipc.c) or a malformed or out-of-order message (queued_commit.c)
 * closes that link only, as if the receiver had gone away (its open
 * messages are removed; nothing of it was acknowledged). The violation
 * is logged, counted (stats link_violations[role]) and reported to the
 * master (IPC_MASTER_LINK_BROKEN), which kills that receiver: its
 * restart brings a fresh link. queued and every other link go on.
 * Delivery may send only JOB_RESULT; it talks to no client and stays
 * trusted: a violation there is fatal, the master restarts queued and
 * recovery resumes from the durable state.
 * STANDARDS: none.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "queued.h"
#include "stats.h"
#include "util.h"

/* What each peer role may send queued, and how its loss is handled. */
struct role_link {
	enum proc_role role;
	const struct ipc_handler *table;
	void (*closed)(struct qlink *l);
	int untrusted;          /* a violation closes the link, not queued */
};

static const struct ipc_handler receiver_table[] = {
	{ IPC_QUEUED_MSG_OPEN, qcommit_open },
	{ IPC_QUEUED_MSG_COMMIT, qcommit_commit },
	{ IPC_QUEUED_MSG_ABORT, qcommit_abort },
	{ 0, NULL },
};

static const struct ipc_handler delivery_table[] = {
	{ IPC_QUEUED_JOB_RESULT, qsched_result },
	{ 0, NULL },
};

static const struct role_link role_links[] = {
	{ PROC_SMTPD, receiver_table, qcommit_link_closed, 1 },
	{ PROC_HTTPD, receiver_table, qcommit_link_closed, 1 },
	{ PROC_DELIVERY, delivery_table, qsched_link_closed, 0 },
};

static TAILQ_HEAD(, qlink) links = TAILQ_HEAD_INITIALIZER(links);

/* role_link_for - the table row of a role, or NULL */
static const struct role_link *
role_link_for(uint32_t role)
{
	size_t i;

	for (i = 0; i < sizeof(role_links) / sizeof(role_links[0]); i++)
		if ((uint32_t)role_links[i].role == role)
			return &role_links[i];
	return NULL;
}

/* qlink_replace - ask the master to replace l's process
 * (IPC_MASTER_LINK_BROKEN); once per link */
void
qlink_replace(struct qlink *l, uint32_t reason)
{
	struct msgbuf b;

	if (l->replacing)
		return;
	l->replacing = 1;
	msgbuf_init(&b);
	msg_add_u32(&b, (uint32_t)l->role);
	msg_add_u32(&b, l->index);
	msg_add_u32(&b, l->pid);
	msg_add_u32(&b, reason);
	ipc_send(qenv.ch.control, IPC_MASTER_LINK_BROKEN, &b, -1);
	msgbuf_free(&b);
}

/* link_report - l broke the protocol: count it and have its process
 * replaced */
static void
link_report(struct qlink *l)
{
	log_warnx("%s (pid %u): link closed for a protocol violation; the "
	    "master replaces it", l->name, l->pid);
	stats_add(&stats->link_violations[l->role], 1);
	qlink_replace(l, IPC_LINK_VIOLATION);
}

/* link_closed - the peer closed or died, or broke the protocol: clean
 * up after it */
static void
link_closed(struct ipc_chan *c, void *arg)
{
	struct qlink *l = arg;

	if (ipc_chan_violated(c))
		link_report(l);
	else
		log_info("%s: link closed", l->name);
	role_link_for(l->role)->closed(l);
	TAILQ_REMOVE(&links, l, entry);
	free(l);
}

/* qlink_control_new - IPC_QUEUED_NEW_LINK from the master */
void
qlink_control_new(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	const struct role_link *rl;
	struct qlink *l;
	uint32_t role, index, pid;

	role = msg_get_u32(&m->r);
	index = msg_get_u32(&m->r);
	pid = msg_get_u32(&m->r);
	msg_end(&m->r, "IPC_QUEUED_NEW_LINK");
	if (m->fd == -1)
		fatalx("protocol violation: IPC_QUEUED_NEW_LINK without a descriptor");
	if ((rl = role_link_for(role)) == NULL)
		fatalx("protocol violation: IPC_QUEUED_NEW_LINK for role %u", role);
	l = xcalloc(1, sizeof(*l));
	l->role = rl->role;
	l->index = index;
	l->pid = pid;
	snprintf(l->name, sizeof(l->name), "%s[%u]", proc_role_name(rl->role), index);
	TAILQ_INIT(&l->txns);
	TAILQ_INIT(&l->jobs);
	l->chan = ipc_chan_new(qenv.base, m->fd, l->name, rl->table, link_closed, l);
	if (rl->untrusted)
		ipc_chan_set_untrusted(l->chan);
	m->fd = -1;
	TAILQ_INSERT_TAIL(&links, l, entry);
	log_info("%s: link up", l->name);
	if (l->role == PROC_DELIVERY)
		qsched_kick();
}

/* qlink_pick_delivery - the delivery link with the fewest jobs, or NULL */
struct qlink *
qlink_pick_delivery(void)
{
	struct qlink *l, *best = NULL;

	TAILQ_FOREACH(l, &links, entry)
		if (l->role == PROC_DELIVERY && !l->replacing &&
		    (best == NULL || l->njobs < best->njobs))
			best = l;
	return best;
}

/* qlink_each - fn(link, arg) for every link of a role; fn must not
 * close the link */
void
qlink_each(enum proc_role role, void (*fn)(struct qlink *, void *), void *arg)
{
	struct qlink *l;

	TAILQ_FOREACH(l, &links, entry)
		if (l->role == role)
			fn(l, arg);
}

/* qlink_count - live links of a role */
unsigned
qlink_count(enum proc_role role)
{
	struct qlink *l;
	unsigned n = 0;

	TAILQ_FOREACH(l, &links, entry)
		if (l->role == role)
			n++;
	return n;
}

/* qlink_flush_all - at exit: push out replies still queued (blocking) */
void
qlink_flush_all(void)
{
	struct qlink *l;

	TAILQ_FOREACH(l, &links, entry)
		if (ipc_pending(l->chan) > 0)
			ipc_flush_blocking(l->chan);
}

/* qlink_broadcast - send to every link of a role that is not backed up */
unsigned
qlink_broadcast(enum proc_role role, uint16_t type, const struct msgbuf *b,
    size_t limit)
{
	struct qlink *l;
	unsigned n = 0;

	TAILQ_FOREACH(l, &links, entry) {
		if (l->role != role)
			continue;
		if (ipc_pending(l->chan) > limit) {
			log_debug("%s: backed up, event dropped", l->name);
			continue;
		}
		ipc_send(l->chan, type, b, -1);
		n++;
	}
	return n;
}
