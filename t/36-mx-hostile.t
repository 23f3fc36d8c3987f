# 36-mx-hostile.t - the mx transport in a hostile or broken world, with
# the loopback DNS server and scripted receiving servers of t/33:
#  - MX targets that are not host names (spaces, ';', '<', an IP address)
#    are skipped and logged escaped, never connected to or put in relay=;
#  - with 30 MX records the best one is tried even when it comes last in
#    the answer, and at most 10 hosts are tried.
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
});

my $conf = write_config(default_transport => 'mx', extra => <<"EOF");
transport mx {
	type = mx
	port = $port
	timeout = 2s
	reuse_max = 1
}
dns_server = "127.0.0.1:$dnsport"
dns_timeout = 1s
EOF
my $pm = start_postern($conf);

# submit - one message to $rcpt; returns its quoted queue id
sub submit {
    my ($rcpt) = @_;
    my ($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org', $rcpt,
        make_message(to => $rcpt, subject => unique_tag('hostile')));
    is($code, 250, "accepted for $rcpt") or diag($text);
    return quotemeta($qid // 'NOID');
}

# logged - wait for the first delivery line of $q to $rcpt; it must match
# $re. Returns the line.
sub logged {
    my ($q, $rcpt, $re, $name, $wait) = @_;
    my $r = quotemeta($rcpt);
    my $first = qr/^.*$q: to=<$r> from=<sender\@example\.org> .*$/m;
    $pm->wait_log($first, $wait // 15);
    my ($line) = $pm->log_text =~ /($first)/;
    like($line // '(no delivery line)', $re, $name) or diag($pm->log_tail(20));
    return $line // '';
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

$pm->stop;
done_testing();
