#!/usr/bin/perl
# 44-queue-control.t - posternctl queue list/show/flush/hold/release/
# delete/requeue end to end, through the control socket the master binds
# and queued serves.
#
# The relay transport points at a small "gate" SMTP peer (below) that
# answers RCPT with 451 until the test opens the gate (a file), then 250;
# it logs every RCPT. With retry_base 1h nothing is retried unless the
# control socket says so, so every attempt the peer sees is caused by one
# command (delivery may keep its connection open: attempts are counted by
# RCPT, not by connection):
#   M1: 451 -> list/show/--json -> hold -> flush (no attempt) -> release
#       (attempt 2) -> requeue (attempts back to 1) -> gate open, flush M1
#       (250: delivered, gone from the queue)
#   M2: 451 -> delete: gone from list, show and the spool, no bounce.
#   M3: the gate stalls its RCPT (delivery in flight) -> hold (stored at
#       once) -> SIGKILL queued before the result -> the restarted queued
#       has M3 held, not due -> delete.
# Also: unknown ids (exit 1), usage errors (64), --json of every command,
# show --message, a list of 1200 messages (several batches), hostile frames (garbage, truncated or leftover payload,
# a type not allowed there, a commit without an open message, a wrong
# version, an oversized length: the connection is closed, queued lives
# on), the socket (mode 0666, refused to a second postern,
# replaced after a SIGKILL, removed at exit) and exit 69 once postern is
# stopped. The uid checks are
# in 49-control-uid.t.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use JSON::PP ();
use POSIX ();
use Postern::Test;

require_build();

# gate_session - one SMTP session of the gate peer
sub gate_session {
    my ($c, $dir) = @_;
    my $say = sub { syswrite($c, "$_[0]\r\n") };
    $say->('220 gate.test ESMTP');
    local $/ = "\n";
    while (defined(my $l = <$c>)) {
        $l =~ s/\r?\n\z//;
        if ($l =~ /^(EHLO|HELO)/i) { $say->('250 gate.test') }
        elsif ($l =~ /^RCPT TO:<([^>]*)>/i) {
            my $rcpt = $1;
            if (open(my $fh, '>>', "$dir/rcpts.log")) {
                print {$fh} "$rcpt\n";
                close $fh;
            }
            # "stall": keep the delivery in flight (bounded: 60 s)
            for (1 .. 600) { last unless -e "$dir/stall"; select(undef, undef, undef, 0.1) }
            $say->(-e "$dir/open" ? '250 2.1.5 Ok'
                : '451 4.3.0 Gate closed, try later');
        } elsif ($l =~ /^DATA/i) {
            $say->('354 go on');
            while (defined(my $d = <$c>)) { last if $d =~ /^\.\r?\n\z/ }
            $say->('250 2.0.0 Ok: queued');
        } elsif ($l =~ /^QUIT/i) { $say->('221 2.0.0 Bye'); last }
        elsif ($l =~ /^(MAIL|RSET|NOOP)/i) { $say->('250 2.0.0 Ok') }
        else { $say->('502 5.5.2 Command not implemented') }
    }
}

# gate_server - the gate peer on 127.0.0.1:$port, one child per
# connection (delivery may hold one open); returns the pid
sub gate_server {
    my ($port, $dir) = @_;
    my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
        Proto => 'tcp', Listen => 16, ReuseAddr => 1) or die "listen: $!";
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        $SIG{CHLD} = 'IGNORE';
        while (1) {
            my $c = $ls->accept or next;
            my $k = fork();
            if (defined $k && $k == 0) {
                alarm(60);
                gate_session($c, $dir);
                POSIX::_exit(0);
            }
            close $c;
        }
    }
    close $ls;
    return Postern::Test::track($pid);
}

my $peer = free_port();
my $gdir = tempdir() . '/gate';
mkdir $gdir;
my $gpid = gate_server($peer, $gdir);
my $conf = write_config(transport => 'relay', relay_port => $peer,
    relay_timeout => '30s', retry_base => '1h', retry_cap => '1h');
