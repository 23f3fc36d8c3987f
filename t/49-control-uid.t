#!/usr/bin/perl
# 49-control-uid.t - the control socket checks the caller's uid with
# SO_PEERCRED: any local user may list, show envelopes and submit with
# postern-sendmail (the Received: header names that uid); only root and
# the postern user may flush, hold, release, delete, requeue or read a
# message (show --message); others get exit 77 (EX_NOPERM).
# Needs root (to run the clients as other uids with setpriv); skipped
# otherwise. The postern user is run_user() ("nobody" as root); the
# stranger is uid/gid 54321, which has no passwd entry.
use strict;
use warnings;
use Test::More;
use JSON::PP ();
use Postern::Test;

require_build();
plan skip_all => 'needs root to run clients as other uids' if $> != 0;
my $setpriv = (grep { -x } qw(/usr/bin/setpriv /bin/setpriv))[0];
plan skip_all => 'setpriv(1) is not installed' unless $setpriv;

my $STRANGER = 54321;
my ($nobody_uid, $nobody_gid) = (getpwnam(run_user()))[2, 3];
my $dead = free_port();         # nothing listens: every attempt is deferred
my $conf = write_config(transport => 'relay', relay_port => $dead,
    relay_timeout => '2s', retry_base => '1h', retry_cap => '1h');
my $pm = start_postern($conf);

# as - run argv as uid:gid; (exit status, stdout, stderr)
sub as {
    my ($uid, $gid, @argv) = @_;
    my ($st, $out, $err) = run_cmd([$setpriv, "--reuid=$uid", "--regid=$gid",
        '--clear-groups', '--', @argv], 20);
    return ($st == -1 ? -1 : $st >> 8, $out, $err);
}

# ctl_as - posternctl queue ARGS as uid:gid
sub ctl_as {
    my ($uid, $gid, @args) = @_;
    return as($uid, $gid, bin('posternctl'), '-c', $conf, 'queue', @args);
}

# ---- a stranger submits with postern-sendmail
my $tag = unique_tag('uid');
my $in = tempdir() . '/uid-input';
spit($in, "To: rcpt\@example.com\nSubject: $tag\n\nhello\n");
chmod 0644, $in;
my ($rc, $out, $err) = as($STRANGER, $STRANGER, '/bin/sh', '-c',
    "'" . bin('postern-sendmail') . "' -C '$conf' -t -f stranger\@example.org < '$in'");
is($rc, 0, 'any local user may submit') or diag($err);
my $id = $pm->wait_log(qr/([0-9A-F]{16}): submitted by uid $STRANGER /, 10);
ok($id, 'queued logs the submitting uid') or diag($pm->log_tail(10));
$id //= 'NOID';
ok($pm->wait_log(qr/\Q$id\E: to=<rcpt\@example\.com> .*status=deferred/, 15),
    'the message waits in the queue (peer down)');

# ---- what a stranger may do
($rc, $out, $err) = ctl_as($STRANGER, $STRANGER, 'list');
is($rc, 0, 'a stranger may list') or diag($err);
like($out, qr/^\Q$id\E .*stranger\@example\.org$/m, 'and sees the message');
($rc, $out, $err) = ctl_as($STRANGER, $STRANGER, 'show', '--json', $id);
is($rc, 0, 'a stranger may show the envelope');
my $o = eval { JSON::PP->new->decode((split /\n/, $out)[0] // '') } // {};
is($o->{client}, 'local', 'show: a local submission');
is($o->{auth_user}, "uid $STRANGER", 'show: the submitting user');
($rc, $out, $err) = ctl_as($STRANGER, $STRANGER, 'show', '--message', $id);
is($rc, 77, 'show --message by a stranger: EX_NOPERM (77)');
like($err, qr/permission denied/, 'and says so');
unlike($out, qr/\Q$tag\E/, 'no message text leaks');

for my $cmd (qw(hold release delete requeue)) {
    ($rc, $out, $err) = ctl_as($STRANGER, $STRANGER, $cmd, $id);
    is($rc, 77, "$cmd by a stranger: EX_NOPERM (77)");
    like($err, qr/permission denied: only root and the postern user/,
        "$cmd by a stranger: a clear message");
}
($rc, $out, $err) = ctl_as($STRANGER, $STRANGER, 'flush');
is($rc, 77, 'flush by a stranger: EX_NOPERM (77)');
($rc, $out, $err) = ctl_as($STRANGER, $STRANGER, 'list', '--json');
my ($row) = grep { $_->{id} eq $id } map { eval { JSON::PP->new->decode($_) } // () }
    split /\n/, $out;
is($row && $row->{recipients}[0]{state}, 'deferred', 'nothing changed');
ok(-f $pm->spool . "/msg/$id", 'the message is still queued');

# ---- the postern user and root may
($rc, $out, $err) = ctl_as($nobody_uid, $nobody_gid, 'hold', $id);
is($rc, 0, 'the postern user may hold') or diag($err);
($rc, $out, $err) = ctl_as(0, 0, 'show', '--message', $id);
is($rc, 0, 'root may read the message');
like($out, qr/^Received: by postern\.test \(Postern, from userid $STRANGER\)$/m,
    'the Received: header names the submitting uid');
like($out, qr/^Subject: \Q$tag\E$/m, 'and the message follows');
($rc, $out, $err) = ctl_as(0, 0, 'delete', $id);
is($rc, 0, 'root may delete') or diag($err);
like($pm->log_text, qr/control: hold \Q$id\E by uid $nobody_uid\b/,
    'changes are logged with the caller\'s uid');

is($pm->stop, 0, 'postern stops');
$pm->check_sanitizers;
done_testing();
