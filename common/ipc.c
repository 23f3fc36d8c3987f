/*
 * ipc.c - framed messages with descriptor passing over Unix stream
 * sockets, driven by libevent (OpenBSD imsg, OpenSMTPD mproc.c).
 *
 * Owns: the frame format (ipc.h), each channel's input buffer, output
 * queue and the FIFO of descriptors received but not yet claimed.
 * A frame's descriptor is sent with the frame's first byte; the receiver
 * queues every SCM_RIGHTS descriptor in arrival order and each frame
 * flagged IPC_F_FD takes the oldest.
 * SECURITY: peers are our own processes, but a child may be compromised:
 * lengths, versions, flags and types are checked before anything is
 * dispatched, and a violation is fatalx() naming the channel. Received
 * descriptors are close-on-exec and bounded in number. Handlers may free
 * the channel (or exit) while it dispatches: the channel is only marked
 * dead then and freed when the dispatch loop unwinds.
 * STANDARDS: unix(7) SCM_RIGHTS.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "util.h"

#define IPC_READ_CHUNK 65536
#define IPC_MAX_FDS_PER_MSG 32          /* cmsg room per recvmsg */
#define IPC_MAX_QUEUED_FDS 256          /* received, not yet claimed */
#define IPC_FLUSH_TIMEOUT_MS 10000

struct ipc_outfd {
	uint64_t pos;                   /* stream offset of its frame */
	int fd;
};

struct ipc_chan {
	struct event_base *base;
	int fd;
	char *name;
	const struct ipc_handler *table;
	ipc_close_fn *on_close;
	void *arg;
	struct event *ev_read;
	struct event *ev_write;
	int write_armed;

	struct msgbuf in;               /* bytes received, not yet dispatched */
	size_t in_off;                  /* dispatched prefix of in */
	int *infd;                      /* received descriptors, FIFO */
	size_t ninfd;

	struct msgbuf out;              /* frames queued for writing */
	size_t out_off;                 /* written prefix of out */
	uint64_t out_base;              /* stream offset of out.data[0] */
	struct ipc_outfd *outfd;        /* descriptors to send, FIFO */
	size_t noutfd;

	int busy;                       /* inside a dispatch or on_close */
	int dead;                       /* freed while busy */
	int closed;                     /* on_close already called */
	int untrusted;                  /* violations close, not fatalx */
	int violated;                   /* closed for a violation */
};

static void ipc_read_cb(evutil_socket_t fd, short what, void *arg);
static void ipc_write_cb(evutil_socket_t fd, short what, void *arg);

/* le16 - read a little-endian u16 header field */
static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

/* le32 - read a little-endian u32 header field */
static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	    ((uint32_t)p[3] << 24);
}

/* put16 - write a little-endian u16 header field */
static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* put32 - write a little-endian u32 header field */
static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

/* ipc_frame - append header + payload for (type, payload, has_fd) */
void
ipc_frame(struct msgbuf *out, uint16_t type, const struct msgbuf *payload, int has_fd)
{
	uint8_t hdr[IPC_HDR_LEN];
	size_t plen = payload ? payload->len : 0;

	if (plen > IPC_MAX - IPC_HDR_LEN)
		panic("ipc: %s payload of %zu bytes exceeds IPC_MAX",
		    ipc_type_name(type), plen);
	put32(hdr, (uint32_t)(plen + IPC_HDR_LEN));
	put16(hdr + 4, type);
	put16(hdr + 6, IPC_VERSION);
	put32(hdr + 8, has_fd ? IPC_F_FD : 0);
	msg_add_data(out, hdr, sizeof(hdr));
	if (plen > 0)
		msg_add_data(out, payload->data, plen);
}

/* ipc_unframe - decode one complete frame at buf: length, 0, or -1 */
long
ipc_unframe(const uint8_t *buf, size_t len, uint16_t *type, uint32_t *flags,
    const uint8_t **payload, size_t *plen, const char **why)
{
	uint32_t flen;

	if (len < IPC_HDR_LEN)
		return 0;
	flen = le32(buf);
	if (flen < IPC_HDR_LEN || flen > IPC_MAX) {
		*why = "bad frame length";
		return -1;
	}
	if (le16(buf + 6) != IPC_VERSION) {
		*why = "IPC version mismatch";
		return -1;
	}
	if (le32(buf + 8) & ~IPC_F_FD) {
		*why = "unknown frame flags";
		return -1;
	}
	if (len < flen)
		return 0;
	*type = le16(buf + 4);
	*flags = le32(buf + 8);
	*payload = buf + IPC_HDR_LEN;
	*plen = flen - IPC_HDR_LEN;
	return (long)flen;
}

