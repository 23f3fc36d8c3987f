# 38-dns-lost.t - a DNS lookup that never completes does not keep a
# recipient in flight forever. The loopback DNS server answers; the
# resolver library loses the first MX query of lost.test (never sends it,
# never calls back: t/shim/ares-lose.so, preloaded, acts as c-ares 1.34.7
# does with a query whose id collides with one in flight). Delivery gives
# the lookup up after its bound (dnsloop_bound: 4 s with dns_timeout 1s),
# logs it, the recipient is deferred with 4.4.3 and delivered at the next
# attempt.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::MxPeer;

require_build();
my $shim = builddir() . '/t/shim/ares-lose.so';
plan(skip_all => "no $shim (make check builds it)") unless -f $shim;

my $port = free_port();
my $dnsport = free_port();
my $peer = Postern::MxPeer->start('127.0.0.2', $port);
dns_server($dnsport, {
    'lost.test' => { MX => '10 mx.lost.test' },
    'mx.lost.test' => { A => '127.0.0.2' },
});
my $conf = write_config(default_transport => 'mx',
    extra => mx_transport_text(port => $port, dnsport => $dnsport));
my $pm;
{
    local $ENV{LD_PRELOAD} = $shim;
    local $ENV{POSTERN_TEST_LOSE_QUERY} = 'lost.test';
    # the shim comes before the sanitizer runtime in an ASan build
    local $ENV{ASAN_OPTIONS} = join(':', grep { defined && length }
        $ENV{ASAN_OPTIONS}, 'verify_asan_link_order=0');
    $pm = start_postern($conf);
}

my ($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org', 'a@lost.test',
    make_message(to => 'a@lost.test'));
is($code, 250, 'accepted') or diag($text);
my $q = quotemeta($qid // 'NOID');

ok($pm->wait_log(qr/dns: lost\.test MX: no answer from the resolver within 4s; given up as a temporary failure/, 20),
    'the lost lookup is given up after its bound, with a log line')
    or diag($pm->log_tail(20));
ok($pm->wait_log(qr/$q: to=<a\@lost\.test> .*attempt=1 dsn=4\.4\.3 status=deferred \(Host or domain name not found\. .*type=MX: no answer from the resolver within the lookup's time bound \(try again\)\)/, 10),
    'the recipient is deferred with 4.4.3')
    or diag($pm->log_tail(20));
ok($pm->wait_log(qr/$q: to=<a\@lost\.test> .*relay=mx\.lost\.test\[127\.0\.0\.2\]:$port .*attempt=2 dsn=2\.0\.0 status=sent/, 20),
    'and delivered at the next attempt')
    or diag($pm->log_tail(20));
is(scalar $peer->messages, 1, 'the receiving server has it once');

$pm->stop;
done_testing();
