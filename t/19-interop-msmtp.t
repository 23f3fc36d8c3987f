# 19-interop-msmtp.t - msmtp(1) submits to Postern (the interop matrix,
# Postern::Interop): port-25 style, submission with STARTTLS + AUTH
# (GnuTLS, the certificate verified), and SMTPS; a plain, an 8-bit and an
# attachment message, read from stdin with LF line ends as sendmail(1)-
# style programs get them; each must arrive byte for byte. msmtp 1.8.23
# has no SMTPUTF8: it sends a UTF-8 address without the parameter, which
# Postern refuses with 553 5.6.7 as Postfix does (RFC 6531 3.4); that
# refusal is checked too.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::Interop;

require_build();
need_tool('msmtp', -x '/usr/bin/msmtp');

my $ctx = interop_start();
my %acct = (
    mta => "tls off\n",
    sub => "tls on\ntls_starttls on\nauth on\n",
    smtps => "tls on\ntls_starttls off\nauth on\n",
);

# msmtprc - one config file per mode (msmtp wants it private: 0600)
my %rc;
for my $mode (keys %acct) {
    my $auth = $mode eq 'mta' ? '' : "user $ctx->{user}\npassword $ctx->{password}\n";
    $rc{$mode} = spit(tempdir() . "/msmtprc-$mode", "account default\n"
        . "host 127.0.0.1\nport $ctx->{port}{$mode}\ntls_trust_file $ctx->{ca}\n"
        . "domain client.interop.test\ntimeout 20\n$acct{$mode}$auth");
    chmod 0600, $rc{$mode};
}

# msmtp_send - msmtp with the message on stdin; (status, stderr)
sub msmtp_send {
    my ($mode, $m) = @_;
    my $file = spit(tempdir() . "/$m->{tag}.eml", $m->{text});
    my ($st, $out, $err) = run_cmd(['/bin/sh', '-c',
        'exec /usr/bin/msmtp -C "$1" -f "$2" -- "$3" < "$4"', 'sh', $rc{$mode},
        $m->{from}, $m->{to}, $file], 30);
    return ($st, $err);
}

my @sent;
for my $mode (qw(mta sub smtps)) {
    for my $m (interop_messages("msmtp-$mode", kinds => [qw(plain eightbit attachment)])) {
        my $name = "msmtp $mode $m->{kind}";
        my ($st, $err) = msmtp_send($mode, $m);
        is($st, 0, "$name: msmtp exits 0") or diag($err);
        push @sent, [$name, $m];
    }
}
interop_check($ctx, $_->[1], $_->[0]) for @sent;
my ($u) = interop_messages('msmtp-utf8', kinds => ['utf8']);
my ($st, $err) = msmtp_send('mta', $u);
isnt($st, 0, 'msmtp with a UTF-8 address (no SMTPUTF8 support): refused');
like($err, qr/553 5\.6\.7 /, '... with 553 5.6.7, as Postfix does');
is($ctx->{pm}->stop, 0, 'postern stops with status 0');
done_testing;
