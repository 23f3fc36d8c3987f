#!/bin/bash
# bench/delivery.sh - delivery throughput of the mx transport: N messages
# to one destination domain, then N messages to D distinct domains, each
# resolved through a Net::DNS server on loopback (MX -> 127.0.0.1) and
# received by Postfix's smtp-sink, which counts the SMTP sessions it saw.
# Reports messages per second (first submission to last message in the
# sink), the drain lag (last submission acknowledged to last message in
# the sink), connections opened (what connection reuse saves) and why
# any delivery was deferred.
#   bench/delivery.sh [-n MESSAGES] [-d DOMAINS] [-c CONCURRENCY]
#                     [-C DESTINATION_CONCURRENCY] [-s SCENARIOS] [-F]
#   -s  any of: one many one-drain many-drain (default: all four)
#       one, many: end to end (submission over 16 connections while
#       delivery runs); *-drain: every message queued first (DNS down),
#       then `posternctl queue flush` starts the clock: delivery alone
#   -C  queue.destination_concurrency (default: the configuration's, 10)
#   -F  submit with Postfix's smtp-source (16 sessions, C speed) instead
#       of Net::SMTP; one destination only (smtp-source has one recipient)
# Needs a built tree: POSTERN_BUILDDIR (default: _build/plain). Runs as
# the current user; everything listens on 127.0.0.1 and is stopped at the
# end. BENCH_LOG_LEVEL (default info) and BENCH_KEEP_LOG=1 (copies the
# log to /tmp/bench-SCENARIO.log).
set -eu

N=2000
D=1000
C=40
DC=0
S="one many one-drain many-drain"
FAST=0
while getopts n:d:c:C:s:F o; do
	case $o in
	n) N=$OPTARG ;;
	d) D=$OPTARG ;;
	c) C=$OPTARG ;;
	C) DC=$OPTARG ;;
	s) S=$OPTARG ;;
	F) FAST=1 ;;
	*) sed -n '2,23p' "$0" >&2; exit 2 ;;
	esac
done
TOP=$(cd "$(dirname "$0")/.." && pwd)
export POSTERN_BUILDDIR=${POSTERN_BUILDDIR:-$TOP/_build/plain}
[ -x "$POSTERN_BUILDDIR/postern" ] || {
	echo "postern is not built in $POSTERN_BUILDDIR (set POSTERN_BUILDDIR)" >&2
	exit 1
}
[ -x /usr/sbin/smtp-sink ] || { echo "needs Postfix's smtp-sink" >&2; exit 1; }
[ "$FAST" = 0 ] || [ -x /usr/sbin/smtp-source ] || {
	echo "-F needs Postfix's smtp-source" >&2; exit 1; }

exec perl -I"$TOP/t/lib" - "$N" "$D" "$C" "$DC" "$S" "$FAST" <<'PERL'
use strict;
use warnings;
use Net::SMTP;
use Time::HiRes qw(time sleep);
use POSIX ();
use Postern::Test;

my ($n, $domains, $conc, $dconc, $scenarios, $fast) = @ARGV;
my %want = map { $_ => 1 } split ' ', $scenarios;

# sink_counts - (sessions, messages) from smtp-sink -c's running counters
sub sink_counts {
    my ($file) = @_;
    my $t = slurp($file) // '';
    my @m = $t =~ /sess=(\d+) quit=\d+ mesg=(\d+)/g;
    return @m ? @m[-2, -1] : (0, 0);
}

