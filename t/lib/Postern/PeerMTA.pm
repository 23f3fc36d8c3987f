# Postern::PeerMTA - real MTAs as delivery peers (t/39-peer-*.t): a private
# Postfix instance and a private Exim, each on a loopback port of its own
# with its own configuration, spool and log under the test's temp dir,
# offering STARTTLS (a certificate made here), PIPELINING, CHUNKING,
# 8BITMIME and SMTPUTF8, and keeping every message it accepts in its
# queue (Postfix: the hold queue; Exim: queue_only) so that the test can
# read it back exactly (postcat, exim -Mvc).
#
# Postfix is Debian's postfix package (the suite's smtp-sink comes from
# it); Exim cannot be installed beside it (both are a mail-transport-
# agent), so tools/deps.sh unpacks Debian's exim4-daemon-light with
# dpkg-deb -x into POSTERN_TEST_EXTRAS/exim4 and creates its compiled-in user
# Debian-exim. Both need root (their daemons drop to their own users):
# the suite runs as root in CI.
#
# Each peer's master process is started here, tracked by PID and stopped
# by PID (SIGTERM, bounded wait); nothing listens beyond 127.0.0.1.
package Postern::PeerMTA;

use strict;
use warnings;

use Carp qw(croak);
use Exporter qw(import);
use File::Path qw(make_path);
use Time::HiRes qw(sleep);
use Postern::Test;
use Postern::TestSMTPD qw(smtpc);

our @EXPORT = qw(exim_root exim_bin postfix_peer exim_peer peer_submit
    peer_matrix);

# exim_root, exim_bin - where tools/deps.sh unpacked exim4-daemon-light
sub exim_root { require Postern::Interop; return Postern::Interop::extras_dir() . '/exim4' }
sub exim_bin { return exim_root() . '/usr/sbin/exim4' }

# peer_cert - a certificate for 127.0.0.1 and mx1.$dom (the MX name), the
# CA Postern is given
sub peer_cert {
    my ($dir, $cn, $dom) = @_;
    my ($crt, $key) = ("$dir/cert.pem", "$dir/key.pem");
    system('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
        'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', $key, '-out', $crt,
        '-subj', "/CN=$cn", '-addext', "subjectAltName=IP:127.0.0.1,DNS:mx1.$dom", '-days', '2',
        '-batch') == 0 or croak 'openssl req failed';
    chmod 0644, $key, $crt;
    return ($crt, $key);
}

# wait_port - 1 once 127.0.0.1:$port accepts (bounded)
sub wait_port {
    my ($port, $what) = @_;
    return wait_for(sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
        Timeout => 1) }, 20, $what);
}

# postfix_main_cf - a minimal private main.cf: hold everything
sub postfix_main_cf {
    my ($dir, $crt, $key) = @_;
    return <<"EOF";
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
mail_owner = postfix
myhostname = pf.peer.test
mydomain = peer.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
# every message stays in the hold queue, as it arrived
smtpd_client_restrictions = check_client_access static:HOLD
# a relay peer: the headers of mail from us are not Postfix's to rewrite
local_header_rewrite_clients =
smtputf8_enable = yes
smtpd_tls_security_level = may
smtpd_tls_cert_file = $crt
smtpd_tls_key_file = $key
smtpd_tls_received_header = yes
smtp_dns_support_level = disabled
alias_maps =
alias_database =
local_recipient_maps =
biff = no
maillog_file_prefixes = $dir
maillog_file = $dir/maillog
EOF
}

