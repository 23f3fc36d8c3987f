# Postern::Browser - headless Chromium driven over the Chrome DevTools
# Protocol, for the tests of the status page (t/99-console.t).
#
# What it is: one Chromium process (Debian package chromium) started with
# --remote-debugging-pipe, so the protocol runs over two pipes (Chromium
# reads fd 3 and writes fd 4, each message JSON ended by a NUL byte): no
# port, no WebSocket library. One page (a target attached in flat mode)
# that a test navigates, evaluates JavaScript in, resizes and
# screenshots. JavaScript dialogs (confirm) are answered as the test says
# and remembered, so a test can check that an action asked first.
#
# Rules it keeps: every wait is bounded (a deadline, never a fixed sleep);
# the browser is stopped by PID (Browser.close, then SIGKILL of its process
# group if it lingers); its profile lives in the test's temp dir.
#
#     my $b = Postern::Browser->new(dir => tempdir()) or skip ...;
#     $b->viewport(1280, 900);
#     $b->navigate('http://127.0.0.1:8025/');
#     my $v = $b->eval('document.title');
#     $b->screenshot("$dir/page.png");
#     $b->close;
package Postern::Browser;

use strict;
use warnings;

use Carp qw(croak);
use IO::Handle;
use IO::Select;
use JSON::PP ();
use MIME::Base64 qw(decode_base64);
use Fcntl qw(F_SETFD);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

my $JSON = JSON::PP->new->utf8->canonical;

# chromium - the Chromium program on PATH, or undef
sub chromium {
    for my $d (split(/:/, $ENV{PATH} // '')) {
        for my $n (qw(chromium chromium-browser)) {
            return "$d/$n" if -x "$d/$n";
        }
    }
    return undef;
}

# new - start Chromium (dir => profile parent; timeout => seconds per
# protocol call, default 30); undef when Chromium is not installed
sub new {
    my ($class, %o) = @_;
    my $bin = chromium() or return undef;
    my $self = bless { timeout => $o{timeout} // 30, next => 0, buf => '',
        events => [], dialogs => [], accept => 1 }, $class;
    pipe(my $cr, my $tw) or croak "pipe: $!";     # test -> chromium fd 3
    pipe(my $tr, my $cw) or croak "pipe: $!";     # chromium fd 4 -> test
    my $pid = fork() // croak "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        # fd 3 and 4 without close-on-exec (dup2 onto itself keeps it)
        for my $p ([$cr, 3], [$cw, 4]) {
            POSIX::dup2(fileno($p->[0]), $p->[1]) // POSIX::_exit(127)
                unless fileno($p->[0]) == $p->[1];
        }
        for my $fd (3, 4) {
            open(my $h, '+<&=', $fd) or POSIX::_exit(127);
            fcntl($h, F_SETFD, 0) or POSIX::_exit(127);
        }
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', "$o{dir}/chromium.log");
        open(STDERR, '>&', \*STDOUT);
        no warnings 'exec';
        exec { $bin } $bin, '--headless', '--remote-debugging-pipe', '--no-sandbox',
            '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
            '--disable-extensions', '--disable-background-networking',
            '--hide-scrollbars', "--user-data-dir=$o{dir}/chromium-profile",
            'about:blank';
        POSIX::_exit(127);
    }
    CORE::close($cr);
    CORE::close($cw);
    $tw->autoflush(1);
    @$self{qw(pid in out)} = ($pid, $tr, $tw);
    my $t = $self->call('Target.createTarget', { url => 'about:blank' });
    my $a = $self->call('Target.attachToTarget',
        { targetId => $t->{targetId}, flatten => JSON::PP::true });
    $self->{session} = $a->{sessionId};
    $self->send_page('Page.enable');
    $self->send_page('Runtime.enable');
    return $self;
}

# pid - the browser's process id
sub pid { $_[0]{pid} }

# write_msg - one protocol message to Chromium
sub write_msg {
    my ($self, $msg) = @_;
    my $data = $JSON->encode($msg) . "\0";
    my $fh = $self->{out};
    print {$fh} $data or croak "browser: write: $!";
}

# read_msg - the next message from Chromium, waiting until $deadline;
# undef on timeout or end of file
sub read_msg {
    my ($self, $deadline) = @_;
    my $sel = IO::Select->new($self->{in});
    while ((my $i = index($self->{buf}, "\0")) < 0) {
        my $left = $deadline - time();
        return undef if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($self->{in}, my $chunk, 1 << 20);
        return undef unless $n;
        $self->{buf} .= $chunk;
    }
    my $i = index($self->{buf}, "\0");
    my $msg = substr($self->{buf}, 0, $i);
    substr($self->{buf}, 0, $i + 1) = '';
    return $JSON->decode($msg);
}

