# 70-config.t - configuration checking: `posternctl check-config` on good
# and bad files (exit 0 / 78, one error line naming file, line and
# option), `dump-config`, usage errors (64), and postern itself refusing a
# bad file with exit 78 and the same message.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $ctl = bin('posternctl');

# ---- good files
my $good = write_config(name => 'good');
my ($st, $out, $err) = run_cmd([$ctl, '-c', $good, 'check-config']);
is($st >> 8, 0, 'check-config on a good file exits 0') or diag($err);
like($out, qr/^\Q$good\E: configuration ok$/m, 'says "FILE: configuration ok"');

($st, $out, $err) = run_cmd([$ctl, '-c', $good, 'dump-config']);
is($st >> 8, 0, 'dump-config exits 0') or diag($err);
like($out, qr/^hostname = "?postern\.test"?$/m, 'dump-config prints hostname = postern.test');
like($out, qr/^max_message_size = /m, 'dump-config prints max_message_size');
like($out, qr/^smtpd_processes = 1$/m, 'dump-config prints smtpd_processes = 1');
like($out, qr/^smtpd_forbid_bare_newline = normalize$/m,
    'dump-config: smtpd_forbid_bare_newline defaults to normalize');

for my $sample ('conf/postern.conf', 'conf/quickstart.conf') {
    my $path = srcdir() . "/$sample";
    ($st, $out, $err) = run_cmd([$ctl, '-c', $path, 'check-config']);
    is($st >> 8, 0, "the shipped $sample passes check-config") or diag($err);
}

# ---- usage errors
($st, $out, $err) = run_cmd([$ctl, '-c', $good]);
is($st >> 8, 64, 'no command: exit 64');
($st, $out, $err) = run_cmd([$ctl, '-c', $good, 'frobnicate']);
is($st >> 8, 64, 'unknown command: exit 64');
like($err, qr/usage/i, 'usage on stderr');

# ---- a missing file
my $none = tempdir() . '/does-not-exist.conf';
($st, $out, $err) = run_cmd([$ctl, '-c', $none, 'check-config']);
is($st >> 8, 78, 'missing file: exit 78');
like($err, qr/\Q$none\E/, 'the message names the missing file');

# ---- bad files: [name, write_config args, option named, line regex or undef]
my @bad = (
    ['unknown option', { extra => 'bogus_option = 1' }, 'bogus_option', qr/^bogus_option/],
    ['bad size', { raw => { max_message_size => 'ten' } }, 'max_message_size',
        qr/^max_message_size/],
    ['bad duration', { raw => { smtpd_timeout => '5parsecs' } }, 'smtpd_timeout',
        qr/^smtpd_timeout/],
    ['processes out of range', { raw => { smtpd_processes => 0 } }, 'smtpd_processes',
        qr/^smtpd_processes/],
    ['too many delivery processes', { raw => { delivery_processes => 17 } },
        'delivery_processes', qr/^delivery_processes/],
    ['bad log_level', { raw => { log_level => '"loud"' } }, 'log_level', qr/^log_level/],
    ['retry_jitter out of range', { raw => { retry_jitter => '2.5' } }, 'retry_jitter',
        qr/^\s*retry_jitter/],
    ['bad CIDR', { trusted_networks => ['10.0.0.0/33'] }, 'trusted_networks',
        qr/^trusted_networks/],
    ['bad relay domain', { relay_domains => ['bad..example'] }, 'relay_domains',
        qr/^relay_domains/],
    ['bad listen address', { smtp_port => 'notaport' }, 'address', undef],
    ['relay transport without host',
        { extra => "transport broken {\n\ttype = relay\n}" }, 'host', undef],
    ['unknown transport type',
        { extra => "transport odd {\n\ttype = pigeon\n\tpath = \"/tmp\"\n}" }, 'type', undef],
    ['unknown default_transport', { default_transport => 'nowhere' }, 'default_transport',
        undef],
    ['dkim without key', { dkim => { domain => 'example.com', selector => 's1',
        key => undef } }, 'key', undef],
    ['bad smtpd_forbid_bare_newline', { extra => 'smtpd_forbid_bare_newline = yes' },
        'smtpd_forbid_bare_newline', qr/^smtpd_forbid_bare_newline/],
    ['bad forbid_bare_newline_exclusions', { extra => "listen x {\n\taddress = "
        . "\"127.0.0.1:1\"\n\tforbid_bare_newline_exclusions = { \"10.0.0.300\" }\n}" },
        'forbid_bare_newline_exclusions', qr/forbid_bare_newline_exclusions/],
    ['duplicate transport title',
        { extra => "transport local {\n\ttype = maildir\n\tpath = \"/tmp/x\"\n}" }, 'local',
        undef],
    ['history_size below 2', { extra => "http {\n\thistory_size = 1\n}" }, 'history_size',
        qr/^\s*history_size/],
    # issue 19: a CR LF in a string would put a line of its own in the greeting
    ['CR LF in hostname',
        { raw => { hostname => '"evil.test\\r\\n250-INJECTED"' } }, 'hostname',
        qr/^hostname/],
    ['history_step of 0s', { extra => "http {\n\thistory_step = 0s\n}" }, 'history_step',
        qr/^\s*history_step/],
);

my $i = 0;
for my $case (@bad) {
    my ($name, $args, $option, $line_re) = @$case;
    my $file = write_config(name => 'bad' . ++$i, %$args);
    my ($cst, $cout, $cerr) = run_cmd([$ctl, '-c', $file, 'check-config']);
    is($cst >> 8, 78, "$name: check-config exits 78");
    my @lines = grep { length } split /\n/, $cerr;
    is(scalar @lines, 1, "$name: one error line") or diag($cerr);
    my $msg = $lines[0] // '';
    like($msg, qr/^\Q$file\E(?::\d+)?: /, "$name: message starts with FILE[:LINE]");
    like($msg, qr/\b\Q$option\E\b/, "$name: message names '$option'") or diag($msg);
    if ($line_re) {
        my $want = line_of($file, $line_re);
        like($msg, qr/^\Q$file\E:$want: /, "$name: message names line $want");
    }
    # postern itself refuses the file with the same message
    my ($pst, $pout, $perr) = run_cmd([bin('postern'), '-f', '-c', $file], 15);
    is($pst >> 8, 78, "$name: postern exits 78") or diag($perr);
    like($perr, qr/\Q$msg\E/, "$name: postern prints the same message") if $msg ne '';
}

ok(!-e tempdir() . '/bad1/run/postern.pid', 'no pid file left by a refused start');
done_testing;
