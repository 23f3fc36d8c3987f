#!/usr/bin/perl
# 93-send-limits.t - the send API's abuse controls: nonces (GET
# /api/v1/nonce; hash = hex SHA-256(nonce . secret); 403 when the hash is
# wrong, the nonce reused, unknown or expired; 400 when missing), the
# per-client rate limit (429 with Retry-After, allowed again after it),
# and the client address taken from client_ip_header only when the peer
# is a trusted proxy (checked through the limiter and the Received: line).
use strict;
use warnings;
use Test::More;
use Digest::SHA qw(sha256_hex);
use HTTP::Tiny;
use JSON::PP ();
use Time::HiRes qw(sleep time);
use Postern::Test;

require_build();

my $json = JSON::PP->new->utf8->canonical;
my $ua = HTTP::Tiny->new(timeout => 10);
my $secret = 's3cr3t-' . unique_tag('k');

# req - an HTTP request with headers and an optional JSON body
sub req {
    my ($method, $url, %o) = @_;
    my %h = %{ $o{headers} // {} };
    my %arg = (headers => \%h);
    if (exists $o{json}) {
        $arg{content} = $json->encode($o{json});
        $h{'Content-Type'} = 'application/json';
    }
    my $r = $ua->request($method, $url, \%arg);
    $r->{json} = eval { $json->decode($r->{content} // '') };
    return $r;
}

# ---- server B: nonces, a 2 s rate limit, a trusted proxy on loopback
my $conf = write_config(name => 'b', extra => <<"EOF");
http {
	send_api = yes
	allow_list = { "contact\@example.com" }
	rate_limit = 2s
	client_ip_header = "X-Real-IP"
	trusted_proxies = { "127.0.0.0/8" }
	require_nonce = yes
	nonce_secret = "$secret"
	nonce_max_age = 1s
}
EOF
my $pm = start_postern($conf);
my $send = $pm->url('/api/v1/send');

# nonce - a fresh nonce from the server
sub nonce {
    my $r = req('GET', $pm->url('/api/v1/nonce'));
    return $r->{json}{nonce} // '';
}

# msg - a valid request body with a nonce and the hash of it (or $hash)
sub msg {
    my ($n, $hash) = @_;
    return { to => 'contact@example.com', subject => 'limits ' . unique_tag('l'),
        body => 'hello', nonce => $n, hash => $hash // sha256_hex($n . $secret) };
}

# ip - the proxy header for a client address
sub ip { return (headers => { 'X-Real-IP' => $_[0] }) }

my $n = nonce();
like($n, qr/^[0-9a-f]{32}$/, 'GET /api/v1/nonce: 32 hex digits');
isnt(nonce(), $n, 'each nonce is new');
my $r = req('POST', $send, ip('192.0.2.1'), json => msg($n));
is($r->{status}, 202, 'nonce + right hash: 202') or diag($r->{content});
my $qid = $r->{json}{id} // 'none';

$r = req('POST', $send, ip('192.0.2.2'), json => msg($n));
is($r->{status}, 403, 'the same nonce again: 403');
is($r->{json}{field}, 'nonce', '... naming nonce');

my $n2 = nonce();
$r = req('POST', $send, ip('192.0.2.3'), json => msg($n2, sha256_hex($n2 . 'wrong')));
is($r->{status}, 403, 'wrong hash: 403');
is($r->{json}{field}, 'hash', '... naming hash');
$r = req('POST', $send, ip('192.0.2.4'), json => msg($n2));
is($r->{status}, 403, 'a nonce spent by a wrong hash cannot be used again');

$r = req('POST', $send, ip('192.0.2.5'), json => msg('0' x 32));
is($r->{status}, 403, 'a nonce never issued: 403');

my $n3 = nonce();
$r = req('POST', $send, ip('192.0.2.6'), json => msg($n3, uc sha256_hex($n3 . $secret)));
is($r->{status}, 202, 'upper-case hex hash accepted') or diag($r->{content});

# credentials are compared by length: a NUL and more after a right value
my $n4 = nonce();
$r = req('POST', $send, ip('192.0.2.30'), json => msg($n4, sha256_hex($n4 . $secret) . "\0junk"));
is($r->{status}, 400, 'a right hash followed by NUL and junk: 400');
is($r->{json}{field}, 'hash', '... naming hash');
$r = req('POST', $send, ip('192.0.2.31'), json => { %{ msg($n4) }, nonce => "$n4\0junk" });
is($r->{status}, 400, 'a right nonce followed by NUL and junk: 400');

my $body = msg(nonce());
delete $body->{hash};
$r = req('POST', $send, ip('192.0.2.7'), json => $body);
is($r->{status}, 400, 'missing hash: 400');
is($r->{json}{field}, 'hash', '... naming hash');
$body = msg('x');
delete $body->{nonce};
$r = req('POST', $send, ip('192.0.2.8'), json => $body);
is($r->{status}, 400, 'missing nonce: 400');
is($r->{json}{field}, 'nonce', '... naming nonce');

my $old = nonce();
sleep(2.2);
$r = req('POST', $send, ip('192.0.2.9'), json => msg($old));
is($r->{status}, 403, 'a nonce older than nonce_max_age: 403');
like($r->{json}{error} // '', qr/expired|unknown/, '... expired') or diag($r->{content});

# ---- rate limiting per client address (from the trusted proxy's header)
$r = req('POST', $send, ip('198.51.100.1'), json => msg(nonce()));
is($r->{status}, 202, 'first send from 198.51.100.1: 202') or diag($r->{content});
my $t0 = time;
my $kept = nonce();
$r = req('POST', $send, ip('198.51.100.1'), json => msg($kept));
is($r->{status}, 429, 'second send within rate_limit: 429');
like($r->{headers}{'retry-after'} // '', qr/^[12]$/, 'Retry-After: 1 or 2 seconds');
ok(defined $r->{json}{error}, '429 has a JSON error');
$r = req('POST', $send, ip('198.51.100.2'), json => msg($kept));
is($r->{status}, 202, 'another client address is not limited (and the 429 did not spend the nonce)')
    or diag($r->{content});
$r = req('POST', $send, ip('198.51.100.1'), json => { to => 'contact@example.com' });
is($r->{status}, 400, 'a malformed request is answered 400, not 429');
sleep(2.1 - (time - $t0)) if time - $t0 < 2.1;
$r = req('POST', $send, ip('198.51.100.1'), json => msg(nonce()));
is($r->{status}, 202, 'allowed again after Retry-After') or diag($r->{content});
$r = req('POST', $send, ip('2001:db8::1'), json => msg(nonce()));
is($r->{status}, 202, 'IPv6 address in the header') or diag($r->{content});
$r = req('POST', $send, ip('2001:DB8:0::1'), json => msg(nonce()));
is($r->{status}, 429, 'the same IPv6 address written differently is the same client');
$r = req('POST', $send, ip('not-an-ip'), json => msg(nonce()));
is($r->{status}, 202, 'a junk header falls back to the proxy address') or diag($r->{content});
$r = req('POST', $send, ip('junk'), json => msg(nonce()));
is($r->{status}, 429, '... which is then limited like the proxy');

# the Received: line names the address from the header
my $file;
wait_for(sub { ($file) = grep { (slurp($_) // '') =~ /id \Q$qid\E;/ } maildir_files($pm->maildir);
    $file }, 10, 'first message delivered');
like(slurp($file // '/nonexistent') // '', qr/^Received: from \[192\.0\.2\.1\] /m,
    'Received: from the client address the proxy gave');
my $mx = metrics($pm->url('/metrics'));
cmp_ok(metric($mx, 'postern_send_api_requests_total', result => 'rate_limited') // 0, '>=', 2,
    'send_api_requests_total{result="rate_limited"}');
is($pm->stop, 0, 'postern stops with status 0');

# ---- server C: the peer is not a trusted proxy, so the header is ignored
$conf = write_config(name => 'c', extra => <<'EOF');
http {
	send_api = yes
	allow_list = { "contact@example.com" }
	rate_limit = 1m
	client_ip_header = "X-Real-IP"
	trusted_proxies = { "192.0.2.0/24" }
}
EOF
$pm = start_postern($conf);
$send = $pm->url('/api/v1/send');
my %ok = (to => 'contact@example.com', subject => 'untrusted', body => 'x');
$r = req('POST', $send, ip('203.0.113.1'), json => \%ok);
is($r->{status}, 202, 'untrusted peer: first send 202') or diag($r->{content});
$r = req('POST', $send, ip('203.0.113.2'), json => \%ok);
is($r->{status}, 429, 'a different header does not help an untrusted peer: 429');
cmp_ok($r->{headers}{'retry-after'} // 0, '>=', 55, 'Retry-After close to the 1m interval');
is($pm->stop, 0, 'postern stops with status 0');

# ---- configuration errors name the file, line and option
my $ctl = bin('posternctl');
my ($dst, $dout, $derr) = run_cmd([$ctl, '-c', conf_info($conf)->{path} // $conf, 'dump-config']);
is($dst >> 8, 0, 'dump-config exits 0') or diag($derr);
like($dout, qr/^http\.send_api = yes$/m, 'dump-config shows the http section');
$conf = write_config(name => 'secret', extra => "http {\n\tnonce_secret = \"$secret\"\n"
    . "\tadmin_token = \"tok-$secret\"\n}\n");
($dst, $dout, $derr) = run_cmd([$ctl, '-c', $conf, 'dump-config']);
like($dout, qr/^http\.nonce_secret = \(set\)$/m, 'dump-config: nonce_secret only as (set)');
like($dout, qr/^http\.admin_token = \(set\)$/m, 'dump-config: admin_token only as (set)');
unlike($dout, qr/\Q$secret\E/, 'dump-config never prints the secrets');
for my $case (
    [ "http {\n\tsend_api = yes\n}", qr/:\d+: option 'allow_list': expected at least one recipient/ ],
    [ "http {\n\tsend_api = yes\n\tallow_list = { \"a\@example.com\" }\n\trequire_nonce = yes\n}",
      qr/:\d+: option 'nonce_secret': expected a shared secret/ ],
    [ "http {\n\tallow_list = { \"not an address\" }\n}", qr/:\d+: option 'allow_list': expected an address/ ],
    [ "http {\n\tsender = \"bad\@\"\n}", qr/:\d+: option 'sender': expected an address/ ],
    [ "http {\n\ttrusted_proxies = { \"300.1.2.3/8\" }\n}", qr/:\d+: option 'trusted_proxies': expected a network/ ],
    [ "http {\n\trate_limit = soon\n}", qr/:\d+: option 'rate_limit': expected a duration/ ],
    [ "http {\n\tmax_body = big\n}", qr/:\d+: option 'max_body': expected a size/ ],
    [ "http {\n\tclient_ip_header = \"X Real IP\"\n}", qr/:\d+: option 'client_ip_header': expected a header field name/ ],
) {
    my ($text, $re) = @$case;
    my $bad = write_config(name => 'bad', extra => $text);
    my ($st, $out, $err) = run_cmd([$ctl, '-c', $bad, 'check-config']);
    is($st >> 8, 78, "bad http section refused (exit 78): " . ($text =~ s/\s+/ /gr));
    like($err, $re, '... with the option named') or diag($err);
}
done_testing;
