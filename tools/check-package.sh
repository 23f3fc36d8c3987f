#!/bin/sh
# tools/check-package.sh - CI's packaging step (the last of check-all.sh):
#  1. build the Debian package from a clean checkout (git archive HEAD)
#     with DEB_BUILD_OPTIONS=nocheck (the suite already ran);
#  2. lintian on the .changes: any error or warning fails, the remaining
#     informational tags are listed;
#  3. install it with `apt-get install ./postern_*.deb` in a fresh Debian
#     chroot (mmdebstrap from Debian's registry, removed after; nothing
#     cached) with what every Debian system has (systemd,
#     init-system-helpers, adduser): the CI
#     machine has postfix as a test peer, which conflicts with every MTA
#     package, and other checks may still use it. There
#     tools/check-package-chroot.sh checks the operator's set-up, runs
#     the installed postern on the installed configuration and sends a
#     message through /usr/sbin/sendmail to a sink, reinstalls with a
#     message queued, then removes and purges and checks nothing is left.
# Needs root, dpkg-dev, debhelper, lintian, mmdebstrap (tools/deps.sh).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
t0=$(date +%s)
work=$(mktemp -d /var/tmp/postern-package.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM

say() { printf 'check-package: %s\n' "$*"; }
die() { say "FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap, chroot)"
ver=$(sed -n 's/^AC_INIT(\[postern\], \[\([^]]*\)\].*/\1/p' configure.ac)
dver=$(dpkg-parsechangelog -l debian/changelog -S Version)
[ "$ver" = "$dver" ] ||
	die "configure.ac says $ver, debian/changelog $dver: add a changelog entry"

# ---- 1. build from a clean checkout
src="$work/postern-$ver"
if git rev-parse --git-dir >/dev/null 2>&1; then
	git archive --format=tar --prefix="postern-$ver/" HEAD | tar -x -C "$work"
else    # a release tarball: its tree is the clean one
	mkdir "$src" && tar -c --exclude=./_build . | tar -x -C "$src"
fi
say "building postern $ver (dpkg-buildpackage -us -uc -b, nocheck)"
(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 ||
	{ tail -40 "$work/build.log"; die "dpkg-buildpackage"; }
arch=$(dpkg --print-architecture)
deb="$work/postern_${ver}_${arch}.deb"
[ -f "$deb" ] || die "no $deb"
t1=$(date +%s)
say "built $(basename "$deb") in $((t1 - t0))s"

# ---- 2. lintian: no error, no warning
lintian --info --display-info --fail-on error,warning \
	"$work/postern_${ver}_${arch}.changes" >"$work/lintian.log" 2>&1 ||
	{ cat "$work/lintian.log"; die "lintian reports errors or warnings"; }
say "lintian: no error, no warning; informational tags:"
grep '^I:' "$work/lintian.log" | sed 's/^/  /' || say "  (none)"

# ---- 3. install, run, purge in a fresh chroot
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
root="$work/root"
say "installing into a fresh $suite chroot (mmdebstrap)"
mmdebstrap --quiet --mode=root --variant=apt --skip=cleanup/apt/lists \
	--include=systemd,adduser,init-system-helpers "$suite" "$root" \
	>"$work/mmdebstrap.log" 2>&1 || { cat "$work/mmdebstrap.log"; die "mmdebstrap"; }
trap 'umount "$root/dev" "$root/proc" 2>/dev/null; rm -rf "$work"' EXIT INT TERM
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
sh tools/check-package-chroot.sh "$root" "$deb" || die "the installed package (see above)"
say "passed in $(($(date +%s) - t0))s (build $((t1 - t0))s)"
