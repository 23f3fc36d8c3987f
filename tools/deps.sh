#!/bin/sh
# tools/deps.sh - install the Debian 12 packages Postern needs to build,
# test and benchmark. Only acts when run as root and something is missing;
# otherwise it prints what is missing and leaves the machine alone.
set -eu

BUILD="autoconf automake libtool pkg-config make gcc libc6-dev \
 libssl-dev libbsd-dev libconfuse-dev liblmdb-dev libopendkim-dev \
 libevent-dev libc-ares-dev libcurl4-openssl-dev libjansson-dev libcrypt-dev \
 libgmime-3.0-dev libsystemd-dev"
TEST="perl libnet-dns-perl libmail-dkim-perl libio-socket-ssl-perl \
 swaks postfix mandoc lmdb-utils opendkim-tools procps iproute2 openssl \
 ca-certificates curl python3-dkim python3-nacl libhttp-daemon-perl \
 libmime-tools-perl prometheus wrk chromium \
 msmtp php-cli libphp-phpmailer git-email s-nail libauthen-sasl-perl python3 \
 nodejs libgnutls-dane0 libidn12 libnsl2 libdb5.3 systemd \
 dpkg-dev debhelper lintian mmdebstrap"

# The interop tests' extras (t/19-interop-*.t, t/39-peer-*.t), in one
# folder the tests look in: nodemailer from npm (pinned), and Debian's
# Exim unpacked with dpkg-deb -x (it cannot be installed beside postfix:
# both are the mail-transport-agent) with its compiled-in user.
EXTRAS=${POSTERN_TEST_EXTRAS:-/usr/local/lib/postern-test}
NODEMAILER=nodemailer@10.6.1
EXIM_DEB=exim4-daemon-light

# extras_missing - which of the interop extras are not in place
extras_missing() {
	m=""
	grep -qs '"version": "'"${NODEMAILER#*@}"'"' \
		"$EXTRAS/node_modules/nodemailer/package.json" || m="$m $NODEMAILER"
	[ -x "$EXTRAS/exim4/usr/sbin/exim4" ] || m="$m $EXIM_DEB(unpacked)"
	getent passwd Debian-exim >/dev/null || m="$m user:Debian-exim"
	echo "$m"
}

# extras_install - npm install, apt-get download + dpkg-deb -x, useradd
extras_install() {
	mkdir -p "$EXTRAS"
	command -v npm >/dev/null || apt-get install -y -q --no-install-recommends npm
	npm install --prefix "$EXTRAS" --no-save --no-audit --no-fund "$NODEMAILER"
	if [ ! -x "$EXTRAS/exim4/usr/sbin/exim4" ]; then
		tmp=$(mktemp -d)
		chmod 777 "$tmp"        # apt downloads as the user _apt
		(cd "$tmp" && apt-get download -q "$EXIM_DEB")
		mkdir -p "$EXTRAS/exim4"
		dpkg-deb -x "$tmp"/"$EXIM_DEB"_*.deb "$EXTRAS/exim4"
		rm -rf "$tmp"
	fi
	getent passwd Debian-exim >/dev/null || useradd --system --user-group \
		--home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin Debian-exim
}

want="$BUILD"
[ "${1:-}" = "--test" ] && want="$BUILD $TEST"

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
extras=""
[ "${1:-}" = "--test" ] && extras=$(extras_missing)
[ -z "$missing" ] && [ -z "$extras" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	[ -n "$missing" ] && echo "postern: missing Debian packages:$missing" >&2
	[ -n "$missing" ] && echo "postern: run as root: apt-get install$missing" >&2
	[ -n "$extras" ] && echo "postern: missing test extras:$extras (run as root:" \
		"sh tools/deps.sh --test)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ]; then
	# postfix is only a test peer (smtp-sink, smtp-source, a private
	# instance in t/39): no mail system setup.
	echo "postfix postfix/main_mailer_type select No configuration" |
		debconf-set-selections
	apt-get update -q
	apt-get install -y -q --no-install-recommends $missing
fi
[ -n "$extras" ] && extras_install
exit 0
