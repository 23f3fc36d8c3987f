// t/interop/nodemailer.js - the Node nodemailer driver of
// t/19-interop-node.t (nodemailer from npm, installed by tools/deps.sh
// into the test extras folder; the test passes it as POSTERN_NODE_MODULES;
// no network at test time).
//
// Usage: node nodemailer.js JOB.json. One SMTP transport for the job's
// mode ("mta": plain SMTP, nodemailer's opportunistic STARTTLS as it
// comes; "sub": requireTLS then AUTH; "smtps": secure then AUTH; the
// server certificate verified against the job's CA), all messages over
// it: a message with "raw" is the message file sent as it is, with its
// envelope (nodemailer adds SMTPUTF8 for UTF-8 addresses); any other is
// composed by nodemailer from from/to/subject/text and the attachment.
// Prints "TAG ok" or "TAG error: ..." per message.
'use strict';
const fs = require('fs');
const path = require('path');
const modules = process.env.POSTERN_NODE_MODULES;
const nodemailer = require(path.join(modules, 'nodemailer'));

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

function transport() {
    const t = {
        host: '127.0.0.1', port: job.port, name: job.helo,
        secure: job.mode === 'smtps', requireTLS: job.mode === 'sub',
        tls: { ca: fs.readFileSync(job.ca) },
        connectionTimeout: 20000, greetingTimeout: 20000, socketTimeout: 20000,
    };
    if (job.mode !== 'mta')
        t.auth = { user: job.user, pass: job.password };
    return nodemailer.createTransport(t);
}

function mail(m) {
    if (m.raw)
        return { envelope: { from: m.from, to: [m.to] }, raw: fs.readFileSync(m.file) };
    const out = {
        from: { name: 'Interop Sender', address: m.from },
        to: { name: 'Interop Rcpt', address: m.to },
        subject: m.kind + ' ' + m.tag, text: m.body,
    };
    if (m.attachment)
        out.attachments = [{ filename: 'data.bin', content: fs.readFileSync(m.attachment) }];
    return out;
}

async function main() {
    const t = transport();
    for (const m of job.messages) {
        try {
            await t.sendMail(mail(m));
            console.log(m.tag + ' ok');
        } catch (e) {
            console.log(m.tag + ' error: ' + String(e.message).replace(/\n/g, ' '));
        }
    }
    t.close();
}

main();
