# 87-log-file.t - log_file and log_format: every process's lines go to
# the one file the master writes (mode 0640), not to stderr; SIGUSR1 and
# `posternctl reopen-logs` reopen it after it was renamed away (the lines
# after the signal land in the new file, none in the renamed one); with
# log_file_size_limit the file rotates into PATH.1 .. PATH.KEEP, never
# past the limit, no line split or lost, nothing beyond KEEP; log_format
# = json writes one JSON object per line with the documented keys, in the
# file and on stderr; bad values are configuration errors in the usual
# format.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Postern::Test;

require_build();

my $ctl = bin('posternctl');

# lines - the lines of a file (missing: none)
sub lines { return split /\n/, slurp($_[0]) // '' }

# deliver - one message through SMTP into the maildir; its subject tag
sub deliver {
    my ($pm) = @_;
    my $tag = unique_tag('lf');
    my ($code, $text) = send_mail($pm->smtp_port, 'sender@example.org',
        'rcpt@example.com', make_message(subject => $tag));
    is($code, 250, "message $tag accepted") or diag($text);
    ok(wait_for(sub { grep { (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files($pm->maildir) },
        10, "$tag delivered"), "$tag delivered");
    return $tag;
}

# ---- log_file: every process, one file
my $dir = tempdir() . '/lf';
my $log = "$dir/log/postern.log";
my $conf = write_config(name => 'lf', extra => "log_file = \"$log\"\n");
my $pm = start_postern($conf);
deliver($pm);
ok(wait_for(sub { (slurp($log) // '') =~ /status=sent/ }, 10, 'delivery line'),
    'the delivery line is in log_file');
my $text = slurp($log) // '';
for my $role (qw(master smtpd queued delivery httpd)) {
    like($text, qr{^\S+Z postern/\Q$role\E\[\d+\]: }m, "log_file has lines of postern/$role");
}
my @bad = grep { !/^\S+Z postern\/\w+\[\d+\]: / } lines($log);
is(scalar @bad, 0, 'every line is whole (no interleaving)') or diag(join("\n", @bad[0 .. 4]));
is((stat $log)[2] & 07777, 0640, 'log_file mode 0640');
unlike($pm->log_text, qr/status=sent|postern\/smtpd/, 'nothing went to stderr instead');

# ---- SIGUSR1 / posternctl reopen-logs after an external rotation
ok(rename($log, "$log.old"), 'rename log_file away (as logrotate does)');
my ($st, $out, $err) = run_cmd([$ctl, '-c', $conf, 'reopen-logs']);
is($st >> 8, 0, 'posternctl reopen-logs exits 0') or diag($err);
like($out, qr/^postern reopening its log file \(pid \d+\)$/m, 'and says so');
ok(wait_for(sub { (slurp($log) // '') =~ /reopened log_file \Q$log\E/ }, 10, 'reopened'),
    'a new log_file with "reopened log_file PATH"');
my $tag = deliver($pm);
ok(wait_for(sub { (slurp($log) // '') =~ /status=sent/ }, 10, 'delivery in the new file'),
    'the next delivery is logged in the new file');
unlike(slurp("$log.old") // '', qr/reopened|\Q$tag\E/, 'and nothing after the signal in the renamed one');
rename($log, "$log.2nd");
ok(kill('USR1', $pm->pid), 'plain SIGUSR1');
ok(wait_for(sub { -e $log }, 10, 'reopened by SIGUSR1'), 'SIGUSR1 reopens too');
ok($pm->alive && $pm->healthz == 200, 'every process still up after the signals');
is($pm->stop, 0, 'postern stopped with status 0');
like(slurp($log) // '', qr{postern/master\[\d+\]: stopped$}m, 'its last line is in log_file');

# ---- size rotation
my $rdir = tempdir() . '/rot';
my $rlog = "$rdir/postern.log";
$conf = write_config(name => 'rot', extra => "log_file = \"$rlog\"\n"
    . "log_file_size_limit = 2K\nlog_file_keep = 2\n");
$pm = start_postern($conf);
deliver($pm) for 1 .. 6;
ok(wait_for(sub { -e "$rlog.2" }, 10, 'second rotation'), 'rotated into PATH.1 and PATH.2');
ok(!-e "$rlog.3", 'nothing beyond log_file_keep');
for my $f ($rlog, "$rlog.1", "$rlog.2") {
    my $size = -s $f // 0;
    cmp_ok($size, '<=', 2048, "$f within the limit ($size bytes)");
    my $raw = slurp($f) // '';
    like($raw, qr/\n\z/, "$f ends at a line end");
    is(scalar(grep { !/^\S+Z postern\/\w+\[\d+\]: / } lines($f)), 0, "$f: whole lines only");
}
is($pm->stop, 0, 'stopped');

# ---- JSON lines in the file and on stderr
for my $where ('file', 'stderr') {
    my $jdir = tempdir() . "/json-$where";
    my $jlog = "$jdir/postern.log";
    $conf = write_config(name => "json-$where", extra => "log_format = json\n"
        . ($where eq 'file' ? "log_file = \"$jlog\"\n" : ''));
    $pm = start_postern($conf);
    deliver($pm);
    ok(wait_for(sub { ($where eq 'file' ? slurp($jlog) // '' : $pm->log_text) =~ /status=sent/ },
        10, 'delivery line'), "$where: the delivery is logged");
    is($pm->stop, 0, "$where: stopped");
    my @l = $where eq 'file' ? lines($jlog) : grep { /^\{/ } split /\n/, $pm->log_text;
    cmp_ok(scalar @l, '>', 10, "$where: JSON lines written");
    my ($nbad, %roles) = (0);
    for my $line (@l) {
        my $o = eval { JSON::PP->new->decode($line) };
        my @keys = $line =~ /"(time|level|program|pid|msg)":/g;
        if (!$o || "@keys" ne 'time level program pid msg'
            || $o->{time} !~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
            || $o->{level} !~ /^(?:error|warning|info|debug)$/
            || $o->{program} !~ m{^postern/\w+$} || $o->{pid} !~ /^\d+$/) {
            diag("bad JSON line: $line") if $nbad++ < 3;
            next;
        }
        $roles{$o->{program}}++;
    }
    is($nbad, 0, "$where: every line is one JSON object with time, level, program, pid, msg in that order");
    ok($roles{'postern/delivery'} && $roles{'postern/master'}, "$where: from the master and the children");
    ok(grep({ /"msg":"[^"]*status=sent/ } @l), "$where: the delivery line is a msg");
}

# ---- configuration errors
for my $case (['log_format = xml', 'log_format', 'text or json', 'xml'],
    ['log_file_keep = 0', 'log_file_keep', 'a number from 1 to 100', '0'],
    ['log_file_size_limit = big', 'log_file_size_limit', 'a size such as 512, 64K, 10M or 1G', 'big'],
    ['log_file = "/var/log/"', 'log_file', 'a file path or "" (off)', '/var/log/']) {
    my ($line, $opt, $what, $got) = @$case;
    my $c = write_config(name => "bad-$opt", extra => $line);
    ($st, $out, $err) = run_cmd([$ctl, '-c', $c, 'check-config']);
    is($st >> 8, 78, "$line: exit 78");
    like($err, qr/^\Q$c\E:\d+: option '\Q$opt\E': expected \Q$what\E, got '\Q$got\E'$/m,
        "$line: FILE:LINE: option '$opt': expected $what");
}

done_testing();
