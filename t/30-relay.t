# 30-relay.t - the relay transport against a real SMTP peer (Postfix's
# smtp-sink). The smarthost is down at first: the message is deferred
# (dsn 4.4.1, "connect to ..."), then the sink starts and the retry
# (retry_base 1s) delivers it with every recipient; MAIL carries
# BODY=8BITMIME for an 8-bit message; the log and /metrics agree.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $sinkport = free_port();
my $sinkdir = tempdir() . '/sink';
my $conf = write_config(transport => 'relay', relay_port => $sinkport,
    relay_timeout => '5s');
my $pm = start_postern($conf);
my $port = $pm->smtp_port;

# sink_with - the sink message containing $tag (bounded wait), or undef
sub sink_with {
    my ($tag, $timeout) = @_;
    my $m;
    wait_for(sub { ($m) = grep { /\Q$tag\E(?![\w-])/ } sink_messages($sinkdir); $m },
        $timeout // 15, "sink message with $tag");
    return $m;
}

# ---- smarthost down: deferred
my $tag = unique_tag('relay');
my ($code, $text, $qid) = send_mail($port, 'sender@example.org',
    ['one@example.com', 'two@example.com'],
    make_message(subject => $tag, body => "first relay message $tag\n"));
is($code, 250, 'message accepted') or diag($text);
my $q = quotemeta($qid // 'NOID');
ok($pm->wait_log(qr/$q: to=<one\@example\.com> from=<sender\@example\.org> relay=\S+ delay=\S+ attempt=1 dsn=4\.4\.1 status=deferred \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:$sinkport: /, 10),
    'smarthost down: status=deferred dsn=4.4.1 with "connect to HOST[IP]:PORT"')
    or diag($pm->log_tail(20));

# ---- smarthost up: the retry delivers
my $sink = smtp_sink($sinkport, $sinkdir);
my $m = sink_with($tag, 20);
ok($m, 'the sink received the message after the retry');
$m //= '';
like($m, qr/^X-Helo-Args: postern\.test$/m, 'EHLO postern.test');
like($m, qr/^X-Mail-Args: <sender\@example\.org>(?: .*)?$/m, 'MAIL FROM the envelope sender');
like($m, qr/^X-Rcpt-Args: <one\@example\.com>/m, 'RCPT one@');
like($m, qr/^X-Rcpt-Args: <two\@example\.com>/m, 'RCPT two@');
like($m, qr/^Received: from client\.test .*\n\s+by postern\.test \(Postern\) with ESMTP id \Q$qid\E\b/m,
    'postern\'s Received: travels with the message') if $qid;
like($m, qr/^first relay message \Q$tag\E$/m, 'body arrived');
for my $rcpt (qw(one two)) {
    ok($pm->wait_log(qr/$q: to=<$rcpt\@example\.com> .*relay=127\.0\.0\.1\[127\.0\.0\.1\]:$sinkport .*attempt=\d+ dsn=2\.\d\.\d status=sent/, 10),
        "log: $rcpt\@ status=sent via 127.0.0.1[127.0.0.1]:$sinkport");
}
is(scalar(grep { /\Q$tag\E(?![\w-])/ } sink_messages($sinkdir)), 1,
    'one copy for both recipients');

# ---- 8-bit message: BODY=8BITMIME
my $tag8 = unique_tag('relay8');
($code, $text) = send_mail($port, 'sender@example.org', 'three@example.com',
    make_message(subject => $tag8, body => "caf\xc3\xa9 \xe2\x82\xac\n"));
is($code, 250, '8-bit message accepted') or diag($text);
my $m8 = sink_with($tag8) // '';
like($m8, qr/^X-Mail-Args: .*\bBODY=8BITMIME/m, 'MAIL carries BODY=8BITMIME for 8-bit data');
like($m8, qr/caf\xc3\xa9 \xe2\x82\xac/, '8-bit bytes intact');

# ---- counters
my $url = $pm->url('/metrics');
ok(wait_for(sub { (metric_sum(metrics($url), 'postern_deliveries_total', status => 'delivered') // 0) >= 3 },
    10, 'delivered >= 3'), 'deliveries_total{status=delivered} counts per recipient');
cmp_ok(metric_sum(metrics($url), 'postern_deliveries_total', status => 'deferred') // 0, '>=', 2,
    'deliveries_total{status=deferred} counted the outage');
ok(wait_for(sub { !spool_files($pm->spool) }, 10, 'empty spool'), 'spool empty afterwards');

is($pm->stop, 0, 'postern stops with status 0');
stop_pid($sink);
done_testing;
