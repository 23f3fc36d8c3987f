#!/bin/sh
# tools/check-package-run.sh ROOT PHASE - run by check-package-chroot.sh
# under `unshare --net`: a network namespace of its own with only
# loopback, so the installed configuration's fixed ports (25 on 127.0.0.1
# and ::1, 8025) meet nothing else on the machine. A loopback DNS server
# (Perl Net::DNS) gives sink.test an MX on 127.0.0.2, where Postfix's
# smtp-sink listens on port 25, and defer.test one on 127.0.0.3, where
# nothing does. The installed postern runs in the chroot on the installed
# /etc/postern/postern.conf, in the foreground (no systemd here), with
# exactly the unit's CapabilityBoundingSet and NoNewPrivileges (setpriv).
#   deliver: a message through /usr/sbin/sendmail (as nobody) reaches the
#            sink by MX; one to defer.test stays queued; posternctl
#            dkim-generate works on the installed tree.
#   queued:  after a reinstall, mailq still lists the defer.test message.
set -eu
root=$1 phase=$2
run=$(mktemp -d /tmp/postern-run.XXXXXX)
chmod 0755 "$run"       # smtp-sink runs as nobody
pids=""
ok() { printf 'check-package:   ok - %s\n' "$*"; }
fail() {
	printf 'check-package:   NOT OK - %s\n' "$*" >&2
	tail -20 "$run/postern.log" >&2 2>/dev/null || true
	exit 1
}
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	[ -f "$run/resolv.conf" ] && cp "$run/resolv.conf" "$root/etc/resolv.conf"
	rm -rf "$run"
}
trap cleanup EXIT INT TERM
# wait_for SECONDS WHAT CMD... - poll CMD every 0.1 s, bounded
wait_for() {
	n=$(($1 * 10)) what=$2
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || fail "timed out waiting for $what"
		sleep 0.1
	done
}
port_open() {
	perl -MIO::Socket::IP -e 'IO::Socket::IP->new(PeerHost => $ARGV[0],
	    PeerPort => $ARGV[1], Timeout => 1) or exit 1' "$1" "$2"
}

ip link set lo up
cp "$root/etc/resolv.conf" "$run/resolv.conf" 2>/dev/null || : >"$run/resolv.conf"
echo "nameserver 127.0.0.1" >"$root/etc/resolv.conf"
perl -MNet::DNS::Nameserver -e '
	my %rr = ("sink.test" => "MX 10 mx.sink.test", "mx.sink.test" => "A 127.0.0.2",
	    "defer.test" => "MX 10 mx.defer.test", "mx.defer.test" => "A 127.0.0.3");
	my $ns = Net::DNS::Nameserver->new(LocalAddr => ["127.0.0.1"], LocalPort => 53,
	    ReplyHandler => sub {
		my ($name, $class, $type) = @_;
		my $v = $rr{lc $name} or return ("NXDOMAIN", [], [], [], { aa => 1 });
		my @ans = $v =~ /^\Q$type\E / ?
		    (Net::DNS::RR->new("$name. 60 IN $v")) : ();
		return ("NOERROR", \@ans, [], [], { aa => 1 });
	    }) or die "dns: $!";
	$ns->main_loop;' >"$run/dns.log" 2>&1 &
pids="$pids $!"
mkdir -m 0777 "$run/sink"
/usr/sbin/smtp-sink -u nobody -d "$run/sink/m." 127.0.0.2:25 100 >"$run/sink.log" 2>&1 &
pids="$pids $!"
wait_for 20 "the DNS server" port_open 127.0.0.1 53
wait_for 20 "smtp-sink" port_open 127.0.0.2 25

caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$root/lib/systemd/system/postern.service")
bset=-all
for c in $caps; do bset="$bset,+$(echo "${c#CAP_}" | tr A-Z a-z)"; done
chroot "$root" setpriv --bounding-set="$bset" --no-new-privs \
	/usr/sbin/postern -f -c /etc/postern/postern.conf >"$run/postern.log" 2>&1 &
master=$!
pids="$pids $master"
wait_for 30 "postern on 127.0.0.1:25" port_open 127.0.0.1 25
port_open ::1 25 && ok "the installed postern listens on 127.0.0.1:25 and [::1]:25" ||
	fail "nothing on [::1]:25"

sink_has() { grep -l "Subject: $1" "$run"/sink/m.* >/dev/null 2>&1; }
if [ "$phase" = deliver ]; then
	printf 'From: app@this.test\nTo: user@sink.test\nSubject: package check\n\nhello\n' |
		chroot --userspec=nobody:nogroup "$root" /usr/sbin/sendmail \
		-f app@this.test user@sink.test || fail "sendmail exit $?"
	wait_for 30 "the message at the sink" sink_has "package check"
	ok "/usr/sbin/sendmail (as nobody) -> postern -> MX sink.test -> smtp-sink"
	printf 'Subject: later\n\nlater\n' | chroot "$root" /usr/sbin/sendmail \
		-f app@this.test someone@defer.test || fail "sendmail exit $?"
	wait_for 30 "a deferral" grep -q 'to=<someone@defer.test>.*status=deferred' "$run/postern.log"
	ok "a message to an MX that does not answer is deferred"
	chroot "$root" posternctl dkim-generate this.test s1 >"$run/dkim.out" ||
		fail "posternctl dkim-generate"
	grep -q 'v=DKIM1' "$run/dkim.out" && [ -f "$root/etc/postern/dkim/this.test.s1.key" ] &&
		ok "DKIM ready: posternctl dkim-generate wrote the key and the record" ||
		fail "dkim-generate output: $(cat "$run/dkim.out")"
else
	chroot "$root" mailq >"$run/mailq.out" 2>&1 || true
	grep -q 'someone@defer.test' "$run/mailq.out" &&
		ok "after the reinstall mailq still lists the deferred message" ||
		fail "queue lost: $(cat "$run/mailq.out")"
fi
kill -TERM "$master"
wait "$master" && ok "postern stopped with status 0 on SIGTERM" || fail "postern exit $?"
pids=$(echo "$pids" | sed "s/ $master\b//")
