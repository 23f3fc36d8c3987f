# 36-mx-hostile.t - the mx transport in a hostile or broken world, with
# the loopback DNS server and scripted receiving servers of t/33:
#  - MX targets that are not host names (spaces, ';', '<', an IP address)
#    are skipped and logged escaped, never connected to or put in relay=;
#  - with 30 MX records the best one is tried even when it comes last in
#    the answer, and at most 10 hosts are tried;
#  - a first MX that never greets, hangs up, greets with a line that is
#    not a reply, or trickles its greeting a byte at a time: the next MX
#    gets the message within the same attempt;
#  - a DNS query the server drops is asked again within the attempt.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::MxPeer;

require_build();

my $port = free_port();
my $dnsport = free_port();
my %peer;
$peer{evil} = Postern::MxPeer->start('127.0.0.11', $port);
$peer{good} = Postern::MxPeer->start('127.0.0.12', $port);
$peer{best} = Postern::MxPeer->start('127.0.0.13', $port);
$peer{silent} = Postern::MxPeer->start('127.0.0.14', $port, silent => 1);
$peer{hangup} = Postern::MxPeer->start('127.0.0.15', $port, hangup => 1);
$peer{garbage} = Postern::MxPeer->start('127.0.0.16', $port,
    greeting => 'HELLO this is not a reply');
$peer{trickle} = Postern::MxPeer->start('127.0.0.17', $port, trickle => 1,
    greeting => '220 trickle.peer ESMTP one byte at a time, for a long while');
$peer{backup} = Postern::MxPeer->start('127.0.0.18', $port);
$peer{dropped} = Postern::MxPeer->start('127.0.0.19', $port);

# 29 MX hosts that refuse connections (nothing listens on 127.0.1.N):
# many.test lists them with preferences 20..48, then the best (10) last;
# far.test lists a working host of preference 90 first, then these 29
# with preferences 29 down to 1
my (%zone, @many, @far);
for my $i (1 .. 29) {
    push @many, sprintf('%d r%02d.many.test', 19 + $i, $i);
    unshift @far, sprintf('%d r%02d.far.test', $i, $i);   # worst first
    $zone{ sprintf('r%02d.many.test', $i) } = { A => "127.0.1.$i" };
    $zone{ sprintf('r%02d.far.test', $i) } = { A => "127.0.1.$i" };
}
push @many, '10 best.many.test';
unshift @far, '90 best.far.test';  # the 30th best, first in the answer
$zone{'best.many.test'} = { A => '127.0.0.13' };
$zone{'best.far.test'} = { A => '127.0.0.13' };
my $evil = 'mx name;with spaces&<>.d';
(my $evil_q = $evil) =~ s/([ ;])/$1 eq ' ' ? '\\032' : '\\;'/ge;   # as asked

dns_server($dnsport, {
    %zone,
    'many.test' => { MX => \@many },
    'far.test' => { MX => \@far },
    'hostile.test' => { MX => [{ preference => 10, exchange => $evil },
        '15 127.0.0.11', '20 good.hostile.test'] },
    $evil_q => { A => '127.0.0.11' },
    '127.0.0.11' => { A => '127.0.0.11' },
    'good.hostile.test' => { A => '127.0.0.12' },
    'allbad.test' => { MX => [{ preference => 10, exchange => $evil },
        '20 -dash-.allbad.test'] },
    '-dash-.allbad.test' => { A => '127.0.0.12' },
    'silent.test' => { MX => ['10 mx.silent.test', '20 backup.silent.test'] },
    'mx.silent.test' => { A => '127.0.0.14' },
    'backup.silent.test' => { A => '127.0.0.18' },
    'hangup.test' => { MX => ['10 mx.hangup.test', '20 backup.hangup.test'] },
    'mx.hangup.test' => { A => '127.0.0.15' },
    'backup.hangup.test' => { A => '127.0.0.18' },
    'garbage.test' => { MX => ['10 mx.garbage.test', '20 backup.garbage.test'] },
    'mx.garbage.test' => { A => '127.0.0.16' },
    'backup.garbage.test' => { A => '127.0.0.18' },
    'trickle.test' => { MX => ['10 mx.trickle.test', '20 backup.trickle.test'] },
    'mx.trickle.test' => { A => '127.0.0.17' },
    'backup.trickle.test' => { A => '127.0.0.18' },
    'onlysilent.test' => { MX => '10 mx.silent.test' },
    'dropmx.test' => { MX => '10 mx.dropmx.test', DROP => { MX => 1 } },
    'mx.dropmx.test' => { A => '127.0.0.19' },
    'dropa.test' => { MX => '10 mx.dropa.test' },
    'mx.dropa.test' => { A => '127.0.0.19', DROP => { A => 1, AAAA => 1 } },
});

my $conf = write_config(default_transport => 'mx',
    extra => mx_transport_text(port => $port, dnsport => $dnsport, timeout => '2s',
    reuse_max => 1));
