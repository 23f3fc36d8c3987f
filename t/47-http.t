# 47-http.t - the http transport: a MIME message (text, html, an
# attachment) POSTed as a CloudEvents 1.0 JSON document to an
# HTTP::Daemon on 127.0.0.1: the CloudEvent attributes, envelope,
# headers, text and html parts, attachment name and size, the
# X-Postern-Signature HMAC-SHA256 of the body; 500 deferred, 404 bounced,
# a closed port (network error) deferred.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use JSON::PP;
use Digest::SHA qw(hmac_sha256_hex);
use MIME::Base64;

require_build();
eval { require HTTP::Daemon; require HTTP::Response; 1 }
    or plan skip_all => 'HTTP::Daemon not installed (Debian libhttp-daemon-perl)';

my $dir = tempdir() . '/http';
mkdir $dir;
my $secret = 'hook-secret-' . unique_tag('s');
my $hport = free_port();
my $dead = free_port();

# the receiving server: records each request, answers by path
my $d = HTTP::Daemon->new(LocalAddr => '127.0.0.1', LocalPort => $hport, ReuseAddr => 1)
    or die "HTTP::Daemon: $!";
my $n = 0;
my $pid = fork() // die "fork: $!";
if ($pid == 0) {
    setpgrp(0, 0);
    $SIG{TERM} = 'DEFAULT';
    alarm(60);                  # never outlive the test
    while (my $c = $d->accept) {
        # one request per connection: curl runs several at once, and a
        # kept-alive connection would block this one-at-a-time server
        if (my $r = $c->get_request) {
            $c->force_last_request;
            $n++;
            my $path = $r->uri->path;
            open(my $fh, '>', "$dir/req$n.tmp");
            print $fh $r->method, " $path\n", $r->headers->as_string, "\n", $r->content;
            close $fh;
            rename("$dir/req$n.tmp", "$dir/req$n.$path" =~ s{/(\w+)$}{-$1}r);
            my $code = $path eq '/ok' ? 202 : $path eq '/gone' ? 404 : 500;
            $c->send_response(HTTP::Response->new($code, undef, undef,
                $code == 202 ? "accepted\n" : "status $code for you\n"));
        }
        $c->close;
    }
    POSIX::_exit(0);
}
Postern::Test::track($pid);
close $d;

my $extra = <<"EOT";
transport hook { type = http url = "http://127.0.0.1:$hport/ok" secret = "$secret" timeout = 5s }
transport fails { type = http url = "http://127.0.0.1:$hport/fail" }
transport gone { type = http url = "http://127.0.0.1:$hport/gone" }
transport dead { type = http url = "http://127.0.0.1:$dead/x" timeout = 3s }
route "*\@hook.example" { transport = hook }
route "*\@fail.example" { transport = fails }
route "*\@gone.example" { transport = gone }
route "*\@dead.example" { transport = dead }
EOT
my $conf = write_config(dir => "$dir/p", extra => $extra);
my $pm = start_postern($conf);
my $tag = unique_tag('http');
my $att = join('', map { chr($_ % 256) } 0 .. 1233);    # 1234 bytes
my $b64 = encode_base64($att);
my $body = <<"EOM";
This is a MIME message.

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

plain text $tag caf\xc3\xa9
--inner
Content-Type: text/html; charset=utf-8

<p>html $tag</p>
--inner--

--outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64

$b64
--outer--
EOM
my $msg = make_message(subject => "hello $tag", to => 'Hook User <h@hook.example>',
    from => 'Alice <alice@example.org>', headers => ['MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="outer"', 'Cc: c@example.net'],
    body => $body);
my ($code, $text, $q) = send_mail($pm->smtp_port, 'alice@example.org', 'h@hook.example', $msg);
is($code, 250, 'message for the http transport accepted') or diag($text);
$q //= 'NOID';

