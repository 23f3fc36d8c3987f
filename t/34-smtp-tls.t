# 34-smtp-tls.t - the outbound SMTP client's TLS, AUTH and session
# features against scripted peers (Postern::MxPeer) with a self-signed
# certificate made here with the openssl CLI:
# - mx: tls = may uses STARTTLS and logs the unverified session;
#   tls_policy level verify defers 4.7.5 without the CA and delivers with
#   ca_file; level encrypt defers 4.7.4 when STARTTLS is not offered;
# - relay (smarthost): STARTTLS + AUTH PLAIN with auth_password_file and
#   a verified certificate; implicit TLS (tls_implicit, SMTPS) + AUTH
#   LOGIN; a wrong password defers (4.7.8); the certificate is verified by
#   default (no ca_file: deferred 4.7.5); the password is never logged;
# - one connection carries several messages (RSET between them);
# - an 8-bit message to a peer without 8BITMIME is deferred (4.6.3);
# - may: a failed handshake is retried on the same host without TLS.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::MxPeer;

require_build();

my $dir = tempdir() . '/tls';
mkdir $dir;
my ($cert, $key) = ("$dir/cert.pem", "$dir/key.pem");
my ($st, $out, $err) = run_cmd(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
    '-keyout', $key, '-out', $cert, '-days', '2', '-subj', '/CN=mx.tls.test',
    '-addext', 'subjectAltName=DNS:mx.tls.test,IP:127.0.0.1']);
is($st, 0, 'self-signed certificate made') or diag($err);
chmod 0644, $key;
spit("$dir/password", "s3cr3t-pw\n");

my $port = free_port();
my $dnsport = free_port();
my ($rport, $sport, $bport) = (free_port(), free_port(), free_port());
my %tlsopt = (starttls => 1, cert => $cert, key => $key);
my %peer = (
    tls => Postern::MxPeer->start('127.0.0.20', $port, %tlsopt),
    plain => Postern::MxPeer->start('127.0.0.21', $port),
    no8bit => Postern::MxPeer->start('127.0.0.22', $port,
        ehlo => ['PIPELINING', 'SIZE 1000000']),
    reuse => Postern::MxPeer->start('127.0.0.23', $port),
    broken => Postern::MxPeer->start('127.0.0.24', $port, starttls => 1,
        cert => "$dir/missing.pem", key => "$dir/missing.pem"),
    relay => Postern::MxPeer->start('127.0.0.1', $rport, %tlsopt,
        auth => ['relayuser', 's3cr3t-pw']),
    smtps => Postern::MxPeer->start('127.0.0.1', $sport, implicit => 1,
        cert => $cert, key => $key, auth => ['relayuser', 's3cr3t-pw'],
        ehlo => ['8BITMIME', 'ENHANCEDSTATUSCODES']),
);
dns_server($dnsport, {
    (map { ("$_.test" => { MX => '10 mx.tls.test' }) } qw(may verify verifyca)),
    'mx.tls.test' => { A => '127.0.0.20' },
    'encrypt.test' => { MX => '10 plain.tls.test' },
    'plain.tls.test' => { A => '127.0.0.21' },
    'eight.test' => { MX => '10 no8bit.tls.test' },
    'no8bit.tls.test' => { A => '127.0.0.22' },
    'reuse.test' => { MX => '10 reuse.tls.test' },
    'reuse.tls.test' => { A => '127.0.0.23' },
    'broken.test' => { MX => '10 broken.tls.test' },
    'broken.tls.test' => { A => '127.0.0.24' },
});

my $conf = write_config(default_transport => 'mx', extra => <<"EOF");
transport mx {
	type = mx
	port = $port
	timeout = 5s
}
transport smarthost {
	type = relay
	host = "127.0.0.1:$rport"
	ca_file = "$cert"
	auth_user = relayuser
	auth_password_file = "$dir/password"
	reuse_max = 1
}
transport smtps {
	type = relay
	host = "127.0.0.1:$sport"
	tls_implicit = yes
	ca_file = "$cert"
	auth_user = relayuser
	auth_password = "s3cr3t-pw"
}
transport badauth {
	type = relay
	host = "127.0.0.1:$rport"
	ca_file = "$cert"
	auth_user = relayuser
	auth_password = "wrong-pw"
	reuse_max = 1
}
transport unverified {
	type = relay
	host = "127.0.0.1:$rport"
	reuse_max = 1
}
route "*\@relay.test" { transport = smarthost }
route "*\@smtps.test" { transport = smtps }
route "*\@badauth.test" { transport = badauth }
route "*\@unverified.test" { transport = unverified }
tls_policy verify.test { level = verify }
tls_policy verifyca.test {
	level = verify
	ca_file = "$cert"
}
tls_policy encrypt.test { level = encrypt }
dns_server = "127.0.0.1:$dnsport"
dns_timeout = 1s
EOF
my $pm = start_postern($conf);

