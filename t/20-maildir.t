# 20-maildir.t - messages in by SMTP (swaks, Net::SMTP, raw bytes), out
# into a Maildir: one file per message in new/, Return-Path: and Received:
# (with the queue id from the 250 reply) prepended, LF line ends,
# dot-unstuffing, 8-bit bytes intact, the log lines and /metrics counters.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $conf = write_config();
my $pm = start_postern($conf);
my $port = $pm->smtp_port;
my $maildir = $pm->maildir;

# find_mail - the maildir file containing $tag (bounded wait), or undef
sub find_mail {
    my ($tag) = @_;
    my $file;
    wait_for(sub {
        ($file) = grep { (slurp($_) // '') =~ /\Q$tag\E(?![\w-])/ } maildir_files($maildir);
        return $file;
    }, 10, "a maildir message with $tag");
    return $file;
}

# ---- swaks
SKIP: {
    skip 'swaks not installed', 4 unless -x '/usr/bin/swaks';
    my $tag = unique_tag('swaks');
    my ($st, $out, $err) = run_cmd(['/usr/bin/swaks', '--server', "127.0.0.1:$port",
        '--helo', 'client.test', '--from', 'sender@example.org',
        '--to', 'rcpt@example.com', '--header', "Subject: $tag",
        '--body', "swaks body $tag"], 30);
    is($st, 0, 'swaks exits 0') or diag($out . $err);
    my ($qid) = $out =~ /250 2\.0\.0 Ok: queued as ([0-9A-F]+)/;
    like($qid // '', qr/^[0-9A-F]{16}$/, 'swaks got a queue id');
    my $f = find_mail($tag);
    ok($f, 'swaks message in new/');
    like(slurp($f // '/nonexistent') // '', qr/^Received: .*\n\s+by postern\.test \(Postern\) with ESMTP id \Q$qid\E\b/m,
        'Received: names the queue id') if $qid;
}

# ---- Net::SMTP
my $tag = unique_tag('netsmtp');
my ($code, $text, $qid) = send_mail($port, 'sender@example.org', 'rcpt@example.com',
    make_message(subject => $tag, to => 'rcpt@example.com',
        body => "line 1\n.leading dot\nlast line\n"));
is($code, 250, 'Net::SMTP message accepted') or diag($text);
like($qid // '', qr/^[0-9A-F]{16}$/, 'queue id is 16 upper-case hex digits');
my $f = find_mail($tag);
ok($f, 'Net::SMTP message in new/');
my $m = slurp($f // '/nonexistent') // '';
like($m, qr/\AReturn-Path: <sender\@example\.org>\n/, 'Return-Path: first');
like($m, qr/\AReturn-Path: [^\n]*\nReceived: from client\.test \(\S+ \[127\.0\.0\.1\]\)\n\s+by postern\.test \(Postern\) with ESMTP id \Q$qid\E\n\s+for <rcpt\@example\.com>; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [-+]\d{4}/,
    'Received: header with helo, IP, hostname, queue id, recipient, date')
    if $qid;
unlike($m, qr/\r/, 'LF line ends in the maildir file');
like($m, qr/\nline 1\n\.leading dot\nlast line\n/, 'body intact (Net::SMTP stuffs, postern unstuffs)');
like(($f // '') =~ s{.*/}{}r, qr/^\d+\.M\d+P\d+Q\d+\.postern\.test$/,
    'maildir file name SECONDS.MusecPpidQn.HOSTNAME');
my $q = quotemeta($qid // 'NOID');
ok($pm->wait_log(qr/$q: client=\[127\.0\.0\.1\] helo=client\.test from=<sender\@example\.org> size=\d+ nrcpt=1/, 5),
    'smtpd logs the acceptance line');
ok($pm->wait_log(qr/$q: to=<rcpt\@example\.com> from=<sender\@example\.org> relay=maildir:\S+ delay=\d+(?:\.\d)? attempt=1 dsn=2\.0\.0 status=sent/, 5),
    'delivery log line: status=sent');

# ---- raw bytes: dot-unstuffing, 8-bit body, null sender
my $rtag = unique_tag('raw');
my $s = smtp_raw($port);
$s->cmd('EHLO client.test');
is($s->cmd('MAIL FROM:<> BODY=8BITMIME')->{code}, 250, 'MAIL FROM:<> BODY=8BITMIME');
is($s->cmd('RCPT TO:<rcpt@example.com>')->{code}, 250, 'RCPT');
is($s->cmd('DATA')->{code}, 354, 'DATA');
my $eight = "caf\xc3\xa9 \xe2\x82\xac \xff\xfe\x80 end";
$s->send("Subject: $rtag\r\nFrom: <x\@example.org>\r\n\r\n..x\r\n...y\r\n.\r\n");
my $r = $s->reply;
is($r->{code}, 250, 'raw message accepted') or diag($r->{raw});
is($s->cmd('MAIL FROM:<> BODY=8BITMIME')->{code}, 250, 'second MAIL');
$s->cmd('RCPT TO:<rcpt@example.com>');
$s->cmd('DATA');
my $rtag2 = unique_tag('raw8');
$s->send("Subject: $rtag2\r\n\r\n..x\r\n...y\r\nx.y\r\n$eight\r\n.\r\n");
is($s->reply->{code}, 250, '8-bit message accepted');
$s->cmd('QUIT');
my $rf = find_mail($rtag);
my $rm = slurp($rf // '/nonexistent') // '';
like($rm, qr/\AReturn-Path: <>\n/, 'null sender: Return-Path: <>');
like($rm, qr/\n\n\.x\n\.\.y\n\z/, '"..x" arrives as ".x", "...y" as "..y"');
my $rf2 = find_mail($rtag2);
my $rm2 = slurp($rf2 // '/nonexistent') // '';
like($rm2, qr/\n\n\.x\n\.\.y\nx\.y\n\Q$eight\E\n\z/, '8-bit body bytes intact');

# ---- one message, two recipients: one file
my $mtag = unique_tag('multi');
($code, $text) = send_mail($port, 'sender@example.org',
    ['a@example.com', 'b@example.com'], make_message(subject => $mtag));
is($code, 250, 'two-recipient message accepted') or diag($text);
ok(find_mail($mtag), 'two-recipient message delivered');
my @files = grep { (slurp($_) // '') =~ /\Q$mtag\E/ } maildir_files($maildir);
is(scalar @files, 1, 'one file for a message with two recipients');

# ---- metrics
my $url = $pm->url('/metrics');
my $want = -x '/usr/bin/swaks' ? 5 : 4;
ok(wait_for(sub { (metric_sum(metrics($url), 'postern_deliveries_total',
    status => 'delivered') // 0) >= $want + 1 }, 10, 'delivered counter'),
    "deliveries_total{status=delivered} >= @{[$want + 1]} (per recipient)");
my $mm = metrics($url);
cmp_ok($mm->{postern_messages_accepted_total} // 0, '>=', $want, 'messages_accepted_total counts');
cmp_ok($mm->{postern_connections_total} // 0, '>=', $want - 1, 'connections_total counts');
ok(wait_for(sub { !spool_files($pm->spool) }, 10, 'empty spool'),
    'spool empty once everything is delivered');

is($pm->stop, 0, 'postern stops with status 0');
done_testing;
