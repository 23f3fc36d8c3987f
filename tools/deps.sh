#!/bin/sh
# tools/deps.sh - install the Debian 12 packages Postern needs to build,
# test and benchmark. Only acts when run as root and something is missing;
# otherwise it prints what is missing and leaves the machine alone.
set -eu

BUILD="autoconf automake libtool pkg-config make gcc libc6-dev \
 libssl-dev libbsd-dev libconfuse-dev liblmdb-dev libopendkim-dev \
 libevent-dev libc-ares-dev libcurl4-openssl-dev libjansson-dev libcrypt-dev \
 libgmime-3.0-dev"
TEST="perl libnet-dns-perl libmail-dkim-perl libio-socket-ssl-perl \
 swaks postfix mandoc lmdb-utils opendkim-tools procps iproute2 openssl \
 ca-certificates curl python3-dkim python3-nacl libhttp-daemon-perl \
 libmime-tools-perl prometheus wrk chromium"

want="$BUILD"
[ "${1:-}" = "--test" ] && want="$BUILD $TEST"

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "postern: missing Debian packages:$missing" >&2
	echo "postern: run as root: apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# postfix is only a test peer (smtp-sink, smtp-source): no mail system setup.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
