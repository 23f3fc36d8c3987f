# Postern::Test - helpers for Postern's end-to-end test suite (t/*.t).
#
# What it is: the small toolbox every t/*.t uses to start the REAL postern
# from the build tree and drive it with real clients and real peers:
# configs in a private temp dir, free loopback ports, the master under a
# process group of its own, Net::SMTP and raw-socket SMTP clients,
# Postfix's smtp-sink, a scriptable fake SMTP server, a loopback DNS
# server, bounded waits, /healthz and /metrics readers.
#
# Environment: POSTERN_BUILDDIR (where postern, posternctl and the
# postern-* children are; default: the current directory) and
# POSTERN_SRCDIR (the source tree; default: two levels above this file).
# `make check` sets both.
#
# Rules it keeps (and tests must keep): every server listens on 127.0.0.1
# only; every process started here is tracked by PID and stopped by PID
# (an END block kills what a test forgot); every wait is bounded; no fixed
# ports. Forked helpers leave with POSIX::_exit so that they never run the
# parent's END blocks or destructors.
#
# When the suite runs as root, postern's children drop to "nobody", so the
# temp dir is made traversable (0755) and sink dirs writable (0777).
#
# A test reads like this:
#     use Postern::Test;
#     require_build();                        # skip_all when not built
#     my $conf = write_config(transport => 'relay', relay_port => $p);
#     my $pm = start_postern($conf);          # waits for SMTP + /healthz
#     my ($code, $text, $qid) = send_mail($pm->smtp_port, 'a@example.org',
#         'b@example.com', make_message(subject => 'hi'));
#     ok($pm->wait_log(qr/\Q$qid\E: .*status=sent/, 10));
#     is($pm->stop, 0);                       # SIGTERM, wait status 0
package Postern::Test;

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path getcwd);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp ();
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use Net::SMTP;
use POSIX qw(:sys_wait_h strftime);
use Test::More ();
use Time::HiRes qw(time sleep);

our @EXPORT = qw(
    builddir srcdir bin require_build tempdir free_port run_user
    write_config conf_info line_of
    start_postern
    send_mail smtp_transaction make_message smtp_raw
    smtp_sink sink_messages count_sink_messages
    scripted_smtp_server dns_server dkim_resolver
    mx_transport_text submit_one first_delivery_line
    wait_for maildir_files dir_files spool_files http_get metrics metric metric_sum
    run_cmd slurp spit stop_pid pid_alive proc_children proc_descendants
    kill_tree unique_tag
);

$SIG{PIPE} = 'IGNORE';

my $OWNER = $$;         # only this process cleans up
my %TRACKED;            # pid => 1: helper processes we started
my %GROUPS;             # pgid => 1: postern masters (own process groups)
my $TMP;                # File::Temp::Dir of this test file
my %CONF;               # config path => info hash (ports, dirs)
my $TAG_SEQ = 0;

