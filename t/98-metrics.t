# 98-metrics.t - the /metrics families of issue 6 move as they should,
# end to end: sessions by listener (a plain listener and an smtps one),
# smtpd TLS handshakes ok and failed, outbound TLS handshakes ok and
# failed (an MX peer whose STARTTLS breaks), deliveries by transport and
# status (maildir, mx, relay), deferrals and bounces by reason (a relay
# peer that answers 450 4.2.1, an MX peer that answers 550 5.1.1, the
# queue lifetime running out), DSNs by action, the queue gauge by state
# (deferred, held via posternctl), the age of the oldest message (> 0
# while something waits, 0 once the queue drained), DNS lookups of the mx
# transport against a loopback Net::DNS server; `promtool check metrics`
# on the real output; every label value printed is documented in
# postern-httpd(8).
use strict;
use warnings;
use Test::More;
use IO::Socket::IP;
use Postern::Test;
use Postern::TestSMTPD;
use Postern::MxPeer;

require_build();

my $dir = tempdir() . '/metrics';
mkdir $dir;
my ($crt, $key) = make_cert($dir, 'metrics.postern.test');
my $smtps = free_port();
my $mxport = free_port();
my $relayport = free_port();
my $dnsport = free_port();

my %peer;
$peer{ok} = Postern::MxPeer->start('127.0.0.41', $mxport, starttls => 1,
    cert => $crt, key => $key);
$peer{badtls} = Postern::MxPeer->start('127.0.0.42', $mxport, starttls => 1,
    cert => "$dir/missing.crt", key => "$dir/missing.key");
$peer{perm} = Postern::MxPeer->start('127.0.0.43', $mxport,
    rcpt => '550 5.1.1 No such user here');
$peer{busy} = Postern::MxPeer->start('127.0.0.44', $relayport,
    rcpt => '450 4.2.1 Mailbox busy, try again later');
dns_server($dnsport, {
    'ok.test' => { MX => '10 mx.ok.test' },
    'mx.ok.test' => { A => '127.0.0.41' },
    'badtls.test' => { MX => '10 mx.badtls.test' },
    'mx.badtls.test' => { A => '127.0.0.42' },
    'perm.test' => { MX => '10 mx.perm.test' },
    'mx.perm.test' => { A => '127.0.0.43' },
});

my $lifetime = 10;
my $conf = write_config(name => 'm', lifetime => "${lifetime}s",
    delay_warning => '1s', extra =>
    listen_section('submissions', "127.0.0.1:$smtps", mode => 'smtps',
        tls_cert => "\"$crt\"", tls_key => "\"$key\"") . <<"EOT");
transport mx {
	type = mx
	port = $mxport
	timeout = 5s
}
transport smarthost {
	type = relay
	host = "127.0.0.44:$relayport"
	timeout = 5s
}
route "*\@ok.test" { transport = mx }
route "*\@badtls.test" { transport = mx }
route "*\@perm.test" { transport = mx }
route "*\@relay.test" { transport = smarthost }
dns_server = "127.0.0.1:$dnsport"
dns_timeout = 2s
EOT
my $pm = start_postern($conf);
my $url = $pm->url('/metrics');
my $m0 = metrics($url);

