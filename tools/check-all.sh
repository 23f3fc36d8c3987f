#!/bin/sh
# tools/check-all.sh - the whole test suite, as CI runs it:
#  1. a warning-free build (-Werror) and `make check`;
#  2. the same suite built with -fsanitize=address,undefined;
#  3. `make distcheck`: the release tarball builds, tests and installs
#     (DESTDIR) from the tarball alone;
#  4. last, tools/check-package.sh: the Debian package, built, linted,
#     installed, run, purged (in a chroot; see that script).
# Builds happen out of tree under _build/, so the source tree stays clean.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
sh tools/deps.sh --test
./autogen.sh >/dev/null 2>&1 || ./autogen.sh
jobs=$(nproc)

step() { printf '\n==== %s ====\n' "$*"; }

step "build (-Wall -Wextra -Werror) and make check"
mkdir -p _build/plain && cd _build/plain
"$top/configure" -q --enable-werror
make -j"$jobs"
make check
cd "$top"

step "build with -fsanitize=address,undefined and make check"
mkdir -p _build/asan && cd _build/asan
"$top/configure" -q --enable-sanitizers
make -j"$jobs"
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 make check
cd "$top"

step "make distcheck"
cd _build/plain
make distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror
cd "$top"

step "Debian package (tools/check-package.sh)"
sh tools/check-package.sh
step "all checks passed"
