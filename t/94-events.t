#!/usr/bin/perl
# 94-events.t - GET /api/v1/events, the live Server-Sent Events stream of
# queue events: 401 (with WWW-Authenticate) without or with a wrong bearer
# token, 404 when no admin_token is configured; with the token, a message
# sent during the test shows up as "queued" and "delivered" events with
# ids; Last-Event-ID replays missed events; a reader that never reads and
# readers that hang up do not disturb httpd or delivery.
use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(time);
use Postern::Test;

require_build();

my $token = 'tok-' . unique_tag('t');
my $conf = write_config(extra => "http {\n\tadmin_token = \"$token\"\n}\n");
my $pm = start_postern($conf);
my $json = JSON::PP->new->utf8;

# stream - open the event stream with extra header lines; the socket
sub stream {
    my (@hdr) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $pm->http_port,
        Proto => 'tcp', Timeout => 5) or die "connect: $!";
    print $s join("\r\n", "GET /api/v1/events HTTP/1.1", "Host: x", @hdr, '', '');
    return $s;
}

# read_until - read from $s (dechunked text is not needed: SSE lines are
# matched in the raw bytes) until $re matches or $secs pass; all text
sub read_until {
    my ($s, $buf, $re, $secs) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + $secs;
    while ($$buf !~ $re && time < $deadline) {
        last unless $sel->can_read($deadline - time);
        my $n = sysread($s, my $chunk, 65536);
        last unless $n;
        $$buf .= $chunk;
    }
    return $$buf =~ $re;
}

# events - the decoded data lines of a raw stream, with their ids
sub events {
    my ($raw) = @_;
    my @e;
    while ($raw =~ /^id: (\d+)\r?\ndata: (\{.*\})\r?$/mg) {
        my ($id, $d) = ($1, eval { $json->decode($2) });
        push @e, { %$d, _id => $id } if $d;
    }
    return @e;
}

# ---- authentication
my $r = http_get($pm->url('/api/v1/events'));
is($r->{status}, 401, 'no token: 401');
like($r->{headers}{'www-authenticate'} // '', qr/^Bearer/, 'WWW-Authenticate: Bearer');
like($r->{content} // '', qr/"error"/, 'JSON error');
my $ua = HTTP::Tiny->new(timeout => 5);
$r = $ua->get($pm->url('/api/v1/events'), { headers => { Authorization => "Bearer ${token}x" } });
is($r->{status}, 401, 'wrong token: 401');
$r = $ua->get($pm->url('/api/v1/events'), { headers => { Authorization => "Basic $token" } });
is($r->{status}, 401, 'not a bearer token: 401');

# ---- a message sent now appears in the stream
my $s = stream("Authorization: Bearer $token");
my $raw = '';
ok(read_until($s, \$raw, qr/retry: 2000\r?\n/, 5), 'stream opened');
like($raw, qr{^HTTP/1\.1 200 }, 'status 200');
like($raw, qr{^Content-Type: text/event-stream\r?$}mi, 'Content-Type: text/event-stream');
my $slow = stream("Authorization: Bearer $token");    # never read
my $tag = unique_tag('ev');
my ($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com',
    make_message(subject => $tag));
is($code, 250, 'message accepted') or diag($text);
$qid //= '';
ok(read_until($s, \$raw, qr/"event":"delivered"[^\n]*"id":"\Q$qid\E"|"id":"\Q$qid\E"[^\n]*"event":"delivered"/, 10),
    'the delivered event arrived') or diag($raw);
my @ev = grep { ($_->{id} // '') eq $qid } events($raw);
my %kinds = map { $_->{event} => $_ } @ev;
ok($kinds{queued}, 'a queued event for the message');
ok($kinds{delivered}, 'a delivered event for the message');
is($kinds{delivered}{rcpt}, 'rcpt@example.com', 'delivered event names the recipient');
cmp_ok($kinds{delivered}{_id}, '>', $kinds{queued}{_id}, 'event ids increase');
close($s);

# ---- Last-Event-ID replays what a reconnecting client missed
my $last = $kinds{queued}{_id} - 1;
$s = stream("Authorization: Bearer $token", "Last-Event-ID: $last");
$raw = '';
ok(read_until($s, \$raw, qr/"event":"delivered"/, 5), 'replayed up to the delivered event');
my @re = events($raw);
is($re[0]{_id}, $last + 1, 'replay starts after Last-Event-ID');
close($s);

# ---- the never-reading client does not hold anything up
for my $i (1 .. 10) {
    send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com',
        make_message(subject => "bulk $i $tag"));
}
ok(wait_for(sub { scalar(grep { (slurp($_) // '') =~ /bulk 10 \Q$tag\E/ } maildir_files($pm->maildir)) },
    10, 'bulk delivered'), 'delivery goes on with a stalled event reader');
is(http_get($pm->url('/healthz'))->{status}, 200, '/healthz answers');
close($slow);
send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com', make_message(subject => "after $tag"));
sleep(0.5);
is(metric(metrics($pm->url('/metrics')), 'postern_child_restarts_total', process => 'httpd',
    index => '0'), 0, 'httpd never restarted');
is($pm->stop, 0, 'postern stops with status 0');

# ---- without admin_token the stream does not exist
$conf = write_config(name => 'noadmin');
$pm = start_postern($conf);
is(http_get($pm->url('/api/v1/events'))->{status}, 404, 'no admin_token: 404');
is($pm->stop, 0, 'postern stops with status 0');
done_testing;
