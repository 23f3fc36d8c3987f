# 41-dkim-multi.t - several DKIM keys: posternctl dkim-generate writes an
# RSA and an ed25519 key (mode 0600, never overwriting) and prints the TXT
# record and the config section; with both sections for one domain a
# message carries two signatures (rsa-sha256 s=s1, ed25519-sha256 s=s2),
# relaxed/relaxed, over the configured header list plus the required
# ones, From oversigned. An independent verifier (dkimpy, t/dkim-verify.py)
# passes both; Mail::DKIM passes the RSA one; a tampered body fails; a
# second domain in the one-key syntax (dkim DOMAIN { }) signs with its key.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();
my $py = '/usr/bin/python3';
plan skip_all => 'python3-dkim / python3-nacl not installed'
    unless -x $py && system($py, '-c', 'import dkim, nacl') == 0;

my $dir = tempdir() . '/dkim2';
my $keys = "$dir/keys";
mkdir $dir;
chmod 0755, $dir;      # children run as nobody; only keys/ is 0700
my $ctl = bin('posternctl');
my (%txt, $sections);
for my $g (['s1'], ['s2', '--ed25519']) {
    my ($sel, @opt) = @$g;
    my ($st, $out, $err) = run_cmd([$ctl, 'dkim-generate', 'example.org', $sel, @opt,
        '--dir', $keys]);
    is($st, 0, "dkim-generate $sel @opt exits 0") or diag($err);
    my $k = "$keys/example.org.$sel.key";
    is(sprintf('%04o', (stat $k)[2] & 07777), '0600', "$sel key mode 0600");
    my ($rec) = $out =~ /^\Q$sel\E\._domainkey\.example\.org\. IN TXT \(((?: "[^"]*")+) \)$/m;
    ok($rec, "$sel: TXT record printed") or diag($out);
    $txt{$sel} = join('', ($rec // '') =~ /"([^"]*)"/g);
    like($txt{$sel}, @opt ? qr/^v=DKIM1; k=ed25519; p=[A-Za-z0-9+\/]{43}=$/ :
        qr/^v=DKIM1; k=rsa; p=[A-Za-z0-9+\/]{300,}=*$/, "$sel: record syntax");
    my ($sec) = $out =~ /^(dkim "\Q$sel\E\._domainkey\.example\.org" \{\n.*?\n\})$/ms;
    ok($sec, "$sel: config section printed");
    $sections .= ($sec // '') . "\n";
}
my ($st, $out, $err) = run_cmd([$ctl, 'dkim-generate', 'example.org', 's1', '--dir', $keys]);
is($st >> 8, 1, 'an existing key is not overwritten');
like($err, qr/exists; not overwriting/, '... and says so');
($st, $out, $err) = run_cmd([$ctl, 'dkim-generate', 'example.org', '../x', '--dir', $keys]);
is($st >> 8, 64, 'a selector with / is refused');

# a second domain, in the original one-key syntax (title = domain)
($st, $out, $err) = run_cmd([$ctl, 'dkim-generate', 'example.net', 'n1', '--ed25519',
    '--dir', $keys]);
my ($nrec) = $out =~ /^n1\._domainkey\.example\.net\. IN TXT \( "([^"]*)" \)$/m;
ok($nrec, 'example.net key generated') or diag($err);
$sections .= "dkim example.net {\n\tselector = \"n1\"\n\tkey = \"$keys/example.net.n1.key\"\n}\n";

my $conf = write_config(dir => "$dir/p", extra => $sections
    . "dkim_signed_headers = { \"From\", \"X-Custom\", \"Reply-To\" }\n");
my $pm = start_postern($conf, wait => 0);
$pm->wait_ready(10) or BAIL_OUT("postern did not start: " . $pm->log_text);
my $tag = unique_tag('dkim2');
my ($code, $text) = send_mail($pm->smtp_port, 'alice@example.org', 'rcpt@example.com',
    make_message(from => 'Alice <alice@example.org>', subject => $tag,
        headers => ['X-Custom: custom value'], body => "signed twice $tag\n"));
is($code, 250, 'message accepted') or diag($text);
my $file;
wait_for(sub { ($file) = grep { (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files($pm->maildir); $file },
    10, 'the signed message');
my $m = slurp($file // '/nonexistent') // '';
my @sigs = $m =~ /^(DKIM-Signature:.*?\n)(?=\S)/msg;
is(scalar(@sigs), 2, 'two DKIM-Signature headers');
my ($rsa) = grep { /a=rsa-sha256/ } @sigs;
my ($ed) = grep { /a=ed25519-sha256/ } @sigs;
ok($rsa && $rsa =~ /s=s1;/ && $rsa =~ /d=example\.org;/, 'rsa-sha256 with s=s1 d=example.org');
ok($ed && $ed =~ /s=s2;/, 'ed25519-sha256 with s=s2');
for my $s (grep { defined } $rsa, $ed) {
    (my $flat = $s) =~ s/\s+//g;
    like($flat, qr/c=relaxed\/relaxed;/, 'relaxed/relaxed by default');
    my ($h) = $flat =~ /;h=([^;]+)/;
    my @h = split /:/, lc($h // '');
    ok((grep { $_ eq 'x-custom' } @h), 'configured header signed (x-custom)');
    ok((grep { $_ eq 'subject' } @h) && (grep { $_ eq 'date' } @h)
        && (grep { $_ eq 'message-id' } @h) && (grep { $_ eq 'to' } @h),
        'required headers always signed');
    is(scalar(grep { $_ eq 'from' } @h), 2, 'From oversigned (h= lists it twice)');
}

my @recs = map { "$_._domainkey.example.org=$txt{$_}" } sort keys %txt;
($st, $out, $err) = run_cmd([$py, srcdir() . '/t/dkim-verify.py', $file // '/nonexistent', @recs]);
is($st, 0, 'dkimpy verifies both signatures') or diag($out . $err);
like($out, qr/^\d s=s1 a=rsa-sha256 pass$/m, 'dkimpy: rsa-sha256 pass');
like($out, qr/^\d s=s2 a=ed25519-sha256 pass$/m, 'dkimpy: ed25519-sha256 pass');

(my $bad = $m) =~ s/signed twice/signed thrice/;
spit("$dir/tampered", $bad);
($st, $out, $err) = run_cmd([$py, srcdir() . '/t/dkim-verify.py', "$dir/tampered", @recs]);
is($st >> 8, 1, 'a tampered body fails') or diag($out . $err);

# ---- the second domain: signed by its one key only
my $tag2 = unique_tag('dkimnet');
($code, $text) = send_mail($pm->smtp_port, 'bob@example.net', 'rcpt@example.com',
    make_message(from => 'bob@example.net', subject => $tag2, body => "net $tag2\n"));
is($code, 250, 'message from the second domain accepted') or diag($text);
my $file2;
wait_for(sub { ($file2) = grep { (slurp($_) // '') =~ /\Q$tag2\E/ } maildir_files($pm->maildir); $file2 },
    10, 'the example.net message');
my $m2 = slurp($file2 // '/nonexistent') // '';
my @sigs2 = $m2 =~ /^(DKIM-Signature:.*?\n)(?=\S)/msg;
is(scalar(@sigs2), 1, 'one signature for example.net');
like($sigs2[0] // '', qr/d=example\.net; s=n1;/, 'd=example.net s=n1');
($st, $out, $err) = run_cmd([$py, srcdir() . '/t/dkim-verify.py', $file2 // '/nonexistent',
    "n1._domainkey.example.net=" . ($nrec // '')]);
is($st, 0, 'dkimpy verifies the example.net signature') or diag($out . $err);

SKIP: {
    skip 'Mail::DKIM not installed', 1 unless eval { require Mail::DKIM::Verifier; 1 };
    my $dnsport = free_port();
    dns_server($dnsport, { map { ("$_._domainkey.example.org" => { TXT => $txt{$_} }) } keys %txt });
    Mail::DKIM::DNS::resolver(dkim_resolver($dnsport));
    (my $crlf = $m) =~ s/\A[^\n]*\n//;
    $crlf =~ s/\r?\n/\r\n/g;
    my $v = Mail::DKIM::Verifier->new;
    $v->PRINT($crlf);
    $v->CLOSE;
    my ($r) = grep { $_->algorithm eq 'rsa-sha256' } $v->signatures;
    is($r ? $r->result : 'none', 'pass', 'Mail::DKIM verifies the rsa-sha256 signature');
}
$pm->stop;
$pm->check_sanitizers;
done_testing();
