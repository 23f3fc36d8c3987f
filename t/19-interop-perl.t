# 19-interop-perl.t - Perl's Net::SMTP (libnet, with IO::Socket::SSL and
# Authen::SASL) submits to Postern (the interop matrix, Postern::Interop):
# port-25 style, submission with starttls() + auth(), and SMTPS (SSL =>
# 1), the certificate verified; all messages of a mode in one session; a
# plain, an 8-bit (Bits => 8: BODY=8BITMIME) and an attachment message
# given to datasend() with LF line ends (which it turns into CR LF and
# dot-stuffs), each byte for byte. Net::SMTP has no SMTPUTF8 parameter
# for mail(), so no UTF-8 envelope here.
use strict;
use warnings;
use Test::More;
use Net::SMTP;
use Postern::Test;
use Postern::Interop;

require_build();
need_tool('IO::Socket::SSL and Authen::SASL (Debian libio-socket-ssl-perl, '
    . 'libauthen-sasl-perl)',
    eval { require IO::Socket::SSL; require Authen::SASL; 1 });

my $ctx = interop_start();

# session - a Net::SMTP session in $mode, authenticated when not mta
sub session {
    my ($mode) = @_;
    my %tls = (SSL_ca_file => $ctx->{ca}, SSL_verify_mode => 1);
    my $smtp = Net::SMTP->new('127.0.0.1', Port => $ctx->{port}{$mode},
        Hello => 'client_host.interop.test', Timeout => 20,
        ($mode eq 'smtps' ? (SSL => 1, %tls) : ())) or return undef;
    if ($mode eq 'sub') {
        $smtp->starttls(%tls) or return undef;
    }
    if ($mode ne 'mta') {
        $smtp->auth($ctx->{user}, $ctx->{password}) or return undef;
    }
    return $smtp;
}

my @sent;
for my $mode (qw(mta sub smtps)) {
    my $smtp = session($mode);
    ok($smtp, "Net::SMTP $mode: connected" . ($mode eq 'mta' ? '' : ', TLS, AUTH'))
        or diag($@ // $IO::Socket::SSL::SSL_ERROR);
    next unless $smtp;
    for my $m (interop_messages("perl-$mode", kinds => [qw(plain eightbit attachment)])) {
        my $name = "Net::SMTP $mode $m->{kind}";
        my $ok = $smtp->mail($m->{from}, ($m->{kind} eq 'eightbit' ? (Bits => 8) : ()))
            && $smtp->to($m->{to}) && $smtp->data && $smtp->datasend($m->{text})
            && $smtp->dataend;
        ok($ok, "$name: accepted") or diag($smtp->code . ' ' . $smtp->message);
        push @sent, [$name, $m];
    }
    $smtp->quit;
}
interop_check($ctx, $_->[1], $_->[0]) for @sent;
is($ctx->{pm}->stop, 0, 'postern stops with status 0');
done_testing;
