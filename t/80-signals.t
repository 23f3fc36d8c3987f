# 80-signals.t - the master's signal handling and posternctl's process
# commands: SIGHUP reloads a changed config (new greeting hostname, new
# maildir path) and keeps the running one when the new file is broken;
# kill -9 of a child is logged and the child restarted (/healthz 503 then
# 200, postern_child_restarts_total up); a second postern on the same
# run_dir refuses to start; SIGTERM ends with status 0 and no child left;
# posternctl start/status/reload/stop drive a daemonised postern through
# the pid file.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my %base = (name => 'sig', hostname => 'before.test');
my $conf = write_config(%base);
my $info = conf_info($conf);
my %same = (%base, smtp_port => $info->{smtp_port}, http_port => $info->{http_port});
my $pm = start_postern($conf);

# greeting - the current SMTP greeting line ('' if none)
sub greeting {
    my $s = eval { smtp_raw($pm->smtp_port, timeout => 3) } or return '';
    my $g = $s->{greeting}{raw};
    $s->cmd('QUIT');
    $s->close;
    return $g;
}

# deliver - send one message, return the maildir file path it landed in
sub deliver {
    my ($maildir) = @_;
    my $tag = unique_tag('sig');
    my ($code, $text) = send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com',
        make_message(subject => $tag));
    is($code, 250, "message $tag accepted") or diag($text);
    return wait_for(sub { (grep { (slurp($_) // '') =~ /\Q$tag\E(?![\w-])/ }
        maildir_files($maildir))[0] }, 10, "message in $maildir");
}

like(greeting(), qr/^220 before\.test /, 'greeting with the first hostname');
ok(deliver($info->{maildir}), 'delivered into the first maildir');

# ---- SIGHUP with a changed config
my $newmail = tempdir() . '/sig/mail2';
write_config(%same, hostname => 'after.test', maildir => $newmail);
ok(kill('HUP', $pm->pid), 'SIGHUP');
ok($pm->wait_log(qr/reloaded \Q$conf\E/, 10), 'log: reloaded FILE');
ok(wait_for(sub { greeting() =~ /^220 after\.test / }, 10, 'new greeting'),
    'greeting shows the new hostname after the reload');
ok(wait_for(sub { $pm->healthz == 200 }, 10, 'healthy after reload'), '/healthz 200 after the reload');
ok(deliver($newmail), 'delivered into the new maildir after the reload');

# ---- SIGHUP with a broken config: keep running
my $good_text = slurp($conf);
spit($conf, $good_text . "bogus_option = 1\n");
ok(kill('HUP', $pm->pid), 'SIGHUP with a broken file');
ok($pm->wait_log(qr/reload: \Q$conf\E:\d+: .*bogus_option.*; keeping the running configuration/, 10),
    'log: reload error with file, line and "keeping the running configuration"');
ok($pm->alive, 'master still running');
like(greeting(), qr/^220 after\.test /, 'the running configuration still serves');
is($pm->healthz, 200, '/healthz still 200');
spit($conf, $good_text);

# ---- kill -9 of a child: logged, restarted, counted
my $murl = $pm->url('/metrics');
my $m0 = metrics($murl);
my $r0 = metric($m0, 'postern_child_restarts_total', process => 'smtpd', index => '0') // 0;
my ($spid) = $pm->child_pids('smtpd');
ok($spid, "found postern-smtpd (pid @{[$spid // '?']})");
ok($spid && kill('KILL', $spid), 'SIGKILL postern-smtpd');
ok($pm->wait_log(qr/smtpd\[0\] \(pid $spid\) killed by signal 9/, 5),
    'log: smtpd[0] (pid N) killed by signal 9') if $spid;
ok($pm->wait_log(qr/restarting smtpd\[0\] in \d+s/, 5), 'log: restarting smtpd[0] in Ns');
my $saw503 = wait_for(sub { $pm->healthz == 503 }, 5, '/healthz 503');
ok($saw503, '/healthz 503 while smtpd is down');
ok(wait_for(sub { $pm->healthz == 200 }, 15, '/healthz 200 again'), '/healthz 200 after the restart');
my ($spid2) = $pm->child_pids('smtpd');
ok($spid2 && (!$spid || $spid2 != $spid), 'a new smtpd process');
my $m1 = metrics($murl);
is(metric($m1, 'postern_child_restarts_total', process => 'smtpd', index => '0') // 0, $r0 + 1,
    'postern_child_restarts_total{process="smtpd",index="0"} went up by one');
is(metric($m1, 'postern_child_up', process => 'smtpd', index => '0'), 1, 'postern_child_up 1 again');
like(greeting(), qr/^220 /, 'SMTP works after the restart');

# ---- a second postern on the same run_dir refuses to start
my ($st, $out, $err) = run_cmd([bin('postern'), '-f', '-c', $conf], 15);
is($st >> 8, 1, 'a second postern exits 1');
like($err, qr/postern is already running \(pid ${\ $pm->pid }\)/, '"postern is already running (pid N)"');
ok($pm->alive, 'the first one is unaffected');

# ---- SIGTERM: status 0, nothing left
my @kids = $pm->children;
cmp_ok(scalar @kids, '>=', 4, 'master has its children (queued, delivery, smtpd, httpd)');
my $t0 = time;
is($pm->stop(20), 0, 'SIGTERM: exit status 0');
cmp_ok(time - $t0, '<=', 15, 'stopped within shutdown_timeout + margin');
ok(wait_for(sub { !$pm->leftover }, 5, 'children gone'), 'no child left after SIGTERM')
    or diag('left: ' . join(' ', $pm->leftover));
like($pm->log_text, qr/stopping/, 'log: stopping');
like($pm->log_text, qr/stopped/, 'log: stopped');
ok(!-e "$info->{run_dir}/postern.pid", 'pid file removed');

# ---- posternctl start/status/reload/stop (daemon mode)
my $ctl = bin('posternctl');
my $dconf = write_config(name => 'daemon');
my $dinfo = conf_info($dconf);
my $pidfile = "$dinfo->{run_dir}/postern.pid";
my ($dpid, @dkids);
END {   # last resort: never leave the daemon behind
    kill_tree($dpid) if $dpid && pid_alive($dpid);
    kill('KILL', grep { pid_alive($_) } @dkids) if @dkids;
}

($st, $out, $err) = run_cmd([$ctl, '-c', $dconf, 'status']);
is($st >> 8, 3, 'status before start: exit 3');
like($out . $err, qr/postern is not running/, '"postern is not running"');

($st, $out, $err) = run_cmd([$ctl, '-c', $dconf, 'start'], 30);
is($st >> 8, 0, 'posternctl start: exit 0') or diag($out . $err);
($dpid) = (slurp($pidfile) // '') =~ /(\d+)/;
ok($dpid && pid_alive($dpid), 'pid file names a live process');
wait_for(sub { (@dkids = proc_descendants($dpid // 0)) >= 4 }, 10, 'daemon children');
ok(wait_for(sub { eval { smtp_raw($dinfo->{smtp_port}, timeout => 2)->cmd('QUIT') }; !$@ },
    10, 'daemon SMTP'), 'daemonised postern accepts SMTP');

($st, $out, $err) = run_cmd([$ctl, '-c', $dconf, 'status']);
is($st >> 8, 0, 'status: exit 0');
like($out, qr/postern is running \(pid $dpid\)/, '"postern is running (pid N)"') if $dpid;

($st, $out, $err) = run_cmd([$ctl, '-c', $dconf, 'reload']);
is($st >> 8, 0, 'reload: exit 0') or diag($err);
ok(pid_alive($dpid), 'still running after reload') if $dpid;

my $dtext = slurp($dconf);
spit($dconf, $dtext . "bogus_option = 1\n");
($st, $out, $err) = run_cmd([$ctl, '-c', $dconf, 'reload']);
is($st >> 8, 78, 'reload with a broken file: exit 78, no signal');
like($err, qr/bogus_option/, 'reload names the bad option');
spit($dconf, $dtext);

($st, $out, $err) = run_cmd([$ctl, '-c', $dconf, 'stop'], 40);
is($st >> 8, 0, 'stop: exit 0') or diag($out . $err);
like($out, qr/postern stopped/, '"postern stopped"');
ok(!pid_alive($dpid), 'the daemon is gone') if $dpid;
ok(wait_for(sub { !grep { pid_alive($_) } @dkids }, 5, 'daemon children gone'),
    'no daemon child left');
ok(!-e $pidfile, 'pid file removed');

($st, $out, $err) = run_cmd([$ctl, '-c', $dconf, 'status']);
is($st >> 8, 3, 'status after stop: exit 3');
($st, $out, $err) = run_cmd([$ctl, '-c', $dconf, 'stop']);
is($st >> 8, 0, 'stop when not running: exit 0');
like($out . $err, qr/postern is not running/, '"postern is not running"');
kill_tree($dpid) if $dpid && pid_alive($dpid);

done_testing;
