# 60-crash.t - the durability contract under SIGKILL.
#
# Part 1: 500 messages from 5 concurrent Net::SMTP clients to a relay
# sink (smtp-sink); during the run postern-queued is SIGKILLed once and a
# postern-delivery once. Every message that got a 250 must reach the sink
# (duplicates are allowed: at-least-once, reported with diag).
# Part 2: the whole of postern (master and children) is SIGKILLed mid-run,
# restarted on the same spool, and again every acknowledged message must
# arrive.
# POSTERN_CRASH_MESSAGES overrides the message count of part 1.
use strict;
use warnings;
use Test::More;
use Net::SMTP;
use Postern::Test;
use Time::HiRes qw(time sleep);

require_build();

my $N1 = $ENV{POSTERN_CRASH_MESSAGES} // 500;
my $N2 = int($N1 / 2.5) || 1;
my $CLIENTS = 5;

my $sinkport = free_port();
my $sinkdir = tempdir() . '/sink';
my $sink = smtp_sink($sinkport, $sinkdir);

# crash_message - the test message for an id (subject and end marker)
sub crash_message {
    my ($id) = @_;
    return make_message(subject => "crash $id", to => 'sink@example.com',
        message_id => "<$id\@crash.test>",
        body => "body of $id\n" . ("filler line for $id\n" x 20) . "END $id\n");
}

# client_main - one forked client: send its ids, append acked ones to
# $dir/acked.$n; stop at the deadline or when $dir/stop exists
sub client_main {
    my ($port, $n, $ids, $dir, $deadline) = @_;
    open(my $ack, '>>', "$dir/acked.$n") or POSIX::_exit(1);
    open(my $bad, '>>', "$dir/failed.$n") or POSIX::_exit(1);
    $ack->autoflush(1);
    $bad->autoflush(1);
    my $smtp;
    MSG: for my $id (@$ids) {
        my $msg = crash_message($id);
        while (time() < $deadline && !-e "$dir/stop") {
            $smtp ||= Net::SMTP->new('127.0.0.1', Port => $port,
                Hello => "client$n.test", Timeout => 10);
            if (!$smtp) { sleep(0.1); next }
            my ($code, $text) = smtp_transaction($smtp, 'crash@example.org',
                'sink@example.com', $msg);
            if ($code == 250) { print {$ack} "$id\n"; next MSG }
            if ($code >= 500) { print {$bad} "$id $code $text\n"; next MSG }
            eval { $smtp->quit };
            undef $smtp;
            sleep(0.1);
        }
        last;
    }
    eval { $smtp->quit } if $smtp;
    POSIX::_exit(0);
}

# start_clients - fork $CLIENTS clients sending ids PREFIX-0 .. PREFIX-(n-1)
sub start_clients {
    my ($port, $prefix, $n, $dir, $seconds) = @_;
    mkdir $dir;
    my $deadline = time() + $seconds;
    my @pids;
    for my $c (0 .. $CLIENTS - 1) {
        my @ids = map { "$prefix-$_" } grep { $_ % $CLIENTS == $c } 0 .. $n - 1;
        my $pid = fork() // die "fork: $!";
        if ($pid == 0) {
            client_main($port, $c, \@ids, $dir, $deadline);
        }
        push @pids, $pid;
    }
    return @pids;
}

