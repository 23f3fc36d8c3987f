# 52-bounce.t - delivery status notifications (RFC 3464), the delay
# warning, expiry, and the queue events httpd receives.
#
# Routes: *@bad.test -> a relay to a scripted server answering RCPT with
# 550; *@slow.test -> a relay to one answering RCPT with 451; everything
# else (the senders) -> the maildir. So:
#  - two recipients at bad.test failing in the same round share ONE DSN
#    that lands in the maildir, from MAILER-DAEMON with the null sender,
#    and parses as multipart/report with message/delivery-status
#    (Reporting-MTA, Arrival-Date, Final-Recipient, Action: failed,
#    Status, Remote-MTA, Diagnostic-Code) and text/rfc822-headers;
#  - a message from <> that bounces gets no DSN (logged, no loop);
#  - slow.test is deferred: after delay_warning (1s) one "delayed" DSN,
#    then after the lifetime (4s) it expires: a "failed" DSN with 4.4.7.
#  - httpd (log_level debug) logs the queue events it receives.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $have_mime = eval { require MIME::Parser; 1 };

my ($badport, $slowport) = (free_port(), free_port());
my $bad = scripted_smtp_server($badport,
    [ { RCPT => '550 5.1.1 <x@bad.test>: Recipient address rejected: no such user' } ]);
my $slow = scripted_smtp_server($slowport,
    [ { RCPT => '451 4.2.0 Mailbox busy, try later' } ]);
my $extra = <<"EOT";
transport badrelay {
	type = relay
	host = "127.0.0.1:$badport"
	timeout = 5s
}
transport slowrelay {
	type = relay
	host = "127.0.0.1:$slowport"
	timeout = 5s
}
route "*\@bad.test" { transport = badrelay }
route "*\@slow.test" { transport = slowrelay }
EOT
my $conf = write_config(extra => $extra, lifetime => '4s', delay_warning => '1s',
    log_level => 'debug');
my $pm = start_postern($conf);
my $maildir = $pm->maildir;

