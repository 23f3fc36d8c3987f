# 39-peer-exim.t - Postern delivers into a real Exim (Debian's
# exim4-daemon-light 4.96, unpacked by tools/deps.sh beside Postfix, run
# as a private daemon on loopback: Postern::PeerMTA) through its relay
# transport and its mx transport (MX from a loopback DNS server), with
# STARTTLS (GnuTLS on Exim's side) verified against Exim's certificate,
# PIPELINING, CHUNKING (BDAT) and SMTPUTF8, all of which Exim offers: the
# plain (dot lines), 8-bit, UTF-8 addressed and attachment messages of
# the interop matrix are in Exim's queue byte for byte under Exim's and
# Postern's Received: fields (read with exim -Mvc); Exim logs every one
# as received with CHUNKING, and no TLS session as cut short (Postern
# sends close_notify before it closes, as Postfix does).
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::Interop qw(need_tool);
use Postern::PeerMTA;

require_build();
need_tool('exim4 unpacked in ' . exim_root() . ' (tools/deps.sh --test)',
    -x exim_bin() && defined getpwnam('Debian-exim'));
plan skip_all => 'a private Exim needs root (CI runs as root)' if $> != 0;

my $ex = exim_peer(free_port(), 'exim.test');
peer_matrix($ex, 'Exim', sub {
    my ($m) = @_;
    # SMTPUTF8 onward when the client asked for it (kept in the envelope;
    # Exim 4.96 keeps "utf8" for the later transactions of a connection
    # once one used SMTPUTF8, though Postern's MAIL for them has none)
    my $p = $m->{utf8} ? 'utf8esmtps' : '(?:utf8)?esmtps';
    return qr/\AReceived: from \[127\.0\.0\.1\] \(helo=postern\.test\)\n\tby exim\.peer\.test with $p\s+\(TLS1\.[23]\)/;
});
my @k = $ex->log_text =~ /^\S+ \S+ \S+ <= .* K S=\d+ /mg;
is(scalar(@k), 8, 'Exim logged all 8 messages as received with CHUNKING (K)');
unlike($ex->log_text, qr/non-properly terminated/,
    'every TLS session ended with a close_notify (no "non-properly terminated")');
ok($ex->stop, 'Exim stops');
done_testing;
