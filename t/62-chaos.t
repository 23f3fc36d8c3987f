# 62-chaos.t - 2,000 messages from 8 concurrent SMTP clients while random
# Postern processes are SIGKILLed: children of every role, and twice the
# master itself (then Postern is started again on the same spool). Every
# message acknowledged with 250 must reach the maildir at least once;
# duplicates are allowed (at-least-once) and reported with diag.
# POSTERN_CHAOS_MESSAGES overrides the count.
use strict;
use warnings;
use Test::More;
use Net::SMTP;
use Postern::Test;
use Time::HiRes qw(time sleep);

require_build();

my $N = $ENV{POSTERN_CHAOS_MESSAGES} // 2000;
my $CLIENTS = 8;
my $dir = tempdir() . '/chaos';
mkdir $dir;

# client_main - send the ids, append acked ones to $dir/acked.$n; retry
# through outages until the deadline
sub client_main {
    my ($port, $n, $ids, $deadline) = @_;
    open(my $ack, '>>', "$dir/acked.$n") or POSIX::_exit(1);
    $ack->autoflush(1);
    my $smtp;
    MSG: for my $id (@$ids) {
        my $msg = make_message(subject => "chaos $id", to => 'rcpt@example.com',
            message_id => "<$id\@chaos.test>", body => "body of $id\nEND $id\n");
        while (time() < $deadline) {
            $smtp ||= Net::SMTP->new('127.0.0.1', Port => $port,
                Hello => "chaos$n.test", Timeout => 5);
            if (!$smtp) { sleep(0.05); next }
            my ($code) = eval { smtp_transaction($smtp, 'chaos@example.org',
                'rcpt@example.com', $msg) };
            if (($code // 0) == 250) { print {$ack} "$id\n"; next MSG }
            eval { $smtp->quit };
            undef $smtp;
            sleep(0.05);
        }
        last;
    }
    eval { $smtp->quit } if $smtp;
    POSIX::_exit(0);
}

# acked - every id acknowledged so far
sub acked { return map { split /\n/, (slurp($_) // '') } glob("$dir/acked.*") }

my %cache;
# delivered - id => copies in the maildir (complete files only)
sub delivered {
    my ($maildir) = @_;
    my %n;
    for my $f (maildir_files($maildir)) {
        my $id = $cache{$f};
        if (!defined $id) {
            my $t = slurp($f) // '';
            my ($s) = $t =~ /^Subject: chaos (\S+)$/m;
            next unless $s && $t =~ /^END \Q$s\E$/m;
            $id = $cache{$f} = $s;
        }
        $n{$id}++;
    }
    return \%n;
}

my $conf = write_config(name => 'chaos', smtpd_processes => 2, delivery_processes => 2,
    concurrency => 20);
my $pm = start_postern($conf);
my $maildir = $pm->maildir;
my $t0 = time();
# a bound, not a pace: a quiet machine finishes in about 25 s, a loaded one
# (the ASan build beside other work) may need several times that
my $deadline = $t0 + 240;
my @clients;
for my $c (0 .. $CLIENTS - 1) {
    my @ids = map { "c$_" } grep { $_ % $CLIENTS == $c } 0 .. $N - 1;
    my $pid = fork() // die "fork: $!";
    client_main($pm->smtp_port, $c, \@ids, $deadline) if $pid == 0;
    push @clients, $pid;
}

# the killer: a random child each time another N/50 messages were
# acknowledged (at most every 0.5 s), the master at 1/3 and 2/3. Paced by
# progress, not by the clock, so that a slow machine (the ASan build beside
# other work) sees as many kills per message as a fast one.
my %kills;
my $restarts = 0;
my %left = map { $_ => 1 } @clients;
my $last_kill = 0;
while (%left && time() < $deadline + 5) {
    sleep(0.5);
    for my $p (keys %left) { delete $left{$p} if waitpid($p, POSIX::WNOHANG()) != 0 }
    my $n = acked();
    if (($restarts == 0 && $n >= $N / 3) || ($restarts == 1 && $n >= 2 * $N / 3)) {
        my @procs = ($pm->pid, $pm->children);
        kill('KILL', $pm->pid);
        $kills{master}++;
        # children notice the master is gone and exit; stragglers are killed
        wait_for(sub { !grep { pid_alive($_) } @procs }, 5, 'children gone');
        $pm->kill_all;
        $pm = start_postern($conf, log => "$dir/restart$restarts.log");
        $restarts++;
        next;
    }
    next if $n - $last_kill < $N / 50;
    $last_kill = $n;
    my @kids = $pm->children or next;
    my $victim = $kids[int(rand(@kids))];
    my $role = Postern::Test::Server::child_role($victim) // "child";
    $kills{$role}++ if kill('KILL', $victim);
}
stop_pid($_, 1, 'KILL') for keys %left;
my @acked = acked();
diag(sprintf('chaos: %d of %d acknowledged in %.1fs; kills: %s; %d restarts',
    scalar @acked, $N, time() - $t0,
    join(', ', map { "$_ x$kills{$_}" } sort keys %kills), $restarts));
is(scalar keys %left, 0, 'every client finished before its deadline');
cmp_ok(scalar @acked, '>=', $N * 0.9, 'nearly every message acknowledged');
is($restarts, 2, 'the master was killed and restarted twice');

my $seen = {};
wait_for(sub { $seen = delivered($maildir); !grep { !$seen->{$_} } @acked }, 60,
    'every acknowledged message delivered');
my @missing = grep { !$seen->{$_} } @acked;
my @dups = grep { $seen->{$_} > 1 } @acked;
is(scalar @missing, 0, 'no acknowledged message is missing')
    or diag("missing: @missing[0 .. ($#missing > 20 ? 20 : $#missing)]");
diag(scalar(@dups) . ' acknowledged messages arrived more than once (at-least-once)');
ok(wait_for(sub { !grep { -f } glob($pm->spool . '/msg/*') }, 30, 'msg/ empty'),
    'the queue drains');
is($pm->stop, 0, 'postern stops with status 0');
done_testing;
