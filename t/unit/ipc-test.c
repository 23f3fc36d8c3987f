/*
 * ipc-test.c - tests of common/ipc.c and common/msgbuf.c: framing,
 * partial and invalid frames, two event-driven channels over a
 * socketpair exchanging frames with and without descriptors (pipes read
 * through), freeing a channel from inside its handler, on_close, the
 * blocking calls, and fatalx() on a protocol violation.
 *
 * SECURITY: none (a test). STANDARDS: unix(7) SCM_RIGHTS.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "tap.h"

#define BIG_LEN (600 * 1024)

/* test_msgbuf - every typed field round-trips; underflow is caught */
static void
test_msgbuf(void)
{
	struct msgbuf b;
	struct msgreader r;
	char data[3];

	msgbuf_init(&b);
	msg_add_u8(&b, 0xab);
	msg_add_u32(&b, 0xdeadbeef);
	msg_add_u64(&b, 0x0123456789abcdefull);
	msg_add_i64(&b, -42);
	msg_add_str(&b, "hello");
	msg_add_str(&b, NULL);
	msg_add_data(&b, "xyz", 3);
	msgreader_init(&r, b.data, b.len);
	is_int(msg_get_u8(&r), 0xab, "msgbuf u8");
	is_int(msg_get_u32(&r), 0xdeadbeef, "msgbuf u32");
	ok(msg_get_u64(&r) == 0x0123456789abcdefull, "msgbuf u64");
	is_int(msg_get_i64(&r), -42, "msgbuf i64");
	is_str(msg_get_str(&r), "hello", "msgbuf str");
	is_str(msg_get_str(&r), "", "msgbuf NULL str is empty");
	msg_get_data(&r, data, 3);
	ok(memcmp(data, "xyz", 3) == 0, "msgbuf data");
	ok(msg_ok(&r), "msg_ok after consuming everything");
	msg_get_u32(&r);
	ok(r.err && !msg_ok(&r), "underflow sets err");
	msgreader_init(&r, b.data, b.len - 1);
	msg_get_u8(&r);
	msg_get_u32(&r);
	ok(!msg_ok(&r), "leftover bytes are not ok");
	msgbuf_reset(&b);
	msg_add_u32(&b, 1000);          /* a string length past the end */
	msg_add_data(&b, "ab", 2);
	msgreader_init(&r, b.data, b.len);
	is_str(msg_get_str(&r), "", "truncated string reads as empty");
	ok(r.err, "  and sets err");
	msgbuf_reset(&b);
	msg_add_u32(&b, 5);             /* "ab\0cd": a NUL inside the length */
	msg_add_data(&b, "ab\0cd", 6);
	msgreader_init(&r, b.data, b.len);
	is_str(msg_get_str(&r), "", "a string with a NUL inside reads as empty");
	ok(r.err, "  and sets err (strings are taken by length, not to a NUL)");
	msgbuf_free(&b);
}