# postfix_master_cf - the services a receiving Postfix needs
sub postfix_master_cf {
    my ($port) = @_;
    my @s = ("127.0.0.1:$port inet n - n - - smtpd",
        'cleanup unix n - n - 0 cleanup', 'qmgr unix n - n 300 1 qmgr',
        'rewrite unix - - n - - trivial-rewrite', 'bounce unix - - n - 0 bounce',
        'defer unix - - n - 0 bounce', 'trace unix - - n - 0 bounce',
        'verify unix - - n - 1 verify', 'proxymap unix - - n - - proxymap',
        'anvil unix - - n - 1 anvil', 'scache unix - - n - 1 scache',
        'postlog unix-dgram n - n - 1 postlogd', 'tlsmgr unix - - n 1000? 1 tlsmgr',
        'showq unix n - n - - showq', 'error unix - - n - - error',
        'retry unix - - n - - error', 'discard unix - - n - - discard',
        'smtp unix - - n - - smtp', 'flush unix n - n 1000? 0 flush');
    return join("\n", @s) . "\n";
}

# postfix_peer - a private Postfix on 127.0.0.1:$port for the test domain
# $dom; a Postern::PeerMTA::Postfix (messages, stop, ca, log_text)
sub postfix_peer {
    my ($port, $dom) = @_;
    my $dir = tempdir() . '/postfix';
    make_path("$dir/conf", "$dir/spool", "$dir/data");
    chmod 0755, $dir;
    my ($crt, $key) = peer_cert($dir, 'pf.peer.test', $dom);
    chown scalar(getpwnam('postfix')), -1, "$dir/data";
    spit("$dir/conf/main.cf", postfix_main_cf($dir, $crt, $key));
    spit("$dir/conf/master.cf", postfix_master_cf($port));
    spit("$dir/maillog", '');
    # "postfix check" makes the queue directories with their owners
    my ($st, $out, $err) = run_cmd(['/usr/sbin/postfix', '-c', "$dir/conf", 'check'], 30);
    croak "postfix check failed: $err" if $st != 0;
    my $pid = Postern::Test::track(Postern::Test::spawn(['/usr/lib/postfix/sbin/master',
        '-c', "$dir/conf", '-d'], "$dir/master.out", 1));
    wait_port($port, "postfix on $port")
        or croak 'postfix did not start: ' . (slurp("$dir/maillog") // '');
    return bless { pid => $pid, dir => $dir, port => $port, ca => $crt, dom => $dom },
        'Postern::PeerMTA::Postfix';
}

# exim_conf - a private Exim: accept from loopback, queue only
sub exim_conf {
    my ($dir, $port, $crt, $key) = @_;
    return <<"EOF";
primary_hostname = exim.peer.test
spool_directory = $dir/spool
log_file_path = $dir/log/%slog
pid_file_path = $dir/exim.pid
daemon_smtp_ports = $port
local_interfaces = 127.0.0.1
queue_only = true
keep_environment =
tls_advertise_hosts = *
tls_certificate = $crt
tls_privatekey = $key
smtputf8_advertise_hosts = *
chunking_advertise_hosts = *
pipelining_advertise_hosts = *
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  accept hosts = 127.0.0.1
  deny
begin routers
begin transports
EOF
}

# exim_peer - a private Exim on 127.0.0.1:$port for the test domain $dom
# (exim -bdf, in the foreground, so its pid is ours); a
# Postern::PeerMTA::Exim
sub exim_peer {
    my ($port, $dom) = @_;
    my $dir = tempdir() . '/exim';
    make_path("$dir/spool", "$dir/log");
    chmod 0755, $dir;
    my ($crt, $key) = peer_cert($dir, 'exim.peer.test', $dom);
    my $uid = getpwnam('Debian-exim') // croak 'no Debian-exim user (tools/deps.sh)';
    chown $uid, -1, "$dir/spool", "$dir/log";
    spit("$dir/exim.conf", exim_conf($dir, $port, $crt, $key));
    my $pid = Postern::Test::track(Postern::Test::spawn([exim_bin(), '-C',
        "$dir/exim.conf", '-bdf'], "$dir/exim.out", 1));
    wait_port($port, "exim on $port")
        or croak 'exim did not start: ' . (slurp("$dir/exim.out") // '');
    return bless { pid => $pid, dir => $dir, port => $port, ca => $crt, dom => $dom },
        'Postern::PeerMTA::Exim';
}

# peer_submit - submit message $m ({from, to, text, utf8}) to Postern's
# port: MAIL with SMTPUTF8 when utf8, BODY=8BITMIME for 8-bit text; the
# final reply
sub peer_submit {
    my ($port, $m) = @_;
    my $c = smtpc($port) or return { code => 0, text => "connect: $!" };
    $c->cmd('EHLO client.peer.test');
    my $p = $m->{utf8} ? ' SMTPUTF8 BODY=8BITMIME'
        : $m->{text} =~ /[\x80-\xff]/ ? ' BODY=8BITMIME' : '';
    for my $cmd ("MAIL FROM:<$m->{from}>$p", "RCPT TO:<$m->{to}>") {
        my $r = $c->cmd($cmd);
        return $r if $r->{code} != 250;
    }
    my $r = $c->cmd('DATA');
    return $r if $r->{code} != 354;
    (my $t = $m->{text}) =~ s/\r?\n/\r\n/g;
    $t =~ s/^\./../mg;
    $c->send("$t.\r\n");
    $r = $c->reply(20);
    $c->cmd('QUIT');
    $c->close;
    return $r;
}

# peer_postern - a postern whose relay and mx transports both lead to
# $peer (mx through a loopback DNS server: mx.DOMAIN MX 10 mx1.DOMAIN, A
# 127.0.0.1), TLS verified against the peer's certificate, debug log
sub peer_postern {
    my ($peer, $dom) = @_;
    my $dns = free_port();
    dns_server($dns, { "mx.$dom" => { MX => "10 mx1.$dom" },
        "mx1.$dom" => { A => '127.0.0.1' } });
    my $conf = write_config(name => 'pm', raw => { log_level => 'debug' },
        extra => <<"EOF");
transport peer_relay {
	type = relay
	host = "127.0.0.1:$peer->{port}"
	tls = verify
	ca_file = "$peer->{ca}"
	timeout = 20s
}
transport peer_mx {
	type = mx
	port = $peer->{port}
	timeout = 20s
}
tls_policy mx.$dom {
	level = verify
	ca_file = "$peer->{ca}"
}
route "*\@relay.$dom" { transport = peer_relay }
route "*\@mx.$dom" { transport = peer_mx }
dns_server = "127.0.0.1:$dns"
dns_timeout = 2s
EOF
    return start_postern($conf);
}

# strip_received - the text without the Received: fields on top, LF ends
sub strip_received {
    my ($t) = @_;
    $t =~ s/\r\n/\n/g;
    1 while $t =~ s/\AReceived:[^\n]*\n(?:[ \t][^\n]*\n)*//;
    return $t;
}

# peer_matrix - through both transports into $peer, the four messages of
# Postern::Interop (plain with dot lines, 8-bit, SMTPUTF8, attachment):
# each is sent (status=sent, over verified TLS, as one BDAT chunk when the
# peer offers CHUNKING, MAIL/RCPT pipelined) and is in the peer's queue
# byte for byte under the peer's and Postern's Received: fields; $with
# gives, for a message, what the peer's Received: must match
sub peer_matrix {
    my ($peer, $name, $with) = @_;
    my $dom = $peer->{dom};
    require Postern::Interop;
    my $pm = peer_postern($peer, $dom);
    my @m;
    for my $t (qw(relay mx)) {
        for my $m (Postern::Interop::interop_messages("peer-$t")) {
            (my $local = $m->{to}) =~ s/\@.*//;
            $m->{to} = "$local\@$t.$dom";
            $m->{via} = $t;
            my $r = peer_submit($pm->smtp_port, $m);
            Test::More::is($r->{code}, 250, "$name $t $m->{kind}: accepted by Postern")
                or Test::More::diag($r->{text});
            ($m->{qid}) = ($r->{text} // '') =~ /queued as (\S+)/;
            push @m, $m;
        }
    }
    peer_check($pm, $peer, $name, $with, @m);
    Test::More::is($pm->stop, 0, "$name: postern stops with status 0");
}

# peer_check - every message of @m was delivered and is in the queue of
# $peer as it was sent
sub peer_check {
    my ($pm, $peer, $name, $with, @m) = @_;
    for my $m (@m) {
        my $n = "$name $m->{via} $m->{kind}";
        my $q = quotemeta($m->{qid} // 'NOID');
        Test::More::ok($pm->wait_log(qr/$q: to=<\Q$m->{to}\E> .*status=sent .*\[TLS=TLSv1\.[23] \S+ verified=yes\]/, 30),
            "$n: sent over verified TLS")
            or Test::More::diag(join("\n", grep { /$q/ } split /\n/, $pm->log_text));
        # this message's dialogue (other jobs' lines may come between)
        my $d = join("\n", grep { /$q: relay \S+: [<>] / } split /\n/, $pm->log_text);
        Test::More::like($d, qr/: > MAIL FROM:[^\n]*\n[^\n]*: > RCPT TO:/,
            "$n: MAIL and RCPT pipelined (no reply read between)");
        Test::More::like($d, qr/: > BDAT \d+ LAST/, "$n: sent with BDAT (CHUNKING)");
        my ($got) = grep { /\Q$m->{tag}\E/ } $peer->messages;
        Test::More::ok(defined $got, "$n: in the peer's queue") or next;
        Test::More::like($got, $with->($m), "$n: the peer's Received: says how it came");
        Test::More::is(strip_received($got), $m->{text}, "$n: byte for byte in the peer's queue");
    }
}

# the stop of both: SIGTERM to the master, a bounded wait for it and the
# processes it started
sub stop_peer {
    my ($self) = @_;
    my @d = proc_descendants($self->{pid});
    kill('TERM', $self->{pid});
    my $gone = wait_for(sub { Postern::Test::reap($self->{pid});
        !grep { pid_alive($_) } $self->{pid}, @d }, 20, "peer $self->{pid} to stop");
    return $gone ? 1 : 0;
}

package Postern::PeerMTA::Postfix;

# messages - the held messages as texts (postcat -bh), in any order
sub messages {
    my ($self) = @_;
    my @ids = Postern::Test::dir_files("$self->{dir}/spool/hold");
    my @out;
    for my $f (@ids) {
        my ($id) = $f =~ m{([^/]+)\z};
        my ($st, $out) = Postern::Test::run_cmd(['/usr/sbin/postcat', '-c',
            "$self->{dir}/conf", '-bh', '-q', $id], 20);
        push @out, $out if $st == 0;
    }
    return @out;
}
sub log_text { return Postern::Test::slurp("$_[0]{dir}/maillog") // '' }
sub stop { return Postern::PeerMTA::stop_peer($_[0]) }

package Postern::PeerMTA::Exim;

# messages - the queued messages as texts (exim -Mvc), in any order
sub messages {
    my ($self) = @_;
    my @c = (Postern::PeerMTA::exim_bin(), '-C', "$self->{dir}/exim.conf");
    my ($st, $list) = Postern::Test::run_cmd([@c, '-bp'], 20);
    my @out;
    # " 0m   484 1xZKfD-0007VL-2d <sender>" (-bpi is Exim 4.97's)
    for my $id ($list =~ /^\s*\S+\s+\S+\s+([0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2,4})\s/mg) {
        my ($s2, $out) = Postern::Test::run_cmd([@c, '-Mvc', $id], 20);
        push @out, $out if $s2 == 0;
    }
    return @out;
}
sub log_text { return Postern::Test::slurp("$_[0]{dir}/log/mainlog") // '' }
sub stop { return Postern::PeerMTA::stop_peer($_[0]) }

1;
