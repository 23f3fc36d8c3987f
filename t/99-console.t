#!/usr/bin/perl
# 99-console.t - the operator console (GET /, postern-httpd(8)) and what
# feeds it, with one Postern and one headless Chromium (Debian package
# chromium, driven over the DevTools protocol by Postern::Browser; the
# browser part is skipped with a diagnostic when it is absent):
#  - traffic from the test: deliveries to the maildir, a destination that
#    defers (a relay to a closed port: 4.4.1, backoff), a bounce (a
#    scripted relay answering 550), on a server with a TLS listener and a
#    DKIM key;
#  - GET /api/v1/stats/history with HTTP::Tiny (as curl would): its shape,
#    the deliveries in its samples, and the ring never longer than
#    history_size however long it runs;
#  - GET / without a script and without the token: the destinations table
#    with the deferring destination first and its status code but no
#    reply text, no address, CSP hashes, a refresh only without script;
#  - the admin routes the console uses refused without the token (401);
#  - posternctl queue search, destinations and flush-destination;
#  - in Chromium: the charts' SVG paths carry non-empty series; actions
#    are refused without the token; the token entered once lives in
#    sessionStorage (no cookie); the page then updates itself from the
#    event stream without a reload; the destinations table lists the
#    deferring destination first with its error text; a search by
#    recipient finds the message, its envelope, recipient state and
#    header fields; hold then release (each confirmed) change its state
#    in posternctl queue show, a cancelled delete changes nothing, a flush
#    of the destination is confirmed and done; the TLS and DKIM tables
#    show the certificate's expiry and the key's fingerprint; screenshots
#    at desktop and phone width (PNG files in the test's temp dir, copied
#    to $POSTERN_KEEP_SCREENSHOTS when that names a directory), and at
#    phone width the page itself does not scroll sideways.
use strict;
use warnings;
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP qw(decode_json);
use Time::HiRes qw(time sleep);
use Postern::Test;
use Postern::TestSMTPD qw(make_cert listen_section);
use Postern::Browser;

require_build();

my $TOKEN = 'console-token-' . int(rand(1e9));
my $SIZE = 20;                          # history_size (1 s steps)
my $dir = tempdir();
my ($crt, $key) = make_cert($dir, 'console.postern.test');
my ($closed, $bport, $tport) = (free_port(), free_port(), free_port());
my $bouncer = scripted_smtp_server($bport, [{ RCPT => '550 5.1.1 <nobody@bounce.test>: no such user' }]);
my $extra = <<"EOT";
tls_cert = "$crt"
tls_key = "$key"
@{[ listen_section('tls', "127.0.0.1:$tport") ]}
transport dead {
	type = relay
	host = "127.0.0.1:$closed"
	timeout = 3s
}
transport bouncer {
	type = relay
	host = "127.0.0.1:$bport"
	timeout = 5s
}
route "*\@dead.test" { transport = dead }
route "*\@bounce.test" { transport = bouncer }
http {
	admin_token = "$TOKEN"
	history_size = $SIZE
	history_step = 1s
}
EOT
my $conf = write_config(name => 'console', extra => $extra, retry_base => '1m',
    retry_cap => '1m', dkim => { domain => 'example.org', generate => 1 });
my $pm = start_postern($conf);
my $DEAD = "dead:127.0.0.1:$closed";
my $auth = { Authorization => "Bearer $TOKEN" };

# ---- traffic
for my $i (1 .. 3) {
    my ($code, $text) = send_mail($pm->smtp_port, 'sender@example.org', "rcpt$i\@example.com",
        make_message(to => "rcpt$i\@example.com", subject => unique_tag('console')));
    is($code, 250, "message $i to the maildir accepted") or diag($text);
}
my ($code, $text, $dead_id) = send_mail($pm->smtp_port, 'sender@example.org', 'a@dead.test',
    make_message(to => 'a@dead.test', subject => 'for the dead destination'));
is($code, 250, 'a message for the deferring destination accepted');
($code, $text, my $bounce_id) = send_mail($pm->smtp_port, 'sender@example.org', 'nobody@bounce.test',
    make_message(to => 'nobody@bounce.test'));
is($code, 250, 'a message that will bounce accepted');
$dead_id //= 'NOID';
ok($pm->wait_log(qr/\Q$dead_id\E: to=<a\@dead\.test> .*dsn=4\.4\.1 status=deferred/, 20),
    'the dead destination defers (4.4.1)');
ok($pm->wait_log(qr/to=<nobody\@bounce\.test> .*dsn=5\.1\.1 status=bounced/, 20),
    'the scripted relay bounces (5.1.1)');
