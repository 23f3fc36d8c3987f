# Postern::Interop - the interoperability matrix (t/19-interop-*.t):
# real mail clients and libraries submitting to one Postern per test file.
#
# What it is: one postern with the three ways applications reach it -
# "mta" (port-25 style: plain SMTP from a trusted network, STARTTLS
# offered, no AUTH), "sub" (submission: STARTTLS required, then AUTH) and
# "smtps" (implicit TLS, then AUTH) - delivering into a maildir; the four
# test messages (plain text with dot lines, 8-bit UTF-8 text, a UTF-8
# (SMTPUTF8) envelope and header, a binary attachment); and the checks at
# the sink: the delivered file, less the trace fields Postern and its
# maildir transport put first, must equal the message the client sent
# byte for byte (line ends normalised to LF, which is how the maildir
# stores them), and the envelope sender must be the one given.
#
# The certificate is made at test time with SAN IP:127.0.0.1 and every
# client is told to trust it (no "insecure" switches): TLS is verified.
#
# A client that is not installed skips the file when run by hand, but
# FAILS it under CI (CI=true, as .ci/run runs): tools/deps.sh --test
# installs every client, so a missing one in CI is a broken set-up, not a
# reason to test less.
package Postern::Interop;

use strict;
use warnings;

use Carp qw(croak);
use Exporter qw(import);
use MIME::Base64 ();
use POSIX qw(strftime);
use Test::More ();
use Postern::Test;
use Postern::TestSMTPD qw(listen_section);

our @EXPORT = qw(need_tool interop_start interop_messages interop_check
    interop_check_parts interop_wait interop_sender node_modules_dir
    interop_job interop_driver extras_dir);

my $USER = 'interop';

# need_tool - skip_all (by hand) or fail (CI) unless $ok; $what names it
sub need_tool {
    my ($what, $ok) = @_;
    return 1 if $ok;
    if ($ENV{CI}) {
        Test::More::plan(tests => 1);
        Test::More::fail("$what is not installed: CI must have it "
            . '(tools/deps.sh --test installs it)');
        exit 1;
    }
    Test::More::plan(skip_all => "$what is not installed (tools/deps.sh --test)");
    exit 0;
}

