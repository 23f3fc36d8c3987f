#!/usr/bin/perl
# 48-sendmail.t - postern-sendmail, the sendmail(1)-compatible injector,
# end to end into the maildir of a running postern: -t from a shell pipe
# (To/Cc/Bcc are the recipients, Bcc removed), -i/-oi and the lone dot,
# -f and the default sender, -F, added Date:/Message-ID:/From:, the
# Received: header naming the uid, CR LF in the spool, -bp, and the
# sysexits statuses for bad usage, bad addresses, a too large message,
# a queue that is down, and a full spool (a 2 MiB tmpfs, root only:
# EX_TEMPFAIL, nothing left behind, then accepted once there is space).
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $conf = write_config(max_message_size => '64K');
my $pm = start_postern($conf);
my $sm = bin('postern-sendmail');
my $me = scalar(getpwuid($<)) // 'nobody';

# sendmail - run "printf INPUT | postern-sendmail -C conf ARGS" through
# /bin/sh; (exit status, stdout, stderr)
sub sendmail {
    my ($input, @args) = @_;
    my $d = tempdir();
    my $in = "$d/sm-input.$$." . int(rand(1e9));
    spit($in, $input);
    my $cmd = "cat '$in' | '$sm' -C '$conf' " . join(' ', map { "'$_'" } @args);
    my ($st, $out, $err) = run_cmd(['/bin/sh', '-c', $cmd], 20);
    unlink $in;
    return ($st == -1 ? -1 : $st >> 8, $out, $err);
}

