# 18-smtpd-conformance.t - postern-smtpd against the letter of the
# standards, byte-exact over raw sockets (and TLS where needed):
#
#  1. ENHANCEDSTATUSCODES (RFC 2034, RFC 3463): a dialogue that reaches
#     every command and every refusal we can provoke from outside - the
#     verbs with and without arguments, out-of-order commands, bad
#     syntax, MAIL parameters, the relay rule, the recipient limit, the
#     size limit, SMTPUTF8, bare LF and NUL in data, over-long lines and
#     NUL in commands, AUTH errors (503, 504, 501, 535, 538, the 421
#     lock-out), STARTTLS errors (501, 502, 503), listener policy (530),
#     the error limit (421 4.7.0) and the 421 4.3.2 on shutdown. At the
#     end EVERY reply line seen must match
#         /^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3} /
#     with the enhanced class equal to the basic one, except what RFC
#     2034 section 3 exempts: the 220 greeting and the replies to HELO
#     and EHLO; 3xx intermediates (354, 334) carry no enhanced class.
#  2. SMTP smuggling (SEC Consult 2023; Postfix smtpd_forbid_bare_newline):
#     every fake end-of-data variant followed by a pipelined MAIL/RCPT/
#     DATA inside the data gets exactly the expected replies, the session
#     stays in step (the next NOOP gets its own 250 2.0.0 and nothing
#     else), and at most one message per variant reaches the maildir;
#     on a listener with the default (normalize: a bare LF ends a line,
#     never the data, so the smuggled commands are message text, stored
#     with CR LF) and on one with forbid_bare_newline = reject (550
#     5.6.11). A client in forbid_bare_newline_exclusions (Postfix's
#     "no") may end its data with "." LF after LF lines.
#  3. Line limits: 512 octets with CR LF accepted, 513 refused with 500
#     5.5.2, and the session stays in step.
# (STARTTLS with pipelined commands, CVE-2011-0411, is in t/11.)
use strict;
use warnings;
use Test::More;
use MIME::Base64 qw(encode_base64);
use Postern::Test;
use Postern::TestSMTPD;

require_build();

my $dir = tempdir() . '/conf18';
mkdir $dir;
my ($crt, $key) = make_cert($dir, 'conformance.postern.test');
my $salt = substr(unique_tag('s') =~ s/[^A-Za-z0-9]//gr, 0, 16);
my $hash = crypt('alice-secret', "\$6\$$salt\$");
like($hash, qr/^\$6\$/, 'sha512-crypt hash made');

my %port = map { $_ => free_port() } qw(main tls sub req off rej excl);
my $extra = "smtp_user alice {\n\tpassword = \"$hash\"\n}\n"
    . "auth_failure_limit = 3\n"
    . listen_section('main', "127.0.0.1:$port{main}", auth_cleartext => 'yes')
    . listen_section('tls', "127.0.0.1:$port{tls}", tls_cert => "\"$crt\"",
        tls_key => "\"$key\"")
    . listen_section('sub', "127.0.0.1:$port{sub}", tls_cert => "\"$crt\"",
        tls_key => "\"$key\"", require_tls => 'yes')
    . listen_section('req', "127.0.0.1:$port{req}", auth => 'required',
        auth_cleartext => 'yes')
    . listen_section('off', "127.0.0.1:$port{off}", auth => 'off')
    . listen_section('rej', "127.0.0.1:$port{rej}", forbid_bare_newline => 'reject')
    . listen_section('excl', "127.0.0.1:$port{excl}",
        forbid_bare_newline_exclusions => '{ "127.0.0.0/8" }');
# 127.0.0.1 is not trusted: only example.net is reachable without AUTH
my $conf = write_config(smtp_port => 0, trusted_networks => ['192.0.2.0/24'],
    relay_domains => ['example.net'], max_message_size => '10K',
    max_recipients => 2, extra => $extra);
my $pm = start_postern($conf);
my $maildir = conf_info($conf)->{maildir};
ok(wait_for(sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port{off}",
    Timeout => 1) }, 10, 'listeners'), 'listeners up');

my @seen;       # [listener, command sent, reply hashref, exempt reason]