/* ipc_chan_new - wrap a connected socket on base */
struct ipc_chan *
ipc_chan_new(struct event_base *base, int fd, const char *name,
    const struct ipc_handler *table, ipc_close_fn *on_close, void *arg)
{
	struct ipc_chan *c = xcalloc(1, sizeof(*c));

	if (set_nonblock(fd) == -1 || set_cloexec(fd) == -1)
		fatal("ipc %s: fcntl fd %d", name, fd);
	c->base = base;
	c->fd = fd;
	c->name = xstrdup(name);
	c->table = table;
	c->on_close = on_close;
	c->arg = arg;
	msgbuf_init(&c->in);
	msgbuf_init(&c->out);
	c->ev_read = event_new(base, fd, EV_READ | EV_PERSIST, ipc_read_cb, c);
	c->ev_write = event_new(base, fd, EV_WRITE | EV_PERSIST, ipc_write_cb, c);
	if (c->ev_read == NULL || c->ev_write == NULL || event_add(c->ev_read, NULL) == -1)
		fatalx("ipc %s: cannot register events", name);
	return c;
}

/* ipc_chan_teardown - close the socket and every queued descriptor */
static void
ipc_chan_teardown(struct ipc_chan *c)
{
	size_t i;

	if (c->ev_read != NULL)
		event_free(c->ev_read);
	if (c->ev_write != NULL)
		event_free(c->ev_write);
	c->ev_read = c->ev_write = NULL;
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	for (i = 0; i < c->ninfd; i++)
		close(c->infd[i]);
	for (i = 0; i < c->noutfd; i++)
		close(c->outfd[i].fd);
	c->ninfd = c->noutfd = 0;
}

/* ipc_chan_destroy - release the memory of a torn-down channel */
static void
ipc_chan_destroy(struct ipc_chan *c)
{
	msgbuf_free(&c->in);
	msgbuf_free(&c->out);
	free(c->infd);
	free(c->outfd);
	free(c->name);
	free(c);
}

/* ipc_chan_free - close and free now, or when the dispatch unwinds */
void
ipc_chan_free(struct ipc_chan **cp)
{
	struct ipc_chan *c = *cp;

	*cp = NULL;
	if (c == NULL || c->dead)
		return;
	ipc_chan_teardown(c);
	if (c->busy > 0) {
		c->dead = 1;
		return;
	}
	ipc_chan_destroy(c);
}

/* ipc_unbusy - leave a callback; 1 if the channel was freed inside it */
static int
ipc_unbusy(struct ipc_chan *c)
{
	if (--c->busy > 0 || !c->dead)
		return c->dead;
	ipc_chan_destroy(c);
	return 1;
}

/* ipc_chan_close - the peer went away: on_close once, then free */
static void
ipc_chan_close(struct ipc_chan *c)
{
	struct ipc_chan *cc = c;

	if (c->closed || c->dead)
		return;
	c->closed = 1;
	if (c->on_close != NULL) {
		c->busy++;
		c->on_close(c, c->arg);
		if (ipc_unbusy(c))
			return;
	}
	ipc_chan_free(&cc);
}

/* ipc_arm_write - watch for writability only while output is pending */
static void
ipc_arm_write(struct ipc_chan *c)
{
	int want = ipc_pending(c) > 0;

	if (c->dead || c->ev_write == NULL || want == c->write_armed)
		return;
	if (want)
		event_add(c->ev_write, NULL);
	else
		event_del(c->ev_write);
	c->write_armed = want;
}

/* ipc_send - queue one frame (and fd, closed once sent) */
void
ipc_send(struct ipc_chan *c, uint16_t type, const struct msgbuf *payload, int fd)
{
	if (c->dead) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (fd >= 0) {
		c->outfd = xreallocarray(c->outfd, c->noutfd + 1, sizeof(*c->outfd));
		c->outfd[c->noutfd].pos = c->out_base + c->out.len;
		c->outfd[c->noutfd].fd = fd;
		c->noutfd++;
	}
	ipc_frame(&c->out, type, payload, fd >= 0);
	log_debug("ipc %s: queued %s", c->name, ipc_type_name(type));
	ipc_arm_write(c);
}

