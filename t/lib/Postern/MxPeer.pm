# Postern::MxPeer - a scripted receiving SMTP server for the MX and TLS
# tests: listens on any loopback address (127.0.0.x or ::1), forks one
# child per connection (so a cached idle connection never blocks
# another), and records every connection, command and message in a log:
#   "<conn> CONNECT", "<conn> C: <line>", "<conn> BATCH: MAIL,RCPT,DATA"
#   (several commands in one read: pipelining), "<conn> TLS: <version>",
#   "<conn> AUTH: ok|bad <user>", "<conn> MSG: <file>".
# Options: greeting ('220 ...' or a 4xx/5xx, or any line), ehlo
# (arrayref of keywords), ehlo_name (the EHLO reply's domain), starttls
# => 1 with cert/key, implicit => 1 (TLS from the first byte), auth =>
# [user, password] (AUTH PLAIN and LOGIN checked), rcpt / dot (replies);
# broken greetings: silent => 1 (never a word: waits up to 60 s for the
# client to leave), hangup => 1 (closes at once), trickle => 1 (the
# greeting one byte every 0.5 s).
package Postern::MxPeer;

use strict;
use warnings;
use Carp qw(croak);
use IO::Handle;
use IO::Select;
use IO::Socket::IP;
use MIME::Base64 qw(decode_base64);
use POSIX ();
use Postern::Test qw(tempdir slurp);

# start - listen on $addr:$port and serve; returns { pid, log, ... }
sub start {
    my ($class, $addr, $port, %o) = @_;
    my $log = $o{log} // (tempdir() . "/peer-$addr-$port.log" =~ s/:/_/gr);
    my $ls = IO::Socket::IP->new(LocalHost => $addr, LocalPort => $port,
        Proto => 'tcp', Listen => 32, ReuseAddr => 1)
        or croak "MxPeer: listen $addr:$port: $@";
    my $pid = fork() // croak "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        $SIG{TERM} = 'DEFAULT';
        $SIG{CHLD} = 'IGNORE';
        open(STDERR, '>>', "$log.err");     # TLS library warnings
        serve($ls, $log, \%o);
        POSIX::_exit(0);
    }
    close $ls;
    Postern::Test::track($pid);
    return bless { pid => $pid, log => $log, addr => $addr, port => $port }, $class;
}

