#!/bin/sh
# bench/send-api.sh - throughput of the JSON send API of postern-httpd:
# requests per second (wrk, POST /api/v1/send with keep-alive) and
# messages queued per second (202 answers: each one is durable in the
# spool before it is sent), next to GET /healthz as the HTTP baseline.
#
# Usage: bench/send-api.sh [-d SECONDS] [-c CONNECTIONS] [-t THREADS]
# Needs: a built tree (POSTERN_BUILDDIR, default ./_build/plain or the
# current directory), wrk (Debian package wrk). Runs postern as the
# current user (or nobody when root) on loopback ports in a temporary
# directory, delivering into a maildir there, and removes it afterwards.
set -eu

dur=10 conns=32 threads=2
while getopts d:c:t: o; do
	case $o in
	d) dur=$OPTARG ;;
	c) conns=$OPTARG ;;
	t) threads=$OPTARG ;;
	*) echo "usage: $0 [-d seconds] [-c connections] [-t threads]" >&2; exit 2 ;;
	esac
done

top=$(cd "$(dirname "$0")/.." && pwd)
build=${POSTERN_BUILDDIR:-}
[ -z "$build" ] && [ -x "$top/_build/plain/postern" ] && build=$top/_build/plain
[ -z "$build" ] && [ -x ./postern ] && build=$(pwd)
[ -n "$build" ] && [ -x "$build/postern" ] || {
	echo "send-api.sh: set POSTERN_BUILDDIR to a built tree" >&2; exit 1; }
command -v wrk >/dev/null || { echo "send-api.sh: wrk not installed (apt-get install wrk)" >&2; exit 1; }

dir=$(mktemp -d /tmp/postern-send-bench.XXXXXX)
chmod 755 "$dir"
user=$(id -un)
[ "$(id -u)" = 0 ] && user=nobody
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
smtp=$(port)
http=$(port)
cat > "$dir/postern.conf" <<CONF
hostname = "postern.bench"
user = "$user"
spool_dir = "$dir/spool"
run_dir = "$dir/run"
libexec_dir = "$build"
log_level = "warning"
listen smtp { address = "127.0.0.1:$smtp" }
transport local { type = maildir  path = "$dir/mail" }
default_transport = "local"
http_listen = "127.0.0.1:$http"
http {
	send_api = yes
	allow_list = { "bench@example.com" }
	sender = "forms@example.com"
	rate_limit = 0
}
CONF
cat > "$dir/send.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"to":"bench@example.com","subject":"bench","body":"' ..
    string.rep("Hello from the send API benchmark. ", 20) ..
    '","from":"visitor@example.net"}'
LUA

"$build/postern" -f -c "$dir/postern.conf" 2>"$dir/postern.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
i=0
until curl -sf "http://127.0.0.1:$http/readyz" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "postern did not become ready:" >&2; tail "$dir/postern.log" >&2; exit 1; }
	sleep 0.1
done

echo "== GET /healthz (HTTP baseline), ${dur}s, $conns connections"
wrk -t "$threads" -c "$conns" -d "${dur}s" "http://127.0.0.1:$http/healthz" | tee "$dir/health.out"
echo
echo "== POST /api/v1/send, ${dur}s, $conns connections"
wrk -t "$threads" -c "$conns" -d "${dur}s" -s "$dir/send.lua" \
	"http://127.0.0.1:$http/api/v1/send" | tee "$dir/send.out"

reqs=$(awk '/requests in/ { print $1 }' "$dir/send.out")
bad=$(awk '/Non-2xx/ { print $NF }' "$dir/send.out")
bad=${bad:-0}
queued=$((reqs - bad))
metric=$(curl -s "http://127.0.0.1:$http/metrics" |
	awk '/^postern_send_api_requests_total\{result="accepted"\}/ { print $2 }')
echo
echo "requests: $reqs, non-2xx: $bad"
echo "messages queued (202): $queued = $(echo "$queued $dur" | awk '{ printf "%.0f", $1 / $2 }')/s"
echo "postern_send_api_requests_total{result=\"accepted\"}: $metric"
