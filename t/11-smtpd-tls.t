# 11-smtpd-tls.t - postern-smtpd listeners and TLS: several listen
# sections (IPv4 and IPv6), STARTTLS (RFC 3207) on a mode smtp listener
# with a certificate, implicit TLS on mode smtps (a client closing before
# the handshake gets one log line, not a bogus OpenSSL code), require_tls (530 5.7.0),
# TLS 1.2 minimum, the CVE-2011-0411 injection (pipelined bytes after
# STARTTLS are discarded, never answered inside TLS), the state reset
# after TLS, a second STARTTLS (503), a listener without a certificate
# (no STARTTLS), Received: with ESMTPS and the cipher, and a reload
# (SIGHUP) serving a changed certificate.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::TestSMTPD;
use IO::Select;
use IO::Socket::IP;

require_build();

my $dir = tempdir() . '/tls';
mkdir $dir;
my ($crt, $key) = make_cert($dir, 'first.postern.test');
my ($crt2, $key2) = make_cert($dir, 'plain.postern.test', 'plain');
my %port = map { $_ => free_port() } qw(starttls smtps sub none v6);
my $extra = "tls_cert = \"$crt\"\ntls_key = \"$key\"\n"
    . listen_section('starttls', "127.0.0.1:$port{starttls}")
    . listen_section('smtps', "127.0.0.1:$port{smtps}", mode => 'smtps')
    . listen_section('sub', "127.0.0.1:$port{sub}", require_tls => 'yes',
        auth_cleartext => 'yes', tls_cert => "\"$crt2\"", tls_key => "\"$key2\"")
    . "smtp_user u {\n\tpassword = \"" . crypt('pw', '$6$abcdefgh$') . "\"\n}\n"
    . listen_section('v6', "[::1]:$port{v6}");
my $conf = write_config(smtp_port => 0, smtpd_timeout => '3s', extra => $extra);
my $pm = start_postern($conf);
my $maildir = conf_info($conf)->{maildir};
ok(wait_for(sub { smtpc($port{smtps}, tls => 1) }, 10), 'smtps listener up');

