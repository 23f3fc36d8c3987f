/*
 * ipc.h - framed messages over Unix stream sockets, with fd passing,
 * driven by libevent.
 *
 * A frame is a 12-byte header { u32 len (header included), u16 type,
 * u16 version, u32 flags } then the payload (msgbuf encoding). Flag
 * IPC_F_FD says one file descriptor travels with the frame (SCM_RIGHTS on
 * the frame's bytes); received descriptors are queued in arrival order and
 * each IPC_F_FD frame takes the oldest (the OpenBSD imsg scheme).
 * A frame with a wrong version, a length over IPC_MAX or a flagged frame
 * with no descriptor is a protocol violation: fatalx(), the master
 * restarts the process.
 * Sends never block: frames queue in memory and go out when the socket is
 * writable.
 */
#ifndef POSTERN_IPC_H
#define POSTERN_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "msgbuf.h"

struct event_base;
struct ipc_chan;

#define IPC_HDR_LEN 12
#define IPC_MAX (1024u * 1024)
#define IPC_F_FD 0x1u

/* One received message; the reader covers the payload only. */
struct ipc_msg {
	uint16_t type;
	int fd;                 /* -1 unless the frame carried one; the
	                           handler owns it (close or keep) */
	struct msgreader r;
};

typedef void ipc_handler_fn(struct ipc_chan *c, struct ipc_msg *m, void *arg);

/* One row of a dispatch table; a table ends with { 0, NULL }. */
struct ipc_handler {
	uint16_t type;
	ipc_handler_fn *fn;
};

/* ipc_close_fn - called once when the peer closes or errors; the channel
 * is freed right after it returns. */
typedef void ipc_close_fn(struct ipc_chan *c, void *arg);

/* ipc_chan_new - wrap fd (made non-blocking) on base; an unknown type is
 * fatalx(). 'name' is used in log lines ("queued", "smtpd[1]"). */
struct ipc_chan *ipc_chan_new(struct event_base *base, int fd, const char *name,
    const struct ipc_handler *table, ipc_close_fn *on_close, void *arg);
/* ipc_chan_set_untrusted - a framing violation from this peer (bad
 * header, unknown type, missing descriptor) is logged and the channel is
 * closed (on_close runs) instead of fatalx(): the master must not die
 * because a child misbehaves. */
void ipc_chan_set_untrusted(struct ipc_chan *c);
/* ipc_chan_violated - 1 if the channel was closed for a violation (for
 * on_close handlers) */
int ipc_chan_violated(const struct ipc_chan *c);
/* ipc_chan_reject - a handler found the frame it was given malformed
 * (msg_ok() false) or out of order: for an untrusted channel the same as
 * a framing violation (logged with the reason, channel closed, on_close
 * runs, ipc_chan_violated() is 1); for a trusted one fatalx(). The
 * handler must return at once: on_close may have freed its argument. */
void ipc_chan_reject(struct ipc_chan *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* ipc_send - queue one frame; fd >= 0 is passed and then closed here */
void ipc_send(struct ipc_chan *c, uint16_t type, const struct msgbuf *payload, int fd);
/* ipc_send_empty - a frame without payload */
void ipc_send_empty(struct ipc_chan *c, uint16_t type);
/* ipc_flush_blocking - write everything queued, blocking (used at exit) */
int ipc_flush_blocking(struct ipc_chan *c);
/* ipc_pending - bytes queued and not yet written */
size_t ipc_pending(const struct ipc_chan *c);
/* ipc_chan_name, ipc_chan_arg, ipc_chan_set_arg - accessors */
const char *ipc_chan_name(const struct ipc_chan *c);
void *ipc_chan_arg(const struct ipc_chan *c);
void ipc_chan_set_arg(struct ipc_chan *c, void *arg);
/* ipc_chan_free - close the socket and free; *cp = NULL. on_close is not
 * called. */
void ipc_chan_free(struct ipc_chan **cp);

/* Framing below the event loop, for unit tests and blocking tools. */

/* ipc_frame - append a complete frame for (type, payload, has_fd) to out */
void ipc_frame(struct msgbuf *out, uint16_t type, const struct msgbuf *payload, int has_fd);
/* ipc_unframe - if buf holds a complete frame, fill type/flags/payload
 * pointers and return its total length; 0 if incomplete; -1 if invalid
 * (bad version or length), with *why set. */
long ipc_unframe(const uint8_t *buf, size_t len, uint16_t *type, uint32_t *flags,
    const uint8_t **payload, size_t *plen, const char **why);
/* ipc_send_fd_blocking, ipc_recv_blocking - one frame at a time on a
 * blocking socket (posternctl, postern-sendmail). recv returns 0, or -1 on
 * EOF/error; *fd is the passed descriptor or -1; m->r points into *store.
 * Unlike ipc_send(), ipc_send_blocking() leaves fd open (caller owns it). */
int ipc_send_blocking(int sock, uint16_t type, const struct msgbuf *payload, int fd);
int ipc_recv_blocking(int sock, struct msgbuf *store, struct ipc_msg *m);

#endif
