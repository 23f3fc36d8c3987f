#!/usr/bin/python3
# t/interop/py_smtplib.py - the Python smtplib driver of t/19-interop-python.t.
#
# Usage: py_smtplib.py JOB.json. The job names the mode ("mta": plain SMTP;
# "sub": STARTTLS then AUTH; "smtps": implicit TLS then AUTH), the port,
# the CA file to verify the server with, the AUTH user and password, the
# AUTH method ("plain" through SMTP.login, or "login-ir": AUTH LOGIN with
# the user name as initial response, smtplib's own LOGIN), and the
# messages, all sent in one session: each a file sent with SMTP.sendmail
# as bytes, which smtplib dot-stuffs but does not touch otherwise: with
# "crlf" its LF line ends are made CR LF first (what the smtplib manual
# asks of bytes), without it they go as they are (what msg.as_bytes()
# gives, a common way to send 8-bit mail); or, with "compose", built with email.message.EmailMessage and sent with
# send_message. Prints "TAG ok" or "TAG error: ..." per message.
import json
import smtplib
import ssl
import sys
from email.message import EmailMessage


def connect(job):
    ctx = ssl.create_default_context(cafile=job["ca"])
    host, port = "127.0.0.1", job["port"]
    if job["mode"] == "smtps":
        s = smtplib.SMTP_SSL(host, port, local_hostname=job["helo"], context=ctx,
                             timeout=20)
    else:
        s = smtplib.SMTP(host, port, local_hostname=job["helo"], timeout=20)
        if job["mode"] == "sub":
            s.starttls(context=ctx)
    s.ehlo(job["helo"])
    if job["mode"] != "mta":
        if job.get("auth") == "login-ir":
            s.user, s.password = job["user"], job["password"]
            s.auth("LOGIN", s.auth_login, initial_response_ok=True)
        else:
            s.login(job["user"], job["password"])
    return s


def composed(m):
    msg = EmailMessage()
    msg["From"] = m["from"]
    msg["To"] = m["to"]
    msg["Subject"] = "composed " + m["tag"]
    msg.set_content(m["body"])
    with open(m["attachment"], "rb") as f:
        msg.add_attachment(f.read(), maintype="application",
                           subtype="octet-stream", filename="data.bin")
    return msg


def send_one(s, m):
    if m.get("compose"):
        s.send_message(composed(m), from_addr=m["from"], to_addrs=[m["to"]])
        return
    with open(m["file"], "rb") as f:
        data = f.read()
    if m.get("crlf"):
        data = data.replace(b"\n", b"\r\n")
    opts = list(m.get("opts", []))
    s.sendmail(m["from"], [m["to"]], data, mail_options=opts)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    s = connect(job)
    for m in job["messages"]:
        try:
            send_one(s, m)
            print(m["tag"], "ok")
        except (smtplib.SMTPException, OSError) as e:
            print(m["tag"], "error:", e)
    s.quit()


main()