# m - one sample of the latest scrape
sub mv { my ($m, $name, %l) = @_; return metric($m, $name, %l) // 0 }

# submit - one message from sender@example.org; its queue id
sub submit {
    my ($port, @rcpt) = @_;
    my ($code, $text, $qid) = send_mail($port, 'sender@example.org', \@rcpt,
        make_message(to => $rcpt[0], subject => unique_tag('metrics')));
    is($code, 250, "accepted for @rcpt") or diag($text);
    return $qid // 'NOID';
}

# ---- sessions by listener, smtpd TLS handshakes
my $tls = smtpc($smtps, tls => 1);
is($tls ? $tls->{greeting}{code} : 0, 220, 'smtps listener: TLS session and 220');
my $m;
ok(wait_for(sub { $m = metrics($url);
    mv($m, 'postern_smtpd_tls_handshakes_total', result => 'ok')
        > mv($m0, 'postern_smtpd_tls_handshakes_total', result => 'ok') }, 5, 'handshake'),
    'the handshake is counted');
is(mv($m, 'postern_smtpd_sessions', listener => 'submissions'), 1,
    'sessions{listener="submissions"} 1 while one is open');
is(mv($m, 'postern_smtpd_tls_handshakes_total', result => 'ok')
    - mv($m0, 'postern_smtpd_tls_handshakes_total', result => 'ok'), 1,
    'smtpd_tls_handshakes_total{result="ok"} +1');
$tls->cmd('QUIT');
$tls->close;
my $raw = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $smtps, Timeout => 5);
ok($raw, 'plain TCP connection to the smtps listener');
print {$raw} "EHLO not.tls.test\r\n" if $raw;
my $buf = '';
if ($raw) {
    # the server answers garbage with an alert (or nothing) and closes
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    eval { 1 while sysread($raw, $buf, 512) };
    alarm 0;
    close $raw;
}
ok(wait_for(sub { $m = metrics($url);
    mv($m, 'postern_smtpd_sessions', listener => 'submissions') == 0
        && mv($m, 'postern_smtpd_tls_handshakes_total', result => 'failed')
            > mv($m0, 'postern_smtpd_tls_handshakes_total', result => 'failed') },
    10, 'smtps sessions closed'), 'sessions{listener="submissions"} back to 0');
is(mv($m, 'postern_smtpd_tls_handshakes_total', result => 'failed')
    - mv($m0, 'postern_smtpd_tls_handshakes_total', result => 'failed'), 1,
    'smtpd_tls_handshakes_total{result="failed"} +1 (plain text on smtps)');
is(mv($m, 'postern_smtpd_sessions_total', listener => 'submissions')
    - mv($m0, 'postern_smtpd_sessions_total', listener => 'submissions'), 2,
    'sessions_total{listener="submissions"} +2');
is(mv($m, 'postern_smtpd_sessions_total', listener => 'smtp'),
    mv($m0, 'postern_smtpd_sessions_total', listener => 'smtp'),
    'sessions_total{listener="smtp"} did not move');

# ---- messages: maildir, mx (TLS ok, TLS broken, 550), relay (450)
my $port = $pm->smtp_port;
submit($port, 'one@local.test', 'two@local.test');
submit($port, 'user@ok.test');
submit($port, 'user@badtls.test');
submit($port, 'gone@perm.test');
my $busy = submit($port, 'busy@relay.test');
my $held = submit($port, 'held@relay.test');
$m = metrics($url);
is(mv($m, 'postern_smtpd_sessions_total', listener => 'smtp')
    - mv($m0, 'postern_smtpd_sessions_total', listener => 'smtp'), 6,
    'sessions_total{listener="smtp"} +6 (one per message)');
is(mv($m, 'postern_smtpd_sessions_total', listener => 'submissions')
    - mv($m0, 'postern_smtpd_sessions_total', listener => 'submissions'), 2,
    'sessions_total{listener="submissions"} did not move');

ok($pm->wait_log(qr/\Q$held\E: to=<held\@relay\.test> .*status=deferred/, 10),
    'held@relay.test deferred (450)') or diag($pm->log_tail(20));
my ($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $conf, 'queue', 'hold', $held], 20);
is($st, 0, "posternctl queue hold $held") or diag($err);

ok(wait_for(sub { $m = metrics($url);
    mv($m, 'postern_deliveries_total', transport => 'mx', status => 'delivered') >= 2
        && mv($m, 'postern_deliveries_total', transport => 'mx', status => 'bounced') >= 1
        && mv($m, 'postern_queue_messages', state => 'held') == 1
        && mv($m, 'postern_queue_messages', state => 'deferred') >= 1
        && mv($m, 'postern_queue_oldest_message_age_seconds') > 1 },
    15, 'mx results, held message'),
    'mx delivered 2 and bounced 1; one message held, one deferred (busy@relay.test)')
    or diag(join("\n", grep { /^postern_(?:deliveries|queue)/ } sort keys %$m));
