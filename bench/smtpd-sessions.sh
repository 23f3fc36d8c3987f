#!/bin/bash
# bench/smtpd-sessions.sh - memory of N concurrent idle SMTP sessions:
# Postern (a few event-loop smtpd processes) beside Postfix (one smtpd
# process per session). For each N a freshly started MTA, then
# bench/idle-sessions.py opens N sessions from one process (each reads its
# 220 greeting, sends EHLO and reads the 250 reply, then stays idle), and
# once all are up the RSS and PSS of the MTA's smtpd processes are summed
# from /proc/PID/smaps_rollup. Prints one table:
#   sessions established, time to open them, smtpd RSS and PSS (total and
#   the growth per session over the idle MTA), all processes of the MTA,
#   and sessions the server dropped while they were idle.
#
#   bench/smtpd-sessions.sh [-n "1000 5000 10000"] [-f "100 1000"] [-p 1]
#                           [-m "postern postfix"] [-g] [-i 3] [-o FILE]
#
#   -n  session counts for Postern      -f  session counts for Postfix
#   -p  Postern smtpd processes (1: one process holds every session)
#   -m  which MTAs                       -g  greeting only, no EHLO
#   -i  seconds the sessions stay idle before memory is read
#   -o  also append the table (markdown) to FILE
# POSTERN_BUILDDIR names the build (default _build/plain). Postfix comes
# from ../shared/bench/postfix-setup.sh (Debian's postfix; run as root);
# for the run default_process_limit is raised to N + 100 and Postfix's
# per-client connection count and rate limits are off, and its harness
# configuration is restored afterwards. Postern's per-client connection
# limit is off too (bench/postern.sh). Loopback only; every process this
# script starts is stopped by PID; every wait is bounded.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
NS="1000 5000 10000"; PF_NS="100 1000"; PROCS=1; MTAS="postern postfix"
EHLO=--ehlo; IDLE=3; OUT=
while getopts "n:f:p:m:gi:o:" o; do
    case $o in
    n) NS=$OPTARG ;; f) PF_NS=$OPTARG ;; p) PROCS=$OPTARG ;; m) MTAS=$OPTARG ;;
    g) EHLO= ;; i) IDLE=$OPTARG ;; o) OUT=$OPTARG ;;
    *) sed -n '2,27p' "$0" >&2; exit 2 ;;
    esac
done
export POSTERN_BUILDDIR=${POSTERN_BUILDDIR:-$TOP/_build/plain}
SHARED_BENCH=${SHARED_BENCH:-$TOP/../shared/bench}
CLIENT=$TOP/bench/idle-sessions.py
PORT=${SESSIONS_PORT:-10048}
PF_PORT=${SESSIONS_PF_PORT:-10049}

# descriptors: the client holds N sockets, Postern's smtpd (one process
# with -p 1) N more; both inherit this shell's limit
max=0
for n in $NS $PF_NS; do [ "$n" -gt "$max" ] && max=$n; done
need=$((max + 1024))
if [ "$(ulimit -n)" -lt "$need" ]; then
    if [ "$(id -u)" = 0 ] && [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 65536 ]; then
        ulimit -Hn 65536 2>/dev/null || true   # (a container may forbid it)
    fi
    ulimit -Sn "$(ulimit -Hn)"
fi
[ "$(ulimit -n)" -ge "$need" ] || {
    echo "descriptor limit $(ulimit -n) < $need: run as root or raise ulimit -Hn" >&2
    exit 1
}
read -r lo hi < /proc/sys/net/ipv4/ip_local_port_range

