# 33-mx.t - the mx transport against a loopback DNS server (Net::DNS) and
# receiving servers on several 127.0.0.x addresses and ::1, all on one
# port (the transport's `port`): MX preference order, fallback to the
# next MX after a refused connection and after a 4xx greeting, the
# implicit MX, Null MX (5.1.10), NXDOMAIN (5.1.2), SERVFAIL and a silent
# server (4.4.3), equal preferences shared at random, and IPv6.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::MxPeer;

require_build();

my $port = free_port();
my $dnsport = free_port();
my %peer;
$peer{mx1} = Postern::MxPeer->start('127.0.0.2', $port);
$peer{mx2} = Postern::MxPeer->start('127.0.0.3', $port);
$peer{backup} = Postern::MxPeer->start('127.0.0.5', $port);
$peer{busy} = Postern::MxPeer->start('127.0.0.6', $port,
    greeting => '421 4.3.2 busy, try later');
$peer{second} = Postern::MxPeer->start('127.0.0.7', $port);
$peer{implicit} = Postern::MxPeer->start('127.0.0.8', $port);
$peer{e1} = Postern::MxPeer->start('127.0.0.9', $port);
$peer{e2} = Postern::MxPeer->start('127.0.0.10', $port);
my $v6 = eval { Postern::MxPeer->start('::1', $port) };

dns_server($dnsport, {
    'pref.test' => { MX => ['20 mx2.pref.test', '10 mx1.pref.test'] },
    'mx1.pref.test' => { A => '127.0.0.2' },
    'mx2.pref.test' => { A => '127.0.0.3' },
    'fallback.test' => { MX => ['10 down.fallback.test', '20 backup.fallback.test'] },
    'down.fallback.test' => { A => '127.0.0.4' },
    'backup.fallback.test' => { A => '127.0.0.5' },
    'greet.test' => { MX => ['10 busy.greet.test', '20 second.greet.test'] },
    'busy.greet.test' => { A => '127.0.0.6' },
    'second.greet.test' => { A => '127.0.0.7' },
    'implicit.test' => { A => '127.0.0.8' },
    'null.test' => { MX => '0 .' },
    'fail.test' => { SERVFAIL => 1 },
    'slow.test' => { SILENT => 1 },
    'equal.test' => { MX => ['10 e1.equal.test', '10 e2.equal.test'] },
    'e1.equal.test' => { A => '127.0.0.9' },
    'e2.equal.test' => { A => '127.0.0.10' },
    'six.test' => { MX => '10 mx.six.test' },
    'mx.six.test' => { AAAA => '::1', A => '127.0.0.99' },
});

my $conf = write_config(default_transport => 'mx',
    extra => mx_transport_text(port => $port, dnsport => $dnsport, reuse_max => 1));
my $pm = start_postern($conf);

# submit - one message to $rcpt; returns its quoted queue id
sub submit { return submit_one($pm, $_[0], 'mx') }

# logged - wait for the delivery line of $q to $rcpt matching $re
sub logged {
    my ($q, $rcpt, $re, $name) = @_;
    my $r = quotemeta($rcpt);
    ok($pm->wait_log(qr/$q: to=<$r> from=<sender\@example\.org> .*?$re/, 15), $name)
        or diag($pm->log_tail(15));
}

# ---- preference order
my $q = submit('a@pref.test');
logged($q, 'a@pref.test', qr/relay=mx1\.pref\.test\[127\.0\.0\.2\]:$port .*status=sent/,
    'the lowest preference (10) is tried first');
is(scalar $peer{mx1}->messages, 1, 'mx1 received it');
is($peer{mx2}->connections, 0, 'mx2 (preference 20) was not contacted');

# ---- the next MX after a refused connection
$q = submit('b@fallback.test');
logged($q, 'b@fallback.test',
    qr/relay=backup\.fallback\.test\[127\.0\.0\.5\]:$port .*status=sent/,
    'refused by the first MX: delivered to the second');
like($pm->log_text, qr/down\.fallback\.test\[127\.0\.0\.4\]:$port: Connection refused; trying the next address/,
    'the refused connection is logged');

# ---- the next MX after a 4xx greeting
$q = submit('c@greet.test');
logged($q, 'c@greet.test', qr/relay=second\.greet\.test\[127\.0\.0\.7\]:$port .*status=sent/,
    '421 greeting from the first MX: delivered to the second');
is($peer{busy}->connections, 1, 'the busy MX was tried once');