# submit - one message to $rcpt; returns its quoted queue id
sub submit {
    my ($rcpt, %m) = @_;
    my ($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org', $rcpt,
        make_message(to => $rcpt, subject => unique_tag('tls'), %m));
    is($code, 250, "accepted for $rcpt") or diag($text);
    return quotemeta($qid // 'NOID');
}

# logged - wait for the first delivery line of $q to $rcpt matching $re
sub logged {
    my ($q, $rcpt, $re, $name) = @_;
    my $r = quotemeta($rcpt);
    ok($pm->wait_log(qr/$q: to=<$r> from=<sender\@example\.org> .*?attempt=1 $re/, 15),
        $name) or diag(join("\n", grep { /\Q$rcpt\E/ } split /\n/, $pm->log_text));
}

# ---- mx, tls = may: STARTTLS against a self-signed certificate
my $q = submit('a@may.test');
logged($q, 'a@may.test', qr/dsn=2\.0\.0 status=sent \(250 .*\[TLS=TLSv1\.[23] cipher=\S+ verified=no/,
    'may: delivered over TLS, the certificate is not verified, and the log says so');
like($peer{tls}->log_text, qr/^\d+ TLS: TLSv1[._][23]$/m, 'the peer saw the TLS handshake');
like($pm->log_text, qr/mx\.tls\.test\[127\.0\.0\.20\]:$port: TLS TLSv1\.[23] cipher=\S+ verified=no/,
    'a log line per TLS session: version, cipher, verification');

# ---- may: a failed handshake is retried once without TLS
$q = submit('k@broken.test');
logged($q, 'k@broken.test', qr/dsn=2\.0\.0 status=sent .*\[TLS=none\]/,
    'may: STARTTLS offered but the handshake fails: delivered in plain text');
like($pm->log_text, qr/TLS handshake with broken\.tls\.test\S+ failed: .*; retrying without TLS/,
    'the failed handshake and the retry are logged');

# ---- tls_policy verify: no trust anchor -> deferred; with ca_file -> sent
$q = submit('b@verify.test');
logged($q, 'b@verify.test', qr/dsn=4\.7\.5 status=deferred \(server certificate not verified for mx\.tls\.test/,
    'verify without the CA: deferred 4.7.5');
$q = submit('c@verifyca.test');
logged($q, 'c@verifyca.test', qr/dsn=2\.0\.0 status=sent .*verified=yes\]/,
    'verify with ca_file: delivered, verified=yes');

# ---- tls_policy encrypt against a peer without STARTTLS
$q = submit('d@encrypt.test');
logged($q, 'd@encrypt.test', qr/dsn=4\.7\.4 status=deferred \(TLS is required, but was not offered by plain\.tls\.test/,
    'encrypt without STARTTLS: deferred 4.7.4');
unlike($peer{plain}->log_text, qr/C: MAIL/, 'nothing was sent in plain text');

# ---- relay: STARTTLS, verified certificate, AUTH PLAIN from a file
$q = submit('e@relay.test');
logged($q, 'e@relay.test', qr/dsn=2\.0\.0 status=sent .*verified=yes\]/,
    'smarthost: delivered over verified TLS');
like($peer{relay}->log_text, qr/^\d+ AUTH: ok relayuser PLAIN$/m,
    'the smarthost checked AUTH PLAIN credentials');

# ---- relay: implicit TLS (SMTPS) with AUTH LOGIN (the peer offers both;
# PLAIN is preferred, so this one checks the TLS-first path)
$q = submit('f@smtps.test');
logged($q, 'f@smtps.test', qr/dsn=2\.0\.0 status=sent .*verified=yes\]/,
    'implicit TLS smarthost: delivered');
like($peer{smtps}->log_text, qr/^1 TLS: TLSv1[._][23]\n1 C: EHLO/m,
    'implicit TLS: the handshake comes before any SMTP');
like($peer{smtps}->log_text, qr/AUTH: ok relayuser/, 'implicit TLS: authenticated');

# ---- relay: wrong password, unverified certificate
$q = submit('g@badauth.test');
logged($q, 'g@badauth.test', qr/dsn=4\.7\.8 status=deferred \(authentication failed: 535/,
    'a refused password defers (4.7.8), never bounces');
$q = submit('h@unverified.test');
logged($q, 'h@unverified.test', qr/dsn=4\.7\.5 status=deferred \(server certificate not verified/,
    'relay certificates are verified by default');
my $log = $pm->log_text;
unlike($log, qr/s3cr3t|wrong-pw/, 'no password in the log');

# ---- connection reuse: three messages, one connection, RSET between
for my $i (1 .. 3) {
    $q = submit("r$i\@reuse.test");
    logged($q, "r$i\@reuse.test", qr/dsn=2\.0\.0 status=sent/, "reuse message $i sent");
}
is(scalar $peer{reuse}->messages, 3, 'the peer received three messages');
is($peer{reuse}->connections, 1, 'over one connection');
my @rset = $peer{reuse}->log_text =~ /^1 C: RSET$/mg;
is(scalar @rset, 2, 'RSET before each further message');
my $m = metrics($pm->url('/metrics'));
cmp_ok(metric($m, 'postern_smtp_client_connections_total', how => 'reused') // 0, '>=', 2,
    'metrics: reused connections counted');
cmp_ok(metric($m, 'postern_smtp_client_connections_total', how => 'opened') // 0, '>=', 8,
    'metrics: opened connections counted');
cmp_ok(metric($m, 'postern_smtp_client_tls_sessions_total', verified => 'yes') // 0, '>=', 3,
    'metrics: verified TLS sessions counted');
cmp_ok(metric($m, 'postern_smtp_client_tls_sessions_total', verified => 'no') // 0, '>=', 2,
    'metrics: unverified TLS sessions counted');

# ---- 8-bit body to a peer without 8BITMIME: deferred
$q = submit('i@eight.test', body => "caf\xc3\xa9\n");
logged($q, 'i@eight.test', qr/dsn=4\.6\.3 status=deferred \(the message has 8-bit content and no8bit\.tls\.test\S+ does not offer 8BITMIME/,
    '8-bit message, no 8BITMIME: deferred 4.6.3');
unlike($peer{no8bit}->log_text, qr/C: MAIL/, 'nothing was sent to it');

$pm->stop;
done_testing();
