# 35-smtputf8.t - SMTPUTF8 (RFC 6531) end to end: postern-smtpd takes
# UTF-8 addresses only in a transaction that asked for them, and the
# outbound client carries them to a next hop that offers SMTPUTF8 and
# defers (4.6.7, with the reason in the log and in posternctl queue show)
# when the next hop does not.
#
# The MAIL parameters SMTPUTF8 and BODY=8BITMIME are stored in the
# envelope and said to the next hop as the client said them (a UTF-8
# header without SMTPUTF8 in MAIL does not make one; an ASCII message
# with them keeps them); an envelope stored before record version 3 (no
# flags: rewritten with mdb_dump/mdb_load in a second instance's index)
# is inferred as before.
#
# Two scripted SMTP peers on loopback: "utf8" offers SMTPUTF8 (the
# default relay transport), "plain" does not (route *@no.example). The
# source is read as bytes (no "use utf8"): every address below is the
# UTF-8 octets a client sends.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my ($uport, $pport) = (free_port(), free_port());
my $dir = tempdir();
my ($urec, $prec) = ("$dir/utf8-peer.log", "$dir/plain-peer.log");
my $ehlo_utf8 = "250-peer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
    . "250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES";
scripted_smtp_server($uport, [ { EHLO => $ehlo_utf8 } ], record => $urec);
scripted_smtp_server($pport, [ {} ], record => $prec);   # no SMTPUTF8

# 127.0.0.1 is not trusted: the relay domains (one of them a U-label)
# decide what is accepted
my $conf = write_config(
    transport => 'relay', relay_port => $uport,
    trusted_networks => ['192.0.2.0/24'],
    relay_domains => ['bücher.example', 'example.com', 'no.example'],
    retry_base => '60s', retry_cap => '60s',
    extra => <<"EOF");
transport plain {
	type = relay
	host = "127.0.0.1:$pport"
	timeout = 10s
}
route "*\@no.example" { transport = plain }
EOF
my $pm = start_postern($conf);
my $port = $pm->smtp_port;

