# 54-destinations.t - scheduling by destination, end to end:
#  - a destination that fails at the connection level (a relay to a
#    closed port: 4.4.x) is marked down as a whole; its other recipients
#    wait without an attempt being counted (and expire, 4.4.7, with
#    attempt=0 once past the lifetime), it is probed once per backoff
#    step, while another destination (the maildir) is delivered at once;
#  - destination_rate spreads deliveries to one destination over time.
# (The scheduling functions themselves: t/unit/dest-test.c.)
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Time::HiRes qw(time sleep);

require_build();

# ---- a dead destination does not delay a live one
my $closed = free_port();
my $extra = <<"EOT";
transport deadrelay {
	type = relay
	host = "127.0.0.1:$closed"
	timeout = 3s
}
route "*\@dead.test" { transport = deadrelay }
EOT
my $conf = write_config(name => 'down', extra => $extra, retry_base => '3s',
    retry_cap => '3s', lifetime => '7s');
my $pm = start_postern($conf);
my (undef, $t, $qa) = send_mail($pm->smtp_port, 'sender@example.org', 'a@dead.test',
    make_message(to => 'a@dead.test'));
ok($pm->wait_log(qr/destination deadrelay:127\.0\.0\.1:$closed: down for \d+s after 1 connection failure/, 10),
    'log: the destination is down after a connection failure') or diag($pm->log_tail(20));
my $down_at = time();
my (@ids);
for my $r (qw(b c)) {
    my ($code, $text, $id) = send_mail($pm->smtp_port, 'sender@example.org', "$r\@dead.test",
        make_message(to => "$r\@dead.test"));
    is($code, 250, "message to $r\@dead.test accepted") or diag($text);
    push @ids, $id // 'NOID';
}
my ($code, $text, $qd) = send_mail($pm->smtp_port, 'sender@example.org', 'd@live.test',
    make_message(to => 'd@live.test'));
is($code, 250, 'message to the live destination accepted');
ok(wait_for(sub { scalar maildir_files($pm->maildir) }, 3, 'live delivery'),
    'the live destination is delivered at once');
sleep(1.5 - (time() - $down_at)) if time() - $down_at < 1.5;
for my $id (@ids) {
    unlike($pm->log_text, qr/\Q$id\E: to=<\w\@dead\.test> [^\n]*status=/,
        "$id waits for the destination: no attempt while it is down");
}
for my $id (@ids) {
    ok($pm->wait_log(qr/\Q$id\E: to=<\w\@dead\.test> [^\n]*dsn=4\.4\.7 status=bounced \(delivery time expired/, 15),
        "$id expires after the lifetime (4.4.7)") or diag($pm->log_tail(20));
    ok($pm->wait_log(qr/\Q$id\E: bounce-sent id=\S+ to=<sender\@example\.org> action=failed/, 5),
        '  and its sender gets the DSN');
}
like($pm->log_text, qr/to=<\w\@dead\.test> [^\n]*attempt=0 dsn=4\.4\.7 status=bounced \(delivery time expired \(destination deadrelay:\S+ not reachable/,
    'a recipient that only ever waited expires with attempt=0');
my @probes = $pm->log_text =~ /\Q$qa\E: to=<a\@dead\.test> [^\n]*status=(?:deferred|bounced)/g;
cmp_ok(scalar @probes, '<=', 3, 'the dead destination was probed once per backoff step ('
    . scalar(@probes) . ' attempts in the lifetime)');
is($pm->stop, 0, 'postern stops');

# ---- destination_rate = 2: six messages to one destination take >= 2 s
# (debug logging: queued logs each job as it starts, which is what the
# limit counts; a delivery's result may land in the next second)
$conf = write_config(name => 'rate', destination_rate => 2, log_level => 'debug');
$pm = start_postern($conf);
my @kids;
for my $i (1 .. 6) {
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        my ($c) = send_mail($pm->smtp_port, 'sender@example.org', "r$i\@example.com",
            make_message(subject => "rate $i"));
        POSIX::_exit($c == 250 ? 0 : 1);
    }
    push @kids, $pid;
}
my $bad = 0;
for (@kids) { waitpid($_, 0); $bad += $? >> 8 }
is($bad, 0, 'six messages accepted');
ok(wait_for(sub { maildir_files($pm->maildir) >= 6 }, 15, 'six delivered'), 'all delivered');
my @secs = map { /T\d\d:\d\d:(\d\d)\.\d+Z postern\/queued\[\d+\]: debug: \S+: job \d+ to / ? $1 : () }
    split /\n/, $pm->log_text;
is(scalar @secs, 6, 'six jobs started') or diag($pm->log_tail(20));
my %per;
$per{$_}++ for @secs;
my ($max) = sort { $b <=> $a } values %per;
cmp_ok($max // 99, '<=', 2, 'at most 2 deliveries started in any one second')
    or diag(join(' ', map { "$_:$per{$_}" } sort keys %per));
cmp_ok(scalar(keys %per), '>=', 3, 'spread over at least 3 seconds');
is($pm->stop, 0, 'postern stops');
done_testing;
