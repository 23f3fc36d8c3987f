# 25-quickstart.t - the README's quick start, on conf/quickstart.conf
# itself: run from a fresh directory as the README's command does (only
# its two ports swapped for free ones), swaks sends one message, and it
# appears DKIM-signed under ./run/mail/new/ with a development key
# generated on first start whose record the log prints; /metrics counts it.
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use Time::HiRes qw(time);
use Postern::Test;

require_build();
plan skip_all => 'swaks not installed' unless -x '/usr/bin/swaks';
eval { require Mail::DKIM::Verifier; 1 } or plan skip_all => 'Mail::DKIM not installed';

my $orig = slurp(srcdir() . '/conf/quickstart.conf') // '';
like($orig, qr/"127\.0\.0\.1:2525"/, 'quickstart.conf listens on 127.0.0.1:2525');
like($orig, qr/"127\.0\.0\.1:8025"/, 'quickstart.conf serves HTTP on 127.0.0.1:8025');

# The quick start runs from the top of the tree with libexec_dir ".":
# give it a tree of its own with the built programs linked in.
my $top = tempdir() . '/tree';
mkdir "$top" or die "mkdir $top: $!";
mkdir "$top/conf" or die;
for my $p (qw(postern postern-smtpd postern-queued postern-delivery postern-httpd)) {
    symlink(bin($p), "$top/$p") or die "symlink $p: $!";
}
my ($smtp, $http) = (free_port(), free_port());
(my $text = $orig) =~ s/127\.0\.0\.1:2525/127.0.0.1:$smtp/g;
$text =~ s/127\.0\.0\.1:8025/127.0.0.1:$http/g;
spit("$top/conf/quickstart.conf", $text);
chmod 0755, $top;

my $cwd = getcwd();
chdir $top or die "chdir $top: $!";
my $pm = start_postern('conf/quickstart.conf', wait => 0, log => "$top/postern.log");
chdir $cwd or die;
@$pm{qw(smtp_port http_port maildir)} = ($smtp, $http, "$top/run/mail");
ok($pm->wait_ready(15), 'postern is up on the quick-start configuration')
    or diag($pm->log_tail(30));

my $key = "$top/run/dkim/example.com.dev.key";
ok(-f $key, 'the development DKIM key was generated on first start');
my $rec = $pm->wait_log(qr/publish dev\._domainkey\.example\.com\. IN TXT "([^"]+)"/, 5);
like($rec // '', qr/^v=DKIM1; k=rsa; p=/, 'its public key is printed as a TXT record');

my $t0 = time();
my ($st, $out, $err) = run_cmd(['/usr/bin/swaks', '--server', "127.0.0.1:$smtp",
    '--from', 'a@example.com', '--to', 'b@example.net'], 30);
is($st, 0, 'swaks exits 0') or diag("$out\n$err");
like($out, qr/<-\s+250 2\.0\.0 Ok: queued as ([0-9A-F]{16})/, 'swaks sees 250 queued as ID');
my @files;
ok(wait_for(sub { @files = maildir_files("$top/run/mail"); scalar @files }, 10,
    'the message in ./run/mail/new'), 'the message appears under ./run/mail/new/');
diag(sprintf('quick start: swaks start to file in run/mail/new took %.0f ms',
    (time() - $t0) * 1000));
is(scalar @files, 1, 'exactly one message file');

my $msg = slurp($files[0] // '/nonexistent') // '';
like($msg, qr/^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com; s=dev;/m,
    'the message is DKIM-signed for example.com with selector dev');
my $dnsport = free_port();
dns_server($dnsport, { 'dev._domainkey.example.com' => { TXT => $rec // '' } });
Mail::DKIM::DNS::resolver(dkim_resolver($dnsport));
(my $crlf = $msg) =~ s/\r?\n/\r\n/g;
my $v = Mail::DKIM::Verifier->new;
$v->PRINT($crlf);
$v->CLOSE;
is($v->result, 'pass', 'Mail::DKIM verifies it against the printed key')
    or diag($v->result_detail);

my $m = metrics($pm->url('/metrics'));
is($m->{postern_messages_accepted_total}, 1, '/metrics counts the accepted message');
ok(wait_for(sub {
    metric_sum($m = metrics($pm->url('/metrics')), 'postern_deliveries_total',
        status => 'delivered') // 0
}, 5, 'delivered counter'), '/metrics counts the delivery');
is($m->{postern_dkim_signatures_total}, 1, '/metrics counts the signature');

is($pm->stop, 0, 'postern stops with status 0');
done_testing;
