# 45-route.t - the route table end to end: posternctl route explains
# exact, *@domain, *@*.domain (longest suffix), local@*, sender
# conditions and the default; one message to three recipients is split by
# route over three transports (maildir default, a second maildir, the
# file transport); the file transport's template is sanitised so a
# hostile Subject: like "../../etc/x" stays inside its directory.
use strict;
use warnings;
use Test::More;
use Postern::Test;

require_build();

my $dir = tempdir() . '/route';
my $extra = <<"EOT";
transport box2 {
	type = maildir
	path = "$dir/mail2"
}
transport files {
	type = file
	path = "$dir/files"
	template = "%Y%m%d-%i-%S-%r.eml"
}
transport smarthost {
	type = relay
	host = "127.0.0.1:9"
}
route "*\@files.example" { transport = files }
route "*\@*.sub.example" { transport = box2 }
route "*\@*.deep.sub.example" { transport = smarthost }
route "vip\@*" { transport = box2 }
route "boss\@files.example" { transport = smarthost }
route shop {
	recipient = "*\@files.example"
	sender = "*\@shop.example"
	transport = box2
}
EOT
my $conf = write_config(dir => $dir, extra => $extra);
my $ctl = bin('posternctl');

# route_of - posternctl route output for an address (and sender)
sub route_of {
    my ($addr, @rest) = @_;
    my ($st, $out, $err) = run_cmd([$ctl, '-c', $conf, 'route', $addr, @rest]);
    is($st, 0, "posternctl route $addr @rest exits 0") or diag($err);
    return $out;
}

my $o = route_of('boss@files.example');
like($o, qr/^route: boss\@files\.example$/m, 'exact address beats *@domain');
like($o, qr/^transport: smarthost \(relay 127\.0\.0\.1:9\)$/m, 'transport with type and target');
like($o, qr/^why: route "boss\@files\.example" \(line \d+\): recipient <boss\@files\.example> matches "boss\@files\.example" \(exact address\)$/m, 'why: exact');
$o = route_of('any@files.example');
like($o, qr/^transport: files \(file \Q$dir\E\/files\)$/m, '*@domain -> file transport');
like($o, qr/\(domain\)$/m, 'why: domain');
$o = route_of('x@a.deep.sub.example');
like($o, qr/^transport: smarthost /m, 'longest *@*.suffix wins');
$o = route_of('x@a.sub.example');
like($o, qr/^transport: box2 /m, 'shorter suffix for other subdomains');
like($o, qr/\(subdomain\)$/m, 'why: subdomain');
$o = route_of('x@sub.example');
like($o, qr/^route: \(none\)$/m, '*@*.domain does not match the domain itself');
$o = route_of('vip@elsewhere.org');
like($o, qr/^transport: box2 .*\n.*\(local part\)$/m, 'local@* matches');
$o = route_of('someone@elsewhere.org');
like($o, qr/^route: \(none\)\ntransport: local \(maildir .*\)\nwhy: no route matches <someone\@elsewhere\.org>; default_transport "local"$/m,
    'no match: default_transport, and why says so');
$o = route_of('any@files.example', '--sender', 'orders@shop.example');
like($o, qr/^route: shop\n.*\nwhy: .*sender <orders\@shop\.example> matches "\*\@shop\.example"$/m,
    'sender condition wins among equal recipient patterns');
my ($st, $out, $err) = run_cmd([$ctl, '-c', $conf, 'route']);
is($st >> 8, 64, 'route without an address: usage, exit 64');

# ---- delivery split over three transports
my $pm = start_postern($conf);
my $tag = unique_tag('route');
my ($code, $text, $qid) = send_mail($pm->smtp_port, 'sender@example.org',
    ['a@files.example', 'b@x.sub.example', 'c@other.example'],
    make_message(subject => "../../etc/x $tag\x01", to => 'a@files.example',
        body => "body $tag\n"));
is($code, 250, 'message to three routes accepted') or diag($text);

my @files;
# the temporary file (.tmp-PID-N) is hidden; wait for the renamed one
wait_for(sub { @files = grep { !m{/\.[^/]*$} } dir_files("$dir/files"); @files >= 1 }, 10,
    'a file in the file transport');
is(scalar(@files), 1, 'one file written by the file transport');
my $name = $files[0] // '';
$name =~ s{.*/}{};
like($name, qr/^\d{8}-\Q$qid\E-\.__\.__etc_x_\Q$tag\E_-a\@files\.example\.eml$/,
    "template expanded and sanitised: $name") if $qid;
unlike($name, qr{/|\.\.}, 'no / and no .. in the name');
ok(!-e "$dir/etc" && !-e "$dir/files/../etc", 'nothing escaped the directory');
like(slurp($files[0] // '/nonexistent') // '', qr/^Return-Path: <sender\@example\.org>\n.*body \Q$tag\E/s,
    'file content: Return-Path and the message');
ok(wait_for(sub { grep { (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files("$dir/mail2") }, 10,
    'box2 message'), 'b@x.sub.example went to the second maildir');
ok(wait_for(sub { grep { (slurp($_) // '') =~ /\Q$tag\E/ } maildir_files($pm->maildir) }, 10,
    'default maildir message'), 'c@other.example went to the default transport');
ok($pm->wait_log(qr/\Q$qid\E: to=<a\@files\.example> .*relay=file:\S+ .*status=sent/, 10),
    'log: file delivery sent') or diag($pm->log_tail(20));
ok($pm->wait_log(qr/\Q$qid\E: to=<b\@x\.sub\.example> .*status=sent/, 10), 'log: box2 sent');
ok($pm->wait_log(qr/\Q$qid\E: to=<c\@other\.example> .*status=sent/, 10), 'log: default sent');
$pm->stop;
$pm->check_sanitizers;
done_testing();
