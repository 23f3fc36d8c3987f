#!/usr/bin/perl
# 96-status-page.t - GET /, the HTML status page: 200 text/html with a
# Content-Security-Policy, a self-refresh without script and no external
# asset, the queue figures and
# delivery counters matching /metrics after real messages, per-minute
# rates, the process list and recent events without addresses; then the
# page opened in headless Chromium (Debian package chromium; skipped with
# a diagnostic when absent): the rendered DOM shows the figures and the
# screenshot is a real rendering, not a blank page.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $conf = write_config(name => 'status');
my $pm = start_postern($conf);
my $tag = unique_tag('status');
for my $i (1 .. 3) {
    my ($code, $text) = send_mail($pm->smtp_port, 'sender@example.org', 'rcpt@example.com',
        make_message(subject => "$tag $i"));
    is($code, 250, "message $i accepted") or diag($text);
}
ok(wait_for(sub { (metric_sum(metrics($pm->url('/metrics')), 'postern_deliveries_total',
    status => 'delivered') // 0) >= 3 }, 10, 'delivered'), 'three deliveries');
# a message leaves the queue just after its last delivery is counted
ok(wait_for(sub { (metric_sum(metrics($pm->url('/metrics')), 'postern_queue_messages')
    // 1) == 0 }, 10, 'queue empty'), 'queue empty');

my $r = http_get($pm->url('/'));
is($r->{status}, 200, 'GET / 200');
like($r->{headers}{'content-type'} // '', qr{^text/html; charset=utf-8}, 'text/html');
like($r->{headers}{'content-security-policy'} // '', qr/default-src 'none'/, 'CSP');
my $page = $r->{content} // '';
like($page, qr/<meta http-equiv="refresh" content="\d+">/, 'refreshes itself');
unlike($page, qr/\bsrc=/i, 'no external asset');
(my $markup = $page) =~ s{<script>.*?</script>}{}s;
unlike($markup, qr/href="(?!\?sort=\w+#destinations")/, 'no link but its own sort orders');
is(() = $page =~ /<script>/g, 1, 'one inline script');
like($page, qr/<td id="delivered-total">3<\/td>/, 'deliveries: 3');
like($page, qr/<td id="queue-messages">0<\/td>/, 'queue: 0 messages');
like($page, qr/<td id="accepted-total">3<\/td>/, 'accepted: 3');
like($page, qr/<td id="delivered-rate">\d+\.\d<\/td>/, 'a delivered-per-minute rate');
like($page, qr/all processes up/, 'processes up');
like($page, qr/<td>delivered<\/td>/, 'recent events listed');
unlike($page, qr/rcpt\@example\.com|sender\@example\.org/, 'no addresses on the page');
is(http_get($pm->url('/'), method => 'POST', content => 'x')->{status}, 405, 'POST /: 405');

SKIP: {
    my ($chromium) = grep { -x } map { my $d = $_; map { "$d/$_" } qw(chromium chromium-browser) }
        split(/:/, $ENV{PATH} // '');
    skip('chromium not installed (Debian package chromium)', 4) unless $chromium;
    my $dir = tempdir();
    my @cmd = ($chromium, '--headless', '--no-sandbox', '--disable-gpu',
        '--disable-dev-shm-usage', "--user-data-dir=$dir/profile", '--hide-scrollbars',
        '--window-size=900,1000');
    my ($st, $dom, $err) = run_cmd([@cmd, '--dump-dom', $pm->url('/')], 60);
    like($dom, qr/<td id="delivered-total">3<\/td>/, 'Chromium renders the delivery count')
        or diag("exit $st: $err");
    ($st) = run_cmd([@cmd, "--screenshot=$dir/page.png", $pm->url('/')], 60);
    my $png = slurp("$dir/page.png") // '';
    like(substr($png, 0, 8), qr/^\x89PNG/, 'a PNG screenshot of the page');
    run_cmd([@cmd, "--screenshot=$dir/blank.png", 'about:blank'], 60);
    my $blank = slurp("$dir/blank.png") // '';
    ok(length($blank) > 0, 'a screenshot of a blank page to compare with');
    cmp_ok(length($png), '>', length($blank) + 2000,
        'the page screenshot has content (text and tables), unlike a blank page')
        or diag('page ' . length($png) . ' bytes, blank ' . length($blank));
}
is($pm->stop, 0, 'postern stops with status 0');
done_testing;
