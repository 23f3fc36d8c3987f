# 19-interop-curl.t - curl(1) submits to Postern (the interop matrix,
# Postern::Interop): port-25 style, submission with STARTTLS + AUTH, and
# SMTPS; a plain, an 8-bit, a UTF-8 (SMTPUTF8) and an attachment
# message; each once with --crlf and once without, as a new user types it
# (`curl -T message.txt` with a file of LF line ends: issue 18, refused
# with 550 5.6.11 before smtpd_forbid_bare_newline = normalize).
#
# Without --crlf curl sends the file as it is: LF line ends, no dot-
# stuffing after an LF (curl only stuffs a "." after CR LF), and it ends
# with CR LF "." CR LF because the file does not end in CR LF. Postern
# takes it as Postfix 3.9 does: each LF ends a line, a leading "." is
# unstuffed, and the final CR LF is one more (empty) line. That is what
# is checked for, exactly; with --crlf the message arrives unchanged.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::Interop;

require_build();
need_tool('curl', -x '/usr/bin/curl');

my $ctx = interop_start();
my %url = (mta => "smtp://127.0.0.1:$ctx->{port}{mta}",
    sub => "smtp://127.0.0.1:$ctx->{port}{sub}",
    smtps => "smtps://127.0.0.1:$ctx->{port}{smtps}");

# curl_send - one curl run; returns (exit status, stderr)
sub curl_send {
    my ($mode, $m, $crlf) = @_;
    my $file = tempdir() . "/$m->{tag}.eml";
    spit($file, $m->{text});
    my @a = ('/usr/bin/curl', '-sS', '--max-time', '20', '--url', $url{$mode},
        '--cacert', $ctx->{ca}, '--mail-from', $m->{from}, '--mail-rcpt', $m->{to},
        '-T', $file);
    push @a, '--ssl-reqd' if $mode eq 'sub';
    push @a, '--user', "$ctx->{user}:$ctx->{password}" if $mode ne 'mta';
    push @a, '--crlf' if $crlf;
    my ($st, $out, $err) = run_cmd(\@a, 30);
    return ($st, $err);
}

# as_curl_sent - what Postern must store for a file curl sent without
# --crlf: leading dots unstuffed, one more empty line at the end
sub as_curl_sent {
    my ($t) = @_;
    $t =~ s/^\.//mg;
    return "$t\n";
}

my @sent;
for my $mode (qw(mta sub smtps)) {
    for my $crlf (1, 0) {
        for my $m (interop_messages("curl-$mode-" . ($crlf ? 'crlf' : 'lf'))) {
            # curl (libidn2) sends a UTF-8 domain as its A-label, and
            # SMTPUTF8 for the UTF-8 local part
            $m->{sender} = $m->{from} =~ s/b\xc3\xbccher/xn--bcher-kva/r if $m->{utf8};
            my $name = "curl $mode " . ($crlf ? '--crlf' : 'LF file') . " $m->{kind}";
            my ($st, $err) = curl_send($mode, $m, $crlf);
            is($st, 0, "$name: curl exits 0") or diag($err);
            push @sent, [$name, $m, $crlf];
        }
    }
}
for my $s (@sent) {
    my ($name, $m, $crlf) = @$s;
    interop_check($ctx, $m, $name, $crlf ? undef : as_curl_sent($m->{text}));
}
is($ctx->{pm}->stop, 0, 'postern stops with status 0');
done_testing;
