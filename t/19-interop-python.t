# 19-interop-python.t - Python's smtplib submits to Postern (the interop
# matrix, Postern::Interop; the driver is t/interop/py_smtplib.py, run by
# Debian's /usr/bin/python3): port-25 style, submission with STARTTLS +
# AUTH PLAIN (SMTP.login), and SMTPS with AUTH LOGIN carrying the user
# name as an initial response (smtplib's own LOGIN: "AUTH LOGIN dXNlcg==",
# the form Postfix's Cyrus/Dovecot SASL accepts); all messages of a mode
# in one session. The plain, 8-bit (BODY=8BITMIME), UTF-8 (SMTPUTF8) and
# attachment messages arrive byte for byte when sent as bytes with CR LF
# line ends; sent as bytes with LF line ends (msg.as_bytes(); smtplib
# sends bytes unchanged but dot-stuffed, then CR LF "." CR LF) they
# arrive as Postfix 3.9 stores them too: each LF a line end, and one more
# empty line at the end (issue 18: refused before). A message composed with the
# email package (EmailMessage with an attachment, send_message) arrives
# with its text and attachment intact; a message without Date: and
# Message-ID: gets both on the submission listeners (as Postfix adds them
# for local_header_rewrite_clients) and arrives unchanged on port 25.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::Interop;

require_build();
need_tool('python3', -x '/usr/bin/python3');

my $ctx = interop_start();
my $driver = srcdir() . '/t/interop/py_smtplib.py';
my %auth = (mta => 'none', sub => 'plain', smtps => 'login-ir');
my %opts = (plain => [], eightbit => ['BODY=8BITMIME'],
    utf8 => ['SMTPUTF8', 'BODY=8BITMIME'], attachment => []);

my (@raw, @composed, @nodate);
for my $mode (qw(mta sub smtps)) {
    my @m = interop_messages("py-$mode");
    my @lf = interop_messages("py-$mode-lf");
    $_->{job} = { opts => $opts{ $_->{kind} }, crlf => 1 } for @m;
    $_->{job} = { opts => $opts{ $_->{kind} } } for @lf;
    my ($c) = interop_messages("py-$mode-composed", kinds => ['attachment']);
    @$c{qw(kind body job)} = ('composed', "Composed by Python's email package.\n",
        { compose => 1 });
    my ($n) = interop_messages("py-$mode-nodate", kinds => ['plain']);
    $n->{text} =~ s/^(?:Date|Message-ID): [^\n]*\n//mg;
    @$n{qw(kind job)} = ("no Date:", { crlf => 1 });
    my @all = (@m, @lf, $c, $n);
    my $job = interop_job($ctx, $mode, \@all, auth => $auth{$mode});
    interop_driver(['/usr/bin/python3', $driver, $job], \@all, "smtplib $mode");
    push @raw, map { ["smtplib $mode $_->{kind} CR LF", $_] } @m;
    push @raw, map { ["smtplib $mode $_->{kind} LF", $_, "$_->{text}\n"] } @lf;
    push @composed, ["smtplib $mode composed", $c];
    push @nodate, [$mode, $n];
}
interop_check($ctx, $_->[1], $_->[0], $_->[2]) for @raw;
interop_check_parts($ctx, $_->[1], $_->[0], $_->[1]{body}) for @composed;
for my $d (@nodate) {
    my ($mode, $m) = @$d;
    if ($mode eq 'mta') {
        interop_check($ctx, $m, 'smtplib mta without Date: (port 25: left as it is)');
        next;
    }
    my $got = interop_wait($ctx, $m->{tag});
    my ($head) = $got =~ /\A(.*?)\r?\n\r?\n/s;
    like($head // '', qr/^Date: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/m,
        "smtplib $mode without Date: Date: added");
    like($head // '', qr/^Message-ID: <[^<>\s]+\@postern\.test>$/m,
        "smtplib $mode without Message-ID: Message-ID: added");
}
is($ctx->{pm}->stop, 0, 'postern stops with status 0');
done_testing;