/* test_framing - ipc_frame/ipc_unframe, partial frames, bad frames */
static void
test_framing(void)
{
	struct msgbuf p, f;
	const uint8_t *pl;
	const char *why = NULL;
	uint16_t type = 0;
	uint32_t flags = 0;
	size_t plen = 0, i;
	struct msgreader r;
	long n;
	int partial_ok = 1;

	msgbuf_init(&p);
	msgbuf_init(&f);
	msg_add_u32(&p, 7);
	msg_add_str(&p, "0123456789ABCDEF");
	ipc_frame(&f, IPC_SMTPD_MSG_OPENED, &p, 1);
	ipc_frame(&f, IPC_MASTER_READY, NULL, 0);
	n = ipc_unframe(f.data, f.len, &type, &flags, &pl, &plen, &why);
	is_int(n, (long long)(IPC_HDR_LEN + p.len), "unframe returns the frame length");
	is_int(type, IPC_SMTPD_MSG_OPENED, "  type");
	is_int(flags, IPC_F_FD, "  IPC_F_FD flag");
	is_int((long long)plen, (long long)p.len, "  payload length");
	msgreader_init(&r, pl, plen);
	is_int(msg_get_u32(&r), 7, "  payload u32");
	is_str(msg_get_str(&r), "0123456789ABCDEF", "  payload str");
	ok(msg_ok(&r), "  payload consumed exactly");
	n = ipc_unframe(f.data + n, f.len - (size_t)n, &type, &flags, &pl, &plen, &why);
	ok(n == IPC_HDR_LEN && type == IPC_MASTER_READY && plen == 0 && flags == 0,
	    "second frame: empty IPC_MASTER_READY");
	for (i = 0; i < IPC_HDR_LEN + p.len; i++)
		if (ipc_unframe(f.data, i, &type, &flags, &pl, &plen, &why) != 0)
			partial_ok = 0;
	ok(partial_ok, "every partial frame is incomplete (0)");

	f.data[6] ^= 0xff;
	why = NULL;
	is_int(ipc_unframe(f.data, f.len, &type, &flags, &pl, &plen, &why), -1,
	    "bad version refused");
	ok(why && strstr(why, "version"), "  reason: %s", why ? why : "(none)");
	f.data[6] ^= 0xff;
	f.data[0] = 0x01;               /* length IPC_MAX + 1 */
	f.data[1] = 0x00;
	f.data[2] = 0x10;
	f.data[3] = 0x00;
	is_int(ipc_unframe(f.data, IPC_HDR_LEN, &type, &flags, &pl, &plen, &why), -1,
	    "oversize frame refused from its header alone");
	memset(f.data, 0, 4);
	f.data[0] = 4;
	is_int(ipc_unframe(f.data, f.len, &type, &flags, &pl, &plen, &why), -1,
	    "length below the header refused");
	msgbuf_free(&p);
	msgbuf_free(&f);
	ok(strcmp(ipc_type_name(IPC_DELIVERY_JOB), "IPC_DELIVERY_JOB") == 0 &&
	    strcmp(ipc_type_name(999), "IPC_?") == 0, "ipc_type_name");
}

/* State shared by the event-loop test's handlers. */
static struct loop_state {
	struct event_base *base;
	struct ipc_chan *a, *b;
	int opens;                      /* IPC_QUEUED_MSG_OPEN seen by b */
	char got[8][32];                /* text read through passed pipes */
	int ngot;
	size_t big_len;                 /* payload of the big frame */
	int big_ok;
	int aborts_after_free;          /* frames b saw after freeing itself */
	int closed_a;                   /* a's on_close calls */
} st;