# dsn_files - maildir files that are DSNs (From MAILER-DAEMON)
sub dsn_files {
    return grep { (slurp($_) // '') =~ /^From: Mail Delivery System <MAILER-DAEMON\@postern\.test>/m }
        maildir_files($maildir);
}

# parts - (content-type, body) of each part of a multipart/report message
sub parts {
    my ($text) = @_;
    if ($have_mime) {
        my $p = MIME::Parser->new;
        $p->output_to_core(1);
        $p->tmp_to_core(1);
        my $e = eval { $p->parse_data($text) } or return ();
        return () unless $e->mime_type eq 'multipart/report';
        return map { [ $_->mime_type, $_->bodyhandle ? $_->bodyhandle->as_string
            : join('', map { $_->as_string } $_->parts) ] } $e->parts;
    }
    my ($b) = $text =~ /^Content-Type: multipart\/report;[^\n]*\n?\s*boundary="([^"]+)"/mi
        or return ();
    my @p = split /^--\Q$b\E(?:--)?\n/m, $text;
    shift @p;
    return map { my ($h, $body) = split /\n\n/, $_, 2;
        my ($ct) = $h =~ /^Content-Type: ([^;\s]+)/mi; [ lc($ct // ''), $body // '' ] } @p;
}

# ---- 550 for two recipients: one DSN with both
my $tag = unique_tag('bounce');
my ($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org',
    [ 'one@bad.test', 'two@bad.test' ],
    make_message(subject => $tag, to => 'one@bad.test, two@bad.test'));
is($code, 250, 'message to bad.test accepted') or diag($text);
my $q = quotemeta($qid // 'NOID');
ok($pm->wait_log(qr/$q: bounce-sent id=[0-9A-F]{16} to=<sender\@example\.org> action=failed nrcpt=2/, 15),
    'log: one bounce-sent line for both recipients') or diag($pm->log_tail(30));
ok(wait_for(sub { scalar dsn_files() }, 15, 'DSN in the maildir'), 'the DSN lands in the maildir');
my @dsn = dsn_files();
is(scalar @dsn, 1, 'exactly one DSN for the two recipients');
my $d = slurp($dsn[0] // '/nonexistent') // '';
like($d, qr/^Return-Path: <>$/m, 'the DSN has the null sender');
like($d, qr/^Content-Type: multipart\/report; report-type=delivery-status;/m,
    'multipart/report; report-type=delivery-status');
like($d, qr/^Auto-Submitted: auto-replied$/m, 'Auto-Submitted: auto-replied');
my @p = parts($d);
is(scalar @p, 3, 'three parts' . ($have_mime ? ' (MIME::Parser)' : ' (regex)'));
is($p[0][0], 'text/plain', 'part 1 is text/plain');
is($p[1][0], 'message/delivery-status', 'part 2 is message/delivery-status');
is($p[2][0], 'text/rfc822-headers', 'part 3 is text/rfc822-headers');
my $st = $p[1][1] // '';
like($st, qr/^Reporting-MTA: dns; postern\.test\r?$/m, 'Reporting-MTA');
like($st, qr/^Arrival-Date: \w{3}, \d+ \w{3} \d{4} /m, 'Arrival-Date');
for my $r (qw(one two)) {
    like($st, qr/^Final-Recipient: rfc822; $r\@bad\.test\r?\nAction: failed\r?\nStatus: 5\.1\.1\r?$/m,
        "Final-Recipient $r, Action: failed, Status: 5.1.1");
}
like($st, qr/^Remote-MTA: dns; 127\.0\.0\.1\r?$/m, 'Remote-MTA');
like($st, qr/^Diagnostic-Code: smtp; 550 5\.1\.1 <x\@bad\.test>: Recipient address rejected: no such user\r?$/m,
    'Diagnostic-Code: the remote reply and nothing else (no TLS state, no command)');
like($p[0][1] // '', qr/^<one\@bad\.test>: 550 5\.1\.1 <x\@bad\.test>: Recipient address rejected: no such user\r?$/m,
    'the human part quotes the same reply');
like($pm->log_text, qr/to=<one\@bad\.test> .*status=bounced \(550 5\.1\.1 .* no such user \(in reply to RCPT TO\) \[TLS=none\]\)/,
    'the log line still says what the reply answered and the TLS state');
like($p[2][1] // '', qr/^Subject: \Q$tag\E\r?$/m, 'the original headers are included');
unlike($p[2][1] // '', qr/Hello from Postern::Test/, 'but not the body');

# ---- no DSN for <>
($code, $text, $qid) = send_mail($pm->smtp_port, '', 'three@bad.test',
    make_message(subject => unique_tag('null'), to => 'three@bad.test'));
is($code, 250, 'message from <> accepted') or diag($text);
$q = quotemeta($qid // 'NOID');
ok($pm->wait_log(qr/$q: no failed DSN: the sender is <>/, 15), 'log: no DSN to <>')
    or diag($pm->log_tail(20));
unlike($pm->log_text, qr/$q: bounce-sent/, 'no bounce-sent for <>');

# ---- delay warning, then expiry
my $stag = unique_tag('slow');
($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org', 'late@slow.test',
    make_message(subject => $stag, to => 'late@slow.test'));
is($code, 250, 'message to slow.test accepted') or diag($text);
$q = quotemeta($qid // 'NOID');
ok($pm->wait_log(qr/$q: bounce-sent id=\S+ to=<sender\@example\.org> action=delayed nrcpt=1/, 15),
    'log: a delay warning DSN') or diag($pm->log_tail(30));
ok($pm->wait_log(qr/$q: to=<late\@slow\.test> .*dsn=4\.4\.7 status=bounced \(delivery time expired/, 20),
    'log: expired after the lifetime (dsn 4.4.7)') or diag($pm->log_tail(30));
ok($pm->wait_log(qr/$q: bounce-sent id=\S+ to=<sender\@example\.org> action=failed nrcpt=1/, 10),
    'log: the expiry DSN');
my @warn = $pm->log_text =~ /$q: bounce-sent id=\S+ [^\n]*action=delayed/g;
is(scalar @warn, 1, 'the delay warning is sent once');
ok(wait_for(sub { scalar(dsn_files()) >= 3 }, 15, 'three DSNs'), 'delay and expiry DSNs delivered');
my ($delayed) = grep { /Action: delayed/ } map { slurp($_) // '' } dsn_files();
like($delayed // '', qr/^Status: 4\.2\.0\r?$/m, 'delayed DSN: Status 4.2.0');
like($delayed // '', qr/^Will-Retry-Until: /m, 'delayed DSN: Will-Retry-Until');
my ($expired) = grep { /Status: 4\.4\.7/ } map { slurp($_) // '' } dsn_files();
like($expired // '', qr/^Action: failed\r?$/m, 'expiry DSN: Action: failed, Status: 4.4.7');
like($expired // '', qr/^Subject: \Q$stag\E\r?$/m, 'expiry DSN carries the original headers');

# ---- events reach httpd
# httpd hears of events asynchronously: wait for each line
ok($pm->wait_log(qr/httpd\[\d+\]: (?:debug: )?queue event \{[^\n]*"event":"bounced"/, 10),
    'httpd received a "bounced" event')
    or diag(join("\n", grep { /httpd/ } split /\n/, $pm->log_text));
ok($pm->wait_log(qr/httpd\[\d+\]: (?:debug: )?queue event \{[^\n]*"event":"expired"[^\n]*"rcpt":"late\@slow\.test"/, 10),
    'httpd received an "expired" event');
ok($pm->wait_log(qr/httpd\[\d+\]: (?:debug: )?queue event \{[^\n]*"event":"queued"/, 10),
    'httpd received a "queued" event');
ok(wait_for(sub { !spool_files($pm->spool) }, 15, 'empty spool'), 'spool empty at the end');

is($pm->stop, 0, 'postern stops with status 0');
stop_pid($_) for $bad, $slow;
done_testing;
