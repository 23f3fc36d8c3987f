# 85-shutdown.t - privilege separation and a graceful stop.
#
# Started as root, the master stays root and every child runs as the
# configured unprivileged user (skipped when the suite is not root).
# On SIGTERM the master stops accepting new connections, a session in the
# middle of DATA may still finish its message (250, and it is delivered),
# an idle session is told 421 (and the busy one once its message is
# done), and the master exits 0 within the bound.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Postern::Test;

require_build();

my $conf = write_config(shutdown_timeout => '10s');
my $info = conf_info($conf);
my $pm = start_postern($conf);

# proc_uids - (real, effective, saved) uid of a pid from /proc
sub proc_uids {
    my ($pid) = @_;
    return (slurp("/proc/$pid/status") // '') =~ /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m;
}

SKIP: {
    skip 'privilege drop needs the suite to run as root', 3 unless $> == 0;
    my $uid = getpwnam(run_user());
    is((proc_uids($pm->pid))[1], 0, 'the master keeps root');
    my @kids = $pm->children;
    cmp_ok(scalar @kids, '>=', 4, 'four or more children');
    my @wrong = grep { join(',', proc_uids($_)) ne "$uid,$uid,$uid" } @kids;
    is(scalar @wrong, 0, 'every child runs as ' . run_user() . ' (real, effective and saved uid)')
        or diag("pids with other uids: @wrong");
}

# A session in the middle of DATA when SIGTERM arrives.
my $busy = smtp_raw($pm->smtp_port);
is($busy->cmd('EHLO busy.test')->{code}, 250, 'busy session: EHLO');
is($busy->cmd('MAIL FROM:<a@example.org>')->{code}, 250, 'busy session: MAIL');
is($busy->cmd('RCPT TO:<b@example.com>')->{code}, 250, 'busy session: RCPT');
is($busy->cmd('DATA')->{code}, 354, 'busy session: DATA');
my $tag = unique_tag('shutdown');
$busy->send("Subject: $tag\r\n\r\nfirst half\r\n");

my $idle = smtp_raw($pm->smtp_port);
is($idle->cmd('EHLO idle.test')->{code}, 250, 'idle session: EHLO');

ok(kill('TERM', $pm->pid), 'SIGTERM the master');
ok($pm->wait_log(qr/stopping/, 5), 'master logs "stopping"');
my $r = $idle->reply(5);
is($r->{code}, 421, 'the idle session is told 421') or diag($r->{raw});
like($r->{enh} // '', qr/^4\.3\.2$/, '421 carries 4.3.2');

ok(wait_for(sub {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $pm->smtp_port, Timeout => 1);
    !$s;
}, 5, 'listener closed'), 'no new connection is accepted after SIGTERM');

$busy->send("second half\r\n.\r\n");
$r = $busy->reply(10);
is($r->{code}, 250, 'the session in DATA finishes its message with 250') or diag($r->{raw});
my ($qid) = ($r->{text} // '') =~ /queued as ([0-9A-F]{16})/;
ok($qid, 'with a queue id');
# between transactions now, so the session is closed: 421 at once (or
# 221 if our QUIT is read first)
like($busy->cmd('QUIT')->{code}, qr/^(221|421)$/, 'then the session ends (421 or 221)');
ok($busy->closed(5), 'and the server closes it');

my $t0 = time();
my $st;
ok(wait_for(sub { $st = $pm->status; defined $st }, 20, 'master exit'), 'the master exits');
is($st, 0, 'with status 0');
cmp_ok(time() - $t0, '<=', 15, 'within shutdown_timeout');
ok(!$pm->leftover, 'no child left');
$pm->check_sanitizers;

# The message accepted during shutdown is on disk and delivered on restart.
my $pm2 = start_postern($conf, log => tempdir() . '/restart.log');
ok(wait_for(sub { grep { (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files($info->{maildir}) },
    10, 'message accepted during shutdown delivered'),
    'the message accepted during shutdown is delivered');
is($pm2->stop, 0, 'second run stops with status 0');
done_testing;
