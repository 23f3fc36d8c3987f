# 12-smtpd-auth.t - SMTP AUTH on postern-smtpd (RFC 4954, 4616): PLAIN
# and LOGIN with and without the initial response, users from smtp_user
# sections and a users_file, yescrypt (made by posternctl hash-password),
# sha512-crypt and bcrypt hashes, 235 / 535 5.7.8 / 538 5.7.11 / 503 5.5.1
# / 501 5.0.0 / 504, malformed responses (501 5.5.2: NUL after the
# password, padding or white space inside the base64) and an over-long
# response line (500 5.5.6, the exchange ends), auth = required (530
# 5.7.0), auth = off, AUTH only
# advertised where allowed, relaying for authenticated users only, the
# sender domains of a user in MAIL FROM (553 5.7.1) and in From: (550
# 5.7.1), and an empty domain list meaning any domain.
# 127.0.0.1 is NOT trusted here, so relaying depends on AUTH alone.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::TestSMTPD;

require_build();

my $dir = tempdir() . '/auth';
mkdir $dir;
my ($crt, $key) = make_cert($dir, 'auth.postern.test');

# hash-password: yescrypt from standard input
my $pwfile = "$dir/pw";
spit($pwfile, "alice-secret\n");
my $hash;
{
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open(STDIN, '<', $pwfile) or POSIX::_exit(1);
        exec(bin('posternctl'), 'hash-password') or POSIX::_exit(127);
    }
    local $/;
    $hash = <$fh>;
    close $fh;
    $hash =~ s/\s+\z// if defined $hash;
}
like($hash, qr/^\$y\$[^:\s]+$/, 'posternctl hash-password prints a yescrypt hash');
unlike($hash, qr/alice-secret/, 'the hash does not contain the password');

