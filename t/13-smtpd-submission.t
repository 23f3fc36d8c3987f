# 13-smtpd-submission.t - what postern-smtpd writes and logs for
# submission: the Received: protocol keyword (ESMTPSA, ESMTPA; RFC 3848)
# and the authenticated user when received_show_auth = yes; Date: and
# Message-ID: added on a listener marked submission = yes when missing
# (and never duplicated, nor added elsewhere); and the debug dialogue
# log (log_level = debug, or debug = yes on one listener) with every
# AUTH payload redacted.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::TestSMTPD;

require_build();

my $dir = tempdir() . '/sub';
mkdir $dir;
my ($crt, $key) = make_cert($dir, 'sub.postern.test');
my $pw = 'S3cret-' . unique_tag('pw');
my $hash = crypt($pw, '$6$' . 'abcdefgh12345678' . '$');
my %port = map { $_ => free_port() } qw(sub plain);

# start - a postern with a submission and a plain listener
sub start {
    my (%o) = @_;
    my $extra = "tls_cert = \"$crt\"\ntls_key = \"$key\"\n"
        . "received_show_auth = " . ($o{show} ? 'yes' : 'no') . "\n"
        . "smtp_user erin {\n\tpassword = \"$hash\"\n}\n"
        . listen_section('sub', "127.0.0.1:$port{sub}", submission => 'yes',
            auth => 'required', %{ $o{sub} // {} })
        . listen_section('plain', "127.0.0.1:$port{plain}", auth_cleartext => 'yes',
            %{ $o{plain} // {} });
    my $conf = write_config(name => $o{name}, smtp_port => 0, extra => $extra,
        raw => { log_level => $o{log_level} // 'info' });
    my $pm = start_postern($conf);
    wait_for(sub { smtpc($port{plain}) }, 10);
    return ($pm, conf_info($conf)->{maildir});
}

# delivered - the maildir file containing $tag (bounded wait)
sub delivered {
    my ($maildir, $tag) = @_;
    my $f = wait_for(sub {
        my @f = grep { (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files($maildir);
        return @f ? $f[0] : undef }, 10);
    return slurp($f // '/nonexistent') // '';
}

# header_section - the text before the first empty line
sub header_section { my ($t) = @_; $t =~ s/\r?\n\r?\n.*\z//s; return $t }

# auth_tls - a session on the submission listener, TLS + AUTH PLAIN done
sub auth_tls {
    my $c = smtpc($port{sub});
    $c->cmd('EHLO c.test');
    $c->cmd('STARTTLS');
    $c->starttls or die 'no TLS';
    $c->cmd('EHLO c.test');
    my $r = $c->cmd('AUTH PLAIN ' . plain_ir('erin', $pw));
    die "AUTH: $r->{code} $r->{text}" unless $r->{code} == 235;
    return $c;
}

my ($pm, $maildir) = start(name => 'show', show => 1);

# --- submission: ESMTPSA, auth shown, Date/Message-ID added ----------------
{
    my $c = auth_tls();
    my $tag = unique_tag('bare');
    my $r = $c->message('erin@example.com', 'r@example.org',
        "From: erin\@example.com\nSubject: $tag\n\nno date, no id\n");
    is($r->{code}, 250, 'submission message accepted') or diag $r->{text};
    my $text = delivered($maildir, $tag);
    my $h = header_section($text);
    like($h, qr/with ESMTPSA id/, 'Received: with ESMTPSA');
    like($h, qr/\(Authenticated sender: erin\)/, 'received_show_auth: the user');
    like($h, qr/\(using TLSv1\.[23] with cipher /, 'Received: the cipher');
    like($h, qr/^Date: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r?$/m,
        'Date: added');
    like($h, qr/^Message-ID: <[^<>\s]+\@postern\.test>\r?$/m, 'Message-ID: added');
    like($text, qr/Subject: \Q$tag\E\r?\n(?:Date|Message-ID): .*\r?\n.*\r?\n\r?\nno date/,
        'added at the end of the header section, before the empty line');
    is(() = $h =~ /^Date:/mg, 1, 'one Date:');

    $tag = unique_tag('full');
    $r = $c->message('erin@example.com', 'r@example.org',
        make_message(subject => $tag, message_id => '<own.id@client.test>'));
    is($r->{code}, 250, 'second message in the session');
    $h = header_section(delivered($maildir, $tag));
    is(() = $h =~ /^Date:/mg, 1, 'an existing Date: is not duplicated');
    is(() = $h =~ /^Message-ID:/mig, 1, 'an existing Message-ID: is not duplicated');
    like($h, qr/^Message-ID: <own\.id\@client\.test>/m, '... and is kept');

    $tag = unique_tag('folded');
    $r = $c->message('erin@example.com', 'r@example.org',
        "From: erin\@example.com\nSubject: $tag\nmessage-id:\n <folded\@client.test>\n"
        . "\nbody\n");
    $h = header_section(delivered($maildir, $tag));
    is(() = $h =~ /^Message-ID:/mig, 1, 'a folded, lower-case Message-ID: counts');
    like($h, qr/^Date: /m, '... while the missing Date: is added');

    $tag = unique_tag('nobody');
    $r = $c->message('erin@example.com', 'r@example.org', "Subject: $tag");
    is($r->{code}, 250, 'a message that is only a header section');
    $h = delivered($maildir, $tag);
    like($h, qr/Subject: \Q$tag\E\r?\nDate: [^\r\n]+\r?\nMessage-ID: <[^>]+>\r?\n\z/,
        '... gets Date: and Message-ID: at its end');

    $tag = unique_tag('nohdr');
    $r = $c->message('erin@example.com', 'r@example.org',
        "just text $tag\nsecond line\n\npara\n");
    is($r->{code}, 250, 'a message without a header section');
    $h = delivered($maildir, $tag);
    like($h, qr/\nDate: [^\n]+\nMessage-ID: <[^>]+>\r?\n\r?\njust text \Q$tag\E\r?\nsecond line\r?\n\r?\npara/,
        '... gets Date: and Message-ID: and an empty line before its first line');

    $tag = unique_tag('long');
    my $long = 'X-Long: ' . ('a' x 990);       # 998 octets, the most allowed
    $r = $c->message('erin@example.com', 'r@example.org',
        "Subject: $tag\n$long\n\nbody\n");
    is($r->{code}, 250, 'a header line of 1000 octets with its CR LF');
    $h = delivered($maildir, $tag);
    like($h, qr/\Q$long\E\r?\nDate: [^\n]+\nMessage-ID: <[^>]+>\r?\n\r?\nbody/,
        '... is kept whole, the additions after it');
    $r = $c->message('erin@example.com', 'r@example.org',
        "Subject: $tag\n$long" . "aa\n\nbody\n");
    is("$r->{code} " . ($r->{enh} // ''), '500 5.5.2',
        'a header line over 1000 octets: 500 5.5.2 (RFC 5321 4.5.3.1.6)');
    $c->close;
}

# --- not a submission listener: nothing added; ESMTPA without TLS --------
{
    my $c = smtpc($port{plain});
    $c->cmd('EHLO c.test');
    $c->cmd('AUTH PLAIN ' . plain_ir('erin', $pw));
    my $tag = unique_tag('plain');
    my $r = $c->message('erin@example.com', 'r@example.org',
        "From: erin\@example.com\nSubject: $tag\n\nno date\n");
    is($r->{code}, 250, 'plain listener: accepted');
    my $h = header_section(delivered($maildir, $tag));
    like($h, qr/with ESMTPA id/, 'Received: with ESMTPA (AUTH, no TLS)');
    unlike($h, qr/^Date:/m, 'no Date: added outside submission');
    unlike($h, qr/^Message-ID:/mi, 'no Message-ID: added outside submission');
    $c->close;
    $c = smtpc($port{plain});
    $c->cmd('EHLO c.test');
    $tag = unique_tag('esmtp');
    $c->message('x@example.org', 'r@example.org', "Subject: $tag\n\nx\n");
    $h = header_section(delivered($maildir, $tag));
    like($h, qr/with ESMTP id/, 'Received: with ESMTP');
    unlike($h, qr/Authenticated sender/, 'no user without AUTH');
    $c->close;
}
$pm->stop;

# --- received_show_auth = no (the default) ----------------------------------
($pm, $maildir) = start(name => 'hide');
{
    my $c = auth_tls();
    my $tag = unique_tag('hide');
    $c->message('erin@example.com', 'r@example.org', make_message(subject => $tag));
    my $h = header_section(delivered($maildir, $tag));
    like($h, qr/with ESMTPSA id/, 'ESMTPSA');
    unlike($h, qr/erin\)|Authenticated sender/, 'received_show_auth = no hides the user');
    $c->close;
}
$pm->stop;

# check_debug_log - the dialogue is there, the secrets are not
sub check_debug_log {
    my ($log, $what) = @_;
    like($log, qr/ < EHLO c\.test/, "$what: client lines logged");
    like($log, qr/ > 250-PIPELINING/, "$what: server lines logged");
    like($log, qr/ < AUTH PLAIN \[redacted\]/, "$what: AUTH PLAIN payload redacted");
    like($log, qr/ < AUTH LOGIN\r?$/m, "$what: AUTH LOGIN logged");
    like($log, qr/ < \[redacted\]/, "$what: continuation lines redacted");
    unlike($log, qr/\Q$pw\E/, "$what: no password");
    for my $secret (plain_ir('erin', $pw), b64($pw), b64('erin')) {
        unlike($log, qr/\Q$secret\E/, "$what: no base64 credentials");
    }
}

# debug_dialogue - AUTH PLAIN (initial response) and AUTH LOGIN sessions
sub debug_dialogue {
    my $c = smtpc($port{plain});
    $c->cmd('EHLO c.test');
    $c->cmd('AUTH PLAIN ' . plain_ir('erin', $pw));
    $c->cmd('QUIT');
    $c->close;
    $c = smtpc($port{plain});
    $c->cmd('EHLO c.test');
    $c->cmd('AUTH LOGIN');
    $c->cmd(b64('erin'));
    my $r = $c->cmd(b64($pw));
    $c->cmd('QUIT');
    $c->close;
    return $r;
}

# --- log_level = debug ------------------------------------------------------
($pm, $maildir) = start(name => 'debug', log_level => 'debug');
{
    is(debug_dialogue()->{code}, 235, 'AUTH LOGIN in the debug run');
    my $log = wait_for(sub { my $l = slurp($pm->log_file) // '';
        $l =~ /> 221 / ? $l : undef }, 5) // '';
    check_debug_log($log, 'log_level = debug');
}
$pm->stop;

# --- debug = yes on one listener, log_level = info ---------------------------
($pm, $maildir) = start(name => 'ldebug', plain => { debug => 'yes' });
{
    debug_dialogue();
    my $c = auth_tls();
    $c->cmd('QUIT');
    $c->close;
    my $log = wait_for(sub { my $l = slurp($pm->log_file) // '';
        $l =~ /> 221 / ? $l : undef }, 5) // '';
    check_debug_log($log, 'debug = yes');
    my @sub = grep { /debug: \d+ .* < STARTTLS/ } split /\n/, $log;
    is(scalar @sub, 0, 'the listener without debug = yes is not dumped');
}
$pm->stop;

done_testing();
