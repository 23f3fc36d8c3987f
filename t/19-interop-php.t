# 19-interop-php.t - PHP submits to Postern (the interop matrix,
# Postern::Interop), with Debian's php-cli:
#  - PHPMailer (Debian's libphp-phpmailer; driver t/interop/phpmailer.php)
#    over port-25 style SMTP, submission with STARTTLS + AUTH, and SMTPS,
#    the certificate verified, one kept-alive session per mode: a plain,
#    an 8-bit and an attachment message that PHPMailer composes; each
#    must arrive byte for byte as PHPMailer says it sent it
#    (getSentMIMEMessage), plus the empty line PHPMailer's SMTP::data()
#    sends after it (it splits the message at "\n", and the text ends in
#    one, so the last piece is an empty line; Postfix stores it too).
#  - mail() with sendmail_path = "postern-sendmail -C CONF -t -i"
#    (t/interop/php_mail.php): a plain, an 8-bit and a UTF-8 addressed
#    message arrive with their text intact, the envelope sender given by
#    -f, and the Date: and Message-ID: that mail() never writes added.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::Interop;

require_build();
need_tool('php-cli', -x '/usr/bin/php');
need_tool('PHPMailer (Debian libphp-phpmailer)',
    -f '/usr/share/php/libphp-phpmailer/autoload.php');

my $ctx = interop_start();
my $dir = srcdir() . '/t/interop';

my @sent;
for my $mode (qw(mta sub smtps)) {
    my @m = interop_messages("phpmailer-$mode", kinds => [qw(plain eightbit attachment)]);
    my $job = interop_job($ctx, $mode, \@m);
    my @ok = interop_driver(['/usr/bin/php', "$dir/phpmailer.php", $job], \@m,
        "PHPMailer $mode");
    push @sent, map { ["PHPMailer $mode $_->{kind}", $_] } @ok;
}
# the job wrote each message's file; PHPMailer's copy is beside it
for my $s (@sent) {
    my ($name, $m) = @$s;
    my ($file) = grep { -f $_ } glob(tempdir() . "/$m->{tag}.eml.sent");
    my $want = slurp($file // '/nonexistent') // '';
    ok($want =~ /\Q$m->{tag}\E/, "$name: PHPMailer's copy of what it sent");
    interop_check($ctx, $m, $name, "$want\r\n");
}

my @mail = interop_messages('php-mail', kinds => [qw(plain eightbit utf8)]);
$_->{local} = 1 for @mail;
my $job = interop_job($ctx, 'mta', \@mail);
my $sendmail = bin('postern-sendmail') . " -C $ctx->{conf} -t -i";
interop_driver(['/usr/bin/php', '-d', "sendmail_path=$sendmail", '-d',
    'mail.add_x_header=0', "$dir/php_mail.php", $job], \@mail, 'mail()');
for my $m (@mail) {
    my $name = "mail() $m->{kind}";
    my $e = interop_check_parts($ctx, $m, $name, $m->{body});
    my $h = $e ? $e->head : undef;
    like($h ? $h->get('Date') // '' : '', qr/^\w{3}, \d{1,2} \w{3} \d{4} /,
        "$name: Date: added");
    like($h ? $h->get('Message-ID') // '' : '', qr/^<[^<>\s]+\@[^<>\s]+>$/,
        "$name: Message-ID: added");
}
is($ctx->{pm}->stop, 0, 'postern stops with status 0');
done_testing;
