#!/bin/bash
# bench/queue-accept.sh - durable acceptance throughput of postern-queued:
# Postfix's smtp-source sends N messages into the BUILT postern over 1, 20
# and 100 parallel sessions, once with queue { group_commit = yes } and
# once with "no"; an smtp-sink stands behind as the relay target. Prints
# messages per second of acceptance (every one fsync'd and indexed before
# its 250, see postern-queued(8)).
#
#   bench/queue-accept.sh [-n 5000] [-s "1 20 100"] [-l 1024] [-d DIR]
#
#   -n  messages per run;  -s  parallel session counts;  -l  payload bytes
#   -d  work directory: the spool lives here, so put it on the disk you
#       want to measure (default /var/tmp/postern-qbench; a tmpfs makes
#       fsync free and the comparison meaningless)
# POSTERN_BUILDDIR names the build (default _build/plain, else ./).
#
# Side by side with Postfix (full relay benchmark, same sink and load
# generator), with the profile bench/postern.sh:
#   ../shared/bench/run-all.sh -m "postfix $PWD/bench/postern.sh" -r 3 \
#       -N "5000 20000" -S "20 100" -o /tmp/bench-results
# (set POSTERN_BUILDDIR for the profile too).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
N=5000; SESSIONS="1 20 100"; SIZE=1024; DIR=/var/tmp/postern-qbench
while getopts "n:s:l:d:" o; do
    case $o in
    n) N=$OPTARG ;; s) SESSIONS=$OPTARG ;; l) SIZE=$OPTARG ;; d) DIR=$OPTARG ;;
    *) sed -n '2,21p' "$0" >&2; exit 2 ;;
    esac
done
BUILD=${POSTERN_BUILDDIR:-$TOP/_build/plain}
[ -x "$BUILD/postern" ] || BUILD=$PWD
[ -x "$BUILD/postern" ] || { echo "no built postern (set POSTERN_BUILDDIR)" >&2; exit 1; }
for t in /usr/sbin/smtp-source /usr/sbin/smtp-sink; do
    [ -x "$t" ] || { echo "$t missing (Debian package postfix)" >&2; exit 1; }
done
PORT=${QBENCH_PORT:-10038}; SINK=${QBENCH_SINK_PORT:-10039}
USER_=$( [ "$(id -u)" = 0 ] && echo nobody || id -un )
mkdir -p "$DIR"
SINK_PID=; PM_PID=

cleanup() {
    [ -n "$PM_PID" ] && kill "$PM_PID" 2>/dev/null && wait "$PM_PID" 2>/dev/null
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
    PM_PID=; SINK_PID=
}
trap cleanup EXIT

# listening - 1 when something accepts on 127.0.0.1:$1
listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# run_one - one measurement: group_commit $1, sessions $2; prints msg/s
run_one() {
    local gc=$1 s=$2 i t0 t1
    rm -rf "$DIR/spool" "$DIR/run"; mkdir -p "$DIR/run"
    cat > "$DIR/postern.conf" <<CONF
hostname = "postern.bench"
user = "$USER_"
spool_dir = "$DIR/spool"
run_dir = "$DIR/run"
libexec_dir = "$BUILD"
log_level = "warning"
smtpd_processes = 2
delivery_processes = 2
listen bench { address = "127.0.0.1:$PORT" }
trusted_networks = { "127.0.0.0/8" }
queue {
	concurrency = 40
	destination_concurrency = 40
	group_commit = $gc
}
transport sink { type = relay  host = "127.0.0.1:$SINK" }
default_transport = "sink"
http_listen = ""
CONF
    /usr/sbin/smtp-sink -u "$USER_" 127.0.0.1:$SINK 1000 > /dev/null 2>&1 &
    SINK_PID=$!
    "$BUILD/postern" -f -c "$DIR/postern.conf" > "$DIR/postern-$gc-$s.log" 2>&1 < /dev/null &
    PM_PID=$!
    for i in $(seq 1 100); do listening $PORT && listening $SINK && break; sleep 0.1; done
    listening $PORT || { echo "postern did not start" >&2; cat "$DIR/postern-$gc-$s.log" >&2; exit 1; }
    t0=$(date +%s.%N)
    timeout 600 /usr/sbin/smtp-source -d -s "$s" -m "$N" -l "$SIZE" \
        -f bench@example.org -t sink@example.com 127.0.0.1:$PORT
    t1=$(date +%s.%N)
    cleanup
    awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}

echo "durable acceptance, $N messages of $SIZE bytes, spool in $DIR ($(df -T "$DIR" | awk 'NR==2 { print $2 }'))"
printf '%-10s' sessions; for s in $SESSIONS; do printf '%10s' "$s"; done; echo
for gc in yes no; do
    printf '%-10s' "gc=$gc"
    for s in $SESSIONS; do printf '%10s' "$(run_one "$gc" "$s")"; done
    echo "   msg/s"
done