my $pm = start_postern($conf);
my $json = JSON::PP->new;

# ctl - posternctl queue ARGS: (exit status, stdout, stderr)
sub ctl {
    my ($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $conf, 'queue', @_], 20);
    return ($st == -1 ? -1 : $st >> 8, $out, $err);
}

# rows - the JSON objects of posternctl's --json output
sub rows {
    my ($out) = @_;
    my @r;
    for my $l (split /\n/, $out) {
        my $o = eval { $json->decode($l) };
        push(@r, $o) if ref $o eq 'HASH';
    }
    return @r;
}

# attempts - RCPTs the gate peer has seen
sub attempts {
    my @n = split /\n/, slurp("$gdir/rcpts.log") // '';
    return scalar @n;
}

# rcpt_of - (state, attempts) of the one recipient of id, by show --json
sub rcpt_of {
    my ($id) = @_;
    my ($rc, $out) = ctl('show', '--json', $id);
    my ($o) = rows($out);
    return () unless $o && $o->{recipients} && @{ $o->{recipients} };
    return ($o->{recipients}[0]{state}, $o->{recipients}[0]{attempts});
}

# ---- M1 is deferred after its first attempt
my ($code, $text, $m1) = send_mail($pm->smtp_port, 'sender@example.org',
    'rcpt@example.com', make_message(subject => 'control one'));