# builddir - absolute build directory (POSTERN_BUILDDIR or cwd)
sub builddir { return abs_path($ENV{POSTERN_BUILDDIR} // getcwd()) }

# srcdir - absolute source directory (POSTERN_SRCDIR or from this file)
sub srcdir {
    return abs_path($ENV{POSTERN_SRCDIR}) if $ENV{POSTERN_SRCDIR};
    return abs_path(dirname(__FILE__) . '/../../..');
}

# bin - path of a program in the build tree ("postern", "posternctl", ...)
sub bin { return builddir() . '/' . $_[0] }

# require_build - skip the whole test file unless the programs are built
sub require_build {
    my @missing = grep { !-x bin($_) } qw(postern posternctl postern-smtpd
        postern-queued postern-delivery postern-httpd);
    return 1 unless @missing;
    Test::More::plan(skip_all => "not built in " . builddir() . ": @missing");
    exit 0;
}

# tempdir - this test file's private temp dir (removed at exit)
sub tempdir {
    return $TMP->dirname if $TMP;
    $TMP = File::Temp->newdir('postern-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $TMP->dirname;    # children may run as nobody
    return $TMP->dirname;
}

# free_port - a TCP port on 127.0.0.1 that was free a moment ago
sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Proto => 'tcp', Listen => 1) or croak "free_port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# run_user - the user postern's children run as (nobody when root)
sub run_user {
    return 'nobody' if $> == 0;
    return scalar(getpwuid($>)) // 'nobody';
}

# slurp - a file's contents as bytes, undef if unreadable
sub slurp {
    my ($file) = @_;
    open(my $fh, '<:raw', $file) or return undef;
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s // '';
}

# spit - write bytes to a file (replacing it)
sub spit {
    my ($file, $data) = @_;
    open(my $fh, '>:raw', $file) or croak "spit $file: $!";
    print {$fh} $data;
    close $fh or croak "spit $file: $!";
    return $file;
}

# unique_tag - a string unique to this run, for subjects and markers
sub unique_tag {
    my ($prefix) = @_;
    return sprintf('%s-%d-%d-%d', $prefix // 'tag', $$, int(time()), ++$TAG_SEQ);
}

# ---------------------------------------------------------------- waiting

# wait_for - poll $sub until it returns true; its value, or undef after
# $timeout seconds (with a diag naming $what)
sub wait_for {
    my ($sub, $timeout, $what) = @_;
    $timeout //= 10;
    my $deadline = time() + $timeout;
    while (1) {
        my $v = $sub->();
        return $v if $v;
        if (time() >= $deadline) {
            Test::More::diag("timed out after ${timeout}s waiting for "
                . ($what // 'condition'));
            return undef;
        }
        sleep(0.05);
    }
}

# ---------------------------------------------------------------- config

# conf_info - what write_config recorded for a config path (ports, dirs)
sub conf_info { return $CONF{$_[0]} }

# line_of - 1-based number of the first line of $file matching $re, or 0
sub line_of {
    my ($file, $re) = @_;
    my @lines = split /\n/, (slurp($file) // '');
    for my $i (0 .. $#lines) {
        return $i + 1 if $lines[$i] =~ $re;
    }
    return 0;
}

# q_ - a libconfuse quoted string
sub q_ { my ($s) = @_; $s =~ s/(["\\])/\\$1/g; return qq("$s") }

# list_ - a libconfuse list of quoted strings
sub list_ { return '{ ' . join(', ', map { q_($_) } @{ $_[0] }) . ' }' }

# conf_defaults - the option values write_config starts from
sub conf_defaults {
    my ($dir) = @_;
    return (
        dir => $dir,
        hostname => 'postern.test',
        user => run_user(),
        spool_dir => "$dir/spool",
        run_dir => "$dir/run",
        libexec_dir => builddir(),
        log_level => 'info',
        smtpd_processes => 1,
        delivery_processes => 1,
        shutdown_timeout => '5s',
        trusted_networks => ['127.0.0.0/8', '::1/128'],
        relay_domains => [],
        max_message_size => '10M',
        max_recipients => 100,
        smtpd_timeout => '30s',
        retry_base => '1s', retry_factor => '2.0', retry_cap => '2s',
        retry_jitter => '0', lifetime => '1d', concurrency => 20,
        maildir => "$dir/mail",
        relay_timeout => '10s',
    );
}

# conf_top_text - the identity/process/smtpd part of a config
sub conf_top_text {
    my ($o) = @_;
    my $t = "# written by Postern::Test\n";
    for my $k (qw(hostname user spool_dir run_dir libexec_dir log_level)) {
        $t .= "$k = " . ($o->{raw}{$k} // q_($o->{$k})) . "\n"
            if defined $o->{$k} || defined $o->{raw}{$k};
    }
    for my $k (qw(smtpd_processes delivery_processes shutdown_timeout)) {
        $t .= "$k = " . ($o->{raw}{$k} // $o->{$k}) . "\n";
    }
    $t .= "listen smtp {\n\taddress = " . q_("127.0.0.1:$o->{smtp_port}")
        . "\n}\n" if $o->{smtp_port};
    $t .= "trusted_networks = " . list_($o->{trusted_networks}) . "\n";
    $t .= "relay_domains = " . list_($o->{relay_domains}) . "\n"
        if @{ $o->{relay_domains} };
    for my $k (qw(max_message_size max_recipients smtpd_timeout)) {
        $t .= "$k = " . ($o->{raw}{$k} // $o->{$k}) . "\n";
    }
    return $t;
}

# conf_queue_text - the queue section
sub conf_queue_text {
    my ($o) = @_;
    my $t = "queue {\n";
    for my $k (qw(retry_base retry_factor retry_cap retry_jitter lifetime
        concurrency)) {
        $t .= "\t$k = " . ($o->{raw}{$k} // $o->{$k}) . "\n";
    }
    # optional ones, written only when given
    for my $k (qw(destination_concurrency destination_rate delay_warning
        retention group_commit job_timeout index_size index_max_size
        index_high_water)) {
        $t .= "\t$k = $o->{$k}\n" if defined $o->{$k};
    }
    return $t . "}\n";
}

# conf_transport_text - transports local (maildir) and/or relay, default
sub conf_transport_text {
    my ($o) = @_;
    my $t = '';
    my $kind = $o->{transport};
    if ($kind eq 'maildir' || $kind eq 'both') {
        $t .= "transport local {\n\ttype = maildir\n\tpath = "
            . q_($o->{maildir}) . "\n}\n";
    }
    if ($kind eq 'relay' || $kind eq 'both') {
        croak "write_config: relay transport needs relay_port or relay_host"
            unless $o->{relay_host};
        $t .= "transport relay {\n\ttype = relay\n\thost = "
            . q_($o->{relay_host}) . "\n\ttimeout = $o->{relay_timeout}\n"
            . ($o->{relay_extra} // '') . "}\n";
    }
    my $def = $o->{default_transport} // ($kind eq 'relay' ? 'relay' : 'local');
    $t .= "default_transport = " . q_($def) . "\n";
    return $t;
}

# conf_dkim_text - one dkim section from {domain selector key generate}
sub conf_dkim_text {
    my ($o) = @_;
    my $d = $o->{dkim} or return '';
    my $t = "dkim $d->{domain} {\n\tselector = " . q_($d->{selector}) . "\n";
    $t .= "\tkey = " . q_($d->{key}) . "\n" if defined $d->{key};
    $t .= "\tgenerate = " . ($d->{generate} ? 'true' : 'false') . "\n";
    return $t . "}\n";
}

# write_config - write a postern.conf for a test; returns its path.
# Options (all optional): name (subdir of the temp dir, default "p"), path,
# smtp_port, http_port ('' = no HTTP listener), hostname,
# smtpd_processes, delivery_processes, shutdown_timeout, trusted_networks,
# relay_domains, max_message_size, max_recipients, smtpd_timeout, the
# queue options (retry_base 1s, retry_factor, retry_cap 2s, retry_jitter
# 0, lifetime, concurrency), transport => 'maildir' (default) | 'relay' |
# 'both', maildir, relay_port / relay_host, relay_timeout, relay_extra
# (option lines added to the relay transport section),
# default_transport, dkim => {domain, selector, key, generate} (key
# defaults to DIR/dkim/DOMAIN.SELECTOR.key), raw => {option => text
# written verbatim}, extra => text appended at the end.
sub write_config {
    my (%a) = @_;
    my $dir = $a{dir} // (tempdir() . '/' . ($a{name} // 'p'));
    make_path($dir);
    chmod 0755, $dir;
    my %o = (conf_defaults($dir), transport => 'maildir', %a);
    $o{smtp_port} = free_port() unless exists $a{smtp_port};
    $o{http_port} = free_port() unless exists $a{http_port};
    $o{relay_host} //= "127.0.0.1:$o{relay_port}" if $o{relay_port};
    if (my $d = $o{dkim}) {
        $d->{selector} //= 'test';
        $d->{key} = "$dir/dkim/$d->{domain}.$d->{selector}.key"
            unless exists $d->{key};
    }
    my $text = conf_top_text(\%o) . conf_queue_text(\%o)
        . conf_transport_text(\%o) . conf_dkim_text(\%o);
    $text .= "http_listen = " . q_($o{http_port} ? "127.0.0.1:$o{http_port}" : '')
        . "\n";
    $text .= $o{extra} . "\n" if defined $o{extra};
    my $path = $o{path} // "$dir/postern.conf";
    spit($path, $text);
    $CONF{$path} = { %o, path => $path, text => $text, args => { %a, dir => $dir } };
    return $path;
}

# rewrite_ports - write $conf again with fresh smtp/http ports when the
# test let write_config pick them (a port free_port saw free can be taken
# by another socket before postern binds it); false if it cannot
sub rewrite_ports {
    my ($conf) = @_;
    my $args = $CONF{$conf}{args} or return 0;
    return 0 if exists $args->{smtp_port} || exists $args->{http_port}
        || exists $args->{path} && $args->{path} ne $conf;
    write_config(%$args, path => $conf);
    return 1;
}

# ---------------------------------------------------------------- processes

# proc_stat - (state, ppid, pgid) of a pid from /proc, or () if gone
sub proc_stat {
    my ($pid) = @_;
    my $s = slurp("/proc/$pid/stat") // return ();
    $s =~ /^\d+ \(.*\) (\S) (\d+) (\d+)/s or return ();
    return ($1, $2, $3);
}

# pid_alive - 1 if pid exists and is not a zombie
sub pid_alive {
    my ($pid) = @_;
    return 0 unless $pid && kill(0, $pid);
    my ($state) = proc_stat($pid);
    return defined $state && $state ne 'Z' ? 1 : 0;
}

# proc_children - live pids whose parent is $pid
sub proc_children {
    my ($pid) = @_;
    my @kids;
    opendir(my $dh, '/proc') or return ();
    for my $p (grep { /^\d+$/ } readdir $dh) {
        my ($state, $ppid) = proc_stat($p);
        push @kids, $p if defined $ppid && $ppid == $pid && $state ne 'Z';
    }
    closedir $dh;
    return sort { $a <=> $b } @kids;
}

# proc_descendants - every live descendant of $pid
sub proc_descendants {
    my ($pid) = @_;
    my @todo = ($pid);
    my @all;
    while (defined(my $p = shift @todo)) {
        my @k = proc_children($p);
        push @all, @k;
        push @todo, @k;
    }
    return @all;
}

# reap - waitpid without blocking; the status if it ended, else undef
sub reap {
    my ($pid) = @_;
    local $?;
    my $r = waitpid($pid, WNOHANG);
    return $? if $r == $pid;
    return -1 if $r == -1;   # not our child (or already reaped)
    return undef;
}

# stop_pid - SIGTERM (or $sig) a pid, wait up to $timeout s, then SIGKILL;
# returns the wait status when it was our child, -1 otherwise
sub stop_pid {
    my ($pid, $timeout, $sig) = @_;
    return -1 unless $pid;
    delete $TRACKED{$pid};
    kill($sig // 'TERM', $pid);
    my $deadline = time() + ($timeout // 5);
    while (time() < $deadline) {
        my $st = reap($pid);
        return $st if defined $st && $st != -1;
        return -1 if defined $st && !pid_alive($pid);
        sleep(0.02);
    }
    kill('KILL', $pid);
    for (1 .. 100) {
        my $st = reap($pid);
        return $st if defined $st;
        sleep(0.02);
    }
    return -1;
}

# kill_tree - SIGKILL a pid and every descendant (by pid), reap ours
sub kill_tree {
    my ($pid) = @_;
    return unless $pid;
    my @all = ($pid, proc_descendants($pid));
    kill('KILL', @all);
    reap($_) for @all;
    return scalar @all;
}

# track - remember a helper pid for the END clean-up
sub track { $TRACKED{ $_[0] } = 1; return $_[0] }

# spawn - fork+exec argv with stdout/stderr to $log (own process group if
# $pgrp); returns the pid
sub spawn {
    my ($argv, $log, $pgrp) = @_;
    my $pid = fork() // croak "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0) if $pgrp;
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', $log) or POSIX::_exit(127);
        open(STDERR, '>&', \*STDOUT) or POSIX::_exit(127);
        { no warnings "exec"; exec { $argv->[0] } @$argv; }
        print STDERR "exec $argv->[0]: $!\n";
        POSIX::_exit(127);
    }
    return $pid;
}

# run_cmd - run argv in its own process group, bounded by $timeout s
# (default 20); returns (wait status, stdout, stderr); the status is -1 on
# timeout (then the whole group is SIGKILLed)
sub run_cmd {
    my ($argv, $timeout) = @_;
    my $d = tempdir();
    my $n = ++$TAG_SEQ;
    my ($out, $err) = ("$d/.cmd$n.out", "$d/.cmd$n.err");
    my $pid = fork() // croak "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', $out) or POSIX::_exit(127);
        open(STDERR, '>', $err) or POSIX::_exit(127);
        { no warnings "exec"; exec { $argv->[0] } @$argv; }
        print STDERR "exec $argv->[0]: $!\n";
        POSIX::_exit(127);
    }
    my $deadline = time() + ($timeout // 20);
    my $st;
    while (!defined($st = reap($pid))) {
        if (time() >= $deadline) {
            Test::More::diag("run_cmd: @$argv: timed out, killed");
            my @d = proc_descendants($pid);
            kill('KILL', -$pid);
            kill('KILL', $pid, @d);
            waitpid($pid, 0);
            $st = -1;
            last;
        }
        sleep(0.02);
    }
    my @r = ($st, slurp($out) // '', slurp($err) // '');
    unlink $out, $err;
    return @r;
}

# start_postern - start `postern -f -c $conf` in its own process group
# (behind the command prefix wrap => [argv], which must exec it in the
# same process), stderr to a log file; unless wait => 0, wait (bounded, timeout => 10)
# until the SMTP port accepts and /healthz says 200, croaking with the log
# tail if it does not. Returns a Postern::Test::Server.
sub start_postern {
    my ($conf, %opt) = @_;
    for my $try (1 .. 3) {
        my $srv = start_postern_once($conf, %opt);
        return $srv if ref $srv;
        croak $srv unless $try < 3 && $srv =~ /Address already in use/
            && rewrite_ports($conf);
        Test::More::diag("a port was taken before postern bound it; new ports, try " . ($try + 1));
    }
}

# start_postern_once - the server object, or the failure text
sub start_postern_once {
    my ($conf, %opt) = @_;
    my $info = $CONF{$conf} // {};
    my $log = $opt{log} // ($conf =~ s/\.conf$//r) . '.log';
    my $pid = spawn([@{ $opt{wrap} // [] }, bin('postern'), '-f', '-c', $conf,
        @{ $opt{args} // [] }],
        $log, 1);
    $GROUPS{$pid} = 1;
    my $srv = bless {
        pid => $pid, conf => $conf, log => $log, info => $info,
        smtp_port => $info->{smtp_port}, http_port => $info->{http_port},
        maildir => $info->{maildir}, spool => $info->{spool_dir},
        run_dir => $info->{run_dir}, owner => $$,
    }, 'Postern::Test::Server';
    return $srv if defined $opt{wait} && !$opt{wait};
    unless ($srv->wait_ready($opt{timeout} // 20)) {
        my $tail = $srv->log_tail(30);
        $srv->stop if $srv->alive;
        return "postern did not come up (pid $pid, conf $conf); log:\n$tail";
    }
    return $srv;
}

# ---------------------------------------------------------------- SMTP

# make_message - an RFC 5322 message (LF line ends) from
# from/to/subject/body/message_id/headers (arrayref of "Name: value")
sub make_message {
    my (%h) = @_;
    my $to = ref $h{to} ? join(', ', @{ $h{to} }) : ($h{to} // 'rcpt@example.com');
    my $mid = $h{message_id} // ('<' . unique_tag('msg') . '@test.example>');
    my @hdr = (
        'From: ' . ($h{from} // 'sender@example.org'),
        "To: $to",
        'Subject: ' . ($h{subject} // 'test message'),
        'Date: ' . strftime('%a, %d %b %Y %H:%M:%S +0000', gmtime()),
        "Message-ID: $mid",
        @{ $h{headers} // [] },
    );
    return join("\n", @hdr) . "\n\n" . ($h{body} // "Hello from Postern::Test.\n");
}

# send_mail - one transaction with Net::SMTP; returns (code, text, queue
# id) of the final reply, or of the first failing step; code 0 = no
# connection. $to may be an arrayref; %opt: helo, timeout
sub send_mail {
    my ($port, $from, $to, $msg, %opt) = @_;
    my $smtp = Net::SMTP->new('127.0.0.1', Port => $port,
        Hello => $opt{helo} // 'client.test', Timeout => $opt{timeout} // 15)
        or return (0, "connect to 127.0.0.1:$port failed: $@", undef);
    my @r = smtp_transaction($smtp, $from, $to, $msg);
    $smtp->quit;
    return @r;
}

# smtp_transaction - MAIL, RCPT..., DATA on an open Net::SMTP object
sub smtp_transaction {
    my ($smtp, $from, $to, $msg) = @_;
    # a failure never reports a (stale) success code: 0 = no real reply
    my $fail = sub { my $t = $smtp->message // ''; $t =~ s/\s+\z//;
        my $c = ($smtp->code // 0) + 0;
        return ($c >= 400 ? $c : 0, $t, undef) };
    $smtp->mail($from) or return $fail->();
    for my $rcpt (ref $to ? @$to : ($to)) {
        $smtp->to($rcpt) or return $fail->();
    }
    $smtp->data() or return $fail->();
    $smtp->datasend($msg);
    my $ok = $smtp->dataend() or return $fail->();
    my ($code, $text) = (($smtp->code // 0) + 0, $smtp->message // '');
    $text =~ s/\s+\z//;
    my ($id) = $text =~ /queued as ([0-9A-Za-z]+)/;
    return ($code, $text, $id);
}

# smtp_raw - a raw SMTP connection (Postern::Test::Raw) to 127.0.0.1:port;
# the greeting is read and kept in ->{greeting}
sub smtp_raw {
    my ($port, %opt) = @_;
    return Postern::Test::Raw->new($port, %opt);
}

# ---------------------------------------------------------------- peers

# smtp_sink - Postfix's smtp-sink on 127.0.0.1:$port storing each message
# as a file in $dir; waits until it accepts; returns its pid
sub smtp_sink {
    my ($port, $dir, @extra) = @_;
    make_path($dir);
    chmod 0777, $dir;
    my @argv = ('/usr/sbin/smtp-sink', ($> == 0 ? ('-u', 'nobody') : ()),
        '-d', "$dir/m.", @extra, "127.0.0.1:$port", '1000');
    my $pid = track(spawn(\@argv, "$dir.log", 1));
    my $up = wait_for(sub {
        return 'up' if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
            Timeout => 1);
        return pid_alive($pid) ? 0 : 'dead';
    }, 10, "smtp-sink on port $port") // '';
    $up eq 'up'
        or croak "smtp-sink did not start: " . (slurp("$dir.log") // '');
    return $pid;
}

# sink_messages - the messages smtp-sink stored in $dir (list of texts)
sub sink_messages {
    my ($dir) = @_;
    opendir(my $dh, $dir) or return ();
    my @f = sort grep { -f "$dir/$_" } readdir $dh;
    closedir $dh;
    return map { slurp("$dir/$_") // '' } @f;
}

# count_sink_messages - how many messages smtp-sink stored in $dir
sub count_sink_messages {
    my ($dir) = @_;
    opendir(my $dh, $dir) or return 0;
    my $n = grep { -f "$dir/$_" } readdir $dh;
    closedir $dh;
    return $n;
}

# scripted_smtp_server - a forked SMTP server on 127.0.0.1:$port. $script
# is an arrayref with one hashref per connection (the last one repeats)
# mapping a stage to the reply it gets: CONNECT (greeting), EHLO, HELO,
# MAIL, RCPT, DATA (the 354), DOT (the reply after the message), RSET,
# NOOP, QUIT. Unnamed stages get the usual success replies. Everything is
# recorded in $record (default TMP/scripted-PORT.log): "N C: line" for
# client lines, "N S: reply" for replies and "N MSG: FILE" for each message
# (stored in FILE). Returns the pid.
sub scripted_smtp_server {
    my ($port, $script, %opt) = @_;
    my $record = $opt{record} // (tempdir() . "/scripted-$port.log");
    my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
        Proto => 'tcp', Listen => 16, ReuseAddr => 1)
        or croak "scripted_smtp_server: listen 127.0.0.1:$port: $!";
    my $pid = fork() // croak "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        $SIG{TERM} = 'DEFAULT';
        Postern::Test::Scripted::serve($ls, $script, $record);
        POSIX::_exit(0);
    }
    close $ls;
    return track($pid);
}

# dns_server - a Net::DNS::Nameserver on 127.0.0.1:$port (UDP and TCP).
# $records: { name => { TXT => 'text' | [texts], A => ip, MX => '10 host'
# | { preference => 10, exchange => 'any text' } | [several],
# ... } }; a name's records have TTL 60 unless it has TTL => seconds.
# Unknown names get NXDOMAIN without an SOA. { SERVFAIL => 1 }: every
# query of the name fails; { SILENT => 1 }: none is answered; { DROP =>
# { TYPE => n } }: the first n queries of that type are ignored (a lost
# packet), later ones answered; { NXDOMAIN => seconds }: NXDOMAIN with an
# SOA whose TTL and MINIMUM are that (RFC 2308: cacheable). Option
# log => FILE appends "NAME TYPE" for every query. Returns the pid.
sub dns_server {
    my ($port, $records, %opt) = @_;
    require Net::DNS;
    require Net::DNS::Nameserver;
    my %rr;
    for my $name (keys %$records) {
        my $n = lc($name) =~ s/\.\z//r;
        my $ttl = $records->{$name}{TTL} // 60;
        for my $type (keys %{ $records->{$name} }) {
            my $v = $records->{$name}{$type};
            next if $type eq 'TTL';
            if ($type eq 'SERVFAIL' || $type eq 'SILENT' || $type eq 'NXDOMAIN') {
                $rr{$n}{$type} = $v;
                next;
            }
            if ($type eq 'DROP') {
                $rr{$n}{DROP}{ uc $_ } = $v->{$_} for keys %$v;
                next;
            }
            push @{ $rr{$n}{uc $type} }, dns_rr($n, uc $type, $_, $ttl)
                for ref $v eq 'ARRAY' ? @$v : ($v);
        }
    }
    my $handler = sub {
        my ($qname, $qclass, $qtype) = @_;
        my $n = lc($qname) =~ s/\.\z//r;
        if ($opt{log} && open(my $fh, '>>', $opt{log})) {
            print {$fh} "$n $qtype\n";
            close $fh;
        }
        return ('NXDOMAIN', [], [], [], { aa => 1 }) unless $rr{$n};
        return ('NXDOMAIN', [], [ Net::DNS::RR->new("$n. $rr{$n}{NXDOMAIN} IN SOA "
            . "ns.test. hostmaster.test. 1 3600 600 86400 $rr{$n}{NXDOMAIN}") ], [],
            { aa => 1 }) if defined $rr{$n}{NXDOMAIN};
        # { SERVFAIL => 1 }: a server failure; { SILENT => 1 }: no answer
        return ('SERVFAIL', [], [], [], {}) if $rr{$n}{SERVFAIL};
        return () if $rr{$n}{SILENT};
        return () if $rr{$n}{DROP}{$qtype} && $rr{$n}{DROP}{$qtype}-- > 0;
        return ('NOERROR', [ @{ $rr{$n}{$qtype} // [] } ], [], [], { aa => 1 });
    };
    my $ns = Net::DNS::Nameserver->new(LocalAddr => ['127.0.0.1'],
        LocalPort => $port, ReplyHandler => $handler, Verbose => 0)
        or croak "dns_server: cannot listen on 127.0.0.1:$port";
    my $pid = fork() // croak "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        $SIG{TERM} = 'DEFAULT';
        $ns->main_loop;
        POSIX::_exit(0);
    }
    undef $ns;
    return track($pid);
}

# mx_transport_text - config text for the mx transport of the MX tests:
# receiving servers on $o{port}, the dns_server() on $o{dnsport}, the
# transport's timeout $o{timeout} (5s), reuse_max $o{reuse_max} when given
sub mx_transport_text {
    my (%o) = @_;
    my $t = "transport mx {\n\ttype = mx\n\tport = $o{port}\n\ttimeout = "
        . ($o{timeout} // '5s') . "\n";
    $t .= "\treuse_max = $o{reuse_max}\n" if defined $o{reuse_max};
    return $t . "}\ndns_server = \"127.0.0.1:$o{dnsport}\"\ndns_timeout = 1s\n";
}

# submit_one - one message from sender@example.org to $rcpt through the
# server $pm, subject unique_tag($tag); checks the 250 (a test) and
# returns the queue id quoted for a regexp
sub submit_one {
    my ($pm, $rcpt, $tag) = @_;
    my ($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org', $rcpt,
        make_message(to => $rcpt, subject => unique_tag($tag // 'msg')));
    Test::More::is($code, 250, "accepted for $rcpt") or Test::More::diag($text);
    return quotemeta($qid // 'NOID');
}

# first_delivery_line - wait (bounded, $wait s, default 15) for the first
# delivery log line of queue id regexp $q to $rcpt from
# sender@example.org; the line, or '' if none came
sub first_delivery_line {
    my ($pm, $q, $rcpt, $wait) = @_;
    my $r = quotemeta($rcpt);
    my $first = qr/^.*$q: to=<$r> from=<sender\@example\.org> .*$/m;
    $pm->wait_log($first, $wait // 15);
    my ($line) = $pm->log_text =~ /($first)/;
    return $line // '';
}

# dns_rr - one resource record (TTL 60 unless given); TXT split into
# 255-octet strings; a hash gives the fields as they are (MX
# { preference, exchange } with an exchange that is not a host name, say)
sub dns_rr {
    my ($name, $type, $value, $ttl) = @_;
    $ttl //= 60;
    return Net::DNS::RR->new(name => $name, type => $type, ttl => $ttl, %$value)
        if ref $value eq 'HASH';
    if ($type eq 'TXT') {
        my @chunks = unpack('(A255)*', $value);
        return Net::DNS::RR->new(name => $name, type => 'TXT', ttl => $ttl,
            txtdata => \@chunks);
    }
    return Net::DNS::RR->new("$name. $ttl IN $type $value");
}

# dkim_resolver - a Net::DNS::Resolver asking only our loopback server
sub dkim_resolver {
    my ($port) = @_;
    require Net::DNS;
    return Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $port,
        recurse => 1, retry => 2, udp_timeout => 3, tcp_timeout => 3);
}

# ---------------------------------------------------------------- HTTP

# maildir_files - the message files in DIR/new, sorted
sub maildir_files {
    my ($dir) = @_;
    opendir(my $dh, "$dir/new") or return ();
    my @f = sort map { "$dir/new/$_" } grep { -f "$dir/new/$_" } readdir $dh;
    closedir $dh;
    return @f;
}

# dir_files - the plain files directly in $dir (full paths, sorted)
sub dir_files {
    my ($dir) = @_;
    opendir(my $dh, $dir) or return ();
    my @f = sort map { "$dir/$_" } grep { -f "$dir/$_" } readdir $dh;
    closedir $dh;
    return @f;
}

# spool_files - message files left in a spool's tmp/ and msg/
sub spool_files {
    my ($spool) = @_;
    return (dir_files("$spool/tmp"), dir_files("$spool/msg"));
}

# http_get - HTTP::Tiny request (GET unless method => ...); the response
# hash (status 599 when the connection failed)
sub http_get {
    my ($url, %opt) = @_;
    my $ua = HTTP::Tiny->new(timeout => $opt{timeout} // 5);
    return $ua->request($opt{method} // 'GET', $url,
        $opt{content} ? { content => $opt{content} } : {});
}

# metric_key - normalise 'name{b="2",a="1"}' to 'name{a="1",b="2"}'
sub metric_key {
    my ($name, $labels) = @_;
    return $name unless defined $labels && length $labels;
    my @l = $labels =~ /(\w+="(?:[^"\\]|\\.)*")/g;
    return $name . '{' . join(',', sort @l) . '}';
}

# metrics - GET a /metrics URL; hash of 'name{labels}' => value, plus
# '#TYPE name' => type and '#HELP name' => text; {} on failure
sub metrics {
    my ($url) = @_;
    my $r = http_get($url);
    return {} unless $r->{success};
    my %m;
    for my $line (split /\n/, $r->{content}) {
        if ($line =~ /^# (TYPE|HELP) (\S+) ?(.*)$/) {
            $m{"#$1 $2"} = $3;
        } elsif ($line =~ /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/) {
            $m{ metric_key($1, $2) } = $3 + 0;
        }
    }
    return \%m;
}

# metric - one value from a metrics() hash: metric($m, name, label => v..)
sub metric {
    my ($m, $name, %labels) = @_;
    my $l = join(',', map { qq($_="$labels{$_}") } sort keys %labels);
    return $m->{ metric_key($name, $l) };
}

# metric_sum - the sum of every sample of family name in a metrics() hash
# whose labels include label => v..; undef when none does
sub metric_sum {
    my ($m, $name, %labels) = @_;
    my $sum;
    for my $k (keys %$m) {
        next unless $k =~ /^\Q$name\E(?:\{(.*)\})?$/;
        my $l = $1 // '';
        next if grep { index(",$l,", qq(,$_="$labels{$_}",)) < 0 } keys %labels;
        $sum = ($sum // 0) + $m->{$k};
    }
    return $sum;
}

# ---------------------------------------------------------------- clean-up

# cleanup_all - kill every tracked helper and postern group we started
sub cleanup_all {
    return unless $$ == $OWNER;
    local ($?, $!, $@);
    for my $pgid (keys %GROUPS) {
        next unless pid_alive($pgid) || kill(0, -$pgid);
        my @d = proc_descendants($pgid);
        kill('KILL', -$pgid);
        kill('KILL', $pgid, @d);
        reap($pgid);
    }
    for my $pid (keys %TRACKED) {
        kill('TERM', -$pid);
        kill('TERM', $pid);
    }
    for my $pid (keys %TRACKED) {
        for (1 .. 50) { last if defined reap($pid); sleep(0.02) }
        kill('KILL', -$pid);
        kill('KILL', $pid);
        reap($pid);
    }
    %TRACKED = ();
    %GROUPS = ();
}

# forget_group - a postern master was stopped by its object
sub forget_group { delete $GROUPS{ $_[0] } }

END { cleanup_all() }

# ====================================================================
# Postern::Test::Server - one running postern master (from start_postern)
package Postern::Test::Server;

use strict;
use warnings;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

# pid, conf, log, smtp_port, http_port, maildir, spool, run_dir - fields
sub pid { $_[0]{pid} }
sub conf { $_[0]{conf} }
sub log_file { $_[0]{log} }
sub smtp_port { $_[0]{smtp_port} }
sub http_port { $_[0]{http_port} }
sub maildir { $_[0]{maildir} }
sub spool { $_[0]{spool} }

# url - http://127.0.0.1:HTTPPORT/path
sub url { return "http://127.0.0.1:$_[0]{http_port}" . ($_[1] // '/') }

# alive - 1 while the master runs (reaps it once it has exited)
sub alive {
    my ($self) = @_;
    return 0 if defined $self->{status};
    my $st = Postern::Test::reap($self->{pid});
    if (defined $st) {
        $self->{status} = $st;
        Postern::Test::forget_group($self->{pid}) if $st != -1;
        return 0;
    }
    return 1;
}

# status - the master's wait status once it exited, else undef
sub status { my ($self) = @_; $self->alive; return $self->{status} }

# exit_code - exit code once it exited normally, else undef
sub exit_code {
    my $st = $_[0]->status;
    return defined $st && $st >= 0 && WIFEXITED($st) ? WEXITSTATUS($st) : undef;
}

# smtp_ok - 1 if the SMTP port accepts a connection
sub smtp_ok {
    my ($self) = @_;
    return 1 unless $self->{smtp_port};
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{smtp_port}",
        Timeout => 1) or return 0;
    close $s;
    return 1;
}

# healthz - the HTTP status of /healthz (599 = no connection)
sub healthz {
    my ($self) = @_;
    return 200 unless $self->{http_port};
    return Postern::Test::http_get($self->url('/healthz'), timeout => 2)->{status};
}

# wait_ready - bounded wait for SMTP accept + /healthz 200; 0 if the
# master exited or time ran out
sub wait_ready {
    my ($self, $timeout) = @_;
    my $deadline = time() + ($timeout // 10);
    while (time() < $deadline) {
        return 0 unless $self->alive;
        return 1 if $self->smtp_ok && $self->healthz == 200;
        sleep(0.05);
    }
    return 0;
}

# log_text - the master's stderr so far (every process logs there with -f)
sub log_text { return Postern::Test::slurp($_[0]{log}) // '' }

# log_tail - the last N lines of the log
sub log_tail {
    my ($self, $n) = @_;
    my @l = split /\n/, $self->log_text;
    splice(@l, 0, @l - $n) if @l > $n;
    return join("\n", @l) . "\n";
}

# wait_log - bounded wait until the log matches $re; the match or undef
sub wait_log {
    my ($self, $re, $timeout) = @_;
    my @m;
    return Postern::Test::wait_for(sub { @m = $self->log_text =~ $re; scalar @m },
        $timeout // 10, "log line matching $re") ? ($m[0] // 1) : undef;
}

# children - live pids whose parent is the master
sub children { return Postern::Test::proc_children($_[0]{pid}) }

# child_role - the role of a child pid ("smtpd", ...) from exe or cmdline
sub child_role {
    my ($pid) = @_;
    my $exe = readlink("/proc/$pid/exe") // '';
    return $1 if $exe =~ m{/postern-(\w+)(?: \(deleted\))?$};
    my $cmd = Postern::Test::slurp("/proc/$pid/cmdline") // '';
    return $1 if $cmd =~ /postern[-: ]+(smtpd|queued|delivery|httpd)/;
    return '';
}

# child_pids - pids of the master's children of one role
sub child_pids {
    my ($self, $role) = @_;
    return grep { child_role($_) eq $role } $self->children;
}

# stop - SIGTERM the master, wait (bounded: timeout, default 20 s), return
# its wait status (0 = exited 0); SIGKILLs the group if it hangs
sub stop {
    my ($self, $timeout) = @_;
    return $self->{status} unless $self->alive;
    $self->{stopped_children} = [ Postern::Test::proc_descendants($self->{pid}) ];
    kill('TERM', $self->{pid});
    my $deadline = time() + ($timeout // 20);
    while (time() < $deadline) {
        if (!$self->alive) {
            $self->check_sanitizers;
            return $self->{status};
        }
        sleep(0.02);
    }
    Test::More::diag("postern (pid $self->{pid}) ignored SIGTERM; killing");
    $self->kill_all;
    return -1;
}

# check_sanitizers - once per server: a test fails when any process wrote
# an AddressSanitizer/UBSan report into the log (builds with
# --enable-sanitizers; a child that aborts is restarted, so only the log
# tells)
sub check_sanitizers {
    my ($self) = @_;
    return if $self->{sanitizers_checked}++;
    my @r = $self->log_text =~ /^(.*(?:ERROR: \w+Sanitizer|runtime error:).*)$/mg;
    Test::More::is(scalar @r, 0, 'no sanitizer report in the postern log')
        or Test::More::diag(join("\n", @r[0 .. ($#r > 5 ? 5 : $#r)]));
    return;
}

# leftover - pids of the stopped master's descendants still alive
sub leftover {
    my ($self) = @_;
    return grep { Postern::Test::pid_alive($_) } @{ $self->{stopped_children} // [] };
}

# kill_all - SIGKILL the master and every child (group and pid list)
sub kill_all {
    my ($self) = @_;
    local $?;
    my $pid = $self->{pid};
    my @d = Postern::Test::proc_descendants($pid);
    kill('KILL', -$pid);
    kill('KILL', $pid, @d);
    for (1 .. 250) { last unless $self->alive; sleep(0.02) }
    Postern::Test::wait_for(sub { !grep { Postern::Test::pid_alive($_) } @d },
        5, 'children to die');
    $self->check_sanitizers;
    return;
}

# DESTROY - last resort: never leave a postern running
sub DESTROY {
    my ($self) = @_;
    return unless $self->{owner} == $$;
    local ($?, $!, $@);
    $self->{sanitizers_checked} = 1;    # no test may run after done_testing
    $self->kill_all if $self->alive;
}

# ====================================================================
# Postern::Test::Raw - a byte-exact SMTP client for protocol checks
package Postern::Test::Raw;

use strict;
use warnings;
use Carp qw(croak);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);

# new - connect to 127.0.0.1:port and read the greeting
sub new {
    my ($class, $port, %opt) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Proto => 'tcp',
        Timeout => 5) or croak "connect 127.0.0.1:$port: $!";
    binmode $s;
    my $self = bless { sock => $s, buf => '', timeout => $opt{timeout} // 10,
        history => [], eof => 0 }, $class;
    $self->{greeting} = $self->reply;
    return $self;
}

# send - write bytes exactly as given
sub send {
    my ($self, $bytes) = @_;
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite($self->{sock}, $bytes, length($bytes) - $off, $off);
        return 0 unless defined $n && $n > 0;
        $off += $n;
    }
    $self->{last_sent} = $bytes;
    return 1;
}

# fill - read more bytes into the buffer (bounded); 0 on EOF/timeout
sub fill {
    my ($self, $timeout) = @_;
    return 0 if $self->{eof};
    my $sel = IO::Select->new($self->{sock});
    return 0 unless $sel->can_read($timeout);
    my $n = sysread($self->{sock}, my $chunk, 65536);
    if (!$n) { $self->{eof} = 1; return 0 }
    $self->{buf} .= $chunk;
    return 1;
}

# getline - one CRLF-terminated line (without CRLF), or undef
sub getline {
    my ($self, $timeout) = @_;
    my $deadline = time() + ($timeout // $self->{timeout});
    while ($self->{buf} !~ /\n/) {
        my $left = $deadline - time();
        return undef if $left <= 0 || !$self->fill($left);
    }
    $self->{buf} =~ s/^(.*?)\r?\n//s;
    return $1;
}

# reply - read one (multi-line) reply: {code, lines, text, enh, raw};
# code 0 when the server closed or timed out
sub reply {
    my ($self, $timeout) = @_;
    my (@lines, @raw);
    my $code = 0;
    while (defined(my $l = $self->getline($timeout))) {
        push @raw, $l;
        if ($l !~ /^(\d{3})([ -])(.*)$/) { push @lines, $l; last }
        push @lines, $3;
        $code = $1 + 0;
        last if $2 eq ' ';
    }
    my $r = { code => $code, lines => \@lines, text => join("\n", @lines),
        raw => join("\n", @raw) };
    ($r->{enh}) = ($lines[0] // '') =~ /^([245]\.\d{1,3}\.\d{1,3})\b/;
    push @{ $self->{history} }, { sent => $self->{last_sent}, reply => $r };
    return $r;
}

# cmd - send one command line (CRLF added) and read its reply
sub cmd {
    my ($self, $line, $timeout) = @_;
    $self->send("$line\r\n") or return { code => 0, lines => [], text => '',
        raw => '' };
    return $self->reply($timeout);
}

# replies - read N replies (for pipelined commands)
sub replies {
    my ($self, $n, $timeout) = @_;
    return map { $self->reply($timeout) } 1 .. $n;
}

# closed - 1 if the server closes the connection within $timeout s
sub closed {
    my ($self, $timeout) = @_;
    my $deadline = time() + ($timeout // 5);
    while (time() < $deadline) {
        return 1 if $self->{eof};
        $self->fill($deadline - time()) or return $self->{eof};
        $self->{buf} = '';
    }
    return 0;
}

# history - every [sent, reply] pair of this connection
sub history { return @{ $_[0]{history} } }

# close - drop the connection
sub close { my ($self) = @_; close $self->{sock} if $self->{sock} }

# ====================================================================
# Postern::Test::Scripted - the body of scripted_smtp_server's child
package Postern::Test::Scripted;

use strict;
use warnings;
use IO::Handle;
use IO::Select;

my %DEFAULT = (
    CONNECT => '220 scripted.test ESMTP scripted',
    EHLO => "250-scripted.test\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n"
        . "250 ENHANCEDSTATUSCODES",
    HELO => '250 scripted.test',
    MAIL => '250 2.1.0 Ok', RCPT => '250 2.1.5 Ok',
    DATA => '354 End data with <CR><LF>.<CR><LF>',
    DOT => '250 2.0.0 Ok: queued', RSET => '250 2.0.0 Ok',
    NOOP => '250 2.0.0 Ok', QUIT => '221 2.0.0 Bye',
    OTHER => '502 5.5.2 Command not implemented',
);

# serve - accept connections one at a time, forever (until SIGTERM)
sub serve {
    my ($ls, $script, $record) = @_;
    open(my $rec, '>>', $record) or POSIX::_exit(1);
    $rec->autoflush(1);
    my ($conn, $msgs) = (0, 0);
    while (1) {
        my $c = $ls->accept or next;
        $conn++;
        my $step = $script->[ $conn - 1 ] // $script->[-1] // {};
        $msgs = session($c, { %DEFAULT, %$step }, $rec, $conn, $record, $msgs);
        close $c;
    }
}

# sreply - send a reply (may contain CRLF for multi-line) and record it
sub sreply {
    my ($c, $rec, $n, $text) = @_;
    print {$rec} "$n S: $_\n" for split /\r\n/, $text;
    syswrite($c, "$text\r\n");
}

# sline - read one line from the client (bounded 30 s), undef on EOF
sub sline {
    my ($c, $bufref) = @_;
    my $sel = IO::Select->new($c);
    while ($$bufref !~ /\n/) {
        return undef unless $sel->can_read(30);
        my $n = sysread($c, my $chunk, 65536);
        return undef unless $n;
        $$bufref .= $chunk;
    }
    $$bufref =~ s/^(.*?\n)//s;
    return $1;
}

# session - one SMTP session following the reply table; returns msg count
sub session {
    my ($c, $r, $rec, $n, $record, $msgs) = @_;
    my $buf = '';
    sreply($c, $rec, $n, $r->{CONNECT});
    return $msgs if $r->{CONNECT} =~ /^[45]/;
    while (defined(my $line = sline($c, \$buf))) {
        (my $show = $line) =~ s/\r?\n\z//;
        print {$rec} "$n C: $show\n";
        my ($verb) = uc($show) =~ /^(\w+)/;
        $verb //= 'OTHER';
        $verb = 'OTHER' unless exists $r->{$verb} && $verb ne 'DOT'
            && $verb ne 'CONNECT';
        sreply($c, $rec, $n, $r->{$verb});
        last if $verb eq 'QUIT';
        next unless $verb eq 'DATA' && $r->{DATA} =~ /^354/;
        my $data = '';
        while (defined(my $l = sline($c, \$buf))) {
            last if $l eq ".\r\n" || $l eq ".\n";
            $data .= $l;
        }
        $msgs++;
        my $file = "$record.msg$msgs";
        if (open(my $fh, '>:raw', $file)) { print {$fh} $data; close $fh }
        print {$rec} "$n MSG: $file\n";
        sreply($c, $rec, $n, $r->{DOT});
    }
    return $msgs;
}

1;
