# 16-smtpd-limits.t - the per-client limits of postern-smtpd, counted in
# the table all smtpd processes share (common/anvil.c, smtpd_anvil.c):
#   - smtpd_client_connection_limit: with two smtpd processes and limit 3,
#     the 4th connection from one address gets "421 4.7.0 ... too many
#     connections from 127.0.0.1" and is closed, whichever process
#     accepted it (one process is held with SIGSTOP so that the other
#     must accept); a closed session makes room again; 127.0.0.2 is not
#     affected; 127.0.0.3 (trusted_networks) is exempt;
#   - a SIGKILLed smtpd holding sessions leaks no count: right after the
#     master reaped it, and after its restart, the address gets exactly
#     its limit again;
#   - smtpd_client_message_limit 2 per minute: the 3rd MAIL gets "450
#     4.7.1 Error: too much mail from 127.0.0.1", also in another
#     process, the session goes on, nothing more is delivered; another
#     address and a trusted one are not limited; with a 3 s window the
#     limit lifts once the window is over;
#   - the AUTH lock-out (auth_failure_limit 3) counts failures made in two
#     processes together: 421 4.7.0 and closed, in either process;
#   - every refusal is one "reject:" log line, and /metrics counts the
#     reasons connection_limit, message_rate, auth_failed, auth_lockout;
#   - bad values of the new options are configuration errors.
# Clients bind their source address (127.0.0.2 .. 127.0.0.4) to be other
# clients; everything runs on loopback.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use Postern::Test;
use Postern::TestSMTPD;

require_build();

