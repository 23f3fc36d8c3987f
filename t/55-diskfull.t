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

# ---- a full disk inside the LMDB commit (issue 19 finding 6): the
# message file still fits, the index's new pages do not. A fresh index
# (no free pages to reuse) on a spool with exactly two pages left.
$spool = "$dir/spool2";
mkdir $spool or die "mkdir $spool: $!";
system('mount', '-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'tmpfs', $spool) == 0
    or BAIL_OUT('cannot mount the second tmpfs');
$mounted = 1;
$conf = write_config(dir => "$dir/p2", spool_dir => $spool);
$pm = start_postern($conf);
my @small = fill_to_two_pages($spool);
my $tiny = "From: s\@example.org\nSubject: tiny\n\nx\n";
($code, $text) = send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com', $tiny);
is($code, 452, 'no room for the index pages: 452, not 451') or diag($text);
like($pm->log_text, qr/lmdb: mdb_txn_commit write: /,
    'it was the index commit that found no room') or diag($pm->log_tail(10));
like($text, qr/^4\.3\.1\b/, 'enhanced status 4.3.1');
ok($pm->alive, 'postern is still running');
unlink "$spool/filler", @small;
($code, $text) = send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com',
    make_message(subject => unique_tag('space2')));
is($code, 250, 'space again: 250') or diag($text);
ok(wait_for(sub { scalar maildir_files($pm->maildir) }, 10, 'delivery'),
    'the message is delivered');
is($pm->stop, 0, 'postern stops with status 0');
system('umount', $spool) == 0 and $mounted = 0;
done_testing;

# fill_to_two_pages - fill the tmpfs at $dir, then free exactly two pages;
# returns the small files made (unlink them to free the space)
sub fill_to_two_pages {
    my ($d) = @_;
    open(my $fh, '>:raw', "$d/filler") or die "open $d/filler: $!";
    my $chunk = 'x' x 65536;
    my $n = 0;
    while (syswrite($fh, $chunk)) { last if ++$n > 100 }
    close $fh;
    my @small;
    for my $i (1 .. 64) {
        my $f = "$d/page$i";
        open(my $ph, '>:raw', $f) or last;
        my $w = syswrite($ph, 'y' x 4096);
        close $ph;
        if (!$w || $w != 4096) { unlink $f; last }
        push @small, $f;
    }
    # exactly two pages free: one for the message file, one for the
    # first of the index's pages (LMDB sees a short write)
    if (@small >= 2) { unlink pop @small, pop @small }
    else {
        unlink @small;
        truncate("$d/filler", ((-s "$d/filler") & ~4095) - 8192 + 4096 * @small)
            or die "truncate: $!";
        @small = ();
    }
    return @small;
}