is($code, 250, 'M1 accepted') or diag($text);
my $q1 = quotemeta($m1 // 'NOID');
ok($pm->wait_log(qr/$q1: to=<rcpt\@example\.com> .*attempt=1 .*status=deferred/, 15),
    'M1 deferred by the peer') or diag($pm->log_tail(20));

my ($rc, $out, $err) = ctl('list');
is($rc, 0, 'queue list exits 0') or diag($err);
like($out, qr/^-Queue ID-.*Sender\/Recipient/m, 'list: mailq-style heading');
like($out, qr/^$q1\s+\d+ .+ sender\@example\.org$/m, 'list: id, size, arrival, sender');
like($out, qr/^\s+rcpt\@example\.com  deferred, 1 attempt\(s\), next /m,
    'list: recipient, state, attempts, next attempt');
like($out, qr/\(4\.3\.0 451 4\.3\.0 Gate closed, try later\b/, 'list: last reply');
like($out, qr/^-- \d+ Kbytes in 1 Request\.$/m, 'list: summary line');

($rc, $out, $err) = ctl('list', '--json');
is($rc, 0, 'list --json exits 0');
my @rows = rows($out);
is(scalar @rows, 1, 'list --json: one JSON object per line, one message')
    or diag($out);
my $o = $rows[0] // {};
is($o->{id}, $m1, 'json: id');
is($o->{sender}, 'sender@example.org', 'json: sender');
ok($o->{size} > 0 && $o->{arrival} > 0, 'json: size and arrival');
is($o->{recipients}[0]{address}, 'rcpt@example.com', 'json: recipient');
is($o->{recipients}[0]{state}, 'deferred', 'json: state deferred');
is($o->{recipients}[0]{attempts}, 1, 'json: one attempt');
ok($o->{recipients}[0]{next_attempt} > time() + 1800, 'json: next attempt about 1h away');
like($o->{recipients}[0]{last_reply}, qr/^451 4\.3\.0 Gate closed, try later/, 'json: last reply');

($rc, $out, $err) = ctl('show', $m1);
is($rc, 0, 'show exits 0');
like($out, qr/^Queue ID: $q1$/m, 'show: queue id');
like($out, qr/^Sender:   <sender\@example\.org>$/m, 'show: sender');
like($out, qr/^Client:   127\.0\.0\.1 helo=client\.test/m, 'show: client and helo');
like($out, qr/^  <rcpt\@example\.com> deferred attempts=1 next=/m, 'show: recipient status');
like($out, qr/^    last: 4\.3\.0 451 4\.3\.0 Gate closed, try later/m, 'show: last error');
unlike($out, qr/Subject: control one/, 'show: no message without --message');

($rc, $out, $err) = ctl('show', '--message', $m1);
is($rc, 0, 'show --message exits 0') or diag($err);
like($out, qr/^Subject: control one$/m, 'show --message: the message follows');
like($out, qr/^Received: from client\.test /m, 'show --message: with its Received:');

($rc, $out) = ctl('show', '--json', '--message', $m1);
($o) = rows($out);
like($o->{message} // '', qr/Subject: control one\r\n/, 'show --json --message: "message" member');
is($o->{client}, '127.0.0.1', 'show --json: client');

# ---- hold: a flush does not send it
($rc, $out, $err) = ctl('hold', $m1);
is($rc, 0, 'hold exits 0') or diag($err);
like($out, qr/^$q1: held$/m, 'hold: says so');
is((rcpt_of($m1))[0], 'held', 'the recipient is held');
($rc, $out) = ctl('list');
like($out, qr/^$q1! +\d+ /m, 'list: a held message is marked "!" as in mailq');
like($out, qr/^ +rcpt\@example\.com  held/m, 'list: recipient state held');
($rc, $out) = ctl('flush', '--json');
is($rc, 0, 'flush (everything) exits 0');
is_deeply([rows($out)], [{ command => 'flush', id => undef, status => 'ok',
    result => 'flushed' }], 'flush --json: one result object');
sleep(1.5);
is(attempts(), 1, 'a held message is not sent by a flush');
is((rcpt_of($m1))[0], 'held', 'still held after the flush');

# ---- release: due again at once
($rc, $out, $err) = ctl('release', '--json', $m1);
is($rc, 0, 'release exits 0') or diag($err);
is(((rows($out))[0] // {})->{result}, 'released', 'release --json');
ok($pm->wait_log(qr/$q1: to=<rcpt\@example\.com> .*attempt=2 .*status=deferred/, 15),
    'released: tried again (attempt 2)') or diag($pm->log_tail(20));
is(attempts(), 2, 'the peer saw the second attempt');

# ---- requeue: attempts start again
($rc, $out, $err) = ctl('requeue', $m1);
is($rc, 0, 'requeue exits 0') or diag($err);
ok(wait_for(sub { attempts() >= 3 }, 15, 'third connection'), 'requeued: tried at once');
ok(wait_for(sub { my ($s, $a) = rcpt_of($m1); ($s // '') eq 'deferred' && $a == 1 },
    10, 'attempts back to 1'), 'requeue reset the attempt count (2 -> 1)');

# ---- flush one message: the peer takes it now
spit("$gdir/open", '');
($rc, $out, $err) = ctl('flush', $m1);
is($rc, 0, 'flush ID exits 0') or diag($err);
ok($pm->wait_log(qr/$q1: to=<rcpt\@example\.com> .*status=sent/, 15),
    'flushed: delivered') or diag($pm->log_tail(20));
ok(wait_for(sub { my ($c, $o2) = ctl('list'); $o2 =~ /Mail queue is empty/ }, 10,
    'empty queue'), 'delivered message left the queue');
($rc, $out, $err) = ctl('show', $m1);
is($rc, 1, 'show of a finished message: exit 1');
like($err, qr/no such message/, 'show: "no such message" on stderr');

# ---- delete
unlink("$gdir/open");
my $m2;
($code, $text, $m2) = send_mail($pm->smtp_port, 'other@example.org',
    'rcpt@example.com', make_message(subject => 'control two'));
is($code, 250, 'M2 accepted');
my $q2 = quotemeta($m2 // 'NOID');
ok($pm->wait_log(qr/$q2: to=<rcpt\@example\.com> .*status=deferred/, 15), 'M2 deferred');
ok(-f $pm->spool . "/msg/$m2", 'M2 is in the spool');
($rc, $out, $err) = ctl('delete', '--json', $m2);
is($rc, 0, 'delete exits 0') or diag($err);
is(((rows($out))[0] // {})->{result}, 'deleted', 'delete --json');
($rc, $out) = ctl('list', '--json');
is(scalar(rows($out)), 0, 'list: M2 is gone');
($rc, $out, $err) = ctl('show', $m2);
is($rc, 1, 'show M2 after delete: exit 1');
ok(wait_for(sub { !-e $pm->spool . "/msg/$m2" }, 5, 'file removed'),
    'the spool file is removed');
ok(!grep({ /\Q$m2\E/ } map { slurp($_) // '' } maildir_files($pm->maildir)),
    'no bounce for a deleted message');

# ---- a hold asked for while the recipient is in delivery is durable
spit("$gdir/stall", '');
my $before = attempts();
my $m3;
($code, $text, $m3) = send_mail($pm->smtp_port, 'third@example.org',
    'rcpt@example.com', make_message(subject => 'control three'));
is($code, 250, 'M3 accepted') or diag($text);
ok(wait_for(sub { attempts() > $before }, 15, 'M3 at the gate'),
    'M3 is in delivery (the gate stalls its RCPT)');
($rc, $out, $err) = ctl('hold', $m3);
is($rc, 0, 'hold of a recipient in delivery exits 0') or diag($err);
is((rcpt_of($m3))[0], 'pending', 'still in delivery: not held yet');
my ($qold) = $pm->child_pids('queued');
ok($qold && kill('KILL', $qold), 'SIGKILL queued before the result');
ok(wait_for(sub { my ($q) = $pm->child_pids('queued'); $q && $q != $qold
    && (ctl('show', $m3))[0] == 0 }, 30, 'queued restarted'), 'queued is back');
is((rcpt_of($m3))[0], 'held', 'after the restart the recipient is held');
ok($pm->wait_log(qr/\Q$m3\E: to=<rcpt\@example\.com> .*status=held/, 5),
    'and the log says so');
unlink("$gdir/stall");
($rc) = ctl('delete', $m3);
is($rc, 0, 'M3 deleted');

# ---- errors
for my $cmd (qw(hold release delete requeue flush show)) {
    ($rc, $out, $err) = ctl($cmd, '0123456789ABCDEF');
    is($rc, 1, "$cmd of an unknown id: exit 1");
    like($err, qr/no such message/, "$cmd of an unknown id: says so");
}
($rc, $out, $err) = ctl('hold', 'not-an-id');
is($rc, 1, 'a malformed id is an unknown id');
($rc, $out, $err) = ctl('hold');
is($rc, 64, 'hold without an id: usage (64)');
like($err, qr/usage: posternctl/, 'usage text');
($rc) = ctl('list', 'X');
is($rc, 64, 'list with an id: usage');
($rc) = ctl('frobnicate');
is($rc, 64, 'unknown queue command: usage');
($rc) = ctl('list', '--bogus');
is($rc, 64, 'unknown option: usage');
($rc) = ctl('hold', '--message', 'X');
is($rc, 64, '--message only with show');

# ---- a long list goes out batch by batch (500 rows per round) and whole
SKIP: {
    my $source = (grep { -x } qw(/usr/sbin/smtp-source /usr/bin/smtp-source))[0];
    skip('smtp-source is not installed', 3) unless $source;
    my ($st) = run_cmd([$source, '-m', 1200, '-s', 20, '-f', 'bulk@example.org',
        '-t', 'rcpt@example.com', '127.0.0.1:' . $pm->smtp_port], 60);
    is($st, 0, 'smtp-source queued 1200 messages');
    my ($n, $uniq) = (0, 0);
    wait_for(sub { ($rc, $out) = ctl('list', '--json'); my @r = rows($out);
        my %id = map { $_->{id} => 1 } @r; ($n, $uniq) = (scalar @r, scalar keys %id);
        $n >= 1200 }, 30, '1200 messages listed');
    ok($n == 1200 && $uniq == 1200, 'list --json: all 1200 messages, each once')
        or diag("$n rows, $uniq ids");
    ($rc, $out) = ctl('list');
    like($out, qr/^-- \d+ Kbytes in 1200 Requests\.$/m, 'list: 1200 requests');
}

# ---- hostile frames on the control socket close that connection only
my $sock = conf_info($conf)->{run_dir} . '/control.sock';
my ($qpid) = $pm->child_pids('queued');
# the IPC version of this build (common/ipc_types.h), so that each hostile
# frame below is refused for what it shows, not for a stale version
my ($ipcv) = (slurp(srcdir() . '/common/ipc_types.h') // '') =~ /^#define IPC_VERSION (\d+)/m;
ok($ipcv, "IPC_VERSION read from common/ipc_types.h ($ipcv)");
# frame - an IPC frame: u32 length, u16 type, u16 version, u32 flags
sub frame { my ($type, $payload) = @_;
    return pack('VvvV', 12 + length($payload), $type, $ipcv, 0) . $payload }
my @hostile = (
    [ 'garbage bytes', "GET / HTTP/1.0\r\n\r\n" . ("\xff" x 64) ],
    [ 'a truncated request', frame(50, pack('V', 1000) . 'li') ],
    [ 'leftover bytes', frame(50, pack('V', 4) . "list\0" . pack('V', 0) . "\0\0\0\0"
        . pack('V', 0) . 'xx') ],
    [ 'a delivery job', frame(30, '') ],
    [ 'a commit without an open message', frame(22, pack('V', 1) . pack('V', 16)
        . "0123456789ABCDEF\0") ],
    [ 'a wrong version', pack('VvvV', 12, 50, 9, 0) ],
    [ 'an oversized length', pack('VvvV', 0x7fffffff, 50, $ipcv, 0) ],
);
for my $h (@hostile) {
    my $s = IO::Socket::UNIX->new(Peer => $sock, Type => SOCK_STREAM());
    ok($s, "connect for $h->[0]") or next;
    syswrite($s, $h->[1]);
    my $sel = IO::Select->new($s);
    my $closed = 0;
    # bounded: 10 s; a quiet 0.1 s is not a verdict (queued may be busy
    # with the 1200 messages above on a loaded machine)
    for (1 .. 100) {
        next unless $sel->can_read(0.1);
        my $n = sysread($s, my $buf, 4096);
        if (!$n) { $closed = 1; last }
    }
    ok($closed, "$h->[0]: the connection is closed");
    close $s;
}
($rc, $out, $err) = ctl('list');
is($rc, 0, 'queued still answers after the hostile clients') or diag($err);
ok($qpid && pid_alive($qpid), 'the same queued process (not restarted)');

# ---- the control socket belongs to the master's lifetime
ok(-S $sock, 'the control socket exists');
is((stat $sock)[2] & 07777, 0666, 'mode 0666');

# a second postern on the same socket is refused; a stale one is replaced
my $conf2 = write_config(name => 'p2', spool_dir => tempdir() . '/p2spool',
    run_dir => tempdir() . '/p2run', extra => "control_socket = \"$sock\"");
my $p2 = start_postern($conf2, wait => 0);
ok(wait_for(sub { !$p2->alive }, 10, 'second postern exits'),
    'a second postern does not take a live control socket');
like($p2->log_text, qr/control_socket \Q$sock\E is in use by another postern/,
    'and says why');
$pm->kill_all;
ok(-S $sock, 'SIGKILL leaves the socket behind');
$pm->check_sanitizers;
$pm = start_postern($conf);
($rc, $out, $err) = ctl('list');
is($rc, 0, 'after a SIGKILL the next postern replaces the stale socket') or diag($err);
is($pm->stop, 0, 'postern stops cleanly');
ok(!-e $sock, 'the control socket is removed at exit');
($rc, $out, $err) = ctl('list');
is($rc, 69, 'queued not running: exit 69 (EX_UNAVAILABLE)');
like($err, qr/is postern running\?/, 'and a clear message');

kill_tree($gpid);
$pm->check_sanitizers;
done_testing();
