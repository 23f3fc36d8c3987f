# 46-pipe.t - the pipe transport: a command run without a shell with the
# message on stdin and %r in its argv (the message lands in a
# file), exit 75 deferred with the first stderr line as the reply, exit 1
# bounced, and a command that sleeps past the timeout killed (its whole
# process group) and deferred; the four run at once from one message.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $dir = tempdir() . '/pipe';
mkdir $dir;
chmod 0755, $dir;
mkdir "$dir/out";
chmod 0777, "$dir/out";

# script - an executable helper (the test's own; postern runs it directly)
sub script {
    my ($name, $body) = @_;
    spit("$dir/$name", "#!/bin/sh\n$body");
    chmod 0755, "$dir/$name";
    return "$dir/$name";
}
my $cat = script('catto.sh', 'exec /bin/cat > "$1/$2.$QUEUE_ID"' . "\n");
my $temp = script('temp.sh', "cat >/dev/null\necho 'mailbox busy, try later' >&2\necho second line >&2\nexit 75\n");
my $fail = script('fail.sh', "cat >/dev/null\necho 'no such mailbox here' >&2\nexit 1\n");
my $slow = script('slow.sh', "echo \$\$ > $dir/out/slow.pid\nexec /bin/sleep 30\n");

my $extra = <<"EOT";
transport tocat { type = pipe command = { "$cat", "$dir/out", "%r" } }
transport temp { type = pipe command = { "$temp" } }
transport fail { type = pipe command = { "$fail" } }
transport slow { type = pipe command = { "$slow" } timeout = 1s }
route "cat\@pipe.example" { transport = tocat }
route "temp\@pipe.example" { transport = temp }
route "fail\@pipe.example" { transport = fail }
route "slow\@pipe.example" { transport = slow }
EOT
my $conf = write_config(dir => $dir, extra => $extra);
my $pm = start_postern($conf);
my $tag = unique_tag('pipe');
my @to = map { "$_\@pipe.example" } qw(cat temp fail slow);
my ($code, $text, $q) = send_mail($pm->smtp_port, 'sender@example.org', \@to,
    make_message(subject => $tag, to => 'cat@pipe.example', body => "pipe body $tag\r\n"));
is($code, 250, 'message to four pipe transports accepted') or diag($text);
$q //= 'NOID';

my $out = "$dir/out/cat\@pipe.example.$q";
ok(wait_for(sub { -s $out && (slurp($out) // '') =~ /pipe body \Q$tag\E\n/ }, 10, 'pipe output'),
    'cat got the message on stdin; %r and QUEUE_ID reached it');
diag(join ' ', glob("$dir/out/*")) unless -s $out;
unlike(slurp($out) // '', qr/\r/, 'the command reads LF line ends');
ok($pm->wait_log(qr/\Q$q\E: to=<cat\@pipe\.example> .*relay=pipe:\S+catto\.sh .*dsn=2\.0\.0 status=sent/, 10),
    'exit 0: sent') or diag($pm->log_tail(20));
ok($pm->wait_log(qr/\Q$q\E: to=<temp\@pipe\.example> .*dsn=4\.3\.0 status=deferred \(mailbox busy, try later\)/, 10),
    'exit 75: deferred with the first stderr line') or diag($pm->log_tail(20));
ok($pm->wait_log(qr/\Q$q\E: to=<fail\@pipe\.example> .*dsn=5\.3\.0 status=bounced \(no such mailbox here\)/, 10),
    'exit 1: bounced with the first stderr line') or diag($pm->log_tail(20));
ok($pm->wait_log(qr/\Q$q\E: to=<slow\@pipe\.example> .*dsn=4\.4\.7 status=deferred \(command timed out after 1s\)/, 10),
    'a command past its timeout: deferred 4.4.7') or diag($pm->log_tail(20));
like($pm->log_text, qr/pipe \S+slow\.sh: timeout, killing process group/, 'log: the kill');
my $pid = slurp("$dir/out/slow.pid") // '';
chomp $pid;
ok($pid =~ /^\d+$/ && wait_for(sub { !kill(0, $pid) }, 5, 'slow command gone'),
    'the timed-out command is gone');
$pm->stop;
$pm->check_sanitizers;
done_testing();