my $USER_PW = 'limits-secret';
my $hash = crypt($USER_PW, '$6$' . substr(unique_tag('s') =~ s/[^A-Za-z0-9]//gr, 0, 16) . '$');
like($hash, qr/^\$6\$/, 'sha512-crypt hash made');

# client - an SMTP client from source address $src (default 127.0.0.1) to
# 127.0.0.1:$port, its greeting read (bounded); undef if connect failed
sub client {
    my ($port, $src) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        LocalAddr => $src // '127.0.0.1', Proto => 'tcp', Timeout => 5)
        or return undef;
    binmode $sock;
    my $c = bless { sock => $sock, buf => '', eof => 0 }, 'Postern::TestSMTPD::Client';
    $c->{greeting} = $c->reply(10);
    return $c;
}

# greeting_code - the code of a client's greeting (0: none or no client)
sub greeting_code { my ($c) = @_; return $c ? $c->{greeting}{code} : 0 }

# closed - 1 once the server closed the connection (bounded)
sub closed {
    my ($c, $secs) = @_;
    my $deadline = time() + ($secs // 5);
    while (time() < $deadline) {
        return 1 if $c->{eof};
        $c->fill(0.2);
    }
    return $c->{eof} ? 1 : 0;
}

# client_220 - retry (bounded) until a new connection gets 220: room
# appears once the server has seen an earlier close
sub client_220 {
    my ($port, $src) = @_;
    my $got;
    wait_for(sub {
        my $c = client($port, $src);
        return 0 unless $c;
        if (greeting_code($c) == 220) { $got = $c; return 1 }
        $c->close;
        return 0;
    }, 10, "a 220 from 127.0.0.1:$port");
    return $got;
}

# while_stopped - run $code while $pid is SIGSTOPped (always resumed)
sub while_stopped {
    my ($pid, $code) = @_;
    kill('STOP', $pid);
    my @r = eval { $code->() };
    my $err = $@;
    kill('CONT', $pid);
    die $err if $err;
    return wantarray ? @r : $r[0];
}

# smtpd_pids - the master's smtpd children, once there are $n (bounded)
sub smtpd_pids {
    my ($pm, $n) = @_;
    my @p;
    wait_for(sub { @p = $pm->child_pids('smtpd'); @p == $n }, 10, "$n smtpd");
    return @p;
}

# rejections - the /metrics refusal count of a reason (whichever family
# name the metrics page uses for smtpd refusals)
sub rejections {
    my ($pm, $reason) = @_;
    my $m = metrics($pm->url('/metrics'));
    my $sum = 0;
    for my $k (keys %$m) {
        $sum += $m->{$k} if $k =~ /^postern_(?:smtpd_rejections|messages_rejected)_total\{/
            && $k =~ /reason="\Q$reason\E"/;
    }
    return $sum;
}

# ready_count - how many "ready" lines smtpd processes logged so far
sub ready_count {
    my ($pm) = @_;
    my @r = $pm->log_text =~ /postern\/smtpd\[\d+\]: ready/g;
    return scalar @r;
}

# log_pids - the pids of the smtpd log lines matching $re (in order)
sub log_pids {
    my ($pm, $re) = @_;
    my @p;
    for my $l (split /\n/, $pm->log_text) {
        push @p, $1 if $l =~ $re && $l =~ /postern\/smtpd\[(\d+)\]: /;
    }
    return @p;
}

my $auth_port = free_port();
my $conf = write_config(name => 'lim', smtpd_processes => 2,
    trusted_networks => ['127.0.0.3/32'], relay_domains => ['example.com'],
    extra => "smtpd_client_connection_limit = 3\n"
    . "smtpd_client_message_limit = 2\nsmtpd_client_message_window = 1m\n"
    . "auth_failure_limit = 3\nauth_failure_window = 1m\n"
    . "smtp_user alice {\n\tpassword = \"$hash\"\n}\n"
    . listen_section('auth', "127.0.0.1:$auth_port", auth_cleartext => 'yes'));
my $pm = start_postern($conf);
my $port = $pm->smtp_port;
my $maildir = $pm->maildir;
ok(wait_for(sub { ready_count($pm) >= 2 }, 10, 'two ready lines'),
    'both smtpd processes ready');
my ($p1, $p2) = smtpd_pids($pm, 2);
ok($p1 && $p2, "two smtpd processes ($p1, $p2)");

# --- connections per client address, across processes ----------------------
my (@held, $c4, $c5);
while_stopped($p2, sub {
    push @held, client($port) for 1 .. 2;       # accepted by p1
});
while_stopped($p1, sub {
    push @held, client($port);                  # accepted by p2
    $c4 = client($port);                        # p2 must refuse it
});
is(scalar(grep { greeting_code($_) == 220 } @held), 3,
    '3 connections from 127.0.0.1 (2 in one process, 1 in the other): 220');
is(greeting_code($c4), 421, 'the 4th, accepted by the process with 1 of them: 421');
is($c4->{greeting}{enh}, '4.7.0', '... 4.7.0');
like($c4->{greeting}{text}, qr/^4\.7\.0 postern\.test Error: too many connections from 127\.0\.0\.1$/,
    '... "too many connections from 127.0.0.1"');
ok(closed($c4), '... and the connection is closed');
$c5 = while_stopped($p2, sub { client($port) });
is(greeting_code($c5), 421, 'the 4th, accepted by the process with 2 of them: 421');
ok(closed($c5), '... closed');
my %refusers = map { $_ => 1 } log_pids($pm,
    qr/reject: CONNECT from \[127\.0\.0\.1\]: 421 4\.7\.0 postern\.test Error: too many connections from 127\.0\.0\.1/);
is_deeply([sort keys %refusers], [sort { $a <=> $b } $p1, $p2],
    'both processes refused, each logging one "reject: CONNECT" line');

my $other = client($port, '127.0.0.2');
is(greeting_code($other), 220, 'another client address (127.0.0.2) is not affected');
my @trusted = map { client($port, '127.0.0.3') } 1 .. 4;
is(scalar(grep { greeting_code($_) == 220 } @trusted), 4,
    'a trusted_networks client (127.0.0.3) is exempt: 4 connections, all 220');
$_->close for $other, @trusted;

$held[2]->close;
my $again = client_220($port);
ok($again, 'one closed: a new connection gets 220 again');
my $over = client($port);
is(greeting_code($over), 421, '... and the next one 421 again');
$over->close;
$held[2] = $again;

# --- a SIGKILLed smtpd leaks no count ----------------------------------------
# @held: two sessions in p1, one (the new one) in either process
my $victim = $p1;
kill('KILL', $victim);
ok($pm->wait_log(qr/\(pid $victim\) killed by signal 9/, 10), 'smtpd SIGKILLed and reaped');
sleep(0.2);     # the column reset follows that log line at once
ok(closed($held[0], 5) && closed($held[1], 5), '... its sessions are gone');
shift @held for 1 .. 2;
# the session opened last may have been in the killed one too
my $gone = closed($held[0], 0.5);
@held = () if $gone;
# no retries here: a leaked count would refuse these at once
my @fresh = map { client($port) } 1 .. 3 - @held;
is(scalar(grep { $_ && greeting_code($_) == 220 } @fresh), 3 - @held,
    'right after the crash, the address gets its full limit again (no leaked count)');
my $x = client($port);
is(greeting_code($x), 421, '... and no more');
$x->close;
ok(wait_for(sub { ready_count($pm) >= 3 }, 15, 'the restarted smtpd'),
    'the master restarted it');
my ($q1, $q2) = smtpd_pids($pm, 2);
ok($q1 && $q2 && $q1 != $victim && $q2 != $victim, "two smtpd again ($q1, $q2)");
$_->close for @held, @fresh;
@held = map { client_220($port) } 1 .. 3;
is(scalar(grep { $_ } @held), 3, 'after the restart: 3 connections get 220');
$x = client($port);
is(greeting_code($x), 421, '... and the 4th 421');
$x->close;
$_->close for @held;

ok(rejections($pm, 'connection_limit') >= 4, '/metrics: connection_limit refusals counted');

# --- messages per client address per window ---------------------------------
my $msg = make_message(subject => 'limit', to => 'rcpt@example.com');
my $before = () = maildir_files($maildir);
my $m1 = client_220($port);
$m1->cmd('EHLO c.test');
is($m1->message('a@example.org', 'rcpt@example.com', $msg)->{code}, 250, 'message 1: 250');
is($m1->message('a@example.org', 'rcpt@example.com', $msg)->{code}, 250, 'message 2: 250');
my $r = $m1->cmd('MAIL FROM:<a@example.org>');
is($r->{code}, 450, 'the 3rd MAIL within the minute: 450');
is($r->{enh}, '4.7.1', '... 4.7.1');
like($r->{text}, qr/^4\.7\.1 Error: too much mail from 127\.0\.0\.1$/, '... "too much mail from 127.0.0.1"');
is($m1->cmd('RCPT TO:<rcpt@example.com>')->{code}, 503, '... no transaction began (RCPT: 503)');
is($m1->cmd('NOOP')->{code}, 250, '... and the session goes on');
my ($mpid) = log_pids($pm, qr/reject: MAIL from \[127\.0\.0\.1\]: 450 4\.7\.1/);
ok($mpid, 'the 450 is one "reject: MAIL" log line') or BAIL_OUT('no 450 log line');
my $other_pid = (grep { $_ != ($mpid // 0) } smtpd_pids($pm, 2))[0];
my $m2 = while_stopped($mpid, sub {
    my $c = client_220($port);
    $c->cmd('EHLO c.test');
    $c->{r} = $c->cmd('MAIL FROM:<a@example.org>');
    return $c;
});
is($m2->{r}{code}, 450, 'the other smtpd process counts the same window: 450');
ok(scalar(grep { $_ == $other_pid } log_pids($pm, qr/reject: MAIL from \[127\.0\.0\.1\]: 450/)),
    '... logged by the other process');
$_->close for $m1, $m2;

my $o = client($port, '127.0.0.2');
$o->cmd('EHLO o.test');
is($o->message('b@example.org', 'rcpt@example.com', $msg)->{code}, 250,
    'another address has its own count: 250');
$o->close;
my $t = client($port, '127.0.0.3');
$t->cmd('EHLO t.test');
is(scalar(grep { $t->message('c@example.org', 'rcpt@example.com', $msg)->{code} == 250 } 1 .. 3),
    3, 'a trusted client is exempt: 3 messages, all 250');
$t->close;
ok(wait_for(sub { maildir_files($maildir) == $before + 6 }, 15),
    'exactly the 6 accepted messages are delivered');
sleep(1);
is(scalar(() = maildir_files($maildir)), $before + 6, '... and nothing more');
ok(rejections($pm, 'message_rate') >= 2, '/metrics: message_rate refusals counted');

# --- AUTH failures from several processes add up -----------------------------
($q1, $q2) = smtpd_pids($pm, 2);
my $a1 = while_stopped($q2, sub {
    my $c = client($auth_port, '127.0.0.4');
    $c->cmd('EHLO a.test');
    $c->{r} = [ map { $c->cmd('AUTH PLAIN ' . plain_ir('alice', "wrong$_")) } 1 .. 2 ];
    return $c;
});
is(scalar(grep { $_->{code} == 535 && ($_->{enh} // '') eq '5.7.8' } @{ $a1->{r} }), 2,
    'AUTH failures 1 and 2 in one process: 535 5.7.8');
my $a2 = while_stopped($q1, sub {
    my $c = client($auth_port, '127.0.0.4');
    $c->cmd('EHLO a.test');
    $c->{r} = [ $c->cmd('AUTH PLAIN ' . plain_ir('alice', 'wrong3')),
        $c->cmd('AUTH PLAIN ' . plain_ir('alice', $USER_PW)) ];
    return $c;
});
is($a2->{r}[0]{code}, 535, 'failure 3 in the other process: 535');
is($a2->{r}[1]{code}, 421, '... then locked out there (even the right password): 421');
is($a2->{r}[1]{enh}, '4.7.0', '... 4.7.0');
ok(closed($a2), '... and closed');
my $a3 = while_stopped($q2, sub {
    my $c = client($auth_port, '127.0.0.4');
    $c->cmd('EHLO a.test');
    $c->{r} = $c->cmd('AUTH LOGIN');
    return $c;
});
is($a3->{r}{code}, 421, 'locked out in the first process too: 421');
my %fail_pids = map { $_ => 1 } log_pids($pm, qr/reject: AUTH from \[127\.0\.0\.4\]: 535 5\.7\.8/);
is(scalar(keys %fail_pids), 2, 'the failures were made in two processes');
like($pm->log_text, qr/AUTH lock-out: 3 failures within 60s/, 'the lock-out is logged');
my $a4 = client($auth_port, '127.0.0.2');
$a4->cmd('EHLO a.test');
is($a4->cmd('AUTH PLAIN ' . plain_ir('alice', $USER_PW))->{code}, 235,
    'another address may still authenticate');
$_->close for $a1, $a3, $a4;
ok(rejections($pm, 'auth_failed') >= 3, '/metrics: auth_failed refusals counted');
ok(rejections($pm, 'auth_lockout') >= 2, '/metrics: auth_lockout refusals counted');

is($pm->stop, 0, 'postern stops cleanly');

# --- the window ends ------------------------------------------------------------
{
    my $wconf = write_config(name => 'win', trusted_networks => ['192.0.2.0/24'],
        relay_domains => ['example.com'],
        extra => "smtpd_client_message_limit = 2\nsmtpd_client_message_window = 3s\n");
    my $w = start_postern($wconf);
    my $c = client($w->smtp_port);
    $c->cmd('EHLO w.test');
    my $t0 = time();
    # whole seconds of a monotonic clock: the window lasts 2 to 3 s
    is($c->message('a@example.org', 'rcpt@example.com', $msg)->{code}, 250, '3s window: message 1');
    is($c->message('a@example.org', 'rcpt@example.com', $msg)->{code}, 250, '3s window: message 2');
    is($c->cmd('MAIL FROM:<a@example.org>')->{code}, 450, '3s window: the 3rd MAIL: 450');
    if (time() - $t0 < 1.9) {
        sleep(3.2 - (time() - $t0));
        is($c->cmd('MAIL FROM:<a@example.org>')->{code}, 250, 'the window is over: MAIL 250 again');
    } else {
        pass('(too slow to check the window boundary; skipped)');
    }
    $c->close;
    is($w->stop, 0, 'window instance stops cleanly');
}

# --- configuration errors ---------------------------------------------------------
for my $bad (['smtpd_client_connection_limit = -1', qr/option 'smtpd_client_connection_limit': expected a number from 0/],
    ['smtpd_client_message_limit = lots', qr/option 'smtpd_client_message_limit': expected a number from 0/],
    ['smtpd_client_message_window = 0', qr/option 'smtpd_client_message_window': expected a duration of at least 1s/]) {
    my $bc = write_config(name => 'bad', smtp_port => 0, extra => "$bad->[0]\n");
    my ($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $bc, 'check-config']);
    isnt($st, 0, "refused: $bad->[0]");
    like($err, $bad->[1], '... naming the option and what it expects');
}

done_testing();
