# 19-interop-node.t - Node's nodemailer (npm, the version pinned in
# tools/deps.sh, installed at CI set-up into the test extras folder,
# POSTERN_TEST_EXTRAS, default /usr/local/lib/postern-test) submits
# to Postern (the interop matrix, Postern::Interop; driver
# t/interop/nodemailer.js): port-25 style (nodemailer upgrades with
# STARTTLS by itself when offered), submission with requireTLS + AUTH,
# and SMTPS, the certificate verified; the plain, 8-bit, UTF-8 (SMTPUTF8,
# which nodemailer adds for a UTF-8 envelope) and attachment messages
# sent raw arrive byte for byte; the same four composed by nodemailer
# itself (text, UTF-8 addresses and subject, attachment) arrive with the
# text and the attachment intact.
use strict;
use warnings;
use Test::More;
use Postern::Test;
use Postern::Interop;

require_build();
need_tool('node (Debian nodejs)', -x '/usr/bin/node');
my $mods = node_modules_dir();
need_tool("nodemailer in $mods (tools/deps.sh --test)", -f "$mods/nodemailer/package.json");

my $ctx = interop_start();
local $ENV{POSTERN_NODE_MODULES} = $mods;
my (@raw, @composed);
for my $mode (qw(mta sub smtps)) {
    my @r = interop_messages("node-$mode-raw");
    $_->{job} = { raw => 1 } for @r;
    my @c = interop_messages("node-$mode");
    interop_driver(['/usr/bin/node', srcdir() . '/t/interop/nodemailer.js',
        interop_job($ctx, $mode, [@r, @c])], [@r, @c], "nodemailer $mode");
    push @raw, map { ["nodemailer $mode raw $_->{kind}", $_] } @r;
    push @composed, map { ["nodemailer $mode $_->{kind}", $_] } @c;
}
interop_check($ctx, $_->[1], $_->[0]) for @raw;
interop_check_parts($ctx, $_->[1], $_->[0], $_->[1]{body}) for @composed;
is($ctx->{pm}->stop, 0, 'postern stops with status 0');
done_testing;
