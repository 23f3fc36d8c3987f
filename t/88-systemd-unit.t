# 88-systemd-unit.t - the systemd unit make generates from
# conf/postern.service.in: the paths are the ones configure was given
# (ExecStart and ExecReload name $sbindir and $sysconfdir, no @...@
# left), Type=notify; `systemd-analyze verify` is clean and `systemd-analyze
# security --offline` rates it below 3.0; and, as root, the built postern
# runs and delivers with exactly the unit's CapabilityBoundingSet and
# NoNewPrivileges (setpriv(1)), so the hardening does not break the
# privilege drop; tools/install-dirs.sh (the end of `make install`) tells
# an ordinary user what is left (directories, user, unit) and leaves a
# DESTDIR install alone.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $unit = builddir() . '/conf/postern.service';
my $text = slurp($unit);
ok(defined $text, "make generated $unit") or BAIL_OUT('no unit');
my ($sbin, $etc) = @ENV{qw(POSTERN_SBINDIR POSTERN_SYSCONFDIR)};

SKIP: {
    skip('POSTERN_SBINDIR/POSTERN_SYSCONFDIR unset (run by make check)', 2)
        unless defined $sbin && defined $etc;
    like($text, qr{^ExecStart=\Q$sbin\E/postern -f -c \Q$etc\E/postern/postern\.conf$}m,
        "ExecStart runs $sbin/postern -f on $etc/postern/postern.conf");
    like($text, qr{^ExecReload=\Q$sbin\E/posternctl -c \Q$etc\E/postern/postern\.conf reload$}m,
        'ExecReload is posternctl reload on the same file');
}
unlike($text, qr/@\w+@/, 'no placeholder left');
like($text, qr/^Type=notify$/m, 'Type=notify');
like($text, qr/^WatchdogSec=\d+s$/m, 'a watchdog');
my %dirs = map { $_ => 1 } map { split ' ' } $text =~ /^ReadWritePaths=(.*)$/mg;
ok($dirs{'/var/spool/postern'}, 'the spool is writable under ProtectSystem=strict');

# the unit as installed, but naming this build's programs
my $tmp = tempdir() . '/unit';
mkdir $tmp;
my $local = $text =~ s{^(Exec\w+=)\S+/(postern(?:ctl)?) }{$1 . builddir() . "/$2 "}gemr;
spit("$tmp/postern.service", $local);

SKIP: {
    my $sa = -x '/usr/bin/systemd-analyze' ? '/usr/bin/systemd-analyze' : undef;
    skip('systemd-analyze not installed', 4) unless $sa;
    my ($st, $out, $err) = run_cmd([$sa, 'verify', '--man=no', "$tmp/postern.service"], 60);
    is($st >> 8, 0, 'systemd-analyze verify exits 0');
    is($out . $err, '', 'and says nothing');
    ($st, $out, $err) = run_cmd([$sa, 'security', '--offline=yes', '--threshold=29',
        "$tmp/postern.service"], 60);
    my ($score) = $out =~ /Overall exposure level for postern\.service: (\d+\.\d+)/;
    is($st >> 8, 0, 'systemd-analyze security --threshold=29 exits 0') or diag($out . $err);
    ok(defined $score && $score < 3.0, 'exposure below 3.0 (' . ($score // '?') . ')');
}

SKIP: {
    skip('the capability check needs root and setpriv', 3)
        unless $> == 0 && -x '/usr/bin/setpriv';
    my ($caps) = $text =~ /^CapabilityBoundingSet=(.*)$/m;
    like($text, qr/^NoNewPrivileges=yes$/m, 'NoNewPrivileges=yes');
    my $bset = join(',', '-all', map { '+' . lc(s/^CAP_//r) } split ' ', $caps);
    my $conf = write_config(name => 'caps');
    my $srv = start_postern($conf,
        wrap => ['/usr/bin/setpriv', "--bounding-set=$bset", '--no-new-privs']);
    my ($code, $msg) = send_mail($srv->smtp_port, 'sender@example.org', 'rcpt@example.com',
        make_message(subject => 'caps'));
    is($code, 250, "accepted with only $caps") or diag($msg);
    ok(wait_for(sub { maildir_files($srv->maildir) >= 1 }, 10, 'delivered'),
        'and delivered: the children dropped to their user without more');
    is($srv->stop, 0, 'stopped with status 0');
}

# ---- what `make install` (install-data-hook) says is left
{
    my $script = srcdir() . '/tools/install-dirs.sh';
    my @args = ('/opt/p/etc', '/opt/p/lib/systemd/system', '/opt/p/sbin');
    my ($st, $out) = run_cmd(['/bin/sh', $script, '/tmp/destdir', @args]);
    is($st >> 8, 0, 'install-dirs.sh with DESTDIR exits 0');
    is($out, '', 'and leaves a package build alone');
    my @as = $> == 0 ? ('/usr/sbin/runuser', '-u', 'nobody', '--') : ();
    ($st, $out) = run_cmd([@as, '/bin/sh', $script, '', @args]);
    is($st >> 8, 0, 'install-dirs.sh as an ordinary user exits 0');
    like($out, qr{install -d -m 0700 /var/spool/postern}, 'it names the spool to create as root');
    like($out, qr{useradd --system .* postern}, 'the user to create')
        if !getpwnam('postern');
    like($out, qr{/opt/p/lib/systemd/system/postern\.service\):\n\s+systemctl daemon-reload && systemctl enable --now postern},
        'and the unit to enable');
}

done_testing();