# on_event - an event: a dialog is answered at once (and remembered)
sub on_event {
    my ($self, $m) = @_;
    if (($m->{method} // '') eq 'Page.javascriptDialogOpening') {
        push @{ $self->{dialogs} }, $m->{params}{message};
        $self->write_msg({ id => ++$self->{next}, sessionId => $m->{sessionId},
            method => 'Page.handleJavaScriptDialog',
            params => { accept => $self->{accept} ? JSON::PP::true : JSON::PP::false } });
        return;
    }
    push @{ $self->{events} }, $m;
    shift @{ $self->{events} } while @{ $self->{events} } > 200;
}

# call - one command (to the page with session => id), its result; croaks
# on a protocol error or when no answer comes in time
sub call {
    my ($self, $method, $params, $session) = @_;
    my $id = ++$self->{next};
    $self->write_msg({ id => $id, method => $method, params => $params // {},
        $session ? (sessionId => $session) : () });
    my $deadline = time() + $self->{timeout};
    while (1) {
        my $m = $self->read_msg($deadline)
            or croak "browser: no answer to $method within $self->{timeout}s";
        if (defined $m->{id} && $m->{id} == $id) {
            croak "browser: $method: $m->{error}{message}" if $m->{error};
            return $m->{result};
        }
        $self->on_event($m) if $m->{method};
    }
}

# send_page - a command to the page
sub send_page {
    my ($self, $method, $params) = @_;
    return $self->call($method, $params, $self->{session});
}

# js - the value of a JavaScript expression in the page (a promise is
# awaited); croaks on an exception
sub js {
    my ($self, $expr) = @_;
    my $r = $self->send_page('Runtime.evaluate', { expression => $expr,
        returnByValue => JSON::PP::true, awaitPromise => JSON::PP::true });
    croak "browser: $expr: " . ($r->{exceptionDetails}{exception}{description}
        // $r->{exceptionDetails}{text}) if $r->{exceptionDetails};
    return $r->{result}{value};
}

# wait_js - poll a JavaScript condition until true or $timeout seconds
# (default 20) pass; its last value
sub wait_js {
    my ($self, $expr, $timeout) = @_;
    my $deadline = time() + ($timeout // 20);
    my $v;
    while (1) {
        $v = $self->js($expr);
        return $v if $v || time() >= $deadline;
        sleep(0.2);
    }
}

# viewport - the page's size in CSS pixels (mobile => 1: a phone)
sub viewport {
    my ($self, $w, $h, %o) = @_;
    $self->send_page('Emulation.setDeviceMetricsOverride', { width => $w + 0,
        height => $h + 0, deviceScaleFactor => 1,
        mobile => $o{mobile} ? JSON::PP::true : JSON::PP::false });
}

# navigate - load url and wait (bounded) until the document is complete
sub navigate {
    my ($self, $url) = @_;
    $self->send_page('Page.navigate', { url => $url });
    return $self->wait_js(q{!!document.documentElement && document.readyState === 'complete'
        && location.href !== 'about:blank'}, 30);
}

# screenshot - a PNG of the whole page (not only the viewport) into $file
sub screenshot {
    my ($self, $file) = @_;
    my $r = $self->send_page('Page.captureScreenshot',
        { format => 'png', captureBeyondViewport => JSON::PP::true });
    open(my $fh, '>:raw', $file) or croak "screenshot: $file: $!";
    print {$fh} decode_base64($r->{data});
    CORE::close($fh);
    return -s $file;
}

# dialogs - the messages of the dialogs answered so far (and forget them)
sub dialogs {
    my ($self) = @_;
    my @d = @{ $self->{dialogs} };
    $self->{dialogs} = [];
    return @d;
}

# accept_dialogs - answer the next dialogs with OK (1) or Cancel (0)
sub accept_dialogs { $_[0]{accept} = $_[1] }

# quit - Browser.close, then wait (bounded) for the process; SIGKILL of
# its process group if it is still there
sub quit {
    my ($self) = @_;
    return unless $self->{pid};
    eval { local $self->{timeout} = 5; $self->call('Browser.close') };
    my $deadline = time() + 10;
    while (waitpid($self->{pid}, WNOHANG) == 0) {
        if (time() >= $deadline) {
            kill('KILL', -$self->{pid});
            waitpid($self->{pid}, 0);
            last;
        }
        sleep(0.1);
    }
    CORE::close($self->{in});
    CORE::close($self->{out});
    $self->{pid} = 0;
}

# DESTROY - a browser a test forgot is stopped too
sub DESTROY {
    my ($self) = @_;
    local ($@, $!, $?);
    $self->quit if $self->{pid};
}

1;