my $pm = start_postern($conf);

# submit - one message to $rcpt; returns its quoted queue id
sub submit { return submit_one($pm, $_[0], 'hostile') }

# logged - the first delivery line of $q to $rcpt must match $re; the line
sub logged {
    my ($q, $rcpt, $re, $name) = @_;
    my $line = first_delivery_line($pm, $q, $rcpt);
    like($line || '(no delivery line)', $re, $name) or diag($pm->log_tail(20));
    return $line;
}

# ---- MX targets that are not host names
my $q = submit('a@hostile.test');
my $line = logged($q, 'a@hostile.test',
    qr/relay=good\.hostile\.test\[127\.0\.0\.12\]:$port .*status=sent/,
    'invalid MX targets skipped: delivered to the valid one (preference 20)');
is(scalar $peer{evil}->messages, 0, 'nothing delivered to the host of the invalid names');
is($peer{evil}->connections, 0, 'the invalid names were not even connected to');
my $log = $pm->log_text;
# (c-ares hands ';' over as "\;", and the backslash is escaped in turn)
like($log, qr/$q: hostile\.test: MX host mx\\040name(?:\\134)?;with\\040spaces&<>\.d is not a valid host name; skipped/,
    'the invalid name is logged, its blanks escaped');
like($log, qr/$q: hostile\.test: MX host 127\.0\.0\.11 is not a valid host name; skipped/,
    'an IP address as MX target is skipped too');
unlike($log, qr/mx name/, 'the raw name with its blanks appears in no log line');

$q = submit('b@allbad.test');
logged($q, 'b@allbad.test',
    qr/relay=allbad\.test .*dsn=5\.4\.4 status=bounced \(no MX host of allbad\.test has a valid host name\)/,
    'no valid MX target at all: bounced 5.4.4, no implicit MX');

# ---- 30 MX records: all sorted, then the best 10 kept
$q = submit('c@many.test');
logged($q, 'c@many.test', qr/relay=best\.many\.test\[127\.0\.0\.13\]:$port .*status=sent/,
    'the preference-10 host, last of 30 in the answer, is tried first');
unlike($pm->log_text, qr/$q: r\d\d\.many\.test/, 'no worse MX host was tried before it');

$q = submit('d@far.test');
logged($q, 'd@far.test', qr/dsn=4\.4\.1 status=deferred/,
    'the best 10 of 30 refuse: deferred');
my @tried = $pm->log_text =~ /$q: (r\d\d)\.far\.test\[/g;
is_deeply(\@tried, [map { sprintf('r%02d', $_) } 1 .. 10],
    'exactly the 10 best hosts were tried, in preference order')
    or diag("@tried");
is(scalar $peer{best}->messages, 1, 'the 30th host was not tried');

# ---- a bad first MX: the next one within the same attempt
for my $case (
    ['silent', 'never greets (the greeting times out)'],
    ['hangup', 'hangs up before greeting'],
    ['garbage', 'greets with a line that is not a reply'],
    ['trickle', 'trickles its greeting a byte at a time'],
) {
    my ($name, $what) = @$case;
    my $rcpt = "e\@$name.test";
    $q = submit($rcpt);
    logged($q, $rcpt,
        qr/relay=backup\.$name\.test\[127\.0\.0\.18\]:$port .*attempt=1 .*status=sent/,
        "first MX $what: delivered to the second at attempt 1");
    like($pm->log_text, qr/$q: mx\.$name\.test\[127\.0\.0\.1\d\]:$port: connect to mx\.$name\.test\S+: .*while waiting for the greeting; trying the next address/,
        'the bad greeting is logged');
}
is(scalar $peer{trickle}->messages, 0, 'the trickling server got nothing');
like($pm->log_text, qr/mx\.trickle\.test\S+: the greeting not complete within 2s/,
    'the bound of the whole greeting fired (each byte did not re-arm it)');

$q = submit('f@onlysilent.test');
logged($q, 'f@onlysilent.test',
    qr/dsn=4\.4\.2 status=deferred \(connect to mx\.silent\.test\[127\.0\.0\.14\]:$port: conversation timed out while waiting for the greeting\)/,
    'the only MX never greets: deferred 4.4.2');

# ---- a dropped DNS query is asked again within the attempt
$q = submit('g@dropmx.test');
logged($q, 'g@dropmx.test', qr/relay=mx\.dropmx\.test\[127\.0\.0\.19\]:$port .*attempt=1 .*status=sent/,
    'the MX query dropped once: asked again, delivered at attempt 1');
$q = submit('h@dropa.test');
logged($q, 'h@dropa.test', qr/relay=mx\.dropa\.test\[127\.0\.0\.19\]:$port .*attempt=1 .*status=sent/,
    'the A and AAAA queries dropped once: asked again, delivered at attempt 1');

$pm->stop;
done_testing();
