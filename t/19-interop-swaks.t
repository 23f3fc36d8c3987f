# 19-interop-swaks.t - swaks(1) submits to Postern (the interop matrix,
# Postern::Interop): port-25 style, submission with STARTTLS + AUTH
# (PLAIN, and LOGIN answered step by step), and SMTPS, with the
# certificate verified (--tls-verify); a plain, an 8-bit and an
# attachment message given with --data @file, each byte for byte; the
# EHLO name has an underscore (client_host.example), which Postern, like
# Postfix (smtpd_helo_restrictions empty by default), takes as it is.
# swaks 20201014 has no SMTPUTF8 option, so no UTF-8 envelope here. The
# file ends with its own "." line: without one swaks adds CR LF "." CR LF
# after the file's last LF, that is one more empty line (as its manual
# says, "closing dot is not required but is allowed").
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::Interop;

require_build();
need_tool('swaks', -x '/usr/bin/swaks');

my $ctx = interop_start();
my %tls = (mta => [], sub => ['--tls'], smtps => ['--tls-on-connect']);

# swaks_send - one swaks run; (status, output)
sub swaks_send {
    my ($mode, $m, $mech) = @_;
    my $file = spit(tempdir() . "/$m->{tag}.eml", "$m->{text}.\n");
    my @a = ('/usr/bin/swaks', '--server', '127.0.0.1', '--port', $ctx->{port}{$mode},
        '--helo', 'client_host.example', '--from', $m->{from}, '--to', $m->{to},
        '--data', "\@$file", '--timeout', '20', @{ $tls{$mode} });
    push @a, '--tls-verify', '--tls-ca-path', $ctx->{ca} if $mode ne 'mta';
    push @a, '--auth', $mech, '--auth-user', $ctx->{user}, '--auth-password',
        $ctx->{password} if $mode ne 'mta';
    my ($st, $out, $err) = run_cmd(\@a, 30);
    return ($st, $out . $err);
}

my @sent;
for my $mode (qw(mta sub smtps)) {
    my $i = 0;
    for my $m (interop_messages("swaks-$mode", kinds => [qw(plain eightbit attachment)])) {
        my $mech = $i++ % 2 ? 'LOGIN' : 'PLAIN';
        my $name = "swaks $mode $m->{kind}" . ($mode eq 'mta' ? '' : " AUTH $mech");
        my ($st, $out) = swaks_send($mode, $m, $mech);
        is($st, 0, "$name: swaks exits 0") or diag($out);
        like($out, qr/^ -> EHLO client_host\.example\n<-  250[- ]/m,
            "$name: EHLO client_host.example accepted")
            if $mode eq 'mta' && $i == 1;
        push @sent, [$name, $m];
    }
}
interop_check($ctx, $_->[1], $_->[0]) for @sent;
is($ctx->{pm}->stop, 0, 'postern stops with status 0');
done_testing;