# delivered - wait for n maildir files containing $tag; their contents
sub delivered {
    my ($tag, $n) = @_;
    my @f;
    wait_for(sub {
        @f = grep { /\Q$tag\E/ } map { slurp($_) // '' } maildir_files($pm->maildir);
        @f >= $n }, 10, "$n maildir file(s) with $tag");
    return @f;
}

# ---- -t from a shell pipe: To, Cc and Bcc are the recipients
my $tag = unique_tag('smt');
my ($rc, $out, $err) = sendmail("To: Ann <ann\@example.org>\n"
    . "Cc: \"Bob, B.\" <bob\@example.org>, carl\@example.org (Carl)\n"
    . "Bcc: hidden\@example.org\nSubject: $tag\n\nline one\n.\nline three\n",
    '-t', '-i', '-f', 'cron@example.net');
is($rc, 0, 'sendmail -t -i exits 0') or diag($err);
my @m = delivered($tag, 1);
ok($pm->wait_log(qr/to=<hidden\@example\.org> .*status=sent/, 10),
    'four recipients from To, Cc (two) and Bcc');
my $log = $pm->log_text;
for my $r (qw(ann bob carl hidden)) {
    like($log, qr/to=<$r\@example\.org> from=<cron\@example\.net> .*status=sent/,
        "delivered to $r with envelope sender cron\@example.net");
}
my $msg = $m[0] // '';
like($msg, qr/^Return-Path: <cron\@example\.net>$/m, 'Return-Path is the -f sender');
unlike($msg, qr/^Bcc:/mi, 'Bcc: removed');
unlike($msg, qr/hidden\@example\.org/, 'the Bcc address appears nowhere');
like($msg, qr/^Received: by postern\.test \(Postern, from userid $<\)$/m,
    'Received: names the caller\'s uid');
like($msg, qr/^Date: \w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/m, 'Date: added');
like($msg, qr/^Message-ID: <[^>]+\@postern\.test>$/m, 'Message-ID: added');
like($msg, qr/^From: <cron\@example\.net>$/m, 'From: added from the sender');
like($msg, qr/\n\nline one\n\.\nline three\n/, '-i: a lone dot is kept, input goes on');

# ---- without -i a lone dot ends the message; operands; -F; default sender
$tag = unique_tag('dot');
($rc, $out, $err) = sendmail("Subject: $tag\n\nfirst\n.\nafter the dot\n",
    '-F', 'Cron "Daemon"', 'dave@example.org');
is($rc, 0, 'sendmail with a recipient operand exits 0') or diag($err);
@m = delivered($tag, 1);
$msg = $m[0] // '';
like($msg, qr/\n\nfirst\n\z/, 'without -i a lone dot ends the message');
unlike($msg, qr/after the dot/, 'nothing after the dot is queued');
like($msg, qr/^Return-Path: <\Q$me\E\@postern\.test>$/m,
    'default sender: login name @ hostname');
like($msg, qr/^From: "Cron  Daemon " <\Q$me\E\@postern\.test>$/m,
    '-F: the full name in the added From:, quotes removed');

# ---- -oi, an existing From:, no header at all, bare names qualified
$tag = unique_tag('oi');
($rc, $out, $err) = sendmail("From: App <app\@example.org>\nSubject: $tag\n\n.\nend\n",
    '-oi', '-f', '<>', 'erin');
is($rc, 0, '-oi and -f "<>" accepted') or diag($err);
@m = delivered($tag, 1);
$msg = $m[0] // '';
# the delivery line follows the file: wait for it
ok($pm->wait_log(qr/to=<erin\@postern\.test> from=<> .*status=sent/, 10),
    'a bare name gets @hostname; <> is the null sender') or diag($pm->log_tail(20));
$log = $pm->log_text;
like($msg, qr/^From: App <app\@example\.org>$/m, 'an existing From: is kept');
is(() = $msg =~ /^From:/mg, 1, 'and no second From: is added');
like($msg, qr/\n\n\.\nend\n/, '-oi works like -i');

$tag = unique_tag('nohdr');
($rc, $out, $err) = sendmail("just a body line $tag\n", 'fay@example.org');
is($rc, 0, 'a message without a header is accepted');
@m = delivered($tag, 1);
like($m[0] // '', qr/^Message-ID: [^\n]+\n\njust a body line/m,
    'added header fields, then the empty line, then the body');

# ---- the spool holds CR LF, and -bp lists what is queued
($rc, $out, $err) = run_cmd([$sm, '-C', $conf, '-bp']);
is($rc >> 8, 0, '-bp exits 0') or diag($err);
like($out, qr/Mail queue is empty|^-Queue ID-/m, '-bp prints the queue like mailq');
my $mailq = tempdir() . '/mailq';
symlink($sm, $mailq);
($rc, $out, $err) = run_cmd([$mailq, '-C', $conf]);
is($rc >> 8, 0, 'called as mailq: exits 0') or diag($err);
like($out, qr/Mail queue is empty|^-Queue ID-/m, 'called as mailq: lists the queue');

# ---- exit statuses (sysexits.h)
($rc, $out, $err) = sendmail("Subject: x\n\nx\n");
is($rc, 64, 'no recipients: EX_USAGE (64)');
like($err, qr/no recipients/, 'and says why');
($rc) = sendmail("Subject: x\n\nx\n", '-t');
is($rc, 64, '-t without any To/Cc/Bcc: EX_USAGE (64)');
($rc, $out, $err) = sendmail("x\n", '-Q', 'a@example.org');
is($rc, 64, 'unknown option: EX_USAGE (64)');
($rc) = sendmail("x\n", '-bs', 'a@example.org');
is($rc, 64, 'an unsupported -b mode: EX_USAGE (64)');
($rc, $out, $err) = sendmail("x\n", 'bad@@example.org');
is($rc, 67, 'bad recipient: EX_NOUSER (67)');
like($err, qr/bad recipient address/, 'and says which');
($rc) = sendmail("x\n", '-f', 'a%b@example.org', 'ok@example.org');
is($rc, 67, 'percent-hack sender: EX_NOUSER (67)');
($rc) = sendmail("To: <\@relay.example:x\@example.org>\n\nx\n", '-t');
is($rc, 67, 'source route from -t: EX_NOUSER (67)');
($rc, $out, $err) = sendmail("To: a\@example.org, Bad <b\@example.org\n\nx\n", '-t');
is($rc, 65, '-t with a To: that does not parse: EX_DATAERR (65)');
like($err, qr/addresses of To:.*without '>'/, 'and says which field and why');
my $big = ('x' x 999 . "\n") x 80;
($rc, $out, $err) = sendmail($big, 'big@example.org');
is($rc, 65, 'larger than max_message_size: EX_DATAERR (65)');
($rc, $out, $err) = run_cmd(['/bin/sh', '-c',
    "printf 'a\\000b\\n' | '$sm' -C '$conf' nul\@example.org"]);
is($rc >> 8, 65, 'a NUL byte: EX_DATAERR (65)');
my ($bad) = run_cmd([$sm, '-C', tempdir() . '/missing.conf', 'a@example.org']);
is($bad >> 8, 78, 'unreadable configuration: EX_CONFIG (78)');
ok(!grep({ /big\@|nul\@|ok\@/ } $pm->log_text =~ /(to=<[^>]+>)/g),
    'nothing refused was queued');

is($pm->stop, 0, 'postern stops');
($rc, $out, $err) = sendmail("Subject: late\n\nx\n", 'late@example.org');
is($rc, 69, 'postern down: EX_UNAVAILABLE (69)');
like($err, qr/is postern running\?/, 'and says so');
$pm->check_sanitizers;

# ---- a full spool: EX_TEMPFAIL (75), nothing left behind, then 0 again
# (the spool is a 2 MiB tmpfs, as in 55-diskfull.t: root only)
my ($spool, $mounted);
END { system('umount', '-l', $spool) if $mounted }
SKIP: {
    skip('needs root to mount a tmpfs', 6) if $> != 0;
    my $dir = tempdir() . '/smfull';
    $spool = "$dir/spool";
    mkdir $dir;
    mkdir $spool;
    skip('cannot mount a tmpfs here', 6) if system('mount', '-t', 'tmpfs', '-o',
        'size=2m,mode=0755', 'tmpfs', $spool) != 0;
    $mounted = 1;
    $conf = write_config(dir => $dir, spool_dir => $spool, max_message_size => '10M');
    $pm = start_postern($conf);
    if (open(my $fh, '>:raw', "$spool/filler")) {
        my $chunk = 'x' x 65536;
        for (1 .. 100) { last unless syswrite($fh, $chunk) }
        close $fh;
    }
    ($rc, $out, $err) = sendmail("Subject: full\n\n" . ("y" x 70 . "\n") x 4000,
        'full@example.org');
    is($rc, 75, 'full spool: EX_TEMPFAIL (75)') or diag($err);
    like($err, qr/NOT queued|cannot take the message/, 'and says it was not queued');
    ok(wait_for(sub { !spool_files($spool) }, 5, 'spool clean'),
        'nothing left in tmp/ or msg/') or diag(join(' ', spool_files($spool)));
    unlink "$spool/filler";
    ($rc, $out, $err) = sendmail("Subject: space\n\nz\n", 'space@example.org');
    is($rc, 0, 'space again: exit 0') or diag($err);
    is($pm->stop, 0, 'postern stops');
    $pm->check_sanitizers;
    $mounted = 0 if system('umount', $spool) == 0;
    ok(!$mounted, 'tmpfs unmounted');
}

done_testing();
