#!/usr/bin/perl
# 97-admin-api.t - the admin API of postern-httpd through queued's
# control socket: 401 without or with a wrong bearer token; list,
# summary, show, hold, release, flush (one and all), requeue, delete on a
# message kept in the queue by an unreachable relay; 404 for unknown or
# malformed ids, 405 with Allow for wrong methods; 404 for the whole API
# when no admin_token is configured.
use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP ();
use Postern::Test;

require_build();

my $token = 'adm-' . unique_tag('t');
my $json = JSON::PP->new->utf8;
my $ua = HTTP::Tiny->new(timeout => 10);

# api - a request to the admin API (with the token unless no_token)
sub api {
    my ($pm, $method, $path, %o) = @_;
    my %h;
    $h{Authorization} = "Bearer " . ($o{token} // $token) unless $o{no_token};
    my $r = $ua->request($method, $pm->url($path), { headers => \%h });
    $r->{json} = eval { $json->decode($r->{content} // '') };
    return $r;
}

my $conf = write_config(transport => 'relay', relay_port => free_port(),
    retry_base => '1h', retry_cap => '1h',
    extra => "http {\n\tadmin_token = \"$token\"\n}\n");
my $pm = start_postern($conf);
my ($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com',
    make_message(subject => unique_tag('adm')));
is($code, 250, 'message accepted') or diag($text);
$qid //= '';
like($qid, qr/^[0-9A-F]{16}$/, 'queue id');

# ---- authentication
my $r = api($pm, 'GET', '/api/v1/queue', no_token => 1);
is($r->{status}, 401, 'no token: 401');
like($r->{headers}{'www-authenticate'} // '', qr/^Bearer/, 'WWW-Authenticate: Bearer');
is(api($pm, 'GET', '/api/v1/queue', token => 'nope')->{status}, 401, 'wrong token: 401');
is(api($pm, 'DELETE', "/api/v1/queue/$qid", token => "${token}x")->{status}, 401,
    'wrong token on delete: 401');

# ---- list, summary, show
ok(wait_for(sub { my $l = api($pm, 'GET', '/api/v1/queue/summary');
    ($l->{json}{states}{deferred} // 0) == 1 }, 10, 'deferred'), 'the message is deferred (relay down)');
$r = api($pm, 'GET', '/api/v1/queue');
is($r->{status}, 200, 'list: 200');
is($r->{json}{count}, 1, 'list: one message');
is($r->{json}{messages}[0]{id}, $qid, 'list: the id');
is($r->{json}{messages}[0]{recipients}[0]{address}, 'rcpt@example.com', 'list: the recipient');
$r = api($pm, 'GET', '/api/v1/queue/summary');
is($r->{status}, 200, 'summary: 200');
is($r->{json}{messages}, 1, 'summary: 1 message');
is($r->{json}{recipients}, 1, 'summary: 1 recipient');
cmp_ok($r->{json}{oldest_age_seconds}, '>=', 0, 'summary: oldest_age_seconds');
$r = api($pm, 'GET', "/api/v1/queue/$qid");
is($r->{status}, 200, 'show: 200');
is($r->{json}{messages}[0]{id}, $qid, 'show: the message');
is($r->{json}{messages}[0]{client}, '127.0.0.1', 'show: details (client)');

# ---- hold, release, flush, requeue
$r = api($pm, 'POST', "/api/v1/queue/$qid/hold");
is($r->{status}, 200, 'hold: 200') or diag($r->{content});
is(api($pm, 'GET', '/api/v1/queue/summary')->{json}{states}{held}, 1, 'the recipient is held');
$r = api($pm, 'POST', "/api/v1/queue/$qid/release");
is($r->{status}, 200, 'release: 200') or diag($r->{content});
ok(!defined api($pm, 'GET', '/api/v1/queue/summary')->{json}{states}{held}, 'no longer held');
is(api($pm, 'POST', "/api/v1/queue/$qid/flush")->{status}, 200, 'flush one: 200');
is(api($pm, 'POST', '/api/v1/queue/flush')->{status}, 200, 'flush all: 200');
is(api($pm, 'POST', "/api/v1/queue/$qid/requeue")->{status}, 200, 'requeue: 200');

# ---- errors
is(api($pm, 'GET', '/api/v1/queue/0000000000000000')->{status}, 404, 'unknown id: 404');
is(api($pm, 'GET', '/api/v1/queue/not-an-id')->{status}, 404, 'malformed id: 404');
is(api($pm, 'POST', "/api/v1/queue/$qid/explode")->{status}, 404, 'unknown action: 404');
$r = api($pm, 'PUT', "/api/v1/queue/$qid");
is($r->{status}, 405, 'PUT on a message: 405');
is($r->{headers}{allow}, 'GET, DELETE', 'Allow: GET, DELETE');
$r = api($pm, 'GET', "/api/v1/queue/$qid/hold");
is($r->{status}, 405, 'GET on an action: 405');
is($r->{headers}{allow}, 'POST', 'Allow: POST');
is(api($pm, 'POST', '/api/v1/queue')->{status}, 405, 'POST on the list: 405');

# ---- delete
$r = api($pm, 'DELETE', "/api/v1/queue/$qid");
is($r->{status}, 200, 'delete: 200') or diag($r->{content});
ok(wait_for(sub { (api($pm, 'GET', '/api/v1/queue')->{json}{count} // -1) == 0 }, 5, 'empty'),
    'the queue is empty');
is(api($pm, 'DELETE', "/api/v1/queue/$qid")->{status}, 404, 'delete again: 404');
is(metric(metrics($pm->url('/metrics')), 'postern_child_restarts_total', process => 'httpd',
    index => '0'), 0, 'httpd never restarted');
is($pm->stop, 0, 'postern stops with status 0');

# ---- no token configured: no admin API
$conf = write_config(name => 'noadmin');
$pm = start_postern($conf);
is(api($pm, 'GET', '/api/v1/queue')->{status}, 404, 'no admin_token: 404');
is($pm->stop, 0, 'postern stops with status 0');
done_testing;