/* ipc_send_empty - a frame without payload or descriptor */
void
ipc_send_empty(struct ipc_chan *c, uint16_t type)
{
	ipc_send(c, type, NULL, -1);
}

/* send_chunk - sendmsg n bytes, with fd attached when fd >= 0 */
static ssize_t
send_chunk(int sock, const void *p, size_t n, int fd)
{
	struct msghdr mh;
	struct iovec iov;
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct cmsghdr *cmh;
	ssize_t r;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = (void *)(uintptr_t)p;
	iov.iov_len = n;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		cmh = CMSG_FIRSTHDR(&mh);
		cmh->cmsg_level = SOL_SOCKET;
		cmh->cmsg_type = SCM_RIGHTS;
		cmh->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmh), &fd, sizeof(int));
	}
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r == -1 && errno == EINTR);
	return r;
}

/* ipc_write_some - write queued bytes up to the next descriptor
 * boundary; 1 progress, 0 would block or done, -1 error */
static int
ipc_write_some(struct ipc_chan *c)
{
	uint64_t cur = c->out_base + c->out_off, limit = c->out_base + c->out.len;
	int fd = -1;
	ssize_t n;

	if (cur == limit)
		return 0;
	if (c->noutfd > 0 && c->outfd[0].pos == cur) {
		fd = c->outfd[0].fd;
		if (c->noutfd > 1)
			limit = c->outfd[1].pos;
	} else if (c->noutfd > 0)
		limit = c->outfd[0].pos;
	n = send_chunk(c->fd, c->out.data + c->out_off, (size_t)(limit - cur), fd);
	if (n == -1)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	c->out_off += (size_t)n;
	if (fd >= 0) {
		close(fd);
		memmove(c->outfd, c->outfd + 1, --c->noutfd * sizeof(*c->outfd));
	}
	if (c->out_off == c->out.len) {
		c->out_base += c->out.len;
		c->out_off = 0;
		msgbuf_reset(&c->out);
	}
	return 1;
}

/* ipc_compact_out - drop the written prefix when it is large */
static void
ipc_compact_out(struct ipc_chan *c)
{
	if (c->out_off < 65536 || c->out_off < c->out.len / 2)
		return;
	memmove(c->out.data, c->out.data + c->out_off, c->out.len - c->out_off);
	c->out.len -= c->out_off;
	c->out_base += c->out_off;
	c->out_off = 0;
}

/* ipc_write_cb - the socket is writable: drain the queue */
static void
ipc_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_chan *c = arg;
	int r;

	while ((r = ipc_write_some(c)) == 1)
		;
	if (r == -1) {
		log_warn("ipc %s: write", c->name);
		ipc_chan_close(c);
		return;
	}
	ipc_compact_out(c);
	ipc_arm_write(c);
}

/* ipc_flush_blocking - write everything queued, waiting as needed */
int
ipc_flush_blocking(struct ipc_chan *c)
{
	struct pollfd pfd;
	int r;

	if (c->dead || c->fd == -1)
		return -1;
	while (ipc_pending(c) > 0) {
		if ((r = ipc_write_some(c)) == -1)
			return -1;
		if (r == 1)
			continue;
		pfd.fd = c->fd;
		pfd.events = POLLOUT;
		r = poll(&pfd, 1, IPC_FLUSH_TIMEOUT_MS);
		if (r == 0 || (r == -1 && errno != EINTR))
			return -1;
	}
	ipc_arm_write(c);
	return 0;
}

/* ipc_pending - bytes queued, not yet written */
size_t
ipc_pending(const struct ipc_chan *c)
{
	return c->out.len - c->out_off;
}

/* ipc_chan_name - the name used in log lines */
const char *
ipc_chan_name(const struct ipc_chan *c)
{
	return c->name;
}

/* ipc_chan_arg - the handlers' argument */
void *
ipc_chan_arg(const struct ipc_chan *c)
{
	return c->arg;
}

/* ipc_chan_set_arg - change the handlers' argument */
void
ipc_chan_set_arg(struct ipc_chan *c, void *arg)
{
	c->arg = arg;
}

