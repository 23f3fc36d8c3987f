# 55-diskfull.t - a full spool while receiving: the client gets
# 452 4.3.1, nothing half-written stays in tmp/ or msg/, Postern keeps
# running, and accepts again once there is space.
# The spool is a 2 MiB tmpfs (needs root for mount; skipped otherwise).
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();
plan skip_all => 'needs root to mount a tmpfs' if $> != 0;

my $dir = tempdir() . '/full';
my $spool = "$dir/spool";
mkdir $dir;
mkdir $spool or die "mkdir $spool: $!";
system('mount', '-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'tmpfs', $spool) == 0
    or plan skip_all => 'cannot mount a tmpfs here';
my $mounted = 1;
END { system('umount', '-l', $spool) if $mounted && $spool }

my $conf = write_config(dir => $dir, spool_dir => $spool, max_message_size => '10M');
my $pm = start_postern($conf);

# the index and directories exist now; fill what is left
my $filler = "$spool/filler";
{
    open(my $fh, '>:raw', $filler) or die "open $filler: $!";
    my $chunk = 'x' x 65536;
    my $n = 0;
    while (syswrite($fh, $chunk)) { last if ++$n > 100 }    # at most 6.5 MiB
    close $fh;
}
my $free = `df -B1 --output=avail $spool | tail -1` + 0;
cmp_ok($free, '<', 65536, "spool tmpfs full ($free bytes free)");

my $big = make_message(subject => unique_tag('full'),
    body => ("a line of text to fill the disk with, 64 bytes long.........\n" x 4000));
my ($code, $text) = send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com', $big);
is($code, 452, 'full spool: 452') or diag($text);
like($text, qr/^4\.3\.1\b/, 'enhanced status 4.3.1');
ok($pm->alive, 'postern is still running');
# the abort reaches queued just after the reply: allow it a moment
ok(wait_for(sub { !spool_files($spool) }, 5, 'tmp/ cleaned'), 'nothing left in tmp/ or msg/')
    or diag(join(' ', spool_files($spool)));

unlink $filler;
($code, $text) = send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com',
    make_message(subject => unique_tag('space')));
is($code, 250, 'space again: 250') or diag($text);
ok(wait_for(sub { scalar maildir_files($pm->maildir) }, 10, 'delivery'),
    'the message is delivered');
ok(wait_for(sub { !spool_files($spool) }, 10, 'empty spool'), 'spool empty again');

is($pm->stop, 0, 'postern stops with status 0');
system('umount', $spool) == 0 and $mounted = 0;
ok(!$mounted, 'tmpfs unmounted');
done_testing;
