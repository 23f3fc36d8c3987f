#!/usr/bin/python3
# dkim-verify.py - an independent DKIM verifier for the tests (dkimpy,
# Debian python3-dkim; ed25519 needs python3-nacl).
# usage: dkim-verify.py MESSAGE-FILE NAME=TXT...
#   NAME is "selector._domainkey.domain", TXT the record's value. Verifies
#   every DKIM-Signature of the message (a Maildir file: LF line ends, a
#   Return-Path: line first) and prints one line per signature:
#   "N s=SELECTOR a=ALGORITHM pass|fail". Exit 0 when all pass, 1 when one
#   fails, 2 on a usage error.
import sys

import dkim


def main():
    if len(sys.argv) < 3:
        sys.stderr.write("usage: dkim-verify.py FILE NAME=TXT...\n")
        return 2
    records = {}
    for arg in sys.argv[2:]:
        name, _, txt = arg.partition("=")
        records[name.lower().rstrip(".")] = txt.encode()
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[0].lower().startswith(b"return-path:"):
        lines = lines[1:]
    msg = b"\r\n".join(lines)

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return records.get(name.lower().rstrip("."), b"")

    d = dkim.DKIM(msg)
    sigs = [h for h in d.headers if h[0].lower() == b"dkim-signature"]
    if not sigs:
        print("no DKIM-Signature")
        return 1
    ok = True
    for i, (_, value) in enumerate(sigs):
        tags = dict(t.strip().split(b"=", 1) for t in value.split(b";") if b"=" in t)
        res = dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)
        ok = ok and res
        print("%d s=%s a=%s %s" % (i, tags.get(b"s", b"").strip().decode(),
              tags.get(b"a", b"").strip().decode(), "pass" if res else "fail"))
    return 0 if ok else 1


sys.exit(main())
