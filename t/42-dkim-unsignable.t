# 42-dkim-unsignable.t - a message libopendkim cannot parse (issue 19
# finding 4) never waits in the queue for an error that recurs on every
# attempt. With the default dkim_unsignable = deliver, a message carrying
# a malformed DKIM-Signature and one whose header section has a line that
# is not a header field are delivered at the first attempt, unsigned, with
# one warning each and postern_dkim_unsignable_total counting them; a
# well-formed message is still signed. With dkim_unsignable = bounce the
# same message is bounced 5.6.0 at the first attempt (a DSN to the
# sender), and never deferred.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $BAD_SIG = "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=x; b=;;;=\r\n";

# message - a message from alice@example.com with a tag, after $pre
sub message {
    my ($pre, $tag) = @_;
    return $pre . "From: alice\@example.com\r\nTo: bob\@example.net\r\n"
        . "Subject: $tag\r\n\r\nbody $tag\r\n";
}

# delivered - the maildir message holding $tag (bounded wait), or ''
sub delivered {
    my ($pm, $tag) = @_;
    my $text = '';
    wait_for(sub {
        ($text) = grep { /\Q$tag\E(?![\w-])/ }
            map { slurp($_) // '' } maildir_files($pm->maildir);
        return defined $text;
    }, 10, "maildir message with $tag");
    return $text // '';
}

# ---- dkim_unsignable = deliver (the default)
my $pm = start_postern(write_config(name => 'deliver',
    dkim => { domain => 'example.com', selector => 'test', generate => 1 }));
my %tag = map { $_ => unique_tag($_) } qw(badsig nothdr good);
my %pre = (badsig => $BAD_SIG, nothdr => "this line is not a header field\r\n",
    good => '');
for my $k (qw(badsig nothdr good)) {
    my ($code, $text) = send_mail($pm->smtp_port, 'alice@example.com',
        'bob@example.net', message($pre{$k}, $tag{$k}));
    is($code, 250, "$k: accepted") or diag($text);
}
my $m = delivered($pm, $tag{badsig});
like($m, qr/\Q$tag{badsig}\E/, 'malformed DKIM-Signature: delivered at once');
is(scalar(() = $m =~ /^DKIM-Signature:/mg), 1, '  unsigned: only its own signature');
$m = delivered($pm, $tag{nothdr});
like($m, qr/\Q$tag{nothdr}\E/, 'a line that is not a header field: delivered at once');
unlike($m, qr/^DKIM-Signature:/m, '  unsigned');
$m = delivered($pm, $tag{good});
like($m, qr/^DKIM-Signature:.*d=example\.com/ms, 'a well-formed message is still signed');
my $log = $pm->log_text;
is(scalar(() = $log =~ /sending it unsigned: the message cannot be DKIM-signed/g), 2,
    'one warning per unsignable message');
unlike($log, qr/status=deferred/, 'nothing deferred');
my $mt = metrics($pm->url('/metrics'));
is(metric($mt, 'postern_dkim_unsignable_total'), 2, 'postern_dkim_unsignable_total = 2');
ok(wait_for(sub { !spool_files($pm->spool) }, 10, 'empty queue'), 'the queue is empty');
$pm->stop;

# ---- dkim_unsignable = bounce
$pm = start_postern(write_config(name => 'bounce', extra => 'dkim_unsignable = bounce',
    dkim => { domain => 'example.com', selector => 'test', generate => 1 }));
my $tag = unique_tag('bounced');
my ($code, $text) = send_mail($pm->smtp_port, 'alice@example.com', 'bob@example.net',
    message($BAD_SIG, $tag));
is($code, 250, 'bounce: accepted') or diag($text);
ok($pm->wait_log(qr/to=<bob\@example\.net>.* attempt=1 dsn=5\.6\.0 status=bounced/, 10),
    'bounced 5.6.0 at the first attempt') or diag($pm->log_tail(20));
my $dsn = delivered($pm, 'cannot be DKIM-signed');
like($dsn, qr/^To: <?alice\@example\.com>?/mi, 'a DSN goes to the sender');
like($dsn, qr/5\.6\.0/, '  quoting 5.6.0');
unlike($pm->log_text, qr/status=deferred/, 'never deferred');
$pm->stop;
done_testing;