ok(wait_for(sub { (metric_sum(metrics($pm->url('/metrics')), 'postern_deliveries_total',
    status => 'delivered') // 0) >= 4 }, 20, 'deliveries'),
    'three deliveries and the bounce notice delivered');

# ---- /api/v1/stats/history: shape
sub history {
    my $r = http_get($pm->url('/api/v1/stats/history'));
    return $r->{status} == 200 ? decode_json($r->{content}) : undef;
}
# the sum of a counter over the fine samples
sub fine_sum {
    my ($x, $k) = @_;
    my $sum = 0;
    $sum += $_->{$k} for @{ $x->{fine}{samples} // [] };
    return $sum;
}
my $h = history();
ok($h, 'GET /api/v1/stats/history: 200 JSON') or BAIL_OUT('no history');
ok(wait_for(sub { ($h = history()) && fine_sum($h, 'delivered') >= 4 }, 15, 'sampled deliveries'),
    'the deliveries are in the samples (' . fine_sum($h, 'delivered') . ')');
is($h->{size}, $SIZE, 'size: history_size');
is($h->{fine}{step}, 1, 'fine step: history_step');
is($h->{fine}{span}, $SIZE, 'fine span: size x step');
is($h->{coarse}{step}, 24, 'coarse step: 24 fine steps');
my @s = @{ $h->{fine}{samples} };
ok(@s >= 1 && @s <= $SIZE, 'fine samples: 1 to size (' . scalar(@s) . ')');
my @keys = sort keys %{ $s[-1] // {} };
is_deeply(\@keys, [qw(accepted bounced deferred delivered oldest_age queue time)],
    'a sample: time, four counters, the queue, the oldest age');
is_deeply([sort keys %{ $s[-1]{queue} }], [qw(active broken deferred held pending)],
    'its queue: every state');
cmp_ok(fine_sum($h, 'deferred'), '>=', 1, 'so is the deferral');
cmp_ok(fine_sum($h, 'bounced'), '>=', 1, 'and the bounce');
cmp_ok(fine_sum($h, 'accepted'), '>=', 5, 'and the messages accepted');
ok(!grep({ $_->{queue}{deferred} < 0 } @s), 'gauges are never negative');

# ---- GET / without script or token
my $r = http_get($pm->url('/'));
is($r->{status}, 200, 'GET /: 200');
my $page = $r->{content} // '';
(my $html = $page) =~ s{<script>.*?</script>}{}s;      # the markup only
my $csp = $r->{headers}{'content-security-policy'} // '';
like($csp, qr/default-src 'none'; style-src 'sha256-[A-Za-z0-9+\/=]+'; script-src 'sha256-[A-Za-z0-9+\/=]+'; connect-src 'self'/,
    'CSP: only the page\'s own style sheet and script, connections to itself');
like($page, qr/<noscript><meta http-equiv="refresh" content="\d+"><\/noscript>/,
    'without a script the page refreshes itself');
unlike($page, qr/\bsrc=/i, 'no external asset');
my ($first) = $page =~ /<tbody>\s*<tr class="dest[^"]*" data-dest="([^"]+)"/;
is($first, $DEAD, 'destinations: the deferring destination first');
like($page, qr/data-dest="\Q$DEAD\E"><th scope="row">[^<]+<\/th><td class="num">1<\/td><td class="num">1<\/td>/,
    '  one message waiting, one deferred');
like($page, qr/data-dest="\Q$DEAD\E".*?<code>4\.4\.1<\/code> network/s, '  its status code and class');
unlike($page, qr/Connection refused|no such user/, '  no reply text without the token');
like($page, qr/data-dest="local">.*?<td class="num">0<\/td><td class="num">0<\/td><td class="num">[4-9]<\/td>/s,
    'the maildir destination: delivered in the last hour');
unlike($page, qr/\@example\.com|a\@dead\.test|sender\@example\.org/, 'no address on the page');
# first_dest - the first destination of GET /?sort=$sort
sub first_dest {
    my ($sort) = @_;
    my ($d) = (http_get($pm->url("/?sort=$sort"))->{content} // '')
        =~ /<tbody>\s*<tr class="dest[^"]*" data-dest="([^"]+)"/;
    return $d // '';
}
like(first_dest('destination'), qr/^bouncer:/, 'sorted by name: bouncer first');
is(first_dest('delivered'), 'local', 'sorted by deliveries: the maildir first');
like(first_dest('error'), qr/^(?:bouncer|dead):/, 'sorted by last error: one that failed first');
is(first_dest('nonsense'), $DEAD, 'an unknown sort: the worst first');
unlike($html, qr/data-flush-dest/, 'no actions without the token');
like($page, qr/<path class="line s-delivered" data-series="delivered" data-points="[1-9]\d*" data-max="[1-9][\d.]*"/,
    'the delivered series is drawn (server-side SVG)');
like($page, qr/id="proc-table".*httpd\[0\]/s, 'the process table');
like($page, qr/id="tls-table".*<th scope="row">tls<\/th>/s, 'the TLS table names the listener');
like($page, qr/id="dkim-table".*<code>test\._domainkey\.example\.org<\/code>/s, 'the DKIM table');

# ---- the admin routes without the token
for my $c (['POST', "/api/v1/queue/$dead_id/hold"], ['POST', "/api/v1/queue/$dead_id/release"],
    ['DELETE', "/api/v1/queue/$dead_id"], ['GET', '/api/v1/queue?q=dead'],
    ['GET', '/api/v1/queue/destinations'],
    ['POST', '/api/v1/queue/destinations/flush?destination=' . $DEAD]) {
    is(http_get($pm->url($c->[1]), method => $c->[0])->{status}, 401, "$c->[0] $c->[1] without the token: 401");
}
my $dj = HTTP::Tiny->new->get($pm->url('/api/v1/queue/destinations'), { headers => $auth });
is($dj->{status}, 200, 'GET /api/v1/queue/destinations with the token: 200');
my $dests = eval { decode_json($dj->{content})->{destinations} } // [];
my ($drow) = grep { $_->{destination} eq $DEAD } @$dests;
like($drow->{last_error} // '', qr/Connection refused/, '  with the last error text');
cmp_ok($drow->{backoff_until} // 0, '>', time() - 5, '  and its backoff');

# ---- posternctl
my $ctl = bin('posternctl');
my ($st, $out, $err) = run_cmd([$ctl, '-c', $conf, 'queue', 'search', 'A@DEAD.test']);
is($st, 0, 'posternctl queue search: exit 0') or diag($err);
like($out, qr/^\Q$dead_id\E /m, '  finds the message by recipient (any case)');
($st, $out) = run_cmd([$ctl, '-c', $conf, 'queue', 'search', 'nobody-here']);
like($out, qr/Mail queue is empty/, '  and nothing for a text no message holds');
($st, $out, $err) = run_cmd([$ctl, '-c', $conf, 'queue', 'destinations']);
like($out, qr/^\Q$DEAD\E\s+1\s+1\s+0\s+0\s+0\/\d+ /m, 'posternctl queue destinations') or diag($out . $err);
($st, $out, $err) = run_cmd([$ctl, '-c', $conf, 'queue', 'flush-destination', 'mx:nowhere.test']);
is($st >> 8, 1, 'flush-destination of an unknown destination: exit 1');
like($err, qr/no such destination/, '  no such destination');

# ---- in Chromium
SKIP: {
    my $b = Postern::Browser->new(dir => $dir);
    skip('chromium not installed (Debian package chromium)', 40) unless $b;
    browser_tests($b);
    $b->quit;
}

# ---- the ring keeps its bound
ok(wait_for(sub { my $x = history(); $x && @{ $x->{fine}{samples} } == $SIZE }, $SIZE + 15, 'a full ring'),
    "the fine ring fills up to $SIZE samples");
sleep(3);
$h = history();
is(scalar @{ $h->{fine}{samples} }, $SIZE, "3 s later still $SIZE: never more");
my @t = map { $_->{time} } @{ $h->{fine}{samples} };
ok(!grep({ $t[$_] < $t[$_ - 1] } 1 .. $#t), 'samples in time order, oldest first')
    or diag("@t");
cmp_ok($t[-1] - $t[0], '>=', $SIZE - 4, 'and about one step apart');
cmp_ok(abs($t[-1] - time()), '<=', 3, 'the newest sample is recent');
cmp_ok(scalar @{ $h->{coarse}{samples} }, '<=', $SIZE, 'the coarse ring within its bound too');

is($pm->stop, 0, 'postern stops with status 0');
done_testing;

# queue_state - the state of the dead message's recipient in posternctl
sub queue_state {
    my ($st, $out) = run_cmd([$ctl, '-c', $conf, 'queue', 'show', $dead_id]);
    return $out =~ /<a\@dead\.test> (\w+)/ ? $1 : "?($st)";
}

# cert_end - the certificate's notAfter as an ISO 8601 UTC date
sub cert_end {
    my ($st, $out) = run_cmd(['openssl', 'x509', '-noout', '-enddate', '-in', $crt]);
    my %mon = (Jan => 1, Feb => 2, Mar => 3, Apr => 4, May => 5, Jun => 6, Jul => 7,
        Aug => 8, Sep => 9, Oct => 10, Nov => 11, Dec => 12);
    my ($m, $d, $hms, $y) = $out =~ /notAfter=(\w{3})\s+(\d+) (\d\d:\d\d:\d\d) (\d{4})/;
    return $m ? sprintf('%04d-%02d-%02dT%sZ', $y, $mon{$m}, $d, $hms) : '?';
}

# dkim_fp - the first 16 hex digits of SHA-256 of the key's p= (DER)
sub dkim_fp {
    my $k = conf_info($conf)->{dkim}{key};
    my ($st, $der) = run_cmd(['openssl', 'pkey', '-in', $k, '-pubout', '-outform', 'DER']);
    return substr(sha256_hex($der), 0, 16);
}

# burst - two more deliveries to the maildir, now
sub burst {
    my ($tag) = @_;
    send_mail($pm->smtp_port, 'sender@example.org', "$tag$_\@example.com",
        make_message(to => "$tag$_\@example.com")) for 1 .. 2;
}

# drawn - JavaScript: the delivered series of the fine ring has a point
# above zero (the page refreshes itself every few seconds)
sub drawn {
    return q{(function () {
        var p = document.querySelector('#chart-fine-rates path[data-series=delivered]');
        return !!p && +p.dataset.max > 0; })()};
}

# browser_tests - everything the page does in a browser
sub browser_tests {
    my ($b) = @_;
    $b->viewport(1280, 900);
    burst('fresh');
    ok($b->navigate($pm->url('/')), 'Chromium loads the console');
    my $series = $b->wait_js(q{(function () {
        var p = document.querySelector('#chart-fine-rates path[data-series=delivered]');
        return p && +p.dataset.points > 0 && +p.dataset.max > 0 && /^M[\d.]+ [\d.]+( L[\d.]+ [\d.]+)+$/.test(p.getAttribute('d'))
            ? p.dataset.points : 0; })()});
    ok($series, "the delivered series has points ($series) and a real path");
    my $n = $b->js(q{Array.prototype.filter.call(document.querySelectorAll('svg path[data-series]'),
        function (p) { return +p.dataset.points > 0; }).length});
    cmp_ok($n, '>=', 8, "series with points in the charts ($n)");
    is($b->js('document.getElementById("browser-open").hidden'), JSON::PP::true,
        'without the token: no queue browser');

    # actions refused without the token (the script's own action path)
    my $res = $b->js(qq{window.postern.act('POST', '/api/v1/queue/$dead_id/hold', 'Hold', null)
        .then(function (r) { return r.status; })});
    is($res, 401, 'an action without the token is refused (401)');
    my @d = $b->dialogs;
    is(scalar @d, 1, '  after asking for confirmation');
    is(queue_state(), 'deferred', '  and the message is still deferred');

    # the token, entered once
    $b->js(qq{document.getElementById('token').value = '$TOKEN';
        document.getElementById('tokenform').requestSubmit(); 1});
    ok($b->wait_js(q{!document.getElementById('browser-open').hidden}), 'the token unlocks the queue browser');
    is($b->js('sessionStorage.getItem("postern.token")'), $TOKEN, '  kept in sessionStorage');
    is($b->js('document.cookie'), '', '  never in a cookie');
    ok($b->wait_js(q{/live/.test(document.getElementById('live').textContent)}), '  the event stream is open');
    ok($b->wait_js(qq{(function () { var r = document.querySelector('#dest-table tbody tr');
        return r && r.getAttribute('data-dest') === '$DEAD' && /Connection refused/.test(r.textContent); })()}),
        'the deferring destination first, with its error');

    # live: a new message shows up without a reload
    $b->js('window.consoleMarker = 42; 1');
    my $before = $b->js('+document.body.getAttribute("data-refreshes")');
    my (undef, undef, $live_id) = send_mail($pm->smtp_port, 'sender@example.org', 'live@example.com',
        make_message(to => 'live@example.com'));
    ok($b->wait_js(qq{document.getElementById('events').textContent.indexOf('$live_id') >= 0}),
        'a new message appears in the recent events');
    is($b->js('window.consoleMarker'), 42, '  without a reload of the page');
    cmp_ok($b->js('+document.body.getAttribute("data-refreshes")'), '>', $before, '  the sections were swapped');
    like($b->js('document.getElementById("events").textContent'), qr/live\@example\.com/,
        '  with its recipient (the token is sent)');

    # the queue browser
    $b->js(q{document.getElementById('q').value = 'a@dead.test';
        document.getElementById('search').requestSubmit(); 1});
    ok($b->wait_js(qq{!!document.querySelector('#results tr[data-id="$dead_id"]')}), 'a search by recipient finds it');
    $b->js(qq{document.querySelector('#results tr[data-id="$dead_id"]').click(); 1});
    ok($b->wait_js(qq{document.getElementById('message').getAttribute('data-id') === '$dead_id'
        && !!document.getElementById('header-table')}), 'its details open');
    my $detail = $b->js('document.getElementById("message").textContent');
    like($detail, qr/<sender\@example\.org>/, '  the envelope sender');
    like($b->js('document.getElementById("rcpt-table").textContent'), qr/a\@dead\.test.*deferred.*4\.4\.1.*Connection refused/s,
        '  the recipient, its state and last reply');
    like($b->js('document.getElementById("header-table").textContent'), qr/Subjectfor the dead destination/,
        '  the header fields');
    for my $a (['Hold', 'held'], ['Release', 'deferred']) {
        $b->js(qq{Array.prototype.find.call(document.querySelectorAll('#message button'),
            function (x) { return x.textContent === '$a->[0]'; }).click(); 1});
        ok($b->wait_js(qq{/^200 $a->[0]/.test(document.body.getAttribute('data-last-action') || '')}),
            "$a->[0]: 200");
        like(join('|', $b->dialogs), qr/^\Q$a->[0] message $dead_id?\E$/, "  asked for confirmation first");
        ok(wait_for(sub { queue_state() eq $a->[1] }, 10, $a->[1]), "  posternctl queue show: $a->[1]");
    }
    $b->accept_dialogs(0);
    $b->js(q{Array.prototype.find.call(document.querySelectorAll('#message button'),
        function (x) { return x.textContent === 'Delete'; }).click(); 1});
    ok($b->wait_js(q{document.getElementById('action-note').textContent === 'cancelled'}), 'a cancelled delete');
    is(queue_state(), 'deferred', '  leaves the message in the queue');
    $b->accept_dialogs(1);
    ok($b->wait_js(qq{!!document.querySelector('button[data-flush-dest="$DEAD"]')}),
        'the destination has a flush button') or diag($b->js('document.getElementById("destinations").innerHTML'));
    $b->js(qq{document.querySelector('button[data-flush-dest="$DEAD"]').click(); 1});
    ok($b->wait_js(qq{/^200 Flush every deferred message for \Q$DEAD\E/.test(document.body.getAttribute('data-last-action') || '')}),
        'flush of the destination: confirmed and done');
    ok($pm->wait_log(qr/flush: every deferred recipient for \Q$DEAD\E is due now/, 5), '  queued flushed it');

    # TLS and DKIM
    my $end = cert_end();
    like($b->js(q{document.querySelector('#tls-table .expiry time').getAttribute('datetime')}),
        qr/^\Q$end\E$/, "the certificate's expiry ($end)");
    my $fp = dkim_fp();
    like($b->js('document.getElementById("dkim-table").textContent'), qr/rsa 2048 bits\Q$fp\E/,
        "the DKIM key: rsa 2048 bits, fingerprint $fp");

    # screenshots, with traffic just before
    burst('shot');
    ok($b->wait_js(drawn()), 'deliveries drawn before the screenshot');
    my $desk = "$dir/console-desktop.png";
    cmp_ok($b->screenshot($desk), '>', 50_000, "a desktop screenshot ($desk)");
    $b->viewport(390, 844, mobile => 1);
    $b->navigate($pm->url('/'));
    ok($b->wait_js(q{window.consoleMarker === undefined && document.readyState === 'complete'
        && !!document.getElementById('dest-table')}), 'the page loaded again at phone width');
    cmp_ok($b->js('document.documentElement.scrollWidth'), '<=', 390, '  does not scroll sideways');
    my $phone = "$dir/console-phone.png";
    cmp_ok($b->screenshot($phone), '>', 50_000, "a phone screenshot ($phone)");
    ok($b->wait_js(drawn()), '  with the deliveries drawn');
    if ($ENV{POSTERN_KEEP_SCREENSHOTS} && -d $ENV{POSTERN_KEEP_SCREENSHOTS}) {
        system('cp', $desk, $phone, $ENV{POSTERN_KEEP_SCREENSHOTS});
    }
}
