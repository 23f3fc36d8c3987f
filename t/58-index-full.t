# 58-index-full.t - the queue index's LMDB map at its high-water mark
# (issue 19 finding 1): with a 1 MiB map that may not grow, new mail gets
# 452 4.3.1 once the map is 90 % used, the mail already queued still
# drains when its destination comes back (removals find room), acceptance
# resumes by itself, /metrics shows the map's use, and nothing is
# delivered twice, not even after a restart.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $dir = tempdir() . '/full';
my $port = free_port();
my $sinkdir = "$dir/sink";
my $conf = write_config(dir => $dir, transport => 'relay', relay_port => $port,
    index_size => '1M', index_max_size => '1M', max_recipients => 100);
my $pm = start_postern($conf);

# 100 recipients with long addresses: about 14 KB of records a message
my @rcpts = map { sprintf('recipient-%03d-%s@example.com', $_, 'x' x 48) } 1 .. 100;
my (@accepted, $code, $text);
for my $i (1 .. 150) {
    my $subject = unique_tag("fill$i");
    ($code, $text) = send_mail($pm->smtp_port, 'sender@example.org', \@rcpts,
        make_message(subject => $subject));
    last if $code != 250;
    push @accepted, $subject;
}
is($code, 452, 'a full index map: 452 to new mail') or diag($text);
like($text, qr/^4\.3\.1\b/, 'enhanced status 4.3.1');
cmp_ok(scalar @accepted, '>=', 10, scalar(@accepted) . ' messages queued before it');
ok($pm->alive, 'postern is still running');

my $m = metrics($pm->url('/metrics'));
is(metric($m, 'postern_queue_index_size_bytes'), 1048576, '/metrics: the map size');
# in a 1 MiB map the mark is lower than 90 %: the reserve is 256 KiB
cmp_ok(metric($m, 'postern_queue_index_used_bytes') // 0, '>', 1048576 - 262144,
    '/metrics: the map use, over the high-water mark');
my @over = $pm->log_text =~ /over queue\.index_high_water/g;
is(scalar @over, 1, 'one log line for the refusal, not one per message')
    or diag(join("\n", grep { /index|lmdb|452/ } split /\n/, $pm->log_text));

# the destination comes back: everything queued drains
smtp_sink($port, $sinkdir);
ok(wait_for(sub { count_sink_messages($sinkdir) >= @accepted }, 60, 'drained'),
    'every queued message is delivered') or diag($pm->log_tail(20));
ok(wait_for(sub { !spool_files($pm->spool) }, 20, 'empty spool'), 'and removed from the queue');
unlike($pm->log_text, qr/not yet removed from the queue index|cannot remove it/,
    'every removal found room in the map');

ok(wait_for(sub { $pm->log_text =~ /accepting new mail again/ }, 10, 'resume line'),
    'log: accepting again');
my $last = unique_tag('after');
($code, $text) = send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com',
    make_message(subject => $last));
is($code, 250, 'acceptance resumes') or diag($text);
push @accepted, $last;
ok(wait_for(sub { count_sink_messages($sinkdir) >= @accepted }, 20, 'last'),
    'and that message is delivered');
is($pm->stop, 0, 'postern stops');

# a restart delivers nothing again
$pm = start_postern($conf);
sleep 3;
is($pm->stop, 0, 'postern stops after the restart');
my %seen;
for my $msg (sink_messages($sinkdir)) {
    $seen{$1}++ if $msg =~ /^Subject: (\S+)/m;
}
is(count_sink_messages($sinkdir), scalar @accepted, 'as many deliveries as accepted messages');
is(scalar(grep { ($seen{$_} // 0) == 1 } @accepted), scalar @accepted,
    'each accepted message delivered exactly once');

# ---- a map that may grow: index_size 1M, index_max_size 2M
$conf = write_config(dir => "$dir/grow", transport => 'relay',
    relay_port => free_port(), index_size => '1M', index_max_size => '2M',
    max_recipients => 100);
$pm = start_postern($conf);
my $ok = 0;
for my $i (1 .. 70) {
    ($code, $text) = send_mail($pm->smtp_port, 'sender@example.org', \@rcpts,
        make_message(subject => unique_tag("grow$i")));
    last if $code != 250;
    $ok++;
}
is($ok, 70, 'a map that may grow takes more than a 1 MiB map holds') or diag($text);
like($pm->log_text, qr/queue index: map grown from 1048576 to 2097152 bytes/,
    'log: the map grew at run time');
$m = metrics($pm->url('/metrics'));
is(metric($m, 'postern_queue_index_size_bytes'), 2097152, '/metrics: the grown size');
is($pm->stop, 0, 'postern stops');
done_testing;