/* pipe_with - a pipe holding text; returns the read end */
static int
pipe_with(const char *text)
{
	int p[2];

	if (pipe(p) == -1 || write(p[1], text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(p[1]);
	return p[0];
}

/* h_open - b: answer each open with a pipe carrying "reply N" */
static void
h_open(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	struct msgbuf p;
	uint32_t reqid = msg_get_u32(&m->r);
	char text[32];

	msg_end(&m->r, "IPC_QUEUED_MSG_OPEN");
	st.opens++;
	snprintf(text, sizeof(text), "reply %u", reqid);
	msgbuf_init(&p);
	msg_add_u32(&p, reqid);
	ipc_send(c, IPC_SMTPD_MSG_OPENED, &p, pipe_with(text));
	msgbuf_free(&p);
}

/* h_big - b: a large payload arrives intact */
static void
h_big(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	size_t i;

	st.big_len = m->r.len;
	st.big_ok = 1;
	for (i = 0; i < m->r.len; i++)
		if (m->r.data[i] != (uint8_t)(i * 7))
			st.big_ok = 0;
	ipc_send_empty(c, IPC_MASTER_READY);
}

/* h_abort - b frees itself from inside the handler; later frames in the
 * same read must not be dispatched */
static void
h_abort(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	if (st.b == NULL) {
		st.aborts_after_free++;
		return;
	}
	ipc_chan_free(&st.b);
}

/* h_opened - a: read the passed pipe */
static void
h_opened(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	char buf[32] = "";
	ssize_t n;

	(void)msg_get_u32(&m->r);
	msg_end(&m->r, "IPC_SMTPD_MSG_OPENED");
	if (m->fd >= 0) {
		n = read(m->fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		close(m->fd);
	}
	if (st.ngot < 8)
		snprintf(st.got[st.ngot++], sizeof(st.got[0]), "%s", buf);
}

/* h_ready - a: the big frame was acknowledged */
static void
h_ready(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	event_base_loopbreak(st.base);
}

/* a_closed - a's peer went away */
static void
a_closed(struct ipc_chan *c, void *arg)
{
	st.closed_a++;
	st.a = NULL;
	event_base_loopbreak(st.base);
}

static const struct ipc_handler b_table[] = {
	{ IPC_QUEUED_MSG_OPEN, h_open },
	{ IPC_QUEUED_JOB_RESULT, h_big },
	{ IPC_QUEUED_MSG_ABORT, h_abort },
	{ 0, NULL }
};

static const struct ipc_handler a_table[] = {
	{ IPC_SMTPD_MSG_OPENED, h_opened },
	{ IPC_MASTER_READY, h_ready },
	{ 0, NULL }
};

/* run_loop - run the base for at most 5 seconds */
static void
run_loop(void)
{
	struct timeval tv = { 5, 0 };

	event_base_loopexit(st.base, &tv);
	event_base_dispatch(st.base);
}

/* test_channels - two ipc_chans over a socketpair on one base */
static void
test_channels(void)
{
	struct msgbuf p;
	int sv[2], i;
	uint8_t *big;

	memset(&st, 0, sizeof(st));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	st.base = event_base_new();
	st.a = ipc_chan_new(st.base, sv[0], "a", a_table, a_closed, NULL);
	st.b = ipc_chan_new(st.base, sv[1], "b", b_table, NULL, NULL);
	is_str(ipc_chan_name(st.a), "a", "ipc_chan_name");
	ipc_chan_set_arg(st.a, &st);
	ok(ipc_chan_arg(st.a) == &st, "ipc_chan_arg / set_arg");

	msgbuf_init(&p);
	for (i = 1; i <= 3; i++) {
		msgbuf_reset(&p);
		msg_add_u32(&p, (uint32_t)i);
		ipc_send(st.a, IPC_QUEUED_MSG_OPEN, &p, -1);
	}
	ok(ipc_pending(st.a) > 0, "frames queue without blocking");
	big = malloc(BIG_LEN);
	for (i = 0; i < BIG_LEN; i++)
		big[i] = (uint8_t)(i * 7);
	msgbuf_reset(&p);
	msg_add_data(&p, big, BIG_LEN);
	free(big);
	ipc_send(st.a, IPC_QUEUED_JOB_RESULT, &p, -1);
	run_loop();
	is_int(st.opens, 3, "three opens dispatched");
	is_int(st.ngot, 3, "three descriptors passed back");
	is_str(st.got[0], "reply 1", "  first pipe read through, in order");
	is_str(st.got[1], "reply 2", "  second");
	is_str(st.got[2], "reply 3", "  third");
	is_int((long long)st.big_len, BIG_LEN, "a 600 KB frame crosses in pieces");
	ok(st.big_ok, "  intact");
	is_int((long long)ipc_pending(st.a), 0, "nothing left pending");

	/* b frees itself on the first ABORT; the second must not dispatch,
	 * and a must see the close exactly once */
	ipc_send_empty(st.a, IPC_QUEUED_MSG_ABORT);
	ipc_send_empty(st.a, IPC_QUEUED_MSG_ABORT);
	run_loop();
	ok(st.b == NULL, "b freed itself inside its handler");
	is_int(st.aborts_after_free, 0, "  no dispatch after the free");
	is_int(st.closed_a, 1, "a's on_close ran once when b went away");
	ok(st.a == NULL, "  and a was freed after it");
	msgbuf_free(&p);
	event_base_free(st.base);
}

/* test_blocking - ipc_send_blocking/ipc_recv_blocking with a descriptor */
static void
test_blocking(void)
{
	struct msgbuf p, store;
	struct ipc_msg m;
	int sv[2], fd;
	char buf[32] = "";
	ssize_t n;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	msgbuf_init(&p);
	msgbuf_init(&store);
	msg_add_str(&p, "queue-id");
	fd = pipe_with("through the socket");
	is_int(ipc_send_blocking(sv[0], IPC_DELIVERY_JOB, &p, fd), 0, "ipc_send_blocking");
	close(fd);
	is_int(ipc_send_blocking(sv[0], IPC_MASTER_READY, NULL, -1), 0, "  and an empty frame");
	is_int(ipc_recv_blocking(sv[1], &store, &m), 0, "ipc_recv_blocking");
	is_int(m.type, IPC_DELIVERY_JOB, "  type");
	is_str(msg_get_str(&m.r), "queue-id", "  payload");
	ok(msg_ok(&m.r), "  consumed");
	ok(m.fd >= 0, "  with a descriptor");
	if (m.fd >= 0) {
		n = read(m.fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		close(m.fd);
	}
	is_str(buf, "through the socket", "  the pipe reads through");
	is_int(ipc_recv_blocking(sv[1], &store, &m), 0, "second frame");
	ok(m.type == IPC_MASTER_READY && m.fd == -1 && m.r.len == 0, "  empty, no fd");
	close(sv[0]);
	is_int(ipc_recv_blocking(sv[1], &store, &m), -1, "EOF gives -1");
	close(sv[1]);
	msgbuf_free(&p);
	msgbuf_free(&store);
}

/* test_violation - a bad frame makes the receiving process exit 70 */
static void
test_violation(void)
{
	static const struct ipc_handler none[] = { { 0, NULL } };
	uint8_t bad[IPC_HDR_LEN] = { IPC_HDR_LEN, 0, 0, 0, 1, 0, 0x7f, 0x7f, 0, 0, 0, 0 };
	int sv[2], status = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	if ((pid = fork()) == 0) {
		struct event_base *base = event_base_new();

		close(sv[0]);
		alarm(5);
		freopen("/dev/null", "w", stderr);
		ipc_chan_new(base, sv[1], "victim", none, NULL, NULL);
		event_base_dispatch(base);
		_exit(0);
	}
	close(sv[1]);
	if (write(sv[0], bad, sizeof(bad)) != (ssize_t)sizeof(bad))
		abort();
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_FATAL,
	    "bad version: fatalx, exit %d", EXIT_FATAL);
	close(sv[0]);
}

static int untrusted_closed, untrusted_violated;

/* u_closed - on_close of the untrusted channel */
static void
u_closed(struct ipc_chan *c, void *arg)
{
	untrusted_closed++;
	untrusted_violated = ipc_chan_violated(c);
	event_base_loopbreak(arg);
}

/* test_untrusted - the same bad frame on an untrusted channel closes it
 * (on_close once, violated set) and the process lives on */
static void
test_untrusted(void)
{
	static const struct ipc_handler none[] = { { 0, NULL } };
	uint8_t bad[IPC_HDR_LEN] = { IPC_HDR_LEN, 0, 0, 0, 1, 0, 0x7f, 0x7f, 0, 0, 0, 0 };
	struct event_base *base = event_base_new();
	struct timeval tv = { 5, 0 };
	int sv[2];

	if (base == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	ipc_chan_set_untrusted(ipc_chan_new(base, sv[1], "untrusted", none, u_closed, base));
	if (write(sv[0], bad, sizeof(bad)) != (ssize_t)sizeof(bad))
		abort();
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	ok(untrusted_closed == 1, "untrusted bad frame: on_close called once (%d)",
	    untrusted_closed);
	ok(untrusted_violated, "untrusted bad frame: ipc_chan_violated() says so");
	close(sv[0]);
	event_base_free(base);
}

static int reject_calls;

/* h_reject - a handler that finds its frame malformed */
static void
h_reject(struct ipc_chan *c, struct ipc_msg *m, void *arg)
{
	reject_calls++;
	ipc_chan_reject(c, "malformed %s", ipc_type_name(m->type));
}

/* test_reject - a handler's ipc_chan_reject() on an untrusted channel
 * closes it like a framing violation; the frames after it are not run */
static void
test_reject(void)
{
	static const struct ipc_handler table[] = {
		{ IPC_MASTER_READY, h_reject },
		{ 0, NULL },
	};
	struct event_base *base = event_base_new();
	struct timeval tv = { 5, 0 };
	struct msgbuf f;
	int sv[2];

	if (base == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	untrusted_closed = untrusted_violated = 0;
	ipc_chan_set_untrusted(ipc_chan_new(base, sv[1], "rejecting", table, u_closed,
	    base));
	msgbuf_init(&f);
	ipc_frame(&f, IPC_MASTER_READY, NULL, 0);
	ipc_frame(&f, IPC_MASTER_READY, NULL, 0);
	if (write(sv[0], f.data, f.len) != (ssize_t)f.len)
		abort();
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	ok(reject_calls == 1, "reject: the frames after it are not dispatched (%d)",
	    reject_calls);
	ok(untrusted_closed == 1 && untrusted_violated,
	    "reject: on_close once, ipc_chan_violated() says so");
	msgbuf_free(&f);
	close(sv[0]);
	event_base_free(base);
}

/* main - run the groups */
int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("ipc-test", 1, LOG_LEVEL_WARNING);
	test_msgbuf();
	test_framing();
	test_channels();
	test_blocking();
	test_violation();
	test_untrusted();
	test_reject();
	return done_testing();
}