# inject - $count messages over 16 parallel SMTP connections, recipient
# domains from $dom->($i) (with -F and one domain: smtp-source)
sub inject {
    my ($port, $count, $dom, $ndom) = @_;
    my @pids;
    if ($fast && $ndom == 1) {
        system('/usr/sbin/smtp-source', '-s', 16, '-m', $count, '-l', 2048,
            '-f', 'bench@example.org', '-t', 'u@' . $dom->(0), "127.0.0.1:$port") == 0
            or die "smtp-source failed\n";
        return;
    }
    for my $k (0 .. 15) {
        my $pid = fork() // die "fork: $!";
        if ($pid == 0) {
            my $s = Net::SMTP->new('127.0.0.1', Port => $port, Timeout => 30)
                or POSIX::_exit(1);
            for (my $i = $k; $i < $count; $i += 16) {
                my $d = $dom->($i);
                $s->mail('bench@example.org');
                $s->to("u$i\@$d");
                $s->data("From: bench\@example.org\nTo: u$i\@$d\nSubject: bench $i\n\n"
                    . ("x" x 70 . "\n") x 30);
                $s->reset if !$s->ok;
            }
            $s->quit;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid($_, 0) for @pids;
}

# queue_state - (messages queued, recipients in delivery) from
# `posternctl queue list --json`
sub queue_state {
    my ($conf) = @_;
    my (undef, $out) = run_cmd([bin('posternctl'), '-c', $conf, 'queue', 'list',
        '--json'], 60);
    my $msgs = () = $out =~ /"id":/g;
    my $busy = () = $out =~ /"in_flight":\s*true/g;
    return ($msgs, $busy);
}

# run - one scenario; prints its line. With $drain the DNS server starts
# only after every message is queued (each deferred at once, or waiting
# behind its destination's backoff: the resolver is refused) and
# `posternctl queue flush` starts the clock: delivery alone, without
# submission in the way.
sub run {
    my ($name, $count, $dom, $ndom, $drain) = @_;
    $name .= '-drain' if $drain;
    my $dir = tempdir() . "/$name";
    my $sinkport = free_port();
    my $dnsport = free_port();
    my %rr = ('mx.bench.test' => { A => '127.0.0.1' });
    $rr{ $dom->($_) } = { MX => '10 mx.bench.test' } for 0 .. $ndom - 1;
    dns_server($dnsport, \%rr) unless $drain;
    mkdir $dir;
    my $sinklog = "$dir/sink.out";
    my $sink = spawn_sink($sinkport, $sinklog);
    my $conf = write_config(name => $name, default_transport => 'mx',
        log_level => $ENV{BENCH_LOG_LEVEL} // 'info',
        delivery_processes => 2, smtpd_processes => 2, concurrency => $conc,
        ($dconc ? (destination_concurrency => $dconc) : ()),
        retry_base => $drain ? '1h' : '5s', retry_cap => $drain ? '2h' : '2s',
        extra => <<"EOF");
transport mx {
	type = mx
	port = $sinkport
	timeout = 30s
}
dns_server = "127.0.0.1:$dnsport"
EOF
    my $pm = start_postern($conf);
    my $t0 = time;
    inject($pm->smtp_port, $count, $dom, $ndom);
    my $tin = time - $t0;
    my $skip = 0;
    if ($drain) {
        # every message queued and none in delivery: each one deferred or
        # waiting for its destination's backoff
        wait_for(sub { my ($m, $b) = queue_state($conf); $m >= $count && $b == 0 },
            120, 'every message queued and waiting');
        $skip = length($pm->log_text);
        dns_server($dnsport, \%rr);
        sleep 1;
        $t0 = time;
        $tin = 0;
        run_cmd([bin('posternctl'), '-c', $conf, 'queue', 'flush']);
    }
    my $done = 0;
    for (1 .. 6000) {
        my (undef, $m) = sink_counts($sinklog);
        if ($m >= $count) { $done = 1; last }
        sleep 0.05;
    }
    my $t = time - $t0;
    my (undef, $msgs) = sink_counts($sinklog);
    # smtp-sink counts a session when it ends: stop postern (its idle
    # cached connections close) before reading the connection count
    my $log = substr($pm->log_text, $skip);
    $pm->stop;
    sleep 0.5;
    my ($sess) = sink_counts($sinklog);
    printf "%-22s %6d msgs %5d domains  %7.1f msg/s  (%.1fs; %s)  "
        . "connections opened: %d%s\n", $name, $msgs, $ndom, $msgs / $t, $t,
        $drain ? 'delivery only' : sprintf('submitted in %.1fs, drain lag %.1fs',
        $tin, $t - $tin), $sess, $done ? '' : '  INCOMPLETE';
    # what went wrong in the measured part (needs log_level info)
    my %why;
    $why{$1}++ for $log =~ /status=deferred \(([^(\[]{0,60})/g;
    my @down = $log =~ /destination \S+: down for/g;
    printf "  deferred: %s x%d\n", $_, $why{$_} for sort keys %why;
    printf "  destination backoffs: %d\n", scalar @down if @down;
    system('cp', $pm->log_file, "/tmp/bench-$name.log") if $ENV{BENCH_KEEP_LOG};
    kill 'TERM', $sink;
    waitpid($sink, 0);
}

# spawn_sink - smtp-sink with running counters (-c) into $log
sub spawn_sink {
    my ($port, $log) = @_;
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open(STDOUT, '>', $log) or POSIX::_exit(1);
        open(STDERR, '>&', \*STDOUT);
        exec('/usr/sbin/smtp-sink', ($> == 0 ? ('-u', 'nobody') : ()), '-c',
            "127.0.0.1:$port", '1000') or POSIX::_exit(1);
    }
    Postern::Test::track($pid);     # stopped at exit even when a run dies
    wait_for(sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 1) },
        10, 'smtp-sink');
    return $pid;
}

print "postern delivery benchmark: $n messages, concurrency $conc, destination "
    . "concurrency " . ($dconc || 'default') . ($fast ? ', smtp-source' : '') . "\n";
my $one = sub { 'one.bench.test' };
my $many = sub { sprintf('d%04d.bench.test', $_[0] % $domains) };
print "end to end (submission over 16 connections, then delivery):\n"
    if $want{one} || $want{many};
run('one-destination', $n, $one, 1) if $want{one};
run("$domains-destinations", $n, $many, $domains) if $want{many};
print "delivery only (queued first, then `posternctl queue flush`):\n"
    if $want{'one-drain'} || $want{'many-drain'};
run('one-destination', $n, $one, 1, 1) if $want{'one-drain'};
run("$domains-destinations", $n, $many, $domains, 1) if $want{'many-drain'};
Test::More::done_testing();
PERL
