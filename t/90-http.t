# 90-http.t - postern-httpd: /healthz (200 JSON), /metrics (every family
# of the master spec with HELP and TYPE, real values that move after a
# message and after a refusal), 404 and 405 with JSON bodies.
use strict;
use warnings;
use Test::More;
use JSON::PP ();
use Postern::Test;

require_build();

my $conf = write_config(trusted_networks => ['192.0.2.0/24'], relay_domains => ['example.net']);
my $pm = start_postern($conf);
my $json = JSON::PP->new;

# decode - JSON body or undef
sub decode { my $d = eval { $json->decode($_[0] // '') }; return $d }

# ---- /healthz
my $r = http_get($pm->url('/healthz'));
is($r->{status}, 200, '/healthz 200');
like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON content type');
is_deeply(decode($r->{content}), { status => 'ok' }, '{"status":"ok"}');

# ---- /metrics: families, types, help
$r = http_get($pm->url('/metrics'));
is($r->{status}, 200, '/metrics 200');
like($r->{headers}{'content-type'} // '', qr{^text/plain; version=0\.0\.4}, 'Prometheus text content type');
my $m = metrics($pm->url('/metrics'));
my %families = (
    postern_connections_total => 'counter',
    postern_messages_accepted_total => 'counter',
    postern_smtpd_rejections_total => 'counter',
    postern_deliveries_total => 'counter',
    postern_dkim_signatures_total => 'counter',
    postern_queue_messages => 'gauge',
    postern_queue_recipients => 'gauge',
    postern_child_up => 'gauge',
    postern_child_restarts_total => 'counter',
    postern_start_time_seconds => 'gauge',
    postern_build_info => 'gauge',
);
for my $f (sort keys %families) {
    is($m->{"#TYPE $f"}, $families{$f}, "# TYPE $f $families{$f}");
    ok(defined $m->{"#HELP $f"} && length $m->{"#HELP $f"}, "# HELP $f");
    ok(grep({ /^\Q$f\E(?:\{|$)/ } keys %$m), "$f has samples");
}
for my $reason (qw(relay_denied size rcpt_limit syntax queue_error protocol)) {
    ok(defined metric($m, 'postern_smtpd_rejections_total', reason => $reason),
        "rejections_total{reason=\"$reason\"}");
}
for my $status (qw(delivered deferred bounced)) {
    ok(defined metric($m, 'postern_deliveries_total', transport => 'maildir', status => $status),
        "deliveries_total{transport=\"maildir\",status=\"$status\"}");
}
for my $proc (qw(smtpd queued delivery httpd)) {
    is(metric($m, 'postern_child_up', process => $proc, index => '0'), 1,
        "child_up{process=\"$proc\",index=\"0\"} 1");
    ok(defined metric($m, 'postern_child_restarts_total', process => $proc, index => '0'),
        "child_restarts_total{process=\"$proc\",index=\"0\"}");
}
my $start = $m->{postern_start_time_seconds} // 0;
ok($start > time - 120 && $start <= time + 1, 'start_time_seconds is the start time');
ok(grep({ /^postern_build_info\{version="[^"]+"\}$/ && $m->{$_} == 1 } keys %$m),
    'build_info{version="..."} 1');

# ---- counters move
my $tag = unique_tag('http');
my ($code, $text) = send_mail($pm->smtp_port, 'sender@example.org', 'user@example.net',
    make_message(subject => $tag, to => 'user@example.net'));
is($code, 250, 'message accepted') or diag($text);
my $s = smtp_raw($pm->smtp_port);
$s->cmd('EHLO client.test');
$s->cmd('MAIL FROM:<sender@example.org>');
is($s->cmd('RCPT TO:<user@example.com>')->{code}, 554, 'relay denied');
is($s->cmd('RCPT TO:<user%evil.example@example.net>')->{code}, 501, 'syntax error');
$s->cmd('QUIT');
my $m2;
ok(wait_for(sub { $m2 = metrics($pm->url('/metrics'));
    (metric_sum($m2, 'postern_deliveries_total', status => 'delivered') // 0)
        > (metric_sum($m, 'postern_deliveries_total', status => 'delivered') // 0) },
    10, 'delivered counter'), 'deliveries_total{status="delivered"} went up');
cmp_ok($m2->{postern_messages_accepted_total} // 0, '>', $m->{postern_messages_accepted_total} // 0,
    'messages_accepted_total went up');
cmp_ok($m2->{postern_connections_total} // 0, '>=', ($m->{postern_connections_total} // 0) + 2,
    'connections_total went up');
for my $reason (qw(relay_denied syntax)) {
    cmp_ok(metric($m2, 'postern_smtpd_rejections_total', reason => $reason) // 0, '>',
        metric($m, 'postern_smtpd_rejections_total', reason => $reason) // 0,
        "rejections_total{reason=\"$reason\"} went up");
}
ok(wait_for(sub { my $g = metrics($pm->url('/metrics'));
    defined metric_sum($g, 'postern_queue_messages') && metric_sum($g, 'postern_queue_messages') == 0
        && ($g->{postern_queue_recipients} // -1) == 0 }, 10, 'queue gauges 0'),
    'queue gauges back to 0 once delivered');

# ---- errors
$r = http_get($pm->url('/nope'));
is($r->{status}, 404, 'unknown path: 404');
is_deeply(decode($r->{content}), { error => 'not found' }, '404 {"error":"not found"}');
like($r->{headers}{'content-type'} // '', qr{^application/json}, '404 is JSON');
for my $path ('/metrics', '/healthz') {
    $r = http_get($pm->url($path), method => 'POST', content => 'x');
    is($r->{status}, 405, "POST $path: 405");
    is_deeply(decode($r->{content}), { error => 'method not allowed' },
        '405 {"error":"method not allowed"}');
}

is($pm->stop, 0, 'postern stops with status 0');
done_testing;
