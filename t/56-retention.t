# 56-retention.t - queue options: retention (a delivered message's file
# is kept in SPOOL/retained/ and removed after the retention), and
# group_commit = no (every commit on its own: still durable and
# delivered; the benchmark compares the two).
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

# ---- retention = 2s
my $conf = write_config(name => 'ret', retention => '2s');
my $pm = start_postern($conf);
my ($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org',
    'rcpt@example.com', make_message(subject => unique_tag('ret')));
is($code, 250, 'accepted') or diag($text);
my $q = quotemeta($qid // 'NOID');
ok($pm->wait_log(qr/$q: retained/, 10), 'log: retained') or diag($pm->log_tail(20));
my $kept = $pm->spool . "/retained/" . ($qid // 'NOID');
ok(-f $kept, 'the file is in retained/');
ok(!-e $pm->spool . "/msg/" . ($qid // 'NOID'), 'and no longer in msg/');
is(scalar maildir_files($pm->maildir), 1, 'the message was delivered');
ok(wait_for(sub { !-e $kept }, 10, 'retained file removed'),
    'removed once the retention is over');
# the line follows the unlink: wait for it rather than read the log at once
ok($pm->wait_log(qr/$q: retention over, removed from retained\//, 10),
    'log: retention over') or diag($pm->log_tail(20));
is($pm->stop, 0, 'postern stops');

# ---- group_commit = no: 20 messages from 4 clients, all durable
$conf = write_config(name => 'nogc', group_commit => 'no');
$pm = start_postern($conf);
my @kids;
for my $c (1 .. 4) {
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        my $bad = 0;
        for my $i (1 .. 5) {
            my ($c2) = send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com',
                make_message(subject => "gc $c $i"));
            $bad++ if $c2 != 250;
        }
        POSIX::_exit($bad);
    }
    push @kids, $pid;
}
my $bad = 0;
for (@kids) { waitpid($_, 0); $bad += $? >> 8 }
is($bad, 0, 'group_commit = no: 20 of 20 accepted');
ok(wait_for(sub { maildir_files($pm->maildir) >= 20 }, 15, '20 delivered'),
    'all 20 delivered');
is($pm->stop, 0, 'postern stops');
done_testing;
