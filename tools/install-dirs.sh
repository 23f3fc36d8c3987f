#!/bin/sh
# tools/install-dirs.sh - the end of `make install` (install-data-hook):
# create the fixed directories the default configuration and the systemd
# unit use, and say what is left for the operator.
#   usage: install-dirs.sh DESTDIR SYSCONFDIR UNITDIR SBINDIR
# With DESTDIR set (a package build) it does nothing: the package makes
# the directories in its maintainer scripts. As root it creates
# /var/spool/postern (0700; the master gives it to `user` at start) and
# /var/log/postern (0750); otherwise it prints those steps too.
set -eu
destdir=$1 sysconfdir=$2 unitdir=$3 sbindir=$4
[ -n "$destdir" ] && exit 0
spool=/var/spool/postern logdir=/var/log/postern
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$spool" "$logdir"
	chmod 0700 "$spool"
	chmod 0750 "$logdir"
fi
echo
echo "postern: installed; what is left for the operator:"
if [ "$(id -u)" != 0 ]; then
	echo "  - as root, the directories the default configuration uses:"
	echo "      install -d -m 0700 $spool && install -d -m 0750 $logdir"
fi
if ! getent passwd postern >/dev/null 2>&1; then
	echo "  - the unprivileged user the children run as (option 'user'):"
	echo "      useradd --system --user-group --home-dir $spool --shell /usr/sbin/nologin postern"
fi
echo "  - edit $sysconfdir/postern/postern.conf (check: $sbindir/posternctl check-config)"
if [ "$unitdir" != no ] && [ -n "$unitdir" ]; then
	echo "  - start it under systemd (unit $unitdir/postern.service):"
	echo "      systemctl daemon-reload && systemctl enable --now postern"
else
	echo "  - start it: $sbindir/postern (or -f in the foreground)"
fi