/* take_fds - queue the SCM_RIGHTS descriptors of a received message */
static int
take_fds(struct msghdr *mh, int **q, size_t *nq, size_t max)
{
	struct cmsghdr *cmh;
	size_t i, n;
	int fd, over = 0;

	for (cmh = CMSG_FIRSTHDR(mh); cmh != NULL; cmh = CMSG_NXTHDR(mh, cmh)) {
		if (cmh->cmsg_level != SOL_SOCKET || cmh->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cmh->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(cmh) + i * sizeof(int), sizeof(int));
			if (*nq >= max) {
				close(fd);
				over = 1;
				continue;
			}
			*q = xreallocarray(*q, *nq + 1, sizeof(int));
			(*q)[(*nq)++] = fd;
		}
	}
	return over || (mh->msg_flags & MSG_CTRUNC) ? -1 : 0;
}

/* recv_chunk - recvmsg up to n bytes, queueing descriptors; -1 and
 * errno EPROTO when descriptors were lost */
static ssize_t
recv_chunk(int sock, void *p, size_t n, int **q, size_t *nq)
{
	struct msghdr mh;
	struct iovec iov;
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int) * IPC_MAX_FDS_PER_MSG)];
	} cm;
	ssize_t r;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = p;
	iov.iov_len = n;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	do
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (r == -1 && errno == EINTR);
	if (r >= 0 && take_fds(&mh, q, nq, IPC_MAX_QUEUED_FDS) == -1) {
		errno = EPROTO;
		return -1;
	}
	return r;
}

/* ipc_pop_fd - the oldest received descriptor, or -1 */
static int
ipc_pop_fd(int *q, size_t *nq)
{
	int fd;

	if (*nq == 0)
		return -1;
	fd = q[0];
	memmove(q, q + 1, --*nq * sizeof(int));
	return fd;
}

/* ipc_find - the handler for type in table, or NULL */
static ipc_handler_fn *
ipc_find(const struct ipc_handler *t, uint16_t type)
{
	for (; t != NULL && t->fn != NULL; t++)
		if (t->type == type)
			return t->fn;
	return NULL;
}

/* ipc_vviolation - a peer broke the protocol: fatalx, or for an
 * untrusted peer log it and close the channel */
static void
ipc_vviolation(struct ipc_chan *c, const char *fmt, va_list ap)
{
	char why[256];

	vsnprintf(why, sizeof(why), fmt, ap);
	if (!c->untrusted)
		fatalx("ipc %s: protocol violation: %s", c->name, why);
	log_warnx("ipc %s: protocol violation: %s; closing the link", c->name, why);
	c->violated = 1;
	ipc_chan_close(c);
}

/* ipc_violation - the framing was broken; returns 0 (nothing dispatched) */
static int PRINTF_LIKE(2, 3)
ipc_violation(struct ipc_chan *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ipc_vviolation(c, fmt, ap);
	va_end(ap);
	return 0;
}

/* ipc_chan_reject - a handler's verdict on a malformed frame */
void
ipc_chan_reject(struct ipc_chan *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ipc_vviolation(c, fmt, ap);
	va_end(ap);
}

/* ipc_chan_set_untrusted - violations close the channel (see ipc.h) */
void
ipc_chan_set_untrusted(struct ipc_chan *c)
{
	c->untrusted = 1;
}

/* ipc_chan_violated - closed because the peer broke the framing */
int
ipc_chan_violated(const struct ipc_chan *c)
{
	return c->violated;
}

/* ipc_dispatch_one - decode and run the frame at the front of c->in;
 * 1 dispatched, 0 incomplete */
static int
ipc_dispatch_one(struct ipc_chan *c)
{
	const uint8_t *payload;
	const char *why = NULL;
	struct ipc_msg m;
	ipc_handler_fn *fn;
	uint32_t flags;
	size_t plen;
	long n;

	n = ipc_unframe(c->in.data + c->in_off, c->in.len - c->in_off, &m.type,
	    &flags, &payload, &plen, &why);
	if (n == 0)
		return 0;
	if (n < 0)
		return ipc_violation(c, "%s", why);
	if ((fn = ipc_find(c->table, m.type)) == NULL)
		return ipc_violation(c, "unexpected %s (%u)", ipc_type_name(m.type),
		    (unsigned)m.type);
	m.fd = -1;
	if ((flags & IPC_F_FD) && (m.fd = ipc_pop_fd(c->infd, &c->ninfd)) == -1)
		return ipc_violation(c, "%s without its descriptor",
		    ipc_type_name(m.type));
	c->in_off += (size_t)n;
	msgreader_init(&m.r, payload, plen);
	log_debug("ipc %s: received %s", c->name, ipc_type_name(m.type));
	fn(c, &m, c->arg);
	return 1;
}

