# 40-dkim.t - DKIM signing end to end. With generate = true the master
# makes a key (mode 0600) and logs the TXT record; a message From: the
# signing domain lands in the maildir with a DKIM-Signature that Mail::DKIM
# verifies ("pass") against that record served by a loopback DNS server;
# a tampered copy fails; other domains are not signed; with several From:
# mailboxes the Sender: domain signs. A dkim section whose
# key cannot be read keeps delivery from starting: the log says "cannot
# read key" and /healthz stays 503.
use strict;
use warnings;
use Test::More;
use JSON::PP ();
use Postern::Test;

require_build();
eval { require Mail::DKIM::Verifier; 1 }
    or plan skip_all => 'Mail::DKIM not installed';

my $conf = write_config(dkim => { domain => 'example.com', selector => 'test',
    generate => 1 });
my $key = conf_info($conf)->{dkim}{key};
my $pm = start_postern($conf);

# ---- the generated key and the published record
ok(-f $key, 'key file generated');
is(sprintf('%04o', (stat $key)[2] & 07777), '0600', 'key file mode 0600');
like(slurp($key) // '', qr/^-----BEGIN PRIVATE KEY-----/, 'PKCS#8 PEM');
my $rec = $pm->wait_log(qr/dkim: example\.com selector test key \S+; publish test\._domainkey\.example\.com\. IN TXT "([^"]+)"/, 5);
ok($rec, 'the log prints the TXT record to publish') or diag($pm->log_tail(20));
like($rec // '', qr/^v=DKIM1; k=rsa; p=[A-Za-z0-9+\/]+=*$/, 'TXT record syntax');

my $dnsport = free_port();
my $dns = dns_server($dnsport, { 'test._domainkey.example.com' => { TXT => $rec // '' } });
Mail::DKIM::DNS::resolver(dkim_resolver($dnsport));

# find_mail - the maildir file containing $tag (bounded wait)
sub find_mail {
    my ($tag) = @_;
    my $file;
    wait_for(sub {
        ($file) = grep { (slurp($_) // '') =~ /\Q$tag\E(?![\w-])/ } maildir_files($pm->maildir);
        return $file;
    }, 10, "maildir message with $tag");
    return $file;
}

# verify - Mail::DKIM result and details for a message (LF line ends)
sub verify {
    my ($msg) = @_;
    (my $crlf = $msg) =~ s/\r?\n/\r\n/g;
    my $v = Mail::DKIM::Verifier->new;
    $v->PRINT($crlf);
    $v->CLOSE;
    return ($v->result, $v->result_detail);
}

# ---- a signed message verifies
my $tag = unique_tag('dkim');
my ($code, $text) = send_mail($pm->smtp_port, 'alice@example.com', 'bob@example.net',
    make_message(from => 'Alice <alice@EXAMPLE.com>', to => 'bob@example.net',
        subject => $tag, body => "Signed body $tag\nsecond line\n"));
is($code, 250, 'message accepted') or diag($text);
my $f = find_mail($tag);
my $m = slurp($f // '/nonexistent') // '';
like($m, qr/^DKIM-Signature:/m, 'DKIM-Signature header present');
my ($sig) = $m =~ /^(DKIM-Signature:.*?\n)(?=\S)/ms;
$sig //= '';
(my $flat = $sig) =~ s/\s+//g;
like($flat, qr/\ba=rsa-sha256;/, 'a=rsa-sha256');
like($flat, qr/\bc=relaxed\/relaxed;/, 'c=relaxed/relaxed');
like($flat, qr/\bd=example\.com;/, 'd=example.com (From: domain, lower-cased)');
like($flat, qr/\bs=test;/, 's=test');
my ($h) = $flat =~ /\bh=([^;]+)/;
my @from = grep { lc $_ eq 'from' } split /:/, ($h // '');
cmp_ok(scalar @from, '>=', 2, 'From is oversigned') or diag("h=$h");
my ($res, $detail) = verify($m);
is($res, 'pass', 'Mail::DKIM verifies the signature') or diag($detail);

# ---- tampered copies fail
(my $body_t = $m) =~ s/Signed body/Signed b0dy/;
is((verify($body_t))[0], 'fail', 'tampered body fails');
(my $subj_t = $m) =~ s/^Subject: /Subject: Re: /m;
is((verify($subj_t))[0], 'fail', 'tampered Subject fails');

# ---- another domain is not signed
my $otag = unique_tag('nodkim');
($code) = send_mail($pm->smtp_port, 'carol@example.org', 'bob@example.net',
    make_message(from => 'carol@example.org', subject => $otag));
is($code, 250, 'other-domain message accepted');
my $om = slurp(find_mail($otag) // '/nonexistent') // '';
ok($om ne '' && $om !~ /^DKIM-Signature:/m, 'other domain: no DKIM-Signature');

# ---- "the From: domain" (common/addrlist.c): several From: mailboxes ->
# the Sender:'s domain; a quoted "@" or a comment is no domain
my @domain_cases = (
    [ "From: carol\@example.org, dave\@example.net\nSender: Ed <ed\@Example.COM>",
        1, 'several From: mailboxes: signed for the Sender: domain' ],
    [ "From: \"alice\@example.com\" <carol\@example.org> (alice\@example.com)",
        0, 'an "@" in a quoted display name or comment is not the domain' ],
    [ "From: carol\@example.org, alice\@example.com", 0,
        'several From: mailboxes and no Sender: not signed for the second' ],
);
for my $dc (@domain_cases) {
    my ($from, $signed, $name) = @$dc;
    my $t = unique_tag('dom');
    ($code) = send_mail($pm->smtp_port, 'carol@example.org', 'bob@example.net',
        "$from\nTo: bob\@example.net\nSubject: $t\nMessage-ID: <$t\@test.example>\n"
        . "Date: Thu, 1 Jan 2026 00:00:00 +0000\n\nbody $t\n");
    my $dm = slurp(find_mail($t) // '/nonexistent') // '';
    my ($d) = $dm =~ /^DKIM-Signature:.*?\bd=([^;\s]+)/ms;
    is($d // 'none', $signed ? 'example.com' : 'none', $name);
    is((verify($dm))[0], 'pass', '... and it verifies') if $signed;
}

ok(wait_for(sub { (metrics($pm->url('/metrics'))->{postern_dkim_signatures_total} // 0) >= 1 },
    5, 'dkim counter'), 'postern_dkim_signatures_total counts');

is($pm->stop, 0, 'postern stops with status 0');
stop_pid($dns);

# ---- key restart: the existing key is kept, the record printed again
my $pem = slurp($key);
my $pm2 = start_postern($conf);
is(slurp($key), $pem, 'restart keeps the existing key');
ok($pm2->wait_log(qr/publish test\._domainkey\.example\.com\. IN TXT "\Q$rec\E"/, 5),
    'the same TXT record is printed at every start') if $rec;
is($pm2->stop, 0, 'stopped');

# ---- an unreadable key: delivery refuses to start
my $bad = write_config(name => 'badkey', dkim => { domain => 'example.com',
    selector => 'gone', key => tempdir() . '/badkey/missing.key', generate => 0 });
my $pm3 = start_postern($bad, wait => 0);
ok($pm3->wait_log(qr/dkim example\.com: cannot read key \S*missing\.key/, 10),
    'log: "dkim example.com: cannot read key FILE: REASON"') or diag($pm3->log_tail(20));
my $hz;
ok(wait_for(sub { $hz = http_get($pm3->url('/healthz'), timeout => 2); $hz->{status} == 503 },
    10, '/healthz 503'), '/healthz says 503 without a delivery process');
# (other children may be listed too while they start: queued[0] holds a ']')
my $hzj = eval { JSON::PP::decode_json($hz->{content} // '') } // {};
my $down = ref $hzj->{down} eq 'ARRAY' ? $hzj->{down} : [];
ok((grep { $_ eq 'delivery[0]' } @$down), '/healthz names delivery[0] as down')
    or diag($hz->{content});
isnt(http_get($pm3->url('/healthz'))->{status}, 200, 'still not healthy');
ok(!grep({ /\.key/ } glob(tempdir() . '/badkey/*')), 'no key was generated (generate = false)');
is($pm3->stop, 0, 'postern stops with status 0');
done_testing;
