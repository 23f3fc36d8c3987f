#!/usr/bin/perl
# 19-smtpd-dnscache.t - smtpd keeps its FCrDNS verdicts for the TTL of
# the DNS answers that made them (issue 10): a second connection from the
# same address makes no DNS query, a refusal for a missing reverse name is
# kept for the SOA's negative TTL, an NXDOMAIN without an SOA and a
# temporary failure are never kept, and a short TTL runs out.
#
# A Net::DNS server on loopback logs every query it gets (dns_server's
# log option); clients bind to 127.0.0.x source addresses so each one
# meets a different record:
#   127.0.0.3  PTR good.cache.test, A 127.0.0.3 (TTL 60): 220, cached
#   127.0.0.4  PTR short.cache.test, A 127.0.0.4 (TTL 2): 220, expires
#   127.0.0.5  NXDOMAIN with an SOA (negative TTL 60): 554, cached
#   127.0.0.6  NXDOMAIN without an SOA: 554, asked every time
#   127.0.0.7  SERVFAIL: 421, asked every time
#   127.0.0.8  PTR liar.cache.test, A 127.0.0.99: 554, cached
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::IP;
use Time::HiRes qw(time sleep);
use Postern::Test;

require_build();

my $dir = tempdir() . '/dnscache';
mkdir $dir;
my $qlog = "$dir/queries.log";
my $dnsport = free_port();
dns_server($dnsport, {
    '3.0.0.127.in-addr.arpa' => { PTR => 'good.cache.test.' },
    'good.cache.test' => { A => '127.0.0.3' },
    '4.0.0.127.in-addr.arpa' => { PTR => 'short.cache.test.', TTL => 2 },
    'short.cache.test' => { A => '127.0.0.4', TTL => 2 },
    '5.0.0.127.in-addr.arpa' => { NXDOMAIN => 60 },
    '7.0.0.127.in-addr.arpa' => { SERVFAIL => 1 },
    '8.0.0.127.in-addr.arpa' => { PTR => 'liar.cache.test.' },
    'liar.cache.test' => { A => '127.0.0.99' },
}, log => $qlog);

my $conf = write_config(relay_domains => ['example.com'],
    trusted_networks => ['192.0.2.0/24'], extra => <<"EOF");
dns_server = "127.0.0.1:$dnsport"
dns_timeout = 1s
smtpd_client_allow = { ".cache.test" }
EOF
my $pm = start_postern($conf);

# greeting - connect from $local; the code of the first reply line (0 if
# none within 10 s)
sub greeting {
    my ($local) = @_;
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $pm->smtp_port,
        LocalAddr => $local, Timeout => 5) or return 0;
    my ($buf, $sel, $t) = ('', IO::Select->new($s), time() + 10);
    while ($buf !~ /\n/ && time() < $t) {
        last unless $sel->can_read($t - time());
        last unless sysread($s, $buf, 512, length $buf);
    }
    syswrite($s, "QUIT\r\n");
    close $s;
    return $buf =~ /^(\d{3})/ ? $1 : 0;
}

# queries - how many queries the DNS server got for name
sub queries {
    my ($name) = @_;
    return scalar grep { /^\Q$name\E \w+$/ } split /\n/, (slurp($qlog) // '');
}

my %ptr = map { $_ => "$_.0.0.127.in-addr.arpa" } 3 .. 8;

is(greeting('127.0.0.3'), 220, 'forward-confirmed client: 220');
is(queries($ptr{3}), 1, '  one PTR query');
is(queries('good.cache.test'), 1, '  one A query') or diag(slurp($qlog));
is(greeting('127.0.0.3'), 220, 'the same client again: 220');
is(queries($ptr{3}), 1, '  no new PTR query (cached)');
is(queries('good.cache.test'), 1, '  no new A query');
ok($pm->wait_log(qr/client \[127\.0\.0\.3\] is good\.cache\.test \(forward-confirmed, cached\)/, 5),
    '  the log says it came from the cache');

is(greeting('127.0.0.8'), 554, 'PTR name pointing elsewhere: 554');
is(greeting('127.0.0.8'), 554, '  again: 554');
is(queries($ptr{8}) + queries("liar.cache.test"), 2, "  asked once (PTR and A), then cached") or diag(slurp($qlog), $pm->log_tail(30));

is(greeting('127.0.0.5'), 554, 'NXDOMAIN with an SOA: 554');
is(greeting('127.0.0.5'), 554, '  again: 554');
is(queries($ptr{5}), 1, '  one query: kept for the negative TTL of the SOA');

is(greeting('127.0.0.6'), 554, 'NXDOMAIN without an SOA: 554');
is(greeting('127.0.0.6'), 554, '  again: 554');
is(queries($ptr{6}), 2, '  asked each time (RFC 2308: not cacheable)');

is(greeting('127.0.0.7'), 421, 'SERVFAIL: 421');
is(greeting('127.0.0.7'), 421, '  again: 421');
ok(queries($ptr{7}) >= 2, '  a temporary failure is never kept');

is(greeting('127.0.0.4'), 220, 'TTL 2: 220');
is(greeting('127.0.0.4'), 220, '  at once again: 220');
is(queries($ptr{4}), 1, '  from the cache');
sleep(2.5);
is(greeting('127.0.0.4'), 220, '  after the TTL: 220');
is(queries($ptr{4}), 2, '  asked again: the TTL is honoured');

is($pm->stop, 0, 'postern stops cleanly');
$pm->check_sanitizers;
done_testing();
