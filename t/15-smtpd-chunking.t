# 15-smtpd-chunking.t - CHUNKING/BDAT (RFC 3030), the 1000-octet text
# line limit, and the time bounds of postern-smtpd, byte-exact over raw
# sockets.
#
# BDAT: the EHLO keyword; one BDAT LAST; several chunks pipelined in one
# write (with a CR LF split between two chunks); two whole transactions
# in one write (reading waits for each commit); a chunk holding
# "\r\n.\r\n" and ".." lines is data, stored unchanged; BDAT 0 LAST; a
# last line without CR LF is completed; a refused BDAT (before MAIL, bad
# keyword, after a failed chunk) still has its chunk read and thrown away,
# exactly its size, also when it arrives in two writes (the chunk holds
# "QUIT": were it run, the session would end); DATA
# after BDAT is 503 and aborts; the size limit gives 552 5.3.4 at the end
# of the chunk that crosses it; a bare LF is normalized to CR LF as for
# DATA (smtpd_forbid_bare_newline's default), bare CR and NUL refused;
# RSET and a client that leaves mid-chunk leave nothing queued; a BDAT
# message is delivered with its Received: header and a DKIM signature
# that verifies.
# Line limit: 998 octets + CR LF are accepted, 999 are not (500 5.5.2,
# after the real end of the message, the session still in step), in the
# body, in the header and in BDAT content; a dot-stuffed line counts
# without its extra dot.
# Time bounds (a second postern): a client trickling a DATA or BDAT
# message one byte every 0.5 s gets 421 4.4.2 after smtpd_data_timeout
# and nothing is queued; an idle client gets 421 4.4.2 after
# smtpd_timeout; both are counted in /metrics with reason="timeout".
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Postern::Test;

require_build();

my $have_dkim = eval { require Mail::DKIM::Verifier; 1 };

my $conf = write_config(
    max_message_size => '20K',
    dkim => { domain => 'example.com', selector => 'test', generate => 1 },
);
my $pm = start_postern($conf);
my $port = $pm->smtp_port;