# reply_is - code and enhanced code of a raw reply
sub reply_is {
    my ($r, $code, $enh, $name) = @_;
    my $ok = $r->{code} == $code && (!defined $enh || ($r->{enh} // '') eq $enh);
    ok($ok, $name) or diag("got: $r->{raw}");
    return $ok;
}

# submit - one raw transaction; the queue id of its 250, or undef
sub submit {
    my ($from, $params, $rcpt, $subject, $name, $to_port) = @_;
    my $s = smtp_raw($to_port // $port);
    $s->cmd('EHLO client.test');
    my @r = ($s->cmd("MAIL FROM:<$from>$params"), $s->cmd("RCPT TO:<$rcpt>"),
        $s->cmd('DATA'));
    my $ok = $r[0]{code} == 250 && $r[1]{code} == 250 && $r[2]{code} == 354;
    ok($ok, "$name: MAIL, RCPT, DATA accepted")
        or diag(join("\n", map { $_->{raw} } @r));
    return undef unless $ok;
    $s->send("From: <$from>\r\nTo: <$rcpt>\r\nSubject: $subject\r\n"
        . "Message-ID: <" . unique_tag('u8') . "\@client.test>\r\n\r\n"
        . "body of $subject\r\n.\r\n");
    my $d = $s->reply;
    $s->cmd('QUIT');
    $s->close;
    my ($id) = $d->{text} =~ /queued as ([0-9A-F]{16})/;
    ok($d->{code} == 250 && $id, "$name: queued") or diag($d->{raw});
    return $id;
}

# peer_lines - the recorded client lines of a scripted peer
sub peer_lines {
    my ($rec) = @_;
    return map { /^\d+ C: (.*)$/ ? $1 : () } split /\n/, (slurp($rec) // '');
}

# peer_messages - the message texts a scripted peer stored
sub peer_messages {
    my ($rec) = @_;
    return map { slurp($_) // '' } (slurp($rec) // '') =~ /^\d+ MSG: (\S+)$/mg;
}

# sent_with - $id was delivered and the peer recorded in $rec saw a MAIL
# line matching $re
sub sent_with {
    my ($id, $rec, $re, $name) = @_;
    ok($pm->wait_log(qr/\Q$id\E: .*status=sent/, 15), "$name: delivered")
        or diag($pm->log_tail(20));
    ok((grep { $_ =~ $re } peer_lines($rec)), $name)
        or diag(join("\n", peer_lines($rec)));
}

# ---- smtpd: EHLO, the parameter, 553 5.6.7 without it
my $s = smtp_raw($port);
my $e = $s->cmd('EHLO client.test');
ok((grep { $_ eq 'SMTPUTF8' } @{ $e->{lines} }), 'EHLO advertises SMTPUTF8')
    or diag($e->{raw});
reply_is($s->cmd('MAIL FROM:<sender@example.org>'), 250, '2.1.0', 'MAIL without SMTPUTF8');
reply_is($s->cmd('RCPT TO:<jörg@bücher.example>'), 553, '5.6.7',
    'UTF-8 RCPT without SMTPUTF8: 553 5.6.7');
like($s->{history}[-1]{reply}{text}, qr/Non-ASCII addresses not permitted for that recipient/,
    '553 says why');
reply_is($s->cmd('RCPT TO:<user@bücher.example>'), 553, '5.6.7',
    'UTF-8 domain alone without SMTPUTF8: 553 5.6.7');
reply_is($s->cmd('RSET'), 250, '2.0.0', 'RSET');
reply_is($s->cmd('MAIL FROM:<jörg@example.org>'), 553, '5.6.7',
    'UTF-8 MAIL FROM without SMTPUTF8: 553 5.6.7');
reply_is($s->cmd('MAIL FROM:<sender@example.org> SMTPUTF8=yes'), 501, '5.5.4',
    'SMTPUTF8=value: 501 5.5.4');
reply_is($s->cmd('MAIL FROM:<jörg@example.org> SMTPUTF8'), 250, '2.1.0',
    'UTF-8 MAIL FROM with SMTPUTF8: 250');
reply_is($s->cmd('RCPT TO:<jörg@bücher.example>'), 250, '2.1.5',
    'UTF-8 RCPT with SMTPUTF8: 250');
reply_is($s->cmd('RCPT TO:<用户@example.com>'), 250, '2.1.5',
    'CJK local part with SMTPUTF8: 250');
reply_is($s->cmd("RCPT TO:<j\xc3\x28rg\@example.com>"), 501, '5.1.3',
    'malformed UTF-8 even with SMTPUTF8: 501 5.1.3');
reply_is($s->cmd("RCPT TO:<\xc0\xafetc\@example.com>"), 501, '5.1.3',
    'overlong UTF-8 form: 501 5.1.3');
reply_is($s->cmd('RCPT TO:<jörg%evil.example@bücher.example>'), 501, '5.1.3',
    'percent hack in a UTF-8 address: 501 5.1.3');
reply_is($s->cmd('RCPT TO:<jörg@xn--bcher-kva.example>'), 554, '5.7.1',
    'the A-label is not the configured U-label (no IDNA mapping): 554');
reply_is($s->cmd('RCPT TO:<jörg@BüCHER.EXAMPLE>'), 250, '2.1.5',
    'relay domain U-label matches with ASCII letters in any case');
reply_is($s->cmd('RCPT TO:<jörg@bÜcher.example>'), 554, '5.7.1',
    'non-ASCII letters are not case-folded: 554');
reply_is($s->cmd('RCPT TO:<jörg@ünknown.example>'), 554, '5.7.1',
    'UTF-8 domain that is no relay domain: 554 5.7.1');
reply_is($s->cmd('RSET'), 250, '2.0.0', 'RSET ends the SMTPUTF8 transaction');
reply_is($s->cmd('MAIL FROM:<sender@example.org>'), 250, '2.1.0', 'new MAIL without it');
reply_is($s->cmd('RCPT TO:<jörg@bücher.example>'), 553, '5.6.7',
    'SMTPUTF8 does not outlive its transaction');
reply_is($s->cmd('QUIT'), 221, '2.0.0', 'QUIT');
$s->close;

# ---- delivery to a peer that offers SMTPUTF8: the parameter on the wire
my $tag1 = unique_tag('utf8-ok');
my $id1 = submit('jörg@example.org', ' SMTPUTF8', 'jörg@bücher.example',
    "Grüße $tag1", 'UTF-8 message for the SMTPUTF8 peer');
ok($pm->wait_log(qr/\Q$id1\E: .*status=sent/, 15), 'UTF-8 message delivered')
    or diag($pm->log_tail(20));
my @u = peer_lines($urec);
ok((grep { $_ eq 'MAIL FROM:<jörg@example.org> SMTPUTF8'
    || /^MAIL FROM:<jörg\@example\.org> .*\bSMTPUTF8$/ } @u),
    'MAIL FROM:<jörg@example.org> ... SMTPUTF8 on the wire')
    or diag(join("\n", @u));
ok((grep { $_ eq 'RCPT TO:<jörg@bücher.example>' } @u),
    'RCPT TO:<jörg@bücher.example> on the wire, octets intact')
    or diag(join("\n", @u));
my ($m1) = grep { /\Q$tag1\E/ } peer_messages($urec);
ok($m1 && $m1 =~ /^Subject: Grüße \Q$tag1\E\r?$/m, 'UTF-8 Subject: arrives intact')
    or diag($m1 // 'no message');
like($m1 // '', qr/^\tby postern\.test \(Postern\) with UTF8SMTP id \Q$id1\E/m,
    'Received: says "with UTF8SMTP" (RFC 6531 4.3)');
like($m1 // '', qr/^\tfor <jörg\@bücher\.example>;/m, 'Received: for <jörg@bücher.example>');

# ---- the same message to a peer without SMTPUTF8: deferred with a reason
my $tag2 = unique_tag('utf8-no');
my $id2 = submit('jörg@example.org', ' SMTPUTF8', '用户@no.example',
    "Grüße $tag2", 'UTF-8 message for the plain peer');
my $line = $pm->wait_log(qr/^(.*\Q$id2\E: .*status=deferred.*)$/m, 15);
ok($line, 'UTF-8 message to a peer without SMTPUTF8 is deferred')
    or diag($pm->log_tail(20));
like($line // '', qr/dsn=4\.6\.7\b/, 'deferral dsn 4.6.7');
like($line // '', qr/does not offer SMTPUTF8/, 'the log line says the peer lacks SMTPUTF8');
my ($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $conf, 'queue', 'show', $id2]);
is($st, 0, 'posternctl queue show exits 0') or diag($err);
like($out, qr/4\.6\.7/, 'queue show names 4.6.7');
like($out, qr/does not offer SMTPUTF8/, 'queue show gives the reason')
    or diag($out);
ok(!(grep { /^MAIL FROM:<jörg/ } peer_lines($prec)),
    'the plain peer never saw the UTF-8 envelope');

# ---- ASCII envelope to the plain peer: delivered as ever, no SMTPUTF8
my $tag3 = unique_tag('ascii');
my $id3 = submit('sender@example.org', '', 'plain@no.example', "ascii $tag3",
    'ASCII message for the plain peer');
ok($pm->wait_log(qr/\Q$id3\E: .*status=sent/, 15), 'ASCII message delivered')
    or diag($pm->log_tail(20));
my @p = peer_lines($prec);
ok((grep { /^MAIL FROM:<sender\@example\.org>(?: SIZE=\d+)?$/ } @p),
    'plain peer: MAIL FROM:<sender@example.org> without SMTPUTF8')
    or diag(join("\n", @p));
ok(!(grep { /SMTPUTF8/ } @p), 'SMTPUTF8 never sent to the peer that lacks it');
my ($m3) = grep { /\Q$tag3\E/ } peer_messages($prec);
ok($m3, 'the plain peer has the ASCII message');
like($m3 // '', qr/ with ESMTP id \Q$id3\E/, 'without SMTPUTF8 the Received: says ESMTP');

# ---- ASCII envelope, UTF-8 header: SMTPUTF8 where offered, else 8BITMIME
my $tag4 = unique_tag('hdr');
my $id4 = submit('sender@example.org', ' SMTPUTF8', 'user@example.com',
    "Grüße $tag4", 'UTF-8 header, ASCII envelope, SMTPUTF8 peer');
sent_with($id4, $urec, qr/^MAIL FROM:<sender\@example\.org> .*BODY=8BITMIME SMTPUTF8$/,
    'UTF-8 header: MAIL ... BODY=8BITMIME SMTPUTF8 to the peer that offers it');
my $tag5 = unique_tag('hdr-plain');
my $id5 = submit('sender@example.org', '', 'user@no.example',
    "Grüße $tag5", 'UTF-8 header, ASCII envelope, plain peer');
sent_with($id5, $prec, qr/^MAIL FROM:<sender\@example\.org> .*BODY=8BITMIME$/,
    'UTF-8 header alone is no reason to defer at a peer without SMTPUTF8: '
    . 'sent there with BODY=8BITMIME');

# ---- the client's MAIL parameters travel in the envelope
my $tag6 = unique_tag('no-param');
my $id6 = submit('sender@example.org', ' BODY=8BITMIME', 'user@example.com',
    "Grüße $tag6", 'UTF-8 header, MAIL without SMTPUTF8');
sent_with($id6, $urec, qr/^MAIL FROM:<sender\@example\.org> .*BODY=8BITMIME$/,
    'a UTF-8 header does not add SMTPUTF8 the client did not say');
my $tag7 = unique_tag('ascii-param');
my $id7 = submit('ascii7@example.org', ' BODY=8BITMIME SMTPUTF8', 'user@example.com',
    "ascii $tag7", 'ASCII message, MAIL with BODY=8BITMIME SMTPUTF8');
sent_with($id7, $urec, qr/^MAIL FROM:<ascii7\@example\.org> .*BODY=8BITMIME SMTPUTF8$/,
    'an ASCII message keeps the BODY=8BITMIME and SMTPUTF8 its client said');

is($pm->stop, 0, 'postern stops with status 0');

# ---- an envelope stored without the flags (before record version 3)
SKIP: {
    my ($dump, $load) = map { my $t = $_; (grep { -x } map { "$_/$t" } qw(/usr/bin /usr/sbin
        /usr/local/bin))[0] } qw(mdb_dump mdb_load);
    skip('mdb_dump/mdb_load (lmdb-utils) are not installed', 12) unless $dump && $load;
    my $odir = tempdir() . '/old';
    my $oconf = write_config(dir => $odir, transport => 'relay',
        relay_port => free_port(), retry_base => '60s', retry_cap => '60s');
    my $old = start_postern($oconf);
    my %id;
    for my $who (qw(old new)) {
        $id{$who} = submit("$who\@example.org", '', 'user@example.com',
            "Grüße " . unique_tag($who), "$who envelope", $old->smtp_port);
        ok($old->wait_log(qr/\Q$id{$who}\E: from=<\Q$who\E\@example\.org> .*queue active/,
            15), "$who envelope: queued (nothing listens)") or diag($old->log_tail(10));
    }
    is($old->stop, 0, 'the second postern stops');
    # the record of "old" as version 2 wrote it: no envelope flags
    my $idx = conf_info($oconf)->{spool_dir} . '/index';
    my ($st, $out) = run_cmd([$dump, '-s', 'msg', $idx]);
    my ($hdr) = $out =~ /\A(.*?HEADER=END\n)/s;
    my $key = unpack('H*', $id{old});
    my ($val) = $out =~ /^ \Q$key\E\n ([0-9a-f]+)\n/m;
    ok($st == 0 && $hdr && $val && substr($val, 0, 8) eq '03000000',
        'mdb_dump: the version 3 record of the old envelope') or diag($out);
    $val = '02000000' . substr($val // '', 8, -8);
    spit("$odir/msg.dump", "$hdr $key\n $val\nDATA=END\n");
    ($st, undef, my $err) = run_cmd(['sh', '-c', "$load -s msg $idx < $odir/msg.dump"]);
    is($st, 0, 'mdb_load: rewritten as version 2') or diag($err);
    write_config(dir => $odir, transport => 'relay', relay_port => $uport,
        retry_base => '60s', retry_cap => '60s');
    $old = start_postern($oconf);
    # one at a time: the scripted peer serves one connection at a time.
    # The first instance may have tried "new" already (then it waits 60 s):
    # a flush of that one message makes it due either way; if it was not
    # tried, the restart may have delivered it before the flush arrives.
    ($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $oconf, 'queue', 'flush',
        $id{new}]);
    ok($st == 0 || $err =~ /no such message/,
        'posternctl queue flush of the new envelope (or it was sent already)')
        or diag($err);
    ok($old->wait_log(qr/\Q$id{new}\E: .*status=sent/, 15), 'new envelope delivered');
    ($st, $out, $err) = run_cmd([bin('posternctl'), '-c', $oconf, 'queue', 'flush']);
    is($st, 0, 'posternctl queue flush') or diag($err);
    ok($old->wait_log(qr/\Q$id{old}\E: .*status=sent/, 15), 'old envelope delivered after a flush');
    my @l = peer_lines($urec);
    ok((grep { /^MAIL FROM:<old\@example\.org> .*BODY=8BITMIME SMTPUTF8$/ } @l),
        'version 2 record: SMTPUTF8 inferred from the UTF-8 header, as before')
        or diag(join("\n", @l));
    ok((grep { /^MAIL FROM:<new\@example\.org> .*BODY=8BITMIME$/ } @l),
        'version 3 record: what the client said (no SMTPUTF8)')
        or diag(join("\n", @l));
    is($old->stop, 0, 'and stops');
}
done_testing;
