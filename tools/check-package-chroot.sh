#!/bin/sh
# tools/check-package-chroot.sh ROOT DEB - the chroot part of
# tools/check-package.sh: runs on the host while ROOT is a fresh Debian
# chroot (with /proc, /dev and apt set up) and checks the package there:
# `apt-get install ./postern_*.deb` does the operator's set-up (user,
# group, spool, log directory, conffile, enabled unit, the sendmail paths,
# man pages, logrotate); systemd-analyze verify is clean and security
# below 3.0 on the installed unit; the installed postern runs on the
# installed configuration and delivers (tools/check-package-run.sh, in a
# network namespace of its own); a reinstall keeps the queue; remove
# keeps the configuration, user and queue; purge leaves nothing.
set -eu
root=$1 deb=$2
here=$(cd "$(dirname "$0")" && pwd)
export DEBIAN_FRONTEND=noninteractive

inroot() { chroot "$root" "$@"; }
ok() { printf 'check-package:   ok - %s\n' "$*"; }
fail() { printf 'check-package:   NOT OK - %s\n' "$*" >&2; exit 1; }
is() { [ "$2" = "$3" ] && ok "$1 ($2)" || fail "$1: expected '$3', got '$2'"; }
apt_in() { inroot sh -c "cd /tmp && apt-get $* >/tmp/apt.log 2>&1" ||
	{ tail -30 "$root/tmp/apt.log"; fail "apt-get $*"; }; }

cp "$deb" "$root/tmp/"
apt_in install -y -q ./postern_*.deb
ok "apt-get install ./$(basename "$deb")"

# ---- the operator's set-up
inroot getent passwd postern >/dev/null && ok "system user postern" || fail "no user postern"
inroot getent group postern >/dev/null && ok "group postern" || fail "no group postern"
is "spool owner and mode" "$(inroot stat -c '%U:%G %a' /var/spool/postern)" "postern:postern 700"
is "log directory" "$(inroot stat -c '%U:%G %a' /var/log/postern)" "root:adm 2750"
inroot dpkg-query -W -f='${Conffiles}\n' postern | grep -q '^ /etc/postern/postern.conf ' &&
	ok "/etc/postern/postern.conf is a conffile" || fail "postern.conf is no conffile"
inroot posternctl check-config >/dev/null && ok "the installed configuration is valid" ||
	fail "posternctl check-config"
for p in /usr/sbin/sendmail /usr/bin/mailq /usr/lib/sendmail; do
	is "$p" "$(inroot readlink -f "$p")" /usr/sbin/postern-sendmail
done
for f in /lib/systemd/system/postern.service \
    /etc/systemd/system/multi-user.target.wants/postern.service \
    /etc/logrotate.d/postern /usr/share/man/man8/postern.8.gz \
    /usr/share/man/man5/postern.conf.5.gz /usr/share/man/man8/sendmail.8.gz; do
	{ [ -e "$root$f" ] || [ -L "$root$f" ]; } && ok "$f" || fail "missing $f"
done
out=$(inroot systemd-analyze verify --man=no /lib/systemd/system/postern.service 2>&1) ||
	fail "systemd-analyze verify: $out"
[ -z "$out" ] && ok "systemd-analyze verify: clean" || fail "systemd-analyze verify: $out"
score=$(inroot systemd-analyze security --offline=yes --threshold=29 \
	/lib/systemd/system/postern.service | sed -n 's/.*exposure level for postern.service: //p') ||
	fail "systemd-analyze security: exposure over 2.9 ($score)"
ok "systemd-analyze security: $score"

# ---- run it: deliver through /usr/sbin/sendmail, queue one for later
unshare --net sh "$here/check-package-run.sh" "$root" deliver
apt_in install -y -q --reinstall ./postern_*.deb
ok "reinstalled (the upgrade path of the maintainer scripts)"
is "spool after the reinstall" "$(inroot stat -c '%U:%G %a' /var/spool/postern)" "postern:postern 700"
unshare --net sh "$here/check-package-run.sh" "$root" queued

# ---- remove keeps the configuration, the user and the queue; purge not
apt_in remove -y -q postern
[ ! -e "$root/usr/sbin/postern" ] && [ ! -L "$root/usr/sbin/sendmail" ] &&
	ok "remove: programs and the sendmail links gone" || fail "remove left programs"
[ -f "$root/etc/postern/postern.conf" ] && inroot getent passwd postern >/dev/null &&
	[ -d "$root/var/spool/postern/msg" ] &&
	ok "remove: configuration, user and queue kept" || fail "remove took too much"
apt_in purge -y -q postern
left=""
for f in /etc/postern /var/spool/postern /var/log/postern /var/lib/postern \
    /run/postern /lib/systemd/system/postern.service \
    /etc/systemd/system/multi-user.target.wants/postern.service \
    /etc/logrotate.d/postern /usr/bin/mailq /usr/lib/sendmail; do
	[ -e "$root$f" ] || [ -L "$root$f" ] && left="$left $f"
done
inroot getent passwd postern >/dev/null && left="$left user:postern"
inroot getent group postern >/dev/null && left="$left group:postern"
st=$(inroot dpkg-query -W -f='${db:Status-Abbrev}' postern 2>/dev/null || true)
case "$st" in ""|un*|pn*) ;; *) left="$left dpkg:$st" ;; esac
[ -z "$left" ] && ok "purge: nothing left" || fail "purge left:$left"
