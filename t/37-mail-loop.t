# 37-mail-loop.t - mail loops, with the loopback DNS server and scripted
# receiving servers of t/33:
#  - an MX (or the implicit MX) that is our own listening address bounces
#    at once with 5.4.6 "mail for DOMAIN loops back to myself", without a
#    connection; a lower-preference MX that is us cuts the list there;
#  - a best MX that greets, or answers EHLO, with our own hostname
#    bounces the same way (a worse MX doing so does not: as in Postfix,
#    only the best MX is taken for us by its name);
#  - hopcount_limit (50): more Received: fields than that, ours included,
#    get 554 5.4.6 at the end of DATA; mail injected by postern-sendmail
#    is bounced by delivery with 5.4.6; 0 is a configuration error.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::MxPeer;

require_build();

my $port = free_port();         # our smtpd, and the port MX hosts are asked on
my $dnsport = free_port();
my %peer;
$peer{worse} = Postern::MxPeer->start('127.0.0.3', $port);
$peer{greet} = Postern::MxPeer->start('127.0.0.4', $port,
    greeting => '220 postern.test ESMTP');
$peer{ehlo} = Postern::MxPeer->start('127.0.0.5', $port, ehlo_name => 'POSTERN.test');

dns_server($dnsport, {
    'loop.test' => { MX => '10 mx.loop.test' },
    'mx.loop.test' => { A => '127.0.0.1' },
    'self.test' => { A => '127.0.0.1' },                   # implicit MX
    'backup.test' => { MX => ['10 down.backup.test', '20 me.backup.test',
        '30 worse.backup.test'] },
    'down.backup.test' => { A => '127.0.1.1' },            # refused
    'me.backup.test' => { A => '127.0.0.1' },
    'worse.backup.test' => { A => '127.0.0.3' },
    'greet.test' => { MX => '10 mx.greet.test' },
    'mx.greet.test' => { A => '127.0.0.4' },
    'ehlo.test' => { MX => '10 mx.ehlo.test' },
    'mx.ehlo.test' => { A => '127.0.0.5' },
    'nonbest.test' => { MX => ['10 down.backup.test', '20 mx.greet.test'] },
    'ok.test' => { MX => '10 worse.backup.test' },
});

my $conf = write_config(smtp_port => $port, default_transport => 'mx',
    extra => mx_transport_text(port => $port, dnsport => $dnsport, reuse_max => 1));
my $pm = start_postern($conf);

# submit - one message to $rcpt; returns its quoted queue id
sub submit { return submit_one($pm, $_[0], 'loop') }

# logged - the first delivery line of $q to $rcpt must match $re
sub logged {
    my ($q, $rcpt, $re, $name) = @_;
    like(first_delivery_line($pm, $q, $rcpt) || '(no delivery line)', $re, $name)
        or diag($pm->log_tail(20));
}

# connections_from_us - SMTP sessions our own smtpd got from delivery
sub connections_from_us {
    my @c = $pm->log_text =~ /smtpd\[\d+\]: \S+: client=\S+ helo=postern\.test /g;
    return scalar @c;
}

# ---- the next hop is our own listening address
my $q = submit('a@loop.test');
logged($q, 'a@loop.test',
    qr/attempt=1 dsn=5\.4\.6 status=bounced \(mail for loop\.test loops back to myself\)/,
    'the MX is our own address: bounced 5.4.6 at once');
$q = submit('b@self.test');
logged($q, 'b@self.test',
    qr/attempt=1 dsn=5\.4\.6 status=bounced \(mail for self\.test loops back to myself\)/,
    'the implicit MX is our own address: bounced 5.4.6');
like($pm->log_text, qr/loop\.test: MX host mx\.loop\.test \(preference 10\) is this server/,
    'the reason is logged');

$q = submit('c@backup.test');
logged($q, 'c@backup.test', qr/relay=down\.backup\.test\[127\.0\.1\.1\]:$port .*dsn=4\.4\.1 status=deferred/,
    'we are the preference-20 MX: only the preference-10 one is tried');
is($peer{worse}->connections, 0, 'the preference-30 MX is never tried');
is(connections_from_us(), 0, 'delivery never connected to our own smtpd');

