# 10-smtp-protocol.t - postern-smtpd's protocol behaviour, byte-exact.
#
# A raw socket client talks to the real postern: greeting, EHLO keywords,
# command sequencing (503), address tricks (501), unknown verbs and long
# lines (500), VRFY/NOOP/RSET/HELP, SIZE limits (552), the relay rule
# (554 5.7.1 from an untrusted client), PIPELINING, bare LF in data
# with smtpd_forbid_bare_newline = reject (550, nothing queued; the
# default, normalize, is in t/18), the error limit (421), and an
# enhanced status code on every reply that must carry one (RFC 2034).
# 127.0.0.1 is deliberately NOT trusted here (trusted_networks =
# 192.0.2.0/24) and only example.net is a relay domain.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $conf = write_config(
    trusted_networks => ['192.0.2.0/24'],
    relay_domains => ['example.net'],
    max_message_size => '10K',
    max_recipients => 3,
    extra => 'smtpd_forbid_bare_newline = reject',
);
my $pm = start_postern($conf);
my $port = $pm->smtp_port;
my @sessions;

# session - a new raw connection, remembered for the enhanced-code check
sub session { my $s = smtp_raw($port); push @sessions, $s; return $s }

# reply_is - check code and (optional) enhanced code of a reply
sub reply_is {
    my ($r, $code, $enh, $name) = @_;
    my $ok = $r->{code} == $code && (!$enh || ($r->{enh} // '') eq $enh);
    ok($ok, $name) or diag("got: $r->{raw}");
    return $ok;
}

# open_data - MAIL/RCPT/DATA to example.net; the 354 reply or the failure
sub open_data {
    my ($s, $from) = @_;
    $s->cmd('MAIL FROM:<' . ($from // 'sender@example.org') . '>');
    $s->cmd('RCPT TO:<user@example.net>');
    return $s->cmd('DATA');
}

# ---- greeting and EHLO
my $s = session();
like($s->{greeting}{raw}, qr/^220 postern\.test ESMTP Postern/, 'greeting');
reply_is($s->cmd('MAIL FROM:<a@example.org>'), 503, '5.5.1', 'MAIL before EHLO: 503');
reply_is($s->cmd('EHLO'), 501, '5.5.4', 'EHLO without argument: 501');
reply_is($s->cmd('HELO'), 501, '5.5.4', 'HELO without argument: 501');
my $e = $s->cmd('EHLO client.test');
is($e->{code}, 250, 'EHLO 250');
is($e->{lines}[0] =~ s/\s.*//r, 'postern.test', 'EHLO first line is the hostname');
my %kw = map { (uc((split ' ', $_)[0] // '') => $_) } @{ $e->{lines} }[1 .. $#{ $e->{lines} }];
ok($kw{PIPELINING}, 'EHLO advertises PIPELINING');
is($kw{SIZE}, 'SIZE 10240', 'EHLO advertises SIZE 10240');
ok($kw{'8BITMIME'}, 'EHLO advertises 8BITMIME');
ok($kw{ENHANCEDSTATUSCODES}, 'EHLO advertises ENHANCEDSTATUSCODES');

# ---- sequencing
reply_is($s->cmd('RCPT TO:<user@example.net>'), 503, '5.5.1', 'RCPT before MAIL: 503');
reply_is($s->cmd('DATA'), 503, '5.5.1', 'DATA before MAIL: 503');
reply_is($s->cmd('MAIL FROM:<sender@example.org>'), 250, '2.1.0', 'MAIL 250 2.1.0');
reply_is($s->cmd('MAIL FROM:<sender@example.org>'), 503, '5.5.1', 'nested MAIL: 503');
my $r = $s->cmd('DATA');
ok($r->{code} == 503 || $r->{code} == 554, 'DATA before RCPT: 503/554')
    or diag($r->{raw});
is($r->{enh}, '5.5.1', 'DATA before RCPT: 5.5.1');
reply_is($s->cmd('RSET'), 250, '2.0.0', 'RSET 250');
reply_is($s->cmd('NOOP'), 250, '2.0.0', 'NOOP 250');
reply_is($s->cmd('noop'), 250, '2.0.0', 'verbs are case-insensitive');
reply_is($s->cmd('VRFY postmaster'), 252, '2.5.0', 'VRFY 252');
reply_is($s->cmd('HELP'), 214, '2.0.0', 'HELP 214');
reply_is($s->cmd('FROBNICATE now'), 500, '5.5.2', 'unknown verb: 500');

# ---- address syntax tricks: 501, never a wider relay
# (a fresh session for each group keeps every session under the error limit)
$s->cmd('QUIT');
$s = session();
$s->cmd('EHLO client.test');
reply_is($s->cmd('MAIL FROM:<user%evil.example@example.net>'), 501, '5.1.7',
    'MAIL percent hack: 501 5.1.7');
reply_is($s->cmd('MAIL FROM:<sender@example.org> FROBNICATE=1'), 555, '5.5.4',
    'MAIL unknown parameter: 555');
reply_is($s->cmd('MAIL FROM:<sender@example.org>'), 250, '2.1.0', 'MAIL ok');
my @bad = (
    'user%evil.example@example.net',            # percent hack
    '@relay.example.net:user@evil.example',     # source route
    'user@example.net.',                        # trailing dot
    'evil.example!user@example.net',            # bang path
    '"user@evil.example"@example.net',          # quoted local part with @
    'user@[192.0.2.1]',                         # IP literal
    'user@example..net',                        # empty label
    'user',                                     # no domain
    'postmaster@',                              # empty domain
    '<postmaster>',                             # nested brackets
    'user@' . ('a' x 64 . '.') x 4 . 'net',     # over-long domain
);
for my $addr (@bad) {
    reply_is($s->cmd("RCPT TO:<$addr>"), 501, '5.1.3', "RCPT <$addr>: 501 5.1.3");
}
reply_is($s->cmd('RCPT TO:<>'), 501, '5.1.3', 'RCPT <>: 501');
reply_is($s->cmd('RCPT TO:<user@example.com>'), 554, '5.7.1',
    'relay to a non-relay domain from an untrusted client: 554 5.7.1');
like($sessions[-1]{history}[-1]{reply}{text}, qr/Relay access denied/i,
    '554 says relay access denied');
reply_is($s->cmd('RCPT TO:<user@EXAMPLE.NET>'), 250, '2.1.5',
    'relay domain matches case-insensitively');
reply_is($s->cmd('RCPT TO:<other@example.net>'), 250, '2.1.5', 'second RCPT');
reply_is($s->cmd('RCPT TO:<third@example.net>'), 250, '2.1.5', 'third RCPT');
reply_is($s->cmd('RCPT TO:<fourth@example.net>'), 452, '4.5.3',
    'more than max_recipients: 452 4.5.3');
reply_is($s->cmd('RSET'), 250, '2.0.0', 'RSET after recipients');

# ---- <Postmaster> without a domain (RFC 5321 4.1.1.3), from anyone
$s->cmd('QUIT');
$s = session();
$s->cmd('EHLO client.test');
$s->cmd('MAIL FROM:<sender@example.org>');
reply_is($s->cmd('RCPT TO:<Postmaster>'), 250, '2.1.5',
    'RCPT TO:<Postmaster> from an untrusted client: 250 2.1.5');
reply_is($s->cmd('RCPT TO:<POSTMASTER>'), 250, '2.1.5', 'any case: 250');
reply_is($s->cmd('RCPT TO:<postmaster@postern.test>'), 250, '2.1.5',
    'postmaster@hostname: 250 (the same mailbox)');
reply_is($s->cmd('RCPT TO:<postmaster@example.com>'), 554, '5.7.1',
    'the postmaster of another domain is still relaying: 554 5.7.1');
reply_is($s->cmd('RCPT TO:<Postmaster> NOTIFY=NEVER'), 555, '5.5.4',
    'parameters after <Postmaster> are looked at: 555');
reply_is($s->cmd('DATA'), 354, undef, 'DATA for the postmaster');
my $pmtag = unique_tag('postmaster');
reply_is($s->cmd("Subject: $pmtag\r\n\r\nfor the postmaster\r\n."), 250, '2.0.0',
    'message to the postmaster queued');
ok($pm->wait_log(qr/to=<postmaster\@postern\.test>.*status=sent/, 20),
    'delivered to postmaster@hostname');

# ---- long line and NUL: 500, then the session still works
$s->cmd('QUIT');
$s = session();
$s->cmd('EHLO client.test');
reply_is($s->cmd('NOOP ' . ('x' x 600)), 500, '5.5.2', '600-byte line: 500');
reply_is($s->cmd('NOOP'), 250, '2.0.0', 'session in sync after the long line');
reply_is($s->cmd("NO\0OP"), 500, '5.5.2', 'NUL in a command: 500');
reply_is($s->cmd('NOOP'), 250, '2.0.0', 'session in sync after NUL');

# ---- SIZE
reply_is($s->cmd('MAIL FROM:<sender@example.org> SIZE=20000'), 552, '5.3.4',
    'MAIL SIZE= over the limit: 552 5.3.4');
reply_is($s->cmd('MAIL FROM:<sender@example.org> SIZE=2000 BODY=8BITMIME'), 250,
    '2.1.0', 'MAIL SIZE= under the limit with BODY=8BITMIME: 250');
reply_is($s->cmd('RCPT TO:<user@example.net>'), 250, '2.1.5', 'RCPT for big body');
reply_is($s->cmd('DATA'), 354, undef, 'DATA 354');
$s->send("Subject: big\r\n\r\n" . (('y' x 78) . "\r\n") x 200 . ".\r\n");
reply_is($s->reply, 552, '5.3.4', 'body over the limit: 552 5.3.4');
reply_is($s->cmd('NOOP'), 250, '2.0.0', 'session in sync after the big body');

# ---- bare LF in data: 550, nothing queued
my $before = metrics($pm->url('/metrics'));
my $bare = unique_tag('bare');
reply_is(open_data($s), 354, undef, 'DATA for the bare-LF message');
$s->send("Subject: $bare\r\n\r\nline one\nline two\r\n.\r\n");
my $br = $s->reply;
reply_is($br, 550, '5.6.11', 'bare LF in data: 550 5.6.11');
reply_is($s->cmd('NOOP'), 250, '2.0.0', 'session in sync after the bare LF');

# ---- SMTP smuggling: <LF>.<LF> and <CR>.<CR> never end the data
for my $end ("\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n") {
    (my $shown = $end) =~ s/\r/<CR>/g;
    $shown =~ s/\n/<LF>/g;
    reply_is(open_data($s), 354, undef, "DATA for smuggling with $shown");
    $s->send("Subject: $bare smuggle\r\n\r\nbody$end"
        . "MAIL FROM:<evil\@example.org>\r\nRCPT TO:<user\@example.net>\r\nDATA\r\n"
        . "Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n");
    my $sr = $s->reply;
    reply_is($sr, 550, '5.6.11', "$shown inside data: one 550 for the whole thing");
    my $nr = $s->cmd('NOOP');
    reply_is($nr, 250, '2.0.0', "$shown: no smuggled command was answered");
}

# ---- PIPELINING: one write, replies in order, then a good message
$s->cmd('QUIT');
$s = session();
$s->cmd('EHLO client.test');
my $good = unique_tag('good');
$s->send("RSET\r\nMAIL FROM:<sender\@example.org>\r\nRCPT TO:<user\@example.net>\r\n"
    . "RCPT TO:<user\@example.com>\r\nDATA\r\n");
my @p = $s->replies(5);
is_deeply([ map { $_->{code} } @p ], [ 250, 250, 250, 554, 354 ],
    'pipelined RSET/MAIL/RCPT/RCPT/DATA answered in order')
    or diag(join("\n", map { $_->{raw} } @p));
$s->send("Subject: $good\r\n\r\nthe good one\r\n.\r\nNOOP\r\n");
my ($dr, $nr) = $s->replies(2);
reply_is($dr, 250, '2.0.0', 'pipelined message accepted');
like($dr->{text}, qr/queued as [0-9A-F]{16}\b/, '250 names the queue id');
reply_is($nr, 250, '2.0.0', 'NOOP pipelined after the dot');

# nothing from the bare-LF message reaches the maildir; the good one does
ok(wait_for(sub { grep { (slurp($_) // '') =~ /\Q$good\E/ } maildir_files($pm->maildir) },
    10, 'the good message in the maildir'), 'good message delivered');
my @all = map { slurp($_) // '' } maildir_files($pm->maildir);
is(scalar(grep { /\Q$bare\E/ } @all), 0, 'bare-LF message was not queued');
is(scalar(grep { !/\Q$pmtag\E/ } @all), 1, 'exactly one message delivered (besides the postmaster one)');
ok(wait_for(sub { !spool_files($pm->spool) },
    10, 'spool tmp/ and msg/ empty'), 'nothing left in the spool');
my $after = metrics($pm->url('/metrics'));
is(($after->{postern_messages_accepted_total} // 0)
    - ($before->{postern_messages_accepted_total} // 0), 1,
    'messages_accepted went up by exactly one');
reply_is($s->cmd('QUIT'), 221, '2.0.0', 'QUIT 221');
ok($s->closed(5), 'connection closed after QUIT');

# ---- 20 errors: 421 and close
my $t = session();
$t->cmd('EHLO client.test');
my $last;
for my $i (1 .. 25) {
    $last = $t->cmd("BOGUS$i");
    last if $last->{code} != 500;
}
reply_is($last, 421, '4.7.0', 'too many errors: 421 4.7.0');
ok($t->closed(5), 'connection closed after 421');

# ---- every reply that must carry an enhanced status code has one
# (RFC 2034: not the greeting, not HELO/EHLO replies, not 354)
my @missing;
for my $h (map { $_->history } @sessions) {
    my ($sent, $rep) = ($h->{sent} // '', $h->{reply});
    next if !$rep->{code} || $rep->{code} == 354;
    next if $sent =~ /^(?:EHLO|HELO) \S/i && $rep->{code} == 250;
    next if $sent eq '' && $rep->{code} == 220;
    push @missing, $rep->{raw} unless $rep->{enh};
}
is(scalar(@missing), 0, 'every reply carries an enhanced status code')
    or diag(join("\n", @missing));

$_->close for @sessions;
is($pm->stop, 0, 'postern stops with status 0');

# ---- idle timeout: 421 4.4.2 and close
my $tconf = write_config(name => 'timeout', smtpd_timeout => '1s', http_port => '');
my $tpm = start_postern($tconf);
my $i = smtp_raw($tpm->smtp_port);
$i->cmd('EHLO client.test');
my $to = $i->reply(6);
reply_is($to, 421, '4.4.2', 'idle client: 421 4.4.2 after smtpd_timeout');
like($to->{text}, qr/postern\.test Error: timeout exceeded/, '421 names the host and the timeout');
ok($i->closed(3), 'connection closed after the timeout');
is($tpm->stop, 0, 'second postern stops with status 0');
done_testing;