# remember - keep a reply for the final enhanced-code check
sub remember {
    my ($where, $sent, $r) = @_;
    push @seen, [ $where, $sent, $r ];
    return $r;
}

# conn - a raw client on a listener; the greeting is remembered (exempt)
sub conn {
    my ($name) = @_;
    my $c = smtpc($port{$name}) or die "connect $name: $!";
    $c->{where} = $name;
    remember($name, '<greeting>', $c->{greeting});
    return $c;
}

# say_ - send one command line, read and remember its reply
sub say_ {
    my ($c, $line) = @_;
    return remember($c->{where}, $line, $c->cmd($line));
}

# is_reply - say_ and check the basic and enhanced code
sub is_reply {
    my ($c, $line, $code, $enh, $name) = @_;
    my $r = say_($c, $line);
    my $ok = $r->{code} == $code && (!defined $enh || ($r->{enh} // '') eq $enh);
    (my $shown = $line) =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    $shown = substr($shown, 0, 40) . '...' if length $shown > 43;
    ok($ok, $name // "$shown: $code" . ($enh ? " $enh" : ''))
        or diag("$c->{where}: got $r->{code} $r->{text}");
    return $r;
}

# b64 - base64 on one line
sub b64_ { return encode_base64($_[0], '') }

# ---------------------------------------------------------------- 1.
# ---- verbs, arguments and order on the main listener
my $c = conn('main');
like($c->{greeting}{text}, qr/^postern\.test ESMTP/, 'greeting 220');
is_reply($c, 'MAIL FROM:<a@example.org>', 503, '5.5.1', 'MAIL before HELO: 503 5.5.1');
is_reply($c, 'RCPT TO:<user@example.net>', 503, '5.5.1', 'RCPT before MAIL: 503 5.5.1');
is_reply($c, 'DATA', 503, '5.5.1', 'DATA before MAIL: 503 5.5.1');
is_reply($c, 'HELO', 501, '5.5.4', 'HELO without argument: 501 5.5.4');
is_reply($c, 'EHLO', 501, '5.5.4', 'EHLO without argument: 501 5.5.4');
my $h = is_reply($c, 'HELO client.test', 250, undef, 'HELO: 250');
is($h->{text}, 'postern.test', 'HELO reply names the host (RFC 2034 exempts it)');
is_reply($c, 'AUTH PLAIN', 503, '5.5.1', 'AUTH after HELO: 503 5.5.1 (EHLO first)');
my $e = say_($c, 'EHLO client.test');
is($e->{code}, 250, 'EHLO 250');
my %kw = map { (uc((split ' ', $_)[0] // '') => 1) } @{ $e->{lines} }[1 .. $#{ $e->{lines} }];
ok($kw{$_}, "EHLO offers $_") for qw(PIPELINING SIZE 8BITMIME SMTPUTF8
    ENHANCEDSTATUSCODES AUTH);
ok(!$kw{STARTTLS}, 'no STARTTLS without a certificate');
is_reply($c, 'NOOP', 250, '2.0.0');
is_reply($c, 'NOOP with an argument', 250, '2.0.0');
is_reply($c, 'RSET', 250, '2.0.0');
is_reply($c, 'RSET now', 501, '5.5.4', 'RSET with an argument: 501 5.5.4');
is_reply($c, 'VRFY postmaster', 252, '2.5.0', 'VRFY: 252 2.5.0');
is_reply($c, 'VRFY', 501, '5.5.4', 'VRFY without argument: 501 5.5.4');
is_reply($c, 'HELP', 214, '2.0.0', 'HELP: 214 2.0.0');
is_reply($c, 'HELP MAIL', 214, '2.0.0', 'HELP with a topic: 214 2.0.0');
is_reply($c, 'EXPN staff', 500, '5.5.2', 'EXPN (not offered): 500 5.5.2');
is_reply($c, 'TURN', 500, '5.5.2', 'TURN: 500 5.5.2');
is_reply($c, 'STARTTLS', 502, '5.5.1', 'STARTTLS without a certificate: 502 5.5.1');
is_reply($c, 'QUIT now', 501, '5.5.4', 'QUIT with an argument: 501 5.5.4');
is_reply($c, 'DATA now', 501, '5.5.4', 'DATA with an argument: 501 5.5.4');
is_reply($c, 'QUIT', 221, '2.0.0', 'QUIT: 221 2.0.0');
ok(!$c->fill(3) && $c->{eof}, 'closed after QUIT');

# ---- MAIL and its parameters
$c = conn('main');
say_($c, 'EHLO client.test');
is_reply($c, 'MAIL', 501, '5.5.4', 'MAIL without argument: 501 5.5.4');
is_reply($c, 'MAIL TO:<a@example.org>', 501, '5.5.4', 'MAIL TO: 501 5.5.4');
is_reply($c, 'MAIL FROM:a@example.org', 501, '5.1.7', 'MAIL without <>: 501 5.1.7');
is_reply($c, 'MAIL FROM:<@relay.example:a@example.org>', 501, '5.1.7',
    'MAIL source route: 501 5.1.7');
is_reply($c, 'MAIL FROM:<a@example.org>x', 501, '5.1.7', 'text after the path: 501 5.1.7');
is_reply($c, 'MAIL FROM:<a@example.org> FROB=1', 555, '5.5.4', 'unknown parameter: 555 5.5.4');
is_reply($c, 'MAIL FROM:<a@example.org> SIZE=x', 501, '5.5.4', 'SIZE=x: 501 5.5.4');
is_reply($c, 'MAIL FROM:<a@example.org> SIZE=99999999', 552, '5.3.4',
    'SIZE over the limit: 552 5.3.4');
is_reply($c, 'MAIL FROM:<a@example.org> BODY=BINARYMIME', 501, '5.5.4',
    'BODY=BINARYMIME: 501 5.5.4');
is_reply($c, 'MAIL FROM:<a@example.org> SMTPUTF8=1', 501, '5.5.4',
    'SMTPUTF8 with a value: 501 5.5.4');
is_reply($c, 'MAIL FROM:<jörg@example.org>', 553, '5.6.7',
    'UTF-8 sender without SMTPUTF8: 553 5.6.7');
is_reply($c, 'MAIL FROM:<> SIZE=100 BODY=8BITMIME SMTPUTF8', 250, '2.1.0',
    'MAIL <> with SIZE, BODY and SMTPUTF8: 250 2.1.0');
is_reply($c, 'MAIL FROM:<a@example.org>', 503, '5.5.1', 'nested MAIL: 503 5.5.1');
is_reply($c, 'AUTH PLAIN', 503, '5.5.1', 'AUTH inside a transaction: 503 5.5.1');
is_reply($c, 'DATA', 554, '5.5.1', 'DATA without recipients: 554 5.5.1');
is_reply($c, 'QUIT', 221, '2.0.0');

# ---- RCPT (a new session: each one stays under the error limit)
$c = conn('main');
say_($c, 'EHLO client.test');
is_reply($c, 'MAIL FROM:<> SMTPUTF8', 250, '2.1.0', 'MAIL <> SMTPUTF8');
is_reply($c, 'RCPT', 501, '5.5.4', 'RCPT without argument: 501 5.5.4');
is_reply($c, 'RCPT FROM:<user@example.net>', 501, '5.5.4', 'RCPT FROM: 501 5.5.4');
is_reply($c, 'RCPT TO:<user%evil.example@example.net>', 501, '5.1.3',
    'percent hack: 501 5.1.3');
is_reply($c, 'RCPT TO:<user@[192.0.2.1]>', 501, '5.1.3', 'address literal: 501 5.1.3');
is_reply($c, 'RCPT TO:<user@example.net> NOTIFY=NEVER', 555, '5.5.4',
    'RCPT parameter: 555 5.5.4');
is_reply($c, 'RCPT TO:<user@example.com>', 554, '5.7.1', 'relay denied: 554 5.7.1');
is_reply($c, 'RCPT TO:<jörg@example.net>', 250, '2.1.5', 'UTF-8 RCPT with SMTPUTF8: 250');
is_reply($c, 'RCPT TO:<user@example.net>', 250, '2.1.5', 'RCPT 250 2.1.5');
is_reply($c, 'RCPT TO:<other@example.net>', 452, '4.5.3', 'past max_recipients: 452 4.5.3');
is_reply($c, 'RSET', 250, '2.0.0', 'RSET');
is_reply($c, 'MAIL FROM:<a@example.org>', 250, '2.1.0', 'MAIL after RSET');
is_reply($c, 'RCPT TO:<jörg@example.net>', 553, '5.6.7',
    'UTF-8 RCPT without SMTPUTF8: 553 5.6.7');
is_reply($c, 'RCPT TO:<user@example.net>', 250, '2.1.5', 'RCPT');

# ---- DATA: accepted, too big, bare LF, NUL
is_reply($c, 'DATA', 354, undef, 'DATA: 354');
my $okmark = unique_tag('conf-ok');
$c->send("Subject: $okmark\r\n\r\nfine\r\n.\r\n");
my $r = remember('main', '<end of data>', $c->reply);
ok($r->{code} == 250 && ($r->{enh} // '') eq '2.0.0', 'message accepted: 250 2.0.0')
    or diag($r->{text});
for my $case (["size", join('', ('z' x 70 . "\r\n") x 200), 552, '5.3.4'],
              ["bare CR", "one\rtwo\r\n", 550, '5.6.11'],
              ["NUL", "nul\0here\r\n", 550, '5.6.0']) {
    my ($what, $body, $code, $enh) = @$case;
    is_reply($c, 'MAIL FROM:<a@example.org>', 250, '2.1.0', "MAIL for $what");
    is_reply($c, 'RCPT TO:<user@example.net>', 250, '2.1.5', "RCPT for $what");
    is_reply($c, 'DATA', 354, undef, "DATA for $what");
    $c->send("Subject: $what\r\n\r\n$body.\r\n");
    $r = remember('main', "<end of data: $what>", $c->reply);
    ok($r->{code} == $code && ($r->{enh} // '') eq $enh, "$what in data: $code $enh")
        or diag("$r->{code} $r->{text}");
    is_reply($c, 'NOOP', 250, '2.0.0', "in step after $what");
}

# ---- command lines: 512 octets with CR LF ok, 513 refused; NUL
my $l512 = 'NOOP ' . ('x' x (512 - 2 - 5));
is(length("$l512\r\n"), 512, 'the long line is 512 octets with CR LF');
is_reply($c, $l512, 250, '2.0.0', '512-octet command line: 250 2.0.0');
is_reply($c, "${l512}y", 500, '5.5.2', '513-octet command line: 500 5.5.2');
is_reply($c, 'NOOP', 250, '2.0.0', 'in step after the 513-octet line');
is_reply($c, 'NOOP ' . ('y' x 5000), 500, '5.5.2', '5000-octet line: 500 5.5.2');
is_reply($c, 'NOOP', 250, '2.0.0', 'in step after the 5000-octet line');
is_reply($c, "NO\0OP", 500, '5.5.2', 'NUL in a command: 500 5.5.2');
is_reply($c, "MAIL FROM:<a\0\@example.org>", 500, '5.5.2', 'NUL in MAIL: 500 5.5.2');
is_reply($c, 'NOOP', 250, '2.0.0', 'in step after NUL');
is_reply($c, 'QUIT', 221, '2.0.0');

# ---- BDAT (RFC 3030), when CHUNKING is offered: its replies too
SKIP: {
    skip('CHUNKING not offered', 6) unless $kw{CHUNKING};
    $c = conn('main');
    say_($c, 'EHLO client.test');
    # a refused BDAT's chunk is still read and thrown away (RFC 3030 2)
    $c->send("BDAT 5\r\n12345");
    my $b0 = remember('main', 'BDAT 5', $c->reply);
    ok($b0->{code} == 503 && ($b0->{enh} // '') eq '5.5.1', 'BDAT before MAIL: 503 5.5.1')
        or diag("$b0->{code} $b0->{text}");
    is_reply($c, 'NOOP', 250, '2.0.0', 'in step after the refused chunk');
    is_reply($c, 'MAIL FROM:<a@example.org>', 250, '2.1.0', 'MAIL for BDAT');
    is_reply($c, 'RCPT TO:<user@example.net>', 250, '2.1.5', 'RCPT for BDAT');
    is_reply($c, 'BDAT lots', 501, '5.5.4', 'BDAT without a size: 501 5.5.4');
    my $chunk = "Subject: " . unique_tag('bdat') . "\r\n\r\nchunked\r\n";
    $c->send('BDAT ' . length($chunk) . " LAST\r\n$chunk");
    my $b = remember('main', '<BDAT LAST>', $c->reply);
    ok($b->{code} == 250 && ($b->{enh} // '') =~ /^2\./, 'BDAT LAST: 250 2.x.x')
        or diag("$b->{code} $b->{text}");
    say_($c, 'QUIT');
}

# ---- AUTH errors (main listener: AUTH in clear text is allowed)
$c = conn('main');
say_($c, 'EHLO client.test');
is_reply($c, 'AUTH CRAM-MD5', 504, '5.5.4', 'unknown mechanism: 504 5.5.4');
is_reply($c, 'AUTH PLAIN !!!notbase64', 501, '5.5.2', 'bad base64: 501 5.5.2');
is_reply($c, 'AUTH PLAIN', 334, undef, 'AUTH PLAIN: 334');
is_reply($c, '*', 501, '5.0.0', 'cancelled: 501 5.0.0');
is_reply($c, 'AUTH PLAIN ' . b64_("\0alice"), 501, '5.5.2',
    'PLAIN without a password field: 501 5.5.2');
is_reply($c, 'AUTH LOGIN', 334, undef, 'AUTH LOGIN: 334 (user name)');
is_reply($c, b64_('alice'), 334, undef, '334 (password)');
is_reply($c, b64_('wrong'), 535, '5.7.8', 'wrong password: 535 5.7.8');
is_reply($c, 'AUTH PLAIN ' . b64_("\0alice\0alice-secret"), 235, '2.7.0',
    'right password: 235 2.7.0');
is_reply($c, 'AUTH PLAIN ' . b64_("\0alice\0alice-secret"), 503, '5.5.1',
    'AUTH again: 503 5.5.1');
is_reply($c, 'MAIL FROM:<alice@example.org>', 250, '2.1.0', 'MAIL after AUTH');
is_reply($c, 'RCPT TO:<anyone@example.com>', 250, '2.1.5',
    'authenticated: any destination');
is_reply($c, 'QUIT', 221, '2.0.0');

# ---- AUTH refused by listener policy
$c = conn('off');
say_($c, 'EHLO client.test');
is_reply($c, 'AUTH PLAIN', 503, '5.5.1', 'auth = off: 503 5.5.1');
is_reply($c, 'QUIT', 221, '2.0.0');
$c = conn('tls');
my ($er, $k) = $c->ehlo_keywords;
remember('tls', 'EHLO client.test', $er);
ok($k->{STARTTLS}, 'STARTTLS offered where there is a certificate');
is_reply($c, 'AUTH PLAIN ' . b64_("\0alice\0alice-secret"), 538, '5.7.11',
    'AUTH before TLS: 538 5.7.11');
is_reply($c, 'STARTTLS now', 501, '5.5.4', 'STARTTLS with an argument: 501 5.5.4');
is_reply($c, 'STARTTLS', 220, '2.0.0', 'STARTTLS: 220 2.0.0');
ok($c->starttls, 'TLS handshake');
is_reply($c, 'MAIL FROM:<a@example.org>', 503, '5.5.1',
    'after TLS the session starts again: MAIL needs EHLO (503 5.5.1)');
say_($c, 'EHLO client.test');
is_reply($c, 'STARTTLS', 503, '5.5.1', 'STARTTLS inside TLS: 503 5.5.1');
is_reply($c, 'AUTH PLAIN ' . b64_("\0alice\0alice-secret"), 235, '2.7.0',
    'AUTH inside TLS: 235 2.7.0');
is_reply($c, 'QUIT', 221, '2.0.0');
$c = conn('sub');
say_($c, 'EHLO client.test');
is_reply($c, 'MAIL FROM:<a@example.org>', 530, '5.7.0', 'require_tls: MAIL gets 530 5.7.0');
is_reply($c, 'QUIT', 221, '2.0.0');
$c = conn('req');
say_($c, 'EHLO client.test');
is_reply($c, 'MAIL FROM:<a@example.org>', 530, '5.7.0',
    'auth = required: MAIL gets 530 5.7.0');
is_reply($c, 'QUIT', 221, '2.0.0');

# ---- too many errors: 421 4.7.0 and the connection closes
$c = conn('main');
say_($c, 'EHLO client.test');
my $last;
for my $i (1 .. 25) {
    $last = say_($c, "BOGUS$i");
    last if $last->{code} != 500;
}
is($last->{code}, 421, 'the error limit ends in 421');
is($last->{enh}, '4.7.0', '421 4.7.0');
ok(!$c->fill(3) && $c->{eof}, 'connection closed after the 421');

# ---- AUTH lock-out (last: it locks 127.0.0.1 out of AUTH)
my $lock;
for my $i (1 .. 6) {
    $c = conn('main');
    say_($c, 'EHLO client.test');
    $lock = say_($c, 'AUTH PLAIN ' . b64_("\0alice\0wrong$i"));
    last if $lock->{code} == 421;
    is($lock->{code}, 535, "failure $i: 535");
    say_($c, 'QUIT');
}
is($lock->{code}, 421, 'AUTH lock-out: 421');
is($lock->{enh}, '4.7.0', 'AUTH lock-out: 4.7.0');

# ---------------------------------------------------------------- 2.
# Each variant: a fake terminator inside the data, then a complete
# pipelined transaction, then the real end. The replies expected after
# the DATA 354, in order, and how many messages the variant may queue.
my $smuggle = "MAIL FROM:<evil\@example.org>\r\nRCPT TO:<user\@example.net>\r\n"
    . "DATA\r\nSubject: %s-smuggled\r\n\r\nsmuggled\r\n.\r\n";
my $refused = [[[550, '5.6.11']], 0, 0];
# normalize: the whole text, smuggled commands included, is one message
my $whole = [[[250, '2.0.0']], 1, 1];
my @variants = (
    # [name, fake terminator, {listener => [[[code, enh]...], messages
    #  queued, whether the part with the fake terminator is in one]}]
    ['<LF>.<LF>', "\n.\n", { rej => $refused, main => $whole }],
    ['<LF>.<CR><LF>', "\n.\r\n", { rej => $refused, main => $whole }],
    ['<CR><LF>.<LF>', "\r\n.\n", { rej => $refused, main => $whole }],
    ['<CR>.<CR><LF>', "\r.\r\n", { rej => $refused, main => $refused }],
    ['<CR><LF>.<CR>', "\r\n.\r", { rej => $refused, main => $refused }],
    ['<CR>.<CR>', "\r.\r", { rej => $refused, main => $refused }],
    ['<LF>.<CR>', "\n.\r", { rej => $refused, main => $refused }],
    ['bare <CR>', "\r", { rej => $refused, main => $refused }],
    ['bare <LF>', "\n", { rej => $refused, main => $whole }],
    ['<NUL>', "\r\n\0.\r\n", { map { $_ => [[[550, '5.6.0']], 0, 0] } qw(rej main) }],
    # a real end of data after a bare CR: everyone agrees it ends here;
    # the message is refused, the pipelined transaction is a new one
    ['<CR><CR><LF>.<CR><LF>', "\r\r\n.\r\n", { map { $_ => [[[550, '5.6.11'],
        [250, '2.1.0'], [250, '2.1.5'], [354, undef], [250, '2.0.0']], 1, 0] }
        qw(rej main) }],
);
my %tag;
for my $i (0 .. $#variants) {
    for my $l (qw(main rej)) {
        my ($name, $fake, $by) = @{ $variants[$i] };
        my $want = $by->{$l}[0];
        $name = "$l: $name";
        my $t = $tag{"$i$l"} = unique_tag("smuggle$i$l");
        $c = conn($l);
        say_($c, 'EHLO client.test');
        say_($c, 'MAIL FROM:<sender@example.org>');
        say_($c, 'RCPT TO:<user@example.net>');
        my $d = say_($c, 'DATA');
        is($d->{code}, 354, "$name: DATA 354");
        $c->send("Subject: $t-first\r\n\r\nbody$fake" . sprintf($smuggle, $t));
        my @got = map { remember($l, "<$name>", $c->reply(5)) } 1 .. @$want;
        is_deeply([ map { [ $_->{code}, $_->{enh} ] } @got ], $want,
            "$name: replies " . join(', ', map { $_->[0] } @$want))
            or diag(join("\n", map { "$_->{code} $_->{text}" } @got));
        my $noop = say_($c, 'NOOP');
        ok($noop->{code} == 250 && ($noop->{enh} // '') eq '2.0.0'
            && $noop->{text} eq '2.0.0 Ok', "$name: in step (NOOP gets its own 250 2.0.0 Ok)")
            or diag("$noop->{code} $noop->{text}");
        ok($c->quiet(0.3), "$name: no further reply");
        say_($c, 'QUIT');
        $c->close;
    }
}

# ---- exclusions: a legacy client's LF lines and "." LF end the data
my $legacy = unique_tag('legacy');
$c = conn('excl');
say_($c, 'EHLO client.test');
say_($c, 'MAIL FROM:<sender@example.org>');
say_($c, 'RCPT TO:<user@example.net>');
is(say_($c, 'DATA')->{code}, 354, 'excluded client: DATA 354');
$c->send("Subject: $legacy\n\nline one\n..dotted\n.\nNOOP\r\n");
$r = remember('excl', '<LF>.<LF>', $c->reply(5));
is($r->{code}, 250, 'excluded client: "." LF ends the data: 250');
$r = remember('excl', 'NOOP', $c->reply(5));
is($r->{code}, 250, 'excluded client: the next line is a command again');
say_($c, 'QUIT');
$c->close;

ok(wait_for(sub { !spool_files($pm->spool) }, 15, 'spool empty'),
    'every accepted message delivered');
my @mail = map { slurp($_) // '' } maildir_files($maildir);
for my $i (0 .. $#variants) {
    for my $l (qw(main rej)) {
        my ($name, $by) = @{ $variants[$i] }[0, 2];
        my ($n, $first) = @{ $by->{$l} }[1, 2];
        $name = "$l: $name";
        my @found = grep { /\Q$tag{"$i$l"}\E/ } @mail;
        is(scalar(@found), $n, "$name: $n message(s) queued");
        ok(@found <= 1, "$name: never two");
        is(scalar(grep { /\Q$tag{"$i$l"}-first\E/ } @mail), $first,
            "$name: the part with the fake terminator " . ($first ? 'is' : 'is not')
            . ' in it');
        # the maildir has LF line ends: a CR would be a bare one kept
        ok(!grep({ /\r/ } @found), "$name: no bare CR kept");
    }
}
my ($lm) = grep { /\Q$legacy\E/ } @mail;
like($lm // '', qr/\n\nline one\n\.dotted\n\z/,
    'excluded client: lines unstuffed, ended at "." LF');
is(scalar(grep { /\Q$okmark\E/ } @mail), 1, 'the good message of part 1 arrived');

# ---- shutdown: an idle session gets 421 4.3.2
$c = conn('main');
say_($c, 'EHLO client.test');
is($pm->stop, 0, 'postern stops with status 0');
my $bye = remember('main', '<shutdown>', $c->reply(5));
is($bye->{code}, 421, 'idle session at shutdown: 421');
is($bye->{enh}, '4.3.2', 'idle session at shutdown: 4.3.2');

# ---------------------------------------------------------------- 1. (check)
my (@bad, $checked);
for my $s (@seen) {
    my ($where, $sent, $rep) = @$s;
    next unless $rep->{code};
    next if $sent eq '<greeting>' && $rep->{code} == 220;      # RFC 2034 3
    next if $sent =~ /^(?:HELO|EHLO) \S/i && $rep->{code} == 250;  # RFC 2034 3
    next if $rep->{code} >= 300 && $rep->{code} < 400;          # 354, 334
    my $first = substr($rep->{code}, 0, 1);
    my @lines = @{ $rep->{lines} };
    for my $j (0 .. $#lines) {
        my $line = $rep->{code} . ($j == $#lines ? ' ' : '-') . $lines[$j];
        $checked++;
        push @bad, "$where: $sent -> $line"
            unless $line =~ /^[245]\d\d[ -]([245])\.\d{1,3}\.\d{1,3} / && $1 eq $first;
    }
}
cmp_ok($checked, '>', 150, "$checked reply lines checked");
is(scalar(@bad), 0, 'every reply line carries an enhanced status code of its class')
    or diag(join("\n", @bad));
done_testing;
