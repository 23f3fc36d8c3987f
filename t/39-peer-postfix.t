# 39-peer-postfix.t - Postern delivers into a real Postfix smtpd (Debian's
# postfix 3.7, a private instance on loopback: Postern::PeerMTA) through
# its relay transport and its mx transport (MX from a loopback DNS
# server), with STARTTLS verified against Postfix's certificate,
# PIPELINING, CHUNKING (BDAT) and SMTPUTF8, all of which Postfix offers:
# the plain (dot lines), 8-bit, UTF-8 addressed and attachment messages
# of the interop matrix arrive in Postfix's hold queue byte for byte
# under Postfix's and Postern's Received: fields (read with postcat).
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::Interop qw(need_tool);
use Postern::PeerMTA;

require_build();
need_tool('postfix (Debian postfix)', -x '/usr/lib/postfix/sbin/master');
plan skip_all => 'a private Postfix needs root (CI runs as root)' if $> != 0;

my $pf = postfix_peer(free_port(), 'pf.test');
peer_matrix($pf, 'Postfix', sub {
    my ($m) = @_;
    # SMTPUTF8 onward when the client asked for it (kept in the envelope)
    my $p = $m->{utf8} ? 'UTF8SMTPS' : 'ESMTPS';
    return qr/\AReceived: from postern\.test \(localhost \[127\.0\.0\.1\]\)\n\t\(using TLSv1\.[23] [^\n]*\n(?:\t[^\n]*\n)*?\tby pf\.peer\.test \(Postfix\) with $p id/;
});
ok($pf->stop, 'Postfix stops');
done_testing;
