#!/usr/bin/perl
# 63-queue-link.t - an smtpd that breaks the protocol on its link to
# queued (issue 10): queued closes that link only, logs and counts the
# violation, and the master kills that smtpd and restarts it with a new
# link; queued keeps its pid, and the other smtpd processes and the
# delivery process go on.
#
# The way in: libexec_dir points at a directory where postern-queued,
# -delivery and -httpd are the real programs and postern-smtpd is a small
# Perl wrapper: when LIBEXEC/hostile.N exists for its index N, it writes
# that file's bytes to its queue link (descriptor 5, common/proc.h) and
# removes the file, then executes the real postern-smtpd on the same
# descriptors. smtpd[0..4] get one hostile frame each at their first
# start (a truncated commit, a well-formed commit of a message that is
# not open, an abort with leftover bytes, bytes that are no frame, a type
# only delivery may send); smtpd[5] gets none.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $lx = tempdir() . '/libexec';
mkdir $lx or die "mkdir $lx: $!";
chmod 0755, $lx;
for my $p (qw(queued delivery httpd)) {
    symlink(bin("postern-$p"), "$lx/postern-$p") or die "symlink: $!";
}
my $real = bin('postern-smtpd');
spit("$lx/postern-smtpd", <<"EOF");
#!$^X
use strict;
use POSIX ();
my \$i = 0;
for my \$k (0 .. \$#ARGV - 1) { \$i = \$ARGV[\$k + 1] if \$ARGV[\$k] eq '-i' }
if (open(my \$fh, '<:raw', "$lx/hostile.\$i")) {
    local \$/;
    my \$b = <\$fh>;
    close \$fh;
    unlink "$lx/hostile.\$i";
    POSIX::write(5, \$b, length \$b);
}
exec { '$real' } '$real', \@ARGV;
die "exec $real: \$!";
EOF
chmod 0755, "$lx/postern-smtpd";

# the IPC version of this build (common/ipc_types.h), so that each hostile
# frame below is refused for what it shows, not for a stale version
my ($ipcv) = (slurp(srcdir() . '/common/ipc_types.h') // '') =~ /^#define IPC_VERSION (\d+)/m;
# frame - an IPC frame: u32 length, u16 type, u16 version, u32 flags
sub frame { my ($type, $payload) = @_;
    return pack('VvvV', 12 + length($payload), $type, $ipcv, 0) . $payload }
# str - a msgbuf string: u32 length, bytes, NUL
sub str { return pack('V', length $_[0]) . $_[0] . "\0" }

my $id = '0123456789ABCDEF';
my @hostile = (
    [ 'a truncated commit', frame(22, pack('V', 1) . pack('V', 16) . '0123'),
      qr/malformed IPC_QUEUED_MSG_COMMIT/ ],
    [ 'a commit of a message that is not open', frame(22, pack('V', 1)
        . str($id) . str('a@example.org') . pack('V2', 10, 0) . str('127.0.0.1')
        . str('client.test') . str('') . pack('V', 1) . str('b@example.com')
        . pack('V', 1)),
      qr/commit of a message that is not open on this link/ ],
    [ 'an abort with leftover bytes', frame(24, str($id) . 'xx'),
      qr/malformed IPC_QUEUED_MSG_ABORT/ ],
    [ 'bytes that are no frame', "GET / HTTP/1.0\r\n\r\n" . ("\xff" x 64),
      qr/bad frame length|IPC version mismatch|unknown frame flags/ ],
    [ 'a delivery result', frame(31, ''), qr/unexpected IPC_QUEUED_JOB_RESULT \(31\)/ ],
);
for my $i (0 .. $#hostile) {
    open(my $fh, '>:raw', "$lx/hostile.$i") or die "hostile.$i: $!";
    print {$fh} $hostile[$i][1];
    close $fh;
}
my $n = @hostile;

my $conf = write_config(libexec_dir => $lx, smtpd_processes => $n + 1,
    relay_domains => ['example.com']);
my $pm = start_postern($conf, timeout => 30);

# started - the pids of "started ROLE[I] (pid N)" lines, in order
sub started {
    my ($name) = @_;
    my @pids = $pm->log_text =~ /started \Q$name\E \(pid (\d+)\)/g;
    return @pids;
}

for my $i (0 .. $#hostile) {
    my ($what, undef, $why) = @{ $hostile[$i] };
    ok($pm->wait_log(qr/ipc smtpd\[$i\]: protocol violation: $why; closing the link/, 20),
        "$what: queued closes the link of smtpd[$i], saying why")
        or diag($pm->log_tail(30));
    ok($pm->wait_log(qr/smtpd\[$i\] \(pid \d+\): link closed for a protocol violation/, 5),
        "  and reports it");
    ok($pm->wait_log(qr/smtpd\[$i\] \(pid \d+\) broke the queue link protocol; killing it/,
        10), '  the master kills that smtpd');
    ok(wait_for(sub { started("smtpd[$i]") >= 2 }, 20, "smtpd[$i] restarted"),
        '  and starts it again');
}

my @q = started('queued[0]');
is(scalar @q, 1, 'queued was started once: no violation was fatal to it');
my ($qpid) = $pm->child_pids('queued');
ok($q[0] && $qpid && $qpid == $q[0] && pid_alive($qpid),
    'the same queued process runs (pid unchanged)');
my @clean = started("smtpd[$n]");
ok(@clean == 1 && pid_alive($clean[0]), "smtpd[$n] (no hostile frame) was never restarted");
unlike($pm->log_text, qr/smtpd\[$n\].*(?:link closed|lost the link)/,
    "  and kept its link");

# every smtpd (the replaced ones too) takes mail, and it is delivered
ok(wait_for(sub { grep({ pid_alive($_) } map { (started("smtpd[$_]"))[-1] } 0 .. $n)
    == $n + 1 }, 10, 'every smtpd up'), 'every smtpd process is running');
my $accepted = 0;
for my $k (1 .. 12) {
    my ($code, $text) = send_mail($pm->smtp_port, 'sender@example.org',
        'rcpt@example.com', make_message(subject => "after the violations $k"));
    $accepted++ if $code == 250;
    diag("message $k: $code $text") if $code != 250;
}
is($accepted, 12, 'other sessions are still accepted (12 of 12)');
ok(wait_for(sub { maildir_files($pm->maildir) >= 12 }, 20, 'delivered'),
    'and delivered');

my $m = metrics($pm->url("/metrics"));
is(metric($m, 'postern_queue_link_violations_total', process => 'smtpd'), $n,
    "postern_queue_link_violations_total{process=\"smtpd\"} $n");
is(metric($m, 'postern_queue_link_violations_total', process => 'httpd'), 0,
    '  and 0 for httpd');

system("cp", $pm->log_file, "/tmp/loose-63.log") if $ENV{KEEP_LOG};
is($pm->stop, 0, "postern stops cleanly");
$pm->check_sanitizers;
done_testing();