# reply_is - check code and enhanced code of a reply
sub reply_is {
    my ($r, $code, $enh, $name) = @_;
    my $ok = $r->{code} == $code && (!$enh || ($r->{enh} // '') eq $enh);
    ok($ok, $name) or diag("got: " . ($r->{raw} // '(none)'));
    return $ok;
}

# session - a raw session after EHLO
sub session {
    my $s = smtp_raw($port);
    $s->cmd('EHLO client.test');
    return $s;
}

# envelope - MAIL and RCPT on session $s; 1 if both got 250
sub envelope {
    my ($s) = @_;
    my $m = $s->cmd('MAIL FROM:<alice@example.com>');
    my $r = $s->cmd('RCPT TO:<bob@example.net>');
    return $m->{code} == 250 && $r->{code} == 250;
}

# msg - a message with $tag in its subject: a CR LF header section,
# then $body exactly as given
sub msg {
    my ($tag, $body) = @_;
    my $m = make_message(from => 'Alice <alice@example.com>', to => 'bob@example.net',
        subject => $tag, body => '');
    $m =~ s/\n/\r\n/g;
    return $m . ($body // "Body of $tag\r\n");
}

# lines - $n lines of 70 times $ch, CR LF ended
sub lines { my ($ch, $n) = @_; return join('', map { ($ch x 70) . "\r\n" } 1 .. $n) }

# delivered - the maildir file text containing $tag (bounded wait), or ''
sub delivered {
    my ($tag) = @_;
    my $f = wait_for(sub {
        my @f = grep { (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files($pm->maildir);
        return @f ? $f[0] : undef }, 10, "delivery of $tag");
    return slurp($f // '/nonexistent') // '';
}

# not_delivered - 1 if no maildir file holds $tag (after a short wait)
sub not_delivered {
    my ($tag) = @_;
    sleep(1);
    return !grep { (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files($pm->maildir);
}

# content - a delivered file without what delivery and smtpd put first
# (Return-Path:, DKIM-Signature:, Received:), LF line ends
sub content {
    my ($t) = @_;
    $t =~ s/\r\n/\n/g;
    1 while $t =~ s/\A(?:Return-Path|DKIM-Signature|Received):[^\n]*\n(?:[ \t][^\n]*\n)*//;
    return $t;
}

# lf - CR LF to LF
sub lf { my ($t) = @_; $t =~ s/\r\n/\n/g; return $t }

# ---- EHLO
my $s = smtp_raw($port);
my $e = $s->cmd('EHLO client.test');
ok((grep { $_ eq 'CHUNKING' } @{ $e->{lines} }), 'EHLO advertises CHUNKING')
    or diag($e->{raw});

# ---- one BDAT LAST
my $tag = unique_tag('one');
my $m = msg($tag);
ok(envelope($s), 'MAIL, RCPT');
$s->send('BDAT ' . length($m) . " LAST\r\n" . $m);
my $r = $s->reply;
reply_is($r, 250, '2.0.0', 'BDAT LAST: 250 2.0.0');
my ($qid) = $r->{text} =~ /^2\.0\.0 Ok: queued as (\S+)$/;
ok($qid, 'the reply is "Ok: queued as <qid>", as for DATA') or diag($r->{raw});
my $d = delivered($tag);
like($d, qr/^Received: from client\.test \(\S+ \[127\.0\.0\.1\]\)\r?\n\tby postern\.test \(Postern\) with ESMTP id \Q$qid\E/m,
    'delivered with the Received: header DATA would have');
is(content($d), lf($m), 'the content arrives byte for byte');
SKIP: {
    skip 'Mail::DKIM not installed', 1 unless $have_dkim;
    like($d, qr/^DKIM-Signature:/m, 'a BDAT message is DKIM-signed');
}
reply_is($s->cmd('NOOP'), 250, '2.0.0', 'the session goes on');

# ---- several chunks, pipelined in one write with the envelope; a CR LF
# split between two chunks; "." lines are data
$tag = unique_tag('multi');
$m = msg($tag, "line one\r\n.\r\n..two dots\r\n.\r\nafter the dot line\r\n");
my $cut1 = index($m, "\r\n\r\n") + 1;       # chunk 1 ends with a CR
my $cut2 = length($m) - 20;
my @chunks = (substr($m, 0, $cut1), substr($m, $cut1, $cut2 - $cut1), substr($m, $cut2));
$s->send("MAIL FROM:<alice\@example.com>\r\nRCPT TO:<bob\@example.net>\r\n"
    . 'BDAT ' . length($chunks[0]) . "\r\n$chunks[0]"
    . 'BDAT ' . length($chunks[1]) . "\r\n$chunks[1]"
    . 'BDAT ' . length($chunks[2]) . " LAST\r\n$chunks[2]");
my @r = $s->replies(5);
reply_is($r[0], 250, '2.1.0', 'pipelined MAIL');
reply_is($r[1], 250, '2.1.5', 'pipelined RCPT');
is($r[2]{raw}, '250 2.0.0 ' . length($chunks[0]) . ' octets received', 'chunk 1: 250 <n> octets received');
is($r[3]{raw}, '250 2.0.0 ' . length($chunks[1]) . ' octets received', 'chunk 2: 250 <n> octets received');
reply_is($r[4], 250, '2.0.0', 'BDAT LAST: queued (the split CR LF is one line end)');
like($r[4]{text}, qr/queued as/, '... "queued as"');
$d = delivered($tag);
like(lf($d), qr/\nline one\n\.\n\.\.two dots\n\.\nafter the dot line\n\z/,
    '"." lines and ".." are data: no end of data, no unstuffing');
is(content($d), lf($m), 'the chunks are joined byte for byte');

# ---- two whole transactions in one write: reading waits for each commit
my @tags = (unique_tag('pipe1'), unique_tag('pipe2'));
my $w = '';
for my $t (@tags) {
    my $mm = msg($t);
    $w .= "MAIL FROM:<alice\@example.com>\r\nRCPT TO:<bob\@example.net>\r\n"
        . 'BDAT ' . length($mm) . " LAST\r\n$mm";
}
$s->send($w . "NOOP\r\n");
@r = $s->replies(7);
is(join(' ', map { $_->{code} } @r), '250 250 250 250 250 250 250',
    'two pipelined BDAT transactions and a NOOP: seven 250 replies');
ok($r[2]{text} =~ /queued as/ && $r[5]{text} =~ /queued as/, '... two messages queued');
ok(delivered($tags[0]) && delivered($tags[1]), '... and both delivered');

# ---- BDAT 0 LAST ends a message; a last line without CR LF is completed
$tag = unique_tag('zero');
$m = msg($tag, "no final line end");
$m =~ s/\r\n\z//;
ok(envelope($s), 'MAIL, RCPT');
$s->send('BDAT ' . length($m) . "\r\n" . $m . "BDAT 0 LAST\r\n");
@r = $s->replies(2);
is($r[0]{raw}, '250 2.0.0 ' . length($m) . ' octets received', 'BDAT n: 250');
reply_is($r[1], 250, '2.0.0', 'BDAT 0 LAST: queued');
like(delivered($tag), qr/\nno final line end\r?\n\z/, 'the last line gets its line end');
ok(envelope($s), 'MAIL, RCPT');
reply_is($s->cmd('BDAT 0 LAST'), 250, '2.0.0', 'a message that is only BDAT 0 LAST');
$s->close;

# ---- refused BDAT: the chunk is still read and thrown away
$s = session();
my $junk = "QUIT\r\nRSET\r\nNOOP\r\n";          # run as commands, it would end the session
$s->send('BDAT ' . length($junk) . "\r\n$junk" . "NOOP\r\n");
reply_is($s->reply, 503, '5.5.1', 'BDAT before MAIL: 503 5.5.1');
$r = $s->reply;
is($r->{raw}, '250 2.0.0 Ok', 'the chunk was discarded: the next reply is the NOOP\'s');
$s->send("BDAT 12\r\nQUIT\r\n");
sleep(0.3);
$s->send("XXXX\r\n" . "NOOP\r\n");
reply_is($s->reply, 503, '5.5.1', 'BDAT before MAIL, its chunk sent in two writes: 503');
reply_is($s->reply, 250, '2.0.0', '... both parts of the chunk were discarded (no 221, no 500)');
reply_is($s->cmd('HELP'), 214, '2.0.0', '... and exactly the chunk: no reply left over');
reply_is($s->cmd('BDAT 12x'), 501, '5.5.4', 'BDAT 12x: 501 5.5.4');
reply_is($s->cmd('NOOP'), 250, '2.0.0', 'no size: nothing discarded');
$s->send("BDAT 6 LASTLY\r\nQUIT\r\nNOOP\r\n");
reply_is($s->reply, 501, '5.5.4', 'BDAT 6 LASTLY: 501 5.5.4');
reply_is($s->reply, 250, '2.0.0', 'its 6 octets ("QUIT\r\n") were discarded');
ok(envelope($s), 'MAIL, RCPT');
$s->send("BDAT 10\r\n0123456789DATA\r\n");
reply_is($s->reply, 250, '2.0.0', 'BDAT 10: 250');
reply_is($s->reply, 503, '5.5.1', 'DATA after BDAT: 503 5.5.1');
$s->send("BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n");
reply_is($s->reply, 503, '5.5.1', 'the transaction was aborted: BDAT is 503');
reply_is($s->reply, 250, '2.0.0', '... and its chunk discarded');
ok(envelope($s), 'MAIL, RCPT');
reply_is($s->cmd('RCPT TO:<carol@example.net>'), 250, '2.1.5', 'RCPT before BDAT: fine');
$s->send("BDAT 4\r\nabcdRCPT TO:<dave\@example.net>\r\n");
reply_is($s->reply, 250, '2.0.0', 'BDAT 4: 250');
reply_is($s->reply, 503, '5.5.1', 'RCPT after BDAT: 503 5.5.1');
reply_is($s->cmd('RSET'), 250, '2.0.0', 'RSET');
$s->close;

# ---- the size limit (20K): 552 5.3.4 at the end of the chunk
$s = session();
$tag = unique_tag('big');
ok(envelope($s), 'MAIL, RCPT');
my $part = msg($tag, lines('x', 200));     # about 14.6K
$s->send('BDAT ' . length($part) . "\r\n$part");
reply_is($s->reply, 250, '2.0.0', 'a first chunk under the limit: 250');
my $more = lines('y', 200);
$s->send('BDAT ' . length($more) . " LAST\r\n$more" . "NOOP\r\n");
reply_is($s->reply, 552, '5.3.4', 'the chunk that crosses the limit: 552 5.3.4');
reply_is($s->reply, 250, '2.0.0', 'the session is in step after it');
ok(envelope($s), 'MAIL, RCPT');
$more = lines('z', 400);
$s->send('BDAT ' . length($more) . "\r\n$more" . 'BDAT 6 LAST' . "\r\nQUIT\r\nNOOP\r\n");
reply_is($s->reply, 552, '5.3.4', 'one chunk over the limit: 552 5.3.4');
reply_is($s->reply, 503, '5.5.1', 'the transaction is over: the next BDAT is 503');
reply_is($s->reply, 250, '2.0.0', '... its chunk discarded');
ok(not_delivered($tag), 'nothing over the limit was queued');

# ---- bare LF, NUL, long lines in BDAT content
$tag = unique_tag('lf');
ok(envelope($s), 'MAIL, RCPT');
$m = msg($tag, "a\nb\n.\n..c\r\n");
$s->send('BDAT ' . length($m) . " LAST\r\n$m");
reply_is($s->reply, 250, '2.0.0', 'BDAT with bare LF: normalized, 250');
my $lfmsg = delivered($tag);
like(content($lfmsg), qr/\n\na\nb\n\.\n\.\.c\n\z/,
    '... one line per LF, dots untouched (BDAT is not dot-stuffed)');
for my $case (['bare CR at the end', "a\r", 550, '5.6.11'],
    ['NUL', "a\0b\r\n", 550, '5.6.0'],
    ['a line of 999 octets', ('l' x 999) . "\r\n", 500, '5.5.2']) {
    my ($name, $body, $code, $enh) = @$case;
    $tag = unique_tag('bad');
    ok(envelope($s), 'MAIL, RCPT');
    $m = msg($tag, $body);
    $s->send('BDAT ' . length($m) . " LAST\r\n$m");
    reply_is($s->reply, $code, $enh, "BDAT with $name: $code $enh");
    reply_is($s->cmd('NOOP'), 250, '2.0.0', '... and the session is in step');
    ok(not_delivered($tag), '... nothing queued');
}
$tag = unique_tag('bad');
ok(envelope($s), 'MAIL, RCPT');
my $half = msg($tag) . ('l' x 600);
$s->send('BDAT ' . length($half) . "\r\n$half" . "BDAT 402\r\n" . ('l' x 400) . "\r\n");
reply_is($s->reply, 250, '2.0.0', 'a line split over two chunks: the first chunk is fine');
reply_is($s->reply, 500, '5.5.2', '... the second makes it 1000 octets: 500 5.5.2');
$tag = unique_tag('ok998');
ok(envelope($s), 'MAIL, RCPT');
$m = msg($tag, ('k' x 998) . "\r\n");
$s->send('BDAT ' . length($m) . " LAST\r\n$m");
reply_is($s->reply, 250, '2.0.0', 'BDAT: a line of 998 octets + CR LF is fine');
$s->close;

# ---- RSET mid-transaction, and a client that leaves mid-chunk
$s = session();
$tag = unique_tag('rset');
ok(envelope($s), 'MAIL, RCPT');
$m = msg($tag);
$s->send('BDAT ' . length($m) . "\r\n$m");
reply_is($s->reply, 250, '2.0.0', 'a chunk');
reply_is($s->cmd('RSET'), 250, '2.0.0', 'RSET mid-transaction');
$s->send("BDAT 6 LAST\r\nQUIT\r\n" . "NOOP\r\n");
reply_is($s->reply, 503, '5.5.1', 'the transaction is gone: BDAT 503');
reply_is($s->reply, 250, '2.0.0', '... chunk discarded');
ok(not_delivered($tag), 'RSET: nothing queued');
$tag = unique_tag('gone');
ok(envelope($s), 'MAIL, RCPT');
$m = msg($tag);
$s->send('BDAT ' . (length($m) + 1000) . " LAST\r\n$m");
sleep(0.5);
$s->close;
ok($pm->wait_log(qr/lost connection after BDAT content from \[127\.0\.0\.1\]/, 5),
    'the server saw the client leave mid-chunk');
ok(not_delivered($tag), 'a client that left mid-chunk: nothing queued');
ok(wait_for(sub { !dir_files($pm->spool . '/tmp') }, 5, 'spool tmp/ empty'),
    'the spool file was aborted (tmp/ is empty)');

# ---- DKIM: a BDAT message signed as a DATA one is
SKIP: {
    skip 'Mail::DKIM not installed', 2 unless $have_dkim;
    my $rec = $pm->wait_log(qr/publish test\._domainkey\.example\.com\. IN TXT "([^"]+)"/, 5);
    my $dnsport = free_port();
    my $dns = dns_server($dnsport, { 'test._domainkey.example.com' => { TXT => $rec // '' } });
    Mail::DKIM::DNS::resolver(dkim_resolver($dnsport));
    $s = session();
    $tag = unique_tag('dkim');
    ok(envelope($s), 'MAIL, RCPT');
    $m = msg($tag, "Signed over BDAT\r\n.\r\nwith a dot line\r\n");
    $s->send('BDAT 7' . "\r\n" . substr($m, 0, 7) . 'BDAT ' . (length($m) - 7)
        . " LAST\r\n" . substr($m, 7));
    $s->replies(2);
    (my $crlf = delivered($tag)) =~ s/\r?\n/\r\n/g;
    $crlf =~ s/\AReturn-Path:[^\r]*\r\n//;
    my $v = Mail::DKIM::Verifier->new;
    $v->PRINT($crlf);
    $v->CLOSE;
    is($v->result, 'pass', 'the DKIM signature of a BDAT message verifies')
        or diag($v->result_detail);
    $s->close;
    stop_pid($dns);
}

# ---- the 1000-octet line limit in DATA
$s = session();
# data - DATA with $text (already CR LF and dot-stuffed) and ".";
# the final reply
my $data = sub {
    my ($text) = @_;
    envelope($s) or return { code => 0, raw => 'envelope failed' };
    my $r = $s->cmd('DATA');
    return $r unless $r->{code} == 354;
    $s->send($text . ".\r\n");
    return $s->reply;
};
$tag = unique_tag('l998');
reply_is($data->(msg($tag, ('a' x 998) . "\r\n")), 250, '2.0.0',
    'DATA: a line of exactly 998 octets + CR LF is accepted');
like(delivered($tag), qr/\n${\ ('a' x 998)}\r?\n/, '... and stored whole');
$tag = unique_tag('l999');
reply_is($data->(msg($tag, ('a' x 999) . "\r\nmore\r\n")), 500, '5.5.2',
    'DATA: 999 octets + CR LF: 500 5.5.2 after the end of data');
reply_is($s->cmd('NOOP'), 250, '2.0.0', 'the next command works');
ok(not_delivered($tag), 'nothing queued');
$tag = unique_tag('l5k');
reply_is($data->(msg($tag, ('b' x 5000) . "\r\n")), 500, '5.5.2', 'DATA: a 5000-octet line: 500');
reply_is($s->cmd('NOOP'), 250, '2.0.0', 'the next command works');
$tag = unique_tag('hdr');
$m = msg($tag);
$m =~ s/^Subject:/X-Long: ${\ ('h' x 1200)}\r\nSubject:/m;
reply_is($data->($m), 500, '5.5.2', 'DATA: a header line over 1000 octets: 500');
reply_is($s->cmd('NOOP'), 250, '2.0.0', 'the next command works');
ok(not_delivered($tag), 'nothing queued');
$tag = unique_tag('stuffed');
reply_is($data->(msg($tag, '..' . ('d' x 997) . "\r\n")), 250, '2.0.0',
    'DATA: "." + 998 octets on the wire (998 after unstuffing): accepted');
like(delivered($tag), qr/\n\.${\ ('d' x 997)}\r?\n/, '... stored unstuffed');
$s->close;
my $mt = metrics($pm->url('/metrics'));
is($pm->stop, 0, 'postern stops with status 0');

# ---- time bounds: smtpd_data_timeout and smtpd_timeout
my $tconf = write_config(name => 'bound', smtpd_timeout => '2s',
    extra => 'smtpd_data_timeout = 3s');
my $tpm = start_postern($tconf);
# trickle - send $bytes one every 0.5 s until the server replies or
# closes (bounded: 20 s); (reply, seconds)
my $trickle = sub {
    my ($c, $bytes) = @_;
    my $t0 = time();
    for my $b (split //, $bytes) {
        last if time() - $t0 > 20;
        $c->send($b) or last;
        return ($c->reply(5), time() - $t0) if $c->fill(0.5) || $c->{eof};
    }
    return ($c->reply(5), time() - $t0);
};
my $before = metric(metrics($tpm->url('/metrics')), 'postern_smtpd_rejections_total',
    reason => 'timeout') // 0;
for my $kind ('DATA', 'BDAT') {
    my $c = smtp_raw($tpm->smtp_port);
    $c->cmd('EHLO client.test');
    $tag = unique_tag('slow');
    $c->cmd('MAIL FROM:<alice@example.com>');
    $c->cmd('RCPT TO:<bob@example.net>');
    $m = msg($tag, "z\r\n" x 100);
    if ($kind eq 'DATA') {
        reply_is($c->cmd('DATA'), 354, '', 'DATA: 354');
    } else {
        $c->send('BDAT ' . length($m) . " LAST\r\n");
    }
    my ($tr, $secs) = $trickle->($c, $m);
    reply_is($tr, 421, '4.4.2', "$kind trickled one byte per 0.5 s: 421 4.4.2");
    like($tr->{text} // '', qr/postern\.test Error: timeout exceeded/, '... names host and timeout');
    ok($secs >= 2.5 && $secs < 10, "... after smtpd_data_timeout (3s): ${\ sprintf('%.1f', $secs)}s");
    ok($c->closed(3), '... and the connection is closed');
    ok(!grep({ (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files($tpm->maildir)),
        '... nothing queued');
    $c->close;
}
ok(wait_for(sub { !dir_files($tpm->spool . '/tmp') }, 5, 'spool tmp/ empty'),
    'the spool files were aborted');
my $i = smtp_raw($tpm->smtp_port);
$i->cmd('EHLO client.test');
my $t0 = time();
reply_is($i->reply(8), 421, '4.4.2', 'idle client: 421 4.4.2 after smtpd_timeout');
ok(time() - $t0 >= 1.5, '... not before smtpd_timeout');
ok($i->closed(3), '... closed');
ok($tpm->wait_log(qr/reject: command from \[127\.0\.0\.1\]: 421 4\.4\.2 postern\.test Error: timeout exceeded/, 5),
    'the idle timeout is logged as one refusal line with its code');
my $after = wait_for(sub {
    my $v = metric(metrics($tpm->url('/metrics')), 'postern_smtpd_rejections_total',
        reason => 'timeout') // 0;
    return $v >= $before + 3 ? $v : undef }, 5, 'timeout metric');
ok($after, '/metrics counts the three timeouts with reason="timeout"')
    or diag(metric(metrics($tpm->url('/metrics')), 'postern_smtpd_rejections_total',
        reason => 'timeout'));
is($tpm->stop, 0, 'second postern stops with status 0');
done_testing;
