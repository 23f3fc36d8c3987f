# 17-smtpd-access.t - the ingress allow-list checked before the banner
# (smtpd_client_allow, a listener's client_allow) and the "sender must be
# local" rule (smtpd_sender_local_only), seed 003 / issue 3.
#
# A Net::DNS server on loopback answers PTR and A records; clients bind
# to 127.0.0.x source addresses so each one meets a different record:
# a listed network (220 without DNS), no PTR (554 5.7.1 and EOF), FCrDNS
# confirmed by an exact name, a ".suffix" and a "*.suffix" pattern (220,
# the name in Received:), a PTR name whose A record points elsewhere
# (554), a PTR name on no pattern (554), the parent of a suffix pattern
# (554), SERVFAIL and a silent server for the PTR and a SERVFAIL for the
# forward lookup (421 4.7.0); a client leaving during the check and one
# talking before the greeting. Per-listener lists on [::1] allow or deny
# ::1 by an IPv6 network or by FCrDNS (ip6.arpa PTR, AAAA); on smtps a
# refused client is closed before the handshake without a byte. Bad
# entries are configuration errors naming file, line and option. The sender rule: 553 5.7.1 for a foreign
# sender, 250 for a relay domain, the hostname and <>, for an AUTH'd
# user with its own domain and for a trusted client. /metrics counts
# reason="access_denied" and "sender_denied"; nothing from a refused
# client is queued; each refusal is one "reject: CONNECT" log line.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::IP;
use Time::HiRes qw(time);
use Postern::Test;
use Postern::TestSMTPD;

require_build();

my $dir = tempdir() . '/access';
mkdir $dir;
my ($crt, $key) = make_cert($dir, 'access.postern.test');
my $dnsport = free_port();

