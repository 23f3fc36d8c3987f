# 19-interop-snail.t - s-nail(1) (Debian's s-nail, the mailx of today's
# Debian; mutt's SMTP client is the same libcurl-free kind of built-in
# one, and one mailx family is enough) submits to Postern (the interop
# matrix, Postern::Interop) with its built-in SMTP client: port-25
# style, submission with STARTTLS + AUTH PLAIN, SMTPS with AUTH LOGIN,
# the certificate verified (tls-ca-file, no defaults; s-nail matches
# host names only, not IP addresses, so it is told "localhost"); a plain, an 8-bit
# (mime-encoding=8bit) and an attachment message (-a) that s-nail
# composes from a body on stdin; each must arrive with its text and
# attachment intact. s-nail 14.9 has no SMTPUTF8. Without "from" s-nail
# sends MAIL FROM:<USER@HOSTNAME>, here with an underscore in the host
# name: accepted, as Postfix does (issue 18; it was 501 5.1.7).
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::Interop;

require_build();
need_tool('s-nail', -x '/usr/bin/s-nail');

my $ctx = interop_start();
my %url = (mta => 'smtp', sub => 'smtp', smtps => 'smtps');
my %auth = (mta => ['-Ssmtp-auth=none'], sub => ['-Ssmtp-use-starttls', '-Ssmtp-auth=plain'],
    smtps => ['-Ssmtp-auth=login']);

# snail_send - s-nail in batch mode, no rc files; (status, stderr)
sub snail_send {
    my ($mode, $m) = @_;
    my $cred = $mode eq 'mta' ? '' : "$ctx->{user}:$ctx->{password}\@";
    my $body = spit(tempdir() . "/$m->{tag}.body", $m->{body});
    my @a = ('/usr/bin/s-nail', '-:/', '-#', '-Sv15-compat',
        "-Smta=$url{$mode}://${cred}localhost:$ctx->{port}{$mode}", '-Snosave',
        '-Shostname=client_host.interop.test',
        "-Stls-ca-file=$ctx->{ca}", '-Stls-ca-no-defaults', '-Sttycharset=utf-8',
        '-Smime-encoding=8bit', ($m->{nofrom} ? () : "-Sfrom=Interop Sender <$m->{from}>"),
        @{ $auth{$mode} }, '-s', "$m->{kind} $m->{tag}");
    push @a, '-a', spit(tempdir() . '/data.bin', $m->{attachment})
        if defined $m->{attachment};
    my ($st, $out, $err) = run_cmd(['/bin/sh', '-c', 'f=$1; shift; exec "$@" < "$f"',
        'sh', $body, @a, $m->{to}], 30);
    return ($st, $out . $err);
}

my @sent;
for my $mode (qw(mta sub smtps)) {
    for my $m (interop_messages("snail-$mode", kinds => [qw(plain eightbit attachment)])) {
        my $name = "s-nail $mode $m->{kind}";
        my ($st, $err) = snail_send($mode, $m);
        is($st, 0, "$name: s-nail exits 0") or diag($err);
        push @sent, [$name, $m];
    }
}
interop_check_parts($ctx, $_->[1], $_->[0], $_->[1]{body}) for @sent;
my ($u) = interop_messages('snail-nofrom', kinds => ['plain']);
$u->{nofrom} = 1;
my ($st, $err) = snail_send('mta', $u);
is($st, 0, 's-nail without from: MAIL FROM:<USER@client_host.interop.test> accepted')
    or diag($err);
like(interop_sender(interop_wait($ctx, $u->{tag})) // '', qr/\@client_host\.interop\.test\z/,
    '... and kept as the envelope sender');
is($ctx->{pm}->stop, 0, 'postern stops with status 0');
done_testing;