/* ipc_dispatch - run every complete frame; 1 if c was freed meanwhile */
static int
ipc_dispatch(struct ipc_chan *c)
{
	int freed;

	c->busy++;
	while (!c->dead && ipc_dispatch_one(c))
		;
	freed = ipc_unbusy(c);
	if (freed)
		return 1;
	if (c->in_off == c->in.len) {
		msgbuf_reset(&c->in);
		c->in_off = 0;
	} else if (c->in_off > 0) {
		memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
		c->in.len -= c->in_off;
		c->in_off = 0;
	}
	return 0;
}

/* ipc_read_cb - the socket is readable: read, queue fds, dispatch */
static void
ipc_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_chan *c = arg;
	ssize_t n;

	if (c->in.cap - c->in.len < IPC_READ_CHUNK) {
		c->in.data = xreallocarray(c->in.data, c->in.len + IPC_READ_CHUNK, 1);
		c->in.cap = c->in.len + IPC_READ_CHUNK;
	}
	n = recv_chunk(c->fd, c->in.data + c->in.len, IPC_READ_CHUNK, &c->infd, &c->ninfd);
	if (n == -1 && errno == EPROTO) {
		ipc_violation(c, "too many descriptors");
		return;
	}
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		if (n == -1)
			log_warn("ipc %s: read", c->name);
		else
			log_debug("ipc %s: peer closed", c->name);
		ipc_chan_close(c);
		return;
	}
	c->in.len += (size_t)n;
	if (ipc_dispatch(c))
		return;
	ipc_arm_write(c);
}

/* write_all - blocking write of n bytes, the first carrying fd */
static int
write_all(int sock, const uint8_t *p, size_t n, int fd)
{
	ssize_t r;

	while (n > 0) {
		if ((r = send_chunk(sock, p, n, fd)) == -1)
			return -1;
		p += r;
		n -= (size_t)r;
		fd = -1;
	}
	return 0;
}

/* ipc_send_blocking - one frame on a blocking socket; fd stays open */
int
ipc_send_blocking(int sock, uint16_t type, const struct msgbuf *payload, int fd)
{
	struct msgbuf b;
	int r;

	msgbuf_init(&b);
	ipc_frame(&b, type, payload, fd >= 0);
	r = write_all(sock, b.data, b.len, fd);
	msgbuf_free(&b);
	return r;
}

/* Descriptors received by ipc_recv_blocking but not yet claimed. */
static int *blk_fds;
static size_t blk_nfds;

/* read_all - blocking read of exactly n bytes, queueing fds */
static int
read_all(int sock, uint8_t *p, size_t n)
{
	ssize_t r;

	while (n > 0) {
		r = recv_chunk(sock, p, n, &blk_fds, &blk_nfds);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* store_size - make store exactly n bytes long (contents undefined) */
static void
store_size(struct msgbuf *b, size_t n)
{
	if (b->cap < n) {
		b->data = xreallocarray(b->data, n, 1);
		b->cap = n;
	}
	b->len = n;
}

/* ipc_recv_blocking - read one frame into store; 0, or -1 on EOF/error */
int
ipc_recv_blocking(int sock, struct msgbuf *store, struct ipc_msg *m)
{
	const uint8_t *payload;
	const char *why;
	uint32_t flags, flen;
	size_t plen;

	store_size(store, IPC_HDR_LEN);
	if (read_all(sock, store->data, IPC_HDR_LEN) == -1)
		return -1;
	if (ipc_unframe(store->data, IPC_HDR_LEN, &m->type, &flags, &payload,
	    &plen, &why) == -1) {
		errno = EPROTO;
		return -1;
	}
	flen = le32(store->data);
	store_size(store, flen);
	if (read_all(sock, store->data + IPC_HDR_LEN, flen - IPC_HDR_LEN) == -1)
		return -1;
	if (ipc_unframe(store->data, store->len, &m->type, &flags, &payload, &plen,
	    &why) <= 0) {
		errno = EPROTO;
		return -1;
	}
	m->fd = -1;
	if ((flags & IPC_F_FD) && (m->fd = ipc_pop_fd(blk_fds, &blk_nfds)) == -1) {
		errno = EPROTO;
		return -1;
	}
	msgreader_init(&m->r, payload, plen);
	return 0;
}
