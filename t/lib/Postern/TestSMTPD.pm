# Postern::TestSMTPD - helpers for the smtpd TLS/AUTH tests (t/1N-smtpd-*.t):
# throw-away certificates made with the openssl CLI, and a small SMTP
# client that speaks over plain TCP (IPv4 or IPv6), STARTTLS or implicit
# TLS, reading replies with bounded waits.
package Postern::TestSMTPD;

use strict;
use warnings;
use Exporter 'import';
use Carp qw(croak);
use MIME::Base64 qw(encode_base64);

our @EXPORT = qw(make_cert smtpc b64 plain_ir listen_section);

# make_cert - a self-signed EC certificate and key for CN $cn in $dir;
# returns (cert, key) paths. Generated at test time, never committed.
sub make_cert {
    my ($dir, $cn, $base) = @_;
    $base //= 'server';
    my ($crt, $key) = ("$dir/$base.crt", "$dir/$base.key");
    system('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
        'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', $key, '-out', $crt,
        '-subj', "/CN=$cn", '-days', '2', '-batch') == 0
        or croak "openssl req failed";
    chmod 0644, $key;
    return ($crt, $key);
}

# b64 - base64 on one line
sub b64 { return encode_base64($_[0], '') }

# plain_ir - the AUTH PLAIN initial response for user/password
sub plain_ir { return b64("\0$_[0]\0$_[1]") }

# listen_section - "listen NAME { address = ...; k = v ... }" text
sub listen_section {
    my ($name, $addr, %o) = @_;
    my $t = "listen $name {\n\taddress = \"$addr\"\n";
    $t .= "\t$_ = $o{$_}\n" for sort keys %o;
    return $t . "}\n";
}

# smtpc - a client connected to host:port (tls => 1 for implicit TLS)
sub smtpc { return Postern::TestSMTPD::Client->new(@_) }

package Postern::TestSMTPD::Client;

use strict;
use warnings;
use IO::Select;
use IO::Socket::IP;
use IO::Socket::SSL;
use Time::HiRes qw(time);

# new - connect (bounded) and read the greeting into ->{greeting}
sub new {
    my ($class, $port, %o) = @_;
    my $host = $o{host} // '127.0.0.1';
    my $sock;
    if ($o{tls}) {
        $sock = IO::Socket::SSL->new(PeerHost => $host, PeerPort => $port,
            SSL_verify_mode => SSL_VERIFY_NONE, Timeout => 5,
            %{ $o{ssl} // {} }) or return undef;
    } else {
        $sock = IO::Socket::IP->new(PeerHost => $host, PeerPort => $port,
            Timeout => 5) or return undef;
    }
    binmode $sock;
    my $self = bless { sock => $sock, buf => '', eof => 0 }, $class;
    $self->{greeting} = $self->reply;
    return $self;
}

# fill - read more (bounded); 0 on EOF or timeout. TLS sockets are read
# without blocking: a readable socket may carry only a session ticket.
sub fill {
    my ($self, $timeout) = @_;
    return 0 if $self->{eof};
    my $s = $self->{sock};
    my $ssl = $s->isa('IO::Socket::SSL');
    my $deadline = time() + $timeout;
    while (1) {
        unless ($ssl && $s->pending) {
            my $left = $deadline - time();
            return 0 if $left <= 0 || !IO::Select->new($s)->can_read($left);
        }
        $s->blocking(0) if $ssl;
        my $n = sysread($s, my $chunk, 65536);
        my $want = $ssl && !defined $n && ($SSL_ERROR == SSL_WANT_READ ||
            $SSL_ERROR == SSL_WANT_WRITE);
        $s->blocking(1) if $ssl;
        next if $want;
        if (!$n) { $self->{eof} = 1; return 0 }
        $self->{buf} .= $chunk;
        return 1;
    }
}

# reply - one (multi-line) reply {code, text, lines, enh}; code 0 = none
sub reply {
    my ($self, $timeout) = @_;
    my $deadline = time() + ($timeout // 10);
    my (@lines, $code);
    $code = 0;
    while (1) {
        while ($self->{buf} !~ /\n/) {
            my $left = $deadline - time();
            return { code => 0, text => join("\n", @lines), lines => \@lines }
                if $left <= 0 || !$self->fill($left);
        }
        $self->{buf} =~ s/^(.*?)\r?\n//s;
        my $l = $1;
        last unless $l =~ /^(\d{3})([ -])(.*)$/;
        push @lines, $3;
        $code = $1 + 0;
        last if $2 eq ' ';
    }
    my ($enh) = ($lines[0] // '') =~ /^([245]\.\d{1,3}\.\d{1,3})\b/;
    return { code => $code, text => join("\n", @lines), lines => \@lines,
        enh => $enh };
}

# send - write bytes as given
sub send {
    my ($self, $bytes) = @_;
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite($self->{sock}, $bytes, length($bytes) - $off, $off);
        return 0 unless $n;
        $off += $n;
    }
    return 1;
}

# cmd - one command line and its reply
sub cmd {
    my ($self, $line, $timeout) = @_;
    $self->send("$line\r\n") or return { code => 0, text => '', lines => [] };
    return $self->reply($timeout);
}

# starttls - the TLS handshake on the connection (after a 220); 1 if ok
sub starttls {
    my ($self, %ssl) = @_;
    return 0 if length $self->{buf};
    IO::Socket::SSL->start_SSL($self->{sock}, SSL_verify_mode => SSL_VERIFY_NONE,
        Timeout => 5, %ssl) or return 0;
    return 1;
}

# quiet - 1 if nothing at all arrives within $secs
sub quiet {
    my ($self, $secs) = @_;
    return 0 if length $self->{buf};
    $self->fill($secs);
    return length($self->{buf}) == 0;
}

# ehlo_keywords - EHLO and the set of keywords offered (hashref)
sub ehlo_keywords {
    my ($self, $name) = @_;
    my $r = $self->cmd('EHLO ' . ($name // 'client.test'));
    my %k = map { (split / /, $_)[0] => $_ } @{ $r->{lines} }[1 .. $#{ $r->{lines} }];
    return ($r, \%k);
}

# message - MAIL, RCPT, DATA, the text, "."; the final reply (or the
# first failing one)
sub message {
    my ($self, $from, $to, $text) = @_;
    for my $c ("MAIL FROM:<$from>", "RCPT TO:<$to>") {
        my $r = $self->cmd($c);
        return $r if $r->{code} != 250;
    }
    my $r = $self->cmd('DATA');
    return $r if $r->{code} != 354;
    $text =~ s/\r?\n/\r\n/g;
    $text =~ s/^\./../mg;
    $text .= "\r\n" unless $text =~ /\r\n\z/;
    $self->send($text . ".\r\n");
    return $self->reply;
}

# tls_version, cipher, peer_cn - of a TLS connection
sub tls_version { return $_[0]{sock}->get_sslversion }
sub cipher { return $_[0]{sock}->get_cipher }
sub peer_cn {
    my ($self) = @_;
    return $self->{sock}->peer_certificate('cn');
}

# close - drop the connection
sub close { my ($self) = @_; close $self->{sock} if $self->{sock} }

1;
