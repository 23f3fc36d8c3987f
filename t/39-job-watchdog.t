# 39-job-watchdog.t - queue.job_timeout: a delivery job that stays
# unanswered (here a pipe command that hangs, with a transport timeout far
# longer than the watchdog's) has its recipient deferred 4.4.1 with a log
# line, the master replaces that delivery process, and the retry delivers
# the message exactly once.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $dir = tempdir() . '/wd';
mkdir $dir;
chmod 0755, $dir;
mkdir "$dir/out";
chmod 0777, "$dir/out";
# the first run hangs (its pid kept so the test can stop it), later runs deliver
spit("$dir/hang.sh", <<"EOT");
#!/bin/sh
if [ ! -e $dir/out/hung ]; then
	echo \$\$ > $dir/out/hung
	exec /bin/sleep 60
fi
exec /bin/cat > $dir/out/msg.\$QUEUE_ID
EOT
chmod 0755, "$dir/hang.sh";

my $conf = write_config(dir => $dir, job_timeout => '2s', extra => <<"EOT");
transport hang { type = pipe command = { "$dir/hang.sh" } timeout = 1h }
route "*\@hang.example" { transport = hang }
EOT
my $pm = start_postern($conf);
my ($dpid) = $pm->child_pids('delivery');
my ($code, $text, $q) = send_mail($pm->smtp_port, 'sender@example.org',
    'x@hang.example', make_message(subject => unique_tag('wd')));
is($code, 250, 'accepted') or diag($text);
my $qq = quotemeta($q // 'NOID');
ok(wait_for(sub { -s "$dir/out/hung" }, 10, 'the command runs and hangs'),
    'the first delivery hangs');
ok($pm->wait_log(qr/$qq: job \d+ to delivery\[0\] \(1 recipient\(s\)\) unanswered after [2-9]s \(queue\.job_timeout\): deferred/, 20),
    'the watchdog logs the unanswered job') or diag($pm->log_tail(20));
ok($pm->wait_log(qr/$qq: to=<x\@hang\.example> .*attempt=1 dsn=4\.4\.1 status=deferred \(the delivery did not finish within queue\.job_timeout/, 10),
    'its recipient is deferred 4.4.1') or diag($pm->log_tail(20));
ok($pm->wait_log(qr/delivery\[0\] \(pid $dpid\) left a delivery job unanswered past queue\.job_timeout; killing it/, 10),
    'the master replaces that delivery process') or diag($pm->log_tail(20));
ok(wait_for(sub { my ($p) = $pm->child_pids('delivery'); $p && $p != $dpid }, 15,
    'a new delivery process'), 'a new delivery process runs');
ok($pm->wait_log(qr/$qq: to=<x\@hang\.example> .*attempt=2 dsn=2\.0\.0 status=sent/, 20),
    'the retry delivers it') or diag($pm->log_tail(20));
my @got = glob("$dir/out/msg.*");
is(scalar @got, 1, 'exactly one copy delivered');
ok(wait_for(sub { !spool_files($pm->spool) }, 10, 'empty spool'), 'the queue is empty');

my $hung = slurp("$dir/out/hung") // '';
kill('KILL', $1) if $hung =~ /^(\d+)/;
is($pm->stop, 0, 'postern stops with status 0');
$pm->check_sanitizers;
done_testing();