# --- STARTTLS offered, injection discarded, state reset -------------------
{
    my $c = smtpc($port{starttls});
    is($c->{greeting}{code}, 220, 'greeting on the STARTTLS listener');
    my ($r, $kw) = $c->ehlo_keywords;
    ok($kw->{STARTTLS}, 'STARTTLS advertised before TLS');
    is($c->cmd('MAIL FROM:<a@example.org>')->{code}, 250, 'MAIL before TLS');
    $c->send("STARTTLS\r\nRSET\r\n");
    $r = $c->reply;
    is($r->{code}, 220, 'STARTTLS: 220') or diag $r->{text};
    is($r->{enh}, '2.0.0', 'STARTTLS: 2.0.0');
    ok($c->starttls, 'TLS handshake');
    like($c->tls_version, qr/^TLSv1[._][23]$/, 'TLS 1.2 or 1.3: ' . $c->tls_version);
    ok($c->quiet(1.0), 'the pipelined RSET is never answered inside TLS');
    $r = $c->cmd('MAIL FROM:<a@example.org>');
    is($r->{code}, 503, 'after TLS: MAIL before EHLO is 503 (state reset)');
    ($r, $kw) = $c->ehlo_keywords;
    is($r->{code}, 250, 'EHLO inside TLS');
    ok(!$kw->{STARTTLS}, 'STARTTLS not advertised inside TLS');
    $r = $c->cmd('STARTTLS');
    is($r->{code}, 503, 'second STARTTLS: 503');
    is($r->{enh}, '5.5.1', 'second STARTTLS: 5.5.1');
    my $tag = unique_tag('tls');
    $r = $c->message('a@example.org', 'b@example.org',
        make_message(subject => $tag));
    is($r->{code}, 250, 'message accepted over STARTTLS') or diag $r->{text};
    is($c->cmd('QUIT')->{code}, 221, 'QUIT inside TLS');
    $c->close;
    my ($file) = wait_for(sub {
        my @f = grep { (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files($maildir);
        return @f ? $f[0] : undef }, 10);
    ok($file, 'delivered');
    my $text = slurp($file // '/nonexistent') // '';
    like($text, qr/with ESMTPS id/, 'Received: with ESMTPS');
    like($text, qr/\(using TLSv1\.[23] with cipher \S+ \(\d+\/\d+ bits\)\)/,
        'Received: TLS version and cipher');
}

# --- STARTTLS in one write with more commands, then the handshake --------
{
    my $c = smtpc($port{starttls});
    $c->cmd('EHLO x.test');
    $c->send("STARTTLS\r\nMAIL FROM:<evil\@example.org>\r\nRCPT TO:<x\@example.org>\r\n");
    is($c->reply->{code}, 220, 'STARTTLS with a pipelined transaction: 220');
    ok($c->starttls, 'handshake after the injection');
    ok($c->quiet(1.0), 'no reply to the injected commands');
    $c->cmd('EHLO x.test');
    is($c->cmd('RCPT TO:<x@example.org>')->{code}, 503,
        'the injected MAIL was never executed');
    $c->close;
}

# --- no handshake, or garbage instead of one ------------------------------
{
    my $idle = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port{smtps},
        Timeout => 5);
    ok($idle, 'smtps: connected without a handshake');
    my $closed = wait_for(sub {
        IO::Select->new($idle)->can_read(0.5) or return 0;
        my $n = sysread($idle, my $b, 100);
        return defined $n && $n == 0 }, 10);
    ok($closed, 'smtps: a client that never starts TLS is closed after smtpd_timeout');
    my $c = smtpc($port{starttls});
    $c->cmd('EHLO x.test');
    is($c->cmd('STARTTLS')->{code}, 220, 'STARTTLS before garbage');
    $c->send("this is not a TLS ClientHello\r\n" x 3);
    ok(wait_for(sub { !$c->fill(0.5) && $c->{eof} }, 10), 'garbage instead of a handshake: closed');
    my $ok = smtpc($port{starttls});
    is($ok && $ok->{greeting}{code}, 220, 'smtpd still serves after bad handshakes');
    $ok->close if $ok;
}

# --- a client that closes an smtps connection before the handshake:
# one line that says so, not OpenSSL's code for a value that is none
{
    my $from = length($pm->log_text);
    my $gone = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port{smtps},
        Timeout => 5);
    ok($gone, 'smtps: connected');
    close $gone;
    my $new = sub { substr($pm->log_text, $from) };
    my $session = qr/connect from \[127\.0\.0\.1\] \(smtps\)\n((?:.*\n)*?)/
        . qr/.*disconnect from \[127\.0\.0\.1\]/;
    ok(wait_for(sub { $new->() =~ $session }, 10, 'disconnect'),
        'smtps: the early close is logged');
    my ($lines) = $new->() =~ $session;
    my @tls = grep { /TLS/ } split /\n/, $lines // '';
    is(scalar(@tls), 1, 'one TLS line for it') or diag(join("\n", @tls));
    unlike(join("\n", @tls), qr/lib\(0\)|reason\(\d+\)/, 'no error code that is not OpenSSL\'s');
    like($tls[0] // '', qr/\[127\.0\.0\.1\]/, 'the line names the client');
}

# --- implicit TLS --------------------------------------------------------
{
    my $c = smtpc($port{smtps}, tls => 1);
    ok($c, 'smtps: TLS from the first byte');
    is($c->{greeting}{code}, 220, 'smtps: greeting inside TLS');
    my ($r, $kw) = $c->ehlo_keywords;
    ok(!$kw->{STARTTLS}, 'smtps: no STARTTLS advertised');
    is($c->cmd('STARTTLS')->{code}, 503, 'smtps: STARTTLS is 503');
    my $tag = unique_tag('smtps');
    $r = $c->message('a@example.org', 'b@example.org', make_message(subject => $tag));
    is($r->{code}, 250, 'smtps: message accepted');
    $c->cmd('QUIT');
    $c->close;
    my ($file) = wait_for(sub {
        my @f = grep { (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files($maildir);
        return @f ? $f[0] : undef }, 10);
    like(slurp($file // '/nonexistent') // '', qr/with ESMTPS id/, 'smtps: ESMTPS');
    my $plain = smtpc($port{smtps});
    ok(!$plain || $plain->{greeting}{code} != 220,
        'smtps: a plaintext client gets no greeting');
    $plain->close if $plain;
}

# --- TLS 1.2 minimum -------------------------------------------------------
{
    my $old = smtpc($port{smtps}, tls => 1, ssl => { SSL_version => 'TLSv1_1',
        SSL_cipher_list => 'DEFAULT@SECLEVEL=0' });
    ok(!$old || $old->{greeting}{code} != 220, 'TLS 1.1 refused');
    my $v12 = smtpc($port{smtps}, tls => 1, ssl => { SSL_version => 'TLSv1_2' });
    is($v12 && $v12->{greeting}{code}, 220, 'TLS 1.2 accepted');
    like($v12 && $v12->tls_version, qr/^TLSv1[._]2$/, 'TLS 1.2 negotiated');
    $v12->close if $v12;
}

# --- require_tls, per-listener certificate -------------------------------
{
    my $c = smtpc($port{sub});
    my ($r, $kw) = $c->ehlo_keywords;
    ok($kw->{STARTTLS}, 'require_tls listener offers STARTTLS');
    $r = $c->cmd('MAIL FROM:<a@example.org>');
    is($r->{code}, 530, 'require_tls: MAIL before STARTTLS is 530');
    is($r->{enh}, '5.7.0', 'require_tls: 5.7.0');
    like($r->{text}, qr/Must issue a STARTTLS command first/, 'require_tls: text');
    ok(!$kw->{AUTH}, 'require_tls: no AUTH before TLS, even with auth_cleartext');
    $r = $c->cmd('AUTH PLAIN ' . plain_ir('u', 'pw'));
    is($r->{code}, 538, 'require_tls: AUTH before TLS is 538');
    is($r->{enh}, '5.7.11', 'require_tls: 5.7.11');
    is($c->cmd('STARTTLS')->{code}, 220, 'require_tls: STARTTLS');
    ok($c->starttls, 'require_tls: handshake');
    is($c->peer_cn, 'plain.postern.test', 'per-listener certificate served');
    $c->cmd('EHLO x.test');
    is($c->cmd('MAIL FROM:<a@example.org>')->{code}, 250, 'require_tls: MAIL after TLS');
    $c->close;
}

# --- IPv6 listener with the global certificate ----------------------------
{
    my $c = smtpc($port{v6}, host => '::1');
    ok($c && $c->{greeting}{code} == 220, 'IPv6 listener [::1] greets');
    my ($r, $kw) = $c ? $c->ehlo_keywords : ({}, {});
    ok($kw->{STARTTLS}, 'IPv6 listener offers STARTTLS (global certificate)');
    $c->close if $c;
}

# --- reload serves a changed certificate -----------------------------------
{
    my $c = smtpc($port{smtps}, tls => 1);
    is($c->peer_cn, 'first.postern.test', 'the first certificate');
    $c->close;
    make_cert($dir, 'second.postern.test');    # overwrites server.crt/key
    kill 'HUP', $pm->pid;
    my $cn = wait_for(sub {
        my $n = smtpc($port{smtps}, tls => 1) or return undef;
        my $got = $n->peer_cn;
        $n->close;
        return $got eq 'second.postern.test' ? $got : undef;
    }, 15);
    is($cn, 'second.postern.test', 'after SIGHUP the new certificate is served');
}

# --- a listener without a certificate: no STARTTLS ------------------------
{
    my $d2 = tempdir() . '/notls';
    my $p = free_port();
    my $conf2 = write_config(dir => $d2, smtp_port => $p);
    my $pm2 = start_postern($conf2);
    my $c = smtpc($p);
    my ($r, $kw) = $c->ehlo_keywords;
    ok(!$kw->{STARTTLS}, 'no certificate: STARTTLS not advertised');
    $r = $c->cmd('STARTTLS');
    is($r->{code}, 502, 'no certificate: STARTTLS is 502');
    is($r->{enh}, '5.5.1', 'no certificate: 5.5.1');
    $c->close;
    $pm2->stop;
}

# --- configuration errors ------------------------------------------------
{
    my $bad = write_config(name => 'bad', smtp_port => 0,
        extra => listen_section('s', "127.0.0.1:" . free_port(), mode => 'smtps'));
    my ($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $bad, 'check-config']);
    isnt($st, 0, 'smtps without a certificate is refused');
    like($err . $out, qr/tls_cert/, '... naming tls_cert');
    $bad = write_config(name => 'bad2', smtp_port => 0,
        extra => listen_section('s', "127.0.0.1:" . free_port(), mode => 'tls'));
    ($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $bad, 'check-config']);
    like($err . $out, qr/option 'mode': expected smtp or smtps/,
        'a bad mode names the option');
}

$pm->stop;
done_testing();
