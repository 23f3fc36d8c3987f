# shellcheck shell=bash
# bench/postern.sh - MTA profile for ../shared/bench/run-all.sh (see
# ../shared/bench/mta/TEMPLATE.sh): runs the BUILT postern (this tree's
# build, _build/plain by default, or $POSTERN_BUILDDIR) as a durable relay
# from 127.0.0.1:$MTA_PORT to the sink on 127.0.0.1:$SINK_PORT.
# POSTERN_BENCH_EXTRA: more configuration lines (bench/smtpd-sessions.sh).
#   ../shared/bench/run-all.sh -m "postfix bench/postern.sh" -r 3 \
#       -N "5000 20000" -S "20 100" -o /tmp/bench-results

MTA_PORT=${POSTERN_BENCH_PORT:-10028}
PB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PB_BUILD=${POSTERN_BUILDDIR:-$PB_TOP/_build/plain}
PB_DIR=${POSTERN_BENCH_DIR:-/var/spool/postern-bench}
MTA_PIDFILE=$PB_DIR/run/postern.pid
MTA_LOG=$BENCH_RUN_DIR/postern.log
MTA_RSS_ARGS="--rss-pidfile $MTA_PIDFILE"

mta_setup() {
    [ -x "$PB_BUILD/postern" ] || {
        echo "postern is not built in $PB_BUILD (run tools/check-all.sh or set POSTERN_BUILDDIR)" >&2
        return 1
    }
    mkdir -p "$PB_DIR"
    cat > "$PB_DIR/postern.conf" <<CONF
hostname = "postern.bench"
user = "${POSTERN_BENCH_USER:-nobody}"
spool_dir = "$PB_DIR/spool"
run_dir = "$PB_DIR/run"
libexec_dir = "$PB_BUILD"
log_level = "warning"
smtpd_processes = ${POSTERN_BENCH_SMTPD:-2}
delivery_processes = ${POSTERN_BENCH_DELIVERY:-2}
listen bench { address = "127.0.0.1:$MTA_PORT" }
trusted_networks = { "127.0.0.0/8" }
queue {
	concurrency = ${POSTERN_BENCH_CONCURRENCY:-40}
	# the benchmark has one destination (the sink): let it use them all
	destination_concurrency = ${POSTERN_BENCH_CONCURRENCY:-40}
}
transport sink { type = relay  host = "127.0.0.1:$SINK_PORT" }
default_transport = "sink"
http_listen = ""
# every load generator connects from 127.0.0.1: no per-client limit
smtpd_client_connection_limit = 0
${POSTERN_BENCH_EXTRA:-}
CONF
    # a build older than the per-client limit does not know the option
    if "$PB_BUILD/posternctl" -c "$PB_DIR/postern.conf" check-config 2>&1 |
        grep -q "no such option 'smtpd_client_connection_limit'"; then
        sed -i '/^smtpd_client_connection_limit/d' "$PB_DIR/postern.conf"
    fi
}

_pb_listening() { ss -Hltn "sport = :$MTA_PORT" 2>/dev/null | grep -q .; }

mta_start() {
    rm -rf "$PB_DIR/spool" "$PB_DIR/run"
    mkdir -p "$PB_DIR/run"
    "$PB_BUILD/postern" -f -c "$PB_DIR/postern.conf" > "$MTA_LOG" 2>&1 < /dev/null &
    local i
    for i in $(seq 1 100); do _pb_listening && [ -s "$MTA_PIDFILE" ] && break; sleep 0.1; done
    _pb_listening || { echo "postern did not start listening on $MTA_PORT" >&2; return 1; }
}

mta_stop() {
    [ -f "$MTA_PIDFILE" ] || return 0
    local pid i
    pid=$(cat "$MTA_PIDFILE")
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    rm -f "$MTA_PIDFILE"
    return 0
}

mta_queue_files() { find "$PB_DIR/spool/msg" -type f 2>/dev/null | wc -l; }

mta_version() { echo "postern $(git -C "$PB_TOP" rev-parse --short HEAD 2>/dev/null)"; }
