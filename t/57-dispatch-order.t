# 57-dispatch-order.t - a destination at its concurrency gets its next job
# in the event-loop round of the result that freed the slot, BEFORE that
# round's disk sync, not after it (queued_sched.c, qsched_run_pending).
# Without that, every delivered message kept its destination's slot empty
# for the length of its removal's LMDB commit (and of the round's
# acceptance commit): with many arrivals a busy destination sat idle most
# of the time and the queue drained seconds after the last acceptance.
# Set up like bench/delivery.sh's drain: the smarthost is down, so the
# first message is deferred and its destination backed off; the others
# wait behind it without an attempt; the sink starts; `posternctl queue
# flush` makes all of them due at once with destination_concurrency = 1.
# From queued's debug log, in order: every result but the last is
# followed by the next job before the delivered message's "removed"; at
# most one job is ever in flight (the configured bound); every message is
# delivered in one attempt after the flush, over one reused connection.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();
plan skip_all => "needs Postfix's smtp-sink" unless -x '/usr/sbin/smtp-sink';

my $n = 6;
my $sinkport = free_port();
my $sinkdir = tempdir() . '/sink57';
my $conf = write_config(name => 'dispatch', transport => 'relay',
    relay_port => $sinkport, relay_timeout => '5s', log_level => 'debug',
    destination_concurrency => 1, retry_base => '1h', retry_cap => '2h');
my $pm = start_postern($conf);

# ---- the smarthost is down: the first message backs the destination off
my @ids;
my ($code, $text, $id) = send_mail($pm->smtp_port, 'sender@example.org',
    'r0@example.com', make_message(subject => 'dispatch 0'));
is($code, 250, 'message 0 accepted') or diag($text);
push @ids, $id // 'NOID';
ok($pm->wait_log(qr/destination \S+: down for \d+s after 1 connection failure/, 10),
    'the smarthost is down: its destination is backed off') or diag($pm->log_tail(20));
for my $i (1 .. $n - 1) {
    ($code, $text, $id) = send_mail($pm->smtp_port, 'sender@example.org',
        "r$i\@example.com", make_message(subject => "dispatch $i"));
    is($code, 250, "message $i accepted") or diag($text);
    push @ids, $id // 'NOID';
}

# ---- the smarthost comes up; a flush makes every message due at once
my $sink = smtp_sink($sinkport, $sinkdir);
my $mark = length($pm->log_text);
my ($rc, undef, $err) = run_cmd([bin('posternctl'), '-c', $conf, 'queue', 'flush']);
is($rc, 0, 'posternctl queue flush') or diag($err);
ok(wait_for(sub { count_sink_messages($sinkdir) >= $n }, 20, "$n messages in the sink"),
    "all $n messages delivered after the flush") or diag($pm->log_tail(30));
ok(wait_for(sub { my @r = substr($pm->log_text, $mark) =~ /: \w+: removed$/mg;
    @r >= $n }, 10, 'removals'), 'every delivered message removed');

# queued's lines after the flush: jobs out, results in, removals
my @ev;
for my $line (split /\n/, substr($pm->log_text, $mark)) {
    next unless $line =~ m{postern/queued\[\d+\]: };
    if ($line =~ /: debug: (\w+): job \d+ to /) {
        push @ev, [ 'job', $1 ];
    } elsif ($line =~ /: (\w+): to=<[^>]*> .* status=(\w+)/) {
        push @ev, [ $2, $1 ];
    } elsif ($line =~ /: (\w+): removed$/) {
        push @ev, [ 'removed', $1 ];
    }
}
my @jobs = grep { $_->[0] eq 'job' } @ev;
my @sent = grep { $_->[0] eq 'sent' } @ev;
is(scalar @jobs, $n, "$n jobs after the flush (one attempt each)");
is(scalar @sent, $n, "$n results status=sent") or diag($pm->log_tail(30));

my ($inflight, $max, $early, $late) = (0, 0, 0, 0);
for my $k (0 .. $#ev) {
    my ($what, $qid) = @{ $ev[$k] };
    $inflight++ if $what eq 'job';
    $inflight-- if $what eq 'sent';
    $max = $inflight if $inflight > $max;
    next unless $what eq 'sent';
    my ($next_job) = grep { $ev[$_][0] eq 'job' } $k + 1 .. $#ev;
    my ($removed) = grep { $ev[$_][0] eq 'removed' && $ev[$_][1] eq $qid } $k + 1 .. $#ev;
    next unless defined $next_job;      # the last result: nothing waits
    if (defined $removed && $next_job < $removed) { $early++ } else { $late++ }
}
is($max, 1, 'never more than destination_concurrency (1) jobs in flight');
is($early, $n - 1, 'each freed slot got its next job before the removal was synced')
    or diag("$late job(s) went out after the removal's commit\n" . $pm->log_tail(40));

my @conns = grep { /relay \S+: > MAIL FROM/ } split /\n/, substr($pm->log_text, $mark);
my @reuse = grep { /reusing the connection/ } split /\n/, substr($pm->log_text, $mark);
is(scalar @reuse, $n - 1, 'one connection, reused for every further message')
    or diag(scalar(@conns) . ' MAIL commands');

is($pm->stop, 0, 'postern stops');
stop_pid($sink);
done_testing();
