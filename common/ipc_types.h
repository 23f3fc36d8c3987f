/*
 * ipc_types.h - the one catalogue of IPC messages between Postern's
 * processes (STYLE 5). Bump IPC_VERSION on ANY change to a type number or
 * a payload below: every frame carries it and a mismatch is fatal, so
 * old and new binaries never misread each other during an upgrade.
 *
 * Naming: IPC_<DESTINATION>_<VERB>. Payload fields are listed in order
 * with their msgbuf types; "fd" means the frame carries a descriptor.
 *
 * Links:
 *   master <-> every child   control socketpair, child fd PROC_FD_CONTROL
 *   smtpd, delivery, httpd <-> queued
 *                            "queue link" socketpairs made by the master;
 *                            the child side starts as PROC_FD_QUEUE, and
 *                            after a queued restart arrives again with
 *                            IPC_CHILD_QUEUE_LINK.
 */
#ifndef POSTERN_IPC_TYPES_H
#define POSTERN_IPC_TYPES_H

#define IPC_VERSION 6

/* Envelope flags: the MAIL parameters delivery needs (IPC_QUEUED_MSG_COMMIT,
 * IPC_DELIVERY_JOB; stored in the message record, postern-queued(8)). */
#define ENV_F_DECLARED 0x1u     /* the flags below are what an SMTP client
                                   said; without it (postern-sendmail, the
                                   send API, records before version 3)
                                   delivery infers them from the message */
#define ENV_F_SMTPUTF8 0x2u     /* MAIL ... SMTPUTF8 (RFC 6531 3.4) */
#define ENV_F_8BITMIME 0x4u     /* MAIL ... BODY=8BITMIME (RFC 6152) */

/* IPC_MASTER_LINK_BROKEN reasons */
#define IPC_LINK_VIOLATION 1u
#define IPC_LINK_HUNG 2u

/* IPC_QUEUED_CTL_REQUEST flags */
#define IPC_CTL_F_MESSAGE 0x1u  /* show: pass the message file too */

enum ipc_type {
	IPC_NONE = 0,

	/* ---- master -> child (control link) ---- */

	/* IPC_CHILD_STOP: stop accepting new work, finish what is running
	 * within u32 grace_seconds, then exit 0. (SIGTERM, reload) */
	IPC_CHILD_STOP = 1,
	/* IPC_CHILD_QUEUE_LINK: fd = a fresh link to queued (the old one
	 * died with queued). No payload. */
	IPC_CHILD_QUEUE_LINK = 2,
	/* IPC_QUEUED_NEW_LINK (master -> queued): u32 role (enum proc_role),
	 * u32 index, u32 pid of that child, fd = queued's end of a link to
	 * it. */
	IPC_QUEUED_NEW_LINK = 3,

	/* ---- child -> master (control link) ---- */

	/* IPC_MASTER_READY: the child finished start-up. No payload. */
	IPC_MASTER_READY = 10,
	/* IPC_MASTER_LINK_BROKEN (queued only): u32 role, u32 index, u32 pid
	 * as in IPC_QUEUED_NEW_LINK, u32 reason (IPC_LINK_VIOLATION: that
	 * child broke the protocol on its queue link, which queued closed;
	 * IPC_LINK_HUNG: a delivery job stayed unanswered past
	 * queue.job_timeout). The master kills the child (if that pid still
	 * is that child) and the restart gives it a new link. */
	IPC_MASTER_LINK_BROKEN = 11,

	/* ---- smtpd/httpd <-> queued: receiving a message ---- */

