#!/bin/sh
# tools/quickstart.sh - build Postern in the source tree and run it in the
# foreground on conf/quickstart.conf (SMTP 127.0.0.1:2525, HTTP
# 127.0.0.1:8025, mail into ./run/mail). Installs missing build packages
# first when run as root.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh
[ -x configure ] || ./autogen.sh
[ -f Makefile ] || ./configure -q
make -j"$(nproc)"
mkdir -p run
exec ./postern -f -c conf/quickstart.conf
