#!/usr/bin/perl
# 92-readyz.t - GET /readyz (200 when every child is up, the queue link
# is up, the spool is writable, the LMDB index accessible and the spool's
# file system above ready_min_free; otherwise 503 naming each problem),
# /healthz unaffected; the send API and the seed's paths are 404 unless
# configured; `promtool check metrics` accepts /metrics (skipped with a
# diagnostic when promtool is not installed).
use strict;
use warnings;
use Test::More;
use JSON::PP ();
use Postern::Test;

require_build();

my $json = JSON::PP->new;

# get - GET a path; the response with ->{json}
sub get {
    my ($pm, $path) = @_;
    my $r = http_get($pm->url($path));
    $r->{json} = eval { $json->decode($r->{content} // '') };
    return $r;
}

my $conf = write_config(name => 'ready');
my $pm = start_postern($conf);

my $r = get($pm, '/readyz');
is($r->{status}, 200, '/readyz 200') or diag($r->{content});
is($r->{json}{status}, 'ready', '{"status":"ready"}');
is_deeply($r->{json}{checks}, { map { $_ => 'ok' } qw(children queue spool index disk) },
    'every check ok');

# ---- an unwritable spool directory makes it 503, and back
my $msgdir = $pm->spool . '/msg';
my $mode = (stat $msgdir)[2] & 07777;
chmod(0500, $msgdir) or diag("chmod $msgdir: $!");
$r = get($pm, '/readyz');
is($r->{status}, 503, 'spool msg/ not writable: 503');
is($r->{json}{status}, 'unavailable', '{"status":"unavailable"}');
is($r->{json}{checks}{spool}, 'failed', 'checks.spool failed');
ok(grep({ /msg\/ is not writable/ } @{ $r->{json}{problems} // [] }), 'problems names msg/')
    or diag($r->{content});
is(http_get($pm->url('/healthz'))->{status}, 200, '/healthz is still 200 (liveness)');
chmod($mode, $msgdir);
is(get($pm, '/readyz')->{status}, 200, 'writable again: 200');

# ---- send API paths do not exist unless configured
for my $p ('/api/v1/send', '/api/v1/nonce', '/send', '/nonce', '/health') {
    is(http_get($pm->url($p))->{status}, 404, "$p: 404 without send_api/compat_paths");
}

# ---- promtool
SKIP: {
    my $promtool = (grep { -x "$_/promtool" } split(/:/, $ENV{PATH} // ''))[0];
    skip('promtool not installed (Debian package prometheus)', 2) unless $promtool;
    my $m = http_get($pm->url('/metrics'));
    my $file = tempdir() . '/metrics.txt';
    spit($file, $m->{content} // '');
    my $out = `$promtool/promtool check metrics < '$file' 2>&1`;
    is($?, 0, 'promtool check metrics exits 0') or diag($out);
    is($out, '', 'promtool has nothing to complain about') or diag($out);
}
is($pm->stop, 0, 'postern stops with status 0');

# ---- a free-space floor above what the disk has
$conf = write_config(name => 'full', extra => "http {\n\tready_min_free = 1000000G\n}\n");
$pm = start_postern($conf);
$r = get($pm, '/readyz');
is($r->{status}, 503, 'free space below ready_min_free: 503');
is($r->{json}{checks}{disk}, 'failed', 'checks.disk failed');
ok(grep({ /disk space low: \d+ bytes free, ready_min_free is \d+/ } @{ $r->{json}{problems} // [] }),
    'problems says how much is free') or diag($r->{content});
is(http_get($pm->url('/healthz'))->{status}, 200, '/healthz 200');
is($pm->stop, 0, 'postern stops with status 0');
done_testing;
