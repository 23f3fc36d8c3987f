#!/usr/bin/perl
# 91-send-api.t - the JSON send API of postern-httpd (seed 000):
# POST /api/v1/send -> 202 {"id"} and the message arrives in the maildir,
# From: the configured sender, Reply-To: the visitor, DKIM-signed (Mail::DKIM
# verifies it against a loopback DNS server); HTML makes a
# multipart/alternative; a UTF-8 subject becomes encoded words; every 400
# (invalid JSON, missing fields, wrong types, body too large, invalid
# addresses, CR/LF header injection) names the field and queues nothing;
# 403 for a recipient off the allow-list; 405 with Allow; CORS preflight
# and Access-Control-Allow-Origin only for listed origins; the seed's
# compatibility paths /send (204), /nonce, /health (204); clients that
# hang up mid-request; 503 + Retry-After when queued dies under a waiting
# request, and recovery; the send_api_requests_total counters.
use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(decode_base64);
use Time::HiRes qw(sleep time);
use Postern::Test;

require_build();

my $json = JSON::PP->new->utf8->canonical;
my $ua = HTTP::Tiny->new(timeout => 10);

# req - an HTTP request with headers and an optional JSON (or raw) body
sub req {
    my ($method, $url, %o) = @_;
    my %h = %{ $o{headers} // {} };
    my %arg = (headers => \%h);
    if (exists $o{json}) {
        $arg{content} = ref $o{json} ? $json->encode($o{json}) : $o{json};
        $h{'Content-Type'} //= 'application/json';
    }
    my $r = $ua->request($method, $url, \%arg);
    $r->{json} = eval { $json->decode($r->{content} // '') };
    return $r;
}

my $conf = write_config(
    dkim => { domain => 'example.com', selector => 'form', generate => 1 },
    extra => <<'EOF');
http {
	send_api = yes
	compat_paths = yes
	allow_list = { "Contact@example.com", "@example.org" }
	sender = "forms@example.com"
	rate_limit = 0
	max_body = 2K
	cors_origins = { "https://site.example" }
}
EOF
my $pm = start_postern($conf);
my $send = $pm->url('/api/v1/send');

# find_mail - the maildir file containing $tag (bounded wait)
sub find_mail {
    my ($tag) = @_;
    my $file;
    wait_for(sub {
        ($file) = grep { (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files($pm->maildir);
        return $file;
    }, 10, "maildir message with $tag");
    return defined $file ? slurp($file) : undef;
}

# b64_parts - the decoded base64 bodies of a message, in order
sub b64_parts {
    my ($m) = @_;
    my @p;
    while ($m =~ /Content-Transfer-Encoding: base64\r?\n\r?\n((?:[A-Za-z0-9+\/=]+\r?\n)+)/g) {
        push @p, decode_base64($1);
    }
    return @p;
}

# ---- a message through the queue, DKIM-signed
my $rec = $pm->wait_log(qr/publish form\._domainkey\.example\.com\. IN TXT "([^"]+)"/, 5);
ok($rec, 'DKIM key generated for the sender domain') or diag($pm->log_tail(20));
my $tag = unique_tag('send');
my $r = req('POST', $send, json => { to => 'contact@EXAMPLE.com', subject => "Hello $tag",
    body => "Line one\nLine two $tag\n", from => 'visitor@example.net' });
is($r->{status}, 202, 'POST /api/v1/send: 202') or diag($r->{content});
like($r->{json}{id} // '', qr/^[0-9A-F]{16}$/, '{"id": QUEUEID}');
like($r->{headers}{'content-type'} // '', qr{^application/json}, 'JSON reply');
my $qid = $r->{json}{id} // 'none';
my $m = find_mail("Hello $tag") // '';
ok($m, 'the message arrived in the maildir');
like($m, qr/^From: forms\@example\.com\r?$/m, 'From: the configured sender');
like($m, qr/^To: contact\@example\.com\r?$/m, 'To: the recipient');
like($m, qr/^Reply-To: visitor\@example\.net\r?$/m, 'Reply-To: the visitor\'s from');
(my $unfolded = $m) =~ s/\r?\n[ \t]+/ /g;     # GMime folds where it likes
like($unfolded, qr/^Received: from \[127\.0\.0\.1\] by postern\.test \(Postern\) with HTTP id \Q$qid\E;/m,
    'Received: names the client and the queue id');
like($m, qr/^Message-ID: <\Q$qid\E\.[0-9a-f]+\@postern\.test>/m, 'Message-ID');
like($m, qr/^Date: \w{3}, /m, 'Date');
my ($text) = b64_parts($m);
is($text, "Line one\r\nLine two $tag\r\n", 'body (base64, CR LF line ends)');
SKIP: {
    skip('Mail::DKIM not installed', 2) unless eval { require Mail::DKIM::Verifier; 1 };
    like($m, qr/^DKIM-Signature:.*\bd=example\.com;/ms, 'DKIM-Signature d=example.com');
    my $port = free_port();
    dns_server($port, { 'form._domainkey.example.com' => { TXT => $rec // '' } });
    Mail::DKIM::DNS::resolver(dkim_resolver($port));
    (my $crlf = $m) =~ s/\r?\n/\r\n/g;
    my $v = Mail::DKIM::Verifier->new;
    $v->PRINT($crlf);
    $v->CLOSE;
    is($v->result, 'pass', 'Mail::DKIM verifies the signature') or diag($v->result_detail);
}

# ---- HTML, reply_to, a UTF-8 subject, a domain entry on the allow-list
$tag = unique_tag('html');
$r = req('POST', $send, json => { to => 'anyone@example.org', subject => "Gr\x{fc}\x{df}e $tag \x{2603}",
    body => "plain $tag", html => "<p>html $tag</p>", from => 'v@example.net',
    reply_to => 'answer@example.net' });
is($r->{status}, 202, 'HTML message: 202') or diag($r->{content});
$m = find_mail("anyone\@example.org") // '';
like($m, qr/^Content-Type: multipart\/alternative; boundary="([^"]+)"/m, 'multipart/alternative');
like($m, qr/^Reply-To: answer\@example\.net\r?$/m, 'reply_to wins over from');
my @parts = b64_parts($m);
is_deeply(\@parts, ["plain $tag\r\n", "<p>html $tag</p>\r\n"], 'text and HTML parts');
my ($subj) = $m =~ /^Subject: (.*(?:\r?\n[ \t].*)*)/m;
my $dec = join('', map { decode_base64($_) } ($subj // '') =~ /=\?UTF-8\?B\?([^?]+)\?=/g);
utf8::decode($dec);
is($dec, "Gr\x{fc}\x{df}e $tag \x{2603}", 'UTF-8 subject as RFC 2047 encoded words');

# a long UTF-8 subject: several encoded words, each cut between characters
$tag = unique_tag('long');
my $long = "$tag " . ("\x{2603}\x{e9}" x 40);
$r = req('POST', $send, json => { to => 'contact@example.com', subject => $long, body => 'x' });
is($r->{status}, 202, 'long UTF-8 subject: 202') or diag($r->{content});
my $lid = $r->{json}{id} // 'none';
my $lfile;
wait_for(sub { ($lfile) = grep { (slurp($_) // '') =~ /id \Q$lid\E;/ } maildir_files($pm->maildir);
    $lfile }, 10, 'long subject delivered');
$m = slurp($lfile // '/nonexistent') // '';
($subj) = $m =~ /^(Subject: .*(?:\r?\n[ \t].*)*)/m;
my @words = ($subj // '') =~ /=\?UTF-8\?B\?([^?]+)\?=/g;
cmp_ok(scalar @words, '>', 2, 'split into ' . scalar(@words) . ' encoded words');
my @bad_words = grep { my $w = decode_base64($_); !utf8::decode($w) } @words;
is(scalar @bad_words, 0, 'each encoded word is whole UTF-8 characters');
ok(!grep({ length > 78 } split /\r?\n/, $subj // ''), 'no header line over 78 characters') or diag($subj // '');
$dec = join('', map { decode_base64($_) } @words);
utf8::decode($dec);
is($dec, $long, 'the words decode to the subject');

# ---- 400: each names the field; nothing is queued
my $before = scalar maildir_files($pm->maildir);
my %ok = (to => 'contact@example.com', subject => 'bad', body => 'x');
my @bad = (
    [ 'not JSON', '{"to":', undef ],
    [ 'a JSON array', '[1,2]', undef ],
    [ 'duplicate keys', '{"to":"contact@example.com","to":"x@example.com","subject":"s","body":"b"}', undef ],
    (map { my $f = $_; [ "missing $f", { map { $_ => $ok{$_} } grep { $_ ne $f } keys %ok }, $f ] }
        qw(to subject body)),
    [ 'to is a number', { %ok, to => 5 }, 'to' ],
    [ 'subject is an object', { %ok, subject => { a => 1 } }, 'subject' ],
    [ 'body is an array', { %ok, body => ['x'] }, 'body' ],
    [ 'html is true', { %ok, html => JSON::PP::true }, 'html' ],
    [ 'body over max_body', { %ok, body => 'x' x 2049 }, 'body' ],
    [ 'html over max_body', { %ok, html => 'x' x 2049 }, 'html' ],
    [ 'invalid to', { %ok, to => 'not-an-address' }, 'to' ],
    [ 'to with a source route', { %ok, to => '@evil.example:contact@example.com' }, 'to' ],
    [ 'to with a percent hack', { %ok, to => 'x%evil.example@example.com' }, 'to' ],
    [ 'invalid from', { %ok, from => 'a@b@c' }, 'from' ],
    [ 'invalid reply_to', { %ok, reply_to => 'nobody' }, 'reply_to' ],
    [ 'CR LF in to', { %ok, to => "contact\@example.com\r\nBcc: evil\@example.net" }, 'to' ],
    [ 'LF in subject', { %ok, subject => "hi\nBcc: evil\@example.net" }, 'subject' ],
    [ 'CR in subject', { %ok, subject => "hi\rBcc: evil\@example.net" }, 'subject' ],
    [ 'CR LF in from', { %ok, from => "v\@example.net\r\nBcc: evil\@example.net" }, 'from' ],
    [ 'LF in reply_to', { %ok, reply_to => "v\@example.net\nBcc: evil\@example.net" }, 'reply_to' ],
    [ 'NUL in subject', { %ok, subject => "a\x{0}b" }, 'subject' ],
    [ 'tab-free control char in subject', { %ok, subject => "a\x{1b}b" }, 'subject' ],
);
for my $b (@bad) {
    my ($name, $body, $field) = @$b;
    $r = req('POST', $send, json => $body);
    is($r->{status}, 400, "$name: 400");
    ok(defined $r->{json}{error}, "$name: JSON error") or diag($r->{content});
    is($r->{json}{field}, $field, "$name: names the field " . ($field // '(none)'))
        if defined $field;
}
sleep(0.5);
is(scalar maildir_files($pm->maildir), $before, 'no refused request was queued');
ok(!grep({ (slurp($_) // '') =~ /evil/ } maildir_files($pm->maildir)),
    'no Bcc: evil@ anywhere in the maildir');

# ---- 403, 405, 404
$r = req('POST', $send, json => { %ok, to => 'someone@example.net' });
is($r->{status}, 403, 'recipient off the allow-list: 403');
is($r->{json}{field}, 'to', '403 names the field to');
$r = req('POST', $send, json => { %ok, to => 'other@example.com' });
is($r->{status}, 403, 'other address of an allowed address\'s domain: 403');
$r = req('GET', $send);
is($r->{status}, 405, 'GET /api/v1/send: 405');
is($r->{headers}{allow}, 'POST, OPTIONS', 'Allow: POST, OPTIONS');
$r = req('GET', $pm->url('/api/v1/nope'));
is($r->{status}, 404, 'unknown API path: 404');

# ---- CORS
$r = req('OPTIONS', $send, headers => { Origin => 'https://site.example',
    'Access-Control-Request-Method' => 'POST', 'Access-Control-Request-Headers' => 'content-type' });
is($r->{status}, 204, 'preflight from a listed origin: 204');
is($r->{headers}{'access-control-allow-origin'}, 'https://site.example', 'ACAO: the origin');
like($r->{headers}{'access-control-allow-methods'} // '', qr/\bPOST\b/, 'Allow-Methods has POST');
like($r->{headers}{'access-control-allow-headers'} // '', qr/content-type/i, 'Allow-Headers has Content-Type');
$r = req('OPTIONS', $send, headers => { Origin => 'https://evil.example',
    'Access-Control-Request-Method' => 'POST' });
is($r->{status}, 403, 'preflight from an unlisted origin: 403');
ok(!defined $r->{headers}{'access-control-allow-origin'}, 'no ACAO for an unlisted origin');
$r = req('POST', $send, headers => { Origin => 'https://site.example' },
    json => { %ok, subject => 'cors ' . unique_tag('c') });
is($r->{status}, 202, 'POST from a listed origin: 202');
is($r->{headers}{'access-control-allow-origin'}, 'https://site.example', 'POST reply has ACAO');
$r = req('GET', $pm->url('/api/v1/nonce'), headers => { Origin => 'https://evil.example' });
is($r->{status}, 200, 'GET nonce from an unlisted origin still answers');
ok(!defined $r->{headers}{'access-control-allow-origin'}, '... without ACAO');

# ---- the seed's paths
$r = req('POST', $pm->url('/send'), json => { %ok, subject => 'compat ' . unique_tag('c') });
is($r->{status}, 204, 'compat POST /send: 204');
is($r->{content} // '', '', '204 has no body');
$r = req('GET', $pm->url('/nonce'));
is($r->{status}, 200, 'compat GET /nonce: 200');
like($r->{json}{nonce} // '', qr/^[0-9a-f]{32}$/, '{"nonce": 32 hex digits}');
$r = req('GET', $pm->url('/health'));
is($r->{status}, 204, 'compat GET /health: 204');
$r = req('POST', $pm->url('/send'), json => { %ok, to => 'x@example.net' });
is($r->{status}, 403, 'compat /send refuses like the API');

# ---- clients that leave before the answer do not hurt
my $payload = $json->encode({ %ok, subject => 'gone ' . unique_tag('g') });
for (1 .. 20) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $pm->http_port,
        Proto => 'tcp') or next;
    print $s "POST /api/v1/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        . "Content-Length: " . length($payload) . "\r\n\r\n$payload";
    close($s);
}
sleep(0.5);
$r = req('POST', $send, json => { %ok, subject => 'after ' . unique_tag('a') });
is($r->{status}, 202, 'after 20 clients hung up mid-request: 202');
is(metric(metrics($pm->url('/metrics')), 'postern_child_restarts_total', process => 'httpd',
    index => '0'), 0, 'httpd never restarted');

# ---- queued dies while a request waits for its spool file: 503, then
# the master restarts queued and sending works again
my ($qpid) = $pm->child_pids('queued');
ok($qpid, 'found queued') or diag(join(',', $pm->children));
SKIP: {
    skip('no queued pid', 5) unless $qpid;
    kill('STOP', $qpid);
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $pm->http_port,
        Proto => 'tcp', Timeout => 5);
    my $p = $json->encode({ %ok, subject => 'lost ' . unique_tag('q') });
    print $s "POST /api/v1/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        . "Content-Length: " . length($p) . "\r\nConnection: close\r\n\r\n$p";
    sleep(0.3);
    kill('KILL', $qpid);
    my $resp = '';
    my $sel = IO::Select->new($s);
    my $deadline = time + 10;
    while (time < $deadline && $sel->can_read(1)) {
        my $n = sysread($s, my $buf, 4096);
        last unless $n;
        $resp .= $buf;
    }
    close($s);
    like($resp, qr{^HTTP/1\.1 503 }, 'waiting request: 503 when queued dies') or diag($resp);
    like($resp, qr{^Retry-After: 30\r?$}mi, '... with Retry-After');
    like($resp, qr{"error":"queue unavailable"}, '... and a JSON error');
    ok(wait_for(sub { req('GET', $pm->url('/readyz'))->{status} == 200 }, 15, 'ready again'),
        '/readyz 200 again once queued is back');
    $r = req('POST', $send, json => { %ok, subject => 'back ' . unique_tag('b') });
    is($r->{status}, 202, 'sending works again') or diag($r->{content});
}

# ---- counters
my $mx = metrics($pm->url('/metrics'));
cmp_ok(metric($mx, 'postern_send_api_requests_total', result => 'accepted') // 0, '>=', 4,
    'send_api_requests_total{result="accepted"}');
cmp_ok(metric($mx, 'postern_send_api_requests_total', result => 'bad_request') // 0, '>=',
    scalar @bad, 'send_api_requests_total{result="bad_request"}');
cmp_ok(metric($mx, 'postern_send_api_requests_total', result => 'forbidden') // 0, '>=', 3,
    'send_api_requests_total{result="forbidden"}');

is($pm->stop, 0, 'postern stops with status 0');
done_testing;