# extras_dir - where tools/deps.sh puts the test extras (POSTERN_TEST_EXTRAS)
sub extras_dir { return $ENV{POSTERN_TEST_EXTRAS} // '/usr/local/lib/postern-test' }

# node_modules_dir - where tools/deps.sh installs the npm test packages
sub node_modules_dir { return extras_dir() . '/node_modules' }

# make_ca_cert - a self-signed certificate for 127.0.0.1 / localhost
sub make_ca_cert {
    my ($dir) = @_;
    my ($crt, $key) = ("$dir/interop.crt", "$dir/interop.key");
    system('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
        'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', $key, '-out', $crt,
        '-subj', '/CN=localhost', '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost', '-days', '2', '-batch')
        == 0 or croak 'openssl req failed';
    chmod 0644, $key;
    return ($crt, $key);
}

# interop_start - the shared postern of a test file; returns a hashref:
# pm, maildir, port => {mta, sub, smtps}, user, password, ca (the file a
# client must trust), dir. %opt: extra (config text added)
sub interop_start {
    my (%opt) = @_;
    my $dir = tempdir() . '/interop';
    mkdir $dir;
    chmod 0755, $dir;
    my ($crt, $key) = make_ca_cert($dir);
    my $pw = 'Pw-' . unique_tag('x');
    my $hash = crypt($pw, '$6$' . 'interop0salt1234' . '$');
    my %port = map { $_ => free_port() } qw(mta sub smtps);
    my $extra = "tls_cert = \"$crt\"\ntls_key = \"$key\"\n"
        . "smtp_user $USER {\n\tpassword = \"$hash\"\n}\n"
        . listen_section('sub', "127.0.0.1:$port{sub}", require_tls => 'yes',
            auth => 'required', submission => 'yes')
        . listen_section('smtps', "127.0.0.1:$port{smtps}", mode => 'smtps',
            auth => 'required', submission => 'yes')
        . ($opt{extra} // '');
    my $conf = write_config(name => 'interop', smtp_port => $port{mta},
        extra => $extra);
    my $pm = start_postern($conf);
    for my $p (values %port) {
        wait_for(sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$p", Timeout => 1) },
            10, "listener $p") or croak "listener $p did not come up";
    }
    return { pm => $pm, conf => $conf, maildir => conf_info($conf)->{maildir},
        port => \%port,
        user => $USER, password => $pw, ca => $crt, dir => $dir };
}

# attachment_bytes - 3000 reproducible bytes covering every octet value
sub attachment_bytes {
    my $x = 12345;
    return join('', map { $x = ($x * 1103515245 + 12345) % 2**31; chr(($x >> 16) & 255) }
        1 .. 3000);
}

# message_text - one test message (LF line ends) of kind $kind
sub message_text {
    my ($kind, $tag, $from, $to) = @_;
    my $date = strftime('%a, %d %b %Y %H:%M:%S +0000', gmtime());
    my $h = "From: Interop Sender <$from>\nTo: Interop Rcpt <$to>\n"
        . "Date: $date\nMessage-ID: <$tag\@interop.test>\nMIME-Version: 1.0\n";
    if ($kind eq 'plain') {
        return $h . "Subject: plain $tag\nContent-Type: text/plain; charset=us-ascii\n\n"
            . "Hello from the interop matrix.\n.A line that starts with a dot\n"
            . "..and one with two\nFrom the start of a line\n"
            . "trailing spaces   \n\tand a tab\n\nLast line.\n";
    }
    if ($kind eq 'eightbit' || $kind eq 'utf8') {
        return $h . "Subject: $kind Gr\xc3\xbc\xc3\x9fe $tag\n"
            . "Content-Type: text/plain; charset=utf-8\n"
            . "Content-Transfer-Encoding: 8bit\n\n"
            . "Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac"
            . "\xe8\xaa\x9e \xe2\x9c\x93\n\xc3\xa9t\xc3\xa9, na\xc3\xafve, \xc5\x93uvre\n";
    }
    my $b64 = MIME::Base64::encode_base64(attachment_bytes());
    $b64 =~ s/\r?\n/\n/g;
    return $h . "Subject: attachment $tag\n"
        . "Content-Type: multipart/mixed; boundary=\"=-$tag-=\"\n\n"
        . "This is a multi-part message in MIME format.\n\n--=-$tag-=\n"
        . "Content-Type: text/plain; charset=us-ascii\n\nSee the attachment.\n\n"
        . "--=-$tag-=\nContent-Type: application/octet-stream; name=\"data.bin\"\n"
        . "Content-Transfer-Encoding: base64\n"
        . "Content-Disposition: attachment; filename=\"data.bin\"\n\n$b64\n"
        . "--=-$tag-=--\n";
}

# interop_messages - the test messages for client $client: a list of
# hashrefs {kind, tag, from, to, text (LF line ends), utf8 (needs
# SMTPUTF8), body (the text part), attachment (its bytes, or undef)};
# %opt: kinds => [...] (default all four)
sub interop_messages {
    my ($client, %opt) = @_;
    my @out;
    for my $kind (@{ $opt{kinds} // [qw(plain eightbit utf8 attachment)] }) {
        my $tag = unique_tag("$client-$kind") =~ s/[^A-Za-z0-9-]/-/gr;
        my $utf8 = $kind eq 'utf8';
        my $from = $utf8 ? "j\xc3\xb6rg\@b\xc3\xbccher.example" : 'sender@example.org';
        my $to = $utf8 ? "zo\xc3\xab\@b\xc3\xbccher.example" : 'rcpt@example.com';
        my $text = message_text($kind, $tag, $from, $to);
        my ($body) = $kind eq 'attachment' ? ("See the attachment.\n")
            : $text =~ /\n\n(.*)\z/s;
        push @out, { kind => $kind, tag => $tag, from => $from, to => $to,
            utf8 => $utf8, text => $text, body => $body,
            attachment => $kind eq 'attachment' ? attachment_bytes() : undef };
    }
    return @out;
}

# interop_wait - the delivered maildir file holding $tag, as text (bounded
# wait; '' if it never came)
sub interop_wait {
    my ($ctx, $tag, $timeout) = @_;
    my $f = wait_for(sub {
        my @f = grep { (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files($ctx->{maildir});
        return @f ? $f[0] : undef }, $timeout // 15, "delivery of $tag");
    return defined $f ? slurp($f) // '' : '';
}

# strip_trace - (envelope sender, the message without the Return-Path:,
# Delivered-To: and Received: fields put in front of it), LF line ends
sub strip_trace {
    my ($t) = @_;
    $t =~ s/\r\n/\n/g;
    my $sender;
    while ($t =~ s/\A(Return-Path|Delivered-To|Received):([^\n]*)\n(?:[ \t][^\n]*\n)*//) {
        ($sender) = $2 =~ /<([^>]*)>/ if $1 eq 'Return-Path';
    }
    return ($sender, $t);
}

# interop_sender - the envelope sender of a delivered text
sub interop_sender { return (strip_trace($_[0]))[0] }

# check_envelope - the envelope sender of a delivered text is $m's
# (or $m->{sender}: a client that sends the domain as an A-label) and a
# UTF-8 one came with SMTPUTF8 (Received: ... with UTF8SMTP...; not for
# $m->{local}: postern-sendmail's Received: has no "with")
sub check_envelope {
    my ($got, $m, $name) = @_;
    return if $got eq '';
    Test::More::is(interop_sender($got), $m->{sender} // $m->{from},
        "$name: envelope sender");
    Test::More::like($got, qr/^\s+by \S+ \(Postern\) with UTF8SMTP/m,
        "$name: received with SMTPUTF8") if $m->{utf8} && !$m->{local};
}

# interop_check - the message $m arrived exactly as $want (default: its
# text) with its envelope sender; $name names the test
sub interop_check {
    my ($ctx, $m, $name, $want) = @_;
    my $got = interop_wait($ctx, $m->{tag});
    my (undef, $msg) = strip_trace($got);
    $want //= $m->{text};
    $want =~ s/\r\n/\n/g;
    my $ok = Test::More::ok($got ne '' && $msg eq $want, "$name: arrived byte for byte");
    Test::More::diag(diff_hint($want, $msg)) unless $ok;
    check_envelope($got, $m, $name);
    return $ok;
}

# interop_check_parts - a message a client composed itself: its text
# part (decoded) is $m's body text and its attachment (decoded) $m's
# bytes; returns the MIME::Entity
sub interop_check_parts {
    my ($ctx, $m, $name, $body) = @_;
    require MIME::Parser;
    my $got = interop_wait($ctx, $m->{tag});
    my (undef, $msg) = strip_trace($got);
    my $p = MIME::Parser->new;
    $p->output_to_core(1);
    $p->tmp_to_core(1);
    check_envelope($got, $m, $name);
    my $e = eval { $p->parse_data($msg) };
    Test::More::ok($e, "$name: arrived and parses as MIME") or return undef;
    my @parts = $e->parts_DFS;
    my ($text) = grep { !$_->is_multipart && $_->effective_type eq 'text/plain' } @parts;
    my $t = $text ? $text->bodyhandle->as_string : '';
    $t =~ s/\r\n/\n/g;
    Test::More::is($t =~ s/\n+\z//r, $body =~ s/\n+\z//r, "$name: text part intact");
    if (defined $m->{attachment}) {
        my ($a) = grep { ($_->head->recommended_filename // '') eq 'data.bin' } @parts;
        my $bytes = $a ? $a->bodyhandle->as_string : '';
        Test::More::ok($bytes eq $m->{attachment}, "$name: attachment byte for byte")
            or Test::More::diag(length($bytes) . ' bytes, want '
            . length($m->{attachment}));
    }
    return $e;
}

# interop_job - a driver's job file (JSON) for mode $mode with the
# messages @$msgs (each written to a file, "file"), plus %extra keys;
# returns its path. Strings are UTF-8 bytes and are written as they are.
sub interop_job {
    my ($ctx, $mode, $msgs, %extra) = @_;
    require JSON::PP;
    my @m;
    for my $m (@$msgs) {
        my $file = spit(tempdir() . "/$m->{tag}.eml", $m->{text});
        my $att = defined $m->{attachment}
            ? spit(tempdir() . "/$m->{tag}.bin", $m->{attachment}) : undef;
        push @m, { tag => $m->{tag}, from => $m->{from}, to => $m->{to}, file => $file,
            kind => $m->{kind}, body => $m->{body} // '', utf8 => $m->{utf8} ? 1 : 0,
            (defined $att ? (attachment => $att) : ()), %{ $m->{job} // {} } };
    }
    my $job = { mode => $mode, port => $ctx->{port}{$mode} + 0, ca => $ctx->{ca},
        user => $ctx->{user}, password => $ctx->{password},
        helo => 'client_host.interop.test', messages => \@m, %extra };
    return spit(tempdir() . '/' . unique_tag("job-$mode") . '.json',
        JSON::PP->new->canonical->encode($job));
}

# interop_driver - run a driver (argv, the job file last); a test per
# message that its line says "TAG ok"; returns the messages sent
sub interop_driver {
    my ($argv, $msgs, $name) = @_;
    my ($st, $out, $err) = run_cmd($argv, 60);
    Test::More::is($st, 0, "$name: the driver exits 0") or Test::More::diag($err);
    my %res = map { /^(\S+) (.*)$/ ? ($1 => $2) : () } split /\n/, $out;
    my @ok;
    for my $m (@$msgs) {
        my $r = $res{ $m->{tag} } // 'no result';
        Test::More::is($r, 'ok', "$name $m->{kind}: sent") or Test::More::diag($err);
        push @ok, $m if $r eq 'ok';
    }
    return @ok;
}

# diff_hint - where two texts first differ (for a failure's diag)
sub diff_hint {
    my ($want, $got) = @_;
    my $i = 0;
    $i++ while $i < length($want) && $i < length($got)
        && substr($want, $i, 1) eq substr($got, $i, 1);
    my $show = sub { my $s = substr($_[0], $i > 40 ? $i - 40 : 0, 100);
        $s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge; $s };
    return "first difference at byte $i (want " . length($want) . ', got '
        . length($got) . " bytes)\n want: " . $show->($want) . "\n  got: "
        . $show->($got);
}

1;