cmp_ok(mv($m, 'postern_queue_oldest_message_age_seconds'), '<', $lifetime + 5,
    'oldest_message_age_seconds is the age of the oldest message');
ok(mv($m, 'postern_deferrals_total', reason => 'mailbox') >= 2,
    'deferrals_total{reason="mailbox"} (450 4.2.1) counts both relay recipients');
ok(mv($m, 'postern_deliveries_total', transport => 'relay', status => 'deferred') >= 2,
    'deliveries_total{transport="relay",status="deferred"} >= 2');
is(mv($m, 'postern_bounces_total', reason => 'address')
    - mv($m0, 'postern_bounces_total', reason => 'address'), 1,
    'bounces_total{reason="address"} +1 (550 5.1.1)');
ok(mv($m, 'postern_smtp_client_tls_handshakes_total', result => 'ok') >= 1,
    'smtp_client_tls_handshakes_total{result="ok"} (ok.test)');
ok(mv($m, 'postern_smtp_client_tls_handshakes_total', result => 'failed') >= 1,
    'smtp_client_tls_handshakes_total{result="failed"} (badtls.test)');
is(mv($m, 'postern_smtp_client_tls_handshakes_total', result => 'ok'),
    mv($m, 'postern_smtp_client_tls_sessions_total', verified => 'yes')
    + mv($m, 'postern_smtp_client_tls_sessions_total', verified => 'no'),
    'client handshakes ok = sessions verified yes + no');
ok(mv($m, 'postern_dns_lookups_total', type => 'mx', result => 'ok') >= 3,
    'dns_lookups_total{type="mx",result="ok"} >= 3');
ok(mv($m, 'postern_dns_lookups_total', type => 'a', result => 'ok') >= 3,
    'dns_lookups_total{type="a",result="ok"} >= 3');

# ---- a child killed: its gauges do not survive it (the shared region
# does): smtpd's open sessions, queued's messages by state
my $open = smtp_raw($port);
$open->cmd('EHLO open.test');
is(mv(metrics($url), 'postern_smtpd_sessions', listener => 'smtp'), 1,
    'sessions{listener="smtp"} 1 while one is open');
for my $role (qw(smtpd queued)) {
    my ($pid) = $pm->child_pids($role);
    ok($pid && kill('KILL', $pid), "SIGKILL postern-$role");
    ok($pm->wait_log(qr/restarting \Q$role\E\[0\] in \d+s/, 5), "$role restarts");
    ok(wait_for(sub { $pm->healthz == 200 }, 15, '/healthz 200'), "$role is back");
}
ok(wait_for(sub { $m = metrics($url);
    mv($m, 'postern_queue_messages', state => 'held') == 1 }, 10, 'held 1'),
    'queue_messages{state="held"} 1 after queued restarted (not 2)');
is(mv($m, 'postern_smtpd_sessions', listener => 'smtp'), 0,
    'sessions{listener="smtp"} 0 after smtpd restarted');