WORK=$(mktemp -d /var/tmp/postern-sessions.XXXXXX)
chmod 755 "$WORK"
CLIENT_PID=; PF_STARTED=0; ST=; DROPPED=
cleanup() {
    close_sessions
    if [ "$PF_STARTED" = 1 ]; then
        mta_pf_stop
        # back to the harness's own configuration (its default ports)
        env -u PF_PORT -u SINK_PORT bash "$SHARED_BENCH/postfix-setup.sh" >/dev/null 2>&1 || true
    fi
    [ "$(type -t mta_stop)" = function ] && mta_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

# mem_kb - "RSS PSS" in KiB summed over the given pids (smaps_rollup)
mem_kb() {
    local p rss=0 pss=0 r s
    for p in "$@"; do
        read -r r s < <(awk '/^Rss:/{r=$2} /^Pss:/{s=$2} END{print r+0, s+0}' \
            "/proc/$p/smaps_rollup" 2>/dev/null || echo "0 0")
        rss=$((rss + r)); pss=$((pss + s))
    done
    echo "$rss $pss"
}

# descendants ROOT [NAME] - every live descendant of ROOT (with command
# name NAME only, when given), from one ps snapshot
descendants() {
    ps -e -o pid=,ppid=,comm= | awk -v root="$1" -v name="${2:-}" '
        { parent[$1] = $2; comm[$1] = $3 }
        END {
            for (p in parent) {
                for (q = parent[p]; q != "" && q > 1 && q != root; q = parent[q])
                    ;
                if (q == root && (name == "" || comm[p] == name))
                    print p
            }
        }'
}

# comm_pids ROOT NAME - descendants of ROOT whose command name is NAME
comm_pids() { descendants "$1" "$2"; }

# open_sessions N PORT SRC - start the client (CLIENT_PID) and wait,
# bounded, until it is ready; its status line into ST
open_sessions() {
    local n=$1 port=$2 src=$3 i
    rm -f "$WORK/status"
    python3 "$CLIENT" --port "$port" -n "$n" $EHLO --src "$src" \
        --timeout $((60 + n / 50)) --hold 600 --status "$WORK/status" &
    CLIENT_PID=$!
    for i in $(seq 1 $((1200 + n / 5))); do
        [ -s "$WORK/status" ] && break
        kill -0 "$CLIENT_PID" 2>/dev/null || break
        sleep 0.1
    done
    ST=$(head -1 "$WORK/status" 2>/dev/null) ||
        ST="ready established=0 failed=$n open_s=0 refused=client-failed"
}

# close_sessions - stop the client; "DROPPED FIRST_DROP" into DROPPED
close_sessions() {
    local i
    [ -n "$CLIENT_PID" ] || return 0
    kill "$CLIENT_PID" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$CLIENT_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$CLIENT_PID" 2>/dev/null || true
    CLIENT_PID=
    DROPPED=$(sed -n 's/^done .*dropped=\([0-9]*\) first_drop="\(.*\)"/\1 \2/p' "$WORK/status")
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<< "$2"; }

ROWS=()
# row MTA N STATUS PROCS IDLE_RSS IDLE_PSS RSS PSS ALL_RSS ALL_PSS DROPPED
row() {
    local est t ref per_rss=0 per_pss=0
    est=$(field established "$3"); t=$(field open_s "$3"); ref=$(field refused "$3")
    if [ "$est" -gt 0 ]; then
        per_rss=$(( ($7 - $5) * 1024 / est )); per_pss=$(( ($8 - $6) * 1024 / est ))
    fi
    ROWS+=("$(printf '| %s | %d | %d | %s | %d | %.1f | %.1f | %d | %d | %.1f | %.1f | %s | %s |' \
        "$1" "$2" "$est" "$t" "$4" "$(mib "$7")" "$(mib "$8")" \
        "$per_rss" "$per_pss" "$(mib "$9")" "$(mib "${10}")" \
        "${11}" "$ref")")
    echo "${ROWS[-1]}"
}

# ---- Postern -------------------------------------------------------------

bench_postern() {
    local n=$1 k=$2 root smtpd idle now all
    export POSTERN_BENCH_DIR=$WORK/postern POSTERN_BENCH_PORT=$PORT
    export POSTERN_BENCH_SMTPD=$PROCS POSTERN_BENCH_DELIVERY=1 BENCH_RUN_DIR=$WORK
    export SINK_PORT=1      # nothing is sent
    # shellcheck source=bench/postern.sh
    . "$TOP/bench/postern.sh"
    mta_setup
    mta_start
    sleep 1
    root=$(cat "$MTA_PIDFILE")
    smtpd=$(comm_pids "$root" postern-smtpd)
    idle=$(mem_kb $smtpd)
    open_sessions "$n" "$PORT" "127.$((20 + k)).0"
    sleep "$IDLE"
    now=$(mem_kb $smtpd)
    all=$(mem_kb "$root" $(descendants "$root"))
    close_sessions
    # shellcheck disable=SC2086
    row postern "$n" "$ST" "$(wc -w <<< "$smtpd")" $idle $now $all "${DROPPED:-?}"
    grep -E "accept on listener|too many|EMFILE" "$MTA_LOG" | head -3 >&2 || true
    mta_stop
}

# ---- Postfix -------------------------------------------------------------

mta_pf_stop() {
    local pid
    pid=$(tr -d ' ' < /var/spool/postfix/pid/master.pid 2>/dev/null) || return 0
    postfix stop >/dev/null 2>&1 || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    for _ in $(seq 1 100); do pgrep -P "$pid" >/dev/null 2>&1 || break; sleep 0.1; done
    return 0
}

bench_postfix() {
    local n=$1 k=$2 root smtpd now all
    PF_PORT=$PF_PORT SINK_PORT=1 bash "$SHARED_BENCH/postfix-setup.sh" >/dev/null
    PF_STARTED=1
    postconf -e "default_process_limit = $((n + 100))" \
        "smtpd_client_connection_count_limit = 0" \
        "smtpd_client_connection_rate_limit = 0" "maillog_file = $WORK/postfix.log"
    postfix start >/dev/null 2>&1
    for _ in $(seq 1 100); do ss -Hltn "sport = :$PF_PORT" | grep -q . && break; sleep 0.1; done
    sleep 1
    root=$(tr -d ' ' < /var/spool/postfix/pid/master.pid)
    open_sessions "$n" "$PF_PORT" "127.$((40 + k)).0"
    sleep "$IDLE"
    smtpd=$(comm_pids "$root" smtpd)
    now=$(mem_kb $smtpd)
    all=$(mem_kb "$root" $(descendants "$root"))
    close_sessions
    # every smtpd process appeared for a session: the idle MTA has none
    # shellcheck disable=SC2086
    row postfix "$n" "$ST" "$(wc -w <<< "$smtpd")" 0 0 $now $all "${DROPPED:-?}"
    mta_pf_stop
}

echo "idle SMTP sessions: ${EHLO:+greeting + EHLO, }idle ${IDLE}s before measuring;" \
    "descriptor limit $(ulimit -n); ephemeral ports $lo-$hi ($((hi - lo + 1)) per source address)"
HDR='| MTA | sessions | established | open s | smtpd procs | smtpd RSS MiB | smtpd PSS MiB | RSS B/session | PSS B/session | all RSS MiB | all PSS MiB | dropped | refused |'
echo "$HDR"
echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|'
k=0
for m in $MTAS; do
    case $m in
    postern) for n in $NS; do k=$((k + 1)); bench_postern "$n" "$k"; done ;;
    postfix) for n in $PF_NS; do k=$((k + 1)); bench_postfix "$n" "$k"; done ;;
    *) echo "unknown MTA $m" >&2; exit 2 ;;
    esac
done
if [ -n "$OUT" ]; then
    { echo "$HDR"; echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|'
      printf '%s\n' "${ROWS[@]}"; } >> "$OUT"
fi