# ---- implicit MX
$q = submit('d@implicit.test');
logged($q, 'd@implicit.test', qr/relay=implicit\.test\[127\.0\.0\.8\]:$port .*status=sent/,
    'no MX record: the domain\'s own A record');

# ---- Null MX, NXDOMAIN: bounced at once
$q = submit('e@null.test');
logged($q, 'e@null.test', qr/relay=null\.test delay=\S+ attempt=1 dsn=5\.1\.10 status=bounced \(Domain null\.test does not accept mail \(null MX\)\)/,
    'Null MX: bounced at once with 5.1.10');
$q = submit('f@nowhere.test');
logged($q, 'f@nowhere.test', qr/attempt=1 dsn=5\.1\.2 status=bounced \(Host or domain name not found\. .*name=nowhere\.test type=MX/,
    'NXDOMAIN: bounced with 5.1.2');

# ---- SERVFAIL and no answer: deferred
$q = submit('g@fail.test');
logged($q, 'g@fail.test', qr/attempt=1 dsn=4\.4\.3 status=deferred \(Host or domain name not found\. .*type=MX: .*\(try again\)/,
    'SERVFAIL: deferred with 4.4.3');
$q = submit('h@slow.test');
logged($q, 'h@slow.test', qr/attempt=1 dsn=4\.4\.3 status=deferred .*[Tt]imeout/,
    'DNS timeout: deferred with 4.4.3');

# ---- equal preferences: both hosts get messages
for my $i (1 .. 12) {
    my ($code) = send_mail($pm->smtp_port, 'sender@example.org', "r$i\@equal.test",
        make_message(to => "r$i\@equal.test"));
}
ok(wait_for(sub { $peer{e1}->messages + $peer{e2}->messages >= 12 }, 20, '12 messages'),
    'all 12 messages to equal.test delivered')
    or diag(join("\n", grep { /equal\.test/ } split /\n/, $pm->log_text));
my ($n1, $n2) = (scalar $peer{e1}->messages, scalar $peer{e2}->messages);
ok($n1 > 0 && $n2 > 0, "equal preference shared at random ($n1 / $n2)");

# ---- IPv6 and IPv4 addresses of a host
SKIP: {
    skip 'no ::1 listener', 2 unless $v6;
    $q = submit('i@six.test');
    logged($q, 'i@six.test', qr/relay=mx\.six\.test\[::1\]:$port .*status=sent/,
        'the AAAA address is tried (IPv6 first)');
    is(scalar $v6->messages, 1, 'the ::1 server received it');
}

# ---- what the receiving servers saw
my $rec = $peer{mx1}->log_text;
like($rec, qr/^1 C: EHLO postern\.test$/m, 'EHLO with our hostname');
like($rec, qr/^1 BATCH: MAIL,RCPT,DATA$/m, 'PIPELINING: MAIL, RCPT and DATA in one write');

$pm->stop;

# ---- configuration errors name the file, the line and the option
my $ctl = bin('posternctl');
my $cdir = tempdir() . '/badconf';
mkdir $cdir;
for my $case (
    ["transport t {\n\ttype = mx\n\ttls = sometimes\n}\n", qr/:3: option 'tls': expected none, may, encrypt or verify, got 'sometimes'/],
    ["dns_server = \"localhost:53\"\n", qr/:1: option 'dns_server': expected "" or a numeric IP:PORT/],
    ["transport t {\n\ttype = mx\n\tport = 0\n}\n", qr/:3: option 'port': expected a port from 1 to 65535, got '0'/],
    ["transport r {\n\ttype = relay\n\thost = \"a:25\"\n\tauth_user = x\n}\n", qr/option 'auth_password': expected auth_password or auth_password_file with auth_user/],
    ["transport r {\n\ttype = relay\n\thost = \"a:25\"\n\tauth_user = x\n\tauth_password_file = \"/nonexistent/pw\"\n}\n", qr/option 'auth_password_file': cannot read '\/nonexistent\/pw'/],
    ["tls_policy \"x.example\" {\n\tca_file = \"\"\n}\n", qr/option 'level': expected none, may, encrypt or verify, got ''/],
) {
    my ($text, $re) = @$case;
    spit("$cdir/p.conf", $text);
    my ($cst, $cout, $cerr) = run_cmd([$ctl, '-c', "$cdir/p.conf", 'check-config']);
    isnt($cst, 0, "check-config refuses: " . ($text =~ s/\s+/ /gr));
    like($cerr . $cout, $re, 'with file, line, option and what was expected');
}
done_testing();