# acked - the ids acknowledged so far (list)
sub acked {
    my ($dir) = @_;
    return map { split /\n/, (slurp($_) // '') } glob("$dir/acked.*");
}

# wait_clients - reap the clients (bounded), SIGKILL stragglers
sub wait_clients {
    my ($timeout, @pids) = @_;
    my %left = map { $_ => 1 } @pids;
    wait_for(sub {
        for my $p (keys %left) { delete $left{$p} if waitpid($p, POSIX::WNOHANG()) != 0 }
        return !%left;
    }, $timeout, 'clients to finish');
    stop_pid($_, 1, 'KILL') for keys %left;
    return scalar keys %left;
}

my %seen_cache;
# sink_ids - id => copies complete in the sink (files cached once complete)
sub sink_ids {
    my %n;
    opendir(my $dh, $sinkdir) or return {};
    for my $f (grep { /^m\./ } readdir $dh) {
        my $id = $seen_cache{$f};
        if (!defined $id) {
            my $t = slurp("$sinkdir/$f") // '';
            my ($s) = $t =~ /^Subject: crash (\S+)$/m;
            next unless $s && $t =~ /^END \Q$s\E$/m;
            $id = $seen_cache{$f} = $s;
        }
        $n{$id}++;
    }
    closedir $dh;
    return \%n;
}

# check_delivered - wait (bounded) until every acked id is in the sink;
# reports missing ones (fail) and duplicates (diag)
sub check_delivered {
    my ($name, $timeout, @ids) = @_;
    my $seen = {};
    wait_for(sub { $seen = sink_ids(); !grep { !$seen->{$_} } @ids },
        $timeout, "$name: every acknowledged message in the sink");
    my @missing = grep { !$seen->{$_} } @ids;
    my @dups = grep { $seen->{$_} > 1 } @ids;
    is(scalar @missing, 0, "$name: no acknowledged message is missing")
        or diag("missing: @missing[0 .. ($#missing > 20 ? 20 : $#missing)]");
    diag("$name: " . scalar(@dups) . " acknowledged messages arrived more than once "
        . "(at-least-once delivery)") if @dups;
    return;
}

# ---- part 1: kill queued and a delivery during the run
{
    my $conf = write_config(name => 'p1', transport => 'relay', relay_port => $sinkport,
        smtpd_processes => 2, delivery_processes => 2, concurrency => 20);
    my $pm = start_postern($conf);
    my $dir = tempdir() . '/clients1';
    my $t0 = time();
    my @clients = start_clients($pm->smtp_port, 'one', $N1, $dir, 150);

    my ($qpid) = $pm->child_pids('queued');
    ok($qpid, "found postern-queued (pid @{[$qpid // '?']})");
    ok(wait_for(sub { acked($dir) >= $N1 * 0.2 }, 60, '20% acknowledged'), '20% acknowledged');
    ok($qpid && kill('KILL', $qpid), 'SIGKILL postern-queued');
    ok(wait_for(sub { acked($dir) >= $N1 * 0.5 }, 60, '50% acknowledged'), '50% acknowledged');
    my ($dpid) = $pm->child_pids('delivery');
    ok($dpid && kill('KILL', $dpid), "SIGKILL postern-delivery (pid @{[$dpid // '?']})");

    is(wait_clients(160, @clients), 0, 'all clients finished');
    my @acked = acked($dir);
    my @failed = map { split /\n/, (slurp($_) // '') } glob("$dir/failed.*");
    diag(sprintf('part 1: %d of %d acknowledged in %.1fs, %d refused',
        scalar @acked, $N1, time() - $t0, scalar @failed));
    diag("refused: @failed[0 .. ($#failed > 5 ? 5 : $#failed)]") if @failed;
    cmp_ok(scalar @acked, '>=', $N1 * 0.9, 'nearly every message acknowledged');
    check_delivered('part 1', 90, @acked);

    like($pm->log_text, qr/queued\[0\] \(pid $qpid\) killed by signal 9/,
        'master logged the queued kill') if $qpid;
    like($pm->log_text, qr/delivery\[\d\] \(pid $dpid\) killed by signal 9/,
        'master logged the delivery kill') if $dpid;
    ok(wait_for(sub { !spool_files($pm->spool) }, 30, 'part 1 spool empty'),
        'spool empty once everything is delivered');
    is($pm->stop, 0, 'part 1: postern stops with status 0');
}

# ---- part 2: kill everything, restart on the same spool
{
    my $conf = write_config(name => 'p2', transport => 'relay', relay_port => $sinkport,
        smtpd_processes => 2, delivery_processes => 2, concurrency => 20);
    my $pm = start_postern($conf);
    my $dir = tempdir() . '/clients2';
    my @clients = start_clients($pm->smtp_port, 'two', $N2, $dir, 120);
    ok(wait_for(sub { acked($dir) >= $N2 * 0.4 }, 60, '40% acknowledged'), '40% acknowledged');
    my @procs = ($pm->pid, $pm->children);
    $pm->kill_all;
    ok(!grep({ pid_alive($_) } @procs), 'master and every child SIGKILLed');
    spit("$dir/stop", '');
    is(wait_clients(30, @clients), 0, 'clients stopped');
    my @acked = acked($dir);
    diag(sprintf('part 2: %d of %d acknowledged before the kill', scalar @acked, $N2));

    my $pm2 = start_postern($conf, log => tempdir() . '/p2/restart.log');
    ok($pm2->wait_log(qr/recovered \d+ messages, \d+ recipients/, 10),
        'queued logs its recovery');
    check_delivered('part 2', 90, @acked);
    ok(wait_for(sub { !spool_files($pm2->spool) }, 30, 'part 2 spool empty'),
        'spool empty after the restart delivered everything');
    is($pm2->stop, 0, 'part 2: postern stops with status 0');
}

stop_pid($sink);
done_testing;
