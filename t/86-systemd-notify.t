# 86-systemd-notify.t - the master's sd_notify(3) messages, read from a
# datagram socket the test listens on as NOTIFY_SOCKET (what systemd does
# for Type=notify): READY=1 only once the listener accepts and every child
# is up (/healthz 200 at that instant), WATCHDOG=1 at WATCHDOG_USEC/2,
# RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a SIGHUP - the
# second one only when the replaced children run -, RELOADING=1 then an
# immediate READY=1 for a refused file, STOPPING=1 on SIGTERM; the
# children never inherit NOTIFY_SOCKET or WATCHDOG_*.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::UNIX;
use Socket qw(SOCK_DGRAM);
use Time::HiRes qw(time);
use Postern::Test;

require_build();

my $sockpath = tempdir() . '/notify.sock';
my $ns = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $sockpath)
    or BAIL_OUT("cannot listen on $sockpath: $!");
chmod 0777, $sockpath;          # children drop to nobody when run as root
my @got;                        # every datagram, in order

# next_msg - the next datagram matching $re within $timeout s, or undef;
# the ones read on the way are kept in @got
sub next_msg {
    my ($re, $timeout) = @_;
    my $sel = IO::Select->new($ns);
    my $deadline = time() + $timeout;
    while ((my $left = $deadline - time()) > 0) {
        next unless $sel->can_read($left);
        my $buf;
        defined($ns->recv($buf, 4096)) or next;
        push @got, $buf;
        return $buf if $buf =~ $re;
    }
    return undef;
}

my $conf = write_config(name => 'notify');
my $good = slurp($conf);
my $pm;
{
    local $ENV{NOTIFY_SOCKET} = $sockpath;
    local $ENV{WATCHDOG_USEC} = 400_000;
    $pm = start_postern($conf, wait => 0);
}

# ---- READY=1 at start, only when everything is up
my $ready = next_msg(qr/^READY=1$/m, 15);
ok(defined $ready, 'READY=1 at start') or diag("got: @got");
ok($pm->smtp_ok, 'at READY=1 the SMTP listener accepts');
is($pm->healthz, 200, 'at READY=1 /healthz says every child is up');
my @kids = $pm->children;
is(scalar @kids, 4, 'at READY=1 the four children run (queued, delivery, smtpd, httpd)');
like($ready // '', qr/^STATUS=running, 4 processes$/m, 'with STATUS= in words');
ok(!grep({ /READY=1/ } @got[0 .. $#got - 1]), 'no READY=1 before that one');

# ---- watchdog
my $t0 = time();
ok(defined next_msg(qr/^WATCHDOG=1$/m, 3), 'WATCHDOG=1 with WATCHDOG_USEC set');
ok(defined next_msg(qr/^WATCHDOG=1$/m, 3), '... and again');
cmp_ok(time() - $t0, '<', 2.5, 'about every WATCHDOG_USEC/2');

# ---- children do not inherit systemd's variables
my @leak = grep { (slurp("/proc/$_/environ") // '') =~ /(?:^|\0)(?:NOTIFY_SOCKET|WATCHDOG_\w+)=/ } @kids;
is(scalar @leak, 0, 'no child has NOTIFY_SOCKET or WATCHDOG_* in its environment');

# ---- a good reload: RELOADING=1, then READY=1 once the children are new
my ($old_smtpd) = $pm->child_pids('smtpd');
@got = ();
ok(kill('HUP', $pm->pid), 'SIGHUP');
my $rl = next_msg(qr/^RELOADING=1$/m, 10);
ok(defined $rl, 'RELOADING=1 on SIGHUP');
like($rl // '', qr/^MONOTONIC_USEC=\d+$/m, 'with MONOTONIC_USEC');
ok(defined next_msg(qr/^READY=1$/m, 15), 'READY=1 after the reload');
my ($new_smtpd) = $pm->child_pids('smtpd');
ok($new_smtpd && $new_smtpd != $old_smtpd, 'at that READY=1 smtpd is already the new process');
is($pm->healthz, 200, 'and /healthz says every child is up');

# ---- a refused reload: RELOADING=1 and READY=1 at once
spit($conf, $good . "bogus_option = 1\n");
@got = ();
ok(kill('HUP', $pm->pid), 'SIGHUP with a broken file');
ok(defined next_msg(qr/^RELOADING=1$/m, 10), 'RELOADING=1');
my $back = next_msg(qr/^READY=1$/m, 10);
like($back // '', qr/^STATUS=.*reload was refused/m, 'READY=1 with STATUS= saying the reload was refused');
spit($conf, $good);

# ---- STOPPING=1
@got = ();
ok(kill('TERM', $pm->pid), 'SIGTERM');
ok(defined next_msg(qr/^STOPPING=1$/m, 10), 'STOPPING=1 on SIGTERM');
is($pm->stop, 0, 'postern exited with status 0');

done_testing();
