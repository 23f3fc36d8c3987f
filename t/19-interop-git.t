# 19-interop-git.t - git send-email (Debian's git-email: Net::SMTP with
# IO::Socket::SSL and Authen::SASL) submits to Postern (the interop
# matrix, Postern::Interop): port-25 style, submission with STARTTLS +
# AUTH (--smtp-encryption=tls) and SMTPS (ssl), the certificate verified
# (--smtp-ssl-cert-path), an underscore in the EHLO name; three patches
# made with git format-patch in a throw-away repository: a plain one, an
# 8-bit one (UTF-8 in the commit message and the file), and one sent as
# a MIME attachment (--attach) holding a binary file (--binary). git
# send-email rewrites the header section; the body of each patch file
# must arrive byte for byte. git send-email has no SMTPUTF8.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::Interop;

require_build();
need_tool('git send-email (Debian git-email)',
    -x '/usr/bin/git' && -e '/usr/lib/git-core/git-send-email');

my $ctx = interop_start();
my $repo = tempdir() . '/repo';
local $ENV{HOME} = tempdir();
local $ENV{GIT_CONFIG_NOSYSTEM} = 1;
local $ENV{GIT_AUTHOR_NAME} = 'Interop Sender';
local $ENV{GIT_AUTHOR_EMAIL} = 'sender@example.org';
local $ENV{GIT_COMMITTER_NAME} = 'Interop Sender';
local $ENV{GIT_COMMITTER_EMAIL} = 'sender@example.org';

# git - run git in the repository; its stdout (dies on failure)
sub git {
    my ($st, $out, $err) = run_cmd(['/usr/bin/git', '-C', $repo, @_], 30);
    die "git @_: $err" if $st != 0;
    return $out;
}

# patch - commit $files (name => bytes) with subject $subject; the
# format-patch file (extra options @fp)
sub patch {
    my ($subject, $files, @fp) = @_;
    spit("$repo/$_", $files->{$_}) for keys %$files;
    git('add', keys %$files);
    git('commit', '-q', '-m', $subject, '-m', "Body of \xc2\xab$subject\xc2\xbb.");
    my $out = git('format-patch', '-1', '-o', tempdir() . '/patches', @fp);
    chomp $out;
    return $out;
}

mkdir $repo;
git('init', '-q');
my $m0 = (interop_messages('git', kinds => ['attachment']))[0];
my @sent;
for my $mode (qw(mta sub smtps)) {
    my %t = map { $_ => unique_tag("git-$mode-$_") } qw(plain eightbit attachment);
    my @p = (
        ['plain', patch("plain $t{plain}",
            { "a-$mode.txt" => "hello\n.dot line\nbye\n" })],
        ['eightbit', patch("eightbit Gr\xc3\xbc\xc3\x9fe $t{eightbit}",
            { "u-$mode.txt" => "Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\n" })],
        ['attachment', patch("attachment $t{attachment}",
            { "b-$mode.bin" => $m0->{attachment} }, '--attach', '--binary')],
    );
    for my $p (@p) {
        my ($kind, $file) = @$p;
        my @a = ('/usr/bin/git', 'send-email', '--confirm=never', '--quiet',
            '--smtp-server=127.0.0.1', "--smtp-server-port=$ctx->{port}{$mode}",
            '--smtp-domain=client_host.interop.test',
            '--from=Interop Sender <sender@example.org>',
            '--to=rcpt@example.com', '--suppress-cc=all', '--no-thread',
            '--8bit-encoding=UTF-8', "--smtp-ssl-cert-path=$ctx->{ca}");
        push @a, '--smtp-encryption=' . ($mode eq 'sub' ? 'tls' : 'ssl'),
            "--smtp-user=$ctx->{user}", "--smtp-pass=$ctx->{password}" if $mode ne 'mta';
        my ($st, $out, $err) = run_cmd([@a, $file], 60);
        is($st, 0, "git send-email $mode $kind: exits 0") or diag($out . $err);
        push @sent, ["git send-email $mode $kind", $file, $t{$kind}];
    }
}
for my $s (@sent) {
    my ($name, $file, $t) = @$s;
    my $got = interop_wait($ctx, "$t\xc2\xbb");      # in the body: the
                                                   # subject may be encoded
    $got =~ s/\r\n/\n/g;
    my ($body) = $got =~ /\n\n(.*)\z/s;
    my ($want) = (slurp($file) // '') =~ /\n\n(.*)\z/s;
    ok(defined $body && defined $want && $body eq $want, "$name: the patch arrived byte for byte")
        or diag("got:\n" . ($body // '(nothing)'));
    is(interop_sender($got), 'sender@example.org', "$name: envelope sender");
}
is($ctx->{pm}->stop, 0, 'postern stops with status 0');
done_testing;