# ---- the relay recipients expire; the queue drains
ok($pm->wait_log(qr/\Q$busy\E: to=<busy\@relay\.test> .*status=bounced \(delivery time expired/,
    $lifetime + 10), 'busy@relay.test expired') or diag($pm->log_tail(20));
($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $conf, 'queue', 'release', $held], 20);
is($st, 0, "posternctl queue release $held") or diag($err);
ok(wait_for(sub { $m = metrics($url);
    (metric_sum($m, 'postern_queue_messages') // -1) == 0
        && mv($m, 'postern_queue_recipients') == 0 }, 15, 'queue empty'),
    'the queue drained') or diag(join("\n", grep { /^postern_queue/ } sort keys %$m));
is(mv($m, 'postern_queue_oldest_message_age_seconds'), 0,
    'oldest_message_age_seconds 0 once the queue is empty');
is(mv($m, 'postern_queue_messages', state => $_), 0, "queue_messages{state=\"$_\"} 0")
    for qw(active pending deferred held broken);
is(mv($m, 'postern_bounces_total', reason => 'expired')
    - mv($m0, 'postern_bounces_total', reason => 'expired'), 2,
    'bounces_total{reason="expired"} +2');
is(mv($m, 'postern_deliveries_total', transport => 'relay', status => 'bounced'), 2,
    'deliveries_total{transport="relay",status="bounced"} 2 (expired)');
is(mv($m, 'postern_deliveries_total', transport => 'relay', status => 'delivered'), 0,
    'deliveries_total{transport="relay",status="delivered"} 0');
is(mv($m, 'postern_deliveries_total', transport => 'mx', status => 'delivered'), 2,
    'deliveries_total{transport="mx",status="delivered"} 2');
is(mv($m, 'postern_deliveries_total', transport => 'mx', status => 'bounced'), 1,
    'deliveries_total{transport="mx",status="bounced"} 1');
is(mv($m, 'postern_dsn_messages_total', action => 'failed'), 3,
    'dsn_messages_total{action="failed"} 3 (550, two expiries)');
ok(mv($m, 'postern_dsn_messages_total', action => 'delayed') >= 1,
    'dsn_messages_total{action="delayed"} >= 1 (delay_warning 1s)');
my $dsns = mv($m, 'postern_dsn_messages_total', action => 'failed')
    + mv($m, 'postern_dsn_messages_total', action => 'delayed');
is(mv($m, 'postern_deliveries_total', transport => 'maildir', status => 'delivered'), 2 + $dsns,
    "deliveries_total{transport=\"maildir\",status=\"delivered\"} = 2 + $dsns DSNs");
is(metric_sum($m, 'postern_deliveries_total', status => 'delivered'),
    mv($m, 'postern_deliveries_total', transport => 'maildir', status => 'delivered') + 2,
    'every delivery has a transport (sum over transports)');
is(metric_sum($m, 'postern_deferrals_total'),
    metric_sum($m, 'postern_deliveries_total', status => 'deferred'),
    'deferrals_total sums to deliveries_total{status="deferred"}');
is(metric_sum($m, 'postern_bounces_total'),
    metric_sum($m, 'postern_deliveries_total', status => 'bounced'),
    'bounces_total sums to deliveries_total{status="bounced"}');
ok($peer{busy}->connections > 0, 'the relay peer was tried');
is(scalar($peer{busy}->messages), 0, 'the relay peer took no message');

# ---- promtool on the real output
SKIP: {
    my $promtool = (grep { -x "$_/promtool" } split(/:/, $ENV{PATH} // ''))[0];
    skip('promtool not installed (Debian package prometheus)', 2) unless $promtool;
    my $file = tempdir() . '/metrics98.txt';
    spit($file, http_get($url)->{content} // '');
    my $pout = `$promtool/promtool check metrics < '$file' 2>&1`;
    is($?, 0, 'promtool check metrics exits 0') or diag($pout);
    is($pout, '', 'promtool has nothing to complain about') or diag($pout);
}

# ---- every fixed label value printed is documented in postern-httpd(8)
{
    my $man = slurp(srcdir() . '/man/postern-httpd.8') // '';
    my %free = map { $_ => 1 } qw(listener version process index);
    my (%seen, @undoc);
    for my $line (split /\n/, http_get($url)->{content} // '') {
        next if $line =~ /^#/;
        my ($labels) = $line =~ /^\w+\{(.*)\}/ or next;
        while ($labels =~ /(\w+)="((?:[^"\\]|\\.)*)"/g) {
            next if $free{$1} || $seen{"$1=$2"}++;
            push(@undoc, "$1=\"$2\"") unless $man =~ /\bLi \Q$2\E\b/;
        }
    }
    ok(scalar(keys %seen) >= 40 && !@undoc,
        'every label value is documented (' . scalar(keys %seen) . ')')
        or diag('undocumented: ' . join(', ', @undoc));
}

is($pm->stop, 0, 'postern stops with status 0');
done_testing;
