# 50-retry.t - temporary and permanent failures from a scripted SMTP peer.
# Connection 1 answers the end of DATA with 451, connection 2 with 250:
# the message is accepted by the peer exactly once, and the log shows
# status=deferred then status=sent. Connection 3 answers RCPT with 550:
# status=bounced, and the spool is empty afterwards.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $peer = free_port();
my $record = tempdir() . '/scripted.log';
my $spid = scripted_smtp_server($peer, [
    { DOT => '451 4.3.0 Try again later' },
    {},
    { RCPT => '550 5.1.1 <gone@example.com>: Recipient address rejected' },
], record => $record);
# one connection per message: the script answers per connection
my $conf = write_config(transport => 'relay', relay_port => $peer, relay_timeout => '5s',
    relay_extra => "\treuse_max = 1\n");
my $pm = start_postern($conf);

# ---- 451 then 250
my $tag = unique_tag('retry');
my ($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com',
    make_message(subject => $tag));
is($code, 250, 'message accepted') or diag($text);
my $q = quotemeta($qid // 'NOID');
ok($pm->wait_log(qr/$q: to=<rcpt\@example\.com> .*status=sent/, 15),
    'log: status=sent after the retry') or diag($pm->log_tail(20));
my $log = $pm->log_text;
like($log, qr/$q: to=<rcpt\@example\.com> from=<sender\@example\.org> relay=127\.0\.0\.1\[127\.0\.0\.1\]:$peer delay=\S+ attempt=1 dsn=4\.3\.0 status=deferred \(451 4\.3\.0 Try again later\b/,
    'log: attempt 1 deferred with the peer\'s reply');
like($log, qr/$q: to=<rcpt\@example\.com> .*attempt=2 dsn=2\.0\.0 status=sent/,
    'log: attempt 2 sent');
my ($ld) = $log =~ /($q: [^\n]*status=deferred)/;
my ($ls) = $log =~ /($q: [^\n]*status=sent)/;
ok($ld && $ls && index($log, $ld) < index($log, $ls), 'deferred is logged before sent');

my $rec = slurp($record) // '';
like($rec, qr/^1 C: MAIL FROM:<sender\@example\.org> SIZE=\d+/m,
    'MAIL carries SIZE= when the peer offers SIZE');
like($rec, qr/^1 C: EHLO postern\.test/m, 'EHLO with the configured hostname');
my @accepted = $rec =~ /^\d+ S: 250 2\.0\.0 Ok: queued$/mg;
my @msgs = $rec =~ /^\d+ MSG: (\S+)$/mg;
is(scalar @msgs, 2, 'the peer saw the data twice (451, then 250)');
is(scalar @accepted, 1, 'the peer accepted the message exactly once');
like(slurp($msgs[-1] // '/nonexistent') // '', qr/\Q$tag\E/, 'the accepted copy is our message');
ok(wait_for(sub { !spool_files($pm->spool) }, 10, 'empty spool'), 'spool empty after the delivery');

# ---- 550: bounced
my $btag = unique_tag('bounce');
($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org', 'gone@example.com',
    make_message(subject => $btag, to => 'gone@example.com'));
is($code, 250, 'second message accepted') or diag($text);
$q = quotemeta($qid // 'NOID');
ok($pm->wait_log(qr/$q: to=<gone\@example\.com> from=<sender\@example\.org> relay=\S+ delay=\S+ attempt=1 dsn=5\.1\.1 status=bounced \(550 5\.1\.1 /, 15),
    'log: status=bounced dsn=5.1.1 with the reply') or diag($pm->log_tail(20));
ok(wait_for(sub { !spool_files($pm->spool) }, 10, 'empty spool'), 'spool empty after the bounce');
unlike($pm->log_text, qr/$q: to=<gone\@example\.com> [^\n]*attempt=2/, 'a bounce is not retried');

# ---- counters
my $m = metrics($pm->url('/metrics'));
cmp_ok(metric_sum($m, 'postern_deliveries_total', status => 'deferred') // 0, '>=', 1, 'deferred counted');
cmp_ok(metric_sum($m, 'postern_deliveries_total', status => 'delivered') // 0, '>=', 1, 'delivered counted');
cmp_ok(metric_sum($m, 'postern_deliveries_total', status => 'bounced') // 0, '>=', 1, 'bounced counted');
ok(wait_for(sub { my $g = metric_sum(metrics($pm->url('/metrics')), 'postern_queue_messages');
    defined $g && $g == 0 }, 5, 'queue gauge 0'), 'postern_queue_messages back to 0');

is($pm->stop, 0, 'postern stops with status 0');
stop_pid($spid);
done_testing;
