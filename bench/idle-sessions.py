#!/usr/bin/env python3
"""idle-sessions.py - open N concurrent SMTP sessions and keep them idle.

Used by bench/smtpd-sessions.sh. One process, one epoll loop, non-blocking
sockets: each session connects to HOST:PORT on loopback, reads its whole 220
greeting, optionally sends EHLO and reads the whole 250 reply, and then sends
nothing more. At most --pending sessions are between connect and "ready" at
any time, so the server's listen queue is never flooded.

Source addresses: --src 127.0.X is a prefix; sessions are spread over
127.0.X.1, 127.0.X.2, ... with at most --per-src sessions per address, so
repeated runs never meet an earlier run's TIME_WAIT tuples.

Writes one status line to --status (replaced atomically) when every session
is ready or has failed:
    ready established=N failed=F open_s=T refused=CODE:COUNT,...
then holds the sessions until SIGTERM or --hold seconds, watching for any
byte or close from the server (a session the server ended while idle), and
on exit appends:
    done established=N dropped=D first_drop="..."
Everything is bounded: --timeout for opening, --hold for holding.
"""
import argparse
import errno
import os
import resource
import select
import signal
import socket
import sys
import time

CONNECTING, GREETING, EHLO_SENT, IDLE = range(4)


class Session:
    __slots__ = ("sock", "state", "buf")

    def __init__(self, sock):
        self.sock = sock
        self.state = CONNECTING
        self.buf = b""


def final_reply(buf):
    """the code of a complete SMTP reply in buf ("250-a\\r\\n250 b\\r\\n"), or None"""
    lines = buf.split(b"\r\n")
    for line in lines[:-1]:          # the last element is an unfinished line
        if len(line) >= 4 and line[:3].isdigit() and line[3:4] == b" ":
            return line[:3].decode()
        if len(line) == 3 and line.isdigit():
            return line.decode()
    return None


def raise_nofile(need):
    """soft limit up to the hard one; as root, both up to need if lower"""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < need and os.geteuid() == 0:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def write_status(path, line):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(line + "\n")
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("-n", type=int, required=True)
    p.add_argument("--ehlo", action="store_true")
    p.add_argument("--src", default="127.0.1")
    p.add_argument("--per-src", type=int, default=2000)
    p.add_argument("--pending", type=int, default=200)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--hold", type=float, default=300)
    p.add_argument("--status", required=True)
    a = p.parse_args()
    if not a.host.startswith("127.") or not a.src.startswith("127."):
        sys.exit("idle-sessions: loopback addresses only")

    limit = raise_nofile(a.n + 64)
    if limit < a.n + 64:
        sys.exit("idle-sessions: descriptor limit %d is too low for %d sessions "
                 "(raise ulimit -n)" % (limit, a.n))

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    ep = select.epoll(sizehint=a.n + 16)
    sess = {}
    opened = established = failed = pending = 0
    refused = {}
    t0 = time.monotonic()
    deadline = t0 + a.timeout

    def fail(fd, why):
        nonlocal failed, pending
        s = sess.pop(fd)
        ep.unregister(fd)
        s.sock.close()
        failed += 1
        pending -= 1
        refused[why] = refused.get(why, 0) + 1

    while established + failed < a.n and time.monotonic() < deadline and not stop:
        while opened < a.n and pending < a.pending:
            src = "%s.%d" % (a.src, opened // a.per_src + 1)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind((src, 0))
            rc = s.connect_ex((a.host, a.port))
            opened += 1
            pending += 1
            sess[s.fileno()] = Session(s)
            ep.register(s.fileno(), select.EPOLLOUT | select.EPOLLIN)
            if rc not in (0, errno.EINPROGRESS):
                fail(s.fileno(), "connect:" + errno.errorcode.get(rc, str(rc)))
        for fd, ev in ep.poll(0.2):
            s = sess.get(fd)
            if s is None:
                continue
            if s.state == CONNECTING:
                err = s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(fd, "connect:" + errno.errorcode.get(err, str(err)))
                    continue
                s.state = GREETING
                ep.modify(fd, select.EPOLLIN)
                continue
            try:
                data = s.sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError as e:
                fail(fd, "recv:" + errno.errorcode.get(e.errno, str(e.errno)))
                continue
            if not data:
                fail(fd, "closed")
                continue
            s.buf += data
            code = final_reply(s.buf)
            if code is None:
                continue
            s.buf = b""
            if s.state == GREETING and code == "220" and a.ehlo:
                s.sock.send(b"EHLO bench.client.test\r\n")
                s.state = EHLO_SENT
            elif (s.state == GREETING and code == "220") or \
                    (s.state == EHLO_SENT and code == "250"):
                s.state = IDLE
                established += 1
                pending -= 1
                ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
            else:
                fail(fd, code)
    open_s = time.monotonic() - t0
    ref = ",".join("%s:%d" % kv for kv in sorted(refused.items())) or "-"
    write_status(a.status, "ready established=%d failed=%d open_s=%.2f refused=%s"
                 % (established, failed, open_s, ref))

    # hold: any event on an idle session means the server spoke or closed
    dropped = 0
    first = ""
    end = time.monotonic() + a.hold
    while not stop and time.monotonic() < end:
        for fd, ev in ep.poll(0.5):
            s = sess.pop(fd, None)
            if s is None:
                continue
            ep.unregister(fd)
            try:
                data = s.sock.recv(512)
            except OSError:
                data = b""
            if not first:
                first = data.split(b"\r\n")[0].decode("ascii", "replace") or "(closed)"
            s.sock.close()
            dropped += 1
    with open(a.status, "a") as f:
        f.write('done established=%d dropped=%d first_drop="%s"\n'
                % (established, dropped, first))
    for s in sess.values():
        s.sock.close()


if __name__ == "__main__":
    main()