sub pid { $_[0]{pid} }
sub log_text { return slurp($_[0]{log}) // '' }
# connections - how many connections the peer accepted
sub connections { my @c = $_[0]->log_text =~ /^\d+ CONNECT$/mg; return scalar @c }
# messages - the files of the messages the peer accepted
sub messages {
    my @m = $_[0]->log_text =~ /^\d+ MSG: (\S+)$/mg;
    return wantarray ? @m : scalar @m;
}

# serve - accept forever, a child per connection
sub serve {
    my ($ls, $log, $o) = @_;
    my $n = 0;
    while (1) {
        my $c = $ls->accept or next;
        $n++;
        my $pid = fork();
        if (defined $pid && $pid == 0) {
            close $ls;
            session($c, $log, $o, $n);
            POSIX::_exit(0);
        }
        close $c;
    }
}

# rec - append one line to the record
sub rec {
    my ($log, $line) = @_;
    open(my $fh, '>>', $log) or return;
    print {$fh} "$line\n";
    close $fh;
}

# say_ - send a reply
sub say_ {
    my ($c, $text) = @_;
    syswrite($c, "$text\r\n");
}

# read_lines - the complete lines of one read (bounded 30 s); undef on EOF
sub read_lines {
    my ($c, $bufref) = @_;
    while ($$bufref !~ /\n/) {
        my $ready = ref($c) =~ /SSL/ && $c->pending ? 1
            : IO::Select->new($c)->can_read(30);
        return undef unless $ready;
        my $got = sysread($c, my $chunk, 65536);
        return undef unless $got;
        $$bufref .= $chunk;
    }
    my @lines;
    push @lines, $1 while $$bufref =~ s/^(.*?)\r?\n//;
    return \@lines;
}

# tls_wrap - the handshake on an accepted socket; the SSL socket or undef
sub tls_wrap {
    my ($c, $o) = @_;
    require IO::Socket::SSL;
    return IO::Socket::SSL->start_SSL($c, SSL_server => 1,
        SSL_cert_file => $o->{cert}, SSL_key_file => $o->{key},
        Timeout => 10);
}

# ehlo_text - the EHLO reply
sub ehlo_text {
    my ($o, $tls) = @_;
    my @kw = @{ $o->{ehlo} // ['PIPELINING', '8BITMIME', 'SIZE 10485760',
        'ENHANCEDSTATUSCODES'] };
    push @kw, 'STARTTLS' if $o->{starttls} && !$tls;
    push @kw, 'AUTH PLAIN LOGIN' if $o->{auth};
    my @l = ($o->{ehlo_name} // 'peer.test', @kw);
    return join("\r\n", (map { "250-$_" } @l[0 .. $#l - 1]), "250 $l[-1]");
}

# auth_ok - check PLAIN credentials (base64 "\0user\0pass")
sub auth_ok {
    my ($o, $user, $pass) = @_;
    return $user eq $o->{auth}[0] && $pass eq $o->{auth}[1];
}

# session - one SMTP session
sub session {
    my ($c, $log, $o, $n) = @_;
    my ($buf, $tls, $msgs) = ('', 0, 0);
    rec($log, "$n CONNECT");
    if ($o->{implicit}) {
        $c = tls_wrap($c, $o) or return;
        $tls = 1;
        rec($log, "$n TLS: " . $c->get_sslversion);
    }
    my $greet = $o->{greeting} // '220 peer.test ESMTP MxPeer';
    return if $o->{hangup};
    if ($o->{silent}) {
        IO::Select->new($c)->can_read(60);     # until the client leaves
        return;
    }
    if ($o->{trickle}) {
        for my $ch (split //, "$greet\r\n") {
            syswrite($c, $ch) or return;
            select(undef, undef, undef, 0.5);
        }
    } else {
        say_($c, $greet);
    }
    return if $greet =~ /^[45]/;
    my $need_auth = 0;
    while (defined(my $lines = read_lines($c, \$buf))) {
        my @verbs = map { (uc($_) =~ /^(\w+)/)[0] // '?' } @$lines;
        rec($log, "$n BATCH: " . join(',', @verbs)) if @$lines > 1;
        for my $line (@$lines) {
            my $v = (uc($line) =~ /^(\w+)/)[0] // '';
            rec($log, "$n C: " . ($v eq 'AUTH' ? 'AUTH ***' : $line));
            if ($v eq 'EHLO') { say_($c, ehlo_text($o, $tls)) }
            elsif ($v eq 'HELO') { say_($c, '250 peer.test') }
            elsif ($v eq 'STARTTLS' && $o->{starttls} && !$tls) {
                say_($c, '220 2.0.0 Ready to start TLS');
                $c = tls_wrap($c, $o) or do { rec($log, "$n TLS: failed"); return };
                $tls = 1;
                $buf = '';
                rec($log, "$n TLS: " . $c->get_sslversion);
                last;
            }
            elsif ($v eq 'AUTH' && $o->{auth}) {
                my ($mech, $init) = $line =~ /^AUTH\s+(\S+)\s*(\S*)/i;
                my ($u, $p);
                if (uc $mech eq 'PLAIN') {
                    (undef, $u, $p) = split(/\0/, decode_base64($init), 3);
                } else {
                    say_($c, '334 VXNlcm5hbWU6');
                    my $l1 = read_lines($c, \$buf) or return;
                    say_($c, '334 UGFzc3dvcmQ6');
                    my $l2 = read_lines($c, \$buf) or return;
                    ($u, $p) = (decode_base64($l1->[0]), decode_base64($l2->[0]));
                }
                my $ok = auth_ok($o, $u // '', $p // '');
                rec($log, "$n AUTH: " . ($ok ? 'ok' : 'bad') . " " . ($u // '')
                    . " $mech");
                say_($c, $ok ? '235 2.7.0 Authentication successful'
                    : '535 5.7.8 Authentication credentials invalid');
            }
            elsif ($v eq 'MAIL') { say_($c, '250 2.1.0 Ok') }
            elsif ($v eq 'RCPT') { say_($c, $o->{rcpt} // '250 2.1.5 Ok') }
            elsif ($v eq 'RSET') { say_($c, '250 2.0.0 Ok') }
            elsif ($v eq 'NOOP') { say_($c, '250 2.0.0 Ok') }
            elsif ($v eq 'QUIT') { say_($c, '221 2.0.0 Bye'); return }
            elsif ($v eq 'DATA') {
                say_($c, '354 End data with <CR><LF>.<CR><LF>');
                my $data = '';
                DATA: while (1) {
                    my $dl = read_lines($c, \$buf) or return;
                    for my $l (@$dl) {
                        last DATA if $l eq '.';
                        $data .= "$l\n";
                    }
                }
                $msgs++;
                my $file = "$log.$n.$msgs";
                if (open(my $fh, '>:raw', $file)) { print {$fh} $data; close $fh }
                rec($log, "$n MSG: $file");
                say_($c, $o->{dot} // '250 2.0.0 Ok: queued');
            }
            else { say_($c, '502 5.5.2 Command not implemented') }
        }
    }
}

1;