my $sha512 = crypt('carol-secret', '$6$' . substr(unique_tag('s') =~ s/[^A-Za-z0-9]//gr, 0, 16) . '$');
my $bcrypt = crypt('dave-secret', '$2b$05$abcdefghijklmnopqrstuu');
like($sha512, qr/^\$6\$/, 'sha512-crypt hash made');
like($bcrypt, qr/^\$2b\$/, 'bcrypt hash made');
spit("$dir/users", "# name:hash:domains\n\nbob:$hash:\n"
    . "carol:$sha512:example.com,Example.NET\ndave:$bcrypt:example.com\n");

my %port = map { $_ => free_port() } qw(sub clear off);
my $extra = "tls_cert = \"$crt\"\ntls_key = \"$key\"\n"
    . "users_file = \"$dir/users\"\n"
    . "smtp_user alice {\n\tpassword = \"$hash\"\n"
    . "\tsender_domains = { \"example.com\" }\n}\n"
    . listen_section('sub', "127.0.0.1:$port{sub}", auth => 'required')
    . listen_section('clear', "127.0.0.1:$port{clear}", auth_cleartext => 'yes')
    . listen_section('off', "127.0.0.1:$port{off}", auth => 'off', auth_cleartext => 'yes');
my $conf = write_config(smtp_port => 0, trusted_networks => ['192.0.2.0/24'],
    relay_domains => ['example.com'], extra => $extra);
my $pm = start_postern($conf);
my $maildir = conf_info($conf)->{maildir};
ok(wait_for(sub { smtpc($port{off}) }, 10), 'listeners up');

# tls_session - a STARTTLS session on the submission listener, after EHLO
sub tls_session {
    my $c = smtpc($port{sub});
    $c->cmd('EHLO c.test');
    $c->cmd('STARTTLS')->{code} == 220 && $c->starttls or die "no TLS";
    my ($r, $kw) = $c->ehlo_keywords;
    return wantarray ? ($c, $kw) : $c;
}

sub code_is {
    my ($r, $code, $enh, $name) = @_;
    ok($r->{code} == $code && (!$enh || ($r->{enh} // '') eq $enh), $name)
        or diag("got: $r->{code} $r->{text}");
}

# --- advertising and the TLS requirement -----------------------------------
{
    my $c = smtpc($port{sub});
    my ($r, $kw) = $c->ehlo_keywords;
    ok(!$kw->{AUTH}, 'no AUTH advertised in clear text (auth_cleartext = no)');
    code_is($c->cmd('AUTH PLAIN ' . plain_ir('alice', 'alice-secret')), 538, '5.7.11',
        'AUTH before TLS: 538 5.7.11');
    code_is($c->cmd('MAIL FROM:<alice@example.com>'), 530, '5.7.0',
        'auth = required: MAIL before AUTH is 530 5.7.0');
    $c->close;
    ($c, $kw) = tls_session();
    is($kw->{AUTH}, 'AUTH PLAIN LOGIN', 'AUTH PLAIN LOGIN advertised after TLS');
    code_is($c->cmd('MAIL FROM:<alice@example.com>'), 530, '5.7.0',
        'auth = required: still 530 after TLS without AUTH');
    like($c->cmd('MAIL FROM:<alice@example.com>')->{text},
        qr/Authentication required/, '... Authentication required');
    $c->close;
    $c = smtpc($port{clear});
    ($r, $kw) = $c->ehlo_keywords;
    is($kw->{AUTH}, 'AUTH PLAIN LOGIN', 'auth_cleartext = yes: AUTH offered in clear');
    $c->close;
    $c = smtpc($port{off});
    ($r, $kw) = $c->ehlo_keywords;
    ok(!$kw->{AUTH}, 'auth = off: no AUTH');
    code_is($c->cmd('AUTH PLAIN ' . plain_ir('alice', 'alice-secret')), 503, '5.5.1',
        'auth = off: AUTH is 503');
    $c->close;
}

# --- PLAIN and LOGIN, right and wrong ----------------------------------------
{
    my $c = tls_session();
    code_is($c->cmd('AUTH PLAIN ' . plain_ir('alice', 'wrong')), 535, '5.7.8',
        'wrong password: 535 5.7.8');
    like($c->cmd('AUTH PLAIN ' . plain_ir('nobody', 'alice-secret'))->{text},
        qr/Authentication credentials invalid/, 'unknown user: 535, same text');
    code_is($c->cmd('AUTH CRAM-MD5'), 504, '5.5.4', 'unknown mechanism: 504');
    code_is($c->cmd('AUTH PLAIN !!!notbase64'), 501, undef, 'bad base64: 501');
    code_is($c->cmd('AUTH PLAIN ' . plain_ir('alice', 'alice-secret')), 235, '2.7.0',
        'AUTH PLAIN with initial response: 235 2.7.0');
    code_is($c->cmd('AUTH PLAIN ' . plain_ir('alice', 'alice-secret')), 503, '5.5.1',
        'AUTH twice: 503 5.5.1');
    $c->close;

    $c = tls_session();
    code_is($c->cmd('AUTH PLAIN'), 334, undef, 'AUTH PLAIN without response: 334');
    code_is($c->cmd(plain_ir('alice', 'alice-secret')), 235, '2.7.0',
        'PLAIN response on its own line: 235');
    $c->close;

    $c = tls_session();
    my $r = $c->cmd('AUTH LOGIN');
    is($r->{code}, 334, 'AUTH LOGIN: 334');
    is($r->{text}, 'VXNlcm5hbWU6', 'AUTH LOGIN asks Username:');
    $r = $c->cmd(b64('bob'));
    is($r->{text}, 'UGFzc3dvcmQ6', 'AUTH LOGIN asks Password:');
    code_is($c->cmd(b64('alice-secret')), 235, '2.7.0',
        'AUTH LOGIN: 235 (users_file user, yescrypt)');
    $c->close;

    $c = tls_session();
    code_is($c->cmd('AUTH LOGIN ' . b64('carol')), 334, undef,
        'AUTH LOGIN with the user name as initial response');
    code_is($c->cmd(b64('carol-secret')), 235, '2.7.0', 'sha512-crypt user: 235');
    $c->close;

    $c = tls_session();
    code_is($c->cmd('AUTH PLAIN ' . plain_ir('dave', 'dave-secret')), 235, '2.7.0',
        'bcrypt user: 235');
    $c->close;
}

# --- malformed responses end the exchange (RFC 4954 4, RFC 4616 2) ----------
{
    my $c = tls_session();
    code_is($c->cmd('AUTH PLAIN ' . b64("\0alice\0alice-secret\0junk")), 501, '5.5.2',
        'PLAIN with bytes after a third NUL: 501 5.5.2, not 235');
    code_is($c->cmd('AUTH PLAIN ' . b64("\0alice\0alice-secret\0")), 501, '5.5.2',
        'PLAIN with a NUL ending the password: 501');
    code_is($c->cmd('AUTH PLAIN ' . b64("alice\0alice-secret")), 501, '5.5.2',
        'PLAIN with one NUL: 501');
    code_is($c->cmd('AUTH PLAIN ' . b64("\0\0alice-secret")), 501, '5.5.2',
        'PLAIN with an empty authcid: 501');
    my $ir = plain_ir('alice', 'alice-secret');
    code_is($c->cmd('AUTH PLAIN ' . substr($ir, 0, 4) . '=' . substr($ir, 5)), 501,
        '5.5.2', 'base64 with padding inside: 501');
    code_is($c->cmd('AUTH PLAIN ' . substr($ir, 0, 4) . ' ' . substr($ir, 4)), 501,
        '5.5.2', 'base64 with white space inside: 501');
    code_is($c->cmd('AUTH LOGIN ' . b64("alice\0bob")), 501, '5.5.2',
        'LOGIN user name with a NUL: 501');
    code_is($c->cmd('AUTH LOGIN ' . b64('alice')), 334, undef, 'LOGIN user name');
    code_is($c->cmd(b64("alice-secret\0junk")), 501, '5.5.2',
        'LOGIN password with a NUL and more after it: 501, not 235');
    $c->close;

    $c = tls_session();
    code_is($c->cmd('AUTH PLAIN'), 334, undef, 'AUTH PLAIN: 334');
    code_is($c->cmd(b64('x' x 7680)), 500, '5.5.6',
        'a 10 KB response line: 500 5.5.6');
    code_is($c->cmd('NOOP'), 250, undef, 'the exchange ended: NOOP is a command again');
    code_is($c->cmd('AUTH PLAIN ' . $ir), 235, '2.7.0',
        'and AUTH works after all of it');
    $c->close;
}

{
    my $c = tls_session();
    $c->cmd('AUTH LOGIN');
    code_is($c->cmd('*'), 501, '5.0.0', 'client cancels with "*": 501 5.0.0');
    $c->cmd('AUTH LOGIN');
    $c->cmd(b64('bob'));
    code_is($c->cmd('*'), 501, '5.0.0', 'cancel at the password prompt: 501 5.0.0');
    code_is($c->cmd('NOOP'), 250, undef, 'the session goes on after a cancel');
    $c->close;
}

# --- what an authenticated user may do ----------------------------------------
{
    my $c = smtpc($port{clear});
    $c->cmd('EHLO c.test');
    $c->cmd('MAIL FROM:<x@example.org>');
    code_is($c->cmd('RCPT TO:<y@far.example>'), 554, '5.7.1',
        'unauthenticated: relaying denied');
    $c->cmd('RSET');
    code_is($c->cmd('AUTH PLAIN ' . plain_ir('alice', 'alice-secret')), 235, undef,
        'AUTH in clear text where auth_cleartext = yes');
    my $r = $c->cmd('MAIL FROM:<alice@other.example>');
    code_is($r, 553, '5.7.1', 'sender domain not owned: 553 5.7.1');
    like($r->{text}, qr/not owned by user alice/, '... not owned by user');
    code_is($c->cmd('MAIL FROM:<alice@EXAMPLE.com>'), 250, undef,
        'own sender domain (any case): 250');
    code_is($c->cmd('RCPT TO:<y@far.example>'), 250, undef,
        'authenticated: may relay anywhere');
    code_is($c->cmd('DATA'), 354, undef, 'DATA');
    $c->send("From: Mallory <mallory\@evil.example>\r\nSubject: x\r\n\r\nhi\r\n.\r\n");
    code_is($c->reply, 550, '5.7.1', 'From: not owned: 550 5.7.1 after DATA');
    code_is($c->cmd('MAIL FROM:<alice@example.com>'), 250, undef, 'next transaction');
    $c->cmd('RCPT TO:<y@far.example>');
    $c->cmd('DATA');
    # lines stay under 1000 octets (longer ones get 500 5.5.2), but the
    # folded field outgrows what the header scan keeps (4096 octets)
    $c->send("Subject: x\r\nFrom: <alice\@example.com" . ("\r\n" . (' ' x 900)) x 5
        . "mallory\@evil.example>\r\n\r\nhi\r\n.\r\n");
    code_is($c->reply, 550, '5.7.1', 'a From: field too long to check: 550 5.7.1');
    my $tag = unique_tag('own');
    $r = $c->message('alice@example.com', 'y@far.example',
        "From: \"evil\@evil.example\" <alice\@example.com> (x\@evil.example)\n"
        . "Subject: $tag\n\nhi\n");
    code_is($r, 250, undef, 'From: owned (quoted @ and comments ignored): 250');
    # one rule for "the From: domain" (common/addrlist.c): every mailbox of
    # From: and Sender: owned, several From: mailboxes need one Sender:
    my @from = (
        [ "From: alice\@example.com, bob\@example.com\n", 550,
            'two From: mailboxes without Sender: 550 (RFC 5322 3.6.2)' ],
        [ "From: alice\@example.com, bob\@example.com\nSender: alice\@example.com\n",
            250, 'two From: mailboxes and an owned Sender: 250' ],
        [ "From: alice\@example.com, bob\@example.com\nSender: x\@evil.example\n",
            550, 'a Sender: not owned: 550' ],
        [ "From: alice\@example.com\nSender: x\@evil.example\n", 550,
            'one From: mailbox, Sender: not owned: 550' ],
        [ "From: alice\@example.com, mallory\@evil.example\n"
            . "Sender: alice\@example.com\n", 550,
            'a second From: mailbox not owned: 550' ],
        [ "From: alice\@example.com\nFrom: alice\@example.com\n", 550,
            'two From: fields: 550' ],
        [ "From: alice\@example.com\@evil.example\n", 550,
            'text after the address: 550' ],
        [ "From: alice\@example.com;mallory\@evil.example\n", 550,
            'a second address after ";": 550' ],
        [ "From: <\@evil.example:alice\@example.com>\n", 550,
            'a source route naming another domain: 550' ],
        [ "From: alice\n", 550, 'a From: without a domain: 550' ],
        [ "From: \"alice\@example.com\"\@evil.example\n", 550,
            'the quoted local part is no domain: 550' ],
        [ "From: =?utf-8?q?x=40evil.example?= <alice\@example.com>\n", 250,
            'an encoded word with "@" in the display name: 250' ],
        [ "From: Team: alice\@Example.COM;\n", 250, 'a group of owned mailboxes: 250' ],
        [ "From: alice . x \@ example . com (old style)\n", 250,
            'obsolete CFWS around dots: 250' ],
    );
    for my $f (@from) {
        my ($hdr, $want, $name) = @$f;
        $r = $c->message('alice@example.com', 'y@far.example',
            $hdr . 'Subject: ' . unique_tag('f') . "\n\nhi\n");
        code_is($r, $want, $want == 550 ? '5.7.1' : undef, $name);
    }
    $c->close;

    $c = smtpc($port{clear});
    $c->cmd('EHLO c.test');
    $c->cmd('AUTH PLAIN ' . plain_ir('bob', 'alice-secret'));
    $r = $c->message('bob@anything.example', 'y@far.example',
        "From: bob\@whatever.example\nSubject: any\n\nhi\n");
    code_is($r, 250, undef, 'empty sender_domains: any domain');
    $c->close;

    $c = smtpc($port{clear});
    $c->cmd('EHLO c.test');
    $c->cmd('AUTH PLAIN ' . plain_ir('carol', 'carol-secret'));
    code_is($c->cmd('MAIL FROM:<carol@example.net>'), 250, undef,
        'users_file domains (second of two, configured in upper case)');
    $c->close;
}

# --- no secret in the log ----------------------------------------------------
{
    my $log = slurp($pm->log_file) // '';
    unlike($log, qr/alice-secret|carol-secret|dave-secret/, 'no password in the log');
    my $ir = plain_ir('alice', 'alice-secret');
    unlike($log, qr/\Q$ir\E/, 'no AUTH payload in the log');
    like($log, qr/authenticated as alice/, 'successful AUTH logged by name');
}

# --- counters ------------------------------------------------------------------
{
    my $m = metrics($pm->url('/metrics'));
    ok((metric($m, 'postern_smtpd_auth_total', result => 'success') // 0) >= 8,
        'postern_smtpd_auth_total{result="success"}');
    ok((metric($m, 'postern_smtpd_auth_total', result => 'failure') // 0) >= 2,
        'postern_smtpd_auth_total{result="failure"}');
    ok((metric($m, 'postern_smtpd_tls_sessions_total') // 0) >= 7,
        'postern_smtpd_tls_sessions_total');
    is($m->{'#TYPE postern_smtpd_auth_total'}, 'counter', 'a counter');
}

# --- configuration errors ------------------------------------------------
{
    my $bad = write_config(name => 'bad', smtp_port => 0,
        extra => "smtp_user x {\n\tpassword = \"plaintext\"\n}\n");
    my ($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $bad, 'check-config']);
    isnt($st, 0, 'a password that is not a hash is refused');
    like($err, qr/option 'password': expected a crypt\(3\) hash/, '... with the option');
    unlike($err, qr/plaintext/, '... without echoing it');
    spit("$dir/bad-users", "ok:$hash:example.com\nbroken line\n");
    $bad = write_config(name => 'bad2', smtp_port => 0,
        extra => "users_file = \"$dir/bad-users\"\n");
    ($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $bad, 'check-config']);
    like($err, qr/bad-users:2: /, 'a bad users_file line is named by file and line');
}

$pm->stop;

# --- lock-out after auth_failure_limit failures ---------------------------------
{
    my $p = free_port();
    my $lconf = write_config(name => 'lock', smtp_port => 0,
        extra => "auth_failure_limit = 3\nauth_failure_window = 1m\n"
        . "smtp_user alice {\n\tpassword = \"$hash\"\n}\n"
        . listen_section('l', "127.0.0.1:$p", auth_cleartext => 'yes'));
    my $lpm = start_postern($lconf);
    ok(wait_for(sub { smtpc($p) }, 10), 'lock-out instance up');
    my $c = smtpc($p);
    $c->cmd('EHLO c.test');
    code_is($c->cmd('AUTH PLAIN ' . plain_ir('alice', "wrong$_")), 535, '5.7.8',
        "failure $_ of 3: 535") for 1 .. 2;
    $c->close;
    $c = smtpc($p);
    $c->cmd('EHLO c.test');
    code_is($c->cmd('AUTH PLAIN ' . plain_ir('alice', 'wrong3')), 535, '5.7.8',
        'failure 3 of 3 (another connection): 535');
    my $r = $c->cmd('AUTH PLAIN ' . plain_ir('alice', 'alice-secret'));
    code_is($r, 421, '4.7.0', 'locked out: even the right password gets 421 4.7.0');
    ok(wait_for(sub { !$c->fill(0.2) && $c->{eof} }, 5), '... and the connection closes');
    $c = smtpc($p);
    $c->cmd('EHLO c.test');
    code_is($c->cmd('AUTH LOGIN'), 421, '4.7.0', 'a new connection is locked out too');
    $c->close;
    like(slurp($lpm->log_file) // '', qr/AUTH lock-out: 3 failures within 60s/,
        'the lock-out is logged');
    $lpm->stop;
}

done_testing();