	/* IPC_QUEUED_MSG_OPEN: u32 reqid. queued creates a spool file for a
	 * new message. */
	IPC_QUEUED_MSG_OPEN = 20,
	/* IPC_SMTPD_MSG_OPENED: u32 reqid, u32 status (0 = ok, else an
	 * errno), str queue id, fd = the spool file open O_WRONLY (only when
	 * status is 0). The receiver writes the whole message into it. */
	IPC_SMTPD_MSG_OPENED = 21,
	/* IPC_QUEUED_MSG_COMMIT: u32 reqid, str queue id, str sender,
	 * u64 size (bytes written), str client address, str helo name,
	 * str authenticated user ("" if none), u32 nrcpt, then nrcpt x str
	 * recipient, then u32 envelope flags (ENV_F_*). queued makes file +
	 * envelope durable, then answers. */
	IPC_QUEUED_MSG_COMMIT = 22,
	/* IPC_SMTPD_MSG_COMMITTED: u32 reqid, u32 status (0 = durable, else
	 * an errno such as ENOSPC), str queue id. Only after status 0 may the
	 * receiver say 250. */
	IPC_SMTPD_MSG_COMMITTED = 23,
	/* IPC_QUEUED_MSG_ABORT: str queue id. The transaction ended without
	 * a commit; queued removes the file. No reply. */
	IPC_QUEUED_MSG_ABORT = 24,

	/* ---- queued <-> delivery ---- */

	/* IPC_DELIVERY_JOB: u64 jobid, str queue id, str sender,
	 * i64 arrival (unix seconds), u32 attempt (1 for the first),
	 * u32 envelope flags (ENV_F_*), u32 nrcpt, then nrcpt x
	 * { u32 rcpt index, str recipient }, fd = the spool file open
	 * O_RDONLY. */
	IPC_DELIVERY_JOB = 30,
	/* IPC_QUEUED_JOB_RESULT: u64 jobid, str queue id, u32 nrcpt, then
	 * nrcpt x { u32 rcpt index, u32 class (2, 4 or 5), str dsn ("2.0.0"),
	 * str relay ("maildir:/path", "[127.0.0.1]:25"), str reply text (the
	 * remote reply, or our reason: stored, shown in DSNs), str note (for
	 * the log line only: " (in reply to RCPT TO) [TLS=...]", or "") }. */
	IPC_QUEUED_JOB_RESULT = 31,

	/* ---- queued -> httpd (queue link) ---- */

	/* IPC_HTTPD_EVENT: str json, one queue event as a JSON object
	 * {"time","event","id","rcpt","from","dsn","reply","relay",
	 * "attempt","delay"} (postern-queued(8)); sent to every httpd link. */
	IPC_HTTPD_EVENT = 40,

	/* ---- posternctl, postern-sendmail <-> queued: the control socket
	 * (conf control_socket, bound by the master, PROC_FD_LISTEN0 of
	 * queued). Peers are untrusted local users: queued checks every
	 * payload and closes the connection on a malformed one. Besides
	 * the three types below, a client may submit a message with
	 * IPC_QUEUED_MSG_OPEN / IPC_QUEUED_MSG_COMMIT / IPC_QUEUED_MSG_ABORT
	 * and gets IPC_SMTPD_MSG_OPENED / IPC_SMTPD_MSG_COMMITTED, payloads
	 * as above (queued writes the Received: header naming the caller's
	 * uid and replaces client, helo and authenticated user). ---- */

	/* IPC_QUEUED_CTL_REQUEST: str command ("list", "show", "flush",
	 * "hold", "release", "delete", "requeue"; the console's "search",
	 * "destinations", "flush-destination"), str argument: a queue id
	 * ("" for none), or for "search" the text looked for in ids,
	 * senders and recipients and for "flush-destination" a destination
	 * key ("mx:example.com"; 1 to 255 bytes, no control characters),
	 * u32 flags (IPC_CTL_F_*). */
	IPC_QUEUED_CTL_REQUEST = 50,
	/* IPC_CTL_ROW (queued -> client): str json, one message as a JSON
	 * object (list, search: one frame per message; show: one), or for
	 * "destinations" one destination (postern-queued(8)). */
	IPC_CTL_ROW = 51,
	/* IPC_CTL_DONE (queued -> client): u32 status (0, ENOENT unknown id,
	 * EPERM caller may not change the queue, EINVAL bad request, EBUSY),
	 * str text (what was done, or why not); fd = the message file open
	 * O_RDONLY for "show" with IPC_CTL_F_MESSAGE. Ends every request. */
	IPC_CTL_DONE = 52,

	IPC_TYPE_MAX
};

/* ipc_type_name - "IPC_DELIVERY_JOB" for tracing; "IPC_?" if unknown */
const char *ipc_type_name(unsigned type);

#endif