my ($req) = ();
wait_for(sub { ($req) = glob("$dir/req*-ok"); $req }, 10, 'the POST');
my $raw = slurp($req // '/nonexistent') // '';
my ($head, $json) = split /\n\n/, $raw, 2;
$head //= '';
like($head, qr{^POST /ok$}m, 'POST to the URL path');
like($head, qr{^Content-Type: application/cloudevents\+json; charset=utf-8$}mi, 'structured-mode content type');
my ($sig) = $head =~ /^X-Postern-Signature: sha256=([0-9a-f]{64})$/mi;
is($sig, hmac_sha256_hex($json // '', $secret), 'HMAC-SHA256 of the body with the secret');
my $ev = eval { decode_json($json // '') };
ok($ev, 'body is JSON') or diag($@);
$ev //= {};
is($ev->{specversion}, '1.0', 'specversion 1.0');
is($ev->{id}, $q, 'id is the queue id');
is($ev->{type}, 'org.postern.mail.delivery', 'type');
like($ev->{source} // '', qr{^postern://postern\.test/hook$}, 'source names host and transport');
like($ev->{time} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'time in RFC 3339');
is($ev->{datacontenttype}, 'application/json', 'datacontenttype');
my $data = $ev->{data} // {};
is($data->{envelope}{from}, 'alice@example.org', 'envelope from');
is_deeply($data->{envelope}{to}, ['h@hook.example'], 'envelope to');
my $e = $data->{email} // {};
is($e->{subject}, "hello $tag", 'email subject');
is($e->{from}{value}[0]{address}, 'alice@example.org', 'from address');
is($e->{from}{value}[0]{name}, 'Alice', 'from name');
is($e->{to}{value}[0]{address}, 'h@hook.example', 'to address');
is($e->{cc}{value}[0]{address}, 'c@example.net', 'cc address');
like($e->{messageId} // '', qr/\@test\.example/, 'message id');
like($e->{text} // '', qr/^plain text \Q$tag\E caf\x{e9}/, 'text part, decoded to UTF-8');
like($e->{html} // '', qr{<p>html \Q$tag\E</p>}, 'html part');
is(scalar(@{ $e->{attachments} // [] }), 1, 'one attachment');
is($e->{attachments}[0]{filename}, 'report.pdf', 'attachment name');
is($e->{attachments}[0]{size}, 1234, 'attachment size (decoded)');
is($e->{attachments}[0]{contentType}, 'application/pdf', 'attachment type');
ok((grep { lc($_->{name}) eq 'subject' } @{ $e->{headers} // [] }), 'headers listed');
is($data->{server}{queueId}, $q, 'server.queueId');
ok($pm->wait_log(qr/\Q$q\E: to=<h\@hook\.example> .*relay=http:hook .*dsn=2\.0\.0 status=sent \(HTTP 202 accepted\)/, 10),
    '202: sent') or diag($pm->log_tail(20));
unlike($pm->log_text, qr/\Q$secret\E/, 'the secret is never logged');

# ---- failures
my ($c2, $t2, $q2) = send_mail($pm->smtp_port, 'alice@example.org',
    ['x@fail.example', 'y@gone.example', 'z@dead.example'],
    make_message(subject => "fail $tag", to => 'x@fail.example'));
is($c2, 250, 'message for the failing endpoints accepted') or diag($t2);
$q2 //= 'NOID';
ok($pm->wait_log(qr/\Q$q2\E: to=<x\@fail\.example> .*dsn=4\.3\.0 status=deferred \(HTTP 500 status 500 for you\)/, 10),
    '500: deferred') or diag($pm->log_tail(20));
ok($pm->wait_log(qr/\Q$q2\E: to=<y\@gone\.example> .*dsn=5\.3\.0 status=bounced \(HTTP 404 status 404 for you\)/, 10),
    '404: bounced') or diag($pm->log_tail(20));
ok($pm->wait_log(qr/\Q$q2\E: to=<z\@dead\.example> .*dsn=4\.4\.1 status=deferred \(HTTP request failed: /, 10),
    'connection refused: deferred') or diag($pm->log_tail(20));
$pm->stop;
$pm->check_sanitizers;
done_testing();