# ---- the best MX greets or answers EHLO with our own hostname
$q = submit('d@greet.test');
logged($q, 'd@greet.test',
    qr/relay=mx\.greet\.test\[127\.0\.0\.4\]:$port .*dsn=5\.4\.6 status=bounced \(mail for greet\.test loops back to myself/,
    'the best MX greets with our hostname: bounced 5.4.6');
like($pm->log_text, qr/$q: mx\.greet\.test\[127\.0\.0\.4\]:$port greeted me with my own hostname postern\.test/,
    'and a warning says why');
is(scalar $peer{greet}->messages, 0, 'nothing was sent to it');
$q = submit('e@ehlo.test');
logged($q, 'e@ehlo.test',
    qr/dsn=5\.4\.6 status=bounced \(mail for ehlo\.test loops back to myself/,
    'the best MX answers EHLO with our hostname (any case): bounced 5.4.6');
like($pm->log_text, qr/$q: mx\.ehlo\.test\S+ replied to EHLO with my own hostname/,
    'and a warning says why');
$q = submit('f@nonbest.test');
logged($q, 'f@nonbest.test', qr/relay=mx\.greet\.test\[127\.0\.0\.4\]:$port .*status=sent/,
    'a worse MX greeting with our hostname is not taken for us');

# ---- the hop count
# hops - a message with $n Received: fields
sub hops {
    my ($n, $tag) = @_;
    my $r = join('', map { "Received: from hop$_.example (hop$_.example [192.0.2.$_])\n"
        . "\tby next.example; Mon, 1 Jan 2026 00:00:00 +0000\n" } 1 .. $n);
    return $r . make_message(to => 'h@ok.test', subject => $tag);
}
my $tag = unique_tag('hops49');
my ($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org', 'h@ok.test',
    hops(49, $tag));
is($code, 250, '49 Received: fields, 50 with ours: accepted') or diag($text);
$q = quotemeta($qid // 'NOID');
logged($q, 'h@ok.test', qr/status=sent/, 'and delivered');
($code, $text) = send_mail($pm->smtp_port, 'sender@example.org', 'h@ok.test',
    hops(50, unique_tag('hops50')));
is($code, 554, '50 Received: fields, 51 with ours: refused at the end of data');
like($text, qr/5\.4\.6 Too many hops: 51 Received: header fields, the limit is 50 \(a mail loop\?\)/,
    'with 5.4.6 and the count');

my $in = tempdir() . '/hops.eml';
spit($in, hops(60, unique_tag('hops60')));
my ($st, $out, $err) = run_cmd(['/bin/sh', '-c',
    "'" . bin('postern-sendmail') . "' -C '$conf' -f sender\@example.org h\@ok.test < '$in'"]);
is($st, 0, 'postern-sendmail queues a message with 60 Received: fields') or diag($err);
ok($pm->wait_log(qr/warning: (\S+): 6\d Received: header fields, more than hopcount_limit 50; bounced as a mail loop/, 15),
    'delivery takes it for a loop') or diag($pm->log_tail(10));
my ($lq) = $pm->log_text =~ /warning: (\S+): 6\d Received: header fields, more than hopcount_limit/;
logged(quotemeta($lq // 'NOID'), 'h@ok.test',
    qr/dsn=5\.4\.6 status=bounced \(Too many hops: 6\d Received: header fields, the limit is 50 \(a mail loop\?\)\)/,
    'and bounces it with 5.4.6');
is(scalar $peer{worse}->messages, 1, 'only the first of the three reached the server');
is(metric(metrics($pm->url('/metrics')), 'postern_smtpd_rejections_total',
    reason => 'too_many_hops'), 1,
    'the refusal is counted in /metrics');

$pm->stop;

# ---- hopcount_limit is checked
my $bad = tempdir() . '/bad.conf';
spit($bad, "hopcount_limit = 0\n");
($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $bad, 'check-config']);
isnt($st, 0, 'hopcount_limit = 0 is refused');
like($err . $out, qr/bad\.conf:1: option 'hopcount_limit': expected a number from 1 to 1000, got '0'/,
    'naming the file, the line and what was expected');
done_testing();