dns_server($dnsport, {
    '3.0.0.127.in-addr.arpa' => { PTR => 'good.allowed.test.' },
    'good.allowed.test' => { A => '127.0.0.3' },
    '4.0.0.127.in-addr.arpa' => { PTR => 'liar.allowed.test.' },
    'liar.allowed.test' => { A => '127.0.0.99' },
    '5.0.0.127.in-addr.arpa' => { SERVFAIL => 1 },
    '6.0.0.127.in-addr.arpa' => { SILENT => 1 },
    '7.0.0.127.in-addr.arpa' => { PTR => 'mx7.suffix.test.' },
    'mx7.suffix.test' => { A => '127.0.0.7' },
    '8.0.0.127.in-addr.arpa' => { PTR => 'host.star.test.' },
    'host.star.test' => { A => ['127.0.0.50', '127.0.0.8'] },
    '9.0.0.127.in-addr.arpa' => { PTR => 'other.test.' },
    'other.test' => { A => '127.0.0.9' },
    '10.0.0.127.in-addr.arpa' => { PTR => 'ff.suffix.test.' },
    'ff.suffix.test' => { SERVFAIL => 1 },
    '11.0.0.127.in-addr.arpa' => { PTR => 'suffix.test.' },
    'suffix.test' => { A => '127.0.0.11' },
    # ::1 by its ip6.arpa nibbles
    join('.', reverse split //, '0' x 31 . '1') . '.ip6.arpa' => { PTR => 'v6.allowed.test.' },
    'v6.allowed.test' => { AAAA => '::1', A => '127.0.0.1' },
});

my $hash = crypt('alice-secret', '$6$accesssalt$');
my %port = map { $_ => free_port() } qw(main v6allow v6deny v6name smtps smtpsdeny);
my $extra = <<"EOF"
dns_server = "127.0.0.1:$dnsport"
dns_timeout = 1s
smtpd_client_allow = { "127.0.0.1", "127.0.0.12/32", "good.allowed.test",
	"liar.allowed.test", ".suffix.test", "*.star.test", "2001:db8::/32" }
smtpd_sender_local_only = yes
tls_cert = "$crt"
tls_key = "$key"
smtp_user alice {
	password = "$hash"
	sender_domains = { "alice.test" }
}
EOF
    . listen_section('main', "127.0.0.1:$port{main}", auth_cleartext => 'yes')
    . listen_section('v6allow', "[::1]:$port{v6allow}",
        client_allow => '{ "::1/128" }')
    . listen_section('v6deny', "[::1]:$port{v6deny}",
        client_allow => '{ "2001:db8::/32" }')
    . listen_section('v6name', "[::1]:$port{v6name}",
        client_allow => '{ "v6.allowed.test" }')
    . listen_section('smtps', "127.0.0.1:$port{smtps}", mode => 'smtps')
    . listen_section('smtpsdeny', "127.0.0.1:$port{smtpsdeny}", mode => 'smtps',
        client_allow => '{ "192.0.2.0/24" }');
my $conf = write_config(smtp_port => 0, trusted_networks => ['127.0.0.12/32'],
    relay_domains => ['example.com'], extra => $extra);
my $pm = start_postern($conf);
my $maildir = conf_info($conf)->{maildir};

# client - a session from source address $local to 127.0.0.1:$port (or
# $o{host}); the greeting (bounded by $o{wait}) is in ->{greeting}
sub client {
    my ($port, $local, %o) = @_;
    my $sock = IO::Socket::IP->new(PeerHost => $o{host} // '127.0.0.1',
        PeerPort => $port, LocalAddr => $local, Timeout => 5) or return undef;
    binmode $sock;
    my $c = bless { sock => $sock, buf => '', eof => 0 },
        'Postern::TestSMTPD::Client';
    $c->{greeting} = $c->reply($o{wait} // 10);
    return $c;
}

# closed - 1 if the server closes the connection within 5 s
sub closed {
    my ($c) = @_;
    my $t = time() + 5;
    while (time() < $t) {
        return 1 if !$c->fill(1) && $c->{eof};
    }
    return 0;
}

# greeting_is - the greeting's code and enhanced code
sub greeting_is {
    my ($c, $code, $enh, $name) = @_;
    my $g = $c ? $c->{greeting} : { code => -1, text => 'no connection' };
    ok($g->{code} == $code && (!$enh || ($g->{enh} // '') eq $enh), $name)
        or diag("got: $g->{code} $g->{text}");
    return $g;
}

sub code_is {
    my ($r, $code, $enh, $name) = @_;
    ok($r->{code} == $code && (!$enh || ($r->{enh} // '') eq $enh), $name)
        or diag("got: $r->{code} $r->{text}");
}

ok(wait_for(sub { client($port{main}, '127.0.0.1') }, 10), 'listener up');
my $denied = 0;     # access refusals expected in /metrics

# --- networks ----------------------------------------------------------------
{
    my $c = client($port{main}, '127.0.0.1');
    greeting_is($c, 220, undef, 'a client in a listed network is greeted (220)');
    $c->close;

    $c = client($port{main}, '127.0.0.2');
    my $g = greeting_is($c, 554, '5.7.1', 'a client outside the list: 554 5.7.1');
    like($g->{text}, qr/access denied for \[127\.0\.0\.2\]/, '... naming the client');
    ok(closed($c), '... and the connection is closed');
    $denied++;
    ok($pm->wait_log(qr/reject: CONNECT from \[127\.0\.0\.2\]: 554 5\.7\.1 .*no reverse hostname/, 5),
        'the refusal is one "reject:" log line with client, code and reason');
}

# --- forward-confirmed reverse DNS -------------------------------------------
{
    my $c = client($port{main}, '127.0.0.3');
    greeting_is($c, 220, undef, 'FCrDNS: PTR good.allowed.test, A points back: 220');
    code_is($c->cmd('EHLO client.test'), 250, undef, '... EHLO');
    my $r = $c->message('someone@example.com', 'rcpt@example.com',
        make_message(subject => 'from good', to => 'rcpt@example.com'));
    code_is($r, 250, undef, '... a message from it is accepted');
    $c->cmd('QUIT');
    $c->close;
    ok(wait_for(sub { (() = maildir_files($maildir)) == 1 }, 10), '... and delivered');
    my ($f) = maildir_files($maildir);
    my $text = slurp($f) // '';
    like($text, qr/^Received: from client\.test \(good\.allowed\.test \[127\.0\.0\.3\]\)/m,
        'Received: names the confirmed host instead of "unknown"');

    $c = client($port{main}, '127.0.0.7');
    greeting_is($c, 220, undef, 'pattern ".suffix.test" matches mx7.suffix.test: 220');
    $c->close;
    $c = client($port{main}, '127.0.0.8');
    greeting_is($c, 220, undef,
        'pattern "*.star.test" matches host.star.test (second A record): 220');
    $c->close;

    $c = client($port{main}, '127.0.0.4');
    my $g = greeting_is($c, 554, '5.7.1',
        'PTR liar.allowed.test whose A is elsewhere: 554 5.7.1');
    like($g->{text}, qr/does not resolve/, '... saying why');
    ok(closed($c), '... closed');
    $denied++;

    $c = client($port{main}, '127.0.0.9');
    $g = greeting_is($c, 554, '5.7.1', 'a PTR name on no pattern: 554 5.7.1');
    like($g->{text}, qr/PTR other\.test not on the allow-list/, '... naming it');
    $denied++;
    $c = client($port{main}, '127.0.0.11');
    greeting_is($c, 554, '5.7.1',
        '".suffix.test" does not match suffix.test itself: 554 5.7.1');
    $denied++;
}

# --- temporary DNS failures --------------------------------------------------
{
    my $c = client($port{main}, '127.0.0.5');
    my $g = greeting_is($c, 421, '4.7.0', 'PTR SERVFAIL: 421 4.7.0');
    like($g->{text}, qr/cannot verify your hostname/, '... cannot verify');
    ok(closed($c), '... closed');
    $denied++;

    my $t0 = time();
    $c = client($port{main}, '127.0.0.6', wait => 15);
    greeting_is($c, 421, '4.7.0', 'PTR server silent: 421 4.7.0');
    my $took = time() - $t0;
    ok($took < 6, "... within the check's bound (took ${took}s, dns_timeout 1s)");
    ok(closed($c), '... closed');
    $denied++;

    $c = client($port{main}, '127.0.0.10');
    greeting_is($c, 421, '4.7.0', 'forward lookup SERVFAIL: 421 4.7.0');
    $denied++;
}

# --- clients that do not wait ----------------------------------------------
{
    # gone while its PTR lookup is unanswered: the check outlives it
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port{main},
        LocalAddr => '127.0.0.6', Timeout => 5);
    ok($s, 'a client that leaves during the DNS check: connected');
    close $s if $s;
    $denied++;

    # talks before the greeting: noted, then served in order
    $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port{main},
        LocalAddr => '127.0.0.3', Timeout => 5);
    syswrite($s, "EHLO early.test\r\n");
    my $c = bless { sock => $s, buf => '', eof => 0 }, 'Postern::TestSMTPD::Client';
    $c->{greeting} = $c->reply;
    greeting_is($c, 220, undef, 'pregreet: the greeting still comes first');
    code_is($c->reply, 250, undef, '... then the early EHLO is answered');
    $c->close;
    # whether the EHLO arrived before the DNS answers is a race, so the
    # "pregreet traffic" log line is not asserted
    note('pregreet traffic was ' . ($pm->wait_log(qr/pregreet traffic from \[127\.0\.0\.3\]/, 1)
        ? '' : 'not ') . 'noted (timing-dependent)');
}

# --- per-listener lists on IPv6 ----------------------------------------------
SKIP: {
    my $probe = IO::Socket::IP->new(PeerHost => '::1', PeerPort => $port{v6allow},
        Timeout => 2);
    skip("::1 is not available here ($@): no IPv6 sub-test", 6) unless $probe;
    close $probe;
    my $c = client($port{v6allow}, '::1', host => '::1');
    greeting_is($c, 220, undef, 'IPv6: ::1 in client_allow ::1/128: 220');
    $c->close;
    $c = client($port{v6deny}, '::1', host => '::1');
    my $g = greeting_is($c, 554, '5.7.1',
        'IPv6: ::1 outside client_allow 2001:db8::/32: 554 5.7.1');
    like($g->{text}, qr/\[::1\].*not on the allow-list/, '... without DNS');
    ok(closed($c), '... closed');
    $denied++;
    $c = client($port{v6name}, '::1', host => '::1');
    greeting_is($c, 220, undef,
        'IPv6 FCrDNS: ip6.arpa PTR v6.allowed.test, AAAA ::1: 220');
    $c->close;
    ok($pm->wait_log(qr/client \[::1\] is v6\.allowed\.test \(forward-confirmed\)/, 5),
        '... confirmed by its AAAA record');
}

# --- smtps: the check comes before the handshake -----------------------------
{
    my $c = smtpc($port{smtps}, tls => 1);
    ok($c && $c->{greeting}{code} == 220, 'smtps, allowed: TLS, then 220');
    $c->close if $c;

    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port{smtpsdeny},
        Timeout => 5);
    ok($s, 'smtps, refused: connected');
    my $got = '';
    my $eof = 0;
    if ($s && IO::Select->new($s)->can_read(5)) {
        my $n = sysread($s, $got, 4096);
        $eof = defined $n && $n == 0;
    }
    ok($eof && $got eq '', 'smtps, refused: closed before the handshake, no clear text');
    close $s if $s;
    $denied++;
    ok($pm->wait_log(qr/reject: CONNECT from \[127\.0\.0\.1\]: 554 5\.7\.1 .*smtps: closed before the TLS handshake/, 5),
        'smtps, refused: logged as closed without a reply');
}

# --- sender must be local ----------------------------------------------------
{
    my $c = client($port{main}, '127.0.0.1');
    $c->cmd('EHLO client.test');
    my $r = $c->cmd('MAIL FROM:<spoof@elsewhere.test>');
    code_is($r, 553, '5.7.1', 'unauthenticated foreign sender: 553 5.7.1');
    like($r->{text}, qr/not a local domain/, '... not a local domain');
    code_is($c->cmd('MAIL FROM:<a@example.com>'), 250, undef, 'relay domain sender: 250');
    $c->cmd('RSET');
    code_is($c->cmd('MAIL FROM:<a@Postern.Test>'), 250, undef,
        'the hostname as sender domain (any case): 250');
    $c->cmd('RSET');
    code_is($c->cmd('MAIL FROM:<>'), 250, undef, 'null sender: 250');
    $c->cmd('RSET');
    code_is($c->cmd('AUTH PLAIN ' . plain_ir('alice', 'alice-secret')), 235, undef,
        'AUTH as alice');
    code_is($c->cmd('MAIL FROM:<alice@alice.test>'), 250, undef,
        "AUTH'd user with its own (non-local) domain: 250");
    $c->cmd('QUIT');
    $c->close;

    $c = client($port{main}, '127.0.0.12');
    greeting_is($c, 220, undef, 'trusted client: 220');
    $c->cmd('EHLO trusted.test');
    code_is($c->cmd('MAIL FROM:<any@elsewhere.test>'), 250, undef,
        'trusted network is exempt: 250');
    $c->close;
    ok($pm->wait_log(qr/reject: MAIL from \[127\.0\.0\.1\]: 553 5\.7\.1 <spoof\@elsewhere\.test>/, 5),
        'the sender refusal is logged');
}

# --- counters and the queue --------------------------------------------------
{
    my $m = {};
    my $want = sub {
        $m = metrics($pm->url('/metrics'));
        return (msum($m, 'access_denied') // 0) >= $denied
            && (msum($m, 'sender_denied') // 0) >= 1;
    };
    ok(wait_for($want, 5), "/metrics counts reason=\"access_denied\" ($denied) and "
        . '"sender_denied"')
        or diag('access_denied=' . (msum($m, 'access_denied') // 'none')
            . ' sender_denied=' . (msum($m, 'sender_denied') // 'none'));
    is(msum($m, 'access_denied'), $denied, 'access_denied counts each refused client once');
    my $dns = sub { metric($m, 'postern_dns_lookups_total', type => $_[0], result => $_[1]) // 0 };
    ok($dns->('ptr', 'ok') >= 7 && $dns->('ptr', 'notfound') >= 1
        && $dns->('ptr', 'tempfail') >= 2, 'dns_lookups_total counts the PTR lookups')
        or diag(join ' ', map { "ptr/$_=" . $dns->('ptr', $_) } qw(ok notfound tempfail));
    # one A lookup per confirmed or refuted name (3, 4, 7, 8): each name
    # once, and 127.0.0.3's second visit is a cached verdict (t/19)
    ok($dns->('a', 'ok') >= 4 && $dns->('a', 'tempfail') >= 1 && $dns->('aaaa', 'ok') >= 1,
        '... and the forward A/AAAA lookups')
        or diag(join ' ', map { "$_=" . $dns->(split m{/}) } qw(a/ok a/tempfail aaaa/ok));
    is(scalar(maildir_files($maildir)), 1, 'nothing from a refused client was queued');
    my @lines = $pm->log_text =~ /^.*reject: CONNECT from \[127\.0\.0\.2\].*$/mg;
    is(scalar @lines, 1, 'one log line per refusal');
}

# --- configuration -------------------------------------------------------------
{
    my ($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $conf, 'dump-config']);
    like($out, qr/^smtpd_client_allow = 127\.0\.0\.1\/32 127\.0\.0\.12\/32 2001:db8::\/32 good\.allowed\.test liar\.allowed\.test \.suffix\.test \.star\.test$/m,
        'dump-config: networks, then name patterns ("*." kept as ".")')
        or diag($err);
    like($out, qr/^listen\.v6deny\.client_allow = 2001:db8::\/32$/m,
        'dump-config: a listener\'s own list');
    like($out, qr/^smtpd_sender_local_only = yes$/m, 'dump-config: smtpd_sender_local_only');
    for my $bad ('10.1.2.300', '2001:db8::/129', 'bad_name!.test', '*.', '192.0.2.0/33') {
        my $path = "$dir/bad.conf";
        spit($path, "hostname = \"x.test\"\n\nsmtpd_client_allow = { \"$bad\" }\n");
        ($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $path, 'check-config']);
        ok($st >> 8 != 0 && $err =~ /bad\.conf:3: option 'smtpd_client_allow': expected an IP address, a network .* got '\Q$bad\E'/,
            "check-config refuses smtpd_client_allow entry '$bad' with file, line, option")
            or diag($err);
    }
}

is($pm->stop, 0, 'postern stops cleanly');
$pm->check_sanitizers;
done_testing();

# msum - postern_smtpd_rejections_total for one reason, over any other
# labels
sub msum {
    my ($m, $reason) = @_;
    my $sum;
    for my $k (keys %$m) {
        next unless $k =~ /^postern_smtpd_rejections_total\{(.*)\}$/;
        next unless index(",$1,", qq(,reason="$reason",)) >= 0;
        $sum = ($sum // 0) + $m->{$k};
    }
    return $sum;
}
